/*
 * The embedding model's catalogue queries: wl_model_recommend (and
 * wl_model_recommend_features, for users given as feature rows), wl_model_rank
 * and wl_model_evaluate (and wl_model_evaluate_among, over a subset of the
 * items). Each scores a block of users' representations against every item's
 * with CLBlast's SGEMM (src/blas.c) into one scratch buffer, then selects,
 * ranks or evaluates on the device (cl/model_catalogue.cl); only the results
 * come back.
 */
#include <stdlib.h>
#include <string.h>

#include "model.h"

/* Enqueue dot[r][x] = dot(p[users[offset + r]], q[x]) for r < n into scores
 * [n x num_items]: the representations if behind, the users gathered, then
 * one SGEMM against every item. */
static wl_status enqueue_catalogue_dots(wl_chain *ch, wl_model *m, size_t n, cl_mem users, size_t offset, cl_mem scores)
{
    cl_mem user_rows;
    wl_status st = wl_scratch(m->c, WL_SCRATCH_MODEL_USER_ROWS, n * m->o.dim * sizeof(float), "the block's user rows",
                              &user_rows);
    if (st == WL_SUCCESS)
        st = model_represent(ch, m);
    if (st == WL_SUCCESS)
        st = model_gather(ch, m, n, users, offset, WL_TABLE_USERS, user_rows);
    if (st == WL_SUCCESS)
        st = wl_blas_gemm_nt(ch, n, m->o.num_items, m->o.dim, user_rows, model_rep(m, WL_TABLE_ITEMS), scores,
                             "catalogue scores");
    return st;
}

/* Where a block of recommend's users come from: their ids, or (ids NULL)
 * rows [first, first + n) of the caller's feature rows and exclusions. */
typedef struct user_source {
    const int32_t *ids;
    size_t first;
    const uint64_t *indptr, *exclude_ptr;
    const int32_t *features, *exclude_items;
    const float *weights;
} user_source;

/* The buffers of a block of feature rows: ptr (rebased to 0), features,
 * weights, the exclusions (ptr rebased) and the rows' own indices as user
 * ids (the top-k kernel looks the exclusions up by them). */
typedef struct cold_buffers {
    cl_mem ptr, idx, wts, ex_ptr, ex_items, ids;
} cold_buffers;

static void cold_release(cold_buffers *b)
{
    model_release(&b->ptr);
    model_release(&b->idx);
    model_release(&b->wts);
    model_release(&b->ex_ptr);
    model_release(&b->ex_items);
    model_release(&b->ids);
}

/* Copy a CSR slice's indptr, rebased to 0, into a new array of n + 1. */
static cl_ulong *rebased(const uint64_t *indptr, size_t first, size_t n)
{
    cl_ulong *p = malloc((n + 1) * sizeof *p);
    for (size_t r = 0; p && r <= n; ++r)
        p[r] = indptr[first + r] - indptr[first];
    return p;
}

static wl_status cold_upload(wl_model *m, size_t n, const user_source *src, cold_buffers *b)
{
    wl_context *c = m->c;
    memset(b, 0, sizeof *b);
    const size_t from = (size_t)src->indptr[src->first], nnz = (size_t)src->indptr[src->first + n] - from;
    cl_ulong *ptr = rebased(src->indptr, src->first, n);
    cl_ulong *ex_ptr = src->exclude_ptr ? rebased(src->exclude_ptr, src->first, n) : NULL;
    int32_t *ids = malloc(n * sizeof *ids);
    float *ones = !src->weights && nnz ? malloc(nnz * sizeof *ones) : NULL;
    wl_status st = WL_SUCCESS;
    if (!ptr || !ids || (src->exclude_ptr && !ex_ptr) || (!src->weights && nnz && !ones))
        st = wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "out of host memory for %zu feature rows", n);
    for (size_t r = 0; st == WL_SUCCESS && r < n; ++r)
        ids[r] = (int32_t)r;
    for (size_t k = 0; ones && k < nnz; ++k)
        ones[k] = 1.0f;
    if (st == WL_SUCCESS)
        st = model_buffer(c, (n + 1) * sizeof(cl_ulong), ptr, "the feature rows' indptr", &b->ptr);
    if (st == WL_SUCCESS && nnz)
        st = model_buffer(c, nnz * sizeof(int32_t), src->features + from, "the feature rows' features", &b->idx);
    if (st == WL_SUCCESS && nnz)
        st = model_buffer(c, nnz * sizeof(float), src->weights ? src->weights + from : ones,
                          "the feature rows' weights", &b->wts);
    if (st == WL_SUCCESS)
        st = model_buffer(c, n * sizeof(int32_t), ids, "the feature rows' indices", &b->ids);
    const size_t ex_from = ex_ptr ? (size_t)src->exclude_ptr[src->first] : 0;
    const size_t ex_count = ex_ptr ? (size_t)src->exclude_ptr[src->first + n] - ex_from : 0;
    if (st == WL_SUCCESS && ex_ptr)
        st = model_buffer(c, (n + 1) * sizeof(cl_ulong), ex_ptr, "the exclusions' indptr", &b->ex_ptr);
    if (st == WL_SUCCESS && ex_count)
        st = model_buffer(c, ex_count * sizeof(int32_t), src->exclude_items + ex_from, "the excluded items",
                          &b->ex_items);
    free(ptr);
    free(ex_ptr);
    free(ids);
    free(ones);
    if (st != WL_SUCCESS)
        cold_release(b);
    return st;
}

