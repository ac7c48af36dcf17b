/*
 * warploss-train's feature files and the feature matrix (see
 * train_features.h). The files are small next to the interactions (MovieLens
 * 25M: 62k movies, 1M tag lines), so the reading is plain: a line at a time,
 * fields split with CSV quoting where the format is comma-separated, names
 * interned in a hash table.
 */
#include "train_features.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_data.h"

/* ---- formats --------------------------------------------------------------- */

static const char *const format_names[] = {NULL, "movielens-movies", "movielens-item", "movielens-tags", "csv", "tsv"};

const char *tf_format_name(tf_format f)
{
    return (unsigned)f < sizeof format_names / sizeof *format_names ? format_names[f] : NULL;
}

int tf_format_parse(const char *name, tf_format *out)
{
    if (!name)
        return -1;
    if (!strcmp(name, "auto")) {
        *out = TF_FORMAT_AUTO;
        return 0;
    }
    for (int f = TF_FORMAT_MOVIES; f <= TF_FORMAT_TSV; ++f)
        if (!strcmp(name, format_names[f])) {
            *out = (tf_format)f;
            return 0;
        }
    return -1;
}

/* u.item's 19 genre flags, in column order. */
static const char *const uitem_genres[19] = {"unknown",   "Action",   "Adventure",   "Animation", "Children's",
                                             "Comedy",    "Crime",    "Documentary", "Drama",     "Fantasy",
                                             "Film-Noir", "Horror",   "Musical",     "Mystery",   "Romance",
                                             "Sci-Fi",    "Thriller", "War",         "Western"};
enum { UITEM_FIELDS = 5 + 19 };

static const char movies_header[] = "movieId,title,genres";
static const char tags_header[] = "userId,movieId,tag,timestamp";

/* ---- hash tables ------------------------------------------------------------- */

/* Open addressing, at most half full; slots hold index + 1 (0: empty). */
typedef struct index_table {
    uint32_t *slots;
    size_t mask;
} index_table;

static int table_init(index_table *t)
{
    t->mask = 255;
    t->slots = calloc(t->mask + 1, sizeof *t->slots);
    return t->slots ? 0 : -1;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; ++i)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return td_mix64(h);
}

/* Double the table when count (after an insertion) would make it over half full; rehash with hash_of. */
static int table_grow(index_table *t, size_t count, uint64_t (*hash_of)(const void *ctx, uint32_t index),
                      const void *ctx)
{
    if (count * 2 <= t->mask + 1)
        return 0;
    size_t mask = t->mask * 2 + 1;
    uint32_t *slots = calloc(mask + 1, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i <= t->mask; ++i)
        if (t->slots[i]) {
            size_t h = hash_of(ctx, t->slots[i] - 1) & mask;
            while (slots[h])
                h = (h + 1) & mask;
            slots[h] = t->slots[i];
        }
    free(t->slots);
    t->slots = slots;
    t->mask = mask;
    return 0;
}

/* A capacity of at least n, doubling from cap (64 at least). */
static size_t grown_cap(size_t cap, size_t n)
{
    size_t c = cap ? cap : 64;
    while (c < n)
        c *= 2;
    return c;
}

/* Grow the array arr of cap elements to hold n; on failure (arr and cap unchanged) run on_fail. */
#define GROW_OR(arr, cap, n, on_fail)                                                                                  \
    do {                                                                                                               \
        if ((n) > (cap)) {                                                                                             \
            const size_t c_ = grown_cap(cap, n);                                                                       \
            void *g_ = realloc(arr, c_ * sizeof *(arr));                                                               \
            if (!g_) {                                                                                                 \
                on_fail;                                                                                               \
            } else {                                                                                                   \
                (arr) = g_;                                                                                            \
                (cap) = c_;                                                                                            \
            }                                                                                                          \
        }                                                                                                              \
    } while (0)

static char *copy_text(const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = 0;
    }
    return c;
}

/* ---- the reader's state -------------------------------------------------------- */

typedef struct reader {
    tf_file *f;
    size_t ids_cap, titles_cap, entry_row_cap, entry_feature_cap, entry_weight_cap, names_cap;
    index_table rows_by_id, features_by_name;
    char *scratch; /* unquoted fields and names of the current line */
    size_t scratch_cap;
} reader;

static uint64_t hash_row(const void *ctx, uint32_t index)
{
    return td_mix64((uint64_t)((const tf_file *)ctx)->ids[index]);
}

static uint64_t hash_name(const void *ctx, uint32_t index)
{
    const char *s = ((const tf_file *)ctx)->names[index];
    return hash_bytes(s, strlen(s));
}

