/* SPDX-License-Identifier: MIT */
/* Unit tests of loader.c: one fixture plugin per refusal path (tests/fixtures/plugins), each
 * asserting that the message names both sides. */
#include "config.h"

#include "unit.h"

#include "loader.h"
#include "log.h"
#include "plugins.h"
#include "settings.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static st_loader *open_loader(void)
{
    const char *dir = getenv("FIXTURE_PLUGIN_DIR");
    ck_assert_msg(dir != NULL, "FIXTURE_PLUGIN_DIR must name the fixture plugin dir");
    st_strv path = {0};
    st_strv_push(&path, "/nonexistent-first-dir");
    st_strv_push(&path, dir);
    st_loader *ld = NULL;
    ck_assert_int_eq(st_loader_new(&path, NULL, &ld), 0);
    st_strv_free(&path);
    return ld;
}

/* Loads name as kind; returns the status and the message. */
static int try_load(const char *name, st_plugin_kind kind, char **err, st_instance **inst)
{
    st_loader *ld = open_loader();
    unit_capture c;
    unit_capture_begin(&c);
    st_instance *i = NULL;
    int rc = st_loader_load(ld, name, kind, "test.conf:7", &i);
    *err = unit_capture_end(&c);
    if (inst)
        *inst = i;
    st_loader_free(ld);
    return rc;
}

START_TEST(good_plugin_loads)
{
    st_loader *ld = open_loader();
    st_instance *inst = NULL;
    ck_assert_int_eq(st_loader_load(ld, "fx-good", ST_KIND_EXPORTER, "test.conf:7", &inst), 0);
    ck_assert_str_eq(inst->desc->name, "fx-good");
    ck_assert_int_eq(inst->desc->kind, ST_KIND_EXPORTER);
    ck_assert_contains(inst->file, "fx-good.la");
    ck_assert_int_eq(st_inst_create(inst), ST_OK);
    ck_assert_int_eq(st_inst_start(inst), ST_OK);
    st_loader_free(ld); /* stops and destroys */
}
END_TEST

START_TEST(unknown_plugin_names_the_search_path)
{
    char *err;
    ck_assert_int_eq(try_load("nope", ST_KIND_EXPORTER, &err, NULL), -1);
    ck_assert_contains(err, "test.conf:7: unknown plugin 'nope'");
    ck_assert_contains(err, "/nonexistent-first-dir:");
    free(err);
}
END_TEST

START_TEST(other_major_is_refused_naming_both)
{
    char *err;
    ck_assert_int_eq(try_load("fx-major", ST_KIND_EXPORTER, &err, NULL), -1);
    ck_assert_contains(err, "fx-major.la");
    char want[64];
    ck_assert_contains(err, "built for plugin ABI 2.0");
    snprintf(want, sizeof(want), "this core provides ABI %u.%u", ST_ABI_MAJOR, ST_ABI_MINOR);
    ck_assert_contains(err, want);
    free(err);
}
END_TEST

START_TEST(newer_minor_is_refused_naming_both)
{
    char *err;
    ck_assert_int_eq(try_load("fx-minor", ST_KIND_EXPORTER, &err, NULL), -1);
    char want[64];
    ck_assert_contains(err, "needs plugin ABI 1.99");
    snprintf(want, sizeof(want), "this core's ABI %u.%u", ST_ABI_MAJOR, ST_ABI_MINOR);
    ck_assert_contains(err, want);
    free(err);
}
END_TEST

START_TEST(small_descriptor_is_refused)
{
    char *err;
    ck_assert_int_eq(try_load("fx-small", ST_KIND_EXPORTER, &err, NULL), -1);
    ck_assert_contains(err, "descriptor is 8 bytes");
    free(err);
}
END_TEST

START_TEST(wrong_name_is_refused_naming_both)
{
    char *err;
    ck_assert_int_eq(try_load("fx-name", ST_KIND_EXPORTER, &err, NULL), -1);
    ck_assert_contains(err, "declares plugin name 'somebody-else'");
    ck_assert_contains(err, "asks for 'fx-name'");
    free(err);
}
END_TEST

START_TEST(wrong_kind_is_refused_naming_both)
{
    char *err;
    ck_assert_int_eq(try_load("fx-kind", ST_KIND_EXPORTER, &err, NULL), -1);
    ck_assert_contains(err, "is of kind 'integrator'");
    ck_assert_contains(err, "loads it as kind 'exporter'");
    free(err);
}
END_TEST

START_TEST(missing_entry_is_refused)
{
    char *err;
    ck_assert_int_eq(try_load("fx-noentry", ST_KIND_EXPORTER, &err, NULL), -1);
    ck_assert_contains(err, "no symbol selftest_plugin_entry");
    free(err);
}
END_TEST

START_TEST(declining_plugin_is_reported)
{
    char *err;
    ck_assert_int_eq(try_load("fx-decline", ST_KIND_EXPORTER, &err, NULL), -1);
    char want[64];
    snprintf(want, sizeof(want), "declined to load into this core (ABI %u.%u)", ST_ABI_MAJOR,
             ST_ABI_MINOR);
    ck_assert_contains(err, want);
    free(err);
}
END_TEST

START_TEST(missing_mandatory_op_is_refused)
{
    char *err;
    ck_assert_int_eq(try_load("fx-missing-op", ST_KIND_EXPORTER, &err, NULL), -1);
    ck_assert_contains(err, "end_run is mandatory");
    free(err);
}
END_TEST

