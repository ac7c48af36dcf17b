/*
 * A model step, part 1 (scan and gradient scatter), in two launch shapes that
 * compute the same bits (the launch plan chooses, src/plan.c):
 *   wl_model_scan         one work-item per batch row, rows row_base +
 *                         get_global_id(0) (CPUs: a plain loop per row);
 *   wl_model_scan_groups  one work-group per row: its work-items score a
 *                         chunk of consecutive candidates at once, one each,
 *                         and the first offender of the chunk is found with a
 *                         local atomic_min; the next chunk is scored only if
 *                         there is none (GPUs: the first offender of all
 *                         candidates compared at once, with an early exit per
 *                         chunk). The work-group then scatters the gradient,
 *                         its work-items sharing the dimensions.
 *
 * The row gathers U[u], scores its positive i, then its candidates in order
 * (the row's own ids, the shared ids, or sampled with wl_sample_item),
 * skipping known positives (they count as trials but never stop), and stops
 * at the first candidate c with ((margin + s_c) - s_i) > 0 or NaN, the loss's
 * rule; the row scan scores two candidates at a time where it can (the same
 * bits). An early stop costs a few dot products. A row that stopped adds its
 * gradient terms to the 64-bit fixed-point accumulators (value * 2^32,
 * rounded to nearest, model_common.cl's wl_acc_add): integer sums are exact
 * and commutative, so the totals do not depend on the order the rows arrive
 * in. Each row of U or V that receives a term is claimed once (flag) and
 * appended to its touched list, which wl_model_update (model_update.cl) walks.
 *
 * The hybrid model (src/model_features.c): U, V and bias are then the
 * representations p, q, b, and a side with a feature matrix (uptr, iptr not
 * NULL) scatters each term to every feature of the row, times its weight:
 * the accumulators, flags and touched lists are the feature tables'. A side
 * without one (NULL) is its own feature, weight 1: today's bits.
 *
 * sample_w (NULL: all 1) weights each row's loss and gradient; a row whose
 * weight is negative or not finite is refused like an id out of range, and a
 * row of weight 0 is scanned but adds nothing.
 *
 * With dot not NULL (shared candidates) the candidates' dot products come
 * from CLBlast's SGEMM of the launch's block of rows (src/model.c):
 * s_c = dot[(b - row_base) * negatives + j] + b[c]; the positive's score is
 * always wl_model_score's, and a candidate equal to the positive scores s_i.
 *
 * row_out[4 b ..] = {stop index or -1, g (bits), row loss (bits), trials}.
 * control[0], control[1]: touched users, items; control[2]: 0xFFFFFFFF - the
 * first row with an id out of range (0: none). Ids are never trusted (they may
 * come from the caller's device buffers): an out-of-range user, positive or
 * candidate reached by the scan makes the row contribute nothing and is
 * reported there; nothing is read out of bounds.
 */

/* Add t to a fixed-point accumulator (2^32 units per 1.0; model_common.cl). */
void wl_fixed_add(global wl_acc *acc, ulong idx, float t) { wl_acc_add(acc, idx, convert_long_sat_rte(t * 0x1p32f)); }

/* Claim a row for the update (once per step) and append it to the touched list. */
void wl_touch(global int *flag, global uint *touched, global uint *count, uint row)
{
    if (atomic_xchg(&flag[row], 1) == 0)
        touched[atomic_inc(count)] = row;
}

/* Add t to element d of the accumulator rows of row's features, times their
 * weights (ptr NULL: the row is its own feature, weight 1). */
void wl_feature_add(global wl_acc *acc, uint dim, uint d, const global ulong *ptr, const global int *idx,
                    const global float *wts, int row, float t)
{
    if (!ptr) {
        wl_fixed_add(acc, (ulong)row * dim + d, t);
        return;
    }
    for (ulong k = ptr[row]; k < ptr[row + 1]; ++k)
        wl_fixed_add(acc, (ulong)idx[k] * dim + d, wts[k] * t);
}

