/*
 * The model benchmark of warploss-bench (--model): the time of one step of the
 * embedding model, wl_model_step_cl (ids on the device), wl_model_step (from
 * host arrays) and the C reference step (ref_model_step). Here: the tables of
 * each regime, the timed step and the comparison of results that --features
 * (bench_features.c) shares, one measurement, the table and the JSON
 * document, and the run (a device and a model on it per scatter timed).
 *
 * A synthetic model (seed 0), a batch of --rows rows with --candidates
 * candidates each, in three candidate modes and two regimes:
 *   untrained: the fresh tables of wl_model_create, positives and candidates
 *     uniform: s is about 0 everywhere, so nearly every scan stops at its
 *     first candidate (offenders early);
 *   late: K = min(dim, 8) columns of U and V set to random signs (+-1), the
 *     other columns as created. The positives are "hot" items (the first
 *     max(1, items / 4096)) with those K columns 0 and bias K + 0.5; every
 *     other item has bias 0. A candidate x then stops the scan of user u only
 *     when its K signs equal u's (dot = K: 1 + K - (K + 0.5) > 0), for a
 *     random x with probability 2^-K (1/256), or when x is another hot item:
 *     offenders are found late, about a third of the rows read all candidates.
 * Before every timed step the tables are written back (wl_model_write, which
 * also resets Adagrad's state) outside the timed region, so every repeat
 * starts from the same model: no drift, and each result can be checked
 * against the C step's.
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

typedef enum { MODEL_UNTRAINED, MODEL_LATE } model_regime;
static const char *const model_regime_names[2] = {"untrained", "late"};

#define SAMPLE_KEY 1u

typedef struct model_result {
    const char *scatter; /* the context's, wl_context_model_scatter */
    cand_mode mode;
    model_regime regime;
    double seconds, scan_seconds, update_seconds; /* device time (profiling events), medians */
    double wall_seconds;                          /* wl_model_step_cl, enqueue to result on the host */
    double host_seconds;                          /* wl_model_step from host arrays (uploads the ids) */
    double c_seconds;                             /* ref_model_step, single-threaded, same tables and candidates */
    wl_step_result device, c;
    int check_ok;
} model_result;

/* ------------------------------------------------------------ the tables of a regime */

/* The tables of one regime, on the host. */
typedef struct model_tables {
    float *U, *V, *b;
    uint32_t hot; /* positives are drawn from items [0, hot); 0: from all items */
} model_tables;

static void alloc_tables(const wl_model_options *o, model_tables *t)
{
    t->U = cli_alloc((size_t)o->num_users * o->dim * sizeof *t->U);
    t->V = cli_alloc((size_t)o->num_items * o->dim * sizeof *t->V);
    t->b = cli_alloc((size_t)o->num_items * sizeof *t->b);
    t->hot = 0;
}

static void read_tables(wl_model *m, const wl_model_options *o, model_tables *t)
{
    alloc_tables(o, t);
    cli_check_wl(wl_model_read(m, WL_TABLE_USERS, t->U), NULL);
    cli_check_wl(wl_model_read(m, WL_TABLE_ITEMS, t->V), NULL);
    cli_check_wl(wl_model_read(m, WL_TABLE_ITEM_BIAS, t->b), NULL);
}

/* The late regime's tables from the fresh ones (see the top of this file). */
static void make_late(const wl_model_options *o, const model_tables *fresh, model_tables *t)
{
    alloc_tables(o, t);
    memcpy(t->U, fresh->U, (size_t)o->num_users * o->dim * sizeof *t->U);
    memcpy(t->V, fresh->V, (size_t)o->num_items * o->dim * sizeof *t->V);
    const uint32_t k = o->dim < 8 ? o->dim : 8;
    t->hot = o->num_items / 4096 ? o->num_items / 4096 : 1;
    ref_rng rng;
    ref_rng_seed(&rng, 0x4C415445ull);
    for (size_t u = 0; u < o->num_users; ++u)
        for (uint32_t d = 0; d < k; ++d)
            t->U[u * o->dim + d] = (ref_rng_next(&rng) >> 63) ? 1.0f : -1.0f;
    for (size_t x = 0; x < o->num_items; ++x) {
        const int hot = x < t->hot;
        for (uint32_t d = 0; d < k; ++d)
            t->V[x * o->dim + d] = hot ? 0.0f : (ref_rng_next(&rng) >> 63) ? 1.0f : -1.0f;
        t->b[x] = hot ? (float)k + 0.5f : 0.0f;
    }
}

