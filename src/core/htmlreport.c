/* SPDX-License-Identifier: MIT */
/* `selftest-core html` (see htmlreport.h). Every run in metrics.db keeps its whole results
 * object (runs.results): the failures with their tracebacks and captured output, the
 * regressions and fixes, the tests' durations, the orphan checks and the integrated modules.
 * The page is made of those objects alone; nothing else is read. */
#include "config.h"

#include "htmlreport.h"

#include "json.h"
#include "junit.h" /* st_xml_escape: the same escaping serves HTML */
#include "log.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- small helpers ------------------------------------------------------------------------- */

static void esc(st_buf *b, const char *s)
{
    st_xml_escape(b, s ? s : "", 1);
}

/* text content: newlines kept as they are (inside <pre>) */
static void esc_text(st_buf *b, const char *s)
{
    st_xml_escape(b, s ? s : "", 0);
}

static double num(yajl_val obj, const char *key)
{
    double v;
    return st_jv_double(obj, key, &v) == 0 ? v : NAN;
}

static size_t arr_len(yajl_val v)
{
    return v && YAJL_IS_ARRAY(v) ? v->u.array.len : 0;
}

static size_t obj_len(yajl_val v)
{
    return v && YAJL_IS_OBJECT(v) ? v->u.object.len : 0;
}

static void fmt_duration(char *out, size_t size, double s)
{
    if (isnan(s))
        snprintf(out, size, "-");
    else if (s < 0.01)
        snprintf(out, size, "%.2f ms", s * 1000);
    else if (s < 1)
        snprintf(out, size, "%.0f ms", s * 1000);
    else if (s < 120)
        snprintf(out, size, "%.2f s", s);
    else
        snprintf(out, size, "%.0f min %.0f s", floor(s / 60), fmod(s, 60));
}

/* ---- charts -------------------------------------------------------------------------------- */

typedef struct series {
    const char *name;
    const char *color;
    const double *v; /* n values, NAN where there is none */
} series;

/* The smallest "nice" number (1, 2, 2.5, 5 x 10^k) at or above x. */
static double nice_ceil(double x)
{
    if (!(x > 0) || !isfinite(x))
        return 1;
    double p = 1; /* the power of ten at or below x */
    while (p * 10 <= x)
        p *= 10;
    while (p > x)
        p /= 10;
    static const double steps[] = {1, 2, 2.5, 5, 10};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        if (steps[i] * p >= x - 1e-9 * p)
            return steps[i] * p;
    return 10 * p;
}

/* A line chart as inline SVG: one polyline and a dot (with a <title> tooltip) per value of
 * each series, horizontal grid lines with their values, the cycles' dates below. */
