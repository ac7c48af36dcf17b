/*
 * The embedding model (wl_model_*) against the C reference (reference.h):
 * initial tables, steps with per-row, shared and sampled candidates under
 * both optimizers, L2, item bias, known positives and both reductions;
 * untouched rows; finite differences; determinism across runs and launch
 * plans; the sampler; recommend and rank; table and state I/O, whole and
 * by rows; the rows the steps changed; every argument error README.md lists,
 * with the tables unchanged after it.
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

#define TABLE_REL 1e-5
#define TABLE_ABS 1e-6

static wl_context *ctxs[WLT_PLANS];
static char *cache_dir;

static int group_setup(void **state)
{
    (void)state;
    wlt_plan_contexts("model", ctxs, &cache_dir);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    wlt_plan_contexts_free(ctxs, &cache_dir);
    return 0;
}

/* ------------------------------------------------------------ helpers */

static void model_options(wl_model_options *o, uint32_t nu, uint32_t ni, uint32_t dim, uint64_t seed, wl_optimizer opt,
                          float lr)
{
    wl_model_options_default(o, nu, ni, dim);
    o->seed = seed;
    o->optimizer = opt;
    o->learning_rate = lr;
}

static wl_model *model_new(wl_context *c, const wl_model_options *o)
{
    wl_model *m = NULL;
    const wl_status s = wl_model_create(c, o, &m);
    if (s != WL_SUCCESS || !m)
        fail_msg("wl_model_create: %s: %s", wl_status_string(s), wl_context_last_error(c));
    return m;
}

static void check_ok(wl_model *m, wl_status s, const char *what)
{
    (void)m;
    if (s != WL_SUCCESS)
        fail_msg("%s: %s: %s", what, wl_status_string(s), wl_context_last_error(ctxs[0]));
}

/* Everything a model holds on the device, read back. */
typedef struct snap {
    size_t nu, nv, ni;
    int has_state;
    float *U, *V, *b, *AU, *AV, *Ab;
} snap;

static void snap_take(wl_model *m, const wl_model_options *o, snap *s)
{
    s->nu = (size_t)o->num_users * o->dim;
    s->nv = (size_t)o->num_items * o->dim;
    s->ni = o->num_items;
    s->has_state = o->optimizer == WL_OPTIMIZER_ADAGRAD;
    s->U = wlt_alloc(s->nu * sizeof(float));
    s->V = wlt_alloc(s->nv * sizeof(float));
    s->b = wlt_alloc(s->ni * sizeof(float));
    s->AU = wlt_alloc(s->nu * sizeof(float));
    s->AV = wlt_alloc(s->nv * sizeof(float));
    s->Ab = wlt_alloc(s->ni * sizeof(float));
    check_ok(m, wl_model_read(m, WL_TABLE_USERS, s->U), "wl_model_read(users)");
    check_ok(m, wl_model_read(m, WL_TABLE_ITEMS, s->V), "wl_model_read(items)");
    check_ok(m, wl_model_read(m, WL_TABLE_ITEM_BIAS, s->b), "wl_model_read(bias)");
    if (s->has_state) {
        check_ok(m, wl_model_read_state(m, WL_TABLE_USERS, s->AU), "wl_model_read_state(users)");
        check_ok(m, wl_model_read_state(m, WL_TABLE_ITEMS, s->AV), "wl_model_read_state(items)");
        check_ok(m, wl_model_read_state(m, WL_TABLE_ITEM_BIAS, s->Ab), "wl_model_read_state(bias)");
    }
}

static void snap_free(snap *s)
{
    free(s->U);
    free(s->V);
    free(s->b);
    free(s->AU);
    free(s->AV);
    free(s->Ab);
    memset(s, 0, sizeof *s);
}

/* Bitwise equal (tables and, with Adagrad, the state). */
static int snap_equal(const snap *a, const snap *b)
{
    if (memcmp(a->U, b->U, a->nu * sizeof(float)) || memcmp(a->V, b->V, a->nv * sizeof(float)) ||
        memcmp(a->b, b->b, a->ni * sizeof(float)))
        return 0;
    if (a->has_state && (memcmp(a->AU, b->AU, a->nu * sizeof(float)) || memcmp(a->AV, b->AV, a->nv * sizeof(float)) ||
                         memcmp(a->Ab, b->Ab, a->ni * sizeof(float))))
        return 0;
    return 1;
}

static void assert_snap_equal(const snap *a, const snap *b, const char *what)
{
    if (!snap_equal(a, b))
        fail_msg("%s: the tables differ bitwise", what);
}

static int close_array(const char *what, const char *name, const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        if (!wlt_close(got[i], want[i], TABLE_REL, TABLE_ABS)) {
            print_error("%s: %s[%zu] = %.9g, reference %.9g\n", what, name, i, (double)got[i], (double)want[i]);
            return 0;
        }
    }
    return 1;
}

/* s's tables (the state too, with Adagrad) close to the six arrays U, V, b, AU, AV, Ab of the same shapes. */
static void assert_tables_close(const snap *s, const float *const want[6], const char *what)
{
    const float *const got[6] = {s->U, s->V, s->b, s->AU, s->AV, s->Ab};
    const size_t count[6] = {s->nu, s->nv, s->ni, s->nu, s->nv, s->ni};
    static const char *const names[6] = {"U", "V", "b", "state U", "state V", "state b"};
    for (int t = 0; t < (s->has_state ? 6 : 3); ++t)
        if (!close_array(what, names[t], got[t], want[t], count[t]))
            fail_msg("%s: the tables differ", what);
}

/* The device's tables close to the reference's. */
static void assert_close_to_ref(const snap *s, const ref_model *r, const char *what)
{
    const float *const want[6] = {r->U, r->V, r->b, r->AU, r->AV, r->Ab};
    assert_tables_close(s, want, what);
}

/* Two models' tables close. */
static void assert_snap_close(const snap *a, const snap *b, const char *what)
{
    const float *const want[6] = {b->U, b->V, b->b, b->AU, b->AV, b->Ab};
    assert_tables_close(a, want, what);
}

/* Make the reference hold exactly the device's tables, so that the next step starts from the same point (the
 * gradient sums differ in the last bits: fixed point on the device, double here). */
static void ref_sync(ref_model *r, const snap *s)
{
    memcpy(r->U, s->U, s->nu * sizeof(float));
    memcpy(r->V, s->V, s->nv * sizeof(float));
    memcpy(r->b, s->b, s->ni * sizeof(float));
    if (s->has_state) {
        memcpy(r->AU, s->AU, s->nu * sizeof(float));
        memcpy(r->AV, s->AV, s->nv * sizeof(float));
        memcpy(r->Ab, s->Ab, s->ni * sizeof(float));
    }
}

static void assert_result(const wl_step_result *got, const wl_step_result *want, const char *what)
{
    if (got->offenders != want->offenders)
        fail_msg("%s: offenders %llu, reference %llu", what, (unsigned long long)got->offenders,
                 (unsigned long long)want->offenders);
    if (got->scores != want->scores)
        fail_msg("%s: scores %llu, reference %llu", what, (unsigned long long)got->scores,
                 (unsigned long long)want->scores);
    if (!(fabs(got->loss - want->loss) <= 1e-5 * fabs(want->loss) + 1e-6))
        fail_msg("%s: loss %.12g, reference %.12g", what, got->loss, want->loss);
}

/* ------------------------------------------------------------ batches */

enum { MODE_ROWS, MODE_SHARED, MODE_SAMPLED };
static const char *const mode_names[] = {"per-row", "shared", "sampled"};

typedef struct batch {
    int mode;
    size_t rows, negatives;
    int32_t *users, *positives;
    int32_t *neg;      /* as passed: [rows x negatives], [negatives] or NULL */
    int32_t *expanded; /* [rows x negatives]: what the reference scans */
    uint64_t key;
    wl_batch b;
} batch;

static int32_t draw_id(ref_rng *g, uint32_t range) { return (int32_t)(ref_rng_next(g) % range); }

/* Users from [0, user_range) and items from [0, item_range) (sampled candidates: any item), so that ids repeat
 * within the batch and the rows and items above the ranges stay untouched. */
static void batch_make(batch *x, const wl_model_options *o, int mode, size_t rows, size_t negatives, uint64_t seed,
                       uint32_t user_range, uint32_t item_range)
{
    ref_rng g;
    ref_rng_seed(&g, seed);
    x->mode = mode;
    x->rows = rows;
    x->negatives = negatives;
    x->key = seed * 31 + 7;
    x->users = wlt_alloc(rows * sizeof(int32_t));
    x->positives = wlt_alloc(rows * sizeof(int32_t));
    x->expanded = wlt_alloc(rows * negatives * sizeof(int32_t));
    x->neg = NULL;
    for (size_t r = 0; r < rows; ++r) {
        x->users[r] = draw_id(&g, user_range);
        x->positives[r] = draw_id(&g, item_range);
    }
    if (mode == MODE_ROWS) {
        x->neg = wlt_alloc(rows * negatives * sizeof(int32_t));
        for (size_t e = 0; e < rows * negatives; ++e)
            x->neg[e] = draw_id(&g, item_range);
        /* repeated ids on purpose: row 1's first candidate is row 0's positive, row 2 is row 1's user */
        if (rows >= 3) {
            x->neg[negatives] = x->positives[0];
            x->users[2] = x->users[1];
        }
        memcpy(x->expanded, x->neg, rows * negatives * sizeof(int32_t));
    } else if (mode == MODE_SHARED) {
        x->neg = wlt_alloc(negatives * sizeof(int32_t));
        for (size_t j = 0; j < negatives; ++j)
            x->neg[j] = draw_id(&g, item_range);
        for (size_t r = 0; r < rows; ++r)
            memcpy(x->expanded + r * negatives, x->neg, negatives * sizeof(int32_t));
    } else {
        for (size_t r = 0; r < rows; ++r)
            for (size_t j = 0; j < negatives; ++j)
                x->expanded[r * negatives + j] = ref_sample(o->seed, x->key, r, j, o->num_items, x->positives[r]);
    }
    x->b = (wl_batch){rows, x->users, x->positives, negatives, x->neg, mode == MODE_SHARED, x->key, NULL};
}

static void batch_free(batch *x)
{
    free(x->users);
    free(x->positives);
    free(x->neg);
    free(x->expanded);
}

/* Known positives: about `per_user` random items for each user (sorted, no duplicates). */
static void make_known(uint32_t nu, uint32_t ni, uint32_t per_user, uint64_t seed, uint64_t **indptr, int32_t **items)
{
    ref_rng g;
    ref_rng_seed(&g, seed);
    *indptr = wlt_alloc((nu + (size_t)1) * sizeof(uint64_t));
    *items = wlt_alloc((size_t)nu * ni * sizeof(int32_t));
    unsigned char *pick = wlt_alloc(ni);
    uint64_t n = 0;
    (*indptr)[0] = 0;
    for (uint32_t u = 0; u < nu; ++u) {
        memset(pick, 0, ni);
        const uint32_t count = (uint32_t)(ref_rng_next(&g) % (2 * per_user + 1));
        for (uint32_t t = 0; t < count; ++t)
            pick[ref_rng_next(&g) % ni] = 1;
        for (uint32_t x = 0; x < ni; ++x)
            if (pick[x])
                (*items)[n++] = (int32_t)x;
        (*indptr)[u + 1] = n;
    }
    free(pick);
}

/* Rows of U and items of V a step touches, from the reference's stops. */
static void touched_rows(const batch *x, const int64_t *stop, unsigned char *tu, unsigned char *tv)
{
    for (size_t r = 0; r < x->rows; ++r) {
        if (stop[r] < 0)
            continue;
        tu[x->users[r]] = 1;
        tv[x->positives[r]] = 1;
        tv[x->expanded[r * x->negatives + (size_t)stop[r]]] = 1;
    }
}

/* Rows nobody touched are bitwise as before, with their state. */
static void assert_untouched(const snap *before, const snap *after, const unsigned char *tu, const unsigned char *tv,
                             uint32_t dim, const char *what)
{
    for (size_t u = 0; u < before->nu / dim; ++u) {
        if (tu[u])
            continue;
        if (memcmp(before->U + u * dim, after->U + u * dim, dim * sizeof(float)) ||
            (before->has_state && memcmp(before->AU + u * dim, after->AU + u * dim, dim * sizeof(float))))
            fail_msg("%s: untouched user %zu changed", what, u);
    }
    for (size_t x = 0; x < before->ni; ++x) {
        if (tv[x])
            continue;
        if (memcmp(before->V + x * dim, after->V + x * dim, dim * sizeof(float)) ||
            memcmp(before->b + x, after->b + x, sizeof(float)) ||
            (before->has_state && (memcmp(before->AV + x * dim, after->AV + x * dim, dim * sizeof(float)) ||
                                   memcmp(before->Ab + x, after->Ab + x, sizeof(float)))))
            fail_msg("%s: untouched item %zu changed", what, x);
    }
}

/* ------------------------------------------------------------ initial tables */

static void test_initial_tables(void **state)
{
    (void)state;
    static const uint32_t dims[] = {1, 8, 13};
    static const uint64_t seeds[] = {0, 1, UINT64_C(0xDEADBEEFCAFEF00D)};
    for (size_t k = 0; k < 3; ++k) {
        wl_model_options o;
        model_options(&o, 50, 80, dims[k], seeds[k], WL_OPTIMIZER_ADAGRAD, 0.05f);
        wl_model *m = model_new(ctxs[0], &o);
        ref_model r;
        ref_model_create(&r, &o);
        snap s;
        snap_take(m, &o, &s);
        const float lim = 0.5f / (float)o.dim;
        for (size_t e = 0; e < s.nu; ++e)
            assert_true(r.U[e] >= -lim && r.U[e] < lim); /* the reference itself: in [-0.5/dim, 0.5/dim) */
        if (memcmp(s.U, r.U, s.nu * sizeof(float)) || memcmp(s.V, r.V, s.nv * sizeof(float)))
            fail_msg("dim %u seed %llu: initial U or V differ from the reference", o.dim, (unsigned long long)o.seed);
        for (size_t i = 0; i < s.ni; ++i)
            assert_true(s.b[i] == 0.0f && s.Ab[i] == 1.0f);
        for (size_t e = 0; e < s.nu; ++e)
            assert_true(s.AU[e] == 1.0f);
        for (size_t e = 0; e < s.nv; ++e)
            assert_true(s.AV[e] == 1.0f);
        snap_free(&s);
        ref_model_free(&r);
        wl_model_destroy(m);
    }
    /* a known value of the generator, so that the reference cannot drift with the library */
    assert_true(ref_mix64(0) == UINT64_C(0xE220A8397B1DCDAF));
}

