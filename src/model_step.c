/*
 * The WARP step of the embedding model (wl_model_step, wl_model_step_cl):
 * cl/model_step.cl scans each row's candidates and scatters the gradient
 * into fixed-point accumulators, cl/model_update.cl applies L2 and the
 * optimizer to the touched rows. Every launch goes through the enqueue
 * layer; every argument is checked on the host before anything changes.
 *
 * Shared candidates are scored by CLBlast's SGEMM (src/blas.c), a block of
 * batch rows' users against the gathered candidate items, then the scan; the
 * other candidate modes score in the scan with wl_model_score, bit for bit
 * the C reference's. SGEMM sums each dot product in its own order (tiles,
 * vector lanes, fused multiply-adds where the device has them), so its
 * scores may differ from those in the last bits. They are deterministic on a
 * device (CLBlast's kernels and parameters for a device are fixed, and every
 * launch plan uses the same SGEMM), so the tables stay bitwise reproducible.
 *
 * Ids that come from the caller's device buffers (wl_model_step_cl) cannot be
 * checked on the host: the kernels never read out of bounds with them; a row
 * with an out-of-range id contributes nothing, and, when the caller asks for
 * the result, the call reports WL_ERROR_INVALID_ARGUMENT naming the first such
 * row (the other rows' update is applied all the same).
 */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

enum { MODE_ROWS = 0, MODE_SHARED = 1, MODE_SAMPLED = 2 }; /* the scan's candidates (model_step.cl) */

/* The checks both step forms share: loss options and the batch's shape. */
static wl_status check_step(wl_model *m, const wl_loss_options *lo, const void *batch, size_t rows, size_t negatives)
{
    wl_context *c = m->c;
    if (!batch)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "the batch is NULL");
    wl_status st = wl_loss_check_options(c, lo, rows, negatives);
    if (st != WL_SUCCESS)
        return st;
    if (lo->reduction == WL_REDUCE_NONE)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT,
                       "reduction is WL_REDUCE_NONE; a step needs WL_REDUCE_SUM or "
                       "WL_REDUCE_MEAN");
    if (rows && negatives == 0)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "negatives is 0 but rows is %zu; a row needs a candidate", rows);
    return WL_SUCCESS;
}

/* The id buffers of one step. */
typedef struct step_ids {
    cl_mem users, positives, neg; /* neg NULL: sampled */
    size_t offset;                /* element offset of row 0 in users, positives and weights */
    int shared;
    uint64_t sample_key;
    cl_mem weights; /* the rows' sample weights; NULL: all 1 */
} step_ids;

/* Clear what a failed step may have left in the accumulators and flags. */
static wl_status clean(wl_chain *ch, wl_model *m)
{
    const cl_long zero64 = 0;
    const cl_int zero32 = 0;
    wl_status st = WL_SUCCESS;
    for (int t = 0; t < 3 && st == WL_SUCCESS; ++t)
        st = wl_enqueue_fill(ch, m->acc[t], &zero64, sizeof zero64,
                             (size_t)model_table_count(m, (wl_table)t) * sizeof(cl_long));
    for (int t = 0; t < 2 && st == WL_SUCCESS; ++t)
        st = wl_enqueue_fill(ch, m->flag[t], &zero32, sizeof zero32,
                             (size_t)model_table_rows(m, (wl_table)t) * sizeof(cl_int));
    return st;
}

