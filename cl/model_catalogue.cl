/*
 * The model's catalogue queries, on a block of users (the host walks the
 * users in blocks whose scores fit one allocation). The block's dot products
 * dot[r * num_items + x] = dot(U[users[r]], V[x]) come from CLBlast's SGEMM
 * (src/model.c); the item's bias is added here, last, as in wl_model_score.
 *   wl_model_top_k   one work-item per user: its k best items, best first,
 *                    ties to the lower index (items are visited in order and
 *                    an equal score never passes an earlier one), known
 *                    positives left out if exclude_known, the rest of the row
 *                    padded with -1 and -INFINITY; NaN scores rank below all;
 *   wl_model_rank    one work-item per (user, item) pair: how many other items
 *                    score strictly higher (known positives left out if
 *                    exclude_known);
 *   wl_model_evaluate one work-group per user with held-out items: the rank of
 *                    each held-out item as wl_model_rank counts it (the
 *                    work-items share the catalogue), then the user's counts
 *                    for the metrics (src/model_catalogue.c turns them into
 *                    LightFM's precision@k, recall@k, AUC and MRR).
 * Known positives are walked alongside the items (both ascending).
 */

/* a ranks before b (NaN below every number) */
int wl_better(float a, float b) { return a > b || (isnan(b) && !isnan(a)); }

kernel void wl_model_top_k(uint n, uint num_items, uint k, const global int *users, const global float *dot,
                           const global float *bias, const global ulong *known_ptr, const global int *known_items,
                           int exclude_known, global int *top_items, global float *top_scores)
{
    const uint r = (uint)get_global_id(0);
    if (r >= n)
        return;
    global int *ti = top_items + (ulong)r * k;
    global float *ts = top_scores + (ulong)r * k;
    const global float *row = dot + (ulong)r * num_items;
    ulong p = 0, end = 0;
    if (exclude_known && known_ptr) {
        p = known_ptr[users[r]];
        end = known_ptr[users[r] + 1];
    }
    uint count = 0;
    for (uint x = 0; x < num_items; ++x) {
        while (p < end && known_items[p] < (int)x)
            ++p;
        if (p < end && known_items[p] == (int)x)
            continue;
        const float s = row[x] + bias[x];
        if (count == k && !wl_better(s, ts[k - 1]))
            continue;
        uint pos = count < k ? count++ : k - 1;
        for (; pos > 0 && wl_better(s, ts[pos - 1]); --pos) {
            ti[pos] = ti[pos - 1];
            ts[pos] = ts[pos - 1];
        }
        ti[pos] = (int)x;
        ts[pos] = s;
    }
    for (; count < k; ++count) {
        ti[count] = -1;
        ts[count] = -INFINITY;
    }
}

kernel void wl_model_rank(uint n, uint num_items, const global int *users, const global int *items,
                          const global float *dot, const global float *bias, const global ulong *known_ptr,
                          const global int *known_items, int exclude_known, global uint *ranks)
{
    const uint r = (uint)get_global_id(0);
    if (r >= n)
        return;
    const global float *row = dot + (ulong)r * num_items;
    const int item = items[r];
    const float target = row[item] + bias[item];
    ulong p = 0, end = 0;
    if (exclude_known && known_ptr) {
        p = known_ptr[users[r]];
        end = known_ptr[users[r] + 1];
    }
    uint rank = 0;
    for (uint x = 0; x < num_items; ++x) {
        while (p < end && known_items[p] < (int)x)
            ++p;
        if ((int)x == item || (p < end && known_items[p] == (int)x))
            continue;
        rank += row[x] + bias[x] > target;
    }
    ranks[r] = rank;
}

/* The sum of v over the work-group, in scratch [get_local_size(0)], a power
 * of two; every work-item gets it. */
ulong wl_group_sum(ulong v, local ulong *scratch)
{
    const uint lid = (uint)get_local_id(0), size = (uint)get_local_size(0);
    scratch[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint stride = size / 2; stride > 0; stride /= 2) {
        if (lid < stride)
            scratch[lid] += scratch[lid + stride];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const ulong result = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE); /* scratch is reused at once */
    return result;
}

