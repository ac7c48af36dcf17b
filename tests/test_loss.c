/*
 * wl_loss against the C reference: a sweep over shapes, input regimes,
 * weightings, reductions and margins under both scan variants; NaN and Inf;
 * check_finite; and a finite-difference check of the gradients.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "reference.h"

#define LOSS_REL 1e-5
#define LOSS_ABS 1e-6

/* one context per launch plan (common.h): every case runs on each */
enum { VARIANTS = WLT_PLANS };
#define variant_names wlt_plan_names
static wl_context *ctxs[VARIANTS];
static char *cache_dir;

static int group_setup(void **state)
{
    (void)state;
    wlt_plan_contexts("loss", ctxs, &cache_dir);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    wlt_plan_contexts_free(ctxs, &cache_dir);
    return 0;
}

static const char *weighting_name(wl_weighting w) { return w == WL_WEIGHT_LOG ? "log" : "harmonic"; }

static const char *reduction_name(wl_reduction r)
{
    return r == WL_REDUCE_SUM ? "sum" : r == WL_REDUCE_MEAN ? "mean" : "none";
}

/* Output buffers for one call, sized for the largest case. */
typedef struct outputs {
    float *loss, *grad_pos, *grad_neg;
    int32_t *offender;
} outputs;

static void outputs_alloc(outputs *x, size_t rows, size_t negatives)
{
    x->loss = wlt_alloc((rows ? rows : 1) * sizeof(float));
    x->grad_pos = wlt_alloc(rows * sizeof(float));
    x->grad_neg = wlt_alloc(rows * negatives * sizeof(float));
    x->offender = wlt_alloc(rows * sizeof(int32_t));
}

static void outputs_free(outputs *x)
{
    free(x->loss);
    free(x->grad_pos);
    free(x->grad_neg);
    free(x->offender);
}

/*
 * Compare the library's outputs with the reference's: offenders equal,
 * gradients equal as values (NaN == NaN), the loss within LOSS_REL relative
 * plus LOSS_ABS. Returns 1 if they agree; otherwise prints what differs.
 */
static int same_results(const char *what, const wl_loss_options *o, size_t rows, size_t negatives, const outputs *got,
                        const outputs *want)
{
    const size_t nloss = o->reduction == WL_REDUCE_NONE ? rows : 1;
    for (size_t i = 0; i < nloss; ++i) {
        if (!wlt_close(got->loss[i], want->loss[i], LOSS_REL, LOSS_ABS)) {
            print_error("%s: loss[%zu] = %.9g, reference %.9g\n", what, i, (double)got->loss[i], (double)want->loss[i]);
            return 0;
        }
    }
    size_t i = wlt_first_i32_mismatch(got->offender, want->offender, rows);
    if (i < rows) {
        print_error("%s: offender[%zu] = %d, reference %d\n", what, i, (int)got->offender[i], (int)want->offender[i]);
        return 0;
    }
    i = wlt_first_value_mismatch(got->grad_pos, want->grad_pos, rows);
    if (i < rows) {
        print_error("%s: grad_pos[%zu] = %.9g, reference %.9g\n", what, i, (double)got->grad_pos[i],
                    (double)want->grad_pos[i]);
        return 0;
    }
    i = wlt_first_value_mismatch(got->grad_neg, want->grad_neg, rows * negatives);
    if (i < rows * negatives) {
        print_error("%s: grad_neg[%zu] (row %zu, index %zu) = %.9g, reference %.9g\n", what, i, i / negatives,
                    i % negatives, (double)got->grad_neg[i], (double)want->grad_neg[i]);
        return 0;
    }
    return 1;
}

/* Run one case on every scan variant and compare with the reference. */
static void check_case(const char *label, const wl_loss_options *o, size_t rows, size_t negatives, const float *pos,
                       const float *neg, outputs *got, outputs *want)
{
    ref_loss(o, rows, negatives, pos, neg, want->loss, want->grad_pos, want->grad_neg, want->offender);
    for (int v = 0; v < VARIANTS; ++v) {
        char what[320];
        snprintf(what, sizeof what, "%s [scan %s, rows %zu, negatives %zu, num_labels %llu, margin %g, %s, %s]", label,
                 variant_names[v], rows, negatives, (unsigned long long)o->num_labels, (double)o->margin,
                 weighting_name(o->weighting), reduction_name(o->reduction));
        wlt_fill_sentinel(got->loss, o->reduction == WL_REDUCE_NONE ? rows : 1);
        wlt_fill_sentinel(got->grad_pos, rows);
        wlt_fill_sentinel(got->grad_neg, rows * negatives);
        wlt_fill_sentinel_i32(got->offender, rows);
        const wl_status s = wl_loss(ctxs[v], o, rows, negatives, pos, neg, got->loss, got->grad_pos, got->grad_neg,
                                    got->offender);
        if (s != WL_SUCCESS)
            fail_msg("%s: wl_loss: %s: %s", what, wl_status_string(s), wl_context_last_error(ctxs[v]));
        if (!same_results(what, o, rows, negatives, got, want))
            fail_msg("%s: differs from the reference", what);
    }
}

