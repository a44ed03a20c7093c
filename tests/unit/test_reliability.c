/* SPDX-License-Identifier: MIT */
/* Unit tests of the defences against hostile or corrupted input: the run lock never writes a
 * file that is not its own, JSON nesting is bounded, LCOV line 0 is harmless. */
#include "config.h"

#include "unit.h"

#include "json.h"
#include "lock.h"
#include "coverage.h"
#include "results.h"

#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char *slurp(const char *path)
{
    char *text = NULL;
    ck_assert_int_eq(st_read_file(path, 1 << 20, &text, NULL), 0);
    return text;
}

/* A lock path that is a symbolic link is refused; the file it points to keeps its content. */
START_TEST(lock_refuses_symlink)
{
    char *d = unit_tmpdir();
    unit_write(d, "precious", "keep me\n");
    char *target = st_path_join(d, "precious"), *lock = st_path_join(d, "self_test.lock");
    ck_assert_int_eq(symlink(target, lock), 0);
    unit_capture cap;
    unit_capture_begin(&cap);
    int fd = st_lock_acquire(lock, 0);
    char *err = unit_capture_end(&cap);
    ck_assert_int_lt(fd, 0);
    ck_assert_contains(err, lock);
    ck_assert_contains(err, "symbolic link");
    char *text = slurp(target);
    ck_assert_str_eq(text, "keep me\n");
    free(text);
    free(err);
    free(target);
    free(lock);
    st_rm_rf(d);
    free(d);
}
END_TEST

/* A regular file that holds anything but a pid (a config file named as lock_file) is refused
 * and left as it is; nothing is truncated on the way out either. */
START_TEST(lock_refuses_foreign_file)
{
    char *d = unit_tmpdir();
    unit_write(d, "selftest.conf", "project_root = \".\";\n");
    char *conf = st_path_join(d, "selftest.conf");
    unit_capture cap;
    unit_capture_begin(&cap);
    int fd = st_lock_acquire(conf, 0);
    char *err = unit_capture_end(&cap);
    ck_assert_int_lt(fd, 0);
    ck_assert_contains(err, conf);
    ck_assert_contains(err, "something other than a pid");
    char *text = slurp(conf);
    ck_assert_str_eq(text, "project_root = \".\";\n");
    free(text);
    free(err);
    /* a large file with a pid-looking start is not a lock file either */
    unit_write(d, "big", "123\nand a lot more that is not a pid at all, here\n");
    char *big = st_path_join(d, "big");
    unit_capture_begin(&cap);
    fd = st_lock_acquire(big, 0);
    free(unit_capture_end(&cap));
    ck_assert_int_lt(fd, 0);
    text = slurp(big);
    ck_assert_str_eq(text, "123\nand a lot more that is not a pid at all, here\n");
    free(text);
    free(big);
    free(conf);
    st_rm_rf(d);
    free(d);
}
END_TEST

/* Hard links and FIFOs are refused (a FIFO must not hang the open). */
START_TEST(lock_refuses_links_and_fifos)
{
    char *d = unit_tmpdir();
    unit_write(d, "other", "");
    char *other = st_path_join(d, "other"), *lock = st_path_join(d, "self_test.lock");
    ck_assert_int_eq(link(other, lock), 0);
    unit_capture cap;
    unit_capture_begin(&cap);
    int fd = st_lock_acquire(lock, 0);
    char *err = unit_capture_end(&cap);
    ck_assert_int_lt(fd, 0);
    ck_assert_contains(err, "hard links");
    free(err);
    char *fifo = st_path_join(d, "fifo");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    unit_capture_begin(&cap);
    fd = st_lock_acquire(fifo, 0);
    err = unit_capture_end(&cap);
    ck_assert_int_lt(fd, 0);
    ck_assert_contains(err, "not a regular file");
    free(err);
    free(fifo);
    free(other);
    free(lock);
    st_rm_rf(d);
    free(d);
}
END_TEST

/* The normal cycle: a new, an empty or a stale pid file is taken; the pid goes in and out. */
START_TEST(lock_takes_empty_or_pid_file)
{
    char *d = unit_tmpdir();
    char *lock = st_path_join(d, "sub/self_test.lock");
    int fd = st_lock_acquire(lock, 0);
    ck_assert_int_ge(fd, 0);
    char want[32];
    snprintf(want, sizeof(want), "%ld\n", (long)getpid());
    char *text = slurp(lock);
    ck_assert_str_eq(text, want);
    free(text);
    st_lock_release(fd);
    text = slurp(lock);
    ck_assert_str_eq(text, "");
    free(text);
    unit_write(d, "sub/self_test.lock", " 4242 \n");
    fd = st_lock_acquire(lock, 0);
    ck_assert_int_ge(fd, 0);
    text = slurp(lock);
    ck_assert_str_eq(text, want);
    free(text);
    st_lock_release(fd);
    free(lock);
    st_rm_rf(d);
    free(d);
}
END_TEST

