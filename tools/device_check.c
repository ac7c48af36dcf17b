/*
 * warploss-devices --check on one device (device_check.h): the loss's
 * fixed cases and timed run, then a small model trained for a few steps,
 * each compared with the C reference (tests/reference.c).
 */
#include "device_check.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "reference.h"

/* ------------------------------------------------------------ the loss */

/* One fixed correctness case. */
typedef struct check_case {
    const char *name;
    uint64_t num_labels;
    size_t rows, negatives;
    wl_weighting weighting;
    wl_reduction reduction;
    int regime; /* ref_regime, or -1: the seed README's example, -2: NaN rows */
    uint64_t seed;
} check_case;

static const check_case check_cases[] = {
    {"seed README example", 100, 3, 2, WL_WEIGHT_LOG, WL_REDUCE_SUM, -1, 0},
    {"early, log, sum", 1000, 64, 100, WL_WEIGHT_LOG, WL_REDUCE_SUM, REF_EARLY, 1},
    {"deep, harmonic, mean", 100000, 33, 257, WL_WEIGHT_HARMONIC, WL_REDUCE_MEAN, REF_DEEP, 2},
    {"deep, log, none", 5000, 17, 1031, WL_WEIGHT_LOG, WL_REDUCE_NONE, REF_DEEP, 3},
    {"none, log, sum", 1000, 40, 64, WL_WEIGHT_LOG, WL_REDUCE_SUM, REF_NONE, 4},
    {"more trials than labels", 10, 50, 40, WL_WEIGHT_HARMONIC, WL_REDUCE_NONE, REF_DEEP, 5},
    {"one negative", 2, 129, 1, WL_WEIGHT_LOG, WL_REDUCE_NONE, REF_EARLY, 6},
    {"NaN rows", 1000, 4, 8, WL_WEIGHT_LOG, WL_REDUCE_NONE, -2, 7},
    {"no negatives", 1000, 5, 0, WL_WEIGHT_LOG, WL_REDUCE_SUM, REF_EARLY, 8},
};

/* wlt_close of tests/common.c, which the tools cannot link (it needs cmocka). */
static int close_enough(float got, float want, double rel, double abs_tol)
{
    if (isnan(got) || isnan(want))
        return isnan(got) && isnan(want);
    if (isinf(got) || isinf(want))
        return got == want;
    return fabs((double)got - (double)want) <= rel * fabs((double)want) + abs_tol;
}

