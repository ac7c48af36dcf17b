/*
 * The measuring helper both benchmarks of warploss-bench share (bench.h): the
 * names of the settings' choices, the device on a profiling queue of its own,
 * buffers on it, the profiling times of events, spans and rates.
 */
#include "bench.h"
#include "cli.h"

/* ------------------------------------------------------------ settings */

const char *const regime_names[3] = {"early", "deep", "none"};
const char *const cand_mode_names[3] = {"per-row", "shared", "sampled"};
const char *const scatter_names[2] = {"atomic64", "atomic32"};

/* ------------------------------------------------------------ device */

void open_device(const char *spec, device *d)
{
    d->wl = cli_profiling_context(spec);
    cl_platform_id platform = NULL;
    d->platform[0] = '\0';
    clGetDeviceInfo(wl_context_device(d->wl), CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL);
    clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof d->platform - 1, d->platform, NULL);
    d->platform[sizeof d->platform - 1] = '\0';
}

cl_mem new_buffer(device *d, size_t bytes, const void *init)
{
    cl_int err;
    cl_mem m = clCreateBuffer(wl_context_cl_context(d->wl), CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0),
                              bytes ? bytes : 4, (void *)init, &err);
    cli_check_cl(err, "clCreateBuffer");
    return m;
}

/* ------------------------------------------------------------ times and rates */

cl_ulong profile(cl_event ev, cl_profiling_info what)
{
    cl_ulong t = 0;
    cli_check_cl(clGetEventProfilingInfo(ev, what, sizeof t, &t, NULL), "clGetEventProfilingInfo");
    return t;
}

double span(cl_ulong from, cl_ulong to) { return to > from ? 1e-9 * (double)(to - from) : 0.0; }

double per_second(double count, double seconds) { return seconds > 0.0 ? count / seconds : 0.0; }
