/*
 * Sum of the row losses for WL_REDUCE_SUM and WL_REDUCE_MEAN: one work-group
 * whose size is a power of two, with `partial` holding one float per
 * work-item. Each work-item sums a strided slice, then a tree in local
 * memory; the order is fixed, so the result is the same on every run.
 * out[0] = sum of values[i] * scale (scaled before summing, so that a mean
 * stays finite where the plain sum would pass FLT_MAX).
 */
kernel void wl_reduce_sum(ulong count, const global float *values, float scale, global float *out, local float *partial)
{
    const uint lid = get_local_id(0), size = get_local_size(0);
    float sum = 0.0f;
    for (ulong i = lid; i < count; i += size)
        sum += values[i] * scale;
    partial[lid] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint step = size / 2; step > 0; step /= 2) {
        if (lid < step)
            partial[lid] += partial[lid + step];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0)
        out[0] = partial[0];
}
