/*
 * warploss-train's data (train_input.h): the interactions read from --data
 * and --test or the synthetic set made, the split, a summary line of each,
 * and --write-split.
 */
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

int train_load_data(const settings *s, td_dataset *d)
{
    td_interactions train_in, test_in;
    memset(&train_in, 0, sizeof train_in);
    memset(&test_in, 0, sizeof test_in);
    char err[1024];
    int rc = read_interactions(s, &train_in, &test_in);
    if (!rc && td_build(&train_in, s->test ? &test_in : NULL, s->test_fraction, s->seed, d, err, sizeof err))
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
    }
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
        if (!s->quiet)
            printf("split written to %s/train.tsv and test.tsv\n", s->write_split);
    }
    return 0;
}
