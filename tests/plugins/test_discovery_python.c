/* SPDX-License-Identifier: MIT */
/* Check suite of discovery-python: every scenario of issue 3's acceptance list over the fixture
 * trees in tests/fixtures/discovery (orphans with and without recursion, orphan roots with a
 * cycle, tested code, known modules, legacy markers, duplicates, same-named modules, namespace
 * packages, isolated modules with helpers), the tokenizer and the module_map reader, and bad
 * input generated at run time. Includes the plugin's .c files (collectd style) and drives
 * discover() through the core's real host services, whose graph is the core's pygraph. */
#include "config.h"

#include "../../plugins/discovery-python/discovery_python.c"
#include "../../plugins/discovery-python/pytokens.c"
#include "../../plugins/common/modulemap.c"

#include "plugin_services.h"
#include "log.h"
#include "unit.h"

#include <libconfig.h>
#include <sys/stat.h>

#ifndef DISCOVERY_FIXTURE_DIR
#error DISCOVERY_FIXTURE_DIR must name tests/fixtures/discovery
#endif

/* ---- what the sink received ------------------------------------------------------------------ */

typedef struct got_module {
    char *path;
    st_module_origin origin;
    st_strv parents;
    st_classification cls;
    char *reason;
    char *duplicate_of;
} got_module;

typedef struct got {
    st_strv batches;
    got_module mods[256];
    size_t n;
} got;

static int sink_batch(void *opaque, const char *path)
{
    got *g = opaque;
    st_strv_push(&g->batches, path);
    return ST_OK;
}

static int sink_module(void *opaque, const st_module_entry *e)
{
    got *g = opaque;
    ck_assert_uint_lt(g->n, 256);
    got_module *m = &g->mods[g->n++];
    memset(m, 0, sizeof(*m));
    m->path = st_strdup(e->path);
    m->origin = e->origin;
    for (size_t i = 0; e->parents && e->parents[i]; i++)
        st_strv_push(&m->parents, e->parents[i]);
    m->cls = e->classification;
    m->reason = st_strdup(e->reason);
    m->duplicate_of = e->duplicate_of ? st_strdup(e->duplicate_of) : NULL;
    return ST_OK;
}

static void got_free(got *g)
{
    st_strv_free(&g->batches);
    for (size_t i = 0; i < g->n; i++) {
        free(g->mods[i].path);
        st_strv_free(&g->mods[i].parents);
        free(g->mods[i].reason);
        free(g->mods[i].duplicate_of);
    }
    g->n = 0;
}

static const got_module *got_find(const got *g, const char *path)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->mods[i].path, path) == 0)
            return &g->mods[i];
    return NULL;
}

/* "a.py b.py" of every reported path, in order. */
static char *got_paths(const got *g)
{
    st_buf b = {0};
    for (size_t i = 0; i < g->n; i++)
        st_buf_printf(&b, "%s%s", i ? " " : "", g->mods[i].path);
    return b.data ? st_buf_steal(&b) : st_strdup("");
}

static char *parents_of(const got *g, const char *path)
{
    const got_module *m = got_find(g, path);
    ck_assert_msg(m != NULL, "%s was not reported", path);
    st_buf b = {0};
    for (size_t i = 0; i < m->parents.n; i++)
        st_buf_printf(&b, "%s%s", i ? " " : "", m->parents.v[i]);
    return b.data ? st_buf_steal(&b) : st_strdup("");
}

#define ck_paths(g, expected)                                                                  \
    do {                                                                                       \
        char *_p = got_paths(g);                                                               \
        ck_assert_str_eq(_p, expected);                                                        \
        free(_p);                                                                              \
    } while (0)

#define ck_parents(g, path, expected)                                                          \
    do {                                                                                       \
        char *_p = parents_of(g, path);                                                        \
        ck_assert_str_eq(_p, expected);                                                        \
        free(_p);                                                                              \
    } while (0)

/* ---- an instance over a project root --------------------------------------------------------- */

typedef struct fixture {
    char *root, *data, *conf_dir;
    int have_cfg;
    int data_tmp; /* data is a temp copy of a checked-in fixture's sandbox_data */
    config_t cfg;
    st_project_ctx pctx;
    st_instance inst;
    dp_ctx *dp;
} fixture;

/* Creates the plugin over root with `settings = { body };` (body NULL: no settings). Returns
 * the create status; logged errors go to *log when log is not NULL. */
