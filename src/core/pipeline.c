/* One cycle of the pipeline: discover -> run -> classify -> integrate -> export (spec §3). */
#include "config.h"

#include "pipeline.h"

#include "host.h"
#include "json.h"
#include "loader.h"
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
#include <unistd.h>

#define EXIT_OK 0
#define EXIT_TESTS_FAILED 1
#define EXIT_USAGE 2
#define EXIT_INFRA 3

typedef struct plugin_set {
    st_loader *ld;
    st_instance *runtime;
    st_instance **list; /* every instance, runtime first, in config order */
    size_t n;
    st_project_info project;
} plugin_set;

static st_plugin_kind kind_from_name(const char *kind)
{
    if (strcmp(kind, "runtime") == 0)
        return ST_KIND_RUNTIME;
    if (strcmp(kind, "discovery") == 0)
        return ST_KIND_DISCOVERY;
    if (strcmp(kind, "integrator") == 0)
        return ST_KIND_INTEGRATOR;
    return ST_KIND_EXPORTER;
}

static int set_add(plugin_set *ps, st_instance *inst)
{
    st_instance **grown = realloc(ps->list, (ps->n + 1) * sizeof(*grown));
    if (!grown)
        return -1;
    ps->list = grown;
    ps->list[ps->n++] = inst;
    return 0;
}

/* Loads the runtime and every configured plugin (checks only; nothing is created). */
static int load_plugins(st_settings *s, plugin_set *ps)
{
    ps->project = (st_project_info){
        .struct_size = sizeof(st_project_info),
        .root = s->project_root,
        .data_dir = s->data_dir,
        .report_dir = s->report_dir,
        .skip_dirs = st_strv_get(&s->skip_dirs),
        .python = s->python,
    };
    if (st_loader_new(&s->plugin_path, &ps->ld) < 0)
        return -1;
    char *rt_name = st_asprintf("runtime-%s", s->runtime);
    char *where = st_asprintf("runtime \"%s\"%s%s", s->runtime, s->config_path ? " in " : "",
                              s->config_path ? s->config_path : "");
    int rc = -1;
    if (!rt_name || !where)
        goto out;
    if (st_loader_load(ps->ld, rt_name, ST_KIND_RUNTIME, where, &ps->runtime) < 0)
        goto out;
    ps->runtime->config = s->runtime_settings;
    ps->runtime->project = &ps->project;
    if (set_add(ps, ps->runtime) < 0)
        goto out;
    for (size_t i = 0; i < s->n_plugins; i++) {
        st_plugin_conf *pc = &s->plugins[i];
        st_instance *inst;
        if (strcmp(pc->kind, "runtime") == 0) {
            st_error("%s: runtimes are chosen with the top-level setting runtime = \"...\"; "
                     "do not list them in plugins",
                     pc->where);
            goto out;
        }
        if (st_loader_load(ps->ld, pc->name, kind_from_name(pc->kind), pc->where, &inst) < 0)
            goto out;
        for (size_t k = 0; k < ps->n; k++) {
            if (ps->list[k]->desc == inst->desc &&
                !(inst->desc->flags & ST_PLUGIN_MULTI_INSTANCE)) {
                st_error("%s: plugin '%s' is listed twice but does not support several instances",
                         pc->where, pc->name);
                goto out;
            }
        }
        inst->config = pc->settings;
        inst->project = &ps->project;
        if (set_add(ps, inst) < 0)
            goto out;
    }
    rc = 0;
out:
    free(rt_name);
    free(where);
    return rc;
}

static void free_plugins(plugin_set *ps)
{
    st_loader_free(ps->ld);
    free(ps->list);
    memset(ps, 0, sizeof(*ps));
}

/* Creates every plugin before starting any. The runtime's failure is fatal; another plugin's
 * failure is reported and that plugin is left out of the cycle. */
static int create_and_start(plugin_set *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        if (st_inst_create(ps->list[i]) != ST_OK && ps->list[i] == ps->runtime)
            return -1;
    }
    for (size_t i = 0; i < ps->n; i++) {
        st_instance *inst = ps->list[i];
        if (!inst->created)
            continue;
        if (st_inst_start(inst) != ST_OK) {
            if (inst == ps->runtime)
                return -1;
            st_warn("%s: left out of this run", inst->name);
        }
    }
    return 0;
}

