/*
 * Kernel sources and programs: the table of programs (one per feature) and
 * kernels, where the .cl files come from (explicit folder,
 * $WARPLOSS_KERNEL_DIR, the installed folder of this version, else the copy
 * embedded at build time), the prelude of #defines from the launch plan, and
 * each program loaded from the binary cache or built with -cl-std=CL1.2 and
 * stored there.
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

#define WL_PROGRAM_ROW(id, name, ...) [WL_PROGRAM_##id] = {name, (const char *const[]){__VA_ARGS__, NULL}},
#define WL_KERNEL_ROW(id, program, name) [WL_KERNEL_##id] = {name, WL_PROGRAM_##program},
const wl_program_desc wl_programs[WL_PROGRAM_COUNT] = {WL_PROGRAM_TABLE(WL_PROGRAM_ROW)};
const wl_kernel_desc wl_kernels[WL_KERNEL_COUNT] = {WL_KERNEL_TABLE(WL_KERNEL_ROW)};
#undef WL_PROGRAM_ROW
#undef WL_KERNEL_ROW
#define MAX_SOURCE_FILE (1u << 20)
#define MAX_CACHE_FILE (256u << 20)

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const wl_kernel_file *wl_kernel_file_find(const char *name)
{
    for (size_t i = 0; i < wl_kernel_file_count; ++i)
        if (strcmp(wl_kernel_files[i].name, name) == 0)
            return &wl_kernel_files[i];
    return NULL;
}

/* Concatenate the prelude and the kernel files of one program from dir (NULL:
 * the embedded copy). Not static: tests/fuzz/fuzz_kernel_sources.c feeds it folders. */
int wl_program_load_sources(wl_context *c, wl_program_id id, const char *dir, const char *prelude, char **out)
{
    const char *const *files = wl_programs[id].files;
    size_t count = 0;
    while (files[count])
        ++count;
    size_t total = strlen(prelude) + 1;
    char **texts = calloc(count, sizeof *texts);
    size_t *sizes = calloc(count, sizeof *sizes);
    wl_status st = texts && sizes ? WL_SUCCESS
                                  : wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "out of host memory for the kernel sources");
    for (size_t i = 0; i < count && st == WL_SUCCESS; ++i) {
        if (dir) {
            char path[4200];
            if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, files[i]) >= sizeof path) {
                st = wl_fail(c, WL_ERROR_KERNEL_SOURCE, "kernel folder path too long (%zu bytes)", strlen(dir));
                break;
            }
            errno = 0;
            texts[i] = (char *)wl_read_file(path, MAX_SOURCE_FILE, &sizes[i]);
            if (!texts[i]) {
                st = wl_fail(c, WL_ERROR_KERNEL_SOURCE, "cannot read kernel source %s (the %s program needs it): %s",
                             path, wl_programs[id].name, errno ? strerror(errno) : "too large or unreadable");
                break;
            }
            /* the program is one C string: a NUL would silently cut it short */
            if (memchr(texts[i], '\0', sizes[i])) {
                st = wl_fail(c, WL_ERROR_KERNEL_SOURCE, "kernel source %s contains a NUL byte", path);
                break;
            }
        } else {
            const wl_kernel_file *f = wl_kernel_file_find(files[i]);
            if (!f) {
                st = wl_fail(c, WL_ERROR_KERNEL_SOURCE, "kernel source %s is not embedded in the library", files[i]);
                break;
            }
            texts[i] = NULL;
            sizes[i] = f->size;
        }
        total += sizes[i] + strlen(files[i]) + 16; /* #line 1 "name"\n and a \n */
    }
    char *src = st == WL_SUCCESS ? malloc(total) : NULL;
    if (st == WL_SUCCESS && !src)
        st = wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "out of host memory for the kernel sources");
    if (src) {
        size_t len = (size_t)snprintf(src, total, "%s", prelude);
        for (size_t i = 0; i < count; ++i) {
            /* a #line per file so build errors name the file and its line */
            len += (size_t)snprintf(src + len, total - len, "#line 1 \"%s\"\n", files[i]);
            memcpy(src + len, dir ? texts[i] : wl_kernel_file_find(files[i])->text, sizes[i]);
            len += sizes[i];
            src[len++] = '\n';
        }
        src[len] = '\0';
    }
    for (size_t i = 0; texts && i < count; ++i)
        free(texts[i]);
    free(texts);
    free(sizes);
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

/* The #defines every program is compiled with, from the launch plan. */
static void build_prelude(const wl_context *c, char *out, size_t size)
{
    const wl_plan *p = &c->plan;
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
             "#define WL_ATOMIC64 %d\n"
             "%s\n",
             p->vector_width, p->vector_width, p->vector_width, p->vector_width, p->vector_width, p->row_unroll,
             p->prefetch_rows, p->scatter64,
             p->prefetch_rows ? "#define WL_PREFETCH_ROW(p, ok) do { if (ok) __builtin_prefetch(p); } while (0)"
                              : "#define WL_PREFETCH_ROW(p, ok) ((void)0)");
}

