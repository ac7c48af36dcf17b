/*
 * The embedding model (warploss.h, "model"; semantics in README.md): its
 * device tables, the WARP step (cl/model_step.cl scans and scatters the
 * gradient into fixed-point accumulators, cl/model_update.cl applies L2 and
 * the optimizer to the touched rows), the known positives, and the catalogue
 * queries (cl/model_catalogue.cl). Every launch goes through the enqueue
 * layer; every argument is checked on the host before anything changes.
 *
 * CLBlast's SGEMM (src/blas.c) computes the dot products of shared
 * candidates (a block of batch rows' users against the gathered candidate
 * items, then the scan) and of the catalogue queries (a block of users
 * against every item, then the selection). The other candidate modes score
 * in the scan with wl_model_score, bit for bit the C reference's; SGEMM sums
 * each dot product in its own order (tiles, vector lanes, fused
 * multiply-adds where the device has them), so its scores may differ from
 * those in the last bits. They are deterministic on a device (CLBlast's
 * kernels and parameters for a device are fixed, and every launch plan uses
 * the same SGEMM), so the tables stay bitwise reproducible.
 *
 * Ids that come from the caller's device buffers (wl_model_step_cl) cannot be
 * checked on the host: the kernels never read out of bounds with them; a row
 * with an out-of-range id contributes nothing, and, when the caller asks for
 * the result, the call reports WL_ERROR_INVALID_ARGUMENT naming the first such
 * row (the other rows' update is applied all the same).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* SGEMM's operands and output for one block of rows (shared candidates) or
 * users (recommend, rank): at most this many bytes each (and half the
 * device's largest allocation, as CLBlast's temporary buffer may hold a
 * padded copy of them), so large batches and catalogues run in blocks. */
#define GEMM_BLOCK_BYTES ((size_t)256 << 20)
/* Work-items per launch of the step's scan, so the global size stays in range. */
#define SCAN_SLICE ((size_t)1 << 30)

enum { MODE_ROWS = 0, MODE_SHARED = 1, MODE_SAMPLED = 2 }; /* the scan's candidates (model_step.cl) */
enum { CONTROL_USERS, CONTROL_ITEMS, CONTROL_BAD, CONTROL_COUNT };

struct wl_model {
    wl_context *c;
    wl_model_options o;
    cl_mem table[3];               /* by wl_table: U, V, b */
    cl_mem state[3];               /* Adagrad's accumulators by wl_table; NULL with SGD */
    cl_mem acc[3];                 /* fixed-point gradient sums by wl_table (long), zero between steps */
    cl_mem flag[2];                /* users, items: the row is in this step's touched list (int), zero between steps */
    cl_mem touched[2];             /* users, items: this step's touched rows (uint) */
    cl_mem control;                /* uint[CONTROL_COUNT], model_step.cl */
    cl_mem known_ptr, known_items; /* the known positives as CSR; NULL: none */
    wl_weight_table weights;
    /* a step failed after its scan but before its update: the accumulators and
     * flags may hold that scan's terms, so the next step clears them first */
    int dirty;
};

void wl_model_options_default(wl_model_options *o, uint32_t num_users, uint32_t num_items, uint32_t dim)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->num_users = num_users;
    o->num_items = num_items;
    o->dim = dim;
    o->item_bias = 1;
    o->seed = 0;
    o->optimizer = WL_OPTIMIZER_ADAGRAD;
    o->learning_rate = 0.05f;
    o->l2_users = 0.0f;
    o->l2_items = 0.0f;
}

/* ------------------------------------------------------------ helpers */

static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Rows of table t and floats per row. */
static uint64_t table_rows(const wl_model *m, wl_table t)
{
    return t == WL_TABLE_USERS ? m->o.num_users : m->o.num_items;
}

static uint64_t table_count(const wl_model *m, wl_table t)
{
    return table_rows(m, t) * (t == WL_TABLE_ITEM_BIAS ? 1u : m->o.dim);
}

/* t as an index of the model's arrays (t checked already; the compiler cannot see it) */
static int table_index(wl_table t) { return t == WL_TABLE_USERS ? 0 : t == WL_TABLE_ITEMS ? 1 : 2; }

static const char *table_name(wl_table t)
{
    return t == WL_TABLE_USERS ? "the user table" : t == WL_TABLE_ITEMS ? "the item table" : "the item biases";
}

/* A device buffer of bytes, with a copy of host if not NULL. */
static wl_status new_buffer(wl_context *c, size_t bytes, const void *host, const char *what, cl_mem *out)
{
    *out = NULL;
    if (bytes > c->max_alloc)
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "%s needs %zu bytes; the device's largest allocation is %llu bytes",
                       what, bytes, (unsigned long long)c->max_alloc);
    cl_int err;
    cl_mem buf = clCreateBuffer(c->context, CL_MEM_READ_WRITE | (host ? CL_MEM_COPY_HOST_PTR : 0), bytes, (void *)host,
                                &err);
    if (err != CL_SUCCESS)
        return wl_fail(c, wl_cl_status(err), "clCreateBuffer for %s (%zu bytes) failed: %s (%d)", what, bytes,
                       wl_cl_error_name(err), (int)err);
    *out = buf;
    return host ? WL_SUCCESS : wl_poison(c, buf, bytes);
}

