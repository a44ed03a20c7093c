/* SPDX-License-Identifier: MIT */
/* Unit tests of the helper library (src/lib): the capped buffer, string vectors, paths, atomic
 * writes and bounded reads, clocks and random ids, number formatting, enum tables, JSON error
 * location and the unknown-settings check. */
#include "config.h"

#include "unit.h"

#include "st_buf.h"
#include "st_enum.h"
#include "st_file.h"
#include "st_json.h"
#include "st_num.h"
#include "st_path.h"
#include "st_settings.h"
#include "st_time.h"

#include <selftest/plugin.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>

/* ---- buffers and vectors --------------------------------------------------------------------- */

START_TEST(buf_grows_and_stays_terminated)
{
    st_buf b = {0};
    for (int i = 0; i < 1000; i++)
        st_buf_printf(&b, "%d,", i);
    ck_assert(!b.oom && !b.truncated);
    ck_assert_uint_eq(b.len, strlen(b.data));
    ck_assert(strncmp(b.data, "0,1,2,", 6) == 0);
    ck_assert(strstr(b.data, ",999,") != NULL);
    st_buf_append(&b, "\0x", 2); /* binary data keeps its length */
    ck_assert_uint_eq(b.data[b.len - 1], 'x');
    st_buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    char *s = st_buf_steal(&b);
    ck_assert_str_eq(s, "");
    ck_assert_ptr_null(b.data);
    free(s);
}
END_TEST

START_TEST(buf_cap_truncates_and_says_so)
{
    st_buf b = {.max = 8};
    st_buf_puts(&b, "12345");
    ck_assert(!b.truncated);
    st_buf_puts(&b, "67890");
    ck_assert(b.truncated);
    ck_assert_uint_eq(b.len, 8);
    ck_assert_str_eq(b.data, "12345678");
    st_buf_printf(&b, "%s", "more");
    ck_assert_str_eq(b.data, "12345678");
    /* a printf that crosses the cap keeps what fits */
    st_buf_reset(&b);
    ck_assert(!b.truncated);
    ck_assert_uint_eq(b.max, 8);
    st_buf_printf(&b, "%d-%s", 42, "abcdefgh");
    ck_assert(b.truncated);
    ck_assert_str_eq(b.data, "42-abcde");
    st_buf_keep_tail(&b, 3);
    ck_assert_str_eq(b.data, "cde");
    st_buf_free(&b);
    ck_assert_uint_eq(b.max, 0);
}
END_TEST

START_TEST(strv_is_null_terminated)
{
    st_strv v = {0};
    ck_assert_ptr_null(st_strv_get(&v)[0]);
    st_strv_push(&v, "a");
    st_strv_pushf(&v, "%s-%d", "b", 2);
    st_strv_push_owned(&v, st_strdup("c"));
    ck_assert_uint_eq(v.n, 3);
    ck_assert_str_eq(st_strv_get(&v)[1], "b-2");
    ck_assert_ptr_null(st_strv_get(&v)[3]);
    ck_assert(st_strv_contains(&v, "c"));
    ck_assert(!st_strv_contains(&v, "d"));
    st_strv_push_owned(&v, NULL); /* a failed allocation upstream */
    ck_assert(v.oom);
    st_strv_free(&v);
    char *s = st_asprintf("%s/%03d", "x", 7);
    ck_assert_str_eq(s, "x/007");
    free(s);
    ck_assert_ptr_null(st_strdup(NULL));
}
END_TEST

