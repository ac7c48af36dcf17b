/*
 * The loss entry points: argument checks, the rank-weight table, and the
 * launches of the scan (cl/scan.cl), the optional input check (cl/check.cl)
 * and the sum (cl/reduce.cl) through the enqueue layer. wl_loss wraps (CPU
 * devices) or stages host memory through scratch buffers, in chunks of rows
 * that fit the device's largest allocation, and calls the same path as
 * wl_loss_cl.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* wl_loss's host arrays, staged in this order (WL_SCRATCH_STAGE_POS + i) */
enum { STAGE_POS, STAGE_NEG, STAGE_LOSS, STAGE_GRAD_POS, STAGE_GRAD_NEG, STAGE_OFFENDER, STAGE_COUNT };

void wl_loss_options_default(wl_loss_options *o, uint64_t num_labels)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->num_labels = num_labels;
    o->margin = 1.0f;
    o->weighting = WL_WEIGHT_LOG;
    o->reduction = WL_REDUCE_SUM;
    o->check_finite = 0;
}

/* The weight for an offender found after k trials, in double precision. */
double wl_rank_weight(uint64_t num_labels, uint64_t k, wl_weighting weighting)
{
    const uint64_t r = (num_labels - 1) / k;
    if (r == 0)
        return 0.0; /* more trials than other labels: LightFM's clamp */
    if (weighting == WL_WEIGHT_LOG)
        return log((double)r);
    if (r < 64) {
        double h = 0.0;
        for (uint64_t i = r; i >= 1; --i)
            h += 1.0 / (double)i;
        return h;
    }
    /* H(r) = ln r + gamma + 1/(2r) - 1/(12r^2) + 1/(120r^4) - ..., error below 1e-13 for r >= 64 */
    const double x = (double)r, x2 = x * x;
    return log(x) + 0.57721566490153286061 + 1.0 / (2.0 * x) - 1.0 / (12.0 * x2) + 1.0 / (120.0 * x2 * x2);
}

/* The host-side argument check of both entry points (shapes and options).
 * Not static: tests/fuzz/fuzz_loss_args.c calls it. */
wl_status wl_loss_check_options(wl_context *c, const wl_loss_options *o, size_t rows, size_t negatives)
{
    if (!o)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "options is NULL (use wl_loss_options_default)");
    if (o->num_labels < 2)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "num_labels is %llu; it must be at least 2",
                       (unsigned long long)o->num_labels);
    if (!isfinite(o->margin))
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "margin is %g; it must be finite", (double)o->margin);
    if (o->weighting != WL_WEIGHT_LOG && o->weighting != WL_WEIGHT_HARMONIC)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "weighting is %d; use WL_WEIGHT_LOG or WL_WEIGHT_HARMONIC",
                       (int)o->weighting);
    if (o->reduction != WL_REDUCE_SUM && o->reduction != WL_REDUCE_MEAN && o->reduction != WL_REDUCE_NONE)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT,
                       "reduction is %d; use WL_REDUCE_SUM, WL_REDUCE_MEAN or WL_REDUCE_NONE", (int)o->reduction);
    if (negatives > INT32_MAX)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "negatives is %zu; at most 2^31 - 1 (offenders are int32)",
                       negatives);
    if (rows >= UINT32_MAX)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "rows is %zu; at most 2^32 - 2", rows);
    if (negatives && rows > SIZE_MAX / sizeof(float) / negatives)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "rows x negatives (%zu x %zu) overflows the byte count of neg",
                       rows, negatives);
    return WL_SUCCESS;
}

/* ------------------------------------------------------------ the device path */