static const size_t sweep_rows[] = {0, 1, 3, 1000, 4097};
static const size_t sweep_negatives[] = {0, 1, 2, 7, 64, 1000, 1025};
static const float sweep_margins[] = {1.0f, 0.5f, 0.0f};
static const uint64_t sweep_labels[] = {100, 1000000, UINT64_C(1) << 40};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void test_sweep(void **state)
{
    (void)state;
    const size_t max_rows = 4097, max_neg = 1025;
    float *pos = wlt_alloc(max_rows * sizeof(float));
    float *neg = wlt_alloc(max_rows * max_neg * sizeof(float));
    outputs got, want;
    outputs_alloc(&got, max_rows, max_neg);
    outputs_alloc(&want, max_rows, max_neg);
    size_t cases = 0, clamped_rows = 0;

    for (size_t ri = 0; ri < COUNT(sweep_rows); ++ri) {
        for (size_t ni = 0; ni < COUNT(sweep_negatives); ++ni) {
            for (size_t mi = 0; mi < COUNT(sweep_margins); ++mi) {
                for (int regime = REF_EARLY; regime <= REF_NONE; ++regime) {
                    const size_t rows = sweep_rows[ri], negatives = sweep_negatives[ni];
                    const uint64_t seed = ((ri * 16 + ni) * 4 + mi) * 4 + (uint64_t)regime + 1;
                    ref_make_inputs(seed, (ref_regime)regime, rows, negatives, sweep_margins[mi], pos, neg);
                    for (int wi = 0; wi < 2; ++wi) {
                        for (int red = 0; red < 3; ++red) {
                            wl_loss_options o;
                            wl_loss_options_default(&o, sweep_labels[(ri + ni + mi + (size_t)wi + (size_t)red) % 3]);
                            o.margin = sweep_margins[mi];
                            o.weighting = (wl_weighting)wi;
                            o.reduction = (wl_reduction)red;
                            char label[64];
                            snprintf(label, sizeof label, "sweep %s", ref_regime_name((ref_regime)regime));
                            check_case(label, &o, rows, negatives, pos, neg, &got, &want);
                            ++cases;
                            for (size_t b = 0; b < rows; ++b)
                                clamped_rows += want.offender[b] >= 0 &&
                                                (uint64_t)want.offender[b] + 1 > o.num_labels - 1;
                        }
                    }
                }
            }
        }
    }
    printf("sweep: %zu cases on %d launch plans, %zu rows with r = 0\n", cases, VARIANTS, clamped_rows);
    assert_true(clamped_rows > 0); /* the r = 0 clamp was exercised */
    outputs_free(&got);
    outputs_free(&want);
    free(pos);
    free(neg);
}

/* A first offender at every index, around the vector and work-group widths. */
static void test_offender_every_position(void **state)
{
    (void)state;
    static const size_t widths[] = {1,  2,  3,   4,   5,   7,   8,   9,   15,  16,  17,  31,   32,   33,  63,
                                    64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 513, 1023, 1024, 1025};
    for (size_t wi = 0; wi < COUNT(widths); ++wi) {
        const size_t negatives = widths[wi], rows = negatives + 1;
        float *pos = wlt_alloc(rows * sizeof(float));
        float *neg = wlt_alloc(rows * negatives * sizeof(float));
        outputs got, want;
        outputs_alloc(&got, rows, negatives);
        outputs_alloc(&want, rows, negatives);
        /* row b (< negatives) has its first offender at b, the last row has none */
        for (size_t b = 0; b < rows; ++b) {
            pos[b] = (float)(b % 5) - 2.0f;
            for (size_t j = 0; j < negatives; ++j)
                neg[b * negatives + j] = j < b ? pos[b] - 1.5f : (j == b ? pos[b] : pos[b] - 0.25f * (float)(j % 9));
        }
        wl_loss_options o;
        wl_loss_options_default(&o, 100000);
        o.reduction = (wl_reduction)(wi % 3);
        check_case("offender at every index", &o, rows, negatives, pos, neg, &got, &want);
        for (size_t b = 0; b < rows; ++b)
            assert_int_equal(want.offender[b], b < negatives ? (int32_t)b : -1);
        outputs_free(&got);
        outputs_free(&want);
        free(pos);
        free(neg);
    }
}

