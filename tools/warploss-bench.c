/*
 * warploss-bench: how fast wl_loss_cl runs, as ratios against what the same
 * device and the same host do in the same run.
 *
 * For each shape (rows x negatives) and regime (where the first offender is:
 * early = index 0, deep = the middle, none = no offender, the whole row is
 * read) it times wl_loss_cl on device buffers and reports the median over
 * --repeat calls after a warm-up, with:
 *   rows/s, effective GB/s (bytes the call must touch: read pos and the
 *     negatives up to and including the offender, write the outputs asked for),
 *   copy GB/s: clEnqueueCopyBuffer of the negatives' byte size on the same
 *     device (bytes read + bytes written, the usual convention; the kernel's
 *     GB/s counts read + written bytes the same way),
 *   c_loop_seconds: a plain single-threaded C loop on the host over the same
 *     data computing the same outputs (median of the same number of runs).
 *
 * Timing: the bench creates its own in-order queue with profiling; before each
 * call it enqueues a marker, and the time of a call is from the end of that
 * marker (the device is idle, the call's first command may start) to the end
 * of the call's `done` event (its last command). This covers every command of
 * the call, including the gaps between them, but not host-side enqueue cost
 * before the first command is submitted. The host wall time of the same calls
 * (enqueue to clWaitForEvents) is reported too (wall_seconds).
 *
 * The timed call asks, by default, for the loss (sum) and the offender index
 * per row: the common training case (the caller scatters the gradient from the
 * offender and the rank weight). --outputs all adds grad_pos and the dense
 * grad_neg; --outputs loss asks for the loss only.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "reference.h"
#include "warploss.h"

#define MAX_SHAPES 32
#define NUM_LABELS 1000000ull

typedef enum { REGIME_EARLY, REGIME_DEEP, REGIME_NONE } regime;
static const char *const regime_names[3] = {"early", "deep", "none"};

typedef enum { OUT_LOSS, OUT_LOSS_OFFENDER, OUT_ALL } outputs;
static const char *const output_names[3] = {"loss", "loss+offender", "loss+offender+grad_pos+grad_neg"};

typedef struct settings {
    const char *device;
    size_t rows[MAX_SHAPES], negatives[MAX_SHAPES];
    int shapes;
    int regimes[3];
    int repeat, warmup;
    int json;
    outputs outputs;
    /* --model */
    int model, repeat_set, warmup_set, loss_only, model_only;
    uint32_t users, items, dim;
    size_t model_rows, candidates;
    int modes[3];
    int scatters[2]; /* atomic64, atomic32; none set: the device's own */
} settings;

typedef struct result {
    size_t rows, negatives;
    regime regime;
    double seconds, wall_seconds, copy_seconds, c_loop_seconds;
    double bytes, copy_bytes;
    int check_ok;
} result;

/* ------------------------------------------------------------ inputs */

/* The first offender of every row is exactly at `at` (-1: none), so that the
 * bytes a call must read are known: with margin 1 and the positive in [0, 1],
 * a negative in [-3, -1.5] never stops the scan and one in [1, 3] always does;
 * after the offender anything goes. Not ref_make_inputs: its regimes scatter
 * the offender and put ties on a grid, which the tests want and a measurement
 * of bytes read cannot use. Its generator, though. */
static void make_inputs(size_t rows, size_t negatives, long at, float *pos, float *neg)
{
    ref_rng rng;
    ref_rng_seed(&rng, rows * 31 + negatives);
    for (size_t b = 0; b < rows; ++b) {
        pos[b] = (float)ref_rng_uniform(&rng, 0.0, 1.0);
        float *n = neg + b * negatives;
        for (size_t j = 0; j < negatives; ++j) {
            if (at < 0 || (long)j < at)
                n[j] = (float)ref_rng_uniform(&rng, -3.0, -1.5);
            else if ((long)j == at)
                n[j] = (float)ref_rng_uniform(&rng, 1.0, 3.0);
            else
                n[j] = (float)ref_rng_uniform(&rng, -3.0, 3.0);
        }
    }
}

static long offender_at(regime r, size_t negatives)
{
    if (negatives == 0 || r == REGIME_NONE)
        return -1;
    return r == REGIME_EARLY ? 0 : (long)(negatives / 2);
}

/* ------------------------------------------------------------ the C loop */

/* The rank weight of an offender at each index, as the library rounds it (the reference's double, once to float). */
static float *weight_table(size_t negatives)
{
    float *w = cli_alloc(negatives * sizeof *w);
    for (size_t j = 0; j < negatives; ++j)
        w[j] = (float)ref_rank_weight(NUM_LABELS, (uint64_t)j + 1, WL_WEIGHT_LOG);
    return w;
}

/*
 * The host baseline: first offender per row, its loss, the same outputs as
 * the timed call, single-threaded. Deliberately not ref_loss, the oracle of
 * the tests: that one is written for clarity (a log per row, NaN handling, a
 * double sum), and timing it would flatter the device. This is how a careful C
 * implementation would do it: weights from a table made before the timing.
 */
static float c_loop(size_t rows, size_t negatives, const float *pos, const float *neg, const float *weight,
                    float *row_loss, int32_t *offender, float *grad_pos, float *grad_neg)
{
    const float margin = 1.0f;
    float sum = 0.0f;
    for (size_t b = 0; b < rows; ++b) {
        const float p = pos[b];
        const float *n = neg + b * negatives;
        int32_t first = -1;
        for (size_t j = 0; j < negatives; ++j) {
            if (!(((margin + n[j]) - p) <= 0.0f)) {
                first = (int32_t)j;
                break;
            }
        }
        const float w = first >= 0 ? weight[first] : 0.0f;
        const float loss = first >= 0 ? w * ((margin - p) + n[first]) : 0.0f;
        row_loss[b] = loss;
        sum += loss;
        if (offender)
            offender[b] = first;
        if (grad_pos)
            grad_pos[b] = -w;
        if (grad_neg) {
            memset(grad_neg + b * negatives, 0, negatives * sizeof *grad_neg);
            if (first >= 0)
                grad_neg[b * negatives + (size_t)first] = w;
        }
    }
    return sum;
}

/* ------------------------------------------------------------ device */