static char *nested(size_t n, const char *prefix, const char *suffix)
{
    size_t lp = strlen(prefix), ls = strlen(suffix);
    char *t = malloc(lp + 2 * n + ls + 1);
    ck_assert_ptr_nonnull(t);
    memcpy(t, prefix, lp);
    memset(t + lp, '[', n);
    memset(t + lp + n, ']', n);
    memcpy(t + lp + 2 * n, suffix, ls + 1);
    return t;
}

/* A million levels of [[[...]]] is refused by line and column before yajl builds a tree whose
 * recursive free would overflow the stack; the limit is exact; strings do not count. */
START_TEST(json_depth_is_bounded)
{
    char err[256];
    char *deep = nested(1000000, "[\n {\"a\": ", "}]");
    yajl_val v = st_json_parse(deep, err, sizeof(err));
    ck_assert_ptr_null(v);
    ck_assert_str_eq(err, "line 2, column 70: nested deeper than 64 levels");
    free(deep);
    char *ok = nested(ST_JSON_MAX_DEPTH, "", "");
    v = st_json_parse(ok, err, sizeof(err));
    ck_assert_ptr_nonnull(v);
    yajl_tree_free(v);
    free(ok);
    char *over = nested(ST_JSON_MAX_DEPTH + 1, "", "");
    ck_assert_ptr_null(st_json_parse(over, err, sizeof(err)));
    free(over);
    const char *strs = "{\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"\": "
                       "\"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\"}";
    v = st_json_parse(strs, err, sizeof(err));
    ck_assert_msg(v != NULL, "%s", err);
    yajl_tree_free(v);
}
END_TEST

/* pytest-cov writes "DA:0,1" for an empty module: not a statement, and no reason to drop the
 * batch's coverage. A negative line is still malformed. */
START_TEST(lcov_line_zero_is_no_statement)
{
    char *d = unit_tmpdir();
    unit_write(d, "c.lcov",
               "TN:\nSF:pkg/__init__.py\nDA:0,1,1B2M2Y8AsgTpgAmY7PhCfg\nLF:0\nLH:1\n"
               "end_of_record\nTN:\nSF:pkg/m.py\nDA:1,1,AOMh\nDA:2,0,3A2B\nLF:2\nLH:1\n"
               "end_of_record\n");
    char *file = st_path_join(d, "c.lcov");
    char err[300] = "";
    st_batch b = {0};
    ck_assert_msg(st_coverage_read(&b, file, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(b.n_cov, 2);
    ck_assert_double_eq_tol(b.coverage, 50.0, 1e-9);
    st_batch_free(&b);
    unit_write(d, "c.lcov", "SF:m.py\nDA:-1,1\n");
    st_batch b2 = {0};
    ck_assert_int_eq(st_coverage_read(&b2, file, err, sizeof(err)), ST_ERR_MALFORMED);
    ck_assert_contains(err, "c.lcov:2: malformed");
    st_batch_free(&b2);
    free(file);
    st_rm_rf(d);
    free(d);
}
END_TEST

static pid_t dead_pid(void)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(0);
    int status;
    waitpid(pid, &status, 0);
    return pid;
}

/* Work directories of runs whose pid is gone are removed; a live run's, a link, a file and
 * other names are not. */
START_TEST(stale_workdirs_are_removed)
{
    char *d = unit_tmpdir();
    long dead = (long)dead_pid(), me = (long)getpid();
    char name[128];
    const char *prefix[] = {"selftest-", "selftest-sandbox-", "selftest-ssh-"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "%s%ld-a1B2c3", prefix[i], dead);
        char *p = st_path_join(d, name);
        ck_assert_int_eq(st_mkdir_p(p, 0700), 0);
        unit_write(p, "results.jsonl", "x\n");
        free(p);
    }
    const char *kept[8];
    char k0[64], k1[64], k2[64], k3[64], k4[64];
    snprintf(k0, sizeof(k0), "selftest-%ld-abc123", me);       /* this process: alive */
    snprintf(k1, sizeof(k1), "selftest-1-abc123");              /* pid 1: alive */
    snprintf(k2, sizeof(k2), "selftest-%ld-toolong7", dead);   /* not mkdtemp's shape */
    snprintf(k3, sizeof(k3), "selftest-%ld-linkxx", dead);     /* a symbolic link */
    snprintf(k4, sizeof(k4), "selftest-%ld-filexx", dead);     /* a file */
    kept[0] = k0, kept[1] = k1, kept[2] = k2, kept[3] = k3, kept[4] = k4;
    for (size_t i = 0; i < 3; i++) {
        char *p = st_path_join(d, kept[i]);
        ck_assert_int_eq(st_mkdir_p(p, 0700), 0);
        free(p);
    }
    char *target = st_path_join(d, "target"), *link_path = st_path_join(d, k3);
    ck_assert_int_eq(st_mkdir_p(target, 0700), 0);
    unit_write(target, "keep", "1");
    ck_assert_int_eq(symlink(target, link_path), 0);
    unit_write(d, k4, "file");
    ck_assert_uint_eq(st_remove_stale_workdirs(d), 3);
    for (size_t i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "%s%ld-a1B2c3", prefix[i], dead);
        char *p = st_path_join(d, name);
        ck_assert_msg(access(p, F_OK) != 0, "%s is still there", p);
        free(p);
    }
    for (size_t i = 0; i < 5; i++) {
        char *p = st_path_join(d, kept[i]);
        struct stat st;
        ck_assert_msg(lstat(p, &st) == 0, "%s was removed", p);
        free(p);
    }
    char *keep = st_path_join(target, "keep");
    ck_assert_int_eq(access(keep, F_OK), 0);
    free(keep);
    free(target);
    free(link_path);
    st_rm_rf(d);
    free(d);
}
END_TEST

