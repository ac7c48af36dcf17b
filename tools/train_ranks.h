/*
 * warploss-train on several processes (train_ranks.c; README.md, "Training on
 * many devices"): under mpirun with N > 1 ranks, rank r trains the users u
 * with u % N == r (their pairs, known positives and rows of U stay on it) on
 * its own device; every rank holds all item rows and the ranks combine what
 * each changed in them every --sync-every steps, as 2^-32 fixed-point
 * integers summed by MPI_Allreduce (integer sums do not depend on the order
 * the MPI library adds in, so the tables are bitwise the same on every run).
 * The model file is one file, written by rank 0 from every rank's users.
 *
 * MPI is initialised only when a launcher started the process (mpirun sets
 * OMPI_COMM_WORLD_SIZE, a PMI launcher PMI_SIZE or PMIX_RANK); a build
 * without MPI refuses a launch with N > 1. N = 1 is the plain trainer.
 */
#ifndef WL_TRAIN_RANKS_H
#define WL_TRAIN_RANKS_H

#include <stddef.h>
#include <stdint.h>

#include "train_data.h"
#include "warploss.h"

typedef struct train_ranks {
    int rank, size, local_rank; /* size 1: one process, nothing below is used */
    int mpi;                    /* MPI_Init was called */
    /* What the syncs cost on this rank: */
    uint64_t syncs, sparse_syncs;
    double sync_seconds, sync_bytes; /* bytes this rank put into the reductions */
    double sync_rows;                /* item rows this rank's steps changed */
    double sync_wait;                /* of sync_seconds, waiting for the other ranks to arrive */
} train_ranks;

/* Start MPI under a launcher (N > 1: stdout of ranks other than 0 is
 * dropped, messages name the rank). 0, or EXIT_FAIL after a message. */
int ranks_init(train_ranks *k, int *argc, char ***argv);
void ranks_finalize(train_ranks *k);
/* The largest of every rank's rc (N = 1: rc): each rank calls it at the
 * same point, so a failure on one rank ends all of them there. */
int ranks_agree(const train_ranks *k, int rc);
/* End the whole job now (a failure in the middle of training); N = 1: returns. */
void ranks_abort(const train_ranks *k, int rc);
/* The device this rank uses when --device is not given (NULL: the default):
 * under N > 1 the machine's GPU number local_rank modulo their count,
 * formatted "P:D" into buf; NULL when there is no GPU or $WARPLOSS_DEVICE is set. */
const char *ranks_device(const train_ranks *k, char *buf, size_t size);

/* Sums and maxima over the ranks (N = 1: the value). Doubles are summed in
 * rank order, so every run gives the same bits. */
uint64_t ranks_max(const train_ranks *k, uint64_t v);
uint64_t ranks_sum(const train_ranks *k, uint64_t v);
double ranks_sum_double(const train_ranks *k, double v);

/* Every part's interactions on every rank: pieces[i] (count parts) as rank
 * i % size read it. Collective. 0, or -1 out of memory. */
int ranks_share_pieces(const train_ranks *k, td_interactions *pieces, size_t count);

/* The rows rank k->rank owns of g: the users u with u % size == rank, as
 * local users u / size (their original ids kept), every item, the pairs of
 * those users (train, test, cold, weights). *local is overwritten. 0 (out of
 * memory ends the program, as cli_alloc does). */
int ranks_partition(const train_ranks *k, const td_dataset *g, td_dataset *local);

/* Replace *m (every user of g) by a model of the local users only (the rows
 * the rank owns, with their optimizer state), the same items and options.
 * 0, or a status with err. */
wl_status ranks_localize(const train_ranks *k, wl_context *c, wl_model **m, uint32_t num_local, char *err,
                         size_t err_size);

/* Keeping the item rows in agreement: the rows as they were after the last
 * sync (the same bits on every rank), what each rank changed since (only
 * those rows are read back from the device and, when some rank changed them,
 * written). */
typedef struct ranks_items {
    uint32_t items, dim;
    int adagrad, mean;
    size_t width;                /* values per item row: dim + 1 (bias), twice that with Adagrad */
    float *base, *now;           /* [items x width]: V row, b, then the state of both */
    float *v, *b, *sv, *sb;      /* the whole tables, while starting */
    uint32_t *changed;           /* the rows this rank's steps changed (wl_model_changed_rows); then those written */
    uint64_t *mask, *union_mask; /* rows changed on this rank, on any rank */
    int64_t *q;                  /* the fixed-point deltas */
    uint32_t *rows;              /* the rows exchanged */
    float *rows_v, *rows_b, *rows_sv, *rows_sb;
} ranks_items;

/* Take the model's item rows as the common starting point. 0 or a status. */
wl_status ranks_items_start(ranks_items *y, wl_model *m, int mean);
/* Combine every rank's item changes since the last sync (sum or mean of the
 * deltas; the Adagrad accumulators always summed) into every rank's model.
 * Collective. 0, or a status with err. */
wl_status ranks_sync(train_ranks *k, ranks_items *y, wl_context *c, wl_model *m, char *err, size_t err_size);
void ranks_items_free(ranks_items *y);

/* LightFM's metrics over every rank's users from the local per-user values
 * (per_user [n]): sums and counts reduced, then the means. Collective. */
void ranks_reduce_metrics(const train_ranks *k, const wl_user_metrics *per_user, size_t n, uint32_t kk,
                          wl_metrics *out);

/* Write one model file of every user: rank 0 gathers the user rows (and
 * their state) and the known positives (each rank's training pairs, mine)
 * from the ranks into a model of every user (options o; of g, every user's
 * ids, only the counts are read) with the application bytes app. First every rank hashes
 * its item rows: replicas that differ are not saved. Collective; every rank
 * gets rank 0's result. */
wl_status ranks_save(const train_ranks *k, wl_context *c, wl_model *local, const wl_model_options *o,
                     const td_dataset *g, const td_dataset *mine, const char *path, const void *app, size_t app_size,
                     char *err, size_t err_size);

#endif
