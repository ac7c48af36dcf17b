/*
 * The C reference for the WARP loss (see reference.h). Written for
 * obviousness, not speed: every row is a plain loop over its negatives, in
 * the float32 operations README.md's "Semantics" prescribes.
 */
#include "reference.h"

#include <math.h>
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

void ref_loss(const wl_loss_options *o, size_t rows, size_t negatives, const float *pos, const float *neg,
              float *loss, float *grad_pos, float *grad_neg, int32_t *offender)
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
    case REF_EARLY:
        return "early";
    case REF_DEEP:
        return "deep";
    case REF_NONE:
        return "none";
    }
    return "?";
}

void ref_rng_seed(ref_rng *g, uint64_t seed)
{
    g->state = seed;
}

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
            case REF_EARLY:
                n[j] = around(&g, margin, p, grid);
                break;
            case REF_DEEP:
                n[j] = j < target ? below(&g, margin, p, grid)
                                  : (j == target ? above(&g, margin, p, grid) : around(&g, margin, p, grid));
                break;
            case REF_NONE:
                n[j] = below(&g, margin, p, grid);
                break;
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
