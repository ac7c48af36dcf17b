/*
 * warploss-train's data (train_input.h): the interactions read from --data
 * and --test or the synthetic set made, the split (with --cold-items its cold
 * items), --weights, the feature files and matrices, a summary line of each,
 * and --write-split.
 */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "train_input.h"
#include "train_output.h"

void train_parts_free(train_parts *p)
{
    if (!p)
        return;
    for (size_t k = 0; k < p->count; ++k)
        free(p->paths[k]);
    free(p->paths);
    memset(p, 0, sizeof *p);
}

/* One more path (copied) on p, whose array has room for *cap: 0, or -1 out of memory. */
static int add_part(train_parts *p, size_t *cap, const char *a, const char *b)
{
    if (p->count == *cap) {
        size_t grown = *cap ? *cap * 2 : 16;
        char **paths = grown < SIZE_MAX / sizeof *paths ? realloc(p->paths, grown * sizeof *paths) : NULL;
        if (!paths)
            return -1;
        p->paths = paths;
        *cap = grown;
    }
    size_t na = strlen(a), nb = b ? strlen(b) : 0;
    char *path = malloc(na + nb + 1);
    if (!path)
        return -1;
    memcpy(path, a, na);
    if (b)
        memcpy(path + na, b, nb);
    path[na + nb] = '\0';
    p->paths[p->count++] = path;
    return 0;
}