static void cache_key(const wl_context *c, wl_program_id id, const char *source, char *key, size_t size)
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
             "warploss %s\nprogram: %s\nplatform: %s\ndevice: %s\nvendor: %s\ndriver: %s\nversion: %s\n"
             "options: %s\nsource: %016llx %zu\n",
             wl_version(), wl_programs[id].name, platform, c->device_name, vendor, driver, version, BUILD_OPTIONS,
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

/* The kernels of program id, each with the largest work-group it can run with. */
static wl_status create_kernels(wl_context *c, wl_program_id id)
{
    for (int k = 0; k < WL_KERNEL_COUNT; ++k) {
        if (wl_kernels[k].program != id)
            continue;
        cl_int err;
        c->kernel[k] = clCreateKernel(c->program[id], wl_kernels[k].name, &err);
        if (err != CL_SUCCESS) {
            c->kernel[k] = NULL;
            /* out of memory (host or device) as such; anything else: the program lacks the kernel */
            return wl_fail(c, wl_cl_status(err) == WL_ERROR_OUT_OF_MEMORY ? WL_ERROR_OUT_OF_MEMORY : WL_ERROR_BUILD,
                           "clCreateKernel(%s) failed: %s (%d)", wl_kernels[k].name, wl_cl_error_name(err), (int)err);
        }
        size_t group = 0;
        err = clGetKernelWorkGroupInfo(c->kernel[k], c->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof group, &group, NULL);
        if (err != CL_SUCCESS)
            return wl_fail_cl(c, err, "clGetKernelWorkGroupInfo");
        c->kernel_group[k] = group ? group : 1;
        cl_ulong local_mem = 0;
        err = clGetKernelWorkGroupInfo(c->kernel[k], c->device, CL_KERNEL_LOCAL_MEM_SIZE, sizeof local_mem, &local_mem,
                                       NULL);
        if (err != CL_SUCCESS)
            return wl_fail_cl(c, err, "clGetKernelWorkGroupInfo");
        c->kernel_local_mem[k] = (size_t)local_mem;
    }
    return WL_SUCCESS;
}

/* Release program id and its kernels. */
static void release_program(wl_context *c, wl_program_id id)
{
    for (int k = 0; k < WL_KERNEL_COUNT; ++k) {
        if (wl_kernels[k].program == id && c->kernel[k]) {
            clReleaseKernel(c->kernel[k]);
            c->kernel[k] = NULL;
        }
    }
    if (c->program[id])
        clReleaseProgram(c->program[id]);
    c->program[id] = NULL;
}

void wl_program_release_all(wl_context *c)
{
    for (int id = 0; id < WL_PROGRAM_COUNT; ++id)
        release_program(c, (wl_program_id)id);
}

int wl_program_require(wl_context *c, wl_program_id id)
{
    if (c->program[id])
        return WL_SUCCESS;
    char prelude[1024];
    build_prelude(c, prelude, sizeof prelude);
    char *source = NULL;
    wl_status st = (wl_status)wl_program_load_sources(c, id, c->kernels_embedded ? NULL : c->kernel_origin, prelude,
                                                      &source);
    if (st != WL_SUCCESS)
        return st;

    char key[4096], path[4200] = "";
    cache_key(c, id, source, key, sizeof key);
    if (c->cache_folder[0])
        snprintf(path, sizeof path, "%s/%016llx.bin", c->cache_folder,
                 (unsigned long long)wl_hash64(key, strlen(key), WL_HASH_SEED));

    cl_program p = path[0] ? load_cached(c, path, key) : NULL;
    const int from_cache = p != NULL;
    if (p) {
        wl_log(c, "warploss: %s program loaded from the binary cache %s", wl_programs[id].name, path);
    } else {
        st = build_from_source(c, source, &p);
        if (st == WL_SUCCESS && path[0])
            store_cached(c, p, path, key);
    }
    free(source);
    if (st != WL_SUCCESS)
        return st;
    c->program[id] = p;
    if ((st = create_kernels(c, id)) != WL_SUCCESS) {
        release_program(c, id);
        return st;
    }
    if (id == WL_PROGRAM_LOSS)
        c->from_cache = from_cache;
    return WL_SUCCESS;
}

int wl_program_create(wl_context *c, const char *kernel_dir, const char *cache_option)
{
    const double start = wl_seconds();
    const char *dir = kernel_folder(c, kernel_dir);
    c->kernels_embedded = dir == NULL;
    snprintf(c->kernel_origin, sizeof c->kernel_origin, "%s", dir ? dir : "embedded");
    wl_log(c, "warploss: kernel sources from %s", c->kernel_origin);
    cache_folder(cache_option, c->cache_folder, sizeof c->cache_folder);
    const wl_status st = (wl_status)wl_program_require(c, WL_PROGRAM_LOSS);
    c->build_seconds = wl_seconds() - start;
    return st;
}
