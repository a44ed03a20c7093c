/* SPDX-License-Identifier: MIT */
/* The run stage (see runner.h). */
#include "config.h"

#include "runner.h"

#include "coverage.h"
#include "json.h"
#include "log.h"
#include "testdeps.h"

#include <dirent.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OUTPUT_TAIL_MAX (16u * 1024)

void st_split_workers(unsigned W, size_t P, unsigned *out, unsigned *concurrency)
{
    if (W == 0)
        W = 1;
    if (P <= W) {
        for (size_t i = 0; i < P; i++)
            out[i] = W / (unsigned)P + (i < W % P ? 1 : 0);
        *concurrency = (unsigned)P;
    } else {
        for (size_t i = 0; i < P; i++)
            out[i] = 1;
        *concurrency = W;
    }
}

unsigned st_workers_cap(unsigned requested, unsigned cpus)
{
    unsigned cap = (cpus ? cpus : 1) * ST_WORKERS_PER_CPU;
    return requested > cap ? cap : requested;
}

unsigned st_workers_from_history(double duration_s, long tests)
{
    double by_time = duration_s > 0 ? duration_s / ST_XDIST_SECONDS_PER_WORKER : 0;
    long by_tests = tests > 0 ? tests / ST_XDIST_TESTS_PER_WORKER : 0;
    double w = by_time < (double)by_tests ? by_time : (double)by_tests;
    if (w > 100000)
        w = 100000;
    return w < 2 ? 1 : (unsigned)w;
}

/* ---- executing one request ------------------------------------------------------------------ */

typedef struct capture {
    st_buf *tail;
    st_buf *all; /* optional full stdout (preflight) */
} capture;

static void capture_output(void *opaque, st_stream stream, const char *data, size_t len)
{
    capture *c = opaque;
    (void)stream;
    if (c->all && stream == ST_STREAM_STDOUT && c->all->len < (1u << 20))
        st_buf_append(c->all, data, len);
    if (c->tail) {
        st_buf_append(c->tail, data, len);
        if (c->tail->len > 2 * OUTPUT_TAIL_MAX)
            st_buf_keep_tail(c->tail, OUTPUT_TAIL_MAX);
    }
}

static int execute(st_instance *runtime, const st_exec_request *req, capture *cap,
                   st_exec_result *res)
{
    const st_runtime_ops *ops = runtime->ops;
    st_exec_sink sink = {sizeof(sink), cap, capture_output};
    memset(res, 0, sizeof(*res));
    res->struct_size = sizeof(*res);
    st_inst_lock(runtime);
    int rc = ops->execute(runtime->ctx, req, &sink, res);
    st_inst_unlock(runtime);
    if (rc != ST_OK && !res->infra_error) {
        res->infra_error = 1;
        if (!res->error[0])
            snprintf(res->error, sizeof(res->error), "%s: execute failed (status %d)",
                     runtime->name, rc);
    }
    return rc;
}

/* Prints one JSON line: what is installed and, after "--config ARGS...", pytest's reading of
 * the project's configuration. The configuration is read by pytest itself (pytest.main with the
 * user's pytest args); a first-called hook stops it once the ini file is read, before any
 * conftest is imported or anything is collected. Its test paths are resolved as pytest's
 * Config.parse resolves them when run without arguments: only when the rootdir is the
 * invocation dir, each entry globbed (recursive, sorted); with --pyargs, as given. */
static const char preflight_code[] =
    "import importlib.util as u, json, sys\n"
    "def has(m):\n"
    "    try:\n"
    "        return u.find_spec(m) is not None\n"
    "    except Exception:\n"
    "        return False\n"
    "def config(args):\n"
    "    import contextlib, glob, io, os, pathlib, pytest\n"
    "    class Done(Exception):\n"
    "        pass\n"
    "    class Ask:\n"
    "        @pytest.hookimpl(tryfirst=True)\n"
    "        def pytest_load_initial_conftests(self, early_config):\n"
    "            c = early_config\n"
    "            root = getattr(c, 'rootpath', None) or pathlib.Path(str(c.rootdir))\n"
    "            ini = getattr(c, 'inipath', None) or getattr(c, 'inifile', None)\n"
    "            tp = [str(p) for p in c.getini('testpaths')]\n"
    "            found = []\n"
    "            if pathlib.Path(c.invocation_params.dir) == pathlib.Path(root):\n"
    "                if c.known_args_namespace.pyargs:\n"
    "                    found = tp\n"
    "                else:\n"
    "                    for p in tp:\n"
    "                        found.extend(sorted(glob.iglob(p, recursive=True)))\n"
    "            try:\n"
    "                pp = [os.path.relpath(str(p), str(c.invocation_params.dir))\n"
    "                      for p in c.getini('pythonpath')]\n"
    "            except ValueError:\n"
    "                pp = []\n"
    "            raise Done({'rootdir': str(root), 'inipath': str(ini) if ini else None,\n"
    "                        'testpaths': tp, 'paths': [str(p) for p in found],\n"
    "                        'pythonpath': pp})\n"
    "    out = io.StringIO()\n"
    "    try:\n"
    "        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):\n"
    "            rc = pytest.main(list(args), plugins=[Ask()])\n"
    "    except Done as d:\n"
    "        return d.args[0]\n"
    "    except BaseException as e:\n"
    "        return {'error': '%s: %s' % (type(e).__name__, e)}\n"
    "    lines = [l.strip() for l in out.getvalue().splitlines() if l.strip()]\n"
    "    return {'error': lines[-1] if lines else 'pytest exited with status %s' % rc}\n"
    "def site_dirs():\n"
    "    d = [p for p in sys.path if p] + [sys.executable]\n"
    "    try:\n"
    "        import site\n"
    "        d.append(site.getusersitepackages())\n"
    "    except Exception:\n"
    "        pass\n"
    "    return d\n"
    "r = {'python': sys.version.split()[0], 'pytest': has('pytest'), 'xdist': has('xdist'),\n"
    "     'cov': has('pytest_cov'), 'sys_path': site_dirs()}\n"
    "if r['pytest'] and sys.argv[1:2] == ['--config']:\n"
    "    r['config'] = config(sys.argv[2:])\n"
    "sys.stdout.flush()\n"
    "print()\n"
    "print(json.dumps(r))\n";

