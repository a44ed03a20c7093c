/* SPDX-License-Identifier: MIT */
/* The discover stage (docs/spec.md §3, §7): the test paths, the discovery plugins' batches and
 * modules to check, the orphan cache's candidates; and the `discover` command. */
#include "config.h"

#include "pipeline_stages.h"

#include "exitstatus.h"
#include "json.h"
#include "lock.h"
#include "log.h"
#include "pygraph.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- test paths ----------------------------------------------------------------------------- */

/* A .py file that pytest would not collect as a test file: checked as a module (docs/spec.md
 * §8.1). */
static int is_module_path(const char *rel)
{
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    size_t n = strlen(base);
    if (n < 4 || strcmp(base + n - 3, ".py") != 0)
        return 0;
    if (strncmp(base, "test_", 5) == 0 || (n >= 8 && strcmp(base + n - 8, "_test.py") == 0) ||
        strcmp(base, "conftest.py") == 0)
        return 0;
    return 1;
}

/* The default test paths: pytest's own `testpaths` when the project's configuration sets them
 * (pf asked pytest), else tests/ if it exists, else the root. */
static void default_paths(const st_settings *s, const st_preflight *pf, st_strv *given)
{
    if (pf && pf->config_asked && pf->config_error)
        st_warn("pytest could not read the project's configuration (%s); test paths: tests/ "
                "if it exists, else the project root",
                pf->config_error);
    if (pf && pf->config_asked && !pf->config_error && pf->testpaths.n) {
        if (pf->default_paths.n) {
            for (size_t i = 0; i < pf->default_paths.n; i++)
                st_strv_push(given, pf->default_paths.v[i]);
            st_info("test paths from testpaths in %s", pf->inipath ? pf->inipath : "?");
            return;
        }
        /* what pytest does then: run the invocation dir (the root) */
        char a[PATH_MAX], b[PATH_MAX];
        int same_root = pf->rootdir && realpath(pf->rootdir, a) && realpath(s->project_root, b) &&
                        strcmp(a, b) == 0;
        if (same_root)
            st_warn("testpaths in %s matches nothing; testing the whole project root, as pytest "
                    "does",
                    pf->inipath ? pf->inipath : "the pytest configuration");
        else
            st_warn("pytest's rootdir is %s, not the project root: pytest ignores the testpaths "
                    "of %s there; testing the whole project root, as pytest does",
                    pf->rootdir ? pf->rootdir : "?",
                    pf->inipath ? pf->inipath : "its configuration");
        st_strv_push(given, ".");
        return;
    }
    char *tests = st_path_join(s->project_root, "tests");
    struct stat st;
    st_strv_push(given, tests && stat(tests, &st) == 0 && S_ISDIR(st.st_mode) ? "tests" : ".");
    free(tests);
}

/* Turns the configured or given paths into repo-relative batch paths (a pytest node id,
 * "FILE::NAME...", keeps its node part); .py files named on the command line that are not test
 * files go to modules. pf: the preflight, for the default paths (NULL when paths are set).
 * Returns ST_OK, or ST_ERR_INVALID for a bad path (logged), ST_ERR_NOMEM. */
