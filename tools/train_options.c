/*
 * warploss-train's command line (train_options.h): the table of options that
 * gives --help, the defaults (README.md, "warploss-train", says how they were
 * chosen), the parsing of every value and the combinations refused.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "train_options.h"
/* Defaults: see the --help text (and README.md for how they were chosen). */
#define DEF_SEED 42
#define DEF_DIM 32
#define DEF_EPOCHS 10
#define DEF_NEGATIVES 100
#define DEF_BATCH 1024
#define DEF_SYNC_EVERY 1
#define DEF_LR 0.05
#define DEF_K 10
#define DEF_TEST_FRACTION 0.1
#define DEF_SYN_USERS 2000
#define DEF_SYN_ITEMS 3000
#define DEF_SYN_INTERACTIONS 100000

#define STR_(x) #x
#define STR(x) STR_(x)

static const cli_option options[] = {
    [OPT_HELP] = {"help", no_argument, NULL, "show this help and exit"},
    [OPT_DATA] = {"data", required_argument, "PATH",
                  "interactions file, a folder of parts or a quoted glob (parts sorted and\n"
                  "read as one file; default: the built-in synthetic set)"},
    [OPT_TEST] = {"test", required_argument, "FILE", "test interactions (default: a seeded hold-out, --test-fraction)"},
    [OPT_FORMAT] = {"format", required_argument, "FMT", "movielens-csv, movielens-tsv, csv or tsv (default: detected)"},
    [OPT_MIN_RATING] = {"min-rating", required_argument, "R", "keep ratings >= R as positives (default: all)"},
    [OPT_TEST_FRACTION] = {"test-fraction", required_argument, "F",
                           "hold out floor(F * n) of each user's n items (default " STR(DEF_TEST_FRACTION) ")"},
    [OPT_COLD_ITEMS] = {"cold-items", required_argument, "F",
                        "hold out a seeded fraction F of the items with all their pairs as cold\n"
                        "test pairs, ranked among the cold items (metrics: warm and cold)"},
    [OPT_WEIGHTS] = {"weights", no_argument, NULL, "train with each pair's rating or weight as its sample weight"},
    [OPT_ITEM_FEATURES] = {"item-features", required_argument, "FILE",
                           "item features: MovieLens movies.csv, u.item or tags.csv, or id,feature[,weight]\n"
                           "CSV/TSV (repeatable: the union of the files)"},
    [OPT_USER_FEATURES] = {"user-features", required_argument, "FILE",
                           "user features: MovieLens tags.csv (the tags each user applied) or\n"
                           "id,feature[,weight] CSV/TSV (repeatable)"},
    [OPT_FEATURES_FORMAT] = {"features-format", required_argument, "FMT",
                             "movielens-movies, movielens-item, movielens-tags, csv or tsv for every\n"
                             "features file (default: detected per file)"},
    [OPT_NO_IDENTITY] = {"no-identity", no_argument, NULL,
                         "no identity feature per user or item on a side with features"},
    [OPT_NO_NORMALISE] = {"no-normalise", no_argument, NULL,
                          "keep the feature weights as summed (default: a row's file features divided\n"
                          "by their sum, the identity feature at weight 1)"},
    [OPT_NORMALISE_ROWS] = {"normalise-rows", no_argument, NULL,
                            "divide each whole row, identity included, by its sum (LightFM's Dataset)"},
    [OPT_COLD_IDENTITY] = {"cold-identity", no_argument, NULL,
                           "give the identity feature also to the users and items without a training\n"
                           "pair (default: they are represented by their file features alone)"},
    [OPT_SEED] = {"seed", required_argument, "S",
                  "seed of the data, split, tables, shuffles and samples (default " STR(DEF_SEED) ")"},
    [OPT_DIM] = {"dim", required_argument, "D", "embedding dimension (default " STR(DEF_DIM) ")"},
    [OPT_EPOCHS] = {"epochs", required_argument, "E",
                    "epochs to train (more epochs with --load; default " STR(DEF_EPOCHS) ")"},
    [OPT_NEGATIVES] = {"negatives", required_argument, "N",
                       "candidates per positive, LightFM's max_sampled (default " STR(DEF_NEGATIVES) ")"},
    [OPT_SHARED] = {"shared-negatives", no_argument, NULL, "one candidate list per batch instead of one per row"},
    [OPT_BATCH] = {"batch", required_argument, "B", "positives per step (default " STR(DEF_BATCH) ")"},
    [OPT_LR] = {"lr", required_argument, "X", "learning rate (default " STR(DEF_LR) ")"},
    [OPT_OPTIMIZER] = {"optimizer", required_argument, "NAME", "adagrad or sgd (default adagrad)"},
    [OPT_L2] = {"l2", required_argument, "X", "L2 penalty on user and item vectors (default 0)"},
    [OPT_K] = {"k", required_argument, "K",
               "the k of precision@k and recall@k, and of --recommend (default " STR(DEF_K) ")"},
    [OPT_EVAL_EVERY] = {"eval-every", required_argument, "E",
                        "evaluate every E epochs (default 1; 0: after the last only)"},
    [OPT_DEVICE] = {"device", required_argument, "SPEC",
                    "OpenCL device (as warploss-devices --select; under mpirun default: the rank's GPU)"},
    [OPT_SYNC_EVERY] = {"sync-every", required_argument, "S",
                        "under mpirun -np N > 1: combine the ranks' item rows every S steps (default " STR(
                            DEF_SYNC_EVERY) ")"},
    [OPT_SYNC_REDUCE] = {"sync-reduce", required_argument, "sum|mean",
                         "how the ranks' item changes combine (default sum)"},
    [OPT_METRICS] = {"metrics", required_argument, "FILE", "append one JSON object a line per evaluation"},
    [OPT_SAVE] = {"save", required_argument, "FILE", "save the model (also when interrupted)"},
    [OPT_LOAD] = {"load", required_argument, "FILE", "resume from a saved model (same data and split)"},
    [OPT_CHECKPOINT_EVERY] = {"checkpoint-every", required_argument, "E",
                              "with --save, also save after every E-th epoch (default 0: at the end)"},
    [OPT_EXPORT] = {"export-npy", required_argument, "DIR", "write the tables and ids as numpy .npy files"},
    [OPT_PLOT] = {"plot", required_argument, "FILE.svg", "draw loss and precision@k per epoch"},
    [OPT_RECOMMEND] = {"recommend", required_argument, "USER", "print USER's top k new items with scores"},
    [OPT_SYNTHETIC] = {"synthetic", required_argument, "U,I,N",
                       "size of the synthetic set (default " STR(DEF_SYN_USERS) "," STR(DEF_SYN_ITEMS) "," STR(
                           DEF_SYN_INTERACTIONS) ")"},
    [OPT_SKIP_BAD] = {"skip-bad-lines", no_argument, NULL, "count and skip malformed lines instead of stopping"},
    [OPT_QUIET] = {"quiet", no_argument, NULL, "print only the final metrics and --recommend"},
    [OPT_WRITE_SPLIT] = {"write-split", required_argument, "DIR",
                         "write the split's train.tsv and test.tsv (original ids) to DIR"},
    [OPT_COUNT] = {NULL, 0, NULL, NULL},
};