START_TEST(arrays_grow_and_strings_are_replaced)
{
    long *v = NULL;
    size_t cap = 0;
    for (size_t n = 0; n < 1000; n++) {
        ck_assert_int_eq(ST_GROW(v, cap, n + 1), 0);
        ck_assert_uint_ge(cap, n + 1);
        v[n] = (long)n;
    }
    ck_assert_int_eq(v[999], 999);
    size_t before = cap;
    ck_assert_int_eq(ST_GROW(v, cap, 10), 0); /* enough room: nothing changes */
    ck_assert_uint_eq(cap, before);
    ck_assert_int_eq(ST_GROW(v, cap, SIZE_MAX / 2), ST_ERR_NOMEM); /* overflow: refused, kept */
    ck_assert_uint_eq(cap, before);
    ck_assert_int_eq(v[999], 999);
    free(v);
    char *s = NULL;
    ck_assert_int_eq(st_strset(&s, "one"), 0);
    ck_assert_str_eq(s, "one");
    ck_assert_int_eq(st_strset(&s, "two"), 0);
    ck_assert_str_eq(s, "two");
    ck_assert_int_eq(st_strset(&s, NULL), 0);
    ck_assert_ptr_null(s);
}
END_TEST

START_TEST(set_err_formats_and_ignores_null)
{
    char err[8];
    st_set_err(err, sizeof(err), "%s %d", "too long", 12345);
    ck_assert_str_eq(err, "too lon");
    st_set_err(NULL, 0, "nothing %d", 1); /* no crash */
    err[0] = 'z';
    st_set_err(err, 0, "x");
    ck_assert_int_eq(err[0], 'z');
}
END_TEST

/* ---- paths ------------------------------------------------------------------------------------ */

START_TEST(paths_join_and_dirname)
{
    char *s = st_path_join("a/", "b");
    ck_assert_str_eq(s, "a/b");
    free(s);
    s = st_path_join("a", "/abs");
    ck_assert_str_eq(s, "/abs");
    free(s);
    s = st_path_dirname("/x");
    ck_assert_str_eq(s, "/");
    free(s);
    s = st_path_dirname("name");
    ck_assert_str_eq(s, ".");
    free(s);
    char *dir = unit_tmpdir();
    char *deep = st_path_join(dir, "a/b/c");
    ck_assert_int_eq(st_mkdir_p(deep, 0755), 0);
    ck_assert_int_eq(st_mkdir_p(deep, 0755), 0); /* again: fine */
    unit_write(deep, "f", "x");
    char *file = st_path_join(deep, "f");
    ck_assert_int_eq(st_mkdir_p(file, 0755), -ENOTDIR);
    ck_assert_int_eq(st_rm_rf(dir), 0);
    struct stat st;
    ck_assert_int_ne(stat(dir, &st), 0);
    free(file);
    free(deep);
    free(dir);
}
END_TEST

/* ---- atomic writes, bounded reads ------------------------------------------------------------- */

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

