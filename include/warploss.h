/*
 * warploss: the WARP ranking loss (Weston, Bengio, Usunier 2011) and its
 * gradients on any OpenCL 1.2 device.
 *
 * Thread safety: a wl_context may be used by one thread at a time (calls on
 * one context from several threads must be serialised by the caller, for
 * example with a mutex around each call). Different contexts are independent
 * and may be used from different threads at once. wl_select_device, the
 * *_default functions and wl_status_string may be called from any thread.
 *
 * Errors: every function that can fail returns a wl_status. The detail (which
 * argument, the OpenCL error name, the compiler's build log) is read with
 * wl_context_last_error(). The library never prints.
 */
#ifndef WARPLOSS_H
#define WARPLOSS_H

#include <stddef.h>
#include <stdint.h>

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#ifdef __APPLE__
#include <OpenCL/cl.h>
#else
#include <CL/cl.h>
#endif

#define WL_API_VERSION_MAJOR 0
#define WL_API_VERSION_MINOR 1
#define WL_API_VERSION_PATCH 0

#if defined(_WIN32) && defined(WL_BUILDING_LIBRARY)
#define WL_API __declspec(dllexport)
#elif defined(WL_BUILDING_LIBRARY) && defined(__GNUC__)
#define WL_API __attribute__((visibility("default")))
#else
#define WL_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum wl_status {
    WL_SUCCESS = 0,
    WL_ERROR_INVALID_ARGUMENT = -1, /* bad shape, NULL where data is needed, bad option */
    WL_ERROR_NO_DEVICE = -2,        /* no OpenCL platform, or nothing matches the request */
    WL_ERROR_KERNEL_SOURCE = -3,    /* kernel sources could not be found or read */
    WL_ERROR_BUILD = -4,            /* program build failed; the build log is in the error text */
    WL_ERROR_OUT_OF_MEMORY = -5,    /* host or device allocation failed, or too large */
    WL_ERROR_NONFINITE = -6,        /* NaN or Inf in the input while checking is on */
    WL_ERROR_OPENCL = -7,           /* any other OpenCL failure; its name is in the error text */
    WL_ERROR_FILE = -8              /* a file could not be read or written, or is not a valid model file */
} wl_status;

/* A fixed English name for a status ("invalid argument", ...); never NULL. */
WL_API const char *wl_status_string(wl_status s);

/* The library's version as "MAJOR.MINOR.PATCH", from the library that is
 * loaded (the WL_API_VERSION_* macros give the header's). */
WL_API const char *wl_version(void);

/* ---------------------------------------------------------------- devices */

/* One OpenCL platform as wl_list_devices finds it. */
typedef struct wl_platform_info {
    cl_platform_id platform;
    unsigned index;        /* the P of "P:D" */
    unsigned device_count; /* its devices in the list */
    char name[256], vendor[256], version[256];
} wl_platform_info;

/* One OpenCL device as wl_list_devices finds it. */
typedef struct wl_device_info {
    cl_platform_id platform;
    cl_device_id device;
    unsigned platform_index, device_index; /* "P:D" */
    cl_device_type type;
    cl_uint compute_units;
    cl_ulong global_memory;  /* CL_DEVICE_GLOBAL_MEM_SIZE, bytes */
    cl_ulong max_allocation; /* CL_DEVICE_MAX_MEM_ALLOC_SIZE, bytes */
    char platform_name[256], device_name[256];
} wl_device_info;

/* Every platform and device, in clGetPlatformIDs and clGetDeviceIDs order
 * (so devices[i] is "platform_index:device_index" of wl_select_device). */
typedef struct wl_device_list {
    wl_platform_info *platforms;
    size_t platform_count;
    wl_device_info *devices;
    size_t device_count;
    cl_int platform_error; /* clGetPlatformIDs' result when it found no platform, else CL_SUCCESS */
} wl_device_list;