/* The row of id, added if new (with titles a NULL title); -1 out of memory or too many rows. */
static int64_t row_of(reader *r, int64_t id)
{
    tf_file *f = r->f;
    size_t h = td_mix64((uint64_t)id) & r->rows_by_id.mask;
    for (; r->rows_by_id.slots[h]; h = (h + 1) & r->rows_by_id.mask)
        if (f->ids[r->rows_by_id.slots[h] - 1] == id)
            return r->rows_by_id.slots[h] - 1;
    if (f->rows >= INT32_MAX)
        return -1;
    GROW_OR(f->ids, r->ids_cap, f->rows + 1, return -1);
    if (f->titles) {
        GROW_OR(f->titles, r->titles_cap, f->rows + 1, return -1);
        f->titles[f->rows] = NULL;
    }
    f->ids[f->rows] = id;
    r->rows_by_id.slots[h] = (uint32_t)f->rows + 1;
    ++f->rows;
    if (table_grow(&r->rows_by_id, f->rows, hash_row, f))
        return -1;
    return (int64_t)f->rows - 1;
}

/* The feature named s[0 .. n), added if new; -1 out of memory or too many. */
static int64_t feature_of(reader *r, const char *s, size_t n)
{
    tf_file *f = r->f;
    size_t h = hash_bytes(s, n) & r->features_by_name.mask;
    for (; r->features_by_name.slots[h]; h = (h + 1) & r->features_by_name.mask) {
        const char *name = f->names[r->features_by_name.slots[h] - 1];
        if (!strncmp(name, s, n) && name[n] == 0)
            return r->features_by_name.slots[h] - 1;
    }
    if (f->num_features >= INT32_MAX)
        return -1;
    GROW_OR(f->names, r->names_cap, f->num_features + 1, return -1);
    if (!(f->names[f->num_features] = copy_text(s, n)))
        return -1;
    r->features_by_name.slots[h] = (uint32_t)f->num_features + 1;
    ++f->num_features;
    if (table_grow(&r->features_by_name, f->num_features, hash_name, f))
        return -1;
    return (int64_t)f->num_features - 1;
}

/* An entry (row, the feature prefix + s[0 .. n), weight); -1 out of memory. */
static int add_entry(reader *r, uint32_t row, const char *prefix, const char *s, size_t n, int lowercase, float weight)
{
    tf_file *f = r->f;
    const size_t p = strlen(prefix);
    char buf[256], *name = p + n < sizeof buf ? buf : malloc(p + n + 1);
    if (!name)
        return -1;
    memcpy(name, prefix, p);
    for (size_t i = 0; i < n; ++i)
        name[p + i] = lowercase && s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
    name[p + n] = 0;
    const int64_t feature = feature_of(r, name, p + n);
    if (name != buf)
        free(name);
    if (feature < 0)
        return -1;
    GROW_OR(f->entry_row, r->entry_row_cap, f->count + 1, return -1);
    GROW_OR(f->entry_feature, r->entry_feature_cap, f->count + 1, return -1);
    GROW_OR(f->entry_weight, r->entry_weight_cap, f->count + 1, return -1);
    f->entry_row[f->count] = row;
    f->entry_feature[f->count] = (uint32_t)feature;
    f->entry_weight[f->count] = weight;
    ++f->count;
    return 0;
}

/* ---- fields -------------------------------------------------------------------- */

typedef struct span {
    const char *s;
    size_t n;
} span;

enum { MAX_FIELDS = UITEM_FIELDS };

static span trim(const char *s, const char *e)
{
    while (s < e && *s == ' ')
        ++s;
    while (e > s && e[-1] == ' ')
        --e;
    return (span){s, (size_t)(e - s)};
}

/*
 * Split [p, e) on sep into fields (the first MAX_FIELDS kept in f, the count
 * going on), each trimmed of spaces. With quotes, a field that starts with
 * '"' runs to the closing '"' ("" inside is a quote), unescaped into
 * scratch (at least e - p bytes). Returns the count, or -1 with *why.
 */