/* Run one case on c; 0 if it agrees with the reference, else 1 with why in msg. */
static int run_case(wl_context *c, const check_case *k, char *msg, size_t msg_size)
{
    const size_t rows = k->rows, negs = k->negatives, cells = rows * negs;
    const size_t nloss = k->reduction == WL_REDUCE_NONE ? rows : 1;
    float *pos = calloc(rows + 1, sizeof *pos), *neg = calloc(cells + 1, sizeof *neg);
    float *loss = calloc(nloss + 1, sizeof *loss), *want_loss = calloc(nloss + 1, sizeof *want_loss);
    float *gp = calloc(rows + 1, sizeof *gp), *want_gp = calloc(rows + 1, sizeof *want_gp);
    float *gn = calloc(cells + 1, sizeof *gn), *want_gn = calloc(cells + 1, sizeof *want_gn);
    int32_t *off = calloc(rows + 1, sizeof *off), *want_off = calloc(rows + 1, sizeof *want_off);
    int bad = 1;
    if (!pos || !neg || !loss || !want_loss || !gp || !want_gp || !gn || !want_gn || !off || !want_off) {
        snprintf(msg, msg_size, "out of host memory");
        goto done;
    }
    if (k->regime == -1) {
        const float p[3] = {-4.9562f, -1.6886f, 3.3984f};
        const float n[6] = {1.0491f, 4.9357f, -2.1289f, 0.4496f, 3.4541f, 0.0931f};
        memcpy(pos, p, sizeof p);
        memcpy(neg, n, sizeof n);
    } else if (k->regime == -2) {
        ref_make_inputs(k->seed, REF_DEEP, rows, negs, 1.0f, pos, neg);
        pos[0] = NAN;            /* NaN positive */
        neg[1 * negs + 0] = NAN; /* NaN at the start of a row */
        neg[2 * negs + 5] = NAN; /* NaN late in a row */
    } else {
        ref_make_inputs(k->seed, (ref_regime)k->regime, rows, negs, 1.0f, pos, neg);
    }
    wl_loss_options lo;
    wl_loss_options_default(&lo, k->num_labels);
    lo.weighting = k->weighting;
    lo.reduction = k->reduction;
    wl_status st = wl_loss(c, &lo, rows, negs, pos, neg, loss, gp, gn, off);
    if (st != WL_SUCCESS) {
        snprintf(msg, msg_size, "wl_loss: %s: %s", wl_status_string(st), wl_context_last_error(c));
        goto done;
    }
    ref_loss(&lo, rows, negs, pos, neg, want_loss, want_gp, want_gn, want_off);
    for (size_t b = 0; b < rows; ++b)
        if (off[b] != want_off[b]) {
            snprintf(msg, msg_size, "offender[%zu] = %d, reference %d", b, (int)off[b], (int)want_off[b]);
            goto done;
        }
    /* Row losses and gradients are single float operations: nearly exact. A
     * reduced loss is a float sum on the device against a double one. */
    const double rel = k->reduction == WL_REDUCE_NONE ? 1e-6 : 2e-5;
    for (size_t i = 0; i < nloss; ++i)
        if (!close_enough(loss[i], want_loss[i], rel, 1e-6)) {
            snprintf(msg, msg_size, "loss[%zu] = %.9g, reference %.9g", i, (double)loss[i], (double)want_loss[i]);
            goto done;
        }
    if (k->regime == -1 && !close_enough(loss[0], 39.6131f, 0.0, 5e-4)) {
        snprintf(msg, msg_size, "loss %.6f, expected 39.6131", (double)loss[0]);
        goto done;
    }
    for (size_t b = 0; b < rows; ++b)
        if (!close_enough(gp[b], want_gp[b], 1e-6, 1e-9)) {
            snprintf(msg, msg_size, "grad_pos[%zu] = %.9g, reference %.9g", b, (double)gp[b], (double)want_gp[b]);
            goto done;
        }
    for (size_t i = 0; i < cells; ++i)
        if (!close_enough(gn[i], want_gn[i], 1e-6, 1e-9)) {
            snprintf(msg, msg_size, "grad_neg[%zu] = %.9g, reference %.9g", i, (double)gn[i], (double)want_gn[i]);
            goto done;
        }
    bad = 0;
done:
    free(pos), free(neg), free(loss), free(want_loss), free(gp), free(want_gp);
    free(gn), free(want_gn), free(off), free(want_off);
    return bad;
}

/*
 * A short timed run on device memory (wl_loss_cl, no host copies): rows with
 * no offender, so every score is read once and GB/s counts real bytes read.
 */
