/* SPDX-License-Identifier: MIT */
/* checkcache: the verdicts of earlier import checks, <data>/orphan_check_cache.json, so that a
 * module whose bytes and local imports have not changed since its last check with the same
 * interpreter is not checked again (its last verdict stands, shown as cached).
 *
 *   {"version": 1, "modules": {"pkg/mod.py": {"key": "<32 hex>", "interpreter": "...",
 *     "verdict": "passed" | "failed", "reason": "...", "excerpt": "...", "checked_at": 1.0}}}
 *
 * key: a 128-bit hash over the path and bytes of the module and of every project file it
 * imports, directly or not (the import graph's reach). interpreter: what else decides the
 * verdict (runtime, interpreter path and version, PYTHONPATH, the check timeout); a different
 * one is a miss. Unmet dependencies, infrastructure errors and checks of an aborted run are not
 * stored (installing the missing package must be enough for the next cycle to re-check).
 *
 * Entries whose module is gone are forgotten at the next save.
 * Safety: the file is written atomically (temp file, fsync, rename), sorted keys. A file that
 * cannot be parsed or has the wrong shape is reported (file, line, column), used as empty and
 * never overwritten this run; the user fixes or removes it.
 * Thread-safety: one thread at a time (the pipeline's). */
#ifndef ST_CHECKCACHE_H
#define ST_CHECKCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "pygraph.h"

#define ST_CHECK_CACHE_FILE "orphan_check_cache.json"

typedef struct st_check_entry {
    char *path;
    char *key;
    char *interpreter;
    int passed;
    char *reason;  /* may be NULL */
    char *excerpt; /* may be NULL */
    double checked_at;
} st_check_entry;

typedef struct st_check_cache {
    char *file;
    st_check_entry *v;
    size_t n, cap;
    int readonly; /* malformed on disk: never written */
    int dirty;
} st_check_cache;

/* Reads the file (absent: empty). Returns ST_OK or ST_ERR_NOMEM; content problems are logged
 * and make the cache read-only. Free with st_checkcache_free whatever the result. */
int st_checkcache_load(st_check_cache *c, const char *data_dir);
/* The stored verdict of path when its key and interpreter match, else NULL. */
const st_check_entry *st_checkcache_get(const st_check_cache *c, const char *path,
                                        const char *key, const char *interpreter);
/* Stores (replaces) a verdict. Returns ST_OK or ST_ERR_NOMEM. */
int st_checkcache_put(st_check_cache *c, const char *path, const char *key,
                      const char *interpreter, int passed, const char *reason,
                      const char *excerpt, double checked_at);
/* Forgets the entries whose file is gone from the project root. */
void st_checkcache_prune(st_check_cache *c, const char *root);
/* Writes the file when something changed (not when read-only). Returns ST_OK or a negative
 * st_status (logged). */
int st_checkcache_save(st_check_cache *c);
void st_checkcache_free(st_check_cache *c);

/* The key of path (repo-relative) over g: NULL when the graph does not know the module or a
 * file it reaches cannot be read (then the module is simply checked). Caller frees. */
char *st_checkcache_key(const st_pygraph *g, const char *root, const char *path);

/* The same for many modules of one graph: each file is read and hashed once. */
typedef struct st_check_hasher {
    const struct st_pygraph *g;
    const char *root; /* borrowed */
    size_t n;
    uint64_t *node;   /* two words per node */
    uint8_t *state;   /* 0 not read, 1 hashed, 2 unreadable */
    uint8_t *mark;
} st_check_hasher;

/* g may be NULL (every key is then NULL). Returns ST_OK or ST_ERR_NOMEM; free whatever the
 * result. */
int st_check_hasher_init(st_check_hasher *h, const struct st_pygraph *g, const char *root);
char *st_check_hasher_key(st_check_hasher *h, const char *path);
void st_check_hasher_free(st_check_hasher *h);

#endif