static void release(cl_mem *buf)
{
    if (*buf)
        clReleaseMemObject(*buf);
    *buf = NULL;
}

/* The first id of ids[0 .. count) outside [0, limit), or count. */
static size_t first_out_of_range(const int32_t *ids, size_t count, uint32_t limit)
{
    for (size_t k = 0; k < count; ++k)
        if (ids[k] < 0 || (uint32_t)ids[k] >= limit)
            return k;
    return count;
}

static wl_status check_ids(wl_context *c, const int32_t *ids, size_t count, uint32_t limit, const char *name)
{
    const size_t k = first_out_of_range(ids, count, limit);
    if (k < count)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s[%zu] = %d is out of range [0, %u)", name, k, (int)ids[k],
                       (unsigned)limit);
    return WL_SUCCESS;
}

/* ------------------------------------------------------------ create, destroy */

static wl_status check_model_options(wl_context *c, const wl_model_options *o)
{
    if (!o)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "options is NULL (use wl_model_options_default)");
    if (o->num_users == 0)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "num_users is 0; it must be at least 1");
    if (o->num_items < 2)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "num_items is %u; it must be at least 2", (unsigned)o->num_items);
    if (o->dim == 0)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "dim is 0; it must be at least 1");
    if (!isfinite(o->learning_rate) || o->learning_rate <= 0.0f)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "learning_rate is %g; it must be finite and positive",
                       (double)o->learning_rate);
    if (!isfinite(o->l2_users) || o->l2_users < 0.0f)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "l2_users is %g; it must be finite and at least 0",
                       (double)o->l2_users);
    if (!isfinite(o->l2_items) || o->l2_items < 0.0f)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "l2_items is %g; it must be finite and at least 0",
                       (double)o->l2_items);
    if (o->optimizer != WL_OPTIMIZER_ADAGRAD && o->optimizer != WL_OPTIMIZER_SGD)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "optimizer is %d; use WL_OPTIMIZER_ADAGRAD or WL_OPTIMIZER_SGD",
                       (int)o->optimizer);
    /* the largest buffer is a table's accumulators, 8 bytes per element */
    const uint64_t largest = (uint64_t)(o->num_users > o->num_items ? o->num_users : o->num_items) * o->dim;
    if (largest > c->max_alloc / sizeof(cl_long) || largest > SIZE_MAX / sizeof(cl_long))
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY,
                       "a table of %llu elements needs %llu bytes of gradient sums; the device's largest allocation "
                       "is %llu bytes",
                       (unsigned long long)largest, (unsigned long long)largest * sizeof(cl_long),
                       (unsigned long long)c->max_alloc);
    return WL_SUCCESS;
}

/* The initial table t (0 users, 1 items) from the seed (README.md). */
static float *initial_table(const wl_model_options *o, unsigned t, size_t count)
{
    float *v = malloc(count * sizeof *v);
    if (!v)
        return NULL;
    const uint64_t base = mix64(o->seed ^ (0x5741524C4F535300ull + t));
    for (size_t e = 0; e < count; ++e) {
        const float u = (float)(mix64(base ^ (uint64_t)e) >> 40) * 0x1p-24f;
        v[e] = (u - 0.5f) / (float)o->dim;
    }
    return v;
}

void wl_model_destroy(wl_model *m)
{
    if (!m)
        return;
    /* commands still queued keep their buffers alive (OpenCL's reference counts) */
    for (int t = 0; t < 3; ++t) {
        release(&m->table[t]);
        release(&m->state[t]);
        release(&m->acc[t]);
    }
    for (int t = 0; t < 2; ++t) {
        release(&m->flag[t]);
        release(&m->touched[t]);
    }
    release(&m->control);
    release(&m->known_ptr);
    release(&m->known_items);
    wl_weight_table_release(&m->weights);
    free(m);
}

