/* SPDX-License-Identifier: MIT */
/* Unit tests of the one status convention below cli.c: st_status_str (plugin.h), the one
 * mapping of a status and a verdict to an exit status (exitstatus.c), a run's verdict, and the
 * lifecycle's rule that only create() can report a configuration error. */
#include "config.h"

#include "unit.h"

#include "exitstatus.h"
#include "log.h"
#include "plugin_services.h"
#include "plugins.h"
#include "settings.h"

#include <selftest/plugin.h>

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
    return unit_run(s);
}