/* Sum the rows' outputs into r; a row the kernel refused is an argument error. */
static wl_status step_result(wl_model *m, size_t rows, const cl_int *out, const cl_uint *control, float scale,
                             wl_step_result *r)
{
    double loss = 0.0;
    uint64_t offenders = 0, scores = 0;
    for (size_t b = 0; b < rows; ++b) {
        const cl_int *row = out + 4 * b;
        if (row[0] >= 0) {
            float row_loss;
            memcpy(&row_loss, &row[2], sizeof row_loss);
            loss += (double)row_loss;
            ++offenders;
        }
        scores += (uint32_t)row[3];
    }
    r->loss = loss * (double)scale;
    r->offenders = offenders;
    r->scores = scores;
    if (control[CONTROL_BAD])
        return wl_fail(m->c, WL_ERROR_INVALID_ARGUMENT,
                       "batch row %u has a user, positive or candidate id out of range (users [0, %u), items [0, "
                       "%u)) or a sample weight that is negative or not finite; that row was left out, the other "
                       "rows were applied",
                       (unsigned)(0xFFFFFFFFu - control[CONTROL_BAD]), (unsigned)m->o.num_users,
                       (unsigned)m->o.num_items);
    return WL_SUCCESS;
}

/* Enqueue a whole step on the chain (arguments checked, rows > 0) and, if r,
 * wait for it and fill r. */
