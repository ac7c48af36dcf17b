/*
 * Model files (warploss.h, "model files"; src/model_file.c): on every launch
 * plan a trained model saved and loaded has the same options, tables, state,
 * known positives (seen through wl_model_recommend with exclude_known) and
 * application bytes, and both take the same next step bit for bit (Adagrad
 * and SGD); the file is wl_model_save_memory's bytes; every truncation, every
 * flipped bit, a foreign magic, version or header size, and damage behind a
 * valid checksum (NaN, accumulators, biases, known positives, sections) are
 * refused with WL_ERROR_FILE and a message; an unknown optional section is
 * skipped, an unknown required one refused; a version 1 file (warploss-train's
 * old format, built here byte by byte) loads with its trainer fields as the
 * application bytes; saving into a missing folder fails and leaves nothing,
 * saving over a file replaces it, a failed save leaves it as it was. And
 * warploss-train's numpy export (tools/export_npy.c), parsed back in C and,
 * when python3 has numpy, by numpy itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "export_npy.h"

#define NU 5
#define NI 7
#define DIM 3
#define ROWS 8
#define NEG 4
#define V2_HEADER 64u
#define SECTION 16u

static wl_context *ctxs[WLT_PLANS], *ctx;
static char *cache_dir, *work_dir;

static int group_setup(void **state)
{
    (void)state;
    wlt_plan_contexts("model_file", ctxs, &cache_dir);
    ctx = ctxs[0];
    work_dir = wlt_temp_dir("model_file_work");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    wlt_plan_contexts_free(ctxs, &cache_dir);
    wlt_free_temp_dir(&work_dir);
    return 0;
}

/* ------------------------------------------------------------ helpers */

static void options(wl_model_options *o, wl_optimizer opt, int item_bias)
{
    wl_model_options_default(o, NU, NI, DIM);
    o->seed = 1234;
    o->optimizer = opt;
    o->item_bias = item_bias;
    o->learning_rate = 0.1f;
    o->l2_users = 0.001f;
    o->l2_items = 0.002f;
}

/* User u's known positives: u % NI and (u + 2) % NI, ascending. */
static const uint64_t known_ptr[NU + 1] = {0, 2, 4, 6, 8, 10};
static const int32_t known_items[2 * NU] = {0, 2, 1, 3, 2, 4, 3, 5, 4, 6};

static wl_model *new_model(wl_context *c, const wl_model_options *o)
{
    wl_model *m = NULL;
    wl_status st = wl_model_create(c, o, &m);
    if (st != WL_SUCCESS)
        fail_msg("wl_model_create: %s: %s", wl_status_string(st), wl_context_last_error(c));
    return m;
}

/* One step with sampled candidates and a fixed batch, key `key`. */
static void step(wl_model *m, wl_context *c, uint64_t key)
{
    int32_t users[ROWS], pos[ROWS];
    for (int r = 0; r < ROWS; ++r) {
        users[r] = r % NU;
        pos[r] = (r * 3 + (int)key) % NI;
    }
    wl_loss_options lo;
    wl_loss_options_default(&lo, NI);
    wl_batch b;
    memset(&b, 0, sizeof b);
    b.rows = ROWS;
    b.users = users;
    b.positives = pos;
    b.negatives = NEG;
    b.sample_key = key;
    wl_step_result r;
    wl_status st = wl_model_step(m, &lo, &b, &r);
    if (st != WL_SUCCESS)
        fail_msg("wl_model_step: %s: %s", wl_status_string(st), wl_context_last_error(c));
}

/* A model on c with the known positives above, trained three steps. */
static wl_model *trained(wl_context *c, const wl_model_options *o)
{
    wl_model *m = new_model(c, o);
    assert_int_equal(wl_model_set_known(m, known_ptr, known_items), WL_SUCCESS);
    for (uint64_t k = 0; k < 3; ++k)
        step(m, c, k);
    return m;
}

/* Everything observable of a model: options, tables, state, and every user's
 * whole ranking with and without the known positives. */
typedef struct snap {
    wl_model_options o;
    float table[3][NI * DIM], state[3][NI * DIM];
    int has_state;
    int32_t top[NU * NI], top_known[NU * NI];
} snap;