static void free_tables(model_tables *t) { free(t->U), free(t->V), free(t->b); }

/* Both models back to the regime's tables (and Adagrad's state to 1). */
static void restore_device(wl_model *m, const model_tables *t)
{
    cli_check_wl(wl_model_write(m, WL_TABLE_USERS, t->U), NULL);
    cli_check_wl(wl_model_write(m, WL_TABLE_ITEMS, t->V), NULL);
    cli_check_wl(wl_model_write(m, WL_TABLE_ITEM_BIAS, t->b), NULL);
}

static void restore_ref(ref_model *r, const model_tables *t)
{
    const size_t nu = (size_t)r->o.num_users * r->o.dim, nv = (size_t)r->o.num_items * r->o.dim;
    memcpy(r->U, t->U, nu * sizeof *r->U);
    memcpy(r->V, t->V, nv * sizeof *r->V);
    memcpy(r->b, t->b, (size_t)r->o.num_items * sizeof *r->b);
    for (size_t k = 0; k < nu; ++k)
        r->AU[k] = 1.0f;
    for (size_t k = 0; k < nv; ++k)
        r->AV[k] = 1.0f;
    for (size_t k = 0; k < r->o.num_items; ++k)
        r->Ab[k] = 1.0f;
}

/* ------------------------------------------------------------ one measurement */

int same_result(const wl_step_result *a, const wl_step_result *b)
{
    return a->offenders == b->offenders && a->scores == b->scores &&
           fabs(a->loss - b->loss) <= 1e-4 * fabs(b->loss) + 1e-6;
}

void time_step_cl(device *d, wl_model *m, const wl_loss_options *lo, const wl_batch_cl *b, wl_step_result *r,
                  step_times *t)
{
    cl_command_queue queue = wl_context_queue(d->wl);
    cl_event start, done;
    const double t0 = cli_now();
    cli_check_cl(clEnqueueMarkerWithWaitList(queue, 0, NULL, &start), "clEnqueueMarkerWithWaitList");
    cli_check_wl(wl_model_step_cl(m, lo, b, r, 0, NULL, &done), d->wl); /* blocks for r */
    cli_check_cl(clWaitForEvents(1, &done), "clWaitForEvents");
    t->wall_seconds = cli_now() - t0;
    /* done is the update's launch (model_update.cl); everything before it on the in-order queue since the marker is
     * the counters' fill, the representations of a model with features, the SGEMM of shared candidates and the scan
     * (model_step.cl) */
    const cl_ulong begin = profile(start, CL_PROFILING_COMMAND_END);
    const cl_ulong update_start = profile(done, CL_PROFILING_COMMAND_START);
    const cl_ulong end = profile(done, CL_PROFILING_COMMAND_END);
    t->seconds = span(begin, end);
    t->scan_seconds = span(begin, update_start);
    t->update_seconds = span(update_start, end);
    clReleaseEvent(start);
    clReleaseEvent(done);
}

