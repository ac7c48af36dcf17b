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

unsigned char *train_app_bytes(uint64_t epochs_done, uint64_t batches_done, const td_dataset *d, size_t *size)
{
    const size_t nu = d->num_users, ni = d->num_items;
    *size = 16 + 8 * (nu + ni);
    unsigned char *app = cli_alloc(*size), *p = app + 16;
    put_le64(app, epochs_done);
    put_le64(app + 8, batches_done);
    for (size_t u = 0; u < nu; ++u, p += 8)
        put_le64(p, (uint64_t)d->user_ids[u]);
    for (size_t i = 0; i < ni; ++i, p += 8)
        put_le64(p, (uint64_t)d->item_ids[i]);
    return app;
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

int train_read_app_bytes(const char *path, const unsigned char *app, size_t size, size_t nu, size_t ni,
                         train_progress_ids *out, char *err, size_t err_size)
{
    const size_t want = 16 + 8 * (nu + ni);
    memset(out, 0, sizeof *out);
    if (size != want) {
        snprintf(err, err_size,
                 "%s: %zu application bytes, but warploss-train's model of %zu users and %zu items has %zu (not a "
                 "model saved by warploss-train?)",
                 path, size, nu, ni, want);
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
            return -1;
        }
    }
    return 0;
}
