/*
 * The embedding model's private parts, shared by its rooms: model.c (options,
 * lifecycle, tables and state, known positives, the SGEMM blocks),
 * model_features.c (the hybrid model's feature matrices and
 * representations), model_step.c (the WARP step), model_catalogue.c
 * (recommend, rank, evaluate) and model_file.c (saving and loading).
 */
#ifndef WL_MODEL_H
#define WL_MODEL_H

#include "internal.h"

/* SGEMM's operands and output for one block of rows (shared candidates) or
 * users (the catalogue queries): at most this many bytes each (and half the
 * device's largest allocation, as CLBlast's temporary buffer may hold a
 * padded copy of them), so large batches and catalogues run in blocks. */
#define GEMM_BLOCK_BYTES ((size_t)256 << 20)
/* Work-items per launch of the step's scan, so the global size stays in range. */
#define SCAN_SLICE ((size_t)1 << 30)

enum { CONTROL_USERS, CONTROL_ITEMS, CONTROL_BAD, CONTROL_COUNT }; /* the step's counters (model_step.cl) */

struct wl_model {
    wl_context *c;
    wl_model_options o;
    cl_mem table[3];               /* by wl_table: U, V, b */
    cl_mem state[3];               /* Adagrad's accumulators by wl_table; NULL with SGD */
    cl_mem acc[3];                 /* fixed-point gradient sums by wl_table (long), zero between steps */
    cl_mem flag[2];                /* users, items: the row is in this step's touched list (int), zero between steps */
    cl_mem touched[2];             /* users, items: this step's touched rows (uint) */
    cl_mem changed[2];             /* users, items: a bit per row steps updated (uint), see wl_model_changed_rows */
    cl_mem control;                /* uint[CONTROL_COUNT], model_step.cl */
    cl_mem known_ptr, known_items; /* the known positives as CSR; NULL: none */
    uint64_t known_count;          /* the known positives' number */
    /* the feature matrices by side (0 users, 1 items; all NULL for a side
     * without features): the host copy (model_features.c) and the device's */
    struct model_features {
        uint64_t *indptr;     /* [rows + 1] */
        int32_t *features;    /* [indptr[rows]] */
        float *weights;       /* [indptr[rows]] */
        uint32_t widest;      /* the most features in one row */
        int identity;         /* row r is feature r with weight 1 for every r: the table is the representation */
        cl_mem ptr, idx, wts; /* the same on the device (idx, wts NULL when there are none) */
    } feat[2];
    cl_mem rep[3]; /* the representations p, q, b of the sides with features (NULL: the table is its own) */
    int rep_stale; /* rep does not follow the tables yet (model_represent brings it up to date) */
    wl_weight_table weights;
    /* a step failed after its scan but before its update: the accumulators and
     * flags may hold that scan's terms, so the next step clears them first */
    int dirty;
};

/* splitmix64's finaliser (the initial tables and the sampling keys) */
uint64_t model_mix64(uint64_t z);
/* Rows of table t (its features' number for a side with features), elements
 * of table t, t as an index of the model's arrays, t's name in errors. */
uint64_t model_table_rows(const wl_model *m, wl_table t);
uint64_t model_table_count(const wl_model *m, wl_table t);
int model_table_index(wl_table t);
const char *model_table_name(wl_table t);
/* A device buffer of bytes, with a copy of host if not NULL (else poisoned if asked). */
wl_status model_buffer(wl_context *c, size_t bytes, const void *host, const char *what, cl_mem *out);
/* Release *buf if not NULL and set it to NULL. */
void model_release(cl_mem *buf);
/* WL_ERROR_INVALID_ARGUMENT naming name[k] for the first id outside [0, limit). */
wl_status model_check_ids(wl_context *c, const int32_t *ids, size_t count, uint32_t limit, const char *name);
/* Item sets per user as CSR (known positives, held-out items): indptr[num_users + 1]
 * from 0, non-decreasing, items in range and strictly ascending within a user;
 * the error names what they are. */
