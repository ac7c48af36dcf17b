/*
 * Fault injection (tests/fault.c): every OpenCL call made by a context
 * creation, by wl_loss and by wl_loss_cl is failed in turn, once with an
 * allocation error and once with another error. Each failure must give the
 * right status (WL_ERROR_OUT_OF_MEMORY for allocation errors, WL_ERROR_BUILD
 * for the program build, WL_ERROR_OPENCL otherwise) with a message naming
 * the failed call, release every OpenCL object it made, and leave the
 * context usable: the next call equals the C reference. Calls the library
 * can do without (the zero-copy wrapping of host memory, the binary cache)
 * must instead succeed with right results. The same for every call of the
 * embedding model's life (test_model_*): after a fault the model still
 * trains exactly like a fresh copy of its tables.
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

static char *warm_cache; /* holds the program after group_setup */
static char *file_dir;   /* the model file of the model's walk, alone in it */
static unsigned long points, recovered;

static int group_setup(void **state)
{
    (void)state;
    wl_context_destroy(wlt_temp_context("faults", &warm_cache));
    file_dir = wlt_temp_dir("faults_files");
    if (wlf_hooked_calls() == 0) {
        fprintf(stderr, "the fault library is not interposed: no OpenCL call went through it\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    printf("fault points walked: %lu (%lu recovered without an error)\n", points, recovered);
    wlt_free_temp_dir(&warm_cache);
    wlt_free_temp_dir(&file_dir);
    return 0;
}

/* ------------------------------------------------------------ expectations */

/* The two errors injected at each point: an allocation failure, and another. */
static void errors_for(wlf_kind k, cl_int err[2])
{
    static const cl_int other[WLF_KIND_COUNT] = {
        [WLF_PLATFORM_IDS] = CL_INVALID_VALUE,
        [WLF_DEVICE_IDS] = CL_INVALID_PLATFORM,
        [WLF_CONTEXT] = CL_DEVICE_NOT_AVAILABLE,
        [WLF_QUEUE] = CL_INVALID_DEVICE,
        [WLF_BUFFER] = CL_INVALID_BUFFER_SIZE,
        [WLF_WRAP] = CL_INVALID_HOST_PTR,
        [WLF_PROGRAM_SOURCE] = CL_INVALID_CONTEXT,
        [WLF_PROGRAM_BINARY] = CL_INVALID_BINARY,
        [WLF_BUILD] = CL_BUILD_PROGRAM_FAILURE,
        [WLF_BUILD_BINARY] = CL_BUILD_PROGRAM_FAILURE,
        [WLF_PROGRAM_INFO] = CL_INVALID_PROGRAM,
        [WLF_KERNEL] = CL_INVALID_KERNEL_NAME,
        [WLF_KERNEL_INFO] = CL_INVALID_DEVICE,
        [WLF_DEVICE_INFO] = CL_INVALID_VALUE,
        [WLF_SET_ARG] = CL_INVALID_ARG_VALUE,
        [WLF_NDRANGE] = CL_INVALID_WORK_GROUP_SIZE,
        [WLF_WRITE] = CL_INVALID_VALUE,
        [WLF_READ] = CL_INVALID_VALUE,
        [WLF_FILL] = CL_INVALID_VALUE,
        [WLF_MARKER] = CL_INVALID_EVENT_WAIT_LIST,
        [WLF_COPY] = CL_MEM_COPY_OVERLAP,
        [WLF_MAP] = CL_MAP_FAILURE,
        [WLF_FINISH] = CL_INVALID_COMMAND_QUEUE,
    };
    switch (k) {
    case WLF_BUFFER:
    case WLF_WRAP: err[0] = CL_MEM_OBJECT_ALLOCATION_FAILURE; break;
    case WLF_PLATFORM_IDS:
    case WLF_DEVICE_IDS:
    case WLF_CONTEXT:
    case WLF_QUEUE:
    case WLF_PROGRAM_SOURCE:
    case WLF_PROGRAM_BINARY:
    case WLF_BUILD:
    case WLF_BUILD_BINARY:
    case WLF_PROGRAM_INFO:
    case WLF_DEVICE_INFO: err[0] = CL_OUT_OF_HOST_MEMORY; break;
    default: err[0] = CL_OUT_OF_RESOURCES; break;
    }
    err[1] = other[k];
}

static int is_allocation_error(cl_int err)
{
    return err == CL_OUT_OF_HOST_MEMORY || err == CL_OUT_OF_RESOURCES || err == CL_MEM_OBJECT_ALLOCATION_FAILURE;
}

static wl_status expected_status(wlf_kind k, cl_int err)
{
    if (is_allocation_error(err))
        return WL_ERROR_OUT_OF_MEMORY;
    if (k == WLF_BUILD || k == WLF_KERNEL)
        return WL_ERROR_BUILD;
    return WL_ERROR_OPENCL;
}

/* The library does without these calls: a failure must not fail the work. */
static int recoverable(wlf_kind k)
{
    return k == WLF_WRAP || k == WLF_PROGRAM_BINARY || k == WLF_BUILD_BINARY || k == WLF_PROGRAM_INFO;
}

/* Check the outcome of a faulted call. Returns 1 if it succeeded (recovered). */
static int judge(const char *label, wlf_kind k, unsigned long n, cl_int err, wl_status s, const char *msg)
{
    ++points;
    /* a call CLBlast made: CLBlast passes OpenCL's code on and does without none of its calls */
    const int in_blas = strstr(wlf_fired_caller(), "libclblast") != NULL;
    if (!wlf_fired())
        fail_msg("%s: the fault at %s #%lu never fired", label, wlf_kind_name(k), n);
    if (s == WL_SUCCESS) {
        /* clGetDeviceInfo: most answers are only hints (a missing one falls back to a default);
         * clGetDeviceIDs: another platform may still have a device */
        if ((!recoverable(k) || in_blas) && k != WLF_DEVICE_INFO && k != WLF_DEVICE_IDS)
            fail_msg("%s: %s #%lu failed with %d but the call succeeded", label, wlf_kind_name(k), n, (int)err);
        ++recovered;
        return 1;
    }
    if (recoverable(k) && !in_blas)
        fail_msg("%s: %s #%lu failed (%d): got %s (%s); the library must do without it", label, wlf_kind_name(k), n,
                 (int)err, wl_status_string(s), msg);
    if (k == WLF_PLATFORM_IDS || k == WLF_DEVICE_IDS) {
        /* the device listing: no device found, or out of memory */
        const int ok = s == WL_ERROR_NO_DEVICE ||
                       s == (is_allocation_error(err) ? WL_ERROR_OUT_OF_MEMORY : WL_ERROR_OPENCL);
        if (!ok || !msg || !msg[0])
            fail_msg("%s: %s #%lu failed with %d: got %s: \"%s\"", label, wlf_kind_name(k), n, (int)err,
                     wl_status_string(s), msg ? msg : "(null)");
        return 0;
    }
    /* inside CLBlast, after a failed build, CLBlast reports the error of the build-log query that follows
     * (CL_INVALID_PROGRAM): an OpenCL error */
    const wl_status want = expected_status(k, err);
    if (s != want && !(in_blas && s == WL_ERROR_OPENCL))
        fail_msg("%s: %s #%lu failed with %d: got %s, want %s: \"%s\"", label, wlf_kind_name(k), n, (int)err,
                 wl_status_string(s), wl_status_string(want), msg);
    /* inside CLBlast the message names the CLBlast call (CLBlast does not say which OpenCL call failed) */
    const char *name = in_blas ? "CLBlast" : wlf_fired_call();
    if (!msg || !strstr(msg, name))
        fail_msg("%s: %s #%lu: the message does not name %s: \"%s\"", label, wlf_kind_name(k), n, name,
                 msg ? msg : "(null)");
    return 0;
}

/* ------------------------------------------------------------ the cases */

enum { ROWS = 97, NEG = 45, NEG2 = 60 };

typedef struct loss_case {
    wl_loss_options o;
    size_t rows, negatives;
    float *pos, *neg, *want_loss, *want_gp, *want_gn;
    int32_t *want_off;
} loss_case;

static loss_case make_case(uint64_t seed, ref_regime regime, size_t rows, size_t negatives, wl_reduction red,
                           wl_weighting w, int check_finite)
{
    loss_case k;
    wl_loss_options_default(&k.o, 5000);
    k.o.reduction = red;
    k.o.weighting = w;
    k.o.check_finite = check_finite;
    k.rows = rows, k.negatives = negatives;
    k.pos = wlt_alloc(rows * sizeof(float));
    k.neg = wlt_alloc(rows * negatives * sizeof(float));
    k.want_loss = wlt_alloc(rows * sizeof(float));
    k.want_gp = wlt_alloc(rows * sizeof(float));
    k.want_gn = wlt_alloc(rows * negatives * sizeof(float));
    k.want_off = wlt_alloc(rows * sizeof(int32_t));
    ref_make_inputs(seed, regime, rows, negatives, 1.0f, k.pos, k.neg);
    ref_loss(&k.o, rows, negatives, k.pos, k.neg, k.want_loss, k.want_gp, k.want_gn, k.want_off);
    return k;
}

static void free_case(loss_case *k)
{
    free(k->pos), free(k->neg), free(k->want_loss), free(k->want_gp), free(k->want_gn), free(k->want_off);
}

static void compare(const char *label, const loss_case *k, const float *loss, const float *gp, const float *gn,
                    const int32_t *off)
{
    const size_t nloss = k->o.reduction == WL_REDUCE_NONE ? k->rows : 1;
    for (size_t i = 0; i < nloss; ++i)
        if (!wlt_close(loss[i], k->want_loss[i], 1e-5, 1e-6))
            fail_msg("%s: loss[%zu] = %.9g, reference %.9g", label, i, (double)loss[i], (double)k->want_loss[i]);
    if (wlt_first_value_mismatch(gp, k->want_gp, k->rows) != k->rows)
        fail_msg("%s: grad_pos differs from the reference", label);
    if (wlt_first_value_mismatch(gn, k->want_gn, k->rows * k->negatives) != k->rows * k->negatives)
        fail_msg("%s: grad_neg differs from the reference", label);
    if (wlt_first_i32_mismatch(off, k->want_off, k->rows) != k->rows)
        fail_msg("%s: offender differs from the reference", label);
}

/* One loss call on c, host or device memory; with check != NULL its results are compared. */
typedef struct device_buffers {
    cl_mem pos, neg, loss, gp, gn, off;
} device_buffers;

static device_buffers make_device(wl_context *c, const loss_case *k)
{
    const cl_context cl = wl_context_cl_context(c);
    device_buffers d;
    d.pos = wlt_make_buffer(cl, k->rows * sizeof(float), k->pos);
    d.neg = wlt_make_buffer(cl, k->rows * k->negatives * sizeof(float), k->neg);
    d.loss = wlt_make_buffer(cl, k->rows * sizeof(float), NULL);
    d.gp = wlt_make_buffer(cl, k->rows * sizeof(float), NULL);
    d.gn = wlt_make_buffer(cl, k->rows * k->negatives * sizeof(float), NULL);
    d.off = wlt_make_buffer(cl, k->rows * sizeof(int32_t), NULL);
    return d;
}

static void free_device(device_buffers *d)
{
    cl_mem all[] = {d->pos, d->neg, d->loss, d->gp, d->gn, d->off};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        WLT_CHECK_CL(clReleaseMemObject(all[i]));
}

static wl_status run_host(wl_context *c, const loss_case *k, const char *check)
{
    float *loss = wlt_alloc(k->rows * sizeof(float)), *gp = wlt_alloc(k->rows * sizeof(float));
    float *gn = wlt_alloc(k->rows * k->negatives * sizeof(float));
    int32_t *off = wlt_alloc(k->rows * sizeof(int32_t));
    const wl_status s = wl_loss(c, &k->o, k->rows, k->negatives, k->pos, k->neg, loss, gp, gn, off);
    if (check && s == WL_SUCCESS)
        compare(check, k, loss, gp, gn, off);
    free(loss), free(gp), free(gn), free(off);
    return s;
}

static wl_status run_device(wl_context *c, const loss_case *k, const device_buffers *d, const char *check)
{
    cl_event done = NULL;
    const wl_status s = wl_loss_cl(c, &k->o, k->rows, k->negatives, d->pos, d->neg, d->loss, d->gp, d->gn, d->off, 0,
                                   NULL, &done);
    if (s != WL_SUCCESS) {
        if (done)
            fail_msg("wl_loss_cl failed but gave a done event");
        return s;
    }
    if (!done)
        fail_msg("wl_loss_cl succeeded without a done event");
    if (check) {
        cl_command_queue q = wl_context_queue(c);
        float *loss = wlt_alloc(k->rows * sizeof(float)), *gp = wlt_alloc(k->rows * sizeof(float));
        float *gn = wlt_alloc(k->rows * k->negatives * sizeof(float));
        int32_t *off = wlt_alloc(k->rows * sizeof(int32_t));
        const size_t nloss = k->o.reduction == WL_REDUCE_NONE ? k->rows : 1;
        WLT_CHECK_CL(clEnqueueReadBuffer(q, d->loss, CL_TRUE, 0, nloss * sizeof(float), loss, 1, &done, NULL));
        WLT_CHECK_CL(clEnqueueReadBuffer(q, d->gp, CL_TRUE, 0, k->rows * sizeof(float), gp, 1, &done, NULL));
        WLT_CHECK_CL(
            clEnqueueReadBuffer(q, d->gn, CL_TRUE, 0, k->rows * k->negatives * sizeof(float), gn, 1, &done, NULL));
        WLT_CHECK_CL(clEnqueueReadBuffer(q, d->off, CL_TRUE, 0, k->rows * sizeof(int32_t), off, 1, &done, NULL));
        compare(check, k, loss, gp, gn, off);
        free(loss), free(gp), free(gn), free(off);
    }
    WLT_CHECK_CL(clWaitForEvents(1, &done));
    WLT_CHECK_CL(clReleaseEvent(done));
    return s;
}

static wl_context *create_warm(void)
{
    wl_context_options o;
    wlt_context_options(&o, warm_cache);
    wl_context *c = NULL;
    const wl_status s = wl_context_create(&o, &c);
    if (s != WL_SUCCESS)
        fail_msg("wl_context_create: %s: %s", wl_status_string(s), wl_context_last_error(NULL));
    return c;
}

/* ------------------------------------------------------------ context creation */

/* wl_context_create, or wl_context_create_with_queue when queue is given */
static wl_status create_on(const wl_context_options *o, cl_command_queue queue, wl_context **c)
{
    return queue ? wl_context_create_with_queue(queue, o, c) : wl_context_create(o, c);
}

static void walk_create(const char *label, const char *cache, cl_command_queue queue)
{
    wl_context_options o;
    wlt_context_options(&o, cache);
    loss_case k = make_case(7, REF_DEEP, ROWS, NEG, WL_REDUCE_SUM, WL_WEIGHT_HARMONIC, 0);
    unsigned long count[WLF_KIND_COUNT];
    const long base = wlf_live_total();
    wlf_reset_counts();
    wl_context *c = NULL;
    if (create_on(&o, queue, &c) != WL_SUCCESS)
        fail_msg("%s: %s", label, wl_context_last_error(NULL));
    for (int i = 0; i < WLF_KIND_COUNT; ++i)
        count[i] = wlf_count((wlf_kind)i);
    wl_context_destroy(c);
    if (count[WLF_CONTEXT] != !queue || count[WLF_QUEUE] != !queue || count[WLF_KERNEL] == 0)
        fail_msg("%s: the calls were not interposed (%lu clCreateContext, %lu clCreateKernel)", label,
                 count[WLF_CONTEXT], count[WLF_KERNEL]);
    if (wlf_live_total() != base)
        fail_msg("%s: %ld OpenCL objects left after wl_context_destroy", label, wlf_live_total() - base);

    const unsigned long before = points;
    for (int kind = 0; kind < WLF_KIND_COUNT; ++kind) {
        cl_int errs[2];
        errors_for((wlf_kind)kind, errs);
        for (unsigned long n = 1; n <= count[kind]; ++n) {
            for (int e = 0; e < 2; ++e) {
                wlf_reset_counts();
                wlf_arm((wlf_kind)kind, n, errs[e]);
                c = NULL;
                const wl_status s = create_on(&o, queue, &c);
                wlf_disarm();
                if (judge(label, (wlf_kind)kind, n, errs[e], s, wl_context_last_error(NULL))) {
                    run_host(c, &k, label);
                } else if (c) {
                    fail_msg("%s: a failed wl_context_create gave a context", label);
                }
                wl_context_destroy(c);
                if (wlf_live_total() != base)
                    fail_msg("%s: %s #%lu failed with %d: %ld OpenCL objects leaked", label,
                             wlf_kind_name((wlf_kind)kind), n, (int)errs[e], wlf_live_total() - base);
                /* the next creation works */
                c = NULL;
                if (create_on(&o, queue, &c) != WL_SUCCESS)
                    fail_msg("%s: creating after a fault: %s", label, wl_context_last_error(NULL));
                run_host(c, &k, label);
                wl_context_destroy(c);
            }
        }
    }
    printf("%s: %lu fault points\n", label, points - before);
    free_case(&k);
}

static void test_create_compiling(void **state)
{
    (void)state;
    walk_create("wl_context_create (no cache)", "", NULL);
}

static void test_create_from_cache(void **state)
{
    (void)state;
    walk_create("wl_context_create (cache)", warm_cache, NULL);
}

static void test_create_with_queue(void **state)
{
    (void)state;
    wl_device_choice choice;
    assert_int_equal(wl_select_device(NULL, &choice), WL_SUCCESS);
    cl_int err = CL_SUCCESS;
    const cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)choice.platform, 0};
    cl_context cl = clCreateContext(props, 1, &choice.device, NULL, NULL, &err);
    WLT_CHECK_CL(err);
    cl_command_queue q = clCreateCommandQueue(cl, choice.device, 0, &err);
    WLT_CHECK_CL(err);
    walk_create("wl_context_create_with_queue (cache)", warm_cache, q);
    WLT_CHECK_CL(clReleaseCommandQueue(q));
    WLT_CHECK_CL(clReleaseContext(cl));
}