int st_resolve_paths(const st_settings *s, const st_preflight *pf, st_strv *out,
                         st_strv *modules)
{
    st_strv given = {0};
    for (size_t i = 0; i < s->paths.n; i++)
        st_strv_push(&given, s->paths.v[i]);
    int from_cli = s->paths_from_cli;
    const char *src = from_cli ? "" : " (from the config's paths)";
    if (given.n == 0) {
        default_paths(s, pf, &given);
        from_cli = 0;
        src = " (from pytest's testpaths)";
    }
    int rc = given.oom ? ST_ERR_NOMEM : ST_OK;
    char real_root[PATH_MAX];
    if (!realpath(s->project_root, real_root)) {
        st_error("project root %s: %s", s->project_root, strerror(errno));
        st_strv_free(&given);
        return ST_ERR_INVALID;
    }
    for (size_t i = 0; i < given.n && rc == ST_OK; i++) {
        const char *p = given.v[i];
        const char *node = strstr(p, "::"); /* a node id: the file part is a path */
        char *file = node ? st_strndup(p, (size_t)(node - p)) : st_strdup(p);
        char *abs = file ? st_path_absolute(from_cli ? NULL : s->project_root, file) : NULL;
        char real[PATH_MAX];
        char *rel = NULL;
        struct stat st;
        if (!abs) {
            rc = ST_ERR_NOMEM;
        } else if (node && (!file[0] || !node[2])) {
            st_error("test path '%s'%s: not a pytest node id (FILE::NAME)", p, src);
            rc = ST_ERR_INVALID;
        } else if (!realpath(abs, real)) {
            st_error("test path '%s'%s: %s", p, src,
                     errno == ENOENT ? "no such file or directory" : strerror(errno));
            rc = ST_ERR_INVALID;
        } else if (!(rel = st_path_relative_to(real_root, real))) {
            st_error("test path '%s'%s is outside the project root %s", p, src, s->project_root);
            rc = ST_ERR_INVALID;
        } else if (node && (stat(real, &st) < 0 || !S_ISREG(st.st_mode))) {
            st_error("test path '%s'%s: '%s' is not a file (a node id names a test file)", p, src,
                     file);
            rc = ST_ERR_INVALID;
        } else if (node) {
            char *id = st_asprintf("%s%s", rel, node);
            if (id && !st_strv_contains(out, id))
                st_strv_push(out, id);
            rc = id ? ST_OK : ST_ERR_NOMEM;
            free(id);
        } else if (from_cli && is_module_path(rel)) {
            if (!st_strv_contains(modules, rel))
                st_strv_push(modules, rel);
        } else if (!st_strv_contains(out, rel)) {
            st_strv_push(out, rel);
        }
        free(rel);
        free(abs);
        free(file);
    }
    st_strv_free(&given);
    return rc;
}

/* ---- discovery ------------------------------------------------------------------------------ */

/* The entry of path, created with origin when new (a module named on the command line stays
 * "explicit" when discovery reports it too). */
st_batch *st_module_add(st_module_list *ml, const char *path, st_module_origin origin)
{
    for (size_t i = 0; i < ml->n; i++)
        if (strcmp(ml->v[i].path, path) == 0)
            return &ml->v[i];
    if (ml->n == ml->cap) {
        size_t cap = ml->cap ? ml->cap * 2 : 16;
        st_batch *g = realloc(ml->v, cap * sizeof(*g));
        if (!g)
            return NULL;
        ml->v = g;
        ml->cap = cap;
    }
    st_batch *b = &ml->v[ml->n];
    memset(b, 0, sizeof(*b));
    b->path = st_strdup(path);
    if (!b->path)
        return NULL;
    b->kind = ST_EXEC_ORPHAN_CHECK;
    b->origin = origin;
    b->classification = ST_CLASS_CANDIDATE;
    b->coverage = -1;
    b->exit_status = -1;
    ml->n++;
    return b;
}

void st_module_list_free(st_module_list *ml)
{
    for (size_t i = 0; i < ml->n; i++)
        st_batch_free(&ml->v[i]);
    free(ml->v);
    memset(ml, 0, sizeof(*ml));
}

/* The dotted module name of a repo-relative path, or NULL when it is not importable by name
 * (a component that is not an identifier): such a module is run by path. Files under a
 * pythonpath entry are named relative to the deepest one holding them, else files under a src/
 * layout relative to src/. */
char *st_module_name(const st_settings *s, const char *path)
{
    const char *root = s->project_root;
    const char *rel = path;
    size_t best = 0;
    for (size_t i = 0; i < s->pythonpath_rel.n; i++) {
        const char *pp = s->pythonpath_rel.v[i];
        size_t n = strlen(pp);
        if (n > best && strncmp(path, pp, n) == 0 && path[n] == '/')
            best = n;
    }
    if (best) {
        rel = path + best + 1;
    } else if (strncmp(rel, "src/", 4) == 0) {
        char *init = st_asprintf("%s/src/__init__.py", root);
        if (init && access(init, F_OK) != 0)
            rel += 4;
        free(init);
    }
    char *name = st_strndup(rel, strlen(rel) - 3); /* drop ".py" */
    if (!name)
        return NULL;
    size_t n = strlen(name);
    if (n >= 9 && strcmp(name + n - 9, "/__init__") == 0)
        name[n - 9] = '\0';
    for (char *c = name; *c; c++)
        if (*c == '/')
            *c = '.';
    for (char *tok = name, *dot; tok; tok = dot ? dot + 1 : NULL) {
        dot = strchr(tok, '.');
        char save = dot ? *dot : 0;
        if (dot)
            *dot = '\0';
        int ok = st_is_identifier(tok);
        if (dot)
            *dot = save;
        if (!ok) {
            free(name);
            return NULL;
        }
    }
    return name;
}

