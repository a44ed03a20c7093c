/* SPDX-License-Identifier: MIT */
/* Unit tests of runner.c: the worker split of docs/spec.md §5.1 and the pytest argv. The split as
 * pytest really receives it is checked end to end in tests/integration/test_run_fixtures.py. */
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

/* Retry delays: 0.1 s doubling, capped at 30 s, so the largest count allowed waits minutes,
 * not years (--retries 30 used to wait 0.1 * 2^29 s before its last attempt). */
START_TEST(retry_delay_is_capped)
{
    ck_assert_double_eq_tol(st_retry_delay(1), 0.1, 1e-9);
    ck_assert_double_eq_tol(st_retry_delay(2), 0.2, 1e-9);
    ck_assert_double_eq_tol(st_retry_delay(7), 6.4, 1e-9);
    ck_assert_double_eq_tol(st_retry_delay(9), 25.6, 1e-9);
    ck_assert_double_eq_tol(st_retry_delay(10), ST_RETRY_DELAY_MAX_S, 1e-9);
    ck_assert_double_eq_tol(st_retry_delay(30), ST_RETRY_DELAY_MAX_S, 1e-9);
    ck_assert_double_eq_tol(st_retry_delay(4000000000u), ST_RETRY_DELAY_MAX_S, 1e-9);
    double total = 0;
    for (unsigned r = 1; r <= ST_RETRIES_MAX; r++)
        total += st_retry_delay(r);
    ck_assert_double_le(total, 400.0); /* every backoff of the largest count allowed */
}
END_TEST

/* --workers 100000 would reach xdist as -n 100000: the budget is capped at 4 per CPU. */
START_TEST(workers_are_capped_per_cpu)
{
    ck_assert_uint_eq(st_workers_cap(100000, 2), 2 * ST_WORKERS_PER_CPU);
    ck_assert_uint_eq(st_workers_cap(8, 2), 8);
    ck_assert_uint_eq(st_workers_cap(3, 2), 3);
    ck_assert_uint_eq(st_workers_cap(9, 0), ST_WORKERS_PER_CPU);
}
END_TEST

/* The history rule: about 2 s and 2 tests of work per xdist worker, else one process. */
START_TEST(workers_from_history_rule)
{
    ck_assert_uint_eq(st_workers_from_history(0.0, 500), 1);
    ck_assert_uint_eq(st_workers_from_history(3.9, 500), 1);  /* 1.95 workers' worth: no -n */
    ck_assert_uint_eq(st_workers_from_history(4.0, 500), 2);
    ck_assert_uint_eq(st_workers_from_history(17.0, 500), 8);
    ck_assert_uint_eq(st_workers_from_history(100.0, 3), 1);  /* 3 long tests: one each is 1.5 */
    ck_assert_uint_eq(st_workers_from_history(100.0, 4), 2);
    ck_assert_uint_eq(st_workers_from_history(-1.0, 10), 1);
    ck_assert_uint_eq(st_workers_from_history(1e12, 1000000000L), 100000);
}
END_TEST

/* orphan_check_mode "fork": a server's execution timeout is the sum of its checks' bounds
 * (orphan_timeout + kill_grace each) plus a minute for the warm-up, capped at a day. */
START_TEST(fork_group_timeout_is_the_sum_bound)
{
    st_settings s;
    ck_assert_int_eq(st_settings_init(&s), 0);
    ck_assert_str_eq(s.orphan_check_mode, "fork");
    s.orphan_timeout_s = 10;
    s.kill_grace_s = 2;
    ck_assert_double_eq_tol(st_fork_group_timeout(&s, 1), 72, 1e-9);
    ck_assert_double_eq_tol(st_fork_group_timeout(&s, 8), 156, 1e-9);
    s.orphan_timeout_s = 3600;
    ck_assert_double_eq_tol(st_fork_group_timeout(&s, 1000), 86400, 1e-9);
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
    tcase_add_test(tc, retry_delay_is_capped);
    tcase_add_test(tc, workers_are_capped_per_cpu);
    tcase_add_test(tc, workers_from_history_rule);
    tcase_add_test(tc, fork_group_timeout_is_the_sum_bound);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