/* ------------------------------------------------------------ steps against the reference */

typedef struct step_case {
    int mode;
    wl_optimizer opt;
    int item_bias;
    wl_reduction red;
    float l2u, l2i;
    int known;
    float margin;
    wl_weighting weighting;
    uint32_t dim;
} step_case;

static void run_step_case(const step_case *k, int plan, int steps, uint64_t seed)
{
    wl_model_options o;
    model_options(&o, 50, 80, k->dim, seed, k->opt, k->opt == WL_OPTIMIZER_SGD ? 0.2f : 0.1f);
    o.item_bias = k->item_bias;
    o.l2_users = k->l2u;
    o.l2_items = k->l2i;
    wl_loss_options lo;
    wl_loss_options_default(&lo, o.num_items);
    lo.reduction = k->red;
    lo.margin = k->margin;
    lo.weighting = k->weighting;

    char what[256];
    snprintf(what, sizeof what, "plan %s, %s, %s, bias %d, %s, l2 %g/%g, known %d, margin %g, %s, dim %u",
             wlt_plan_names[plan], mode_names[k->mode], k->opt == WL_OPTIMIZER_SGD ? "sgd" : "adagrad", k->item_bias,
             k->red == WL_REDUCE_SUM ? "sum" : "mean", (double)k->l2u, (double)k->l2i, k->known, (double)k->margin,
             k->weighting == WL_WEIGHT_LOG ? "log" : "harmonic", k->dim);

    wl_model *m = model_new(ctxs[plan], &o);
    ref_model r;
    ref_model_create(&r, &o);
    if (k->known) {
        uint64_t *indptr;
        int32_t *items;
        make_known(o.num_users, o.num_items, 6, seed + 99, &indptr, &items);
        check_ok(m, wl_model_set_known(m, indptr, items), "wl_model_set_known");
        ref_model_set_known(&r, indptr, items);
        free(indptr);
        free(items);
    }
    snap before;
    snap_take(m, &o, &before);
    assert_close_to_ref(&before, &r, what);

    uint64_t stopped_deep = 0, total_offenders = 0;
    for (int step = 0; step < steps; ++step) {
        char label[320];
        snprintf(label, sizeof label, "%s, step %d", what, step + 1);
        batch x;
        batch_make(&x, &o, k->mode, 64, 8, seed * 1000 + (uint64_t)step, 20, k->mode == MODE_SAMPLED ? 80 : 60);
        int64_t stop[64];
        wl_step_result want, got;
        ref_model_step(&r, &lo, x.rows, x.users, x.positives, x.negatives, x.expanded, &want, stop);
        memset(&got, 0xA5, sizeof got);
        const wl_status s = wl_model_step(m, &lo, &x.b, &got);
        if (s != WL_SUCCESS)
            fail_msg("%s: wl_model_step: %s: %s", label, wl_status_string(s), wl_context_last_error(ctxs[plan]));
        assert_result(&got, &want, label);
        snap after;
        snap_take(m, &o, &after);
        assert_close_to_ref(&after, &r, label);
        unsigned char tu[50] = {0}, tv[80] = {0};
        touched_rows(&x, stop, tu, tv);
        assert_untouched(&before, &after, tu, tv, o.dim, label);
        if (!k->item_bias)
            for (size_t i = 0; i < after.ni; ++i)
                if (after.b[i] != 0.0f)
                    fail_msg("%s: item_bias 0 but b[%zu] = %g", label, i, (double)after.b[i]);
        if (k->mode == MODE_ROWS && step == 0 && k->margin >= 1.0f &&
            !ref_model_is_known(&r, x.users[1], x.positives[0]))
            assert_true(stop[1] == 0); /* the crafted repeat: an item both a positive and an offender */
        for (size_t row = 0; row < x.rows; ++row)
            stopped_deep += stop[row] > 0;
        total_offenders += want.offenders;
        ref_sync(&r, &after);
        snap_free(&before);
        before = after;
        batch_free(&x);
    }
    assert_true(total_offenders > 0);
    if (k->margin < 0.5f)
        assert_true(stopped_deep > 0); /* the cases do exercise scans beyond the first candidate */
    snap_free(&before);
    ref_model_free(&r);
    wl_model_destroy(m);
}

static void test_steps(void **state)
{
    (void)state;
    int n = 0;
    for (int mode = 0; mode < 3; ++mode)
        for (int opt = 0; opt < 2; ++opt)
            for (int bias = 0; bias < 2; ++bias)
                for (int red = 0; red < 2; ++red, ++n) {
                    step_case k = {mode,
                                   opt ? WL_OPTIMIZER_SGD : WL_OPTIMIZER_ADAGRAD,
                                   bias,
                                   red ? WL_REDUCE_MEAN : WL_REDUCE_SUM,
                                   (n % 3) ? 0.01f : 0.0f,
                                   (n % 2) ? 0.02f : 0.0f,
                                   (n % 4) < 2,
                                   (n % 2) ? 0.0f : 1.0f,
                                   (n % 5) == 3 ? WL_WEIGHT_HARMONIC : WL_WEIGHT_LOG,
                                   (n % 2) ? 8u : 16u};
                    run_step_case(&k, n % WLT_PLANS, 3, 100 + (uint64_t)n); /* each plan in turn */
                }
}

/* ------------------------------------------------------------ finite differences */

/* Perturb one float of the reference and return the loss with the stops fixed; -1 in *ok if a stop moved. */
static double perturbed_loss(ref_model *r, float *w, float value, const wl_loss_options *lo, const batch *x,
                             const int64_t *stop, int *ok)
{
    const float saved = *w;
    *w = value;
    int64_t s2[64];
    ref_model_scan(r, lo, x->rows, x->users, x->positives, x->negatives, x->expanded, NULL, s2);
    if (memcmp(s2, stop, x->rows * sizeof *stop))
        *ok = 0;
    const double l = ref_model_fixed_loss(r, lo, x->rows, x->users, x->positives, x->negatives, x->expanded, stop);
    *w = saved;
    return l;
}

static void test_finite_differences(void **state)
{
    (void)state;
    for (int red = 0; red < 2; ++red) {
        wl_model_options o;
        model_options(&o, 50, 80, 8, 7 + (uint64_t)red, WL_OPTIMIZER_SGD, 1.0f); /* lr 1: the step is -G */
        wl_loss_options lo;
        wl_loss_options_default(&lo, o.num_items);
        lo.margin = 0.0f;
        lo.reduction = red ? WL_REDUCE_MEAN : WL_REDUCE_SUM;
        wl_model *m = model_new(ctxs[0], &o);
        ref_model r;
        ref_model_create(&r, &o);
        batch x;
        batch_make(&x, &o, MODE_ROWS, 64, 8, 4242 + (uint64_t)red, 20, 60);
        int64_t stop[64];
        ref_model_scan(&r, &lo, x.rows, x.users, x.positives, x.negatives, x.expanded, NULL, stop);
        snap before, after;
        snap_take(m, &o, &before);
        wl_step_result res;
        check_ok(m, wl_model_step(m, &lo, &x.b, &res), "wl_model_step");
        snap_take(m, &o, &after);

        /* entries: the user, positive and offender of the first few stopped rows, and their biases */
        int checked = 0;
        for (size_t row = 0; row < x.rows && checked < 24; ++row) {
            if (stop[row] < 0)
                continue;
            const int32_t u = x.users[row], i = x.positives[row], c = x.expanded[row * 8 + (size_t)stop[row]];
            struct {
                float *ref, *dev_before, *dev_after;
                const char *name;
                long index;
            } e[] = {
                {r.U + (size_t)u * 8 + row % 8, before.U + (size_t)u * 8 + row % 8, after.U + (size_t)u * 8 + row % 8,
                 "U", (long)u},
                {r.V + (size_t)i * 8 + row % 8, before.V + (size_t)i * 8 + row % 8, after.V + (size_t)i * 8 + row % 8,
                 "V", (long)i},
                {r.V + (size_t)c * 8 + row % 8, before.V + (size_t)c * 8 + row % 8, after.V + (size_t)c * 8 + row % 8,
                 "V", (long)c},
                {r.b + i, before.b + i, after.b + i, "b", (long)i},
                {r.b + c, before.b + c, after.b + c, "b", (long)c},
            };
            for (size_t t = 0; t < sizeof e / sizeof e[0]; ++t) {
                const float w0 = *e[t].ref, h = 1e-3f;
                int ok = 1;
                const float wp = w0 + h, wm = w0 - h;
                const double lp = perturbed_loss(&r, e[t].ref, wp, &lo, &x, stop, &ok);
                const double lm = perturbed_loss(&r, e[t].ref, wm, &lo, &x, stop, &ok);
                if (!ok)
                    continue; /* a stop moved under the perturbation: the loss is not smooth there */
                const double fd = (lp - lm) / ((double)wp - (double)wm);
                const double g = (double)*e[t].dev_before - (double)*e[t].dev_after;
                if (!(fabs(g - fd) <= 2e-4 * fabs(fd) + 2e-7))
                    fail_msg("%s: d loss / d %s[%ld] (row %zu): step gives %.9g, finite difference %.9g",
                             red ? "mean" : "sum", e[t].name, e[t].index, row, g, fd);
                checked++;
            }
        }
        assert_true(checked >= 10);
        snap_free(&before);
        snap_free(&after);
        batch_free(&x);
        ref_model_free(&r);
        wl_model_destroy(m);
    }
}

/* ------------------------------------------------------------ shared = per-row, determinism, plans */

static void test_shared_equals_rows(void **state)
{
    (void)state;
    for (int opt = 0; opt < 2; ++opt) {
        wl_model_options o;
        model_options(&o, 50, 80, 12, 11, opt ? WL_OPTIMIZER_SGD : WL_OPTIMIZER_ADAGRAD, 0.1f);
        o.l2_items = 0.01f;
        wl_loss_options lo;
        wl_loss_options_default(&lo, o.num_items);
        lo.margin = 0.0f;
        lo.reduction = WL_REDUCE_MEAN;
        wl_model *ms = model_new(ctxs[0], &o), *mr = model_new(ctxs[0], &o);
        for (int step = 0; step < 3; ++step) {
            batch x;
            batch_make(&x, &o, MODE_SHARED, 64, 8, 77 + (uint64_t)step, 30, 80);
            wl_batch rows = x.b;
            rows.shared_negatives = 0;
            rows.neg_items = x.expanded;
            wl_step_result a, b;
            check_ok(ms, wl_model_step(ms, &lo, &x.b, &a), "wl_model_step(shared)");
            check_ok(mr, wl_model_step(mr, &lo, &rows, &b), "wl_model_step(per-row)");
            assert_result(&a, &b, "shared vs per-row candidates");
            batch_free(&x);
        }
        /* shared scores come from SGEMM, per-row ones from the scan's own dot product: equal up to rounding */
        snap a, b;
        snap_take(ms, &o, &a);
        snap_take(mr, &o, &b);
        assert_snap_close(&a, &b, "shared vs per-row candidates");
        snap_free(&a);
        snap_free(&b);
        wl_model_destroy(ms);
        wl_model_destroy(mr);
    }
}

/* A few steps of every kind on a new model on c; *out is its final state. wait: r NULL for odd steps (the call
 * does not wait, and the id arrays are scribbled over right after it: the library must have copied them). */
static void train(wl_context *c, const wl_model_options *o, uint64_t key_base, int no_wait, snap *out)
{
    wl_loss_options lo;
    wl_loss_options_default(&lo, o->num_items);
    lo.margin = 0.0f;
    wl_model *m = model_new(c, o);
    uint64_t *indptr;
    int32_t *items;
    make_known(o->num_users, o->num_items, 4, 5, &indptr, &items);
    check_ok(m, wl_model_set_known(m, indptr, items), "wl_model_set_known");
    free(indptr);
    free(items);
    for (int step = 0; step < 6; ++step) {
        batch x;
        batch_make(&x, o, step % 3, 64, 8, 500 + (uint64_t)step, 30, 80);
        x.b.sample_key = key_base + (uint64_t)step;
        wl_step_result r;
        const int nowait = no_wait && (step & 1);
        check_ok(m, wl_model_step(m, &lo, &x.b, nowait ? NULL : &r), "wl_model_step");
        if (nowait) {
            wlt_fill_sentinel_i32(x.users, x.rows);
            wlt_fill_sentinel_i32(x.positives, x.rows);
            if (x.neg)
                wlt_fill_sentinel_i32(x.neg, x.mode == MODE_SHARED ? x.negatives : x.rows * x.negatives);
        }
        batch_free(&x);
    }
    snap_take(m, o, out);
    wl_model_destroy(m);
}

/* Each plan's scatter, and wl_device_model_scatter: the device's own
 * (atomic64 exactly where it has cl_khr_int64_base_atomics), or atomic32 by
 * $WARPLOSS_SCATTER; the plans with both meet in test_determinism_and_plans. */
