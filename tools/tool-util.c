/* Helpers shared by the timing tools (see tool-util.h). */
#include "tool-util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

double tool_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double tool_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void tool_die(const char *what, const char *detail)
{
    fprintf(stderr, "%s: %s%s%s\n", tool_name, what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

void tool_check_cl(cl_int err, const char *what)
{
    if (err != CL_SUCCESS) {
        char buf[32];
        snprintf(buf, sizeof buf, "OpenCL error %d", (int)err);
        tool_die(what, buf);
    }
}

void tool_check_wl(wl_status st, wl_context *c)
{
    if (st != WL_SUCCESS)
        tool_die(wl_status_string(st), wl_context_last_error(c));
}

void *tool_alloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        tool_die("out of host memory", NULL);
    return p;
}
