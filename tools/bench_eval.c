/*
 * The evaluation benchmark of warploss-bench (--evaluate): how long
 * wl_model_evaluate takes on two shapes, against two baselines timed in the
 * same run on the same model:
 *   ranks:  the path evaluation took before the library had it,
 *           wl_model_rank on every held-out pair (one row of SGEMM and one
 *           catalogue walk per pair) and the metrics on the host;
 *   epoch:  one training epoch of the same shape (wl_model_step_cl over
 *           every training pair, batches of 1,024 rows, 100 sampled
 *           candidates: warploss-train's defaults).
 * Shapes: "default" is warploss-train's first command (the synthetic set:
 * 2,000 users, 2,978 items, 90,911 training pairs, 9,079 held out among
 * 1,892 users); "ml-100k" MovieLens 100k's ua split (943 users, 1,682
 * items, 90,570 training pairs, 10 held out per user). The pairs are drawn
 * at random in that shape (seed 1), the model has dimension 32 and is
 * trained one epoch first. Medians over --repeat runs after --warmup. Both
 * paths rank with CLBlast's SGEMM scores, but CLBlast picks its kernel by
 * the product's size (one user's row per pair against one per user), and its
 * kernels may round a dot product differently in the last bit, which can move
 * a near-tie by one rank: the largest difference of a metric between the two
 * paths is reported, and one above 1e-3 fails the run.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "reference.h"
#include "warploss.h"

typedef struct eval_shape {
    const char *name;
    uint32_t users, items, held_users;
    size_t train, held;
} eval_shape;

static const eval_shape shapes[2] = {
    {"default", 2000, 2978, 1892, 90911, 9079},
    {"ml-100k", 943, 1682, 943, 90570, 9430},
};

#define EVAL_DIM 32
#define EVAL_BATCH 1024
#define EVAL_NEGATIVES 100

typedef struct eval_result {
    const eval_shape *shape;
    double evaluate_seconds, ranks_seconds, epoch_seconds;
    wl_metrics metrics;
    double difference; /* the largest |metric(evaluate) - metric(ranks)| over the rounds */
} eval_result;

/* count distinct random items per user as CSR: about total / users each, spread over the first `users` users. */
static void random_sets(ref_rng *g, uint32_t users, uint32_t spread, uint32_t items, size_t total, uint64_t *indptr,
                        int32_t **out)
{
    int32_t *list = cli_alloc(total * sizeof *list);
    unsigned char *pick = cli_alloc(items);
    size_t n = 0;
    indptr[0] = 0;
    for (uint32_t u = 0; u < users; ++u) {
        size_t want = u < spread ? total / spread + (u < total % spread) : 0;
        memset(pick, 0, items);
        for (size_t got = 0; got < want;) {
            const uint32_t x = (uint32_t)(ref_rng_next(g) % items);
            got += !pick[x];
            pick[x] = 1;
        }
        for (uint32_t x = 0; x < items; ++x)
            if (pick[x])
                list[n++] = (int32_t)x;
        indptr[u + 1] = n;
    }
    free(pick);
    *out = list;
}

/* The metrics from wl_model_rank on every held-out pair, as evaluation did before the library had it. */
static void metrics_from_ranks(wl_model *m, wl_context *c, const eval_shape *sh, const uint64_t *known_ptr,
                               const uint64_t *held_ptr, const int32_t *held, int32_t *users, uint32_t *ranks,
                               wl_metrics *out)
{
    cli_check_wl(wl_model_rank(m, sh->held, users, held, 1, ranks), c);
    memset(out, 0, sizeof *out);
    out->k = 10;
    for (uint32_t u = 0; u < sh->users; ++u) {
        const size_t n = (size_t)(held_ptr[u + 1] - held_ptr[u]);
        if (!n)
            continue;
        wl_user_metrics one;
        ref_user_metrics(n, ranks + held_ptr[u],
                         (int64_t)sh->items - (int64_t)n - (int64_t)(known_ptr[u + 1] - known_ptr[u]), 10, &one);
        out->precision_at_k += one.precision_at_k;
        out->recall_at_k += one.recall_at_k;
        out->auc += one.auc;
        out->mrr += one.mrr;
        out->users++;
    }
    out->precision_at_k /= (double)out->users;
    out->recall_at_k /= (double)out->users;
    out->auc /= (double)out->users;
    out->mrr /= (double)out->users;
}

