/*
 * The seed package's README example and its own notebook tests, in C:
 * first-offender search on small matrices, the ground-truth formula, and
 * the all-below-the-margin case.
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

static wl_context *ctx;
static char *cache_dir;

static int group_setup(void **state)
{
    (void)state;
    ctx = wlt_temp_context("seed", &cache_dir);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    wl_context_destroy(ctx);
    wlt_free_temp_dir(&cache_dir);
    return 0;
}

/* The seed README: num_labels 100, three rows of two negatives. */
static void test_readme_example(void **state)
{
    (void)state;
    const float pos[3] = {-4.9562f, -1.6886f, 3.3984f};
    const float neg[6] = {1.0491f, 4.9357f, -2.1289f, 0.4496f, 3.4541f, 0.0931f};
    wl_loss_options o;
    wl_loss_options_default(&o, 100);
    float loss = NAN, grad_pos[3], grad_neg[6];
    int32_t offender[3];
    assert_int_equal(wl_loss(ctx, &o, 3, 2, pos, neg, &loss, grad_pos, grad_neg, offender), WL_SUCCESS);
    assert_true(fabs((double)loss - 39.6131) <= 1e-4);
    for (int b = 0; b < 3; ++b)
        assert_int_equal(offender[b], 0);

    int nonzero_pos = 0, nonzero_neg = 0;
    for (int i = 0; i < 3; ++i)
        nonzero_pos += grad_pos[i] != 0.0f;
    for (int i = 0; i < 6; ++i)
        nonzero_neg += grad_neg[i] != 0.0f;
    assert_int_equal(nonzero_pos, 3);
    assert_int_equal(nonzero_neg, 3);
    assert_int_equal(nonzero_pos + nonzero_neg, 6);

    /* every offender is at 0 after 1 trial: w = ln 99 */
    const float w = (float)log(99.0);
    for (int b = 0; b < 3; ++b) {
        assert_true(grad_pos[b] == -w);
        assert_true(grad_neg[2 * b] == w);
        assert_true(grad_neg[2 * b + 1] == 0.0f);
    }

    /* and the reference agrees */
    float ref = NAN;
    ref_loss(&o, 3, 2, pos, neg, &ref, NULL, NULL, NULL);
    assert_true(fabs((double)ref - 39.6131) <= 1e-4);
}

/*
 * Notebook test 1: the first-index search on two small matrices whose first
 * offenders are known by hand, including rows with none (-1) and exact ties
 * ((margin + n) - p == 0 does not stop the scan).
 */