/* Many rows, to cross any chunking of the launch by rows. */
static void test_many_rows(void **state)
{
    (void)state;
    const size_t rows = 150001, negatives = 3;
    float *pos = wlt_alloc(rows * sizeof(float));
    float *neg = wlt_alloc(rows * negatives * sizeof(float));
    outputs got, want;
    outputs_alloc(&got, rows, negatives);
    outputs_alloc(&want, rows, negatives);
    ref_make_inputs(777, REF_EARLY, rows, negatives, 1.0f, pos, neg);
    wl_loss_options o;
    wl_loss_options_default(&o, 5000);
    for (int red = 0; red < 3; ++red) {
        o.reduction = (wl_reduction)red;
        check_case("many rows", &o, rows, negatives, pos, neg, &got, &want);
    }
    outputs_free(&got);
    outputs_free(&want);
    free(pos);
    free(neg);
}

/* The harmonic weight around the switch from direct summation (r <= 10^7) to the expansion. */
static void test_harmonic_switch(void **state)
{
    (void)state;
    /* num_labels - 1 = 2 * 10^7 + 2: r = 20000002, 10000001, 6666667, 5000000 for j = 0..3 */
    const uint64_t num_labels = 20000003;
    enum { ROWS = 4, NEG = 4 };
    float pos[ROWS], neg[ROWS * NEG];
    for (int b = 0; b < ROWS; ++b) {
        pos[b] = 0.0f;
        for (int j = 0; j < NEG; ++j)
            neg[b * NEG + j] = j < b ? -2.0f : 0.5f;
    }
    outputs got, want;
    outputs_alloc(&got, ROWS, NEG);
    outputs_alloc(&want, ROWS, NEG);
    wl_loss_options o;
    wl_loss_options_default(&o, num_labels);
    o.weighting = WL_WEIGHT_HARMONIC;
    o.reduction = WL_REDUCE_NONE;
    check_case("harmonic switch", &o, ROWS, NEG, pos, neg, &got, &want);
    /* and the same weights with num_labels - 1 = 10^7 exactly (r = 10^7 is summed) */
    o.num_labels = 10000001;
    check_case("harmonic switch", &o, ROWS, NEG, pos, neg, &got, &want);
    outputs_free(&got);
    outputs_free(&want);
}

/* Optional outputs left NULL give the same loss; every output alone is right. */
static void test_null_outputs(void **state)
{
    (void)state;
    const size_t rows = 37, negatives = 19;
    float pos[37], neg[37 * 19];
    ref_make_inputs(5, REF_DEEP, rows, negatives, 1.0f, pos, neg);
    outputs want;
    outputs_alloc(&want, rows, negatives);
    for (int red = 0; red < 3; ++red) {
        wl_loss_options o;
        wl_loss_options_default(&o, 1000);
        o.reduction = (wl_reduction)red;
        ref_loss(&o, rows, negatives, pos, neg, want.loss, want.grad_pos, want.grad_neg, want.offender);
        const size_t nloss = o.reduction == WL_REDUCE_NONE ? rows : 1;
        for (int v = 0; v < VARIANTS; ++v) {
            for (int mask = 0; mask < 8; ++mask) {
                float loss[37], grad_pos[37], grad_neg[37 * 19];
                int32_t offender[37];
                wlt_fill_sentinel(grad_pos, rows);
                wlt_fill_sentinel(grad_neg, rows * negatives);
                wlt_fill_sentinel_i32(offender, rows);
                assert_int_equal(wl_loss(ctxs[v], &o, rows, negatives, pos, neg, loss, (mask & 1) ? grad_pos : NULL,
                                         (mask & 2) ? grad_neg : NULL, (mask & 4) ? offender : NULL),
                                 WL_SUCCESS);
                for (size_t i = 0; i < nloss; ++i)
                    assert_true(wlt_close(loss[i], want.loss[i], LOSS_REL, LOSS_ABS));
                if (mask & 1)
                    assert_int_equal(wlt_first_value_mismatch(grad_pos, want.grad_pos, rows), rows);
                else
                    assert_true(wlt_is_sentinel(grad_pos, rows));
                if (mask & 2)
                    assert_int_equal(wlt_first_value_mismatch(grad_neg, want.grad_neg, rows * negatives),
                                     rows * negatives);
                else
                    assert_true(wlt_is_sentinel(grad_neg, rows * negatives));
                if (mask & 4)
                    assert_int_equal(wlt_first_i32_mismatch(offender, want.offender, rows), rows);
                else
                    assert_true(wlt_is_sentinel_i32(offender, rows));
            }
        }
    }
    outputs_free(&want);
}

