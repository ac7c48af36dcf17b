/*
 * Model files (warploss.h, "model files"): the format, parsing without OpenCL
 * (wl_model_file_parse, fuzzed by tests/fuzz/fuzz_model_file.c), packing,
 * saving through a temporary file and a rename, loading into a new model,
 * and the options of a model.
 *
 * Format version 2 (README.md, "Model files"). Every integer and float is
 * little-endian whatever the host, written and read byte by byte, never as a
 * struct; floats are IEEE 754 binary32, bit for bit.
 *
 *   offset size  type     field
 *        0    8  char[8]  magic "WLMODEL1" (no NUL)
 *        8    4  u32      format version, 2
 *       12    4  u32      header size, 64 (magic included; the first section starts there)
 *       16    4  u32      num_users  U  >= 1
 *       20    4  u32      num_items  I  >= 2
 *       24    4  u32      dim        D  >= 1
 *       28    4  u32      item_bias     0 or 1
 *       32    4  u32      optimizer     0 Adagrad, 1 SGD (wl_optimizer)
 *       36    4  f32      learning_rate finite, > 0
 *       40    4  f32      l2_users      finite, >= 0
 *       44    4  f32      l2_items      finite, >= 0
 *       48    8  u64      seed
 *       56    4  u32      num_user_features FU (0: none, each user its own row of U)
 *       60    4  u32      num_item_features FI (0: none)
 *       64               sections, each: u32 tag (4 ASCII characters, first at the
 *                        lowest address), u32 flags, u64 length, then length bytes:
 *                          "TABL" flags 0  f32 U[RU x D], V[RI x D], b[RI] (b all 0 without item_bias),
 *                                          RU = FU or U without user features, RI = FI or I
 *                          "ADAG" flags 0  Adagrad only: the accumulators, same shapes, finite, > 0
 *                          "KNOW" flags 0  known positives: u64 indptr[U + 1] (indptr[0] = 0,
 *                                          non-decreasing), i32 items[indptr[U]] in [0, I),
 *                                          strictly ascending within a user
 *                          "UFEA" flags 0  with user features only: u64 indptr[U + 1], i32
 *                                          features[n] in [0, FU) strictly ascending per row,
 *                                          f32 weights[n] finite (n = indptr[U])
 *                          "IFEA" flags 0  with item features only: the same over I rows and FI
 *                          "APPL" flags 1  the application's bytes (any length, 0 too)
 *   end - 8           8  u64      checksum: 64-bit FNV-1a (offset basis 0xcbf29ce484222325,
 *                                 prime 0x100000001b3) over every byte before it
 *
 * Flags bit 0: optional (a reader that does not know the tag skips the
 * section; an unknown tag without it is refused); the other bits are 0. The
 * known sections come once each, in the order above (ADAG only with Adagrad,
 * UFEA and IFEA only with features; a file without features is byte for
 * byte what the library wrote before it had them),
 * with exactly the lengths their shapes give; unknown optional sections may
 * come between them; the checksum follows the last section directly.
 *
 * Version 1 (tools/warploss-train before the library had model files): an
 * 88-byte header (as above to offset 28, then optimizer, reserved u32,
 * learning_rate, l2_users, l2_items, reserved u32, seed, epochs_done u64,
 * batches_done u64, reserved u64), the tables, the accumulators (Adagrad),
 * i64 user_ids[U], i64 item_ids[I], the checksum. It loads with no known
 * positives, and the trainer's fields become the application bytes
 * u64 epochs_done, u64 batches_done, i64 user_ids[U], i64 item_ids[I].
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"

#define MAGIC "WLMODEL1"
#define V1_HEADER 88u
#define V2_HEADER 64u
#define SECTION_HEADER 16u
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull
#define FLAG_OPTIONAL 1u

/* The known sections, in their order in the file. */
enum { SEC_TABLES, SEC_ADAGRAD, SEC_KNOWN, SEC_USER_FEATURES, SEC_ITEM_FEATURES, SEC_APP, SEC_COUNT };
static const char section_tags[SEC_COUNT][5] = {"TABL", "ADAG", "KNOW", "UFEA", "IFEA", "APPL"};
static const uint32_t section_flags[SEC_COUNT] = {0, 0, 0, 0, 0, FLAG_OPTIONAL};

static const char *const table_names[3] = {"the user table", "the item table", "the item biases"};
static const char *const state_names[3] = {"the user table's accumulators", "the item table's accumulators",
                                           "the item biases' accumulators"};

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; ++i) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

static float get_f32(const unsigned char *p)
{
    const uint32_t bits = get_u32(p);
    float v;
    memcpy(&v, &bits, 4);
    return v;
}

static unsigned char *put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; ++i)
        p[i] = (unsigned char)(v >> (8 * i));
    return p + 4;
}

static unsigned char *put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; ++i)
        p[i] = (unsigned char)(v >> (8 * i));
    return p + 8;
}

static unsigned char *put_f32(unsigned char *p, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    return put_u32(p, bits);
}

/* a + b and a * b in size_t; 0 on overflow */
static int add_ok(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return 0;
    *out = a + b;
    return 1;
}

static int mul_ok(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}

/* Element counts of the three tables, and the bytes of TABL (= ADAG); 0 on overflow. */
static int table_sizes(const wl_model_options *o, size_t count[3], size_t *bytes)
{
    size_t total;
    const uint32_t users = o->num_user_features ? o->num_user_features : o->num_users;
    const uint32_t items = o->num_item_features ? o->num_item_features : o->num_items;
    return mul_ok(users, o->dim, &count[0]) && mul_ok(items, o->dim, &count[1]) &&
           (count[2] = items, add_ok(count[0], count[1], &total)) && add_ok(total, count[2], &total) &&
           mul_ok(total, 4, bytes);
}