static void take(wl_model *m, snap *s)
{
    memset(s, 0, sizeof *s);
    assert_int_equal(wl_model_get_options(m, &s->o), WL_SUCCESS);
    s->has_state = s->o.optimizer == WL_OPTIMIZER_ADAGRAD;
    for (int t = 0; t < 3; ++t) {
        assert_int_equal(wl_model_read(m, (wl_table)t, s->table[t]), WL_SUCCESS);
        wl_status st = wl_model_read_state(m, (wl_table)t, s->state[t]);
        assert_int_equal(st, s->has_state ? WL_SUCCESS : WL_ERROR_INVALID_ARGUMENT);
    }
    const int32_t users[NU] = {0, 1, 2, 3, 4};
    assert_int_equal(wl_model_recommend(m, NU, users, NI, 0, s->top, NULL), WL_SUCCESS);
    assert_int_equal(wl_model_recommend(m, NU, users, NI, 1, s->top_known, NULL), WL_SUCCESS);
}

static void assert_same_snap(const snap *a, const snap *b, const char *what)
{
    if (memcmp(&a->o, &b->o, sizeof a->o) != 0)
        fail_msg("%s: the options differ", what);
    if (memcmp(a->table, b->table, sizeof a->table) != 0)
        fail_msg("%s: the tables differ", what);
    if (a->has_state != b->has_state || memcmp(a->state, b->state, sizeof a->state) != 0)
        fail_msg("%s: the optimizer state differs", what);
    if (memcmp(a->top, b->top, sizeof a->top) != 0 || memcmp(a->top_known, b->top_known, sizeof a->top_known) != 0)
        fail_msg("%s: the recommendations (known positives) differ", what);
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 1 << 16, n = 0, got;
    unsigned char *data = wlt_alloc(cap);
    while ((got = fread(data + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *grown = realloc(data, cap * 2);
            assert_non_null(grown);
            data = grown;
            cap *= 2;
        }
    }
    fclose(f);
    *size = n;
    return data;
}

static void write_all(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; ++i) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; ++i)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; ++i)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_f32(unsigned char *p, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    put_u32(p, bits);
}

/* The format's FNV-1a 64 written into the last 8 bytes (damage that passes the checksum). */
static void fix_checksum(unsigned char *data, size_t size) { put_u64(data + size - 8, fnv1a(data, size - 8)); }

/* The memory form must refuse data with WL_ERROR_FILE and a message naming
 * the input and containing `want` (NULL: any message). */
static void expect_refused(const unsigned char *data, size_t size, const char *want)
{
    wl_model *m = (wl_model *)&m;
    void *app = &app;
    size_t app_size = 99;
    const wl_status st = wl_model_load_memory(ctx, data, size, &m, &app, &app_size);
    const char *err = wl_context_last_error(ctx);
    if (st == WL_SUCCESS) {
        wl_model_destroy(m);
        fail_msg("accepted damaged input of %zu bytes (expected \"%s\")", size, want ? want : "an error");
    }
    if (st != WL_ERROR_FILE)
        fail_msg("%zu bytes refused with %s, not WL_ERROR_FILE: %s", size, wl_status_string(st), err);
    assert_null(m);
    assert_null(app);
    assert_int_equal(app_size, 0);
    if (!strstr(err, "(memory)"))
        fail_msg("the message does not name the input: %s", err);
    if (want && !strstr(err, want))
        fail_msg("message \"%s\" lacks \"%s\"", err, want);
}

/* The memory form of m's file, with the given application bytes. */
static unsigned char *save_bytes(wl_model *m, const void *app, size_t app_size, size_t *size)
{
    void *data = NULL;
    wl_status st = wl_model_save_memory(m, app, app_size, &data, size);
    if (st != WL_SUCCESS)
        fail_msg("wl_model_save_memory: %s: %s", wl_status_string(st), wl_context_last_error(ctx));
    return data;
}

static const char app_text[] = "application bytes \x01\x02\x00\xff";

/* ------------------------------------------------------------ round trip */

/* On every plan, Adagrad and SGD, with and without item biases: save, load,
 * everything equal; then the same step on both: still equal, bit for bit. */