typedef struct discovery_ctx {
    const st_settings *s;
    st_strv *batches;
    st_module_list *modules;
    st_orphan_cache *cache; /* NULL: the orphan files are not touched */
    const char *plugin;
    int bad;
    const st_orphan_rules *rules; /* files that are never orphans */
    st_strv *excluded;            /* "path\trule" of each file the rules excluded, or NULL */
} discovery_ctx;

static int sink_excluded(void *opaque, const char *path, char *why, size_t why_size)
{
    discovery_ctx *dc = opaque;
    if (why_size)
        why[0] = '\0';
    if (!dc->rules || !path || !st_orphan_rules_excluded(dc->rules, path, why, why_size))
        return 0;
    if (dc->excluded) {
        for (size_t i = 0; i < dc->excluded->n; i++) {
            const char *e = dc->excluded->v[i];
            size_t n = strlen(path);
            if (strncmp(e, path, n) == 0 && e[n] == '\t')
                return 1;
        }
        st_strv_pushf(dc->excluded, "%s\t%s", path, why);
    }
    return 1;
}

int st_orphan_state_load(const st_settings *s, const st_strv *paths, st_orphan_cache *store,
                         st_orphan_cache **cache, st_orphan_rules *rules)
{
    int rc = st_orphans_load(store, s->project_root, s->data_dir);
    if (rc != ST_OK) {
        st_orphans_free(store);
        return rc;
    }
    *cache = store;
    if (s->refresh_orphans)
        st_orphans_clear(store);
    return st_orphan_rules_init(rules, s->project_root, s->data_dir, paths, &s->orphan_exclude,
                                st_exclude_is_default(s));
}

/* Is the orphan_exclude list the built-in default? (only for messages) */
int st_exclude_is_default(const st_settings *s)
{
    size_t n = 0;
    while (st_default_orphan_exclude[n])
        n++;
    if (s->orphan_exclude.n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->orphan_exclude.v[i], st_default_orphan_exclude[i]) != 0)
            return 0;
    return 1;
}

static int sink_add_batch(void *opaque, const char *path)
{
    discovery_ctx *dc = opaque;
    if (!st_path_is_safe_relative(dc->s->project_root, path)) {
        st_error("%s: refused batch path '%s': not inside the project root", dc->plugin, path);
        dc->bad = 1;
        return ST_ERR_INVALID;
    }
    if (!st_strv_contains(dc->batches, path))
        st_strv_push(dc->batches, path);
    return ST_OK;
}

static int sink_add_module(void *opaque, const st_module_entry *entry)
{
    discovery_ctx *dc = opaque;
    if (!st_path_is_safe_relative(dc->s->project_root, entry->path)) {
        st_error("%s: refused module path '%s': not inside the project root", dc->plugin,
                 entry->path);
        return ST_ERR_INVALID;
    }
    st_batch *b = st_module_add(dc->modules, entry->path, entry->origin);
    if (!b)
        return ST_ERR_NOMEM;
    if (dc->cache)
        st_orphans_merge_entry(dc->cache, entry);
    b->classification = entry->classification;
    free(b->class_reason);
    b->class_reason = st_strdup(entry->reason);
    free(b->duplicate_of);
    b->duplicate_of = st_strdup(entry->duplicate_of);
    for (size_t i = 0; entry->parents && entry->parents[i]; i++)
        if (!st_strv_contains(&b->parents, entry->parents[i]))
            st_strv_push(&b->parents, entry->parents[i]);
    return ST_OK;
}

