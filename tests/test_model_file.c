/*
 * The model file (tools/model_file.h): save then load gives the same tables,
 * state, options, progress and ids bit for bit; a model restored with
 * mf_to_model takes the same next step as the original; every kind of damage
 * is refused with a message (truncation at every length, a flipped byte at
 * every offset, bad magic, another version, another header size, NaN in a
 * table, invalid options, duplicate ids); a failed save leaves no file; the
 * .npy export parsed back in C and, when python3 has numpy, by numpy itself.
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

#include "common.h"
#include "model_file.h"

#define NU 5
#define NI 7
#define DIM 3
#define ROWS 8
#define NEG 4

static wl_context *ctx;
static char *cache_dir, *work_dir;

static int group_setup(void **state)
{
    (void)state;
    ctx = wlt_temp_context("model_file", &cache_dir);
    work_dir = wlt_temp_dir("model_file_work");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    wl_context_destroy(ctx);
    wlt_free_temp_dir(&cache_dir);
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

static wl_model *new_model(const wl_model_options *o)
{
    wl_model *m = NULL;
    wl_status st = wl_model_create(ctx, o, &m);
    if (st != WL_SUCCESS)
        fail_msg("wl_model_create: %s: %s", wl_status_string(st), wl_context_last_error(ctx));
    return m;
}

/* One step with sampled candidates and a fixed batch, key `key`. */
static void step(wl_model *m, uint64_t key)
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
        fail_msg("wl_model_step: %s: %s", wl_status_string(st), wl_context_last_error(ctx));
}

/* A model trained a few steps, taken into an mf_model with ids 100+u, 1000+7*i. */
static wl_model *trained(const wl_model_options *o, mf_model *mf)
{
    wl_model *m = new_model(o);
    for (uint64_t k = 0; k < 3; ++k)
        step(m, k);
    int64_t uids[NU], iids[NI];
    for (int u = 0; u < NU; ++u)
        uids[u] = 100 + u;
    for (int i = 0; i < NI; ++i)
        iids[i] = 1000 + 7 * i - (i == 3 ? 5000 : 0);
    wl_status st = mf_from_model(m, o, uids, iids, 3, 17, mf);
    if (st != WL_SUCCESS)
        fail_msg("mf_from_model: %s: %s", wl_status_string(st), wl_context_last_error(ctx));
    return m;
}

static void assert_same_floats(const float *a, const float *b, size_t n)
{
    if (!a || !b) {
        assert_ptr_equal(a, b);
        return;
    }
    assert_memory_equal(a, b, n * sizeof(float));
}

static void assert_same_model(const mf_model *a, const mf_model *b)
{
    assert_int_equal(a->options.num_users, b->options.num_users);
    assert_int_equal(a->options.num_items, b->options.num_items);
    assert_int_equal(a->options.dim, b->options.dim);
    assert_int_equal(a->options.item_bias, b->options.item_bias);
    assert_int_equal(a->options.optimizer, b->options.optimizer);
    assert_true(a->options.seed == b->options.seed);
    assert_memory_equal(&a->options.learning_rate, &b->options.learning_rate, sizeof(float));
    assert_memory_equal(&a->options.l2_users, &b->options.l2_users, sizeof(float));
    assert_memory_equal(&a->options.l2_items, &b->options.l2_items, sizeof(float));
    assert_true(a->epochs_done == b->epochs_done);
    assert_true(a->batches_done == b->batches_done);
    const size_t nu = a->options.num_users, ni = a->options.num_items, d = a->options.dim;
    assert_same_floats(a->users, b->users, nu * d);
    assert_same_floats(a->items, b->items, ni * d);
    assert_same_floats(a->biases, b->biases, ni);
    assert_same_floats(a->users_state, b->users_state, nu * d);
    assert_same_floats(a->items_state, b->items_state, ni * d);
    assert_same_floats(a->biases_state, b->biases_state, ni);
    assert_memory_equal(a->user_ids, b->user_ids, nu * sizeof(int64_t));
    assert_memory_equal(a->item_ids, b->item_ids, ni * sizeof(int64_t));
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

/* The format's FNV-1a 64, rewritten into the last 8 bytes (damage that passes the checksum). */
static void fix_checksum(unsigned char *data, size_t size)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i + 8 < size; ++i) {
        h ^= data[i];
        h *= 0x100000001b3ull;
    }
    for (int i = 0; i < 8; ++i)
        data[size - 8 + (size_t)i] = (unsigned char)(h >> (8 * i));
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; ++i)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* mf_parse must refuse data with a message containing `want` (NULL: any message). */
static void expect_refused(const unsigned char *data, size_t size, const char *want)
{
    mf_model m;
    char err[512] = "";
    int rc = mf_parse(data, size, &m, err, sizeof err);
    if (rc == 0)
        fail_msg("accepted damaged input of %zu bytes (expected \"%s\")", size, want ? want : "an error");
    if (!err[0])
        fail_msg("refused without a message");
    if (!strstr(err, "(memory)"))
        fail_msg("the message does not name the input: %s", err);
    if (want && !strstr(err, want))
        fail_msg("message \"%s\" lacks \"%s\"", err, want);
    assert_null(m.users);
    assert_null(m.user_ids);
}

