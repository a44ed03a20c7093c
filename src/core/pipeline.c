/* SPDX-License-Identifier: MIT */
/* One cycle of the pipeline, docs/spec.md §3: discover, run, classify, integrate, export. */
#include "config.h"

#include "pipeline.h"

#include "exitstatus.h"
#include "checkcache.h"
#include "plugin_services.h"
#include "json.h"
#include "history.h"
#include "lock.h"
#include "metricsdb.h"
#include "orphans.h"
#include "pygraph.h"
#include "plugins.h"
#include "log.h"
#include "results.h"
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXIT_OK ST_EXIT_OK
#define EXIT_USAGE ST_EXIT_USAGE
#define EXIT_INFRA ST_EXIT_INFRA

/* ---- test paths ----------------------------------------------------------------------------- */

/* Turns the configured or given paths into repo-relative batch paths; exit status or 0. */
/* A .py file that pytest would not collect as a test file: checked as a module (docs/spec.md
 * §8.1). */
static int is_module_path(const char *rel)
{
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    size_t n = strlen(base);
    if (n < 4 || strcmp(base + n - 3, ".py") != 0)
        return 0;
    if (strncmp(base, "test_", 5) == 0 || (n >= 8 && strcmp(base + n - 8, "_test.py") == 0) ||
        strcmp(base, "conftest.py") == 0)
        return 0;
    return 1;
}

/* The default test paths: pytest's own `testpaths` when the project's configuration sets them
 * (pf asked pytest), else tests/ if it exists, else the root. */
static void default_paths(const st_settings *s, const st_preflight *pf, st_strv *given)
{
    if (pf && pf->config_asked && pf->config_error)
        st_warn("pytest could not read the project's configuration (%s); test paths: tests/ "
                "if it exists, else the project root",
                pf->config_error);
    if (pf && pf->config_asked && !pf->config_error && pf->testpaths.n) {
        if (pf->default_paths.n) {
            for (size_t i = 0; i < pf->default_paths.n; i++)
                st_strv_push(given, pf->default_paths.v[i]);
            st_info("test paths from testpaths in %s", pf->inipath ? pf->inipath : "?");
            return;
        }
        /* what pytest does then: run the invocation dir (the root) */
        char a[PATH_MAX], b[PATH_MAX];
        int same_root = pf->rootdir && realpath(pf->rootdir, a) && realpath(s->project_root, b) &&
                        strcmp(a, b) == 0;
        if (same_root)
            st_warn("testpaths in %s matches nothing; testing the whole project root, as pytest "
                    "does",
                    pf->inipath ? pf->inipath : "the pytest configuration");
        else
            st_warn("pytest's rootdir is %s, not the project root: pytest ignores the testpaths "
                    "of %s there; testing the whole project root, as pytest does",
                    pf->rootdir ? pf->rootdir : "?",
                    pf->inipath ? pf->inipath : "its configuration");
        st_strv_push(given, ".");
        return;
    }
    char *tests = st_path_join(s->project_root, "tests");
    struct stat st;
    st_strv_push(given, tests && stat(tests, &st) == 0 && S_ISDIR(st.st_mode) ? "tests" : ".");
    free(tests);
}

/* Turns the configured or given paths into repo-relative batch paths (a pytest node id,
 * "FILE::NAME...", keeps its node part); .py files named on the command line that are not test
 * files go to modules. pf: the preflight, for the default paths (NULL when paths are set).
 * Returns an exit status or 0. */
static int resolve_paths(const st_settings *s, const st_preflight *pf, st_strv *out,
                         st_strv *modules)
{
    st_strv given = {0};
    for (size_t i = 0; i < s->paths.n; i++)
        st_strv_push(&given, s->paths.v[i]);
    int from_cli = s->paths_from_cli;
    const char *src = from_cli ? "" : " (from the config's paths)";
    if (given.n == 0) {
        default_paths(s, pf, &given);
        from_cli = 0;
        src = " (from pytest's testpaths)";
    }
    int rc = given.oom ? EXIT_INFRA : 0;
    char real_root[PATH_MAX];
    if (!realpath(s->project_root, real_root)) {
        st_error("project root %s: %s", s->project_root, strerror(errno));
        st_strv_free(&given);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < given.n && rc == 0; i++) {
        const char *p = given.v[i];
        const char *node = strstr(p, "::"); /* a node id: the file part is a path */
        char *file = node ? st_strndup(p, (size_t)(node - p)) : st_strdup(p);
        char *abs = file ? st_path_absolute(from_cli ? NULL : s->project_root, file) : NULL;
        char real[PATH_MAX];
        char *rel = NULL;
        struct stat st;
        if (!abs) {
            rc = EXIT_INFRA;
        } else if (node && (!file[0] || !node[2])) {
            st_error("test path '%s'%s: not a pytest node id (FILE::NAME)", p, src);
            rc = EXIT_USAGE;
        } else if (!realpath(abs, real)) {
            st_error("test path '%s'%s: %s", p, src,
                     errno == ENOENT ? "no such file or directory" : strerror(errno));
            rc = EXIT_USAGE;
        } else if (!(rel = st_path_relative_to(real_root, real))) {
            st_error("test path '%s'%s is outside the project root %s", p, src, s->project_root);
            rc = EXIT_USAGE;
        } else if (node && (stat(real, &st) < 0 || !S_ISREG(st.st_mode))) {
            st_error("test path '%s'%s: '%s' is not a file (a node id names a test file)", p, src,
                     file);
            rc = EXIT_USAGE;
        } else if (node) {
            char *id = st_asprintf("%s%s", rel, node);
            if (id && !st_strv_contains(out, id))
                st_strv_push(out, id);
            rc = id ? 0 : EXIT_INFRA;
            free(id);
        } else if (from_cli && is_module_path(rel)) {
            if (!st_strv_contains(modules, rel))
                st_strv_push(modules, rel);
        } else if (!st_strv_contains(out, rel)) {
            st_strv_push(out, rel);
        }
        free(rel);
        free(abs);
        free(file);
    }
    st_strv_free(&given);
    return rc;
}

/* ---- discovery ------------------------------------------------------------------------------ */

/* The modules to check, with what discovery said of them. */
typedef struct module_list {
    st_batch *v;
    size_t n, cap;
} module_list;

/* The entry of path, created with origin when new (a module named on the command line stays
 * "explicit" when discovery reports it too). */
static st_batch *module_add(module_list *ml, const char *path, st_module_origin origin)
{
    for (size_t i = 0; i < ml->n; i++)
        if (strcmp(ml->v[i].path, path) == 0)
            return &ml->v[i];
    if (ml->n == ml->cap) {
        size_t cap = ml->cap ? ml->cap * 2 : 16;
        st_batch *g = realloc(ml->v, cap * sizeof(*g));
        if (!g)
            return NULL;
        ml->v = g;
        ml->cap = cap;
    }
    st_batch *b = &ml->v[ml->n];
    memset(b, 0, sizeof(*b));
    b->path = st_strdup(path);
    if (!b->path)
        return NULL;
    b->kind = ST_EXEC_ORPHAN_CHECK;
    b->origin = origin;
    b->classification = ST_CLASS_CANDIDATE;
    b->coverage = -1;
    b->exit_status = -1;
    ml->n++;
    return b;
}

static void module_list_free(module_list *ml)
{
    for (size_t i = 0; i < ml->n; i++)
        st_batch_free(&ml->v[i]);
    free(ml->v);
    memset(ml, 0, sizeof(*ml));
}