/* Allocate and initialise every buffer of a new model. */
static wl_status model_init(wl_model *m)
{
    wl_context *c = m->c;
    const wl_model_options *o = &m->o;
    wl_status st = WL_SUCCESS;
    for (unsigned t = 0; t < 2 && st == WL_SUCCESS; ++t) {
        const size_t count = (size_t)table_count(m, (wl_table)t);
        float *init = initial_table(o, t, count);
        if (!init)
            return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "out of host memory for %s", table_name((wl_table)t));
        st = new_buffer(c, count * sizeof(float), init, table_name((wl_table)t), &m->table[t]);
        free(init);
    }
    const size_t items = o->num_items;
    static const char *const state_names[3] = {"the user table's Adagrad state", "the item table's Adagrad state",
                                               "the item biases' Adagrad state"};
    static const char *const acc_names[3] = {"the user gradient sums", "the item gradient sums",
                                             "the bias gradient sums"};
    if (st == WL_SUCCESS)
        st = new_buffer(c, items * sizeof(float), NULL, "the item biases", &m->table[WL_TABLE_ITEM_BIAS]);
    for (int t = 0; t < 3 && st == WL_SUCCESS; ++t) {
        const size_t count = (size_t)table_count(m, (wl_table)t);
        if (o->optimizer == WL_OPTIMIZER_ADAGRAD)
            st = new_buffer(c, count * sizeof(float), NULL, state_names[t], &m->state[t]);
        if (st == WL_SUCCESS)
            st = new_buffer(c, count * sizeof(cl_long), NULL, acc_names[t], &m->acc[t]);
    }
    for (int t = 0; t < 2 && st == WL_SUCCESS; ++t) {
        const size_t rows = (size_t)table_rows(m, (wl_table)t);
        st = new_buffer(c, rows * sizeof(cl_int), NULL, t ? "the item flags" : "the user flags", &m->flag[t]);
        if (st == WL_SUCCESS)
            st = new_buffer(c, rows * sizeof(cl_uint), NULL, t ? "the touched items" : "the touched users",
                            &m->touched[t]);
    }
    if (st == WL_SUCCESS)
        st = new_buffer(c, CONTROL_COUNT * sizeof(cl_uint), NULL, "the step counters", &m->control);
    if (st != WL_SUCCESS)
        return st;

    wl_chain ch;
    if ((st = wl_chain_start(&ch, c, 0, NULL)) != WL_SUCCESS)
        return st;
    const float zero = 0.0f, one = 1.0f;
    const cl_long zero64 = 0;
    const cl_int zero32 = 0;
    st = wl_enqueue_fill(&ch, m->table[WL_TABLE_ITEM_BIAS], &zero, sizeof zero, items * sizeof(float));
    for (int t = 0; t < 3 && st == WL_SUCCESS; ++t) {
        const size_t count = (size_t)table_count(m, (wl_table)t);
        if (m->state[t])
            st = wl_enqueue_fill(&ch, m->state[t], &one, sizeof one, count * sizeof(float));
        if (st == WL_SUCCESS)
            st = wl_enqueue_fill(&ch, m->acc[t], &zero64, sizeof zero64, count * sizeof(cl_long));
    }
    for (int t = 0; t < 2 && st == WL_SUCCESS; ++t)
        st = wl_enqueue_fill(&ch, m->flag[t], &zero32, sizeof zero32,
                             (size_t)table_rows(m, (wl_table)t) * sizeof(cl_int));
    if (st == WL_SUCCESS || ch.last)
        wl_chain_finish(&ch, NULL);
    wl_chain_end(&ch);
    return st;
}

wl_status wl_model_create(wl_context *c, const wl_model_options *o, wl_model **out)
{
    if (!c)
        return WL_ERROR_INVALID_ARGUMENT;
    if (!out)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    wl_status st = check_model_options(c, o);
    if (st != WL_SUCCESS)
        return st;
    /* built on first use; a failure (WL_ERROR_BUILD with the log) leaves the loss working */
    if ((st = (wl_status)wl_program_require(c, WL_PROGRAM_MODEL)) != WL_SUCCESS)
        return st;
    wl_model *m = calloc(1, sizeof *m);
    if (!m)
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "out of host memory for the model");
    m->c = c;
    m->o = *o;
    m->o.item_bias = o->item_bias != 0;
    if ((st = model_init(m)) != WL_SUCCESS) {
        wl_model_destroy(m);
        return st;
    }
    *out = m;
    return WL_SUCCESS;
}

/* ------------------------------------------------------------ tables and state */

static wl_status check_table(wl_context *c, wl_table t, const void *data, const char *name)
{
    if (t != WL_TABLE_USERS && t != WL_TABLE_ITEMS && t != WL_TABLE_ITEM_BIAS)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT,
                       "table is %d; use WL_TABLE_USERS, WL_TABLE_ITEMS or WL_TABLE_ITEM_BIAS", (int)t);
    if (!data)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s is NULL", name);
    return WL_SUCCESS;
}

/* Read (blocking) bytes of buf into host, after every command of earlier calls. */
static wl_status read_blocking(wl_context *c, cl_mem buf, size_t bytes, void *host, const char *what)
{
    wl_chain ch;
    wl_status st = wl_chain_start(&ch, c, 0, NULL);
    if (st != WL_SUCCESS)
        return st;
    const cl_int err = clEnqueueReadBuffer(c->queue, buf, CL_TRUE, 0, bytes, host, ch.num_wait,
                                           ch.num_wait ? ch.wait : NULL, NULL);
    if (err != CL_SUCCESS)
        st = wl_fail_cl(c, err, what);
    wl_chain_end(&ch);
    return st;
}

/* Write (blocking, the caller may free host at once) bytes of host into buf on
 * the chain; then, if reset is not NULL, fill it with 1.0f (Adagrad's start). */
static wl_status write_blocking(wl_context *c, cl_mem buf, size_t bytes, const void *host, cl_mem reset,
                                const char *what)
{
    wl_chain ch;
    wl_status st = wl_chain_start(&ch, c, 0, NULL);
    if (st != WL_SUCCESS)
        return st;
    cl_event ev;
    const cl_int err = clEnqueueWriteBuffer(c->queue, buf, CL_TRUE, 0, bytes, host, ch.num_wait,
                                            ch.num_wait ? ch.wait : NULL, &ev);
    if (err != CL_SUCCESS)
        st = wl_fail_cl(c, err, what);
    else
        wl_chain_step(&ch, ev);
    const float one = 1.0f;
    if (st == WL_SUCCESS && reset)
        st = wl_enqueue_fill(&ch, reset, &one, sizeof one, bytes);
    if (st == WL_SUCCESS || ch.last)
        wl_chain_finish(&ch, NULL);
    wl_chain_end(&ch);
    return st;
}