/* One block of recommend: n users from src, outputs to the host. */
static wl_status recommend_block(wl_chain *ch, wl_model *m, size_t n, const user_source *src, size_t k,
                                 int exclude_known, int32_t *items, float *scores)
{
    wl_context *c = m->c;
    cl_mem user_buf = NULL, score_buf, top_items, top_scores, user_rows;
    cold_buffers cold = {0};
    cl_mem known_ptr = m->known_ptr, known_items = m->known_items;
    const cl_mem bias = model_rep(m, WL_TABLE_ITEM_BIAS);
    wl_status st = wl_scratch(c, WL_SCRATCH_MODEL_SCORES, n * m->o.num_items * sizeof(float), "the catalogue scores",
                              &score_buf);
    if (st == WL_SUCCESS)
        st = wl_scratch(c, WL_SCRATCH_MODEL_TOP_ITEMS, n * k * sizeof(int32_t), "the top items", &top_items);
    if (st == WL_SUCCESS)
        st = wl_scratch(c, WL_SCRATCH_MODEL_TOP_SCORES, n * k * sizeof(float), "the top scores", &top_scores);
    if (st == WL_SUCCESS && src->ids) {
        st = model_buffer(c, n * sizeof(int32_t), src->ids, "the users", &user_buf);
        if (st == WL_SUCCESS)
            st = enqueue_catalogue_dots(ch, m, n, user_buf, 0, score_buf);
    } else if (st == WL_SUCCESS) {
        /* the rows' representations from the user table, then one SGEMM */
        st = cold_upload(m, n, src, &cold);
        if (st == WL_SUCCESS)
            st = wl_scratch(c, WL_SCRATCH_MODEL_USER_ROWS, n * m->o.dim * sizeof(float), "the block's user rows",
                            &user_rows);
        if (st == WL_SUCCESS)
            st = model_represent(ch, m);
        if (st == WL_SUCCESS)
            st = model_represent_rows(ch, m, n, m->o.dim, cold.ptr, cold.idx, cold.wts, m->table[WL_TABLE_USERS],
                                      user_rows);
        if (st == WL_SUCCESS)
            st = wl_blas_gemm_nt(ch, n, m->o.num_items, m->o.dim, user_rows, model_rep(m, WL_TABLE_ITEMS), score_buf,
                                 "catalogue scores");
        user_buf = cold.ids;
        known_ptr = cold.ex_ptr;
        known_items = cold.ex_items;
        exclude_known = cold.ex_ptr != NULL;
    }
    if (st == WL_SUCCESS) {
        const cl_uint n32 = (cl_uint)n, k32 = (cl_uint)k;
        const cl_int exclude = exclude_known != 0;
        const wl_arg args[] = {WL_ARG(n32),       WL_ARG(m->o.num_items), WL_ARG(k32),       WL_ARG(user_buf),
                               WL_ARG(score_buf), WL_ARG(bias),           WL_ARG(known_ptr), WL_ARG(known_items),
                               WL_ARG(exclude),   WL_ARG(top_items),      WL_ARG(top_scores)};
        const wl_launch l = {WL_KERNEL_MODEL_TOP_K, n, 0, args, sizeof args / sizeof args[0]};
        st = wl_enqueue_kernel(ch, &l);
    }
    cl_int err = CL_SUCCESS;
    if (st == WL_SUCCESS)
        err = clEnqueueReadBuffer(c->queue, top_items, CL_TRUE, 0, n * k * sizeof(int32_t), items, ch->num_wait,
                                  ch->wait, NULL);
    if (st == WL_SUCCESS && err == CL_SUCCESS && scores)
        err = clEnqueueReadBuffer(c->queue, top_scores, CL_TRUE, 0, n * k * sizeof(float), scores, ch->num_wait,
                                  ch->wait, NULL);
    if (err != CL_SUCCESS)
        st = wl_fail_cl(c, err, "clEnqueueReadBuffer(recommendations)");
    if (src->ids)
        model_release(&user_buf);
    cold_release(&cold);
    return st;
}