char *st_pythonpath_env(const st_settings *s, int with_support, int *oom)
{
    const char *old = getenv("PYTHONPATH");
    st_buf b = {0};
    st_buf_puts(&b, "PYTHONPATH=");
    size_t empty = b.len;
    if (with_support)
        st_buf_puts(&b, s->support_dir);
    for (size_t i = 0; i < s->pythonpath.n; i++) {
        if (b.len > empty)
            st_buf_puts(&b, ":");
        st_buf_puts(&b, s->pythonpath.v[i]);
    }
    if (b.len > empty && old && *old) {
        st_buf_puts(&b, ":");
        st_buf_puts(&b, old);
    }
    if (b.len == empty) {
        st_buf_free(&b);
        return NULL;
    }
    char *v = st_buf_steal(&b);
    if (!v && oom)
        *oom = 1;
    return v;
}

const char *st_preflight_code(void)
{
    return preflight_code;
}

void st_preflight_free(st_preflight *pf)
{
    free(pf->answer);
    st_strv_free(&pf->sys_path);
    pf->answer = NULL;
    free(pf->config_error);
    free(pf->rootdir);
    free(pf->inipath);
    st_strv_free(&pf->testpaths);
    st_strv_free(&pf->pythonpath);
    st_strv_free(&pf->default_paths);
    pf->config_error = pf->rootdir = pf->inipath = NULL;
}

/* The config part of the preflight's answer into out. */
static void read_config_answer(yajl_val cfg, st_preflight *out)
{
    const char *err = st_jv_str(cfg, "error");
    if (err || !YAJL_IS_OBJECT(cfg)) {
        out->config_error = st_strdup(err ? err : "no answer");
        return;
    }
    const char *rd = st_jv_str(cfg, "rootdir"), *ini = st_jv_str(cfg, "inipath");
    out->rootdir = st_strdup(rd);
    out->inipath = st_strdup(ini);
    yajl_val tp = st_jv_get(cfg, "testpaths"), paths = st_jv_get(cfg, "paths"),
             pp = st_jv_get(cfg, "pythonpath");
    for (size_t i = 0; pp && YAJL_IS_ARRAY(pp) && i < pp->u.array.len; i++)
        if (YAJL_IS_STRING(pp->u.array.values[i]))
            st_strv_push(&out->pythonpath, YAJL_GET_STRING(pp->u.array.values[i]));
    for (size_t i = 0; tp && YAJL_IS_ARRAY(tp) && i < tp->u.array.len; i++)
        if (YAJL_IS_STRING(tp->u.array.values[i]))
            st_strv_push(&out->testpaths, YAJL_GET_STRING(tp->u.array.values[i]));
    for (size_t i = 0; paths && YAJL_IS_ARRAY(paths) && i < paths->u.array.len; i++)
        if (YAJL_IS_STRING(paths->u.array.values[i]))
            st_strv_push(&out->default_paths, YAJL_GET_STRING(paths->u.array.values[i]));
}

int st_preflight_answer(const st_settings *s, const char *line, st_preflight *out)
{
    char err[200];
    int rc = ST_ERR_UNAVAILABLE; /* not an answer, or pytest is not usable */
    yajl_val v = st_json_parse(line, err, sizeof(err));
    if (!v || !YAJL_IS_OBJECT(v)) {
        st_error("the Python interpreter '%s' is not a Python 3 interpreter (unexpected output)",
                 s->python);
        goto done;
    }
    yajl_val pv = st_jv_get(v, "pytest"), xv = st_jv_get(v, "xdist"), cv = st_jv_get(v, "cov");
    out->pytest = pv && YAJL_IS_TRUE(pv);
    out->xdist = xv && YAJL_IS_TRUE(xv);
    out->cov = cv && YAJL_IS_TRUE(cv);
    const char *ver = st_jv_str(v, "python");
    snprintf(out->python_version, sizeof(out->python_version), "%s", ver ? ver : "?");
    yajl_val sp = st_jv_get(v, "sys_path");
    for (size_t i = 0; sp && YAJL_IS_ARRAY(sp) && i < sp->u.array.len; i++)
        if (YAJL_IS_STRING(sp->u.array.values[i]))
            st_strv_push(&out->sys_path, YAJL_GET_STRING(sp->u.array.values[i]));
    if (!out->pytest) {
        st_error("the Python interpreter '%s' (Python %s) cannot import pytest: install it "
                 "(Debian: apt-get install python3-pytest) or set 'python' / SELF_TEST_PYTHON",
                 s->python, out->python_version);
        goto done;
    }
    if (out->config_asked) {
        yajl_val cfg = st_jv_get(v, "config");
        read_config_answer(cfg, out);
    }
    if (out->testpaths.oom || out->default_paths.oom || out->sys_path.oom ||
        out->pythonpath.oom) {
        st_error("preflight: out of memory");
        rc = ST_ERR_NOMEM;
        goto done;
    }
    rc = ST_OK;
done:
    if (v)
        yajl_tree_free(v);
    return rc;
}