static void svg_chart(st_buf *b, const char *title, const char *unit, const series *s, size_t ns,
                      size_t n, const char *const *labels, double fixed_max)
{
    const double W = 560, H = 230, L = 56, R = 40, T = 44, B = 34;
    double max = 0;
    int any = 0;
    for (size_t k = 0; k < ns; k++)
        for (size_t i = 0; i < n; i++)
            if (!isnan(s[k].v[i])) {
                any = 1;
                if (s[k].v[i] > max)
                    max = s[k].v[i];
            }
    /* four grid steps of a nice size; counts (no unit) in whole numbers */
    double gstep = nice_ceil(max / 4);
    if (!unit[0])
        gstep = ceil(gstep);
    max = fixed_max > 0 ? fixed_max : 4 * gstep;
    st_buf_printf(b,
                  "<figure class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" "
                  "viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" role=\"img\" "
                  "aria-label=\"",
                  W, H, W, H);
    esc(b, title);
    st_buf_puts(b, "\">\n<text x=\"8\" y=\"18\" class=\"ct\">");
    esc_text(b, title);
    st_buf_puts(b, "</text>\n");
    double pw = W - L - R, ph = H - T - B;
    for (int g = 0; g <= 4; g++) {
        double y = T + ph - ph * g / 4.0;
        double val = max * g / 4.0;
        st_buf_printf(b,
                      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                      "<text x=\"%.1f\" y=\"%.1f\" class=\"yl\">%g%s</text>\n",
                      L, y, W - R, y, L - 6, y + 4, val, unit);
    }
    double step = n > 1 ? pw / (double)(n - 1) : 0;
#define XPOS(i) (n > 1 ? L + step * (double)(i) : L + pw / 2)
#define YPOS(v) (T + ph - ph * ((v) > max ? 1.0 : (v) / max))
    /* at most six date labels ("MM-DD HH:MM"): every stride-th cycle and the last */
    size_t stride = n <= 6 ? 1 : (n - 1 + 4) / 5;
    for (size_t i = 0; i < n; i++) {
        if (i != n - 1 && (i % stride != 0 || (i && n - 1 - i < (stride + 1) / 2)))
            continue;
        const char *lab = strlen(labels[i]) > 5 ? labels[i] + 5 : labels[i];
        /* centred: the margins leave room for half a label at each end */
        st_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"xl\">", XPOS(i), H - B + 16);
        esc_text(b, lab);
        st_buf_puts(b, "</text>\n");
    }
    if (!any) {
        st_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"none\">no values</text>\n",
                      L + pw / 2, T + ph / 2);
    }
    for (size_t k = 0; k < ns; k++) {
        /* one polyline per run of cycles with a value: a cycle without one is a gap */
        for (size_t i = 0; i < n;) {
            if (isnan(s[k].v[i])) {
                i++;
                continue;
            }
            st_buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                          "points=\"", s[k].color);
            for (; i < n && !isnan(s[k].v[i]); i++)
                st_buf_printf(b, "%.1f,%.1f ", XPOS(i), YPOS(s[k].v[i]));
            st_buf_puts(b, "\"/>\n");
        }
        for (size_t i = 0; i < n; i++) {
            if (isnan(s[k].v[i]))
                continue;
            st_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>", XPOS(i),
                          YPOS(s[k].v[i]), s[k].color);
            esc_text(b, s[k].name);
            st_buf_printf(b, " %g%s (", s[k].v[i], unit);
            esc_text(b, labels[i]);
            st_buf_puts(b, ")</title></circle>\n");
        }
        /* the legend: one row under the title */
        st_buf_printf(b,
                      "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                      "<text x=\"%.1f\" y=\"%.1f\" class=\"lg\">",
                      8.0 + 110.0 * (double)k, 25.0, s[k].color, 22.0 + 110.0 * (double)k, 34.0);
        esc_text(b, s[k].name);
        st_buf_puts(b, "</text>\n");
    }
#undef XPOS
#undef YPOS
    st_buf_puts(b, "</svg></figure>\n");
}

/* ---- sections ------------------------------------------------------------------------------ */

static const char css[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;"
    "color:#1d2430;background:#f4f6f9}"
    "header{background:#1f3a5f;color:#fff;padding:18px 28px}"
    "header h1{margin:0 0 4px;font-size:22px}header p{margin:0;opacity:.85}"
    "main{padding:8px 28px 40px;max-width:1400px}"
    "section{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:12px 18px;"
    "margin:16px 0}"
    "h2{font-size:17px;margin:4px 0 10px}h3{font-size:14px;margin:12px 0 6px}"
    ".cards{display:flex;flex-wrap:wrap;gap:10px}"
    ".card{border:1px solid #dde3ea;border-radius:6px;padding:8px 14px;min-width:110px}"
    ".card b{display:block;font-size:20px}.card span{color:#5b6675;font-size:12px}"
    ".pass{color:#1a7f37}.fail{color:#c62828}.warn{color:#9a6700}.muted{color:#5b6675}"
    ".status{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;"
    "font-weight:600}.status.ok{background:#1a7f37}.status.bad{background:#c62828}"
    ".status.ab{background:#9a6700}"
    "table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;"
    "border-bottom:1px solid #e6eaef;vertical-align:top}th{background:#f0f3f7}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    "code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}"
    "pre{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;background:#f6f8fa;"
    "border:1px solid #e1e6eb;padding:8px;overflow:auto;max-height:420px;white-space:pre-wrap;"
    "word-break:break-all}"
    "details{margin:6px 0;border-left:3px solid #c62828;padding-left:10px}"
    "details.batch{border-left-color:#9a6700}summary{cursor:pointer}"
    ".charts{display:flex;flex-wrap:wrap;gap:12px}.chart{margin:0}"
    ".chart svg{background:#fff;border:1px solid #e6eaef;border-radius:4px;max-width:100%;"
    "height:auto}"
    ".grid{stroke:#e3e8ee;stroke-width:1}"
    ".ct{font:600 13px system-ui,sans-serif;fill:#1d2430}"
    ".yl{font:11px system-ui,sans-serif;fill:#5b6675;text-anchor:end}"
    ".xl{font:11px system-ui,sans-serif;fill:#5b6675;text-anchor:middle}"
    ".lg{font:12px system-ui,sans-serif;fill:#1d2430}"
    ".none{font:12px system-ui,sans-serif;fill:#9aa4b1;text-anchor:middle}"
    "ul.names{margin:4px 0;padding-left:20px}";

