/* SPDX-License-Identifier: MIT */
/* The pipeline's stages as the cycle driver (pipeline.c) calls them; internal to the pipeline*.c
 * files. Like pipeline.h's functions, they return ST_OK or a negative st_status (logged).
 *
 *   pipeline_discover.c   test paths, the discover stage, the `discover` command
 *   pipeline.c            open/close, the cycle driver, the run stage, `cleanup`
 *   pipeline_progress.c   progress line, streamed JSON lines, per-batch records and log lines
 *   pipeline_integrate.c  the integrate stage
 *   pipeline_export.c     the exporters' begin_run / end_run, the failure report */
#ifndef ST_PIPELINE_STAGES_H
#define ST_PIPELINE_STAGES_H

#include "checkcache.h"
#include "metricsdb.h"
#include "orphans.h"
#include "pipeline.h"
#include "plugins.h"
#include "results.h"
#include "runner.h"

struct st_pipeline {
    st_settings *s;
    st_plugin_set ps;
    st_metricsdb *db;
    int fell_back; /* the container engine was unreachable: running on the host */
};

/* ---- discover (pipeline_discover.c) ---------------------------------------------------------- */

/* The modules to check, with what discovery said of them. */
typedef struct st_module_list {
    st_batch *v;
    size_t n, cap;
} st_module_list;

/* The entry of path, created with origin when new; NULL when out of memory. */
st_batch *st_module_add(st_module_list *ml, const char *path, st_module_origin origin);
void st_module_list_free(st_module_list *ml);
/* The dotted module name of a repo-relative path, or NULL when it is not importable by name. */
char *st_module_name(const st_settings *s, const char *path);
/* Turns the configured or given paths into repo-relative batch paths, and .py files named on
 * the command line that are not test files into modules. pf: the preflight, for the default
 * paths (NULL when paths are set). Returns ST_OK, or ST_ERR_INVALID for a bad path (logged),
 * ST_ERR_NOMEM. */
int st_resolve_paths(const st_settings *s, const st_preflight *pf, st_strv *out,
                     st_strv *modules);
/* Is the orphan_exclude list the built-in default? (only for messages) */
int st_exclude_is_default(const st_settings *s);
/* The orphan state of a run or a `discover`, read under the run lock: the orphan files into
 * *store (emptied with refresh_orphans; *cache then points to it) and the rules of what is
 * never an orphan, for the test paths. ST_OK, or a negative st_status (logged; never
 * ST_ERR_INVALID). Whatever the result, the caller frees *cache (when set) and *rules. */
int st_orphan_state_load(const st_settings *s, const st_strv *paths, st_orphan_cache *store,
                         st_orphan_cache **cache, st_orphan_rules *rules);
/* Asks every discovery plugin for batches and modules (without one, the paths are the batches);
 * with --include-orphans adds the orphan cache's candidates. excluded (may be NULL) gets
 * "path\trule" of each file the rules excluded. Returns ST_OK or a negative st_status (logged;
 * never ST_ERR_INVALID: a plugin op after start() is not a configuration error). */
int st_discover_stage(const st_settings *s, st_plugin_set *ps, const st_strv *paths,
                      st_strv *batches, st_module_list *modules, st_orphan_cache *cache,
                      const st_orphan_rules *rules, st_strv *excluded);

/* ---- change-aware runs (pipeline_changed.c) ------------------------------------------------ */

/* Opens the metrics DB once (p->db). ST_OK or a negative st_status (logged; never
 * ST_ERR_INVALID). */
int st_pipeline_open_db(st_pipeline *p);
/* `run --changed[=REV]` / `--changed-first`: restricts (or reorders) batches to the test files
 * the changes affect and prints why (--explain). *keeps gets, per remaining batch, the test
 * files to run (empty: the whole path), or stays NULL when every test runs as usual (not a git
 * work tree: a warning). *subset is set when not every test will run (--changed, and not
 * everything selected). Returns ST_OK or a negative st_status (ST_ERR_INVALID: a revision
 * that names no commit, or REV outside a git work tree; ST_ERR_UNAVAILABLE: git cannot be
 * run). */