/* ------------------------------------------------------------ tests */

static void test_round_trip(void **state)
{
    (void)state;
    for (int opt = 0; opt < 2; ++opt) {
        for (int bias = 0; bias < 2; ++bias) {
            wl_model_options o;
            options(&o, (wl_optimizer)opt, bias);
            mf_model a, b;
            wl_model *m = trained(&o, &a);
            if (opt == WL_OPTIMIZER_SGD)
                assert_null(a.users_state);
            else
                assert_non_null(a.users_state);
            char *path = wlt_join(work_dir, "model.wlm");
            char err[512] = "";
            if (mf_save(path, &a, err, sizeof err) != 0)
                fail_msg("mf_save: %s", err);
            if (mf_load(path, &b, err, sizeof err) != 0)
                fail_msg("mf_load: %s", err);
            assert_same_model(&a, &b);
            /* the file is exactly the documented size and mf_serialize's bytes; no temporary left */
            size_t size, msize;
            unsigned char *data = read_all(path, &size), *mem = NULL;
            assert_int_equal(size, mf_file_size(&o));
            assert_int_equal(mf_serialize(&a, &mem, &msize, err, sizeof err), 0);
            assert_int_equal(msize, size);
            assert_memory_equal(mem, data, size);
            assert_memory_equal(data, "WLMODEL1", 8);
            assert_int_equal(wlt_count_files(work_dir), 1);
            free(mem);
            free(data);
            remove(path);
            free(path);
            mf_free(&a);
            mf_free(&b);
            wl_model_destroy(m);
        }
    }
}

/* save, load, restore into a fresh model: the next step gives the same tables and state bit for bit. */
static void test_resume(void **state)
{
    (void)state;
    for (int opt = 0; opt < 2; ++opt) {
        wl_model_options o;
        options(&o, (wl_optimizer)opt, 1);
        mf_model a, loaded, after_a, after_b;
        wl_model *ma = trained(&o, &a);
        char *path = wlt_join(work_dir, "resume.wlm");
        char err[512] = "";
        assert_int_equal(mf_save(path, &a, err, sizeof err), 0);
        assert_int_equal(mf_load(path, &loaded, err, sizeof err), 0);
        wl_model_options o2 = loaded.options;
        wl_model *mb = new_model(&o2);
        wl_status st = mf_to_model(&loaded, mb);
        if (st != WL_SUCCESS)
            fail_msg("mf_to_model: %s: %s", wl_status_string(st), wl_context_last_error(ctx));
        step(ma, 3);
        step(mb, 3);
        assert_int_equal(mf_from_model(ma, &o, a.user_ids, a.item_ids, 4, 18, &after_a), WL_SUCCESS);
        assert_int_equal(mf_from_model(mb, &o2, loaded.user_ids, loaded.item_ids, 4, 18, &after_b), WL_SUCCESS);
        assert_same_model(&after_a, &after_b);
        /* and the step did change something */
        assert_true(memcmp(after_a.users, a.users, NU * DIM * sizeof(float)) != 0);
        remove(path);
        free(path);
        mf_free(&a);
        mf_free(&loaded);
        mf_free(&after_a);
        mf_free(&after_b);
        wl_model_destroy(ma);
        wl_model_destroy(mb);
    }
}

