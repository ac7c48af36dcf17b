/*
 * A model step, part 2 (L2 and optimizer): one work-item per entry of the
 * touched lists that wl_model_scan (model_step.cl) filled: items
 * 0 .. user_slots - 1 take touched_u, the rest touched_v (each list's length
 * is in control[0], control[1]; the host launches an upper bound).
 *
 * For each element of a touched row: G = accumulator + l2 * W (fixed point),
 * converted to float once; then SGD (W -= lr * G) or Adagrad (A += G * G;
 * W -= lr * G / sqrt(A)), in float. The row's accumulators and flag go back
 * to zero, so the next step starts clean without touching the other rows.
 * Item rows also update their bias from its own accumulator (no L2).
 *
 * Every row updated also sets its bit in its side's changed bitmask
 * (changed_u, changed_v: bit r % 32 of word r / 32), which
 * wl_model_changed_rows (src/model.c) reads and clears: one 32-bit atomic_or
 * per row, OpenCL 1.1's core atomics.
 */

/* One element: the gradient from its accumulator plus L2, then the optimizer.
 * state is NULL for SGD. */
void wl_update_one(global float *w, global float *state, ulong idx, global wl_acc *acc, float l2, float lr)
{
    const float value = w[idx];
    const long fixed = wl_acc_take(acc, idx) + convert_long_sat_rte((l2 * value) * 0x1p32f);
    const float g = convert_float_rte(fixed) * 0x1p-32f;
    if (state) {
        const float a = state[idx] + g * g;
        state[idx] = a;
        w[idx] = value - lr * g / sqrt(a);
    } else {
        w[idx] = value - lr * g;
    }
}

kernel void wl_model_update(uint user_slots, uint dim, float lr, float l2_users, float l2_items, int item_bias,
                            global float *U, global float *V, global float *bias, global float *state_u,
                            global float *state_v, global float *state_b, global wl_acc *acc_u, global wl_acc *acc_v,
                            global wl_acc *acc_b, global int *flag_u, global int *flag_v, const global uint *touched_u,
                            const global uint *touched_v, const global uint *control, global uint *changed_u,
                            global uint *changed_v)
{
    const uint id = (uint)get_global_id(0);
    const int users = id < user_slots;
    const uint slot = users ? id : id - user_slots;
    if (slot >= control[users ? 0 : 1])
        return;
    const uint row = users ? touched_u[slot] : touched_v[slot];
    global float *w = users ? U : V;
    global float *state = users ? state_u : state_v;
    global wl_acc *acc = users ? acc_u : acc_v;
    global uint *changed = users ? changed_u : changed_v;
    const float l2 = users ? l2_users : l2_items;
    for (uint d = 0; d < dim; ++d)
        wl_update_one(w, state, (ulong)row * dim + d, acc, l2, lr);
    atomic_or(&changed[row / 32], 1u << (row % 32));
    if (users) {
        flag_u[row] = 0;
        return;
    }
    if (item_bias)
        wl_update_one(bias, state_b, row, acc_b, 0.0f, lr);
    flag_v[row] = 0;
}