/* The dotted module name of a repo-relative path, or NULL when it is not importable by name
 * (a component that is not an identifier): such a module is run by path. Files under a
 * pythonpath entry are named relative to the deepest one holding them, else files under a src/
 * layout relative to src/. */
static char *module_name(const st_settings *s, const char *path)
{
    const char *root = s->project_root;
    const char *rel = path;
    size_t best = 0;
    for (size_t i = 0; i < s->pythonpath_rel.n; i++) {
        const char *pp = s->pythonpath_rel.v[i];
        size_t n = strlen(pp);
        if (n > best && strncmp(path, pp, n) == 0 && path[n] == '/')
            best = n;
    }
    if (best) {
        rel = path + best + 1;
    } else if (strncmp(rel, "src/", 4) == 0) {
        char *init = st_asprintf("%s/src/__init__.py", root);
        if (init && access(init, F_OK) != 0)
            rel += 4;
        free(init);
    }
    char *name = st_strndup(rel, strlen(rel) - 3); /* drop ".py" */
    if (!name)
        return NULL;
    size_t n = strlen(name);
    if (n >= 9 && strcmp(name + n - 9, "/__init__") == 0)
        name[n - 9] = '\0';
    for (char *c = name; *c; c++)
        if (*c == '/')
            *c = '.';
    for (char *tok = name, *dot; tok; tok = dot ? dot + 1 : NULL) {
        dot = strchr(tok, '.');
        char save = dot ? *dot : 0;
        if (dot)
            *dot = '\0';
        int ok = st_is_identifier(tok);
        if (dot)
            *dot = save;
        if (!ok) {
            free(name);
            return NULL;
        }
    }
    return name;
}

typedef struct discovery_ctx {
    const st_settings *s;
    st_strv *batches;
    module_list *modules;
    st_orphan_cache *cache; /* NULL: the orphan files are not touched */
    const char *plugin;
    int bad;
    const st_orphan_rules *rules; /* files that are never orphans */
    st_strv *excluded;            /* "path\trule" of each file the rules excluded, or NULL */
} discovery_ctx;

static int sink_excluded(void *opaque, const char *path, char *why, size_t why_size)
{
    discovery_ctx *dc = opaque;
    if (why_size)
        why[0] = '\0';
    if (!dc->rules || !path || !st_orphan_rules_excluded(dc->rules, path, why, why_size))
        return 0;
    if (dc->excluded) {
        for (size_t i = 0; i < dc->excluded->n; i++) {
            const char *e = dc->excluded->v[i];
            size_t n = strlen(path);
            if (strncmp(e, path, n) == 0 && e[n] == '\t')
                return 1;
        }
        st_strv_pushf(dc->excluded, "%s\t%s", path, why);
    }
    return 1;
}

/* Is the orphan_exclude list the built-in default? (only for messages) */
static int exclude_is_default(const st_settings *s)
{
    size_t n = 0;
    while (st_default_orphan_exclude[n])
        n++;
    if (s->orphan_exclude.n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->orphan_exclude.v[i], st_default_orphan_exclude[i]) != 0)
            return 0;
    return 1;
}

static int sink_add_batch(void *opaque, const char *path)
{
    discovery_ctx *dc = opaque;
    if (!st_path_is_safe_relative(dc->s->project_root, path)) {
        st_error("%s: refused batch path '%s': not inside the project root", dc->plugin, path);
        dc->bad = 1;
        return ST_ERR_INVALID;
    }
    if (!st_strv_contains(dc->batches, path))
        st_strv_push(dc->batches, path);
    return ST_OK;
}

static int sink_add_module(void *opaque, const st_module_entry *entry)
{
    discovery_ctx *dc = opaque;
    if (!st_path_is_safe_relative(dc->s->project_root, entry->path)) {
        st_error("%s: refused module path '%s': not inside the project root", dc->plugin,
                 entry->path);
        return ST_ERR_INVALID;
    }
    st_batch *b = module_add(dc->modules, entry->path, entry->origin);
    if (!b)
        return ST_ERR_NOMEM;
    if (dc->cache)
        st_orphans_merge_entry(dc->cache, entry);
    b->classification = entry->classification;
    free(b->class_reason);
    b->class_reason = st_strdup(entry->reason);
    free(b->duplicate_of);
    b->duplicate_of = st_strdup(entry->duplicate_of);
    for (size_t i = 0; entry->parents && entry->parents[i]; i++)
        if (!st_strv_contains(&b->parents, entry->parents[i]))
            st_strv_push(&b->parents, entry->parents[i]);
    return ST_OK;
}

static int discover(const st_settings *s, st_plugin_set *ps, const st_strv *paths, st_strv *batches,
                    module_list *modules, st_orphan_cache *cache, const st_orphan_rules *rules,
                    st_strv *excluded)
{
    int any = 0;
    for (size_t i = 0; i < ps->n; i++) {
        st_instance *inst = ps->list[i];
        if (!st_plugins_usable(inst, ST_KIND_DISCOVERY))
            continue;
        any = 1;
        const st_discovery_ops *ops = inst->ops;
        st_strv pv = {0};
        for (size_t k = 0; k < paths->n; k++)
            st_strv_push(&pv, paths->v[k]);
        st_discover_options o = {
            .struct_size = sizeof(o),
            .paths = st_strv_get(&pv),
            .discover_orphans = s->discover_orphans && !s->disable_orphans,
            .include_orphans = s->include_orphans && !s->disable_orphans,
            .recursive_orphans = s->recursive_orphans,
            .auto_include_isolated = s->auto_include_isolated && !s->disable_orphans,
            .recursive_isolated = s->recursive_isolated,
            .refresh_orphans = s->refresh_orphans,
            .include_redundant = s->include_redundant,
            .disable_orphans = s->disable_orphans,
        };
        discovery_ctx dc = {s, batches, modules, cache, inst->name, 0, rules, excluded};
        st_discovery_sink sink = {sizeof(sink), &dc, sink_add_batch, sink_add_module,
                                  sink_excluded};
        st_inst_lock(inst);
        int rc = ops->discover(inst->ctx, &o, &sink);
        st_inst_unlock(inst);
        st_strv_free(&pv);
        if (rc != ST_OK) {
            st_error("discover stage: %s failed (status %d)", inst->name, rc);
            return -1;
        }
    }
    if (!any)
        for (size_t k = 0; k < paths->n; k++)
            st_strv_push(batches, paths->v[k]);
    /* --include-orphans: the cached orphans of earlier scans are checked too */
    if (cache && s->include_orphans && !s->disable_orphans) {
        st_strv cached = {0};
        st_orphans_to_test(cache, s->include_redundant, &cached);
        for (size_t i = 0; i < cached.n; i++) {
            const st_orphan *o = st_orphans_find(cache, cached.v[i]);
            char why[300];
            /* an integrated module, test code or an excluded file is no candidate any more */
            if (rules && st_orphan_rules_known(rules, cached.v[i])) {
                st_info("orphan cache: %s is not checked: it is in module_map.json",
                        cached.v[i]);
                continue;
            }
            if (rules && st_orphan_rules_excluded(rules, cached.v[i], why, sizeof(why))) {
                st_info("orphan cache: %s is not checked: never an orphan (%s)", cached.v[i],
                        why);
                continue;
            }
            st_batch *b = module_add(modules, cached.v[i], ST_ORIGIN_ORPHAN);
            if (!b || !o)
                continue;
            if (!b->class_reason && o->classification) {
                b->classification = strcmp(o->classification, "legacy") == 0      ? ST_CLASS_LEGACY
                                    : strcmp(o->classification, "redundant") == 0 ? ST_CLASS_REDUNDANT
                                                                                  : ST_CLASS_CANDIDATE;
                b->class_reason = st_strdup(o->reason ? o->reason : "cached orphan");
            }
            for (size_t k = 0; k < o->parents.n; k++)
                if (!st_strv_contains(&b->parents, o->parents.v[k]))
                    st_strv_push(&b->parents, o->parents.v[k]);
        }
        st_strv_free(&cached);
    }
    return batches->oom ? -1 : 0;
}

