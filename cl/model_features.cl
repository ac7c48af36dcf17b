/*
 * The hybrid model's representations (src/model_features.c): one work-item
 * per element, out[r * dim + d] = sum over k in [ptr[r], ptr[r + 1]) of
 * weights[k] * table[features[k] * dim + d], the products added in k order
 * starting from the first (so a row with one feature of weight 1 copies it
 * bit for bit, an empty row gives 0). The matrix was checked on the host.
 * The dimension is e - r * dim rather than e % dim (model_gather.cl says why).
 */
kernel void wl_model_represent(ulong rows, uint dim, const global ulong *ptr, const global int *features,
                               const global float *weights, const global float *table, global float *out)
{
    const ulong e = get_global_id(0);
    if (e >= rows * dim)
        return;
    const ulong r = e / dim;
    const uint d = (uint)(e - r * dim);
    const ulong from = ptr[r], to = ptr[r + 1];
    float s = 0.0f;
    if (from < to) {
        s = weights[from] * table[(ulong)features[from] * dim + d];
        for (ulong k = from + 1; k < to; ++k)
            s = s + weights[k] * table[(ulong)features[k] * dim + d];
    }
    out[e] = s;
}