static wl_status step_run(wl_chain *ch, wl_model *m, const wl_loss_options *lo, size_t rows, size_t negatives,
                          const step_ids *ids, wl_step_result *r)
{
    wl_context *c = m->c;
    const wl_model_options *o = &m->o;
    wl_status st;
    cl_mem row_out;
    if ((st = wl_weight_table_ensure(m->c, &m->weights, lo, negatives)) != WL_SUCCESS)
        return st;
    if (rows > SIZE_MAX / (4 * sizeof(cl_int)))
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "%zu rows are too many for one step", rows);
    if ((st = wl_scratch(c, WL_SCRATCH_MODEL_ROWS, rows * 4 * sizeof(cl_int), "the step's row outputs", &row_out)))
        return st;
    if (m->dirty) {
        if ((st = clean(ch, m)) != WL_SUCCESS)
            return st;
        m->dirty = 0;
    }
    const cl_uint zero = 0;
    if ((st = wl_enqueue_fill(ch, m->control, &zero, sizeof zero, CONTROL_COUNT * sizeof zero)) != WL_SUCCESS ||
        (st = model_represent(ch, m)) != WL_SUCCESS)
        return st;
    const cl_mem rep_u = model_rep(m, WL_TABLE_USERS), rep_v = model_rep(m, WL_TABLE_ITEMS),
                 rep_b = model_rep(m, WL_TABLE_ITEM_BIAS);
    /* a side without features, or whose matrix is the identity, scatters to its own rows */
    const struct model_features none = {0};
    const struct model_features *uf = m->feat[0].identity ? &none : &m->feat[0];
    const struct model_features *vf = m->feat[1].identity ? &none : &m->feat[1];

    const float scale = lo->reduction == WL_REDUCE_MEAN ? 1.0f / (float)rows : 1.0f;
    const cl_uint rows32 = (cl_uint)rows, neg32 = (cl_uint)negatives;
    const cl_int item_bias = o->item_bias;
    const cl_int mode = !ids->neg ? MODE_SAMPLED : ids->shared ? MODE_SHARED : MODE_ROWS;
    const cl_ulong offset = ids->offset, key = model_mix64(model_mix64(o->seed) ^ ids->sample_key);
    /* shared candidates: their item rows once, then per block of rows the
     * users' rows and one SGEMM into dots, which the block's scan reads */
    cl_mem item_rows = NULL, user_rows = NULL, dots = NULL;
    size_t block = rows < SCAN_SLICE ? rows : SCAN_SLICE;
    if (mode == MODE_SHARED) {
        if (negatives > SIZE_MAX / sizeof(float) / o->dim)
            return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "%zu shared candidates of %u floats are too many", negatives,
                           (unsigned)o->dim);
        if (!(block = model_gemm_block(m, rows, negatives, "the shared candidates' scores")))
            return WL_ERROR_OUT_OF_MEMORY;
        if ((st = wl_scratch(c, WL_SCRATCH_MODEL_ITEM_ROWS, negatives * o->dim * sizeof(float),
                             "the shared candidates' item rows", &item_rows)) ||
            (st = wl_scratch(c, WL_SCRATCH_MODEL_USER_ROWS, block * o->dim * sizeof(float), "the block's user rows",
                             &user_rows)) ||
            (st = wl_scratch(c, WL_SCRATCH_MODEL_SCORES, block * negatives * sizeof(float),
                             "the shared candidates' scores", &dots)) ||
            (st = model_gather(ch, m, negatives, ids->neg, 0, WL_TABLE_ITEMS, item_rows)))
            return st;
    }
    /* the scan's shape (plan): a work-item per row, or a work-group per row */
    const int groups = c->plan.model_group > 0;
    const size_t local = groups ? wl_kernel_group(c, WL_KERNEL_MODEL_SCAN_GROUPS, c->plan.model_group) : 0;
    if (groups && block > c->plan.max_groups)
        block = c->plan.max_groups; /* a work-group per row */
    for (size_t first = 0; first < rows && st == WL_SUCCESS; first += block) {
        const cl_ulong base = first;
        const size_t n = rows - first < block ? rows - first : block;
        if (dots) {
            st = model_gather(ch, m, n, ids->users, ids->offset + first, WL_TABLE_USERS, user_rows);
            if (st == WL_SUCCESS)
                st = wl_blas_gemm_nt(ch, n, negatives, o->dim, user_rows, item_rows, dots, "shared candidates");
        }
        if (st != WL_SUCCESS)
            break;
        const wl_arg args[] = {WL_ARG(rows32),         WL_ARG(neg32),
                               WL_ARG(o->dim),         WL_ARG(o->num_users),
                               WL_ARG(o->num_items),   WL_ARG(lo->margin),
                               WL_ARG(scale),          WL_ARG(item_bias),
                               WL_ARG(ids->users),     WL_ARG(ids->positives),
                               WL_ARG(ids->neg),       WL_ARG(offset),
                               WL_ARG(mode),           WL_ARG(key),
                               WL_ARG(rep_u),          WL_ARG(rep_v),
                               WL_ARG(rep_b),          WL_ARG(m->known_ptr),
                               WL_ARG(m->known_items), WL_ARG(m->weights.table),
                               WL_ARG(m->acc[0]),      WL_ARG(m->acc[1]),
                               WL_ARG(m->acc[2]),      WL_ARG(m->flag[0]),
                               WL_ARG(m->flag[1]),     WL_ARG(m->touched[0]),
                               WL_ARG(m->touched[1]),  WL_ARG(m->control),
                               WL_ARG(row_out),        WL_ARG(base),
                               WL_ARG(dots),           WL_ARG(ids->weights),
                               WL_ARG(uf->ptr),        WL_ARG(uf->idx),
                               WL_ARG(uf->wts),        WL_ARG(vf->ptr),
                               WL_ARG(vf->idx),        WL_ARG(vf->wts)};
        const wl_launch l = {groups ? WL_KERNEL_MODEL_SCAN_GROUPS : WL_KERNEL_MODEL_SCAN, groups ? n * local : n, local,
                             args, sizeof args / sizeof args[0]};
        st = wl_enqueue_kernel(ch, &l);
    }
    if (st != WL_SUCCESS) {
        m->dirty |= block < rows; /* an earlier block's scan may have run */
        return st;
    }

    /* upper bounds of the touched lists: each row touches one user and two
     * items, each as many rows of the table as its features (one without) */
    const uint64_t u_rows = model_table_rows(m, WL_TABLE_USERS), v_rows = model_table_rows(m, WL_TABLE_ITEMS);
    const uint64_t u_width = uf->ptr ? uf->widest : 1, v_width = vf->ptr ? vf->widest : 1;
    const cl_uint user_slots = (cl_uint)(u_width && rows <= u_rows / u_width ? rows * u_width : u_rows);
    const size_t item_slots = (size_t)(v_width && rows <= v_rows / 2 / v_width ? 2 * rows * v_width : v_rows);
    const cl_float lr = o->learning_rate;
    const wl_arg args[] = {WL_ARG(user_slots),    WL_ARG(o->dim),      WL_ARG(lr),
                           WL_ARG(o->l2_users),   WL_ARG(o->l2_items), WL_ARG(item_bias),
                           WL_ARG(m->table[0]),   WL_ARG(m->table[1]), WL_ARG(m->table[2]),
                           WL_ARG(m->state[0]),   WL_ARG(m->state[1]), WL_ARG(m->state[2]),
                           WL_ARG(m->acc[0]),     WL_ARG(m->acc[1]),   WL_ARG(m->acc[2]),
                           WL_ARG(m->flag[0]),    WL_ARG(m->flag[1]),  WL_ARG(m->touched[0]),
                           WL_ARG(m->touched[1]), WL_ARG(m->control),  WL_ARG(m->changed[0]),
                           WL_ARG(m->changed[1])};
    const wl_launch l = {WL_KERNEL_MODEL_UPDATE, (size_t)user_slots + item_slots, 0, args,
                         sizeof args / sizeof args[0]};
    m->rep_stale = 1; /* the tables change (or a failure leaves them unknown) */
    if ((st = wl_enqueue_kernel(ch, &l)) != WL_SUCCESS) {
        m->dirty = 1; /* the scan ran: its terms wait in the accumulators */
        return st;
    }
    if (!r)
        return WL_SUCCESS;

    /* the result: the row outputs and the counters, summed on the host in double */
    cl_int *out = malloc(rows * 4 * sizeof *out);
    if (!out)
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "out of host memory for %zu row results", rows);
    cl_uint control[CONTROL_COUNT];
    /* both blocking: on an out-of-order queue a non-blocking read could still be running */
    cl_int err = clEnqueueReadBuffer(c->queue, row_out, CL_TRUE, 0, rows * 4 * sizeof *out, out, ch->num_wait, ch->wait,
                                     NULL);
    if (err == CL_SUCCESS)
        err = clEnqueueReadBuffer(c->queue, m->control, CL_TRUE, 0, sizeof control, control, ch->num_wait, ch->wait,
                                  NULL);
    if (err != CL_SUCCESS)
        st = wl_fail_cl(c, err, "clEnqueueReadBuffer(step result)");
    else
        st = step_result(m, rows, out, control, scale, r);
    free(out);
    return st;
}

