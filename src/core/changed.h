/* SPDX-License-Identifier: MIT */
/* Change-aware runs (`run --changed`, `--changed-first`): which test files a change can affect.
 *
 * The changed files come from git (spawned with an argv, never a shell): `git diff --name-only
 * REV` for tracked files (committed since REV, staged or not) and `git status --porcelain` for
 * untracked ones. The selection walks the import graph backwards from every changed file:
 *  - a test file is selected when its local import closure holds a changed file (the chain is
 *    kept for --explain); a test file that changed selects itself;
 *  - a package's __init__.py counts as imported by every test file inside the package (pytest
 *    imports it first), and a conftest.py the walk reaches selects every test file under its
 *    directory;
 *  - a changed conftest.py, pytest configuration (pytest.ini, pyproject.toml, tox.ini,
 *    setup.cfg) or .py file the graph has no node for (a deleted module) selects everything;
 *  - a file that is not a Python module (data, templates, stubs, extension sources) counts as a
 *    change of every module in the nearest directory above it that holds Python files; when
 *    that directory is the project root (or there is none), everything is selected;
 *  - files under skipped directories (skip_dirs: .git, __pycache__, virtualenvs, ...) and
 *    compiled *.pyc / *.pyo files are ignored.
 * The test files that failed since the last passing run are added by the caller (failed[]).
 */
#ifndef ST_CHANGED_H
#define ST_CHANGED_H

#include "util.h"

struct st_pygraph;

typedef struct st_selection {
    int everything;        /* run every test */
    char *everything_why;  /* why, for --explain (set when everything) */
    st_strv tests;         /* the selected test files, repo-relative, sorted */
    st_strv why;           /* one line per entry of tests: the changed file and the chain */
} st_selection;

void st_selection_free(st_selection *sel);

/* Is rel (repo-relative) a file the selection ignores (under a skipped directory, compiled
 * bytecode)? skip_dirs: NULL-terminated directory names. */
int st_changed_ignored(const char *rel, const char *const *skip_dirs);

/* Selects the test files affected by changed[0..n_changed) (repo-relative paths, existing or
 * deleted), plus failed[0..n_failed) (test files, kept when the graph knows them). Returns ST_OK
 * or ST_ERR_NOMEM; sel is zero-initialised by the caller and freed with st_selection_free. */
int st_changed_select(const struct st_pygraph *g, const char *const *changed, size_t n_changed,
                      const char *const *failed, size_t n_failed, st_selection *sel);

/* Restricts the test batches to the selected files. For each batch path (a directory, "." for
 * the root, a file or a FILE::NODE id) keeps[i] gets the selected files under it. With
 * affected_first, every batch is kept and the batches holding affected files come first; else
 * a batch without a selected file is dropped, and a file or node-id batch is kept whole when
 * its file is selected (keeps[i] then stays empty), as is a batch whose path is in whole (may
 * be NULL). batches is rewritten in place; *keeps is a
 * new array of batches->n vectors (freed by the caller, each with st_strv_free). Returns ST_OK
 * or ST_ERR_NOMEM. */
int st_changed_plan(const st_selection *sel, const st_strv *whole, st_strv *batches,
                    st_strv **keeps, int affected_first);

/* ---- git ------------------------------------------------------------------------------------ */

enum {
    ST_GIT_OK = 0,
    ST_GIT_NOT_REPO = 1,   /* root is not inside a git work tree */
    ST_GIT_MISSING = 2,    /* git cannot be run */
    ST_GIT_BAD_REV = 3,    /* the revision does not name a commit */
    ST_GIT_ERROR = -1,     /* git failed otherwise (message in err) */
};

/* The commit HEAD names in root's repository (40 hex digits) in *sha, or a status above. */
int st_git_head(const char *root, char **sha);
/* The commit rev names in *sha; err (may be NULL) gets git's message on ST_GIT_ERROR. */
int st_git_resolve(const char *root, const char *rev, char **sha, char *err, size_t err_size);
/* Every file under root (root-relative) that differs from commit sha: tracked changes
 * (committed, staged or not, deleted files included) and untracked files (not the ignored
 * ones). Returns ST_GIT_OK or another status (err filled). */
int st_git_changed_files(const char *root, const char *sha, st_strv *out, char *err,
                         size_t err_size);
/* What a run records of its work tree: HEAD's commit in *sha (malloc'd) and the files that
 * differ from it in changed (as st_git_changed_files), with two git processes instead of
 * st_git_head's one and st_git_changed_files' three. ST_GIT_OK, or another status with *sha
 * NULL (not in git, no commit yet, git missing or failing). */
int st_git_state(const char *root, char **sha, st_strv *changed);

/* A hunk of `git diff -U0`: on the side of the base commit, `count` lines from line `start`
 * were replaced, or (count 0) lines were inserted after line `start`. */
typedef struct st_hunk {
    long start, count;
} st_hunk;

/* The hunks of rel (root-relative) between commit sha and the work tree. Returns ST_GIT_OK with
 * *hunks (malloc'd; *n may be 0: no textual change) or another status. */
int st_git_hunks(const char *root, const char *sha, const char *rel, st_hunk **hunks,
                 size_t *n);

#endif
