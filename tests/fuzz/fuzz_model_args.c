/*
 * The model API's arguments (include/warploss.h, "model"): each input is a
 * short sequence of calls on small models made once (7 users, 11 items,
 * dim 3; Adagrad and SGD; with and without item biases), reset to fixed
 * tables the first time an input uses them: wl_model_create with any
 * options, wl_model_step with any loss options and batch (rows, negatives,
 * ids, shared or sampled candidates), wl_model_set_known with any CSR,
 * wl_model_recommend, wl_model_rank, wl_model_evaluate with any held-out
 * CSR, k and exclude_known, read/write of a table or its state
 * with any table number, read/write of rows of a table (any table, count,
 * row ids, with or without the state), the rows the steps changed (any
 * side, rows or n NULL), plus every call with a NULL model. Each call's
 * status must be WL_ERROR_INVALID_ARGUMENT exactly when the host oracle
 * below (the documented rules) says the arguments are invalid, with a
 * message; a refused call changes no table, no state, no known positive and
 * no output. Results of accepted calls are checked for their documented
 * shape (recommendations distinct, best first, without known positives
 * when asked; ranks in range; a written table reads back bitwise).
 *
 * Input: up to MAX_OPS calls, each an op byte (kind in bits 0-2, model in
 * bits 3-4; kind 7 is the rows with bit 5 set, else the changed rows with
 * bit 6 set, else the NULL model), a flags
 * byte and that call's bytes.
 */
#include <float.h>
#include <math.h>

#include "fuzz.h"
#include "internal.h"

#define NU 7
#define NI 11
#define DIM 3
#define MAX_ROWS 64
#define MAX_NEG 64
#define MAX_N 64
#define MAX_OPS 4
#define MAX_KNOWN 64

static wl_context *ctx;
static wl_model *models[4]; /* by (sgd << 1) | item_bias */
static unsigned char known[4][NU][NI];
static int poisoned[4]; /* a table or state holds a value written by the input (NaN, Inf, negative state) */
/* since the last wl_model_changed_rows of a side (users, items): a step was accepted, and the rows a step
 * changed (each must be listed) */
static int stepped[4][2];
static unsigned char moved[4][2][NI];
static unsigned long calls, accepted;

static void destroy_all(void)
{
    if (ctx)
        fprintf(stderr, "fuzz_model_args: %lu calls, %lu accepted\n", calls, accepted);
    for (int i = 0; i < 4; ++i)
        wl_model_destroy(models[i]);
    wl_context_destroy(ctx);
    ctx = NULL;
}

static int sgd_of(int mi) { return mi >> 1; }
static int bias_of(int mi) { return mi & 1; }

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    wl_context_options o;
    wl_context_options_default(&o);
    o.kernel_dir = WL_TEST_KERNEL_DIR;
    o.cache_dir = "";
    fuzz_keep_crash_handlers();
    wl_status st = wl_context_create(&o, &ctx);
    for (int i = 0; st == WL_SUCCESS && i < 4; ++i) {
        wl_model_options mo;
        wl_model_options_default(&mo, NU, NI, DIM);
        mo.optimizer = sgd_of(i) ? WL_OPTIMIZER_SGD : WL_OPTIMIZER_ADAGRAD;
        mo.item_bias = bias_of(i);
        mo.seed = (uint64_t)i;
        st = wl_model_create(ctx, &mo, &models[i]);
    }
    fuzz_keep_crash_handlers();
    fuzz_crash_handlers_forget();
    if (st != WL_SUCCESS) {
        fprintf(stderr, "fuzz_model_args: no OpenCL context or model (%s); nothing to check\n",
                wl_context_last_error(ctx));
        if (getenv("WL_FUZZ_REQUIRE_DEVICE"))
            exit(1);
        for (int i = 0; i < 4; ++i)
            wl_model_destroy(models[i]), models[i] = NULL;
        wl_context_destroy(ctx);
        ctx = NULL;
    }
    atexit(destroy_all);
    return 0;
}

/* ------------------------------------------------------------ decoding */

static float float_of(fuzz_reader *r)
{
    static const float special[16] = {NAN,   INFINITY, -INFINITY, -0.0f, FLT_MAX, -FLT_MAX, FLT_MIN, 1e-45f,
                                      1e30f, -1e30f,   0.5f,      1.0f,  -1.0f,   0.0f,     0.05f,   1e-7f};
    const uint8_t b = fuzz_byte(r);
    if (b >= 0xf0)
        return special[b - 0xf0];
    return (float)(int8_t)b / 64.0f;
}

/* Mostly in [0, limit); sometimes just outside or far off. */
static int32_t id_of(fuzz_reader *r, uint32_t limit)
{
    const uint8_t b = fuzz_byte(r);
    if (b < 0xf8)
        return (int32_t)(b % limit);
    const int32_t special[8] = {-1, (int32_t)limit, (int32_t)limit + 1, INT32_MIN, INT32_MAX, -2, 1000, 0};
    return special[b - 0xf8];
}

static size_t size_of(fuzz_reader *r, int any, size_t cap)
{
    return any ? (size_t)fuzz_u64(r, 8) : fuzz_byte(r) % (cap + 1);
}

/* ------------------------------------------------------------ model state */

static uint64_t count_of(int t) { return t == WL_TABLE_USERS ? NU * DIM : t == WL_TABLE_ITEMS ? NI * DIM : NI; }

typedef struct snapshot {
    float table[3][NI * DIM], state[3][NI * DIM];
} snapshot;

static void take(int mi, snapshot *s)
{
    memset(s, 0, sizeof *s);
    for (int t = 0; t < 3; ++t) {
        const wl_status st = wl_model_read(models[mi], (wl_table)t, s->table[t]);
        FUZZ_CHECK(st == WL_SUCCESS, "wl_model_read(%d): %s", t, wl_context_last_error(ctx));
        if (!sgd_of(mi))
            FUZZ_CHECK(wl_model_read_state(models[mi], (wl_table)t, s->state[t]) == WL_SUCCESS,
                       "wl_model_read_state(%d): %s", t, wl_context_last_error(ctx));
    }
}

