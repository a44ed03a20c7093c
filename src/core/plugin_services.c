/* SPDX-License-Identifier: MIT */
/* The services the core offers plugins (st_host in plugin.h) and the plugin lifecycle driver. */
#include "config.h"

#include "plugin_services.h"

#include "log.h"
#include "pygraph.h"
#include "util.h"

/* the import graph's scan cache, in the data dir */
#define ST_SCAN_CACHE_FILE "pyscan_cache.bin"

#include <selftest/version.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void host_log(st_instance *self, st_log_level level, const char *fmt, ...)
{
    va_list ap;
    if (level > ST_LOG_DEBUG)
        level = ST_LOG_DEBUG;
    if (self && level == ST_LOG_ERROR) {
        self->logged_error = 1;
        if (self->errors_as_warnings)
            level = ST_LOG_WARNING;
    }
    va_start(ap, fmt);
    st_logv(level, self ? self->name : NULL, fmt, ap);
    va_end(ap);
}

static const char *const *keep_list(st_instance *self, st_strv *v);

/* cfg_where: the text lives until the instance is destroyed (ABI 1.5; it used to be a ring of
 * four buffers that a fifth call, or another thread, overwrote). Kept with the instance's
 * other vectors, one copy per distinct text, so asking again in a loop costs no memory. */
static const char *host_where(st_instance *self, const st_config_node *node, const char *name)
{
    const config_setting_t *cs = (const config_setting_t *)node;
    if (cs && name) {
        const config_setting_t *m = config_setting_get_member((config_setting_t *)cs, name);
        if (m)
            cs = m;
    }
    char buf[512];
    const char *option = cs ? config_setting_get_hook(cs) : NULL;
    if (option) {
        snprintf(buf, sizeof(buf), "%s", option); /* set from the command line */
    } else if (cs) {
        const char *file = config_setting_source_file(cs);
        snprintf(buf, sizeof(buf), "%s:%u%s%s", file ? file : "?",
                 config_setting_source_line(cs), name ? ": " : "", name ? name : "");
    } else {
        snprintf(buf, sizeof(buf), "%s settings%s%s", self->name, name ? ": " : "",
                 name ? name : "");
    }
    const char *kept = NULL;
    pthread_mutex_lock(&self->lists_lock);
    for (size_t k = 0; k < self->n_lists && !kept; k++)
        if (self->lists[k].n == 1 && strcmp(self->lists[k].v[0], buf) == 0)
            kept = self->lists[k].v[0];
    pthread_mutex_unlock(&self->lists_lock);
    if (kept)
        return kept;
    st_strv v = {0};
    st_strv_push(&v, buf);
    const char *const *out = v.oom ? NULL : keep_list(self, &v);
    if (!out)
        st_strv_free(&v);
    return out ? out[0] : "(out of memory)";
}

static const config_setting_t *member(const st_config_node *node, const char *name)
{
    if (!node)
        return NULL;
    return config_setting_get_member((config_setting_t *)node, name);
}

static int wrong_type(st_instance *self, const st_config_node *node, const char *name,
                      const char *want)
{
    host_log(self, ST_LOG_ERROR, "%s: '%s' must be %s", host_where(self, node, NULL), name, want);
    return ST_ERR_INVALID;
}

static int cfg_string(st_instance *self, const st_config_node *node, const char *name,
                      const char **out)
{
    const config_setting_t *m = member(node, name);
    if (!m)
        return ST_CFG_ABSENT;
    if (config_setting_type(m) != CONFIG_TYPE_STRING)
        return wrong_type(self, node, name, "a string");
    *out = config_setting_get_string(m);
    return ST_CFG_FOUND;
}

static int cfg_int(st_instance *self, const st_config_node *node, const char *name, long long *out)
{
    const config_setting_t *m = member(node, name);
    if (!m)
        return ST_CFG_ABSENT;
    if (config_setting_type(m) != CONFIG_TYPE_INT && config_setting_type(m) != CONFIG_TYPE_INT64)
        return wrong_type(self, node, name, "an integer");
    *out = config_setting_get_int64(m);
    return ST_CFG_FOUND;
}

static int cfg_double(st_instance *self, const st_config_node *node, const char *name, double *out)
{
    const config_setting_t *m = member(node, name);
    if (!m)
        return ST_CFG_ABSENT;
    switch (config_setting_type(m)) {
    case CONFIG_TYPE_FLOAT:
        *out = config_setting_get_float(m);
        return ST_CFG_FOUND;
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        *out = (double)config_setting_get_int64(m);
        return ST_CFG_FOUND;
    default:
        return wrong_type(self, node, name, "a number");
    }
}

static int cfg_bool(st_instance *self, const st_config_node *node, const char *name, int *out)
{
    const config_setting_t *m = member(node, name);
    if (!m)
        return ST_CFG_ABSENT;
    if (config_setting_type(m) != CONFIG_TYPE_BOOL)
        return wrong_type(self, node, name, "true or false");
    *out = config_setting_get_bool(m);
    return ST_CFG_FOUND;
}