wl_status wl_weight_table_ensure(wl_context *c, wl_weight_table *w, const wl_loss_options *o, size_t negatives)
{
    if (w->table && w->labels == o->num_labels && w->count == negatives && w->kind == (int)o->weighting)
        return WL_SUCCESS;
    wl_weight_table_release(w);
    if (negatives * sizeof(float) > c->max_alloc)
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "the weight table needs %zu bytes; the device allows %llu",
                       negatives * sizeof(float), (unsigned long long)c->max_alloc);
    float *table = malloc(negatives * sizeof *table);
    if (!table)
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "out of host memory for %zu rank weights", negatives);
    for (size_t j = 0; j < negatives; ++j)
        table[j] = (float)wl_rank_weight(o->num_labels, (uint64_t)j + 1, o->weighting);
    cl_int err;
    /* a fresh buffer each time: a command of an earlier call may still read the old one */
    cl_mem buf = clCreateBuffer(c->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, negatives * sizeof *table, table,
                                &err);
    free(table);
    if (err != CL_SUCCESS)
        return wl_fail_cl(c, err, "clCreateBuffer for the rank weights");
    w->table = buf;
    w->labels = o->num_labels;
    w->count = negatives;
    w->kind = (int)o->weighting;
    return WL_SUCCESS;
}

void wl_weight_table_release(wl_weight_table *w)
{
    if (w->table)
        clReleaseMemObject(w->table);
    memset(w, 0, sizeof *w);
}

/* Find the first row with a NaN or Inf; blocks. *bad = UINT32_MAX if none. */
static wl_status find_nonfinite(wl_chain *ch, size_t rows, size_t negatives, cl_mem pos, cl_mem neg, cl_uint *bad)
{
    wl_context *c = ch->c;
    cl_mem flag;
    wl_status st = wl_scratch(c, WL_SCRATCH_FLAG, sizeof(cl_uint), "the check flag", &flag);
    const cl_uint none = UINT32_MAX;
    if (st == WL_SUCCESS)
        st = wl_enqueue_fill(ch, flag, &none, sizeof none, sizeof none);
    const struct {
        cl_mem buf;
        cl_ulong count, per_row;
    } inputs[2] = {{pos, rows, 1}, {neg, (cl_ulong)rows * negatives, negatives}};
    for (int a = 0; a < 2 && st == WL_SUCCESS; ++a) {
        const cl_ulong step = 1ull << 28;
        for (cl_ulong base = 0; base < inputs[a].count && st == WL_SUCCESS; base += step) {
            const cl_ulong left = inputs[a].count - base;
            const wl_arg args[] = {WL_ARG(inputs[a].count), WL_ARG(inputs[a].per_row), WL_ARG(inputs[a].buf),
                                   WL_ARG(base), WL_ARG(flag)};
            const wl_launch l = {WL_KERNEL_FIND_NONFINITE, (size_t)(left < step ? left : step), 0, args, 5};
            st = wl_enqueue_kernel(ch, &l);
        }
    }
    if (st != WL_SUCCESS)
        return st;
    cl_int err = clEnqueueReadBuffer(c->queue, flag, CL_TRUE, 0, sizeof *bad, bad, ch->num_wait, ch->wait, NULL);
    if (err != CL_SUCCESS)
        return wl_fail_cl(c, err, "clEnqueueReadBuffer(check flag)");
    return WL_SUCCESS;
}

/* The factor of WL_REDUCE_MEAN (1/rows rounded to float), else 1. */
static float mean_scale(const wl_loss_options *o, size_t rows)
{
    return o->reduction == WL_REDUCE_MEAN && rows ? 1.0f / (float)rows : 1.0f;
}

/* The device buffers of one loss call (the caller's, or staged). */
typedef struct loss_buffers {
    cl_mem pos, neg, loss, grad_pos, grad_neg, offender;
} loss_buffers;

/* scale multiplies the gradients and each row loss as it enters the sum:
 * mean_scale() of the whole call (a chunk of a larger wl_loss call gets
 * 1/(all rows), and its caller adds the chunks' sums). Scaling before
 * summing keeps a mean finite even where the plain sum would pass FLT_MAX. */
