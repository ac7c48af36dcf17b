/*
 * Every kernel of the library on tiny shapes, for the oclgrind suite
 * (tests/oclgrind.sh runs this program under `oclgrind --data-races
 * --uninitialized` and fails on any report). Under each of the CPU, group and
 * GPU plans: the loss (both scans, with and without the dense gradient and
 * the offenders, the row scan's partial sums, wl_reduce_sum, check_finite);
 * the model (each candidate mode, known positives, Adagrad and SGD, shared
 * candidates through CLBlast's SGEMM and wl_model_gather, recommend with and
 * without exclude_known, rank, evaluate, rows read and written by id, the
 * rows the steps changed); the
 * hybrid model (feature matrices,
 * weighted steps, representations, users as feature rows, evaluation among a
 * subset). Results are checked against the C reference,
 * so a kernel the simulator stopped half-way fails here too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "plan.h"
#include "reference.h"

/* every launch plan of tests/common.h */
enum { PLANS = WLT_PLANS };

static wl_context *ctxs[PLANS];
static char *cache_dir;

enum { USERS = 12, ITEMS = 30, DIM = 8, BATCH = 16, CANDS = 6, TOP = 5 };
static wl_model *warm[PLANS], *warm_features[PLANS];
static void features_all(wl_context *c, wl_model *m);
static void feature_options(wl_model_options *o);
static void loss_all(wl_context *c);

/* Every context's buffers are allocated at their largest before the library
 * releases any buffer: oclgrind 21.10 counts what a kernel writes into a
 * buffer as uninitialized where the buffer extends past one released before
 * at the same address (README.md, "oclgrind", has the reproducer). So the
 * loss runs first on every context (it releases nothing), then a model per
 * context does one recommend and one evaluation for a whole batch of users and one
 * shared-candidate step, and lives to the end. */
static void warm_up(wl_context *c, wl_model **m)
{
    wl_model_options o;
    wl_model_options_default(&o, USERS, ITEMS, DIM);
    if (wl_model_create(c, &o, m) != WL_SUCCESS)
        fail_msg("warm-up: wl_model_create: %s", wl_context_last_error(c));
    /* the rows read at their largest (model_rows reads fewer) */
    uint32_t rows[2 * ITEMS];
    static float values[2 * ITEMS * DIM], state[2 * ITEMS * DIM];
    for (int k = 0; k < 2 * ITEMS; ++k)
        rows[k] = (uint32_t)(k * 7 % ITEMS);
    if (wl_model_read_rows(*m, WL_TABLE_ITEMS, 2 * ITEMS, rows, values, state) != WL_SUCCESS)
        fail_msg("warm-up: wl_model_read_rows: %s", wl_context_last_error(c));
    int32_t users[BATCH], positives[BATCH], neg[CANDS], top[BATCH * TOP];
    float scores[BATCH * TOP];
    for (int b = 0; b < BATCH; ++b)
        users[b] = b % USERS, positives[b] = b % ITEMS;
    for (int j = 0; j < CANDS; ++j)
        neg[j] = (j * 7 + 1) % ITEMS;
    if (wl_model_recommend(*m, BATCH, users, TOP, 0, top, scores) != WL_SUCCESS)
        fail_msg("warm-up: wl_model_recommend: %s", wl_context_last_error(c));
    uint64_t held_ptr[USERS + 1];
    int32_t held[2 * USERS];
    for (int u = 0; u <= USERS; ++u)
        held_ptr[u] = 2 * (uint64_t)u;
    for (int u = 0; u < USERS; ++u)
        held[2 * u] = u, held[2 * u + 1] = u + 1 + u % 5;
    wl_metrics metrics;
    if (wl_model_evaluate(*m, held_ptr, held, TOP, 0, &metrics, NULL) != WL_SUCCESS)
        fail_msg("warm-up: wl_model_evaluate: %s", wl_context_last_error(c));
    wl_loss_options lo;
    wl_loss_options_default(&lo, ITEMS);
    const wl_batch batch = {BATCH, users, positives, CANDS, neg, 1, 1, NULL};
    if (wl_model_step(*m, &lo, &batch, NULL) != WL_SUCCESS)
        fail_msg("warm-up: wl_model_step: %s", wl_context_last_error(c));
}

/* The feature model of a context, through every feature call once. */
static void warm_up_features(wl_context *c, wl_model **m)
{
    wl_model_options o;
    feature_options(&o);
    if (wl_model_create(c, &o, m) != WL_SUCCESS)
        fail_msg("warm-up: wl_model_create (features): %s", wl_context_last_error(c));
    features_all(c, *m);
}

