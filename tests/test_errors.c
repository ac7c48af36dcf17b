/*
 * Every error path returns its exact status, names the argument, writes no
 * output, and leaves the context usable. Status strings. Device selection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <pthread.h>
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
    ctx = wlt_temp_context("errors", &cache_dir);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    wl_context_destroy(ctx);
    wlt_free_temp_dir(&cache_dir);
    return 0;
}

enum { ROWS = 4, NEG = 3 };
static const float good_pos[ROWS] = {0.0f, 1.0f, -1.0f, 2.0f};
static const float good_neg[ROWS * NEG] = {-2.0f, 0.5f, 0.0f, -3.0f, -3.0f, -3.0f, 1.0f, 2.0f, 3.0f, 5.0f, -1.0f, 0.0f};

/* A valid call on ctx gives the reference's results. */
static void expect_context_works(void)
{
    wl_loss_options o;
    wl_loss_options_default(&o, 1000);
    float loss = NAN, want = NAN, gp[ROWS], want_gp[ROWS];
    int32_t off[ROWS], want_off[ROWS];
    assert_int_equal(wl_loss(ctx, &o, ROWS, NEG, good_pos, good_neg, &loss, gp, NULL, off), WL_SUCCESS);
    ref_loss(&o, ROWS, NEG, good_pos, good_neg, &want, want_gp, NULL, want_off);
    assert_true(wlt_close(loss, want, 1e-5, 1e-6));
    assert_int_equal(wlt_first_value_mismatch(gp, want_gp, ROWS), ROWS);
    assert_int_equal(wlt_first_i32_mismatch(off, want_off, ROWS), ROWS);
}

/*
 * Call wl_loss with the given arguments (into sentinel-filled outputs of
 * ROWS x NEG), expect WL_ERROR_INVALID_ARGUMENT, an error text containing
 * each of the `names` alternatives' ... at least one of them (NULL-terminated
 * list), and untouched outputs.
 */
static void expect_invalid(const char *label, const wl_loss_options *o, size_t rows, size_t negatives, const float *pos,
                           const float *neg, int null_loss, const char *const *names)
{
    float loss[ROWS], gp[ROWS], gn[ROWS * NEG];
    int32_t off[ROWS];
    wlt_fill_sentinel(loss, ROWS);
    wlt_fill_sentinel(gp, ROWS);
    wlt_fill_sentinel(gn, ROWS * NEG);
    wlt_fill_sentinel_i32(off, ROWS);
    const wl_status s = wl_loss(ctx, o, rows, negatives, pos, neg, null_loss ? NULL : loss, gp, gn, off);
    if (s != WL_ERROR_INVALID_ARGUMENT)
        fail_msg("%s: got %d (%s), want WL_ERROR_INVALID_ARGUMENT", label, (int)s, wl_status_string(s));
    const char *msg = wl_context_last_error(ctx);
    assert_non_null(msg);
    int named = 0;
    for (const char *const *n = names; *n; ++n)
        named |= strstr(msg, *n) != NULL;
    if (!named)
        fail_msg("%s: the error text \"%s\" does not name \"%s\"", label, msg, names[0]);
    assert_true(wlt_is_sentinel(loss, ROWS));
    assert_true(wlt_is_sentinel(gp, ROWS));
    assert_true(wlt_is_sentinel(gn, ROWS * NEG));
    assert_true(wlt_is_sentinel_i32(off, ROWS));
    expect_context_works();
}

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_null_arguments(void **state)
{
    (void)state;
    wl_loss_options o;
    wl_loss_options_default(&o, 1000);
    float loss = 5.0f;
    assert_int_equal(wl_loss(NULL, &o, ROWS, NEG, good_pos, good_neg, &loss, NULL, NULL, NULL),
                     WL_ERROR_INVALID_ARGUMENT);
    assert_true(loss == 5.0f);
    assert_int_equal(wl_loss_cl(NULL, &o, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL),
                     WL_ERROR_INVALID_ARGUMENT);
    expect_invalid("NULL options", NULL, ROWS, NEG, good_pos, good_neg, 0, NAMES("option"));
    expect_invalid("NULL loss", &o, ROWS, NEG, good_pos, good_neg, 1, NAMES("loss"));
    expect_invalid("NULL pos", &o, ROWS, NEG, NULL, good_neg, 0, NAMES("pos"));
    expect_invalid("NULL pos, no negatives", &o, ROWS, 0, NULL, NULL, 0, NAMES("pos"));
    expect_invalid("NULL neg", &o, ROWS, NEG, good_pos, NULL, 0, NAMES("neg"));
    expect_invalid("NULL loss, no rows", &o, 0, 0, NULL, NULL, 1, NAMES("loss"));
}