static void test_damage(void **state)
{
    (void)state;
    wl_model_options o;
    options(&o, WL_OPTIMIZER_ADAGRAD, 1);
    mf_model a;
    wl_model *m = trained(&o, &a);
    unsigned char *data = NULL;
    size_t size;
    char err[512] = "";
    assert_int_equal(mf_serialize(&a, &data, &size, err, sizeof err), 0);
    unsigned char *copy = wlt_alloc(size + 16);

    /* every truncation, and one byte too many */
    for (size_t n = 0; n < size; ++n) {
        memcpy(copy, data, n);
        expect_refused(copy, n, n >= 8 && n < 16 ? "truncated" : NULL);
    }
    memcpy(copy, data, size);
    copy[size] = 0;
    expect_refused(copy, size + 1, "too long");

    /* every single flipped byte (two patterns) */
    for (size_t i = 0; i < size; ++i) {
        for (int p = 0; p < 2; ++p) {
            memcpy(copy, data, size);
            copy[i] ^= p ? 0xff : 0x01;
            expect_refused(copy, size, NULL);
        }
    }
    for (size_t i = MF_HEADER_SIZE; i < size; i += 5) {
        memcpy(copy, data, size);
        copy[i] ^= 0x10;
        expect_refused(copy, size, "checksum mismatch");
    }

    /* bad magic, version, header size, with and without a fixed checksum */
    memcpy(copy, data, size);
    copy[0] = 'X';
    expect_refused(copy, size, "bad magic");
    expect_refused((const unsigned char *)"PK\x03\x04", 4, "bad magic");
    memcpy(copy, data, size);
    put_u32(copy + 8, 2);
    fix_checksum(copy, size);
    expect_refused(copy, size, "unsupported model file version 2");
    memcpy(copy, data, size);
    put_u32(copy + 12, 96);
    fix_checksum(copy, size);
    expect_refused(copy, size, "header size 96");

    /* damage that passes the checksum: invalid options, NaN, a bad accumulator, duplicate ids */
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
        {36, 1, "reserved"},
        {40, 0x7fc00000u, "learning rate"},
        {40, 0, "learning rate"},
        {44, 0xbf800000u, "l2"},
        {24, 4, "need"},
        {32, 1, "need"},
        {16, 0xffffffffu, "need"},
        {MF_HEADER_SIZE + 4, 0x7fc00000u, "NaN or Inf"},
        {MF_HEADER_SIZE + 4 * (NU * DIM + 2), 0x7f800000u, "NaN or Inf"},
        {MF_HEADER_SIZE + 4 * (NU * DIM + NI * DIM + NI + 1), 0, "accumulator"},
        {MF_HEADER_SIZE + 4 * (NU * DIM + NI * DIM + NI + 2), 0xbf800000u, "accumulator"},
    };
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; ++f) {
        memcpy(copy, data, size);
        put_u32(copy + fields[f].offset, fields[f].value);
        fix_checksum(copy, size);
        expect_refused(copy, size, fields[f].want);
    }
    /* a duplicate user id: user 1's id set to user 0's */
    const size_t ids = size - 8 - 8 * (NU + NI);
    memcpy(copy, data, size);
    memcpy(copy + ids + 8, copy + ids, 8);
    fix_checksum(copy, size);
    expect_refused(copy, size, "user id 100 appears more than once");
    /* a bias without item biases */
    memcpy(copy, data, size);
    put_u32(copy + 28, 0);
    put_u32(copy + MF_HEADER_SIZE + 4 * (NU * DIM + NI * DIM), 0x3f800000u);
    fix_checksum(copy, size);
    expect_refused(copy, size, "no item biases");
    /* the undamaged bytes still parse, with a fixed checksum too */
    memcpy(copy, data, size);
    fix_checksum(copy, size);
    assert_memory_equal(copy, data, size);
    mf_model back;
    assert_int_equal(mf_parse(copy, size, &back, err, sizeof err), 0);
    assert_same_model(&a, &back);
    mf_free(&back);

    /* mf_load names the file */
    char *path = wlt_join(work_dir, "damaged.wlm");
    memcpy(copy, data, size);
    copy[size / 2] ^= 1;
    write_all(path, copy, size);
    assert_int_equal(mf_load(path, &back, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "checksum mismatch"));
    remove(path);
    assert_int_equal(mf_load(path, &back, err, sizeof err), -1);
    assert_non_null(strstr(err, path));

    /* a failed save leaves nothing; saving a damaged model is refused */
    char *missing = wlt_join(work_dir, "no/such/folder/model.wlm");
    assert_int_equal(mf_save(missing, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, missing));
    a.users[0] = NAN;
    assert_int_equal(mf_save(path, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "NaN"));
    assert_int_equal(wlt_count_files(work_dir), 0);
    free(missing);
    free(path);
    free(copy);
    free(data);
    mf_free(&a);
    wl_model_destroy(m);
}

/* ---- npy */

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
        memcpy(&w, (const unsigned char *)want + k * elem, elem); /* the host's order */
        if (elem == 4) {
            uint32_t w32;
            memcpy(&w32, (const unsigned char *)want + k * elem, 4);
            w = w32;
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
    mf_model a;
    wl_model *m = trained(&o, &a);
    char *dir = wlt_join(work_dir, "npy/nested");
    char err[512] = "";
    if (mf_export_npy(dir, &a, err, sizeof err) != 0)
        fail_msg("mf_export_npy: %s", err);
    check_npy(dir, "user_embeddings.npy", "<f4", "(5, 3)", a.users, NU * DIM, 4);
    check_npy(dir, "item_embeddings.npy", "<f4", "(7, 3)", a.items, NI * DIM, 4);
    check_npy(dir, "item_biases.npy", "<f4", "(7,)", a.biases, NI, 4);
    check_npy(dir, "user_ids.npy", "<i8", "(5,)", a.user_ids, NU, 8);
    check_npy(dir, "item_ids.npy", "<i8", "(7,)", a.item_ids, NI, 8);

    if (system("python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        print_message("note: python3 with numpy not found; the numpy check of the .npy files is skipped\n");
    } else {
        write_raw(dir, "user_embeddings.raw", a.users, NU * DIM, 4);
        write_raw(dir, "item_embeddings.raw", a.items, NI * DIM, 4);
        write_raw(dir, "item_biases.raw", a.biases, NI, 4);
        write_raw(dir, "user_ids.raw", a.user_ids, NU, 8);
        write_raw(dir, "item_ids.raw", a.item_ids, NI, 8);
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
        free(script);
    }
    /* a folder that cannot be created */
    char *blocked = wlt_join(work_dir, "file");
    write_all(blocked, "x", 1);
    char *below = wlt_join(blocked, "sub");
    assert_int_equal(mf_export_npy(below, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, below));
    free(below);
    remove(blocked);
    free(blocked);
    free(dir);
    mf_free(&a);
    wl_model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_npy),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
