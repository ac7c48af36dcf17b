/*
 * The library's model file parser (src/model_file.c, wl_model_file_parse) on
 * arbitrary bytes: it never reads out of bounds or crashes; a refusal comes
 * with a message and leaves nothing allocated; an accepted input is a
 * consistent model (options a model can have, finite tables, positive
 * accumulators exactly with Adagrad, a valid known-positive CSR, application
 * bytes inside the input), packing it gives a version 2 file that parses back
 * to the same content, and a version 2 input without unknown sections packs
 * back to the same bytes. Each input is tried as it is and, when long enough,
 * with its last 8 bytes replaced by the right checksum, so that the fuzzer
 * gets past the checksum to the checks behind it.
 */
#include <math.h>

#include "fuzz.h"
#include "model.h"

static unsigned long inputs, accepted;

static void report(void) { fprintf(stderr, "fuzz_model_file: %lu inputs tried, %lu accepted\n", inputs, accepted); }

static size_t table_count(const wl_model_options *o, int t)
{
    return t == 0 ? (size_t)o->num_users * o->dim : t == 1 ? (size_t)o->num_items * o->dim : o->num_items;
}

/* a and b hold the same model, bit for bit */
static void check_same(const wl_model_file *a, const wl_model_file *b)
{
    FUZZ_CHECK(memcmp(&a->options, &b->options, sizeof a->options) == 0, "the options changed");
    for (int t = 0; t < 3; ++t) {
        const size_t n = table_count(&a->options, t) * sizeof(float);
        FUZZ_CHECK(memcmp(a->table[t], b->table[t], n) == 0, "table %d changed", t);
        FUZZ_CHECK((a->state[t] == NULL) == (b->state[t] == NULL), "state %d present in one only", t);
        FUZZ_CHECK(!a->state[t] || memcmp(a->state[t], b->state[t], n) == 0, "state %d changed", t);
    }
    const size_t users = a->options.num_users;
    FUZZ_CHECK(memcmp(a->known_ptr, b->known_ptr, (users + 1) * sizeof(uint64_t)) == 0, "indptr changed");
    FUZZ_CHECK(a->known_ptr[users] == 0 ||
                   memcmp(a->known_items, b->known_items, (size_t)a->known_ptr[users] * sizeof(int32_t)) == 0,
               "known positives changed");
    FUZZ_CHECK(a->app_size == b->app_size && (!a->app_size || memcmp(a->app, b->app, a->app_size) == 0),
               "application bytes changed");
}

static void try_parse(const uint8_t *data, size_t size)
{
    wl_model_file f;
    char err[512] = "";
    ++inputs;
    const wl_status st = wl_model_file_parse(data, size, &f, err, sizeof err);
    if (st != WL_SUCCESS) {
        FUZZ_CHECK(st == WL_ERROR_FILE || st == WL_ERROR_OUT_OF_MEMORY, "refused with status %d", (int)st);
        FUZZ_CHECK(err[0] != '\0', "refused without a message");
        FUZZ_CHECK(f.table[0] == NULL && f.known_ptr == NULL && f.app_owned == NULL,
                   "a refused input left arrays behind");
        return;
    }
    ++accepted;
    const wl_model_options *o = &f.options;
    FUZZ_CHECK(f.version == 1 || f.version == 2, "version %u", (unsigned)f.version);
    FUZZ_CHECK(o->num_users >= 1 && o->num_items >= 2 && o->dim >= 1, "sizes");
    FUZZ_CHECK((f.state[0] != NULL) == (o->optimizer == WL_OPTIMIZER_ADAGRAD), "state and optimizer");
    for (int t = 0; t < 3; ++t)
        for (size_t k = 0; k < table_count(o, t); ++k) {
            FUZZ_CHECK(isfinite(f.table[t][k]), "table %d [%zu] not finite", t, k);
            FUZZ_CHECK(!f.state[t] || (isfinite(f.state[t][k]) && f.state[t][k] > 0.0f), "state %d [%zu]", t, k);
        }
    for (size_t k = 0; k < o->num_items; ++k)
        FUZZ_CHECK(o->item_bias || f.table[2][k] == 0.0f, "a bias without item_bias");
    for (uint32_t u = 0; u < o->num_users; ++u)
        for (uint64_t k = f.known_ptr[u]; k < f.known_ptr[u + 1]; ++k)
            FUZZ_CHECK(f.known_items[k] >= 0 && (uint32_t)f.known_items[k] < o->num_items &&
                           (k == f.known_ptr[u] || f.known_items[k] > f.known_items[k - 1]),
                       "known positive %llu", (unsigned long long)k);
    FUZZ_CHECK(f.version == 1 || f.app_size == 0 || (f.app >= data && f.app + f.app_size <= data + size),
               "application bytes outside the input");

    unsigned char *again = NULL;
    size_t again_size = 0;
    FUZZ_CHECK(wl_model_file_pack(&f, &again, &again_size, err, sizeof err) == WL_SUCCESS, "pack: %s", err);
    if (f.version == 2 && f.skipped == 0)
        FUZZ_CHECK(again_size == size && memcmp(again, data, size) == 0, "the round trip changed the bytes");
    wl_model_file back;
    FUZZ_CHECK(wl_model_file_parse(again, again_size, &back, err, sizeof err) == WL_SUCCESS, "packed bytes: %s", err);
    FUZZ_CHECK(back.version == 2 && back.skipped == 0, "packed bytes are not plain version 2");
    check_same(&f, &back);
    wl_model_file_free(&back);
    free(again);
    wl_model_file_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int registered;
    if (!registered) {
        registered = 1;
        atexit(report);
    }
    try_parse(data, size);
    if (size >= 24) {
        uint8_t *copy = malloc(size);
        if (!copy)
            return 0;
        memcpy(copy, data, size);
        uint64_t h = 0xcbf29ce484222325ull;
        for (size_t i = 0; i + 8 < size; ++i) {
            h ^= copy[i];
            h *= 0x100000001b3ull;
        }
        for (int i = 0; i < 8; ++i)
            copy[size - 8 + (size_t)i] = (uint8_t)(h >> (8 * i));
        try_parse(copy, size);
        free(copy);
    }
    return 0;
}