/*
 * List every OpenCL platform and device. No platform at all is not an error:
 * the list is empty and platform_error says what clGetPlatformIDs returned.
 * WL_ERROR_OUT_OF_MEMORY if the host runs out of memory (the list is then
 * empty). Release the list with wl_device_list_free.
 */
WL_API wl_status wl_list_devices(wl_device_list *out);

/* Free what wl_list_devices allocated and empty the list. NULL is fine. */
WL_API void wl_device_list_free(wl_device_list *list);

/* What a device specification resolved to. */
typedef struct wl_device_choice {
    cl_platform_id platform;
    cl_device_id device;
    unsigned platform_index; /* the P of "P:D" */
    unsigned device_index;   /* the D of "P:D" */
    char reason[192];        /* why this device, e.g. "GPU with the most compute units" */
} wl_device_choice;

/*
 * Resolve a device specification, the same way wl_context_create does:
 *   "gpu", "cpu", "accelerator"  the best device of that type;
 *   "P:D"                        platform P, device D (indices as clGetPlatformIDs
 *                                and clGetDeviceIDs list them);
 *   anything else                a case-insensitive substring of the platform or
 *                                device name; the best of the matches.
 * NULL or "" means $WARPLOSS_DEVICE if set and not empty, else the best device.
 * "Best" prefers a GPU, then an accelerator, then a CPU, then anything else;
 * among equals the most compute units, then the lowest index.
 * Returns WL_ERROR_NO_DEVICE when there is no platform or nothing matches;
 * the detail is in wl_context_last_error(NULL).
 */
WL_API wl_status wl_select_device(const char *spec, wl_device_choice *out);

/*
 * How wl_context_create runs the kernels on `device` (wl_context_scan_variant
 * of a context on it gives the same variant): *scan_variant is "row" (one
 * work-item scans a row; CPUs) or "group" (one work-group shares a row; other
 * devices, and Mesa's llvmpipe, see README.md "Platforms"), unless
 * $WARPLOSS_SCAN is "row" or "group"; *vector_width is the
 * number of scores each work-item loads at once. Either output may be NULL.
 * On failure the detail is in wl_context_last_error(NULL).
 */
WL_API wl_status wl_device_launch_plan(cl_device_id device, const char **scan_variant, int *vector_width);

/*
 * How a model on `device` adds its gradient terms (README.md, "The model
 * without 64-bit atomics"): *scatter is "atomic64" (64-bit atom_add, needs
 * cl_khr_int64_base_atomics) or "atomic32" (two 32-bit atomic adds with a
 * carry: any OpenCL 1.2 device). Both sum the same fixed-point integers, so
 * the tables are the same bit for bit. *reason says why this one (the
 * extension present or missing, or $WARPLOSS_SCATTER=atomic32). Either
 * output may be NULL; the strings are static.
 */
WL_API wl_status wl_device_model_scatter(cl_device_id device, const char **scatter, const char **reason);

/* ---------------------------------------------------------------- context */

typedef struct wl_context wl_context;

typedef struct wl_context_options {
    const char *device;     /* NULL: $WARPLOSS_DEVICE, else the best device */
    const char *kernel_dir; /* NULL: $WARPLOSS_KERNEL_DIR, else the installed dir, else the embedded copy */
    const char
        *cache_dir; /* NULL: $WARPLOSS_CACHE_DIR, else $XDG_CACHE_HOME/warploss or ~/.cache/warploss; "" = no cache */
    void (*log)(void *user, const char *message); /* NULL: silent */
    void *log_user;
} wl_context_options;

/* Fill every field with its default (all NULL). */
WL_API void wl_context_options_default(wl_context_options *o);

/*
 * Create a context: choose the device, create an OpenCL context and an
 * in-order queue on it, load the kernel sources and build (or load from the
 * binary cache) the program. On failure *out is NULL and the detail is in
 * wl_context_last_error(NULL) (kept per thread) and sent to the log callback.
 */
