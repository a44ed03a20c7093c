/* SPDX-License-Identifier: MIT */
/* Check suite of integrator-modulemap: the four module_map.json shapes on read, deterministic
 * ids (an import neighbour's lowest group, else max + 1, existing ids never change), workflows,
 * an idempotent second cycle, redundant modules, a malformed map left untouched, the seed's
 * pkg_a/pkg_b example and atomic writes. Includes the plugin's main .c (collectd style, to reach
 * its statics), links its other sources, and drives integrate() through a small fake host with a
 * fake import graph; no core library. */
#include "config.h"

#include "../../plugins/integrator-modulemap/integrator_modulemap.c"

#include <check.h>
#include <dirent.h>
#include <sqlite3.h>
#include <ftw.h>
#include <stdarg.h>

/* ---- a fake host ------------------------------------------------------------------------------ */

struct st_instance {
    char log[8192];           /* everything logged, one message a line */
    st_project_info project;
};

/* A config group: NULL-terminated name/value pairs; values "true"/"false" are booleans. */
struct st_config_node {
    const char *const *pairs;
};

static void fake_log(st_instance *self, st_log_level level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    size_t used = strlen(self->log);
    snprintf(self->log + used, sizeof(self->log) - used, "%d %s\n", (int)level, line);
    if (getenv("TEST_VERBOSE"))
        fprintf(stderr, "log %d: %s\n", (int)level, line);
}

static const char *cfg_value(const st_config_node *node, const char *name)
{
    for (size_t i = 0; node && node->pairs[i]; i += 2)
        if (strcmp(node->pairs[i], name) == 0)
            return node->pairs[i + 1];
    return NULL;
}

static int fake_cfg_string(st_instance *self, const st_config_node *node, const char *name,
                           const char **out)
{
    const char *v = cfg_value(node, name);
    if (!v)
        return ST_CFG_ABSENT;
    *out = v;
    return ST_CFG_FOUND;
}

static int fake_cfg_bool(st_instance *self, const st_config_node *node, const char *name, int *out)
{
    const char *v = cfg_value(node, name);
    if (!v)
        return ST_CFG_ABSENT;
    if (strcmp(v, "true") && strcmp(v, "false")) {
        fake_log(self, ST_LOG_ERROR, "test.conf:1: %s: expected a boolean", name);
        return ST_ERR_INVALID;
    }
    *out = strcmp(v, "true") == 0;
    return ST_CFG_FOUND;
}

static const char *fake_cfg_where(st_instance *self, const st_config_node *node, const char *name)
{
    return "test.conf:1";
}

static const char *const *fake_cfg_names(st_instance *self, const st_config_node *node)
{
    static const char *names[16];
    size_t k = 0;
    for (size_t i = 0; node && node->pairs[i] && k < 15; i += 2)
        names[k++] = node->pairs[i];
    names[k] = NULL;
    return names;
}

static const st_project_info *fake_project(st_instance *self)
{
    return &self->project;
}

/* The fake import graph: nodes are paths, edges "a imports b". */
#define MAX_NODES 16
struct st_graph {
    const char *paths[MAX_NODES];
    size_t n;
    uint32_t deps[MAX_NODES][MAX_NODES], rdeps[MAX_NODES][MAX_NODES];
    size_t n_deps[MAX_NODES], n_rdeps[MAX_NODES];
};

static st_graph test_graph;
static int graph_enabled;

static size_t g_count(const st_graph *g)
{
    return g->n;
}

static const char *g_path(const st_graph *g, uint32_t node)
{
    return node < g->n ? g->paths[node] : NULL;
}

static uint32_t g_find(const st_graph *g, const char *path)
{
    for (uint32_t i = 0; i < g->n; i++)
        if (strcmp(g->paths[i], path) == 0)
            return i;
    return ST_GRAPH_NONE;
}

static size_t g_deps(const st_graph *g, uint32_t node, const uint32_t **ids)
{
    *ids = g->deps[node];
    return g->n_deps[node];
}

static size_t g_rdeps(const st_graph *g, uint32_t node, const uint32_t **ids)
{
    *ids = g->rdeps[node];
    return g->n_rdeps[node];
}

static const st_graph_ops fake_graph_ops = {
    .struct_size = sizeof(st_graph_ops),
    .count = g_count,
    .path = g_path,
    .find = g_find,
    .deps = g_deps,
    .rdeps = g_rdeps,
};

static const st_graph *fake_graph(st_instance *self)
{
    return graph_enabled ? &test_graph : NULL;
}

static void graph_reset(void)
{
    memset(&test_graph, 0, sizeof(test_graph));
    graph_enabled = 1;
}

