/*
 * warploss-train's model (train_run.h): created from the options or loaded
 * with --load and checked against the data and the flags, the rank's users
 * kept under mpirun, the known positives and the evaluation's pairs set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "train_run.h"

int train_fail_wl(run *r, wl_status st, const char *what)
{
    const char *detail = wl_context_last_error(r->c);
    char buf[512];
    snprintf(buf, sizeof buf, "%s (%s)", detail && *detail ? detail : "", wl_status_string(st));
    return train_fail(what, buf);
}

/* The model file's options against the flags: the file wins; an explicit different value is an error. */
int train_check_loaded(run *r)
{
    settings *s = &r->s;
    const wl_model_options *o = &r->mo;
    char buf[256];
    if ((s->given[OPT_DIM] && s->dim != o->dim) || (s->given[OPT_OPTIMIZER] && s->optimizer != o->optimizer) ||
        (s->given[OPT_LR] && (float)s->lr != o->learning_rate) ||
        (s->given[OPT_L2] && ((float)s->l2 != o->l2_users || (float)s->l2 != o->l2_items)) ||
        (s->given[OPT_SEED] && s->seed != o->seed)) {
        snprintf(buf, sizeof buf, "the file has --dim %u --optimizer %s --lr %g --l2 %g --seed %llu", o->dim,
                 train_optimizer_name(o->optimizer), (double)o->learning_rate, (double)o->l2_users,
                 (unsigned long long)o->seed);
        fprintf(stderr, "%s: %s: options conflict with the model file (%s); leave them out to resume\n", cli_program,
                s->load, buf);
        return EXIT_USAGE;
    }
    s->seed = o->seed;
    s->dim = o->dim;
    s->optimizer = o->optimizer;
    s->lr = o->learning_rate;
    s->l2 = o->l2_users;
    return 0;
}

/*
 * A side's ids from the model file against the data's: the same, or, when
 * may_grow (a side with features whose files this run does not give), the
 * data's followed by the ids only the feature files had: the data's map
 * grows by those. 1 if they fit.
 */
static int fit_ids(int64_t **ids, uint32_t *n, const int64_t *loaded, uint32_t num_loaded, int may_grow)
{
    if (num_loaded < *n || memcmp(*ids, loaded, *n * sizeof(int64_t)))
        return 0;
    if (num_loaded == *n)
        return 1;
    if (!may_grow)
        return 0;
    int64_t *grown = cli_alloc(num_loaded * sizeof *grown);
    memcpy(grown, loaded, num_loaded * sizeof *grown);
    free(*ids);
    *ids = grown;
    *n = num_loaded;
    return 1;
}

static int ids_match(run *r)
{
    return fit_ids(&r->d.user_ids, &r->d.num_users, r->loaded.user_ids, r->mo.num_users,
                   r->mo.num_user_features && !r->f.has_users) &&
           fit_ids(&r->d.item_ids, &r->d.num_items, r->loaded.item_ids, r->mo.num_items,
                   r->mo.num_item_features && !r->f.has_items);
}

/*
 * --load with a side's feature files: the matrix they give must be the
 * model's (its names and its weights); without them the model's own matrix
 * and the file's names are used. 0 or EXIT_FAIL after a message.
 */
static int check_loaded_features(run *r, wl_table side, int given, const tf_matrix *mx, const train_names *loaded,
                                 train_names *use)
{
    const char *what = side == WL_TABLE_USERS ? "user" : "item";
    const uint32_t features = side == WL_TABLE_USERS ? r->mo.num_user_features : r->mo.num_item_features;
    char buf[512];
    if (!given) {
        *use = *loaded;
        return 0;
    }
    if (!features) {
        snprintf(buf, sizeof buf, "the model has no %s features; leave out --%s-features", what, what);
        return train_fail(r->s.load, buf);
    }
    int same = mx->num_features == features && mx->identity == (uint32_t)loaded->identity;
    for (uint32_t k = 0; same && k < features; ++k)
        same = !strcmp(mx->names[k], loaded->names[k]);
    const uint64_t *indptr;
    const int32_t *idx;
    const float *w;
    if (same) {
        const uint64_t nnz = mx->indptr[mx->rows];
        same = wl_model_get_features(r->m, side, &indptr, &idx, &w) == WL_SUCCESS &&
               !memcmp(indptr, mx->indptr, ((size_t)mx->rows + 1) * sizeof *indptr) &&
               !memcmp(idx, mx->features, nnz * sizeof *idx) && !memcmp(w, mx->weights, nnz * sizeof *w);
    }
    if (!same) {
        snprintf(buf, sizeof buf,
                 "the %s feature files give other features than the model's (%u features, the model %u); give the "
                 "same files and flags as the run that saved it, or none",
                 what, mx->num_features, features);
        return train_fail(r->s.load, buf);
    }
    *use = (train_names){mx->num_features, (int)mx->identity, mx->names};
    return 0;
}