WL_API wl_status wl_context_create(const wl_context_options *o /* NULL = defaults */, wl_context **out);

/*
 * The same on a queue the caller owns (its context and device are used; the
 * queue is retained, not copied). o->device is ignored. wl_loss_cl enqueues
 * on this queue; an out-of-order queue is fine (the library chains events).
 */
WL_API wl_status wl_context_create_with_queue(cl_command_queue queue, const wl_context_options *o, wl_context **out);

/* Release everything the context created. NULL is fine. */
WL_API void wl_context_destroy(wl_context *c);

WL_API cl_command_queue wl_context_queue(const wl_context *c);
WL_API cl_context wl_context_cl_context(const wl_context *c);
WL_API cl_device_id wl_context_device(const wl_context *c);
WL_API const char *wl_context_device_name(const wl_context *c);

/* Detail of the last failure on c, "" if none. With c == NULL: the last
 * failure of wl_context_create* or wl_select_device on the calling thread. */
WL_API const char *wl_context_last_error(const wl_context *c);

/* Where the kernel sources came from: the folder they were read from, or "embedded". */
WL_API const char *wl_context_kernel_origin(const wl_context *c);

/* 1 if the program was loaded from the binary cache, 0 if it was compiled. */
WL_API int wl_context_program_from_cache(const wl_context *c);

/* Seconds spent building (or loading) the program in wl_context_create*. */
WL_API double wl_context_build_seconds(const wl_context *c);

/* "row" (one work-item per row) or "group" (one work-group per row). */
WL_API const char *wl_context_scan_variant(const wl_context *c);

/* "atomic64" or "atomic32": the model's scatter on this context (wl_device_model_scatter). */
WL_API const char *wl_context_model_scatter(const wl_context *c);

/* ---------------------------------------------------------------- loss */

typedef enum wl_weighting { WL_WEIGHT_LOG = 0, WL_WEIGHT_HARMONIC = 1 } wl_weighting;
typedef enum wl_reduction { WL_REDUCE_SUM = 0, WL_REDUCE_MEAN = 1, WL_REDUCE_NONE = 2 } wl_reduction;

typedef struct wl_loss_options {
    uint64_t num_labels;    /* items in the whole catalogue, >= 2 */
    float margin;           /* default 1; must be finite */
    wl_weighting weighting; /* default WL_WEIGHT_LOG */
    wl_reduction reduction; /* default WL_REDUCE_SUM */
    int check_finite;       /* default 0; nonzero: WL_ERROR_NONFINITE if any input is NaN or Inf */
} wl_loss_options;

WL_API void wl_loss_options_default(wl_loss_options *o, uint64_t num_labels);

/*
 * Host memory. pos [rows], neg [rows * negatives] row-major. loss has 1
 * element, or `rows` with WL_REDUCE_NONE. Any of grad_pos [rows],
 * grad_neg [rows * negatives] and offender [rows] may be NULL. Blocks until
 * done. An argument error or WL_ERROR_NONFINITE writes no output; an
 * OpenCL failure part-way through may leave outputs partly written.
 * Inputs too large for one device allocation are processed in chunks of rows.
 */
WL_API wl_status wl_loss(wl_context *c, const wl_loss_options *o, size_t rows, size_t negatives, const float *pos,
                         const float *neg, float *loss, float *grad_pos, float *grad_neg, int32_t *offender);

/*
 * Device memory, enqueued on the context's queue; same shapes as wl_loss,
 * float and int32 buffers of the context's cl_context, each at least as large
 * as its shape. Any output but loss may be NULL. The commands wait for the
 * `num_wait` events in `wait`; `done` (may be NULL) gets an event that
 * completes when every output is written (release it with clReleaseEvent).
 * With check_finite the inputs are checked on the device first and the call
 * blocks until that check is done.
 */
WL_API wl_status wl_loss_cl(wl_context *c, const wl_loss_options *o, size_t rows, size_t negatives, cl_mem pos,
                            cl_mem neg, cl_mem loss, cl_mem grad_pos, cl_mem grad_neg, cl_mem offender,
                            cl_uint num_wait, const cl_event *wait, cl_event *done);

