/*
 * The hybrid model (src/model_features.c, README.md "Features"): a model
 * whose sides have identity features only is today's model bit for bit; the
 * steps with feature matrices and sample weights against the C reference
 * (tests/reference.c) on every launch plan, with finite differences through
 * the feature sum; the representations; users given as feature rows and
 * items without interactions recommended; evaluation among a subset of the
 * items; feature models in model files; every bad matrix refused with the
 * model unchanged.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"
#include "reference.h"

#define NU 30   /* users */
#define NI 50   /* items */
#define XU 6    /* user features beside the identity */
#define XI 9    /* item features beside the identity ("genres") */
#define DIM 12  /* not a multiple of 8: the score's tail runs too */
#define ROWS 48 /* batch rows */
#define NEG 10  /* candidates per row */

static wl_context *ctxs[WLT_PLANS];
static char *cache_dir;

static int group_setup(void **state)
{
    (void)state;
    wlt_plan_contexts("features", ctxs, &cache_dir);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    wlt_plan_contexts_free(ctxs, &cache_dir);
    return 0;
}

static void check_ok(wl_context *c, wl_status s, const char *what)
{
    if (s != WL_SUCCESS)
        fail_msg("%s: %s: %s", what, wl_status_string(s), wl_context_last_error(c));
}

static wl_model *model_new(wl_context *c, const wl_model_options *o)
{
    wl_model *m = NULL;
    check_ok(c, wl_model_create(c, o, &m), "wl_model_create");
    return m;
}

/* ------------------------------------------------------------ feature matrices */

/* A CSR matrix of `rows` rows: the identity feature r (when identity), then up to 3 of `extra` features numbered
 * from `first_extra`, ascending; weights normalised to sum 1 (when normalise) or drawn from [0.25, 1.5). Row
 * `empty` (if < rows) has no feature at all. */
typedef struct matrix {
    uint64_t ptr[NI + 1];
    int32_t idx[NI * 4];
    float w[NI * 4];
} matrix;

static void matrix_make(matrix *x, size_t rows, int identity, uint32_t first_extra, uint32_t extra, int normalise,
                        size_t empty, uint64_t seed)
{
    ref_rng g;
    ref_rng_seed(&g, seed);
    x->ptr[0] = 0;
    for (size_t r = 0; r < rows; ++r) {
        uint64_t k = x->ptr[r];
        if (r != empty) {
            if (identity)
                x->idx[k++] = (int32_t)r;
            const uint32_t a = (uint32_t)(ref_rng_next(&g) % extra);
            const uint32_t n = (uint32_t)(ref_rng_next(&g) % 4);
            for (uint32_t e = 0; e < n && a + e * 2 < extra; ++e)
                x->idx[k++] = (int32_t)(first_extra + a + e * 2);
        }
        float sum = 0.0f;
        for (uint64_t q = x->ptr[r]; q < k; ++q) {
            x->w[q] = (float)ref_rng_uniform(&g, 0.25, 1.5);
            sum += x->w[q];
        }
        for (uint64_t q = x->ptr[r]; normalise && q < k; ++q)
            x->w[q] /= sum;
        x->ptr[r + 1] = k;
    }
}

static ref_features ref_of(const matrix *x) { return (ref_features){x->ptr, x->idx, x->w}; }

/* ------------------------------------------------------------ tables */

typedef struct tables {
    size_t nu, nv, nb;
    float *t[6]; /* U, V, b, then their Adagrad state */
} tables;

static void tables_take(wl_context *c, wl_model *m, tables *s)
{
    wl_model_options o;
    check_ok(c, wl_model_get_options(m, &o), "wl_model_get_options");
    const size_t ru = o.num_user_features ? o.num_user_features : o.num_users;
    const size_t ri = o.num_item_features ? o.num_item_features : o.num_items;
    s->nu = ru * o.dim;
    s->nv = ri * o.dim;
    s->nb = ri;
    const size_t n[3] = {s->nu, s->nv, s->nb};
    for (int t = 0; t < 6; ++t) {
        s->t[t] = wlt_alloc(n[t % 3] * sizeof(float) + 1);
        if (t < 3)
            check_ok(c, wl_model_read(m, (wl_table)t, s->t[t]), "wl_model_read");
        else if (o.optimizer == WL_OPTIMIZER_ADAGRAD)
            check_ok(c, wl_model_read_state(m, (wl_table)(t - 3), s->t[t]), "wl_model_read_state");
        else
            memset(s->t[t], 0, n[t % 3] * sizeof(float));
    }
}

static void tables_free(tables *s)
{
    for (int t = 0; t < 6; ++t)
        free(s->t[t]);
}

static int tables_equal(const tables *a, const tables *b)
{
    const size_t n[3] = {a->nu, a->nv, a->nb};
    for (int t = 0; t < 6; ++t)
        if (memcmp(a->t[t], b->t[t], n[t % 3] * sizeof(float)))
            return 0;
    return 1;
}

static void assert_close_to_ref(const tables *s, const ref_model *r, const char *what)
{
    const float *want[6] = {r->U, r->V, r->b, r->AU, r->AV, r->Ab};
    const size_t n[3] = {s->nu, s->nv, s->nb};
    static const char *const names[6] = {"U", "V", "b", "state U", "state V", "state b"};
    for (int t = 0; t < (r->o.optimizer == WL_OPTIMIZER_ADAGRAD ? 6 : 3); ++t)
        for (size_t e = 0; e < n[t % 3]; ++e)
            if (!wlt_close(s->t[t][e], want[t][e], 1e-5, 1e-6))
                fail_msg("%s: %s[%zu] = %.9g, reference %.9g", what, names[t], e, (double)s->t[t][e],
                         (double)want[t][e]);
}

static void ref_sync(ref_model *r, const tables *s)
{
    float *dst[6] = {r->U, r->V, r->b, r->AU, r->AV, r->Ab};
    const size_t n[3] = {s->nu, s->nv, s->nb};
    for (int t = 0; t < 6; ++t)
        memcpy(dst[t], s->t[t], n[t % 3] * sizeof(float));
}

/* ------------------------------------------------------------ batches */

typedef struct batch {
    int32_t users[ROWS], positives[ROWS], neg[ROWS * NEG], expanded[ROWS * NEG];
    float weights[ROWS];
    uint64_t key;
} batch;

