/*
 * warploss-train on several processes: see train_ranks.h. Everything MPI is
 * in this file; without WL_HAVE_MPI only N = 1 exists.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "train_options.h"
#include "train_ranks.h"

#ifdef WL_HAVE_MPI
#include <mpi.h>
#endif

/* The fixed point of the deltas: 2^32 steps per unit, as the library's scatter. */
#define SYNC_SCALE 4294967296.0
/* A delta this large (in units) means training diverged; it would not fit the integers' sums. */
#define SYNC_LIMIT 1073741824.0

static const char *launcher_size(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; ++i) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return v;
    }
    return NULL;
}

int ranks_init(train_ranks *k, int *argc, char ***argv)
{
    memset(k, 0, sizeof *k);
    k->size = 1;
    const char *launched = launcher_size();
    if (!launched)
        return 0;
#ifdef WL_HAVE_MPI
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        fprintf(stderr, "%s: MPI_Init failed\n", cli_program);
        return EXIT_FAIL;
    }
    k->mpi = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    MPI_Comm_rank(MPI_COMM_WORLD, &k->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &k->size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, k->rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &k->local_rank);
    MPI_Comm_free(&node);
    if (k->size > 1) {
        static char name[128];
        snprintf(name, sizeof name, "%s (rank %d of %d)", cli_program, k->rank, k->size);
        cli_program = name;
        if (k->rank != 0 && !freopen("/dev/null", "w", stdout)) {
            fprintf(stderr, "%s: cannot drop its standard output (/dev/null)\n", cli_program);
            MPI_Abort(MPI_COMM_WORLD, EXIT_FAIL);
        }
    }
    return 0;
#else
    (void)argc;
    (void)argv;
    if (strcmp(launched, "1") && getenv("OMPI_COMM_WORLD_SIZE")) {
        fprintf(stderr,
                "%s: started by mpirun with %s ranks, but built without MPI: rebuild with Open MPI "
                "(meson setup -Dmpi=enabled) or run one process\n",
                cli_program, launched);
        return EXIT_FAIL;
    }
    return 0;
#endif
}

void ranks_finalize(train_ranks *k)
{
#ifdef WL_HAVE_MPI
    if (k->mpi) {
        fflush(stdout);
        MPI_Finalize();
    }
#endif
    k->mpi = 0;
}

/* v over the ranks: the largest (max) or the sum; N = 1: v. */
static uint64_t reduce_u64(const train_ranks *k, uint64_t v, int max)
{
#ifdef WL_HAVE_MPI
    if (k->size > 1) {
        uint64_t all = v;
        MPI_Allreduce(&v, &all, 1, MPI_UINT64_T, max ? MPI_MAX : MPI_SUM, MPI_COMM_WORLD);
        return all;
    }
#else
    (void)k;
    (void)max;
#endif
    return v;
}

int ranks_agree(const train_ranks *k, int rc)
{
    return (int)reduce_u64(k, (uint64_t)(rc < 0 ? 0 : rc), 1); /* exit statuses: 0 and positive */
}

void ranks_abort(const train_ranks *k, int rc)
{
#ifdef WL_HAVE_MPI
    if (k->size > 1) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, rc);
    }
#else
    (void)k;
    (void)rc;
#endif
}

const char *ranks_device(const train_ranks *k, char *buf, size_t size)
{
    const char *env = getenv("WARPLOSS_DEVICE");
    if (k->size < 2 || (env && *env))
        return NULL;
    wl_device_list list;
    if (wl_list_devices(&list) != WL_SUCCESS)
        return NULL;
    size_t gpus = 0;
    for (size_t i = 0; i < list.device_count; ++i)
        gpus += (list.devices[i].type & CL_DEVICE_TYPE_GPU) != 0;
    const char *spec = NULL;
    if (gpus) {
        size_t want = (size_t)k->local_rank % gpus;
        for (size_t i = 0; i < list.device_count && !spec; ++i) {
            if (!(list.devices[i].type & CL_DEVICE_TYPE_GPU))
                continue;
            if (want-- == 0) {
                snprintf(buf, size, "%u:%u", list.devices[i].platform_index, list.devices[i].device_index);
                spec = buf;
            }
        }
    }
    wl_device_list_free(&list);
    return spec;
}

uint64_t ranks_max(const train_ranks *k, uint64_t v) { return reduce_u64(k, v, 1); }

uint64_t ranks_sum(const train_ranks *k, uint64_t v) { return reduce_u64(k, v, 0); }

