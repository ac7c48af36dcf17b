/*
 * The hybrid model's representations (src/model_features.c): one work-item
 * per row and chunk of 8 dimensions, out[r * dim + d] = sum over k in
 * [ptr[r], ptr[r + 1]) of weights[k] * table[features[k] * dim + d], the
 * products added in k order starting from the first (so a row with one
 * feature of weight 1 copies it bit for bit, an empty row gives 0). Each
 * element is summed alone, in the same order whatever the chunk: the float8
 * only lets the loads and products vectorise. The matrix was checked on the
 * host. The chunk is e - r * chunks rather than e % chunks (model_gather.cl
 * says why).
 */
kernel void wl_model_represent(ulong rows, uint dim, const global ulong *ptr, const global int *features,
                               const global float *weights, const global float *table, global float *out)
{
    const uint chunks = (dim + 7u) / 8u;
    const ulong e = get_global_id(0);
    if (e >= rows * chunks)
        return;
    const ulong r = e / chunks;
    const uint d0 = (uint)(e - r * chunks) * 8u;
    const ulong from = ptr[r], to = ptr[r + 1];
    global float *o = out + r * dim;
    if (d0 + 8u <= dim) {
        float8 s = (float8)(0.0f);
        if (from < to) {
            s = weights[from] * vload8(0, table + (ulong)features[from] * dim + d0);
            for (ulong k = from + 1; k < to; ++k)
                s = s + weights[k] * vload8(0, table + (ulong)features[k] * dim + d0);
        }
        vstore8(s, 0, o + d0);
        return;
    }
    for (uint d = d0; d < dim; ++d) {
        float s = 0.0f;
        if (from < to) {
            s = weights[from] * table[(ulong)features[from] * dim + d];
            for (ulong k = from + 1; k < to; ++k)
                s = s + weights[k] * table[(ulong)features[k] * dim + d];
        }
        o[d] = s;
    }
}
