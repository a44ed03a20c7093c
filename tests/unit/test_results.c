/* SPDX-License-Identifier: MIT */
/* Unit tests of results.c and coverage.c: reading the plugin's JSON lines, verdicts, coverage
 * union, JSON. */
#include "config.h"

#include "unit.h"

#include "coverage.h"
#include "exitstatus.h"
#include "json.h"
#include "results.h"

static const char good_lines[] =
    "{\"event\":\"start\",\"pid\":1,\"argv\":[\"-n\",\"2\",\"tests\"],\"workers\":2,"
    "\"python\":\"3\",\"pytest\":\"7\"}\n"
    "{\"event\":\"test\",\"nodeid\":\"t.py::a\",\"file\":\"t.py\",\"outcome\":\"passed\","
    "\"phase\":\"call\",\"duration\":0.1,\"excerpt\":null}\n"
    "{\"event\":\"test\",\"nodeid\":\"t.py::b\",\"file\":\"t.py\",\"outcome\":\"failed\","
    "\"phase\":\"call\",\"duration\":0.2,\"excerpt\":\"assert 1 == 2\"}\n"
    "{\"event\":\"test\",\"nodeid\":\"t.py::b\",\"file\":\"t.py\",\"outcome\":\"error\","
    "\"phase\":\"teardown\",\"duration\":0.0,\"excerpt\":\"boom\"}\n"
    "{\"event\":\"test\",\"nodeid\":\"t.py::c\",\"file\":\"t.py\",\"outcome\":\"xpassed\","
    "\"phase\":\"call\",\"duration\":0.0,\"excerpt\":null}\n"
    "{\"event\":\"test\",\"nodeid\":\"t.py::d\",\"file\":\"t.py\",\"outcome\":\"skipped\","
    "\"phase\":\"setup\",\"duration\":0.0,\"excerpt\":null}\n"
    "{\"event\":\"collect_error\",\"nodeid\":\"u.py\",\"file\":\"u.py\",\"excerpt\":\"E\"}\n"
    "{\"event\":\"end\",\"exitstatus\":1,\"counts\":{},\"duration\":1.0}\n";

static char *write_tmp(const char *text, char **dir)
{
    *dir = unit_tmpdir();
    unit_write(*dir, "results.jsonl", text);
    return st_path_join(*dir, "results.jsonl");
}

static st_exec_result exited(int status)
{
    st_exec_result r = {.struct_size = sizeof(r), .exited = 1, .exit_status = status, .wall_s = 1};
    return r;
}