static void test_round_trip(void **state)
{
    (void)state;
    for (int p = 0; p < WLT_PLANS; ++p) {
        wl_context *c = ctxs[p];
        for (int opt = 0; opt < 2; ++opt) {
            for (int bias = 0; bias < 2; ++bias) {
                char what[128];
                snprintf(what, sizeof what, "plan %s, %s, item_bias %d", wlt_plan_names[p], opt ? "SGD" : "Adagrad",
                         bias);
                wl_model_options o;
                options(&o, (wl_optimizer)opt, bias);
                wl_model *a = trained(c, &o);
                char *path = wlt_join(work_dir, "model.wlm");
                wl_status st = wl_model_save(a, path, app_text, sizeof app_text);
                if (st != WL_SUCCESS)
                    fail_msg("%s: wl_model_save: %s: %s", what, wl_status_string(st), wl_context_last_error(c));
                assert_int_equal(wlt_count_files(work_dir), 1); /* no temporary file left */
                wl_model *b = NULL;
                void *app = NULL;
                size_t app_size = 0;
                st = wl_model_load(c, path, &b, &app, &app_size);
                if (st != WL_SUCCESS)
                    fail_msg("%s: wl_model_load: %s: %s", what, wl_status_string(st), wl_context_last_error(c));
                assert_int_equal(app_size, sizeof app_text);
                assert_memory_equal(app, app_text, sizeof app_text);
                wl_free(app);
                snap sa, sb;
                take(a, &sa);
                take(b, &sb);
                assert_same_snap(&sa, &sb, what);
                o.item_bias = bias;
                assert_memory_equal(&sa.o, &o, sizeof o);
                /* the known positives matter here: leaving them out changes the lists */
                assert_true(memcmp(sa.top, sa.top_known, sizeof sa.top) != 0);

                /* the file is the memory form's bytes */
                size_t size, msize;
                unsigned char *file = read_all(path, &size), *mem = save_bytes(a, app_text, sizeof app_text, &msize);
                assert_int_equal(size, msize);
                assert_memory_equal(file, mem, size);
                assert_memory_equal(file, "WLMODEL1\x02\0\0\0", 12);

                /* both step on: the same tables and state */
                step(a, c, 10);
                step(b, c, 10);
                take(a, &sa);
                take(b, &sb);
                assert_same_snap(&sa, &sb, what);

                /* loaded again without the application bytes */
                wl_model *d = NULL;
                assert_int_equal(wl_model_load_memory(c, mem, msize, &d, NULL, NULL), WL_SUCCESS);
                assert_non_null(d);
                wl_model_destroy(d);
                wl_free(mem);
                free(file);
                remove(path);
                free(path);
                wl_model_destroy(a);
                wl_model_destroy(b);
            }
        }
    }
}

/* No application bytes, no known positives: both come back empty. */
static void test_empty_parts(void **state)
{
    (void)state;
    wl_model_options o;
    options(&o, WL_OPTIMIZER_ADAGRAD, 1);
    wl_model *a = new_model(ctx, &o);
    step(a, ctx, 0);
    size_t size;
    unsigned char *data = save_bytes(a, NULL, 0, &size);
    wl_model *b = NULL;
    void *app = &app;
    size_t app_size = 5;
    assert_int_equal(wl_model_load_memory(ctx, data, size, &b, &app, &app_size), WL_SUCCESS);
    assert_null(app);
    assert_int_equal(app_size, 0);
    snap sa, sb;
    take(a, &sa);
    take(b, &sb);
    assert_same_snap(&sa, &sb, "no application bytes, no known positives");
    assert_memory_equal(sb.top, sb.top_known, sizeof sb.top);
    wl_free(data);
    wl_model_destroy(a);
    wl_model_destroy(b);
}

/* ------------------------------------------------------------ damage */

/* Offsets of the sections of a version 2 file: tag position of each, by walking. */
static size_t section_at(const unsigned char *data, size_t size, const char *tag)
{
    size_t at = V2_HEADER;
    while (at + SECTION <= size - 8) {
        if (memcmp(data + at, tag, 4) == 0)
            return at;
        at += SECTION + (size_t)get_u64(data + at + 8);
    }
    fail_msg("no section %s", tag);
    return 0;
}

