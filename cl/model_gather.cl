/*
 * Rows of a table gathered and scattered by id. One work-item per element.
 *
 * wl_model_gather: rows for CLBlast's SGEMM (src/blas.c) (the users of a
 * block of batch rows or catalogue queries, and the shared candidates'
 * items) and the rows wl_model_read_rows reads:
 * out[r * dim + d] = table[ids[offset + r] * dim + d] for r < count. The ids
 * are read as unsigned, and an id of limit or more gives a row of zeros, so
 * nothing is read out of bounds (the ids may come from the caller's device
 * buffers; the scan reports such a row and never uses its scores). Callers
 * with int ids pass a limit of at most 2^31, so a negative id is out of range.
 *
 * wl_model_scatter_rows: the rows wl_model_write_rows writes,
 * table[rows[r] * width + d] = in[r * width + d] for r < count; the host
 * checked that the rows are in range and strictly ascending, so no two
 * work-items write the same element.
 *
 * The dimension is e - r * dim rather than e % dim: LLVM turns a / and % pair
 * into a `freeze` instruction, which oclgrind's --uninitialized cannot run (it
 * stops the work-item; README.md, "oclgrind").
 */
kernel void wl_model_gather(ulong count, uint dim, uint limit, const global uint *ids, ulong offset,
                            const global float *table, global float *out)
{
    const ulong e = get_global_id(0);
    if (e >= count * dim)
        return;
    const ulong r = e / dim;
    const uint d = (uint)(e - r * dim);
    const uint id = ids[offset + r];
    out[e] = id < limit ? table[(ulong)id * dim + d] : 0.0f;
}

kernel void wl_model_scatter_rows(ulong count, uint width, const global uint *rows, const global float *in,
                                  global float *table)
{
    const ulong e = get_global_id(0);
    if (e >= count * width)
        return;
    const ulong r = e / width;
    const uint d = (uint)(e - r * width);
    table[(ulong)rows[r] * width + d] = in[e];
}