/* v[0..n) summed over the ranks in rank order (the same bits on every run), on every rank. */
static void sum_doubles(const train_ranks *k, double *v, int n)
{
#ifdef WL_HAVE_MPI
    if (k->size < 2)
        return;
    double *all = cli_alloc((size_t)k->size * (size_t)n * sizeof *all);
    MPI_Allgather(v, n, MPI_DOUBLE, all, n, MPI_DOUBLE, MPI_COMM_WORLD);
    for (int j = 0; j < n; ++j) {
        double s = 0;
        for (int r = 0; r < k->size; ++r)
            s += all[(size_t)r * (size_t)n + (size_t)j];
        v[j] = s;
    }
    free(all);
#else
    (void)k;
    (void)v;
    (void)n;
#endif
}

double ranks_sum_double(const train_ranks *k, double v)
{
    sum_doubles(k, &v, 1);
    return v;
}

#ifdef WL_HAVE_MPI
/* MPI_Bcast of n elements from root, in pieces that fit an int count. */
static void broadcast(void *buf, size_t n, MPI_Datatype type, size_t elem, int root)
{
    const size_t piece = (size_t)1 << 28;
    for (size_t at = 0; at < n; at += piece) {
        const size_t m = n - at < piece ? n - at : piece;
        MPI_Bcast((char *)buf + at * elem, (int)m, type, root, MPI_COMM_WORLD);
    }
}
#endif

int ranks_share_pieces(const train_ranks *k, td_interactions *pieces, size_t count)
{
#ifdef WL_HAVE_MPI
    int oom = 0;
    for (size_t i = 0; i < count; ++i) {
        const int root = (int)(i % (size_t)k->size);
        td_interactions *x = &pieces[i];
        uint64_t n = x->count;
        MPI_Bcast(&n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD);
        if (!n)
            continue;
        if (k->rank != root) {
            x->count = (size_t)n;
            x->users = malloc(n * sizeof *x->users);
            x->items = malloc(n * sizeof *x->items);
            x->ratings = malloc(n * sizeof *x->ratings);
        }
        int ok = x->users && x->items && x->ratings, all = ok;
        MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        if (!all) {
            oom = 1;
            break;
        }
        broadcast(x->users, n, MPI_INT64_T, sizeof *x->users, root);
        broadcast(x->items, n, MPI_INT64_T, sizeof *x->items, root);
        broadcast(x->ratings, n, MPI_FLOAT, sizeof *x->ratings, root);
    }
    return oom ? -1 : 0;
#else
    (void)k;
    (void)pieces;
    (void)count;
    return 0;
#endif
}

/* ------------------------------------------------------------ partition */

/* The pairs (u[j], x[j]) of users the rank owns, users made local; w (may be NULL) alongside. */
static size_t keep_pairs(const train_ranks *k, size_t n, const int32_t *u, const int32_t *x, const float *w,
                         int32_t **ou, int32_t **ox, float **ow)
{
    size_t m = 0;
    for (size_t j = 0; j < n; ++j)
        m += (uint32_t)u[j] % (uint32_t)k->size == (uint32_t)k->rank;
    *ou = cli_alloc((m ? m : 1) * sizeof **ou);
    *ox = cli_alloc((m ? m : 1) * sizeof **ox);
    if (ow)
        *ow = w ? cli_alloc((m ? m : 1) * sizeof **ow) : NULL;
    size_t t = 0;
    for (size_t j = 0; j < n; ++j) {
        if ((uint32_t)u[j] % (uint32_t)k->size != (uint32_t)k->rank)
            continue;
        (*ou)[t] = (int32_t)((uint32_t)u[j] / (uint32_t)k->size);
        (*ox)[t] = x[j];
        if (ow && w)
            (*ow)[t] = w[j];
        ++t;
    }
    return m;
}

int ranks_partition(const train_ranks *k, const td_dataset *g, td_dataset *local)
{
    memset(local, 0, sizeof *local);
    const uint32_t size = (uint32_t)k->size, rank = (uint32_t)k->rank;
    local->num_users = g->num_users > rank ? (g->num_users - rank + size - 1) / size : 0;
    local->num_items = g->num_items;
    local->user_ids = cli_alloc(((size_t)local->num_users + 1) * sizeof *local->user_ids);
    for (uint32_t l = 0; l < local->num_users; ++l)
        local->user_ids[l] = g->user_ids[(size_t)l * size + rank];
    local->item_ids = cli_alloc(((size_t)g->num_items + 1) * sizeof *local->item_ids);
    memcpy(local->item_ids, g->item_ids, g->num_items * sizeof *g->item_ids);
    local->train_count = keep_pairs(k, g->train_count, g->train_users, g->train_items, g->train_weights,
                                    &local->train_users, &local->train_items, &local->train_weights);
    local->test_count = keep_pairs(k, g->test_count, g->test_users, g->test_items, NULL, &local->test_users,
                                   &local->test_items, NULL);
    local->cold_count = keep_pairs(k, g->cold_count, g->cold_users, g->cold_items, NULL, &local->cold_users,
                                   &local->cold_items, NULL);
    local->cold_first = g->cold_first;
    local->num_cold_items = g->num_cold_items;
    return 0;
}

