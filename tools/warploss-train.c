/*
 * warploss-train: train a matrix-factorisation recommender with WARP loss on
 * an OpenCL device, through the library's public model API, and evaluate it
 * with LightFM's metrics (see README.md, "warploss-train").
 *
 * Reproducibility (save + load + more epochs == one uninterrupted run, bit for
 * bit): epoch e (0-based, counting every epoch the model was ever trained)
 * shuffles the training pairs, sorted by (user, item), with a Fisher-Yates
 * driven by splitmix64 seeded with mix(seed ^ 0x5348554646 ^ e), where mix is
 * the splitmix64 finaliser; batch b of epoch e uses sample_key e * 2^32 + b.
 * The model's seed is --seed. A model saved after an interruption holds the
 * batches done in its unfinished epoch; --load finishes that epoch first.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "export_npy.h"
#include "train_data.h"
#include "warploss.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_INTERRUPTED = 130 };

/* ------------------------------------------------------------ options */

enum {
    OPT_HELP,
    OPT_DATA,
    OPT_TEST,
    OPT_FORMAT,
    OPT_MIN_RATING,
    OPT_TEST_FRACTION,
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
    OPT_METRICS,
    OPT_SAVE,
    OPT_LOAD,
    OPT_EXPORT,
    OPT_PLOT,
    OPT_RECOMMEND,
    OPT_SYNTHETIC,
    OPT_SKIP_BAD,
    OPT_QUIET,
    OPT_WRITE_SPLIT,
    OPT_COUNT
};

/* Defaults: see the --help text (and README.md for how they were chosen). */
#define DEF_SEED 42
#define DEF_DIM 32
#define DEF_EPOCHS 10
#define DEF_NEGATIVES 100
#define DEF_BATCH 1024
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
    [OPT_DATA] = {"data", required_argument, "FILE", "interactions file (default: the built-in synthetic set)"},
    [OPT_TEST] = {"test", required_argument, "FILE", "test interactions (default: a seeded hold-out, --test-fraction)"},
    [OPT_FORMAT] = {"format", required_argument, "FMT", "movielens-csv, movielens-tsv, csv or tsv (default: detected)"},
    [OPT_MIN_RATING] = {"min-rating", required_argument, "R", "keep ratings >= R as positives (default: all)"},
    [OPT_TEST_FRACTION] = {"test-fraction", required_argument, "F",
                           "hold out floor(F * n) of each user's n items (default " STR(DEF_TEST_FRACTION) ")"},
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
    [OPT_DEVICE] = {"device", required_argument, "SPEC", "OpenCL device (as warploss-devices --select)"},
    [OPT_METRICS] = {"metrics", required_argument, "FILE", "append one JSON object a line per evaluation"},
    [OPT_SAVE] = {"save", required_argument, "FILE", "save the model (also when interrupted)"},
    [OPT_LOAD] = {"load", required_argument, "FILE", "resume from a saved model (same data and split)"},
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

static const char help_intro[] =
    "Train a matrix-factorisation recommender with WARP loss on an OpenCL device and\n"
    "evaluate it on held-out interactions with LightFM's precision@k, recall@k, AUC and MRR.\n"
    "Without --data it trains on a seeded synthetic set.\n\n";
static const char help_notes[] =
    "\nExit status: 0 success; 1 runtime failure (bad data, device, NaN loss, damaged model file);\n"
    "2 usage; 130 interrupted (the model is still saved with --save).\n";

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
    int given[OPT_COUNT];
} settings;

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

/* 0, or EXIT_USAGE after a message. */
static int parse_args(int argc, char **argv, settings *s)
{
    memset(s, 0, sizeof *s);
    s->format = TD_FORMAT_AUTO;
    s->test_fraction = DEF_TEST_FRACTION;
    s->seed = DEF_SEED;
    s->dim = DEF_DIM;
    s->epochs = DEF_EPOCHS;
    s->negatives = DEF_NEGATIVES;
    s->batch = DEF_BATCH;
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
    return 0;
}

/* ------------------------------------------------------------ shuffling */

/* Epoch e's order of the training pairs: sorted (user, item) pairs, Fisher-Yates with splitmix64. */
static void shuffle_epoch(const td_dataset *d, uint64_t seed, uint64_t epoch, int32_t *users, int32_t *items)
{
    memcpy(users, d->train_users, d->train_count * sizeof *users);
    memcpy(items, d->train_items, d->train_count * sizeof *items);
    uint64_t state = td_mix64(seed ^ 0x5348554646ull ^ epoch);
    for (size_t i = d->train_count; i > 1; --i) {
        const uint64_t r = td_splitmix64(&state);
        const size_t j = (size_t)(((r >> 32) * (uint64_t)i) >> 32); /* in [0, i) */
        int32_t t = users[i - 1];
        users[i - 1] = users[j];
        users[j] = t;
        t = items[i - 1];
        items[i - 1] = items[j];
        items[j] = t;
    }
}

