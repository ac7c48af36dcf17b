/*
 * The enqueue layer every entry point uses: an event chain (each command
 * waits for the one before; the first for the caller's events and the
 * previous call's last command), kernel launches described by a struct,
 * scratch buffers kept on the context, and checks of the caller's buffers.
 */
#ifndef WL_ENQUEUE_H
#define WL_ENQUEUE_H

#include <stddef.h>

#include "warploss.h"

struct wl_context;

/* Scratch buffers on the context, one per use, grown as needed and kept. */
typedef enum wl_scratch_id {
    WL_SCRATCH_ROW_LOSS,  /* the loss: row losses or partial sums before the reduction */
    WL_SCRATCH_FLAG,      /* the loss: the first non-finite row */
    WL_SCRATCH_STAGE_POS, /* wl_loss staging, one per host array, in wl_loss's argument order */
    WL_SCRATCH_STAGE_NEG,
    WL_SCRATCH_STAGE_LOSS,
    WL_SCRATCH_STAGE_GRAD_POS,
    WL_SCRATCH_STAGE_GRAD_NEG,
    WL_SCRATCH_STAGE_OFFENDER,
    WL_SCRATCH_MODEL_ROWS,       /* model step: per-row stop, g, loss, trials */
    WL_SCRATCH_MODEL_SCORES,     /* model: a block of rows' candidate or catalogue scores (SGEMM's output) */
    WL_SCRATCH_MODEL_USER_ROWS,  /* model: the user rows of a block, gathered for SGEMM */
    WL_SCRATCH_MODEL_ITEM_ROWS,  /* model step: the shared candidates' item rows, gathered for SGEMM */
    WL_SCRATCH_BLAS_TEMP,        /* CLBlast's temporary buffer */
    WL_SCRATCH_MODEL_TOP_ITEMS,  /* model recommend: top-k items; rank: the ranks */
    WL_SCRATCH_MODEL_TOP_SCORES, /* model recommend: top-k scores */
    WL_SCRATCH_MODEL_EVAL,       /* model evaluate: the ranks of a block's held-out items, then its users' counts */
    WL_SCRATCH_MODEL_ROW_IDS,    /* model read_rows, write_rows: the row ids */
    WL_SCRATCH_MODEL_ROW_VALUES, /* model read_rows, write_rows: the rows' values */
    WL_SCRATCH_MODEL_ROW_STATE,  /* model read_rows, write_rows: the rows' optimizer state */
    WL_SCRATCH_COUNT
} wl_scratch_id;

typedef struct wl_chain {
    struct wl_context *c;
    cl_event *wait; /* what the next command waits for */
    cl_uint num_wait;
    cl_event last; /* the last command enqueued, owned */
} wl_chain;

/* Start a chain on c's queue after the caller's events and c's last command. */
wl_status wl_chain_start(wl_chain *ch, struct wl_context *c, cl_uint num_wait, const cl_event *wait);
/* After an enqueue that produced ev: from now on wait for ev only. */
void wl_chain_step(wl_chain *ch, cl_event ev);
/* Keep the last command on the context (the next call waits for it) and hand
 * it to the caller through done if not NULL. */
void wl_chain_finish(wl_chain *ch, cl_event *done);
/* Release what the chain holds. */
void wl_chain_end(wl_chain *ch);

/* One kernel argument: a value of `size` bytes, or (value NULL) local memory. */
typedef struct wl_arg {
    size_t size;
    const void *value;
} wl_arg;
#define WL_ARG(v)                                                                                                      \
    {                                                                                                                  \
        sizeof(v), &(v)                                                                                                \
    }
#define WL_ARG_LOCAL(bytes)                                                                                            \
    {                                                                                                                  \
        (bytes), NULL                                                                                                  \
    }

/* A 1-D launch of one kernel: global work-items, local (0: the runtime
 * chooses; the kernel must then ignore work-items past its range, as the
 * layer may round global up to whole groups) and its arguments in order. */
typedef struct wl_launch {
    int kernel; /* a wl_kernel_id */
    size_t global, local;
    const wl_arg *args;
    size_t num_args;
} wl_launch;

/* Set the arguments and enqueue the launch on the chain. A launch with a
 * local size must stay within the plan (work-group, plan.max_groups groups,
 * plan.local_mem bytes): otherwise WL_ERROR_OPENCL and nothing is enqueued.
 * One without is split into launches of at most plan.max_groups groups. */
wl_status wl_enqueue_kernel(wl_chain *ch, const wl_launch *l);
/* Fill size bytes of buf with the pattern, on the chain (with $WARPLOSS_HOST_WRITES a
 * blocking write from the host instead, for oclgrind). */
wl_status wl_enqueue_fill(wl_chain *ch, cl_mem buf, const void *pattern, size_t pattern_size, size_t size);
/* A marker on the chain (a call with nothing to compute still gets an event). */
wl_status wl_enqueue_marker(wl_chain *ch);

/* Scratch buffer id with at least `bytes` bytes (at most the device's largest
 * allocation); what = its name in the error text. */
wl_status wl_scratch(struct wl_context *c, wl_scratch_id id, size_t bytes, const char *what, cl_mem *out);

/* With $WARPLOSS_POISON set on c, fill a buffer the library just created
 * with 0xFF bytes (NaN floats, -1 ints), before every later command of c's
 * queue (a barrier, not a wait); otherwise nothing. */
wl_status wl_poison(struct wl_context *c, cl_mem buf, size_t bytes);

/* A caller's buffer: valid, of c's OpenCL context and at least need bytes. */
wl_status wl_check_buffer(struct wl_context *c, cl_mem buf, size_t need, const char *name);

/* The largest work-group for kernel (a wl_kernel_id) on the plan, at most want, at least 1. */
size_t wl_kernel_group(const struct wl_context *c, int kernel, size_t want);

#endif