static void card(st_buf *b, const char *cls, const char *value, const char *label)
{
    st_buf_printf(b, "<div class=\"card\"><b class=\"%s\">", cls);
    esc_text(b, value);
    st_buf_puts(b, "</b><span>");
    esc_text(b, label);
    st_buf_puts(b, "</span></div>\n");
}

static void card_num(st_buf *b, const char *cls, double v, const char *label)
{
    char t[32];
    if (isnan(v))
        snprintf(t, sizeof(t), "-");
    else
        snprintf(t, sizeof(t), "%.0f", v);
    card(b, cls, t, label);
}

static void name_list(st_buf *b, yajl_val list, const char *empty)
{
    size_t n = arr_len(list);
    if (n == 0) {
        st_buf_printf(b, "<p class=\"muted\">%s</p>\n", empty);
        return;
    }
    st_buf_puts(b, "<ul class=\"names\">\n");
    for (size_t i = 0; i < n; i++) {
        st_buf_puts(b, "<li><code>");
        esc_text(b, YAJL_GET_STRING(list->u.array.values[i]));
        st_buf_puts(b, "</code></li>\n");
    }
    st_buf_puts(b, "</ul>\n");
}

static void pre_block(st_buf *b, const char *title, const char *text)
{
    if (!text || !*text)
        return;
    st_buf_printf(b, "<h3>%s</h3><pre>", title);
    esc_text(b, text);
    st_buf_puts(b, "</pre>\n");
}

static void section_summary(st_buf *b, yajl_val last, const char *when)
{
    long long exit_status = -1;
    st_jv_int(last, "exit_status", &exit_status);
    yajl_val ab = st_jv_get(last, "aborted");
    int aborted = ab && YAJL_IS_TRUE(ab);
    st_buf_puts(b, "<section id=\"summary\"><h2>Last cycle ");
    st_buf_printf(b, "<span class=\"status %s\">%s</span></h2>\n",
                  aborted            ? "ab"
                  : exit_status == 0 ? "ok"
                                     : "bad",
                  aborted            ? "aborted"
                  : exit_status == 0 ? "passed"
                                     : "failed");
    st_buf_puts(b, "<p class=\"muted\">");
    esc_text(b, when);
    st_buf_puts(b, " &middot; run <code>");
    esc_text(b, st_jv_str(last, "run_id"));
    st_buf_puts(b, "</code>");
    if (st_jv_str(last, "git_commit")) {
        st_buf_puts(b, " &middot; commit <code>");
        esc_text(b, st_jv_str(last, "git_commit"));
        st_buf_puts(b, "</code>");
    }
    st_buf_puts(b, " &middot; runtime ");
    esc_text(b, st_jv_str(last, "runtime_used"));
    st_buf_printf(b, " &middot; exit status %lld</p>\n<div class=\"cards\">\n", exit_status);
    card_num(b, "pass", num(last, "passed"), "passed");
    card_num(b, num(last, "failed") > 0 ? "fail" : "", num(last, "failed"),
             "failed (errors included)");
    card_num(b, num(last, "errors") > 0 ? "fail" : "", num(last, "errors"), "errors");
    card_num(b, "muted", num(last, "skipped"), "skipped");
    card_num(b, "muted", num(last, "xfailed"), "xfailed");
    char t[48];
    double cov = num(last, "coverage");
    if (isnan(cov))
        snprintf(t, sizeof(t), "-");
    else
        snprintf(t, sizeof(t), "%.1f%%", cov);
    card(b, "", t, "coverage");
    fmt_duration(t, sizeof(t), num(last, "total_runtime"));
    card(b, "", t, "duration");
    card_num(b, arr_len(st_jv_get(last, "regressions")) ? "fail" : "",
             (double)arr_len(st_jv_get(last, "regressions")), "regressions");
    card_num(b, "pass", (double)arr_len(st_jv_get(last, "fixed")), "fixed");
    st_buf_puts(b, "</div></section>\n");
}