static void test_scatter_choice(void **state)
{
    (void)state;
    assert_string_equal(wl_context_model_scatter(ctxs[1]), "atomic32");
    assert_string_equal(wl_context_model_scatter(ctxs[3]), "atomic32");
    assert_string_equal(wl_context_model_scatter(NULL), "");
    cl_device_id device = wl_context_device(ctxs[0]);
    char extensions[8192] = "";
    WLT_CHECK_CL(clGetDeviceInfo(device, CL_DEVICE_EXTENSIONS, sizeof extensions - 1, extensions, NULL));
    const int has64 = strstr(extensions, "cl_khr_int64_base_atomics") != NULL;
    const char *old = getenv("WARPLOSS_SCATTER");
    char *saved = old ? strdup(old) : NULL;
    unsetenv("WARPLOSS_SCATTER");
    const char *scatter = NULL, *reason = NULL;
    assert_int_equal(wl_device_model_scatter(device, &scatter, &reason), WL_SUCCESS);
    assert_string_equal(scatter, has64 ? "atomic64" : "atomic32");
    assert_non_null(strstr(reason, has64 ? "has cl_khr_int64_base_atomics" : "lacks cl_khr_int64_base_atomics"));
    setenv("WARPLOSS_SCATTER", "atomic32", 1);
    assert_int_equal(wl_device_model_scatter(device, &scatter, &reason), WL_SUCCESS);
    assert_string_equal(scatter, "atomic32");
    assert_string_equal(reason, has64 ? "WARPLOSS_SCATTER=atomic32" : "the device lacks cl_khr_int64_base_atomics");
    assert_int_equal(wl_device_model_scatter(device, NULL, NULL), WL_SUCCESS);
    assert_int_equal(wl_device_model_scatter(NULL, &scatter, &reason), WL_ERROR_INVALID_ARGUMENT);
    if (saved)
        setenv("WARPLOSS_SCATTER", saved, 1);
    else
        unsetenv("WARPLOSS_SCATTER");
    free(saved);
}

static void test_determinism_and_plans(void **state)
{
    (void)state;
    for (int opt = 0; opt < 2; ++opt) {
        wl_model_options o;
        model_options(&o, 50, 80, 16, 21, opt ? WL_OPTIMIZER_SGD : WL_OPTIMIZER_ADAGRAD, 0.1f);
        o.l2_users = 0.01f;
        snap first, again;
        train(ctxs[0], &o, 1, 0, &first);
        train(ctxs[0], &o, 1, 1, &again);
        assert_snap_equal(&first, &again, "two runs (the second not waiting on odd steps)");
        snap_free(&again);
        for (int p = 1; p < WLT_PLANS; ++p) {
            snap other;
            train(ctxs[p], &o, 1, 0, &other);
            char what[64];
            snprintf(what, sizeof what, "plan %s vs plan %s", wlt_plan_names[p], wlt_plan_names[0]);
            assert_snap_equal(&first, &other, what);
            snap_free(&other);
        }
        /* the sampler: same (seed, key) same tables; another key other tables */
        train(ctxs[0], &o, 2, 0, &again);
        if (snap_equal(&first, &again))
            fail_msg("another sample_key gives the same tables");
        snap_free(&again);
        snap_free(&first);
    }
}

/* Outputs of one loss call on c (every output; reduction NONE), and top-5
 * recommendations of a model trained with train(), into got. */
typedef struct poison_outputs {
    float loss[300], gp[300], gn[300 * 40];
    int32_t off[300], top[50 * 5];
    float top_scores[50 * 5];
    wl_metrics metrics;
    wl_user_metrics per_user[50];
} poison_outputs;

static void poison_run(wl_context *c, const wl_model_options *o, const float *pos, const float *neg,
                       poison_outputs *got)
{
    wl_loss_options lo;
    wl_loss_options_default(&lo, 1000);
    lo.reduction = WL_REDUCE_NONE;
    if (wl_loss(c, &lo, 300, 40, pos, neg, got->loss, got->gp, got->gn, got->off) != WL_SUCCESS)
        fail_msg("wl_loss: %s", wl_context_last_error(c));
    wl_model *m = model_new(c, o);
    /* the changed-rows bits start cleared, not poisoned */
    for (int side = 0; side < 2; ++side) {
        size_t n = (size_t)-1;
        check_ok(m, wl_model_changed_rows(m, (wl_table)side, NULL, &n), "wl_model_changed_rows");
        if (n != 0)
            fail_msg("a new model has %zu changed rows on side %d", n, side);
    }
    int32_t users[50];
    for (int u = 0; u < 50; ++u)
        users[u] = u;
    check_ok(m, wl_model_recommend(m, 50, users, 5, 0, got->top, got->top_scores), "wl_model_recommend");
    /* the evaluation, with known positives and held-out items that partly overlap them */
    uint64_t *known_ptr, *held_ptr;
    int32_t *known, *held;
    make_known(o->num_users, o->num_items, 4, 5, &known_ptr, &known);
    make_known(o->num_users, o->num_items, 3, 6, &held_ptr, &held);
    check_ok(m, wl_model_set_known(m, known_ptr, known), "wl_model_set_known");
    check_ok(m, wl_model_evaluate(m, held_ptr, held, 5, 1, &got->metrics, got->per_user), "wl_model_evaluate");
    free(known_ptr);
    free(known);
    free(held_ptr);
    free(held);
    wl_model_destroy(m);
}

/* WARPLOSS_POISON: every buffer the library creates starts as 0xFF bytes,
 * and the loss, the trained tables and the recommendations stay bitwise the
 * same on every plan (nothing relies on zeroed allocations). */
static void test_poison(void **state)
{
    (void)state;
    float *pos = wlt_alloc(300 * sizeof(float)), *neg = wlt_alloc(300 * 40 * sizeof(float));
    ref_make_inputs(31, REF_DEEP, 300, 40, 1.0f, pos, neg);
    wl_model_options o;
    model_options(&o, 50, 80, 16, 21, WL_OPTIMIZER_ADAGRAD, 0.1f);
    poison_outputs *clean = wlt_alloc(sizeof *clean), *poisoned = wlt_alloc(sizeof *poisoned);
    const char *old = getenv("WARPLOSS_POISON");
    char *saved = old ? strdup(old) : NULL;
    for (int p = 0; p < WLT_PLANS; ++p) {
        setenv("WARPLOSS_POISON", "1", 1);
        wl_context *c = wlt_context_with_plan(cache_dir, p);
        unsetenv("WARPLOSS_POISON");
        wl_context *plain = wlt_context_with_plan(cache_dir, p);
        snap want, got;
        train(plain, &o, 1, 0, &want);
        train(c, &o, 1, 0, &got);
        char what[64];
        snprintf(what, sizeof what, "plan %s, poisoned vs not", wlt_plan_names[p]);
        assert_snap_equal(&want, &got, what);
        snap_free(&want);
        snap_free(&got);
        memset(clean, 0, sizeof *clean);
        memset(poisoned, 0, sizeof *poisoned);
        poison_run(plain, &o, pos, neg, clean);
        poison_run(c, &o, pos, neg, poisoned);
        if (memcmp(clean, poisoned, sizeof *clean))
            fail_msg("%s: the loss or the recommendations differ", what);
        wl_context_destroy(c);
        wl_context_destroy(plain);
    }
    if (saved)
        setenv("WARPLOSS_POISON", saved, 1);
    free(saved);
    free(clean);
    free(poisoned);
    free(pos);
    free(neg);
}

/* Every launch in slices: the GPU plan with work-groups of 4 and at most 3
 * work-groups per launch, so the scans go 3 rows at a time and every other
 * kernel (gathers, update, top-k, the loss's check) in launches at global
 * offsets. The loss, the trained tables and the recommendations are bitwise
 * the GPU plan's. */
static void test_launch_slices(void **state)
{
    (void)state;
    wl_device_choice choice;
    wl_plan p;
    assert_int_equal(wl_select_device(NULL, &choice), WL_SUCCESS);
    assert_int_equal(wl_plan_for_device(choice.device, CL_DEVICE_TYPE_GPU, &p), WL_SUCCESS);
    p.max_group = p.reduce_group = p.model_group = 4;
    p.max_groups = 3;
    wl_context_options co;
    wlt_context_options(&co, cache_dir);
    wl_context *sliced = NULL;
    if (wl_context_create_with_plan(&co, &p, &sliced) != WL_SUCCESS)
        fail_msg("wl_context_create_with_plan: %s", wl_context_last_error(NULL));
    wl_model_options o;
    model_options(&o, 50, 80, 16, 21, WL_OPTIMIZER_ADAGRAD, 0.1f);
    snap want, got;
    train(ctxs[2], &o, 1, 0, &want);
    train(sliced, &o, 1, 0, &got);
    assert_snap_equal(&want, &got, "3 work-groups per launch vs the GPU plan");
    snap_free(&want);
    snap_free(&got);
    float *pos = wlt_alloc(300 * sizeof(float)), *neg = wlt_alloc(300 * 40 * sizeof(float));
    ref_make_inputs(32, REF_DEEP, 300, 40, 1.0f, pos, neg);
    poison_outputs *a = wlt_alloc(sizeof *a), *b = wlt_alloc(sizeof *b);
    memset(a, 0, sizeof *a);
    memset(b, 0, sizeof *b);
    poison_run(ctxs[2], &o, pos, neg, a);
    poison_run(sliced, &o, pos, neg, b);
    if (memcmp(a, b, sizeof *a))
        fail_msg("3 work-groups per launch: the loss or the recommendations differ from the GPU plan's");
    /* the loss's input check, in launches at offsets too */
    wl_loss_options lo;
    wl_loss_options_default(&lo, 1000);
    lo.check_finite = 1;
    float sum = 0.0f;
    assert_int_equal(wl_loss(sliced, &lo, 300, 40, pos, neg, &sum, NULL, NULL, NULL), WL_SUCCESS);
    neg[299 * 40 + 39] = NAN;
    assert_int_equal(wl_loss(sliced, &lo, 300, 40, pos, neg, &sum, NULL, NULL, NULL), WL_ERROR_NONFINITE);
    free(a);
    free(b);
    free(pos);
    free(neg);
    wl_context_destroy(sliced);
}

/* A caller's out-of-order queue: the chain orders every command, CLBlast's SGEMM included (a barrier before it),
 * so the same steps give bitwise the tables of the in-order queue of ctxs[0] (same device, same plan), and the
 * same recommendations. */
static void test_out_of_order_queue(void **state)
{
    (void)state;
    cl_device_id device = wl_context_device(ctxs[0]);
    cl_command_queue_properties props = 0;
    WLT_CHECK_CL(clGetDeviceInfo(device, CL_DEVICE_QUEUE_PROPERTIES, sizeof props, &props, NULL));
    if (!(props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE))
        WLT_SKIP_LACKING("out-of-order queues (CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE)");
    cl_int err = CL_SUCCESS;
    cl_command_queue q = clCreateCommandQueue(wl_context_cl_context(ctxs[0]), device,
                                              CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, &err);
    WLT_CHECK_CL(err);
    wl_context_options co;
    wlt_context_options(&co, cache_dir);
    wl_context *c = NULL;
    if (wl_context_create_with_queue(q, &co, &c) != WL_SUCCESS)
        fail_msg("wl_context_create_with_queue: %s", wl_context_last_error(NULL));
    for (int opt = 0; opt < 2; ++opt) {
        wl_model_options o;
        model_options(&o, 50, 80, 16, 23, opt ? WL_OPTIMIZER_SGD : WL_OPTIMIZER_ADAGRAD, 0.1f);
        snap a, b;
        train(ctxs[0], &o, 1, 0, &a);
        train(c, &o, 1, 1, &b);
        assert_snap_equal(&a, &b, "out-of-order queue vs in-order queue");
        /* recommend on both, the tables written from the same snapshot */
        wl_model *m0 = model_new(ctxs[0], &o), *m1 = model_new(c, &o);
        int32_t users[50], top0[50 * 5], top1[50 * 5];
        for (int u = 0; u < 50; ++u)
            users[u] = u;
        for (int t = 0; t < 3; ++t) {
            const float *table = t == 0 ? a.U : t == 1 ? a.V : a.b;
            check_ok(m0, wl_model_write(m0, (wl_table)t, table), "wl_model_write");
            check_ok(m1, wl_model_write(m1, (wl_table)t, table), "wl_model_write (out-of-order)");
        }
        check_ok(m0, wl_model_recommend(m0, 50, users, 5, 0, top0, NULL), "wl_model_recommend");
        check_ok(m1, wl_model_recommend(m1, 50, users, 5, 0, top1, NULL), "wl_model_recommend (out-of-order)");
        assert_true(memcmp(top0, top1, sizeof top0) == 0);
        wl_model_destroy(m0);
        wl_model_destroy(m1);
        snap_free(&a);
        snap_free(&b);
    }
    wl_context_destroy(c);
    WLT_CHECK_CL(clReleaseCommandQueue(q));
}