/* A message into err (NULL or 0 bytes: none); returns st. */
static wl_status say(char *err, size_t err_size, wl_status st, const char *fmt, ...) WL_PRINTF(4, 5);
static wl_status say(char *err, size_t err_size, wl_status st, const char *fmt, ...)
{
    if (err && err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* ------------------------------------------------------------ checks */

/* A side's feature matrix (rows, features, the side's name): a CSR as
 * wl_model_set_features takes it. */
static wl_status check_features(const uint64_t *ptr, const int32_t *idx, const float *w, uint32_t rows,
                                uint32_t features, const char *side, char *err, size_t err_size)
{
    if (ptr[0] != 0)
        return say(err, err_size, WL_ERROR_FILE, "%s features: indptr[0] is %llu; it must be 0", side,
                   (unsigned long long)ptr[0]);
    for (uint32_t r = 0; r < rows; ++r)
        if (ptr[r + 1] < ptr[r])
            return say(err, err_size, WL_ERROR_FILE, "%s features: indptr[%u] = %llu is less than indptr[%u] = %llu",
                       side, (unsigned)r + 1, (unsigned long long)ptr[r + 1], (unsigned)r, (unsigned long long)ptr[r]);
    for (uint32_t r = 0; r < rows; ++r) {
        for (uint64_t k = ptr[r]; k < ptr[r + 1]; ++k) {
            if (idx[k] < 0 || (uint32_t)idx[k] >= features)
                return say(err, err_size, WL_ERROR_FILE, "%s features: features[%llu] = %d is out of range [0, %u)",
                           side, (unsigned long long)k, (int)idx[k], (unsigned)features);
            if (k > ptr[r] && idx[k] <= idx[k - 1])
                return say(err, err_size, WL_ERROR_FILE,
                           "%s features: features[%llu] = %d after %d: row %u's features are not strictly ascending",
                           side, (unsigned long long)k, (int)idx[k], (int)idx[k - 1], (unsigned)r);
            if (!isfinite(w[k]))
                return say(err, err_size, WL_ERROR_NONFINITE, "%s features: weights[%llu] is %g: NaN or Inf", side,
                           (unsigned long long)k, (double)w[k]);
        }
    }
    return WL_SUCCESS;
}

static wl_status check_options(const wl_model_options *o, char *err, size_t err_size)
{
    if (o->num_users < 1)
        return say(err, err_size, WL_ERROR_FILE, "num_users is 0; a model has at least 1 user");
    if (o->num_items < 2)
        return say(err, err_size, WL_ERROR_FILE, "num_items is %u; a model has at least 2 items",
                   (unsigned)o->num_items);
    if (o->dim < 1)
        return say(err, err_size, WL_ERROR_FILE, "dim is 0; it must be at least 1");
    if (o->item_bias != 0 && o->item_bias != 1)
        return say(err, err_size, WL_ERROR_FILE, "item_bias is %d; it must be 0 or 1", o->item_bias);
    if (o->optimizer != WL_OPTIMIZER_ADAGRAD && o->optimizer != WL_OPTIMIZER_SGD)
        return say(err, err_size, WL_ERROR_FILE, "unknown optimizer %u (0 is Adagrad, 1 is SGD)",
                   (unsigned)o->optimizer);
    if (!isfinite(o->learning_rate) || !(o->learning_rate > 0.0f))
        return say(err, err_size, WL_ERROR_FILE, "learning rate %g; it must be finite and > 0",
                   (double)o->learning_rate);
    if (!isfinite(o->l2_users) || o->l2_users < 0.0f || !isfinite(o->l2_items) || o->l2_items < 0.0f)
        return say(err, err_size, WL_ERROR_FILE, "l2 (users %g, items %g) must be finite and >= 0", (double)o->l2_users,
                   (double)o->l2_items);
    return WL_SUCCESS;
}

/* Tables finite, accumulators finite and > 0, no bias without item_bias, the known positives a valid CSR. */
static wl_status check_content(const wl_model_file *f, char *err, size_t err_size)
{
    const wl_model_options *o = &f->options;
    size_t count[3], bytes;
    if (!table_sizes(o, count, &bytes))
        return say(err, err_size, WL_ERROR_FILE, "sizes overflow (%u users, %u items, dim %u)", (unsigned)o->num_users,
                   (unsigned)o->num_items, (unsigned)o->dim);
    for (int t = 0; t < 3; ++t) {
        const float *v = f->table[t], *s = f->state[t];
        for (size_t k = 0; k < count[t]; ++k)
            if (!isfinite(v[k]))
                return say(err, err_size, WL_ERROR_NONFINITE, "%s[%zu] is %g: NaN or Inf in a table", table_names[t], k,
                           (double)v[k]);
        for (size_t k = 0; s && k < count[t]; ++k) {
            if (!isfinite(s[k]))
                return say(err, err_size, WL_ERROR_NONFINITE, "%s[%zu] is %g: NaN or Inf in the optimizer state",
                           state_names[t], k, (double)s[k]);
            if (!(s[k] > 0.0f))
                return say(err, err_size, WL_ERROR_FILE, "%s[%zu] is %g: an Adagrad accumulator must be > 0",
                           state_names[t], k, (double)s[k]);
        }
    }
    if (!o->item_bias)
        for (size_t k = 0; k < count[2]; ++k)
            if (f->table[2][k] != 0.0f)
                return say(err, err_size, WL_ERROR_FILE,
                           "item bias %zu is %g, but the model has no item biases (they stay 0)", k,
                           (double)f->table[2][k]);
    const uint64_t *ptr = f->known_ptr;
    if (ptr[0] != 0)
        return say(err, err_size, WL_ERROR_FILE, "known positives: indptr[0] is %llu; it must be 0",
                   (unsigned long long)ptr[0]);
    /* indptr first: non-decreasing, every entry is at most indptr[num_users], the items' count */
    for (uint32_t u = 0; u < o->num_users; ++u)
        if (ptr[u + 1] < ptr[u])
            return say(err, err_size, WL_ERROR_FILE,
                       "known positives: indptr[%u] = %llu is less than indptr[%u] = %llu", (unsigned)u + 1,
                       (unsigned long long)ptr[u + 1], (unsigned)u, (unsigned long long)ptr[u]);
    for (uint32_t u = 0; u < o->num_users; ++u) {
        for (uint64_t k = ptr[u]; k < ptr[u + 1]; ++k) {
            const int32_t x = f->known_items[k];
            if (x < 0 || (uint32_t)x >= o->num_items)
                return say(err, err_size, WL_ERROR_FILE, "known positives: items[%llu] = %d is out of range [0, %u)",
                           (unsigned long long)k, (int)x, (unsigned)o->num_items);
            if (k > ptr[u] && x <= f->known_items[k - 1])
                return say(err, err_size, WL_ERROR_FILE,
                           "known positives: items[%llu] = %d after %d: user %u's items are not strictly ascending",
                           (unsigned long long)k, (int)x, (int)f->known_items[k - 1], (unsigned)u);
        }
    }
    const uint32_t rows[2] = {o->num_users, o->num_items}, features[2] = {o->num_user_features, o->num_item_features};
    for (int s = 0; s < 2; ++s) {
        wl_status st;
        if (features[s] && (st = check_features(f->feat_ptr[s], f->feat_idx[s], f->feat_w[s], rows[s], features[s],
                                                s ? "item" : "user", err, err_size)) != WL_SUCCESS)
            return st;
    }
    return WL_SUCCESS;
}

/* ------------------------------------------------------------ parsing */

void wl_model_file_free(wl_model_file *f)
{
    if (!f)
        return;
    for (int t = 0; t < 3; ++t) {
        free(f->table[t]);
        free(f->state[t]);
    }
    free(f->known_ptr);
    free(f->known_items);
    for (int s = 0; s < 2; ++s) {
        free(f->feat_ptr[s]);
        free(f->feat_idx[s]);
        free(f->feat_w[s]);
    }
    free(f->app_owned);
    memset(f, 0, sizeof *f);
}

/* The options of a header: version 1 and 2 share the fields to offset 32. */
static void read_options(const unsigned char *d, uint32_t version, wl_model_options *o, uint32_t *item_bias,
                         uint32_t *optimizer)
{
    memset(o, 0, sizeof *o);
    o->num_users = get_u32(d + 16);
    o->num_items = get_u32(d + 20);
    o->dim = get_u32(d + 24);
    *item_bias = get_u32(d + 28);
    *optimizer = get_u32(d + 32);
    const size_t at = version == 1 ? 40 : 36;
    o->learning_rate = get_f32(d + at);
    o->l2_users = get_f32(d + at + 4);
    o->l2_items = get_f32(d + at + 8);
    o->seed = get_u64(d + (version == 1 ? 56 : 48));
    if (version == 2) {
        o->num_user_features = get_u32(d + 56);
        o->num_item_features = get_u32(d + 60);
    }
    o->item_bias = *item_bias <= 1 ? (int)*item_bias : 2;
    o->optimizer = *optimizer <= 1 ? (wl_optimizer)*optimizer : (wl_optimizer)2;
}

/* Decode n floats (or, with floats NULL, nothing) from p; malloc'd into *out. */
static int decode_floats(const unsigned char *p, size_t n, float **out)
{
    *out = malloc(n ? n * sizeof(float) : 1);
    if (!*out)
        return 0;
    for (size_t k = 0; k < n; ++k, p += 4)
        (*out)[k] = get_f32(p);
    return 1;
}

/* The tables and (Adagrad) the accumulators, back to back from p. */
static int decode_tables(const unsigned char *tables, const unsigned char *state, const size_t count[3],
                         wl_model_file *f)
{
    for (int t = 0; t < 3; ++t) {
        if (!decode_floats(tables, count[t], &f->table[t]))
            return 0;
        tables += 4 * count[t];
        if (state) {
            if (!decode_floats(state, count[t], &f->state[t]))
                return 0;
            state += 4 * count[t];
        }
    }
    return 1;
}

/* Every refusal of a parse: the reason, and whether the checksum also failed. */
typedef struct parse_state {
    char *err;
    size_t err_size;
    int sum_bad; /* the stored checksum does not match (known once the size allows it) */
} parse_state;

static wl_status refuse(parse_state *ps, const char *fmt, ...) WL_PRINTF(2, 3);
static wl_status refuse(parse_state *ps, const char *fmt, ...)
{
    if (!ps->err || !ps->err_size)
        return WL_ERROR_FILE;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err, ps->err_size, fmt, ap);
    va_end(ap);
    if (ps->sum_bad) {
        const size_t n = strlen(ps->err);
        snprintf(ps->err + n, ps->err_size - n, "; the checksum does not match either: the file is damaged");
    }
    return WL_ERROR_FILE;
}

/* The refusal when everything but the checksum is right. */
static wl_status checksum_mismatch(parse_state *ps, const unsigned char *d, size_t size)
{
    ps->sum_bad = 0;
    return refuse(ps, "checksum mismatch (stored %016llx, computed %016llx): the file is damaged",
                  (unsigned long long)get_u64(d + size - 8), (unsigned long long)fnv1a(d, size - 8));
}

static wl_status out_of_memory(parse_state *ps)
{
    return say(ps->err, ps->err_size, WL_ERROR_OUT_OF_MEMORY, "out of host memory for the model's tables");
}

/* The header's options, checked; version 1 also its reserved fields. */
static wl_status parse_options(parse_state *ps, const unsigned char *d, uint32_t version, wl_model_options *o)
{
    uint32_t item_bias, optimizer;
    read_options(d, version, o, &item_bias, &optimizer);
    if (version == 1 && (get_u32(d + 36) || get_u32(d + 52) || get_u64(d + 80)))
        return refuse(ps, "a reserved header field is not 0");
    if (item_bias > 1)
        return refuse(ps, "item_bias is %u; it must be 0 or 1", (unsigned)item_bias);
    if (optimizer > (uint32_t)WL_OPTIMIZER_SGD)
        return refuse(ps, "unknown optimizer %u (0 is Adagrad, 1 is SGD)", (unsigned)optimizer);
    char why[256];
    if (check_options(o, why, sizeof why) != WL_SUCCESS)
        return refuse(ps, "%s", why);
    return WL_SUCCESS;
}

static wl_status parse_v1(parse_state *ps, const unsigned char *d, size_t size, wl_model_file *f)
{
    wl_model_options o;
    wl_status st = parse_options(ps, d, 1, &o);
    if (st != WL_SUCCESS)
        return st;
    const int adagrad = o.optimizer == WL_OPTIMIZER_ADAGRAD;
    size_t count[3], tables, ids, expected;
    if (!table_sizes(&o, count, &tables) || !add_ok(o.num_users, o.num_items, &ids) || !mul_ok(ids, 8, &ids) ||
        !mul_ok(tables, adagrad ? 2 : 1, &expected) || !add_ok(expected, ids, &expected) ||
        !add_ok(expected, V1_HEADER + 8u, &expected))
        return refuse(ps, "sizes overflow (%u users, %u items, dim %u)", (unsigned)o.num_users, (unsigned)o.num_items,
                      (unsigned)o.dim);
    if (expected != size)
        return refuse(ps, "%zu bytes, but %u users, %u items, dim %u (%s) need %zu in version 1: the file is %s", size,
                      (unsigned)o.num_users, (unsigned)o.num_items, (unsigned)o.dim, adagrad ? "Adagrad" : "SGD",
                      expected, size < expected ? "truncated or damaged" : "damaged (too long)");
    if (ps->sum_bad)
        return checksum_mismatch(ps, d, size);
    f->options = o;
    const unsigned char *p = d + V1_HEADER;
    f->known_ptr = calloc((size_t)o.num_users + 1, sizeof *f->known_ptr);
    /* the application bytes: epochs_done and batches_done (offset 64), then the ids */
    f->app_size = 16 + ids;
    f->app_owned = malloc(f->app_size);
    if (!f->known_ptr || !f->app_owned || !decode_tables(p, adagrad ? p + tables : NULL, count, f))
        return out_of_memory(ps);
    memcpy(f->app_owned, d + 64, 16);
    memcpy(f->app_owned + 16, p + (adagrad ? 2 : 1) * tables, ids);
    f->app = f->app_owned;
    return WL_SUCCESS;
}

/* A tag as text for messages: printable characters as they are, others as '?', and the hex value. */
static void tag_text(const unsigned char *p, char out[32])
{
    char c[5];
    for (int i = 0; i < 4; ++i)
        c[i] = p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\'' ? (char)p[i] : '?';
    c[4] = '\0';
    snprintf(out, 32, "'%s' (0x%08x)", c, (unsigned)get_u32(p));
}

static wl_status parse_v2(parse_state *ps, const unsigned char *d, size_t size, wl_model_file *f)
{
    wl_model_options o;
    wl_status st = parse_options(ps, d, 2, &o);
    if (st != WL_SUCCESS)
        return st;
    const int adagrad = o.optimizer == WL_OPTIMIZER_ADAGRAD;
    size_t count[3], tables, ptr_bytes;
    if (!table_sizes(&o, count, &tables) || !mul_ok((size_t)o.num_users + 1, 8, &ptr_bytes))
        return refuse(ps, "sizes overflow (%u users, %u items, dim %u)", (unsigned)o.num_users, (unsigned)o.num_items,
                      (unsigned)o.dim);
    /* the sections, up to the checksum */
    const size_t end = size - 8;
    size_t at = V2_HEADER, offset[SEC_COUNT] = {0}, length[SEC_COUNT] = {0};
    int seen[SEC_COUNT] = {0}, last = -1;
    char tag[32];
    while (at < end) {
        if (end - at < SECTION_HEADER)
            return refuse(ps,
                          "%zu bytes before the checksum at offset %zu, too few for a section header: the file "
                          "is truncated or damaged",
                          end - at, at);
        tag_text(d + at, tag);
        const uint32_t flags = get_u32(d + at + 4);
        const uint64_t len = get_u64(d + at + 8);
        if (len > end - at - SECTION_HEADER)
            return refuse(ps,
                          "section %s at offset %zu has %llu bytes, but only %zu are left before the checksum: the "
                          "file is truncated or damaged",
                          tag, at, (unsigned long long)len, end - at - SECTION_HEADER);
        if (flags & ~FLAG_OPTIONAL)
            return refuse(ps, "section %s at offset %zu has flags 0x%x; only bit 0 (optional) is defined", tag, at,
                          (unsigned)flags);
        int s = 0;
        while (s < SEC_COUNT && memcmp(d + at, section_tags[s], 4) != 0)
            ++s;
        if (s == SEC_COUNT) {
            if (!(flags & FLAG_OPTIONAL))
                return refuse(ps,
                              "unknown required section %s at offset %zu (written by a newer warploss?); this "
                              "library cannot read the file",
                              tag, at);
            ++f->skipped;
        } else {
            if (seen[s])
                return refuse(ps, "section %s appears twice", tag);
            if (s < last)
                return refuse(ps, "section %s after %s; the order is TABL, ADAG, KNOW, UFEA, IFEA, APPL", tag,
                              section_tags[last]);
            if (flags != section_flags[s])
                return refuse(ps, "section %s has flags 0x%x; it must have 0x%x", tag, (unsigned)flags,
                              (unsigned)section_flags[s]);
            seen[s] = 1;
            last = s;
            offset[s] = at + SECTION_HEADER;
            length[s] = (size_t)len;
        }
        at += SECTION_HEADER + (size_t)len;
    }
    static const char *const missing[SEC_COUNT] = {"the tables",
                                                   "the Adagrad state",
                                                   "the known positives",
                                                   "the user feature matrix",
                                                   "the item feature matrix",
                                                   "the application bytes"};
    const int wanted[SEC_COUNT] = {1, adagrad, 1, o.num_user_features != 0, o.num_item_features != 0, 1};
    for (int s = 0; s < SEC_COUNT; ++s)
        if (!seen[s] && wanted[s])
            return refuse(ps, "the section %s (%s) is missing", section_tags[s], missing[s]);
    if (seen[SEC_ADAGRAD] && !adagrad)
        return refuse(ps, "an ADAG section (Adagrad state) in a model trained with SGD");
    for (int s = SEC_USER_FEATURES; s <= SEC_ITEM_FEATURES; ++s)
        if (seen[s] && !wanted[s])
            return refuse(ps, "a %s section (%s) in a model without them (num_%s_features is 0)", section_tags[s],
                          missing[s], s == SEC_USER_FEATURES ? "user" : "item");
    /* the feature matrices: indptr[rows + 1], then n features and n weights */
    size_t feat_n[2] = {0, 0};
    for (int s = 0; s < 2; ++s) {
        const int sec = SEC_USER_FEATURES + s;
        const size_t rows = s ? o.num_items : o.num_users;
        if (!seen[sec])
            continue;
        const size_t fptr = (rows + 1) * 8;
        if (length[sec] < fptr || (length[sec] - fptr) % 8 != 0)
            return refuse(ps, "section %s has %zu bytes: not indptr[%zu] (%zu bytes) and whole 8-byte entries",
                          section_tags[sec], length[sec], rows + 1, fptr);
        feat_n[s] = (length[sec] - fptr) / 8;
        const uint64_t stated = get_u64(d + offset[sec] + fptr - 8);
        if (stated != feat_n[s])
            return refuse(ps, "section %s: indptr[%zu] is %llu, but the section holds %zu entries", section_tags[sec],
                          rows, (unsigned long long)stated, feat_n[s]);
    }
    if (length[SEC_TABLES] != tables)
        return refuse(ps, "section TABL has %zu bytes, but %u users, %u items, dim %u need %zu", length[SEC_TABLES],
                      (unsigned)o.num_users, (unsigned)o.num_items, (unsigned)o.dim, tables);
    if (adagrad && length[SEC_ADAGRAD] != tables)
        return refuse(ps, "section ADAG has %zu bytes, but %u users, %u items, dim %u need %zu", length[SEC_ADAGRAD],
                      (unsigned)o.num_users, (unsigned)o.num_items, (unsigned)o.dim, tables);
    if (length[SEC_KNOWN] < ptr_bytes || (length[SEC_KNOWN] - ptr_bytes) % 4 != 0)
        return refuse(ps, "section KNOW has %zu bytes: not indptr[%u] (%zu bytes) and whole 4-byte items",
                      length[SEC_KNOWN], (unsigned)o.num_users + 1, ptr_bytes);
    const size_t known = (length[SEC_KNOWN] - ptr_bytes) / 4;
    const uint64_t total = get_u64(d + offset[SEC_KNOWN] + ptr_bytes - 8);
    if (total != known)
        return refuse(ps, "section KNOW: indptr[%u] is %llu, but the section holds %zu items", (unsigned)o.num_users,
                      (unsigned long long)total, known);
    if (ps->sum_bad)
        return checksum_mismatch(ps, d, size);

    f->options = o;
    f->known_ptr = malloc(ptr_bytes);
    f->known_items = known ? malloc(known * sizeof(int32_t)) : NULL;
    if (!f->known_ptr || (known && !f->known_items) ||
        !decode_tables(d + offset[SEC_TABLES], adagrad ? d + offset[SEC_ADAGRAD] : NULL, count, f))
        return out_of_memory(ps);
    const unsigned char *p = d + offset[SEC_KNOWN];
    for (size_t u = 0; u <= o.num_users; ++u, p += 8)
        f->known_ptr[u] = get_u64(p);
    for (size_t k = 0; k < known; ++k, p += 4)
        f->known_items[k] = (int32_t)get_u32(p);
    for (int s = 0; s < 2; ++s) {
        const int sec = SEC_USER_FEATURES + s;
        const size_t rows = s ? o.num_items : o.num_users, n = feat_n[s];
        if (!seen[sec])
            continue;
        f->feat_ptr[s] = malloc((rows + 1) * sizeof *f->feat_ptr[s]);
        f->feat_idx[s] = malloc(n ? n * sizeof *f->feat_idx[s] : 1);
        if (!f->feat_ptr[s] || !f->feat_idx[s])
            return out_of_memory(ps);
        p = d + offset[sec];
        for (size_t r = 0; r <= rows; ++r, p += 8)
            f->feat_ptr[s][r] = get_u64(p);
        for (size_t k = 0; k < n; ++k, p += 4)
            f->feat_idx[s][k] = (int32_t)get_u32(p);
        if (!decode_floats(p, n, &f->feat_w[s]))
            return out_of_memory(ps);
    }
    f->app = d + offset[SEC_APP];
    f->app_size = length[SEC_APP];
    return WL_SUCCESS;
}

wl_status wl_model_file_parse(const unsigned char *data, size_t size, wl_model_file *out, char *err, size_t err_size)
{
    parse_state ps = {err, err_size, 0};
    if (!out)
        return say(err, err_size, WL_ERROR_INVALID_ARGUMENT, "out is NULL");
    memset(out, 0, sizeof *out);
    if (!data && size)
        return say(err, err_size, WL_ERROR_INVALID_ARGUMENT, "data is NULL");
    const size_t least = V2_HEADER + 8u;
    if (size < 8 || memcmp(data, MAGIC, 8) != 0) {
        if (size >= 8 || (size && memcmp(data, MAGIC, size) != 0))
            return refuse(&ps, "not a warploss model file (bad magic; expected \"%s\")", MAGIC);
        return refuse(&ps, "truncated: %zu bytes, a model file has at least %zu", size, least);
    }
    if (size < 16)
        return refuse(&ps, "truncated: %zu bytes, a model file has at least %zu", size, least);
    const uint32_t version = get_u32(data + 8), header = get_u32(data + 12);
    if (version != 1 && version != 2)
        return refuse(&ps, "unsupported model file version %u (this library reads versions 1 and 2)",
                      (unsigned)version);
    const uint32_t want_header = version == 1 ? V1_HEADER : V2_HEADER;
    if (header != want_header)
        return refuse(&ps, "header size %u, but version %u has %u: the file is damaged", (unsigned)header,
                      (unsigned)version, (unsigned)want_header);
    if (size < want_header + 8u)
        return refuse(&ps, "truncated: %zu bytes, a version %u model file has at least %u", size, (unsigned)version,
                      (unsigned)want_header + 8u);
    ps.sum_bad = get_u64(data + size - 8) != fnv1a(data, size - 8);
    out->version = version;
    const wl_status st = version == 1 ? parse_v1(&ps, data, size, out) : parse_v2(&ps, data, size, out);
    if (st == WL_SUCCESS) {
        const wl_status content = check_content(out, err, err_size);
        if (content != WL_SUCCESS) {
            wl_model_file_free(out);
            return WL_ERROR_FILE;
        }
        return WL_SUCCESS;
    }
    wl_model_file_free(out);
    return st;
}

/* ------------------------------------------------------------ packing */

static unsigned char *put_section(unsigned char *p, int s, size_t length)
{
    memcpy(p, section_tags[s], 4);
    p = put_u32(p + 4, section_flags[s]);
    return put_u64(p, length);
}

wl_status wl_model_file_pack(const wl_model_file *f, unsigned char **out, size_t *size, char *err, size_t err_size)
{
    *out = NULL;
    *size = 0;
    const wl_model_options *o = &f->options;
    wl_status st = check_options(o, err, err_size);
    if (st != WL_SUCCESS)
        return st;
    const int adagrad = o->optimizer == WL_OPTIMIZER_ADAGRAD;
    if ((st = check_content(f, err, err_size)) != WL_SUCCESS)
        return st;
    size_t count[3], tables, known_bytes, total, feat_bytes[2] = {0, 0};
    const uint64_t known = f->known_ptr[o->num_users];
    const uint32_t feat_rows[2] = {o->num_users, o->num_items};
    const int has_feat[2] = {o->num_user_features != 0, o->num_item_features != 0};
    int ok = 1;
    for (int s = 0; s < 2; ++s) {
        const uint64_t n = has_feat[s] ? f->feat_ptr[s][feat_rows[s]] : 0;
        if (has_feat[s])
            ok = ok && n <= SIZE_MAX / 8 && add_ok(((size_t)feat_rows[s] + 1) * 8, (size_t)n * 8, &feat_bytes[s]);
    }
    if (!ok || !table_sizes(o, count, &tables) || known > SIZE_MAX / 4 ||
        !add_ok(((size_t)o->num_users + 1) * 8, (size_t)known * 4, &known_bytes) ||
        !add_ok(V2_HEADER + 8u + SECTION_HEADER * (adagrad ? 4u : 3u), tables, &total) ||
        (adagrad && !add_ok(total, tables, &total)) || !add_ok(total, known_bytes, &total) ||
        !add_ok(total, f->app_size, &total))
        return say(err, err_size, WL_ERROR_OUT_OF_MEMORY, "the model file would be larger than this machine's size_t");
    for (int s = 0; s < 2; ++s)
        if (has_feat[s] && !add_ok(total, feat_bytes[s] + SECTION_HEADER, &total))
            return say(err, err_size, WL_ERROR_OUT_OF_MEMORY,
                       "the model file would be larger than this machine's size_t");
    unsigned char *buf = malloc(total), *p = buf;
    if (!buf)
        return say(err, err_size, WL_ERROR_OUT_OF_MEMORY, "out of host memory for a model file of %zu bytes", total);
    memcpy(p, MAGIC, 8);
    p = put_u32(p + 8, 2);
    p = put_u32(p, V2_HEADER);
    p = put_u32(p, o->num_users);
    p = put_u32(p, o->num_items);
    p = put_u32(p, o->dim);
    p = put_u32(p, (uint32_t)o->item_bias);
    p = put_u32(p, (uint32_t)o->optimizer);
    p = put_f32(p, o->learning_rate);
    p = put_f32(p, o->l2_users);
    p = put_f32(p, o->l2_items);
    p = put_u64(p, o->seed);
    p = put_u32(p, o->num_user_features);
    p = put_u32(p, o->num_item_features);
    for (int s = SEC_TABLES; s <= SEC_ADAGRAD; ++s) {
        if (s == SEC_ADAGRAD && !adagrad)
            continue;
        p = put_section(p, s, tables);
        for (int t = 0; t < 3; ++t) {
            const float *v = s == SEC_TABLES ? f->table[t] : f->state[t];
            for (size_t k = 0; k < count[t]; ++k)
                p = put_f32(p, v[k]);
        }
    }
    p = put_section(p, SEC_KNOWN, known_bytes);
    for (size_t u = 0; u <= o->num_users; ++u)
        p = put_u64(p, f->known_ptr[u]);
    for (uint64_t k = 0; k < known; ++k)
        p = put_u32(p, (uint32_t)f->known_items[k]);
    for (int s = 0; s < 2; ++s) {
        if (!has_feat[s])
            continue;
        const uint64_t n = f->feat_ptr[s][feat_rows[s]];
        p = put_section(p, SEC_USER_FEATURES + s, feat_bytes[s]);
        for (size_t r = 0; r <= feat_rows[s]; ++r)
            p = put_u64(p, f->feat_ptr[s][r]);
        for (uint64_t k = 0; k < n; ++k)
            p = put_u32(p, (uint32_t)f->feat_idx[s][k]);
        for (uint64_t k = 0; k < n; ++k)
            p = put_f32(p, f->feat_w[s][k]);
    }
    p = put_section(p, SEC_APP, f->app_size);
    if (f->app_size)
        memcpy(p, f->app, f->app_size);
    p += f->app_size;
    put_u64(p, fnv1a(buf, total - 8));
    *out = buf;
    *size = total;
    return WL_SUCCESS;
}

/* ------------------------------------------------------------ the device model */

void wl_free(void *p) { free(p); }

wl_status wl_model_get_options(const wl_model *m, wl_model_options *out)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    if (!out)
        return wl_fail(m->c, WL_ERROR_INVALID_ARGUMENT, "out is NULL");
    *out = m->o;
    return WL_SUCCESS;
}

