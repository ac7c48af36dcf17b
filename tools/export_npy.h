/*
 * warploss-train's --export-npy: a model's tables and the original ids as
 * numpy .npy files (the model file itself is the library's: wl_model_save,
 * wl_model_load).
 */
#ifndef WL_EXPORT_NPY_H
#define WL_EXPORT_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "warploss.h"

/* The tables and ids to export, on the host. */
typedef struct npy_tables {
    uint32_t num_users, num_items, dim;
    const float *users, *items, *biases; /* [U x dim], [I x dim], [I] */
    const int64_t *user_ids, *item_ids;  /* the original ids, [U], [I] */
} npy_tables;

/* user_embeddings.npy [U x dim], item_embeddings.npy [I x dim], item_biases.npy
 * [I] (float32, '<f4') and user_ids.npy [U], item_ids.npy [I] (int64, '<i8') in
 * dir (created, with its parents, if missing): numpy format 1.0, C order,
 * the data starting at a multiple of 64 bytes. 0 or -1 with err naming the
 * file or folder. */
int npy_export(const char *dir, const npy_tables *t, char *err, size_t err_size);

/* The same with m's tables, read back from the device (wl_model_read). */
int npy_export_model(const char *dir, wl_model *m, const int64_t *user_ids, const int64_t *item_ids, char *err,
                     size_t err_size);

/*
 * A model with features (the hybrid model): the files of npy_export with
 * the representations the scores use (wl_model_read_representations: each
 * user's and item's weighted sum of its features' rows), and for each side
 * with features (SIDE: user, item) its feature tables, SIDE_feature_embeddings.npy
 * [F x dim] and item_feature_biases.npy [F] (float32), its matrix as scipy's
 * CSR arrays, SIDE_features_indptr.npy [rows + 1] (int64),
 * SIDE_features_indices.npy [nnz] (int32), SIDE_features_data.npy [nnz]
 * (float32), and, names not NULL, SIDE_feature_names.txt (names[F], one a
 * line). 0 or -1 with err.
 */
int npy_export_model_features(const char *dir, wl_model *m, const int64_t *user_ids, const int64_t *item_ids,
                              char *const *user_names, char *const *item_names, char *err, size_t err_size);

#endif