static void section_failures(st_buf *b, yajl_val last)
{
    st_buf_puts(b, "<section id=\"failures\"><h2>Failures of the last cycle</h2>\n");
    yajl_val tests = st_jv_get(last, "tests");
    size_t shown = 0;
    for (size_t i = 0; i < arr_len(tests); i++) {
        yajl_val t = tests->u.array.values[i];
        const char *outcome = st_jv_str(t, "outcome");
        if (!outcome || (strcmp(outcome, "failed") != 0 && strcmp(outcome, "error") != 0))
            continue;
        shown++;
        const char *phase = st_jv_str(t, "phase");
        st_buf_puts(b, "<details class=\"test\" open><summary><b class=\"fail\">");
        esc_text(b, outcome);
        st_buf_puts(b, "</b> <code>");
        esc_text(b, st_jv_str(t, "nodeid"));
        st_buf_puts(b, "</code>");
        if (phase && strcmp(phase, "call") != 0) {
            st_buf_puts(b, " <span class=\"muted\">(at ");
            esc_text(b, phase);
            st_buf_puts(b, ")</span>");
        }
        yajl_val q = st_jv_get(t, "quarantined");
        if (q && YAJL_IS_TRUE(q))
            st_buf_puts(b, " <span class=\"muted\">(quarantined: does not fail the cycle)</span>");
        st_buf_puts(b, "</summary>\n");
        pre_block(b, "Traceback", st_jv_str(t, "excerpt"));
        pre_block(b, "Captured stdout", st_jv_str(t, "stdout"));
        pre_block(b, "Captured stderr", st_jv_str(t, "stderr"));
        st_buf_puts(b, "</details>\n");
    }
    /* batches that failed with no failing test to show: a crash, a timeout, nothing collected */
    yajl_val sm = st_jv_get(last, "suite_metrics");
    for (size_t i = 0; i < obj_len(sm); i++) {
        yajl_val m = sm->u.object.values[i];
        yajl_val okv = st_jv_get(m, "ok"), abv = st_jv_get(m, "aborted");
        double failed = num(m, "failed");
        if (!okv || YAJL_IS_TRUE(okv) || (abv && YAJL_IS_TRUE(abv)) || failed > 0)
            continue;
        shown++;
        st_buf_puts(b, "<details class=\"batch\" open><summary><b class=\"warn\">batch failed"
                       "</b> <code>");
        esc_text(b, sm->u.object.keys[i]);
        st_buf_puts(b, "</code>: ");
        esc_text(b, st_jv_str(m, "reason") ? st_jv_str(m, "reason") : "no reason recorded");
        st_buf_puts(b, "</summary>\n");
        yajl_val running = st_jv_get(m, "running_tests");
        if (arr_len(running)) {
            st_buf_puts(b, "<h3>Running when it ended</h3>\n");
            name_list(b, running, "");
        }
        pre_block(b, "End of its output", st_jv_str(m, "output_tail"));
        st_buf_puts(b, "</details>\n");
    }
    if (!shown)
        st_buf_puts(b, "<p class=\"pass\">No test and no batch failed.</p>\n");
    st_buf_puts(b, "</section>\n");
}

/* Flaky tests (docs/flaky.md): the last cycle's, and how often each test was flaky over the
 * cycles shown (the results' "flaky" lists), most often first. */
