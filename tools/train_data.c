/*
 * warploss-train's data: the interaction file formats, the synthetic set,
 * dense ids and the train/test split (see train_data.h).
 *
 * Reading is built for MovieLens 25M-sized files (25 million lines): the file
 * is mapped (or read) whole, lines are found with memchr and numbers are
 * parsed by hand in one pass, with no sscanf/strtod per line (locale-free,
 * and strtod alone would take most of the time). The output arrays are sized
 * once from a count of the newlines.
 */
#include "train_data.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- messages ------------------------------------------------------------ */

void td_set_err(char *err, size_t err_size, const char *fmt, ...)
{
    if (!err || !err_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* The start of a line for a message: at most 40 bytes, non-printable bytes as '?' (a message is one clean line). */
void td_line_excerpt(const char *p, const char *e, char out[48])
{
    size_t n = (size_t)(e - p), k = n > 40 ? 40 : n, o = 0;
    for (size_t i = 0; i < k; ++i) {
        unsigned char c = (unsigned char)p[i];
        out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (n > k) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
}

/* ---- formats ------------------------------------------------------------- */

static const char *const format_names[] = {NULL, "movielens-csv", "movielens-tsv", "csv", "tsv"};

const char *td_format_name(td_format f)
{
    return (unsigned)f < sizeof format_names / sizeof *format_names ? format_names[f] : NULL;
}

int td_format_parse(const char *name, td_format *out)
{
    if (!name)
        return -1;
    if (!strcmp(name, "auto")) {
        *out = TD_FORMAT_AUTO;
        return 0;
    }
    for (int f = TD_FORMAT_MOVIELENS_CSV; f <= TD_FORMAT_TSV; ++f)
        if (!strcmp(name, format_names[f])) {
            *out = (td_format)f;
            return 0;
        }
    return -1;
}

static char format_sep(td_format f) { return f == TD_FORMAT_MOVIELENS_TSV || f == TD_FORMAT_TSV ? '\t' : ','; }
static int format_is_movielens(td_format f) { return f == TD_FORMAT_MOVIELENS_CSV || f == TD_FORMAT_MOVIELENS_TSV; }

/* ---- numbers --------------------------------------------------------------- */

static int is_blank(char c) { return c == ' '; }

/*
 * An int64 at p (optional sign, decimal digits). Returns the end, or NULL:
 * *why = "is not a number" or "is out of the int64 range".
 */
const char *td_parse_i64(const char *p, const char *e, int64_t *v, const char **why)
{
    int neg = 0;
    if (p < e && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    const char *d = p;
    /* Accumulate as a negative number so that INT64_MIN parses too. */
    int64_t x = 0;
    while (p < e && (unsigned)(*p - '0') < 10) {
        int digit = *p - '0';
        if (x < (INT64_MIN + digit) / 10) {
            *why = "is out of the int64 range";
            return NULL;
        }
        x = x * 10 - digit;
        ++p;
    }
    if (p == d) {
        *why = "is not a number";
        return NULL;
    }
    if (!neg) {
        if (x == INT64_MIN) {
            *why = "is out of the int64 range";
            return NULL;
        }
        x = -x;
    }
    *v = x;
    return p;
}

static int match_word(const char *p, const char *e, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(e - p) < n)
        return 0;
    for (size_t i = 0; i < n; ++i)
        if ((p[i] | 0x20) != w[i])
            return 0;
    return 1;
}

/* Exact powers of ten: a decimal with up to 19 significant digits and a small exponent converts in one rounding. */
static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                       1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * A decimal number at p: [sign] digits [. digits] [e [sign] digits], or
 * nan/inf/infinity (any case, so that the message can say NaN). Returns the
 * end, or NULL with *why. Precise enough for a float (ratings and weights).
 */
const char *td_parse_number(const char *p, const char *e, double *v, const char **why)
{
    int neg = 0;
    if (p < e && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    if (p < e && (*p | 0x20) == 'n' && match_word(p, e, "nan")) {
        *v = NAN;
        return p + 3;
    }
    if (p < e && (*p | 0x20) == 'i' && match_word(p, e, "inf")) {
        *v = neg ? -INFINITY : INFINITY;
        return p + (match_word(p, e, "infinity") ? 8 : 3);
    }
    uint64_t m = 0;
    int sig = 0, dexp = 0, digits = 0;
    for (; p < e && (unsigned)(*p - '0') < 10; ++p, ++digits) {
        if (sig < 19) {
            m = m * 10 + (uint64_t)(*p - '0');
            sig += m != 0;
        } else {
            ++dexp; /* a dropped digit before the point */
        }
    }
    if (p < e && *p == '.') {
        for (++p; p < e && (unsigned)(*p - '0') < 10; ++p, ++digits)
            if (sig < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                sig += m != 0;
                --dexp;
            }
    }
    if (!digits) {
        *why = "is not a number";
        return NULL;
    }
    if (p < e && (*p | 0x20) == 'e') {
        const char *q = p + 1;
        int eneg = 0, ed = 0;
        long ex = 0;
        if (q < e && (*q == '-' || *q == '+'))
            eneg = *q++ == '-';
        for (; q < e && (unsigned)(*q - '0') < 10; ++q, ++ed)
            if (ex < 100000)
                ex = ex * 10 + (*q - '0');
        if (!ed) {
            *why = "has a bad exponent";
            return NULL;
        }
        dexp += (int)(eneg ? -ex : ex);
        p = q;
    }
    double x = (double)m;
    if (m == 0)
        x = 0;
    else if (dexp >= 0 && dexp <= 22)
        x *= pow10_exact[dexp];
    else if (dexp < 0 && dexp >= -22)
        x /= pow10_exact[-dexp];
    else if (dexp > 400)
        x = INFINITY;
    else if (dexp < -400)
        x = 0;
    else
        x *= pow(10.0, dexp);
    *v = neg ? -x : x;
    return p;
}

/* ---- lines ----------------------------------------------------------------- */

typedef struct line_fields {
    int64_t user, item;
    float rating;
} line_fields;

static size_t count_fields(const char *p, const char *e, char sep)
{
    size_t n = 1;
    for (; p < e; ++p)
        n += *p == sep;
    return n;
}

static const char *const field_names[2][4] = {{"user id", "item id", "weight", "field 4"},
                                              {"user id", "item id", "rating", "timestamp"}};

/*
 * Parse one line [p, e) (line end and CR removed) with separator sep and
 * min_fields..max_fields fields: user, item, then rating/weight, then a
 * timestamp (checked to be a number, not kept). Spaces around a field are
 * allowed. Returns the number of fields, or 0 with a message in what.
 */
static int parse_line(const char *p, const char *e, char sep, int min_fields, int max_fields, int movielens,
                      line_fields *out, char *what, size_t what_size)
{
    const char *q = p;
    int f = 0;
    const char *why = NULL;
    for (;; ++f) {
        while (q < e && is_blank(*q))
            ++q;
        const char *end;
        if (f < 2) {
            int64_t id = 0;
            end = td_parse_i64(q, e, &id, &why);
            if (end && end < e && (*end == '.' || (*end | 0x20) == 'e') && end + 1 < e &&
                (unsigned)(end[1] - '0') < 10) {
                end = NULL;
                why = "is not an integer";
            }
            if (f == 0)
                out->user = id;
            else
                out->item = id;
        } else {
            double v = 0;
            end = td_parse_number(q, e, &v, &why);
            if (end && f == 2) {
                if (isnan(v))
                    end = NULL, why = "is NaN";
                else if (isinf(v))
                    end = NULL, why = "is infinite";
                else if (fabs(v) > FLT_MAX)
                    end = NULL, why = "is out of the float range";
                out->rating = (float)v;
            }
        }
        if (end) {
            q = end;
            while (q < e && is_blank(*q))
                ++q;
            if (q == e)
                break;
            if (*q == sep && f + 1 < max_fields) {
                ++q;
                continue;
            }
        }
        /* A wrong field count explains most broken lines best ("1;2;3" in a CSV), so it is checked first. */
        size_t n = count_fields(p, e, sep);
        if (n < (size_t)min_fields || n > (size_t)max_fields) {
            if (min_fields == max_fields)
                snprintf(what, what_size, "expected %d fields, found %zu", min_fields, n);
            else
                snprintf(what, what_size, "expected %d or %d fields, found %zu", min_fields, max_fields, n);
        } else if (!end) {
            snprintf(what, what_size, "%s %s", field_names[movielens][f], why);
        } else {
            snprintf(what, what_size, "unexpected '%c' after the %s",
                     (unsigned char)*q >= 0x20 && (unsigned char)*q < 0x7f ? *q : '?', field_names[movielens][f]);
        }
        return 0;
    }
    if (f + 1 < min_fields) {
        if (min_fields == max_fields)
            snprintf(what, what_size, "expected %d fields, found %d", min_fields, f + 1);
        else
            snprintf(what, what_size, "expected %d or %d fields, found %d", min_fields, max_fields, f + 1);
        return 0;
    }
    if (f + 1 == 2)
        out->rating = 1.0f;
    return f + 1;
}

/*
 * A header: no field of the line starts like a number (a digit, or a sign or
 * point and a digit). Not "is a number": "5,6" read as a TSV is one bad field,
 * not a header.
 */
static int is_header(const char *p, const char *e, char sep)
{
    int at_field = 1;
    for (; p < e; ++p) {
        if (at_field && !is_blank(*p)) {
            const char *q = p;
            if (q < e && (*q == '-' || *q == '+'))
                ++q;
            if (q < e && *q == '.')
                ++q;
            if (q < e && (unsigned)(*q - '0') < 10)
                return 0;
            at_field = 0;
        }
        if (*p == sep)
            at_field = 1;
    }
    return 1;
}

/* The next line from *pos: [*ls, *le) without the line end and a CR before it; returns 0 at the end. */
int td_next_line(const char **pos, const char *end, const char **ls, const char **le)
{
    const char *p = *pos;
    if (p >= end)
        return 0;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *e = nl ? nl : end;
    *pos = nl ? nl + 1 : end;
    if (e > p && e[-1] == '\r')
        --e;
    *ls = p;
    *le = e;
    return 1;
}

static int blank_line(const char *p, const char *e)
{
    for (; p < e; ++p)
        if (!is_blank(*p) && *p != '\t')
            return 0;
    return 1;
}

static const char movielens_header[] = "userId,movieId,rating,timestamp";

/*
 * Format detection, from the first non-blank line:
 * - exactly MovieLens ratings.csv's header -> movielens-csv;
 * - else the separator: a TAB anywhere on the line -> tab-separated (TAB wins,
 *   because a CSV header has no TAB but a TSV header may have commas), else a
 *   comma -> comma-separated, else the format cannot be detected;
 * - 4 fields -> the MovieLens layout (user, item, rating, timestamp: u.data and
 *   ua.base are TAB-separated with 4 fields; a comma file with 4 fields is
 *   ratings.csv with another header or none), else csv or tsv (user, item
 *   [, weight]).
 * Returns the format, or AUTO if undetectable.
 */
static td_format detect(const char *p, const char *e)
{
    if ((size_t)(e - p) == sizeof movielens_header - 1 && !memcmp(p, movielens_header, sizeof movielens_header - 1))
        return TD_FORMAT_MOVIELENS_CSV;
    char sep = memchr(p, '\t', (size_t)(e - p)) ? '\t' : memchr(p, ',', (size_t)(e - p)) ? ',' : 0;
    if (!sep)
        return TD_FORMAT_AUTO;
    size_t n = count_fields(p, e, sep);
    if (sep == '\t')
        return n == 4 ? TD_FORMAT_MOVIELENS_TSV : TD_FORMAT_TSV;
    return n == 4 ? TD_FORMAT_MOVIELENS_CSV : TD_FORMAT_CSV;
}

/* ---- reading ----------------------------------------------------------------- */

void td_interactions_free(td_interactions *x)
{
    if (!x)
        return;
    free(x->users);
    free(x->items);
    free(x->ratings);
    memset(x, 0, sizeof *x);
}

int td_interactions_concat(const td_interactions *pieces, size_t n, td_interactions *out)
{
    memset(out, 0, sizeof *out);
    size_t total = 0;
    for (size_t k = 0; k < n; ++k) {
        if (pieces[k].count > SIZE_MAX / sizeof *out->users - total)
            return -1;
        total += pieces[k].count;
    }
    if (!total)
        return -1;
    out->users = malloc(total * sizeof *out->users);
    out->items = malloc(total * sizeof *out->items);
    out->ratings = malloc(total * sizeof *out->ratings);
    if (!out->users || !out->items || !out->ratings) {
        td_interactions_free(out);
        return -1;
    }
    size_t at = 0;
    for (size_t k = 0; k < n; ++k) {
        const size_t c = pieces[k].count;
        if (!c)
            continue;
        memcpy(out->users + at, pieces[k].users, c * sizeof *out->users);
        memcpy(out->items + at, pieces[k].items, c * sizeof *out->items);
        memcpy(out->ratings + at, pieces[k].ratings, c * sizeof *out->ratings);
        at += c;
    }
    out->count = total;
    return 0;
}

int td_read_buffer(const char *name, const char *data, size_t size, const td_read_options *o, td_interactions *out,
                   td_read_report *report, char *err, size_t err_size)
{
    td_read_report local;
    td_read_report *r = report ? report : &local;
    memset(r, 0, sizeof *r);
    memset(out, 0, sizeof *out);
    if (!name)
        name = "(data)";
    td_read_options defaults = {0};
    if (!o)
        o = &defaults;
    if ((unsigned)o->format > TD_FORMAT_TSV) {
        td_set_err(err, err_size, "%s: unknown format %d", name, (int)o->format);
        return -1;
    }
    const char *pos = data, *end = data + size, *ls, *le;
    if (!data)
        pos = end = "";
    /* A UTF-8 byte order mark (spreadsheet exports) is not part of the first field. */
    if (end - pos >= 3 && !memcmp(pos, "\xEF\xBB\xBF", 3))
        pos += 3;

    /* The first non-blank line: the format and whether it is a header. */
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
        if (o->allow_empty)
            return 0;
        td_set_err(err, err_size, "%s: no interactions (the file is empty)", name);
        return -1;
    }
    td_format fmt = o->format;
    if (fmt == TD_FORMAT_AUTO) {
        fmt = detect(ls, le);
        if (fmt == TD_FORMAT_AUTO) {
            char start[48];
            td_line_excerpt(ls, le, start);
            td_set_err(err, err_size,
                       "%s:%zu: cannot detect the format: no comma or TAB on the first line (\"%s\"); "
                       "give the format",
                       name, line, start);
            return -1;
        }
    }
    r->format = fmt;
    char sep = format_sep(fmt);
    int movielens = format_is_movielens(fmt);
    int min_fields = movielens ? 4 : 2, max_fields = movielens ? 4 : 3;
    /* A header is allowed only here, on the first non-blank line; anything else is read again as data. */
    if (!is_header(ls, le, sep)) {
        pos = ls;
        --line;
    }

    /* One slot per remaining line at most: an upper bound from the newlines. */
    size_t cap = 1;
    for (const char *q = pos; q < end; ++cap) {
        q = memchr(q, '\n', (size_t)(end - q));
        if (!q)
            break;
        ++q;
    }
    out->users = malloc(cap * sizeof *out->users);
    out->items = malloc(cap * sizeof *out->items);
    out->ratings = malloc(cap * sizeof *out->ratings);
    if (!out->users || !out->items || !out->ratings) {
        td_interactions_free(out);
        td_set_err(err, err_size, "%s: out of memory (%zu lines)", name, cap);
        return -1;
    }

    size_t n = 0;
    int64_t *users = out->users, *items = out->items;
    float *ratings = out->ratings;
    int use_min = o->use_min_rating;
    float min_rating = o->min_rating;
    while (td_next_line(&pos, end, &ls, &le)) {
        ++line;
        if (ls == le || blank_line(ls, le))
            continue;
        ++r->lines;
        line_fields lf = {0, 0, 1.0f};
        char what[96]; /* fits first_bad_message with the line start */
        if (!parse_line(ls, le, sep, min_fields, max_fields, movielens, &lf, what, sizeof what)) {
            char start[48];
            td_line_excerpt(ls, le, start);
            if (!o->skip_bad_lines) {
                td_interactions_free(out);
                td_set_err(err, err_size, "%s:%zu: %s (\"%s\")", name, line, what, start);
                return -1;
            }
            if (!r->bad_lines++) {
                r->first_bad = line;
                snprintf(r->first_bad_message, sizeof r->first_bad_message, "%s (\"%s\")", what, start);
            }
            continue;
        }
        if (use_min && !(lf.rating >= min_rating)) {
            ++r->below_min;
            continue;
        }
        users[n] = lf.user;
        items[n] = lf.item;
        ratings[n] = lf.rating;
        ++n;
    }
    if (!n) {
        td_interactions_free(out);
        if (o->allow_empty)
            return 0;
        if (r->bad_lines || r->below_min)
            td_set_err(err, err_size,
                       "%s: no interactions (%zu lines: %zu malformed, skipped, the first at line %zu; %zu "
                       "below the minimum rating)",
                       name, r->lines, r->bad_lines, r->first_bad, r->below_min);
        else
            td_set_err(err, err_size, "%s: no interactions (only a header line)", name);
        return -1;
    }
    out->count = n;
    /* Give back what the filters left unused (a shrinking realloc that fails keeps the larger block). */
    if (n < cap) {
        int64_t *u2 = realloc(out->users, n * sizeof *u2);
        if (u2)
            out->users = u2;
        int64_t *i2 = realloc(out->items, n * sizeof *i2);
        if (i2)
            out->items = i2;
        float *r2 = realloc(out->ratings, n * sizeof *r2);
        if (r2)
            out->ratings = r2;
    }
    return 0;
}

int td_file_open(const char *path, td_file_bytes *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    out->data = "";
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        td_set_err(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        td_set_err(err, err_size, "%s: cannot read: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        td_set_err(err, err_size, "%s: is a folder, not a file", path);
        close(fd);
        return -1;
    }
    /* A regular file is mapped (no copy, the page cache does the reading); a pipe or device is read whole. */
    if (S_ISREG(st.st_mode) && st.st_size > 0) {
        size_t size = (size_t)st.st_size;
        void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map != MAP_FAILED) {
            close(fd);
            posix_madvise(map, size, POSIX_MADV_SEQUENTIAL);
            out->map = map;
            out->data = map;
            out->size = size;
            return 0;
        }
    }
    size_t cap = 1 << 16, size = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            td_set_err(err, err_size, "%s: out of memory", path);
            close(fd);
            return -1;
        }
        if (size == cap) {
            char *grown = realloc(buf, cap * 2);
            if (!grown)
                free(buf);
            buf = grown;
            cap *= 2;
            continue;
        }
        ssize_t got = read(fd, buf + size, cap - size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            td_set_err(err, err_size, "%s: cannot read: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (got == 0)
            break;
        size += (size_t)got;
    }
    close(fd);
    out->buffer = buf;
    out->data = buf;
    out->size = size;
    return 0;
}

void td_file_close(td_file_bytes *f)
{
    if (!f)
        return;
    if (f->map)
        munmap(f->map, f->size);
    free(f->buffer);
    memset(f, 0, sizeof *f);
}

int td_read_file(const char *path, const td_read_options *o, td_interactions *out, td_read_report *report, char *err,
                 size_t err_size)
{
    memset(out, 0, sizeof *out);
    if (report)
        memset(report, 0, sizeof *report);
    td_file_bytes f;
    if (td_file_open(path, &f, err, err_size))
        return -1;
    int rc = td_read_buffer(path, f.data, f.size, o, out, report, err, err_size);
    td_file_close(&f);
    return rc;
}

/* ---- random numbers ------------------------------------------------------------ */

uint64_t td_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t td_splitmix64(uint64_t *s) { return td_mix64(*s += 0x9E3779B97F4A7C15ull); }

/* Uniform in (0, 1): never 0 or 1, so that log() of it and of 1 minus it are finite. */
static double uniform01(uint64_t *s) { return ((double)(td_splitmix64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

/* Uniform in [0, n) for n < 2^32 (multiply-shift; its bias, below 2^-32, does not matter here). */
static uint32_t uniform_below(uint64_t *s, uint32_t n) { return (uint32_t)(((td_splitmix64(s) >> 32) * n) >> 32); }

/* Gaussian-ish: the sum of three uniforms on (-1, 1) has mean 0 and variance 1, without libm. */
static double gaussish(uint64_t *s) { return 2.0 * (uniform01(s) + uniform01(s) + uniform01(s)) - 3.0; }

/* ---- the synthetic set ------------------------------------------------------------ */

#define SYN_DIM 8
#define SYN_TASTE 2.5    /* how strongly taste drives the choice (std of the taste logit) */
#define SYN_ZIPF 1.0     /* popularity: weight of the item of popularity rank r ~ 1 / (r + 1)^SYN_ZIPF */
#define SYN_ACTIVITY 0.8 /* user activity: log-normal with this sigma */

typedef struct keyed {
    double key;
    uint32_t item;
} keyed;

/* A min-heap of the best keys so far (the root is the weakest kept). */
static void heap_sift_down(keyed *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && h[l].key < h[m].key)
            m = l;
        if (l + 1 < n && h[l + 1].key < h[m].key)
            m = l + 1;
        if (m == i)
            return;
        keyed t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/*
 * Each user u draws n_u items without replacement from softmax(taste(u, i) +
 * popularity(i)), via the Gumbel-top-k trick: the n_u items with the largest
 * logit + Gumbel noise are such a draw. taste = SYN_TASTE * <p_u, q_i> /
 * sqrt(SYN_DIM) with Gaussian-ish p and q (a planted rank-8 model the trainer
 * can recover); popularity = -SYN_ZIPF * log(rank + 1) with the ranks a seeded
 * permutation of the items (a long tail, not tied to item ids). n_u is
 * log-normal (some users many, some few), at least 2, the total about
 * `interactions`.
 */
int td_synthetic(uint32_t users, uint32_t items, size_t interactions, uint64_t seed, td_interactions *out)
{
    memset(out, 0, sizeof *out);
    if (!users || !items)
        return -1;
    uint64_t s = seed ^ 0x53594E5448ull; /* "SYNTH": other generators seeded with the same seed differ */
    float *p = malloc((size_t)users * SYN_DIM * sizeof *p);
    float *q = malloc((size_t)items * SYN_DIM * sizeof *q);
    float *pop = malloc((size_t)items * sizeof *pop);
    uint32_t *rank = malloc((size_t)items * sizeof *rank);
    double *activity = malloc((size_t)users * sizeof *activity);
    uint32_t *n_u = malloc((size_t)users * sizeof *n_u);
    keyed *heap = NULL;
    uint32_t *chosen = NULL;
    int rc = -1;
    if (!p || !q || !pop || !rank || !activity || !n_u)
        goto done;
    for (size_t i = 0; i < (size_t)users * SYN_DIM; ++i)
        p[i] = (float)gaussish(&s);
    for (size_t i = 0; i < (size_t)items * SYN_DIM; ++i)
        q[i] = (float)gaussish(&s);
    for (uint32_t i = 0; i < items; ++i)
        rank[i] = i;
    for (uint32_t i = items - 1; i > 0; --i) {
        uint32_t j = uniform_below(&s, i + 1), t = rank[i];
        rank[i] = rank[j];
        rank[j] = t;
    }
    for (uint32_t i = 0; i < items; ++i)
        pop[i] = (float)(-SYN_ZIPF * log((double)rank[i] + 1.0));

    double total = 0;
    for (uint32_t u = 0; u < users; ++u)
        total += activity[u] = exp(SYN_ACTIVITY * gaussish(&s));
    /* Rounded cumulatively, so that the counts add up to `interactions` before the minimum of 2 and the cap. */
    uint32_t min_n = items < 2 ? items : 2, max_n = 0;
    size_t count = 0;
    double cum = 0;
    for (uint32_t u = 0; u < users; ++u) {
        double before = cum;
        cum += activity[u] / total * (double)interactions;
        double k = floor(cum) - floor(before);
        n_u[u] = k < min_n ? min_n : k > items ? items : (uint32_t)k;
        max_n = n_u[u] > max_n ? n_u[u] : max_n;
        count += n_u[u];
    }
    heap = malloc((size_t)max_n * sizeof *heap);
    chosen = malloc((size_t)max_n * sizeof *chosen);
    out->users = malloc(count * sizeof *out->users);
    out->items = malloc(count * sizeof *out->items);
    out->ratings = malloc(count * sizeof *out->ratings);
    if (!heap || !chosen || !out->users || !out->items || !out->ratings)
        goto done;

    const double scale = SYN_TASTE / sqrt((double)SYN_DIM);
    size_t o = 0;
    for (uint32_t u = 0; u < users; ++u) {
        const float *pu = p + (size_t)u * SYN_DIM;
        size_t k = n_u[u], h = 0;
        for (uint32_t i = 0; i < items; ++i) {
            const float *qi = q + (size_t)i * SYN_DIM;
            float dot = 0;
            for (int d = 0; d < SYN_DIM; ++d)
                dot += pu[d] * qi[d];
            double key = scale * dot + pop[i] - log(-log(uniform01(&s)));
            if (h < k) {
                /* Filling: insert and restore the heap from the bottom. */
                size_t c = h++;
                heap[c] = (keyed){key, i};
                while (c && heap[(c - 1) / 2].key > heap[c].key) {
                    keyed t = heap[c];
                    heap[c] = heap[(c - 1) / 2];
                    heap[(c - 1) / 2] = t;
                    c = (c - 1) / 2;
                }
            } else if (key > heap[0].key) {
                heap[0] = (keyed){key, i};
                heap_sift_down(heap, h, 0);
            }
        }
        for (size_t j = 0; j < h; ++j)
            chosen[j] = heap[j].item;
        qsort(chosen, h, sizeof *chosen, cmp_u32);
        for (size_t j = 0; j < h; ++j, ++o) {
            out->users[o] = u;
            out->items[o] = chosen[j];
            out->ratings[o] = 1.0f;
        }
    }
    out->count = o;
    rc = 0;
done:
    if (rc)
        td_interactions_free(out);
    free(p);
    free(q);
    free(pop);
    free(rank);
    free(activity);
    free(n_u);
    free(heap);
    free(chosen);
    return rc;
}

/* ---- dense ids -------------------------------------------------------------------- */

/*
 * From an original id to its dense index, in order of first appearance;
 * ids[] keeps the inverse. Ids in a range not much larger than their count
 * (MovieLens: 1..N) use a direct table (a look-up is one load from a table
 * that fits in the cache); others open addressing.
 */
typedef struct id_map {
    int32_t *direct; /* direct[id - base], or NULL: hashing */
    int64_t base;
    uint64_t range;
    int64_t *keys;
    int32_t *vals; /* -1: empty slot */
    size_t mask;
    size_t count;
    int64_t *ids; /* ids[dense] = original id */
    size_t ids_cap;
} id_map;

static int map_alloc(id_map *m, size_t slots)
{
    m->keys = malloc(slots * sizeof *m->keys);
    m->vals = malloc(slots * sizeof *m->vals);
    if (!m->keys || !m->vals)
        return -1;
    memset(m->vals, 0xff, slots * sizeof *m->vals);
    m->mask = slots - 1;
    return 0;
}

/* Direct if the ids span at most 4 x their count + 2^16 values (a table of 4 bytes each) and under 2^28. */
static int map_init(id_map *m, const int64_t *ids, size_t n)
{
    memset(m, 0, sizeof *m);
    int64_t lo = ids[0], hi = ids[0];
    for (size_t k = 1; k < n; ++k) {
        lo = ids[k] < lo ? ids[k] : lo;
        hi = ids[k] > hi ? ids[k] : hi;
    }
    uint64_t range = (uint64_t)hi - (uint64_t)lo + 1; /* 0 if the span is all of int64 */
    if (range && range <= ((uint64_t)1 << 28) && range <= 4 * (uint64_t)n + 65536) {
        m->direct = malloc(range * sizeof *m->direct);
        if (m->direct) {
            memset(m->direct, 0xff, range * sizeof *m->direct);
            m->base = lo;
            m->range = range;
            return 0;
        }
    }
    return map_alloc(m, 1024);
}

static void map_free(id_map *m)
{
    free(m->direct);
    free(m->keys);
    free(m->vals);
    free(m->ids);
    memset(m, 0, sizeof *m);
}

static int32_t map_find(const id_map *m, int64_t key)
{
    if (m->direct) {
        uint64_t off = (uint64_t)key - (uint64_t)m->base;
        return off < m->range ? m->direct[off] : -1;
    }
    for (size_t h = td_mix64((uint64_t)key) & m->mask;; h = (h + 1) & m->mask) {
        if (m->vals[h] < 0)
            return -1;
        if (m->keys[h] == key)
            return m->vals[h];
    }
}

/* The dense index of key, added if new; -1 out of memory, -2 more than INT32_MAX ids. */
static int32_t map_add(id_map *m, int64_t key)
{
    int32_t *slot = NULL;
    size_t h = 0;
    if (m->direct) {
        slot = &m->direct[(uint64_t)key - (uint64_t)m->base]; /* map_init saw every key: in range */
        if (*slot >= 0)
            return *slot;
    } else {
        for (h = td_mix64((uint64_t)key) & m->mask; m->vals[h] >= 0; h = (h + 1) & m->mask)
            if (m->keys[h] == key)
                return m->vals[h];
    }
    if (m->count >= INT32_MAX)
        return -2;
    if (m->count == m->ids_cap) {
        size_t cap = m->ids_cap ? m->ids_cap * 2 : 1024;
        int64_t *grown = realloc(m->ids, cap * sizeof *grown);
        if (!grown)
            return -1;
        m->ids = grown;
        m->ids_cap = cap;
    }
    int32_t v = (int32_t)m->count;
    m->ids[m->count++] = key;
    if (slot) {
        *slot = v;
        return v;
    }
    m->keys[h] = key;
    m->vals[h] = v;
    /* At most half full, so that probes stay short. */
    if (m->count * 2 > m->mask + 1) {
        id_map bigger = {0};
        if (map_alloc(&bigger, (m->mask + 1) * 2)) {
            free(bigger.keys);
            free(bigger.vals);
            return -1;
        }
        for (size_t i = 0; i <= m->mask; ++i)
            if (m->vals[i] >= 0) {
                size_t j = td_mix64((uint64_t)m->keys[i]) & bigger.mask;
                while (bigger.vals[j] >= 0)
                    j = (j + 1) & bigger.mask;
                bigger.keys[j] = m->keys[i];
                bigger.vals[j] = m->vals[i];
            }
        free(m->keys);
        free(m->vals);
        m->keys = bigger.keys;
        m->vals = bigger.vals;
        m->mask = bigger.mask;
    }
    return v;
}

/* ---- sorting pairs ------------------------------------------------------------------ */

/*
 * Pairs are sorted as one key, user << item_bits | item, by an LSD radix sort
 * over only the bits in use: 25 million pairs in a fraction of a second, where
 * qsort takes seconds.
 */
static int radix_sort(uint64_t *keys, size_t n, int bits)
{
    if (n < 2 || bits <= 0)
        return 0;
    uint64_t *tmp = malloc(n * sizeof *tmp);
    if (!tmp)
        return -1;
    enum { RADIX = 11 };
    size_t counts[1 << RADIX];
    uint64_t *a = keys, *b = tmp;
    for (int shift = 0; shift < bits; shift += RADIX) {
        memset(counts, 0, sizeof counts);
        for (size_t i = 0; i < n; ++i)
            ++counts[(a[i] >> shift) & ((1u << RADIX) - 1)];
        size_t sum = 0;
        for (size_t d = 0; d < (1u << RADIX); ++d) {
            size_t c = counts[d];
            counts[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; ++i)
            b[counts[(a[i] >> shift) & ((1u << RADIX) - 1)]++] = a[i];
        uint64_t *t = a;
        a = b;
        b = t;
    }
    if (a != keys)
        memcpy(keys, a, n * sizeof *keys);
    free(tmp);
    return 0;
}

/* Sort and merge duplicates; returns the new count. */
static size_t sort_unique(uint64_t *keys, size_t n, int bits, int *oom)
{
    if (radix_sort(keys, n, bits)) {
        *oom = 1;
        return n;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; ++i)
        if (!m || keys[i] != keys[m - 1])
            keys[m++] = keys[i];
    return m;
}

static int bits_for(size_t n)
{
    int b = 0;
    while (b < 63 && ((size_t)1 << b) < n)
        ++b;
    return b;
}

/* ---- the dataset ---------------------------------------------------------------------- */

void td_dataset_free(td_dataset *d)
{
    if (!d)
        return;
    free(d->user_ids);
    free(d->item_ids);
    free(d->train_users);
    free(d->train_items);
    free(d->test_users);
    free(d->test_items);
    free(d->cold_users);
    free(d->cold_items);
    free(d->train_weights);
    memset(d, 0, sizeof *d);
}

int32_t td_user_index(const td_dataset *d, int64_t user_id)
{
    for (uint32_t u = 0; u < d->num_users; ++u)
        if (d->user_ids[u] == user_id)
            return (int32_t)u;
    return -1;
}

static int unpack(const uint64_t *keys, size_t n, int item_bits, int32_t **users, int32_t **items)
{
    *users = malloc((n ? n : 1) * sizeof **users);
    *items = malloc((n ? n : 1) * sizeof **items);
    if (!*users || !*items)
        return -1;
    uint64_t mask = ((uint64_t)1 << item_bits) - 1;
    for (size_t i = 0; i < n; ++i) {
        (*users)[i] = (int32_t)(keys[i] >> item_bits);
        (*items)[i] = (int32_t)(keys[i] & mask);
    }
    return 0;
}

int td_build(const td_interactions *train, const td_interactions *test, double test_fraction, uint64_t seed,
             td_dataset *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    if (!train || !train->count) {
        td_set_err(err, err_size, "no training interactions");
        return -1;
    }
    if (!test && !(test_fraction >= 0 && test_fraction < 1)) {
        td_set_err(err, err_size, "the test fraction must be at least 0 and below 1, not %g", test_fraction);
        return -1;
    }
    id_map um = {0}, im = {0};
    uint64_t *keys = NULL, *tkeys = NULL;
    uint32_t *order = NULL;
    unsigned char *held = NULL;
    int rc = -1, oom = 0;
    if (map_init(&um, train->users, train->count) || map_init(&im, train->items, train->count))
        goto out_of_memory;
    int32_t *du = malloc(train->count * sizeof *du), *di = malloc(train->count * sizeof *di);
    if (!du || !di) {
        free(du);
        free(di);
        goto out_of_memory;
    }
    for (size_t k = 0; k < train->count; ++k) {
        int32_t u = map_add(&um, train->users[k]), i = map_add(&im, train->items[k]);
        if (u == -1 || i == -1) {
            free(du);
            free(di);
            goto out_of_memory;
        }
        if (u == -2 || i == -2) {
            free(du);
            free(di);
            td_set_err(err, err_size, "more than %d %s", INT32_MAX, u == -2 ? "users" : "items");
            goto done;
        }
        du[k] = u;
        di[k] = i;
    }
    out->num_users = (uint32_t)um.count;
    out->num_items = (uint32_t)im.count;
    int item_bits = bits_for(im.count), all_bits = bits_for(um.count) + item_bits;
    keys = malloc(train->count * sizeof *keys);
    if (!keys) {
        free(du);
        free(di);
        goto out_of_memory;
    }
    for (size_t k = 0; k < train->count; ++k)
        keys[k] = (uint64_t)du[k] << item_bits | (uint64_t)di[k];
    free(du);
    free(di);
    size_t n = sort_unique(keys, train->count, all_bits, &oom);
    if (oom)
        goto out_of_memory;
    out->train_duplicates = train->count - n;

    size_t nt = 0;
    if (test) {
        /* A test file: map with the training ids, leave out the unknown, merge repeats, leave out training pairs. */
        tkeys = malloc((test->count ? test->count : 1) * sizeof *tkeys);
        if (!tkeys)
            goto out_of_memory;
        for (size_t k = 0; k < test->count; ++k) {
            int32_t u = map_find(&um, test->users[k]), i = map_find(&im, test->items[k]);
            if (u < 0 || i < 0)
                ++out->test_dropped;
            else
                tkeys[nt++] = (uint64_t)u << item_bits | (uint64_t)i;
        }
        size_t before = nt;
        nt = sort_unique(tkeys, nt, all_bits, &oom);
        if (oom)
            goto out_of_memory;
        out->test_duplicates = before - nt;
        size_t a = 0, m = 0;
        for (size_t k = 0; k < nt; ++k) {
            while (a < n && keys[a] < tkeys[k])
                ++a;
            if (a < n && keys[a] == tkeys[k])
                ++out->test_in_train;
            else
                tkeys[m++] = tkeys[k];
        }
        nt = m;
    } else if (test_fraction > 0) {
        /*
         * Hold-out: user by user (in dense order), floor(f * n_u) of the user's
         * n_u items, chosen by a partial Fisher-Yates with one generator
         * seeded from seed, then both parts kept in (user, item) order. The
         * 1e-9 keeps floor(0.29 * 100) at 29 despite rounding.
         */
        uint64_t s = seed ^ 0x53504C4954ull; /* "SPLIT" */
        tkeys = malloc(n * sizeof *tkeys);
        held = calloc(n, 1);
        size_t max_n = 0;
        for (size_t a = 0, b; a < n; a = b) {
            for (b = a + 1; b < n && keys[b] >> item_bits == keys[a] >> item_bits; ++b)
                ;
            max_n = b - a > max_n ? b - a : max_n;
        }
        order = malloc(max_n * sizeof *order);
        if (!tkeys || !held || !order)
            goto out_of_memory;
        for (size_t a = 0, b; a < n; a = b) {
            for (b = a + 1; b < n && keys[b] >> item_bits == keys[a] >> item_bits; ++b)
                ;
            uint32_t nu = (uint32_t)(b - a), take = (uint32_t)floor(test_fraction * nu + 1e-9);
            for (uint32_t j = 0; j < nu; ++j)
                order[j] = j;
            for (uint32_t j = 0; j < take; ++j) {
                uint32_t r = j + uniform_below(&s, nu - j), t = order[j];
                order[j] = order[r];
                order[r] = t;
                held[a + order[j]] = 1;
            }
        }
        size_t m = 0;
        for (size_t k = 0; k < n; ++k) {
            if (held[k])
                tkeys[nt++] = keys[k];
            else
                keys[m++] = keys[k];
        }
        n = m;
        /* An item whose every pair was held out is not in the training data:
         * its test pairs are left out and counted, as for a test file. (Every
         * user keeps at least one training pair: floor(f * n_u) < n_u.) */
        unsigned char *trained = calloc(out->num_items ? out->num_items : 1, 1);
        if (!trained)
            goto out_of_memory;
        const uint64_t item_mask = ((uint64_t)1 << item_bits) - 1;
        for (size_t k = 0; k < n; ++k)
            trained[keys[k] & item_mask] = 1;
        m = 0;
        for (size_t k = 0; k < nt; ++k) {
            if (trained[tkeys[k] & item_mask])
                tkeys[m++] = tkeys[k];
            else
                ++out->test_dropped;
        }
        nt = m;
        free(trained);
    }
    out->train_count = n;
    out->test_count = nt;
    if (unpack(keys, n, item_bits, &out->train_users, &out->train_items) ||
        unpack(tkeys, nt, item_bits, &out->test_users, &out->test_items))
        goto out_of_memory;
    out->user_ids = um.ids;
    out->item_ids = im.ids;
    um.ids = im.ids = NULL;
    rc = 0;
    goto done;
out_of_memory:
    td_set_err(err, err_size, "out of memory (%zu interactions)", train->count);
done:
    if (rc)
        td_dataset_free(out);
    map_free(&um);
    map_free(&im);
    free(keys);
    free(tkeys);
    free(order);
    free(held);
    return rc;
}

/* ---- cold items ------------------------------------------------------------------------ */

/* The interactions of x whose item is (cold = 1) or is not (cold = 0) in the set m; NULL x: none. */
static int filter_items(const td_interactions *x, const id_map *m, int cold, td_interactions *out)
{
    memset(out, 0, sizeof *out);
    const size_t n = x ? x->count : 0;
    out->users = malloc((n ? n : 1) * sizeof *out->users);
    out->items = malloc((n ? n : 1) * sizeof *out->items);
    out->ratings = malloc((n ? n : 1) * sizeof *out->ratings);
    if (!out->users || !out->items || !out->ratings) {
        td_interactions_free(out);
        return -1;
    }
    for (size_t k = 0; k < n; ++k)
        if ((map_find(m, x->items[k]) >= 0) == cold) {
            out->users[out->count] = x->users[k];
            out->items[out->count] = x->items[k];
            out->ratings[out->count] = x->ratings[k];
            ++out->count;
        }
    return 0;
}

int td_build_cold(const td_interactions *train, const td_interactions *test, double test_fraction, double cold_fraction,
                  uint64_t seed, td_dataset *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    if (!train || !train->count) {
        td_set_err(err, err_size, "no training interactions");
        return -1;
    }
    if (!(cold_fraction > 0 && cold_fraction < 1)) {
        td_set_err(err, err_size, "the cold item fraction must be above 0 and below 1, not %g", cold_fraction);
        return -1;
    }
    id_map all = {0}, cold = {0}, users = {0};
    td_interactions warm_train = {0}, warm_test = {0}, cold_train = {0}, cold_test = {0};
    uint32_t *order = NULL;
    uint64_t *keys = NULL;
    int rc = -1;
    /* The distinct items in order of first appearance, then a partial Fisher-Yates picks the cold ones. */
    if (map_init(&all, train->items, train->count))
        goto out_of_memory;
    for (size_t k = 0; k < train->count; ++k)
        if (map_add(&all, train->items[k]) < 0)
            goto out_of_memory;
    const uint32_t n = (uint32_t)all.count, take = (uint32_t)floor(cold_fraction * n + 1e-9);
    if (take >= n || take == 0) {
        td_set_err(err, err_size, "--cold-items %g of %u items %s", cold_fraction, n,
                   take ? "leaves no warm item" : "holds out no item");
        goto done;
    }
    if (!(order = malloc((size_t)n * sizeof *order)))
        goto out_of_memory;
    for (uint32_t j = 0; j < n; ++j)
        order[j] = j;
    uint64_t s = seed ^ 0x434F4C44ull; /* "COLD" */
    for (uint32_t j = 0; j < take; ++j) {
        uint32_t r = j + uniform_below(&s, n - j), t = order[j];
        order[j] = order[r];
        order[r] = t;
    }
    /* The cold set, its members in order of first appearance (the order of their dense indices). */
    qsort(order, take, sizeof *order, cmp_u32);
    if (map_alloc(&cold, 1024))
        goto out_of_memory;
    for (uint32_t j = 0; j < take; ++j)
        if (map_add(&cold, all.ids[order[j]]) < 0)
            goto out_of_memory;
    if (filter_items(train, &cold, 0, &warm_train) || filter_items(test, &cold, 0, &warm_test) ||
        filter_items(train, &cold, 1, &cold_train) || filter_items(test, &cold, 1, &cold_test))
        goto out_of_memory;
    if (td_build(&warm_train, test ? &warm_test : NULL, test_fraction, seed, out, err, err_size))
        goto done;

    /* The cold items after the warm ones; their pairs with the users' dense indices. */
    out->cold_first = out->num_items;
    out->num_cold_items = take;
    int64_t *ids = realloc(out->item_ids, ((size_t)out->num_items + take) * sizeof *ids);
    if (!ids)
        goto out_of_memory;
    out->item_ids = ids;
    memcpy(ids + out->num_items, cold.ids, (size_t)take * sizeof *ids);
    if ((size_t)out->num_items + take > INT32_MAX) {
        td_set_err(err, err_size, "more than %d items", INT32_MAX);
        goto done;
    }
    out->num_items += take;
    if (map_init(&users, out->user_ids, out->num_users))
        goto out_of_memory;
    for (uint32_t u = 0; u < out->num_users; ++u)
        if (map_add(&users, out->user_ids[u]) < 0)
            goto out_of_memory;
    const size_t pairs = cold_train.count + cold_test.count;
    const int item_bits = bits_for(out->num_items), all_bits = bits_for(out->num_users) + item_bits;
    if (!(keys = malloc((pairs ? pairs : 1) * sizeof *keys)))
        goto out_of_memory;
    size_t m = 0;
    for (int part = 0; part < 2; ++part) {
        const td_interactions *x = part ? &cold_test : &cold_train;
        for (size_t k = 0; k < x->count; ++k) {
            const int32_t u = map_find(&users, x->users[k]);
            if (u < 0) {
                ++out->cold_dropped;
                continue;
            }
            const int32_t i = (int32_t)out->cold_first + map_find(&cold, x->items[k]);
            keys[m++] = (uint64_t)u << item_bits | (uint64_t)i;
        }
    }
    int oom = 0;
    m = sort_unique(keys, m, all_bits, &oom);
    if (oom || unpack(keys, m, item_bits, &out->cold_users, &out->cold_items))
        goto out_of_memory;
    out->cold_count = m;
    rc = 0;
    goto done;
out_of_memory:
    td_set_err(err, err_size, "out of memory (%zu interactions)", train->count);
done:
    if (rc)
        td_dataset_free(out);
    map_free(&all);
    map_free(&cold);
    map_free(&users);
    td_interactions_free(&warm_train);
    td_interactions_free(&warm_test);
    td_interactions_free(&cold_train);
    td_interactions_free(&cold_test);
    free(order);
    free(keys);
    return rc;
}

/* ---- sample weights ----------------------------------------------------------------------- */

int td_train_weights(td_dataset *d, const td_interactions *train, char *err, size_t err_size)
{
    free(d->train_weights);
    d->train_weights = NULL;
    id_map users = {0}, items = {0};
    uint64_t *first = NULL; /* the user's training pairs: [first[u], first[u + 1]) */
    float *w = calloc(d->train_count ? d->train_count : 1, sizeof *w);
    double *sum = calloc(d->train_count ? d->train_count : 1, sizeof *sum);
    int rc = -1;
    if (!w || !sum || !(first = calloc((size_t)d->num_users + 1, sizeof *first)) ||
        map_init(&users, d->user_ids, d->num_users) || map_init(&items, d->item_ids, d->num_items))
        goto out_of_memory;
    for (uint32_t u = 0; u < d->num_users; ++u)
        if (map_add(&users, d->user_ids[u]) < 0)
            goto out_of_memory;
    for (uint32_t i = 0; i < d->num_items; ++i)
        if (map_add(&items, d->item_ids[i]) < 0)
            goto out_of_memory;
    for (size_t j = 0; j < d->train_count; ++j)
        ++first[d->train_users[j] + 1];
    for (uint32_t u = 0; u < d->num_users; ++u)
        first[u + 1] += first[u];
    for (size_t k = 0; k < train->count; ++k) {
        if (!(train->ratings[k] >= 0)) {
            td_set_err(err, err_size, "--weights: user %lld, item %lld has the weight %g; sample weights must be >= 0",
                       (long long)train->users[k], (long long)train->items[k], (double)train->ratings[k]);
            goto done;
        }
        const int32_t u = map_find(&users, train->users[k]), i = map_find(&items, train->items[k]);
        if (u < 0 || i < 0)
            continue;
        /* A binary search among the user's items (sorted): the pair, if it is a training pair. */
        uint64_t lo = first[u], hi = first[u + 1];
        while (lo < hi) {
            const uint64_t mid = lo + (hi - lo) / 2;
            if (d->train_items[mid] < i)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < first[u + 1] && d->train_items[lo] == i)
            sum[lo] += train->ratings[k];
    }
    for (size_t j = 0; j < d->train_count; ++j) {
        if (!(sum[j] <= FLT_MAX)) {
            td_set_err(err, err_size, "--weights: the weights of user %lld, item %lld sum beyond the float range",
                       (long long)d->user_ids[d->train_users[j]], (long long)d->item_ids[d->train_items[j]]);
            goto done;
        }
        w[j] = (float)sum[j];
    }
    d->train_weights = w;
    w = NULL;
    rc = 0;
    goto done;
out_of_memory:
    td_set_err(err, err_size, "out of memory (%zu training pairs)", d->train_count);
done:
    free(w);
    free(sum);
    free(first);
    map_free(&users);
    map_free(&items);
    return rc;
}
