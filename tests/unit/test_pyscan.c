/* SPDX-License-Identifier: MIT */
/* Unit tests of pyscan.c: one test per lexing trap of docs python-imports.md, the import forms,
 * literal importlib calls, encodings, and bounded behaviour on hostile input. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyscan.h"

/* Records as text: "import a.b@1" | "from 2:x.y[a,b]@3" | "from 0:x*@1" | "lib 1:x(pkg)@4". */
typedef struct rec_text {
    char *s;
    size_t len, cap;
    int stop_after; /* > 0: stop after so many records */
    int seen;
} rec_text;

static void rt_put(rec_text *t, const char *s)
{
    size_t n = strlen(s);
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = realloc(t->s, t->cap);
        ck_assert_ptr_nonnull(t->s);
    }
    memcpy(t->s + t->len, s, n + 1);
    t->len += n;
}

static int collect(const st_pyimport *imp, void *userdata)
{
    rec_text *t = userdata;
    char buf[512];
    if (t->len)
        rt_put(t, " | ");
    switch (imp->kind) {
    case ST_PYIMPORT_IMPORT:
        snprintf(buf, sizeof buf, "import %s", imp->module);
        rt_put(t, buf);
        break;
    case ST_PYIMPORT_FROM:
        snprintf(buf, sizeof buf, "from %u:%s", imp->level, imp->module);
        rt_put(t, buf);
        if (imp->star) {
            rt_put(t, "*");
        } else {
            rt_put(t, "[");
            for (size_t i = 0; i < imp->n_names; i++) {
                if (i)
                    rt_put(t, ",");
                rt_put(t, imp->names[i]);
            }
            rt_put(t, "]");
        }
        break;
    case ST_PYIMPORT_IMPORTLIB:
        snprintf(buf, sizeof buf, "lib %u:%s", imp->level, imp->module);
        rt_put(t, buf);
        if (imp->package) {
            snprintf(buf, sizeof buf, "(%s)", imp->package);
            rt_put(t, buf);
        }
        break;
    }
    snprintf(buf, sizeof buf, "@%u", imp->line);
    rt_put(t, buf);
    t->seen++;
    return t->stop_after > 0 && t->seen >= t->stop_after;
}

/* Scans len bytes of src; returns the records as text (caller frees) and the status. */
static char *scan_n(const char *src, size_t len, int *status)
{
    rec_text t = {0};
    char err[256];
    rt_put(&t, "");
    *status = st_pyscan_buffer(src, len, collect, &t, err, sizeof err);
    return t.s;
}

static char *scan(const char *src)
{
    int status;
    char *out = scan_n(src, strlen(src), &status);
    ck_assert_msg(status == ST_PYSCAN_OK, "status %d for: %s", status, src);
    return out;
}

#define ASSERT_SCAN(src, expected)                                                              \
    do {                                                                                        \
        char *got_ = scan(src);                                                                 \
        ck_assert_str_eq(got_, expected);                                                       \
        free(got_);                                                                             \
    } while (0)

static int scan_status(const char *src, size_t len, char *err, size_t errlen)
{
    rec_text t = {0};
    rt_put(&t, "");
    int st = st_pyscan_buffer(src, len, collect, &t, err, errlen);
    free(t.s);
    return st;
}

/* ---- statement forms ---- */

START_TEST(import_forms)
{
    ASSERT_SCAN("import a.b.c as x, d\n", "import a.b.c@1 | import d@1");
    ASSERT_SCAN("import a as b, c.d as e\n", "import a@1 | import c.d@1");
    ASSERT_SCAN("import os;import sys ; import re", "import os@1 | import sys@1 | import re@1");
    ASSERT_SCAN("if x: import y\nelse: import z\n", "import y@1 | import z@2");
    ASSERT_SCAN("import a.\nimport b\n", "import b@2"); /* syntax error: dropped */
    ASSERT_SCAN("import\nimport b\n", "import b@2");
    ASSERT_SCAN("import import b\n", "import b@1");
}
END_TEST