int st_discover_stage(const st_settings *s, st_plugin_set *ps, const st_strv *paths,
                      st_strv *batches, st_module_list *modules, st_orphan_cache *cache,
                      const st_orphan_rules *rules, st_strv *excluded)
{
    int any = 0;
    for (size_t i = 0; i < ps->n; i++) {
        st_instance *inst = ps->list[i];
        if (!st_plugins_usable(inst, ST_KIND_DISCOVERY))
            continue;
        any = 1;
        const st_discovery_ops *ops = inst->ops;
        st_strv pv = {0};
        for (size_t k = 0; k < paths->n; k++)
            st_strv_push(&pv, paths->v[k]);
        /* the orphan switches are discovery-python's settings since ABI 1.5 */
        st_discover_options o = st_plugins_discover_options(s, inst, st_strv_get(&pv));
        discovery_ctx dc = {s, batches, modules, cache, inst->name, 0, rules, excluded};
        st_discovery_sink sink = {sizeof(sink), &dc, sink_add_batch, sink_add_module,
                                  sink_excluded};
        st_inst_lock(inst);
        int rc = ops->discover(inst->ctx, &o, &sink);
        st_inst_unlock(inst);
        st_strv_free(&pv);
        if (rc != ST_OK) {
            st_error("discover stage: %s failed (%s, status %d)", inst->name, st_status_str(rc),
                     rc);
            /* a plugin op after start() is never a configuration error */
            return rc == ST_ERR_INVALID || rc > 0 ? ST_ERR_INTERNAL : rc;
        }
    }
    if (!any)
        for (size_t k = 0; k < paths->n; k++)
            st_strv_push(batches, paths->v[k]);
    /* --include-orphans: the cached orphans of earlier scans are checked too */
    if (cache && s->include_orphans && !s->disable_orphans) {
        st_strv cached = {0};
        st_orphans_to_test(cache, s->include_redundant, &cached);
        for (size_t i = 0; i < cached.n; i++) {
            const st_orphan *o = st_orphans_find(cache, cached.v[i]);
            char why[300];
            /* an integrated module, test code or an excluded file is no candidate any more */
            if (rules && st_orphan_rules_known(rules, cached.v[i])) {
                st_info("orphan cache: %s is not checked: it is in module_map.json",
                        cached.v[i]);
                continue;
            }
            if (rules && st_orphan_rules_excluded(rules, cached.v[i], why, sizeof(why))) {
                st_info("orphan cache: %s is not checked: never an orphan (%s)", cached.v[i],
                        why);
                continue;
            }
            st_batch *b = st_module_add(modules, cached.v[i], ST_ORIGIN_ORPHAN);
            if (!b || !o)
                continue;
            if (!b->class_reason && o->classification) {
                b->classification = strcmp(o->classification, "legacy") == 0      ? ST_CLASS_LEGACY
                                    : strcmp(o->classification, "redundant") == 0 ? ST_CLASS_REDUNDANT
                                                                                  : ST_CLASS_CANDIDATE;
                b->class_reason = st_strdup(o->reason ? o->reason : "cached orphan");
            }
            for (size_t k = 0; k < o->parents.n; k++)
                if (!st_strv_contains(&b->parents, o->parents.v[k]))
                    st_strv_push(&b->parents, o->parents.v[k]);
        }
        st_strv_free(&cached);
    }
    return batches->oom ? ST_ERR_NOMEM : ST_OK;
}

/* ---- the discover command ------------------------------------------------------------------ */

static int module_cmp(const void *a, const void *b)
{
    return strcmp(((const st_batch *)a)->path, ((const st_batch *)b)->path);
}

/* --deps PATH...: every local module PATH reaches, with its importers inside that reach. */
static void gen_deps(yajl_gen g, const st_pygraph *pg, const st_strv *deps)
{
    st_jg_key(g, "deps");
    yajl_gen_map_open(g);
    size_t n = pg ? st_pygraph_count(pg) : 0;
    uint8_t *mark = calloc(n + 1, 1);
    for (size_t i = 0; mark && i < deps->n; i++) {
        st_jg_key(g, deps->v[i]);
        yajl_gen_array_open(g);
        uint32_t start = pg ? st_pygraph_find(pg, deps->v[i]) : ST_PYGRAPH_NONE;
        if (start != ST_PYGRAPH_NONE && st_pygraph_reach(pg, &start, 1, mark, NULL) >= 0) {
            for (uint32_t v = 0; v < n; v++) {
                if (!mark[v] || v == start)
                    continue;
                yajl_gen_map_open(g);
                st_jg_kstr(g, "path", st_pygraph_path(pg, v));
                st_jg_key(g, "parents");
                yajl_gen_array_open(g);
                const uint32_t *ids;
                size_t k = st_pygraph_rdeps(pg, v, &ids);
                for (size_t j = 0; j < k; j++)
                    if (mark[ids[j]])
                        st_jg_str(g, st_pygraph_path(pg, ids[j]));
                yajl_gen_array_close(g);
                yajl_gen_map_close(g);
            }
        }
        yajl_gen_array_close(g);
    }
    free(mark);
    yajl_gen_map_close(g);
}

