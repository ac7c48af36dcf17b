/* The numpy export of warploss-train's --export-npy (see export_npy.h). */
#include "export_npy.h"
#include "train_data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* mkdir -p */
static int make_dirs(const char *dir, char *err, size_t err_size)
{
    size_t n = strlen(dir);
    char *p = malloc(n + 1);
    if (!p) {
        td_set_err(err, err_size, "%s: out of memory", dir);
        return -1;
    }
    memcpy(p, dir, n + 1);
    for (size_t k = 1; k <= n; ++k) {
        if (p[k] != '/' && p[k] != '\0')
            continue;
        char saved = p[k];
        p[k] = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            td_set_err(err, err_size, "%s: cannot create the folder %s: %s", dir, p, strerror(errno));
            free(p);
            return -1;
        }
        p[k] = saved;
    }
    free(p);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        td_set_err(err, err_size, "%s: not a folder", dir);
        return -1;
    }
    return 0;
}

/* The element types the files hold: numpy's descr and the size in bytes. */
typedef enum npy_type { NPY_F32, NPY_I64, NPY_I32 } npy_type;
static const char *const npy_descr[] = {"<f4", "<i8", "<i4"};
static const int npy_bytes[] = {4, 8, 4};

/* dir/file, malloc'd; NULL with err out of memory. */
static char *join_path(const char *dir, const char *file, char *err, size_t err_size)
{
    size_t plen = strlen(dir) + strlen(file) + 2;
    char *path = malloc(plen);
    if (!path)
        td_set_err(err, err_size, "%s: out of memory", dir);
    else
        snprintf(path, plen, "%s/%s", dir, file);
    return path;
}

