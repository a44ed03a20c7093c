/* SPDX-License-Identifier: MIT */
/* Unit tests of util.c: shell splitting, paths, atomic files, parsing. */
#include "config.h"

#include "unit.h"

#include "json.h"

#include <errno.h>
#include <math.h>
#include <dirent.h>
#include <sys/stat.h>

START_TEST(shell_split_keeps_values_with_options)
{
    st_strv v = {0};
    const char *err;
    ck_assert_int_eq(st_shell_split("-k 'not slow' -m smoke \"a b\\\"c\" x\\ y", &v, &err), 0);
    ck_assert_uint_eq(v.n, 6);
    ck_assert_str_eq(v.v[0], "-k");
    ck_assert_str_eq(v.v[1], "not slow");
    ck_assert_str_eq(v.v[2], "-m");
    ck_assert_str_eq(v.v[3], "smoke");
    ck_assert_str_eq(v.v[4], "a b\"c");
    ck_assert_str_eq(v.v[5], "x y");
    st_strv_free(&v);
    ck_assert_int_eq(st_shell_split("", &v, &err), 0);
    ck_assert_uint_eq(v.n, 0);
    ck_assert_int_eq(st_shell_split("  ''  ", &v, &err), 0);
    ck_assert_uint_eq(v.n, 1);
    ck_assert_str_eq(v.v[0], "");
    st_strv_free(&v);
}
END_TEST

START_TEST(shell_split_rejects_unterminated_quotes)
{
    st_strv v = {0};
    const char *err = NULL;
    ck_assert_int_eq(st_shell_split("-k 'oops", &v, &err), -1);
    ck_assert_str_eq(err, "unterminated single quote");
    st_strv_free(&v);
    ck_assert_int_eq(st_shell_split("-k \"oops", &v, &err), -1);
    ck_assert_str_eq(err, "unterminated double quote");
    st_strv_free(&v);
}
END_TEST

START_TEST(path_absolute_folds_dots)
{
    char *p = st_path_absolute("/a/b", "../c/./d//e/..");
    ck_assert_str_eq(p, "/a/c/d");
    free(p);
    p = st_path_absolute("/a", "../../..");
    ck_assert_str_eq(p, "/");
    free(p);
    p = st_path_absolute("/ignored", "/x/y/");
    ck_assert_str_eq(p, "/x/y");
    free(p);
}
END_TEST

START_TEST(path_relative_to_root)
{
    char *p = st_path_relative_to("/r", "/r/pkg/mod.py");
    ck_assert_str_eq(p, "pkg/mod.py");
    free(p);
    p = st_path_relative_to("/r", "/r");
    ck_assert_str_eq(p, ".");
    free(p);
    ck_assert_ptr_null(st_path_relative_to("/r", "/rx/mod.py"));
    ck_assert_ptr_null(st_path_relative_to("/r", "/elsewhere"));
}
END_TEST