static void test_damage(void **state)
{
    (void)state;
    wl_model_options o;
    options(&o, WL_OPTIMIZER_ADAGRAD, 1);
    wl_model *m = trained(ctx, &o);
    size_t size;
    unsigned char *data = save_bytes(m, app_text, sizeof app_text, &size);
    unsigned char *copy = wlt_alloc(size + 64);

    /* every truncation, and one byte too many */
    for (size_t n = 0; n < size; ++n) {
        memcpy(copy, data, n);
        expect_refused(copy, n, n < 8 ? NULL : n < 72 ? "truncated" : "checksum");
    }
    memcpy(copy, data, size);
    copy[size] = 0;
    expect_refused(copy, size + 1, "checksum");

    /* every single flipped bit: the checksum (the magic, version and header size are checked first) */
    for (size_t i = 0; i < size; ++i) {
        for (int bit = 0; bit < 8; ++bit) {
            memcpy(copy, data, size);
            copy[i] ^= (unsigned char)(1u << bit);
            expect_refused(copy, size, i < 16 ? NULL : "checksum");
        }
    }

    /* foreign magic, other versions, another header size */
    memcpy(copy, data, size);
    copy[0] = 'X';
    expect_refused(copy, size, "bad magic");
    expect_refused((const unsigned char *)"PK\x03\x04", 4, "bad magic");
    expect_refused((const unsigned char *)"WLMOD", 5, "truncated");
    memcpy(copy, data, size);
    put_u32(copy + 8, 3);
    fix_checksum(copy, size);
    expect_refused(copy, size, "unsupported model file version 3");
    put_u32(copy + 8, 0);
    expect_refused(copy, size, "unsupported model file version 0");
    memcpy(copy, data, size);
    put_u32(copy + 12, 72);
    fix_checksum(copy, size);
    expect_refused(copy, size, "header size 72");

    /* damage behind a valid checksum */
    const size_t tabl = section_at(data, size, "TABL") + SECTION, adag = section_at(data, size, "ADAG") + SECTION,
                 know = section_at(data, size, "KNOW") + SECTION;
    struct {
        size_t offset;
        uint32_t value;
        const char *want;
    } fields[] = {
        {24, 0, "dim is 0"},
        {16, 0, "num_users is 0"},
        {20, 1, "num_items is 1"},
        {28, 2, "item_bias is 2"},
        {32, 2, "unknown optimizer 2"},
        {36, 0x7fc00000u, "learning rate"},
        {36, 0, "learning rate"},
        {40, 0xbf800000u, "l2"},
        {56, 1, "UFEA (the user feature matrix) is missing"},
        {60, 3, "IFEA (the item feature matrix) is missing"},
        {24, 4, "TABL has"},
        {32, 1, "ADAG section"},
        {16, 0xffffffffu, "TABL has"},
        {tabl + 4, 0x7fc00000u, "NaN or Inf"},
        {tabl + 4 * (NU * DIM + 2), 0x7f800000u, "NaN or Inf"},
        {adag + 4, 0, "accumulator"},
        {adag + 4 * (NU * DIM + NI * DIM + 1), 0xbf800000u, "accumulator"},
        {know + 8 * (NU + 1) + 4, 0, "not strictly ascending"},
        {know + 8 * (NU + 1) + 4, 7, "out of range"},
        {know + 8 * (NU + 1) + 4, 0xffffffffu, "out of range"},
        {know + 8, 5, "less than"},
        {know + 8 * NU, 11, "indptr[5] is 11"},
        {know, 1, "indptr[0]"},
        {tabl - SECTION, 0x4c424174u /* "tABL" */, "unknown required section 'tABL'"},
        {adag - SECTION + 4, 1, "flags"},
        {adag - SECTION + 4, 2, "flags"},
        {adag - SECTION, 0x4c424154u /* "TABL" */, "appears twice"},
        {tabl - SECTION, 0x574f4e4bu /* "KNOW" */, "after"},
    };
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; ++f) {
        memcpy(copy, data, size);
        put_u32(copy + fields[f].offset, fields[f].value);
        fix_checksum(copy, size);
        expect_refused(copy, size, fields[f].want);
    }
    /* a bias without item biases */
    memcpy(copy, data, size);
    put_u32(copy + 28, 0);
    put_f32(copy + tabl + 4 * (NU * DIM + NI * DIM), 1.0f);
    fix_checksum(copy, size);
    expect_refused(copy, size, "no item biases");
    /* a section's length that runs past the end, and one byte less than the tables need */
    memcpy(copy, data, size);
    put_u64(copy + tabl - 8, 1u << 20);
    fix_checksum(copy, size);
    expect_refused(copy, size, "truncated or damaged");
    /* a trailing byte between the last section and the checksum */
    memcpy(copy, data, size - 8);
    copy[size - 8] = 0;
    fix_checksum(copy, size + 1);
    expect_refused(copy, size + 1, "too few for a section header");
    /* the application section missing: cut the file after KNOW */
    const size_t appl = section_at(data, size, "APPL");
    memcpy(copy, data, appl);
    fix_checksum(copy, appl + 8);
    expect_refused(copy, appl + 8, "APPL");
    /* the undamaged bytes still load, with a recomputed checksum too */
    memcpy(copy, data, size);
    fix_checksum(copy, size);
    assert_memory_equal(copy, data, size);

    /* the file form names the file */
    char *path = wlt_join(work_dir, "damaged.wlm");
    copy[size / 2] ^= 1;
    write_all(path, copy, size);
    wl_model *back = (wl_model *)&back;
    assert_int_equal(wl_model_load(ctx, path, &back, NULL, NULL), WL_ERROR_FILE);
    assert_null(back);
    assert_non_null(strstr(wl_context_last_error(ctx), path));
    assert_non_null(strstr(wl_context_last_error(ctx), "checksum mismatch"));
    remove(path);
    assert_int_equal(wl_model_load(ctx, path, &back, NULL, NULL), WL_ERROR_FILE);
    assert_non_null(strstr(wl_context_last_error(ctx), path));
    assert_int_equal(wl_model_load(ctx, work_dir, &back, NULL, NULL), WL_ERROR_FILE); /* a folder */
    assert_null(back);
    free(path);
    free(copy);
    wl_free(data);
    wl_model_destroy(m);
}