static int split_fields(const char *p, const char *e, char sep, int quotes, span *f, char *scratch, const char **why)
{
    int n = 0;
    const char *q = p;
    for (;;) {
        while (q < e && *q == ' ')
            ++q;
        span cur;
        if (quotes && q < e && *q == '"') {
            char *o = scratch, *start = scratch;
            for (++q;; ++q) {
                if (q >= e) {
                    *why = "a quoted field has no closing quote on its line";
                    return -1;
                }
                if (*q == '"') {
                    if (q + 1 < e && q[1] == '"') {
                        *o++ = '"';
                        ++q;
                        continue;
                    }
                    ++q;
                    break;
                }
                *o++ = *q;
            }
            scratch = o;
            cur = (span){start, (size_t)(o - start)};
            while (q < e && *q == ' ')
                ++q;
            if (q < e && *q != sep) {
                *why = "text follows a quoted field's closing quote";
                return -1;
            }
        } else {
            const char *x = q < e ? memchr(q, sep, (size_t)(e - q)) : NULL;
            const char *fe = x ? x : e;
            cur = trim(q, fe);
            q = fe;
        }
        if (n < MAX_FIELDS)
            f[n] = cur;
        if (n < INT32_MAX)
            ++n;
        if (q >= e)
            return n;
        ++q; /* the separator; a line that ends with one has an empty last field */
    }
}

/* The field as an int64 id: 0, or -1 with a message. */
static int field_id(span s, const char *what_field, int64_t *v, char *what, size_t what_size)
{
    const char *why = "is empty";
    const char *end = s.n ? td_parse_i64(s.s, s.s + s.n, v, &why) : NULL;
    if (end && end != s.s + s.n)
        end = NULL, why = "is not an integer";
    if (!end) {
        snprintf(what, what_size, "%s %s", what_field, why);
        return -1;
    }
    return 0;
}

/* The field as a finite float: 0, or -1 with a message. */
static int field_weight(span s, float *w, char *what, size_t what_size)
{
    const char *why = "is empty";
    double v = 0;
    const char *end = s.n ? td_parse_number(s.s, s.s + s.n, &v, &why) : NULL;
    if (end && end != s.s + s.n)
        end = NULL, why = "is not a number";
    else if (end && isnan(v))
        end = NULL, why = "is NaN";
    else if (end && isinf(v))
        end = NULL, why = "is infinite";
    else if (end && fabs(v) > FLT_MAX)
        end = NULL, why = "is out of the float range";
    if (!end) {
        snprintf(what, what_size, "the weight %s", why);
        return -1;
    }
    *w = (float)v;
    return 0;
}

static int field_count_error(int n, int lo, int hi, const char *layout, char *what, size_t what_size)
{
    if (n >= lo && n <= hi)
        return 0;
    if (lo == hi)
        snprintf(what, what_size, "expected %d fields (%s), found %d", lo, layout, n);
    else
        snprintf(what, what_size, "expected %d or %d fields (%s), found %d", lo, hi, layout, n);
    return -1;
}

/* ---- lines --------------------------------------------------------------------- */

enum { LINE_OK = 0, LINE_BAD = -1, LINE_OOM = -2 };

/* The row of an id (LINE_OOM on failure). */
#define ROW_OR_OOM(r, id, row)                                                                                         \
    do {                                                                                                               \
        const int64_t row_ = row_of(r, id);                                                                            \
        if (row_ < 0)                                                                                                  \
            return LINE_OOM;                                                                                           \
        row = (uint32_t)row_;                                                                                          \
    } while (0)

static int movies_line(reader *r, const span *f, int n, char *what, size_t what_size)
{
    if (field_count_error(n, 3, 3, "movieId,title,genres; a title with a comma must be quoted", what, what_size))
        return LINE_BAD;
    int64_t id;
    uint32_t row;
    if (field_id(f[0], "the movieId", &id, what, what_size))
        return LINE_BAD;
    ROW_OR_OOM(r, id, row);
    if (f[1].n && !r->f->titles[row] && !(r->f->titles[row] = copy_text(f[1].s, f[1].n)))
        return LINE_OOM;
    const char *p = f[2].s, *e = f[2].s + f[2].n;
    if (f[2].n == 18 && !memcmp(p, "(no genres listed)", 18))
        return LINE_OK;
    while (p < e) {
        const char *bar = memchr(p, '|', (size_t)(e - p)), *ge = bar ? bar : e;
        span g = trim(p, ge);
        if (g.n && add_entry(r, row, "genre:", g.s, g.n, 0, 1.0f))
            return LINE_OOM;
        p = bar ? bar + 1 : e;
    }
    return LINE_OK;
}

