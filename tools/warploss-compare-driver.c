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

#include "cli.h"
#include "warploss.h"

static void *read_exact(const char *path, size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    FILE *f = fopen(path, "rb");
    if (!p || !f || fread(p, 1, bytes, f) != bytes)
        cli_die("cannot read", path);
    fclose(f);
    return p;
}

static void write_all(const char *prefix, const char *suffix, const void *data, size_t bytes)
{
    char path[4096];
    snprintf(path, sizeof path, "%s%s", prefix, suffix);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, bytes, f) != bytes || fclose(f) != 0)
        cli_die("cannot write", path);
}

int main(int argc, char **argv)
{
    cli_init(argc > 0 ? argv[0] : NULL);
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

    wl_context *c = cli_profiling_context(argc == 9 ? argv[8] : NULL);
    cl_context context = wl_context_cl_context(c);
    cl_command_queue queue = wl_context_queue(c);
    cl_int err;

    wl_loss_options lo;
    wl_loss_options_default(&lo, num_labels);
    float *row_loss = cli_alloc(rows * sizeof *row_loss);
    int32_t *offender = cli_alloc(rows * sizeof *offender);
    double *times = cli_alloc((size_t)repeat * sizeof *times);

    /* the answers: row losses and offenders, then the sum */
    lo.reduction = WL_REDUCE_NONE;
    cli_check_wl(wl_loss(c, &lo, rows, negatives, pos, neg, row_loss, NULL, NULL, offender), c);
    lo.reduction = WL_REDUCE_SUM;
    float loss = 0.0f;
    cli_check_wl(wl_loss(c, &lo, rows, negatives, pos, neg, &loss, NULL, NULL, offender), c);
    write_all(argv[6], ".offender", offender, rows * sizeof *offender);
    write_all(argv[6], ".rowloss", row_loss, rows * sizeof *row_loss);

    /* host memory in and out, wall time */
    for (int i = -2; i < repeat; ++i) {
        const double t0 = cli_now();
        cli_check_wl(wl_loss(c, &lo, rows, negatives, pos, neg, &loss, NULL, NULL, offender), c);
        if (i >= 0)
            times[i] = cli_now() - t0;
    }
    const double host_seconds = cli_median(times, repeat);

    /* device buffers, event profiling */
    cl_mem pos_buf = clCreateBuffer(context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, rows * sizeof(float), pos, &err);
    cli_check_cl(err, "clCreateBuffer");
    cl_mem neg_buf = clCreateBuffer(context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                    (scores ? scores : 1) * sizeof(float), neg, &err);
    cli_check_cl(err, "clCreateBuffer");
    cl_mem loss_buf = clCreateBuffer(context, CL_MEM_READ_WRITE, sizeof(float), NULL, &err);
    cli_check_cl(err, "clCreateBuffer");
    cl_mem offender_buf = clCreateBuffer(context, CL_MEM_READ_WRITE, (rows ? rows : 1) * sizeof(int32_t), NULL, &err);
    cli_check_cl(err, "clCreateBuffer");
    for (int i = -2; i < repeat; ++i) {
        cl_event start, done;
        cli_check_cl(clEnqueueMarkerWithWaitList(queue, 0, NULL, &start), "clEnqueueMarkerWithWaitList");
        cli_check_wl(wl_loss_cl(c, &lo, rows, negatives, pos_buf, neg_buf, loss_buf, NULL, NULL, offender_buf, 0, NULL,
                                &done),
                     c);
        cli_check_cl(clWaitForEvents(1, &done), "clWaitForEvents");
        if (i >= 0)
            times[i] = cli_event_seconds(start, CL_PROFILING_COMMAND_END, done);
        clReleaseEvent(start);
        clReleaseEvent(done);
    }
    const double device_seconds = cli_median(times, repeat);

    cJSON *answer = cJSON_CreateObject();
    cJSON_AddStringToObject(answer, "device", wl_context_device_name(c));
    cJSON_AddStringToObject(answer, "scan_variant", wl_context_scan_variant(c));
    cli_json_add_number(answer, "loss", "%.9g", (double)loss);
    cli_json_add_number(answer, "host_seconds", "%.9g", host_seconds);
    cli_json_add_number(answer, "device_seconds", "%.9g", device_seconds);
    cli_json_print(answer);

    clReleaseMemObject(pos_buf), clReleaseMemObject(neg_buf), clReleaseMemObject(loss_buf),
        clReleaseMemObject(offender_buf);
    wl_context_destroy(c);
    free(pos), free(neg), free(row_loss), free(offender), free(times);
    return 0;
}