wl_status ranks_localize(const train_ranks *k, wl_context *c, wl_model **m, uint32_t num_local, char *err,
                         size_t err_size)
{
    wl_model_options o;
    wl_model_get_options(*m, &o);
    const int adagrad = o.optimizer == WL_OPTIMIZER_ADAGRAD;
    const size_t nu = num_local ? num_local : 1;
    uint32_t *rows = cli_alloc(nu * sizeof *rows);
    for (uint32_t l = 0; l < num_local; ++l)
        rows[l] = l * (uint32_t)k->size + (uint32_t)k->rank;
    float *u = cli_alloc(nu * o.dim * sizeof *u), *su = cli_alloc(nu * o.dim * sizeof *su);
    float *v = cli_alloc((size_t)o.num_items * o.dim * sizeof *v);
    float *sv = cli_alloc((size_t)o.num_items * o.dim * sizeof *sv);
    float *b = cli_alloc((size_t)o.num_items * sizeof *b), *sb = cli_alloc((size_t)o.num_items * sizeof *sb);
    wl_model *lm = NULL;
    wl_status st = wl_model_read_rows(*m, WL_TABLE_USERS, num_local, rows, u, adagrad ? su : NULL);
    if (st == WL_SUCCESS)
        st = wl_model_read(*m, WL_TABLE_ITEMS, v);
    if (st == WL_SUCCESS)
        st = wl_model_read(*m, WL_TABLE_ITEM_BIAS, b);
    if (st == WL_SUCCESS && adagrad)
        st = wl_model_read_state(*m, WL_TABLE_ITEMS, sv);
    if (st == WL_SUCCESS && adagrad)
        st = wl_model_read_state(*m, WL_TABLE_ITEM_BIAS, sb);
    if (st != WL_SUCCESS) {
        snprintf(err, err_size, "cannot read the model's rows: %s", wl_context_last_error(c));
    } else {
        o.num_users = nu;
        st = wl_model_create(c, &o, &lm);
        if (st == WL_SUCCESS && num_local)
            st = wl_model_write(lm, WL_TABLE_USERS, u);
        if (st == WL_SUCCESS)
            st = wl_model_write(lm, WL_TABLE_ITEMS, v);
        if (st == WL_SUCCESS)
            st = wl_model_write(lm, WL_TABLE_ITEM_BIAS, b);
        if (st == WL_SUCCESS && adagrad && num_local)
            st = wl_model_write_state(lm, WL_TABLE_USERS, su);
        if (st == WL_SUCCESS && adagrad)
            st = wl_model_write_state(lm, WL_TABLE_ITEMS, sv);
        if (st == WL_SUCCESS && adagrad)
            st = wl_model_write_state(lm, WL_TABLE_ITEM_BIAS, sb);
        if (st != WL_SUCCESS)
            snprintf(err, err_size, "cannot create the rank's model: %s", wl_context_last_error(c));
    }
    if (st == WL_SUCCESS) {
        wl_model_destroy(*m);
        *m = lm;
    } else {
        wl_model_destroy(lm);
    }
    free(rows);
    free(u);
    free(su);
    free(v);
    free(sv);
    free(b);
    free(sb);
    return st;
}

/* ------------------------------------------------------------ item sync */

/* The rows V, b and (Adagrad) their state of the whole item side into out [items x width]. */
static wl_status read_items(ranks_items *y, wl_model *m, float *out)
{
    wl_status st = wl_model_read(m, WL_TABLE_ITEMS, y->v);
    if (st == WL_SUCCESS)
        st = wl_model_read(m, WL_TABLE_ITEM_BIAS, y->b);
    if (st == WL_SUCCESS && y->adagrad)
        st = wl_model_read_state(m, WL_TABLE_ITEMS, y->sv);
    if (st == WL_SUCCESS && y->adagrad)
        st = wl_model_read_state(m, WL_TABLE_ITEM_BIAS, y->sb);
    if (st != WL_SUCCESS)
        return st;
    const size_t d = y->dim, w = y->width;
    for (size_t i = 0; i < y->items; ++i) {
        float *row = out + i * w;
        memcpy(row, y->v + i * d, d * sizeof *row);
        row[d] = y->b[i];
        if (y->adagrad) {
            memcpy(row + d + 1, y->sv + i * d, d * sizeof *row);
            row[2 * d + 1] = y->sb[i];
        }
    }
    return WL_SUCCESS;
}

