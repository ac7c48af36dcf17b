/*
 * warploss-train's metrics (tools/train_eval.c), on the host only: a tiny
 * case checked by hand, and a small random case against a direct
 * transcription of LightFM's code (evaluation.py, predict_ranks and
 * calculate_auc_from_rank in _lightfm_fast.pyx.template, LightFM 1.17).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "train_eval.h"

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
static void test_hand_checked(void **state)
{
    (void)state;
    const int32_t users[] = {0, 0, 2, 2, 2, 3, 3, 4};
    const uint32_t ranks[] = {0, 4, 5, 1, 1, 0, 0, 0};
    const uint32_t train[] = {3, 7, 1, 4, 9};
    te_metrics m;
    te_metrics_from_ranks(10, 8, users, ranks, train, 2, &m);
    assert_int_equal(m.k, 2);
    assert_int_equal(m.users, 4);
    assert_true(fabs(m.precision_at_k - 0.75) < 1e-12);
    assert_true(fabs(m.recall_at_k - (0.5 + 2.0 / 3 + 1 + 1) / 4) < 1e-12);
    assert_true(fabs(m.mrr - 0.875) < 1e-12);
    assert_true(fabs(m.auc - (0.7 + 7.0 / 9 + 1 + 0.5) / 4) < 1e-12);

    /* No test pairs: zeros, no division by zero. */
    te_metrics_from_ranks(10, 0, users, ranks, train, 2, &m);
    assert_int_equal(m.users, 0);
    assert_true(m.precision_at_k == 0 && m.auc == 0);
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

        te_metrics m;
        te_metrics_from_ranks(I, n, users, rank, train_count, k, &m);
        assert_int_equal(m.users, (size_t)kept);
        assert_true(fabs(m.precision_at_k - mp / kept) < 1e-6);
        assert_true(fabs(m.recall_at_k - mr / kept) < 1e-6);
        assert_true(fabs(m.mrr - mrr / kept) < 1e-6);
        assert_true(fabs(m.auc - ma / kept) < 1e-5);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_checked),
        cmocka_unit_test(test_against_lightfm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