/* One epoch of wl_model_step_cl over the training pairs on the device; seconds, after clFinish. */
static double epoch(wl_model *m, wl_context *c, const eval_shape *sh, cl_mem users, cl_mem items, uint64_t key)
{
    wl_loss_options lo;
    wl_loss_options_default(&lo, sh->items);
    const double t0 = cli_now();
    for (size_t first = 0, b = 0; first < sh->train; first += EVAL_BATCH, ++b) {
        wl_batch_cl bc = {0};
        bc.offset = first;
        bc.rows = sh->train - first < EVAL_BATCH ? sh->train - first : EVAL_BATCH;
        bc.users = users;
        bc.positives = items;
        bc.negatives = EVAL_NEGATIVES;
        bc.sample_key = (key << 32) + b;
        wl_step_result r;
        cli_check_wl(wl_model_step_cl(m, &lo, &bc, &r, 0, NULL, NULL), c);
    }
    clFinish(wl_context_queue(c));
    return cli_now() - t0;
}

/* The largest difference between two evaluations' metrics (1 if their users differ). */
static double metrics_difference(const wl_metrics *a, const wl_metrics *b)
{
    if (a->users != b->users)
        return 1.0;
    const double d[4] = {fabs(a->precision_at_k - b->precision_at_k), fabs(a->recall_at_k - b->recall_at_k),
                         fabs(a->auc - b->auc), fabs(a->mrr - b->mrr)};
    return fmax(fmax(d[0], d[1]), fmax(d[2], d[3]));
}

static void measure_eval(const settings *s, device *d, const eval_shape *sh, eval_result *out)
{
    wl_context *c = d->wl;
    ref_rng g;
    ref_rng_seed(&g, 1);
    uint64_t *known_ptr = cli_alloc(((size_t)sh->users + 1) * sizeof *known_ptr);
    uint64_t *held_ptr = cli_alloc(((size_t)sh->users + 1) * sizeof *held_ptr);
    int32_t *known, *held;
    random_sets(&g, sh->users, sh->users, sh->items, sh->train, known_ptr, &known);
    /* held-out items: drawn the same way, those that are known positives dropped */
    random_sets(&g, sh->users, sh->held_users, sh->items, sh->held, held_ptr, &held);
    size_t n = 0;
    for (uint32_t u = 0, begin = 0; u < sh->users; ++u) {
        const uint64_t end = held_ptr[u + 1];
        for (uint64_t j = begin; j < end; ++j) {
            int dup = 0;
            for (uint64_t q = known_ptr[u]; q < known_ptr[u + 1]; ++q)
                dup |= known[q] == held[j];
            if (!dup)
                held[n++] = held[j];
        }
        held_ptr[u + 1] = n;
        begin = (uint32_t)end;
    }
    eval_shape actual = *sh;
    actual.held = n;
    /* the training pairs in user order, on the device */
    int32_t *train_users = cli_alloc(sh->train * sizeof *train_users);
    int32_t *pair_users = cli_alloc((n ? n : 1) * sizeof *pair_users);
    uint32_t *ranks = cli_alloc((n ? n : 1) * sizeof *ranks);
    for (uint32_t u = 0; u < sh->users; ++u) {
        for (uint64_t q = known_ptr[u]; q < known_ptr[u + 1]; ++q)
            train_users[q] = (int32_t)u;
        for (uint64_t j = held_ptr[u]; j < held_ptr[u + 1]; ++j)
            pair_users[j] = (int32_t)u;
    }
    cl_mem users_buf = new_buffer(d, sh->train * sizeof(int32_t), train_users);
    cl_mem items_buf = new_buffer(d, sh->train * sizeof(int32_t), known);
    wl_model_options o;
    wl_model_options_default(&o, sh->users, sh->items, EVAL_DIM);
    wl_model *m = NULL;
    cli_check_wl(wl_model_create(c, &o, &m), c);
    cli_check_wl(wl_model_set_known(m, known_ptr, known), c);
    epoch(m, c, &actual, users_buf, items_buf, 0); /* trained a little: scores that are not all alike */

    double *t_eval = cli_alloc((size_t)s->repeat * sizeof(double));
    double *t_ranks = cli_alloc((size_t)s->repeat * sizeof(double));
    double *t_epoch = cli_alloc((size_t)s->repeat * sizeof(double));
    wl_metrics a, b;
    out->difference = 0;
    for (int r = -s->warmup; r < s->repeat; ++r) {
        double t0 = cli_now();
        cli_check_wl(wl_model_evaluate(m, held_ptr, held, 10, 1, &a, NULL), c);
        const double te = cli_now() - t0;
        t0 = cli_now();
        metrics_from_ranks(m, c, &actual, known_ptr, held_ptr, held, pair_users, ranks, &b);
        const double tr = cli_now() - t0;
        out->difference = fmax(out->difference, metrics_difference(&a, &b));
        /* the epoch last: the model the next round evaluates has moved, both paths see the same one */
        const double tp = epoch(m, c, &actual, users_buf, items_buf, (uint64_t)(r + s->warmup + 1));
        if (r >= 0)
            t_eval[r] = te, t_ranks[r] = tr, t_epoch[r] = tp;
    }
    out->shape = sh;
    out->metrics = a;
    out->evaluate_seconds = cli_median(t_eval, s->repeat);
    out->ranks_seconds = cli_median(t_ranks, s->repeat);
    out->epoch_seconds = cli_median(t_epoch, s->repeat);
    free(t_eval);
    free(t_ranks);
    free(t_epoch);
    wl_model_destroy(m);
    clReleaseMemObject(users_buf);
    clReleaseMemObject(items_buf);
    free(known_ptr);
    free(held_ptr);
    free(known);
    free(held);
    free(train_users);
    free(pair_users);
    free(ranks);
}