/* ------------------------------------------------------------ loss calls */

typedef struct loss_walk {
    const char *label;
    int device;             /* wl_loss_cl instead of wl_loss */
    int plan;               /* a wlt_plan_names index for the context, or -1: the device's own */
    const loss_case *setup; /* a call made before, on the same context (host memory), or NULL */
    const loss_case *k;     /* the faulted call */
} loss_walk;

static wl_status action(const loss_walk *w, wl_context *c, const device_buffers *d, const char *check)
{
    return w->device ? run_device(c, w->k, d, check) : run_host(c, w->k, check);
}

/* A fresh context (from the cache) with the walk's setup done. */
static wl_context *prepare(const loss_walk *w, device_buffers *d)
{
    wl_context *c = w->plan < 0 ? create_warm() : wlt_context_with_plan(warm_cache, w->plan);
    if (w->setup && run_host(c, w->setup, "setup") != WL_SUCCESS)
        fail_msg("%s: setup: %s", w->label, wl_context_last_error(c));
    if (w->device)
        *d = make_device(c, w->k);
    return c;
}

static void walk_loss(const loss_walk *w)
{
    device_buffers d;
    const long base = wlf_live_total();
    wl_context *c = prepare(w, &d);
    wlf_reset_counts();
    if (action(w, c, &d, NULL) != WL_SUCCESS)
        fail_msg("%s: %s", w->label, wl_context_last_error(c));
    unsigned long count[WLF_KIND_COUNT];
    for (int i = 0; i < WLF_KIND_COUNT; ++i)
        count[i] = wlf_count((wlf_kind)i);
    if (action(w, c, &d, w->label) != WL_SUCCESS)
        fail_msg("%s: %s", w->label, wl_context_last_error(c));
    if (count[WLF_NDRANGE] == 0)
        fail_msg("%s: no clEnqueueNDRangeKernel went through the fault library", w->label);
    if (w->device)
        free_device(&d);
    wl_context_destroy(c);
    if (wlf_live_total() != base)
        fail_msg("%s: %ld OpenCL objects left after wl_context_destroy", w->label, wlf_live_total() - base);

    const unsigned long before = points;
    for (int kind = 0; kind < WLF_KIND_COUNT; ++kind) {
        cl_int errs[2];
        errors_for((wlf_kind)kind, errs);
        for (unsigned long n = 1; n <= count[kind]; ++n) {
            for (int e = 0; e < 2; ++e) {
                c = prepare(w, &d);
                wlf_reset_counts();
                wlf_arm((wlf_kind)kind, n, errs[e]);
                const wl_status s = action(w, c, &d, NULL);
                wlf_disarm();
                judge(w->label, (wlf_kind)kind, n, errs[e], s, wl_context_last_error(c));
                /* the context still works, twice (a stale event or buffer would show) */
                for (int again = 0; again < 2; ++again) {
                    const wl_status s2 = action(w, c, &d, w->label);
                    if (s2 != WL_SUCCESS)
                        fail_msg("%s: after %s #%lu failed with %d, the next call gives %s: %s", w->label,
                                 wlf_kind_name((wlf_kind)kind), n, (int)errs[e], wl_status_string(s2),
                                 wl_context_last_error(c));
                }
                if (w->device)
                    free_device(&d);
                wl_context_destroy(c);
                if (wlf_live_total() != base)
                    fail_msg("%s: %s #%lu failed with %d: %ld OpenCL objects leaked", w->label,
                             wlf_kind_name((wlf_kind)kind), n, (int)errs[e], wlf_live_total() - base);
            }
        }
    }
    printf("%s: %lu fault points\n", w->label, points - before);
}