/* mode 0: per-row candidates, 2: sampled (the scores are wl_model_score's: the reference's bits). */
static void batch_make(batch *x, uint64_t model_seed, int mode, uint64_t seed)
{
    ref_rng g;
    ref_rng_seed(&g, seed);
    x->key = seed * 7 + 1;
    for (size_t r = 0; r < ROWS; ++r) {
        x->users[r] = (int32_t)(ref_rng_next(&g) % NU);
        x->positives[r] = (int32_t)(ref_rng_next(&g) % NI);
        const uint64_t pick = ref_rng_next(&g) % 8;
        x->weights[r] = pick == 0 ? 0.0f : pick == 1 ? 2.5f : (float)ref_rng_uniform(&g, 0.1, 2.0);
        for (size_t j = 0; j < NEG; ++j) {
            x->neg[r * NEG + j] = (int32_t)(ref_rng_next(&g) % NI);
            x->expanded[r * NEG + j] = mode == 0 ? x->neg[r * NEG + j]
                                                 : ref_sample(model_seed, x->key, r, j, NI, x->positives[r]);
        }
    }
}

static wl_batch batch_of(batch *x, int mode, int weighted)
{
    return (wl_batch){
        ROWS, x->users, x->positives, NEG, mode == 0 ? x->neg : NULL, 0, x->key, weighted ? x->weights : NULL};
}

static void feature_options(wl_model_options *o, uint64_t seed, wl_optimizer opt, float lr)
{
    wl_model_options_default(o, NU, NI, DIM);
    o->seed = seed;
    o->optimizer = opt;
    o->learning_rate = lr;
    o->num_user_features = NU + XU;
    o->num_item_features = NI + XI;
}

/* The reference model of o's feature tables. */
static void ref_feature_model(ref_model *r, const wl_model_options *o)
{
    wl_model_options t = *o;
    t.num_users = o->num_user_features ? o->num_user_features : o->num_users;
    t.num_items = o->num_item_features ? o->num_item_features : o->num_items;
    t.num_user_features = t.num_item_features = 0;
    ref_model_create(r, &t);
}

/* ------------------------------------------------------------ tests */

/* A matrix whose row r is feature perm(r) = rows - 1 - r, weight 1 (not the identity: the general path). */
static void reversal(matrix *x, size_t rows)
{
    x->ptr[0] = 0;
    for (size_t r = 0; r < rows; ++r) {
        x->idx[r] = (int32_t)(rows - 1 - r);
        x->w[r] = 1.0f;
        x->ptr[r + 1] = r + 1;
    }
}

/* Table rows in reversed order (rows of n floats). */
static void reverse_rows(const float *in, float *out, size_t rows, size_t n)
{
    for (size_t r = 0; r < rows; ++r)
        memcpy(out + (rows - 1 - r) * n, in + r * n, n * sizeof(float));
}

/* num_*_features = num_users, num_items with the default (identity) matrices: today's model, bit for bit; and
 * with the rows reversed (the general feature path: representations, scatter through the matrix) the same bits in
 * the reversed rows. */
static void test_identity_is_todays_model(void **state)
{
    (void)state;
    for (int p = 0; p < WLT_PLANS; ++p) {
        for (int opt = 0; opt < 2; ++opt) {
            wl_context *c = ctxs[p];
            wl_model_options o;
            wl_model_options_default(&o, NU, NI, DIM);
            o.seed = 11 + (uint64_t)p;
            o.optimizer = opt ? WL_OPTIMIZER_SGD : WL_OPTIMIZER_ADAGRAD;
            o.l2_users = 0.01f;
            o.l2_items = 0.02f;
            wl_model_options f = o;
            f.num_user_features = NU;
            f.num_item_features = NI;
            wl_model *a = model_new(c, &o), *b = model_new(c, &f), *v = model_new(c, &f);
            {
                /* v: reversed matrices and reversed initial tables, so its representations are a's tables */
                matrix mu, mi;
                reversal(&mu, NU);
                reversal(&mi, NI);
                check_ok(c, wl_model_set_features(v, WL_TABLE_USERS, mu.ptr, mu.idx, mu.w), "set reversal");
                check_ok(c, wl_model_set_features(v, WL_TABLE_ITEMS, mi.ptr, mi.idx, mi.w), "set reversal");
                tables t0;
                tables_take(c, a, &t0);
                float *buf = wlt_alloc(NI * DIM * sizeof(float));
                const size_t rows[3] = {NU, NI, NI}, width[3] = {DIM, DIM, 1};
                for (int t = 0; t < 3; ++t) {
                    reverse_rows(t0.t[t], buf, rows[t], width[t]);
                    check_ok(c, wl_model_write(v, (wl_table)t, buf), "write reversed");
                }
                free(buf);
                tables_free(&t0);
            }
            wl_loss_options lo;
            wl_loss_options_default(&lo, NI);
            for (int step = 0; step < 6; ++step) {
                batch x;
                const int mode = step % 3 == 2 ? 2 : 0;
                batch_make(&x, o.seed, mode, 100 + (uint64_t)step);
                wl_batch wb = batch_of(&x, mode, 0);
                wb.shared_negatives = step % 3 == 1; /* SGEMM scores, gathered from the representations */
                wl_step_result ra, rb, rv;
                check_ok(c, wl_model_step(a, &lo, &wb, &ra), "step (no features)");
                check_ok(c, wl_model_step(b, &lo, &wb, &rb), "step (identity features)");
                check_ok(c, wl_model_step(v, &lo, &wb, &rv), "step (reversed features)");
                assert_true(ra.loss == rb.loss && ra.offenders == rb.offenders && ra.scores == rb.scores);
                assert_true(ra.loss == rv.loss && ra.offenders == rv.offenders && ra.scores == rv.scores);
            }
            tables ta, tb;
            tables_take(c, a, &ta);
            tables_take(c, b, &tb);
            if (!tables_equal(&ta, &tb))
                fail_msg("plan %d, %s: identity features differ from the model without features", p,
                         opt ? "SGD" : "Adagrad");
            tables tv;
            tables_take(c, v, &tv);
            {
                const size_t rows[3] = {NU, NI, NI}, width[3] = {DIM, DIM, 1};
                float *buf = wlt_alloc(NI * DIM * sizeof(float));
                for (int t = 0; t < 6; ++t) {
                    if (opt && t >= 3)
                        continue;
                    reverse_rows(tv.t[t], buf, rows[t % 3], width[t % 3]);
                    if (memcmp(buf, ta.t[t], rows[t % 3] * width[t % 3] * sizeof(float)))
                        fail_msg("plan %d, %s: table %d of the reversed feature model differs from the model "
                                 "without features",
                                 p, opt ? "SGD" : "Adagrad", t);
                }
                free(buf);
            }
            tables_free(&tv);
            /* the representations are the tables, and the catalogue agrees */
            float *rep = wlt_alloc(NI * DIM * sizeof(float));
            check_ok(c, wl_model_read_representations(b, WL_TABLE_ITEMS, rep), "read_representations");
            assert_memory_equal(rep, ta.t[1], NI * DIM * sizeof(float));
            int32_t users[NU], ia[NU * 5], ib[NU * 5];
            float sa[NU * 5], sb[NU * 5];
            for (int u = 0; u < NU; ++u)
                users[u] = u;
            check_ok(c, wl_model_recommend(a, NU, users, 5, 0, ia, sa), "recommend");
            check_ok(c, wl_model_recommend(b, NU, users, 5, 0, ib, sb), "recommend");
            assert_memory_equal(ia, ib, sizeof ia);
            assert_memory_equal(sa, sb, sizeof sa);
            free(rep);
            tables_free(&ta);
            tables_free(&tb);
            wl_model_destroy(a);
            wl_model_destroy(b);
            wl_model_destroy(v);
        }
    }
}