static int fx_open(fixture *f, const char *root, const char *body, char **log)
{
    memset(f, 0, sizeof(*f));
    f->root = st_strdup(root);
    f->data = st_path_join(root, "sandbox_data");
    size_t fl = strlen(DISCOVERY_FIXTURE_DIR);
    if (strncmp(root, DISCOVERY_FIXTURE_DIR, fl) == 0 && (root[fl] == '/' || !root[fl])) {
        /* a fixture of the source tree (read-only under distcheck): the plugin writes its
         * caches into the data dir, so it gets a temp copy of the fixture's module map */
        char *map = st_path_join(f->data, "module_map.json"), *text = NULL;
        free(f->data);
        f->data = unit_tmpdir();
        f->data_tmp = 1;
        if (st_read_file(map, 1 << 20, &text, NULL) == 0) {
            unit_write(f->data, "module_map.json", text);
            free(text);
        }
        free(map);
    }
    st_project_ctx_init(&f->pctx);
    f->pctx.info.struct_size = sizeof(f->pctx.info);
    f->pctx.info.root = f->root;
    f->pctx.info.data_dir = f->data;
    f->pctx.info.report_dir = f->data;
    f->inst.name = "discovery-python";
    f->inst.desc = &dp_descriptor;
    f->inst.project = &f->pctx.info;
    f->inst.pctx = &f->pctx;
    pthread_mutex_init(&f->inst.lists_lock, NULL);
    if (body) {
        f->conf_dir = unit_tmpdir();
        char *text = st_asprintf("# discovery settings\nsettings = {\n%s\n};\n", body);
        unit_write(f->conf_dir, "test.conf", text);
        free(text);
        char *path = st_path_join(f->conf_dir, "test.conf");
        config_init(&f->cfg);
        f->have_cfg = 1;
        ck_assert_msg(config_read_file(&f->cfg, path) == CONFIG_TRUE, "%s:%d: %s", path,
                      config_error_line(&f->cfg), config_error_text(&f->cfg));
        free(path);
        f->inst.config = config_lookup(&f->cfg, "settings");
    }
    unit_capture c;
    if (log)
        unit_capture_begin(&c);
    void *ctx = NULL;
    int rc = dp_create(&st_host_services, &f->inst, (const st_config_node *)f->inst.config, &ctx);
    if (log)
        *log = unit_capture_end(&c);
    f->dp = rc == ST_OK ? ctx : NULL;
    return rc;
}

static void fx_close(fixture *f)
{
    if (f->dp)
        dp_destroy(f->dp);
    for (size_t k = 0; k < f->inst.n_lists; k++)
        st_strv_free(&f->inst.lists[k]);
    free(f->inst.lists);
    pthread_mutex_destroy(&f->inst.lists_lock);
    if (f->have_cfg)
        config_destroy(&f->cfg);
    if (f->conf_dir) {
        st_rm_rf(f->conf_dir);
        free(f->conf_dir);
    }
    st_project_ctx_destroy(&f->pctx);
    free(f->root);
    if (f->data_tmp)
        st_rm_rf(f->data);
    free(f->data);
}

enum { O_ORPHANS = 1, O_RECURSIVE = 2, O_ISOLATED = 4, O_REC_ISOLATED = 8, O_DISABLE = 16 };

/* The options as a core of ABI 1.4 passes them: the orphan switches in the options, no
 * want_modules. Most scenarios drive the plugin that way; the ABI 1.5 way (switches in the
 * plugin's settings) has its own tests below. */
#define OLD_CORE_OPTIONS offsetof(st_discover_options, want_modules)

/* Runs discover() with the option bits and test paths; stderr goes to *log when not NULL. */
static int fx_discover(fixture *f, unsigned bits, const char *const *paths, got *out, char **log)
{
    static const char *const no_paths[] = {NULL};
    st_discover_options o = {
        .struct_size = OLD_CORE_OPTIONS,
        .paths = paths ? paths : no_paths,
        .discover_orphans = !!(bits & O_ORPHANS),
        .recursive_orphans = !!(bits & O_RECURSIVE),
        .auto_include_isolated = !!(bits & O_ISOLATED),
        .recursive_isolated = !!(bits & O_REC_ISOLATED),
        .disable_orphans = !!(bits & O_DISABLE),
        .include_orphans = 1,
    };
    st_discovery_sink sink = {sizeof(sink), out, sink_batch, sink_module, NULL};
    unit_capture c;
    if (log)
        unit_capture_begin(&c);
    int rc = dp_discover(f->dp, &o, &sink);
    if (log)
        *log = unit_capture_end(&c);
    st_project_ctx_reset(&f->pctx); /* the next call sees the tree as it is then */
    return rc;
}

/* Discovers over a fixture tree with no settings. */
static void discover_fixture(const char *name, unsigned bits, got *out)
{
    char *root = st_path_join(DISCOVERY_FIXTURE_DIR, name);
    fixture f;
    ck_assert_int_eq(fx_open(&f, root, NULL, NULL), ST_OK);
    ck_assert_int_eq(fx_discover(&f, bits, NULL, out, NULL), ST_OK);
    fx_close(&f);
    free(root);
}

/* ---- scenarios ------------------------------------------------------------------------------- */

START_TEST(chain_without_recursion_gives_the_root)
{
    got g = {0};
    discover_fixture("chain", O_ORPHANS, &g);
    ck_paths(&g, "a.py");
    ck_assert_int_eq(g.mods[0].origin, ST_ORIGIN_ORPHAN);
    ck_parents(&g, "a.py", "");
    got_free(&g);
}
END_TEST

START_TEST(chain_with_recursion_gives_all_with_parents)
{
    got g = {0};
    discover_fixture("chain", O_ORPHANS | O_RECURSIVE, &g);
    ck_paths(&g, "a.py b.py c.py");
    ck_parents(&g, "a.py", "");
    ck_parents(&g, "b.py", "a.py");
    ck_parents(&g, "c.py", "b.py");
    for (size_t i = 0; i < g.n; i++) {
        ck_assert_int_eq(g.mods[i].cls, ST_CLASS_CANDIDATE);
        ck_assert_contains(g.mods[i].reason, "no test imports it");
    }
    got_free(&g);
}
END_TEST

/* The core's exclusion rules (ABI 1.2 sink->excluded): an excluded file is neither reported nor
 * a parent, so what it imports becomes an orphan root (it used to hide it without recursion). */
static int exclude_a(void *opaque, const char *path, char *why, size_t why_size)
{
    (void)opaque;
    if (strcmp(path, "a.py") != 0)
        return 0;
    snprintf(why, why_size, "orphan_exclude 'a.py'");
    return 1;
}