static int timed_run(wl_context *c, double *rows_per_s, double *gb_per_s, char *msg, size_t msg_size)
{
    enum { ROWS = 4096, NEG = 512 };
    const size_t cells = (size_t)ROWS * NEG;
    float *pos = malloc(ROWS * sizeof *pos), *neg = malloc(cells * sizeof *neg);
    cl_mem bpos = NULL, bneg = NULL, bloss = NULL;
    int bad = 1;
    if (!pos || !neg) {
        snprintf(msg, msg_size, "out of host memory");
        goto done;
    }
    ref_make_inputs(99, REF_NONE, ROWS, NEG, 1.0f, pos, neg);
    cl_int err = CL_SUCCESS;
    cl_context ctx = wl_context_cl_context(c);
    bpos = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, ROWS * sizeof *pos, pos, &err);
    if (err == CL_SUCCESS)
        bneg = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, cells * sizeof *neg, neg, &err);
    if (err == CL_SUCCESS)
        bloss = clCreateBuffer(ctx, CL_MEM_READ_WRITE, sizeof(float), NULL, &err);
    if (err != CL_SUCCESS) {
        snprintf(msg, msg_size, "clCreateBuffer failed (%d)", (int)err);
        goto done;
    }
    wl_loss_options lo;
    wl_loss_options_default(&lo, 100000);
    cl_command_queue q = wl_context_queue(c);
    /* One warm-up call, then calls until about 0.25 s have passed. */
    wl_status st = wl_loss_cl(c, &lo, ROWS, NEG, bpos, bneg, bloss, NULL, NULL, NULL, 0, NULL, NULL);
    if (st == WL_SUCCESS)
        st = clFinish(q) == CL_SUCCESS ? WL_SUCCESS : WL_ERROR_OPENCL;
    const double start = cli_now();
    double elapsed = 0.0;
    int calls = 0;
    while (st == WL_SUCCESS && (calls < 3 || elapsed < 0.25) && calls < 200) {
        st = wl_loss_cl(c, &lo, ROWS, NEG, bpos, bneg, bloss, NULL, NULL, NULL, 0, NULL, NULL);
        if (st == WL_SUCCESS && clFinish(q) != CL_SUCCESS)
            st = WL_ERROR_OPENCL;
        ++calls;
        elapsed = cli_now() - start;
    }
    if (st != WL_SUCCESS) {
        snprintf(msg, msg_size, "timed wl_loss_cl: %s: %s", wl_status_string(st), wl_context_last_error(c));
        goto done;
    }
    float loss = -1.0f;
    err = clEnqueueReadBuffer(q, bloss, CL_TRUE, 0, sizeof loss, &loss, 0, NULL, NULL);
    if (err != CL_SUCCESS || loss != 0.0f) {
        snprintf(msg, msg_size, "timed run: loss %g (OpenCL %d), expected 0 (no offender)", (double)loss, (int)err);
        goto done;
    }
    const double per_call = elapsed / calls;
    *rows_per_s = ROWS / per_call;
    *gb_per_s = (double)(cells + ROWS) * sizeof(float) / per_call / 1e9;
    bad = 0;
done:
    if (bpos)
        clReleaseMemObject(bpos);
    if (bneg)
        clReleaseMemObject(bneg);
    if (bloss)
        clReleaseMemObject(bloss);
    free(pos), free(neg);
    return bad;
}

/* Create a context on device P:D with the given cache folder. */
static wl_context *open_device(const wl_device_info *d, const char *cache_dir, char *msg, size_t msg_size)
{
    char spec[32];
    snprintf(spec, sizeof spec, "%u:%u", d->platform_index, d->device_index);
    wl_context_options co;
    wl_context_options_default(&co);
    co.device = spec;
    co.cache_dir = cache_dir;
    wl_context *c = NULL;
    wl_status st = wl_context_create(&co, &c);
    if (st != WL_SUCCESS) {
        snprintf(msg, msg_size, "wl_context_create: %s: %.400s", wl_status_string(st), wl_context_last_error(NULL));
        return NULL;
    }
    return c;
}

/* ------------------------------------------------------------ the model */

/* The model's shape and the steps: small enough to take well under a second,
 * with repeated ids in every batch (rows scatter into the same elements) and
 * margin 0, so that scans stop at every depth, some never. */
enum { MODEL_USERS = 30, MODEL_ITEMS = 40, MODEL_DIM = 8, MODEL_ROWS = 48, MODEL_NEGATIVES = 6, MODEL_STEPS = 3 };

/* The tables and the optimizer state, read back or the reference's, as U, V, b, AU, AV, Ab. */
typedef struct tables {
    float *t[6];
} tables;

static const char *const table_names[6] = {"U", "V", "b", "state U", "state V", "state b"};

static size_t table_size(const wl_model_options *o, int t)
{
    return t % 3 == 0 ? (size_t)o->num_users * o->dim : t % 3 == 1 ? (size_t)o->num_items * o->dim : o->num_items;
}

