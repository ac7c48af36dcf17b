/*
 * Threads, as include/warploss.h documents them: 8 threads each creating and
 * using its own context at once, then several threads sharing one context
 * with a mutex around each call (host and device memory). Every result is
 * checked against the C reference, computed before the threads start
 * (tests/reference.c keeps a cache that is not thread-safe). A failed
 * wl_context_create keeps its detail per thread. Then a model per thread,
 * each giving the tables and recommendations of the same calls in one thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "reference.h"

enum { THREADS = 8, SHARING = 4, CASES = 3, CALLS = 6, ROWS = 131, NEG = 67 };

static char *cache_dir;

typedef struct loss_case {
    wl_loss_options o;
    float pos[ROWS], neg[ROWS * NEG];
    float want_loss[ROWS], want_gp[ROWS], want_gn[ROWS * NEG];
    int32_t want_off[ROWS];
} loss_case;

/* Each thread's own cases (different seeds, regimes and options). */
static loss_case cases[THREADS][CASES];

static void make_cases(void)
{
    for (int t = 0; t < THREADS; ++t)
        for (int k = 0; k < CASES; ++k) {
            loss_case *c = &cases[t][k];
            wl_loss_options_default(&c->o, 1000 + 997 * (uint64_t)t);
            c->o.reduction = (wl_reduction)k;
            c->o.weighting = (wl_weighting)((t + k) & 1);
            ref_make_inputs(100 * (uint64_t)t + (uint64_t)k, (ref_regime)((t + k) % 3), ROWS, NEG, 1.0f, c->pos,
                            c->neg);
            ref_loss(&c->o, ROWS, NEG, c->pos, c->neg, c->want_loss, c->want_gp, c->want_gn, c->want_off);
        }
}

/* 1 if the outputs equal the case's reference. */
static int matches(const loss_case *c, const float *loss, const float *gp, const float *gn, const int32_t *off)
{
    const size_t nloss = c->o.reduction == WL_REDUCE_NONE ? ROWS : 1;
    for (size_t i = 0; i < nloss; ++i)
        if (!wlt_close(loss[i], c->want_loss[i], 1e-5, 1e-6))
            return 0;
    return wlt_first_value_mismatch(gp, c->want_gp, ROWS) == ROWS &&
           wlt_first_value_mismatch(gn, c->want_gn, ROWS * NEG) == ROWS * NEG &&
           wlt_first_i32_mismatch(off, c->want_off, ROWS) == ROWS;
}

typedef struct outputs {
    float loss[ROWS], gp[ROWS], gn[ROWS * NEG];
    int32_t off[ROWS];
} outputs;

static int host_call(wl_context *ctx, const loss_case *c, outputs *out)
{
    return wl_loss(ctx, &c->o, ROWS, NEG, c->pos, c->neg, out->loss, out->gp, out->gn, out->off) == WL_SUCCESS &&
           matches(c, out->loss, out->gp, out->gn, out->off);
}

static int group_setup(void **state)
{
    (void)state;
    wl_context_destroy(wlt_temp_context("threads", &cache_dir)); /* fills the cache */
    make_cases();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    wlt_free_temp_dir(&cache_dir);
    return 0;
}

/* ------------------------------------------------------------ a context each */

typedef struct own_job {
    int index;
    int failures;
    char error[256];
} own_job;

static void *own_context(void *arg)
{
    own_job *job = arg;
    /* a failure keeps its detail for this thread only */
    char spec[64];
    snprintf(spec, sizeof spec, "no-such-device-%d", job->index);
    wl_context_options o;
    wlt_context_options(&o, cache_dir);
    o.device = spec;
    wl_context *ctx = NULL;
    if (wl_context_create(&o, &ctx) != WL_ERROR_NO_DEVICE || !strstr(wl_context_last_error(NULL), spec)) {
        snprintf(job->error, sizeof job->error, "thread %d: the failed create's detail is not its own: %s", job->index,
                 wl_context_last_error(NULL));
        job->failures++;
    }
    wlt_context_options(&o, cache_dir);
    const wl_status s = wl_context_create(&o, &ctx);
    if (s != WL_SUCCESS) {
        snprintf(job->error, sizeof job->error, "thread %d: wl_context_create: %s", job->index,
                 wl_context_last_error(NULL));
        job->failures++;
        return NULL;
    }
    outputs *out = wlt_alloc(sizeof *out);
    for (int call = 0; call < CALLS; ++call) {
        const loss_case *c = &cases[job->index][call % CASES];
        if (!host_call(ctx, c, out)) {
            snprintf(job->error, sizeof job->error, "thread %d, call %d: wrong result or error: %s", job->index, call,
                     wl_context_last_error(ctx));
            job->failures++;
        }
    }
    free(out);
    wl_context_destroy(ctx);
    return NULL;
}