START_TEST(excluded_files_are_no_orphans_nor_parents)
{
    char *root = st_path_join(DISCOVERY_FIXTURE_DIR, "chain");
    for (int recursive = 0; recursive < 2; recursive++) {
        got g = {0};
        fixture f;
        ck_assert_int_eq(fx_open(&f, root, NULL, NULL), ST_OK);
        static const char *const no_paths[] = {NULL};
        st_discover_options o = {.struct_size = OLD_CORE_OPTIONS, .paths = no_paths,
                                 .discover_orphans = 1, .recursive_orphans = recursive,
                                 .include_orphans = 1};
        st_discovery_sink sink = {sizeof(sink), &g, sink_batch, sink_module, exclude_a};
        ck_assert_int_eq(dp_discover(f.dp, &o, &sink), ST_OK);
        st_project_ctx_reset(&f.pctx);
        ck_paths(&g, recursive ? "b.py c.py" : "b.py");
        ck_parents(&g, "b.py", "");
        got_free(&g);
        fx_close(&f);
    }
    free(root);
}
END_TEST

START_TEST(orphan_roots_skip_a_cycle_with_outside_importers)
{
    got g = {0};
    char *log = NULL;
    char *root = st_path_join(DISCOVERY_FIXTURE_DIR, "roots");
    fixture f;
    ck_assert_int_eq(fx_open(&f, root, NULL, NULL), ST_OK);
    st_log_set_level(ST_LOG_INFO);
    ck_assert_int_eq(fx_discover(&f, O_ORPHANS, NULL, &g, &log), ST_OK);
    st_log_set_level(ST_LOG_WARNING);
    ck_paths(&g, "a.py d.py");
    /* the e <-> f cycle has no orphan root: said in the log, reported with recursion */
    ck_assert_contains(log, "cycles no orphan root imports (first: e.py)");
    free(log);
    got_free(&g);
    ck_assert_int_eq(fx_discover(&f, O_ORPHANS | O_RECURSIVE, NULL, &g, NULL), ST_OK);
    ck_paths(&g, "a.py b.py c.py d.py e.py f.py");
    ck_parents(&g, "b.py", "a.py d.py e.py");
    ck_parents(&g, "c.py", "b.py");
    ck_parents(&g, "e.py", "f.py");
    ck_parents(&g, "f.py", "e.py");
    got_free(&g);
    fx_close(&f);
    free(root);
}
END_TEST

START_TEST(tested_code_is_never_an_orphan)
{
    got g = {0};
    discover_fixture("tested", O_ORPHANS | O_RECURSIVE, &g);
    /* lib.py and helpers/ are reached from tests/test_lib.py; conftest.py, setup.py and
     * __main__.py are not project modules */
    ck_paths(&g, "lonely.py");
    got_free(&g);
}
END_TEST

START_TEST(test_paths_become_batches)
{
    got g = {0};
    char *root = st_path_join(DISCOVERY_FIXTURE_DIR, "tested");
    fixture f;
    ck_assert_int_eq(fx_open(&f, root, NULL, NULL), ST_OK);
    const char *paths[] = {"tests", "tests/test_lib.py", NULL};
    ck_assert_int_eq(fx_discover(&f, O_ORPHANS, paths, &g, NULL), ST_OK);
    ck_assert_uint_eq(g.batches.n, 2);
    ck_assert_str_eq(g.batches.v[0], "tests");
    ck_assert_str_eq(g.batches.v[1], "tests/test_lib.py");
    got_free(&g);
    /* disable_orphans: batches only, no graph work */
    ck_assert_int_eq(fx_discover(&f, O_ORPHANS | O_ISOLATED | O_DISABLE, paths, &g, NULL), ST_OK);
    ck_assert_uint_eq(g.batches.n, 2);
    ck_assert_uint_eq(g.n, 0);
    got_free(&g);
    fx_close(&f);
    free(root);
}
END_TEST

START_TEST(known_modules_are_not_reported)
{
    got g = {0};
    discover_fixture("known", O_ORPHANS | O_RECURSIVE, &g);
    /* a.py (a path key) and pkg/mod.py (dotted key pkg.mod) are in module_map.json */
    ck_paths(&g, "b.py pkg/__init__.py");
    ck_assert_int_eq(got_find(&g, "pkg/__init__.py")->cls, ST_CLASS_REDUNDANT);
    got_free(&g);
}
END_TEST

START_TEST(legacy_markers_only_where_they_count)
{
    got g = {0};
    discover_fixture("legacy", O_ORPHANS | O_RECURSIVE, &g);
    ck_paths(&g, "filtered.py in_function.py late_comment.py mention.py old_comment.py "
                 "old_doc.py old_warn.py");
    const char *legacy[] = {"old_comment.py", "old_doc.py", "old_warn.py"};
    const char *where[] = {"top-of-file comment (line 2)", "module docstring",
                           "module-level DeprecationWarning (line 3)"};
    for (size_t i = 0; i < 3; i++) {
        const got_module *m = got_find(&g, legacy[i]);
        ck_assert_int_eq(m->cls, ST_CLASS_LEGACY);
        ck_assert_contains(m->reason, where[i]);
    }
    const char *candidates[] = {"filtered.py", "in_function.py", "late_comment.py", "mention.py"};
    for (size_t i = 0; i < 4; i++)
        ck_assert_msg(got_find(&g, candidates[i])->cls == ST_CLASS_CANDIDATE, "%s: %s",
                      candidates[i], got_find(&g, candidates[i])->reason);
    got_free(&g);
}
END_TEST