START_TEST(from_forms)
{
    ASSERT_SCAN("from x.y import (a,\n  b as c,\n)\n", "from 0:x.y[a,b]@1");
    ASSERT_SCAN("from . import x\n", "from 1:[x]@1");
    ASSERT_SCAN("from ..a import *\n", "from 2:a*@1");
    ASSERT_SCAN("from ...a.b import c\n", "from 3:a.b[c]@1");
    ASSERT_SCAN("from . . import c\n", "from 2:[c]@1");
    ASSERT_SCAN("from .... import c\n", "from 4:[c]@1");
    ASSERT_SCAN("from a import b, c as d, e\n", "from 0:a[b,c,e]@1");
    ASSERT_SCAN("from\ta\timport\tb\n", "from 0:a[b]@1");
    ASSERT_SCAN("from __future__ import annotations\n", "from 0:__future__[annotations]@1");
}
END_TEST

START_TEST(from_that_is_not_an_import)
{
    ASSERT_SCAN("def g():\n    yield from range(3)\n    yield from x.y\nimport z\n", "import z@4");
    ASSERT_SCAN("raise E from None\nraise E from exc.inner\nimport z\n", "import z@3");
    ASSERT_SCAN("x = (yield from a)\nfrom_ = 1\nfrom b import c\n", "from 0:b[c]@3");
    ASSERT_SCAN("raise X from __import__('a')\n", "lib 0:a@1");
}
END_TEST

START_TEST(nested_statements)
{
    ASSERT_SCAN("def f():\n    import a\nclass C:\n    try:\n        from b import c\n"
                "    except ImportError:\n        pass\n    if TYPE_CHECKING:\n        import d\n",
                "import a@2 | from 0:b[c]@5 | import d@9");
}
END_TEST

START_TEST(line_continuations)
{
    ASSERT_SCAN("import a, \\\n    b\n", "import a@1 | import b@1");
    ASSERT_SCAN("import a, \\\r\n    b\r\nimport c\r\n", "import a@1 | import b@1 | import c@3");
    ASSERT_SCAN("import a, \\\r    b\rimport c\r", "import a@1 | import b@1 | import c@3");
    ASSERT_SCAN("from \\\n a \\\n import \\\n b\n", "from 0:a[b]@1");
    ASSERT_SCAN("x = [\n1,\n2]; import a\n", "import a@3");
    ASSERT_SCAN("x = (1,\r\n 2)\r\nimport a\r\n", "import a@3");
}
END_TEST

/* ---- strings and comments ---- */

START_TEST(all_string_prefixes)
{
    static const char *const prefixes[] = {"", "r", "u", "b", "f", "t", "br", "rb", "fr", "rf",
                                           "tr", "rt"};
    static const char *const quotes[] = {"'", "\"", "'''", "\"\"\""};
    char src[256], pfx[4];
    for (size_t p = 0; p < sizeof prefixes / sizeof *prefixes; p++)
        for (unsigned mask = 0; mask < 4; mask++) {
            size_t n = strlen(prefixes[p]);
            if (mask && (mask >> n))
                continue;
            for (size_t i = 0; i < n; i++)
                pfx[i] = (char)((mask >> i) & 1 ? prefixes[p][i] - 32 : prefixes[p][i]);
            pfx[n] = '\0';
            for (size_t q = 0; q < 4; q++) {
                snprintf(src, sizeof src, "s = %s%simport bad # x%s ; import ok\n", pfx,
                         quotes[q], quotes[q]);
                char *got = scan(src);
                ck_assert_msg(!strcmp(got, "import ok@1"), "%s -> %s", src, got);
                free(got);
            }
        }
}
END_TEST

START_TEST(invalid_prefix_is_a_name)
{
    /* `ub` is not a prefix: a name followed by a string (a syntax error) */
    ASSERT_SCAN("x = ub'import bad'\nimport ok\n", "import ok@2");
}
END_TEST

START_TEST(triple_quotes)
{
    ASSERT_SCAN("s = '''a ' '' \"\"\" import bad\nimport bad\n'''\nimport ok\n", "import ok@4");
    ASSERT_SCAN("\"\"\"doc\n\"import bad\"\n\"\"\"\nimport ok\n", "import ok@4");
    ASSERT_SCAN("s = ''''''; import ok\n", "import ok@1");
    ASSERT_SCAN("s = ''; import ok\n", "import ok@1");
}
END_TEST

