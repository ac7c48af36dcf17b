/*
 * Fault injection (see fault.h): the OpenCL entry points libwarploss uses,
 * each counted and forwarded to the next definition (libOpenCL) found with
 * dlsym(RTLD_NEXT), or failed when armed. Test-only.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

static const char *const kind_names[WLF_KIND_COUNT] = {
    [WLF_PLATFORM_IDS] = "clGetPlatformIDs",
    [WLF_DEVICE_IDS] = "clGetDeviceIDs",
    [WLF_CONTEXT] = "clCreateContext",
    [WLF_QUEUE] = "clCreateCommandQueue",
    [WLF_BUFFER] = "clCreateBuffer",
    [WLF_WRAP] = "clCreateBuffer(CL_MEM_USE_HOST_PTR)",
    [WLF_PROGRAM_SOURCE] = "clCreateProgramWithSource",
    [WLF_PROGRAM_BINARY] = "clCreateProgramWithBinary",
    [WLF_BUILD] = "clBuildProgram",
    [WLF_BUILD_BINARY] = "clBuildProgram(binary)",
    [WLF_PROGRAM_INFO] = "clGetProgramInfo",
    [WLF_KERNEL] = "clCreateKernel",
    [WLF_KERNEL_INFO] = "clGetKernelWorkGroupInfo",
    [WLF_DEVICE_INFO] = "clGetDeviceInfo",
    [WLF_SET_ARG] = "clSetKernelArg",
    [WLF_NDRANGE] = "clEnqueueNDRangeKernel",
    [WLF_WRITE] = "clEnqueueWriteBuffer",
    [WLF_READ] = "clEnqueueReadBuffer",
    [WLF_FILL] = "clEnqueueFillBuffer",
    [WLF_COPY] = "clEnqueueCopyBuffer",
    [WLF_MAP] = "clEnqueueMapBuffer",
    [WLF_MARKER] = "clEnqueueMarkerWithWaitList",
    [WLF_FINISH] = "clFinish",
};

static unsigned long counts[WLF_KIND_COUNT];
/* Where each counted call came from, by kind and number (1-based), for the first MAX_CALLERS of a kind. */
#define MAX_CALLERS 4096
static const void *callers[WLF_KIND_COUNT][MAX_CALLERS];

static unsigned long hooked;
static long live[WLF_OBJECT_COUNT];
static int armed, fired;
static wlf_kind armed_kind;
static unsigned long armed_nth;
static cl_int armed_err;
static const char *fired_call = "";
static const char *fired_caller = "";
static cl_ulong max_alloc_limit;

/* Programs made from a binary, so that their clBuildProgram is told apart. */
#define MAX_BINARY_PROGRAMS 256
static cl_program binary_programs[MAX_BINARY_PROGRAMS];

/* The file of the program or shared library that holds address. */
static const char *object_of(const void *address)
{
    Dl_info info;
    return address && dladdr(address, &info) && info.dli_fname ? info.dli_fname : "";
}

const char *wlf_kind_name(wlf_kind k) { return (unsigned)k < WLF_KIND_COUNT ? kind_names[k] : "?"; }
void wlf_reset_counts(void)
{
    memset(counts, 0, sizeof counts);
    memset(callers, 0, sizeof callers);
}
unsigned long wlf_count(wlf_kind k) { return (unsigned)k < WLF_KIND_COUNT ? counts[k] : 0; }
void wlf_arm(wlf_kind k, unsigned long nth, cl_int err)
{
    armed = 1, fired = 0, armed_kind = k, armed_nth = nth, armed_err = err, fired_call = "", fired_caller = "";
}
void wlf_disarm(void) { armed = 0; }
int wlf_fired(void) { return fired; }
const char *wlf_fired_call(void) { return fired_call; }
const char *wlf_fired_caller(void) { return fired_caller; }
const char *wlf_caller(wlf_kind k, unsigned long nth)
{
    if ((unsigned)k >= WLF_KIND_COUNT || nth == 0 || nth > counts[k] || nth > MAX_CALLERS)
        return "";
    return object_of(callers[k][nth - 1]);
}
long wlf_live(wlf_object o) { return (unsigned)o < WLF_OBJECT_COUNT ? live[o] : 0; }
long wlf_live_total(void)
{
    long n = 0;
    for (int i = 0; i < WLF_OBJECT_COUNT; ++i)
        n += live[i];
    return n;
}
void wlf_set_max_alloc(cl_ulong bytes) { max_alloc_limit = bytes; }
unsigned long wlf_hooked_calls(void) { return hooked; }

