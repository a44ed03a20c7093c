/* SPDX-License-Identifier: MIT */
/* mm_store: the writing side of module_map.json (docs/spec.md §8.2) for integrator-modulemap. It
 * turns what plugins/common/modulemap.c read (any accepted shape) into the canonical model, adds
 * modules, renders canonical JSON (sorted keys, 2-space indent) and replaces the file atomically
 * (temp file in the same directory, fsync, rename, fsync of the directory).
 *
 * Canonical form: {"groups": {NAME: ID}, "modules": {PATH: ID}, "tags": {...}}. A module's value
 * is its group id; "groups" names every id (a numeric name for ids that have no other name);
 * "tags" and any other top-level key of a canonical file (another tool's) are kept as they were
 * read, in sorted key order with the others.
 * Ownership: a model owns every string in it; release with mm_model_free. Not thread-safe: one
 * model per call. */
#ifndef ST_MM_STORE_H
#define ST_MM_STORE_H

#include "modulemap.h"

#include <stddef.h>
#include <yajl/yajl_tree.h>

typedef struct mm_kv {
    char *key;
    long long id;
} mm_kv;

typedef struct mm_model {
    mm_kv *modules; /* sorted by key (strcmp), unique */
    size_t n_modules, cap_modules;
    mm_kv *groups;  /* sorted by key, unique */
    size_t n_groups, cap_groups;
    yajl_val doc;   /* the parsed file, kept for "tags" and the other keys (NULL: none) */
    yajl_val tags;  /* points into doc, or NULL: written as {} */
    char **dropped; /* keys of entries left out: paths outside the project (absolute, "..") */
    size_t n_dropped;
} mm_model;

/* Builds the canonical model from a map read by stmm_parse from text (len bytes; text is parsed
 * once more for "tags"). Keys that are dotted names are turned into paths with exists/userdata
 * (stmm_key_to_path); a key that names nothing is kept as written. Ids: numeric group texts are
 * the id; group names get the id the canonical "groups" gives them, else max + 1, + 2, ... in
 * name order; a module without a group gets max + 1 in key order; a module listed twice keeps
 * its lowest id. An entry whose path leaves the project (absolute, or with a ".." part) is not
 * taken: its key goes to out->dropped for the caller to report, and a rewrite leaves it out.
 * Returns 0, or -1 on out of memory. */
int mm_model_build(const stmm_map *map, const char *text, size_t len, stmm_exists_fn exists,
                   void *userdata, mm_model *out);

void mm_model_free(mm_model *m);

/* The id of a module path, or -1 when it is not in the map. */
long long mm_model_find(const mm_model *m, const char *path);

/* The largest id in modules and groups, or 0 when the map is empty (so a first module gets 1). */
long long mm_model_max_id(const mm_model *m);

/* Adds (or sets) a module and makes sure its id has a group name ("ID" when none has it).
 * Returns 0 or -1 on out of memory. */
int mm_model_add(mm_model *m, const char *path, long long id);

/* Gives every module id that no group names a numeric group entry. Returns 0 or -1. */
int mm_model_name_groups(mm_model *m);

/* Canonical JSON text (with a final newline), malloc'd; *len gets its length. NULL on OOM. */
char *mm_model_render(const mm_model *m, size_t *len);

/* The dotted module name of a repo-relative path: "pkg/mod.py" -> "pkg.mod",
 * "pkg/__init__.py" -> "pkg"; strip_src drops a leading "src/" (a src layout). malloc'd, or NULL
 * for a path that is not a .py file or on OOM. */
char *mm_dotted_name(const char *path, int strip_src);

/* Reads a whole file (bounded by STMM_MAX_BYTES). Returns 0 with *data (malloc'd, NUL-terminated)
 * and *len, 1 when it does not exist, -1 with err filled. */
int mm_read_file(const char *path, char **data, size_t *len, char *err, size_t err_size);

#endif /* ST_MM_STORE_H */
