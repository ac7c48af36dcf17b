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
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool-util.h"
#include "warploss.h"

const char tool_name[] = "warploss-bench";

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
} settings;

typedef struct result {
    size_t rows, negatives;
    regime regime;
    double seconds, wall_seconds, copy_seconds, c_loop_seconds;
    double bytes, copy_bytes;
    int check_ok;
    double loss, c_loop_loss;
} result;

/* ------------------------------------------------------------ inputs */

static uint32_t next_random(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*state >> 33);
}

/* uniform in [lo, hi) */
static float uniform(uint64_t *state, float lo, float hi)
{
    return lo + (hi - lo) * (float)(next_random(state) >> 8) * (1.0f / 16777216.0f);
}

/* The first offender of every row is at `at` (-1: none). With margin 1 and
 * the positive in [0, 1), a negative in [-3, -1.5] never stops the scan and
 * one in [1, 3) always does; after the offender anything goes. */
static void make_inputs(size_t rows, size_t negatives, long at, float *pos, float *neg)
{
    uint64_t state = 0x9e3779b97f4a7c15ull ^ (rows * 31 + negatives);
    for (size_t b = 0; b < rows; ++b) {
        pos[b] = uniform(&state, 0.0f, 1.0f);
        float *n = neg + b * negatives;
        for (size_t j = 0; j < negatives; ++j) {
            if (at < 0 || (long)j < at)
                n[j] = uniform(&state, -3.0f, -1.5f);
            else if ((long)j == at)
                n[j] = uniform(&state, 1.0f, 3.0f);
            else
                n[j] = uniform(&state, -3.0f, 3.0f);
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

/* The rank weight ln(floor((L - 1) / k)) as the library computes it (double, rounded once). */
static float *weight_table(size_t negatives)
{
    float *w = tool_alloc(negatives * sizeof *w);
    for (size_t j = 0; j < negatives; ++j) {
        const uint64_t r = (NUM_LABELS - 1) / ((uint64_t)j + 1);
        w[j] = r ? (float)log((double)r) : 0.0f;
    }
    return w;
}

/* The plain single-threaded loop: first offender per row, its loss, the same outputs as the timed call. */
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
    cl_context context;
    cl_command_queue queue;
    wl_context *wl;
    char name[256];
    char platform[256];
} device;

static void open_device(const char *spec, device *d)
{
    wl_device_choice choice;
    tool_check_wl(wl_select_device(spec, &choice), NULL);
    cl_int err;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)choice.platform, 0};
    d->context = clCreateContext(props, 1, &choice.device, NULL, NULL, &err);
    tool_check_cl(err, "clCreateContext");
    d->queue = clCreateCommandQueue(d->context, choice.device, CL_QUEUE_PROFILING_ENABLE, &err);
    tool_check_cl(err, "clCreateCommandQueue");
    tool_check_wl(wl_context_create_with_queue(d->queue, NULL, &d->wl), NULL);
    snprintf(d->name, sizeof d->name, "%s", wl_context_device_name(d->wl));
    d->platform[0] = '\0';
    clGetPlatformInfo(choice.platform, CL_PLATFORM_NAME, sizeof d->platform - 1, d->platform, NULL);
    d->platform[sizeof d->platform - 1] = '\0';
}

static void close_device(device *d)
{
    wl_context_destroy(d->wl);
    clReleaseCommandQueue(d->queue);
    clReleaseContext(d->context);
}

static cl_mem new_buffer(device *d, size_t bytes, const void *init)
{
    cl_int err;
    cl_mem m = clCreateBuffer(d->context, CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0), bytes ? bytes : 4,
                              (void *)init, &err);
    tool_check_cl(err, "clCreateBuffer");
    return m;
}

static double event_span(cl_event from, cl_profiling_info from_what, cl_event to)
{
    cl_ulong a = 0, b = 0;
    tool_check_cl(clGetEventProfilingInfo(from, from_what, sizeof a, &a, NULL), "clGetEventProfilingInfo");
    tool_check_cl(clGetEventProfilingInfo(to, CL_PROFILING_COMMAND_END, sizeof b, &b, NULL), "clGetEventProfilingInfo");
    return b > a ? 1e-9 * (double)(b - a) : 0.0;
}

/* ------------------------------------------------------------ one measurement */