/* Claim row's features (ptr NULL: the row itself). */
void wl_feature_touch(global int *flag, global uint *touched, global uint *count, const global ulong *ptr,
                      const global int *idx, int row)
{
    if (!ptr) {
        wl_touch(flag, touched, count, (uint)row);
        return;
    }
    for (ulong k = ptr[row]; k < ptr[row + 1]; ++k)
        wl_touch(flag, touched, count, (uint)idx[k]);
}

/* The gradient terms of a row that stopped at candidate c, dimensions
 * first, first + step, ..., and (first == 0) the bias terms, the touched
 * rows and nothing else. */
void wl_model_scatter(uint dim, int item_bias, int u, int i, int c, float g, const global float *U,
                      const global float *V, global wl_acc *acc_u, global wl_acc *acc_v, global wl_acc *acc_b,
                      global int *flag_u, global int *flag_v, global uint *touched_u, global uint *touched_v,
                      global uint *control, uint first, uint step, const global ulong *uptr, const global int *uidx,
                      const global float *uwts, const global ulong *iptr, const global int *iidx,
                      const global float *iwts)
{
    const global float *user_row = U + (ulong)u * dim, *vi = V + (ulong)i * dim, *vc = V + (ulong)c * dim;
    for (uint d = first; d < dim; d += step) {
        wl_feature_add(acc_u, dim, d, uptr, uidx, uwts, u, g * (vc[d] - vi[d]));
        const float t = g * user_row[d];
        wl_feature_add(acc_v, dim, d, iptr, iidx, iwts, i, -t);
        wl_feature_add(acc_v, dim, d, iptr, iidx, iwts, c, t);
    }
    if (first)
        return;
    if (item_bias) {
        wl_feature_add(acc_b, 1, 0, iptr, iidx, iwts, i, -g);
        wl_feature_add(acc_b, 1, 0, iptr, iidx, iwts, c, g);
    }
    wl_feature_touch(flag_u, touched_u, &control[0], uptr, uidx, u);
    wl_feature_touch(flag_v, touched_v, &control[1], iptr, iidx, i);
    wl_feature_touch(flag_v, touched_v, &control[1], iptr, iidx, c);
}

/* Row b's sample weight (1 without weights), and whether it is refused. */
float wl_sample_weight(const global float *sample_w, ulong idx, int *bad)
{
    if (!sample_w)
        return 1.0f;
    const float w = sample_w[idx];
    if (!(w >= 0.0f && w <= FLT_MAX))
        *bad = 1;
    return w;
}

/* The id of candidate j of row b (not checked: the callers check the range). */
int wl_model_candidate(int mode, const global int *neg, ulong offset, ulong b, uint j, uint negatives, ulong key, int i,
                       uint num_items)
{
    if (mode == 2)
        return (int)wl_sample_item(key, b, j, (uint)i, num_items);
    return mode == 0 ? neg[(offset + b) * negatives + j] : neg[j];
}

/* mode: 0 each row's own candidates, neg[(offset + b) * negatives + j];
 * 1 shared, neg[j]; 2 sampled (neg unused). */
