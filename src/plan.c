/*
 * The launch plan of a device (plan.h): scan variant, vector width,
 * work-group sizes, rows per work-item, unroll and prefetch, all chosen here
 * from the device's type and limits (see tools/warploss-bench for how they
 * were measured).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* PoCL (clang underneath) takes clang builtins such as __builtin_prefetch. */
static int device_is_pocl(cl_device_id d)
{
    char version[256] = "";
    if (clGetDeviceInfo(d, CL_DEVICE_VERSION, sizeof version - 1, version, NULL) != CL_SUCCESS)
        version[0] = '\0';
    version[sizeof version - 1] = '\0';
    return strstr(version, "pocl") != NULL || strstr(version, "PoCL") != NULL;
}

static int device_is_llvmpipe(cl_device_id d)
{
    char name[256] = "";
    if (clGetDeviceInfo(d, CL_DEVICE_NAME, sizeof name - 1, name, NULL) != CL_SUCCESS)
        name[0] = '\0';
    name[sizeof name - 1] = '\0';
    return strstr(name, "llvmpipe") != NULL;
}

/* Whether `word` is a whole word of the space-separated list. */
static int has_word(const char *list, const char *word)
{
    const size_t n = strlen(word);
    for (const char *p = strstr(list, word); p; p = strstr(p + 1, word))
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

int wl_device_has_int64_atomics(cl_device_id device)
{
    size_t size = 0;
    if (clGetDeviceInfo(device, CL_DEVICE_EXTENSIONS, 0, NULL, &size) != CL_SUCCESS || size == 0)
        return -1;
    char *list = malloc(size + 1);
    if (!list)
        return -1;
    int found = -1;
    if (clGetDeviceInfo(device, CL_DEVICE_EXTENSIONS, size, list, NULL) == CL_SUCCESS) {
        list[size] = '\0';
        found = has_word(list, "cl_khr_int64_base_atomics");
    }
    free(list);
    return found;
}

wl_status wl_plan_for_device(cl_device_id device, cl_device_type as_type, wl_plan *out)
{
    if (!device || !out)
        return wl_fail(NULL, WL_ERROR_INVALID_ARGUMENT, "wl_plan_for_device: device or out is NULL");
    cl_device_type type = as_type;
    size_t max_group = 0, item_sizes[3] = {0, 0, 0};
    cl_uint units = 0;
    cl_ulong local_mem = 0;
    cl_int err = type ? CL_SUCCESS : clGetDeviceInfo(device, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_group, &max_group, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof item_sizes, item_sizes, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof units, &units, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local_mem, &local_mem, NULL);
    if (err != CL_SUCCESS)
        return wl_fail_cl(NULL, err, "clGetDeviceInfo");
    /* a 1-D work-group is bounded by both limits */
    if (item_sizes[0] && item_sizes[0] < max_group)
        max_group = item_sizes[0];

    memset(out, 0, sizeof *out);
    /* Mesa's llvmpipe stops a work-item's loops silently after 65,535
     * iterations in all (README.md, "Platforms"): it gets the GPU's shape,
     * where each work-item's loops are short, unless a type is asked for */
    const int cpu = (type & CL_DEVICE_TYPE_CPU) != 0 && !(as_type == 0 && device_is_llvmpipe(device));
    /* A CPU walks a row with one core and a vector loop that stops at the
     * offender; elsewhere a work-group shares a row (README.md, "Launch plan"). */
    out->group_scan = !cpu;
    out->vector_width = cpu ? 8 : 4;
    /* Row scan on a CPU: test 4 x float8 per branch (one branch per two
     * cache lines), and prefetch the start of the row 16 rows ahead, which
     * hides the latency of rows that stop early (the hardware prefetcher does
     * not follow a row stride across pages). */
    out->row_unroll = cpu ? 4 : 1;
    out->prefetch_rows = cpu && device_is_pocl(device) ? 16 : 0;
    /* On CPUs a few blocks of rows per core, each a plain loop, and the few
     * partial sums are added by one work-item. */
    out->row_items = cpu ? (size_t)(units ? units : 1) * 8 : 0;
    out->max_group = max_group < 256 ? (max_group ? max_group : 1) : 256;
    out->reduce_group = 1;
    while (!cpu && out->reduce_group * 2 <= out->max_group)
        out->reduce_group *= 2;
    /* The model's scan: a CPU core walks a row; on a GPU a work-group of 64
     * (two warps, one wavefront) scores 64 candidates of a row at once. */
    out->model_group = cpu ? 0 : (out->max_group < 64 ? out->max_group : 64);
    /* 64-bit atomics where the device has them (one atomic per term), else
     * the 32-bit pair (a second atomic when the high word changes): the same sums */
    out->scatter64 = wl_device_has_int64_atomics(device) == 1;
    out->max_groups = WL_MAX_GROUPS_PER_LAUNCH;
    out->local_mem = (size_t)local_mem;
    return WL_SUCCESS;
}

const char *wl_plan_check(const wl_plan *p)
{
    const int w = p->vector_width;
    if (w != 1 && w != 2 && w != 4 && w != 8 && w != 16)
        return "vector_width (1, 2, 4, 8 or 16)";
    if (p->row_unroll < 1 || p->row_unroll > 16)
        return "row_unroll (1 to 16)";
    if (p->prefetch_rows < 0)
        return "prefetch_rows (at least 0)";
    if (p->max_group < 1)
        return "max_group (at least 1)";
    if (p->reduce_group < 1 || (p->reduce_group & (p->reduce_group - 1)) || p->reduce_group > p->max_group)
        return "reduce_group (a power of two, at most max_group)";
    if (p->model_group > p->max_group)
        return "model_group (0, or at most max_group)";
    if (p->scatter64 != 0 && p->scatter64 != 1)
        return "scatter64 (0 or 1)";
    if (p->max_groups < 1 || p->max_groups > WL_MAX_GROUPS_PER_LAUNCH)
        return "max_groups (1 to 65535)";
    /* the scans' own local variables, and wl_reduce_sum's float per work-item */
    if (p->local_mem < 64 + p->reduce_group * sizeof(float))
        return "local_mem (at least 64 bytes and a float per reduce_group work-item)";
    return NULL;
}

/* The plan for a new context: the device's own, then WARPLOSS_SCAN=row|group
 * for users who want the other scan variant, and WARPLOSS_SCATTER=atomic32 for
 * the 32-bit scatter on a device that has 64-bit atomics (tests, benchmark). */
wl_status wl_plan_default(cl_device_id device, wl_plan *out)
{
    wl_status st = wl_plan_for_device(device, 0, out);
    if (st != WL_SUCCESS)
        return st;
    const char *force = getenv("WARPLOSS_SCAN");
    if (force && strcmp(force, "row") == 0)
        out->group_scan = 0, out->model_group = 0;
    if (force && strcmp(force, "group") == 0)
        out->group_scan = 1, out->model_group = out->max_group < 64 ? out->max_group : 64;
    const char *scatter = getenv("WARPLOSS_SCATTER");
    if (scatter && strcmp(scatter, "atomic32") == 0)
        out->scatter64 = 0;
    return WL_SUCCESS;
}

wl_status wl_device_launch_plan(cl_device_id device, const char **scan_variant, int *vector_width)
{
    if (!device)
        return wl_fail(NULL, WL_ERROR_INVALID_ARGUMENT, "wl_device_launch_plan: device is NULL");
    wl_plan p;
    wl_status st = wl_plan_default(device, &p);
    if (st != WL_SUCCESS)
        return st;
    if (scan_variant)
        *scan_variant = p.group_scan ? "group" : "row";
    if (vector_width)
        *vector_width = p.vector_width;
    return WL_SUCCESS;
}

wl_status wl_device_model_scatter(cl_device_id device, const char **scatter, const char **reason)
{
    if (!device)
        return wl_fail(NULL, WL_ERROR_INVALID_ARGUMENT, "wl_device_model_scatter: device is NULL");
    wl_plan p;
    wl_status st = wl_plan_default(device, &p);
    if (st != WL_SUCCESS)
        return st;
    const char *forced = getenv("WARPLOSS_SCATTER");
    const int has64 = wl_device_has_int64_atomics(device) == 1;
    if (scatter)
        *scatter = p.scatter64 ? "atomic64" : "atomic32";
    if (reason)
        *reason = p.scatter64                                      ? "the device has cl_khr_int64_base_atomics"
                  : has64 && forced && !strcmp(forced, "atomic32") ? "WARPLOSS_SCATTER=atomic32"
                                                                   : "the device lacks cl_khr_int64_base_atomics";
    return WL_SUCCESS;
}
