/* SPDX-License-Identifier: MIT */
/* The results model: per-batch outcomes read from the bundled pytest plugin's JSON lines, the
 * batch verdict (docs/spec.md §5.2), and the results object, summary and report of §5.4.
 * Coverage (§5.3: the LCOV reader, the union over a run) is in coverage.h. */
#ifndef ST_RESULTS_H
#define ST_RESULTS_H

#include <selftest/plugin.h>
#include <stdio.h>

#include "util.h"

typedef enum st_outcome {
    ST_OUT_PASSED,
    ST_OUT_FAILED,
    ST_OUT_ERROR,
    ST_OUT_SKIPPED,
    ST_OUT_XFAILED,
    ST_OUT_XPASSED,
    ST_OUT_COUNT
} st_outcome;

const char *st_outcome_name(st_outcome o);

/* Raw counts in pytest's own categories. */
typedef struct st_counts {
    unsigned n[ST_OUT_COUNT];
    unsigned flaky; /* tests that failed, then passed when run again: not in n[] */
} st_counts;

/* The composite counts (docs/spec.md §5.2): passed = passed + xpassed, failed = failed + errors. */
unsigned st_counts_passed(const st_counts *c);
unsigned st_counts_failed(const st_counts *c);
void st_counts_add(st_counts *dst, const st_counts *src);

typedef struct st_test_result {
    char *nodeid;
    char *file;
    char *phase;
    int line;      /* the 1-based line of the test's definition, 0 when unknown */
    st_outcome outcome;
    double duration_s;
    /* the duration as the results file wrote it (a JSON number with a fraction or an
     * exponent, at most 31 characters), written back verbatim; "" when not */
    char duration_text[32];
    char *excerpt; /* failed/error only, bounded */
    /* failed/error only: what pytest captured, at most ST_CAPTURE_MAX bytes each (the end
     * kept, a "[selftest: N earlier bytes not kept]" line first when cut); NULL when empty */
    char *out;
    char *err;
    char *reason;  /* orphan checks: the exception and its line, or NULL */
    char *unmet;   /* orphan checks: the missing third-party package, or NULL */
    char *skip_reason; /* skipped/xfailed: why (at most 1000 bytes), or NULL */
    /* failed/error only, after the reruns: how many times the test ran in all (1: it was not
     * run again), whether one of the reruns passed (the outcome is then "flaky", and the
     * report no longer counts as failed), and whether the quarantine file lists it */
    unsigned attempts;
    int flaky;
    int quarantined;
} st_test_result;

/* Bytes of captured stdout (and of stderr) kept per failing test. */
#define ST_CAPTURE_MAX (64u * 1024)

/* Coverage of one file in one batch: statement lines and which of them ran. */
typedef struct st_cov_line {
    const char *file; /* points into st_batch.cov_files */
    long line;
    int executed;
} st_cov_line;

typedef struct st_retry_error {
    unsigned attempt;
    char *error;
    char *container;
} st_retry_error;

struct st_shard_info;