/* Unknown sections: an optional one is skipped, a required one refused by its tag. */
static void test_unknown_sections(void **state)
{
    (void)state;
    wl_model_options o;
    options(&o, WL_OPTIMIZER_ADAGRAD, 1);
    wl_model *a = trained(ctx, &o);
    size_t size;
    unsigned char *data = save_bytes(a, app_text, sizeof app_text, &size);
    const size_t at = section_at(data, size, "KNOW"), extra = SECTION + 5;
    unsigned char *grown = wlt_alloc(size + extra);
    memcpy(grown, data, at);
    memcpy(grown + at, "XTRA", 4);
    put_u32(grown + at + 4, 1);
    put_u64(grown + at + 8, 5);
    memcpy(grown + at + SECTION, "hello", 5);
    memcpy(grown + at + extra, data + at, size - at);
    fix_checksum(grown, size + extra);
    wl_model *b = NULL;
    void *app = NULL;
    size_t app_size = 0;
    assert_int_equal(wl_model_load_memory(ctx, grown, size + extra, &b, &app, &app_size), WL_SUCCESS);
    snap sa, sb;
    take(a, &sa);
    take(b, &sb);
    assert_same_snap(&sa, &sb, "an unknown optional section");
    assert_int_equal(app_size, sizeof app_text);
    assert_memory_equal(app, app_text, sizeof app_text);
    wl_free(app);
    /* saved again: the plain file */
    size_t again_size;
    unsigned char *again = save_bytes(b, app_text, sizeof app_text, &again_size);
    assert_int_equal(again_size, size);
    assert_memory_equal(again, data, size);
    wl_free(again);
    wl_model_destroy(b);

    put_u32(grown + at + 4, 0);
    fix_checksum(grown, size + extra);
    expect_refused(grown, size + extra, "unknown required section 'XTRA'");
    free(grown);
    wl_free(data);
    wl_model_destroy(a);
}

/* ------------------------------------------------------------ version 1 */

/* A version 1 file as warploss-train wrote it (tools/model_file.h before the
 * library had model files), byte by byte: 88-byte header, tables, state
 * (Adagrad), ids, checksum. */
static unsigned char *v1_file(const wl_model_options *o, const snap *s, uint64_t epochs, uint64_t batches,
                              const int64_t *uids, const int64_t *iids, size_t *size)
{
    const int adagrad = o->optimizer == WL_OPTIMIZER_ADAGRAD;
    const size_t count[3] = {NU * DIM, NI * DIM, NI};
    *size = 88 + 4 * (count[0] + count[1] + count[2]) * (adagrad ? 2 : 1) + 8 * (NU + NI) + 8;
    unsigned char *d = wlt_alloc(*size), *p = d + 88;
    memset(d, 0, 88);
    memcpy(d, "WLMODEL1", 8);
    put_u32(d + 8, 1);
    put_u32(d + 12, 88);
    put_u32(d + 16, o->num_users);
    put_u32(d + 20, o->num_items);
    put_u32(d + 24, o->dim);
    put_u32(d + 28, (uint32_t)o->item_bias);
    put_u32(d + 32, (uint32_t)o->optimizer);
    put_f32(d + 40, o->learning_rate);
    put_f32(d + 44, o->l2_users);
    put_f32(d + 48, o->l2_items);
    put_u64(d + 56, o->seed);
    put_u64(d + 64, epochs);
    put_u64(d + 72, batches);
    for (int part = 0; part < (adagrad ? 2 : 1); ++part)
        for (int t = 0; t < 3; ++t)
            for (size_t k = 0; k < count[t]; ++k, p += 4)
                put_f32(p, part ? s->state[t][k] : s->table[t][k]);
    for (int u = 0; u < NU; ++u, p += 8)
        put_u64(p, (uint64_t)uids[u]);
    for (int i = 0; i < NI; ++i, p += 8)
        put_u64(p, (uint64_t)iids[i]);
    fix_checksum(d, *size);
    return d;
}

