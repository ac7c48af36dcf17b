/* The model file and the numpy export (see model_file.h for the layout). */
#include "model_file.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static const char memory_name[] = "(memory)";

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    if (!err || !err_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* ------------------------------------------------------------ sizes */

/* Element counts of a model's tables; 0 on overflow of size_t (a valid model has none zero). */
typedef struct mf_counts {
    size_t users, items, biases; /* U*D, I*D, I */
    size_t nu, ni;               /* U, I */
} mf_counts;

static int mul_size(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}

static int add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return -1;
    *out = a + b;
    return 0;
}

/* The counts and the file size for o; -1 if they do not fit in size_t. */
static int model_sizes(const wl_model_options *o, mf_counts *c, size_t *file_size)
{
    c->nu = o->num_users;
    c->ni = o->num_items;
    c->biases = o->num_items;
    size_t floats, bytes, ids;
    if (mul_size(c->nu, o->dim, &c->users) || mul_size(c->ni, o->dim, &c->items) ||
        add_size(c->users, c->items, &floats) || add_size(floats, c->biases, &floats))
        return -1;
    if (o->optimizer == WL_OPTIMIZER_ADAGRAD && mul_size(floats, 2, &floats))
        return -1;
    if (mul_size(floats, 4, &bytes) || add_size(c->nu, c->ni, &ids) || mul_size(ids, 8, &ids) ||
        add_size(bytes, ids, &bytes) || add_size(bytes, MF_HEADER_SIZE + 8u, &bytes))
        return -1;
    *file_size = bytes;
    return 0;
}

size_t mf_file_size(const wl_model_options *o)
{
    mf_counts c;
    size_t size;
    return o && !model_sizes(o, &c, &size) ? size : 0;
}

/* ------------------------------------------------------------ validation */

static int check_options(const char *name, const wl_model_options *o, char *err, size_t err_size)
{
    if (o->num_users < 1) {
        set_err(err, err_size, "%s: num_users is 0; a model has at least 1 user", name);
        return -1;
    }
    if (o->num_items < 2) {
        set_err(err, err_size, "%s: num_items is %u; a model has at least 2 items", name, (unsigned)o->num_items);
        return -1;
    }
    if (o->dim < 1) {
        set_err(err, err_size, "%s: dim is 0; it must be at least 1", name);
        return -1;
    }
    if (o->item_bias != 0 && o->item_bias != 1) {
        set_err(err, err_size, "%s: item_bias is %d; it must be 0 or 1", name, o->item_bias);
        return -1;
    }
    if (o->optimizer != WL_OPTIMIZER_ADAGRAD && o->optimizer != WL_OPTIMIZER_SGD) {
        set_err(err, err_size, "%s: unknown optimizer %u (0 is Adagrad, 1 is SGD)", name, (unsigned)o->optimizer);
        return -1;
    }
    if (!isfinite(o->learning_rate) || !(o->learning_rate > 0.0f)) {
        set_err(err, err_size, "%s: learning rate %g; it must be finite and > 0", name, (double)o->learning_rate);
        return -1;
    }
    if (!isfinite(o->l2_users) || o->l2_users < 0.0f || !isfinite(o->l2_items) || o->l2_items < 0.0f) {
        set_err(err, err_size, "%s: l2 (users %g, items %g) must be finite and >= 0", name, (double)o->l2_users,
                (double)o->l2_items);
        return -1;
    }
    return 0;
}