START_TEST(same_token_stream_is_redundant_with_duplicate_of)
{
    got g = {0};
    discover_fixture("redundant", O_ORPHANS | O_RECURSIVE, &g);
    ck_paths(&g, "alpha.py beta.py empty.py gamma.py");
    const got_module *alpha = got_find(&g, "alpha.py"), *beta = got_find(&g, "beta.py");
    ck_assert_int_eq(alpha->cls, ST_CLASS_CANDIDATE);
    ck_assert_ptr_null(alpha->duplicate_of);
    ck_assert_int_eq(beta->cls, ST_CLASS_REDUNDANT);
    ck_assert_str_eq(beta->duplicate_of, "alpha.py");
    ck_assert_contains(beta->reason, "duplicate of alpha.py");
    const got_module *empty = got_find(&g, "empty.py"), *gamma = got_find(&g, "gamma.py");
    ck_assert_int_eq(empty->cls, ST_CLASS_REDUNDANT);
    ck_assert_ptr_null(empty->duplicate_of);
    ck_assert_contains(empty->reason, "empty");
    ck_assert_int_eq(gamma->cls, ST_CLASS_CANDIDATE); /* one token differs */
    got_free(&g);
}
END_TEST

START_TEST(same_named_modules_stay_two_entries)
{
    got g = {0};
    discover_fixture("samename", O_ORPHANS | O_RECURSIVE, &g);
    ck_paths(&g, "pkg_a/__init__.py pkg_a/common.py pkg_b/__init__.py pkg_b/common.py");
    ck_assert_int_eq(got_find(&g, "pkg_a/common.py")->cls, ST_CLASS_CANDIDATE);
    ck_assert_int_eq(got_find(&g, "pkg_b/common.py")->cls, ST_CLASS_CANDIDATE);
    got_free(&g);
}
END_TEST

START_TEST(namespace_package_modules_are_found)
{
    got g = {0};
    discover_fixture("namespace", O_ORPHANS | O_RECURSIVE, &g);
    ck_paths(&g, "ns/sub/mod.py ns/user.py"); /* ns/sub/tested.py is reached by the test */
    ck_parents(&g, "ns/sub/mod.py", "ns/user.py");
    got_free(&g);
    discover_fixture("namespace", O_ORPHANS, &g);
    ck_paths(&g, "ns/user.py");
    got_free(&g);
}
END_TEST

START_TEST(isolated_module_with_its_helpers)
{
    got g = {0};
    discover_fixture("isolated", O_ISOLATED | O_REC_ISOLATED, &g);
    /* shared.py is also imported by used.py (tested): not only isolated code reaches it */
    ck_paths(&g, "lib/__init__.py lib/helper.py lib/inner.py tool.py");
    for (size_t i = 0; i < g.n; i++)
        ck_assert_int_eq(g.mods[i].origin, ST_ORIGIN_ISOLATED);
    ck_parents(&g, "tool.py", "");
    ck_parents(&g, "lib/helper.py", "tool.py");
    ck_parents(&g, "lib/inner.py", "lib/helper.py");
    ck_parents(&g, "lib/__init__.py", "lib/helper.py tool.py");
    ck_assert_contains(got_find(&g, "tool.py")->reason, "nothing imports it");
    ck_assert_contains(got_find(&g, "lib/inner.py")->reason, "only isolated modules");
    got_free(&g);
    discover_fixture("isolated", O_ISOLATED, &g);
    ck_paths(&g, "tool.py");
    got_free(&g);
    /* with orphans too, a module is reported once, as an orphan first: tool.py is the orphan
     * root, its helpers (not orphan roots) come as isolated helpers with their parents */
    discover_fixture("isolated", O_ORPHANS | O_ISOLATED | O_REC_ISOLATED, &g);
    ck_paths(&g, "lib/__init__.py lib/helper.py lib/inner.py tool.py");
    ck_assert_int_eq(got_find(&g, "tool.py")->origin, ST_ORIGIN_ORPHAN);
    ck_assert_int_eq(got_find(&g, "lib/helper.py")->origin, ST_ORIGIN_ISOLATED);
    ck_parents(&g, "lib/helper.py", "tool.py");
    got_free(&g);
}
END_TEST

START_TEST(two_instances_do_not_share_state)
{
    char *chain = st_path_join(DISCOVERY_FIXTURE_DIR, "chain");
    char *roots = st_path_join(DISCOVERY_FIXTURE_DIR, "roots");
    fixture f1, f2;
    ck_assert_int_eq(fx_open(&f1, chain, "allow = [\"c.py\"];", NULL), ST_OK);
    ck_assert_int_eq(fx_open(&f2, roots, NULL, NULL), ST_OK);
    got g1 = {0}, g2 = {0};
    ck_assert_int_eq(fx_discover(&f1, O_ORPHANS | O_RECURSIVE, NULL, &g1, NULL), ST_OK);
    ck_assert_int_eq(fx_discover(&f2, O_ORPHANS, NULL, &g2, NULL), ST_OK);
    ck_paths(&g1, "a.py b.py");
    ck_paths(&g2, "a.py d.py");
    got_free(&g1);
    got_free(&g2);
    fx_close(&f1);
    fx_close(&f2);
    free(chain);
    free(roots);
}
END_TEST

/* ---- settings -------------------------------------------------------------------------------- */

