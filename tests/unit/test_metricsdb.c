/* SPDX-License-Identifier: MIT */
/* metrics.db: a store that fails inside its transaction rolls it back and leaves the DB usable. */
#include "config.h"

#include "unit.h"

#include "metricsdb.h"

#include <sqlite3.h>

/* One integer from a query on the file at path (-1 on error). */
static long long query_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

static int count_runs(const char *path)
{
    return (int)query_int(path, "SELECT COUNT(*) FROM runs");
}

START_TEST(failed_store_rolls_back_and_db_stays_usable)
{
    char *dir = unit_tmpdir();
    char *path = st_path_join(dir, "metrics.db");
    st_metricsdb *m = NULL;
    ck_assert_int_eq(st_metricsdb_open(path, &m), 0);
    st_run run = {0};
    run.run_id = (char *)"run-one";
    run.runtime_used = "host";
    ck_assert_int_eq(st_metricsdb_store(m, &run, "{}"), 0);
    /* the same run_id again: the UNIQUE constraint fails inside the transaction (the core's
     * own mistake, not the disk's) */
    ck_assert_int_eq(st_metricsdb_store(m, &run, "{}"), ST_ERR_INTERNAL);
    /* no transaction left open: the next store works */
    run.run_id = (char *)"run-two";
    ck_assert_int_eq(st_metricsdb_store(m, &run, "{}"), 0);
    st_metricsdb_close(m);
    ck_assert_int_eq(count_runs(path), 2);
    free(path);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

/* A batch's history: the newest non-aborted run that ran its path; paths never run: -1. */
START_TEST(batch_history_from_the_newest_run_of_the_path)
{
    char *dir = unit_tmpdir();
    char *path = st_path_join(dir, "metrics.db");
    st_metricsdb *m = NULL;
    ck_assert_int_eq(st_metricsdb_open(path, &m), 0);
    st_test_result ta[2] = {{.nodeid = (char *)"a/t.py::x", .duration_s = 1.5},
                            {.nodeid = (char *)"a/t.py::y", .duration_s = 2.0}};
    st_test_result tb[1] = {{.nodeid = (char *)"b/t.py::z", .duration_s = 9.0}};
    st_batch b1[2] = {{.path = (char *)"a", .tests = ta, .n_tests = 2},
                      {.path = (char *)"b", .tests = tb, .n_tests = 1}};
    st_run run = {.run_id = (char *)"r1", .runtime_used = "host", .batches = b1, .n_batches = 2};
    ck_assert_int_eq(st_metricsdb_store(m, &run, "{}"), 0);
    /* a newer run of "a" alone, and a newer aborted run of "b" that is not trusted */
    ta[0].duration_s = 0.25;
    run.run_id = (char *)"r2";
    run.n_batches = 1;
    ck_assert_int_eq(st_metricsdb_store(m, &run, "{}"), 0);
    tb[0].duration_s = 0.1;
    run.run_id = (char *)"r3";
    run.batches = &b1[1];
    run.aborted = 1;
    ck_assert_int_eq(st_metricsdb_store(m, &run, "{}"), 0);
    const char *paths[] = {"a", "b", "c"};
    double d[3];
    long n[3];
    ck_assert_int_eq(st_metricsdb_batch_history(m, paths, 3, d, n), 0);
    ck_assert_double_eq_tol(d[0], 2.25, 1e-9);
    ck_assert_int_eq(n[0], 2);
    ck_assert_double_eq_tol(d[1], 9.0, 1e-9);
    ck_assert_int_eq(n[1], 1);
    ck_assert(d[2] < 0);
    st_metricsdb_close(m);
    free(path);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

/* Stores one run where each node of nodes[0..n) has the outcome in outcomes ('p' passed, 'f'
 * failed, 'k' flaky, 's' skipped). */
static void store_outcomes(st_metricsdb *m, const char *run_id, const char *const *nodes,
                           const char *outcomes, size_t n)
{
    st_test_result tr[8] = {{0}};
    ck_assert_uint_le(n, 8);
    for (size_t i = 0; i < n; i++) {
        tr[i].nodeid = (char *)nodes[i];
        tr[i].phase = (char *)"call";
        tr[i].outcome = outcomes[i] == 'p'   ? ST_OUT_PASSED
                        : outcomes[i] == 's' ? ST_OUT_SKIPPED
                                             : ST_OUT_FAILED;
        tr[i].flaky = outcomes[i] == 'k';
        tr[i].attempts = outcomes[i] == 'p' || outcomes[i] == 's' ? 0 : 2;
        tr[i].excerpt = outcomes[i] == 'k' || outcomes[i] == 'f'
                            ? (char *)"    def test():\n>       assert x\nE       AssertionError: "
                                      "boom\nE       assert 0\n\nt.py:3: AssertionError\n"
                            : NULL;
    }
    st_batch b = {.path = (char *)"t", .tests = tr, .n_tests = n};
    st_run run = {.run_id = (char *)run_id, .runtime_used = "host", .batches = &b, .n_batches = 1,
                  .finished_at = 1700000000};
    ck_assert_int_eq(st_metricsdb_store(m, &run, "{}"), 0);
}

/* The flakiness score: (flaky runs + flips after the first) / runs that ran the test, over the
 * newest `window` runs; a test that broke once is not flaky; skipped runs say nothing. */
START_TEST(flaky_scores_by_the_formula)
{
    char *dir = unit_tmpdir();
    char *path = st_path_join(dir, "metrics.db");
    st_metricsdb *m = NULL;
    ck_assert_int_eq(st_metricsdb_open(path, &m), 0);
    const char *nodes[] = {"t.py::flaky", "t.py::broke", "t.py::flips", "t.py::steady",
                           "t.py::skips"};
    /* run by run, oldest first, one letter per node in the order above; the first run falls
     * out of a window of 5. Per node: flaky f k p k p k, broke f p p f f f, flips f f p p p p,
     * steady f f p p f p, skips p p p p s p */
    const char *runs[] = {"ffffp", "kpffp", "ppppp", "kfppp", "pfpfs", "kfppp"};
    for (size_t r = 0; r < 6; r++) {
        char id[8];
        snprintf(id, sizeof(id), "r%zu", r);
        const char *o = runs[r];
        char col[6] = {0};
        for (size_t i = 0; i < 5; i++)
            col[i] = o[i];
        store_outcomes(m, id, nodes, col, 5);
    }
    st_flaky_score *v = NULL;
    size_t n = 0;
    ck_assert_int_eq(st_metricsdb_flaky_scores(m, 5, &v, &n), 0);
    ck_assert_uint_eq(n, 5); /* sorted by node id */
    /* broke: p p f f f -> 1 flip, 0 flaky: 0 */
    ck_assert_str_eq(v[0].nodeid, "t.py::broke");
    ck_assert_uint_eq(v[0].runs, 5);
    ck_assert_uint_eq(v[0].flips, 1);
    ck_assert_double_eq_tol(v[0].score, 0, 1e-9);
    ck_assert_str_eq(v[0].last, "failed");
    /* flaky: k p k p k -> 3 flaky runs, no flips (a flaky run passed): 3/5 */
    ck_assert_str_eq(v[1].nodeid, "t.py::flaky");
    ck_assert_uint_eq(v[1].flaky, 3);
    ck_assert_uint_eq(v[1].flips, 0);
    ck_assert_double_eq_tol(v[1].score, 0.6, 1e-9);
    ck_assert(v[1].last_flake > 0);
    ck_assert_str_eq(v[1].message, "AssertionError: boom");
    ck_assert_str_eq(v[1].last, "flaky");
    /* flips: f p p p p -> 1 flip: 0 */
    ck_assert_str_eq(v[2].nodeid, "t.py::flips");
    ck_assert_double_eq_tol(v[2].score, 0, 1e-9);
    /* skips: p p p s p -> 4 runs, 0 */
    ck_assert_str_eq(v[3].nodeid, "t.py::skips");
    ck_assert_uint_eq(v[3].runs, 4);
    /* steady: f p p f p -> 3 flips: 2/5 */
    ck_assert_str_eq(v[4].nodeid, "t.py::steady");
    ck_assert_double_eq_tol(v[4].score, 0.4, 1e-9);
    st_flaky_scores_free(v, n);
    /* window 6: steady f f p p f p, 3 flips -> 2/6; broke f p p f f f, 2 flips -> 1/6 */
    ck_assert_int_eq(st_metricsdb_flaky_scores(m, 6, &v, &n), 0);
    ck_assert_double_eq_tol(v[0].score, 1.0 / 6, 1e-9);
    ck_assert_str_eq(v[4].nodeid, "t.py::steady");
    ck_assert_uint_eq(v[4].flips, 3);
    ck_assert_double_eq_tol(v[4].score, 2.0 / 6, 1e-9);
    st_flaky_scores_free(v, n);
    /* the passing streak: flips passed in the 4 newest runs, flaky's newest run was flaky */
    unsigned streak = 99;
    ck_assert_int_eq(st_metricsdb_passing_streak(m, "t.py::flips", 10, &streak), 0);
    ck_assert_uint_eq(streak, 4);
    ck_assert_int_eq(st_metricsdb_passing_streak(m, "t.py::flaky", 10, &streak), 0);
    ck_assert_uint_eq(streak, 0);
    ck_assert_int_eq(st_metricsdb_passing_streak(m, "t.py::flips", 2, &streak), 0);
    ck_assert_uint_eq(streak, 2);
    ck_assert_int_eq(st_metricsdb_passing_streak(m, "t.py::none", 5, &streak), 0);
    ck_assert_uint_eq(streak, 0);
    st_metricsdb_close(m);
    free(path);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

/* keep_runs: the runs older than the newest N that were not aborted go with their rows, except
 * the newest passing run and the newest whole run, which the readers start from; eval_metrics
 * stays whole. */
START_TEST(keep_runs_deletes_old_runs_but_what_readers_start_from)
{
    char *dir = unit_tmpdir();
    char *path = st_path_join(dir, "metrics.db");
    st_metricsdb *m = NULL;
    ck_assert_int_eq(st_metricsdb_open(path, &m), 0);
    st_metricsdb_keep_runs(m, 3);
    st_test_result tr[1] = {{.nodeid = (char *)"t.py::a", .file = (char *)"t.py",
                             .phase = (char *)"call", .duration_s = 1}};
    st_batch b = {.path = (char *)"t", .tests = tr, .n_tests = 1};
    /* r1 passed (commit c1); r2, r3 failed whole runs; r4 aborted; r5-r7 failed `--changed`
     * subsets. Each run's test took r seconds. */
    static const char subset[] = ST_RESULTS_SUBSET_PREFIX "true}";
    st_batch check = {.path = (char *)"pkg/orphan.py", .done = 1, .ok = 1};
    for (int r = 1; r <= 7; r++) {
        char id[8];
        snprintf(id, sizeof(id), "r%d", r);
        tr[0].duration_s = r;
        tr[0].outcome = r == 1 ? ST_OUT_PASSED : ST_OUT_FAILED;
        st_run run = {.run_id = id, .runtime_used = "host", .batches = &b, .n_batches = 1,
                      .exit_status = r == 1 ? 0 : 1, .aborted = r == 4,
                      .git_commit = r == 1 ? (char *)"c1" : (char *)"c2",
                      .checks = &check, .n_checks = 1};
        ck_assert_int_eq(st_metricsdb_store(m, &run, r >= 5 ? subset : "{}"), 0);
        /* before the fourth run that was not aborted, nothing is deleted */
        if (r <= 4)
            ck_assert_int_eq(count_runs(path), r);
    }
    /* newest 3 not aborted: r5-r7; r1 (the newest passing) and r3 (the newest whole) stay;
     * r2 and r4 go, with their test rows */
    ck_assert_int_eq(query_int(path, "SELECT group_concat(run_id, ' ') = 'r1 r3 r5 r6 r7' FROM"
                                     " (SELECT run_id FROM runs ORDER BY id)"),
                     1);
    ck_assert_int_eq(query_int(path, "SELECT COUNT(*) FROM test_outcomes"), 5);
    ck_assert_int_eq(query_int(path, "SELECT COUNT(*) FROM test_outcomes WHERE run NOT IN"
                                     " (SELECT id FROM runs)"),
                     0);
    ck_assert_int_eq(query_int(path, "SELECT COUNT(*) FROM orphan_outcomes"), 5);
    ck_assert_int_eq(query_int(path, "SELECT COUNT(*) FROM orphan_outcomes WHERE run NOT IN"
                                     " (SELECT id FROM runs)"),
                     0);
    /* eval_metrics: six rows for each of the six runs that were not aborted */
    ck_assert_int_eq(query_int(path, "SELECT COUNT(*) FROM eval_metrics"), 36);
    /* the readers: `run --changed` from r1's commit, the worker history from r3 */
    char *commit = NULL, *run_id = NULL;
    ck_assert_int_eq(st_metricsdb_last_passing(m, &commit, &run_id), 0);
    ck_assert_str_eq(commit, "c1");
    ck_assert_str_eq(run_id, "r1");
    free(commit);
    free(run_id);
    const char *paths[] = {"t"};
    double d[1];
    long n[1];
    ck_assert_int_eq(st_metricsdb_batch_history(m, paths, 1, d, n), 0);
    ck_assert_double_eq_tol(d[0], 3.0, 1e-9);
    /* a whole passing run r8 replaces both: r1 and r3 go, and r5 falls out of the newest 3 */
    tr[0].outcome = ST_OUT_PASSED;
    st_run run = {.run_id = (char *)"r8", .runtime_used = "host", .batches = &b, .n_batches = 1,
                  .git_commit = (char *)"c3"};
    ck_assert_int_eq(st_metricsdb_store(m, &run, "{}"), 0);
    ck_assert_int_eq(query_int(path, "SELECT group_concat(run_id, ' ') = 'r6 r7 r8' FROM"
                                     " (SELECT run_id FROM runs ORDER BY id)"),
                     1);
    ck_assert_int_eq(query_int(path, "SELECT COUNT(*) FROM test_outcomes"), 3);
    /* 0 keeps every run again */
    st_metricsdb_keep_runs(m, 0);
    for (int r = 9; r <= 12; r++) {
        char id[8];
        snprintf(id, sizeof(id), "r%d", r);
        run.run_id = id;
        ck_assert_int_eq(st_metricsdb_store(m, &run, "{}"), 0);
    }
    ck_assert_int_eq(count_runs(path), 7);
    st_metricsdb_close(m);
    free(path);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

/* Each orphan check of a run is a row of orphan_outcomes: its path, classification and verdict. */
START_TEST(orphan_checks_are_stored)
{
    char *dir = unit_tmpdir();
    char *path = st_path_join(dir, "metrics.db");
    st_metricsdb *m = NULL;
    ck_assert_int_eq(st_metricsdb_open(path, &m), 0);
    st_batch checks[4] = {
        {.path = (char *)"a.py", .done = 1, .ok = 1},
        {.path = (char *)"b.py", .done = 1, .classification = ST_CLASS_LEGACY},
        {.path = (char *)"c.py", .done = 1, .unmet = (char *)"numpy"},
        {.path = (char *)"d.py", .classification = ST_CLASS_REDUNDANT},
    };
    st_run run = {.run_id = (char *)"r1", .runtime_used = "host", .checks = checks,
                  .n_checks = 4};
    ck_assert_int_eq(st_metricsdb_store(m, &run, "{}"), 0);
    st_metricsdb_close(m);
    ck_assert_int_eq(query_int(path, "SELECT group_concat(path || ':' || classification || ':'"
                                     " || outcome, ' ') = 'a.py:candidate:passed"
                                     " b.py:legacy:failed c.py:candidate:unmet"
                                     " d.py:redundant:aborted' FROM (SELECT * FROM"
                                     " orphan_outcomes ORDER BY rowid)"),
                     1);
    free(path);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

/* A schema-2 file (before flaky tests) is migrated to 3, its rows kept. */
START_TEST(schema_2_migrates_to_3)
{
    char *dir = unit_tmpdir();
    char *path = st_path_join(dir, "metrics.db");
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(db,
                     "CREATE TABLE eval_metrics(cycle TEXT, metric TEXT, value REAL, ts TEXT,"
                     " source_menace_id TEXT NOT NULL DEFAULT '');"
                     "CREATE TABLE runs(id INTEGER PRIMARY KEY, run_id TEXT UNIQUE NOT NULL,"
                     " started_at REAL, finished_at REAL, passed INTEGER, failed INTEGER,"
                     " skipped INTEGER, xfailed INTEGER, errors INTEGER, coverage REAL,"
                     " runtime REAL, total_runtime REAL, exit_status INTEGER,"
                     " aborted INTEGER NOT NULL DEFAULT 0, runtime_used TEXT, results TEXT,"
                     " git_commit TEXT);"
                     "CREATE TABLE test_outcomes(run INTEGER NOT NULL REFERENCES runs(id),"
                     " nodeid TEXT NOT NULL, file TEXT, batch TEXT, outcome TEXT NOT NULL,"
                     " phase TEXT, duration REAL);"
                     "CREATE TABLE orphan_outcomes(run INTEGER NOT NULL REFERENCES runs(id),"
                     " path TEXT NOT NULL, classification TEXT, outcome TEXT NOT NULL);"
                     "INSERT INTO runs(run_id) VALUES('old');"
                     "INSERT INTO test_outcomes VALUES(1, 't.py::a', 't.py', 't', 'failed',"
                     " 'call', 1);"
                     "PRAGMA user_version = 2;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    st_metricsdb *m = NULL;
    ck_assert_int_eq(st_metricsdb_open(path, &m), 0);
    const char *nodes[] = {"t.py::a"};
    store_outcomes(m, "new", nodes, "k", 1);
    st_flaky_score *v = NULL;
    size_t n = 0;
    ck_assert_int_eq(st_metricsdb_flaky_scores(m, 5, &v, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(v[0].runs, 2); /* the old row is kept */
    ck_assert_uint_eq(v[0].flaky, 1);
    st_flaky_scores_free(v, n);
    st_metricsdb_close(m);
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT (SELECT user_version FROM pragma_user_version),"
                                            " attempts, message FROM test_outcomes ORDER BY rowid"
                                            " DESC LIMIT 1", -1, &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_int(st, 0), 3);
    ck_assert_int_eq(sqlite3_column_int(st, 1), 2);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 2), "AssertionError: boom");
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(path);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metricsdb");
    TCase *tc = tcase_create("metricsdb");
    tcase_add_test(tc, failed_store_rolls_back_and_db_stays_usable);
    tcase_add_test(tc, batch_history_from_the_newest_run_of_the_path);
    tcase_add_test(tc, flaky_scores_by_the_formula);
    tcase_add_test(tc, schema_2_migrates_to_3);
    tcase_add_test(tc, orphan_checks_are_stored);
    tcase_add_test(tc, keep_runs_deletes_old_runs_but_what_readers_start_from);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
