/*
 * warploss-train's data (train_input.h): the interactions read from --data
 * and --test or the synthetic set made, the split (with --cold-items its cold
 * items), --weights, the feature files and matrices, a summary line of each,
 * and --write-split.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "train_input.h"
#include "train_output.h"

/* --data and --test, or the synthetic set, with a line about each. */
static int read_interactions(const settings *s, td_interactions *train_in, td_interactions *test_in)
{
    char err[1024];
    td_read_report rep;
    if (s->data) {
        td_read_options o = {s->format, s->use_min_rating, (float)s->min_rating, s->skip_bad};
        double t0 = cli_now();
        if (td_read_file(s->data, &o, train_in, &rep, err, sizeof err))
            return train_fail(err, NULL);
        if (!s->quiet) {
            printf("data: %s (%s): %zu lines in %.2f s", s->data, td_format_name(rep.format), rep.lines,
                   cli_now() - t0);
            if (s->use_min_rating)
                printf(", %zu below --min-rating %g", rep.below_min, s->min_rating);
            if (s->skip_bad)
                printf(", %zu bad lines skipped (first: line %zu)", rep.bad_lines, rep.first_bad);
            printf("\n");
        }
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

int train_load_data(const settings *s, td_dataset *d, train_features *f)
{
    td_interactions train_in, test_in;
    memset(&train_in, 0, sizeof train_in);
    memset(&test_in, 0, sizeof test_in);
    memset(f, 0, sizeof *f);
    char err[1024];
    int rc = read_interactions(s, &train_in, &test_in);
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