int train_create_context(run *r)
{
    wl_context_options co;
    char spec[32];
    wl_context_options_default(&co);
    co.device = r->s.device ? r->s.device : ranks_device(&r->k, spec, sizeof spec);
    wl_status st = wl_context_create(&co, &r->c);
    return st == WL_SUCCESS ? 0 : train_fail_wl(r, st, "cannot create the OpenCL context");
}

/* --load: the model from the file (on a new context), its progress and ids. */
int train_load_model(run *r)
{
    void *app = NULL;
    size_t app_size = 0;
    wl_status st = wl_model_load(r->c, r->s.load, &r->m, &app, &app_size);
    if (st != WL_SUCCESS)
        return train_fail("cannot load the model", wl_context_last_error(r->c));
    r->have_loaded = 1;
    wl_model_get_options(r->m, &r->mo);
    char err[512];
    const int bad = train_read_app_bytes(r->s.load, app, app_size, r->mo.num_users, r->mo.num_items,
                                         r->mo.num_user_features, r->mo.num_item_features, &r->loaded, err, sizeof err);
    wl_free(app);
    if (bad)
        return train_fail("cannot load the model", err);
    r->epochs_done = r->loaded.epochs_done;
    r->batches_done = r->loaded.batches_done;
    return 0;
}

/* N > 1 ranks: keep this rank's users of the data and of the model. */
static int localize(run *r)
{
    char err[512];
    if (r->have_loaded && r->batches_done) {
        snprintf(err, sizeof err,
                 "it was saved in the middle of epoch %llu: finish that epoch with one process (--epochs 1), or "
                 "load a model saved at the end of an epoch",
                 (unsigned long long)r->epochs_done + 1);
        return train_fail(r->s.load, err);
    }
    if (r->mo.num_user_features || r->mo.num_item_features)
        return train_fail(r->s.load, "a model with features: one process only for now (run without mpirun)");
    if (r->d.num_users < (uint32_t)r->k.size) {
        snprintf(err, sizeof err, "%u users for %d ranks: every rank needs a user", r->d.num_users, r->k.size);
        return train_fail("too many ranks", err);
    }
    r->global = r->d;
    ranks_partition(&r->k, &r->global, &r->d);
    /* Every rank keeps its own users' pairs alone; of every user only the ids (a save gathers the pairs). */
    td_dataset *g = &r->global;
    free(g->train_users);
    free(g->train_items);
    free(g->train_weights);
    free(g->test_users);
    free(g->test_items);
    free(g->cold_users);
    free(g->cold_items);
    g->train_users = g->train_items = g->test_users = g->test_items = g->cold_users = g->cold_items = NULL;
    g->train_weights = NULL;
    g->train_count = g->test_count = g->cold_count = 0;
    wl_status st = ranks_localize(&r->k, r->c, &r->m, r->d.num_users, err, sizeof err);
    return st == WL_SUCCESS ? 0 : train_fail("cannot keep the rank's users", err);
}

