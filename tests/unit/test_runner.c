/* SPDX-License-Identifier: MIT */
/* Unit tests of runner.c: the worker split of docs/spec.md §5.1 and the pytest argv. The split as
 * pytest really receives it is checked end to end in tests/integration/test_run_fixtures.py. */
#include "config.h"

#include "unit.h"

#include "runner.h"
#include "shards.h"
#include "settings.h"

#include <math.h>
#include <string.h>

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

/* Shards: longest first onto the least-loaded (LPT). */
START_TEST(shards_lpt_balance)
{
    double w[] = {1, 9, 3, 7, 5, 2};
    unsigned slot[6];
    double load[2];
    st_shards_assign(w, 6, 2, slot, load);
    /* 9 -> 0, 7 -> 1, 5 -> 1 (12), 3 -> 0 (12), 2 -> 0 (14), 1 -> 1 (13) */
    ck_assert_uint_eq(slot[1], 0);
    ck_assert_uint_eq(slot[3], 1);
    ck_assert_uint_eq(slot[4], 1);
    ck_assert_uint_eq(slot[2], 0);
    ck_assert_uint_eq(slot[5], 0);
    ck_assert_uint_eq(slot[0], 1);
    ck_assert(fabs(load[0] - 14) < 1e-9 && fabs(load[1] - 13) < 1e-9);
    /* equal weights (no history): equal counts */
    double e[7] = {1, 1, 1, 1, 1, 1, 1};
    unsigned s3[7];
    double l3[3];
    st_shards_assign(e, 7, 3, s3, l3);
    ck_assert(l3[0] == 3 && l3[1] == 2 && l3[2] == 2);
    /* more shards than files: the rest stay empty, every file placed once */
    double one[1] = {4};
    unsigned s1[1];
    double l5[5];
    st_shards_assign(one, 1, 5, s1, l5);
    ck_assert_uint_eq(s1[0], 0);
}
END_TEST

START_TEST(shards_auto_count)
{
    ck_assert_uint_eq(st_shards_auto(600, 60, 100, 5), 10);  /* 10: 2 per slot */
    ck_assert_uint_eq(st_shards_auto(600, 60, 100, 4), 12);  /* 10 rounded to 3 per slot */
    ck_assert_uint_eq(st_shards_auto(1003, 60, 300, 16), 16); /* 17 would end at 2 shards */
    ck_assert_uint_eq(st_shards_auto(601, 60, 100, 1), 11);
    ck_assert_uint_eq(st_shards_auto(100, 60, 100, 4), 2);   /* fewer than the slots: as is */
    ck_assert_uint_eq(st_shards_auto(600, 60, 3, 4), 3);   /* at most one file each */
    ck_assert_uint_eq(st_shards_auto(10, 60, 30, 4), 1);
    ck_assert_uint_eq(st_shards_auto(-1, 60, 30, 4), 4);   /* no history: the slots */
    ck_assert_uint_eq(st_shards_auto(-1, 60, 2, 8), 2);
    ck_assert_uint_eq(st_shards_auto(-1, 60, 5, 0), 1);
}
END_TEST

static void shard(st_batch *b, unsigned k, unsigned n, unsigned passed, unsigned failed, int ok,
                  int no_tests, const char *engine)
{
    memset(b, 0, sizeof(*b));
    b->shard_index = k;
    b->shard_count = n;
    b->counts.n[ST_OUT_PASSED] = passed;
    b->counts.n[ST_OUT_FAILED] = failed;
    b->ok = ok;
    b->no_tests = no_tests;
    b->saw_start = b->saw_end = !no_tests;
    b->done = 1;
    b->coverage = -1;
    b->exit_status = no_tests ? 5 : failed ? 1 : 0;
    b->engine = strdup(engine);
    b->started_at = 100 + k;
    b->finished_at = 110 + k;
    b->runtime_s = 10;
    if (no_tests)
        b->reason = strdup("no tests collected (pytest exit status 5)");
}

START_TEST(shards_roll_up)
{
    st_batch sh[3], dst;
    shard(&sh[0], 1, 3, 4, 0, 1, 0, "unix:///a");
    shard(&sh[1], 2, 3, 0, 0, 0, 1, "unix:///b"); /* collected nothing: no failure */
    shard(&sh[2], 3, 3, 2, 1, 0, 0, "unix:///b");
    memset(&dst, 0, sizeof(dst));
    ck_assert_int_eq(st_shards_rollup(&dst, sh, 3), 0);
    ck_assert_uint_eq(dst.counts.n[ST_OUT_PASSED], 6);
    ck_assert_uint_eq(dst.counts.n[ST_OUT_FAILED], 1);
    ck_assert(!dst.ok);
    ck_assert(!dst.no_tests);
    ck_assert_int_eq(dst.exit_status, 1);
    ck_assert_str_eq(dst.engine, "unix:///a, unix:///b");
    ck_assert_uint_eq(dst.n_shards, 3);
    ck_assert(dst.shards[1].ok);
    ck_assert(fabs(dst.runtime_s - 12) < 1e-9); /* first start 101 to last end 113 */
    for (int i = 0; i < 3; i++)
        st_batch_free(&sh[i]);
    st_batch_free(&dst);
    /* every shard passes: the path passes */
    shard(&sh[0], 1, 2, 3, 0, 1, 0, "e");
    shard(&sh[1], 2, 2, 2, 0, 1, 0, "e");
    memset(&dst, 0, sizeof(dst));
    ck_assert_int_eq(st_shards_rollup(&dst, sh, 2), 0);
    ck_assert(dst.ok);
    ck_assert_ptr_null(dst.reason);
    ck_assert_str_eq(dst.engine, "e");
    for (int i = 0; i < 2; i++)
        st_batch_free(&sh[i]);
    st_batch_free(&dst);
    /* nothing collected anywhere: no tests, a failure */
    shard(&sh[0], 1, 2, 0, 0, 0, 1, "e");
    shard(&sh[1], 2, 2, 0, 0, 0, 1, "e");
    memset(&dst, 0, sizeof(dst));
    ck_assert_int_eq(st_shards_rollup(&dst, sh, 2), 0);
    ck_assert(!dst.ok);
    ck_assert(dst.no_tests);
    ck_assert_ptr_nonnull(dst.reason);
    for (int i = 0; i < 2; i++)
        st_batch_free(&sh[i]);
    st_batch_free(&dst);
}
END_TEST

START_TEST(shards_setting_values)
{
    int v = 7;
    ck_assert_int_eq(st_set_shards(&v, "auto", "t"), 0);
    ck_assert_int_eq(v, ST_SHARDS_AUTO);
    ck_assert_int_eq(st_set_shards(&v, "12", "t"), 0);
    ck_assert_int_eq(v, 12);
    ck_assert_int_eq(st_set_shards(&v, "0", "t"), -1);
    ck_assert_int_eq(st_set_shards(&v, "1001", "t"), -1);
    ck_assert_int_eq(st_set_shards(&v, "3x", "t"), -1);
    ck_assert_int_eq(st_set_shards(&v, "", "t"), -1);
    ck_assert_int_eq(v, 12);
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
    tcase_add_test(tc, shards_lpt_balance);
    tcase_add_test(tc, shards_auto_count);
    tcase_add_test(tc, shards_roll_up);
    tcase_add_test(tc, shards_setting_values);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