/* The cl form: ids in device buffers from `offset`, sampled rows numbered from 0 within the call. */
static void test_step_cl(void **state)
{
    (void)state;
    wl_model_options o;
    model_options(&o, 50, 80, 8, 31, WL_OPTIMIZER_ADAGRAD, 0.1f);
    wl_loss_options lo;
    wl_loss_options_default(&lo, o.num_items);
    lo.margin = 0.0f;
    wl_model *m = model_new(ctxs[0], &o);
    ref_model r;
    ref_model_create(&r, &o);
    cl_context cx = wl_context_cl_context(ctxs[0]);
    const size_t offset = 5, rows = 40, negatives = 6;
    for (int mode = 0; mode < 3; mode += 2) { /* per-row and sampled */
        batch x;
        batch_make(&x, &o, mode, offset + rows, negatives, 900 + (uint64_t)mode, 30, 80);
        cl_mem users = wlt_make_buffer(cx, x.rows * sizeof(int32_t), x.users);
        cl_mem pos = wlt_make_buffer(cx, x.rows * sizeof(int32_t), x.positives);
        cl_mem neg = mode == MODE_ROWS ? wlt_make_buffer(cx, x.rows * negatives * sizeof(int32_t), x.neg) : NULL;
        wl_batch_cl bc = {rows, offset, users, pos, negatives, neg, 0, x.key, NULL};
        int32_t *cands = wlt_alloc(rows * negatives * sizeof(int32_t));
        for (size_t row = 0; row < rows; ++row)
            for (size_t j = 0; j < negatives; ++j)
                cands[row * negatives + j] = mode == MODE_ROWS ? x.neg[(offset + row) * negatives + j]
                                                               : ref_sample(o.seed, x.key, row, j, o.num_items,
                                                                            x.positives[offset + row]);
        wl_step_result want, got;
        ref_model_step(&r, &lo, rows, x.users + offset, x.positives + offset, negatives, cands, &want, NULL);
        cl_event done = NULL;
        const wl_status s = wl_model_step_cl(m, &lo, &bc, &got, 0, NULL, &done);
        if (s != WL_SUCCESS)
            fail_msg("wl_model_step_cl: %s: %s", wl_status_string(s), wl_context_last_error(ctxs[0]));
        if (done) {
            WLT_CHECK_CL(clWaitForEvents(1, &done));
            clReleaseEvent(done);
        }
        assert_result(&got, &want, mode_names[mode]);
        snap after;
        snap_take(m, &o, &after);
        assert_close_to_ref(&after, &r, mode_names[mode]);
        ref_sync(&r, &after);
        snap_free(&after);
        free(cands);
        clReleaseMemObject(users);
        clReleaseMemObject(pos);
        if (neg)
            clReleaseMemObject(neg);
        batch_free(&x);
    }
    ref_model_free(&r);
    wl_model_destroy(m);
}

/* ------------------------------------------------------------ the sampler on the host */

static void test_sampler(void **state)
{
    (void)state;
    /* never the positive, always in range, for every positive of a small catalogue */
    for (uint32_t ni = 2; ni <= 9; ++ni)
        for (uint32_t i = 0; i < ni; ++i)
            for (uint64_t row = 0; row < 50; ++row)
                for (uint64_t j = 0; j < 20; ++j) {
                    const int32_t c = ref_sample(3, 4, row, j, ni, (int32_t)i);
                    assert_true(c >= 0 && (uint32_t)c < ni && c != (int32_t)i);
                }
    /* uniform over the other items: chi-square with 18 degrees of freedom (p = 0.001 at 42.31) */
    const uint32_t ni = 20;
    const int32_t positive = 7;
    uint64_t count[20] = {0};
    const uint64_t draws_per_row = 50, rows = 4000;
    for (uint64_t row = 0; row < rows; ++row)
        for (uint64_t j = 0; j < draws_per_row; ++j)
            count[ref_sample(12345, 678, row, j, ni, positive)]++;
    assert_true(count[positive] == 0);
    const double expect = (double)(rows * draws_per_row) / (double)(ni - 1);
    double chi2 = 0.0;
    for (uint32_t x = 0; x < ni; ++x)
        if ((int32_t)x != positive)
            chi2 += ((double)count[x] - expect) * ((double)count[x] - expect) / expect;
    if (!(chi2 < 42.31))
        fail_msg("sampler not uniform: chi-square %.2f with 18 degrees of freedom", chi2);
    /* the key and the seed matter */
    int differ_key = 0, differ_seed = 0;
    for (uint64_t j = 0; j < 64; ++j) {
        differ_key += ref_sample(1, 2, 0, j, 1000, 0) != ref_sample(1, 3, 0, j, 1000, 0);
        differ_seed += ref_sample(1, 2, 0, j, 1000, 0) != ref_sample(2, 2, 0, j, 1000, 0);
    }
    assert_true(differ_key > 50 && differ_seed > 50);
}

/* ------------------------------------------------------------ recommend and rank */

/* Recommend and rank on tables whose scores SGEMM rounds its own way: each user's whole catalogue from recommend
 * (k = num_items) is ordered best first with ties to the lower index, its scores are the reference's up to
 * rounding, and rank counts exactly the items that recommend scored strictly higher. */
static void assert_catalogue_consistent(wl_model *m, const ref_model *r, const wl_model_options *o)
{
    const size_t ni = o->num_items, nq = o->num_users;
    int32_t *users = wlt_alloc(nq * sizeof(int32_t)), *items = wlt_alloc(nq * ni * sizeof(int32_t));
    float *scores = wlt_alloc(nq * ni * sizeof(float)), *by_item = wlt_alloc(ni * sizeof(float));
    int32_t *pu = wlt_alloc(ni * sizeof(int32_t)), *pi = wlt_alloc(ni * sizeof(int32_t));
    uint32_t *ranks = wlt_alloc(ni * sizeof(uint32_t));
    for (size_t q = 0; q < nq; ++q)
        users[q] = (int32_t)q;
    check_ok(m, wl_model_recommend(m, nq, users, ni, 0, items, scores), "wl_model_recommend(whole catalogue)");
    for (size_t q = 0; q < nq; ++q) {
        const int32_t *it = items + q * ni;
        const float *sc = scores + q * ni;
        for (size_t t = 0; t < ni; ++t) {
            if (it[t] < 0 || (size_t)it[t] >= ni)
                fail_msg("recommend: user %zu slot %zu: item %d", q, t, (int)it[t]);
            const float want = ref_model_score(r, (int32_t)q, it[t]);
            if (!wlt_close(sc[t], want, 1e-5, 1e-6))
                fail_msg("recommend: user %zu item %d: score %.9g, reference %.9g", q, (int)it[t], (double)sc[t],
                         (double)want);
            if (t > 0 && (sc[t] > sc[t - 1] || (sc[t] == sc[t - 1] && it[t] < it[t - 1])))
                fail_msg("recommend: user %zu slots %zu, %zu out of order", q, t - 1, t);
            by_item[it[t]] = sc[t];
        }
        if (q % 7)
            continue;
        for (size_t x = 0; x < ni; ++x)
            pu[x] = (int32_t)q, pi[x] = (int32_t)x;
        check_ok(m, wl_model_rank(m, ni, pu, pi, 0, ranks), "wl_model_rank(whole catalogue)");
        for (size_t x = 0; x < ni; ++x) {
            uint32_t higher = 0;
            for (size_t y = 0; y < ni; ++y)
                higher += by_item[y] > by_item[x];
            if (ranks[x] != higher)
                fail_msg("rank: user %zu item %zu: %u, recommend's scores say %u", q, x, ranks[x], higher);
        }
    }
    free(users);
    free(items);
    free(scores);
    free(by_item);
    free(pu);
    free(pi);
    free(ranks);
}

static void test_recommend_rank(void **state)
{
    (void)state;
    wl_model_options o;
    model_options(&o, 50, 80, 8, 41, WL_OPTIMIZER_ADAGRAD, 0.1f);
    wl_model *m = model_new(ctxs[0], &o);
    ref_model r;
    ref_model_create(&r, &o);
    /* train a little, then take the device's tables as the reference's */
    wl_loss_options lo;
    wl_loss_options_default(&lo, o.num_items);
    for (int step = 0; step < 3; ++step) {
        batch x;
        batch_make(&x, &o, MODE_SAMPLED, 64, 8, 300 + (uint64_t)step, 50, 80);
        check_ok(m, wl_model_step(m, &lo, &x.b, NULL), "wl_model_step");
        batch_free(&x);
    }
    snap s;
    snap_take(m, &o, &s);
    ref_sync(&r, &s);
    assert_catalogue_consistent(m, &r, &o);

    /* Quantised tables: entries k/16 (|k| <= 8) and biases k/256, so that every score is exact in float whatever
     * order SGEMM sums it in, equal to the reference's bit for bit, and exact ties are frequent. */
    ref_rng g;
    ref_rng_seed(&g, 4242);
    for (size_t e = 0; e < s.nu; ++e)
        s.U[e] = (float)((int)(ref_rng_next(&g) % 17) - 8) / 16.0f;
    for (size_t e = 0; e < s.nv; ++e)
        s.V[e] = (float)((int)(ref_rng_next(&g) % 17) - 8) / 16.0f;
    for (size_t e = 0; e < s.ni; ++e)
        s.b[e] = (float)((int)(ref_rng_next(&g) % 9) - 4) / 256.0f;
    check_ok(m, wl_model_write(m, WL_TABLE_USERS, s.U), "wl_model_write(users)");
    /* ties: items 10, 3 and 60 identical (vector and bias), so user scores tie exactly */
    memcpy(s.V + 10 * 8, s.V + 3 * 8, 8 * sizeof(float));
    memcpy(s.V + 60 * 8, s.V + 3 * 8, 8 * sizeof(float));
    s.b[10] = s.b[60] = s.b[3];
    check_ok(m, wl_model_write(m, WL_TABLE_ITEMS, s.V), "wl_model_write(items)");
    check_ok(m, wl_model_write(m, WL_TABLE_ITEM_BIAS, s.b), "wl_model_write(bias)");
    ref_sync(&r, &s);
    /* known: random, plus user 0 knows all but 3 items (padding), user 1 knows nothing */
    uint64_t *indptr;
    int32_t *items;
    make_known(o.num_users, o.num_items, 5, 17, &indptr, &items);
    uint64_t *ip2 = wlt_alloc((o.num_users + (size_t)1) * sizeof(uint64_t));
    int32_t *it2 = wlt_alloc(((size_t)indptr[o.num_users] + o.num_items) * sizeof(int32_t));
    size_t n = 0;
    ip2[0] = 0;
    for (uint32_t x = 0; x < o.num_items; ++x)
        if (x != 5 && x != 40 && x != 79)
            it2[n++] = (int32_t)x;
    ip2[1] = n;
    ip2[2] = n;
    for (uint32_t u = 2; u < o.num_users; ++u) {
        for (uint64_t t = indptr[u]; t < indptr[u + 1]; ++t)
            it2[n++] = items[t];
        ip2[u + 1] = n;
    }
    check_ok(m, wl_model_set_known(m, ip2, it2), "wl_model_set_known");
    ref_model_set_known(&r, ip2, it2);

    size_t nq = o.num_users;
    int32_t *users = wlt_alloc(nq * sizeof(int32_t));
    for (size_t q = 0; q < nq; ++q)
        users[q] = (int32_t)((q * 7) % o.num_users);
    static const size_t ks[] = {1, 5, 80};
    for (size_t kk = 0; kk < 3; ++kk)
        for (int ex = 0; ex < 2; ++ex) {
            const size_t k = ks[kk];
            int32_t *gi = wlt_alloc(nq * k * sizeof(int32_t)), *wi = wlt_alloc(nq * k * sizeof(int32_t));
            float *gs = wlt_alloc(nq * k * sizeof(float)), *ws = wlt_alloc(nq * k * sizeof(float));
            ref_model_recommend(&r, nq, users, k, ex, wi, ws);
            wlt_fill_sentinel_i32(gi, nq * k);
            wlt_fill_sentinel(gs, nq * k);
            check_ok(m, wl_model_recommend(m, nq, users, k, ex, gi, gs), "wl_model_recommend");
            size_t bad = wlt_first_i32_mismatch(gi, wi, nq * k);
            if (bad < nq * k)
                fail_msg("recommend k %zu exclude %d: user %d slot %zu: item %d, reference %d", k, ex,
                         (int)users[bad / k], bad % k, (int)gi[bad], (int)wi[bad]);
            bad = wlt_first_value_mismatch(gs, ws, nq * k);
            if (bad < nq * k)
                fail_msg("recommend k %zu exclude %d: user %d slot %zu: score %.9g, reference %.9g", k, ex,
                         (int)users[bad / k], bad % k, (double)gs[bad], (double)ws[bad]);
            if (k == 80 && ex) /* user 0 (query 0): 3 items, then padding */
                assert_true(gi[3] == -1 && gs[3] == -INFINITY && gi[79] == -1 && gi[2] >= 0);
            /* scores may be NULL */
            wlt_fill_sentinel_i32(gi, nq * k);
            check_ok(m, wl_model_recommend(m, nq, users, k, ex, gi, NULL), "wl_model_recommend(no scores)");
            assert_true(wlt_first_i32_mismatch(gi, wi, nq * k) == nq * k);
            free(gi);
            free(wi);
            free(gs);
            free(ws);
        }
    /* the tie itself: for user 1 (no known), the three equal items appear in index order */
    {
        int32_t all[80], u1 = 1;
        check_ok(m, wl_model_recommend(m, 1, &u1, 80, 1, all, NULL), "wl_model_recommend");
        int seen = 0;
        static const int32_t order[3] = {3, 10, 60};
        for (size_t t = 0; t < 80; ++t) {
            if (all[t] == 3 || all[t] == 10 || all[t] == 60) {
                assert_true(seen < 3 && all[t] == order[seen]);
                seen++;
            }
        }
        assert_true(seen == 3);
    }
    /* rank: every (user, item) pair of a few users, both exclude_known */
    const size_t np = 10 * (size_t)o.num_items;
    int32_t *pu = wlt_alloc(np * sizeof(int32_t)), *pi = wlt_alloc(np * sizeof(int32_t));
    for (size_t q = 0; q < np; ++q) {
        pu[q] = (int32_t)((q / o.num_items) * 5);
        pi[q] = (int32_t)(q % o.num_items);
    }
    uint32_t *gr = wlt_alloc(np * sizeof(uint32_t)), *wr = wlt_alloc(np * sizeof(uint32_t));
    for (int ex = 0; ex < 2; ++ex) {
        ref_model_rank(&r, np, pu, pi, ex, wr);
        memset(gr, 0xEE, np * sizeof(uint32_t));
        check_ok(m, wl_model_rank(m, np, pu, pi, ex, gr), "wl_model_rank");
        for (size_t q = 0; q < np; ++q)
            if (gr[q] != wr[q])
                fail_msg("rank exclude %d: user %d item %d: %u, reference %u", ex, (int)pu[q], (int)pi[q], gr[q],
                         wr[q]);
    }
    free(gr);
    free(wr);
    free(pu);
    free(pi);
    free(users);
    free(indptr);
    free(items);
    free(ip2);
    free(it2);
    snap_free(&s);
    ref_model_free(&r);
    wl_model_destroy(m);
}