static void measure(const settings *s, device *d, size_t rows, size_t negatives, regime rg, result *out)
{
    const size_t scores = rows * negatives;
    float *pos = tool_alloc(rows * sizeof *pos), *neg = tool_alloc(scores * sizeof *neg);
    const long at = offender_at(rg, negatives);
    make_inputs(rows, negatives, at, pos, neg);
    const int want_offender = s->outputs != OUT_LOSS, want_grads = s->outputs == OUT_ALL;

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
    float *row_loss = tool_alloc(rows * sizeof *row_loss);
    int32_t *offender = want_offender ? tool_alloc(rows * sizeof *offender) : NULL;
    float *grad_pos = want_grads ? tool_alloc(rows * sizeof *grad_pos) : NULL;
    float *grad_neg = want_grads ? tool_alloc(scores * sizeof *grad_neg) : NULL;
    volatile float sink = 0.0f;

    /* The call, the device's copy and the C loop take turns, so that the
     * load of a shared machine weighs on all three alike. */
    const int n = s->repeat;
    double *times = tool_alloc((size_t)n * sizeof *times), *walls = tool_alloc((size_t)n * sizeof *walls);
    double *copies = tool_alloc((size_t)n * sizeof *copies), *loops = tool_alloc((size_t)n * sizeof *loops);
    for (int i = -s->warmup; i < n; ++i) {
        cl_event start, done;
        double t0 = tool_now();
        tool_check_cl(clEnqueueMarkerWithWaitList(d->queue, 0, NULL, &start), "clEnqueueMarkerWithWaitList");
        tool_check_wl(wl_loss_cl(d->wl, &lo, rows, negatives, pos_buf, neg_buf, loss_buf, grad_pos_buf, grad_neg_buf,
                                 offender_buf, 0, NULL, &done),
                      d->wl);
        tool_check_cl(clWaitForEvents(1, &done), "clWaitForEvents");
        const double wall = tool_now() - t0;
        if (i >= 0) {
            times[i] = event_span(start, CL_PROFILING_COMMAND_END, done);
            walls[i] = wall;
        }
        clReleaseEvent(start);
        clReleaseEvent(done);

        /* the device's own copy of the same byte count */
        if (scores) {
            cl_event ev;
            tool_check_cl(clEnqueueCopyBuffer(d->queue, neg_buf, copy_buf, 0, 0, scores * sizeof(float), 0, NULL, &ev),
                     "clEnqueueCopyBuffer");
            tool_check_cl(clWaitForEvents(1, &ev), "clWaitForEvents");
            if (i >= 0)
                copies[i] = event_span(ev, CL_PROFILING_COMMAND_START, ev);
            clReleaseEvent(ev);
        } else if (i >= 0) {
            copies[i] = 0.0;
        }

        /* the C loop over the same host data, same outputs */
        t0 = tool_now();
        sink = c_loop(rows, negatives, pos, neg, weight, row_loss, offender, grad_pos, grad_neg);
        if (i >= 0)
            loops[i] = tool_now() - t0;
    }
    out->seconds = tool_median(times, n);
    out->wall_seconds = tool_median(walls, n);
    out->copy_seconds = tool_median(copies, n);
    out->copy_bytes = 2.0 * (double)scores * sizeof(float);
    out->c_loop_seconds = tool_median(loops, n);
    out->c_loop_loss = sink;

    /* check the device's answer against the C loop */
    float loss = 0.0f;
    tool_check_cl(clEnqueueReadBuffer(d->queue, loss_buf, CL_TRUE, 0, sizeof loss, &loss, 0, NULL, NULL),
             "clEnqueueReadBuffer");
    out->loss = loss;
    double exact = 0.0; /* the C loop's row losses summed in double: its own float sum drifts on long shapes */
    for (size_t b = 0; b < rows; ++b)
        exact += row_loss[b];
    out->check_ok = fabs((double)loss - exact) <= 1e-5 * fabs(exact) + 1e-6;
    if (want_offender && rows) {
        int32_t *got = tool_alloc(rows * sizeof *got);
        tool_check_cl(clEnqueueReadBuffer(d->queue, offender_buf, CL_TRUE, 0, rows * sizeof *got, got, 0, NULL, NULL),
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

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; ++s) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", (unsigned)(unsigned char)*s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void print_json(const settings *s, const device *d, const result *r, int count)
{
    printf("{\n  \"device\": ");
    json_string(d->name);
    printf(",\n  \"platform\": ");
    json_string(d->platform);
    printf(",\n  \"scan_variant\": \"%s\",\n  \"outputs\": \"%s\",\n  \"reduction\": \"sum\",\n"
           "  \"num_labels\": %llu,\n  \"repeat\": %d,\n"
           "  \"timing\": \"median device time, end of a marker enqueued before the call to the end of its done "
           "event\",\n  \"gb_convention\": \"bytes read + bytes written, 1 GB = 1e9 bytes\",\n  \"results\": [",
           wl_context_scan_variant(d->wl), output_names[s->outputs], (unsigned long long)NUM_LABELS, s->repeat);
    for (int i = 0; i < count; ++i) {
        const result *x = &r[i];
        printf("%s\n    {\"rows\": %zu, \"negatives\": %zu, \"regime\": \"%s\", \"seconds\": %.9g, "
               "\"wall_seconds\": %.9g, \"rows_per_s\": %.6g, \"gb_per_s\": %.6g, \"copy_seconds\": %.9g, "
               "\"copy_gb_per_s\": %.6g, \"fraction_of_copy\": %.4f, \"c_loop_seconds\": %.9g, "
               "\"speedup_vs_c_loop\": %.4f, \"check\": %s}",
               i ? "," : "", x->rows, x->negatives, regime_names[x->regime], x->seconds, x->wall_seconds,
               per_second((double)x->rows, x->seconds), per_second(x->bytes, x->seconds) * 1e-9, x->copy_seconds,
               per_second(x->copy_bytes, x->copy_seconds) * 1e-9,
               x->copy_seconds > 0 ? per_second(x->bytes, x->seconds) / per_second(x->copy_bytes, x->copy_seconds)
                                   : 0.0,
               x->c_loop_seconds, x->seconds > 0 ? x->c_loop_seconds / x->seconds : 0.0,
               x->check_ok ? "true" : "false");
    }
    printf("\n  ]\n}\n");
}

static void print_table_header(const settings *s, const device *d)
{
    printf("device: %s (%s), %s scan\n", d->name, d->platform, wl_context_scan_variant(d->wl));
    printf("timed call: wl_loss_cl, reduction sum, outputs %s; median of %d after %d warm-up\n",
           output_names[s->outputs], s->repeat, s->warmup);
    printf("GB/s count bytes read + written (copy: clEnqueueCopyBuffer of the negatives' size)\n\n");
    printf("%-12s %-6s %10s %10s %12s %8s %8s %7s %10s %8s %s\n", "shape", "regime", "ms", "wall ms", "rows/s",
           "GB/s", "copy", "%copy", "C loop ms", "xC loop", "check");
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

/* ------------------------------------------------------------ arguments */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: warploss-bench [--device SPEC] [--shapes RxN,RxN,...] [--regimes early,deep,none]\n"
            "                      [--repeat N] [--warmup N] [--outputs loss|offender|all] [--json]\n"
            "  --device SPEC   gpu, cpu, accelerator, P:D or part of a name (default: $WARPLOSS_DEVICE, else best)\n"
            "  --shapes        rows x negatives (default 1024x100,4096x1024,16384x256,65536x64,16384x1024)\n"
            "  --regimes       where the first offender is: early (index 0), deep (the middle), none\n"
            "  --repeat N      timed calls per measurement, the median is reported (default 21)\n"
            "  --outputs       what the timed call asks for besides the loss: offender (default, the\n"
            "                  common training case), loss (nothing else), all (also both gradients)\n"
            "  --json          one JSON document instead of the table\n");
}

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

static int parse_regimes(settings *s, const char *text)
{
    memset(s->regimes, 0, sizeof s->regimes);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    int any = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int found = 0;
        for (int r = 0; r < 3; ++r)
            if (!strcmp(tok, regime_names[r]))
                s->regimes[r] = found = any = 1;
        if (!found)
            return -1;
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

int main(int argc, char **argv)
{
    settings s;
    memset(&s, 0, sizeof s);
    s.repeat = 21;
    s.warmup = 3;
    s.outputs = OUT_LOSS_OFFENDER;
    s.regimes[0] = s.regimes[1] = s.regimes[2] = 1;
    parse_shapes(&s, "1024x100,4096x1024,16384x256,65536x64,16384x1024");
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            s.json = 1;
        } else if (!v) {
            bad = 1;
        } else if (!strcmp(a, "--device")) {
            s.device = v, ++i;
        } else if (!strcmp(a, "--shapes")) {
            bad = parse_shapes(&s, v), ++i;
        } else if (!strcmp(a, "--regimes")) {
            bad = parse_regimes(&s, v), ++i;
        } else if (!strcmp(a, "--repeat")) {
            bad = parse_count(v, 1, &s.repeat), ++i;
        } else if (!strcmp(a, "--warmup")) {
            bad = parse_count(v, 0, &s.warmup), ++i;
        } else if (!strcmp(a, "--outputs")) {
            ++i;
            if (!strcmp(v, "loss"))
                s.outputs = OUT_LOSS;
            else if (!strcmp(v, "offender"))
                s.outputs = OUT_LOSS_OFFENDER;
            else if (!strcmp(v, "all"))
                s.outputs = OUT_ALL;
            else
                bad = 1;
        } else {
            bad = 1;
        }
        if (bad) {
            fprintf(stderr, "warploss-bench: bad argument %s%s%s\n", a, v ? " " : "", v ? v : "");
            usage(stderr);
            return 2;
        }
    }

    device d;
    open_device(s.device, &d);
    result *results = tool_alloc((size_t)s.shapes * 3 * sizeof *results);
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
        fprintf(stderr, "warploss-bench: the device's loss or offenders differ from the C loop's\n");
    free(results);
    close_device(&d);
    return failed ? 1 : 0;
}
