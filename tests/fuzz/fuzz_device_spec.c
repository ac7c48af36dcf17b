/*
 * The device-selection string (wl_context_options.device, WARPLOSS_DEVICE,
 * warploss-devices --select) against a fuzzed list of devices, through
 * wl_device_match, the resolver without OpenCL. Checked against a plain
 * restatement of the rules in include/warploss.h: which devices match, and
 * that the best of them (GPU > accelerator > CPU > other, then the most
 * compute units, then the first) is chosen.
 *
 * Input: a flags byte (bits 0-2: number of devices, 3: from WARPLOSS_DEVICE,
 * 4: no spec at all), the size of the error buffer, then per device a type
 * byte, compute units, platform and device index, two name lengths and the
 * names; the rest is the spec.
 */
#include <ctype.h>

#include "fuzz.h"
#include "internal.h"

static int rank(cl_device_type t)
{
    return (t & CL_DEVICE_TYPE_GPU) ? 3 : (t & CL_DEVICE_TYPE_ACCELERATOR) ? 2 : (t & CL_DEVICE_TYPE_CPU) ? 1 : 0;
}

static void lower(char *s)
{
    for (; *s; ++s)
        *s = (char)tolower((unsigned char)*s);
}

/* "P:D": decimal digits, a colon, decimal digits, nothing else. */
static int index_spec(const char *s, unsigned long *p, unsigned long *d)
{
    unsigned long v[2] = {0, 0};
    for (int part = 0; part < 2; ++part) {
        if (!isdigit((unsigned char)*s))
            return 0;
        for (; isdigit((unsigned char)*s); ++s)
            v[part] = v[part] > 100000 ? 100001 : v[part] * 10 + (unsigned long)(*s - '0');
        if (part == 0 && *s++ != ':')
            return 0;
    }
    *p = v[0], *d = v[1];
    return *s == '\0';
}

static int matches(const wl_device_desc *dev, const char *spec)
{
    if (!spec)
        return 1;
    unsigned long p, d;
    if (index_spec(spec, &p, &d))
        return dev->platform_index == p && dev->device_index == d;
    char *want = strdup(spec);
    FUZZ_CHECK(want != NULL, "out of memory");
    lower(want);
    int ok;
    if (strcmp(want, "gpu") == 0)
        ok = (dev->type & CL_DEVICE_TYPE_GPU) != 0;
    else if (strcmp(want, "cpu") == 0)
        ok = (dev->type & CL_DEVICE_TYPE_CPU) != 0;
    else if (strcmp(want, "accelerator") == 0)
        ok = (dev->type & CL_DEVICE_TYPE_ACCELERATOR) != 0;
    else {
        char platform[256], device[256];
        memcpy(platform, dev->platform_name, sizeof platform);
        memcpy(device, dev->device_name, sizeof device);
        lower(platform);
        lower(device);
        ok = strstr(platform, want) != NULL || strstr(device, want) != NULL;
    }
    free(want);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader r = {data, size};
    const uint8_t flags = fuzz_byte(&r);
    const size_t want_count = flags & 7;
    const int from_env = (flags >> 3) & 1, no_spec = (flags >> 4) & 1;
    const size_t err_size = fuzz_byte(&r) * 2; /* 0 .. 510: the message is cut to fit */

    wl_device_desc *list = calloc(want_count ? want_count : 1, sizeof *list);
    FUZZ_CHECK(list != NULL, "out of memory");
    size_t count = 0;
    while (count < want_count && r.left >= 6) {
        wl_device_desc *d = &list[count];
        const uint8_t t = fuzz_byte(&r);
        d->type = ((t & 1) ? CL_DEVICE_TYPE_CPU : 0) | ((t & 2) ? CL_DEVICE_TYPE_GPU : 0) |
                  ((t & 4) ? CL_DEVICE_TYPE_ACCELERATOR : 0) | ((t & 8) ? CL_DEVICE_TYPE_DEFAULT : 0) |
                  ((t & 16) ? CL_DEVICE_TYPE_CUSTOM : 0);
        d->compute_units = fuzz_byte(&r);
        d->platform_index = fuzz_byte(&r) % 4;
        d->device_index = fuzz_byte(&r) % 8;
        const size_t platform_len = fuzz_byte(&r) % 40, device_len = fuzz_byte(&r) % 40;
        fuzz_bytes(&r, d->platform_name, platform_len);
        fuzz_bytes(&r, d->device_name, device_len);
        /* fake handles, only compared */
        d->platform = (cl_platform_id)(uintptr_t)(0x1000 + 16 * d->platform_index);
        d->device = (cl_device_id)(uintptr_t)(0x100000 + count);
        ++count;
    }
    char *spec = NULL;
    if (!no_spec) {
        spec = malloc(r.left + 1); /* exact size: ASan sees a read past the end */
        FUZZ_CHECK(spec != NULL, "out of memory");
        memcpy(spec, r.data, r.left);
        spec[r.left] = '\0';
    }

    /* what the rules say */
    size_t best = count, matched = 0;
    for (size_t i = 0; i < count; ++i) {
        if (!matches(&list[i], spec))
            continue;
        ++matched;
        if (best == count || rank(list[i].type) > rank(list[best].type) ||
            (rank(list[i].type) == rank(list[best].type) && list[i].compute_units > list[best].compute_units))
            best = i;
    }

    char *err = malloc(err_size ? err_size : 1);
    FUZZ_CHECK(err != NULL, "out of memory");
    wl_device_choice choice;
    memset(&choice, 0x5a, sizeof choice);
    const wl_status st = wl_device_match(spec, from_env, list, count, &choice, err, err_size);
    if (best == count) {
        FUZZ_CHECK(st == WL_ERROR_NO_DEVICE, "status %d, want WL_ERROR_NO_DEVICE (spec \"%s\")", (int)st,
                   spec ? spec : "(null)");
        if (err_size) {
            FUZZ_CHECK(memchr(err, '\0', err_size) != NULL, "error text not terminated");
            const char *head = "no OpenCL device matches";
            FUZZ_CHECK(strncmp(err, head, err_size - 1 < strlen(head) ? err_size - 1 : strlen(head)) == 0,
                       "error text \"%s\"", err);
        }
    } else {
        FUZZ_CHECK(st == WL_SUCCESS, "status %d, want success: device %zu of %zu (spec \"%s\")", (int)st, best, count,
                   spec ? spec : "(null)");
        FUZZ_CHECK(choice.device == list[best].device, "chose another device than %zu of %zu (%zu matches)", best,
                   count, matched);
        FUZZ_CHECK(choice.platform == list[best].platform && choice.platform_index == list[best].platform_index &&
                       choice.device_index == list[best].device_index,
                   "platform or indices of the choice differ from device %zu", best);
        FUZZ_CHECK(memchr(choice.reason, '\0', sizeof choice.reason) != NULL, "reason not terminated");
        FUZZ_CHECK(choice.reason[0] != '\0', "no reason given");
    }
    free(err);
    free(spec);
    free(list);
    return 0;
}