/* ------------------------------------------------------------ SIGINT */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* ------------------------------------------------------------ history and the SVG chart */

typedef struct epoch_record {
    uint64_t epoch; /* 1-based: epochs done after it */
    double loss, seconds;
    int evaluated;
    wl_metrics m;
} epoch_record;

/* A "nice" tick step (1, 2 or 5 times a power of ten) for about n ticks over [lo, hi]. */
static double nice_step(double lo, double hi, int n)
{
    double range = hi - lo;
    if (!(range > 0))
        range = fabs(hi) > 0 ? fabs(hi) : 1;
    const double raw = range / n, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void svg_text(FILE *f, double x, double y, const char *anchor, const char *extra, const char *text)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>%s</text>\n", x, y, anchor, extra, text);
}

/* One panel: series (x = epoch, y) from the records where has(y) holds. */
static void svg_panel(FILE *f, double top, double height, const char *label, const char *color, const epoch_record *r,
                      size_t n, int metric, uint64_t first_epoch, uint64_t last_epoch)
{
    const double left = 80, width = 680;
    double lo = INFINITY, hi = -INFINITY;
    size_t points = 0;
    for (size_t i = 0; i < n; ++i) {
        if (metric && !r[i].evaluated)
            continue;
        const double y = metric ? r[i].m.precision_at_k : r[i].loss;
        if (!isfinite(y))
            continue;
        lo = fmin(lo, y);
        hi = fmax(hi, y);
        ++points;
    }
    if (!points) {
        lo = 0;
        hi = 1;
    }
    if (metric)
        lo = 0; /* precision from 0: its lift is the point */
    double step = nice_step(lo, hi, 5);
    lo = floor(lo / step) * step;
    hi = ceil(hi / step) * step;
    if (!(hi > lo))
        hi = lo + step;
    const double x0 = (double)first_epoch, x1 = last_epoch > first_epoch ? (double)last_epoch : x0 + 1;
#define PX(e) (left + ((double)(e)-x0) / (x1 - x0) * width)
#define PY(v) (top + height - ((v)-lo) / (hi - lo) * height)
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"white\" stroke=\"#444\"/>\n", left,
            top, width, height);
    char buf[64];
    for (double v = lo; v <= hi + step * 1e-6; v += step) {
        const double y = PY(v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, y, left + width,
                y);
        snprintf(buf, sizeof buf, "%g", fabs(v) < step * 1e-6 ? 0.0 : v);
        svg_text(f, left - 6, y + 4, "end", "", buf);
    }
    const double estep = fmax(1, nice_step(x0, x1, 10));
    for (double e = ceil(x0 / estep) * estep; e <= x1 + 1e-9; e += estep) {
        const double x = PX(e);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n", x, top + height, x,
                top + height + 5);
        snprintf(buf, sizeof buf, "%.0f", e);
        svg_text(f, x, top + height + 18, "middle", "", buf);
    }
    svg_text(f, left + width / 2, top + height + 36, "middle", "", "epoch");
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\" fill=\"%s\">%s</text>\n", left, top - 14, color,
            label);
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", color);
    for (size_t i = 0; i < n; ++i) {
        const double y = metric ? r[i].m.precision_at_k : r[i].loss;
        if ((metric && !r[i].evaluated) || !isfinite(y))
            continue;
        fprintf(f, "%.1f,%.1f ", PX(r[i].epoch), PY(y));
    }
    fprintf(f, "\"/>\n");
    for (size_t i = 0; i < n; ++i) {
        const double y = metric ? r[i].m.precision_at_k : r[i].loss;
        if ((metric && !r[i].evaluated) || !isfinite(y))
            continue;
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", PX(r[i].epoch), PY(y), color);
    }
#undef PX
#undef PY
}

/* text with XML's special characters escaped, into out[size] (cut short if needed). */
static const char *xml_escape(const char *text, char *out, size_t size)
{
    size_t o = 0;
    for (; *text && o + 7 < size; ++text) {
        const char *rep = *text == '&' ? "&amp;" : *text == '<' ? "&lt;" : *text == '>' ? "&gt;" : NULL;
        if (rep) {
            memcpy(out + o, rep, strlen(rep));
            o += strlen(rep);
        } else {
            out[o++] = *text;
        }
    }
    out[o] = 0;
    return out;
}

