/*
 * The features mode of warploss-bench --model (--features LIST): one step of
 * the hybrid model (README.md, "Features") for each number k of features per
 * item row in LIST, against the same shape without features, all in one run,
 * so that each time is read as a ratio to that baseline.
 *
 * Every model has --model's shape (users, items, dim, seed 0, Adagrad) and
 * steps on the same batch: --rows rows, users and positives uniform, with
 * --candidates candidates sampled on the device (wl_model_step_cl, ids on the
 * device), from its fresh tables (offenders early, as --model's untrained
 * regime). The baseline has no features. Each hybrid model gives users their
 * identity features (num_user_features = users, the default matrix) and item
 * x k features of weight 1/k (summing to 1): its own (x) and, for k > 1,
 * k - 1 distinct ones of the FEATURE_GENRES (64) shared "genre"
 * features drawn uniformly. k = 1
 * is the identity model, which the library guarantees is the model without
 * features bit for bit.
 *
 * Per repeat the models take turns (the load of a shared machine weighs on
 * all alike), each twice from its fresh tables (wl_model_write, outside the
 * timing): the representations alone (wl_model_read_representations of the
 * item biases, which computes every representation of both sides first),
 * then the step, whose representations are stale again after the write.
 * Checks: every repeat's result equals the first bit for bit; each model's
 * result and tables after the step are the C reference's (ref_feature_step,
 * once, outside the timing) to float rounding; k = 1's result and tables
 * after a step are the baseline's bit for bit.
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

#define SAMPLE_KEY 1u

typedef struct feature_run {
    uint32_t per_row; /* features per item row; 0: the baseline, without features */
    wl_model_options o;
    wl_model *m;
    uint64_t *indptr; /* the item feature matrix; NULL for the baseline */
    int32_t *features;
    float *weights;
    float *U, *V, *b; /* the fresh tables, written back before every timed call */
    double *times, *scans, *updates, *walls, *reps;
    wl_step_result first; /* the first repeat's result; every other must equal it */
    double seconds, scan_seconds, update_seconds, wall_seconds, rep_seconds; /* medians */
    int check_ok;
    int identical; /* k = 1: -1 not checked, 0 or 1 */
} feature_run;

/* ------------------------------------------------------------ the models */

/* Item x's features: x, then k - 1 distinct genres (feature rows items + g) ascending, each of weight 1/k. */
static void make_item_features(feature_run *f, uint32_t items, uint32_t k)
{
    f->indptr = cli_alloc(((size_t)items + 1) * sizeof *f->indptr);
    f->features = cli_alloc((size_t)items * k * sizeof *f->features);
    f->weights = cli_alloc((size_t)items * k * sizeof *f->weights);
    ref_rng rng;
    ref_rng_seed(&rng, 0x47454E5245ull + k);
    f->indptr[0] = 0;
    for (uint32_t x = 0; x < items; ++x) {
        int pool[FEATURE_GENRES], chosen[FEATURE_GENRES] = {0};
        for (int g = 0; g < FEATURE_GENRES; ++g)
            pool[g] = g;
        for (uint32_t j = 0; j + 1 < k; ++j) { /* a partial Fisher-Yates shuffle: k - 1 distinct genres */
            const uint32_t pick = j + (uint32_t)(ref_rng_next(&rng) % (FEATURE_GENRES - j));
            const int g = pool[pick];
            pool[pick] = pool[j];
            pool[j] = g;
            chosen[g] = 1;
        }
        int32_t *row = f->features + (size_t)x * k;
        size_t n = 0;
        row[n++] = (int32_t)x;
        for (int g = 0; g < FEATURE_GENRES; ++g)
            if (chosen[g])
                row[n++] = (int32_t)(items + (uint32_t)g);
        for (size_t j = 0; j < k; ++j)
            f->weights[(size_t)x * k + j] = 1.0f / (float)k;
        f->indptr[x + 1] = f->indptr[x] + k;
    }
}

