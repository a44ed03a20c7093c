/* SPDX-License-Identifier: MIT */
/* pygraph: the Python import graph of a project tree (docs/spec.md §4, §7.1), built with pyscan on
 * a small thread pool and resolved to files under the root the way Python's import system would.
 *
 * Nodes are the .py files under the root (not .pyi), outside the skip dirs, identified by their
 * repository-relative POSIX path; node ids are 0..count-1 in strcmp order of the paths.
 * An edge A -> B means "running A imports B". Resolution rules (docs: python-imports.md):
 *  - sys.path model: the root, then the configured source roots (options.source_roots), then
 *    `src/` when the project uses a src layout (`src/` exists, has no __init__.py and holds .py
 *    files). Test-side files (test_*.py, *_test.py,
 *    conftest.py) get pytest's rootdir rule in front: the first directory upward from the file
 *    (the file's own directory included) without __init__.py; their module name is relative to
 *    it. Scripts (all other files) do NOT get their own directory on sys.path: they are
 *    modelled as modules of the project (imported by name, as the orphan checks of
 *    docs/spec.md §8.1 do), so `tool.py` importing a sibling `helper` resolves only if helper
 *    is importable from the root. Their module name is their path relative to the deepest
 *    source root holding them (`src/` under a src layout) or to the root.
 *  - `import a.b.c` -> a/__init__.py, a/b/__init__.py, a/b/c.py (each prefix that resolved);
 *    `from p import n` -> p's chain plus p/n.py or p/n/__init__.py when that submodule exists;
 *    `from x import *` -> x's chain, or for a namespace package every .py file beneath it;
 *    in one directory a package beats a module beats a namespace directory; across sys.path
 *    entries the first package or module wins, namespace portions (PEP 420) merge; `a.b` under a
 *    plain module a.py never resolves; relative imports are resolved from the file's module name
 *    (__init__.py is its own package); above the top package or in a top-level script: nothing;
 *    `__future__` is never an edge; self-edges are dropped. Literal importlib calls resolve like
 *    `import`. Extension modules (.so) and the `__all__` submodules of a star import are not
 *    modelled.
 *  - Walk: directories whose name is in the skip list, named `site-packages`, or holding a
 *    `pyvenv.cfg` are skipped; directory symlinks are never followed (so loops are harmless);
 *    file symlinks are followed when the target is a regular file inside the root.
 *
 * Ownership: st_pygraph_build returns a graph the caller frees with st_pygraph_free. Every
 * string and array a query returns is owned by the graph and lives as long as it.
 * Thread-safety: building uses its own threads but calls on_error from the calling thread only
 * (directories during the walk, files after the workers finished, in path order). A built graph
 * is immutable: all queries may run concurrently from any number of threads.
 */
#ifndef ST_PYGRAPH_H
#define ST_PYGRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    ST_PYGRAPH_OK = 0,
    ST_PYGRAPH_EROOT = -1,   /* the root cannot be opened as a directory */
    ST_PYGRAPH_ENOMEM = -2,
    ST_PYGRAPH_ETHREAD = -3, /* a worker thread could not be started */
    ST_PYGRAPH_EINVAL = -4,  /* bad argument */
};

#define ST_PYGRAPH_NONE UINT32_MAX

/* Reports a file or directory that was skipped: repo-relative path ("" for the root) and a
 * one-line reason. Both strings are borrowed for the call. */
typedef void (*st_pygraph_error_cb)(const char *path, const char *message, void *userdata);

typedef struct st_pygraph_options {
    const char *const *skip_dirs; /* NULL-terminated directory names; NULL: the default
                       * .git .venv venv __pycache__ node_modules build dist
                       * sandbox_data */
    unsigned threads;             /* 0: number of online CPUs (at most 64) */
    size_t max_file_bytes;        /* 0: 64 MiB; larger files are reported and skipped */
    st_pygraph_error_cb on_error; /* may be NULL */
    void *userdata;
    const char *const *source_roots; /* NULL-terminated repo-relative directories on sys.path
                       * after the root (the pythonpath setting), in order; missing ones are
                       * ignored; at most 15 are used. NULL: none */
    const char *scan_cache; /* a file keeping each scanned file's import records between
                       * builds, keyed on its size, times and inode: an unchanged file is not
                       * read again (see scancache.h). NULL: none */
} st_pygraph_options;

typedef struct st_pygraph st_pygraph;

/* One step of a traversal: a reached node and the node it was first reached from
 * (ST_PYGRAPH_NONE for a start node). */
typedef struct st_pygraph_step {
    uint32_t node;
    uint32_t parent;
} st_pygraph_step;

/* Builds the graph of the tree at root (opts may be NULL for defaults). Unreadable or
 * undecodable files are reported once through opts->on_error and stay nodes without edges.
 * Returns ST_PYGRAPH_OK and *out, or a negative status (with *out NULL). */
int st_pygraph_build(const char *root, const st_pygraph_options *opts, st_pygraph **out);

void st_pygraph_free(st_pygraph *g);

size_t st_pygraph_count(const st_pygraph *g);
const char *st_pygraph_path(const st_pygraph *g, uint32_t node);
/* test_*.py, *_test.py, and conftest.py (a test-side root) */
bool st_pygraph_is_test(const st_pygraph *g, uint32_t node);
bool st_pygraph_is_conftest(const st_pygraph *g, uint32_t node);
/* Node of a repo-relative path, or ST_PYGRAPH_NONE. */
uint32_t st_pygraph_find(const st_pygraph *g, const char *path);

/* Direct dependencies / reverse dependencies of node: sorted, deduplicated node ids. Returns the
 * count and sets *ids to an array owned by the graph. */
size_t st_pygraph_deps(const st_pygraph *g, uint32_t node, const uint32_t **ids);
size_t st_pygraph_rdeps(const st_pygraph *g, uint32_t node, const uint32_t **ids);

/* Breadth-first closure over deps from starts[0..n_starts). mark (count bytes) is overwritten:
 * 1 for every reached node (starts included), 0 otherwise. order (count entries, may be NULL)
 * receives the reached nodes in BFS order with their first parent; all parents of a node inside
 * the set are its rdeps whose mark is 1. Returns the number reached, or ST_PYGRAPH_EINVAL /
 * ST_PYGRAPH_ENOMEM. */
long st_pygraph_reach(const st_pygraph *g, const uint32_t *starts, size_t n_starts,
              uint8_t *mark, st_pygraph_step *order);

/* st_pygraph_reach from every test-side node. */
long st_pygraph_reach_tests(const st_pygraph *g, uint8_t *mark, st_pygraph_step *order);

/* Nodes nothing imports, in id order, into out (count entries). Returns how many. */
size_t st_pygraph_roots(const st_pygraph *g, uint32_t *out);

/* Build statistics. */
uint64_t st_pygraph_bytes(const st_pygraph *g);  /* bytes of source read */
size_t st_pygraph_n_edges(const st_pygraph *g);
size_t st_pygraph_n_errors(const st_pygraph *g); /* files and dirs reported */
size_t st_pygraph_n_cached(const st_pygraph *g); /* files not read: the scan cache knew them */

const char *st_pygraph_strerror(int status);

#ifdef __cplusplus
}
#endif

#endif /* ST_PYGRAPH_H */
