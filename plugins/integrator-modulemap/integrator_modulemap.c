/* SPDX-License-Identifier: MIT */
/* integrator-modulemap: folds the passing, non-redundant orphan modules into the project's
 * <data>/module_map.json (canonical form, deterministic group ids) and <data>/workflows.db
 * (a single-step workflow per module, appended to its group's workflows), docs/spec.md §8.2. */
#include "config.h"

#include <selftest/plugin.h>

#include "mm_store.h"
#include "modulemap.h"
#include "workflows.h"

#include "st_buf.h"
#include "st_file.h"
#include "st_path.h"
#include "st_settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct mm_plugin {
    const st_host *host;
    st_instance *self;
    const char *map_name; /* relative to the data dir unless absolute; owned by the core */
    const char *db_name;
    int workflows;        /* keep workflows.db too */
} mm_plugin;

static const char *const known_keys[] = {"module_map", "workflows_db", "workflows", NULL};

#define LOG(p, level, ...) (p)->host->log((p)->self, (level), __VA_ARGS__)

/* mkdir -p of the directory that holds path: 0 or -errno. */
static int make_parent_dirs(const char *path)
{
    char *dir = st_path_dirname(path);
    int rc = dir ? st_mkdir_p(dir, 0755) : -ENOMEM;
    free(dir);
    return rc;
}

static int mm_create(const st_host *host, st_instance *self, const st_config_node *cfg,
                     void **out)
{
    mm_plugin *p = calloc(1, sizeof(*p));
    if (!p)
        return ST_ERR_NOMEM;
    p->host = host;
    p->self = self;
    p->map_name = "module_map.json";
    p->db_name = "workflows.db";
    p->workflows = 1;
    if (st_check_settings(host, self, cfg, known_keys, NULL) != ST_OK)
        goto invalid;
    if (host->cfg_string(self, cfg, "module_map", &p->map_name) < 0 ||
        host->cfg_string(self, cfg, "workflows_db", &p->db_name) < 0 ||
        host->cfg_bool(self, cfg, "workflows", &p->workflows) < 0)
        goto invalid;
    if (!*p->map_name || !*p->db_name) {
        host->log(self, ST_LOG_ERROR, "%s: file names must not be empty",
                  host->cfg_where(self, cfg, NULL));
        goto invalid;
    }
    *out = p;
    return ST_OK;
invalid:
    free(p);
    return ST_ERR_INVALID;
}

static void mm_destroy(void *ctx)
{
    free(ctx);
}

/* ---- helpers ---------------------------------------------------------------------------------- */


/* Repo-relative POSIX path inside the root: not empty, not absolute, no "." or ".." parts. */
static int valid_rel_path(const char *path)
{
    if (!path || !*path || path[0] == '/')
        return 0;
    const char *p = path;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        p += n;
        if (*p == '/')
            p++;
    }
    return path[strlen(path) - 1] != '/';
}

typedef struct root_ctx {
    const char *root;
} root_ctx;

static int file_under_root(const char *rel, void *ud)
{
    const root_ctx *r = ud;
    char *full = st_path_join(r->root, rel);
    struct stat st;
    int ok = full && stat(full, &st) == 0 && S_ISREG(st.st_mode);
    free(full);
    return ok;
}

/* A src/ layout: src/ exists and is not itself a package. */
static int src_layout(const char *root)
{
    root_ctx r = {root};
    char *src = st_path_join(root, "src");
    struct stat st;
    int is_dir = src && stat(src, &st) == 0 && S_ISDIR(st.st_mode);
    free(src);
    return is_dir && !file_under_root("src/__init__.py", &r);
}

/* Element i of the request: the core's struct may be larger than ours (ABI growth), so step by
 * the size it declares. */
static const st_integrate_module *module_at(const st_integrate_request *req, size_t i)
{
    size_t stride = req->modules[0].struct_size;
    if (stride < sizeof(st_integrate_module))
        stride = sizeof(st_integrate_module); /* an older or broken caller: assume ours */
    return (const st_integrate_module *)((const char *)req->modules + i * stride);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts and removes duplicates; returns the new count. */
static size_t sort_unique(const char **v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || strcmp(v[k - 1], v[i]) != 0)
            v[k++] = v[i];
    return k;
}

/* ---- ids -------------------------------------------------------------------------------------- */

/* The lowest id among the modules path imports or is imported by that are already in the map;
 * -1 when none is (or there is no graph). */