/* Steps with feature matrices and sample weights against the reference, every plan, both optimizers. */
static void test_steps_against_reference(void **state)
{
    (void)state;
    for (int p = 0; p < WLT_PLANS; ++p) {
        for (int opt = 0; opt < 2; ++opt) {
            wl_context *c = ctxs[p];
            wl_model_options o;
            feature_options(&o, 21 + (uint64_t)p, opt ? WL_OPTIMIZER_SGD : WL_OPTIMIZER_ADAGRAD, 0.1f);
            o.l2_items = 0.01f;
            wl_model *m = model_new(c, &o);
            matrix mu, mi;
            matrix_make(&mu, NU, 1, NU, XU, 0, 3, 5 + (uint64_t)p);
            matrix_make(&mi, NI, p % 2 == 0, NI, XI, 1, 7, 6 + (uint64_t)p); /* odd plans: items by genre only */
            check_ok(c, wl_model_set_features(m, WL_TABLE_USERS, mu.ptr, mu.idx, mu.w), "set user features");
            check_ok(c, wl_model_set_features(m, WL_TABLE_ITEMS, mi.ptr, mi.idx, mi.w), "set item features");
            ref_model r;
            ref_feature_model(&r, &o);
            const ref_features ru = ref_of(&mu), ri = ref_of(&mi);
            wl_loss_options lo;
            wl_loss_options_default(&lo, NI);
            lo.reduction = opt ? WL_REDUCE_SUM : WL_REDUCE_MEAN;
            for (int step = 0; step < 4; ++step) {
                batch x;
                const int mode = step % 2 ? 2 : 0;
                batch_make(&x, o.seed, mode, 300 + (uint64_t)step * 13 + (uint64_t)p);
                const int weighted = step >= 2;
                const wl_batch wb = batch_of(&x, mode, weighted);
                wl_step_result got, want;
                check_ok(c, wl_model_step(m, &lo, &wb, &got), "feature step");
                ref_feature_step(&r, NU, NI, &ru, &ri, &lo, ROWS, x.users, x.positives, NEG, x.expanded,
                                 weighted ? x.weights : NULL, &want, NULL);
                char what[96];
                snprintf(what, sizeof what, "plan %d, %s, step %d (%s%s)", p, opt ? "SGD" : "Adagrad", step,
                         mode ? "sampled" : "per-row", weighted ? ", weighted" : "");
                if (got.offenders != want.offenders || got.scores != want.scores ||
                    !(fabs(got.loss - want.loss) <= 1e-5 * fabs(want.loss) + 1e-6))
                    fail_msg("%s: result %g %llu %llu, reference %g %llu %llu", what, got.loss,
                             (unsigned long long)got.offenders, (unsigned long long)got.scores, want.loss,
                             (unsigned long long)want.offenders, (unsigned long long)want.scores);
                tables t;
                tables_take(c, m, &t);
                assert_close_to_ref(&t, &r, what);
                ref_sync(&r, &t);
                tables_free(&t);
            }
            ref_model_free(&r);
            wl_model_destroy(m);
        }
    }
}