static int write_plot(const char *path, const epoch_record *r, size_t n, uint32_t k, const char *subtitle)
{
    char escaped[512];
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    const uint64_t first = n ? r[0].epoch : 1, last = n ? r[n - 1].epoch : 1;
    char label[64];
    snprintf(label, sizeof label, "precision@%u (test)", k);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"640\" viewBox=\"0 0 800 640\" "
               "font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"13\">\n"
               "<rect width=\"800\" height=\"640\" fill=\"#fafafa\"/>\n");
    svg_text(f, 400, 26, "middle", " font-size=\"18\" font-weight=\"bold\"",
             "warploss-train: training loss and test precision per epoch");
    svg_text(f, 400, 46, "middle", " fill=\"#555\"", xml_escape(subtitle, escaped, sizeof escaped));
    svg_panel(f, 80, 210, "WARP loss per positive", "#c0392b", r, n, 0, first, last);
    svg_panel(f, 370, 210, label, "#1f77b4", r, n, 1, first, last);
    fprintf(f, "</svg>\n");
    return fclose(f) ? -1 : 0;
}

/* ------------------------------------------------------------ helpers */

static void write_metrics_line(FILE *f, const epoch_record *r, double positives_per_second)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", (double)r->epoch);
    cli_json_add_number(o, "loss", "%.6g", r->loss);
    cli_json_add_number(o, "seconds", "%.4f", r->seconds);
    cli_json_add_number(o, "precision_at_k", "%.6f", r->m.precision_at_k);
    cli_json_add_number(o, "recall_at_k", "%.6f", r->m.recall_at_k);
    cli_json_add_number(o, "auc", "%.6f", r->m.auc);
    cli_json_add_number(o, "mrr", "%.6f", r->m.mrr);
    cJSON_AddNumberToObject(o, "k", r->m.k);
    cJSON_AddNumberToObject(o, "users", (double)r->m.users);
    cli_json_add_number(o, "positives_per_second", "%.1f", positives_per_second);
    char *text = cJSON_PrintUnformatted(o);
    if (text)
        fprintf(f, "%s\n", text);
    fflush(f);
    free(text);
    cJSON_Delete(o);
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0777) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

static int write_pairs(const char *path, const td_dataset *d, size_t n, const int32_t *u, const int32_t *i)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    for (size_t j = 0; j < n; ++j)
        fprintf(f, "%lld\t%lld\n", (long long)d->user_ids[u[j]], (long long)d->item_ids[i[j]]);
    return fclose(f) ? -1 : 0;
}

static const char *optimizer_name(wl_optimizer o) { return o == WL_OPTIMIZER_SGD ? "sgd" : "adagrad"; }

static void print_metrics(const char *prefix, const wl_metrics *m)
{
    printf("%sprecision@%u %.4f  recall@%u %.4f  AUC %.4f  MRR %.4f  (%llu test users)\n", prefix, m->k,
           m->precision_at_k, m->k, m->recall_at_k, m->auc, m->mrr, (unsigned long long)m->users);
}

/* The progress bar of an epoch on a terminal. */
static void progress(uint64_t epoch, uint64_t last, size_t done, size_t total, double elapsed, double loss)
{
    const int width = 30, fill = total ? (int)((double)done / (double)total * width) : width;
    char bar[64];
    for (int i = 0; i < width; ++i)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    const double rate = elapsed > 0 ? (double)done / elapsed : 0;
    const double eta = rate > 0 ? (double)(total - done) / rate : 0;
    printf("\repoch %llu/%llu [%s] %3.0f%%  %8.0f pos/s  loss %.4f  ETA %4.1f s ", (unsigned long long)epoch,
           (unsigned long long)last, bar, total ? 100.0 * (double)done / (double)total : 100.0, rate, loss, eta);
    fflush(stdout);
}

/* ------------------------------------------------------------ main */

typedef struct run {
    settings s;
    td_interactions train_in, test_in;
    td_dataset d;
    int have_loaded;                            /* r->m came from --load */
    int64_t *loaded_user_ids, *loaded_item_ids; /* its ids (the application bytes) */
    wl_context *c;
    wl_model *m;
    wl_model_options mo;
    uint64_t epochs_done, batches_done; /* batches of the unfinished epoch epochs_done */
    void *good;                         /* the last good model (end of an epoch), as a model file in memory, */
    size_t good_size;                   /* for --save after a NaN */
    uint64_t good_epochs;
    epoch_record *history;
    size_t history_count;
    uint64_t *test_ptr; /* the test pairs as CSR over the users (their items: d.test_items) */
    cl_mem users_buf, items_buf;
    int32_t *users, *items;
    FILE *metrics;
} run;

static int fail(const char *what, const char *detail)
{
    if (detail && *detail)
        fprintf(stderr, "%s: %s: %s\n", cli_program, what, detail);
    else
        fprintf(stderr, "%s: %s\n", cli_program, what);
    return EXIT_FAIL;
}

static int fail_wl(run *r, wl_status st, const char *what)
{
    const char *detail = wl_context_last_error(r->c);
    char buf[512];
    snprintf(buf, sizeof buf, "%s (%s)", detail && *detail ? detail : "", wl_status_string(st));
    return fail(what, buf);
}

/*
 * The application bytes of warploss-train's model files (README.md,
 * "warploss-train"), little-endian: u64 epochs_done, u64 batches_done,
 * i64 user_ids[U], i64 item_ids[I] (the original ids of the rows).
 */
