/*
 * Shared by the fuzz harnesses (one file per input that comes from outside;
 * see meson.build): a reader over the fuzzer's bytes, and a check that
 * aborts with a message, which libFuzzer and replay.c report as a crash.
 */
#ifndef WL_FUZZ_H
#define WL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                                                          \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                                   \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

/* Consumes the input from the front; past the end every read gives zeros. */
typedef struct fuzz_reader {
    const uint8_t *data;
    size_t left;
} fuzz_reader;

static inline uint8_t fuzz_byte(fuzz_reader *r)
{
    if (!r->left)
        return 0;
    --r->left;
    return *r->data++;
}

static inline uint64_t fuzz_u64(fuzz_reader *r, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i)
        v |= (uint64_t)fuzz_byte(r) << (8 * i);
    return v;
}

/* Up to n bytes (fewer at the end of the input); returns how many. */
static inline size_t fuzz_bytes(fuzz_reader *r, void *out, size_t n)
{
    if (n > r->left)
        n = r->left;
    memcpy(out, r->data, n);
    r->data += n;
    r->left -= n;
    return n;
}

#endif
