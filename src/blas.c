/*
 * CLBlast, the one place warploss calls it: C = A B^T (row-major SGEMM) on a
 * chain of the enqueue layer.
 *
 * CLBlast takes a queue but no wait list, so a barrier that waits for the
 * chain goes first (it orders CLBlast's commands on in-order and
 * out-of-order queues alike) and CLBlast's event becomes the chain's next
 * step. Its temporary buffer is a scratch buffer of the context, so CLBlast
 * allocates nothing itself. Its status codes are OpenCL's own or its own
 * (below -1000); both become a wl_status with a message naming the call.
 *
 * CLBlast keeps the programs it compiles in a cache of its own, for the whole
 * process, and they hold the OpenCL context: wl_blas_release (called by
 * wl_context_destroy of a context that used CLBlast) clears that cache so
 * that destroying the context releases everything. Another context of the
 * process that used CLBlast compiles its kernels again on its next call.
 * CLBlast writes a line to stderr when an OpenCL call inside it fails (it
 * has no switch to turn that off); warploss itself still never prints.
 */
#include <stdio.h>

#include <clblast_c.h>

#include "internal.h"

static wl_status blas_fail(wl_context *c, CLBlastStatusCode s, const char *what)
{
    if (s > -1000) /* an OpenCL error code, passed on */
        return wl_fail_cl(c, (cl_int)s, what);
    const wl_status st = s == CLBlastInsufficientMemoryTemp ? WL_ERROR_OUT_OF_MEMORY : WL_ERROR_OPENCL;
    return wl_fail(c, st, "%s failed: CLBlast status %d", what, (int)s);
}

wl_status wl_blas_gemm_nt(wl_chain *ch, size_t m, size_t n, size_t k, cl_mem a, cl_mem b, cl_mem out, const char *what)
{
    wl_context *c = ch->c;
    size_t temp_bytes = 0;
    CLBlastStatusCode s = CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, m,
                                                     n, k, 0, k, 0, k, 0, n, &c->queue, &temp_bytes);
    c->used_blas = 1;
    if (s != CLBlastSuccess)
        return blas_fail(c, s, "CLBlastSGemmTempBufferSize");
    cl_mem temp;
    wl_status st = wl_scratch(c, WL_SCRATCH_BLAS_TEMP, temp_bytes ? temp_bytes : sizeof(float),
                              "CLBlast's temporary buffer", &temp);
    if (st != WL_SUCCESS)
        return st;
    const cl_int err = clEnqueueBarrierWithWaitList(c->queue, ch->num_wait, ch->num_wait ? ch->wait : NULL, NULL);
    if (err != CL_SUCCESS)
        return wl_fail_cl(c, err, "clEnqueueBarrierWithWaitList(before CLBlastSgemm)");
    cl_event ev = NULL;
    s = CLBlastSgemmWithTempBuffer(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, m, n, k, 1.0f, a, 0,
                                   k, b, 0, k, 0.0f, out, 0, n, &c->queue, &ev, temp);
    if (s != CLBlastSuccess) {
        if (ev)
            clReleaseEvent(ev);
        char call[160];
        snprintf(call, sizeof call, "CLBlastSgemm(%s, %zu x %zu x %zu)", what, m, n, k);
        return blas_fail(c, s, call);
    }
    wl_chain_step(ch, ev);
    return WL_SUCCESS;
}

void wl_blas_release(wl_context *c)
{
    if (c->used_blas)
        CLBlastClearCache();
    c->used_blas = 0;
}
