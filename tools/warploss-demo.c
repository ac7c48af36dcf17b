/* warploss-demo: the seed package's README example on the chosen device.
 * Usage: warploss-demo [DEVICE-SPEC]   (default: $WARPLOSS_DEVICE, else the best device) */
#include <stdio.h>
#include <string.h>

#include "warploss.h"

int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))) {
        fprintf(stderr, "usage: %s [DEVICE-SPEC]\n  DEVICE-SPEC: gpu, cpu, accelerator, P:D or part of a name\n",
                argv[0]);
        return 2;
    }
    wl_context_options co;
    wl_context_options_default(&co);
    co.device = argc == 2 ? argv[1] : NULL;
    wl_context *c = NULL;
    wl_status st = wl_context_create(&co, &c);
    if (st != WL_SUCCESS) {
        fprintf(stderr, "warploss-demo: %s: %s\n", wl_status_string(st), wl_context_last_error(NULL));
        return 1;
    }
    enum { ROWS = 3, NEG = 2 };
    const float pos[ROWS] = {-4.9562f, -1.6886f, 3.3984f};
    const float neg[ROWS * NEG] = {1.0491f, 4.9357f, -2.1289f, 0.4496f, 3.4541f, 0.0931f};
    float loss, grad_pos[ROWS], grad_neg[ROWS * NEG];
    int32_t offender[ROWS];
    wl_loss_options lo;
    wl_loss_options_default(&lo, 100);
    st = wl_loss(c, &lo, ROWS, NEG, pos, neg, &loss, grad_pos, grad_neg, offender);
    if (st != WL_SUCCESS) {
        fprintf(stderr, "warploss-demo: %s: %s\n", wl_status_string(st), wl_context_last_error(c));
        wl_context_destroy(c);
        return 1;
    }
    printf("device:    %s\n", wl_context_device_name(c));
    printf("kernels:   %s (%s, %.3f s)\n", wl_context_kernel_origin(c),
           wl_context_program_from_cache(c) ? "from the binary cache" : "compiled", wl_context_build_seconds(c));
    printf("input:     num_labels 100, margin 1, log weighting, sum\n");
    for (int b = 0; b < ROWS; ++b)
        printf("  row %d:   pos % .4f  neg [% .4f, % .4f]\n", b, pos[b], neg[b * NEG], neg[b * NEG + 1]);
    printf("loss:      %.4f\n", loss);
    printf("offenders: %d %d %d\n", offender[0], offender[1], offender[2]);
    printf("grad_pos:  % .4f % .4f % .4f\n", grad_pos[0], grad_pos[1], grad_pos[2]);
    printf("grad_neg: ");
    for (int i = 0; i < ROWS * NEG; ++i)
        printf(" % .4f", grad_neg[i]);
    printf("\n");
    wl_context_destroy(c);
    return 0;
}
