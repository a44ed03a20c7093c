/* SPDX-License-Identifier: MIT */
/* Prometheus text exposition format 0.0.4, written by hand: the escaping rules (into an st_buf;
 * doubles by st_format_double), and the one function that renders selftest-core's metric
 * families from a plain snapshot struct. No I/O, no locking: callers own the snapshot and the buffer. */
#ifndef PROM_TEXT_H
#define PROM_TEXT_H

#include <stddef.h>

#include "st_buf.h"
#include "st_num.h"

/* The Content-Type every consumer (Prometheus 2 and 3, Pushgateway, node_exporter) accepts. */
#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Upper bounds (seconds) of the run-duration histogram; +Inf is implicit. */
#define PROM_N_BUCKETS 10
extern const double prom_bucket_bounds[PROM_N_BUCKETS];

/* Appends s escaped for a `# HELP` line (only `\` and newline are escaped). */
void prom_escape_help(st_buf *b, const char *s);
/* Appends s escaped for a label value (`\`, `"` and newline). */
void prom_escape_label(st_buf *b, const char *s);

/* Everything the exporter exports; plain data, copied under the exporter's mutex. */
typedef struct prom_snapshot {
    const char *version;      /* self_test_build_info{version}; never NULL */
    const char *runtime;      /* self_test_config_info{runtime}; NULL: family omitted */
    int have_run;             /* a run has finished: the last_* families are written */
    int have_success;         /* a run has succeeded: last_success is written */
    /* the ten legacy gauges */
    double passed, failed;
    double average_runtime_s;
    double coverage;          /* percent; NaN when unavailable */
    unsigned long long container_failures, container_timeouts;
    unsigned long long orphans_tested, orphans_reintroduced, orphans_failed, orphans_redundant;
    unsigned long long orphans_unmet;
    unsigned long long flaky_total; /* tests that failed, then passed when run again */
    /* additions */
    double last_run_ts, last_success_ts, last_run_duration_s;
    int last_exit_status;               /* the CLI exit status of the last run */
    unsigned long long failed_in_a_row; /* runs in a row, up to the last, that did not exit 0 */
    unsigned long long runs_total;
    unsigned long long bucket_counts[PROM_N_BUCKETS]; /* cumulative: observations <= bound */
    double duration_sum_s;
    unsigned long long duration_count;
} prom_snapshot;

/* Adds one run duration to the histogram fields of s. */
void prom_observe_duration(prom_snapshot *s, double seconds);

/* Appends the whole exposition (every family: HELP, TYPE, samples; LF only; final newline).
 * Returns 0, or -1 when the buffer ran out of memory. */
int prom_render(const prom_snapshot *s, st_buf *b);

#endif
