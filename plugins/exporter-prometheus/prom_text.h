/* SPDX-License-Identifier: MIT */
/* Prometheus text exposition format 0.0.4, written by hand: a growable buffer, the escaping rules,
 * locale-proof doubles, and the one function that renders selftest-core's metric families from a
 * plain snapshot struct. No I/O, no locking: callers own the snapshot and the buffer. */
#ifndef PROM_TEXT_H
#define PROM_TEXT_H

#include <stddef.h>

/* The Content-Type every consumer (Prometheus 2 and 3, Pushgateway, node_exporter) accepts. */
#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Upper bounds (seconds) of the run-duration histogram; +Inf is implicit. */
#define PROM_N_BUCKETS 10
extern const double prom_bucket_bounds[PROM_N_BUCKETS];

/* A growable byte buffer. On allocation failure `oom` is set, later appends are ignored, and the
 * caller must treat the contents as unusable. */
typedef struct prom_buf {
    char *data; /* NUL-terminated when len > 0; owned; free with prom_buf_free */
    size_t len, cap;
    int oom;
} prom_buf;

void prom_buf_free(prom_buf *b);
void prom_buf_reset(prom_buf *b);                 /* len = 0, keeps the memory */
void prom_buf_put(prom_buf *b, const char *s, size_t n);
void prom_buf_puts(prom_buf *b, const char *s);

/* A double as the text format wants it: NaN, +Inf, -Inf, else the shortest of %.15g..%.17g
 * that reads back exactly, always with '.' whatever LC_NUMERIC says. out needs 32 bytes.
 * Thread-safe (no setlocale). */
void prom_format_double(double v, char out[32]);

/* Appends s escaped for a `# HELP` line (only `\` and newline are escaped). */
void prom_escape_help(prom_buf *b, const char *s);
/* Appends s escaped for a label value (`\`, `"` and newline). */
void prom_escape_label(prom_buf *b, const char *s);

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
    /* additions */
    double last_run_ts, last_success_ts, last_run_duration_s;
    unsigned long long runs_total;
    unsigned long long bucket_counts[PROM_N_BUCKETS]; /* cumulative: observations <= bound */
    double duration_sum_s;
    unsigned long long duration_count;
} prom_snapshot;

/* Adds one run duration to the histogram fields of s. */
void prom_observe_duration(prom_snapshot *s, double seconds);

/* Appends the whole exposition (every family: HELP, TYPE, samples; LF only; final newline).
 * Returns 0, or -1 when the buffer ran out of memory. */
int prom_render(const prom_snapshot *s, prom_buf *b);

#endif
