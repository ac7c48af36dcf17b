/*
 * The embedding model's lifecycle (warploss.h, "model"; semantics in
 * README.md): options, creating and destroying a model, its device tables
 * and optimizer state (read, write), the known positives, and the helpers
 * the other rooms of the model share (src/model.h): buffers, id checks, and
 * the SGEMM blocks and row gathers of the step (model_step.c) and the
 * catalogue queries (model_catalogue.c). Feature matrices and
 * representations are model_features.c, model files model_file.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

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

uint64_t model_mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Rows of table t and floats per row. */
uint64_t model_table_rows(const wl_model *m, wl_table t)
{
    if (t == WL_TABLE_USERS)
        return m->o.num_user_features ? m->o.num_user_features : m->o.num_users;
    return m->o.num_item_features ? m->o.num_item_features : m->o.num_items;
}

uint32_t model_entities(const wl_model *m, wl_table t) { return t == WL_TABLE_USERS ? m->o.num_users : m->o.num_items; }

cl_mem model_rep(const wl_model *m, wl_table t)
{
    const int k = model_table_index(t);
    return m->rep[k] && !m->feat[t == WL_TABLE_USERS ? 0 : 1].identity ? m->rep[k] : m->table[k];
}

uint64_t model_table_count(const wl_model *m, wl_table t)
{
    return model_table_rows(m, t) * (t == WL_TABLE_ITEM_BIAS ? 1u : m->o.dim);
}

/* t as an index of the model's arrays (t checked already; the compiler cannot see it) */
int model_table_index(wl_table t) { return t == WL_TABLE_USERS ? 0 : t == WL_TABLE_ITEMS ? 1 : 2; }

const char *model_table_name(wl_table t)
{
    return t == WL_TABLE_USERS ? "the user table" : t == WL_TABLE_ITEMS ? "the item table" : "the item biases";
}

/* A device buffer of bytes, with a copy of host if not NULL. */
wl_status model_buffer(wl_context *c, size_t bytes, const void *host, const char *what, cl_mem *out)
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

void model_release(cl_mem *buf)
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

wl_status model_check_ids(wl_context *c, const int32_t *ids, size_t count, uint32_t limit, const char *name)
{
    const size_t k = first_out_of_range(ids, count, limit);
    if (k < count)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s[%zu] = %d is out of range [0, %u)", name, k, (int)ids[k],
                       (unsigned)limit);
    return WL_SUCCESS;
}

/* ------------------------------------------------------------ create, destroy */

