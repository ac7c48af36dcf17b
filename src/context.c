/* The context: device choice, OpenCL context and queue, program, launch shape. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "program.h"

void wl_context_options_default(wl_context_options *o)
{
    if (o)
        memset(o, 0, sizeof *o);
}

/* Scan variant and vector width come from the device's type (device.c, shared
 * with wl_device_launch_plan); the work-group sizes from its limits. */
static void choose_launch_shape(wl_context *c)
{
    wl_device_launch_shape(c->device_type, &c->use_group_scan, &c->vector_width);
    size_t max_group = 0;
    clGetDeviceInfo(c->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_group, &max_group, NULL);
    c->max_group = max_group < 256 ? max_group : 256;
    c->reduce_group = 1;
    while (c->reduce_group * 2 <= c->max_group)
        c->reduce_group *= 2;
    /* On CPUs the row scan runs a few blocks of rows per core, each a plain
     * loop (PoCL gains nothing from work-item loops over a branchy scan), and
     * the few partial sums are added by one work-item. */
    c->row_items = 0;
    if (c->device_type & CL_DEVICE_TYPE_CPU) {
        cl_uint units = 0;
        clGetDeviceInfo(c->device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof units, &units, NULL);
        c->row_items = (size_t)(units ? units : 1) * 8;
        c->reduce_group = 1;
    }
    if (c->max_group == 0)
        c->max_group = 1;
}

static wl_status finish_create(wl_context *c, const wl_context_options *o)
{
    cl_int err = clGetDeviceInfo(c->device, CL_DEVICE_NAME, sizeof c->device_name - 1, c->device_name, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(c->device, CL_DEVICE_TYPE, sizeof c->device_type, &c->device_type, NULL);
    cl_ulong max_alloc = 0;
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(c->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc, &max_alloc, NULL);
    if (err != CL_SUCCESS)
        return wl_fail_cl(c, err, "clGetDeviceInfo");
    c->max_alloc = max_alloc;
    choose_launch_shape(c);
    wl_log(c, "warploss: device %s, %s scan, vector width %d", c->device_name,
           c->use_group_scan ? "work-group" : "work-item", c->vector_width);
    return (wl_status)wl_program_create(c, o->kernel_dir, o->cache_dir);
}

static wl_status new_context(const wl_context_options *o, wl_context **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return wl_fail(NULL, WL_ERROR_OUT_OF_MEMORY, "out of host memory for the context");
    (*out)->log = o->log;
    (*out)->log_user = o->log_user;
    return WL_SUCCESS;
}

/* On failure: keep the detail for wl_context_last_error(NULL), release all. */
static wl_status fail_create(wl_context *c, wl_status st, wl_context **out)
{
    memcpy(wl_thread_error(), c->error, WL_ERROR_SIZE);
    wl_context_destroy(c);
    *out = NULL;
    return st;
}

wl_status wl_context_create(const wl_context_options *o, wl_context **out)
{
    wl_context_options defaults;
    wl_context_options_default(&defaults);
    if (!o)
        o = &defaults;
    if (!out)
        return wl_fail(NULL, WL_ERROR_INVALID_ARGUMENT, "wl_context_create: out is NULL");
    *out = NULL;
    wl_context *c;
    wl_status st = new_context(o, &c);
    if (st != WL_SUCCESS)
        return st;

    wl_device_choice choice;
    st = wl_device_resolve(o->device, &choice, c->error, sizeof c->error);
    if (st != WL_SUCCESS) {
        wl_log(c, "%s", c->error);
        return fail_create(c, st, out);
    }
    wl_log(c, "warploss: chose device %u:%u (%s)", choice.platform_index, choice.device_index, choice.reason);
    c->device = choice.device;
    cl_int err;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)choice.platform, 0};
    c->context = clCreateContext(props, 1, &c->device, NULL, NULL, &err);
    if (err != CL_SUCCESS)
        return fail_create(c, wl_fail_cl(c, err, "clCreateContext"), out);
    c->queue = clCreateCommandQueue(c->context, c->device, 0, &err);
    if (err != CL_SUCCESS)
        return fail_create(c, wl_fail_cl(c, err, "clCreateCommandQueue"), out);
    st = finish_create(c, o);
    if (st != WL_SUCCESS)
        return fail_create(c, st, out);
    *out = c;
    return WL_SUCCESS;
}

wl_status wl_context_create_with_queue(cl_command_queue queue, const wl_context_options *o, wl_context **out)
{
    wl_context_options defaults;
    wl_context_options_default(&defaults);
    if (!o)
        o = &defaults;
    if (!out)
        return wl_fail(NULL, WL_ERROR_INVALID_ARGUMENT, "wl_context_create_with_queue: out is NULL");
    *out = NULL;
    if (!queue)
        return wl_fail(NULL, WL_ERROR_INVALID_ARGUMENT, "wl_context_create_with_queue: queue is NULL");
    wl_context *c;
    wl_status st = new_context(o, &c);
    if (st != WL_SUCCESS)
        return st;
    cl_int err = clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT, sizeof c->context, &c->context, NULL);
    if (err == CL_SUCCESS)
        err = clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, sizeof c->device, &c->device, NULL);
    if (err != CL_SUCCESS) {
        c->context = NULL;
        st = wl_fail(c, err == CL_INVALID_COMMAND_QUEUE ? WL_ERROR_INVALID_ARGUMENT : wl_cl_status(err),
                     "wl_context_create_with_queue: queue is not a valid command queue: clGetCommandQueueInfo "
                     "failed: %s (%d)", wl_cl_error_name(err), (int)err);
        return fail_create(c, st, out);
    }
    clRetainContext(c->context);
    clRetainCommandQueue(queue);
    c->queue = queue;
    st = finish_create(c, o);
    if (st != WL_SUCCESS)
        return fail_create(c, st, out);
    *out = c;
    return WL_SUCCESS;
}

void wl_context_destroy(wl_context *c)
{
    if (!c)
        return;
    if (c->last)
        clWaitForEvents(1, &c->last), clReleaseEvent(c->last);
    cl_kernel kernels[] = {c->scan_rows, c->scan_groups, c->reduce_sum, c->find_nonfinite};
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; ++i)
        if (kernels[i])
            clReleaseKernel(kernels[i]);
    cl_mem buffers[] = {c->weights, c->row_loss, c->flag, c->stage[0], c->stage[1],
                        c->stage[2], c->stage[3], c->stage[4], c->stage[5]};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; ++i)
        if (buffers[i])
            clReleaseMemObject(buffers[i]);
    if (c->program)
        clReleaseProgram(c->program);
    if (c->queue)
        clReleaseCommandQueue(c->queue);
    if (c->context)
        clReleaseContext(c->context);
    free(c);
}

cl_command_queue wl_context_queue(const wl_context *c) { return c ? c->queue : NULL; }
cl_context wl_context_cl_context(const wl_context *c) { return c ? c->context : NULL; }
cl_device_id wl_context_device(const wl_context *c) { return c ? c->device : NULL; }
const char *wl_context_device_name(const wl_context *c) { return c ? c->device_name : ""; }
const char *wl_context_kernel_origin(const wl_context *c) { return c ? c->kernel_origin : ""; }
int wl_context_program_from_cache(const wl_context *c) { return c ? c->from_cache : 0; }
double wl_context_build_seconds(const wl_context *c) { return c ? c->build_seconds : 0.0; }
const char *wl_context_scan_variant(const wl_context *c)
{
    return c ? (c->use_group_scan ? "group" : "row") : "";
}
