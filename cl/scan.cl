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
 *   wl_scan_rows   one work-item per row, a sequential vector loop that stops
 *                  at the offender (CPU devices: one core walks one row);
 *   wl_scan_groups one work-group per row; the group tests a chunk of
 *                  get_local_size(0) * WL_VEC scores at once, keeps the
 *                  smallest stopping index with a local atomic_min, and leaves
 *                  together after the first chunk that has one (GPUs).
 * Launched in chunks of rows starting at row_base.
 */

/* Finish a row once its first stopping index is known (-1: none). */
float wl_row_result(float margin, float p, const global float *n, int first, const global float *weight,
                    float scale, float *loss)
{
    if (first < 0) {
        *loss = isnan(p) ? p : 0.0f;
        return *loss; /* NaN stays visible; otherwise a zero gradient */
    }
    const float w = weight[first];
    *loss = w * ((margin - p) + n[first]);
    return isnan(*loss) ? *loss : w * scale;
}

kernel void wl_scan_rows(ulong rows, ulong negatives, float margin, const global float *pos,
                         const global float *neg, const global float *weight, float scale,
                         global float *row_loss, global float *grad_pos, global float *grad_neg,
                         global int *offender, ulong row_base)
{
    const ulong b = row_base + get_global_id(0);
    if (b >= rows)
        return;
    const float p = pos[b];
    const global float *n = neg + b * negatives;
    int first = -1;
    if (isnan(p)) {
        first = negatives ? 0 : -1;
    } else {
        ulong i = 0;
        for (; i + WL_VEC <= negatives; i += WL_VEC) {
            if (any(wl_stops_vec(margin, WL_VLOAD(0, n + i), p))) {
                first = wl_first_lane(margin, n, i, p);
                break;
            }
        }
        if (first < 0) {
            for (; i < negatives; ++i) {
                if (wl_stops(margin, n[i], p)) {
                    first = (int)i;
                    break;
                }
            }
        }
    }
    float loss;
    const float g = wl_row_result(margin, p, n, first, weight, scale, &loss);
    row_loss[b] = loss;
    if (grad_pos)
        grad_pos[b] = -g;
    if (offender)
        offender[b] = first;
    if (grad_neg)
        wl_scatter_row(grad_neg + b * negatives, negatives, first, g);
}

kernel void wl_scan_groups(ulong rows, ulong negatives, float margin, const global float *pos,
                           const global float *neg, const global float *weight, float scale,
                           global float *row_loss, global float *grad_pos, global float *grad_neg,
                           global int *offender, ulong row_base)
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
    if (lid == 0) {
        row_loss[b] = loss;
        if (grad_pos)
            grad_pos[b] = -g;
        if (offender)
            offender[b] = first;
    }
    if (grad_neg)
        wl_scatter_group(grad_neg + b * negatives, negatives, first, g);
}
