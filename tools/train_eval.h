/*
 * warploss-train's evaluation: LightFM's definitions of precision@k,
 * recall@k, AUC and MRR (lightfm/evaluation.py with train_interactions given,
 * so each user's training items are excluded from the ranking), from the ranks
 * wl_model_rank computes on the device.
 */
#ifndef WL_TRAIN_EVAL_H
#define WL_TRAIN_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "train_data.h"
#include "warploss.h"

typedef struct te_metrics {
    uint32_t k;
    size_t users; /* test users (with at least one test pair) averaged over */
    double precision_at_k, recall_at_k, auc, mrr;
} te_metrics;

/*
 * The metrics of the pairs test_users/test_items (sorted by user), given
 * rank[j] = the number of items other than test_items[j], and not a training
 * item of the user, that score strictly higher (wl_model_rank with the
 * training items as known positives); train_per_user[u]: the user's number
 * of training items. Pure host arithmetic (tests compare it with hand-checked
 * values and with LightFM's formulas).
 */
void te_metrics_from_ranks(uint32_t num_items, size_t count, const int32_t *test_users, const uint32_t *rank,
                           const uint32_t *train_per_user, uint32_t k, te_metrics *out);

/*
 * Evaluate m on d's test pairs: the model's known positives must be d's
 * training pairs (wl_model_set_known). WL_SUCCESS, or the library's status
 * (its message on the context).
 */
wl_status te_evaluate(wl_model *m, const td_dataset *d, uint32_t k, te_metrics *out);

#endif
