/*
 * The C reference (the oracle) for the WARP loss, written straight from the
 * "Semantics of the loss" section of README.md: one plain loop per row, no tricks. Tests
 * compare the library against it; it shares no code with the library.
 *
 * Also: deterministic test inputs from a seed, in three regimes.
 */
#ifndef WL_TEST_REFERENCE_H
#define WL_TEST_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "warploss.h"

/* Rank weight for an offender found after k trials, in double (before the
 * single rounding to float): r = (num_labels - 1) / k; r = 0 gives 0. */
double ref_rank_weight(uint64_t num_labels, uint64_t k, wl_weighting weighting);

/* H(r) = 1 + 1/2 + ... + 1/r: direct summation for r <= 10^7, else the
 * asymptotic expansion ln r + gamma + 1/(2r) - 1/(12 r^2) + 1/(120 r^4). */
double ref_harmonic(uint64_t r);

/*
 * The loss, with the same shapes and meaning as wl_loss. Any of grad_pos,
 * grad_neg, offender may be NULL; loss may not. Does not validate arguments.
 * The reduced loss is summed in double and rounded to float once.
 */
void ref_loss(const wl_loss_options *o, size_t rows, size_t negatives, const float *pos, const float *neg, float *loss,
              float *grad_pos, float *grad_neg, int32_t *offender);

/* ------------------------------------------------------------ test inputs */

typedef enum ref_regime {
    REF_EARLY, /* the first offender is usually at index 0 */
    REF_DEEP,  /* the first offender is around the middle of the row */
    REF_NONE   /* no offender at all */
} ref_regime;

const char *ref_regime_name(ref_regime regime);

/* A small deterministic PRNG (splitmix64). */
typedef struct ref_rng {
    uint64_t state;
} ref_rng;

void ref_rng_seed(ref_rng *g, uint64_t seed);
uint64_t ref_rng_next(ref_rng *g);
/* Uniform in [lo, hi). */
double ref_rng_uniform(ref_rng *g, double lo, double hi);

/*
 * Fill pos[rows] and neg[rows * negatives] for the given regime and margin,
 * deterministically from seed. About half of the rows use scores on a grid
 * of 1/64 (so that exact ties, (margin + n) - p == 0, which do not stop the
 * scan, happen), the others arbitrary floats.
 */
void ref_make_inputs(uint64_t seed, ref_regime regime, size_t rows, size_t negatives, float margin, float *pos,
                     float *neg);

/* Equal as values, with NaN equal to NaN (and -0 equal to +0). */
int ref_same_value(float a, float b);

/* ------------------------------------------------------------ the embedding model */
/*
 * The model of wl_model_* (README.md, "The embedding model"): plain loops on host copies of the tables, the gradient
 * summed in double. Does not validate arguments.
 */

/* The splitmix64 finaliser every random number of the model comes from. */
uint64_t ref_mix64(uint64_t z);

/* Initial tables from o->seed: U [num_users x dim], V [num_items x dim] and b [num_items] (zero). */
void ref_model_init(const wl_model_options *o, float *U, float *V, float *b);

/* Sampled candidate j of batch row `row` (0-based within the call) whose positive is `positive`. */
int32_t ref_sample(uint64_t seed, uint64_t key, uint64_t row, uint64_t j, uint32_t num_items, int32_t positive);

/* A model on the host: tables, Adagrad accumulators (all 1 at the start; kept for SGD too, unused) and the
 * known positives (CSR copies; none at the start). */
typedef struct ref_model {
    wl_model_options o;
    float *U, *V, *b;    /* tables */
    float *AU, *AV, *Ab; /* Adagrad accumulators */
    uint64_t *indptr;    /* [num_users + 1], NULL: no known positives */
    int32_t *known;
} ref_model;