typedef struct device {
    wl_context *wl; /* on a profiling queue of its own */
    char platform[256];
} device;

static void open_device(const char *spec, device *d)
{
    d->wl = cli_profiling_context(spec);
    cl_platform_id platform = NULL;
    d->platform[0] = '\0';
    clGetDeviceInfo(wl_context_device(d->wl), CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL);
    clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof d->platform - 1, d->platform, NULL);
    d->platform[sizeof d->platform - 1] = '\0';
}

static cl_mem new_buffer(device *d, size_t bytes, const void *init)
{
    cl_int err;
    cl_mem m = clCreateBuffer(wl_context_cl_context(d->wl), CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0),
                              bytes ? bytes : 4, (void *)init, &err);
    cli_check_cl(err, "clCreateBuffer");
    return m;
}

/* ------------------------------------------------------------ one measurement */

static void measure(const settings *s, device *d, size_t rows, size_t negatives, regime rg, result *out)
{
    const size_t scores = rows * negatives;
    float *pos = cli_alloc(rows * sizeof *pos), *neg = cli_alloc(scores * sizeof *neg);
    const long at = offender_at(rg, negatives);
    make_inputs(rows, negatives, at, pos, neg);
    const int want_offender = s->outputs != OUT_LOSS, want_grads = s->outputs == OUT_ALL;
    cl_command_queue queue = wl_context_queue(d->wl);

    cl_mem pos_buf = new_buffer(d, rows * sizeof(float), pos);
    cl_mem neg_buf = new_buffer(d, scores * sizeof(float), neg);
    cl_mem copy_buf = new_buffer(d, scores * sizeof(float), NULL);
    cl_mem loss_buf = new_buffer(d, sizeof(float), NULL);
    cl_mem offender_buf = want_offender ? new_buffer(d, rows * sizeof(int32_t), NULL) : NULL;
    cl_mem grad_pos_buf = want_grads ? new_buffer(d, rows * sizeof(float), NULL) : NULL;
    cl_mem grad_neg_buf = want_grads ? new_buffer(d, scores * sizeof(float), NULL) : NULL;

    wl_loss_options lo;
    wl_loss_options_default(&lo, NUM_LABELS);
    float *weight = weight_table(negatives);
    float *row_loss = cli_alloc(rows * sizeof *row_loss);
    int32_t *offender = want_offender ? cli_alloc(rows * sizeof *offender) : NULL;
    float *grad_pos = want_grads ? cli_alloc(rows * sizeof *grad_pos) : NULL;
    float *grad_neg = want_grads ? cli_alloc(scores * sizeof *grad_neg) : NULL;
    volatile float sink = 0.0f; /* the C loop's sum goes here, so that its work cannot be left out */

    /* The call, the device's copy and the C loop take turns, so that the
     * load of a shared machine weighs on all three alike. */
    const int n = s->repeat;
    double *times = cli_alloc((size_t)n * sizeof *times), *walls = cli_alloc((size_t)n * sizeof *walls);
    double *copies = cli_alloc((size_t)n * sizeof *copies), *loops = cli_alloc((size_t)n * sizeof *loops);
    for (int i = -s->warmup; i < n; ++i) {
        cl_event start, done;
        double t0 = cli_now();
        cli_check_cl(clEnqueueMarkerWithWaitList(queue, 0, NULL, &start), "clEnqueueMarkerWithWaitList");
        cli_check_wl(wl_loss_cl(d->wl, &lo, rows, negatives, pos_buf, neg_buf, loss_buf, grad_pos_buf, grad_neg_buf,
                                offender_buf, 0, NULL, &done),
                     d->wl);
        cli_check_cl(clWaitForEvents(1, &done), "clWaitForEvents");
        const double wall = cli_now() - t0;
        if (i >= 0) {
            times[i] = cli_event_seconds(start, CL_PROFILING_COMMAND_END, done);
            walls[i] = wall;
        }
        clReleaseEvent(start);
        clReleaseEvent(done);

        /* the device's own copy of the same byte count */
        if (scores) {
            cl_event ev;
            cli_check_cl(clEnqueueCopyBuffer(queue, neg_buf, copy_buf, 0, 0, scores * sizeof(float), 0, NULL, &ev),
                         "clEnqueueCopyBuffer");
            cli_check_cl(clWaitForEvents(1, &ev), "clWaitForEvents");
            if (i >= 0)
                copies[i] = cli_event_seconds(ev, CL_PROFILING_COMMAND_START, ev);
            clReleaseEvent(ev);
        } else if (i >= 0) {
            copies[i] = 0.0;
        }

        /* the C loop over the same host data, same outputs */
        t0 = cli_now();
        sink = c_loop(rows, negatives, pos, neg, weight, row_loss, offender, grad_pos, grad_neg);
        if (i >= 0)
            loops[i] = cli_now() - t0;
    }
    out->seconds = cli_median(times, n);
    out->wall_seconds = cli_median(walls, n);
    out->copy_seconds = cli_median(copies, n);
    out->copy_bytes = 2.0 * (double)scores * sizeof(float);
    out->c_loop_seconds = cli_median(loops, n);
    (void)sink;

    /* check the device's answer against the C loop */
    float loss = 0.0f;
    cli_check_cl(clEnqueueReadBuffer(queue, loss_buf, CL_TRUE, 0, sizeof loss, &loss, 0, NULL, NULL),
                 "clEnqueueReadBuffer");
    double exact = 0.0; /* the C loop's row losses summed in double: its own float sum drifts on long shapes */
    for (size_t b = 0; b < rows; ++b)
        exact += row_loss[b];
    out->check_ok = fabs((double)loss - exact) <= 1e-5 * fabs(exact) + 1e-6;
    if (want_offender && rows) {
        int32_t *got = cli_alloc(rows * sizeof *got);
        cli_check_cl(clEnqueueReadBuffer(queue, offender_buf, CL_TRUE, 0, rows * sizeof *got, got, 0, NULL, NULL),
                     "clEnqueueReadBuffer");
        if (memcmp(got, offender, rows * sizeof *got) != 0)
            out->check_ok = 0;
        free(got);
    }

    /* bytes the call must touch: pos and the negatives up to the offender, and the outputs */
    const double scanned = at < 0 ? (double)negatives : (double)(at + 1);
    double bytes = (double)rows * (1.0 + scanned) * sizeof(float) + sizeof(float);
    if (want_offender)
        bytes += (double)rows * sizeof(int32_t);
    if (want_grads)
        bytes += (double)rows * sizeof(float) + (double)scores * sizeof(float);
    out->bytes = bytes;
    out->rows = rows;
    out->negatives = negatives;
    out->regime = rg;

    free(weight), free(row_loss), free(offender), free(grad_pos), free(grad_neg);
    free(times), free(walls), free(copies), free(loops), free(pos), free(neg);
    cl_mem all[] = {pos_buf, neg_buf, copy_buf, loss_buf, offender_buf, grad_pos_buf, grad_neg_buf};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (all[i])
            clReleaseMemObject(all[i]);
}

