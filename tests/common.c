/* Helpers shared by the test programs (see common.h). */
#include "common.h"
#include "plan.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reference.h"

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

void wlt_free_temp_dir(char **dir)
{
    wlt_remove_tree(*dir);
    free(*dir);
    *dir = NULL;
}

char *wlt_join(const char *dir, const char *name)
{
    const size_t len = strlen(dir) + strlen(name) + 2;
    char *p = wlt_alloc(len);
    snprintf(p, len, "%s/%s", dir, name);
    return p;
}

const char *wlt_base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
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

/* A context could not be made: exit 77 (skipped) without a device, else 1.
 * The program ends here, so the temporary cache folder goes first. */
static _Noreturn void exit_without_context(const char *cache_dir, wl_status s, const char *what)
{
    if (cache_dir && cache_dir[0])
        wlt_remove_tree(cache_dir);
    if (s == WL_ERROR_NO_DEVICE) {
        printf("skipped: no OpenCL device: %s\n", wl_context_last_error(NULL));
        exit(WLT_SKIP);
    }
    fprintf(stderr, "test: %s: %s: %s\n", what, wl_status_string(s), wl_context_last_error(NULL));
    exit(1);
}

wl_context *wlt_context_or_skip(const char *cache_dir)
{
    wl_context_options o;
    wlt_context_options(&o, cache_dir);
    wl_context *c = NULL;
    const wl_status s = wl_context_create(&o, &c);
    if (s == WL_SUCCESS && c)
        return c;
    exit_without_context(cache_dir, s, "wl_context_create");
}

const char *const wlt_plan_names[WLT_PLANS] = {"cpu", "group", "gpu", "small-gpu"};

wl_context *wlt_context_with_plan(const char *cache_dir, int plan)
{
    wl_device_choice choice;
    wl_plan p;
    wl_status s = wl_select_device(NULL, &choice);
    if (s == WL_SUCCESS)
        s = wl_plan_for_device(choice.device, plan >= 2 ? CL_DEVICE_TYPE_GPU : CL_DEVICE_TYPE_CPU, &p);
    wl_context *c = NULL;
    if (s == WL_SUCCESS) {
        p.group_scan = plan != 0;
        if (plan == 1) {
            p.model_group = 4; /* the model's work-group scan in chunks of 4 candidates */
            p.scatter64 = 0;
        }
        if (plan == 3) {
            p.max_group = p.max_group < 64 ? p.max_group : 64;
            while (p.reduce_group > p.max_group)
                p.reduce_group /= 2;
            p.model_group = p.model_group < p.max_group ? p.model_group : p.max_group;
            p.local_mem = p.local_mem < 16384 ? p.local_mem : 16384;
            p.scatter64 = 0;
        }
        const char *scatter = getenv("WARPLOSS_SCATTER");
        if (scatter && strcmp(scatter, "atomic32") == 0)
            p.scatter64 = 0;
        wl_context_options o;
        wlt_context_options(&o, cache_dir);
        s = wl_context_create_with_plan(&o, &p, &c);
    }
    if (s == WL_SUCCESS && c)
        return c;
    exit_without_context(cache_dir, s, wlt_plan_names[plan]);
}

void wlt_plan_contexts(const char *tag, wl_context *ctxs[WLT_PLANS], char **cache_dir)
{
    *cache_dir = wlt_temp_dir(tag);
    for (int p = 0; p < WLT_PLANS; ++p)
        ctxs[p] = wlt_context_with_plan(*cache_dir, p);
}

void wlt_plan_contexts_free(wl_context *ctxs[WLT_PLANS], char **cache_dir)
{
    for (int p = 0; p < WLT_PLANS; ++p) {
        wl_context_destroy(ctxs[p]);
        ctxs[p] = NULL;
    }
    wlt_free_temp_dir(cache_dir);
}

wl_context *wlt_temp_context(const char *tag, char **cache_dir)
{
    *cache_dir = wlt_temp_dir(tag);
    return wlt_context_or_skip(*cache_dir);
}

wl_status wlt_create(const char *kernel_dir, const char *cache_dir, wl_context **out)
{
    wl_context_options o;
    wlt_context_options(&o, cache_dir);
    o.kernel_dir = kernel_dir;
    *out = NULL;
    return wl_context_create(&o, out);
}

