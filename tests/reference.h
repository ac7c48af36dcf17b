/*
 * The C reference (the oracle) for the WARP loss, written straight from the
 * "Semantics" section of README.md: one plain loop per row, no tricks. Tests
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
void ref_loss(const wl_loss_options *o, size_t rows, size_t negatives, const float *pos, const float *neg,
              float *loss, float *grad_pos, float *grad_neg, int32_t *offender);

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

#endif
