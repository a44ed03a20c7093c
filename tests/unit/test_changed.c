/* SPDX-License-Identifier: MIT */
/* Change-aware runs: which test files a change selects (st_changed_select) on a tree with a
 * known import graph, the files ignored, how batches are restricted or reordered
 * (st_changed_plan), and what metrics.db tells about the last passing run and the failures
 * since. */
#include "config.h"

#include "unit.h"

#include "changed.h"
#include "metricsdb.h"
#include "pygraph.h"

#include <sqlite3.h>

/* The tree:
 *   pkg/leaf.py <- pkg/mid.py <- tests/test_mid.py;  pkg/leaf.py <- tests/test_leaf.py
 *   pkg/other.py <- tests/test_other.py
 *   pkg/sub/reader.py (+ pkg/sub/data/table.txt) <- tests/test_reader.py
 *   tests/unit/__init__.py, tests/unit/test_pkgd.py (a test package; imports nothing)
 *   tests/fix/conftest.py imports pkg.other; tests/fix/test_fixture.py imports nothing
 *   tests/test_plain.py imports nothing */
static const char *const tree[][2] = {
    {"pkg/__init__.py", ""},
    {"pkg/leaf.py", "X = 1\n"},
    {"pkg/mid.py", "from pkg.leaf import X\n"},
    {"pkg/other.py", "Y = 2\n"},
    {"pkg/sub/__init__.py", ""},
    {"pkg/sub/reader.py", "import os\n"},
    {"pkg/sub/data/table.txt", "7\n"},
    {"tests/test_leaf.py", "from pkg.leaf import X\n"},
    {"tests/test_mid.py", "import pkg.mid\n"},
    {"tests/test_other.py", "from pkg import other\n"},
    {"tests/test_reader.py", "from pkg.sub import reader\n"},
    {"tests/test_plain.py", "def test_p():\n    pass\n"},
    {"tests/unit/__init__.py", ""},
    {"tests/unit/test_pkgd.py", "def test_u():\n    pass\n"},
    {"tests/fix/conftest.py", "import pkg.other\n"},
    {"tests/fix/test_fixture.py", "def test_f():\n    pass\n"},
};

static char *dir;
static st_pygraph *graph;

static void build(void)
{
    dir = unit_tmpdir();
    for (size_t i = 0; i < sizeof(tree) / sizeof(tree[0]); i++) {
        char *path = st_path_join(dir, tree[i][0]);
        char *d = st_path_dirname(path);
        ck_assert_int_eq(st_mkdir_p(d, 0755), 0);
        unit_write(dir, tree[i][0], tree[i][1]);
        free(d);
        free(path);
    }
    st_pygraph_options o = {.threads = 1};
    ck_assert_int_eq(st_pygraph_build(dir, &o, &graph), ST_PYGRAPH_OK);
}

static void teardown(void)
{
    st_pygraph_free(graph);
    graph = NULL;
    st_rm_rf(dir);
    free(dir);
}

/* The selection of changed[] (NULL-terminated) and failed[] as one "a,b,c" string, or
 * "everything". */
static char *select_str(const char *const *changed, const char *const *failed,
                        st_selection *sel)
{
    size_t nc = 0, nf = 0;
    while (changed && changed[nc])
        nc++;
    while (failed && failed[nf])
        nf++;
    ck_assert_int_eq(st_changed_select(graph, changed, nc, failed, nf, sel), 0);
    if (sel->everything)
        return st_strdup("everything");
    st_buf b = {0};
    for (size_t i = 0; i < sel->tests.n; i++)
        st_buf_printf(&b, "%s%s", i ? "," : "", sel->tests.v[i]);
    return b.data ? st_buf_steal(&b) : st_strdup("");
}

#define EXPECT_SELECT(changed, failed, expected)                                               \
    do {                                                                                       \
        st_selection sel_ = {0};                                                               \
        char *got_ = select_str(changed, failed, &sel_);                                       \
        ck_assert_str_eq(got_, expected);                                                      \
        free(got_);                                                                            \
        st_selection_free(&sel_);                                                              \
    } while (0)

START_TEST(leaf_change_selects_importers_transitively)
{
    const char *const ch[] = {"pkg/leaf.py", NULL};
    st_selection sel = {0};
    char *got = select_str(ch, NULL, &sel);
    ck_assert_str_eq(got, "tests/test_leaf.py,tests/test_mid.py");
    ck_assert_str_eq(sel.why.v[0], "pkg/leaf.py changed: tests/test_leaf.py -> pkg/leaf.py");
    ck_assert_str_eq(sel.why.v[1],
                     "pkg/leaf.py changed: tests/test_mid.py -> pkg/mid.py -> pkg/leaf.py");
    free(got);
    st_selection_free(&sel);
}
END_TEST