int wlt_is_model_file(const char *name) { return strncmp(name, "model_", 6) == 0; }

wl_status wlt_create_feature(const char *kernel_dir, const char *cache_dir, const char *name, wl_context **out,
                             const char **msg)
{
    wl_status s = wlt_create(kernel_dir, cache_dir, out);
    *msg = wl_context_last_error(NULL);
    if (s != WL_SUCCESS || !wlt_is_model_file(name))
        return s;
    wl_model_options o;
    wl_model_options_default(&o, 4, 6, 3);
    wl_model *m = NULL;
    s = wl_model_create(*out, &o, &m);
    wl_model_destroy(m);
    *msg = wl_context_last_error(*out);
    return s;
}

int wlt_results_ok(wl_context *c, size_t rows, size_t negatives, uint64_t seed)
{
    float *pos = wlt_alloc(rows * sizeof(float)), *neg = wlt_alloc(rows * negatives * sizeof(float));
    float *loss = wlt_alloc(rows * sizeof(float)), *want_loss = wlt_alloc(rows * sizeof(float));
    float *gp = wlt_alloc(rows * sizeof(float)), *want_gp = wlt_alloc(rows * sizeof(float));
    float *gn = wlt_alloc(rows * negatives * sizeof(float)), *want_gn = wlt_alloc(rows * negatives * sizeof(float));
    int32_t *off = wlt_alloc(rows * sizeof(int32_t)), *want_off = wlt_alloc(rows * sizeof(int32_t));
    ref_make_inputs(seed, REF_DEEP, rows, negatives, 1.0f, pos, neg);
    wl_loss_options o;
    wl_loss_options_default(&o, 100000);
    o.reduction = WL_REDUCE_NONE;
    o.weighting = WL_WEIGHT_HARMONIC;
    int ok = wl_loss(c, &o, rows, negatives, pos, neg, loss, gp, gn, off) == WL_SUCCESS;
    if (ok) {
        ref_loss(&o, rows, negatives, pos, neg, want_loss, want_gp, want_gn, want_off);
        for (size_t b = 0; b < rows && ok; ++b)
            ok = wlt_close(loss[b], want_loss[b], 1e-5, 1e-6);
        ok = ok && wlt_first_value_mismatch(gp, want_gp, rows) == rows &&
             wlt_first_value_mismatch(gn, want_gn, rows * negatives) == rows * negatives &&
             wlt_first_i32_mismatch(off, want_off, rows) == rows;
    }
    free(pos), free(neg), free(loss), free(want_loss), free(gp), free(want_gp);
    free(gn), free(want_gn), free(off), free(want_off);
    return ok;
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

/* ---------------------------------------------------- cmocka tests only */

glob_t wlt_kernel_sources(void)
{
    glob_t g;
    memset(&g, 0, sizeof g);
    assert_int_equal(glob(WL_TEST_KERNEL_DIR "/*.cl", 0, NULL, &g), 0);
    assert_true(g.gl_pathc > 0);
    return g;
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        fail_msg("open %s: %s", from, strerror(errno));
    FILE *out = fopen(to, "wb");
    if (!out)
        fail_msg("open %s: %s", to, strerror(errno));
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            fail_msg("write %s", to);
    if (ferror(in))
        fail_msg("read %s", from);
    fclose(in);
    if (fclose(out) != 0)
        fail_msg("close %s", to);
}

char *wlt_copy_kernels(const char *parent, const char *tag, const char *skip)
{
    char *dir = wlt_join(parent, tag);
    if (mkdir(dir, 0700) != 0)
        fail_msg("mkdir %s: %s", dir, strerror(errno));
    glob_t g = wlt_kernel_sources();
    for (size_t i = 0; i < g.gl_pathc; ++i) {
        const char *name = wlt_base_name(g.gl_pathv[i]);
        if (skip && strcmp(name, skip) == 0)
            continue;
        char *to = wlt_join(dir, name);
        copy_file(g.gl_pathv[i], to);
        free(to);
    }
    globfree(&g);
    return dir;
}

cl_mem wlt_make_buffer(cl_context ctx, size_t bytes, const void *init)
{
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateBuffer(ctx, CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0), bytes ? bytes : 4,
                              (void *)init, &err);
    if (err != CL_SUCCESS)
        fail_msg("clCreateBuffer(%zu): %d", bytes, (int)err);
    return m;
}