static void measure_model(const settings *s, device *d, wl_model *m, ref_model *rm, const model_tables *t,
                          model_regime rg, cand_mode mode, model_result *out)
{
    const wl_model_options *o = &rm->o;
    const size_t rows = s->model_rows, negatives = s->candidates;
    wl_loss_options lo;
    wl_loss_options_default(&lo, o->num_items);

    /* the batch: ids from a generator seeded by the shape, the same for both regimes but the positives */
    ref_rng rng;
    ref_rng_seed(&rng, rows * 131 + negatives * 7 + (uint64_t)mode);
    int32_t *users = cli_alloc(rows * sizeof *users), *positives = cli_alloc(rows * sizeof *positives);
    for (size_t b = 0; b < rows; ++b) {
        users[b] = (int32_t)(ref_rng_next(&rng) % o->num_users);
        positives[b] = (int32_t)(ref_rng_next(&rng) % (t->hot ? t->hot : o->num_items));
    }
    const size_t neg_count = mode == CAND_ROWS ? rows * negatives : mode == CAND_SHARED ? negatives : 0;
    int32_t *neg = cli_alloc(neg_count * sizeof *neg);
    for (size_t k = 0; k < neg_count; ++k)
        neg[k] = (int32_t)(ref_rng_next(&rng) % o->num_items);
    /* the C step takes every row's candidates: shared and sampled ones expanded here, before any timing */
    int32_t *cands = cli_alloc(rows * negatives * sizeof *cands);
    for (size_t b = 0; b < rows; ++b)
        for (size_t j = 0; j < negatives; ++j)
            cands[b * negatives + j] = mode == CAND_ROWS ? neg[b * negatives + j]
                                       : mode == CAND_SHARED
                                           ? neg[j]
                                           : ref_sample(o->seed, SAMPLE_KEY, b, j, o->num_items, positives[b]);

    cl_mem users_buf = new_buffer(d, rows * sizeof(int32_t), users);
    cl_mem positives_buf = new_buffer(d, rows * sizeof(int32_t), positives);
    cl_mem neg_buf = neg_count ? new_buffer(d, neg_count * sizeof(int32_t), neg) : NULL;
    const wl_batch_cl bcl = {rows,       0,   users_buf, positives_buf, negatives, neg_buf, mode == CAND_SHARED,
                             SAMPLE_KEY, NULL};
    const wl_batch bh = {
        rows, users, positives, negatives, mode == CAND_SAMPLED ? NULL : neg, mode == CAND_SHARED, SAMPLE_KEY, NULL};
    cl_command_queue queue = wl_context_queue(d->wl);

    /* The three steps take turns, so that the load of a shared machine weighs on all alike. */
    const int n = s->repeat;
    double *times = cli_alloc((size_t)n * sizeof *times), *scans = cli_alloc((size_t)n * sizeof *scans);
    double *updates = cli_alloc((size_t)n * sizeof *updates), *walls = cli_alloc((size_t)n * sizeof *walls);
    double *hosts = cli_alloc((size_t)n * sizeof *hosts), *cs = cli_alloc((size_t)n * sizeof *cs);
    out->check_ok = 1;
    for (int i = -s->warmup; i < n; ++i) {
        /* the device step on ids already on the device */
        restore_device(m, t);
        cli_check_cl(clFinish(queue), "clFinish");
        wl_step_result r;
        step_times st;
        time_step_cl(d, m, &lo, &bcl, &r, &st);
        if (i >= 0) {
            times[i] = st.seconds;
            scans[i] = st.scan_seconds;
            updates[i] = st.update_seconds;
            walls[i] = st.wall_seconds;
        }
        out->device = r;

        /* the host form: uploads the ids, steps, reads the result */
        restore_device(m, t);
        cli_check_cl(clFinish(queue), "clFinish");
        wl_step_result rh;
        double t0 = cli_now();
        cli_check_wl(wl_model_step(m, &lo, &bh, &rh), d->wl);
        if (i >= 0)
            hosts[i] = cli_now() - t0;

        /* the C step on host copies of the same tables and candidates */
        restore_ref(rm, t);
        wl_step_result rc;
        t0 = cli_now();
        ref_model_step(rm, &lo, rows, users, positives, negatives, cands, &rc, NULL);
        if (i >= 0)
            cs[i] = cli_now() - t0;
        out->c = rc;
        if (!same_result(&r, &rc) || !same_result(&rh, &rc))
            out->check_ok = 0;
    }
    out->mode = mode;
    out->regime = rg;
    out->seconds = cli_median(times, n);
    out->scan_seconds = cli_median(scans, n);
    out->update_seconds = cli_median(updates, n);
    out->wall_seconds = cli_median(walls, n);
    out->host_seconds = cli_median(hosts, n);
    out->c_seconds = cli_median(cs, n);

    free(times), free(scans), free(updates), free(walls), free(hosts), free(cs);
    free(users), free(positives), free(neg), free(cands);
    clReleaseMemObject(users_buf);
    clReleaseMemObject(positives_buf);
    if (neg_buf)
        clReleaseMemObject(neg_buf);
}

/* ------------------------------------------------------------ output */