static wl_status read_tables(wl_model *m, const wl_model_options *o, tables *out)
{
    static const wl_table which[3] = {WL_TABLE_USERS, WL_TABLE_ITEMS, WL_TABLE_ITEM_BIAS};
    for (int t = 0; t < 6; ++t) {
        out->t[t] = malloc(table_size(o, t) * sizeof(float));
        if (!out->t[t])
            return WL_ERROR_OUT_OF_MEMORY;
    }
    wl_status st = WL_SUCCESS;
    for (int t = 0; t < 3 && st == WL_SUCCESS; ++t)
        st = wl_model_read(m, which[t], out->t[t]);
    for (int t = 0; t < 3 && st == WL_SUCCESS; ++t)
        st = wl_model_read_state(m, which[t], out->t[t + 3]);
    return st;
}

static void free_tables(tables *x)
{
    for (int t = 0; t < 6; ++t)
        free(x->t[t]), x->t[t] = NULL;
}

/*
 * The device's tables against the reference's, with the tolerance of
 * tests/test_model.c (1e-5 relative, 1e-6 absolute: the device sums the
 * gradient in fixed point, the reference in double); then the reference takes
 * the device's tables, so that the next step starts from the same point.
 */
static int compare_tables(const tables *got, ref_model *ref, dc_model_result *mr, char *msg, size_t msg_size)
{
    float *const want[6] = {ref->U, ref->V, ref->b, ref->AU, ref->AV, ref->Ab};
    mr->compared = 1;
    for (int t = 0; t < 6; ++t) {
        const size_t n = table_size(&ref->o, t);
        for (size_t i = 0; i < n; ++i) {
            const double diff = fabs((double)got->t[t][i] - (double)want[t][i]);
            if (diff > mr->max_abs_diff || isnan(diff))
                mr->max_abs_diff = diff;
            if (memcmp(&got->t[t][i], &want[t][i], sizeof(float)))
                mr->bitwise = 0;
            if (!close_enough(got->t[t][i], want[t][i], 1e-5, 1e-6)) {
                snprintf(msg, msg_size, "%s[%zu] = %.9g, reference %.9g", table_names[t], i, (double)got->t[t][i],
                         (double)want[t][i]);
                return 1;
            }
        }
        memcpy(want[t], got->t[t], n * sizeof(float));
    }
    return 0;
}

/* One step on the device and on the reference, per-row (sampled 0) or sampled candidates; 0 if they agree. */
static int model_step(wl_context *c, wl_model *m, ref_model *ref, const wl_loss_options *lo, int sampled, uint64_t key,
                      dc_model_result *mr, char *msg, size_t msg_size)
{
    int32_t users[MODEL_ROWS], positives[MODEL_ROWS], cands[MODEL_ROWS * MODEL_NEGATIVES];
    ref_rng g;
    ref_rng_seed(&g, key);
    for (size_t b = 0; b < MODEL_ROWS; ++b) {
        users[b] = (int32_t)(ref_rng_next(&g) % MODEL_USERS);
        positives[b] = (int32_t)(ref_rng_next(&g) % MODEL_ITEMS);
    }
    for (size_t b = 0; b < MODEL_ROWS; ++b)
        for (size_t j = 0; j < MODEL_NEGATIVES; ++j)
            cands[b * MODEL_NEGATIVES + j] = sampled ? ref_sample(ref->o.seed, key, b, j, MODEL_ITEMS, positives[b])
                                                     : (int32_t)(ref_rng_next(&g) % MODEL_ITEMS);
    const wl_batch batch = {MODEL_ROWS, users, positives, MODEL_NEGATIVES, sampled ? NULL : cands, 0, key, NULL};
    wl_step_result got, want;
    const wl_status st = wl_model_step(m, lo, &batch, &got);
    if (st != WL_SUCCESS) {
        snprintf(msg, msg_size, "wl_model_step: %s: %.400s", wl_status_string(st), wl_context_last_error(c));
        return 1;
    }
    ref_model_step(ref, lo, MODEL_ROWS, users, positives, MODEL_NEGATIVES, cands, &want, NULL);
    const char *kind = sampled ? "sampled" : "per-row";
    if (got.offenders != want.offenders || got.scores != want.scores) {
        snprintf(msg, msg_size, "%s step: %llu offenders and %llu scores, reference %llu and %llu", kind,
                 (unsigned long long)got.offenders, (unsigned long long)got.scores, (unsigned long long)want.offenders,
                 (unsigned long long)want.scores);
        return 1;
    }
    if (!(fabs(got.loss - want.loss) <= 1e-5 * fabs(want.loss) + 1e-6)) {
        snprintf(msg, msg_size, "%s step: loss %.12g, reference %.12g", kind, got.loss, want.loss);
        return 1;
    }
    tables dev = {{NULL}};
    const wl_status rs = read_tables(m, &ref->o, &dev);
    int bad = 1;
    char why[512];
    if (rs != WL_SUCCESS)
        snprintf(msg, msg_size, "wl_model_read: %s: %.400s", wl_status_string(rs), wl_context_last_error(c));
    else if (compare_tables(&dev, ref, mr, why, sizeof why))
        snprintf(msg, msg_size, "%s step: %s", kind, why);
    else
        bad = 0;
    free_tables(&dev);
    return bad;
}