/* ------------------------------------------------------------ table and state I/O */

static void test_io(void **state)
{
    (void)state;
    wl_model_options o;
    model_options(&o, 50, 80, 8, 51, WL_OPTIMIZER_ADAGRAD, 0.1f);
    wl_model *m = model_new(ctxs[0], &o);
    wl_loss_options lo;
    wl_loss_options_default(&lo, o.num_items);
    for (int step = 0; step < 2; ++step) {
        batch x;
        batch_make(&x, &o, MODE_SAMPLED, 64, 8, 600 + (uint64_t)step, 50, 80);
        check_ok(m, wl_model_step(m, &lo, &x.b, NULL), "wl_model_step");
        batch_free(&x);
    }
    snap s0;
    snap_take(m, &o, &s0);
    /* write then read: bitwise, including odd values */
    float *U = wlt_alloc(s0.nu * sizeof(float));
    ref_rng g;
    ref_rng_seed(&g, 3);
    for (size_t e = 0; e < s0.nu; ++e)
        U[e] = (float)ref_rng_uniform(&g, -3.0, 3.0);
    U[0] = -0.0f;
    U[1] = 1e-40f; /* subnormal */
    U[2] = 3.4e38f;
    check_ok(m, wl_model_write(m, WL_TABLE_USERS, U), "wl_model_write(users)");
    snap s1;
    snap_take(m, &o, &s1);
    assert_true(memcmp(s1.U, U, s0.nu * sizeof(float)) == 0);
    /* that table's state is reset to 1; the others are as they were */
    for (size_t e = 0; e < s0.nu; ++e)
        assert_true(s1.AU[e] == 1.0f);
    int trained = 0;
    for (size_t e = 0; e < s0.nu; ++e)
        trained += s0.AU[e] != 1.0f;
    assert_true(trained > 0); /* so the reset was observable */
    assert_true(memcmp(s1.V, s0.V, s0.nv * sizeof(float)) == 0 && memcmp(s1.AV, s0.AV, s0.nv * sizeof(float)) == 0);
    assert_true(memcmp(s1.b, s0.b, s0.ni * sizeof(float)) == 0 && memcmp(s1.Ab, s0.Ab, s0.ni * sizeof(float)) == 0);
    /* items, bias: write resets their state too */
    check_ok(m, wl_model_write(m, WL_TABLE_ITEMS, s0.V), "wl_model_write(items)");
    check_ok(m, wl_model_write(m, WL_TABLE_ITEM_BIAS, s0.b), "wl_model_write(bias)");
    snap s2;
    snap_take(m, &o, &s2);
    for (size_t e = 0; e < s0.nv; ++e)
        assert_true(s2.AV[e] == 1.0f);
    for (size_t e = 0; e < s0.ni; ++e)
        assert_true(s2.Ab[e] == 1.0f);
    assert_true(memcmp(s2.V, s0.V, s0.nv * sizeof(float)) == 0 && memcmp(s2.b, s0.b, s0.ni * sizeof(float)) == 0);
    /* state round trip: a model restored from tables and state continues exactly as the original */
    check_ok(m, wl_model_write(m, WL_TABLE_USERS, s0.U), "wl_model_write(users)");
    check_ok(m, wl_model_write_state(m, WL_TABLE_USERS, s0.AU), "wl_model_write_state(users)");
    check_ok(m, wl_model_write_state(m, WL_TABLE_ITEMS, s0.AV), "wl_model_write_state(items)");
    check_ok(m, wl_model_write_state(m, WL_TABLE_ITEM_BIAS, s0.Ab), "wl_model_write_state(bias)");
    snap s3;
    snap_take(m, &o, &s3);
    assert_snap_equal(&s3, &s0, "tables and state written back");
    wl_model *m2 = model_new(ctxs[0], &o);
    check_ok(m2, wl_model_write(m2, WL_TABLE_USERS, s0.U), "write");
    check_ok(m2, wl_model_write(m2, WL_TABLE_ITEMS, s0.V), "write");
    check_ok(m2, wl_model_write(m2, WL_TABLE_ITEM_BIAS, s0.b), "write");
    check_ok(m2, wl_model_write_state(m2, WL_TABLE_USERS, s0.AU), "write_state");
    check_ok(m2, wl_model_write_state(m2, WL_TABLE_ITEMS, s0.AV), "write_state");
    check_ok(m2, wl_model_write_state(m2, WL_TABLE_ITEM_BIAS, s0.Ab), "write_state");
    batch x;
    batch_make(&x, &o, MODE_ROWS, 64, 8, 700, 50, 80);
    wl_step_result r1, r2;
    check_ok(m, wl_model_step(m, &lo, &x.b, &r1), "step");
    check_ok(m2, wl_model_step(m2, &lo, &x.b, &r2), "step");
    batch_free(&x);
    snap a, b;
    snap_take(m, &o, &a);
    snap_take(m2, &o, &b);
    assert_snap_equal(&a, &b, "a restored model's next step");
    assert_true(r1.loss == r2.loss && r1.offenders == r2.offenders && r1.scores == r2.scores);
    snap_free(&a);
    snap_free(&b);
    wl_model_destroy(m2);

    /* SGD has no state to read */
    wl_model_options os = o;
    os.optimizer = WL_OPTIMIZER_SGD;
    wl_model *ms = model_new(ctxs[0], &os);
    float *tmp = wlt_alloc(s0.nv * sizeof(float));
    for (int t = 0; t < 3; ++t)
        assert_int_equal(wl_model_read_state(ms, (wl_table)t, tmp), WL_ERROR_INVALID_ARGUMENT);
    free(tmp);
    wl_model_destroy(ms);

    free(U);
    snap_free(&s0);
    snap_free(&s1);
    snap_free(&s2);
    snap_free(&s3);
    wl_model_destroy(m);
}

/* ------------------------------------------------------------ rows of a table */

/* Table t of a snapshot, its state, its rows and floats per row. */
static void snap_table(const snap *s, const wl_model_options *o, wl_table t, float **table, float **st, size_t *rows,
                       size_t *width)
{
    *table = t == WL_TABLE_USERS ? s->U : t == WL_TABLE_ITEMS ? s->V : s->b;
    *st = t == WL_TABLE_USERS ? s->AU : t == WL_TABLE_ITEMS ? s->AV : s->Ab;
    *rows = t == WL_TABLE_USERS ? o->num_users : o->num_items;
    *width = t == WL_TABLE_ITEM_BIAS ? 1 : o->dim;
}

/* Rows read equal the whole tables' rows; rows written land (the state kept
 * without one, replaced with one) and nothing else moves; a step after them
 * equals one on a model written whole with wl_model_write(_state). */
static void rows_case(wl_context *c, int plan)
{
    wl_model_options o;
    model_options(&o, 50, 80, 7, 90 + (uint64_t)plan, WL_OPTIMIZER_ADAGRAD, 0.1f);
    wl_model *m = model_new(c, &o);
    wl_loss_options lo;
    wl_loss_options_default(&lo, o.num_items);
    for (int step = 0; step < 2; ++step) {
        batch x;
        batch_make(&x, &o, MODE_SAMPLED, 64, 8, 900 + (uint64_t)step, 50, 80);
        check_ok(m, wl_model_step(m, &lo, &x.b, NULL), "wl_model_step");
        batch_free(&x);
    }
    snap s0;
    snap_take(m, &o, &s0);
    ref_rng g;
    ref_rng_seed(&g, 17 + (uint64_t)plan);
    char what[128];
    for (int t = 0; t < 3; ++t) {
        float *table, *st;
        size_t rows, width;
        snap_table(&s0, &o, (wl_table)t, &table, &st, &rows, &width);
        /* unsorted, with repeats, the first and the last row */
        enum { N = 23 };
        uint32_t ids[N];
        for (size_t k = 0; k < N; ++k)
            ids[k] = (uint32_t)(ref_rng_next(&g) % rows);
        ids[3] = (uint32_t)rows - 1;
        ids[7] = 0;
        ids[8] = ids[2];
        float *out = wlt_alloc(N * width * sizeof(float)), *out_state = wlt_alloc(N * width * sizeof(float));
        check_ok(m, wl_model_read_rows(m, (wl_table)t, N, ids, out, out_state), "wl_model_read_rows");
        for (size_t k = 0; k < N; ++k) {
            snprintf(what, sizeof what, "plan %s, table %d, read row %zu (%u)", wlt_plan_names[plan], t, k,
                     (unsigned)ids[k]);
            if (memcmp(out + k * width, table + ids[k] * width, width * sizeof(float)))
                fail_msg("%s: differs from wl_model_read", what);
            if (memcmp(out_state + k * width, st + ids[k] * width, width * sizeof(float)))
                fail_msg("%s: its state differs from wl_model_read_state", what);
        }
        /* without the state: the same rows */
        wlt_fill_sentinel(out_state, N * width);
        check_ok(m, wl_model_read_rows(m, (wl_table)t, N, ids, out_state, NULL), "wl_model_read_rows (no state)");
        assert_true(memcmp(out, out_state, N * width * sizeof(float)) == 0);
        free(out);
        free(out_state);
    }
    /* n = 0: nothing read, NULL pointers fine */
    check_ok(m, wl_model_read_rows(m, WL_TABLE_ITEMS, 0, NULL, NULL, NULL), "wl_model_read_rows (n 0)");
    check_ok(m, wl_model_write_rows(m, WL_TABLE_ITEMS, 0, NULL, NULL, NULL), "wl_model_write_rows (n 0)");

    /* writes: every third row and the last; users keep their state, items and biases get a new one */
    float *want[6], *want_state[3];
    size_t written[3];
    for (int t = 0; t < 3; ++t) {
        float *table, *st;
        size_t rows, width;
        snap_table(&s0, &o, (wl_table)t, &table, &st, &rows, &width);
        want[t] = wlt_alloc(rows * width * sizeof(float));
        want_state[t] = wlt_alloc(rows * width * sizeof(float));
        memcpy(want[t], table, rows * width * sizeof(float));
        memcpy(want_state[t], st, rows * width * sizeof(float));
        uint32_t *ids = wlt_alloc(rows * sizeof(uint32_t));
        size_t n = 0;
        for (size_t r = t; r < rows; r += 3)
            ids[n++] = (uint32_t)r;
        if (ids[n - 1] != rows - 1)
            ids[n++] = (uint32_t)rows - 1;
        written[t] = n;
        float *in = wlt_alloc(n * width * sizeof(float)), *in_state = wlt_alloc(n * width * sizeof(float));
        for (size_t e = 0; e < n * width; ++e) {
            in[e] = (float)ref_rng_uniform(&g, -2.0, 2.0);
            in_state[e] = (float)ref_rng_uniform(&g, 1.0, 5.0);
        }
        in[0] = -0.0f;
        const int keep_state = t == WL_TABLE_USERS;
        for (size_t k = 0; k < n; ++k) {
            memcpy(want[t] + ids[k] * width, in + k * width, width * sizeof(float));
            if (!keep_state)
                memcpy(want_state[t] + ids[k] * width, in_state + k * width, width * sizeof(float));
        }
        check_ok(m, wl_model_write_rows(m, (wl_table)t, n, ids, in, keep_state ? NULL : in_state),
                 "wl_model_write_rows");
        free(ids);
        free(in);
        free(in_state);
    }
    snap s1;
    snap_take(m, &o, &s1);
    for (int t = 0; t < 3; ++t) {
        float *table, *st;
        size_t rows, width;
        snap_table(&s1, &o, (wl_table)t, &table, &st, &rows, &width);
        snprintf(what, sizeof what, "plan %s, table %d after writing %zu rows", wlt_plan_names[plan], t, written[t]);
        if (memcmp(table, want[t], rows * width * sizeof(float)))
            fail_msg("%s: the table is not the rows written and the others unchanged", what);
        if (memcmp(st, want_state[t], rows * width * sizeof(float)))
            fail_msg("%s: the state is not as written (or kept)", what);
    }
    /* a model written whole with the same values steps the same, bitwise */
    wl_model *w = model_new(c, &o);
    for (int t = 0; t < 3; ++t) {
        check_ok(w, wl_model_write(w, (wl_table)t, want[t]), "wl_model_write");
        check_ok(w, wl_model_write_state(w, (wl_table)t, want_state[t]), "wl_model_write_state");
    }
    for (int mode = 0; mode < 3; ++mode) {
        batch x;
        batch_make(&x, &o, mode, 32, 6, 910 + (uint64_t)mode, 50, 80);
        wl_step_result r1, r2;
        check_ok(m, wl_model_step(m, &lo, &x.b, &r1), "step");
        check_ok(w, wl_model_step(w, &lo, &x.b, &r2), "step");
        batch_free(&x);
        snprintf(what, sizeof what, "plan %s, %s step after write_rows vs after write", wlt_plan_names[plan],
                 mode_names[mode]);
        if (memcmp(&r1.loss, &r2.loss, sizeof r1.loss) || r1.offenders != r2.offenders || r1.scores != r2.scores)
            fail_msg("%s: the results differ", what);
        snap a, b;
        snap_take(m, &o, &a);
        snap_take(w, &o, &b);
        assert_snap_equal(&a, &b, what);
        snap_free(&a);
        snap_free(&b);
    }
    for (int t = 0; t < 3; ++t) {
        free(want[t]);
        free(want_state[t]);
    }
    wl_model_destroy(w);
    snap_free(&s0);
    snap_free(&s1);
    wl_model_destroy(m);
}