START_TEST(test_file_change_selects_itself)
{
    const char *const ch[] = {"tests/test_plain.py", NULL};
    st_selection sel = {0};
    char *got = select_str(ch, NULL, &sel);
    ck_assert_str_eq(got, "tests/test_plain.py");
    ck_assert_str_eq(sel.why.v[0], "tests/test_plain.py changed");
    free(got);
    st_selection_free(&sel);
}
END_TEST

START_TEST(conftest_import_and_package_init)
{
    /* tests/fix/conftest.py imports pkg.other: the tests under tests/fix/ depend on it */
    const char *const other[] = {"pkg/other.py", NULL};
    EXPECT_SELECT(other, NULL, "tests/fix/test_fixture.py,tests/test_other.py");
    /* a test package's __init__.py is imported before each of its test files */
    const char *const init[] = {"tests/unit/__init__.py", NULL};
    EXPECT_SELECT(init, NULL, "tests/unit/test_pkgd.py");
    /* pkg/__init__.py: everything importing pkg.* */
    const char *const pkg[] = {"pkg/__init__.py", NULL};
    EXPECT_SELECT(pkg, NULL,
                  "tests/fix/test_fixture.py,tests/test_leaf.py,tests/test_mid.py,"
                  "tests/test_other.py,tests/test_reader.py");
}
END_TEST

START_TEST(everything_cases)
{
    const char *const cases[] = {"tests/fix/conftest.py", "conftest.py", "pytest.ini",
                                 "pyproject.toml", "tox.ini", "setup.cfg", "sub/setup.cfg",
                                 "pkg/gone.py", "README.md", "Makefile"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *const ch[] = {"pkg/leaf.py", cases[i], NULL};
        st_selection sel = {0};
        char *got = select_str(ch, NULL, &sel);
        ck_assert_msg(strcmp(got, "everything") == 0, "%s: %s", cases[i], got);
        ck_assert_ptr_nonnull(strstr(sel.everything_why, cases[i]));
        free(got);
        st_selection_free(&sel);
    }
}
END_TEST

START_TEST(non_python_file_counts_for_its_package)
{
    const char *const ch[] = {"pkg/sub/data/table.txt", NULL};
    st_selection sel = {0};
    char *got = select_str(ch, NULL, &sel);
    ck_assert_str_eq(got, "tests/test_reader.py");
    ck_assert_ptr_nonnull(strstr(sel.why.v[0], "not a Python module"));
    free(got);
    st_selection_free(&sel);
    /* a stub next to a module: the package's modules */
    const char *const stub[] = {"pkg/sub/reader.pyi", NULL};
    EXPECT_SELECT(stub, NULL, "tests/test_reader.py");
    /* a data file among the tests: the test files of that directory */
    const char *const tdata[] = {"tests/unit/expected.json", NULL};
    EXPECT_SELECT(tdata, NULL, "tests/unit/test_pkgd.py");
}
END_TEST

START_TEST(failures_are_added)
{
    const char *const ch[] = {"pkg/leaf.py", NULL};
    const char *const failed[] = {"tests/test_plain.py", "tests/test_leaf.py", "tests/gone.py",
                                  NULL};
    st_selection sel = {0};
    char *got = select_str(ch, failed, &sel);
    ck_assert_str_eq(got, "tests/test_leaf.py,tests/test_mid.py,tests/test_plain.py");
    ck_assert_str_eq(sel.why.v[2], "failed in a run since the last passing one");
    /* a test both changed and failing is explained by the change */
    ck_assert_ptr_nonnull(strstr(sel.why.v[0], "pkg/leaf.py changed"));
    free(got);
    st_selection_free(&sel);
    EXPECT_SELECT(NULL, NULL, "");
}
END_TEST

START_TEST(ignored_files)
{
    const char *const skip[] = {"build", "venv", NULL};
    ck_assert(st_changed_ignored("pkg/__pycache__/leaf.cpython-311.pyc", skip));
    ck_assert(st_changed_ignored("pkg/leaf.pyc", skip));
    ck_assert(st_changed_ignored("build/lib/pkg/leaf.py", skip));
    ck_assert(st_changed_ignored("x/venv/lib/a.py", skip));
    ck_assert(st_changed_ignored("lib/site-packages/a.py", skip));
    ck_assert(!st_changed_ignored("pkg/leaf.py", skip));
    ck_assert(!st_changed_ignored("build.py", skip));
    ck_assert(!st_changed_ignored("pkg/venv.txt", skip));
}
END_TEST

