/* Device choice: the one resolver behind wl_context_create, WARPLOSS_DEVICE
 * and the warploss-devices tool. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef wl_device_desc candidate;

static int type_rank(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU) return 3;
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return 2;
    if (t & CL_DEVICE_TYPE_CPU) return 1;
    return 0;
}

static const char *type_name(cl_device_type t)
{
    switch (type_rank(t)) {
    case 3: return "GPU";
    case 2: return "accelerator";
    case 1: return "CPU";
    }
    return "device";
}

static int contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; ++hay) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            ++i;
        if (i == n)
            return 1;
    }
    return n == 0;
}

static int equals_nocase(const char *a, const char *b)
{
    for (; *a && *b; ++a, ++b)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

/* "P:D" with decimal indices and nothing else. */
static int parse_index(const char *s, unsigned long *p, unsigned long *d)
{
    char *end;
    if (!isdigit((unsigned char)s[0]))
        return 0;
    *p = strtoul(s, &end, 10);
    if (*end != ':' || !isdigit((unsigned char)end[1]))
        return 0;
    *d = strtoul(end + 1, &end, 10);
    return *end == '\0';
}

/* Every device of every platform; NULL with *count 0 when there is none. */
static candidate *list_devices(size_t *count, cl_int *err)
{
    *count = 0;
    cl_uint np = 0;
    *err = clGetPlatformIDs(0, NULL, &np);
    if (*err != CL_SUCCESS || np == 0)
        return NULL;
    cl_platform_id *platforms = calloc(np, sizeof *platforms);
    if (!platforms) {
        *err = CL_OUT_OF_HOST_MEMORY;
        return NULL;
    }
    candidate *list = NULL;
    size_t n = 0;
    *err = clGetPlatformIDs(np, platforms, NULL);
    for (cl_uint p = 0; *err == CL_SUCCESS && p < np; ++p) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0)
            continue;
        cl_device_id *devices = calloc(nd, sizeof *devices);
        candidate *grown = devices ? realloc(list, (n + nd) * sizeof *list) : NULL;
        if (!grown) {
            free(devices);
            *err = CL_OUT_OF_HOST_MEMORY;
            break;
        }
        list = grown;
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, nd, devices, NULL) == CL_SUCCESS) {
            for (cl_uint d = 0; d < nd; ++d) {
                candidate *c = &list[n++];
                memset(c, 0, sizeof *c);
                c->platform = platforms[p];
                c->device = devices[d];
                c->platform_index = p;
                c->device_index = d;
                clGetDeviceInfo(devices[d], CL_DEVICE_TYPE, sizeof c->type, &c->type, NULL);
                clGetDeviceInfo(devices[d], CL_DEVICE_MAX_COMPUTE_UNITS, sizeof c->compute_units,
                                &c->compute_units, NULL);
                clGetPlatformInfo(platforms[p], CL_PLATFORM_NAME, sizeof c->platform_name - 1,
                                  c->platform_name, NULL);
                clGetDeviceInfo(devices[d], CL_DEVICE_NAME, sizeof c->device_name - 1, c->device_name, NULL);
            }
        }
        free(devices);
    }
    free(platforms);
    if (*err != CL_SUCCESS) {
        free(list);
        return NULL;
    }
    *count = n;
    return list;
}

static int better(const candidate *a, const candidate *b)
{
    if (type_rank(a->type) != type_rank(b->type))
        return type_rank(a->type) > type_rank(b->type);
    return a->compute_units > b->compute_units;
}

