/*
 * Helpers shared by the command-line tools that time warploss
 * (warploss-bench, warploss-compare-driver): a monotonic clock, the median,
 * and fatal errors that name the program.
 */
#ifndef WL_TOOL_UTIL_H
#define WL_TOOL_UTIL_H

#include <stddef.h>

#include "warploss.h"

/* The program's name for error messages: each tool defines it. */
extern const char tool_name[];

/* Seconds on a monotonic clock. */
double tool_now(void);

/* The median of v[0..n-1], n >= 1 (sorts v). */
double tool_median(double *v, int n);

/* Print "<tool_name>: what[: detail]" on stderr and exit 1. */
void tool_die(const char *what, const char *detail);

/* tool_die(what, "OpenCL error N") unless err is CL_SUCCESS. */
void tool_check_cl(cl_int err, const char *what);

/* tool_die with the status and c's last error (c may be NULL) unless st is WL_SUCCESS. */
void tool_check_wl(wl_status st, wl_context *c);

/* malloc that dies on failure; 0 bytes gives a valid pointer. */
void *tool_alloc(size_t bytes);

#endif
