/*
 * The embedding model's catalogue queries: wl_model_recommend, wl_model_rank
 * and wl_model_evaluate. Each scores a block of users against every item
 * with CLBlast's SGEMM (src/blas.c) into one scratch buffer, then selects,
 * ranks or evaluates on the device (cl/model_catalogue.cl); only the results
 * come back.
 */
#include <stdlib.h>
#include <string.h>

#include "model.h"

/* Enqueue dot[r][x] = dot(U[users[offset + r]], V[x]) for r < n into scores
 * [n x num_items]: gather the users, then one SGEMM against the whole V. */
static wl_status enqueue_catalogue_dots(wl_chain *ch, wl_model *m, size_t n, cl_mem users, size_t offset, cl_mem scores)
{
    cl_mem user_rows;
    wl_status st = wl_scratch(m->c, WL_SCRATCH_MODEL_USER_ROWS, n * m->o.dim * sizeof(float), "the block's user rows",
                              &user_rows);
    if (st == WL_SUCCESS)
        st = model_gather(ch, m, n, users, offset, WL_TABLE_USERS, user_rows);
    if (st == WL_SUCCESS)
        st = wl_blas_gemm_nt(ch, n, m->o.num_items, m->o.dim, user_rows, m->table[WL_TABLE_ITEMS], scores,
                             "catalogue scores");
    return st;
}

/* One block of recommend: users[0 .. n) from the host, outputs to the host. */
static wl_status recommend_block(wl_chain *ch, wl_model *m, size_t n, const int32_t *users, size_t k, int exclude_known,
                                 int32_t *items, float *scores)
{
    wl_context *c = m->c;
    cl_mem user_buf = NULL, score_buf, top_items, top_scores;
    wl_status st = wl_scratch(c, WL_SCRATCH_MODEL_SCORES, n * m->o.num_items * sizeof(float), "the catalogue scores",
                              &score_buf);
    if (st == WL_SUCCESS)
        st = wl_scratch(c, WL_SCRATCH_MODEL_TOP_ITEMS, n * k * sizeof(int32_t), "the top items", &top_items);
    if (st == WL_SUCCESS)
        st = wl_scratch(c, WL_SCRATCH_MODEL_TOP_SCORES, n * k * sizeof(float), "the top scores", &top_scores);
    if (st == WL_SUCCESS)
        st = model_buffer(c, n * sizeof(int32_t), users, "the users", &user_buf);
    if (st == WL_SUCCESS)
        st = enqueue_catalogue_dots(ch, m, n, user_buf, 0, score_buf);
    if (st == WL_SUCCESS) {
        const cl_uint n32 = (cl_uint)n, k32 = (cl_uint)k;
        const cl_int exclude = exclude_known != 0;
        const wl_arg args[] = {WL_ARG(n32),       WL_ARG(m->o.num_items), WL_ARG(k32),          WL_ARG(user_buf),
                               WL_ARG(score_buf), WL_ARG(m->table[2]),    WL_ARG(m->known_ptr), WL_ARG(m->known_items),
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
    model_release(&user_buf);
    return st;
}

wl_status wl_model_recommend(wl_model *m, size_t n, const int32_t *users, size_t k, int exclude_known, int32_t *items,
                             float *scores)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_context *c = m->c;
    if (n == 0)
        return WL_SUCCESS;
    if (!users || !items)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s is NULL but n is %zu", !users ? "users" : "items", n);
    if (k == 0 || k > m->o.num_items)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "k is %zu; it must be in [1, num_items = %u]", k,
                       (unsigned)m->o.num_items);
    if (n > UINT32_MAX || n > SIZE_MAX / k / sizeof(float))
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "n x k (%zu x %zu) is too large", n, k);
    wl_status st = model_check_ids(c, users, n, m->o.num_users, "users");
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
        st = recommend_block(&ch, m, count, users + first, k, exclude_known, items + first * k,
                             scores ? scores + first * k : NULL);
    }
    if (st == WL_SUCCESS || ch.last)
        wl_chain_finish(&ch, NULL);
    wl_chain_end(&ch);
    return st;
}

/* One block of rank: pairs (users[j], items[j]), j < n, from the host. */
static wl_status rank_block(wl_chain *ch, wl_model *m, size_t n, const int32_t *users, const int32_t *items,
                            int exclude_known, uint32_t *ranks)
{
    wl_context *c = m->c;
    cl_mem user_buf = NULL, item_buf = NULL, score_buf, rank_buf;
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
                               WL_ARG(score_buf), WL_ARG(m->table[2]),    WL_ARG(m->known_ptr), WL_ARG(m->known_items),
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