/* A side with features: the rows are its feature table's, and the representations follow a write. */
static void rows_features_case(wl_context *c, int plan)
{
    wl_model_options o;
    model_options(&o, 30, 60, 9, 95 + (uint64_t)plan, WL_OPTIMIZER_ADAGRAD, 0.1f);
    o.num_item_features = 25;
    const size_t F = o.num_item_features, D = o.dim;
    wl_model *m = model_new(c, &o), *w = model_new(c, &o);
    /* item i: features i % 25 and (7 i + 3) % 25 when they differ, in ascending order */
    uint64_t indptr[61];
    int32_t feats[120];
    float wts[120];
    indptr[0] = 0;
    for (uint32_t i = 0; i < o.num_items; ++i) {
        int32_t a = (int32_t)(i % F), b = (int32_t)((7 * i + 3) % F);
        size_t at = (size_t)indptr[i];
        if (a > b) {
            const int32_t tmp = a;
            a = b;
            b = tmp;
        }
        feats[at] = a;
        wts[at++] = 0.5f + (float)(i % 3);
        if (b != a) {
            feats[at] = b;
            wts[at++] = -0.25f * (float)(1 + i % 4);
        }
        indptr[i + 1] = at;
    }
    check_ok(m, wl_model_set_features(m, WL_TABLE_ITEMS, indptr, feats, wts), "wl_model_set_features");
    check_ok(w, wl_model_set_features(w, WL_TABLE_ITEMS, indptr, feats, wts), "wl_model_set_features");
    float *V = wlt_alloc(F * D * sizeof(float)), *AV = wlt_alloc(F * D * sizeof(float));
    float *b = wlt_alloc(F * sizeof(float)), *Ab = wlt_alloc(F * sizeof(float));
    check_ok(m, wl_model_read(m, WL_TABLE_ITEMS, V), "wl_model_read");
    check_ok(m, wl_model_read_state(m, WL_TABLE_ITEMS, AV), "wl_model_read_state");
    check_ok(m, wl_model_read(m, WL_TABLE_ITEM_BIAS, b), "wl_model_read");
    check_ok(m, wl_model_read_state(m, WL_TABLE_ITEM_BIAS, Ab), "wl_model_read_state");
    const uint32_t ids[6] = {24, 3, 0, 3, 11, 24};
    float got[6 * 9], got_state[6 * 9];
    check_ok(m, wl_model_read_rows(m, WL_TABLE_ITEMS, 6, ids, got, got_state), "wl_model_read_rows (features)");
    for (size_t k = 0; k < 6; ++k) {
        assert_true(memcmp(got + k * D, V + ids[k] * D, D * sizeof(float)) == 0);
        assert_true(memcmp(got_state + k * D, AV + ids[k] * D, D * sizeof(float)) == 0);
    }
    check_ok(m, wl_model_read_rows(m, WL_TABLE_ITEM_BIAS, 6, ids, got, got_state), "wl_model_read_rows (bias)");
    for (size_t k = 0; k < 6; ++k)
        assert_true(got[k] == b[ids[k]] && got_state[k] == Ab[ids[k]]);
    /* row 25 is an item, not a feature row */
    const uint32_t beyond[1] = {25};
    assert_int_equal(wl_model_read_rows(m, WL_TABLE_ITEMS, 1, beyond, got, NULL), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_write_rows(m, WL_TABLE_ITEM_BIAS, 1, beyond, got, NULL), WL_ERROR_INVALID_ARGUMENT);
    /* the representations first, so that the write must make them stale */
    float *rep = wlt_alloc(o.num_items * D * sizeof(float)), *rep_w = wlt_alloc(o.num_items * D * sizeof(float));
    check_ok(m, wl_model_read_representations(m, WL_TABLE_ITEMS, rep), "wl_model_read_representations");
    const uint32_t wids[4] = {0, 3, 11, 24};
    float in[4 * 9], in_b[4];
    for (size_t e = 0; e < 4 * D; ++e)
        in[e] = 0.1f * (float)e - 1.0f;
    for (size_t k = 0; k < 4; ++k) {
        in_b[k] = 0.5f + (float)k;
        memcpy(V + wids[k] * D, in + k * D, D * sizeof(float));
        b[wids[k]] = in_b[k];
    }
    check_ok(m, wl_model_write_rows(m, WL_TABLE_ITEMS, 4, wids, in, NULL), "wl_model_write_rows (features)");
    check_ok(m, wl_model_write_rows(m, WL_TABLE_ITEM_BIAS, 4, wids, in_b, NULL), "wl_model_write_rows (bias)");
    float *back = wlt_alloc(F * D * sizeof(float));
    check_ok(m, wl_model_read(m, WL_TABLE_ITEMS, back), "wl_model_read");
    assert_true(memcmp(back, V, F * D * sizeof(float)) == 0);
    check_ok(m, wl_model_read_state(m, WL_TABLE_ITEMS, back), "wl_model_read_state");
    assert_true(memcmp(back, AV, F * D * sizeof(float)) == 0);
    /* the same tables written whole give the same representations, bitwise */
    check_ok(w, wl_model_write(w, WL_TABLE_ITEMS, V), "wl_model_write");
    check_ok(w, wl_model_write(w, WL_TABLE_ITEM_BIAS, b), "wl_model_write");
    check_ok(m, wl_model_read_representations(m, WL_TABLE_ITEMS, rep), "wl_model_read_representations");
    check_ok(w, wl_model_read_representations(w, WL_TABLE_ITEMS, rep_w), "wl_model_read_representations");
    char what[96];
    snprintf(what, sizeof what, "plan %s: item representations after write_rows", wlt_plan_names[plan]);
    if (memcmp(rep, rep_w, o.num_items * D * sizeof(float)))
        fail_msg("%s differ from those after wl_model_write", what);
    check_ok(m, wl_model_read_representations(m, WL_TABLE_ITEM_BIAS, rep), "wl_model_read_representations");
    check_ok(w, wl_model_read_representations(w, WL_TABLE_ITEM_BIAS, rep_w), "wl_model_read_representations");
    if (memcmp(rep, rep_w, o.num_items * sizeof(float)))
        fail_msg("%s: the biases differ", what);
    free(V);
    free(AV);
    free(b);
    free(Ab);
    free(rep);
    free(rep_w);
    free(back);
    wl_model_destroy(w);
    wl_model_destroy(m);
}

static void test_rows(void **state)
{
    (void)state;
    for (int p = 0; p < WLT_PLANS; ++p) {
        rows_case(ctxs[p], p);
        rows_features_case(ctxs[p], p);
    }
}

/* SGD has no state: a state refused, none fine; without item biases b stays 0. */
static void test_rows_sgd(void **state)
{
    (void)state;
    wl_model_options o;
    model_options(&o, 20, 30, 4, 97, WL_OPTIMIZER_SGD, 0.1f);
    o.item_bias = 0;
    wl_model *m = model_new(ctxs[0], &o);
    snap s0;
    snap_take(m, &o, &s0);
    const uint32_t ids[2] = {1, 29};
    float in[8] = {1, 2, 3, 4, 5, 6, 7, 8}, st[8] = {1, 1, 1, 1, 1, 1, 1, 1}, out[8];
    assert_int_equal(wl_model_read_rows(m, WL_TABLE_ITEMS, 2, ids, out, st), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_read_rows(m, WL_TABLE_ITEMS, 0, NULL, NULL, st), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_write_rows(m, WL_TABLE_ITEMS, 2, ids, in, st), WL_ERROR_INVALID_ARGUMENT);
    assert_non_null(strstr(wl_context_last_error(ctxs[0]), "SGD"));
    assert_int_equal(wl_model_write_rows(m, WL_TABLE_ITEM_BIAS, 2, ids, in, NULL), WL_ERROR_INVALID_ARGUMENT);
    assert_non_null(strstr(wl_context_last_error(ctxs[0]), "item_bias"));
    snap s1;
    snap_take(m, &o, &s1);
    assert_snap_equal(&s0, &s1, "refused SGD row calls");
    check_ok(m, wl_model_write_rows(m, WL_TABLE_ITEMS, 2, ids, in, NULL), "wl_model_write_rows (SGD)");
    const float zeros[2] = {0.0f, -0.0f};
    check_ok(m, wl_model_write_rows(m, WL_TABLE_ITEM_BIAS, 2, ids, zeros, NULL), "wl_model_write_rows (zero biases)");
    check_ok(m, wl_model_read_rows(m, WL_TABLE_ITEMS, 2, ids, out, NULL), "wl_model_read_rows (SGD)");
    assert_true(memcmp(out, in, sizeof in) == 0);
    snap_free(&s0);
    snap_free(&s1);
    wl_model_destroy(m);
}

/* ------------------------------------------------------------ rows the steps changed */

/* Rows (of `rows` rows, `width` floats each) whose table or state rows differ between a and b, or whose bias
 * differs (ba, bb not NULL), ascending into want; their number. */
static size_t rows_differing(size_t rows, size_t width, const float *a, const float *b, const float *sa,
                             const float *sb, const float *ba, const float *bb, const float *sba, const float *sbb,
                             uint32_t *want)
{
    size_t n = 0;
    for (size_t r = 0; r < rows; ++r) {
        int diff = memcmp(a + r * width, b + r * width, width * sizeof(float)) != 0;
        diff |= sa && memcmp(sa + r * width, sb + r * width, width * sizeof(float)) != 0;
        diff |= ba && memcmp(ba + r, bb + r, sizeof(float)) != 0;
        diff |= sba && memcmp(sba + r, sbb + r, sizeof(float)) != 0;
        if (diff)
            want[n++] = (uint32_t)r;
    }
    return n;
}

/* wl_model_changed_rows of side lists exactly want[0 .. n_want) (rows room for `room` rows, filled with a
 * sentinel first: nothing past the count is written). */
static void assert_changed(wl_model *m, wl_table side, const uint32_t *want, size_t n_want, size_t room,
                           const char *what)
{
    uint32_t *got = wlt_alloc((room + 1) * sizeof(uint32_t));
    for (size_t k = 0; k <= room; ++k)
        got[k] = 0xDEADBEEFu;
    size_t n = (size_t)-1;
    check_ok(m, wl_model_changed_rows(m, side, got, &n), "wl_model_changed_rows");
    if (n != n_want)
        fail_msg("%s: %zu rows changed, %zu expected", what, n, n_want);
    for (size_t k = 0; k < n; ++k)
        if (got[k] != want[k])
            fail_msg("%s: changed row %zu is %u, expected %u", what, k, (unsigned)got[k], (unsigned)want[k]);
    for (size_t k = n; k <= room; ++k)
        if (got[k] != 0xDEADBEEFu)
            fail_msg("%s: rows[%zu] written past the count", what, k);
    free(got);
}

/* No marks on side (and the call leaves none). */
static void assert_no_changes(wl_model *m, wl_table side, const char *what)
{
    size_t n = (size_t)-1;
    check_ok(m, wl_model_changed_rows(m, side, NULL, &n), "wl_model_changed_rows");
    if (n != 0)
        fail_msg("%s: %zu rows marked, none expected", what, n);
}

/* Adagrad with L2 on both sides: every row a step updates moves (its gradient has an L2 term), so the rows
 * marked are exactly the rows whose table, state or bias differ from before the steps. */