static void open_run(const settings *s, device *d, uint32_t per_row, feature_run *f)
{
    memset(f, 0, sizeof *f);
    f->per_row = per_row;
    f->identical = -1;
    f->check_ok = 1;
    wl_model_options_default(&f->o, s->users, s->items, s->dim);
    if (per_row) {
        f->o.num_user_features = s->users;
        f->o.num_item_features = s->items + (per_row > 1 ? FEATURE_GENRES : 0);
    }
    cli_check_wl(wl_model_create(d->wl, &f->o, &f->m), d->wl);
    if (per_row) {
        make_item_features(f, s->items, per_row);
        cli_check_wl(wl_model_set_features(f->m, WL_TABLE_ITEMS, f->indptr, f->features, f->weights), d->wl);
    }
    const size_t ur = per_row ? f->o.num_user_features : s->users, vr = per_row ? f->o.num_item_features : s->items;
    f->U = cli_alloc(ur * s->dim * sizeof *f->U);
    f->V = cli_alloc(vr * s->dim * sizeof *f->V);
    f->b = cli_alloc(vr * sizeof *f->b);
    cli_check_wl(wl_model_read(f->m, WL_TABLE_USERS, f->U), d->wl);
    cli_check_wl(wl_model_read(f->m, WL_TABLE_ITEMS, f->V), d->wl);
    cli_check_wl(wl_model_read(f->m, WL_TABLE_ITEM_BIAS, f->b), d->wl);
    const size_t n = (size_t)s->repeat;
    f->times = cli_alloc(n * sizeof(double)), f->scans = cli_alloc(n * sizeof(double));
    f->updates = cli_alloc(n * sizeof(double)), f->walls = cli_alloc(n * sizeof(double));
    f->reps = cli_alloc(n * sizeof(double));
}

static void close_run(feature_run *f)
{
    wl_model_destroy(f->m);
    free(f->indptr), free(f->features), free(f->weights), free(f->U), free(f->V), free(f->b);
    free(f->times), free(f->scans), free(f->updates), free(f->walls), free(f->reps);
}

/* The model back to its fresh tables (and Adagrad's state to 1; the representations are stale). */
static void restore(device *d, const feature_run *f)
{
    cli_check_wl(wl_model_write(f->m, WL_TABLE_USERS, f->U), d->wl);
    cli_check_wl(wl_model_write(f->m, WL_TABLE_ITEMS, f->V), d->wl);
    cli_check_wl(wl_model_write(f->m, WL_TABLE_ITEM_BIAS, f->b), d->wl);
    cli_check_cl(clFinish(wl_context_queue(d->wl)), "clFinish");
}

/* Device time of wl_model_read_representations(item biases) from stale representations: all of them computed, then
 * num_items floats read (for the baseline: only the read). */
static double time_representations(device *d, wl_model *m, float *bias)
{
    cl_command_queue queue = wl_context_queue(d->wl);
    cl_event start, end;
    cli_check_cl(clEnqueueMarkerWithWaitList(queue, 0, NULL, &start), "clEnqueueMarkerWithWaitList");
    cli_check_wl(wl_model_read_representations(m, WL_TABLE_ITEM_BIAS, bias), d->wl); /* blocks */
    cli_check_cl(clEnqueueMarkerWithWaitList(queue, 0, NULL, &end), "clEnqueueMarkerWithWaitList");
    cli_check_cl(clWaitForEvents(1, &end), "clWaitForEvents");
    const double seconds = span(profile(start, CL_PROFILING_COMMAND_END), profile(end, CL_PROFILING_COMMAND_END));
    clReleaseEvent(start);
    clReleaseEvent(end);
    return seconds;
}

/* ------------------------------------------------------------ checks */

/* Whether n floats agree to the test suite's tolerance for tables (1e-5 relative, 1e-6 absolute). */
static int close_floats(const float *got, const float *want, size_t n)
{
    for (size_t k = 0; k < n; ++k)
        if (!(fabs((double)got[k] - (double)want[k]) <= 1e-6 + 1e-5 * fabs((double)want[k])))
            return 0;
    return 1;
}

/* Whether the model's step (result r, its tables now those after the step) is the C reference's (ref_feature_step)
 * from the run's fresh tables on the same batch: offenders and scores exactly, the loss and the tables (feature rows,
 * so the feature scatter too) to float rounding. */