wl_status model_check_sets(wl_model *m, const uint64_t *indptr, const int32_t *items, const char *what);
/* Rows per block of an SGEMM whose output rows have `cols` floats (and whose
 * input rows dim floats), at most n and SCAN_SLICE, at least 1; 0 (with the
 * error set) if one row does not fit. what names the output in the error. */
size_t model_gemm_block(wl_model *m, size_t n, size_t cols, const char *what);
/* Users (t WL_TABLE_USERS) or items (otherwise) of the model: the rows of its representations. */
uint32_t model_entities(const wl_model *m, wl_table t);
/* The representations of t (the table itself for a side without features). */
cl_mem model_rep(const wl_model *m, wl_table t);
/* Enqueue the representations of the sides with features if a change to the
 * tables or the matrices left them behind (model_features.c). */
wl_status model_represent(wl_chain *ch, wl_model *m);
/* Enqueue out[r] = sum_k weights[k] * table[features[k]] over k in
 * [ptr[r], ptr[r + 1]), r < rows, rows of `dim` floats (model_features.cl). */
wl_status model_represent_rows(wl_chain *ch, wl_model *m, size_t rows, uint32_t dim, cl_mem ptr, cl_mem idx, cl_mem wts,
                               cl_mem table, cl_mem out);
/* Check a feature matrix of `rows` rows over `num_features` features (or the
 * rows of the table for a side without them); what names it in errors. */
wl_status model_check_features(wl_context *c, size_t rows, uint32_t num_features, const uint64_t *indptr,
                               const int32_t *features, const float *weights, const char *what);
/* Free the feature matrices and representations. */
void model_features_release(wl_model *m);
/* Set up a new model's feature matrices (the identity where it fits). */
wl_status model_features_init(wl_model *m);
/* Enqueue out[r] = row ids[offset + r] of t's representations, r < count (model_gather.cl). */
wl_status model_gather(wl_chain *ch, wl_model *m, size_t count, cl_mem ids, size_t offset, wl_table t, cl_mem out);
/* Read (blocking) bytes of buf into host, after every command of earlier calls;
 * what names the read in an error. */
wl_status model_read_blocking(wl_context *c, cl_mem buf, size_t bytes, void *host, const char *what);

/* ------------------------------------------------------------ model files (model_file.c) */

/* A model file's content on the host: what wl_model_save writes and
 * wl_model_load reads, without OpenCL (the fuzz harness parses with it). */
typedef struct wl_model_file {
    wl_model_options options;   /* item_bias 0 or 1 */
    uint32_t version;           /* the version parsed (1 or 2); packing writes version 2 */
    float *table[3], *state[3]; /* by wl_table; state NULL with SGD */
    uint64_t *known_ptr;        /* [num_users + 1] */
    int32_t *known_items;       /* [known_ptr[num_users]]; NULL when there are none */
    uint64_t *feat_ptr[2];      /* the feature matrices by side (users, items): [rows + 1]; NULL without */
    int32_t *feat_idx[2];       /* [feat_ptr[s][rows]] (NULL when empty) */
    float *feat_w[2];           /* the same */
    const unsigned char *app;   /* the application bytes: inside the parsed data, or app_owned */
    size_t app_size;
    unsigned char *app_owned; /* what wl_model_file_free frees (version 1: built from the trainer's fields) */
    unsigned skipped;         /* unknown optional sections skipped while parsing */
} wl_model_file;

/* Parse a model file of either version into *out (which holds pointers into
 * data: keep data while using out->app). WL_ERROR_FILE with the reason in err
 * (without the file's name), or WL_ERROR_OUT_OF_MEMORY; on failure *out is empty. */
wl_status wl_model_file_parse(const unsigned char *data, size_t size, wl_model_file *out, char *err, size_t err_size);
/* The version 2 bytes of f (malloc'd); refused (WL_ERROR_NONFINITE for NaN or
 * Inf, else WL_ERROR_FILE) when parsing them back would refuse them. */
wl_status wl_model_file_pack(const wl_model_file *f, unsigned char **out, size_t *size, char *err, size_t err_size);
/* Free what parse allocated and empty f; NULL is fine. */
void wl_model_file_free(wl_model_file *f);

#endif