/* The same call twice gives bitwise the same loss (the sum has a fixed order). */
static void test_deterministic(void **state)
{
    (void)state;
    const size_t rows = 4097, negatives = 64;
    float *pos = wlt_alloc(rows * sizeof(float));
    float *neg = wlt_alloc(rows * negatives * sizeof(float));
    ref_make_inputs(99, REF_DEEP, rows, negatives, 1.0f, pos, neg);
    wl_loss_options o;
    wl_loss_options_default(&o, 1000000);
    for (int v = 0; v < VARIANTS; ++v) {
        for (int red = 0; red < 2; ++red) {
            o.reduction = (wl_reduction)red;
            float first = NAN, again = NAN;
            assert_int_equal(wl_loss(ctxs[v], &o, rows, negatives, pos, neg, &first, NULL, NULL, NULL), WL_SUCCESS);
            for (int k = 0; k < 3; ++k) {
                assert_int_equal(wl_loss(ctxs[v], &o, rows, negatives, pos, neg, &again, NULL, NULL, NULL), WL_SUCCESS);
                assert_memory_equal(&first, &again, sizeof first);
            }
        }
    }
    free(pos);
    free(neg);
}

/* --------------------------------------------------------------- NaN and Inf */

/* Rows crafted around NaN and Inf; every one checked against the reference. */
static void test_nan_inf(void **state)
{
    (void)state;
    enum { ROWS = 9, NEG = 6 };
    const float nan = NAN, inf = INFINITY;
    const float pos[ROWS] = {
        nan,  /* NaN positive: stops at 0, NaN row */
        0.0f, /* NaN negative before the offender: stops at the NaN */
        0.0f, /* NaN negative after the offender: finite */
        inf,  /* +inf positive, +inf negative: inf - inf = NaN */
        0.0f, /* +inf negative: offender, +inf loss */
        0.0f, /* -inf negatives never stop the scan */
        -inf, /* -inf positive: offender at 0, +inf loss */
        1.0f, /* an ordinary row */
        inf,  /* +inf positive with finite negatives: never stops */
    };
    const float neg[ROWS * NEG] = {
        0.0f,  0.0f,  0.0f,  0.0f,  0.0f,  0.0f,  /* */
        -3.0f, -3.0f, nan,   -3.0f, 2.0f,  -3.0f, /* stops at 2 */
        -3.0f, -3.0f, 2.0f,  nan,   nan,   -3.0f, /* offender 2 */
        -3.0f, inf,   -3.0f, 2.0f,  -3.0f, -3.0f, /* stops at 1 (NaN) */
        -3.0f, -3.0f, -3.0f, inf,   -3.0f, -3.0f, /* offender 3 */
        -inf,  -inf,  -inf,  -inf,  -inf,  -inf,  /* none */
        -3.0f, -3.0f, -3.0f, -3.0f, -3.0f, -3.0f, /* offender 0 */
        -3.0f, 0.5f,  -3.0f, -3.0f, -3.0f, -3.0f, /* offender 1 */
        1e30f, 3e38f, -3.0f, 5.0f,  -3.0f, -3.0f, /* none */
    };
    const int32_t want_offender[ROWS] = {0, 2, 2, 1, 3, -1, 0, 1, -1};
    const int nan_row[ROWS] = {1, 1, 0, 1, 0, 0, 0, 0, 0};
    outputs got, want;
    outputs_alloc(&got, ROWS, NEG);
    outputs_alloc(&want, ROWS, NEG);
    for (int red = 0; red < 3; ++red) {
        wl_loss_options o;
        wl_loss_options_default(&o, 1000);
        o.reduction = (wl_reduction)red;
        check_case("NaN and Inf", &o, ROWS, NEG, pos, neg, &got, &want);
        for (int b = 0; b < ROWS; ++b) {
            assert_int_equal(got.offender[b], want_offender[b]);
            if (red == WL_REDUCE_NONE)
                assert_int_equal(isnan(got.loss[b]) != 0, nan_row[b]);
            assert_int_equal(isnan(got.grad_pos[b]) != 0, nan_row[b]);
            if (want_offender[b] >= 0)
                assert_int_equal(isnan(got.grad_neg[b * NEG + want_offender[b]]) != 0, nan_row[b]);
        }
        if (red == WL_REDUCE_NONE) {
            assert_true(isinf(got.loss[4]) && got.loss[4] > 0);
            assert_true(isinf(got.loss[6]) && got.loss[6] > 0);
            assert_true(got.loss[5] == 0.0f && got.loss[8] == 0.0f);
            assert_true(isfinite(got.loss[2]) && got.loss[2] > 0);
        } else {
            assert_true(isnan(got.loss[0])); /* NaN is never hidden */
        }
    }

    /* Only a NaN after the offender: the whole loss is finite. */
    wl_loss_options o;
    wl_loss_options_default(&o, 1000);
    for (int v = 0; v < VARIANTS; ++v) {
        float loss = NAN;
        int32_t offender = 7;
        assert_int_equal(wl_loss(ctxs[v], &o, 1, NEG, pos + 2, neg + 2 * NEG, &loss, NULL, NULL, &offender),
                         WL_SUCCESS);
        assert_true(isfinite(loss) && loss > 0.0f);
        assert_int_equal(offender, 2);
    }

    /* A NaN positive with no negatives: a NaN row, offender -1. */
    for (int v = 0; v < VARIANTS; ++v) {
        const float p[2] = {1.0f, nan};
        float loss[2] = {5.0f, 5.0f}, grad_pos[2];
        int32_t offender[2] = {7, 7};
        o.reduction = WL_REDUCE_NONE;
        assert_int_equal(wl_loss(ctxs[v], &o, 2, 0, p, NULL, loss, grad_pos, NULL, offender), WL_SUCCESS);
        assert_true(loss[0] == 0.0f);
        assert_true(isnan(loss[1]));
        assert_int_equal(offender[0], -1);
        assert_int_equal(offender[1], -1);
        assert_true(grad_pos[0] == 0.0f);
        o.reduction = WL_REDUCE_SUM;
        float sum = 0.0f;
        assert_int_equal(wl_loss(ctxs[v], &o, 2, 0, p, NULL, &sum, NULL, NULL, NULL), WL_SUCCESS);
        assert_true(isnan(sum));
    }
    outputs_free(&got);
    outputs_free(&want);
}

