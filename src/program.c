/*
 * Kernel sources and the program: find the .cl files (explicit folder,
 * $WARPLOSS_KERNEL_DIR, the installed folder, else the copy embedded at build
 * time), prepend the per-device prelude of #defines, then load the program
 * from the binary cache or build it with -cl-std=CL1.2 and store it there.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "program.h"

#define BUILD_OPTIONS "-cl-std=CL1.2"
#define MAX_SOURCE_FILE (1u << 20)
#define MAX_CACHE_FILE (256u << 20)

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Concatenate the prelude and every kernel file from dir (NULL: the embedded
 * copy). Not static: tests/fuzz/fuzz_kernel_sources.c feeds it folders. */
int wl_program_load_sources(wl_context *c, const char *dir, const char *prelude, char **out)
{
    size_t total = strlen(prelude) + 1;
    char *texts[16] = {0};
    size_t sizes[16] = {0};
    wl_status st = WL_SUCCESS;
    for (size_t i = 0; i < wl_kernel_file_count && i < 16; ++i) {
        if (dir) {
            char path[4200];
            if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, wl_kernel_files[i].name) >= sizeof path) {
                st = wl_fail(c, WL_ERROR_KERNEL_SOURCE, "kernel folder path too long (%zu bytes)", strlen(dir));
                break;
            }
            errno = 0;
            texts[i] = (char *)wl_read_file(path, MAX_SOURCE_FILE, &sizes[i]);
            if (!texts[i]) {
                st = wl_fail(c, WL_ERROR_KERNEL_SOURCE, "cannot read kernel source %s: %s", path,
                             errno ? strerror(errno) : "too large or unreadable");
                break;
            }
            /* the program is one C string: a NUL would silently cut it short */
            if (memchr(texts[i], '\0', sizes[i])) {
                st = wl_fail(c, WL_ERROR_KERNEL_SOURCE, "kernel source %s contains a NUL byte", path);
                break;
            }
        } else {
            sizes[i] = wl_kernel_files[i].size;
        }
        total += sizes[i] + strlen(wl_kernel_files[i].name) + 16; /* #line 1 "name"\n and a \n */
    }
    char *src = st == WL_SUCCESS ? malloc(total) : NULL;
    if (st == WL_SUCCESS && !src)
        st = wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "out of host memory for the kernel sources");
    if (src) {
        size_t len = (size_t)snprintf(src, total, "%s", prelude);
        for (size_t i = 0; i < wl_kernel_file_count && i < 16; ++i) {
            /* a #line per file so build errors name the file and its line */
            len += (size_t)snprintf(src + len, total - len, "#line 1 \"%s\"\n", wl_kernel_files[i].name);
            memcpy(src + len, dir ? texts[i] : wl_kernel_files[i].text, sizes[i]);
            len += sizes[i];
            src[len++] = '\n';
        }
        src[len] = '\0';
    }
    for (size_t i = 0; i < 16; ++i)
        free(texts[i]);
    *out = src;
    return st;
}

/* Which folder to read: the first that exists of option, env, installed. */
static const char *kernel_folder(wl_context *c, const char *option)
{
    const char *env = getenv("WARPLOSS_KERNEL_DIR");
    const char *tries[3] = {option, env, WL_INSTALLED_KERNEL_DIR};
    const char *what[3] = {"kernel_dir", "WARPLOSS_KERNEL_DIR", "installed kernel folder"};
    for (int i = 0; i < 3; ++i) {
        if (!tries[i] || !*tries[i])
            continue;
        if (is_dir(tries[i]))
            return tries[i];
        if (i < 2)
            wl_log(c, "warploss: %s %s is not a folder; trying the next source", what[i], tries[i]);
    }
    return NULL;
}

static void device_string(cl_device_id d, cl_device_info what, char *out, size_t size)
{
    out[0] = '\0';
    if (clGetDeviceInfo(d, what, size - 1, out, NULL) != CL_SUCCESS)
        out[0] = '\0';
    out[size - 1] = '\0';
}

/* PoCL (clang underneath) takes clang builtins in OpenCL C. */
static int device_is_pocl(cl_device_id d)
{
    char version[256];
    device_string(d, CL_DEVICE_VERSION, version, sizeof version);
    return strstr(version, "pocl") != NULL || strstr(version, "PoCL") != NULL;
}

