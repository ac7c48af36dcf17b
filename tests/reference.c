/*
 * The C reference for the WARP loss (see reference.h). Written for
 * obviousness, not speed: every row is a plain loop over its negatives, in
 * the float32 operations README.md's "Semantics of the loss" prescribes.
 */
#include "reference.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF_EULER_GAMMA 0.57721566490153286060651209008240243
#define REF_HARMONIC_DIRECT_MAX 10000000u

/* Direct sums are long for large r; the same few r come back again and again
 * (one per offender index), so remember the last ones. */
#define REF_HARMONIC_CACHE 4096
static uint64_t harmonic_cache_key[REF_HARMONIC_CACHE];
static double harmonic_cache_value[REF_HARMONIC_CACHE];

double ref_harmonic(uint64_t r)
{
    if (r == 0)
        return 0.0;
    if (r > REF_HARMONIC_DIRECT_MAX) {
        const double x = (double)r;
        return log(x) + REF_EULER_GAMMA + 1.0 / (2.0 * x) - 1.0 / (12.0 * x * x) + 1.0 / (120.0 * x * x * x * x);
    }
    const size_t slot = (size_t)((r * UINT64_C(0x9E3779B97F4A7C15)) >> 52) % REF_HARMONIC_CACHE;
    if (harmonic_cache_key[slot] == r)
        return harmonic_cache_value[slot];
    double h = 0.0;
    for (uint64_t i = 1; i <= r; ++i)
        h += 1.0 / (double)i;
    harmonic_cache_key[slot] = r;
    harmonic_cache_value[slot] = h;
    return h;
}

double ref_rank_weight(uint64_t num_labels, uint64_t k, wl_weighting weighting)
{
    const uint64_t r = (num_labels - 1) / k;
    if (r == 0)
        return 0.0; /* more trials than other labels: clamp as LightFM does */
    if (weighting == WL_WEIGHT_HARMONIC)
        return ref_harmonic(r);
    return log((double)r);
}

void ref_loss(const wl_loss_options *o, size_t rows, size_t negatives, const float *pos, const float *neg, float *loss,
              float *grad_pos, float *grad_neg, int32_t *offender)
{
    const float margin = o->margin;
    float scale = 1.0f;
    if (o->reduction == WL_REDUCE_MEAN)
        scale = rows ? 1.0f / (float)rows : 0.0f;

    if (grad_neg)
        for (size_t i = 0; i < rows * negatives; ++i)
            grad_neg[i] = 0.0f;

    double sum = 0.0;
    for (size_t b = 0; b < rows; ++b) {
        const float p = pos[b];
        const float *n = neg ? neg + b * negatives : NULL;

        /* 1. first offender: (margin + n[j]) - p > 0, or NaN */
        long long first = -1;
        int nan_stop = 0;
        if (isnan(p)) {
            nan_stop = 1;
            first = negatives > 0 ? 0 : -1;
        } else {
            for (size_t j = 0; j < negatives; ++j) {
                const float d = (margin + n[j]) - p;
                if (isnan(d)) {
                    nan_stop = 1;
                    first = (long long)j;
                    break;
                }
                if (d > 0.0f) {
                    first = (long long)j;
                    break;
                }
            }
        }

        /* 2.-4. weight, row loss, gradient */
        float row_loss = 0.0f;
        float g = 0.0f;
        if (first >= 0) {
            const float w = (float)ref_rank_weight(o->num_labels, (uint64_t)first + 1, o->weighting);
            row_loss = w * ((margin - p) + n[first]);
            g = w * scale;
        }
        if (nan_stop || isnan(row_loss)) { /* a NaN loss is never paired with a finite gradient */
            row_loss = NAN;
            g = NAN;
        }

        if (o->reduction == WL_REDUCE_NONE)
            loss[b] = row_loss;
        sum += (double)row_loss;
        if (grad_pos)
            grad_pos[b] = -g;
        if (grad_neg && first >= 0)
            grad_neg[b * negatives + (size_t)first] = g;
        if (offender)
            offender[b] = (int32_t)first;
    }

    if (o->reduction == WL_REDUCE_SUM)
        loss[0] = (float)sum;
    else if (o->reduction == WL_REDUCE_MEAN)
        loss[0] = (float)(sum * (double)scale);
}