int st_preflight_run(const st_settings *s, st_instance *runtime, const char *work_dir,
                     st_preflight *out)
{
    st_strv argv = {0}, env = {0};
    memset(out, 0, sizeof(*out));
    out->config_asked = s->paths.n == 0;
    st_strv_push(&argv, s->python);
    st_strv_push(&argv, "-c");
    st_strv_push(&argv, preflight_code);
    if (out->config_asked) {
        st_strv_push(&argv, "--config");
        for (size_t i = 0; i < s->pytest_args.n; i++)
            st_strv_push(&argv, s->pytest_args.v[i]);
    }
    int oom = 0;
    char *pp = st_pythonpath_env(s, 0, &oom);
    if (pp)
        st_strv_push_owned(&env, pp);
    st_exec_request req = {
        .struct_size = sizeof(req),
        .id = "preflight",
        .kind = ST_EXEC_TESTS,
        .label = "preflight",
        .argv = st_strv_get(&argv),
        .env = st_strv_get(&env),
        .workdir = s->project_root,
        .project_root = s->project_root,
        .output_dir = work_dir,
        .support_dir = s->support_dir,
        .workers = 1,
        .timeout_s = 60,
        .kill_grace_s = 1,
    };
    st_buf all = {0}, tail = {0};
    capture cap = {&tail, &all};
    st_exec_result res;
    int rc = ST_ERR_NOMEM;
    if (oom || argv.oom || env.oom) {
        st_error("preflight: out of memory");
        goto done;
    }
    rc = ST_ERR_UNAVAILABLE; /* the interpreter or pytest is not usable */
    execute(runtime, &req, &cap, &res);
    out->cleanup_failures = res.cleanup_failures;
    if (res.infra_error) {
        st_error("cannot run the Python interpreter '%s': %s (set 'python' in the config or "
                 "SELF_TEST_PYTHON)",
                 s->python, res.error);
        goto done;
    }
    if (!res.exited || res.exit_status != 0) {
        st_error("the Python interpreter '%s' failed to start (%s %d)%s%s", s->python,
                 res.exited ? "exit status" : "signal",
                 res.exited ? res.exit_status : res.term_signal, tail.len ? ": " : "",
                 tail.len ? tail.data : "");
        goto done;
    }
    /* the answer is the last line: whatever a plugin printed comes before it */
    const char *line = "";
    if (all.data) {
        while (all.len && (all.data[all.len - 1] == '\n' || all.data[all.len - 1] == '\r'))
            all.data[--all.len] = '\0';
        const char *nl = strrchr(all.data, '\n');
        line = nl ? nl + 1 : all.data;
    }
    rc = st_preflight_answer(s, line, out);
    if (rc == ST_OK) {
        out->answer = st_strdup(line); /* for the preflight cache; NULL on OOM: not cached */
    }
done:
    st_strv_free(&argv);
    st_strv_free(&env);
    st_buf_free(&all);
    st_buf_free(&tail);
    return rc;
}

/* ---- batches -------------------------------------------------------------------------------- */

int st_batch_argv(const st_settings *s, const st_preflight *pf, const st_batch *b, st_strv *argv)
{
    st_strv_push(argv, s->python);
    st_strv_push(argv, "-m");
    st_strv_push(argv, "pytest");
    st_strv_push(argv, "-p");
    st_strv_push(argv, "selftest_pytest_plugin");
    st_strv_pushf(argv, "--rootdir=%s", s->project_root);
    if (b->kind == ST_EXEC_ORPHAN_CHECK) {
        /* the user's pytest args are for the test suite, not for import checks */
        st_strv_push(argv, "-p");
        st_strv_push(argv, "no:cacheprovider");
        st_strv_push(argv, "-q");
        st_strv_push(argv, ".");
        return argv->oom ? ST_ERR_NOMEM : ST_OK;
    }
    if (b->workers > 1 && pf->xdist) {
        st_strv_push(argv, "-n");
        st_strv_pushf(argv, "%u", b->workers);
    }
    if (s->coverage && pf->cov) {
        st_strv_pushf(argv, "--cov=%s", s->project_root);
        st_strv_pushf(argv, "--cov-report=lcov:%s/coverage.lcov", b->output_dir);
    }
    for (size_t i = 0; i < s->pytest_args.n; i++)
        st_strv_push(argv, s->pytest_args.v[i]);
    /* a change-aware run: only the affected files of the batch; with select_first the whole
     * path, the bundled plugin running those files first (SELF_TEST_FIRST_FILES) */
    for (size_t i = 0; !b->select_first && i < b->select.n; i++)
        st_strv_push(argv, b->select.v[i]);
    if (!b->select.n || b->select_first)
        st_strv_push(argv, b->path);
    return argv->oom ? ST_ERR_NOMEM : ST_OK;
}

typedef struct runner {
    const st_settings *s;
    st_instance *runtime;
    const st_preflight *pf;
    st_run *run;
    st_batch *items;
    size_t n_items;
    const st_runner_hooks *hooks;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t next, done, running;
    int stopping;
    char **running_ids; /* per batch: id while it runs, for cancel */
    st_counts *live;    /* per batch: outcomes of the current attempt read so far */
    off_t *live_off;    /* per batch: how far its results file was read */
    /* orphan_check_mode "fork": the items run in n_units groups, group u being items
     * [unit_start[u], unit_start[u + 1]); running_ids is then indexed by group */
    size_t n_units;
    size_t *unit_start;
    char **unit_ids;
} runner;

/* Adds the test lines of a running batch's results file written since the last call to its live
 * counts (the bundled plugin writes and flushes one line per test). Caller holds rn->lock. */
