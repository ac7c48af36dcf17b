/*
 * The hybrid model (README.md, "Features"): each side's feature matrix (a
 * user or an item is the weighted sum of its features' rows of the table),
 * its host and device copies, and the representations p_u, q_i, b_i that the
 * step and the catalogue score with, computed on the device
 * (cl/model_features.cl) whenever a step, a write or a new matrix left them
 * behind. A side without features (num_*_features 0) has no matrix: its
 * table is its own representation, today's model; so is the table of a side
 * whose matrix is the identity (row r is feature r, weight 1), which then
 * costs nothing.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static const char *const side_names[2] = {"user", "item"};

wl_status model_check_features(wl_context *c, size_t rows, uint32_t num_features, const uint64_t *indptr,
                               const int32_t *features, const float *weights, const char *what)
{
    if (!indptr)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s: indptr is NULL", what);
    if (indptr[0] != 0)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s: indptr[0] = %llu; it must be 0", what,
                       (unsigned long long)indptr[0]);
    for (size_t r = 0; r < rows; ++r)
        if (indptr[r + 1] < indptr[r])
            return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s: indptr[%zu] = %llu is less than indptr[%zu] = %llu", what,
                           r + 1, (unsigned long long)indptr[r + 1], r, (unsigned long long)indptr[r]);
    const uint64_t total = indptr[rows];
    if (total && !features)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s: features is NULL but indptr[%zu] = %llu", what, rows,
                       (unsigned long long)total);
    if (total > c->max_alloc / sizeof(float) || total > SIZE_MAX / sizeof(uint64_t))
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY,
                       "%s: %llu entries need more than the device's largest allocation (%llu bytes)", what,
                       (unsigned long long)total, (unsigned long long)c->max_alloc);
    for (size_t r = 0; r < rows; ++r) {
        for (uint64_t k = indptr[r]; k < indptr[r + 1]; ++k) {
            if (features[k] < 0 || (uint32_t)features[k] >= num_features)
                return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s: features[%llu] = %d is out of range [0, %u)", what,
                               (unsigned long long)k, (int)features[k], (unsigned)num_features);
            if (k > indptr[r] && features[k] <= features[k - 1])
                return wl_fail(c, WL_ERROR_INVALID_ARGUMENT,
                               "%s: features[%llu] = %d is not greater than features[%llu] = %d (row %zu's "
                               "features must be strictly ascending)",
                               what, (unsigned long long)k, (int)features[k], (unsigned long long)k - 1,
                               (int)features[k - 1], r);
            if (weights && !isfinite(weights[k]))
                return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s: weights[%llu] is %g; weights must be finite", what,
                               (unsigned long long)k, (double)weights[k]);
        }
    }
    return WL_SUCCESS;
}

static void features_free(struct model_features *f)
{
    free(f->indptr);
    free(f->features);
    free(f->weights);
    model_release(&f->ptr);
    model_release(&f->idx);
    model_release(&f->wts);
    memset(f, 0, sizeof *f);
}

void model_features_release(wl_model *m)
{
    for (int s = 0; s < 2; ++s)
        features_free(&m->feat[s]);
    for (int t = 0; t < 3; ++t)
        model_release(&m->rep[t]);
}

/* A matrix of `rows` rows (weights NULL: all 1), host and device copies, in
 * *f; on failure *f is empty and the error set. */