static void test_loss_host(void **state)
{
    (void)state;
    loss_case first = make_case(11, REF_DEEP, ROWS, NEG, WL_REDUCE_SUM, WL_WEIGHT_LOG, 0);
    loss_case second = make_case(12, REF_EARLY, ROWS + 20, NEG2, WL_REDUCE_MEAN, WL_WEIGHT_HARMONIC, 1);
    loss_case none = make_case(13, REF_DEEP, ROWS, NEG, WL_REDUCE_NONE, WL_WEIGHT_LOG, 0);
    const loss_walk walks[] = {
        {"wl_loss (sum, new context)", 0, -1, NULL, &first},
        {"wl_loss (mean, used context, new shape)", 0, -1, &first, &second},
        {"wl_loss (none, work-group scan)", 0, 1, NULL, &none},
        {"wl_loss (none, a GPU's plan)", 0, 2, NULL, &none},
    };
    for (size_t i = 0; i < sizeof walks / sizeof walks[0]; ++i)
        walk_loss(&walks[i]);
    free_case(&first), free_case(&second), free_case(&none);
}

static void test_loss_device(void **state)
{
    (void)state;
    loss_case first = make_case(21, REF_DEEP, ROWS, NEG, WL_REDUCE_SUM, WL_WEIGHT_LOG, 1);
    loss_case mean = make_case(22, REF_EARLY, ROWS, NEG2, WL_REDUCE_MEAN, WL_WEIGHT_HARMONIC, 0);
    loss_case none = make_case(23, REF_NONE, ROWS, NEG, WL_REDUCE_NONE, WL_WEIGHT_LOG, 1);
    const loss_walk walks[] = {
        {"wl_loss_cl (sum, check_finite, new context)", 1, -1, NULL, &first},
        {"wl_loss_cl (mean, used context)", 1, -1, &first, &mean},
        {"wl_loss_cl (none, check_finite, work-group scan)", 1, 1, NULL, &none},
    };
    for (size_t i = 0; i < sizeof walks / sizeof walks[0]; ++i)
        walk_loss(&walks[i]);
    free_case(&first), free_case(&mean), free_case(&none);
}

