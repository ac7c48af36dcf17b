/*
 * warploss-train's command line: the options, their defaults and --help, and
 * the settings they give (train_options.c). The loop that uses them is
 * warploss-train.c.
 */
#ifndef WL_TRAIN_OPTIONS_H
#define WL_TRAIN_OPTIONS_H

#include <stdint.h>

#include "train_data.h"
#include "train_features.h"
#include "warploss.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_INTERRUPTED = 130 };

/* The options, in --help's order; settings.given[] is indexed by them. */
enum {
    OPT_HELP,
    OPT_DATA,
    OPT_TEST,
    OPT_FORMAT,
    OPT_MIN_RATING,
    OPT_TEST_FRACTION,
    OPT_COLD_ITEMS,
    OPT_WEIGHTS,
    OPT_ITEM_FEATURES,
    OPT_USER_FEATURES,
    OPT_FEATURES_FORMAT,
    OPT_NO_IDENTITY,
    OPT_NO_NORMALISE,
    OPT_NORMALISE_ROWS,
    OPT_COLD_IDENTITY,
    OPT_SEED,
    OPT_DIM,
    OPT_EPOCHS,
    OPT_NEGATIVES,
    OPT_SHARED,
    OPT_BATCH,
    OPT_LR,
    OPT_OPTIMIZER,
    OPT_L2,
    OPT_K,
    OPT_EVAL_EVERY,
    OPT_DEVICE,
    OPT_SYNC_EVERY,
    OPT_SYNC_REDUCE,
    OPT_METRICS,
    OPT_SAVE,
    OPT_LOAD,
    OPT_CHECKPOINT_EVERY,
    OPT_EXPORT,
    OPT_PLOT,
    OPT_RECOMMEND,
    OPT_SYNTHETIC,
    OPT_SKIP_BAD,
    OPT_QUIET,
    OPT_WRITE_SPLIT,
    OPT_COUNT
};

/* --item-features and --user-features may each be given this many times. */
#define TRAIN_MAX_FEATURE_FILES 16

/* What the command line asked for (the defaults filled in). */
typedef struct settings {
    const char *data, *test, *device, *metrics, *save, *load, *export_dir, *plot, *recommend, *write_split;
    td_format format;
    int use_min_rating;
    double min_rating, test_fraction;
    uint64_t seed;
    uint32_t dim;
    uint64_t epochs;
    uint32_t negatives, batch, k, eval_every;
    int shared, skip_bad, quiet;
    double lr, l2;
    wl_optimizer optimizer;
    uint32_t syn_users, syn_items;
    uint64_t syn_interactions;
    double cold_items; /* --cold-items F, 0: none */
    int weights;       /* --weights */
    const char *item_features[TRAIN_MAX_FEATURE_FILES], *user_features[TRAIN_MAX_FEATURE_FILES];
    unsigned num_item_files, num_user_files;
    tf_format features_format;
    int no_identity, no_normalise, normalise_rows, cold_identity;
    uint32_t sync_every;       /* under mpirun with N > 1 ranks: steps between item syncs */
    int sync_mean;             /* --sync-reduce mean (else sum) */
    uint32_t checkpoint_every; /* --save every E epochs too (0: at the end only) */
    int given[OPT_COUNT];
} settings;

/* Parse the command line into s: 0, or EXIT_USAGE after a message on stderr;
 * --help prints the help and exits 0. */
int train_parse_args(int argc, char **argv, settings *s);

#endif