/* ---- progress and streaming ------------------------------------------------------------------ */

typedef struct cycle {
    const st_settings *s;
    const st_pipeline_opts *o;
    st_plugin_set *ps;
    st_counts cumulative;
    size_t done;
    double t0;
    int progress_shown;
    const st_preflight *pf; /* what the interpreter has (run stage) */
} cycle;

static void progress_clear(void *opaque)
{
    cycle *c = opaque;
    if (c->progress_shown) {
        fputs("\r\033[K", stdout);
        fflush(stdout);
        c->progress_shown = 0;
    }
}

/* live: what the running batches reported so far, test by test (NULL: nothing) */
static void progress_draw(cycle *c, const st_run *run, size_t running, const st_counts *live)
{
    if (!c->o->progress)
        return;
    st_counts shown = c->cumulative;
    if (live)
        st_counts_add(&shown, live);
    printf("\r\033[K[%zu/%zu batches, %zu running] %u passed, %u failed  %.1fs", c->done,
           run->n_batches, running, st_counts_passed(&shown), st_counts_failed(&shown),
           st_monotonic() - c->t0);
    fflush(stdout);
    c->progress_shown = 1;
}

/* A failed import check's reason and missing package, from its test event. */
static void check_outcome(st_batch *b)
{
    if (b->ok || b->cached)
        return;
    for (size_t t = 0; t < b->n_tests; t++) {
        const st_test_result *tr = &b->tests[t];
        if (tr->reason && !b->reason)
            b->reason = st_strdup(tr->reason);
        if (tr->unmet && !b->unmet && !b->timed_out && !b->infra_error)
            b->unmet = st_strdup(tr->unmet);
    }
}

static void on_batch_done(void *opaque, st_run *run, st_batch *b)
{
    cycle *c = opaque;
    int check = b->kind == ST_EXEC_ORPHAN_CHECK;
    if (check)
        check_outcome(b);
    c->done++;
    if (!check)
        st_counts_add(&c->cumulative, &b->counts);
    if (c->o->json) {
        char *line = st_batch_line_json(b, &c->cumulative);
        if (line) {
            fputs(line, stdout);
            fflush(stdout);
        }
        free(line);
    }
    st_record rec = {
        .struct_size = sizeof(rec),
        .kind = check ? ST_RECORD_ORPHAN : ST_RECORD_BATCH,
        .path = b->path,
        .passed = st_counts_passed(&b->counts),
        .failed = st_counts_failed(&b->counts),
        .skipped = b->counts.n[ST_OUT_SKIPPED],
        .xfailed = b->counts.n[ST_OUT_XFAILED],
        .errors = b->counts.n[ST_OUT_ERROR],
        .coverage = b->coverage,
        .runtime_s = b->runtime_s,
        .ok = b->ok,
        .reason = b->reason,
    };
    for (size_t i = 0; i < c->ps->n; i++) {
        st_instance *inst = c->ps->list[i];
        const st_exporter_ops *ops = inst->ops;
        if (!st_plugins_usable(inst, ST_KIND_EXPORTER) || !ops->record)
            continue;
        st_inst_lock(inst);
        ops->record(inst->ctx, &rec);
        st_inst_unlock(inst);
    }
    if (check)
        st_info("%s: import check %s%s%s%s", b->path,
                b->ok        ? "passed"
                : b->aborted ? "aborted"
                : b->unmet   ? "unmet dependency"
                             : "FAILED",
                b->cached ? " (cached)" : "", b->reason ? ": " : "", b->reason ? b->reason : "");
    else
        st_info("%s: %s (%u passed, %u failed, %.2fs)", b->path,
                b->ok ? "ok" : b->aborted ? "aborted" : "FAILED",
                st_counts_passed(&b->counts), st_counts_failed(&b->counts), b->runtime_s);
    progress_draw(c, run, 0, NULL);
}

static void on_tick(void *opaque, st_run *run, size_t done, size_t running,
                    const st_counts *live)
{
    cycle *c = opaque;
    (void)done;
    progress_draw(c, run, running, live);
}

static int on_should_stop(void *opaque)
{
    cycle *c = opaque;
    return c->o->should_stop && c->o->should_stop();
}

/* ---- export ---------------------------------------------------------------------------------- */

static void export_begin(st_plugin_set *ps, const st_run *run)
{
    st_run_info info = {sizeof(info), run->run_id, run->started_at, (unsigned)run->n_batches,
                        run->runtime_used};
    for (size_t i = 0; i < ps->n; i++) {
        st_instance *inst = ps->list[i];
        const st_exporter_ops *ops = inst->ops;
        if (!st_plugins_usable(inst, ST_KIND_EXPORTER) || !ops->begin_run)
            continue;
        st_inst_lock(inst);
        if (ops->begin_run(inst->ctx, &info) != ST_OK)
            st_warn("export stage: %s: begin_run failed; the run goes on", inst->name);
        st_inst_unlock(inst);
    }
}

static void export_end(st_plugin_set *ps, const st_run *run, const char *results_json,
                       const st_counters *c)
{
    st_run_summary sum = {
        .struct_size = sizeof(sum),
        .run_id = run->run_id,
        .started_at = run->started_at,
        .finished_at = run->finished_at,
        .passed = st_counts_passed(&run->totals),
        .failed = st_counts_failed(&run->totals),
        .skipped = run->totals.n[ST_OUT_SKIPPED],
        .xfailed = run->totals.n[ST_OUT_XFAILED],
        .errors = run->totals.n[ST_OUT_ERROR],
        .coverage = run->coverage,
        .mean_batch_runtime_s = run->mean_batch_runtime_s,
        .total_runtime_s = run->total_runtime_s,
        .exit_status = run->exit_status,
        .success = run->exit_status == 0 && !run->aborted, /* an aborted cycle may exit 0 */
        .aborted = run->aborted,
        .runtime_name = run->runtime_used,
        .container_failures_total = c->container_failures,
        .container_timeouts_total = c->container_timeouts,
        .orphans_tested_total = c->orphans_tested,
        .orphans_reintroduced_total = c->orphans_reintroduced,
        .orphans_failed_total = c->orphans_failed,
        .orphans_redundant_total = c->orphans_redundant,
        .runs_total = c->runs,
        .results_json = results_json,
        .orphans_unmet_total = c->orphans_unmet,
    };
    for (size_t i = 0; i < ps->n; i++) {
        st_instance *inst = ps->list[i];
        const st_exporter_ops *ops = inst->ops;
        if (!st_plugins_usable(inst, ST_KIND_EXPORTER))
            continue;
        st_inst_lock(inst);
        if (ops->end_run(inst->ctx, &sum) != ST_OK)
            st_warn("export stage: %s: end_run failed; the results are not affected", inst->name);
        st_inst_unlock(inst);
    }
}

