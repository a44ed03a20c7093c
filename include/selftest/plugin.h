/* SPDX-License-Identifier: MIT */
/* selftest-core plugin ABI: the one contract between the core and its .so plugins.
 * Plugins include only this header (and <selftest/version.h>); they never link against the core.
 *
 * ABI changelog (append only; every change bumps ST_ABI_MINOR, an incompatible one ST_ABI_MAJOR):
 *   1.0  2026-11  first version: descriptor, host services, lifecycle, runtime / discovery /
 *                 integrator / exporter vtables.
 *   1.1  2026-11  host services: graph() and graph_ops, the project's Python import graph
 *                 (st_graph, st_graph_ops, st_graph_step) for discovery and integrators.
 *   1.2  2026-11  st_discovery_sink.excluded (files that are never orphans: test code and the
 *                 orphan_exclude setting); st_run_summary.orphans_unmet_total.
 *   1.3  2026-11  st_exec_result: limit (the resource limit that stopped an execution) and
 *                 leftover (processes still running when it ended, stopped by the runtime).
 *   1.4  2026-11  st_exec_result.cleanup_failures: what a runtime could not clean up after an
 *                 execution (a container it could not remove), counted by the core.
 *   1.5  2026-11  st_runtime_ops.environment_id: what decides the interpreter's answers inside
 *                 the runtime (a container runtime: the image id), for the core's preflight
 *                 cache.
 *
 * Rules that must stay true (see docs/plugin-guide.md for the long form):
 *  - A plugin exports exactly one symbol, ST_PLUGIN_ENTRY_SYMBOL. The core calls it with its own
 *    ABI major/minor; it returns a pointer to a static descriptor, or NULL to decline.
 *  - The core refuses a descriptor whose abi_major differs from its own, whose abi_minor is
 *    greater than its own, whose struct_size is too small, whose name or kind is not the one
 *    configured, or whose vtable lacks a mandatory op.
 *  - Structs only grow at the end. Every struct that crosses the boundary starts with its
 *    struct_size; an optional op that is NULL, or lies beyond the provider's struct_size, means
 *    "use the core's default".
 *  - Memory: whatever the core passes in is borrowed for the duration of the call. Whatever a
 *    plugin hands to a sink callback is copied by the core before the callback returns. Nothing is
 *    freed across the boundary.
 *  - Errors: ops return ST_OK (0) or a negative st_status, after logging the detail through
 *    host->log.
 *  - Threads: lifecycle ops are called from one thread. Ops of a plugin whose descriptor has
 *    ST_PLUGIN_THREAD_SAFE may be called concurrently (a runtime executes batches in parallel);
 *    otherwise the core serialises them. runtime.cancel is always callable from another thread.
 *  - State lives in the context the plugin allocates in create(); no mutable globals, so two
 *    instances of one plugin can coexist (ST_PLUGIN_MULTI_INSTANCE).
 */
#ifndef SELFTEST_PLUGIN_H
#define SELFTEST_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ST_ABI_MAJOR 1u
#define ST_ABI_MINOR 5u

/* The one symbol every plugin exports. */
#define ST_PLUGIN_ENTRY selftest_plugin_entry
#define ST_PLUGIN_ENTRY_SYMBOL "selftest_plugin_entry"

/* ---- status codes -------------------------------------------------------------------------- */

typedef enum st_status {
    ST_OK = 0,
    ST_ERR_INVALID = -1,     /* bad configuration or argument */
    ST_ERR_NOMEM = -2,       /* allocation failed */
    ST_ERR_UNAVAILABLE = -3, /* the resource (engine, port, file) is not there */
    ST_ERR_TIMEOUT = -4,     /* a deadline passed */
    ST_ERR_CANCELLED = -5,   /* cancel() was called or the run is stopping */
    ST_ERR_IO = -6,          /* read/write/network failure */
    ST_ERR_INTERNAL = -7     /* a bug; the log says where */
} st_status;