/* The known positives as seen through wl_model_recommend (all items, excluding the known ones). */
static void take_known(int mi, int32_t out[NU * NI])
{
    int32_t users[NU];
    for (int u = 0; u < NU; ++u)
        users[u] = u;
    FUZZ_CHECK(wl_model_recommend(models[mi], NU, users, NI, 1, out, NULL) == WL_SUCCESS, "recommend: %s",
               wl_context_last_error(ctx));
}

/* Fixed tables, fresh state, no known positives. */
static void reset(int mi)
{
    float t[NI * DIM + 1]; /* the item table from t + 1 */
    for (int k = 0; k < NI * DIM + 1; ++k)
        t[k] = (float)((k * 37 + mi) % 17 - 8) / 64.0f;
    FUZZ_CHECK(wl_model_write(models[mi], WL_TABLE_USERS, t) == WL_SUCCESS, "reset: %s", wl_context_last_error(ctx));
    FUZZ_CHECK(wl_model_write(models[mi], WL_TABLE_ITEMS, t + 1) == WL_SUCCESS, "reset: %s",
               wl_context_last_error(ctx));
    for (int k = 0; k < NI; ++k)
        t[k] = bias_of(mi) ? (float)(k % 5) / 32.0f : 0.0f;
    FUZZ_CHECK(wl_model_write(models[mi], WL_TABLE_ITEM_BIAS, t) == WL_SUCCESS, "reset: %s",
               wl_context_last_error(ctx));
    const uint64_t indptr[NU + 1] = {0};
    FUZZ_CHECK(wl_model_set_known(models[mi], indptr, NULL) == WL_SUCCESS, "reset: %s", wl_context_last_error(ctx));
    memset(known[mi], 0, sizeof known[mi]);
    poisoned[mi] = 0;
    /* the marks of earlier inputs' steps dropped */
    for (int side = 0; side < 2; ++side) {
        size_t n;
        FUZZ_CHECK(wl_model_changed_rows(models[mi], side ? WL_TABLE_ITEMS : WL_TABLE_USERS, NULL, &n) == WL_SUCCESS,
                   "reset: %s", wl_context_last_error(ctx));
        stepped[mi][side] = 0;
        memset(moved[mi][side], 0, sizeof moved[mi][side]);
    }
}

/* Call with the error cleared first; then the status must be want, with a message on failure. */
static void expect(const char *call, wl_status st, wl_status want)
{
    ++calls;
    accepted += st == WL_SUCCESS;
    FUZZ_CHECK(st == want, "%s: status %d (%s), want %d (%s)", call, (int)st, wl_status_string(st), (int)want,
               wl_status_string(want));
    FUZZ_CHECK(st == WL_SUCCESS || ctx->error[0], "%s: failed (%d) without a message", call, (int)st);
}

static void clear_error(void) { ctx->error[0] = 0; }

/* ------------------------------------------------------------ the calls */

static void op_create(fuzz_reader *r, uint8_t flags)
{
    wl_model_options o;
    wl_model_options_default(&o, NU, NI, DIM);
    const int any = flags & 1;
    o.num_users = any ? (uint32_t)fuzz_u64(r, 4) : fuzz_byte(r) % 9;
    o.num_items = any ? (uint32_t)fuzz_u64(r, 4) : fuzz_byte(r) % 13;
    o.dim = any ? (uint32_t)fuzz_u64(r, 4) : fuzz_byte(r) % 5;
    o.item_bias = (int8_t)fuzz_byte(r);
    o.seed = fuzz_byte(r);
    o.optimizer = (flags & 2) ? (wl_optimizer)(int32_t)fuzz_u64(r, 4) : (wl_optimizer)(fuzz_byte(r) % 3);
    o.learning_rate = float_of(r);
    o.l2_users = float_of(r);
    o.l2_items = float_of(r);
    const int null_options = (flags & 0x1c) == 0x1c, null_out = (flags & 0x1c) == 0x18;

    wl_status want = WL_SUCCESS;
    const uint64_t largest = (uint64_t)(o.num_users > o.num_items ? o.num_users : o.num_items) * o.dim;
    if (null_options || null_out || o.num_users == 0 || o.num_items < 2 || o.dim == 0 ||
        !(isfinite(o.learning_rate) && o.learning_rate > 0.0f) || !(isfinite(o.l2_users) && o.l2_users >= 0.0f) ||
        !(isfinite(o.l2_items) && o.l2_items >= 0.0f) ||
        (o.optimizer != WL_OPTIMIZER_ADAGRAD && o.optimizer != WL_OPTIMIZER_SGD))
        want = WL_ERROR_INVALID_ARGUMENT;
    else if (largest > ctx->max_alloc / 8)
        want = WL_ERROR_OUT_OF_MEMORY;
    else if (largest > 4096)
        return; /* valid but slow */

    wl_model *m = NULL;
    clear_error();
    const wl_status st = wl_model_create(ctx, null_options ? NULL : &o, null_out ? NULL : &m);
    expect("wl_model_create", st, want);
    FUZZ_CHECK(wl_model_create(NULL, &o, &m) == WL_ERROR_INVALID_ARGUMENT, "wl_model_create(NULL context)");
    if (st != WL_SUCCESS) {
        FUZZ_CHECK(m == NULL, "a failed wl_model_create gave a model");
        return;
    }
    /* the documented initial state */
    const size_t nu = (size_t)o.num_users * o.dim, ni = (size_t)o.num_items * o.dim;
    float *t = malloc((nu > ni ? nu : ni) * sizeof *t);
    FUZZ_CHECK(t != NULL, "out of memory");
    const float bound = 0.5f / (float)o.dim;
    for (int k = 0; k < 2; ++k) {
        const size_t n = k ? ni : nu;
        FUZZ_CHECK(wl_model_read(m, (wl_table)k, t) == WL_SUCCESS, "read: %s", wl_context_last_error(ctx));
        for (size_t j = 0; j < n; ++j)
            FUZZ_CHECK(t[j] >= -bound && t[j] < bound, "initial table %d [%zu] = %g", k, j, (double)t[j]);
        clear_error();
        const wl_status s2 = wl_model_read_state(m, (wl_table)k, t);
        expect("wl_model_read_state (new)", s2,
               o.optimizer == WL_OPTIMIZER_SGD ? WL_ERROR_INVALID_ARGUMENT : WL_SUCCESS);
        for (size_t j = 0; s2 == WL_SUCCESS && j < n; ++j)
            FUZZ_CHECK(t[j] == 1.0f, "initial state %d [%zu] = %g", k, j, (double)t[j]);
    }
    FUZZ_CHECK(wl_model_read(m, WL_TABLE_ITEM_BIAS, t) == WL_SUCCESS, "read: %s", wl_context_last_error(ctx));
    for (size_t j = 0; j < o.num_items; ++j)
        FUZZ_CHECK(t[j] == 0.0f, "initial bias [%zu] = %g", j, (double)t[j]);
    free(t);
    wl_model_destroy(m);
}

