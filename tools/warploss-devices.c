/*
 * warploss-devices: which OpenCL devices are there, which one warploss uses
 * and why, and whether warploss gives correct results on each of them.
 *
 * The devices come from wl_list_devices, the default device and its reason
 * from wl_select_device (the library's resolver, the one wl_context_create
 * uses), the scan variant and vector width from wl_device_launch_plan, the
 * model's scatter from wl_device_model_scatter. This file only adds the
 * properties it prints; --check is device_check.c.
 *
 * Exit status: 0 ok, 1 failure (a check failed, or SPEC matches nothing),
 * 2 usage, 3 no OpenCL platform or device at all.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "device_check.h"
#include "warploss.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NO_PLATFORM = 3 };

enum { OPT_JSON, OPT_SELECT, OPT_CHECK, OPT_HELP };

static const cli_option options[] = {
    [OPT_JSON] = {"json", no_argument, NULL, "the listing (or --select's or --check's answer) as one JSON document"},
    [OPT_SELECT] = {"select", required_argument, "SPEC", "what SPEC resolves to (same syntax as WARPLOSS_DEVICE)"},
    [OPT_CHECK] = {"check", optional_argument, "SPEC",
                   "on every device (or the one SPEC selects): build the kernels\n"
                   "cold and from the binary cache, compare wl_loss with the C\n"
                   "reference on fixed cases, time a short run, and train a small\n"
                   "model for a few steps against the C reference; PASS or FAIL"},
    [OPT_HELP] = {"help", no_argument, NULL, "this text"},
    {NULL, 0, NULL, NULL},
};

static const char help_intro[] = "\n"
                                 "With no option: every OpenCL platform and device, the one warploss would\n"
                                 "use marked with '*' and the reason.\n";

static const char help_notes[] =
    "\n"
    "SPEC: gpu, cpu, accelerator (the best of that type); P:D (platform P, device D);\n"
    "or a case-insensitive part of a platform or device name (the best match).\n"
    "Environment: WARPLOSS_DEVICE, WARPLOSS_KERNEL_DIR, WARPLOSS_CACHE_DIR, WARPLOSS_SCAN,\n"
    "WARPLOSS_SCATTER.\n"
    "\n"
    "Exit status: 0 ok; 1 a check failed, or SPEC (or WARPLOSS_DEVICE) matches no\n"
    "device; 2 usage; 3 no OpenCL platform or device at all.\n";

/* ------------------------------------------------------------ device properties */

/* What the listing shows of a device beyond its wl_device_info. */
typedef struct device_details {
    char vendor[256], version[256], c_version[256], driver[256];
    cl_uint clock_mhz;
    cl_ulong local_mem;
    size_t max_group;
    int fp64, int64_atomics, subgroups, local_int32_atomics, opencl_c_12;
    const char *scan_variant; /* as wl_context_create would choose; "" if unknown */
    int vector_width;
    const char *scatter, *scatter_reason; /* the model's, as wl_context_create would choose; "" if unknown */
} device_details;

static const char *type_name(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU)
        return "GPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR)
        return "accelerator";
    if (t & CL_DEVICE_TYPE_CPU)
        return "CPU";
    return "other";
}

/* A whole word of a space-separated extension list. */
static int has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

/* "OpenCL C 1.2 ..." -> 102; 0 when unreadable. */
static int c_version_number(const char *s)
{
    int major = 0, minor = 0;
    if (sscanf(s, "OpenCL C %d.%d", &major, &minor) != 2)
        return 0;
    return major * 100 + minor;
}

static void device_string(cl_device_id d, cl_device_info what, char *out, size_t size)
{
    out[0] = '\0';
    if (clGetDeviceInfo(d, what, size - 1, out, NULL) != CL_SUCCESS)
        snprintf(out, size, "?");
    out[size - 1] = '\0';
}

