/*
 * Score comparison: the one definition of "this negative stops the scan",
 * shared by every kernel. A negative n stops the scan of a row with positive
 * p when (margin + n) - p > 0, evaluated in float32 in exactly that order
 * (FP_CONTRACT is off in the prelude), or when that value is NaN, so that a
 * NaN is never skipped over. The vector form returns a lane mask.
 */

int wl_stops(float margin, float n, float p) { return !(((margin + n) - p) <= 0.0f); }

WL_INTV wl_stops_vec(float margin, WL_FLOATV n, float p) { return ~islessequal((margin + n) - p, (WL_FLOATV)(0.0f)); }

/* Index of the first stopping negative in n[from .. from + WL_VEC), known to
 * hold one; the lanes are rechecked with the scalar test so both agree. */
int wl_first_lane(float margin, const global float *n, ulong from, float p)
{
    for (int k = 0; k < WL_VEC - 1; ++k)
        if (wl_stops(margin, n[from + k], p))
            return (int)from + k;
    return (int)from + WL_VEC - 1;
}

/* Index of the first stopping negative in n[from .. from + count), known to
 * hold one (a vector test said so); scalar test, so both agree. */
int wl_first_in(float margin, const global float *n, ulong from, int count, float p)
{
    for (int k = 0; k < count - 1; ++k)
        if (wl_stops(margin, n[from + k], p))
            return (int)from + k;
    return (int)from + count - 1;
}