static void test_bad_options(void **state)
{
    (void)state;
    wl_loss_options o;
    for (uint64_t labels = 0; labels < 2; ++labels) {
        wl_loss_options_default(&o, labels);
        expect_invalid("num_labels < 2", &o, ROWS, NEG, good_pos, good_neg, 0, NAMES("num_labels"));
        expect_invalid("num_labels < 2, no rows", &o, 0, 0, NULL, NULL, 0, NAMES("num_labels"));
    }
    const float bad_margins[] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; ++k) {
        wl_loss_options_default(&o, 1000);
        o.margin = bad_margins[k];
        expect_invalid("non-finite margin", &o, ROWS, NEG, good_pos, good_neg, 0, NAMES("margin"));
    }
    wl_loss_options_default(&o, 1000);
    o.weighting = (wl_weighting)7;
    expect_invalid("weighting 7", &o, ROWS, NEG, good_pos, good_neg, 0, NAMES("weighting"));
    o.weighting = (wl_weighting)-1;
    expect_invalid("weighting -1", &o, ROWS, NEG, good_pos, good_neg, 0, NAMES("weighting"));
    wl_loss_options_default(&o, 1000);
    o.reduction = (wl_reduction)7;
    expect_invalid("reduction 7", &o, ROWS, NEG, good_pos, good_neg, 0, NAMES("reduction"));
    o.reduction = (wl_reduction)-1;
    expect_invalid("reduction -1", &o, ROWS, NEG, good_pos, good_neg, 0, NAMES("reduction"));
}

static void test_sizes(void **state)
{
    (void)state;
    wl_loss_options o;
    wl_loss_options_default(&o, 1000);
    /* the element count overflows */
    expect_invalid("rows * negatives overflows", &o, SIZE_MAX / 2, 4, good_pos, good_neg, 0,
                   NAMES("rows", "negatives"));
    /* the count fits, its byte count does not */
    expect_invalid("rows * negatives * 4 overflows", &o, SIZE_MAX / 8, 4, good_pos, good_neg, 0,
                   NAMES("rows", "negatives"));
    /* rows * 4 overflows even with no negatives */
    expect_invalid("rows * 4 overflows", &o, SIZE_MAX / 4 + 1, 0, good_pos, NULL, 0, NAMES("rows"));
    /* the offender index is int32 */
    expect_invalid("negatives > INT32_MAX", &o, 1, (size_t)INT32_MAX + 1, good_pos, good_neg, 0, NAMES("negatives"));
    expect_invalid("negatives > INT32_MAX, no rows", &o, 0, (size_t)INT32_MAX + 1, NULL, NULL, 0, NAMES("negatives"));
    expect_invalid("negatives = SIZE_MAX", &o, 1, SIZE_MAX, good_pos, good_neg, 0, NAMES("negatives"));
}

/* The valid corner cases: empty shapes and NULL where nothing is read. */
static void test_empty_shapes(void **state)
{
    (void)state;
    wl_loss_options o;
    wl_loss_options_default(&o, 2);
    for (int red = 0; red < 3; ++red) {
        o.reduction = (wl_reduction)red;
        float loss = 5.0f;
        assert_int_equal(wl_loss(ctx, &o, 0, 0, NULL, NULL, &loss, NULL, NULL, NULL), WL_SUCCESS);
        if (o.reduction != WL_REDUCE_NONE)
            assert_true(loss == 0.0f);
        else
            assert_true(loss == 5.0f); /* zero rows: nothing to write */
        loss = 5.0f;
        assert_int_equal(wl_loss(ctx, &o, 0, NEG, NULL, NULL, &loss, NULL, NULL, NULL), WL_SUCCESS);
        assert_int_equal(wl_loss(ctx, &o, 0, (size_t)INT32_MAX, NULL, NULL, &loss, NULL, NULL, NULL), WL_SUCCESS);
        if (o.reduction != WL_REDUCE_NONE)
            assert_true(loss == 0.0f);

        /* no negatives: NULL neg is fine, loss 0, offenders -1, gradients 0 */
        float rows_loss[ROWS], gp[ROWS];
        int32_t off[ROWS];
        wlt_fill_sentinel(rows_loss, ROWS);
        wlt_fill_sentinel(gp, ROWS);
        assert_int_equal(wl_loss(ctx, &o, ROWS, 0, good_pos, NULL, rows_loss, gp, NULL, off), WL_SUCCESS);
        for (size_t b = 0; b < (o.reduction == WL_REDUCE_NONE ? (size_t)ROWS : 1); ++b)
            assert_true(rows_loss[b] == 0.0f);
        for (int b = 0; b < ROWS; ++b) {
            assert_int_equal(off[b], -1);
            assert_true(gp[b] == 0.0f);
        }
        /* num_labels 2: one other label, so two trials give r = 0, w = 0 */
        float want[ROWS], want_gp[ROWS];
        int32_t want_off[ROWS];
        assert_int_equal(wl_loss(ctx, &o, ROWS, NEG, good_pos, good_neg, rows_loss, gp, NULL, off), WL_SUCCESS);
        ref_loss(&o, ROWS, NEG, good_pos, good_neg, want, want_gp, NULL, want_off);
        for (size_t b = 0; b < (o.reduction == WL_REDUCE_NONE ? (size_t)ROWS : 1); ++b)
            assert_true(wlt_close(rows_loss[b], want[b], 1e-5, 1e-6));
        assert_int_equal(wlt_first_value_mismatch(gp, want_gp, ROWS), ROWS);
        assert_int_equal(wlt_first_i32_mismatch(off, want_off, ROWS), ROWS);
    }
}

