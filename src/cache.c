/*
 * The binary cache's file format and file handling. An entry is
 *   "WLBIN001" | u32 key length | key | u64 binary length | u64 checksum | binary
 * (little-endian as written by this host). The key names everything the
 * binary depends on (see program.c); the checksum is over the binary. Any
 * mismatch makes the entry invalid: the caller deletes it and rebuilds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "program.h"

static const char magic[8] = {'W', 'L', 'B', 'I', 'N', '0', '0', '1'};

uint64_t wl_hash64(const void *data, size_t size, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed;
    for (size_t i = 0; i < size; ++i) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

unsigned char *wl_cache_pack(const char *key, const unsigned char *binary, size_t binary_size, size_t *size)
{
    const size_t key_len = strlen(key);
    if (key_len > UINT32_MAX || binary_size > SIZE_MAX - 32 - key_len)
        return NULL;
    const uint32_t k32 = (uint32_t)key_len;
    const uint64_t b64 = binary_size, sum = wl_hash64(binary, binary_size, WL_HASH_SEED);
    *size = sizeof magic + 4 + key_len + 8 + 8 + binary_size;
    unsigned char *out = malloc(*size), *p = out;
    if (!out)
        return NULL;
    memcpy(p, magic, sizeof magic), p += sizeof magic;
    memcpy(p, &k32, 4), p += 4;
    memcpy(p, key, key_len), p += key_len;
    memcpy(p, &b64, 8), p += 8;
    memcpy(p, &sum, 8), p += 8;
    memcpy(p, binary, binary_size);
    return out;
}

int wl_cache_unpack(const unsigned char *data, size_t size, const char *key, const unsigned char **binary,
                    size_t *binary_size)
{
    const size_t key_len = strlen(key);
    uint32_t k32;
    uint64_t b64, sum;
    if (!data || size < sizeof magic + 4 || memcmp(data, magic, sizeof magic) != 0)
        return -1;
    memcpy(&k32, data + sizeof magic, 4);
    size_t at = sizeof magic + 4;
    if (k32 != key_len || size - at < key_len || memcmp(data + at, key, key_len) != 0)
        return -1;
    at += key_len;
    if (size - at < 16)
        return -1;
    memcpy(&b64, data + at, 8);
    memcpy(&sum, data + at + 8, 8);
    at += 16;
    if (b64 == 0 || b64 != size - at || wl_hash64(data + at, size - at, WL_HASH_SEED) != sum)
        return -1;
    *binary = data + at;
    *binary_size = size - at;
    return 0;
}

unsigned char *wl_read_file(const char *path, size_t max, size_t *size)
{
    /* Regular files only: a FIFO (opened without O_NONBLOCK it waits for a
     * writer forever), a device or a folder is refused. */
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    const int stat_ok = fstat(fd, &st) == 0;
    FILE *f = stat_ok && S_ISREG(st.st_mode) ? fdopen(fd, "rb") : NULL;
    if (!f) {
        const int err = !stat_ok || S_ISREG(st.st_mode) ? errno : S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        close(fd);
        errno = err;
        return NULL;
    }
    unsigned char *data = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        len = ftell(f);
    if (len >= 0 && (unsigned long)len > max)
        errno = EFBIG;
    if (len >= 0 && (unsigned long)len <= max && fseek(f, 0, SEEK_SET) == 0) {
        data = malloc((size_t)len + 1);
        if (data && fread(data, 1, (size_t)len, f) != (size_t)len) {
            free(data);
            data = NULL;
        }
    }
    fclose(f);
    if (data) {
        data[len] = 0; /* so text can be used as a string */
        *size = (size_t)len;
    }
    return data;
}

/* mkdir -p; 0 or an errno value */
static int make_dirs(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path)
        return ENAMETOOLONG;
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; ++i) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        const char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return errno;
        path[i] = saved;
    }
    struct stat st;
    if (stat(dir, &st) != 0)
        return errno;
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

int wl_write_file_atomic(const char *path, const void *data, size_t size)
{
    char dir[4096], tmp[4200];
    const char *slash = strrchr(path, '/');
    if (!slash || (size_t)(slash - path) >= sizeof dir)
        return EINVAL;
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    int err = make_dirs(dir);
    if (err)
        return err;
    snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return errno;
    const unsigned char *p = data;
    size_t left = size;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            err = w < 0 ? errno : EIO;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (close(fd) != 0 && !err)
        err = errno;
    if (!err && rename(tmp, path) != 0)
        err = errno;
    if (err)
        unlink(tmp);
    return err;
}