START_TEST(backslash_newline_inside_strings)
{
    ASSERT_SCAN("s = \"abc\\\nimport bad\"\nimport ok\n", "import ok@3");
    ASSERT_SCAN("s = 'abc\\\r\nimport bad'\r\nimport ok\r\n", "import ok@3");
    ASSERT_SCAN("s = 'a\\'; import bad'\nimport ok\n", "import ok@2");
}
END_TEST

START_TEST(raw_strings_keep_backslash_quote)
{
    ASSERT_SCAN("s = r\"\\\" import bad\"; import ok\n", "import ok@1");
    ASSERT_SCAN("s = r'\\\\'; import ok\n", "import ok@1");
    ASSERT_SCAN("s = rb'\\'import bad'; import ok\n", "import ok@1");
}
END_TEST

START_TEST(hash_in_strings_and_comments)
{
    ASSERT_SCAN("s = '# no comment'; import ok\n", "import ok@1");
    ASSERT_SCAN("# import bad \\\nimport ok\n", "import ok@2");
    ASSERT_SCAN("x = 1  # import bad\n", "");
    ASSERT_SCAN("# 'unterminated import bad\nimport ok\n", "import ok@2");
}
END_TEST

START_TEST(unterminated_strings_recover_at_line_end)
{
    ASSERT_SCAN("s = 'abc\nimport ok\n", "import ok@2");
    ASSERT_SCAN("s = f'abc {x\nimport ok\n}", ""); /* field swallows it, as 3.12 would */
    ASSERT_SCAN("s = '''abc", "");
    ASSERT_SCAN("s = f'''{", "");
    ASSERT_SCAN("s = f'{x:", "");
}
END_TEST

/* ---- f-strings ---- */

START_TEST(fstring_fields_are_code)
{
    ASSERT_SCAN("s = f\"{__import__('a')} import bad\"\n", "lib 0:a@1");
    ASSERT_SCAN("s = f'{x!r:>{width}} import bad {y=}'; import ok\n", "import ok@1");
    ASSERT_SCAN("s = f'{{import bad}} {{'; import ok\n", "import ok@1");
    ASSERT_SCAN("s = f'}}{{{x}}}'; import ok\n", "import ok@1");
    ASSERT_SCAN("s = f'{ {\"a\": 1}[\"a\"] }'; import ok\n", "import ok@1");
    ASSERT_SCAN("s = f'{x[1:2]:{y}}'; import ok\n", "import ok@1");
    ASSERT_SCAN("s = f'\\N{EM DASH} {x}'; import ok\n", "import ok@1");
    ASSERT_SCAN("s = rf'\\N{x}'; import ok\n", "import ok@1");
    ASSERT_SCAN("s = f'\\{x}'; import ok\n", "import ok@1");
    ASSERT_SCAN("s = f'''{\nx\n}\nimport bad'''\nimport ok\n", "import ok@5");
    ASSERT_SCAN("s = t'{x} import bad'; import ok\n", "import ok@1");
}
END_TEST

START_TEST(fstring_312_quote_reuse)
{
    ASSERT_SCAN("s = f\"{d[\"a\"]} import bad\"; import ok\n", "import ok@1");
    ASSERT_SCAN("s = f\"{f\"{f\"{1}\"}\"} import bad\"; import ok\n", "import ok@1");
    ASSERT_SCAN("s = f\"{\"\\n\".join(x)} import bad\"; import ok\n", "import ok@1");
    ASSERT_SCAN("s = f'''{'''import bad'''}'''; import ok\n", "import ok@1");
    ASSERT_SCAN("s = f\"{x:{\"y\"}} import bad\"; import ok\n", "import ok@1");
    ASSERT_SCAN("s = f\"{', '.join([\n  'a',  # comment import bad\n  'b'])}\"; import ok\n",
                "import ok@3");
}
END_TEST

/* ---- literal importlib calls ---- */