static void test_status_strings(void **state)
{
    (void)state;
    const wl_status all[] = {WL_SUCCESS,     WL_ERROR_INVALID_ARGUMENT, WL_ERROR_NO_DEVICE, WL_ERROR_KERNEL_SOURCE,
                             WL_ERROR_BUILD, WL_ERROR_OUT_OF_MEMORY,    WL_ERROR_NONFINITE, WL_ERROR_OPENCL,
                             WL_ERROR_FILE};
    const size_t n = sizeof all / sizeof all[0];
    for (size_t i = 0; i < n; ++i) {
        const char *s = wl_status_string(all[i]);
        assert_non_null(s);
        assert_true(s[0] != '\0');
        for (size_t k = 0; k < i; ++k)
            assert_string_not_equal(s, wl_status_string(all[k]));
    }
    assert_non_null(wl_status_string((wl_status)42));
    assert_non_null(wl_status_string((wl_status)-100));
}

static void test_option_defaults(void **state)
{
    (void)state;
    wl_loss_options o;
    memset(&o, 0xab, sizeof o);
    wl_loss_options_default(&o, 12345);
    assert_true(o.num_labels == 12345);
    assert_true(o.margin == 1.0f);
    assert_int_equal(o.weighting, WL_WEIGHT_LOG);
    assert_int_equal(o.reduction, WL_REDUCE_SUM);
    assert_int_equal(o.check_finite, 0);

    wl_context_options c;
    memset(&c, 0xab, sizeof c);
    wl_context_options_default(&c);
    assert_null(c.device);
    assert_null(c.kernel_dir);
    assert_null(c.cache_dir);
    assert_null(c.log);
    assert_null(c.log_user);
    wl_context_destroy(NULL);
}

/* ------------------------------------------------------------------ devices */

static int any_device_of_type(cl_device_type type)
{
    cl_uint np = 0;
    if (clGetPlatformIDs(0, NULL, &np) != CL_SUCCESS || np == 0)
        return 0;
    cl_platform_id *ps = wlt_alloc(np * sizeof *ps);
    clGetPlatformIDs(np, ps, NULL);
    int found = 0;
    for (cl_uint i = 0; i < np; ++i) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(ps[i], type, 0, NULL, &nd) == CL_SUCCESS && nd > 0)
            found = 1;
    }
    free(ps);
    return found;
}

static void expect_no_device(const char *spec)
{
    wl_device_choice choice;
    const wl_status s = wl_select_device(spec, &choice);
    if (s != WL_ERROR_NO_DEVICE)
        fail_msg("wl_select_device(\"%s\"): got %d (%s), want WL_ERROR_NO_DEVICE", spec, (int)s, wl_status_string(s));
    const char *msg = wl_context_last_error(NULL);
    assert_non_null(msg);
    assert_true(msg[0] != '\0');

    wl_context_options o;
    wlt_context_options(&o, "");
    o.device = spec;
    wl_context *c = (wl_context *)&o; /* must be set to NULL */
    assert_int_equal(wl_context_create(&o, &c), WL_ERROR_NO_DEVICE);
    assert_null(c);
    msg = wl_context_last_error(NULL);
    assert_true(msg[0] != '\0');
}

