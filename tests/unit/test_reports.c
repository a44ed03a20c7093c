/* SPDX-License-Identifier: MIT */
/* JUnit XML and the HTML report from hand-made runs: escaping (entities, bytes that are not
 * UTF-8, control characters), names and counts of the JUnit form, the crash batch's testcase,
 * the line read from the results file, and a page that keeps the project's markup as text. */
#include "config.h"

#include "htmlreport.h"
#include "junit.h"
#include "results.h"
#include "unit.h"

static char *escaped(const char *s, int attr)
{
    st_buf b = {0};
    st_xml_escape(&b, s, attr);
    return st_buf_steal(&b);
}

START_TEST(escape_rules)
{
    char *e = escaped("a<b>&\"c'", 0);
    ck_assert_str_eq(e, "a&lt;b&gt;&amp;&quot;c&apos;");
    free(e);
    e = escaped("x\ny\tz\r", 0);
    ck_assert_str_eq(e, "x\ny\tz&#13;");
    free(e);
    e = escaped("x\ny\tz", 1);
    ck_assert_str_eq(e, "x&#10;y&#9;z");
    free(e);
    /* ESC, NUL-free control characters, U+FFFE: not XML 1.0 characters */
    e = escaped("\x1b[31m\x01\xef\xbf\xbe", 0);
    ck_assert_str_eq(e, "\xef\xbf\xbd[31m\xef\xbf\xbd\xef\xbf\xbd");
    free(e);
    /* a cut UTF-8 sequence, an overlong form, a surrogate: each bad byte one U+FFFD */
    e = escaped("\xc3 \xc0\xaf \xed\xa0\x80 \xc3\xbc", 0);
    ck_assert_str_eq(e, "\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd"
                        "\xef\xbf\xbd \xc3\xbc");
    free(e);
    e = escaped(NULL, 0);
    ck_assert_str_eq(e, "");
    free(e);
}
END_TEST

