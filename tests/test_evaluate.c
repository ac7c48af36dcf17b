/*
 * wl_model_evaluate: the C reference's metrics (tests/reference.c,
 * ref_user_metrics) on a tiny case checked by hand and on random cases
 * against a direct transcription of LightFM's code (evaluation.py,
 * predict_ranks and calculate_auc_from_rank in _lightfm_fast.pyx.template,
 * LightFM 1.17); then the device against the reference on every launch plan,
 * and the argument checks.
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

/*
 * 10 items, k = 2. Users (train items; test ranks):
 *   user 0: 3 train; ranks {0, 4}
 *     hits (rank < 2) = 1: precision 1/2, recall 1/2, MRR 1/(1+0) = 1
 *     negatives N = 10 - 2 - 3 = 5; sorted 0, 4: (1 - 0/5) + (1 - (4-1)/5) = 1 + 0.4; AUC 1.4/2 = 0.7
 *   user 1: no test pairs: not averaged over
 *   user 2: 1 train; ranks {5, 1, 1}
 *     hits = 2: precision 2/2 = 1, recall 2/3, MRR 1/(1+1) = 1/2
 *     N = 10 - 3 - 1 = 6; sorted 1, 1, 5: (1 - 1/6) + (1 - 0/6) + (1 - 3/6) = 7/3; AUC 7/9
 *   user 3: 4 train; ranks {0, 0} (a tie: the second's rank - 1 < 0 counts as 0)
 *     hits = 2: precision 1, recall 1, MRR 1; N = 4: 1 + 1; AUC 1
 *   user 4: 9 train; ranks {0}: every item is a train or test item, N = 0: AUC 0.5
 *     hits = 1: precision 1/2, recall 1, MRR 1
 * Means over the 4 test users:
 *   precision (0.5 + 1 + 1 + 0.5) / 4 = 0.75
 *   recall (0.5 + 2/3 + 1 + 1) / 4 = 0.7916667
 *   MRR (1 + 0.5 + 1 + 1) / 4 = 0.875
 *   AUC (0.7 + 7/9 + 1 + 0.5) / 4 = 0.7444444
 */
/* The means of ref_user_metrics over the users of the pairs (sorted by user), N from train_per_user. */
static void metrics_from_ranks(uint32_t num_items, size_t count, const int32_t *users, const uint32_t *ranks,
                               const uint32_t *train_per_user, uint32_t k, wl_metrics *out)
{
    memset(out, 0, sizeof *out);
    out->k = k;
    for (size_t start = 0, end; start < count; start = end) {
        for (end = start + 1; end < count && users[end] == users[start]; ++end)
            ;
        const size_t n = end - start;
        wl_user_metrics one;
        ref_user_metrics(n, ranks + start, (int64_t)num_items - (int64_t)n - train_per_user[users[start]], k, &one);
        out->precision_at_k += one.precision_at_k;
        out->recall_at_k += one.recall_at_k;
        out->auc += one.auc;
        out->mrr += one.mrr;
        out->users++;
    }
    if (out->users) {
        out->precision_at_k /= (double)out->users;
        out->recall_at_k /= (double)out->users;
        out->auc /= (double)out->users;
        out->mrr /= (double)out->users;
    }
}

static void test_hand_checked(void **state)
{
    (void)state;
    const int32_t users[] = {0, 0, 2, 2, 2, 3, 3, 4};
    const uint32_t ranks[] = {0, 4, 5, 1, 1, 0, 0, 0};
    const uint32_t train[] = {3, 7, 1, 4, 9};
    wl_metrics m;
    metrics_from_ranks(10, 8, users, ranks, train, 2, &m);
    assert_int_equal(m.k, 2);
    assert_int_equal(m.users, 4);
    assert_true(fabs(m.precision_at_k - 0.75) < 1e-12);
    assert_true(fabs(m.recall_at_k - (0.5 + 2.0 / 3 + 1 + 1) / 4) < 1e-12);
    assert_true(fabs(m.mrr - 0.875) < 1e-12);
    assert_true(fabs(m.auc - (0.7 + 7.0 / 9 + 1 + 0.5) / 4) < 1e-12);
    wl_user_metrics one;
    ref_user_metrics(3, ranks + 2, 6, 2, &one);
    assert_true(one.held_out == 3 && one.hits == 2 && one.best == 1);
}