START_TEST(allow_and_entry_points)
{
    char *root = st_path_join(DISCOVERY_FIXTURE_DIR, "chain");
    fixture f;
    /* b.py allowed: b and what it imports count as reached */
    ck_assert_int_eq(fx_open(&f, root, "allow = [\"b*.py\"];", NULL), ST_OK);
    got g = {0};
    ck_assert_int_eq(fx_discover(&f, O_ORPHANS | O_RECURSIVE, NULL, &g, NULL), ST_OK);
    ck_paths(&g, "a.py");
    got_free(&g);
    fx_close(&f);
    /* a.py an entry point: known, so b.py becomes the orphan root */
    ck_assert_int_eq(fx_open(&f, root, "entry_points = [\"./a.py\"];", NULL), ST_OK);
    ck_assert_int_eq(fx_discover(&f, O_ORPHANS, NULL, &g, NULL), ST_OK);
    ck_paths(&g, "b.py");
    got_free(&g);
    ck_assert_int_eq(fx_discover(&f, O_ISOLATED | O_REC_ISOLATED, NULL, &g, NULL), ST_OK);
    ck_paths(&g, ""); /* an entry point is a root on purpose, not an isolated module */
    got_free(&g);
    fx_close(&f);
    free(root);
}
END_TEST

START_TEST(bad_settings_are_rejected_with_file_and_line)
{
    char *root = st_path_join(DISCOVERY_FIXTURE_DIR, "chain");
    fixture f;
    char *log = NULL;
    ck_assert_int_eq(fx_open(&f, root, "allow = [\"a.py\"];\nallwo = [\"b.py\"];", &log),
                     ST_ERR_INVALID);
    ck_assert_contains(log, "test.conf:4");
    ck_assert_contains(log, "unknown setting 'allwo'");
    free(log);
    fx_close(&f);
    ck_assert_int_eq(fx_open(&f, root, "entry_points = [\"../outside.py\"];", &log),
                     ST_ERR_INVALID);
    ck_assert_contains(log, "'../outside.py' is not a repository-relative path");
    free(log);
    fx_close(&f);
    ck_assert_int_eq(fx_open(&f, root, "allow = 3;", &log), ST_ERR_INVALID);
    free(log);
    fx_close(&f);
    free(root);
}
END_TEST

/* ---- the tokenizer --------------------------------------------------------------------------- */

static pytok_facts facts_of(const char *src)
{
    pytok_facts f;
    pytok_analyze(src, strlen(src), &f, NULL);
    return f;
}

START_TEST(tokenizer_ignores_comments_and_spacing_only)
{
    pytok_facts a = facts_of("x = f(1, 2)  # one\n"), b = facts_of("x=f( 1,2 )\n\n# two\n");
    ck_assert(a.hash == b.hash && a.n_tokens == b.n_tokens);
    pytok_facts c = facts_of("x = f(1, 3)\n");
    ck_assert(a.hash != c.hash);
    /* indentation is structure: these differ */
    pytok_facts d = facts_of("if a:\n    b()\n    c()\n"), e = facts_of("if a:\n    b()\nc()\n");
    ck_assert(d.hash != e.hash);
    /* continuation lines and brackets across lines */
    pytok_facts h = facts_of("x = (1 +\n     2)\n"), i = facts_of("x = (1 + \\\n2)\n");
    ck_assert(h.hash == i.hash);
    /* the word import or a quote inside strings and comments is just text */
    pytok_facts j = facts_of("s = 'a # not a comment'\n"), k = facts_of("s = 'a'\n");
    ck_assert(j.hash != k.hash);
    /* 3.12 f-string reusing its quotes, and a nested format spec */
    pytok_facts l = facts_of("x = f\"{d[\"k\"]:{w}}\" # c\ny = 1\n");
    ck_assert_uint_eq(l.n_tokens, 8); /* x = STRING NEWLINE y = 1 NEWLINE */
    /* CRLF and CR like LF, a BOM ignored */
    pytok_facts m = facts_of("a = 1\r\nb = 2\r\n"), n = facts_of("\xef\xbb\xbf" "a = 1\rb = 2\r");
    pytok_facts o = facts_of("a = 1\nb = 2\n");
    ck_assert(m.hash == o.hash && n.hash == o.hash);
}
END_TEST

START_TEST(tokenizer_empty_and_legacy_facts)
{
    ck_assert_int_eq(facts_of("").empty, 1);
    ck_assert_int_eq(facts_of("'''doc'''\nimport os\nfrom a import (b,\n c)\npass\n").empty, 1);
    ck_assert_int_eq(facts_of("import os; pass\n").empty, 1);
    ck_assert_int_eq(facts_of("import os\nX = 1\n").empty, 0);
    ck_assert_int_eq(facts_of("try:\n    import x\nexcept ImportError:\n    pass\n").empty, 0);
    ck_assert_int_eq(facts_of("# LEGACY module\nX = 1\n").legacy, 1);
    ck_assert_int_eq(facts_of("X = 1\n# legacy\n").legacy, 0);
    ck_assert_int_eq(facts_of("X = '''legacy'''\n").legacy, 0);
    ck_assert_int_eq(facts_of("'''Deprecated.''' + x\n").legacy, 0);
    ck_assert_int_eq(facts_of("r'''Deprecated.'''\n").legacy, 1);
    ck_assert_int_eq(facts_of("from warnings import warn\nwarn('x', DeprecationWarning)\n").legacy,
                     1);
    ck_assert_int_eq(
        facts_of("class C:\n    def f(self):\n        warn('x', DeprecationWarning)\n").legacy, 0);
    ck_assert_int_eq(facts_of("if OLD:\n    warn('x', category=DeprecationWarning)\n").legacy, 1);
}
END_TEST

