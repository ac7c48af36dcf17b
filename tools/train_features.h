/*
 * warploss-train's feature files (train_features.c): MovieLens movies.csv,
 * MovieLens 100k u.item, MovieLens tags.csv and plain id,feature[,weight]
 * CSV/TSV, read into (id, feature, weight) entries with namespaced feature
 * names; and the builder that turns them, with the dense id map, into the
 * CSR matrix wl_model_set_features takes (README.md, "warploss-train").
 */
#ifndef WL_TRAIN_FEATURES_H
#define WL_TRAIN_FEATURES_H

#include <stddef.h>
#include <stdint.h>

typedef enum tf_format {
    TF_FORMAT_AUTO = 0, /* detect from the first line */
    TF_FORMAT_MOVIES,   /* movielens-movies: movieId,title,genres (genres split on '|') */
    TF_FORMAT_UITEM,    /* movielens-item: u.item, id|title|release|video release|url|19 genre flags */
    TF_FORMAT_TAGS,     /* movielens-tags: userId,movieId,tag,timestamp */
    TF_FORMAT_CSV,      /* id,feature[,weight], an optional header line */
    TF_FORMAT_TSV       /* id<TAB>feature[<TAB>weight], an optional header line */
} tf_format;

/* Which rows a file describes: items (--item-features) or users (--user-features). */
typedef enum tf_side { TF_ITEMS = 0, TF_USERS = 1 } tf_side;

/* "movielens-movies", ...; NULL for TF_FORMAT_AUTO. tf_format_parse: "auto" too; -1 if unknown. */
const char *tf_format_name(tf_format f);
int tf_format_parse(const char *name, tf_format *out);

/* One feature file as read: its rows (the ids it names) and entries, unmerged. */
typedef struct tf_file {
    tf_format format; /* the format read (detected or given) */
    tf_side side;
    size_t lines;        /* data lines (header and blank lines not counted) */
    size_t empty_tags;   /* movielens-tags lines with an empty tag (the id still counts as a row) */
    size_t rows;         /* distinct ids, in order of first appearance */
    int64_t *ids;        /* [rows] original ids */
    char **titles;       /* [rows] (an entry NULL: no title), or NULL: the format has none */
    size_t count;        /* entries, in file order, repeats not merged */
    uint32_t *entry_row; /* [count] index into ids */
    uint32_t *entry_feature;
    float *entry_weight;
    size_t num_features;
    char **names; /* [num_features] distinct, namespaced: "genre:Comedy", "tag:funny", a plain file's as given */
} tf_file;

/*
 * Read a feature file describing `side` (name is used in messages). Formats:
 * - movielens-movies (detected by its header movieId,title,genres): one row
 *   per movie, its title kept, feature "genre:G" for each G of the genres
 *   split on '|' ("(no genres listed)" and empty pieces give none).
 * - movielens-item (detected by 24 '|'-separated fields): u.item; the title
 *   kept (bytes as they are: latin-1), "genre:G" for each flag that is 1
 *   (unknown, Action, ..., Western); a flag must be 0 or 1.
 * - movielens-tags (detected by its header userId,movieId,tag,timestamp):
 *   the row is the movie (side TF_ITEMS) or the user who tagged (TF_USERS),
 *   the feature "tag:T" with T trimmed and ASCII-lowercased, weight 1 a line
 *   (tf_build sums repeats: the weight is the times the tag was applied); an
 *   empty tag is counted in empty_tags.
 * - csv or tsv (else, by the first line's separator): id,feature[,weight],
 *   the feature name as given (trimmed; it must not be empty nor start with
 *   "item:" or "user:", the identity features' names), weight a finite float,
 *   1 if missing.
 * Comma-separated fields may be quoted ("a, b", "" for a quote; a quoted
 * field ends on its line). The first non-blank line is a header when its
 * first field is not an integer. movielens-movies and movielens-item
 * describe items only. CRLF line ends, a UTF-8 byte order mark and blank
 * lines are fine. 0, or -1 with err = "FILE:LINE: what was wrong
 * (\"line start\")" or "FILE: ..." (empty, only a header, undetectable
 * format, wrong side, out of memory, unreadable); *out is empty on failure.
 * tf_read_buffer: the same on memory, data need not be NUL-terminated.
 */
