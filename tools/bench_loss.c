/*
 * The loss benchmark of warploss-bench (the default, without --model): how
 * fast wl_loss_cl runs, as ratios against what the same device and the same
 * host do in the same run. Here: the inputs with the offender at a fixed
 * place, the C loop, one measurement, the table and the JSON document.
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
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "reference.h"
#include "warploss.h"

#define NUM_LABELS 1000000ull

static const char *const output_names[3] = {"loss", "loss+offender", "loss+offender+grad_pos+grad_neg"};

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

/* ------------------------------------------------------------ the run */

int run_loss(const settings *s)
{
    device d;
    open_device(s->device, &d);
    result *results = cli_alloc((size_t)s->shapes * 3 * sizeof *results);
    int count = 0, failed = 0;
    if (!s->json)
        print_table_header(s, &d);
    for (int i = 0; i < s->shapes; ++i) {
        for (int r = 0; r < 3; ++r) {
            if (!s->regimes[r])
                continue;
            measure(s, &d, s->rows[i], s->negatives[i], (regime)r, &results[count]);
            failed |= !results[count].check_ok;
            if (!s->json)
                print_table_row(&results[count]);
            count++;
        }
    }
    if (s->json)
        print_json(s, &d, results, count);
    if (failed)
        fprintf(stderr, "%s: the device's loss or offenders differ from the C loop's\n", cli_program);
    free(results);
    wl_context_destroy(d.wl);
    return failed ? 1 : 0;
}