static wl_status run(wl_chain *ch, const wl_loss_options *o, size_t rows, size_t negatives, const loss_buffers *b,
                     float scale)
{
    wl_context *c = ch->c;
    const wl_plan *plan = &c->plan;
    wl_status st;
    const float zero = 0.0f;
    const int reduce = o->reduction != WL_REDUCE_NONE;
    if (rows == 0)
        return reduce ? wl_enqueue_fill(ch, b->loss, &zero, sizeof zero, sizeof zero) : wl_enqueue_marker(ch);
    if (negatives && (st = wl_weight_table_ensure(c, &c->weights, o, negatives)) != WL_SUCCESS)
        return st;
    const cl_ulong rows64 = rows, negatives64 = negatives;
    const cl_mem weights = negatives ? c->weights.table : NULL, neg = negatives ? b->neg : NULL;

    /* What gets summed: the work-group scan writes every row's loss; the row
     * scan, when only the sum is wanted, one partial sum per work-item (a
     * block of consecutive rows), which saves writing and re-reading the row
     * losses. */
    const int groups = plan->group_scan;
    size_t rows_per_item = 1, items = rows;
    if (!groups && plan->row_items) {
        rows_per_item = (rows + plan->row_items - 1) / plan->row_items;
        items = (rows + rows_per_item - 1) / rows_per_item;
    }
    const size_t summed = groups ? rows : items;
    cl_mem row_loss = b->loss, partial = NULL, sums = NULL;
    if (reduce) {
        if ((st = wl_scratch(c, WL_SCRATCH_ROW_LOSS, summed * sizeof(float), "the row losses", &sums)))
            return st;
        row_loss = groups ? sums : NULL;
        partial = groups ? NULL : sums;
    }

    /* Launch shape. group: one work-group per row, wide enough for one chunk
     * of the row (at most the kernel's largest group). row: one work-item per
     * block of rows_per_item rows; on CPUs a work-group of one item, so each
     * is a plain loop (local 0: the runtime chooses, one row per item).
     * Launched in slices that keep the global size in range. */
    const int kernel = groups ? WL_KERNEL_SCAN_GROUPS : WL_KERNEL_SCAN_ROWS;
    size_t width = 1, local = plan->row_items ? 1 : 0;
    if (groups) {
        const size_t max_group = wl_kernel_group(c, kernel, plan->max_group);
        const size_t lanes = (negatives + (size_t)plan->vector_width - 1) / (size_t)plan->vector_width;
        width = max_group < 32 ? max_group : 32;
        while (width < lanes && width * 2 <= max_group)
            width *= 2;
        local = width;
    }
    const size_t units = groups ? rows : items, rows_per_unit = groups ? 1 : rows_per_item;
    size_t units_per_launch = ((size_t)1 << 30) / width;
    if (local && units_per_launch > plan->max_groups)
        units_per_launch = plan->max_groups; /* each unit is a work-group */
    for (size_t first = 0; first < units; first += units_per_launch) {
        const size_t n = units - first < units_per_launch ? units - first : units_per_launch;
        const cl_ulong base64 = (cl_ulong)first * rows_per_unit, per_unit = rows_per_unit;
        const wl_arg args[] = {WL_ARG(rows64),      WL_ARG(negatives64), WL_ARG(o->margin),   WL_ARG(b->pos),
                               WL_ARG(neg),         WL_ARG(weights),     WL_ARG(scale),       WL_ARG(row_loss),
                               WL_ARG(b->grad_pos), WL_ARG(b->grad_neg), WL_ARG(b->offender), WL_ARG(base64),
                               WL_ARG(per_unit),    WL_ARG(partial)};
        const wl_launch l = {kernel, n * width, local, args, groups ? 12 : 14};
        if ((st = wl_enqueue_kernel(ch, &l)))
            return st;
    }
    if (!reduce)
        return WL_SUCCESS;
    /* a long sum gets the widest group: no work-item loops over more than
     * 4096 values where the plan allows (llvmpipe stops longer loops) */
    size_t reduce_group = plan->reduce_group;
    while (summed > reduce_group * 4096 && reduce_group * 2 <= plan->max_group)
        reduce_group *= 2;
    while (reduce_group > 1 &&
           (reduce_group > wl_kernel_group(c, WL_KERNEL_REDUCE_SUM, reduce_group) ||
            reduce_group * sizeof(float) + c->kernel_local_mem[WL_KERNEL_REDUCE_SUM] > plan->local_mem))
        reduce_group /= 2;
    const cl_ulong summed64 = summed;
    /* the row scan's partials are scaled already; the group scan's row losses are not */
    const float sum_scale = groups ? scale : 1.0f;
    const wl_arg args[] = {WL_ARG(summed64), WL_ARG(sums), WL_ARG(sum_scale), WL_ARG(b->loss),
                           WL_ARG_LOCAL(reduce_group * sizeof(float))};
    const wl_launch l = {WL_KERNEL_REDUCE_SUM, reduce_group, reduce_group, args, 5};
    return wl_enqueue_kernel(ch, &l);
}

