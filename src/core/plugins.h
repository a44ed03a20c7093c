/* SPDX-License-Identifier: MIT */
/* The set of plugin instances of one configuration: the runtime first, then the configured
 * plugins in file order. Creates all before starting any (a bad fifth plugin leaves nothing
 * half-started); the runtime's failure is fatal, another plugin's failure leaves it out. */
#ifndef ST_PLUGINS_H
#define ST_PLUGINS_H

#include "plugin_services.h"
#include "loader.h"
#include "settings.h"

typedef struct st_plugin_set {
    st_loader *ld;
    st_instance *runtime;
    st_instance **list;
    size_t n;
    st_project_ctx project;
} st_plugin_set;

/* Loads runtime-<runtime> and, unless runtime_only, every configured plugin (checks only).
 * ST_OK (0), or a negative st_status (logged): ST_ERR_INVALID for a plugin that cannot be
 * loaded (a configuration error), ST_ERR_NOMEM, ST_ERR_INTERNAL (libltdl cannot start). */
int st_plugins_load(st_settings *s, st_plugin_set *ps, int runtime_only);
/* Creates every plugin, then starts them. ST_OK, or a negative st_status: ST_ERR_INVALID when
 * a plugin's create() refused its settings (a configuration error: nothing starts), else the
 * runtime's failure to create or start (never ST_ERR_INVALID: st_inst_start). Another plugin
 * that fails to create for another reason, or to start, is left out of the run (logged). */
int st_plugins_start(st_plugin_set *ps);
/* Loads, creates and starts an extra runtime and makes it the set's runtime (fallback). ST_OK,
 * or a negative st_status (logged): ST_ERR_UNAVAILABLE when it cannot be loaded. */
int st_plugins_switch_runtime(st_settings *s, st_plugin_set *ps, const char *runtime);
int st_plugins_usable(const st_instance *inst, st_plugin_kind kind);
/* The options of a discover() call on inst over the test paths: want_modules (ABI 1.5) always;
 * the orphan switches only for a plugin built against ABI 1.4 or older (since 1.5 they are
 * discovery-python's settings, routed there when it is loaded). */
st_discover_options st_plugins_discover_options(const st_settings *s, const st_instance *inst,
                                                const char *const *paths);
void st_plugins_free(st_plugin_set *ps);
/* The `plugins` command: lists kind, name, version, ABI and file; with check, also creates and
 * destroys every plugin so each validates its settings (--check-config). Returns ST_OK, or
 * ST_ERR_INVALID when a plugin cannot be loaded or refuses its settings (or is not created for
 * another reason). */
int st_plugins_list(st_settings *s, int json, int check);

#endif
