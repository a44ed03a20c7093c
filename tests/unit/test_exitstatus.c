/* SPDX-License-Identifier: MIT */
/* Unit tests of the one status convention below cli.c: st_status_str (plugin.h), the one
 * mapping of a status and a verdict to an exit status (exitstatus.c), a run's verdict, the
 * lifecycle's rule that only create() can report a configuration error, and the statuses the
 * readers and stores below the pipeline report (a malformed file, a missing one, an unreadable
 * one, a bad setting) with the exit status each comes to. */
#include "config.h"

#include "unit.h"

#include "coverage.h"
#include "exitstatus.h"
#include "history.h"
#include "json.h"
#include "loader.h"
#include "log.h"
#include "metricsdb.h"
#include "plugin_services.h"
#include "plugins.h"
#include "preflightcache.h"
#include "results.h"
#include "settings.h"

#include <errno.h>
#include <selftest/plugin.h>
#include <sqlite3.h>
#include <sys/stat.h>

START_TEST(status_names)
{
    ck_assert_str_eq(st_status_str(ST_OK), "ok");
    ck_assert_str_eq(st_status_str(ST_ERR_INVALID), "invalid");
    ck_assert_str_eq(st_status_str(ST_ERR_NOMEM), "out of memory");
    ck_assert_str_eq(st_status_str(ST_ERR_UNAVAILABLE), "unavailable");
    ck_assert_str_eq(st_status_str(ST_ERR_TIMEOUT), "timeout");
    ck_assert_str_eq(st_status_str(ST_ERR_CANCELLED), "cancelled");
    ck_assert_str_eq(st_status_str(ST_ERR_IO), "i/o error");
    ck_assert_str_eq(st_status_str(ST_ERR_INTERNAL), "internal error");
    ck_assert_str_eq(st_status_str(ST_ERR_MALFORMED), "malformed");
    /* anything else (a plugin's positive or unknown value) has a name too, never NULL */
    ck_assert_str_eq(st_status_str(1), "unknown");
    ck_assert_str_eq(st_status_str(-9), "unknown");
    ck_assert_str_eq(st_status_str(-1000), "unknown");
    /* every status has its own name */
    for (int a = ST_ERR_MALFORMED; a <= ST_OK; a++)
        for (int b = a + 1; b <= ST_OK; b++)
            ck_assert_str_ne(st_status_str(a), st_status_str(b));
}
END_TEST

START_TEST(the_one_mapping)
{
    /* a command that ran to the end: its verdict decides */
    ck_assert_int_eq(st_exit_status(ST_OK, ST_VERDICT_PASSED), 0);
    ck_assert_int_eq(st_exit_status(ST_OK, ST_VERDICT_FAILED), 1);
    ck_assert_int_eq(st_exit_status(ST_OK, ST_VERDICT_BROKEN), 3);
    /* a usage or configuration error, whatever the verdict says */
    ck_assert_int_eq(st_exit_status(ST_ERR_INVALID, ST_VERDICT_PASSED), 2);
    ck_assert_int_eq(st_exit_status(ST_ERR_INVALID, ST_VERDICT_FAILED), 2);
    /* every other status is an infrastructure error */
    static const int infra[] = {ST_ERR_NOMEM,     ST_ERR_UNAVAILABLE, ST_ERR_TIMEOUT,
                                ST_ERR_CANCELLED, ST_ERR_IO,          ST_ERR_INTERNAL,
                                ST_ERR_MALFORMED, -42};
    for (size_t i = 0; i < sizeof(infra) / sizeof(infra[0]); i++) {
        ck_assert_int_eq(st_exit_status(infra[i], ST_VERDICT_PASSED), 3);
        ck_assert_int_eq(st_exit_status(infra[i], ST_VERDICT_FAILED), 3);
    }
    /* the names of exitstatus.h are the documented numbers */
    ck_assert_int_eq(ST_EXIT_OK, 0);
    ck_assert_int_eq(ST_EXIT_FAILED, 1);
    ck_assert_int_eq(ST_EXIT_USAGE, 2);
    ck_assert_int_eq(ST_EXIT_INFRA, 3);
}
END_TEST