/* The name of a status for messages ("ok", "invalid", ..., "internal"; "unknown" for any other
 * value). Defined here, so a plugin needs nothing from the core to call it. */
static inline const char *st_status_str(int status)
{
    switch (status) {
    case ST_OK: return "ok";
    case ST_ERR_INVALID: return "invalid";
    case ST_ERR_NOMEM: return "out of memory";
    case ST_ERR_UNAVAILABLE: return "unavailable";
    case ST_ERR_TIMEOUT: return "timeout";
    case ST_ERR_CANCELLED: return "cancelled";
    case ST_ERR_IO: return "i/o error";
    case ST_ERR_INTERNAL: return "internal error";
    }
    return "unknown";
}

/* ---- descriptor ---------------------------------------------------------------------------- */

typedef enum st_plugin_kind {
    ST_KIND_RUNTIME = 1,
    ST_KIND_DISCOVERY = 2,
    ST_KIND_INTEGRATOR = 3,
    ST_KIND_EXPORTER = 4
} st_plugin_kind;

#define ST_PLUGIN_THREAD_SAFE 0x1u    /* kind ops may run concurrently */
#define ST_PLUGIN_MULTI_INSTANCE 0x2u /* the config may load it more than once */

typedef struct st_plugin_descriptor {
    uint32_t abi_major;      /* ST_ABI_MAJOR the plugin was built against */
    uint32_t abi_minor;      /* ST_ABI_MINOR the plugin was built against */
    size_t struct_size;      /* sizeof(st_plugin_descriptor) as the plugin saw it */
    st_plugin_kind kind;
    const char *name;        /* must equal the file name without extension, e.g. "runtime-host" */
    const char *version;     /* the plugin's own version */
    const char *description; /* one line */
    uint32_t flags;          /* ST_PLUGIN_* */
    const void *ops;         /* st_runtime_ops, st_discovery_ops, ... as kind says */
} st_plugin_descriptor;

typedef const st_plugin_descriptor *(*st_plugin_entry_fn)(uint32_t core_abi_major,
                                                           uint32_t core_abi_minor);

/* ---- host services ------------------------------------------------------------------------- */

typedef struct st_instance st_instance;       /* opaque: the core's handle of one plugin instance */
typedef struct st_config_node st_config_node; /* opaque: one configuration group */

typedef enum st_log_level {
    ST_LOG_ERROR = 0,
    ST_LOG_WARNING = 1,
    ST_LOG_INFO = 2,
    ST_LOG_DEBUG = 3
} st_log_level;

/* Return values of the typed config accessors. */
#define ST_CFG_FOUND 0
#define ST_CFG_ABSENT 1 /* the setting is not there; *out is untouched */
/* a negative st_status (ST_ERR_INVALID) when present with the wrong type; already logged with
 * file:line */

typedef struct st_project_info {
    size_t struct_size;
    const char *root;       /* absolute project root, no trailing slash */
    const char *data_dir;   /* absolute data dir (sandbox_data) */
    const char *report_dir; /* absolute report dir */
    const char *const *skip_dirs; /* NULL-terminated directory names skipped when walking */
    const char *python;     /* interpreter used to run pytest (host) */
} st_project_info;

/* The project's Python import graph (ABI 1.1): nodes are the project's .py files (repo-relative
 * POSIX paths, ids 0..count-1 in path order), an edge A -> B means "running A imports B"
 * Immutable and shared: every query may run from any thread. */
typedef struct st_graph st_graph;

#define ST_GRAPH_NONE UINT32_MAX

/* One step of a traversal: a reached node and the node it was first reached from
 * (ST_GRAPH_NONE for a start node). */
typedef struct st_graph_step {
    uint32_t node;
    uint32_t parent;
} st_graph_step;