wl_status wl_device_match(const char *spec, int from_env, const wl_device_desc *list, size_t count,
                          wl_device_choice *out, char *err, size_t err_size)
{
    const char *origin = from_env ? "WARPLOSS_DEVICE" : "device spec";
    unsigned long want_p = 0, want_d = 0;
    int by_index = spec && parse_index(spec, &want_p, &want_d);
    cl_device_type want_type = 0;
    if (spec && equals_nocase(spec, "gpu")) want_type = CL_DEVICE_TYPE_GPU;
    if (spec && equals_nocase(spec, "cpu")) want_type = CL_DEVICE_TYPE_CPU;
    if (spec && equals_nocase(spec, "accelerator")) want_type = CL_DEVICE_TYPE_ACCELERATOR;

    const candidate *best = NULL;
    size_t matches = 0;
    for (size_t i = 0; i < count; ++i) {
        const candidate *c = &list[i];
        int ok;
        if (!spec) ok = 1;
        else if (by_index) ok = c->platform_index == want_p && c->device_index == want_d;
        else if (want_type) ok = (c->type & want_type) != 0;
        else ok = contains_nocase(c->platform_name, spec) || contains_nocase(c->device_name, spec);
        if (!ok)
            continue;
        ++matches;
        if (!best || better(c, best))
            best = c;
    }

    if (!best) {
        int len = snprintf(err, err_size, "no OpenCL device matches %s \"%s\"; the devices are:", origin,
                           spec ? spec : "");
        for (size_t i = 0; i < count && len >= 0 && (size_t)len < err_size; ++i)
            len += snprintf(err + len, err_size - (size_t)len, " %u:%u %s (%s, %s);", list[i].platform_index,
                            list[i].device_index, list[i].device_name, list[i].platform_name,
                            type_name(list[i].type));
        return WL_ERROR_NO_DEVICE;
    }

    memset(out, 0, sizeof *out);
    out->platform = best->platform;
    out->device = best->device;
    out->platform_index = best->platform_index;
    out->device_index = best->device_index;
    const char *kind = type_name(best->type);
    char why[128];
    if (by_index)
        snprintf(why, sizeof why, "platform %lu, device %lu", want_p, want_d);
    else if (matches == 1)
        snprintf(why, sizeof why, "the only %s%s", spec ? "match" : "device", spec ? "" : " found");
    else
        snprintf(why, sizeof why, "%s with the most compute units (%u) of %zu %s", kind,
                 (unsigned)best->compute_units, matches, spec ? "matches" : "devices");
    if (spec && from_env)
        snprintf(out->reason, sizeof out->reason, "%s=%s: %s", origin, spec, why);
    else if (spec)
        snprintf(out->reason, sizeof out->reason, "device \"%s\": %s", spec, why);
    else
        snprintf(out->reason, sizeof out->reason, "%s", why);
    return WL_SUCCESS;
}

wl_status wl_device_resolve(const char *spec, wl_device_choice *out, char *err, size_t err_size)
{
    int from_env = 0;
    if (!spec || !*spec) {
        spec = getenv("WARPLOSS_DEVICE");
        from_env = 1;
        if (spec && !*spec)
            spec = NULL;
    }
    size_t count;
    cl_int cl_err;
    candidate *list = list_devices(&count, &cl_err);
    if (!list) {
        if (cl_err == CL_OUT_OF_HOST_MEMORY) {
            snprintf(err, err_size, "out of host memory while listing OpenCL devices");
            return WL_ERROR_OUT_OF_MEMORY;
        }
        snprintf(err, err_size,
                 "no OpenCL platform or device found (%s); install a vendor driver or PoCL "
                 "(Debian: apt-get install pocl-opencl-icd)",
                 cl_err == CL_SUCCESS ? "no devices" : wl_cl_error_name(cl_err));
        return WL_ERROR_NO_DEVICE;
    }
    const wl_status st = wl_device_match(spec, from_env, list, count, out, err, err_size);
    free(list);
    return st;
}

wl_status wl_select_device(const char *spec, wl_device_choice *out)
{
    if (!out)
        return wl_fail(NULL, WL_ERROR_INVALID_ARGUMENT, "wl_select_device: out is NULL");
    return wl_device_resolve(spec, out, wl_thread_error(), WL_ERROR_SIZE);
}

/* Launch shape per device type (../shared/PLATFORMS.md): on CPUs one
 * work-item walks one row; elsewhere a work-group shares a row. The
 * environment variable WARPLOSS_SCAN=row|group overrides it (tests use it to
 * check both shapes on one device). */
void wl_device_launch_shape(cl_device_type type, int *use_group_scan, int *vector_width)
{
    const char *force = getenv("WARPLOSS_SCAN");
    *use_group_scan = !(type & CL_DEVICE_TYPE_CPU);
    if (force && strcmp(force, "row") == 0)
        *use_group_scan = 0;
    if (force && strcmp(force, "group") == 0)
        *use_group_scan = 1;
    *vector_width = (type & CL_DEVICE_TYPE_CPU) ? 8 : 4;
}

wl_status wl_device_launch_plan(cl_device_id device, const char **scan_variant, int *vector_width)
{
    if (!device)
        return wl_fail(NULL, WL_ERROR_INVALID_ARGUMENT, "wl_device_launch_plan: device is NULL");
    cl_device_type type = 0;
    cl_int err = clGetDeviceInfo(device, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    if (err != CL_SUCCESS)
        return wl_fail_cl(NULL, err, "clGetDeviceInfo(CL_DEVICE_TYPE)");
    int group, width;
    wl_device_launch_shape(type, &group, &width);
    if (scan_variant)
        *scan_variant = group ? "group" : "row";
    if (vector_width)
        *vector_width = width;
    return WL_SUCCESS;
}
