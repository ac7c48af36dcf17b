/*
 * The kernel-source loader: wl_program_load_sources (the loss program's
 * files) on a folder the harness
 * writes for each input, as a user's kernel_dir or WARPLOSS_KERNEL_DIR. The
 * input chooses the folder's name (odd bytes included) and length (up to
 * and past PATH_MAX), which kernel files exist, which are folders instead of
 * files, and their contents. Checked: success exactly when every file is a
 * readable regular file without a NUL byte, and then the prelude and files
 * concatenated with a #line before each, byte for byte; otherwise
 * WL_ERROR_KERNEL_SOURCE, no output, and a message.
 *
 * Input: present mask, folder mask, flags (bit 0: embedded copy instead,
 * bit 1: long path), name length and name, path length byte, then per
 * present file a 16-bit length and the contents.
 */
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "internal.h"
#include "program.h"

static char base[64];

/* The files of the program under test, and their count. */
static const char *const *files;
static size_t file_count;

static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        for (size_t i = 0; i < file_count; ++i) {
            char child[8192];
            snprintf(child, sizeof child, "%s/%s", path, files[i]);
            remove_tree(child);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void cleanup(void)
{
    if (base[0])
        rmdir(base);
}

/* libFuzzer (and replay.c) call it once, before the first input, when it is there. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(base, sizeof base, "%s/wl-fuzz-src-XXXXXX", tmp && strlen(tmp) < 30 ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(base) != NULL, "mkdtemp(%s): %s", base, strerror(errno));
    atexit(cleanup);
    files = wl_programs[WL_PROGRAM_LOSS].files;
    while (files[file_count])
        ++file_count;
    return 0;
}

static const char prelude[] = "/* prelude */\n#define WL_VEC 8\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader r = {data, size};
    const uint8_t present = fuzz_byte(&r), folders = fuzz_byte(&r), flags = fuzz_byte(&r);
    wl_context *ctx = calloc(1, sizeof *ctx);
    FUZZ_CHECK(ctx != NULL, "out of memory");

    if (flags & 1) { /* the embedded copy */
        char *out = NULL;
        const int st = wl_program_load_sources(ctx, WL_PROGRAM_LOSS, NULL, prelude, &out);
        FUZZ_CHECK(st == WL_SUCCESS && out, "embedded sources: status %d: %s", st, ctx->error);
        size_t want = strlen(prelude);
        for (size_t i = 0; i < file_count; ++i)
            want += strlen("#line 1 \"\"\n") + strlen(files[i]) + wl_kernel_file_find(files[i])->size + 1;
        FUZZ_CHECK(strlen(out) == want, "embedded sources: %zu bytes, want %zu", strlen(out), want);
        free(out);
        free(ctx);
        return 0;
    }

    /* the folder: base/<name>, or base/<name>/././... up to a chosen length */
    char name[80];
    size_t name_len = fuzz_byte(&r) % 64;
    name_len = fuzz_bytes(&r, name, name_len);
    for (size_t i = 0; i < name_len; ++i)
        if (name[i] == '/' || name[i] == '\0')
            name[i] = '_';
    name[name_len] = '\0';
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/d%s", base, name); /* "d": never "." or ".." */
    const size_t path_byte = fuzz_byte(&r);
    const int created = mkdir(dir, 0700) == 0;
    FUZZ_CHECK(created || errno == ENAMETOOLONG, "mkdir(%s): %s", dir, strerror(errno));
    if (flags & 2) {
        /* "./" segments up to a length around PATH_MAX (4096) and the loader's buffer (4200) */
        const size_t target = 4000 + path_byte * 2;
        size_t len = strlen(dir);
        while (len + 2 <= target && len + 2 < sizeof dir)
            dir[len++] = '/', dir[len++] = '.';
        dir[len] = '\0';
    }

    /* the files */
    uint8_t *contents[16] = {0};
    size_t sizes[16] = {0};
    int expect_ok = created;
    for (size_t i = 0; i < file_count && i < 16; ++i) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (strlen(path) >= PATH_MAX)
            expect_ok = 0;
        if (i < 8 && !(present >> i & 1)) {
            expect_ok = 0;
            continue;
        }
        if (i < 8 && folders >> i & 1) {
            expect_ok = 0;
            if (created)
                mkdir(path, 0700);
            continue;
        }
        const size_t want = fuzz_u64(&r, 2);
        contents[i] = malloc(want ? want : 1);
        FUZZ_CHECK(contents[i] != NULL, "out of memory");
        sizes[i] = fuzz_bytes(&r, contents[i], want);
        if (memchr(contents[i], '\0', sizes[i]))
            expect_ok = 0;
        FILE *f = created ? fopen(path, "wb") : NULL;
        if (f) {
            FUZZ_CHECK(fwrite(contents[i], 1, sizes[i], f) == sizes[i], "write %s", path);
            fclose(f);
        }
    }

    char *out = (char *)1;
    const int st = wl_program_load_sources(ctx, WL_PROGRAM_LOSS, dir, prelude, &out);
    if (expect_ok) {
        FUZZ_CHECK(st == WL_SUCCESS && out, "status %d (%s), want success", st, ctx->error);
        size_t total = strlen(prelude) + 1;
        for (size_t i = 0; i < file_count; ++i)
            total += strlen(files[i]) + 16 + sizes[i];
        char *want = malloc(total), *p = want;
        FUZZ_CHECK(want != NULL, "out of memory");
        p += sprintf(p, "%s", prelude);
        for (size_t i = 0; i < file_count; ++i) {
            p += sprintf(p, "#line 1 \"%s\"\n", files[i]);
            memcpy(p, contents[i], sizes[i]);
            p += sizes[i];
            *p++ = '\n';
        }
        *p = '\0';
        FUZZ_CHECK(strlen(out) == (size_t)(p - want) && memcmp(out, want, (size_t)(p - want) + 1) == 0,
                   "the loaded source (%zu bytes) differs from the files (%zu bytes)", strlen(out), (size_t)(p - want));
        free(want);
    } else {
        FUZZ_CHECK(st == WL_ERROR_KERNEL_SOURCE, "status %d (%s), want WL_ERROR_KERNEL_SOURCE", st, ctx->error);
        FUZZ_CHECK(out == NULL, "output on failure");
        FUZZ_CHECK(ctx->error[0] != '\0', "no message on failure");
    }
    free(out);
    for (size_t i = 0; i < 16; ++i)
        free(contents[i]);
    if (created) {
        char real[4400];
        snprintf(real, sizeof real, "%s/d%s", base, name);
        remove_tree(real);
    }
    free(ctx);
    return 0;
}