static int uitem_line(reader *r, const span *f, int n, char *what, size_t what_size)
{
    if (field_count_error(n, UITEM_FIELDS, UITEM_FIELDS, "id|title|release|video release|url|19 genre flags", what,
                          what_size))
        return LINE_BAD;
    int64_t id;
    uint32_t row;
    if (field_id(f[0], "the item id", &id, what, what_size))
        return LINE_BAD;
    for (int g = 0; g < 19; ++g) {
        const span s = f[5 + g];
        if (s.n != 1 || (s.s[0] != '0' && s.s[0] != '1')) {
            snprintf(what, what_size, "the genre flag of %s (field %d) is not 0 or 1", uitem_genres[g], 6 + g);
            return LINE_BAD;
        }
    }
    ROW_OR_OOM(r, id, row);
    if (f[1].n && !r->f->titles[row] && !(r->f->titles[row] = copy_text(f[1].s, f[1].n)))
        return LINE_OOM;
    for (int g = 0; g < 19; ++g)
        if (f[5 + g].s[0] == '1' && add_entry(r, row, "genre:", uitem_genres[g], strlen(uitem_genres[g]), 0, 1.0f))
            return LINE_OOM;
    return LINE_OK;
}

static int tags_line(reader *r, const span *f, int n, char *what, size_t what_size)
{
    if (field_count_error(n, 4, 4, "userId,movieId,tag,timestamp", what, what_size))
        return LINE_BAD;
    int64_t user, movie;
    if (field_id(f[0], "the userId", &user, what, what_size) || field_id(f[1], "the movieId", &movie, what, what_size))
        return LINE_BAD;
    double t;
    const char *why = "is empty";
    const char *end = f[3].n ? td_parse_number(f[3].s, f[3].s + f[3].n, &t, &why) : NULL;
    if (!end || end != f[3].s + f[3].n) {
        snprintf(what, what_size, "the timestamp %s", end ? "is not a number" : why);
        return LINE_BAD;
    }
    uint32_t row;
    ROW_OR_OOM(r, r->f->side == TF_USERS ? user : movie, row);
    if (!f[2].n) {
        ++r->f->empty_tags;
        return LINE_OK;
    }
    return add_entry(r, row, "tag:", f[2].s, f[2].n, 1, 1.0f) ? LINE_OOM : LINE_OK;
}

static int plain_line(reader *r, const span *f, int n, char *what, size_t what_size)
{
    if (field_count_error(n, 2, 3, "id, feature[, weight]", what, what_size))
        return LINE_BAD;
    int64_t id;
    float w = 1.0f;
    if (field_id(f[0], "the id", &id, what, what_size))
        return LINE_BAD;
    if (!f[1].n) {
        snprintf(what, what_size, "the feature name is empty");
        return LINE_BAD;
    }
    if ((f[1].n >= 5 && !memcmp(f[1].s, "item:", 5)) || (f[1].n >= 5 && !memcmp(f[1].s, "user:", 5))) {
        snprintf(what, what_size, "the feature name starts with \"%.5s\", kept for the identity features", f[1].s);
        return LINE_BAD;
    }
    if (n == 3 && field_weight(f[2], &w, what, what_size))
        return LINE_BAD;
    uint32_t row;
    ROW_OR_OOM(r, id, row);
    return add_entry(r, row, "", f[1].s, f[1].n, 0, w) ? LINE_OOM : LINE_OK;
}

/* ---- reading ------------------------------------------------------------------- */

static int blank_line(const char *p, const char *e)
{
    for (; p < e; ++p)
        if (*p != ' ' && *p != '\t')
            return 0;
    return 1;
}

static int line_is(const char *p, const char *e, const char *text)
{
    return (size_t)(e - p) == strlen(text) && !memcmp(p, text, (size_t)(e - p));
}

static size_t count_char(const char *p, const char *e, char c)
{
    size_t n = 0;
    for (; p < e; ++p)
        n += *p == c;
    return n;
}

/* Detection from the first non-blank line (see train_features.h); AUTO if undetectable. */
static tf_format detect(const char *p, const char *e)
{
    const span t = trim(p, e);
    p = t.s;
    e = t.s + t.n;
    if (line_is(p, e, movies_header))
        return TF_FORMAT_MOVIES;
    if (line_is(p, e, tags_header))
        return TF_FORMAT_TAGS;
    if (count_char(p, e, '|') == UITEM_FIELDS - 1)
        return TF_FORMAT_UITEM;
    if (memchr(p, '\t', (size_t)(e - p)))
        return TF_FORMAT_TSV;
    if (memchr(p, ',', (size_t)(e - p)))
        return TF_FORMAT_CSV;
    return TF_FORMAT_AUTO;
}

static char format_sep(tf_format f) { return f == TF_FORMAT_UITEM ? '|' : f == TF_FORMAT_TSV ? '\t' : ','; }