static int group_setup(void **state)
{
    (void)state;
    cache_dir = wlt_temp_dir("oclgrind");
    for (int p = 0; p < PLANS; ++p)
        ctxs[p] = wlt_context_with_plan(cache_dir, p);
    for (int p = 0; p < PLANS; ++p)
        loss_all(ctxs[p]);
    for (int p = 0; p < PLANS; ++p)
        warm_up(ctxs[p], &warm[p]);
    for (int p = 0; p < PLANS; ++p)
        warm_up_features(ctxs[p], &warm_features[p]);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int p = 0; p < PLANS; ++p) {
        wl_model_destroy(warm[p]);
        wl_model_destroy(warm_features[p]);
        wl_context_destroy(ctxs[p]);
    }
    wlt_free_temp_dir(&cache_dir);
    return 0;
}

static void check(wl_context *c, wl_status s, const char *what)
{
    if (s != WL_SUCCESS)
        fail_msg("%s: %s: %s", what, wl_status_string(s), wl_context_last_error(c));
}

/* ------------------------------------------------------------ the hybrid model */

/* Feature matrices on both sides (identity and one shared feature each, one empty item row), weighted steps
 * against the reference, the representations exactly, users as feature rows with exclusions, evaluation among a
 * subset of the items. */
enum { FU = USERS + 2, FI = ITEMS + 3 };

static void feature_options(wl_model_options *o)
{
    wl_model_options_default(o, USERS, ITEMS, DIM);
    o->seed = 9;
    o->learning_rate = 0.1f;
    o->num_user_features = FU;
    o->num_item_features = FI;
}

/* On the context's feature model (made by the warm-up, which ran all of this once). */
static void features_all(wl_context *c, wl_model *m)
{
    wl_model_options o;
    feature_options(&o);
    uint64_t uptr[USERS + 1], iptr[ITEMS + 1];
    int32_t uidx[2 * USERS], iidx[2 * ITEMS];
    float uw[2 * USERS], iw[2 * ITEMS];
    uptr[0] = iptr[0] = 0;
    for (int u = 0; u < USERS; ++u) {
        uint64_t k = uptr[u];
        uidx[k] = u, uw[k++] = 0.5f;
        uidx[k] = USERS + u % 2, uw[k++] = 0.5f;
        uptr[u + 1] = k;
    }
    for (int x = 0; x < ITEMS; ++x) {
        uint64_t k = iptr[x];
        if (x != ITEMS - 1) {
            iidx[k] = x, iw[k++] = 0.75f;
            iidx[k] = ITEMS + x % 3, iw[k++] = 0.25f;
        }
        iptr[x + 1] = k;
    }
    check(c, wl_model_set_features(m, WL_TABLE_USERS, uptr, uidx, uw), "wl_model_set_features (users)");
    check(c, wl_model_set_features(m, WL_TABLE_ITEMS, iptr, iidx, iw), "wl_model_set_features (items)");
    wl_model_options t = o;
    t.num_users = FU, t.num_items = FI, t.num_user_features = t.num_item_features = 0;
    ref_model r;
    ref_model_create(&r, &t);
    /* the initial tables again (a write also resets Adagrad's state) */
    check(c, wl_model_write(m, WL_TABLE_USERS, r.U), "wl_model_write (U)");
    check(c, wl_model_write(m, WL_TABLE_ITEMS, r.V), "wl_model_write (V)");
    check(c, wl_model_write(m, WL_TABLE_ITEM_BIAS, r.b), "wl_model_write (b)");
    const ref_features ru = {uptr, uidx, uw}, ri = {iptr, iidx, iw};
    wl_loss_options lo;
    wl_loss_options_default(&lo, ITEMS);
    int32_t users[BATCH], positives[BATCH], neg[BATCH * CANDS];
    float weights[BATCH];
    for (int b = 0; b < BATCH; ++b) {
        users[b] = (b * 5) % USERS, positives[b] = (b * 7) % ITEMS, weights[b] = b % 5 ? 1.25f : 0.0f;
        for (int j = 0; j < CANDS; ++j)
            neg[b * CANDS + j] = (b * 3 + j * 11) % ITEMS;
    }
    const wl_batch batch = {BATCH, users, positives, CANDS, neg, 0, 0, weights};
    wl_step_result got, want;
    check(c, wl_model_step(m, &lo, &batch, &got), "wl_model_step (features)");
    ref_feature_step(&r, USERS, ITEMS, &ru, &ri, &lo, BATCH, users, positives, CANDS, neg, weights, &want, NULL);
    if (got.offenders != want.offenders || got.scores != want.scores)
        fail_msg("features: the step's result differs from the reference's");
    float U[FU * DIM], V[FI * DIM], b[FI], rep[ITEMS * DIM], ref_rep[ITEMS * DIM];
    check(c, wl_model_read(m, WL_TABLE_USERS, U), "read U");
    check(c, wl_model_read(m, WL_TABLE_ITEMS, V), "read V");
    check(c, wl_model_read(m, WL_TABLE_ITEM_BIAS, b), "read b");
    for (int e = 0; e < FU * DIM; ++e)
        if (!wlt_close(U[e], r.U[e], 1e-5, 1e-6))
            fail_msg("features: U[%d] = %g, reference %g", e, (double)U[e], (double)r.U[e]);
    for (int e = 0; e < FI * DIM; ++e)
        if (!wlt_close(V[e], r.V[e], 1e-5, 1e-6))
            fail_msg("features: V[%d] = %g, reference %g", e, (double)V[e], (double)r.V[e]);
    check(c, wl_model_read_representations(m, WL_TABLE_ITEMS, rep), "read_representations");
    ref_represent(&ri, ITEMS, DIM, V, ref_rep);
    if (memcmp(rep, ref_rep, sizeof rep))
        fail_msg("features: the item representations differ from the reference's");
    int32_t top[4 * TOP];
    const uint64_t ex_ptr[5] = {0, 1, 1, 2, 2};
    const int32_t ex_items[2] = {0, 3};
    check(c, wl_model_recommend_features(m, 4, uptr, uidx, uw, ex_ptr, ex_items, TOP, top, NULL),
          "wl_model_recommend_features");
    uint8_t among[ITEMS];
    uint64_t held_ptr[USERS + 1];
    int32_t held[USERS];
    held_ptr[0] = 0;
    for (int x = 0; x < ITEMS; ++x)
        among[x] = x % 2 == 0;
    for (int u = 0; u < USERS; ++u) {
        held[u] = (u * 2) % ITEMS;
        held_ptr[u + 1] = (uint64_t)u + 1;
    }
    wl_metrics metrics;
    check(c, wl_model_evaluate_among(m, among, held_ptr, held, TOP, 0, &metrics, NULL), "wl_model_evaluate_among");
    ref_model_free(&r);
}

