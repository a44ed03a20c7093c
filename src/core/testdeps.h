/* SPDX-License-Identifier: MIT */
/* Test dependencies: which functions of the project each test file executed in a whole run
 * (recorded by the bundled pytest plugin when record_test_deps is set), kept in
 * <data>/test_deps.json, and used by `run --changed` to place a change finer than the import
 * graph can.
 *
 * The map is used for a changed file only when all of these hold: it was recorded at the
 * commit the change is measured from, with that file unchanged then (not in the run's
 * git_dirty); some test process of that run loaded the file; and every line the change touches
 * (on the base commit's side of `git diff -U0`) lies inside the body of one function (between
 * the first and the last line of its body's code, so neither its decorators, signature and
 * docstring nor module-level code), which no code outside the tests ran (imports at
 * collection, session- and package-scoped fixtures). The test files that ran that function are
 * then selected, plus every test file of the file's import closure the map does not know whole
 * (it did not run there, or not all of its tests ran). Otherwise the file is placed by the
 * import graph as before.
 *
 * What this cannot see: a function body's change that reaches a test without that function
 * running in it: state shared between test files (a cache filled, or a global set, by a
 * function that ran during another test file's tests: the test reading it did not run it), a
 * test reading the function's source, line numbers or code object (lines shifted for a warning
 * or traceback a test checks); generator objects created before the recording started; and
 * code run by a process the tests start (a subprocess is not traced). */
#ifndef ST_TESTDEPS_H
#define ST_TESTDEPS_H

#include "results.h"
#include "util.h"

#define ST_TESTDEPS_FILE "test_deps.json"
#define ST_TESTDEPS_DIR "deps" /* under a batch's output dir: the plugin's deps-<pid>.json */

typedef struct st_testdeps st_testdeps;

/* After a whole run (not a --changed subset, not aborted): the batches' records merged into
 * <data_dir>/test_deps.json (written atomically), stamped with the run's id, commit and
 * git_dirty. A batch without records adds nothing; none at all leaves the old file. Returns
 * ST_OK, or a negative st_status (logged). */
int st_testdeps_save(const char *data_dir, const st_run *run);

/* Loads the map when it was recorded at commit sha. *out is NULL when there is none, or it is
 * stale or unreadable (why, when not NULL, says which). Returns ST_OK or ST_ERR_NOMEM. */
int st_testdeps_load(const char *data_dir, const char *sha, st_testdeps **out, char *why,
                     size_t why_size);
void st_testdeps_free(st_testdeps *d);

/* Places the change of rel (root-relative .py file) since sha: 1 when the map can, with the
 * test files that ran a changed function appended to tests (and one line each to why); 0 when
 * it cannot (the caller uses the import graph); ST_ERR_NOMEM. */
int st_testdeps_place(const st_testdeps *d, const char *root, const char *sha, const char *rel,
                      st_strv *tests, st_strv *why);

/* Does the map know every test of test file rel (all of them ran in the recorded run, with the
 * recorder in place)? */
int st_testdeps_covers(const st_testdeps *d, const char *rel);

#endif
