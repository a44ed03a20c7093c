/* SPDX-License-Identifier: MIT */
/* discovery-python: the discover stage for Python projects (docs/spec.md §4, §7): one test batch
 * per test path, and from the core's import graph the orphan and isolated modules with their
 * parents and a classification (candidate, legacy, redundant) with its reason. Reads
 * module_map.json (known modules) but writes nothing: the orphan files belong to the core
 * (src/core/orphans.c).
 * docs/discovery-python.md has the rules and the choices this file makes. */
#include "config.h"

#include <selftest/plugin.h>

#include "modulemap.h"
#include "pytokens.h"

#include "st_buf.h"
#include "st_file.h"
#include "st_path.h"
#include "st_settings.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files larger than this are not classified (the graph refuses them too). */
#define DP_MAX_FILE_BYTES (64u << 20)

typedef struct dp_ctx {
    const st_host *host;
    st_instance *self;
    char **allow;        /* globs of paths treated as reached (fnmatch, '*' crosses '/') */
    size_t n_allow;
    char **entry_points; /* repo-relative paths of roots the project runs directly */
    size_t n_entry_points;
    /* the orphan switches (settings since ABI 1.5; the core routes the old top-level settings,
     * flags and variables of the same names here) */
    int discover_orphans;      /* report orphans: modules no test reaches */
    int recursive_orphans;     /* every orphan, not only the roots of the orphan set */
    int auto_include_isolated; /* report isolated modules: nothing imports them */
    int recursive_isolated;    /* with the helpers only isolated code reaches */
} dp_ctx;

static const char *const known_keys[] = {"allow", "entry_points", "discover_orphans",
                                         "recursive_orphans", "auto_include_isolated",
                                         "recursive_isolated", NULL};

/* ---- small helpers --------------------------------------------------------------------------- */

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int copy_list(dp_ctx *dp, const st_config_node *cfg, const char *name, char ***out,
                     size_t *n_out)
{
    const char *const *list = NULL;
    int rc = dp->host->cfg_string_list(dp->self, cfg, name, &list);
    if (rc < 0)
        return ST_ERR_INVALID;
    if (rc == ST_CFG_ABSENT || !list)
        return ST_OK;
    size_t n = 0;
    while (list[n])
        n++;
    char **v = calloc(n + 1, sizeof(*v));
    if (!v)
        return ST_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *p = list[i];
        while (p[0] == '.' && p[1] == '/')
            p += 2;
        if (!st_path_is_safe_relative(NULL, p)) { /* not absolute, no "..", not empty */
            dp->host->log(dp->self, ST_LOG_ERROR,
                          "%s: '%s' is not a repository-relative path inside the project root",
                          dp->host->cfg_where(dp->self, cfg, name), list[i]);
            free_strings(v, i);
            return ST_ERR_INVALID;
        }
        v[i] = strdup(p);
        if (!v[i]) {
            free_strings(v, i);
            return ST_ERR_NOMEM;
        }
    }
    *out = v;
    *n_out = n;
    return ST_OK;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static void dp_destroy(void *ctx)
{
    dp_ctx *dp = ctx;
    if (!dp)
        return;
    free_strings(dp->allow, dp->n_allow);
    free_strings(dp->entry_points, dp->n_entry_points);
    free(dp);
}