/* check_finite: a NaN or Inf anywhere fails with the first bad row named, and nothing is written. */
static void test_check_finite(void **state)
{
    (void)state;
    const size_t rows = 300, negatives = 40;
    float *pos = wlt_alloc(rows * sizeof(float));
    float *neg = wlt_alloc(rows * negatives * sizeof(float));
    outputs got, want;
    outputs_alloc(&got, rows, negatives);
    outputs_alloc(&want, rows, negatives);

    struct bad {
        int in_pos;
        size_t row, index;
        float value;
        size_t first_row; /* the row the error must name */
    } cases[] = {
        {0, 137, 17, NAN, 137}, {1, 42, 0, INFINITY, 42}, {0, 299, 39, -INFINITY, 299},
        {1, 0, 0, NAN, 0},      {0, 251, 0, NAN, 251},
    };
    for (int v = 0; v < VARIANTS; ++v) {
        for (int red = 0; red < 3; ++red) {
            for (size_t k = 0; k < COUNT(cases); ++k) {
                ref_make_inputs(11, REF_DEEP, rows, negatives, 1.0f, pos, neg);
                if (cases[k].in_pos)
                    pos[cases[k].row] = cases[k].value;
                else
                    neg[cases[k].row * negatives + cases[k].index] = cases[k].value;
                /* a second, later bad value must not be the one named */
                if (cases[k].first_row + 3 < rows)
                    pos[cases[k].first_row + 3] = NAN;
                wl_loss_options o;
                wl_loss_options_default(&o, 1000);
                o.reduction = (wl_reduction)red;
                o.check_finite = 1;
                const size_t nloss = o.reduction == WL_REDUCE_NONE ? rows : 1;
                wlt_fill_sentinel(got.loss, nloss);
                wlt_fill_sentinel(got.grad_pos, rows);
                wlt_fill_sentinel(got.grad_neg, rows * negatives);
                wlt_fill_sentinel_i32(got.offender, rows);
                const wl_status s = wl_loss(ctxs[v], &o, rows, negatives, pos, neg, got.loss, got.grad_pos,
                                            got.grad_neg, got.offender);
                assert_int_equal(s, WL_ERROR_NONFINITE);
                const char *msg = wl_context_last_error(ctxs[v]);
                assert_non_null(msg);
                char number[32];
                snprintf(number, sizeof number, "%zu", cases[k].first_row);
                if (!strstr(msg, number))
                    fail_msg("check_finite: error \"%s\" does not name row %s", msg, number);
                assert_true(wlt_is_sentinel(got.loss, nloss));
                assert_true(wlt_is_sentinel(got.grad_pos, rows));
                assert_true(wlt_is_sentinel(got.grad_neg, rows * negatives));
                assert_true(wlt_is_sentinel_i32(got.offender, rows));
            }
        }
    }

    /* finite inputs with check_finite: the ordinary results */
    ref_make_inputs(12, REF_EARLY, rows, negatives, 1.0f, pos, neg);
    wl_loss_options o;
    wl_loss_options_default(&o, 1000);
    o.check_finite = 1;
    check_case("check_finite on finite input", &o, rows, negatives, pos, neg, &got, &want);

    /* without check_finite the same NaN is no error */
    pos[5] = NAN;
    o.check_finite = 0;
    check_case("NaN without check_finite", &o, rows, negatives, pos, neg, &got, &want);
    assert_true(isnan(got.loss[0]));

    outputs_free(&got);
    outputs_free(&want);
    free(pos);
    free(neg);
}