static wl_status features_make(wl_model *m, size_t rows, const uint64_t *indptr, const int32_t *features,
                               const float *weights, struct model_features *f)
{
    wl_context *c = m->c;
    const size_t total = (size_t)indptr[rows];
    memset(f, 0, sizeof *f);
    f->indptr = malloc((rows + 1) * sizeof *f->indptr);
    f->features = malloc((total ? total : 1) * sizeof *f->features);
    f->weights = malloc((total ? total : 1) * sizeof *f->weights);
    if (!f->indptr || !f->features || !f->weights) {
        features_free(f);
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "out of host memory for a feature matrix of %zu entries", total);
    }
    memcpy(f->indptr, indptr, (rows + 1) * sizeof *f->indptr);
    if (total)
        memcpy(f->features, features, total * sizeof *f->features);
    for (size_t k = 0; k < total; ++k)
        f->weights[k] = weights ? weights[k] : 1.0f;
    f->identity = 1;
    for (size_t r = 0; r < rows; ++r) {
        if (indptr[r + 1] - indptr[r] > f->widest)
            f->widest = (uint32_t)(indptr[r + 1] - indptr[r]);
        f->identity &= indptr[r + 1] - indptr[r] == 1 && f->features[indptr[r]] == (int32_t)r &&
                       f->weights[indptr[r]] == 1.0f;
    }
    wl_status st = model_buffer(c, (rows + 1) * sizeof(cl_ulong), f->indptr, "a feature matrix's indptr", &f->ptr);
    if (st == WL_SUCCESS && total)
        st = model_buffer(c, total * sizeof(cl_int), f->features, "a feature matrix's features", &f->idx);
    if (st == WL_SUCCESS && total)
        st = model_buffer(c, total * sizeof(cl_float), f->weights, "a feature matrix's weights", &f->wts);
    if (st != WL_SUCCESS)
        features_free(f);
    return st;
}

wl_status model_features_init(wl_model *m)
{
    const uint32_t counts[2] = {m->o.num_user_features, m->o.num_item_features};
    wl_status st = WL_SUCCESS;
    for (int s = 0; s < 2 && st == WL_SUCCESS; ++s) {
        if (!counts[s])
            continue;
        const wl_table side = s ? WL_TABLE_ITEMS : WL_TABLE_USERS;
        const size_t rows = model_entities(m, side);
        /* the identity where it fits: row r has feature r */
        uint64_t *indptr = malloc((rows + 1) * sizeof *indptr);
        int32_t *features = malloc(rows * sizeof *features);
        if (!indptr || !features) {
            free(indptr);
            free(features);
            return wl_fail(m->c, WL_ERROR_OUT_OF_MEMORY, "out of host memory for the %s feature matrix", side_names[s]);
        }
        indptr[0] = 0;
        for (size_t r = 0; r < rows; ++r) {
            const int fits = r < counts[s];
            if (fits)
                features[indptr[r]] = (int32_t)r;
            indptr[r + 1] = indptr[r] + (uint64_t)fits;
        }
        st = features_make(m, rows, indptr, features, NULL, &m->feat[s]);
        free(indptr);
        free(features);
        if (st == WL_SUCCESS)
            st = model_buffer(m->c, rows * m->o.dim * sizeof(float), NULL,
                              s ? "the item representations" : "the user representations", &m->rep[s]);
        if (st == WL_SUCCESS && s)
            st = model_buffer(m->c, rows * sizeof(float), NULL, "the item biases' representations", &m->rep[2]);
    }
    m->rep_stale = 1;
    return st;
}

/* The side's index (0 users, 1 items), or -1 with the error set. */
static int check_side(wl_model *m, wl_table side)
{
    if (side != WL_TABLE_USERS && side != WL_TABLE_ITEMS) {
        wl_fail(m->c, WL_ERROR_INVALID_ARGUMENT, "side is %d; use WL_TABLE_USERS or WL_TABLE_ITEMS", (int)side);
        return -1;
    }
    const int s = side == WL_TABLE_ITEMS;
    if (!m->feat[s].ptr) {
        wl_fail(m->c, WL_ERROR_INVALID_ARGUMENT,
                "the model has no %s features (num_%s_features is 0: each %s is its own row of the table)",
                side_names[s], side_names[s], side_names[s]);
        return -1;
    }
    return s;
}

wl_status wl_model_set_features(wl_model *m, wl_table side, const uint64_t *indptr, const int32_t *features,
                                const float *weights)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    const int s = check_side(m, side);
    if (s < 0)
        return WL_ERROR_INVALID_ARGUMENT;
    const size_t rows = model_entities(m, side);
    const uint32_t count = s ? m->o.num_item_features : m->o.num_user_features;
    wl_status st = model_check_features(m->c, rows, count, indptr, features, weights,
                                        s ? "the item feature matrix" : "the user feature matrix");
    if (st != WL_SUCCESS)
        return st;
    /* the new matrix first, so that a failure keeps the old one; commands
     * already queued keep the old buffers alive */
    struct model_features f;
    if ((st = features_make(m, rows, indptr, features, weights, &f)) != WL_SUCCESS)
        return st;
    features_free(&m->feat[s]);
    m->feat[s] = f;
    m->rep_stale = 1;
    return WL_SUCCESS;
}

