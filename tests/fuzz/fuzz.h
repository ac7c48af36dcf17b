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

/*
 * LLVM inside PoCL installs its own handlers for the crash signals when it
 * compiles (at context creation, and again for each new launch shape),
 * replacing libFuzzer's: libFuzzer would then write no crash input. (Not
 * SIGFPE: PoCL's own handler for kernels.)
 * The first call saves the handlers in place; every later call puts them
 * back. A harness calls it before and after anything that compiles kernels;
 * fuzz_crash_handlers_forget() makes the next call save again (the first
 * input then saves libFuzzer's, installed after LLVMFuzzerInitialize).
 */
#include <signal.h>
static const int fuzz_crash_signals[4] = {SIGABRT, SIGSEGV, SIGBUS, SIGILL};
static struct sigaction fuzz_crash_handlers[4];
static int fuzz_crash_handlers_saved;

static inline void fuzz_keep_crash_handlers(void)
{
    for (int i = 0; i < 4; ++i)
        sigaction(fuzz_crash_signals[i], fuzz_crash_handlers_saved ? &fuzz_crash_handlers[i] : NULL,
                  fuzz_crash_handlers_saved ? NULL : &fuzz_crash_handlers[i]);
    fuzz_crash_handlers_saved = 1;
}

static inline void fuzz_crash_handlers_forget(void) { fuzz_crash_handlers_saved = 0; }

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
