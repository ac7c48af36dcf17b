/*
 * warploss-devices: which OpenCL devices are there, which one warploss uses
 * and why, and whether warploss gives correct results on each of them.
 *
 * The default device and its reason come from wl_select_device (the library's
 * resolver, the one wl_context_create uses); the scan variant and vector
 * width from wl_device_launch_plan. This file only lists and checks.
 *
 * Exit status: 0 ok, 1 failure (a check failed, or SPEC matches nothing),
 * 2 usage, 3 no OpenCL platform or device at all.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "reference.h"
#include "warploss.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NO_PLATFORM = 3 };

static const char *program_name = "warploss-devices";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [--json] [--select SPEC] [--check [SPEC]] [--help]\n"
            "\n"
            "With no option: every OpenCL platform and device, the one warploss would\n"
            "use marked with '*' and the reason.\n"
            "  --json          the listing (or --select's answer) as one JSON document\n"
            "  --select SPEC   what SPEC resolves to (same syntax as WARPLOSS_DEVICE)\n"
            "  --check [SPEC]  on every device (or the one SPEC selects): build the kernels\n"
            "                  cold and from the binary cache, compare wl_loss with the C\n"
            "                  reference on fixed cases, and time a short run; PASS or FAIL\n"
            "  --help          this text\n"
            "\n"
            "SPEC: gpu, cpu, accelerator (the best of that type); P:D (platform P, device D);\n"
            "or a case-insensitive part of a platform or device name (the best match).\n"
            "Environment: WARPLOSS_DEVICE, WARPLOSS_KERNEL_DIR, WARPLOSS_CACHE_DIR, WARPLOSS_SCAN.\n"
            "\n"
            "Exit status: 0 ok; 1 a check failed, or SPEC (or WARPLOSS_DEVICE) matches no\n"
            "device; 2 usage; 3 no OpenCL platform or device at all.\n",
            program_name);
}

/* ------------------------------------------------------------ enumeration */

typedef struct device_info {
    unsigned platform_index, device_index;
    cl_platform_id platform;
    cl_device_id device;
    char platform_name[256];
    char name[256], vendor[256], version[256], c_version[256], driver[256];
    cl_device_type type;
    cl_uint compute_units, clock_mhz;
    cl_ulong global_mem, local_mem, max_alloc;
    size_t max_group;
    int fp64, int64_atomics, subgroups, local_int32_atomics, opencl_c_12;
    const char *scan_variant; /* as wl_context_create would choose; "" if unknown */
    int vector_width;
} device_info;

typedef struct platform_info {
    unsigned index;
    char name[256], vendor[256], version[256];
    unsigned device_count;
} platform_info;

typedef struct inventory {
    platform_info *platforms;
    unsigned platform_count;
    device_info *devices;
    size_t device_count;
    cl_int platform_error; /* clGetPlatformIDs' result */
} inventory;

static void inventory_free(inventory *inv)
{
    free(inv->platforms);
    free(inv->devices);
    memset(inv, 0, sizeof *inv);
}

static const char *type_name(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU) return "GPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
    if (t & CL_DEVICE_TYPE_CPU) return "CPU";
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

static void platform_string(cl_platform_id p, cl_platform_info what, char *out, size_t size)
{
    out[0] = '\0';
    if (clGetPlatformInfo(p, what, size - 1, out, NULL) != CL_SUCCESS)
        snprintf(out, size, "?");
    out[size - 1] = '\0';
}