static int reference_check(const settings *s, device *d, const feature_run *f, const wl_loss_options *lo,
                           const int32_t *users, const int32_t *positives, const int32_t *cands,
                           const wl_step_result *r)
{
    wl_model_options to = f->o; /* the reference holds the tables: as many rows as the feature tables */
    to.num_users = f->per_row ? f->o.num_user_features : s->users;
    to.num_items = f->per_row ? f->o.num_item_features : s->items;
    to.num_user_features = to.num_item_features = 0;
    ref_model rm;
    ref_model_create(&rm, &to);
    memcpy(rm.U, f->U, (size_t)to.num_users * s->dim * sizeof *rm.U);
    memcpy(rm.V, f->V, (size_t)to.num_items * s->dim * sizeof *rm.V);
    memcpy(rm.b, f->b, (size_t)to.num_items * sizeof *rm.b);
    const ref_features uf = {NULL, NULL, NULL}; /* users: identity (or none) */
    const ref_features vf = {f->indptr, f->features, f->weights};
    wl_step_result rc;
    ref_feature_step(&rm, s->users, s->items, &uf, &vf, lo, s->model_rows, users, positives, s->candidates, cands, NULL,
                     &rc, NULL);
    int ok = same_result(r, &rc);
    const size_t sizes[3] = {(size_t)to.num_users * s->dim, (size_t)to.num_items * s->dim, to.num_items};
    const float *want[3] = {rm.U, rm.V, rm.b};
    for (int t = 0; t < 3 && ok; ++t) {
        float *got = cli_alloc(sizes[t] * sizeof *got);
        cli_check_wl(wl_model_read(f->m, (wl_table)t, got), d->wl);
        ok = close_floats(got, want[t], sizes[t]);
        free(got);
    }
    ref_model_free(&rm);
    return ok;
}

/* Whether two models' tables (of the same shape) are equal bit for bit. */
static int same_tables(const settings *s, device *d, const feature_run *a, const feature_run *b)
{
    const size_t sizes[3] = {(size_t)s->users * s->dim, (size_t)s->items * s->dim, s->items};
    int same = 1;
    for (int t = 0; t < 3 && same; ++t) {
        float *x = cli_alloc(sizes[t] * sizeof *x), *y = cli_alloc(sizes[t] * sizeof *y);
        cli_check_wl(wl_model_read(a->m, (wl_table)t, x), d->wl);
        cli_check_wl(wl_model_read(b->m, (wl_table)t, y), d->wl);
        same = memcmp(x, y, sizes[t] * sizeof *x) == 0;
        free(x), free(y);
    }
    return same;
}

/* ------------------------------------------------------------ output */

static double ratio(double x, double base) { return base > 0 ? x / base : 0.0; }

static const char *check_text(const feature_run *f)
{
    return !f->check_ok ? "MISMATCH" : f->identical == 0 ? "NOT-IDENTICAL" : f->identical == 1 ? "ok, =none" : "ok";
}

static void print_table(const settings *s, const device *d, const feature_run *f, int count)
{
    printf("device: %s (%s)\n", wl_context_device_name(d->wl), d->platform);
    printf("model step with item features: %u users (identity features), %u items, dim %u, Adagrad; %zu rows x %zu\n"
           "sampled candidates; item x has k features of weight 1/k: x and k - 1 of %d shared genres\n",
           s->users, s->items, s->dim, s->model_rows, s->candidates, FEATURE_GENRES);
    printf("ms: device time of wl_model_step_cl (ids on the device), split into scan (the representations, the scan\n"
           "and its scatter) and update (model_update.cl); rep: the representations alone; cl wall: to its result on\n"
           "the host; median of %d after %d warm-up, the models taking turns. x none: over the model without\n"
           "features in this run. Tables restored before every step, outside the timing. check: the C reference's\n"
           "result and tables after the step; =none: k = 1's result and tables after a step equal the baseline's bit "
           "for bit.\n\n",
           s->repeat, s->warmup);
    printf("%-8s %9s %9s %9s %9s %9s %7s %7s %7s %s\n", "features", "ms", "rep ms", "scan ms", "upd ms", "cl wall",
           "x none", "x wall", "sc/row", "check");
    for (int i = 0; i < count; ++i) {
        char name[16];
        snprintf(name, sizeof name, f[i].per_row ? "%u" : "none", f[i].per_row);
        printf("%-8s %9.3f %9.3f %9.3f %9.3f %9.3f %7.3f %7.3f %7.1f %s\n", name, f[i].seconds * 1e3,
               f[i].rep_seconds * 1e3, f[i].scan_seconds * 1e3, f[i].update_seconds * 1e3, f[i].wall_seconds * 1e3,
               ratio(f[i].seconds, f[0].seconds), ratio(f[i].wall_seconds, f[0].wall_seconds),
               (double)f[i].first.scores / (double)s->model_rows, check_text(&f[i]));
    }
}