int train_setup_model(run *r)
{
    settings *s = &r->s;
    wl_status st;
    if (r->have_loaded) {
        if (!ids_match(r)) {
            char buf[256];
            snprintf(buf, sizeof buf, "it has %u users and %u items, the data %u and %u (or other ids)",
                     r->mo.num_users, r->mo.num_items, r->d.num_users, r->d.num_items);
            fprintf(stderr, "%s: %s does not fit the data: %s; give the same --data, --min-rating and split\n",
                    cli_program, s->load, buf);
            return EXIT_FAIL;
        }
        if (check_loaded_features(r, WL_TABLE_USERS, r->f.has_users, &r->f.users, &r->loaded.user_names,
                                  &r->user_names) ||
            check_loaded_features(r, WL_TABLE_ITEMS, r->f.has_items, &r->f.items, &r->loaded.item_names,
                                  &r->item_names))
            return EXIT_FAIL;
    } else {
        if (!r->c && train_create_context(r))
            return EXIT_FAIL;
        wl_model_options_default(&r->mo, r->d.num_users, r->d.num_items, s->dim);
        r->mo.seed = s->seed;
        r->mo.optimizer = s->optimizer;
        r->mo.learning_rate = (float)s->lr;
        r->mo.l2_users = r->mo.l2_items = (float)s->l2;
        r->mo.num_user_features = r->f.has_users ? r->f.users.num_features : 0;
        r->mo.num_item_features = r->f.has_items ? r->f.items.num_features : 0;
        st = wl_model_create(r->c, &r->mo, &r->m);
        if (st != WL_SUCCESS)
            return train_fail_wl(r, st, "cannot create the model");
        const tf_matrix *sides[2] = {r->f.has_users ? &r->f.users : NULL, r->f.has_items ? &r->f.items : NULL};
        train_names *names[2] = {&r->user_names, &r->item_names};
        for (int k = 0; k < 2; ++k) {
            const tf_matrix *mx = sides[k];
            if (!mx)
                continue;
            st = wl_model_set_features(r->m, k ? WL_TABLE_ITEMS : WL_TABLE_USERS, mx->indptr, mx->features,
                                       mx->weights);
            if (st != WL_SUCCESS)
                return train_fail_wl(r, st, "cannot set the feature matrix");
            *names[k] = (train_names){mx->num_features, (int)mx->identity, mx->names};
        }
    }
    if (r->k.size > 1 && localize(r))
        return EXIT_FAIL;
    r->total_pairs = r->k.size > 1 ? ranks_sum(&r->k, r->d.train_count) : r->d.train_count;
    /* The training pairs are the known positives (sorted by user, item). */
    uint64_t *indptr = calloc((size_t)r->d.num_users + 1, sizeof *indptr);
    if (!indptr)
        return train_fail("out of memory", NULL);
    for (size_t j = 0; j < r->d.train_count; ++j)
        ++indptr[r->d.train_users[j] + 1];
    for (uint32_t u = 0; u < r->d.num_users; ++u)
        indptr[u + 1] += indptr[u];
    st = wl_model_set_known(r->m, indptr, r->d.train_items);
    free(indptr);
    if (st != WL_SUCCESS)
        return train_fail_wl(r, st, "cannot set the known positives");
    /* The test pairs (sorted by user, item) as CSR, for wl_model_evaluate. */
    r->test_ptr = calloc((size_t)r->d.num_users + 1, sizeof *r->test_ptr);
    if (!r->test_ptr)
        return train_fail("out of memory", NULL);
    for (size_t j = 0; j < r->d.test_count; ++j)
        ++r->test_ptr[r->d.test_users[j] + 1];
    for (uint32_t u = 0; u < r->d.num_users; ++u)
        r->test_ptr[u + 1] += r->test_ptr[u];
    if (r->d.num_cold_items) {
        /* --cold-items: the cold pairs as CSR, and which items the warm and the cold pairs are ranked among. */
        r->cold_ptr = cli_alloc(((size_t)r->d.num_users + 1) * sizeof *r->cold_ptr);
        memset(r->cold_ptr, 0, ((size_t)r->d.num_users + 1) * sizeof *r->cold_ptr);
        for (size_t j = 0; j < r->d.cold_count; ++j)
            ++r->cold_ptr[r->d.cold_users[j] + 1];
        for (uint32_t u = 0; u < r->d.num_users; ++u)
            r->cold_ptr[u + 1] += r->cold_ptr[u];
        r->warm_mask = cli_alloc(r->d.num_items);
        r->cold_mask = cli_alloc(r->d.num_items);
        for (uint32_t i = 0; i < r->d.num_items; ++i) {
            r->warm_mask[i] = i < r->d.cold_first;
            r->cold_mask[i] = i >= r->d.cold_first && i - r->d.cold_first < r->d.num_cold_items;
        }
    }
    if (!s->quiet) {
        printf("model: dim %u, %s, lr %g, l2 %g, %u negatives%s, batch %u, seed %llu", r->mo.dim,
               train_optimizer_name(r->mo.optimizer), (double)r->mo.learning_rate, (double)r->mo.l2_users, s->negatives,
               s->shared ? " (shared)" : "", s->batch, (unsigned long long)r->mo.seed);
        if (r->mo.num_user_features)
            printf(", %u user features", r->mo.num_user_features);
        if (r->mo.num_item_features)
            printf(", %u item features", r->mo.num_item_features);
        printf("; device %s\n", wl_context_device_name(r->c));
        if (r->k.size > 1)
            printf("ranks: %d, users by dense index mod %d (rank 0: %u users, %zu pairs), items combined every %u "
                   "steps (%s of the deltas)\n",
                   r->k.size, r->k.size, r->d.num_users, r->d.train_count, s->sync_every,
                   s->sync_mean ? "mean" : "sum");
    }
    if (!s->quiet && r->have_loaded)
        printf("resumed %s: %llu epochs done%s\n", s->load, (unsigned long long)r->epochs_done,
               r->batches_done ? " (and part of the next)" : "");
    return 0;
}
