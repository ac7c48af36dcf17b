/*
 * warploss-train's model file: the tables, the optimizer state, the options,
 * the training progress and the original ids, in one binary file with a
 * header, a version and a checksum, so that --load resumes exactly; and the
 * numpy export (--export-npy).
 *
 * Layout, format version 1. Every integer and float is little-endian whatever
 * the host (written and read byte by byte, never as a struct); floats are
 * IEEE 754 binary32, stored bit for bit.
 *
 *   offset size  type     field
 *        0    8  char[8]  magic "WLMODEL1" (no terminating NUL)
 *        8    4  u32      format version, 1
 *       12    4  u32      header size in bytes, 88 (magic included; the data starts there)
 *       16    4  u32      num_users  U   >= 1
 *       20    4  u32      num_items  I   >= 2
 *       24    4  u32      dim        D   >= 1
 *       28    4  u32      item_bias      0 or 1
 *       32    4  u32      optimizer      0 Adagrad, 1 SGD (wl_optimizer)
 *       36    4  u32      reserved, 0
 *       40    4  f32      learning_rate  finite, > 0
 *       44    4  f32      l2_users       finite, >= 0
 *       48    4  f32      l2_items       finite, >= 0
 *       52    4  u32      reserved, 0
 *       56    8  u64      seed
 *       64    8  u64      epochs_done    (epochs trained on this model, all runs together)
 *       72    8  u64      batches_done
 *       80    8  u64      reserved, 0
 *       88               data, in this order, without padding:
 *                          U table      f32[U x D] row-major
 *                          V table      f32[I x D] row-major
 *                          b            f32[I]          (all 0 when item_bias is 0)
 *                          Adagrad only (absent with SGD): the accumulators of U, V, b,
 *                          same shapes, each finite and > 0
 *                          user ids     i64[U]  the original ids, distinct
 *                          item ids     i64[I]  the original ids, distinct
 *   end - 8           8  u64      checksum: 64-bit FNV-1a (offset basis 0xcbf29ce484222325,
 *                                 prime 0x100000001b3) over every byte before it
 *
 * The file's size is exactly 88 + 4 * (U*D + I*D + I) * (2 if Adagrad else 1)
 * + 8 * (U + I) + 8. A reader refuses anything else: a short file, another
 * magic, version or header size, options a model cannot have, sizes that do
 * not add up, a checksum mismatch, NaN or Inf in a table (a damaged model),
 * a non-positive accumulator, a non-zero bias without item biases, a
 * duplicate id, a non-zero reserved field.
 */
#ifndef WL_MODEL_FILE_H
#define WL_MODEL_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "warploss.h"

#define MF_MAGIC "WLMODEL1"
#define MF_VERSION 1u
#define MF_HEADER_SIZE 88u

typedef struct mf_model {
    wl_model_options options; /* sizes, optimizer, learning rate, l2, seed, item_bias (0 or 1) */
    uint64_t epochs_done, batches_done;
    float *users, *items, *biases;                   /* [U x dim], [I x dim], [I] */
    float *users_state, *items_state, *biases_state; /* NULL with SGD */
    int64_t *user_ids, *item_ids;                    /* original ids, [U], [I] */
} mf_model;

/* Copy a model's tables and state (Adagrad only) out of the device, and the
 * ids (NULL: 0, 1, 2, ...), into m (which mf_free releases). o: the options
 * the model was created with. On failure m is empty and the detail is in
 * wl_context_last_error of the model's context. */
wl_status mf_from_model(wl_model *model, const wl_model_options *o, const int64_t *user_ids, const int64_t *item_ids,
                        uint64_t epochs_done, uint64_t batches_done, mf_model *m);
/* Write m's tables and state into a model created with m->options (tables
 * first, as wl_model_write resets the state, then the state). */
wl_status mf_to_model(const mf_model *m, wl_model *model);

/* Write (to a temporary file in the same folder, then renamed over path, so
 * that a failure leaves no partial file) or read a model file. 0, or -1 with
 * err naming the file and what was wrong (truncated, bad magic, unsupported
 * version, checksum mismatch, sizes that do not add up, ...). mf_save refuses
 * a model that mf_parse would refuse. On failure *m is left empty. */
int mf_save(const char *path, const mf_model *m, char *err, size_t err_size);
int mf_load(const char *path, mf_model *m, char *err, size_t err_size);
/* mf_load on memory (tests, fuzzing); err names the input "(memory)". */
int mf_parse(const unsigned char *data, size_t size, mf_model *m, char *err, size_t err_size);
/* The file's bytes in memory (malloc'd into *out, *out_size); 0 or -1 with err. */
int mf_serialize(const mf_model *m, unsigned char **out, size_t *out_size, char *err, size_t err_size);
/* The file size for m's options (0 if it does not fit in size_t). */
size_t mf_file_size(const wl_model_options *o);
void mf_free(mf_model *m); /* frees the arrays and empties m; NULL is fine */

/* user_embeddings.npy [U x dim], item_embeddings.npy [I x dim], item_biases.npy
 * [I] (float32, '<f4') and user_ids.npy [U], item_ids.npy [I] (int64, '<i8') in
 * dir (created, with its parents, if missing): numpy format 1.0, C order,
 * the data starting at a multiple of 64 bytes. 0 or -1 with err. */
int mf_export_npy(const char *dir, const mf_model *m, char *err, size_t err_size);

#endif