static int check_finite(const char *name, const char *what, const float *v, size_t n, int positive, char *err,
                        size_t err_size)
{
    for (size_t k = 0; k < n; ++k) {
        if (!isfinite(v[k])) {
            set_err(err, err_size, "%s: %s[%zu] is %g: the model is damaged (NaN or Inf in a table)", name, what, k,
                    (double)v[k]);
            return -1;
        }
        if (positive && !(v[k] > 0.0f)) {
            set_err(err, err_size, "%s: %s[%zu] is %g: an Adagrad accumulator must be > 0", name, what, k,
                    (double)v[k]);
            return -1;
        }
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int check_distinct(const char *name, const char *what, const int64_t *ids, size_t n, char *err, size_t err_size)
{
    int64_t *sorted = malloc(n * sizeof *sorted);
    if (!sorted) {
        set_err(err, err_size, "%s: out of memory checking the %s ids", name, what);
        return -1;
    }
    memcpy(sorted, ids, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_i64);
    for (size_t k = 1; k < n; ++k) {
        if (sorted[k] == sorted[k - 1]) {
            set_err(err, err_size, "%s: %s id %lld appears more than once", name, what, (long long)sorted[k]);
            free(sorted);
            return -1;
        }
    }
    free(sorted);
    return 0;
}

/* Everything a model file may hold: the options, and the arrays of m. */
static int check_model(const char *name, const mf_model *m, const mf_counts *c, char *err, size_t err_size)
{
    if (check_options(name, &m->options, err, err_size))
        return -1;
    const int adagrad = m->options.optimizer == WL_OPTIMIZER_ADAGRAD;
    if (!m->users || !m->items || !m->biases || !m->user_ids || !m->item_ids ||
        (adagrad && (!m->users_state || !m->items_state || !m->biases_state))) {
        set_err(err, err_size, "%s: the model is incomplete (a table, a state or the ids is missing)", name);
        return -1;
    }
    if (check_finite(name, "user embeddings", m->users, c->users, 0, err, err_size) ||
        check_finite(name, "item embeddings", m->items, c->items, 0, err, err_size) ||
        check_finite(name, "item biases", m->biases, c->biases, 0, err, err_size))
        return -1;
    if (!m->options.item_bias) {
        for (size_t k = 0; k < c->biases; ++k) {
            if (m->biases[k] != 0.0f) {
                set_err(err, err_size, "%s: item bias %zu is %g, but the model has no item biases (they stay 0)", name,
                        k, (double)m->biases[k]);
                return -1;
            }
        }
    }
    if (adagrad && (check_finite(name, "user state", m->users_state, c->users, 1, err, err_size) ||
                    check_finite(name, "item state", m->items_state, c->items, 1, err, err_size) ||
                    check_finite(name, "item bias state", m->biases_state, c->biases, 1, err, err_size)))
        return -1;
    return check_distinct(name, "user", m->user_ids, c->nu, err, err_size) ||
                   check_distinct(name, "item", m->item_ids, c->ni, err, err_size)
               ? -1
               : 0;
}

/* ------------------------------------------------------------ writing */

/* Bytes out, little-endian, into a buffer of the exact size or a FILE (through a
 * staging buffer), with the running checksum. */
typedef struct writer {
    unsigned char *buf; /* memory: the whole file */
    FILE *f;            /* or a file */
    size_t len;
    unsigned char stage[1 << 14];
    size_t staged;
    uint64_t hash;
    int failed;
} writer;

static void flush_stage(writer *w)
{
    if (w->f && w->staged && !w->failed && fwrite(w->stage, 1, w->staged, w->f) != w->staged)
        w->failed = 1;
    w->staged = 0;
}

static void put(writer *w, const unsigned char *p, size_t n)
{
    w->hash = fnv1a(w->hash, p, n);
    w->len += n;
    if (w->buf) {
        memcpy(w->buf + w->len - n, p, n);
    } else {
        while (n) {
            size_t room = sizeof w->stage - w->staged, take = n < room ? n : room;
            memcpy(w->stage + w->staged, p, take);
            w->staged += take;
            p += take;
            n -= take;
            if (w->staged == sizeof w->stage)
                flush_stage(w);
        }
    }
}

static void put_u32(writer *w, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; ++i)
        b[i] = (unsigned char)(v >> (8 * i));
    put(w, b, 4);
}

static void put_u64(writer *w, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; ++i)
        b[i] = (unsigned char)(v >> (8 * i));
    put(w, b, 8);
}

static void put_f32(writer *w, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    put_u32(w, bits);
}

static void put_f32s(writer *w, const float *v, size_t n)
{
    for (size_t k = 0; k < n; ++k)
        put_f32(w, v[k]);
}