wl_status wl_model_read(wl_model *m, wl_table t, float *out)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_status st = check_table(m->c, t, out, "out");
    if (st != WL_SUCCESS)
        return st;
    return read_blocking(m->c, m->table[table_index(t)], (size_t)table_count(m, t) * sizeof(float), out,
                         "clEnqueueReadBuffer(model table)");
}

wl_status wl_model_write(wl_model *m, wl_table t, const float *in)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_status st = check_table(m->c, t, in, "in");
    if (st != WL_SUCCESS)
        return st;
    const size_t count = (size_t)table_count(m, t);
    if (t == WL_TABLE_ITEM_BIAS && !m->o.item_bias) {
        /* without item biases b stays 0 */
        for (size_t k = 0; k < count; ++k)
            if (in[k] != 0.0f)
                return wl_fail(m->c, WL_ERROR_INVALID_ARGUMENT,
                               "in[%zu] = %g, but the model has no item biases (item_bias is 0): b stays 0", k,
                               (double)in[k]);
    }
    return write_blocking(m->c, m->table[table_index(t)], count * sizeof(float), in, m->state[table_index(t)],
                          "clEnqueueWriteBuffer(model table)");
}

wl_status wl_model_read_state(wl_model *m, wl_table t, float *out)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_status st = check_table(m->c, t, out, "out");
    if (st != WL_SUCCESS)
        return st;
    if (!m->state[table_index(t)])
        return wl_fail(m->c, WL_ERROR_INVALID_ARGUMENT, "the SGD optimizer has no state to read");
    return read_blocking(m->c, m->state[table_index(t)], (size_t)table_count(m, t) * sizeof(float), out,
                         "clEnqueueReadBuffer(model state)");
}

wl_status wl_model_write_state(wl_model *m, wl_table t, const float *in)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_status st = check_table(m->c, t, in, "in");
    if (st != WL_SUCCESS)
        return st;
    if (!m->state[table_index(t)])
        return wl_fail(m->c, WL_ERROR_INVALID_ARGUMENT, "the SGD optimizer has no state to write");
    return write_blocking(m->c, m->state[table_index(t)], (size_t)table_count(m, t) * sizeof(float), in, NULL,
                          "clEnqueueWriteBuffer(model state)");
}

/* ------------------------------------------------------------ known positives */

wl_status wl_model_set_known(wl_model *m, const uint64_t *indptr, const int32_t *items)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_context *c = m->c;
    const uint32_t users = m->o.num_users, num_items = m->o.num_items;
    if (!indptr)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "indptr is NULL");
    if (indptr[0] != 0)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "indptr[0] = %llu; it must be 0", (unsigned long long)indptr[0]);
    for (uint32_t u = 0; u < users; ++u)
        if (indptr[u + 1] < indptr[u])
            return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "indptr[%u] = %llu is less than indptr[%u] = %llu",
                           (unsigned)u + 1, (unsigned long long)indptr[u + 1], (unsigned)u,
                           (unsigned long long)indptr[u]);
    const uint64_t total = indptr[users];
    if (total && !items)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "items is NULL but indptr[%u] = %llu", (unsigned)users,
                       (unsigned long long)total);
    if (total > c->max_alloc / sizeof(int32_t) || total > SIZE_MAX / sizeof(int32_t))
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY,
                       "%llu known positives need more than the device's largest allocation (%llu bytes)",
                       (unsigned long long)total, (unsigned long long)c->max_alloc);
    for (uint32_t u = 0; u < users; ++u) {
        for (uint64_t k = indptr[u]; k < indptr[u + 1]; ++k) {
            if (items[k] < 0 || (uint32_t)items[k] >= num_items)
                return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "items[%llu] = %d is out of range [0, %u)",
                               (unsigned long long)k, (int)items[k], (unsigned)num_items);
            if (k > indptr[u] && items[k] <= items[k - 1])
                return wl_fail(c, WL_ERROR_INVALID_ARGUMENT,
                               "items[%llu] = %d is not greater than items[%llu] = %d (user %u's known positives "
                               "must be strictly ascending)",
                               (unsigned long long)k, (int)items[k], (unsigned long long)k - 1, (int)items[k - 1],
                               (unsigned)u);
        }
    }
    /* new buffers first, so that a failure leaves the previous set in place;
     * commands already queued keep the old buffers alive */
    cl_mem ptr = NULL, list = NULL;
    wl_status st = WL_SUCCESS;
    if (total) {
        st = new_buffer(c, ((size_t)users + 1) * sizeof(cl_ulong), indptr, "the known positives' indptr", &ptr);
        if (st == WL_SUCCESS)
            st = new_buffer(c, (size_t)total * sizeof(int32_t), items, "the known positives", &list);
        if (st != WL_SUCCESS) {
            release(&ptr);
            return st;
        }
    }
    release(&m->known_ptr);
    release(&m->known_items);
    m->known_ptr = ptr;
    m->known_items = list;
    return WL_SUCCESS;
}