typedef struct st_graph_ops {
    size_t struct_size;
    size_t (*count)(const st_graph *g);
    const char *(*path)(const st_graph *g, uint32_t node);
    /* test_*.py, *_test.py and conftest.py */
    int (*is_test)(const st_graph *g, uint32_t node);
    /* node of a repo-relative path, or ST_GRAPH_NONE */
    uint32_t (*find)(const st_graph *g, const char *path);
    /* direct imports / importers of node: sorted node ids owned by the graph; returns count */
    size_t (*deps)(const st_graph *g, uint32_t node, const uint32_t **ids);
    size_t (*rdeps)(const st_graph *g, uint32_t node, const uint32_t **ids);
    /* Breadth-first closure over deps from starts. mark (count bytes) gets 1 for every reached
     * node; order (count entries, may be NULL) the reached nodes with their first parent.
     * Returns how many were reached, or a negative st_status. */
    long (*reach)(const st_graph *g, const uint32_t *starts, size_t n_starts, uint8_t *mark,
                  st_graph_step *order);
    /* reach() from every test file */
    long (*reach_tests)(const st_graph *g, uint8_t *mark, st_graph_step *order);
} st_graph_ops;

typedef struct st_host {
    size_t struct_size;
    uint32_t abi_major, abi_minor; /* the core's */
    const char *core_version;

    /* Logging, prefixed with the instance name. Thread-safe. */
    void (*log)(st_instance *self, st_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 3, 4)))
#endif
        ;

    /* Typed accessors over a config group (may be NULL: then every setting is absent).
     * Strings returned are owned by the core and live until destroy(). */
    int (*cfg_string)(st_instance *self, const st_config_node *node, const char *name,
                      const char **out);
    int (*cfg_int)(st_instance *self, const st_config_node *node, const char *name,
                   long long *out);
    int (*cfg_double)(st_instance *self, const st_config_node *node, const char *name,
                      double *out);
    int (*cfg_bool)(st_instance *self, const st_config_node *node, const char *name, int *out);
    /* A list or array of strings; *out is a NULL-terminated vector owned by the core. */
    int (*cfg_string_list)(st_instance *self, const st_config_node *node, const char *name,
                           const char *const **out);
    /* "file:line" of a setting (or of the group when name is NULL), for messages. */
    const char *(*cfg_where)(st_instance *self, const st_config_node *node, const char *name);
    /* Names of every setting in the group, NULL-terminated, for rejecting unknown keys. */
    const char *const *(*cfg_names)(st_instance *self, const st_config_node *node);

    /* Monotonic seconds. */
    double (*monotonic)(void);

    /* The project being tested. Valid from create() to destroy(). */
    const st_project_info *(*project)(st_instance *self);

    /* The instance name, e.g. "runtime-host" or "exporter-prometheus#2". */
    const char *(*instance_name)(st_instance *self);

    /* ---- ABI 1.1 ---- */
    /* The project's import graph, built on first use in a cycle (on every core) and shared by all
     * plugins until the cycle ends; NULL when it cannot be built (logged). Query it through
     * graph_ops. Check host->struct_size before use when the plugin also supports cores 1.0. */
    const st_graph *(*graph)(st_instance *self);
    const st_graph_ops *graph_ops;
} st_host;

/* The four lifecycle ops, first in every kind's vtable.
 *  create:  parse and validate config, allocate *ctx. No threads, sockets or child processes.
 *  start:   acquire resources (bind, connect, spawn). Optional.
 *  stop:    release them; idempotent; called in reverse start order. Optional.
 *  destroy: free ctx. Called for every successful create, even when start failed. */
typedef struct st_lifecycle_ops {
    int (*create)(const st_host *host, st_instance *self, const st_config_node *config,
                  void **ctx);
    int (*start)(void *ctx);
    int (*stop)(void *ctx);
    void (*destroy)(void *ctx);
} st_lifecycle_ops;

/* ---- runtime ------------------------------------------------------------------------------- */

typedef enum st_exec_kind {
    ST_EXEC_TESTS = 1,       /* a batch: pytest over one test path */
    ST_EXEC_ORPHAN_CHECK = 2 /* import one module in the sandbox */
} st_exec_kind;