static void read_details(cl_device_id d, device_details *dd)
{
    memset(dd, 0, sizeof *dd);
    device_string(d, CL_DEVICE_VENDOR, dd->vendor, sizeof dd->vendor);
    device_string(d, CL_DEVICE_VERSION, dd->version, sizeof dd->version);
    device_string(d, CL_DEVICE_OPENCL_C_VERSION, dd->c_version, sizeof dd->c_version);
    device_string(d, CL_DRIVER_VERSION, dd->driver, sizeof dd->driver);
    clGetDeviceInfo(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof dd->clock_mhz, &dd->clock_mhz, NULL);
    clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof dd->local_mem, &dd->local_mem, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof dd->max_group, &dd->max_group, NULL);

    size_t ext_size = 0;
    char *ext = NULL;
    if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &ext_size) == CL_SUCCESS && ext_size > 0)
        ext = calloc(ext_size + 1, 1);
    if (ext && clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, ext_size, ext, NULL) != CL_SUCCESS)
        ext[0] = '\0';
    const char *list = ext ? ext : "";
    cl_device_fp_config fp64_config = 0;
    clGetDeviceInfo(d, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp64_config, &fp64_config, NULL);
    dd->fp64 = has_word(list, "cl_khr_fp64") || fp64_config != 0;
    dd->int64_atomics = has_word(list, "cl_khr_int64_base_atomics");
    dd->subgroups = has_word(list, "cl_khr_subgroups");
    /* The kernels need OpenCL C 1.2, where local int32 atomics are core. */
    dd->opencl_c_12 = c_version_number(dd->c_version) >= 102;
    dd->local_int32_atomics = dd->opencl_c_12 || has_word(list, "cl_khr_local_int32_base_atomics");
    free(ext);

    if (wl_device_launch_plan(d, &dd->scan_variant, &dd->vector_width) != WL_SUCCESS)
        dd->scan_variant = "";
    if (wl_device_model_scatter(d, &dd->scatter, &dd->scatter_reason) != WL_SUCCESS)
        dd->scatter = dd->scatter_reason = "";
}

static const wl_device_info *find_device(const wl_device_list *list, unsigned p, unsigned d)
{
    for (size_t i = 0; i < list->device_count; ++i)
        if (list->devices[i].platform_index == p && list->devices[i].device_index == d)
            return &list->devices[i];
    return NULL;
}

static int is_default(const wl_device_info *d, wl_status sel, const wl_device_choice *choice)
{
    return sel == WL_SUCCESS && choice->platform_index == d->platform_index && choice->device_index == d->device_index;
}

/* Exit 3's message: there is nothing to run on. */
static int no_platform(const wl_device_list *list)
{
    if (list->platform_count == 0)
        fprintf(stderr, "%s: no OpenCL platform found (clGetPlatformIDs returned %d%s).\n", cli_program,
                (int)list->platform_error, list->platform_error == -1001 ? ", CL_PLATFORM_NOT_FOUND_KHR" : "");
    else
        fprintf(stderr, "%s: %zu OpenCL platform%s but no device.\n", cli_program, list->platform_count,
                list->platform_count == 1 ? "" : "s");
    fprintf(stderr, "Install an OpenCL driver: PoCL for the CPU (Debian/Ubuntu: apt-get install pocl-opencl-icd)\n"
                    "or your GPU vendor's driver (NVIDIA, AMD ROCm, Intel compute-runtime), then check with\n"
                    "`clinfo -l`. The ICD loader reads /etc/OpenCL/vendors/*.icd, or the folder named by\n"
                    "OCL_ICD_VENDORS when that is set. With PoCL, POCL_DEVICES=pthread selects its CPU device.\n");
    return EXIT_NO_PLATFORM;
}

/* ------------------------------------------------------------ text and JSON */

static void print_bytes(char *out, size_t size, cl_ulong bytes)
{
    if (bytes >= ((cl_ulong)1 << 30))
        snprintf(out, size, "%.1f GiB", (double)bytes / (double)((cl_ulong)1 << 30));
    else if (bytes >= ((cl_ulong)1 << 20))
        snprintf(out, size, "%.1f MiB", (double)bytes / (double)((cl_ulong)1 << 20));
    else
        snprintf(out, size, "%.1f KiB", (double)bytes / 1024.0);
}

static const char *yes_no(int b) { return b ? "yes" : "no"; }

