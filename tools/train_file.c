/*
 * What warploss-train keeps in a model file besides the model (train_file.h):
 * the application bytes of wl_model_save, written and checked byte by byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "train_file.h"

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; ++i)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The feature names section after the ids (a model with features): "WLTNAMES", then per side (users, items) u64
 * identity, u64 count and u64 bytes of the names stored (the identity's are not: they follow from the ids), then
 * the users' names and the items' names, each NUL-terminated. */
static const char names_tag[8] = {'W', 'L', 'T', 'N', 'A', 'M', 'E', 'S'};

/* The names stored of a side: after the identity's. */
static uint32_t first_stored(const train_names *n, size_t rows) { return n->identity ? (uint32_t)rows : 0; }

static size_t names_bytes(const train_names *n, size_t rows)
{
    size_t bytes = 0;
    for (uint32_t k = first_stored(n, rows); k < n->num_features; ++k)
        bytes += strlen(n->names[k]) + 1;
    return bytes;
}

unsigned char *train_app_bytes(uint64_t epochs_done, uint64_t batches_done, const td_dataset *d,
                               const train_names *users, const train_names *items, size_t *size)
{
    const size_t nu = d->num_users, ni = d->num_items;
    const train_names none = {0, 0, NULL};
    users = users ? users : &none;
    items = items ? items : &none;
    const int with_names = users->num_features || items->num_features;
    const size_t ub = with_names ? names_bytes(users, nu) : 0, ib = with_names ? names_bytes(items, ni) : 0;
    *size = 16 + 8 * (nu + ni) + (with_names ? 8 + 48 + ub + ib : 0);
    unsigned char *app = cli_alloc(*size), *p = app + 16;
    put_le64(app, epochs_done);
    put_le64(app + 8, batches_done);
    for (size_t u = 0; u < nu; ++u, p += 8)
        put_le64(p, (uint64_t)d->user_ids[u]);
    for (size_t i = 0; i < ni; ++i, p += 8)
        put_le64(p, (uint64_t)d->item_ids[i]);
    if (!with_names)
        return app;
    memcpy(p, names_tag, 8);
    p += 8;
    const train_names *sides[2] = {users, items};
    const size_t rows[2] = {nu, ni}, bytes[2] = {ub, ib};
    for (int k = 0; k < 2; ++k, p += 24) {
        put_le64(p, (uint64_t)(sides[k]->num_features && sides[k]->identity));
        put_le64(p + 8, sides[k]->num_features - first_stored(sides[k], rows[k]));
        put_le64(p + 16, bytes[k]);
    }
    for (int k = 0; k < 2; ++k)
        for (uint32_t j = first_stored(sides[k], rows[k]); j < sides[k]->num_features; ++j) {
            const size_t len = strlen(sides[k]->names[j]) + 1;
            memcpy(p, sides[k]->names[j], len);
            p += len;
        }
    return app;
}

void train_progress_ids_free(train_progress_ids *p)
{
    train_names *sides[2] = {&p->user_names, &p->item_names};
    for (int k = 0; k < 2; ++k) {
        if (sides[k]->names)
            for (uint32_t j = 0; j < sides[k]->num_features; ++j)
                free(sides[k]->names[j]);
        free(sides[k]->names);
    }
    free(p->user_ids);
    free(p->item_ids);
    memset(p, 0, sizeof *p);
}