static char *plan_str(const st_selection *sel, const st_strv *whole, const char *const *batches,
                      int first)
{
    st_strv b = {0};
    for (size_t i = 0; batches[i]; i++)
        st_strv_push(&b, batches[i]);
    st_strv *keeps = NULL;
    ck_assert_int_eq(st_changed_plan(sel, whole, &b, &keeps, first), 0);
    st_buf out = {0};
    for (size_t i = 0; i < b.n; i++) {
        st_buf_printf(&out, "%s%s[", i ? " " : "", b.v[i]);
        for (size_t k = 0; k < keeps[i].n; k++)
            st_buf_printf(&out, "%s%s", k ? "," : "", keeps[i].v[k]);
        st_buf_puts(&out, "]");
        st_strv_free(&keeps[i]);
    }
    free(keeps);
    st_strv_free(&b);
    return out.data ? st_buf_steal(&out) : st_strdup("");
}

START_TEST(plan_restricts_and_orders_batches)
{
    st_selection sel = {0};
    st_strv_push(&sel.tests, "tests/b/test_x.py");
    st_strv_push(&sel.tests, "tests/b/test_y.py");
    st_strv_push(&sel.tests, "other/test_z.py");
    const char *const batches[] = {"tests/a", "tests/b", "other/test_z.py::test_q",
                                   "other/test_w.py", NULL};
    char *got = plan_str(&sel, NULL, batches, 0);
    ck_assert_str_eq(got, "tests/b[tests/b/test_x.py,tests/b/test_y.py] "
                          "other/test_z.py::test_q[]");
    free(got);
    got = plan_str(&sel, NULL, batches, 1);
    ck_assert_str_eq(got, "tests/b[tests/b/test_x.py,tests/b/test_y.py] "
                          "other/test_z.py::test_q[] tests/a[] other/test_w.py[]");
    free(got);
    /* a batch that failed without a failing test runs whole */
    st_strv whole = {0};
    st_strv_push(&whole, "tests/a");
    got = plan_str(&sel, &whole, batches, 0);
    ck_assert_str_eq(got, "tests/a[] tests/b[tests/b/test_x.py,tests/b/test_y.py] "
                          "other/test_z.py::test_q[]");
    free(got);
    st_strv_free(&whole);
    /* the root batch holds every file */
    const char *const root[] = {".", NULL};
    got = plan_str(&sel, NULL, root, 0);
    ck_assert_str_eq(got, ".[tests/b/test_x.py,tests/b/test_y.py,other/test_z.py]");
    free(got);
    /* everything: the batches as they were */
    sel.everything = 1;
    got = plan_str(&sel, NULL, batches, 0);
    ck_assert_str_eq(got, "tests/a[] tests/b[] other/test_z.py::test_q[] other/test_w.py[]");
    free(got);
    st_selection_free(&sel);
}
END_TEST

/* ---- metrics.db ----------------------------------------------------------------------------- */

static void sql(const char *path, const char *text)
{
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db, text, NULL, NULL, &err);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", text, err ? err : "?");
    sqlite3_close(db);
}