static void print_device_text(const wl_device_info *d, const wl_device_choice *choice, int chosen)
{
    device_details dd;
    read_details(d->device, &dd);
    char global[32], local[32], alloc[32];
    print_bytes(global, sizeof global, d->global_memory);
    print_bytes(local, sizeof local, dd.local_mem);
    print_bytes(alloc, sizeof alloc, d->max_allocation);
    printf("%c %u:%u %s\n", chosen ? '*' : ' ', d->platform_index, d->device_index, d->device_name);
    if (chosen)
        printf("    default:            yes (%s)\n", choice->reason);
    printf("    platform:           %s\n", d->platform_name);
    printf("    vendor:             %s\n", dd.vendor);
    printf("    type:               %s\n", type_name(d->type));
    printf("    OpenCL:             %s\n", dd.version);
    printf("    OpenCL C:           %s\n", dd.c_version);
    printf("    driver:             %s\n", dd.driver);
    printf("    compute units:      %u\n", (unsigned)d->compute_units);
    printf("    clock:              %u MHz\n", (unsigned)dd.clock_mhz);
    printf("    global memory:      %s\n", global);
    printf("    local memory:       %s\n", local);
    printf("    largest allocation: %s\n", alloc);
    printf("    largest work-group: %zu\n", dd.max_group);
    printf("    fp64:               %s\n", yes_no(dd.fp64));
    printf("    int64 atomics:      %s\n", yes_no(dd.int64_atomics));
    printf("    model scatter:      %s (%s)\n", dd.scatter[0] ? dd.scatter : "?", dd.scatter_reason);
    printf("    sub-groups:         %s\n", yes_no(dd.subgroups));
    printf("    kernels use:        OpenCL C 1.2: %s, local int32 atomics: %s, scan: %s, vector width: %d\n",
           yes_no(dd.opencl_c_12), yes_no(dd.local_int32_atomics), dd.scan_variant[0] ? dd.scan_variant : "?",
           dd.vector_width);
}

static void print_text(const wl_device_list *list, wl_status sel, const wl_device_choice *choice)
{
    printf("OpenCL: %zu platform%s, %zu device%s\n", list->platform_count, list->platform_count == 1 ? "" : "s",
           list->device_count, list->device_count == 1 ? "" : "s");
    for (size_t p = 0; p < list->platform_count; ++p) {
        const wl_platform_info *pi = &list->platforms[p];
        printf("\nplatform %zu: %s (%s; %s)\n", p, pi->name, pi->vendor, pi->version);
        if (pi->device_count == 0)
            printf("  (no devices)\n");
        for (size_t i = 0; i < list->device_count; ++i)
            if (list->devices[i].platform_index == p)
                print_device_text(&list->devices[i], choice, is_default(&list->devices[i], sel, choice));
    }
    printf("\n");
    if (sel == WL_SUCCESS) {
        const wl_device_info *d = find_device(list, choice->platform_index, choice->device_index);
        printf("default: %u:%u %s (%s)\n", choice->platform_index, choice->device_index, d ? d->device_name : "?",
               choice->reason);
    } else {
        printf("default: none (%s)\n", wl_context_last_error(NULL));
    }
}

/* "index": "P:D", "platform_index": P, "device_index": D */
static void json_add_index(cJSON *object, unsigned p, unsigned d)
{
    char index[32];
    snprintf(index, sizeof index, "%u:%u", p, d);
    cJSON_AddStringToObject(object, "index", index);
    cJSON_AddNumberToObject(object, "platform_index", p);
    cJSON_AddNumberToObject(object, "device_index", d);
}

/* The device's entry of "devices" (fields in README.md, "Choosing a device"). */
static void json_add_device(cJSON *devices, const wl_device_info *d, int chosen)
{
    device_details dd;
    read_details(d->device, &dd);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToArray(devices, o);
    json_add_index(o, d->platform_index, d->device_index);
    cJSON_AddBoolToObject(o, "default", chosen);
    cJSON_AddStringToObject(o, "platform", d->platform_name);
    cJSON_AddStringToObject(o, "name", d->device_name);
    cJSON_AddStringToObject(o, "vendor", dd.vendor);
    cJSON_AddStringToObject(o, "type", type_name(d->type));
    cJSON_AddStringToObject(o, "opencl_version", dd.version);
    cJSON_AddStringToObject(o, "opencl_c_version", dd.c_version);
    cJSON_AddStringToObject(o, "driver_version", dd.driver);
    cJSON_AddNumberToObject(o, "compute_units", d->compute_units);
    cJSON_AddNumberToObject(o, "clock_mhz", dd.clock_mhz);
    cJSON_AddNumberToObject(o, "global_mem_bytes", (double)d->global_memory);
    cJSON_AddNumberToObject(o, "local_mem_bytes", (double)dd.local_mem);
    cJSON_AddNumberToObject(o, "max_alloc_bytes", (double)d->max_allocation);
    cJSON_AddNumberToObject(o, "max_work_group_size", (double)dd.max_group);
    cJSON_AddBoolToObject(o, "fp64", dd.fp64);
    cJSON_AddBoolToObject(o, "int64_atomics", dd.int64_atomics);
    cJSON_AddStringToObject(o, "model_scatter", dd.scatter);
    cJSON_AddStringToObject(o, "model_scatter_reason", dd.scatter_reason);
    cJSON_AddBoolToObject(o, "subgroups", dd.subgroups);
    cJSON *kernels = cJSON_AddObjectToObject(o, "kernels");
    cJSON_AddBoolToObject(kernels, "opencl_c_1_2", dd.opencl_c_12);
    cJSON_AddBoolToObject(kernels, "local_int32_atomics", dd.local_int32_atomics);
    cJSON_AddStringToObject(kernels, "scan_variant", dd.scan_variant);
    cJSON_AddNumberToObject(kernels, "vector_width", dd.vector_width);
}