wl_status wl_loss_cl(wl_context *c, const wl_loss_options *o, size_t rows, size_t negatives, cl_mem pos, cl_mem neg,
                     cl_mem loss, cl_mem grad_pos, cl_mem grad_neg, cl_mem offender, cl_uint num_wait,
                     const cl_event *wait, cl_event *done)
{
    if (!c)
        return WL_ERROR_INVALID_ARGUMENT;
    if (done)
        *done = NULL;
    wl_status st = wl_loss_check_options(c, o, rows, negatives);
    if (st != WL_SUCCESS)
        return st;
    if (num_wait && !wait)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "num_wait is %u but wait is NULL", (unsigned)num_wait);
    const size_t loss_count = o->reduction == WL_REDUCE_NONE ? rows : 1;
    const size_t scores = rows * negatives;
    if (!loss)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "loss is NULL");
    if (loss_count && (st = wl_check_buffer(c, loss, loss_count * sizeof(float), "loss")))
        return st;
    if (rows && !pos)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "pos is NULL but rows is %zu", rows);
    if (scores && !neg)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "neg is NULL but rows x negatives is %zu", scores);
    if (rows && (st = wl_check_buffer(c, pos, rows * sizeof(float), "pos")))
        return st;
    if (scores && (st = wl_check_buffer(c, neg, scores * sizeof(float), "neg")))
        return st;
    if (rows && grad_pos && (st = wl_check_buffer(c, grad_pos, rows * sizeof(float), "grad_pos")))
        return st;
    if (scores && grad_neg && (st = wl_check_buffer(c, grad_neg, scores * sizeof(float), "grad_neg")))
        return st;
    if (rows && offender && (st = wl_check_buffer(c, offender, rows * sizeof(int32_t), "offender")))
        return st;
    if (!scores)
        grad_neg = NULL; /* nothing to write, and the buffer may be absent */

    wl_chain ch;
    if ((st = wl_chain_start(&ch, c, num_wait, wait)) != WL_SUCCESS)
        return st;
    if (o->check_finite && rows) {
        cl_uint bad = UINT32_MAX;
        st = find_nonfinite(&ch, rows, negatives, pos, neg, &bad);
        if (st == WL_SUCCESS && bad != UINT32_MAX)
            st = wl_fail(c, WL_ERROR_NONFINITE, "row %u has a NaN or Inf score (check_finite is on)", bad);
    }
    if (st == WL_SUCCESS)
        if (st == WL_SUCCESS) {
            const loss_buffers b = {pos, neg, loss, grad_pos, grad_neg, offender};
            st = run(&ch, o, rows, negatives, &b, mean_scale(o, rows));
        }
    if (st == WL_SUCCESS || ch.last)
        wl_chain_finish(&ch, st == WL_SUCCESS ? done : NULL);
    wl_chain_end(&ch);
    return st;
}

/* The first row of host input with a NaN or Inf, or rows if none. */
static size_t first_nonfinite_row(size_t rows, size_t negatives, const float *pos, const float *neg)
{
    for (size_t b = 0; b < rows; ++b) {
        if (!isfinite(pos[b]))
            return b;
        for (size_t j = 0; j < negatives; ++j)
            if (!isfinite(neg[b * negatives + j]))
                return b;
    }
    return rows;
}

static wl_status loss_rows(wl_context *c, const wl_loss_options *o, size_t rows, size_t negatives, const float *pos,
                           const float *neg, float *loss, float *grad_pos, float *grad_neg, int32_t *offender,
                           float scale);

