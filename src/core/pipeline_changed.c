/* SPDX-License-Identifier: MIT */
/* The change-aware part of the discover stage (`run --changed`, `--changed-first`): which
 * batches and test files a cycle runs, from git, the import graph and metrics.db (changed.h). */
#include "config.h"

#include "pipeline_stages.h"

#include "changed.h"
#include "log.h"
#include "pygraph.h"
#include "testdeps.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* keep_runs' floor is the look-back of a batch's recorded duration */
_Static_assert(ST_KEEP_RUNS_MIN == ST_HISTORY_RUNS, "keep_runs below the worker history");

int st_pipeline_open_db(st_pipeline *p)
{
    if (p->db)
        return 0;
    char *db_path = st_path_join(p->s->data_dir, "metrics.db");
    int rc = db_path ? st_metricsdb_open(db_path, &p->db) : ST_ERR_NOMEM;
    free(db_path);
    if (rc == 0)
        st_metricsdb_keep_runs(p->db, p->s->keep_runs);
    return rc;
}

/* Is rel (repo-relative) inside the directory abs (absolute), when abs is inside root? */
static int inside_dir(const char *root, const char *abs, const char *rel)
{
    char *d = abs ? st_path_relative_to(root, abs) : NULL;
    if (!d)
        return 0;
    size_t n = strlen(d);
    int in = strcmp(d, ".") == 0 ? 0 : strncmp(rel, d, n) == 0 && rel[n] == '/';
    free(d);
    return in;
}

static void say(const st_pipeline_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const st_pipeline_opts *o, const char *fmt, ...)
{
    FILE *out = o->json ? stderr : stdout; /* stdout holds only JSON lines then */
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
    fflush(out);
}

const char *st_pipeline_sets_python_files(const st_settings *s, char *buf, size_t size)
{
    static const char *const files[] = {"pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini",
                                        "setup.cfg"};
    for (size_t i = 0; i < s->pytest_args.n; i++)
        if (strstr(s->pytest_args.v[i], "python_files"))
            return "pytest_args";
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *path = st_path_join(s->project_root, files[i]), *text = NULL;
        int found = path && st_read_file(path, 16u << 20, &text, NULL) == 0 && text &&
                    strstr(text, "python_files");
        free(text);
        free(path);
        if (found) {
            snprintf(buf, size, "%s", files[i]);
            return buf;
        }
    }
    return NULL;
}

typedef struct pick {
    const char *test, *why;
} pick;

static int pick_cmp(const void *a, const void *b)
{
    return strcmp(((const pick *)a)->test, ((const pick *)b)->test);
}

/* Adds tests[i] (with why[i]) to sel, keeping it sorted; a test already there keeps its
 * reason. */
static int merge_selection(st_selection *sel, const st_strv *tests, const st_strv *why)
{
    size_t n = sel->tests.n + tests->n, k = 0;
    pick *all = calloc(n + 1, sizeof(*all));
    if (!all)
        return ST_ERR_NOMEM;
    for (size_t i = 0; i < sel->tests.n; i++)
        all[k++] = (pick){sel->tests.v[i], sel->why.v[i]};
    for (size_t i = 0; i < tests->n; i++)
        if (!st_strv_contains(&sel->tests, tests->v[i]))
            all[k++] = (pick){tests->v[i], why->v[i]};
    qsort(all, k, sizeof(*all), pick_cmp);
    st_strv t = {0}, w = {0};
    for (size_t i = 0; i < k; i++) {
        st_strv_push(&t, all[i].test);
        st_strv_push(&w, all[i].why);
    }
    free(all);
    if (t.oom || w.oom) {
        st_strv_free(&t);
        st_strv_free(&w);
        return ST_ERR_NOMEM;
    }
    st_strv_free(&sel->tests);
    st_strv_free(&sel->why);
    sel->tests = t;
    sel->why = w;
    return ST_OK;
}

/* The selection, with the recorded test dependencies placing the changed modules they can
 * (see testdeps.h); the import graph places the rest, and for the placed ones selects the test
 * files of their closure that the map does not know whole. */