void tf_file_free(tf_file *f)
{
    if (!f)
        return;
    if (f->titles)
        for (size_t i = 0; i < f->rows; ++i)
            free(f->titles[i]);
    for (size_t i = 0; i < f->num_features; ++i)
        free(f->names[i]);
    free(f->titles);
    free(f->ids);
    free(f->entry_row);
    free(f->entry_feature);
    free(f->entry_weight);
    free(f->names);
    memset(f, 0, sizeof *f);
}

int tf_read_buffer(const char *name, const char *data, size_t size, tf_format format, tf_side side, tf_file *out,
                   char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    if (!name)
        name = "(features)";
    if ((unsigned)format > TF_FORMAT_TSV || (side != TF_ITEMS && side != TF_USERS)) {
        td_set_err(err, err_size, "%s: unknown format %d or side %d", name, (int)format, (int)side);
        return -1;
    }
    const char *pos = data ? data : "", *end = data ? data + size : pos, *ls, *le;
    if (end - pos >= 3 && !memcmp(pos, "\xEF\xBB\xBF", 3))
        pos += 3;
    size_t line = 0;
    int have_first = 0;
    while (td_next_line(&pos, end, &ls, &le)) {
        ++line;
        if (!blank_line(ls, le)) {
            have_first = 1;
            break;
        }
    }
    if (!have_first) {
        td_set_err(err, err_size, "%s: no features (the file is empty)", name);
        return -1;
    }
    char start[48];
    if (format == TF_FORMAT_AUTO && (format = detect(ls, le)) == TF_FORMAT_AUTO) {
        td_line_excerpt(ls, le, start);
        td_set_err(err, err_size,
                   "%s:%zu: cannot detect the format: not a MovieLens movies.csv, tags.csv or u.item, and no comma or "
                   "TAB on the first line (\"%s\"); give the format",
                   name, line, start);
        return -1;
    }
    if (side == TF_USERS && (format == TF_FORMAT_MOVIES || format == TF_FORMAT_UITEM)) {
        td_set_err(err, err_size, "%s: a %s file describes items, not users", name, tf_format_name(format));
        return -1;
    }
    out->format = format;
    out->side = side;
    const char sep = format_sep(format);
    const int quotes = sep == ',';

    reader r = {.f = out};
    int rc = -1;
    if (table_init(&r.rows_by_id) || table_init(&r.features_by_name) ||
        ((format == TF_FORMAT_MOVIES || format == TF_FORMAT_UITEM) && !(out->titles = malloc(sizeof *out->titles))))
        goto out_of_memory;
    /* The first line is a header when its first field does not start like a number ("5.5" is a bad id). */
    {
        const char *q = ls;
        while (q < le && (*q == ' ' || (quotes && *q == '"')))
            ++q;
        if (q < le && (*q == '-' || *q == '+'))
            ++q;
        if (q < le && *q == '.')
            ++q;
        if (q < le && (unsigned)(*q - '0') < 10) {
            pos = ls;
            --line;
        }
    }
    while (td_next_line(&pos, end, &ls, &le)) {
        ++line;
        if (blank_line(ls, le))
            continue;
        ++out->lines;
        char what[128];
        int status = LINE_BAD;
        const char *why = NULL;
        if (memchr(ls, 0, (size_t)(le - ls))) {
            snprintf(what, sizeof what, "the line has a NUL byte");
        } else {
            GROW_OR(r.scratch, r.scratch_cap, (size_t)(le - ls) + 1, goto out_of_memory);
            span f[MAX_FIELDS];
            const int n = split_fields(ls, le, sep, quotes, f, r.scratch, &why);
            if (n < 0)
                snprintf(what, sizeof what, "%s", why);
            else if (format == TF_FORMAT_MOVIES)
                status = movies_line(&r, f, n, what, sizeof what);
            else if (format == TF_FORMAT_UITEM)
                status = uitem_line(&r, f, n, what, sizeof what);
            else if (format == TF_FORMAT_TAGS)
                status = tags_line(&r, f, n, what, sizeof what);
            else
                status = plain_line(&r, f, n, what, sizeof what);
        }
        if (status == LINE_OOM)
            goto out_of_memory;
        if (status == LINE_BAD) {
            td_line_excerpt(ls, le, start);
            td_set_err(err, err_size, "%s:%zu: %s (\"%s\")", name, line, what, start);
            goto done;
        }
    }
    if (!out->rows) {
        td_set_err(err, err_size, "%s: no features (only a header line)", name);
        goto done;
    }
    rc = 0;
    goto done;
out_of_memory:
    td_set_err(err, err_size, "%s: out of memory (or more than 2^31 - 1 ids or features) at line %zu", name, line);
done:
    free(r.rows_by_id.slots);
    free(r.features_by_name.slots);
    free(r.scratch);
    if (rc)
        tf_file_free(out);
    return rc;
}