/* Words of a changed-rows bitmask over rows rows (one bit per row). */
static size_t changed_words(size_t rows) { return rows / 32 + (rows % 32 != 0); }

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
    const uint32_t user_rows = o->num_user_features ? o->num_user_features : o->num_users;
    const uint32_t item_rows = o->num_item_features ? o->num_item_features : o->num_items;
    uint32_t widest = user_rows > item_rows ? user_rows : item_rows;
    widest = widest > o->num_users ? widest : o->num_users;
    widest = widest > o->num_items ? widest : o->num_items;
    const uint64_t largest = (uint64_t)widest * o->dim;
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
    const uint64_t base = model_mix64(o->seed ^ (0x5741524C4F535300ull + t));
    for (size_t e = 0; e < count; ++e) {
        const float u = (float)(model_mix64(base ^ (uint64_t)e) >> 40) * 0x1p-24f;
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
        model_release(&m->table[t]);
        model_release(&m->state[t]);
        model_release(&m->acc[t]);
    }
    for (int t = 0; t < 2; ++t) {
        model_release(&m->flag[t]);
        model_release(&m->touched[t]);
        model_release(&m->changed[t]);
    }
    model_release(&m->control);
    model_release(&m->known_ptr);
    model_release(&m->known_items);
    model_features_release(m);
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
        const size_t count = (size_t)model_table_count(m, (wl_table)t);
        float *init = initial_table(o, t, count);
        if (!init)
            return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "out of host memory for %s", model_table_name((wl_table)t));
        st = model_buffer(c, count * sizeof(float), init, model_table_name((wl_table)t), &m->table[t]);
        free(init);
    }
    const size_t items = (size_t)model_table_rows(m, WL_TABLE_ITEM_BIAS);
    static const char *const state_names[3] = {"the user table's Adagrad state", "the item table's Adagrad state",
                                               "the item biases' Adagrad state"};
    static const char *const acc_names[3] = {"the user gradient sums", "the item gradient sums",
                                             "the bias gradient sums"};
    if (st == WL_SUCCESS)
        st = model_buffer(c, items * sizeof(float), NULL, "the item biases", &m->table[WL_TABLE_ITEM_BIAS]);
    for (int t = 0; t < 3 && st == WL_SUCCESS; ++t) {
        const size_t count = (size_t)model_table_count(m, (wl_table)t);
        if (o->optimizer == WL_OPTIMIZER_ADAGRAD)
            st = model_buffer(c, count * sizeof(float), NULL, state_names[t], &m->state[t]);
        if (st == WL_SUCCESS)
            st = model_buffer(c, count * sizeof(cl_long), NULL, acc_names[t], &m->acc[t]);
    }
    for (int t = 0; t < 2 && st == WL_SUCCESS; ++t) {
        const size_t rows = (size_t)model_table_rows(m, (wl_table)t);
        st = model_buffer(c, rows * sizeof(cl_int), NULL, t ? "the item flags" : "the user flags", &m->flag[t]);
        if (st == WL_SUCCESS)
            st = model_buffer(c, rows * sizeof(cl_uint), NULL, t ? "the touched items" : "the touched users",
                              &m->touched[t]);
        if (st == WL_SUCCESS)
            st = model_buffer(c, changed_words(rows) * sizeof(cl_uint), NULL,
                              t ? "the changed items' bits" : "the changed users' bits", &m->changed[t]);
    }
    if (st == WL_SUCCESS)
        st = model_buffer(c, CONTROL_COUNT * sizeof(cl_uint), NULL, "the step counters", &m->control);
    if (st == WL_SUCCESS)
        st = model_features_init(m);
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
        const size_t count = (size_t)model_table_count(m, (wl_table)t);
        if (m->state[t])
            st = wl_enqueue_fill(&ch, m->state[t], &one, sizeof one, count * sizeof(float));
        if (st == WL_SUCCESS)
            st = wl_enqueue_fill(&ch, m->acc[t], &zero64, sizeof zero64, count * sizeof(cl_long));
    }
    for (int t = 0; t < 2 && st == WL_SUCCESS; ++t) {
        const size_t rows = (size_t)model_table_rows(m, (wl_table)t);
        st = wl_enqueue_fill(&ch, m->flag[t], &zero32, sizeof zero32, rows * sizeof(cl_int));
        if (st == WL_SUCCESS)
            st = wl_enqueue_fill(&ch, m->changed[t], &zero32, sizeof zero32, changed_words(rows) * sizeof(cl_uint));
    }
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

wl_status model_read_blocking(wl_context *c, cl_mem buf, size_t bytes, void *host, const char *what)
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
    return model_read_blocking(m->c, m->table[model_table_index(t)], (size_t)model_table_count(m, t) * sizeof(float),
                               out, "clEnqueueReadBuffer(model table)");
}

wl_status wl_model_write(wl_model *m, wl_table t, const float *in)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_status st = check_table(m->c, t, in, "in");
    if (st != WL_SUCCESS)
        return st;
    const size_t count = (size_t)model_table_count(m, t);
    if (t == WL_TABLE_ITEM_BIAS && !m->o.item_bias) {
        /* without item biases b stays 0 */
        for (size_t k = 0; k < count; ++k)
            if (in[k] != 0.0f)
                return wl_fail(m->c, WL_ERROR_INVALID_ARGUMENT,
                               "in[%zu] = %g, but the model has no item biases (item_bias is 0): b stays 0", k,
                               (double)in[k]);
    }
    m->rep_stale = 1;
    return write_blocking(m->c, m->table[model_table_index(t)], count * sizeof(float), in,
                          m->state[model_table_index(t)], "clEnqueueWriteBuffer(model table)");
}