static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; ++i)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The application bytes for the model now (malloc'd, *size bytes). */
static unsigned char *app_bytes(const run *r, size_t *size)
{
    const size_t nu = r->d.num_users, ni = r->d.num_items;
    *size = 16 + 8 * (nu + ni);
    unsigned char *app = cli_alloc(*size), *p = app + 16;
    put_le64(app, r->epochs_done);
    put_le64(app + 8, r->batches_done);
    for (size_t u = 0; u < nu; ++u, p += 8)
        put_le64(p, (uint64_t)r->d.user_ids[u]);
    for (size_t i = 0; i < ni; ++i, p += 8)
        put_le64(p, (uint64_t)r->d.item_ids[i]);
    return app;
}

static int cmp_i64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The first id that appears twice in ids[0 .. n), in *dup; 0 if they are distinct. */
static int find_duplicate(const int64_t *ids, size_t n, int64_t *dup)
{
    int64_t *sorted = cli_alloc(n * sizeof *sorted + 1);
    memcpy(sorted, ids, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_i64);
    int found = 0;
    for (size_t k = 1; k < n && !found; ++k)
        if (sorted[k] == sorted[k - 1])
            found = 1, *dup = sorted[k];
    free(sorted);
    return found;
}

/* The loaded model's application bytes: progress and ids, checked. */
static int read_app_bytes(run *r, const unsigned char *app, size_t size)
{
    const char *path = r->s.load;
    const size_t nu = r->mo.num_users, ni = r->mo.num_items, want = 16 + 8 * (nu + ni);
    char buf[512];
    if (size != want) {
        snprintf(buf, sizeof buf,
                 "%s: %zu application bytes, but warploss-train's model of %zu users and %zu items has %zu (not a "
                 "model saved by warploss-train?)",
                 path, size, nu, ni, want);
        return fail("cannot load the model", buf);
    }
    r->epochs_done = get_le64(app);
    r->batches_done = get_le64(app + 8);
    r->loaded_user_ids = cli_alloc(nu * sizeof(int64_t) + 1);
    r->loaded_item_ids = cli_alloc(ni * sizeof(int64_t) + 1);
    const unsigned char *p = app + 16;
    for (size_t u = 0; u < nu; ++u, p += 8)
        r->loaded_user_ids[u] = (int64_t)get_le64(p);
    for (size_t i = 0; i < ni; ++i, p += 8)
        r->loaded_item_ids[i] = (int64_t)get_le64(p);
    int64_t dup;
    for (int items = 0; items < 2; ++items) {
        if (find_duplicate(items ? r->loaded_item_ids : r->loaded_user_ids, items ? ni : nu, &dup)) {
            snprintf(buf, sizeof buf, "%s: %s id %lld appears more than once: the file is damaged", path,
                     items ? "item" : "user", (long long)dup);
            return fail("cannot load the model", buf);
        }
    }
    return 0;
}

static int save_model(run *r, wl_model *m, const void *app, size_t app_size, uint64_t epochs, const char *why)
{
    wl_status st = wl_model_save(m, r->s.save, app, app_size);
    if (st != WL_SUCCESS)
        return fail("cannot save the model", wl_context_last_error(r->c));
    if (!r->s.quiet)
        printf("saved %s%s (%llu epochs done)\n", r->s.save, why, (unsigned long long)epochs);
    return 0;
}

/* Keep the model as it is now, as a model file in memory, for --save after a NaN. */
static int snapshot(run *r)
{
    size_t app_size;
    unsigned char *app = app_bytes(r, &app_size);
    wl_free(r->good);
    r->good = NULL;
    wl_status st = wl_model_save_memory(r->m, app, app_size, &r->good, &r->good_size);
    free(app);
    r->good_epochs = r->epochs_done;
    return st == WL_SUCCESS ? 0 : fail_wl(r, st, "cannot read the model back from the device");
}

/* Save the last good model: loaded back from memory into a second model, saved from there. */
static void save_good(run *r)
{
    wl_model *m = NULL;
    void *app = NULL;
    size_t app_size = 0;
    wl_status st = wl_model_load_memory(r->c, r->good, r->good_size, &m, &app, &app_size);
    if (st != WL_SUCCESS)
        fail_wl(r, st, "cannot save the model");
    else
        save_model(r, m, app, app_size, r->good_epochs, " (the last good model)");
    wl_free(app);
    wl_model_destroy(m);
}

static int load_data(run *r)
{
    settings *s = &r->s;
    char err[1024];
    td_read_report rep;
    if (s->data) {
        td_read_options o = {s->format, s->use_min_rating, (float)s->min_rating, s->skip_bad};
        double t0 = cli_now();
        if (td_read_file(s->data, &o, &r->train_in, &rep, err, sizeof err))
            return fail(err, NULL);
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
            if (td_read_file(s->test, &o, &r->test_in, &rep, err, sizeof err))
                return fail(err, NULL);
            if (!s->quiet) {
                printf("test: %s (%s): %zu lines", s->test, td_format_name(rep.format), rep.lines);
                if (s->skip_bad)
                    printf(", %zu bad lines skipped", rep.bad_lines);
                printf("\n");
            }
        }
    } else {
        if (td_synthetic(s->syn_users, s->syn_items, s->syn_interactions, s->seed, &r->train_in))
            return fail("out of memory for the synthetic set", NULL);
        if (!s->quiet)
            printf("data: synthetic, %u users x %u items, %zu interactions (seed %llu; --synthetic U,I,N)\n",
                   s->syn_users, s->syn_items, r->train_in.count, (unsigned long long)s->seed);
    }
    if (td_build(&r->train_in, s->test ? &r->test_in : NULL, s->test_fraction, s->seed, &r->d, err, sizeof err))
        return fail(err, NULL);
    td_interactions_free(&r->train_in);
    td_interactions_free(&r->test_in);
    if (!s->quiet) {
        printf("split: %u users, %u items, %zu train pairs, %zu test pairs", r->d.num_users, r->d.num_items,
               r->d.train_count, r->d.test_count);
        if (s->test)
            printf(" (--test)");
        else
            printf(" (%g per user held out, seed %llu)", s->test_fraction, (unsigned long long)s->seed);
        printf(", %zu test pairs dropped (user or item not in train)", r->d.test_dropped);
        if (r->d.test_in_train || r->d.test_duplicates)
            printf(", %zu test pairs also in train and %zu repeated left out", r->d.test_in_train,
                   r->d.test_duplicates);
        if (r->d.train_duplicates)
            printf(", %zu duplicate pairs merged", r->d.train_duplicates);
        printf("\n");
    }
    if (s->write_split) {
        char path[4096];
        if (make_dir(s->write_split))
            return fail("cannot create the folder", s->write_split);
        snprintf(path, sizeof path, "%s/train.tsv", s->write_split);
        if (write_pairs(path, &r->d, r->d.train_count, r->d.train_users, r->d.train_items))
            return fail("cannot write", path);
        snprintf(path, sizeof path, "%s/test.tsv", s->write_split);
        if (write_pairs(path, &r->d, r->d.test_count, r->d.test_users, r->d.test_items))
            return fail("cannot write", path);
        if (!s->quiet)
            printf("split written to %s/train.tsv and test.tsv\n", s->write_split);
    }
    return 0;
}

