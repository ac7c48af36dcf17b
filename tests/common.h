/*
 * Helpers shared by the test programs: temporary folders, a context on the
 * on-disk kernels with a private cache, and result comparison.
 */
#ifndef WL_TEST_COMMON_H
#define WL_TEST_COMMON_H

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

#endif
