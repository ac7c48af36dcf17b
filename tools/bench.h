/*
 * What the two benchmarks of warploss-bench share: the settings the command
 * line (warploss-bench.c) fills in and the names of their choices, the device
 * with a profiling queue of its own, buffers on it, the profiling times of
 * events and the spans between them, rates; and each benchmark's entry point
 * (bench_loss.c: wl_loss_cl; bench_model.c: --model, a step of the embedding
 * model; bench_eval.c: --evaluate, wl_model_evaluate). Options, JSON, the clock, the median and fatal errors are
 * cli.h's.
 */
#ifndef WL_TOOLS_BENCH_H
#define WL_TOOLS_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "warploss.h"

/* ------------------------------------------------------------ settings */

#define MAX_SHAPES 32

/* Where the first offender of every row is in the loss benchmark. */
typedef enum { REGIME_EARLY, REGIME_DEEP, REGIME_NONE } regime;
extern const char *const regime_names[3]; /* "early", "deep", "none" */

/* What the loss benchmark's timed call asks for. */
typedef enum { OUT_LOSS, OUT_LOSS_OFFENDER, OUT_ALL } outputs;

/* The candidate modes of --model, and the gradient scatters it can time. */
typedef enum { CAND_ROWS, CAND_SHARED, CAND_SAMPLED } cand_mode;
extern const char *const cand_mode_names[3]; /* "per-row", "shared", "sampled" */
extern const char *const scatter_names[2];   /* "atomic64", "atomic32" */

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
    int evaluate; /* --evaluate */
    uint32_t users, items, dim;
    size_t model_rows, candidates;
    int modes[3];
    int scatters[2]; /* atomic64, atomic32; none set: the device's own */
} settings;

/* ------------------------------------------------------------ device */

typedef struct device {
    wl_context *wl; /* on a profiling queue of its own */
    char platform[256];
} device;

/* A context on the device spec selects, on a profiling queue of its own, and its platform's name; dies on failure. */
void open_device(const char *spec, device *d);

/* A buffer of bytes (at least 4) on d, a copy of init unless that is NULL; dies on failure. */
cl_mem new_buffer(device *d, size_t bytes, const void *init);

/* ------------------------------------------------------------ times and rates */

/* The profiling time `what` (as CL_PROFILING_COMMAND_END) of ev, in nanoseconds; dies on failure. */
cl_ulong profile(cl_event ev, cl_profiling_info what);

/* Seconds from one profiling time to a later one; 0 if `to` is not later. */
double span(cl_ulong from, cl_ulong to);

/* count / seconds; 0 without time. */
double per_second(double count, double seconds);

/* ------------------------------------------------------------ the benchmarks */

/* The loss benchmark (bench_loss.c): a measurement per shape and regime, the table or --json; the exit status. */
int run_loss(const settings *s);

/* The whole --model run (bench_model.c); the exit status. */
int run_model(const settings *s);

/* The whole --evaluate run (bench_eval.c); the exit status. */
int run_evaluate(const settings *s);

#endif
