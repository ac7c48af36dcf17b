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
 *                    exclude_known).
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