int tf_read_file(const char *path, tf_format format, tf_side side, tf_file *out, char *err, size_t err_size);
int tf_read_buffer(const char *name, const char *data, size_t size, tf_format format, tf_side side, tf_file *out,
                   char *err, size_t err_size);
void tf_file_free(tf_file *f);

/*
 * The dense id map of a side grows by the files' ids it lacks (an item that
 * appears only in a feature file joins the catalogue), appended in the order
 * of the files and of first appearance: *ids (malloc'd, [*num_ids]) is
 * realloc'd. *added (may be NULL) counts them. 0, or -1 with err (out of
 * memory, more than 2^31 - 1 ids).
 */
int tf_add_ids(const tf_file *files, size_t num_files, int64_t **ids, uint32_t *num_ids, uint32_t *added, char *err,
               size_t err_size);

typedef struct tf_build_options {
    int no_identity;  /* no identity feature per row */
    int no_normalise; /* keep the weights as summed */
} tf_build_options;

/* A side's feature matrix, as wl_model_set_features takes it, with names. */
typedef struct tf_matrix {
    uint32_t rows, num_features;
    uint32_t identity;   /* features 0 .. rows - 1 are the identity (feature r: row r) */
    uint64_t *indptr;    /* [rows + 1] */
    int32_t *features;   /* [indptr[rows]], strictly ascending within a row */
    float *weights;      /* [indptr[rows]] finite */
    char **names;        /* [num_features]: "item:ID" / "user:ID" (identity), then the files' */
    char **titles;       /* [rows] (entries may be NULL), or NULL when no file gave a title */
    uint32_t empty_rows; /* rows with no feature or only weights 0: their representation is 0 */
} tf_matrix;

/*
 * Build side's matrix over the rows of ids[num_ids] (the dense map, after
 * tf_add_ids): feature r with weight 1 for row r first (unless
 * no_identity), then the files' features in the order of the files and of
 * first appearance (a name in several files is one feature); repeated
 * (row, feature) entries summed; each row sorted by feature and, unless
 * no_normalise, divided by the sum of its weights' absolute values (LightFM's
 * Dataset: L1, so non-negative rows sum to 1). An empty row, or one whose
 * weights are all 0, stays as it is and is counted in empty_rows. An id
 * absent from ids is an error, as is a file of the other side, a sum beyond
 * the float range, or more than 2^31 - 1 features. 0, or -1 with err.
 */
int tf_build(tf_side side, const tf_file *files, size_t num_files, const int64_t *ids, uint32_t num_ids,
             const tf_build_options *o, tf_matrix *out, char *err, size_t err_size);
void tf_matrix_free(tf_matrix *m);

/* How tf_finish scales a row's weights. */
typedef enum tf_normalise {
    TF_NORMALISE_FEATURES = 0, /* the files' features to sum 1 (absolute values); the identity keeps weight 1 */
    TF_NORMALISE_ROWS,         /* the whole row, identity included, to sum 1 (LightFM's Dataset) */
    TF_NORMALISE_NONE          /* the weights as summed */
} tf_normalise;

/*
 * Finish a matrix tf_build made with no_normalise: take the identity feature
 * out of every row r with has_pairs[r] == 0 (has_pairs NULL: none), a row
 * without training pairs, whose identity row could only ever be trained as
 * a negative: it is represented by its files' features alone, as a new item
 * is at serving time (the identity features stay in the table, unused);
 * then scale each row as mode says (a row whose weights sum to 0 stays).
 * Recounts empty_rows; returns how many rows lost their identity feature.
 */
uint32_t tf_finish(tf_matrix *m, const unsigned char *has_pairs, tf_normalise mode);

#endif