static int dp_create(const st_host *host, st_instance *self, const st_config_node *cfg,
                     void **out)
{
    dp_ctx *dp = calloc(1, sizeof(*dp));
    if (!dp)
        return ST_ERR_NOMEM;
    dp->host = host;
    dp->self = self;
    if (st_check_settings(host, self, cfg, known_keys, NULL) != ST_OK) {
        dp_destroy(dp);
        return ST_ERR_INVALID;
    }
    dp->discover_orphans = 1;
    dp->recursive_orphans = 1;
    dp->auto_include_isolated = 0;
    dp->recursive_isolated = 1;
    const struct {
        const char *name;
        int *value;
    } switches[] = {{"discover_orphans", &dp->discover_orphans},
                    {"recursive_orphans", &dp->recursive_orphans},
                    {"auto_include_isolated", &dp->auto_include_isolated},
                    {"recursive_isolated", &dp->recursive_isolated}};
    int rc = ST_OK;
    for (size_t i = 0; rc == ST_OK && i < sizeof(switches) / sizeof(switches[0]); i++)
        if (host->cfg_bool(self, cfg, switches[i].name, switches[i].value) < 0)
            rc = ST_ERR_INVALID;
    if (rc == ST_OK)
        rc = copy_list(dp, cfg, "allow", &dp->allow, &dp->n_allow);
    if (rc == ST_OK)
        rc = copy_list(dp, cfg, "entry_points", &dp->entry_points, &dp->n_entry_points);
    if (rc != ST_OK) {
        dp_destroy(dp);
        return rc;
    }
    *out = dp;
    return ST_OK;
}

/* ---- one discovery run ----------------------------------------------------------------------- */

enum { DP_NOT = 0, DP_ORPHAN = 1, DP_ISOLATED = 2, DP_HELPER = 3 };

/* Per-node facts of one run. Arrays have count entries. */
typedef struct dp_run {
    dp_ctx *dp;
    const st_discovery_sink *sink;
    const st_graph *g;
    const st_graph_ops *ops;
    const char *root;
    size_t count;
    uint8_t *project;  /* a project module (not a test, conftest, __main__.py, nor a file the
                        * core excludes: test code, orphan_exclude; setup.py with a core older
                        * than ABI 1.2) */
    uint8_t *known;    /* in module_map.json or an entry point: never reported */
    uint8_t *entry;    /* an entry point */
    uint8_t *allowed;  /* matches an `allow` glob: treated as reached */
    uint8_t *reached;  /* reached from a test or an allowed module */
    uint8_t *report;   /* DP_ORPHAN / DP_ISOLATED / DP_HELPER */
    uint8_t *iso_set;  /* isolated modules and their helpers (also those reported as orphans) */
    uint8_t *scratch;  /* for reach() */
    uint32_t *starts;
    /* classification */
    pytok_facts *facts;
    uint8_t *facts_ok;
    char **facts_error; /* why a reported module could not be classified */
    size_t n_known_from_map;
} dp_run;

static void run_free(dp_run *r)
{
    free(r->project);
    free(r->known);
    free(r->entry);
    free(r->allowed);
    free(r->reached);
    free(r->report);
    free(r->iso_set);
    free(r->scratch);
    free(r->starts);
    free(r->facts);
    free(r->facts_ok);
    if (r->facts_error)
        for (size_t i = 0; i < r->count; i++)
            free(r->facts_error[i]);
    free(r->facts_error);
}

