/*
 * warploss-train: train a matrix-factorisation recommender with WARP loss on
 * an OpenCL device, through the library's public model API, and evaluate it
 * with LightFM's metrics (see README.md, "warploss-train").
 *
 * Reproducibility (save + load + more epochs == one uninterrupted run, bit for
 * bit): epoch e (0-based, counting every epoch the model was ever trained)
 * shuffles the training pairs, sorted by (user, item), with a Fisher-Yates
 * driven by splitmix64 seeded with mix(seed ^ 0x5348554646 ^ e), where mix is
 * the splitmix64 finaliser; batch b of epoch e uses sample_key e * 2^32 + b.
 * The model's seed is --seed. A model saved after an interruption holds the
 * batches done in its unfinished epoch; --load finishes that epoch first.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "export_npy.h"
#include "train_data.h"
#include "train_file.h"
#include "train_input.h"
#include "train_options.h"
#include "train_output.h"
#include "train_ranks.h"
#include "train_run.h"
#include "warploss.h"

/* ------------------------------------------------------------ shuffling */

/* Epoch e's order of the training pairs: sorted (user, item) pairs, Fisher-Yates with splitmix64; the sample
 * weights (weights not NULL) in the same order. */
static void shuffle_epoch(const td_dataset *d, uint64_t seed, uint64_t epoch, int32_t *users, int32_t *items,
                          float *weights)
{
    memcpy(users, d->train_users, d->train_count * sizeof *users);
    memcpy(items, d->train_items, d->train_count * sizeof *items);
    if (weights)
        memcpy(weights, d->train_weights, d->train_count * sizeof *weights);
    uint64_t state = td_mix64(seed ^ 0x5348554646ull ^ epoch);
    for (size_t i = d->train_count; i > 1; --i) {
        const uint64_t r = td_splitmix64(&state);
        const size_t j = (size_t)(((r >> 32) * (uint64_t)i) >> 32); /* in [0, i) */
        int32_t t = users[i - 1];
        users[i - 1] = users[j];
        users[j] = t;
        t = items[i - 1];
        items[i - 1] = items[j];
        items[j] = t;
        if (weights) {
            const float w = weights[i - 1];
            weights[i - 1] = weights[j];
            weights[j] = w;
        }
    }
}

/* ------------------------------------------------------------ SIGINT */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* ------------------------------------------------------------ saving */

static int save_model(run *r, wl_model *m, const void *app, size_t app_size, uint64_t epochs, const char *why)
{
    char err[512];
    wl_status st = r->k.size > 1 ? ranks_save(&r->k, r->c, m, &r->mo, &r->global, &r->d, r->s.save, app, app_size, err,
                                              sizeof err)
                                 : wl_model_save(m, r->s.save, app, app_size);
    if (st != WL_SUCCESS)
        return train_fail("cannot save the model", r->k.size > 1 ? err : wl_context_last_error(r->c));
    if (!r->s.quiet)
        printf("saved %s%s (%llu epochs done)\n", r->s.save, why, (unsigned long long)epochs);
    return 0;
}

/* --save of the model as it is now (N > 1 ranks: one file of every rank's users, written by rank 0). */
static int save_now(run *r, const char *why)
{
    size_t app_size;
    unsigned char *app = train_app_bytes(r->epochs_done, r->batches_done, r->k.size > 1 ? &r->global : &r->d,
                                         &r->user_names, &r->item_names, &app_size);
    const int rc = save_model(r, r->m, app, app_size, r->epochs_done, why);
    free(app);
    return rc;
}

/* Keep the model as it is now, as a model file in memory, for --save after a NaN. */
static int snapshot(run *r)
{
    size_t app_size;
    unsigned char *app = train_app_bytes(r->epochs_done, r->batches_done, &r->d, &r->user_names, &r->item_names,
                                         &app_size);
    wl_free(r->good);
    r->good = NULL;
    wl_status st = wl_model_save_memory(r->m, app, app_size, &r->good, &r->good_size);
    free(app);
    r->good_epochs = r->epochs_done;
    return st == WL_SUCCESS ? 0 : train_fail_wl(r, st, "cannot read the model back from the device");
}