static int select_with_deps(st_pipeline *p, const st_pipeline_opts *o, const st_pygraph *graph,
                            const char *sha, const st_strv *kept, const st_strv *failed,
                            st_selection *sel)
{
    const st_settings *s = p->s;
    st_testdeps *deps = NULL;
    char why[600] = "";
    int rc = ST_OK;
    if (sha && (rc = st_testdeps_load(s->data_dir, sha, &deps, why, sizeof(why))) < 0)
        return rc;
    if (!deps) {
        if (o->explain && why[0])
            say(o, "test dependencies not used: %s", why);
        return st_changed_select(graph, st_strv_get((st_strv *)kept), kept->n,
                                 st_strv_get((st_strv *)failed), failed->n, sel);
    }
    st_strv by_graph = {0}, by_map = {0}, map_tests = {0}, map_why = {0};
    st_selection rest = {0};
    rc = ST_ERR_NOMEM;
    for (size_t i = 0; i < kept->n; i++) {
        const char *f = kept->v[i];
        size_t len = strlen(f);
        const char *base = strrchr(f, '/') ? strrchr(f, '/') + 1 : f;
        uint32_t id = st_pygraph_find(graph, f);
        int r = 0;
        if (len > 3 && strcmp(f + len - 3, ".py") == 0 && strcmp(base, "conftest.py") != 0 &&
            id != ST_PYGRAPH_NONE && !st_pygraph_is_test(graph, id))
            r = st_testdeps_place(deps, s->project_root, sha, f, &map_tests, &map_why);
        if (r < 0) {
            rc = r;
            goto out;
        }
        st_strv_push(r ? &by_map : &by_graph, f);
    }
    if (st_changed_select(graph, st_strv_get(&by_graph), by_graph.n,
                          st_strv_get((st_strv *)failed), failed->n, sel) < 0)
        goto out;
    if (by_map.n && !sel->everything) {
        /* the closure's test files the map does not know whole run as the graph says */
        if (st_changed_select(graph, st_strv_get(&by_map), by_map.n, NULL, 0, &rest) < 0)
            goto out;
        if (rest.everything) {
            sel->everything = 1;
            sel->everything_why = rest.everything_why;
            rest.everything_why = NULL;
        }
        for (size_t i = 0; i < rest.tests.n; i++)
            if (!st_testdeps_covers(deps, rest.tests.v[i]) &&
                !st_strv_contains(&map_tests, rest.tests.v[i])) {
                st_strv_push(&map_tests, rest.tests.v[i]);
                st_strv_pushf(&map_why, "%s (its tests did not all run where the test "
                              "dependencies were recorded)", rest.why.v[i]);
            }
        if (map_tests.oom || map_why.oom || merge_selection(sel, &map_tests, &map_why) < 0)
            goto out;
    }
    if (o->explain)
        say(o, "%zu changed module%s placed by the recorded test dependencies, %zu by the "
            "import graph", by_map.n, by_map.n == 1 ? "" : "s", by_graph.n);
    rc = by_graph.oom || by_map.oom ? ST_ERR_NOMEM : ST_OK;
out:
    st_selection_free(&rest);
    st_strv_free(&by_graph);
    st_strv_free(&by_map);
    st_strv_free(&map_tests);
    st_strv_free(&map_why);
    st_testdeps_free(deps);
    return rc;
}