/* The checks both recommend forms share. */
static wl_status check_recommend(wl_model *m, size_t n, const void *users, size_t k, const int32_t *items)
{
    wl_context *c = m->c;
    if (!users || !items)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s is NULL but n is %zu", !users ? "users" : "items", n);
    if (k == 0 || k > m->o.num_items)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "k is %zu; it must be in [1, num_items = %u]", k,
                       (unsigned)m->o.num_items);
    if (n > UINT32_MAX || n > SIZE_MAX / k / sizeof(float))
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "n x k (%zu x %zu) is too large", n, k);
    return WL_SUCCESS;
}

/* Recommend for n users of src in blocks. */
static wl_status recommend_run(wl_model *m, size_t n, user_source src, size_t k, int exclude_known, int32_t *items,
                               float *scores)
{
    const size_t block = model_gemm_block(m, n, m->o.num_items, "a user's catalogue scores");
    if (!block)
        return WL_ERROR_OUT_OF_MEMORY;
    wl_chain ch;
    wl_status st = wl_chain_start(&ch, m->c, 0, NULL);
    if (st != WL_SUCCESS)
        return st;
    const int32_t *ids = src.ids;
    for (size_t first = 0; first < n && st == WL_SUCCESS; first += block) {
        const size_t count = n - first < block ? n - first : block;
        src.first = first;
        src.ids = ids ? ids + first : NULL;
        st = recommend_block(&ch, m, count, &src, k, exclude_known, items + first * k,
                             scores ? scores + first * k : NULL);
    }
    if (st == WL_SUCCESS || ch.last)
        wl_chain_finish(&ch, NULL);
    wl_chain_end(&ch);
    return st;
}

wl_status wl_model_recommend(wl_model *m, size_t n, const int32_t *users, size_t k, int exclude_known, int32_t *items,
                             float *scores)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    if (n == 0)
        return WL_SUCCESS;
    wl_status st = check_recommend(m, n, users, k, items);
    if (st == WL_SUCCESS)
        st = model_check_ids(m->c, users, n, m->o.num_users, "users");
    if (st != WL_SUCCESS)
        return st;
    const user_source src = {users, 0, NULL, NULL, NULL, NULL, NULL};
    return recommend_run(m, n, src, k, exclude_known, items, scores);
}

wl_status wl_model_recommend_features(wl_model *m, size_t n, const uint64_t *indptr, const int32_t *features,
                                      const float *weights, const uint64_t *exclude_ptr, const int32_t *exclude_items,
                                      size_t k, int32_t *items, float *scores)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_context *c = m->c;
    if (n == 0)
        return WL_SUCCESS;
    wl_status st = check_recommend(m, n, indptr, k, items);
    if (st == WL_SUCCESS)
        st = model_check_features(c, n, (uint32_t)model_table_rows(m, WL_TABLE_USERS), indptr, features, weights,
                                  "the users' feature rows");
    if (st == WL_SUCCESS && !exclude_ptr != !exclude_items)
        st = wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s is NULL but %s is not; give both or neither",
                     exclude_ptr ? "exclude_items" : "exclude_ptr", exclude_ptr ? "exclude_ptr" : "exclude_items");
    if (st == WL_SUCCESS && exclude_ptr)
        st = model_check_features(c, n, m->o.num_items, exclude_ptr, exclude_items, NULL, "the excluded items");
    if (st != WL_SUCCESS)
        return st;
    const user_source src = {NULL, 0, indptr, exclude_ptr, features, exclude_items, weights};
    return recommend_run(m, n, src, k, 1, items, scores);
}

