/* What every warploss command-line tool needs (see cli.h). */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *cli_program = "warploss";

void cli_init(const char *argv0)
{
    if (argv0 && *argv0) {
        const char *slash = strrchr(argv0, '/');
        cli_program = slash ? slash + 1 : argv0;
    }
}

/* ------------------------------------------------------------ options */

/* getopt_long's table is built from ours on each call, of at most CLI_MAX_OPTIONS rows (cli.h). */
/* getopt_long returns this plus the row index for a long option, clear of the characters it returns. */
#define CLI_ROW_BASE 256
/* Where --help wraps the usage line. */
#define CLI_USAGE_COLUMNS 80

int cli_next_option(int argc, char **argv, const cli_option *options, const char **value, int *word)
{
    struct option long_options[CLI_MAX_OPTIONS + 1];
    int rows = 0, help_row = -1;
    for (; rows < CLI_MAX_OPTIONS && options[rows].name; ++rows) {
        long_options[rows] = (struct option){options[rows].name, options[rows].has_arg, NULL, CLI_ROW_BASE + rows};
        if (!strcmp(options[rows].name, "help"))
            help_row = rows;
    }
    long_options[rows] = (struct option){NULL, 0, NULL, 0};

    /* '+': stop at the first word that is not an option; ':': a missing argument returns ':'. */
    const char *short_options = help_row >= 0 ? "+:h" : "+:";
    opterr = 0;
    *value = NULL;
    *word = optind;
    const int got = getopt_long(argc, argv, short_options, long_options, NULL);
    if (got == -1) {
        if (*word < argc && optind == *word + 1 && !strcmp(argv[*word], "--"))
            return CLI_END; /* "--" itself is the stray word */
        *word = optind;
        return CLI_END;
    }
    if (got == ':')
        return CLI_MISSING;
    if (got == 'h')
        return help_row;
    if (got < CLI_ROW_BASE || got >= CLI_ROW_BASE + rows)
        return CLI_UNKNOWN;
    const int row = got - CLI_ROW_BASE;
    *value = optarg;
    if (options[row].has_arg == optional_argument && !optarg && optind < argc && argv[optind][0] != '-')
        *value = argv[optind++];
    return row;
}

/* "--name", "--name METAVAR" or "--name [METAVAR]" into out; returns its length. */
static int option_synopsis(const cli_option *o, char *out, size_t size)
{
    if (!o->metavar || o->has_arg == no_argument)
        return snprintf(out, size, "--%s", o->name);
    return snprintf(out, size, o->has_arg == optional_argument ? "--%s [%s]" : "--%s %s", o->name, o->metavar);
}

void cli_print_help(FILE *f, const cli_option *options, const char *before, const char *after)
{
    char synopsis[128];
    const int indent = fprintf(f, "usage: %s", cli_program);
    int column = indent, width = 0;
    for (const cli_option *o = options; o->name; ++o) {
        const int len = option_synopsis(o, synopsis, sizeof synopsis);
        if (column > indent && column + len + 3 > CLI_USAGE_COLUMNS)
            column = fprintf(f, "\n%*s", indent, "") - 1;
        column += fprintf(f, " [%s]", synopsis);
        if (len > width)
            width = len;
    }
    fprintf(f, "\n%s", before ? before : "");
    for (const cli_option *o = options; o->name; ++o) {
        option_synopsis(o, synopsis, sizeof synopsis);
        fprintf(f, "  %-*s  ", width, synopsis);
        for (const char *line = o->help; line;) {
            const char *end = strchr(line, '\n');
            fprintf(f, "%.*s\n", end ? (int)(end - line) : (int)strlen(line), line);
            line = end ? end + 1 : NULL;
            if (line)
                fprintf(f, "%*s", width + 4, "");
        }
    }
    fputs(after ? after : "", f);
}

/* ------------------------------------------------------------ JSON */

void cli_json_add_number(cJSON *object, const char *key, const char *format, double value)
{
    char text[64];
    if (!isfinite(value) || snprintf(text, sizeof text, format, value) >= (int)sizeof text)
        cJSON_AddNullToObject(object, key);
    else
        cJSON_AddRawToObject(object, key, text);
}

void cli_json_print(cJSON *document)
{
    char *text = document ? cJSON_Print(document) : NULL;
    if (!text)
        cli_die("out of host memory", "writing JSON");
    printf("%s\n", text);
    cJSON_free(text);
    cJSON_Delete(document);
}

/* ------------------------------------------------------------ time, statistics, files */

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cli_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int cli_make_temp_dir(const char *prefix, char *path, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    if ((size_t)snprintf(path, size, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix) >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkdtemp(path) ? 0 : -1;
}

void cli_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    DIR *dir = opendir(path);
    if (dir) {
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char child[4096];
            if ((size_t)snprintf(child, sizeof child, "%s/%s", path, e->d_name) < sizeof child)
                cli_remove_tree(child);
        }
        closedir(dir);
    }
    rmdir(path);
}

/* ------------------------------------------------------------ timing on a device */

wl_context *cli_profiling_context(const char *spec)
{
    wl_device_choice choice;
    cli_check_wl(wl_select_device(spec, &choice), NULL);
    cl_int err;
    const cl_context_properties properties[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)choice.platform, 0};
    cl_context context = clCreateContext(properties, 1, &choice.device, NULL, NULL, &err);
    cli_check_cl(err, "clCreateContext");
    cl_command_queue queue = clCreateCommandQueue(context, choice.device, CL_QUEUE_PROFILING_ENABLE, &err);
    cli_check_cl(err, "clCreateCommandQueue");
    wl_context *c = NULL;
    cli_check_wl(wl_context_create_with_queue(queue, NULL, &c), NULL);
    /* c holds its own references to both */
    clReleaseCommandQueue(queue);
    clReleaseContext(context);
    return c;
}

double cli_event_seconds(cl_event from, cl_profiling_info from_what, cl_event to)
{
    cl_ulong start = 0, end = 0;
    cli_check_cl(clGetEventProfilingInfo(from, from_what, sizeof start, &start, NULL), "clGetEventProfilingInfo");
    cli_check_cl(clGetEventProfilingInfo(to, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL),
                 "clGetEventProfilingInfo");
    return end > start ? 1e-9 * (double)(end - start) : 0.0;
}

/* ------------------------------------------------------------ fatal errors */

void cli_die(const char *what, const char *detail)
{
    fprintf(stderr, "%s: %s%s%s\n", cli_program, what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

void cli_check_cl(cl_int err, const char *what)
{
    if (err != CL_SUCCESS) {
        char text[32];
        snprintf(text, sizeof text, "OpenCL error %d", (int)err);
        cli_die(what, text);
    }
}

void cli_check_wl(wl_status st, wl_context *c)
{
    if (st != WL_SUCCESS)
        cli_die(wl_status_string(st), wl_context_last_error(c));
}

void *cli_alloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        cli_die("out of host memory", NULL);
    return p;
}