/* Save the last good model: loaded back from memory into a second model, saved from there. */
static void save_good(run *r)
{
    wl_model *m = NULL;
    void *app = NULL;
    size_t app_size = 0;
    wl_status st = wl_model_load_memory(r->c, r->good, r->good_size, &m, &app, &app_size);
    if (st != WL_SUCCESS)
        train_fail_wl(r, st, "cannot save the model");
    else
        save_model(r, m, app, app_size, r->good_epochs, " (the last good model)");
    wl_free(app);
    wl_model_destroy(m);
}

/*
 * LightFM's metrics on the test pairs, the training pairs (the known
 * positives) left out of the ranking. With --cold-items the test pairs are
 * ranked among the warm items and the cold pairs, into *cold, among the cold
 * items.
 */
static wl_status evaluate_model(run *r, wl_metrics *out, wl_metrics *cold)
{
    if (r->k.size > 1) {
        /* Each rank its users, the sums and counts reduced; a failure ends the job (the others wait). */
        wl_user_metrics *pu = cli_alloc((size_t)r->d.num_users * sizeof *pu);
        wl_status st = r->cold_mask ? wl_model_evaluate_among(r->m, r->warm_mask, r->test_ptr, r->d.test_items, r->s.k,
                                                              1, out, pu)
                                    : wl_model_evaluate(r->m, r->test_ptr, r->d.test_items, r->s.k, 1, out, pu);
        if (st == WL_SUCCESS)
            ranks_reduce_metrics(&r->k, pu, r->d.num_users, r->s.k, out);
        if (st == WL_SUCCESS && r->cold_mask) {
            st = wl_model_evaluate_among(r->m, r->cold_mask, r->cold_ptr, r->d.cold_items, r->s.k, 1, cold, pu);
            if (st == WL_SUCCESS)
                ranks_reduce_metrics(&r->k, pu, r->d.num_users, r->s.k, cold);
        }
        free(pu);
        if (st != WL_SUCCESS) {
            train_fail_wl(r, st, "evaluation failed");
            ranks_abort(&r->k, EXIT_FAIL);
        }
        return st;
    }
    if (!r->cold_mask)
        return wl_model_evaluate(r->m, r->test_ptr, r->d.test_items, r->s.k, 1, out, NULL);
    wl_status st = wl_model_evaluate_among(r->m, r->warm_mask, r->test_ptr, r->d.test_items, r->s.k, 1, out, NULL);
    if (st == WL_SUCCESS)
        st = wl_model_evaluate_among(r->m, r->cold_mask, r->cold_ptr, r->d.cold_items, r->s.k, 1, cold, NULL);
    return st;
}

static int evaluate(run *r, epoch_record *rec, double positives_per_second)
{
    wl_status st = evaluate_model(r, &rec->m, &rec->cold);
    if (st != WL_SUCCESS)
        return train_fail_wl(r, st, "evaluation failed");
    rec->evaluated = 1;
    rec->has_cold = r->cold_mask != NULL;
    if (r->metrics)
        train_write_metrics_line(r->metrics, rec, positives_per_second);
    return 0;
}