static void build_prelude(const wl_context *c, char *out, size_t size)
{
    /* Row scan tuning (cl/scan.cl), measured with tools/warploss-bench. On a
     * CPU: test WL_ROW_UNROLL vectors per branch (4 x float8: one branch per
     * two cache lines), and prefetch the start of the row WL_PREFETCH_ROWS
     * rows ahead, which hides the memory latency of rows that stop early (the
     * hardware prefetcher does not follow a row stride across pages);
     * __builtin_prefetch is clang's, so only on PoCL (clang underneath). */
    const int cpu = (c->device_type & CL_DEVICE_TYPE_CPU) != 0;
    const int row_unroll = cpu ? 4 : 1;
    const int prefetch_rows = cpu && device_is_pocl(c->device) ? 16 : 0;
    snprintf(out, size,
             "/* warploss prelude: device-specific values */\n"
             "#pragma OPENCL FP_CONTRACT OFF\n"
             "#define WL_VEC %d\n"
             "#define WL_FLOATV float%d\n"
             "#define WL_INTV int%d\n"
             "#define WL_VLOAD vload%d\n"
             "#define WL_VSTORE vstore%d\n"
             "#define WL_ROW_UNROLL %d\n"
             "#define WL_PREFETCH_ROWS %d\n"
             "%s\n",
             c->vector_width, c->vector_width, c->vector_width, c->vector_width, c->vector_width, row_unroll,
             prefetch_rows,
             prefetch_rows ? "#define WL_PREFETCH_ROW(p, ok) do { if (ok) __builtin_prefetch(p); } while (0)"
                           : "#define WL_PREFETCH_ROW(p, ok) ((void)0)");
}

static void cache_key(const wl_context *c, const char *source, char *key, size_t size)
{
    char platform[256] = "", vendor[256] = "", driver[256] = "", version[256] = "";
    cl_platform_id pid = NULL;
    clGetDeviceInfo(c->device, CL_DEVICE_PLATFORM, sizeof pid, &pid, NULL);
    if (!pid || clGetPlatformInfo(pid, CL_PLATFORM_NAME, sizeof platform - 1, platform, NULL) != CL_SUCCESS)
        platform[0] = '\0';
    device_string(c->device, CL_DEVICE_VENDOR, vendor, sizeof vendor);
    device_string(c->device, CL_DRIVER_VERSION, driver, sizeof driver);
    device_string(c->device, CL_DEVICE_VERSION, version, sizeof version);
    snprintf(key, size,
             "warploss %d.%d.%d\nplatform: %s\ndevice: %s\nvendor: %s\ndriver: %s\nversion: %s\n"
             "options: %s\nsource: %016llx %zu\n",
             WL_API_VERSION_MAJOR, WL_API_VERSION_MINOR, WL_API_VERSION_PATCH, platform, c->device_name, vendor,
             driver, version, BUILD_OPTIONS,
             (unsigned long long)wl_hash64(source, strlen(source), WL_HASH_SEED), strlen(source));
}

static void cache_folder(const char *option, char *out, size_t size)
{
    const char *env = getenv("WARPLOSS_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    out[0] = '\0';
    if (option)
        snprintf(out, size, "%s", option);
    else if (env)
        snprintf(out, size, "%s", env);
    else if (xdg && xdg[0] == '/')
        snprintf(out, size, "%s/warploss", xdg);
    else if (home && home[0] == '/')
        snprintf(out, size, "%s/.cache/warploss", home);
}

/* A program from a binary; NULL if it does not load or build. */
static cl_program program_from_binary(wl_context *c, const unsigned char *binary, size_t size)
{
    cl_int err, status;
    cl_program p = clCreateProgramWithBinary(c->context, 1, &c->device, &size, &binary, &status, &err);
    if (err != CL_SUCCESS || status != CL_SUCCESS) {
        if (p)
            clReleaseProgram(p);
        return NULL;
    }
    if (clBuildProgram(p, 1, &c->device, BUILD_OPTIONS, NULL, NULL) != CL_SUCCESS) {
        clReleaseProgram(p);
        return NULL;
    }
    return p;
}

static cl_program load_cached(wl_context *c, const char *path, const char *key)
{
    size_t size = 0;
    unsigned char *data = wl_read_file(path, MAX_CACHE_FILE, &size);
    if (!data)
        return NULL;
    const unsigned char *binary;
    size_t binary_size;
    cl_program p = NULL;
    if (wl_cache_unpack(data, size, key, &binary, &binary_size) == 0)
        p = program_from_binary(c, binary, binary_size);
    free(data);
    if (!p) {
        wl_log(c, "warploss: cache entry %s is invalid; deleting it and rebuilding", path);
        unlink(path);
    }
    return p;
}

static void store_cached(wl_context *c, cl_program p, const char *path, const char *key)
{
    size_t size = 0;
    if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS || size == 0)
        return;
    unsigned char *binary = malloc(size);
    if (!binary)
        return;
    size_t packed_size = 0;
    unsigned char *packed = NULL;
    if (clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof binary, &binary, NULL) == CL_SUCCESS)
        packed = wl_cache_pack(key, binary, size, &packed_size);
    free(binary);
    if (!packed)
        return;
    int err = wl_write_file_atomic(path, packed, packed_size);
    free(packed);
    if (err)
        wl_log(c, "warploss: could not write the binary cache %s: %s", path, strerror(err));
    else
        wl_log(c, "warploss: stored the program in %s", path);
}