/* Prefix c's error text with the file's name (the failing call wrote it). */
static wl_status named(wl_context *c, wl_status st, const char *name)
{
    char *detail = malloc(WL_ERROR_SIZE);
    if (!detail)
        return st;
    memcpy(detail, c->error, WL_ERROR_SIZE);
    wl_fail(c, st, "%s: %s", name, detail);
    free(detail);
    return st;
}

/* The model's content read back from the device into f (which wl_model_file_free releases). */
static wl_status read_model(wl_model *m, const void *app, size_t app_size, wl_model_file *f)
{
    wl_context *c = m->c;
    memset(f, 0, sizeof *f);
    f->options = m->o;
    f->version = 2;
    f->app = app;
    f->app_size = app_size;
    const int adagrad = m->o.optimizer == WL_OPTIMIZER_ADAGRAD;
    for (int t = 0; t < 3; ++t) {
        const size_t count = (size_t)model_table_count(m, (wl_table)t);
        f->table[t] = malloc(count * sizeof(float));
        f->state[t] = adagrad ? malloc(count * sizeof(float)) : NULL;
        if (!f->table[t] || (adagrad && !f->state[t]))
            return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "out of host memory for %s", table_names[t]);
    }
    const size_t users = m->o.num_users;
    f->known_ptr = calloc(users + 1, sizeof *f->known_ptr);
    f->known_items = m->known_count ? malloc((size_t)m->known_count * sizeof(int32_t)) : NULL;
    if (!f->known_ptr || (m->known_count && !f->known_items))
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "out of host memory for the known positives");
    wl_status st = WL_SUCCESS;
    for (int t = 0; t < 3 && st == WL_SUCCESS; ++t) {
        st = wl_model_read(m, (wl_table)t, f->table[t]);
        if (st == WL_SUCCESS && adagrad)
            st = wl_model_read_state(m, (wl_table)t, f->state[t]);
    }
    if (st == WL_SUCCESS && m->known_count) {
        st = model_read_blocking(c, m->known_ptr, (users + 1) * sizeof(cl_ulong), f->known_ptr,
                                 "clEnqueueReadBuffer(known positives' indptr)");
        if (st == WL_SUCCESS)
            st = model_read_blocking(c, m->known_items, (size_t)m->known_count * sizeof(int32_t), f->known_items,
                                     "clEnqueueReadBuffer(known positives)");
    }
    /* the feature matrices from the model's host copy */
    for (int s = 0; s < 2 && st == WL_SUCCESS; ++s) {
        const struct model_features *mf = &m->feat[s];
        if (!mf->indptr)
            continue;
        const size_t rows = model_entities(m, s ? WL_TABLE_ITEMS : WL_TABLE_USERS), n = (size_t)mf->indptr[rows];
        f->feat_ptr[s] = malloc((rows + 1) * sizeof *f->feat_ptr[s]);
        f->feat_idx[s] = malloc((n ? n : 1) * sizeof *f->feat_idx[s]);
        f->feat_w[s] = malloc((n ? n : 1) * sizeof *f->feat_w[s]);
        if (!f->feat_ptr[s] || !f->feat_idx[s] || !f->feat_w[s])
            return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "out of host memory for the feature matrices");
        memcpy(f->feat_ptr[s], mf->indptr, (rows + 1) * sizeof *f->feat_ptr[s]);
        if (n) {
            memcpy(f->feat_idx[s], mf->features, n * sizeof *f->feat_idx[s]);
            memcpy(f->feat_w[s], mf->weights, n * sizeof *f->feat_w[s]);
        }
    }
    return st;
}

