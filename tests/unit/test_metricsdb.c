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

int main(void)
{
    Suite *s = suite_create("metricsdb");
    TCase *tc = tcase_create("metricsdb");
    tcase_add_test(tc, failed_store_rolls_back_and_db_stays_usable);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
