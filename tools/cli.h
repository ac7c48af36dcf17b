/*
 * What every warploss command-line tool needs, in one place: options parsed
 * with getopt_long and --help written from the same table, JSON through
 * cJSON, a monotonic clock, the median, a temporary folder, a profiling
 * context for the timing tools, and fatal errors that name the program.
 */
#ifndef WL_TOOLS_CLI_H
#define WL_TOOLS_CLI_H

#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "warploss.h"

/* ------------------------------------------------------------ program name */

/* The program's name in messages ("warploss-bench: ..."): the last part of argv[0]. */
extern const char *cli_program;

/* Set cli_program from argv[0]; call first in main. */
void cli_init(const char *argv0);

/* ------------------------------------------------------------ options */

/* One option: a row of the table that drives both parsing and --help. A table
 * ends with a row whose name is NULL. */
typedef struct cli_option {
    const char *name;    /* the long name, without "--"; the row named "help" also answers to -h */
    int has_arg;         /* no_argument, required_argument or optional_argument (getopt.h) */
    const char *metavar; /* the argument in --help ("SPEC"); NULL without one */
    const char *help;    /* one line; each '\n' starts another, aligned under the first */
} cli_option;

/* The most rows a table may have (rows after these are not options: a tool checks its count against this). */
#define CLI_MAX_OPTIONS 64

/* What cli_next_option returns besides a row index. */
enum { CLI_END = -1, CLI_UNKNOWN = -2, CLI_MISSING = -3 };

/*
 * The next option of argv: the index of its row in the table, with *value its
 * argument (NULL without one). An optional argument is either attached
 * ("--check=SPEC") or the next word when that does not start with '-'.
 * CLI_UNKNOWN: an unknown option, or an argument where none is taken;
 * CLI_MISSING: a required argument is missing. Options end at the first word
 * that is not one, with no reordering (so a stray word is reported where it
 * stands): then CLI_END, and *word is that word's index (argc if none; "--"
 * counts as such a word since no tool takes operands). Otherwise *word is the
 * index of the option's word, for messages. Prints nothing.
 */
int cli_next_option(int argc, char **argv, const cli_option *options, const char **value, int *word);

/*
 * The --help text: "usage: PROGRAM [--name METAVAR] ...", the text `before`
 * (NULL: none), one line per option with its help in a column, then `after`.
 */
void cli_print_help(FILE *f, const cli_option *options, const char *before, const char *after);

/* ------------------------------------------------------------ JSON */

/* value under key, written with a printf format (as "%.6g"), so that the
 * document shows exactly those digits; null when value is not finite. */
void cli_json_add_number(cJSON *object, const char *key, const char *format, double value);

/* Print the document indented, then a newline, and free it. */
void cli_json_print(cJSON *document);

/* ------------------------------------------------------------ time, statistics, files */

/* Seconds on a monotonic clock. */
double cli_now(void);

/* The median of v[0..n-1], n >= 1 (sorts v). */
double cli_median(double *v, int n);

/*
 * A new empty folder $TMPDIR/PREFIX-XXXXXX (/tmp without TMPDIR), its path in
 * path[size]. 0, or -1 with errno set and path holding the name it tried.
 */
int cli_make_temp_dir(const char *prefix, char *path, size_t size);

/* Remove path and, for a folder, everything in it; links are removed, never followed. */
void cli_remove_tree(const char *path);

/* ------------------------------------------------------------ timing on a device */

/* A context on the device spec selects (wl_select_device's syntax), on an
 * in-order queue of its own with profiling on, for timing with events; dies
 * on failure. wl_context_destroy releases the queue and its OpenCL context. */
wl_context *cli_profiling_context(const char *spec);

/* Seconds from from_what (CL_PROFILING_COMMAND_START or _END) of `from` to the end of `to`; dies on failure. */
double cli_event_seconds(cl_event from, cl_profiling_info from_what, cl_event to);

/* ------------------------------------------------------------ fatal errors */

/* Print "PROGRAM: what[: detail]" on stderr and exit 1. */
void cli_die(const char *what, const char *detail);

/* cli_die(what, "OpenCL error N") unless err is CL_SUCCESS. */
void cli_check_cl(cl_int err, const char *what);

/* cli_die with the status and c's last error (c may be NULL) unless st is WL_SUCCESS. */
void cli_check_wl(wl_status st, wl_context *c);

/* malloc that dies on failure; 0 bytes gives a valid pointer. */
void *cli_alloc(size_t bytes);

#endif
