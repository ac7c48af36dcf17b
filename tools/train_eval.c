/*
 * warploss-train's evaluation: LightFM's metrics from ranks (see train_eval.h).
 *
 * The definitions, transcribed from LightFM 1.17 (lightfm/evaluation.py with
 * train_interactions given, and calculate_auc_from_rank / predict_ranks in
 * _lightfm_fast.pyx.template). Every mean is over the test users, the users
 * with at least one test pair (preserve_rows=False). For user u with test
 * items t_1..t_n and ranks r_1..r_n (items that are not u's training items and
 * score higher):
 *
 *   precision@k(u) = |{j : r_j < k}| / k
 *   recall@k(u)    = |{j : r_j < k}| / n
 *   MRR(u)         = max_j 1 / (r_j + 1) = 1 / (1 + min_j r_j)
 *   AUC(u)         = (1/n) sum_i (1 - max(0, r_(i) - i) / N),   i = 0..n-1
 *
 * where r_(0) <= r_(1) <= ... are the ranks sorted ascending (the i-th best
 * positive has i other test positives above it, which are not negatives) and
 * N = num_items - n - (u's training items), the negatives.
 *
 * Special cases: LightFM gives 0.5 "if there is only one class present", but
 * its test (num_positives == 0 or num_negatives == num_items) only catches a
 * user without positives, who is not averaged over anyway. A user whose items
 * are all training or test items (N = 0) makes LightFM divide by zero (0/0 in
 * float with cdivision: NaN, which poisons the mean); we follow its stated
 * rule for one class and count 0.5 for that user.
 *
 * Two differences from LightFM remain, both about ties: LightFM counts items
 * with a score >= the test item's (predict_ranks), wl_model_rank counts
 * strictly greater ones; and LightFM accumulates AUC in float32, we in double.
 */
#include "train_eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int compare_u32(const void *a, const void *b)
{
    const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

void te_metrics_from_ranks(uint32_t num_items, size_t count, const int32_t *test_users, const uint32_t *rank,
                           const uint32_t *train_per_user, uint32_t k, te_metrics *out)
{
    memset(out, 0, sizeof *out);
    out->k = k;
    if (count == 0)
        return;

    /* The longest run of one user's pairs: the sort buffer for AUC. */
    size_t longest = 0;
    for (size_t start = 0, end; start < count; start = end) {
        for (end = start + 1; end < count && test_users[end] == test_users[start]; ++end)
            ;
        if (end - start > longest)
            longest = end - start;
    }
    uint32_t *sorted = malloc(longest * sizeof *sorted);

    double precision = 0, recall = 0, auc = 0, mrr = 0;
    size_t users = 0;
    for (size_t start = 0, end; start < count; start = end) {
        for (end = start + 1; end < count && test_users[end] == test_users[start]; ++end)
            ;
        const size_t n = end - start;
        size_t hits = 0;
        uint32_t best = UINT32_MAX;
        for (size_t j = start; j < end; ++j) {
            hits += rank[j] < k;
            if (rank[j] < best)
                best = rank[j];
        }
        precision += (double)hits / k;
        recall += (double)hits / (double)n;
        mrr += 1.0 / (1.0 + (double)best);

        const int64_t negatives = (int64_t)num_items - (int64_t)n - (int64_t)train_per_user[test_users[start]];
        if (negatives <= 0) {
            auc += 0.5;
        } else if (sorted) {
            memcpy(sorted, rank + start, n * sizeof *sorted);
            qsort(sorted, n, sizeof *sorted, compare_u32);
            double sum = 0;
            for (size_t i = 0; i < n; ++i) {
                const double r = sorted[i] > i ? (double)(sorted[i] - i) : 0.0;
                sum += 1.0 - r / (double)negatives;
            }
            auc += sum / (double)n;
        } else {
            auc = NAN; /* out of memory for the sort */
        }
        ++users;
    }
    free(sorted);
    out->users = users;
    out->precision_at_k = precision / (double)users;
    out->recall_at_k = recall / (double)users;
    out->auc = auc / (double)users;
    out->mrr = mrr / (double)users;
}

/* Pairs per wl_model_rank call: bounds the host arrays, not the device's work (the library blocks users itself). */
#define TE_CHUNK ((size_t)1 << 20)

wl_status te_evaluate(wl_model *m, const td_dataset *d, uint32_t k, te_metrics *out)
{
    memset(out, 0, sizeof *out);
    out->k = k;
    uint32_t *train_per_user = calloc(d->num_users ? d->num_users : 1, sizeof *train_per_user);
    uint32_t *ranks = malloc((d->test_count ? d->test_count : 1) * sizeof *ranks);
    if (!train_per_user || !ranks) {
        free(train_per_user);
        free(ranks);
        return WL_ERROR_OUT_OF_MEMORY;
    }
    for (size_t j = 0; j < d->train_count; ++j)
        ++train_per_user[d->train_users[j]];
    wl_status st = WL_SUCCESS;
    for (size_t at = 0; at < d->test_count && st == WL_SUCCESS; at += TE_CHUNK) {
        const size_t n = d->test_count - at < TE_CHUNK ? d->test_count - at : TE_CHUNK;
        st = wl_model_rank(m, n, d->test_users + at, d->test_items + at, 1, ranks + at);
    }
    if (st == WL_SUCCESS)
        te_metrics_from_ranks(d->num_items, d->test_count, d->test_users, ranks, train_per_user, k, out);
    free(train_per_user);
    free(ranks);
    return st;
}