/* ------------------------------------------------------------ test inputs */

const char *ref_regime_name(ref_regime regime)
{
    switch (regime) {
    case REF_EARLY: return "early";
    case REF_DEEP: return "deep";
    case REF_NONE: return "none";
    }
    return "?";
}

void ref_rng_seed(ref_rng *g, uint64_t seed) { g->state = seed; }

uint64_t ref_rng_next(ref_rng *g)
{
    uint64_t z = (g->state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

double ref_rng_uniform(ref_rng *g, double lo, double hi)
{
    const double u = (double)(ref_rng_next(g) >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
    return lo + (hi - lo) * u;
}

/* A value in [lo, hi): on the 1/64 grid when `grid`. */
static double draw(ref_rng *g, double lo, double hi, int grid)
{
    const double x = ref_rng_uniform(g, lo, hi);
    return grid ? floor(x * 64.0) / 64.0 : x;
}

static int stops(float margin, float n, float p)
{
    const float d = (margin + n) - p;
    return d > 0.0f || isnan(d);
}

/* A negative that does not stop the scan (a tie, on the grid, is allowed). */
static float below(ref_rng *g, float margin, float p, int grid)
{
    float n = (float)((double)p - (double)margin - draw(g, grid ? 0.0 : 0.25, 2.0, grid));
    while (stops(margin, n, p))
        n -= 1.0f;
    return n;
}

/* A negative that does stop the scan. */
static float above(ref_rng *g, float margin, float p, int grid)
{
    float n = (float)((double)p - (double)margin + draw(g, 0.25, 2.0, grid));
    while (!stops(margin, n, p))
        n += 1.0f;
    return n;
}

/* Anything near the threshold: stops about three times in four. */
static float around(ref_rng *g, float margin, float p, int grid)
{
    return (float)((double)p - (double)margin + draw(g, -0.5, 1.5, grid));
}

void ref_make_inputs(uint64_t seed, ref_regime regime, size_t rows, size_t negatives, float margin, float *pos,
                     float *neg)
{
    ref_rng g;
    ref_rng_seed(&g, seed * UINT64_C(0x2545F4914F6CDD1D) + (uint64_t)regime);
    for (size_t b = 0; b < rows; ++b) {
        const int grid = (int)(ref_rng_next(&g) & 1);
        const float p = (float)draw(&g, -4.0, 4.0, grid);
        float *n = negatives ? neg + b * negatives : NULL;
        pos[b] = p;
        size_t target = 0;
        if (regime == REF_DEEP && negatives > 0) {
            const size_t spread = negatives / 8;
            target = negatives / 2;
            if (spread > 0)
                target = target - spread + (size_t)(ref_rng_next(&g) % (2 * spread + 1));
            if (target >= negatives)
                target = negatives - 1;
        }
        for (size_t j = 0; j < negatives; ++j) {
            switch (regime) {
            case REF_EARLY: n[j] = around(&g, margin, p, grid); break;
            case REF_DEEP:
                n[j] = j < target ? below(&g, margin, p, grid)
                                  : (j == target ? above(&g, margin, p, grid) : around(&g, margin, p, grid));
                break;
            case REF_NONE: n[j] = below(&g, margin, p, grid); break;
            }
        }
    }
}

int ref_same_value(float a, float b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b;
}

/* ------------------------------------------------------------ the embedding model */

uint64_t ref_mix64(uint64_t z)
{
    z += UINT64_C(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static void ref_init_table(uint64_t seed, uint64_t t, uint32_t dim, size_t count, float *w)
{
    const uint64_t base = ref_mix64(seed ^ (UINT64_C(0x5741524C4F535300) + t));
    for (size_t e = 0; e < count; ++e) {
        const uint64_t h = ref_mix64(base ^ (uint64_t)e);
        const float u = (float)(h >> 40) * 0x1p-24f;
        w[e] = (u - 0.5f) / (float)dim;
    }
}

void ref_model_init(const wl_model_options *o, float *U, float *V, float *b)
{
    ref_init_table(o->seed, 0, o->dim, (size_t)o->num_users * o->dim, U);
    ref_init_table(o->seed, 1, o->dim, (size_t)o->num_items * o->dim, V);
    for (uint32_t x = 0; x < o->num_items; ++x)
        b[x] = 0.0f;
}

int32_t ref_sample(uint64_t seed, uint64_t key, uint64_t row, uint64_t j, uint32_t num_items, int32_t positive)
{
    const uint64_t h = ref_mix64(ref_mix64(ref_mix64(ref_mix64(seed) ^ key) ^ row) ^ j);
    const uint32_t r = (uint32_t)(h >> 32);
    uint32_t c = (uint32_t)(((uint64_t)r * (uint64_t)(num_items - 1)) >> 32);
    if (c >= (uint32_t)positive)
        c += 1;
    return (int32_t)c;
}

static void *ref_alloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "reference: out of memory (%zu bytes)\n", bytes);
        abort();
    }
    return p;
}

static void ref_fill(float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; ++i)
        x[i] = v;
}

void ref_model_create(ref_model *m, const wl_model_options *o)
{
    const size_t nu = (size_t)o->num_users * o->dim, nv = (size_t)o->num_items * o->dim;
    m->o = *o;
    m->U = ref_alloc(nu * sizeof(float));
    m->V = ref_alloc(nv * sizeof(float));
    m->b = ref_alloc(o->num_items * sizeof(float));
    m->AU = ref_alloc(nu * sizeof(float));
    m->AV = ref_alloc(nv * sizeof(float));
    m->Ab = ref_alloc(o->num_items * sizeof(float));
    ref_model_init(o, m->U, m->V, m->b);
    ref_fill(m->AU, nu, 1.0f);
    ref_fill(m->AV, nv, 1.0f);
    ref_fill(m->Ab, o->num_items, 1.0f);
    m->indptr = NULL;
    m->known = NULL;
}

void ref_model_free(ref_model *m)
{
    free(m->U);
    free(m->V);
    free(m->b);
    free(m->AU);
    free(m->AV);
    free(m->Ab);
    free(m->indptr);
    free(m->known);
    memset(m, 0, sizeof *m);
}

void ref_model_set_known(ref_model *m, const uint64_t *indptr, const int32_t *items)
{
    free(m->indptr);
    free(m->known);
    const size_t n = m->o.num_users + (size_t)1;
    m->indptr = ref_alloc(n * sizeof *indptr);
    memcpy(m->indptr, indptr, n * sizeof *indptr);
    m->known = ref_alloc((size_t)indptr[m->o.num_users] * sizeof *items);
    memcpy(m->known, items, (size_t)indptr[m->o.num_users] * sizeof *items);
}

int ref_model_is_known(const ref_model *m, int32_t u, int32_t x)
{
    if (!m->indptr)
        return 0;
    /* a linear search: the library's binary search must find the same */
    for (uint64_t k = m->indptr[u]; k < m->indptr[u + 1]; ++k)
        if (m->known[k] == x)
            return 1;
    return 0;
}

float ref_model_score(const ref_model *m, int32_t u, int32_t x)
{
    const uint32_t dim = m->o.dim;
    const float *pu = m->U + (size_t)u * dim, *px = m->V + (size_t)x * dim;
    /* the library's 8-lane order: lane l sums d = l, l + 8, ... over the whole
     * chunks of 8, the tail goes to lanes 0, 1, ..., then a fixed pairwise sum */
    const uint32_t whole = dim / 8u * 8u;
    float p[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    for (uint32_t d = 0; d < whole; ++d)
        p[d % 8u] = p[d % 8u] + pu[d] * px[d];
    for (uint32_t d = whole; d < dim; ++d)
        p[d - whole] = p[d - whole] + pu[d] * px[d];
    return (((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))) + m->b[x];
}

/* The first stop of row b's scan (-1: none), with scores[b] counted into *trials. */
static int64_t ref_scan(const ref_model *m, float margin, int32_t u, int32_t i, size_t negatives, const int32_t *c,
                        uint64_t *trials)
{
    const float si = ref_model_score(m, u, i);
    for (size_t j = 0; j < negatives; ++j) {
        if (ref_model_is_known(m, u, c[j]))
            continue;
        const float d = (margin + ref_model_score(m, u, c[j])) - si;
        if (d > 0.0f || isnan(d)) {
            *trials += j + 1;
            return (int64_t)j;
        }
    }
    *trials += negatives;
    return -1;
}

void ref_model_scan(const ref_model *m, const wl_loss_options *lo, size_t rows, const int32_t *users,
                    const int32_t *positives, size_t negatives, const int32_t *cands, wl_step_result *r, int64_t *stop)
{
    uint64_t offenders = 0, trials = 0;
    for (size_t row = 0; row < rows; ++row) {
        stop[row] = ref_scan(m, lo->margin, users[row], positives[row], negatives, cands + row * negatives, &trials);
        offenders += stop[row] >= 0;
    }
    if (r) {
        r->loss = 0.0;
        r->offenders = offenders;
        r->scores = trials;
    }
}

/* Update one touched row of n floats: W, its accumulator A, its gradient G (double sums), L2 weight l2. */
static void ref_update_row(const wl_model_options *o, float *W, float *A, const double *G, size_t n, float l2)
{
    for (size_t d = 0; d < n; ++d) {
        float g = (float)G[d];
        g = g + l2 * W[d];
        if (o->optimizer == WL_OPTIMIZER_SGD) {
            W[d] = W[d] - o->learning_rate * g;
        } else {
            A[d] = A[d] + g * g;
            W[d] = W[d] - o->learning_rate * g / sqrtf(A[d]);
        }
    }
}

/* L2 and the optimizer on every touched row of m's tables (the gradient sums GU, GV, Gb), then free the sums and
 * the touched marks. */
static void ref_step_finish(ref_model *m, double *GU, double *GV, double *Gb, unsigned char *tu, unsigned char *tv)
{
    const wl_model_options *o = &m->o;
    const size_t dim = o->dim;
    for (uint32_t u = 0; u < o->num_users; ++u)
        if (tu[u])
            ref_update_row(o, m->U + (size_t)u * dim, m->AU + (size_t)u * dim, GU + (size_t)u * dim, dim, o->l2_users);
    for (uint32_t x = 0; x < o->num_items; ++x) {
        if (!tv[x])
            continue;
        ref_update_row(o, m->V + (size_t)x * dim, m->AV + (size_t)x * dim, GV + (size_t)x * dim, dim, o->l2_items);
        if (o->item_bias)
            ref_update_row(o, m->b + x, m->Ab + x, Gb + x, 1, 0.0f);
    }
    free(GU);
    free(GV);
    free(Gb);
    free(tu);
    free(tv);
}

void ref_model_step(ref_model *m, const wl_loss_options *lo, size_t rows, const int32_t *users,
                    const int32_t *positives, size_t negatives, const int32_t *cands, wl_step_result *r, int64_t *stop)
{
    const wl_model_options *o = &m->o;
    const size_t dim = o->dim;
    const float scale = lo->reduction == WL_REDUCE_MEAN ? 1.0f / (float)rows : 1.0f;
    double *GU = calloc((size_t)o->num_users * dim + 1, sizeof(double));
    double *GV = calloc((size_t)o->num_items * dim + 1, sizeof(double));
    double *Gb = calloc((size_t)o->num_items + 1, sizeof(double));
    unsigned char *tu = calloc((size_t)o->num_users + 1, 1), *tv = calloc((size_t)o->num_items + 1, 1);
    if (!GU || !GV || !Gb || !tu || !tv) {
        fprintf(stderr, "reference: out of memory\n");
        abort();
    }

    double sum = 0.0;
    uint64_t offenders = 0, trials = 0;
    for (size_t row = 0; row < rows; ++row) {
        const int32_t u = users[row], i = positives[row];
        const int32_t *c = cands + row * negatives;
        const int64_t j = ref_scan(m, lo->margin, u, i, negatives, c, &trials);
        if (stop)
            stop[row] = j;
        if (j < 0)
            continue;
        offenders++;
        const int32_t x = c[j];
        const float w = (float)ref_rank_weight(lo->num_labels, (uint64_t)j + 1, lo->weighting);
        const float si = ref_model_score(m, u, i), sx = ref_model_score(m, u, x);
        const float row_loss = w * ((lo->margin - si) + sx);
        sum += (double)row_loss;
        const float g = w * scale;
        const float *pu = m->U + (size_t)u * dim, *pi = m->V + (size_t)i * dim, *px = m->V + (size_t)x * dim;
        for (size_t d = 0; d < dim; ++d) {
            const float tU = g * (px[d] - pi[d]);
            const float tV = g * pu[d];
            GU[(size_t)u * dim + d] += (double)tU;
            GV[(size_t)i * dim + d] -= (double)tV;
            GV[(size_t)x * dim + d] += (double)tV;
        }
        if (o->item_bias) {
            Gb[i] -= (double)g;
            Gb[x] += (double)g;
        }
        tu[u] = 1;
        tv[i] = 1;
        tv[x] = 1;
    }

    /* every gradient term was computed from the tables as they were; now update */
    ref_step_finish(m, GU, GV, Gb, tu, tv);
    if (r) {
        r->loss = sum * (double)scale;
        r->offenders = offenders;
        r->scores = trials;
    }
}

/* ------------------------------------------------------------ the hybrid model */

void ref_represent(const ref_features *f, size_t rows, uint32_t dim, const float *table, float *out)
{
    for (size_t r = 0; r < rows; ++r) {
        for (uint32_t d = 0; d < dim; ++d) {
            float s = 0.0f;
            if (!f->ptr) {
                s = table[r * dim + d];
            } else {
                for (uint64_t k = f->ptr[r]; k < f->ptr[r + 1]; ++k) {
                    const float t = f->w[k] * table[(size_t)f->idx[k] * dim + d];
                    s = k == f->ptr[r] ? t : s + t;
                }
            }
            out[r * dim + d] = s;
        }
    }
}

/* Add t times each feature's weight of row to G (element d of rows of n), and mark the features touched. */
static void ref_feature_add(const ref_features *f, int32_t row, size_t n, size_t d, double t, double *G,
                            unsigned char *touched)
{
    if (!f->ptr) {
        G[(size_t)row * n + d] += t;
        touched[row] = 1;
        return;
    }
    for (uint64_t k = f->ptr[row]; k < f->ptr[row + 1]; ++k) {
        G[(size_t)f->idx[k] * n + d] += (double)(f->w[k] * (float)t);
        touched[f->idx[k]] = 1;
    }
}

void ref_feature_step(ref_model *m, uint32_t num_users, uint32_t num_items, const ref_features *uf,
                      const ref_features *vf, const wl_loss_options *lo, size_t rows, const int32_t *users,
                      const int32_t *positives, size_t negatives, const int32_t *cands, const float *sw,
                      wl_step_result *r, int64_t *stop)
{
    const wl_model_options *o = &m->o; /* num_users, num_items: the tables' rows */
    const size_t dim = o->dim;
    ref_model rep;
    memset(&rep, 0, sizeof rep);
    rep.o = *o;
    rep.o.num_users = num_users;
    rep.o.num_items = num_items;
    rep.U = ref_alloc((size_t)num_users * dim * sizeof(float) + 1);
    rep.V = ref_alloc((size_t)num_items * dim * sizeof(float) + 1);
    rep.b = ref_alloc((size_t)num_items * sizeof(float) + 1);
    ref_represent(uf, num_users, o->dim, m->U, rep.U);
    ref_represent(vf, num_items, o->dim, m->V, rep.V);
    ref_represent(vf, num_items, 1, m->b, rep.b);
    const float scale = lo->reduction == WL_REDUCE_MEAN ? 1.0f / (float)rows : 1.0f;
    double *GU = calloc((size_t)o->num_users * dim + 1, sizeof(double));
    double *GV = calloc((size_t)o->num_items * dim + 1, sizeof(double));
    double *Gb = calloc((size_t)o->num_items + 1, sizeof(double));
    unsigned char *tu = calloc((size_t)o->num_users + 1, 1), *tv = calloc((size_t)o->num_items + 1, 1);
    if (!GU || !GV || !Gb || !tu || !tv) {
        fprintf(stderr, "reference: out of memory\n");
        abort();
    }
    double sum = 0.0;
    uint64_t offenders = 0, trials = 0;
    for (size_t row = 0; row < rows; ++row) {
        const int32_t u = users[row], i = positives[row];
        const int32_t *c = cands + row * negatives;
        const int64_t j = ref_scan(&rep, lo->margin, u, i, negatives, c, &trials);
        if (stop)
            stop[row] = j;
        if (j < 0)
            continue;
        offenders++;
        const int32_t x = c[j];
        const float weight = sw ? sw[row] : 1.0f;
        const float w = (float)ref_rank_weight(lo->num_labels, (uint64_t)j + 1, lo->weighting) * weight;
        const float si = ref_model_score(&rep, u, i), sx = ref_model_score(&rep, u, x);
        sum += (double)(w * ((lo->margin - si) + sx));
        if (weight == 0.0f)
            continue;
        const float g = w * scale;
        const float *pu = rep.U + (size_t)u * dim, *pi = rep.V + (size_t)i * dim, *px = rep.V + (size_t)x * dim;
        for (size_t d = 0; d < dim; ++d) {
            const float tU = g * (px[d] - pi[d]);
            const float tV = g * pu[d];
            ref_feature_add(uf, u, dim, d, (double)tU, GU, tu);
            ref_feature_add(vf, i, dim, d, -(double)tV, GV, tv);
            ref_feature_add(vf, x, dim, d, (double)tV, GV, tv);
        }
        if (o->item_bias) {
            ref_feature_add(vf, i, 1, 0, -(double)g, Gb, tv);
            ref_feature_add(vf, x, 1, 0, (double)g, Gb, tv);
        }
    }
    ref_step_finish(m, GU, GV, Gb, tu, tv);
    if (r) {
        r->loss = sum * (double)scale;
        r->offenders = offenders;
        r->scores = trials;
    }
    free(rep.U);
    free(rep.V);
    free(rep.b);
}

static double ref_score_double(const ref_model *m, int32_t u, int32_t x)
{
    const uint32_t dim = m->o.dim;
    double s = 0.0;
    for (uint32_t d = 0; d < dim; ++d)
        s += (double)m->U[(size_t)u * dim + d] * (double)m->V[(size_t)x * dim + d];
    return s + (double)m->b[x];
}

double ref_model_fixed_loss(const ref_model *m, const wl_loss_options *lo, size_t rows, const int32_t *users,
                            const int32_t *positives, size_t negatives, const int32_t *cands, const int64_t *stop)
{
    const double scale = lo->reduction == WL_REDUCE_MEAN ? (double)(1.0f / (float)rows) : 1.0;
    double sum = 0.0;
    for (size_t row = 0; row < rows; ++row) {
        if (stop[row] < 0)
            continue;
        const int32_t u = users[row], i = positives[row], x = cands[row * negatives + (size_t)stop[row]];
        const double w = (double)(float)ref_rank_weight(lo->num_labels, (uint64_t)stop[row] + 1, lo->weighting);
        sum += w * (((double)lo->margin - ref_score_double(m, u, i)) + ref_score_double(m, u, x));
    }
    return sum * scale;
}

typedef struct ref_scored {
    float s;
    int32_t x;
} ref_scored;

/* Best first; ties to the lower item index. */
static int ref_scored_cmp(const void *a, const void *b)
{
    const ref_scored *p = a, *q = b;
    if (p->s != q->s)
        return p->s > q->s ? -1 : 1;
    return (p->x > q->x) - (p->x < q->x);
}

void ref_model_recommend(const ref_model *m, size_t n, const int32_t *users, size_t k, int exclude_known,
                         int32_t *items, float *scores)
{
    ref_scored *all = ref_alloc(m->o.num_items * sizeof *all);
    for (size_t q = 0; q < n; ++q) {
        const int32_t u = users[q];
        size_t count = 0;
        for (uint32_t x = 0; x < m->o.num_items; ++x)
            if (!exclude_known || !ref_model_is_known(m, u, (int32_t)x))
                all[count++] = (ref_scored){ref_model_score(m, u, (int32_t)x), (int32_t)x};
        qsort(all, count, sizeof *all, ref_scored_cmp);
        for (size_t t = 0; t < k; ++t) {
            items[q * k + t] = t < count ? all[t].x : -1;
            if (scores)
                scores[q * k + t] = t < count ? all[t].s : -INFINITY;
        }
    }
    free(all);
}

void ref_model_rank(const ref_model *m, size_t n, const int32_t *users, const int32_t *items, int exclude_known,
                    uint32_t *ranks)
{
    for (size_t q = 0; q < n; ++q) {
        const int32_t u = users[q], i = items[q];
        const float si = ref_model_score(m, u, i);
        uint32_t count = 0;
        for (uint32_t x = 0; x < m->o.num_items; ++x) {
            if ((int32_t)x == i || (exclude_known && ref_model_is_known(m, u, (int32_t)x)))
                continue;
            if (ref_model_score(m, u, (int32_t)x) > si)
                count++;
        }
        ranks[q] = count;
    }
}

/* ------------------------------------------------------------ evaluation */

static int compare_u32(const void *a, const void *b)
{
    const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

void ref_user_metrics(size_t n, const uint32_t *ranks, int64_t negatives, uint32_t k, wl_user_metrics *out)
{
    memset(out, 0, sizeof *out);
    if (n == 0)
        return;
    uint32_t *sorted = malloc(n * sizeof *sorted);
    if (!sorted)
        abort();
    memcpy(sorted, ranks, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, compare_u32);
    size_t hits = 0;
    for (size_t j = 0; j < n; ++j)
        hits += ranks[j] < k;
    out->held_out = (uint32_t)n;
    out->hits = (uint32_t)hits;
    out->best = sorted[0];
    out->precision_at_k = (double)hits / k;
    out->recall_at_k = (double)hits / (double)n;
    out->mrr = 1.0 / (1.0 + (double)sorted[0]);
    if (negatives <= 0) {
        out->auc = 0.5;
    } else {
        double sum = 0;
        for (size_t i = 0; i < n; ++i) {
            const double r = sorted[i] > i ? (double)(sorted[i] - i) : 0.0;
            sum += 1.0 - r / (double)negatives;
        }
        out->auc = sum / (double)n;
    }
    free(sorted);
}

void ref_model_evaluate(const ref_model *m, const uint64_t *indptr, const int32_t *items, uint32_t k, int exclude_known,
                        wl_metrics *out, wl_user_metrics *per_user)
{
    memset(out, 0, sizeof *out);
    out->k = k;
    double precision = 0, recall = 0, auc = 0, mrr = 0;
    for (uint32_t u = 0; u < m->o.num_users; ++u) {
        const size_t n = (size_t)(indptr[u + 1] - indptr[u]);
        wl_user_metrics one;
        memset(&one, 0, sizeof one);
        if (n) {
            uint32_t *ranks = malloc(n * sizeof *ranks);
            int32_t *users = malloc(n * sizeof *users);
            if (!ranks || !users)
                abort();
            for (size_t j = 0; j < n; ++j)
                users[j] = (int32_t)u;
            ref_model_rank(m, n, users, items + indptr[u], exclude_known, ranks);
            /* the items neither held out nor (if excluded) known */
            int64_t negatives = 0;
            for (uint32_t x = 0; x < m->o.num_items; ++x) {
                int held = 0;
                for (size_t j = 0; j < n; ++j)
                    held |= items[indptr[u] + j] == (int32_t)x;
                negatives += !held && !(exclude_known && ref_model_is_known(m, (int32_t)u, (int32_t)x));
            }
            ref_user_metrics(n, ranks, negatives, k, &one);
            precision += one.precision_at_k;
            recall += one.recall_at_k;
            auc += one.auc;
            mrr += one.mrr;
            out->users++;
            free(ranks);
            free(users);
        }
        if (per_user)
            per_user[u] = one;
    }
    if (out->users) {
        out->precision_at_k = precision / (double)out->users;
        out->recall_at_k = recall / (double)out->users;
        out->auc = auc / (double)out->users;
        out->mrr = mrr / (double)out->users;
    }
}
