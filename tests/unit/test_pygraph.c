/* SPDX-License-Identifier: MIT */
/* Unit tests of pygraph.c: the fixture tree against its hand-written EXPECTED edge list, the
 * queries, and generated trees with skip dirs, symlink loops and files that must be reported. */
#include "config.h"

#include "unit.h"

#include <pthread.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pygraph.h"

#ifndef PYGRAPH_FIXTURE_DIR
#define PYGRAPH_FIXTURE_DIR "tests/fixtures/pygraph"
#endif

/* The pygraph-dump text of a graph. */
static char *dump(const st_pygraph *g)
{
    st_buf b = {0};
    for (uint32_t i = 0; i < st_pygraph_count(g); i++) {
        const uint32_t *deps;
        size_t n = st_pygraph_deps(g, i, &deps);
        if (n == 0)
            st_buf_printf(&b, "%s\n", st_pygraph_path(g, i));
        for (size_t k = 0; k < n; k++)
            st_buf_printf(&b, "%s -> %s\n", st_pygraph_path(g, i), st_pygraph_path(g, deps[k]));
    }
    ck_assert_int_eq(b.oom, 0);
    return b.data ? st_buf_steal(&b) : strdup("");
}

/* Errors reported during a build, as "path: message\n" lines. */
static void collect_error(const char *path, const char *message, void *userdata)
{
    st_buf_printf(userdata, "%s: %s\n", path, message);
}

static st_pygraph *build(const char *root, unsigned threads, st_buf *errors)
{
    st_pygraph_options opts = {.threads = threads, .on_error = collect_error, .userdata = errors};
    st_pygraph *g = NULL;
    ck_assert_int_eq(st_pygraph_build(root, &opts, &g), ST_PYGRAPH_OK);
    ck_assert_ptr_nonnull(g);
    return g;
}

/* Equal texts, or a failure naming the first differing line (check's messages are bounded). */
static void assert_same_lines(const char *got, const char *expected)
{
    unsigned line = 1;
    while (*got && *expected) {
        size_t g = strcspn(got, "\n"), e = strcspn(expected, "\n");
        ck_assert_msg(g == e && !memcmp(got, expected, g),
                      "line %u: got \"%.*s\", expected \"%.*s\"", line, (int)(g < 300 ? g : 300),
                      got, (int)(e < 300 ? e : 300), expected);
        got += g + (got[g] == '\n');
        expected += e + (expected[e] == '\n');
        line++;
    }
    ck_assert_msg(!*got && !*expected, "line %u: %s", line,
                  *got ? "unexpected extra lines" : "expected lines missing");
}

