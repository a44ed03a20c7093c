/* SPDX-License-Identifier: MIT */
/* Plugin instances and the host services table the core gives them (plugin.h: st_host). An
 * instance is created by the loader and driven by the pipeline through the st_inst_* calls,
 * which enforce the lifecycle order and serialise ops of plugins that are not thread-safe. */
#ifndef ST_PLUGIN_SERVICES_H
#define ST_PLUGIN_SERVICES_H

#include <selftest/plugin.h>

#include <libconfig.h>
#include <pthread.h>

#include "util.h"

/* The project as the plugins of one plugin set see it, with the import graph built lazily once
 * per cycle and shared. */
typedef struct st_project_ctx {
    st_project_info info;
    const char *const *source_roots; /* repo-relative import roots (pythonpath), or NULL */
    pthread_mutex_t lock;
    struct st_pygraph *graph;
    int graph_tried;
} st_project_ctx;

void st_project_ctx_init(st_project_ctx *p);
/* Frees the graph so the next cycle sees the tree as it is then. */
void st_project_ctx_reset(st_project_ctx *p);
void st_project_ctx_destroy(st_project_ctx *p);
/* The graph for the core itself (built on first use); NULL on failure (logged). */
const struct st_pygraph *st_project_graph(st_project_ctx *p);

struct st_instance {
    char *name;                     /* instance name, e.g. "exporter-prometheus" */
    char *file;                     /* the file that was opened */
    void *handle;                   /* lt_dlhandle, owned by the loader */
    const st_plugin_descriptor *desc;
    const st_lifecycle_ops *life;   /* &ops->life */
    const void *ops;
    void *ctx;                      /* the plugin's, from create() */
    int created, started, failed;
    int logged_error;               /* the plugin logged an error itself (not repeated) */
    int errors_as_warnings;         /* its errors are logged as warnings (a probe whose
                                       failure has a fallback) */
    const config_setting_t *config; /* the plugin's settings group, may be NULL */
    const st_project_info *project;
    st_project_ctx *pctx;           /* project + graph cache; project == &pctx->info */
    pthread_mutex_t serial;         /* held around ops of plugins without THREAD_SAFE */
    pthread_mutex_t lists_lock;
    st_strv *lists;                 /* vectors handed out by cfg_string_list / cfg_names, and
                                       the strings cfg_where returned (one-entry vectors) */
    size_t n_lists;
};

extern const st_host st_host_services;

/* st_kind_name, st_kind_from_name: settings.h */

/* Lifecycle, in this order; each logs its failure naming the instance and returns ST_OK or a
 * negative st_status: create() passes the plugin's on (ST_ERR_INVALID: it refused its
 * settings); start() never returns ST_ERR_INVALID (a plugin's ST_ERR_INVALID from start() is
 * ST_ERR_UNAVAILABLE: its settings were accepted, so its failure is not a configuration error). */
int st_inst_create(st_instance *inst);
int st_inst_start(st_instance *inst);
int st_inst_stop(st_instance *inst);   /* idempotent */
void st_inst_destroy(st_instance *inst); /* idempotent */

/* Serialisation around kind ops (no-op for thread-safe plugins). */
void st_inst_lock(st_instance *inst);
void st_inst_unlock(st_instance *inst);

#endif
