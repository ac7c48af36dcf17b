// The public header compiles on its own as C++ (see meson.build for the flags).
#include "warploss.h"

int main()
{
    wl_loss_options lo = {2, 1.0f, WL_WEIGHT_LOG, WL_REDUCE_SUM, 0};
    wl_context_options co = wl_context_options();
    wl_device_choice choice = wl_device_choice();
    wl_status s = WL_SUCCESS;
    wl_context *c = nullptr;
    wl_status (*fn)(wl_context *, const wl_loss_options *, size_t, size_t, const float *, const float *, float *,
                    float *, float *, int32_t *) = nullptr;
    (void)lo;
    (void)co;
    (void)choice;
    (void)s;
    (void)c;
    (void)fn;
    return WL_API_VERSION_MAJOR * 0;
}