/* ---------------------------------------------------------------- model */

/*
 * An embedding model trained with WARP on the device: user vectors U
 * [num_users x dim], item vectors V [num_items x dim] and item biases b
 * [num_items], with s(u, x) = dot(U[u], V[x]) + b[x] in float32. The
 * semantics of every call are in README.md ("The embedding model").
 */
typedef struct wl_model wl_model;
typedef enum wl_optimizer { WL_OPTIMIZER_ADAGRAD = 0, WL_OPTIMIZER_SGD = 1 } wl_optimizer;
typedef enum wl_table { WL_TABLE_USERS = 0, WL_TABLE_ITEMS = 1, WL_TABLE_ITEM_BIAS = 2 } wl_table;

typedef struct wl_model_options {
    uint32_t num_users, num_items, dim; /* each >= 1; num_items >= 2 */
    int item_bias;                      /* default 1; 0: b stays 0 */
    uint64_t seed;                      /* initial tables and on-device sampling; default 0 */
    wl_optimizer optimizer;             /* default WL_OPTIMIZER_ADAGRAD */
    float learning_rate;                /* default 0.05; finite, > 0 */
    float l2_users, l2_items;           /* default 0; finite, >= 0 */
    /* The hybrid model (README.md, "Features"): 0 (the default) gives a side
     * its identity, one row per user (item) of U (V and b), today's model;
     * F > 0 makes U (V and b) a table of F feature rows, each user (item)
     * the weighted sum of the rows its feature matrix names. */
    uint32_t num_user_features, num_item_features;
} wl_model_options;

WL_API void wl_model_options_default(wl_model_options *o, uint32_t num_users, uint32_t num_items, uint32_t dim);

/* Create a model on c (which it uses until destroyed): U and V (the feature
 * tables of a side with features) uniform in
 * [-0.5/dim, 0.5/dim) from the seed, b = 0, Adagrad accumulators 1, no known
 * positives. */
WL_API wl_status wl_model_create(wl_context *c, const wl_model_options *o, wl_model **out);
WL_API void wl_model_destroy(wl_model *m); /* NULL is fine */

/* The whole table t, row-major (WL_TABLE_ITEM_BIAS: num_items floats; a
 * side with features: its feature table, num_*_features rows). */
WL_API wl_status wl_model_read(wl_model *m, wl_table t, float *out);
/* Replace table t; its optimizer state is reset (Adagrad accumulators to 1). */
WL_API wl_status wl_model_write(wl_model *m, wl_table t, const float *in);
/* The optimizer state of table t (Adagrad's accumulators, same shape as the
 * table; SGD has none: WL_ERROR_INVALID_ARGUMENT), so a saved model resumes exactly. */
WL_API wl_status wl_model_read_state(wl_model *m, wl_table t, float *out);
WL_API wl_status wl_model_write_state(wl_model *m, wl_table t, const float *in);
/* Rows rows[0..n) of table t, each below the table's row count (num_users
 * or num_items; a side with features: rows of its feature table, below
 * num_*_features, as wl_model_read gives it), repeats allowed: out
 * [n x width] row-major, width dim (WL_TABLE_ITEM_BIAS: 1); state (may be
 * NULL) the same rows of the optimizer state (Adagrad's accumulators; SGD
 * has none: a non-NULL state is WL_ERROR_INVALID_ARGUMENT). n = 0 is fine
 * (nothing read). Blocks. */
WL_API wl_status wl_model_read_rows(wl_model *m, wl_table t, size_t n, const uint32_t *rows, float *out, float *state);
/* Replace those rows (strictly ascending: a repeat or a descent is
 * WL_ERROR_INVALID_ARGUMENT) with in [n x width]; state NULL keeps the rows'
 * optimizer state, else replaces it (SGD: must be NULL). As with
 * wl_model_write, the values are not checked for NaN or Inf, a model without
 * item biases takes only zeros for WL_TABLE_ITEM_BIAS, and the
 * representations of a side with features follow. The other rows and their
 * state are untouched. A refused call changes nothing. in and state are
 * copied before the call returns. */