static int loss_options_valid(const wl_loss_options *o, size_t rows, size_t negatives)
{
    size_t bytes;
    return o->num_labels >= 2 && isfinite(o->margin) && (o->weighting == 0 || o->weighting == 1) &&
           (o->reduction == 0 || o->reduction == 1 || o->reduction == 2) && negatives <= INT32_MAX &&
           rows < UINT32_MAX && !__builtin_mul_overflow(rows, negatives, &bytes) &&
           !__builtin_mul_overflow(bytes, sizeof(float), &bytes);
}

static void op_step(fuzz_reader *r, int mi, uint8_t flags)
{
    wl_model *m = models[mi];
    wl_loss_options lo;
    wl_loss_options_default(&lo, NI);
    const uint8_t opt = fuzz_byte(r);
    if (opt & 1)
        lo.num_labels = (opt & 2) ? fuzz_u64(r, 8) : fuzz_byte(r);
    if (opt & 4)
        lo.margin = float_of(r);
    if (opt & 8) {
        lo.weighting = (wl_weighting)(int8_t)fuzz_byte(r) % 3;
        lo.reduction = (wl_reduction)(int8_t)fuzz_byte(r) % 4;
    }
    lo.check_finite = (opt >> 4) & 1;
    const int any = flags & 1;
    const size_t rows = size_of(r, any, MAX_ROWS), negatives = size_of(r, any, MAX_NEG);
    const uint8_t shape = fuzz_byte(r);
    const int sampled = (shape & 3) == 0, shared = (shape & 3) == 1;
    const int null_batch = (shape & 0x1c) == 0x1c, null_lo = (shape & 0x1c) == 0x18;
    const int null_users = (shape & 0x1c) == 0x14, null_pos = (shape & 0x1c) == 0x10, with_result = shape & 0x20;
    const uint64_t key = fuzz_byte(r);

    /* the scalar rules first: the arrays are read only when these pass */
    int invalid = null_batch || null_lo || !loss_options_valid(&lo, rows, negatives) ||
                  lo.reduction == WL_REDUCE_NONE || (rows && negatives == 0) || (rows && (null_users || null_pos));
    size_t neg_count = 0;
    if (!sampled && rows)
        neg_count = shared ? negatives : rows <= MAX_ROWS && negatives <= MAX_NEG ? rows * negatives : SIZE_MAX;
    const int fits = rows <= MAX_ROWS && neg_count <= MAX_ROWS * MAX_NEG;
    if (!fits && !invalid)
        return;
    /* exactly sized, so that a read past them is seen; with a shape too
     * large, a few valid ids (the call must refuse before reading further) */
    const size_t nrows = fits ? rows : 4, nneg = fits ? neg_count : 4;
    int32_t *users = malloc((nrows ? nrows : 1) * sizeof *users), *pos = malloc((nrows ? nrows : 1) * sizeof *pos);
    int32_t *neg = malloc((nneg ? nneg : 1) * sizeof *neg);
    FUZZ_CHECK(users && pos && neg, "out of memory");
    for (size_t k = 0; k < nrows; ++k) {
        users[k] = fits ? id_of(r, NU) : 0;
        pos[k] = fits ? id_of(r, NI) : 0;
        invalid |= users[k] < 0 || users[k] >= NU || pos[k] < 0 || pos[k] >= NI;
    }
    for (size_t k = 0; k < nneg; ++k) {
        neg[k] = fits ? id_of(r, NI) : 0;
        invalid |= neg[k] < 0 || neg[k] >= NI;
    }
    const wl_batch b = {
        rows, null_users ? NULL : users, null_pos ? NULL : pos, negatives, sampled ? NULL : neg, shared, key, NULL};
    snapshot before, after;
    take(mi, &before);
    wl_step_result res;
    memset(&res, 0x5a, sizeof res);
    clear_error();
    const wl_status st = wl_model_step(m, null_lo ? NULL : &lo, null_batch ? NULL : &b, with_result ? &res : NULL);
    expect("wl_model_step", st, invalid ? WL_ERROR_INVALID_ARGUMENT : WL_SUCCESS);
    take(mi, &after);
    if (st == WL_SUCCESS) {
        /* a row that moved was updated, so marked */
        for (int side = 0; side < 2; ++side) {
            stepped[mi][side] = 1;
            const size_t width = DIM, side_rows = side ? NI : NU;
            for (size_t row = 0; row < side_rows; ++row)
                for (int t = side; t < (side ? 3 : 1); ++t) {
                    const size_t w = t == WL_TABLE_ITEM_BIAS ? 1 : width;
                    moved[mi][side][row] |=
                        memcmp(before.table[t] + row * w, after.table[t] + row * w, w * sizeof(float)) != 0 ||
                        memcmp(before.state[t] + row * w, after.state[t] + row * w, w * sizeof(float)) != 0;
                }
        }
    }
    if (st != WL_SUCCESS) {
        FUZZ_CHECK(!memcmp(&before, &after, sizeof before), "a refused step changed the model: %s", ctx->error);
    } else if (with_result) {
        FUZZ_CHECK(res.offenders <= rows && res.scores <= (uint64_t)rows * negatives,
                   "step result: %llu offenders, %llu scores for %zu x %zu", (unsigned long long)res.offenders,
                   (unsigned long long)res.scores, rows, negatives);
        FUZZ_CHECK(poisoned[mi] || res.loss >= 0.0, "step loss %g", res.loss);
        FUZZ_CHECK(rows || (res.loss == 0.0 && res.scores == 0), "an empty step gave a result");
    }
    free(users), free(pos), free(neg);
}

/* An indptr[NU + 1] from the input: indptr[0] 0 (or, with flags bit 0, 0 to 2),
 * then per user a step of 0 to 4, or one back (0xff), or 2^40 on (0xfe). */