static void print_model_json(const settings *s, const device *d, const model_result *r, int count)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "benchmark", "model step");
    cJSON_AddStringToObject(doc, "device", wl_context_device_name(d->wl));
    cJSON_AddStringToObject(doc, "platform", d->platform);
    cJSON_AddNumberToObject(doc, "users", s->users);
    cJSON_AddNumberToObject(doc, "items", s->items);
    cJSON_AddNumberToObject(doc, "dim", s->dim);
    cJSON_AddNumberToObject(doc, "rows", (double)s->model_rows);
    cJSON_AddNumberToObject(doc, "candidates", (double)s->candidates);
    cJSON_AddStringToObject(doc, "optimizer", "adagrad");
    cJSON_AddNumberToObject(doc, "repeat", s->repeat);
    cJSON_AddNumberToObject(doc, "warmup", s->warmup);
    cJSON_AddStringToObject(doc, "timing",
                            "median device time of wl_model_step_cl (ids already on the device), end of a marker "
                            "enqueued before the call to the end of its done event (the update); scan_seconds: to "
                            "the start of the update (the counters' fill, for shared candidates the gathers and "
                            "CLBlast's SGEMM, and model_step.cl), update_seconds: model_update.cl");
    cJSON_AddStringToObject(doc, "wall",
                            "wall_seconds: wl_model_step_cl to its result on the host; "
                            "host_step_seconds: wl_model_step from host arrays (uploads the ids)");
    cJSON_AddStringToObject(doc, "c_baseline",
                            "ref_model_step (tests/reference.c, the test oracle: single-threaded, written for "
                            "clarity; allocates dense gradient sums and walks every row of U and V per step) on host "
                            "copies of the same tables and candidates");
    cJSON_AddStringToObject(doc, "drift",
                            "none: the tables are written back (wl_model_write, Adagrad state reset) "
                            "before every step, outside the timed region");
    cJSON *results = cJSON_AddArrayToObject(doc, "results");
    for (int i = 0; i < count; ++i) {
        const model_result *x = &r[i];
        cJSON *row = cJSON_CreateObject();
        cJSON_AddItemToArray(results, row);
        cJSON_AddStringToObject(row, "scatter", x->scatter);
        cJSON_AddStringToObject(row, "candidates_mode", cand_mode_names[x->mode]);
        cJSON_AddStringToObject(row, "regime", model_regime_names[x->regime]);
        cli_json_add_number(row, "seconds", "%.9g", x->seconds);
        cli_json_add_number(row, "scan_seconds", "%.9g", x->scan_seconds);
        cli_json_add_number(row, "update_seconds", "%.9g", x->update_seconds);
        cli_json_add_number(row, "wall_seconds", "%.9g", x->wall_seconds);
        cli_json_add_number(row, "host_step_seconds", "%.9g", x->host_seconds);
        cli_json_add_number(row, "rows_per_s", "%.6g", per_second((double)s->model_rows, x->seconds));
        cJSON_AddNumberToObject(row, "scores", (double)x->device.scores);
        cli_json_add_number(row, "scores_per_row", "%.4f",
                            s->model_rows ? (double)x->device.scores / (double)s->model_rows : 0.0);
        cli_json_add_number(row, "scores_per_s", "%.6g", per_second((double)x->device.scores, x->seconds));
        cJSON_AddNumberToObject(row, "offenders", (double)x->device.offenders);
        cli_json_add_number(row, "loss", "%.9g", x->device.loss);
        cli_json_add_number(row, "c_seconds", "%.9g", x->c_seconds);
        cli_json_add_number(row, "c_rows_per_s", "%.6g", per_second((double)s->model_rows, x->c_seconds));
        cli_json_add_number(row, "device_over_c", "%.4f", x->c_seconds > 0 ? x->seconds / x->c_seconds : 0.0);
        cli_json_add_number(row, "speedup_vs_c", "%.4f", x->seconds > 0 ? x->c_seconds / x->seconds : 0.0);
        cJSON_AddBoolToObject(row, "check", x->check_ok);
    }
    cli_json_print(doc);
}

static void print_model_header(const settings *s, const device *d)
{
    printf("device: %s (%s)\n", wl_context_device_name(d->wl), d->platform);
    printf("model step: %u users, %u items, dim %u, Adagrad; %zu rows x %zu candidates per batch\n", s->users, s->items,
           s->dim, s->model_rows, s->candidates);
    printf("ms: device time of wl_model_step_cl (ids on the device), split into scan (model_step.cl, after the\n"
           "gathers and CLBlast's SGEMM for shared candidates) and update (model_update.cl); median of %d after %d\n"
           "warm-up. step_cl wall: to its result on the host; step wall: wl_model_step from host arrays. C:\n"
           "ref_model_step, single-threaded (the test oracle, written for clarity: it allocates dense gradient sums\n"
           "and walks every row of U and V per step). Tables restored before every step, outside the timing (no\n"
           "drift). dev/C: device ms / C ms (below 1: the device is faster). scatter: how the step adds its\n"
           "gradient terms (wl_context_model_scatter); with both, each row is timed with each in turn, and 32/64 is\n"
           "atomic32's time over atomic64's.\n\n",
           s->repeat, s->warmup);
    printf("%-8s %-8s %-9s %9s %9s %9s %9s %9s %10s %7s %10s %9s %7s %s\n", "scatter", "cands", "regime", "ms",
           "scan ms", "upd ms", "cl wall", "step wall", "rows/s", "sc/row", "scores/s", "C ms", "dev/C", "check");
}