/* The file's bytes for m, or an error on m's context (prefixed with name). */
static wl_status save_bytes(wl_model *m, const char *name, const void *app, size_t app_size, unsigned char **data,
                            size_t *size)
{
    wl_context *c = m->c;
    wl_model_file f;
    wl_status st = read_model(m, app, app_size, &f);
    if (st == WL_SUCCESS) {
        char why[512];
        st = wl_model_file_pack(&f, data, size, why, sizeof why);
        if (st != WL_SUCCESS)
            wl_fail(c, st, "%s", why);
    }
    f.app = NULL; /* the caller's */
    wl_model_file_free(&f);
    return st == WL_SUCCESS ? st : named(c, st, name);
}

static wl_status check_save(wl_model *m, const void *app, size_t app_size)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    if (!app && app_size)
        return wl_fail(m->c, WL_ERROR_INVALID_ARGUMENT, "app is NULL but app_size is %zu", app_size);
    return WL_SUCCESS;
}

wl_status wl_model_save_memory(wl_model *m, const void *app, size_t app_size, void **data, size_t *size)
{
    wl_status st = check_save(m, app, app_size);
    if (st != WL_SUCCESS)
        return st;
    if (!data || !size)
        return wl_fail(m->c, WL_ERROR_INVALID_ARGUMENT, "data or size is NULL");
    *data = NULL;
    *size = 0;
    unsigned char *bytes;
    if ((st = save_bytes(m, "(memory)", app, app_size, &bytes, size)) == WL_SUCCESS)
        *data = bytes;
    return st;
}

