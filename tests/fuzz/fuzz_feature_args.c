/*
 * The hybrid model's arguments (include/warploss.h, "features"): each input
 * is a short sequence of calls on one small model made once (7 users, 11
 * items, dim 3; 9 user features, 14 item features), its tables reset to fixed
 * values the first time an input uses it: wl_model_set_features with any
 * side and any CSR (indptr, features, weights: unsorted, out of range, NaN,
 * Inf), wl_model_recommend_features with any feature rows and exclusions,
 * wl_model_evaluate_among with any subset and held-out CSR,
 * wl_model_read_representations with any table number, and a step with any
 * sample weights. Each call's status must be WL_ERROR_INVALID_ARGUMENT
 * exactly when the host oracle below (the documented rules) says so, with a
 * message; a refused call changes neither the matrices nor the
 * representations nor any output. Accepted results are checked for their
 * documented shape (recommendations distinct, in range, best first, never an
 * excluded item; representations finite; metrics in [0, 1]).
 *
 * Input: up to MAX_OPS calls, each an op byte (kind in bits 0-2, flags
 * above) and that call's bytes.
 */
#include <float.h>
#include <math.h>

#include "fuzz.h"
#include "internal.h"

#define NU 7
#define NI 11
#define FU 9
#define FI 14
#define DIM 3
#define MAX_NNZ 48
#define MAX_N 8
#define MAX_OPS 4

static wl_context *ctx;
static wl_model *model;
static unsigned long calls, accepted;

static void destroy_all(void)
{
    if (ctx)
        fprintf(stderr, "fuzz_feature_args: %lu calls, %lu accepted\n", calls, accepted);
    wl_model_destroy(model);
    wl_context_destroy(ctx);
    ctx = NULL;
}

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
    if (st == WL_SUCCESS) {
        wl_model_options mo;
        wl_model_options_default(&mo, NU, NI, DIM);
        mo.num_user_features = FU;
        mo.num_item_features = FI;
        st = wl_model_create(ctx, &mo, &model);
    }
    fuzz_keep_crash_handlers();
    fuzz_crash_handlers_forget();
    if (st != WL_SUCCESS) {
        fprintf(stderr, "fuzz_feature_args: no OpenCL context or model (%s); nothing to check\n",
                wl_context_last_error(ctx));
        if (getenv("WL_FUZZ_REQUIRE_DEVICE"))
            exit(1);
        wl_model_destroy(model);
        model = NULL;
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
                                      1e30f, -1e30f,   0.5f,      1.0f,  -1.0f,   0.0f,     0.25f,   2.0f};
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

/* A CSR of `rows` rows over [0, limit): indptr mostly valid (sometimes broken), entries from the input. Returns
 * whether the documented rules accept it (weights NULL when !with_weights). */
typedef struct csr {
    uint64_t ptr[MAX_N > NI ? MAX_N + 1 : NI + 1];
    int32_t idx[MAX_NNZ];
    float w[MAX_NNZ];
} csr;

static int read_csr(fuzz_reader *r, size_t rows, uint32_t limit, int with_weights, int weights_checked, csr *x)
{
    int ok = 1;
    x->ptr[0] = 0;
    for (size_t k = 1; k <= rows; ++k) {
        const uint8_t b = fuzz_byte(r);
        x->ptr[k] = x->ptr[k - 1] + (b & 3);
        if (x->ptr[k] > MAX_NNZ)
            x->ptr[k] = MAX_NNZ;
        if (b == 0xff && x->ptr[k - 1] > 0)
            x->ptr[k] = x->ptr[k - 1] - 1; /* decreasing */
    }
    if (fuzz_byte(r) == 0xfe)
        x->ptr[0] = 1, ok = 0;
    for (size_t k = 0; k < rows; ++k)
        ok &= x->ptr[k + 1] >= x->ptr[k];
    for (size_t k = 0; k < MAX_NNZ; ++k) {
        x->idx[k] = id_of(r, limit);
        x->w[k] = float_of(r);
    }
    if (!ok)
        return 0;
    for (size_t row = 0; row < rows; ++row)
        for (uint64_t k = x->ptr[row]; k < x->ptr[row + 1]; ++k) {
            ok &= x->idx[k] >= 0 && (uint32_t)x->idx[k] < limit;
            ok &= k == x->ptr[row] || x->idx[k] > x->idx[k - 1];
            ok &= !with_weights || !weights_checked || isfinite(x->w[k]);
        }
    return ok;
}

