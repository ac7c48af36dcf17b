/*
 * wl_loss_cl on buffers and a queue the caller owns: in-order and
 * out-of-order queues, waiting on a user event and on the `done` event,
 * NULL optional outputs, and buffers that are too small or from another
 * OpenCL context.
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

static wl_device_choice choice;
static cl_context cl_ctx;
static char *cache_dir;

static int group_setup(void **state)
{
    (void)state;
    cache_dir = wlt_temp_dir("cl");
    const wl_status s = wl_select_device(NULL, &choice);
    if (s == WL_ERROR_NO_DEVICE) {
        printf("skipped: no OpenCL device: %s\n", wl_context_last_error(NULL));
        wlt_free_temp_dir(&cache_dir);
        exit(WLT_SKIP);
    }
    if (s != WL_SUCCESS) {
        fprintf(stderr, "wl_select_device: %s: %s\n", wl_status_string(s), wl_context_last_error(NULL));
        return -1;
    }
    cl_int err = CL_SUCCESS;
    const cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)choice.platform, 0};
    cl_ctx = clCreateContext(props, 1, &choice.device, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "clCreateContext: %d\n", (int)err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (cl_ctx)
        clReleaseContext(cl_ctx);
    wlt_free_temp_dir(&cache_dir);
    return 0;
}

/* A buffer on ctx, uninitialised. */
static cl_mem make_buffer(cl_context ctx, size_t bytes) { return wlt_make_buffer(ctx, bytes, NULL); }

static wl_context *context_on(cl_command_queue q)
{
    wl_context_options o;
    wlt_context_options(&o, cache_dir);
    o.device = "no-such-device-xyz"; /* ignored with a queue */
    wl_context *c = NULL;
    const wl_status s = wl_context_create_with_queue(q, &o, &c);
    if (s != WL_SUCCESS)
        fail_msg("wl_context_create_with_queue: %s: %s", wl_status_string(s), wl_context_last_error(NULL));
    assert_non_null(c);
    assert_ptr_equal(wl_context_queue(c), q);
    assert_ptr_equal(wl_context_cl_context(c), cl_ctx);
    assert_ptr_equal(wl_context_device(c), choice.device);
    assert_non_null(wl_context_device_name(c));
    return c;
}

enum { ROWS = 513, NEG = 77 };

typedef struct device_case {
    float pos[ROWS], neg[ROWS * NEG];
    float want_loss[ROWS], want_grad_pos[ROWS], want_grad_neg[ROWS * NEG];
    int32_t want_offender[ROWS];
    cl_mem d_pos, d_neg, d_loss, d_grad_pos, d_grad_neg, d_offender;
} device_case;

static device_case *case_new(uint64_t seed, ref_regime regime)
{
    device_case *d = wlt_alloc(sizeof *d);
    ref_make_inputs(seed, regime, ROWS, NEG, 1.0f, d->pos, d->neg);
    d->d_pos = make_buffer(cl_ctx, sizeof d->pos);
    d->d_neg = make_buffer(cl_ctx, sizeof d->neg);
    d->d_loss = make_buffer(cl_ctx, sizeof d->want_loss);
    d->d_grad_pos = make_buffer(cl_ctx, sizeof d->want_grad_pos);
    d->d_grad_neg = make_buffer(cl_ctx, sizeof d->want_grad_neg);
    d->d_offender = make_buffer(cl_ctx, sizeof d->want_offender);
    return d;
}

static void case_free(device_case *d)
{
    clReleaseMemObject(d->d_pos);
    clReleaseMemObject(d->d_neg);
    clReleaseMemObject(d->d_loss);
    clReleaseMemObject(d->d_grad_pos);
    clReleaseMemObject(d->d_grad_neg);
    clReleaseMemObject(d->d_offender);
    free(d);
}

/* Fill a buffer with a sentinel byte pattern (blocking). */
static void poison(cl_command_queue q, cl_mem m, size_t bytes)
{
    unsigned char *junk = wlt_alloc(bytes);
    memset(junk, 0x7f, bytes);
    WLT_CHECK_CL(clEnqueueWriteBuffer(q, m, CL_TRUE, 0, bytes, junk, 0, NULL, NULL));
    free(junk);
}