START_TEST(run_verdicts)
{
    st_run run = {0};
    st_batch batches[2] = {{0}};
    run.batches = batches;
    run.n_batches = 2;
    batches[0].ok = batches[0].done = 1;
    batches[1].ok = batches[1].done = 1;
    ck_assert_int_eq(st_run_verdict(&run, 0, ST_VERDICT_BROKEN), ST_VERDICT_PASSED);
    batches[1].ok = 0;
    ck_assert_int_eq(st_run_verdict(&run, 0, ST_VERDICT_BROKEN), ST_VERDICT_FAILED);
    /* an infrastructure error outranks a failure */
    batches[0].infra_error = 1;
    ck_assert_int_eq(st_run_verdict(&run, 0, ST_VERDICT_BROKEN), ST_VERDICT_BROKEN);
    batches[0].infra_error = 0;
    batches[1].ok = 1;
    run.integration_failed = 1;
    ck_assert_int_eq(st_run_verdict(&run, 0, ST_VERDICT_BROKEN), ST_VERDICT_BROKEN);
    run.integration_failed = 0;
    /* a stopped run's verdict is the caller's: `run` broken (exit 3), run-scheduled passed */
    batches[1].ok = 0;
    run.aborted = 1;
    ck_assert_int_eq(st_run_verdict(&run, 0, ST_VERDICT_BROKEN), ST_VERDICT_BROKEN);
    ck_assert_int_eq(st_run_verdict(&run, 0, ST_VERDICT_PASSED), ST_VERDICT_PASSED);
    ck_assert_int_eq(st_exit_status(ST_OK, st_run_verdict(&run, 0, ST_VERDICT_BROKEN)), 3);
    ck_assert_int_eq(st_exit_status(ST_OK, st_run_verdict(&run, 0, ST_VERDICT_PASSED)), 0);
}
END_TEST

/* ---- only create() reports a configuration error ------------------------------------------ */

static int start_status;

static int fake_start(void *ctx)
{
    (void)ctx;
    return start_status;
}

static void fake_destroy(void *ctx)
{
    (void)ctx;
}

START_TEST(start_is_never_a_configuration_error)
{
    st_log_set_level(ST_LOG_ERROR);
    static const st_lifecycle_ops life = {.start = fake_start, .destroy = fake_destroy};
    static const int given[] = {ST_ERR_INVALID, ST_ERR_UNAVAILABLE, ST_ERR_IO, ST_OK, 7};
    static const int want[] = {ST_ERR_UNAVAILABLE, ST_ERR_UNAVAILABLE, ST_ERR_IO, ST_OK,
                               ST_ERR_INTERNAL};
    for (size_t i = 0; i < sizeof(given) / sizeof(given[0]); i++) {
        st_instance inst;
        memset(&inst, 0, sizeof(inst));
        inst.name = "runtime-fake";
        inst.life = &life;
        inst.created = 1;
        start_status = given[i];
        unit_capture cap;
        unit_capture_begin(&cap);
        int rc = st_inst_start(&inst);
        free(unit_capture_end(&cap));
        ck_assert_msg(rc == want[i], "start() returned %d: st_inst_start gave %d (%s), want %d",
                      given[i], rc, st_status_str(rc), want[i]);
        /* a runtime whose start() fails exits 3, never 2 (its settings were accepted) */
        ck_assert_int_eq(st_exit_status(rc, ST_VERDICT_PASSED), given[i] == ST_OK ? 0 : 3);
    }
}
END_TEST

/* The runtimes of tests/fixtures/plugins that cannot be set up, through the plugin set as the
 * pipeline drives it: only create() refusing its settings is a configuration error (exit 2),
 * also for the host runtime the pipeline falls back to when the container engine is away. */
