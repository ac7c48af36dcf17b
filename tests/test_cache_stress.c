/*
 * Files and caches under stress: a cache folder nothing can be written to,
 * many randomly damaged cache entries (truncated, bytes flipped, appended,
 * replaced), two processes filling the same empty cache at once (10
 * rounds), and kernel folders with an unreadable, special or broken file.
 * The work always succeeds or fails with the documented status, nothing
 * corrupt is ever loaded from the cache, and the results always equal the
 * C reference.
 *
 * Tests run as root on CI, where chmod does not stop writes or reads: an
 * unwritable folder is made immutable instead (FS_IMMUTABLE_FL) when the
 * file system allows it, and each sub-check that cannot be arranged prints
 * a note and is skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/fs.h>
#endif

#include "common.h"
#include "reference.h"

static char *scratch;     /* everything this program writes */
static char *locked_path; /* a folder made immutable, to unlock at teardown */

/* ------------------------------------------------------------ helpers */

static char *scratch_dir(const char *name)
{
    char *p = wlt_join(scratch, name);
    if (mkdir(p, 0700) != 0)
        fail_msg("mkdir %s: %s", p, strerror(errno));
    return p;
}

/* Results checked on a small case (wlt_results_ok), here and in the child processes. */
#define RESULTS_OK(c) wlt_results_ok((c), 37, 29, 41)

/* Create with the on-disk kernels and this cache: must succeed with right
 * results; returns whether the program came from the cache. */
static int create_ok(const char *cache_dir, const char *label)
{
    wl_context *c = NULL;
    const wl_status s = wlt_create(WL_TEST_KERNEL_DIR, cache_dir, &c);
    if (s != WL_SUCCESS)
        fail_msg("%s: %s: %s", label, wl_status_string(s), wl_context_last_error(NULL));
    const int from_cache = wl_context_program_from_cache(c);
    if (!RESULTS_OK(c))
        fail_msg("%s: results differ from the reference (program from cache: %d)", label, from_cache);
    wl_context_destroy(c);
    return from_cache;
}

/* The one regular file in dir (malloc'd path), or NULL if there is not exactly one. */
static char *only_file(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    char *found = NULL;
    *count = 0;
    if (!d)
        return NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        ++*count;
        free(found);
        found = wlt_join(dir, e->d_name);
    }
    closedir(d);
    if (*count != 1) {
        free(found);
        return NULL;
    }
    return found;
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    const long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = wlt_alloc((size_t)len);
    if (fread(data, 1, (size_t)len, f) != (size_t)len)
        fail_msg("read %s", path);
    fclose(f);
    *size = (size_t)len;
    return data;
}

static void write_all(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail_msg("open %s: %s", path, strerror(errno));
    if (size && fwrite(data, 1, size, f) != size)
        fail_msg("write %s", path);
    if (fclose(f) != 0)
        fail_msg("close %s", path);
}

/* Whether a new file can be made in dir. */
static int writable(const char *dir)
{
    char *probe = wlt_join(dir, "probe");
    const int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd >= 0) {
        close(fd);
        unlink(probe);
    }
    free(probe);
    return fd >= 0;
}

/* Make dir unwritable: chmod 0500, or (root) the immutable flag. 1 on success. */
static int lock_dir(const char *dir)
{
    if (geteuid() != 0) {
        chmod(dir, 0500);
        return !writable(dir);
    }
#if defined(__linux__) && defined(FS_IOC_SETFLAGS)
    const int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int flags = 0, ok = 0;
    if (fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
        flags |= FS_IMMUTABLE_FL;
        ok = ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
    }
    if (fd >= 0)
        close(fd);
    if (ok) {
        free(locked_path);
        locked_path = strdup(dir);
    }
    return ok && !writable(dir);
#else
    return 0;
#endif
}

static void unlock_dir(const char *dir)
{
    chmod(dir, 0700);
#if defined(__linux__) && defined(FS_IOC_SETFLAGS)
    const int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int flags = 0;
    if (fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_IMMUTABLE_FL)) {
        flags &= ~FS_IMMUTABLE_FL;
        ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
    if (fd >= 0)
        close(fd);
#endif
    if (locked_path && strcmp(locked_path, dir) == 0) {
        free(locked_path);
        locked_path = NULL;
    }
}

/* ------------------------------------------------------------ setup */