static void read_indptr(fuzz_reader *r, uint8_t flags, uint64_t indptr[NU + 1])
{
    indptr[0] = (flags & 1) ? fuzz_byte(r) % 3 : 0;
    for (int u = 0; u < NU; ++u) {
        const uint8_t b = fuzz_byte(r);
        indptr[u + 1] = b == 0xff ? indptr[u] - 1 : b == 0xfe ? indptr[u] + ((uint64_t)1 << 40) : indptr[u] + b % 5;
    }
}

/* Whether the indptr itself breaks a rule (indptr[0], a step back). */
static int bad_indptr(const uint64_t indptr[NU + 1])
{
    int bad = indptr[0] != 0;
    for (int u = 0; u < NU; ++u)
        bad |= indptr[u + 1] < indptr[u];
    return bad;
}

/* The items of a valid indptr from the input, each the user's previous + 1 to 3
 * or a special value, up to the first that breaks a rule (range, ascending);
 * 1 if one does. mark[u][x] is set for the items before it (may be NULL). */
static int read_items(fuzz_reader *r, const uint64_t indptr[NU + 1], int32_t *items, unsigned char mark[NU][NI])
{
    for (int u = 0; u < NU; ++u) {
        for (uint64_t k = indptr[u]; k < indptr[u + 1]; ++k) {
            const uint8_t b = fuzz_byte(r);
            const int32_t prev = k > indptr[u] ? items[k - 1] : -1;
            const int32_t special[8] = {-1, NI, prev, prev - 1, NI - 1, INT32_MAX, INT32_MIN, 0};
            items[k] = b >= 0xf8 ? special[b - 0xf8] : prev + 1 + b % 3;
            if (items[k] < 0 || items[k] >= NI || items[k] <= prev)
                return 1;
            if (mark)
                mark[u][items[k]] = 1;
        }
    }
    return 0;
}

static void op_set_known(fuzz_reader *r, int mi, uint8_t flags)
{
    uint64_t indptr[NU + 1];
    read_indptr(r, flags, indptr);
    const int null_indptr = (flags & 6) == 6, null_items = (flags & 6) == 4;
    const uint64_t total = indptr[NU];
    int invalid = null_indptr || bad_indptr(indptr);
    invalid |= total && null_items;
    const int too_large = total > ctx->max_alloc / 4;
    if (!invalid && !too_large && total > MAX_KNOWN)
        return;
    const size_t n = !invalid && !too_large ? (size_t)total : 4;
    int32_t *items = calloc(n ? n : 1, sizeof *items);
    FUZZ_CHECK(items != NULL, "out of memory");
    unsigned char want_known[NU][NI];
    memset(want_known, 0, sizeof want_known);
    /* up to the first bad item (the rest stays 0: the call stops there) */
    if (!invalid && !too_large)
        invalid = read_items(r, indptr, items, want_known);
    const wl_status want = invalid ? WL_ERROR_INVALID_ARGUMENT : too_large ? WL_ERROR_OUT_OF_MEMORY : WL_SUCCESS;
    int32_t rec_before[NU * NI], rec_after[NU * NI];
    take_known(mi, rec_before);
    clear_error();
    const wl_status st = wl_model_set_known(models[mi], null_indptr ? NULL : indptr, null_items ? NULL : items);
    expect("wl_model_set_known", st, want);
    take_known(mi, rec_after);
    if (st != WL_SUCCESS) {
        FUZZ_CHECK(!memcmp(rec_before, rec_after, sizeof rec_before), "a refused set_known changed the known set");
    } else {
        memcpy(known[mi], want_known, sizeof want_known);
        for (int u = 0; u < NU; ++u) {
            int listed = 0;
            for (int j = 0; j < NI; ++j) {
                const int32_t x = rec_after[u * NI + j];
                if (x < 0)
                    continue;
                FUZZ_CHECK(x < NI && !known[mi][u][x], "user %d: item %d recommended, known positive", u, (int)x);
                ++listed;
            }
            int unknown = 0;
            for (int x = 0; x < NI; ++x)
                unknown += !known[mi][u][x];
            FUZZ_CHECK(listed == unknown, "user %d: %d items recommended, %d not known", u, listed, unknown);
        }
    }
    free(items);
}

static void op_recommend(fuzz_reader *r, int mi, uint8_t flags)
{
    const int any = flags & 1;
    const size_t n = size_of(r, any, MAX_N), k = any ? (size_t)fuzz_u64(r, 8) : fuzz_byte(r) % (NI + 3);
    const int exclude = (int8_t)fuzz_byte(r);
    const int null_users = (flags & 0xe) == 0xe, null_items = (flags & 0xe) == 0xc, with_scores = flags & 0x10;
    int invalid = n && (null_users || null_items || k == 0 || k > NI || n > UINT32_MAX || n > SIZE_MAX / k / 4);
    const int fits = n <= MAX_N && k <= NI;
    if (n && !fits && !invalid)
        return;
    const size_t nu = fits ? n : 4, out = fits ? n * k : 4;
    int32_t *users = malloc((nu ? nu : 1) * sizeof *users), *items = malloc((out ? out : 1) * sizeof *items);
    float *scores = malloc((out ? out : 1) * sizeof *scores);
    FUZZ_CHECK(users && items && scores, "out of memory");
    for (size_t j = 0; j < nu; ++j) {
        users[j] = fits ? id_of(r, NU) : 0;
        invalid |= n && (users[j] < 0 || users[j] >= NU);
    }
    memset(items, 0x5a, (out ? out : 1) * sizeof *items);
    memset(scores, 0x5a, (out ? out : 1) * sizeof *scores);
    snapshot before, after;
    take(mi, &before);
    clear_error();
    const wl_status st = wl_model_recommend(models[mi], n, null_users ? NULL : users, k, exclude,
                                            null_items ? NULL : items, with_scores ? scores : NULL);
    expect("wl_model_recommend", st, invalid ? WL_ERROR_INVALID_ARGUMENT : WL_SUCCESS);
    take(mi, &after);
    FUZZ_CHECK(!memcmp(&before, &after, sizeof before), "wl_model_recommend changed the model");
    if (st != WL_SUCCESS || !n) {
        for (size_t j = 0; j < out; ++j)
            FUZZ_CHECK(items[j] == 0x5a5a5a5a, "a refused (or empty) recommend wrote items[%zu]", j);
        for (size_t j = 0; j < out; ++j) {
            uint32_t bits;
            memcpy(&bits, &scores[j], sizeof bits);
            FUZZ_CHECK(bits == 0x5a5a5a5au, "a refused (or empty) recommend wrote scores[%zu]", j);
        }
    } else {
        for (size_t j = 0; j < n; ++j) {
            const int u = users[j];
            int unknown = 0;
            for (int x = 0; x < NI; ++x)
                unknown += !exclude || !known[mi][u][x];
            const size_t listed = (size_t)unknown < k ? (size_t)unknown : k;
            unsigned char seen[NI] = {0};
            for (size_t i = 0; i < k; ++i) {
                const int32_t x = items[j * k + i];
                if (i >= listed) {
                    FUZZ_CHECK(x == -1, "row %zu: items[%zu] = %d, want -1 (%zu candidates)", j, i, (int)x, listed);
                    FUZZ_CHECK(!with_scores || scores[j * k + i] == -INFINITY, "row %zu: score %zu not -Inf", j, i);
                    continue;
                }
                FUZZ_CHECK(x >= 0 && x < NI && !seen[x], "row %zu: items[%zu] = %d", j, i, (int)x);
                FUZZ_CHECK(!exclude || !known[mi][u][x], "row %zu: known positive %d recommended", j, (int)x);
                seen[x] = 1;
                if (with_scores && i && !poisoned[mi])
                    FUZZ_CHECK(scores[j * k + i] <= scores[j * k + i - 1], "row %zu: scores not best first", j);
            }
        }
    }
    free(users), free(items), free(scores);
}

