/* SPDX-License-Identifier: MIT */
/* The pipeline: discover -> run -> classify -> integrate -> export (docs/spec.md §3). A pipeline is
 * opened once (plugins loaded, created, started; the metrics DB opened), runs one or many cycles
 * (run-scheduled keeps it open so exporters serve between cycles), and is closed. */
#ifndef ST_PIPELINE_H
#define ST_PIPELINE_H

#include "settings.h"

/* Counters "since start" (the legacy gauges); owned by the caller so they survive a SIGHUP
 * reload, which closes and reopens the pipeline. */
typedef struct st_counters {
    unsigned long long container_failures, container_timeouts;
    unsigned long long orphans_tested, orphans_reintroduced, orphans_failed, orphans_redundant;
    unsigned long long orphans_unmet; /* checks that failed only for a missing package */
    unsigned long long runs;
} st_counters;

typedef struct st_pipeline_opts {
    int json;      /* stream JSON lines on stdout */
    int progress;  /* live progress line (stdout is a TTY) */
    int color;
    int (*should_stop)(void); /* polled; non-zero stops the run (signals) */
    int aborted_status;       /* the exit status of a cycle stopped that way */
} st_pipeline_opts;

typedef struct st_pipeline st_pipeline;

/* Returns 0 and *out, or the exit status of the failure (2 configuration, 3 infrastructure). */
int st_pipeline_open(st_settings *s, st_pipeline **out);
/* One cycle; returns its exit status (docs/spec.md §1.1). */
int st_pipeline_cycle(st_pipeline *p, const st_pipeline_opts *o, st_counters *counters);
void st_pipeline_close(st_pipeline *p);

/* The `discover` command: runs only the discover stage, updates the orphan files, and prints
 * batches, orphan and isolated modules (with --deps, what each PATH reaches); json: one object
 * {"batches", "modules", "orphans", "isolated"[, "deps"]}. Returns an exit status. */
int st_pipeline_discover(st_pipeline *p, int json, const st_strv *deps);

/* The `cleanup` command: the runtime's cleanup_stale with retries (the batches' capped backoff;
 * should_stop, may be NULL, is polled while waiting and ends the retries); report prints the
 * outcome on stdout (else it is logged at info level). Returns an exit status. */
int st_pipeline_cleanup(st_settings *s, double max_age_s, st_counters *counters, int report,
                        int (*should_stop)(void));

#endif