/* Allocate and initialise as wl_model_create does (aborts on out of memory). */
void ref_model_create(ref_model *m, const wl_model_options *o);
void ref_model_free(ref_model *m);
/* Replace the known positives (copies them). */
void ref_model_set_known(ref_model *m, const uint64_t *indptr, const int32_t *items);
/* 1 if item x is a known positive of user u. */
int ref_model_is_known(const ref_model *m, int32_t u, int32_t x);
/* s(u, x) in float32 in the order README.md gives (sequential dot product, then the bias). */
float ref_model_score(const ref_model *m, int32_t u, int32_t x);

/*
 * One step on rows x negatives candidates, row-major (shared and sampled
 * candidates: the caller expands them per row). Optional outputs: r (loss,
 * offenders, scores), stop[rows] (j* or -1).
 */
void ref_model_step(ref_model *m, const wl_loss_options *lo, size_t rows, const int32_t *users,
                    const int32_t *positives, size_t negatives, const int32_t *cands, wl_step_result *r, int64_t *stop);

/* The scan of a step without the update: stop[b] (j* or -1) and r's offenders and scores (r->loss 0). */
void ref_model_scan(const ref_model *m, const wl_loss_options *lo, size_t rows, const int32_t *users,
                    const int32_t *positives, size_t negatives, const int32_t *cands, wl_step_result *r, int64_t *stop);

/* The loss of a step (in double, scores in double too) on the current tables with each row's stop fixed at
 * stop[b] (-1: no contribution): what finite differences differentiate. */
double ref_model_fixed_loss(const ref_model *m, const wl_loss_options *lo, size_t rows, const int32_t *users,
                            const int32_t *positives, size_t negatives, const int32_t *cands, const int64_t *stop);

/* wl_model_recommend and wl_model_rank on the host. */
void ref_model_recommend(const ref_model *m, size_t n, const int32_t *users, size_t k, int exclude_known,
                         int32_t *items, float *scores);
void ref_model_rank(const ref_model *m, size_t n, const int32_t *users, const int32_t *items, int exclude_known,
                    uint32_t *ranks);

/* ------------------------------------------------------------ the hybrid model (features) */

/* A side's feature matrix as CSR (ptr NULL: each row is its own feature, weight 1). */
typedef struct ref_features {
    const uint64_t *ptr;
    const int32_t *idx;
    const float *w;
} ref_features;

/* The representations of `rows` rows under f (README.md, "Features"): out[r] = sum_k w_k * table[idx_k] in float,
 * the products added in k order starting from the first (an empty row: 0). */
void ref_represent(const ref_features *f, size_t rows, uint32_t dim, const float *table, float *out);

/*
 * One step of the hybrid model. m holds the feature tables: create it with num_users = the user table's rows
 * (num_user_features, or the users without) and num_items likewise, so that its initial tables are the library's;
 * num_users and num_items are the entities (users, items) the batch's ids and uf, vf's rows count. The scan runs on
 * the representations; each gradient term goes to every feature of its row times the feature's weight (summed in
 * double), then L2 and the optimizer update each touched feature row. sw: the rows' sample weights (NULL: 1); a
 * row of weight 0 adds nothing. No known positives.
 */
void ref_feature_step(ref_model *m, uint32_t num_users, uint32_t num_items, const ref_features *uf,
                      const ref_features *vf, const wl_loss_options *lo, size_t rows, const int32_t *users,
                      const int32_t *positives, size_t negatives, const int32_t *cands, const float *sw,
                      wl_step_result *r, int64_t *stop);

/* ------------------------------------------------------------ evaluation */

/* One user's metrics (wl_user_metrics) from its n held-out items' ranks,
 * LightFM's definitions (README.md, "Evaluation"): the ranks sorted, AUC
 * summed in double; negatives: the items neither held out nor excluded. */
void ref_user_metrics(size_t n, const uint32_t *ranks, int64_t negatives, uint32_t k, wl_user_metrics *out);

/* wl_model_evaluate on the host: ranks from ref_model_rank, metrics from ref_user_metrics. */
void ref_model_evaluate(const ref_model *m, const uint64_t *indptr, const int32_t *items, uint32_t k, int exclude_known,
                        wl_metrics *out, wl_user_metrics *per_user);

#endif
