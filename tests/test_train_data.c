/*
 * warploss-train's data (tools/train_data.h): the formats (detected and
 * given), header lines, CRLF, malformed lines and their numbers, empty
 * files, ids beyond int32, --skip-bad-lines, --min-rating, a part with no
 * interactions (allow_empty), concatenated parts, the split (seeded,
 * disjoint, of the documented sizes), a test file with unknown ids, and the
 * synthetic set. No OpenCL.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "train_data.h"

static char err[512];

/* Reads text with the given format; asserts success. */
static void read_ok(const char *text, td_format f, td_interactions *x, td_read_report *r)
{
    td_read_options o = {.format = f};
    int rc = td_read_buffer("t.csv", text, strlen(text), &o, x, r, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
}

/* Reads text; asserts failure and returns the message. */
static const char *read_fails(const char *text, const td_read_options *o)
{
    td_interactions x;
    td_read_report r;
    err[0] = 0;
    assert_int_equal(td_read_buffer("t.csv", text, strlen(text), o, &x, &r, err, sizeof err), -1);
    assert_int_equal(x.count, 0);
    assert_null(x.users);
    return err;
}

static void assert_pair(const td_interactions *x, size_t k, int64_t u, int64_t i, float r)
{
    assert_true(k < x->count);
    assert_true(x->users[k] == u);
    assert_true(x->items[k] == i);
    assert_float_equal(x->ratings[k], r, 1e-6);
}

static void test_format_names(void **state)
{
    (void)state;
    for (int f = TD_FORMAT_MOVIELENS_CSV; f <= TD_FORMAT_TSV; ++f) {
        td_format back = TD_FORMAT_AUTO;
        assert_int_equal(td_format_parse(td_format_name((td_format)f), &back), 0);
        assert_int_equal(back, f);
    }
    td_format g;
    assert_null(td_format_name(TD_FORMAT_AUTO));
    assert_int_equal(td_format_parse("xml", &g), -1);
    assert_string_equal(td_format_name(TD_FORMAT_MOVIELENS_TSV), "movielens-tsv");
}

static void test_movielens_csv(void **state)
{
    (void)state;
    const char *text = "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n7,1,5,1\n";
    for (int forced = 0; forced < 2; ++forced) {
        td_interactions x;
        td_read_report r;
        read_ok(text, forced ? TD_FORMAT_MOVIELENS_CSV : TD_FORMAT_AUTO, &x, &r);
        assert_int_equal(r.format, TD_FORMAT_MOVIELENS_CSV);
        assert_int_equal(x.count, 3);
        assert_int_equal(r.lines, 3);
        assert_pair(&x, 0, 1, 31, 2.5f);
        assert_pair(&x, 1, 1, 1029, 3.0f);
        assert_pair(&x, 2, 7, 1, 5.0f);
        td_interactions_free(&x);
    }
}

static void test_movielens_tsv(void **state)
{
    (void)state;
    const char *text = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n";
    for (int forced = 0; forced < 2; ++forced) {
        td_interactions x;
        td_read_report r;
        read_ok(text, forced ? TD_FORMAT_MOVIELENS_TSV : TD_FORMAT_AUTO, &x, &r);
        assert_int_equal(r.format, TD_FORMAT_MOVIELENS_TSV);
        assert_int_equal(x.count, 3);
        assert_pair(&x, 2, 22, 377, 1.0f);
        td_interactions_free(&x);
    }
}

static void test_plain_csv_tsv(void **state)
{
    (void)state;
    td_interactions x;
    td_read_report r;
    /* Without weights: weight 1. With a header, detected from its non-numeric fields. */
    read_ok("user,item\n5,6\n 7 , 8 \n", TD_FORMAT_AUTO, &x, &r);
    assert_int_equal(r.format, TD_FORMAT_CSV);
    assert_int_equal(x.count, 2);
    assert_pair(&x, 0, 5, 6, 1.0f);
    assert_pair(&x, 1, 7, 8, 1.0f);
    td_interactions_free(&x);

    read_ok("5,6,0.25\n7,8,-1e-1\n", TD_FORMAT_CSV, &x, &r);
    assert_int_equal(r.format, TD_FORMAT_CSV);
    assert_pair(&x, 1, 7, 8, -0.1f);
    td_interactions_free(&x);

    read_ok("u\ti\tw\n5\t6\t2\n7\t8\t3.5\n", TD_FORMAT_AUTO, &x, &r);
    assert_int_equal(r.format, TD_FORMAT_TSV);
    assert_int_equal(x.count, 2);
    assert_pair(&x, 1, 7, 8, 3.5f);
    td_interactions_free(&x);

    read_ok("5\t6\n", TD_FORMAT_TSV, &x, &r);
    assert_int_equal(r.format, TD_FORMAT_TSV);
    assert_pair(&x, 0, 5, 6, 1.0f);
    td_interactions_free(&x);

    /* A forced format that does not fit the file: a clear line error. */
    td_read_options o = {.format = TD_FORMAT_TSV};
    assert_non_null(strstr(read_fails("5,6\n", &o), "t.csv:1: expected 2 or 3 fields, found 1"));
}

static void test_header_only_at_top(void **state)
{
    (void)state;
    td_read_options o = {0};
    const char *m = read_fails("user,item\n1,2\nuser,item\n", &o);
    assert_non_null(strstr(m, "t.csv:3: user id is not a number"));
    /* Only a header: no interactions. */
    m = read_fails("userId,movieId,rating,timestamp\n", &o);
    assert_non_null(strstr(m, "t.csv: no interactions"));
}

static void test_crlf_and_blank_lines(void **state)
{
    (void)state;
    td_interactions x;
    td_read_report r;
    read_ok("\xEF\xBB\xBFuserId,movieId,rating,timestamp\r\n1,2,3.5,10\r\n\r\n3,4,4.5,11\r\n", TD_FORMAT_AUTO, &x, &r);
    assert_int_equal(r.format, TD_FORMAT_MOVIELENS_CSV);
    assert_int_equal(x.count, 2);
    assert_int_equal(r.lines, 2);
    assert_pair(&x, 1, 3, 4, 4.5f);
    td_interactions_free(&x);
    /* No final line end. */
    read_ok("1\t2\t3\t4", TD_FORMAT_AUTO, &x, &r);
    assert_int_equal(x.count, 1);
    td_interactions_free(&x);
}

static void test_malformed_lines(void **state)
{
    (void)state;
    td_read_options o = {0};
    const char *head = "userId,movieId,rating,timestamp\n1,2,3,4\n";
    static const struct {
        const char *line, *what;
    } cases[] = {
        {"1,2,3", "t.csv:3: expected 4 fields, found 3 (\"1,2,3\")"},
        {"1,2,3,4,5", "expected 4 fields, found 5"},
        {"x,2,3,4", "t.csv:3: user id is not a number (\"x,2,3,4\")"},
        {"1,2.5,3,4", "item id is not an integer"},
        {"1,2,abc,4", "rating is not a number"},
        {"1,2,nan,4", "rating is NaN"},
        {"1,2,-inf,4", "rating is infinite"},
        {"1,2,1e39,4", "rating is out of the float range"},
        {"1,2,3x,4", "unexpected 'x' after the rating"},
        {"1,2,3,4 garbage", "unexpected 'g' after the timestamp"},
        {"9223372036854775808,2,3,4", "user id is out of the int64 range"},
        {"1,-9223372036854775809,3,4", "item id is out of the int64 range"},
        {"1,,3,4", "item id is not a number"},
        {"1,2,3,1e", "timestamp has a bad exponent"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; ++c) {
        char text[256];
        snprintf(text, sizeof text, "%s%s\n5,6,7,8\n", head, cases[c].line);
        const char *m = read_fails(text, &o);
        if (!strstr(m, cases[c].what))
            fail_msg("line \"%s\": \"%s\" lacks \"%s\"", cases[c].line, m, cases[c].what);
        assert_non_null(strstr(m, "t.csv:3: "));
    }
}

static void test_empty_and_undetectable(void **state)
{
    (void)state;
    td_read_options o = {0};
    assert_string_equal(read_fails("", &o), "t.csv: no interactions (the file is empty)");
    assert_non_null(strstr(read_fails("\n \r\n\n", &o), "t.csv: no interactions"));
    assert_non_null(strstr(read_fails("1 2 3\n", &o), "t.csv:1: cannot detect the format"));
    /* A file on disk: missing, empty, and read. */
    char path[] = "/tmp/test-train-data-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    td_interactions x;
    assert_int_equal(td_read_file(path, NULL, &x, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "no interactions"));
    assert_int_equal(write(fd, "1,2\n3,4\n", 8), 8);
    close(fd);
    assert_int_equal(td_read_file(path, NULL, &x, NULL, err, sizeof err), 0);
    assert_int_equal(x.count, 2);
    assert_pair(&x, 1, 3, 4, 1.0f);
    td_interactions_free(&x);
    unlink(path);
    assert_int_equal(td_read_file(path, NULL, &x, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open"));
}

static void test_big_ids(void **state)
{
    (void)state;
    td_interactions x;
    td_read_report r;
    read_ok("9223372036854775807,-9223372036854775808\n-5,4294967296\n9223372036854775807,1\n", TD_FORMAT_AUTO, &x, &r);
    assert_true(x.users[0] == INT64_MAX);
    assert_true(x.items[0] == INT64_MIN);
    assert_true(x.items[1] == 4294967296ll);
    td_dataset d;
    assert_int_equal(td_build(&x, NULL, 0, 1, &d, err, sizeof err), 0);
    assert_int_equal(d.num_users, 2);
    assert_int_equal(d.num_items, 3);
    assert_true(d.user_ids[0] == INT64_MAX && d.user_ids[1] == -5);
    assert_true(d.item_ids[1] == 4294967296ll);
    assert_int_equal(td_user_index(&d, INT64_MAX), 0);
    assert_int_equal(td_user_index(&d, -5), 1);
    assert_int_equal(td_user_index(&d, 12), -1);
    td_dataset_free(&d);
    td_interactions_free(&x);
}

static void test_skip_bad_lines(void **state)
{
    (void)state;
    td_read_options o = {.skip_bad_lines = 1};
    td_interactions x;
    td_read_report r;
    const char *text = "1,2\nbad\n3,4\n5,6,7,8,9\n7,8\n";
    assert_int_equal(td_read_buffer("t.csv", text, strlen(text), &o, &x, &r, err, sizeof err), 0);
    assert_int_equal(x.count, 3);
    assert_int_equal(r.lines, 5);
    assert_int_equal(r.bad_lines, 2);
    assert_int_equal(r.first_bad, 2);
    assert_non_null(strstr(r.first_bad_message, "expected 2 or 3 fields, found 1"));
    td_interactions_free(&x);
    /* Every line bad: no interactions, with the counts. */
    o.format = TD_FORMAT_CSV;
    const char *m = read_fails("1;2\nx\n", &o);
    assert_non_null(strstr(m, "t.csv: no interactions"));
    /* Without the option the first file fails at line 2. */
    o.skip_bad_lines = 0;
    o.format = TD_FORMAT_AUTO;
    assert_non_null(strstr(read_fails(text, &o), "t.csv:2: "));
}

static void test_min_rating(void **state)
{
    (void)state;
    td_read_options o = {.use_min_rating = 1, .min_rating = 4.0f};
    td_interactions x;
    td_read_report r;
    const char *text = "userId,movieId,rating,timestamp\n1,1,3.5,0\n1,2,4.0,0\n2,3,5,0\n2,4,0.5,0\n";
    assert_int_equal(td_read_buffer("t.csv", text, strlen(text), &o, &x, &r, err, sizeof err), 0);
    assert_int_equal(x.count, 2);
    assert_int_equal(r.below_min, 2);
    assert_pair(&x, 0, 1, 2, 4.0f);
    assert_pair(&x, 1, 2, 3, 5.0f);
    td_interactions_free(&x);
    /* A format without ratings has weight 1. */
    o.min_rating = 1.0f;
    assert_int_equal(td_read_buffer("t.csv", "1,2\n", 4, &o, &x, &r, err, sizeof err), 0);
    td_interactions_free(&x);
    o.min_rating = 1.5f;
    assert_non_null(strstr(read_fails("1,2\n", &o), "t.csv: no interactions"));
}

/* allow_empty (a part of several): a file with no interaction left is read as none, not an error. */
static void test_allow_empty(void **state)
{
    (void)state;
    td_read_options o = {.allow_empty = 1, .use_min_rating = 1, .min_rating = 2.0f};
    const char *texts[] = {"", "\n\n", "user,item\n", "1,2\n3,4,1.5\n"};
    for (size_t k = 0; k < sizeof texts / sizeof *texts; ++k) {
        td_interactions x;
        td_read_report r;
        assert_int_equal(td_read_buffer("t.csv", texts[k], strlen(texts[k]), &o, &x, &r, err, sizeof err), 0);
        assert_int_equal(x.count, 0);
        assert_null(x.users);
        assert_null(x.items);
        assert_null(x.ratings);
        assert_int_equal(r.below_min, k == 3 ? 2 : 0);
    }
    /* A malformed line is still an error. */
    assert_non_null(strstr(read_fails("1,2\nx\n", &o), "t.csv:2: "));
}

static void test_concat(void **state)
{
    (void)state;
    td_interactions pieces[4], whole, out;
    memset(pieces, 0, sizeof pieces);
    read_ok("1,10,2\n2,20\n", TD_FORMAT_CSV, &pieces[0], NULL);
    read_ok("user\titem\n3\t30\t0.5\n", TD_FORMAT_AUTO, &pieces[2], NULL);
    read_ok("1,11\n", TD_FORMAT_AUTO, &pieces[3], NULL);
    read_ok("1,10,2\n2,20\n3,30,0.5\n1,11\n", TD_FORMAT_CSV, &whole, NULL);
    memset(&out, 0xff, sizeof out); /* overwritten first */
    assert_int_equal(td_interactions_concat(pieces, 4, &out), 0);
    assert_int_equal(out.count, whole.count);
    for (size_t k = 0; k < whole.count; ++k)
        assert_pair(&out, k, whole.users[k], whole.items[k], whole.ratings[k]);
    td_interactions_free(&out);
    /* Nothing to concatenate: -1 and *out empty. */
    memset(&out, 0xff, sizeof out);
    assert_int_equal(td_interactions_concat(pieces + 1, 1, &out), -1);
    assert_int_equal(out.count, 0);
    assert_null(out.users);
    assert_int_equal(td_interactions_concat(pieces, 0, &out), -1);
    for (size_t k = 0; k < 4; ++k)
        td_interactions_free(&pieces[k]);
    td_interactions_free(&whole);
}

/* Checks the dataset's documented shape: sorted by (user, item), unique, disjoint, in range. */
static void check_dataset(const td_dataset *d)
{
    for (size_t k = 0; k < d->train_count; ++k) {
        assert_true(d->train_users[k] >= 0 && (uint32_t)d->train_users[k] < d->num_users);
        assert_true(d->train_items[k] >= 0 && (uint32_t)d->train_items[k] < d->num_items);
        if (k)
            assert_true(d->train_users[k - 1] < d->train_users[k] ||
                        (d->train_users[k - 1] == d->train_users[k] && d->train_items[k - 1] < d->train_items[k]));
    }
    size_t a = 0;
    for (size_t k = 0; k < d->test_count; ++k) {
        if (k)
            assert_true(d->test_users[k - 1] < d->test_users[k] ||
                        (d->test_users[k - 1] == d->test_users[k] && d->test_items[k - 1] < d->test_items[k]));
        while (a < d->train_count && (d->train_users[a] < d->test_users[k] ||
                                      (d->train_users[a] == d->test_users[k] && d->train_items[a] < d->test_items[k])))
            ++a;
        assert_false(a < d->train_count && d->train_users[a] == d->test_users[k] &&
                     d->train_items[a] == d->test_items[k]);
    }
}

static int same_split(const td_dataset *a, const td_dataset *b)
{
    return a->test_count == b->test_count &&
           !memcmp(a->test_users, b->test_users, a->test_count * sizeof *a->test_users) &&
           !memcmp(a->test_items, b->test_items, a->test_count * sizeof *a->test_items);
}

/* Interactions from (user, item) pairs. */
static td_interactions from_pairs(const int64_t *pairs, size_t n)
{
    td_interactions x = {n, malloc(n * sizeof(int64_t)), malloc(n * sizeof(int64_t)), malloc(n * sizeof(float))};
    assert_non_null(x.ratings);
    for (size_t k = 0; k < n; ++k) {
        x.users[k] = pairs[2 * k];
        x.items[k] = pairs[2 * k + 1];
        x.ratings[k] = 1;
    }
    return x;
}

static void test_split(void **state)
{
    (void)state;
    td_interactions x;
    assert_int_equal(td_synthetic(200, 300, 8000, 5, &x), 0);
    /* Every pair twice (the copy in reverse order): merged and counted. */
    td_interactions two = {2 * x.count, malloc(2 * x.count * sizeof(int64_t)), malloc(2 * x.count * sizeof(int64_t)),
                           malloc(2 * x.count * sizeof(float))};
    assert_non_null(two.ratings);
    for (size_t k = 0; k < x.count; ++k) {
        two.users[k] = two.users[2 * x.count - 1 - k] = x.users[k];
        two.items[k] = two.items[2 * x.count - 1 - k] = x.items[k];
        two.ratings[k] = two.ratings[2 * x.count - 1 - k] = 1;
    }
    td_dataset a, b, c, none;
    assert_int_equal(td_build(&two, NULL, 0.2, 11, &a, err, sizeof err), 0);
    assert_int_equal(td_build(&two, NULL, 0.2, 11, &b, err, sizeof err), 0);
    assert_int_equal(td_build(&x, NULL, 0.2, 12, &c, err, sizeof err), 0);
    assert_int_equal(td_build(&x, NULL, 0, 12, &none, err, sizeof err), 0);
    assert_int_equal(a.train_duplicates, x.count);
    assert_int_equal(c.train_duplicates, 0);
    assert_int_equal(none.train_count, x.count);
    assert_int_equal(none.test_count, 0);
    /* Sizes: floor(0.2 * n_u) per user, from the unsplit counts. */
    size_t want = 0;
    for (size_t k = 0, j; k < none.train_count; k = j) {
        for (j = k; j < none.train_count && none.train_users[j] == none.train_users[k]; ++j)
            ;
        want += (size_t)((j - k) / 5);
    }
    assert_int_equal(a.test_count + a.test_dropped, want);
    assert_int_equal(c.test_count + c.test_dropped, want);
    assert_int_equal(a.train_count + a.test_count + a.test_dropped, x.count);
    check_dataset(&a);
    check_dataset(&c);
    /* Same seed, same split; another seed, another split. */
    assert_true(same_split(&a, &b));
    assert_false(same_split(&a, &c));
    assert_int_equal(a.num_users, 200);
    td_dataset_free(&a);
    td_dataset_free(&b);
    td_dataset_free(&c);
    td_dataset_free(&none);
    td_interactions_free(&two);
    td_interactions_free(&x);

    /* An item whose only pair is held out is not in the training data: its
     * test pair is left out and counted. Users 1..4 share item 100; each has
     * one item of its own (200 + u); a hold-out of half of two takes one of
     * the two, and over the seeds both kinds of choice happen. */
    int64_t own[] = {1, 100, 1, 201, 2, 100, 2, 202, 3, 100, 3, 203, 4, 100, 4, 204};
    x = from_pairs(own, 8);
    size_t dropped_total = 0;
    for (uint64_t seed = 1; seed <= 8; ++seed) {
        assert_int_equal(td_build(&x, NULL, 0.5, seed, &a, err, sizeof err), 0);
        check_dataset(&a);
        assert_int_equal(a.train_count + a.test_count + a.test_dropped, 8);
        int trained[8] = {0};
        for (size_t k = 0; k < a.train_count; ++k)
            trained[a.train_items[k]] = 1;
        for (size_t k = 0; k < a.test_count; ++k)
            assert_true(trained[a.test_items[k]]);
        dropped_total += a.test_dropped;
        td_dataset_free(&a);
    }
    assert_true(dropped_total > 0);
    td_interactions_free(&x);

    /* Bad fractions and no interactions are refused. */
    int64_t one[] = {1, 2};
    x = from_pairs(one, 1);
    assert_int_equal(td_build(&x, NULL, 1.0, 1, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "test fraction"));
    assert_int_equal(td_build(&x, NULL, NAN, 1, &a, err, sizeof err), -1);
    td_interactions_free(&x);
    td_interactions empty = {0};
    assert_int_equal(td_build(&empty, NULL, 0, 1, &a, err, sizeof err), -1);
    assert_string_equal(err, "no training interactions");
}

static void test_test_file(void **state)
{
    (void)state;
    /* MovieLens 100k style: ua.base / ua.test. */
    const char *base = "10\t100\t5\t0\n10\t200\t3\t0\n20\t100\t4\t0\n30\t300\t1\t0\n10\t100\t2\t0\n";
    const char *test = "20\t200\t4\t0\n"  /* kept */
                       "20\t200\t5\t0\n"  /* repeated */
                       "10\t100\t1\t0\n"  /* a training pair */
                       "40\t100\t1\t0\n"  /* unknown user */
                       "30\t999\t1\t0\n"  /* unknown item */
                       "30\t100\t1\t0\n"; /* kept */
    td_interactions tr, te;
    td_read_report r;
    read_ok(base, TD_FORMAT_AUTO, &tr, &r);
    read_ok(test, TD_FORMAT_AUTO, &te, &r);
    td_dataset d;
    assert_int_equal(td_build(&tr, &te, 0.5 /* ignored */, 1, &d, err, sizeof err), 0);
    assert_int_equal(d.num_users, 3);
    assert_int_equal(d.num_items, 3);
    assert_int_equal(d.train_count, 4);
    assert_int_equal(d.train_duplicates, 1);
    assert_int_equal(d.test_dropped, 2);
    assert_int_equal(d.test_in_train, 1);
    assert_int_equal(d.test_duplicates, 1);
    assert_int_equal(d.test_count, 2);
    check_dataset(&d);
    /* Dense ids by first appearance: users 10, 20, 30; items 100, 200, 300. */
    assert_true(d.user_ids[1] == 20 && d.item_ids[2] == 300);
    assert_int_equal(d.test_users[0], 1); /* (20, 200) */
    assert_int_equal(d.test_items[0], 1);
    assert_int_equal(d.test_users[1], 2); /* (30, 100) */
    assert_int_equal(d.test_items[1], 0);
    td_dataset_free(&d);
    td_interactions_free(&tr);
    td_interactions_free(&te);
}

static void test_cold_items(void **state)
{
    (void)state;
    td_interactions x;
    assert_int_equal(td_synthetic(200, 300, 8000, 5, &x), 0);
    td_dataset a, b, c;
    assert_int_equal(td_build_cold(&x, NULL, 0.2, 0.25, 11, &a, err, sizeof err), 0);
    assert_int_equal(td_build_cold(&x, NULL, 0.2, 0.25, 11, &b, err, sizeof err), 0);
    assert_int_equal(td_build_cold(&x, NULL, 0.2, 0.25, 12, &c, err, sizeof err), 0);
    check_dataset(&a);
    /* floor(0.25 * items) cold items after the warm ones; the same seed, the same ones. */
    size_t items = 0;
    for (size_t k = 0; k < x.count; ++k) {
        size_t j = 0;
        while (j < k && x.items[j] != x.items[k])
            ++j;
        items += j == k;
    }
    assert_int_equal(a.num_cold_items, items / 4);
    assert_int_equal(a.cold_first + a.num_cold_items, a.num_items);
    assert_int_equal(a.num_items, items);
    assert_memory_equal(a.item_ids, b.item_ids, a.num_items * sizeof *a.item_ids);
    assert_true(a.cold_count == b.cold_count && !memcmp(a.cold_items, b.cold_items, a.cold_count * sizeof(int32_t)));
    assert_true(memcmp(a.item_ids + a.cold_first, c.item_ids + c.cold_first, a.num_cold_items * sizeof(int64_t)));
    /* No training or warm test pair has a cold item; every cold pair has one, sorted, unique. */
    for (size_t k = 0; k < a.train_count; ++k)
        assert_true((uint32_t)a.train_items[k] < a.cold_first);
    for (size_t k = 0; k < a.test_count; ++k)
        assert_true((uint32_t)a.test_items[k] < a.cold_first);
    for (size_t k = 0; k < a.cold_count; ++k) {
        assert_true((uint32_t)a.cold_items[k] >= a.cold_first && (uint32_t)a.cold_items[k] < a.num_items);
        assert_true(a.cold_users[k] >= 0 && (uint32_t)a.cold_users[k] < a.num_users);
        if (k)
            assert_true(a.cold_users[k - 1] < a.cold_users[k] ||
                        (a.cold_users[k - 1] == a.cold_users[k] && a.cold_items[k - 1] < a.cold_items[k]));
    }
    /* Every pair is somewhere: train, warm test, dropped, cold, cold dropped. */
    assert_int_equal(a.train_count + a.test_count + a.test_dropped + a.cold_count + a.cold_dropped, x.count);
    assert_true(a.cold_count > 0);
    td_dataset_free(&a);
    td_dataset_free(&b);
    td_dataset_free(&c);
    td_interactions_free(&x);

    /* A test file: its pairs of cold items are cold pairs too; a user with only cold pairs is dropped. */
    int64_t train_pairs[] = {1, 10, 1, 20, 2, 10, 2, 30, 3, 40};
    int64_t test_pairs[] = {1, 30, 2, 20, 9, 10};
    td_interactions tr = from_pairs(train_pairs, 5), te = from_pairs(test_pairs, 3);
    /* 4 items, a quarter cold: one; over the seeds, item 40 (user 3's only item) is chosen at least once. */
    int saw_dropped = 0;
    for (uint64_t seed = 1; seed <= 16; ++seed) {
        assert_int_equal(td_build_cold(&tr, &te, 0, 0.25, seed, &a, err, sizeof err), 0);
        check_dataset(&a);
        assert_int_equal(a.num_cold_items, 1);
        const int64_t cold = a.item_ids[a.cold_first];
        size_t want = 0;
        for (int k = 0; k < 5; ++k)
            want += train_pairs[2 * k + 1] == cold;
        for (int k = 0; k < 3; ++k)
            want += test_pairs[2 * k + 1] == cold;
        assert_int_equal(a.cold_count + a.cold_dropped, want);
        saw_dropped |= cold == 40 && a.cold_dropped == 1 && a.cold_count == 0;
        td_dataset_free(&a);
    }
    assert_true(saw_dropped);
    /* Bad fractions: none held out, none left, out of range. */
    assert_int_equal(td_build_cold(&tr, NULL, 0, 0.1, 1, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "holds out no item"));
    assert_int_equal(td_build_cold(&tr, NULL, 0, 0.9999999999, 1, &a, err, sizeof err), -1); /* rounds to all 4 */
    assert_non_null(strstr(err, "leaves no warm item"));
    assert_int_equal(td_build_cold(&tr, NULL, 0, 1, 1, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "cold item fraction"));
    td_interactions_free(&tr);
    td_interactions_free(&te);
}

static void test_train_weights(void **state)
{
    (void)state;
    /* Repeated pairs sum their weights; a held-out pair has none; the weights follow the sorted pairs. */
    const char *text = "u,i,w\n5,50,2\n5,60,0.5\n6,50,1\n5,50,3\n6,70,4\n";
    td_interactions x;
    td_read_report r;
    read_ok(text, TD_FORMAT_AUTO, &x, &r);
    td_dataset d;
    assert_int_equal(td_build(&x, NULL, 0, 1, &d, err, sizeof err), 0);
    assert_null(d.train_weights);
    assert_int_equal(td_train_weights(&d, &x, err, sizeof err), 0);
    assert_int_equal(d.train_count, 4);
    const float want[] = {5, 0.5f, 1, 4}; /* (5,50) (5,60) (6,50) (6,70) */
    for (int k = 0; k < 4; ++k)
        assert_float_equal(d.train_weights[k], want[k], 1e-6);
    td_dataset_free(&d);
    td_interactions_free(&x);
    /* A negative weight is refused, naming the pair. */
    read_ok("5,50,1\n6,60,-1\n", TD_FORMAT_AUTO, &x, &r);
    assert_int_equal(td_build(&x, NULL, 0, 1, &d, err, sizeof err), 0);
    assert_int_equal(td_train_weights(&d, &x, err, sizeof err), -1);
    assert_non_null(strstr(err, "user 6, item 60 has the weight -1"));
    assert_null(d.train_weights);
    td_dataset_free(&d);
    td_interactions_free(&x);
}

static void test_synthetic(void **state)
{
    (void)state;
    td_interactions a, b, c;
    assert_int_equal(td_synthetic(1000, 2000, 50000, 42, &a), 0);
    assert_int_equal(td_synthetic(1000, 2000, 50000, 42, &b), 0);
    assert_int_equal(td_synthetic(1000, 2000, 50000, 43, &c), 0);
    assert_int_equal(a.count, b.count);
    assert_memory_equal(a.users, b.users, a.count * sizeof *a.users);
    assert_memory_equal(a.items, b.items, a.count * sizeof *a.items);
    assert_true(a.count != c.count || memcmp(a.items, c.items, a.count * sizeof *a.items));
    /* About the size asked; every user at least 2; no duplicates; a long tail of item popularity. */
    assert_true(a.count >= 45000 && a.count <= 56000);
    size_t *per_user = calloc(1000, sizeof *per_user), *per_item = calloc(2000, sizeof *per_item);
    assert_non_null(per_item);
    for (size_t k = 0; k < a.count; ++k) {
        assert_true(a.users[k] >= 0 && a.users[k] < 1000);
        assert_true(a.items[k] >= 0 && a.items[k] < 2000);
        assert_true(a.ratings[k] == 1.0f);
        ++per_user[a.users[k]];
        ++per_item[a.items[k]];
    }
    size_t min_u = SIZE_MAX, max_u = 0, max_i = 0, median_i;
    for (int u = 0; u < 1000; ++u) {
        min_u = per_user[u] < min_u ? per_user[u] : min_u;
        max_u = per_user[u] > max_u ? per_user[u] : max_u;
    }
    assert_true(min_u >= 2);
    assert_true(max_u > 4 * 50); /* varied activity */
    size_t below = 0;
    for (int i = 0; i < 2000; ++i) {
        max_i = per_item[i] > max_i ? per_item[i] : max_i;
        below += per_item[i] < 25;
    }
    median_i = below >= 1000 ? 1 : 0;
    assert_true(max_i > 10 * 25); /* a popular head ... */
    assert_true(median_i);        /* ... and most items below the mean (25): a long tail */
    td_dataset d;
    assert_int_equal(td_build(&a, NULL, 0, 1, &d, err, sizeof err), 0);
    assert_int_equal(d.train_duplicates, 0);
    td_dataset_free(&d);
    free(per_user);
    free(per_item);
    td_interactions_free(&a);
    td_interactions_free(&b);
    td_interactions_free(&c);
    td_interactions empty;
    assert_int_equal(td_synthetic(0, 10, 10, 1, &empty), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_names),
        cmocka_unit_test(test_movielens_csv),
        cmocka_unit_test(test_movielens_tsv),
        cmocka_unit_test(test_plain_csv_tsv),
        cmocka_unit_test(test_header_only_at_top),
        cmocka_unit_test(test_crlf_and_blank_lines),
        cmocka_unit_test(test_malformed_lines),
        cmocka_unit_test(test_empty_and_undetectable),
        cmocka_unit_test(test_big_ids),
        cmocka_unit_test(test_skip_bad_lines),
        cmocka_unit_test(test_min_rating),
        cmocka_unit_test(test_allow_empty),
        cmocka_unit_test(test_concat),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_test_file),
        cmocka_unit_test(test_cold_items),
        cmocka_unit_test(test_train_weights),
        cmocka_unit_test(test_synthetic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