/* ------------------------------------------------------------ state */

static void reset(void)
{
    float t[FI * DIM];
    for (int k = 0; k < FI * DIM; ++k)
        t[k] = (float)((k * 37) % 17 - 8) / 64.0f;
    FUZZ_CHECK(wl_model_write(model, WL_TABLE_USERS, t) == WL_SUCCESS, "reset: %s", wl_context_last_error(ctx));
    FUZZ_CHECK(wl_model_write(model, WL_TABLE_ITEMS, t) == WL_SUCCESS, "reset: %s", wl_context_last_error(ctx));
    for (int k = 0; k < FI; ++k)
        t[k] = (float)(k % 5) / 32.0f;
    FUZZ_CHECK(wl_model_write(model, WL_TABLE_ITEM_BIAS, t) == WL_SUCCESS, "reset: %s", wl_context_last_error(ctx));
    /* identity plus one shared feature on each side */
    csr u, i;
    u.ptr[0] = i.ptr[0] = 0;
    for (int r = 0; r < NU; ++r) {
        u.idx[2 * r] = r, u.idx[2 * r + 1] = NU + r % 2, u.w[2 * r] = u.w[2 * r + 1] = 0.5f;
        u.ptr[r + 1] = 2 * (uint64_t)r + 2;
    }
    for (int r = 0; r < NI; ++r) {
        i.idx[2 * r] = r, i.idx[2 * r + 1] = NI + r % 3, i.w[2 * r] = i.w[2 * r + 1] = 0.5f;
        i.ptr[r + 1] = 2 * (uint64_t)r + 2;
    }
    FUZZ_CHECK(wl_model_set_features(model, WL_TABLE_USERS, u.ptr, u.idx, u.w) == WL_SUCCESS, "reset: %s",
               wl_context_last_error(ctx));
    FUZZ_CHECK(wl_model_set_features(model, WL_TABLE_ITEMS, i.ptr, i.idx, i.w) == WL_SUCCESS, "reset: %s",
               wl_context_last_error(ctx));
}

/* What the matrices and representations are now. */
typedef struct snapshot {
    float rep[3][NI * DIM];
    uint64_t ptr[2][NI + 1];
    int32_t idx[2][MAX_NNZ];
    float w[2][MAX_NNZ];
} snapshot;

static void take(snapshot *s)
{
    memset(s, 0, sizeof *s);
    for (int t = 0; t < 3; ++t)
        FUZZ_CHECK(wl_model_read_representations(model, (wl_table)t, s->rep[t]) == WL_SUCCESS, "representations: %s",
                   wl_context_last_error(ctx));
    for (int side = 0; side < 2; ++side) {
        const uint64_t *p;
        const int32_t *f;
        const float *w;
        const size_t rows = side ? NI : NU;
        FUZZ_CHECK(wl_model_get_features(model, side ? WL_TABLE_ITEMS : WL_TABLE_USERS, &p, &f, &w) == WL_SUCCESS,
                   "get_features: %s", wl_context_last_error(ctx));
        memcpy(s->ptr[side], p, (rows + 1) * sizeof *p);
        memcpy(s->idx[side], f, p[rows] * sizeof *f);
        memcpy(s->w[side], w, p[rows] * sizeof *w);
    }
}

static void expect(const char *call, wl_status st, wl_status want)
{
    ++calls;
    accepted += st == WL_SUCCESS;
    FUZZ_CHECK(st == want, "%s: status %d (%s), want %d (%s): %s", call, (int)st, wl_status_string(st), (int)want,
               wl_status_string(want), wl_context_last_error(ctx));
    FUZZ_CHECK(st == WL_SUCCESS || ctx->error[0], "%s: failed (%d) without a message", call, (int)st);
}

/* ------------------------------------------------------------ the calls */

