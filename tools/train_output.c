/*
 * What warploss-train writes besides the model (train_output.h): the SVG
 * chart it draws itself, the JSON lines of --metrics, the split's files, the
 * final metrics line and the progress bar.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "train_options.h"
#include "train_output.h"

/* ------------------------------------------------------------ the SVG chart */

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

int train_write_plot(const char *path, const epoch_record *r, size_t n, uint32_t k, const char *subtitle)
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

/* ------------------------------------------------------------ lines, files, the progress bar */

void train_write_metrics_line(FILE *f, const epoch_record *r, double positives_per_second)
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
    if (r->has_cold) {
        cli_json_add_number(o, "cold_precision_at_k", "%.6f", r->cold.precision_at_k);
        cli_json_add_number(o, "cold_recall_at_k", "%.6f", r->cold.recall_at_k);
        cli_json_add_number(o, "cold_auc", "%.6f", r->cold.auc);
        cli_json_add_number(o, "cold_mrr", "%.6f", r->cold.mrr);
        cJSON_AddNumberToObject(o, "cold_users", (double)r->cold.users);
    }
    char *text = cJSON_PrintUnformatted(o);
    if (text)
        fprintf(f, "%s\n", text);
    fflush(f);
    free(text);
    cJSON_Delete(o);
}

int train_make_dir(const char *path)
{
    if (mkdir(path, 0777) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

int train_write_pairs(const char *path, const td_dataset *d, size_t n, const int32_t *u, const int32_t *i)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    for (size_t j = 0; j < n; ++j)
        fprintf(f, "%lld\t%lld\n", (long long)d->user_ids[u[j]], (long long)d->item_ids[i[j]]);
    return fclose(f) ? -1 : 0;
}

const char *train_optimizer_name(wl_optimizer o) { return o == WL_OPTIMIZER_SGD ? "sgd" : "adagrad"; }

void train_print_metrics(const char *prefix, const wl_metrics *m)
{
    printf("%sprecision@%u %.4f  recall@%u %.4f  AUC %.4f  MRR %.4f  (%llu test users)\n", prefix, m->k,
           m->precision_at_k, m->k, m->recall_at_k, m->auc, m->mrr, (unsigned long long)m->users);
}

/* The progress bar of an epoch on a terminal. */
void train_progress(uint64_t epoch, uint64_t last, size_t done, size_t total, double elapsed, double loss)
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

int train_fail(const char *what, const char *detail)
{
    if (detail && *detail)
        fprintf(stderr, "%s: %s: %s\n", cli_program, what, detail);
    else
        fprintf(stderr, "%s: %s\n", cli_program, what);
    return EXIT_FAIL;
}