static int run_alloc(dp_run *r)
{
    size_t n = r->count ? r->count : 1;
    r->project = calloc(n, 1);
    r->known = calloc(n, 1);
    r->entry = calloc(n, 1);
    r->allowed = calloc(n, 1);
    r->reached = calloc(n, 1);
    r->report = calloc(n, 1);
    r->iso_set = calloc(n, 1);
    r->scratch = calloc(n, 1);
    r->starts = calloc(n, sizeof(*r->starts));
    return r->project && r->known && r->entry && r->allowed && r->reached && r->report &&
                   r->iso_set && r->scratch && r->starts
               ? ST_OK
               : ST_ERR_NOMEM;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int graph_has(const char *path, void *userdata)
{
    dp_run *r = userdata;
    return r->ops->find(r->g, path) != ST_GRAPH_NONE;
}

/* Known modules: module_map.json (read only; a malformed file counts as empty and is left as it
 * is) and the configured entry points. */
static int mark_known(dp_run *r)
{
    dp_ctx *dp = r->dp;
    const st_project_info *pi = dp->host->project(dp->self);
    if (pi && pi->data_dir) {
        size_t size = strlen(pi->data_dir) + sizeof("/module_map.json");
        char *file = malloc(size);
        if (!file)
            return ST_ERR_NOMEM;
        snprintf(file, size, "%s/module_map.json", pi->data_dir);
        stmm_map map;
        char err[512];
        int rc = stmm_load(file, &map, err, sizeof(err));
        if (rc == STMM_ENOMEM) {
            free(file);
            return ST_ERR_NOMEM;
        }
        if (rc == STMM_EMALFORMED || rc == STMM_EIO)
            dp->host->log(dp->self, ST_LOG_ERROR,
                          "%s: %s; no module counts as known this run (the file is left as it "
                          "is)",
                          file, err);
        for (size_t i = 0; rc == STMM_OK && i < map.n_entries; i++) {
            char *path = stmm_key_to_path(map.entries[i].module, graph_has, r);
            uint32_t node = path ? r->ops->find(r->g, path) : ST_GRAPH_NONE;
            if (node != ST_GRAPH_NONE) {
                r->n_known_from_map += !r->known[node];
                r->known[node] = 1;
            } else {
                dp->host->log(dp->self, ST_LOG_DEBUG, "%s: '%s' names no module of the project",
                              file, map.entries[i].module);
            }
            free(path);
        }
        stmm_free(&map);
        free(file);
    }
    for (size_t i = 0; i < dp->n_entry_points; i++) {
        uint32_t node = r->ops->find(r->g, dp->entry_points[i]);
        if (node == ST_GRAPH_NONE) {
            dp->host->log(dp->self, ST_LOG_WARNING, "entry point '%s': no such module",
                          dp->entry_points[i]);
            continue;
        }
        r->known[node] = 1;
        r->entry[node] = 1;
    }
    return ST_OK;
}

static int sink_has_excluded(const st_discovery_sink *sink)
{
    return sink->struct_size >= offsetof(st_discovery_sink, excluded) + sizeof(sink->excluded) &&
           sink->excluded;
}

/* Tests and allowed modules, and everything they import. The core's exclusion rules (ABI 1.2)
 * take files out of the project modules: never orphans, isolated or parents. */
static int mark_reached(dp_run *r)
{
    size_t n_starts = 0;
    int core_rules = sink_has_excluded(r->sink);
    size_t n_excluded = 0;
    for (uint32_t i = 0; i < r->count; i++) {
        const char *path = r->ops->path(r->g, i);
        for (size_t k = 0; k < r->dp->n_allow && !r->allowed[i]; k++)
            r->allowed[i] = fnmatch(r->dp->allow[k], path, 0) == 0;
        if (r->ops->is_test(r->g, i) || r->allowed[i])
            r->starts[n_starts++] = i;
        const char *base = base_name(path);
        r->project[i] = !r->ops->is_test(r->g, i) && strcmp(base, "__main__.py") != 0 &&
                        (core_rules || strcmp(base, "setup.py") != 0);
    }
    long got = r->ops->reach(r->g, r->starts, n_starts, r->reached, NULL);
    if (got < 0)
        return (int)got;
    /* only files that could be reported are asked about (a reached file never is) */
    for (uint32_t i = 0; core_rules && i < r->count; i++) {
        char why[300];
        const char *path = r->ops->path(r->g, i);
        if (!r->project[i] || r->reached[i] || r->known[i] || r->allowed[i] ||
            !r->sink->excluded(r->sink->opaque, path, why, sizeof(why)))
            continue;
        r->project[i] = 0;
        n_excluded++;
        r->dp->host->log(r->dp->self, ST_LOG_DEBUG, "%s: never an orphan: %s", path, why);
    }
    if (n_excluded)
        r->dp->host->log(r->dp->self, ST_LOG_DEBUG, "%zu files are never orphans (test code, "
                         "orphan_exclude)", n_excluded);
    return ST_OK;
}

static int is_orphan(const dp_run *r, uint32_t i)
{
    return r->project[i] && !r->known[i] && !r->reached[i];
}

/* Orphans: every one with recursion, else the roots of the orphan set (orphans no orphan
 * imports). An import cycle among orphans that no orphan root imports (e <-> f alone) has no
 * root: it is reported only with recursion on, and logged otherwise. */
static void find_orphans(dp_run *r, int recursive)
{
    size_t n_orphans = 0, n_roots = 0;
    for (uint32_t i = 0; i < r->count; i++) {
        if (!is_orphan(r, i))
            continue;
        n_orphans++;
        const uint32_t *ids;
        size_t n = r->ops->rdeps(r->g, i, &ids);
        int has_orphan_parent = 0;
        for (size_t k = 0; k < n && !has_orphan_parent; k++)
            has_orphan_parent = is_orphan(r, ids[k]);
        if (!has_orphan_parent) {
            n_roots++;
            r->report[i] = DP_ORPHAN;
        } else if (recursive) {
            r->report[i] = DP_ORPHAN;
        }
    }
    if (recursive || n_orphans == n_roots)
        goto out;
    /* orphans no root reaches: only import cycles without an outside orphan importer */
    size_t n_starts = 0;
    for (uint32_t i = 0; i < r->count; i++)
        if (r->report[i] == DP_ORPHAN)
            r->starts[n_starts++] = i;
    if (r->ops->reach(r->g, r->starts, n_starts, r->scratch, NULL) < 0)
        goto out;
    size_t n_cycle = 0;
    const char *first = NULL;
    for (uint32_t i = 0; i < r->count; i++)
        if (is_orphan(r, i) && !r->scratch[i]) {
            n_cycle++;
            if (!first)
                first = r->ops->path(r->g, i);
        }
    if (n_cycle)
        r->dp->host->log(r->dp->self, ST_LOG_INFO,
                         "%zu orphan(s) import each other in cycles no orphan root imports "
                         "(first: %s); they are reported only with recursive orphans",
                         n_cycle, first);
out:
    r->dp->host->log(r->dp->self, ST_LOG_DEBUG, "%zu orphans, %zu orphan roots", n_orphans,
                     n_roots);
}

static int is_isolated(const dp_run *r, uint32_t i)
{
    const uint32_t *ids;
    return r->project[i] && !r->known[i] && !r->allowed[i] && r->ops->rdeps(r->g, i, &ids) == 0;
}

/* Isolated modules (nothing imports them) and, recursively, their dependencies that only
 * isolated code reaches: reached from the isolated set, and not from any node outside what the
 * isolated set reaches (which also handles cycles among helpers). A module already reported as
 * an orphan keeps that origin. */
static int find_isolated(dp_run *r, int recursive)
{
    size_t n_iso = 0;
    for (uint32_t i = 0; i < r->count; i++)
        if (is_isolated(r, i))
            r->starts[n_iso++] = i;
    for (size_t k = 0; k < n_iso; k++) {
        r->iso_set[r->starts[k]] = 1;
        if (r->report[r->starts[k]] == DP_NOT)
            r->report[r->starts[k]] = DP_ISOLATED;
    }
    if (!recursive || n_iso == 0)
        return ST_OK;
    uint8_t *from_iso = calloc(r->count, 1);
    if (!from_iso)
        return ST_ERR_NOMEM;
    long got = r->ops->reach(r->g, r->starts, n_iso, from_iso, NULL);
    size_t n_out = 0;
    for (uint32_t i = 0; got >= 0 && i < r->count; i++)
        if (!from_iso[i])
            r->starts[n_out++] = i;
    memset(r->scratch, 0, r->count);
    if (got >= 0 && n_out)
        got = r->ops->reach(r->g, r->starts, n_out, r->scratch, NULL);
    for (uint32_t i = 0; got >= 0 && i < r->count; i++) {
        if (!r->project[i] || r->known[i] || r->iso_set[i] || !from_iso[i] || r->scratch[i])
            continue;
        r->iso_set[i] = 1;
        if (r->report[i] == DP_NOT)
            r->report[i] = DP_HELPER;
    }
    free(from_iso);
    return got < 0 ? (int)got : ST_OK;
}

/* ---- classification -------------------------------------------------------------------------- */

static int read_source(const char *root, const char *rel, char **out, size_t *len, char *err,
                       size_t err_size)
{
    char *path = st_path_join(root, rel);
    if (!path)
        return ST_ERR_NOMEM;
    char *buf = NULL;
    int rc = st_read_file(path, DP_MAX_FILE_BYTES, &buf, len);
    free(path);
    if (rc == -ENOMEM)
        return ST_ERR_NOMEM;
    if (rc == -EFBIG)
        st_set_err(err, err_size, "larger than %u MiB", DP_MAX_FILE_BYTES >> 20);
    else if (rc == -EISDIR || rc == -EINVAL)
        st_set_err(err, err_size, "not a regular file");
    else if (rc < 0) /* an I/O error comes from read(2); the rest from open(2) */
        st_set_err(err, err_size, "cannot %s: %s", rc == -EIO ? "read" : "open", strerror(-rc));
    else if (memchr(buf, '\0', *len))
        st_set_err(err, err_size, "contains NUL bytes (not Python source)");
    else {
        *out = buf;
        return ST_OK;
    }
    free(buf);
    return ST_ERR_IO;
}

static int analyze_one(dp_run *r, uint32_t i);

/* Facts of the project's modules. The reported ones first; duplicates are looked for among all
 * modules, but only a non-empty reported module can be a duplicate, so the (costly) rest of the
 * project is read only when there is one. A module that cannot be read gets no facts; for a
 * reported one the reason is kept for its entry. */
static int collect_facts(dp_run *r)
{
    r->facts = calloc(r->count ? r->count : 1, sizeof(*r->facts));
    r->facts_ok = calloc(r->count ? r->count : 1, 1);
    r->facts_error = calloc(r->count ? r->count : 1, sizeof(*r->facts_error));
    if (!r->facts || !r->facts_ok || !r->facts_error)
        return ST_ERR_NOMEM;
    int need_all = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && !need_all)
            break;
        for (uint32_t i = 0; i < r->count; i++) {
            if (!r->project[i] || (pass == 0) != (r->report[i] != DP_NOT))
                continue;
            int rc = analyze_one(r, i);
            if (rc != ST_OK)
                return rc;
            if (pass == 0 && r->facts_ok[i] && !r->facts[i].empty)
                need_all = 1;
        }
    }
    return ST_OK;
}

