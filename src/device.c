/* Device choice: the one resolver behind wl_context_create, WARPLOSS_DEVICE
 * and the warploss-devices tool. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef wl_device_info candidate;

static int type_rank(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU)
        return 3;
    if (t & CL_DEVICE_TYPE_ACCELERATOR)
        return 2;
    if (t & CL_DEVICE_TYPE_CPU)
        return 1;
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

static void device_text(cl_device_id d, cl_device_info what, char *out, size_t size)
{
    if (clGetDeviceInfo(d, what, size - 1, out, NULL) != CL_SUCCESS)
        out[0] = '\0';
    out[size - 1] = '\0';
}

static void platform_text(cl_platform_id p, cl_platform_info what, char *out, size_t size)
{
    if (clGetPlatformInfo(p, what, size - 1, out, NULL) != CL_SUCCESS)
        out[0] = '\0';
    out[size - 1] = '\0';
}

static void describe(wl_device_info *d, const wl_platform_info *p, cl_device_id id, unsigned index)
{
    memset(d, 0, sizeof *d);
    d->platform = p->platform;
    d->device = id;
    d->platform_index = p->index;
    d->device_index = index;
    snprintf(d->platform_name, sizeof d->platform_name, "%s", p->name);
    clGetDeviceInfo(id, CL_DEVICE_TYPE, sizeof d->type, &d->type, NULL);
    clGetDeviceInfo(id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof d->compute_units, &d->compute_units, NULL);
    clGetDeviceInfo(id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof d->global_memory, &d->global_memory, NULL);
    clGetDeviceInfo(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof d->max_allocation, &d->max_allocation, NULL);
    device_text(id, CL_DEVICE_NAME, d->device_name, sizeof d->device_name);
}

/* The devices of one platform, appended to list. 0, or -1 out of memory. */
static int add_platform_devices(wl_device_list *list, wl_platform_info *p)
{
    cl_uint nd = 0;
    if (clGetDeviceIDs(p->platform, CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0)
        return 0;
    cl_device_id *ids = calloc(nd, sizeof *ids);
    wl_device_info *grown = ids ? realloc(list->devices, (list->device_count + nd) * sizeof *grown) : NULL;
    if (!grown) {
        free(ids);
        return -1;
    }
    list->devices = grown;
    if (clGetDeviceIDs(p->platform, CL_DEVICE_TYPE_ALL, nd, ids, NULL) == CL_SUCCESS) {
        for (cl_uint d = 0; d < nd; ++d)
            describe(&list->devices[list->device_count++], p, ids[d], d);
        p->device_count = nd;
    }
    free(ids);
    return 0;
}

wl_status wl_list_devices(wl_device_list *out)
{
    if (!out)
        return wl_fail(NULL, WL_ERROR_INVALID_ARGUMENT, "wl_list_devices: out is NULL");
    memset(out, 0, sizeof *out);
    cl_uint np = 0;
    out->platform_error = clGetPlatformIDs(0, NULL, &np);
    if (out->platform_error != CL_SUCCESS || np == 0)
        return WL_SUCCESS;
    cl_platform_id *ids = calloc(np, sizeof *ids);
    out->platforms = calloc(np, sizeof *out->platforms);
    if (!ids || !out->platforms) {
        free(ids);
        wl_device_list_free(out);
        return wl_fail(NULL, WL_ERROR_OUT_OF_MEMORY, "out of host memory while listing OpenCL devices");
    }
    out->platform_error = clGetPlatformIDs(np, ids, NULL);
    if (out->platform_error != CL_SUCCESS) {
        free(ids);
        const cl_int err = out->platform_error;
        wl_device_list_free(out);
        out->platform_error = err;
        return WL_SUCCESS;
    }
    out->platform_count = np;
    for (cl_uint p = 0; p < np; ++p) {
        wl_platform_info *pi = &out->platforms[p];
        pi->platform = ids[p];
        pi->index = p;
        platform_text(ids[p], CL_PLATFORM_NAME, pi->name, sizeof pi->name);
        platform_text(ids[p], CL_PLATFORM_VENDOR, pi->vendor, sizeof pi->vendor);
        platform_text(ids[p], CL_PLATFORM_VERSION, pi->version, sizeof pi->version);
        if (add_platform_devices(out, pi) != 0) {
            free(ids);
            wl_device_list_free(out);
            return wl_fail(NULL, WL_ERROR_OUT_OF_MEMORY, "out of host memory while listing OpenCL devices");
        }
    }
    free(ids);
    return WL_SUCCESS;
}

void wl_device_list_free(wl_device_list *list)
{
    if (!list)
        return;
    free(list->platforms);
    free(list->devices);
    memset(list, 0, sizeof *list);
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
    if (spec && equals_nocase(spec, "gpu"))
        want_type = CL_DEVICE_TYPE_GPU;
    if (spec && equals_nocase(spec, "cpu"))
        want_type = CL_DEVICE_TYPE_CPU;
    if (spec && equals_nocase(spec, "accelerator"))
        want_type = CL_DEVICE_TYPE_ACCELERATOR;

    const candidate *best = NULL;
    size_t matches = 0;
    for (size_t i = 0; i < count; ++i) {
        const candidate *c = &list[i];
        int ok;
        if (!spec)
            ok = 1;
        else if (by_index)
            ok = c->platform_index == want_p && c->device_index == want_d;
        else if (want_type)
            ok = (c->type & want_type) != 0;
        else
            ok = contains_nocase(c->platform_name, spec) || contains_nocase(c->device_name, spec);
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
                            list[i].device_index, list[i].device_name, list[i].platform_name, type_name(list[i].type));
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
        snprintf(why, sizeof why, "%s with the most compute units (%u) of %zu %s", kind, (unsigned)best->compute_units,
                 matches, spec ? "matches" : "devices");
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
    wl_device_list list;
    if (wl_list_devices(&list) != WL_SUCCESS) {
        snprintf(err, err_size, "out of host memory while listing OpenCL devices");
        return WL_ERROR_OUT_OF_MEMORY;
    }
    if (list.device_count == 0) {
        snprintf(err, err_size,
                 "no OpenCL platform or device found (%s); install a vendor driver or PoCL "
                 "(Debian: apt-get install pocl-opencl-icd)",
                 list.platform_error == CL_SUCCESS ? "no devices" : wl_cl_error_name(list.platform_error));
        wl_device_list_free(&list);
        return WL_ERROR_NO_DEVICE;
    }
    const wl_status st = wl_device_match(spec, from_env, list.devices, list.device_count, out, err, err_size);
    wl_device_list_free(&list);
    return st;
}

wl_status wl_select_device(const char *spec, wl_device_choice *out)
{
    if (!out)
        return wl_fail(NULL, WL_ERROR_INVALID_ARGUMENT, "wl_select_device: out is NULL");
    return wl_device_resolve(spec, out, wl_thread_error(), WL_ERROR_SIZE);
}