static void changed_case(wl_context *c, int plan)
{
    wl_model_options o;
    model_options(&o, 50, 80, 7, 70 + (uint64_t)plan, WL_OPTIMIZER_ADAGRAD, 0.1f);
    o.l2_users = 0.01f;
    o.l2_items = 0.02f;
    wl_model *m = model_new(c, &o);
    wl_loss_options lo;
    wl_loss_options_default(&lo, o.num_items);
    char what[128];
    snprintf(what, sizeof what, "plan %s, a new model", wlt_plan_names[plan]);
    assert_no_changes(m, WL_TABLE_USERS, what);
    assert_no_changes(m, WL_TABLE_ITEMS, what);

    /* writes do not mark */
    snap s0;
    snap_take(m, &o, &s0);
    check_ok(m, wl_model_write(m, WL_TABLE_ITEMS, s0.V), "wl_model_write");
    check_ok(m, wl_model_write_state(m, WL_TABLE_USERS, s0.AU), "wl_model_write_state");
    const uint32_t some[3] = {0, 17, 49};
    float in[3 * 7];
    for (size_t e = 0; e < 3 * 7; ++e)
        in[e] = 0.01f * (float)e;
    check_ok(m, wl_model_write_rows(m, WL_TABLE_USERS, 3, some, in, NULL), "wl_model_write_rows");
    check_ok(m, wl_model_write_rows(m, WL_TABLE_ITEM_BIAS, 3, some, in, NULL), "wl_model_write_rows");
    snprintf(what, sizeof what, "plan %s, after writes", wlt_plan_names[plan]);
    assert_no_changes(m, WL_TABLE_USERS, what);
    assert_no_changes(m, WL_TABLE_ITEM_BIAS, what);
    snap_free(&s0);

    /* a step of each kind on users below 40 and items below 60 (sampled candidates: any item) */
    snap_take(m, &o, &s0);
    for (int mode = 0; mode < 3; ++mode) {
        batch x;
        batch_make(&x, &o, mode, 24, 6, 700 + (uint64_t)mode, 40, 60);
        check_ok(m, wl_model_step(m, &lo, &x.b, NULL), "wl_model_step");
        batch_free(&x);
    }
    snap s1;
    snap_take(m, &o, &s1);
    uint32_t want_u[50], want_v[80];
    const size_t nu = rows_differing(o.num_users, o.dim, s0.U, s1.U, s0.AU, s1.AU, NULL, NULL, NULL, NULL, want_u);
    const size_t nv = rows_differing(o.num_items, o.dim, s0.V, s1.V, s0.AV, s1.AV, s0.b, s1.b, s0.Ab, s1.Ab, want_v);
    assert_true(nu > 0 && nu <= 40 && nv > 0);
    /* users and items apart: reading one side leaves the other's marks */
    snprintf(what, sizeof what, "plan %s, users after three steps", wlt_plan_names[plan]);
    assert_changed(m, WL_TABLE_USERS, want_u, nu, o.num_users, what);
    assert_no_changes(m, WL_TABLE_USERS, what);
    snprintf(what, sizeof what, "plan %s, items after three steps", wlt_plan_names[plan]);
    assert_changed(m, WL_TABLE_ITEMS, want_v, nv, o.num_items, what);
    assert_no_changes(m, WL_TABLE_ITEMS, what);
    assert_no_changes(m, WL_TABLE_ITEM_BIAS, what);

    /* one more step: the bias side lists the item rows and clears them; rows NULL counts and clears too; rows
     * written after the step are not added */
    snap_free(&s0);
    s0 = s1;
    batch x;
    batch_make(&x, &o, MODE_ROWS, 8, 4, 710, 50, 80);
    check_ok(m, wl_model_step(m, &lo, &x.b, NULL), "wl_model_step");
    batch_free(&x);
    snap_take(m, &o, &s1);
    const size_t nu2 = rows_differing(o.num_users, o.dim, s0.U, s1.U, s0.AU, s1.AU, NULL, NULL, NULL, NULL, want_u);
    const size_t nv2 = rows_differing(o.num_items, o.dim, s0.V, s1.V, s0.AV, s1.AV, s0.b, s1.b, s0.Ab, s1.Ab, want_v);
    const uint32_t other[1] = {0};
    check_ok(m, wl_model_write_rows(m, WL_TABLE_ITEMS, 1, other, in, NULL), "wl_model_write_rows");
    snprintf(what, sizeof what, "plan %s, the bias side after a fourth step", wlt_plan_names[plan]);
    assert_changed(m, WL_TABLE_ITEM_BIAS, want_v, nv2, o.num_items, what);
    assert_no_changes(m, WL_TABLE_ITEMS, what);
    size_t n = (size_t)-1;
    check_ok(m, wl_model_changed_rows(m, WL_TABLE_USERS, NULL, &n), "wl_model_changed_rows (count)");
    assert_int_equal(n, nu2);
    snprintf(what, sizeof what, "plan %s, users after counting", wlt_plan_names[plan]);
    assert_no_changes(m, WL_TABLE_USERS, what);

    /* a model saved with marks pending loads without any */
    batch_make(&x, &o, MODE_SAMPLED, 8, 4, 711, 50, 80);
    check_ok(m, wl_model_step(m, &lo, &x.b, NULL), "wl_model_step");
    batch_free(&x);
    void *data = NULL;
    size_t size = 0;
    check_ok(m, wl_model_save_memory(m, NULL, 0, &data, &size), "wl_model_save_memory");
    wl_model *loaded = NULL;
    check_ok(m, wl_model_load_memory(c, data, size, &loaded, NULL, NULL), "wl_model_load_memory");
    wl_free(data);
    snprintf(what, sizeof what, "plan %s, a loaded model", wlt_plan_names[plan]);
    assert_no_changes(loaded, WL_TABLE_USERS, what);
    assert_no_changes(loaded, WL_TABLE_ITEMS, what);
    wl_model_destroy(loaded);
    check_ok(m, wl_model_changed_rows(m, WL_TABLE_ITEMS, NULL, &n), "wl_model_changed_rows");
    assert_true(n > 0);
    snap_free(&s0);
    snap_free(&s1);
    wl_model_destroy(m);
}

/* A side with features lists rows of its feature table: exactly those whose rows moved. */
static void changed_features_case(wl_context *c, int plan)
{
    wl_model_options o;
    model_options(&o, 30, 60, 5, 75 + (uint64_t)plan, WL_OPTIMIZER_ADAGRAD, 0.1f);
    o.l2_users = 0.01f;
    o.l2_items = 0.02f;
    o.num_item_features = 90; /* more feature rows than items: rows 60 and up exist only as features */
    wl_model *m = model_new(c, &o);
    /* item i: features i and 60 + i / 2, weights 1 and 0.5 */
    uint64_t indptr[61];
    int32_t feats[120];
    float wts[120];
    indptr[0] = 0;
    for (uint32_t i = 0; i < o.num_items; ++i) {
        feats[2 * i] = (int32_t)i;
        wts[2 * i] = 1.0f;
        feats[2 * i + 1] = (int32_t)(60 + i / 2);
        wts[2 * i + 1] = 0.5f;
        indptr[i + 1] = 2 * (i + 1);
    }
    check_ok(m, wl_model_set_features(m, WL_TABLE_ITEMS, indptr, feats, wts), "wl_model_set_features");
    char what[128];
    snprintf(what, sizeof what, "plan %s, features: after set_features", wlt_plan_names[plan]);
    assert_no_changes(m, WL_TABLE_ITEMS, what);
    const size_t F = o.num_item_features, D = o.dim;
    float *V0 = wlt_alloc(F * D * sizeof(float)), *V1 = wlt_alloc(F * D * sizeof(float));
    float *A0 = wlt_alloc(F * D * sizeof(float)), *A1 = wlt_alloc(F * D * sizeof(float));
    float *b0 = wlt_alloc(F * sizeof(float)), *b1 = wlt_alloc(F * sizeof(float));
    check_ok(m, wl_model_read(m, WL_TABLE_ITEMS, V0), "wl_model_read");
    check_ok(m, wl_model_read_state(m, WL_TABLE_ITEMS, A0), "wl_model_read_state");
    check_ok(m, wl_model_read(m, WL_TABLE_ITEM_BIAS, b0), "wl_model_read");
    wl_loss_options lo;
    wl_loss_options_default(&lo, o.num_items);
    for (int mode = 0; mode < 3; ++mode) {
        batch x;
        batch_make(&x, &o, mode, 12, 4, 720 + (uint64_t)mode, 30, 40);
        check_ok(m, wl_model_step(m, &lo, &x.b, NULL), "wl_model_step");
        batch_free(&x);
    }
    check_ok(m, wl_model_read(m, WL_TABLE_ITEMS, V1), "wl_model_read");
    check_ok(m, wl_model_read_state(m, WL_TABLE_ITEMS, A1), "wl_model_read_state");
    check_ok(m, wl_model_read(m, WL_TABLE_ITEM_BIAS, b1), "wl_model_read");
    uint32_t *want = wlt_alloc(F * sizeof(uint32_t));
    const size_t nv = rows_differing(F, D, V0, V1, A0, A1, b0, b1, NULL, NULL, want);
    assert_true(nv > 0 && want[nv - 1] >= 60);
    snprintf(what, sizeof what, "plan %s, feature rows after three steps", wlt_plan_names[plan]);
    assert_changed(m, WL_TABLE_ITEMS, want, nv, F, what);
    assert_no_changes(m, WL_TABLE_ITEMS, what);
    size_t n = 0;
    check_ok(m, wl_model_changed_rows(m, WL_TABLE_USERS, NULL, &n), "wl_model_changed_rows");
    assert_true(n > 0 && n <= o.num_users);
    free(V0);
    free(V1);
    free(A0);
    free(A1);
    free(b0);
    free(b1);
    free(want);
    wl_model_destroy(m);
}

static void test_changed_rows(void **state)
{
    (void)state;
    for (int p = 0; p < WLT_PLANS; ++p) {
        changed_case(ctxs[p], p);
        changed_features_case(ctxs[p], p);
    }
}

/* ------------------------------------------------------------ errors */

static void test_errors_options(void **state)
{
    (void)state;
    wl_context *c = ctxs[0];
    wl_model_options good;
    model_options(&good, 50, 80, 8, 1, WL_OPTIMIZER_ADAGRAD, 0.05f);
    wl_model *m = NULL;
    assert_int_equal(wl_model_create(c, NULL, &m), WL_ERROR_INVALID_ARGUMENT);
    assert_null(m);
    assert_int_equal(wl_model_create(c, &good, NULL), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_create(NULL, &good, &m), WL_ERROR_INVALID_ARGUMENT);
    for (int k = 0; k < 14; ++k) {
        wl_model_options o = good;
        switch (k) {
        case 0: o.dim = 0; break;
        case 1: o.num_items = 1; break;
        case 2: o.num_items = 0; break;
        case 3: o.num_users = 0; break;
        case 4: o.learning_rate = 0.0f; break;
        case 5: o.learning_rate = -0.1f; break;
        case 6: o.learning_rate = NAN; break;
        case 7: o.learning_rate = INFINITY; break;
        case 8: o.l2_users = -1e-3f; break;
        case 9: o.l2_items = -1e-3f; break;
        case 10: o.l2_users = NAN; break;
        case 11: o.l2_items = INFINITY; break;
        case 12: o.optimizer = (wl_optimizer)2; break;
        default: o.optimizer = (wl_optimizer)-1; break;
        }
        m = NULL;
        const wl_status s = wl_model_create(c, &o, &m);
        if (s != WL_ERROR_INVALID_ARGUMENT)
            fail_msg("bad option case %d: %s, want invalid argument", k, wl_status_string(s));
        assert_null(m);
    }
    /* the boundaries that are fine */
    wl_model_options o = good;
    o.num_users = 1;
    o.num_items = 2;
    o.dim = 1;
    m = model_new(c, &o);
    wl_model_destroy(m);
    wl_model_destroy(NULL);
}

/* A refused call changed nothing: the tables, the state and the known positives (via rank with exclude_known). */
typedef struct guard {
    wl_model *m;
    wl_model_options o;
    snap before;
    int32_t users[80];
    int32_t items[80];
    uint32_t rank_before[80];
} guard;

static void guard_init(guard *g, wl_model *m, const wl_model_options *o)
{
    g->m = m;
    g->o = *o;
    snap_take(m, o, &g->before);
    for (int q = 0; q < 80; ++q) {
        g->users[q] = 0;
        g->items[q] = q;
    }
    check_ok(m, wl_model_rank(m, 80, g->users, g->items, 1, g->rank_before), "wl_model_rank");
}

static void guard_check(guard *g, wl_status s, const char *what)
{
    if (s != WL_ERROR_INVALID_ARGUMENT)
        fail_msg("%s: %s, want invalid argument", what, wl_status_string(s));
    snap now;
    snap_take(g->m, &g->o, &now);
    if (!snap_equal(&g->before, &now))
        fail_msg("%s: a refused call changed the tables", what);
    snap_free(&now);
    uint32_t rank_now[80];
    check_ok(g->m, wl_model_rank(g->m, 80, g->users, g->items, 1, rank_now), "wl_model_rank");
    if (memcmp(rank_now, g->rank_before, sizeof rank_now))
        fail_msg("%s: a refused call changed the known positives", what);
}