/* Read back every output after `after` and compare with the reference. */
static void check_outputs(cl_command_queue q, const device_case *d, const wl_loss_options *o, cl_event after,
                          int have_grads)
{
    const size_t nloss = o->reduction == WL_REDUCE_NONE ? ROWS : 1;
    float *loss = wlt_alloc(sizeof d->want_loss), *gp = wlt_alloc(sizeof d->want_grad_pos);
    float *gn = wlt_alloc(sizeof d->want_grad_neg);
    int32_t *off = wlt_alloc(sizeof d->want_offender);
    const cl_uint nwait = after ? 1 : 0;
    const cl_event *wait = after ? &after : NULL;
    WLT_CHECK_CL(clEnqueueReadBuffer(q, d->d_loss, CL_TRUE, 0, nloss * sizeof(float), loss, nwait, wait, NULL));
    for (size_t i = 0; i < nloss; ++i)
        if (!wlt_close(loss[i], d->want_loss[i], 1e-5, 1e-6))
            fail_msg("loss[%zu] = %.9g, reference %.9g", i, (double)loss[i], (double)d->want_loss[i]);
    if (have_grads) {
        WLT_CHECK_CL(clEnqueueReadBuffer(q, d->d_grad_pos, CL_TRUE, 0, sizeof d->want_grad_pos, gp, nwait, wait, NULL));
        WLT_CHECK_CL(clEnqueueReadBuffer(q, d->d_grad_neg, CL_TRUE, 0, sizeof d->want_grad_neg, gn, nwait, wait, NULL));
        WLT_CHECK_CL(
            clEnqueueReadBuffer(q, d->d_offender, CL_TRUE, 0, sizeof d->want_offender, off, nwait, wait, NULL));
        assert_int_equal(wlt_first_value_mismatch(gp, d->want_grad_pos, ROWS), ROWS);
        assert_int_equal(wlt_first_value_mismatch(gn, d->want_grad_neg, ROWS * NEG), ROWS * NEG);
        assert_int_equal(wlt_first_i32_mismatch(off, d->want_offender, ROWS), ROWS);
    }
    free(loss);
    free(gp);
    free(gn);
    free(off);
}

/*
 * The inputs reach the device only through a write that waits on a user
 * event; wl_loss_cl waits on that write. Until the user event is set,
 * nothing may have completed; afterwards the results equal the reference.
 */
