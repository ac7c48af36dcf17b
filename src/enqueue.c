/* The enqueue layer (enqueue.h): event chain, launches, scratch buffers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

wl_status wl_chain_start(wl_chain *ch, wl_context *c, cl_uint num_wait, const cl_event *wait)
{
    memset(ch, 0, sizeof *ch);
    ch->c = c;
    ch->wait = malloc((num_wait + 1) * sizeof *ch->wait);
    if (!ch->wait)
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (cl_uint i = 0; i < num_wait; ++i)
        ch->wait[ch->num_wait++] = wait[i];
    if (c->last)
        ch->wait[ch->num_wait++] = c->last;
    return WL_SUCCESS;
}

void wl_chain_step(wl_chain *ch, cl_event ev)
{
    if (ch->last)
        clReleaseEvent(ch->last);
    ch->last = ev;
    ch->wait[0] = ev;
    ch->num_wait = 1;
}

void wl_chain_finish(wl_chain *ch, cl_event *done)
{
    wl_context *c = ch->c;
    if (c->last)
        clReleaseEvent(c->last);
    c->last = ch->last;
    if (c->last)
        clRetainEvent(c->last);
    if (done) {
        *done = ch->last;
        ch->last = NULL;
    }
}

void wl_chain_end(wl_chain *ch)
{
    if (ch->last)
        clReleaseEvent(ch->last);
    free(ch->wait);
    memset(ch, 0, sizeof *ch);
}

/* Whether l stays within the plan and the device: the kernel's own largest
 * work-group, at most plan.max_groups work-groups, and the local memory
 * (the kernel's own and its local arguments) within plan.local_mem. */
static wl_status check_launch(wl_context *c, const wl_launch *l, const char *name)
{
    const wl_plan *p = &c->plan;
    size_t local_bytes = c->kernel_local_mem[l->kernel];
    for (size_t i = 0; i < l->num_args; ++i)
        if (!l->args[i].value)
            local_bytes += l->args[i].size;
    if (l->local > wl_kernel_group(c, l->kernel, l->local) || l->global % l->local ||
        l->global / l->local > p->max_groups || local_bytes > p->local_mem)
        return wl_fail(c, WL_ERROR_OPENCL,
                       "a launch of %s leaves the launch plan: %zu work-items in groups of %zu (at most %zu, "
                       "%zu groups), %zu bytes of local memory (at most %zu)",
                       name, l->global, l->local, wl_kernel_group(c, l->kernel, (size_t)-1), p->max_groups, local_bytes,
                       p->local_mem);
    return WL_SUCCESS;
}

/* One clEnqueueNDRangeKernel on the chain. */
static wl_status enqueue_range(wl_chain *ch, cl_kernel k, size_t offset, size_t global, size_t local, const char *name)
{
    cl_event ev;
    const cl_int err = clEnqueueNDRangeKernel(ch->c->queue, k, 1, offset ? &offset : NULL, &global,
                                              local ? &local : NULL, ch->num_wait, ch->num_wait ? ch->wait : NULL, &ev);
    if (err != CL_SUCCESS) {
        char what[96];
        snprintf(what, sizeof what, "clEnqueueNDRangeKernel(%s)", name);
        return wl_fail_cl(ch->c, err, what);
    }
    wl_chain_step(ch, ev);
    return WL_SUCCESS;
}

wl_status wl_enqueue_kernel(wl_chain *ch, const wl_launch *l)
{
    wl_context *c = ch->c;
    const char *name = wl_kernels[l->kernel].name;
    cl_kernel k = c->kernel[l->kernel];
    for (size_t i = 0; i < l->num_args; ++i) {
        const cl_int err = clSetKernelArg(k, (cl_uint)i, l->args[i].size, l->args[i].value);
        if (err != CL_SUCCESS) {
            char what[96];
            snprintf(what, sizeof what, "clSetKernelArg(%s)", name);
            return wl_fail_cl(c, err, what);
        }
    }
    if (l->local) {
        const wl_status st = check_launch(c, l, name);
        return st != WL_SUCCESS ? st : enqueue_range(ch, k, 0, l->global, l->local, name);
    }
    /* The runtime chooses the work-group: within max_groups whatever it
     * chooses when global is that small; otherwise the kernel's largest
     * group, in launches of at most max_groups groups, each starting at a
     * global offset, the last rounded up to whole groups (the kernels that
     * launch this way ignore work-items past their range). */
    if (l->global <= c->plan.max_groups)
        return enqueue_range(ch, k, 0, l->global, 0, name);
    const size_t local = wl_kernel_group(c, l->kernel, (size_t)-1), span = c->plan.max_groups * local;
    for (size_t first = 0; first < l->global; first += span) {
        const size_t left = l->global - first, n = left < span ? (left + local - 1) / local * local : span;
        const wl_status st = enqueue_range(ch, k, first, n, local, name);
        if (st != WL_SUCCESS)
            return st;
    }
    return WL_SUCCESS;
}