START_TEST(importlib_calls)
{
    ASSERT_SCAN("importlib.import_module(\"a.b\")\n", "lib 0:a.b@1");
    ASSERT_SCAN("import_module('a')\n__import__('b', globals())\n", "lib 0:a@1 | lib 0:b@2");
    ASSERT_SCAN("importlib.import_module('.x', 'pkg')\n", "lib 1:x(pkg)@1");
    ASSERT_SCAN("import_module('..', 'a.b')\n", "lib 2:(a.b)@1");
    ASSERT_SCAN("import_module('a' 'b.c')\n", "lib 0:ab.c@1");
    ASSERT_SCAN("import_module('a', __package__)\n", "lib 0:a@1");
    ASSERT_SCAN("import_module('a', )\n", "lib 0:a@1");
    ASSERT_SCAN("importlib . import_module ( 'a' )\n", "lib 0:a@1");
    /* not literal, or not these functions: nothing */
    ASSERT_SCAN("import_module('.x')\nimport_module('.x', pkg)\n__import__('.x')\n", "");
    ASSERT_SCAN("import_module(f'x')\nimport_module(b'x')\nimport_module('a' + b)\n", "");
    ASSERT_SCAN("import_module('a\\x2eb')\nimport_module(name='a')\nimport_module(x)\n", "");
    ASSERT_SCAN("x.__import__('a')\nself.import_module('a')\nm.importlib.import_module('a')\n", "");
    ASSERT_SCAN("import_module('')\nimport_module(*a)\n", "");
    ASSERT_SCAN("import_module(r'a')\n", "lib 0:a@1");
    ASSERT_SCAN("# importlib.import_module('a')\ns = \"__import__('b')\"\n", "");
}
END_TEST

/* ---- encodings ---- */

START_TEST(utf8_bom_and_cookies)
{
    ASSERT_SCAN("\xEF\xBB\xBFimport a\n", "import a@1");
    ASSERT_SCAN("\xEF\xBB\xBF# coding: utf-8\nimport a\n", "import a@2");
    ASSERT_SCAN("#!/usr/bin/env python\n# -*- coding: latin-1 -*-\nimport caf\xE9\n",
                "import caf\xC3\xA9@3");
    ASSERT_SCAN("# vim: set fileencoding=iso-8859-15 :\nimport a\n", "import a@2");
    ASSERT_SCAN("# coding=utf8\nimport \xC3\xA9t\xC3\xA9\n", "import \xC3\xA9t\xC3\xA9@2");
    /* cp1252 is accepted, but a non-ASCII name cannot be matched: dropped */
    ASSERT_SCAN("# coding: cp1252\nimport caf\xE9, a\n", "import a@2");
    /* a cookie on line 2 after a code line does not count: the file is UTF-8 */
    char err[256];
    const char *late = "import a\n# coding: latin-1\nimport caf\xE9\n";
    ck_assert_int_eq(scan_status(late, strlen(late), err, sizeof err), ST_PYSCAN_EDECODE);
    /* a cookie on line 3 does not count either */
    const char *third = "#\n#\n# coding: shift_jis\nimport a\n";
    ck_assert_int_eq(scan_status(third, strlen(third), err, sizeof err), ST_PYSCAN_OK);
}
END_TEST

START_TEST(rejected_encodings)
{
    char err[256];
    static const char *const bad_cookies[] = {"utf-16", "UTF_16_LE", "utf-32", "shift_jis", "sjis",
                                              "cp932", "big5", "gbk", "gb18030", "euc-jp",
                                              "no-such-codec"};
    for (size_t i = 0; i < sizeof bad_cookies / sizeof *bad_cookies; i++) {
        char src[128];
        snprintf(src, sizeof src, "# -*- coding: %s -*-\nimport a\n", bad_cookies[i]);
        ck_assert_int_eq(scan_status(src, strlen(src), err, sizeof err), ST_PYSCAN_EENCODING);
        ck_assert_msg(strstr(err, "line 1") && strstr(err, bad_cookies[i]), "%s", err);
    }
    static const char utf16[] = "\xFF\xFEi\0m\0p\0";
    ck_assert_int_eq(scan_status(utf16, sizeof utf16 - 1, err, sizeof err), ST_PYSCAN_EENCODING);
    static const char bom_latin1[] = "\xEF\xBB\xBF# coding: latin-1\nimport a\n";
    ck_assert_int_eq(scan_status(bom_latin1, sizeof bom_latin1 - 1, err, sizeof err),
                     ST_PYSCAN_EENCODING);
    static const char nul[] = "import a\nx = 1\0\n";
    ck_assert_int_eq(scan_status(nul, sizeof nul - 1, err, sizeof err), ST_PYSCAN_ENUL);
    ck_assert_msg(strstr(err, "line 2") != NULL, "%s", err);
    static const char bad_utf8[] = "import a\ns = '\xC3\x28'\n";
    ck_assert_int_eq(scan_status(bad_utf8, sizeof bad_utf8 - 1, err, sizeof err),
                     ST_PYSCAN_EDECODE);
    static const char surrogate[] = "s = '\xED\xA0\x80'\n";
    ck_assert_int_eq(scan_status(surrogate, sizeof surrogate - 1, err, sizeof err),
                     ST_PYSCAN_EDECODE);
    static const char ascii_high[] = "# coding: ascii\ns = '\xE9'\n";
    ck_assert_int_eq(scan_status(ascii_high, sizeof ascii_high - 1, err, sizeof err),
                     ST_PYSCAN_EDECODE);
    st_pyenc enc;
    size_t off;
    ck_assert_int_eq(st_pyscan_detect_encoding("\xEF\xBB\xBFx", 4, &enc, &off, NULL, 0), 0);
    ck_assert_int_eq(enc, ST_PYENC_UTF8);
    ck_assert_uint_eq(off, 3);
    ck_assert_str_eq(st_pyscan_strerror(ST_PYSCAN_ENUL), "source contains a NUL byte");
}
END_TEST