/* ------------------------------------------------------------ the model */

/* Every OpenCL call of one model's life on a fresh context (the model program
 * from the cache): create, set_known, step with per-row candidates and a
 * result, a sampled step without one, step_cl with a result and a done event,
 * a table's read and write, the state's (Adagrad), saving the model to a
 * file and loading it into a second model (a failed save leaves no file, a
 * failed load no model), recommend, rank and evaluate. After
 * each fault the model (if created) is copied into a fresh one and both take
 * the same step: results, tables and state must be bitwise equal, so a failed
 * call left nothing behind (a step's accumulators included). */
enum { M_USERS = 20, M_ITEMS = 30, M_DIM = 8, M_ROWS = 16, M_NEG = 5, M_KNOWN = 2 * M_USERS };

typedef struct model_data {
    int32_t users[M_ROWS], pos[M_ROWS], neg[M_ROWS * M_NEG], known[M_KNOWN];
    uint64_t indptr[M_USERS + 1];
} model_data;

static model_data make_model_data(void)
{
    model_data d;
    for (int k = 0; k < M_ROWS; ++k)
        d.users[k] = (k * 7) % M_USERS, d.pos[k] = (k * 11) % M_ITEMS;
    for (int k = 0; k < M_ROWS * M_NEG; ++k)
        d.neg[k] = (k * 13 + 5) % M_ITEMS;
    d.indptr[0] = 0;
    for (int u = 0; u < M_USERS; ++u) {
        d.indptr[u + 1] = d.indptr[u] + 2;
        d.known[2 * u] = u % M_ITEMS;
        d.known[2 * u + 1] = u % M_ITEMS + 1 + u % 3;
    }
    return d;
}

static void model_options(wl_model_options *o, int sgd)
{
    wl_model_options_default(o, M_USERS, M_ITEMS, M_DIM);
    o->seed = 7;
    o->optimizer = sgd ? WL_OPTIMIZER_SGD : WL_OPTIMIZER_ADAGRAD;
    o->l2_items = 0.01f;
}