static void print_model_row(const settings *s, const model_result *x)
{
    printf("%-8s %-8s %-9s %9.3f %9.3f %9.3f %9.3f %9.3f %10.4g %7.1f %10.4g %9.3f %7.3f %s\n", x->scatter,
           cand_mode_names[x->mode], model_regime_names[x->regime], x->seconds * 1e3, x->scan_seconds * 1e3,
           x->update_seconds * 1e3, x->wall_seconds * 1e3, x->host_seconds * 1e3,
           per_second((double)s->model_rows, x->seconds),
           s->model_rows ? (double)x->device.scores / (double)s->model_rows : 0.0,
           per_second((double)x->device.scores, x->seconds), x->c_seconds * 1e3,
           x->c_seconds > 0 ? x->seconds / x->c_seconds : 0.0, x->check_ok ? "ok" : "MISMATCH");
    fflush(stdout);
}

/* ------------------------------------------------------------ the run */

/* A device and a model on it with the given scatter (NULL: the device's own). */
static void open_model(const settings *s, const char *scatter, const wl_model_options *o, device *d, wl_model **m)
{
    const char *old = getenv("WARPLOSS_SCATTER");
    char *saved = old ? strdup(old) : NULL;
    if (scatter && strcmp(scatter, "atomic32") == 0)
        setenv("WARPLOSS_SCATTER", "atomic32", 1);
    else if (scatter)
        unsetenv("WARPLOSS_SCATTER");
    open_device(s->device, d);
    if (saved)
        setenv("WARPLOSS_SCATTER", saved, 1);
    else
        unsetenv("WARPLOSS_SCATTER");
    free(saved);
    if (scatter && strcmp(wl_context_model_scatter(d->wl), scatter) != 0) {
        fprintf(stderr, "%s: --scatters %s: the device lacks cl_khr_int64_base_atomics\n", cli_program, scatter);
        exit(1);
    }
    *m = NULL;
    cli_check_wl(wl_model_create(d->wl, o, m), d->wl);
}

/* The whole --model run; the exit status. */
int run_model(const settings *s)
{
    const char *scatters[2] = {NULL, NULL};
    int n = 0;
    for (int k = 0; k < 2; ++k)
        if (s->scatters[k])
            scatters[n++] = scatter_names[k];
    n = n ? n : 1;
    device d[2];
    wl_model *m[2];
    wl_model_options o;
    wl_model_options_default(&o, s->users, s->items, s->dim);
    for (int k = 0; k < n; ++k)
        open_model(s, scatters[k], &o, &d[k], &m[k]);
    ref_model rm;
    ref_model_create(&rm, &o);
    model_result results[12];
    int count = 0, failed = 0;
    if (!s->json)
        print_model_header(s, &d[0]);
    model_tables fresh; /* the tables as wl_model_create made them, read before any step */
    read_tables(m[0], &o, &fresh);
    for (int rg = 0; rg < 2; ++rg) {
        model_tables t = fresh;
        if (rg == MODEL_LATE)
            make_late(&o, &fresh, &t);
        for (int mode = 0; mode < 3; ++mode) {
            if (!s->modes[mode])
                continue;
            for (int k = 0; k < n; ++k) {
                model_result *x = &results[count++];
                measure_model(s, &d[k], m[k], &rm, &t, (model_regime)rg, (cand_mode)mode, x);
                x->scatter = wl_context_model_scatter(d[k].wl);
                failed |= !x->check_ok;
                if (!s->json)
                    print_model_row(s, x);
            }
            if (n == 2 && !s->json) {
                const model_result *a = &results[count - 2], *b = &results[count - 1];
                printf("%-8s %-8s %-9s %9.3f %9.3f %9.3f\n", "32/64", cand_mode_names[mode], model_regime_names[rg],
                       a->seconds > 0 ? b->seconds / a->seconds : 0.0,
                       a->scan_seconds > 0 ? b->scan_seconds / a->scan_seconds : 0.0,
                       a->update_seconds > 0 ? b->update_seconds / a->update_seconds : 0.0);
            }
        }
        if (rg == MODEL_LATE)
            free_tables(&t);
    }
    free_tables(&fresh);
    if (s->json)
        print_model_json(s, &d[0], results, count);
    if (failed)
        fprintf(stderr, "%s: a step's loss, offenders or scores differ from the C step's\n", cli_program);
    ref_model_free(&rm);
    for (int k = 0; k < n; ++k) {
        wl_model_destroy(m[k]);
        wl_context_destroy(d[k].wl);
    }
    return failed ? 1 : 0;
}