/* discover --json: one object {"batches", "modules", "orphans", "isolated", "excluded"[,
 * "deps"]} on stdout. Returns ST_OK or ST_ERR_NOMEM. */
static int print_json(st_pipeline *p, const st_strv *batches, const st_module_list *modules,
                      const st_strv *excluded, const st_strv *deps)
{
    yajl_gen g = st_jg_new(0);
    if (!g)
        return ST_ERR_NOMEM;
    yajl_gen_map_open(g);
    st_jg_key(g, "batches");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < batches->n; i++)
        st_jg_str(g, batches->v[i]);
    yajl_gen_array_close(g);
    st_jg_key(g, "modules");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < modules->n; i++) {
        const st_batch *m = &modules->v[i];
        yajl_gen_map_open(g);
        st_jg_kstr(g, "path", m->path);
        st_jg_kstr(g, "origin", m->origin == ST_ORIGIN_ISOLATED ? "isolated" : "orphan");
        st_jg_key(g, "parents");
        yajl_gen_array_open(g);
        for (size_t k = 0; k < m->parents.n; k++)
            st_jg_str(g, m->parents.v[k]);
        yajl_gen_array_close(g);
        st_jg_kstr(g, "classification", st_classification_name(m->classification));
        st_jg_kstr(g, "reason", m->class_reason);
        st_jg_kstr(g, "duplicate_of", m->duplicate_of);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    for (int o = ST_ORIGIN_ORPHAN; o <= ST_ORIGIN_ISOLATED; o++) {
        st_jg_key(g, o == ST_ORIGIN_ORPHAN ? "orphans" : "isolated");
        yajl_gen_array_open(g);
        for (size_t i = 0; i < modules->n; i++)
            if ((int)modules->v[i].origin == o)
                st_jg_str(g, modules->v[i].path);
        yajl_gen_array_close(g);
    }
    /* the files that are never orphans, with the rule of each */
    st_jg_key(g, "excluded");
    yajl_gen_map_open(g);
    for (size_t i = 0; i < excluded->n; i++) {
        char *tab = strchr(excluded->v[i], '\t');
        *tab = '\0';
        st_jg_kstr(g, excluded->v[i], tab + 1);
        *tab = '\t';
    }
    yajl_gen_map_close(g);
    if (deps->n)
        gen_deps(g, st_project_graph(&p->ps.project), deps);
    yajl_gen_map_close(g);
    char *text = st_jg_finish(g, 1);
    if (text)
        fputs(text, stdout);
    free(text);
    return 0;
}

/* discover without --json: the batches, one line per module, the excluded files (at info
 * level) and what each --deps PATH reaches. */
static void print_text(st_pipeline *p, const st_strv *batches, const st_module_list *modules,
                       const st_strv *excluded, const st_strv *deps)
{
    printf("%zu test batch%s:", batches->n, batches->n == 1 ? "" : "es");
    for (size_t i = 0; i < batches->n; i++)
        printf(" %s", batches->v[i]);
    printf("\n");
    for (size_t i = 0; i < modules->n; i++) {
        const st_batch *m = &modules->v[i];
        printf("%-9s %-10s %s", m->origin == ST_ORIGIN_ISOLATED ? "isolated" : "orphan",
               st_classification_name(m->classification), m->path);
        for (size_t k = 0; k < m->parents.n; k++)
            printf("%s%s", k ? ", " : "  (imported by ", m->parents.v[k]);
        printf("%s\n", m->parents.n ? ")" : "");
        if (m->classification != ST_CLASS_CANDIDATE && m->class_reason)
            printf("          %s\n", m->class_reason);
    }
    if (!modules->n)
        printf("no orphan or isolated modules\n");
    if (st_log_get_level() >= ST_LOG_INFO)
        for (size_t i = 0; i < excluded->n; i++) {
            const char *tab = strchr(excluded->v[i], '\t');
            printf("%-9s %-10s %.*s  (%s)\n", "excluded", "never", (int)(tab - excluded->v[i]),
                   excluded->v[i], tab + 1);
        }
    const st_pygraph *pg = deps->n ? st_project_graph(&p->ps.project) : NULL;
    size_t n = pg ? st_pygraph_count(pg) : 0;
    uint8_t *mark = calloc(n + 1, 1);
    for (size_t i = 0; mark && i < deps->n; i++) {
        uint32_t start = pg ? st_pygraph_find(pg, deps->v[i]) : ST_PYGRAPH_NONE;
        printf("%s depends on:%s\n", deps->v[i],
               start == ST_PYGRAPH_NONE ? " (not a module of the project)" : "");
        if (start == ST_PYGRAPH_NONE || st_pygraph_reach(pg, &start, 1, mark, NULL) < 0)
            continue;
        for (uint32_t v = 0; v < n; v++)
            if (mark[v] && v != start)
                printf("  %s\n", st_pygraph_path(pg, v));
    }
    free(mark);
}