static void write_bytes(const char *dir, const char *name, const void *data, size_t len)
{
    char *path = st_path_join(dir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    ck_assert_int_eq(st_mkdir_p(path, 0755), 0);
    *slash = '/';
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    free(path);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    write_bytes(dir, name, text, strlen(text));
}

static uint32_t node(const st_pygraph *g, const char *path)
{
    uint32_t id = st_pygraph_find(g, path);
    ck_assert_msg(id != ST_PYGRAPH_NONE, "no node %s", path);
    return id;
}

static bool has_edge(const st_pygraph *g, const char *from, const char *to)
{
    const uint32_t *deps;
    size_t n = st_pygraph_deps(g, node(g, from), &deps);
    uint32_t t = node(g, to);
    for (size_t i = 0; i < n; i++)
        if (deps[i] == t)
            return true;
    return false;
}

/* ---- the fixture tree ---- */

START_TEST(fixture_matches_expected)
{
    char *expected = NULL;
    ck_assert_int_eq(st_read_file(PYGRAPH_FIXTURE_DIR "/EXPECTED", 1 << 20, &expected, NULL), 0);
    st_buf errors = {0};
    for (unsigned threads = 1; threads <= 4; threads += 3) {
        st_pygraph *g = build(PYGRAPH_FIXTURE_DIR, threads, &errors);
        char *got = dump(g);
        assert_same_lines(got, expected);
        ck_assert_uint_eq(st_pygraph_n_errors(g), 0);
        free(got);
        st_pygraph_free(g);
    }
    ck_assert_ptr_null(errors.data);
    free(expected);
}
END_TEST

START_TEST(fixture_queries)
{
    st_buf errors = {0};
    st_pygraph *g = build(PYGRAPH_FIXTURE_DIR, 0, &errors);
    size_t n = st_pygraph_count(g);
    ck_assert_uint_gt(n, 40);
    ck_assert_uint_eq(st_pygraph_find(g, "stub.pyi"), ST_PYGRAPH_NONE);
    ck_assert_uint_eq(st_pygraph_find(g, "build/skipped.py"), ST_PYGRAPH_NONE);
    ck_assert_uint_eq(st_pygraph_find(g, "venvdir/lib.py"), ST_PYGRAPH_NONE);
    ck_assert_uint_eq(st_pygraph_find(g, "site-packages/sp.py"), ST_PYGRAPH_NONE);
    ck_assert_ptr_null(st_pygraph_path(g, (uint32_t)n));
    for (uint32_t i = 0; i + 1 < n; i++)
        ck_assert_int_lt(strcmp(st_pygraph_path(g, i), st_pygraph_path(g, i + 1)), 0);
    ck_assert(st_pygraph_is_test(g, node(g, "tests/test_main.py")));
    ck_assert(st_pygraph_is_test(g, node(g, "tests/inner_test.py")));
    ck_assert(st_pygraph_is_test(g, node(g, "tests/conftest.py")));
    ck_assert(st_pygraph_is_conftest(g, node(g, "tests/conftest.py")));
    ck_assert(!st_pygraph_is_test(g, node(g, "tests/helpers.py")));
    /* reverse deps: sorted and consistent with deps */
    const uint32_t *r;
    size_t nr = st_pygraph_rdeps(g, node(g, "app/core.py"), &r);
    ck_assert_uint_gt(nr, 3);
    for (size_t i = 0; i < nr; i++) {
        if (i)
            ck_assert_uint_lt(r[i - 1], r[i]);
        ck_assert(has_edge(g, st_pygraph_path(g, r[i]), "app/core.py"));
    }
    /* reachable from tests */
    uint8_t *mark = calloc(n, 1);
    st_pygraph_step *order = calloc(n, sizeof *order);
    long reached = st_pygraph_reach_tests(g, mark, order);
    ck_assert_int_gt(reached, 5);
    ck_assert(mark[node(g, "main.py")]);
    ck_assert(mark[node(g, "app/sub/deep.py")]);
    ck_assert(mark[node(g, "tests/fixtures_mod.py")]);
    ck_assert(!mark[node(g, "dyn.py")]);
    ck_assert(!mark[node(g, "bad/__init__.py")]);
    for (long i = 0; i < reached; i++) {
        if (order[i].parent == ST_PYGRAPH_NONE)
            ck_assert(st_pygraph_is_test(g, order[i].node));
        else
            ck_assert(has_edge(g, st_pygraph_path(g, order[i].parent),
                               st_pygraph_path(g, order[i].node)));
    }
    /* closure of one node with parents */
    uint32_t start = node(g, "app/sub/deep.py");
    reached = st_pygraph_reach(g, &start, 1, mark, order);
    ck_assert_int_eq(reached, 8); /* deep, __init__, core, ns/mod, sub, util, helper, sibling */
    ck_assert_uint_eq(order[0].node, start);
    ck_assert_uint_eq(order[0].parent, ST_PYGRAPH_NONE);
    ck_assert_int_eq(st_pygraph_reach(g, NULL, 1, mark, NULL), ST_PYGRAPH_EINVAL);
    /* roots: nothing imports them */
    uint32_t *roots = calloc(n, sizeof *roots);
    size_t nroots = st_pygraph_roots(g, roots);
    bool saw_main = false, saw_dyn = false;
    for (size_t i = 0; i < nroots; i++) {
        const uint32_t *ids;
        ck_assert_uint_eq(st_pygraph_rdeps(g, roots[i], &ids), 0);
        saw_main |= !strcmp(st_pygraph_path(g, roots[i]), "main.py");
        saw_dyn |= !strcmp(st_pygraph_path(g, roots[i]), "dyn.py");
    }
    ck_assert(!saw_main && saw_dyn);
    free(roots);
    free(order);
    free(mark);
    st_pygraph_free(g);
}
END_TEST

/* ---- concurrent readers ---- */

static void *reader(void *arg)
{
    const st_pygraph *g = arg;
    uint8_t *mark = malloc(st_pygraph_count(g));
    void *failed = mark ? NULL : (void *)1;
    for (int round = 0; round < 200 && !failed; round++)
        if (st_pygraph_reach_tests(g, mark, NULL) <= 0 ||
            st_pygraph_find(g, "main.py") == ST_PYGRAPH_NONE)
            failed = (void *)1;
    free(mark);
    return failed;
}

START_TEST(queries_from_many_threads)
{
    st_buf errors = {0};
    st_pygraph *g = build(PYGRAPH_FIXTURE_DIR, 2, &errors);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, reader, g), 0);
    for (int i = 0; i < 4; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        ck_assert_ptr_null(ret);
    }
    st_pygraph_free(g);
}
END_TEST