/* A run is bitwise the same on every plan and twice; weight-0 rows add nothing; weights through wl_batch_cl. */
static void test_determinism_and_weights(void **state)
{
    (void)state;
    tables first;
    memset(&first, 0, sizeof first);
    for (int p = 0; p < WLT_PLANS; ++p) {
        wl_context *c = ctxs[p];
        wl_model_options o;
        feature_options(&o, 5, WL_OPTIMIZER_ADAGRAD, 0.05f);
        matrix mu, mi;
        matrix_make(&mu, NU, 1, NU, XU, 1, NU, 41);
        matrix_make(&mi, NI, 1, NI, XI, 1, NI, 42);
        wl_model *m = model_new(c, &o), *z = model_new(c, &o), *h = model_new(c, &o);
        wl_model *all[3] = {m, z, h};
        for (int k = 0; k < 3; ++k) {
            check_ok(c, wl_model_set_features(all[k], WL_TABLE_USERS, mu.ptr, mu.idx, mu.w), "set");
            check_ok(c, wl_model_set_features(all[k], WL_TABLE_ITEMS, mi.ptr, mi.idx, mi.w), "set");
        }
        wl_loss_options lo;
        wl_loss_options_default(&lo, NI);
        for (int step = 0; step < 3; ++step) {
            batch x;
            batch_make(&x, o.seed, 2, 500 + (uint64_t)step);
            const wl_batch wb = batch_of(&x, 2, 1);
            check_ok(c, wl_model_step(m, &lo, &wb, NULL), "weighted step");
            /* z: the same rows with every zero-weight row's weight 0 and the others 1; h: only the others */
            float w01[ROWS];
            int32_t hu[ROWS], hp[ROWS];
            size_t n = 0;
            for (size_t r = 0; r < ROWS; ++r) {
                w01[r] = x.weights[r] == 0.0f ? 0.0f : 1.0f;
                if (w01[r] != 0.0f) {
                    hu[n] = x.users[r];
                    hp[n++] = x.positives[r];
                }
            }
            (void)hu;
            (void)hp;
            wl_batch zb = batch_of(&x, 0, 0);
            zb.weights = w01;
            wl_batch hb = zb;
            hb.weights = NULL;
            /* per-row candidates: the same candidates for the kept rows in both */
            int32_t hn[ROWS * NEG];
            n = 0;
            for (size_t r = 0; r < ROWS; ++r)
                if (w01[r] != 0.0f) {
                    hu[n] = x.users[r];
                    hp[n] = x.positives[r];
                    memcpy(hn + n * NEG, x.neg + r * NEG, NEG * sizeof(int32_t));
                    ++n;
                }
            hb.rows = n;
            hb.users = hu;
            hb.positives = hp;
            hb.neg_items = hn;
            wl_loss_options sum = lo;
            sum.reduction = WL_REDUCE_SUM; /* the mean would divide by the rows */
            check_ok(c, wl_model_step(z, &sum, &zb, NULL), "0/1 weighted step");
            check_ok(c, wl_model_step(h, &sum, &hb, NULL), "step on the kept rows");
        }
        tables tm, tz, th;
        tables_take(c, m, &tm);
        tables_take(c, z, &tz);
        tables_take(c, h, &th);
        if (!tables_equal(&tz, &th))
            fail_msg("plan %d: rows of weight 0 changed the tables", p);
        if (p == 0)
            first = tm;
        else if (!tables_equal(&first, &tm))
            fail_msg("plan %d: the feature model's tables differ from plan 0's", p);
        if (p)
            tables_free(&tm);
        tables_free(&tz);
        tables_free(&th);
        /* wl_batch_cl with a weight buffer; a negative weight there is refused naming its row */
        cl_context cx = wl_context_cl_context(c);
        batch x;
        batch_make(&x, o.seed, 2, 900);
        x.weights[5] = -1.0f;
        cl_mem bu = wlt_make_buffer(cx, sizeof x.users, x.users),
               bp = wlt_make_buffer(cx, sizeof x.positives, x.positives),
               bw = wlt_make_buffer(cx, sizeof x.weights, x.weights);
        const wl_batch_cl bc = {ROWS, 0, bu, bp, NEG, NULL, 0, x.key, bw};
        wl_step_result r;
        assert_int_equal(wl_model_step_cl(z, &lo, &bc, &r, 0, NULL, NULL), WL_ERROR_INVALID_ARGUMENT);
        assert_non_null(strstr(wl_context_last_error(c), "batch row 5"));
        assert_non_null(strstr(wl_context_last_error(c), "sample weight"));
        const wl_batch_cl small = {4, 0, bu, bp, NEG, NULL, 0, x.key, bw};
        check_ok(c, wl_model_step_cl(z, &lo, &small, &r, 0, NULL, NULL), "step_cl with weights");
        clReleaseMemObject(bu);
        clReleaseMemObject(bp);
        clReleaseMemObject(bw);
        wl_model_destroy(m);
        wl_model_destroy(z);
        wl_model_destroy(h);
    }
    tables_free(&first);
}

/* The loss of the rows' fixed stops, in double, with representations from the feature tables in double. */
static double fixed_loss(const ref_model *r, const ref_features *uf, const ref_features *vf, const wl_loss_options *lo,
                         const batch *x, const int64_t *stop)
{
    double sum = 0.0;
    for (size_t row = 0; row < ROWS; ++row) {
        if (stop[row] < 0)
            continue;
        const int32_t u = x->users[row], i = x->positives[row], c = x->expanded[row * NEG + (size_t)stop[row]];
        const double w = (double)(float)ref_rank_weight(lo->num_labels, (uint64_t)stop[row] + 1, lo->weighting);
        double si = 0, sc = 0;
        for (size_t d = 0; d < DIM; ++d) {
            double pu = 0, qi = 0, qc = 0;
            for (uint64_t k = uf->ptr[u]; k < uf->ptr[u + 1]; ++k)
                pu += (double)uf->w[k] * r->U[(size_t)uf->idx[k] * DIM + d];
            for (uint64_t k = vf->ptr[i]; k < vf->ptr[i + 1]; ++k)
                qi += (double)vf->w[k] * r->V[(size_t)vf->idx[k] * DIM + d];
            for (uint64_t k = vf->ptr[c]; k < vf->ptr[c + 1]; ++k)
                qc += (double)vf->w[k] * r->V[(size_t)vf->idx[k] * DIM + d];
            si += pu * qi;
            sc += pu * qc;
        }
        for (uint64_t k = vf->ptr[i]; k < vf->ptr[i + 1]; ++k)
            si += (double)vf->w[k] * r->b[vf->idx[k]];
        for (uint64_t k = vf->ptr[c]; k < vf->ptr[c + 1]; ++k)
            sc += (double)vf->w[k] * r->b[vf->idx[k]];
        sum += w * ((double)lo->margin - si + sc);
    }
    return sum;
}

/* SGD with lr 1 and no L2: a step moves each feature row by minus its gradient, which must match the finite
 * differences of the loss through the feature sums (stops held fixed). */