/* Reads and analyzes one module into r->facts[i]. */
static int analyze_one(dp_run *r, uint32_t i)
{
    char *src = NULL, err[160];
    size_t len = 0;
    int rc = read_source(r->root, r->ops->path(r->g, i), &src, &len, err, sizeof(err));
    if (rc == ST_ERR_NOMEM)
        return rc;
    if (rc != ST_OK) {
        if (r->report[i] != DP_NOT) {
            r->dp->host->log(r->dp->self, ST_LOG_WARNING, "%s: %s; not classified",
                             r->ops->path(r->g, i), err);
            r->facts_error[i] = strdup(err);
        }
        return ST_OK;
    }
    pytok_analyze(src, len, &r->facts[i], NULL);
    r->facts_ok[i] = 1;
    free(src);
    return ST_OK;
}

static int same_stream(dp_run *r, uint32_t a, uint32_t b)
{
    char *sa = NULL, *sb = NULL, err[160];
    size_t la = 0, lb = 0;
    int same = 0;
    if (read_source(r->root, r->ops->path(r->g, a), &sa, &la, err, sizeof(err)) == ST_OK &&
        read_source(r->root, r->ops->path(r->g, b), &sb, &lb, err, sizeof(err)) == ST_OK) {
        pytok_facts fa, fb;
        st_buf ba = {0}, bb = {0};
        if (pytok_analyze(sa, la, &fa, &ba) == 0 && pytok_analyze(sb, lb, &fb, &bb) == 0)
            same = ba.len == bb.len && memcmp(ba.data, bb.data, ba.len) == 0;
        st_buf_free(&ba);
        st_buf_free(&bb);
    }
    free(sa);
    free(sb);
    return same;
}