/* ------------------------------------------------------------ output */

static double per_second(double count, double seconds) { return seconds > 0.0 ? count / seconds : 0.0; }

static void print_json(const settings *s, const device *d, const result *r, int count)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "device", wl_context_device_name(d->wl));
    cJSON_AddStringToObject(doc, "platform", d->platform);
    cJSON_AddStringToObject(doc, "scan_variant", wl_context_scan_variant(d->wl));
    cJSON_AddStringToObject(doc, "outputs", output_names[s->outputs]);
    cJSON_AddStringToObject(doc, "reduction", "sum");
    cJSON_AddNumberToObject(doc, "num_labels", (double)NUM_LABELS);
    cJSON_AddNumberToObject(doc, "repeat", s->repeat);
    cJSON_AddStringToObject(
        doc, "timing", "median device time, end of a marker enqueued before the call to the end of its done event");
    cJSON_AddStringToObject(doc, "gb_convention", "bytes read + bytes written, 1 GB = 1e9 bytes");
    cJSON *results = cJSON_AddArrayToObject(doc, "results");
    for (int i = 0; i < count; ++i) {
        const result *x = &r[i];
        const double rate = per_second(x->bytes, x->seconds), copy_rate = per_second(x->copy_bytes, x->copy_seconds);
        cJSON *row = cJSON_CreateObject();
        cJSON_AddItemToArray(results, row);
        cJSON_AddNumberToObject(row, "rows", (double)x->rows);
        cJSON_AddNumberToObject(row, "negatives", (double)x->negatives);
        cJSON_AddStringToObject(row, "regime", regime_names[x->regime]);
        cli_json_add_number(row, "seconds", "%.9g", x->seconds);
        cli_json_add_number(row, "wall_seconds", "%.9g", x->wall_seconds);
        cli_json_add_number(row, "rows_per_s", "%.6g", per_second((double)x->rows, x->seconds));
        cli_json_add_number(row, "gb_per_s", "%.6g", rate * 1e-9);
        cli_json_add_number(row, "copy_seconds", "%.9g", x->copy_seconds);
        cli_json_add_number(row, "copy_gb_per_s", "%.6g", copy_rate * 1e-9);
        cli_json_add_number(row, "fraction_of_copy", "%.4f", x->copy_seconds > 0 ? rate / copy_rate : 0.0);
        cli_json_add_number(row, "c_loop_seconds", "%.9g", x->c_loop_seconds);
        cli_json_add_number(row, "speedup_vs_c_loop", "%.4f", x->seconds > 0 ? x->c_loop_seconds / x->seconds : 0.0);
        cJSON_AddBoolToObject(row, "check", x->check_ok);
    }
    cli_json_print(doc);
}

static void print_table_header(const settings *s, const device *d)
{
    printf("device: %s (%s), %s scan\n", wl_context_device_name(d->wl), d->platform, wl_context_scan_variant(d->wl));
    printf("timed call: wl_loss_cl, reduction sum, outputs %s; median of %d after %d warm-up\n",
           output_names[s->outputs], s->repeat, s->warmup);
    printf("GB/s count bytes read + written (copy: clEnqueueCopyBuffer of the negatives' size)\n\n");
    printf("%-12s %-6s %10s %10s %12s %8s %8s %7s %10s %8s %s\n", "shape", "regime", "ms", "wall ms", "rows/s", "GB/s",
           "copy", "%copy", "C loop ms", "xC loop", "check");
}

static void print_table_row(const result *x)
{
    char shape[48];
    snprintf(shape, sizeof shape, "%zux%zu", x->rows, x->negatives);
    const double gb = per_second(x->bytes, x->seconds) * 1e-9;
    const double copy = per_second(x->copy_bytes, x->copy_seconds) * 1e-9;
    printf("%-12s %-6s %10.4f %10.4f %12.4g %8.2f %8.2f %6.0f%% %10.4f %8.2f %s\n", shape, regime_names[x->regime],
           x->seconds * 1e3, x->wall_seconds * 1e3, per_second((double)x->rows, x->seconds), gb, copy,
           copy > 0 ? 100.0 * gb / copy : 0.0, x->c_loop_seconds * 1e3,
           x->seconds > 0 ? x->c_loop_seconds / x->seconds : 0.0, x->check_ok ? "ok" : "MISMATCH");
    fflush(stdout);
}

/* ------------------------------------------------------------ --model: one step of the embedding model */

/*
 * A synthetic model (seed 0), a batch of --rows rows with --candidates
 * candidates each, in three candidate modes and two regimes:
 *   untrained: the fresh tables of wl_model_create, positives and candidates
 *     uniform: s is about 0 everywhere, so nearly every scan stops at its
 *     first candidate (offenders early);
 *   late: K = min(dim, 8) columns of U and V set to random signs (+-1), the
 *     other columns as created. The positives are "hot" items (the first
 *     max(1, items / 4096)) with those K columns 0 and bias K + 0.5; every
 *     other item has bias 0. A candidate x then stops the scan of user u only
 *     when its K signs equal u's (dot = K: 1 + K - (K + 0.5) > 0), for a
 *     random x with probability 2^-K (1/256), or when x is another hot item:
 *     offenders are found late, about a third of the rows read all candidates.
 * Before every timed step the tables are written back (wl_model_write, which
 * also resets Adagrad's state) outside the timed region, so every repeat
 * starts from the same model: no drift, and each result can be checked
 * against the C step's.
 */