/* One block of rank: pairs (users[j], items[j]), j < n, from the host. */
static wl_status rank_block(wl_chain *ch, wl_model *m, size_t n, const int32_t *users, const int32_t *items,
                            int exclude_known, uint32_t *ranks)
{
    wl_context *c = m->c;
    cl_mem user_buf = NULL, item_buf = NULL, score_buf, rank_buf;
    const cl_mem bias = model_rep(m, WL_TABLE_ITEM_BIAS);
    wl_status st = wl_scratch(c, WL_SCRATCH_MODEL_SCORES, n * m->o.num_items * sizeof(float), "the catalogue scores",
                              &score_buf);
    if (st == WL_SUCCESS)
        st = wl_scratch(c, WL_SCRATCH_MODEL_TOP_ITEMS, n * sizeof(uint32_t), "the ranks", &rank_buf);
    if (st == WL_SUCCESS)
        st = model_buffer(c, n * sizeof(int32_t), users, "the users", &user_buf);
    if (st == WL_SUCCESS)
        st = model_buffer(c, n * sizeof(int32_t), items, "the items", &item_buf);
    if (st == WL_SUCCESS)
        st = enqueue_catalogue_dots(ch, m, n, user_buf, 0, score_buf);
    if (st == WL_SUCCESS) {
        const cl_uint n32 = (cl_uint)n;
        const cl_int exclude = exclude_known != 0;
        const wl_arg args[] = {WL_ARG(n32),       WL_ARG(m->o.num_items), WL_ARG(user_buf),     WL_ARG(item_buf),
                               WL_ARG(score_buf), WL_ARG(bias),           WL_ARG(m->known_ptr), WL_ARG(m->known_items),
                               WL_ARG(exclude),   WL_ARG(rank_buf)};
        const wl_launch l = {WL_KERNEL_MODEL_RANK, n, 0, args, sizeof args / sizeof args[0]};
        st = wl_enqueue_kernel(ch, &l);
    }
    if (st == WL_SUCCESS) {
        const cl_int err = clEnqueueReadBuffer(c->queue, rank_buf, CL_TRUE, 0, n * sizeof(uint32_t), ranks,
                                               ch->num_wait, ch->wait, NULL);
        if (err != CL_SUCCESS)
            st = wl_fail_cl(c, err, "clEnqueueReadBuffer(ranks)");
    }
    model_release(&user_buf);
    model_release(&item_buf);
    return st;
}

wl_status wl_model_rank(wl_model *m, size_t n, const int32_t *users, const int32_t *items, int exclude_known,
                        uint32_t *ranks)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_context *c = m->c;
    if (n == 0)
        return WL_SUCCESS;
    if (!users || !items || !ranks)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s is NULL but n is %zu",
                       !users   ? "users"
                       : !items ? "items"
                                : "ranks",
                       n);
    if (n > UINT32_MAX)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "n is %zu; at most 2^32 - 1", n);
    wl_status st = model_check_ids(c, users, n, m->o.num_users, "users");
    if (st == WL_SUCCESS)
        st = model_check_ids(c, items, n, m->o.num_items, "items");
    if (st != WL_SUCCESS)
        return st;
    const size_t block = model_gemm_block(m, n, m->o.num_items, "a user's catalogue scores");
    if (!block)
        return WL_ERROR_OUT_OF_MEMORY;
    wl_chain ch;
    if ((st = wl_chain_start(&ch, c, 0, NULL)) != WL_SUCCESS)
        return st;
    for (size_t first = 0; first < n && st == WL_SUCCESS; first += block) {
        const size_t count = n - first < block ? n - first : block;
        st = rank_block(&ch, m, count, users + first, items + first, exclude_known, ranks + first);
    }
    if (st == WL_SUCCESS || ch.last)
        wl_chain_finish(&ch, NULL);
    wl_chain_end(&ch);
    return st;
}

/* ------------------------------------------------------------ evaluate */

/* The counts wl_model_evaluate reads back per evaluated user (model_catalogue.cl). */
enum { EVAL_HITS, EVAL_BEST, EVAL_OVERLAP, EVAL_AUC, EVAL_KNOWN, EVAL_COUNTS };

/* One user's metrics from the device's counts; catalogue: the items ranked among. */
static void user_metrics(uint64_t catalogue, uint32_t k, uint64_t held_out, const cl_ulong *counts,
                         wl_user_metrics *out)
{
    const uint64_t hits = counts[EVAL_HITS];
    /* the items of the catalogue that are neither held out nor (if excluded) known */
    const int64_t negatives = (int64_t)catalogue - (int64_t)held_out - (int64_t)counts[EVAL_KNOWN] +
                              (int64_t)counts[EVAL_OVERLAP];
    memset(out, 0, sizeof *out);
    out->held_out = (uint32_t)held_out;
    out->hits = (uint32_t)hits;
    out->best = (uint32_t)counts[EVAL_BEST];
    out->precision_at_k = (double)hits / (double)k;
    out->recall_at_k = (double)hits / (double)held_out;
    out->mrr = 1.0 / (1.0 + (double)counts[EVAL_BEST]);
    out->auc = negatives <= 0 ? 0.5 : 1.0 - (double)counts[EVAL_AUC] / ((double)held_out * (double)negatives);
}