static void test_first_index_search(void **state)
{
    (void)state;
    wl_loss_options o;
    wl_loss_options_default(&o, 1000);
    int32_t offender[4];
    float loss;

    /* margin 1, p = 0: n stops the scan when n > -1 */
    const float pos_a[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const float neg_a[4 * 5] = {
        -2.0f, -1.5f, 0.5f,  3.0f,  -1.0f, /* first at 2 */
        -3.0f, -3.0f, -3.0f, -3.0f, -3.0f, /* none */
        2.0f,  -5.0f, -5.0f, -5.0f, -5.0f, /* first at 0 */
        -1.0f, -1.0f, -1.0f, -1.0f, 0.25f, /* ties at 0..3, first at 4 */
    };
    const int32_t want_a[4] = {2, -1, 0, 4};
    memset(offender, 0x7f, sizeof offender);
    assert_int_equal(wl_loss(ctx, &o, 4, 5, pos_a, neg_a, &loss, NULL, NULL, offender), WL_SUCCESS);
    for (int b = 0; b < 4; ++b)
        assert_int_equal(offender[b], want_a[b]);

    /* margin 0.5, different positives */
    o.margin = 0.5f;
    const float pos_b[3] = {1.0f, -2.0f, 10.0f};
    const float neg_b[3 * 3] = {
        0.5f,  0.6f,  2.0f,   /* 0.5 ties, 0.6 stops: 1 */
        -3.0f, -2.5f, -2.25f, /* -2.5 ties, -2.25 stops: 2 */
        0.0f,  5.0f,  9.0f,   /* none */
    };
    const int32_t want_b[3] = {1, 2, -1};
    memset(offender, 0x7f, sizeof offender);
    assert_int_equal(wl_loss(ctx, &o, 3, 3, pos_b, neg_b, &loss, NULL, NULL, offender), WL_SUCCESS);
    for (int b = 0; b < 3; ++b)
        assert_int_equal(offender[b], want_b[b]);
}

/*
 * Notebook test 2: the ground-truth formula, by hand:
 * loss = sum over rows with an offender j of ln(floor((L - 1) / (j + 1))) * (1 - p + n[j]).
 */
static void test_ground_truth_formula(void **state)
{
    (void)state;
    const float pos[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const float neg[4 * 5] = {
        -2.0f, -1.5f, 0.5f,  3.0f,  -1.0f, /* j = 2: ln(floor(999 / 3) = 333) * (1 - 0 + 0.5) */
        -3.0f, -3.0f, -3.0f, -3.0f, -3.0f, /* none: 0 */
        2.0f,  -5.0f, -5.0f, -5.0f, -5.0f, /* j = 0: ln(999) * (1 - 0 + 2) */
        -1.0f, -1.0f, -1.0f, -1.0f, 0.25f, /* j = 4: ln(floor(999 / 5) = 199) * (1 - 0 + 0.25) */
    };
    const double want = log(333.0) * 1.5 + log(999.0) * 3.0 + log(199.0) * 1.25;
    wl_loss_options o;
    wl_loss_options_default(&o, 1000);
    float loss = NAN, grad_pos[4], grad_neg[20];
    int32_t offender[4];
    assert_int_equal(wl_loss(ctx, &o, 4, 5, pos, neg, &loss, grad_pos, grad_neg, offender), WL_SUCCESS);
    assert_true(fabs((double)loss - want) <= 1e-5 * want);

    const float want_grad_pos[4] = {-(float)log(333.0), 0.0f, -(float)log(999.0), -(float)log(199.0)};
    float want_grad_neg[20] = {0};
    want_grad_neg[0 * 5 + 2] = (float)log(333.0);
    want_grad_neg[2 * 5 + 0] = (float)log(999.0);
    want_grad_neg[3 * 5 + 4] = (float)log(199.0);
    assert_int_equal(wlt_first_value_mismatch(grad_pos, want_grad_pos, 4), 4);
    assert_int_equal(wlt_first_value_mismatch(grad_neg, want_grad_neg, 20), 20);

    /* the same by row, unreduced */
    o.reduction = WL_REDUCE_NONE;
    float rows_loss[4];
    assert_int_equal(wl_loss(ctx, &o, 4, 5, pos, neg, rows_loss, NULL, NULL, NULL), WL_SUCCESS);
    assert_true(fabs((double)rows_loss[0] - log(333.0) * 1.5) <= 1e-5 * log(333.0) * 1.5);
    assert_true(rows_loss[1] == 0.0f);
    assert_true(fabs((double)rows_loss[2] - log(999.0) * 3.0) <= 1e-5 * log(999.0) * 3.0);
    assert_true(fabs((double)rows_loss[3] - log(199.0) * 1.25) <= 1e-5 * log(199.0) * 1.25);
}

/* Notebook test 3: every negative below the positive minus the margin: nothing to learn. */
static void test_all_below_margin(void **state)
{
    (void)state;
    enum { ROWS = 8, NEG = 16 };
    float pos[ROWS], neg[ROWS * NEG];
    ref_rng g;
    ref_rng_seed(&g, 42);
    for (int b = 0; b < ROWS; ++b) {
        pos[b] = (float)ref_rng_uniform(&g, -3.0, 3.0);
        for (int j = 0; j < NEG; ++j)
            neg[b * NEG + j] = pos[b] - 1.0f - (float)ref_rng_uniform(&g, 0.01, 4.0);
    }
    wl_loss_options o;
    wl_loss_options_default(&o, 100);
    float loss = NAN, grad_pos[ROWS], grad_neg[ROWS * NEG];
    int32_t offender[ROWS];
    wlt_fill_sentinel(grad_pos, ROWS);
    wlt_fill_sentinel(grad_neg, ROWS * NEG);
    assert_int_equal(wl_loss(ctx, &o, ROWS, NEG, pos, neg, &loss, grad_pos, grad_neg, offender), WL_SUCCESS);
    assert_true(loss == 0.0f);
    for (int b = 0; b < ROWS; ++b) {
        assert_true(grad_pos[b] == 0.0f);
        assert_int_equal(offender[b], -1);
    }
    for (int i = 0; i < ROWS * NEG; ++i)
        assert_true(grad_neg[i] == 0.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readme_example),
        cmocka_unit_test(test_first_index_search),
        cmocka_unit_test(test_ground_truth_formula),
        cmocka_unit_test(test_all_below_margin),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
