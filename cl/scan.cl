/*
 * First-offender scan: for each row find the first negative that stops the
 * scan (compare.cl), look up its rank weight, and write the row's loss, the
 * gradient of the positive, the offender index and (if asked) the row of the
 * dense negative gradient (scatter.cl). Score comparison, scan and scatter
 * are fused: every score is read at most once and rows that stop early read
 * nothing past their offender.
 *
 * weight[j] is the rank weight for an offender at index j (trials j + 1),
 * computed on the host. scale is 1, or 1/rows for the mean. row_loss gets the
 * unscaled row loss. grad_pos, grad_neg and offender may be NULL.
 *
 * Two launch shapes with identical results:
 *   wl_scan_rows   one work-item per block of consecutive rows (one row per
 *                  item on GPUs), a sequential vector loop per row that stops
 *                  at the offender (CPU devices: one core walks the rows);
 *   wl_scan_groups one work-group per row; the group tests a chunk of
 *                  get_local_size(0) * WL_VEC scores at once, keeps the
 *                  smallest stopping index with a local atomic_min, and leaves
 *                  together after the first chunk that has one (GPUs).
 * Launched in chunks of rows starting at row_base.
 */

/* Finish a row once its first stopping index is known (-1: none). */
float wl_row_result(float margin, float p, const global float *n, int first, const global float *weight, float scale,
                    float *loss)
{
    if (first < 0) {
        *loss = isnan(p) ? p : 0.0f;
        return *loss; /* NaN stays visible; otherwise a zero gradient */
    }
    const float w = weight[first];
    *loss = w * ((margin - p) + n[first]);
    return isnan(*loss) ? *loss : w * scale;
}

/* Row b's per-row outputs, each only where the caller asked for it. */
void wl_store_row(ulong b, float loss, float g, int first, global float *row_loss, global float *grad_pos,
                  global int *offender)
{
    if (row_loss)
        row_loss[b] = loss;
    if (grad_pos)
        grad_pos[b] = -g;
    if (offender)
        offender[b] = first;
}

/* The first stopping index of one row (-1: none), sequentially: WL_ROW_UNROLL
 * vectors per step so the loop tests one branch per WL_ROW_UNROLL * WL_VEC
 * scores, then single vectors, then scalars for the tail. */
int wl_scan_one_row(float margin, float p, const global float *n, ulong negatives)
{
    if (isnan(p))
        return negatives ? 0 : -1;
    ulong i = 0;
#if WL_ROW_UNROLL > 1
    for (; i + WL_ROW_UNROLL * WL_VEC <= negatives; i += WL_ROW_UNROLL * WL_VEC) {
        WL_INTV stop = wl_stops_vec(margin, WL_VLOAD(0, n + i), p);
        for (int u = 1; u < WL_ROW_UNROLL; ++u)
            stop |= wl_stops_vec(margin, WL_VLOAD(0, n + i + u * WL_VEC), p);
        if (any(stop))
            return wl_first_in(margin, n, i, WL_ROW_UNROLL * WL_VEC, p);
    }
#endif
    for (; i + WL_VEC <= negatives; i += WL_VEC)
        if (any(wl_stops_vec(margin, WL_VLOAD(0, n + i), p)))
            return wl_first_lane(margin, n, i, p);
    for (; i < negatives; ++i)
        if (wl_stops(margin, n[i], p))
            return (int)i;
    return -1;
}

/*
 * wl_scan_rows: work-item g scans rows row_base + g * rows_per_item onwards,
 * rows_per_item of them (the last item fewer), one after the other. On a CPU
 * the host launches a few items per core with a work-group of one, so each
 * item is a plain sequential loop (no work-item loop around it). row_loss may
 * be NULL when only the sum is wanted: then each item writes the sum of its
 * rows' losses times scale, in row order, to its slot of partial (NULL
 * otherwise), and wl_reduce_sum adds the partials.
 */
kernel void wl_scan_rows(ulong rows, ulong negatives, float margin, const global float *pos, const global float *neg,
                         const global float *weight, float scale, global float *row_loss, global float *grad_pos,
                         global float *grad_neg, global int *offender, ulong row_base, ulong rows_per_item,
                         global float *partial)
{
    const ulong item = get_global_id(0);
    const ulong begin = row_base + item * rows_per_item;
    if (begin >= rows)
        return;
    const ulong end = rows - begin < rows_per_item ? rows : begin + rows_per_item;
    float sum = 0.0f, kahan = 0.0f, carry = 0.0f; /* plain and compensated sums of the losses */
    for (ulong b = begin; b < end; ++b) {
        const float p = pos[b];
        const global float *n = neg + b * negatives;
        WL_PREFETCH_ROW(n + WL_PREFETCH_ROWS * negatives, b + WL_PREFETCH_ROWS < end);
        const int first = wl_scan_one_row(margin, p, n, negatives);
        float loss;
        const float g = wl_row_result(margin, p, n, first, weight, scale, &loss);
        if (partial) {
            const float term = loss * scale; /* the mean is scaled before summing */
            sum += term;
            const float y = term - carry, t = kahan + y;
            carry = (t - kahan) - y;
            kahan = t;
        }
        wl_store_row(b, loss, g, first, row_loss, grad_pos, offender);
        if (grad_neg)
            wl_scatter_row(grad_neg + b * negatives, negatives, first, g);
    }
    /* a block can be long: the compensated sum keeps it as accurate as a
     * tree; an Inf or NaN row (the plain sum is not finite) passes as it is */
    if (partial)
        partial[begin / rows_per_item] = isfinite(sum) ? kahan : sum; /* row_base: a multiple of rows_per_item */
}

kernel void wl_scan_groups(ulong rows, ulong negatives, float margin, const global float *pos, const global float *neg,
                           const global float *weight, float scale, global float *row_loss, global float *grad_pos,
                           global float *grad_neg, global int *offender, ulong row_base)
{
    local int shared_first;
    const ulong b = row_base + get_group_id(0);
    if (b >= rows)
        return; /* the same for the whole group, so no barrier is skipped by some only */
    const ulong lid = get_local_id(0);
    const ulong chunk = get_local_size(0) * WL_VEC;
    const float p = pos[b];
    const global float *n = neg + b * negatives;
    if (lid == 0)
        shared_first = INT_MAX;
    barrier(CLK_LOCAL_MEM_FENCE);
    int first = -1;
    if (isnan(p)) {
        first = negatives ? 0 : -1;
    } else {
        for (ulong base = 0; base < negatives; base += chunk) {
            const ulong i = base + lid * WL_VEC;
            int hit = INT_MAX;
            if (i + WL_VEC <= negatives) {
                if (any(wl_stops_vec(margin, WL_VLOAD(0, n + i), p)))
                    hit = wl_first_lane(margin, n, i, p);
            } else {
                for (ulong k = i; k < negatives; ++k) {
                    if (wl_stops(margin, n[k], p)) {
                        hit = (int)k;
                        break;
                    }
                }
            }
            if (hit != INT_MAX)
                atomic_min(&shared_first, hit);
            barrier(CLK_LOCAL_MEM_FENCE);
            const int found = shared_first;
            /* nobody may lower shared_first again before everyone has read it */
            barrier(CLK_LOCAL_MEM_FENCE);
            if (found != INT_MAX) {
                first = found;
                break;
            }
        }
    }
    float loss;
    const float g = wl_row_result(margin, p, n, first, weight, scale, &loss);
    if (lid == 0)
        wl_store_row(b, loss, g, first, row_loss, grad_pos, offender);
    if (grad_neg)
        wl_scatter_group(grad_neg + b * negatives, negatives, first, g);
}