static void live_update(runner *rn, size_t i)
{
    char *path = st_path_join(rn->items[i].output_dir, "results.jsonl");
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    free(path);
    if (fd < 0)
        return;
    char buf[16384];
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, rn->live_off[i]);
        if (n <= 0)
            break;
        buf[n] = '\0';
        char *line = buf, *nl;
        size_t used = 0;
        while ((nl = memchr(line, '\n', (size_t)(buf + n - line)))) {
            *nl = '\0';
            const char *o = strstr(line, "\"outcome\":\"");
            if (strncmp(line, "{\"event\":\"test\"", 15) == 0 && o) {
                o += 11;
                for (int k = 0; k < ST_OUT_COUNT; k++) {
                    size_t len = strlen(st_outcome_name((st_outcome)k));
                    if (strncmp(o, st_outcome_name((st_outcome)k), len) == 0 && o[len] == '"') {
                        rn->live[i].n[k]++;
                        break;
                    }
                }
            }
            used = (size_t)(nl + 1 - buf);
            line = nl + 1;
        }
        if (used == 0) {
            /* a line longer than the buffer (a long excerpt): skip to its end */
            if ((size_t)n < sizeof(buf) - 1)
                break; /* an incomplete last line: read it next time */
            used = (size_t)n;
            char c;
            while (pread(fd, &c, 1, rn->live_off[i] + (off_t)used) == 1 && c != '\n')
                used++;
            used++;
        }
        rn->live_off[i] += (off_t)used;
    }
    close(fd);
}

static void record_retry(st_batch *b, unsigned attempt, const st_exec_result *res,
                         const char *reason)
{
    st_retry_error *r = realloc(b->retries, (b->n_retries + 1) * sizeof(*r));
    if (!r)
        return;
    b->retries = r;
    r[b->n_retries].attempt = attempt;
    r[b->n_retries].error = st_strdup(reason ? reason : res->error);
    r[b->n_retries].container = res->container[0] ? st_strdup(res->container) : NULL;
    b->n_retries++;
}

double st_retry_delay(unsigned retry)
{
    double delay = 0.1;
    for (unsigned i = 1; i < retry && delay < ST_RETRY_DELAY_MAX_S; i++)
        delay *= 2;
    return delay < ST_RETRY_DELAY_MAX_S ? delay : ST_RETRY_DELAY_MAX_S;
}

/* Waits delay seconds before a retry, or less when the run is being stopped (the main thread
 * broadcasts rn->cond when it sets rn->stopping). Returns non-zero when stopped. */
static int backoff(runner *rn, double delay)
{
    double until = st_monotonic() + delay;
    pthread_mutex_lock(&rn->lock);
    while (!rn->stopping) {
        double left = until - st_monotonic();
        if (left <= 0)
            break;
        if (left > 0.25)
            left = 0.25; /* the main thread broadcasts; this is only a safety net */
        struct timespec ts;
        st_monotonic_deadline(left, &ts);
        pthread_cond_timedwait(&rn->cond, &rn->lock, &ts);
    }
    int stopping = rn->stopping;
    pthread_mutex_unlock(&rn->lock);
    return stopping;
}

/* An import check passes only when its one import passed and left nothing running. */
static void check_rules(st_batch *b)
{
    if (b->ok && b->counts.n[ST_OUT_PASSED] != 1) {
        b->ok = 0;
        free(b->reason);
        b->reason = st_strdup("the import check did not report a passing import");
    }
    if (b->ok && b->leftover) {
        b->ok = 0;
        free(b->reason);
        b->reason = st_asprintf("the import left %u process%s running (stopped)", b->leftover,
                                b->leftover == 1 ? "" : "es");
    }
}

/* dir, created, and empty (the plugin's earlier files removed). */
static void fresh_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
                continue;
            char *p = st_path_join(dir, e->d_name);
            if (p)
                unlink(p);
            free(p);
        }
        closedir(d);
    } else if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        st_warn("%s: cannot create it: %s (no test dependencies recorded)", dir, strerror(errno));
    }
}

/* The argv, environment and file names of one attempt of b (in b->output_dir). */
static void attempt_setup(runner *rn, st_batch *b, st_strv *argv_out, st_strv *env_out,
                          char **results_out, char **coverage_out)
{
    const st_settings *s = rn->s;
    st_strv argv = {0}, env = {0};
    char *results = st_path_join(b->output_dir, "results.jsonl");
    char *coverage = st_path_join(b->output_dir, "coverage.lcov");
    int pp_oom = 0;
    st_batch_argv(s, rn->pf, b, &argv);
    st_strv_push_owned(&env, st_pythonpath_env(s, 1, &pp_oom));
    st_strv_pushf(&env, "SELF_TEST_RESULTS_FILE=%s", results ? results : "");
    st_strv_pushf(&env, "COVERAGE_FILE=%s/.coverage", b->output_dir);
    /* the bundled plugin waits at the runtime's start gate when there is one (runtime-host) */
    st_strv_push(&env, "SELF_TEST_START_GATE=yes");
    if (b->shard_filter)
        st_strv_pushf(&env, "SELF_TEST_SHARD_FILTER=%s", b->shard_filter);
    if (b->select_first && b->select.n) {
        yajl_gen g = st_jg_new(0);
        if (g) {
            yajl_gen_array_open(g);
            for (size_t i = 0; i < b->select.n; i++)
                st_jg_str(g, b->select.v[i]);
            yajl_gen_array_close(g);
            char *json = st_jg_finish(g, 0);
            st_strv_pushf(&env, "SELF_TEST_FIRST_FILES=%s", json ? json : "[]");
            free(json);
        }
    }
    /* a whole batch (not a --changed selection) records its test files' dependencies, in
     * the attempt's output dir (an earlier attempt's records are not this one's) */
    if (s->record_test_deps && b->kind == ST_EXEC_TESTS && !(b->select.n && !b->select_first)) {
        char *deps_dir = st_path_join(b->output_dir, ST_TESTDEPS_DIR);
        if (deps_dir) {
            fresh_dir(deps_dir);
            st_strv_pushf(&env, "SELF_TEST_DEPS_DIR=%s", deps_dir);
        }
        free(deps_dir);
    }
    if (b->kind == ST_EXEC_ORPHAN_CHECK) {
        yajl_gen g = st_jg_new(0);
        if (g) {
            yajl_gen_array_open(g);
            yajl_gen_map_open(g);
            st_jg_kstr(g, "path", b->path);
            st_jg_kstr(g, "module", b->module);
            yajl_gen_map_close(g);
            yajl_gen_array_close(g);
            char *json = st_jg_finish(g, 0);
            st_strv_pushf(&env, "SELF_TEST_ORPHAN_MODULES=%s", json ? json : "[]");
            free(json);
        }
        st_strv_pushf(&env, "SELF_TEST_ORPHAN_ROOT=%s", s->project_root);
        st_strv_push(&env, "PYTHONDONTWRITEBYTECODE=1");
    }
    *argv_out = argv;
    *env_out = env;
    *results_out = results;
    *coverage_out = coverage;
}