static uint32_t graph_node(const char *path)
{
    uint32_t id = g_find(&test_graph, path);
    if (id != ST_GRAPH_NONE)
        return id;
    ck_assert_uint_lt(test_graph.n, MAX_NODES);
    test_graph.paths[test_graph.n] = path;
    return (uint32_t)test_graph.n++;
}

/* importer imports imported */
static void graph_edge(const char *importer, const char *imported)
{
    uint32_t a = graph_node(importer), b = graph_node(imported);
    test_graph.deps[a][test_graph.n_deps[a]++] = b;
    test_graph.rdeps[b][test_graph.n_rdeps[b]++] = a;
}

static const st_host fake_host = {
    .struct_size = sizeof(st_host),
    .abi_major = ST_ABI_MAJOR,
    .abi_minor = ST_ABI_MINOR,
    .core_version = "test",
    .log = fake_log,
    .cfg_string = fake_cfg_string,
    .cfg_bool = fake_cfg_bool,
    .cfg_where = fake_cfg_where,
    .cfg_names = fake_cfg_names,
    .project = fake_project,
    .graph = fake_graph,
    .graph_ops = &fake_graph_ops,
};

/* ---- the sink: records the answers ------------------------------------------------------------ */

typedef struct answers {
    char text[4096]; /* "I path\n" / "R path\n" in answer order */
} answers;

static int sink_integrated(void *opaque, const char *path)
{
    answers *a = opaque;
    size_t used = strlen(a->text);
    snprintf(a->text + used, sizeof(a->text) - used, "I %s\n", path);
    return ST_OK;
}

static int sink_redundant(void *opaque, const char *path)
{
    answers *a = opaque;
    size_t used = strlen(a->text);
    snprintf(a->text + used, sizeof(a->text) - used, "R %s\n", path);
    return ST_OK;
}

/* ---- fixture: a project dir with a data dir, one plugin instance ------------------------------ */

typedef struct fixture {
    char root[64];
    char data[96];
    st_instance inst;
    void *ctx;
    answers ans;
} fixture;