static void section_flaky(st_buf *b, yajl_val *runs, const char *const *labels, size_t n)
{
    yajl_val last = runs[n - 1];
    st_buf_puts(b, "<section id=\"flaky\"><h2>Flaky tests</h2>\n"
                   "<h3>Flaky in the last cycle (failed, then passed when run again)</h3>\n");
    name_list(b, st_jv_get(last, "flaky"), "None.");
    st_buf_puts(b, "<h3>Quarantined tests that failed in the last cycle</h3>\n");
    name_list(b, st_jv_get(last, "quarantined"), "None.");
    yajl_val ready = st_jv_get(last, "quarantine_ready");
    if (arr_len(ready)) {
        st_buf_puts(b, "<h3>Quarantined tests ready to release</h3>\n");
        name_list(b, ready, "");
    }
    st_strv nodes = {0};
    unsigned *count = NULL;
    size_t *newest = NULL, cap = 0, cap2 = 0;
    for (size_t k = 0; k < n; k++) {
        yajl_val fl = st_jv_get(runs[k], "flaky");
        for (size_t i = 0; i < arr_len(fl); i++) {
            const char *id = YAJL_GET_STRING(fl->u.array.values[i]);
            size_t j = 0;
            while (id && j < nodes.n && strcmp(nodes.v[j], id) != 0)
                j++;
            if (!id)
                continue;
            if (j == nodes.n) {
                if (ST_GROW(count, cap, j + 1) < 0 || ST_GROW(newest, cap2, j + 1) < 0)
                    goto out;
                st_strv_push(&nodes, id);
                if (nodes.n != j + 1)
                    goto out;
                count[j] = 0;
            }
            count[j]++;
            newest[j] = k;
        }
    }
    if (nodes.n) {
        st_buf_printf(b, "<h3>Flaky over the last %zu cycle%s, most often first</h3>\n"
                         "<table><tr><th>test</th><th>flaky cycles</th><th>last flaky</th>"
                         "</tr>\n", n, n == 1 ? "" : "s");
        /* a few dozen tests at most: selection by count */
        for (size_t shown = 0; shown < nodes.n && shown < 50; shown++) {
            size_t best = 0;
            for (size_t j = 1; j < nodes.n; j++)
                if (count[j] > count[best])
                    best = j;
            st_buf_puts(b, "<tr><td><code>");
            esc_text(b, nodes.v[best]);
            st_buf_printf(b, "</code></td><td class=\"n\">%u of %zu</td><td>", count[best], n);
            esc_text(b, labels[newest[best]]);
            st_buf_puts(b, "</td></tr>\n");
            count[best] = 0; /* shown */
        }
        st_buf_puts(b, "</table>\n<p class=\"muted\">selftest-core flaky scores every test "
                       "over metrics.db (docs/flaky.md).</p>\n");
    }
out:
    st_strv_free(&nodes);
    free(count);
    free(newest);
    st_buf_puts(b, "</section>\n");
}

static void section_changes(st_buf *b, yajl_val *runs, const char *const *labels, size_t n)
{
    yajl_val last = runs[n - 1];
    st_buf_puts(b, "<section id=\"changes\"><h2>Regressions and fixes</h2>\n"
                   "<h3>Regressions in the last cycle (passed before, fail now)</h3>\n");
    name_list(b, st_jv_get(last, "regressions"), "None.");
    st_buf_puts(b, "<h3>Fixed in the last cycle (failed before, pass now)</h3>\n");
    name_list(b, st_jv_get(last, "fixed"), "None.");
    int any = 0;
    for (size_t k = n; k-- > 0;) {
        yajl_val reg = st_jv_get(runs[k], "regressions"), fix = st_jv_get(runs[k], "fixed");
        if (!arr_len(reg) && !arr_len(fix))
            continue;
        if (!any)
            st_buf_puts(b, "<h3>Every cycle with a change, newest "
                           "first</h3>\n<table><tr><th>cycle</th><th>regressions"
                           "</th><th>fixed</th></tr>\n");
        any = 1;
        st_buf_puts(b, "<tr><td class=\"n\">");
        esc_text(b, labels[k]);
        st_buf_puts(b, "</td><td>");
        for (size_t i = 0; i < arr_len(reg); i++) {
            st_buf_puts(b, "<code class=\"fail\">");
            esc_text(b, YAJL_GET_STRING(reg->u.array.values[i]));
            st_buf_puts(b, "</code><br>");
        }
        st_buf_puts(b, "</td><td>");
        for (size_t i = 0; i < arr_len(fix); i++) {
            st_buf_puts(b, "<code class=\"pass\">");
            esc_text(b, YAJL_GET_STRING(fix->u.array.values[i]));
            st_buf_puts(b, "</code><br>");
        }
        st_buf_puts(b, "</td></tr>\n");
    }
    if (any)
        st_buf_puts(b, "</table>\n");
    st_buf_puts(b, "</section>\n");
}