/* ---- generated trees ---- */

START_TEST(skips_dirs_and_survives_symlink_loops)
{
    char *root = unit_tmpdir();
    write_text(root, "main.py", "import a, b, c, d, e, f, g, linked, outside\n");
    write_text(root, "a.py", "");
    write_text(root, ".git/b.py", "");
    write_text(root, "__pycache__/c.py", "");
    write_text(root, "env/pyvenv.cfg", "home = /usr/bin\n");
    write_text(root, "env/d.py", "");
    write_text(root, "sub/site-packages/e.py", "");
    write_text(root, "custom/f.py", "");
    write_text(root, "g/__init__.py", "from . import loop\n");
    char *path = st_path_join(root, "g/loop");
    ck_assert_int_eq(symlink("..", path), 0); /* a directory loop: never followed */
    free(path);
    path = st_path_join(root, "self");
    ck_assert_int_eq(symlink(".", path), 0);
    free(path);
    path = st_path_join(root, "linked.py");
    ck_assert_int_eq(symlink("a.py", path), 0); /* a file symlink inside the root: followed */
    free(path);
    char *outside = unit_tmpdir();
    write_text(outside, "outside.py", "");
    char *target = st_path_join(outside, "outside.py");
    path = st_path_join(root, "outside.py");
    ck_assert_int_eq(symlink(target, path), 0); /* escapes the root: ignored */
    free(path);
    free(target);
    st_buf errors = {0};
    static const char *const skip[] = {".git", "__pycache__", "custom", NULL};
    st_pygraph_options opts = {.skip_dirs = skip, .on_error = collect_error, .userdata = &errors};
    st_pygraph *g = NULL;
    ck_assert_int_eq(st_pygraph_build(root, &opts, &g), ST_PYGRAPH_OK);
    char *got = dump(g);
    ck_assert_str_eq(got, "a.py\n"
                          "g/__init__.py\n"
                          "linked.py\n"
                          "main.py -> a.py\n"
                          "main.py -> g/__init__.py\n"
                          "main.py -> linked.py\n");
    ck_assert_ptr_null(errors.data);
    free(got);
    st_pygraph_free(g);
    st_rm_rf(root);
    st_rm_rf(outside);
    free(root);
    free(outside);
}
END_TEST