static void write_report(const st_settings *s, const st_run *run)
{
    char *text = st_run_to_json(run, 1);
    char stamp[32];
    st_utc_stamp(run->started_at, stamp, sizeof(stamp));
    char *file = st_asprintf("%s/report_%s.json", s->report_dir, stamp);
    int rc = text && file ? st_mkdir_p(s->report_dir, 0755) : -ENOMEM;
    if (rc == 0)
        rc = st_write_file_atomic(file, text, strlen(text), 0644);
    if (rc < 0)
        st_warn("cannot write the report %s: %s", file ? file : s->report_dir, strerror(-rc));
    else
        st_info("report written to %s", file);
    free(text);
    free(file);
}

static char *new_run_id(void)
{
    unsigned char raw[16];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        double t = st_wall_clock();
        memcpy(raw, &t, sizeof(t));
        pid_t pid = getpid();
        memcpy(raw + 8, &pid, sizeof(pid));
    }
    char hex[33];
    for (size_t i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    return st_strdup(hex);
}

/* ---- open, cycle, close ---------------------------------------------------------------------- */

struct st_pipeline {
    st_settings *s;
    st_plugin_set ps;
    st_metricsdb *db;
    int fell_back; /* the container engine was unreachable: running on the host */
};

int st_pipeline_open(st_settings *s, st_pipeline **out)
{
    st_pipeline *p = calloc(1, sizeof(*p));
    if (!p)
        return EXIT_INFRA;
    p->s = s;
    char *plugin_file = st_path_join(s->support_dir, "selftest_pytest_plugin.py");
    int status = EXIT_INFRA;
    if (!plugin_file || access(plugin_file, R_OK) != 0) {
        st_error("the bundled pytest plugin %s is missing (set SELF_TEST_SUPPORT_DIR or "
                 "'support_dir' to the directory holding selftest_pytest_plugin.py)",
                 plugin_file ? plugin_file : s->support_dir);
        free(plugin_file);
        goto fail;
    }
    free(plugin_file);
    if (st_plugins_load(s, &p->ps, 0) < 0) {
        status = EXIT_USAGE;
        goto fail;
    }
    st_exit_stage stage;
    int start_rc = st_plugins_start(&p->ps, &stage);
    if (start_rc != ST_OK) {
        /* create()'s ST_ERR_INVALID from any plugin: its settings are wrong, exit 2 */
        status = st_exit_for_status(stage, start_rc);
        goto fail;
    }
    const st_runtime_ops *rt = p->ps.runtime->ops;
    p->ps.runtime->logged_error = 0;
    /* with a fallback, an unreachable engine is a warning (the fallback says what happens) */
    int can_fall_back = strcmp(s->runtime, "host") != 0 && strcmp(s->container_fallback, "host") == 0;
    p->ps.runtime->errors_as_warnings = can_fall_back;
    int probed = rt->probe ? rt->probe(p->ps.runtime->ctx) : ST_OK;
    p->ps.runtime->errors_as_warnings = 0;
    if (probed != ST_OK) {
        if (strcmp(s->runtime, "host") == 0 || strcmp(s->container_fallback, "host") != 0) {
            /* the runtime said why; the core's line matters only when it did not */
            st_log(p->ps.runtime->logged_error ? ST_LOG_INFO : ST_LOG_ERROR,
                   "run stage: %s is not available%s", p->ps.runtime->name,
                   strcmp(s->runtime, "host") ? " (container_fallback = \"fail\")" : "");
            goto fail;
        }
        st_warn("**********************************************************************");
        st_warn("%s is not available: FALLING BACK TO THE HOST RUNTIME (container_fallback = "
                "\"host\"); tests run unsandboxed on this machine",
                p->ps.runtime->name);
        st_warn("**********************************************************************");
        if (st_plugins_switch_runtime(s, &p->ps, "host") < 0)
            goto fail;
        p->fell_back = 1;
    }
    *out = p;
    return 0;
fail:
    st_pipeline_close(p);
    return status;
}

void st_pipeline_close(st_pipeline *p)
{
    if (!p)
        return;
    st_metricsdb_close(p->db);
    st_plugins_free(&p->ps);
    free(p);
}

/* Moves the modules to check into run->checks: candidates (all of them with include_redundant);
 * redundant and legacy ones are recorded in run->orphan_skipped instead. An orphan or isolated
 * module whose check-cache key and interpreter match a stored verdict is not run: the verdict
 * stands (cached). The checks to run come first; *n_run gets their count. */
static int plan_checks(const st_settings *s, st_run *run, module_list *modules, const char *work,
                       st_check_cache *cc, st_project_ctx *project, const char *interpreter,
                       size_t *n_run)
{
    run->checks = calloc(modules->n + 1, sizeof(*run->checks));
    if (!run->checks)
        return -1;
    st_check_hasher hasher = {0};
    int hashing = 0;
    for (size_t i = 0; i < modules->n; i++) {
        st_batch *m = &modules->v[i];
        if (m->classification != ST_CLASS_CANDIDATE && !s->include_redundant &&
            m->origin != ST_ORIGIN_EXPLICIT) {
            st_strv_push(&run->orphan_skipped, m->path);
            continue;
        }
        st_batch *c = &run->checks[run->n_checks++];
        *c = *m; /* takes ownership of the strings */
        memset(m, 0, sizeof(*m));
        c->id = st_asprintf("%.8s-check-%zu", run->run_id, run->n_checks - 1);
        c->output_dir = st_asprintf("%s/check-%zu", work, run->n_checks - 1);
        c->module = module_name(s, c->path);
        if (!c->id || !c->output_dir || st_mkdir_p(c->output_dir, 0755) < 0) {
            st_check_hasher_free(&hasher);
            return -1;
        }
        if (!cc || c->origin == ST_ORIGIN_EXPLICIT)
            continue; /* a module named on the command line is always checked */
        if (!hashing) { /* the graph is built only when a key is needed */
            hashing = 1;
            if (st_check_hasher_init(&hasher, st_project_graph(project), s->project_root) < 0) {
                st_check_hasher_free(&hasher);
                return -1;
            }
        }
        c->check_key = st_check_hasher_key(&hasher, c->path);
        const st_check_entry *e =
            s->refresh_orphans ? NULL
                               : st_checkcache_get(cc, c->path, c->check_key, interpreter);
        if (e) {
            c->cached = c->done = 1;
            c->ok = e->passed;
            c->reason = e->reason ? st_strdup(e->reason) : NULL;
            c->cached_excerpt = e->excerpt ? st_strdup(e->excerpt) : NULL;
            c->finished_at = e->checked_at;
        }
    }
    st_check_hasher_free(&hasher);
    /* stable partition: the checks to run first */
    st_batch *sorted = calloc(run->n_checks + 1, sizeof(*sorted));
    if (!sorted)
        return -1;
    size_t k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < run->n_checks; i++)
            if (run->checks[i].cached == pass)
                sorted[k++] = run->checks[i];
    free(run->checks);
    run->checks = sorted;
    *n_run = 0;
    while (*n_run < run->n_checks && !run->checks[*n_run].cached)
        (*n_run)++;
    return run->orphan_skipped.oom ? -1 : 0;
}

/* What besides the module's bytes decides an import check's verdict: a stored verdict is used
 * only when this matches. */