typedef enum { CAND_ROWS, CAND_SHARED, CAND_SAMPLED } cand_mode;
static const char *const cand_mode_names[3] = {"per-row", "shared", "sampled"};
static const char *const scatter_names[2] = {"atomic64", "atomic32"};

typedef enum { MODEL_UNTRAINED, MODEL_LATE } model_regime;
static const char *const model_regime_names[2] = {"untrained", "late"};

#define SAMPLE_KEY 1u

typedef struct model_result {
    const char *scatter; /* the context's, wl_context_model_scatter */
    cand_mode mode;
    model_regime regime;
    double seconds, scan_seconds, update_seconds; /* device time (profiling events), medians */
    double wall_seconds;                          /* wl_model_step_cl, enqueue to result on the host */
    double host_seconds;                          /* wl_model_step from host arrays (uploads the ids) */
    double c_seconds;                             /* ref_model_step, single-threaded, same tables and candidates */
    wl_step_result device, c;
    int check_ok;
} model_result;

/* The tables of one regime, on the host. */
typedef struct model_tables {
    float *U, *V, *b;
    uint32_t hot; /* positives are drawn from items [0, hot); 0: from all items */
} model_tables;

static void alloc_tables(const wl_model_options *o, model_tables *t)
{
    t->U = cli_alloc((size_t)o->num_users * o->dim * sizeof *t->U);
    t->V = cli_alloc((size_t)o->num_items * o->dim * sizeof *t->V);
    t->b = cli_alloc((size_t)o->num_items * sizeof *t->b);
    t->hot = 0;
}

static void read_tables(wl_model *m, const wl_model_options *o, model_tables *t)
{
    alloc_tables(o, t);
    cli_check_wl(wl_model_read(m, WL_TABLE_USERS, t->U), NULL);
    cli_check_wl(wl_model_read(m, WL_TABLE_ITEMS, t->V), NULL);
    cli_check_wl(wl_model_read(m, WL_TABLE_ITEM_BIAS, t->b), NULL);
}

/* The late regime's tables from the fresh ones (see above). */
static void make_late(const wl_model_options *o, const model_tables *fresh, model_tables *t)
{
    alloc_tables(o, t);
    memcpy(t->U, fresh->U, (size_t)o->num_users * o->dim * sizeof *t->U);
    memcpy(t->V, fresh->V, (size_t)o->num_items * o->dim * sizeof *t->V);
    const uint32_t k = o->dim < 8 ? o->dim : 8;
    t->hot = o->num_items / 4096 ? o->num_items / 4096 : 1;
    ref_rng rng;
    ref_rng_seed(&rng, 0x4C415445ull);
    for (size_t u = 0; u < o->num_users; ++u)
        for (uint32_t d = 0; d < k; ++d)
            t->U[u * o->dim + d] = (ref_rng_next(&rng) >> 63) ? 1.0f : -1.0f;
    for (size_t x = 0; x < o->num_items; ++x) {
        const int hot = x < t->hot;
        for (uint32_t d = 0; d < k; ++d)
            t->V[x * o->dim + d] = hot ? 0.0f : (ref_rng_next(&rng) >> 63) ? 1.0f : -1.0f;
        t->b[x] = hot ? (float)k + 0.5f : 0.0f;
    }
}

static void free_tables(model_tables *t) { free(t->U), free(t->V), free(t->b); }

/* Both models back to the regime's tables (and Adagrad's state to 1). */
static void restore_device(wl_model *m, const model_tables *t)
{
    cli_check_wl(wl_model_write(m, WL_TABLE_USERS, t->U), NULL);
    cli_check_wl(wl_model_write(m, WL_TABLE_ITEMS, t->V), NULL);
    cli_check_wl(wl_model_write(m, WL_TABLE_ITEM_BIAS, t->b), NULL);
}

static void restore_ref(ref_model *r, const model_tables *t)
{
    const size_t nu = (size_t)r->o.num_users * r->o.dim, nv = (size_t)r->o.num_items * r->o.dim;
    memcpy(r->U, t->U, nu * sizeof *r->U);
    memcpy(r->V, t->V, nv * sizeof *r->V);
    memcpy(r->b, t->b, (size_t)r->o.num_items * sizeof *r->b);
    for (size_t k = 0; k < nu; ++k)
        r->AU[k] = 1.0f;
    for (size_t k = 0; k < nv; ++k)
        r->AV[k] = 1.0f;
    for (size_t k = 0; k < r->o.num_items; ++k)
        r->Ab[k] = 1.0f;
}

static cl_ulong profile(cl_event ev, cl_profiling_info what)
{
    cl_ulong t = 0;
    cli_check_cl(clGetEventProfilingInfo(ev, what, sizeof t, &t, NULL), "clGetEventProfilingInfo");
    return t;
}

static double span(cl_ulong from, cl_ulong to) { return to > from ? 1e-9 * (double)(to - from) : 0.0; }

/* The same step results: offenders and scores exactly, the loss to float rounding. */
static int same_result(const wl_step_result *a, const wl_step_result *b)
{
    return a->offenders == b->offenders && a->scores == b->scores &&
           fabs(a->loss - b->loss) <= 1e-4 * fabs(b->loss) + 1e-6;
}