static const char *const model_stages[] = {"wl_model_create",
                                           "wl_model_set_known",
                                           "wl_model_step (result)",
                                           "wl_model_step (sampled, no result)",
                                           "wl_model_step_cl",
                                           "wl_model_read/write",
                                           "wl_model_read_state/write_state",
                                           "wl_model_read_rows/write_rows",
                                           "wl_model_changed_rows",
                                           "wl_model_save",
                                           "wl_model_load",
                                           "wl_model_step (shared, SGEMM)",
                                           "wl_model_recommend",
                                           "wl_model_rank",
                                           "wl_model_evaluate",
                                           "(all done)"};

/* The sequence on c, stopping at the first error; *out keeps the model, *stage the call reached. */
static wl_status model_calls(wl_context *c, int sgd, const model_data *d, const cl_mem ids[3], wl_model **out,
                             int *stage)
{
    wl_model_options o;
    model_options(&o, sgd);
    wl_loss_options lo;
    wl_loss_options_default(&lo, M_ITEMS);
    wl_status s;
    *out = NULL;
    *stage = 0;
    if ((s = wl_model_create(c, &o, out)) != WL_SUCCESS)
        return s;
    wl_model *m = *out;
    *stage = 1;
    if ((s = wl_model_set_known(m, d->indptr, d->known)) != WL_SUCCESS)
        return s;
    *stage = 2;
    wl_batch b = {M_ROWS, d->users, d->pos, M_NEG, d->neg, 0, 0, NULL};
    wl_step_result r;
    if ((s = wl_model_step(m, &lo, &b, &r)) != WL_SUCCESS)
        return s;
    *stage = 3;
    b.neg_items = NULL, b.sample_key = 3;
    if ((s = wl_model_step(m, &lo, &b, NULL)) != WL_SUCCESS)
        return s;
    *stage = 4;
    const wl_batch_cl bc = {M_ROWS / 2, M_ROWS / 2, ids[0], ids[1], M_NEG, ids[2], 0, 0, NULL};
    cl_event done = NULL;
    s = wl_model_step_cl(m, &lo, &bc, &r, 0, NULL, &done);
    if ((s == WL_SUCCESS) != (done != NULL))
        fail_msg("wl_model_step_cl gave %s %s a done event", wl_status_string(s), done ? "with" : "without");
    if (done) {
        WLT_CHECK_CL(clWaitForEvents(1, &done));
        WLT_CHECK_CL(clReleaseEvent(done));
    }
    if (s != WL_SUCCESS)
        return s;
    *stage = 5;
    float v[M_ITEMS * M_DIM];
    if ((s = wl_model_read(m, WL_TABLE_ITEMS, v)) != WL_SUCCESS || (s = wl_model_write(m, WL_TABLE_ITEMS, v)))
        return s;
    *stage = 6;
    if (!sgd && ((s = wl_model_read_state(m, WL_TABLE_USERS, v)) != WL_SUCCESS ||
                 (s = wl_model_write_state(m, WL_TABLE_USERS, v)) != WL_SUCCESS))
        return s;
    *stage = 7;
    {
        /* some rows read (repeated, with the state) and written back ascending */
        const uint32_t read_ids[5] = {M_ITEMS - 1, 2, 0, 2, 5}, write_ids[4] = {0, 2, 5, M_ITEMS - 1};
        float rows[5 * M_DIM], state[5 * M_DIM] = {0}, back[4 * M_DIM], back_state[4 * M_DIM];
        if ((s = wl_model_read_rows(m, WL_TABLE_ITEMS, 5, read_ids, rows, sgd ? NULL : state)) != WL_SUCCESS)
            return s;
        static const int order[4] = {2, 1, 4, 0}; /* where write_ids[k] is in read_ids */
        for (int k = 0; k < 4; ++k) {
            memcpy(back + k * M_DIM, rows + order[k] * M_DIM, sizeof(float) * M_DIM);
            memcpy(back_state + k * M_DIM, state + order[k] * M_DIM, sizeof(float) * M_DIM);
        }
        if ((s = wl_model_write_rows(m, WL_TABLE_ITEMS, 4, write_ids, back, sgd ? NULL : back_state)) != WL_SUCCESS)
            return s;
    }
    *stage = 8;
    {
        /* the users the steps changed (ascending, in range, some), then none; the items only counted */
        uint32_t changed[M_USERS];
        size_t n = 0;
        if ((s = wl_model_changed_rows(m, WL_TABLE_USERS, changed, &n)) != WL_SUCCESS)
            return s;
        if (n == 0 || n > M_USERS)
            fail_msg("wl_model_changed_rows listed %zu of %d users after three steps", n, M_USERS);
        for (size_t k = 0; k < n; ++k)
            if (changed[k] >= M_USERS || (k > 0 && changed[k] <= changed[k - 1]))
                fail_msg("wl_model_changed_rows: row %zu is %u", k, (unsigned)changed[k]);
        if ((s = wl_model_changed_rows(m, WL_TABLE_USERS, changed, &n)) != WL_SUCCESS)
            return s;
        if (n != 0)
            fail_msg("wl_model_changed_rows listed %zu users again", n);
        if ((s = wl_model_changed_rows(m, WL_TABLE_ITEMS, NULL, &n)) != WL_SUCCESS)
            return s;
    }
    *stage = 9;
    static const char app[] = "application bytes";
    char *path = wlt_join(file_dir, "model.wlm");
    remove(path);
    s = wl_model_save(m, path, app, sizeof app);
    if (s != WL_SUCCESS && wlt_count_files(file_dir) != 0)
        fail_msg("a failed wl_model_save (%s) left a file", wl_status_string(s));
    if (s == WL_SUCCESS) {
        *stage = 10;
        wl_model *loaded = (wl_model *)&loaded;
        void *app_back = &app_back;
        size_t app_size = 1;
        s = wl_model_load(c, path, &loaded, &app_back, &app_size);
        if (s != WL_SUCCESS && (loaded || app_back || app_size))
            fail_msg("a failed wl_model_load (%s) gave a model or application bytes", wl_status_string(s));
        if (s == WL_SUCCESS && (app_size != sizeof app || memcmp(app_back, app, sizeof app) != 0))
            fail_msg("wl_model_load gave other application bytes");
        wl_free(s == WL_SUCCESS ? app_back : NULL);
        wl_model_destroy(loaded);
    }
    remove(path);
    free(path);
    if (s != WL_SUCCESS)
        return s;
    *stage = 11;
    b.neg_items = d->neg + M_NEG, b.shared_negatives = 1;
    if ((s = wl_model_step(m, &lo, &b, &r)) != WL_SUCCESS)
        return s;
    *stage = 12;
    int32_t top[4 * 3];
    float top_scores[4 * 3];
    if ((s = wl_model_recommend(m, 4, d->users, 3, 1, top, top_scores)) != WL_SUCCESS)
        return s;
    *stage = 13;
    uint32_t ranks[4];
    if ((s = wl_model_rank(m, 4, d->users, d->pos, 1, ranks)) != WL_SUCCESS)
        return s;
    *stage = 14;
    wl_metrics metrics;
    wl_user_metrics per_user[M_USERS];
    if ((s = wl_model_evaluate(m, d->indptr, d->known, 3, 1, &metrics, per_user)) != WL_SUCCESS)
        return s;
    *stage = 15;
    return WL_SUCCESS;
}