typedef struct st_batch {
    char *id;           /* "batch-0" */
    st_exec_kind kind;  /* a test batch, or an orphan check of one module */
    char *path;         /* repo-relative test path ("." for the root), or the module's path */
    st_strv select;     /* change-aware runs: the test files of path to run (empty: all of it) */
    int select_first;   /* --changed-first: run select first, then the rest of path */
    /* orphan checks: what discovery said of the module */
    char *module;       /* dotted name, NULL when it can only be run by path */
    st_module_origin origin;
    st_classification classification;
    char *class_reason;
    char *duplicate_of;
    st_strv parents;
    unsigned workers;
    char *output_dir;   /* absolute */
    /* test batches: how the worker count was chosen (a static string: "explicit", "default"
     * or "history"), the most workers the history rule allows (0: no cap), and the recorded
     * single-process duration and test count it used (history_s < 0: no history) */
    const char *workers_rule;
    unsigned workers_max;
    double history_s;
    long history_tests;

    /* filled after the run */
    int done;
    int ok;             /* every collected test passed */
    int infra_error;    /* it could not be run or its results could not be read */
    int no_tests;       /* pytest exit 5 */
    char *reason;       /* why it failed, for humans; NULL when ok or when tests speak */
    int exit_status;    /* pytest's, -1 when it did not exit normally */
    int term_signal;
    int timed_out;
    int aborted;        /* cut short, or never started, because the run was stopped */
    int ended_early;    /* pytest started its session and exited without finishing it */
    char *limit;        /* the resource limit the runtime stopped it at, else NULL */
    unsigned leftover;  /* processes still running when pytest exited (the runtime stopped them) */
    int saw_start, saw_end;
    st_counts counts;
    st_strv running;    /* tests started and not finished (test_start without test_finish) */
    char *container;    /* the container of the last attempt, NULL on the host */
    char *truncated;    /* message when the last line had no newline, else NULL */
    char *read_error;   /* message when the results file could not be read, else NULL */
    st_test_result *tests;
    size_t n_tests, cap_tests;
    st_strv argv_seen;  /* the argv pytest reported receiving (start event) */
    long workers_seen;  /* the -n pytest reported, 0 without xdist */
    double runtime_s;
    double started_at, finished_at; /* UNIX seconds of the last attempt */
    double coverage;    /* percent, -1 unavailable */
    st_cov_line *cov;
    size_t n_cov;
    st_strv cov_files;
    st_retry_error *retries;
    size_t n_retries;
    st_buf output_tail; /* last bytes of stdout+stderr, for crash excerpts */
    /* orphan checks */
    char *unmet;        /* the missing third-party package when that alone failed the import */
    int cached;         /* not run: the verdict of an earlier check of the same bytes stands */
    char *cached_excerpt; /* the traceback of a cached failure */
    char *check_key;    /* the check cache's key of the module, NULL when it has none */
    unsigned attempts_timed_out; /* over every attempt, retries included */
    unsigned cleanup_failures;   /* containers the runtime could not remove, every attempt */
    /* scale-out */
    char *engine;       /* the engine of the last attempt (a container runtime), else NULL;
                         * rolled up: the distinct engines of its shards, ", "-separated */
    unsigned shard_index, shard_count; /* a shard: k of N (1-based); 0 both: not a shard */
    double expected_s;  /* what its recorded durations make it last; < 0: not known */
    char *shard_filter; /* a shard holding part of a split file: the pytest plugin's
                         * SELF_TEST_SHARD_FILTER (JSON), else NULL */
    /* a path rolled up from its shards: what each shard did */
    struct st_shard_info *shards;
    size_t n_shards;
} st_batch;

typedef struct st_shard_info {
    unsigned index;      /* 1-based */
    size_t files;
    double expected_s;   /* < 0: not known */
    double runtime_s;
    int ok;
    unsigned passed, failed;
    char *engine, *container, *reason;
} st_shard_info;

/* Reads OUTPUT_DIR/results.jsonl into b. Returns ST_OK, or a negative st_status with a message
 * in err: ST_ERR_MALFORMED ("FILE:LINE: ...": a line that is not JSON, an unknown event),
 * ST_ERR_IO (the file cannot be read), ST_ERR_NOMEM. A truncated file (a line not ending in a
 * newline that the process had time to finish) is b->truncated, not an error here; neither is
 * a missing file (ST_OK with saw_start == 0): the verdict decides what they mean. */
int st_results_read(st_batch *b, const char *file, char *err, size_t err_size);
/* Decides b->ok / reason / infra_error from the execution result and what was read. */
void st_batch_verdict(st_batch *b, const st_exec_result *er, double timeout_s);
/* Frees what one attempt produced (tests, counts, verdict, coverage, output), before a retry. */
void st_batch_reset_outcome(st_batch *b);
void st_batch_free(st_batch *b);