START_TEST(version_1_db_is_migrated_and_keeps_its_runs)
{
    char *d = unit_tmpdir();
    char *path = st_path_join(d, "metrics.db");
    /* what selftest-core wrote at schema version 1 */
    sql(path,
        "CREATE TABLE eval_metrics(cycle TEXT, metric TEXT, value REAL, ts TEXT,"
        " source_menace_id TEXT NOT NULL DEFAULT '');"
        "CREATE TABLE runs(id INTEGER PRIMARY KEY, run_id TEXT UNIQUE NOT NULL, started_at REAL,"
        " finished_at REAL, passed INTEGER, failed INTEGER, skipped INTEGER, xfailed INTEGER,"
        " errors INTEGER, coverage REAL, runtime REAL, total_runtime REAL, exit_status INTEGER,"
        " aborted INTEGER NOT NULL DEFAULT 0, runtime_used TEXT, results TEXT);"
        "CREATE TABLE test_outcomes(run INTEGER NOT NULL REFERENCES runs(id), nodeid TEXT NOT "
        "NULL, file TEXT, batch TEXT, outcome TEXT NOT NULL, phase TEXT, duration REAL);"
        "CREATE INDEX test_outcomes_run ON test_outcomes(run);"
        "CREATE TABLE orphan_outcomes(run INTEGER NOT NULL REFERENCES runs(id), path TEXT NOT "
        "NULL, classification TEXT, outcome TEXT NOT NULL);"
        "INSERT INTO runs(run_id, exit_status, aborted) VALUES('old-pass', 0, 0);"
        "INSERT INTO runs(run_id, exit_status, aborted, results) VALUES('old-fail', 1, 0,"
        " '{\"suite_metrics\":{\"tests/slow\":{\"path\":\"tests/slow\",\"ok\":false,"
        "\"aborted\":false},\"tests\":{\"path\":\"tests\",\"ok\":false,\"aborted\":false}}}');"
        "INSERT INTO test_outcomes(run, nodeid, file, batch, outcome) VALUES(2,"
        " 'tests/test_a.py::t', 'tests/test_a.py', 'tests', 'failed');"
        "PRAGMA user_version = 1;");
    st_metricsdb *m = NULL;
    ck_assert_int_eq(st_metricsdb_open(path, &m), 0);
    char *commit = NULL, *run_id = NULL;
    /* the old passing run has no commit: no base */
    ck_assert_int_eq(st_metricsdb_last_passing(m, &commit, &run_id), 0);
    ck_assert_ptr_null(commit);
    st_strv files = {0}, batches = {0};
    ck_assert_int_eq(st_metricsdb_failed_files(m, &files, &batches), 0);
    ck_assert_uint_eq(files.n, 1);
    ck_assert_str_eq(files.v[0], "tests/test_a.py");
    /* tests/slow failed with no failing test; tests had one */
    ck_assert_uint_eq(batches.n, 1);
    ck_assert_str_eq(batches.v[0], "tests/slow");
    st_strv_free(&files);
    st_strv_free(&batches);
    /* a new passing run with a commit becomes the base; no failures since it */
    st_run run = {0};
    run.run_id = (char *)"new-pass";
    run.runtime_used = "host";
    run.git_commit = (char *)"0123456789abcdef0123456789abcdef01234567";
    ck_assert_int_eq(st_metricsdb_store(m, &run, "{}"), 0);
    ck_assert_int_eq(st_metricsdb_last_passing(m, &commit, &run_id), 0);
    ck_assert_str_eq(commit, run.git_commit);
    ck_assert_str_eq(run_id, "new-pass");
    free(commit);
    free(run_id);
    ck_assert_int_eq(st_metricsdb_failed_files(m, &files, &batches), 0);
    ck_assert_uint_eq(files.n + batches.n, 0);
    st_metricsdb_close(m);
    /* the old rows are still there, with the version recorded */
    sqlite3 *db;
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT COUNT(*), COUNT(git_commit), "
                                            "(SELECT user_version FROM pragma_user_version) "
                                            "FROM runs", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_int(st, 0), 3);
    ck_assert_int_eq(sqlite3_column_int(st, 1), 1);
    ck_assert_int_eq(sqlite3_column_int(st, 2), ST_METRICSDB_SCHEMA);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(path);
    st_rm_rf(d);
    free(d);
}
END_TEST

START_TEST(missing_git_commit_column_is_added)
{
    char *d = unit_tmpdir();
    char *path = st_path_join(d, "metrics.db");
    st_metricsdb *m = NULL;
    ck_assert_int_eq(st_metricsdb_open(path, &m), 0);
    st_metricsdb_close(m);
    /* a file that claims the current version without the column */
    sql(path, "ALTER TABLE runs DROP COLUMN git_commit;");
    unit_capture cap;
    unit_capture_begin(&cap);
    int rc = st_metricsdb_open(path, &m);
    char *err = unit_capture_end(&cap);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(strstr(err, "runs.git_commit"));
    st_run run = {0};
    run.run_id = (char *)"r";
    run.runtime_used = "host";
    run.git_commit = (char *)"abc";
    ck_assert_int_eq(st_metricsdb_store(m, &run, "{}"), 0);
    st_metricsdb_close(m);
    free(err);
    free(path);
    st_rm_rf(d);
    free(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("changed");
    TCase *tc = tcase_create("select");
    tcase_add_checked_fixture(tc, build, teardown);
    tcase_add_test(tc, leaf_change_selects_importers_transitively);
    tcase_add_test(tc, test_file_change_selects_itself);
    tcase_add_test(tc, conftest_import_and_package_init);
    tcase_add_test(tc, everything_cases);
    tcase_add_test(tc, non_python_file_counts_for_its_package);
    tcase_add_test(tc, failures_are_added);
    suite_add_tcase(s, tc);
    TCase *tp = tcase_create("plan");
    tcase_add_test(tp, ignored_files);
    tcase_add_test(tp, plan_restricts_and_orders_batches);
    suite_add_tcase(s, tp);
    TCase *td = tcase_create("metricsdb");
    tcase_add_test(td, version_1_db_is_migrated_and_keeps_its_runs);
    tcase_add_test(td, missing_git_commit_column_is_added);
    suite_add_tcase(s, td);
    return unit_run(s);
}
