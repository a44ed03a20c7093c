/* SPDX-License-Identifier: MIT */
/* Unit tests of settings.c: the config file, the environment, precedence, error locations. */
#include "config.h"

#include "unit.h"

#include "log.h"
#include "settings.h"

#include <sys/stat.h>

static const char *const env_names[] = {
    "SELF_TEST_ARGS", "SELF_TEST_WORKERS", "SELF_TEST_TIMEOUT", "SELF_TEST_RETRIES",
    "SELF_TEST_INCLUDE_ORPHANS", "SANDBOX_INCLUDE_ORPHANS", "SELF_TEST_AUTO_INCLUDE_ISOLATED",
    "SANDBOX_REPO_PATH", "SANDBOX_DATA_DIR", "SELF_TEST_METRICS_PORT", "SELF_TEST_PLUGIN_PATH",
    "SELF_TEST_RECURSIVE_ISOLATED", "SELF_TEST_REPORT_DIR", "SELF_TEST_PYTHONPATH", NULL};

static void clean_env(void)
{
    for (size_t i = 0; env_names[i]; i++)
        unsetenv(env_names[i]);
}

/* Loads text as a config file; returns the load status and the captured stderr. */
static int load_text(const char *text, st_settings *s, char **err, char **dir_out)
{
    char *dir = unit_tmpdir();
    unit_write(dir, "selftest.conf", text);
    char *file = st_path_join(dir, "selftest.conf");
    ck_assert_int_eq(st_settings_init(s), 0);
    unit_capture c;
    unit_capture_begin(&c);
    int rc = st_settings_load_file(s, file);
    *err = unit_capture_end(&c);
    free(file);
    *dir_out = dir;
    return rc;
}