/* Train s.epochs epochs (finishing a partial one first). 0, EXIT_FAIL, or EXIT_INTERRUPTED. */
static int train(run *r)
{
    settings *s = &r->s;
    const size_t n = r->d.train_count, nb = n ? n : 1; /* a rank may have no pair */
    if (s->epochs == 0 || r->total_pairs == 0)
        return 0;
    cl_int err;
    cl_context ctx = wl_context_cl_context(r->c);
    cl_command_queue q = wl_context_queue(r->c);
    r->users = cli_alloc(nb * sizeof *r->users);
    r->items = cli_alloc(nb * sizeof *r->items);
    r->users_buf = clCreateBuffer(ctx, CL_MEM_READ_ONLY, nb * sizeof(int32_t), NULL, &err);
    if (err != CL_SUCCESS)
        return train_fail("cannot allocate the interactions on the device", "clCreateBuffer failed");
    r->items_buf = clCreateBuffer(ctx, CL_MEM_READ_ONLY, nb * sizeof(int32_t), NULL, &err);
    if (err != CL_SUCCESS)
        return train_fail("cannot allocate the interactions on the device", "clCreateBuffer failed");
    if (r->d.train_weights) {
        r->weights = cli_alloc(nb * sizeof *r->weights);
        r->weights_buf = clCreateBuffer(ctx, CL_MEM_READ_ONLY, nb * sizeof(float), NULL, &err);
        if (err != CL_SUCCESS)
            return train_fail("cannot allocate the sample weights on the device", "clCreateBuffer failed");
    }
    r->history = cli_alloc(s->epochs * sizeof *r->history);

    wl_loss_options lo;
    wl_loss_options_default(&lo, r->d.num_items);
    lo.reduction = WL_REDUCE_SUM;
    /* N > 1 ranks: as many steps as the rank with the most batches (the others idle), the item rows combined every
     * --sync-every steps and at the end of the epoch; the candidates' keys differ between ranks. */
    const size_t mine = (n + s->batch - 1) / s->batch, batches = ranks_max(&r->k, mine);
    const uint64_t size = (uint64_t)r->k.size, rank = (uint64_t)r->k.rank;
    const int tty = !s->quiet && isatty(1) && size == 1; /* the progress bar: one process */
    const uint64_t last = r->epochs_done + s->epochs;
    char why[512];

    if (size > 1 && ranks_items_start(&r->sync, r->m, s->sync_mean) != WL_SUCCESS)
        return train_fail_wl(r, WL_ERROR_INVALID_ARGUMENT, "cannot read the item rows");
    if (size == 1 && s->save && snapshot(r))
        return EXIT_FAIL;
    for (uint64_t ep = 0; ep < s->epochs; ++ep) {
        const uint64_t e = r->epochs_done;
        const double t0 = cli_now();
        shuffle_epoch(&r->d, r->mo.seed ^ rank << 40, e, r->users, r->items, r->weights);
        err = CL_SUCCESS;
        if (n)
            err = clEnqueueWriteBuffer(q, r->users_buf, CL_TRUE, 0, n * sizeof(int32_t), r->users, 0, NULL, NULL);
        if (err == CL_SUCCESS && n)
            err = clEnqueueWriteBuffer(q, r->items_buf, CL_TRUE, 0, n * sizeof(int32_t), r->items, 0, NULL, NULL);
        if (err == CL_SUCCESS && r->weights && n)
            err = clEnqueueWriteBuffer(q, r->weights_buf, CL_TRUE, 0, n * sizeof(float), r->weights, 0, NULL, NULL);
        if (err != CL_SUCCESS)
            return train_fail("cannot upload the interactions", "clEnqueueWriteBuffer failed");
        double loss = 0, last_draw = t0;
        const double sync_before = r->k.sync_seconds;
        size_t stopped_at = batches;
        for (size_t b = r->batches_done; b < batches; ++b) {
            if (b < mine) {
                wl_batch_cl bc = {0};
                bc.offset = b * s->batch;
                bc.rows = n - bc.offset < s->batch ? n - bc.offset : s->batch;
                bc.users = r->users_buf;
                bc.positives = r->items_buf;
                bc.negatives = s->negatives;
                bc.shared_negatives = s->shared;
                bc.sample_key = (e << 32) + b * size + rank;
                bc.weights = r->weights_buf;
                wl_step_result res;
                wl_status st = wl_model_step_cl(r->m, &lo, &bc, &res, 0, NULL, NULL);
                if (st != WL_SUCCESS)
                    return train_fail_wl(r, st, "training step failed");
                if (!isfinite(res.loss)) {
                    if (tty)
                        printf("\n");
                    fprintf(
                        stderr,
                        "%s: the loss is %s at epoch %llu, batch %zu: training diverged; try a lower --lr (now %g)\n",
                        cli_program, isnan(res.loss) ? "NaN" : "infinite", (unsigned long long)e + 1, b,
                        (double)r->mo.learning_rate);
                    if (s->save && r->good)
                        save_good(r);
                    return EXIT_FAIL;
                }
                loss += res.loss;
            }
            r->batches_done = b + 1;
            if (size > 1 && ((b + 1) % s->sync_every == 0 || b + 1 == batches) &&
                ranks_sync(&r->k, &r->sync, r->c, r->m, why, sizeof why) != WL_SUCCESS)
                return train_fail("cannot combine the item rows", why);
            if (interrupted) {
                stopped_at = b + 1;
                break;
            }
            if (tty) {
                const double now = cli_now();
                if (now - last_draw > 0.2) {
                    last_draw = now;
                    const size_t done = (b + 1) * s->batch < n ? (b + 1) * s->batch : n;
                    train_progress(e + 1, last, done, n, now - t0, loss / (double)done);
                }
            }
        }
        clFinish(q);
        const double seconds = cli_now() - t0;
        r->step_seconds += seconds - (r->k.sync_seconds - sync_before);
        r->steps += batches;
        if (stopped_at < batches) {
            if (tty)
                printf("\n");
            fprintf(stderr, "%s: interrupted in epoch %llu after batch %zu of %zu\n", cli_program,
                    (unsigned long long)e + 1, stopped_at, batches);
            return EXIT_INTERRUPTED;
        }
        r->epochs_done = e + 1;
        r->batches_done = 0;
        epoch_record *rec = &r->history[r->history_count++];
        memset(rec, 0, sizeof *rec);
        rec->epoch = r->epochs_done;
        rec->loss = ranks_sum_double(&r->k, loss) / (double)r->total_pairs;
        rec->seconds = seconds;
        const double pps = (double)r->total_pairs / seconds;
        if (tty) {
            train_progress(e + 1, last, n, n, seconds, rec->loss);
            printf("\r\033[K");
        }
        if ((s->eval_every && r->epochs_done % s->eval_every == 0) || ep + 1 == s->epochs) {
            if (evaluate(r, rec, pps))
                return EXIT_FAIL;
        }
        if (!s->quiet) {
            printf("epoch %3llu  loss %.4f  %.2f s  %.0f pos/s", (unsigned long long)rec->epoch, rec->loss, seconds,
                   pps);
            if (rec->evaluated)
                printf("  p@%u %.4f  r@%u %.4f  auc %.4f  mrr %.4f", s->k, rec->m.precision_at_k, s->k,
                       rec->m.recall_at_k, rec->m.auc, rec->m.mrr);
            if (rec->evaluated && rec->has_cold)
                printf("  cold p@%u %.4f  r@%u %.4f  auc %.4f  mrr %.4f", s->k, rec->cold.precision_at_k, s->k,
                       rec->cold.recall_at_k, rec->cold.auc, rec->cold.mrr);
            printf("\n");
            fflush(stdout);
        }
        if (s->save && s->checkpoint_every && r->epochs_done % s->checkpoint_every == 0 && ep + 1 < s->epochs &&
            save_now(r, " (checkpoint)"))
            return EXIT_FAIL;
        if (size == 1 && s->save && snapshot(r))
            return EXIT_FAIL;
    }
    return 0;
}