static void measure_model(const settings *s, device *d, wl_model *m, ref_model *rm, const model_tables *t,
                          model_regime rg, cand_mode mode, model_result *out)
{
    const wl_model_options *o = &rm->o;
    const size_t rows = s->model_rows, negatives = s->candidates;
    wl_loss_options lo;
    wl_loss_options_default(&lo, o->num_items);

    /* the batch: ids from a generator seeded by the shape, the same for both regimes but the positives */
    ref_rng rng;
    ref_rng_seed(&rng, rows * 131 + negatives * 7 + (uint64_t)mode);
    int32_t *users = cli_alloc(rows * sizeof *users), *positives = cli_alloc(rows * sizeof *positives);
    for (size_t b = 0; b < rows; ++b) {
        users[b] = (int32_t)(ref_rng_next(&rng) % o->num_users);
        positives[b] = (int32_t)(ref_rng_next(&rng) % (t->hot ? t->hot : o->num_items));
    }
    const size_t neg_count = mode == CAND_ROWS ? rows * negatives : mode == CAND_SHARED ? negatives : 0;
    int32_t *neg = cli_alloc(neg_count * sizeof *neg);
    for (size_t k = 0; k < neg_count; ++k)
        neg[k] = (int32_t)(ref_rng_next(&rng) % o->num_items);
    /* the C step takes every row's candidates: shared and sampled ones expanded here, before any timing */
    int32_t *cands = cli_alloc(rows * negatives * sizeof *cands);
    for (size_t b = 0; b < rows; ++b)
        for (size_t j = 0; j < negatives; ++j)
            cands[b * negatives + j] = mode == CAND_ROWS ? neg[b * negatives + j]
                                       : mode == CAND_SHARED
                                           ? neg[j]
                                           : ref_sample(o->seed, SAMPLE_KEY, b, j, o->num_items, positives[b]);

    cl_mem users_buf = new_buffer(d, rows * sizeof(int32_t), users);
    cl_mem positives_buf = new_buffer(d, rows * sizeof(int32_t), positives);
    cl_mem neg_buf = neg_count ? new_buffer(d, neg_count * sizeof(int32_t), neg) : NULL;
    const wl_batch_cl bcl = {rows, 0, users_buf, positives_buf, negatives, neg_buf, mode == CAND_SHARED, SAMPLE_KEY};
    const wl_batch bh = {rows,      users, positives, negatives, mode == CAND_SAMPLED ? NULL : neg, mode == CAND_SHARED,
                         SAMPLE_KEY};
    cl_command_queue queue = wl_context_queue(d->wl);

    /* The three steps take turns, so that the load of a shared machine weighs on all alike. */
    const int n = s->repeat;
    double *times = cli_alloc((size_t)n * sizeof *times), *scans = cli_alloc((size_t)n * sizeof *scans);
    double *updates = cli_alloc((size_t)n * sizeof *updates), *walls = cli_alloc((size_t)n * sizeof *walls);
    double *hosts = cli_alloc((size_t)n * sizeof *hosts), *cs = cli_alloc((size_t)n * sizeof *cs);
    out->check_ok = 1;
    for (int i = -s->warmup; i < n; ++i) {
        /* the device step on ids already on the device */
        restore_device(m, t);
        cli_check_cl(clFinish(queue), "clFinish");
        cl_event start, done;
        wl_step_result r;
        double t0 = cli_now();
        cli_check_cl(clEnqueueMarkerWithWaitList(queue, 0, NULL, &start), "clEnqueueMarkerWithWaitList");
        cli_check_wl(wl_model_step_cl(m, &lo, &bcl, &r, 0, NULL, &done), d->wl); /* blocks for r */
        cli_check_cl(clWaitForEvents(1, &done), "clWaitForEvents");
        const double wall = cli_now() - t0;
        if (i >= 0) {
            /* done is the update's launch (model_update.cl); everything before it on the in-order queue since the
             * marker is the counters' fill, the SGEMM of shared candidates and the scan (model_step.cl) */
            const cl_ulong begin = profile(start, CL_PROFILING_COMMAND_END);
            const cl_ulong update_start = profile(done, CL_PROFILING_COMMAND_START);
            const cl_ulong end = profile(done, CL_PROFILING_COMMAND_END);
            times[i] = span(begin, end);
            scans[i] = span(begin, update_start);
            updates[i] = span(update_start, end);
            walls[i] = wall;
        }
        clReleaseEvent(start);
        clReleaseEvent(done);
        out->device = r;

        /* the host form: uploads the ids, steps, reads the result */
        restore_device(m, t);
        cli_check_cl(clFinish(queue), "clFinish");
        wl_step_result rh;
        t0 = cli_now();
        cli_check_wl(wl_model_step(m, &lo, &bh, &rh), d->wl);
        if (i >= 0)
            hosts[i] = cli_now() - t0;

        /* the C step on host copies of the same tables and candidates */
        restore_ref(rm, t);
        wl_step_result rc;
        t0 = cli_now();
        ref_model_step(rm, &lo, rows, users, positives, negatives, cands, &rc, NULL);
        if (i >= 0)
            cs[i] = cli_now() - t0;
        out->c = rc;
        if (!same_result(&r, &rc) || !same_result(&rh, &rc))
            out->check_ok = 0;
    }
    out->mode = mode;
    out->regime = rg;
    out->seconds = cli_median(times, n);
    out->scan_seconds = cli_median(scans, n);
    out->update_seconds = cli_median(updates, n);
    out->wall_seconds = cli_median(walls, n);
    out->host_seconds = cli_median(hosts, n);
    out->c_seconds = cli_median(cs, n);

    free(times), free(scans), free(updates), free(walls), free(hosts), free(cs);
    free(users), free(positives), free(neg), free(cands);
    clReleaseMemObject(users_buf);
    clReleaseMemObject(positives_buf);
    if (neg_buf)
        clReleaseMemObject(neg_buf);
}

