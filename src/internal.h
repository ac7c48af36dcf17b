/* Private declarations shared by the files of src/. */
#ifndef WL_INTERNAL_H
#define WL_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define WL_BUILDING_LIBRARY 1
#include "warploss.h"

#define WL_ERROR_SIZE 16384
#define WL_PRINTF(f, a) __attribute__((format(printf, f, a)))

struct wl_context {
    cl_context context;
    cl_device_id device;
    cl_command_queue queue;
    cl_program program;
    cl_kernel scan_rows, scan_groups, reduce_sum, find_nonfinite;

    /* what was chosen while creating */
    char device_name[256];
    cl_device_type device_type;
    size_t max_group;       /* the scan kernel's largest work-group */
    uint64_t max_alloc;     /* CL_DEVICE_MAX_MEM_ALLOC_SIZE */
    int use_group_scan;     /* 1: wl_scan_groups, 0: wl_scan_rows */
    int vector_width;       /* WL_VEC */
    size_t row_items;       /* row scan: work-items per launch, each a block of rows (0: one row each) */
    size_t reduce_group;    /* wl_reduce_sum's work-group, a power of two */
    char kernel_origin[4096];
    int from_cache;
    double build_seconds;

    void (*log)(void *user, const char *message);
    void *log_user;

    /* rank weights for the last (num_labels, negatives, weighting) */
    cl_mem weights;
    uint64_t weights_labels;
    size_t weights_count;
    int weights_kind;

    /* scratch for wl_loss_cl and staging for wl_loss, grown as needed */
    cl_mem row_loss, flag;
    size_t row_loss_size;
    cl_mem stage[6];
    size_t stage_size[6];

    cl_event last; /* the last command of the previous call, so calls stay ordered */

    char error[WL_ERROR_SIZE];
};

/* status.c: error text, the OpenCL error names, the log callback */
wl_status wl_fail(wl_context *c, wl_status s, const char *fmt, ...) WL_PRINTF(3, 4);
wl_status wl_fail_cl(wl_context *c, cl_int err, const char *what);
wl_status wl_cl_status(cl_int err);
const char *wl_cl_error_name(cl_int err);
void wl_log(const wl_context *c, const char *fmt, ...) WL_PRINTF(2, 3);
char *wl_thread_error(void);

/* device.c: the resolver; writes the detail into err on failure */
wl_status wl_device_resolve(const char *spec, wl_device_choice *out, char *err, size_t err_size);
/* One device as the resolver sees it; the handles are only copied, never used. */
typedef wl_device_info wl_device_desc;
/* The resolver's choice for spec (NULL: any device) among list[0 .. count),
 * without OpenCL calls (fuzzed by tests/fuzz/fuzz_device_spec.c); from_env:
 * spec came from WARPLOSS_DEVICE, which the reason and the message say. */
wl_status wl_device_match(const char *spec, int from_env, const wl_device_desc *list, size_t count,
                          wl_device_choice *out, char *err, size_t err_size);
/* the launch shape for a device type: 1 = work-group scan, and the vector width */
void wl_device_launch_shape(cl_device_type type, int *use_group_scan, int *vector_width);

/* loss.c: the options and shape check of wl_loss and wl_loss_cl (c may be NULL) */
wl_status wl_loss_check_options(wl_context *c, const wl_loss_options *o, size_t rows, size_t negatives);

/* time */
double wl_seconds(void);

#endif
