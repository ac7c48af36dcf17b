/*
 * Input check for check_finite on device buffers: one work-item per score of
 * values[base ..], where each row holds `per_row` scores (1 for the positives,
 * `negatives` for the negatives). The smallest row with a NaN or Inf goes
 * into first_bad[0] by atomic_min (rows are below 2^32, checked on the host).
 */
kernel void wl_find_nonfinite(ulong count, ulong per_row, const global float *values, ulong base,
                              volatile global uint *first_bad)
{
    const ulong i = base + get_global_id(0);
    if (i < count && !isfinite(values[i]))
        atomic_min(first_bad, (uint)(i / per_row));
}