wl_status ranks_items_start(ranks_items *y, wl_model *m, int mean)
{
    memset(y, 0, sizeof *y);
    wl_model_options o;
    wl_model_get_options(m, &o);
    y->items = o.num_items;
    y->dim = o.dim;
    y->adagrad = o.optimizer == WL_OPTIMIZER_ADAGRAD;
    y->mean = mean;
    y->width = (size_t)(o.dim + 1) * (y->adagrad ? 2 : 1);
    const size_t n = y->items, d = y->dim, words = (n + 63) / 64;
    y->base = cli_alloc(n * y->width * sizeof *y->base);
    y->now = cli_alloc(n * y->width * sizeof *y->now);
    y->v = cli_alloc(n * d * sizeof *y->v);
    y->b = cli_alloc(n * sizeof *y->b);
    y->sv = cli_alloc(n * d * sizeof *y->sv);
    y->sb = cli_alloc(n * sizeof *y->sb);
    y->mask = cli_alloc(words * sizeof *y->mask);
    y->union_mask = cli_alloc(words * sizeof *y->union_mask);
    y->q = cli_alloc(n * y->width * sizeof *y->q);
    y->rows = cli_alloc(n * sizeof *y->rows);
    y->changed = cli_alloc(n * sizeof *y->changed);
    y->rows_v = cli_alloc(n * d * sizeof *y->rows_v);
    y->rows_b = cli_alloc(n * sizeof *y->rows_b);
    y->rows_sv = cli_alloc(n * d * sizeof *y->rows_sv);
    y->rows_sb = cli_alloc(n * sizeof *y->rows_sb);
    /* The whole side once (the same bits on every rank); from here on only the rows the steps changed. */
    size_t none;
    wl_status st = read_items(y, m, y->base);
    if (st == WL_SUCCESS)
        st = wl_model_changed_rows(m, WL_TABLE_ITEMS, NULL, &none);
    free(y->v);
    free(y->b);
    free(y->sv);
    free(y->sb);
    y->v = y->b = y->sv = y->sb = NULL;
    return st;
}

void ranks_items_free(ranks_items *y)
{
    free(y->base);
    free(y->now);
    free(y->v);
    free(y->b);
    free(y->sv);
    free(y->sb);
    free(y->mask);
    free(y->union_mask);
    free(y->q);
    free(y->rows);
    free(y->changed);
    free(y->rows_v);
    free(y->rows_b);
    free(y->rows_sv);
    free(y->rows_sb);
    memset(y, 0, sizeof *y);
}

#ifdef WL_HAVE_MPI
/* MPI_Allreduce in place over n elements, in pieces that fit an int count. */
static void allreduce(void *buf, size_t n, MPI_Datatype type, size_t elem, MPI_Op op)
{
    const size_t piece = (size_t)1 << 28;
    for (size_t at = 0; at < n; at += piece) {
        const size_t m = n - at < piece ? n - at : piece;
        MPI_Allreduce(MPI_IN_PLACE, (char *)buf + at * elem, (int)m, type, op, MPI_COMM_WORLD);
    }
}

/* The delta now - base of one value as a fixed-point integer; 0 if it does not fit. */
static int to_fixed(float now, float base, int64_t *q)
{
    const double d = ((double)now - (double)base) * SYNC_SCALE;
    if (!(fabs(d) < SYNC_LIMIT * SYNC_SCALE))
        return 0;
    *q = (int64_t)llrint(d);
    return 1;
}