START_TEST(tokenizer_survives_odd_bytes)
{
    /* every byte value, unterminated strings, stray closers, deep f-string nesting */
    char all[1024];
    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (char)(i * 7 + 3);
    pytok_facts f;
    st_buf b = {0};
    ck_assert_int_eq(pytok_analyze(all, sizeof(all), &f, &b), 0);
    st_buf_free(&b);
    const char *odd[] = {"'unterminated\n", "'''never closed", "f'{", "f'{x:{y:{z", ")))]]]}}}",
                         "\\", "\t\t\n  \n\f", "\"\\", "0x1e+5 1e-5 1.5j .5", "\xff\xfe"};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
        pytok_analyze(odd[i], strlen(odd[i]), &f, NULL);
    st_buf deep = {0};
    st_buf_puts(&deep, "x = ");
    for (int i = 0; i < 200; i++)
        st_buf_puts(&deep, "f'{");
    pytok_analyze(deep.data, deep.len, &f, NULL);
    st_buf_free(&deep);
}
END_TEST

/* ---- module_map.json ------------------------------------------------------------------------- */

static int exists_in_list(const char *path, void *userdata)
{
    for (const char *const *p = userdata; *p; p++)
        if (strcmp(*p, path) == 0)
            return 1;
    return 0;
}

START_TEST(modulemap_reads_every_shape)
{
    stmm_map m;
    char err[256];
    const char *canonical = "{\"modules\": {\"pkg/a.py\": 3, \"b\": 4}, \"groups\": {\"3\": 3}, "
                            "\"tags\": {}}";
    ck_assert_int_eq(stmm_parse(canonical, strlen(canonical), &m, err, sizeof(err)), STMM_OK);
    ck_assert_int_eq(m.canonical, 1);
    ck_assert_uint_eq(m.n_entries, 2);
    ck_assert_str_eq(m.entries[0].module, "pkg/a.py");
    ck_assert_str_eq(m.entries[0].group, "3");
    ck_assert_uint_eq(m.n_groups, 1);
    ck_assert_int_eq(m.groups[0].id, 3);
    stmm_free(&m);
    const char *legacy = "{\"a.py\": 1, \"g\": [\"b.py\", \"c.d\"], \"e.py\": \"core\"}";
    ck_assert_int_eq(stmm_parse(legacy, strlen(legacy), &m, err, sizeof(err)), STMM_OK);
    ck_assert_int_eq(m.canonical, 0);
    ck_assert_uint_eq(m.n_entries, 4);
    ck_assert_str_eq(m.entries[1].module, "b.py");
    ck_assert_str_eq(m.entries[1].group, "g");
    ck_assert_str_eq(m.entries[2].module, "c.d");
    ck_assert_str_eq(m.entries[3].group, "core");
    stmm_free(&m);
    const char *bad = "{\n  \"a.py\": 1,\n  \"b.py\" 2\n}";
    ck_assert_int_eq(stmm_parse(bad, strlen(bad), &m, err, sizeof(err)), STMM_EMALFORMED);
    ck_assert_contains(err, "line 3, column");
    ck_assert_uint_eq(m.n_entries, 0);
    const char *shape = "{\"a.py\": {\"x\": 1}}";
    ck_assert_int_eq(stmm_parse(shape, strlen(shape), &m, err, sizeof(err)), STMM_EMALFORMED);
    ck_assert_contains(err, "module \"a.py\"");
    ck_assert_int_eq(stmm_parse("[1]", 3, &m, err, sizeof(err)), STMM_EMALFORMED);
    ck_assert_int_eq(stmm_load("/nonexistent/module_map.json", &m, err, sizeof(err)),
                     STMM_ABSENT);
}
END_TEST

/* A hostile module_map.json nested a million levels deep is refused with line and column, not a
 * crash in yajl's recursive free; 64 levels are still read. */
START_TEST(modulemap_refuses_deep_nesting)
{
    stmm_map m;
    char err[256];
    size_t n = 1000000;
    char *deep = malloc(2 * n + 16);
    ck_assert_ptr_nonnull(deep);
    size_t k = 0;
    k += (size_t)sprintf(deep, "{\"a.py\": ");
    for (size_t i = 0; i < n; i++)
        deep[k++] = '[';
    for (size_t i = 0; i < n; i++)
        deep[k++] = ']';
    deep[k++] = '}';
    ck_assert_int_eq(stmm_parse(deep, k, &m, err, sizeof(err)), STMM_EMALFORMED);
    ck_assert_contains(err, "line 1, column 73: nested deeper than 64 levels");
    ck_assert_uint_eq(m.n_entries, 0);
    free(deep);
    /* brackets inside strings do not count */
    const char *strs = "{\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[.py\": 1}";
    ck_assert_int_eq(stmm_parse(strs, strlen(strs), &m, err, sizeof(err)), STMM_OK);
    ck_assert_uint_eq(m.n_entries, 1);
    stmm_free(&m);
}
END_TEST

START_TEST(modulemap_keys_to_paths)
{
    const char *files[] = {"pkg/__init__.py", "pkg/mod.py", "src/lib/x.py", "top.py", NULL};
    char *p;
    ck_assert_str_eq(p = stmm_key_to_path("pkg.mod", exists_in_list, files), "pkg/mod.py");
    free(p);
    ck_assert_str_eq(p = stmm_key_to_path("pkg", exists_in_list, files), "pkg/__init__.py");
    free(p);
    ck_assert_str_eq(p = stmm_key_to_path("lib.x", exists_in_list, files), "src/lib/x.py");
    free(p);
    ck_assert_str_eq(p = stmm_key_to_path("top", exists_in_list, files), "top.py");
    free(p);
    ck_assert_str_eq(p = stmm_key_to_path("./pkg/mod.py", exists_in_list, files), "pkg/mod.py");
    free(p);
    ck_assert_ptr_null(stmm_key_to_path("missing.mod", exists_in_list, files));
    ck_assert_ptr_null(stmm_key_to_path("bad..name", exists_in_list, files));
    ck_assert_ptr_null(stmm_key_to_path("", exists_in_list, files));
}
END_TEST

