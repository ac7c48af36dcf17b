/*
 * The launch plan: everything the kernels of one device are compiled and
 * launched with, computed in one place (plan.c). The prelude of every program
 * (program.c) and every launch (loss.c, enqueue.c) read it from the context.
 */
#ifndef WL_PLAN_H
#define WL_PLAN_H

#include <stddef.h>

#include "warploss.h"

typedef struct wl_plan {
    int group_scan;      /* 1: wl_scan_groups (a work-group per row), 0: wl_scan_rows */
    int vector_width;    /* WL_VEC: scores each work-item loads at once (1, 2, 4, 8 or 16) */
    int row_unroll;      /* WL_ROW_UNROLL: vectors the row scan tests per branch */
    int prefetch_rows;   /* WL_PREFETCH_ROWS: rows the row scan prefetches ahead (0: none) */
    size_t row_items;    /* row scan: work-items per launch, each a block of rows (0: one row each) */
    size_t max_group;    /* largest work-group of the scan (the kernel's own limit lowers it) */
    size_t reduce_group; /* wl_reduce_sum's work-group, a power of two (the kernel's limit lowers it) */
    size_t model_group;  /* the model's scan: 0 wl_model_scan (a work-item per row), else wl_model_scan_groups
                          * with work-groups of this size (candidates scored at once; the kernel's limit lowers it) */
    int scatter64;       /* WL_ATOMIC64: 1 the model's fixed-point sums with 64-bit atom_add
                          * (cl_khr_int64_base_atomics), 0 with two 32-bit atomic_add and a carry (any OpenCL 1.2
                          * device); both give the same integers, so the same tables */
    size_t max_groups;   /* work-groups in one launch at most (some drivers run no more than 65,535) */
    size_t local_mem;    /* bytes of local memory one work-group may use (the device's, or less) */
} wl_plan;

/* Work-groups per launch on every plan: OpenCL has no query for it, and some
 * drivers (Mesa's llvmpipe among them) silently run no more than this many. */
#define WL_MAX_GROUPS_PER_LAUNCH ((size_t)65535)

/*
 * The plan for `device` as if it were of type `as_type` (CL_DEVICE_TYPE_CPU
 * or CL_DEVICE_TYPE_GPU; 0: its own type), from its limits. The environment
 * is not read: WARPLOSS_SCAN is applied by wl_context_create. Exported for
 * the tests only (not in the public header).
 */
WL_API wl_status wl_plan_for_device(cl_device_id device, cl_device_type as_type, wl_plan *out);

/*
 * wl_context_create with the given plan instead of the device's own: lets the
 * tests run the GPU plan on a CPU device. Exported for the tests only.
 */
WL_API wl_status wl_context_create_with_plan(const wl_context_options *o, const wl_plan *plan, wl_context **out);

/* Whether the device has cl_khr_int64_base_atomics (1), not (0), or could not be asked (-1). */
int wl_device_has_int64_atomics(cl_device_id device);

/* 0 if the plan can be compiled and launched; otherwise the field at fault. */
const char *wl_plan_check(const wl_plan *p);

#endif