/* The rows the steps changed since the last sync, read from the device into now. */
static wl_status read_changed(ranks_items *y, wl_model *m, size_t *count)
{
    wl_status st = wl_model_changed_rows(m, WL_TABLE_ITEMS, y->changed, count);
    const size_t n = *count, d = y->dim, w = y->width;
    if (st == WL_SUCCESS)
        st = wl_model_read_rows(m, WL_TABLE_ITEMS, n, y->changed, y->rows_v, y->adagrad ? y->rows_sv : NULL);
    if (st == WL_SUCCESS)
        st = wl_model_read_rows(m, WL_TABLE_ITEM_BIAS, n, y->changed, y->rows_b, y->adagrad ? y->rows_sb : NULL);
    if (st != WL_SUCCESS)
        return st;
    for (size_t j = 0; j < n; ++j) {
        float *row = y->now + (size_t)y->changed[j] * w;
        memcpy(row, y->rows_v + j * d, d * sizeof *row);
        row[d] = y->rows_b[j];
        if (y->adagrad) {
            memcpy(row + d + 1, y->rows_sv + j * d, d * sizeof *row);
            row[2 * d + 1] = y->rows_sb[j];
        }
    }
    return WL_SUCCESS;
}
#endif

wl_status ranks_sync(train_ranks *k, ranks_items *y, wl_context *c, wl_model *m, char *err, size_t err_size)
{
#ifdef WL_HAVE_MPI
    const double t0 = cli_now();
    const size_t n = y->items, d = y->dim, w = y->width, words = (n + 63) / 64;
    size_t changed = 0;
    wl_status st = read_changed(y, m, &changed);
    if (st != WL_SUCCESS) {
        snprintf(err, err_size, "cannot read the changed item rows: %s", wl_context_last_error(c));
        return st;
    }
    memset(y->mask, 0, words * sizeof *y->mask);
    for (size_t j = 0; j < changed; ++j)
        y->mask[y->changed[j] / 64] |= (uint64_t)1 << (y->changed[j] % 64);
    /* Every sync OR-reduces a bitmap of the changed rows; then the deltas of the rows any rank changed (sparse) or
     * of every row (dense), whichever is fewer: the union has at most `total` rows. */
    uint64_t total = changed;
    const double t1 = cli_now();
    allreduce(&total, 1, MPI_UINT64_T, sizeof total, MPI_SUM); /* where a rank waits for the slowest */
    k->sync_wait += cli_now() - t1;
    const int sparse = total < n;
    /* The rows any rank changed: every rank writes them all back (base + the sum, even a sum of 0), so that the
     * replicas agree bit for bit whatever each rank's steps left on its device. */
    memcpy(y->union_mask, y->mask, words * sizeof *y->mask);
    allreduce(y->union_mask, words, MPI_UINT64_T, sizeof *y->union_mask, MPI_BOR);
    k->sync_bytes += (double)(words * sizeof(uint64_t));
    size_t rows = 0;
    for (size_t i = 0; i < n; ++i)
        if (!sparse || (y->union_mask[i / 64] >> (i % 64) & 1))
            y->rows[rows++] = (uint32_t)i;
    uint64_t bad = 0;
    for (size_t j = 0; j < rows; ++j) {
        const size_t i = y->rows[j];
        int64_t *q = y->q + j * w;
        if (!(y->mask[i / 64] >> (i % 64) & 1)) {
            memset(q, 0, w * sizeof *q); /* a row this rank did not change */
            continue;
        }
        for (size_t x = 0; x < w; ++x)
            bad += !to_fixed(y->now[i * w + x], y->base[i * w + x], &q[x]);
    }
    bad = ranks_sum(k, bad);
    if (bad) {
        snprintf(err, err_size,
                 "%llu item values moved by 2^30 or more (or are not finite) since the last sync: training diverged",
                 (unsigned long long)bad);
        return WL_ERROR_NONFINITE;
    }
    allreduce(y->q, rows * w, MPI_INT64_T, sizeof *y->q, MPI_SUM);
    k->sync_bytes += (double)(rows * w * sizeof(int64_t) + sizeof total);
    /* base + the combined delta: the same integers and base on every rank give the same floats. The rows some rank
     * changed go back to the device. */
    const double vscale = 1.0 / (SYNC_SCALE * (y->mean ? (double)k->size : 1.0)), sscale = 1.0 / SYNC_SCALE;
    size_t back = 0;
    for (size_t j = 0; j < rows; ++j) {
        const int64_t *q = y->q + j * w;
        const uint32_t i = y->rows[j];
        if (!(y->union_mask[i / 64] >> (i % 64) & 1))
            continue; /* no rank changed it (a dense sync): base already */
        float *base = y->base + (size_t)i * w;
        for (size_t x = 0; x < w; ++x)
            base[x] = (float)((double)base[x] + (double)q[x] * (x <= d ? vscale : sscale));
        y->changed[back] = i;
        memcpy(y->rows_v + back * d, base, d * sizeof *base);
        y->rows_b[back] = base[d];
        if (y->adagrad) {
            memcpy(y->rows_sv + back * d, base + d + 1, d * sizeof *base);
            y->rows_sb[back] = base[2 * d + 1];
        }
        ++back;
    }
    st = wl_model_write_rows(m, WL_TABLE_ITEMS, back, y->changed, y->rows_v, y->adagrad ? y->rows_sv : NULL);
    if (st == WL_SUCCESS)
        st = wl_model_write_rows(m, WL_TABLE_ITEM_BIAS, back, y->changed, y->rows_b, y->adagrad ? y->rows_sb : NULL);
    if (st != WL_SUCCESS) {
        snprintf(err, err_size, "cannot write the item rows: %s", wl_context_last_error(c));
        return st;
    }
    ++k->syncs;
    k->sparse_syncs += (uint64_t)sparse;
    k->sync_rows += (double)changed;
    k->sync_seconds += cli_now() - t0;
    return WL_SUCCESS;
#else
    (void)k;
    (void)y;
    (void)c;
    (void)m;
    snprintf(err, err_size, "built without MPI");
    return WL_ERROR_INVALID_ARGUMENT;
#endif
}