static int recommend(run *r)
{
    settings *s = &r->s;
    char *end;
    errno = 0;
    const long long id = strtoll(s->recommend, &end, 10);
    const int32_t u = errno || *end || !*s->recommend ? -1 : td_user_index(&r->d, id);
    if (u < 0) {
        fprintf(stderr, "%s: --recommend %s: no such user in the training data\n", cli_program, s->recommend);
        return EXIT_FAIL;
    }
    const uint32_t k = s->k < r->d.num_items ? s->k : r->d.num_items;
    int32_t *items = cli_alloc(k * sizeof *items);
    float *scores = cli_alloc(k * sizeof *scores);
    wl_status st = wl_model_recommend(r->m, 1, &u, k, 1, items, scores);
    if (st != WL_SUCCESS) {
        free(items);
        free(scores);
        return train_fail_wl(r, st, "recommend failed");
    }
    printf("top %u for user %s (training items left out):\n", k, s->recommend);
    /* A features file's titles (movies.csv, u.item) after the score, so that the columns before stay. */
    char *const *titles = r->f.has_items ? r->f.items.titles : NULL;
    for (uint32_t j = 0; j < k && items[j] >= 0; ++j) {
        printf("%3u  item %lld  score %.4f", j + 1, (long long)r->d.item_ids[items[j]], (double)scores[j]);
        if (titles && titles[items[j]])
            printf("  %s", titles[items[j]]);
        printf("\n");
    }
    free(items);
    free(scores);
    return 0;
}