START_TEST(file_values_are_read)
{
    clean_env();
    st_settings s;
    char *err, *dir;
    ck_assert_int_eq(load_text("workers = 3;\ntimeout = 12.5;\npaths = [\"a\", \"b\"];\n"
                               "pytest_args = \"-k 'x or y'\";\ncoverage = true;\n",
                               &s, &err, &dir),
                     0);
    ck_assert_uint_eq(s.workers, 3);
    ck_assert(s.timeout_s == 12.5);
    ck_assert_uint_eq(s.paths.n, 2);
    ck_assert_uint_eq(s.pytest_args.n, 2);
    ck_assert_str_eq(s.pytest_args.v[1], "x or y");
    ck_assert_int_eq(s.coverage, 1);
    st_settings_free(&s);
    free(err);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(syntax_error_names_file_and_line)
{
    st_settings s;
    char *err, *dir;
    ck_assert_int_eq(load_text("workers = 3;\n\nthis is not libconfig\n", &s, &err, &dir), -1);
    ck_assert_contains(err, "selftest.conf:3:");
    st_settings_free(&s);
    free(err);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

/* An @include of a directory made libconfig's scanner exit the process ("input in flex scanner
 * failed", status 2; a daemon reloading such a file died); an @include of a FIFO blocked. Both
 * are refused with the line, and so is one in an included file. (Found by the config fuzz
 * target; fuzz/corpus/config/include_directory.conf replays it.) */
START_TEST(include_of_a_non_regular_file_is_refused)
{
    clean_env();
    st_settings s;
    char *err, *dir;
    char *sub = unit_tmpdir();
    char *text = st_asprintf("workers = 3;\n  @include \"%s\"\n", sub);
    ck_assert_int_eq(load_text(text, &s, &err, &dir), -1);
    ck_assert_contains(err, "selftest.conf:2: @include '");
    ck_assert_contains(err, "': a directory, not a config file");
    st_settings_free(&s);
    free(err);
    free(text);
    /* a FIFO, named in a file that the config includes */
    char *fifo = st_path_join(sub, "fifo");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    char *inner = st_asprintf("@include \"%s\"\n", fifo);
    unit_write(sub, "inner.conf", inner);
    char *inner_path = st_path_join(sub, "inner.conf");
    text = st_asprintf("@include \"%s\"\n", inner_path);
    st_rm_rf(dir);
    free(dir);
    ck_assert_int_eq(load_text(text, &s, &err, &dir), -1);
    ck_assert_contains(err, "inner.conf:1: @include '");
    ck_assert_contains(err, "not a regular file");
    st_settings_free(&s);
    free(err);
    free(text);
    free(inner);
    free(inner_path);
    free(fifo);
    /* a NUL byte in an @include name (found by fuzz/fuzz_config.c): libconfig opened "." and
     * exited the process from its scanner */
    static const char nul_text[] = "workers = 3;\n@include \".\0\0\0\n\"\n";
    char *nul_path = st_path_join(sub, "nul.conf");
    FILE *fp = fopen(nul_path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(nul_text, 1, sizeof(nul_text) - 1, fp), sizeof(nul_text) - 1);
    ck_assert_int_eq(fclose(fp), 0);
    text = st_asprintf("@include \"%s\"\n", nul_path);
    st_rm_rf(dir);
    free(dir);
    ck_assert_int_eq(load_text(text, &s, &err, &dir), -1);
    ck_assert_contains(err, "nul.conf:2: a NUL byte: not a config file");
    st_settings_free(&s);
    free(err);
    free(text);
    free(nul_path);
    st_rm_rf(dir);
    free(dir);
    st_rm_rf(sub);
    free(sub);
}
END_TEST

START_TEST(unknown_and_mistyped_settings_name_the_line)
{
    st_settings s;
    char *err, *dir;
    ck_assert_int_eq(load_text("workers = 3;\nworkerz = 4;\n", &s, &err, &dir), -1);
    ck_assert_contains(err, "selftest.conf:2: unknown setting 'workerz'");
    st_settings_free(&s);
    free(err);
    st_rm_rf(dir);
    free(dir);
    ck_assert_int_eq(load_text("\nworkers = \"many\";\n", &s, &err, &dir), -1);
    ck_assert_contains(err, "selftest.conf:2: 'workers' must be an integer");
    st_settings_free(&s);
    free(err);
    st_rm_rf(dir);
    free(dir);
    ck_assert_int_eq(load_text("plugins = ( { kind = \"exporter\"; } );\n", &s, &err, &dir), -1);
    ck_assert_contains(err, "selftest.conf:1: a plugins entry needs");
    st_settings_free(&s);
    free(err);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(missing_named_file_is_an_error)
{
    st_settings s;
    ck_assert_int_eq(st_settings_init(&s), 0);
    unit_capture c;
    unit_capture_begin(&c);
    ck_assert_int_eq(st_settings_load_file(&s, "/nonexistent/selftest.conf"), -1);
    char *err = unit_capture_end(&c);
    ck_assert_contains(err, "/nonexistent/selftest.conf");
    free(err);
    st_settings_free(&s);
}
END_TEST

START_TEST(environment_beats_file)
{
    clean_env();
    st_settings s;
    char *err, *dir;
    ck_assert_int_eq(load_text("workers = 3;\ninclude_orphans = false;\n", &s, &err, &dir), 0);
    setenv("SELF_TEST_WORKERS", "5", 1);
    setenv("SANDBOX_INCLUDE_ORPHANS", "yes", 1);
    ck_assert_int_eq(st_settings_load_env(&s), 0);
    ck_assert_uint_eq(s.workers, 5);
    ck_assert_int_eq(s.include_orphans, 1);
    /* SELF_TEST_* wins over SANDBOX_* */
    setenv("SELF_TEST_INCLUDE_ORPHANS", "off", 1);
    ck_assert_int_eq(st_settings_load_env(&s), 0);
    ck_assert_int_eq(s.include_orphans, 0);
    clean_env();
    st_settings_free(&s);
    free(err);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(bad_environment_values_name_the_variable)
{
    clean_env();
    const char *cases[][3] = {
        {"SELF_TEST_WORKERS", "abc", "environment variable SELF_TEST_WORKERS: 'abc'"},
        {"SELF_TEST_WORKERS", "0", "environment variable SELF_TEST_WORKERS: '0'"},
        {"SELF_TEST_TIMEOUT", "-1", "environment variable SELF_TEST_TIMEOUT: '-1'"},
        {"SANDBOX_INCLUDE_ORPHANS", "maybe", "environment variable SANDBOX_INCLUDE_ORPHANS"},
        {"SELF_TEST_ARGS", "-k 'open", "environment variable SELF_TEST_ARGS"},
        {"SELF_TEST_METRICS_PORT", "70000", "environment variable SELF_TEST_METRICS_PORT"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        st_settings s;
        ck_assert_int_eq(st_settings_init(&s), 0);
        setenv(cases[i][0], cases[i][1], 1);
        unit_capture c;
        unit_capture_begin(&c);
        int rc = st_settings_load_env(&s);
        char *err = unit_capture_end(&c);
        ck_assert_int_eq(rc, -1);
        ck_assert_contains(err, cases[i][2]);
        free(err);
        unsetenv(cases[i][0]);
        st_settings_free(&s);
    }
}
END_TEST

START_TEST(derived_paths_and_isolated_rule)
{
    clean_env();
    char *dir = unit_tmpdir();
    st_settings s;
    ck_assert_int_eq(st_settings_init(&s), 0);
    setenv("SANDBOX_REPO_PATH", dir, 1);
    setenv("SELF_TEST_AUTO_INCLUDE_ISOLATED", "1", 1);
    setenv("SELF_TEST_RECURSIVE_ISOLATED", "0", 1);
    ck_assert_int_eq(st_settings_load_env(&s), 0);
    ck_assert_int_eq(st_settings_finish(&s), 0);
    char *data = st_path_join(dir, "sandbox_data");
    ck_assert_str_eq(s.data_dir, data);
    char *reports = st_path_join(data, "self_test_reports");
    ck_assert_str_eq(s.report_dir, reports);
    char *lock = st_path_join(data, "self_test.lock");
    ck_assert_str_eq(s.lock_file, lock);
    /* an explicit SELF_TEST_RECURSIVE_ISOLATED=0 wins over --auto-include-isolated (issue 9:
     * isolated discovery used to force it on) */
    ck_assert_int_eq(s.auto_include_isolated, 1);
    ck_assert_int_eq(s.recursive_isolated, 0);
    free(data);
    free(reports);
    free(lock);
    st_settings_free(&s);
    /* without it, recursive isolated processing stays on, its default */
    unsetenv("SELF_TEST_RECURSIVE_ISOLATED");
    ck_assert_int_eq(st_settings_init(&s), 0);
    ck_assert_int_eq(st_settings_load_env(&s), 0);
    ck_assert_int_eq(st_settings_finish(&s), 0);
    ck_assert_int_eq(s.recursive_isolated, 1);
    clean_env();
    st_settings_free(&s);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(pythonpath_file_env_and_errors)
{
    clean_env();
    st_settings s;
    char *err, *dir;
    /* the file's list, relative to the project root (not to the config file's dir) */
    ck_assert_int_eq(load_text("workers = 1;\npythonpath = [\"src\", \"lib/x\", \".\"];\n", &s,
                               &err, &dir),
                     0);
    char *root = st_path_join(dir, "proj");
    char *libx = st_path_join(root, "lib/x"), *srcd = st_path_join(root, "src");
    ck_assert_int_eq(st_mkdir_p(libx, 0755), 0);
    ck_assert_int_eq(st_mkdir_p(srcd, 0755), 0);
    unit_write(srcd, "m.py", "");
    free(libx);
    free(srcd);
    setenv("SANDBOX_REPO_PATH", root, 1);
    ck_assert_int_eq(st_settings_load_env(&s), 0);
    ck_assert_int_eq(st_settings_finish(&s), 0);
    ck_assert_uint_eq(s.pythonpath.n, 3);
    char *src = st_path_join(root, "src");
    ck_assert_str_eq(s.pythonpath.v[0], src);
    ck_assert_uint_eq(s.pythonpath_rel.n, 2); /* the root itself is not a source root */
    ck_assert_str_eq(s.pythonpath_rel.v[0], "src");
    ck_assert_str_eq(s.pythonpath_rel.v[1], "lib/x");
    st_settings_free(&s);
    free(err);
    /* the environment beats the file; a missing directory names its source */
    char *dir2, *dir3;
    ck_assert_int_eq(load_text("pythonpath = [\"nope\"];\n", &s, &err, &dir2), 0);
    free(err);
    st_rm_rf(dir2);
    free(dir2);
    setenv("SELF_TEST_PYTHONPATH", "lib/x:src", 1);
    ck_assert_int_eq(st_settings_load_env(&s), 0);
    ck_assert_int_eq(st_settings_finish(&s), 0);
    ck_assert_uint_eq(s.pythonpath_rel.n, 2);
    ck_assert_str_eq(s.pythonpath_rel.v[0], "lib/x");
    st_settings_free(&s);
    unsetenv("SELF_TEST_PYTHONPATH");
    ck_assert_int_eq(load_text("\npythonpath = [\"nope\"];\n", &s, &err, &dir3), 0);
    free(err);
    ck_assert_int_eq(st_settings_load_env(&s), 0);
    unit_capture c;
    unit_capture_begin(&c);
    ck_assert_int_eq(st_settings_finish(&s), -1);
    err = unit_capture_end(&c);
    ck_assert_contains(err, "selftest.conf:2: pythonpath entry 'nope'");
    ck_assert_contains(err, "is not a directory");
    free(err);
    st_settings_free(&s);
    st_rm_rf(dir3);
    free(dir3);
    const char *bad[][2] = {{"src::lib/x", "empty entry"}, {":src", "empty entry"},
                            {"src:", "empty entry"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(st_settings_init(&s), 0);
        setenv("SELF_TEST_PYTHONPATH", bad[i][0], 1);
        unit_capture_begin(&c);
        ck_assert_int_eq(st_settings_load_env(&s), -1);
        err = unit_capture_end(&c);
        ck_assert_contains(err, "environment variable SELF_TEST_PYTHONPATH");
        ck_assert_contains(err, bad[i][1]);
        free(err);
        st_settings_free(&s);
    }
    ck_assert_int_eq(st_settings_init(&s), 0);
    setenv("SELF_TEST_PYTHONPATH", "src/m.py", 1);
    ck_assert_int_eq(st_settings_load_env(&s), 0);
    unit_capture_begin(&c);
    ck_assert_int_eq(st_settings_finish(&s), -1);
    err = unit_capture_end(&c);
    ck_assert_contains(err, "environment variable SELF_TEST_PYTHONPATH: pythonpath entry 'src/m.py'");
    free(err);
    st_settings_free(&s);
    clean_env();
    free(src);
    free(root);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(defaults)
{
    clean_env();
    st_settings s;
    ck_assert_int_eq(st_settings_init(&s), 0);
    ck_assert_uint_eq(s.workers, st_cpu_count());
    ck_assert(s.timeout_s == 300);
    ck_assert_uint_eq(s.retries, 1);
    ck_assert_int_eq(s.metrics_port, -1);
    ck_assert_int_eq(s.include_orphans, 1);
    ck_assert_int_eq(s.auto_include_isolated, 0);
    ck_assert(st_strv_contains(&s.skip_dirs, "sandbox_data"));
    st_settings_free(&s);
}
END_TEST

/* keep_runs: 100 by default; the file, then SELF_TEST_KEEP_RUNS; 0 keeps every run; below 10
 * or below flaky_window is refused at finish, naming both and the file. */
START_TEST(keep_runs_file_env_and_floor)
{
    clean_env();
    st_settings s;
    char *err, *dir;
    /* not given: 100, or a larger flaky_window */
    const struct {
        const char *text;
        unsigned keep;
    } unset[] = {{"flaky_window = 30;\n", 100}, {"flaky_window = 250;\n", 250}};
    for (size_t i = 0; i < 2; i++) {
        ck_assert_int_eq(load_text(unset[i].text, &s, &err, &dir), 0);
        free(err);
        ck_assert_int_eq(st_settings_finish(&s), 0);
        ck_assert_uint_eq(s.keep_runs, unset[i].keep);
        st_settings_free(&s);
        st_rm_rf(dir);
        free(dir);
    }
    ck_assert_int_eq(load_text("keep_runs = 40;\nflaky_window = 30;\n", &s, &err, &dir), 0);
    free(err);
    ck_assert_uint_eq(s.keep_runs, 40);
    setenv("SANDBOX_REPO_PATH", dir, 1);
    ck_assert_int_eq(st_settings_load_env(&s), 0);
    ck_assert_int_eq(st_settings_finish(&s), 0);
    st_settings_free(&s);
    unsetenv("SANDBOX_REPO_PATH");
    st_rm_rf(dir);
    free(dir);
    const char *bad[] = {"keep_runs = 25;\nflaky_window = 30;\n", "keep_runs = 9;\n"};
    for (size_t i = 0; i < 2; i++) {
        char *d2;
        ck_assert_int_eq(load_text(bad[i], &s, &err, &d2), 0);
        free(err);
        unit_capture c;
        unit_capture_begin(&c);
        ck_assert_int_eq(st_settings_finish(&s), ST_ERR_INVALID);
        char *log = unit_capture_end(&c);
        ck_assert_contains(log, i == 0 ? "keep_runs is 25" : "keep_runs is 9");
        ck_assert_contains(log, i == 0 ? "flaky_window (30)" : "at least 10");
        ck_assert_contains(log, "selftest.conf");
        free(log);
        st_settings_free(&s);
        st_rm_rf(d2);
        free(d2);
    }
    /* the variable wins; 0 keeps every run whatever the window */
    ck_assert_int_eq(load_text("keep_runs = 25;\nflaky_window = 30;\n", &s, &err, &dir), 0);
    free(err);
    setenv("SELF_TEST_KEEP_RUNS", "0", 1);
    ck_assert_int_eq(st_settings_load_env(&s), 0);
    ck_assert_uint_eq(s.keep_runs, 0);
    ck_assert_int_eq(st_settings_finish(&s), 0);
    st_settings_free(&s);
    setenv("SELF_TEST_KEEP_RUNS", "-3", 1);
    ck_assert_int_eq(st_settings_init(&s), 0);
    unit_capture c;
    unit_capture_begin(&c);
    ck_assert_int_eq(st_settings_load_env(&s), -1);
    char *log = unit_capture_end(&c);
    ck_assert_contains(log, "environment variable SELF_TEST_KEEP_RUNS: '-3'");
    free(log);
    st_settings_free(&s);
    unsetenv("SELF_TEST_KEEP_RUNS");
    clean_env();
    st_rm_rf(dir);
    free(dir);
}
END_TEST

/* pytest's pythonpath ini option: adopted without a setting (directories only), dropped again
 * for the next cycle's preflight, never over a setting. */
START_TEST(pytest_pythonpath_adopted_and_dropped)
{
    clean_env();
    char *dir = unit_tmpdir();
    char *lib = st_path_join(dir, "lib"), *pkg = st_path_join(dir, "lib/pkg");
    ck_assert_int_eq(mkdir(lib, 0755), 0);
    ck_assert_int_eq(mkdir(pkg, 0755), 0);
    free(lib);
    free(pkg);
    st_settings s;
    ck_assert_int_eq(st_settings_init(&s), 0);
    setenv("SANDBOX_REPO_PATH", dir, 1);
    ck_assert_int_eq(st_settings_load_env(&s), 0);
    ck_assert_int_eq(st_settings_finish(&s), 0);
    st_strv dirs = {0};
    st_strv_push(&dirs, "lib");
    st_strv_push(&dirs, "gone");
    unit_capture c;
    unit_capture_begin(&c);
    ck_assert_int_eq(st_settings_adopt_pytest_pythonpath(&s, &dirs, "/p/pytest.ini"), 0);
    char *log = unit_capture_end(&c);
    ck_assert_contains(log, "pythonpath entry 'gone' in /p/pytest.ini is not a directory");
    free(log);
    ck_assert_uint_eq(s.pythonpath_rel.n, 1);
    ck_assert_str_eq(s.pythonpath_rel.v[0], "lib");
    ck_assert_uint_eq(s.pythonpath.n, 1);
    ck_assert_int_eq(s.pythonpath_pytest, 1);
    ck_assert_int_eq(st_settings_adopt_pytest_pythonpath(&s, NULL, NULL), 0);
    ck_assert_uint_eq(s.pythonpath.n, 0);
    ck_assert_uint_eq(s.pythonpath_rel.n, 0);
    ck_assert_int_eq(s.pythonpath_pytest, 0);
    st_settings_free(&s);
    /* a setting wins */
    ck_assert_int_eq(st_settings_init(&s), 0);
    setenv("SELF_TEST_PYTHONPATH", "lib/pkg", 1);
    ck_assert_int_eq(st_settings_load_env(&s), 0);
    ck_assert_int_eq(st_settings_finish(&s), 0);
    ck_assert_int_eq(st_settings_adopt_pytest_pythonpath(&s, &dirs, "/p/pytest.ini"), 0);
    ck_assert_int_eq(st_settings_adopt_pytest_pythonpath(&s, NULL, NULL), 0);
    ck_assert_uint_eq(s.pythonpath_rel.n, 1);
    ck_assert_str_eq(s.pythonpath_rel.v[0], "lib/pkg");
    ck_assert_int_eq(s.pythonpath_pytest, 0);
    st_settings_free(&s);
    st_strv_free(&dirs);
    clean_env();
    st_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(orphan_exclude_and_timeout)
{
    clean_env();
    st_settings s;
    char *err, *dir;
    /* the default list, replaced by the config, then by the variable */
    ck_assert_int_eq(st_settings_init(&s), 0);
    ck_assert(st_strv_contains(&s.orphan_exclude, "setup.py"));
    ck_assert(st_strv_contains(&s.orphan_exclude, "docs/*"));
    ck_assert(s.orphan_timeout_s == 60);
    st_settings_free(&s);
    ck_assert_int_eq(load_text("orphan_exclude = [\"./tools/\", \"gen_*.py\"];\n"
                               "orphan_timeout = 7;\n",
                               &s, &err, &dir),
                     0);
    ck_assert_uint_eq(s.orphan_exclude.n, 2);
    ck_assert_str_eq(s.orphan_exclude.v[0], "tools/*");
    ck_assert_str_eq(s.orphan_exclude.v[1], "gen_*.py");
    ck_assert(s.orphan_timeout_s == 7);
    setenv("SELF_TEST_ORPHAN_EXCLUDE", "a.py::/b/", 1);
    setenv("SELF_TEST_ORPHAN_TIMEOUT", "2.5", 1);
    ck_assert_int_eq(st_settings_load_env(&s), 0);
    ck_assert_uint_eq(s.orphan_exclude.n, 2);
    ck_assert_str_eq(s.orphan_exclude.v[0], "a.py");
    ck_assert_str_eq(s.orphan_exclude.v[1], "/b/*");
    ck_assert(s.orphan_timeout_s == 2.5);
    setenv("SELF_TEST_ORPHAN_EXCLUDE", ":", 1);
    ck_assert_int_eq(st_settings_load_env(&s), 0);
    ck_assert_uint_eq(s.orphan_exclude.n, 0);
    /* a glob leaving the root names its source */
    setenv("SELF_TEST_ORPHAN_EXCLUDE", "ok.py:../up", 1);
    unit_capture c;
    unit_capture_begin(&c);
    ck_assert_int_eq(st_settings_load_env(&s), -1);
    char *log = unit_capture_end(&c);
    ck_assert_contains(log, "SELF_TEST_ORPHAN_EXCLUDE");
    ck_assert_contains(log, "../up");
    free(log);
    clean_env();
    unsetenv("SELF_TEST_ORPHAN_EXCLUDE");
    unsetenv("SELF_TEST_ORPHAN_TIMEOUT");
    st_settings_free(&s);
    free(err);
    st_rm_rf(dir);
    free(dir);
    ck_assert_int_eq(load_text("orphan_exclude = [\"/\"];\n", &s, &err, &dir), -1);
    ck_assert_contains(err, "selftest.conf:1");
    st_settings_free(&s);
    free(err);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

int main(void)
{
    st_log_set_level(ST_LOG_DEBUG);
    Suite *s = suite_create("settings");
    TCase *tc = tcase_create("settings");
    tcase_add_test(tc, file_values_are_read);
    tcase_add_test(tc, syntax_error_names_file_and_line);
    tcase_add_test(tc, include_of_a_non_regular_file_is_refused);
    tcase_add_test(tc, unknown_and_mistyped_settings_name_the_line);
    tcase_add_test(tc, missing_named_file_is_an_error);
    tcase_add_test(tc, environment_beats_file);
    tcase_add_test(tc, bad_environment_values_name_the_variable);
    tcase_add_test(tc, derived_paths_and_isolated_rule);
    tcase_add_test(tc, pythonpath_file_env_and_errors);
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, orphan_exclude_and_timeout);
    tcase_add_test(tc, keep_runs_file_env_and_floor);
    tcase_add_test(tc, pytest_pythonpath_adopted_and_dropped);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