/* wl_model_evaluate with any held-out CSR (built as op_set_known's), k and exclude_known. */
static void op_evaluate(fuzz_reader *r, int mi, uint8_t flags)
{
    uint64_t indptr[NU + 1];
    read_indptr(r, flags, indptr);
    const uint8_t kb = fuzz_byte(r);
    const uint32_t k = kb == 0xff ? UINT32_MAX : kb % 16;
    const int exclude = (int8_t)fuzz_byte(r);
    const int null_indptr = (flags & 6) == 6, null_items = (flags & 6) == 4, null_out = (flags & 0x18) == 0x18;
    const int with_users = !(flags & 0x20);
    const uint64_t total = indptr[NU];
    int invalid = null_out || k == 0 || null_indptr || bad_indptr(indptr);
    invalid |= total && null_items;
    const int too_large = !invalid && total > ctx->max_alloc / 4;
    if (!invalid && !too_large && total > MAX_KNOWN)
        return;
    const size_t n = !invalid && !too_large ? (size_t)total : 4;
    int32_t *items = calloc(n ? n : 1, sizeof *items);
    FUZZ_CHECK(items != NULL, "out of memory");
    if (!invalid && !too_large)
        invalid = read_items(r, indptr, items, NULL);
    const wl_status want = invalid ? WL_ERROR_INVALID_ARGUMENT : too_large ? WL_ERROR_OUT_OF_MEMORY : WL_SUCCESS;
    wl_metrics out, sentinel;
    wl_user_metrics per_user[NU], user_sentinel[NU];
    memset(&sentinel, 0x5a, sizeof sentinel);
    memset(user_sentinel, 0x5a, sizeof user_sentinel);
    out = sentinel;
    memcpy(per_user, user_sentinel, sizeof per_user);
    snapshot before, after;
    take(mi, &before);
    clear_error();
    const wl_status st = wl_model_evaluate(models[mi], null_indptr ? NULL : indptr, null_items ? NULL : items, k,
                                           exclude, null_out ? NULL : &out, with_users ? per_user : NULL);
    expect("wl_model_evaluate", st, want);
    take(mi, &after);
    FUZZ_CHECK(!memcmp(&before, &after, sizeof before), "wl_model_evaluate changed the model");
    if (st != WL_SUCCESS) {
        FUZZ_CHECK(!memcmp(&out, &sentinel, sizeof out), "a refused evaluation wrote its result");
        FUZZ_CHECK(!memcmp(per_user, user_sentinel, sizeof per_user), "a refused evaluation wrote per-user values");
        free(items);
        return;
    }
    uint64_t users = 0;
    for (int u = 0; u < NU; ++u) {
        const uint32_t held = (uint32_t)(indptr[u + 1] - indptr[u]);
        users += held > 0;
        if (!with_users)
            continue;
        const wl_user_metrics *x = &per_user[u];
        FUZZ_CHECK(x->held_out == held && x->hits <= held, "user %d: held out %u, hits %u of %u", u, x->held_out,
                   x->hits, held);
        if (!held)
            continue;
        FUZZ_CHECK(x->precision_at_k == (double)x->hits / k && x->recall_at_k == (double)x->hits / held &&
                       x->mrr == 1.0 / (1.0 + x->best) && x->auc >= 0.0 && x->auc <= 1.0 && x->best < NI,
                   "user %d: precision %g recall %g mrr %g auc %g best %u", u, x->precision_at_k, x->recall_at_k,
                   x->mrr, x->auc, x->best);
    }
    FUZZ_CHECK(out.k == k && out.users == users, "k %u users %llu, want %u %llu", out.k, (unsigned long long)out.users,
               k, (unsigned long long)users);
    FUZZ_CHECK(users || (out.precision_at_k == 0 && out.auc == 0), "no user evaluated but metrics are not 0");
    FUZZ_CHECK(out.auc >= 0 && out.auc <= 1 && out.mrr >= 0 && out.mrr <= 1 && out.recall_at_k >= 0 &&
                   out.recall_at_k <= 1,
               "metrics out of range: auc %g mrr %g recall %g", out.auc, out.mrr, out.recall_at_k);
    free(items);
}