WL_API wl_status wl_model_write_rows(wl_model *m, wl_table t, size_t n, const uint32_t *rows, const float *in,
                                     const float *state);
/* The rows of a side that training steps (wl_model_step, wl_model_step_cl)
 * changed since the last call for that side, or since the model was created
 * or loaded (every row a step's optimizer update was applied to, even one
 * whose values came out the same): side WL_TABLE_USERS the rows of U, WL_TABLE_ITEMS or
 * WL_TABLE_ITEM_BIAS (one side, the same rows) the rows of V and b (a side
 * with features: rows of its feature table), ascending, into rows (room for
 * the side's row count; may be NULL to take only the number) and their
 * number into *n; the marks of the side are then cleared (with rows NULL
 * too). wl_model_write, wl_model_write_state and wl_model_write_rows do not
 * mark rows. On failure *n is 0 (when n is not NULL), rows is untouched and
 * the marks stay. Blocks. */
WL_API wl_status wl_model_changed_rows(wl_model *m, wl_table side, uint32_t *rows, size_t *n);

/* Each user's known positives as CSR: indptr[num_users + 1] (indptr[0] = 0,
 * non-decreasing), items[indptr[num_users]] sorted ascending without
 * duplicates within a user. Known positives never stop a scan and can be
 * left out of wl_model_recommend and wl_model_rank. Replaces the previous set. */
WL_API wl_status wl_model_set_known(wl_model *m, const uint64_t *indptr, const int32_t *items);

/*
 * A side's feature matrix (side WL_TABLE_USERS: one row per user over the
 * num_user_features features; WL_TABLE_ITEMS: one row per item over the
 * num_item_features) as CSR: indptr[rows + 1] (indptr[0] = 0,
 * non-decreasing), features[indptr[rows]] in [0, num_*_features) and
 * strictly ascending within a row, weights[indptr[rows]] finite (NULL: all
 * 1). A row may be empty (its representation is 0). Until set, row r has
 * feature r with weight 1 where r < num_*_features, none otherwise.
 * Replaces the previous matrix (the tables and state are kept); refused,
 * changing nothing, for a side without features or a bad matrix.
 */
WL_API wl_status wl_model_set_features(wl_model *m, wl_table side, const uint64_t *indptr, const int32_t *features,
                                       const float *weights);
/* The matrix in use (the model's own copy, valid until the next
 * wl_model_set_features or wl_model_destroy); weights never NULL. A side
 * without features: WL_ERROR_INVALID_ARGUMENT. */
WL_API wl_status wl_model_get_features(const wl_model *m, wl_table side, const uint64_t **indptr,
                                       const int32_t **features, const float **weights);
/* The representations the scores use, computed on the device (LightFM's
 * get_user_representations / get_item_representations): WL_TABLE_USERS
 * p_u [num_users x dim], WL_TABLE_ITEMS q_i [num_items x dim],
 * WL_TABLE_ITEM_BIAS b_i [num_items]. A side without features: its table. */
WL_API wl_status wl_model_read_representations(wl_model *m, wl_table t, float *out);

typedef struct wl_batch {
    size_t rows;
    const int32_t *users, *positives; /* [rows] each */
    size_t negatives;                 /* candidates per row (LightFM's max_sampled), >= 1 */
    const int32_t *neg_items;         /* [rows x negatives]; [negatives] if shared; NULL: sampled on the device */
    int shared_negatives;
    uint64_t sample_key;  /* sampled: the candidates depend on (seed, key, row, j) only */
    const float *weights; /* [rows] sample weights (LightFM's sample_weight), finite, >= 0; NULL: all 1 */
} wl_batch;