int tf_read_file(const char *path, tf_format format, tf_side side, tf_file *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    td_file_bytes b;
    if (td_file_open(path, &b, err, err_size))
        return -1;
    const int rc = tf_read_buffer(path, b.data, b.size, format, side, out, err, err_size);
    td_file_close(&b);
    return rc;
}

/* ---- the dense map --------------------------------------------------------------- */

typedef struct id_index {
    int64_t id;
    uint32_t index;
} id_index;

static int cmp_id(const void *a, const void *b)
{
    const int64_t x = ((const id_index *)a)->id, y = ((const id_index *)b)->id;
    return (x > y) - (x < y);
}

/* ids[n] sorted with their indices, for look-ups by bsearch; NULL out of memory. */
static id_index *sorted_ids(const int64_t *ids, size_t n)
{
    id_index *s = malloc((n ? n : 1) * sizeof *s);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; ++i)
        s[i] = (id_index){ids[i], (uint32_t)i};
    qsort(s, n, sizeof *s, cmp_id);
    return s;
}

static int64_t find_id(const id_index *s, size_t n, int64_t id)
{
    const id_index key = {id, 0}, *hit = n ? bsearch(&key, s, n, sizeof *s, cmp_id) : NULL;
    return hit ? (int64_t)hit->index : -1;
}

/* The table's hashes of the ids in *ids_ctx (an int64_t **, as the array may move). */
static uint64_t hash_id_at(const void *ctx, uint32_t index)
{
    return td_mix64((uint64_t)(*(int64_t *const *)ctx)[index]);
}

int tf_add_ids(const tf_file *files, size_t num_files, int64_t **ids, uint32_t *num_ids, uint32_t *added, char *err,
               size_t err_size)
{
    if (added)
        *added = 0;
    size_t n = *num_ids, cap = n;
    index_table seen = {0};
    int rc = -1;
    if (table_init(&seen))
        goto out_of_memory;
    for (size_t i = 0; i < n; ++i) {
        size_t h = td_mix64((uint64_t)(*ids)[i]) & seen.mask;
        while (seen.slots[h])
            h = (h + 1) & seen.mask;
        seen.slots[h] = (uint32_t)i + 1;
        if (table_grow(&seen, i + 1, hash_id_at, ids))
            goto out_of_memory;
    }
    for (size_t k = 0; k < num_files; ++k)
        for (size_t r = 0; r < files[k].rows; ++r) {
            const int64_t id = files[k].ids[r];
            size_t h = td_mix64((uint64_t)id) & seen.mask;
            while (seen.slots[h] && (*ids)[seen.slots[h] - 1] != id)
                h = (h + 1) & seen.mask;
            if (seen.slots[h])
                continue;
            if (n >= INT32_MAX) {
                td_set_err(err, err_size, "more than %d ids with the feature files'", INT32_MAX);
                goto done;
            }
            GROW_OR(*ids, cap, n + 1, goto out_of_memory);
            (*ids)[n] = id;
            seen.slots[h] = (uint32_t)++n;
            if (table_grow(&seen, n, hash_id_at, ids))
                goto out_of_memory;
        }
    rc = 0;
    goto done;
out_of_memory:
    td_set_err(err, err_size, "out of memory (%zu ids)", n);
done:
    free(seen.slots);
    if (added)
        *added = (uint32_t)(n - *num_ids);
    *num_ids = (uint32_t)n;
    return rc;
}

/* ---- the matrix ------------------------------------------------------------------- */

void tf_matrix_free(tf_matrix *m)
{
    if (!m)
        return;
    if (m->names)
        for (uint32_t i = 0; i < m->num_features; ++i)
            free(m->names[i]);
    if (m->titles)
        for (uint32_t i = 0; i < m->rows; ++i)
            free(m->titles[i]);
    free(m->names);
    free(m->titles);
    free(m->indptr);
    free(m->features);
    free(m->weights);
    memset(m, 0, sizeof *m);
}

