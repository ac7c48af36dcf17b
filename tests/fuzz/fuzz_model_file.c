/*
 * The model file reader (tools/model_file.h, mf_parse) on arbitrary bytes:
 * it never reads out of bounds or crashes; a refusal comes with a message
 * naming the input; an accepted input is a consistent model (its size is
 * mf_file_size of its options, the tables finite) and writing it again gives
 * the same bytes. Each input is tried as it is and, when long enough, with
 * its last 8 bytes replaced by the right checksum, so that the fuzzer gets
 * past the checksum to the checks behind it.
 */
#include <math.h>

#include "fuzz.h"
#include "model_file.h"

static unsigned long inputs, accepted;

static void report(void) { fprintf(stderr, "fuzz_model_file: %lu inputs tried, %lu accepted\n", inputs, accepted); }

static void try_parse(const uint8_t *data, size_t size)
{
    mf_model m;
    char err[512] = "";
    ++inputs;
    if (mf_parse(data, size, &m, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != '\0', "refused without a message");
        FUZZ_CHECK(strstr(err, "(memory)") != NULL, "the message does not name the input: %s", err);
        FUZZ_CHECK(m.users == NULL && m.user_ids == NULL, "a refused input left arrays behind");
        return;
    }
    ++accepted;
    FUZZ_CHECK(mf_file_size(&m.options) == size, "accepted %zu bytes for a model of %zu", size,
               mf_file_size(&m.options));
    FUZZ_CHECK((m.users_state != NULL) == (m.options.optimizer == WL_OPTIMIZER_ADAGRAD), "state and optimizer");
    const size_t nu = m.options.num_users, ni = m.options.num_items, d = m.options.dim;
    for (size_t k = 0; k < nu * d; ++k)
        FUZZ_CHECK(isfinite(m.users[k]), "users[%zu] not finite", k);
    for (size_t k = 0; k < ni; ++k)
        FUZZ_CHECK(isfinite(m.biases[k]) && (m.options.item_bias || m.biases[k] == 0.0f), "biases[%zu]", k);
    unsigned char *again = NULL;
    size_t again_size = 0;
    FUZZ_CHECK(mf_serialize(&m, &again, &again_size, err, sizeof err) == 0, "mf_serialize: %s", err);
    FUZZ_CHECK(again_size == size && memcmp(again, data, size) == 0, "the round trip changed the bytes");
    free(again);
    mf_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int registered;
    if (!registered) {
        registered = 1;
        atexit(report);
    }
    try_parse(data, size);
    if (size >= MF_HEADER_SIZE + 8) {
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