/* The model file's options against the flags: the file wins; an explicit different value is an error. */
static int check_loaded(run *r)
{
    settings *s = &r->s;
    const wl_model_options *o = &r->mo;
    char buf[256];
    if ((s->given[OPT_DIM] && s->dim != o->dim) || (s->given[OPT_OPTIMIZER] && s->optimizer != o->optimizer) ||
        (s->given[OPT_LR] && (float)s->lr != o->learning_rate) ||
        (s->given[OPT_L2] && ((float)s->l2 != o->l2_users || (float)s->l2 != o->l2_items)) ||
        (s->given[OPT_SEED] && s->seed != o->seed)) {
        snprintf(buf, sizeof buf, "the file has --dim %u --optimizer %s --lr %g --l2 %g --seed %llu", o->dim,
                 optimizer_name(o->optimizer), (double)o->learning_rate, (double)o->l2_users,
                 (unsigned long long)o->seed);
        fprintf(stderr, "%s: %s: options conflict with the model file (%s); leave them out to resume\n", cli_program,
                s->load, buf);
        return EXIT_USAGE;
    }
    s->seed = o->seed;
    s->dim = o->dim;
    s->optimizer = o->optimizer;
    s->lr = o->learning_rate;
    s->l2 = o->l2_users;
    return 0;
}

static int ids_match(const run *r)
{
    if (r->mo.num_users != r->d.num_users || r->mo.num_items != r->d.num_items)
        return 0;
    return !memcmp(r->loaded_user_ids, r->d.user_ids, r->d.num_users * sizeof(int64_t)) &&
           !memcmp(r->loaded_item_ids, r->d.item_ids, r->d.num_items * sizeof(int64_t));
}

static int create_context(run *r)
{
    wl_context_options co;
    wl_context_options_default(&co);
    co.device = r->s.device;
    wl_status st = wl_context_create(&co, &r->c);
    return st == WL_SUCCESS ? 0 : fail_wl(r, st, "cannot create the OpenCL context");
}

/* --load: the model from the file (on a new context), its progress and ids. */
static int load_model(run *r)
{
    void *app = NULL;
    size_t app_size = 0;
    wl_status st = wl_model_load(r->c, r->s.load, &r->m, &app, &app_size);
    if (st != WL_SUCCESS)
        return fail("cannot load the model", wl_context_last_error(r->c));
    r->have_loaded = 1;
    wl_model_get_options(r->m, &r->mo);
    const int rc = read_app_bytes(r, app, app_size);
    wl_free(app);
    return rc;
}

