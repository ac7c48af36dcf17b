/*
 * warploss-bench: how fast wl_loss_cl runs (bench_loss.c), with --model one
 * step of the embedding model (bench_model.c), with --model --features one
 * step of the hybrid model against the model without features
 * (bench_features.c), with --evaluate an evaluation
 * (bench_eval.c), as ratios against what the same device and the same host
 * do in the same run; what they share is bench.h. This file is the command line: the options and --help, the
 * defaults, the refusal of one benchmark's options with the other, and main.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "warploss.h"

/* ------------------------------------------------------------ arguments */

enum {
    OPT_DEVICE,
    OPT_SHAPES,
    OPT_REGIMES,
    OPT_REPEAT,
    OPT_WARMUP,
    OPT_OUTPUTS,
    OPT_JSON,
    OPT_MODEL,
    OPT_EVALUATE,
    OPT_ROWS,
    OPT_CANDIDATES,
    OPT_DIM,
    OPT_USERS,
    OPT_ITEMS,
    OPT_MODES,
    OPT_SCATTERS,
    OPT_FEATURES,
    OPT_HELP
};

static const cli_option options[] = {
    [OPT_DEVICE] = {"device", required_argument, "SPEC",
                    "gpu, cpu, accelerator, P:D or part of a name (default: $WARPLOSS_DEVICE, else best)"},
    [OPT_SHAPES] = {"shapes", required_argument, "RxN,...",
                    "rows x negatives (default 1024x100,4096x1024,16384x256,65536x64,16384x1024)"},
    [OPT_REGIMES] = {"regimes", required_argument, "LIST",
                     "where the first offender is: early (index 0), deep (the middle), none\n(default: all three)"},
    [OPT_REPEAT] = {"repeat", required_argument, "N",
                    "timed calls per measurement, the median is reported (default 21)"},
    [OPT_WARMUP] = {"warmup", required_argument, "N", "untimed calls before them (default 3)"},
    [OPT_OUTPUTS] = {"outputs", required_argument, "WHAT",
                     "what the timed call asks for besides the loss: offender (default, the\n"
                     "common training case), loss (nothing else), all (also both gradients)"},
    [OPT_JSON] = {"json", no_argument, NULL, "one JSON document instead of the table"},
    [OPT_MODEL] = {"model", no_argument, NULL,
                   "time a step of the embedding model instead (wl_model_step_cl, wl_model_step and\n"
                   "the C reference step) on a synthetic model; --repeat defaults to 11, --warmup to 2"},
    [OPT_EVALUATE] = {"evaluate", no_argument, NULL,
                      "time wl_model_evaluate instead, against wl_model_rank on every pair and a\n"
                      "training epoch, on warploss-train's default shape and MovieLens 100k's;\n"
                      "--repeat defaults to 5, --warmup to 1"},
    [OPT_ROWS] = {"rows", required_argument, "N", "--model: rows per batch (default 4096)"},
    [OPT_CANDIDATES] = {"candidates", required_argument, "N", "--model: candidates per row (default 256)"},
    [OPT_DIM] = {"dim", required_argument, "N", "--model: embedding dimension (default 64)"},
    [OPT_USERS] = {"users", required_argument, "N", "--model: users (default 100000)"},
    [OPT_ITEMS] = {"items", required_argument, "N", "--model: items (default 100000)"},
    [OPT_MODES] = {"modes", required_argument, "LIST",
                   "--model: candidate modes, per-row (own random ids), shared (one list),\n"
                   "sampled (on the device) (default: all three)"},
    [OPT_SCATTERS] = {"scatters", required_argument, "LIST",
                      "--model: the gradient scatters to time, atomic64 (needs cl_khr_int64_base_atomics)\n"
                      "and atomic32; with both, each row is timed with each in turn and their ratio\n"
                      "printed (default: the device's own)"},
    [OPT_FEATURES] = {"features", optional_argument, "K,...",
                      "--model: time the hybrid model instead, items with K features each (their own\n"
                      "and K - 1 of 64 shared ones, weights 1/K; K in 1..65), users with their own,\n"
                      "against the model without features in the same run; sampled candidates only;\n"
                      "--repeat defaults to 7, --warmup to 1 (default K: 1,4,32)"},
    [OPT_HELP] = {"help", no_argument, NULL, "this text"},
    {NULL, 0, NULL, NULL},
};