/* One thing to execute. The core builds the argv; all paths are absolute host paths. A container
 * runtime mounts project_root (read-only), output_dir (writable) and support_dir (read-only) at
 * the same paths inside the container, so argv and env mean the same thing in every runtime;
 * it may replace argv[0] (the interpreter) with the image's. */
typedef struct st_exec_request {
    size_t struct_size;
    const char *id;              /* unique within the run, e.g. "batch-3" */
    st_exec_kind kind;
    const char *label;           /* test path or module path, repo-relative, for messages */
    const char *const *argv;     /* NULL-terminated; argv[0] is the interpreter */
    const char *const *env;      /* NULL-terminated "NAME=value" added to the runtime's base env */
    const char *workdir;         /* working directory */
    const char *project_root;
    const char *output_dir;      /* writable; results.jsonl must be here when execute returns */
    const char *support_dir;     /* the bundled pytest plugin */
    unsigned workers;            /* CPU budget of this execution (the -n already in argv) */
    double timeout_s;            /* > 0 */
    double kill_grace_s;         /* SIGTERM -> SIGKILL delay */
    int sandboxed;               /* apply the orphan-check limits (temp cwd, rlimits) */
} st_exec_request;

/* How it ended. Filled by the runtime; fixed buffers so nothing crosses ownership. */
typedef struct st_exec_result {
    size_t struct_size;
    int exited;            /* 1 when the process exited normally: exit_status is valid */
    int exit_status;
    int term_signal;       /* the signal that ended it, or 0 */
    int timed_out;         /* the timeout fired and the runtime stopped it */
    int cancelled;         /* cancel() stopped it */
    int infra_error;       /* the runtime could not run it (engine error, spawn failure) */
    double wall_s;         /* wall time of the execution */
    char error[512];       /* infrastructure error detail, "" if none */
    char container[80];    /* container id/name when one was used, else "" */
    /* ---- ABI 1.3: a runtime writes these only when struct_size covers them ---- */
    char limit[160];       /* the resource limit that stopped it (processes, output), or "" */
    unsigned leftover;     /* processes still running after the main process exited (the
                            * runtime stopped them) */
    /* ---- ABI 1.4 (write only when struct_size covers it) ---- */
    unsigned cleanup_failures; /* resources of this execution left behind (a container that
                                  could not be removed); the core counts them as container
                                  failures */
} st_exec_result;

/* Does an st_exec_result of this struct_size have the field? (for runtimes that also support
 * older cores) */
#define ST_EXEC_RESULT_HAS(res, field)                                                            \
    ((res)->struct_size >= offsetof(st_exec_result, field) + sizeof((res)->field))

typedef enum st_stream { ST_STREAM_STDOUT = 1, ST_STREAM_STDERR = 2 } st_stream;

/* Output of a running execution, passed as it arrives (not line-aligned). May be called from the
 * thread that called execute(). */
typedef struct st_exec_sink {
    size_t struct_size;
    void *opaque;
    void (*output)(void *opaque, st_stream stream, const char *data, size_t len);
} st_exec_sink;

typedef struct st_cleanup_report {
    size_t struct_size;
    unsigned listed;   /* containers carrying the managed label */
    unsigned removed;
    unsigned failed;   /* listings or removals that still failed after retries */
} st_cleanup_report;