_Static_assert(OPT_COUNT <= CLI_MAX_OPTIONS, "cli_next_option reads CLI_MAX_OPTIONS rows at most");

static const char help_intro[] =
    "Train a matrix-factorisation recommender with WARP loss on an OpenCL device and\n"
    "evaluate it on held-out interactions with LightFM's precision@k, recall@k, AUC and MRR.\n"
    "Without --data it trains on a seeded synthetic set.\n\n";
static const char help_notes[] =
    "\nExit status: 0 success; 1 runtime failure (bad data, device, NaN loss, damaged model file);\n"
    "2 usage; 130 interrupted (the model is still saved with --save).\n";

static int usage_error(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "%s: ", cli_program);
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n(see %s --help)\n", cli_program);
    return EXIT_USAGE;
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    uint64_t v;
    if (parse_u64(s, lo, hi, &v))
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int train_parse_args(int argc, char **argv, settings *s)
{
    memset(s, 0, sizeof *s);
    s->format = TD_FORMAT_AUTO;
    s->test_fraction = DEF_TEST_FRACTION;
    s->seed = DEF_SEED;
    s->dim = DEF_DIM;
    s->epochs = DEF_EPOCHS;
    s->negatives = DEF_NEGATIVES;
    s->batch = DEF_BATCH;
    s->sync_every = DEF_SYNC_EVERY;
    s->lr = DEF_LR;
    s->k = DEF_K;
    s->eval_every = 1;
    s->optimizer = WL_OPTIMIZER_ADAGRAD;
    s->syn_users = DEF_SYN_USERS;
    s->syn_items = DEF_SYN_ITEMS;
    s->syn_interactions = DEF_SYN_INTERACTIONS;
    for (;;) {
        const char *v;
        int word;
        const int row = cli_next_option(argc, argv, options, &v, &word);
        if (row == CLI_END && word == argc)
            break;
        if (row == CLI_END)
            return usage_error("unexpected argument \"%s\"%s", argv[word], "");
        if (row == CLI_MISSING)
            return usage_error("%s needs a value%s", argv[word], "");
        if (row < 0)
            return usage_error("unknown option \"%s\"%s", argv[word], "");
        s->given[row] = 1;
        int bad = 0;
        switch (row) {
        case OPT_HELP: cli_print_help(stdout, options, help_intro, help_notes); exit(EXIT_OK);
        case OPT_DATA: s->data = v; break;
        case OPT_TEST: s->test = v; break;
        case OPT_FORMAT: {
            td_format f;
            bad = td_format_parse(v, &f) != 0 || f == TD_FORMAT_AUTO;
            s->format = f;
            break;
        }
        case OPT_MIN_RATING:
            bad = parse_double(v, &s->min_rating);
            s->use_min_rating = 1;
            break;
        case OPT_TEST_FRACTION:
            bad = parse_double(v, &s->test_fraction) || s->test_fraction < 0 || s->test_fraction >= 1;
            break;
        case OPT_COLD_ITEMS: bad = parse_double(v, &s->cold_items) || !(s->cold_items > 0 && s->cold_items < 1); break;
        case OPT_WEIGHTS: s->weights = 1; break;
        case OPT_ITEM_FEATURES:
        case OPT_USER_FEATURES: {
            const int items = row == OPT_ITEM_FEATURES;
            unsigned *n = items ? &s->num_item_files : &s->num_user_files;
            if (*n == TRAIN_MAX_FEATURE_FILES)
                return usage_error("more than " STR(TRAIN_MAX_FEATURE_FILES) " %s%s", argv[word], " files");
            (items ? s->item_features : s->user_features)[(*n)++] = v;
            break;
        }
        case OPT_FEATURES_FORMAT: {
            tf_format f = TF_FORMAT_AUTO;
            bad = tf_format_parse(v, &f) != 0;
            s->features_format = f;
            break;
        }
        case OPT_NO_IDENTITY: s->no_identity = 1; break;
        case OPT_NO_NORMALISE: s->no_normalise = 1; break;
        case OPT_NORMALISE_ROWS: s->normalise_rows = 1; break;
        case OPT_COLD_IDENTITY: s->cold_identity = 1; break;
        case OPT_SEED: bad = parse_u64(v, 0, UINT64_MAX, &s->seed); break;
        case OPT_DIM: bad = parse_u32(v, 1, 4096, &s->dim); break;
        case OPT_EPOCHS: bad = parse_u64(v, 0, 1000000, &s->epochs); break;
        case OPT_NEGATIVES: bad = parse_u32(v, 1, 1u << 20, &s->negatives); break;
        case OPT_SHARED: s->shared = 1; break;
        case OPT_BATCH: bad = parse_u32(v, 1, 1u << 24, &s->batch); break;
        case OPT_LR: bad = parse_double(v, &s->lr) || !(s->lr > 0); break;
        case OPT_OPTIMIZER:
            if (!strcmp(v, "adagrad"))
                s->optimizer = WL_OPTIMIZER_ADAGRAD;
            else if (!strcmp(v, "sgd"))
                s->optimizer = WL_OPTIMIZER_SGD;
            else
                bad = 1;
            break;
        case OPT_L2: bad = parse_double(v, &s->l2) || s->l2 < 0; break;
        case OPT_K: bad = parse_u32(v, 1, 1u << 20, &s->k); break;
        case OPT_EVAL_EVERY: bad = parse_u32(v, 0, UINT32_MAX, &s->eval_every); break;
        case OPT_DEVICE: s->device = v; break;
        case OPT_SYNC_EVERY: bad = parse_u32(v, 1, UINT32_MAX, &s->sync_every); break;
        case OPT_SYNC_REDUCE:
            bad = strcmp(v, "sum") && strcmp(v, "mean");
            s->sync_mean = !strcmp(v, "mean");
            break;
        case OPT_CHECKPOINT_EVERY: bad = parse_u32(v, 0, UINT32_MAX, &s->checkpoint_every); break;
        case OPT_METRICS: s->metrics = v; break;
        case OPT_SAVE: s->save = v; break;
        case OPT_LOAD: s->load = v; break;
        case OPT_EXPORT: s->export_dir = v; break;
        case OPT_PLOT: s->plot = v; break;
        case OPT_RECOMMEND: s->recommend = v; break;
        case OPT_SYNTHETIC: {
            unsigned long long u, i, n;
            int used = 0;
            bad = sscanf(v, "%llu,%llu,%llu%n", &u, &i, &n, &used) != 3 || v[used] || v[0] == '-' || u < 1 || i < 2 ||
                  n < 1 || u > INT32_MAX || i > INT32_MAX;
            if (!bad) {
                s->syn_users = (uint32_t)u;
                s->syn_items = (uint32_t)i;
                s->syn_interactions = n;
            }
            break;
        }
        case OPT_SKIP_BAD: s->skip_bad = 1; break;
        case OPT_QUIET: s->quiet = 1; break;
        case OPT_WRITE_SPLIT: s->write_split = v; break;
        default: return usage_error("unknown option \"%s\"%s", argv[word], "");
        }
        if (bad)
            return usage_error("bad value \"%s\" for --%s", v, options[row].name);
    }
    if (s->data && s->given[OPT_SYNTHETIC])
        return usage_error("--data and --synthetic exclude each other%s%s", "", "");
    if (s->test && !s->data)
        return usage_error("--test needs --data%s%s", "", "");
    if (s->test && s->given[OPT_TEST_FRACTION])
        return usage_error("--test and --test-fraction exclude each other%s%s", "", "");
    if (s->given[OPT_CHECKPOINT_EVERY] && !s->save)
        return usage_error("--checkpoint-every needs --save%s%s", "", "");
    if (s->no_normalise && s->normalise_rows)
        return usage_error("--no-normalise and --normalise-rows exclude each other%s%s", "", "");
    if (!s->num_item_files && !s->num_user_files) {
        static const int needs_files[] = {OPT_NO_IDENTITY, OPT_NO_NORMALISE, OPT_NORMALISE_ROWS, OPT_COLD_IDENTITY,
                                          OPT_FEATURES_FORMAT};
        for (size_t k = 0; k < sizeof needs_files / sizeof *needs_files; ++k)
            if (s->given[needs_files[k]])
                return usage_error("--%s needs --item-features or --user-features%s", options[needs_files[k]].name, "");
    }
    return 0;
}