static size_t model_table_count(wl_table t)
{
    return t == WL_TABLE_USERS ? M_USERS * M_DIM : t == WL_TABLE_ITEMS ? M_ITEMS * M_DIM : M_ITEMS;
}

/* m, copied into a fresh model: the same step on both gives bitwise equal results, tables and state. */
static void check_model_works(const char *label, wl_context *c, wl_model *m, int sgd, const model_data *d)
{
    wl_model_options o;
    model_options(&o, sgd);
    wl_loss_options lo;
    wl_loss_options_default(&lo, M_ITEMS);
    wl_model *f = NULL;
    if (wl_model_create(c, &o, &f) != WL_SUCCESS)
        fail_msg("%s: a fresh model: %s", label, wl_context_last_error(c));
    float a[M_ITEMS * M_DIM], b[M_ITEMS * M_DIM];
    for (int t = 0; t < 3; ++t) {
        if (wl_model_read(m, (wl_table)t, a) != WL_SUCCESS || wl_model_write(f, (wl_table)t, a) != WL_SUCCESS)
            fail_msg("%s: copying table %d after the fault: %s", label, t, wl_context_last_error(c));
        if (!sgd && (wl_model_read_state(m, (wl_table)t, a) != WL_SUCCESS ||
                     wl_model_write_state(f, (wl_table)t, a) != WL_SUCCESS))
            fail_msg("%s: copying state %d after the fault: %s", label, t, wl_context_last_error(c));
    }
    if (wl_model_set_known(m, d->indptr, d->known) != WL_SUCCESS ||
        wl_model_set_known(f, d->indptr, d->known) != WL_SUCCESS)
        fail_msg("%s: set_known after the fault: %s", label, wl_context_last_error(c));
    const wl_batch batch = {M_ROWS, d->users, d->pos, M_NEG, d->neg, 0, 0, NULL};
    wl_step_result r1, r2;
    const wl_status s1 = wl_model_step(m, &lo, &batch, &r1), s2 = wl_model_step(f, &lo, &batch, &r2);
    if (s1 != WL_SUCCESS || s2 != WL_SUCCESS)
        fail_msg("%s: the step after the fault: %s, on a fresh model %s: %s", label, wl_status_string(s1),
                 wl_status_string(s2), wl_context_last_error(c));
    if (memcmp(&r1.loss, &r2.loss, sizeof r1.loss) || r1.offenders != r2.offenders || r1.scores != r2.scores)
        fail_msg("%s: the step after the fault gives loss %.17g (%llu offenders), a fresh model %.17g (%llu)", label,
                 r1.loss, (unsigned long long)r1.offenders, r2.loss, (unsigned long long)r2.offenders);
    for (int t = 0; t < 3; ++t) {
        for (int state = 0; state < 2 - sgd; ++state) {
            wl_status sa = state ? wl_model_read_state(m, (wl_table)t, a) : wl_model_read(m, (wl_table)t, a);
            wl_status sb = state ? wl_model_read_state(f, (wl_table)t, b) : wl_model_read(f, (wl_table)t, b);
            if (sa != WL_SUCCESS || sb != WL_SUCCESS)
                fail_msg("%s: reading back: %s", label, wl_context_last_error(c));
            if (memcmp(a, b, model_table_count((wl_table)t) * sizeof(float)))
                fail_msg("%s: %s %d differs from a fresh model's after the same step", label, state ? "state" : "table",
                         t);
        }
    }
    wl_model_destroy(f);
}

static void release_ids(cl_mem ids[3])
{
    for (int i = 0; i < 3; ++i)
        WLT_CHECK_CL(clReleaseMemObject(ids[i]));
}

static wl_context *model_context(const model_data *d, cl_mem ids[3])
{
    wl_context *c = create_warm();
    const cl_context cl = wl_context_cl_context(c);
    ids[0] = wlt_make_buffer(cl, sizeof d->users, d->users);
    ids[1] = wlt_make_buffer(cl, sizeof d->pos, d->pos);
    ids[2] = wlt_make_buffer(cl, sizeof d->neg, d->neg);
    return c;
}