/* ------------------------------------------------------------ the loss */

enum { ROWS = 20, NEG = 13 }; /* 13: whole vectors and a scalar tail */

static void loss_case(wl_context *c, wl_reduction reduction, int outputs, int check_finite)
{
    float pos[ROWS], neg[ROWS * NEG], loss[ROWS], gp[ROWS], gn[ROWS * NEG];
    float want_loss[ROWS], want_gp[ROWS], want_gn[ROWS * NEG];
    int32_t off[ROWS], want_off[ROWS];
    ref_make_inputs(7, REF_DEEP, ROWS, NEG, 1.0f, pos, neg);
    wl_loss_options o;
    wl_loss_options_default(&o, 1000);
    o.reduction = reduction;
    o.check_finite = check_finite;
    ref_loss(&o, ROWS, NEG, pos, neg, want_loss, want_gp, want_gn, want_off);
    check(c, wl_loss(c, &o, ROWS, NEG, pos, neg, loss, outputs ? gp : NULL, outputs ? gn : NULL, outputs ? off : NULL),
          "wl_loss");
    const size_t count = reduction == WL_REDUCE_NONE ? ROWS : 1;
    for (size_t b = 0; b < count; ++b)
        if (!wlt_close(loss[b], want_loss[b], 1e-5, 1e-6))
            fail_msg("loss[%zu] = %g, reference %g", b, (double)loss[b], (double)want_loss[b]);
    if (outputs) {
        assert_int_equal(wlt_first_value_mismatch(gp, want_gp, ROWS), ROWS);
        assert_int_equal(wlt_first_value_mismatch(gn, want_gn, ROWS * NEG), ROWS * NEG);
        assert_int_equal(wlt_first_i32_mismatch(off, want_off, ROWS), ROWS);
    }
    if (check_finite) { /* a NaN: wl_find_nonfinite names its row */
        neg[5 * NEG + 3] = NAN;
        assert_int_equal(wl_loss(c, &o, ROWS, NEG, pos, neg, loss, NULL, NULL, NULL), WL_ERROR_NONFINITE);
    }
}