kernel void wl_model_scan(uint rows, uint negatives, uint dim, uint num_users, uint num_items, float margin,
                          float scale, int item_bias, const global int *users, const global int *positives,
                          const global int *neg, ulong offset, int mode, ulong key, const global float *U,
                          const global float *V, const global float *bias, const global ulong *known_ptr,
                          const global int *known_items, const global float *weight, global wl_acc *acc_u,
                          global wl_acc *acc_v, global wl_acc *acc_b, global int *flag_u, global int *flag_v,
                          global uint *touched_u, global uint *touched_v, global uint *control, global int *row_out,
                          ulong row_base, const global float *dot, const global float *sample_w,
                          const global ulong *uptr, const global int *uidx, const global float *uwts,
                          const global ulong *iptr, const global int *iidx, const global float *iwts)
{
    const ulong b = row_base + get_global_id(0);
    if (b >= rows)
        return;
    const int u = users[offset + b], i = positives[offset + b];
    int bad = u < 0 || (uint)u >= num_users || i < 0 || (uint)i >= num_items;
    const float sw = wl_sample_weight(sample_w, offset + b, &bad);
    int stop = -1, c = -1;
    float s_i = 0.0f, s_c = 0.0f;
    if (!bad) {
        const global float *user_row = U + (ulong)u * dim;
        s_i = wl_model_score(user_row, V + (ulong)i * dim, bias[i], dim);
        ulong known_from = 0, known_to = 0;
        if (known_ptr) {
            known_from = known_ptr[u];
            known_to = known_ptr[u + 1];
        }
        for (uint j = 0; j < negatives; ++j) {
            const int x = wl_model_candidate(mode, neg, offset, b, j, negatives, key, i, num_items);
            if (x < 0 || (uint)x >= num_items) {
                bad = 1;
                break;
            }
            if (known_from < known_to && wl_is_known(known_items, known_from, known_to, x))
                continue;
            /* two candidates at once when the next one is scored too: the
             * scan waits on memory (random rows of V), and two independent
             * rows in flight halve the waits; the same bits as one by one */
            if (!dot && j + 1 < negatives) {
                const int y = wl_model_candidate(mode, neg, offset, b, j + 1, negatives, key, i, num_items);
                if (y >= 0 && (uint)y < num_items &&
                    !(known_from < known_to && wl_is_known(known_items, known_from, known_to, y))) {
                    const float2 s2 = wl_model_score2(user_row, V + (ulong)x * dim, V + (ulong)y * dim, bias[x],
                                                      bias[y], dim);
                    if (!(((margin + s2.x) - s_i) <= 0.0f)) {
                        stop = (int)j, c = x, s_c = s2.x;
                        break;
                    }
                    if (!(((margin + s2.y) - s_i) <= 0.0f)) {
                        stop = (int)j + 1, c = y, s_c = s2.y;
                        break;
                    }
                    ++j;
                    continue;
                }
            }
            /* the positive itself as a candidate scores s_i exactly (SGEMM's sum may differ in the last bits) */
            const float s = x == i ? s_i
                            : dot  ? dot[(b - row_base) * negatives + j] + bias[x]
                                   : wl_model_score(user_row, V + (ulong)x * dim, bias[x], dim);
            if (!(((margin + s) - s_i) <= 0.0f)) {
                stop = (int)j;
                c = x;
                s_c = s;
                break;
            }
        }
    }
    if (bad) {
        stop = -1;
        atomic_max(&control[2], 0xFFFFFFFFu - (uint)b);
    }
    float g = 0.0f, loss = 0.0f;
    uint trials = bad ? 0u : negatives;
    if (stop >= 0) {
        const float w = weight[stop] * sw;
        trials = (uint)stop + 1u;
        loss = w * ((margin - s_i) + s_c);
        g = w * scale;
        if (sw != 0.0f)
            wl_model_scatter(dim, item_bias, u, i, c, g, U, V, acc_u, acc_v, acc_b, flag_u, flag_v, touched_u,
                             touched_v, control, 0, 1, uptr, uidx, uwts, iptr, iidx, iwts);
    }
    row_out[4 * b + 0] = stop;
    row_out[4 * b + 1] = as_int(g);
    row_out[4 * b + 2] = as_int(loss);
    row_out[4 * b + 3] = (int)trials;
}