static void cleanup(run *r)
{
    if (r->users_buf)
        clReleaseMemObject(r->users_buf);
    if (r->items_buf)
        clReleaseMemObject(r->items_buf);
    if (r->weights_buf)
        clReleaseMemObject(r->weights_buf);
    wl_model_destroy(r->m);
    wl_context_destroy(r->c);
    if (r->metrics)
        fclose(r->metrics);
    wl_free(r->good);
    train_progress_ids_free(&r->loaded);
    td_dataset_free(&r->d);
    td_dataset_free(&r->global);
    ranks_items_free(&r->sync);
    train_features_free(&r->f);
    free(r->history);
    free(r->test_ptr);
    free(r->cold_ptr);
    free(r->warm_mask);
    free(r->cold_mask);
    free(r->users);
    free(r->items);
    free(r->weights);
}

static int run_all(run *r)
{
    settings *s = &r->s;
    char err[1024];
    int rc = 0;
    /* Each stage ends on every rank alike (ranks_agree): a failure on one rank ends all of them there. */
    if (s->load) {
        if (train_create_context(r) || train_load_model(r))
            rc = EXIT_FAIL;
        else
            rc = train_check_loaded(r);
    }
    if ((rc = ranks_agree(&r->k, rc)))
        return rc;
    if ((rc = ranks_agree(&r->k, train_load_data(&r->s, &r->k, &r->d, &r->f))) ||
        (rc = ranks_agree(&r->k, train_setup_model(r))))
        return rc;
    if (s->metrics && !(r->metrics = fopen(s->metrics, "a")))
        rc = train_fail("cannot open", s->metrics);
    if ((rc = ranks_agree(&r->k, rc)))
        return rc;

    if (r->k.size == 1) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
    }

    const double t0 = cli_now();
    const int trained = train(r);
    if (trained == EXIT_FAIL) {
        ranks_abort(&r->k, EXIT_FAIL); /* the other ranks would wait for this one */
        return EXIT_FAIL;
    }
    const double seconds = cli_now() - t0;

    rc = trained;
    if (s->save && save_now(r, trained == EXIT_INTERRUPTED ? " (interrupted)" : ""))
        rc = EXIT_FAIL;
    if (s->export_dir) {
        const int features = r->mo.num_user_features || r->mo.num_item_features;
        if (features ? npy_export_model_features(s->export_dir, r->m, r->d.user_ids, r->d.item_ids, r->user_names.names,
                                                 r->item_names.names, err, sizeof err)
                     : npy_export_model(s->export_dir, r->m, r->d.user_ids, r->d.item_ids, err, sizeof err))
            rc = train_fail("cannot export", err);
        else if (!s->quiet && features)
            printf("exported the representations, the feature tables, matrices and names and the ids to %s\n",
                   s->export_dir);
        else if (!s->quiet)
            printf("exported the tables and ids to %s/*.npy\n", s->export_dir);
    }
    if (trained == EXIT_INTERRUPTED)
        return rc;

    /* The final evaluation: the last epoch's, or the loaded model's when no epoch ran. */
    wl_metrics final, final_cold;
    memset(&final_cold, 0, sizeof final_cold);
    if (r->history_count && r->history[r->history_count - 1].evaluated) {
        final = r->history[r->history_count - 1].m;
        final_cold = r->history[r->history_count - 1].cold;
    } else {
        wl_status st = evaluate_model(r, &final, &final_cold);
        if (st != WL_SUCCESS)
            return train_fail_wl(r, st, "evaluation failed");
        if (r->metrics && !r->history_count) {
            epoch_record rec = {.epoch = r->epochs_done, .loss = NAN, .seconds = 0, .evaluated = 1, .m = final};
            rec.has_cold = r->cold_mask != NULL;
            rec.cold = final_cold;
            train_write_metrics_line(r->metrics, &rec, 0);
        }
    }
    if (r->history_count) {
        double sum = 0;
        for (size_t i = 0; i < r->history_count; ++i)
            sum += r->history[i].seconds;
        if (!s->quiet)
            printf("trained %zu epochs in %.2f s (%.3f s per epoch, %.0f positives/s; %.2f s with evaluation)\n",
                   r->history_count, sum, sum / (double)r->history_count,
                   (double)r->total_pairs * (double)r->history_count / sum, seconds);
        if (r->k.size > 1 && r->k.syncs && !s->quiet)
            printf("rank 0: %llu syncs (%llu sparse), %.0f rows changed, %.0f bytes and %.2f ms per sync (%.2f ms "
                   "of it waiting for the other ranks); %.2f ms per step\n",
                   (unsigned long long)r->k.syncs, (unsigned long long)r->k.sparse_syncs,
                   r->k.sync_rows / (double)r->k.syncs, r->k.sync_bytes / (double)r->k.syncs,
                   1e3 * r->k.sync_seconds / (double)r->k.syncs, 1e3 * r->k.sync_wait / (double)r->k.syncs,
                   1e3 * r->step_seconds / (double)r->steps);
    }
    if (r->cold_mask) {
        train_print_metrics("warm: ", &final);
        train_print_metrics("cold: ", &final_cold);
    } else {
        train_print_metrics(s->quiet ? "" : "test: ", &final);
    }
    if (s->plot) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s: %u users, %u items, %zu train pairs; dim %u, %u negatives, %s, lr %g",
                 s->data ? s->data : "synthetic", r->d.num_users, r->d.num_items, r->d.train_count, r->mo.dim,
                 s->negatives, train_optimizer_name(r->mo.optimizer), (double)r->mo.learning_rate);
        if (train_write_plot(s->plot, r->history, r->history_count, s->k, sub))
            rc = train_fail("cannot write", s->plot);
        else if (!s->quiet)
            printf("plot written to %s\n", s->plot);
    }
    if (s->recommend && recommend(r))
        rc = EXIT_FAIL;
    return rc;
}