/* ------------------------------------------------------ finite differences */

static float loss_of(wl_context *c, const wl_loss_options *o, size_t rows, size_t negatives, const float *pos,
                     const float *neg)
{
    float loss = NAN;
    const wl_status s = wl_loss(c, o, rows, negatives, pos, neg, &loss, NULL, NULL, NULL);
    if (s != WL_SUCCESS)
        fail_msg("wl_loss: %s: %s", wl_status_string(s), wl_context_last_error(c));
    return loss;
}

/*
 * The loss is piecewise linear in the scores, so a central difference away
 * from the thresholds gives the gradient up to rounding. Scores stay at least
 * 0.5 away from (p - margin) so a step of 1e-2 never changes an offender.
 */
static void test_finite_differences(void **state)
{
    (void)state;
    enum { ROWS = 6, NEG = 10 };
    const float h = 1e-2f, margin = 1.0f;
    float pos[ROWS], neg[ROWS * NEG];
    const int target[ROWS] = {0, 3, 9, -1, 5, 1};
    ref_rng g;
    ref_rng_seed(&g, 2024);
    for (int b = 0; b < ROWS; ++b) {
        pos[b] = (float)ref_rng_uniform(&g, -2.0, 2.0);
        for (int j = 0; j < NEG; ++j) {
            const double gap = ref_rng_uniform(&g, 0.5, 2.0);
            double n;
            if (target[b] < 0 || j < target[b])
                n = pos[b] - margin - gap;
            else if (j == target[b])
                n = pos[b] - margin + gap;
            else
                n = pos[b] - margin + (ref_rng_next(&g) & 1 ? gap : -gap);
            neg[b * NEG + j] = (float)n;
        }
    }
    for (int v = 0; v < VARIANTS; ++v) {
        for (int red = 0; red < 2; ++red) { /* SUM and MEAN: the scalar loss */
            for (int wi = 0; wi < 2; ++wi) {
                wl_loss_options o;
                wl_loss_options_default(&o, 1000);
                o.margin = margin;
                o.reduction = (wl_reduction)red;
                o.weighting = (wl_weighting)wi;
                float loss, grad_pos[ROWS], grad_neg[ROWS * NEG];
                int32_t offender[ROWS];
                assert_int_equal(wl_loss(ctxs[v], &o, ROWS, NEG, pos, neg, &loss, grad_pos, grad_neg, offender),
                                 WL_SUCCESS);
                for (int b = 0; b < ROWS; ++b)
                    assert_int_equal(offender[b], target[b]);

                float p[ROWS], n[ROWS * NEG];
                memcpy(p, pos, sizeof p);
                memcpy(n, neg, sizeof n);
                for (int b = 0; b < ROWS; ++b) {
                    p[b] = pos[b] + h;
                    const float up = loss_of(ctxs[v], &o, ROWS, NEG, p, n);
                    p[b] = pos[b] - h;
                    const float down = loss_of(ctxs[v], &o, ROWS, NEG, p, n);
                    p[b] = pos[b];
                    const double fd = ((double)up - (double)down) / (double)((pos[b] + h) - (pos[b] - h));
                    if (fabs(fd - (double)grad_pos[b]) > 1e-2 * fabs((double)grad_pos[b]) + 1e-4)
                        fail_msg("d loss / d pos[%d]: finite difference %.6g, gradient %.6g", b, fd,
                                 (double)grad_pos[b]);
                    for (int j = 0; j < NEG; ++j) {
                        const size_t i = (size_t)b * NEG + (size_t)j;
                        n[i] = neg[i] + h;
                        const float nup = loss_of(ctxs[v], &o, ROWS, NEG, p, n);
                        n[i] = neg[i] - h;
                        const float ndown = loss_of(ctxs[v], &o, ROWS, NEG, p, n);
                        n[i] = neg[i];
                        const double nfd = ((double)nup - (double)ndown) / (double)((neg[i] + h) - (neg[i] - h));
                        if (fabs(nfd - (double)grad_neg[i]) > 1e-2 * fabs((double)grad_neg[i]) + 1e-4)
                            fail_msg("d loss / d neg[%d][%d]: finite difference %.6g, gradient %.6g", b, j, nfd,
                                     (double)grad_neg[i]);
                        if (j != target[b]) {
                            /* not the offender: the loss does not move at all */
                            assert_memory_equal(&nup, &loss, sizeof loss);
                            assert_memory_equal(&ndown, &loss, sizeof loss);
                            assert_true(grad_neg[i] == 0.0f);
                        } else {
                            assert_true(grad_neg[i] > 0.0f);
                        }
                    }
                }
            }
        }
    }
}