typedef struct st_run {
    char *run_id;
    double started_at, finished_at;
    st_batch *batches;
    size_t n_batches;
    st_counts totals;
    double coverage;            /* union percent, -1 when unavailable */
    double total_runtime_s;     /* wall time of the whole run stage */
    double mean_batch_runtime_s;
    const char *runtime_used;
    int coverage_requested;
    double core_cpu_s;          /* CPU time of selftest-core itself, children excluded */
    /* classify: against the previous run in the metrics DB (node ids) */
    st_strv regressions, fixed, still_failing, new_tests;
    int compared;               /* a previous run existed */
    unsigned orphan_total, orphan_failed; /* checks and failed ones (cached verdicts included;
                                           * unmet dependencies are not failures) */
    unsigned orphan_unmet, orphan_cached; /* unmet dependencies; verdicts taken from the cache */
    /* orphan checks (kind ST_EXEC_ORPHAN_CHECK) and the modules discovery reported but that were
     * not checked (redundant or legacy without include_redundant) */
    st_batch *checks;
    size_t n_checks;
    st_strv orphan_skipped;
    /* integrate: merged answers of the integrators */
    st_strv integrated, integration_redundant;
    int integration_failed;
    int exit_status;
    int aborted;
    char *git_commit;          /* the commit HEAD named when the run started, NULL outside git */
    st_strv git_dirty;         /* the files that differed from it then (uncommitted, untracked) */
    int changed_subset;        /* `run --changed` ran only the tests the changes affect */
    unsigned cleanup_failures; /* containers of this run (the preflight's, and those of every
                                  attempt of its batches and checks) that were not removed */
    /* flaky tests: the nodes that failed and then passed when run again alone, the failing
     * nodes the quarantine file lists, the quarantined nodes that passed this cycle (and for
     * flaky_window cycles: ready to release), reruns started and their wall time */
    st_strv flaky, quarantined, quarantine_ready;
    st_strv quarantine_listed; /* every node id of the quarantine file, as read this cycle */
    unsigned reruns;
    double rerun_runtime_s;
} st_run;

/* Totals, union coverage, mean runtime and exit status from the batches. */
void st_run_finalize(st_run *r);
/* How many orphan checks reached a verdict (cached ones included), and how many of those failed
 * (checks cut short or never started by a stop are neither; an unmet dependency is not a
 * failure). */
unsigned st_run_orphans_checked(const st_run *r);
/* An orphan check's verdict: "passed", "failed", "unmet" (a missing third-party package) or
 * "aborted" (stopped before a verdict); static. */
const char *st_check_verdict(const st_batch *c);
/* "candidate", "legacy" or "redundant"; static. */
const char *st_classification_name(st_classification c);
unsigned st_run_orphans_failed(const st_run *r);
/* The results object (docs/spec.md §5.4). Caller frees. */
char *st_run_to_json(const st_run *r, int pretty);
/* SQL: is the results column of a runs row (a compact results object) that of a run of
 * `--changed` that ran a subset? The compact form starts with this prefix, so the answer is
 * read from the first bytes; other texts (older rows) are parsed. */
#define ST_RESULTS_SUBSET_PREFIX "{\"event\":\"results\",\"changed_subset\":"
#define ST_RESULTS_SUBSET_SQL                                                                   \
    "(CASE WHEN substr(results, 1, 36) = '" ST_RESULTS_SUBSET_PREFIX "'"                       \
    " THEN substr(results, 37, 4) = 'true' ELSE COALESCE(CASE WHEN json_valid(results)"       \
    " THEN json_extract(results, '$.changed_subset') END, 0) END)"
/* One --json line for a finished batch, with the cumulative counts so far. */
char *st_batch_line_json(const st_batch *b, const st_counts *cumulative);
/* The human summary. */
void st_run_print_summary(const st_run *r, FILE *out, int color);
void st_run_free(st_run *r);
/* The verdict of one test node over its phases: "failed" if any phase failed or errored (and
 * no rerun passed), else "flaky" (failed, then passed when run again), else "passed" (passed
 * or xpassed), else "skipped" (skipped or xfailed). */
typedef struct st_node_verdict {
    const char *nodeid;
    const char *verdict;
} st_node_verdict;
/* Sorted by node id, one entry per node; caller frees the array (strings point into run). */
st_node_verdict *st_run_node_verdicts(const st_run *r, size_t *n);

#endif
