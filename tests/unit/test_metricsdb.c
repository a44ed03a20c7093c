/* SPDX-License-Identifier: MIT */
/* metrics.db: a store that fails inside its transaction rolls it back and leaves the DB usable. */
#include "config.h"

#include "unit.h"

#include "metricsdb.h"

#include <sqlite3.h>

static int count_runs(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM runs", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
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
    /* the same run_id again: the UNIQUE constraint fails inside the transaction */
    ck_assert_int_eq(st_metricsdb_store(m, &run, "{}"), -1);
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

int main(void)
{
    Suite *s = suite_create("metricsdb");
    TCase *tc = tcase_create("metricsdb");
    tcase_add_test(tc, failed_store_rolls_back_and_db_stays_usable);
    tcase_add_test(tc, batch_history_from_the_newest_run_of_the_path);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