static char *check_interpreter(const st_settings *s, const st_run *run, const st_preflight *pf)
{
    int oom = 0;
    char *pp = st_pythonpath_env(s, 0, &oom); /* the pythonpath setting, then $PYTHONPATH */
    char *id = oom ? NULL
                   : st_asprintf("%s %s (Python %s) %s timeout=%g", run->runtime_used,
                                 s->python, pf->python_version, pp ? pp : "PYTHONPATH=",
                                 s->orphan_timeout_s);
    free(pp);
    return id;
}

/* Runs the batches and the orphan checks of one cycle and fills run; returns an exit status
 * or 0. */
/* Prepares the runtime and runs the preflight through it (which, without configured or given
 * test paths, also reads pytest's testpaths). Returns an exit status or 0; free pf either way. */
static int preflight_stage(st_pipeline *p, const char *work, st_preflight *pf)
{
    const st_runtime_ops *rt = p->ps.runtime->ops;
    memset(pf, 0, sizeof(*pf));
    if (rt->prepare && rt->prepare(p->ps.runtime->ctx) != ST_OK) {
        st_error("run stage: %s could not prepare its environment", p->ps.runtime->name);
        return EXIT_INFRA;
    }
    if (st_preflight_run(p->s, p->ps.runtime, work, pf) < 0)
        return EXIT_INFRA;
    return 0;
}

static int run_stage(st_pipeline *p, cycle *c, st_run *run, const st_strv *batches,
                     module_list *modules, const char *work, const st_preflight *pf_in,
                     st_check_cache *cc)
{
    st_settings *s = p->s;
    const st_preflight pf = *pf_in;
    c->pf = pf_in;
    run->cleanup_failures += pf.cleanup_failures; /* the preflight's container */
    /* The metrics DB is opened once something will run: a usage error or a missing pytest
     * leaves nothing in the data dir. */
    if (!p->db) {
        char *db_path = st_path_join(s->data_dir, "metrics.db");
        int db_rc = db_path ? st_metricsdb_open(db_path, &p->db) : -1;
        free(db_path);
        if (db_rc < 0)
            return EXIT_INFRA;
    }
    if (s->coverage && !pf.cov)
        st_warn("coverage requested but pytest-cov is not installed for %s: coverage is reported "
                "as unavailable (Debian: apt-get install python3-pytest-cov)",
                s->python);
    run->coverage_requested = s->coverage && pf.cov;
    run->n_batches = batches->n;
    run->batches = calloc(batches->n + 1, sizeof(*run->batches));
    char *interpreter = check_interpreter(s, run, &pf);
    size_t n_run = 0;
    int planned = run->batches && interpreter
                      ? plan_checks(s, run, modules, work, cc, &p->ps.project, interpreter,
                                    &n_run)
                      : -1;
    free(interpreter);
    if (planned < 0)
        return EXIT_INFRA;
    for (size_t i = 0; i < batches->n; i++) {
        st_batch *b = &run->batches[i];
        b->id = st_asprintf("%.8s-batch-%zu", run->run_id, i);
        b->kind = ST_EXEC_TESTS;
        b->path = st_strdup(batches->v[i]);
        b->output_dir = st_asprintf("%s/batch-%zu", work, i);
        b->coverage = -1;
        b->exit_status = -1;
        if (!b->id || !b->path || !b->output_dir || st_mkdir_p(b->output_dir, 0755) < 0)
            return EXIT_INFRA;
    }
    export_begin(&p->ps, run);
    double t_run = st_monotonic();
    st_runner_hooks hooks = {c, on_batch_done, on_tick, on_should_stop, c->o->progress};
    if (st_runner_run(s, p->ps.runtime, &pf, run, run->batches, run->n_batches, &hooks) < 0)
        return EXIT_INFRA;
    run->total_runtime_s = st_monotonic() - t_run;
    if (!run->aborted && st_runner_run(s, p->ps.runtime, &pf, run, run->checks, n_run,
                                       &hooks) < 0)
        return EXIT_INFRA;
    /* the cached verdicts are reported like the checks that ran */
    for (size_t i = n_run; !run->aborted && i < run->n_checks; i++)
        on_batch_done(c, run, &run->checks[i]);
    st_batch *all[2] = {run->batches, run->checks};
    size_t counts[2] = {run->n_batches, run->n_checks};
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < counts[k]; i++)
            if (!all[k][i].done) {
                all[k][i].aborted = 1;
                if (!all[k][i].reason)
                    all[k][i].reason = st_strdup("not run: the run was stopped");
            }
    return 0;
}

/* ---- integrate ----------------------------------------------------------------------------------- */

typedef struct integrate_ctx {
    const st_settings *s;
    st_run *run;
    const char *plugin;
    const st_strv *offered;
    unsigned refused;
} integrate_ctx;

static int integrate_answer(integrate_ctx *ic, const char *path, st_strv *into)
{
    if (!path || !st_path_is_safe_relative(ic->s->project_root, path)) {
        st_error("integrate stage: %s answered '%s', which is not inside the project root; "
                 "refused",
                 ic->plugin, path ? path : "(null)");
        ic->refused++;
        return ST_ERR_INVALID;
    }
    if (!st_strv_contains(into, path))
        st_strv_push(into, path);
    return into->oom ? ST_ERR_NOMEM : ST_OK;
}

static int sink_integrated(void *opaque, const char *path)
{
    integrate_ctx *ic = opaque;
    return integrate_answer(ic, path, &ic->run->integrated);
}

static int sink_redundant(void *opaque, const char *path)
{
    integrate_ctx *ic = opaque;
    return integrate_answer(ic, path, &ic->run->integration_redundant);
}

/* Hands the passing, non-redundant modules to every integrator (docs/spec.md §8.2). */
static void integrate_stage(st_pipeline *p, st_run *run)
{
    st_settings *s = p->s;
    if (s->disable_integration || s->disable_orphans)
        return;
    st_integrate_module *mods = calloc(run->n_checks + 1, sizeof(*mods));
    st_strv offered = {0};
    size_t n = 0;
    if (!mods)
        return;
    for (size_t i = 0; i < run->n_checks; i++) {
        const st_batch *c = &run->checks[i];
        if (!c->ok || c->classification == ST_CLASS_REDUNDANT)
            continue;
        mods[n++] = (st_integrate_module){
            .struct_size = sizeof(st_integrate_module),
            .path = c->path,
            .parents = st_strv_get((st_strv *)&c->parents),
            .classification = c->classification,
            .coverage = -1,
            .runtime_s = c->runtime_s,
        };
        st_strv_push(&offered, c->path);
    }
    for (size_t i = 0; n && i < p->ps.n; i++) {
        st_instance *inst = p->ps.list[i];
        if (!st_plugins_usable(inst, ST_KIND_INTEGRATOR))
            continue;
        const st_integrator_ops *ops = inst->ops;
        integrate_ctx ic = {s, run, inst->name, &offered, 0};
        st_integrate_request req = {sizeof(req), mods, n};
        st_integrate_sink sink = {sizeof(sink), &ic, sink_integrated, sink_redundant};
        st_inst_lock(inst);
        int rc = ops->integrate(inst->ctx, &req, &sink);
        st_inst_unlock(inst);
        if (rc != ST_OK) {
            st_error("integrate stage: %s failed (status %d); its modules are not integrated",
                     inst->name, rc);
            run->integration_failed = 1;
        }
    }
    st_strv_free(&offered);
    free(mods);
}

