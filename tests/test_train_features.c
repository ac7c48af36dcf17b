/*
 * warploss-train's feature files (tools/train_features.h): each format
 * (detected and given), headers, quoting, CRLF and a byte order mark,
 * latin-1 titles, errors with the file and line, the side a format
 * describes; the dense map growing by the files' ids; and the matrix:
 * identity first, the union of the files' features, repeats summed, rows
 * sorted and normalised, empty rows, titles and names. No OpenCL.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "train_features.h"

static char err[512];

static void read_ok(const char *text, tf_format format, tf_side side, tf_file *f)
{
    if (tf_read_buffer("f.csv", text, strlen(text), format, side, f, err, sizeof err))
        fail_msg("%s", err);
}

/* Reads text (size bytes: it may hold a NUL); asserts failure and returns the message. */
static const char *read_fails_n(const char *text, size_t size, tf_format format, tf_side side)
{
    tf_file f;
    err[0] = 0;
    assert_int_equal(tf_read_buffer("f.csv", text, size, format, side, &f, err, sizeof err), -1);
    assert_int_equal(f.rows, 0);
    assert_null(f.ids);
    assert_null(f.names);
    return err;
}

static const char *read_fails(const char *text, tf_format format)
{
    return read_fails_n(text, strlen(text), format, TF_ITEMS);
}

/* The weight of the file's entry for (id, name), summed over repeats; -1 if none. */
static double entry(const tf_file *f, int64_t id, const char *name)
{
    double w = -1;
    for (size_t j = 0; j < f->count; ++j)
        if (f->ids[f->entry_row[j]] == id && !strcmp(f->names[f->entry_feature[j]], name))
            w = (w < 0 ? 0 : w) + f->entry_weight[j];
    return w;
}

static size_t row_of(const tf_file *f, int64_t id)
{
    for (size_t r = 0; r < f->rows; ++r)
        if (f->ids[r] == id)
            return r;
    fail_msg("id %lld is not a row", (long long)id);
    return 0;
}

static void test_format_names(void **state)
{
    (void)state;
    for (int f = TF_FORMAT_MOVIES; f <= TF_FORMAT_TSV; ++f) {
        tf_format back = TF_FORMAT_AUTO;
        assert_int_equal(tf_format_parse(tf_format_name((tf_format)f), &back), 0);
        assert_int_equal(back, f);
    }
    tf_format g = TF_FORMAT_CSV;
    assert_int_equal(tf_format_parse("auto", &g), 0);
    assert_int_equal(g, TF_FORMAT_AUTO);
    assert_int_equal(tf_format_parse("xml", &g), -1);
    assert_null(tf_format_name(TF_FORMAT_AUTO));
    assert_string_equal(tf_format_name(TF_FORMAT_UITEM), "movielens-item");
}

static void test_movies(void **state)
{
    (void)state;
    const char *text = "movieId,title,genres\n"
                       "1,Toy Story (1995),Adventure|Animation|Children\n"
                       "11,\"American President, The (1995)\",Comedy|Drama|Romance\n"
                       "7789,\"11'09\"\"01 - September 11 (2002)\",Drama\n"
                       "99,Nothing (2000),(no genres listed)\n"
                       "5,\"Quoted genres\",\"Comedy| Drama ||\"\n";
    for (int forced = 0; forced < 2; ++forced) {
        tf_file f;
        read_ok(text, forced ? TF_FORMAT_MOVIES : TF_FORMAT_AUTO, TF_ITEMS, &f);
        assert_int_equal(f.format, TF_FORMAT_MOVIES);
        assert_int_equal(f.lines, 5);
        assert_int_equal(f.rows, 5);
        assert_int_equal(f.num_features, 6); /* Adventure Animation Children Comedy Drama Romance */
        assert_int_equal(f.count, 3 + 3 + 1 + 2);
        assert_string_equal(f.names[0], "genre:Adventure");
        assert_true(entry(&f, 11, "genre:Romance") == 1);
        assert_true(entry(&f, 5, "genre:Drama") == 1);
        assert_true(entry(&f, 99, "genre:Drama") < 0);
        assert_non_null(f.titles);
        assert_string_equal(f.titles[row_of(&f, 11)], "American President, The (1995)");
        assert_string_equal(f.titles[row_of(&f, 7789)], "11'09\"01 - September 11 (2002)");
        assert_string_equal(f.titles[row_of(&f, 99)], "Nothing (2000)");
        tf_file_free(&f);
    }
    /* Forced, without the header line; with CRLF and a byte order mark. */
    tf_file f;
    read_ok("\xEF\xBB\xBFmovieId,title,genres\r\n1,A (1),Comedy\r\n\r\n2,B (2),Drama\r\n", TF_FORMAT_AUTO, TF_ITEMS,
            &f);
    assert_int_equal(f.format, TF_FORMAT_MOVIES);
    assert_int_equal(f.rows, 2);
    assert_string_equal(f.titles[1], "B (2)");
    assert_string_equal(f.names[1], "genre:Drama");
    tf_file_free(&f);
    read_ok("1,A (1),Comedy\n", TF_FORMAT_MOVIES, TF_ITEMS, &f);
    assert_int_equal(f.rows, 1);
    assert_int_equal(f.count, 1);
    tf_file_free(&f);
}