/*
 * Row r of the block is user users[first + r], whose held-out items are
 * items[ptr[first + r] .. ptr[first + r + 1]). ranks[j] gets item j's rank;
 * out[r] the user's counts: hits (ranks below k), the best rank, how many
 * held-out items are also known positives (exclude_known only), the sum over
 * the ranks in ascending order r_(i) of max(0, r_(i) - i) (AUC's), and the
 * number of known positives (exclude_known only). among (NULL: every item)
 * restricts the catalogue: the items x with among[x] == 0 neither rank nor
 * count (the host checked that every held-out item is among them).
 */
kernel void wl_model_evaluate(uint n, ulong first, uint num_items, uint k, const global int *users,
                              const global ulong *ptr, const global int *items, const global float *dot,
                              const global float *bias, const global ulong *known_ptr, const global int *known_items,
                              int exclude_known, global uint *ranks, const global uchar *among, global ulong *out,
                              local ulong *scratch)
{
    const uint r = (uint)get_group_id(0), lid = (uint)get_local_id(0), size = (uint)get_local_size(0);
    if (r >= n)
        return; /* the whole group */
    const global float *row = dot + (ulong)r * num_items;
    const ulong begin = ptr[first + r], end = ptr[first + r + 1];
    ulong kp = 0, ke = 0;
    if (exclude_known && known_ptr) {
        kp = known_ptr[users[first + r]];
        ke = known_ptr[users[first + r] + 1];
    }
    /* each held-out item's rank: the items above it, less the known positives above it */
    for (ulong j = begin; j < end; ++j) {
        const int t = items[j];
        const float target = row[t] + bias[t];
        uint above = 0;
        for (uint x = lid; x < num_items; x += size)
            above += (!among || among[x]) && row[x] + bias[x] > target;
        for (ulong q = kp + lid; q < ke; q += size) {
            const int x = known_items[q];
            above -= (!among || among[x]) && row[x] + bias[x] > target; /* never t itself: s(t) > s(t) is false */
        }
        const ulong total = wl_group_sum(above, scratch);
        if (lid == 0)
            ranks[j] = (uint)total;
        barrier(CLK_GLOBAL_MEM_FENCE);
    }
    /* the counts: item j's place in the ascending order of the ranks (ties in
     * index order); the best rank is the one in place 0. Integer min, max and
     * saturating subtraction are written out: LLVM would turn them into
     * intrinsics that oclgrind cannot run. */
    ulong hits = 0, best = 0, overlap = 0, auc = 0;
    for (ulong j = begin + lid; j < end; j += size) {
        const uint rank = ranks[j];
        ulong place = 0;
        for (ulong i = begin; i < end; ++i) {
            const uint other = ranks[i];
            place += other < rank || (other == rank && i < j);
        }
        hits += rank < k;
        if (place == 0)
            best += rank;
        volatile ulong term = 0; /* max(0, rank - place) */
        if (rank > place)
            term = rank - place;
        auc += term;
        /* a held-out item that is also a known positive (binary search) */
        ulong lo = kp, hi = ke;
        while (lo < hi) {
            const ulong mid = lo + (hi - lo) / 2;
            if (known_items[mid] < items[j])
                lo = mid + 1;
            else
                hi = mid;
        }
        overlap += lo < ke && known_items[lo] == items[j];
    }
    ulong known = 0; /* the known positives in the catalogue */
    for (ulong q = kp + lid; q < ke; q += size)
        known += !among || among[known_items[q]];
    known = wl_group_sum(known, scratch);
    hits = wl_group_sum(hits, scratch);
    best = wl_group_sum(best, scratch);
    overlap = wl_group_sum(overlap, scratch);
    auc = wl_group_sum(auc, scratch);
    if (lid == 0) {
        global ulong *o = out + (ulong)r * 5;
        o[0] = hits;
        o[1] = best;
        o[2] = overlap;
        o[3] = auc;
        o[4] = known;
    }
}