static void test_context_per_thread(void **state)
{
    (void)state;
    pthread_t threads[THREADS];
    own_job jobs[THREADS];
    memset(jobs, 0, sizeof jobs);
    for (int t = 0; t < THREADS; ++t) {
        jobs[t].index = t;
        assert_int_equal(pthread_create(&threads[t], NULL, own_context, &jobs[t]), 0);
    }
    int failures = 0;
    for (int t = 0; t < THREADS; ++t) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        if (jobs[t].failures)
            fprintf(stderr, "%s\n", jobs[t].error);
        failures += jobs[t].failures;
    }
    assert_int_equal(failures, 0);
}

/* ------------------------------------------------------------ one shared context */

typedef struct shared_job {
    int index;
    wl_context *ctx;
    pthread_mutex_t *lock;
    int failures;
    char error[256];
} shared_job;

/* Odd threads use device memory: wl_loss_cl and the reads back under the lock. */
static int device_call(wl_context *ctx, const loss_case *c, outputs *out)
{
    cl_context cl = wl_context_cl_context(ctx);
    cl_command_queue q = wl_context_queue(ctx);
    cl_int err = CL_SUCCESS, e;
    cl_mem pos = clCreateBuffer(cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof c->pos, (void *)c->pos, &e);
    err |= e;
    cl_mem neg = clCreateBuffer(cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof c->neg, (void *)c->neg, &e);
    err |= e;
    cl_mem loss = clCreateBuffer(cl, CL_MEM_READ_WRITE, sizeof out->loss, NULL, &e);
    err |= e;
    cl_mem gp = clCreateBuffer(cl, CL_MEM_READ_WRITE, sizeof out->gp, NULL, &e);
    err |= e;
    cl_mem gn = clCreateBuffer(cl, CL_MEM_READ_WRITE, sizeof out->gn, NULL, &e);
    err |= e;
    cl_mem off = clCreateBuffer(cl, CL_MEM_READ_WRITE, sizeof out->off, NULL, &e);
    err |= e;
    int ok = err == CL_SUCCESS;
    cl_event done = NULL;
    if (ok)
        ok = wl_loss_cl(ctx, &c->o, ROWS, NEG, pos, neg, loss, gp, gn, off, 0, NULL, &done) == WL_SUCCESS;
    if (ok) {
        const size_t nloss = c->o.reduction == WL_REDUCE_NONE ? ROWS : 1;
        ok = clEnqueueReadBuffer(q, loss, CL_FALSE, 0, nloss * sizeof(float), out->loss, 1, &done, NULL) ==
                 CL_SUCCESS &&
             clEnqueueReadBuffer(q, gp, CL_FALSE, 0, sizeof out->gp, out->gp, 1, &done, NULL) == CL_SUCCESS &&
             clEnqueueReadBuffer(q, gn, CL_FALSE, 0, sizeof out->gn, out->gn, 1, &done, NULL) == CL_SUCCESS &&
             clEnqueueReadBuffer(q, off, CL_FALSE, 0, sizeof out->off, out->off, 1, &done, NULL) == CL_SUCCESS;
        ok = clFinish(q) == CL_SUCCESS && ok;
    }
    if (done)
        clReleaseEvent(done);
    cl_mem all[] = {pos, neg, loss, gp, gn, off};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (all[i])
            clReleaseMemObject(all[i]);
    return ok && matches(c, out->loss, out->gp, out->gn, out->off);
}

static void *shared_context(void *arg)
{
    shared_job *job = arg;
    outputs *out = wlt_alloc(sizeof *out);
    for (int call = 0; call < CALLS; ++call) {
        const loss_case *c = &cases[job->index][(call + job->index) % CASES];
        pthread_mutex_lock(job->lock);
        const int ok = (job->index & 1) ? device_call(job->ctx, c, out) : host_call(job->ctx, c, out);
        if (!ok) {
            snprintf(job->error, sizeof job->error, "thread %d, call %d on the shared context: %s", job->index, call,
                     wl_context_last_error(job->ctx));
            job->failures++;
        }
        pthread_mutex_unlock(job->lock);
    }
    free(out);
    return NULL;
}