static void run_one(runner *rn, st_batch *b)
{
    const st_settings *s = rn->s;
    st_strv argv = {0}, env = {0};
    char *results = NULL, *coverage = NULL, *base_dir = NULL;
    /* an import check is deterministic: retries are for infrastructure, not for it */
    int check = b->kind == ST_EXEC_ORPHAN_CHECK;
    unsigned attempts = check ? 1 : s->retries + 1;
    double timeout_s = check ? s->orphan_timeout_s : s->timeout_s;
    for (unsigned attempt = 1; attempt <= attempts; attempt++) {
        if (attempt > 1) {
            /* a retry writes into a directory of its own: what the failed attempt left
             * running (a container on an engine that was lost, whose mounts still reach the
             * host) cannot add its results to the retry's */
            if (!base_dir)
                base_dir = st_strdup(b->output_dir);
            char *dir = base_dir ? st_asprintf("%s-retry%u", base_dir, attempt - 1) : NULL;
            if (!dir || st_mkdir_p(dir, 0755) < 0) {
                free(dir);
                st_batch_reset_outcome(b);
                b->infra_error = 1;
                b->reason = st_strdup("cannot create the retry's output directory");
                break;
            }
            pthread_mutex_lock(&rn->lock); /* live_update reads it under the lock */
            free(b->output_dir);
            b->output_dir = dir;
            pthread_mutex_unlock(&rn->lock);
        }
        st_strv_free(&argv);
        st_strv_free(&env);
        free(results);
        free(coverage);
        attempt_setup(rn, b, &argv, &env, &results, &coverage);
        if (argv.oom || env.oom || !results || !coverage) {
            st_batch_reset_outcome(b);
            b->infra_error = 1;
            b->reason = st_strdup("out of memory");
            break;
        }
        st_batch_reset_outcome(b);
        pthread_mutex_lock(&rn->lock);
        memset(&rn->live[b - rn->items], 0, sizeof(rn->live[0]));
        rn->live_off[b - rn->items] = 0;
        unlink(results);
        pthread_mutex_unlock(&rn->lock);
        unlink(coverage);
        st_exec_request req = {
            .struct_size = sizeof(req),
            .id = b->id,
            .label = b->path,
            .argv = st_strv_get(&argv),
            .env = st_strv_get(&env),
            .workdir = s->project_root,
            .project_root = s->project_root,
            .output_dir = b->output_dir,
            .support_dir = s->support_dir,
            .workers = b->workers,
            .timeout_s = timeout_s,
            .kill_grace_s = s->kill_grace_s,
            .kind = b->kind,
            .sandboxed = b->kind == ST_EXEC_ORPHAN_CHECK,
            .expected_s = b->kind == ST_EXEC_TESTS ? b->expected_s : -1,
        };
        capture cap = {&b->output_tail, NULL};
        st_exec_result res;
        b->started_at = st_wall_clock();
        execute(rn->runtime, &req, &cap, &res);
        b->finished_at = st_wall_clock();
        b->attempts_timed_out += res.timed_out != 0;
        b->cleanup_failures += res.cleanup_failures;
        char err[600];
        if (st_results_read(b, results, err, sizeof(err)) < 0)
            b->read_error = st_strdup(err);
        if (s->coverage && rn->pf->cov && res.exited &&
            st_coverage_read(b, coverage, err, sizeof(err)) < 0)
            st_warn("%s: coverage unavailable: %s", b->path, err);
        st_batch_verdict(b, &res, timeout_s);
        if (b->kind == ST_EXEC_ORPHAN_CHECK)
            check_rules(b);
        int stopping;
        pthread_mutex_lock(&rn->lock);
        stopping = rn->stopping;
        pthread_mutex_unlock(&rn->lock);
        int retryable = (b->infra_error && !b->read_error) || b->timed_out;
        if (!retryable || attempt == attempts || stopping || res.cancelled)
            break;
        record_retry(b, attempt, &res, b->reason);
        double delay = st_retry_delay(attempt);
        st_warn("%s: attempt %u of %u failed (%s); retrying in %.1fs", b->path, attempt, attempts,
                b->reason, delay);
        if (backoff(rn, delay) != 0) {
            /* stopped while waiting: the retry never ran, so the batch has no verdict */
            char *why = st_asprintf("aborted: the run was stopped while waiting to retry "
                                    "(attempt %u: %s)", attempt, b->reason ? b->reason : "failed");
            if (why) {
                free(b->reason);
                b->reason = why;
            }
            b->ok = 0;
            b->aborted = 1;
            break;
        }
    }
    if (b->output_tail.len > OUTPUT_TAIL_MAX)
        st_buf_keep_tail(&b->output_tail, OUTPUT_TAIL_MAX);
    b->done = 1;
    st_strv_free(&argv);
    st_strv_free(&env);
    free(results);
    free(coverage);
    free(base_dir);
}

