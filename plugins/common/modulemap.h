/* SPDX-License-Identifier: MIT */
/* modulemap: a reader of <data>/module_map.json (docs/spec.md §8.2) for plugins, shared by
 * discovery-python (which modules are known) and integrator-modulemap. Plugins cannot link the
 * core, so this is a self-contained reader over yajl. It never writes the file.
 *
 * Shapes accepted (docs/spec.md §8.2):
 *   canonical  {"modules": {"pkg/mod.py": 3}, "groups": {"3": 3}, "tags": {}}
 *   flat       {"pkg/mod.py": 3}            a module and its group id
 *   by group   {"3": ["pkg/a.py", "pkg/b.py"]}  a group and its modules
 *   by name    {"pkg/mod.py": "3"}          a module and its group name
 * The legacy shapes may be mixed entry by entry (an array value is a group, anything else a
 * module). A top-level "modules" that is not an object is malformed (never a legacy module
 * called "modules"). Keys may be repo-relative paths or dotted module names; stmm_key_to_path maps them.
 * Ownership: stmm_load fills a map the caller releases with stmm_free. Thread-safety: no shared
 * state; a map is used by one thread at a time. */
#ifndef ST_MODULEMAP_H
#define ST_MODULEMAP_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    STMM_OK = 0,
    STMM_ABSENT = 1,      /* no file: an empty map */
    STMM_EMALFORMED = -1, /* not JSON or not one of the shapes: err says where; map empty */
    STMM_EIO = -2,        /* cannot be read (err says why); map empty */
    STMM_ENOMEM = -3,
};

/* Files larger than this are refused (STMM_EIO, "too large"). */
#define STMM_MAX_BYTES (64u << 20)
/* Arrays and objects nested deeper than ST_JSON_MAX_DEPTH (st_json.h) are refused
 * (STMM_EMALFORMED). */

typedef struct stmm_entry {
    char *module; /* the key as written (path or dotted name) */
    char *group;  /* its group as text ("3", "core"), or NULL when the file names none */
} stmm_entry;

typedef struct stmm_group {
    char *name;   /* canonical "groups" key */
    long long id; /* its value; -1 when not an integer */
} stmm_group;

typedef struct stmm_map {
    stmm_entry *entries; /* in file order */
    size_t n_entries;
    stmm_group *groups;  /* canonical form only */
    size_t n_groups;
    int canonical;       /* the file had the canonical shape */
} stmm_map;

/* Reads path into *out (zeroed first). On STMM_EMALFORMED, err holds "line L, column C: what"
 * (or a shape error naming the key); on STMM_EIO the system error. err may be NULL. */
int stmm_load(const char *path, stmm_map *out, char *err, size_t err_size);

/* Parses JSON text already in memory (len bytes, need not be NUL-terminated). Same results. */
int stmm_parse(const char *text, size_t len, stmm_map *out, char *err, size_t err_size);

void stmm_free(stmm_map *m);

/* Does the repo-relative path name a module of the project? */
typedef int (*stmm_exists_fn)(const char *path, void *userdata);

/* The repo-relative path of a key: a key with a '/' or ending in ".py" is a path and is
 * returned as is (after a "./" prefix is stripped); a dotted name a.b is tried as a/b.py,
 * a/b/__init__.py, src/a/b.py, src/a/b/__init__.py and the first that exists wins. Returns a
 * malloc'd path, or NULL when the key names nothing that exists (or on OOM, or for a key that
 * is not a valid dotted name). */
char *stmm_key_to_path(const char *key, stmm_exists_fn exists, void *userdata);

#ifdef __cplusplus
}
#endif

#endif /* ST_MODULEMAP_H */