static void test_finite_differences(void **state)
{
    (void)state;
    wl_context *c = ctxs[0];
    wl_model_options o;
    feature_options(&o, 77, WL_OPTIMIZER_SGD, 1.0f);
    wl_model *m = model_new(c, &o);
    matrix mu, mi;
    matrix_make(&mu, NU, 1, NU, XU, 0, NU, 61);
    matrix_make(&mi, NI, 1, NI, XI, 1, NI, 62);
    check_ok(c, wl_model_set_features(m, WL_TABLE_USERS, mu.ptr, mu.idx, mu.w), "set");
    check_ok(c, wl_model_set_features(m, WL_TABLE_ITEMS, mi.ptr, mi.idx, mi.w), "set");
    const ref_features ru = ref_of(&mu), ri = ref_of(&mi);
    ref_model r;
    ref_feature_model(&r, &o);
    wl_loss_options lo;
    wl_loss_options_default(&lo, NI);
    lo.margin = 0.0f;
    lo.reduction = WL_REDUCE_SUM;
    batch x;
    batch_make(&x, o.seed, 0, 4242);
    /* the reference's stops: a step on a copy (the update comes after every stop is known) */
    ref_model copy;
    ref_feature_model(&copy, &o);
    int64_t stop[ROWS];
    ref_feature_step(&copy, NU, NI, &ru, &ri, &lo, ROWS, x.users, x.positives, NEG, x.expanded, NULL, NULL, stop);
    ref_model_free(&copy);
    tables before, after;
    tables_take(c, m, &before);
    check_ok(c, wl_model_step(m, &lo, &(wl_batch){ROWS, x.users, x.positives, NEG, x.neg, 0, 0, NULL}, NULL), "step");
    tables_take(c, m, &after);
    /* the extra features' rows (shared by several users or items) and some identity rows */
    int checked = 0;
    for (int e = 0; e < 40; ++e) {
        const int which = e % 3; /* U, V, b */
        const size_t rows = which == 0 ? NU + XU : NI + XI;
        const size_t row = e < 24 ? rows - 1 - (size_t)(e / 3) % (which ? XI : XU) : (size_t)(e * 7) % rows;
        const size_t at = which == 2 ? row : row * DIM + (size_t)e % DIM;
        float *w = which == 0 ? r.U + at : which == 1 ? r.V + at : r.b + at;
        const float saved = *w, h = 1e-2f;
        *w = saved + h;
        const double lp = fixed_loss(&r, &ru, &ri, &lo, &x, stop);
        *w = saved - h;
        const double lm = fixed_loss(&r, &ru, &ri, &lo, &x, stop);
        *w = saved;
        const double fd = (lp - lm) / (2.0 * (double)h);
        const double g = (double)before.t[which][at] - (double)after.t[which][at];
        if (!(fabs(g - fd) <= 1e-3 * fabs(fd) + 1e-5))
            fail_msg("d loss / d %s[%zu]: the step gives %.9g, finite differences %.9g", "UVb" + which, at, g, fd);
        checked += fd != 0.0;
    }
    assert_true(checked >= 10);
    tables_free(&before);
    tables_free(&after);
    ref_model_free(&r);
    wl_model_destroy(m);
}

/* Representations: the reference's sums exactly; a side without features gives its table. */
static void test_representations(void **state)
{
    (void)state;
    wl_context *c = ctxs[1];
    wl_model_options o;
    feature_options(&o, 3, WL_OPTIMIZER_ADAGRAD, 0.05f);
    o.num_user_features = 0;
    wl_model *m = model_new(c, &o);
    matrix mi;
    matrix_make(&mi, NI, 0, 0, NI + XI, 0, 4, 91);
    check_ok(c, wl_model_set_features(m, WL_TABLE_ITEMS, mi.ptr, mi.idx, mi.w), "set");
    /* a trained bias table: write one */
    float *b = wlt_alloc((NI + XI) * sizeof(float));
    for (size_t f = 0; f < NI + XI; ++f)
        b[f] = (float)f * 0.01f - 0.2f;
    check_ok(c, wl_model_write(m, WL_TABLE_ITEM_BIAS, b), "write b");
    tables t;
    tables_take(c, m, &t);
    float *got = wlt_alloc(NI * DIM * sizeof(float)), *want = wlt_alloc(NI * DIM * sizeof(float));
    const ref_features ri = ref_of(&mi), none = {NULL, NULL, NULL};
    check_ok(c, wl_model_read_representations(m, WL_TABLE_ITEMS, got), "items");
    ref_represent(&ri, NI, DIM, t.t[1], want);
    assert_memory_equal(got, want, NI * DIM * sizeof(float));
    check_ok(c, wl_model_read_representations(m, WL_TABLE_ITEM_BIAS, got), "biases");
    ref_represent(&ri, NI, 1, t.t[2], want);
    assert_memory_equal(got, want, NI * sizeof(float));
    for (size_t d = 0; d < DIM; ++d)
        assert_true(got[4] == 0.0f); /* row 4 is empty */
    check_ok(c, wl_model_read_representations(m, WL_TABLE_USERS, got), "users");
    ref_represent(&none, NU, DIM, t.t[0], want);
    assert_memory_equal(got, want, NU * DIM * sizeof(float));
    free(got);
    free(want);
    free(b);
    tables_free(&t);
    wl_model_destroy(m);
}

/* Host top-k of scores (ties to the lower index), excluding ex[]. */
static void host_top_k(const float *p, const float *q, const float *bias, const int32_t *ex, size_t nex, size_t k,
                       int32_t *items)
{
    float s[NI];
    int used[NI];
    for (int32_t x = 0; x < NI; ++x) {
        s[x] = 0.0f;
        for (size_t d = 0; d < DIM; ++d)
            s[x] += p[d] * q[(size_t)x * DIM + d];
        s[x] += bias[x];
        used[x] = 0;
        for (size_t e = 0; e < nex; ++e)
            used[x] |= ex[e] == x;
    }
    for (size_t j = 0; j < k; ++j) {
        int32_t best = -1;
        for (int32_t x = 0; x < NI; ++x)
            if (!used[x] && (best < 0 || s[x] > s[best]))
                best = x;
        items[j] = best;
        if (best >= 0)
            used[best] = 1;
    }
}

/* Cold start: users given as feature rows get what a user of the same representation gets; items with features and
 * no interaction are scored from their features and recommended. */