static void run_queue(cl_command_queue q)
{
    wl_context *c = context_on(q);
    for (int red = 0; red < 3; ++red) {
        device_case *d = case_new(100 + (uint64_t)red, (ref_regime)red);
        wl_loss_options o;
        wl_loss_options_default(&o, 50000);
        o.reduction = (wl_reduction)red;
        o.weighting = (wl_weighting)(red & 1);
        ref_loss(&o, ROWS, NEG, d->pos, d->neg, d->want_loss, d->want_grad_pos, d->want_grad_neg, d->want_offender);

        /* garbage in the inputs and outputs until the gated write */
        poison(q, d->d_pos, sizeof d->pos);
        poison(q, d->d_neg, sizeof d->neg);
        poison(q, d->d_loss, sizeof d->want_loss);
        poison(q, d->d_grad_pos, sizeof d->want_grad_pos);
        poison(q, d->d_grad_neg, sizeof d->want_grad_neg);
        poison(q, d->d_offender, sizeof d->want_offender);

        cl_int err = CL_SUCCESS;
        cl_event gate = clCreateUserEvent(cl_ctx, &err);
        WLT_CHECK_CL(err);
        cl_event written[2];
        WLT_CHECK_CL(clEnqueueWriteBuffer(q, d->d_pos, CL_FALSE, 0, sizeof d->pos, d->pos, 1, &gate, &written[0]));
        WLT_CHECK_CL(clEnqueueWriteBuffer(q, d->d_neg, CL_FALSE, 0, sizeof d->neg, d->neg, 1, &gate, &written[1]));
        cl_event done = NULL;
        const wl_status s = wl_loss_cl(c, &o, ROWS, NEG, d->d_pos, d->d_neg, d->d_loss, d->d_grad_pos, d->d_grad_neg,
                                       d->d_offender, 2, written, &done);
        if (s != WL_SUCCESS)
            fail_msg("wl_loss_cl: %s: %s", wl_status_string(s), wl_context_last_error(c));
        assert_non_null(done);
        cl_int status = CL_COMPLETE;
        WLT_CHECK_CL(clGetEventInfo(done, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL));
        assert_true(status > CL_COMPLETE); /* still waiting for the gate */

        WLT_CHECK_CL(clSetUserEventStatus(gate, CL_COMPLETE));
        WLT_CHECK_CL(clWaitForEvents(1, &done));
        WLT_CHECK_CL(clGetEventInfo(done, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL));
        assert_int_equal(status, CL_COMPLETE);
        check_outputs(q, d, &o, done, 1);
        clReleaseEvent(done);
        clReleaseEvent(written[0]);
        clReleaseEvent(written[1]);
        clReleaseEvent(gate);

        /* again without events in or out, NULL optional outputs */
        poison(q, d->d_loss, sizeof d->want_loss);
        poison(q, d->d_grad_pos, sizeof d->want_grad_pos);
        assert_int_equal(wl_loss_cl(c, &o, ROWS, NEG, d->d_pos, d->d_neg, d->d_loss, NULL, NULL, NULL, 0, NULL, NULL),
                         WL_SUCCESS);
        WLT_CHECK_CL(clFinish(q));
        check_outputs(q, d, &o, NULL, 0);
        float gp0;
        WLT_CHECK_CL(clEnqueueReadBuffer(q, d->d_grad_pos, CL_TRUE, 0, sizeof gp0, &gp0, 0, NULL, NULL));
        unsigned char untouched[4];
        memcpy(untouched, &gp0, 4);
        assert_int_equal(untouched[0], 0x7f); /* grad_pos was not written */

        /* check_finite on device buffers, then the same with a NaN (blocks on the check) */
        o.check_finite = 1;
        done = NULL;
        assert_int_equal(wl_loss_cl(c, &o, ROWS, NEG, d->d_pos, d->d_neg, d->d_loss, d->d_grad_pos, d->d_grad_neg,
                                    d->d_offender, 0, NULL, &done),
                         WL_SUCCESS);
        assert_non_null(done);
        check_outputs(q, d, &o, done, 1);
        clReleaseEvent(done);
        const float nan = NAN;
        WLT_CHECK_CL(clEnqueueWriteBuffer(q, d->d_neg, CL_TRUE, (200 * NEG + 5) * sizeof(float), sizeof nan, &nan, 0,
                                          NULL, NULL));
        poison(q, d->d_loss, sizeof d->want_loss);
        done = NULL;
        assert_int_equal(wl_loss_cl(c, &o, ROWS, NEG, d->d_pos, d->d_neg, d->d_loss, d->d_grad_pos, d->d_grad_neg,
                                    d->d_offender, 0, NULL, &done),
                         WL_ERROR_NONFINITE);
        assert_null(done);
        assert_non_null(strstr(wl_context_last_error(c), "200"));
        WLT_CHECK_CL(clFinish(q));
        unsigned char first_loss[4];
        WLT_CHECK_CL(clEnqueueReadBuffer(q, d->d_loss, CL_TRUE, 0, 4, first_loss, 0, NULL, NULL));
        assert_int_equal(first_loss[0], 0x7f); /* nothing was written */
        case_free(d);
    }
    wl_context_destroy(c);
}

static void test_in_order_queue(void **state)
{
    (void)state;
    cl_int err = CL_SUCCESS;
    cl_command_queue q = clCreateCommandQueue(cl_ctx, choice.device, 0, &err);
    assert_int_equal(err, CL_SUCCESS);
    run_queue(q);
    clReleaseCommandQueue(q);
}

static void test_out_of_order_queue(void **state)
{
    (void)state;
    cl_command_queue_properties props = 0;
    WLT_CHECK_CL(clGetDeviceInfo(choice.device, CL_DEVICE_QUEUE_PROPERTIES, sizeof props, &props, NULL));
    if (!(props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE))
        WLT_SKIP_LACKING("out-of-order queues (CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE)");
    cl_int err = CL_SUCCESS;
    cl_command_queue q = clCreateCommandQueue(cl_ctx, choice.device, CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, &err);
    if (err == CL_INVALID_QUEUE_PROPERTIES) {
        printf("the device refused an out-of-order queue; in-order only\n");
        return;
    }
    assert_int_equal(err, CL_SUCCESS);
    run_queue(q);
    clReleaseCommandQueue(q);
}