/* MODEL_STEPS per-row steps, then as many sampled ones, from the same model on c and on the reference. */
static void check_model(wl_context *c, dc_model_result *mr)
{
    const double start = cli_now();
    wl_model_options o;
    wl_model_options_default(&o, MODEL_USERS, MODEL_ITEMS, MODEL_DIM);
    o.seed = 11;
    o.optimizer = WL_OPTIMIZER_ADAGRAD;
    o.learning_rate = 0.1f;
    o.l2_users = o.l2_items = 0.01f;
    wl_loss_options lo;
    wl_loss_options_default(&lo, MODEL_ITEMS);
    lo.margin = 0.0f;
    mr->status = "FAIL";
    mr->bitwise = 1;
    wl_model *m = NULL;
    const wl_status st = wl_model_create(c, &o, &m);
    if (st != WL_SUCCESS) {
        snprintf(mr->error, sizeof mr->error, "wl_model_create: %s: %.900s", wl_status_string(st),
                 wl_context_last_error(c));
        mr->seconds = cli_now() - start;
        return;
    }
    ref_model ref;
    ref_model_create(&ref, &o);
    tables dev = {{NULL}};
    const wl_status rs = read_tables(m, &o, &dev);
    int bad = 1;
    char why[512];
    if (rs != WL_SUCCESS)
        snprintf(mr->error, sizeof mr->error, "wl_model_read: %s: %.400s", wl_status_string(rs),
                 wl_context_last_error(c));
    else if (compare_tables(&dev, &ref, mr, why, sizeof why))
        snprintf(mr->error, sizeof mr->error, "initial tables: %s", why);
    else
        bad = 0;
    free_tables(&dev);
    for (int s = 0; !bad && s < 2 * MODEL_STEPS; ++s) {
        bad = model_step(c, m, &ref, &lo, s >= MODEL_STEPS, 1000 + (uint64_t)s, mr, mr->error, sizeof mr->error);
        mr->steps += !bad;
    }
    if (!bad)
        mr->status = "PASS";
    ref_model_free(&ref);
    wl_model_destroy(m);
    mr->seconds = cli_now() - start;
}

/* ------------------------------------------------------------ one device */

/* s on one line (a build log's lines joined by "; "), at most size - 1 characters, for the text report (the JSON
 * has all of it). */
static const char *one_line(const char *s, char *out, size_t size)
{
    size_t n = 0;
    for (; *s && n + 2 < size; ++s) {
        if (*s != '\n')
            out[n++] = *s;
        else if (s[1])
            out[n++] = ';', out[n++] = ' ';
    }
    out[n] = '\0';
    return out;
}