/* ---- bad input ------------------------------------------------------------------------------- */

static void write_bytes(const char *dir, const char *name, const char *data, size_t len)
{
    char *path = st_path_join(dir, name);
    char *parent = st_path_dirname(path);
    st_mkdir_p(parent, 0755);
    ck_assert_int_eq(st_write_file_atomic(path, data, len, 0644), 0);
    free(parent);
    free(path);
}

START_TEST(bad_input_is_reported_without_crash)
{
    char *root = unit_tmpdir();
    unit_write(root, "a.py", "import b\nA = 1\n");
    unit_write(root, "b.py", "B = 2\n");
    char *tests = st_path_join(root, "tests");
    mkdir(tests, 0755);
    unit_write(tests, "test_x.py", "def test_x():\n    pass\n");
    /* NUL bytes */
    write_bytes(root, "nul.py", "X = 1\n\0\0Y = 2\n", 14);
    /* a 10 MB one-line file */
    size_t big_len = 10u << 20;
    char *big = malloc(big_len);
    ck_assert_ptr_nonnull(big);
    memcpy(big, "X = [", 5);
    for (size_t i = 5; i + 2 < big_len; i += 2)
        memcpy(big + i, "1,", 2);
    memcpy(big + big_len - 2, "]\n", 2);
    write_bytes(root, "big.py", big, big_len);
    free(big);
    /* 10,000 nested brackets */
    st_buf nest = {0};
    st_buf_puts(&nest, "X = ");
    for (int i = 0; i < 10000; i++)
        st_buf_puts(&nest, i % 2 ? "[" : "(");
    for (int i = 9999; i >= 0; i--)
        st_buf_puts(&nest, i % 2 ? "]" : ")");
    st_buf_puts(&nest, "\n");
    write_bytes(root, "nested.py", nest.data, nest.len);
    st_buf_free(&nest);
    /* symlink loops: two files, and a directory pointing at its parent */
    char *l1 = st_path_join(root, "loop1.py"), *l2 = st_path_join(root, "loop2.py");
    char *ld = st_path_join(root, "sub");
    mkdir(ld, 0755);
    char *ldl = st_path_join(ld, "again");
    ck_assert_int_eq(symlink("loop2.py", l1), 0);
    ck_assert_int_eq(symlink("loop1.py", l2), 0);
    ck_assert_int_eq(symlink("..", ldl), 0);
    /* an unreadable file (mode 000: only effective when not root) */
    unit_write(root, "secret.py", "S = 1\n");
    char *secret = st_path_join(root, "secret.py");
    chmod(secret, 0);
    /* a malformed module_map.json: reported with line and column, left untouched */
    char *data = st_path_join(root, "sandbox_data");
    mkdir(data, 0755);
    const char *bad_map = "{\n  \"a.py\": 1,\n  oops\n}\n";
    unit_write(data, "module_map.json", bad_map);

    fixture f;
    ck_assert_int_eq(fx_open(&f, root, NULL, NULL), ST_OK);
    got g = {0};
    char *log = NULL;
    ck_assert_int_eq(fx_discover(&f, O_ORPHANS | O_RECURSIVE, NULL, &g, &log), ST_OK);
    ck_assert_contains(log, "module_map.json: line 3, column 4");
    ck_assert_contains(log, "nul.py: contains NUL bytes");
    /* the malformed map counted as empty: a.py is reported */
    ck_assert_ptr_nonnull(got_find(&g, "a.py"));
    ck_assert_ptr_nonnull(got_find(&g, "big.py"));
    ck_assert_ptr_nonnull(got_find(&g, "nested.py"));
    ck_assert_contains(got_find(&g, "nul.py")->reason, "not classified");
    ck_assert_ptr_null(got_find(&g, "loop1.py"));
    char *text = NULL;
    char *map_path = st_path_join(data, "module_map.json");
    ck_assert_int_eq(st_read_file(map_path, 1 << 20, &text, NULL), 0);
    ck_assert_str_eq(text, bad_map);
    free(text);
    free(log);
    got_free(&g);

    /* a second cycle sees the same files: nothing was written into the tree */
    ck_assert_int_eq(fx_discover(&f, O_ORPHANS | O_RECURSIVE, NULL, &g, &log), ST_OK);
    ck_assert_ptr_nonnull(got_find(&g, "a.py"));
    ck_assert_int_eq(st_read_file(map_path, 1 << 20, &text, NULL), 0);
    ck_assert_str_eq(text, bad_map);
    free(text);
    free(log);
    got_free(&g);
    fx_close(&f);

    chmod(secret, 0644);
    free(secret);
    free(map_path);
    free(l1);
    free(l2);
    free(ldl);
    free(ld);
    free(tests);
    free(data);
    st_rm_rf(root);
    free(root);
}
END_TEST