/* ---- orphan checks in one warm interpreter (orphan_check_mode = "fork") ---------------------- */

/* Reads the last max bytes of path into b (the check's own output, as a process would give it). */
static void read_output_tail(st_batch *b, const char *path, size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)max ? size - (off_t)max : 0;
    char buf[8192];
    ssize_t r;
    while ((r = pread(fd, buf, sizeof(buf), from)) > 0) {
        st_buf_append(&b->output_tail, buf, (size_t)r);
        from += r;
    }
    close(fd);
}

/* The exec request's timeout for n checks: each has its own orphan_timeout (enforced by the
 * server) plus the grace of its kill; the warm-up gets a minute; never more than a day. */
double st_fork_group_timeout(const st_settings *s, size_t n)
{
    double t = (double)n * (s->orphan_timeout_s + s->kill_grace_s) + 60;
    return t < 86400 ? t : 86400;
}

/* One server execution over items[from..n): fills st[k] / have[k] from its status file.
 * Returns the execution's result in *res and appends its own output to *tail. */
static void fork_round(runner *rn, const char *id, st_batch *items, size_t from, size_t n,
                       const char *out, st_exec_result *res, st_buf *tail, st_exec_result *st,
                       int *have, double *started)
{
    const st_settings *s = rn->s;
    st_strv argv = {0}, env = {0};
    int pp_oom = 0;
    double timeout_s = st_fork_group_timeout(s, n - from);
    st_strv_push(&argv, s->python);
    st_strv_push(&argv, "-m");
    st_strv_push(&argv, "selftest_forkcheck");
    st_strv_push_owned(&env, st_pythonpath_env(s, 1, &pp_oom));
    st_strv_push(&env, "PYTHONDONTWRITEBYTECODE=1");
    st_strv_push(&env, "SELF_TEST_START_GATE=yes"); /* the server waits at the gate first */
    yajl_gen g = st_jg_new(0);
    char *json = NULL;
    if (g) {
        yajl_gen_map_open(g);
        st_jg_kstr(g, "root", s->project_root);
        st_jg_kstr(g, "outdir", out);
        st_jg_kdouble(g, "timeout", s->orphan_timeout_s);
        st_jg_kdouble(g, "grace", s->kill_grace_s);
        yajl_gen_string(g, (const unsigned char *)"checks", 6);
        yajl_gen_array_open(g);
        for (size_t k = from; k < n; k++) {
            yajl_gen_map_open(g);
            st_jg_kstr(g, "path", items[k].path);
            st_jg_kstr(g, "module", items[k].module);
            yajl_gen_map_close(g);
        }
        yajl_gen_array_close(g);
        yajl_gen_map_close(g);
        json = st_jg_finish(g, 0);
    }
    st_strv_pushf(&env, "SELF_TEST_FORKCHECK=%s", json ? json : "");
    free(json);
    char *status_path = st_path_join(out, "status.jsonl");
    memset(res, 0, sizeof(*res));
    res->struct_size = sizeof(*res);
    if (argv.oom || env.oom || pp_oom || !json || !status_path) {
        res->infra_error = 1;
        snprintf(res->error, sizeof(res->error), "out of memory");
        goto done;
    }
    unlink(status_path);
    char label[300];
    snprintf(label, sizeof(label), "orphan check server (%zu module%s from %s)", n - from,
             n - from == 1 ? "" : "s", items[from].path);
    st_exec_request req = {
        .struct_size = sizeof(req),
        .id = id,
        .label = label,
        .argv = st_strv_get(&argv),
        .env = st_strv_get(&env),
        .workdir = s->project_root,
        .project_root = s->project_root,
        .output_dir = out,
        .support_dir = s->support_dir,
        .workers = 1,
        .timeout_s = timeout_s,
        .kill_grace_s = s->kill_grace_s,
        .kind = ST_EXEC_ORPHAN_CHECK,
        .sandboxed = 1,
        .expected_s = -1,
    };
    capture cap = {tail, NULL};
    double t0 = st_wall_clock();
    execute(rn->runtime, &req, &cap, res);
    char *text = NULL;
    size_t len = 0;
    if (st_read_file(status_path, 1u << 20, &text, &len) == 0) {
        double at = t0;
        for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
            nl = strchr(line, '\n');
            if (!nl)
                break; /* an incomplete last line: the server died writing it */
            *nl = '\0';
            char err[200];
            yajl_val v = st_json_parse(line, err, sizeof(err));
            long long k = -1, exited = 0, es = 0, sig = 0, to = 0, left = 0;
            yajl_val wall = v ? st_jv_get(v, "wall") : NULL;
            if (v && st_jv_int(v, "index", &k) == 0 && k >= 0 && (size_t)k < n - from) {
                k += (long long)from;
                st_jv_int(v, "exited", &exited);
                st_jv_int(v, "exit_status", &es);
                st_jv_int(v, "signal", &sig);
                st_jv_int(v, "timed_out", &to);
                st_jv_int(v, "leftover", &left);
                st_exec_result *e = &st[k];
                memset(e, 0, sizeof(*e));
                e->struct_size = sizeof(*e);
                e->exited = exited != 0;
                e->exit_status = (int)es;
                e->term_signal = (int)sig;
                e->timed_out = to != 0;
                e->leftover = left > 0 ? (unsigned)left : 0;
                e->wall_s = wall && YAJL_IS_NUMBER(wall) ? YAJL_GET_DOUBLE(wall) : 0;
                memcpy(e->container, res->container, sizeof(e->container));
                started[k] = at;
                at += e->wall_s;
                have[k] = 1;
            }
            if (v)
                yajl_tree_free(v);
        }
    }
    free(text);
