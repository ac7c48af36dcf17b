/*
 * Inputs larger than the device's largest single allocation, with the limit
 * lowered to 64 KiB through the fault library (tests/fault.c answers
 * clGetDeviceInfo(CL_DEVICE_MAX_MEM_ALLOC_SIZE)): wl_loss processes them in
 * chunks of rows and gives the results of one call (offenders, gradients and
 * row losses bitwise, the sum and mean to 1e-5) and of the reference; a row
 * that cannot fit, and wl_loss_cl scratch beyond the limit, are refused with
 * WL_ERROR_OUT_OF_MEMORY and a message giving the limit; so is a model file
 * whose tables do not fit the device (wl_model_load_memory).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "fault.h"
#include "reference.h"

#define LIMIT 65536u
#define LIMIT_TEXT "65536"

static char *cache_dir;
static wl_context *whole;   /* the device's own limit: one call */
static wl_context *limited; /* the limit lowered to LIMIT */
static long live_base;

/* plan: a wlt_plan_names index, or -1 for the device's own */
static wl_context *create_limited(int plan)
{
    wlf_set_max_alloc(LIMIT);
    wl_context *c = plan < 0 ? wlt_context_or_skip(cache_dir) : wlt_context_with_plan(cache_dir, plan);
    wlf_set_max_alloc(0);
    return c;
}

static int group_setup(void **state)
{
    (void)state;
    live_base = wlf_live_total();
    whole = wlt_temp_context("big", &cache_dir);
    limited = create_limited(-1);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    wl_context_destroy(whole);
    wl_context_destroy(limited);
    const long left = wlf_live_total() - live_base;
    wlt_free_temp_dir(&cache_dir);
    if (left != 0) {
        fprintf(stderr, "%ld OpenCL objects left after wl_context_destroy\n", left);
        return -1;
    }
    return 0;
}

typedef struct outputs {
    float *loss, *gp, *gn;
    int32_t *off;
} outputs;

static outputs outputs_new(size_t rows, size_t negatives)
{
    outputs r;
    r.loss = wlt_alloc(rows * sizeof(float));
    r.gp = wlt_alloc(rows * sizeof(float));
    r.gn = wlt_alloc(rows * negatives * sizeof(float));
    r.off = wlt_alloc(rows * sizeof(int32_t));
    wlt_fill_sentinel(r.loss, rows);
    wlt_fill_sentinel(r.gp, rows);
    wlt_fill_sentinel(r.gn, rows * negatives);
    wlt_fill_sentinel_i32(r.off, rows);
    return r;
}

static void outputs_free(outputs *r) { free(r->loss), free(r->gp), free(r->gn), free(r->off); }

static int same_bits(const void *a, const void *b, size_t bytes) { return memcmp(a, b, bytes) == 0; }

/* wl_loss on `limited` (in chunks) equals one call on `whole` and the reference. */
static void expect_chunked(wl_context *c, size_t rows, size_t negatives, wl_reduction red, wl_weighting w,
                           ref_regime regime, int all_outputs)
{
    char label[160];
    snprintf(label, sizeof label, "%zu x %zu, reduction %d, weighting %d, %s%s, %s scan", rows, negatives, (int)red,
             (int)w, ref_regime_name(regime), all_outputs ? "" : ", loss only", wl_context_scan_variant(c));
    float *pos = wlt_alloc(rows * sizeof(float)), *neg = wlt_alloc(rows * negatives * sizeof(float));
    ref_make_inputs(rows * 31 + negatives, regime, rows, negatives, 1.0f, pos, neg);
    wl_loss_options o;
    wl_loss_options_default(&o, 100000);
    o.reduction = red;
    o.weighting = w;
    outputs one = outputs_new(rows, negatives), got = outputs_new(rows, negatives), want = outputs_new(rows, negatives);
    ref_loss(&o, rows, negatives, pos, neg, want.loss, want.gp, want.gn, want.off);
    if (wl_loss(whole, &o, rows, negatives, pos, neg, one.loss, one.gp, one.gn, one.off) != WL_SUCCESS)
        fail_msg("%s: one call: %s", label, wl_context_last_error(whole));
    wlf_reset_counts();
    const wl_status s = all_outputs ? wl_loss(c, &o, rows, negatives, pos, neg, got.loss, got.gp, got.gn, got.off)
                                    : wl_loss(c, &o, rows, negatives, pos, neg, got.loss, NULL, NULL, NULL);
    if (s != WL_SUCCESS)
        fail_msg("%s: in chunks: %s: %s", label, wl_status_string(s), wl_context_last_error(c));
    /* it really went in chunks: at least one scan launch per chunk */
    const size_t row_bytes = (negatives ? negatives : 1) * sizeof(float), per_chunk = LIMIT / row_bytes;
    const size_t chunks = (rows + per_chunk - 1) / per_chunk;
    if (wlf_count(WLF_NDRANGE) < chunks)
        fail_msg("%s: %lu kernel launches for %zu chunks", label, wlf_count(WLF_NDRANGE), chunks);

    const size_t nloss = red == WL_REDUCE_NONE ? rows : 1;
    if (red == WL_REDUCE_NONE) {
        if (!same_bits(got.loss, one.loss, rows * sizeof(float)))
            fail_msg("%s: row losses differ from one call", label);
    } else if (!wlt_close(got.loss[0], one.loss[0], 1e-5, 0.0)) {
        fail_msg("%s: loss %.9g in chunks, %.9g in one call", label, (double)got.loss[0], (double)one.loss[0]);
    }
    for (size_t i = 0; i < nloss; ++i)
        if (!wlt_close(got.loss[i], want.loss[i], 2e-5, 1e-6))
            fail_msg("%s: loss[%zu] = %.9g, reference %.9g", label, i, (double)got.loss[i], (double)want.loss[i]);
    if (all_outputs) {
        if (!same_bits(got.gp, one.gp, rows * sizeof(float)) || !same_bits(got.off, one.off, rows * sizeof(int32_t)) ||
            !same_bits(got.gn, one.gn, rows * negatives * sizeof(float)))
            fail_msg("%s: gradients or offenders differ from one call", label);
        assert_int_equal(wlt_first_value_mismatch(got.gp, want.gp, rows), rows);
        assert_int_equal(wlt_first_value_mismatch(got.gn, want.gn, rows * negatives), rows * negatives);
        assert_int_equal(wlt_first_i32_mismatch(got.off, want.off, rows), rows);
    }
    outputs_free(&one), outputs_free(&got), outputs_free(&want);
    free(pos), free(neg);
}