static void test_cold_start(void **state)
{
    (void)state;
    for (int p = 0; p < WLT_PLANS; p += 3) {
        wl_context *c = ctxs[p];
        wl_model_options o;
        feature_options(&o, 8, WL_OPTIMIZER_ADAGRAD, 0.1f);
        wl_model *m = model_new(c, &o);
        matrix mu, mi;
        matrix_make(&mu, NU, 1, NU, XU, 1, NU, 71);
        /* items 40..49 are cold: genre features only, never a positive or candidate in training */
        matrix_make(&mi, NI, 1, NI, XI, 1, NI, 72);
        for (size_t r = 40; r < NI; ++r) { /* one genre, weight 1 */
            mi.idx[mi.ptr[40] + r - 40] = (int32_t)(NI + r % XI);
            mi.w[mi.ptr[40] + r - 40] = 1.0f;
            mi.ptr[r + 1] = mi.ptr[r] + 1;
        }
        check_ok(c, wl_model_set_features(m, WL_TABLE_USERS, mu.ptr, mu.idx, mu.w), "set");
        check_ok(c, wl_model_set_features(m, WL_TABLE_ITEMS, mi.ptr, mi.idx, mi.w), "set");
        wl_loss_options lo;
        wl_loss_options_default(&lo, NI);
        for (int step = 0; step < 5; ++step) {
            batch x;
            batch_make(&x, o.seed, 0, 700 + (uint64_t)step);
            for (size_t e = 0; e < ROWS; ++e)
                x.positives[e] %= 40;
            for (size_t e = 0; e < ROWS * NEG; ++e)
                x.neg[e] %= 40;
            check_ok(c, wl_model_step(m, &lo, &(wl_batch){ROWS, x.users, x.positives, NEG, x.neg, 0, 0, NULL}, NULL),
                     "step");
        }
        /* users 0..5 as feature rows (their own rows of the matrix), excluding items 0..2 */
        const size_t n = 6, k = 8;
        uint64_t ex_ptr[7];
        int32_t ex_items[18];
        for (size_t r = 0; r <= n; ++r)
            ex_ptr[r] = 3 * r;
        for (size_t e = 0; e < 18; ++e)
            ex_items[e] = (int32_t)(e % 3);
        int32_t got[6 * 8], by_id[6 * 8], want[8];
        float scores[6 * 8], id_scores[6 * 8];
        int32_t ids[6] = {0, 1, 2, 3, 4, 5};
        check_ok(c, wl_model_recommend_features(m, n, mu.ptr, mu.idx, mu.w, NULL, NULL, k, by_id, id_scores),
                 "recommend_features");
        check_ok(c, wl_model_recommend(m, n, ids, k, 0, got, scores), "recommend");
        assert_memory_equal(got, by_id, sizeof got);
        assert_memory_equal(scores, id_scores, sizeof scores);
        check_ok(c, wl_model_recommend_features(m, n, mu.ptr, mu.idx, mu.w, ex_ptr, ex_items, k, got, scores),
                 "recommend_features with exclusions");
        float *P = wlt_alloc(NU * DIM * sizeof(float)), *Q = wlt_alloc(NI * DIM * sizeof(float)),
              *B = wlt_alloc(NI * sizeof(float));
        check_ok(c, wl_model_read_representations(m, WL_TABLE_USERS, P), "p");
        check_ok(c, wl_model_read_representations(m, WL_TABLE_ITEMS, Q), "q");
        check_ok(c, wl_model_read_representations(m, WL_TABLE_ITEM_BIAS, B), "b");
        int cold_seen = 0;
        for (size_t r = 0; r < n; ++r) {
            for (size_t e = 0; e < 3; ++e)
                for (size_t j = 0; j < k; ++j)
                    assert_int_not_equal(got[r * k + j], (int32_t)e);
            /* the same set as a host top-k (SGEMM's sums may order near-ties differently: compare as sets) */
            for (size_t j = 0; j < k; ++j)
                want[j] = -1;
            host_top_k(P + r * DIM, Q, B, ex_items, 3, k, want);
            int same = 0;
            for (size_t j = 0; j < k; ++j)
                for (size_t q = 0; q < k; ++q)
                    same += got[r * k + j] == want[q];
            assert_true(same >= (int)k - 1);
            for (size_t j = 0; j < k; ++j)
                cold_seen += got[r * k + j] >= 40;
        }
        /* the cold items' biases are their genres' trained biases (initially 0), and they are recommended */
        for (size_t x = 40; x < NI; ++x)
            assert_true(B[x] != 0.0f);
        assert_true(cold_seen > 0);
        free(P);
        free(Q);
        free(B);
        wl_model_destroy(m);
    }
}