int st_pipeline_discover(st_pipeline *p, int json, const st_strv *deps)
{
    st_settings *s = p->s;
    st_strv paths = {0}, batches = {0}, unused = {0}, excluded = {0};
    st_module_list modules = {0};
    st_orphan_cache cache_store, *cache = NULL;
    st_orphan_rules rules = {0};
    int status = ST_ERR_NOMEM, lock_fd = -1;
    st_preflight pf = {0};
    int rc = ST_OK;
    if (!s->paths.n) {
        /* the default paths come from pytest's configuration: ask it, as a run would */
        const char *tmp = st_tmpdir();
        char *work = st_asprintf("%s/selftest-%ld-XXXXXX", tmp, (long)getpid());
        if (!work || !mkdtemp(work)) {
            st_error("cannot create a work directory under %s: %s", tmp, strerror(errno));
            free(work);
            status = ST_ERR_IO;
            goto out;
        }
        if (st_preflight_stage(p, work, &pf) != ST_OK) {
            st_warn("discover: pytest was not asked for the project's testpaths; test paths: "
                    "tests/ if it exists, else the project root");
            st_preflight_free(&pf);
            memset(&pf, 0, sizeof(pf));
        }
        st_rm_rf(work);
        free(work);
    }
    rc = st_resolve_paths(s, &pf, &paths, &unused);
    if (rc != ST_OK) {
        status = rc;
        goto out;
    }
    for (size_t i = 0; i < deps->n; i++) {
        if (!st_path_is_safe_relative(s->project_root, deps->v[i])) {
            st_error("--deps '%s': not a repo-relative path inside the project root", deps->v[i]);
            status = ST_ERR_INVALID;
            goto out;
        }
    }
    lock_fd = st_lock_acquire(s->lock_file, s->lock_timeout_s);
    if (lock_fd < 0) {
        status = lock_fd;
        goto out;
    }
    if (!s->disable_orphans) {
        status = st_orphan_state_load(s, &paths, &cache_store, &cache, &rules);
        if (status != ST_OK)
            goto out;
    }
    int saved_include = s->include_orphans;
    s->include_orphans = 0; /* list what this scan finds, not the cache */
    rc = st_discover_stage(s, &p->ps, &paths, &batches, &modules, cache, cache ? &rules : NULL,
                           &excluded);
    s->include_orphans = saved_include;
    if (rc != ST_OK) {
        status = rc;
        goto out;
    }
    if (modules.n > 1) /* qsort(NULL, 0, ...) is undefined */
        qsort(modules.v, modules.n, sizeof(*modules.v), module_cmp);
    if (json) {
        status = print_json(p, &batches, &modules, &excluded, deps);
        if (status != ST_OK)
            goto out;
    } else {
        print_text(p, &batches, &modules, &excluded, deps);
    }
    status = ST_OK;
out:
    if (cache) {
        st_orphans_save(cache);
        st_orphans_free(cache);
    }
    st_orphan_rules_free(&rules);
    st_project_ctx_reset(&p->ps.project);
    st_lock_release(lock_fd);
    st_preflight_free(&pf);
    st_strv_free(&paths);
    st_strv_free(&batches);
    st_strv_free(&unused);
    st_strv_free(&excluded);
    st_module_list_free(&modules);
    return status;
}