START_TEST(bad_files_are_reported_once_and_skipped)
{
    char *root = unit_tmpdir();
    write_text(root, "main.py", "import nul, utf16, sjis, big, crlf, cr, deep, wide\n");
    write_bytes(root, "nul.py", "import main\n\0\n", 14);
    write_bytes(root, "utf16.py", "\xFF\xFEi\0m\0p\0", 8);
    write_text(root, "sjis.py", "# -*- coding: shift_jis -*-\nimport main\n");
    write_text(root, "big.py", "import main\n");
    write_text(root, "crlf.py", "import main, \\\r\n  cr\r\n");
    write_text(root, "cr.py", "x = (1,\r 2)\rimport main\r");
    /* a 10 MB one-line file and 10,000 nested brackets */
    size_t n = 10u << 20;
    char *big = malloc(n + 32);
    ck_assert_ptr_nonnull(big);
    memcpy(big, "x = ", 4);
    for (size_t i = 4; i < n; i += 2)
        memcpy(big + i, "1+", 2);
    strcpy(big + n, "1; import main");
    write_text(root, "wide.py", big);
    memset(big, '(', 10000);
    strcpy(big + 10000, "\nimport main\n");
    write_text(root, "deep.py", big);
    free(big);
    st_buf errors = {0};
    st_pygraph_options opts = {.max_file_bytes = 16u << 20, .on_error = collect_error,
                               .userdata = &errors};
    st_pygraph *g = NULL;
    /* big.py is over a 12-byte limit in a second build */
    ck_assert_int_eq(st_pygraph_build(root, &opts, &g), ST_PYGRAPH_OK);
    ck_assert_str_eq(errors.data, "nul.py: line 2: source contains a NUL byte\n"
                                  "sjis.py: line 1: unsupported source encoding 'shift_jis'\n"
                                  "utf16.py: line 1: UTF-16/UTF-32 byte order mark\n");
    ck_assert_uint_eq(st_pygraph_n_errors(g), 3);
    ck_assert(has_edge(g, "crlf.py", "main.py") && has_edge(g, "crlf.py", "cr.py"));
    ck_assert(has_edge(g, "cr.py", "main.py"));
    ck_assert(has_edge(g, "wide.py", "main.py"));
    ck_assert(has_edge(g, "deep.py", "main.py"));
    ck_assert(has_edge(g, "main.py", "nul.py")); /* still a node, just without edges */
    const uint32_t *deps;
    ck_assert_uint_eq(st_pygraph_deps(g, node(g, "nul.py"), &deps), 0);
    ck_assert_uint_ge(st_pygraph_bytes(g), 10u << 20);
    st_pygraph_free(g);
    st_buf_reset(&errors);
    opts.max_file_bytes = 12;
    ck_assert_int_eq(st_pygraph_build(root, &opts, &g), ST_PYGRAPH_OK);
    ck_assert_contains(errors.data, "wide.py: file larger than 12 bytes");
    ck_assert_contains(errors.data, "main.py: file larger than 12 bytes");
    st_pygraph_free(g);
    if (geteuid() != 0) { /* root reads everything */
        st_buf_reset(&errors);
        char *p = st_path_join(root, "big.py");
        ck_assert_int_eq(chmod(p, 0), 0);
        opts.max_file_bytes = 0;
        ck_assert_int_eq(st_pygraph_build(root, &opts, &g), ST_PYGRAPH_OK);
        ck_assert_contains(errors.data, "big.py: Permission denied");
        st_pygraph_free(g);
        free(p);
    }
    st_buf_free(&errors);
    st_rm_rf(root);
    free(root);
}
END_TEST

START_TEST(src_layout_and_test_rootdir)
{
    char *root = unit_tmpdir();
    write_text(root, "src/pkg/__init__.py", "");
    write_text(root, "src/pkg/mod.py", "from . import other\nfrom .. import nothing\n");
    write_text(root, "src/pkg/other.py", "");
    write_text(root, "tests/test_pkg.py", "import pkg.mod\nimport helper\n");
    write_text(root, "tests/helper.py", "");
    write_text(root, "tool.py", "import helper\n");
    st_buf errors = {0};
    st_pygraph *g = build(root, 0, &errors);
    char *got = dump(g);
    ck_assert_str_eq(got, "src/pkg/__init__.py\n"
                          "src/pkg/mod.py -> src/pkg/__init__.py\n"
                          "src/pkg/mod.py -> src/pkg/other.py\n"
                          "src/pkg/other.py\n"
                          "tests/helper.py\n"
                          "tests/test_pkg.py -> src/pkg/__init__.py\n"
                          "tests/test_pkg.py -> src/pkg/mod.py\n"
                          "tests/test_pkg.py -> tests/helper.py\n"
                          "tool.py\n");
    free(got);
    st_pygraph_free(g);
    /* src/ with __init__.py is a package, not a layout */
    write_text(root, "src/__init__.py", "");
    g = build(root, 0, &errors);
    ck_assert(!has_edge(g, "tests/test_pkg.py", "src/pkg/mod.py"));
    st_pygraph_free(g);
    st_rm_rf(root);
    free(root);
}
END_TEST

