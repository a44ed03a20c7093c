/* SPDX-License-Identifier: MIT */
/* The quarantine file: a missing file is empty, entries round-trip through an atomic write, and
 * a file that is not in the format is refused and left as it is. */
#include "config.h"

#include "unit.h"

#include "quarantine.h"

#include <string.h>

static void write_text(const char *path, const char *text)
{
    ck_assert_int_eq(st_write_file_atomic(path, text, strlen(text), 0644), 0);
}

START_TEST(round_trip)
{
    char *dir = unit_tmpdir();
    char *path = st_path_join(dir, "sub/quarantine.json");
    st_quarantine q;
    ck_assert_int_eq(st_quarantine_load(path, &q), 0); /* missing: empty */
    ck_assert_uint_eq(q.n, 0);
    ck_assert_int_eq(st_quarantine_add(&q, "t.py::a", "races", 0), 0);
    ck_assert_int_eq(st_quarantine_add(&q, "t.py::b[1-\"x\"]", "", 86400), 0);
    ck_assert_int_eq(st_quarantine_add(&q, "t.py::a", "still races", 86400 * 2), 0);
    ck_assert_uint_eq(q.n, 2); /* a second add replaces the reason and date */
    ck_assert_int_eq(st_quarantine_save(path, &q), 0);
    st_quarantine_free(&q);
    ck_assert_int_eq(st_quarantine_load(path, &q), 0);
    ck_assert_uint_eq(q.n, 2);
    const st_quarantine_entry *e = st_quarantine_find(&q, "t.py::a");
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->reason, "still races");
    ck_assert_str_eq(e->since, "1970-01-03T00:00:00Z");
    ck_assert_ptr_nonnull(st_quarantine_find(&q, "t.py::b[1-\"x\"]"));
    ck_assert_int_eq(st_quarantine_remove(&q, "t.py::a"), 1);
    ck_assert_int_eq(st_quarantine_remove(&q, "t.py::a"), 0);
    ck_assert_ptr_null(st_quarantine_find(&q, "t.py::a"));
    ck_assert_uint_eq(q.n, 1);
    st_quarantine_free(&q);
    free(path);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(malformed_refused)
{
    char *dir = unit_tmpdir();
    char *path = st_path_join(dir, "quarantine.json");
    const char *bad[] = {"{", "[]", "{\"tests\": {}}", "{\"tests\": [1]}",
                         "{\"tests\": [{\"nodeid\": \"\"}]}",
                         "{\"tests\": [{\"nodeid\": \"a::b\"}, {\"nodeid\": \"a::b\"}]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_text(path, bad[i]);
        st_quarantine q;
        ck_assert_msg(st_quarantine_load(path, &q) == ST_ERR_MALFORMED, "accepted: %s", bad[i]);
        ck_assert_uint_eq(q.n, 0);
        char *text = NULL;
        ck_assert_int_eq(st_read_file(path, 1024, &text, NULL), 0);
        ck_assert_str_eq(text, bad[i]); /* left as it was */
        free(text);
    }
    write_text(path, " \n");
    st_quarantine q;
    ck_assert_int_eq(st_quarantine_load(path, &q), 0); /* blank: empty */
    ck_assert_uint_eq(q.n, 0);
    free(path);
    st_rm_rf(dir);
    free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quarantine");
    TCase *tc = tcase_create("quarantine");
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, malformed_refused);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