wl_status wl_model_read_state(wl_model *m, wl_table t, float *out)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_status st = check_table(m->c, t, out, "out");
    if (st != WL_SUCCESS)
        return st;
    if (!m->state[model_table_index(t)])
        return wl_fail(m->c, WL_ERROR_INVALID_ARGUMENT, "the SGD optimizer has no state to read");
    return model_read_blocking(m->c, m->state[model_table_index(t)], (size_t)model_table_count(m, t) * sizeof(float),
                               out, "clEnqueueReadBuffer(model state)");
}

wl_status wl_model_write_state(wl_model *m, wl_table t, const float *in)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_status st = check_table(m->c, t, in, "in");
    if (st != WL_SUCCESS)
        return st;
    if (!m->state[model_table_index(t)])
        return wl_fail(m->c, WL_ERROR_INVALID_ARGUMENT, "the SGD optimizer has no state to write");
    return write_blocking(m->c, m->state[model_table_index(t)], (size_t)model_table_count(m, t) * sizeof(float), in,
                          NULL, "clEnqueueWriteBuffer(model state)");
}

/* ------------------------------------------------------------ rows of a table */

/* Bytes of rows per block of wl_model_read_rows (with as much again for the
 * state), so that a read of many rows needs no buffer of its size. */
#define ROWS_BLOCK_BYTES ((size_t)64 << 20)

/* The checks both row calls share, before anything is enqueued: *width gets
 * the floats per row. data is out or in (named so in errors); write: the rows
 * must be strictly ascending. */
static wl_status check_rows(wl_model *m, wl_table t, size_t n, const uint32_t *rows, const void *data,
                            const void *state, int write, size_t *width)
{
    wl_context *c = m->c;
    const char *name = write ? "in" : "out";
    if (t != WL_TABLE_USERS && t != WL_TABLE_ITEMS && t != WL_TABLE_ITEM_BIAS)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT,
                       "table is %d; use WL_TABLE_USERS, WL_TABLE_ITEMS or WL_TABLE_ITEM_BIAS", (int)t);
    if (state && !m->state[model_table_index(t)])
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "state is not NULL, but the SGD optimizer has no state to %s",
                       write ? "write" : "read");
    *width = t == WL_TABLE_ITEM_BIAS ? 1u : m->o.dim;
    if (n == 0)
        return WL_SUCCESS;
    if (!rows || !data)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "%s is NULL but n is %zu", !rows ? "rows" : name, n);
    if (n > SIZE_MAX / sizeof(float) / *width)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "n is %zu: %zu rows of %zu floats overflow a size", n, n, *width);
    const uint64_t limit = model_table_rows(m, t);
    for (size_t k = 0; k < n; ++k) {
        if (rows[k] >= limit)
            return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "rows[%zu] = %u is out of range [0, %llu) of %s", k,
                           (unsigned)rows[k], (unsigned long long)limit, model_table_name(t));
        if (write && k > 0 && rows[k] <= rows[k - 1])
            return wl_fail(c, WL_ERROR_INVALID_ARGUMENT,
                           "rows[%zu] = %u is not greater than rows[%zu] = %u (the rows written must be strictly "
                           "ascending)",
                           k, (unsigned)rows[k], k - 1, (unsigned)rows[k - 1]);
    }
    return WL_SUCCESS;
}

/* Write (blocking: the caller may free host at once) bytes of host into the
 * scratch buffer id on the chain; *out gets the buffer. */
static wl_status upload(wl_chain *ch, wl_scratch_id id, size_t bytes, const void *host, const char *what, cl_mem *out)
{
    wl_context *c = ch->c;
    wl_status st = wl_scratch(c, id, bytes, what, out);
    if (st != WL_SUCCESS)
        return st;
    cl_event ev;
    const cl_int err = clEnqueueWriteBuffer(c->queue, *out, CL_TRUE, 0, bytes, host, ch->num_wait,
                                            ch->num_wait ? ch->wait : NULL, &ev);
    if (err != CL_SUCCESS)
        return wl_fail_cl(c, err, "clEnqueueWriteBuffer(model rows)");
    wl_chain_step(ch, ev);
    return WL_SUCCESS;
}