uint32_t tf_finish(tf_matrix *m, const unsigned char *has_pairs, tf_normalise mode)
{
    uint32_t dropped = 0;
    uint64_t w = 0; /* entries move down in place */
    m->empty_rows = 0;
    for (uint32_t r = 0; r < m->rows; ++r) {
        const uint64_t from = m->indptr[r], to = m->indptr[r + 1], start = w;
        m->indptr[r] = start;
        double files = 0, all = 0;
        for (uint64_t k = from; k < to; ++k) {
            const int identity = m->identity && m->features[k] == (int32_t)r;
            if (identity && has_pairs && !has_pairs[r]) {
                ++dropped;
                continue;
            }
            m->features[w] = m->features[k];
            m->weights[w++] = m->weights[k];
            all += fabs((double)m->weights[k]);
            files += identity ? 0.0 : fabs((double)m->weights[k]);
        }
        const double norm = mode == TF_NORMALISE_ROWS ? all : files;
        for (uint64_t k = start; mode != TF_NORMALISE_NONE && norm > 0 && k < w; ++k)
            if (mode == TF_NORMALISE_ROWS || !(m->identity && m->features[k] == (int32_t)r))
                m->weights[k] = (float)((double)m->weights[k] / norm);
        m->empty_rows += all == 0;
    }
    m->indptr[m->rows] = w;
    return dropped;
}

typedef struct keyed_weight {
    uint64_t key; /* row << 32 | feature */
    double weight;
} keyed_weight;

static int cmp_key(const void *a, const void *b)
{
    const uint64_t x = ((const keyed_weight *)a)->key, y = ((const keyed_weight *)b)->key;
    return (x > y) - (x < y);
}