static void print_verdict(FILE *text, const dc_result *r)
{
    char a[320], b[320];
    if (r->passed)
        fprintf(text, "  PASS\n");
    else if (!strcmp(r->loss_status, "PASS"))
        fprintf(text, "  FAIL: loss: PASS, model: FAIL (%s)\n", one_line(r->model.error, a, sizeof a));
    else if (!strcmp(r->model.status, "FAIL"))
        fprintf(text, "  FAIL: loss: FAIL (%s), model: FAIL (%s)\n", one_line(r->loss_error, a, sizeof a),
                one_line(r->model.error, b, sizeof b));
    else
        fprintf(text, "  FAIL: loss: FAIL (%s), model: %s\n", one_line(r->loss_error, a, sizeof a), r->model.status);
    fflush(text);
}

int dc_check_device(const wl_device_info *d, FILE *text, dc_result *r)
{
    memset(r, 0, sizeof *r);
    r->build_cold = r->build_cached = -1.0;
    r->loss_status = "FAIL";
    r->model.status = "not run";
    r->model.scatter = r->model.scatter_reason = "";
    wl_device_model_scatter(d->device, &r->model.scatter, &r->model.scatter_reason);
    char *msg = r->loss_error;
    const size_t msg_size = sizeof r->loss_error;
    wl_context *c = NULL;
    char cache[4096];
    if (cli_make_temp_dir("warploss-devices", cache, sizeof cache) != 0) {
        snprintf(msg, msg_size, "cannot create a temporary cache folder %.400s: %s", cache, strerror(errno));
        cache[0] = '\0';
        goto model;
    }

    /* cold: an empty cache, so the kernels are compiled */
    c = open_device(d, cache, msg, msg_size);
    if (!c)
        goto model;
    snprintf(r->kernel_origin, sizeof r->kernel_origin, "%s", wl_context_kernel_origin(c));
    snprintf(r->scan_variant, sizeof r->scan_variant, "%s", wl_context_scan_variant(c));
    if (wl_device_launch_plan(wl_context_device(c), NULL, &r->vector_width) != WL_SUCCESS)
        r->vector_width = 0;
    if (text)
        fprintf(text, "  kernels:      %s, scan %s, vector width %d\n", r->kernel_origin, r->scan_variant,
                r->vector_width);
    r->build_cold = wl_context_build_seconds(c);
    const int cold_cached = wl_context_program_from_cache(c);
    wl_context_destroy(c);
    c = NULL;
    if (text)
        fprintf(text, "  build cold:   %.3f s%s\n", r->build_cold, cold_cached ? " (unexpectedly from the cache)" : "");
    if (cold_cached) {
        snprintf(msg, msg_size, "the first build in an empty cache folder came from the cache");
        goto model;
    }

    /* warm: the same folder, so the program comes from the binary cache */
    c = open_device(d, cache, msg, msg_size);
    if (!c)
        goto model;
    r->build_cached = wl_context_build_seconds(c);
    const int warm_cached = wl_context_program_from_cache(c);
    if (text)
        fprintf(text, "  build cached: %.3f s%s\n", r->build_cached, warm_cached ? "" : " (not from the cache)");
    if (!warm_cached) {
        snprintf(msg, msg_size, "the second build did not load the program from the binary cache %.400s", cache);
        goto model;
    }

    const size_t ncases = sizeof check_cases / sizeof check_cases[0];
    for (size_t i = 0; i < ncases; ++i) {
        char why[512];
        if (run_case(c, &check_cases[i], why, sizeof why)) {
            snprintf(msg, msg_size, "case \"%s\": %s", check_cases[i].name, why);
            if (text)
                fprintf(text, "  correctness:  case \"%s\" differs from the C reference\n", check_cases[i].name);
            goto model;
        }
        r->cases++;
    }
    if (text)
        fprintf(text, "  correctness:  %zu cases agree with the C reference\n", ncases);

    if (timed_run(c, &r->rows_per_s, &r->gb_per_s, msg, msg_size))
        goto model;
    if (text)
        fprintf(text, "  throughput:   %.3g rows/s, %.2f GB/s (4096 x 512 scores, full scans, device memory)\n",
                r->rows_per_s, r->gb_per_s);
    r->loss_status = "PASS";

model:
    /* The model is its own program, built on the first wl_model_create: a
     * device may run the loss and fail here, or the other way round. */
    if (c) {
        r->model.scatter = wl_context_model_scatter(c);
        if (text) {
            fprintf(text, "  scatter:      %s (%s)\n", r->model.scatter, r->model.scatter_reason);
            fflush(text);
        }
        check_model(c, &r->model);
        if (text && !strcmp(r->model.status, "PASS"))
            fprintf(text,
                    "  model:        %d Adagrad steps agree with the C reference (%d users, %d items, dim %d; per-row "
                    "and sampled candidates), max abs diff %.3g%s, %.3f s\n",
                    r->model.steps, MODEL_USERS, MODEL_ITEMS, MODEL_DIM, r->model.max_abs_diff,
                    r->model.bitwise ? " (bitwise)" : "", r->model.seconds);
        else if (text)
            fprintf(text, "  model:        FAIL after %d of %d steps\n", r->model.steps, 2 * MODEL_STEPS);
    }
    wl_context_destroy(c);
    if (cache[0])
        cli_remove_tree(cache);
    r->passed = !strcmp(r->loss_status, "PASS") && !strcmp(r->model.status, "PASS");
    if (text)
        print_verdict(text, r);
    return !r->passed;
}

