/* SPDX-License-Identifier: MIT */
/* Prometheus text format 0.0.4 by hand (see prom_text.h). The rules come from what promtool,
 * Prometheus, the Pushgateway and node_exporter's textfile collector accept (docs/prometheus.md):
 * one HELP and TYPE per family before its samples, LF only, a final newline, no timestamps. */
#include "config.h"

#include "prom_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double prom_bucket_bounds[PROM_N_BUCKETS] = {1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600};

/* ---- values ---------------------------------------------------------------------------------- */

static void put_u64(st_buf *b, unsigned long long v)
{
    char tmp[24];
    snprintf(tmp, sizeof(tmp), "%llu", v);
    st_buf_puts(b, tmp);
}

static void put_double(st_buf *b, double v)
{
    char tmp[32];
    st_format_double(v, tmp);
    st_buf_puts(b, tmp);
}

void prom_escape_help(st_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            st_buf_append(b, "\\\\", 2);
        else if (*s == '\n')
            st_buf_append(b, "\\n", 2);
        else
            st_buf_append(b, s, 1);
    }
}

void prom_escape_label(st_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            st_buf_append(b, "\\\\", 2);
        else if (*s == '"')
            st_buf_append(b, "\\\"", 2);
        else if (*s == '\n')
            st_buf_append(b, "\\n", 2);
        else
            st_buf_append(b, s, 1);
    }
}

/* ---- families -------------------------------------------------------------------------------- */

static void family(st_buf *b, const char *name, const char *type, const char *help)
{
    st_buf_puts(b, "# HELP ");
    st_buf_puts(b, name);
    st_buf_puts(b, " ");
    prom_escape_help(b, help);
    st_buf_puts(b, "\n# TYPE ");
    st_buf_puts(b, name);
    st_buf_puts(b, " ");
    st_buf_puts(b, type);
    st_buf_puts(b, "\n");
}

static void gauge_d(st_buf *b, const char *name, const char *help, double v)
{
    family(b, name, "gauge", help);
    st_buf_puts(b, name);
    st_buf_puts(b, " ");
    put_double(b, v);
    st_buf_puts(b, "\n");
}

static void sample_u(st_buf *b, const char *name, const char *type, const char *help,
                     unsigned long long v)
{
    family(b, name, type, help);
    st_buf_puts(b, name);
    st_buf_puts(b, " ");
    put_u64(b, v);
    st_buf_puts(b, "\n");
}

static void info(st_buf *b, const char *name, const char *help, const char *label,
                 const char *value)
{
    family(b, name, "gauge", help);
    st_buf_puts(b, name);
    st_buf_puts(b, "{");
    st_buf_puts(b, label);
    st_buf_puts(b, "=\"");
    prom_escape_label(b, value);
    st_buf_puts(b, "\"} 1\n");
}

static void histogram(st_buf *b, const prom_snapshot *s)
{
    static const char name[] = "self_test_run_duration_seconds";
    family(b, name, "histogram", "Wall time of finished runs in seconds.");
    for (size_t i = 0; i < PROM_N_BUCKETS; i++) {
        st_buf_puts(b, name);
        st_buf_puts(b, "_bucket{le=\"");
        put_double(b, prom_bucket_bounds[i]);
        st_buf_puts(b, "\"} ");
        put_u64(b, s->bucket_counts[i]);
        st_buf_puts(b, "\n");
    }
    st_buf_puts(b, name);
    st_buf_puts(b, "_bucket{le=\"+Inf\"} ");
    put_u64(b, s->duration_count);
    st_buf_puts(b, "\n");
    st_buf_puts(b, name);
    st_buf_puts(b, "_sum ");
    put_double(b, s->duration_sum_s);
    st_buf_puts(b, "\n");
    st_buf_puts(b, name);
    st_buf_puts(b, "_count ");
    put_u64(b, s->duration_count);
    st_buf_puts(b, "\n");
}

void prom_observe_duration(prom_snapshot *s, double seconds)
{
    if (isnan(seconds) || seconds < 0)
        seconds = 0;
    for (size_t i = 0; i < PROM_N_BUCKETS; i++)
        if (seconds <= prom_bucket_bounds[i])
            s->bucket_counts[i]++;
    s->duration_sum_s += seconds;
    s->duration_count++;
}

int prom_render(const prom_snapshot *s, st_buf *b)
{
    /* The ten legacy names of the Python service: exact names, gauges, no labels. */
    gauge_d(b, "self_test_passed_total", "Passed tests of the last run.", s->passed);
    gauge_d(b, "self_test_failed_total", "Failed tests (failures and errors) of the last run.",
            s->failed);
    gauge_d(b, "self_test_average_runtime_seconds", "Mean batch runtime of the last run in seconds.",
            s->average_runtime_s);
    gauge_d(b, "self_test_average_coverage",
            "Coverage percent of the last run (NaN when coverage is unavailable).", s->coverage);
    sample_u(b, "self_test_container_failures_total", "gauge",
             "Container cleanup and listing failures since start.", s->container_failures);
    sample_u(b, "self_test_container_timeouts_total", "gauge", "Container timeouts since start.",
             s->container_timeouts);
    sample_u(b, "orphan_modules_tested_total", "gauge", "Orphan modules tested since start.",
             s->orphans_tested);
    sample_u(b, "orphan_modules_reintroduced_total", "gauge",
             "Orphan modules integrated since start.", s->orphans_reintroduced);
    sample_u(b, "orphan_modules_failed_total", "gauge", "Orphan modules that failed since start.",
             s->orphans_failed);
    sample_u(b, "orphan_modules_redundant_total", "gauge",
             "Orphan modules skipped as redundant since start.", s->orphans_redundant);
    sample_u(b, "orphan_modules_unmet_total", "gauge",
             "Orphan import checks that failed only for a missing third-party package, since "
             "start.",
             s->orphans_unmet);

    /* Additions, correctly typed. */
    info(b, "self_test_build_info", "selftest-core version.", "version", s->version);
    if (s->runtime)
        info(b, "self_test_config_info", "Runtime of the last run (host, docker, podman).",
             "runtime", s->runtime);
    if (s->have_run) {
        gauge_d(b, "self_test_last_run_timestamp_seconds",
                "UNIX time the last run finished.", s->last_run_ts);
        if (s->have_success)
            gauge_d(b, "self_test_last_success_timestamp_seconds",
                    "UNIX time the last successful run finished.", s->last_success_ts);
        gauge_d(b, "self_test_last_run_duration_seconds", "Wall time of the last run in seconds.",
                s->last_run_duration_s);
        gauge_d(b, "self_test_last_exit_status",
                "Exit status of the last run (0 passed, 1 tests failed, 2 configuration, "
                "3 infrastructure).",
                s->last_exit_status);
        sample_u(b, "self_test_consecutive_failed_runs", "gauge",
                 "Runs in a row, up to the last one, that did not exit 0 (since start).",
                 s->failed_in_a_row);
    }
    sample_u(b, "self_test_runs_total", "counter", "Runs finished since start.", s->runs_total);
    sample_u(b, "self_test_flaky_total", "counter",
             "Flaky tests (failed, then passed when run again alone; not failed) since start.",
             s->flaky_total);
    histogram(b, s);
    return b->oom ? -1 : 0;
}
