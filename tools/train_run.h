/*
 * One run of warploss-train: what the loop (warploss-train.c) and the model's
 * setup (train_model.c: a new model or --load, fitted to the data, the known
 * positives and the evaluation's pairs) share.
 */
#ifndef WL_TRAIN_RUN_H
#define WL_TRAIN_RUN_H

#include <stdint.h>
#include <stdio.h>

#include "train_file.h"
#include "train_input.h"
#include "train_options.h"
#include "train_output.h"
#include "train_ranks.h"
#include "warploss.h"

typedef struct run {
    settings s;
    train_ranks k;                      /* the ranks under mpirun (train_ranks.h); size 1: this process alone */
    td_dataset d;                       /* the data (N > 1 ranks: this rank's users) */
    td_dataset global;                  /* N > 1: every user's data (d before the partition) */
    size_t total_pairs;                 /* the training pairs of every rank */
    ranks_items sync;                   /* N > 1: the item rows at the last sync */
    train_features f;                   /* --item-features, --user-features */
    train_names user_names, item_names; /* the model's feature names: f's, or the loaded file's */
    int have_loaded;                    /* r->m came from --load */
    train_progress_ids loaded;          /* its progress and ids (the application bytes) */
    wl_context *c;
    wl_model *m;
    wl_model_options mo;
    uint64_t epochs_done, batches_done; /* batches of the unfinished epoch epochs_done */
    void *good;                         /* the last good model (end of an epoch), as a model file in memory, */
    size_t good_size;                   /* for --save after a NaN */
    uint64_t good_epochs;
    epoch_record *history;
    size_t history_count;
    uint64_t *test_ptr;             /* the test pairs as CSR over the users (their items: d.test_items) */
    uint64_t *cold_ptr;             /* --cold-items: the cold pairs as CSR (their items: d.cold_items), */
    uint8_t *warm_mask, *cold_mask; /* and the items each kind is ranked among */
    double step_seconds;            /* the epochs' time less the syncs', */
    uint64_t steps;                 /* over this many steps */
    cl_mem users_buf, items_buf, weights_buf;
    int32_t *users, *items;
    float *weights; /* --weights: the epoch's sample weights */
    FILE *metrics;
} run;

/* "what: the context's detail (status)" on stderr; EXIT_FAIL. */
int train_fail_wl(run *r, wl_status st, const char *what);

/* The context on --device (under N > 1 ranks without it: the rank's GPU). 0 or EXIT_FAIL. */
int train_create_context(run *r);
/* --load: the model from the file, its progress and ids. 0 or EXIT_FAIL. */
int train_load_model(run *r);
/* The loaded model's options against the flags: the file wins; an explicit different value is EXIT_USAGE. */
int train_check_loaded(run *r);
/* The model for the data: created (with the feature matrices), or the loaded one checked against the data; under
 * N > 1 ranks this rank's users of both; the known positives, the test (and cold) pairs as CSR; the model line.
 * 0 or EXIT_FAIL after a message. */
int train_setup_model(run *r);

#endif