/* ------------------------------------------------------------ LightFM, transcribed */

static uint64_t rng_state;
static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(((rng_state >> 33) * n) >> 31);
}

static int flt_compare(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

#define U 40
#define I 60

/*
 * The random case: scores[u][i] distinct, each user some train items and some
 * disjoint test items (some users none). LightFM's predict_ranks:
 *     for item_id in range(cols):
 *         if in_positives(item_id, user_id, train): continue
 *         for i in test items of the user:
 *             if item_id != item_ids[i] and prediction >= predictions[i]: ranks[i] += 1.0
 * then per metric, in float as LightFM (ranks are float32, AUC accumulates in float32):
 *     precision = (ranks < k).sum(axis=1) / k, kept for users with test pairs
 *     recall = hits / test count
 *     reciprocal_rank = max(1 / (rank + 1))
 *     calculate_auc_from_rank: num_negatives = cols - (num_positives + num_train_positives);
 *         if num_positives == 0 or num_negatives == cols: 0.5
 *         qsort ranks; auc += 1.0 - max(rank - i, 0) / num_negatives; auc /= num_positives
 * and np.mean over the users kept.
 */
static void test_against_lightfm(void **state)
{
    (void)state;
    for (int round = 0; round < 20; ++round) {
        rng_state = 12345 + (uint64_t)round;
        static float score[U][I];
        static unsigned char train[U][I], test[U][I];
        memset(train, 0, sizeof train);
        memset(test, 0, sizeof test);
        uint32_t train_count[U] = {0};
        int32_t users[U * I];
        int32_t items[U * I];
        size_t n = 0;
        for (int u = 0; u < U; ++u) {
            for (int i = 0; i < I; ++i)
                score[u][i] = (float)(u * I + i) * 0.001f; /* distinct */
            for (int i = I - 1; i > 0; --i) {              /* shuffle the scores */
                const uint32_t j = rnd((uint32_t)i + 1);
                const float t = score[u][i];
                score[u][i] = score[u][j];
                score[u][j] = t;
            }
            const uint32_t tr = rnd(I / 2), te = u % 7 == 0 ? 0 : 1 + rnd(10);
            for (uint32_t c = 0; c < tr; ++c)
                train[u][rnd(I)] = 1;
            for (uint32_t c = 0; c < te; ++c) {
                const uint32_t i = rnd(I);
                if (!train[u][i])
                    test[u][i] = 1;
            }
            for (int i = 0; i < I; ++i) {
                train_count[u] += train[u][i];
                if (test[u][i]) {
                    users[n] = u;
                    items[n++] = i;
                }
            }
        }

        /* predict_ranks, float ranks. */
        static float frank[U * I];
        uint32_t rank[U * I];
        for (size_t j = 0; j < n; ++j) {
            const int u = users[j];
            float r = 0;
            for (int x = 0; x < I; ++x) {
                if (train[u][x])
                    continue;
                if (x != items[j] && score[u][x] >= score[u][items[j]])
                    r += 1.0f;
            }
            frank[j] = r;
            rank[j] = (uint32_t)r;
        }

        const uint32_t k = 1 + (uint32_t)round % 5;
        float precision[U], recall[U], rr[U], auc[U];
        int kept = 0;
        for (int u = 0; u < U; ++u) {
            size_t start = 0;
            while (start < n && users[start] != u)
                ++start;
            size_t stop = start;
            while (stop < n && users[stop] == u)
                ++stop;
            const int num_positives = (int)(stop - start);
            if (num_positives == 0)
                continue;
            float hits = 0, best = 0;
            for (size_t j = start; j < stop; ++j) {
                hits += frank[j] < (float)k;
                best = fmaxf(best, 1.0f / (frank[j] + 1.0f));
            }
            precision[kept] = hits / (float)k;
            recall[kept] = hits / (float)num_positives;
            rr[kept] = best;
            const int num_negatives = I - (num_positives + (int)train_count[u]);
            float a = 0;
            if (num_negatives == I) {
                a = 0.5f;
            } else {
                qsort(&frank[start], (size_t)num_positives, sizeof(float), flt_compare);
                for (int i = 0; i < num_positives; ++i) {
                    float r = frank[start + (size_t)i] - (float)i;
                    if (r < 0)
                        r = 0;
                    a += (float)(1.0 - r / (float)num_negatives);
                }
                a /= (float)num_positives;
            }
            auc[kept++] = a;
        }
        double mp = 0, mr = 0, mrr = 0, ma = 0;
        for (int i = 0; i < kept; ++i) {
            mp += precision[i];
            mr += recall[i];
            mrr += rr[i];
            ma += auc[i];
        }

        wl_metrics m;
        metrics_from_ranks(I, n, users, rank, train_count, k, &m);
        assert_int_equal(m.users, (uint64_t)kept);
        assert_true(fabs(m.precision_at_k - mp / kept) < 1e-6);
        assert_true(fabs(m.recall_at_k - mr / kept) < 1e-6);
        assert_true(fabs(m.mrr - mrr / kept) < 1e-6);
        assert_true(fabs(m.auc - ma / kept) < 1e-5);
    }
}

#undef U
#undef I

/* ------------------------------------------------------------ the device */

static wl_context *ctxs[WLT_PLANS];
static char *cache_dir;

static int group_setup(void **state)
{
    (void)state;
    wlt_plan_contexts("evaluate", ctxs, &cache_dir);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    wlt_plan_contexts_free(ctxs, &cache_dir);
    return 0;
}

#define NU 60
#define NI 90
#define DIM 8

/* Random sets per user as CSR, strictly ascending: about `per_user` items each (some users none). */
static void random_sets(ref_rng *g, uint32_t per_user, uint64_t *indptr, int32_t *items)
{
    indptr[0] = 0;
    uint64_t n = 0;
    for (uint32_t u = 0; u < NU; ++u) {
        unsigned char pick[NI] = {0};
        const uint32_t count = u % 9 == 4 ? 0 : (uint32_t)(ref_rng_next(g) % (2 * per_user + 1));
        for (uint32_t t = 0; t < count; ++t)
            pick[ref_rng_next(g) % NI] = 1;
        for (uint32_t x = 0; x < NI; ++x)
            if (pick[x])
                items[n++] = (int32_t)x;
        indptr[u + 1] = n;
    }
}

static void assert_metrics_close(const wl_metrics *got, const wl_metrics *want, const char *what)
{
    if (got->k != want->k || got->users != want->users || fabs(got->precision_at_k - want->precision_at_k) > 1e-12 ||
        fabs(got->recall_at_k - want->recall_at_k) > 1e-12 || fabs(got->auc - want->auc) > 1e-12 ||
        fabs(got->mrr - want->mrr) > 1e-12)
        fail_msg("%s: k %u users %llu p %.15g r %.15g auc %.15g mrr %.15g; reference k %u users %llu p %.15g r %.15g "
                 "auc %.15g mrr %.15g",
                 what, got->k, (unsigned long long)got->users, got->precision_at_k, got->recall_at_k, got->auc,
                 got->mrr, want->k, (unsigned long long)want->users, want->precision_at_k, want->recall_at_k, want->auc,
                 want->mrr);
}

/*
 * Quantised tables (entries k/16, biases k/256: every score exact in float
 * whatever order SGEMM sums it in, and exact ties frequent, items 3, 10 and
 * 60 identical), random known positives and held-out items that partly
 * overlap them, a user who knows every item but its held-out ones (N = 0,
 * AUC 0.5), a user with every item held out, users with none: the device's
 * metrics and every user's values equal the C reference's, on every plan,
 * for k in {1, 5, NI} and both exclude_known.
 */
static void test_against_reference(void **state)
{
    (void)state;
    wl_model_options o;
    wl_model_options_default(&o, NU, NI, DIM);
    ref_model r;
    ref_model_create(&r, &o);
    ref_rng g;
    ref_rng_seed(&g, 777);
    for (size_t e = 0; e < (size_t)NU * DIM; ++e)
        r.U[e] = (float)((int)(ref_rng_next(&g) % 17) - 8) / 16.0f;
    for (size_t e = 0; e < (size_t)NI * DIM; ++e)
        r.V[e] = (float)((int)(ref_rng_next(&g) % 17) - 8) / 16.0f;
    for (size_t e = 0; e < NI; ++e)
        r.b[e] = (float)((int)(ref_rng_next(&g) % 9) - 4) / 256.0f;
    memcpy(r.V + 10 * DIM, r.V + 3 * DIM, DIM * sizeof(float));
    memcpy(r.V + 60 * DIM, r.V + 3 * DIM, DIM * sizeof(float));
    r.b[10] = r.b[60] = r.b[3];

    static uint64_t known_ptr[NU + 1], held_ptr[NU + 1];
    static int32_t known[NU * NI], held[NU * NI];
    random_sets(&g, 6, known_ptr, known);
    random_sets(&g, 4, held_ptr, held);
    /* user 0: held out 5, 40, 79, knows all the rest; user 1: every item held out, knows nothing */
    static uint64_t kp[NU + 1], hp[NU + 1];
    static int32_t ki[NU * NI + NI], hi[NU * NI + NI];
    size_t nk = 0, nh = 0;
    kp[0] = hp[0] = 0;
    for (uint32_t u = 0; u < NU; ++u) {
        for (uint32_t x = 0; x < NI; ++x) {
            const int out = x == 5 || x == 40 || x == 79;
            if (u == 0 && !out)
                ki[nk++] = (int32_t)x;
            if ((u == 0 && out) || u == 1)
                hi[nh++] = (int32_t)x;
        }
        if (u >= 2) {
            for (uint64_t t = known_ptr[u]; t < known_ptr[u + 1]; ++t)
                ki[nk++] = known[t];
            for (uint64_t t = held_ptr[u]; t < held_ptr[u + 1]; ++t)
                hi[nh++] = held[t];
        }
        kp[u + 1] = nk;
        hp[u + 1] = nh;
    }
    ref_model_set_known(&r, kp, ki);

    static wl_user_metrics want_users[NU], got_users[NU];
    for (int p = 0; p < WLT_PLANS; ++p) {
        wl_model *m = NULL;
        assert_int_equal(wl_model_create(ctxs[p], &o, &m), WL_SUCCESS);
        assert_int_equal(wl_model_write(m, WL_TABLE_USERS, r.U), WL_SUCCESS);
        assert_int_equal(wl_model_write(m, WL_TABLE_ITEMS, r.V), WL_SUCCESS);
        assert_int_equal(wl_model_write(m, WL_TABLE_ITEM_BIAS, r.b), WL_SUCCESS);
        assert_int_equal(wl_model_set_known(m, kp, ki), WL_SUCCESS);
        static const uint32_t ks[] = {1, 5, NI};
        for (int kk = 0; kk < 3; ++kk)
            for (int ex = 0; ex < 2; ++ex) {
                wl_metrics want, got;
                ref_model_evaluate(&r, hp, hi, ks[kk], ex, &want, want_users);
                memset(got_users, 0xEE, sizeof got_users);
                const wl_status st = wl_model_evaluate(m, hp, hi, ks[kk], ex, &got, got_users);
                if (st != WL_SUCCESS)
                    fail_msg("wl_model_evaluate: %s: %s", wl_status_string(st), wl_context_last_error(ctxs[p]));
                char what[96];
                snprintf(what, sizeof what, "plan %s, k %u, exclude_known %d", wlt_plan_names[p], ks[kk], ex);
                assert_metrics_close(&got, &want, what);
                for (uint32_t u = 0; u < NU; ++u) {
                    const wl_user_metrics *a = &got_users[u], *b = &want_users[u];
                    if (a->held_out != b->held_out || a->hits != b->hits || a->best != b->best ||
                        fabs(a->precision_at_k - b->precision_at_k) > 1e-12 ||
                        fabs(a->recall_at_k - b->recall_at_k) > 1e-12 || fabs(a->auc - b->auc) > 1e-12 ||
                        fabs(a->mrr - b->mrr) > 1e-12)
                        fail_msg("%s: user %u: held out %u hits %u best %u auc %.15g; reference %u %u %u %.15g", what,
                                 u, a->held_out, a->hits, a->best, a->auc, b->held_out, b->hits, b->best, b->auc);
                }
                if (ex)
                    assert_true(got_users[0].auc == 0.5 && got_users[0].held_out == 3);
                assert_true(got_users[4].held_out == 0 && got_users[4].auc == 0.0);
                /* per_user may be NULL: the same means */
                wl_metrics again;
                assert_int_equal(wl_model_evaluate(m, hp, hi, ks[kk], ex, &again, NULL), WL_SUCCESS);
                assert_true(memcmp(&again, &got, sizeof got) == 0);
            }
        /* nothing held out: no user, zeros */
        static uint64_t none[NU + 1];
        wl_metrics empty;
        memset(&empty, 0xEE, sizeof empty);
        assert_int_equal(wl_model_evaluate(m, none, NULL, 3, 1, &empty, got_users), WL_SUCCESS);
        assert_true(empty.users == 0 && empty.k == 3 && empty.auc == 0.0 && got_users[1].held_out == 0);
        wl_model_destroy(m);
    }
    ref_model_free(&r);
}

/* A refused call names what was wrong and writes nothing. */
static void test_arguments(void **state)
{
    (void)state;
    wl_context *c = ctxs[0];
    wl_model_options o;
    wl_model_options_default(&o, 3, 5, 4);
    wl_model *m = NULL;
    assert_int_equal(wl_model_create(c, &o, &m), WL_SUCCESS);
    uint64_t ptr[4] = {0, 2, 2, 3};
    int32_t items[3] = {1, 4, 0};
    wl_metrics out;
    wl_user_metrics per_user[3];
    memset(&out, 0xEE, sizeof out);
    memset(per_user, 0xEE, sizeof per_user);
    const wl_metrics before = out;
    struct {
        uint64_t p[4];
        int32_t i[3];
        uint32_t k;
        const char *expect;
    } bad[] = {
        {{0, 2, 2, 3}, {1, 4, 0}, 0, "k is 0"},
        {{1, 2, 2, 3}, {1, 4, 0}, 5, "indptr[0] = 1"},
        {{0, 2, 1, 3}, {1, 4, 0}, 5, "indptr[2] = 1 is less than indptr[1] = 2"},
        {{0, 2, 2, 3}, {1, 5, 0}, 5, "items[1] = 5 is out of range [0, 5)"},
        {{0, 2, 2, 3}, {1, 4, -1}, 5, "items[2] = -1 is out of range"},
        {{0, 2, 2, 3}, {4, 1, 0}, 5, "strictly ascending"},
        {{0, 2, 2, 3}, {1, 1, 0}, 5, "strictly ascending"},
    };
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; ++b) {
        assert_int_equal(wl_model_evaluate(m, bad[b].p, bad[b].i, bad[b].k, 1, &out, per_user),
                         WL_ERROR_INVALID_ARGUMENT);
        if (!strstr(wl_context_last_error(c), bad[b].expect))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", b, wl_context_last_error(c), bad[b].expect);
        assert_true(memcmp(&out, &before, sizeof out) == 0);
    }
    assert_int_equal(wl_model_evaluate(m, NULL, items, 5, 1, &out, NULL), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_evaluate(m, ptr, NULL, 5, 1, &out, NULL), WL_ERROR_INVALID_ARGUMENT);
    assert_non_null(strstr(wl_context_last_error(c), "items is NULL"));
    assert_int_equal(wl_model_evaluate(m, ptr, items, 5, 1, NULL, NULL), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_evaluate(NULL, ptr, items, 5, 1, &out, NULL), WL_ERROR_INVALID_ARGUMENT);
    assert_true(memcmp(&out, &before, sizeof out) == 0);
    /* and then it works */
    assert_int_equal(wl_model_evaluate(m, ptr, items, 5, 1, &out, per_user), WL_SUCCESS);
    assert_true(out.users == 2 && per_user[0].held_out == 2 && per_user[1].held_out == 0);
    wl_model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest host[] = {
        cmocka_unit_test(test_hand_checked),
        cmocka_unit_test(test_against_lightfm),
    };
    const struct CMUnitTest device[] = {
        cmocka_unit_test(test_against_reference),
        cmocka_unit_test(test_arguments),
    };
    const int failed = cmocka_run_group_tests(host, NULL, NULL);
    return failed + cmocka_run_group_tests(device, group_setup, group_teardown);
}