/* ------------------------------------------------------------ metrics, save */

void ranks_reduce_metrics(const train_ranks *k, const wl_user_metrics *per_user, size_t n, uint32_t kk, wl_metrics *out)
{
    double s[5] = {0, 0, 0, 0, 0}; /* users, precision, recall, AUC, MRR */
    for (size_t u = 0; u < n; ++u) {
        if (!per_user[u].held_out)
            continue;
        s[0] += 1;
        s[1] += per_user[u].precision_at_k;
        s[2] += per_user[u].recall_at_k;
        s[3] += per_user[u].auc;
        s[4] += per_user[u].mrr;
    }
    sum_doubles(k, s, 5);
    memset(out, 0, sizeof *out);
    out->k = kk;
    out->users = (uint64_t)s[0];
    if (s[0] > 0) {
        out->precision_at_k = s[1] / s[0];
        out->recall_at_k = s[2] / s[0];
        out->auc = s[3] / s[0];
        out->mrr = s[4] / s[0];
    }
}

#ifdef WL_HAVE_MPI
/* FNV-1a over the bytes of the item side (V, b and with Adagrad their state) into *h. */
static wl_status items_hash(wl_model *m, int adagrad, uint64_t *h)
{
    wl_model_options o;
    wl_model_get_options(m, &o);
    const size_t n = (size_t)o.num_items * o.dim;
    float *t = cli_alloc(n * sizeof *t);
    const wl_table tables[2] = {WL_TABLE_ITEMS, WL_TABLE_ITEM_BIAS};
    uint64_t x = 14695981039346656037ull;
    wl_status st = WL_SUCCESS;
    for (int pass = 0; pass < (adagrad ? 4 : 2) && st == WL_SUCCESS; ++pass) {
        const wl_table table = tables[pass % 2];
        st = pass < 2 ? wl_model_read(m, table, t) : wl_model_read_state(m, table, t);
        const size_t bytes = (table == WL_TABLE_ITEMS ? n : o.num_items) * sizeof *t;
        for (size_t i = 0; st == WL_SUCCESS && i < bytes; ++i)
            x = (x ^ ((const unsigned char *)t)[i]) * 1099511628211ull;
    }
    free(t);
    *h = x;
    return st;
}

/* MPI_Send and MPI_Recv of n elements (tag 7), in pieces that fit an int count. */
static void send_pieces(const void *buf, size_t n, MPI_Datatype type, size_t elem)
{
    const size_t piece = (size_t)1 << 28;
    for (size_t at = 0; at < n; at += piece)
        MPI_Send((const char *)buf + at * elem, (int)(n - at < piece ? n - at : piece), type, 0, 7, MPI_COMM_WORLD);
}

