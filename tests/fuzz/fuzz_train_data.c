/*
 * warploss-train's interaction files (tools/train_data.c): td_read_buffer on
 * any bytes with any options, then td_build on what it read (a seeded
 * hold-out, and the same data as a test file), td_train_weights, and
 * td_build_cold with half the items cold.
 *
 * Input: an options byte (bits 0-2: format, mod 5; bit 3: skip_bad_lines;
 * bit 4: use_min_rating; bits 5-7: the test fraction in eighths), 4 bytes of
 * min_rating (a raw float: NaN and infinities too), then the file's bytes.
 *
 * Checked: no crash, no leak; on success every kept rating is finite (and
 * >= min_rating when asked), the report's counts add up (lines = kept + bad
 * + below the minimum), the format is a concrete one, and the dataset built
 * from it is sorted, unique, disjoint and of the documented sizes; on
 * failure nothing is returned and the message starts with the file name,
 * followed by ": " (file-level: no interactions, out of memory) or by
 * ":LINE: " with LINE within the input.
 */
#include <math.h>

#include "fuzz.h"
#include "train_data.h"

#define NAME "fuzz.csv"

static int before(const int32_t *u, const int32_t *i, size_t a, const int32_t *u2, const int32_t *i2, size_t b)
{
    return u[a] < u2[b] || (u[a] == u2[b] && i[a] < i2[b]);
}

