/* SPDX-License-Identifier: MIT */
/* MetricsDB (docs/spec.md §9.2): <data>/metrics.db, SQLite, owned by the core. menace-compatible
 * eval_metrics rows plus runs, per-test and per-orphan outcomes that the classify stage reads.
 * Versioned schema (PRAGMA user_version) with migrations; WAL; every run's writes in one
 * transaction, so a reader in another process sees a run whole or not at all. */
#ifndef ST_METRICSDB_H
#define ST_METRICSDB_H

#include "results.h"

#define ST_METRICSDB_SCHEMA 3

typedef struct st_metricsdb st_metricsdb;

/* Every function here returns ST_OK or a negative st_status, logged with the file name:
 * ST_ERR_MALFORMED (not an SQLite database, a damaged one, a newer schema, a table or column
 * that cannot be repaired), ST_ERR_TIMEOUT (another process held the DB past the busy timeout),
 * ST_ERR_IO (the file system), ST_ERR_INTERNAL (a run stored twice), ST_ERR_NOMEM. Never
 * ST_ERR_INVALID: the metrics DB is data, not configuration. */

/* Opens (creating and migrating) the DB. A DB of a newer schema is refused. */
int st_metricsdb_open(const char *path, st_metricsdb **out);
void st_metricsdb_close(st_metricsdb *db);

/* Fills run->regressions / fixed / still_failing / new_tests from the newest earlier run that
 * was not aborted. ST_OK also when there is no earlier run. */
int st_metricsdb_classify(st_metricsdb *db, st_run *run);
/* The recorded single-process cost of each test path in paths[0..n): from the newest runs that
 * were not aborted nor `run --changed` subsets (at most ST_HISTORY_RUNS of them), the first
 * that ran the path gives the sum of its tests' recorded durations (*duration_s) and how many
 * tests it ran (*tests). A path no such run ran gets duration_s[i] = -1. */
#define ST_HISTORY_RUNS 10
int st_metricsdb_batch_history(st_metricsdb *db, const char *const *paths, size_t n,
                               double *duration_s, long *tests);
/* The recorded duration of each test of test path `path` (all its phases) in the newest run of
 * those batch_history reads that ran the path, in the order they ran: nodeids and files get
 * each test's node id and file (repo-relative), *duration_s (malloc'd, caller frees) its
 * duration. Nothing (nodeids empty) without such a run. */
int st_metricsdb_test_durations(st_metricsdb *db, const char *path, st_strv *nodeids,
                                st_strv *files, double **duration_s);
/* Retention: from now on, each store deletes (in its transaction) the runs older than the
 * newest n that were not aborted, with their test and orphan rows, except the newest passing
 * run (with and without a git commit) and the newest run that was not a `run --changed`
 * subset; eval_metrics rows are kept. 0 (the default of a handle) keeps every run. */
void st_metricsdb_keep_runs(st_metricsdb *db, unsigned n);
/* Stores the run (one transaction); on failure nothing is half-written. */
int st_metricsdb_store(st_metricsdb *db, const st_run *run, const char *results_json);

/* Change-aware runs. The newest passing run (not aborted, exit status 0) with a recorded git
 * commit: *commit and *run_id (may be NULL) get them, NULL both when there is none. */
int st_metricsdb_last_passing(st_metricsdb *db, char **commit, char **run_id);
/* The git_dirty list of the results of run run_id (the files that differed from its commit
 * when it started) appended to files (ST_OK also when there is none). */
int st_metricsdb_run_dirty(st_metricsdb *db, const char *run_id, st_strv *files);
/* The test files with a failed or errored test in every run since the newest passing one (no
 * passing run: in the newest run) go to files; the paths of those runs' batches that failed
 * without a failing test (a crash, a timeout, nothing collected) to failed_batches. */
int st_metricsdb_failed_files(st_metricsdb *db, st_strv *files, st_strv *failed_batches);

/* Flaky tests. The score of each test over the newest `window` runs that were not aborted
 * (docs/flaky.md): runs = the runs that ran it (skipped ones not counted), flaky = those where
 * it failed and passed when run again, flips = changes between failing and passing from one
 * run to the next (a flaky run passed); score = (flaky + max(flips - 1, 0)) / runs, at most 1.
 * last_flake: when the newest flaky run finished (0: none); message: the last line of its
 * newest failure; last: its verdict in the newest run ("passed", "flaky", "failed",
 * "skipped"; static). Sorted by node id. Returns 0 or -1 (logged). */
typedef struct st_flaky_score {
    char *nodeid;
    double score;
    unsigned runs, flaky, flips;
    double last_flake;
    char *message;
    const char *last;
} st_flaky_score;
int st_metricsdb_flaky_scores(st_metricsdb *db, unsigned window, st_flaky_score **out,
                              size_t *n);
void st_flaky_scores_free(st_flaky_score *v, size_t n);
/* How many of the newest runs (at most max, not aborted) that ran nodeid it passed in a row
 * (a flaky run breaks the row). 0 or -1 (logged). */
int st_metricsdb_passing_streak(st_metricsdb *db, const char *nodeid, unsigned max,
                                unsigned *streak);
/* The tests that failed (failed or error, not flaky) in each of the newest `runs` runs that
 * were not aborted (none when fewer runs are stored), appended to out. 0 or a negative
 * st_status (logged). */
int st_metricsdb_still_failing(st_metricsdb *db, unsigned runs, st_strv *out);

#endif