START_TEST(runtime_setup_failures)
{
    const char *dir = getenv("FIXTURE_PLUGIN_DIR");
    ck_assert_msg(dir != NULL, "FIXTURE_PLUGIN_DIR must name the fixture plugin dir");
    st_log_set_level(ST_LOG_ERROR);
    st_settings s;
    ck_assert_int_eq(st_settings_init(&s), 0);
    st_strv_free(&s.plugin_path);
    st_strv_push(&s.plugin_path, dir);
    ck_assert_int_eq(st_set_string(&s.runtime, "fx-start-fails"), 0);
    st_plugin_set ps = {0};
    unit_capture cap;
    unit_capture_begin(&cap);
    int loaded = st_plugins_load(&s, &ps, 1);
    int started = loaded == ST_OK ? st_plugins_start(&ps) : loaded;
    /* the fallback: another runtime in place of the one that did not start */
    int bad_settings = st_plugins_switch_runtime(&s, &ps, "fx-bad-settings");
    int create_fails = st_plugins_switch_runtime(&s, &ps, "fx-create-fails");
    int missing = st_plugins_switch_runtime(&s, &ps, "fx-not-installed");
    char *err = unit_capture_end(&cap);
    ck_assert_msg(loaded == ST_OK, "runtime-fx-start-fails loads: %s", err);
    ck_assert_int_eq(started, ST_ERR_UNAVAILABLE);
    ck_assert_int_eq(st_exit_status(started, ST_VERDICT_PASSED), 3);
    ck_assert_int_eq(bad_settings, ST_ERR_INVALID);
    ck_assert_int_eq(st_exit_status(bad_settings, ST_VERDICT_PASSED), 2);
    ck_assert_int_eq(create_fails, ST_ERR_UNAVAILABLE);
    ck_assert_int_eq(st_exit_status(create_fails, ST_VERDICT_PASSED), 3);
    ck_assert_int_eq(missing, ST_ERR_UNAVAILABLE);
    ck_assert_contains(err, "start failed (unavailable, status -3)");
    free(err);
    st_plugins_free(&ps);
    st_settings_free(&s);
}
END_TEST

/* ---- the readers and stores below the pipeline ---------------------------------------------- */

/* status is what the caller got; want the status it must be; and the exit status it comes to
 * is 2 for ST_ERR_INVALID and 3 for every other failure. */
#define ck_assert_status(status, want)                                                           \
    do {                                                                                       \
        int got_ = (status);                                                                   \
        ck_assert_msg(got_ == (want), "%s: %d (%s), want %d (%s)", #status, got_,              \
                      st_status_str(got_), (int)(want), st_status_str(want));                  \
        ck_assert_int_eq(st_exit_status(got_, ST_VERDICT_PASSED),                              \
                         (want) == ST_ERR_INVALID ? ST_EXIT_USAGE : ST_EXIT_INFRA);            \
    } while (0)

START_TEST(errno_values_map_to_statuses)
{
    ck_assert_int_eq(st_status_of_errno(0), ST_OK);
    ck_assert_int_eq(st_status_of_errno(-ENOENT), ST_ERR_UNAVAILABLE);
    ck_assert_int_eq(st_status_of_errno(ENOENT), ST_ERR_UNAVAILABLE); /* either sign */
    ck_assert_int_eq(st_status_of_errno(-ENOTDIR), ST_ERR_UNAVAILABLE);
    ck_assert_int_eq(st_status_of_errno(-ENOMEM), ST_ERR_NOMEM);
    ck_assert_int_eq(st_status_of_errno(-EACCES), ST_ERR_IO);
    ck_assert_int_eq(st_status_of_errno(-ENOSPC), ST_ERR_IO);
    ck_assert_int_eq(st_status_of_errno(-EISDIR), ST_ERR_IO);
    /* SQLite's result codes (the metrics DB, the history file's .db variant) */
    ck_assert_int_eq(st_sqlite_status(SQLITE_NOMEM), ST_ERR_NOMEM);
    ck_assert_int_eq(st_sqlite_status(SQLITE_BUSY), ST_ERR_TIMEOUT);
    ck_assert_int_eq(st_sqlite_status(SQLITE_NOTADB), ST_ERR_MALFORMED);
    ck_assert_int_eq(st_sqlite_status(SQLITE_CORRUPT), ST_ERR_MALFORMED);
    ck_assert_int_eq(st_sqlite_status(SQLITE_CONSTRAINT_UNIQUE), ST_ERR_INTERNAL);
    ck_assert_int_eq(st_sqlite_status(SQLITE_IOERR_WRITE), ST_ERR_IO);
    ck_assert_int_eq(st_sqlite_status(SQLITE_FULL), ST_ERR_IO);
}
END_TEST