/* One block of wl_model_read_rows: count rows from the host's ids into out
 * (and state), gathered on the device and read back (blocking). Scratch
 * buffers, kept on the context: a trainer's syncs allocate nothing. */
static wl_status read_rows_block(wl_chain *ch, wl_model *m, wl_table t, size_t count, size_t width,
                                 const uint32_t *rows, float *out, float *state)
{
    wl_context *c = m->c;
    const int k = model_table_index(t);
    const size_t bytes = count * width * sizeof(float);
    const cl_ulong count64 = count, zero = 0;
    const cl_uint width32 = (cl_uint)width, limit = (cl_uint)model_table_rows(m, t);
    cl_mem ids = NULL, gathered[2] = {NULL, NULL};
    wl_status st = upload(ch, WL_SCRATCH_MODEL_ROW_IDS, count * sizeof(uint32_t), rows, "the row ids", &ids);
    for (int part = 0; part < (state ? 2 : 1) && st == WL_SUCCESS; ++part) {
        st = wl_scratch(c, part ? WL_SCRATCH_MODEL_ROW_STATE : WL_SCRATCH_MODEL_ROW_VALUES, bytes,
                        part ? "the rows' state" : "the rows", &gathered[part]);
        const cl_mem source = part ? m->state[k] : m->table[k];
        const wl_arg args[] = {WL_ARG(count64), WL_ARG(width32), WL_ARG(limit),         WL_ARG(ids),
                               WL_ARG(zero),    WL_ARG(source),  WL_ARG(gathered[part])};
        const wl_launch l = {WL_KERNEL_MODEL_GATHER, count * width, 0, args, sizeof args / sizeof args[0]};
        if (st == WL_SUCCESS)
            st = wl_enqueue_kernel(ch, &l);
    }
    /* the reads in chain order, the last one blocking: both are done on return */
    for (int part = 0; part < (state ? 2 : 1) && st == WL_SUCCESS; ++part) {
        const cl_bool blocking = part || !state ? CL_TRUE : CL_FALSE;
        cl_event ev;
        const cl_int err = clEnqueueReadBuffer(c->queue, gathered[part], blocking, 0, bytes, part ? state : out,
                                               ch->num_wait, ch->wait, &ev);
        if (err != CL_SUCCESS)
            st = wl_fail_cl(c, err, part ? "clEnqueueReadBuffer(model state rows)" : "clEnqueueReadBuffer(model rows)");
        else
            wl_chain_step(ch, ev);
    }
    return st;
}

wl_status wl_model_read_rows(wl_model *m, wl_table t, size_t n, const uint32_t *rows, float *out, float *state)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    size_t width;
    wl_status st = check_rows(m, t, n, rows, out, state, 0, &width);
    if (st != WL_SUCCESS || n == 0)
        return st;
    const size_t cap = m->c->max_alloc < ROWS_BLOCK_BYTES ? (size_t)m->c->max_alloc : ROWS_BLOCK_BYTES;
    size_t block = cap / (width * sizeof(float));
    block = block < 1 ? 1 : block < n ? block : n; /* a table's row fits one allocation */
    wl_chain ch;
    if ((st = wl_chain_start(&ch, m->c, 0, NULL)) != WL_SUCCESS)
        return st;
    for (size_t first = 0; first < n && st == WL_SUCCESS; first += block) {
        const size_t count = n - first < block ? n - first : block;
        st = read_rows_block(&ch, m, t, count, width, rows + first, out + first * width,
                             state ? state + first * width : NULL);
    }
    /* a block's first read is not blocking: after a failure it may still be writing into out */
    if (st != WL_SUCCESS && ch.last)
        clWaitForEvents(1, &ch.last);
    if (st == WL_SUCCESS || ch.last)
        wl_chain_finish(&ch, NULL);
    wl_chain_end(&ch);
    return st;
}