/* Evaluation among a subset of the items against a host computation. */
static void test_evaluate_among(void **state)
{
    (void)state;
    wl_context *c = ctxs[2];
    wl_model_options o;
    feature_options(&o, 9, WL_OPTIMIZER_ADAGRAD, 0.05f);
    wl_model *m = model_new(c, &o);
    /* quantised tables: ties happen */
    float *V = wlt_alloc((NI + XI) * DIM * sizeof(float));
    ref_rng g;
    ref_rng_seed(&g, 5);
    for (size_t e = 0; e < (size_t)(NI + XI) * DIM; ++e)
        V[e] = (float)(ref_rng_next(&g) % 5) * 0.25f;
    check_ok(c, wl_model_write(m, WL_TABLE_ITEMS, V), "write V");
    uint8_t among[NI];
    for (size_t x = 0; x < NI; ++x)
        among[x] = x % 3 != 0;
    uint64_t held_ptr[NU + 1], known_ptr[NU + 1];
    int32_t held[NU * 3], known[NU * 3];
    held_ptr[0] = known_ptr[0] = 0;
    for (size_t u = 0; u < NU; ++u) {
        uint64_t h = held_ptr[u], kn = known_ptr[u];
        for (int32_t x = (int32_t)(u % 4) + 1; x < NI && h - held_ptr[u] < (u % 3); x += 7)
            if (among[x])
                held[h++] = x;
        for (int32_t x = (int32_t)(u % 5); x < NI && kn - known_ptr[u] < 3; x += 11)
            known[kn++] = x;
        held_ptr[u + 1] = h;
        known_ptr[u + 1] = kn;
    }
    check_ok(c, wl_model_set_known(m, known_ptr, known), "set_known");
    float *P = wlt_alloc(NU * DIM * sizeof(float)), *Q = wlt_alloc(NI * DIM * sizeof(float)),
          *B = wlt_alloc(NI * sizeof(float));
    check_ok(c, wl_model_read_representations(m, WL_TABLE_USERS, P), "p");
    check_ok(c, wl_model_read_representations(m, WL_TABLE_ITEMS, Q), "q");
    check_ok(c, wl_model_read_representations(m, WL_TABLE_ITEM_BIAS, B), "b");
    for (int exclude = 0; exclude < 2; ++exclude) {
        wl_metrics got;
        wl_user_metrics per[NU];
        check_ok(c, wl_model_evaluate_among(m, among, held_ptr, held, 5, exclude, &got, per), "evaluate_among");
        for (size_t u = 0; u < NU; ++u) {
            const size_t n = (size_t)(held_ptr[u + 1] - held_ptr[u]);
            if (!n)
                continue;
            uint32_t ranks[3];
            int64_t negatives = 0;
            for (int32_t x = 0; x < NI; ++x) {
                int is_known = 0, is_held = 0;
                for (uint64_t q = known_ptr[u]; q < known_ptr[u + 1]; ++q)
                    is_known |= known[q] == x;
                for (uint64_t q = held_ptr[u]; q < held_ptr[u + 1]; ++q)
                    is_held |= held[q] == x;
                negatives += among[x] && !is_held && !(exclude && is_known);
            }
            for (size_t j = 0; j < n; ++j) {
                const int32_t t = held[held_ptr[u] + j];
                ranks[j] = 0;
                /* SGEMM's scores: the quantised tables make every product and sum exact */
                float st = B[t];
                for (size_t d = 0; d < DIM; ++d)
                    st += P[u * DIM + d] * Q[(size_t)t * DIM + d];
                for (int32_t x = 0; x < NI; ++x) {
                    int is_known = 0;
                    for (uint64_t q = known_ptr[u]; q < known_ptr[u + 1]; ++q)
                        is_known |= known[q] == x;
                    if (x == t || !among[x] || (exclude && is_known))
                        continue;
                    float s = B[x];
                    for (size_t d = 0; d < DIM; ++d)
                        s += P[u * DIM + d] * Q[(size_t)x * DIM + d];
                    ranks[j] += s > st;
                }
            }
            wl_user_metrics want;
            ref_user_metrics(n, ranks, negatives, 5, &want);
            if (per[u].hits != want.hits || per[u].best != want.best || fabs(per[u].auc - want.auc) > 1e-12)
                fail_msg("user %zu (exclude %d): hits %u best %u auc %.9g, host %u %u %.9g", u, exclude, per[u].hits,
                         per[u].best, per[u].auc, want.hits, want.best, want.auc);
        }
    }
    /* NULL among is wl_model_evaluate; a held-out item outside the subset is refused */
    wl_metrics a, b;
    check_ok(c, wl_model_evaluate_among(m, NULL, held_ptr, held, 5, 1, &a, NULL), "among NULL");
    check_ok(c, wl_model_evaluate(m, held_ptr, held, 5, 1, &b, NULL), "evaluate");
    assert_memory_equal(&a, &b, sizeof a);
    among[held[0]] = 0;
    assert_int_equal(wl_model_evaluate_among(m, among, held_ptr, held, 5, 1, &a, NULL), WL_ERROR_INVALID_ARGUMENT);
    assert_non_null(strstr(wl_context_last_error(c), "not among"));
    free(V);
    free(P);
    free(Q);
    free(B);
    wl_model_destroy(m);
}

/* A feature model saved and loaded: options, matrices, tables and the next step the same. */
static void test_model_file(void **state)
{
    (void)state;
    wl_context *c = ctxs[0];
    wl_model_options o;
    feature_options(&o, 12, WL_OPTIMIZER_ADAGRAD, 0.05f);
    wl_model *m = model_new(c, &o);
    matrix mu, mi;
    matrix_make(&mu, NU, 1, NU, XU, 0, 2, 81);
    matrix_make(&mi, NI, 0, 0, NI + XI, 1, 3, 82);
    check_ok(c, wl_model_set_features(m, WL_TABLE_USERS, mu.ptr, mu.idx, mu.w), "set");
    check_ok(c, wl_model_set_features(m, WL_TABLE_ITEMS, mi.ptr, mi.idx, mi.w), "set");
    wl_loss_options lo;
    wl_loss_options_default(&lo, NI);
    batch x;
    batch_make(&x, o.seed, 2, 1234);
    const wl_batch wb = batch_of(&x, 2, 1);
    check_ok(c, wl_model_step(m, &lo, &wb, NULL), "step");
    void *data = NULL;
    size_t size = 0;
    check_ok(c, wl_model_save_memory(m, "app", 3, &data, &size), "save");
    wl_model *l = NULL;
    check_ok(c, wl_model_load_memory(c, data, size, &l, NULL, NULL), "load");
    wl_model_options lo2;
    check_ok(c, wl_model_get_options(l, &lo2), "options");
    assert_int_equal(lo2.num_user_features, NU + XU);
    assert_int_equal(lo2.num_item_features, NI + XI);
    const uint64_t *ptr;
    const int32_t *idx;
    const float *w;
    check_ok(c, wl_model_get_features(l, WL_TABLE_ITEMS, &ptr, &idx, &w), "get_features");
    assert_memory_equal(ptr, mi.ptr, (NI + 1) * sizeof(uint64_t));
    assert_memory_equal(idx, mi.idx, mi.ptr[NI] * sizeof(int32_t));
    assert_memory_equal(w, mi.w, mi.ptr[NI] * sizeof(float));
    check_ok(c, wl_model_step(m, &lo, &wb, NULL), "step after save");
    check_ok(c, wl_model_step(l, &lo, &wb, NULL), "step after load");
    tables a, b;
    tables_take(c, m, &a);
    tables_take(c, l, &b);
    assert_true(tables_equal(&a, &b));
    tables_free(&a);
    tables_free(&b);
    /* damage in a feature section behind a valid checksum: refused, naming it */
    unsigned char *d = data;
    const unsigned char *at = NULL;
    for (size_t k = 64; k + 4 <= size && !at; ++k)
        if (!memcmp(d + k, "IFEA", 4))
            at = d + k;
    assert_non_null(at);
    wl_model_destroy(l);
    l = NULL;
    /* the first feature index of IFEA (after its 16-byte header and indptr) out of range */
    unsigned char *first = (unsigned char *)at + 16 + (NI + 1) * 8;
    first[0] = 0xFF;
    first[1] = 0xFF;
    first[2] = 0xFF;
    first[3] = 0x7F;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t k = 0; k < size - 8; ++k) {
        h ^= d[k];
        h *= 0x100000001b3ull;
    }
    for (int k = 0; k < 8; ++k)
        d[size - 8 + (size_t)k] = (unsigned char)(h >> (8 * k));
    assert_int_equal(wl_model_load_memory(c, data, size, &l, NULL, NULL), WL_ERROR_FILE);
    assert_non_null(strstr(wl_context_last_error(c), "item features"));
    assert_null(l);
    wl_free(data);
    wl_model_destroy(m);
}