static void walk_model(int sgd)
{
    const char *label = sgd ? "wl_model (SGD)" : "wl_model (Adagrad)";
    const model_data d = make_model_data();
    const long base = wlf_live_total();
    cl_mem ids[3];
    wl_model *m;
    int stage;
    unsigned long count[WLF_KIND_COUNT];
    /* CLBlast's own calls (the SGEMM stages come last, so that the points before them do not compile CLBlast's
     * kernels): the first of each run of consecutive calls of a kind is walked, the others are calls alike */
    static unsigned char in_blas[WLF_KIND_COUNT][4096];
    /* twice: the first stores the model program in the cache */
    for (int run = 0; run < 2; ++run) {
        wl_context *c = model_context(&d, ids);
        wlf_reset_counts();
        if (model_calls(c, sgd, &d, ids, &m, &stage) != WL_SUCCESS)
            fail_msg("%s: %s: %s", label, model_stages[stage], wl_context_last_error(c));
        for (int i = 0; i < WLF_KIND_COUNT; ++i) {
            count[i] = wlf_count((wlf_kind)i);
            if (count[i] > sizeof in_blas[i])
                fail_msg("%s: %lu calls of %s, more than this test keeps", label, count[i], wlf_kind_name((wlf_kind)i));
            for (unsigned long n = 1; n <= count[i]; ++n)
                in_blas[i][n - 1] = strstr(wlf_caller((wlf_kind)i, n), "libclblast") != NULL;
        }
        check_model_works(label, c, m, sgd, &d);
        wl_model_destroy(m);
        release_ids(ids);
        wl_context_destroy(c);
        if (wlf_live_total() != base)
            fail_msg("%s: %ld OpenCL objects left after wl_context_destroy", label, wlf_live_total() - base);
    }
    if (count[WLF_NDRANGE] == 0 || count[WLF_READ] == 0)
        fail_msg("%s: the model's calls did not go through the fault library", label);

    const unsigned long before = points;
    unsigned long blas_skipped = 0;
    for (int kind = 0; kind < WLF_KIND_COUNT; ++kind) {
        cl_int errs[2];
        errors_for((wlf_kind)kind, errs);
        for (unsigned long n = 1; n <= count[kind]; ++n) {
            if (n > 1 && in_blas[kind][n - 1] && in_blas[kind][n - 2]) {
                ++blas_skipped;
                continue;
            }
            /* both errors on the first call of each kind, then one each, in turn: what an error becomes
             * depends on its kind, not on the call (the loss walks above try both on every call) */
            const int first_e = n == 1 ? 0 : (int)(n % 2), last_e = n == 1 ? 1 : first_e;
            for (int e = first_e; e <= last_e; ++e) {
                wl_context *c = model_context(&d, ids);
                wlf_reset_counts();
                wlf_arm((wlf_kind)kind, n, errs[e]);
                const wl_status s = model_calls(c, sgd, &d, ids, &m, &stage);
                wlf_disarm();
                char what[200];
                snprintf(what, sizeof what, "%s, %s", label, model_stages[stage]);
                judge(what, (wlf_kind)kind, n, errs[e], s, wl_context_last_error(c));
                if (stage == 0 && m)
                    fail_msg("%s: a failed wl_model_create gave a model", what);
                if (m)
                    check_model_works(what, c, m, sgd, &d);
                wl_model_destroy(m);
                release_ids(ids);
                wl_context_destroy(c);
                if (wlf_live_total() != base)
                    fail_msg("%s: %s #%lu failed with %d: %ld OpenCL objects leaked", what,
                             wlf_kind_name((wlf_kind)kind), n, (int)errs[e], wlf_live_total() - base);
            }
        }
    }
    printf("%s: %lu fault points (%lu calls inside CLBlast not walked)\n", label, points - before, blas_skipped);
}

static void test_model_adagrad(void **state)
{
    (void)state;
    walk_model(0);
}

/* With WARPLOSS_POISON: its fill and barrier for every new buffer are walked too. */
static void test_model_sgd(void **state)
{
    (void)state;
    const char *old = getenv("WARPLOSS_POISON");
    char *saved = old ? strdup(old) : NULL;
    setenv("WARPLOSS_POISON", "1", 1);
    walk_model(1);
    if (saved)
        setenv("WARPLOSS_POISON", saved, 1);
    else
        unsetenv("WARPLOSS_POISON");
    free(saved);
}

/* ------------------------------------------------------------ the hybrid model */

/* The feature calls: a model with user and item features (identity plus 3
 * more each), its matrices set, a weighted step (the representations, the
 * feature scatter), the representations read, users recommended from feature
 * rows with exclusions, an evaluation among a subset, and the model saved and
 * loaded with its matrices. After each fault the model (if created) is copied
 * into a fresh one and both take the same step. */
enum { F_USER_FEATURES = M_USERS + 3, F_ITEM_FEATURES = M_ITEMS + 3 };

typedef struct feature_data {
    uint64_t uptr[M_USERS + 1], iptr[M_ITEMS + 1];
    int32_t uidx[2 * M_USERS], iidx[2 * M_ITEMS];
    float uw[2 * M_USERS], iw[2 * M_ITEMS], weights[M_ROWS];
    uint8_t among[M_ITEMS];
} feature_data;

static feature_data make_feature_data(void)
{
    feature_data f;
    f.uptr[0] = f.iptr[0] = 0;
    for (int u = 0; u < M_USERS; ++u) {
        f.uptr[u + 1] = f.uptr[u] + 2;
        f.uidx[2 * u] = u, f.uidx[2 * u + 1] = M_USERS + u % 3;
        f.uw[2 * u] = 0.5f, f.uw[2 * u + 1] = 0.5f;
    }
    for (int x = 0; x < M_ITEMS; ++x) {
        f.iptr[x + 1] = f.iptr[x] + 2;
        f.iidx[2 * x] = x, f.iidx[2 * x + 1] = M_ITEMS + x % 3;
        f.iw[2 * x] = 0.75f, f.iw[2 * x + 1] = 0.25f;
        f.among[x] = 1;
    }
    for (int r = 0; r < M_ROWS; ++r)
        f.weights[r] = r % 4 ? 1.5f : 0.0f;
    return f;
}

static void feature_options(wl_model_options *o)
{
    model_options(o, 0);
    o->num_user_features = F_USER_FEATURES;
    o->num_item_features = F_ITEM_FEATURES;
}

static const char *const feature_stages[] = {"wl_model_create (features)",
                                             "wl_model_set_features",
                                             "wl_model_step (features, weights)",
                                             "wl_model_read_representations",
                                             "wl_model_recommend_features",
                                             "wl_model_evaluate_among",
                                             "wl_model_save_memory/load_memory (features)",
                                             "(all done)"};

static wl_status feature_calls(wl_context *c, const model_data *d, const feature_data *f, wl_model **out, int *stage)
{
    wl_model_options o;
    feature_options(&o);
    wl_loss_options lo;
    wl_loss_options_default(&lo, M_ITEMS);
    wl_status s;
    *out = NULL;
    *stage = 0;
    if ((s = wl_model_create(c, &o, out)) != WL_SUCCESS)
        return s;
    wl_model *m = *out;
    *stage = 1;
    if ((s = wl_model_set_features(m, WL_TABLE_USERS, f->uptr, f->uidx, f->uw)) != WL_SUCCESS ||
        (s = wl_model_set_features(m, WL_TABLE_ITEMS, f->iptr, f->iidx, f->iw)) != WL_SUCCESS)
        return s;
    *stage = 2;
    const wl_batch b = {M_ROWS, d->users, d->pos, M_NEG, NULL, 0, 5, f->weights};
    wl_step_result r;
    if ((s = wl_model_step(m, &lo, &b, &r)) != WL_SUCCESS)
        return s;
    *stage = 3;
    float rep[M_ITEMS * M_DIM];
    if ((s = wl_model_read_representations(m, WL_TABLE_ITEMS, rep)) != WL_SUCCESS)
        return s;
    *stage = 4;
    int32_t top[4 * 3];
    if ((s = wl_model_recommend_features(m, 4, f->uptr, f->uidx, f->uw, d->indptr, d->known, 3, top, NULL)))
        return s;
    *stage = 5;
    wl_metrics metrics;
    if ((s = wl_model_evaluate_among(m, f->among, d->indptr, d->known, 3, 1, &metrics, NULL)) != WL_SUCCESS)
        return s;
    *stage = 6;
    void *data = NULL;
    size_t size = 0;
    if ((s = wl_model_save_memory(m, NULL, 0, &data, &size)) != WL_SUCCESS)
        return s;
    wl_model *loaded = NULL;
    s = wl_model_load_memory(c, data, size, &loaded, NULL, NULL);
    if (s != WL_SUCCESS && loaded)
        fail_msg("a failed wl_model_load_memory (%s) gave a model", wl_status_string(s));
    wl_model_destroy(loaded);
    wl_free(data);
    if (s != WL_SUCCESS)
        return s;
    *stage = 7;
    return WL_SUCCESS;
}