static int setup_model(run *r)
{
    settings *s = &r->s;
    wl_status st;
    if (r->have_loaded) {
        if (!ids_match(r)) {
            char buf[256];
            snprintf(buf, sizeof buf, "it has %u users and %u items, the data %u and %u (or other ids)",
                     r->mo.num_users, r->mo.num_items, r->d.num_users, r->d.num_items);
            fprintf(stderr, "%s: %s does not fit the data: %s; give the same --data, --min-rating and split\n",
                    cli_program, s->load, buf);
            return EXIT_FAIL;
        }
    } else {
        if (!r->c && create_context(r))
            return EXIT_FAIL;
        wl_model_options_default(&r->mo, r->d.num_users, r->d.num_items, s->dim);
        r->mo.seed = s->seed;
        r->mo.optimizer = s->optimizer;
        r->mo.learning_rate = (float)s->lr;
        r->mo.l2_users = r->mo.l2_items = (float)s->l2;
        st = wl_model_create(r->c, &r->mo, &r->m);
        if (st != WL_SUCCESS)
            return fail_wl(r, st, "cannot create the model");
    }
    /* The training pairs are the known positives (sorted by user, item). */
    uint64_t *indptr = calloc((size_t)r->d.num_users + 1, sizeof *indptr);
    if (!indptr)
        return fail("out of memory", NULL);
    for (size_t j = 0; j < r->d.train_count; ++j)
        ++indptr[r->d.train_users[j] + 1];
    for (uint32_t u = 0; u < r->d.num_users; ++u)
        indptr[u + 1] += indptr[u];
    st = wl_model_set_known(r->m, indptr, r->d.train_items);
    free(indptr);
    if (st != WL_SUCCESS)
        return fail_wl(r, st, "cannot set the known positives");
    /* The test pairs (sorted by user, item) as CSR, for wl_model_evaluate. */
    r->test_ptr = calloc((size_t)r->d.num_users + 1, sizeof *r->test_ptr);
    if (!r->test_ptr)
        return fail("out of memory", NULL);
    for (size_t j = 0; j < r->d.test_count; ++j)
        ++r->test_ptr[r->d.test_users[j] + 1];
    for (uint32_t u = 0; u < r->d.num_users; ++u)
        r->test_ptr[u + 1] += r->test_ptr[u];
    if (!s->quiet)
        printf("model: dim %u, %s, lr %g, l2 %g, %u negatives%s, batch %u, seed %llu; device %s\n", r->mo.dim,
               optimizer_name(r->mo.optimizer), (double)r->mo.learning_rate, (double)r->mo.l2_users, s->negatives,
               s->shared ? " (shared)" : "", s->batch, (unsigned long long)r->mo.seed, wl_context_device_name(r->c));
    if (!s->quiet && r->have_loaded)
        printf("resumed %s: %llu epochs done%s\n", s->load, (unsigned long long)r->epochs_done,
               r->batches_done ? " (and part of the next)" : "");
    return 0;
}

/* LightFM's metrics on the test pairs, the training pairs (the known positives) left out of the ranking. */
static wl_status evaluate_model(run *r, wl_metrics *out)
{
    return wl_model_evaluate(r->m, r->test_ptr, r->d.test_items, r->s.k, 1, out, NULL);
}

static int evaluate(run *r, epoch_record *rec, double positives_per_second)
{
    wl_status st = evaluate_model(r, &rec->m);
    if (st != WL_SUCCESS)
        return fail_wl(r, st, "evaluation failed");
    rec->evaluated = 1;
    if (r->metrics)
        write_metrics_line(r->metrics, rec, positives_per_second);
    return 0;
}