/* The same scan, one work-group per row: rows row_base + get_group_id(0). */
kernel void wl_model_scan_groups(uint rows, uint negatives, uint dim, uint num_users, uint num_items, float margin,
                                 float scale, int item_bias, const global int *users, const global int *positives,
                                 const global int *neg, ulong offset, int mode, ulong key, const global float *U,
                                 const global float *V, const global float *bias, const global ulong *known_ptr,
                                 const global int *known_items, const global float *weight, global wl_acc *acc_u,
                                 global wl_acc *acc_v, global wl_acc *acc_b, global int *flag_u, global int *flag_v,
                                 global uint *touched_u, global uint *touched_v, global uint *control,
                                 global int *row_out, ulong row_base, const global float *dot,
                                 const global float *sample_w, const global ulong *uptr, const global int *uidx,
                                 const global float *uwts, const global ulong *iptr, const global int *iidx,
                                 const global float *iwts)
{
    local int first_stop, first_bad;
    local float s_i_shared, s_c_shared;
    local int c_shared;
    const ulong b = row_base + get_group_id(0);
    const uint lid = (uint)get_local_id(0), group = (uint)get_local_size(0);
    if (b >= rows) /* the whole group leaves alike */
        return;
    const int u = users[offset + b], i = positives[offset + b];
    int ids_bad = u < 0 || (uint)u >= num_users || i < 0 || (uint)i >= num_items;
    const float sw = wl_sample_weight(sample_w, offset + b, &ids_bad);
    const global float *user_row = U + (ulong)(ids_bad ? 0 : u) * dim;
    if (lid == 0) {
        first_stop = (int)negatives;
        first_bad = ids_bad ? -1 : (int)negatives;
        s_i_shared = ids_bad ? 0.0f : wl_model_score(user_row, V + (ulong)i * dim, bias[i], dim);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const float s_i = s_i_shared;
    ulong known_from = 0, known_to = 0;
    if (known_ptr && !ids_bad) {
        known_from = known_ptr[u];
        known_to = known_ptr[u + 1];
    }
    /* chunks of `group` candidates until one holds a stop or a bad id; each
     * work-item reads the verdict between two barriers, so the next chunk's
     * atomics never race with a slower work-item's read */
    for (uint j0 = 0; !ids_bad && j0 < negatives; j0 += group) {
        const uint j = j0 + lid;
        if (j < negatives) {
            const int x = wl_model_candidate(mode, neg, offset, b, j, negatives, key, i, num_items);
            if (x < 0 || (uint)x >= num_items) {
                atomic_min(&first_bad, (int)j);
            } else if (!(known_from < known_to && wl_is_known(known_items, known_from, known_to, x))) {
                const float s = x == i ? s_i
                                : dot  ? dot[(b - row_base) * negatives + j] + bias[x]
                                       : wl_model_score(user_row, V + (ulong)x * dim, bias[x], dim);
                if (!(((margin + s) - s_i) <= 0.0f))
                    atomic_min(&first_stop, (int)j);
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        const int found = first_stop < (int)negatives || first_bad < (int)negatives;
        barrier(CLK_LOCAL_MEM_FENCE);
        if (found)
            break;
    }
    /* the row as the row scan sees it: a bad id before the first stop makes the row bad */
    const int bad = first_bad < first_stop;
    const int stop = bad || first_stop == (int)negatives ? -1 : first_stop;
    if (stop >= 0 && lid == (uint)stop % group) {
        /* the work-item that scored the stop shares its candidate and score */
        const int x = wl_model_candidate(mode, neg, offset, b, (uint)stop, negatives, key, i, num_items);
        c_shared = x;
        s_c_shared = x == i ? s_i
                     : dot  ? dot[(b - row_base) * negatives + (uint)stop] + bias[x]
                            : wl_model_score(user_row, V + (ulong)x * dim, bias[x], dim);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    float g = 0.0f, loss = 0.0f;
    if (stop >= 0) {
        const float w = weight[stop] * sw;
        loss = w * ((margin - s_i) + s_c_shared);
        g = w * scale;
        if (sw != 0.0f)
            wl_model_scatter(dim, item_bias, u, i, c_shared, g, U, V, acc_u, acc_v, acc_b, flag_u, flag_v, touched_u,
                             touched_v, control, lid, group, uptr, uidx, uwts, iptr, iidx, iwts);
    }
    if (lid == 0) {
        if (bad)
            atomic_max(&control[2], 0xFFFFFFFFu - (uint)b);
        row_out[4 * b + 0] = stop;
        row_out[4 * b + 1] = as_int(g);
        row_out[4 * b + 2] = as_int(loss);
        row_out[4 * b + 3] = bad ? 0 : stop >= 0 ? stop + 1 : (int)negatives;
    }
}
