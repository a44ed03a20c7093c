/* SPDX-License-Identifier: MIT */
/* orphans: the orphan files of docs/spec.md §7.4 under the data dir, owned by the core:
 *   orphan_modules.json          {"pkg/mod.py": {"parents": [...], "redundant": false}}
 *                                (the legacy list form ["a.py", "b.py"] is accepted on read)
 *   orphan_classifications.json  {"pkg/mod.py": {"classification": "candidate", "parents": [...],
 *                                 "reason": "...", "redundant": false}}
 * Both are written atomically (temp file in the data dir, fsync, rename), with sorted keys and a
 * 2-space indent.
 *
 * Safety rules that must stay true:
 *  - A file that cannot be parsed (or has the wrong shape) is reported with file, line and
 *    column and left byte for byte as it is: the cache loads it as empty and marks it
 *    "do not save", so no later call can overwrite it, --refresh-orphans included. The user
 *    fixes or removes it.
 *  - A key that is not a safe repo-relative path (absolute, "..", a symlink leading out of the
 *    root) is rejected with an error naming it and dropped; the file that held it is marked
 *    "do not save" too, so nothing the user wrote is silently destroyed.
 *  - Entries whose file is gone are dropped with an info line (and the file is rewritten
 *    without them at the next save).
 *
 * Choices (docs/spec.md §7.4, §8.1): a failed check writes "failed" into the classification, one
 * that failed only for a missing third-party package "unmet"; a passing one writes "passed" (the
 * file always shows the latest verdict; "redundant" keeps the static result). Legacy modules
 * are written with "redundant": true too (the original's readers skip such entries), and every
 * classification entry has a "reason" (a check without one keeps discovery's). Removing integrated modules (--clean-orphans) touches orphan_modules.json only; the
 * classifications keep their history.
 *
 * Typical cycle (pipeline):
 *   st_orphans_load(&c, root, data_dir);          once, before discovery
 *   if (refresh) st_orphans_clear(&c);
 *   st_orphans_merge_entry(&c, entry) per discovered module (in the discovery sink)
 *   st_orphans_to_test(&c, include_redundant, &v) when include_orphans
 *   st_orphans_mark(&c, path, passed, reason)     per orphan check
 *   st_orphans_remove_integrated(&c, integrated)  with --clean-orphans, after integration
 *   st_orphans_save(&c); st_orphans_free(&c);
 * Thread-safety: a cache is used by one thread at a time (the pipeline's). Functions log their
 * errors (log.h) and return ST_OK or a negative st_status. */
#ifndef ST_ORPHANS_H
#define ST_ORPHANS_H

#include <stddef.h>

#include <selftest/plugin.h>

#include "util.h"

#define ST_ORPHAN_MODULES_FILE "orphan_modules.json"
#define ST_ORPHAN_CLASSES_FILE "orphan_classifications.json"

/* Files larger than this are treated like malformed ones (reported, never overwritten). */
#define ST_ORPHANS_MAX_FILE (64u << 20)

typedef struct st_orphan {
    char *path;          /* repo-relative, safe */
    st_strv parents;     /* sorted, deduplicated */
    int redundant;
    char *classification; /* "candidate", "legacy", "redundant", "failed", "passed", "unmet",
                           * or NULL */
    char *reason;        /* may be NULL */
    int in_modules;      /* listed in orphan_modules.json */
    int in_classes;      /* listed in orphan_classifications.json */
} st_orphan;

typedef struct st_orphan_cache {
    char *root;
    char *modules_file;  /* absolute paths of the two files */
    char *classes_file;
    st_orphan *v;        /* sorted by path (strcmp) */
    size_t n, cap;
    int modules_readonly; /* do not save: the file on disk was malformed or held a bad key */
    int classes_readonly;
    int dirty;
} st_orphan_cache;

/* What discovery says about one module (a copy of the plugin's st_module_entry). */
typedef struct st_orphan_update {
    const char *path;
    const char *const *parents; /* NULL-terminated, may be NULL */
    const char *classification; /* "candidate", "legacy" or "redundant" */
    const char *reason;
} st_orphan_update;

/* Reads both files (absent files are empty). Never fails because of the files' contents: those
 * problems are logged and handled as described above. Returns ST_OK, or ST_ERR_NOMEM. c is zeroed
 * first and must be released with st_orphans_free, whatever the result. */