/* m, copied into a fresh feature model: the same step on both gives bitwise equal results and tables. */
static void check_features_work(const char *label, wl_context *c, wl_model *m, const model_data *d,
                                const feature_data *f)
{
    wl_model_options o;
    feature_options(&o);
    wl_loss_options lo;
    wl_loss_options_default(&lo, M_ITEMS);
    wl_model *g = NULL;
    if (wl_model_create(c, &o, &g) != WL_SUCCESS)
        fail_msg("%s: a fresh model: %s", label, wl_context_last_error(c));
    static float a[F_ITEM_FEATURES * M_DIM], b[F_ITEM_FEATURES * M_DIM];
    const size_t count[3] = {F_USER_FEATURES * M_DIM, F_ITEM_FEATURES * M_DIM, F_ITEM_FEATURES};
    for (int t = 0; t < 3; ++t)
        if (wl_model_read(m, (wl_table)t, a) != WL_SUCCESS || wl_model_write(g, (wl_table)t, a) != WL_SUCCESS ||
            wl_model_read_state(m, (wl_table)t, a) != WL_SUCCESS || wl_model_write_state(g, (wl_table)t, a))
            fail_msg("%s: copying table %d after the fault: %s", label, t, wl_context_last_error(c));
    wl_model *both[2] = {m, g};
    for (int k = 0; k < 2; ++k)
        if (wl_model_set_features(both[k], WL_TABLE_USERS, f->uptr, f->uidx, f->uw) != WL_SUCCESS ||
            wl_model_set_features(both[k], WL_TABLE_ITEMS, f->iptr, f->iidx, f->iw) != WL_SUCCESS)
            fail_msg("%s: set_features after the fault: %s", label, wl_context_last_error(c));
    const wl_batch batch = {M_ROWS, d->users, d->pos, M_NEG, d->neg, 0, 0, f->weights};
    wl_step_result r1, r2;
    if (wl_model_step(m, &lo, &batch, &r1) != WL_SUCCESS || wl_model_step(g, &lo, &batch, &r2) != WL_SUCCESS)
        fail_msg("%s: the step after the fault: %s", label, wl_context_last_error(c));
    if (memcmp(&r1.loss, &r2.loss, sizeof r1.loss) || r1.offenders != r2.offenders)
        fail_msg("%s: the step after the fault gives loss %.17g, a fresh model %.17g", label, r1.loss, r2.loss);
    for (int t = 0; t < 3; ++t) {
        if (wl_model_read(m, (wl_table)t, a) != WL_SUCCESS || wl_model_read(g, (wl_table)t, b) != WL_SUCCESS)
            fail_msg("%s: reading back: %s", label, wl_context_last_error(c));
        if (memcmp(a, b, count[t] * sizeof(float)))
            fail_msg("%s: table %d differs from a fresh model's after the same step", label, t);
    }
    wl_model_destroy(g);
}

static void test_features(void **state)
{
    (void)state;
    const char *label = "wl_model (features)";
    const model_data d = make_model_data();
    const feature_data f = make_feature_data();
    const long base = wlf_live_total();
    cl_mem ids[3];
    wl_model *m;
    int stage;
    unsigned long count[WLF_KIND_COUNT];
    static unsigned char in_blas[WLF_KIND_COUNT][4096];
    for (int run = 0; run < 2; ++run) {
        wl_context *c = model_context(&d, ids);
        wlf_reset_counts();
        if (feature_calls(c, &d, &f, &m, &stage) != WL_SUCCESS)
            fail_msg("%s: %s: %s", label, feature_stages[stage], wl_context_last_error(c));
        for (int i = 0; i < WLF_KIND_COUNT; ++i) {
            count[i] = wlf_count((wlf_kind)i);
            if (count[i] > sizeof in_blas[i])
                fail_msg("%s: %lu calls of %s, more than this test keeps", label, count[i], wlf_kind_name((wlf_kind)i));
            for (unsigned long n = 1; n <= count[i]; ++n)
                in_blas[i][n - 1] = strstr(wlf_caller((wlf_kind)i, n), "libclblast") != NULL;
        }
        check_features_work(label, c, m, &d, &f);
        wl_model_destroy(m);
        release_ids(ids);
        wl_context_destroy(c);
    }
    const unsigned long before = points;
    for (int kind = 0; kind < WLF_KIND_COUNT; ++kind) {
        cl_int errs[2];
        errors_for((wlf_kind)kind, errs);
        for (unsigned long n = 1; n <= count[kind]; ++n) {
            if (n > 1 && in_blas[kind][n - 1] && in_blas[kind][n - 2])
                continue;
            const int e = (int)(n % 2);
            wl_context *c = model_context(&d, ids);
            wlf_reset_counts();
            wlf_arm((wlf_kind)kind, n, errs[e]);
            const wl_status s = feature_calls(c, &d, &f, &m, &stage);
            wlf_disarm();
            char what[200];
            snprintf(what, sizeof what, "%s, %s", label, feature_stages[stage]);
            judge(what, (wlf_kind)kind, n, errs[e], s, wl_context_last_error(c));
            if (m)
                check_features_work(what, c, m, &d, &f);
            wl_model_destroy(m);
            release_ids(ids);
            wl_context_destroy(c);
            if (wlf_live_total() != base)
                fail_msg("%s: %s #%lu failed with %d: %ld OpenCL objects leaked", what, wlf_kind_name((wlf_kind)kind),
                         n, (int)errs[e], wlf_live_total() - base);
        }
    }
    printf("%s: %lu fault points\n", label, points - before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_compiling),  cmocka_unit_test(test_create_from_cache),
        cmocka_unit_test(test_create_with_queue), cmocka_unit_test(test_loss_host),
        cmocka_unit_test(test_loss_device),       cmocka_unit_test(test_model_adagrad),
        cmocka_unit_test(test_model_sgd),         cmocka_unit_test(test_features),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