/* Write bytes to a temporary file next to path, then rename it over path; an errno value on failure
 * (*step says which step failed) with the temporary file removed. */
static int write_atomic(const char *path, const unsigned char *data, size_t size, const char **step)
{
    const size_t tmp_len = strlen(path) + sizeof ".tmp.XXXXXX";
    char *tmp = malloc(tmp_len);
    *step = "cannot create a temporary file next to it";
    if (!tmp)
        return ENOMEM;
    snprintf(tmp, tmp_len, "%s.tmp.XXXXXX", path);
    const int fd = mkstemp(tmp);
    if (fd < 0) {
        const int e = errno;
        free(tmp);
        return e;
    }
    /* mkstemp's 0600 would make a model file private; 0644 as most tools write files */
    (void)fchmod(fd, 0644);
    int e = 0;
    *step = "writing the temporary file failed";
    while (size > 0) {
        const ssize_t w = write(fd, data, size);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            e = w < 0 ? errno : EIO;
            break;
        }
        data += w;
        size -= (size_t)w;
    }
    if (!e && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && !e)
        e = errno;
    if (!e && rename(tmp, path) != 0) {
        e = errno;
        *step = "renaming the temporary file over it failed";
    }
    if (e)
        unlink(tmp);
    free(tmp);
    return e;
}

