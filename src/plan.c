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

wl_status wl_plan_for_device(cl_device_id device, cl_device_type as_type, wl_plan *out)
{
    if (!device || !out)
        return wl_fail(NULL, WL_ERROR_INVALID_ARGUMENT, "wl_plan_for_device: device or out is NULL");
    cl_device_type type = as_type;
    size_t max_group = 0;
    cl_uint units = 0;
    cl_int err = type ? CL_SUCCESS : clGetDeviceInfo(device, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_group, &max_group, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof units, &units, NULL);
    if (err != CL_SUCCESS)
        return wl_fail_cl(NULL, err, "clGetDeviceInfo");

    memset(out, 0, sizeof *out);
    const int cpu = (type & CL_DEVICE_TYPE_CPU) != 0;
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
    return NULL;
}

/* The plan for a new context: the device's own, then WARPLOSS_SCAN=row|group
 * for users who want the other scan variant. */
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