int st_pipeline_cycle(st_pipeline *p, const st_pipeline_opts *o, st_counters *counters)
{
    st_settings *s = p->s;
    st_strv paths = {0}, batches = {0}, explicit_modules = {0}, skipped_before = {0};
    module_list modules = {0};
    st_orphan_cache cache_store, *cache = NULL;
    st_orphan_rules rules = {0};
    st_check_cache checks_store = {0}, *checks = NULL;
    int save_cache = 0;
    st_run run = {0};
    char *work = NULL, *results_json = NULL;
    int status = EXIT_INFRA, lock_fd = -1;
    cycle c = {.s = s, .o = o, .ps = &p->ps, .t0 = st_monotonic()};
    st_preflight pf = {0};

    /* paths set: a bad one is a usage error before anything starts */
    int rc = s->paths.n ? resolve_paths(s, NULL, &paths, &explicit_modules) : 0;
    if (rc) {
        status = rc;
        goto out;
    }
    /* named with our pid, so that the next run can remove it if we crash */
    const char *tmp = st_tmpdir();
    size_t stale = st_remove_stale_workdirs(tmp);
    if (stale)
        st_info("removed %zu work director%s of runs that are gone from %s", stale,
                stale == 1 ? "y" : "ies", tmp);
    work = st_asprintf("%s/selftest-%ld-XXXXXX", tmp, (long)getpid());
    if (!work || !mkdtemp(work)) {
        st_error("cannot create a work directory under %s: %s", tmp, strerror(errno));
        free(work);
        work = NULL;
        goto out;
    }
    rc = preflight_stage(p, work, &pf);
    if (!rc && !s->paths.n)
        rc = resolve_paths(s, &pf, &paths, &explicit_modules); /* pytest's testpaths */
    if (rc) {
        status = rc;
        goto out;
    }
    lock_fd = st_lock_acquire(s->lock_file, s->lock_timeout_s);
    if (lock_fd < 0)
        goto out;
    if (o->progress)
        st_log_set_hook(progress_clear, NULL, &c);

    /* discover (the orphan cache is read and written under the run lock) */
    if (!s->disable_orphans) {
        if (st_orphans_load(&cache_store, s->project_root, s->data_dir) < 0) {
            st_orphans_free(&cache_store);
            goto out;
        }
        cache = &cache_store;
        if (s->refresh_orphans)
            st_orphans_clear(cache);
        if (st_orphan_rules_init(&rules, s->project_root, s->data_dir, &paths, &s->orphan_exclude,
                                 exclude_is_default(s)) < 0)
            goto out;
        checks = &checks_store;
        if (st_checkcache_load(checks, s->data_dir) < 0)
            goto out;
        st_checkcache_prune(checks, s->project_root);
    }
    /* redundant and legacy modules the cache knew before this cycle: the gauge counts a
     * module when it is first skipped, not every cycle */
    for (size_t i = 0; cache && i < cache->n; i++)
        if (cache->v[i].in_modules && cache->v[i].redundant)
            st_strv_push(&skipped_before, cache->v[i].path);
    for (size_t i = 0; i < explicit_modules.n; i++)
        if (!module_add(&modules, explicit_modules.v[i], ST_ORIGIN_EXPLICIT))
            goto out;
    if (discover(s, &p->ps, &paths, &batches, &modules, cache, cache ? &rules : NULL, NULL) < 0)
        goto out;
    if (batches.n == 0 && modules.n == 0) {
        st_error("discover stage: nothing to run (no test paths and no modules to check)");
        status = EXIT_USAGE;
        goto out;
    }

    /* run */
    const st_runtime_ops *rt = p->ps.runtime->ops;
    run.run_id = new_run_id();
    run.started_at = st_wall_clock();
    run.runtime_used = rt->runtime_name ? rt->runtime_name : s->runtime;
    if (!run.run_id)
        goto out;
    rc = run_stage(p, &c, &run, &batches, &modules, work, &pf, checks);
    if (rc) {
        status = rc;
        goto out;
    }
    save_cache = 1; /* something ran: the cycle's discoveries are worth keeping */
    run.finished_at = st_wall_clock();
    st_run_finalize(&run);
    /* checks cut short or never started by a stop are neither tested nor failed; an unmet
     * dependency is not a failure */
    run.orphan_total = st_run_orphans_checked(&run);
    run.orphan_failed = st_run_orphans_failed(&run);
    for (size_t i = 0; i < run.n_checks; i++) {
        const st_batch *ck = &run.checks[i];
        if (!ck->done || ck->aborted)
            continue;
        run.orphan_unmet += ck->unmet != NULL;
        run.orphan_cached += ck->cached;
        /* the gauges count what this cycle really checked */
        if (ck->cached)
            continue;
        counters->orphans_tested++;
        counters->orphans_failed += !ck->ok && !ck->unmet;
        counters->orphans_unmet += ck->unmet != NULL;
        /* a verdict that depends on the module alone is kept for the next cycles */
        if (checks && ck->check_key && !run.aborted && !ck->unmet && !ck->infra_error) {
            const char *excerpt = NULL;
            for (size_t t = 0; !ck->ok && t < ck->n_tests && !excerpt; t++)
                excerpt = ck->tests[t].excerpt;
            char *interp = check_interpreter(s, &run, c.pf);
            if (!interp || st_checkcache_put(checks, ck->path, ck->check_key, interp, ck->ok,
                                             ck->reason, excerpt, ck->finished_at) < 0)
                st_warn("%s: out of memory", ST_CHECK_CACHE_FILE);
            free(interp);
        }
    }
    for (size_t i = 0; i < run.orphan_skipped.n; i++)
        counters->orphans_redundant += !st_strv_contains(&skipped_before, run.orphan_skipped.v[i]);
    /* every timed-out attempt, retries included; every container left behind */
    if (strcmp(run.runtime_used, "host") != 0) {
        for (size_t i = 0; i < run.n_batches; i++)
            counters->container_timeouts += run.batches[i].attempts_timed_out;
        for (size_t i = 0; i < run.n_checks; i++)
            counters->container_timeouts += run.checks[i].attempts_timed_out;
    }
    for (size_t i = 0; i < run.n_batches; i++)
        run.cleanup_failures += run.batches[i].cleanup_failures;
    for (size_t i = 0; i < run.n_checks; i++)
        run.cleanup_failures += run.checks[i].cleanup_failures;
    counters->container_failures += run.cleanup_failures;
    counters->runs++;

    /* classify: per-batch verdicts are made as batches finish; here, per test against the
     * previous run in the metrics DB. */
    if (st_metricsdb_classify(p->db, &run) < 0)
        st_warn("classify stage: cannot compare with the previous run");
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        run.core_cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    progress_clear(&c);
    st_log_set_hook(NULL, NULL, NULL);

    /* the orphan checks' verdicts go into orphan_classifications.json */
    for (size_t i = 0; cache && i < run.n_checks; i++) {
        const st_batch *ck = &run.checks[i];
        if (!ck->done || ck->aborted)
            continue;
        if (ck->unmet)
            st_orphans_mark_unmet(cache, ck->path, ck->reason);
        else
            st_orphans_mark(cache, ck->path, ck->ok, ck->reason);
    }

    /* integrate */
    if (!run.aborted)
        integrate_stage(p, &run);
    if (cache && s->clean_orphans) {
        /* integrated in this cycle, or in an earlier one (listed in module_map.json) */
        st_strv integrated_ever = {0};
        for (size_t i = 0; i < run.integrated.n; i++)
            st_strv_push(&integrated_ever, run.integrated.v[i]);
        for (size_t i = 0; i < rules.known.n; i++)
            if (!st_strv_contains(&integrated_ever, rules.known.v[i]))
                st_strv_push(&integrated_ever, rules.known.v[i]);
        size_t removed = integrated_ever.n ? st_orphans_remove_integrated(cache, st_strv_get(&integrated_ever)) : 0;
        st_info("--clean-orphans: %zu entries removed from orphan_modules.json", removed);
        st_strv_free(&integrated_ever);
    }
    counters->orphans_reintroduced += run.integrated.n;
    /* An aborted cycle's status is the one the process exits with (o->aborted_status), so that
     * the results, metrics.db and the exit status agree. */
    run.exit_status = st_run_exit_status(&run, s->fail_on_orphans, o->aborted_status);
    if (run.aborted)
        st_warn("the run was stopped by a signal; its results are marked aborted and no failure "
                "report is written");

    /* export: the core's stores first, then the exporter plugins; neither fails the run. */
    results_json = st_run_to_json(&run, 0);
    if (st_metricsdb_store(p->db, &run, results_json) < 0)
        st_warn("export stage: the run was not stored in the metrics DB");
    if (s->history_file)
        st_history_append(s->history_file, &run);
    export_end(&p->ps, &run, results_json, counters);
    if (o->json) {
        if (results_json)
            fputs(results_json, stdout);
    } else {
        st_run_print_summary(&run, stdout, o->color);
        if (p->fell_back)
            printf("NOTE: the container engine was not available; this run used the HOST "
                   "runtime (container_fallback = \"host\")\n");
    }
    fflush(stdout);
    if (run.exit_status != 0 && !run.aborted)
        write_report(s, &run);
    status = run.exit_status;
out:
    st_log_set_hook(NULL, NULL, NULL);
    if (cache) {
        if (save_cache)
            st_orphans_save(cache);
        st_orphans_free(cache);
    }
    if (checks && save_cache)
        st_checkcache_save(checks);
    st_checkcache_free(&checks_store);
    st_orphan_rules_free(&rules);
    st_project_ctx_reset(&p->ps.project); /* the next cycle sees the tree as it is then */
    st_lock_release(lock_fd);
    if (work) {
        st_rm_rf(work);
        free(work);
    }
    free(results_json);
    st_run_free(&run);
    st_preflight_free(&pf);
    st_strv_free(&paths);
    st_strv_free(&batches);
    st_strv_free(&explicit_modules);
    st_strv_free(&skipped_before);
    module_list_free(&modules);
    return status;
}

