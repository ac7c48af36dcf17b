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

/* The feature matrices of --item-features and --user-features (a side without files: none). */
typedef struct train_features {
    int has_items, has_users;
    tf_matrix items, users;
} train_features;

void train_features_free(train_features *f);

/* The dataset the settings ask for (with --weights its sample weights, with
 * --cold-items its cold pairs, grown by the feature files' ids) and the
 * feature matrices, with their summary lines (unless --quiet) and the
 * split's files (--write-split): 0, or EXIT_FAIL after a message. */
int train_load_data(const settings *s, td_dataset *d, train_features *f);

#endif