START_TEST(configured_source_roots)
{
    /* lib/ is not a src layout by name: only the source_roots option puts it on sys.path */
    char *root = unit_tmpdir();
    write_text(root, "lib/pkg/__init__.py", "");
    write_text(root, "lib/pkg/mod.py", "from . import other\nimport pkg.other\n");
    write_text(root, "lib/pkg/other.py", "");
    write_text(root, "lib/deep/inner/solo.py", "import pkg\n");
    write_text(root, "tests/test_pkg.py", "import pkg.mod\nimport solo\n");
    st_buf errors = {0};
    st_pygraph *g = build(root, 0, &errors);
    ck_assert(!has_edge(g, "tests/test_pkg.py", "lib/pkg/mod.py"));
    st_pygraph_free(g);
    /* missing roots are ignored, duplicates and "./x/" spellings fold, the deepest root names a
     * module (lib/deep/inner/solo.py is "solo", not "deep.inner.solo") */
    const char *const roots[] = {"no/such/dir", "./lib/", "lib", "lib/deep/inner", NULL};
    st_pygraph_options opts = {.on_error = collect_error, .userdata = &errors,
                               .source_roots = roots};
    ck_assert_int_eq(st_pygraph_build(root, &opts, &g), ST_PYGRAPH_OK);
    char *got = dump(g);
    ck_assert_str_eq(got, "lib/deep/inner/solo.py -> lib/pkg/__init__.py\n"
                          "lib/pkg/__init__.py\n"
                          "lib/pkg/mod.py -> lib/pkg/__init__.py\n"
                          "lib/pkg/mod.py -> lib/pkg/other.py\n"
                          "lib/pkg/other.py\n"
                          "tests/test_pkg.py -> lib/deep/inner/solo.py\n"
                          "tests/test_pkg.py -> lib/pkg/__init__.py\n"
                          "tests/test_pkg.py -> lib/pkg/mod.py\n");
    free(got);
    st_pygraph_free(g);
    ck_assert_uint_eq(errors.len, 0);
    st_buf_free(&errors);
    st_rm_rf(root);
    free(root);
}
END_TEST

/* Sets path's modification time seconds_ago into the past (files written within two seconds of
 * a build are not cached: their times cannot yet tell a later edit apart). */
static void age(const char *root, const char *rel, long seconds_ago)
{
    char *path = st_path_join(root, rel);
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= seconds_ago;
    ts[1] = ts[0];
    ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
    free(path);
}

static st_pygraph *build_cached(const char *root, const char *cache, st_buf *errors)
{
    st_pygraph_options opts = {.on_error = collect_error, .userdata = errors,
                               .scan_cache = cache};
    st_pygraph *g = NULL;
    ck_assert_int_eq(st_pygraph_build(root, &opts, &g), ST_PYGRAPH_OK);
    return g;
}

