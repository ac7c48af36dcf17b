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

/* Generated at build time from cl/ (tools/embed-kernels.py), in concatenation order. */
extern const wl_kernel_file wl_kernel_files[];
extern const size_t wl_kernel_file_count;

struct wl_context;

/* Load the sources, prepend the prelude, then load the program from the cache
 * or build it, and create the kernels. Fills c->program, the kernels,
 * c->kernel_origin, c->from_cache and c->build_seconds. */
int wl_program_create(struct wl_context *c, const char *kernel_dir, const char *cache_dir);

/* The prelude followed by each kernel file of dir (NULL: the embedded copy),
 * each after a #line; *out is malloc'd, NULL on failure. Returns a wl_status
 * (WL_ERROR_KERNEL_SOURCE for a file that is missing, unreadable, too large,
 * not a regular file or has a NUL byte), the detail on c. */
int wl_program_load_sources(struct wl_context *c, const char *dir, const char *prelude, char **out);

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