/* Train s.epochs epochs (finishing a partial one first). 0, EXIT_FAIL, or EXIT_INTERRUPTED. */
static int train(run *r)
{
    settings *s = &r->s;
    const size_t n = r->d.train_count;
    if (s->epochs == 0 || n == 0)
        return 0;
    cl_int err;
    cl_context ctx = wl_context_cl_context(r->c);
    cl_command_queue q = wl_context_queue(r->c);
    r->users = cli_alloc(n * sizeof *r->users);
    r->items = cli_alloc(n * sizeof *r->items);
    r->users_buf = clCreateBuffer(ctx, CL_MEM_READ_ONLY, n * sizeof(int32_t), NULL, &err);
    if (err != CL_SUCCESS)
        return fail("cannot allocate the interactions on the device", "clCreateBuffer failed");
    r->items_buf = clCreateBuffer(ctx, CL_MEM_READ_ONLY, n * sizeof(int32_t), NULL, &err);
    if (err != CL_SUCCESS)
        return fail("cannot allocate the interactions on the device", "clCreateBuffer failed");
    r->history = cli_alloc(s->epochs * sizeof *r->history);

    wl_loss_options lo;
    wl_loss_options_default(&lo, r->d.num_items);
    lo.reduction = WL_REDUCE_SUM;
    const size_t batches = (n + s->batch - 1) / s->batch;
    const int tty = !s->quiet && isatty(1);
    const uint64_t last = r->epochs_done + s->epochs;

    if (s->save && snapshot(r))
        return EXIT_FAIL;
    for (uint64_t ep = 0; ep < s->epochs; ++ep) {
        const uint64_t e = r->epochs_done;
        const double t0 = cli_now();
        shuffle_epoch(&r->d, r->mo.seed, e, r->users, r->items);
        err = clEnqueueWriteBuffer(q, r->users_buf, CL_TRUE, 0, n * sizeof(int32_t), r->users, 0, NULL, NULL);
        if (err == CL_SUCCESS)
            err = clEnqueueWriteBuffer(q, r->items_buf, CL_TRUE, 0, n * sizeof(int32_t), r->items, 0, NULL, NULL);
        if (err != CL_SUCCESS)
            return fail("cannot upload the interactions", "clEnqueueWriteBuffer failed");
        double loss = 0, last_draw = t0;
        size_t stopped_at = batches;
        for (size_t b = r->batches_done; b < batches; ++b) {
            wl_batch_cl bc = {0};
            bc.offset = b * s->batch;
            bc.rows = n - bc.offset < s->batch ? n - bc.offset : s->batch;
            bc.users = r->users_buf;
            bc.positives = r->items_buf;
            bc.negatives = s->negatives;
            bc.shared_negatives = s->shared;
            bc.sample_key = (e << 32) + b;
            wl_step_result res;
            wl_status st = wl_model_step_cl(r->m, &lo, &bc, &res, 0, NULL, NULL);
            if (st != WL_SUCCESS)
                return fail_wl(r, st, "training step failed");
            if (!isfinite(res.loss)) {
                if (tty)
                    printf("\n");
                fprintf(stderr,
                        "%s: the loss is %s at epoch %llu, batch %zu: training diverged; try a lower --lr (now %g)\n",
                        cli_program, isnan(res.loss) ? "NaN" : "infinite", (unsigned long long)e + 1, b,
                        (double)r->mo.learning_rate);
                if (s->save && r->good)
                    save_good(r);
                return EXIT_FAIL;
            }
            loss += res.loss;
            r->batches_done = b + 1;
            if (interrupted) {
                stopped_at = b + 1;
                break;
            }
            if (tty) {
                const double now = cli_now();
                if (now - last_draw > 0.2) {
                    last_draw = now;
                    const size_t done = (b + 1) * s->batch < n ? (b + 1) * s->batch : n;
                    progress(e + 1, last, done, n, now - t0, loss / (double)done);
                }
            }
        }
        clFinish(q);
        const double seconds = cli_now() - t0;
        if (stopped_at < batches) {
            if (tty)
                printf("\n");
            fprintf(stderr, "%s: interrupted in epoch %llu after batch %zu of %zu\n", cli_program,
                    (unsigned long long)e + 1, stopped_at, batches);
            return EXIT_INTERRUPTED;
        }
        r->epochs_done = e + 1;
        r->batches_done = 0;
        epoch_record *rec = &r->history[r->history_count++];
        memset(rec, 0, sizeof *rec);
        rec->epoch = r->epochs_done;
        rec->loss = loss / (double)n;
        rec->seconds = seconds;
        const double pps = (double)n / seconds;
        if (tty) {
            progress(e + 1, last, n, n, seconds, rec->loss);
            printf("\r\033[K");
        }
        if ((s->eval_every && r->epochs_done % s->eval_every == 0) || ep + 1 == s->epochs) {
            if (evaluate(r, rec, pps))
                return EXIT_FAIL;
        }
        if (!s->quiet) {
            printf("epoch %3llu  loss %.4f  %.2f s  %.0f pos/s", (unsigned long long)rec->epoch, rec->loss, seconds,
                   pps);
            if (rec->evaluated)
                printf("  p@%u %.4f  r@%u %.4f  auc %.4f  mrr %.4f", s->k, rec->m.precision_at_k, s->k,
                       rec->m.recall_at_k, rec->m.auc, rec->m.mrr);
            printf("\n");
            fflush(stdout);
        }
        if (s->save && snapshot(r))
            return EXIT_FAIL;
    }
    return 0;
}

