/* The numpy export of warploss-train's --export-npy (see export_npy.h). */
#include "export_npy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    if (!err || !err_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* mkdir -p */
static int make_dirs(const char *dir, char *err, size_t err_size)
{
    size_t n = strlen(dir);
    char *p = malloc(n + 1);
    if (!p) {
        set_err(err, err_size, "%s: out of memory", dir);
        return -1;
    }
    memcpy(p, dir, n + 1);
    for (size_t k = 1; k <= n; ++k) {
        if (p[k] != '/' && p[k] != '\0')
            continue;
        char saved = p[k];
        p[k] = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            set_err(err, err_size, "%s: cannot create the folder %s: %s", dir, p, strerror(errno));
            free(p);
            return -1;
        }
        p[k] = saved;
    }
    free(p);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        set_err(err, err_size, "%s: not a folder", dir);
        return -1;
    }
    return 0;
}

/* One .npy file: rows x cols (cols 0: a vector of rows), f32 or i64 data. */
static int write_npy(const char *dir, const char *file, const float *f32, const int64_t *i64, size_t rows, size_t cols,
                     char *err, size_t err_size)
{
    size_t plen = strlen(dir) + strlen(file) + 2;
    char *path = malloc(plen);
    if (!path) {
        set_err(err, err_size, "%s: out of memory", dir);
        return -1;
    }
    snprintf(path, plen, "%s/%s", dir, file);
    char dict[256], shape[64];
    if (cols)
        snprintf(shape, sizeof shape, "(%zu, %zu)", rows, cols);
    else
        snprintf(shape, sizeof shape, "(%zu,)", rows);
    int dlen = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                        f32 ? "<f4" : "<i8", shape);
    /* magic (6) + version (2) + header length (2) + dict + spaces + '\n', a multiple of 64 */
    size_t total = 10 + (size_t)dlen + 1;
    total = (total + 63) / 64 * 64;
    size_t header_len = total - 10;
    unsigned char head[320];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    head[8] = (unsigned char)(header_len & 0xff);
    head[9] = (unsigned char)(header_len >> 8);
    memcpy(head + 10, dict, (size_t)dlen);
    memset(head + 10 + dlen, ' ', total - 10 - (size_t)dlen - 1);
    head[total - 1] = '\n';
    FILE *f = fopen(path, "wb");
    if (!f) {
        set_err(err, err_size, "%s: cannot create: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    int failed = fwrite(head, 1, total, f) != total;
    const size_t n = rows * (cols ? cols : 1);
    unsigned char buf[4096];
    size_t used = 0;
    for (size_t k = 0; k < n && !failed; ++k) {
        uint64_t v;
        int bytes;
        if (f32) {
            uint32_t bits;
            memcpy(&bits, &f32[k], 4);
            v = bits;
            bytes = 4;
        } else {
            v = (uint64_t)i64[k];
            bytes = 8;
        }
        for (int i = 0; i < bytes; ++i)
            buf[used++] = (unsigned char)(v >> (8 * i));
        if (used + 8 > sizeof buf) {
            failed = fwrite(buf, 1, used, f) != used;
            used = 0;
        }
    }
    if (!failed && used)
        failed = fwrite(buf, 1, used, f) != used;
    int saved_errno = errno;
    if (fclose(f) != 0 && !failed) {
        failed = 1;
        saved_errno = errno;
    }
    if (failed) {
        set_err(err, err_size, "%s: write failed: %s", path, strerror(saved_errno ? saved_errno : EIO));
        remove(path);
    }
    free(path);
    return failed ? -1 : 0;
}

int npy_export(const char *dir, const npy_tables *t, char *err, size_t err_size)
{
    if (!dir || !*dir || !t || !t->users || !t->items || !t->biases || !t->user_ids || !t->item_ids) {
        set_err(err, err_size, "npy_export: no folder, or the tables or ids are missing");
        return -1;
    }
    if (make_dirs(dir, err, err_size))
        return -1;
    const size_t nu = t->num_users, ni = t->num_items, dim = t->dim;
    if (write_npy(dir, "user_embeddings.npy", t->users, NULL, nu, dim, err, err_size) ||
        write_npy(dir, "item_embeddings.npy", t->items, NULL, ni, dim, err, err_size) ||
        write_npy(dir, "item_biases.npy", t->biases, NULL, ni, 0, err, err_size) ||
        write_npy(dir, "user_ids.npy", NULL, t->user_ids, nu, 0, err, err_size) ||
        write_npy(dir, "item_ids.npy", NULL, t->item_ids, ni, 0, err, err_size))
        return -1;
    return 0;
}

int npy_export_model(const char *dir, wl_model *m, const int64_t *user_ids, const int64_t *item_ids, char *err,
                     size_t err_size)
{
    wl_model_options o;
    if (!m || wl_model_get_options(m, &o) != WL_SUCCESS) {
        set_err(err, err_size, "npy_export_model: no model");
        return -1;
    }
    const size_t nu = o.num_users, ni = o.num_items;
    npy_tables t = {o.num_users, o.num_items, o.dim, NULL, NULL, NULL, user_ids, item_ids};
    float *users = malloc(nu * o.dim * sizeof(float)), *items = malloc(ni * o.dim * sizeof(float)),
          *biases = malloc(ni * sizeof(float));
    int rc = -1;
    wl_status st = WL_ERROR_OUT_OF_MEMORY;
    if (users && items && biases && (st = wl_model_read(m, WL_TABLE_USERS, users)) == WL_SUCCESS &&
        (st = wl_model_read(m, WL_TABLE_ITEMS, items)) == WL_SUCCESS &&
        (st = wl_model_read(m, WL_TABLE_ITEM_BIAS, biases)) == WL_SUCCESS) {
        t.users = users;
        t.items = items;
        t.biases = biases;
        rc = npy_export(dir, &t, err, err_size);
    } else {
        set_err(err, err_size, "%s: cannot read the tables back from the device: %s", dir, wl_status_string(st));
    }
    free(users);
    free(items);
    free(biases);
    return rc;
}