static int is_regular_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int compare_paths(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A folder's regular files whose names do not start with '.', in no order yet. */
static int folder_parts(const char *dir, train_parts *out, char *err, size_t err_size)
{
    DIR *d = opendir(dir);
    if (!d) {
        td_set_err(err, err_size, "%s: cannot open the folder: %s", dir, strerror(errno));
        return -1;
    }
    /* The folder's name with one '/' after it, to which each file's name is appended. */
    size_t n = strlen(dir), cap = 0;
    char *prefix = malloc(n + 2);
    if (prefix) {
        memcpy(prefix, dir, n + 1);
        if (!n || dir[n - 1] != '/')
            memcpy(prefix + n, "/", 2);
    }
    int rc = prefix ? 0 : -1;
    struct dirent *e;
    while (!rc && (errno = 0, e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if ((rc = add_part(out, &cap, prefix, e->d_name)))
            break;
        /* a sub-folder, a link to nothing, a pipe: not a part */
        if (!is_regular_file(out->paths[out->count - 1]))
            free(out->paths[--out->count]);
    }
    if (rc)
        td_set_err(err, err_size, "%s: out of memory for the folder's file names", dir);
    else if (errno) {
        td_set_err(err, err_size, "%s: cannot read the folder: %s", dir, strerror(errno));
        rc = -1;
    } else if (!out->count) {
        td_set_err(err, err_size, "%s: no files in the folder (names starting with '.' are left out)", dir);
        rc = -1;
    }
    free(prefix);
    closedir(d);
    return rc;
}

/* The regular files a glob(3) pattern matches, in no order yet. */
static int glob_parts(const char *pattern, train_parts *out, char *err, size_t err_size)
{
    glob_t g;
    memset(&g, 0, sizeof g);
    int grc = glob(pattern, 0, NULL, &g), rc = 0;
    size_t cap = 0;
    if (grc == GLOB_NOMATCH) {
        td_set_err(err, err_size, "%s: no file matches the pattern", pattern);
        rc = -1;
    } else if (grc == GLOB_NOSPACE) {
        td_set_err(err, err_size, "%s: out of memory for the pattern's matches", pattern);
        rc = -1;
    } else if (grc) {
        td_set_err(err, err_size, "%s: cannot read a folder the pattern names", pattern);
        rc = -1;
    }
    for (size_t k = 0; !rc && k < g.gl_pathc; ++k)
        if (is_regular_file(g.gl_pathv[k]) && (rc = add_part(out, &cap, g.gl_pathv[k], NULL)))
            td_set_err(err, err_size, "%s: out of memory for the pattern's matches", pattern);
    if (!rc && !out->count) {
        td_set_err(err, err_size, "%s: no regular file matches the pattern", pattern);
        rc = -1;
    }
    if (grc != GLOB_NOMATCH)
        globfree(&g);
    return rc;
}

int train_data_parts(const char *spec, train_parts *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    size_t cap = 0;
    int rc;
    const int found = stat(spec, &st) == 0, stat_errno = errno;
    if (found && !S_ISDIR(st.st_mode)) {
        rc = add_part(out, &cap, spec, NULL);
        if (rc)
            td_set_err(err, err_size, "%s: out of memory", spec);
    } else if (found) {
        rc = folder_parts(spec, out, err, err_size);
    } else if (strpbrk(spec, "*?[")) {
        rc = glob_parts(spec, out, err, err_size);
    } else {
        td_set_err(err, err_size, "%s: cannot open: %s", spec, strerror(stat_errno));
        rc = -1;
    }
    if (rc) {
        train_parts_free(out);
        return -1;
    }
    /* glob(3) sorts by the locale's collation, the folder not at all: byte order for both */
    qsort(out->paths, out->count, sizeof *out->paths, compare_paths);
    return 0;
}

int train_read_parts(const train_parts *p, size_t first, size_t stride, const td_read_options *o,
                     td_interactions *pieces, td_read_report *rep, char *err, size_t err_size)
{
    if (p->count)
        memset(pieces, 0, p->count * sizeof *pieces);
    if (rep)
        memset(rep, 0, sizeof *rep);
    if (!stride) {
        td_set_err(err, err_size, "reading the parts: a stride of 0");
        return -1;
    }
    td_read_options part = {0};
    if (o)
        part = *o;
    part.allow_empty = 1; /* another part may have the interactions */
    int mixed = 0;
    for (size_t k = first; k < p->count; k += stride) {
        td_read_report r;
        if (td_read_file(p->paths[k], &part, &pieces[k], &r, err, err_size)) {
            for (size_t j = first; j < k; j += stride)
                td_interactions_free(&pieces[j]);
            if (rep)
                memset(rep, 0, sizeof *rep);
            return -1;
        }
        if (rep) {
            if (r.format != TD_FORMAT_AUTO && rep->format == TD_FORMAT_AUTO && !mixed)
                rep->format = r.format;
            else if (r.format != TD_FORMAT_AUTO && r.format != rep->format) {
                rep->format = TD_FORMAT_AUTO;
                mixed = 1;
            }
            rep->lines += r.lines;
            rep->bad_lines += r.bad_lines;
            rep->below_min += r.below_min;
            if (r.bad_lines && !rep->first_bad) {
                rep->first_bad = r.first_bad;
                /* the part's path and line first: a long message is cut at its end */
                char *m = rep->first_bad_message;
                const size_t size = sizeof rep->first_bad_message;
                const int n = snprintf(m, size, "%s:%zu: ", p->paths[k], r.first_bad);
                if (n > 0 && (size_t)n < size - 1) {
                    size_t len = strlen(r.first_bad_message), room = size - 1 - (size_t)n;
                    len = len < room ? len : room;
                    memcpy(m + n, r.first_bad_message, len);
                    m[(size_t)n + len] = '\0';
                }
            }
        }
        if (stride > p->count - k)
            break;
    }
    return 0;
}

/* --data's one file read into *out, with a line about it. */
static int read_file(const settings *s, const td_read_options *o, td_interactions *out)
{
    char err[1024];
    td_read_report rep;
    double t0 = cli_now();
    if (td_read_file(s->data, o, out, &rep, err, sizeof err))
        return train_fail(err, NULL);
    if (s->quiet)
        return 0;
    printf("data: %s (%s): %zu lines in %.2f s", s->data, td_format_name(rep.format), rep.lines, cli_now() - t0);
    if (s->use_min_rating)
        printf(", %zu below --min-rating %g", rep.below_min, s->min_rating);
    if (s->skip_bad)
        printf(", %zu bad lines skipped (first: line %zu)", rep.bad_lines, rep.first_bad);
    printf("\n");
    return 0;
}

/* --data's parts (a folder or a pattern) read and concatenated into *out, with a line about them. */
static int read_parts(const settings *s, const train_ranks *k, const train_parts *parts, const td_read_options *o,
                      td_interactions *out)
{
    char err[1024];
    td_read_report rep;
    td_interactions *pieces = calloc(parts->count, sizeof *pieces);
    if (!pieces)
        return train_fail("out of memory", s->data);
    double t0 = cli_now();
    int rc = 0;
    /* N > 1 ranks: rank r reads the parts r, r + N, ..., then every rank gets every part (in part order). */
    if (train_read_parts(parts, (size_t)k->rank, (size_t)k->size, o, pieces, &rep, err, sizeof err))
        rc = train_fail(err, NULL);
    if (k->size > 1) {
        rc = ranks_agree(k, rc);
        if (!rc && ranks_share_pieces(k, pieces, parts->count))
            rc = train_fail("out of memory for the interactions", s->data);
        rep.lines = ranks_sum(k, rep.lines);
        rep.bad_lines = ranks_sum(k, rep.bad_lines);
        rep.below_min = ranks_sum(k, rep.below_min);
    }
    size_t total = 0;
    for (size_t j = 0; j < parts->count; ++j)
        total += pieces[j].count;
    if (!rc && !total) {
        if (rep.lines)
            snprintf(err, sizeof err,
                     "%s: no interactions (%zu parts, %zu lines: %zu malformed, skipped; %zu below the minimum "
                     "rating)",
                     s->data, parts->count, rep.lines, rep.bad_lines, rep.below_min);
        else
            snprintf(err, sizeof err, "%s: no interactions (%zu parts, each empty or only a header line)", s->data,
                     parts->count);
        rc = k->rank == 0 ? train_fail(err, NULL) : EXIT_FAIL; /* every rank knows it: one says it */
    }
    if (!rc && td_interactions_concat(pieces, parts->count, out))
        rc = train_fail("out of memory for the interactions", s->data);
    for (size_t j = 0; j < parts->count; ++j)
        td_interactions_free(&pieces[j]);
    free(pieces);
    if (rc || s->quiet)
        return rc;
    const int readers = k->size < (int)parts->count ? k->size : (int)parts->count;
    if (k->size > 1)
        printf("data: %s (%zu part%s read by %d rank%s): %zu lines in %.2f s", s->data, parts->count,
               parts->count == 1 ? "" : "s", readers, readers == 1 ? "" : "s", rep.lines, cli_now() - t0);
    else
        printf("data: %s (%zu part%s, %s): %zu lines in %.2f s", s->data, parts->count, parts->count == 1 ? "" : "s",
               rep.format == TD_FORMAT_AUTO ? "mixed" : td_format_name(rep.format), rep.lines, cli_now() - t0);
    if (s->use_min_rating)
        printf(", %zu below --min-rating %g", rep.below_min, s->min_rating);
    if (s->skip_bad)
        printf(", %zu bad lines skipped%s%s%s", rep.bad_lines, rep.bad_lines ? " (first: " : "", rep.first_bad_message,
               rep.bad_lines ? ")" : "");
    printf("\n");
    return 0;
}

/* --data (one file, a folder or a pattern) and --test, or the synthetic set, with a line about each. */
static int read_interactions(const settings *s, const train_ranks *k, td_interactions *train_in,
                             td_interactions *test_in)
{
    char err[1024];
    td_read_report rep;
    if (s->data) {
        td_read_options o = {s->format, s->use_min_rating, (float)s->min_rating, s->skip_bad, 0};
        train_parts parts;
        if (train_data_parts(s->data, &parts, err, sizeof err))
            return train_fail(err, NULL);
        /* a plain file is read on its own, so that its messages stay those of td_read_file */
        const int plain = parts.count == 1 && !strcmp(parts.paths[0], s->data) && k->size == 1;
        int rc = plain ? read_file(s, &o, train_in) : read_parts(s, k, &parts, &o, train_in);
        train_parts_free(&parts);
        if (rc)
            return rc;
        if (s->test) {
            if (td_read_file(s->test, &o, test_in, &rep, err, sizeof err))
                return train_fail(err, NULL);
            if (!s->quiet) {
                printf("test: %s (%s): %zu lines", s->test, td_format_name(rep.format), rep.lines);
                if (s->skip_bad)
                    printf(", %zu bad lines skipped", rep.bad_lines);
                printf("\n");
            }
        }
    } else {
        if (td_synthetic(s->syn_users, s->syn_items, s->syn_interactions, s->seed, train_in))
            return train_fail("out of memory for the synthetic set", NULL);
        if (!s->quiet)
            printf("data: synthetic, %u users x %u items, %zu interactions (seed %llu; --synthetic U,I,N)\n",
                   s->syn_users, s->syn_items, train_in->count, (unsigned long long)s->seed);
    }
    return 0;
}

void train_features_free(train_features *f)
{
    tf_matrix_free(&f->items);
    tf_matrix_free(&f->users);
    memset(f, 0, sizeof *f);
}

/* One side's feature files read, the dense map grown by their ids and the matrix built, with a line about each. */
static int load_side(const settings *s, tf_side side, const td_dataset *d, int64_t **ids, uint32_t *num_ids,
                     tf_matrix *out)
{
    const char *const *paths = side == TF_USERS ? s->user_features : s->item_features;
    const unsigned n = side == TF_USERS ? s->num_user_files : s->num_item_files;
    const char *what = side == TF_USERS ? "user" : "item";
    tf_file files[TRAIN_MAX_FEATURE_FILES];
    memset(files, 0, sizeof files);
    char err[1024];
    int rc = 0;
    uint32_t added = 0;
    for (unsigned k = 0; k < n && !rc; ++k) {
        if (tf_read_file(paths[k], s->features_format, side, &files[k], err, sizeof err)) {
            rc = train_fail(err, NULL);
            break;
        }
        if (!s->quiet) {
            printf("%s features: %s (%s): %zu lines, %zu %ss, %zu features", what, paths[k],
                   tf_format_name(files[k].format), files[k].lines, files[k].rows, what, files[k].num_features);
            if (files[k].empty_tags)
                printf(", %zu empty tags skipped", files[k].empty_tags);
            printf("\n");
        }
    }
    const tf_build_options o = {s->no_identity, 1}; /* tf_finish scales the rows */
    if (!rc && tf_add_ids(files, n, ids, num_ids, &added, err, sizeof err))
        rc = train_fail(err, NULL);
    if (!rc && tf_build(side, files, n, *ids, *num_ids, &o, out, err, sizeof err))
        rc = train_fail(err, NULL);
    /* the rows with training pairs keep their identity feature (unless --cold-identity: all of them) */
    unsigned char *has_pairs = NULL;
    uint32_t dropped = 0;
    if (!rc && !s->cold_identity && !(has_pairs = calloc(*num_ids ? *num_ids : 1, 1)))
        rc = train_fail("out of memory", NULL);
    for (size_t j = 0; has_pairs && j < d->train_count; ++j)
        has_pairs[side == TF_USERS ? d->train_users[j] : d->train_items[j]] = 1;
    if (!rc)
        dropped = tf_finish(out, has_pairs,
                            s->no_normalise     ? TF_NORMALISE_NONE
                            : s->normalise_rows ? TF_NORMALISE_ROWS
                                                : TF_NORMALISE_FEATURES);
    free(has_pairs);
    for (unsigned k = 0; k < n; ++k)
        tf_file_free(&files[k]);
    if (rc || s->quiet)
        return rc;
    printf("%s features: %u %ss x %u features (", what, out->rows, what, out->num_features);
    if (out->identity)
        printf("%u identity + ", out->rows);
    printf("%u from the files), %llu non-zeros, %s", out->num_features - (out->identity ? out->rows : 0),
           (unsigned long long)out->indptr[out->rows],
           s->no_normalise     ? "weights as summed"
           : s->normalise_rows ? "rows normalised to sum 1"
                               : "file features normalised to sum 1");
    if (dropped)
        printf(", %u %ss without a training pair by their file features alone", dropped, what);
    if (added)
        printf(", %u %ss only in the feature files added", added, what);
    if (out->empty_rows)
        printf(", %u %ss without a feature (represented by 0)", out->empty_rows, what);
    printf("\n");
    return 0;
}

/* --weights: a line about the sample weights. */
static void print_weights(const td_dataset *d)
{
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    for (size_t j = 0; j < d->train_count; ++j) {
        sum += d->train_weights[j];
        lo = d->train_weights[j] < lo ? d->train_weights[j] : lo;
        hi = d->train_weights[j] > hi ? d->train_weights[j] : hi;
    }
    printf("weights: each training pair's rating or weight (repeats summed) as its sample weight: mean %.4g, min "
           "%g, max %g\n",
           d->train_count ? sum / (double)d->train_count : 0.0, d->train_count ? lo : 0.0, d->train_count ? hi : 0.0);
}

int train_load_data(const settings *s, const train_ranks *k, td_dataset *d, train_features *f)
{
    td_interactions train_in, test_in;
    memset(&train_in, 0, sizeof train_in);
    memset(&test_in, 0, sizeof test_in);
    memset(f, 0, sizeof *f);
    char err[1024];
    int rc = read_interactions(s, k, &train_in, &test_in);
    const td_interactions *test = s->test ? &test_in : NULL;
    if (!rc && (s->cold_items > 0
                    ? td_build_cold(&train_in, test, s->test_fraction, s->cold_items, s->seed, d, err, sizeof err)
                    : td_build(&train_in, test, s->test_fraction, s->seed, d, err, sizeof err)))
        rc = train_fail(err, NULL);
    if (!rc && s->weights && td_train_weights(d, &train_in, err, sizeof err))
        rc = train_fail(err, NULL);
    td_interactions_free(&train_in);
    td_interactions_free(&test_in);
    if (rc)
        return rc;
    if (!s->quiet) {
        printf("split: %u users, %u items, %zu train pairs, %zu test pairs", d->num_users, d->num_items, d->train_count,
               d->test_count);
        if (s->test)
            printf(" (--test)");
        else
            printf(" (%g per user held out, seed %llu)", s->test_fraction, (unsigned long long)s->seed);
        printf(", %zu test pairs dropped (user or item not in train)", d->test_dropped);
        if (d->test_in_train || d->test_duplicates)
            printf(", %zu test pairs also in train and %zu repeated left out", d->test_in_train, d->test_duplicates);
        if (d->train_duplicates)
            printf(", %zu duplicate pairs merged", d->train_duplicates);
        printf("\n");
        if (s->cold_items > 0)
            printf("cold items: %u of %u items (--cold-items %g, seed %llu) held out with their %zu pairs, ranked "
                   "among the cold items; %zu cold pairs dropped (user not in train)\n",
                   d->num_cold_items, d->cold_first + d->num_cold_items, s->cold_items, (unsigned long long)s->seed,
                   d->cold_count, d->cold_dropped);
        if (s->weights)
            print_weights(d);
    }
    if (s->num_user_files && (rc = load_side(s, TF_USERS, d, &d->user_ids, &d->num_users, &f->users)))
        return rc;
    f->has_users = s->num_user_files > 0;
    if (s->num_item_files && (rc = load_side(s, TF_ITEMS, d, &d->item_ids, &d->num_items, &f->items)))
        return rc;
    f->has_items = s->num_item_files > 0;
    if (s->write_split) {
        char path[4096];
        if (train_make_dir(s->write_split))
            return train_fail("cannot create the folder", s->write_split);
        snprintf(path, sizeof path, "%s/train.tsv", s->write_split);
        if (train_write_pairs(path, d, d->train_count, d->train_users, d->train_items))
            return train_fail("cannot write", path);
        snprintf(path, sizeof path, "%s/test.tsv", s->write_split);
        if (train_write_pairs(path, d, d->test_count, d->test_users, d->test_items))
            return train_fail("cannot write", path);
        if (s->cold_items > 0) {
            snprintf(path, sizeof path, "%s/cold.tsv", s->write_split);
            if (train_write_pairs(path, d, d->cold_count, d->cold_users, d->cold_items))
                return train_fail("cannot write", path);
        }
        if (!s->quiet)
            printf("split written to %s/train.tsv and test.tsv%s\n", s->write_split,
                   s->cold_items > 0 ? " (cold pairs: cold.tsv)" : "");
    }
    return 0;
}
