/*
 * Helpers shared by the test programs: temporary folders, a context on the
 * on-disk kernels with a private cache, result comparison, and (for cmocka
 * tests) kernel-source copies and OpenCL buffers.
 */
#ifndef WL_TEST_COMMON_H
#define WL_TEST_COMMON_H

#include <glob.h>
#include <stddef.h>
#include <stdint.h>

#include "warploss.h"

#ifndef WL_TEST_KERNEL_DIR
#error "WL_TEST_KERNEL_DIR must name the source folder of the kernels (cl/)"
#endif

/* Exit status for "skipped" under meson test. */
#define WLT_SKIP 77

/* A new empty folder under /tmp (malloc'd path); aborts the test program on failure. */
char *wlt_temp_dir(const char *tag);

/* Remove a folder and everything in it (does not follow links). NULL is fine. */
void wlt_remove_tree(const char *path);

/* Remove the folder *dir (from wlt_temp_dir) and everything in it, free the
 * path and set *dir to NULL. A NULL *dir is fine. */
void wlt_free_temp_dir(char **dir);

/* dir/name (malloc'd). */
char *wlt_join(const char *dir, const char *name);

/* The part of path after its last '/'. */
const char *wlt_base_name(const char *path);

/* Number of regular files under path, recursively (0 if it does not exist). */
size_t wlt_count_files(const char *path);

/* Options for a test context: the on-disk kernels and the given cache folder. */
void wlt_context_options(wl_context_options *o, const char *cache_dir);

/*
 * Create a context on the on-disk kernels with the given cache folder. If no
 * device is found: print why and exit 77 (skipped). Any other failure: print
 * and exit 1. Before either exit, cache_dir (a folder from wlt_temp_dir, or
 * "") is removed.
 */
wl_context *wlt_context_or_skip(const char *cache_dir);

/*
 * The launch plans the suites run (plan.h; chosen through the test-only
 * wl_context_create_with_plan, not the environment):
 *   "cpu"       a CPU's plan: one work-item walks a row (float8, unrolled, prefetch)
 *   "group"     the same with the work-group scans (the model's in chunks of 4
 *               candidates) and the model's 32-bit scatter
 *   "gpu"       a GPU's plan: work-group scan, float4, no unroll, no prefetch
 *   "small-gpu" a small GPU's: the GPU plan with work-groups of at most 64,
 *               16 KiB of local memory and the 32-bit scatter
 * Every plan launches at most WL_MAX_GROUPS_PER_LAUNCH work-groups at once.
 * WARPLOSS_SCATTER=atomic32 gives every plan the 32-bit scatter.
 */
enum { WLT_PLANS = 4 };
extern const char *const wlt_plan_names[WLT_PLANS];

/* wlt_context_or_skip with plan wlt_plan_names[plan] on the default device. */
wl_context *wlt_context_with_plan(const char *cache_dir, int plan);
/* Group setup of a test that runs on every plan: a new temporary cache folder
 * (*cache_dir, from wlt_temp_dir(tag)) and ctxs[p] with plan p on it. Undo
 * with wlt_plan_contexts_free. */
void wlt_plan_contexts(const char *tag, wl_context *ctxs[WLT_PLANS], char **cache_dir);
void wlt_plan_contexts_free(wl_context *ctxs[WLT_PLANS], char **cache_dir);

/* Group setup: a new temporary cache folder (*cache_dir, from
 * wlt_temp_dir(tag)) and a context on it from wlt_context_or_skip. Undo with
 * wl_context_destroy and wlt_free_temp_dir(cache_dir). */
wl_context *wlt_temp_context(const char *tag, char **cache_dir);

/* wl_context_create with the default options but kernel_dir (NULL:
 * $WARPLOSS_KERNEL_DIR, then the embedded sources) and cache_dir; *out is set
 * to NULL first. */
wl_status wlt_create(const char *kernel_dir, const char *cache_dir, wl_context **out);

/*
 * For a spoiled kernel file (a base name): whether a context needs it
 * (the loss program's files) or only the feature built on first use (the
 * model's files, model_*.cl). wlt_create_feature creates a context on
 * kernel_dir and, for a model file, a small model on it, and returns the
 * first failure: *out is the context (NULL if its creation failed; for a
 * model failure the context stays, so the caller can check that the loss
 * still works) and *msg the failure's text.
 */
int wlt_is_model_file(const char *name);
wl_status wlt_create_feature(const char *kernel_dir, const char *cache_dir, const char *name, wl_context **out,
                             const char **msg);

/*
 * A small case on c equals the C reference: rows x negatives scores made from
 * seed (REF_DEEP), num_labels 100000, no reduction, harmonic weighting; the
 * row losses to 1e-5 relative + 1e-6, the gradients and offenders exactly.
 * 1 if so; 0 if not, or if wl_loss fails. Uses no cmocka, so child processes
 * can call it too; cmocka tests assert_true on it.
 */
int wlt_results_ok(wl_context *c, size_t rows, size_t negatives, uint64_t seed);

/* Fill n floats / int32s with a recognisable sentinel, and check them. */
void wlt_fill_sentinel(float *x, size_t n);
int wlt_is_sentinel(const float *x, size_t n);
void wlt_fill_sentinel_i32(int32_t *x, size_t n);
int wlt_is_sentinel_i32(const int32_t *x, size_t n);

/* |got - want| <= rel * |want| + abs, or both NaN, or both the same infinity. */
int wlt_close(float got, float want, double rel, double abs);

/* Index of the first i where got[i] and want[i] differ as values (NaN equal to
 * NaN), or n when all agree. */
size_t wlt_first_value_mismatch(const float *got, const float *want, size_t n);
size_t wlt_first_i32_mismatch(const int32_t *got, const int32_t *want, size_t n);

/* malloc that aborts the program on failure; 0 bytes gives a valid pointer. */
void *wlt_alloc(size_t bytes);

/* ---- Only inside a cmocka test: these fail the running test (fail_msg). */

/* Fail the test unless an OpenCL call returns CL_SUCCESS. */
#define WLT_CHECK_CL(call)                                                                                             \
    do {                                                                                                               \
        const cl_int err_ = (call);                                                                                    \
        if (err_ != CL_SUCCESS)                                                                                        \
            fail_msg("%s failed: %d", #call, (int)err_);                                                               \
    } while (0)

/* Skip the running test because the device lacks an optional OpenCL feature
 * the test needs (README.md, "Platforms", lists each). The line it prints,
 * "device lacks: ...", is what .ci/run counts: a cmocka skip without it fails CI. */
#define WLT_SKIP_LACKING(requirement)                                                                                  \
    do {                                                                                                               \
        printf("device lacks: %s\n", (requirement));                                                                   \
        skip();                                                                                                        \
    } while (0)

/* The kernel sources of the source tree: the .cl files in WL_TEST_KERNEL_DIR
 * (sorted names; globfree it after). Fails the test if there are none. */
glob_t wlt_kernel_sources(void);

/* A new folder parent/tag (malloc'd path) with copies of every kernel source
 * except the one named `skip` (a base name; NULL: none skipped). */
char *wlt_copy_kernels(const char *parent, const char *tag, const char *skip);

/* A CL_MEM_READ_WRITE buffer of `bytes` (4 when 0) on ctx, a copy of init
 * unless init is NULL. */
cl_mem wlt_make_buffer(cl_context ctx, size_t bytes, const void *init);

#endif