int st_pipeline_cleanup(st_settings *s, double max_age_s, st_counters *counters, int report,
                        int (*should_stop)(void))
{
    st_plugin_set ps = {0};
    int status = EXIT_INFRA;
    /* only the runtime: run-scheduled's exporters already hold their ports */
    if (st_plugins_load(s, &ps, 1) < 0) {
        status = EXIT_USAGE;
        goto out;
    }
    st_exit_stage stage;
    int start_rc = st_plugins_start(&ps, &stage);
    if (start_rc != ST_OK) {
        status = st_exit_for_status(stage, start_rc);
        goto out;
    }
    const st_runtime_ops *rt = ps.runtime->ops;
    if (!rt->cleanup_stale) {
        if (report)
            printf("%s keeps no containers: nothing to clean up\n", ps.runtime->name);
        status = EXIT_OK;
        goto out;
    }
    for (unsigned attempt = 0; attempt <= s->retries; attempt++) {
        st_cleanup_report rep = {.struct_size = sizeof(rep)};
        int rc = rt->cleanup_stale(ps.runtime->ctx, max_age_s, &rep);
        if (rc == ST_OK && rep.failed == 0) {
            if (report)
                printf("cleanup: %u listed, %u removed\n", rep.listed, rep.removed);
            else
                st_info("cleanup: %u listed, %u removed", rep.listed, rep.removed);
            status = EXIT_OK;
            break;
        }
        if (attempt == s->retries) {
            counters->container_failures += rep.failed ? rep.failed : 1;
            st_error("cleanup: %u listed, %u removed, %u failed (after %u attempts)", rep.listed,
                     rep.removed, rep.failed ? rep.failed : 1, attempt + 1);
            break;
        }
        /* the same capped backoff as the batches; a stop request ends the wait */
        double until = st_monotonic() + st_retry_delay(attempt + 1);
        int stopped = 0;
        while (!(stopped = should_stop && should_stop()) && st_monotonic() < until) {
            double left = until - st_monotonic();
            if (left > 0.05)
                left = 0.05;
            struct timespec ts = {0, (long)(left * 1e9)};
            nanosleep(&ts, NULL);
        }
        if (stopped) {
            counters->container_failures += rep.failed ? rep.failed : 1;
            st_error("cleanup: stopped by a signal before retrying (%u listed, %u removed, "
                     "%u failed after %u attempts)", rep.listed, rep.removed,
                     rep.failed ? rep.failed : 1, attempt + 1);
            break;
        }
    }
out:
    st_plugins_free(&ps);
    return status;
}

/* ---- discover ------------------------------------------------------------------------------ */

static int module_cmp(const void *a, const void *b)
{
    return strcmp(((const st_batch *)a)->path, ((const st_batch *)b)->path);
}

static const char *class_name(st_classification c)
{
    return c == ST_CLASS_LEGACY ? "legacy" : c == ST_CLASS_REDUNDANT ? "redundant" : "candidate";
}

/* --deps PATH...: every local module PATH reaches, with its importers inside that reach. */
static void gen_deps(yajl_gen g, const st_pygraph *pg, const st_strv *deps)
{
    st_jg_key(g, "deps");
    yajl_gen_map_open(g);
    size_t n = pg ? st_pygraph_count(pg) : 0;
    uint8_t *mark = calloc(n + 1, 1);
    for (size_t i = 0; mark && i < deps->n; i++) {
        st_jg_key(g, deps->v[i]);
        yajl_gen_array_open(g);
        uint32_t start = pg ? st_pygraph_find(pg, deps->v[i]) : ST_PYGRAPH_NONE;
        if (start != ST_PYGRAPH_NONE && st_pygraph_reach(pg, &start, 1, mark, NULL) >= 0) {
            for (uint32_t v = 0; v < n; v++) {
                if (!mark[v] || v == start)
                    continue;
                yajl_gen_map_open(g);
                st_jg_kstr(g, "path", st_pygraph_path(pg, v));
                st_jg_key(g, "parents");
                yajl_gen_array_open(g);
                const uint32_t *ids;
                size_t k = st_pygraph_rdeps(pg, v, &ids);
                for (size_t j = 0; j < k; j++)
                    if (mark[ids[j]])
                        st_jg_str(g, st_pygraph_path(pg, ids[j]));
                yajl_gen_array_close(g);
                yajl_gen_map_close(g);
            }
        }
        yajl_gen_array_close(g);
    }
    free(mark);
    yajl_gen_map_close(g);
}

