/*
 * The embedding model's shared pieces (the model program starts with this
 * file): the score s(u, x) = dot(U[u], V[x]) + b[x] in the one order every
 * model kernel and the C reference use, the counter-based generator of the
 * sampled candidates, and the lookup of a user's known positives. No launch
 * of its own.
 */
#ifndef cl_khr_int64_base_atomics
#error "the embedding model needs cl_khr_int64_base_atomics (64-bit atom_add for its deterministic gradient sums)"
#endif
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable

/* s(u, x): dim products summed one after the other from 0.0f, then the bias
 * (FP_CONTRACT is off in the prelude, so no fused multiply-add). Sequential
 * on purpose: the order fixes the bits, so the scan and the catalogue agree
 * with the reference on every device and launch plan. */
float wl_model_score(const global float *user_row, const global float *item_row, float bias, uint dim)
{
    float s = 0.0f;
    for (uint d = 0; d < dim; ++d)
        s = s + user_row[d] * item_row[d];
    return s + bias;
}

/* splitmix64's finaliser. */
ulong wl_mix(ulong z)
{
    z += 0x9E3779B97F4A7C15UL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    return z ^ (z >> 31);
}

/* Sampled candidate j of batch row b with positive i: uniform over the other
 * num_items - 1 items. key = mix(mix(seed) ^ sample_key), from the host. */
uint wl_sample_item(ulong key, ulong b, ulong j, uint i, uint num_items)
{
    const ulong h = wl_mix(wl_mix(key ^ b) ^ j);
    const ulong r = h >> 32;
    uint c = (uint)((r * (ulong)(num_items - 1)) >> 32);
    return c >= i ? c + 1 : c;
}

/* Whether item x is among the sorted known positives items[from .. to). */
int wl_is_known(const global int *items, ulong from, ulong to, int x)
{
    while (from < to) {
        const ulong mid = from + (to - from) / 2;
        const int v = items[mid];
        if (v == x)
            return 1;
        if (v < x)
            from = mid + 1;
        else
            to = mid;
    }
    return 0;
}