static long long neighbour_group(const mm_model *m, const st_graph *g, const st_graph_ops *ops,
                                 const char *path)
{
    if (!g || !ops)
        return -1;
    uint32_t node = ops->find(g, path);
    if (node == ST_GRAPH_NONE)
        return -1;
    long long best = -1;
    for (int dir = 0; dir < 2; dir++) {
        const uint32_t *ids = NULL;
        size_t n = dir == 0 ? ops->deps(g, node, &ids) : ops->rdeps(g, node, &ids);
        for (size_t i = 0; i < n; i++) {
            const char *np = ops->path(g, ids[i]);
            long long id = np ? mm_model_find(m, np) : -1;
            if (id >= 0 && (best < 0 || id < best))
                best = id;
        }
    }
    return best;
}

/* Gives every new module (sorted) an id, adding it to the map: repeatedly, each module with a
 * neighbour in the map joins the lowest such group; when no module can join, the first one left
 * opens a new group (max + 1) and the others may join it in the next round. Deterministic:
 * depends only on the map, the graph and the set of new modules. */
static int assign_ids(mm_plugin *p, mm_model *m, const char **fresh, size_t n)
{
    const st_graph *g = NULL;
    const st_graph_ops *ops = NULL;
    if (ST_STRUCT_HAS(st_host, p->host, graph_ops) && p->host->graph && p->host->graph_ops) {
        g = p->host->graph(p->self);
        ops = p->host->graph_ops;
    }
    if (!g)
        LOG(p, ST_LOG_WARNING, "no import graph: every new module gets a group of its own");
    char *assigned = calloc(n + 1, 1);
    if (!assigned)
        return ST_ERR_NOMEM;
    size_t left = n;
    int rc = ST_OK;
    while (left && rc == ST_OK) {
        int progress = 1;
        while (progress && rc == ST_OK) {
            progress = 0;
            for (size_t i = 0; i < n && rc == ST_OK; i++) {
                if (assigned[i])
                    continue;
                long long id = neighbour_group(m, g, ops, fresh[i]);
                if (id < 0)
                    continue;
                if (mm_model_add(m, fresh[i], id) < 0)
                    rc = ST_ERR_NOMEM;
                assigned[i] = 1;
                left--;
                progress = 1;
                LOG(p, ST_LOG_DEBUG, "%s joins group %lld (an import neighbour's)", fresh[i], id);
            }
        }
        for (size_t i = 0; i < n && rc == ST_OK && left; i++) {
            if (assigned[i])
                continue;
            long long id = mm_model_max_id(m) + 1;
            if (mm_model_add(m, fresh[i], id) < 0)
                rc = ST_ERR_NOMEM;
            assigned[i] = 1;
            left--;
            LOG(p, ST_LOG_DEBUG, "%s opens group %lld", fresh[i], id);
            break;
        }
    }
    free(assigned);
    return rc;
}

/* ---- workflows -------------------------------------------------------------------------------- */

typedef struct step_index {
    char **names; /* dotted names of the map's modules, parallel to model->modules */
    const mm_model *m;
} step_index;

static long long group_of_step(const char *step, void *ud)
{
    const step_index *si = ud;
    for (size_t i = 0; i < si->m->n_modules; i++)
        if (si->names[i] && strcmp(si->names[i], step) == 0)
            return si->m->modules[i].id;
    return -1;
}

static int update_workflows(mm_plugin *p, const char *db_path, const mm_model *m,
                            const char **fresh, size_t n, int strip_src)
{
    step_index si = {calloc(m->n_modules + 1, sizeof(char *)), m};
    wf_item *items = calloc(n + 1, sizeof(*items));
    char **steps = calloc(n + 1, sizeof(char *));
    wf_db *db = NULL;
    char err[512] = "";
    int rc = ST_ERR_NOMEM;
    size_t k = 0;
    if (!si.names || !items || !steps)
        goto out;
    for (size_t i = 0; i < m->n_modules; i++)
        si.names[i] = mm_dotted_name(m->modules[i].key, strip_src);
    for (size_t i = 0; i < n; i++) {
        steps[i] = mm_dotted_name(fresh[i], strip_src);
        if (!steps[i]) {
            LOG(p, ST_LOG_WARNING, "%s: no dotted module name; no workflow for it", fresh[i]);
            continue;
        }
        items[k].step = steps[i];
        items[k].group = mm_model_find(m, fresh[i]);
        k++;
    }
    int e = make_parent_dirs(db_path);
    if (e < 0) {
        LOG(p, ST_LOG_ERROR, "%s: cannot create its directory: %s", db_path, strerror(-e));
        rc = ST_ERR_IO;
        goto out;
    }
    if (wf_open(db_path, &db, err, sizeof(err)) < 0) {
        LOG(p, ST_LOG_ERROR, "%s", err);
        rc = ST_ERR_IO;
        goto out;
    }
    wf_stats stats;
    if (wf_apply(db, items, k, group_of_step, &si, &stats, err, sizeof(err)) < 0) {
        LOG(p, ST_LOG_ERROR, "%s (%s): nothing changed", err, db_path);
        rc = ST_ERR_IO;
        goto out;
    }
    LOG(p, ST_LOG_INFO, "%s: %u workflows created, %u steps appended", db_path, stats.created,
        stats.appended);
    rc = ST_OK;
out:
    wf_close(db);
    for (size_t i = 0; si.names && i < m->n_modules; i++)
        free(si.names[i]);
    for (size_t i = 0; steps && i < n; i++)
        free(steps[i]);
    free(si.names);
    free(steps);
    free(items);
    return rc;
}