static void op_rank(fuzz_reader *r, int mi, uint8_t flags)
{
    const int any = flags & 1;
    const size_t n = size_of(r, any, MAX_N);
    const int exclude = (int8_t)fuzz_byte(r);
    const int null_users = (flags & 0xe) == 0xe, null_items = (flags & 0xe) == 0xc, null_ranks = (flags & 0xe) == 0xa;
    int invalid = n && (null_users || null_items || null_ranks || n > UINT32_MAX);
    const int fits = n <= MAX_N;
    if (!fits && !invalid)
        return;
    const size_t m = fits ? n : 4;
    int32_t *users = malloc((m ? m : 1) * sizeof *users), *items = malloc((m ? m : 1) * sizeof *items);
    uint32_t *ranks = malloc((m ? m : 1) * sizeof *ranks);
    FUZZ_CHECK(users && items && ranks, "out of memory");
    for (size_t j = 0; j < m; ++j) {
        users[j] = fits ? id_of(r, NU) : 0;
        items[j] = fits ? id_of(r, NI) : 0;
        invalid |= n && (users[j] < 0 || users[j] >= NU || items[j] < 0 || items[j] >= NI);
    }
    memset(ranks, 0x5a, (m ? m : 1) * sizeof *ranks);
    snapshot before, after;
    take(mi, &before);
    clear_error();
    const wl_status st = wl_model_rank(models[mi], n, null_users ? NULL : users, null_items ? NULL : items, exclude,
                                       null_ranks ? NULL : ranks);
    expect("wl_model_rank", st, invalid ? WL_ERROR_INVALID_ARGUMENT : WL_SUCCESS);
    take(mi, &after);
    FUZZ_CHECK(!memcmp(&before, &after, sizeof before), "wl_model_rank changed the model");
    for (size_t j = 0; j < m; ++j) {
        if (st != WL_SUCCESS || !n) {
            FUZZ_CHECK(ranks[j] == 0x5a5a5a5au, "a refused (or empty) rank wrote ranks[%zu]", j);
            continue;
        }
        uint32_t others = 0;
        for (int x = 0; x < NI; ++x)
            others += x != items[j] && (!exclude || !known[mi][users[j]][x]);
        FUZZ_CHECK(ranks[j] <= others, "ranks[%zu] = %u of %u other items", j, (unsigned)ranks[j], (unsigned)others);
    }
    free(users), free(items), free(ranks);
}

static void op_table(fuzz_reader *r, int mi, uint8_t flags)
{
    wl_model *m = models[mi];
    const uint8_t tb = fuzz_byte(r);
    const wl_table t = (flags & 1) ? (wl_table)(int32_t)fuzz_u64(r, 4) : (wl_table)(tb % 4);
    const int which = (flags >> 1) & 3; /* read, write, read_state, write_state */
    const int null_data = (flags & 0x18) == 0x18;
    const int state = which >= 2, write = which & 1;
    const int known_table = t == WL_TABLE_USERS || t == WL_TABLE_ITEMS || t == WL_TABLE_ITEM_BIAS;
    const size_t count = known_table ? (size_t)count_of(t) : 0;
    float *data = malloc((count ? count : 1) * sizeof *data);
    FUZZ_CHECK(data != NULL, "out of memory");
    int finite = 1, nonzero = 0;
    for (size_t k = 0; k < count; ++k) {
        data[k] = write ? float_of(r) : 12345.5f;
        finite &= fabsf(data[k]) <= 1e3f && (!state || data[k] >= 0.0f); /* else steps may give NaN */
        nonzero |= data[k] != 0.0f;
    }
    const int invalid = !known_table || null_data || (state && sgd_of(mi)) ||
                        (write && !state && t == WL_TABLE_ITEM_BIAS && !bias_of(mi) && nonzero);
    snapshot before, after;
    take(mi, &before);
    clear_error();
    float *arg = null_data ? NULL : data;
    wl_status st;
    if (write)
        st = state ? wl_model_write_state(m, t, arg) : wl_model_write(m, t, arg);
    else
        st = state ? wl_model_read_state(m, t, arg) : wl_model_read(m, t, arg);
    static const char *names[4] = {"wl_model_read", "wl_model_write", "wl_model_read_state", "wl_model_write_state"};
    expect(names[which], st, invalid ? WL_ERROR_INVALID_ARGUMENT : WL_SUCCESS);
    take(mi, &after);
    const int ti = known_table ? (int)t : 0;
    if (st != WL_SUCCESS || !write) {
        FUZZ_CHECK(!memcmp(&before, &after, sizeof before), "%s changed the model", names[which]);
        for (size_t k = 0; st != WL_SUCCESS && !write && k < count; ++k)
            FUZZ_CHECK(data[k] == 12345.5f, "a refused %s wrote out[%zu]", names[which], k);
        if (st == WL_SUCCESS)
            FUZZ_CHECK(!memcmp(data, state ? before.state[ti] : before.table[ti], count * sizeof *data),
                       "%s differs from the snapshot", names[which]);
    } else {
        FUZZ_CHECK(!memcmp(data, state ? after.state[ti] : after.table[ti], count * sizeof *data),
                   "%s: the table does not read back bitwise", names[which]);
        for (size_t k = 0; !state && !sgd_of(mi) && k < count; ++k)
            FUZZ_CHECK(after.state[ti][k] == 1.0f, "wl_model_write did not reset the state");
        FUZZ_CHECK(!state || !memcmp(before.table[ti], after.table[ti], sizeof before.table[ti]),
                   "wl_model_write_state changed the table");
        for (int o = 0; o < 3; ++o)
            FUZZ_CHECK(o == ti || (!memcmp(before.table[o], after.table[o], sizeof before.table[o]) &&
                                   !memcmp(before.state[o], after.state[o], sizeof before.state[o])),
                       "%s changed another table", names[which]);
        poisoned[mi] |= !finite;
    }
    free(data);
}

/* Rows of table t of the fuzz models. */
static uint32_t rows_of(int t) { return t == WL_TABLE_USERS ? NU : NI; }

/* wl_model_read_rows / wl_model_write_rows: any table, count and ids (a write's
 * mostly ascending), any values, with or without the state. */