/* "default": the chosen device, or null and "default_error". */
static void json_add_default(cJSON *doc, const wl_device_list *list, wl_status sel, const wl_device_choice *choice)
{
    if (sel != WL_SUCCESS) {
        cJSON_AddNullToObject(doc, "default");
        cJSON_AddStringToObject(doc, "default_error", wl_context_last_error(NULL));
        return;
    }
    const wl_device_info *d = find_device(list, choice->platform_index, choice->device_index);
    cJSON *o = cJSON_AddObjectToObject(doc, "default");
    json_add_index(o, choice->platform_index, choice->device_index);
    cJSON_AddStringToObject(o, "name", d ? d->device_name : "?");
    cJSON_AddStringToObject(o, "reason", choice->reason);
}

/* The start of every document: its format version and the library's version. */
static cJSON *json_document(void)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "warploss_devices", 1);
    cJSON_AddStringToObject(doc, "api_version", wl_version());
    return doc;
}

/* The listing as JSON; with no device at all, empty lists and why. */
static void print_json(const wl_device_list *list, wl_status sel, const wl_device_choice *choice)
{
    cJSON *doc = json_document();
    cJSON *platforms = cJSON_AddArrayToObject(doc, "platforms");
    cJSON *devices = cJSON_AddArrayToObject(doc, "devices");
    for (size_t p = 0; list->device_count && p < list->platform_count; ++p) {
        const wl_platform_info *pi = &list->platforms[p];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(platforms, o);
        cJSON_AddNumberToObject(o, "index", pi->index);
        cJSON_AddStringToObject(o, "name", pi->name);
        cJSON_AddStringToObject(o, "vendor", pi->vendor);
        cJSON_AddStringToObject(o, "version", pi->version);
        cJSON_AddNumberToObject(o, "device_count", pi->device_count);
    }
    for (size_t i = 0; i < list->device_count; ++i)
        json_add_device(devices, &list->devices[i], is_default(&list->devices[i], sel, choice));
    if (list->device_count) {
        json_add_default(doc, list, sel, choice);
    } else {
        cJSON_AddNullToObject(doc, "default");
        cJSON_AddStringToObject(doc, "default_error", "no OpenCL platform or device");
    }
    cli_json_print(doc);
}

/* ------------------------------------------------------------ --check */

/* One device: its header and dc_check_device's lines (text), or its entry of "devices" (JSON). */
static int check_one(const wl_device_info *d, cJSON *devices)
{
    dc_result r;
    if (!devices) {
        printf("%u:%u %s (%s, %s)\n", d->platform_index, d->device_index, d->device_name, d->platform_name,
               type_name(d->type));
        fflush(stdout);
        return dc_check_device(d, stdout, &r);
    }
    const int bad = dc_check_device(d, NULL, &r);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToArray(devices, o);
    json_add_index(o, d->platform_index, d->device_index);
    cJSON_AddStringToObject(o, "platform", d->platform_name);
    cJSON_AddStringToObject(o, "name", d->device_name);
    cJSON_AddStringToObject(o, "type", type_name(d->type));
    dc_json_add(o, &r);
    return bad;
}