static void print_model_json(const settings *s, const device *d, const model_result *r, int count)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "benchmark", "model step");
    cJSON_AddStringToObject(doc, "device", wl_context_device_name(d->wl));
    cJSON_AddStringToObject(doc, "platform", d->platform);
    cJSON_AddNumberToObject(doc, "users", s->users);
    cJSON_AddNumberToObject(doc, "items", s->items);
    cJSON_AddNumberToObject(doc, "dim", s->dim);
    cJSON_AddNumberToObject(doc, "rows", (double)s->model_rows);
    cJSON_AddNumberToObject(doc, "candidates", (double)s->candidates);
    cJSON_AddStringToObject(doc, "optimizer", "adagrad");
    cJSON_AddNumberToObject(doc, "repeat", s->repeat);
    cJSON_AddNumberToObject(doc, "warmup", s->warmup);
    cJSON_AddStringToObject(doc, "timing",
                            "median device time of wl_model_step_cl (ids already on the device), end of a marker "
                            "enqueued before the call to the end of its done event (the update); scan_seconds: to "
                            "the start of the update (the counters' fill, for shared candidates the gathers and "
                            "CLBlast's SGEMM, and model_step.cl), update_seconds: model_update.cl");
    cJSON_AddStringToObject(doc, "wall",
                            "wall_seconds: wl_model_step_cl to its result on the host; "
                            "host_step_seconds: wl_model_step from host arrays (uploads the ids)");
    cJSON_AddStringToObject(doc, "c_baseline",
                            "ref_model_step (tests/reference.c, the test oracle: single-threaded, written for "
                            "clarity; allocates dense gradient sums and walks every row of U and V per step) on host "
                            "copies of the same tables and candidates");
    cJSON_AddStringToObject(doc, "drift",
                            "none: the tables are written back (wl_model_write, Adagrad state reset) "
                            "before every step, outside the timed region");
    cJSON *results = cJSON_AddArrayToObject(doc, "results");
    for (int i = 0; i < count; ++i) {
        const model_result *x = &r[i];
        cJSON *row = cJSON_CreateObject();
        cJSON_AddItemToArray(results, row);
        cJSON_AddStringToObject(row, "scatter", x->scatter);
        cJSON_AddStringToObject(row, "candidates_mode", cand_mode_names[x->mode]);
        cJSON_AddStringToObject(row, "regime", model_regime_names[x->regime]);
        cli_json_add_number(row, "seconds", "%.9g", x->seconds);
        cli_json_add_number(row, "scan_seconds", "%.9g", x->scan_seconds);
        cli_json_add_number(row, "update_seconds", "%.9g", x->update_seconds);
        cli_json_add_number(row, "wall_seconds", "%.9g", x->wall_seconds);
        cli_json_add_number(row, "host_step_seconds", "%.9g", x->host_seconds);
        cli_json_add_number(row, "rows_per_s", "%.6g", per_second((double)s->model_rows, x->seconds));
        cJSON_AddNumberToObject(row, "scores", (double)x->device.scores);
        cli_json_add_number(row, "scores_per_row", "%.4f",
                            s->model_rows ? (double)x->device.scores / (double)s->model_rows : 0.0);
        cli_json_add_number(row, "scores_per_s", "%.6g", per_second((double)x->device.scores, x->seconds));
        cJSON_AddNumberToObject(row, "offenders", (double)x->device.offenders);
        cli_json_add_number(row, "loss", "%.9g", x->device.loss);
        cli_json_add_number(row, "c_seconds", "%.9g", x->c_seconds);
        cli_json_add_number(row, "c_rows_per_s", "%.6g", per_second((double)s->model_rows, x->c_seconds));
        cli_json_add_number(row, "device_over_c", "%.4f", x->c_seconds > 0 ? x->seconds / x->c_seconds : 0.0);
        cli_json_add_number(row, "speedup_vs_c", "%.4f", x->seconds > 0 ? x->c_seconds / x->seconds : 0.0);
        cJSON_AddBoolToObject(row, "check", x->check_ok);
    }
    cli_json_print(doc);
}

static void print_model_header(const settings *s, const device *d)
{
    printf("device: %s (%s)\n", wl_context_device_name(d->wl), d->platform);
    printf("model step: %u users, %u items, dim %u, Adagrad; %zu rows x %zu candidates per batch\n", s->users, s->items,
           s->dim, s->model_rows, s->candidates);
    printf("ms: device time of wl_model_step_cl (ids on the device), split into scan (model_step.cl, after the\n"
           "gathers and CLBlast's SGEMM for shared candidates) and update (model_update.cl); median of %d after %d\n"
           "warm-up. step_cl wall: to its result on the host; step wall: wl_model_step from host arrays. C:\n"
           "ref_model_step, single-threaded (the test oracle, written for clarity: it allocates dense gradient sums\n"
           "and walks every row of U and V per step). Tables restored before every step, outside the timing (no\n"
           "drift). dev/C: device ms / C ms (below 1: the device is faster). scatter: how the step adds its\n"
           "gradient terms (wl_context_model_scatter); with both, each row is timed with each in turn, and 32/64 is\n"
           "atomic32's time over atomic64's.\n\n",
           s->repeat, s->warmup);
    printf("%-8s %-8s %-9s %9s %9s %9s %9s %9s %10s %7s %10s %9s %7s %s\n", "scatter", "cands", "regime", "ms",
           "scan ms", "upd ms", "cl wall", "step wall", "rows/s", "sc/row", "scores/s", "C ms", "dev/C", "check");
}

static void print_model_row(const settings *s, const model_result *x)
{
    printf("%-8s %-8s %-9s %9.3f %9.3f %9.3f %9.3f %9.3f %10.4g %7.1f %10.4g %9.3f %7.3f %s\n", x->scatter,
           cand_mode_names[x->mode], model_regime_names[x->regime], x->seconds * 1e3, x->scan_seconds * 1e3,
           x->update_seconds * 1e3, x->wall_seconds * 1e3, x->host_seconds * 1e3,
           per_second((double)s->model_rows, x->seconds),
           s->model_rows ? (double)x->device.scores / (double)s->model_rows : 0.0,
           per_second((double)x->device.scores, x->seconds), x->c_seconds * 1e3,
           x->c_seconds > 0 ? x->seconds / x->c_seconds : 0.0, x->check_ok ? "ok" : "MISMATCH");
    fflush(stdout);
}

/* A device and a model on it with the given scatter (NULL: the device's own). */
static void open_model(const settings *s, const char *scatter, const wl_model_options *o, device *d, wl_model **m)
{
    const char *old = getenv("WARPLOSS_SCATTER");
    char *saved = old ? strdup(old) : NULL;
    if (scatter && strcmp(scatter, "atomic32") == 0)
        setenv("WARPLOSS_SCATTER", "atomic32", 1);
    else if (scatter)
        unsetenv("WARPLOSS_SCATTER");
    open_device(s->device, d);
    if (saved)
        setenv("WARPLOSS_SCATTER", saved, 1);
    else
        unsetenv("WARPLOSS_SCATTER");
    free(saved);
    if (scatter && strcmp(wl_context_model_scatter(d->wl), scatter) != 0) {
        fprintf(stderr, "%s: --scatters %s: the device lacks cl_khr_int64_base_atomics\n", cli_program, scatter);
        exit(1);
    }
    *m = NULL;
    cli_check_wl(wl_model_create(d->wl, o, m), d->wl);
}