void dc_json_add(cJSON *o, const dc_result *r)
{
    cJSON_AddStringToObject(o, "status", r->passed ? "PASS" : "FAIL");
    cJSON *k = cJSON_AddObjectToObject(o, "kernels");
    cJSON_AddStringToObject(k, "origin", r->kernel_origin);
    cJSON_AddStringToObject(k, "scan_variant", r->scan_variant);
    cJSON_AddNumberToObject(k, "vector_width", r->vector_width);
    cJSON *loss = cJSON_AddObjectToObject(o, "loss");
    cJSON_AddStringToObject(loss, "status", r->loss_status);
    cli_json_add_number(loss, "build_cold_seconds", "%.3f", r->build_cold >= 0.0 ? r->build_cold : NAN);
    cli_json_add_number(loss, "build_cached_seconds", "%.3f", r->build_cached >= 0.0 ? r->build_cached : NAN);
    cJSON_AddNumberToObject(loss, "cases", (double)r->cases);
    cli_json_add_number(loss, "rows_per_s", "%.4g", r->rows_per_s > 0.0 ? r->rows_per_s : NAN);
    cli_json_add_number(loss, "gb_per_s", "%.4g", r->gb_per_s > 0.0 ? r->gb_per_s : NAN);
    if (strcmp(r->loss_status, "PASS"))
        cJSON_AddStringToObject(loss, "error", r->loss_error);
    cJSON *model = cJSON_AddObjectToObject(o, "model");
    cJSON_AddStringToObject(model, "status", r->model.status);
    cJSON_AddStringToObject(model, "scatter", r->model.scatter);
    cJSON_AddStringToObject(model, "scatter_reason", r->model.scatter_reason);
    if (strcmp(r->model.status, "not run")) {
        cJSON_AddNumberToObject(model, "steps", r->model.steps);
        cli_json_add_number(model, "max_abs_diff", "%.6g", r->model.compared ? r->model.max_abs_diff : NAN);
        if (r->model.compared)
            cJSON_AddBoolToObject(model, "bitwise", r->model.bitwise);
        else
            cJSON_AddNullToObject(model, "bitwise");
        cli_json_add_number(model, "seconds", "%.3f", r->model.seconds);
    }
    if (!strcmp(r->model.status, "FAIL"))
        cJSON_AddStringToObject(model, "error", r->model.error);
}