static void add_test(st_batch *b, const char *nodeid, st_outcome o, const char *phase,
                     const char *excerpt, int line)
{
    b->tests = realloc(b->tests, (b->n_tests + 1) * sizeof(*b->tests));
    ck_assert_ptr_nonnull(b->tests);
    st_test_result *t = &b->tests[b->n_tests++];
    memset(t, 0, sizeof(*t));
    t->nodeid = st_strdup(nodeid);
    t->file = st_strndup(nodeid, strcspn(nodeid, ":"));
    t->phase = st_strdup(phase);
    t->outcome = o;
    t->duration_s = 0.25;
    t->excerpt = st_strdup(excerpt);
    t->line = line;
    b->counts.n[o]++;
    b->cap_tests = b->n_tests;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

START_TEST(junit_names_counts_and_crash_batch)
{
    st_run r = {0};
    r.run_id = st_strdup("r1");
    r.runtime_used = "host";
    r.n_batches = 2;
    r.batches = calloc(2, sizeof(*r.batches));
    st_batch *a = &r.batches[0], *c = &r.batches[1];
    a->path = st_strdup("tests/a");
    a->done = 1;
    add_test(a, "tests/a/test_x.py::TestC::test_f[1::2]", ST_OUT_PASSED, "call", NULL, 7);
    add_test(a, "tests/a/test_x.py::test_g", ST_OUT_FAILED, "call",
             "def test_g():\n>   assert 1 == 2\nE   assert 1 == 2\n\ntests/a/test_x.py:9: "
             "AssertionError",
             8);
    add_test(a, "tests/a/test_x.py::test_g", ST_OUT_ERROR, "teardown", "E   RuntimeError: <td>", 8);
    add_test(a, "tests/a/test_x.py::test_s", ST_OUT_SKIPPED, "setup", NULL, 12);
    add_test(a, "tests/a/test_x.py::test_x", ST_OUT_XFAILED, "call", NULL, 14);
    add_test(a, "tests/a/test_broken.py", ST_OUT_ERROR, "collect", "SyntaxError", 0);
    c->path = st_strdup("tests/c");
    c->done = 1;
    c->exit_status = 3;
    c->reason = st_strdup("pytest exited with status 3 while running tests/c/test_c.py::test_die");
    st_strv_push(&c->running, "tests/c/test_c.py::test_die");
    st_buf_puts(&c->output_tail, "tests/c/test_c.py .");
    add_test(c, "tests/c/test_c.py::test_ok", ST_OUT_PASSED, "call", NULL, 3);
    char *x = st_junit_render(&r, "host<1>");
    ck_assert_ptr_nonnull(x);
    ck_assert_contains(
        x, "<testsuites name=\"selftest-core\" tests=\"8\" failures=\"1\" errors=\"3\"");
    ck_assert_contains(x, "<testsuite name=\"tests/a\" tests=\"6\" failures=\"1\" errors=\"2\" "
                          "skipped=\"2\"");
    ck_assert_contains(x, "hostname=\"host&lt;1&gt;\"");
    ck_assert_contains(x, "<testsuite name=\"tests/c\" tests=\"2\" failures=\"0\" errors=\"1\" "
                          "skipped=\"0\"");
    /* "::" inside a parameter id does not split the node id */
    ck_assert_contains(x, "classname=\"tests.a.test_x.TestC\" name=\"test_f[1::2]\" "
                          "file=\"tests/a/test_x.py\" line=\"7\" time=\"0.250\"");
    ck_assert_contains(x, "<failure type=\"failure\" message=\"assert 1 == 2\">def test_g():");
    ck_assert_contains(x, "<error type=\"teardown\" message=\"error at teardown: RuntimeError: "
                          "&lt;td&gt;\">");
    ck_assert_contains(x, "<property name=\"selftest.phase\" value=\"teardown\"/>");
    ck_assert_contains(x, "<skipped type=\"pytest.skip\"");
    ck_assert_contains(x, "<skipped type=\"pytest.xfail\"");
    /* a file that failed to collect: no line, the module as classname */
    ck_assert_contains(x, "classname=\"tests.a.test_broken\" name=\"tests/a/test_broken.py\" "
                          "file=\"tests/a/test_broken.py\" time=");
    /* the crash batch: a testcase named after the running test, with the batch's reason */
    ck_assert_contains(x, "<testcase classname=\"tests.c.test_c\" name=\"test_die\" "
                          "file=\"tests/c/test_c.py\"");
    ck_assert_contains(x, "<error type=\"batch\" message=\"pytest exited with status 3 while "
                          "running tests/c/test_c.py::test_die\">tests/c/test_c.py .</error>");
    ck_assert_uint_eq(count(x, "<testcase "), 8);
    free(x);
    /* an ok batch adds nothing; an aborted one neither */
    c->ok = 0;
    c->aborted = 1;
    x = st_junit_render(&r, NULL);
    ck_assert_uint_eq(count(x, "<testcase "), 7);
    ck_assert_contains(x, "hostname=\"localhost\"");
    free(x);
    st_run_free(&r);
}
END_TEST

START_TEST(junit_write_is_atomic_and_reports_failures)
{
    char *dir = unit_tmpdir();
    st_run r = {0};
    r.run_id = st_strdup("r2");
    r.runtime_used = "host";
    char *file = st_path_join(dir, "sub/dir/junit.xml");
    ck_assert_int_eq(st_junit_write(&r, file), 0);
    char *text = NULL;
    ck_assert_int_eq(st_read_file(file, 1 << 20, &text, NULL), 0);
    ck_assert_contains(text, "<testsuites name=\"selftest-core\" tests=\"0\"");
    free(text);
    /* a path under a regular file: a warning naming it and the cause; the old file stays */
    char *bad = st_path_join(file, "x.xml");
    unit_capture cap;
    unit_capture_begin(&cap);
    int rc = st_junit_write(&r, bad);
    char *err = unit_capture_end(&cap);
    ck_assert_int_lt(rc, 0);
    ck_assert_contains(err, bad);
    ck_assert_contains(err, "Not a directory");
    free(err);
    free(bad);
    free(file);
    st_run_free(&r);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(results_keep_the_line)
{
    char *dir = unit_tmpdir();
    unit_write(dir, "r.jsonl",
               "{\"event\":\"start\",\"pid\":1,\"argv\":[],\"workers\":0}\n"
               "{\"event\":\"test\",\"nodeid\":\"t.py::a\",\"file\":\"t.py\",\"line\":42,"
               "\"outcome\":\"passed\",\"phase\":\"call\",\"duration\":0.5}\n"
               "{\"event\":\"test\",\"nodeid\":\"t.py::b\",\"file\":\"t.py\",\"line\":null,"
               "\"outcome\":\"passed\",\"phase\":\"call\",\"duration\":0.5}\n"
               "{\"event\":\"test\",\"nodeid\":\"t.py::c\",\"file\":\"t.py\",\"line\":-3,"
               "\"outcome\":\"skipped\",\"phase\":\"call\",\"duration\":0.5,"
               "\"skip_reason\":\"no <db>\"}\n");
    char *file = st_path_join(dir, "r.jsonl");
    st_batch b = {0};
    char err[256];
    ck_assert_int_eq(st_results_read(&b, file, err, sizeof(err)), 0);
    ck_assert_uint_eq(b.n_tests, 3);
    ck_assert_int_eq(b.tests[0].line, 42);
    ck_assert_int_eq(b.tests[1].line, 0);
    ck_assert_int_eq(b.tests[2].line, 0);
    ck_assert_ptr_null(b.tests[0].skip_reason);
    ck_assert_str_eq(b.tests[2].skip_reason, "no <db>");
    st_run r = {.run_id = st_strdup("r3"), .runtime_used = "host", .batches = &b, .n_batches = 1};
    b.path = st_strdup("t");
    char *x = st_junit_render(&r, "h");
    ck_assert_contains(x, "<skipped type=\"pytest.skip\" message=\"no &lt;db&gt;\"/>");
    free(x);
    x = st_run_to_json(&r, 0);
    ck_assert_contains(x, "\"skip_reason\":\"no <db>\"");
    free(x);
    free(r.run_id);
    st_batch_free(&b);
    free(file);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(html_escapes_and_leaves_out_bad_rows)
{
    const char *runs[] = {
        "{\"passed\":1,\"failed\":0,\"total_runtime\":1.5,\"coverage\":null,\"tests\":[],"
        "\"regressions\":[],\"fixed\":[],\"orphan_total\":0}",
        "not json",
        "{\"passed\":0,\"failed\":1,\"errors\":0,\"total_runtime\":2,\"coverage\":50.0,"
        "\"exit_status\":1,\"run_id\":\"<r>\",\"tests\":[{\"nodeid\":\"t.py::x[<script>]\","
        "\"outcome\":\"failed\",\"phase\":\"call\",\"duration\":0.1,"
        "\"excerpt\":\"E <img src=x onerror=alert(1)>\",\"stdout\":\"\\u001b[1m&\"}],"
        "\"regressions\":[\"t.py::x[<script>]\"],\"fixed\":[],"
        "\"suite_metrics\":{\"t\":{\"ok\":false,\"failed\":1}},"
        "\"orphan_checks\":{\"p/<m>.py\":{\"verdict\":\"failed\",\"reason\":\"<why>\"}},"
        "\"integration\":{\"integrated\":[\"p/ok.py\"]}}",
    };
    double started[] = {1.7e9, 1.7e9 + 60, 1.7e9 + 120};
    unit_capture cap;
    unit_capture_begin(&cap);
    char *page = st_html_render("proj<&>", started, runs, 3);
    char *err = unit_capture_end(&cap);
    ck_assert_ptr_nonnull(page);
    ck_assert_contains(err, "cycle 2 of 3");
    free(err);
    ck_assert_contains(page, "<title>selftest-core report: proj&lt;&amp;&gt;</title>");
    ck_assert_contains(page, "t.py::x[&lt;script&gt;]");
    ck_assert_contains(page, "E &lt;img src=x onerror=alert(1)&gt;");
    ck_assert_contains(page, "\xef\xbf\xbd[1m&amp;");
    ck_assert_contains(page, "p/&lt;m&gt;.py");
    ck_assert_contains(page, "&lt;why&gt;");
    ck_assert_contains(page, "2 cycles from metrics.db");
    ck_assert(strstr(page, "<script") == NULL);
    ck_assert(strstr(page, "<img") == NULL);
    ck_assert_contains(page, "coverage 50% (");
    free(page);
    page = st_html_render("empty", NULL, NULL, 0);
    ck_assert_contains(page, "No cycle has been recorded yet.");
    free(page);
}
END_TEST

/* A cycle without coverage is a gap in the coverage line, not a line drawn across it. */
START_TEST(html_chart_gaps)
{
    const char *runs[] = {
        "{\"passed\":1,\"coverage\":40.0}",
        "{\"passed\":2,\"coverage\":null}",
        "{\"passed\":3,\"coverage\":60.0}",
    };
    double started[] = {1.7e9, 1.7e9 + 60, 1.7e9 + 120};
    char *page = st_html_render("gaps", started, runs, 3);
    ck_assert_ptr_nonnull(page);
    const char *cov = strstr(page, "aria-label=\"Coverage\"");
    ck_assert_ptr_nonnull(cov);
    char *chart = st_strndup(cov, (size_t)(strstr(cov, "</svg>") - cov));
    ck_assert_uint_eq(count(chart, "<polyline"), 2);
    ck_assert_uint_eq(count(chart, "<circle"), 2);
    free(chart);
    const char *tests = strstr(page, "aria-label=\"Tests passed and failed\"");
    ck_assert_ptr_nonnull(tests);
    chart = st_strndup(tests, (size_t)(strstr(tests, "</svg>") - tests));
    /* passed: one line through three points; failed: no value in any cycle, no line */
    ck_assert_uint_eq(count(chart, "<polyline"), 1);
    ck_assert_uint_eq(count(chart, "<circle"), 3);
    free(chart);
    free(page);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reports");
    TCase *tc = tcase_create("reports");
    tcase_add_test(tc, escape_rules);
    tcase_add_test(tc, junit_names_counts_and_crash_batch);
    tcase_add_test(tc, junit_write_is_atomic_and_reports_failures);
    tcase_add_test(tc, results_keep_the_line);
    tcase_add_test(tc, html_escapes_and_leaves_out_bad_rows);
    tcase_add_test(tc, html_chart_gaps);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
