/* Unit tests of results.c: reading the plugin's JSON lines, verdicts, coverage union, JSON. */
#include "config.h"

#include "unit.h"

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
    /* spec 5.2: passed = passed + xpassed; failed = failed + errors */
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

START_TEST(not_json_names_file_and_line)
{
    char *dir, *file = write_tmp("{\"event\":\"start\"}\nthis is not json\n", &dir);
    st_batch b = {0};
    char err[300];
    ck_assert_int_eq(st_results_read(&b, file, err, sizeof(err)), -1);
    ck_assert_contains(err, "results.jsonl:2: not a JSON object");
    st_batch_free(&b);
    free(file);
    st_rm_rf(dir);
    free(dir);
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
    ck_assert_int_eq(st_coverage_read(&b, c, err, sizeof(err)), -1);
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

int main(void)
{
    Suite *s = suite_create("results");
    TCase *tc = tcase_create("results");
    tcase_add_test(tc, reads_counts_in_pytest_categories);
    tcase_add_test(tc, not_json_names_file_and_line);
    tcase_add_test(tc, truncated_file_is_infrastructure_error_after_normal_exit);
    tcase_add_test(tc, verdicts);
    tcase_add_test(tc, clean_batch_is_ok);
    tcase_add_test(tc, coverage_is_the_union_of_lines);
    tcase_add_test(tc, results_object_has_the_compatible_keys);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