static void put_i64s(writer *w, const int64_t *v, size_t n)
{
    for (size_t k = 0; k < n; ++k)
        put_u64(w, (uint64_t)v[k]);
}

static void write_model(writer *w, const mf_model *m, const mf_counts *c)
{
    const wl_model_options *o = &m->options;
    w->hash = FNV_OFFSET;
    put(w, (const unsigned char *)MF_MAGIC, 8);
    put_u32(w, MF_VERSION);
    put_u32(w, MF_HEADER_SIZE);
    put_u32(w, o->num_users);
    put_u32(w, o->num_items);
    put_u32(w, o->dim);
    put_u32(w, (uint32_t)o->item_bias);
    put_u32(w, (uint32_t)o->optimizer);
    put_u32(w, 0);
    put_f32(w, o->learning_rate);
    put_f32(w, o->l2_users);
    put_f32(w, o->l2_items);
    put_u32(w, 0);
    put_u64(w, o->seed);
    put_u64(w, m->epochs_done);
    put_u64(w, m->batches_done);
    put_u64(w, 0);
    put_f32s(w, m->users, c->users);
    put_f32s(w, m->items, c->items);
    put_f32s(w, m->biases, c->biases);
    if (o->optimizer == WL_OPTIMIZER_ADAGRAD) {
        put_f32s(w, m->users_state, c->users);
        put_f32s(w, m->items_state, c->items);
        put_f32s(w, m->biases_state, c->biases);
    }
    put_i64s(w, m->user_ids, c->nu);
    put_i64s(w, m->item_ids, c->ni);
    put_u64(w, w->hash);
    flush_stage(w);
}

/* Sizes and content checked before anything is written. */
static int prepare(const char *name, const mf_model *m, mf_counts *c, size_t *size, char *err, size_t err_size)
{
    if (!m) {
        set_err(err, err_size, "%s: no model", name);
        return -1;
    }
    if (check_options(name, &m->options, err, err_size))
        return -1;
    if (model_sizes(&m->options, c, size)) {
        set_err(err, err_size, "%s: the model is too large for this machine's size_t", name);
        return -1;
    }
    return check_model(name, m, c, err, err_size);
}

int mf_serialize(const mf_model *m, unsigned char **out, size_t *out_size, char *err, size_t err_size)
{
    mf_counts c;
    size_t size;
    if (!out || !out_size) {
        set_err(err, err_size, "%s: out or out_size is NULL", memory_name);
        return -1;
    }
    *out = NULL;
    *out_size = 0;
    if (prepare(memory_name, m, &c, &size, err, err_size))
        return -1;
    writer *w = calloc(1, sizeof *w);
    unsigned char *buf = malloc(size);
    if (!w || !buf) {
        free(w);
        free(buf);
        set_err(err, err_size, "%s: out of memory for %zu bytes", memory_name, size);
        return -1;
    }
    w->buf = buf;
    write_model(w, m, &c);
    free(w);
    *out = buf;
    *out_size = size;
    return 0;
}