/* The whole --model run; the exit status. */
static int run_model(const settings *s)
{
    const char *scatters[2] = {NULL, NULL};
    int n = 0;
    for (int k = 0; k < 2; ++k)
        if (s->scatters[k])
            scatters[n++] = scatter_names[k];
    n = n ? n : 1;
    device d[2];
    wl_model *m[2];
    wl_model_options o;
    wl_model_options_default(&o, s->users, s->items, s->dim);
    for (int k = 0; k < n; ++k)
        open_model(s, scatters[k], &o, &d[k], &m[k]);
    ref_model rm;
    ref_model_create(&rm, &o);
    model_result results[12];
    int count = 0, failed = 0;
    if (!s->json)
        print_model_header(s, &d[0]);
    model_tables fresh; /* the tables as wl_model_create made them, read before any step */
    read_tables(m[0], &o, &fresh);
    for (int rg = 0; rg < 2; ++rg) {
        model_tables t = fresh;
        if (rg == MODEL_LATE)
            make_late(&o, &fresh, &t);
        for (int mode = 0; mode < 3; ++mode) {
            if (!s->modes[mode])
                continue;
            for (int k = 0; k < n; ++k) {
                model_result *x = &results[count++];
                measure_model(s, &d[k], m[k], &rm, &t, (model_regime)rg, (cand_mode)mode, x);
                x->scatter = wl_context_model_scatter(d[k].wl);
                failed |= !x->check_ok;
                if (!s->json)
                    print_model_row(s, x);
            }
            if (n == 2 && !s->json) {
                const model_result *a = &results[count - 2], *b = &results[count - 1];
                printf("%-8s %-8s %-9s %9.3f %9.3f %9.3f\n", "32/64", cand_mode_names[mode], model_regime_names[rg],
                       a->seconds > 0 ? b->seconds / a->seconds : 0.0,
                       a->scan_seconds > 0 ? b->scan_seconds / a->scan_seconds : 0.0,
                       a->update_seconds > 0 ? b->update_seconds / a->update_seconds : 0.0);
            }
        }
        if (rg == MODEL_LATE)
            free_tables(&t);
    }
    free_tables(&fresh);
    if (s->json)
        print_model_json(s, &d[0], results, count);
    if (failed)
        fprintf(stderr, "%s: a step's loss, offenders or scores differ from the C step's\n", cli_program);
    ref_model_free(&rm);
    for (int k = 0; k < n; ++k) {
        wl_model_destroy(m[k]);
        wl_context_destroy(d[k].wl);
    }
    return failed ? 1 : 0;
}

/* ------------------------------------------------------------ arguments */

enum {
    OPT_DEVICE,
    OPT_SHAPES,
    OPT_REGIMES,
    OPT_REPEAT,
    OPT_WARMUP,
    OPT_OUTPUTS,
    OPT_JSON,
    OPT_MODEL,
    OPT_ROWS,
    OPT_CANDIDATES,
    OPT_DIM,
    OPT_USERS,
    OPT_ITEMS,
    OPT_MODES,
    OPT_SCATTERS,
    OPT_HELP
};

static const cli_option options[] = {
    [OPT_DEVICE] = {"device", required_argument, "SPEC",
                    "gpu, cpu, accelerator, P:D or part of a name (default: $WARPLOSS_DEVICE, else best)"},
    [OPT_SHAPES] = {"shapes", required_argument, "RxN,...",
                    "rows x negatives (default 1024x100,4096x1024,16384x256,65536x64,16384x1024)"},
    [OPT_REGIMES] = {"regimes", required_argument, "LIST",
                     "where the first offender is: early (index 0), deep (the middle), none\n(default: all three)"},
    [OPT_REPEAT] = {"repeat", required_argument, "N",
                    "timed calls per measurement, the median is reported (default 21)"},
    [OPT_WARMUP] = {"warmup", required_argument, "N", "untimed calls before them (default 3)"},
    [OPT_OUTPUTS] = {"outputs", required_argument, "WHAT",
                     "what the timed call asks for besides the loss: offender (default, the\n"
                     "common training case), loss (nothing else), all (also both gradients)"},
    [OPT_JSON] = {"json", no_argument, NULL, "one JSON document instead of the table"},
    [OPT_MODEL] = {"model", no_argument, NULL,
                   "time a step of the embedding model instead (wl_model_step_cl, wl_model_step and\n"
                   "the C reference step) on a synthetic model; --repeat defaults to 11, --warmup to 2"},
    [OPT_ROWS] = {"rows", required_argument, "N", "--model: rows per batch (default 4096)"},
    [OPT_CANDIDATES] = {"candidates", required_argument, "N", "--model: candidates per row (default 256)"},
    [OPT_DIM] = {"dim", required_argument, "N", "--model: embedding dimension (default 64)"},
    [OPT_USERS] = {"users", required_argument, "N", "--model: users (default 100000)"},
    [OPT_ITEMS] = {"items", required_argument, "N", "--model: items (default 100000)"},
    [OPT_MODES] = {"modes", required_argument, "LIST",
                   "--model: candidate modes, per-row (own random ids), shared (one list),\n"
                   "sampled (on the device) (default: all three)"},
    [OPT_SCATTERS] = {"scatters", required_argument, "LIST",
                      "--model: the gradient scatters to time, atomic64 (needs cl_khr_int64_base_atomics)\n"
                      "and atomic32; with both, each row is timed with each in turn and their ratio\n"
                      "printed (default: the device's own)"},
    [OPT_HELP] = {"help", no_argument, NULL, "this text"},
    {NULL, 0, NULL, NULL},
};

static int parse_shapes(settings *s, const char *text)
{
    s->shapes = 0;
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        unsigned long long r = strtoull(p, &end, 10);
        if (end == p || (*end != 'x' && *end != 'X') || errno)
            return -1;
        p = end + 1;
        unsigned long long n = strtoull(p, &end, 10);
        if (end == p || errno || (*end && *end != ','))
            return -1;
        if (s->shapes == MAX_SHAPES || r == 0)
            return -1;
        s->rows[s->shapes] = (size_t)r;
        s->negatives[s->shapes] = (size_t)n;
        s->shapes++;
        p = *end ? end + 1 : end;
    }
    return s->shapes ? 0 : -1;
}