int st_changed_stage(st_pipeline *p, const st_pipeline_opts *o, st_strv *batches,
                     st_strv **keeps, int *subset);
/* Does the project's pytest configuration (pytest.ini, .pytest.ini, pyproject.toml, tox.ini,
 * setup.cfg) or a pytest argument set python_files? Then test files may have other names than
 * the ones the import graph knows (test_*.py, *_test.py). Returns the file (in buf) or
 * "pytest_args" that does, else NULL. A plain text search: a mention in a comment also counts,
 * which only makes the callers cautious (a whole run, an unsplit path). */
const char *st_pipeline_sets_python_files(const st_settings *s, char *buf, size_t size);

/* ---- run (pipeline.c) ------------------------------------------------------------------------ */

/* Prepares the runtime and runs the preflight through it. Returns ST_OK or a negative st_status
 * (never ST_ERR_INVALID); free pf either way. */
int st_preflight_stage(st_pipeline *p, const char *work, st_preflight *pf);

/* ---- progress (pipeline_progress.c) ---------------------------------------------------------- */

/* One cycle as the runner's hooks see it. */
typedef struct st_cycle {
    const st_settings *s;
    const st_pipeline_opts *o;
    st_plugin_set *ps;
    st_counts cumulative;
    size_t done;
    double t0;
    int progress_shown;
    const st_preflight *pf; /* what the interpreter has (run stage) */
    size_t units;           /* what the runner runs (batches and shards); 0: the batches */
} st_cycle;

/* The runner's hooks (opaque: the st_cycle); st_progress_clear is also the log hook that clears
 * the progress line before a log line. */
void st_progress_clear(void *opaque);
void st_progress_batch_done(void *opaque, st_run *run, st_batch *b);
/* A path whose shards all finished, rolled up: its exporter records and log line (each shard
 * had its JSON line and log line already). */
void st_progress_rolled_up(st_cycle *c, st_run *run, st_batch *b);
void st_progress_tick(void *opaque, st_run *run, size_t done, size_t running,
                      const st_counts *live);
int st_progress_should_stop(void *opaque);

/* ---- flaky tests (pipeline_rerun.c) --------------------------------------------------------- */

/* After the test batches: runs each failed test again alone (by node id, one process, the same
 * runtime) up to rerun_failures times, the rounds of a cycle within one batch timeout; a test
 * that passes is flaky (its reports get flaky, the batch counts move to counts.flaky,
 * run->flaky lists it). Applies the quarantine file (run->quarantined). A batch that failed only
 * through flaky (unless fail_on_flaky) or quarantined tests becomes ok. Returns ST_OK or a
 * negative st_status. */
int st_rerun_stage(st_pipeline *p, st_cycle *c, st_run *run, const char *work,
                   const st_preflight *pf);
/* After classify: the quarantined tests that passed in this cycle and in the flaky_window - 1
 * cycles before it go to run->quarantine_ready. */
void st_quarantine_ready_stage(st_pipeline *p, st_run *run);

/* ---- integrate (pipeline_integrate.c) -------------------------------------------------------- */

/* Hands the passing, non-redundant modules to every integrator; a failure sets
 * run->integration_failed. */
void st_integrate_stage(st_pipeline *p, st_run *run);

/* ---- export (pipeline_export.c) -------------------------------------------------------------- */

void st_export_begin(st_plugin_set *ps, const st_run *run);
void st_export_end(st_plugin_set *ps, const st_run *run, const char *results_json,
                   const st_counters *c);
/* Writes report_<stamp>.json (the pretty results object) into report_dir; a failure is
 * logged. */
void st_export_report(const st_settings *s, const st_run *run);

#endif