START_TEST(atomic_two_steps)
{
    char *dir = unit_tmpdir();
    char *file = st_path_join(dir, "map.json");
    unit_write(dir, "map.json", "old");
    ck_assert_int_eq(chmod(file, 0640), 0);
    char *tmp = NULL;
    const char *what = NULL;
    ck_assert_int_eq(st_file_prepare(file, "new", 3, ST_FILE_MODE_KEEP, &tmp, &what), 0);
    /* prepared: a hidden temp beside it, the old file still in place */
    ck_assert_ptr_nonnull(tmp);
    char *want = st_path_join(dir, ".map.json.tmp.");
    ck_assert(strncmp(tmp, want, strlen(want)) == 0);
    free(want);
    ck_assert_int_eq(count_entries(dir), 2);
    char *text = NULL;
    ck_assert_int_eq(st_read_file(file, 100, &text, NULL), 0);
    ck_assert_str_eq(text, "old");
    free(text);
    ck_assert_int_eq(st_file_commit(tmp, file, &what), 0);
    free(tmp);
    ck_assert_int_eq(count_entries(dir), 1);
    ck_assert_int_eq(st_read_file(file, 100, &text, NULL), 0);
    ck_assert_str_eq(text, "new");
    free(text);
    struct stat st;
    ck_assert_int_eq(stat(file, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0640); /* kept */
    /* abandoned: nothing is left and the file is untouched */
    ck_assert_int_eq(st_file_prepare(file, "newer", 5, 0600, &tmp, NULL), 0);
    st_file_abort(tmp);
    free(tmp);
    ck_assert_int_eq(count_entries(dir), 1);
    /* a new file without KEEP gets the mode asked for; with KEEP and no file, 0644 */
    char *other = st_path_join(dir, "other.prom");
    ck_assert_int_eq(st_write_file_atomic_what(other, "x", 1, ST_FILE_MODE_KEEP, NULL), 0);
    ck_assert_int_eq(stat(other, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0644);
    free(other);
    st_rm_rf(dir);
    free(file);
    free(dir);
}
END_TEST

START_TEST(atomic_failures_name_the_step)
{
    char *dir = unit_tmpdir();
    const char *what = NULL;
    char *bad = st_path_join(dir, "missing/f.json");
    ck_assert_int_eq(st_write_file_atomic_what(bad, "x", 1, 0644, &what), -ENOENT);
    ck_assert_str_eq(what, "create a temp file in its directory");
    /* the target is a directory: the rename fails, the temp file is removed */
    char *target = st_path_join(dir, "isdir");
    ck_assert_int_eq(mkdir(target, 0755), 0);
    unit_write(target, "keep", "x"); /* a non-empty directory cannot be replaced */
    what = NULL;
    ck_assert_int_lt(st_write_file_atomic_what(target, "x", 1, 0644, &what), 0);
    ck_assert_str_eq(what, "rename the temp file");
    ck_assert_int_eq(count_entries(dir), 1);
    st_rm_rf(dir);
    free(target);
    free(bad);
    free(dir);
}
END_TEST

START_TEST(read_file_refuses_what_is_not_a_file)
{
    char *dir = unit_tmpdir();
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(st_read_file(dir, 100, &text, &len), -EISDIR);
    ck_assert_str_eq(st_read_file_strerror(-EISDIR), "not a regular file");
    char *fifo = st_path_join(dir, "fifo");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    /* refused at once: nobody writes to it, a blocking open would hang the test */
    ck_assert_int_eq(st_read_file(fifo, 100, &text, &len), -EINVAL);
    ck_assert_str_eq(st_read_file_strerror(-EINVAL), "not a regular file");
    unit_write(dir, "big", "0123456789");
    char *big = st_path_join(dir, "big");
    ck_assert_int_eq(st_read_file(big, 9, &text, &len), -EFBIG);
    ck_assert_int_eq(st_read_file(big, 10, &text, &len), 0);
    ck_assert_uint_eq(len, 10);
    free(text);
    char *none = st_path_join(dir, "none");
    ck_assert_int_eq(st_read_file(none, 10, &text, &len), -ENOENT);
    st_rm_rf(dir);
    free(none);
    free(big);
    free(fifo);
    free(dir);
}
END_TEST

/* ---- clocks and ids --------------------------------------------------------------------------- */

START_TEST(clocks_and_ids)
{
    double m0 = st_monotonic();
    st_sleep(0.02);
    double m1 = st_monotonic();
    ck_assert(m1 - m0 >= 0.019);
    ck_assert(st_wall_clock() > 1.6e9);
    struct timespec dl, now;
    st_monotonic_deadline(1.75, &dl);
    clock_gettime(CLOCK_MONOTONIC, &now);
    double ahead = (double)(dl.tv_sec - now.tv_sec) + (double)(dl.tv_nsec - now.tv_nsec) / 1e9;
    ck_assert_msg(ahead > 1.7 && ahead <= 1.75, "%f", ahead);
    ck_assert(dl.tv_nsec >= 0 && dl.tv_nsec < 1000000000L);
    char stamp[32];
    st_utc_iso8601(0, stamp, sizeof(stamp));
    ck_assert_str_eq(stamp, "1970-01-01T00:00:00Z");
    st_utc_stamp(86400 + 3661, stamp, sizeof(stamp));
    ck_assert_str_eq(stamp, "19700102_010101");
    char a[33], b[33];
    st_random_hex(a, 32);
    st_random_hex(b, 32);
    ck_assert_uint_eq(strlen(a), 32);
    ck_assert_uint_eq(strspn(a, "0123456789abcdef"), 32);
    ck_assert_str_ne(a, b);
    char odd[8];
    st_random_hex(odd, 7);
    ck_assert_uint_eq(strlen(odd), 7);
}
END_TEST

/* ---- numbers ---------------------------------------------------------------------------------- */

START_TEST(doubles_shortest_exact)
{
    char out[ST_DOUBLE_BUFSIZE];
    static const double values[] = {0.1, 1.0 / 3.0, 0.1 + 0.2, 2.0 / 3.0, 1e-7, 123456.789,
                                    5e-324, 1.7976931348623157e308, -0.0, 12.5};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        st_format_double(values[i], out);
        ck_assert_msg(strtod(out, NULL) == values[i], "%s does not read back", out);
        ck_assert_ptr_null(strchr(out, ','));
        /* shortest: one digit fewer would not read back (or it is already at 15) */
        char shorter[400];
        int digits = 0, leading = 1; /* significant digits: leading zeros do not count */
        for (const char *p = out; *p && *p != 'e'; p++) {
            if (*p == '0' && leading)
                continue;
            if (*p >= '1' && *p <= '9')
                leading = 0;
            digits += !leading && *p >= '0' && *p <= '9';
        }
        if (digits > 15) {
            snprintf(shorter, sizeof(shorter), "%.*g", digits - 1, values[i]);
            ck_assert_msg(strtod(shorter, NULL) != values[i], "%s is not the shortest", out);
        }
    }
    st_format_double(1.0 / 3.0, out);
    ck_assert_str_eq(out, "0.3333333333333333"); /* 16 digits, not %.17g's ...31 */
    st_format_double(0.1, out);
    ck_assert_str_eq(out, "0.1");
    st_format_double(NAN, out);
    ck_assert_str_eq(out, "NaN");
    st_format_double(-INFINITY, out);
    ck_assert_str_eq(out, "-Inf");
}
END_TEST

START_TEST(strict_parsing)
{
    long long ll;
    double d;
    ck_assert_int_eq(st_parse_long(" 42\n", &ll), 0);
    ck_assert_int_eq(ll, 42);
    ck_assert_int_eq(st_parse_long("0x10", &ll), -1);
    ck_assert_int_eq(st_parse_long("99999999999999999999", &ll), -1);
    ck_assert_int_eq(st_parse_double("2.5e3", &d), 0);
    ck_assert(d == 2500);
    ck_assert_int_eq(st_parse_double("inf", &d), -1);
    ck_assert_int_eq(st_parse_double("1e", &d), -1);
    ck_assert_int_eq(st_parse_bool("ON"), 1);
    ck_assert_int_eq(st_parse_bool("no "), 0);
    ck_assert_int_eq(st_parse_bool("maybe"), -1);
}
END_TEST

/* ---- enum tables ------------------------------------------------------------------------------ */

enum colour { RED = 1, GREEN = 2, BLUE = 7 };
static const st_enum_name colours[] = {{RED, "red"}, {GREEN, "green"}, {BLUE, "blue"}};

START_TEST(enum_tables_both_ways)
{
    ck_assert_str_eq(ST_ENUM_NAME(colours, BLUE, "?"), "blue");
    ck_assert_str_eq(ST_ENUM_NAME(colours, 3, "?"), "?");
    int v = 0;
    ck_assert_int_eq(ST_ENUM_VALUE(colours, "green", &v), 0);
    ck_assert_int_eq(v, GREEN);
    ck_assert_int_eq(ST_ENUM_VALUE(colours, "Green", &v), -1);
    ck_assert_int_eq(ST_ENUM_VALUE(colours, NULL, &v), -1);
    ck_assert_int_eq(v, GREEN);
}
END_TEST

/* ---- JSON ------------------------------------------------------------------------------------- */

START_TEST(json_errors_have_line_and_column)
{
    char err[128] = "";
    yajl_val v = st_json_parse("{\n  \"a\": 1,\n  \"b\": ]\n}", err, sizeof(err));
    ck_assert_ptr_null(v);
    ck_assert_msg(strncmp(err, "line 3, column ", 15) == 0, "%s", err);
    ck_assert_ptr_null(strchr(err, '\n'));
    /* too deep: refused before yajl builds a tree, located at the first bracket too many */
    char deep[200];
    memset(deep, '[', 65);
    memset(deep + 65, ']', 65);
    deep[130] = '\0';
    ck_assert_ptr_null(st_json_parse(deep, err, sizeof(err)));
    ck_assert_str_eq(err, "line 1, column 65: nested deeper than 64 levels");
    ck_assert_ptr_null(st_json_tree_parse(deep, err, sizeof(err)));
    ck_assert_str_eq(err, "nested deeper than 64 levels");
    deep[64] = '\0'; /* 64 "[" alone: deep enough but allowed, and not valid JSON */
    ck_assert_uint_eq(st_json_too_deep(deep, 64, ST_JSON_MAX_DEPTH), 0);
    ck_assert_uint_eq(st_json_too_deep("\"[[[\" [[", 8, 1), 8);
    v = st_json_parse("{\"k\": [1, 2]}", err, sizeof(err));
    ck_assert_ptr_nonnull(v);
    yajl_tree_free(v);
    /* read from a file: a NUL byte inside is refused where it is, not parsed up to */
    static const char nul_text[] = "[1,\n 2]\0[3]";
    ck_assert_ptr_null(st_json_parse_n(nul_text, sizeof(nul_text) - 1, err, sizeof(err)));
    ck_assert_str_eq(err, "line 2, column 4: contains a NUL byte (not JSON text)");
    v = st_json_parse_n(nul_text, 7, err, sizeof(err));
    ck_assert_ptr_nonnull(v);
    yajl_tree_free(v);
    st_json_where("ab\ncd", 4, "here", err, sizeof(err));
    ck_assert_str_eq(err, "line 2, column 2: here");
}
END_TEST

/* ---- the unknown-settings check, through a fake host ------------------------------------------ */

static char logged[512];
static const char *const fake_names[] = {"port", "prot", NULL};

static void fake_log(st_instance *self, st_log_level level, const char *fmt, ...)
{
    (void)self;
    (void)level;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(logged, sizeof(logged), fmt, ap);
    va_end(ap);
}

static const char *fake_where(st_instance *self, const st_config_node *node, const char *name)
{
    (void)self;
    (void)node;
    return strcmp(name, "prot") == 0 ? "t.conf:3: prot" : "t.conf:2: port";
}

static const char *const *fake_cfg_names(st_instance *self, const st_config_node *node)
{
    (void)self;
    return node ? fake_names : NULL;
}

/* The core's versioned JSON files (the check cache, the preflight cache): one reader. */
START_TEST(versioned_json_files)
{
    char *dir = unit_tmpdir();
    char *file = st_path_join(dir, "cache.json");
    char err[300] = "";
    yajl_val root = (yajl_val)1;
    /* absent: ST_OK and no tree */
    ck_assert_int_eq(st_json_read_versioned(file, 1 << 20, 1, "entries", &root, err, sizeof(err)),
                     ST_OK);
    ck_assert_ptr_null(root);
    unit_write(dir, "cache.json", "{\"version\": 1, \"entries\": {\"a\": 1}}");
    ck_assert_int_eq(st_json_read_versioned(file, 1 << 20, 1, "entries", &root, err, sizeof(err)),
                     ST_OK);
    ck_assert_ptr_nonnull(root);
    yajl_tree_free(root);
    /* the wrong version, member or shape: malformed, with what was expected */
    static const char *const wrong[] = {"{\"version\": 2, \"entries\": {}}",
                                        "{\"version\": \"1\", \"entries\": {}}",
                                        "{\"version\": 1, \"entries\": []}",
                                        "{\"version\": 1, \"modules\": {}}", "[1]"};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        unit_write(dir, "cache.json", wrong[i]);
        ck_assert_int_eq(
            st_json_read_versioned(file, 1 << 20, 1, "entries", &root, err, sizeof(err)),
            ST_ERR_MALFORMED);
        ck_assert_ptr_null(root);
        ck_assert_str_eq(err, "line 1, column 1: expected {\"version\": 1, \"entries\": {...}}");
    }
    /* not JSON: located */
    unit_write(dir, "cache.json", "{\n  \"version\": ,\n}");
    ck_assert_int_eq(st_json_read_versioned(file, 1 << 20, 1, "entries", &root, err, sizeof(err)),
                     ST_ERR_MALFORMED);
    ck_assert_msg(strncmp(err, "line 2, column ", 15) == 0, "%s", err);
    /* too large, or not a file: cannot be read */
    unit_write(dir, "cache.json", "{\"version\": 1, \"entries\": {}}");
    ck_assert_int_eq(st_json_read_versioned(file, 8, 1, "entries", &root, err, sizeof(err)),
                     ST_ERR_IO);
    ck_assert_str_eq(err, "larger than 8 bytes");
    ck_assert_int_eq(st_json_read_versioned(file, 1u << 20, 1, "entries", &root, err, 8),
                     ST_OK); /* err may be small: it is only written on failure */
    yajl_tree_free(root);
    ck_assert_int_eq(st_json_read_versioned(file, 4u << 20, 1, "entries", &root, err, 8),
                     ST_OK);
    yajl_tree_free(root);
    ck_assert_int_eq(st_json_read_versioned(dir, 1 << 20, 1, "entries", &root, err, sizeof(err)),
                     ST_ERR_IO);
    ck_assert_ptr_null(root);
    free(file);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(unknown_settings_are_refused)
{
    st_host h = {.log = fake_log, .cfg_where = fake_where, .cfg_names = fake_cfg_names};
    static const char *const known[] = {"port", "host", NULL};
    static const char *const all[] = {"port", "prot", NULL};
    const st_config_node *cfg = (const st_config_node *)&h; /* any non-NULL node */
    logged[0] = '\0';
    ck_assert_int_eq(st_check_settings(&h, NULL, cfg, all, NULL), ST_OK);
    ck_assert_str_eq(logged, "");
    ck_assert_int_eq(st_check_settings(&h, NULL, NULL, known, NULL), ST_OK); /* no group */
    ck_assert_int_eq(st_check_settings(&h, NULL, cfg, known, NULL), ST_ERR_INVALID);
    ck_assert_str_eq(logged, "t.conf:3: prot: unknown setting 'prot' (known: port, host)");
    ck_assert_int_eq(st_check_settings(&h, NULL, cfg, known, "container"), ST_ERR_INVALID);
    ck_assert_str_eq(logged, "t.conf:3: prot: unknown setting 'prot' in the container group "
                             "(known: port, host)");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stlib");
    TCase *tc = tcase_create("stlib");
    tcase_add_test(tc, buf_grows_and_stays_terminated);
    tcase_add_test(tc, buf_cap_truncates_and_says_so);
    tcase_add_test(tc, strv_is_null_terminated);
    tcase_add_test(tc, arrays_grow_and_strings_are_replaced);
    tcase_add_test(tc, set_err_formats_and_ignores_null);
    tcase_add_test(tc, paths_join_and_dirname);
    tcase_add_test(tc, atomic_two_steps);
    tcase_add_test(tc, atomic_failures_name_the_step);
    tcase_add_test(tc, read_file_refuses_what_is_not_a_file);
    tcase_add_test(tc, clocks_and_ids);
    tcase_add_test(tc, doubles_shortest_exact);
    tcase_add_test(tc, strict_parsing);
    tcase_add_test(tc, enum_tables_both_ways);
    tcase_add_test(tc, json_errors_have_line_and_column);
    tcase_add_test(tc, versioned_json_files);
    tcase_add_test(tc, unknown_settings_are_refused);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