done:
    free(status_path);
    st_strv_free(&argv);
    st_strv_free(&env);
}

/* Runs the checks of one group in the fork server. A check the server could not report on (it
 * was stopped: a resource limit, its own timeout) gets the server's result; the checks after it
 * run in a new server, so no module's check decides another's. */
static void run_group(runner *rn, size_t unit)
{
    const st_settings *s = rn->s;
    size_t first = rn->unit_start[unit], n = rn->unit_start[unit + 1] - first;
    st_batch *items = rn->items + first;
    char *out = st_asprintf("%s/fork", items[0].output_dir);
    st_exec_result *st = calloc(n + 1, sizeof(*st));
    int *have = calloc(n + 1, sizeof(*have));
    double *started = calloc(n + 1, sizeof(*started));
    st_buf tail = {0};
    if (!out || !st || !have || !started || st_mkdir_p(out, 0755) < 0) {
        for (size_t k = 0; k < n; k++) {
            st_batch_reset_outcome(&items[k]);
            items[k].infra_error = 1;
            free(items[k].reason);
            items[k].reason = st_strdup("cannot prepare the orphan check server's output dir");
            items[k].done = 1;
        }
        goto out;
    }
    size_t from = 0;
    unsigned cleanup = 0;
    while (from < n) {
        st_exec_result res;
        st_buf_reset(&tail);
        fork_round(rn, rn->running_ids[unit], items, from, n, out, &res, &tail, st, have,
                   started);
        cleanup += res.cleanup_failures;
        size_t next = from;
        while (next < n && have[next])
            next++;
        int stopping;
        pthread_mutex_lock(&rn->lock);
        stopping = rn->stopping;
        pthread_mutex_unlock(&rn->lock);
        /* the first check without a status line gets the server's result; when the server
         * never started it (nothing reported at all), nor will it the rest */
        int broken = next == from || res.infra_error || res.cancelled || stopping;
        size_t upto = broken ? n : (next < n ? next + 1 : n);
        for (size_t k = next; k < upto; k++) {
            st[k] = res;
            started[k] = st_wall_clock() - res.wall_s;
            st_buf_append(&items[k].output_tail, tail.data ? tail.data : "", tail.len);
        }
        for (size_t k = from; k < upto; k++) {
            st_batch *b = &items[k];
            st_buf keep = b->output_tail; /* the server's output, when it is this check's */
            memset(&b->output_tail, 0, sizeof(b->output_tail));
            st_batch_reset_outcome(b);
            st_buf_free(&b->output_tail);
            b->output_tail = keep;
            char name[64];
            snprintf(name, sizeof(name), "output-%zu.txt", k - from);
            char *opath = st_path_join(out, name);
            snprintf(name, sizeof(name), "results-%zu.jsonl", k - from);
            char *rpath = st_path_join(out, name);
            if (opath && have[k])
                read_output_tail(b, opath, OUTPUT_TAIL_MAX);
            /* the results file where a process-mode check leaves it */
            char *final = st_path_join(b->output_dir, "results.jsonl");
            char err[600];
            if (final && rpath && rename(rpath, final) < 0 && errno != ENOENT)
                st_warn("%s: cannot move %s: %s", b->path, rpath, strerror(errno));
            if (final && st_results_read(b, final, err, sizeof(err)) < 0)
                b->read_error = st_strdup(err);
            free(final);
            b->started_at = started[k];
            b->finished_at = started[k] + st[k].wall_s;
            b->attempts_timed_out += st[k].timed_out != 0;
            st_batch_verdict(b, &st[k], have[k] ? s->orphan_timeout_s
                                                : st_fork_group_timeout(s, n - from));
            check_rules(b);
            if (b->output_tail.len > OUTPUT_TAIL_MAX)
                st_buf_keep_tail(&b->output_tail, OUTPUT_TAIL_MAX);
            b->done = 1;
            if (opath)
                unlink(opath);
            free(opath);
            free(rpath);
        }
        from = upto;
    }
    items[0].cleanup_failures += cleanup;
out:
    st_buf_free(&tail);
    free(out);
    free(st);
    free(have);
    free(started);
}

static void *worker(void *arg)
{
    runner *rn = arg;
    for (;;) {
        pthread_mutex_lock(&rn->lock);
        if (rn->stopping || rn->next >= rn->n_units) {
            pthread_mutex_unlock(&rn->lock);
            return NULL;
        }
        size_t i = rn->next++;
        rn->running++;
        rn->running_ids[i] = rn->unit_start ? rn->unit_ids[i] : rn->items[i].id;
        pthread_mutex_unlock(&rn->lock);

        size_t lo = i, hi = i + 1;
        if (rn->unit_start) {
            run_group(rn, i);
            lo = rn->unit_start[i];
            hi = rn->unit_start[i + 1];
        } else {
            run_one(rn, &rn->items[i]);
        }

        pthread_mutex_lock(&rn->lock);
        rn->running_ids[i] = NULL;
        rn->running--;
        for (size_t k = lo; k < hi; k++) {
            rn->done++;
            if (rn->hooks && rn->hooks->batch_done)
                rn->hooks->batch_done(rn->hooks->opaque, rn->run, &rn->items[k]);
        }
        pthread_cond_broadcast(&rn->cond);
        pthread_mutex_unlock(&rn->lock);
    }
}

static void free_units(runner *rn)
{
    for (size_t u = 0; rn->unit_ids && u < rn->n_units; u++)
        free(rn->unit_ids[u]);
    free(rn->unit_ids);
    free(rn->unit_start);
}