START_TEST(scan_cache)
{
    char *root = unit_tmpdir(), *dir = unit_tmpdir();
    char *cache = st_path_join(dir, "pyscan_cache.bin");
    write_text(root, "a.py", "import b\nfrom pkg import x, y as z\n");
    write_text(root, "b.py", "from . import c\nimportlib.import_module('.x', 'pkg')\n");
    write_text(root, "c.py", "");
    write_text(root, "pkg/__init__.py", "from .x import *\n");
    write_text(root, "pkg/x.py", "");
    write_text(root, "pkg/y.py", "import c\n");
    static const char *const files[] = {"a.py", "b.py", "c.py", "pkg/__init__.py", "pkg/x.py",
                                        "pkg/y.py"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        age(root, files[i], 100);
    st_buf errors = {0};
    st_pygraph *g = build(root, 0, &errors);
    char *plain = dump(g);
    uint64_t bytes = st_pygraph_bytes(g);
    st_pygraph_free(g);

    /* first build: everything scanned and recorded */
    g = build_cached(root, cache, &errors);
    char *got = dump(g);
    ck_assert_str_eq(got, plain);
    ck_assert_uint_eq(st_pygraph_n_cached(g), 0);
    st_pygraph_free(g);
    free(got);
    struct stat st;
    ck_assert_int_eq(stat(cache, &st), 0);
    /* second: nothing read, the same graph */
    g = build_cached(root, cache, &errors);
    got = dump(g);
    ck_assert_str_eq(got, plain);
    ck_assert_uint_eq(st_pygraph_n_cached(g), 6);
    ck_assert_uint_eq(st_pygraph_bytes(g), bytes); /* the cached sizes */
    st_pygraph_free(g);
    free(got);
    /* an edited file (same size, older time even) is scanned again: its change and inode
     * times differ */
    write_text(root, "c.py", "");
    write_text(root, "a.py", "import c\nfrom pkg import x, y as w\n");
    age(root, "a.py", 200);
    age(root, "c.py", 200);
    g = build_cached(root, cache, &errors);
    got = dump(g);
    ck_assert_uint_eq(st_pygraph_n_cached(g), 4);
    ck_assert_msg(strstr(got, "a.py -> c.py\n") && !strstr(got, "a.py -> b.py\n"), "%s", got);
    st_pygraph_free(g);
    free(got);
    /* a file modified just now is scanned but not recorded */
    write_text(root, "pkg/x.py", "import b\n");
    g = build_cached(root, cache, &errors);
    ck_assert_uint_eq(st_pygraph_n_cached(g), 5);
    st_pygraph_free(g);
    g = build_cached(root, cache, &errors);
    ck_assert_uint_eq(st_pygraph_n_cached(g), 5);
    got = dump(g);
    ck_assert_msg(strstr(got, "pkg/x.py -> b.py\n") != NULL, "%s", got);
    st_pygraph_free(g);
    free(got);
    /* a removed file leaves the cache; a damaged cache is ignored whole */
    age(root, "pkg/x.py", 100);
    char *gone = st_path_join(root, "pkg/y.py");
    ck_assert_int_eq(unlink(gone), 0);
    free(gone);
    g = build_cached(root, cache, &errors);
    st_pygraph_free(g);
    ck_assert_int_eq(stat(cache, &st), 0);
    ck_assert_int_eq(truncate(cache, st.st_size / 2), 0);
    g = build_cached(root, cache, &errors);
    ck_assert_uint_eq(st_pygraph_n_cached(g), 0);
    char *fresh = dump(g);
    st_pygraph_free(g);
    g = build(root, 0, &errors);
    got = dump(g);
    ck_assert_str_eq(fresh, got);
    st_pygraph_free(g);
    g = build_cached(root, cache, &errors);
    ck_assert_uint_eq(st_pygraph_n_cached(g), 5);
    st_pygraph_free(g);
    ck_assert_ptr_null(errors.data);
    free(got);
    free(fresh);
    free(plain);
    free(cache);
    st_rm_rf(root);
    st_rm_rf(dir);
    free(root);
    free(dir);
}
END_TEST

START_TEST(bad_roots)
{
    st_pygraph *g = (st_pygraph *)1;
    ck_assert_int_eq(st_pygraph_build("/nonexistent/root", NULL, &g), ST_PYGRAPH_EROOT);
    ck_assert_ptr_null(g);
    ck_assert_int_eq(st_pygraph_build(NULL, NULL, &g), ST_PYGRAPH_EINVAL);
    char *root = unit_tmpdir();
    ck_assert_int_eq(st_pygraph_build(root, NULL, &g), ST_PYGRAPH_OK);
    ck_assert_uint_eq(st_pygraph_count(g), 0);
    uint8_t mark;
    ck_assert_int_eq(st_pygraph_reach_tests(g, &mark, NULL), 0);
    st_pygraph_free(g);
    st_rm_rf(root);
    free(root);
    ck_assert_str_eq(st_pygraph_strerror(ST_PYGRAPH_EROOT), "the project root cannot be opened");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pygraph");
    TCase *tc = tcase_create("pygraph");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fixture_matches_expected);
    tcase_add_test(tc, fixture_queries);
    tcase_add_test(tc, queries_from_many_threads);
    tcase_add_test(tc, skips_dirs_and_survives_symlink_loops);
    tcase_add_test(tc, bad_files_are_reported_once_and_skipped);
    tcase_add_test(tc, src_layout_and_test_rootdir);
    tcase_add_test(tc, configured_source_roots);
    tcase_add_test(tc, bad_roots);
    tcase_add_test(tc, scan_cache);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