typedef struct wl_step_result {
    double loss;        /* the reduced loss (lo->reduction) */
    uint64_t offenders; /* rows whose scan stopped */
    uint64_t scores;    /* candidate scores computed */
} wl_step_result;

/* One WARP step on a batch: scan, gradients, optimizer update. lo->num_labels
 * is usually num_items; WL_REDUCE_NONE is refused. r may be NULL: then the
 * call does not wait for the device (the id arrays are copied first).
 * Shared candidates are scored by one CLBlast SGEMM per block of rows
 * (README.md, "Scores from SGEMM"). */
WL_API wl_status wl_model_step(wl_model *m, const wl_loss_options *lo, const wl_batch *b, wl_step_result *r);

/* The same with the ids in int32 device buffers of the context, from element
 * `offset` of users and positives (and offset * negatives of neg_items unless
 * shared). The commands wait for `wait`; `done` (may be NULL) gets an event
 * for the end of the update. r as in wl_model_step (not NULL: blocks). */
typedef struct wl_batch_cl {
    size_t rows, offset;
    cl_mem users, positives;
    size_t negatives;
    cl_mem neg_items; /* NULL: sampled on the device */
    int shared_negatives;
    uint64_t sample_key;
    cl_mem weights; /* float, from element offset; NULL: all 1 */
} wl_batch_cl;
WL_API wl_status wl_model_step_cl(wl_model *m, const wl_loss_options *lo, const wl_batch_cl *b, wl_step_result *r,
                                  cl_uint num_wait, const cl_event *wait, cl_event *done);

/* Each of the n users' k highest-scoring items, best first, ties to the
 * lower item index, without the user's known positives if exclude_known:
 * items and scores [n x k] (scores may be NULL). A user with fewer than k
 * candidates gets -1 and -Inf in the rest of its row. */
WL_API wl_status wl_model_recommend(wl_model *m, size_t n, const int32_t *users, size_t k, int exclude_known,
                                    int32_t *items, float *scores);

/* wl_model_recommend for n users given as feature rows (users who were not
 * in the training data: cold start), CSR over the user features as
 * wl_model_set_features takes it (a side without features: over the rows of
 * U), each row's items to leave out as CSR (exclude_ptr[n + 1],
 * exclude_items strictly ascending per row; both NULL: none). */
WL_API wl_status wl_model_recommend_features(wl_model *m, size_t n, const uint64_t *indptr, const int32_t *features,
                                             const float *weights, const uint64_t *exclude_ptr,
                                             const int32_t *exclude_items, size_t k, int32_t *items, float *scores);

/* For each pair (users[j], items[j]): the number of items x other than
 * items[j] (and not a known positive of the user if exclude_known) with
 * s(u, x) > s(u, items[j]). Both calls block and score the catalogue with
 * one CLBlast SGEMM per block of users (README.md, "Scores from SGEMM"). */
WL_API wl_status wl_model_rank(wl_model *m, size_t n, const int32_t *users, const int32_t *items, int exclude_known,
                               uint32_t *ranks);

/* The mean of each metric over the evaluated users (wl_model_evaluate). */
typedef struct wl_metrics {
    uint32_t k;
    uint64_t users; /* users with at least one held-out item: the means are over them */
    double precision_at_k, recall_at_k, auc, mrr;
} wl_metrics;

/* One user's metrics (wl_model_evaluate); all 0 for a user without held-out items. */
typedef struct wl_user_metrics {
    uint32_t held_out; /* the user's held-out items */
    uint32_t hits;     /* of them, ranked below k */
    uint32_t best;     /* the smallest rank of a held-out item */
    double precision_at_k, recall_at_k, auc, mrr;
} wl_user_metrics;

