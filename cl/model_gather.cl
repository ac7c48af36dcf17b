/*
 * Rows of a table gathered for CLBlast's SGEMM (src/blas.c): the users of a
 * block of batch rows or catalogue queries, and the shared candidates' items.
 * One work-item per element: out[r * dim + d] = table[ids[offset + r] * dim + d]
 * for r < count. An id out of [0, limit) gives a row of zeros (the ids may
 * come from the caller's device buffers; the scan reports such a row and
 * never uses its scores), so nothing is read out of bounds.
 * The dimension is e - r * dim rather than e % dim: LLVM turns a / and % pair
 * into a `freeze` instruction, which oclgrind's --uninitialized cannot run (it
 * stops the work-item; README.md, "oclgrind").
 */
kernel void wl_model_gather(ulong count, uint dim, uint limit, const global int *ids, ulong offset,
                            const global float *table, global float *out)
{
    const ulong e = get_global_id(0);
    if (e >= count * dim)
        return;
    const ulong r = e / dim;
    const uint d = (uint)(e - r * dim);
    const int id = ids[offset + r];
    out[e] = id >= 0 && (uint)id < limit ? table[(ulong)id * dim + d] : 0.0f;
}
