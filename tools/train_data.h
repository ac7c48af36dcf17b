/*
 * warploss-train's data: interaction files (MovieLens ratings.csv, MovieLens
 * 100k u.data/ua.base, plain user item [weight] CSV/TSV), the built-in
 * synthetic set, dense ids and the train/test split.
 */
#ifndef WL_TRAIN_DATA_H
#define WL_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

typedef enum td_format {
    TD_FORMAT_AUTO = 0,      /* detect from the first lines */
    TD_FORMAT_MOVIELENS_CSV, /* userId,movieId,rating,timestamp with a header line */
    TD_FORMAT_MOVIELENS_TSV, /* user<TAB>item<TAB>rating<TAB>timestamp, no header */
    TD_FORMAT_CSV,           /* user,item[,weight], an optional header line */
    TD_FORMAT_TSV            /* user<TAB>item[<TAB>weight], an optional header line */
} td_format;

/* The tools' random numbers, the same on every platform: the splitmix64
 * finaliser of z, and the next value of the splitmix64 sequence in *state. */
uint64_t td_mix64(uint64_t z);
uint64_t td_splitmix64(uint64_t *state);

/* printf into err[err_size] (nothing when err is NULL or err_size 0): the tools' error details. */
void td_set_err(char *err, size_t err_size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "movielens-csv", ...; NULL for TD_FORMAT_AUTO. td_format_parse: -1 if unknown. */
const char *td_format_name(td_format f);
int td_format_parse(const char *name, td_format *out);

/*
 * What the file formats share (the feature readers of train_features.c too).
 * td_file_open: a file's bytes, mapped (a regular file) or read whole (a pipe);
 * 0, or -1 with err = "FILE: why". td_next_line: the next line from *pos as
 * [*ls, *le), without its line end and a CR before it; 0 at the end.
 * td_line_excerpt: a line's start for a message (at most 40 bytes, others as
 * "...", non-printable bytes as '?'). td_parse_i64 and td_parse_number: an
 * integer (optional sign, digits) or a decimal number (also nan, inf) at p,
 * locale-free; the end, or NULL with *why ("is not a number", ...).
 */
typedef struct td_file_bytes {
    const char *data; /* never NULL; not NUL-terminated */
    size_t size;
    void *map;    /* mmap'd, or NULL */
    char *buffer; /* read, or NULL */
} td_file_bytes;
int td_file_open(const char *path, td_file_bytes *out, char *err, size_t err_size);
void td_file_close(td_file_bytes *f);
int td_next_line(const char **pos, const char *end, const char **ls, const char **le);
void td_line_excerpt(const char *p, const char *e, char out[48]);
const char *td_parse_i64(const char *p, const char *e, int64_t *v, const char **why);
const char *td_parse_number(const char *p, const char *e, double *v, const char **why);

/* Interactions with their original ids, in file order. */
typedef struct td_interactions {
    size_t count;
    int64_t *users, *items; /* original ids (any int64) */
    float *ratings;         /* the rating or weight; 1 where the format has none */
} td_interactions;

typedef struct td_read_options {
    td_format format;   /* TD_FORMAT_AUTO: detect */
    int use_min_rating; /* keep only ratings >= min_rating */
    float min_rating;
    int skip_bad_lines; /* count and skip malformed lines instead of failing */
    int allow_empty;    /* a file with no interaction left is read as none (count 0, NULL arrays), not an error */
} td_read_options;

typedef struct td_read_report {
    td_format format;            /* the format read (detected or given) */
    size_t lines;                /* data lines read (header and empty lines not counted) */
    size_t bad_lines;            /* malformed lines skipped (skip_bad_lines) */
    size_t below_min;            /* lines dropped by min_rating */
    size_t first_bad;            /* line number of the first skipped line, 0 if none */
    char first_bad_message[160]; /* what was wrong with it ("" if none), without the file name */
} td_read_report;

/*
 * Read an interactions file (name is used in messages). 0 on success; -1 with
 * err = "FILE:LINE: what was wrong" for a malformed line (unless
 * skip_bad_lines), "FILE: ..." for an empty file, an unreadable file, an
 * undetectable format. Handles CRLF line ends and a UTF-8 byte order mark;
 * empty (or blank) lines are skipped. A file with no interaction left (empty,
 * only a header, every line skipped or below min_rating) is an error,
 * "FILE: no interactions", unless allow_empty (one part of several). *out is overwritten first (old contents are not
 * freed) and left empty on failure. report may be NULL; on failure it says
 * how far the read got. td_read_buffer does the same on memory (tests,
 * fuzzing); data need not be NUL-terminated. err may be NULL.
 */
int td_read_file(const char *path, const td_read_options *o, td_interactions *out, td_read_report *report, char *err,
                 size_t err_size);
int td_read_buffer(const char *name, const char *data, size_t size, const td_read_options *o, td_interactions *out,
                   td_read_report *report, char *err, size_t err_size);
void td_interactions_free(td_interactions *x);

/* Concatenate pieces[0..n) in order into *out (overwritten first): 0, or -1 out of memory / none. */
int td_interactions_concat(const td_interactions *pieces, size_t n, td_interactions *out);

/*
 * The built-in synthetic set, deterministic from seed: a planted low-rank
 * taste model (each user and item a point in a small latent space), item
 * popularity with a long tail, each user drawing interactions from the items
 * it likes; `interactions` in all (about: every user has at least 2, or
 * `items` if fewer), no duplicate (user, item). User ids are 0..users-1, item
 * ids 0..items-1, every rating 1. Costs O(users x items). 0, or -1 (users or
 * items 0, out of memory).
 */
int td_synthetic(uint32_t users, uint32_t items, size_t interactions, uint64_t seed, td_interactions *out);

/* Dense ids and the split: what the trainer trains and evaluates on. */
typedef struct td_dataset {
    uint32_t num_users, num_items;
    int64_t *user_ids, *item_ids; /* the original id of each dense index */
    size_t train_count;           /* training pairs, unique, sorted by (user, item) */
    int32_t *train_users, *train_items;
    size_t test_count; /* test pairs, unique, not in train, sorted by (user, item) */
    int32_t *test_users, *test_items;
    /* A test file's pairs left out, each counted once, in this order: */
    size_t test_dropped;     /* user or item not in the training data */
    size_t test_in_train;    /* the pair is also a training pair */
    size_t test_duplicates;  /* repeated (user, item) test pairs merged */
    size_t train_duplicates; /* repeated (user, item) pairs merged */
    /* td_build_cold: items [cold_first, cold_first + num_cold_items) are the cold items (none: 0, 0), */
    uint32_t cold_first, num_cold_items;
    size_t cold_count; /* and their pairs, unique, sorted by (user, item) */
    int32_t *cold_users, *cold_items;
    size_t cold_dropped;  /* cold pairs left out: the user has no training pair */
    float *train_weights; /* td_train_weights: [train_count], or NULL */
} td_dataset;

/*
 * Build the dataset. Dense ids come from the training interactions (in order
 * of first appearance). test: a separate test file's interactions, or NULL:
 * then a seeded hold-out per user of floor(test_fraction * n_u) of each user's
 * n_u unique items (chosen with seed; 0 <= test_fraction < 1; the test
 * pairs' items keep their dense ids even if no training pair is left with
 * them). 0, or -1 with err (no interactions, more than 2^31 - 1 users or
 * items, a bad test_fraction, out of memory). *out is overwritten first.
 */
int td_build(const td_interactions *train, const td_interactions *test, double test_fraction, uint64_t seed,
             td_dataset *out, char *err, size_t err_size);
void td_dataset_free(td_dataset *d);

/*
 * td_build with cold items (warploss-train --cold-items): floor(cold_fraction
 * * n) of the n distinct items of train (in order of first appearance),
 * chosen with seed, are held out with all their pairs (of train and of test)
 * as the cold test pairs; td_build splits the rest as it would. The warm
 * items keep dense indices [0, cold_first), the cold ones follow in order of
 * first appearance; a cold pair whose user has no training pair is left out
 * (cold_dropped). 0 < cold_fraction < 1, and a warm item must be left. 0, or
 * -1 with err.
 */
int td_build_cold(const td_interactions *train, const td_interactions *test, double test_fraction, double cold_fraction,
                  uint64_t seed, td_dataset *out, char *err, size_t err_size);

/*
 * The training pairs' sample weights (warploss-train --weights): each pair's
 * rating or weight in train (the interactions d was built from), summed over
 * repeated pairs. A negative weight is refused: 0, or -1 with err naming the
 * pair.
 */
int td_train_weights(td_dataset *d, const td_interactions *train, char *err, size_t err_size);

/* The dense index of an original user id, -1 if absent (a linear search: for one look-up, not a loop). */
int32_t td_user_index(const td_dataset *d, int64_t user_id);

#endif