START_TEST(nfkc_names)
{
    ASSERT_SCAN("import \xEF\xBD\x86\xEF\xBD\x95\xEF\xBD\x8C\xEF\xBD\x8C\n", "import full@1");
    ASSERT_SCAN("from \xEF\xBD\x81 import \xEF\xBC\xBFx\n", "from 0:a[_x]@1");
    ASSERT_SCAN("import \xEF\xAC\x81le\n", "import file@1");           /* U+FB01 fi */
    ASSERT_SCAN("import \xF0\x9D\x90\x9A\xF0\x9D\x9F\x8F\n", "import a1@1"); /* bold a, 1 */
    ASSERT_SCAN("import caf\xC3\xA9\n", "import caf\xC3\xA9@1");        /* unchanged */
    /* importlib strings are not normalised */
    ASSERT_SCAN("import_module('\xEF\xBD\x86')\n", "lib 0:\xEF\xBD\x86@1");
}
END_TEST

/* ---- bounds ---- */

START_TEST(deep_brackets_are_a_counter)
{
    size_t n = 10000;
    char *src = malloc(2 * n + 64);
    ck_assert_ptr_nonnull(src);
    char *p = src;
    p += sprintf(p, "x = ");
    memset(p, '(', n);
    p += n;
    p += sprintf(p, "1");
    memset(p, ')', n);
    p += n;
    sprintf(p, "\nimport ok\n");
    ASSERT_SCAN(src, "import ok@2");
    /* unbalanced: newlines inside the open brackets never end a statement; no crash */
    memset(src, '[', 2 * n);
    strcpy(src + 2 * n, "\nimport ok\n");
    ASSERT_SCAN(src, "import ok@2");
    memset(src, ')', 2 * n);
    ASSERT_SCAN(src, "import ok@2");
    free(src);
}
END_TEST

START_TEST(ten_megabyte_line)
{
    size_t n = 10u << 20;
    char *src = malloc(n + 64);
    ck_assert_ptr_nonnull(src);
    memcpy(src, "x = ", 4);
    for (size_t i = 4; i < n; i += 2)
        memcpy(src + i, "1+", 2);
    strcpy(src + n, "1; import ok");
    int status;
    char *got = scan_n(src, strlen(src), &status);
    ck_assert_int_eq(status, ST_PYSCAN_OK);
    ck_assert_str_eq(got, "import ok@1");
    free(got);
    /* one 10 MB name: dropped, no crash */
    memset(src, 'a', n);
    memcpy(src, "import ", 7);
    strcpy(src + n, ", ok");
    got = scan_n(src, strlen(src), &status);
    ck_assert_int_eq(status, ST_PYSCAN_OK);
    ck_assert_str_eq(got, "import ok@1");
    free(got);
    /* one 10 MB string */
    memset(src, 'a', n);
    memcpy(src, "s = '", 5);
    strcpy(src + n, "'; import ok");
    got = scan_n(src, strlen(src), &status);
    ck_assert_int_eq(status, ST_PYSCAN_OK);
    ck_assert_str_eq(got, "import ok@1");
    free(got);
    free(src);
}
END_TEST