static void test_device_specs(void **state)
{
    (void)state;
    expect_no_device("no-such-device-xyz");
    expect_no_device("9:9");
    expect_no_device("0:99");
    expect_no_device("99:0");

    wl_device_choice choice;
    memset(&choice, 0, sizeof choice);
    assert_int_equal(wl_select_device("0:0", &choice), WL_SUCCESS);
    assert_int_equal(choice.platform_index, 0);
    assert_int_equal(choice.device_index, 0);
    assert_true(choice.reason[0] != '\0');
    cl_platform_id p0;
    cl_device_id d0;
    assert_int_equal(clGetPlatformIDs(1, &p0, NULL), CL_SUCCESS);
    assert_int_equal(clGetDeviceIDs(p0, CL_DEVICE_TYPE_ALL, 1, &d0, NULL), CL_SUCCESS);
    assert_ptr_equal(choice.platform, p0);
    assert_ptr_equal(choice.device, d0);

    /* a case-insensitive substring of the platform name */
    char name[256] = {0};
    assert_int_equal(clGetPlatformInfo(p0, CL_PLATFORM_NAME, sizeof name - 1, name, NULL), CL_SUCCESS);
    for (char *s = name; *s; ++s)
        *s = (char)(islower((unsigned char)*s) ? toupper((unsigned char)*s) : tolower((unsigned char)*s));
    name[strlen(name) > 6 ? 6 : strlen(name)] = '\0';
    memset(&choice, 0, sizeof choice);
    assert_int_equal(wl_select_device(name, &choice), WL_SUCCESS);
    assert_int_equal(choice.platform_index, 0);

    /* "cpu": PoCL gives one; elsewhere only if a CPU device exists */
    memset(&choice, 0, sizeof choice);
    const wl_status s = wl_select_device("cpu", &choice);
    if (any_device_of_type(CL_DEVICE_TYPE_CPU)) {
        assert_int_equal(s, WL_SUCCESS);
        cl_device_type type = 0;
        assert_int_equal(clGetDeviceInfo(choice.device, CL_DEVICE_TYPE, sizeof type, &type, NULL), CL_SUCCESS);
        assert_true(type & CL_DEVICE_TYPE_CPU);
    } else {
        assert_int_equal(s, WL_ERROR_NO_DEVICE);
    }

    /* NULL and "" use $WARPLOSS_DEVICE */
    const char *old = getenv("WARPLOSS_DEVICE");
    char *saved = old ? strdup(old) : NULL;
    setenv("WARPLOSS_DEVICE", "no-such-device-xyz", 1);
    assert_int_equal(wl_select_device(NULL, &choice), WL_ERROR_NO_DEVICE);
    assert_int_equal(wl_select_device("", &choice), WL_ERROR_NO_DEVICE);
    setenv("WARPLOSS_DEVICE", "0:0", 1);
    memset(&choice, 0, sizeof choice);
    assert_int_equal(wl_select_device(NULL, &choice), WL_SUCCESS);
    assert_ptr_equal(choice.device, d0);
    setenv("WARPLOSS_DEVICE", "", 1);
    assert_int_equal(wl_select_device(NULL, &choice), WL_SUCCESS);
    if (saved) {
        setenv("WARPLOSS_DEVICE", saved, 1);
        free(saved);
    } else {
        unsetenv("WARPLOSS_DEVICE");
    }

    /* a context on "0:0" works */
    wl_context_options co;
    wlt_context_options(&co, cache_dir);
    co.device = "0:0";
    wl_context *c = NULL;
    assert_int_equal(wl_context_create(&co, &c), WL_SUCCESS);
    assert_ptr_equal(wl_context_device(c), d0);
    wl_context_destroy(c);
}

/* wl_context_last_error(NULL) is kept per thread. */
static void *select_in_thread(void *arg)
{
    wl_device_choice choice;
    const wl_status s = wl_select_device("9:9", &choice);
    *(int *)arg = s == WL_ERROR_NO_DEVICE && wl_context_last_error(NULL)[0] != '\0';
    return NULL;
}

static void test_last_error_per_thread(void **state)
{
    (void)state;
    wl_device_choice choice;
    assert_int_equal(wl_select_device("no-such-device-xyz", &choice), WL_ERROR_NO_DEVICE);
    char mine[512];
    snprintf(mine, sizeof mine, "%s", wl_context_last_error(NULL));
    pthread_t t;
    int ok = 0;
    assert_int_equal(pthread_create(&t, NULL, select_in_thread, &ok), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(ok);
    assert_string_equal(wl_context_last_error(NULL), mine);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_arguments), cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_sizes),          cmocka_unit_test(test_empty_shapes),
        cmocka_unit_test(test_status_strings), cmocka_unit_test(test_option_defaults),
        cmocka_unit_test(test_device_specs),   cmocka_unit_test(test_last_error_per_thread),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