static int parse_shapes(settings *s, const char *text)
{
    s->shapes = 0;
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        unsigned long long r = strtoull(p, &end, 10);
        if (end == p || (*end != 'x' && *end != 'X') || errno)
            return -1;
        p = end + 1;
        unsigned long long n = strtoull(p, &end, 10);
        if (end == p || errno || (*end && *end != ','))
            return -1;
        if (s->shapes == MAX_SHAPES || r == 0)
            return -1;
        s->rows[s->shapes] = (size_t)r;
        s->negatives[s->shapes] = (size_t)n;
        s->shapes++;
        p = *end ? end + 1 : end;
    }
    return s->shapes ? 0 : -1;
}

/* The index of name in names[0..2], or -1. */
static int lookup(const char *name, const char *const *names, int count)
{
    for (int i = 0; i < count; ++i)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

/* A comma-separated list of names (each one of names[0 .. count)) into the flags chosen[count]; -1 if a name is
 * unknown or the list is empty. */
static int parse_set(const char *text, const char *const *names, int count, int *chosen)
{
    memset(chosen, 0, (size_t)count * sizeof *chosen);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    int any = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        const int k = lookup(tok, names, count);
        if (k < 0)
            return -1;
        chosen[k] = any = 1;
    }
    return any ? 0 : -1;
}

static int parse_count(const char *text, int min, int *out)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < min || v > 100000)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_outputs(const char *text, outputs *out)
{
    static const char *const names[3] = {[OUT_LOSS] = "loss", [OUT_LOSS_OFFENDER] = "offender", [OUT_ALL] = "all"};
    const int i = lookup(text, names, 3);
    if (i >= 0)
        *out = (outputs)i;
    return i >= 0 ? 0 : -1;
}