static int usable(const st_instance *inst, st_plugin_kind kind)
{
    return inst->desc->kind == kind && inst->started && !inst->failed;
}

int st_pipeline_list_plugins(st_settings *s, int json)
{
    plugin_set ps = {0};
    int rc = EXIT_INFRA;
    if (load_plugins(s, &ps) < 0)
        goto out;
    yajl_gen g = json ? st_jg_new(0) : NULL;
    if (g)
        yajl_gen_array_open(g);
    else
        printf("%-11s %-24s %-9s %-5s %s\n", "KIND", "NAME", "VERSION", "ABI", "FILE");
    for (size_t i = 0; i < ps.n; i++) {
        const st_instance *inst = ps.list[i];
        const st_plugin_descriptor *d = inst->desc;
        if (g) {
            yajl_gen_map_open(g);
            st_jg_kstr(g, "kind", st_kind_name(d->kind));
            st_jg_kstr(g, "name", d->name);
            st_jg_kstr(g, "version", d->version);
            st_jg_kint(g, "abi_major", d->abi_major);
            st_jg_kint(g, "abi_minor", d->abi_minor);
            st_jg_kstr(g, "file", inst->file);
            st_jg_kstr(g, "description", d->description);
            yajl_gen_map_close(g);
        } else {
            char abi[32];
            snprintf(abi, sizeof(abi), "%u.%u", d->abi_major, d->abi_minor);
            printf("%-11s %-24s %-9s %-5s %s\n", st_kind_name(d->kind), d->name,
                   d->version ? d->version : "?", abi, inst->file);
        }
    }
    if (g) {
        yajl_gen_array_close(g);
        char *text = st_jg_finish(g, 1);
        if (text)
            fputs(text, stdout);
        free(text);
    }
    rc = EXIT_OK;
out:
    free_plugins(&ps);
    return rc;
}

/* ---- test paths ----------------------------------------------------------------------------- */

/* Turns the configured or given paths into repo-relative batch paths; exit status or 0. */
static int resolve_paths(const st_settings *s, st_strv *out)
{
    st_strv given = {0};
    for (size_t i = 0; i < s->paths.n; i++)
        st_strv_push(&given, s->paths.v[i]);
    int from_cli = s->paths_from_cli;
    if (given.n == 0) {
        char *tests = st_path_join(s->project_root, "tests");
        struct stat st;
        st_strv_push(&given, tests && stat(tests, &st) == 0 && S_ISDIR(st.st_mode) ? "tests" : ".");
        free(tests);
        from_cli = 0;
    }
    int rc = 0;
    char real_root[PATH_MAX];
    if (!realpath(s->project_root, real_root)) {
        st_error("project root %s: %s", s->project_root, strerror(errno));
        st_strv_free(&given);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < given.n && rc == 0; i++) {
        const char *p = given.v[i];
        char *abs = st_path_absolute(from_cli ? NULL : s->project_root, p);
        char real[PATH_MAX];
        char *rel = NULL;
        if (!abs) {
            rc = EXIT_INFRA;
        } else if (!realpath(abs, real)) {
            st_error("test path '%s'%s: %s", p, from_cli ? "" : " (from the config's paths)",
                     errno == ENOENT ? "no such file or directory" : strerror(errno));
            rc = EXIT_USAGE;
        } else if (!(rel = st_path_relative_to(real_root, real))) {
            st_error("test path '%s' is outside the project root %s", p, s->project_root);
            rc = EXIT_USAGE;
        } else if (!st_strv_contains(out, rel)) {
            st_strv_push(out, rel);
        }
        free(rel);
        free(abs);
    }
    st_strv_free(&given);
    return rc;
}

/* ---- discovery ------------------------------------------------------------------------------ */

typedef struct discovery_ctx {
    const st_settings *s;
    st_strv *batches;
    const char *plugin;
    int bad;
} discovery_ctx;

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
    return ST_OK; /* orphan checks consume these (spec §8) */
}