wl_status wl_loss(wl_context *c, const wl_loss_options *o, size_t rows, size_t negatives, const float *pos,
                  const float *neg, float *loss, float *grad_pos, float *grad_neg, int32_t *offender)
{
    if (!c)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_status st = wl_loss_check_options(c, o, rows, negatives);
    if (st != WL_SUCCESS)
        return st;
    const size_t scores = rows * negatives;
    if (!loss)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "loss is NULL");
    if (rows && !pos)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "pos is NULL but rows is %zu", rows);
    if (scores && !neg)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "neg is NULL but rows x negatives is %zu", scores);
    if (o->check_finite) {
        const size_t bad = first_nonfinite_row(rows, negatives, pos, neg);
        if (bad < rows)
            return wl_fail(c, WL_ERROR_NONFINITE, "row %zu has a NaN or Inf score (check_finite is on)", bad);
    }
    if (rows == 0) {
        if (o->reduction != WL_REDUCE_NONE)
            loss[0] = 0.0f;
        return WL_SUCCESS;
    }

    /* Rows x negatives beyond the device's largest allocation: chunks of
     * rows that fit, with the mean's factor of all rows; the chunks' (scaled)
     * sums are added on the host in double. */
    const size_t row_bytes = (negatives ? negatives : 1) * sizeof(float);
    if (row_bytes > c->max_alloc)
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY,
                       "a row of %zu negatives needs %zu bytes; the device's largest allocation is %llu bytes",
                       negatives, row_bytes, (unsigned long long)c->max_alloc);
    const size_t chunk = c->max_alloc / row_bytes < rows ? (size_t)(c->max_alloc / row_bytes) : rows;
    const float scale = mean_scale(o, rows);
    if (chunk == rows)
        return loss_rows(c, o, rows, negatives, pos, neg, loss, grad_pos, grad_neg, offender, scale);
    const int reduce = o->reduction != WL_REDUCE_NONE;
    double sum = 0.0;
    for (size_t first = 0; first < rows && st == WL_SUCCESS; first += chunk) {
        const size_t n = rows - first < chunk ? rows - first : chunk;
        float part = 0.0f;
        st = loss_rows(c, o, n, negatives, pos + first, neg ? neg + first * negatives : NULL,
                       reduce ? &part : loss + first, grad_pos ? grad_pos + first : NULL,
                       grad_neg ? grad_neg + first * negatives : NULL, offender ? offender + first : NULL, scale);
        sum += part;
    }
    if (st == WL_SUCCESS && reduce)
        loss[0] = (float)sum;
    return st;
}