static wl_status build_from_source(wl_context *c, const char *source, cl_program *out)
{
    cl_int err;
    const char *text = source;
    cl_program p = clCreateProgramWithSource(c->context, 1, &text, NULL, &err);
    if (err != CL_SUCCESS)
        return wl_fail_cl(c, err, "clCreateProgramWithSource");
    err = clBuildProgram(p, 1, &c->device, BUILD_OPTIONS, NULL, NULL);
    if (err != CL_SUCCESS) {
        size_t log_size = 0;
        char *log = NULL;
        if (clGetProgramBuildInfo(p, c->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_size) == CL_SUCCESS)
            log = malloc(log_size + 1);
        if (log && clGetProgramBuildInfo(p, c->device, CL_PROGRAM_BUILD_LOG, log_size, log, NULL) == CL_SUCCESS)
            log[log_size] = '\0';
        else if (log)
            log[0] = '\0';
        wl_status st = err == CL_BUILD_PROGRAM_FAILURE ? WL_ERROR_BUILD : wl_cl_status(err);
        wl_fail(c, st == WL_ERROR_OPENCL ? WL_ERROR_BUILD : st, "clBuildProgram failed: %s (%d); build log:\n%s",
                wl_cl_error_name(err), (int)err, log ? log : "(not available)");
        free(log);
        clReleaseProgram(p);
        return st == WL_ERROR_OPENCL ? WL_ERROR_BUILD : st;
    }
    *out = p;
    return WL_SUCCESS;
}

static wl_status create_kernels(wl_context *c)
{
    struct {
        cl_kernel *k;
        const char *name;
    } list[] = {{&c->scan_rows, "wl_scan_rows"},
                {&c->scan_groups, "wl_scan_groups"},
                {&c->reduce_sum, "wl_reduce_sum"},
                {&c->find_nonfinite, "wl_find_nonfinite"}};
    for (size_t i = 0; i < sizeof list / sizeof list[0]; ++i) {
        cl_int err;
        *list[i].k = clCreateKernel(c->program, list[i].name, &err);
        if (err != CL_SUCCESS)
            /* out of memory (host or device) as such; anything else: the program lacks the kernel */
            return wl_fail(c, wl_cl_status(err) == WL_ERROR_OUT_OF_MEMORY ? WL_ERROR_OUT_OF_MEMORY : WL_ERROR_BUILD,
                           "clCreateKernel(%s) failed: %s (%d)", list[i].name, wl_cl_error_name(err), (int)err);
    }
    /* the largest work-groups these kernels can run with on this device */
    size_t scan_group = 0, reduce_group = 0;
    cl_int err = clGetKernelWorkGroupInfo(c->scan_groups, c->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof scan_group,
                                          &scan_group, NULL);
    if (err == CL_SUCCESS)
        err = clGetKernelWorkGroupInfo(c->reduce_sum, c->device, CL_KERNEL_WORK_GROUP_SIZE,
                                       sizeof reduce_group, &reduce_group, NULL);
    if (err != CL_SUCCESS)
        return wl_fail_cl(c, err, "clGetKernelWorkGroupInfo");
    if (scan_group < c->max_group)
        c->max_group = scan_group ? scan_group : 1;
    while (c->reduce_group > 1 && c->reduce_group > reduce_group)
        c->reduce_group /= 2;
    return WL_SUCCESS;
}

int wl_program_create(wl_context *c, const char *kernel_dir, const char *cache_option)
{
    const double start = wl_seconds();
    const char *dir = kernel_folder(c, kernel_dir);
    snprintf(c->kernel_origin, sizeof c->kernel_origin, "%s", dir ? dir : "embedded");
    wl_log(c, "warploss: kernel sources from %s", c->kernel_origin);

    char prelude[1024];
    build_prelude(c, prelude, sizeof prelude);
    char *source = NULL;
    wl_status st = (wl_status)wl_program_load_sources(c, dir, prelude, &source);
    if (st != WL_SUCCESS)
        return st;

    char key[4096], folder[4096], path[4200] = "";
    cache_key(c, source, key, sizeof key);
    cache_folder(cache_option, folder, sizeof folder);
    if (folder[0])
        snprintf(path, sizeof path, "%s/%016llx.bin", folder,
                 (unsigned long long)wl_hash64(key, strlen(key), WL_HASH_SEED));

    c->program = path[0] ? load_cached(c, path, key) : NULL;
    c->from_cache = c->program != NULL;
    if (c->program) {
        wl_log(c, "warploss: program loaded from the binary cache %s", path);
    } else {
        st = build_from_source(c, source, &c->program);
        if (st == WL_SUCCESS && path[0])
            store_cached(c, c->program, path, key);
    }
    free(source);
    if (st == WL_SUCCESS)
        st = create_kernels(c);
    c->build_seconds = wl_seconds() - start;
    return st;
}