/* One block of evaluate: evaluated users [first, first + n) of the call's lists; counts [n x EVAL_COUNTS] to the host.
 */
static wl_status evaluate_block(wl_chain *ch, wl_model *m, size_t first, size_t n, size_t local, cl_mem users,
                                cl_mem ptr, cl_mem items, cl_mem ranks, cl_mem among, uint32_t k, int exclude_known,
                                cl_ulong *counts)
{
    wl_context *c = m->c;
    cl_mem score_buf, out_buf;
    const cl_mem bias = model_rep(m, WL_TABLE_ITEM_BIAS);
    wl_status st = wl_scratch(c, WL_SCRATCH_MODEL_SCORES, n * m->o.num_items * sizeof(float), "the catalogue scores",
                              &score_buf);
    if (st == WL_SUCCESS)
        st = wl_scratch(c, WL_SCRATCH_MODEL_TOP_ITEMS, n * EVAL_COUNTS * sizeof(cl_ulong), "the users' counts",
                        &out_buf);
    if (st == WL_SUCCESS)
        st = enqueue_catalogue_dots(ch, m, n, users, first, score_buf);
    if (st == WL_SUCCESS) {
        const cl_uint n32 = (cl_uint)n;
        const cl_ulong first64 = first;
        const cl_int exclude = exclude_known != 0;
        const wl_arg args[] = {
            WL_ARG(n32),   WL_ARG(first64),      WL_ARG(m->o.num_items), WL_ARG(k),
            WL_ARG(users), WL_ARG(ptr),          WL_ARG(items),          WL_ARG(score_buf),
            WL_ARG(bias),  WL_ARG(m->known_ptr), WL_ARG(m->known_items), WL_ARG(exclude),
            WL_ARG(ranks), WL_ARG(among),        WL_ARG(out_buf),        WL_ARG_LOCAL(local * sizeof(cl_ulong))};
        const wl_launch l = {WL_KERNEL_MODEL_EVALUATE, n * local, local, args, sizeof args / sizeof args[0]};
        st = wl_enqueue_kernel(ch, &l);
    }
    if (st == WL_SUCCESS) {
        const cl_int err = clEnqueueReadBuffer(c->queue, out_buf, CL_TRUE, 0, n * EVAL_COUNTS * sizeof(cl_ulong),
                                               counts, ch->num_wait, ch->wait, NULL);
        if (err != CL_SUCCESS)
            st = wl_fail_cl(c, err, "clEnqueueReadBuffer(evaluation counts)");
    }
    return st;
}

wl_status wl_model_evaluate(wl_model *m, const uint64_t *indptr, const int32_t *items, uint32_t k, int exclude_known,
                            wl_metrics *out, wl_user_metrics *per_user)
{
    return wl_model_evaluate_among(m, NULL, indptr, items, k, exclude_known, out, per_user);
}

