/*
 * A program outside the build, as a user writes it: compiled against the
 * installed library with `pkg-config --cflags --libs warploss` and run with
 * the installed kernels (tests/install/check.sh does both; CI runs it).
 *
 * usage: consumer KERNEL-FOLDER
 *   KERNEL-FOLDER: the installed kernel folder of this version,
 *   <prefix>/share/warploss/<version>; the context's kernel origin must be
 *   that folder (not "embedded", not $WARPLOSS_KERNEL_DIR).
 *
 * It creates a context (the best device, or $WARPLOSS_DEVICE; no binary
 * cache), computes one wl_loss on two rows, then a model's recommendations
 * and one step with shared candidates, and checks every output against
 * values worked out by hand from README.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <warploss.h>

#define STR_(x) #x
#define STR(x) STR_(x)

static int failures;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "consumer: FAILED: %s\n", what);
        ++failures;
    }
}

static int close_to(float got, float want)
{
    float diff = got > want ? got - want : want - got;
    return diff <= 1e-6f * (want > 0 ? want : -want) + 1e-7f;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s KERNEL-FOLDER\n", argv[0]);
        return 2;
    }
    const char *folder = argv[1];
    if (getenv("WARPLOSS_KERNEL_DIR")) {
        fprintf(stderr, "consumer: unset WARPLOSS_KERNEL_DIR: the installed kernels are under test\n");
        return 2;
    }

    /* The library loaded is the one the header belongs to. */
    const char *header_version = STR(WL_API_VERSION_MAJOR) "." STR(WL_API_VERSION_MINOR) "." STR(WL_API_VERSION_PATCH);
    printf("library:   %s (header %s)\n", wl_version(), header_version);
    check(strcmp(wl_version(), header_version) == 0, "wl_version() is the header's version");

    wl_context_options co;
    wl_context_options_default(&co);
    co.cache_dir = ""; /* compile the installed sources; leave no cache behind */
    wl_context *c = NULL;
    wl_status st = wl_context_create(&co, &c);
    if (st != WL_SUCCESS) {
        fprintf(stderr, "consumer: wl_context_create: %s: %s\n", wl_status_string(st), wl_context_last_error(NULL));
        return 1;
    }
    const char *origin = wl_context_kernel_origin(c);
    size_t n = strlen(folder);
    while (n > 1 && folder[n - 1] == '/')
        --n;
    printf("device:    %s\n", wl_context_device_name(c));
    printf("kernels:   %s\n", origin);
    check(strncmp(origin, folder, n) == 0 && origin[n] == '\0', "the kernels come from the installed folder");

    /*
     * margin 1, num_labels 101, log weighting, sum.
     * Row 0: (1 + n[j]) - 2 > 0 first at j = 1 (0.5 > 0): k = 2 trials,
     *        r = floor(100 / 2) = 50, w = ln 50, row loss w * ((1 - 2) + 1.5) = w / 2.
     * Row 1: (1 + n[j]) - 3 <= 0 for every j: no offender, loss 0.
     */
    enum { ROWS = 2, NEG = 3 };
    const float pos[ROWS] = {2.0f, 3.0f};
    const float neg[ROWS * NEG] = {0.5f, 1.5f, -1.0f, 0.0f, 1.0f, 1.5f};
    const float w = (float)3.91202300542814605862; /* ln 50 */
    float loss = -1.0f, grad_pos[ROWS], grad_neg[ROWS * NEG];
    int32_t offender[ROWS];
    wl_loss_options lo;
    wl_loss_options_default(&lo, 101);
    st = wl_loss(c, &lo, ROWS, NEG, pos, neg, &loss, grad_pos, grad_neg, offender);
    if (st != WL_SUCCESS) {
        fprintf(stderr, "consumer: wl_loss: %s: %s\n", wl_status_string(st), wl_context_last_error(c));
        wl_context_destroy(c);
        return 1;
    }
    printf("loss:      %.7g (want %.7g)\n", loss, w * 0.5f);
    check(close_to(loss, w * 0.5f), "loss = ln(50) / 2");
    check(offender[0] == 1 && offender[1] == -1, "offenders 1 and -1");
    check(close_to(grad_pos[0], -w) && grad_pos[1] == 0.0f, "grad_pos = {-ln 50, 0}");
    for (int i = 0; i < ROWS * NEG; ++i)
        check(i == 1 ? close_to(grad_neg[i], w) : grad_neg[i] == 0.0f, "grad_neg = ln 50 at [0][1], else 0");

    /*
     * The model on the same context (its kernels from the installed folder,
     * CLBlast's SGEMM for shared candidates and recommend): U = [[1, 0],
     * [0, 1]], V = [[1, 0], [0, 2], [0.5, 0.5]], b = [0, 0, 1], so user 0
     * scores items {1, 0, 1.5} and user 1 {0, 2, 1.5}, exactly in float.
     */
    wl_model_options mo;
    wl_model_options_default(&mo, 2, 3, 2);
    wl_model *m = NULL;
    const float U[4] = {1, 0, 0, 1}, V[6] = {1, 0, 0, 2, 0.5f, 0.5f}, b[3] = {0, 0, 1};
    st = wl_model_create(c, &mo, &m);
    if (st == WL_SUCCESS && (st = wl_model_write(m, WL_TABLE_USERS, U)) == WL_SUCCESS &&
        (st = wl_model_write(m, WL_TABLE_ITEMS, V)) == WL_SUCCESS)
        st = wl_model_write(m, WL_TABLE_ITEM_BIAS, b);
    const int32_t users[2] = {0, 1};
    int32_t top[4];
    float top_scores[4];
    if (st == WL_SUCCESS)
        st = wl_model_recommend(m, 2, users, 2, 0, top, top_scores);
    /* one row (user 0, positive 0, s_i = 1), shared candidates {1, 2}: (1 + 0) - 1 = 0 does not stop, (1 + 1.5) - 1
     * does: k = 2 trials, w = ln 50 (num_labels 101), loss w * ((1 - 1) + 1.5) */
    const int32_t row_user = 0, row_pos = 0, shared[2] = {1, 2};
    const wl_batch batch = {1, &row_user, &row_pos, 2, shared, 1, 0, NULL};
    wl_step_result r = {0, 0, 0};
    if (st == WL_SUCCESS)
        st = wl_model_step(m, &lo, &batch, &r);
    if (st != WL_SUCCESS) {
        fprintf(stderr, "consumer: the model: %s: %s\n", wl_status_string(st), wl_context_last_error(c));
        wl_model_destroy(m);
        wl_context_destroy(c);
        return 1;
    }
    printf("recommend: user 0: %d %d, user 1: %d %d\n", (int)top[0], (int)top[1], (int)top[2], (int)top[3]);
    check(top[0] == 2 && top[1] == 0 && top[2] == 1 && top[3] == 2, "recommend: items {2, 0} and {1, 2}");
    check(top_scores[0] == 1.5f && top_scores[1] == 1.0f && top_scores[2] == 2.0f && top_scores[3] == 1.5f,
          "recommend: scores {1.5, 1} and {2, 1.5}");
    printf("step:      loss %.7g (want %.7g), offenders %llu, scores %llu\n", r.loss, (double)(w * 1.5f),
           (unsigned long long)r.offenders, (unsigned long long)r.scores);
    check(close_to((float)r.loss, w * 1.5f) && r.offenders == 1 && r.scores == 2,
          "step: loss 1.5 ln 50, one offender, two scores");
    wl_model_destroy(m);

    wl_context_destroy(c);
    if (failures) {
        fprintf(stderr, "consumer: %d check(s) failed\n", failures);
        return 1;
    }
    printf("consumer: the installed library works\n");
    return 0;
}