static void recv_pieces(void *buf, size_t n, MPI_Datatype type, size_t elem, int from)
{
    const size_t piece = (size_t)1 << 28;
    for (size_t at = 0; at < n; at += piece)
        MPI_Recv((char *)buf + at * elem, (int)(n - at < piece ? n - at : piece), type, from, 7, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
}

/* How many of global_rows rank r owns (global row l * size + r is its row l). */
static size_t rows_of(const train_ranks *k, uint32_t global_rows, int r)
{
    return global_rows > (uint32_t)r ? (global_rows - (uint32_t)r + (uint32_t)k->size - 1) / (uint32_t)k->size : 0;
}

/* Gather each rank's [rows x width] floats into rank 0's global table: global row l * size + r from rank r's l. */
static void gather_rows(const train_ranks *k, const float *mine, uint32_t rows, size_t width, float *global,
                        uint32_t global_rows)
{
    if (k->rank != 0) {
        send_pieces(mine, (size_t)rows * width, MPI_FLOAT, sizeof *mine);
        return;
    }
    float *piece = cli_alloc(((size_t)global_rows / (size_t)k->size + 1) * width * sizeof *piece);
    for (int r = 0; r < k->size; ++r) {
        const size_t n = rows_of(k, global_rows, r);
        if (r == 0)
            memcpy(piece, mine, n * width * sizeof *piece);
        else
            recv_pieces(piece, n * width, MPI_FLOAT, sizeof *piece, r);
        for (size_t l = 0; l < n; ++l)
            memcpy(global + (l * (size_t)k->size + (size_t)r) * width, piece + l * width, width * sizeof *piece);
    }
    free(piece);
}

/* Gather every rank's known positives (its training pairs, sorted by its users) into rank 0's CSR over the
 * global users: *indptr [global_users + 1] and *items, both NULL on the other ranks. */
static void gather_known(const train_ranks *k, const td_dataset *mine, uint32_t global_users, uint64_t **indptr,
                         int32_t **items)
{
    uint64_t *counts = cli_alloc(((size_t)mine->num_users + 1) * sizeof *counts);
    memset(counts, 0, ((size_t)mine->num_users + 1) * sizeof *counts);
    for (size_t j = 0; j < mine->train_count; ++j)
        ++counts[mine->train_users[j]];
    *indptr = NULL;
    *items = NULL;
    if (k->rank != 0) {
        send_pieces(counts, mine->num_users, MPI_UINT64_T, sizeof *counts);
        send_pieces(mine->train_items, mine->train_count, MPI_INT32_T, sizeof *mine->train_items);
        free(counts);
        return;
    }
    const size_t size = (size_t)k->size;
    uint64_t *ip = cli_alloc(((size_t)global_users + 1) * sizeof *ip), *piece = counts;
    if (size > 1)
        piece = cli_alloc(((size_t)global_users / size + 1) * sizeof *piece);
    ip[0] = 0;
    for (int r = 0; r < k->size; ++r) {
        const size_t n = rows_of(k, global_users, r);
        if (r != 0)
            recv_pieces(piece, n, MPI_UINT64_T, sizeof *piece, r);
        for (size_t l = 0; l < n; ++l)
            ip[l * size + (size_t)r + 1] = r == 0 ? counts[l] : piece[l];
    }
    for (uint32_t u = 0; u < global_users; ++u)
        ip[u + 1] += ip[u];
    int32_t *all = cli_alloc((ip[global_users] ? ip[global_users] : 1) * sizeof *all);
    for (int r = 0; r < k->size; ++r) {
        const size_t n = rows_of(k, global_users, r);
        size_t total = 0;
        for (size_t l = 0; l < n; ++l)
            total += ip[l * size + (size_t)r + 1] - ip[l * size + (size_t)r];
        int32_t *theirs = mine->train_items;
        if (r != 0) {
            theirs = cli_alloc((total ? total : 1) * sizeof *theirs);
            recv_pieces(theirs, total, MPI_INT32_T, sizeof *theirs, r);
        }
        size_t at = 0;
        for (size_t l = 0; l < n; ++l) {
            const size_t g = l * size + (size_t)r, c = ip[g + 1] - ip[g];
            memcpy(all + ip[g], theirs + at, c * sizeof *all);
            at += c;
        }
        if (r != 0)
            free(theirs);
    }
    if (piece != counts)
        free(piece);
    free(counts);
    *indptr = ip;
    *items = all;
}
#endif

wl_status ranks_save(const train_ranks *k, wl_context *c, wl_model *local, const wl_model_options *o,
                     const td_dataset *g, const td_dataset *mine, const char *path, const void *app, size_t app_size,
                     char *err, size_t err_size)
{
#ifdef WL_HAVE_MPI
    wl_model_options lo;
    wl_model_get_options(local, &lo);
    const int adagrad = o->optimizer == WL_OPTIMIZER_ADAGRAD;
    const uint32_t nl = (g->num_users - (uint32_t)k->rank + (uint32_t)k->size - 1) / (uint32_t)k->size;
    const size_t d = o->dim;
    float *u = cli_alloc(((size_t)lo.num_users * d + 1) * sizeof *u);
    float *su = cli_alloc(((size_t)lo.num_users * d + 1) * sizeof *su);
    *err = 0;
    uint64_t hash[2] = {0, 0};
    int st = wl_model_read(local, WL_TABLE_USERS, u);
    if (st == WL_SUCCESS && adagrad)
        st = wl_model_read_state(local, WL_TABLE_USERS, su);
    if (st == WL_SUCCESS)
        st = items_hash(local, adagrad, hash);
    if (st != WL_SUCCESS)
        snprintf(err, err_size, "cannot read the rank's rows: %s", wl_context_last_error(c));
    st = ranks_agree(k, st ? 1 : 0) ? (st ? st : WL_ERROR_INVALID_ARGUMENT) : WL_SUCCESS;
    if (st == WL_SUCCESS) {
        /* The replicas of the item rows must be the same bits on every rank (the syncs' promise): checked here. */
        hash[1] = ~hash[0];
        allreduce(hash, 2, MPI_UINT64_T, sizeof *hash, MPI_MAX);
        if (hash[0] != ~hash[1]) {
            snprintf(err, err_size, "the ranks' item rows differ (a fault in the item sync); not saved");
            st = WL_ERROR_INVALID_ARGUMENT;
        }
    }
    if (st != WL_SUCCESS) {
        if (!*err)
            snprintf(err, err_size, "another rank could not read its rows");
        free(u);
        free(su);
        return (wl_status)st;
    }
    float *gu = NULL, *gsu = NULL;
    if (k->rank == 0) {
        gu = cli_alloc((size_t)g->num_users * d * sizeof *gu);
        gsu = cli_alloc((size_t)g->num_users * d * sizeof *gsu);
    }
    gather_rows(k, u, nl, d, gu, g->num_users);
    if (adagrad)
        gather_rows(k, su, nl, d, gsu, g->num_users);
    free(u);
    free(su);
    uint64_t *indptr;
    int32_t *known;
    gather_known(k, mine, g->num_users, &indptr, &known);
    int result = WL_SUCCESS;
    if (k->rank == 0) {
        const size_t ni = o->num_items;
        float *v = cli_alloc(ni * d * sizeof *v), *sv = cli_alloc(ni * d * sizeof *sv);
        float *b = cli_alloc(ni * sizeof *b), *sb = cli_alloc(ni * sizeof *sb);
        wl_model *gm = NULL;
        wl_status s = wl_model_read(local, WL_TABLE_ITEMS, v);
        if (s == WL_SUCCESS)
            s = wl_model_read(local, WL_TABLE_ITEM_BIAS, b);
        if (s == WL_SUCCESS && adagrad)
            s = wl_model_read_state(local, WL_TABLE_ITEMS, sv);
        if (s == WL_SUCCESS && adagrad)
            s = wl_model_read_state(local, WL_TABLE_ITEM_BIAS, sb);
        if (s == WL_SUCCESS)
            s = wl_model_create(c, o, &gm);
        if (s == WL_SUCCESS)
            s = wl_model_write(gm, WL_TABLE_USERS, gu);
        if (s == WL_SUCCESS)
            s = wl_model_write(gm, WL_TABLE_ITEMS, v);
        if (s == WL_SUCCESS)
            s = wl_model_write(gm, WL_TABLE_ITEM_BIAS, b);
        if (s == WL_SUCCESS && adagrad)
            s = wl_model_write_state(gm, WL_TABLE_USERS, gsu);
        if (s == WL_SUCCESS && adagrad)
            s = wl_model_write_state(gm, WL_TABLE_ITEMS, sv);
        if (s == WL_SUCCESS && adagrad)
            s = wl_model_write_state(gm, WL_TABLE_ITEM_BIAS, sb);
        if (s == WL_SUCCESS)
            s = wl_model_set_known(gm, indptr, known);
        if (s == WL_SUCCESS)
            s = wl_model_save(gm, path, app, app_size);
        if (s != WL_SUCCESS)
            snprintf(err, err_size, "%s", wl_context_last_error(c));
        wl_model_destroy(gm);
        free(v);
        free(sv);
        free(b);
        free(sb);
        free(indptr);
        free(known);
        free(gu);
        free(gsu);
        result = s;
    }
    MPI_Bcast(&result, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (result != WL_SUCCESS && k->rank != 0)
        snprintf(err, err_size, "rank 0 could not save the model");
    return (wl_status)result;
#else
    (void)k;
    (void)c;
    (void)local;
    (void)o;
    (void)g;
    (void)mine;
    (void)path;
    (void)app;
    (void)app_size;
    snprintf(err, err_size, "built without MPI");
    return WL_ERROR_INVALID_ARGUMENT;
#endif
}