wl_status wl_model_evaluate_among(wl_model *m, const uint8_t *among, const uint64_t *indptr, const int32_t *items,
                                  uint32_t k, int exclude_known, wl_metrics *out, wl_user_metrics *per_user)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_context *c = m->c;
    if (!out)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "out is NULL");
    if (k == 0)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "k is 0; it must be at least 1");
    wl_status st = model_check_sets(m, indptr, items, "held-out items");
    if (st != WL_SUCCESS)
        return st;
    const uint32_t num_users = m->o.num_users;
    uint64_t catalogue = m->o.num_items;
    if (among) {
        catalogue = 0;
        for (uint32_t x = 0; x < m->o.num_items; ++x)
            catalogue += among[x] != 0;
        for (uint64_t j = 0; j < indptr[num_users]; ++j)
            if (!among[items[j]])
                return wl_fail(c, WL_ERROR_INVALID_ARGUMENT,
                               "items[%llu] = %d is held out but not among the items evaluated (among[%d] is 0)",
                               (unsigned long long)j, (int)items[j], (int)items[j]);
    }
    /* the users with held-out items, and where their items start */
    size_t evaluated = 0;
    for (uint32_t u = 0; u < num_users; ++u)
        evaluated += indptr[u + 1] > indptr[u];
    if (per_user)
        memset(per_user, 0, (size_t)num_users * sizeof *per_user);
    if (!evaluated) {
        memset(out, 0, sizeof *out);
        out->k = k;
        return WL_SUCCESS;
    }
    int32_t *users = malloc(evaluated * sizeof *users);
    cl_ulong *ptr = malloc((evaluated + 1) * sizeof *ptr);
    cl_ulong *counts = malloc(evaluated * EVAL_COUNTS * sizeof *counts);
    if (!users || !ptr || !counts) {
        free(users);
        free(ptr);
        free(counts);
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "out of host memory for %zu users' counts", evaluated);
    }
    for (uint32_t u = 0, e = 0; u < num_users; ++u)
        if (indptr[u + 1] > indptr[u]) {
            users[e] = (int32_t)u;
            ptr[e++] = indptr[u];
        }
    ptr[evaluated] = indptr[num_users];

    /* a work-group per user: the model scan's size on a GPU plan, one work-item on the CPU's; a power of two */
    size_t local = 1;
    if (c->plan.model_group > 0) {
        const size_t want = wl_kernel_group(c, WL_KERNEL_MODEL_EVALUATE, c->plan.model_group);
        while (local * 2 <= want && local * 2 * sizeof(cl_ulong) <= c->plan.local_mem / 2)
            local *= 2;
    }
    size_t block = model_gemm_block(m, evaluated, m->o.num_items, "a user's catalogue scores");
    if (block > c->plan.max_groups)
        block = c->plan.max_groups;
    cl_mem user_buf = NULL, ptr_buf = NULL, item_buf = NULL, among_buf = NULL, ranks;
    if (!block)
        st = WL_ERROR_OUT_OF_MEMORY;
    if (st == WL_SUCCESS && among)
        st = model_buffer(c, m->o.num_items, among, "the items evaluated", &among_buf);
    if (st == WL_SUCCESS)
        st = model_buffer(c, evaluated * sizeof(int32_t), users, "the evaluated users", &user_buf);
    if (st == WL_SUCCESS)
        st = model_buffer(c, (evaluated + 1) * sizeof(cl_ulong), ptr, "the held-out items' offsets", &ptr_buf);
    if (st == WL_SUCCESS)
        st = model_buffer(c, (size_t)indptr[num_users] * sizeof(int32_t), items, "the held-out items", &item_buf);
    if (st == WL_SUCCESS)
        st = wl_scratch(c, WL_SCRATCH_MODEL_EVAL, (size_t)indptr[num_users] * sizeof(cl_uint),
                        "the held-out items' ranks", &ranks);
    wl_chain ch;
    if (st == WL_SUCCESS && (st = wl_chain_start(&ch, c, 0, NULL)) == WL_SUCCESS) {
        for (size_t first = 0; first < evaluated && st == WL_SUCCESS; first += block) {
            const size_t count = evaluated - first < block ? evaluated - first : block;
            st = evaluate_block(&ch, m, first, count, local, user_buf, ptr_buf, item_buf, ranks, among_buf, k,
                                exclude_known, counts + first * EVAL_COUNTS);
        }
        if (st == WL_SUCCESS || ch.last)
            wl_chain_finish(&ch, NULL);
        wl_chain_end(&ch);
    }
    model_release(&user_buf);
    model_release(&ptr_buf);
    model_release(&item_buf);
    model_release(&among_buf);
    if (st == WL_SUCCESS) {
        /* the means in double, over the users in index order */
        double precision = 0, recall = 0, auc = 0, mrr = 0;
        for (size_t e = 0; e < evaluated; ++e) {
            wl_user_metrics one;
            user_metrics(catalogue, k, ptr[e + 1] - ptr[e], counts + e * EVAL_COUNTS, &one);
            precision += one.precision_at_k;
            recall += one.recall_at_k;
            auc += one.auc;
            mrr += one.mrr;
            if (per_user)
                per_user[users[e]] = one;
        }
        memset(out, 0, sizeof *out);
        out->k = k;
        out->users = evaluated;
        out->precision_at_k = precision / (double)evaluated;
        out->recall_at_k = recall / (double)evaluated;
        out->auc = auc / (double)evaluated;
        out->mrr = mrr / (double)evaluated;
    } else if (per_user) {
        memset(per_user, 0, (size_t)num_users * sizeof *per_user);
    }
    free(users);
    free(ptr);
    free(counts);
    return st;
}