static int group_setup(void **state)
{
    (void)state;
    wl_context_destroy(wlt_context_or_skip(""));
    scratch = wlt_temp_dir("cache-stress");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (locked_path)
        unlock_dir(locked_path);
    wlt_free_temp_dir(&scratch);
    return 0;
}

/* ------------------------------------------------------------ unwritable cache */

static void test_unwritable_cache(void **state)
{
    (void)state;
    /* a folder that nobody, root included, can create */
    assert_int_equal(create_ok("/proc/self/warploss-cache", "cache under /proc"), 0);
    assert_int_equal(create_ok("/proc/self/warploss-cache", "cache under /proc, again"), 0);

    /* an existing empty folder that cannot be written */
    char *empty = scratch_dir("locked-empty");
    if (lock_dir(empty)) {
        assert_int_equal(create_ok(empty, "unwritable empty cache"), 0);
        assert_int_equal(create_ok(empty, "unwritable empty cache, again"), 0);
        unlock_dir(empty);
        assert_int_equal(wlt_count_files(empty), 0);
    } else {
        printf("note: cannot make a folder unwritable here (euid %d); skipped that sub-check\n", (int)geteuid());
        unlock_dir(empty);
    }

    /* a filled cache made unwritable: still read; a damaged entry there is
     * refused every time (it cannot be deleted or rewritten) */
    char *full = scratch_dir("locked-full");
    assert_int_equal(create_ok(full, "fill"), 0);
    size_t files;
    char *entry = only_file(full, &files);
    if (!entry)
        fail_msg("the cache folder holds %zu files, want 1", files);
    if (lock_dir(full)) {
        assert_int_equal(create_ok(full, "unwritable filled cache"), 1);
        unlock_dir(full);
        size_t size;
        unsigned char *data = read_all(entry, &size);
        data[size / 2] ^= 0x01;
        write_all(entry, data, size);
        free(data);
        assert_true(lock_dir(full));
        assert_int_equal(create_ok(full, "unwritable damaged cache"), 0);
        assert_int_equal(create_ok(full, "unwritable damaged cache, again"), 0);
        unlock_dir(full);
    } else {
        printf("note: cannot make a folder unwritable here; skipped the filled-and-unwritable sub-check\n");
        unlock_dir(full);
    }
    free(entry);
    free(empty);
    free(full);
}

/* ------------------------------------------------------------ damaged entries */

static void test_damaged_entries(void **state)
{
    (void)state;
    enum { VARIANTS = 24 };
    char *dir = scratch_dir("damage");
    assert_int_equal(create_ok(dir, "fill"), 0);
    size_t files;
    char *entry = only_file(dir, &files);
    if (!entry)
        fail_msg("the cache folder holds %zu files, want 1", files);
    size_t size;
    unsigned char *pristine = read_all(entry, &size);
    assert_true(size > 64);
    unsigned char *bad = wlt_alloc(size + 64);
    ref_rng rng;
    ref_rng_seed(&rng, 20240605);
    for (int v = 0; v < VARIANTS; ++v) {
        memcpy(bad, pristine, size);
        size_t bad_size = size;
        const char *how;
        switch (v % 6) {
        case 0: /* truncated anywhere */
            bad_size = (size_t)(ref_rng_next(&rng) % size);
            how = "truncated";
            break;
        case 1: /* one byte flipped anywhere */
            bad[ref_rng_next(&rng) % size] ^= (unsigned char)(1u << (ref_rng_next(&rng) % 8));
            how = "one bit flipped";
            break;
        case 2: /* a few bytes of the header and key */
            for (int i = 0; i < 4; ++i)
                bad[ref_rng_next(&rng) % 64] ^= (unsigned char)(1 + ref_rng_next(&rng) % 255);
            how = "header bytes changed";
            break;
        case 3: /* bytes of the binary */
            for (int i = 0; i < 8; ++i)
                bad[size - 1 - ref_rng_next(&rng) % (size / 2)] ^= (unsigned char)(1 + ref_rng_next(&rng) % 255);
            how = "binary bytes changed";
            break;
        case 4: /* garbage appended */
            bad_size = size + 1 + (size_t)(ref_rng_next(&rng) % 63);
            for (size_t i = size; i < bad_size; ++i)
                bad[i] = (unsigned char)ref_rng_next(&rng);
            how = "appended";
            break;
        default: /* random bytes of the same size */
            for (size_t i = 0; i < size; ++i)
                bad[i] = (unsigned char)ref_rng_next(&rng);
            how = "random";
            break;
        }
        write_all(entry, bad, bad_size);
        char label[96];
        snprintf(label, sizeof label, "damaged entry %d (%s)", v, how);
        if (create_ok(dir, label) != 0)
            fail_msg("%s was loaded from the cache", label);
        /* rebuilt and rewritten: the next one loads */
        if ((v % 6) == 0 && create_ok(dir, label) != 1)
            fail_msg("%s: the entry was not rewritten", label);
    }
    /* a FIFO where the entry was: never waited on, replaced */
    unlink(entry);
    assert_int_equal(mkfifo(entry, 0600), 0);
    alarm(60); /* a read that blocks ends the test program */
    assert_int_equal(create_ok(dir, "a FIFO as the entry"), 0);
    alarm(0);
    assert_int_equal(create_ok(dir, "after the FIFO"), 1);
    printf("%d damaged cache entries refused and rebuilt\n", VARIANTS);
    free(bad);
    free(pristine);
    free(entry);
    free(dir);
}