wl_status wl_model_get_features(const wl_model *m, wl_table side, const uint64_t **indptr, const int32_t **features,
                                const float **weights)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    const int s = check_side((wl_model *)m, side);
    if (s < 0)
        return WL_ERROR_INVALID_ARGUMENT;
    if (!indptr || !features || !weights)
        return wl_fail(m->c, WL_ERROR_INVALID_ARGUMENT, "%s is NULL",
                       !indptr     ? "indptr"
                       : !features ? "features"
                                   : "weights");
    *indptr = m->feat[s].indptr;
    *features = m->feat[s].features;
    *weights = m->feat[s].weights;
    return WL_SUCCESS;
}

wl_status model_represent_rows(wl_chain *ch, wl_model *m, size_t rows, uint32_t dim, cl_mem ptr, cl_mem idx, cl_mem wts,
                               cl_mem table, cl_mem out)
{
    const cl_ulong rows64 = rows;
    const wl_arg args[] = {WL_ARG(rows64), WL_ARG(dim),   WL_ARG(ptr), WL_ARG(idx),
                           WL_ARG(wts),    WL_ARG(table), WL_ARG(out)};
    const wl_launch l = {WL_KERNEL_MODEL_REPRESENT, rows * ((dim + 7) / 8), 0, args, sizeof args / sizeof args[0]};
    (void)m;
    return wl_enqueue_kernel(ch, &l);
}

wl_status model_represent(wl_chain *ch, wl_model *m)
{
    if (!m->rep_stale)
        return WL_SUCCESS;
    wl_status st = WL_SUCCESS;
    for (int s = 0; s < 2 && st == WL_SUCCESS; ++s) {
        const struct model_features *f = &m->feat[s];
        if (!f->ptr || f->identity)
            continue; /* the table is the representation */
        const size_t rows = model_entities(m, s ? WL_TABLE_ITEMS : WL_TABLE_USERS);
        st = model_represent_rows(ch, m, rows, m->o.dim, f->ptr, f->idx, f->wts, m->table[s], m->rep[s]);
        if (st == WL_SUCCESS && s)
            st = model_represent_rows(ch, m, rows, 1, f->ptr, f->idx, f->wts, m->table[2], m->rep[2]);
    }
    if (st == WL_SUCCESS)
        m->rep_stale = 0;
    return st;
}

wl_status wl_model_read_representations(wl_model *m, wl_table t, float *out)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_context *c = m->c;
    if (t != WL_TABLE_USERS && t != WL_TABLE_ITEMS && t != WL_TABLE_ITEM_BIAS)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT,
                       "table is %d; use WL_TABLE_USERS, WL_TABLE_ITEMS or WL_TABLE_ITEM_BIAS", (int)t);
    if (!out)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "out is NULL");
    const size_t bytes = (size_t)model_entities(m, t) * (t == WL_TABLE_ITEM_BIAS ? 1u : m->o.dim) * sizeof(float);
    wl_chain ch;
    wl_status st = wl_chain_start(&ch, c, 0, NULL);
    if (st != WL_SUCCESS)
        return st;
    st = model_represent(&ch, m);
    if (st == WL_SUCCESS) {
        const cl_int err = clEnqueueReadBuffer(c->queue, model_rep(m, t), CL_TRUE, 0, bytes, out, ch.num_wait,
                                               ch.num_wait ? ch.wait : NULL, NULL);
        if (err != CL_SUCCESS)
            st = wl_fail_cl(c, err, "clEnqueueReadBuffer(model representations)");
    }
    if (st == WL_SUCCESS || ch.last)
        wl_chain_finish(&ch, NULL);
    wl_chain_end(&ch);
    return st;
}