static void check_dataset(const td_dataset *d, const td_interactions *x)
{
    FUZZ_CHECK(d->num_users >= 1 && d->num_items >= 1, "%u users, %u items", d->num_users, d->num_items);
    FUZZ_CHECK(d->train_count + d->test_count + d->train_duplicates <= x->count, "counts");
    for (size_t k = 0; k < d->train_count; ++k) {
        FUZZ_CHECK(d->train_users[k] >= 0 && (uint32_t)d->train_users[k] < d->num_users, "user %d", d->train_users[k]);
        FUZZ_CHECK(d->train_items[k] >= 0 && (uint32_t)d->train_items[k] < d->num_items, "item %d", d->train_items[k]);
        FUZZ_CHECK(!k || before(d->train_users, d->train_items, k - 1, d->train_users, d->train_items, k),
                   "train not sorted or not unique at %zu", k);
    }
    size_t a = 0;
    for (size_t k = 0; k < d->test_count; ++k) {
        FUZZ_CHECK(d->test_users[k] >= 0 && (uint32_t)d->test_users[k] < d->num_users, "test user");
        FUZZ_CHECK(d->test_items[k] >= 0 && (uint32_t)d->test_items[k] < d->num_items, "test item");
        FUZZ_CHECK(!k || before(d->test_users, d->test_items, k - 1, d->test_users, d->test_items, k),
                   "test not sorted or not unique at %zu", k);
        while (a < d->train_count && before(d->train_users, d->train_items, a, d->test_users, d->test_items, k))
            ++a;
        FUZZ_CHECK(!(a < d->train_count && d->train_users[a] == d->test_users[k] &&
                     d->train_items[a] == d->test_items[k]),
                   "test pair %zu is also a training pair", k);
    }
    for (uint32_t u = 0; u < d->num_users; ++u)
        FUZZ_CHECK(td_user_index(d, d->user_ids[u]) == (int32_t)u, "user id %lld", (long long)d->user_ids[u]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader r = {data, size};
    uint8_t flags = fuzz_byte(&r);
    uint32_t bits = (uint32_t)fuzz_u64(&r, 4);
    float min_rating;
    memcpy(&min_rating, &bits, sizeof min_rating);
    td_read_options o = {.format = (td_format)((flags & 7) % 5),
                         .skip_bad_lines = (flags >> 3) & 1,
                         .use_min_rating = (flags >> 4) & 1,
                         .min_rating = min_rating};
    double fraction = (flags >> 5) / 8.0;

    /* An exact-size copy, so that ASan catches a read past the end (the reader must not need a NUL). */
    char *text = malloc(r.left ? r.left : 1);
    FUZZ_CHECK(text, "out of memory");
    size_t n = fuzz_bytes(&r, text, r.left);
    size_t lines = 1;
    for (size_t k = 0; k < n; ++k)
        lines += text[k] == '\n';

    td_interactions x;
    td_read_report rep;
    char err[512] = "";
    int rc = td_read_buffer(NAME, text, n, &o, &x, &rep, err, sizeof err);
    free(text);
    if (rc) {
        FUZZ_CHECK(x.count == 0 && !x.users && !x.items && !x.ratings, "failure left data");
        FUZZ_CHECK(!strncmp(err, NAME ":", sizeof NAME), "message without the name: %s", err);
        const char *p = err + sizeof NAME;
        if (*p == ' ') {
            FUZZ_CHECK(!strncmp(p, " no interactions", 16) || !strncmp(p, " out of memory", 14),
                       "a file-level message that should name a line: %s", err);
        } else {
            size_t line = 0;
            const char *d = p;
            while (*p >= '0' && *p <= '9')
                line = line * 10 + (size_t)(*p++ - '0');
            FUZZ_CHECK(p > d && p[0] == ':' && p[1] == ' ', "no line number: %s", err);
            FUZZ_CHECK(line >= 1 && line <= lines, "line %zu of %zu: %s", line, lines, err);
        }
        return 0;
    }
    FUZZ_CHECK(x.count > 0 && x.users && x.items && x.ratings, "success without interactions");
    FUZZ_CHECK(rep.format != TD_FORMAT_AUTO && (o.format == TD_FORMAT_AUTO || rep.format == o.format), "format %d",
               (int)rep.format);
    FUZZ_CHECK(rep.lines == x.count + rep.bad_lines + rep.below_min, "lines %zu != %zu + %zu + %zu", rep.lines, x.count,
               rep.bad_lines, rep.below_min);
    FUZZ_CHECK(o.skip_bad_lines || rep.bad_lines == 0, "bad lines without skip_bad_lines");
    FUZZ_CHECK((rep.bad_lines == 0) == (rep.first_bad == 0), "first_bad %zu", rep.first_bad);
    FUZZ_CHECK(rep.first_bad <= lines, "first_bad %zu of %zu lines", rep.first_bad, lines);
    FUZZ_CHECK(o.use_min_rating || rep.below_min == 0, "below_min without min_rating");
    for (size_t k = 0; k < x.count; ++k) {
        FUZZ_CHECK(isfinite(x.ratings[k]), "rating %zu not finite", k);
        FUZZ_CHECK(!o.use_min_rating || x.ratings[k] >= min_rating, "rating %g below %g", x.ratings[k], min_rating);
    }

    td_dataset d;
    char berr[256];
    FUZZ_CHECK(td_build(&x, NULL, fraction, flags, &d, berr, sizeof berr) == 0, "td_build: %s", berr);
    check_dataset(&d, &x);
    FUZZ_CHECK(d.train_count + d.test_count + d.test_dropped + d.train_duplicates == x.count, "hold-out lost pairs");
    /* Sample weights: refused only for a negative weight or a sum beyond the float range; else finite, >= 0. */
    int negative = 0;
    for (size_t k = 0; k < x.count; ++k)
        negative |= x.ratings[k] < 0;
    if (td_train_weights(&d, &x, berr, sizeof berr) == 0) {
        FUZZ_CHECK(!negative && d.train_weights, "weights despite a negative one");
        for (size_t k = 0; k < d.train_count; ++k)
            FUZZ_CHECK(isfinite(d.train_weights[k]) && d.train_weights[k] >= 0, "weight %zu", k);
    } else {
        FUZZ_CHECK(!d.train_weights && (negative || strstr(berr, "beyond the float range")), "%s", berr);
    }
    td_dataset_free(&d);
    /* Half the items cold: every pair accounted for, cold items after the warm, no cold item trained. */
    if (td_build_cold(&x, NULL, fraction, 0.5, flags, &d, berr, sizeof berr) == 0) {
        check_dataset(&d, &x);
        FUZZ_CHECK(d.num_cold_items >= 1 && d.cold_first + d.num_cold_items == d.num_items, "cold range");
        FUZZ_CHECK(d.train_count + d.test_count + d.test_dropped + d.train_duplicates + d.cold_count + d.cold_dropped <=
                       x.count,
                   "cold pairs");
        for (size_t k = 0; k < d.train_count; ++k)
            FUZZ_CHECK((uint32_t)d.train_items[k] < d.cold_first, "a cold item trained");
        for (size_t k = 0; k < d.cold_count; ++k)
            FUZZ_CHECK((uint32_t)d.cold_items[k] >= d.cold_first && (uint32_t)d.cold_items[k] < d.num_items &&
                           d.cold_users[k] >= 0 && (uint32_t)d.cold_users[k] < d.num_users,
                       "cold pair %zu", k);
        td_dataset_free(&d);
    } else {
        FUZZ_CHECK(strstr(berr, "holds out no item") || strstr(berr, "no warm item"), "td_build_cold: %s", berr);
    }
    /* The same data as its own test file: every test pair is a training pair. */
    FUZZ_CHECK(td_build(&x, &x, 0, 0, &d, berr, sizeof berr) == 0, "td_build with a test file: %s", berr);
    check_dataset(&d, &x);
    FUZZ_CHECK(d.test_count == 0 && d.test_dropped == 0 && d.test_in_train + d.test_duplicates == x.count,
               "test file counts: %zu in train, %zu repeated, of %zu", d.test_in_train, d.test_duplicates, x.count);
    td_dataset_free(&d);
    td_interactions_free(&x);
    return 0;
}