/* ------------------------------------------------------------ two processes */

/* Child mode: wait for the start signal, build into the cache, check. */
static int child_main(const char *cache_dir, const char *fd_text)
{
    const int fd = atoi(fd_text);
    char byte;
    while (read(fd, &byte, 1) < 0 && errno == EINTR)
        ;
    close(fd);
    wl_context *c = NULL;
    const wl_status s = wlt_create(WL_TEST_KERNEL_DIR, cache_dir, &c);
    if (s != WL_SUCCESS) {
        fprintf(stderr, "child: %s: %s\n", wl_status_string(s), wl_context_last_error(NULL));
        return 1;
    }
    const int ok = RESULTS_OK(c);
    wl_context_destroy(c);
    if (!ok)
        fprintf(stderr, "child: results differ from the reference\n");
    return ok ? 0 : 1;
}

static void test_two_processes(void **state)
{
    (void)state;
    enum { ROUNDS = 10, PROCESSES = 2 };
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        printf("note: /proc/self/exe is not readable; skipped the two-process test\n");
        return;
    }
    self[n] = '\0';
    for (int round = 0; round < ROUNDS; ++round) {
        char name[32];
        snprintf(name, sizeof name, "shared-%d", round);
        char *dir = wlt_join(scratch, name); /* not created: both make it */
        int gate[2];
        assert_int_equal(pipe(gate), 0);
        char fd_text[16];
        snprintf(fd_text, sizeof fd_text, "%d", gate[0]);
        char *const args[] = {self, "--child", dir, fd_text, NULL};
        pid_t pids[PROCESSES];
        fflush(NULL);
        for (int p = 0; p < PROCESSES; ++p) {
            pids[p] = fork();
            assert_true(pids[p] >= 0);
            if (pids[p] == 0) {
                close(gate[1]);
                execv(self, args);
                _exit(127);
            }
        }
        close(gate[0]);
        close(gate[1]); /* both start now */
        for (int p = 0; p < PROCESSES; ++p) {
            int status = 0;
            assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("round %d: process %d ended with status %d", round, p, status);
        }
        size_t files;
        char *entry = only_file(dir, &files);
        if (!entry)
            fail_msg("round %d: the cache folder holds %zu files, want one entry (no temporary left)", round, files);
        free(entry);
        if (create_ok(dir, "after two processes") != 1)
            fail_msg("round %d: the entry written by two processes does not load", round);
        free(dir);
    }
    printf("%d rounds of %d processes filling one cache\n", ROUNDS, PROCESSES);
}

/* ------------------------------------------------------------ kernel folders */

typedef enum spoil {
    SPOIL_UNREADABLE,
    SPOIL_FOLDER,
    SPOIL_DANGLING,
    SPOIL_FIFO,
    SPOIL_HUGE,
    SPOIL_EMPTY,
    SPOIL_GARBAGE,
    SPOIL_COUNT
} spoil;

static const char *const spoil_names[SPOIL_COUNT] = {
    "unreadable (mode 000)", "a folder", "a dangling link", "a FIFO", "over 1 MiB", "empty", "random bytes"};