wl_status wl_model_save(wl_model *m, const char *path, const void *app, size_t app_size)
{
    wl_status st = check_save(m, app, app_size);
    if (st != WL_SUCCESS)
        return st;
    if (!path || !*path)
        return wl_fail(m->c, WL_ERROR_INVALID_ARGUMENT, "path is NULL or empty");
    unsigned char *data;
    size_t size;
    if ((st = save_bytes(m, path, app, app_size, &data, &size)) != WL_SUCCESS)
        return st;
    const char *step;
    const int e = write_atomic(path, data, size, &step);
    free(data);
    if (e)
        return wl_fail(m->c, WL_ERROR_FILE, "%s: %s: %s (nothing was written)", path, step, strerror(e));
    return WL_SUCCESS;
}

/* A new model on c from parsed content: create, then the tables, then the
 * state (writing a table resets its state), then the known positives and the
 * feature matrices. */
static wl_status build_model(wl_context *c, const wl_model_file *f, wl_model **out)
{
    wl_model *m;
    wl_status st = wl_model_create(c, &f->options, &m);
    if (st != WL_SUCCESS)
        return st;
    for (int t = 0; t < 3 && st == WL_SUCCESS; ++t)
        st = wl_model_write(m, (wl_table)t, f->table[t]);
    for (int t = 0; t < 3 && st == WL_SUCCESS && f->state[t]; ++t)
        st = wl_model_write_state(m, (wl_table)t, f->state[t]);
    if (st == WL_SUCCESS && f->known_ptr[f->options.num_users])
        st = wl_model_set_known(m, f->known_ptr, f->known_items);
    for (int s = 0; s < 2 && st == WL_SUCCESS; ++s)
        if (f->feat_ptr[s])
            st = wl_model_set_features(m, s ? WL_TABLE_ITEMS : WL_TABLE_USERS, f->feat_ptr[s], f->feat_idx[s],
                                       f->feat_w[s]);
    if (st != WL_SUCCESS) {
        wl_model_destroy(m);
        return st;
    }
    *out = m;
    return WL_SUCCESS;
}