/* Buffers smaller than their shape, or from another cl_context: refused, nothing enqueued. */
static void test_bad_buffers(void **state)
{
    (void)state;
    cl_int err = CL_SUCCESS;
    cl_command_queue q = clCreateCommandQueue(cl_ctx, choice.device, 0, &err);
    assert_int_equal(err, CL_SUCCESS);
    wl_context *c = context_on(q);
    device_case *d = case_new(7, REF_EARLY);
    wl_loss_options o;
    wl_loss_options_default(&o, 1000);

    const cl_mem small_f = make_buffer(cl_ctx, sizeof(float) * ROWS - 4);
    const cl_mem small_n = make_buffer(cl_ctx, sizeof(float) * ROWS * NEG - 4);
    const cl_mem small_i = make_buffer(cl_ctx, sizeof(int32_t) * ROWS - 4);
    struct {
        const char *what;
        wl_reduction red;
        cl_mem pos, neg, loss, gp, gn, off;
    } bad[] = {
        {"pos", WL_REDUCE_SUM, small_f, d->d_neg, d->d_loss, d->d_grad_pos, d->d_grad_neg, d->d_offender},
        {"neg", WL_REDUCE_SUM, d->d_pos, small_n, d->d_loss, d->d_grad_pos, d->d_grad_neg, d->d_offender},
        {"loss", WL_REDUCE_NONE, d->d_pos, d->d_neg, small_f, d->d_grad_pos, d->d_grad_neg, d->d_offender},
        {"grad_pos", WL_REDUCE_SUM, d->d_pos, d->d_neg, d->d_loss, small_f, d->d_grad_neg, d->d_offender},
        {"grad_neg", WL_REDUCE_SUM, d->d_pos, d->d_neg, d->d_loss, d->d_grad_pos, small_n, d->d_offender},
        {"offender", WL_REDUCE_SUM, d->d_pos, d->d_neg, d->d_loss, d->d_grad_pos, d->d_grad_neg, small_i},
        {"NULL loss", WL_REDUCE_SUM, d->d_pos, d->d_neg, NULL, d->d_grad_pos, d->d_grad_neg, d->d_offender},
        {"NULL pos", WL_REDUCE_SUM, NULL, d->d_neg, d->d_loss, d->d_grad_pos, d->d_grad_neg, d->d_offender},
        {"NULL neg", WL_REDUCE_SUM, d->d_pos, NULL, d->d_loss, d->d_grad_pos, d->d_grad_neg, d->d_offender},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; ++k) {
        o.reduction = bad[k].red;
        cl_event done = NULL;
        const wl_status s = wl_loss_cl(c, &o, ROWS, NEG, bad[k].pos, bad[k].neg, bad[k].loss, bad[k].gp, bad[k].gn,
                                       bad[k].off, 0, NULL, &done);
        if (s != WL_ERROR_INVALID_ARGUMENT)
            fail_msg("%s: got %s, want invalid argument", bad[k].what, wl_status_string(s));
        assert_null(done);
        assert_true(wl_context_last_error(c)[0] != '\0');
    }
    /* a loss buffer of one float is enough unless the reduction is NONE */
    const cl_mem one = make_buffer(cl_ctx, sizeof(float));
    o.reduction = WL_REDUCE_MEAN;
    assert_int_equal(wl_loss_cl(c, &o, ROWS, NEG, d->d_pos, d->d_neg, one, NULL, NULL, NULL, 0, NULL, NULL),
                     WL_SUCCESS);
    o.reduction = WL_REDUCE_NONE;
    assert_int_equal(wl_loss_cl(c, &o, ROWS, NEG, d->d_pos, d->d_neg, one, NULL, NULL, NULL, 0, NULL, NULL),
                     WL_ERROR_INVALID_ARGUMENT);
    WLT_CHECK_CL(clFinish(q));

    /* a buffer of another OpenCL context on the same device */
    const cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)choice.platform, 0};
    cl_context other = clCreateContext(props, 1, &choice.device, NULL, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    const cl_mem foreign_pos = make_buffer(other, sizeof(float) * ROWS);
    const cl_mem foreign_grad = make_buffer(other, sizeof(float) * ROWS * NEG);
    o.reduction = WL_REDUCE_SUM;
    assert_int_equal(wl_loss_cl(c, &o, ROWS, NEG, foreign_pos, d->d_neg, d->d_loss, NULL, NULL, NULL, 0, NULL, NULL),
                     WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_loss_cl(c, &o, ROWS, NEG, d->d_pos, d->d_neg, d->d_loss, NULL, foreign_grad, NULL, 0, NULL,
                                NULL),
                     WL_ERROR_INVALID_ARGUMENT);
    clReleaseMemObject(foreign_pos);
    clReleaseMemObject(foreign_grad);
    clReleaseContext(other);

    /* after all that, a valid call still works */
    ref_loss(&o, ROWS, NEG, d->pos, d->neg, d->want_loss, d->want_grad_pos, d->want_grad_neg, d->want_offender);
    WLT_CHECK_CL(clEnqueueWriteBuffer(q, d->d_pos, CL_TRUE, 0, sizeof d->pos, d->pos, 0, NULL, NULL));
    WLT_CHECK_CL(clEnqueueWriteBuffer(q, d->d_neg, CL_TRUE, 0, sizeof d->neg, d->neg, 0, NULL, NULL));
    assert_int_equal(wl_loss_cl(c, &o, ROWS, NEG, d->d_pos, d->d_neg, d->d_loss, d->d_grad_pos, d->d_grad_neg,
                                d->d_offender, 0, NULL, NULL),
                     WL_SUCCESS);
    WLT_CHECK_CL(clFinish(q));
    check_outputs(q, d, &o, NULL, 1);

    clReleaseMemObject(one);
    clReleaseMemObject(small_f);
    clReleaseMemObject(small_n);
    clReleaseMemObject(small_i);
    case_free(d);
    wl_context_destroy(c);
    clReleaseCommandQueue(q);
}