/* Count a call of kind k (as the function `name`); nonzero if it must fail. */
static int hit_from(wlf_kind k, const char *name, const void *caller)
{
    ++hooked;
    ++counts[k];
    if (counts[k] <= MAX_CALLERS)
        callers[k][counts[k] - 1] = caller;
    if (armed && !fired && k == armed_kind && counts[k] == armed_nth) {
        fired = 1;
        fired_call = name;
        fired_caller = object_of(caller);
        return 1;
    }
    return 0;
}
/* In a hook: count the call, noting where it came from. */
#define hit(k, name) hit_from(k, name, __builtin_return_address(0))

static void *next(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f) {
        fprintf(stderr, "fault: no next definition of %s: %s\n", name, dlerror());
        abort();
    }
    return f;
}

/* The real function, looked up once. */
#define REAL(ret, name, params)                                                                                        \
    static ret(CL_API_CALL *real) params;                                                                              \
    if (!real)                                                                                                         \
    *(void **)&real = next(#name)

static void event_made(cl_int err, cl_event *event)
{
    if (err == CL_SUCCESS && event && *event)
        ++live[WLF_EVENT];
}

/* ------------------------------------------------------------ creation */

cl_context CL_API_CALL clCreateContext(const cl_context_properties *props, cl_uint n, const cl_device_id *devices,
                                       void(CL_CALLBACK *notify)(const char *, const void *, size_t, void *),
                                       void *user, cl_int *err)
{
    REAL(cl_context, clCreateContext,
         (const cl_context_properties *, cl_uint, const cl_device_id *,
          void(CL_CALLBACK *)(const char *, const void *, size_t, void *), void *, cl_int *));
    if (hit(WLF_CONTEXT, "clCreateContext")) {
        if (err)
            *err = armed_err;
        return NULL;
    }
    cl_int e = CL_SUCCESS;
    cl_context c = real(props, n, devices, notify, user, &e);
    if (err)
        *err = e;
    if (c)
        ++live[WLF_CONTEXT_OBJ];
    return c;
}

cl_command_queue CL_API_CALL clCreateCommandQueue(cl_context context, cl_device_id device,
                                                  cl_command_queue_properties properties, cl_int *err)
{
    REAL(cl_command_queue, clCreateCommandQueue, (cl_context, cl_device_id, cl_command_queue_properties, cl_int *));
    if (hit(WLF_QUEUE, "clCreateCommandQueue")) {
        if (err)
            *err = armed_err;
        return NULL;
    }
    cl_int e = CL_SUCCESS;
    cl_command_queue q = real(context, device, properties, &e);
    if (err)
        *err = e;
    if (q)
        ++live[WLF_QUEUE_OBJ];
    return q;
}

cl_mem CL_API_CALL clCreateBuffer(cl_context context, cl_mem_flags flags, size_t size, void *host, cl_int *err)
{
    REAL(cl_mem, clCreateBuffer, (cl_context, cl_mem_flags, size_t, void *, cl_int *));
    const int wrap = (flags & CL_MEM_USE_HOST_PTR) != 0;
    if (hit(wrap ? WLF_WRAP : WLF_BUFFER, "clCreateBuffer")) {
        if (err)
            *err = armed_err;
        return NULL;
    }
    cl_int e = CL_SUCCESS;
    cl_mem m = real(context, flags, size, host, &e);
    if (err)
        *err = e;
    if (m)
        ++live[WLF_MEM];
    return m;
}

cl_mem CL_API_CALL clCreateSubBuffer(cl_mem parent, cl_mem_flags flags, cl_buffer_create_type type, const void *info,
                                     cl_int *err)
{
    REAL(cl_mem, clCreateSubBuffer, (cl_mem, cl_mem_flags, cl_buffer_create_type, const void *, cl_int *));
    if (hit(WLF_BUFFER, "clCreateSubBuffer")) {
        if (err)
            *err = armed_err;
        return NULL;
    }
    cl_int e = CL_SUCCESS;
    cl_mem m = real(parent, flags, type, info, &e);
    if (err)
        *err = e;
    if (m)
        ++live[WLF_MEM];
    return m;
}

cl_program CL_API_CALL clCreateProgramWithSource(cl_context context, cl_uint count, const char **strings,
                                                 const size_t *lengths, cl_int *err)
{
    REAL(cl_program, clCreateProgramWithSource, (cl_context, cl_uint, const char **, const size_t *, cl_int *));
    if (hit(WLF_PROGRAM_SOURCE, "clCreateProgramWithSource")) {
        if (err)
            *err = armed_err;
        return NULL;
    }
    cl_int e = CL_SUCCESS;
    cl_program p = real(context, count, strings, lengths, &e);
    if (err)
        *err = e;
    if (p)
        ++live[WLF_PROGRAM];
    return p;
}

cl_program CL_API_CALL clCreateProgramWithBinary(cl_context context, cl_uint n, const cl_device_id *devices,
                                                 const size_t *lengths, const unsigned char **binaries, cl_int *status,
                                                 cl_int *err)
{
    REAL(cl_program, clCreateProgramWithBinary,
         (cl_context, cl_uint, const cl_device_id *, const size_t *, const unsigned char **, cl_int *, cl_int *));
    if (hit(WLF_PROGRAM_BINARY, "clCreateProgramWithBinary")) {
        if (err)
            *err = armed_err;
        if (status)
            for (cl_uint i = 0; i < n; ++i)
                status[i] = CL_INVALID_BINARY;
        return NULL;
    }
    cl_int e = CL_SUCCESS;
    cl_program p = real(context, n, devices, lengths, binaries, status, &e);
    if (err)
        *err = e;
    if (p) {
        ++live[WLF_PROGRAM];
        for (int i = 0; i < MAX_BINARY_PROGRAMS; ++i)
            if (!binary_programs[i]) {
                binary_programs[i] = p;
                break;
            }
    }
    return p;
}

static int from_binary(cl_program p)
{
    for (int i = 0; i < MAX_BINARY_PROGRAMS; ++i)
        if (p && binary_programs[i] == p)
            return 1;
    return 0;
}

cl_int CL_API_CALL clBuildProgram(cl_program program, cl_uint n, const cl_device_id *devices, const char *options,
                                  void(CL_CALLBACK *notify)(cl_program, void *), void *user)
{
    REAL(cl_int, clBuildProgram,
         (cl_program, cl_uint, const cl_device_id *, const char *, void(CL_CALLBACK *)(cl_program, void *), void *));
    if (hit(from_binary(program) ? WLF_BUILD_BINARY : WLF_BUILD, "clBuildProgram"))
        return armed_err;
    return real(program, n, devices, options, notify, user);
}

cl_int CL_API_CALL clGetProgramInfo(cl_program program, cl_program_info what, size_t size, void *value,
                                    size_t *size_ret)
{
    REAL(cl_int, clGetProgramInfo, (cl_program, cl_program_info, size_t, void *, size_t *));
    if (hit(WLF_PROGRAM_INFO, "clGetProgramInfo"))
        return armed_err;
    return real(program, what, size, value, size_ret);
}

cl_kernel CL_API_CALL clCreateKernel(cl_program program, const char *name, cl_int *err)
{
    REAL(cl_kernel, clCreateKernel, (cl_program, const char *, cl_int *));
    if (hit(WLF_KERNEL, "clCreateKernel")) {
        if (err)
            *err = armed_err;
        return NULL;
    }
    cl_int e = CL_SUCCESS;
    cl_kernel k = real(program, name, &e);
    if (err)
        *err = e;
    if (k)
        ++live[WLF_KERNEL_OBJ];
    return k;
}

cl_event CL_API_CALL clCreateUserEvent(cl_context context, cl_int *err)
{
    REAL(cl_event, clCreateUserEvent, (cl_context, cl_int *));
    cl_int e = CL_SUCCESS;
    cl_event ev = real(context, &e);
    if (err)
        *err = e;
    if (ev)
        ++live[WLF_EVENT];
    return ev;
}

/* ------------------------------------------------------------ queries */

cl_int CL_API_CALL clGetPlatformIDs(cl_uint n, cl_platform_id *platforms, cl_uint *count)
{
    REAL(cl_int, clGetPlatformIDs, (cl_uint, cl_platform_id *, cl_uint *));
    if (hit(WLF_PLATFORM_IDS, "clGetPlatformIDs"))
        return armed_err;
    return real(n, platforms, count);
}

cl_int CL_API_CALL clGetDeviceIDs(cl_platform_id platform, cl_device_type type, cl_uint n, cl_device_id *devices,
                                  cl_uint *count)
{
    REAL(cl_int, clGetDeviceIDs, (cl_platform_id, cl_device_type, cl_uint, cl_device_id *, cl_uint *));
    if (hit(WLF_DEVICE_IDS, "clGetDeviceIDs"))
        return armed_err;
    return real(platform, type, n, devices, count);
}

cl_int CL_API_CALL clGetPlatformInfo(cl_platform_id platform, cl_platform_info what, size_t size, void *value,
                                     size_t *size_ret)
{
    REAL(cl_int, clGetPlatformInfo, (cl_platform_id, cl_platform_info, size_t, void *, size_t *));
    if (hit(WLF_DEVICE_INFO, "clGetPlatformInfo"))
        return armed_err;
    return real(platform, what, size, value, size_ret);
}

cl_int CL_API_CALL clGetKernelWorkGroupInfo(cl_kernel kernel, cl_device_id device, cl_kernel_work_group_info what,
                                            size_t size, void *value, size_t *size_ret)
{
    REAL(cl_int, clGetKernelWorkGroupInfo,
         (cl_kernel, cl_device_id, cl_kernel_work_group_info, size_t, void *, size_t *));
    if (hit(WLF_KERNEL_INFO, "clGetKernelWorkGroupInfo"))
        return armed_err;
    return real(kernel, device, what, size, value, size_ret);
}

cl_int CL_API_CALL clGetDeviceInfo(cl_device_id device, cl_device_info what, size_t size, void *value, size_t *size_ret)
{
    REAL(cl_int, clGetDeviceInfo, (cl_device_id, cl_device_info, size_t, void *, size_t *));
    if (hit(WLF_DEVICE_INFO, "clGetDeviceInfo"))
        return armed_err;
    const cl_int e = real(device, what, size, value, size_ret);
    if (e == CL_SUCCESS && what == CL_DEVICE_MAX_MEM_ALLOC_SIZE && max_alloc_limit && value &&
        size >= sizeof(cl_ulong)) {
        cl_ulong v;
        memcpy(&v, value, sizeof v);
        if (v > max_alloc_limit)
            memcpy(value, &max_alloc_limit, sizeof v);
    }
    return e;
}

/* ------------------------------------------------------------ commands */

cl_int CL_API_CALL clSetKernelArg(cl_kernel kernel, cl_uint index, size_t size, const void *value)
{
    REAL(cl_int, clSetKernelArg, (cl_kernel, cl_uint, size_t, const void *));
    if (hit(WLF_SET_ARG, "clSetKernelArg"))
        return armed_err;
    return real(kernel, index, size, value);
}

cl_int CL_API_CALL clEnqueueNDRangeKernel(cl_command_queue q, cl_kernel kernel, cl_uint dims, const size_t *offset,
                                          const size_t *global, const size_t *local, cl_uint nwait,
                                          const cl_event *wait, cl_event *event)
{
    REAL(cl_int, clEnqueueNDRangeKernel,
         (cl_command_queue, cl_kernel, cl_uint, const size_t *, const size_t *, const size_t *, cl_uint,
          const cl_event *, cl_event *));
    if (hit(WLF_NDRANGE, "clEnqueueNDRangeKernel"))
        return armed_err;
    const cl_int e = real(q, kernel, dims, offset, global, local, nwait, wait, event);
    event_made(e, event);
    return e;
}

cl_int CL_API_CALL clEnqueueWriteBuffer(cl_command_queue q, cl_mem buf, cl_bool blocking, size_t offset, size_t size,
                                        const void *ptr, cl_uint nwait, const cl_event *wait, cl_event *event)
{
    REAL(cl_int, clEnqueueWriteBuffer,
         (cl_command_queue, cl_mem, cl_bool, size_t, size_t, const void *, cl_uint, const cl_event *, cl_event *));
    if (hit(WLF_WRITE, "clEnqueueWriteBuffer"))
        return armed_err;
    const cl_int e = real(q, buf, blocking, offset, size, ptr, nwait, wait, event);
    event_made(e, event);
    return e;
}

cl_int CL_API_CALL clEnqueueReadBuffer(cl_command_queue q, cl_mem buf, cl_bool blocking, size_t offset, size_t size,
                                       void *ptr, cl_uint nwait, const cl_event *wait, cl_event *event)
{
    REAL(cl_int, clEnqueueReadBuffer,
         (cl_command_queue, cl_mem, cl_bool, size_t, size_t, void *, cl_uint, const cl_event *, cl_event *));
    if (hit(WLF_READ, "clEnqueueReadBuffer"))
        return armed_err;
    const cl_int e = real(q, buf, blocking, offset, size, ptr, nwait, wait, event);
    event_made(e, event);
    return e;
}

cl_int CL_API_CALL clEnqueueFillBuffer(cl_command_queue q, cl_mem buf, const void *pattern, size_t pattern_size,
                                       size_t offset, size_t size, cl_uint nwait, const cl_event *wait, cl_event *event)
{
    REAL(cl_int, clEnqueueFillBuffer,
         (cl_command_queue, cl_mem, const void *, size_t, size_t, size_t, cl_uint, const cl_event *, cl_event *));
    if (hit(WLF_FILL, "clEnqueueFillBuffer"))
        return armed_err;
    const cl_int e = real(q, buf, pattern, pattern_size, offset, size, nwait, wait, event);
    event_made(e, event);
    return e;
}

cl_int CL_API_CALL clEnqueueCopyBuffer(cl_command_queue q, cl_mem from, cl_mem to, size_t from_offset, size_t to_offset,
                                       size_t size, cl_uint nwait, const cl_event *wait, cl_event *event)
{
    REAL(cl_int, clEnqueueCopyBuffer,
         (cl_command_queue, cl_mem, cl_mem, size_t, size_t, size_t, cl_uint, const cl_event *, cl_event *));
    if (hit(WLF_COPY, "clEnqueueCopyBuffer"))
        return armed_err;
    const cl_int e = real(q, from, to, from_offset, to_offset, size, nwait, wait, event);
    event_made(e, event);
    return e;
}

void *CL_API_CALL clEnqueueMapBuffer(cl_command_queue q, cl_mem buf, cl_bool blocking, cl_map_flags flags,
                                     size_t offset, size_t size, cl_uint nwait, const cl_event *wait, cl_event *event,
                                     cl_int *err)
{
    REAL(void *, clEnqueueMapBuffer,
         (cl_command_queue, cl_mem, cl_bool, cl_map_flags, size_t, size_t, cl_uint, const cl_event *, cl_event *,
          cl_int *));
    if (hit(WLF_MAP, "clEnqueueMapBuffer")) {
        if (err)
            *err = armed_err;
        return NULL;
    }
    cl_int e = CL_SUCCESS;
    void *p = real(q, buf, blocking, flags, offset, size, nwait, wait, event, &e);
    if (err)
        *err = e;
    event_made(e, event);
    return p;
}

cl_int CL_API_CALL clEnqueueUnmapMemObject(cl_command_queue q, cl_mem buf, void *mapped, cl_uint nwait,
                                           const cl_event *wait, cl_event *event)
{
    REAL(cl_int, clEnqueueUnmapMemObject, (cl_command_queue, cl_mem, void *, cl_uint, const cl_event *, cl_event *));
    if (hit(WLF_MAP, "clEnqueueUnmapMemObject"))
        return armed_err;
    const cl_int e = real(q, buf, mapped, nwait, wait, event);
    event_made(e, event);
    return e;
}

cl_int CL_API_CALL clEnqueueMarkerWithWaitList(cl_command_queue q, cl_uint nwait, const cl_event *wait, cl_event *event)
{
    REAL(cl_int, clEnqueueMarkerWithWaitList, (cl_command_queue, cl_uint, const cl_event *, cl_event *));
    if (hit(WLF_MARKER, "clEnqueueMarkerWithWaitList"))
        return armed_err;
    const cl_int e = real(q, nwait, wait, event);
    event_made(e, event);
    return e;
}

cl_int CL_API_CALL clEnqueueBarrierWithWaitList(cl_command_queue q, cl_uint nwait, const cl_event *wait,
                                                cl_event *event)
{
    REAL(cl_int, clEnqueueBarrierWithWaitList, (cl_command_queue, cl_uint, const cl_event *, cl_event *));
    if (hit(WLF_MARKER, "clEnqueueBarrierWithWaitList"))
        return armed_err;
    const cl_int e = real(q, nwait, wait, event);
    event_made(e, event);
    return e;
}

/* The real work is done, then the error reported: a failed clFinish must not
 * leave commands running on memory the caller gets back. */
cl_int CL_API_CALL clFinish(cl_command_queue q)
{
    REAL(cl_int, clFinish, (cl_command_queue));
    const cl_int e = real(q);
    if (hit(WLF_FINISH, "clFinish"))
        return armed_err;
    return e;
}

/* ------------------------------------------------------------ reference counts */

#define RETAIN_RELEASE(type, object, retain_name, release_name)                                                        \
    cl_int CL_API_CALL retain_name(type x)                                                                             \
    {                                                                                                                  \
        REAL(cl_int, retain_name, (type));                                                                             \
        const cl_int e = real(x);                                                                                      \
        if (e == CL_SUCCESS)                                                                                           \
            ++live[object];                                                                                            \
        return e;                                                                                                      \
    }                                                                                                                  \
    cl_int CL_API_CALL release_name(type x)                                                                            \
    {                                                                                                                  \
        REAL(cl_int, release_name, (type));                                                                            \
        const cl_int e = real(x);                                                                                      \
        if (e == CL_SUCCESS)                                                                                           \
            --live[object];                                                                                            \
        return e;                                                                                                      \
    }

RETAIN_RELEASE(cl_mem, WLF_MEM, clRetainMemObject, clReleaseMemObject)
RETAIN_RELEASE(cl_kernel, WLF_KERNEL_OBJ, clRetainKernel, clReleaseKernel)
RETAIN_RELEASE(cl_event, WLF_EVENT, clRetainEvent, clReleaseEvent)
RETAIN_RELEASE(cl_command_queue, WLF_QUEUE_OBJ, clRetainCommandQueue, clReleaseCommandQueue)
RETAIN_RELEASE(cl_context, WLF_CONTEXT_OBJ, clRetainContext, clReleaseContext)

cl_int CL_API_CALL clRetainProgram(cl_program p)
{
    REAL(cl_int, clRetainProgram, (cl_program));
    const cl_int e = real(p);
    if (e == CL_SUCCESS)
        ++live[WLF_PROGRAM];
    return e;
}

/* The library releases each program once; forget it as a binary program then
 * (its handle may be reused). */
cl_int CL_API_CALL clReleaseProgram(cl_program p)
{
    REAL(cl_int, clReleaseProgram, (cl_program));
    const cl_int e = real(p);
    if (e == CL_SUCCESS) {
        --live[WLF_PROGRAM];
        for (int i = 0; i < MAX_BINARY_PROGRAMS; ++i)
            if (binary_programs[i] == p)
                binary_programs[i] = NULL;
    }
    return e;
}