/* The module node duplicates: the smallest path with the same token stream, or NONE. Empty
 * modules are never duplicates (they are redundant as empty). */
static uint32_t duplicate_of(dp_run *r, uint32_t node)
{
    const pytok_facts *f = &r->facts[node];
    for (uint32_t j = 0; j < node; j++) {
        if (!r->facts_ok[j] || r->facts[j].empty || r->facts[j].hash != f->hash ||
            r->facts[j].n_tokens != f->n_tokens)
            continue;
        if (same_stream(r, j, node))
            return j;
    }
    return ST_GRAPH_NONE;
}

static const char *origin_reason(int report)
{
    switch (report) {
    case DP_ISOLATED:
        return "isolated: nothing imports it";
    case DP_HELPER:
        return "isolated: only isolated modules import it";
    default:
        return "orphan: no test imports it, directly or through other modules";
    }
}

static int emit_module(dp_run *r, uint32_t node, const st_discovery_sink *sink)
{
    const uint32_t *ids;
    size_t n = r->ops->rdeps(r->g, node, &ids);
    const char **parents = calloc(n + 1, sizeof(*parents));
    if (!parents)
        return ST_ERR_NOMEM;
    size_t np = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t p = ids[k];
        int in_set = r->report[node] == DP_ORPHAN ? is_orphan(r, p) : r->iso_set[p];
        if (r->report[node] == DP_ISOLATED)
            in_set = 0; /* nothing imports an isolated module */
        if (in_set)
            parents[np++] = r->ops->path(r->g, p);
    }
    st_module_entry e = {
        .struct_size = sizeof(e),
        .path = r->ops->path(r->g, node),
        .origin = r->report[node] == DP_ORPHAN ? ST_ORIGIN_ORPHAN : ST_ORIGIN_ISOLATED,
        .parents = parents,
        .classification = ST_CLASS_CANDIDATE,
    };
    char reason[300];
    uint32_t dup = ST_GRAPH_NONE;
    if (!r->facts_ok[node]) {
        snprintf(reason, sizeof(reason), "%s; not classified: %s", origin_reason(r->report[node]),
                 r->facts_error[node] ? r->facts_error[node] : "unreadable");
    } else if (r->facts[node].empty) {
        e.classification = ST_CLASS_REDUNDANT;
        snprintf(reason, sizeof(reason), "empty: only docstrings, imports and pass");
    } else if ((dup = duplicate_of(r, node)) != ST_GRAPH_NONE) {
        e.classification = ST_CLASS_REDUNDANT;
        e.duplicate_of = r->ops->path(r->g, dup);
        snprintf(reason, sizeof(reason), "duplicate of %s (same token stream)", e.duplicate_of);
    } else if (r->facts[node].legacy) {
        e.classification = ST_CLASS_LEGACY;
        snprintf(reason, sizeof(reason), "legacy marker in the %s", r->facts[node].legacy_where);
    } else {
        snprintf(reason, sizeof(reason), "%s", origin_reason(r->report[node]));
    }
    e.reason = reason;
    int rc = sink->add_module(sink->opaque, &e);
    if (rc != ST_OK)
        r->dp->host->log(r->dp->self, ST_LOG_WARNING, "%s: the core refused the module (status %d)",
                         e.path, rc);
    free(parents);
    return ST_OK;
}