/* Spoil file (in a kernel folder) as `how`; 0 if that cannot be arranged here. */
static int spoil_file(const char *file, spoil how, ref_rng *rng)
{
    switch (how) {
    case SPOIL_UNREADABLE: {
        assert_int_equal(chmod(file, 0), 0);
        const int fd = open(file, O_RDONLY);
        if (fd >= 0) { /* root reads anyway */
            close(fd);
            return 0;
        }
        return 1;
    }
    case SPOIL_FOLDER:
        assert_int_equal(unlink(file), 0);
        assert_int_equal(mkdir(file, 0700), 0);
        return 1;
    case SPOIL_DANGLING:
        assert_int_equal(unlink(file), 0);
        assert_int_equal(symlink("no-such-file.cl", file), 0);
        return 1;
    case SPOIL_FIFO:
        assert_int_equal(unlink(file), 0);
        assert_int_equal(mkfifo(file, 0600), 0);
        return 1;
    case SPOIL_HUGE: assert_int_equal(truncate(file, (off_t)(2u << 20)), 0); return 1;
    case SPOIL_EMPTY: assert_int_equal(truncate(file, 0), 0); return 1;
    default: {
        unsigned char junk[4096];
        for (size_t i = 0; i < sizeof junk; ++i)
            junk[i] = (unsigned char)ref_rng_next(rng);
        write_all(file, junk, sizeof junk);
        return 1;
    }
    }
}

static void test_kernel_folder(void **state)
{
    (void)state;
    glob_t g = wlt_kernel_sources();
    ref_rng rng;
    ref_rng_seed(&rng, 77);
    size_t tried = 0;
    for (int how = 0; how < SPOIL_COUNT; ++how) {
        for (size_t i = 0; i < g.gl_pathc; ++i) {
            const char *name = wlt_base_name(g.gl_pathv[i]);
            char tag[64];
            snprintf(tag, sizeof tag, "kernels-%d-%zu", how, i);
            char *dir = wlt_copy_kernels(scratch, tag, NULL);
            char *file = wlt_join(dir, name);
            if (!spoil_file(file, (spoil)how, &rng)) {
                if (i == 0)
                    printf("note: a kernel file of mode 000 is still readable here (euid %d); skipped that "
                           "sub-check (a folder, a dangling link and a FIFO in its place are tested)\n",
                           (int)geteuid());
                free(file), free(dir);
                continue;
            }
            ++tried;
            char label[160];
            snprintf(label, sizeof label, "%s %s", name, spoil_names[how]);
            alarm(60); /* a read that blocks ends the test program */
            wl_context *c = NULL;
            const char *msg;
            const wl_status s = wlt_create_feature(dir, "", name, &c, &msg);
            alarm(0);
            const int unreadable = how <= SPOIL_HUGE;
            if (s == WL_SUCCESS) {
                /* only a file whose content is not needed may be spoiled without an error */
                if (unreadable)
                    fail_msg("%s: the context was created", label);
                if (!RESULTS_OK(c))
                    fail_msg("%s: results differ from the reference", label);
                wl_context_destroy(c);
            } else {
                /* a model file fails the model alone; the context and its loss stay */
                if (c && !wlt_is_model_file(name))
                    fail_msg("%s: a failed create gave a context", label);
                if (c && !RESULTS_OK(c))
                    fail_msg("%s: the loss fails after the model failed", label);
                /* random bytes (with NULs) may be refused as a source or fail to compile */
                const wl_status want = unreadable ? WL_ERROR_KERNEL_SOURCE : WL_ERROR_BUILD;
                if (s != want && !(how == SPOIL_GARBAGE && s == WL_ERROR_KERNEL_SOURCE))
                    fail_msg("%s: got %s, want %s: \"%s\"", label, wl_status_string(s), wl_status_string(want), msg);
                if (unreadable && !strstr(msg, name))
                    fail_msg("%s: the message does not name the file: \"%s\"", label, msg);
                if (!msg[0])
                    fail_msg("%s: no message", label);
                wl_context_destroy(c); /* msg is c's */
            }
            chmod(file, 0600);
            free(file);
            free(dir);
        }
        /* the good sources still work */
        assert_int_equal(create_ok("", "after spoiled kernels"), 0);
    }
    globfree(&g);
    printf("%zu spoiled kernel folders\n", tried);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2], argv[3]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unwritable_cache),
        cmocka_unit_test(test_damaged_entries),
        cmocka_unit_test(test_two_processes),
        cmocka_unit_test(test_kernel_folder),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