/* rows = 0 or negatives = 0 on device buffers. */
static void test_empty_shapes(void **state)
{
    (void)state;
    cl_int err = CL_SUCCESS;
    cl_command_queue q = clCreateCommandQueue(cl_ctx, choice.device, 0, &err);
    assert_int_equal(err, CL_SUCCESS);
    wl_context *c = context_on(q);
    const float pos[3] = {1.0f, -2.0f, 0.5f};
    const cl_mem d_pos = make_buffer(cl_ctx, sizeof pos), d_loss = make_buffer(cl_ctx, sizeof pos);
    const cl_mem d_off = make_buffer(cl_ctx, 3 * sizeof(int32_t)), d_gp = make_buffer(cl_ctx, sizeof pos);
    WLT_CHECK_CL(clEnqueueWriteBuffer(q, d_pos, CL_TRUE, 0, sizeof pos, pos, 0, NULL, NULL));
    wl_loss_options o;
    wl_loss_options_default(&o, 10);
    poison(q, d_loss, sizeof pos);
    assert_int_equal(wl_loss_cl(c, &o, 3, 0, d_pos, NULL, d_loss, d_gp, NULL, d_off, 0, NULL, NULL), WL_SUCCESS);
    float loss = NAN, gp[3];
    int32_t off[3];
    WLT_CHECK_CL(clEnqueueReadBuffer(q, d_loss, CL_TRUE, 0, sizeof loss, &loss, 0, NULL, NULL));
    WLT_CHECK_CL(clEnqueueReadBuffer(q, d_gp, CL_TRUE, 0, sizeof gp, gp, 0, NULL, NULL));
    WLT_CHECK_CL(clEnqueueReadBuffer(q, d_off, CL_TRUE, 0, sizeof off, off, 0, NULL, NULL));
    assert_true(loss == 0.0f);
    for (int b = 0; b < 3; ++b) {
        assert_int_equal(off[b], -1);
        assert_true(gp[b] == 0.0f);
    }
    poison(q, d_loss, sizeof pos);
    cl_event done = NULL;
    assert_int_equal(wl_loss_cl(c, &o, 0, 5, NULL, NULL, d_loss, NULL, NULL, NULL, 0, NULL, &done), WL_SUCCESS);
    assert_non_null(done); /* an event even when there is nothing to compute */
    WLT_CHECK_CL(clWaitForEvents(1, &done));
    clReleaseEvent(done);
    WLT_CHECK_CL(clEnqueueReadBuffer(q, d_loss, CL_TRUE, 0, sizeof loss, &loss, 0, NULL, NULL));
    assert_true(loss == 0.0f);
    clReleaseMemObject(d_pos);
    clReleaseMemObject(d_loss);
    clReleaseMemObject(d_off);
    clReleaseMemObject(d_gp);
    wl_context_destroy(c);
    clReleaseCommandQueue(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_queue),
        cmocka_unit_test(test_out_of_order_queue),
        cmocka_unit_test(test_bad_buffers),
        cmocka_unit_test(test_empty_shapes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
