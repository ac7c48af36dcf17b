/* Kernel sources, the program build, and the binary cache. */
#ifndef WL_PROGRAM_H
#define WL_PROGRAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct wl_kernel_file {
    const char *name;
    const char *text;
    size_t size;
} wl_kernel_file;

/* Generated at build time from cl/ (tools/embed-kernels.py). */
extern const wl_kernel_file wl_kernel_files[];
extern const size_t wl_kernel_file_count;

/*
 * The programs, one per feature, each compiled from its own .cl files (in
 * this order, after the prelude), so that a feature a device cannot compile
 * fails alone. X(ID, name, files...).
 */
#define WL_PROGRAM_TABLE(X)                                                                                            \
    X(LOSS, "loss", "compare.cl", "scatter.cl", "scan.cl", "reduce.cl", "check.cl")                                    \
    X(MODEL, "model", "model_common.cl", "model_gather.cl", "model_step.cl", "model_update.cl", "model_catalogue.cl",  \
      "model_features.cl")

/* Every kernel, once: X(ID, program ID, name in the .cl file). */
#define WL_KERNEL_TABLE(X)                                                                                             \
    X(SCAN_ROWS, LOSS, "wl_scan_rows")                                                                                 \
    X(SCAN_GROUPS, LOSS, "wl_scan_groups")                                                                             \
    X(REDUCE_SUM, LOSS, "wl_reduce_sum")                                                                               \
    X(FIND_NONFINITE, LOSS, "wl_find_nonfinite")                                                                       \
    X(MODEL_SCAN, MODEL, "wl_model_scan")                                                                              \
    X(MODEL_SCAN_GROUPS, MODEL, "wl_model_scan_groups")                                                                \
    X(MODEL_UPDATE, MODEL, "wl_model_update")                                                                          \
    X(MODEL_GATHER, MODEL, "wl_model_gather")                                                                          \
    X(MODEL_SCATTER_ROWS, MODEL, "wl_model_scatter_rows")                                                              \
    X(MODEL_TOP_K, MODEL, "wl_model_top_k")                                                                            \
    X(MODEL_RANK, MODEL, "wl_model_rank")                                                                              \
    X(MODEL_EVALUATE, MODEL, "wl_model_evaluate")                                                                      \
    X(MODEL_REPRESENT, MODEL, "wl_model_represent")

#define WL_PROGRAM_ENUM(id, name, ...) WL_PROGRAM_##id,
#define WL_KERNEL_ENUM(id, program, name) WL_KERNEL_##id,
typedef enum wl_program_id { WL_PROGRAM_TABLE(WL_PROGRAM_ENUM) WL_PROGRAM_COUNT } wl_program_id;
typedef enum wl_kernel_id { WL_KERNEL_TABLE(WL_KERNEL_ENUM) WL_KERNEL_COUNT } wl_kernel_id;
#undef WL_PROGRAM_ENUM
#undef WL_KERNEL_ENUM

typedef struct wl_program_desc {
    const char *name;
    const char *const *files; /* NULL-terminated */
} wl_program_desc;

typedef struct wl_kernel_desc {
    const char *name;
    wl_program_id program;
} wl_kernel_desc;

extern const wl_program_desc wl_programs[WL_PROGRAM_COUNT];
extern const wl_kernel_desc wl_kernels[WL_KERNEL_COUNT];

struct wl_context;

/* At context creation: choose the kernel folder (explicit, $WARPLOSS_KERNEL_DIR,
 * installed, else embedded) and the cache folder, then build the loss program.
 * Fills c->kernel_origin, c->from_cache and c->build_seconds. */
int wl_program_create(struct wl_context *c, const char *kernel_dir, const char *cache_dir);

/* Build (or load from the binary cache) program id and create its kernels,
 * once; later calls return at once. On failure (WL_ERROR_KERNEL_SOURCE,
 * WL_ERROR_BUILD with the log, ...) the detail is on c, the other programs
 * are untouched, and the next call tries again. */
int wl_program_require(struct wl_context *c, wl_program_id id);

/* Release every program and kernel (wl_context_destroy). */
void wl_program_release_all(struct wl_context *c);

/* The prelude followed by each kernel file of program id from dir (NULL: the
 * embedded copy), each after a #line; *out is malloc'd, NULL on failure.
 * Returns a wl_status (WL_ERROR_KERNEL_SOURCE for a file that is missing,
 * unreadable, too large, not a regular file or has a NUL byte), the detail on c. */
int wl_program_load_sources(struct wl_context *c, wl_program_id id, const char *dir, const char *prelude, char **out);

/* The embedded copy of a kernel file, NULL if there is none of that name. */
const wl_kernel_file *wl_kernel_file_find(const char *name);

/* cache.c */
uint64_t wl_hash64(const void *data, size_t size, uint64_t seed);
#define WL_HASH_SEED 0xcbf29ce484222325ull

/* Serialise a cache entry: returns a malloc'd buffer of *size bytes, or NULL. */
unsigned char *wl_cache_pack(const char *key, const unsigned char *binary, size_t binary_size, size_t *size);

/* Check an entry read from disk against the key; on success points *binary
 * into data. Returns 0 when valid, -1 otherwise (bad magic, key, size or
 * checksum). Never reads outside data[0 .. size). */
int wl_cache_unpack(const unsigned char *data, size_t size, const char *key, const unsigned char **binary,
                    size_t *binary_size);

/* Read a whole file (at most max bytes) into a malloc'd buffer; NULL on failure. */
unsigned char *wl_read_file(const char *path, size_t max, size_t *size);

/* Write data to path through a temporary file in the same folder and a
 * rename, creating the folder if needed. Returns 0 or an errno value. */
int wl_write_file_atomic(const char *path, const void *data, size_t size);

#endif
