/* SPDX-License-Identifier: MIT */
/* The pipeline: discover -> run -> classify -> integrate -> export (docs/spec.md §3). A pipeline is
 * opened once (plugins loaded, created, started; the metrics DB opened), runs one or many cycles
 * (run-scheduled keeps it open so exporters serve between cycles), and is closed. */
#ifndef ST_PIPELINE_H
#define ST_PIPELINE_H

#include "exitstatus.h"
#include "settings.h"

/* Counters "since start" (the legacy gauges); owned by the caller so they survive a SIGHUP
 * reload, which closes and reopens the pipeline. */
typedef struct st_counters {
    unsigned long long container_failures, container_timeouts;
    unsigned long long orphans_tested, orphans_reintroduced, orphans_failed, orphans_redundant;
    unsigned long long orphans_unmet; /* checks that failed only for a missing package */
    unsigned long long runs;
    unsigned long long flaky; /* tests that failed and then passed when run again */
} st_counters;

typedef struct st_pipeline_opts {
    int json;      /* stream JSON lines on stdout */
    int progress;  /* live progress line (stdout is a TTY) */
    int color;
    int (*should_stop)(void); /* polled; non-zero stops the run (signals) */
    st_verdict stopped;       /* the verdict of a cycle stopped that way (`run`: broken, exit 3;
                                 run-scheduled: passed, its last cycle exits 0) */
    /* change-aware runs: run only the tests the changes since the last passing run (or
     * changed_rev, when not empty) affect; with changed_first, run everything, those first */
    int changed, changed_first;
    const char *changed_rev;
    int explain;              /* print why each test file was selected */
} st_pipeline_opts;

typedef struct st_pipeline st_pipeline;

/* Every function here returns ST_OK or a negative st_status (plugin.h), logged: ST_ERR_INVALID
 * for a configuration or usage error (a bad setting, test path or plugin), any other for what
 * the infrastructure could not do. cli.c makes it an exit status (exitstatus.h). */

/* Returns ST_OK and *out, or the status of the failure. */
int st_pipeline_open(st_settings *s, st_pipeline **out);
/* One cycle. ST_OK when its run finished (or was stopped), with its verdict in *verdict (the
 * results object's exit_status is st_exit_status(ST_OK, *verdict)); else the status that ended
 * the cycle before its run. */
int st_pipeline_cycle(st_pipeline *p, const st_pipeline_opts *o, st_counters *counters,
                      st_verdict *verdict);
void st_pipeline_close(st_pipeline *p);

/* The `discover` command: runs only the discover stage, updates the orphan files, and prints
 * batches, orphan and isolated modules (with --deps, what each PATH reaches); json: one object
 * {"batches", "modules", "orphans", "isolated"[, "deps"]}. Returns ST_OK or a status. */
int st_pipeline_discover(st_pipeline *p, int json, const st_strv *deps);

/* The `cleanup` command: the runtime's cleanup_stale with retries (the batches' capped backoff;
 * should_stop, may be NULL, is polled while waiting and ends the retries); report prints the
 * outcome on stdout (else it is logged at info level). Returns ST_OK, or a status: the
 * runtime's failure, ST_ERR_IO when containers could not be removed, ST_ERR_CANCELLED when
 * stopped before retrying. */
int st_pipeline_cleanup(st_settings *s, double max_age_s, st_counters *counters, int report,
                        int (*should_stop)(void));

#endif