/* Keeps v alive until the instance is destroyed and returns its vector. */
static const char *const *keep_list(st_instance *self, st_strv *v)
{
    pthread_mutex_lock(&self->lists_lock);
    st_strv *grown = realloc(self->lists, (self->n_lists + 1) * sizeof(*grown));
    if (!grown) {
        pthread_mutex_unlock(&self->lists_lock);
        st_strv_free(v);
        return NULL;
    }
    self->lists = grown;
    self->lists[self->n_lists] = *v;
    const char *const *out = st_strv_get(&self->lists[self->n_lists]);
    self->n_lists++;
    pthread_mutex_unlock(&self->lists_lock);
    return out;
}

static int cfg_string_list(st_instance *self, const st_config_node *node, const char *name,
                           const char *const **out)
{
    const config_setting_t *m = member(node, name);
    if (!m)
        return ST_CFG_ABSENT;
    st_strv v = {0};
    if (config_setting_type(m) == CONFIG_TYPE_STRING) {
        st_strv_push(&v, config_setting_get_string(m));
    } else if (config_setting_type(m) == CONFIG_TYPE_LIST ||
               config_setting_type(m) == CONFIG_TYPE_ARRAY) {
        for (int i = 0; i < config_setting_length(m); i++) {
            const config_setting_t *e = config_setting_get_elem(m, (unsigned)i);
            if (config_setting_type(e) != CONFIG_TYPE_STRING) {
                st_strv_free(&v);
                return wrong_type(self, node, name, "a list of strings");
            }
            st_strv_push(&v, config_setting_get_string(e));
        }
    } else {
        return wrong_type(self, node, name, "a list of strings");
    }
    if (v.oom) {
        st_strv_free(&v);
        return ST_ERR_NOMEM;
    }
    *out = keep_list(self, &v);
    return *out ? ST_CFG_FOUND : ST_ERR_NOMEM;
}

static const char *const *cfg_names(st_instance *self, const st_config_node *node)
{
    st_strv v = {0};
    const config_setting_t *cs = (const config_setting_t *)node;
    for (int i = 0; cs && i < config_setting_length(cs); i++)
        st_strv_push(&v, config_setting_name(config_setting_get_elem(cs, (unsigned)i)));
    if (v.oom) {
        st_strv_free(&v);
        return NULL;
    }
    return keep_list(self, &v);
}

static const st_project_info *host_project(st_instance *self)
{
    return self->project;
}

static const char *host_instance_name(st_instance *self)
{
    return self->name;
}

/* ---- the import graph (ABI 1.1) -------------------------------------------------------------- */

void st_project_ctx_init(st_project_ctx *p)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
}

void st_project_ctx_reset(st_project_ctx *p)
{
    pthread_mutex_lock(&p->lock);
    st_pygraph_free(p->graph);
    p->graph = NULL;
    p->graph_tried = 0;
    pthread_mutex_unlock(&p->lock);
}

void st_project_ctx_destroy(st_project_ctx *p)
{
    st_project_ctx_reset(p);
    pthread_mutex_destroy(&p->lock);
}

static void graph_error(const char *path, const char *message, void *userdata)
{
    (void)userdata;
    st_warn("import graph: %s: %s", path[0] ? path : ".", message);
}

const struct st_pygraph *st_project_graph(st_project_ctx *p)
{
    pthread_mutex_lock(&p->lock);
    if (!p->graph_tried) {
        p->graph_tried = 1;
        /* the scan cache lives in the data dir, once there is one (the first run makes it) */
        char *cache = NULL;
        struct stat dst;
        if (p->info.data_dir && stat(p->info.data_dir, &dst) == 0 && S_ISDIR(dst.st_mode))
            cache = st_path_join(p->info.data_dir, ST_SCAN_CACHE_FILE);
        st_pygraph_options o = {.skip_dirs = p->info.skip_dirs, .on_error = graph_error,
                                .source_roots = p->source_roots, .scan_cache = cache};
        double t0 = st_monotonic();
        int rc = st_pygraph_build(p->info.root, &o, &p->graph);
        if (rc != ST_PYGRAPH_OK)
            st_error("import graph of %s: %s", p->info.root, st_pygraph_strerror(rc));
        else
            st_info("import graph: %zu files, %zu edges in %.3fs", st_pygraph_count(p->graph),
                    st_pygraph_n_edges(p->graph), st_monotonic() - t0);
        free(cache);
    }
    const struct st_pygraph *g = p->graph;
    pthread_mutex_unlock(&p->lock);
    return g;
}

static const st_graph *host_graph(st_instance *self)
{
    return self->pctx ? (const st_graph *)st_project_graph(self->pctx) : NULL;
}

static size_t g_count(const st_graph *g)
{
    return st_pygraph_count((const st_pygraph *)g);
}

static const char *g_path(const st_graph *g, uint32_t node)
{
    return st_pygraph_path((const st_pygraph *)g, node);
}

static int g_is_test(const st_graph *g, uint32_t node)
{
    return st_pygraph_is_test((const st_pygraph *)g, node);
}