static void test_chunks(void **state)
{
    (void)state;
    /* 300 x 1000 floats is 1.2 MB, about 19 chunks of 16 rows */
    const ref_regime regimes[] = {REF_DEEP, REF_EARLY, REF_NONE};
    for (int red = 0; red < 3; ++red)
        for (int w = 0; w < 2; ++w)
            expect_chunked(limited, 300, 1000, (wl_reduction)red, (wl_weighting)w, regimes[(red + w) % 3], 1);
    expect_chunked(limited, 300, 1000, WL_REDUCE_MEAN, WL_WEIGHT_LOG, REF_DEEP, 0);
    /* a row exactly the limit: one row per chunk */
    expect_chunked(limited, 3, LIMIT / sizeof(float), WL_REDUCE_SUM, WL_WEIGHT_HARMONIC, REF_DEEP, 1);
    /* no negatives: the positives alone are chunked */
    expect_chunked(limited, LIMIT / sizeof(float) * 2 + 5, 0, WL_REDUCE_NONE, WL_WEIGHT_LOG, REF_EARLY, 1);

    /* the work-group scan, with a CPU's and a GPU's plan */
    for (int plan = 1; plan < WLT_PLANS; ++plan) {
        wl_context *group = create_limited(plan);
        for (int red = 0; red < 3; ++red)
            expect_chunked(group, 257, 700, (wl_reduction)red, WL_WEIGHT_HARMONIC, REF_DEEP, 1);
        wl_context_destroy(group);
    }
}

/* Small case on c equals the reference. */
static void expect_usable(wl_context *c) { expect_chunked(c, 20, 30, WL_REDUCE_SUM, WL_WEIGHT_LOG, REF_DEEP, 1); }

static void test_row_too_large(void **state)
{
    (void)state;
    const size_t rows = 2, negatives = LIMIT / sizeof(float) + 1;
    float *pos = wlt_alloc(rows * sizeof(float)), *neg = wlt_alloc(rows * negatives * sizeof(float));
    ref_make_inputs(5, REF_DEEP, rows, negatives, 1.0f, pos, neg);
    wl_loss_options o;
    wl_loss_options_default(&o, 1000);
    outputs got = outputs_new(rows, negatives);
    const wl_status s = wl_loss(limited, &o, rows, negatives, pos, neg, got.loss, got.gp, got.gn, got.off);
    if (s != WL_ERROR_OUT_OF_MEMORY)
        fail_msg("a row over the limit: got %s, want WL_ERROR_OUT_OF_MEMORY", wl_status_string(s));
    if (!strstr(wl_context_last_error(limited), LIMIT_TEXT))
        fail_msg("the message does not give the limit: \"%s\"", wl_context_last_error(limited));
    assert_true(wlt_is_sentinel(got.loss, rows) && wlt_is_sentinel(got.gp, rows));
    assert_true(wlt_is_sentinel(got.gn, rows * negatives) && wlt_is_sentinel_i32(got.off, rows));
    outputs_free(&got);
    free(pos), free(neg);
    expect_usable(limited);
}