/* The index of name in names[0..2], or -1. */
static int lookup(const char *name, const char *const *names, int count)
{
    for (int i = 0; i < count; ++i)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

/* A comma-separated list of names (each one of names[0 .. count)) into the flags chosen[count]; -1 if a name is
 * unknown or the list is empty. */
static int parse_set(const char *text, const char *const *names, int count, int *chosen)
{
    memset(chosen, 0, (size_t)count * sizeof *chosen);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    int any = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        const int k = lookup(tok, names, count);
        if (k < 0)
            return -1;
        chosen[k] = any = 1;
    }
    return any ? 0 : -1;
}

static int parse_count(const char *text, int min, int *out)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < min || v > 100000)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_outputs(const char *text, outputs *out)
{
    static const char *const names[3] = {[OUT_LOSS] = "loss", [OUT_LOSS_OFFENDER] = "offender", [OUT_ALL] = "all"};
    const int i = lookup(text, names, 3);
    if (i >= 0)
        *out = (outputs)i;
    return i >= 0 ? 0 : -1;
}

/* An unsigned count in [min, max]. */
static int parse_size(const char *text, unsigned long long min, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    const unsigned long long v = strtoull(text, &end, 10);
    if (end == text || *end || errno || text[0] == '-' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_u32(const char *text, unsigned long long min, uint32_t *out)
{
    unsigned long long v;
    if (parse_size(text, min, INT32_MAX, &v))
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* 0 to go on, or 1 to exit with *exit_status: 0 after --help, 2 after a bad argument (with a message). */
static int parse_arguments(int argc, char **argv, settings *s, int *exit_status)
{
    for (;;) {
        const char *value;
        int word, bad = 0;
        const int row = cli_next_option(argc, argv, options, &value, &word);
        if (row == CLI_END && word == argc)
            return 0;
        unsigned long long v = 0;
        if (row == OPT_SHAPES || row == OPT_REGIMES || row == OPT_OUTPUTS)
            s->loss_only = word;
        if (row >= OPT_ROWS && row <= OPT_SCATTERS)
            s->model_only = word;
        s->repeat_set |= row == OPT_REPEAT;
        s->warmup_set |= row == OPT_WARMUP;
        switch (row) {
        case OPT_DEVICE: s->device = value; break;
        case OPT_SHAPES: bad = parse_shapes(s, value); break;
        case OPT_REGIMES: bad = parse_set(value, regime_names, 3, s->regimes); break;
        case OPT_REPEAT: bad = parse_count(value, 1, &s->repeat); break;
        case OPT_WARMUP: bad = parse_count(value, 0, &s->warmup); break;
        case OPT_OUTPUTS: bad = parse_outputs(value, &s->outputs); break;
        case OPT_JSON: s->json = 1; break;
        case OPT_MODEL: s->model = 1; break;
        case OPT_ROWS:
            bad = parse_size(value, 1, (unsigned long long)1 << 26, &v);
            s->model_rows = (size_t)v;
            break;
        case OPT_CANDIDATES:
            bad = parse_size(value, 1, (unsigned long long)1 << 20, &v);
            s->candidates = (size_t)v;
            break;
        case OPT_DIM: bad = parse_u32(value, 1, &s->dim); break;
        case OPT_USERS: bad = parse_u32(value, 1, &s->users); break;
        case OPT_ITEMS: bad = parse_u32(value, 2, &s->items); break;
        case OPT_MODES: bad = parse_set(value, cand_mode_names, 3, s->modes); break;
        case OPT_SCATTERS: bad = parse_set(value, scatter_names, 2, s->scatters); break;
        case OPT_HELP:
            cli_print_help(stdout, options, NULL, NULL);
            *exit_status = 0;
            return 1;
        default: bad = 1; /* unknown, a missing value, or a stray word */
        }
        if (bad) {
            const char *next = word + 1 < argc ? argv[word + 1] : NULL;
            fprintf(stderr, "%s: bad argument %s%s%s\n", cli_program, argv[word], next ? " " : "", next ? next : "");
            cli_print_help(stderr, options, NULL, NULL);
            *exit_status = 2;
            return 1;
        }
    }
}

int main(int argc, char **argv)
{
    cli_init(argc > 0 ? argv[0] : NULL);
    settings s;
    memset(&s, 0, sizeof s);
    s.repeat = 21;
    s.warmup = 3;
    s.outputs = OUT_LOSS_OFFENDER;
    s.regimes[0] = s.regimes[1] = s.regimes[2] = 1;
    parse_shapes(&s, "1024x100,4096x1024,16384x256,65536x64,16384x1024");
    s.users = s.items = 100000;
    s.dim = 64;
    s.model_rows = 4096;
    s.candidates = 256;
    s.modes[0] = s.modes[1] = s.modes[2] = 1;
    int exit_status = 0;
    if (parse_arguments(argc, argv, &s, &exit_status))
        return exit_status;
    /* the options of one benchmark are refused with the other's */
    const int misplaced = s.model ? s.loss_only : s.model_only;
    if (misplaced) {
        fprintf(stderr, "%s: %s is %s\n", cli_program, argv[misplaced],
                s.model ? "not an option of --model" : "an option of --model only");
        cli_print_help(stderr, options, NULL, NULL);
        return 2;
    }
    if (s.model) {
        if (!s.repeat_set)
            s.repeat = 11;
        if (!s.warmup_set)
            s.warmup = 2;
        return run_model(&s);
    }

    device d;
    open_device(s.device, &d);
    result *results = cli_alloc((size_t)s.shapes * 3 * sizeof *results);
    int count = 0, failed = 0;
    if (!s.json)
        print_table_header(&s, &d);
    for (int i = 0; i < s.shapes; ++i) {
        for (int r = 0; r < 3; ++r) {
            if (!s.regimes[r])
                continue;
            measure(&s, &d, s.rows[i], s.negatives[i], (regime)r, &results[count]);
            failed |= !results[count].check_ok;
            if (!s.json)
                print_table_row(&results[count]);
            count++;
        }
    }
    if (s.json)
        print_json(&s, &d, results, count);
    if (failed)
        fprintf(stderr, "%s: the device's loss or offenders differ from the C loop's\n", cli_program);
    free(results);
    wl_context_destroy(d.wl);
    return failed ? 1 : 0;
}
