/*
 * The host-side checks of wl_loss's arguments: options (num_labels, margin,
 * weighting, reduction as any int) and shapes (any size_t, to reach the
 * overflow checks) through wl_loss_check_options, against the rules of
 * include/warploss.h. Then, when the shape is tiny and an OpenCL device is
 * there (PoCL on CI), wl_loss itself on scores from a table that includes
 * NaN, Inf, -0, denormals and FLT_MAX, with a fuzzed set of outputs,
 * compared with the C reference (tests/reference.c): offenders and
 * gradients equal, the loss close; with check_finite, WL_ERROR_NONFINITE
 * and no output written exactly when an input is NaN or Inf.
 *
 * Input: a mode byte, num_labels, margin, weighting, reduction,
 * check_finite, rows and negatives, an outputs mask, then the scores.
 */
#include <float.h>
#include <math.h>

#include "fuzz.h"
#include "internal.h"
#include "reference.h"

#define MAX_ROWS 12
#define MAX_NEGATIVES 20

static wl_context *ctx;

/* README, Semantics: the reduced loss is a float32 sum of the row losses
 * (each times s for the mean), so it is +Inf when those add up beyond
 * FLT_MAX; the reference sums in double. */
static int sum_overflows(const wl_loss_options *o, size_t rows, size_t negatives, const float *pos, const float *neg)
{
    wl_loss_options none = *o;
    none.reduction = WL_REDUCE_NONE;
    float row_loss[MAX_ROWS];
    ref_loss(&none, rows, negatives, pos, neg, row_loss, NULL, NULL, NULL);
    const double s = o->reduction == WL_REDUCE_MEAN && rows ? (double)(1.0f / (float)rows) : 1.0;
    double sum = 0.0;
    for (size_t b = 0; b < rows; ++b)
        sum += (double)row_loss[b] * s;
    return sum > (double)FLT_MAX * (1.0 - 1e-5);
}
static unsigned long device_runs, device_compared; /* inputs that reached wl_loss; compared with the reference */

static void destroy_context(void)
{
    if (ctx)
        fprintf(stderr, "fuzz_loss_args: %lu inputs ran wl_loss on %s, %lu compared with the reference\n", device_runs,
                wl_context_device_name(ctx), device_compared);
    wl_context_destroy(ctx);
    ctx = NULL;
}

/* libFuzzer (and replay.c) call it once, before the first input, when it is there. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    wl_context_options o;
    wl_context_options_default(&o);
    o.kernel_dir = WL_TEST_KERNEL_DIR;
    o.cache_dir = ""; /* PoCL's own cache makes a rebuild cheap */
    fuzz_keep_crash_handlers();
    const wl_status st = wl_context_create(&o, &ctx);
    fuzz_keep_crash_handlers();
    fuzz_crash_handlers_forget(); /* the first input saves libFuzzer's */
    if (st != WL_SUCCESS) {
        fprintf(stderr, "fuzz_loss_args: no OpenCL context (%s); checking the arguments only\n",
                wl_context_last_error(NULL));
        ctx = NULL;
        if (getenv("WL_FUZZ_REQUIRE_DEVICE")) /* CI: PoCL is always there */
            exit(1);
    }
    atexit(destroy_context);
    return 0;
}

static float score(uint8_t b)
{
    static const float special[16] = {NAN,     INFINITY, -INFINITY, -0.0f, FLT_MAX, -FLT_MAX, FLT_MIN,     1e-45f,
                                      -1e-45f, 1e30f,    -1e30f,    0.5f,  1.0f,    -1.0f,    16777216.0f, 1e-7f};
    if (b >= 0xf0)
        return special[b - 0xf0];
    return (float)(int8_t)b / 16.0f; /* a grid: ties with the margin happen */
}