static wl_status check_load(wl_context *c, wl_model **out, void **app, size_t *app_size)
{
    if (!c)
        return WL_ERROR_INVALID_ARGUMENT;
    if (!out)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!app != !app_size)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "app and app_size must both be NULL or both not");
    if (app) {
        *app = NULL;
        *app_size = 0;
    }
    return WL_SUCCESS;
}

/* Parse, build the model and copy the application bytes; errors named after name. */
static wl_status load_bytes(wl_context *c, const char *name, const unsigned char *data, size_t size, wl_model **out,
                            void **app, size_t *app_size)
{
    wl_model_file f;
    char why[512];
    wl_status st = wl_model_file_parse(data, size, &f, why, sizeof why);
    if (st != WL_SUCCESS)
        return wl_fail(c, st, "%s: %s", name, why);
    void *copy = NULL;
    if (app && f.app_size && !(copy = malloc(f.app_size))) {
        wl_model_file_free(&f);
        return wl_fail(c, WL_ERROR_OUT_OF_MEMORY, "%s: out of host memory for %zu application bytes", name, f.app_size);
    }
    wl_model *m = NULL;
    if ((st = build_model(c, &f, &m)) != WL_SUCCESS) {
        free(copy);
        wl_model_file_free(&f);
        return named(c, st, name);
    }
    if (app) {
        if (copy)
            memcpy(copy, f.app, f.app_size);
        *app = copy;
        *app_size = f.app_size;
    }
    wl_model_file_free(&f);
    *out = m;
    return WL_SUCCESS;
}

wl_status wl_model_load_memory(wl_context *c, const void *data, size_t size, wl_model **out, void **app,
                               size_t *app_size)
{
    wl_status st = check_load(c, out, app, app_size);
    if (st != WL_SUCCESS)
        return st;
    if (!data && size)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "data is NULL but size is %zu", size);
    return load_bytes(c, "(memory)", data, size, out, app, app_size);
}

wl_status wl_model_load(wl_context *c, const char *path, wl_model **out, void **app, size_t *app_size)
{
    wl_status st = check_load(c, out, app, app_size);
    if (st != WL_SUCCESS)
        return st;
    if (!path || !*path)
        return wl_fail(c, WL_ERROR_INVALID_ARGUMENT, "path is NULL or empty");
    size_t size = 0;
    errno = 0;
    unsigned char *data = wl_read_file(path, SIZE_MAX - 1, &size);
    if (!data)
        return wl_fail(c, errno == ENOMEM ? WL_ERROR_OUT_OF_MEMORY : WL_ERROR_FILE,
                       "%s: cannot read the model file: %s", path, strerror(errno ? errno : EIO));
    st = load_bytes(c, path, data, size, out, app, app_size);
    free(data);
    return st;
}