static int recommend(run *r)
{
    settings *s = &r->s;
    char *end;
    errno = 0;
    const long long id = strtoll(s->recommend, &end, 10);
    const int32_t u = errno || *end || !*s->recommend ? -1 : td_user_index(&r->d, id);
    if (u < 0) {
        fprintf(stderr, "%s: --recommend %s: no such user in the training data\n", cli_program, s->recommend);
        return EXIT_FAIL;
    }
    const uint32_t k = s->k < r->d.num_items ? s->k : r->d.num_items;
    int32_t *items = cli_alloc(k * sizeof *items);
    float *scores = cli_alloc(k * sizeof *scores);
    wl_status st = wl_model_recommend(r->m, 1, &u, k, 1, items, scores);
    if (st != WL_SUCCESS) {
        free(items);
        free(scores);
        return fail_wl(r, st, "recommend failed");
    }
    printf("top %u for user %s (training items left out):\n", k, s->recommend);
    for (uint32_t j = 0; j < k && items[j] >= 0; ++j)
        printf("%3u  item %lld  score %.4f\n", j + 1, (long long)r->d.item_ids[items[j]], (double)scores[j]);
    free(items);
    free(scores);
    return 0;
}

static void cleanup(run *r)
{
    if (r->users_buf)
        clReleaseMemObject(r->users_buf);
    if (r->items_buf)
        clReleaseMemObject(r->items_buf);
    wl_model_destroy(r->m);
    wl_context_destroy(r->c);
    if (r->metrics)
        fclose(r->metrics);
    wl_free(r->good);
    free(r->loaded_user_ids);
    free(r->loaded_item_ids);
    td_dataset_free(&r->d);
    td_interactions_free(&r->train_in);
    td_interactions_free(&r->test_in);
    free(r->history);
    free(r->test_ptr);
    free(r->users);
    free(r->items);
}

static int run_all(run *r)
{
    settings *s = &r->s;
    char err[1024];
    int rc;
    if (s->load) {
        if (create_context(r) || load_model(r))
            return EXIT_FAIL;
        if ((rc = check_loaded(r)))
            return rc;
    }
    if ((rc = load_data(r)) || (rc = setup_model(r)))
        return rc;
    if (s->metrics && !(r->metrics = fopen(s->metrics, "a")))
        return fail("cannot open", s->metrics);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    const double t0 = cli_now();
    const int trained = train(r);
    if (trained == EXIT_FAIL)
        return EXIT_FAIL;
    const double seconds = cli_now() - t0;

    rc = trained;
    if (s->save) {
        size_t app_size;
        unsigned char *app = app_bytes(r, &app_size);
        if (save_model(r, r->m, app, app_size, r->epochs_done, trained == EXIT_INTERRUPTED ? " (interrupted)" : ""))
            rc = EXIT_FAIL;
        free(app);
    }
    if (s->export_dir) {
        if (npy_export_model(s->export_dir, r->m, r->d.user_ids, r->d.item_ids, err, sizeof err))
            rc = fail("cannot export", err);
        else if (!s->quiet)
            printf("exported the tables and ids to %s/*.npy\n", s->export_dir);
    }
    if (trained == EXIT_INTERRUPTED)
        return rc;

    /* The final evaluation: the last epoch's, or the loaded model's when no epoch ran. */
    wl_metrics final;
    if (r->history_count && r->history[r->history_count - 1].evaluated) {
        final = r->history[r->history_count - 1].m;
    } else {
        wl_status st = evaluate_model(r, &final);
        if (st != WL_SUCCESS)
            return fail_wl(r, st, "evaluation failed");
        if (r->metrics && !r->history_count) {
            epoch_record rec = {.epoch = r->epochs_done, .loss = NAN, .seconds = 0, .evaluated = 1, .m = final};
            write_metrics_line(r->metrics, &rec, 0);
        }
    }
    if (r->history_count) {
        double sum = 0;
        for (size_t i = 0; i < r->history_count; ++i)
            sum += r->history[i].seconds;
        if (!s->quiet)
            printf("trained %zu epochs in %.2f s (%.3f s per epoch, %.0f positives/s; %.2f s with evaluation)\n",
                   r->history_count, sum, sum / (double)r->history_count,
                   (double)r->d.train_count * (double)r->history_count / sum, seconds);
    }
    print_metrics(s->quiet ? "" : "test: ", &final);
    if (s->plot) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s: %u users, %u items, %zu train pairs; dim %u, %u negatives, %s, lr %g",
                 s->data ? s->data : "synthetic", r->d.num_users, r->d.num_items, r->d.train_count, r->mo.dim,
                 s->negatives, optimizer_name(r->mo.optimizer), (double)r->mo.learning_rate);
        if (write_plot(s->plot, r->history, r->history_count, s->k, sub))
            rc = fail("cannot write", s->plot);
        else if (!s->quiet)
            printf("plot written to %s\n", s->plot);
    }
    if (s->recommend && recommend(r))
        rc = EXIT_FAIL;
    return rc;
}

int main(int argc, char **argv)
{
    cli_init(argc > 0 ? argv[0] : NULL);
    run r;
    memset(&r, 0, sizeof r);
    int rc = parse_args(argc, argv, &r.s);
    if (rc)
        return rc;
    rc = run_all(&r);
    fflush(stdout);
    cleanup(&r);
    return rc;
}