int tf_build(tf_side side, const tf_file *files, size_t num_files, const int64_t *ids, uint32_t num_ids,
             const tf_build_options *o, tf_matrix *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    const tf_build_options defaults = {0, 0};
    if (!o)
        o = &defaults;
    const char *side_name = side == TF_USERS ? "user" : "item";
    for (size_t k = 0; k < num_files; ++k)
        if (files[k].side != side) {
            td_set_err(err, err_size, "%s feature file given for the %ss",
                       files[k].side == TF_USERS ? "a user" : "an item", side_name);
            return -1;
        }
    id_index *sorted = NULL;
    uint32_t **feature_maps = calloc(num_files ? num_files : 1, sizeof *feature_maps);
    keyed_weight *kw = NULL;
    index_table by_name = {0};
    tf_file names = {0}; /* the union of the files' names (only names and num_features used) */
    size_t names_cap = 0;
    int rc = -1;
    const uint32_t offset = o->no_identity ? 0 : num_ids;
    size_t total = o->no_identity ? 0 : num_ids;
    for (size_t k = 0; k < num_files; ++k)
        total += files[k].count;
    out->rows = num_ids;
    out->identity = !o->no_identity;
    if (!feature_maps || !(sorted = sorted_ids(ids, num_ids)) || table_init(&by_name) ||
        !(kw = malloc((total ? total : 1) * sizeof *kw)))
        goto out_of_memory;

    /* The union of the names: each file's feature k becomes feature_maps[file][k]. */
    for (size_t k = 0; k < num_files; ++k) {
        if (!(feature_maps[k] = malloc((files[k].num_features ? files[k].num_features : 1) * sizeof(uint32_t))))
            goto out_of_memory;
        for (size_t j = 0; j < files[k].num_features; ++j) {
            const char *s = files[k].names[j];
            const size_t n = strlen(s);
            size_t h = hash_bytes(s, n) & by_name.mask;
            for (; by_name.slots[h]; h = (h + 1) & by_name.mask)
                if (!strcmp(names.names[by_name.slots[h] - 1], s))
                    break;
            if (!by_name.slots[h]) {
                if (offset + names.num_features >= INT32_MAX) {
                    td_set_err(err, err_size, "more than %d %s features", INT32_MAX, side_name);
                    goto done;
                }
                GROW_OR(names.names, names_cap, names.num_features + 1, goto out_of_memory);
                if (!(names.names[names.num_features] = copy_text(s, n)))
                    goto out_of_memory;
                by_name.slots[h] = (uint32_t)++names.num_features;
                if (table_grow(&by_name, names.num_features, hash_name, &names))
                    goto out_of_memory;
                feature_maps[k][j] = (uint32_t)names.num_features - 1;
                continue;
            }
            feature_maps[k][j] = by_name.slots[h] - 1;
        }
    }
    out->num_features = offset + (uint32_t)names.num_features;

    /* Every entry keyed by (row, feature), identity first, then sorted and merged. */
    size_t n = 0;
    if (!o->no_identity)
        for (uint32_t r = 0; r < num_ids; ++r)
            kw[n++] = (keyed_weight){(uint64_t)r << 32 | r, 1.0};
    for (size_t k = 0; k < num_files; ++k) {
        const tf_file *f = &files[k];
        int64_t *rows = malloc((f->rows ? f->rows : 1) * sizeof *rows);
        if (!rows)
            goto out_of_memory;
        for (size_t r = 0; r < f->rows; ++r)
            if ((rows[r] = find_id(sorted, num_ids, f->ids[r])) < 0) {
                td_set_err(err, err_size, "%s id %lld of a feature file is not in the data", side_name,
                           (long long)f->ids[r]);
                free(rows);
                goto done;
            }
        for (size_t j = 0; j < f->count; ++j)
            kw[n++] = (keyed_weight){(uint64_t)rows[f->entry_row[j]] << 32 |
                                         (offset + feature_maps[k][f->entry_feature[j]]),
                                     (double)f->entry_weight[j]};
        free(rows);
    }
    qsort(kw, n, sizeof *kw, cmp_key);
    size_t m = 0;
    for (size_t j = 0; j < n; ++j) {
        if (m && kw[m - 1].key == kw[j].key)
            kw[m - 1].weight += kw[j].weight;
        else
            kw[m++] = kw[j];
    }
    if (!(out->indptr = calloc((size_t)num_ids + 1, sizeof *out->indptr)) ||
        !(out->features = malloc((m ? m : 1) * sizeof *out->features)) ||
        !(out->weights = malloc((m ? m : 1) * sizeof *out->weights)))
        goto out_of_memory;
    for (size_t j = 0; j < m; ++j) {
        if (!(fabs(kw[j].weight) <= FLT_MAX)) {
            const uint32_t feature = (uint32_t)kw[j].key;
            const char *name = feature < offset ? "(identity)" : names.names[feature - offset];
            /* A long name is cut, so that the message keeps what went wrong within err_size. */
            td_set_err(err, err_size, "%s %lld: the weights of feature \"%.60s%s\" sum beyond the float range",
                       side_name, (long long)ids[kw[j].key >> 32], name, strlen(name) > 60 ? "..." : "");
            goto done;
        }
        ++out->indptr[(kw[j].key >> 32) + 1];
        out->features[j] = (int32_t)(uint32_t)kw[j].key;
    }
    for (uint32_t r = 0; r < num_ids; ++r) {
        out->indptr[r + 1] += out->indptr[r];
        double norm = 0;
        for (uint64_t j = out->indptr[r]; j < out->indptr[r + 1]; ++j)
            norm += fabs(kw[j].weight);
        if (norm == 0)
            ++out->empty_rows;
        for (uint64_t j = out->indptr[r]; j < out->indptr[r + 1]; ++j)
            out->weights[j] = (float)(o->no_normalise || norm == 0 ? kw[j].weight : kw[j].weight / norm);
    }

    /* Names: the identity's from the ids, then the union's (moved, not copied). */
    if (!(out->names = calloc(out->num_features ? out->num_features : 1, sizeof *out->names)))
        goto out_of_memory;
    for (uint32_t r = 0; r < offset; ++r) {
        char buf[32];
        const int len = snprintf(buf, sizeof buf, "%s:%lld", side_name, (long long)ids[r]);
        if (!(out->names[r] = copy_text(buf, (size_t)len)))
            goto out_of_memory;
    }
    for (size_t j = 0; j < names.num_features; ++j) {
        out->names[offset + j] = names.names[j];
        names.names[j] = NULL;
    }
    /* Titles: the first file that gives one for a row. */
    for (size_t k = 0; k < num_files; ++k) {
        if (!files[k].titles)
            continue;
        if (!out->titles && !(out->titles = calloc(num_ids ? num_ids : 1, sizeof *out->titles)))
            goto out_of_memory;
        for (size_t r = 0; r < files[k].rows; ++r) {
            const int64_t row = find_id(sorted, num_ids, files[k].ids[r]);
            const char *t = files[k].titles[r];
            if (t && !out->titles[row] && !(out->titles[row] = copy_text(t, strlen(t))))
                goto out_of_memory;
        }
    }
    rc = 0;
    goto done;
out_of_memory:
    td_set_err(err, err_size, "out of memory building the %s feature matrix", side_name);
done:
    for (size_t j = 0; j < names.num_features; ++j)
        free(names.names[j]);
    free(names.names);
    if (feature_maps)
        for (size_t k = 0; k < num_files; ++k)
            free(feature_maps[k]);
    free(feature_maps);
    free(by_name.slots);
    free(sorted);
    free(kw);
    if (rc)
        tf_matrix_free(out);
    return rc;
}