static void print_eval_json(const settings *s, const device *d, const eval_result *r, int count)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "device", wl_context_device_name(d->wl));
    cJSON_AddStringToObject(doc, "platform", d->platform);
    cJSON_AddNumberToObject(doc, "repeat", s->repeat);
    cJSON_AddNumberToObject(doc, "warmup", s->warmup);
    cJSON *list = cJSON_AddArrayToObject(doc, "evaluations");
    for (int i = 0; i < count; ++i) {
        const eval_result *x = &r[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "shape", x->shape->name);
        cJSON_AddNumberToObject(o, "users", x->shape->users);
        cJSON_AddNumberToObject(o, "items", x->shape->items);
        cJSON_AddNumberToObject(o, "train_pairs", (double)x->shape->train);
        cJSON_AddNumberToObject(o, "test_users", (double)x->metrics.users);
        cli_json_add_number(o, "evaluate_seconds", "%.6g", x->evaluate_seconds);
        cli_json_add_number(o, "ranks_seconds", "%.6g", x->ranks_seconds);
        cli_json_add_number(o, "epoch_seconds", "%.6g", x->epoch_seconds);
        cli_json_add_number(o, "speedup_over_ranks", "%.4g",
                            x->evaluate_seconds > 0 ? x->ranks_seconds / x->evaluate_seconds : 0.0);
        cli_json_add_number(o, "evaluate_per_epoch", "%.4g",
                            x->epoch_seconds > 0 ? x->evaluate_seconds / x->epoch_seconds : 0.0);
        cli_json_add_number(o, "metrics_difference", "%.3g", x->difference);
        cJSON_AddItemToArray(list, o);
    }
    char *text = cJSON_Print(doc);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(doc);
}

int run_evaluate(const settings *s)
{
    device d;
    open_device(s->device, &d);
    eval_result results[2];
    int failed = 0;
    if (!s->json) {
        printf("device: %s (%s); medians of %d after %d warm-up\n", wl_context_device_name(d.wl), d.platform, s->repeat,
               s->warmup);
        printf("%-8s %6s %6s %10s %10s %10s %8s %10s %10s\n", "shape", "users", "items", "evaluate_s", "ranks_s",
               "epoch_s", "speedup", "eval/epoch", "metric_dif");
    }
    for (int k = 0; k < 2; ++k) {
        eval_result *x = &results[k];
        measure_eval(s, &d, &shapes[k], x);
        failed |= x->difference > 1e-3;
        if (!s->json)
            printf("%-8s %6u %6u %10.4f %10.4f %10.4f %8.2f %10.2f %10.2g\n", x->shape->name, x->shape->users,
                   x->shape->items, x->evaluate_seconds, x->ranks_seconds, x->epoch_seconds,
                   x->evaluate_seconds > 0 ? x->ranks_seconds / x->evaluate_seconds : 0.0,
                   x->epoch_seconds > 0 ? x->evaluate_seconds / x->epoch_seconds : 0.0, x->difference);
    }
    if (s->json)
        print_eval_json(s, &d, results, 2);
    if (failed)
        fprintf(stderr,
                "%s: wl_model_evaluate's metrics differ from those of wl_model_rank's ranks by more than 1e-3\n",
                cli_program);
    wl_context_destroy(d.wl);
    return failed ? 1 : 0;
}