typedef struct st_runtime_ops {
    size_t struct_size;
    st_lifecycle_ops life;
    /* Is the engine reachable? ST_OK or ST_ERR_UNAVAILABLE (logged with the reason). Optional:
     * NULL means always available. */
    int (*probe)(void *ctx);
    /* Make the image present (inspect, load, pull). Optional. */
    int (*prepare)(void *ctx);
    /* Run one request to completion, timeout or cancel. Mandatory. Returns ST_OK when *result
     * describes how the process ended (a failing test suite is ST_OK), or a negative status when
     * it could not be run at all (result->infra_error set, result->error filled). */
    int (*execute)(void *ctx, const st_exec_request *req, const st_exec_sink *sink,
                   st_exec_result *result);
    /* Stop the execution with this id from another thread; idempotent; unknown ids are ignored.
     * Mandatory. */
    int (*cancel)(void *ctx, const char *id);
    /* Remove stale resources of dead runs. Optional. */
    int (*cleanup_stale)(void *ctx, double max_age_s, st_cleanup_report *report);
    /* The name put in results.runtime_used ("host", "docker", "podman"). */
    const char *runtime_name;
    /* ---- ABI 1.5 ---- */
    /* One line saying what decides the interpreter's answers in this runtime besides the request
     * (a container runtime: the image id and the interpreter it runs), written into buf after
     * prepare(). The core runs its interpreter preflight again only when this changes. ST_OK,
     * or a negative status: the preflight runs every time. Optional: NULL means the host's
     * interpreter (the core keys it on the file) for the runtime named "host", and "cannot
     * tell" for any other. */
    int (*environment_id)(void *ctx, char *buf, size_t len);
} st_runtime_ops;

/* ---- discovery ----------------------------------------------------------------------------- */

typedef enum st_module_origin {
    ST_ORIGIN_ORPHAN = 1,   /* no test reaches it */
    ST_ORIGIN_ISOLATED = 2, /* nothing imports it */
    ST_ORIGIN_EXPLICIT = 3  /* named on the command line */
} st_module_origin;

typedef enum st_classification {
    ST_CLASS_CANDIDATE = 1,
    ST_CLASS_LEGACY = 2,
    ST_CLASS_REDUNDANT = 3
} st_classification;

typedef struct st_module_entry {
    size_t struct_size;
    const char *path;               /* repo-relative POSIX path */
    st_module_origin origin;
    const char *const *parents;     /* NULL-terminated repo-relative paths (may be empty) */
    st_classification classification;
    const char *reason;             /* why it got that classification */
    const char *duplicate_of;       /* for duplicates, else NULL */
} st_module_entry;

typedef struct st_discover_options {
    size_t struct_size;
    const char *const *paths;       /* NULL-terminated, repo-relative test paths (may be empty) */
    int discover_orphans;
    int include_orphans;
    int recursive_orphans;
    int auto_include_isolated;
    int recursive_isolated;
    int refresh_orphans;
    int include_redundant;
    int disable_orphans;
} st_discover_options;

typedef struct st_discovery_sink {
    size_t struct_size;
    void *opaque;
    /* One batch per test path (repo-relative). Returns ST_OK or a negative status. */
    int (*add_batch)(void *opaque, const char *path);
    /* One orphan / isolated / explicit module. */
    int (*add_module)(void *opaque, const st_module_entry *entry);
    /* ---- ABI 1.2 (check struct_size) ---- */
    /* Is the repo-relative path a file that is never an orphan or isolated module (test code
     * under the test paths, or a match of the orphan_exclude setting)? Returns 1 and writes the
     * rule that excludes it into why (always NUL-terminated), else 0. The plugin must not
     * report such a file, nor count it as a parent. */
    int (*excluded)(void *opaque, const char *path, char *why, size_t why_size);
} st_discovery_sink;

typedef struct st_discovery_ops {
    size_t struct_size;
    st_lifecycle_ops life;
    int (*discover)(void *ctx, const st_discover_options *opts, const st_discovery_sink *sink);
} st_discovery_ops;

/* ---- integrator ---------------------------------------------------------------------------- */

typedef struct st_integrate_module {
    size_t struct_size;
    const char *path;               /* repo-relative */
    const char *const *parents;     /* NULL-terminated */
    st_classification classification;
    double coverage;                /* percent, or -1 when unknown */
    double runtime_s;
} st_integrate_module;

typedef struct st_integrate_request {
    size_t struct_size;
    const st_integrate_module *modules;
    size_t n_modules;
} st_integrate_request;