static void op_set_features(fuzz_reader *r, uint8_t flags)
{
    const int side_code = flags & 3; /* 0 users, 1 items, 2 the bias table, 3 a number out of the enum */
    const wl_table side = side_code == 0   ? WL_TABLE_USERS
                          : side_code == 1 ? WL_TABLE_ITEMS
                          : side_code == 2 ? WL_TABLE_ITEM_BIAS
                                           : (wl_table)77;
    const size_t rows = side_code == 0 ? NU : NI;
    const uint32_t limit = side_code == 0 ? FU : FI;
    const int with_weights = !(flags & 4), null_features = (flags & 8) != 0;
    csr x;
    int ok = read_csr(r, rows, limit, with_weights, 1, &x) && side_code < 2;
    if (null_features && x.ptr[rows] > 0 && x.ptr[0] == 0)
        ok = 0;
    snapshot before, after;
    take(&before);
    ctx->error[0] = 0;
    const wl_status st = wl_model_set_features(model, side, x.ptr, null_features ? NULL : x.idx,
                                               with_weights ? x.w : NULL);
    expect("wl_model_set_features", st, ok ? WL_SUCCESS : WL_ERROR_INVALID_ARGUMENT);
    take(&after);
    if (st != WL_SUCCESS) {
        FUZZ_CHECK(!memcmp(&before, &after, sizeof before), "a refused wl_model_set_features changed the model");
        return;
    }
    /* the matrix reads back as given */
    const int s = side_code;
    FUZZ_CHECK(!memcmp(after.ptr[s], x.ptr, (rows + 1) * sizeof(uint64_t)), "indptr read back differs");
    for (uint64_t k = 0; k < x.ptr[rows]; ++k) {
        FUZZ_CHECK(after.idx[s][k] == x.idx[k], "features[%llu] read back differs", (unsigned long long)k);
        const float want = with_weights ? x.w[k] : 1.0f;
        FUZZ_CHECK(!memcmp(&after.w[s][k], &want, sizeof want), "weights[%llu] read back differs",
                   (unsigned long long)k);
    }
}

static void op_recommend(fuzz_reader *r, uint8_t flags)
{
    const size_t n = (size_t)(fuzz_byte(r) % (MAX_N + 1));
    size_t k = (size_t)(fuzz_byte(r) % (NI + 2));
    const int exclude = flags & 1, null_items = (flags & 2) && n, null_ex_items = (flags & 4) && exclude;
    csr rows, ex;
    int ok = read_csr(r, n, FU, 1, 1, &rows);
    const int ex_ok = read_csr(r, n, NI, 0, 0, &ex);
    if (exclude)
        ok &= ex_ok && !null_ex_items;
    ok &= k >= 1 && k <= NI && !null_items;
    int32_t items[MAX_N * (NI + 1)];
    float scores[MAX_N * (NI + 1)];
    for (size_t e = 0; e < sizeof items / sizeof items[0]; ++e)
        items[e] = -7, scores[e] = -7.0f;
    ctx->error[0] = 0;
    const wl_status st = wl_model_recommend_features(model, n, rows.ptr, rows.idx, rows.w, exclude ? ex.ptr : NULL,
                                                     exclude && !null_ex_items ? ex.idx : NULL, k,
                                                     null_items ? NULL : items, scores);
    expect("wl_model_recommend_features", st, n == 0 || ok ? WL_SUCCESS : WL_ERROR_INVALID_ARGUMENT);
    if (st != WL_SUCCESS || n == 0) {
        for (size_t e = 0; e < sizeof items / sizeof items[0]; ++e)
            FUZZ_CHECK(items[e] == -7 && scores[e] == -7.0f, "a refused or empty call wrote an output");
        return;
    }
    for (size_t q = 0; q < n; ++q) {
        for (size_t j = 0; j < k; ++j) {
            const int32_t x = items[q * k + j];
            FUZZ_CHECK(x >= -1 && x < NI, "item %d out of range", (int)x);
            if (x < 0)
                continue;
            for (size_t j2 = 0; j2 < j; ++j2)
                FUZZ_CHECK(items[q * k + j2] != x, "item %d twice", (int)x);
            if (j > 0 && items[q * k + j - 1] >= 0 && !isnan(scores[q * k + j]))
                FUZZ_CHECK(!(scores[q * k + j] > scores[q * k + j - 1]), "not best first");
            for (uint64_t e = exclude ? ex.ptr[q] : 0; exclude && e < ex.ptr[q + 1]; ++e)
                FUZZ_CHECK(ex.idx[e] != x, "excluded item %d recommended", (int)x);
        }
    }
}

