/* SPDX-License-Identifier: MIT */
/* The run stage: executes the batches of a run through the runtime plugin, concurrently under the
 * worker budget of docs/spec.md §5.1, with infrastructure retries (§5.5), and reads each batch's
 * results. Also the pytest preflight (is pytest importable, are xdist and pytest-cov there). */
#ifndef ST_RUNNER_H
#define ST_RUNNER_H

#include "plugin_services.h"
#include "results.h"
#include "settings.h"

/* Per-batch worker counts for W workers and P batches (docs/spec.md §5.1): batch i gets W div P,
 * plus one if i < W mod P, when P <= W; otherwise 1 each. *concurrency gets how many run at
 * once. */
void st_split_workers(unsigned W, size_t P, unsigned *out, unsigned *concurrency);

/* The worker budget actually used: at most ST_WORKERS_PER_CPU per CPU of this machine (more
 * processes than that only thrash; --workers 100000 would fork 100000 xdist workers). */
#define ST_WORKERS_PER_CPU 4
unsigned st_workers_cap(unsigned requested, unsigned cpus);

/* The worker count history allows a test batch whose tests took duration_s seconds in all
 * (the sum of their recorded durations) over `tests` tests: xdist starts a Python process per
 * worker (about a second each, plus collecting the batch again in every worker), which pays
 * only when each worker gets at least ST_XDIST_SECONDS_PER_WORKER seconds and
 * ST_XDIST_TESTS_PER_WORKER tests of work. Returns min(duration_s / that, tests / that), or 1
 * when that is below 2 (the batch runs in one process, without xdist). */
#define ST_XDIST_SECONDS_PER_WORKER 2.0
#define ST_XDIST_TESTS_PER_WORKER 2
unsigned st_workers_from_history(double duration_s, long tests);

typedef struct st_preflight {
    int pytest, xdist, cov;
    char python_version[32];
    /* pytest's configuration of the project, asked only when no test paths are configured or
     * given (s->paths empty): */
    int config_asked;
    char *config_error;    /* pytest could not read it (its last message line), else NULL */
    char *rootdir;         /* pytest's rootdir and ini file (NULL: none) */
    char *inipath;
    st_strv testpaths;     /* the `testpaths` ini value as pytest reads it */
    st_strv pythonpath;    /* the `pythonpath` ini value (pytest 7+), relative to the root */
    st_strv default_paths; /* what pytest would run without arguments: testpaths globbed as
                            * pytest globs them (relative to the project root), or empty when
                            * testpaths is unset or matched nothing */
    unsigned cleanup_failures; /* the preflight's container could not be removed */
    st_strv sys_path;          /* the interpreter's sys.path (and user site) directories and
                                * sys.executable */
    char *answer;              /* the answer line as the interpreter printed it (NULL: none) */
    int cached;                /* the answer came from the preflight cache */
} st_preflight;

/* Runs the interpreter through the runtime to learn what is installed (and, with no test paths
 * in the settings, what pytest's configuration says the test paths are; one interpreter start
 * for both). Returns ST_OK, or after logging ST_ERR_UNAVAILABLE (the interpreter missing or
 * failing, pytest not importable) or ST_ERR_NOMEM. Free with st_preflight_free either way. */
int st_preflight_run(const st_settings *s, st_instance *runtime, const char *work_dir,
                     st_preflight *out);
void st_preflight_free(st_preflight *pf);
/* Reads an answer line of the preflight into out (whose config_asked says whether the config
 * part is wanted). Returns ST_OK, or after logging ST_ERR_UNAVAILABLE (not an answer, pytest
 * not importable) or ST_ERR_NOMEM. */
int st_preflight_answer(const st_settings *s, const char *line, st_preflight *out);
/* The preflight's Python code (a change to it invalidates cached answers). */
const char *st_preflight_code(void);

/* "PYTHONPATH=..." for a child: [support_dir:] the pythonpath setting, then the inherited
 * PYTHONPATH; NULL when there is nothing to set or on OOM (*oom set). */
char *st_pythonpath_env(const st_settings *s, int with_support, int *oom);

/* The wait before retry number `retry` (1 for the first) of an infrastructure failure or a
 * timeout: 0.1 s, doubling, at most ST_RETRY_DELAY_MAX_S. A stop request (SIGTERM/SIGINT) ends
 * the wait at once. */
#define ST_RETRY_DELAY_MAX_S 30.0
double st_retry_delay(unsigned retry);

typedef struct st_runner_hooks {
    void *opaque;
    /* Called (serialised) as each batch finishes, in completion order. */
    void (*batch_done)(void *opaque, st_run *run, st_batch *b);
    /* Called a few times a second while batches run, from the calling thread; live: the
     * outcomes the running batches have reported so far (test by test, from their results
     * files), not yet in any finished batch's counts. */
    void (*tick)(void *opaque, st_run *run, size_t done, size_t running, const st_counts *live);
    /* Polled; non-zero asks the runner to cancel what runs and stop. */
    int (*should_stop)(void *opaque);
    /* Non-zero: fill tick's live counts (reads the running batches' results files). */
    int want_live;
} st_runner_hooks;

/* Executes items[0..n) (test batches or orphan checks of run, whose id, path and output_dir are
 * set): test batches under the worker split of docs/spec.md §5.1, orphan checks one worker each,
 * sandboxed. Returns ST_OK when every item was attempted (whatever the outcome), else
 * ST_ERR_NOMEM or ST_ERR_UNAVAILABLE (no worker thread could start). */
int st_runner_run(const st_settings *s, st_instance *runtime, const st_preflight *pf, st_run *run,
                  st_batch *items, size_t n, const st_runner_hooks *hooks);

/* The argv for one batch (exposed for tests): python -m pytest -p selftest_pytest_plugin
 * --rootdir=ROOT [-n W] [--cov...] ARGS... PATH; for an orphan check: python -m pytest -p
 * selftest_pytest_plugin -p no:cacheprovider -q --rootdir=ROOT . (run in an empty sandbox dir;
 * the plugin generates the import item from SELF_TEST_ORPHAN_MODULES). */
/* orphan_check_mode "fork": the exec timeout of one orphan check server running n checks (each
 * check keeps its own orphan_timeout inside it). */
double st_fork_group_timeout(const st_settings *s, size_t n);
/* The pytest command line of batch b appended to argv: ST_OK or ST_ERR_NOMEM. */
int st_batch_argv(const st_settings *s, const st_preflight *pf, const st_batch *b, st_strv *argv);

#endif