int st_orphans_load(st_orphan_cache *c, const char *root, const char *data_dir);

/* --refresh-orphans: forget every entry (the next save writes only what is merged after). The
 * do-not-save flags stay. */
void st_orphans_clear(st_orphan_cache *c);

/* Adds or updates one discovered module in both files: parents, classification, reason and
 * redundant (classification == "redundant") are replaced. Rejects an unsafe path
 * (ST_ERR_INVALID, logged) or an unknown classification (ST_ERR_INVALID). */
int st_orphans_merge(st_orphan_cache *c, const st_orphan_update *u);

/* The same from a discovery plugin's entry (the sink's add_module): origins ORPHAN and
 * ISOLATED are merged; EXPLICIT modules (named on the command line) are not cached and return 0.
 * The reason of a duplicate already names duplicate_of. */
int st_orphans_merge_entry(st_orphan_cache *c, const st_module_entry *e);

/* Records an orphan check: classification "passed" or "failed", with reason (may be NULL). A
 * module not in the cache is added to the classifications only. */
int st_orphans_mark(st_orphan_cache *c, const char *path, int passed, const char *reason);
/* Records a check that failed only because a third-party package is missing: classification
 * "unmet", reason "unmet dependency: NAME". */
int st_orphans_mark_unmet(st_orphan_cache *c, const char *path, const char *reason);

/* --clean-orphans: removes from orphan_modules.json every module in integrated (NULL-terminated)
 * and every entry that has parents, all of which are in integrated. Returns how many entries
 * were removed. */
size_t st_orphans_remove_integrated(st_orphan_cache *c, const char *const *integrated);

/* The cached orphans to check when include_orphans is on: entries of orphan_modules.json whose
 * file exists, without redundant and legacy ones unless include_redundant. Appends sorted
 * paths to out. */
void st_orphans_to_test(const st_orphan_cache *c, int include_redundant, st_strv *out);

/* Looks an entry up; NULL when absent. */
const st_orphan *st_orphans_find(const st_orphan_cache *c, const char *path);

/* Writes both files (a file whose do-not-save flag is set is skipped, with a warning). Returns
 * ST_OK or the first failure's status (ST_ERR_IO, ST_ERR_UNAVAILABLE, ST_ERR_NOMEM; logged).
 * Creates the data dir when needed. */
int st_orphans_save(st_orphan_cache *c);

void st_orphans_free(st_orphan_cache *c);

/* ---- which files are never orphans, and which are known ------------------------------------- *
 * Test code: files under a test path that are test files (test_*.py, *_test.py, anywhere),
 * conftest.py, files inside a directory named "test" or "tests" (at or below the test path),
 * and every file under a test path that is a plain directory of tests (not the root, no
 * __init__.py, no package directly inside it). Then the orphan_exclude globs: a glob without
 * '/' matches the file name anywhere, one with '/' the whole repo-relative path ("/name"
 * anchors a file name at the root), '*' also matching '/'. Known: the modules listed in <data>/module_map.json (integrated). */
typedef struct st_orphan_rules {
    st_strv test_paths;   /* repo-relative, "." for the root */
    st_strv plain_dirs;   /* test paths that are plain directories of tests */
    st_strv exclude;      /* globs */
    int exclude_default;  /* exclude is the built-in default list */
    st_strv known;        /* module_map.json modules as repo-relative paths */
} st_orphan_rules;

/* Builds the rules (r zeroed first; free with st_orphan_rules_free whatever the result).
 * module_map.json is read from data_dir (absent: nothing known; unreadable: a warning, nothing
 * known). Returns ST_OK or ST_ERR_NOMEM. */
int st_orphan_rules_init(st_orphan_rules *r, const char *root, const char *data_dir,
                         const st_strv *test_paths, const st_strv *exclude,
                         int exclude_is_default);
/* 1 when path is never an orphan; why gets the rule ("test code: ..." or "orphan_exclude
 * 'GLOB'"). */
int st_orphan_rules_excluded(const st_orphan_rules *r, const char *path, char *why,
                             size_t why_size);
/* 1 when module_map.json lists path. */
int st_orphan_rules_known(const st_orphan_rules *r, const char *path);
void st_orphan_rules_free(st_orphan_rules *r);

#endif /* ST_ORPHANS_H */
