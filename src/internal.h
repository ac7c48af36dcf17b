/* Private declarations shared by the files of src/. */
#ifndef WL_INTERNAL_H
#define WL_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define WL_BUILDING_LIBRARY 1
#include "warploss.h"

#include "enqueue.h"
#include "plan.h"
#include "program.h"

#define WL_ERROR_SIZE 16384
#define WL_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Rank weights by offender index (trials j + 1) on the device, for the last
 * (num_labels, negatives, weighting) they were made for. */
typedef struct wl_weight_table {
    cl_mem table;
    uint64_t labels;
    size_t count;
    int kind;
} wl_weight_table;

struct wl_context {
    cl_context context;
    cl_device_id device;
    cl_command_queue queue;

    /* what was chosen while creating */
    char device_name[256];
    cl_device_type device_type;
    uint64_t max_alloc; /* CL_DEVICE_MAX_MEM_ALLOC_SIZE */
    wl_plan plan;       /* how every kernel is compiled and launched (plan.c) */
    char kernel_origin[4096];
    int kernels_embedded; /* 1: the embedded copy, else the folder kernel_origin */
    char cache_folder[4096];
    int from_cache;
    double build_seconds;

    /* programs and kernels (program.h), built at creation (the loss) or on first use */
    cl_program program[WL_PROGRAM_COUNT];
    cl_kernel kernel[WL_KERNEL_COUNT];
    size_t kernel_group[WL_KERNEL_COUNT];     /* each kernel's largest work-group on this device */
    size_t kernel_local_mem[WL_KERNEL_COUNT]; /* each kernel's own local memory (CL_KERNEL_LOCAL_MEM_SIZE) */

    void (*log)(void *user, const char *message);
    void *log_user;

    /* the enqueue layer (enqueue.c): scratch buffers grown as needed, and the
     * last command of the previous call, so calls stay ordered */
    cl_mem scratch[WL_SCRATCH_COUNT];
    size_t scratch_size[WL_SCRATCH_COUNT];
    cl_event last;

    wl_weight_table weights; /* the loss's */
    int used_blas;           /* CLBlast compiled kernels for this context (blas.c) */
    int poison;              /* $WARPLOSS_POISON: every buffer the library creates starts as 0xFF bytes */
    int host_writes;         /* $WARPLOSS_HOST_WRITES: fills and host inputs by clEnqueueWriteBuffer (oclgrind) */

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

/* plan.c: the device's own plan, then $WARPLOSS_SCAN */
wl_status wl_plan_default(cl_device_id device, wl_plan *out);

/* loss.c: the rank weight for an offender found after k trials, in double
 * (the loss's weight table and the model's use the same values) */
double wl_rank_weight(uint64_t num_labels, uint64_t k, wl_weighting weighting);

/* loss.c: the weight table for these options, rebuilt only when they change
 * (the loss and the model step each keep one) */
/* blas.c: out [m x n] = a [m x k] times b [n x k] transposed (row-major, float),
 * on the chain; what names the product in an error. */
wl_status wl_blas_gemm_nt(wl_chain *ch, size_t m, size_t n, size_t k, cl_mem a, cl_mem b, cl_mem out, const char *what);
/* Release what CLBlast keeps for c (wl_context_destroy). */
void wl_blas_release(wl_context *c);

wl_status wl_weight_table_ensure(struct wl_context *c, wl_weight_table *w, const wl_loss_options *o, size_t negatives);
void wl_weight_table_release(wl_weight_table *w);

/* loss.c: the options and shape check of wl_loss and wl_loss_cl (c may be NULL) */
wl_status wl_loss_check_options(wl_context *c, const wl_loss_options *o, size_t rows, size_t negatives);

/* time */
double wl_seconds(void);

#endif
