/*
 * warploss-compare-driver: the warploss side of tools/compare-seed.py. Reads
 * pos [rows] and neg [rows x negatives] (raw float32, native byte order),
 * computes the loss on a device and writes:
 *   OUT.offender  int32 [rows]   first offender per row (-1: none)
 *   OUT.rowloss   float32 [rows] each row's loss (WL_REDUCE_NONE)
 * and prints one JSON object: the device, the summed loss (WL_REDUCE_SUM),
 * and the median times of REPEAT calls after a warm-up:
 *   host_seconds    wl_loss on host memory (copies in and out included), wall time;
 *   device_seconds  wl_loss_cl on device buffers, loss + offender, from OpenCL
 *                   event profiling (as tools/warploss-bench measures it).
 *
 * usage: warploss-compare-driver ROWS NEGATIVES NUM_LABELS POS NEG OUT REPEAT [DEVICE-SPEC]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool-util.h"
#include "warploss.h"

const char tool_name[] = "warploss-compare-driver";

static void *read_exact(const char *path, size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    FILE *f = fopen(path, "rb");
    if (!p || !f || fread(p, 1, bytes, f) != bytes)
        tool_die("cannot read", path);
    fclose(f);
    return p;
}

static void write_all(const char *prefix, const char *suffix, const void *data, size_t bytes)
{
    char path[4096];
    snprintf(path, sizeof path, "%s%s", prefix, suffix);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, bytes, f) != bytes || fclose(f) != 0)
        tool_die("cannot write", path);
}

int main(int argc, char **argv)
{
    if (argc < 8 || argc > 9) {
        fprintf(stderr, "usage: %s ROWS NEGATIVES NUM_LABELS POS NEG OUT REPEAT [DEVICE-SPEC]\n", argv[0]);
        return 2;
    }
    const size_t rows = strtoull(argv[1], NULL, 10), negatives = strtoull(argv[2], NULL, 10);
    const uint64_t num_labels = strtoull(argv[3], NULL, 10);
    const int repeat = atoi(argv[7]) > 0 ? atoi(argv[7]) : 1;
    const size_t scores = rows * negatives;
    float *pos = read_exact(argv[4], rows * sizeof(float));
    float *neg = read_exact(argv[5], scores * sizeof(float));

    wl_device_choice choice;
    tool_check_wl(wl_select_device(argc == 9 ? argv[8] : NULL, &choice), NULL);
    cl_int err;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)choice.platform, 0};
    cl_context context = clCreateContext(props, 1, &choice.device, NULL, NULL, &err);
    tool_check_cl(err, "clCreateContext");
    cl_command_queue queue = clCreateCommandQueue(context, choice.device, CL_QUEUE_PROFILING_ENABLE, &err);
    tool_check_cl(err, "clCreateCommandQueue");
    wl_context *c = NULL;
    tool_check_wl(wl_context_create_with_queue(queue, NULL, &c), NULL);

    wl_loss_options lo;
    wl_loss_options_default(&lo, num_labels);
    float *row_loss = tool_alloc(rows * sizeof *row_loss);
    int32_t *offender = tool_alloc(rows * sizeof *offender);
    double *times = tool_alloc((size_t)repeat * sizeof *times);

    /* the answers: row losses and offenders, then the sum */
    lo.reduction = WL_REDUCE_NONE;
    tool_check_wl(wl_loss(c, &lo, rows, negatives, pos, neg, row_loss, NULL, NULL, offender), c);
    lo.reduction = WL_REDUCE_SUM;
    float loss = 0.0f;
    tool_check_wl(wl_loss(c, &lo, rows, negatives, pos, neg, &loss, NULL, NULL, offender), c);
    write_all(argv[6], ".offender", offender, rows * sizeof *offender);
    write_all(argv[6], ".rowloss", row_loss, rows * sizeof *row_loss);

    /* host memory in and out, wall time */
    for (int i = -2; i < repeat; ++i) {
        const double t0 = tool_now();
        tool_check_wl(wl_loss(c, &lo, rows, negatives, pos, neg, &loss, NULL, NULL, offender), c);
        if (i >= 0)
            times[i] = tool_now() - t0;
    }
    const double host_seconds = tool_median(times, repeat);

    /* device buffers, event profiling */
    cl_mem pos_buf = clCreateBuffer(context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, rows * sizeof(float), pos, &err);
    tool_check_cl(err, "clCreateBuffer");
    cl_mem neg_buf = clCreateBuffer(context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, (scores ? scores : 1) * sizeof(float),
                                    neg, &err);
    tool_check_cl(err, "clCreateBuffer");
    cl_mem loss_buf = clCreateBuffer(context, CL_MEM_READ_WRITE, sizeof(float), NULL, &err);
    tool_check_cl(err, "clCreateBuffer");
    cl_mem offender_buf = clCreateBuffer(context, CL_MEM_READ_WRITE, (rows ? rows : 1) * sizeof(int32_t), NULL, &err);
    tool_check_cl(err, "clCreateBuffer");
    for (int i = -2; i < repeat; ++i) {
        cl_event start, done;
        tool_check_cl(clEnqueueMarkerWithWaitList(queue, 0, NULL, &start), "clEnqueueMarkerWithWaitList");
        tool_check_wl(wl_loss_cl(c, &lo, rows, negatives, pos_buf, neg_buf, loss_buf, NULL, NULL, offender_buf, 0, NULL,
                            &done),
                 c);
        tool_check_cl(clWaitForEvents(1, &done), "clWaitForEvents");
        cl_ulong a = 0, b = 0;
        tool_check_cl(clGetEventProfilingInfo(start, CL_PROFILING_COMMAND_END, sizeof a, &a, NULL), "profiling");
        tool_check_cl(clGetEventProfilingInfo(done, CL_PROFILING_COMMAND_END, sizeof b, &b, NULL), "profiling");
        if (i >= 0)
            times[i] = b > a ? 1e-9 * (double)(b - a) : 0.0;
        clReleaseEvent(start);
        clReleaseEvent(done);
    }
    const double device_seconds = tool_median(times, repeat);

    printf("{\"device\": \"");
    for (const char *s = wl_context_device_name(c); *s; ++s)
        if (*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20)
            putchar(*s);
    printf("\", \"scan_variant\": \"%s\", \"loss\": %.9g, \"host_seconds\": %.9g, \"device_seconds\": %.9g}\n",
           wl_context_scan_variant(c), (double)loss, host_seconds, device_seconds);

    clReleaseMemObject(pos_buf), clReleaseMemObject(neg_buf), clReleaseMemObject(loss_buf),
        clReleaseMemObject(offender_buf);
    wl_context_destroy(c);
    clReleaseCommandQueue(queue);
    clReleaseContext(context);
    free(pos), free(neg), free(row_loss), free(offender), free(times);
    return 0;
}