/* One .npy file: rows x cols (cols 0: a vector of rows) of type t at data, written little-endian. */
static int write_npy(const char *dir, const char *file, npy_type t, const void *data, size_t rows, size_t cols,
                     char *err, size_t err_size)
{
    char *path = join_path(dir, file, err, err_size);
    if (!path)
        return -1;
    char dict[256], shape[64];
    if (cols)
        snprintf(shape, sizeof shape, "(%zu, %zu)", rows, cols);
    else
        snprintf(shape, sizeof shape, "(%zu,)", rows);
    int dlen = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", npy_descr[t],
                        shape);
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
        td_set_err(err, err_size, "%s: cannot create: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    int failed = fwrite(head, 1, total, f) != total;
    const size_t n = rows * (cols ? cols : 1);
    const int bytes = npy_bytes[t];
    unsigned char buf[4096];
    size_t used = 0;
    for (size_t k = 0; k < n && !failed; ++k) {
        uint64_t v;
        if (t == NPY_F32) {
            uint32_t bits;
            memcpy(&bits, (const float *)data + k, 4);
            v = bits;
        } else if (t == NPY_I32) {
            v = (uint32_t)((const int32_t *)data)[k];
        } else {
            v = (uint64_t)((const int64_t *)data)[k];
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
        td_set_err(err, err_size, "%s: write failed: %s", path, strerror(saved_errno ? saved_errno : EIO));
        remove(path);
    }
    free(path);
    return failed ? -1 : 0;
}

int npy_export(const char *dir, const npy_tables *t, char *err, size_t err_size)
{
    if (!dir || !*dir || !t || !t->users || !t->items || !t->biases || !t->user_ids || !t->item_ids) {
        td_set_err(err, err_size, "npy_export: no folder, or the tables or ids are missing");
        return -1;
    }
    if (make_dirs(dir, err, err_size))
        return -1;
    const size_t nu = t->num_users, ni = t->num_items, dim = t->dim;
    if (write_npy(dir, "user_embeddings.npy", NPY_F32, t->users, nu, dim, err, err_size) ||
        write_npy(dir, "item_embeddings.npy", NPY_F32, t->items, ni, dim, err, err_size) ||
        write_npy(dir, "item_biases.npy", NPY_F32, t->biases, ni, 0, err, err_size) ||
        write_npy(dir, "user_ids.npy", NPY_I64, t->user_ids, nu, 0, err, err_size) ||
        write_npy(dir, "item_ids.npy", NPY_I64, t->item_ids, ni, 0, err, err_size))
        return -1;
    return 0;
}

/* The tables of m: wl_model_read, or with representations wl_model_read_representations. */
static int export_tables(const char *dir, wl_model *m, int representations, const int64_t *user_ids,
                         const int64_t *item_ids, char *err, size_t err_size)
{
    wl_model_options o;
    if (!m || wl_model_get_options(m, &o) != WL_SUCCESS) {
        td_set_err(err, err_size, "npy_export_model: no model");
        return -1;
    }
    const size_t nu = o.num_users, ni = o.num_items;
    npy_tables t = {o.num_users, o.num_items, o.dim, NULL, NULL, NULL, user_ids, item_ids};
    float *users = malloc(nu * o.dim * sizeof(float)), *items = malloc(ni * o.dim * sizeof(float)),
          *biases = malloc(ni * sizeof(float));
    wl_status (*read)(wl_model *, wl_table, float *) = representations ? wl_model_read_representations : wl_model_read;
    int rc = -1;
    wl_status st = WL_ERROR_OUT_OF_MEMORY;
    if (users && items && biases && (st = read(m, WL_TABLE_USERS, users)) == WL_SUCCESS &&
        (st = read(m, WL_TABLE_ITEMS, items)) == WL_SUCCESS &&
        (st = read(m, WL_TABLE_ITEM_BIAS, biases)) == WL_SUCCESS) {
        t.users = users;
        t.items = items;
        t.biases = biases;
        rc = npy_export(dir, &t, err, err_size);
    } else {
        td_set_err(err, err_size, "%s: cannot read the tables back from the device: %s", dir, wl_status_string(st));
    }
    free(users);
    free(items);
    free(biases);
    return rc;
}

int npy_export_model(const char *dir, wl_model *m, const int64_t *user_ids, const int64_t *item_ids, char *err,
                     size_t err_size)
{
    return export_tables(dir, m, 0, user_ids, item_ids, err, err_size);
}

/* side's feature names, one a line, in dir/SIDE_feature_names.txt. */
static int write_names(const char *dir, const char *file, char *const *names, size_t n, char *err, size_t err_size)
{
    char *path = join_path(dir, file, err, err_size);
    if (!path)
        return -1;
    FILE *f = fopen(path, "wb");
    int failed = !f;
    for (size_t k = 0; k < n && !failed; ++k)
        failed = fputs(names[k], f) < 0 || fputc('\n', f) == EOF;
    int saved_errno = errno;
    if (f && fclose(f) != 0 && !failed) {
        failed = 1;
        saved_errno = errno;
    }
    if (failed) {
        td_set_err(err, err_size, "%s: cannot write: %s", path, strerror(saved_errno ? saved_errno : EIO));
        if (f)
            remove(path);
    }
    free(path);
    return failed ? -1 : 0;
}

/* A side's feature tables, matrix and names (see export_npy.h). */
static int export_side(const char *dir, wl_model *m, wl_table side, uint32_t rows, uint32_t features, uint32_t dim,
                       char *const *names, char *err, size_t err_size)
{
    const char *s = side == WL_TABLE_USERS ? "user" : "item";
    const uint64_t *indptr;
    const int32_t *indices;
    const float *data;
    float *table = malloc((size_t)features * dim * sizeof(float));
    float *biases = side == WL_TABLE_ITEMS ? malloc((size_t)features * sizeof(float)) : NULL;
    wl_status st = WL_ERROR_OUT_OF_MEMORY;
    int rc = -1;
    char file[64];
    if (!table || (side == WL_TABLE_ITEMS && !biases) || (st = wl_model_read(m, side, table)) != WL_SUCCESS ||
        (biases && (st = wl_model_read(m, WL_TABLE_ITEM_BIAS, biases)) != WL_SUCCESS) ||
        (st = wl_model_get_features(m, side, &indptr, &indices, &data)) != WL_SUCCESS) {
        td_set_err(err, err_size, "%s: cannot read the %s feature tables back from the device: %s", dir, s,
                   wl_status_string(st));
        goto done;
    }
    snprintf(file, sizeof file, "%s_feature_embeddings.npy", s);
    if (write_npy(dir, file, NPY_F32, table, features, dim, err, err_size))
        goto done;
    snprintf(file, sizeof file, "%s_feature_biases.npy", s);
    if (biases && write_npy(dir, file, NPY_F32, biases, features, 0, err, err_size))
        goto done;
    snprintf(file, sizeof file, "%s_features_indptr.npy", s);
    if (write_npy(dir, file, NPY_I64, indptr, (size_t)rows + 1, 0, err, err_size))
        goto done;
    snprintf(file, sizeof file, "%s_features_indices.npy", s);
    if (write_npy(dir, file, NPY_I32, indices, indptr[rows], 0, err, err_size))
        goto done;
    snprintf(file, sizeof file, "%s_features_data.npy", s);
    if (write_npy(dir, file, NPY_F32, data, indptr[rows], 0, err, err_size))
        goto done;
    snprintf(file, sizeof file, "%s_feature_names.txt", s);
    if (names && write_names(dir, file, names, features, err, err_size))
        goto done;
    rc = 0;
done:
    free(table);
    free(biases);
    return rc;
}

int npy_export_model_features(const char *dir, wl_model *m, const int64_t *user_ids, const int64_t *item_ids,
                              char *const *user_names, char *const *item_names, char *err, size_t err_size)
{
    wl_model_options o;
    if (!m || wl_model_get_options(m, &o) != WL_SUCCESS) {
        td_set_err(err, err_size, "npy_export_model_features: no model");
        return -1;
    }
    if (export_tables(dir, m, 1, user_ids, item_ids, err, err_size))
        return -1;
    if (o.num_user_features &&
        export_side(dir, m, WL_TABLE_USERS, o.num_users, o.num_user_features, o.dim, user_names, err, err_size))
        return -1;
    if (o.num_item_features &&
        export_side(dir, m, WL_TABLE_ITEMS, o.num_items, o.num_item_features, o.dim, item_names, err, err_size))
        return -1;
    return 0;
}