/* ------------------------------------------------------------ the step */

/* The checks both step forms share: loss options and the batch's shape. */
static wl_status check_step(wl_model *m, const wl_loss_options *lo, const void *batch, size_t rows, size_t negatives)
{
    wl_context *c = m->c;
    if (!batch)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "the batch is NULL");
    wl_status st = wl_loss_check_options(c, lo, rows, negatives);
    if (st != WL_SUCCESS)
        return st;
    if (lo->reduction == WL_REDUCE_NONE)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT,
                       "reduction is WL_REDUCE_NONE; a step needs WL_REDUCE_SUM or "
                       "WL_REDUCE_MEAN");
    if (rows && negatives == 0)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "negatives is 0 but rows is %zu; a row needs a candidate", rows);
    return WL_SUCCESS;
}

/* The id buffers of one step. */
typedef struct step_ids {
    cl_mem users, positives, neg; /* neg NULL: sampled */
    size_t offset;                /* element offset of row 0 in users and positives */
    int shared;
    uint64_t sample_key;
} step_ids;

/* Clear what a failed step may have left in the accumulators and flags. */
static wl_status clean(wl_chain *ch, wl_model *m)
{
    const cl_long zero64 = 0;
    const cl_int zero32 = 0;
    wl_status st = WL_SUCCESS;
    for (int t = 0; t < 3 && st == WL_SUCCESS; ++t)
        st = wl_enqueue_fill(ch, m->acc[t], &zero64, sizeof zero64,
                             (size_t)table_count(m, (wl_table)t) * sizeof(cl_long));
    for (int t = 0; t < 2 && st == WL_SUCCESS; ++t)
        st = wl_enqueue_fill(ch, m->flag[t], &zero32, sizeof zero32,
                             (size_t)table_rows(m, (wl_table)t) * sizeof(cl_int));
    return st;
}

/* Sum the rows' outputs into r; a row the kernel refused is an argument error. */
static wl_status step_result(wl_model *m, size_t rows, const cl_int *out, const cl_uint *control, float scale,
                             wl_step_result *r)
{
    double loss = 0.0;
    uint64_t offenders = 0, scores = 0;
    for (size_t b = 0; b < rows; ++b) {
        const cl_int *row = out + 4 * b;
        if (row[0] >= 0) {
            float row_loss;
            memcpy(&row_loss, &row[2], sizeof row_loss);
            loss += (double)row_loss;
            ++offenders;
        }
        scores += (uint32_t)row[3];
    }
    r->loss = loss * (double)scale;
    r->offenders = offenders;
    r->scores = scores;
    if (control[CONTROL_BAD])
        return wl_fail(m->c, WL_ERROR_INVALID_ARGUMENT,
                       "batch row %u has a user, positive or candidate id out of range (users [0, %u), items [0, "
                       "%u)); that row was left out, the other rows were applied",
                       (unsigned)(0xFFFFFFFFu - control[CONTROL_BAD]), (unsigned)m->o.num_users,
                       (unsigned)m->o.num_items);
    return WL_SUCCESS;
}

/* Rows per block of an SGEMM whose output rows have `cols` floats (and whose
 * input rows dim floats), at most n and SCAN_SLICE, at least 1; 0 (with the
 * error set) if one row does not fit. what names the output in the error. */
static size_t gemm_block(wl_model *m, size_t n, size_t cols, const char *what)
{
    wl_context *c = m->c;
    const size_t cap = c->max_alloc / 2 < GEMM_BLOCK_BYTES ? (size_t)(c->max_alloc / 2) : GEMM_BLOCK_BYTES;
    const size_t widest = cols > m->o.dim ? cols : m->o.dim;
    if (widest > cap / sizeof(float)) {
        wl_fail(c, WL_ERROR_OUT_OF_MEMORY,
                "one row of %s needs %zu bytes; at most %zu fit (half the device's largest allocation, %llu bytes)",
                what, widest * sizeof(float), cap, (unsigned long long)c->max_alloc);
        return 0;
    }
    size_t block = cap / (widest * sizeof(float));
    if (block > SCAN_SLICE)
        block = SCAN_SLICE;
    return block < n ? block : n;
}

/* Enqueue out[r] = row ids[offset + r] of table t, r < count (model_gather.cl). */
static wl_status enqueue_gather(wl_chain *ch, wl_model *m, size_t count, cl_mem ids, size_t offset, wl_table t,
                                cl_mem out)
{
    const cl_ulong count64 = count, offset64 = offset;
    const cl_uint limit = t == WL_TABLE_USERS ? m->o.num_users : m->o.num_items;
    const wl_arg args[] = {WL_ARG(count64), WL_ARG(m->o.dim), WL_ARG(limit),
                           WL_ARG(ids),     WL_ARG(offset64), WL_ARG(m->table[table_index(t)]),
                           WL_ARG(out)};
    const wl_launch l = {WL_KERNEL_MODEL_GATHER, count * m->o.dim, 0, args, sizeof args / sizeof args[0]};
    return wl_enqueue_kernel(ch, &l);
}

