/* Helpers shared by the test programs (see common.h). */
#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WLT_SENTINEL_F 12345.5f
#define WLT_SENTINEL_I 0x5A5A5A5A

void *wlt_alloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "test: out of host memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

char *wlt_temp_dir(const char *tag)
{
    char buf[256];
    snprintf(buf, sizeof buf, "/tmp/warploss-test-%s-XXXXXX", tag);
    if (!mkdtemp(buf)) {
        fprintf(stderr, "test: mkdtemp(%s): %s\n", buf, strerror(errno));
        exit(1);
    }
    char *path = wlt_alloc(strlen(buf) + 1);
    strcpy(path, buf);
    return path;
}

void wlt_remove_tree(const char *path)
{
    if (!path)
        return;
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                size_t len = strlen(path) + strlen(e->d_name) + 2;
                char *child = wlt_alloc(len);
                snprintf(child, len, "%s/%s", path, e->d_name);
                wlt_remove_tree(child);
                free(child);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

size_t wlt_count_files(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0;
    if (S_ISREG(st.st_mode))
        return 1;
    if (!S_ISDIR(st.st_mode))
        return 0;
    size_t count = 0;
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        char *child = wlt_alloc(len);
        snprintf(child, len, "%s/%s", path, e->d_name);
        count += wlt_count_files(child);
        free(child);
    }
    closedir(d);
    return count;
}

void wlt_context_options(wl_context_options *o, const char *cache_dir)
{
    wl_context_options_default(o);
    o->kernel_dir = WL_TEST_KERNEL_DIR;
    o->cache_dir = cache_dir;
}

wl_context *wlt_context_or_skip(const char *cache_dir)
{
    wl_context_options o;
    wlt_context_options(&o, cache_dir);
    wl_context *c = NULL;
    const wl_status s = wl_context_create(&o, &c);
    if (s == WL_SUCCESS && c)
        return c;
    /* the program ends here: the temporary cache folder goes with it */
    if (cache_dir && cache_dir[0])
        wlt_remove_tree(cache_dir);
    if (s == WL_ERROR_NO_DEVICE) {
        printf("skipped: no OpenCL device: %s\n", wl_context_last_error(NULL));
        exit(WLT_SKIP);
    }
    fprintf(stderr, "test: wl_context_create: %s: %s\n", wl_status_string(s), wl_context_last_error(NULL));
    exit(1);
}

void wlt_fill_sentinel(float *x, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        x[i] = WLT_SENTINEL_F;
}

int wlt_is_sentinel(const float *x, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        if (x[i] != WLT_SENTINEL_F)
            return 0;
    return 1;
}

void wlt_fill_sentinel_i32(int32_t *x, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        x[i] = WLT_SENTINEL_I;
}

int wlt_is_sentinel_i32(const int32_t *x, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        if (x[i] != WLT_SENTINEL_I)
            return 0;
    return 1;
}

int wlt_close(float got, float want, double rel, double abs)
{
    if (isnan(got) || isnan(want))
        return isnan(got) && isnan(want);
    if (isinf(got) || isinf(want))
        return got == want;
    return fabs((double)got - (double)want) <= rel * fabs((double)want) + abs;
}

size_t wlt_first_value_mismatch(const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        const int gn = isnan(got[i]), wn = isnan(want[i]);
        if (gn != wn || (!gn && got[i] != want[i]))
            return i;
    }
    return n;
}

size_t wlt_first_i32_mismatch(const int32_t *got, const int32_t *want, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        if (got[i] != want[i])
            return i;
    return n;
}
