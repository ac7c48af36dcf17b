/*
 * What warploss-train writes besides the model (train_output.c): the line per
 * epoch and the progress bar on a terminal, the final metrics, the JSON line
 * per evaluation (--metrics), the SVG chart (--plot) and the split's files
 * (--write-split).
 */
#ifndef WL_TRAIN_OUTPUT_H
#define WL_TRAIN_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "train_data.h"
#include "warploss.h"

/* One epoch of the run's history. */
typedef struct epoch_record {
    uint64_t epoch; /* 1-based: epochs done after it */
    double loss, seconds;
    int evaluated;
    wl_metrics m;    /* the test pairs (with --cold-items: the warm ones, ranked among the warm items) */
    int has_cold;    /* --cold-items: */
    wl_metrics cold; /* the cold pairs, ranked among the cold items */
} epoch_record;

/* --plot: loss and precision@k per epoch as an SVG chart; 0 or -1. */
int train_write_plot(const char *path, const epoch_record *r, size_t n, uint32_t k, const char *subtitle);
/* --metrics: one JSON object a line for an evaluated epoch (with cold metrics: cold_precision_at_k, ...). */
void train_write_metrics_line(FILE *f, const epoch_record *r, double positives_per_second);
/* mkdir that accepts an existing folder; 0 or -1. */
int train_make_dir(const char *path);
/* --write-split: pairs u[j], i[j] with the original ids, tab-separated; 0 or -1. */
int train_write_pairs(const char *path, const td_dataset *d, size_t n, const int32_t *u, const int32_t *i);
/* "adagrad" or "sgd". */
const char *train_optimizer_name(wl_optimizer o);
/* The final metrics line, after prefix. */
void train_print_metrics(const char *prefix, const wl_metrics *m);
/* "program: what: detail" (or "program: what") on stderr; EXIT_FAIL. */
int train_fail(const char *what, const char *detail);
/* The progress bar of an epoch on a terminal. */
void train_progress(uint64_t epoch, uint64_t last, size_t done, size_t total, double elapsed, double loss);

#endif