static void section_trends(st_buf *b, yajl_val *runs, const char *const *labels, size_t n)
{
    double *v = calloc(6 * (n ? n : 1), sizeof(double));
    if (!v) {
        b->oom = 1;
        return;
    }
    double *passed = v, *failed = v + n, *dur = v + 2 * n, *cov = v + 3 * n;
    double *checks = v + 4 * n, *integrated = v + 5 * n;
    int any_cov = 0;
    for (size_t i = 0; i < n; i++) {
        passed[i] = num(runs[i], "passed");
        failed[i] = num(runs[i], "failed");
        dur[i] = num(runs[i], "total_runtime");
        cov[i] = num(runs[i], "coverage");
        any_cov |= !isnan(cov[i]);
        checks[i] = num(runs[i], "orphan_total");
        integrated[i] = (double)arr_len(st_jv_get(st_jv_get(runs[i], "integration"), "integrated"));
    }
    st_buf_printf(b,
                  "<section id=\"trends\"><h2>Trends over the last %zu cycle%s</h2>\n"
                  "<div class=\"charts\">\n",
                  n, n == 1 ? "" : "s");
    series tests[2] = {{"passed", "#1a7f37", passed}, {"failed", "#c62828", failed}};
    svg_chart(b, "Tests passed and failed", "", tests, 2, n, labels, 0);
    series d[1] = {{"duration", "#1f6feb", dur}};
    svg_chart(b, "Cycle duration", " s", d, 1, n, labels, 0);
    series c[1] = {{"coverage", "#8250df", cov}};
    svg_chart(b, any_cov ? "Coverage" : "Coverage (not measured: run with --coverage)", "%", c, 1,
              n, labels, 100);
    st_buf_puts(b, "</div></section>\n");
    double *failed_checks = calloc(n ? n : 1, sizeof(double));
    if (!failed_checks) {
        free(v);
        b->oom = 1;
        return;
    }
    for (size_t i = 0; i < n; i++)
        failed_checks[i] = num(runs[i], "orphan_failed");
    st_buf_puts(b, "<section id=\"orphans\"><h2>Orphan checks and integrations</h2>\n"
                   "<div class=\"charts\">\n");
    series o[3] = {{"checked", "#1f6feb", checks},
                   {"failed", "#c62828", failed_checks},
                   {"integrated", "#1a7f37", integrated}};
    svg_chart(b, "Orphan modules checked, failed and integrated per cycle", "", o, 3, n, labels, 0);
    st_buf_puts(b, "</div>\n");
    free(failed_checks);
    free(v);
}

/* The rest of the orphans section: the last cycle's checks and integrated modules. */
static void section_orphans_last(st_buf *b, yajl_val last)
{
    yajl_val checks = st_jv_get(last, "orphan_checks");
    st_buf_puts(b, "<h3>Orphan checks of the last cycle</h3>\n");
    if (!obj_len(checks)) {
        st_buf_puts(b, "<p class=\"muted\">No orphan module was checked.</p>\n");
    } else {
        st_buf_puts(b, "<table><tr><th>module</th><th>verdict</th><th>reason</th></tr>\n");
        for (size_t i = 0; i < obj_len(checks); i++) {
            yajl_val c = checks->u.object.values[i];
            const char *verdict = st_jv_str(c, "verdict");
            yajl_val cached = st_jv_get(c, "cached");
            st_buf_puts(b, "<tr><td><code>");
            esc_text(b, checks->u.object.keys[i]);
            st_buf_printf(b, "</code></td><td class=\"%s\">",
                          verdict && strcmp(verdict, "passed") == 0   ? "pass"
                          : verdict && strcmp(verdict, "failed") == 0 ? "fail"
                                                                      : "warn");
            esc_text(b, verdict ? verdict : "-");
            if (cached && YAJL_IS_TRUE(cached))
                st_buf_puts(b, " <span class=\"muted\">(cached)</span>");
            st_buf_puts(b, "</td><td>");
            esc_text(b, st_jv_str(c, "reason"));
            st_buf_puts(b, "</td></tr>\n");
        }
        st_buf_puts(b, "</table>\n");
    }
    st_buf_puts(b, "<h3>Integrated in the last cycle</h3>\n");
    name_list(b, st_jv_get(st_jv_get(last, "integration"), "integrated"), "Nothing.");
    st_buf_puts(b, "</section>\n");
}