static void loss_all(wl_context *c)
{
    loss_case(c, WL_REDUCE_NONE, 1, 0);
    loss_case(c, WL_REDUCE_NONE, 0, 0);
    loss_case(c, WL_REDUCE_SUM, 0, 0); /* the row scan's partial sums, then wl_reduce_sum */
    loss_case(c, WL_REDUCE_MEAN, 1, 1);
}

/* ------------------------------------------------------------ the model */

static void model_tables_close(wl_model *m, const ref_model *r, int state, const char *what)
{
    static float got[ITEMS * DIM];
    const float *const want[6] = {r->U, r->V, r->b, r->AU, r->AV, r->Ab};
    const size_t count[3] = {USERS * DIM, ITEMS * DIM, ITEMS};
    for (int t = 0; t < (state ? 6 : 3); ++t) {
        const wl_table table = (wl_table)(t % 3);
        if ((t < 3 ? wl_model_read(m, table, got) : wl_model_read_state(m, table, got)) != WL_SUCCESS)
            fail_msg("%s: reading table %d failed", what, t);
        for (size_t i = 0; i < count[t % 3]; ++i)
            if (!wlt_close(got[i], want[t][i], 1e-5, 1e-6))
                fail_msg("%s: table %d element %zu = %.9g, reference %.9g", what, t, i, (double)got[i],
                         (double)want[t][i]);
    }
}

/* The reference takes the device's tables (the sums differ in the last bits), so steps start alike. */
static void ref_sync(wl_model *m, ref_model *r, int state)
{
    float *dst[6] = {r->U, r->V, r->b, r->AU, r->AV, r->Ab};
    for (int t = 0; t < (state ? 6 : 3); ++t) {
        const wl_table table = (wl_table)(t % 3);
        assert_int_equal(t < 3 ? wl_model_read(m, table, dst[t]) : wl_model_read_state(m, table, dst[t]), WL_SUCCESS);
    }
}

/* wl_model_read_rows (unsorted, repeated) equals the tables; wl_model_write_rows of a few rows (with the state
 * under Adagrad) lands; the reference takes the tables written. */
static void model_rows(wl_context *c, wl_model *m, ref_model *r, int state)
{
    static float table[ITEMS * DIM], table_state[ITEMS * DIM], got[2 * ITEMS * DIM], got_state[2 * ITEMS * DIM];
    const size_t rows_of[3] = {USERS, ITEMS, ITEMS};
    for (int t = 0; t < 3; ++t) {
        const size_t width = t == WL_TABLE_ITEM_BIAS ? 1 : DIM, n = rows_of[t] + 3;
        uint32_t rows[ITEMS + 3];
        for (size_t k = 0; k < n; ++k)
            rows[k] = (uint32_t)((k * 5 + 3) % rows_of[t]);
        check(c, wl_model_read(m, (wl_table)t, table), "wl_model_read");
        if (state)
            check(c, wl_model_read_state(m, (wl_table)t, table_state), "wl_model_read_state");
        check(c, wl_model_read_rows(m, (wl_table)t, n, rows, got, state ? got_state : NULL), "wl_model_read_rows");
        for (size_t k = 0; k < n; ++k)
            if (memcmp(got + k * width, table + rows[k] * width, width * sizeof(float)) ||
                (state && memcmp(got_state + k * width, table_state + rows[k] * width, width * sizeof(float))))
                fail_msg("wl_model_read_rows: table %d, row %zu (%u) differs", t, k, (unsigned)rows[k]);
        /* every third row, new values (and state) */
        size_t w = 0;
        for (uint32_t row = 1; row < rows_of[t]; row += 3, ++w)
            rows[w] = row;
        for (size_t e = 0; e < w * width; ++e)
            got[e] = 0.01f * (float)e - 0.2f, got_state[e] = 1.0f + 0.5f * (float)e;
        check(c, wl_model_write_rows(m, (wl_table)t, w, rows, got, state ? got_state : NULL), "wl_model_write_rows");
        for (size_t k = 0; k < w; ++k) {
            memcpy(table + rows[k] * width, got + k * width, width * sizeof(float));
            memcpy(table_state + rows[k] * width, got_state + k * width, width * sizeof(float));
        }
        check(c, wl_model_read(m, (wl_table)t, got), "wl_model_read");
        if (memcmp(got, table, rows_of[t] * width * sizeof(float)))
            fail_msg("wl_model_write_rows: table %d is not as written", t);
        if (state) {
            check(c, wl_model_read_state(m, (wl_table)t, got), "wl_model_read_state");
            if (memcmp(got, table_state, rows_of[t] * width * sizeof(float)))
                fail_msg("wl_model_write_rows: the state of table %d is not as written", t);
        }
    }
    ref_sync(m, r, state);
}