static void print_json(const settings *s, const device *d, const feature_run *f, int count)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "benchmark", "model step with features");
    cJSON_AddStringToObject(doc, "device", wl_context_device_name(d->wl));
    cJSON_AddStringToObject(doc, "platform", d->platform);
    cJSON_AddNumberToObject(doc, "users", s->users);
    cJSON_AddNumberToObject(doc, "items", s->items);
    cJSON_AddNumberToObject(doc, "dim", s->dim);
    cJSON_AddNumberToObject(doc, "rows", (double)s->model_rows);
    cJSON_AddNumberToObject(doc, "candidates", (double)s->candidates);
    cJSON_AddStringToObject(doc, "candidates_mode", "sampled");
    cJSON_AddNumberToObject(doc, "genres", FEATURE_GENRES);
    cJSON_AddStringToObject(doc, "optimizer", "adagrad");
    cJSON_AddNumberToObject(doc, "repeat", s->repeat);
    cJSON_AddNumberToObject(doc, "warmup", s->warmup);
    cJSON_AddStringToObject(doc, "features",
                            "baseline: none; otherwise users their identity features and item x k features of weight "
                            "1/k: x and k - 1 distinct ones of the shared genres");
    cJSON_AddStringToObject(doc, "timing",
                            "median device time of wl_model_step_cl (ids on the device), end of a marker enqueued "
                            "before the call to the end of its done event (the update); scan_seconds: to the start "
                            "of the update (the representations, the scan and its scatter); update_seconds: "
                            "model_update.cl; representation_seconds: wl_model_read_representations of the item "
                            "biases from stale representations, timed apart; the models take turns in every repeat");
    cJSON *results = cJSON_AddArrayToObject(doc, "results");
    for (int i = 0; i < count; ++i) {
        const feature_run *x = &f[i];
        cJSON *row = cJSON_CreateObject();
        cJSON_AddItemToArray(results, row);
        cJSON_AddBoolToObject(row, "baseline", x->per_row == 0);
        cJSON_AddNumberToObject(row, "item_features_per_row", x->per_row);
        cJSON_AddNumberToObject(row, "user_features", x->o.num_user_features);
        cJSON_AddNumberToObject(row, "item_features", x->o.num_item_features);
        cli_json_add_number(row, "seconds", "%.9g", x->seconds);
        cli_json_add_number(row, "representation_seconds", "%.9g", x->rep_seconds);
        cli_json_add_number(row, "scan_seconds", "%.9g", x->scan_seconds);
        cli_json_add_number(row, "update_seconds", "%.9g", x->update_seconds);
        cli_json_add_number(row, "wall_seconds", "%.9g", x->wall_seconds);
        cli_json_add_number(row, "ratio_to_baseline", "%.4f", ratio(x->seconds, f[0].seconds));
        cli_json_add_number(row, "wall_ratio_to_baseline", "%.4f", ratio(x->wall_seconds, f[0].wall_seconds));
        cJSON_AddNumberToObject(row, "scores", (double)x->first.scores);
        cJSON_AddNumberToObject(row, "offenders", (double)x->first.offenders);
        cli_json_add_number(row, "loss", "%.9g", x->first.loss);
        cJSON_AddBoolToObject(row, "check", x->check_ok);
        if (x->identical >= 0)
            cJSON_AddBoolToObject(row, "identical_to_baseline", x->identical);
    }
    cli_json_print(doc);
}