/* ---- integrate -------------------------------------------------------------------------------- */

typedef struct job {
    char *map_path, *db_path;
    char *text;            /* module_map.json as read, or NULL */
    size_t text_len;
    stmm_map read;
    mm_model model;
    const char **fresh;    /* new modules, sorted */
    const char **known;    /* already in the map */
    const char **redundant;
    size_t n_fresh, n_known, n_redundant;
    char *tmp;             /* the new map's temp file until it is renamed */
} job;

static void job_free(job *j)
{
    if (j->tmp)
        st_file_abort(j->tmp);
    free(j->tmp);
    free(j->map_path);
    free(j->db_path);
    free(j->text);
    stmm_free(&j->read);
    mm_model_free(&j->model);
    free(j->fresh);
    free(j->known);
    free(j->redundant);
}

/* Reads module_map.json. A malformed file is reported with line and column and left alone. */
static int load_map(mm_plugin *p, job *j, const char *root)
{
    char err[512] = "";
    /* j->map_path is freed by job_free() on every path of mm_integrate(); the analyzer loses
     * it in the call to the other translation unit */
    int r = mm_read_file(j->map_path, &j->text, &j->text_len, err, sizeof(err)); // NOLINT(clang-analyzer-unix.Malloc)
    if (r < 0) {
        LOG(p, ST_LOG_ERROR, "%s: %s; integration skipped", j->map_path, err);
        return ST_ERR_IO;
    }
    if (r == 0) {
        r = stmm_parse(j->text, j->text_len, &j->read, err, sizeof(err));
        if (r == STMM_ENOMEM)
            return ST_ERR_NOMEM;
        if (r != STMM_OK) {
            LOG(p, ST_LOG_ERROR, "%s: %s; the file is left untouched and integration is skipped",
                j->map_path, err);
            return ST_ERR_INVALID;
        }
    }
    root_ctx rc = {root};
    if (mm_model_build(&j->read, j->text ? j->text : "", j->text_len, file_under_root, &rc,
                       &j->model) < 0)
        return ST_ERR_NOMEM;
    for (size_t i = 0; i < j->model.n_dropped; i++)
        LOG(p, ST_LOG_WARNING, "%s: '%s' is outside the project; ignored (the next rewrite of "
            "the map leaves it out)", j->map_path, j->model.dropped[i]);
    return ST_OK;
}

static int sort_request(mm_plugin *p, job *j, const st_integrate_request *req)
{
    size_t n = req->n_modules;
    j->fresh = calloc(n + 1, sizeof(char *));
    j->known = calloc(n + 1, sizeof(char *));
    j->redundant = calloc(n + 1, sizeof(char *));
    if (!j->fresh || !j->known || !j->redundant)
        return ST_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const st_integrate_module *mod = module_at(req, i);
        if (!valid_rel_path(mod->path)) {
            LOG(p, ST_LOG_WARNING, "'%s' is not a repo-relative path; not integrated",
                mod->path ? mod->path : "(null)");
            continue;
        }
        if (mod->classification == ST_CLASS_REDUNDANT)
            j->redundant[j->n_redundant++] = mod->path;
        else if (mm_model_find(&j->model, mod->path) >= 0)
            j->known[j->n_known++] = mod->path;
        else
            j->fresh[j->n_fresh++] = mod->path;
    }
    j->n_fresh = sort_unique(j->fresh, j->n_fresh);
    j->n_known = sort_unique(j->known, j->n_known);
    j->n_redundant = sort_unique(j->redundant, j->n_redundant);
    return ST_OK;
}