static int has_graph(const st_host *h)
{
    return ST_STRUCT_HAS(st_host, h, graph_ops) && h->graph && h->graph_ops;
}

static int dp_discover(void *ctx, const st_discover_options *opts, const st_discovery_sink *sink)
{
    dp_ctx *dp = ctx;
    const st_host *h = dp->host;
    for (size_t i = 0; opts->paths && opts->paths[i]; i++) {
        int rc = sink->add_batch(sink->opaque, opts->paths[i]);
        if (rc != ST_OK)
            return rc;
    }
    /* A core of ABI 1.5 or later says whether it wants modules and leaves the switches to this
     * plugin's settings; an older one passes them in the options. */
    int orphans = dp->discover_orphans, recursive_orphans = dp->recursive_orphans;
    int isolated = dp->auto_include_isolated, recursive_isolated = dp->recursive_isolated;
    int want = 0;
    if (ST_STRUCT_HAS(st_discover_options, opts, want_modules)) {
        want = opts->want_modules;
    } else {
        want = !opts->disable_orphans;
        orphans = opts->discover_orphans;
        recursive_orphans = opts->recursive_orphans;
        isolated = opts->auto_include_isolated;
        recursive_isolated = opts->recursive_isolated;
    }
    if (!want || (!orphans && !isolated))
        return ST_OK;
    if (!has_graph(h)) {
        h->log(dp->self, ST_LOG_WARNING, "the core (ABI %u.%u) offers no import graph: orphan "
               "and isolated discovery skipped", h->abi_major, h->abi_minor);
        return ST_OK;
    }
    const st_graph *g = h->graph(dp->self);
    const st_project_info *pi = h->project(dp->self);
    if (!g || !pi) {
        h->log(dp->self, ST_LOG_WARNING, "no import graph this cycle: orphan and isolated "
               "discovery skipped");
        return ST_OK;
    }
    dp_run r = {.dp = dp, .sink = sink, .g = g, .ops = h->graph_ops, .root = pi->root};
    r.count = r.ops->count(g);
    int rc = run_alloc(&r);
    if (rc == ST_OK)
        rc = mark_known(&r);
    if (rc == ST_OK)
        rc = mark_reached(&r);
    if (rc == ST_OK && orphans)
        find_orphans(&r, recursive_orphans);
    if (rc == ST_OK && isolated)
        rc = find_isolated(&r, recursive_isolated);
    size_t n_report = 0, n_iso = 0;
    for (uint32_t i = 0; rc == ST_OK && i < r.count; i++) {
        n_report += r.report[i] != DP_NOT;
        n_iso += r.report[i] == DP_ISOLATED || r.report[i] == DP_HELPER;
    }
    if (rc == ST_OK && n_report)
        rc = collect_facts(&r);
    for (uint32_t i = 0; rc == ST_OK && i < r.count; i++)
        if (r.report[i] != DP_NOT)
            rc = emit_module(&r, i, sink);
    if (rc == ST_OK)
        h->log(dp->self, ST_LOG_INFO,
               "%zu modules: %zu orphan, %zu isolated reported; %zu known from module_map.json",
               r.count, n_report - n_iso, n_iso, r.n_known_from_map);
    else
        h->log(dp->self, ST_LOG_ERROR, "orphan discovery failed (status %d)", rc);
    run_free(&r);
    return rc;
}

static const st_discovery_ops dp_ops = {
    .struct_size = sizeof(st_discovery_ops),
    .life = {.create = dp_create, .destroy = dp_destroy},
    .discover = dp_discover,
};

static const st_plugin_descriptor dp_descriptor = {
    .abi_major = ST_ABI_MAJOR,
    .abi_minor = ST_ABI_MINOR,
    .struct_size = sizeof(st_plugin_descriptor),
    .kind = ST_KIND_DISCOVERY,
    .name = "discovery-python",
    .version = PACKAGE_VERSION,
    .description = "test batches, orphan and isolated Python modules with classification",
    .flags = ST_PLUGIN_MULTI_INSTANCE,
    .ops = &dp_ops,
    .license = "MIT",
    .author = "the selftest-core authors",
    .origin = "bundled with " PACKAGE_NAME,
};

ST_PLUGIN_DEFINE(dp_descriptor)
