/* The context: device choice, OpenCL context and queue, launch plan, programs. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "program.h"

void wl_context_options_default(wl_context_options *o)
{
    if (o)
        memset(o, 0, sizeof *o);
}

/* plan: NULL for the device's own (wl_plan_default), else the tests' choice */
static wl_status finish_create(wl_context *c, const wl_context_options *o, const wl_plan *plan)
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
    /* GPU drivers do not promise zeroed buffers: this makes any reliance on them show */
    const char *poison = getenv("WARPLOSS_POISON");
    c->poison = poison && poison[0] && strcmp(poison, "0") != 0;
    /* oclgrind counts the bytes of clEnqueueFillBuffer and CL_MEM_USE_HOST_PTR as uninitialized (README.md, "oclgrind")
     */
    const char *host_writes = getenv("WARPLOSS_HOST_WRITES");
    c->host_writes = host_writes && host_writes[0] && strcmp(host_writes, "0") != 0;
    wl_status st = WL_SUCCESS;
    if (plan)
        c->plan = *plan;
    else if ((st = wl_plan_default(c->device, &c->plan)) != WL_SUCCESS)
        return wl_fail(c, st, "%s", wl_thread_error());
    wl_log(c, "warploss: device %s, %s scan, vector width %d, %s model scatter", c->device_name,
           c->plan.group_scan ? "work-group" : "work-item", c->plan.vector_width,
           c->plan.scatter64 ? "64-bit" : "32-bit");
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

static wl_status create(const wl_context_options *o, const wl_plan *plan, wl_context **out)
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
    st = finish_create(c, o, plan);
    if (st != WL_SUCCESS)
        return fail_create(c, st, out);
    *out = c;
    return WL_SUCCESS;
}

wl_status wl_context_create(const wl_context_options *o, wl_context **out) { return create(o, NULL, out); }

wl_status wl_context_create_with_plan(const wl_context_options *o, const wl_plan *plan, wl_context **out)
{
    if (out)
        *out = NULL;
    const char *bad = plan ? wl_plan_check(plan) : "plan (NULL)";
    if (bad)
        return wl_fail(NULL, WL_ERROR_INVALID_ARGUMENT, "wl_context_create_with_plan: bad %s", bad);
    return create(o, plan, out);
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
                     "failed: %s (%d)",
                     wl_cl_error_name(err), (int)err);
        return fail_create(c, st, out);
    }
    clRetainContext(c->context);
    clRetainCommandQueue(queue);
    c->queue = queue;
    st = finish_create(c, o, NULL);
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
    wl_program_release_all(c);
    wl_blas_release(c);
    for (int i = 0; i < WL_SCRATCH_COUNT; ++i)
        if (c->scratch[i])
            clReleaseMemObject(c->scratch[i]);
    wl_weight_table_release(&c->weights);
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
const char *wl_context_scan_variant(const wl_context *c) { return c ? (c->plan.group_scan ? "group" : "row") : ""; }

const char *wl_context_model_scatter(const wl_context *c)
{
    return c ? (c->plan.scatter64 ? "atomic64" : "atomic32") : "";
}
