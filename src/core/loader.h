/* SPDX-License-Identifier: MIT */
/* The plugin loader: the only file that uses libltdl. It finds a plugin by name on the search
 * path, opens it, asks its entry point for the descriptor and checks it before anything else is
 * called (ABI major equal, minor not newer, struct sizes, name, kind, mandatory ops). */
#ifndef ST_LOADER_H
#define ST_LOADER_H

#include "plugin_services.h"
#include "util.h"

typedef struct st_loader st_loader;

/* The directories tried, in order: added (may be NULL or empty: --plugin-dir, plugin_path,
 * SELF_TEST_PLUGIN_PATH), then the system directories: system_dirs when not NULL (it may be
 * empty: no system directory; SELF_TEST_PLUGIN_SYSTEM_PATH, plugin_system_path), else the
 * compiled-in plugin dir. A plugin in an added directory shadows an installed one of the same
 * name. Returns ST_OK, or ST_ERR_NOMEM or ST_ERR_INTERNAL (libltdl cannot start; logged). */
int st_loader_new(const st_strv *added, const st_strv *system_dirs, st_loader **out);
/* Loads plugin `name` expecting `kind`; where names the config entry for messages ("FILE:LINE" or
 * "runtime setting"). On success *out is an instance owned by the loader (not yet created).
 * Returns ST_OK, or ST_ERR_INVALID (a configuration error: no such plugin, a file that is not
 * a plugin, a descriptor this core refuses) after logging one clear line that names the file
 * and, for version refusals, both versions; ST_ERR_NOMEM. */
int st_loader_load(st_loader *ld, const char *name, st_plugin_kind kind, const char *where,
                   st_instance **out);
/* Whether a plugin of that name is on the search path (nothing is opened). */
int st_loader_has(const st_loader *ld, const char *name);
/* The dirs searched, for messages: "dir1:dir2". */
const char *st_loader_path(const st_loader *ld);
/* Destroys every instance (stop, destroy) in reverse load order and unloads the files. */
void st_loader_free(st_loader *ld);

#endif