int st_pipeline_discover(st_pipeline *p, int json, const st_strv *deps)
{
    st_settings *s = p->s;
    st_strv paths = {0}, batches = {0}, unused = {0}, excluded = {0};
    module_list modules = {0};
    st_orphan_cache cache_store, *cache = NULL;
    st_orphan_rules rules = {0};
    int status = EXIT_INFRA, lock_fd = -1;
    st_preflight pf = {0};
    int rc = 0;
    if (!s->paths.n) {
        /* the default paths come from pytest's configuration: ask it, as a run would */
        const char *tmp = st_tmpdir();
        char *work = st_asprintf("%s/selftest-%ld-XXXXXX", tmp, (long)getpid());
        if (!work || !mkdtemp(work)) {
            st_error("cannot create a work directory under %s: %s", tmp, strerror(errno));
            free(work);
            goto out;
        }
        if (preflight_stage(p, work, &pf) != 0) {
            st_warn("discover: pytest was not asked for the project's testpaths; test paths: "
                    "tests/ if it exists, else the project root");
            st_preflight_free(&pf);
            memset(&pf, 0, sizeof(pf));
        }
        st_rm_rf(work);
        free(work);
    }
    rc = resolve_paths(s, &pf, &paths, &unused);
    if (rc) {
        status = rc;
        goto out;
    }
    for (size_t i = 0; i < deps->n; i++) {
        if (!st_path_is_safe_relative(s->project_root, deps->v[i])) {
            st_error("--deps '%s': not a repo-relative path inside the project root", deps->v[i]);
            status = EXIT_USAGE;
            goto out;
        }
    }
    lock_fd = st_lock_acquire(s->lock_file, s->lock_timeout_s);
    if (lock_fd < 0)
        goto out;
    if (!s->disable_orphans) {
        if (st_orphans_load(&cache_store, s->project_root, s->data_dir) < 0) {
            st_orphans_free(&cache_store);
            goto out;
        }
        cache = &cache_store;
        if (s->refresh_orphans)
            st_orphans_clear(cache);
        if (st_orphan_rules_init(&rules, s->project_root, s->data_dir, &paths, &s->orphan_exclude,
                                 exclude_is_default(s)) < 0)
            goto out;
    }
    int saved_include = s->include_orphans;
    s->include_orphans = 0; /* list what this scan finds, not the cache */
    rc = discover(s, &p->ps, &paths, &batches, &modules, cache, cache ? &rules : NULL,
                  &excluded);
    s->include_orphans = saved_include;
    if (rc < 0)
        goto out;
    if (modules.n > 1) /* qsort(NULL, 0, ...) is undefined */
        qsort(modules.v, modules.n, sizeof(*modules.v), module_cmp);
    if (json) {
        yajl_gen g = st_jg_new(0);
        if (!g)
            goto out;
        yajl_gen_map_open(g);
        st_jg_key(g, "batches");
        yajl_gen_array_open(g);
        for (size_t i = 0; i < batches.n; i++)
            st_jg_str(g, batches.v[i]);
        yajl_gen_array_close(g);
        st_jg_key(g, "modules");
        yajl_gen_array_open(g);
        for (size_t i = 0; i < modules.n; i++) {
            const st_batch *m = &modules.v[i];
            yajl_gen_map_open(g);
            st_jg_kstr(g, "path", m->path);
            st_jg_kstr(g, "origin", m->origin == ST_ORIGIN_ISOLATED ? "isolated" : "orphan");
            st_jg_key(g, "parents");
            yajl_gen_array_open(g);
            for (size_t k = 0; k < m->parents.n; k++)
                st_jg_str(g, m->parents.v[k]);
            yajl_gen_array_close(g);
            st_jg_kstr(g, "classification", class_name(m->classification));
            st_jg_kstr(g, "reason", m->class_reason);
            st_jg_kstr(g, "duplicate_of", m->duplicate_of);
            yajl_gen_map_close(g);
        }
        yajl_gen_array_close(g);
        for (int o = ST_ORIGIN_ORPHAN; o <= ST_ORIGIN_ISOLATED; o++) {
            st_jg_key(g, o == ST_ORIGIN_ORPHAN ? "orphans" : "isolated");
            yajl_gen_array_open(g);
            for (size_t i = 0; i < modules.n; i++)
                if ((int)modules.v[i].origin == o)
                    st_jg_str(g, modules.v[i].path);
            yajl_gen_array_close(g);
        }
        /* the files that are never orphans, with the rule of each */
        st_jg_key(g, "excluded");
        yajl_gen_map_open(g);
        for (size_t i = 0; i < excluded.n; i++) {
            char *tab = strchr(excluded.v[i], '\t');
            *tab = '\0';
            st_jg_kstr(g, excluded.v[i], tab + 1);
            *tab = '\t';
        }
        yajl_gen_map_close(g);
        if (deps->n)
            gen_deps(g, st_project_graph(&p->ps.project), deps);
        yajl_gen_map_close(g);
        char *text = st_jg_finish(g, 1);
        if (text)
            fputs(text, stdout);
        free(text);
    } else {
        printf("%zu test batch%s:", batches.n, batches.n == 1 ? "" : "es");
        for (size_t i = 0; i < batches.n; i++)
            printf(" %s", batches.v[i]);
        printf("\n");
        for (size_t i = 0; i < modules.n; i++) {
            const st_batch *m = &modules.v[i];
            printf("%-9s %-10s %s", m->origin == ST_ORIGIN_ISOLATED ? "isolated" : "orphan",
                   class_name(m->classification), m->path);
            for (size_t k = 0; k < m->parents.n; k++)
                printf("%s%s", k ? ", " : "  (imported by ", m->parents.v[k]);
            printf("%s\n", m->parents.n ? ")" : "");
            if (m->classification != ST_CLASS_CANDIDATE && m->class_reason)
                printf("          %s\n", m->class_reason);
        }
        if (!modules.n)
            printf("no orphan or isolated modules\n");
        if (st_log_get_level() >= ST_LOG_INFO)
            for (size_t i = 0; i < excluded.n; i++) {
                const char *tab = strchr(excluded.v[i], '\t');
                printf("%-9s %-10s %.*s  (%s)\n", "excluded", "never", (int)(tab - excluded.v[i]),
                       excluded.v[i], tab + 1);
            }
        const st_pygraph *pg = deps->n ? st_project_graph(&p->ps.project) : NULL;
        size_t n = pg ? st_pygraph_count(pg) : 0;
        uint8_t *mark = calloc(n + 1, 1);
        for (size_t i = 0; mark && i < deps->n; i++) {
            uint32_t start = pg ? st_pygraph_find(pg, deps->v[i]) : ST_PYGRAPH_NONE;
            printf("%s depends on:%s\n", deps->v[i],
                   start == ST_PYGRAPH_NONE ? " (not a module of the project)" : "");
            if (start == ST_PYGRAPH_NONE || st_pygraph_reach(pg, &start, 1, mark, NULL) < 0)
                continue;
            for (uint32_t v = 0; v < n; v++)
                if (mark[v] && v != start)
                    printf("  %s\n", st_pygraph_path(pg, v));
        }
        free(mark);
    }
    status = EXIT_OK;
out:
    if (cache) {
        st_orphans_save(cache);
        st_orphans_free(cache);
    }
    st_orphan_rules_free(&rules);
    st_project_ctx_reset(&p->ps.project);
    st_lock_release(lock_fd);
    st_preflight_free(&pf);
    st_strv_free(&paths);
    st_strv_free(&batches);
    st_strv_free(&unused);
    st_strv_free(&excluded);
    module_list_free(&modules);
    return status;
}