static uint32_t g_find(const st_graph *g, const char *path)
{
    return st_pygraph_find((const st_pygraph *)g, path);
}

static size_t g_deps(const st_graph *g, uint32_t node, const uint32_t **ids)
{
    return st_pygraph_deps((const st_pygraph *)g, node, ids);
}

static size_t g_rdeps(const st_graph *g, uint32_t node, const uint32_t **ids)
{
    return st_pygraph_rdeps((const st_pygraph *)g, node, ids);
}

/* st_graph_step and st_pygraph_step have the same layout (two uint32_t). */
_Static_assert(sizeof(st_graph_step) == sizeof(st_pygraph_step), "graph step layouts differ");

static long g_reach(const st_graph *g, const uint32_t *starts, size_t n, uint8_t *mark,
                    st_graph_step *order)
{
    long r = st_pygraph_reach((const st_pygraph *)g, starts, n, mark, (st_pygraph_step *)order);
    return r < 0 ? ST_ERR_INVALID : r;
}

static long g_reach_tests(const st_graph *g, uint8_t *mark, st_graph_step *order)
{
    long r = st_pygraph_reach_tests((const st_pygraph *)g, mark, (st_pygraph_step *)order);
    return r < 0 ? ST_ERR_INVALID : r;
}

static const st_graph_ops graph_ops = {
    .struct_size = sizeof(st_graph_ops),
    .count = g_count,
    .path = g_path,
    .is_test = g_is_test,
    .find = g_find,
    .deps = g_deps,
    .rdeps = g_rdeps,
    .reach = g_reach,
    .reach_tests = g_reach_tests,
};

const st_host st_host_services = {
    .struct_size = sizeof(st_host),
    .abi_major = ST_ABI_MAJOR,
    .abi_minor = ST_ABI_MINOR,
    .core_version = ST_VERSION_STRING,
    .log = host_log,
    .cfg_string = cfg_string,
    .cfg_int = cfg_int,
    .cfg_double = cfg_double,
    .cfg_bool = cfg_bool,
    .cfg_string_list = cfg_string_list,
    .cfg_where = host_where,
    .cfg_names = cfg_names,
    .monotonic = st_monotonic,
    .project = host_project,
    .instance_name = host_instance_name,
    .graph = host_graph,
    .graph_ops = &graph_ops,
};

/* ---- lifecycle ---------------------------------------------------------------------------- */

int st_inst_create(st_instance *inst)
{
    void *ctx = NULL;
    inst->logged_error = 0;
    int rc = inst->life->create(&st_host_services, inst, (const st_config_node *)inst->config, &ctx);
    if (rc != ST_OK) {
        /* the plugin said why (plugin.h: ops log the detail first); say it only if it did not */
        st_log(inst->logged_error ? ST_LOG_DEBUG : ST_LOG_ERROR,
               "%s: create failed (%s, status %d)%s", inst->name, st_status_str(rc), rc,
               inst->config ? "; check its settings" : "");
        inst->failed = 1;
        return rc < 0 ? rc : ST_ERR_INTERNAL;
    }
    inst->ctx = ctx;
    inst->created = 1;
    return ST_OK;
}

int st_inst_start(st_instance *inst)
{
    if (!inst->created || inst->started)
        return inst->created ? ST_OK : ST_ERR_INTERNAL;
    if (inst->life->start) {
        inst->logged_error = 0;
        int rc = inst->life->start(inst->ctx);
        if (rc != ST_OK) {
            st_log(inst->logged_error ? ST_LOG_DEBUG : ST_LOG_ERROR,
                   "%s: start failed (%s, status %d)", inst->name, st_status_str(rc), rc);
            inst->failed = 1;
            /* create() accepted the settings: a failure to start is never a configuration
             * error, whatever status the plugin chose */
            return rc == ST_ERR_INVALID ? ST_ERR_UNAVAILABLE : rc < 0 ? rc : ST_ERR_INTERNAL;
        }
    }
    inst->started = 1;
    return ST_OK;
}

int st_inst_stop(st_instance *inst)
{
    if (!inst->started)
        return ST_OK;
    inst->started = 0;
    if (inst->life->stop) {
        int rc = inst->life->stop(inst->ctx);
        if (rc != ST_OK) {
            st_warn("%s: stop failed (%s, status %d)", inst->name, st_status_str(rc), rc);
            return rc;
        }
    }
    return ST_OK;
}

void st_inst_destroy(st_instance *inst)
{
    st_inst_stop(inst);
    if (inst->created) {
        inst->created = 0;
        inst->life->destroy(inst->ctx);
        inst->ctx = NULL;
    }
}

void st_inst_lock(st_instance *inst)
{
    if (!(inst->desc->flags & ST_PLUGIN_THREAD_SAFE))
        pthread_mutex_lock(&inst->serial);
}

void st_inst_unlock(st_instance *inst)
{
    if (!(inst->desc->flags & ST_PLUGIN_THREAD_SAFE))
        pthread_mutex_unlock(&inst->serial);
}