/* Enqueue dot[r][x] = dot(U[users[offset + r]], V[x]) for r < n into scores
 * [n x num_items]: gather the users, then one SGEMM against the whole V. */
static wl_status enqueue_catalogue_dots(wl_chain *ch, wl_model *m, size_t n, cl_mem users, size_t offset, cl_mem scores)
{
    cl_mem user_rows;
    wl_status st = wl_scratch(m->c, WL_SCRATCH_MODEL_USER_ROWS, n * m->o.dim * sizeof(float), "the block's user rows",
                              &user_rows);
    if (st == WL_SUCCESS)
        st = enqueue_gather(ch, m, n, users, offset, WL_TABLE_USERS, user_rows);
    if (st == WL_SUCCESS)
        st = wl_blas_gemm_nt(ch, n, m->o.num_items, m->o.dim, user_rows, m->table[WL_TABLE_ITEMS], scores,
                             "catalogue scores");
    return st;
}

/* Enqueue a whole step on the chain (arguments checked, rows > 0) and, if r,
 * wait for it and fill r. */
static wl_status step_run(wl_chain *ch, wl_model *m, const wl_loss_options *lo, size_t rows, size_t negatives,
                          const step_ids *ids, wl_step_result *r)
{
    wl_context *c = m->c;
    const wl_model_options *o = &m->o;
    wl_status st;
    cl_mem row_out;
    if ((st = wl_weight_table_ensure(m->c, &m->weights, lo, negatives)) != WL_SUCCESS)
        return st;
    if (rows > SIZE_MAX / (4 * sizeof(cl_int)))
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "%zu rows are too many for one step", rows);
    if ((st = wl_scratch(c, WL_SCRATCH_MODEL_ROWS, rows * 4 * sizeof(cl_int), "the step's row outputs", &row_out)))
        return st;
    if (m->dirty) {
        if ((st = clean(ch, m)) != WL_SUCCESS)
            return st;
        m->dirty = 0;
    }
    const cl_uint zero = 0;
    if ((st = wl_enqueue_fill(ch, m->control, &zero, sizeof zero, CONTROL_COUNT * sizeof zero)) != WL_SUCCESS)
        return st;

    const float scale = lo->reduction == WL_REDUCE_MEAN ? 1.0f / (float)rows : 1.0f;
    const cl_uint rows32 = (cl_uint)rows, neg32 = (cl_uint)negatives;
    const cl_int item_bias = o->item_bias;
    const cl_int mode = !ids->neg ? MODE_SAMPLED : ids->shared ? MODE_SHARED : MODE_ROWS;
    const cl_ulong offset = ids->offset, key = mix64(mix64(o->seed) ^ ids->sample_key);
    /* shared candidates: their item rows once, then per block of rows the
     * users' rows and one SGEMM into dots, which the block's scan reads */
    cl_mem item_rows = NULL, user_rows = NULL, dots = NULL;
    size_t block = rows < SCAN_SLICE ? rows : SCAN_SLICE;
    if (mode == MODE_SHARED) {
        if (negatives > SIZE_MAX / sizeof(float) / o->dim)
            return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "%zu shared candidates of %u floats are too many", negatives,
                           (unsigned)o->dim);
        if (!(block = gemm_block(m, rows, negatives, "the shared candidates' scores")))
            return WL_ERROR_OUT_OF_MEMORY;
        if ((st = wl_scratch(c, WL_SCRATCH_MODEL_ITEM_ROWS, negatives * o->dim * sizeof(float),
                             "the shared candidates' item rows", &item_rows)) ||
            (st = wl_scratch(c, WL_SCRATCH_MODEL_USER_ROWS, block * o->dim * sizeof(float), "the block's user rows",
                             &user_rows)) ||
            (st = wl_scratch(c, WL_SCRATCH_MODEL_SCORES, block * negatives * sizeof(float),
                             "the shared candidates' scores", &dots)) ||
            (st = enqueue_gather(ch, m, negatives, ids->neg, 0, WL_TABLE_ITEMS, item_rows)))
            return st;
    }
    /* the scan's shape (plan): a work-item per row, or a work-group per row */
    const int groups = c->plan.model_group > 0;
    const size_t local = groups ? wl_kernel_group(c, WL_KERNEL_MODEL_SCAN_GROUPS, c->plan.model_group) : 0;
    if (groups && block > c->plan.max_groups)
        block = c->plan.max_groups; /* a work-group per row */
    for (size_t first = 0; first < rows && st == WL_SUCCESS; first += block) {
        const cl_ulong base = first;
        const size_t n = rows - first < block ? rows - first : block;
        if (dots) {
            st = enqueue_gather(ch, m, n, ids->users, ids->offset + first, WL_TABLE_USERS, user_rows);
            if (st == WL_SUCCESS)
                st = wl_blas_gemm_nt(ch, n, negatives, o->dim, user_rows, item_rows, dots, "shared candidates");
        }
        if (st != WL_SUCCESS)
            break;
        const wl_arg args[] = {WL_ARG(rows32),
                               WL_ARG(neg32),
                               WL_ARG(o->dim),
                               WL_ARG(o->num_users),
                               WL_ARG(o->num_items),
                               WL_ARG(lo->margin),
                               WL_ARG(scale),
                               WL_ARG(item_bias),
                               WL_ARG(ids->users),
                               WL_ARG(ids->positives),
                               WL_ARG(ids->neg),
                               WL_ARG(offset),
                               WL_ARG(mode),
                               WL_ARG(key),
                               WL_ARG(m->table[0]),
                               WL_ARG(m->table[1]),
                               WL_ARG(m->table[2]),
                               WL_ARG(m->known_ptr),
                               WL_ARG(m->known_items),
                               WL_ARG(m->weights.table),
                               WL_ARG(m->acc[0]),
                               WL_ARG(m->acc[1]),
                               WL_ARG(m->acc[2]),
                               WL_ARG(m->flag[0]),
                               WL_ARG(m->flag[1]),
                               WL_ARG(m->touched[0]),
                               WL_ARG(m->touched[1]),
                               WL_ARG(m->control),
                               WL_ARG(row_out),
                               WL_ARG(base),
                               WL_ARG(dots)};
        const wl_launch l = {groups ? WL_KERNEL_MODEL_SCAN_GROUPS : WL_KERNEL_MODEL_SCAN, groups ? n * local : n, local,
                             args, sizeof args / sizeof args[0]};
        st = wl_enqueue_kernel(ch, &l);
    }
    if (st != WL_SUCCESS) {
        m->dirty |= block < rows; /* an earlier block's scan may have run */
        return st;
    }

    /* upper bounds of the touched lists: each row touches one user and two items */
    const cl_uint user_slots = (cl_uint)(rows < o->num_users ? rows : o->num_users);
    const size_t item_slots = rows <= o->num_items / 2 ? 2 * rows : o->num_items;
    const cl_float lr = o->learning_rate;
    const wl_arg args[] = {WL_ARG(user_slots),    WL_ARG(o->dim),      WL_ARG(lr),
                           WL_ARG(o->l2_users),   WL_ARG(o->l2_items), WL_ARG(item_bias),
                           WL_ARG(m->table[0]),   WL_ARG(m->table[1]), WL_ARG(m->table[2]),
                           WL_ARG(m->state[0]),   WL_ARG(m->state[1]), WL_ARG(m->state[2]),
                           WL_ARG(m->acc[0]),     WL_ARG(m->acc[1]),   WL_ARG(m->acc[2]),
                           WL_ARG(m->flag[0]),    WL_ARG(m->flag[1]),  WL_ARG(m->touched[0]),
                           WL_ARG(m->touched[1]), WL_ARG(m->control)};
    const wl_launch l = {WL_KERNEL_MODEL_UPDATE, (size_t)user_slots + item_slots, 0, args,
                         sizeof args / sizeof args[0]};
    if ((st = wl_enqueue_kernel(ch, &l)) != WL_SUCCESS) {
        m->dirty = 1; /* the scan ran: its terms wait in the accumulators */
        return st;
    }
    if (!r)
        return WL_SUCCESS;

    /* the result: the row outputs and the counters, summed on the host in double */
    cl_int *out = malloc(rows * 4 * sizeof *out);
    if (!out)
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "out of host memory for %zu row results", rows);
    cl_uint control[CONTROL_COUNT];
    /* both blocking: on an out-of-order queue a non-blocking read could still be running */
    cl_int err = clEnqueueReadBuffer(c->queue, row_out, CL_TRUE, 0, rows * 4 * sizeof *out, out, ch->num_wait, ch->wait,
                                     NULL);
    if (err == CL_SUCCESS)
        err = clEnqueueReadBuffer(c->queue, m->control, CL_TRUE, 0, sizeof control, control, ch->num_wait, ch->wait,
                                  NULL);
    if (err != CL_SUCCESS)
        st = wl_fail_cl(c, err, "clEnqueueReadBuffer(step result)");
    else
        st = step_result(m, rows, out, control, scale, r);
    free(out);
    return st;
}