int st_runner_run(const st_settings *s, st_instance *runtime, const st_preflight *pf, st_run *run,
                  st_batch *items, size_t n, const st_runner_hooks *hooks)
{
    runner rn = {.s = s, .runtime = runtime, .pf = pf, .run = run, .items = items, .n_items = n,
                 .hooks = hooks};
    if (n == 0)
        return ST_OK;
    unsigned *split = calloc(n + 1, sizeof(*split));
    rn.running_ids = calloc(n + 1, sizeof(*rn.running_ids));
    rn.live = calloc(n + 1, sizeof(*rn.live));
    rn.live_off = calloc(n + 1, sizeof(*rn.live_off));
    if (!split || !rn.running_ids || !rn.live || !rn.live_off) {
        free(split);
        free(rn.running_ids);
        free(rn.live);
        free(rn.live_off);
        return ST_ERR_NOMEM;
    }
    unsigned concurrency, cpus = st_cpu_count();
    unsigned W = st_workers_cap(s->workers, cpus);
    /* a runtime of several engines: their workers (the CPUs of this machine do not count) */
    const st_runtime_ops *rops = runtime->ops;
    unsigned slots = ST_STRUCT_HAS(st_runtime_ops, rops, slots) && rops->slots
                         ? rops->slots(runtime->ctx)
                         : 0;
    if (slots && !s->workers_set)
        W = slots;
    else if (W < s->workers && items[0].kind == ST_EXEC_TESTS)
        st_warn("workers: %u is more than %u per CPU (%u CPU%s here); using %u", s->workers,
                ST_WORKERS_PER_CPU, cpus, cpus == 1 ? "" : "s", W);
    st_split_workers(W, n, split, &concurrency);
    for (size_t i = 0; i < n; i++) {
        items[i].workers = items[i].kind == ST_EXEC_ORPHAN_CHECK ? 1 : split[i];
        /* the history rule only ever lowers the share (a short batch runs without xdist) */
        if (items[i].workers_max && items[i].workers > items[i].workers_max)
            items[i].workers = items[i].workers_max;
    }
    if (items[0].kind == ST_EXEC_ORPHAN_CHECK)
        concurrency = n < W ? (unsigned)n : W;
    free(split);
    rn.n_units = n;
    if (items[0].kind == ST_EXEC_ORPHAN_CHECK && strcmp(s->orphan_check_mode, "fork") == 0) {
        /* one server per worker, the checks split evenly (in order) between them */
        size_t G = concurrency ? concurrency : 1;
        rn.unit_start = calloc(G + 1, sizeof(*rn.unit_start));
        rn.unit_ids = calloc(G + 1, sizeof(*rn.unit_ids));
        int oom = !rn.unit_start || !rn.unit_ids;
        for (size_t u = 0; !oom && u < G; u++) {
            rn.unit_start[u + 1] = rn.unit_start[u] + n / G + (u < n % G ? 1 : 0);
            rn.unit_ids[u] = st_asprintf("%s-fork", items[rn.unit_start[u]].id);
            oom = !rn.unit_ids[u];
        }
        if (oom) {
            for (size_t u = 0; rn.unit_ids && u < G; u++)
                free(rn.unit_ids[u]);
            free(rn.unit_ids);
            free(rn.unit_start);
            free(rn.running_ids);
            free(rn.live);
            free(rn.live_off);
            return ST_ERR_NOMEM;
        }
        rn.n_units = G;
    }
    if (pf->xdist == 0 && W > 1 && n < W && items[0].kind == ST_EXEC_TESTS)
        st_warn("pytest-xdist is not installed for %s: batches run with one worker each "
                "(Debian: apt-get install python3-pytest-xdist)",
                s->python);
    pthread_mutex_init(&rn.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rn.cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_t *threads = calloc(concurrency + 1, sizeof(*threads));
    unsigned started = 0;
    for (unsigned t = 0; threads && t < concurrency; t++) {
        if (pthread_create(&threads[t], NULL, worker, &rn) != 0)
            break;
        started++;
    }
    if (started == 0) {
        st_error("cannot start worker threads: %s", strerror(errno));
        free(threads);
        free_units(&rn);
        free(rn.running_ids);
        free(rn.live);
        free(rn.live_off);
        pthread_mutex_destroy(&rn.lock);
        pthread_cond_destroy(&rn.cond);
        return ST_ERR_UNAVAILABLE;
    }
    /* Wait, ticking the progress line and watching for a stop request. */
    pthread_mutex_lock(&rn.lock);
    while (rn.done < n && !(rn.stopping && rn.running == 0)) {
        struct timespec ts;
        st_monotonic_deadline(0.25, &ts);
        pthread_cond_timedwait(&rn.cond, &rn.lock, &ts);
        if (!rn.stopping && hooks && hooks->should_stop && hooks->should_stop(hooks->opaque)) {
            rn.stopping = 1;
            run->aborted = 1;
            pthread_cond_broadcast(&rn.cond); /* wakes workers waiting to retry */
            for (size_t i = 0; i < n; i++)
                if (rn.running_ids[i]) {
                    const st_runtime_ops *ops = runtime->ops;
                    ops->cancel(runtime->ctx, rn.running_ids[i]);
                }
        }
        if (hooks && hooks->tick) {
            st_counts live = {{0}, 0};
            for (size_t i = 0; i < n; i++) {
                if (!hooks->want_live || !rn.running_ids[i] || items[i].kind != ST_EXEC_TESTS)
                    continue;
                live_update(&rn, i);
                st_counts_add(&live, &rn.live[i]);
            }
            hooks->tick(hooks->opaque, run, rn.done, rn.running, &live);
        }
    }
    pthread_mutex_unlock(&rn.lock);
    for (unsigned t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    free(threads);
    free_units(&rn);
    free(rn.running_ids);
    free(rn.live);
    free(rn.live_off);
    pthread_mutex_destroy(&rn.lock);
    pthread_cond_destroy(&rn.cond);
    return ST_OK;
}