/* The rows the steps marked (wl_model_update's bits): some users and items, ascending, then none. */
static void model_changed(wl_context *c, wl_model *m)
{
    for (int side = 0; side < 2; ++side) {
        uint32_t rows[ITEMS];
        size_t n = 0;
        const uint32_t limit = side ? ITEMS : USERS;
        check(c, wl_model_changed_rows(m, side ? WL_TABLE_ITEMS : WL_TABLE_USERS, rows, &n), "wl_model_changed_rows");
        assert_true(n > 0 && n <= limit);
        for (size_t k = 0; k < n; ++k)
            assert_true(rows[k] < limit && (k == 0 || rows[k] > rows[k - 1]));
        check(c, wl_model_changed_rows(m, side ? WL_TABLE_ITEM_BIAS : WL_TABLE_USERS, NULL, &n),
              "wl_model_changed_rows");
        assert_int_equal(n, 0);
    }
}

/* One step with candidates of `mode` (0 per row, 1 shared, 2 sampled) on device and reference. */
static void model_step(wl_context *c, wl_model *m, ref_model *r, const wl_model_options *o, int mode, uint64_t seed,
                       const char *what)
{
    int32_t users[BATCH], positives[BATCH], neg[BATCH * CANDS], expanded[BATCH * CANDS];
    ref_rng g;
    ref_rng_seed(&g, seed);
    for (size_t b = 0; b < BATCH; ++b) {
        users[b] = (int32_t)(ref_rng_next(&g) % USERS);
        positives[b] = (int32_t)(ref_rng_next(&g) % ITEMS);
    }
    for (size_t i = 0; i < BATCH * CANDS; ++i)
        neg[i] = (int32_t)(ref_rng_next(&g) % ITEMS);
    const uint64_t key = seed * 31 + 1;
    for (size_t b = 0; b < BATCH; ++b)
        for (size_t j = 0; j < CANDS; ++j)
            expanded[b * CANDS + j] = mode == 0   ? neg[b * CANDS + j]
                                      : mode == 1 ? neg[j]
                                                  : ref_sample(o->seed, key, b, j, ITEMS, positives[b]);
    wl_loss_options lo;
    wl_loss_options_default(&lo, ITEMS);
    wl_step_result want, got;
    ref_model_step(r, &lo, BATCH, users, positives, CANDS, expanded, &want, NULL);
    const wl_batch batch = {BATCH, users, positives, CANDS, mode == 2 ? NULL : neg, mode == 1, key, NULL};
    check(c, wl_model_step(m, &lo, &batch, &got), what);
    if (got.offenders != want.offenders || got.scores != want.scores ||
        !(fabs(got.loss - want.loss) <= 1e-5 * fabs(want.loss) + 1e-6))
        fail_msg("%s: offenders %llu scores %llu loss %.9g, reference %llu %llu %.9g", what,
                 (unsigned long long)got.offenders, (unsigned long long)got.scores, got.loss,
                 (unsigned long long)want.offenders, (unsigned long long)want.scores, want.loss);
    assert_true(want.offenders > 0);
    model_tables_close(m, r, o->optimizer == WL_OPTIMIZER_ADAGRAD, what);
    ref_sync(m, r, o->optimizer == WL_OPTIMIZER_ADAGRAD);
}