static void describe_device(device_info *di)
{
    cl_device_id d = di->device;
    device_string(d, CL_DEVICE_NAME, di->name, sizeof di->name);
    device_string(d, CL_DEVICE_VENDOR, di->vendor, sizeof di->vendor);
    device_string(d, CL_DEVICE_VERSION, di->version, sizeof di->version);
    device_string(d, CL_DEVICE_OPENCL_C_VERSION, di->c_version, sizeof di->c_version);
    device_string(d, CL_DRIVER_VERSION, di->driver, sizeof di->driver);
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof di->type, &di->type, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof di->compute_units, &di->compute_units, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof di->clock_mhz, &di->clock_mhz, NULL);
    clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof di->global_mem, &di->global_mem, NULL);
    clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof di->local_mem, &di->local_mem, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof di->max_alloc, &di->max_alloc, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof di->max_group, &di->max_group, NULL);

    size_t ext_size = 0;
    char *ext = NULL;
    if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &ext_size) == CL_SUCCESS && ext_size > 0)
        ext = calloc(ext_size + 1, 1);
    if (ext && clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, ext_size, ext, NULL) != CL_SUCCESS)
        ext[0] = '\0';
    const char *list = ext ? ext : "";
    cl_device_fp_config fp64_config = 0;
    clGetDeviceInfo(d, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp64_config, &fp64_config, NULL);
    di->fp64 = has_word(list, "cl_khr_fp64") || fp64_config != 0;
    di->int64_atomics = has_word(list, "cl_khr_int64_base_atomics");
    di->subgroups = has_word(list, "cl_khr_subgroups");
    /* The kernels need OpenCL C 1.2, where local int32 atomics are core. */
    di->opencl_c_12 = c_version_number(di->c_version) >= 102;
    di->local_int32_atomics = di->opencl_c_12 || has_word(list, "cl_khr_local_int32_base_atomics");
    free(ext);

    di->scan_variant = "";
    di->vector_width = 0;
    if (wl_device_launch_plan(d, &di->scan_variant, &di->vector_width) != WL_SUCCESS)
        di->scan_variant = "";
}

/* Every platform and device, in clGetPlatformIDs / clGetDeviceIDs order (the
 * P:D indices of the resolver). Returns 0, or -1 when out of memory. */