static void test_version1(void **state)
{
    (void)state;
    int64_t uids[NU], iids[NI];
    for (int u = 0; u < NU; ++u)
        uids[u] = 100 + u;
    for (int i = 0; i < NI; ++i)
        iids[i] = 1000 + 7 * i - (i == 3 ? 5000 : 0);
    for (int opt = 0; opt < 2; ++opt) {
        wl_model_options o;
        options(&o, (wl_optimizer)opt, 1);
        wl_model *a = new_model(ctx, &o);
        for (uint64_t k = 0; k < 3; ++k)
            step(a, ctx, k);
        snap sa, sb;
        take(a, &sa);
        size_t size;
        unsigned char *file = v1_file(&o, &sa, 3, 17, uids, iids, &size);
        char *path = wlt_join(work_dir, "v1.wlm");
        write_all(path, file, size);
        wl_model *b = NULL;
        void *app = NULL;
        size_t app_size = 0;
        wl_status st = wl_model_load(ctx, path, &b, &app, &app_size);
        if (st != WL_SUCCESS)
            fail_msg("version 1: %s: %s", wl_status_string(st), wl_context_last_error(ctx));
        take(b, &sb);
        assert_same_snap(&sa, &sb, opt ? "version 1, SGD" : "version 1, Adagrad"); /* no known positives on either */
        assert_memory_equal(sb.top, sb.top_known, sizeof sb.top);
        /* the application bytes: u64 epochs_done, u64 batches_done, i64 user_ids[U], i64 item_ids[I] */
        assert_int_equal(app_size, 16 + 8 * (NU + NI));
        const unsigned char *p = app;
        assert_true(get_u64(p) == 3 && get_u64(p + 8) == 17);
        for (int u = 0; u < NU; ++u)
            assert_true((int64_t)get_u64(p + 16 + 8 * u) == uids[u]);
        for (int i = 0; i < NI; ++i)
            assert_true((int64_t)get_u64(p + 16 + 8 * NU + 8 * i) == iids[i]);
        /* both step on alike */
        step(a, ctx, 5);
        step(b, ctx, 5);
        take(a, &sa);
        take(b, &sb);
        assert_same_snap(&sa, &sb, "version 1, stepped on");
        wl_free(app);
        wl_model_destroy(b);

        /* version 1 damage: checksum, size, reserved field */
        file[100] ^= 4;
        expect_refused(file, size, "checksum mismatch");
        file[100] ^= 4;
        expect_refused(file, size - 1, "truncated or damaged");
        put_u32(file + 36, 1);
        fix_checksum(file, size);
        expect_refused(file, size, "reserved");
        remove(path);
        free(path);
        free(file);
        wl_model_destroy(a);
    }
}

/* ------------------------------------------------------------ files */