/* Numbers are plain decimal, with surrounding white space ignored the same way everywhere. */
START_TEST(numbers_are_plain_decimal)
{
    long long v = 0;
    double d = 0;
    ck_assert_int_eq(st_parse_long("4 ", &v), 0);
    ck_assert_int_eq(v, 4);
    ck_assert_int_eq(st_parse_long(" 7\n", &v), 0);
    ck_assert_int_eq(v, 7);
    ck_assert_int_eq(st_parse_long("-3", &v), 0);
    ck_assert_int_eq(v, -3);
    ck_assert_int_eq(st_parse_long("0x10", &v), -1);
    ck_assert_int_eq(st_parse_long("4 4", &v), -1);
    ck_assert_int_eq(st_parse_long(" ", &v), -1);
    ck_assert_int_eq(st_parse_long("99999999999999999999", &v), -1);
    ck_assert_int_eq(st_parse_double("0x10", &d), -1);
    ck_assert_int_eq(st_parse_double("inf", &d), -1);
    ck_assert_int_eq(st_parse_double("1e999", &d), -1);
    ck_assert_int_eq(st_parse_double("1e", &d), -1);
    ck_assert_int_eq(st_parse_double(".", &d), -1);
    ck_assert_int_eq(st_parse_double("2.5 ", &d), 0);
    ck_assert(d == 2.5);
    ck_assert_int_eq(st_parse_double(".5", &d), 0);
    ck_assert(d == 0.5);
    ck_assert_int_eq(st_parse_double("1e3", &d), 0);
    ck_assert(d == 1000);
    ck_assert_int_eq(st_parse_bool(" yes\n"), 1);
    ck_assert_int_eq(st_parse_bool("0 "), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reliability");
    TCase *tc = tcase_create("lock");
    tcase_add_test(tc, lock_refuses_symlink);
    tcase_add_test(tc, lock_refuses_foreign_file);
    tcase_add_test(tc, lock_refuses_links_and_fifos);
    tcase_add_test(tc, lock_takes_empty_or_pid_file);
    suite_add_tcase(s, tc);
    tc = tcase_create("json");
    tcase_add_test(tc, json_depth_is_bounded);
    suite_add_tcase(s, tc);
    tc = tcase_create("lcov");
    tcase_add_test(tc, lcov_line_zero_is_no_statement);
    suite_add_tcase(s, tc);
    tc = tcase_create("workdirs");
    tcase_add_test(tc, stale_workdirs_are_removed);
    suite_add_tcase(s, tc);
    tc = tcase_create("input");
    tcase_add_test(tc, numbers_are_plain_decimal);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