/* ------------------------------------------------------------ the run */

int run_features(const settings *s)
{
    device d;
    open_device(s->device, &d);
    const int count = s->feature_runs + 1;
    feature_run *f = cli_alloc((size_t)count * sizeof *f);
    for (int i = 0; i < count; ++i)
        open_run(s, &d, i ? s->features[i - 1] : 0, &f[i]);
    wl_loss_options lo;
    wl_loss_options_default(&lo, s->items);

    /* the batch, the same for every model; the C steps take the sampled candidates expanded per row */
    const size_t rows = s->model_rows, negatives = s->candidates;
    ref_rng rng;
    ref_rng_seed(&rng, rows * 131 + negatives * 7 + CAND_SAMPLED);
    int32_t *users = cli_alloc(rows * sizeof *users), *positives = cli_alloc(rows * sizeof *positives);
    for (size_t b = 0; b < rows; ++b) {
        users[b] = (int32_t)(ref_rng_next(&rng) % s->users);
        positives[b] = (int32_t)(ref_rng_next(&rng) % s->items);
    }
    int32_t *cands = cli_alloc(rows * negatives * sizeof *cands);
    for (size_t b = 0; b < rows; ++b)
        for (size_t j = 0; j < negatives; ++j)
            cands[b * negatives + j] = ref_sample(f[0].o.seed, SAMPLE_KEY, b, j, s->items, positives[b]);
    cl_mem users_buf = new_buffer(&d, rows * sizeof(int32_t), users);
    cl_mem positives_buf = new_buffer(&d, rows * sizeof(int32_t), positives);
    const wl_batch_cl bcl = {rows, 0, users_buf, positives_buf, negatives, NULL, 0, SAMPLE_KEY, NULL};
    float *bias = cli_alloc((size_t)s->items * sizeof *bias);

    for (int i = -s->warmup; i < s->repeat; ++i) {
        for (int k = 0; k < count; ++k) {
            feature_run *x = &f[k];
            restore(&d, x);
            const double rep = time_representations(&d, x->m, bias);
            restore(&d, x);
            wl_step_result r;
            step_times t;
            time_step_cl(&d, x->m, &lo, &bcl, &r, &t);
            if (i == -s->warmup)
                x->first = r;
            else if (r.loss != x->first.loss || r.offenders != x->first.offenders || r.scores != x->first.scores)
                x->check_ok = 0; /* the same step from the same tables: the same bits */
            if (i >= 0) {
                x->times[i] = t.seconds, x->scans[i] = t.scan_seconds, x->updates[i] = t.update_seconds;
                x->walls[i] = t.wall_seconds, x->reps[i] = rep;
            }
        }
    }
    int failed = 0;
    for (int k = 0; k < count; ++k) {
        feature_run *x = &f[k];
        x->seconds = cli_median(x->times, s->repeat);
        x->scan_seconds = cli_median(x->scans, s->repeat);
        x->update_seconds = cli_median(x->updates, s->repeat);
        x->wall_seconds = cli_median(x->walls, s->repeat);
        x->rep_seconds = cli_median(x->reps, s->repeat);
        x->check_ok &= reference_check(s, &d, x, &lo, users, positives, cands, &x->first);
        if (x->per_row == 1) /* both models' tables are those after the last step, from the same fresh tables */
            x->identical = x->first.loss == f[0].first.loss && x->first.offenders == f[0].first.offenders &&
                           x->first.scores == f[0].first.scores && same_tables(s, &d, x, &f[0]);
        failed |= !x->check_ok || x->identical == 0;
    }
    if (s->json)
        print_json(s, &d, f, count);
    else
        print_table(s, &d, f, count);
    if (failed)
        fprintf(stderr,
                "%s: a step's result or tables differ from the C step's, its result between repeats, or the "
                "identity model's result or tables from the model without features\n",
                cli_program);

    free(users), free(positives), free(cands), free(bias);
    clReleaseMemObject(users_buf);
    clReleaseMemObject(positives_buf);
    for (int k = 0; k < count; ++k)
        close_run(&f[k]);
    free(f);
    wl_context_destroy(d.wl);
    return failed ? 1 : 0;
}
