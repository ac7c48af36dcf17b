/*
 * Gradient scatter into the dense gradient of the negatives: row b of
 * grad_neg is 0 except +g at the first offender. Fused into the scan kernels
 * (scan.cl): the work-item or work-group that found the offender writes its
 * own row right away, which saves a launch and a second read of the offender
 * index; every row is owned by exactly one work-item or work-group, so no
 * atomics are needed.
 */

/* One work-item writes the whole row (CPU launch shape: sequential stores). */
void wl_scatter_row(global float *row, ulong negatives, int first, float g)
{
    ulong i = 0;
    for (; i + WL_VEC <= negatives; i += WL_VEC)
        WL_VSTORE((WL_FLOATV)(0.0f), 0, row + i);
    for (; i < negatives; ++i)
        row[i] = 0.0f;
    if (first >= 0)
        row[first] = g;
}

/* The work-group writes the row together (GPU launch shape: coalesced stores). */
void wl_scatter_group(global float *row, ulong negatives, int first, float g)
{
    const ulong lid = get_local_id(0), size = get_local_size(0);
    for (ulong i = lid; i < negatives; i += size)
        row[i] = (i == (ulong)first) ? g : 0.0f;
}