static float margin_of(fuzz_reader *r)
{
    const uint8_t b = fuzz_byte(r);
    static const float special[8] = {1.0f, 0.0f, -1.0f, 0.25f, NAN, INFINITY, -INFINITY, 1e30f};
    if (b < 0xf8)
        return special[b % 8];
    uint32_t bits = (uint32_t)fuzz_u64(r, 4);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static int valid(const wl_loss_options *o, size_t rows, size_t negatives)
{
    size_t bytes;
    return o->num_labels >= 2 && isfinite(o->margin) && (o->weighting == 0 || o->weighting == 1) &&
           (o->reduction == 0 || o->reduction == 1 || o->reduction == 2) && negatives <= INT32_MAX &&
           rows < UINT32_MAX && !__builtin_mul_overflow(rows, negatives, &bytes) &&
           !__builtin_mul_overflow(bytes, sizeof(float), &bytes);
}

static int same_value(float a, float b) { return (isnan(a) && isnan(b)) || a == b; }

static int close_to(float got, float want)
{
    if (isnan(got) || isnan(want))
        return isnan(got) && isnan(want);
    if (isinf(got) || isinf(want))
        return got == want;
    return fabs((double)got - (double)want) <= 1e-5 * fabs((double)want) + 1e-6;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_keep_crash_handlers();
    fuzz_reader r = {data, size};
    const uint8_t mode = fuzz_byte(&r);
    wl_loss_options o;
    wl_loss_options_default(&o, 2);
    o.num_labels = (mode & 1) ? fuzz_u64(&r, 8) : fuzz_byte(&r);
    o.margin = margin_of(&r);
    o.weighting = (wl_weighting)(int8_t)fuzz_byte(&r) % 4;
    o.reduction = (wl_reduction)(int8_t)fuzz_byte(&r) % 5;
    if (mode & 2) { /* any int */
        o.weighting = (wl_weighting)(int32_t)fuzz_u64(&r, 4);
        o.reduction = (wl_reduction)(int32_t)fuzz_u64(&r, 4);
    }
    o.check_finite = fuzz_byte(&r) & 1;
    size_t rows, negatives;
    if (mode & 4) { /* any size */
        rows = (size_t)fuzz_u64(&r, 8);
        negatives = (size_t)fuzz_u64(&r, 8);
    } else {
        rows = fuzz_byte(&r) % (MAX_ROWS + 1);
        negatives = fuzz_byte(&r) % (MAX_NEGATIVES + 1);
    }

    /* the check alone */
    const int want_ok = valid(&o, rows, negatives);
    wl_context *dummy = calloc(1, sizeof *dummy);
    FUZZ_CHECK(dummy != NULL, "out of memory");
    wl_status st = wl_loss_check_options(dummy, &o, rows, negatives);
    FUZZ_CHECK((st == WL_SUCCESS) == want_ok, "check: status %d, want %s (rows %zu, negatives %zu): %s", (int)st,
               want_ok ? "success" : "an error", rows, negatives, dummy->error);
    FUZZ_CHECK(st == WL_SUCCESS || (st == WL_ERROR_INVALID_ARGUMENT && dummy->error[0]), "check: status %d, \"%s\"",
               (int)st, dummy->error);
    FUZZ_CHECK(wl_loss_check_options(dummy, NULL, rows, negatives) == WL_ERROR_INVALID_ARGUMENT, "options NULL");
    free(dummy);
    if (!ctx || rows > MAX_ROWS || negatives > MAX_NEGATIVES)
        return 0;
    /* the reference sums H(r) term by term up to r = 10^7: too slow per input */
    if (o.weighting == WL_WEIGHT_HARMONIC && o.num_labels > (1u << 20) && o.num_labels < (1ull << 40))
        return 0;

    /* wl_loss on the device */
    const uint8_t outputs = fuzz_byte(&r);
    const size_t scores = rows * negatives, nloss = o.reduction == WL_REDUCE_NONE ? rows : 1;
    float pos[MAX_ROWS], neg[MAX_ROWS * MAX_NEGATIVES];
    int finite = 1;
    for (size_t i = 0; i < rows; ++i)
        finite &= isfinite(pos[i] = score(fuzz_byte(&r))) != 0;
    for (size_t i = 0; i < scores; ++i)
        finite &= isfinite(neg[i] = score(fuzz_byte(&r))) != 0;
    float loss[MAX_ROWS + 1], grad_pos[MAX_ROWS], grad_neg[MAX_ROWS * MAX_NEGATIVES];
    int32_t offender[MAX_ROWS];
    for (size_t i = 0; i < MAX_ROWS + 1; ++i)
        loss[i] = 12345.5f;
    for (size_t i = 0; i < MAX_ROWS; ++i)
        grad_pos[i] = 12345.5f, offender[i] = 0x5a5a5a5a;
    for (size_t i = 0; i < MAX_ROWS * MAX_NEGATIVES; ++i)
        grad_neg[i] = 12345.5f;
    float *gp = (outputs & 1) ? grad_pos : NULL, *gn = (outputs & 2) ? grad_neg : NULL;
    int32_t *off = (outputs & 4) ? offender : NULL;
    const int drop_loss = (outputs & 0xf8) == 0xf8, drop_input = (outputs & 0xf8) == 0xf0;

    ++device_runs;
    st = wl_loss(ctx, &o, rows, negatives, drop_input ? NULL : pos, drop_input ? NULL : neg, drop_loss ? NULL : loss,
                 gp, gn, off);
    fuzz_keep_crash_handlers();
    const char *error = wl_context_last_error(ctx);
    if (!want_ok || drop_loss || (drop_input && rows)) {
        FUZZ_CHECK(st == WL_ERROR_INVALID_ARGUMENT, "wl_loss: status %d, want invalid argument (%s)", (int)st, error);
        return 0;
    }
    if (o.check_finite && !finite && !drop_input) {
        FUZZ_CHECK(st == WL_ERROR_NONFINITE, "wl_loss: status %d, want WL_ERROR_NONFINITE (%s)", (int)st, error);
        for (size_t i = 0; i < MAX_ROWS; ++i)
            FUZZ_CHECK(loss[i] == 12345.5f && grad_pos[i] == 12345.5f && offender[i] == 0x5a5a5a5a,
                       "output written on error");
        for (size_t i = 0; i < scores; ++i)
            FUZZ_CHECK(grad_neg[i] == 12345.5f, "grad_neg written on error");
        return 0;
    }
    FUZZ_CHECK(st == WL_SUCCESS, "wl_loss: status %d (%s), rows %zu negatives %zu", (int)st, error, rows, negatives);

    ++device_compared;
    float want_loss[MAX_ROWS + 1], want_grad_pos[MAX_ROWS], want_grad_neg[MAX_ROWS * MAX_NEGATIVES];
    int32_t want_offender[MAX_ROWS];
    ref_loss(&o, rows, negatives, pos, neg, want_loss, want_grad_pos, want_grad_neg, want_offender);
    const int overflow_ok = o.reduction != WL_REDUCE_NONE && loss[0] == INFINITY &&
                            sum_overflows(&o, rows, negatives, pos, neg);
    for (size_t i = 0; i < nloss && !overflow_ok; ++i)
        FUZZ_CHECK(close_to(loss[i], want_loss[i]), "loss[%zu] = %.9g, reference %.9g", i, (double)loss[i],
                   (double)want_loss[i]);
    FUZZ_CHECK(loss[nloss] == 12345.5f, "loss written past its %zu elements", nloss);
    for (size_t i = 0; i < rows; ++i) {
        if (off)
            FUZZ_CHECK(offender[i] == want_offender[i], "offender[%zu] = %d, reference %d", i, (int)offender[i],
                       (int)want_offender[i]);
        if (gp)
            FUZZ_CHECK(same_value(grad_pos[i], want_grad_pos[i]), "grad_pos[%zu] = %.9g, reference %.9g", i,
                       (double)grad_pos[i], (double)want_grad_pos[i]);
    }
    for (size_t i = 0; gn && i < scores; ++i)
        FUZZ_CHECK(same_value(grad_neg[i], want_grad_neg[i]), "grad_neg[%zu] = %.9g, reference %.9g", i,
                   (double)grad_neg[i], (double)want_grad_neg[i]);
    return 0;
}