/* A u.item line: id|title|release|video|url|19 flags, the flags given as a string of 19 digits. */
static void uitem_line(char *out, size_t size, int id, const char *title, const char *flags)
{
    int n = snprintf(out, size, "%d|%s|01-Jan-1995||http://example.org/x", id, title);
    for (int g = 0; g < 19; ++g)
        n += snprintf(out + n, size - (size_t)n, "|%c", flags[g]);
    snprintf(out + n, size - (size_t)n, "\n");
}

static void test_uitem(void **state)
{
    (void)state;
    char text[1024], line[256];
    uitem_line(text, sizeof text, 1, "Toy Story (1995)", "0011100000000000000");
    uitem_line(line, sizeof line, 2, "Cit\xe9 des enfants perdus, La (1995)", "0000000010000000000");
    strcat(text, line);
    uitem_line(line, sizeof line, 267, "unknown", "1000000000000000000");
    strcat(text, line);
    for (int forced = 0; forced < 2; ++forced) {
        tf_file f;
        read_ok(text, forced ? TF_FORMAT_UITEM : TF_FORMAT_AUTO, TF_ITEMS, &f);
        assert_int_equal(f.format, TF_FORMAT_UITEM);
        assert_int_equal(f.rows, 3);
        assert_true(entry(&f, 1, "genre:Animation") == 1 && entry(&f, 1, "genre:Children's") == 1);
        assert_true(entry(&f, 1, "genre:Comedy") < 0);
        assert_true(entry(&f, 2, "genre:Drama") == 1);
        assert_true(entry(&f, 267, "genre:unknown") == 1);
        assert_int_equal(f.count, 5);
        /* latin-1 passes through as bytes */
        assert_string_equal(f.titles[1], "Cit\xe9 des enfants perdus, La (1995)");
        tf_file_free(&f);
    }
    /* A flag that is not 0 or 1, named by its genre, at its line. */
    uitem_line(line, sizeof line, 3, "X", "0000020000000000000");
    strcat(text, line);
    const char *m = read_fails(text, TF_FORMAT_AUTO);
    assert_non_null(strstr(m, "f.csv:4: the genre flag of Comedy (field 11) is not 0 or 1"));
    /* Too few fields. */
    m = read_fails("1|A|x|y|z|0|0\n", TF_FORMAT_UITEM);
    assert_non_null(strstr(m, "f.csv:1: expected 24 fields"));
}

static void test_tags(void **state)
{
    (void)state;
    const char *text = "userId,movieId,tag,timestamp\n"
                       "2,60756,funny,1445714994\n"
                       "3,60756,Funny ,1445714995\n"
                       "2,60756,will ferrell,1445714992\n"
                       "567,4552,\"\"\"artsy\"\"\",1525285878\n"
                       "9,4552,\"a, b\",1\n"
                       "9,77,,1\n";
    tf_file f;
    read_ok(text, TF_FORMAT_AUTO, TF_ITEMS, &f);
    assert_int_equal(f.format, TF_FORMAT_TAGS);
    assert_int_equal(f.lines, 6);
    assert_int_equal(f.empty_tags, 1);
    assert_int_equal(f.rows, 3); /* 60756, 4552, 77 (an empty tag still names the movie) */
    assert_null(f.titles);
    assert_true(entry(&f, 60756, "tag:funny") == 2); /* applied twice, case folded, trimmed */
    assert_true(entry(&f, 4552, "tag:\"artsy\"") == 1);
    assert_true(entry(&f, 4552, "tag:a, b") == 1);
    assert_int_equal(f.num_features, 4);
    tf_file_free(&f);
    /* The users' side: the tags each user applied. */
    read_ok(text, TF_FORMAT_TAGS, TF_USERS, &f);
    assert_int_equal(f.rows, 4);
    assert_true(entry(&f, 2, "tag:funny") == 1 && entry(&f, 2, "tag:will ferrell") == 1);
    assert_true(entry(&f, 9, "tag:a, b") == 1);
    tf_file_free(&f);
    const char *m = read_fails("userId,movieId,tag,timestamp\n1,2,x,1\n1,2,y,soon\n", TF_FORMAT_AUTO);
    assert_non_null(strstr(m, "f.csv:3: the timestamp is not a number (\"1,2,y,soon\")"));
    m = read_fails("userId,movieId,tag,timestamp\n1,x2,x,1\n", TF_FORMAT_AUTO);
    assert_non_null(strstr(m, "f.csv:2: the movieId is not a number"));
}