wl_status wl_model_write_rows(wl_model *m, wl_table t, size_t n, const uint32_t *rows, const float *in,
                              const float *state)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_context *c = m->c;
    size_t width;
    wl_status st = check_rows(m, t, n, rows, in, state, 1, &width);
    if (st != WL_SUCCESS || n == 0)
        return st;
    if (t == WL_TABLE_ITEM_BIAS && !m->o.item_bias) {
        /* without item biases b stays 0 (wl_model_write) */
        for (size_t k = 0; k < n; ++k)
            if (in[k] != 0.0f)
                return wl_fail(c, WL_ERROR_INVALID_ARGUMENT,
                               "in[%zu] = %g, but the model has no item biases (item_bias is 0): b stays 0", k,
                               (double)in[k]);
    }
    /* strictly ascending rows in range: n is at most the table's rows, and the
     * values no larger than the table */
    const int k = model_table_index(t);
    const size_t bytes = n * width * sizeof(float);
    const cl_ulong count64 = n;
    const cl_uint width32 = (cl_uint)width;
    cl_mem ids = NULL, values[2] = {NULL, NULL};
    wl_chain ch;
    if ((st = wl_chain_start(&ch, c, 0, NULL)) != WL_SUCCESS)
        return st;
    st = upload(&ch, WL_SCRATCH_MODEL_ROW_IDS, n * sizeof(uint32_t), rows, "the row ids", &ids);
    if (st == WL_SUCCESS)
        st = upload(&ch, WL_SCRATCH_MODEL_ROW_VALUES, bytes, in, "the rows", &values[0]);
    if (st == WL_SUCCESS && state)
        st = upload(&ch, WL_SCRATCH_MODEL_ROW_STATE, bytes, state, "the rows' state", &values[1]);
    if (st == WL_SUCCESS)
        m->rep_stale = 1;
    for (int part = 0; part < (state ? 2 : 1) && st == WL_SUCCESS; ++part) {
        const cl_mem target = part ? m->state[k] : m->table[k];
        const wl_arg args[] = {WL_ARG(count64), WL_ARG(width32), WL_ARG(ids), WL_ARG(values[part]), WL_ARG(target)};
        const wl_launch l = {WL_KERNEL_MODEL_SCATTER_ROWS, n * width, 0, args, sizeof args / sizeof args[0]};
        st = wl_enqueue_kernel(&ch, &l);
    }
    if (st == WL_SUCCESS || ch.last)
        wl_chain_finish(&ch, NULL);
    wl_chain_end(&ch);
    return st;
}

/* ------------------------------------------------------------ rows the steps changed */

wl_status wl_model_changed_rows(wl_model *m, wl_table side, uint32_t *rows, size_t *n)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_context *c = m->c;
    if (!n)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "n is NULL");
    *n = 0;
    if (side != WL_TABLE_USERS && side != WL_TABLE_ITEMS && side != WL_TABLE_ITEM_BIAS)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT,
                       "side is %d; use WL_TABLE_USERS, WL_TABLE_ITEMS or WL_TABLE_ITEM_BIAS", (int)side);
    /* V and b share the item rows, their touched list and their bits */
    const int s = side == WL_TABLE_USERS ? 0 : 1;
    const size_t count = (size_t)model_table_rows(m, side), words = changed_words(count);
    uint32_t *bits = malloc(words * sizeof *bits);
    if (!bits)
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "out of host memory for the bits of %zu rows", count);
    /* read the bits after every earlier command, then clear them on the
     * chain: a later step's marks land after the clear */
    wl_chain ch;
    wl_status st = wl_chain_start(&ch, c, 0, NULL);
    if (st == WL_SUCCESS) {
        cl_event ev;
        const cl_int err = clEnqueueReadBuffer(c->queue, m->changed[s], CL_TRUE, 0, words * sizeof *bits, bits,
                                               ch.num_wait, ch.num_wait ? ch.wait : NULL, &ev);
        if (err != CL_SUCCESS)
            st = wl_fail_cl(c, err, "clEnqueueReadBuffer(changed rows)");
        else
            wl_chain_step(&ch, ev);
        const cl_uint zero = 0;
        if (st == WL_SUCCESS)
            st = wl_enqueue_fill(&ch, m->changed[s], &zero, sizeof zero, words * sizeof *bits);
        if (st == WL_SUCCESS || ch.last)
            wl_chain_finish(&ch, NULL);
        wl_chain_end(&ch);
    }
    /* listed only once the clear is enqueued: a failure leaves the bits set
     * (the next call lists them) and rows untouched */
    size_t found = 0;
    for (size_t w = 0; w < words && st == WL_SUCCESS; ++w)
        for (uint32_t b = 0; b < 32 && bits[w] >> b; ++b)
            if (bits[w] >> b & 1u && w * 32 + b < count) {
                if (rows)
                    rows[found] = (uint32_t)(w * 32 + b);
                ++found;
            }
    free(bits);
    if (st == WL_SUCCESS)
        *n = found;
    return st;
}