START_TEST(failing_create_is_reported)
{
    st_loader *ld = open_loader();
    st_instance *inst = NULL;
    ck_assert_int_eq(st_loader_load(ld, "fx-create-fails", ST_KIND_EXPORTER, "t:1", &inst), 0);
    unit_capture c;
    unit_capture_begin(&c);
    int rc = st_inst_create(inst);
    char *err = unit_capture_end(&c);
    ck_assert_int_lt(rc, 0);
    ck_assert_contains(err, "fx-create-fails: fixture: create refuses on purpose");
    /* the plugin said why; the core adds its own line only at debug level */
    ck_assert_contains(err, "fx-create-fails: create failed");
    ck_assert_int_eq(st_inst_start(inst), ST_ERR_INTERNAL); /* never started */
    free(err);
    st_loader_free(ld);
}
END_TEST

/* ABI 1.5: what cfg_where returns lives until destroy(), however many calls follow (it was a
 * ring of four buffers: the fifth call overwrote the first answer). */
START_TEST(cfg_where_text_lives_until_destroy)
{
    st_loader *ld = open_loader();
    st_instance *inst = NULL;
    ck_assert_int_eq(st_loader_load(ld, "fx-good", ST_KIND_EXPORTER, "t:1", &inst), 0);
    const st_host *h = &st_host_services;
    const char *first = h->cfg_where(inst, NULL, "alpha");
    ck_assert_str_eq(first, "fx-good settings: alpha");
    char name[16];
    for (int i = 0; i < 9; i++) {
        snprintf(name, sizeof(name), "other%d", i);
        ck_assert_str_ne(h->cfg_where(inst, NULL, name), first);
    }
    ck_assert_str_eq(first, "fx-good settings: alpha");
    ck_assert_ptr_eq(h->cfg_where(inst, NULL, "alpha"), first); /* one copy per text */
    st_loader_free(ld);
}
END_TEST

/* ABI 1.5: the discover options carry want_modules for every plugin and the orphan switches
 * (menace's flags) only for a plugin built against ABI 1.4 or older. */
START_TEST(discover_options_follow_the_plugins_abi)
{
    st_settings s;
    ck_assert_int_eq(st_settings_init(&s), 0);
    s.recursive_orphans = 0;
    s.auto_include_isolated = 1;
    st_plugin_descriptor d = {.abi_major = ST_ABI_MAJOR, .abi_minor = 4,
                              .struct_size = sizeof(d), .kind = ST_KIND_DISCOVERY};
    st_instance inst = {.name = "d", .desc = &d};
    static const char *const paths[] = {"tests", NULL};
    st_discover_options o = st_plugins_discover_options(&s, &inst, paths);
    ck_assert_int_eq(o.struct_size, sizeof(o));
    ck_assert_ptr_eq(o.paths, paths);
    ck_assert_int_eq(o.want_modules, 1);
    ck_assert_int_eq(o.discover_orphans, 1);
    ck_assert_int_eq(o.recursive_orphans, 0);
    ck_assert_int_eq(o.auto_include_isolated, 1);
    ck_assert_int_eq(o.include_orphans, 1);
    d.abi_minor = 5;
    o = st_plugins_discover_options(&s, &inst, paths);
    ck_assert_int_eq(o.want_modules, 1);
    ck_assert_int_eq(o.discover_orphans + o.include_orphans + o.recursive_orphans +
                         o.auto_include_isolated + o.recursive_isolated + o.refresh_orphans +
                         o.include_redundant + o.disable_orphans,
                     0);
    s.disable_orphans = 1;
    o = st_plugins_discover_options(&s, &inst, paths);
    ck_assert_int_eq(o.want_modules, 0);
    st_settings_free(&s);
}
END_TEST

/* assert() is on in every build (README: "Assertions"): a precondition violation, a
 * programming error, stops the process at once instead of running on. */
START_TEST(precondition_violation_aborts)
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr))
            _exit(2);
        st_instance *inst = NULL;
        st_loader_load(NULL, "fx-good", ST_KIND_EXPORTER, "t:1", &inst); /* ld must not be NULL */
        _exit(0);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "st_loader_load(NULL, ...) did not abort (status 0x%x): built with NDEBUG?",
                  status);
}
END_TEST

int main(void)
{
    st_log_set_level(ST_LOG_DEBUG);
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("loader");
    tcase_add_test(tc, good_plugin_loads);
    tcase_add_test(tc, unknown_plugin_names_the_search_path);
    tcase_add_test(tc, other_major_is_refused_naming_both);
    tcase_add_test(tc, newer_minor_is_refused_naming_both);
    tcase_add_test(tc, small_descriptor_is_refused);
    tcase_add_test(tc, wrong_name_is_refused_naming_both);
    tcase_add_test(tc, wrong_kind_is_refused_naming_both);
    tcase_add_test(tc, missing_entry_is_refused);
    tcase_add_test(tc, declining_plugin_is_reported);
    tcase_add_test(tc, missing_mandatory_op_is_refused);
    tcase_add_test(tc, failing_create_is_reported);
    tcase_add_test(tc, precondition_violation_aborts);
    tcase_add_test(tc, cfg_where_text_lives_until_destroy);
    tcase_add_test(tc, discover_options_follow_the_plugins_abi);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