static void test_plain(void **state)
{
    (void)state;
    tf_file f;
    read_ok("id,feature,weight\n5,director:Nolan,2.5\n5,\"actor:Caine, Michael\"\n6,director:Nolan\n", TF_FORMAT_AUTO,
            TF_ITEMS, &f);
    assert_int_equal(f.format, TF_FORMAT_CSV);
    assert_int_equal(f.rows, 2);
    assert_true(entry(&f, 5, "director:Nolan") == 2.5);
    assert_true(entry(&f, 5, "actor:Caine, Michael") == 1);
    assert_true(entry(&f, 6, "director:Nolan") == 1);
    assert_null(f.titles);
    tf_file_free(&f);
    /* TSV, no header, the side given; quotes are not special in a TSV. */
    read_ok("10\tcountry:FR\t0.5\n11\t\"q\"\n", TF_FORMAT_AUTO, TF_USERS, &f);
    assert_int_equal(f.format, TF_FORMAT_TSV);
    assert_int_equal(f.side, TF_USERS);
    assert_true(entry(&f, 10, "country:FR") == 0.5);
    assert_true(entry(&f, 11, "\"q\"") == 1);
    tf_file_free(&f);
    /* Forced csv on a one-field-per-line file is an error, not a guess. */
    const char *m = read_fails("5\n", TF_FORMAT_CSV);
    assert_non_null(strstr(m, "f.csv:1: expected 2 or 3 fields"));
    m = read_fails("id,feature\n5,a\n5,\n", TF_FORMAT_AUTO);
    assert_non_null(strstr(m, "f.csv:3: the feature name is empty"));
    m = read_fails("5,item:7\n", TF_FORMAT_AUTO);
    assert_non_null(strstr(m, "f.csv:1: the feature name starts with \"item:\""));
    m = read_fails("5,a,nan\n", TF_FORMAT_AUTO);
    assert_non_null(strstr(m, "f.csv:1: the weight is NaN"));
    m = read_fails("5,a,1e39\n", TF_FORMAT_AUTO);
    assert_non_null(strstr(m, "f.csv:1: the weight is out of the float range"));
    m = read_fails("5,a,1x\n", TF_FORMAT_AUTO);
    assert_non_null(strstr(m, "f.csv:1: the weight is not a number"));
    m = read_fails("5.5,a\n", TF_FORMAT_AUTO);
    assert_non_null(strstr(m, "f.csv:1: the id is not an integer"));
    m = read_fails("5,a\n99999999999999999999,b\n", TF_FORMAT_AUTO);
    assert_non_null(strstr(m, "f.csv:2: the id is out of the int64 range"));
}