/* Chain, run and finish one step. */
static wl_status step_enqueue(wl_model *m, const wl_loss_options *lo, size_t rows, size_t negatives,
                              const step_ids *ids, wl_step_result *r, cl_uint num_wait, const cl_event *wait,
                              cl_event *done)
{
    wl_chain ch;
    wl_status st = wl_chain_start(&ch, m->c, num_wait, wait);
    if (st != WL_SUCCESS)
        return st;
    if (rows)
        st = step_run(&ch, m, lo, rows, negatives, ids, r);
    else
        st = wl_enqueue_marker(&ch); /* nothing to do, but done still gets an event */
    /* a failed result (a bad id from device buffers) still enqueued the whole step */
    if (st == WL_SUCCESS || ch.last)
        wl_chain_finish(&ch, st == WL_SUCCESS ? done : NULL);
    wl_chain_end(&ch);
    return st;
}

wl_status wl_model_step(wl_model *m, const wl_loss_options *lo, const wl_batch *b, wl_step_result *r)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_context *c = m->c;
    wl_status st = check_step(m, lo, b, b ? b->rows : 0, b ? b->negatives : 0);
    if (st != WL_SUCCESS)
        return st;
    const size_t rows = b->rows, negatives = b->negatives;
    const size_t neg_count = b->neg_items ? (b->shared_negatives ? negatives : rows * negatives) : 0;
    if (rows && (!b->users || !b->positives))
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s is NULL but rows is %zu", !b->users ? "users" : "positives",
                       rows);
    if ((st = model_check_ids(c, b->users, rows, m->o.num_users, "users")) != WL_SUCCESS ||
        (st = model_check_ids(c, b->positives, rows, m->o.num_items, "positives")) != WL_SUCCESS)
        return st;
    if (rows && b->neg_items && (st = model_check_ids(c, b->neg_items, neg_count, m->o.num_items, "neg_items")))
        return st;
    for (size_t k = 0; b->weights && k < rows; ++k)
        if (!(b->weights[k] >= 0.0f && b->weights[k] <= FLT_MAX))
            return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "weights[%zu] is %g; a sample weight is finite and >= 0", k,
                           (double)b->weights[k]);
    if (r)
        memset(r, 0, sizeof *r);
    if (rows == 0)
        return WL_SUCCESS;

    /* The ids are copied into buffers made for this call (CL_MEM_COPY_HOST_PTR
     * copies at creation): the call need not wait for the device, the caller
     * may reuse its arrays at once, and releasing the buffers after the
     * enqueue is safe (the queued commands keep them alive). */
    step_ids ids = {NULL, NULL, NULL, 0, b->shared_negatives, b->sample_key, NULL};
    st = model_buffer(c, rows * sizeof(int32_t), b->users, "the batch's users", &ids.users);
    if (st == WL_SUCCESS)
        st = model_buffer(c, rows * sizeof(int32_t), b->positives, "the batch's positives", &ids.positives);
    if (st == WL_SUCCESS && b->neg_items)
        st = model_buffer(c, neg_count * sizeof(int32_t), b->neg_items, "the batch's candidates", &ids.neg);
    if (st == WL_SUCCESS && b->weights)
        st = model_buffer(c, rows * sizeof(float), b->weights, "the batch's sample weights", &ids.weights);
    if (st == WL_SUCCESS)
        st = step_enqueue(m, lo, rows, negatives, &ids, r, 0, NULL, NULL);
    model_release(&ids.users);
    model_release(&ids.positives);
    model_release(&ids.neg);
    model_release(&ids.weights);
    return st;
}