typedef struct slow {
    const char *nodeid, *outcome, *phase;
    double duration;
} slow;

static int slow_cmp(const void *a, const void *b)
{
    double x = ((const slow *)a)->duration, y = ((const slow *)b)->duration;
    return x < y ? 1 : x > y ? -1 : strcmp(((const slow *)a)->nodeid, ((const slow *)b)->nodeid);
}

#define SLOWEST 20

static void section_slowest(st_buf *b, yajl_val last)
{
    yajl_val tests = st_jv_get(last, "tests");
    size_t n = arr_len(tests), k = 0;
    slow *v = calloc(n ? n : 1, sizeof(*v));
    if (!v) {
        b->oom = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        yajl_val t = tests->u.array.values[i];
        double d = num(t, "duration");
        if (isnan(d) || !st_jv_str(t, "nodeid"))
            continue;
        v[k++] = (slow){st_jv_str(t, "nodeid"), st_jv_str(t, "outcome"), st_jv_str(t, "phase"), d};
    }
    qsort(v, k, sizeof(*v), slow_cmp);
    st_buf_printf(b, "<section id=\"slowest\"><h2>Slowest tests of the last cycle</h2>\n");
    if (!k) {
        st_buf_puts(b, "<p class=\"muted\">No test ran.</p>\n");
    } else {
        st_buf_puts(b, "<table><tr><th>test</th><th>phase</th><th>outcome</th><th>duration</th>"
                       "</tr>\n");
        for (size_t i = 0; i < k && i < SLOWEST; i++) {
            char t[48];
            fmt_duration(t, sizeof(t), v[i].duration);
            st_buf_puts(b, "<tr><td><code>");
            esc_text(b, v[i].nodeid);
            st_buf_puts(b, "</code></td><td>");
            esc_text(b, v[i].phase);
            st_buf_puts(b, "</td><td>");
            esc_text(b, v[i].outcome);
            st_buf_printf(b, "</td><td class=\"n\">%s</td></tr>\n", t);
        }
        st_buf_puts(b, "</table>\n");
    }
    st_buf_puts(b, "</section>\n");
    free(v);
}

char *st_html_render(const char *title, const double *started, const char *const *results, size_t n)
{
    st_buf b = {0};
    yajl_val *runs = calloc(n ? n : 1, sizeof(yajl_val));
    char **labels = calloc(n ? n : 1, sizeof(*labels));
    size_t m = 0;
    if (!runs || !labels) {
        free(runs);
        free(labels);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char err[128];
        yajl_val v = results[i] ? st_json_parse(results[i], err, sizeof(err)) : NULL;
        if (!v || !YAJL_IS_OBJECT(v)) {
            st_warn("html: the results of cycle %zu of %zu are not a JSON object (%s); left out",
                    i + 1, n,
                    v            ? "another JSON type"
                    : results[i] ? err
                                 : "none stored");
            if (v)
                yajl_tree_free(v);
            continue;
        }
        char when[32];
        st_utc_iso8601(started[i], when, sizeof(when));
        when[16] = '\0'; /* "YYYY-MM-DDTHH:MM" */
        when[10] = ' ';
        labels[m] = st_strdup(when);
        runs[m++] = v;
    }
    char now[32];
    st_utc_iso8601(st_wall_clock(), now, sizeof(now));
    st_buf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                    "style-src 'unsafe-inline'; img-src data:\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                    "<title>selftest-core report: ");
    esc_text(&b, title);
    st_buf_printf(&b,
                  "</title>\n<style>%s</style>\n</head><body>\n<header><h1>selftest-core "
                  "report: ",
                  css);
    esc_text(&b, title);
    st_buf_printf(&b,
                  "</h1><p>%zu cycle%s from metrics.db &middot; generated %s</p></header>\n"
                  "<main>\n",
                  m, m == 1 ? "" : "s", now);
    if (m == 0) {
        st_buf_puts(&b, "<section><p>No cycle has been recorded yet.</p></section>\n");
    } else {
        char when[64];
        snprintf(when, sizeof(when), "started %s UTC", labels[m - 1]);
        section_summary(&b, runs[m - 1], when);
        section_failures(&b, runs[m - 1]);
        section_changes(&b, runs, (const char *const *)labels, m);
        section_flaky(&b, runs, (const char *const *)labels, m);
        section_trends(&b, runs, (const char *const *)labels, m);
        section_orphans_last(&b, runs[m - 1]);
        section_slowest(&b, runs[m - 1]);
    }
    st_buf_puts(&b, "</main>\n</body></html>\n");
    for (size_t i = 0; i < m; i++) {
        yajl_tree_free(runs[i]);
        free(labels[i]);
    }
    free(runs);
    free(labels);
    if (b.oom) {
        st_buf_free(&b);
        return NULL;
    }
    return st_buf_steal(&b);
}