/* The fill as a blocking clEnqueueWriteBuffer of the repeated pattern. */
static wl_status fill_by_write(wl_chain *ch, cl_mem buf, const void *pattern, size_t pattern_size, size_t size)
{
    unsigned char *host = malloc(size ? size : 1);
    if (!host)
        return wl_fail(ch->c, WL_ERROR_OUT_OF_MEMORY, "out of host memory for a fill of %zu bytes", size);
    for (size_t at = 0; at < size; at += pattern_size)
        memcpy(host + at, pattern, pattern_size);
    cl_event ev;
    const cl_int err = clEnqueueWriteBuffer(ch->c->queue, buf, CL_TRUE, 0, size, host, ch->num_wait,
                                            ch->num_wait ? ch->wait : NULL, &ev);
    free(host);
    if (err != CL_SUCCESS)
        return wl_fail_cl(ch->c, err, "clEnqueueWriteBuffer(fill)");
    wl_chain_step(ch, ev);
    return WL_SUCCESS;
}

wl_status wl_enqueue_fill(wl_chain *ch, cl_mem buf, const void *pattern, size_t pattern_size, size_t size)
{
    if (ch->c->host_writes)
        return fill_by_write(ch, buf, pattern, pattern_size, size);
    cl_event ev;
    const cl_int err = clEnqueueFillBuffer(ch->c->queue, buf, pattern, pattern_size, 0, size, ch->num_wait,
                                           ch->num_wait ? ch->wait : NULL, &ev);
    if (err != CL_SUCCESS)
        return wl_fail_cl(ch->c, err, "clEnqueueFillBuffer");
    wl_chain_step(ch, ev);
    return WL_SUCCESS;
}

wl_status wl_enqueue_marker(wl_chain *ch)
{
    cl_event ev;
    const cl_int err = clEnqueueMarkerWithWaitList(ch->c->queue, ch->num_wait, ch->num_wait ? ch->wait : NULL, &ev);
    if (err != CL_SUCCESS)
        return wl_fail_cl(ch->c, err, "clEnqueueMarkerWithWaitList");
    wl_chain_step(ch, ev);
    return WL_SUCCESS;
}

wl_status wl_scratch(wl_context *c, wl_scratch_id id, size_t bytes, const char *what, cl_mem *out)
{
    *out = NULL;
    if (c->scratch[id] && c->scratch_size[id] >= bytes) {
        *out = c->scratch[id];
        return WL_SUCCESS;
    }
    if (bytes > c->max_alloc)
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "%s needs %zu bytes; the device's largest allocation is %llu bytes",
                       what, bytes, (unsigned long long)c->max_alloc);
    /* a command of an earlier call may still use the old buffer: OpenCL keeps
     * it alive until that command is done */
    if (c->scratch[id])
        clReleaseMemObject(c->scratch[id]);
    c->scratch[id] = NULL;
    c->scratch_size[id] = 0;
    cl_int err;
    cl_mem buf = clCreateBuffer(c->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS)
        return wl_fail(c, wl_cl_status(err), "clCreateBuffer for %s (%zu bytes) failed: %s (%d)", what, bytes,
                       wl_cl_error_name(err), (int)err);
    c->scratch[id] = buf;
    c->scratch_size[id] = bytes;
    *out = buf;
    return wl_poison(c, buf, bytes);
}

wl_status wl_poison(wl_context *c, cl_mem buf, size_t bytes)
{
    if (!c->poison || bytes == 0)
        return WL_SUCCESS;
    const cl_uchar pattern = 0xFF;
    cl_event fill;
    cl_int err = clEnqueueFillBuffer(c->queue, buf, &pattern, sizeof pattern, 0, bytes, 0, NULL, &fill);
    if (err != CL_SUCCESS)
        return wl_fail_cl(c, err, "clEnqueueFillBuffer(poison)");
    /* every later command waits for the fill, on an out-of-order queue too;
     * nothing blocks here (a queue may be waiting on a caller's user event) */
    err = clEnqueueBarrierWithWaitList(c->queue, 1, &fill, NULL);
    clReleaseEvent(fill);
    return err == CL_SUCCESS ? WL_SUCCESS : wl_fail_cl(c, err, "clEnqueueBarrierWithWaitList(poison)");
}

wl_status wl_check_buffer(wl_context *c, cl_mem buf, size_t need, const char *name)
{
    size_t size = 0;
    cl_context owner = NULL;
    cl_int err = clGetMemObjectInfo(buf, CL_MEM_SIZE, sizeof size, &size, NULL);
    if (err == CL_SUCCESS)
        err = clGetMemObjectInfo(buf, CL_MEM_CONTEXT, sizeof owner, &owner, NULL);
    if (err != CL_SUCCESS)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s is not a valid buffer: %s", name, wl_cl_error_name(err));
    if (owner != c->context)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s belongs to another OpenCL context", name);
    if (size < need)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s has %zu bytes; the shape needs %zu", name, size, need);
    return WL_SUCCESS;
}

size_t wl_kernel_group(const wl_context *c, int kernel, size_t want)
{
    const size_t own = c->kernel_group[kernel], limit = own < c->plan.max_group ? own : c->plan.max_group;
    const size_t n = want < limit ? want : limit;
    return n ? n : 1;
}