static void test_files(void **state)
{
    (void)state;
    wl_model_options o;
    options(&o, WL_OPTIMIZER_ADAGRAD, 1);
    wl_model *m = trained(ctx, &o);
    size_t want_size;
    unsigned char *want = save_bytes(m, "x", 1, &want_size);

    /* a missing folder: WL_ERROR_FILE naming the file, nothing created */
    char *missing = wlt_join(work_dir, "no/such/folder/model.wlm");
    assert_int_equal(wl_model_save(m, missing, "x", 1), WL_ERROR_FILE);
    assert_non_null(strstr(wl_context_last_error(ctx), missing));
    assert_int_equal(wlt_count_files(work_dir), 0);
    char *no = wlt_join(work_dir, "no");
    struct stat st;
    assert_int_not_equal(stat(no, &st), 0);

    /* over an existing file: replaced, nothing else left */
    char *path = wlt_join(work_dir, "model.wlm");
    write_all(path, "an older file", 13);
    assert_int_equal(wl_model_save(m, path, "x", 1), WL_SUCCESS);
    size_t size;
    unsigned char *got = read_all(path, &size);
    assert_int_equal(size, want_size);
    assert_memory_equal(got, want, size);
    free(got);
    assert_int_equal(wlt_count_files(work_dir), 1);

    /* a failed save leaves the file as it was: NaN in a table, and a folder in the way of the rename */
    write_all(path, "an older file", 13);
    float users[NU * DIM];
    assert_int_equal(wl_model_read(m, WL_TABLE_USERS, users), WL_SUCCESS);
    users[4] = NAN;
    wl_model *bad = new_model(ctx, &o);
    assert_int_equal(wl_model_write(bad, WL_TABLE_USERS, users), WL_SUCCESS);
    assert_int_equal(wl_model_save(bad, path, NULL, 0), WL_ERROR_NONFINITE);
    assert_non_null(strstr(wl_context_last_error(ctx), "NaN"));
    void *mem = &mem;
    size_t mem_size = 3;
    assert_int_equal(wl_model_save_memory(bad, NULL, 0, &mem, &mem_size), WL_ERROR_NONFINITE);
    assert_null(mem);
    assert_int_equal(mem_size, 0);
    wl_model_destroy(bad);
    got = read_all(path, &size);
    assert_int_equal(size, 13);
    assert_memory_equal(got, "an older file", 13);
    free(got);
    char *folder = wlt_join(work_dir, "folder.wlm");
    assert_int_equal(mkdir(folder, 0700), 0);
    assert_int_equal(wl_model_save(m, folder, NULL, 0), WL_ERROR_FILE);
    assert_non_null(strstr(wl_context_last_error(ctx), folder));
    assert_int_equal(wlt_count_files(work_dir), 1); /* the older file only: no temporary left */
    assert_int_equal(stat(folder, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    rmdir(folder);
    remove(path);

    /* argument errors */
    wl_model *out = NULL;
    void *app = NULL;
    size_t app_size = 0;
    assert_int_equal(wl_model_save(NULL, path, NULL, 0), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_save(m, NULL, NULL, 0), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_save(m, "", NULL, 0), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_save(m, path, NULL, 3), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_save_memory(m, NULL, 0, NULL, &size), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_load(NULL, path, &out, NULL, NULL), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_load(ctx, path, NULL, NULL, NULL), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_load(ctx, NULL, &out, NULL, NULL), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_load(ctx, path, &out, &app, NULL), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_load(ctx, path, &out, NULL, &app_size), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_load_memory(ctx, NULL, 10, &out, NULL, NULL), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_get_options(NULL, &o), WL_ERROR_INVALID_ARGUMENT);
    assert_int_equal(wl_model_get_options(m, NULL), WL_ERROR_INVALID_ARGUMENT);
    assert_null(out);
    assert_int_equal(wlt_count_files(work_dir), 0);
    wl_free(NULL);
    assert_string_not_equal(wl_status_string(WL_ERROR_FILE), wl_status_string(WL_ERROR_OPENCL));

    free(folder);
    free(path);
    free(no);
    free(missing);
    wl_free(want);
    wl_model_destroy(m);
}

/* ------------------------------------------------------------ npy (warploss-train's export) */

static uint64_t le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Parse dir/name as npy 1.0: header, alignment, dict, then the data against want. */
static void check_npy(const char *dir, const char *name, const char *descr, const char *shape, const void *want,
                      size_t count, size_t elem)
{
    char *path = wlt_join(dir, name);
    size_t size;
    unsigned char *data = read_all(path, &size);
    assert_true(size >= 10);
    assert_memory_equal(data, "\x93NUMPY\x01\x00", 8);
    const size_t hl = (size_t)le(data + 8, 2), start = 10 + hl;
    assert_int_equal(start % 64, 0);
    assert_true(start <= size);
    assert_int_equal(data[start - 1], '\n');
    char header[512];
    assert_true(hl < sizeof header);
    memcpy(header, data + 10, hl);
    header[hl] = '\0';
    char want_descr[64], want_shape[96];
    snprintf(want_descr, sizeof want_descr, "'descr': '%s'", descr);
    snprintf(want_shape, sizeof want_shape, "'shape': %s", shape);
    if (!strstr(header, want_descr) || !strstr(header, want_shape) || !strstr(header, "'fortran_order': False"))
        fail_msg("%s: header %s", name, header);
    assert_int_equal(size - start, count * elem);
    for (size_t k = 0; k < count; ++k) {
        uint64_t w = 0;
        if (elem == 4) {
            uint32_t w32;
            memcpy(&w32, (const unsigned char *)want + k * elem, 4);
            w = w32;
        } else {
            memcpy(&w, (const unsigned char *)want + k * elem, 8); /* the host's order */
        }
        assert_true(le(data + start + k * elem, (int)elem) == w);
    }
    free(data);
    free(path);
}

/* Raw little-endian bytes, for numpy to compare with. */
static void write_raw(const char *dir, const char *name, const void *v, size_t count, size_t elem)
{
    char *path = wlt_join(dir, name);
    unsigned char *bytes = wlt_alloc(count * elem);
    for (size_t k = 0; k < count; ++k) {
        uint64_t x = 0;
        if (elem == 4) {
            uint32_t x32;
            memcpy(&x32, (const unsigned char *)v + k * 4, 4);
            x = x32;
        } else {
            memcpy(&x, (const unsigned char *)v + k * 8, 8);
        }
        for (size_t i = 0; i < elem; ++i)
            bytes[k * elem + i] = (unsigned char)(x >> (8 * i));
    }
    write_all(path, bytes, count * elem);
    free(bytes);
    free(path);
}

static void test_npy(void **state)
{
    (void)state;
    wl_model_options o;
    options(&o, WL_OPTIMIZER_ADAGRAD, 1);
    wl_model *m = trained(ctx, &o);
    snap s;
    take(m, &s);
    int64_t uids[NU], iids[NI];
    for (int u = 0; u < NU; ++u)
        uids[u] = 100 + u;
    for (int i = 0; i < NI; ++i)
        iids[i] = 1000 + 7 * i - (i == 3 ? 5000 : 0);
    char *dir = wlt_join(work_dir, "npy/nested");
    char err[512] = "";
    if (npy_export_model(dir, m, uids, iids, err, sizeof err) != 0)
        fail_msg("npy_export_model: %s", err);
    check_npy(dir, "user_embeddings.npy", "<f4", "(5, 3)", s.table[0], NU * DIM, 4);
    check_npy(dir, "item_embeddings.npy", "<f4", "(7, 3)", s.table[1], NI * DIM, 4);
    check_npy(dir, "item_biases.npy", "<f4", "(7,)", s.table[2], NI, 4);
    check_npy(dir, "user_ids.npy", "<i8", "(5,)", uids, NU, 8);
    check_npy(dir, "item_ids.npy", "<i8", "(7,)", iids, NI, 8);

    if (system("python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        print_message("note: python3 with numpy not found; the numpy check of the .npy files is skipped\n");
    } else {
        write_raw(dir, "user_embeddings.raw", s.table[0], NU * DIM, 4);
        write_raw(dir, "item_embeddings.raw", s.table[1], NI * DIM, 4);
        write_raw(dir, "item_biases.raw", s.table[2], NI, 4);
        write_raw(dir, "user_ids.raw", uids, NU, 8);
        write_raw(dir, "item_ids.raw", iids, NI, 8);
        char *script = wlt_join(work_dir, "check_npy.py");
        const char *py = "import sys, numpy as np\n"
                         "d = sys.argv[1]\n"
                         "want = {'user_embeddings': ((5, 3), 'float32'), 'item_embeddings': ((7, 3), 'float32'),\n"
                         "        'item_biases': ((7,), 'float32'), 'user_ids': ((5,), 'int64'),\n"
                         "        'item_ids': ((7,), 'int64')}\n"
                         "for name, (shape, dtype) in want.items():\n"
                         "    a = np.load(d + '/' + name + '.npy', allow_pickle=False)\n"
                         "    assert a.shape == shape, (name, a.shape)\n"
                         "    assert a.dtype == np.dtype(dtype), (name, a.dtype)\n"
                         "    assert a.flags['C_CONTIGUOUS']\n"
                         "    raw = open(d + '/' + name + '.raw', 'rb').read()\n"
                         "    assert a.astype(a.dtype.newbyteorder('<')).tobytes() == raw, name\n"
                         "assert int(np.load(d + '/item_ids.npy')[3]) == 1000 + 21 - 5000\n"
                         "print('numpy check ok')\n";
        write_all(script, py, strlen(py));
        size_t cmd_len = strlen(script) + strlen(dir) + 32;
        char *cmd = wlt_alloc(cmd_len);
        snprintf(cmd, cmd_len, "python3 '%s' '%s'", script, dir);
        int rc = system(cmd);
        if (rc != 0)
            fail_msg("numpy refused the .npy files (%s: %d)", cmd, rc);
        free(cmd);
        remove(script);
        free(script);
    }
    /* a folder that cannot be created */
    char *blocked = wlt_join(work_dir, "file");
    write_all(blocked, "x", 1);
    char *below = wlt_join(blocked, "sub");
    assert_int_equal(npy_export_model(below, m, uids, iids, err, sizeof err), -1);
    assert_non_null(strstr(err, below));
    free(below);
    remove(blocked);
    free(blocked);
    char *top = wlt_join(work_dir, "npy");
    wlt_remove_tree(top);
    free(top);
    free(dir);
    wl_model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip), cmocka_unit_test(test_empty_parts),
        cmocka_unit_test(test_damage),     cmocka_unit_test(test_unknown_sections),
        cmocka_unit_test(test_version1),   cmocka_unit_test(test_files),
        cmocka_unit_test(test_npy),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
