/* The public header compiles on its own as strict C11 (see meson.build for the flags). */
#include "warploss.h"

int main(void)
{
    wl_loss_options lo = {2, 1.0f, WL_WEIGHT_LOG, WL_REDUCE_SUM, 0};
    wl_context_options co = {0};
    wl_device_choice choice = {0};
    wl_status s = WL_SUCCESS;
    wl_context *c = NULL;
    (void)lo;
    (void)co;
    (void)choice;
    (void)s;
    (void)c;
    return WL_API_VERSION_MAJOR * 0;
}
