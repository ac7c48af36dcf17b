/*
 * warploss-train's data step (train_input.c), on top of train_data.h and
 * train_features.h: what the command line asks for, read or made, split,
 * its feature matrices built, summarised on stdout.
 */
#ifndef WL_TRAIN_INPUT_H
#define WL_TRAIN_INPUT_H

#include "train_data.h"
#include "train_features.h"
#include "train_options.h"
#include "train_ranks.h"

/* The feature matrices of --item-features and --user-features (a side without files: none). */
typedef struct train_features {
    int has_items, has_users;
    tf_matrix items, users;
} train_features;

void train_features_free(train_features *f);

/*
 * The files --data names: one file (any path that is not a folder, a pipe
 * too), a folder's regular files whose names do not start with '.', or the
 * regular files a glob(3) pattern (with *, ? or [) matches, sorted by path
 * (strcmp). 0, or -1 with err naming spec (a folder without files, a pattern
 * matching none, a path that does not exist). *out is overwritten first.
 */
typedef struct train_parts {
    size_t count;
    char **paths;
} train_parts;
int train_data_parts(const char *spec, train_parts *out, char *err, size_t err_size);
void train_parts_free(train_parts *p);

/*
 * Read the parts first, first + stride, ... (stride >= 1) into pieces[i] (the
 * others left empty: count 0, NULL arrays), each with o (its format detected
 * per part unless o gives one); a part with no interaction left is read as
 * none, not an error. rep (may be NULL) sums their reports: format is the
 * parts' one (TD_FORMAT_AUTO if they differ; a part without a line has none),
 * first_bad the first skipped line of the first part with one, whose path
 * first_bad_message then starts with ("PATH:LINE: what"). 0, or -1 with err
 * naming the part (file and line). On failure every piece is freed and empty.
 * pieces has p->count entries.
 */
int train_read_parts(const train_parts *p, size_t first, size_t stride, const td_read_options *o,
                     td_interactions *pieces, td_read_report *rep, char *err, size_t err_size);

/* The dataset the settings ask for (with --weights its sample weights, with
 * --cold-items its cold pairs, grown by the feature files' ids) and the
 * feature matrices, with their summary lines (unless --quiet) and the
 * split's files (--write-split): 0, or EXIT_FAIL after a message. Under
 * N > 1 ranks (k) rank r reads --data's parts r, r + N, ... and the ranks
 * share them, so that every rank builds the same dataset. */
int train_load_data(const settings *s, const train_ranks *k, td_dataset *d, train_features *f);

#endif