/* Chain, run and finish one step. */
static wl_status step_enqueue(wl_model *m, const wl_loss_options *lo, size_t rows, size_t negatives,
                              const step_ids *ids, wl_step_result *r, cl_uint num_wait, const cl_event *wait,
                              cl_event *done)
{
    wl_chain ch;
    wl_status st = wl_chain_start(&ch, m->c, num_wait, wait);
    if (st != WL_SUCCESS)
        return st;
    if (rows)
        st = step_run(&ch, m, lo, rows, negatives, ids, r);
    else
        st = wl_enqueue_marker(&ch); /* nothing to do, but done still gets an event */
    /* a failed result (a bad id from device buffers) still enqueued the whole step */
    if (st == WL_SUCCESS || ch.last)
        wl_chain_finish(&ch, st == WL_SUCCESS ? done : NULL);
    wl_chain_end(&ch);
    return st;
}

wl_status wl_model_step(wl_model *m, const wl_loss_options *lo, const wl_batch *b, wl_step_result *r)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_context *c = m->c;
    wl_status st = check_step(m, lo, b, b ? b->rows : 0, b ? b->negatives : 0);
    if (st != WL_SUCCESS)
        return st;
    const size_t rows = b->rows, negatives = b->negatives;
    const size_t neg_count = b->neg_items ? (b->shared_negatives ? negatives : rows * negatives) : 0;
    if (rows && (!b->users || !b->positives))
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s is NULL but rows is %zu", !b->users ? "users" : "positives",
                       rows);
    if ((st = check_ids(c, b->users, rows, m->o.num_users, "users")) != WL_SUCCESS ||
        (st = check_ids(c, b->positives, rows, m->o.num_items, "positives")) != WL_SUCCESS)
        return st;
    if (rows && b->neg_items && (st = check_ids(c, b->neg_items, neg_count, m->o.num_items, "neg_items")))
        return st;
    if (r)
        memset(r, 0, sizeof *r);
    if (rows == 0)
        return WL_SUCCESS;

    /* The ids are copied into buffers made for this call (CL_MEM_COPY_HOST_PTR
     * copies at creation): the call need not wait for the device, the caller
     * may reuse its arrays at once, and releasing the buffers after the
     * enqueue is safe (the queued commands keep them alive). */
    step_ids ids = {NULL, NULL, NULL, 0, b->shared_negatives, b->sample_key};
    st = new_buffer(c, rows * sizeof(int32_t), b->users, "the batch's users", &ids.users);
    if (st == WL_SUCCESS)
        st = new_buffer(c, rows * sizeof(int32_t), b->positives, "the batch's positives", &ids.positives);
    if (st == WL_SUCCESS && b->neg_items)
        st = new_buffer(c, neg_count * sizeof(int32_t), b->neg_items, "the batch's candidates", &ids.neg);
    if (st == WL_SUCCESS)
        st = step_enqueue(m, lo, rows, negatives, &ids, r, 0, NULL, NULL);
    release(&ids.users);
    release(&ids.positives);
    release(&ids.neg);
    return st;
}