static void op_evaluate(fuzz_reader *r, uint8_t flags)
{
    uint8_t among[NI];
    for (int x = 0; x < NI; ++x)
        among[x] = fuzz_byte(r) % 4 != 0;
    const int use_among = flags & 1;
    const uint32_t k = fuzz_byte(r) % 5;
    csr held;
    int ok = read_csr(r, NU, NI, 0, 0, &held) && k >= 1;
    for (uint64_t e = 0; ok && use_among && e < held.ptr[NU]; ++e)
        ok &= among[held.idx[e]] != 0;
    wl_metrics m, want_m;
    memset(&m, 0x5a, sizeof m);
    want_m = m;
    ctx->error[0] = 0;
    const wl_status st = wl_model_evaluate_among(model, use_among ? among : NULL, held.ptr, held.idx, k,
                                                 (flags & 2) != 0, &m, NULL);
    expect("wl_model_evaluate_among", st, ok ? WL_SUCCESS : WL_ERROR_INVALID_ARGUMENT);
    if (st != WL_SUCCESS) {
        FUZZ_CHECK(!memcmp(&m, &want_m, sizeof m), "a refused evaluation wrote its output");
        return;
    }
    FUZZ_CHECK(m.k == k, "k %u", (unsigned)m.k);
    if (m.users)
        FUZZ_CHECK(m.precision_at_k >= 0 && m.precision_at_k <= 1 && m.recall_at_k >= 0 && m.recall_at_k <= 1 &&
                       m.auc >= 0 && m.auc <= 1 && m.mrr > 0 && m.mrr <= 1,
                   "metrics out of [0, 1]");
}

static void op_step(fuzz_reader *r, uint8_t flags)
{
    int32_t users[MAX_N], positives[MAX_N];
    float weights[MAX_N];
    const size_t rows = (size_t)(fuzz_byte(r) % (MAX_N + 1));
    int ok = 1;
    for (size_t b = 0; b < rows; ++b) {
        users[b] = id_of(r, NU);
        positives[b] = id_of(r, NI);
        weights[b] = float_of(r);
        ok &= users[b] >= 0 && users[b] < NU && positives[b] >= 0 && positives[b] < NI;
        ok &= !(flags & 1) || (weights[b] >= 0.0f && weights[b] <= FLT_MAX);
    }
    wl_loss_options lo;
    wl_loss_options_default(&lo, NI);
    const wl_batch b = {rows, users, positives, 4, NULL, 0, fuzz_u64(r, 2), flags & 1 ? weights : NULL};
    snapshot before, after;
    take(&before);
    ctx->error[0] = 0;
    wl_step_result res;
    const wl_status st = wl_model_step(model, &lo, &b, &res);
    expect("wl_model_step (weights)", st, ok ? WL_SUCCESS : WL_ERROR_INVALID_ARGUMENT);
    take(&after);
    if (st != WL_SUCCESS)
        FUZZ_CHECK(!memcmp(&before, &after, sizeof before), "a refused step changed the model");
    else if (rows)
        FUZZ_CHECK(res.scores <= rows * 4 && res.offenders <= rows, "step result out of range");
}

static void op_representations(fuzz_reader *r, uint8_t flags)
{
    const int t = (int)(fuzz_byte(r) % 5) - 1; /* -1 .. 3: two numbers out of the enum */
    float out[NI * DIM + 1];
    out[NI * DIM] = -7.0f;
    ctx->error[0] = 0;
    const wl_status st = wl_model_read_representations(model, (wl_table)t, flags & 1 ? NULL : out);
    const int ok = t >= 0 && t <= 2 && !(flags & 1);
    expect("wl_model_read_representations", st, ok ? WL_SUCCESS : WL_ERROR_INVALID_ARGUMENT);
    FUZZ_CHECK(out[NI * DIM] == -7.0f, "wrote past the representations");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ctx)
        return 0;
    fuzz_reader r = {data, size};
    reset();
    for (int op = 0; op < MAX_OPS && r.left; ++op) {
        const uint8_t code = fuzz_byte(&r);
        const uint8_t flags = code >> 3;
        switch (code & 7) {
        case 0:
        case 5: op_set_features(&r, flags); break;
        case 1: op_recommend(&r, flags); break;
        case 2:
        case 6: op_evaluate(&r, flags); break;
        case 3: op_step(&r, flags); break;
        default: op_representations(&r, flags); break;
        }
        fuzz_keep_crash_handlers();
    }
    return 0;
}