static void test_shared_context(void **state)
{
    (void)state;
    wl_context *ctx = wlt_context_or_skip(cache_dir);
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_t threads[SHARING];
    shared_job jobs[SHARING];
    memset(jobs, 0, sizeof jobs);
    for (int t = 0; t < SHARING; ++t) {
        jobs[t].index = t;
        jobs[t].ctx = ctx;
        jobs[t].lock = &lock;
        assert_int_equal(pthread_create(&threads[t], NULL, shared_context, &jobs[t]), 0);
    }
    int failures = 0;
    for (int t = 0; t < SHARING; ++t) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        if (jobs[t].failures)
            fprintf(stderr, "%s\n", jobs[t].error);
        failures += jobs[t].failures;
    }
    wl_context_destroy(ctx);
    assert_int_equal(failures, 0);
}

/* ------------------------------------------------------------ a model per thread */

/* Models on separate contexts in separate threads: shared-candidate steps and recommend (CLBlast's SGEMM, whose
 * program cache is the process's, cleared by each wl_context_destroy while the other threads may be in an SGEMM),
 * sampled steps, and the same tables and recommendations as the same calls made by one thread. */
enum { MODEL_THREADS = 4, MU = 40, MI = 300, MDIM = 16, MROWS = 64, MNEG = 24, MSTEPS = 6, MK = 5 };

typedef struct model_job {
    int index;
    float V[MI * MDIM];
    int32_t top[MU * MK];
    int failures;
    char error[256];
} model_job;

static void *own_model(void *arg)
{
    model_job *job = arg;
    wl_context_options co;
    wlt_context_options(&co, cache_dir);
    wl_context *ctx = NULL;
    wl_model *m = NULL;
    wl_status s = wl_context_create(&co, &ctx);
    wl_model_options o;
    wl_model_options_default(&o, MU, MI, MDIM);
    o.seed = 11;
    if (s == WL_SUCCESS)
        s = wl_model_create(ctx, &o, &m);
    wl_loss_options lo;
    wl_loss_options_default(&lo, MI);
    lo.margin = 0.0f;
    int32_t users[MROWS], pos[MROWS], neg[MNEG], all[MU];
    for (int step = 0; step < MSTEPS && s == WL_SUCCESS; ++step) {
        for (int r = 0; r < MROWS; ++r)
            users[r] = (r * 7 + step) % MU, pos[r] = (r * 13 + step * 5) % MI;
        for (int j = 0; j < MNEG; ++j)
            neg[j] = (j * 31 + step * 17) % MI;
        const wl_batch b = {MROWS, users, pos, MNEG, step % 2 ? NULL : neg, 1, (uint64_t)step, NULL};
        wl_step_result r;
        s = wl_model_step(m, &lo, &b, &r);
    }
    for (int u = 0; u < MU; ++u)
        all[u] = u;
    if (s == WL_SUCCESS)
        s = wl_model_read(m, WL_TABLE_ITEMS, job->V);
    if (s == WL_SUCCESS)
        s = wl_model_recommend(m, MU, all, MK, 0, job->top, NULL);
    if (s != WL_SUCCESS) {
        snprintf(job->error, sizeof job->error, "thread %d: %s: %s", job->index, wl_status_string(s),
                 ctx ? wl_context_last_error(ctx) : wl_context_last_error(NULL));
        job->failures++;
    }
    wl_model_destroy(m);
    wl_context_destroy(ctx);
    return NULL;
}

static void test_model_per_thread(void **state)
{
    (void)state;
    static model_job alone, jobs[MODEL_THREADS];
    own_model(&alone);
    if (alone.failures)
        fail_msg("%s", alone.error);
    pthread_t threads[MODEL_THREADS];
    for (int t = 0; t < MODEL_THREADS; ++t) {
        memset(&jobs[t], 0, sizeof jobs[t]);
        jobs[t].index = t;
        assert_int_equal(pthread_create(&threads[t], NULL, own_model, &jobs[t]), 0);
    }
    int failures = 0;
    for (int t = 0; t < MODEL_THREADS; ++t) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        if (!jobs[t].failures &&
            (memcmp(jobs[t].V, alone.V, sizeof alone.V) || memcmp(jobs[t].top, alone.top, sizeof alone.top))) {
            snprintf(jobs[t].error, sizeof jobs[t].error,
                     "thread %d: tables or recommendations differ from one "
                     "thread's",
                     t);
            jobs[t].failures++;
        }
        if (jobs[t].failures)
            fprintf(stderr, "%s\n", jobs[t].error);
        failures += jobs[t].failures;
    }
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_context_per_thread),
        cmocka_unit_test(test_shared_context),
        cmocka_unit_test(test_model_per_thread),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