START_TEST(fstring_depth_is_limited)
{
    size_t depth = ST_PYSCAN_MAX_FSTRING_DEPTH;
    char *src = malloc(8 * depth + 64);
    ck_assert_ptr_nonnull(src);
    /* depth levels: accepted */
    char *p = src;
    p += sprintf(p, "import a\ns = ");
    for (size_t i = 0; i < depth; i++)
        p += sprintf(p, "f'{");
    p += sprintf(p, "1");
    for (size_t i = 0; i < depth; i++)
        p += sprintf(p, "}'");
    sprintf(p, "\nimport ok\n");
    ASSERT_SCAN(src, "import a@1 | import ok@3");
    /* one more: ST_PYSCAN_EDEPTH after the earlier records */
    p = src;
    p += sprintf(p, "import a\ns = ");
    for (size_t i = 0; i <= depth; i++)
        p += sprintf(p, "f'{");
    int status;
    char *got = scan_n(src, strlen(src), &status);
    ck_assert_int_eq(status, ST_PYSCAN_EDEPTH);
    ck_assert_str_eq(got, "import a@1");
    free(got);
    free(src);
}
END_TEST

START_TEST(long_names_are_dropped)
{
    char src[600];
    memset(src, 'a', sizeof src);
    memcpy(src, "import ", 7);
    strcpy(src + 7 + 256, ", ok\n"); /* a 256-byte component: no file can have that name */
    ASSERT_SCAN(src, "import ok@1");
}
END_TEST

START_TEST(callback_can_stop)
{
    rec_text t = {.stop_after = 1};
    rt_put(&t, "");
    const char *src = "import a\nimport b\n";
    ck_assert_int_eq(st_pyscan_buffer(src, strlen(src), collect, &t, NULL, 0),
                     ST_PYSCAN_ECALLBACK);
    ck_assert_str_eq(t.s, "import a@1");
    free(t.s);
}
END_TEST

START_TEST(empty_and_tiny_inputs)
{
    int status;
    static const char *const tiny[] = {"", "\n", "\r", "\\", "'", "f'", "f'{", "#", "import",
                                       "from", "from .", "from . import", "import_module(",
                                       "\xEF\xBB\xBF", "\xEF\xBB", "}", ":", "f'{x!", "rb"};
    for (size_t i = 0; i < sizeof tiny / sizeof *tiny; i++) {
        char *got = scan_n(tiny[i], strlen(tiny[i]), &status);
        ck_assert_msg(status == ST_PYSCAN_OK || status == ST_PYSCAN_EDECODE, "%s", tiny[i]);
        free(got);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pyscan");
    TCase *tc = tcase_create("pyscan");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, import_forms);
    tcase_add_test(tc, from_forms);
    tcase_add_test(tc, from_that_is_not_an_import);
    tcase_add_test(tc, nested_statements);
    tcase_add_test(tc, line_continuations);
    tcase_add_test(tc, all_string_prefixes);
    tcase_add_test(tc, invalid_prefix_is_a_name);
    tcase_add_test(tc, triple_quotes);
    tcase_add_test(tc, backslash_newline_inside_strings);
    tcase_add_test(tc, raw_strings_keep_backslash_quote);
    tcase_add_test(tc, hash_in_strings_and_comments);
    tcase_add_test(tc, unterminated_strings_recover_at_line_end);
    tcase_add_test(tc, fstring_fields_are_code);
    tcase_add_test(tc, fstring_312_quote_reuse);
    tcase_add_test(tc, importlib_calls);
    tcase_add_test(tc, utf8_bom_and_cookies);
    tcase_add_test(tc, rejected_encodings);
    tcase_add_test(tc, nfkc_names);
    tcase_add_test(tc, deep_brackets_are_a_counter);
    tcase_add_test(tc, ten_megabyte_line);
    tcase_add_test(tc, fstring_depth_is_limited);
    tcase_add_test(tc, long_names_are_dropped);
    tcase_add_test(tc, callback_can_stop);
    tcase_add_test(tc, empty_and_tiny_inputs);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