static void test_errors(void **state)
{
    (void)state;
    const char *m = read_fails("", TF_FORMAT_AUTO);
    assert_string_equal(m, "f.csv: no features (the file is empty)");
    m = read_fails(" \n\n", TF_FORMAT_AUTO);
    assert_string_equal(m, "f.csv: no features (the file is empty)");
    m = read_fails("movieId,title,genres\n", TF_FORMAT_AUTO);
    assert_string_equal(m, "f.csv: no features (only a header line)");
    m = read_fails("\nhello world\n", TF_FORMAT_AUTO);
    assert_non_null(strstr(m, "f.csv:2: cannot detect the format"));
    /* Quoting errors and field counts, at their lines. */
    m = read_fails("movieId,title,genres\n1,A,Drama\n2,\"B (2000),Drama\n", TF_FORMAT_AUTO);
    assert_non_null(strstr(m, "f.csv:3: a quoted field has no closing quote on its line"));
    m = read_fails("movieId,title,genres\n2,\"B\" (2000),Drama\n", TF_FORMAT_AUTO);
    assert_non_null(strstr(m, "f.csv:2: text follows a quoted field's closing quote"));
    m = read_fails("movieId,title,genres\n2,Dr. Strangelove, or How I Learned,Comedy\n", TF_FORMAT_AUTO);
    assert_non_null(strstr(m, "f.csv:2: expected 3 fields (movieId,title,genres; a title with a comma must be quoted), "
                              "found 4"));
    /* A NUL byte. */
    m = read_fails_n("1,a\n2,b\0c\n", 10, TF_FORMAT_AUTO, TF_ITEMS);
    assert_non_null(strstr(m, "f.csv:2: the line has a NUL byte"));
    /* The side: movies and u.item describe items. */
    m = read_fails_n("movieId,title,genres\n1,A,B\n", 26, TF_FORMAT_AUTO, TF_USERS);
    assert_string_equal(m, "f.csv: a movielens-movies file describes items, not users");
    /* A message is one clean line: control bytes in the excerpt are '?'. */
    m = read_fails("5,a,\x01\x02\n", TF_FORMAT_AUTO);
    assert_non_null(strstr(m, "(\"5,a,??\")"));
    /* No name, no data: still a message. */
    tf_file f;
    assert_int_equal(tf_read_buffer(NULL, NULL, 0, TF_FORMAT_AUTO, TF_ITEMS, &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "no features"));
    assert_int_equal(tf_read_file("/nonexistent/x.csv", TF_FORMAT_AUTO, TF_ITEMS, &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/x.csv: cannot open"));
}

static void test_add_ids(void **state)
{
    (void)state;
    tf_file f[2];
    read_ok("5,a\n7,b\n9,a\n", TF_FORMAT_AUTO, TF_ITEMS, &f[0]);
    read_ok("11,c\n7,c\n5,d\n", TF_FORMAT_AUTO, TF_ITEMS, &f[1]);
    int64_t *ids = malloc(2 * sizeof *ids);
    assert_non_null(ids);
    ids[0] = 7;
    ids[1] = 3;
    uint32_t n = 2, added = 99;
    assert_int_equal(tf_add_ids(f, 2, &ids, &n, &added, err, sizeof err), 0);
    assert_int_equal(added, 3);
    assert_int_equal(n, 5);
    const int64_t want[] = {7, 3, 5, 9, 11}; /* the old ones in place, then the new in file order */
    for (int i = 0; i < 5; ++i)
        assert_true(ids[i] == want[i]);
    /* Again: nothing new. From nothing: every id. */
    assert_int_equal(tf_add_ids(f, 2, &ids, &n, &added, err, sizeof err), 0);
    assert_int_equal(added, 0);
    assert_int_equal(n, 5);
    free(ids);
    ids = NULL;
    n = 0;
    assert_int_equal(tf_add_ids(f, 2, &ids, &n, NULL, err, sizeof err), 0);
    assert_int_equal(n, 4);
    assert_true(ids[0] == 5 && ids[3] == 11);
    free(ids);
    /* Many ids (the table grows). */
    char *text = malloc(20 * 5000);
    assert_non_null(text);
    size_t len = 0;
    for (int i = 0; i < 5000; ++i)
        len += (size_t)sprintf(text + len, "%d,x\n", i * 7919);
    tf_file big;
    if (tf_read_buffer("big.csv", text, len, TF_FORMAT_AUTO, TF_ITEMS, &big, err, sizeof err))
        fail_msg("%s", err);
    free(text);
    ids = NULL;
    n = 0;
    assert_int_equal(tf_add_ids(&big, 1, &ids, &n, &added, err, sizeof err), 0);
    assert_int_equal(n, 5000);
    assert_true(ids[4999] == 4999 * 7919);
    free(ids);
    tf_file_free(&big);
    tf_file_free(&f[0]);
    tf_file_free(&f[1]);
}

/* The weight of (row, feature name) in the matrix; asserts the row's features are strictly ascending. */
static double cell(const tf_matrix *m, uint32_t row, const char *name)
{
    double w = -1;
    for (uint64_t j = m->indptr[row]; j < m->indptr[row + 1]; ++j) {
        if (j > m->indptr[row])
            assert_true(m->features[j - 1] < m->features[j]);
        assert_true(m->features[j] >= 0 && (uint32_t)m->features[j] < m->num_features);
        if (!strcmp(m->names[m->features[j]], name))
            w = m->weights[j];
    }
    return w;
}

static double row_sum(const tf_matrix *m, uint32_t row)
{
    double s = 0;
    for (uint64_t j = m->indptr[row]; j < m->indptr[row + 1]; ++j)
        s += fabs(m->weights[j]);
    return s;
}

/* tf_finish: the identity out of rows without training pairs, then each scaling. */
static void test_finish(void **state)
{
    (void)state;
    for (int mode = 0; mode < 3; ++mode) {
        /* rows 0 and 1: identity + features 3 and 4 (weights 2, 2); row 2: identity only; row 3: nothing */
        uint64_t indptr[5] = {0, 3, 6, 7, 7};
        int32_t features[7] = {0, 3, 4, 1, 3, 4, 2};
        float weights[7] = {1, 2, 2, 1, 2, 2, 1};
        tf_matrix m = {4, 5, 1, indptr, features, weights, NULL, NULL, 0};
        const unsigned char has_pairs[4] = {1, 0, 1, 0};
        assert_int_equal(tf_finish(&m, has_pairs, (tf_normalise)mode), 1);
        const uint64_t want_ptr[5] = {0, 3, 5, 6, 6};
        assert_memory_equal(indptr, want_ptr, sizeof want_ptr);
        const int32_t want_features[6] = {0, 3, 4, 3, 4, 2};
        assert_memory_equal(features, want_features, sizeof want_features);
        const float want[3][6] = {{1, 0.5f, 0.5f, 0.5f, 0.5f, 1}, /* the file features to 1, the identity 1 */
                                  {0.2f, 0.4f, 0.4f, 0.5f, 0.5f, 1},
                                  {1, 2, 2, 2, 2, 1}};
        for (int k = 0; k < 6; ++k)
            assert_true(fabsf(weights[k] - want[mode][k]) < 1e-6f);
        assert_int_equal(m.empty_rows, 1);
        /* has_pairs NULL keeps every identity */
        uint64_t p2[2] = {0, 2};
        int32_t f2[2] = {0, 1};
        float w2[2] = {1, 4};
        tf_matrix one = {1, 2, 1, p2, f2, w2, NULL, NULL, 0};
        assert_int_equal(tf_finish(&one, NULL, TF_NORMALISE_FEATURES), 0);
        assert_true(w2[0] == 1.0f && w2[1] == 1.0f && p2[1] == 2);
    }
}

static void test_build(void **state)
{
    (void)state;
    tf_file f[2];
    read_ok("movieId,title,genres\n20,T20,Comedy|Drama\n10,T10,Drama\n30,T30,(no genres listed)\n", TF_FORMAT_AUTO,
            TF_ITEMS, &f[0]);
    /* A second file: a genre of the first (one feature, summed), its own, a repeat summed, an item of its own. */
    read_ok("20,genre:Comedy,2\n20,studio:X\n20,studio:X,0.5\n40,studio:Y\n", TF_FORMAT_AUTO, TF_ITEMS, &f[1]);
    int64_t *ids = malloc(3 * sizeof *ids);
    assert_non_null(ids);
    ids[0] = 10; /* the interactions' dense order */
    ids[1] = 20;
    ids[2] = 30;
    uint32_t n = 3;
    assert_int_equal(tf_add_ids(f, 2, &ids, &n, NULL, err, sizeof err), 0);
    assert_int_equal(n, 4);

    tf_matrix m;
    tf_build_options o = {0, 0};
    if (tf_build(TF_ITEMS, f, 2, ids, n, &o, &m, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(m.rows, 4);
    assert_int_equal(m.identity, 1);
    assert_int_equal(m.num_features, 4 + 4); /* identity, then Comedy Drama studio:X studio:Y */
    assert_string_equal(m.names[0], "item:10");
    assert_string_equal(m.names[3], "item:40");
    assert_string_equal(m.names[4], "genre:Comedy");
    assert_string_equal(m.names[5], "genre:Drama");
    assert_string_equal(m.names[6], "studio:X");
    assert_string_equal(m.names[7], "studio:Y");
    assert_int_equal(m.empty_rows, 0);
    for (uint32_t r = 0; r < 4; ++r) {
        assert_int_equal(m.features[m.indptr[r]], r); /* identity first */
        assert_float_equal(row_sum(&m, r), 1.0, 1e-6);
    }
    /* item 20: identity 1, Comedy 1 + 2, Drama 1, studio:X 1.5: sum 6.5 */
    assert_float_equal(cell(&m, 1, "item:20"), 1 / 6.5, 1e-6);
    assert_float_equal(cell(&m, 1, "genre:Comedy"), 3 / 6.5, 1e-6);
    assert_float_equal(cell(&m, 1, "studio:X"), 1.5 / 6.5, 1e-6);
    assert_float_equal(cell(&m, 2, "item:30"), 1.0, 1e-6); /* no genres: the identity alone */
    assert_int_equal(m.indptr[3] - m.indptr[2], 1);
    assert_float_equal(cell(&m, 3, "studio:Y"), 0.5, 1e-6);
    assert_non_null(m.titles);
    assert_string_equal(m.titles[0], "T10");
    assert_null(m.titles[3]);
    tf_matrix_free(&m);

    /* Without identity and normalisation: item 30 has no feature (counted); raw sums. */
    o = (tf_build_options){1, 1};
    if (tf_build(TF_ITEMS, f, 2, ids, n, &o, &m, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(m.identity, 0);
    assert_int_equal(m.num_features, 4);
    assert_string_equal(m.names[0], "genre:Comedy");
    assert_int_equal(m.empty_rows, 1);
    assert_int_equal(m.indptr[3] - m.indptr[2], 0);
    assert_float_equal(cell(&m, 1, "genre:Comedy"), 3.0, 1e-6);
    assert_float_equal(cell(&m, 1, "studio:X"), 1.5, 1e-6);
    tf_matrix_free(&m);

    /* Only the identity (no file): today's model as a matrix. */
    o = (tf_build_options){0, 0};
    if (tf_build(TF_USERS, NULL, 0, ids, n, &o, &m, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(m.num_features, 4);
    assert_string_equal(m.names[2], "user:30");
    assert_null(m.titles);
    for (uint32_t r = 0; r < 4; ++r)
        assert_true(m.indptr[r] == r && m.features[r] == (int32_t)r && m.weights[r] == 1.0f);
    tf_matrix_free(&m);

    /* Errors: an id not in the map, a file of the other side, weights summing beyond the float range. */
    assert_int_equal(tf_build(TF_ITEMS, f, 2, ids, 3, &o, &m, err, sizeof err), -1);
    assert_string_equal(err, "item id 40 of a feature file is not in the data");
    assert_null(m.indptr);
    assert_int_equal(tf_build(TF_USERS, f, 2, ids, n, &o, &m, err, sizeof err), -1);
    assert_string_equal(err, "an item feature file given for the users");
    tf_file big;
    read_ok("10,a,3e38\n10,a,3e38\n", TF_FORMAT_AUTO, TF_ITEMS, &big);
    assert_int_equal(tf_build(TF_ITEMS, &big, 1, ids, n, &o, &m, err, sizeof err), -1);
    assert_string_equal(err, "item 10: the weights of feature \"a\" sum beyond the float range");
    tf_file_free(&big);
    /* Zero weights only: an empty row for the normalisation, kept as it is. */
    read_ok("10,a,0\n20,a,-2\n20,b,2\n", TF_FORMAT_AUTO, TF_ITEMS, &big);
    o = (tf_build_options){1, 0};
    if (tf_build(TF_ITEMS, &big, 1, ids, n, &o, &m, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(m.empty_rows, 3); /* 10 (weights 0), 30 and 40 (no feature) */
    assert_float_equal(cell(&m, 0, "a"), 0.0, 0);
    assert_float_equal(cell(&m, 1, "a"), -0.5, 1e-6); /* L1: |-2| + |2| */
    tf_matrix_free(&m);
    tf_file_free(&big);

    free(ids);
    tf_file_free(&f[0]);
    tf_file_free(&f[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_names), cmocka_unit_test(test_movies), cmocka_unit_test(test_uitem),
        cmocka_unit_test(test_tags),         cmocka_unit_test(test_plain),  cmocka_unit_test(test_errors),
        cmocka_unit_test(test_add_ids),      cmocka_unit_test(test_build),  cmocka_unit_test(test_finish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