START_TEST(json_lookups_tell_absent_from_mistyped)
{
    char err[128];
    yajl_val v = st_json_parse("{\"n\": 3, \"s\": \"x\", \"d\": 1.5}", err, sizeof(err));
    ck_assert_ptr_nonnull(v);
    long long n = 0;
    double d = 0;
    ck_assert_int_eq(st_jv_int(v, "n", &n), ST_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(st_jv_int(v, "missing", &n), ST_ERR_UNAVAILABLE);
    ck_assert_int_eq(st_jv_int(v, "s", &n), ST_ERR_MALFORMED);
    ck_assert_int_eq(st_jv_int(v, "d", &n), ST_ERR_MALFORMED);
    ck_assert_int_eq(st_jv_double(v, "d", &d), ST_OK);
    ck_assert_int_eq(st_jv_double(v, "missing", &d), ST_ERR_UNAVAILABLE);
    ck_assert_int_eq(st_jv_double(v, "s", &d), ST_ERR_MALFORMED);
    yajl_tree_free(v);
}
END_TEST

START_TEST(batch_files_malformed_missing_unreadable)
{
    char *dir = unit_tmpdir();
    char err[600] = "";
    char *lcov = st_path_join(dir, "coverage.lcov"), *jsonl = st_path_join(dir, "results.jsonl");
    char *missing = st_path_join(dir, "missing");
    st_batch b = {0};
    /* malformed: the line is named */
    unit_write(dir, "coverage.lcov", "SF:m.py\nDA:oops\n");
    ck_assert_status(st_coverage_read(&b, lcov, err, sizeof(err)), ST_ERR_MALFORMED);
    ck_assert_contains(err, "coverage.lcov:2: malformed");
    unit_write(dir, "results.jsonl", "{\"event\": \"start\"}\nnot json\n");
    ck_assert_status(st_results_read(&b, jsonl, err, sizeof(err)), ST_ERR_MALFORMED);
    ck_assert_contains(err, "results.jsonl:2: not a JSON object");
    unit_write(dir, "results.jsonl", "{\"event\": \"what\"}\n");
    ck_assert_status(st_results_read(&b, jsonl, err, sizeof(err)), ST_ERR_MALFORMED);
    ck_assert_contains(err, "unknown event 'what'");
    /* missing: not an error of the reader (the verdict decides) */
    ck_assert_int_eq(st_coverage_read(&b, missing, err, sizeof(err)), 1);
    ck_assert_int_eq(st_results_read(&b, missing, err, sizeof(err)), ST_OK);
    /* not readable as a file: a directory where the file belongs */
    ck_assert_status(st_coverage_read(&b, dir, err, sizeof(err)), ST_ERR_IO);
    ck_assert_status(st_results_read(&b, dir, err, sizeof(err)), ST_ERR_IO);
    st_batch_free(&b);
    free(lcov);
    free(jsonl);
    free(missing);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(stores_refuse_malformed_files)
{
    st_log_set_level(ST_LOG_ERROR);
    char *dir = unit_tmpdir();
    unit_capture cap;
    /* the metrics DB: a file that is not SQLite, and one of a newer schema */
    unit_write(dir, "text.db", "this is a text file, not an SQLite database\n");
    char *text_db = st_path_join(dir, "text.db"), *new_db = st_path_join(dir, "new.db");
    sqlite3 *raw = NULL;
    ck_assert_int_eq(sqlite3_open(new_db, &raw), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(raw, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    st_metricsdb *m = NULL;
    unit_capture_begin(&cap);
    int not_sqlite = st_metricsdb_open(text_db, &m);
    int newer = st_metricsdb_open(new_db, &m);
    char *log = unit_capture_end(&cap);
    ck_assert_status(not_sqlite, ST_ERR_MALFORMED);
    ck_assert_status(newer, ST_ERR_MALFORMED);
    ck_assert_contains(log, "text.db");
    ck_assert_contains(log, "schema version 999 is newer");
    free(log);
    /* the history file: not a JSON array, not JSON at all; left as it is */
    st_run run = {0};
    char *hist = st_path_join(dir, "history.json");
    unit_write(dir, "history.json", "{\"an\": \"object\"}");
    unit_capture_begin(&cap);
    int object = st_history_append(hist, &run);
    unit_write(dir, "history.json", "[1, 2");
    int broken = st_history_append(hist, &run);
    int on_dir = st_history_append(dir, &run); /* a directory where the file belongs */
    log = unit_capture_end(&cap);
    ck_assert_status(object, ST_ERR_MALFORMED);
    ck_assert_status(broken, ST_ERR_MALFORMED);
    ck_assert_status(on_dir, ST_ERR_IO);
    ck_assert_contains(log, "not a JSON array");
    char *kept = NULL;
    ck_assert_int_eq(st_read_file(hist, 1 << 20, &kept, NULL), 0);
    ck_assert_str_eq(kept, "[1, 2");
    free(kept);
    free(log);
    /* the preflight cache: a file of the wrong shape is never overwritten */
    st_settings s;
    ck_assert_int_eq(st_settings_init(&s), ST_OK);
    ck_assert_int_eq(st_set_string(&s.data_dir, dir), ST_OK);
    ck_assert_int_eq(st_set_string(&s.project_root, dir), ST_OK);
    unit_write(dir, ST_PREFLIGHT_CACHE_FILE, "{\"version\": 7}");
    unit_capture_begin(&cap);
    int pf = st_pfcache_store(&s, "identity", "{}", NULL, NULL, NULL);
    free(unit_capture_end(&cap));
    ck_assert_status(pf, ST_ERR_MALFORMED);
    st_settings_free(&s);
    free(text_db);
    free(new_db);
    free(hist);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(configuration_errors_are_invalid)
{
    st_log_set_level(ST_LOG_ERROR);
    char *dir = unit_tmpdir();
    char *conf = st_path_join(dir, "selftest.conf"), *missing = st_path_join(dir, "nope.conf");
    st_settings s;
    unit_capture cap;
    unit_capture_begin(&cap);
    ck_assert_int_eq(st_settings_init(&s), ST_OK);
    int no_file = st_settings_load_file(&s, missing);
    st_settings_free(&s);
    unit_write(dir, "selftest.conf", "workers = \"many\";\n");
    ck_assert_int_eq(st_settings_init(&s), ST_OK);
    int mistyped = st_settings_load_file(&s, conf);
    st_settings_free(&s);
    ck_assert_int_eq(st_settings_init(&s), ST_OK);
    int bad_value = st_set_seconds(&s.timeout_s, "soon", "option --timeout");
    st_settings_free(&s);
    st_loader *ld = NULL;
    st_instance *inst = NULL;
    st_strv dirs = {0};
    st_strv_push(&dirs, dir);
    ck_assert_int_eq(st_loader_new(&dirs, &dirs, &ld), ST_OK);
    int unknown = st_loader_load(ld, "no-such-plugin", ST_KIND_RUNTIME, "test", &inst);
    char *log = unit_capture_end(&cap);
    ck_assert_status(no_file, ST_ERR_INVALID);
    ck_assert_status(mistyped, ST_ERR_INVALID);
    ck_assert_status(bad_value, ST_ERR_INVALID);
    ck_assert_status(unknown, ST_ERR_INVALID);
    ck_assert_contains(log, "nope.conf");
    ck_assert_contains(log, "selftest.conf:1");
    ck_assert_contains(log, "option --timeout");
    ck_assert_contains(log, "unknown plugin 'no-such-plugin'");
    free(log);
    st_loader_free(ld);
    st_strv_free(&dirs);
    free(conf);
    free(missing);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("exitstatus");
    TCase *tc = tcase_create("exitstatus");
    tcase_add_test(tc, status_names);
    tcase_add_test(tc, the_one_mapping);
    tcase_add_test(tc, run_verdicts);
    tcase_add_test(tc, start_is_never_a_configuration_error);
    tcase_add_test(tc, runtime_setup_failures);
    suite_add_tcase(s, tc);
    TCase *readers = tcase_create("readers");
    tcase_add_test(readers, errno_values_map_to_statuses);
    tcase_add_test(readers, json_lookups_tell_absent_from_mistyped);
    tcase_add_test(readers, batch_files_malformed_missing_unreadable);
    tcase_add_test(readers, stores_refuse_malformed_files);
    tcase_add_test(readers, configuration_errors_are_invalid);
    suite_add_tcase(s, readers);
    return unit_run(s);
}
