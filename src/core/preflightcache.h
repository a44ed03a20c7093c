/* SPDX-License-Identifier: MIT */
/* preflightcache: the interpreter preflight's answers, <data>/preflight_cache.json, so that the
 * preflight (one interpreter start on the host, one extra container with a container runtime)
 * runs once per interpreter or image instead of once per cycle.
 *
 *   {"version": 1, "entries": {"<identity>": {"answer": "<the preflight's JSON line>",
 *     "stored_at": 1.0, "files": {"/abs/path": "<signature>" | "absent"},
 *     "exists": {"/abs/path": true | false}}}}
 *
 * identity: everything the answer depends on that can be known without running it: the runtime,
 * the interpreter (host: its resolved path, real path, inode, size and mtime; a container
 * runtime: what its environment_id op reports, the image id), the PYTHONPATH given to it, the
 * user's pytest args, PYTEST_ADDOPTS, the project root, whether pytest's configuration was asked
 * and a hash of the preflight's code. files: files whose signature (inode, size, mtime) must be
 * unchanged: the config files pytest looks for in the project root and its ancestors
 * (pytest.ini, .pytest.ini, pyproject.toml, tox.ini, setup.cfg; also .python-version, which
 * pyenv's shims read), the ini file pytest chose, and on the host every directory of the
 * interpreter's sys.path (installing or removing a package changes its directory's mtime) and
 * sys.executable (the interpreter a wrapper script ran). exists: the test paths of pytest's `testpaths`, whose
 * existence decides what pytest would run. An answer whose testpaths use glob patterns is not
 * stored (what they match changes with the tree).
 *
 * At most ST_PREFLIGHT_CACHE_MAX entries are kept (the oldest go). Only successful answers are
 * stored. Safety: written atomically (temp file, fsync, rename). A file that cannot be parsed or
 * has the wrong shape is reported (file, line, column), never trusted and never overwritten;
 * the user fixes or removes it. An entry of another shape is a miss. */
#ifndef ST_PREFLIGHTCACHE_H
#define ST_PREFLIGHTCACHE_H

#include "plugin_services.h"
#include "settings.h"
#include "util.h"

#define ST_PREFLIGHT_CACHE_FILE "preflight_cache.json"
#define ST_PREFLIGHT_CACHE_MAX 16

/* The identity of the answer the preflight would give (see above); NULL when it cannot be
 * cached (a runtime that reports no environment id and is not the host runtime, an
 * interpreter that cannot be found, OOM). code: the preflight's code, hashed into it. */
char *st_pfcache_identity(const st_settings *s, st_instance *runtime, int config_asked,
                          const char *code);

/* The stored answer line for identity when every watched file is unchanged: 1 (*answer set,
 * caller frees), 0 (miss), ST_ERR_NOMEM. A malformed file is logged and is a miss. */
int st_pfcache_lookup(const char *data_dir, const char *identity, char **answer);

/* Stores answer under identity. host_paths: the interpreter's sys.path directories to watch
 * (NULL for a container runtime); inipath: pytest's ini file or NULL; testpaths: pytest's
 * testpaths (relative to the project root) or NULL. Returns ST_OK, or a negative st_status
 * (logged): ST_ERR_MALFORMED (the file could not be read cleanly: it is left alone), ST_ERR_IO
 * (it cannot be written), ST_ERR_NOMEM. */
int st_pfcache_store(const st_settings *s, const char *identity, const char *answer,
                     const st_strv *host_paths, const char *inipath, const st_strv *testpaths);

#endif