/* An unsigned count in [min, max]. */
static int parse_size(const char *text, unsigned long long min, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    const unsigned long long v = strtoull(text, &end, 10);
    if (end == text || *end || errno || text[0] == '-' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_u32(const char *text, unsigned long long min, uint32_t *out)
{
    unsigned long long v;
    if (parse_size(text, min, INT32_MAX, &v))
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* A comma-separated list of counts in [min, max], at most MAX_FEATURE_RUNS, into out; -1 if bad or empty. */
static int parse_counts(const char *text, unsigned long long min, unsigned long long max, uint32_t *out, int *n)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    *n = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        unsigned long long v;
        if (*n == MAX_FEATURE_RUNS || parse_size(tok, min, max, &v))
            return -1;
        out[(*n)++] = (uint32_t)v;
    }
    return *n ? 0 : -1;
}

/* 0 to go on, or 1 to exit with *exit_status: 0 after --help, 2 after a bad argument (with a message). */
static int parse_arguments(int argc, char **argv, settings *s, int *exit_status)
{
    for (;;) {
        const char *value;
        int word, bad = 0;
        const int row = cli_next_option(argc, argv, options, &value, &word);
        if (row == CLI_END && word == argc)
            return 0;
        unsigned long long v = 0;
        if (row == OPT_SHAPES || row == OPT_REGIMES || row == OPT_OUTPUTS)
            s->loss_only = word;
        if (row >= OPT_ROWS && row <= OPT_FEATURES)
            s->model_only = word;
        if (row == OPT_MODES || row == OPT_SCATTERS)
            s->modes_word = word;
        s->repeat_set |= row == OPT_REPEAT;
        s->warmup_set |= row == OPT_WARMUP;
        switch (row) {
        case OPT_DEVICE: s->device = value; break;
        case OPT_SHAPES: bad = parse_shapes(s, value); break;
        case OPT_REGIMES: bad = parse_set(value, regime_names, 3, s->regimes); break;
        case OPT_REPEAT: bad = parse_count(value, 1, &s->repeat); break;
        case OPT_WARMUP: bad = parse_count(value, 0, &s->warmup); break;
        case OPT_OUTPUTS: bad = parse_outputs(value, &s->outputs); break;
        case OPT_JSON: s->json = 1; break;
        case OPT_MODEL: s->model = 1; break;
        case OPT_EVALUATE: s->evaluate = 1; break;
        case OPT_ROWS:
            bad = parse_size(value, 1, (unsigned long long)1 << 26, &v);
            s->model_rows = (size_t)v;
            break;
        case OPT_CANDIDATES:
            bad = parse_size(value, 1, (unsigned long long)1 << 20, &v);
            s->candidates = (size_t)v;
            break;
        case OPT_DIM: bad = parse_u32(value, 1, &s->dim); break;
        case OPT_USERS: bad = parse_u32(value, 1, &s->users); break;
        case OPT_ITEMS: bad = parse_u32(value, 2, &s->items); break;
        case OPT_MODES: bad = parse_set(value, cand_mode_names, 3, s->modes); break;
        case OPT_SCATTERS: bad = parse_set(value, scatter_names, 2, s->scatters); break;
        case OPT_FEATURES:
            bad = parse_counts(value ? value : "1,4,32", 1, FEATURE_GENRES + 1, s->features, &s->feature_runs);
            break;
        case OPT_HELP:
            cli_print_help(stdout, options, NULL, NULL);
            *exit_status = 0;
            return 1;
        default: bad = 1; /* unknown, a missing value, or a stray word */
        }
        if (bad) {
            const char *next = word + 1 < argc ? argv[word + 1] : NULL;
            fprintf(stderr, "%s: bad argument %s%s%s\n", cli_program, argv[word], next ? " " : "", next ? next : "");
            cli_print_help(stderr, options, NULL, NULL);
            *exit_status = 2;
            return 1;
        }
    }
}

int main(int argc, char **argv)
{
    cli_init(argc > 0 ? argv[0] : NULL);
    settings s;
    memset(&s, 0, sizeof s);
    s.repeat = 21;
    s.warmup = 3;
    s.outputs = OUT_LOSS_OFFENDER;
    s.regimes[0] = s.regimes[1] = s.regimes[2] = 1;
    parse_shapes(&s, "1024x100,4096x1024,16384x256,65536x64,16384x1024");
    s.users = s.items = 100000;
    s.dim = 64;
    s.model_rows = 4096;
    s.candidates = 256;
    s.modes[0] = s.modes[1] = s.modes[2] = 1;
    int exit_status = 0;
    if (parse_arguments(argc, argv, &s, &exit_status))
        return exit_status;
    if (s.evaluate) {
        const int other = s.model ? 1 : s.loss_only ? s.loss_only : s.model_only;
        if (other) {
            fprintf(stderr, "%s: %s is not an option of --evaluate\n", cli_program, s.model ? "--model" : argv[other]);
            cli_print_help(stderr, options, NULL, NULL);
            return 2;
        }
        if (!s.repeat_set)
            s.repeat = 5;
        if (!s.warmup_set)
            s.warmup = 1;
        return run_evaluate(&s);
    }
    /* the options of one benchmark are refused with the other's */
    const int misplaced = s.model ? s.loss_only : s.model_only;
    if (misplaced) {
        fprintf(stderr, "%s: %s is %s\n", cli_program, argv[misplaced],
                s.model ? "not an option of --model" : "an option of --model only");
        cli_print_help(stderr, options, NULL, NULL);
        return 2;
    }
    if (s.model) {
        /* --features: fewer repeats, since its model with 32 features per item steps in about 0.6 s on PoCL */
        if (!s.repeat_set)
            s.repeat = s.feature_runs ? 7 : 11;
        if (!s.warmup_set)
            s.warmup = s.feature_runs ? 1 : 2;
        if (s.feature_runs && s.modes_word) {
            fprintf(stderr, "%s: %s is not an option of --features\n", cli_program, argv[s.modes_word]);
            cli_print_help(stderr, options, NULL, NULL);
            return 2;
        }
        return s.feature_runs ? run_features(&s) : run_model(&s);
    }

    return run_loss(&s);
}
