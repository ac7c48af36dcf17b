/*
 * What the two benchmarks of warploss-bench share: the settings the command
 * line (warploss-bench.c) fills in and the names of their choices, the device
 * with a profiling queue of its own, buffers on it, the profiling times of
 * events and the spans between them, rates; and each benchmark's entry point
 * (bench_loss.c: wl_loss_cl; bench_model.c: --model, a step of the embedding
 * model, and the timed step it shares; bench_features.c: --model --features,
 * a step of the hybrid model; bench_eval.c: --evaluate, wl_model_evaluate).
 * Options, JSON, the clock, the median and fatal errors are cli.h's.
 */
#ifndef WL_TOOLS_BENCH_H
#define WL_TOOLS_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "warploss.h"

/* ------------------------------------------------------------ settings */

#define MAX_SHAPES 32
#define MAX_FEATURE_RUNS 8
#define FEATURE_GENRES 64 /* --features: the shared features an item's K - 1 are drawn from */

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
    /* --model --features: the item rows' feature counts, each model timed against the one without features */
    uint32_t features[MAX_FEATURE_RUNS];
    int feature_runs; /* 0: not the features mode */
    int modes_word;   /* the word of --modes or --scatters (not options of --features), else 0 */
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

/* The times of one timed model step, in seconds: device time from the end of a marker enqueued before the call to
 * the end of its done event (the update), split at the start of the update, and the host's wall time to its result. */
typedef struct step_times {
    double seconds, scan_seconds, update_seconds, wall_seconds;
} step_times;

/* One wl_model_step_cl on d's profiling queue (bench_model.c), blocking for r; dies on failure. */
void time_step_cl(device *d, wl_model *m, const wl_loss_options *lo, const wl_batch_cl *b, wl_step_result *r,
                  step_times *t);

/* The same step results (bench_model.c): offenders and scores exactly, the loss to float rounding. */
int same_result(const wl_step_result *a, const wl_step_result *b);

/* The whole --model --features run (bench_features.c); the exit status. */
int run_features(const settings *s);

/* The whole --evaluate run (bench_eval.c); the exit status. */
int run_evaluate(const settings *s);

#endif
