/*
 * warploss-train's application bytes in its model files (README.md,
 * "warploss-train"), little-endian: u64 epochs_done, u64 batches_done,
 * i64 user_ids[U], i64 item_ids[I] (the original ids of the rows), and for
 * a model with features the feature names. A version 1 file's trainer
 * fields load as the same bytes (wl_model_load).
 */
#ifndef WL_TRAIN_FILE_H
#define WL_TRAIN_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "train_data.h"

/* A side's feature names: names[num_features] (0: the side has no
 * features), the first `rows` of them the identity's ("item:ID") when
 * identity is set. */
typedef struct train_names {
    uint32_t num_features;
    int identity;
    char **names;
} train_names;

/* The progress, ids and feature names a model file gives back. */
typedef struct train_progress_ids {
    uint64_t epochs_done, batches_done;
    int64_t *user_ids, *item_ids;       /* malloc'd, [U] and [I] */
    train_names user_names, item_names; /* malloc'd (each name too); none for a side without features */
} train_progress_ids;

/* The bytes for a model of d's users and items after epochs_done epochs and
 * batches_done batches of the next, with the sides' feature names (NULL or
 * num_features 0: none; a model without features has today's bytes)
 * (malloc'd, *size bytes). */
unsigned char *train_app_bytes(uint64_t epochs_done, uint64_t batches_done, const td_dataset *d,
                               const train_names *users, const train_names *items, size_t *size);

/* The application bytes of path's model of nu users and ni items with nuf
 * and nif features (0: none), checked (their size, distinct ids, the names'
 * count): 0, or -1 with err saying what was wrong. */
int train_read_app_bytes(const char *path, const unsigned char *app, size_t size, size_t nu, size_t ni, uint32_t nuf,
                         uint32_t nif, train_progress_ids *out, char *err, size_t err_size);
void train_progress_ids_free(train_progress_ids *p);

#endif