/* The names section at p (size bytes) for sides of rows[k] rows and features[k] features: 0, or -1 with err. */
static int read_names(const char *path, const unsigned char *p, size_t size, const size_t rows[2],
                      const int64_t *const ids[2], const uint32_t features[2], train_progress_ids *out, char *err,
                      size_t err_size)
{
    static const char *const side_name[2] = {"user", "item"};
    train_names *sides[2] = {&out->user_names, &out->item_names};
    if (size < 8 + 48 || memcmp(p, names_tag, 8)) {
        snprintf(err, err_size, "%s: the application bytes after the ids are not warploss-train's feature names", path);
        return -1;
    }
    uint64_t identity[2], count[2], bytes[2];
    for (int k = 0; k < 2; ++k) {
        identity[k] = get_le64(p + 8 + 24 * k);
        count[k] = get_le64(p + 16 + 24 * k);
        bytes[k] = get_le64(p + 24 + 24 * k);
    }
    const unsigned char *q = p + 56;
    size_t left = size - 56;
    for (int k = 0; k < 2; ++k) {
        const uint64_t want = identity[k] ? count[k] + rows[k] : count[k];
        if (identity[k] > 1 || bytes[k] > left || want != features[k] || count[k] > bytes[k]) {
            snprintf(err, err_size,
                     "%s: the %s feature names do not fit the model (%llu names%s for %u features, %llu bytes of "
                     "%zu): the file is damaged",
                     path, side_name[k], (unsigned long long)count[k], identity[k] ? " and the identity" : "",
                     features[k], (unsigned long long)bytes[k], left);
            return -1;
        }
        /* Exactly count[k] names, each NUL-terminated. */
        size_t nuls = 0;
        for (uint64_t j = 0; j < bytes[k]; ++j)
            nuls += q[j] == 0;
        if (nuls != count[k] || (bytes[k] && q[bytes[k] - 1] != 0)) {
            snprintf(err, err_size, "%s: the %s feature names are not %llu NUL-terminated names: the file is damaged",
                     path, side_name[k], (unsigned long long)count[k]);
            return -1;
        }
        sides[k]->num_features = features[k];
        sides[k]->identity = identity[k] != 0;
        sides[k]->names = cli_alloc((features[k] ? features[k] : 1) * sizeof(char *));
        uint32_t j = 0;
        if (identity[k])
            for (; j < rows[k]; ++j) {
                char buf[32];
                snprintf(buf, sizeof buf, "%s:%lld", side_name[k], (long long)ids[k][j]);
                sides[k]->names[j] = cli_alloc(strlen(buf) + 1);
                memcpy(sides[k]->names[j], buf, strlen(buf) + 1);
            }
        for (; j < features[k]; ++j) { /* count[k] names: their NULs were counted above */
            const size_t len = strlen((const char *)q) + 1;
            sides[k]->names[j] = cli_alloc(len);
            memcpy(sides[k]->names[j], q, len);
            q += len;
        }
        left -= bytes[k];
    }
    if (left) {
        snprintf(err, err_size, "%s: %zu bytes after the feature names: the file is damaged", path, left);
        return -1;
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The first id that appears twice in ids[0 .. n), in *dup; 0 if they are distinct. */
static int find_duplicate(const int64_t *ids, size_t n, int64_t *dup)
{
    int64_t *sorted = cli_alloc(n * sizeof *sorted + 1);
    memcpy(sorted, ids, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_i64);
    int found = 0;
    for (size_t k = 1; k < n && !found; ++k)
        if (sorted[k] == sorted[k - 1])
            found = 1, *dup = sorted[k];
    free(sorted);
    return found;
}

int train_read_app_bytes(const char *path, const unsigned char *app, size_t size, size_t nu, size_t ni, uint32_t nuf,
                         uint32_t nif, train_progress_ids *out, char *err, size_t err_size)
{
    const size_t want = 16 + 8 * (nu + ni);
    memset(out, 0, sizeof *out);
    if (size < want || (size > want && !nuf && !nif) || (size == want && (nuf || nif))) {
        snprintf(err, err_size,
                 "%s: %zu application bytes, but warploss-train's model of %zu users and %zu items has %s%zu (not a "
                 "model saved by warploss-train?)",
                 path, size, nu, ni, nuf || nif ? "more than " : "", want);
        return -1;
    }
    out->epochs_done = get_le64(app);
    out->batches_done = get_le64(app + 8);
    out->user_ids = cli_alloc(nu * sizeof(int64_t) + 1);
    out->item_ids = cli_alloc(ni * sizeof(int64_t) + 1);
    const unsigned char *p = app + 16;
    for (size_t u = 0; u < nu; ++u, p += 8)
        out->user_ids[u] = (int64_t)get_le64(p);
    for (size_t i = 0; i < ni; ++i, p += 8)
        out->item_ids[i] = (int64_t)get_le64(p);
    int64_t dup;
    for (int items = 0; items < 2; ++items) {
        if (find_duplicate(items ? out->item_ids : out->user_ids, items ? ni : nu, &dup)) {
            snprintf(err, err_size, "%s: %s id %lld appears more than once: the file is damaged", path,
                     items ? "item" : "user", (long long)dup);
            train_progress_ids_free(out);
            return -1;
        }
    }
    if (size > want) {
        const size_t rows[2] = {nu, ni};
        const int64_t *const ids[2] = {out->user_ids, out->item_ids};
        const uint32_t features[2] = {nuf, nif};
        if (read_names(path, app + want, size - want, rows, ids, features, out, err, err_size)) {
            train_progress_ids_free(out);
            return -1;
        }
    }
    return 0;
}