/*
 * LightFM's precision@k, recall@k, AUC and MRR of held-out pairs, as CSR
 * over all num_users users: indptr[num_users + 1] (indptr[0] = 0,
 * non-decreasing), items[indptr[num_users]] strictly ascending within a
 * user. The rank of a held-out item t of user u is the number of items
 * x != t (and, if exclude_known, not a known positive of u) with s(u, x) >
 * s(u, t): wl_model_rank's. For u's n held-out items with ranks r_j, and N
 * the items that are neither held out for u nor (if exclude_known) known:
 *   precision@k = |{j : r_j < k}| / k     recall@k = |{j : r_j < k}| / n
 *   MRR = 1 / (1 + min_j r_j)
 *   AUC = (1/n) sum_i (1 - max(0, r_(i) - i) / N), r_(0) <= r_(1) <= ...
 *         (0.5 when N = 0)
 * out gets the means over the users with a held-out item; per_user (may be
 * NULL) [num_users] each user's values. The catalogue is scored with one
 * CLBlast SGEMM per block of users and ranked on the device; only per-user
 * counts come back. Blocks. A failure leaves out unchanged (per_user zeroed).
 * README.md, "Evaluation", has the details.
 */
WL_API wl_status wl_model_evaluate(wl_model *m, const uint64_t *indptr, const int32_t *items, uint32_t k,
                                   int exclude_known, wl_metrics *out, wl_user_metrics *per_user);
/* The same with the catalogue restricted to the items x with among[x] != 0
 * (among [num_items]; NULL: every item): ranks and N count only those, and
 * every held-out item must be one of them (cold-start items ranked among the
 * cold items, say). */
WL_API wl_status wl_model_evaluate_among(wl_model *m, const uint8_t *among, const uint64_t *indptr,
                                         const int32_t *items, uint32_t k, int exclude_known, wl_metrics *out,
                                         wl_user_metrics *per_user);

/* ---------------------------------------------------------------- model files */

/*
 * A model file (format in README.md, "Model files") holds the options, the
 * tables, the optimizer state (Adagrad's accumulators), the known positives, the feature matrices
 * and app_size bytes the application attaches (app may be NULL when
 * app_size is 0), so that a loaded model resumes training exactly.
 *
 * wl_model_save reads the model back from the device and writes a temporary
 * file in path's folder, then renames it over path: a failure (the detail
 * names the file: WL_ERROR_FILE) leaves no partial file, and a file already
 * at path untouched. A model with NaN or Inf in a table is not saved
 * (WL_ERROR_NONFINITE). The library writes no other file.
 */
WL_API wl_status wl_model_save(wl_model *m, const char *path, const void *app, size_t app_size);

/*
 * Create a model on c from a model file (version 1, written by warploss-train
 * before the library had model files, or 2). WL_ERROR_FILE, the detail naming
 * the file and what was wrong, when it cannot be read or is not a valid model
 * file (truncated, damaged, another format or version); a model that does not
 * fit the device fails as wl_model_create does. *out is NULL on failure.
 * app and app_size may both be NULL (the application bytes are dropped); else
 * *app gets a copy of them, freed with wl_free (NULL when there are none,
 * *app_size 0).
 */
WL_API wl_status wl_model_load(wl_context *c, const char *path, wl_model **out, void **app, size_t *app_size);

/* The same in memory: the file's bytes in *data (malloc'd by the library,
 * freed with wl_free) and *size; on failure *data is NULL. */
WL_API wl_status wl_model_save_memory(wl_model *m, const void *app, size_t app_size, void **data, size_t *size);
WL_API wl_status wl_model_load_memory(wl_context *c, const void *data, size_t size, wl_model **out, void **app,
                                      size_t *app_size);

/* Free what the library allocated for the caller (wl_model_load's application
 * bytes, wl_model_save_memory's data). NULL is fine. */
WL_API void wl_free(void *p);

/* The options m was created with (item_bias 0 or 1): a loaded model's sizes and options. */
WL_API wl_status wl_model_get_options(const wl_model *m, wl_model_options *out);

#ifdef __cplusplus
}
#endif

#endif /* WARPLOSS_H */