static void test_errors_calls(void **state)
{
    (void)state;
    wl_model_options o;
    model_options(&o, 50, 80, 8, 61, WL_OPTIMIZER_ADAGRAD, 0.1f);
    wl_model *m = model_new(ctxs[0], &o);
    wl_loss_options lo;
    wl_loss_options_default(&lo, o.num_items);
    /* a trained model with known positives (user 0 knows items 1, 2, 3) */
    for (int step = 0; step < 2; ++step) {
        batch x;
        batch_make(&x, &o, MODE_SAMPLED, 64, 8, 800 + (uint64_t)step, 50, 80);
        check_ok(m, wl_model_step(m, &lo, &x.b, NULL), "wl_model_step");
        batch_free(&x);
    }
    uint64_t indptr[51];
    int32_t kitems[3] = {1, 2, 3};
    indptr[0] = 0;
    for (int u = 1; u <= 50; ++u)
        indptr[u] = 3;
    check_ok(m, wl_model_set_known(m, indptr, kitems), "wl_model_set_known");
    guard g;
    guard_init(&g, m, &o);

    /* ---- step */
    batch x;
    batch_make(&x, &o, MODE_ROWS, 16, 4, 801, 50, 80);
    wl_step_result r;
    wl_batch b = x.b;
    guard_check(&g, wl_model_step(NULL, &lo, &b, &r), "step: NULL model");
    guard_check(&g, wl_model_step(m, NULL, &b, &r), "step: NULL loss options");
    guard_check(&g, wl_model_step(m, &lo, NULL, &r), "step: NULL batch");
    b.users = NULL;
    guard_check(&g, wl_model_step(m, &lo, &b, &r), "step: NULL users");
    b = x.b;
    b.positives = NULL;
    guard_check(&g, wl_model_step(m, &lo, &b, &r), "step: NULL positives");
    /* ids out of range, in the last row so that a check that stops early is caught */
    const int32_t bad_users[] = {-1, 50, INT32_MAX, INT32_MIN};
    for (size_t t = 0; t < 4; ++t) {
        b = x.b;
        const int32_t keep = x.users[15];
        x.users[15] = bad_users[t];
        guard_check(&g, wl_model_step(m, &lo, &b, &r), "step: user out of range");
        x.users[15] = keep;
    }
    const int32_t bad_items[] = {-1, 80, INT32_MAX};
    for (size_t t = 0; t < 3; ++t) {
        const int32_t keep = x.positives[15];
        x.positives[15] = bad_items[t];
        guard_check(&g, wl_model_step(m, &lo, &x.b, &r), "step: positive out of range");
        x.positives[15] = keep;
        const int32_t keep2 = x.neg[15 * 4 + 3];
        x.neg[15 * 4 + 3] = bad_items[t];
        guard_check(&g, wl_model_step(m, &lo, &x.b, &r), "step: candidate out of range");
        x.neg[15 * 4 + 3] = keep2;
        b = x.b;
        b.shared_negatives = 1;
        const int32_t keep3 = x.neg[3];
        x.neg[3] = bad_items[t];
        guard_check(&g, wl_model_step(m, &lo, &b, &r), "step: shared candidate out of range");
        x.neg[3] = keep3;
    }
    b = x.b;
    b.negatives = 0;
    guard_check(&g, wl_model_step(m, &lo, &b, &r), "step: negatives 0");
    b = x.b;
    b.rows = SIZE_MAX / 2;
    b.negatives = 4;
    guard_check(&g, wl_model_step(m, &lo, &b, &r), "step: rows x negatives overflows");
    b = x.b;
    b.neg_items = NULL; /* sampled: still overflows */
    b.rows = SIZE_MAX / 3;
    b.negatives = 7;
    guard_check(&g, wl_model_step(m, &lo, &b, &r), "step: rows x negatives overflows (sampled)");
    {
        /* no rows: nothing to do, nothing changes */
        wl_batch empty = x.b;
        empty.rows = 0;
        wl_loss_options lo_mean = lo;
        lo_mean.reduction = WL_REDUCE_MEAN;
        memset(&r, 0xA5, sizeof r);
        check_ok(m, wl_model_step(m, &lo_mean, &empty, &r), "step: 0 rows");
        assert_true(r.offenders == 0 && r.scores == 0 && r.loss == 0.0);
        snap now;
        snap_take(m, &o, &now);
        assert_snap_equal(&g.before, &now, "step: 0 rows");
        snap_free(&now);
    }
    wl_loss_options lo_none = lo;
    lo_none.reduction = WL_REDUCE_NONE;
    guard_check(&g, wl_model_step(m, &lo_none, &x.b, &r), "step: WL_REDUCE_NONE");
    batch_free(&x);

    /* ---- step_cl: shape checks (ids in device buffers are the device's to read) */
    {
        cl_context cx = wl_context_cl_context(ctxs[0]);
        int32_t ids[4] = {0, 1, 2, 3};
        cl_mem bu = wlt_make_buffer(cx, sizeof ids, ids), bp = wlt_make_buffer(cx, sizeof ids, ids);
        wl_batch_cl bc = {4, 0, bu, bp, 0, NULL, 0, 1, NULL};
        guard_check(&g, wl_model_step_cl(m, &lo, &bc, &r, 0, NULL, NULL), "step_cl: negatives 0");
        bc.negatives = 2;
        guard_check(&g, wl_model_step_cl(m, &lo_none, &bc, &r, 0, NULL, NULL), "step_cl: WL_REDUCE_NONE");
        bc.users = NULL;
        guard_check(&g, wl_model_step_cl(m, &lo, &bc, &r, 0, NULL, NULL), "step_cl: NULL users");
        guard_check(&g, wl_model_step_cl(m, &lo, NULL, &r, 0, NULL, NULL), "step_cl: NULL batch");
        clReleaseMemObject(bu);
        clReleaseMemObject(bp);
    }

    /* ---- known positives (CSR) */
    uint64_t ip[51];
    int32_t it[6];
    const int32_t base_items[6] = {4, 9, 70, 0, 1, 79};
    for (int k = 0; k < 6; ++k) {
        memcpy(it, base_items, sizeof it);
        ip[0] = 0;
        ip[1] = 3; /* user 0: 4 9 70 */
        for (int u = 2; u <= 50; ++u)
            ip[u] = 6; /* user 1: 0 1 79 */
        const char *what = "";
        switch (k) {
        case 0:
            ip[0] = 1;
            what = "set_known: indptr[0] != 0";
            break;
        case 1:
            ip[30] = 5;
            what = "set_known: indptr decreasing";
            break;
        case 2:
            it[5] = 80;
            what = "set_known: item out of range";
            break;
        case 3:
            it[3] = -1;
            what = "set_known: negative item";
            break;
        case 4:
            it[1] = 4;
            what = "set_known: duplicate item";
            break;
        default:
            it[0] = 10;
            what = "set_known: items descending";
            break;
        }
        guard_check(&g, wl_model_set_known(m, ip, it), what);
    }
    guard_check(&g, wl_model_set_known(NULL, ip, it), "set_known: NULL model");
    guard_check(&g, wl_model_set_known(m, NULL, it), "set_known: NULL indptr");
    ip[0] = 0;
    ip[1] = 3;
    for (int u = 2; u <= 50; ++u)
        ip[u] = 6;
    guard_check(&g, wl_model_set_known(m, ip, NULL), "set_known: NULL items");

    /* ---- recommend and rank */
    int32_t users[2] = {0, 1}, out[160];
    float sc[160];
    uint32_t ranks[2];
    guard_check(&g, wl_model_recommend(m, 2, users, 81, 0, out, sc), "recommend: k > num_items");
    guard_check(&g, wl_model_recommend(m, 2, users, 0, 0, out, sc), "recommend: k 0");
    guard_check(&g, wl_model_recommend(m, 2, NULL, 5, 0, out, sc), "recommend: NULL users");
    guard_check(&g, wl_model_recommend(m, 2, users, 5, 0, NULL, sc), "recommend: NULL items");
    guard_check(&g, wl_model_recommend(NULL, 2, users, 5, 0, out, sc), "recommend: NULL model");
    users[1] = 50;
    guard_check(&g, wl_model_recommend(m, 2, users, 5, 0, out, sc), "recommend: user out of range");
    users[1] = -1;
    guard_check(&g, wl_model_recommend(m, 2, users, 5, 0, out, sc), "recommend: negative user");
    int32_t ritems[2] = {0, 5};
    guard_check(&g, wl_model_rank(m, 2, users, ritems, 0, ranks), "rank: user out of range");
    users[1] = 1;
    ritems[1] = 80;
    guard_check(&g, wl_model_rank(m, 2, users, ritems, 0, ranks), "rank: item out of range");
    ritems[1] = -1;
    guard_check(&g, wl_model_rank(m, 2, users, ritems, 0, ranks), "rank: negative item");
    ritems[1] = 5;
    guard_check(&g, wl_model_rank(m, 2, NULL, ritems, 0, ranks), "rank: NULL users");
    guard_check(&g, wl_model_rank(m, 2, users, NULL, 0, ranks), "rank: NULL items");
    guard_check(&g, wl_model_rank(m, 2, users, ritems, 0, NULL), "rank: NULL ranks");
    guard_check(&g, wl_model_rank(NULL, 2, users, ritems, 0, ranks), "rank: NULL model");
    /* n == 0 is fine, k == 0 too then */
    check_ok(m, wl_model_recommend(m, 0, users, 0, 0, out, sc), "recommend: n 0, k 0");

    /* ---- tables */
    float *buf = wlt_alloc((size_t)o.num_items * o.dim * sizeof(float));
    memcpy(buf, g.before.V, (size_t)o.num_items * o.dim * sizeof(float));
    buf[0] += 1.0f;
    static const int bad_tables[] = {3, -1, 1000};
    for (size_t t = 0; t < 3; ++t) {
        const wl_table bt = (wl_table)bad_tables[t];
        guard_check(&g, wl_model_read(m, bt, buf), "read: bad table");
        guard_check(&g, wl_model_write(m, bt, buf), "write: bad table");
        guard_check(&g, wl_model_read_state(m, bt, buf), "read_state: bad table");
        guard_check(&g, wl_model_write_state(m, bt, buf), "write_state: bad table");
    }
    guard_check(&g, wl_model_write(m, WL_TABLE_ITEMS, NULL), "write: NULL");
    guard_check(&g, wl_model_write_state(m, WL_TABLE_ITEMS, NULL), "write_state: NULL");
    guard_check(&g, wl_model_read(m, WL_TABLE_ITEMS, NULL), "read: NULL");
    guard_check(&g, wl_model_read_state(m, WL_TABLE_ITEMS, NULL), "read_state: NULL");
    guard_check(&g, wl_model_read(NULL, WL_TABLE_ITEMS, buf), "read: NULL model");
    guard_check(&g, wl_model_write(NULL, WL_TABLE_ITEMS, buf), "write: NULL model");
    free(buf);

    /* ---- rows: every argument checked before anything is enqueued */
    {
        uint32_t rows[4] = {0, 5, 9, 79};
        float *st = wlt_alloc(4 * o.dim * sizeof(float)), *vals = wlt_alloc(4 * o.dim * sizeof(float));
        for (size_t e = 0; e < 4 * o.dim; ++e)
            vals[e] = st[e] = 7.0f;
        for (size_t t = 0; t < 3; ++t) {
            const wl_table bt = (wl_table)bad_tables[t];
            guard_check(&g, wl_model_read_rows(m, bt, 4, rows, vals, NULL), "read_rows: bad table");
            guard_check(&g, wl_model_write_rows(m, bt, 4, rows, vals, NULL), "write_rows: bad table");
            guard_check(&g, wl_model_write_rows(m, bt, 0, NULL, NULL, NULL), "write_rows: bad table, n 0");
        }
        guard_check(&g, wl_model_read_rows(NULL, WL_TABLE_ITEMS, 4, rows, vals, NULL), "read_rows: NULL model");
        guard_check(&g, wl_model_write_rows(NULL, WL_TABLE_ITEMS, 4, rows, vals, NULL), "write_rows: NULL model");
        guard_check(&g, wl_model_read_rows(m, WL_TABLE_ITEMS, 4, NULL, vals, NULL), "read_rows: NULL rows");
        guard_check(&g, wl_model_write_rows(m, WL_TABLE_ITEMS, 4, NULL, vals, st), "write_rows: NULL rows");
        guard_check(&g, wl_model_read_rows(m, WL_TABLE_ITEMS, 4, rows, NULL, st), "read_rows: NULL out");
        guard_check(&g, wl_model_write_rows(m, WL_TABLE_ITEMS, 4, rows, NULL, st), "write_rows: NULL in");
        guard_check(&g, wl_model_write_rows(m, WL_TABLE_ITEMS, SIZE_MAX / 8, rows, vals, st),
                    "write_rows: n x dim overflows");
        guard_check(&g, wl_model_read_rows(m, WL_TABLE_ITEM_BIAS, SIZE_MAX / 2, rows, vals, NULL),
                    "read_rows: n overflows");
        /* out of range in the last row, so that a check that stops early is caught */
        rows[3] = 80;
        guard_check(&g, wl_model_read_rows(m, WL_TABLE_ITEMS, 4, rows, vals, st), "read_rows: item out of range");
        guard_check(&g, wl_model_write_rows(m, WL_TABLE_ITEMS, 4, rows, vals, st), "write_rows: item out of range");
        guard_check(&g, wl_model_write_rows(m, WL_TABLE_ITEM_BIAS, 4, rows, vals, NULL),
                    "write_rows: bias out of range");
        rows[3] = UINT32_MAX;
        guard_check(&g, wl_model_read_rows(m, WL_TABLE_ITEM_BIAS, 4, rows, vals, NULL), "read_rows: row 2^32 - 1");
        rows[3] = 50;
        guard_check(&g, wl_model_read_rows(m, WL_TABLE_USERS, 4, rows, vals, NULL), "read_rows: user out of range");
        guard_check(&g, wl_model_write_rows(m, WL_TABLE_USERS, 4, rows, vals, NULL), "write_rows: user out of range");
        rows[3] = 9;
        guard_check(&g, wl_model_write_rows(m, WL_TABLE_ITEMS, 4, rows, vals, st), "write_rows: a repeated row");
        rows[3] = 7;
        guard_check(&g, wl_model_write_rows(m, WL_TABLE_ITEMS, 4, rows, vals, st), "write_rows: a descent");
        /* the same rows are fine to read */
        check_ok(m, wl_model_read_rows(m, WL_TABLE_ITEMS, 4, rows, vals, st), "read_rows: repeats");
        free(st);
        free(vals);
    }

    /* ---- changed rows: refused before anything is read, and the marks stay */
    {
        uint32_t rows[80];
        size_t n = 7;
        for (size_t t = 0; t < 3; ++t) {
            guard_check(&g, wl_model_changed_rows(m, (wl_table)bad_tables[t], rows, &n), "changed_rows: bad side");
            assert_non_null(strstr(wl_context_last_error(ctxs[0]), "side"));
        }
        guard_check(&g, wl_model_changed_rows(NULL, WL_TABLE_ITEMS, rows, &n), "changed_rows: NULL model");
        guard_check(&g, wl_model_changed_rows(m, WL_TABLE_ITEMS, rows, NULL), "changed_rows: NULL n");
        assert_non_null(strstr(wl_context_last_error(ctxs[0]), "n is NULL"));
        guard_check(&g, wl_model_changed_rows(m, WL_TABLE_USERS, NULL, NULL), "changed_rows: NULL rows and n");
        check_ok(m, wl_model_changed_rows(m, WL_TABLE_ITEMS, rows, &n), "changed_rows after refused calls");
        assert_true(n > 0);
    }

    /* after all that, the model still works: a step matches the reference from the device's tables */
    ref_model rm;
    ref_model_create(&rm, &o);
    ref_sync(&rm, &g.before);
    ref_model_set_known(&rm, indptr, kitems);
    batch y;
    batch_make(&y, &o, MODE_ROWS, 32, 4, 802, 50, 80);
    wl_step_result want;
    ref_model_step(&rm, &lo, y.rows, y.users, y.positives, y.negatives, y.expanded, &want, NULL);
    check_ok(m, wl_model_step(m, &lo, &y.b, &r), "wl_model_step");
    assert_result(&r, &want, "step after refused calls");
    snap after;
    snap_take(m, &o, &after);
    assert_close_to_ref(&after, &rm, "step after refused calls");
    snap_free(&after);
    batch_free(&y);
    ref_model_free(&rm);
    snap_free(&g.before);
    wl_model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sampler),
        cmocka_unit_test(test_initial_tables),
        cmocka_unit_test(test_steps),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_shared_equals_rows),
        cmocka_unit_test(test_scatter_choice),
        cmocka_unit_test(test_determinism_and_plans),
        cmocka_unit_test(test_poison),
        cmocka_unit_test(test_launch_slices),
        cmocka_unit_test(test_out_of_order_queue),
        cmocka_unit_test(test_step_cl),
        cmocka_unit_test(test_recommend_rank),
        cmocka_unit_test(test_io),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_rows_sgd),
        cmocka_unit_test(test_changed_rows),
        cmocka_unit_test(test_errors_options),
        cmocka_unit_test(test_errors_calls),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
