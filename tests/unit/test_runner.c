/* Unit tests of runner.c: the worker split of spec §5.1 and the pytest argv. The split as pytest
 * really receives it is checked end to end in tests/integration/test_run_fixtures.py. */
#include "config.h"

#include "unit.h"

#include "runner.h"

static void check_split(unsigned W, size_t P, const unsigned *want, unsigned want_conc)
{
    unsigned got[16], conc = 0;
    st_split_workers(W, P, got, &conc);
    for (size_t i = 0; i < P; i++)
        ck_assert_msg(got[i] == want[i], "W=%u P=%zu batch %zu: %u workers, want %u", W, P, i,
                      got[i], want[i]);
    ck_assert_uint_eq(conc, want_conc);
}

START_TEST(split_examples_of_the_spec)
{
    check_split(5, 3, (unsigned[]){2, 2, 1}, 3);
    check_split(4, 2, (unsigned[]){2, 2}, 2);
    check_split(2, 3, (unsigned[]){1, 1, 1}, 2);
    check_split(1, 1, (unsigned[]){1}, 1);
    check_split(7, 1, (unsigned[]){7}, 1);
    check_split(3, 3, (unsigned[]){1, 1, 1}, 3);
}
END_TEST

START_TEST(split_never_exceeds_the_budget)
{
    for (unsigned W = 1; W <= 12; W++) {
        for (size_t P = 1; P <= 12; P++) {
            unsigned got[12], conc;
            st_split_workers(W, P, got, &conc);
            unsigned sum = 0;
            for (size_t i = 0; i < conc; i++)
                sum += got[i];
            ck_assert_uint_le(sum, W);
            ck_assert_uint_le(conc, W);
            for (size_t i = 0; i < P; i++)
                ck_assert_uint_ge(got[i], 1);
        }
    }
}
END_TEST

START_TEST(argv_keeps_option_values_together)
{
    st_settings s;
    ck_assert_int_eq(st_settings_init(&s), 0);
    ck_assert_int_eq(st_set_pytest_args(&s, "-k 'not slow' -m smoke", "test"), 0);
    free(s.project_root);
    s.project_root = st_strdup("/proj");
    st_preflight pf = {.pytest = 1, .xdist = 1, .cov = 1};
    st_batch b = {.path = "tests/a", .workers = 3, .output_dir = "/out"};
    st_strv argv = {0};
    ck_assert_int_eq(st_batch_argv(&s, &pf, &b, &argv), 0);
    const char *want[] = {s.python, "-m", "pytest", "-p", "selftest_pytest_plugin",
                          "--rootdir=/proj", "-n", "3", "-k", "not slow", "-m", "smoke",
                          "tests/a", NULL};
    for (size_t i = 0; want[i]; i++)
        ck_assert_str_eq(argv.v[i], want[i]);
    ck_assert_ptr_null(argv.v[13]);
    st_strv_free(&argv);
    /* one worker: no -n; coverage adds the LCOV report in the output dir */
    b.workers = 1;
    s.coverage = 1;
    ck_assert_int_eq(st_batch_argv(&s, &pf, &b, &argv), 0);
    ck_assert(!st_strv_contains(&argv, "-n"));
    ck_assert(st_strv_contains(&argv, "--cov=/proj"));
    ck_assert(st_strv_contains(&argv, "--cov-report=lcov:/out/coverage.lcov"));
    st_strv_free(&argv);
    /* without xdist installed, never -n */
    pf.xdist = 0;
    b.workers = 4;
    ck_assert_int_eq(st_batch_argv(&s, &pf, &b, &argv), 0);
    ck_assert(!st_strv_contains(&argv, "-n"));
    st_strv_free(&argv);
    st_settings_free(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("runner");
    TCase *tc = tcase_create("runner");
    tcase_add_test(tc, split_examples_of_the_spec);
    tcase_add_test(tc, split_never_exceeds_the_budget);
    tcase_add_test(tc, argv_keeps_option_values_together);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