typedef struct st_integrate_sink {
    size_t struct_size;
    void *opaque;
    /* The core validates the paths (repo-relative, inside the root) and refuses others. */
    int (*integrated)(void *opaque, const char *path);
    int (*redundant)(void *opaque, const char *path);
} st_integrate_sink;

typedef struct st_integrator_ops {
    size_t struct_size;
    st_lifecycle_ops life;
    int (*integrate)(void *ctx, const st_integrate_request *req, const st_integrate_sink *sink);
} st_integrator_ops;

/* ---- exporter ------------------------------------------------------------------------------ */

typedef struct st_run_info {
    size_t struct_size;
    const char *run_id;
    double started_at;          /* UNIX seconds */
    unsigned n_batches;
    const char *runtime_name;
} st_run_info;

typedef enum st_record_kind { ST_RECORD_BATCH = 1, ST_RECORD_ORPHAN = 2 } st_record_kind;

typedef struct st_record {
    size_t struct_size;
    st_record_kind kind;
    const char *path;           /* batch path or module */
    unsigned passed, failed, skipped, xfailed, errors;
    double coverage;            /* percent or -1 */
    double runtime_s;
    int ok;                     /* the batch/check succeeded */
    const char *reason;         /* failure reason or NULL */
} st_record;

typedef struct st_run_summary {
    size_t struct_size;
    const char *run_id;
    double started_at, finished_at; /* UNIX seconds */
    unsigned passed, failed, skipped, xfailed, errors;
    double coverage;            /* percent, or -1 when unavailable */
    double mean_batch_runtime_s;
    double total_runtime_s;
    int exit_status;            /* the CLI exit status of this run */
    int success;                /* every test passed */
    int aborted;                /* stopped by a signal before it finished */
    const char *runtime_name;
    /* Cumulative since the process started. */
    unsigned long long container_failures_total;
    unsigned long long container_timeouts_total;
    unsigned long long orphans_tested_total;
    unsigned long long orphans_reintroduced_total;
    unsigned long long orphans_failed_total;
    unsigned long long orphans_redundant_total;
    unsigned long long runs_total;
    /* The whole results object (docs/spec.md §5.4) as JSON, for exporters that want more. */
    const char *results_json;
    /* ---- ABI 1.2 (check struct_size) ---- */
    /* Import checks whose only failure was a missing third-party package, since start. */
    unsigned long long orphans_unmet_total;
} st_run_summary;

typedef struct st_exporter_ops {
    size_t struct_size;
    st_lifecycle_ops life;
    int (*begin_run)(void *ctx, const st_run_info *info);
    /* May be called from worker threads; must not block. */
    int (*record)(void *ctx, const st_record *rec);
    int (*end_run)(void *ctx, const st_run_summary *summary);
    int (*flush)(void *ctx); /* optional */
} st_exporter_ops;

/* ---- helpers for plugin authors ------------------------------------------------------------ */

/* Declare the entry point:
 *   ST_PLUGIN_DEFINE(descriptor)
 * expands to the exported function that hands the core the descriptor. The core, not the plugin,
 * compares versions, so that a refusal can name both sides. A plugin that must decline a core
 * (for instance one that needs ABI minor 3 features unconditionally) writes its own entry and
 * returns NULL. */
#if defined(__GNUC__)
#define ST_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define ST_PLUGIN_EXPORT
#endif

#define ST_PLUGIN_DEFINE(desc)                                                                   \
    ST_PLUGIN_EXPORT const st_plugin_descriptor *ST_PLUGIN_ENTRY(uint32_t core_abi_major,        \
                                                                 uint32_t core_abi_minor);       \
    ST_PLUGIN_EXPORT const st_plugin_descriptor *ST_PLUGIN_ENTRY(uint32_t core_abi_major,        \
                                                                 uint32_t core_abi_minor)        \
    {                                                                                            \
        (void)core_abi_major;                                                                    \
        (void)core_abi_minor;                                                                    \
        return &(desc);                                                                          \
    }

#ifdef __cplusplus
}
#endif

#endif /* SELFTEST_PLUGIN_H */