/* The plans run what they say, and wl_device_launch_plan says what a
 * context on the device runs, $WARPLOSS_SCAN included. */
static void test_launch_plan(void **state)
{
    (void)state;
    const char *want_scan[VARIANTS] = {"row", "group", "group", "group"};
    for (int v = 0; v < VARIANTS; ++v)
        assert_string_equal(wl_context_scan_variant(ctxs[v]), want_scan[v]);

    const char *old = getenv("WARPLOSS_SCAN");
    char *saved = old ? strdup(old) : NULL;
    const char *forced[2] = {"row", "group"};
    for (int v = 0; v < 2; ++v) {
        setenv("WARPLOSS_SCAN", forced[v], 1);
        wl_context *c = wlt_context_or_skip(cache_dir);
        const char *variant = NULL;
        int width = -1;
        assert_int_equal(wl_device_launch_plan(wl_context_device(c), &variant, &width), WL_SUCCESS);
        assert_non_null(variant);
        assert_string_equal(variant, forced[v]);
        assert_string_equal(variant, wl_context_scan_variant(c));
        assert_true(width >= 1);
        assert_int_equal(wl_device_launch_plan(wl_context_device(c), NULL, NULL), WL_SUCCESS);
        assert_true(wlt_results_ok(c, 64, 40, 5));
        wl_context_destroy(c);
    }
    /* unforced: the plan and a fresh context agree */
    unsetenv("WARPLOSS_SCAN");
    wl_context *c = wlt_context_or_skip(cache_dir);
    const char *variant = NULL;
    assert_int_equal(wl_device_launch_plan(wl_context_device(c), &variant, NULL), WL_SUCCESS);
    assert_string_equal(variant, wl_context_scan_variant(c));
    wl_context_destroy(c);
    if (saved) {
        setenv("WARPLOSS_SCAN", saved, 1);
        free(saved);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_offender_every_position),
        cmocka_unit_test(test_many_rows),
        cmocka_unit_test(test_harmonic_switch),
        cmocka_unit_test(test_null_outputs),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_nan_inf),
        cmocka_unit_test(test_check_finite),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_launch_plan),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