wl_status wl_model_step_cl(wl_model *m, const wl_loss_options *lo, const wl_batch_cl *b, wl_step_result *r,
                           cl_uint num_wait, const cl_event *wait, cl_event *done)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    if (done)
        *done = NULL;
    wl_context *c = m->c;
    wl_status st = check_step(m, lo, b, b ? b->rows : 0, b ? b->negatives : 0);
    if (st != WL_SUCCESS)
        return st;
    if (num_wait && !wait)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "num_wait is %u but wait is NULL", (unsigned)num_wait);
    const size_t rows = b->rows, negatives = b->negatives;
    if (rows) {
        if (!b->users || !b->positives)
            return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s is NULL but rows is %zu",
                           !b->users ? "users" : "positives", rows);
        if (b->offset > SIZE_MAX / sizeof(int32_t) - rows)
            return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "offset + rows (%zu + %zu) overflows", b->offset, rows);
        const size_t need = (b->offset + rows) * sizeof(int32_t);
        if ((st = wl_check_buffer(c, b->users, need, "users")) != WL_SUCCESS ||
            (st = wl_check_buffer(c, b->positives, need, "positives")) != WL_SUCCESS)
            return st;
        if (b->neg_items) {
            const size_t neg_rows = b->shared_negatives ? 1 : b->offset + rows;
            if (neg_rows > SIZE_MAX / sizeof(int32_t) / negatives)
                return wl_fail(c, WL_ERROR_INVALID_ARGUMENT,
                               "(offset + rows) x negatives ((%zu + %zu) x %zu) overflows", b->offset, rows, negatives);
            if ((st = wl_check_buffer(c, b->neg_items, neg_rows * negatives * sizeof(int32_t), "neg_items")))
                return st;
        }
    }
    if (r)
        memset(r, 0, sizeof *r);
    const step_ids ids = {b->users, b->positives, b->neg_items, b->offset, b->shared_negatives, b->sample_key};
    return step_enqueue(m, lo, rows, negatives, &ids, r, num_wait, wait, done);
}

/* ------------------------------------------------------------ recommend and rank */

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
        st = new_buffer(c, n * sizeof(int32_t), users, "the users", &user_buf);
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
    release(&user_buf);
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
    wl_status st = check_ids(c, users, n, m->o.num_users, "users");
    if (st != WL_SUCCESS)
        return st;
    const size_t block = gemm_block(m, n, m->o.num_items, "a user's catalogue scores");
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
        st = new_buffer(c, n * sizeof(int32_t), users, "the users", &user_buf);
    if (st == WL_SUCCESS)
        st = new_buffer(c, n * sizeof(int32_t), items, "the items", &item_buf);
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
    release(&user_buf);
    release(&item_buf);
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
    wl_status st = check_ids(c, users, n, m->o.num_users, "users");
    if (st == WL_SUCCESS)
        st = check_ids(c, items, n, m->o.num_items, "items");
    if (st != WL_SUCCESS)
        return st;
    const size_t block = gemm_block(m, n, m->o.num_items, "a user's catalogue scores");
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