START_TEST(safe_relative_paths)
{
    char *dir = unit_tmpdir();
    ck_assert(st_path_is_safe_relative(NULL, "pkg/mod.py"));
    ck_assert(!st_path_is_safe_relative(NULL, "../x.py"));
    ck_assert(!st_path_is_safe_relative(NULL, "pkg/../../x.py"));
    ck_assert(!st_path_is_safe_relative(NULL, "/etc/passwd"));
    ck_assert(!st_path_is_safe_relative(NULL, ""));
    /* a symlink that leads out of the root */
    char *link = st_path_join(dir, "out");
    ck_assert_int_eq(symlink("/etc", link), 0);
    ck_assert(!st_path_is_safe_relative(dir, "out/passwd"));
    unit_write(dir, "in.py", "x = 1\n");
    ck_assert(st_path_is_safe_relative(dir, "in.py"));
    free(link);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(atomic_write_replaces_and_leaves_no_temp)
{
    char *dir = unit_tmpdir();
    char *file = st_path_join(dir, "f.json");
    unit_write(dir, "f.json", "old");
    ck_assert_int_eq(st_write_file_atomic(file, "new", 3, 0644), 0);
    char *text;
    ck_assert_int_eq(st_read_file(file, 100, &text, NULL), 0);
    ck_assert_str_eq(text, "new");
    free(text);
    struct stat st;
    ck_assert_int_eq(stat(file, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0644);
    /* only f.json in the dir (temp files are hidden: count those too) */
    DIR *d = opendir(dir);
    struct dirent *de;
    int entries = 0;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            entries++;
    closedir(d);
    ck_assert_int_eq(entries, 1);
    /* a write that cannot happen leaves the old file untouched */
    char *bad = st_path_join(dir, "missing-dir/f.json");
    ck_assert_int_eq(st_write_file_atomic(bad, "x", 1, 0644), -ENOENT);
    ck_assert_int_eq(st_read_file(file, 100, &text, NULL), 0);
    ck_assert_str_eq(text, "new");
    free(text);
    free(bad);
    free(file);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(read_file_is_bounded)
{
    char *dir = unit_tmpdir();
    unit_write(dir, "big", "0123456789");
    char *file = st_path_join(dir, "big"), *text = NULL;
    ck_assert_int_eq(st_read_file(file, 5, &text, NULL), -EFBIG);
    ck_assert_ptr_null(text);
    ck_assert_int_eq(st_read_file(file, 10, &text, NULL), 0);
    free(text);
    free(file);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(parse_words)
{
    const char *yes[] = {"1", "true", "TRUE", "Yes", "on", "ON"};
    const char *no[] = {"0", "false", "False", "no", "NO", "off"};
    for (size_t i = 0; i < 6; i++) {
        ck_assert_int_eq(st_parse_bool(yes[i]), 1);
        ck_assert_int_eq(st_parse_bool(no[i]), 0);
    }
    ck_assert_int_eq(st_parse_bool("maybe"), -1);
    ck_assert_int_eq(st_parse_bool(""), -1);
    long long v;
    ck_assert_int_eq(st_parse_long("42", &v), 0);
    ck_assert_int_eq(v, 42);
    ck_assert_int_eq(st_parse_long("42x", &v), -1);
    ck_assert_int_eq(st_parse_long("", &v), -1);
    double d;
    ck_assert_int_eq(st_parse_double("2.5", &d), 0);
    ck_assert(d == 2.5);
    ck_assert_int_eq(st_parse_double("nan", &d), -1);
}
END_TEST

START_TEST(buffers_keep_tails)
{
    st_buf b = {0};
    for (int i = 0; i < 1000; i++)
        st_buf_printf(&b, "%d,", i);
    st_buf_keep_tail(&b, 4);
    ck_assert_str_eq(b.data, "999,");
    st_buf_free(&b);
}
END_TEST

/* Pretty JSON (reports, history, orphan caches) prints empty arrays and objects as [] and {},
 * also nested, and leaves brackets inside strings alone. */
START_TEST(pretty_json_prints_empty_containers_on_one_line)
{
    yajl_gen g = st_jg_new(1);
    yajl_gen_map_open(g);
    st_jg_key(g, "list");
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);
    st_jg_key(g, "map");
    yajl_gen_map_open(g);
    yajl_gen_map_close(g);
    st_jg_key(g, "nested");
    yajl_gen_array_open(g);
    yajl_gen_map_open(g);
    yajl_gen_map_close(g);
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);
    yajl_gen_array_close(g);
    st_jg_kstr(g, "text", "[\n  ] { } \"[ ]\"");
    yajl_gen_map_close(g);
    char *out = st_jg_finish(g, 1);
    ck_assert_ptr_nonnull(out);
    ck_assert_str_eq(out, "{\n"
                          "  \"list\": [],\n"
                          "  \"map\": {},\n"
                          "  \"nested\": [\n"
                          "    {},\n"
                          "    []\n"
                          "  ],\n"
                          "  \"text\": \"[\\n  ] { } \\\"[ ]\\\"\"\n"
                          "}\n");
    free(out);
    g = st_jg_new(1);
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);
    out = st_jg_finish(g, 1);
    ck_assert_str_eq(out, "[]\n");
    free(out);
}
END_TEST

/* Doubles in the JSON files: the same shortest exact form as every other writer (the metrics
 * exposition), not %.17g whenever %.15g does not read back. */
START_TEST(json_doubles_are_shortest_exact)
{
    yajl_gen g = st_jg_new(0);
    yajl_gen_array_open(g);
    st_jg_double(g, 1.0 / 3.0);
    st_jg_double(g, 0.1);
    st_jg_double(g, 0.1 + 0.2);
    st_jg_double(g, 3);
    st_jg_double(g, NAN);
    yajl_gen_array_close(g);
    char *out = st_jg_finish(g, 0);
    ck_assert_str_eq(out, "[0.3333333333333333,0.1,0.30000000000000004,3.0,null]");
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("util");
    tcase_add_test(tc, shell_split_keeps_values_with_options);
    tcase_add_test(tc, shell_split_rejects_unterminated_quotes);
    tcase_add_test(tc, path_absolute_folds_dots);
    tcase_add_test(tc, path_relative_to_root);
    tcase_add_test(tc, safe_relative_paths);
    tcase_add_test(tc, atomic_write_replaces_and_leaves_no_temp);
    tcase_add_test(tc, read_file_is_bounded);
    tcase_add_test(tc, parse_words);
    tcase_add_test(tc, buffers_keep_tails);
    tcase_add_test(tc, pretty_json_prints_empty_containers_on_one_line);
    tcase_add_test(tc, json_doubles_are_shortest_exact);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