/* --check [SPEC]: every device, or the one SPEC selects; EXIT_FAIL if any failed. */
static int run_checks(const wl_device_list *list, const char *spec, int json)
{
    cJSON *doc = json ? json_document() : NULL;
    cJSON *devices = NULL;
    size_t failures = 0, checked = 0;
    if (spec) {
        wl_device_choice choice;
        memset(&choice, 0, sizeof choice);
        const wl_status st = wl_select_device(spec, &choice);
        const wl_device_info *d = st == WL_SUCCESS ? find_device(list, choice.platform_index, choice.device_index)
                                                   : NULL;
        if (!d) {
            fprintf(stderr, "%s: %s\n", cli_program,
                    st == WL_SUCCESS ? "the selected device is not in the listing" : wl_context_last_error(NULL));
            cJSON_Delete(doc);
            return EXIT_FAIL;
        }
        if (doc) {
            cJSON_AddStringToObject(doc, "spec", spec);
            cJSON_AddStringToObject(doc, "reason", choice.reason);
            devices = cJSON_AddArrayToObject(doc, "devices");
        } else {
            printf("checking %u:%u (%s)\n\n", d->platform_index, d->device_index, choice.reason);
        }
        failures += (size_t)check_one(d, devices);
        checked = 1;
    } else {
        devices = doc ? cJSON_AddArrayToObject(doc, "devices") : NULL;
        for (size_t i = 0; i < list->device_count; ++i) {
            if (i && !doc)
                printf("\n");
            failures += (size_t)check_one(&list->devices[i], devices);
            ++checked;
        }
    }
    if (doc) {
        cJSON_AddNumberToObject(doc, "checked", (double)checked);
        cJSON_AddNumberToObject(doc, "passed", (double)(checked - failures));
        cli_json_print(doc);
    } else {
        printf("\n%zu of %zu device%s passed\n", checked - failures, checked, checked == 1 ? "" : "s");
    }
    return failures ? EXIT_FAIL : EXIT_OK;
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    cli_init(argc > 0 ? argv[0] : NULL);
    int json = 0, check = 0, selecting = 0;
    const char *spec = NULL;
    for (;;) {
        const char *value;
        int word;
        const int row = cli_next_option(argc, argv, options, &value, &word);
        if (row == CLI_END && word == argc)
            break;
        switch (row) {
        case OPT_HELP: cli_print_help(stdout, options, help_intro, help_notes); return EXIT_OK;
        case OPT_JSON: json = 1; break;
        case OPT_SELECT:
        case OPT_CHECK:
            if (selecting || check)
                goto bad_usage;
            selecting = row == OPT_SELECT;
            check = row == OPT_CHECK;
            spec = value;
            break;
        case CLI_MISSING:
            fprintf(stderr, "%s: %s needs a %s\n", cli_program, argv[word], options[OPT_SELECT].metavar);
            goto bad_usage;
        default: fprintf(stderr, "%s: unknown argument \"%s\"\n", cli_program, argv[word]); goto bad_usage;
        }
    }

    wl_device_list list;
    if (wl_list_devices(&list) != WL_SUCCESS) {
        fprintf(stderr, "%s: out of host memory\n", cli_program);
        return EXIT_FAIL;
    }
    int rc = EXIT_OK;
    if (list.device_count == 0) {
        if (json)
            print_json(&list, WL_ERROR_NO_DEVICE, NULL);
        rc = no_platform(&list);
        wl_device_list_free(&list);
        return rc;
    }

    wl_device_choice choice;
    memset(&choice, 0, sizeof choice);
    if (selecting) {
        wl_status st = wl_select_device(spec, &choice);
        if (json) {
            cJSON *doc = cJSON_CreateObject();
            cJSON_AddNumberToObject(doc, "warploss_devices", 1);
            cJSON_AddStringToObject(doc, "spec", spec);
            json_add_default(doc, &list, st, &choice);
            cli_json_print(doc);
        } else if (st == WL_SUCCESS) {
            const wl_device_info *d = find_device(&list, choice.platform_index, choice.device_index);
            printf("%u:%u %s (%s, %s)\nreason: %s\n", choice.platform_index, choice.device_index,
                   d ? d->device_name : "?", d ? d->platform_name : "?", d ? type_name(d->type) : "?", choice.reason);
        }
        if (st != WL_SUCCESS) {
            fprintf(stderr, "%s: %s\n", cli_program, wl_context_last_error(NULL));
            rc = EXIT_FAIL;
        }
    } else if (check) {
        rc = run_checks(&list, spec, json);
    } else {
        wl_status st = wl_select_device(NULL, &choice);
        if (json)
            print_json(&list, st, &choice);
        else
            print_text(&list, st, &choice);
        /* A WARPLOSS_DEVICE that matches nothing is a failure worth an exit status. */
        if (st != WL_SUCCESS) {
            fprintf(stderr, "%s: %s\n", cli_program, wl_context_last_error(NULL));
            rc = EXIT_FAIL;
        }
    }
    wl_device_list_free(&list);
    return rc;

bad_usage:
    cli_print_help(stderr, options, help_intro, help_notes);
    return EXIT_USAGE;
}