static void op_rows(fuzz_reader *r, int mi, uint8_t flags)
{
    wl_model *m = models[mi];
    const uint8_t tb = fuzz_byte(r);
    const wl_table t = (flags & 1) ? (wl_table)(int32_t)fuzz_u64(r, 4) : (wl_table)(tb % 4);
    const int write = (flags >> 1) & 1, with_state = (flags >> 2) & 1;
    const int null_rows = (flags & 0x18) == 0x18, null_data = (flags & 0x18) == 0x10;
    const size_t n = size_of(r, (flags >> 5) & 1, MAX_N);
    const int known_table = t == WL_TABLE_USERS || t == WL_TABLE_ITEMS || t == WL_TABLE_ITEM_BIAS;
    const size_t width = t == WL_TABLE_ITEM_BIAS ? 1 : DIM;
    /* the scalar rules first: the arrays are read only when these pass */
    int invalid = !known_table || (with_state && sgd_of(mi)) ||
                  (n && (null_rows || null_data || n > SIZE_MAX / sizeof(float) / width));
    const int fits = n <= MAX_N;
    if (!fits && !invalid)
        return;
    /* exactly sized, so that a read past them is seen; with n too large, a
     * few valid rows (the call must refuse before reading further) */
    const size_t count = fits ? n : 4, limit = known_table ? rows_of(t) : NI;
    uint32_t *rows = malloc((count ? count : 1) * sizeof *rows);
    float *data = malloc((count ? count : 1) * width * sizeof *data);
    float *state = malloc((count ? count : 1) * width * sizeof *state);
    FUZZ_CHECK(rows && data && state, "out of memory");
    int finite = 1, nonzero = 0;
    for (size_t k = 0; k < count; ++k) {
        const uint8_t b = fits ? fuzz_byte(r) : 0;
        const uint32_t prev = k ? rows[k - 1] : 0;
        const uint32_t special[8] = {(uint32_t)limit, (uint32_t)limit - 1, prev, prev - 1,
                                     UINT32_MAX,      0x80000000u,         0,    (uint32_t)limit + 1};
        if (b >= 0xf8)
            rows[k] = special[b - 0xf8];
        else
            rows[k] = write ? (k ? prev : (uint32_t)-1) + 1 + b % 2 : (uint32_t)(b % limit);
        if (fits && n) {
            invalid |= rows[k] >= limit;
            invalid |= write && k && rows[k] <= prev;
        }
    }
    for (size_t e = 0; e < count * width; ++e) {
        data[e] = write && fits ? float_of(r) : 12345.5f;
        state[e] = write && fits ? float_of(r) : 12345.5f;
        finite &= fabsf(data[e]) <= 1e3f && (!with_state || (state[e] >= 0.0f && state[e] <= 1e3f));
        nonzero |= data[e] != 0.0f;
    }
    invalid |= write && fits && n && t == WL_TABLE_ITEM_BIAS && !bias_of(mi) && nonzero;
    snapshot before, after;
    take(mi, &before);
    clear_error();
    uint32_t *rows_arg = null_rows ? NULL : rows;
    float *data_arg = null_data ? NULL : data, *state_arg = with_state ? state : NULL;
    const wl_status st = write ? wl_model_write_rows(m, t, n, rows_arg, data_arg, state_arg)
                               : wl_model_read_rows(m, t, n, rows_arg, data_arg, state_arg);
    const char *name = write ? "wl_model_write_rows" : "wl_model_read_rows";
    expect(name, st, invalid ? WL_ERROR_INVALID_ARGUMENT : WL_SUCCESS);
    take(mi, &after);
    if (st != WL_SUCCESS || !write || !n) {
        FUZZ_CHECK(!memcmp(&before, &after, sizeof before), "%s changed the model", name);
        for (size_t e = 0; !write && (st != WL_SUCCESS || !n) && e < count * width; ++e)
            FUZZ_CHECK(data[e] == 12345.5f && state[e] == 12345.5f, "a refused (or empty) %s wrote [%zu]", name, e);
        for (size_t k = 0; !write && st == WL_SUCCESS && k < n; ++k) {
            FUZZ_CHECK(!memcmp(data + k * width, before.table[t] + rows[k] * width, width * sizeof(float)),
                       "%s: row %zu (%u) differs from the table", name, k, (unsigned)rows[k]);
            FUZZ_CHECK(!with_state ||
                           !memcmp(state + k * width, before.state[t] + rows[k] * width, width * sizeof(float)),
                       "%s: row %zu (%u) differs from the state", name, k, (unsigned)rows[k]);
        }
        free(rows), free(data), free(state);
        return;
    }
    /* the snapshot with the rows written is what the model must hold */
    snapshot want = before;
    for (size_t k = 0; k < n; ++k) {
        memcpy(want.table[t] + rows[k] * width, data + k * width, width * sizeof(float));
        if (with_state)
            memcpy(want.state[t] + rows[k] * width, state + k * width, width * sizeof(float));
    }
    FUZZ_CHECK(!memcmp(&want, &after, sizeof want), "%s: the model is not the rows written and the rest unchanged",
               name);
    poisoned[mi] |= !finite;
    free(rows), free(data), free(state);
}

/* wl_model_changed_rows: any side, rows or n NULL. Accepted: ascending rows in range, every row a step moved
 * among them, none without a step since the last call, nothing written past the count, none left after it;
 * the model unchanged either way. */