/* Every bad matrix and argument refused, the model unchanged. */
static void test_errors(void **state)
{
    (void)state;
    wl_context *c = ctxs[0];
    wl_model_options o;
    feature_options(&o, 13, WL_OPTIMIZER_ADAGRAD, 0.05f);
    o.num_user_features = 0;
    wl_model *m = model_new(c, &o);
    matrix mi;
    matrix_make(&mi, NI, 1, NI, XI, 1, NI, 99);
    check_ok(c, wl_model_set_features(m, WL_TABLE_ITEMS, mi.ptr, mi.idx, mi.w), "set");
    float *before = wlt_alloc(NI * DIM * sizeof(float)), *after = wlt_alloc(NI * DIM * sizeof(float));
    check_ok(c, wl_model_read_representations(m, WL_TABLE_ITEMS, before), "rep");
    matrix bad;
    struct {
        const char *what, *message;
        int kind;
    } cases[] = {
        {"indptr[0] not 0", "indptr[0]", 0},
        {"indptr decreasing", "less than", 1},
        {"feature out of range", "out of range", 2},
        {"features not ascending", "strictly ascending", 3},
        {"NaN weight", "finite", 4},
        {"Inf weight", "finite", 5},
        {"negative feature", "out of range", 6},
        {"NULL features", "NULL", 7},
        {"NULL indptr", "NULL", 8},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; ++k) {
        bad = mi;
        const uint64_t *ptr = bad.ptr;
        const int32_t *idx = bad.idx;
        switch (cases[k].kind) {
        case 0: bad.ptr[0] = 1; break;
        case 1: bad.ptr[5] = bad.ptr[4] - 1; break;
        case 2: bad.idx[3] = NI + XI; break;
        case 3: bad.idx[bad.ptr[10] + 1] = bad.idx[bad.ptr[10]]; break;
        case 4: bad.w[2] = NAN; break;
        case 5: bad.w[2] = INFINITY; break;
        case 6: bad.idx[0] = -1; break;
        case 7: idx = NULL; break;
        case 8: ptr = NULL; break;
        }
        assert_int_equal(wl_model_set_features(m, WL_TABLE_ITEMS, ptr, idx, bad.w), WL_ERROR_INVALID_ARGUMENT);
        if (!strstr(wl_context_last_error(c), cases[k].message))
            fail_msg("%s: the message \"%s\" does not say \"%s\"", cases[k].what, wl_context_last_error(c),
                     cases[k].message);
    }
    /* a side without features, another side, a bad side */
    assert_int_equal(wl_model_set_features(m, WL_TABLE_USERS, mi.ptr, mi.idx, NULL), WL_ERROR_INVALID_ARGUMENT);
    assert_non_null(strstr(wl_context_last_error(c), "no user features"));
    assert_int_equal(wl_model_set_features(m, WL_TABLE_ITEM_BIAS, mi.ptr, mi.idx, NULL), WL_ERROR_INVALID_ARGUMENT);
    const uint64_t *gp;
    const int32_t *gi;
    const float *gw;
    assert_int_equal(wl_model_get_features(m, WL_TABLE_USERS, &gp, &gi, &gw), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_read_representations(m, (wl_table)7, before), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_read_representations(m, WL_TABLE_ITEMS, NULL), WL_ERROR_INVALID_ARGUMENT);
    check_ok(c, wl_model_read_representations(m, WL_TABLE_ITEMS, after), "rep after");
    assert_memory_equal(before, after, NI * DIM * sizeof(float));
    /* sample weights: NaN, negative, Inf refused before anything runs */
    batch x;
    batch_make(&x, o.seed, 0, 5);
    const float bad_weights[3] = {NAN, -0.5f, INFINITY};
    for (int k = 0; k < 3; ++k) {
        x.weights[7] = bad_weights[k];
        const wl_batch wb = batch_of(&x, 0, 1);
        wl_loss_options lo;
        wl_loss_options_default(&lo, NI);
        assert_int_equal(wl_model_step(m, &lo, &wb, NULL), WL_ERROR_INVALID_ARGUMENT);
        assert_non_null(strstr(wl_context_last_error(c), "weights[7]"));
    }
    check_ok(c, wl_model_read_representations(m, WL_TABLE_ITEMS, after), "rep after steps");
    assert_memory_equal(before, after, NI * DIM * sizeof(float));
    /* recommend_features: bad rows, exclusions, k */
    int32_t items[4];
    uint64_t ptr2[3] = {0, 1, 2};
    int32_t f2[2] = {0, NU};
    assert_int_equal(wl_model_recommend_features(m, 2, ptr2, f2, NULL, NULL, NULL, 2, items, NULL),
                     WL_ERROR_INVALID_ARGUMENT); /* a user feature out of range (the model's NU rows of U) */
    f2[1] = 1;
    const uint64_t ex_ptr[3] = {0, 1, 1};
    const int32_t ex_bad[1] = {NI};
    assert_int_equal(wl_model_recommend_features(m, 2, ptr2, f2, NULL, ex_ptr, NULL, 2, items, NULL),
                     WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_recommend_features(m, 2, ptr2, f2, NULL, ex_ptr, ex_bad, 2, items, NULL),
                     WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_recommend_features(m, 2, ptr2, f2, NULL, NULL, NULL, 0, items, NULL),
                     WL_ERROR_INVALID_ARGUMENT);
    check_ok(c, wl_model_recommend_features(m, 2, ptr2, f2, NULL, NULL, NULL, 2, items, NULL), "a good call");
    free(before);
    free(after);
    wl_model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_is_todays_model),
        cmocka_unit_test(test_steps_against_reference),
        cmocka_unit_test(test_determinism_and_weights),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_representations),
        cmocka_unit_test(test_cold_start),
        cmocka_unit_test(test_evaluate_among),
        cmocka_unit_test(test_model_file),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
