/*
 * warploss-devices --check on one device: the kernels built cold and from the
 * binary cache, wl_loss against the C reference on fixed cases, a short timed
 * run, and a few training steps of a small model against the C reference
 * model (tests/reference.c).
 */
#ifndef WL_TOOLS_DEVICE_CHECK_H
#define WL_TOOLS_DEVICE_CHECK_H

#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "warploss.h"

/* What the model's part found. */
typedef struct dc_model_result {
    const char *status;         /* "PASS", "FAIL" or "not run" (no context) */
    const char *scatter;        /* "atomic64", "atomic32"; "" if unknown */
    const char *scatter_reason; /* wl_device_model_scatter's reason; "" if unknown */
    int steps;                  /* steps compared with the reference */
    double max_abs_diff;        /* largest |device - reference| over the tables and the optimizer state */
    int compared;               /* tables were read back and compared (the next two mean something) */
    int bitwise;                /* every compared table equal bit for bit to the reference's */
    double seconds;             /* the model's part, wall clock, the program's build included */
    char error[1024];           /* why, when status is "FAIL" */
} dc_model_result;

/* The whole check of one device. */
typedef struct dc_result {
    int passed; /* the loss and the model passed */
    char kernel_origin[64], scan_variant[16];
    int vector_width;
    double build_cold, build_cached; /* seconds; < 0 when not reached */
    const char *loss_status;         /* "PASS" or "FAIL": builds, cases and the timed run */
    size_t cases;                    /* loss cases that agreed */
    double rows_per_s, gb_per_s;     /* the timed run; 0 when not reached */
    char loss_error[1024];           /* why, when loss_status is "FAIL" */
    dc_model_result model;
} dc_result;

/*
 * Check device d with a context of its own on an empty temporary cache
 * folder; with text not NULL, print each step's line there as it finishes
 * and the verdict. 0 when everything passed, else 1.
 */
int dc_check_device(const wl_device_info *d, FILE *text, dc_result *r);

/* r's fields added to object (names in README.md, warploss-devices). */
void dc_json_add(cJSON *object, const dc_result *r);

#endif