/* N > 1 ranks: what the ranks cannot do yet, and the files only rank 0 writes. */
static int ranked_settings(run *r)
{
    settings *s = &r->s;
    const char *no = s->num_item_files || s->num_user_files ? "--item-features and --user-features"
                     : s->export_dir                        ? "--export-npy"
                     : s->recommend                         ? "--recommend"
                                                            : NULL;
    if (no) {
        if (r->k.rank == 0)
            fprintf(stderr,
                    "%s: %s: one process only for now; train under mpirun with --save, then run warploss-train "
                    "alone with --load\n",
                    cli_program, no);
        return EXIT_USAGE;
    }
    if (r->k.rank != 0)
        s->metrics = s->plot = s->write_split = NULL;
    return 0;
}

int main(int argc, char **argv)
{
    cli_init(argc > 0 ? argv[0] : NULL);
    run r;
    memset(&r, 0, sizeof r);
    int rc = ranks_init(&r.k, &argc, &argv);
    if (!rc)
        rc = train_parse_args(argc, argv, &r.s);
    if (!rc && r.k.size > 1)
        rc = ranked_settings(&r);
    if (!rc)
        rc = run_all(&r);
    fflush(stdout);
    cleanup(&r);
    ranks_finalize(&r.k);
    return rc;
}
