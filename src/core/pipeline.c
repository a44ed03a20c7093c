/* SPDX-License-Identifier: MIT */
/* The cycle driver (docs/spec.md §3): opens the pipeline, runs a cycle's stages in order
 * (discover, run, classify, integrate, export) and closes it; the run stage and `cleanup` live
 * here. The other stages are in pipeline_discover.c, pipeline_progress.c, pipeline_integrate.c
 * and pipeline_export.c (pipeline_stages.h). */
#include "config.h"

#include "pipeline_stages.h"

#include "exitstatus.h"
#include "changed.h"
#include "checkcache.h"
#include "plugin_services.h"
#include "json.h"
#include "history.h"
#include "junit.h"
#include "lock.h"
#include "metricsdb.h"
#include "orphans.h"
#include "preflightcache.h"
#include "pygraph.h"
#include "plugins.h"
#include "log.h"
#include "results.h"
#include "runner.h"
#include "shards.h"
#include "testdeps.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *new_run_id(void)
{
    char hex[33];
    st_random_hex(hex, 32);
    return st_strdup(hex);
}

/* ---- open, cycle, close ---------------------------------------------------------------------- */

int st_pipeline_open(st_settings *s, st_pipeline **out)
{
    st_pipeline *p = calloc(1, sizeof(*p));
    if (!p)
        return ST_ERR_NOMEM;
    p->s = s;
    char *plugin_file = st_path_join(s->support_dir, "selftest_pytest_plugin.py");
    int status = ST_ERR_UNAVAILABLE;
    if (!plugin_file || access(plugin_file, R_OK) != 0) {
        st_error("the bundled pytest plugin %s is missing (set SELF_TEST_SUPPORT_DIR or "
                 "'support_dir' to the directory holding selftest_pytest_plugin.py)",
                 plugin_file ? plugin_file : s->support_dir);
        free(plugin_file);
        goto fail;
    }
    free(plugin_file);
    status = st_plugins_load(s, &p->ps, 0);
    if (status != ST_OK)
        goto fail;
    /* create()'s ST_ERR_INVALID from any plugin: its settings are wrong, exit 2 */
    status = st_plugins_start(&p->ps);
    if (status != ST_OK)
        goto fail;
    const st_runtime_ops *rt = p->ps.runtime->ops;
    p->ps.runtime->logged_error = 0;
    /* with a fallback, an unreachable engine is a warning (the fallback says what happens) */
    int can_fall_back = strcmp(s->runtime, "host") != 0 && strcmp(s->container_fallback, "host") == 0;
    p->ps.runtime->errors_as_warnings = can_fall_back;
    int probed = rt->probe ? rt->probe(p->ps.runtime->ctx) : ST_OK;
    p->ps.runtime->errors_as_warnings = 0;
    if (probed != ST_OK) {
        status = ST_ERR_UNAVAILABLE; /* whatever the probe said: the runtime is not there */
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
        status = st_plugins_switch_runtime(s, &p->ps, "host");
        if (status != ST_OK)
            goto fail;
        p->fell_back = 1;
    }
    *out = p;
    return ST_OK;
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
 * stands (cached). The checks to run come first; *n_run gets their count. Returns ST_OK or a
 * negative st_status. */
static int plan_checks(const st_settings *s, st_run *run, st_module_list *modules,
                       const char *work, st_check_cache *cc, st_project_ctx *project,
                       const char *interpreter, size_t *n_run)
{
    run->checks = calloc(modules->n + 1, sizeof(*run->checks));
    if (!run->checks)
        return ST_ERR_NOMEM;
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
        c->module = st_module_name(s, c->path);
        if (!c->id || !c->output_dir || st_mkdir_p(c->output_dir, 0755) < 0) {
            st_check_hasher_free(&hasher);
            return ST_ERR_IO;
        }
        if (!cc || c->origin == ST_ORIGIN_EXPLICIT)
            continue; /* a module named on the command line is always checked */
        if (!hashing) { /* the graph is built only when a key is needed */
            hashing = 1;
            if (st_check_hasher_init(&hasher, st_project_graph(project), s->project_root) < 0) {
                st_check_hasher_free(&hasher);
                return ST_ERR_IO;
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
        return ST_ERR_NOMEM;
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
    return run->orphan_skipped.oom ? ST_ERR_NOMEM : ST_OK;
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

/* pytest's pythonpath ini option as the import roots when no pythonpath setting is given */
static int adopt_pythonpath(st_pipeline *p, const st_preflight *pf)
{
    int rc = ST_OK;
    if (pf->config_asked && !pf->config_error)
        rc = st_settings_adopt_pytest_pythonpath(p->s, &pf->pythonpath, pf->inipath);
    p->ps.project.source_roots = st_strv_get(&p->s->pythonpath_rel);
    return rc;
}

/* Prepares the runtime and runs the preflight through it (which, without configured or given
 * test paths, also reads pytest's testpaths). Returns ST_OK or a negative st_status (never
 * ST_ERR_INVALID: the runtime's settings were accepted); free pf either way. */
int st_preflight_stage(st_pipeline *p, const char *work, st_preflight *pf)
{
    const st_runtime_ops *rt = p->ps.runtime->ops;
    memset(pf, 0, sizeof(*pf));
    if (rt->prepare && rt->prepare(p->ps.runtime->ctx) != ST_OK) {
        st_error("run stage: %s could not prepare its environment", p->ps.runtime->name);
        return ST_ERR_UNAVAILABLE;
    }
    /* the answer of an earlier run with the same interpreter (or image) and configuration,
     * asked without the import roots an earlier cycle adopted from pytest's pythonpath */
    st_settings *s = p->s;
    if (st_settings_adopt_pytest_pythonpath(s, NULL, NULL) < 0)
        return ST_ERR_NOMEM;
    p->ps.project.source_roots = st_strv_get(&s->pythonpath_rel);
    int config_asked = s->paths.n == 0;
    char *identity = st_pfcache_identity(s, p->ps.runtime, config_asked, st_preflight_code());
    char *line = NULL;
    if (identity && st_pfcache_lookup(s->data_dir, identity, &line) == 1) {
        pf->config_asked = config_asked;
        if (st_preflight_answer(s, line, pf) == ST_OK) {
            pf->cached = 1;
            st_debug("preflight: the cached answer for %s is used", s->python);
            free(line);
            free(identity);
            return adopt_pythonpath(p, pf);
        }
        st_preflight_free(pf); /* not usable after all: asked again */
        memset(pf, 0, sizeof(*pf));
    }
    free(line);
    int rc = st_preflight_run(s, p->ps.runtime, work, pf);
    if (rc != ST_OK) {
        free(identity);
        return rc;
    }
    if (identity && pf->answer) {
        int host = strncmp(identity, "host ", 5) == 0;
        st_pfcache_store(s, identity, pf->answer, host ? &pf->sys_path : NULL, pf->inipath,
                         pf->config_asked && !pf->config_error ? &pf->testpaths : NULL);
    }
    free(identity);
    return adopt_pythonpath(p, pf);
}

/* ---- shards ---------------------------------------------------------------------------------- */

/* The shard count configured for a batch path: its paths entry's, else the global one. */
static int shard_spec(const st_settings *s, const char *path)
{
    for (size_t i = 0; !s->shards_option && s->path_shards && i < s->path_shard_names.n; i++) {
        const char *n = s->path_shard_names.v[i];
        while (n[0] == '.' && n[1] == '/')
            n += 2;
        size_t len = strlen(n);
        while (len > 1 && n[len - 1] == '/')
            len--;
        if (s->path_shards[i] != ST_SHARDS_UNSET &&
            ((strncmp(n, path, len) == 0 && path[len] == '\0') ||
             (len == 0 && strcmp(path, ".") == 0)))
            return s->path_shards[i];
    }
    return s->shards;
}

/* The test files of batch b (repo-relative, sorted): the change-aware selection, else the
 * import graph's test files (test_*.py, *_test.py) under its path. */
static int batch_test_files(st_pipeline *p, const st_batch *b, st_strv *out)
{
    if (b->select.n) {
        for (size_t i = 0; i < b->select.n; i++)
            st_strv_push(out, b->select.v[i]);
        return out->oom ? ST_ERR_NOMEM : ST_OK;
    }
    const st_pygraph *g = st_project_graph(&p->ps.project);
    if (!g)
        return 0;
    size_t plen = strcmp(b->path, ".") == 0 ? 0 : strlen(b->path);
    for (uint32_t n = 0; n < st_pygraph_count(g); n++) {
        const char *f = st_pygraph_path(g, n);
        if (!st_pygraph_is_test(g, n) || st_pygraph_is_conftest(g, n))
            continue;
        if (plen && !(strncmp(f, b->path, plen) == 0 && (f[plen] == '/' || f[plen] == '\0')))
            continue;
        st_strv_push(out, f);
    }
    return out->oom ? ST_ERR_NOMEM : ST_OK;
}

typedef struct exec_plan {
    st_batch *items;   /* what the runner runs: unsplit batches and shards */
    size_t *owner;     /* items[k] belongs to run->batches[owner[k]] */
    size_t n, cap;
    int any_shards;
} exec_plan;

static int plan_push(exec_plan *ep, const st_batch *b, size_t owner)
{
    if (ep->n == ep->cap) {
        size_t nc = ep->cap ? 2 * ep->cap : 16;
        st_batch *it = realloc(ep->items, nc * sizeof(*it));
        if (!it)
            return ST_ERR_NOMEM;
        ep->items = it;
        size_t *ow = realloc(ep->owner, nc * sizeof(*ow));
        if (!ow)
            return ST_ERR_NOMEM;
        ep->owner = ow;
        ep->cap = nc;
    }
    ep->items[ep->n] = *b;
    ep->owner[ep->n++] = owner;
    return 0;
}

/* A file heavier than this many times a shard's fair share is split by test: one item that
 * big would set the wall time of the whole path. */
#define SPLIT_FILE_FACTOR 1.25

/* What the shards are made of: a whole test file, or one recorded test of a split file. */
typedef struct shard_item {
    size_t file;  /* index into the path's files */
    long test;    /* index into the recorded tests, -1: the whole file */
    double w;
} shard_item;

/* SELF_TEST_SHARD_FILTER of shard sh: for each split file it holds, the tests it keeps, or in
 * the file's home shard (where tests not recorded run) the tests the others run. NULL when
 * it holds no split file. */
static char *shard_filter_json(const st_strv *files, const st_strv *ids, const shard_item *it,
                               size_t n_items, const unsigned *slot, const unsigned *home,
                               const int *split, unsigned sh)
{
    int any = 0;
    for (size_t f = 0; f < files->n && !any; f++) {
        any = split[f] && home[f] == sh;
        for (size_t j = 0; split[f] && j < n_items && !any; j++)
            any = it[j].file == f && slot[j] == sh;
    }
    if (!any)
        return NULL;
    yajl_gen g = st_jg_new(0);
    if (!g)
        return NULL;
    yajl_gen_map_open(g);
    for (int pass = 0; pass < 2; pass++) {
        st_jg_key(g, pass == 0 ? "keep" : "drop");
        yajl_gen_map_open(g);
        for (size_t f = 0; f < files->n; f++) {
            if (!split[f])
                continue;
            int mine = home[f] == sh;
            for (size_t j = 0; j < n_items && !mine; j++)
                mine = it[j].file == f && slot[j] == sh;
            /* keep: a non-home shard with tests of f; drop: f's home */
            if (!mine || (pass == 0) != (home[f] != sh))
                continue;
            st_jg_key(g, files->v[f]);
            yajl_gen_array_open(g);
            for (size_t j = 0; j < n_items; j++)
                if (it[j].file == f && it[j].test >= 0 &&
                    (pass == 0 ? slot[j] == sh : slot[j] != sh))
                    st_jg_str(g, ids->v[it[j].test]);
            yajl_gen_array_close(g);
        }
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
    return st_jg_finish(g, 0);
}

/* Splits batch i of run into shards (or takes it whole) onto ep. */
static int plan_batch(st_pipeline *p, st_run *run, size_t i, unsigned slots, exec_plan *ep)
{
    const st_settings *s = p->s;
    st_batch *b = &run->batches[i];
    int spec = shard_spec(s, b->path);
    b->expected_s = b->history_s;
    if (spec == 1 || b->select_first)
        return plan_push(ep, b, i);
    st_strv files = {0}, ids = {0}, tfiles = {0};
    double *td = NULL, *fw = NULL, *load = NULL;
    long *tfile = NULL;
    size_t *ntests = NULL;
    unsigned *slot = NULL, *home = NULL;
    int *known = NULL, *split = NULL;
    shard_item *it = NULL;
    int rc = ST_ERR_NOMEM;
    if (!b->select.n) {
        /* test files named otherwise are not in the import graph: shards would leave them out */
        char buf[64];
        const char *pf_file = st_pipeline_sets_python_files(s, buf, sizeof(buf));
        if (pf_file) {
            st_warn("%s: not split into shards: %s sets python_files, so its test files may "
                    "have other names than test_*.py and *_test.py; it runs as one batch",
                    b->path, pf_file);
            rc = plan_push(ep, b, i);
            goto out;
        }
    }
    if (batch_test_files(p, b, &files) < 0)
        goto out;
    if (files.n < 2) {
        rc = plan_push(ep, b, i);
        goto out;
    }
    if (p->db && st_metricsdb_test_durations(p->db, b->path, &ids, &tfiles, &td) < 0)
        st_warn("%s: cannot read the recorded durations of its tests; shards are balanced by "
                "file count", b->path);
    fw = calloc(files.n + 1, sizeof(*fw));
    known = calloc(files.n + 1, sizeof(*known));
    split = calloc(files.n + 1, sizeof(*split));
    home = calloc(files.n + 1, sizeof(*home));
    ntests = calloc(files.n + 1, sizeof(*ntests));
    tfile = calloc(ids.n + 1, sizeof(*tfile));
    if (!fw || !known || !split || !home || !ntests || !tfile)
        goto out;
    for (size_t t = 0; t < ids.n; t++) {
        tfile[t] = -1;
        for (size_t f = 0; f < files.n; f++)
            if (strcmp(tfiles.v[t], files.v[f]) == 0) {
                tfile[t] = (long)f;
                fw[f] += td[t];
                known[f] = 1;
                ntests[f]++;
                break;
            }
    }
    double known_sum = 0, total = 0;
    size_t n_known = 0;
    for (size_t f = 0; f < files.n; f++)
        if (known[f]) {
            known_sum += fw[f];
            n_known++;
        }
    /* a file without history (new) weighs what an average recorded one does; none recorded:
     * every file weighs the same (balanced by count) */
    double mean = n_known ? known_sum / (double)n_known : 1;
    for (size_t f = 0; f < files.n; f++) {
        if (!known[f])
            fw[f] = mean;
        total += fw[f];
    }
    unsigned k = spec == ST_SHARDS_AUTO
                     ? st_shards_auto(n_known ? total : -1, s->shard_seconds, files.n, slots)
                     : (unsigned)spec;
    /* a file much longer than a shard's share is split by test (when its tests are known) */
    double share = total / (k ? k : 1);
    size_t n_items = 0;
    for (size_t f = 0; f < files.n; f++) {
        split[f] = k > 1 && known[f] && ntests[f] >= 2 && fw[f] > SPLIT_FILE_FACTOR * share;
        n_items += split[f] ? ntests[f] : 1;
    }
    if (spec == ST_SHARDS_AUTO && n_items > files.n) /* auto: up to one shard per item */
        k = st_shards_auto(total, s->shard_seconds, n_items, slots);
    if (k > n_items)
        k = (unsigned)n_items;
    if (k <= 1) {
        rc = plan_push(ep, b, i);
        goto out;
    }
    it = calloc(n_items + 1, sizeof(*it));
    slot = calloc(n_items + 1, sizeof(*slot));
    load = calloc(k, sizeof(*load));
    double *w = calloc(n_items + 1, sizeof(*w));
    if (!it || !slot || !load || !w) {
        free(w);
        goto out;
    }
    size_t m = 0;
    for (size_t f = 0; f < files.n; f++) {
        if (!split[f]) {
            it[m++] = (shard_item){f, -1, fw[f]};
            continue;
        }
        for (size_t t = 0; t < ids.n; t++)
            if (tfile[t] == (long)f)
                it[m++] = (shard_item){f, (long)t, td[t]};
    }
    for (size_t j = 0; j < m; j++)
        w[j] = it[j].w;
    st_shards_assign(w, m, k, slot, load);
    free(w);
    /* a split file's home: the shard with most of it (its unrecorded tests run there) */
    for (size_t f = 0; f < files.n; f++) {
        if (!split[f])
            continue;
        double best = -1;
        for (unsigned sh = 0; sh < k; sh++) {
            double part = 0;
            for (size_t j = 0; j < m; j++)
                if (it[j].file == f && slot[j] == sh)
                    part += it[j].w;
            if (part > best) {
                best = part;
                home[f] = sh;
            }
        }
    }
    for (unsigned sh = 0; sh < k; sh++) {
        st_batch x = {0};
        x.kind = ST_EXEC_TESTS;
        x.id = st_asprintf("%s-s%u", b->id, sh + 1);
        x.path = st_strdup(b->path);
        x.output_dir = st_asprintf("%s-shard-%u", b->output_dir, sh + 1);
        x.coverage = -1;
        x.exit_status = -1;
        x.shard_index = sh + 1;
        x.shard_count = k;
        x.workers_rule = b->workers_rule;
        x.history_s = n_known ? load[sh] : -1;
        x.expected_s = x.history_s;
        x.history_tests = b->history_tests > 0 && total > 0
                              ? (long)ceil((double)b->history_tests * load[sh] / total)
                              : 0;
        if (b->workers_max && n_known)
            x.workers_max = st_workers_from_history(load[sh], x.history_tests);
        for (size_t f = 0; f < files.n; f++) {
            int here = split[f] && home[f] == sh;
            for (size_t j = 0; j < m && !here; j++)
                here = it[j].file == f && slot[j] == sh;
            if (here)
                st_strv_push(&x.select, files.v[f]);
        }
        x.shard_filter = shard_filter_json(&files, &ids, it, m, slot, home, split, sh);
        if (!x.id || !x.path || !x.output_dir || x.select.oom ||
            st_mkdir_p(x.output_dir, 0755) < 0 || plan_push(ep, &x, i) < 0) {
            st_batch_free(&x);
            goto out;
        }
    }
    ep->any_shards = 1;
    size_t n_split = 0;
    for (size_t f = 0; f < files.n; f++)
        n_split += split[f] != 0;
    st_info("%s: %u shards of %zu test files%s (%s)", b->path, k, files.n,
            n_split ? ", the longest split by test" : "",
            n_known ? "balanced by recorded durations" : "balanced by file count");
    rc = 0;
out:
    st_strv_free(&files);
    st_strv_free(&ids);
    st_strv_free(&tfiles);
    free(td);
    free(fw);
    free(known);
    free(split);
    free(home);
    free(ntests);
    free(tfile);
    free(it);
    free(slot);
    free(load);
    return rc;
}

/* One item of the plan by reference (a struct, so that sizeof names what is sorted). */
typedef struct {
    st_batch *b;
} batch_ref;

static int by_expected_desc(const void *a, const void *b)
{
    const st_batch *x = ((const batch_ref *)a)->b, *y = ((const batch_ref *)b)->b;
    if (x->expected_s != y->expected_s)
        return x->expected_s < y->expected_s ? 1 : -1;
    return (x > y) - (x < y);
}

/* Longest expected first (the placement the runner and the engines follow): items and owner
 * reordered together. */
static int plan_order(exec_plan *ep)
{
    batch_ref *ref = malloc((ep->n + 1) * sizeof(*ref));
    st_batch *items = malloc((ep->n + 1) * sizeof(*items));
    size_t *owner = malloc((ep->n + 1) * sizeof(*owner));
    if (!ref || !items || !owner) {
        free(ref);
        free(items);
        free(owner);
        return ST_ERR_NOMEM;
    }
    for (size_t k = 0; k < ep->n; k++)
        ref[k].b = &ep->items[k];
    qsort(ref, ep->n, sizeof(*ref), by_expected_desc);
    for (size_t k = 0; k < ep->n; k++) {
        items[k] = *ref[k].b;
        owner[k] = ep->owner[ref[k].b - ep->items];
    }
    free(ref);
    free(ep->items);
    free(ep->owner);
    ep->items = items;
    ep->owner = owner;
    return 0;
}

/* The runtime's slots (the sum of its engines' workers), 0 when it has no opinion. */
static unsigned runtime_slots(st_instance *rt)
{
    const st_runtime_ops *ops = rt->ops;
    if (!ST_STRUCT_HAS(st_runtime_ops, ops, slots) || !ops->slots)
        return 0;
    return ops->slots(rt->ctx);
}

/* After the runner: the items back into run->batches, shards rolled up into their path. */
static int plan_collect(st_cycle *c, st_run *run, exec_plan *ep)
{
    int rc = 0;
    for (size_t i = 0; i < run->n_batches; i++) {
        size_t first = ep->n, k = 0;
        for (size_t j = 0; j < ep->n; j++)
            if (ep->owner[j] == i && ep->items[j].shard_count) {
                if (first == ep->n)
                    first = j;
                k++;
            }
        if (!k) {
            for (size_t j = 0; j < ep->n; j++)
                if (ep->owner[j] == i)
                    run->batches[i] = ep->items[j];
            continue;
        }
        st_batch *sh = calloc(k + 1, sizeof(*sh));
        if (!sh)
            return ST_ERR_NOMEM;
        size_t m = 0;
        for (size_t j = first; j < ep->n; j++)
            if (ep->owner[j] == i)
                sh[m++] = ep->items[j];
        /* shards in their order, not in the order they ran */
        for (size_t a = 1; a < m; a++)
            for (size_t z = a; z > 0 && sh[z - 1].shard_index > sh[z].shard_index; z--) {
                st_batch tmp = sh[z];
                sh[z] = sh[z - 1];
                sh[z - 1] = tmp;
            }
        if (st_shards_rollup(&run->batches[i], sh, m) < 0)
            rc = ST_ERR_NOMEM;
        for (size_t j = 0; j < m; j++)
            st_batch_free(&sh[j]);
        free(sh);
        if (run->batches[i].done)
            st_progress_rolled_up(c, run, &run->batches[i]);
    }
    return rc;
}

/* Runs the batches and the orphan checks of one cycle and fills run; returns ST_OK or a
 * negative st_status (never ST_ERR_INVALID). */
static int run_stage(st_pipeline *p, st_cycle *c, st_run *run, const st_strv *batches,
                     st_module_list *modules, const char *work, const st_preflight *pf_in,
                     st_check_cache *cc, st_strv *keeps)
{
    st_settings *s = p->s;
    const st_preflight pf = *pf_in;
    c->pf = pf_in;
    run->cleanup_failures += pf.cleanup_failures; /* the preflight's container */
    /* The metrics DB is opened once something will run: a usage error or a missing pytest
     * leaves nothing in the data dir. */
    int rc = st_pipeline_open_db(p);
    if (rc != ST_OK)
        return rc; /* never ST_ERR_INVALID: the DB is data */
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
                      : ST_ERR_NOMEM;
    free(interpreter);
    if (planned != ST_OK)
        return planned;
    /* workers not set explicitly: a batch runs under xdist only when its history says it pays */
    double *hist_s = calloc(batches->n + 1, sizeof(*hist_s));
    long *hist_n = calloc(batches->n + 1, sizeof(*hist_n));
    if (!hist_s || !hist_n) {
        free(hist_s);
        free(hist_n);
        return ST_ERR_NOMEM;
    }
    for (size_t i = 0; i < batches->n; i++)
        hist_s[i] = -1;
    if (!s->workers_set && batches->n &&
        st_metricsdb_batch_history(p->db, (const char *const *)batches->v, batches->n, hist_s,
                                   hist_n) < 0)
        st_warn("run stage: cannot read the batches' history; the default worker split is used");
    for (size_t i = 0; i < batches->n; i++) {
        st_batch *b = &run->batches[i];
        b->workers_rule = s->workers_set ? "explicit" : hist_s[i] >= 0 ? "history" : "default";
        b->history_s = hist_s[i];
        b->history_tests = hist_n[i];
        if (!s->workers_set && hist_s[i] >= 0)
            b->workers_max = st_workers_from_history(hist_s[i], hist_n[i]);
        else if (!s->workers_set && strstr(batches->v[i], "::"))
            b->workers_max = 1; /* a node id: one test or class, not worth xdist's start-up */
    }
    free(hist_s);
    free(hist_n);
    for (size_t i = 0; i < batches->n; i++) {
        st_batch *b = &run->batches[i];
        b->id = st_asprintf("%.8s-batch-%zu", run->run_id, i);
        b->kind = ST_EXEC_TESTS;
        b->path = st_strdup(batches->v[i]);
        b->output_dir = st_asprintf("%s/batch-%zu", work, i);
        b->coverage = -1;
        b->exit_status = -1;
        if (keeps) { /* a change-aware run: the affected test files of the batch */
            b->select = keeps[i];
            memset(&keeps[i], 0, sizeof(keeps[i]));
            b->select_first = c->o->changed_first;
        }
        if (!b->id || !b->path || !b->output_dir || st_mkdir_p(b->output_dir, 0755) < 0)
            return ST_ERR_IO;
    }
    st_export_begin(&p->ps, run);
    double t_run = st_monotonic();
    st_runner_hooks hooks = {c, st_progress_batch_done, st_progress_tick,
                             st_progress_should_stop, c->o->progress};
    /* shards: paths split by test file; the runner runs the plan's items */
    exec_plan ep = {0};
    unsigned slots = runtime_slots(p->ps.runtime);
    if (!slots)
        slots = s->workers;
    for (size_t i = 0; i < run->n_batches; i++)
        if (plan_batch(p, run, i, slots, &ep) < 0) {
            for (size_t j = 0; j < ep.n; j++)
                if (ep.items[j].shard_count)
                    st_batch_free(&ep.items[j]);
            free(ep.items);
            free(ep.owner);
            return ST_ERR_NOMEM;
        }
    rc = ST_OK;
    if (ep.any_shards && plan_order(&ep) < 0)
        rc = ST_ERR_NOMEM;
    c->units = ep.n;
    if (rc == ST_OK)
        rc = st_runner_run(s, p->ps.runtime, &pf, run, ep.items, ep.n, &hooks);
    c->units = 0;
    if (plan_collect(c, run, &ep) < 0 && rc == ST_OK)
        rc = ST_ERR_NOMEM;
    free(ep.items);
    free(ep.owner);
    if (rc != ST_OK)
        return rc;
    /* the failed tests again, alone: flaky or failed (their time is the run's) */
    rc = run->aborted ? ST_OK : st_rerun_stage(p, c, run, work, pf_in);
    if (rc != ST_OK)
        return rc;
    run->total_runtime_s = st_monotonic() - t_run;
    if (!run->aborted)
        rc = st_runner_run(s, p->ps.runtime, &pf, run, run->checks, n_run, &hooks);
    if (rc != ST_OK)
        return rc;
    /* the cached verdicts are reported like the checks that ran */
    for (size_t i = n_run; !run->aborted && i < run->n_checks; i++)
        st_progress_batch_done(c, run, &run->checks[i]);
    st_batch *all[2] = {run->batches, run->checks};
    size_t counts[2] = {run->n_batches, run->n_checks};
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < counts[k]; i++)
            if (!all[k][i].done) {
                all[k][i].aborted = 1;
                if (!all[k][i].reason)
                    all[k][i].reason = st_strdup("not run: the run was stopped");
            }
    return ST_OK;
}

/* After the run stage: the run's orphan and cleanup tallies, the "since start" counters, and the
 * check cache's new verdicts (checks may be NULL). skipped_before: the redundant and legacy
 * modules the orphan cache knew before this cycle. */
static void tally_run(const st_settings *s, st_run *run, const st_preflight *pf,
                      st_check_cache *checks, const st_strv *skipped_before,
                      st_counters *counters)
{
    /* checks cut short or never started by a stop are neither tested nor failed; an unmet
     * dependency is not a failure */
    run->orphan_total = st_run_orphans_checked(run);
    run->orphan_failed = st_run_orphans_failed(run);
    for (size_t i = 0; i < run->n_checks; i++) {
        const st_batch *ck = &run->checks[i];
        if (!ck->done || ck->aborted)
            continue;
        run->orphan_unmet += ck->unmet != NULL;
        run->orphan_cached += ck->cached;
        /* the gauges count what this cycle really checked */
        if (ck->cached)
            continue;
        counters->orphans_tested++;
        counters->orphans_failed += !ck->ok && !ck->unmet;
        counters->orphans_unmet += ck->unmet != NULL;
        /* a verdict that depends on the module alone is kept for the next cycles */
        if (checks && ck->check_key && !run->aborted && !ck->unmet && !ck->infra_error) {
            const char *excerpt = NULL;
            for (size_t t = 0; !ck->ok && t < ck->n_tests && !excerpt; t++)
                excerpt = ck->tests[t].excerpt;
            char *interp = check_interpreter(s, run, pf);
            if (!interp || st_checkcache_put(checks, ck->path, ck->check_key, interp, ck->ok,
                                             ck->reason, excerpt, ck->finished_at) < 0)
                st_warn("%s: out of memory", ST_CHECK_CACHE_FILE);
            free(interp);
        }
    }
    for (size_t i = 0; i < run->orphan_skipped.n; i++)
        counters->orphans_redundant += !st_strv_contains(skipped_before, run->orphan_skipped.v[i]);
    /* every timed-out attempt, retries included; every container left behind */
    if (strcmp(run->runtime_used, "host") != 0) {
        for (size_t i = 0; i < run->n_batches; i++)
            counters->container_timeouts += run->batches[i].attempts_timed_out;
        for (size_t i = 0; i < run->n_checks; i++)
            counters->container_timeouts += run->checks[i].attempts_timed_out;
    }
    for (size_t i = 0; i < run->n_batches; i++)
        run->cleanup_failures += run->batches[i].cleanup_failures;
    for (size_t i = 0; i < run->n_checks; i++)
        run->cleanup_failures += run->checks[i].cleanup_failures;
    counters->container_failures += run->cleanup_failures;
}

/* Work directories of runs that are gone, removed beside the cycle (reading a large /tmp is
 * not worth delaying the first batch for). */
typedef struct stale_workdirs {
    const char *dir;
    size_t removed;
    pthread_t thread;
    int started;
} stale_workdirs;

static void *remove_stale_workdirs(void *arg)
{
    stale_workdirs *w = arg;
    w->removed = st_remove_stale_workdirs(w->dir);
    return NULL;
}

int st_pipeline_cycle(st_pipeline *p, const st_pipeline_opts *o, st_counters *counters,
                      st_verdict *verdict)
{
    st_settings *s = p->s;
    st_strv paths = {0}, batches = {0}, explicit_modules = {0}, skipped_before = {0};
    st_module_list modules = {0};
    st_orphan_cache cache_store, *cache = NULL;
    st_orphan_rules rules = {0};
    st_check_cache checks_store = {0}, *checks = NULL;
    int save_cache = 0;
    st_strv *keeps = NULL; /* change-aware runs: the test files of each batch */
    size_t n_keeps = 0;
    int changed_subset = 0;
    st_run run = {0};
    char *work = NULL, *results_json = NULL;
    int status = ST_ERR_NOMEM, lock_fd = -1;
    st_cycle c = {.s = s, .o = o, .ps = &p->ps, .t0 = st_monotonic()};
    st_preflight pf = {0};
    stale_workdirs stale = {0};

    /* paths set: a bad one is a usage error before anything starts */
    int rc = s->paths.n ? st_resolve_paths(s, NULL, &paths, &explicit_modules) : ST_OK;
    if (rc != ST_OK) {
        status = rc;
        goto out;
    }
    /* named with our pid, so that the next run can remove it if we crash */
    const char *tmp = st_tmpdir();
    stale.dir = tmp;
    stale.started = pthread_create(&stale.thread, NULL, remove_stale_workdirs, &stale) == 0;
    if (!stale.started)
        stale.removed = st_remove_stale_workdirs(tmp);
    work = st_asprintf("%s/selftest-%ld-XXXXXX", tmp, (long)getpid());
    if (!work || !mkdtemp(work)) {
        st_error("cannot create a work directory under %s: %s", tmp, strerror(errno));
        free(work);
        work = NULL;
        status = ST_ERR_IO;
        goto out;
    }
    rc = st_preflight_stage(p, work, &pf);
    if (rc == ST_OK && !s->paths.n)
        rc = st_resolve_paths(s, &pf, &paths, &explicit_modules); /* pytest's testpaths */
    if (rc != ST_OK) {
        status = rc;
        goto out;
    }
    lock_fd = st_lock_acquire_poll(s->lock_file, s->lock_timeout_s, o->should_stop);
    if (lock_fd < 0) {
        status = lock_fd;
        goto out;
    }
    if (o->progress)
        st_log_set_hook(st_progress_clear, NULL, &c);

    /* discover (the orphan cache is read and written under the run lock) */
    if (!s->disable_orphans) {
        status = st_orphan_state_load(s, &paths, &cache_store, &cache, &rules);
        if (status != ST_OK)
            goto out;
        checks = &checks_store;
        status = st_checkcache_load(checks, s->data_dir);
        if (status != ST_OK)
            goto out;
        st_checkcache_prune(checks, s->project_root);
    }
    status = ST_ERR_NOMEM;
    /* redundant and legacy modules the cache knew before this cycle: the gauge counts a
     * module when it is first skipped, not every cycle */
    for (size_t i = 0; cache && i < cache->n; i++)
        if (cache->v[i].in_modules && cache->v[i].redundant)
            st_strv_push(&skipped_before, cache->v[i].path);
    for (size_t i = 0; i < explicit_modules.n; i++)
        if (!st_module_add(&modules, explicit_modules.v[i], ST_ORIGIN_EXPLICIT))
            goto out;
    status = st_discover_stage(s, &p->ps, &paths, &batches, &modules, cache,
                               cache ? &rules : NULL, NULL);
    if (status != ST_OK)
        goto out;
    if ((o->changed || o->changed_first) && batches.n) {
        size_t n_before = batches.n;
        status = st_changed_stage(p, o, &batches, &keeps, &changed_subset);
        n_keeps = batches.n;
        if (status != ST_OK)
            goto out;
        if (batches.n == 0 && modules.n == 0) {
            fprintf(o->json ? stderr : stdout, "no test is affected by the changes (%zu "
                    "batch%s skipped); nothing to run\n", n_before, n_before == 1 ? "" : "es");
            *verdict = ST_VERDICT_PASSED;
            goto out;
        }
    }
    if (batches.n == 0 && modules.n == 0) {
        st_error("discover stage: nothing to run (no test paths and no modules to check)");
        status = ST_ERR_INVALID;
        goto out;
    }

    /* run */
    const st_runtime_ops *rt = p->ps.runtime->ops;
    run.run_id = new_run_id();
    run.started_at = st_wall_clock();
    run.runtime_used = rt->runtime_name ? rt->runtime_name : s->runtime;
    /* the commit tested, and what differed from it: a later --changed run counts those files
     * as changed too (they may have been reverted since) */
    if (st_git_state(s->project_root, &run.git_commit, &run.git_dirty) != ST_GIT_OK)
        st_strv_free(&run.git_dirty); /* no commit: a commit without its differences would be a
                                       * wrong base, and differences without one mean nothing */
    run.changed_subset = changed_subset;
    status = run.run_id ? run_stage(p, &c, &run, &batches, &modules, work, &pf, checks, keeps)
                        : ST_ERR_NOMEM;
    if (status != ST_OK)
        goto out;
    save_cache = 1; /* something ran: the cycle's discoveries are worth keeping */
    run.finished_at = st_wall_clock();
    st_run_finalize(&run);
    tally_run(s, &run, c.pf, checks, &skipped_before, counters);
    counters->runs++;
    counters->flaky += run.totals.flaky;

    /* classify: per-batch verdicts are made as batches finish; here, per test against the
     * previous run in the metrics DB. */
    if (st_metricsdb_classify(p->db, &run) < 0)
        st_warn("classify stage: cannot compare with the previous run");
    st_quarantine_ready_stage(p, &run);
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        run.core_cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    st_debug("core CPU so far: user %.1f ms, system %.1f ms; %ld page faults, %ld waits",
             (double)ru.ru_utime.tv_sec * 1e3 + (double)ru.ru_utime.tv_usec / 1e3,
             (double)ru.ru_stime.tv_sec * 1e3 + (double)ru.ru_stime.tv_usec / 1e3, ru.ru_minflt,
             ru.ru_nvcsw);
    st_progress_clear(&c);
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

    /* the test files' dependencies, from a whole run (a --changed subset's are partial) */
    if (s->record_test_deps && !run.aborted && !run.changed_subset &&
        st_testdeps_save(s->data_dir, &run) < 0)
        st_warn("the test dependencies of this run are not kept");

    /* integrate */
    if (!run.aborted)
        st_integrate_stage(p, &run);
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
    /* The run's verdict gives the exit status the process exits with; an aborted cycle's is
     * o->stopped's, so that the results, metrics.db and the exit status agree. */
    *verdict = st_run_verdict(&run, s->fail_on_orphans, o->stopped);
    run.exit_status = st_exit_status(ST_OK, *verdict);
    if (run.aborted)
        st_warn("the run was stopped by a signal; its results are marked aborted and no failure "
                "report is written");

    /* export: the core's stores first, then the exporter plugins; neither fails the run. */
    results_json = st_run_to_json(&run, 0);
    if (st_metricsdb_store(p->db, &run, results_json) < 0)
        st_warn("export stage: the run was not stored in the metrics DB");
    if (s->history_file)
        st_history_append(s->history_file, &run);
    if (s->junit_xml)
        st_junit_write(&run, s->junit_xml);
    st_export_end(&p->ps, &run, results_json, counters);
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
        st_export_report(s, &run);
    status = ST_OK;
out:
    st_log_set_hook(NULL, NULL, NULL);
    if (stale.started)
        pthread_join(stale.thread, NULL);
    if (stale.removed)
        st_info("removed %zu work director%s of runs that are gone from %s", stale.removed,
                stale.removed == 1 ? "y" : "ies", stale.dir);
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
    st_module_list_free(&modules);
    for (size_t i = 0; keeps && i < n_keeps; i++)
        st_strv_free(&keeps[i]);
    free(keeps);
    return status;
}

int st_pipeline_cleanup(st_settings *s, double max_age_s, st_counters *counters, int report,
                        int (*should_stop)(void))
{
    st_plugin_set ps = {0};
    /* only the runtime: run-scheduled's exporters already hold their ports */
    int status = st_plugins_load(s, &ps, 1);
    if (status == ST_OK)
        status = st_plugins_start(&ps);
    if (status != ST_OK)
        goto out;
    const st_runtime_ops *rt = ps.runtime->ops;
    if (!rt->cleanup_stale) {
        if (report)
            printf("%s keeps no containers: nothing to clean up\n", ps.runtime->name);
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
            status = ST_OK;
            break;
        }
        /* containers left behind: the runtime's status, else an I/O failure; a plugin op
         * after start() is never a configuration error */
        status = rc == ST_OK || rc == ST_ERR_INVALID || rc > 0 ? ST_ERR_IO : rc;
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
            status = ST_ERR_CANCELLED;
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