int st_changed_stage(st_pipeline *p, const st_pipeline_opts *o, st_strv *batches,
                     st_strv **keeps, int *subset)
{
    *subset = 0;
    const st_settings *s = p->s;
    const char *rev = o->changed_rev && o->changed_rev[0] ? o->changed_rev : NULL;
    const char *flag = o->changed_first ? "--changed-first" : "--changed";
    char msg[512] = "", *sha = NULL, *last_commit = NULL, *last_run = NULL, *base = NULL;
    st_strv files = {0}, kept = {0}, failed = {0}, failed_batches = {0};
    st_selection sel = {0};
    int status = ST_ERR_NOMEM;
    *keeps = NULL;
    int rc = st_pipeline_open_db(p);
    if (rc != ST_OK)
        return rc; /* never ST_ERR_INVALID: the DB is data */
    if (rev) {
        int g = st_git_resolve(s->project_root, rev, &sha, msg, sizeof(msg));
        if (g == ST_GIT_NOT_REPO) {
            st_error("%s=%s: the project root %s is not in a git work tree (%s)", flag, rev,
                     s->project_root, msg);
            return ST_ERR_INVALID;
        }
        if (g == ST_GIT_BAD_REV) {
            st_error("%s=%s: %s in the git repository of %s", flag, rev, msg, s->project_root);
            return ST_ERR_INVALID;
        }
        if (g != ST_GIT_OK) {
            st_error("%s=%s: %s", flag, rev, msg);
            return g == ST_GIT_MISSING ? ST_ERR_UNAVAILABLE : ST_ERR_IO;
        }
        base = st_asprintf("%s (%.12s)", rev, sha);
    } else {
        rc = st_metricsdb_last_passing(p->db, &last_commit, &last_run);
        if (rc != ST_OK) {
            status = rc;
            goto out;
        }
        int g = last_commit ? st_git_resolve(s->project_root, last_commit, &sha, msg,
                                             sizeof(msg))
                            : ST_GIT_BAD_REV;
        if (g == ST_GIT_OK) {
            base = st_asprintf("commit %.12s of the last passing run (%.8s)", sha,
                               last_run ? last_run : "?");
        } else if (g == ST_GIT_BAD_REV) {
            if (last_commit)
                st_warn("%s: commit %.12s of the last passing run is not in the repository "
                        "(rewritten history?): selecting the changes since HEAD",
                        flag, last_commit);
            g = st_git_head(s->project_root, &sha);
            if (g == ST_GIT_BAD_REV) {
                st_warn("%s: the repository of %s has no commit yet: running every test",
                        flag, s->project_root);
                status = ST_OK;
                goto out;
            }
            base = st_asprintf("HEAD (%.12s; %s)", sha ? sha : "?",
                               last_commit ? "the last passing run's commit is gone"
                                           : "no passing run with a commit recorded");
        }
        if (g == ST_GIT_NOT_REPO || g == ST_GIT_MISSING) {
            st_warn("%s: the project root %s is not in a git work tree (%s): running every "
                    "test", flag, s->project_root, msg[0] ? msg : "git said no");
            status = ST_OK;
            goto out;
        }
        if (g != ST_GIT_OK) {
            st_error("%s: %s", flag, msg);
            status = ST_ERR_IO;
            goto out;
        }
    }
    if (!base)
        goto out;
    int g = st_git_changed_files(s->project_root, sha, &files, msg, sizeof(msg));
    if (g != ST_GIT_OK) {
        st_error("%s: cannot list the changed files of %s: %s", flag, s->project_root, msg);
        status = g == ST_GIT_MISSING ? ST_ERR_UNAVAILABLE : ST_ERR_IO;
        goto out;
    }
    /* what differed from the base commit when the base run started: it may have been reverted
     * since, and the base run did not test the commit itself */
    if (!rev && last_run && g == ST_GIT_OK && sha && last_commit && strcmp(sha, last_commit) == 0 &&
        st_metricsdb_run_dirty(p->db, last_run, &files) < 0)
        goto out;
    const char *const *skip = st_strv_get((st_strv *)&s->skip_dirs);
    for (size_t i = 0; i < files.n; i++) {
        const char *f = files.v[i];
        if (st_changed_ignored(f, skip) || inside_dir(s->project_root, s->data_dir, f) ||
            inside_dir(s->project_root, s->report_dir, f))
            continue;
        st_strv_push(&kept, f);
    }
    rc = st_metricsdb_failed_files(p->db, &failed, &failed_batches);
    if (rc != ST_OK) {
        status = rc;
        goto out;
    }
    const st_pygraph *graph = st_project_graph(&p->ps.project);
    char pf_buf[32];
    const char *pf_file = st_pipeline_sets_python_files(s, pf_buf, sizeof(pf_buf));
    if (!graph) {
        sel.everything = 1;
        sel.everything_why = st_strdup("the import graph could not be built");
    } else if (pf_file) {
        sel.everything = 1;
        sel.everything_why = st_asprintf("%s sets python_files: test files may have names the "
                                         "selection does not know", pf_file);
    } else if (select_with_deps(p, o, graph, sha, &kept, &failed, &sel) < 0) {
        goto out;
    }
    size_t n_before = batches->n;
    if (st_changed_plan(&sel, &failed_batches, batches, keeps, o->changed_first) < 0)
        goto out;
    *subset = !o->changed_first && !sel.everything;
    if (sel.everything)
        say(o, "%s: %zu changed file%s since %s: every test runs", flag, kept.n,
            kept.n == 1 ? "" : "s", base);
    else if (o->changed_first)
        say(o, "%s: %zu changed file%s since %s: %zu test file%s affected; they run first, "
            "then everything", flag, kept.n, kept.n == 1 ? "" : "s", base, sel.tests.n,
            sel.tests.n == 1 ? "" : "s");
    else
        say(o, "%s: %zu changed file%s since %s: %zu test file%s selected, %zu of %zu "
            "batch%s run", flag, kept.n, kept.n == 1 ? "" : "s", base, sel.tests.n,
            sel.tests.n == 1 ? "" : "s", batches->n, n_before, n_before == 1 ? "" : "es");
    if (o->explain) {
        if (sel.everything)
            say(o, "selected everything: %s", sel.everything_why);
        for (size_t i = 0; i < failed_batches.n; i++)
            say(o, "selected batch %s: it failed without a failing test in a run since the "
                "last passing one", failed_batches.v[i]);
        for (size_t i = 0; !sel.everything && i < sel.tests.n; i++)
            say(o, "selected %s: %s", sel.tests.v[i], sel.why.v[i]);
    }
    status = ST_OK;
out:
    if (status != ST_OK && *keeps) {
        for (size_t i = 0; i < batches->n; i++)
            st_strv_free(&(*keeps)[i]);
        free(*keeps);
        *keeps = NULL;
    }
    st_selection_free(&sel);
    st_strv_free(&files);
    st_strv_free(&kept);
    st_strv_free(&failed);
    st_strv_free(&failed_batches);
    free(sha);
    free(last_commit);
    free(last_run);
    free(base);
    return status;
}
