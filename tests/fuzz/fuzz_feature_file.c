/*
 * warploss-train's feature files (tools/train_features.c): tf_read_buffer on
 * any bytes with any format and side, then the dense map grown by its ids
 * (tf_add_ids) and the matrix built from it (tf_build), once alone and once
 * with the file given twice (a union of the same names).
 *
 * Input: an options byte (bits 0-2: format, mod 6; bit 3: the users' side;
 * bit 4: no identity; bit 5: no normalisation; bits 6-7: how many of the
 * file's ids the interactions "had", in quarters), then the file's bytes.
 *
 * Checked: no crash, no leak; on failure nothing is returned and the message
 * starts with the file name, then ": " (a file-level message) or ":LINE: "
 * with LINE within the input; on success the entries, names and titles are
 * in range and the names distinct; the map holds every id once; the matrix
 * is a valid CSR (indptr from 0, non-decreasing; features in range, strictly
 * ascending in a row, the identity first; weights finite), its rows sum to 1
 * in absolute value when normalised unless counted empty, and its names are
 * the identity's then the file's.
 */
#include <math.h>

#include "fuzz.h"
#include "train_features.h"

#define NAME "fuzz.csv"

static void check_matrix(const tf_matrix *m, const tf_file *f, const int64_t *ids, uint32_t n, int no_identity,
                         int no_normalise)
{
    FUZZ_CHECK(m->rows == n && m->indptr && m->indptr[0] == 0, "rows %u of %u", m->rows, n);
    FUZZ_CHECK(m->num_features == (no_identity ? 0 : n) + f->num_features, "%u features", m->num_features);
    uint32_t empty = 0;
    for (uint32_t r = 0; r < n; ++r) {
        FUZZ_CHECK(m->indptr[r + 1] >= m->indptr[r], "indptr falls at %u", r);
        double sum = 0;
        for (uint64_t j = m->indptr[r]; j < m->indptr[r + 1]; ++j) {
            FUZZ_CHECK(m->features[j] >= 0 && (uint32_t)m->features[j] < m->num_features, "feature %d", m->features[j]);
            FUZZ_CHECK(j == m->indptr[r] || m->features[j - 1] < m->features[j], "row %u not ascending", r);
            FUZZ_CHECK(isfinite(m->weights[j]), "weight not finite");
            sum += fabs(m->weights[j]);
        }
        if (!no_identity)
            FUZZ_CHECK(m->indptr[r + 1] > m->indptr[r] && m->features[m->indptr[r]] == (int32_t)r,
                       "row %u does not start with its identity", r);
        if (sum == 0)
            ++empty;
        else if (!no_normalise)
            FUZZ_CHECK(fabs(sum - 1) < 1e-4, "row %u sums to %g", r, sum);
    }
    FUZZ_CHECK(empty <= m->empty_rows && (no_normalise || empty == m->empty_rows), "%u empty rows, counted %u", empty,
               m->empty_rows);
    for (uint32_t k = 0; k < m->num_features; ++k)
        FUZZ_CHECK(m->names[k], "no name for feature %u", k);
    if (!no_identity) {
        char want[40];
        snprintf(want, sizeof want, "%s:%lld", f->side == TF_USERS ? "user" : "item", (long long)ids[n - 1]);
        FUZZ_CHECK(n == 0 || !strcmp(m->names[n - 1], want), "identity name %s", m->names[n - 1]);
    }
    for (size_t k = 0; k < f->num_features; ++k)
        FUZZ_CHECK(!strcmp(m->names[(no_identity ? 0 : n) + k], f->names[k]), "name %zu", k);
    FUZZ_CHECK(!m->titles == !f->titles, "titles");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader r = {data, size};
    const uint8_t flags = fuzz_byte(&r);
    const tf_format format = (tf_format)((flags & 7) % 6);
    const tf_side side = (flags >> 3) & 1 ? TF_USERS : TF_ITEMS;
    const int no_identity = (flags >> 4) & 1, no_normalise = (flags >> 5) & 1;
    const unsigned quarters = flags >> 6;

    /* An exact-size copy, so that ASan catches a read past the end (the reader must not need a NUL). */
    char *text = malloc(r.left ? r.left : 1);
    FUZZ_CHECK(text, "out of memory");
    const size_t n = fuzz_bytes(&r, text, r.left);
    size_t lines = 1;
    for (size_t k = 0; k < n; ++k)
        lines += text[k] == '\n';

    tf_file f;
    char err[512] = "";
    const int rc = tf_read_buffer(NAME, text, n, format, side, &f, err, sizeof err);
    free(text);
    if (rc) {
        FUZZ_CHECK(f.rows == 0 && !f.ids && !f.names && !f.titles && !f.entry_row, "failure left data");
        FUZZ_CHECK(!strncmp(err, NAME ":", sizeof NAME), "message without the name: %s", err);
        const char *p = err + sizeof NAME;
        if (*p != ' ') {
            size_t line = 0;
            const char *d = p;
            while (*p >= '0' && *p <= '9')
                line = line * 10 + (size_t)(*p++ - '0');
            FUZZ_CHECK(p > d && p[0] == ':' && p[1] == ' ', "no line number: %s", err);
            FUZZ_CHECK(line >= 1 && line <= lines, "line %zu of %zu: %s", line, lines, err);
        }
        return 0;
    }
    FUZZ_CHECK(f.rows > 0 && f.format != TF_FORMAT_AUTO && (format == TF_FORMAT_AUTO || f.format == format),
               "format %d, %zu rows", (int)f.format, f.rows);
    FUZZ_CHECK(f.side == side, "side");
    FUZZ_CHECK(!f.titles == !(f.format == TF_FORMAT_MOVIES || f.format == TF_FORMAT_UITEM), "titles");
    for (size_t j = 0; j < f.count; ++j) {
        FUZZ_CHECK(f.entry_row[j] < f.rows && f.entry_feature[j] < f.num_features, "entry %zu", j);
        FUZZ_CHECK(isfinite(f.entry_weight[j]), "entry weight %zu", j);
    }
    for (size_t k = 0; k < f.num_features; ++k)
        for (size_t j = k + 1; j < f.num_features && j < k + 64; ++j)
            FUZZ_CHECK(strcmp(f.names[k], f.names[j]), "name %s twice", f.names[k]);

    /* The interactions had the first quarters/4 of the rows, in reverse (another order); the files add the rest. */
    uint32_t had = (uint32_t)(f.rows * quarters / 4), num = had;
    int64_t *ids = malloc((had ? had : 1) * sizeof *ids);
    FUZZ_CHECK(ids, "out of memory");
    for (uint32_t k = 0; k < had; ++k)
        ids[k] = f.ids[had - 1 - k];
    uint32_t added;
    FUZZ_CHECK(tf_add_ids(&f, 1, &ids, &num, &added, err, sizeof err) == 0, "tf_add_ids: %s", err);
    FUZZ_CHECK(num == f.rows && added == f.rows - had, "%u ids, %u added, of %zu", num, added, f.rows);

    tf_matrix m;
    const tf_build_options o = {no_identity, no_normalise};
    if (tf_build(side, &f, 1, ids, num, &o, &m, err, sizeof err) == 0) {
        check_matrix(&m, &f, ids, num, no_identity, no_normalise);
        tf_matrix_free(&m);
    } else {
        FUZZ_CHECK(strstr(err, "beyond the float range") && !m.indptr, "tf_build: %s", err);
    }
    /* The file twice: the same names, every weight doubled (the same rows once normalised). */
    const tf_file twice[2] = {f, f};
    if (tf_build(side, twice, 2, ids, num, &o, &m, err, sizeof err) == 0) {
        check_matrix(&m, &f, ids, num, no_identity, no_normalise);
        tf_matrix_free(&m);
    } else {
        FUZZ_CHECK(strstr(err, "beyond the float range") && !m.indptr, "tf_build twice: %s", err);
    }
    free(ids);
    tf_file_free(&f);
    return 0;
}