/* Writes the new map to a temp file (renamed only after workflows.db committed). */
static int stage_map(mm_plugin *p, job *j)
{
    size_t len = 0;
    char *text = mm_model_render(&j->model, &len);
    if (!text)
        return ST_ERR_NOMEM;
    int rc = ST_OK;
    const char *what = NULL;
    int e = make_parent_dirs(j->map_path);
    if (e < 0) {
        LOG(p, ST_LOG_ERROR, "%s: cannot create its directory: %s", j->map_path, strerror(-e));
        rc = ST_ERR_IO;
    } else if ((e = st_file_prepare(j->map_path, text, len, ST_FILE_MODE_KEEP, &j->tmp,
                                    &what)) < 0) {
        LOG(p, ST_LOG_ERROR, "%s: cannot %s: %s", j->map_path, what, strerror(-e));
        rc = ST_ERR_IO;
    }
    free(text);
    return rc;
}

static void answer(mm_plugin *p, const st_integrate_sink *sink, const char **paths, size_t n,
                   int integrated)
{
    for (size_t i = 0; i < n; i++) {
        int r = integrated ? sink->integrated(sink->opaque, paths[i])
                           : sink->redundant(sink->opaque, paths[i]);
        if (r != ST_OK)
            LOG(p, ST_LOG_WARNING, "the core refused the answer %s", paths[i]);
    }
}

static int mm_integrate(void *ctx, const st_integrate_request *req, const st_integrate_sink *sink)
{
    mm_plugin *p = ctx;
    const st_project_info *proj = p->host->project(p->self);
    job j = {0};
    int rc;
    if (!proj || !proj->data_dir || !proj->root) {
        LOG(p, ST_LOG_ERROR, "no project data dir; integration skipped");
        return ST_ERR_INTERNAL;
    }
    j.map_path = st_path_join(proj->data_dir, p->map_name);
    j.db_path = st_path_join(proj->data_dir, p->db_name);
    if (!j.map_path || !j.db_path) {
        rc = ST_ERR_NOMEM;
        goto out;
    }
    if ((rc = load_map(p, &j, proj->root)) != ST_OK)
        goto out;
    if (req->n_modules && (rc = sort_request(p, &j, req)) != ST_OK)
        goto out;
    if (j.n_fresh) {
        if ((rc = assign_ids(p, &j.model, j.fresh, j.n_fresh)) != ST_OK)
            goto out;
        if ((rc = stage_map(p, &j)) != ST_OK)
            goto out;
        if (p->workflows && (rc = update_workflows(p, j.db_path, &j.model, j.fresh, j.n_fresh,
                                                   src_layout(proj->root))) != ST_OK)
            goto out;
        const char *what = NULL;
        int r = st_file_commit(j.tmp, j.map_path, &what);
        free(j.tmp);
        j.tmp = NULL;
        if (r < 0) {
            LOG(p, ST_LOG_ERROR, "%s: cannot %s: %s (workflows.db already has the new workflows; "
                "the next cycle finishes the map)", j.map_path, what, strerror(-r));
            rc = ST_ERR_IO;
            goto out;
        }
        LOG(p, ST_LOG_INFO, "%s: %zu modules added", j.map_path, j.n_fresh);
    }
    /* already in the map: integrated before, nothing to change */
    answer(p, sink, j.fresh, j.n_fresh, 1);
    answer(p, sink, j.known, j.n_known, 1);
    answer(p, sink, j.redundant, j.n_redundant, 0);
    rc = ST_OK;
out:
    job_free(&j);
    return rc;
}

static const st_integrator_ops mm_ops = {
    .struct_size = sizeof(st_integrator_ops),
    .life = {.create = mm_create, .destroy = mm_destroy},
    .integrate = mm_integrate,
};

static const st_plugin_descriptor mm_descriptor = {
    .abi_major = ST_ABI_MAJOR,
    .abi_minor = ST_ABI_MINOR,
    .struct_size = sizeof(st_plugin_descriptor),
    .kind = ST_KIND_INTEGRATOR,
    .name = "integrator-modulemap",
    .version = PACKAGE_VERSION,
    .description = "module_map.json and workflows.db",
    .flags = ST_PLUGIN_MULTI_INSTANCE,
    .ops = &mm_ops,
    .license = "MIT",
    .author = "the selftest-core authors",
    .origin = "bundled with " PACKAGE_NAME,
};

ST_PLUGIN_DEFINE(mm_descriptor)