/* wl_loss on rows that fit the device's allocations, arguments checked. */
static wl_status loss_rows(wl_context *c, const wl_loss_options *o, size_t rows, size_t negatives, const float *pos,
                           const float *neg, float *loss, float *grad_pos, float *grad_neg, int32_t *offender,
                           float scale)
{
    wl_status st = WL_SUCCESS;
    const size_t scores = rows * negatives;
    const size_t loss_count = o->reduction == WL_REDUCE_NONE ? rows : 1;
    const struct {
        size_t bytes;
        const char *what;
        int wanted;
    } stage[STAGE_COUNT] = {
        [STAGE_POS] = {rows * sizeof(float), "pos", 1},
        [STAGE_NEG] = {scores * sizeof(float), "neg", scores > 0},
        [STAGE_LOSS] = {loss_count * sizeof(float), "loss", 1},
        [STAGE_GRAD_POS] = {rows * sizeof(float), "grad_pos", grad_pos != NULL},
        [STAGE_GRAD_NEG] = {scores * sizeof(float), "grad_neg", grad_neg != NULL && scores > 0},
        [STAGE_OFFENDER] = {rows * sizeof(int32_t), "offender", offender != NULL},
    };
    /* On a CPU device the inputs are read where they are (CL_MEM_USE_HOST_PTR
     * is zero-copy there): no copy of the negatives, often most of the call's
     * time. Elsewhere, or if the runtime refuses the pointer, they are staged
     * (and always with $WARPLOSS_HOST_WRITES, for oclgrind). */
    cl_mem buf[STAGE_COUNT] = {0}, wrapped[2] = {0};
    if ((c->device_type & CL_DEVICE_TYPE_CPU) && !c->host_writes) {
        const void *in[2] = {pos, neg};
        for (int i = STAGE_POS; i <= STAGE_NEG; ++i) {
            cl_int e = CL_SUCCESS;
            if (stage[i].wanted)
                wrapped[i] = clCreateBuffer(c->context, CL_MEM_READ_ONLY | CL_MEM_USE_HOST_PTR, stage[i].bytes,
                                            (void *)in[i], &e);
            if (e != CL_SUCCESS)
                wrapped[i] = NULL;
        }
    }
    for (int i = 0; i < STAGE_COUNT && st == WL_SUCCESS; ++i) {
        if (i <= STAGE_NEG && wrapped[i])
            buf[i] = wrapped[i];
        else if (stage[i].wanted)
            st = wl_scratch(c, (wl_scratch_id)(WL_SCRATCH_STAGE_POS + i), stage[i].bytes, stage[i].what, &buf[i]);
    }

    wl_chain ch;
    if (st == WL_SUCCESS)
        st = wl_chain_start(&ch, c, 0, NULL);
    if (st != WL_SUCCESS) {
        for (int i = STAGE_POS; i <= STAGE_NEG; ++i)
            if (wrapped[i])
                clReleaseMemObject(wrapped[i]);
        return st;
    }
    cl_int err = CL_SUCCESS;
    if (!wrapped[STAGE_POS])
        err = clEnqueueWriteBuffer(c->queue, buf[STAGE_POS], CL_FALSE, 0, stage[STAGE_POS].bytes, pos, ch.num_wait,
                                   ch.num_wait ? ch.wait : NULL, NULL);
    if (err == CL_SUCCESS && scores && !wrapped[STAGE_NEG])
        err = clEnqueueWriteBuffer(c->queue, buf[STAGE_NEG], CL_FALSE, 0, stage[STAGE_NEG].bytes, neg, ch.num_wait,
                                   ch.num_wait ? ch.wait : NULL, NULL);
    if (err != CL_SUCCESS)
        st = wl_fail_cl(c, err, "clEnqueueWriteBuffer");
    /* the context's queue is in order unless the caller gave an out-of-order one; be safe either way */
    if (st == WL_SUCCESS && (err = clEnqueueBarrierWithWaitList(c->queue, 0, NULL, NULL)) != CL_SUCCESS)
        st = wl_fail_cl(c, err, "clEnqueueBarrierWithWaitList");
    if (st == WL_SUCCESS) {
        const loss_buffers b = {buf[STAGE_POS],      buf[STAGE_NEG],      buf[STAGE_LOSS],
                                buf[STAGE_GRAD_POS], buf[STAGE_GRAD_NEG], buf[STAGE_OFFENDER]};
        st = run(&ch, o, rows, negatives, &b, scale);
    }
    void *host[STAGE_COUNT] = {NULL, NULL, loss, grad_pos, grad_neg, offender};
    for (int i = STAGE_LOSS; i <= STAGE_OFFENDER && st == WL_SUCCESS; ++i) {
        if (!buf[i])
            continue;
        err = clEnqueueReadBuffer(c->queue, buf[i], CL_FALSE, 0, stage[i].bytes, host[i], ch.num_wait, ch.wait, NULL);
        if (err != CL_SUCCESS)
            st = wl_fail_cl(c, err, "clEnqueueReadBuffer");
    }
    /* wait for everything enqueued, also after a failure: host memory is in use */
    err = clFinish(c->queue);
    if (st == WL_SUCCESS && err != CL_SUCCESS)
        st = wl_fail_cl(c, err, "clFinish");
    if (c->last)
        clReleaseEvent(c->last);
    c->last = NULL;
    wl_chain_end(&ch);
    for (int i = STAGE_POS; i <= STAGE_NEG; ++i)
        if (wrapped[i])
            clReleaseMemObject(wrapped[i]);
    return st;
}