int mf_save(const char *path, const mf_model *m, char *err, size_t err_size)
{
    mf_counts c;
    size_t size;
    if (!path) {
        set_err(err, err_size, "mf_save: path is NULL");
        return -1;
    }
    if (prepare(path, m, &c, &size, err, err_size))
        return -1;
    size_t tmp_len = strlen(path) + sizeof ".tmp.XXXXXX";
    char *tmp = malloc(tmp_len);
    writer *w = calloc(1, sizeof *w);
    if (!tmp || !w) {
        free(tmp);
        free(w);
        set_err(err, err_size, "%s: out of memory", path);
        return -1;
    }
    snprintf(tmp, tmp_len, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        set_err(err, err_size, "%s: cannot create a temporary file next to it: %s", path, strerror(errno));
        free(tmp);
        free(w);
        return -1;
    }
    (void)fchmod(fd, 0644);
    w->f = fdopen(fd, "wb");
    if (!w->f) {
        set_err(err, err_size, "%s: cannot write %s: %s", path, tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        free(w);
        return -1;
    }
    write_model(w, m, &c);
    int saved_errno = 0;
    if (w->failed || fflush(w->f) != 0 || fsync(fd) != 0)
        saved_errno = errno ? errno : EIO;
    if (fclose(w->f) != 0 && !saved_errno)
        saved_errno = errno ? errno : EIO;
    if (!saved_errno && rename(tmp, path) != 0)
        saved_errno = errno ? errno : EIO;
    if (saved_errno) {
        set_err(err, err_size, "%s: writing the model failed: %s (nothing was replaced)", path, strerror(saved_errno));
        unlink(tmp);
    }
    free(tmp);
    free(w);
    return saved_errno ? -1 : 0;
}

/* ------------------------------------------------------------ reading */

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

static float get_f32(const unsigned char *p)
{
    uint32_t bits = get_u32(p);
    float v;
    memcpy(&v, &bits, 4);
    return v;
}

static const unsigned char *get_f32s(const unsigned char *p, float *out, size_t n)
{
    for (size_t k = 0; k < n; ++k, p += 4)
        out[k] = get_f32(p);
    return p;
}

static const unsigned char *get_i64s(const unsigned char *p, int64_t *out, size_t n)
{
    for (size_t k = 0; k < n; ++k, p += 8)
        out[k] = (int64_t)get_u64(p);
    return p;
}

void mf_free(mf_model *m)
{
    if (!m)
        return;
    free(m->users);
    free(m->items);
    free(m->biases);
    free(m->users_state);
    free(m->items_state);
    free(m->biases_state);
    free(m->user_ids);
    free(m->item_ids);
    memset(m, 0, sizeof *m);
}

/* Allocate m's arrays for its options and counts; -1 when out of memory. */
static int alloc_arrays(mf_model *m, const mf_counts *c)
{
    m->users = malloc(c->users * sizeof(float));
    m->items = malloc(c->items * sizeof(float));
    m->biases = malloc(c->biases * sizeof(float));
    m->user_ids = malloc(c->nu * sizeof(int64_t));
    m->item_ids = malloc(c->ni * sizeof(int64_t));
    if (m->options.optimizer == WL_OPTIMIZER_ADAGRAD) {
        m->users_state = malloc(c->users * sizeof(float));
        m->items_state = malloc(c->items * sizeof(float));
        m->biases_state = malloc(c->biases * sizeof(float));
        if (!m->users_state || !m->items_state || !m->biases_state)
            return -1;
    }
    return m->users && m->items && m->biases && m->user_ids && m->item_ids ? 0 : -1;
}

static int parse_named(const char *name, const unsigned char *data, size_t size, mf_model *m, char *err,
                       size_t err_size)
{
    const size_t min_size = MF_HEADER_SIZE + 8u;
    if (!data && size) {
        set_err(err, err_size, "%s: no data", name);
        return -1;
    }
    if (size < 8 || memcmp(data, MF_MAGIC, 8) != 0) {
        if (size >= 8 || (size && memcmp(data, MF_MAGIC, size) != 0))
            set_err(err, err_size, "%s: not a warploss model file (bad magic; expected \"%s\")", name, MF_MAGIC);
        else
            set_err(err, err_size, "%s: truncated: %zu bytes, a model file has at least %zu", name, size, min_size);
        return -1;
    }
    if (size < 16) {
        set_err(err, err_size, "%s: truncated: %zu bytes, a model file has at least %zu", name, size, min_size);
        return -1;
    }
    const uint32_t version = get_u32(data + 8), header_size = get_u32(data + 12);
    if (version != MF_VERSION) {
        set_err(err, err_size, "%s: unsupported model file version %u (this program reads version %u)", name,
                (unsigned)version, MF_VERSION);
        return -1;
    }
    if (header_size != MF_HEADER_SIZE) {
        set_err(err, err_size, "%s: header size %u, but version %u has %u: the file is damaged", name,
                (unsigned)header_size, MF_VERSION, MF_HEADER_SIZE);
        return -1;
    }
    if (size < min_size) {
        set_err(err, err_size, "%s: truncated: %zu bytes, a model file has at least %zu", name, size, min_size);
        return -1;
    }
    wl_model_options o;
    memset(&o, 0, sizeof o);
    o.num_users = get_u32(data + 16);
    o.num_items = get_u32(data + 20);
    o.dim = get_u32(data + 24);
    const uint32_t item_bias = get_u32(data + 28), optimizer = get_u32(data + 32);
    o.learning_rate = get_f32(data + 40);
    o.l2_users = get_f32(data + 44);
    o.l2_items = get_f32(data + 48);
    o.seed = get_u64(data + 56);
    if (get_u32(data + 36) || get_u32(data + 52) || get_u64(data + 80)) {
        set_err(err, err_size, "%s: a reserved header field is not 0: the file is damaged", name);
        return -1;
    }
    if (item_bias > 1) {
        set_err(err, err_size, "%s: item_bias is %u; it must be 0 or 1", name, (unsigned)item_bias);
        return -1;
    }
    if (optimizer > (uint32_t)WL_OPTIMIZER_SGD) {
        set_err(err, err_size, "%s: unknown optimizer %u (0 is Adagrad, 1 is SGD)", name, (unsigned)optimizer);
        return -1;
    }
    o.item_bias = (int)item_bias;
    o.optimizer = (wl_optimizer)optimizer;
    if (check_options(name, &o, err, err_size))
        return -1;
    mf_counts c;
    size_t expected;
    if (model_sizes(&o, &c, &expected)) {
        set_err(err, err_size, "%s: sizes overflow (%u users, %u items, dim %u): the file is damaged", name,
                (unsigned)o.num_users, (unsigned)o.num_items, (unsigned)o.dim);
        return -1;
    }
    if (expected != size) {
        set_err(err, err_size, "%s: %zu bytes, but %u users, %u items, dim %u (%s) need %zu: the file is %s", name,
                size, (unsigned)o.num_users, (unsigned)o.num_items, (unsigned)o.dim,
                o.optimizer == WL_OPTIMIZER_ADAGRAD ? "Adagrad" : "SGD", expected,
                size < expected ? "truncated or damaged" : "damaged (too long)");
        return -1;
    }
    const uint64_t stored = get_u64(data + size - 8), computed = fnv1a(FNV_OFFSET, data, size - 8);
    if (stored != computed) {
        set_err(err, err_size, "%s: checksum mismatch (stored %016llx, computed %016llx): the file is damaged", name,
                (unsigned long long)stored, (unsigned long long)computed);
        return -1;
    }
    m->options = o;
    m->epochs_done = get_u64(data + 64);
    m->batches_done = get_u64(data + 72);
    if (alloc_arrays(m, &c)) {
        mf_free(m);
        set_err(err, err_size, "%s: out of memory for the model's tables", name);
        return -1;
    }
    const unsigned char *p = data + MF_HEADER_SIZE;
    p = get_f32s(p, m->users, c.users);
    p = get_f32s(p, m->items, c.items);
    p = get_f32s(p, m->biases, c.biases);
    if (o.optimizer == WL_OPTIMIZER_ADAGRAD) {
        p = get_f32s(p, m->users_state, c.users);
        p = get_f32s(p, m->items_state, c.items);
        p = get_f32s(p, m->biases_state, c.biases);
    }
    p = get_i64s(p, m->user_ids, c.nu);
    get_i64s(p, m->item_ids, c.ni);
    if (check_model(name, m, &c, err, err_size)) {
        mf_free(m);
        return -1;
    }
    return 0;
}

int mf_parse(const unsigned char *data, size_t size, mf_model *m, char *err, size_t err_size)
{
    if (!m) {
        set_err(err, err_size, "%s: m is NULL", memory_name);
        return -1;
    }
    memset(m, 0, sizeof *m);
    return parse_named(memory_name, data, size, m, err, err_size);
}

int mf_load(const char *path, mf_model *m, char *err, size_t err_size)
{
    if (!path || !m) {
        set_err(err, err_size, "mf_load: path or m is NULL");
        return -1;
    }
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, err_size, "%s: cannot open the model file: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        set_err(err, err_size, "%s: not a regular file", path);
        fclose(f);
        return -1;
    }
    if ((uintmax_t)st.st_size > (uintmax_t)SIZE_MAX) {
        set_err(err, err_size, "%s: too large for this machine", path);
        fclose(f);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    unsigned char *data = malloc(size ? size : 1);
    if (!data) {
        set_err(err, err_size, "%s: out of memory reading %zu bytes", path, size);
        fclose(f);
        return -1;
    }
    size_t got = fread(data, 1, size, f);
    int read_error = ferror(f);
    fclose(f);
    if (read_error || got != size) {
        set_err(err, err_size, "%s: read error after %zu of %zu bytes", path, got, size);
        free(data);
        return -1;
    }
    int rc = parse_named(path, data, size, m, err, err_size);
    free(data);
    return rc;
}

/* ------------------------------------------------------------ the device model */

wl_status mf_from_model(wl_model *model, const wl_model_options *o, const int64_t *user_ids, const int64_t *item_ids,
                        uint64_t epochs_done, uint64_t batches_done, mf_model *m)
{
    if (!m)
        return WL_ERROR_INVALID_ARGUMENT;
    memset(m, 0, sizeof *m);
    if (!model || !o)
        return WL_ERROR_INVALID_ARGUMENT;
    m->options = *o;
    m->options.item_bias = o->item_bias != 0;
    m->epochs_done = epochs_done;
    m->batches_done = batches_done;
    mf_counts c;
    size_t size;
    if (check_options("mf_from_model", &m->options, NULL, 0)) {
        memset(m, 0, sizeof *m);
        return WL_ERROR_INVALID_ARGUMENT;
    }
    if (model_sizes(&m->options, &c, &size)) {
        memset(m, 0, sizeof *m);
        return WL_ERROR_OUT_OF_MEMORY;
    }
    if (alloc_arrays(m, &c)) {
        mf_free(m);
        return WL_ERROR_OUT_OF_MEMORY;
    }
    wl_status st = wl_model_read(model, WL_TABLE_USERS, m->users);
    if (st == WL_SUCCESS)
        st = wl_model_read(model, WL_TABLE_ITEMS, m->items);
    if (st == WL_SUCCESS)
        st = wl_model_read(model, WL_TABLE_ITEM_BIAS, m->biases);
    if (st == WL_SUCCESS && m->options.optimizer == WL_OPTIMIZER_ADAGRAD) {
        st = wl_model_read_state(model, WL_TABLE_USERS, m->users_state);
        if (st == WL_SUCCESS)
            st = wl_model_read_state(model, WL_TABLE_ITEMS, m->items_state);
        if (st == WL_SUCCESS)
            st = wl_model_read_state(model, WL_TABLE_ITEM_BIAS, m->biases_state);
    }
    if (st != WL_SUCCESS) {
        mf_free(m);
        return st;
    }
    for (size_t u = 0; u < c.nu; ++u)
        m->user_ids[u] = user_ids ? user_ids[u] : (int64_t)u;
    for (size_t i = 0; i < c.ni; ++i)
        m->item_ids[i] = item_ids ? item_ids[i] : (int64_t)i;
    return WL_SUCCESS;
}

wl_status mf_to_model(const mf_model *m, wl_model *model)
{
    if (!m || !model || !m->users || !m->items || !m->biases)
        return WL_ERROR_INVALID_ARGUMENT;
    const int adagrad = m->options.optimizer == WL_OPTIMIZER_ADAGRAD;
    if (adagrad && (!m->users_state || !m->items_state || !m->biases_state))
        return WL_ERROR_INVALID_ARGUMENT;
    /* wl_model_write resets a table's state: all tables first, then the state */
    wl_status st = wl_model_write(model, WL_TABLE_USERS, m->users);
    if (st == WL_SUCCESS)
        st = wl_model_write(model, WL_TABLE_ITEMS, m->items);
    if (st == WL_SUCCESS)
        st = wl_model_write(model, WL_TABLE_ITEM_BIAS, m->biases);
    if (st == WL_SUCCESS && adagrad) {
        st = wl_model_write_state(model, WL_TABLE_USERS, m->users_state);
        if (st == WL_SUCCESS)
            st = wl_model_write_state(model, WL_TABLE_ITEMS, m->items_state);
        if (st == WL_SUCCESS)
            st = wl_model_write_state(model, WL_TABLE_ITEM_BIAS, m->biases_state);
    }
    return st;
}

/* ------------------------------------------------------------ numpy */

/* mkdir -p */
static int make_dirs(const char *dir, char *err, size_t err_size)
{
    size_t n = strlen(dir);
    char *p = malloc(n + 1);
    if (!p) {
        set_err(err, err_size, "%s: out of memory", dir);
        return -1;
    }
    memcpy(p, dir, n + 1);
    for (size_t k = 1; k <= n; ++k) {
        if (p[k] != '/' && p[k] != '\0')
            continue;
        char saved = p[k];
        p[k] = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            set_err(err, err_size, "%s: cannot create the folder %s: %s", dir, p, strerror(errno));
            free(p);
            return -1;
        }
        p[k] = saved;
    }
    free(p);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        set_err(err, err_size, "%s: not a folder", dir);
        return -1;
    }
    return 0;
}