/* wl_model_recommend (with and without exclude_known) and wl_model_rank against the reference. */
static void model_catalogue(wl_context *c, wl_model *m, const ref_model *r)
{
    const int32_t users[4] = {0, 3, 7, 11}, items[4] = {2, 9, 17, 29};
    for (int exclude = 0; exclude < 2; ++exclude) {
        int32_t got[4 * TOP], want[4 * TOP];
        float got_s[4 * TOP], want_s[4 * TOP];
        check(c, wl_model_recommend(m, 4, users, TOP, exclude, got, got_s), "wl_model_recommend");
        ref_model_recommend(r, 4, users, TOP, exclude, want, want_s);
        assert_int_equal(wlt_first_i32_mismatch(got, want, 4 * TOP), 4 * TOP);
        for (size_t i = 0; i < 4 * TOP; ++i)
            assert_true(wlt_close(got_s[i], want_s[i], 1e-5, 1e-6));
        uint32_t ranks[4], want_ranks[4];
        check(c, wl_model_rank(m, 4, users, items, exclude, ranks), "wl_model_rank");
        ref_model_rank(r, 4, users, items, exclude, want_ranks);
        for (size_t i = 0; i < 4; ++i)
            assert_int_equal(ranks[i], want_ranks[i]);
        /* evaluate: users 0 and 3 hold out two items each, user 7 one */
        uint64_t held_ptr[USERS + 1] = {0, 2, 2, 2, 4, 4, 4, 4, 5, 5, 5, 5, 5};
        const int32_t held[5] = {2, 9, 1, 17, 29};
        wl_metrics metrics, want_metrics;
        wl_user_metrics per_user[USERS], want_users[USERS];
        check(c, wl_model_evaluate(m, held_ptr, held, 3, exclude, &metrics, per_user), "wl_model_evaluate");
        ref_model_evaluate(r, held_ptr, held, 3, exclude, &want_metrics, want_users);
        assert_true(metrics.users == 3 && metrics.users == want_metrics.users);
        assert_true(fabs(metrics.auc - want_metrics.auc) < 1e-12 && fabs(metrics.mrr - want_metrics.mrr) < 1e-12);
        for (size_t u = 0; u < USERS; ++u)
            assert_true(per_user[u].hits == want_users[u].hits && per_user[u].best == want_users[u].best);
    }
}

static void model_all(wl_context *c, wl_optimizer optimizer)
{
    wl_model_options o;
    wl_model_options_default(&o, USERS, ITEMS, DIM);
    o.seed = 5;
    o.optimizer = optimizer;
    o.learning_rate = 0.1f;
    wl_model *m = NULL;
    check(c, wl_model_create(c, &o, &m), "wl_model_create");
    ref_model r;
    ref_model_create(&r, &o);
    const int state = optimizer == WL_OPTIMIZER_ADAGRAD;
    model_tables_close(m, &r, state, "the initial tables");
    /* a user's known positives: every third user knows items u, u + 1, u + 2 */
    uint64_t indptr[USERS + 1] = {0};
    int32_t known[USERS * 3];
    size_t n = 0;
    for (int u = 0; u < USERS; ++u) {
        if (u % 3 == 0)
            for (int k = 0; k < 3; ++k)
                known[n++] = u + k;
        indptr[u + 1] = n;
    }
    static const char *const names[3] = {"per-row candidates", "shared candidates", "sampled candidates"};
    for (int known_set = 0; known_set < 2; ++known_set) {
        if (known_set) {
            check(c, wl_model_set_known(m, indptr, known), "wl_model_set_known");
            ref_model_set_known(&r, indptr, known);
        }
        for (int mode = 0; mode < 3; ++mode) {
            char what[128];
            snprintf(what, sizeof what, "%s, %s, known %d", optimizer ? "sgd" : "adagrad", names[mode], known_set);
            model_step(c, m, &r, &o, mode, 100 + (uint64_t)(known_set * 3 + mode), what);
        }
    }
    model_changed(c, m);
    model_rows(c, m, &r, state);
    model_catalogue(c, m, &r);
    ref_model_free(&r);
    wl_model_destroy(m);
}

/* ------------------------------------------------------------ the tests */

static void run_plan(int plan)
{
    loss_all(ctxs[plan]);
    model_all(ctxs[plan], WL_OPTIMIZER_ADAGRAD);
    model_all(ctxs[plan], WL_OPTIMIZER_SGD);
    features_all(ctxs[plan], warm_features[plan]);
}

static void test_plan(void **state) { run_plan((int)(intptr_t)*state); }

/* argv: the plans to run ("cpu", "group", "gpu", "small-gpu"; none: all), one oclgrind log each when run apart */
int main(int argc, char **argv)
{
    struct CMUnitTest tests[PLANS];
    size_t n = 0;
    for (int p = 0; p < PLANS; ++p) {
        int wanted = argc < 2;
        for (int a = 1; a < argc; ++a)
            wanted |= strcmp(argv[a], wlt_plan_names[p]) == 0;
        if (wanted)
            tests[n++] = (struct CMUnitTest){wlt_plan_names[p], test_plan, NULL, NULL, (void *)(intptr_t)p};
    }
    if (n == 0) {
        fprintf(stderr, "usage: %s [cpu] [group] [gpu] [small-gpu]\n", argv[0]);
        return 2;
    }
    return _cmocka_run_group_tests("oclgrind", tests, n, group_setup, group_teardown);
}