START_TEST(reads_counts_in_pytest_categories)
{
    char *dir, *file = write_tmp(good_lines, &dir);
    st_batch b = {0};
    char err[300];
    ck_assert_int_eq(st_results_read(&b, file, err, sizeof(err)), 0);
    ck_assert(b.saw_start && b.saw_end);
    ck_assert_uint_eq(b.counts.n[ST_OUT_PASSED], 1);
    ck_assert_uint_eq(b.counts.n[ST_OUT_FAILED], 1);
    ck_assert_uint_eq(b.counts.n[ST_OUT_ERROR], 2);
    ck_assert_uint_eq(b.counts.n[ST_OUT_XPASSED], 1);
    ck_assert_uint_eq(b.counts.n[ST_OUT_SKIPPED], 1);
    /* docs/spec.md §5.2: passed = passed + xpassed; failed = failed + errors */
    ck_assert_uint_eq(st_counts_passed(&b.counts), 2);
    ck_assert_uint_eq(st_counts_failed(&b.counts), 3);
    ck_assert_int_eq(b.workers_seen, 2);
    ck_assert_uint_eq(b.argv_seen.n, 3);
    st_exec_result r = exited(1);
    st_batch_verdict(&b, &r, 10);
    ck_assert_int_eq(b.ok, 0);
    ck_assert_int_eq(b.infra_error, 0);
    st_batch_free(&b);
    free(file);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

/* A long excerpt keeps its last 4000 bytes from a character boundary: a cut inside a UTF-8
 * sequence made the results object invalid UTF-8. */
START_TEST(long_excerpt_cut_at_a_character)
{
    st_buf line = {0};
    st_buf_puts(&line, "{\"event\":\"start\"}\n{\"event\":\"test\",\"nodeid\":\"t.py::a\","
                "\"file\":\"t.py\",\"outcome\":\"failed\",\"phase\":\"call\",\"duration\":0.1,"
                "\"excerpt\":\"");
    for (int i = 0; i < 2500; i++)
        st_buf_puts(&line, "\xc3\xa9"); /* 5000 bytes of e-acute: the cut falls inside one */
    st_buf_puts(&line, "x\"}\n{\"event\":\"end\",\"exitstatus\":1}\n");
    char *dir, *file = write_tmp(line.data, &dir);
    st_batch b = {0};
    char err[300];
    ck_assert_int_eq(st_results_read(&b, file, err, sizeof(err)), 0);
    ck_assert_uint_eq(b.n_tests, 1);
    const char *e = b.tests[0].excerpt;
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(strncmp(e, "...\n", 4), 0);
    ck_assert_msg(((unsigned char)e[4] & 0xC0) != 0x80, "the kept part starts inside a character");
    ck_assert_uint_eq(strlen(e + 4), 3999); /* 4000 bytes from the end, less the half character */
    ck_assert_int_eq(e[strlen(e) - 1], 'x');
    st_batch_free(&b);
    st_buf_free(&line);
    free(file);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(not_json_names_file_and_line)
{
    char *dir, *file = write_tmp("{\"event\":\"start\"}\nthis is not json\n", &dir);
    st_batch b = {0};
    char err[300];
    ck_assert_int_eq(st_results_read(&b, file, err, sizeof(err)), ST_ERR_MALFORMED);
    ck_assert_contains(err, "results.jsonl:2: not a JSON object");
    st_batch_free(&b);
    free(file);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

/* A test's duration is written back as the results file had it (no %.17g noise), and numbers
 * that overflow are refused as before, with yajl's own words. */
START_TEST(duration_kept_as_read_and_overflow_refused)
{
    char *dir, *file = write_tmp(
        "{\"event\":\"start\",\"workers\":3}\n"
        "{\"event\":\"test\",\"nodeid\":\"t.py::a\",\"file\":\"t.py\",\"outcome\":\"passed\","
        "\"phase\":\"call\",\"duration\":0.0001672489997872617,\"excerpt\":null}\n"
        "{\"event\":\"test\",\"nodeid\":\"t.py::b\",\"file\":\"t.py\",\"outcome\":\"passed\","
        "\"phase\":\"call\",\"duration\":2,\"excerpt\":null}\n"
        "{\"event\":\"end\",\"exitstatus\":0,\"counts\":{},\"duration\":1.5}\n",
        &dir);
    st_batch b = {0};
    char err[300];
    ck_assert_int_eq(st_results_read(&b, file, err, sizeof(err)), 0);
    ck_assert_int_eq(b.workers_seen, 3);
    ck_assert_uint_eq(b.n_tests, 2);
    ck_assert(b.tests[0].duration_s == 0.0001672489997872617);
    ck_assert(b.tests[1].duration_s == 2.0);
    b.path = (char *)"t.py";
    st_counts c = {{0}, 0};
    char *line = st_batch_line_json(&b, &c);
    ck_assert_ptr_nonnull(line);
    b.path = NULL;
    st_batch_free(&b);
    free(line);
    st_run run = {0};
    st_batch one = {0};
    ck_assert_int_eq(st_results_read(&one, file, err, sizeof(err)), 0);
    one.path = st_strdup("t.py");
    run.batches = &one;
    run.n_batches = 1;
    run.run_id = (char *)"r";
    run.runtime_used = "host";
    char *json = st_run_to_json(&run, 0);
    ck_assert_ptr_nonnull(json);
    ck_assert_contains(json, "\"duration\":0.0001672489997872617}");
    ck_assert_contains(json, "\"duration\":2.0}");
    free(json);
    st_batch_free(&one);
    free(file);
    st_rm_rf(dir);
    free(dir);

    const char *bad[] = {"{\"event\":\"start\",\"pid\":99999999999999999999999}\n",
                         "{\"event\":\"start\",\"x\":1e999}\n"};
    const char *why[] = {"integer overflow", "numeric (floating point) overflow"};
    for (int i = 0; i < 2; i++) {
        file = write_tmp(bad[i], &dir);
        st_batch e = {0};
        ck_assert_int_eq(st_results_read(&e, file, err, sizeof(err)), ST_ERR_MALFORMED);
        ck_assert_contains(err, "results.jsonl:1: not a JSON object: parse error: ");
        ck_assert_contains(err, why[i]);
        st_batch_free(&e);
        free(file);
        st_rm_rf(dir);
        free(dir);
    }
}
END_TEST

START_TEST(truncated_file_is_infrastructure_error_after_normal_exit)
{
    char *dir, *file = write_tmp("{\"event\":\"start\"}\n{\"event\":\"te", &dir);
    st_batch b = {0};
    char err[300];
    ck_assert_int_eq(st_results_read(&b, file, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(b.truncated);
    st_exec_result r = exited(0);
    st_batch_verdict(&b, &r, 10);
    ck_assert_int_eq(b.infra_error, 1);
    ck_assert_contains(b.reason, "results.jsonl:2: truncated");
    st_batch_free(&b);
    free(file);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(verdicts)
{
    st_batch b = {0};
    st_exec_result r = exited(5);
    st_batch_verdict(&b, &r, 10);
    ck_assert(!b.ok && b.no_tests);
    ck_assert_contains(b.reason, "no tests collected");
    st_batch_free(&b);

    r = exited(3);
    st_batch_verdict(&b, &r, 10);
    ck_assert(!b.ok && !b.infra_error);
    ck_assert_contains(b.reason, "exited with status 3");
    st_batch_free(&b);

    r = (st_exec_result){.struct_size = sizeof(r), .term_signal = 11};
    st_batch_verdict(&b, &r, 10);
    ck_assert(!b.ok);
    ck_assert_contains(b.reason, "signal 11");
    ck_assert_int_eq(b.exit_status, -1);
    st_batch_free(&b);

    r = (st_exec_result){.struct_size = sizeof(r), .timed_out = 1, .term_signal = 15};
    st_batch_verdict(&b, &r, 2.5);
    ck_assert(!b.ok && b.timed_out);
    ck_assert_contains(b.reason, "timeout");
    ck_assert_contains(b.reason, "2.5");
    st_batch_free(&b);

    /* exit 0 without the plugin's events: never a silent success */
    r = exited(0);
    st_batch_verdict(&b, &r, 10);
    ck_assert(!b.ok && b.infra_error);
    st_batch_free(&b);

    r = (st_exec_result){.struct_size = sizeof(r), .infra_error = 1};
    snprintf(r.error, sizeof(r.error), "engine down");
    st_batch_verdict(&b, &r, 10);
    ck_assert(!b.ok && b.infra_error);
    ck_assert_str_eq(b.reason, "engine down");
    st_batch_free(&b);
}
END_TEST

/* A session that began and ended without its end event (os._exit in a test): a failed batch,
 * not an infrastructure error, naming the test that was running, whatever the exit status. */
START_TEST(ended_early_names_the_running_test)
{
    static const char lines[] =
        "{\"event\":\"start\"}\n"
        "{\"event\":\"test_start\",\"nodeid\":\"t.py::a\"}\n"
        "{\"event\":\"test\",\"nodeid\":\"t.py::a\",\"outcome\":\"passed\"}\n"
        "{\"event\":\"test_finish\",\"nodeid\":\"t.py::a\"}\n"
        "{\"event\":\"test_start\",\"nodeid\":\"t.py::b\"}\n";
    const int statuses[] = {1, 0, 5, 3};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        char *dir, *file = write_tmp(lines, &dir);
        st_batch b = {0};
        char err[300];
        ck_assert_int_eq(st_results_read(&b, file, err, sizeof(err)), 0);
        st_exec_result r = exited(statuses[i]);
        st_batch_verdict(&b, &r, 10);
        ck_assert(!b.ok && !b.infra_error && !b.no_tests && b.ended_early);
        ck_assert_uint_eq(b.running.n, 1);
        ck_assert_str_eq(b.running.v[0], "t.py::b");
        ck_assert_contains(b.reason, "before its session finished");
        ck_assert_contains(b.reason, "while running t.py::b");
        char want[64];
        snprintf(want, sizeof(want), "exited with status %d", statuses[i]);
        ck_assert_contains(b.reason, want);
        ck_assert_uint_eq(b.counts.n[ST_OUT_PASSED], 1);
        st_batch_free(&b);
        free(file);
        st_rm_rf(dir);
        free(dir);
    }
    /* a signal names it too; a finished session (xdist: a crashed worker) leaves none running */
    char *dir, *file = write_tmp(lines, &dir);
    st_batch b = {0};
    char err[300];
    ck_assert_int_eq(st_results_read(&b, file, err, sizeof(err)), 0);
    st_exec_result r = {.struct_size = sizeof(r), .term_signal = 6};
    st_batch_verdict(&b, &r, 10);
    ck_assert(!b.ok && !b.infra_error);
    ck_assert_contains(b.reason, "signal 6");
    ck_assert_contains(b.reason, "while running t.py::b");
    st_batch_free(&b);
    unit_write(dir, "results.jsonl", "{\"event\":\"start\"}\n{\"event\":\"test_start\","
               "\"nodeid\":\"t.py::b\"}\n{\"event\":\"test\",\"nodeid\":\"t.py::b\","
               "\"outcome\":\"failed\"}\n{\"event\":\"end\"}\n");
    ck_assert_int_eq(st_results_read(&b, file, err, sizeof(err)), 0);
    r = exited(1);
    st_batch_verdict(&b, &r, 10);
    ck_assert(!b.ok && !b.infra_error && !b.ended_early);
    ck_assert_uint_eq(b.running.n, 0);
    ck_assert_ptr_null(b.reason);
    st_batch_free(&b);
    free(file);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

/* stdout/stderr of a test: kept, bounded to ST_CAPTURE_MAX with a note, the end kept. */
START_TEST(captured_output_is_bounded)
{
    st_buf text = {0};
    st_buf_puts(&text, "{\"event\":\"start\"}\n{\"event\":\"test\",\"nodeid\":\"a\","
                "\"outcome\":\"failed\",\"stderr\":\"E\",\"stdout\":\"");
    for (unsigned i = 0; i < ST_CAPTURE_MAX + 1000; i++)
        st_buf_append(&text, "y", 1);
    st_buf_puts(&text, "END\"}\n{\"event\":\"end\"}\n");
    char *dir, *file = write_tmp(text.data, &dir);
    st_batch b = {0};
    char err[300];
    ck_assert_int_eq(st_results_read(&b, file, err, sizeof(err)), 0);
    ck_assert_uint_eq(b.n_tests, 1);
    const char *out = b.tests[0].out;
    ck_assert_ptr_nonnull(out);
    ck_assert_str_eq(b.tests[0].err, "E");
    static const char note[] = "[selftest: 1003 earlier bytes not kept]\n";
    ck_assert(strncmp(out, note, strlen(note)) == 0);
    ck_assert_uint_eq(strlen(out + strlen(note)), ST_CAPTURE_MAX);
    ck_assert_str_eq(out + strlen(out) - 4, "yEND");
    st_batch_free(&b);
    st_buf_free(&text);
    free(file);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

/* A stopped run: cut-short batches and checks are aborted, not failed; the exit status is the
 * caller's for an aborted run. */
/* A run's exit status as the pipeline gives it: its verdict through the one mapping. */
static int run_exit(const st_run *run, int fail_on_orphans, st_verdict stopped)
{
    return st_exit_status(ST_OK, st_run_verdict(run, fail_on_orphans, stopped));
}

START_TEST(aborted_is_not_failed)
{
    st_batch b = {0};
    st_exec_result r = {.struct_size = sizeof(r), .cancelled = 1, .term_signal = 15};
    st_batch_verdict(&b, &r, 10);
    ck_assert(!b.ok && b.aborted && !b.infra_error);
    ck_assert_contains(b.reason, "aborted");
    st_batch_free(&b);

    st_run run = {0};
    run.n_batches = 2;
    run.batches = calloc(2, sizeof(st_batch));
    run.batches[0].ok = 1;
    run.batches[0].done = 1;
    run.batches[1].aborted = 1; /* never started */
    run.n_checks = 3;
    run.checks = calloc(3, sizeof(st_batch));
    run.checks[0].done = run.checks[0].ok = 1;
    run.checks[1].done = run.checks[1].aborted = 1; /* cut short */
    run.checks[2].aborted = 1;                      /* never started */
    ck_assert_uint_eq(st_run_orphans_checked(&run), 1);
    ck_assert_uint_eq(st_run_orphans_failed(&run), 0);
    ck_assert_int_eq(run_exit(&run, 1, ST_VERDICT_BROKEN), ST_EXIT_OK);
    run.aborted = 1;
    ck_assert_int_eq(run_exit(&run, 0, ST_VERDICT_BROKEN), ST_EXIT_INFRA);
    ck_assert_int_eq(run_exit(&run, 0, ST_VERDICT_PASSED), ST_EXIT_OK);
    run.aborted = 0;
    run.checks[0].ok = 0;
    ck_assert_uint_eq(st_run_orphans_failed(&run), 1);
    ck_assert_int_eq(run_exit(&run, 0, ST_VERDICT_BROKEN), ST_EXIT_OK);
    ck_assert_int_eq(run_exit(&run, 1, ST_VERDICT_BROKEN), ST_EXIT_FAILED);
    run.batches[1].infra_error = 1;
    ck_assert_int_eq(run_exit(&run, 0, ST_VERDICT_BROKEN), ST_EXIT_INFRA);
    st_run_free(&run);

    /* create()'s ST_ERR_INVALID is a configuration error, any other status an infrastructure
     * one; start()'s ST_ERR_INVALID never reaches the mapping (test_exitstatus) */
    ck_assert_int_eq(st_exit_status(ST_ERR_INVALID, ST_VERDICT_PASSED), ST_EXIT_USAGE);
    ck_assert_int_eq(st_exit_status(ST_ERR_UNAVAILABLE, ST_VERDICT_PASSED), ST_EXIT_INFRA);
    ck_assert_int_eq(st_exit_status(ST_OK, ST_VERDICT_PASSED), ST_EXIT_OK);
}
END_TEST

START_TEST(clean_batch_is_ok)
{
    char *dir, *file = write_tmp("{\"event\":\"start\"}\n{\"event\":\"test\",\"nodeid\":\"a\","
                                 "\"outcome\":\"passed\"}\n{\"event\":\"end\"}\n",
                                 &dir);
    st_batch b = {0};
    char err[300];
    ck_assert_int_eq(st_results_read(&b, file, err, sizeof(err)), 0);
    st_exec_result r = exited(0);
    st_batch_verdict(&b, &r, 10);
    ck_assert(b.ok);
    ck_assert_ptr_null(b.reason);
    st_batch_free(&b);
    free(file);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

/* A batch the runtime stopped at a resource limit fails naming it, even when pytest's own
 * results were complete; an older runtime's result (smaller struct_size) has neither field. */
START_TEST(resource_limit_and_leftovers)
{
    char *dir, *file = write_tmp("{\"event\":\"start\"}\n{\"event\":\"test\",\"nodeid\":\"a\","
                                 "\"outcome\":\"passed\"}\n{\"event\":\"end\"}\n",
                                 &dir);
    st_batch b = {0};
    char err[300];
    ck_assert_int_eq(st_results_read(&b, file, err, sizeof(err)), 0);
    st_exec_result r = {.struct_size = sizeof(r), .term_signal = 9, .wall_s = 1};
    snprintf(r.limit, sizeof(r.limit), "process limit: 32 processes reached");
    st_batch_verdict(&b, &r, 10);
    ck_assert(!b.ok && !b.infra_error && !b.timed_out);
    ck_assert_str_eq(b.limit, "process limit: 32 processes reached");
    ck_assert_contains(b.reason, "stopped at a resource limit: process limit");
    char *json = st_batch_line_json(&b, &b.counts);
    ck_assert_contains(json, "\"resource_limit\":\"process limit: 32 processes reached\"");
    free(json);

    /* leftovers are counted; the tests' verdict stands */
    r = exited(0);
    r.leftover = 2;
    st_batch_verdict(&b, &r, 10);
    ck_assert(b.ok);
    ck_assert_ptr_null(b.limit);
    ck_assert_uint_eq(b.leftover, 2);
    json = st_batch_line_json(&b, &b.counts);
    ck_assert_contains(json, "\"leftover_processes\":2");
    free(json);

    /* a 1.1 runtime's struct ends before limit: the bytes there are not read */
    r = exited(0);
    snprintf(r.limit, sizeof(r.limit), "garbage");
    r.leftover = 7;
    r.struct_size = offsetof(st_exec_result, limit);
    st_batch_verdict(&b, &r, 10);
    ck_assert(b.ok);
    ck_assert_ptr_null(b.limit);
    ck_assert_uint_eq(b.leftover, 0);
    st_batch_free(&b);
    free(file);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

/* Two batches covering different halves: the union is 75%, the mean of batch percents 37.5%. */
START_TEST(coverage_is_the_union_of_lines)
{
    char *dir = unit_tmpdir();
    unit_write(dir, "a.lcov", "TN:\nSF:m.py\nDA:1,1\nDA:2,1\nDA:3,0\nDA:4,0\nend_of_record\n"
                              "SF:n.py\nDA:1,0\nDA:2,0\nDA:3,0\nDA:4,0\nend_of_record\n");
    unit_write(dir, "b.lcov", "TN:\nSF:m.py\nDA:1,0,abc\nDA:2,0\nDA:3,5\nDA:4,0\nend_of_record\n"
                              "SF:n.py\nDA:1,1\nDA:2,1\nDA:3,1\nDA:4,0\nend_of_record\n");
    st_run run = {0};
    run.n_batches = 2;
    run.batches = calloc(2, sizeof(st_batch));
    run.coverage_requested = 1;
    char err[300];
    char *a = st_path_join(dir, "a.lcov"), *bfile = st_path_join(dir, "b.lcov");
    ck_assert_int_eq(st_coverage_read(&run.batches[0], a, err, sizeof(err)), 0);
    ck_assert_int_eq(st_coverage_read(&run.batches[1], bfile, err, sizeof(err)), 0);
    ck_assert_double_eq_tol(run.batches[0].coverage, 25.0, 1e-9);
    ck_assert_double_eq_tol(run.batches[1].coverage, 50.0, 1e-9);
    st_run_finalize(&run);
    ck_assert_double_eq_tol(run.coverage, 75.0, 1e-9); /* 6 of 8 lines ran in some batch */
    st_run_free(&run);
    /* malformed input names the line */
    unit_write(dir, "c.lcov", "SF:m.py\nDA:x,1\n");
    char *c = st_path_join(dir, "c.lcov");
    st_batch b = {0};
    ck_assert_int_eq(st_coverage_read(&b, c, err, sizeof(err)), ST_ERR_MALFORMED);
    ck_assert_contains(err, "c.lcov:2: malformed");
    st_batch_free(&b);
    free(a);
    free(bfile);
    free(c);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(results_object_has_the_compatible_keys)
{
    st_run run = {0};
    run.n_batches = 1;
    run.batches = calloc(1, sizeof(st_batch));
    run.batches[0].path = st_strdup("tests/a");
    run.batches[0].coverage = -1;
    run.batches[0].counts.n[ST_OUT_PASSED] = 3;
    run.batches[0].counts.n[ST_OUT_ERROR] = 1;
    run.batches[0].done = 1;
    run.runtime_used = "host";
    st_run_finalize(&run);
    ck_assert_int_eq(run.exit_status, 1);
    char *text = st_run_to_json(&run, 1);
    char err[200];
    yajl_val v = st_json_parse(text, err, sizeof(err));
    ck_assert_ptr_nonnull(v);
    const char *keys[] = {"passed", "failed", "skipped", "xfailed", "errors", "coverage",
                          "runtime", "total_runtime", "suite_metrics", "workflow_tests", "tests",
                          "regressions", "fixed", "retry_errors", "orphan_total", "orphan_failed",
                          "orphan_passed", "orphan_passed_modules", "orphan_failed_modules",
                          "orphan_redundant_modules", "integration", "runtime_used",
                          "exit_status"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        ck_assert_msg(st_jv_get(v, keys[i]) != NULL, "missing key %s", keys[i]);
    long long n;
    ck_assert_int_eq(st_jv_int(v, "failed", &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert(YAJL_IS_NULL(st_jv_get(v, "coverage")));
    yajl_tree_free(v);
    free(text);
    st_run_free(&run);
}
END_TEST

/* test_start / test_finish lines of the plugin's exact form are read without the JSON parser;
 * any other spelling (escapes, spaces, other keys, a broken line) goes through it with the same
 * meaning, or its error. */
START_TEST(running_lines_fast_and_parsed_alike)
{
    static const char lines[] =
        "{\"event\":\"start\"}\n"
        "{\"event\":\"test_start\",\"nodeid\":\"t.py::a\"}\n"
        "{\"event\":\"test_start\",\"nodeid\":\"t.py::caf\\u00e9\"}\n"
        "{\"event\": \"test_start\", \"nodeid\": \"t.py::b\"}\n"
        "{\"event\":\"test_start\",\"nodeid\":\"t.py::q\\\"\"}\n"
        "{\"event\":\"test_finish\",\"nodeid\":\"t.py::a\"}\n"
        "{\"event\":\"test_start\",\"nodeid\":\"t.py::c\",\"x\":1}\n"
        "{\"event\":\"test_finish\",\"nodeid\":\"t.py::b\"}\n"
        "{\"event\":\"test_finish\",\"nodeid\":\"t.py::zz\"}\n";
    char *dir, *file = write_tmp(lines, &dir);
    st_batch b = {0};
    char err[300];
    ck_assert_int_eq(st_results_read(&b, file, err, sizeof(err)), 0);
    ck_assert_uint_eq(b.running.n, 3);
    ck_assert_str_eq(b.running.v[0], "t.py::caf\xc3\xa9");
    ck_assert_str_eq(b.running.v[1], "t.py::q\"");
    ck_assert_str_eq(b.running.v[2], "t.py::c");
    st_batch_free(&b);
    st_rm_rf(dir);
    free(dir);
    free(file);
    /* a line that starts like one but is not JSON is an error, named */
    file = write_tmp("{\"event\":\"test_start\",\"nodeid\":\"t.py::a\"}}\n", &dir);
    st_batch b2 = {0};
    ck_assert_int_eq(st_results_read(&b2, file, err, sizeof(err)), ST_ERR_MALFORMED);
    ck_assert_contains(err, "results.jsonl:1:");
    st_batch_free(&b2);
    st_rm_rf(dir);
    free(dir);
    free(file);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("results");
    TCase *tc = tcase_create("results");
    tcase_add_test(tc, reads_counts_in_pytest_categories);
    tcase_add_test(tc, not_json_names_file_and_line);
    tcase_add_test(tc, long_excerpt_cut_at_a_character);
    tcase_add_test(tc, truncated_file_is_infrastructure_error_after_normal_exit);
    tcase_add_test(tc, verdicts);
    tcase_add_test(tc, ended_early_names_the_running_test);
    tcase_add_test(tc, captured_output_is_bounded);
    tcase_add_test(tc, aborted_is_not_failed);
    tcase_add_test(tc, clean_batch_is_ok);
    tcase_add_test(tc, resource_limit_and_leftovers);
    tcase_add_test(tc, coverage_is_the_union_of_lines);
    tcase_add_test(tc, results_object_has_the_compatible_keys);
    tcase_add_test(tc, duration_kept_as_read_and_overflow_refused);
    tcase_add_test(tc, running_lines_fast_and_parsed_alike);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