/* One .npy file: rows x cols (cols 0: a vector of rows), f32 or i64 data. */
static int write_npy(const char *dir, const char *file, const float *f32, const int64_t *i64, size_t rows, size_t cols,
                     char *err, size_t err_size)
{
    size_t plen = strlen(dir) + strlen(file) + 2;
    char *path = malloc(plen);
    if (!path) {
        set_err(err, err_size, "%s: out of memory", dir);
        return -1;
    }
    snprintf(path, plen, "%s/%s", dir, file);
    char dict[256], shape[64];
    if (cols)
        snprintf(shape, sizeof shape, "(%zu, %zu)", rows, cols);
    else
        snprintf(shape, sizeof shape, "(%zu,)", rows);
    int dlen = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                        f32 ? "<f4" : "<i8", shape);
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
        set_err(err, err_size, "%s: cannot create: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    int failed = fwrite(head, 1, total, f) != total;
    const size_t n = rows * (cols ? cols : 1);
    unsigned char buf[4096];
    size_t used = 0;
    for (size_t k = 0; k < n && !failed; ++k) {
        uint64_t v;
        int bytes;
        if (f32) {
            uint32_t bits;
            memcpy(&bits, &f32[k], 4);
            v = bits;
            bytes = 4;
        } else {
            v = (uint64_t)i64[k];
            bytes = 8;
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
        set_err(err, err_size, "%s: write failed: %s", path, strerror(saved_errno ? saved_errno : EIO));
        remove(path);
    }
    free(path);
    return failed ? -1 : 0;
}

int mf_export_npy(const char *dir, const mf_model *m, char *err, size_t err_size)
{
    if (!dir || !*dir || !m) {
        set_err(err, err_size, "mf_export_npy: no folder or no model");
        return -1;
    }
    if (!m->users || !m->items || !m->biases || !m->user_ids || !m->item_ids) {
        set_err(err, err_size, "%s: the model is incomplete", dir);
        return -1;
    }
    if (make_dirs(dir, err, err_size))
        return -1;
    const size_t nu = m->options.num_users, ni = m->options.num_items, dim = m->options.dim;
    if (write_npy(dir, "user_embeddings.npy", m->users, NULL, nu, dim, err, err_size) ||
        write_npy(dir, "item_embeddings.npy", m->items, NULL, ni, dim, err, err_size) ||
        write_npy(dir, "item_biases.npy", m->biases, NULL, ni, 0, err, err_size) ||
        write_npy(dir, "user_ids.npy", NULL, m->user_ids, nu, 0, err, err_size) ||
        write_npy(dir, "item_ids.npy", NULL, m->item_ids, ni, 0, err, err_size))
        return -1;
    return 0;
}