wl_status wl_model_step_cl(wl_model *m, const wl_loss_options *lo, const wl_batch_cl *b, wl_step_result *r,
                           cl_uint num_wait, const cl_event *wait, cl_event *done)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    if (done)
        *done = NULL;
    wl_context *c = m->c;
    wl_status st = check_step(m, lo, b, b ? b->rows : 0, b ? b->negatives : 0);
    if (st != WL_SUCCESS)
        return st;
    if (num_wait && !wait)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "num_wait is %u but wait is NULL", (unsigned)num_wait);
    const size_t rows = b->rows, negatives = b->negatives;
    if (rows) {
        if (!b->users || !b->positives)
            return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s is NULL but rows is %zu",
                           !b->users ? "users" : "positives", rows);
        if (b->offset > SIZE_MAX / sizeof(int32_t) - rows)
            return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "offset + rows (%zu + %zu) overflows", b->offset, rows);
        const size_t need = (b->offset + rows) * sizeof(int32_t);
        if ((st = wl_check_buffer(c, b->users, need, "users")) != WL_SUCCESS ||
            (st = wl_check_buffer(c, b->positives, need, "positives")) != WL_SUCCESS ||
            (b->weights && (st = wl_check_buffer(c, b->weights, need, "weights")) != WL_SUCCESS))
            return st;
        if (b->neg_items) {
            const size_t neg_rows = b->shared_negatives ? 1 : b->offset + rows;
            if (neg_rows > SIZE_MAX / sizeof(int32_t) / negatives)
                return wl_fail(c, WL_ERROR_INVALID_ARGUMENT,
                               "(offset + rows) x negatives ((%zu + %zu) x %zu) overflows", b->offset, rows, negatives);
            if ((st = wl_check_buffer(c, b->neg_items, neg_rows * negatives * sizeof(int32_t), "neg_items")))
                return st;
        }
    }
    if (r)
        memset(r, 0, sizeof *r);
    const step_ids ids = {b->users,      b->positives, b->neg_items, b->offset, b->shared_negatives,
                          b->sample_key, b->weights};
    return step_enqueue(m, lo, rows, negatives, &ids, r, num_wait, wait, done);
}