static int discover(const st_settings *s, plugin_set *ps, const st_strv *paths, st_strv *batches)
{
    int any = 0;
    for (size_t i = 0; i < ps->n; i++) {
        st_instance *inst = ps->list[i];
        if (!usable(inst, ST_KIND_DISCOVERY))
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
        discovery_ctx dc = {s, batches, inst->name, 0};
        st_discovery_sink sink = {sizeof(sink), &dc, sink_add_batch, sink_add_module};
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
    return batches->oom ? -1 : 0;
}

/* ---- progress and streaming ------------------------------------------------------------------ */

typedef struct cycle {
    const st_settings *s;
    const st_pipeline_opts *o;
    plugin_set *ps;
    st_counts cumulative;
    size_t done;
    double t0;
    int progress_shown;
    pthread_mutex_t out_lock;
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

static void progress_draw(cycle *c, const st_run *run, size_t running)
{
    if (!c->o->progress)
        return;
    printf("\r\033[K[%zu/%zu batches, %zu running] %u passed, %u failed  %.1fs", c->done,
           run->n_batches, running, st_counts_passed(&c->cumulative),
           st_counts_failed(&c->cumulative), st_monotonic() - c->t0);
    fflush(stdout);
    c->progress_shown = 1;
}

static void on_batch_done(void *opaque, st_run *run, st_batch *b)
{
    cycle *c = opaque;
    c->done++;
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
        .kind = ST_RECORD_BATCH,
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
        if (!usable(inst, ST_KIND_EXPORTER) || !ops->record)
            continue;
        st_inst_lock(inst);
        ops->record(inst->ctx, &rec);
        st_inst_unlock(inst);
    }
    st_info("%s: %s (%u passed, %u failed, %.2fs)", b->path, b->ok ? "ok" : "FAILED",
            st_counts_passed(&b->counts), st_counts_failed(&b->counts), b->runtime_s);
    progress_draw(c, run, 0);
}

static void on_tick(void *opaque, st_run *run, size_t done, size_t running)
{
    cycle *c = opaque;
    (void)done;
    progress_draw(c, run, running);
}

static int on_should_stop(void *opaque)
{
    cycle *c = opaque;
    return c->o->should_stop && c->o->should_stop();
}

/* ---- export ---------------------------------------------------------------------------------- */

static void export_begin(plugin_set *ps, const st_run *run)
{
    st_run_info info = {sizeof(info), run->run_id, run->started_at, (unsigned)run->n_batches,
                        run->runtime_used};
    for (size_t i = 0; i < ps->n; i++) {
        st_instance *inst = ps->list[i];
        const st_exporter_ops *ops = inst->ops;
        if (!usable(inst, ST_KIND_EXPORTER) || !ops->begin_run)
            continue;
        st_inst_lock(inst);
        if (ops->begin_run(inst->ctx, &info) != ST_OK)
            st_warn("export stage: %s: begin_run failed; the run goes on", inst->name);
        st_inst_unlock(inst);
    }
}

static void export_end(plugin_set *ps, const st_run *run, const char *results_json)
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
        .success = run->exit_status == 0,
        .aborted = run->aborted,
        .runtime_name = run->runtime_used,
        .runs_total = 1,
        .results_json = results_json,
    };
    for (size_t i = 0; i < ps->n; i++) {
        st_instance *inst = ps->list[i];
        const st_exporter_ops *ops = inst->ops;
        if (!usable(inst, ST_KIND_EXPORTER))
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

/* ---- the cycle ------------------------------------------------------------------------------- */

int st_pipeline_run(st_settings *s, const st_pipeline_opts *o)
{
    plugin_set ps = {0};
    st_strv paths = {0}, batches = {0};
    st_run run = {0};
    char *work = NULL;
    int status = EXIT_INFRA;
    cycle c = {.s = s, .o = o, .ps = &ps, .t0 = st_monotonic()};
    pthread_mutex_init(&c.out_lock, NULL);

    int rc = resolve_paths(s, &paths);
    if (rc) {
        status = rc;
        goto out;
    }
    char *plugin_file = st_path_join(s->support_dir, "selftest_pytest_plugin.py");
    if (!plugin_file || access(plugin_file, R_OK) != 0) {
        st_error("the bundled pytest plugin %s is missing (set SELF_TEST_SUPPORT_DIR or "
                 "'support_dir' to the directory holding selftest_pytest_plugin.py)",
                 plugin_file ? plugin_file : s->support_dir);
        free(plugin_file);
        goto out;
    }
    free(plugin_file);
    if (load_plugins(s, &ps) < 0) {
        status = EXIT_USAGE;
        goto out;
    }
    if (create_and_start(&ps) < 0)
        goto out;
    if (o->progress)
        st_log_set_hook(progress_clear, NULL, &c);

    /* discover */
    if (discover(s, &ps, &paths, &batches) < 0)
        goto out;
    if (batches.n == 0) {
        st_error("discover stage: no test batches (no test paths)");
        status = EXIT_USAGE;
        goto out;
    }

    /* run */
    const st_runtime_ops *rt = ps.runtime->ops;
    if (rt->probe && rt->probe(ps.runtime->ctx) != ST_OK) {
        st_error("run stage: %s is not available", ps.runtime->name);
        goto out;
    }
    if (rt->prepare && rt->prepare(ps.runtime->ctx) != ST_OK) {
        st_error("run stage: %s could not prepare its environment", ps.runtime->name);
        goto out;
    }
    const char *tmp = getenv("TMPDIR");
    work = st_asprintf("%s/selftest-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!work || !mkdtemp(work)) {
        st_error("cannot create a work directory under %s: %s", tmp && *tmp ? tmp : "/tmp",
                 strerror(errno));
        free(work);
        work = NULL;
        goto out;
    }
    st_preflight pf;
    if (st_preflight_run(s, ps.runtime, work, &pf) < 0)
        goto out;
    if (s->coverage && !pf.cov)
        st_warn("coverage requested but pytest-cov is not installed for %s: coverage is reported "
                "as unavailable (Debian: apt-get install python3-pytest-cov)",
                s->python);

    run.run_id = new_run_id();
    run.started_at = st_wall_clock();
    run.runtime_used = rt->runtime_name ? rt->runtime_name : s->runtime;
    run.coverage_requested = s->coverage && pf.cov;
    run.n_batches = batches.n;
    run.batches = calloc(batches.n, sizeof(*run.batches));
    if (!run.run_id || !run.batches)
        goto out;
    for (size_t i = 0; i < batches.n; i++) {
        st_batch *b = &run.batches[i];
        b->id = st_asprintf("batch-%zu", i);
        b->path = st_strdup(batches.v[i]);
        b->output_dir = st_asprintf("%s/%s", work, b->id);
        b->coverage = -1;
        b->exit_status = -1;
        if (!b->id || !b->path || !b->output_dir || st_mkdir_p(b->output_dir, 0755) < 0)
            goto out;
    }
    export_begin(&ps, &run);
    double t_run = st_monotonic();
    st_runner_hooks hooks = {&c, on_batch_done, on_tick, on_should_stop};
    if (st_runner_run(s, ps.runtime, &pf, &run, &hooks) < 0)
        goto out;
    run.total_runtime_s = st_monotonic() - t_run;
    run.finished_at = st_wall_clock();
    for (size_t i = 0; i < run.n_batches; i++) {
        st_batch *b = &run.batches[i];
        if (!b->done && !b->reason)
            b->reason = st_strdup("not run: the run was stopped");
    }

    /* classify: verdicts are per batch (st_batch_verdict); comparisons with the previous run
     * need the metrics DB. integrate: no orphan checks yet. */
    st_run_finalize(&run);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        run.core_cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    progress_clear(&c);
    st_log_set_hook(NULL, NULL, NULL);

    /* export */
    char *results_json = st_run_to_json(&run, 0);
    export_end(&ps, &run, results_json);
    if (o->json) {
        if (results_json)
            fputs(results_json, stdout);
    } else {
        st_run_print_summary(&run, stdout, o->color);
    }
    fflush(stdout);
    free(results_json);
    if (run.exit_status != 0)
        write_report(s, &run);
    status = run.exit_status;
    if (run.aborted)
        status = EXIT_INFRA;
out:
    st_log_set_hook(NULL, NULL, NULL);
    if (work) {
        st_rm_rf(work);
        free(work);
    }
    st_run_free(&run);
    free_plugins(&ps);
    st_strv_free(&paths);
    st_strv_free(&batches);
    pthread_mutex_destroy(&c.out_lock);
    return status;
}