/* ------------------------------------------------------------ known positives */

wl_status model_check_sets(wl_model *m, const uint64_t *indptr, const int32_t *items, const char *what)
{
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
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "%llu %s need more than the device's largest allocation (%llu bytes)",
                       (unsigned long long)total, what, (unsigned long long)c->max_alloc);
    for (uint32_t u = 0; u < users; ++u) {
        for (uint64_t k = indptr[u]; k < indptr[u + 1]; ++k) {
            if (items[k] < 0 || (uint32_t)items[k] >= num_items)
                return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "items[%llu] = %d is out of range [0, %u)",
                               (unsigned long long)k, (int)items[k], (unsigned)num_items);
            if (k > indptr[u] && items[k] <= items[k - 1])
                return wl_fail(c, WL_ERROR_INVALID_ARGUMENT,
                               "items[%llu] = %d is not greater than items[%llu] = %d (user %u's %s must be "
                               "strictly ascending)",
                               (unsigned long long)k, (int)items[k], (unsigned long long)k - 1, (int)items[k - 1],
                               (unsigned)u, what);
        }
    }
    return WL_SUCCESS;
}

wl_status wl_model_set_known(wl_model *m, const uint64_t *indptr, const int32_t *items)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    wl_context *c = m->c;
    const uint32_t users = m->o.num_users;
    wl_status st = model_check_sets(m, indptr, items, "known positives");
    if (st != WL_SUCCESS)
        return st;
    const uint64_t total = indptr[users];
    /* new buffers first, so that a failure leaves the previous set in place;
     * commands already queued keep the old buffers alive */
    cl_mem ptr = NULL, list = NULL;
    if (total) {
        st = model_buffer(c, ((size_t)users + 1) * sizeof(cl_ulong), indptr, "the known positives' indptr", &ptr);
        if (st == WL_SUCCESS)
            st = model_buffer(c, (size_t)total * sizeof(int32_t), items, "the known positives", &list);
        if (st != WL_SUCCESS) {
            model_release(&ptr);
            return st;
        }
    }
    model_release(&m->known_ptr);
    model_release(&m->known_items);
    m->known_ptr = ptr;
    m->known_items = list;
    m->known_count = total;
    return WL_SUCCESS;
}

/* ------------------------------------------------------------ SGEMM blocks, shared by the step and the catalogue */

/* Rows per block of an SGEMM whose output rows have `cols` floats (and whose
 * input rows dim floats), at most n and SCAN_SLICE, at least 1; 0 (with the
 * error set) if one row does not fit. what names the output in the error. */
size_t model_gemm_block(wl_model *m, size_t n, size_t cols, const char *what)
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

/* Enqueue out[r] = row ids[offset + r] of t's representations, r < count (model_gather.cl). */
wl_status model_gather(wl_chain *ch, wl_model *m, size_t count, cl_mem ids, size_t offset, wl_table t, cl_mem out)
{
    const cl_ulong count64 = count, offset64 = offset;
    /* the ids are int: at most 2^31 keeps a negative one out of range (model_gather.cl) */
    const uint32_t entities = model_entities(m, t);
    const cl_uint limit = entities < (uint32_t)1 << 31 ? entities : (uint32_t)1 << 31;
    const cl_mem source = model_rep(m, t);
    const wl_arg args[] = {WL_ARG(count64),  WL_ARG(m->o.dim), WL_ARG(limit), WL_ARG(ids),
                           WL_ARG(offset64), WL_ARG(source),   WL_ARG(out)};
    const wl_launch l = {WL_KERNEL_MODEL_GATHER, count * m->o.dim, 0, args, sizeof args / sizeof args[0]};
    return wl_enqueue_kernel(ch, &l);
}