static int inventory_take(inventory *inv)
{
    memset(inv, 0, sizeof *inv);
    cl_uint np = 0;
    inv->platform_error = clGetPlatformIDs(0, NULL, &np);
    if (inv->platform_error != CL_SUCCESS || np == 0)
        return 0;
    cl_platform_id *ids = calloc(np, sizeof *ids);
    inv->platforms = calloc(np, sizeof *inv->platforms);
    if (!ids || !inv->platforms) {
        free(ids);
        return -1;
    }
    inv->platform_error = clGetPlatformIDs(np, ids, NULL);
    if (inv->platform_error != CL_SUCCESS) {
        free(ids);
        return 0;
    }
    inv->platform_count = np;
    for (cl_uint p = 0; p < np; ++p) {
        platform_info *pi = &inv->platforms[p];
        pi->index = p;
        platform_string(ids[p], CL_PLATFORM_NAME, pi->name, sizeof pi->name);
        platform_string(ids[p], CL_PLATFORM_VENDOR, pi->vendor, sizeof pi->vendor);
        platform_string(ids[p], CL_PLATFORM_VERSION, pi->version, sizeof pi->version);
        cl_uint nd = 0;
        if (clGetDeviceIDs(ids[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0)
            continue;
        cl_device_id *devs = calloc(nd, sizeof *devs);
        device_info *grown = devs ? realloc(inv->devices, (inv->device_count + nd) * sizeof *grown) : NULL;
        if (!grown) {
            free(devs);
            free(ids);
            return -1;
        }
        inv->devices = grown;
        if (clGetDeviceIDs(ids[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL) == CL_SUCCESS) {
            for (cl_uint d = 0; d < nd; ++d) {
                device_info *di = &inv->devices[inv->device_count++];
                memset(di, 0, sizeof *di);
                di->platform_index = p;
                di->device_index = d;
                di->platform = ids[p];
                di->device = devs[d];
                snprintf(di->platform_name, sizeof di->platform_name, "%s", pi->name);
                describe_device(di);
            }
            pi->device_count = nd;
        }
        free(devs);
    }
    free(ids);
    return 0;
}

static const device_info *find_device(const inventory *inv, unsigned p, unsigned d)
{
    for (size_t i = 0; i < inv->device_count; ++i)
        if (inv->devices[i].platform_index == p && inv->devices[i].device_index == d)
            return &inv->devices[i];
    return NULL;
}

/* Exit 3's message: there is nothing to run on. */
static int no_platform(const inventory *inv)
{
    if (inv->platform_count == 0)
        fprintf(stderr, "%s: no OpenCL platform found (clGetPlatformIDs returned %d%s).\n", program_name,
                (int)inv->platform_error, inv->platform_error == -1001 ? ", CL_PLATFORM_NOT_FOUND_KHR" : "");
    else
        fprintf(stderr, "%s: %u OpenCL platform%s but no device.\n", program_name, inv->platform_count,
                inv->platform_count == 1 ? "" : "s");
    fprintf(stderr,
            "Install an OpenCL driver: PoCL for the CPU (Debian/Ubuntu: apt-get install pocl-opencl-icd)\n"
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

static void print_text(const inventory *inv, wl_status sel, const wl_device_choice *choice)
{
    printf("OpenCL: %u platform%s, %zu device%s\n", inv->platform_count, inv->platform_count == 1 ? "" : "s",
           inv->device_count, inv->device_count == 1 ? "" : "s");
    for (unsigned p = 0; p < inv->platform_count; ++p) {
        const platform_info *pi = &inv->platforms[p];
        printf("\nplatform %u: %s (%s; %s)\n", p, pi->name, pi->vendor, pi->version);
        if (pi->device_count == 0)
            printf("  (no devices)\n");
        for (size_t i = 0; i < inv->device_count; ++i) {
            const device_info *d = &inv->devices[i];
            if (d->platform_index != p)
                continue;
            const int chosen = sel == WL_SUCCESS && choice->platform_index == p &&
                               choice->device_index == d->device_index;
            char global[32], local[32], alloc[32];
            print_bytes(global, sizeof global, d->global_mem);
            print_bytes(local, sizeof local, d->local_mem);
            print_bytes(alloc, sizeof alloc, d->max_alloc);
            printf("%c %u:%u %s\n", chosen ? '*' : ' ', d->platform_index, d->device_index, d->name);
            if (chosen)
                printf("    default:            yes (%s)\n", choice->reason);
            printf("    platform:           %s\n", d->platform_name);
            printf("    vendor:             %s\n", d->vendor);
            printf("    type:               %s\n", type_name(d->type));
            printf("    OpenCL:             %s\n", d->version);
            printf("    OpenCL C:           %s\n", d->c_version);
            printf("    driver:             %s\n", d->driver);
            printf("    compute units:      %u\n", (unsigned)d->compute_units);
            printf("    clock:              %u MHz\n", (unsigned)d->clock_mhz);
            printf("    global memory:      %s\n", global);
            printf("    local memory:       %s\n", local);
            printf("    largest allocation: %s\n", alloc);
            printf("    largest work-group: %zu\n", d->max_group);
            printf("    fp64:               %s\n", yes_no(d->fp64));
            printf("    int64 atomics:      %s\n", yes_no(d->int64_atomics));
            printf("    sub-groups:         %s\n", yes_no(d->subgroups));
            printf("    kernels use:        OpenCL C 1.2: %s, local int32 atomics: %s, scan: %s, vector width: %d\n",
                   yes_no(d->opencl_c_12), yes_no(d->local_int32_atomics),
                   d->scan_variant[0] ? d->scan_variant : "?", d->vector_width);
        }
    }
    printf("\n");
    if (sel == WL_SUCCESS) {
        const device_info *d = find_device(inv, choice->platform_index, choice->device_index);
        printf("default: %u:%u %s (%s)\n", choice->platform_index, choice->device_index, d ? d->name : "?",
               choice->reason);
    } else {
        printf("default: none (%s)\n", wl_context_last_error(NULL));
    }
}

static void json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; ++p) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p == '\n')
            printf("\\n");
        else if (*p < 0x20 || *p == 0x7f)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void json_key_string(const char *indent, const char *key, const char *value, const char *after)
{
    printf("%s\"%s\": ", indent, key);
    json_string(value);
    printf("%s\n", after);
}

static void json_choice(const inventory *inv, wl_status sel, const wl_device_choice *choice, const char *after)
{
    if (sel != WL_SUCCESS) {
        printf("  \"default\": null,\n");
        json_key_string("  ", "default_error", wl_context_last_error(NULL), after);
        return;
    }
    const device_info *d = find_device(inv, choice->platform_index, choice->device_index);
    printf("  \"default\": {\n");
    printf("    \"index\": \"%u:%u\",\n", choice->platform_index, choice->device_index);
    printf("    \"platform_index\": %u,\n", choice->platform_index);
    printf("    \"device_index\": %u,\n", choice->device_index);
    json_key_string("    ", "name", d ? d->name : "?", ",");
    json_key_string("    ", "reason", choice->reason, "");
    printf("  }%s\n", after);
}

/* The document's fields are documented in README.md ("Choosing a device"). */
static void print_json(const inventory *inv, wl_status sel, const wl_device_choice *choice)
{
    printf("{\n  \"warploss_devices\": 1,\n  \"api_version\": \"%d.%d.%d\",\n", WL_API_VERSION_MAJOR,
           WL_API_VERSION_MINOR, WL_API_VERSION_PATCH);
    printf("  \"platforms\": [");
    for (unsigned p = 0; p < inv->platform_count; ++p) {
        const platform_info *pi = &inv->platforms[p];
        printf("%s\n    {\"index\": %u, \"name\": ", p ? "," : "", p);
        json_string(pi->name);
        printf(", \"vendor\": ");
        json_string(pi->vendor);
        printf(", \"version\": ");
        json_string(pi->version);
        printf(", \"device_count\": %u}", pi->device_count);
    }
    printf("%s],\n", inv->platform_count ? "\n  " : "");
    printf("  \"devices\": [");
    for (size_t i = 0; i < inv->device_count; ++i) {
        const device_info *d = &inv->devices[i];
        const int chosen = sel == WL_SUCCESS && choice->platform_index == d->platform_index &&
                           choice->device_index == d->device_index;
        printf("%s\n    {\n", i ? "," : "");
        printf("      \"index\": \"%u:%u\",\n", d->platform_index, d->device_index);
        printf("      \"platform_index\": %u,\n", d->platform_index);
        printf("      \"device_index\": %u,\n", d->device_index);
        printf("      \"default\": %s,\n", chosen ? "true" : "false");
        json_key_string("      ", "platform", d->platform_name, ",");
        json_key_string("      ", "name", d->name, ",");
        json_key_string("      ", "vendor", d->vendor, ",");
        json_key_string("      ", "type", type_name(d->type), ",");
        json_key_string("      ", "opencl_version", d->version, ",");
        json_key_string("      ", "opencl_c_version", d->c_version, ",");
        json_key_string("      ", "driver_version", d->driver, ",");
        printf("      \"compute_units\": %u,\n", (unsigned)d->compute_units);
        printf("      \"clock_mhz\": %u,\n", (unsigned)d->clock_mhz);
        printf("      \"global_mem_bytes\": %llu,\n", (unsigned long long)d->global_mem);
        printf("      \"local_mem_bytes\": %llu,\n", (unsigned long long)d->local_mem);
        printf("      \"max_alloc_bytes\": %llu,\n", (unsigned long long)d->max_alloc);
        printf("      \"max_work_group_size\": %zu,\n", d->max_group);
        printf("      \"fp64\": %s,\n", d->fp64 ? "true" : "false");
        printf("      \"int64_atomics\": %s,\n", d->int64_atomics ? "true" : "false");
        printf("      \"subgroups\": %s,\n", d->subgroups ? "true" : "false");
        printf("      \"kernels\": {\"opencl_c_1_2\": %s, \"local_int32_atomics\": %s, \"scan_variant\": ",
               d->opencl_c_12 ? "true" : "false", d->local_int32_atomics ? "true" : "false");
        json_string(d->scan_variant);
        printf(", \"vector_width\": %d}\n    }", d->vector_width);
    }
    printf("%s],\n", inv->device_count ? "\n  " : "");
    json_choice(inv, sel, choice, "");
    printf("}\n");
}

/* ------------------------------------------------------------ --check */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The cache folder is flat, but remove nested folders too, without following links. */
static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(path);
        if (dir) {
            struct dirent *e;
            while ((e = readdir(dir)) != NULL) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                    continue;
                char child[4096];
                if ((size_t)snprintf(child, sizeof child, "%s/%s", path, e->d_name) < sizeof child)
                    remove_tree(child);
            }
            closedir(dir);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* One fixed correctness case. */
typedef struct check_case {
    const char *name;
    uint64_t num_labels;
    size_t rows, negatives;
    wl_weighting weighting;
    wl_reduction reduction;
    int regime;    /* ref_regime, or -1: the seed README's example, -2: NaN rows */
    uint64_t seed;
} check_case;

static const check_case check_cases[] = {
    {"seed README example", 100, 3, 2, WL_WEIGHT_LOG, WL_REDUCE_SUM, -1, 0},
    {"early, log, sum", 1000, 64, 100, WL_WEIGHT_LOG, WL_REDUCE_SUM, REF_EARLY, 1},
    {"deep, harmonic, mean", 100000, 33, 257, WL_WEIGHT_HARMONIC, WL_REDUCE_MEAN, REF_DEEP, 2},
    {"deep, log, none", 5000, 17, 1031, WL_WEIGHT_LOG, WL_REDUCE_NONE, REF_DEEP, 3},
    {"none, log, sum", 1000, 40, 64, WL_WEIGHT_LOG, WL_REDUCE_SUM, REF_NONE, 4},
    {"more trials than labels", 10, 50, 40, WL_WEIGHT_HARMONIC, WL_REDUCE_NONE, REF_DEEP, 5},
    {"one negative", 2, 129, 1, WL_WEIGHT_LOG, WL_REDUCE_NONE, REF_EARLY, 6},
    {"NaN rows", 1000, 4, 8, WL_WEIGHT_LOG, WL_REDUCE_NONE, -2, 7},
    {"no negatives", 1000, 5, 0, WL_WEIGHT_LOG, WL_REDUCE_SUM, REF_EARLY, 8},
};

static int close_enough(float got, float want, double rel, double abs)
{
    if (isnan(got) || isnan(want))
        return isnan(got) && isnan(want);
    if (isinf(got) || isinf(want))
        return got == want;
    return fabs((double)got - (double)want) <= rel * fabs((double)want) + abs;
}

/* Run one case on c; 0 if it agrees with the reference, else 1 with why in msg. */
static int run_case(wl_context *c, const check_case *k, char *msg, size_t msg_size)
{
    const size_t rows = k->rows, negs = k->negatives, cells = rows * negs;
    const size_t nloss = k->reduction == WL_REDUCE_NONE ? rows : 1;
    float *pos = calloc(rows + 1, sizeof *pos), *neg = calloc(cells + 1, sizeof *neg);
    float *loss = calloc(nloss + 1, sizeof *loss), *want_loss = calloc(nloss + 1, sizeof *want_loss);
    float *gp = calloc(rows + 1, sizeof *gp), *want_gp = calloc(rows + 1, sizeof *want_gp);
    float *gn = calloc(cells + 1, sizeof *gn), *want_gn = calloc(cells + 1, sizeof *want_gn);
    int32_t *off = calloc(rows + 1, sizeof *off), *want_off = calloc(rows + 1, sizeof *want_off);
    int bad = 1;
    if (!pos || !neg || !loss || !want_loss || !gp || !want_gp || !gn || !want_gn || !off || !want_off) {
        snprintf(msg, msg_size, "out of host memory");
        goto done;
    }
    if (k->regime == -1) {
        const float p[3] = {-4.9562f, -1.6886f, 3.3984f};
        const float n[6] = {1.0491f, 4.9357f, -2.1289f, 0.4496f, 3.4541f, 0.0931f};
        memcpy(pos, p, sizeof p);
        memcpy(neg, n, sizeof n);
    } else if (k->regime == -2) {
        ref_make_inputs(k->seed, REF_DEEP, rows, negs, 1.0f, pos, neg);
        pos[0] = NAN;            /* NaN positive */
        neg[1 * negs + 0] = NAN; /* NaN at the start of a row */
        neg[2 * negs + 5] = NAN; /* NaN late in a row */
    } else {
        ref_make_inputs(k->seed, (ref_regime)k->regime, rows, negs, 1.0f, pos, neg);
    }
    wl_loss_options lo;
    wl_loss_options_default(&lo, k->num_labels);
    lo.weighting = k->weighting;
    lo.reduction = k->reduction;
    wl_status st = wl_loss(c, &lo, rows, negs, pos, neg, loss, gp, gn, off);
    if (st != WL_SUCCESS) {
        snprintf(msg, msg_size, "wl_loss: %s: %s", wl_status_string(st), wl_context_last_error(c));
        goto done;
    }
    ref_loss(&lo, rows, negs, pos, neg, want_loss, want_gp, want_gn, want_off);
    for (size_t b = 0; b < rows; ++b)
        if (off[b] != want_off[b]) {
            snprintf(msg, msg_size, "offender[%zu] = %d, reference %d", b, (int)off[b], (int)want_off[b]);
            goto done;
        }
    /* Row losses and gradients are single float operations: nearly exact. A
     * reduced loss is a float sum on the device against a double one. */
    const double rel = k->reduction == WL_REDUCE_NONE ? 1e-6 : 2e-5;
    for (size_t i = 0; i < nloss; ++i)
        if (!close_enough(loss[i], want_loss[i], rel, 1e-6)) {
            snprintf(msg, msg_size, "loss[%zu] = %.9g, reference %.9g", i, (double)loss[i], (double)want_loss[i]);
            goto done;
        }
    if (k->regime == -1 && !close_enough(loss[0], 39.6131f, 0.0, 5e-4)) {
        snprintf(msg, msg_size, "loss %.6f, expected 39.6131", (double)loss[0]);
        goto done;
    }
    for (size_t b = 0; b < rows; ++b)
        if (!close_enough(gp[b], want_gp[b], 1e-6, 1e-9)) {
            snprintf(msg, msg_size, "grad_pos[%zu] = %.9g, reference %.9g", b, (double)gp[b], (double)want_gp[b]);
            goto done;
        }
    for (size_t i = 0; i < cells; ++i)
        if (!close_enough(gn[i], want_gn[i], 1e-6, 1e-9)) {
            snprintf(msg, msg_size, "grad_neg[%zu] = %.9g, reference %.9g", i, (double)gn[i], (double)want_gn[i]);
            goto done;
        }
    bad = 0;
done:
    free(pos), free(neg), free(loss), free(want_loss), free(gp), free(want_gp);
    free(gn), free(want_gn), free(off), free(want_off);
    return bad;
}

/*
 * A short timed run on device memory (wl_loss_cl, no host copies): rows with
 * no offender, so every score is read once and GB/s counts real bytes read.
 */
static int timed_run(wl_context *c, double *rows_per_s, double *gb_per_s, char *msg, size_t msg_size)
{
    enum { ROWS = 4096, NEG = 512 };
    const size_t cells = (size_t)ROWS * NEG;
    float *pos = malloc(ROWS * sizeof *pos), *neg = malloc(cells * sizeof *neg);
    cl_mem bpos = NULL, bneg = NULL, bloss = NULL;
    int bad = 1;
    if (!pos || !neg) {
        snprintf(msg, msg_size, "out of host memory");
        goto done;
    }
    ref_make_inputs(99, REF_NONE, ROWS, NEG, 1.0f, pos, neg);
    cl_int err = CL_SUCCESS;
    cl_context ctx = wl_context_cl_context(c);
    bpos = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, ROWS * sizeof *pos, pos, &err);
    if (err == CL_SUCCESS)
        bneg = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, cells * sizeof *neg, neg, &err);
    if (err == CL_SUCCESS)
        bloss = clCreateBuffer(ctx, CL_MEM_READ_WRITE, sizeof(float), NULL, &err);
    if (err != CL_SUCCESS) {
        snprintf(msg, msg_size, "clCreateBuffer failed (%d)", (int)err);
        goto done;
    }
    wl_loss_options lo;
    wl_loss_options_default(&lo, 100000);
    cl_command_queue q = wl_context_queue(c);
    /* One warm-up call, then calls until about 0.25 s have passed. */
    wl_status st = wl_loss_cl(c, &lo, ROWS, NEG, bpos, bneg, bloss, NULL, NULL, NULL, 0, NULL, NULL);
    if (st == WL_SUCCESS)
        st = clFinish(q) == CL_SUCCESS ? WL_SUCCESS : WL_ERROR_OPENCL;
    const double start = now_seconds();
    double elapsed = 0.0;
    int calls = 0;
    while (st == WL_SUCCESS && (calls < 3 || elapsed < 0.25) && calls < 200) {
        st = wl_loss_cl(c, &lo, ROWS, NEG, bpos, bneg, bloss, NULL, NULL, NULL, 0, NULL, NULL);
        if (st == WL_SUCCESS && clFinish(q) != CL_SUCCESS)
            st = WL_ERROR_OPENCL;
        ++calls;
        elapsed = now_seconds() - start;
    }
    if (st != WL_SUCCESS) {
        snprintf(msg, msg_size, "timed wl_loss_cl: %s: %s", wl_status_string(st), wl_context_last_error(c));
        goto done;
    }
    float loss = -1.0f;
    err = clEnqueueReadBuffer(q, bloss, CL_TRUE, 0, sizeof loss, &loss, 0, NULL, NULL);
    if (err != CL_SUCCESS || loss != 0.0f) {
        snprintf(msg, msg_size, "timed run: loss %g (OpenCL %d), expected 0 (no offender)", (double)loss, (int)err);
        goto done;
    }
    const double per_call = elapsed / calls;
    *rows_per_s = ROWS / per_call;
    *gb_per_s = (double)(cells + ROWS) * sizeof(float) / per_call / 1e9;
    bad = 0;
done:
    if (bpos) clReleaseMemObject(bpos);
    if (bneg) clReleaseMemObject(bneg);
    if (bloss) clReleaseMemObject(bloss);
    free(pos), free(neg);
    return bad;
}

/* Create a context on device P:D with the given cache folder. */
static wl_context *open_device(const device_info *d, const char *cache_dir, char *msg, size_t msg_size)
{
    char spec[32];
    snprintf(spec, sizeof spec, "%u:%u", d->platform_index, d->device_index);
    wl_context_options co;
    wl_context_options_default(&co);
    co.device = spec;
    co.cache_dir = cache_dir;
    wl_context *c = NULL;
    wl_status st = wl_context_create(&co, &c);
    if (st != WL_SUCCESS) {
        snprintf(msg, msg_size, "wl_context_create: %s: %.400s", wl_status_string(st), wl_context_last_error(NULL));
        return NULL;
    }
    return c;
}

/* Every step on one device; prints its block and returns 0 for PASS. */
static int check_device(const device_info *d)
{
    printf("%u:%u %s (%s, %s)\n", d->platform_index, d->device_index, d->name, d->platform_name,
           type_name(d->type));
    fflush(stdout);
    char msg[1024] = "";
    int bad = 1;
    wl_context *c = NULL;
    const char *tmp = getenv("TMPDIR");
    char cache[4096];
    snprintf(cache, sizeof cache, "%s/warploss-devices-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(cache)) {
        snprintf(msg, sizeof msg, "cannot create a temporary cache folder %.400s: %s", cache, strerror(errno));
        cache[0] = '\0';
        goto done;
    }

    /* cold: an empty cache, so the kernels are compiled */
    c = open_device(d, cache, msg, sizeof msg);
    if (!c)
        goto done;
    printf("  kernels:      %s, scan %s, vector width ", wl_context_kernel_origin(c), wl_context_scan_variant(c));
    int width = 0;
    if (wl_device_launch_plan(wl_context_device(c), NULL, &width) == WL_SUCCESS)
        printf("%d\n", width);
    else
        printf("?\n");
    const double cold = wl_context_build_seconds(c);
    const int cold_cached = wl_context_program_from_cache(c);
    wl_context_destroy(c);
    printf("  build cold:   %.3f s%s\n", cold, cold_cached ? " (unexpectedly from the cache)" : "");
    if (cold_cached) {
        snprintf(msg, sizeof msg, "the first build in an empty cache folder came from the cache");
        c = NULL;
        goto done;
    }

    /* warm: the same folder, so the program comes from the binary cache */
    c = open_device(d, cache, msg, sizeof msg);
    if (!c)
        goto done;
    printf("  build cached: %.3f s%s\n", wl_context_build_seconds(c),
           wl_context_program_from_cache(c) ? "" : " (not from the cache)");
    if (!wl_context_program_from_cache(c)) {
        snprintf(msg, sizeof msg, "the second build did not load the program from the binary cache %.400s", cache);
        goto done;
    }

    const size_t ncases = sizeof check_cases / sizeof check_cases[0];
    for (size_t i = 0; i < ncases; ++i) {
        char why[512];
        if (run_case(c, &check_cases[i], why, sizeof why)) {
            snprintf(msg, sizeof msg, "case \"%s\": %s", check_cases[i].name, why);
            printf("  correctness:  case \"%s\" differs from the C reference\n", check_cases[i].name);
            goto done;
        }
    }
    printf("  correctness:  %zu cases agree with the C reference\n", ncases);

    double rows_per_s = 0.0, gb_per_s = 0.0;
    if (timed_run(c, &rows_per_s, &gb_per_s, msg, sizeof msg))
        goto done;
    printf("  throughput:   %.3g rows/s, %.2f GB/s (4096 x 512 scores, full scans, device memory)\n", rows_per_s,
           gb_per_s);
    bad = 0;
done:
    wl_context_destroy(c);
    if (cache[0])
        remove_tree(cache);
    if (bad)
        printf("  FAIL: %s\n", msg);
    else
        printf("  PASS\n");
    fflush(stdout);
    return bad;
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    if (argc > 0 && argv[0] && *argv[0]) {
        const char *slash = strrchr(argv[0], '/');
        program_name = slash ? slash + 1 : argv[0];
    }
    int json = 0, check = 0, select = 0;
    const char *spec = NULL;
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--select") || !strncmp(a, "--select=", 9)) {
            if (select || check)
                goto bad_usage;
            select = 1;
            if (a[8] == '=')
                spec = a + 9;
            else if (i + 1 < argc)
                spec = argv[++i];
            else {
                fprintf(stderr, "%s: --select needs a SPEC\n", program_name);
                goto bad_usage;
            }
        } else if (!strcmp(a, "--check") || !strncmp(a, "--check=", 8)) {
            if (select || check)
                goto bad_usage;
            check = 1;
            if (a[7] == '=')
                spec = a + 8;
            else if (i + 1 < argc && argv[i + 1][0] != '-')
                spec = argv[++i];
        } else {
            fprintf(stderr, "%s: unknown argument \"%s\"\n", program_name, a);
            goto bad_usage;
        }
    }
    if (json && check) {
        fprintf(stderr, "%s: --json goes with the listing or --select, not --check\n", program_name);
        goto bad_usage;
    }

    inventory inv;
    if (inventory_take(&inv) != 0) {
        fprintf(stderr, "%s: out of host memory\n", program_name);
        inventory_free(&inv);
        return EXIT_FAIL;
    }
    int rc = EXIT_OK;
    if (inv.device_count == 0) {
        if (json)
            printf("{\n  \"warploss_devices\": 1,\n  \"api_version\": \"%d.%d.%d\",\n  \"platforms\": [],\n"
                   "  \"devices\": [],\n  \"default\": null,\n"
                   "  \"default_error\": \"no OpenCL platform or device\"\n}\n",
                   WL_API_VERSION_MAJOR, WL_API_VERSION_MINOR, WL_API_VERSION_PATCH);
        rc = no_platform(&inv);
        inventory_free(&inv);
        return rc;
    }

    wl_device_choice choice;
    memset(&choice, 0, sizeof choice);
    if (select) {
        wl_status st = wl_select_device(spec, &choice);
        if (json) {
            printf("{\n  \"warploss_devices\": 1,\n");
            json_key_string("  ", "spec", spec, ",");
            json_choice(&inv, st, &choice, "");
            printf("}\n");
        } else if (st == WL_SUCCESS) {
            const device_info *d = find_device(&inv, choice.platform_index, choice.device_index);
            printf("%u:%u %s (%s, %s)\nreason: %s\n", choice.platform_index, choice.device_index,
                   d ? d->name : "?", d ? d->platform_name : "?", d ? type_name(d->type) : "?", choice.reason);
        }
        if (st != WL_SUCCESS) {
            fprintf(stderr, "%s: %s\n", program_name, wl_context_last_error(NULL));
            rc = EXIT_FAIL;
        }
    } else if (check) {
        size_t failures = 0, checked = 0;
        if (spec) {
            wl_status st = wl_select_device(spec, &choice);
            const device_info *d = st == WL_SUCCESS ? find_device(&inv, choice.platform_index, choice.device_index)
                                                    : NULL;
            if (!d) {
                fprintf(stderr, "%s: %s\n", program_name,
                        st == WL_SUCCESS ? "the selected device is not in the listing" : wl_context_last_error(NULL));
                inventory_free(&inv);
                return EXIT_FAIL;
            }
            printf("checking %u:%u (%s)\n\n", d->platform_index, d->device_index, choice.reason);
            failures += (size_t)check_device(d);
            checked = 1;
        } else {
            for (size_t i = 0; i < inv.device_count; ++i) {
                if (i)
                    printf("\n");
                failures += (size_t)check_device(&inv.devices[i]);
                ++checked;
            }
        }
        printf("\n%zu of %zu device%s passed\n", checked - failures, checked, checked == 1 ? "" : "s");
        rc = failures ? EXIT_FAIL : EXIT_OK;
    } else {
        wl_status st = wl_select_device(NULL, &choice);
        if (json)
            print_json(&inv, st, &choice);
        else
            print_text(&inv, st, &choice);
        /* A WARPLOSS_DEVICE that matches nothing is a failure worth an exit status. */
        if (st != WL_SUCCESS) {
            fprintf(stderr, "%s: %s\n", program_name, wl_context_last_error(NULL));
            rc = EXIT_FAIL;
        }
    }
    inventory_free(&inv);
    return rc;

bad_usage:
    usage(stderr);
    return EXIT_USAGE;
}