static void op_changed(fuzz_reader *r, int mi, uint8_t flags)
{
    wl_model *m = models[mi];
    const uint8_t sb = fuzz_byte(r);
    const wl_table side = (flags & 1) ? (wl_table)(int32_t)fuzz_u64(r, 4) : (wl_table)(sb % 4);
    const int null_rows = (flags >> 1) & 1, null_n = (flags >> 2) & 1;
    const int known_side = side == WL_TABLE_USERS || side == WL_TABLE_ITEMS || side == WL_TABLE_ITEM_BIAS;
    const int invalid = !known_side || null_n;
    const int s = side == WL_TABLE_USERS ? 0 : 1;
    const uint32_t limit = s ? NI : NU;
    uint32_t rows[NI + 1];
    for (int k = 0; k <= NI; ++k)
        rows[k] = 0xA5A5A5A5u;
    size_t n = 12345;
    snapshot before, after;
    take(mi, &before);
    clear_error();
    const wl_status st = wl_model_changed_rows(m, side, null_rows ? NULL : rows, null_n ? NULL : &n);
    expect("wl_model_changed_rows", st, invalid ? WL_ERROR_INVALID_ARGUMENT : WL_SUCCESS);
    take(mi, &after);
    FUZZ_CHECK(!memcmp(&before, &after, sizeof before), "wl_model_changed_rows changed the model");
    if (st != WL_SUCCESS) {
        FUZZ_CHECK(null_n || n == 0, "a refused wl_model_changed_rows gave n = %zu, not 0", n);
        for (int k = 0; k <= NI; ++k)
            FUZZ_CHECK(rows[k] == 0xA5A5A5A5u, "a refused wl_model_changed_rows wrote rows[%d]", k);
        return;
    }
    FUZZ_CHECK(n <= limit, "wl_model_changed_rows: %zu rows of %u", n, (unsigned)limit);
    FUZZ_CHECK(stepped[mi][s] || n == 0, "wl_model_changed_rows: %zu rows without a step", n);
    for (size_t k = n; k <= NI; ++k)
        FUZZ_CHECK(rows[k] == 0xA5A5A5A5u, "wl_model_changed_rows wrote rows[%zu] past n = %zu", k, n);
    if (!null_rows) {
        unsigned char listed[NI] = {0};
        for (size_t k = 0; k < n; ++k) {
            FUZZ_CHECK(rows[k] < limit && (k == 0 || rows[k] > rows[k - 1]), "wl_model_changed_rows: rows[%zu] = %u", k,
                       (unsigned)rows[k]);
            listed[rows[k]] = 1;
        }
        for (uint32_t row = 0; row < limit; ++row)
            FUZZ_CHECK(listed[row] || !moved[mi][s][row], "wl_model_changed_rows: row %u moved but is not listed",
                       (unsigned)row);
    } else {
        size_t least = 0;
        for (uint32_t row = 0; row < limit; ++row)
            least += moved[mi][s][row];
        FUZZ_CHECK(n >= least, "wl_model_changed_rows counted %zu rows; %zu moved", n, least);
    }
    /* the marks are gone */
    size_t again = 12345;
    FUZZ_CHECK(wl_model_changed_rows(m, side, NULL, &again) == WL_SUCCESS && again == 0,
               "wl_model_changed_rows after a call: %zu rows", again);
    stepped[mi][s] = 0;
    memset(moved[mi][s], 0, sizeof moved[mi][s]);
}

static void op_null_model(void)
{
    wl_loss_options lo;
    wl_loss_options_default(&lo, NI);
    const wl_batch b = {0, NULL, NULL, 1, NULL, 0, 0, NULL};
    const wl_batch_cl bc = {0, 0, NULL, NULL, 1, NULL, 0, 0, NULL};
    const uint64_t indptr[NU + 1] = {0};
    float f[NI * DIM];
    int32_t ids[1] = {0}, out[1];
    uint32_t ranks[1];
    cl_event done = (cl_event)&lo;
    FUZZ_CHECK(wl_model_read(NULL, WL_TABLE_USERS, f) == WL_ERROR_INVALID_ARGUMENT, "read(NULL)");
    FUZZ_CHECK(wl_model_write(NULL, WL_TABLE_USERS, f) == WL_ERROR_INVALID_ARGUMENT, "write(NULL)");
    FUZZ_CHECK(wl_model_read_state(NULL, WL_TABLE_USERS, f) == WL_ERROR_INVALID_ARGUMENT, "read_state(NULL)");
    FUZZ_CHECK(wl_model_write_state(NULL, WL_TABLE_USERS, f) == WL_ERROR_INVALID_ARGUMENT, "write_state(NULL)");
    FUZZ_CHECK(wl_model_set_known(NULL, indptr, NULL) == WL_ERROR_INVALID_ARGUMENT, "set_known(NULL)");
    FUZZ_CHECK(wl_model_step(NULL, &lo, &b, NULL) == WL_ERROR_INVALID_ARGUMENT, "step(NULL)");
    FUZZ_CHECK(wl_model_step_cl(NULL, &lo, &bc, NULL, 0, NULL, &done) == WL_ERROR_INVALID_ARGUMENT, "step_cl(NULL)");
    FUZZ_CHECK(wl_model_recommend(NULL, 1, ids, 1, 0, out, NULL) == WL_ERROR_INVALID_ARGUMENT, "recommend(NULL)");
    FUZZ_CHECK(wl_model_rank(NULL, 1, ids, ids, 0, ranks) == WL_ERROR_INVALID_ARGUMENT, "rank(NULL)");
    wl_metrics metrics;
    FUZZ_CHECK(wl_model_evaluate(NULL, indptr, NULL, 1, 0, &metrics, NULL) == WL_ERROR_INVALID_ARGUMENT,
               "evaluate(NULL)");
    const uint32_t rows[1] = {0};
    FUZZ_CHECK(wl_model_read_rows(NULL, WL_TABLE_USERS, 1, rows, f, NULL) == WL_ERROR_INVALID_ARGUMENT,
               "read_rows(NULL)");
    FUZZ_CHECK(wl_model_write_rows(NULL, WL_TABLE_USERS, 1, rows, f, NULL) == WL_ERROR_INVALID_ARGUMENT,
               "write_rows(NULL)");
    size_t n;
    uint32_t changed[NI];
    FUZZ_CHECK(wl_model_changed_rows(NULL, WL_TABLE_ITEMS, changed, &n) == WL_ERROR_INVALID_ARGUMENT,
               "changed_rows(NULL)");
    wl_model_destroy(NULL);
    calls += 13;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ctx)
        return 0;
    fuzz_keep_crash_handlers();
    fuzz_reader r = {data, size};
    int used = 0;
    for (int i = 0; i < MAX_OPS && r.left; ++i) {
        const uint8_t op = fuzz_byte(&r);
        const int mi = (op >> 3) & 3;
        const uint8_t flags = fuzz_byte(&r);
        if (!(used & (1 << mi)))
            reset(mi), used |= 1 << mi;
        switch (op & 7) {
        case 0: op_create(&r, flags); break;
        case 1: op_step(&r, mi, flags); break;
        case 6: op_evaluate(&r, mi, flags); break;
        case 2: op_set_known(&r, mi, flags); break;
        case 3: op_recommend(&r, mi, flags); break;
        case 4: op_rank(&r, mi, flags); break;
        case 5: op_table(&r, mi, flags); break;
        default:
            if (op & 0x20)
                op_rows(&r, mi, flags);
            else if (op & 0x40)
                op_changed(&r, mi, flags);
            else
                op_null_model();
            break;
        }
        fuzz_keep_crash_handlers();
    }
    return 0;
}
