/*
 * The embedding model's shared pieces (the model program starts with this
 * file): the score s(u, x) = dot(U[u], V[x]) + b[x] in the one order every
 * model kernel and the C reference use, the counter-based generator of the
 * sampled candidates, and the lookup of a user's known positives. No launch
 * of its own.
 */

/* The fixed-point gradient sums (2^32 units per 1.0), one 64-bit integer per
 * element, added to in any order: integer sums are exact and commutative, so
 * the totals, and the tables, do not depend on it. WL_ATOMIC64 (the launch
 * plan): one 64-bit atom_add (cl_khr_int64_base_atomics). Otherwise each
 * element is a pair of 32-bit words, low then high: the low word takes an
 * atomic_add of the low half, and the high word the high half plus the carry
 * out of the low word, which that same atomic_add reports; every wrap of the
 * low word adds its one to the high word, so the pair ends as the same
 * 64-bit sum (modulo 2^64, as atom_add wraps) with only 32-bit atomics. */
#if WL_ATOMIC64
#ifndef cl_khr_int64_base_atomics
#error "WL_ATOMIC64 needs cl_khr_int64_base_atomics; the launch plan picks the 32-bit scatter without it"
#endif
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable
typedef long wl_acc;
#else
typedef uint wl_acc;
#endif

/* acc[idx] += v. */
void wl_acc_add(global wl_acc *acc, ulong idx, long v)
{
#if WL_ATOMIC64
    atom_add(&acc[idx], v);
#else
    volatile global uint *w = (volatile global uint *)acc + 2 * idx;
    const uint low = (uint)v;
    const uint before = atomic_add(&w[0], low);
    const uint high = (uint)((ulong)v >> 32) + (uint)(before + low < before);
    if (high)
        atomic_add(&w[1], high);
#endif
}

/* acc[idx], and zero in its place (one work-item owns the element then). */
long wl_acc_take(global wl_acc *acc, ulong idx)
{
#if WL_ATOMIC64
    const long v = acc[idx];
    acc[idx] = 0;
#else
    global uint *w = (global uint *)acc + 2 * idx;
    const long v = (long)(((ulong)w[1] << 32) | (ulong)w[0]);
    w[0] = 0;
    w[1] = 0;
#endif
    return v;
}

/* s(u, x) in one fixed 8-lane order (FP_CONTRACT is off in the prelude, so
 * no fused multiply-add): lane l sums the products of d = l, l + 8, ... in
 * increasing d from 0.0f over the whole chunks of 8, the tail d >= 8 * (dim / 8)
 * goes to lanes 0, 1, ... in order, then the lanes are combined as
 * ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7)) and the bias added last.
 * The order fixes the bits, so the scan and the catalogue agree with the
 * reference on every device and launch plan; the float8 lets it vectorise. */
float wl_model_score(const global float *user_row, const global float *item_row, float bias, uint dim)
{
    const uint whole = dim / 8u;
    float8 p = (float8)(0.0f);
    for (uint c = 0; c < whole; ++c)
        p = p + vload8(c, user_row) * vload8(c, item_row);
    float t[8] = {p.s0, p.s1, p.s2, p.s3, p.s4, p.s5, p.s6, p.s7};
    for (uint d = whole * 8u; d < dim; ++d)
        t[d - whole * 8u] = t[d - whole * 8u] + user_row[d] * item_row[d];
    return (((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]))) + bias;
}

/* wl_model_score of two items at once: the same operations for each, so the
 * same bits, with two independent streams of loads in flight. */
float2 wl_model_score2(const global float *user_row, const global float *item_a, const global float *item_b,
                       float bias_a, float bias_b, uint dim)
{
    const uint whole = dim / 8u;
    float8 p = (float8)(0.0f), q = (float8)(0.0f);
    for (uint c = 0; c < whole; ++c) {
        const float8 u = vload8(c, user_row);
        p = p + u * vload8(c, item_a);
        q = q + u * vload8(c, item_b);
    }
    float t[8] = {p.s0, p.s1, p.s2, p.s3, p.s4, p.s5, p.s6, p.s7};
    float v[8] = {q.s0, q.s1, q.s2, q.s3, q.s4, q.s5, q.s6, q.s7};
    for (uint d = whole * 8u; d < dim; ++d) {
        t[d - whole * 8u] = t[d - whole * 8u] + user_row[d] * item_a[d];
        v[d - whole * 8u] = v[d - whole * 8u] + user_row[d] * item_b[d];
    }
    return (float2)((((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]))) + bias_a,
                    (((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]))) + bias_b);
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