/* ---- the command --------------------------------------------------------------------------- */

int st_html_report(const st_settings *s, const char *out_dir, unsigned cycles, int *no_runs)
{
    *no_runs = 0;
    char *db_path = st_path_join(s->data_dir, "metrics.db");
    char *dir = out_dir ? st_path_absolute(NULL, out_dir) : st_path_join(s->data_dir, "html");
    char *file = dir ? st_path_join(dir, "index.html") : NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char **texts = NULL;
    double *started = NULL;
    size_t n = 0;
    int status = ST_ERR_IO;
    struct stat sb;
    if (!db_path || !dir || !file) {
        status = ST_ERR_NOMEM;
        goto out;
    }
    if (stat(db_path, &sb) != 0) {
        if (errno == ENOENT) {
            st_log_raw(ST_LOG_WARNING,
                       "selftest-core html: %s does not exist: no cycle has run yet\n", db_path);
            *no_runs = 1;
            status = ST_OK;
        } else {
            st_error("html: %s: %s", db_path, strerror(errno));
        }
        goto out;
    }
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(db, 10000) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT started_at, results FROM runs ORDER BY id DESC LIMIT ?", -1,
                           &st, NULL) != SQLITE_OK) {
        st_error("html: %s: %s", db_path, db ? sqlite3_errmsg(db) : "cannot open");
        goto out;
    }
    texts = calloc(cycles, sizeof(*texts));
    started = calloc(cycles, sizeof(*started));
    if (!texts || !started) {
        status = ST_ERR_NOMEM;
        goto out;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)cycles);
    int rc;
    while (n < cycles && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 1);
        if (!t)
            continue; /* a run stored without its results object */
        started[n] = sqlite3_column_double(st, 0);
        if (!(texts[n++] = st_strdup((const char *)t))) {
            status = ST_ERR_NOMEM;
            goto out;
        }
    }
    if (n < cycles && rc != SQLITE_DONE) {
        st_error("html: %s: %s", db_path, sqlite3_errmsg(db));
        goto out;
    }
    if (n == 0) {
        st_log_raw(ST_LOG_WARNING, "selftest-core html: %s holds no run yet\n", db_path);
        *no_runs = 1;
        status = ST_OK;
        goto out;
    }
    /* oldest first */
    for (size_t i = 0; i < n / 2; i++) {
        char *tt = texts[i];
        texts[i] = texts[n - 1 - i];
        texts[n - 1 - i] = tt;
        double d = started[i];
        started[i] = started[n - 1 - i];
        started[n - 1 - i] = d;
    }
    const char *base = strrchr(s->project_root, '/');
    char *page = st_html_render(base && base[1] ? base + 1 : s->project_root, started,
                                (const char *const *)texts, n);
    if (!page) {
        status = ST_ERR_NOMEM;
        goto out;
    }
    const char *what = NULL;
    int wrc = st_mkdir_p(dir, 0755);
    if (wrc == 0)
        wrc = st_write_file_atomic_what(file, page, strlen(page), 0644, &what);
    free(page);
    if (wrc < 0) {
        st_error("html: cannot write %s%s%s: %s", wrc == 0 || what ? file : dir,
                 what ? ": cannot " : "", what ? what : "", strerror(-wrc));
        goto out;
    }
    printf("%s\n", file);
    status = ST_OK;
out:
    if (st)
        sqlite3_finalize(st);
    if (db)
        sqlite3_close(db);
    for (size_t i = 0; texts && i < n; i++)
        free(texts[i]);
    free(texts);
    free(started);
    free(db_path);
    free(dir);
    free(file);
    return status;
}