START_TEST(vanished_module_is_reported_not_classified)
{
    char *root = unit_tmpdir();
    unit_write(root, "gone.py", "G = 1\n");
    unit_write(root, "stay.py", "S = 1\n");
    fixture f;
    ck_assert_int_eq(fx_open(&f, root, NULL, NULL), ST_OK);
    /* build the graph first, then remove the file: classification cannot read it */
    ck_assert_ptr_nonnull(st_host_services.graph(&f.inst));
    char *gone = st_path_join(root, "gone.py");
    unlink(gone);
    free(gone);
    got g = {0};
    char *log = NULL;
    st_discover_options o = {.struct_size = OLD_CORE_OPTIONS, .discover_orphans = 1,
                             .recursive_orphans = 1};
    st_discovery_sink sink = {sizeof(sink), &g, sink_batch, sink_module, NULL};
    unit_capture c;
    unit_capture_begin(&c);
    ck_assert_int_eq(dp_discover(f.dp, &o, &sink), ST_OK);
    log = unit_capture_end(&c);
    ck_assert_contains(log, "gone.py: cannot open");
    ck_assert_contains(got_find(&g, "gone.py")->reason, "not classified: cannot open");
    ck_assert_int_eq(got_find(&g, "stay.py")->cls, ST_CLASS_CANDIDATE);
    free(log);
    got_free(&g);
    fx_close(&f);
    st_rm_rf(root);
    free(root);
}
END_TEST

/* ABI 1.5: the orphan switches are the plugin's settings (the core routes their old spellings
 * there); the options only say whether modules are wanted, and their old fields are ignored. */
static void discover_abi15(const char *settings, int want_modules, got *out)
{
    char *root = st_path_join(DISCOVERY_FIXTURE_DIR, "chain");
    fixture f;
    ck_assert_int_eq(fx_open(&f, root, settings, NULL), ST_OK);
    static const char *const no_paths[] = {NULL};
    /* the old fields say the opposite of the defaults: they must not matter */
    st_discover_options o = {.struct_size = sizeof(o), .paths = no_paths,
                             .discover_orphans = 0, .recursive_orphans = 0,
                             .disable_orphans = 1, .want_modules = want_modules};
    st_discovery_sink sink = {sizeof(sink), out, sink_batch, sink_module, NULL};
    ck_assert_int_eq(dp_discover(f.dp, &o, &sink), ST_OK);
    fx_close(&f);
    free(root);
}

START_TEST(abi15_switches_come_from_the_settings)
{
    got g = {0};
    discover_abi15(NULL, 1, &g); /* defaults: orphans, recursive */
    ck_paths(&g, "a.py b.py c.py");
    got_free(&g);
    memset(&g, 0, sizeof(g));
    discover_abi15("recursive_orphans = false;", 1, &g);
    ck_paths(&g, "a.py");
    got_free(&g);
    memset(&g, 0, sizeof(g));
    discover_abi15("discover_orphans = false;", 1, &g);
    ck_paths(&g, "");
    got_free(&g);
}
END_TEST

START_TEST(abi15_want_modules_off_reports_batches_only)
{
    got g = {0};
    discover_abi15("recursive_orphans = true;", 0, &g);
    ck_paths(&g, "");
    got_free(&g);
}
END_TEST

START_TEST(abi15_switch_of_the_wrong_type_is_refused)
{
    char *root = st_path_join(DISCOVERY_FIXTURE_DIR, "chain");
    fixture f;
    char *log = NULL;
    ck_assert_int_eq(fx_open(&f, root, "recursive_isolated = \"yes\";", &log), ST_ERR_INVALID);
    ck_assert_contains(log, "test.conf:");
    ck_assert_contains(log, "recursive_isolated");
    free(log);
    fx_close(&f);
    free(root);
}
END_TEST

static Suite *discovery_suite(void)
{
    Suite *s = suite_create("discovery-python");
    TCase *tc = tcase_create("scenarios");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, chain_without_recursion_gives_the_root);
    tcase_add_test(tc, chain_with_recursion_gives_all_with_parents);
    tcase_add_test(tc, excluded_files_are_no_orphans_nor_parents);
    tcase_add_test(tc, orphan_roots_skip_a_cycle_with_outside_importers);
    tcase_add_test(tc, tested_code_is_never_an_orphan);
    tcase_add_test(tc, test_paths_become_batches);
    tcase_add_test(tc, known_modules_are_not_reported);
    tcase_add_test(tc, legacy_markers_only_where_they_count);
    tcase_add_test(tc, same_token_stream_is_redundant_with_duplicate_of);
    tcase_add_test(tc, same_named_modules_stay_two_entries);
    tcase_add_test(tc, namespace_package_modules_are_found);
    tcase_add_test(tc, isolated_module_with_its_helpers);
    tcase_add_test(tc, two_instances_do_not_share_state);
    suite_add_tcase(s, tc);
    tc = tcase_create("settings");
    tcase_add_test(tc, allow_and_entry_points);
    tcase_add_test(tc, bad_settings_are_rejected_with_file_and_line);
    suite_add_tcase(s, tc);
    tc = tcase_create("tokenizer");
    tcase_add_test(tc, tokenizer_ignores_comments_and_spacing_only);
    tcase_add_test(tc, tokenizer_empty_and_legacy_facts);
    tcase_add_test(tc, tokenizer_survives_odd_bytes);
    suite_add_tcase(s, tc);
    tc = tcase_create("modulemap");
    tcase_add_test(tc, modulemap_reads_every_shape);
    tcase_add_test(tc, modulemap_refuses_deep_nesting);
    tcase_add_test(tc, modulemap_keys_to_paths);
    suite_add_tcase(s, tc);
    tc = tcase_create("bad input");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, bad_input_is_reported_without_crash);
    tcase_add_test(tc, vanished_module_is_reported_not_classified);
    tcase_add_test(tc, abi15_switches_come_from_the_settings);
    tcase_add_test(tc, abi15_want_modules_off_reports_batches_only);
    tcase_add_test(tc, abi15_switch_of_the_wrong_type_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    st_log_set_level(ST_LOG_WARNING);
    return unit_run(discovery_suite());
}