/* wl_loss_cl on c with these shapes: the status, and with success the loss against the reference. */
static wl_status loss_cl(wl_context *c, size_t rows, size_t negatives)
{
    float *pos = wlt_alloc(rows * sizeof(float)), *neg = wlt_alloc(rows * negatives * sizeof(float));
    ref_make_inputs(rows + negatives, REF_EARLY, rows, negatives, 1.0f, pos, neg);
    wl_loss_options o;
    wl_loss_options_default(&o, 1000);
    const cl_context cl = wl_context_cl_context(c);
    cl_mem d_pos = wlt_make_buffer(cl, rows * sizeof(float), pos);
    cl_mem d_neg = wlt_make_buffer(cl, rows * negatives * sizeof(float), neg);
    cl_mem d_loss = wlt_make_buffer(cl, sizeof(float), NULL);
    cl_event done = NULL;
    const wl_status s = wl_loss_cl(c, &o, rows, negatives, d_pos, d_neg, d_loss, NULL, NULL, NULL, 0, NULL, &done);
    if (s == WL_SUCCESS) {
        float loss = 0.0f, want = 0.0f;
        assert_int_equal(clEnqueueReadBuffer(wl_context_queue(c), d_loss, CL_TRUE, 0, sizeof loss, &loss, 1, &done,
                                             NULL),
                         CL_SUCCESS);
        clReleaseEvent(done);
        ref_loss(&o, rows, negatives, pos, neg, &want, NULL, NULL, NULL);
        if (!wlt_close(loss, want, 2e-5, 1e-6))
            fail_msg("wl_loss_cl %zu x %zu: loss %.9g, reference %.9g", rows, negatives, (double)loss, (double)want);
    } else if (done) {
        fail_msg("a failed wl_loss_cl gave a done event");
    }
    clReleaseMemObject(d_pos), clReleaseMemObject(d_neg), clReleaseMemObject(d_loss);
    free(pos), free(neg);
    return s;
}

static void expect_refused(wl_context *c, size_t rows, size_t negatives)
{
    const wl_status s = loss_cl(c, rows, negatives);
    if (s != WL_ERROR_OUT_OF_MEMORY)
        fail_msg("wl_loss_cl %zu x %zu (%s scan): got %s, want WL_ERROR_OUT_OF_MEMORY", rows, negatives,
                 wl_context_scan_variant(c), wl_status_string(s));
    if (!strstr(wl_context_last_error(c), LIMIT_TEXT))
        fail_msg("the message does not give the limit: \"%s\"", wl_context_last_error(c));
    assert_int_equal(loss_cl(c, 20, 30), WL_SUCCESS);
    expect_usable(c);
}

static void test_loss_cl_scratch(void **state)
{
    (void)state;
    /* the rank-weight table of a row over the limit */
    expect_refused(limited, 2, LIMIT / sizeof(float) + 1);
    /* the row losses of the work-group scan: 4 bytes a row */
    wl_context *group = create_limited(1);
    expect_refused(group, LIMIT / sizeof(float) + 1, 2);
    wl_context_destroy(group);
    /* the row scan on a CPU sums blocks of rows (small scratch, so it runs);
     * elsewhere it keeps a loss per row and is refused the same way */
    wl_context *row = create_limited(0);
    const wl_status s = loss_cl(row, LIMIT / sizeof(float) + 1, 2);
    if (s != WL_SUCCESS)
        expect_refused(row, LIMIT / sizeof(float) + 1, 2);
    wl_context_destroy(row);
}

/* A valid model file saved on the device's own limit: its gradient sums (8 bytes
 * a table element) do not fit the lowered one; nothing is made. */
static void test_model_file_too_large(void **state)
{
    (void)state;
    wl_model_options o;
    wl_model_options_default(&o, 100, 200, 64);
    wl_model *m = NULL;
    assert_int_equal(wl_model_create(whole, &o, &m), WL_SUCCESS);
    void *data = NULL;
    size_t size = 0;
    assert_int_equal(wl_model_save_memory(m, NULL, 0, &data, &size), WL_SUCCESS);
    wl_model_destroy(m);
    const long before = wlf_live_total();
    wl_model *loaded = (wl_model *)&loaded;
    assert_int_equal(wl_model_load_memory(limited, data, size, &loaded, NULL, NULL), WL_ERROR_OUT_OF_MEMORY);
    assert_null(loaded);
    const char *msg = wl_context_last_error(limited);
    if (!strstr(msg, "(memory)") || !strstr(msg, LIMIT_TEXT))
        fail_msg("the message does not name the input and the limit: \"%s\"", msg);
    assert_int_equal(wlf_live_total(), before);
    wl_free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_row_too_large),
        cmocka_unit_test(test_loss_cl_scratch),
        cmocka_unit_test(test_model_file_too_large),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