static void fx_write(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    char *slash = strrchr(path, '/');
    for (char *p = path + 1; p <= slash; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static char *fx_read(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    char *data = NULL;
    size_t len = 0;
    int r = mm_read_file(path, &data, &len, NULL, 0);
    return r == 0 ? data : NULL;
}

static void fx_setup(fixture *f, const st_config_node *cfg)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->root, sizeof(f->root), "/tmp/st-mm-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->root));
    snprintf(f->data, sizeof(f->data), "%s/sandbox_data", f->root);
    ck_assert_int_eq(mkdir(f->data, 0755), 0);
    f->inst.project.struct_size = sizeof(st_project_info);
    f->inst.project.root = f->root;
    f->inst.project.data_dir = f->data;
    graph_reset();
    ck_assert_int_eq(mm_create(&fake_host, &f->inst, cfg, &f->ctx), ST_OK);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void fx_teardown(fixture *f)
{
    mm_destroy(f->ctx);
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Offers the modules (NULL-terminated paths; a leading '!' marks a redundant one). */
static int fx_integrate(fixture *f, const char *const *paths)
{
    st_integrate_module mods[16];
    const char *const no_parents[] = {NULL};
    size_t n = 0;
    for (; paths[n]; n++) {
        ck_assert_uint_lt(n, 16);
        int redundant = paths[n][0] == '!';
        mods[n] = (st_integrate_module){
            .struct_size = sizeof(st_integrate_module),
            .path = paths[n] + redundant,
            .parents = no_parents,
            .classification = redundant ? ST_CLASS_REDUNDANT : ST_CLASS_CANDIDATE,
            .coverage = -1,
            .runtime_s = 0.1,
        };
    }
    st_integrate_request req = {sizeof(req), mods, n};
    st_integrate_sink sink = {sizeof(sink), &f->ans, sink_integrated, sink_redundant};
    f->ans.text[0] = '\0';
    f->inst.log[0] = '\0';
    return mm_integrate(f->ctx, &req, &sink);
}

/* Every workflow, "id:steps" joined by ";" in id order. */
static char *fx_workflows(fixture *f)
{
    char path[256], *out = calloc(1, 4096);
    snprintf(path, sizeof(path), "%s/workflows.db", f->data);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT id, workflow FROM workflows ORDER BY id", -1,
                                        &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        size_t used = strlen(out);
        snprintf(out + used, 4096 - used, "%lld:%s;", (long long)sqlite3_column_int64(st, 0),
                 (const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

/* Names in the data dir other than module_map.json and workflows.db. */
static int stray_files(const char *dir, char *names, size_t size)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    int n = 0;
    names[0] = '\0';
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            !strcmp(e->d_name, "module_map.json") || !strcmp(e->d_name, "workflows.db"))
            continue;
        size_t used = strlen(names);
        snprintf(names + used, size - used, "%s ", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

#define MODS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void assert_map(fixture *f, const char *expected)
{
    char *got = fx_read(f->data, "module_map.json");
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, expected);
    free(got);
}

/* ---- reading the four shapes ------------------------------------------------------------------ */

START_TEST(read_canonical)
{
    fixture f;
    fx_setup(&f, NULL);
    fx_write(f.data, "module_map.json",
             "{\"modules\": {\"b/c.py\": 1, \"a.py\": 3}, \"groups\": {\"3\": 3, \"1\": 1},"
             " \"tags\": {\"a.py\": [\"core\", 2, true, null, {\"z\": 1.5e3, \"y\": []}]}}");
    ck_assert_int_eq(fx_integrate(&f, MODS("new.py")), ST_OK);
    assert_map(&f, "{\n"
                   "  \"groups\": {\n    \"1\": 1,\n    \"3\": 3,\n    \"4\": 4\n  },\n"
                   "  \"modules\": {\n    \"a.py\": 3,\n    \"b/c.py\": 1,\n    \"new.py\": 4\n  },\n"
                   "  \"tags\": {\n    \"a.py\": [\n      \"core\",\n      2,\n      true,\n"
                   "      null,\n      {\n        \"y\": [],\n        \"z\": 1.5e3\n      }\n"
                   "    ]\n  }\n"
                   "}\n");
    ck_assert_str_eq(f.ans.text, "I new.py\n");
    fx_teardown(&f);
}
END_TEST

START_TEST(read_flat_ints)
{
    fixture f;
    fx_setup(&f, NULL);
    fx_write(f.data, "module_map.json", "{\"b.py\": 5, \"a.py\": 2}\n");
    ck_assert_int_eq(fx_integrate(&f, MODS("c.py")), ST_OK);
    assert_map(&f, "{\n"
                   "  \"groups\": {\n    \"2\": 2,\n    \"5\": 5,\n    \"6\": 6\n  },\n"
                   "  \"modules\": {\n    \"a.py\": 2,\n    \"b.py\": 5,\n    \"c.py\": 6\n  },\n"
                   "  \"tags\": {}\n"
                   "}\n");
    fx_teardown(&f);
}
END_TEST

START_TEST(read_group_lists)
{
    fixture f;
    fx_setup(&f, NULL);
    fx_write(f.data, "module_map.json",
             "{\"7\": [\"a.py\", \"b.py\"], \"core\": [\"c.py\"], \"alpha\": [\"d.py\"]}");
    ck_assert_int_eq(fx_integrate(&f, MODS("e.py")), ST_OK);
    /* numeric names keep their id; names get max + 1, + 2 in name order */
    assert_map(&f, "{\n"
                   "  \"groups\": {\n    \"10\": 10,\n    \"7\": 7,\n    \"alpha\": 8,\n"
                   "    \"core\": 9\n  },\n"
                   "  \"modules\": {\n    \"a.py\": 7,\n    \"b.py\": 7,\n    \"c.py\": 9,\n"
                   "    \"d.py\": 8,\n    \"e.py\": 10\n  },\n"
                   "  \"tags\": {}\n"
                   "}\n");
    fx_teardown(&f);
}
END_TEST

START_TEST(read_group_names)
{
    fixture f;
    fx_setup(&f, NULL);
    fx_write(f.root, "pkg/mod.py", "X = 1\n");
    fx_write(f.data, "module_map.json", "{\"a.py\": \"3\", \"b.py\": \"util\", \"pkg.mod\": \"3\"}");
    ck_assert_int_eq(fx_integrate(&f, MODS("z.py")), ST_OK);
    /* the dotted key becomes the file's repo-relative path */
    assert_map(&f, "{\n"
                   "  \"groups\": {\n    \"3\": 3,\n    \"5\": 5,\n    \"util\": 4\n  },\n"
                   "  \"modules\": {\n    \"a.py\": 3,\n    \"b.py\": 4,\n    \"pkg/mod.py\": 3,\n"
                   "    \"z.py\": 5\n  },\n"
                   "  \"tags\": {}\n"
                   "}\n");
    fx_teardown(&f);
}
END_TEST

START_TEST(no_map_yet)
{
    fixture f;
    fx_setup(&f, NULL);
    rmdir(f.data); /* the data dir is created when missing */
    ck_assert_int_eq(fx_integrate(&f, MODS("solo.py")), ST_OK);
    assert_map(&f, "{\n  \"groups\": {\n    \"1\": 1\n  },\n"
                   "  \"modules\": {\n    \"solo.py\": 1\n  },\n  \"tags\": {}\n}\n");
    fx_teardown(&f);
}
END_TEST

/* ---- ids -------------------------------------------------------------------------------------- */

START_TEST(ids_join_lowest_neighbour)
{
    fixture f;
    fx_setup(&f, NULL);
    fx_write(f.data, "module_map.json", "{\"lib/a.py\": 5, \"lib/b.py\": 2, \"lib/c.py\": 9}");
    graph_edge("new.py", "lib/a.py");   /* new imports a (5) */
    graph_edge("lib/b.py", "new.py");   /* b (2) imports new */
    graph_edge("other.py", "lib/c.py"); /* other imports c (9) */
    ck_assert_int_eq(fx_integrate(&f, MODS("other.py", "new.py", "alone.py")), ST_OK);
    assert_map(&f, "{\n"
                   "  \"groups\": {\n    \"10\": 10,\n    \"2\": 2,\n    \"5\": 5,\n    \"9\": 9\n"
                   "  },\n"
                   "  \"modules\": {\n    \"alone.py\": 10,\n    \"lib/a.py\": 5,\n"
                   "    \"lib/b.py\": 2,\n    \"lib/c.py\": 9,\n    \"new.py\": 2,\n"
                   "    \"other.py\": 9\n  },\n"
                   "  \"tags\": {}\n"
                   "}\n");
    ck_assert_str_eq(f.ans.text, "I alone.py\nI new.py\nI other.py\n");
    fx_teardown(&f);
}
END_TEST

START_TEST(ids_new_modules_join_each_other)
{
    fixture f;
    fx_setup(&f, NULL);
    graph_edge("isolated.py", "helper.py");
    graph_edge("x.py", "z.py"); /* x and y both import z: all three in one group */
    graph_edge("y.py", "z.py");
    ck_assert_int_eq(fx_integrate(&f, MODS("isolated.py", "helper.py", "y.py", "x.py", "z.py")),
                     ST_OK);
    assert_map(&f, "{\n  \"groups\": {\n    \"1\": 1,\n    \"2\": 2\n  },\n"
                   "  \"modules\": {\n    \"helper.py\": 1,\n    \"isolated.py\": 1,\n"
                   "    \"x.py\": 2,\n    \"y.py\": 2,\n    \"z.py\": 2\n  },\n"
                   "  \"tags\": {}\n}\n");
    ck_assert_str_eq(f.ans.text, "I helper.py\nI isolated.py\nI x.py\nI y.py\nI z.py\n");
    fx_teardown(&f);
}
END_TEST

START_TEST(ids_existing_never_change)
{
    fixture f;
    fx_setup(&f, NULL);
    fx_write(f.data, "module_map.json", "{\"a.py\": 4, \"b.py\": 1}");
    /* b imports a: a new module importing both would join 1, but a and b keep theirs */
    graph_edge("b.py", "a.py");
    graph_edge("n.py", "a.py");
    graph_edge("n.py", "b.py");
    ck_assert_int_eq(fx_integrate(&f, MODS("n.py", "a.py")), ST_OK);
    assert_map(&f, "{\n  \"groups\": {\n    \"1\": 1,\n    \"4\": 4\n  },\n"
                   "  \"modules\": {\n    \"a.py\": 4,\n    \"b.py\": 1,\n    \"n.py\": 1\n  },\n"
                   "  \"tags\": {}\n}\n");
    /* a.py was in the map already: answered integrated, unchanged */
    ck_assert_str_eq(f.ans.text, "I n.py\nI a.py\n");
    fx_teardown(&f);
}
END_TEST

START_TEST(ids_without_graph)
{
    fixture f;
    fx_setup(&f, NULL);
    graph_enabled = 0;
    ck_assert_int_eq(fx_integrate(&f, MODS("b.py", "a.py")), ST_OK);
    assert_map(&f, "{\n  \"groups\": {\n    \"1\": 1,\n    \"2\": 2\n  },\n"
                   "  \"modules\": {\n    \"a.py\": 1,\n    \"b.py\": 2\n  },\n"
                   "  \"tags\": {}\n}\n");
    ck_assert_ptr_nonnull(strstr(f.inst.log, "no import graph"));
    fx_teardown(&f);
}
END_TEST

/* ---- the seed's example, redundancy, bad input ------------------------------------------------ */

START_TEST(seed_pkg_a_pkg_b)
{
    fixture f;
    fx_setup(&f, NULL);
    fx_write(f.root, "pkg_a/common.py", "VALUE = 1\n");
    fx_write(f.root, "pkg_b/common.py", "VALUE = 2\n");
    ck_assert_int_eq(fx_integrate(&f, MODS("pkg_a/common.py", "pkg_b/common.py")), ST_OK);
    assert_map(&f, "{\n  \"groups\": {\n    \"1\": 1,\n    \"2\": 2\n  },\n"
                   "  \"modules\": {\n    \"pkg_a/common.py\": 1,\n    \"pkg_b/common.py\": 2\n"
                   "  },\n  \"tags\": {}\n}\n");
    char *wf = fx_workflows(&f);
    ck_assert_str_eq(wf, "1:pkg_a.common;2:pkg_b.common;");
    free(wf);
    fx_teardown(&f);
}
END_TEST

START_TEST(redundant_never_integrated)
{
    fixture f;
    fx_setup(&f, NULL);
    ck_assert_int_eq(fx_integrate(&f, MODS("!dup.py", "good.py")), ST_OK);
    char *map = fx_read(f.data, "module_map.json");
    ck_assert_ptr_nonnull(map);
    ck_assert_ptr_null(strstr(map, "dup.py"));
    ck_assert_ptr_nonnull(strstr(map, "\"good.py\": 1"));
    free(map);
    char *wf = fx_workflows(&f);
    ck_assert_str_eq(wf, "1:good;");
    free(wf);
    ck_assert_str_eq(f.ans.text, "I good.py\nR dup.py\n");
    /* only redundant modules: no file is created at all */
    fixture g;
    fx_setup(&g, NULL);
    ck_assert_int_eq(fx_integrate(&g, MODS("!dup.py")), ST_OK);
    char *none = fx_read(g.data, "module_map.json");
    ck_assert_ptr_null(none);
    ck_assert_str_eq(g.ans.text, "R dup.py\n");
    fx_teardown(&g);
    fx_teardown(&f);
}
END_TEST

static const char *const malformed_maps[][2] = {
    {"{\"a.py\": 1,\n  \"b.py\": }\n", "line 2, column"},
    {"{\"a.py\": 1", "line 1, column"},
    {"[\"a.py\"]", "expected an object"},
    {"{\"a.py\": [1, 2]}", "group \"a.py\""},
    {"{\"a.py\": {\"x\": 1}}", "module \"a.py\""},
    /* a "modules" that is not an object is not a legacy module called "modules" */
    {"{\"modules\": 5}", "\"modules\": expected an object"},
    {"{\"modules\": [\"a.py\"], \"groups\": {}}", "found an array"},
    {"{\"modules\": null}", "found null"},
};

START_TEST(malformed_left_untouched)
{
    fixture f;
    fx_setup(&f, NULL);
    const char *text = malformed_maps[_i][0];
    fx_write(f.data, "module_map.json", text);
    int rc = fx_integrate(&f, MODS("x.py", "y.py"));
    ck_assert_int_eq(rc, ST_ERR_INVALID);
    char *after = fx_read(f.data, "module_map.json");
    ck_assert_ptr_nonnull(after);
    ck_assert_str_eq(after, text); /* byte for byte */
    free(after);
    ck_assert_msg(strstr(f.inst.log, malformed_maps[_i][1]) && strstr(f.inst.log, "module_map.json")
                      && strstr(f.inst.log, "left untouched"),
                  "log: %s", f.inst.log);
    ck_assert_str_eq(f.ans.text, ""); /* integration skipped: nothing answered */
    char stray[256];
    ck_assert_msg(stray_files(f.data, stray, sizeof(stray)) == 0, "stray: %s", stray);
    char dbpath[256];
    snprintf(dbpath, sizeof(dbpath), "%s/workflows.db", f.data);
    ck_assert_int_ne(access(dbpath, F_OK), 0); /* no workflow either */
    fx_teardown(&f);
}
END_TEST

START_TEST(paths_outside_refused)
{
    fixture f;
    fx_setup(&f, NULL);
    ck_assert_int_eq(fx_integrate(&f, MODS("../up.py", "/abs.py", "a/./b.py", "ok.py")), ST_OK);
    ck_assert_str_eq(f.ans.text, "I ok.py\n");
    char *map = fx_read(f.data, "module_map.json");
    ck_assert_ptr_null(strstr(map, "up.py"));
    ck_assert_ptr_null(strstr(map, "abs.py"));
    free(map);
    fx_teardown(&f);
}
END_TEST

START_TEST(unknown_top_level_keys_kept)
{
    fixture f;
    fx_setup(&f, NULL);
    fx_write(f.data, "module_map.json",
             "{\"version\": 2, \"modules\": {\"a.py\": 1}, \"groups\": {\"1\": 1},"
             " \"zeta\": {\"owner\": \"ci\", \"n\": [1, 2.5]}, \"alpha\": \"x\", \"tags\": []}");
    ck_assert_int_eq(fx_integrate(&f, MODS("new.py")), ST_OK);
    assert_map(&f, "{\n"
                   "  \"alpha\": \"x\",\n"
                   "  \"groups\": {\n    \"1\": 1,\n    \"2\": 2\n  },\n"
                   "  \"modules\": {\n    \"a.py\": 1,\n    \"new.py\": 2\n  },\n"
                   "  \"tags\": [],\n"
                   "  \"version\": 2,\n"
                   "  \"zeta\": {\n    \"n\": [\n      1,\n      2.5\n    ],\n"
                   "    \"owner\": \"ci\"\n  }\n"
                   "}\n");
    fx_teardown(&f);
}
END_TEST

START_TEST(map_paths_outside_dropped)
{
    fixture f;
    fx_setup(&f, NULL);
    fx_write(f.data, "module_map.json",
             "{\"modules\": {\"../../etc/passwd\": 1, \"/etc/shadow\": 2, \"ok.py\": 1,"
             " \"pkg/../../x.py\": 3, \"./../y.py\": 1, \"a..b/c.py\": 1}, \"groups\": {}}");
    ck_assert_int_eq(fx_integrate(&f, MODS("new.py")), ST_OK);
    char *map = fx_read(f.data, "module_map.json");
    ck_assert_ptr_nonnull(map);
    ck_assert_msg(!strstr(map, "passwd") && !strstr(map, "shadow") && !strstr(map, "x.py") &&
                      !strstr(map, "y.py"),
                  "map: %s", map);
    ck_assert_ptr_nonnull(strstr(map, "\"ok.py\": 1"));
    ck_assert_ptr_nonnull(strstr(map, "\"a..b/c.py\": 1")); /* ".." inside a name stays */
    ck_assert_ptr_nonnull(strstr(map, "\"new.py\""));
    free(map);
    const char *const outside[] = {"'../../etc/passwd'", "'/etc/shadow'", "'pkg/../../x.py'",
                                   "'./../y.py'"};
    for (size_t i = 0; i < 4; i++)
        ck_assert_msg(strstr(f.inst.log, outside[i]) && strstr(f.inst.log, "outside the project"),
                      "%s not reported: %s", outside[i], f.inst.log);
    ck_assert_str_eq(f.ans.text, "I new.py\n");
    fx_teardown(&f);
}
END_TEST

/* ---- idempotence, workflows, atomicity -------------------------------------------------------- */

START_TEST(second_cycle_changes_nothing)
{
    fixture f;
    fx_setup(&f, NULL);
    fx_write(f.data, "module_map.json", "{\"lib/a.py\": 5}");
    graph_edge("isolated.py", "helper.py");
    graph_edge("helper.py", "lib/a.py");
    const char *const *mods = MODS("isolated.py", "helper.py", "solo.py");
    ck_assert_int_eq(fx_integrate(&f, mods), ST_OK);
    char *map1 = fx_read(f.data, "module_map.json");
    char *wf1 = fx_workflows(&f);
    char ans1[4096];
    snprintf(ans1, sizeof(ans1), "%s", f.ans.text);
    struct stat st1, st2;
    char path[256];
    snprintf(path, sizeof(path), "%s/module_map.json", f.data);
    ck_assert_int_eq(stat(path, &st1), 0);

    ck_assert_int_eq(fx_integrate(&f, mods), ST_OK);
    char *map2 = fx_read(f.data, "module_map.json");
    char *wf2 = fx_workflows(&f);
    ck_assert_int_eq(stat(path, &st2), 0);
    ck_assert_str_eq(map1, map2);
    ck_assert_str_eq(wf1, wf2); /* same ids, no duplicate workflow */
    ck_assert_str_eq(ans1, f.ans.text);
    ck_assert_uint_eq(st1.st_ino, st2.st_ino); /* not even rewritten */
    ck_assert_str_eq(wf1, "1:helper;2:isolated;3:solo;");
    ck_assert_ptr_nonnull(strstr(map1, "\"helper.py\": 5"));
    ck_assert_ptr_nonnull(strstr(map1, "\"isolated.py\": 5"));
    ck_assert_ptr_nonnull(strstr(map1, "\"solo.py\": 6"));
    free(map1);
    free(map2);
    free(wf1);
    free(wf2);
    fx_teardown(&f);
}
END_TEST

START_TEST(workflows_appended_to_group)
{
    fixture f;
    fx_setup(&f, NULL);
    fx_write(f.data, "module_map.json", "{\"lib/a.py\": 5, \"lib/x.py\": 7}");
    /* a workflow that another tool made (menace's WorkflowDB layout: id + workflow) */
    char path[256];
    snprintf(path, sizeof(path), "%s/workflows.db", f.data);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db,
                                  "CREATE TABLE workflows (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                                  " workflow TEXT, title TEXT);"
                                  "INSERT INTO workflows (workflow) VALUES ('lib.a, lib.x');"
                                  "INSERT INTO workflows (workflow) VALUES ('lib.x');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    graph_edge("lib/b.py", "lib/a.py");
    graph_edge("lib/c.py", "lib/b.py");
    ck_assert_int_eq(fx_integrate(&f, MODS("lib/c.py", "lib/b.py")), ST_OK);
    char *wf = fx_workflows(&f);
    /* b and c joined group 5 (a's): appended to the workflow that has a step of group 5, each
     * got its own; the group-7-only workflow is left alone */
    ck_assert_str_eq(wf, "1:lib.a, lib.x,lib.b,lib.c;2:lib.x;3:lib.b;4:lib.c;");
    free(wf);
    ck_assert_int_eq(fx_integrate(&f, MODS("lib/c.py", "lib/b.py")), ST_OK);
    wf = fx_workflows(&f);
    ck_assert_str_eq(wf, "1:lib.a, lib.x,lib.b,lib.c;2:lib.x;3:lib.b;4:lib.c;");
    free(wf);
    fx_teardown(&f);
}
END_TEST

START_TEST(workflows_repaired_after_interrupted_cycle)
{
    /* a cycle that committed workflows.db but died before the rename: the next cycle sees the
     * modules as new again and must not duplicate their workflows */
    fixture f;
    fx_setup(&f, NULL);
    graph_edge("m.py", "n.py");
    ck_assert_int_eq(fx_integrate(&f, MODS("m.py", "n.py")), ST_OK);
    char path[256];
    snprintf(path, sizeof(path), "%s/module_map.json", f.data);
    unlink(path);
    ck_assert_int_eq(fx_integrate(&f, MODS("m.py", "n.py")), ST_OK);
    char *wf = fx_workflows(&f);
    ck_assert_str_eq(wf, "1:m;2:n;");
    free(wf);
    fx_teardown(&f);
}
END_TEST

START_TEST(atomic_write_leaves_no_temp)
{
    fixture f;
    fx_setup(&f, NULL);
    fx_write(f.data, "module_map.json", "{\"a.py\": 1}");
    char path[256];
    snprintf(path, sizeof(path), "%s/module_map.json", f.data);
    chmod(path, 0640);
    struct stat before, after;
    ck_assert_int_eq(stat(path, &before), 0);
    ck_assert_int_eq(fx_integrate(&f, MODS("b.py")), ST_OK);
    ck_assert_int_eq(stat(path, &after), 0);
    ck_assert_uint_ne(before.st_ino, after.st_ino); /* replaced by rename, not rewritten */
    ck_assert_uint_eq(after.st_mode & 0777, 0640);  /* keeps its mode */
    char stray[256];
    ck_assert_msg(stray_files(f.data, stray, sizeof(stray)) == 0, "stray: %s", stray);
    fx_teardown(&f);
}
END_TEST

START_TEST(failed_workflows_leave_map_alone)
{
    fixture f;
    fx_setup(&f, NULL);
    const char *text = "{\"a.py\": 1}";
    fx_write(f.data, "module_map.json", text);
    /* workflows.db is a directory: the database cannot be opened */
    char path[256];
    snprintf(path, sizeof(path), "%s/workflows.db", f.data);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    ck_assert_int_eq(fx_integrate(&f, MODS("b.py")), ST_ERR_IO);
    char *after = fx_read(f.data, "module_map.json");
    ck_assert_str_eq(after, text);
    free(after);
    ck_assert_str_eq(f.ans.text, "");
    char stray[256];
    ck_assert_msg(stray_files(f.data, stray, sizeof(stray)) == 0, "stray: %s", stray);
    fx_teardown(&f);
}
END_TEST

START_TEST(mm_dotted_names)
{
    const char *cases[][3] = {
        {"pkg_a/common.py", "pkg_a.common", "pkg_a.common"},
        {"pkg/__init__.py", "pkg", "pkg"},
        {"top.py", "top", "top"},
        {"src/pkg/mod.py", "src.pkg.mod", "pkg.mod"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int strip = 0; strip < 2; strip++) {
            char *d = mm_dotted_name(cases[i][0], strip);
            ck_assert_str_eq(d, cases[i][1 + strip]);
            free(d);
        }
    }
    ck_assert_ptr_null(mm_dotted_name("README.md", 0));
    ck_assert_ptr_null(mm_dotted_name("__init__.py", 0));
}
END_TEST

/* ---- settings --------------------------------------------------------------------------------- */

START_TEST(settings_unknown_rejected)
{
    st_instance inst = {0};
    const char *const pairs[] = {"modul_map", "x.json", NULL};
    st_config_node node = {pairs};
    void *ctx = NULL;
    ck_assert_int_eq(mm_create(&fake_host, &inst, &node, &ctx), ST_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(inst.log, "test.conf:1: unknown setting 'modul_map'"));
}
END_TEST

START_TEST(settings_names_and_no_workflows)
{
    const char *const pairs[] = {"module_map", "maps/mm.json", "workflows", "false", NULL};
    st_config_node node = {pairs};
    fixture f;
    fx_setup(&f, &node);
    ck_assert_int_eq(fx_integrate(&f, MODS("a.py")), ST_OK);
    char *map = fx_read(f.data, "maps/mm.json");
    ck_assert_ptr_nonnull(map);
    free(map);
    char path[256];
    snprintf(path, sizeof(path), "%s/workflows.db", f.data);
    ck_assert_int_ne(access(path, F_OK), 0);
    fx_teardown(&f);
}
END_TEST

START_TEST(settings_workflows_db_elsewhere)
{
    const char *const pairs[] = {"workflows_db", "dbs/wf.db", NULL};
    st_config_node node = {pairs};
    fixture f;
    fx_setup(&f, &node);
    ck_assert_int_eq(fx_integrate(&f, MODS("a.py")), ST_OK);
    char path[256];
    snprintf(path, sizeof(path), "%s/dbs/wf.db", f.data);
    ck_assert_int_eq(access(path, F_OK), 0);
    fx_teardown(&f);
}
END_TEST

START_TEST(descriptor_checks)
{
    const st_plugin_descriptor *d = selftest_plugin_entry(ST_ABI_MAJOR, ST_ABI_MINOR);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->kind, ST_KIND_INTEGRATOR);
    ck_assert_str_eq(d->name, "integrator-modulemap");
    const st_integrator_ops *ops = d->ops;
    ck_assert_ptr_nonnull(ops->integrate);
    ck_assert_ptr_nonnull(ops->life.create);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("integrator-modulemap");
    TCase *t = tcase_create("read");
    tcase_add_test(t, read_canonical);
    tcase_add_test(t, read_flat_ints);
    tcase_add_test(t, read_group_lists);
    tcase_add_test(t, read_group_names);
    tcase_add_test(t, no_map_yet);
    suite_add_tcase(s, t);
    t = tcase_create("ids");
    tcase_add_test(t, ids_join_lowest_neighbour);
    tcase_add_test(t, ids_new_modules_join_each_other);
    tcase_add_test(t, ids_existing_never_change);
    tcase_add_test(t, ids_without_graph);
    suite_add_tcase(s, t);
    t = tcase_create("integrate");
    tcase_add_test(t, seed_pkg_a_pkg_b);
    tcase_add_test(t, redundant_never_integrated);
    tcase_add_loop_test(t, malformed_left_untouched, 0,
                        (int)(sizeof(malformed_maps) / sizeof(malformed_maps[0])));
    tcase_add_test(t, paths_outside_refused);
    tcase_add_test(t, unknown_top_level_keys_kept);
    tcase_add_test(t, map_paths_outside_dropped);
    suite_add_tcase(s, t);
    t = tcase_create("cycles");
    tcase_add_test(t, second_cycle_changes_nothing);
    tcase_add_test(t, workflows_appended_to_group);
    tcase_add_test(t, workflows_repaired_after_interrupted_cycle);
    tcase_add_test(t, atomic_write_leaves_no_temp);
    tcase_add_test(t, failed_workflows_leave_map_alone);
    tcase_add_test(t, mm_dotted_names);
    suite_add_tcase(s, t);
    t = tcase_create("settings");
    tcase_add_test(t, settings_unknown_rejected);
    tcase_add_test(t, settings_names_and_no_workflows);
    tcase_add_test(t, settings_workflows_db_elsewhere);
    tcase_add_test(t, descriptor_checks);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
