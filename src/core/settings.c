/* SPDX-License-Identifier: MIT */
/* Settings: defaults < config file < environment < command line (docs/spec.md §2). */
#include "config.h"

#include "settings.h"

#include "log.h"

#include "st_enum.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files that are not library code: packaging and task scripts, pytest's conftest, Sphinx
 * (docs/, doc/, or a conf.py at the root), example, maintainer and benchmark scripts. */
const char *const st_default_orphan_exclude[] = {
    "setup.py", "noxfile.py", "conftest.py", "docs/*", "doc/*", "/conf.py",
    "examples/*", "scripts/*", "bench/*", "benchmarks/*", NULL};

static const char *const default_skip_dirs[] = {
    ".git", ".venv", "venv", "__pycache__", "node_modules", "build", "dist", "sandbox_data", NULL};

int st_set_string(char **dst, const char *value)
{
    char *v = st_strdup(value);
    if (value && !v)
        return ST_ERR_NOMEM;
    free(*dst);
    *dst = v;
    return ST_OK;
}

int st_set_bool(int *dst, const char *value, const char *where)
{
    int b = st_parse_bool(value);
    if (b < 0) {
        st_error("%s: '%s' is not a boolean (use 1/0, true/false, yes/no, on/off)", where, value);
        return ST_ERR_INVALID;
    }
    *dst = b;
    return 0;
}

int st_set_uint(unsigned *dst, const char *value, unsigned min, const char *where)
{
    long long v;
    if (st_parse_long(value, &v) < 0 || v < (long long)min || v > 100000) {
        st_error("%s: '%s' is not a whole number from %u to 100000", where, value, min);
        return ST_ERR_INVALID;
    }
    *dst = (unsigned)v;
    return 0;
}

/* A whole number from 0 to max into *dst; what names it in the message ("retries"). */
static int set_count(unsigned *dst, const char *value, const char *where, long long max,
                     const char *what)
{
    long long v;
    if (st_parse_long(value, &v) < 0 || v < 0 || v > max) {
        st_error("%s: '%s' is not a number of %s from 0 to %lld", where, value, what, max);
        return ST_ERR_INVALID;
    }
    *dst = (unsigned)v;
    return 0;
}

int st_set_retries(unsigned *dst, const char *value, const char *where)
{
    return set_count(dst, value, where, ST_RETRIES_MAX, "retries");
}

int st_set_reruns(unsigned *dst, const char *value, const char *where)
{
    return set_count(dst, value, where, ST_RERUNS_MAX, "reruns");
}

int st_set_ratio(double *dst, const char *value, const char *where)
{
    double v;
    if (st_parse_double(value, &v) < 0 || !(v >= 0) || v > 1) {
        st_error("%s: '%s' is not a number from 0 to 1", where, value);
        return ST_ERR_INVALID;
    }
    *dst = v;
    return 0;
}

int st_set_seconds(double *dst, const char *value, const char *where)
{
    double v;
    if (st_parse_double(value, &v) < 0 || !(v > 0) || v > 31536000) {
        st_error("%s: '%s' is not a positive number of seconds", where, value);
        return ST_ERR_INVALID;
    }
    *dst = v;
    return 0;
}

int st_set_pytest_args(st_settings *s, const char *value, const char *where)
{
    st_strv words = {0};
    const char *err;
    int rc = st_shell_split(value, &words, &err);
    if (rc < 0) {
        st_error("%s: cannot split '%s': %s", where, value, err ? err : "out of memory");
        st_strv_free(&words);
        return rc;
    }
    st_strv_free(&s->pytest_args);
    s->pytest_args = words;
    return 0;
}

int st_set_pythonpath(st_settings *s, const char *value, const char *where)
{
    st_strv v = {0};
    const char *p = value;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (len == 0) {
            st_error("%s: '%s' has an empty entry (separate directories with one ':')", where,
                     value);
            st_strv_free(&v);
            return ST_ERR_INVALID;
        }
        st_strv_push_owned(&v, st_strndup(p, len));
        if (!colon)
            break;
        p = colon + 1;
    }
    char *w = st_strdup(where);
    if (v.oom || !w) {
        st_strv_free(&v);
        free(w);
        return ST_ERR_NOMEM;
    }
    st_strv_free(&s->pythonpath);
    s->pythonpath = v;
    free(s->pythonpath_where);
    s->pythonpath_where = w;
    return 0;
}

/* An orphan_exclude glob: repo-relative, not empty, no ".." component; "./" and a trailing
 * "/" (a directory: everything under it) are normalised; a leading "/" anchors it at the
 * root. Returns ST_OK and *out a malloc'd glob, ST_ERR_INVALID (logged) or ST_ERR_NOMEM. */
static int exclude_glob(const char *g, const char *where, char **out)
{
    while (g[0] == '.' && g[1] == '/')
        g += 2;
    int bad = !g[0] || (g[0] == '/' && (!g[1] || g[1] == '/'));
    for (const char *c = g; !bad && *c;) {
        const char *e = strchr(c, '/');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        bad = len == 2 && c[0] == '.' && c[1] == '.';
        c += len;
        while (*c == '/')
            c++;
    }
    if (bad) {
        st_error("%s: orphan_exclude pattern '%s' must be a repository-relative glob (not empty, "
                 "no '..'; a leading '/' anchors it at the project root)",
                 where, g);
        return ST_ERR_INVALID;
    }
    size_t n = strlen(g);
    *out = g[n - 1] == '/' ? st_asprintf("%s*", g) : st_strdup(g);
    return *out ? ST_OK : ST_ERR_NOMEM;
}

static int set_exclude_list(st_settings *s, const st_strv *globs, const char *where)
{
    st_strv v = {0};
    for (size_t i = 0; i < globs->n; i++) {
        char *g = NULL;
        int rc = exclude_glob(globs->v[i], where, &g);
        if (rc < 0) {
            st_strv_free(&v);
            return rc;
        }
        st_strv_push_owned(&v, g);
    }
    if (v.oom) {
        st_strv_free(&v);
        return ST_ERR_NOMEM;
    }
    st_strv_free(&s->orphan_exclude);
    s->orphan_exclude = v;
    return 0;
}

int st_set_orphan_exclude(st_settings *s, const char *value, const char *where)
{
    st_strv parts = {0};
    char *copy = st_strdup(value), *save = NULL;
    if (!copy)
        return ST_ERR_NOMEM;
    for (char *tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save))
        st_strv_push(&parts, tok);
    free(copy);
    int rc = parts.oom ? ST_ERR_NOMEM : set_exclude_list(s, &parts, where);
    st_strv_free(&parts);
    return rc;
}

int st_settings_init(st_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->workers = st_cpu_count();
    s->timeout_s = 300;
    s->retries = 1;
    s->rerun_failures = 1;
    s->flaky_window = 20;
    s->keep_runs = ST_KEEP_RUNS_UNSET;
    s->flaky_threshold = 0.05;
    s->python = st_strdup(ST_DEFAULT_PYTHON);
    s->runtime = st_strdup("host");
    s->container_fallback = st_strdup("host");
    s->support_dir = st_strdup(ST_PKGDATADIR "/python");
    s->kill_grace_s = 5;
    s->metrics_port = -1;
    s->interval_s = 86400;
    s->lock_timeout_s = 60;
    s->max_age_s = 86400;
    s->include_orphans = 1;
    s->discover_orphans = 1;
    s->recursive_orphans = 1;
    s->recursive_isolated = 1;
    s->orphan_timeout_s = 60;
    s->shards = 1;
    s->shard_seconds = 60;
    s->orphan_check_mode = st_strdup("fork");
    for (size_t i = 0; default_skip_dirs[i]; i++)
        st_strv_push(&s->skip_dirs, default_skip_dirs[i]);
    for (size_t i = 0; st_default_orphan_exclude[i]; i++)
        st_strv_push(&s->orphan_exclude, st_default_orphan_exclude[i]);
    if (!s->python || !s->runtime || !s->container_fallback || !s->support_dir ||
        !s->orphan_check_mode || s->skip_dirs.oom || s->orphan_exclude.oom)
        return ST_ERR_NOMEM;
    return ST_OK;
}

/* ---- the config file ---------------------------------------------------------------------- */

typedef enum { K_STRING, K_PATH, K_STRLIST, K_PATHLIST, K_UINT, K_UINT0, K_RETRIES, K_SECONDS,
               K_BOOL, K_PORT, K_GROUP, K_PLUGINS, K_PYTHONPATH, K_SHARDS, K_RERUNS,
               K_RATIO } key_type;

typedef struct file_key {
    const char *name;
    key_type type;
    size_t offset;
} file_key;

#define OFF(f) offsetof(st_settings, f)
static const file_key file_keys[] = {
    {"project_root", K_PATH, OFF(project_root)},
    {"data_dir", K_STRING, OFF(data_dir)},
    {"report_dir", K_STRING, OFF(report_dir)},
    {"lock_file", K_STRING, OFF(lock_file)},
    {"paths", K_STRLIST, OFF(paths)},
    {"shards", K_SHARDS, OFF(shards)},
    {"shard_seconds", K_SECONDS, OFF(shard_seconds)},
    {"workers", K_UINT, OFF(workers)},
    {"timeout", K_SECONDS, OFF(timeout_s)},
    {"retries", K_RETRIES, OFF(retries)},
    {"pytest_args", K_STRING, 0},
    {"python", K_STRING, OFF(python)},
    {"coverage", K_BOOL, OFF(coverage)},
    {"record_test_deps", K_BOOL, OFF(record_test_deps)},
    {"runtime", K_STRING, OFF(runtime)},
    {"container_fallback", K_STRING, OFF(container_fallback)},
    {"fail_on_orphans", K_BOOL, OFF(fail_on_orphans)},
    {"rerun_failures", K_RERUNS, OFF(rerun_failures)},
    {"fail_on_flaky", K_BOOL, OFF(fail_on_flaky)},
    {"quarantine_file", K_PATH, OFF(quarantine_file)},
    {"flaky_window", K_UINT, OFF(flaky_window)},
    {"keep_runs", K_UINT0, OFF(keep_runs)},
    {"flaky_threshold", K_RATIO, OFF(flaky_threshold)},
    {"plugin_path", K_PATHLIST, OFF(plugin_path)},
    {"plugin_system_path", K_PATHLIST, OFF(plugin_system_path)},
    {"support_dir", K_PATH, OFF(support_dir)},
    {"kill_grace", K_SECONDS, OFF(kill_grace_s)},
    {"skip_dirs", K_STRLIST, OFF(skip_dirs)},
    {"pythonpath", K_PYTHONPATH, OFF(pythonpath)},
    {"history", K_PATH, OFF(history_file)}, /* relative to the config file, like plugin_path */
    {"junit_xml", K_PATH, OFF(junit_xml)}, /* relative to the config file, like history */
    {"metrics_port", K_PORT, OFF(metrics_port)},
    {"interval", K_SECONDS, OFF(interval_s)},
    {"lock_timeout", K_SECONDS, OFF(lock_timeout_s)},
    {"max_age", K_SECONDS, OFF(max_age_s)},
    {"disable_orphans", K_BOOL, OFF(disable_orphans)},
    {"include_orphans", K_BOOL, OFF(include_orphans)},
    {"discover_orphans", K_BOOL, OFF(discover_orphans)},
    {"recursive_orphans", K_BOOL, OFF(recursive_orphans)},
    {"auto_include_isolated", K_BOOL, OFF(auto_include_isolated)},
    {"recursive_isolated", K_BOOL, OFF(recursive_isolated)},
    {"clean_orphans", K_BOOL, OFF(clean_orphans)},
    {"include_redundant", K_BOOL, OFF(include_redundant)},
    {"disable_integration", K_BOOL, OFF(disable_integration)},
    {"orphan_exclude", K_STRLIST, OFF(orphan_exclude)},
    {"orphan_timeout", K_SECONDS, OFF(orphan_timeout_s)},
    {"orphan_check_mode", K_STRING, OFF(orphan_check_mode)},
    {"host", K_GROUP, 0},
    {"container", K_GROUP, 0},
    {"plugins", K_PLUGINS, 0},
};

/* The one table of plugin kind names (the configuration's plugins entries, the loader's messages, `plugins`). */
static const st_enum_name kind_names[] = {
    {ST_KIND_RUNTIME, "runtime"},
    {ST_KIND_DISCOVERY, "discovery"},
    {ST_KIND_INTEGRATOR, "integrator"},
    {ST_KIND_EXPORTER, "exporter"},
};

const char *st_kind_name(st_plugin_kind kind)
{
    return ST_ENUM_NAME(kind_names, kind, "unknown");
}

int st_kind_from_name(const char *name, st_plugin_kind *out)
{
    int v;
    if (ST_ENUM_VALUE(kind_names, name, &v) < 0)
        return ST_ERR_INVALID;
    *out = (st_plugin_kind)v;
    return 0;
}


static char *where_of(const config_setting_t *cs)
{
    const char *file = config_setting_source_file(cs);
    return st_asprintf("%s:%u", file ? file : "?", config_setting_source_line(cs));
}

static int file_string(const config_setting_t *cs, const char *what, const char **out)
{
    if (config_setting_type(cs) != CONFIG_TYPE_STRING) {
        char *w = where_of(cs);
        st_error("%s: '%s' must be a string", w, what);
        free(w);
        return ST_ERR_INVALID;
    }
    *out = config_setting_get_string(cs);
    return 0;
}

static int file_strlist(st_settings *s, const config_setting_t *cs, st_strv *dst, int is_path)
{
    char *w = where_of(cs);
    st_strv v = {0};
    int rc = ST_ERR_INVALID;
    if (config_setting_type(cs) == CONFIG_TYPE_STRING) {
        st_strv_push(&v, config_setting_get_string(cs));
    } else if (config_setting_is_aggregate(cs) && config_setting_type(cs) != CONFIG_TYPE_GROUP) {
        for (int i = 0; i < config_setting_length(cs); i++) {
            const config_setting_t *e = config_setting_get_elem(cs, (unsigned)i);
            if (config_setting_type(e) != CONFIG_TYPE_STRING) {
                st_error("%s: '%s' must be a list of strings", w, config_setting_name(cs));
                goto out;
            }
            st_strv_push(&v, config_setting_get_string(e));
        }
    } else {
        st_error("%s: '%s' must be a string or a list of strings", w, config_setting_name(cs));
        goto out;
    }
    if (is_path) {
        for (size_t i = 0; i < v.n; i++) {
            char *abs = st_path_absolute(s->config_dir, v.v[i]);
            free(v.v[i]);
            v.v[i] = abs;
            if (!abs)
                v.oom = 1;
        }
    }
    if (v.oom) {
        rc = ST_ERR_NOMEM;
        goto out;
    }
    st_strv_free(dst);
    *dst = v;
    memset(&v, 0, sizeof(v));
    rc = 0;
out:
    st_strv_free(&v);
    free(w);
    return rc;
}

static int file_plugins(st_settings *s, const config_setting_t *cs)
{
    char *w = where_of(cs);
    int rc = ST_ERR_INVALID;
    if (config_setting_type(cs) != CONFIG_TYPE_LIST && config_setting_type(cs) != CONFIG_TYPE_ARRAY) {
        st_error("%s: 'plugins' must be a list: plugins = ( { kind = \"...\"; name = \"...\"; } );", w);
        goto out;
    }
    int n = config_setting_length(cs);
    s->plugins_configured = 1;
    s->plugins = calloc((size_t)n + 1, sizeof(*s->plugins));
    if (!s->plugins) {
        rc = ST_ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(cs, (unsigned)i);
        char *ew = where_of(e);
        const char *kind = NULL, *name = NULL;
        int ok = config_setting_type(e) == CONFIG_TYPE_GROUP &&
                 config_setting_lookup_string(e, "kind", &kind) &&
                 config_setting_lookup_string(e, "name", &name);
        if (!ok) {
            st_error("%s: a plugins entry needs string settings 'kind' and 'name'", ew);
            free(ew);
            goto out;
        }
        st_plugin_kind parsed;
        if (st_kind_from_name(kind, &parsed) < 0) {
            st_error("%s: unknown plugin kind '%s' (runtime, discovery, integrator, exporter)", ew,
                     kind);
            free(ew);
            goto out;
        }
        if (!st_is_identifier(name) && !strchr(name, '-')) {
            /* names look like "exporter-prometheus" */
        }
        if (strchr(name, '/') || name[0] == '.' || !name[0]) {
            st_error("%s: plugin name '%s' must be a plain file name", ew, name);
            free(ew);
            goto out;
        }
        for (int k = 0; k < config_setting_length(e); k++) {
            const char *key = config_setting_name(config_setting_get_elem(e, (unsigned)k));
            if (strcmp(key, "kind") != 0 && strcmp(key, "name") != 0 &&
                strcmp(key, "settings") != 0) {
                st_error("%s: unknown setting '%s' in a plugins entry (kind, name, settings)", ew,
                         key);
                free(ew);
                goto out;
            }
        }
        st_plugin_conf *pc = &s->plugins[s->n_plugins++];
        pc->kind = st_strdup(kind);
        pc->name = st_strdup(name);
        pc->where = ew;
        pc->settings = config_setting_get_member(e, "settings");
        if (pc->settings && config_setting_type(pc->settings) != CONFIG_TYPE_GROUP) {
            st_error("%s: 'settings' must be a group { ... }", ew);
            goto out;
        }
    }
    rc = 0;
out:
    free(w);
    return rc;
}

int st_set_shards(int *dst, const char *value, const char *where)
{
    if (strcmp(value, "auto") == 0) {
        *dst = ST_SHARDS_AUTO;
        return ST_OK;
    }
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (!*value || *end || errno || v < 1 || v > ST_SHARDS_MAX) {
        st_error("%s: shards '%s' must be a whole number from 1 to %d, or \"auto\"", where,
                 value, ST_SHARDS_MAX);
        return ST_ERR_INVALID;
    }
    *dst = (int)v;
    return ST_OK;
}

/* paths: a string, or a list whose entries are strings or groups { path = "..."; shards = N
 * or "auto"; } (that path's shard count). */
static int file_paths(st_settings *s, const config_setting_t *cs)
{
    if (config_setting_type(cs) == CONFIG_TYPE_STRING || !config_setting_is_aggregate(cs) ||
        config_setting_type(cs) == CONFIG_TYPE_GROUP)
        return file_strlist(s, cs, &s->paths, 0);
    int n = config_setting_length(cs), any_group = 0;
    for (int i = 0; i < n; i++)
        any_group |= config_setting_type(config_setting_get_elem(cs, (unsigned)i)) ==
                     CONFIG_TYPE_GROUP;
    if (!any_group)
        return file_strlist(s, cs, &s->paths, 0);
    st_strv v = {0};
    int *spec = calloc((size_t)n + 1, sizeof(*spec));
    int rc = ST_ERR_INVALID;
    if (!spec)
        return ST_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(cs, (unsigned)i);
        char *w = where_of(e);
        spec[i] = ST_SHARDS_UNSET;
        if (config_setting_type(e) == CONFIG_TYPE_STRING) {
            st_strv_push(&v, config_setting_get_string(e));
        } else if (config_setting_type(e) == CONFIG_TYPE_GROUP) {
            const char *path = NULL;
            for (int k = 0; k < config_setting_length(e); k++) {
                const config_setting_t *m = config_setting_get_elem(e, (unsigned)k);
                const char *name = config_setting_name(m);
                char *mw = where_of(m);
                int ok = 0;
                if (strcmp(name, "path") == 0 && config_setting_type(m) == CONFIG_TYPE_STRING) {
                    path = config_setting_get_string(m);
                    ok = 1;
                } else if (strcmp(name, "path") == 0) {
                    st_error("%s: 'path' must be a string", mw);
                } else if (strcmp(name, "shards") == 0) {
                    char num[32];
                    if (config_setting_type(m) == CONFIG_TYPE_STRING) {
                        ok = st_set_shards(&spec[i], config_setting_get_string(m), mw) == 0;
                    } else if (config_setting_type(m) == CONFIG_TYPE_INT ||
                               config_setting_type(m) == CONFIG_TYPE_INT64) {
                        snprintf(num, sizeof(num), "%lld", config_setting_get_int64(m));
                        ok = st_set_shards(&spec[i], num, mw) == 0;
                    } else {
                        st_error("%s: 'shards' must be a whole number or \"auto\"", mw);
                    }
                } else {
                    st_error("%s: unknown setting '%s' in a paths entry (path, shards)", mw,
                             name);
                }
                free(mw);
                if (!ok) {
                    free(w);
                    goto out;
                }
            }
            if (!path) {
                st_error("%s: a paths entry { ... } needs 'path'", w);
                free(w);
                goto out;
            }
            st_strv_push(&v, path);
        } else {
            st_error("%s: a paths entry must be a string or a group { path = ...; shards = ...; }",
                     w);
            free(w);
            goto out;
        }
        free(w);
    }
    if (v.oom) {
        rc = ST_ERR_NOMEM;
        goto out;
    }
    st_strv_free(&s->paths);
    s->paths = v;
    memset(&v, 0, sizeof(v));
    st_strv_free(&s->path_shard_names);
    for (int i = 0; i < n; i++)
        st_strv_push(&s->path_shard_names, s->paths.v[i]);
    if (s->path_shard_names.oom) {
        rc = ST_ERR_NOMEM;
        goto out;
    }
    free(s->path_shards);
    s->path_shards = spec;
    spec = NULL;
    rc = ST_OK;
out:
    st_strv_free(&v);
    free(spec);
    return rc;
}

static int apply_file_key(st_settings *s, const file_key *k, config_setting_t *cs)
{
    char *w = where_of(cs);
    const char *str = NULL;
    char buf[64];
    int rc = ST_ERR_INVALID;
    void *dst = (char *)s + k->offset;
    switch (k->type) {
    case K_STRING:
        if (file_string(cs, k->name, &str) < 0)
            goto out;
        if (strcmp(k->name, "pytest_args") == 0) {
            rc = st_set_pytest_args(s, str, w);
        } else if (strcmp(k->name, "container_fallback") == 0 && strcmp(str, "host") != 0 &&
                   strcmp(str, "fail") != 0) {
            st_error("%s: 'container_fallback' must be \"host\" or \"fail\", not '%s'", w, str);
        } else if (strcmp(k->name, "orphan_check_mode") == 0 && strcmp(str, "fork") != 0 &&
                   strcmp(str, "process") != 0) {
            st_error("%s: 'orphan_check_mode' must be \"fork\" or \"process\", not '%s'", w, str);
        } else if (strcmp(k->name, "runtime") == 0 &&
                   (!str[0] || str[0] == '.' || strchr(str, '/'))) {
            /* the runtime names a plugin file (runtime-NAME.so): a plain name, as in plugins */
            st_error("%s: runtime '%s' must be a plain name (host, docker, podman)", w, str);
        } else {
            rc = st_set_string(dst, str);
        }
        break;
    case K_PATH: {
        if (file_string(cs, k->name, &str) < 0)
            goto out;
        char *abs = st_path_absolute(s->config_dir, str);
        if (!abs) {
            rc = ST_ERR_NOMEM;
            goto out;
        }
        free(*(char **)dst);
        *(char **)dst = abs;
        rc = 0;
        break;
    }
    case K_SHARDS:
        if (config_setting_type(cs) == CONFIG_TYPE_STRING) {
            rc = st_set_shards(dst, config_setting_get_string(cs), w);
        } else if (config_setting_type(cs) == CONFIG_TYPE_INT ||
                   config_setting_type(cs) == CONFIG_TYPE_INT64) {
            snprintf(buf, sizeof(buf), "%lld", config_setting_get_int64(cs));
            rc = st_set_shards(dst, buf, w);
        } else {
            st_error("%s: '%s' must be a whole number or \"auto\"", w, k->name);
        }
        break;
    case K_STRLIST:
    case K_PATHLIST:
        if (strcmp(k->name, "paths") == 0) {
            rc = file_paths(s, cs);
            break;
        }
        if (strcmp(k->name, "orphan_exclude") == 0) {
            st_strv globs = {0};
            rc = file_strlist(s, cs, &globs, 0);
            if (rc == 0)
                rc = set_exclude_list(s, &globs, w);
            st_strv_free(&globs);
            break;
        }
        rc = file_strlist(s, cs, dst, k->type == K_PATHLIST);
        if (rc == 0 && strcmp(k->name, "plugin_system_path") == 0)
            s->plugin_system_path_set = 1;
        break;
    case K_UINT:
    case K_UINT0:
    case K_RETRIES:
    case K_RERUNS:
    case K_PORT:
        if (config_setting_type(cs) != CONFIG_TYPE_INT && config_setting_type(cs) != CONFIG_TYPE_INT64) {
            st_error("%s: '%s' must be an integer", w, k->name);
            goto out;
        }
        snprintf(buf, sizeof(buf), "%lld", config_setting_get_int64(cs));
        if (k->type != K_PORT && (config_setting_get_int64(cs) < (k->type == K_UINT ? 1 : 0) ||
                                  config_setting_get_int64(cs) > 100000)) {
            /* libconfig reads an integer too large for 64 bits as -1: name the setting, not
             * a value that was never written */
            st_error("%s: '%s' must be a whole number from %d to 100000", w, k->name,
                     k->type == K_UINT ? 1 : 0);
            goto out;
        }
        if (k->type == K_PORT) {
            long long v = config_setting_get_int64(cs);
            if (v < 0 || v > 65535) {
                st_error("%s: 'metrics_port' must be from 0 to 65535", w);
                goto out;
            }
            *(long *)dst = (long)v;
            rc = 0;
        } else if (k->type == K_RETRIES) {
            rc = st_set_retries(dst, buf, w);
        } else if (k->type == K_RERUNS) {
            rc = st_set_reruns(dst, buf, w);
        } else {
            rc = st_set_uint(dst, buf, k->type == K_UINT ? 1 : 0, w);
            if (rc == 0 && k->offset == OFF(workers))
                s->workers_set = 1;
        }
        break;
    case K_SECONDS:
        if (config_setting_type(cs) != CONFIG_TYPE_INT && config_setting_type(cs) != CONFIG_TYPE_INT64 &&
            config_setting_type(cs) != CONFIG_TYPE_FLOAT) {
            st_error("%s: '%s' must be a number of seconds", w, k->name);
            goto out;
        }
        st_format_double(config_setting_type(cs) == CONFIG_TYPE_FLOAT
                             ? config_setting_get_float(cs)
                             : (double)config_setting_get_int64(cs),
                         buf);
        rc = st_set_seconds(dst, buf, w);
        break;
    case K_RATIO:
        if (config_setting_type(cs) != CONFIG_TYPE_INT && config_setting_type(cs) != CONFIG_TYPE_INT64 &&
            config_setting_type(cs) != CONFIG_TYPE_FLOAT) {
            st_error("%s: '%s' must be a number from 0 to 1", w, k->name);
            goto out;
        }
        st_format_double(config_setting_type(cs) == CONFIG_TYPE_FLOAT
                             ? config_setting_get_float(cs)
                             : (double)config_setting_get_int64(cs),
                         buf);
        rc = st_set_ratio(dst, buf, w);
        break;
    case K_BOOL:
        if (config_setting_type(cs) != CONFIG_TYPE_BOOL) {
            st_error("%s: '%s' must be true or false", w, k->name);
            goto out;
        }
        *(int *)dst = config_setting_get_bool(cs);
        rc = st_settings_given(s, k->offset, ST_GIVEN_FILE, w);
        break;
    case K_GROUP:
        if (config_setting_type(cs) != CONFIG_TYPE_GROUP) {
            st_error("%s: '%s' must be a group { ... }", w, k->name);
            goto out;
        }
        rc = 0;
        break;
    case K_PLUGINS:
        rc = file_plugins(s, cs);
        break;
    case K_PYTHONPATH:
        /* relative to the project root, which is known only at the end: resolved in finish */
        rc = file_strlist(s, cs, dst, 0);
        if (rc == 0)
            rc = st_set_string(&s->pythonpath_where, w);
        break;
    }
out:
    free(w);
    return rc;
}

/* The file name of an @include directive on line `line` of file, or NULL (libconfig's "cannot
 * open include file" does not name it). */
static char *include_at(const char *file, int line)
{
    char *text = NULL;
    if (line <= 0 || st_read_file(file, 16u << 20, &text, NULL) < 0)
        return NULL;
    char *p = text, *name = NULL;
    for (int n = 1; p && n < line; n++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (p) {
        p += strspn(p, " \t");
        if (strncmp(p, "@include", 8) == 0) {
            char *q = strchr(p + 8, '"'), *e = q ? strchr(q + 1, '"') : NULL;
            if (q && e && !memchr(q, '\n', (size_t)(e - q)))
                name = st_strndup(q + 1, (size_t)(e - q - 1));
        }
    }
    free(text);
    return name;
}

/* libconfig opens an @include'd file as it is named and reads it with its flex scanner, which
 * exits the process ("input in flex scanner failed", status 2) when the read fails, as it does
 * for a directory, and blocks forever on a FIFO. So every @include line of the file, and of the
 * files it includes, is checked first: a name that exists and is not a regular file is refused
 * with FILE:LINE. (A missing file is left to libconfig, whose error names it.) Returns 0 or -1
 * (logged). */
static int check_includes(const char *file, int depth)
{
    char *text = NULL;
    size_t len = 0;
    if (depth > 10 || st_read_file(file, 16u << 20, &text, &len) < 0)
        return 0; /* libconfig reports what it cannot read, and its own include depth limit */
    /* A NUL byte is not text: libconfig's scanner would read past it in ways this check cannot
     * follow (an @include name cut at a NUL opens a directory), so such a file is refused. */
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int at = 1;
        for (const char *c = text; c < nul; c++)
            at += *c == '\n';
        st_error("%s:%d: a NUL byte: not a config file", file, at);
        free(text);
        return ST_ERR_INVALID;
    }
    int rc = 0, line = 1;
    for (char *p = text; p && *p && rc == 0; line++) {
        char *eol = strchr(p, '\n');
        if (eol)
            *eol = '\0';
        char *q = p + strspn(p, " \t");
        if (strncmp(q, "@include", 8) == 0) {
            char *a = strchr(q + 8, '"'), *b = a ? strchr(a + 1, '"') : NULL;
            if (a && b) {
                *b = '\0';
                struct stat st;
                if (stat(a + 1, &st) == 0 && !S_ISREG(st.st_mode)) {
                    st_error("%s:%d: @include '%s': %s, not a config file", file, line, a + 1,
                             S_ISDIR(st.st_mode) ? "a directory"
                                                 : "not a regular file (a FIFO, socket or device)");
                    rc = ST_ERR_INVALID;
                } else if (stat(a + 1, &st) == 0) {
                    rc = check_includes(a + 1, depth + 1);
                }
            }
        }
        p = eol ? eol + 1 : NULL;
    }
    free(text);
    return rc;
}

int st_settings_load_file(st_settings *s, const char *path)
{
    char *candidates[3] = {0};
    int named = path != NULL;
    int rc = ST_ERR_INVALID;
    if (named) {
        candidates[0] = st_strdup(path);
    } else {
        candidates[0] = st_strdup(ST_SYSCONFDIR "/selftest/selftest.conf");
        candidates[1] = st_strdup("selftest.conf");
    }
    const char *chosen = NULL;
    for (size_t i = 0; i < 2 && candidates[i]; i++) {
        if (access(candidates[i], F_OK) == 0) {
            chosen = candidates[i];
            break;
        }
    }
    if (!chosen) {
        if (named) {
            st_error("%s: cannot read the config file: %s", path, strerror(ENOENT));
            goto out;
        }
        rc = 0; /* no file: defaults, environment and options only */
        goto out;
    }
    s->config_path = st_path_absolute(NULL, chosen);
    s->config_dir = s->config_path ? st_path_dirname(s->config_path) : NULL;
    if (!s->config_dir) {
        rc = ST_ERR_NOMEM;
        goto out;
    }
    config_init(&s->cfg);
    s->cfg_loaded = 1;
    struct stat st;
    if (stat(chosen, &st) == 0 && S_ISDIR(st.st_mode)) {
        st_error("%s: is a directory, not a config file", chosen);
        goto out;
    }
    if (stat(chosen, &st) == 0 && !S_ISREG(st.st_mode)) {
        /* a FIFO would block the read forever; a device is no config either */
        st_error("%s: not a regular file (a FIFO, socket or device), not a config file", chosen);
        goto out;
    }
    rc = check_includes(chosen, 0);
    if (rc < 0)
        goto out;
    rc = ST_ERR_INVALID;
    if (!config_read_file(&s->cfg, chosen)) {
        const char *efile = config_error_file(&s->cfg) ? config_error_file(&s->cfg) : chosen;
        char *inc = NULL;
        if (config_error_type(&s->cfg) == CONFIG_ERR_FILE_IO)
            st_error("%s: cannot read the config file: %s", chosen, strerror(errno));
        else if ((inc = include_at(efile, config_error_line(&s->cfg))) != NULL &&
                 strstr(config_error_text(&s->cfg), "include"))
            st_error("%s:%d: %s '%s'", efile, config_error_line(&s->cfg),
                     config_error_text(&s->cfg), inc);
        else
            st_error("%s:%d: %s", efile, config_error_line(&s->cfg), config_error_text(&s->cfg));
        free(inc);
        goto out;
    }
    config_setting_t *root = config_root_setting(&s->cfg);
    for (int i = 0; i < config_setting_length(root); i++) {
        config_setting_t *cs = config_setting_get_elem(root, (unsigned)i);
        const char *name = config_setting_name(cs);
        const file_key *k = NULL;
        for (size_t j = 0; j < sizeof(file_keys) / sizeof(file_keys[0]); j++)
            if (strcmp(file_keys[j].name, name) == 0)
                k = &file_keys[j];
        if (!k) {
            char *w = where_of(cs);
            st_error("%s: unknown setting '%s' (see selftest.conf(5) or conf/*.conf)", w, name);
            free(w);
            rc = ST_ERR_INVALID;
            goto out;
        }
        rc = apply_file_key(s, k, cs);
        if (rc < 0)
            goto out;
    }
    rc = ST_OK;
out:
    for (size_t i = 0; i < 3; i++)
        free(candidates[i]);
    return rc;
}

/* ---- the environment ------------------------------------------------------------------------ */

/* The first variable of the list that is set, with its name. */
static const char *env_first(const char *const *names, const char **which)
{
    for (size_t i = 0; names[i]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) {
            *which = names[i];
            return v;
        }
    }
    return NULL;
}

typedef struct env_bool {
    const char *names[3];
    size_t offset;
} env_bool;

static const env_bool env_bools[] = {
    {{"SELF_TEST_DISABLE_ORPHANS", "SANDBOX_DISABLE_ORPHANS", NULL}, OFF(disable_orphans)},
    {{"SELF_TEST_INCLUDE_ORPHANS", "SANDBOX_INCLUDE_ORPHANS", NULL}, OFF(include_orphans)},
    {{"SELF_TEST_DISCOVER_ORPHANS", NULL, NULL}, OFF(discover_orphans)},
    {{"SELF_TEST_RECURSIVE_ORPHANS", "SANDBOX_RECURSIVE_ORPHANS", NULL}, OFF(recursive_orphans)},
    {{"SELF_TEST_AUTO_INCLUDE_ISOLATED", "SANDBOX_AUTO_INCLUDE_ISOLATED", NULL},
     OFF(auto_include_isolated)},
    {{"SELF_TEST_RECURSIVE_ISOLATED", "SANDBOX_RECURSIVE_ISOLATED", NULL}, OFF(recursive_isolated)},
    {{"SANDBOX_CLEAN_ORPHANS", NULL, NULL}, OFF(clean_orphans)},
    {{"SELF_TEST_INCLUDE_REDUNDANT", "SANDBOX_TEST_REDUNDANT", NULL}, OFF(include_redundant)},
    {{"SELF_TEST_DISABLE_AUTO_INTEGRATION", NULL, NULL}, OFF(disable_integration)},
    {{"SELF_TEST_COVERAGE", NULL, NULL}, OFF(coverage)},
    {{"SELF_TEST_RECORD_TEST_DEPS", NULL, NULL}, OFF(record_test_deps)},
};

/* A ':'-separated directory list from the environment (empty entries skipped, relative ones made
 * absolute) replaces *dst. */
static int env_dirs(st_strv *dst, const char *value)
{
    st_strv dirs = {0};
    char *copy = st_strdup(value), *save = NULL;
    for (char *tok = copy ? strtok_r(copy, ":", &save) : NULL; tok; tok = strtok_r(NULL, ":", &save))
        st_strv_push_owned(&dirs, st_path_absolute(NULL, tok));
    if (!copy || dirs.oom) {
        free(copy);
        st_strv_free(&dirs);
        return ST_ERR_NOMEM;
    }
    free(copy);
    st_strv_free(dst);
    *dst = dirs;
    return 0;
}

int st_settings_load_env(st_settings *s)
{
    const char *which, *v;
    char where[96];
    int rc;
#define ENV1(name) ((which = (name)), (v = getenv(name)) && *v)
#define WHERE() (snprintf(where, sizeof(where), "environment variable %s", which), where)
    if (ENV1("SELF_TEST_ARGS") && (rc = st_set_pytest_args(s, v, WHERE())) < 0)
        return rc;
    if (ENV1("SELF_TEST_SHARDS")) {
        if ((rc = st_set_shards(&s->shards, v, WHERE())) < 0)
            return rc;
        s->shards_option = 1;
    }
    if (ENV1("SELF_TEST_SHARD_SECONDS") &&
        (rc = st_set_seconds(&s->shard_seconds, v, WHERE())) < 0)
        return rc;
    if (ENV1("SELF_TEST_WORKERS")) {
        if ((rc = st_set_uint(&s->workers, v, 1, WHERE())) < 0)
            return rc;
        s->workers_set = 1;
    }
    if (ENV1("SELF_TEST_TIMEOUT") && (rc = st_set_seconds(&s->timeout_s, v, WHERE())) < 0)
        return rc;
    if (ENV1("SELF_TEST_KEEP_RUNS") && (rc = st_set_uint(&s->keep_runs, v, 0, WHERE())) < 0)
        return rc;
    if (ENV1("SELF_TEST_RETRIES") && (rc = st_set_retries(&s->retries, v, WHERE())) < 0)
        return rc;
    if (ENV1("SELF_TEST_RERUN_FAILURES") &&
        (rc = st_set_reruns(&s->rerun_failures, v, WHERE())) < 0)
        return rc;
    if (ENV1("SELF_TEST_METRICS_PORT")) {
        long long port;
        if (st_parse_long(v, &port) < 0 || port < 0 || port > 65535) {
            st_error("%s: '%s' is not a port number (0-65535)", WHERE(), v);
            return ST_ERR_INVALID;
        }
        s->metrics_port = (long)port;
    }
    if (ENV1("SELF_TEST_LOCK_FILE") && (rc = st_set_string(&s->lock_file, v)) < 0)
        return rc;
    if (ENV1("SELF_TEST_REPORT_DIR") && (rc = st_set_string(&s->report_dir, v)) < 0)
        return rc;
    if (ENV1("SELF_TEST_JUNIT_XML")) {
        char *abs = st_path_absolute(NULL, v); /* relative to the working directory */
        if (!abs)
            return ST_ERR_NOMEM;
        free(s->junit_xml);
        s->junit_xml = abs;
    }
    if (ENV1("SANDBOX_DATA_DIR") && (rc = st_set_string(&s->data_dir, v)) < 0)
        return rc;
    if (ENV1("SANDBOX_REPO_PATH")) {
        char *abs = st_path_absolute(NULL, v);
        if (!abs)
            return ST_ERR_NOMEM;
        free(s->project_root);
        s->project_root = abs;
    }
    if (ENV1("SELF_TEST_PYTHON") && (rc = st_set_string(&s->python, v)) < 0)
        return rc;
    if (ENV1("SELF_TEST_SUPPORT_DIR") && (rc = st_set_string(&s->support_dir, v)) < 0)
        return rc;
    if (ENV1("SELF_TEST_PLUGIN_PATH") && (rc = env_dirs(&s->plugin_path, v)) < 0)
        return rc;
    /* set but empty: no system plugin directory (as GST_PLUGIN_SYSTEM_PATH) */
    if ((v = getenv("SELF_TEST_PLUGIN_SYSTEM_PATH")) != NULL) {
        if ((rc = env_dirs(&s->plugin_system_path, v)) < 0)
            return rc;
        s->plugin_system_path_set = 1;
    }
    if (ENV1("SELF_TEST_PYTHONPATH") && (rc = st_set_pythonpath(s, v, WHERE())) < 0)
        return rc;
    if (ENV1("SANDBOX_SKIP_DIRS")) {
        st_strv dirs = {0};
        char *copy = st_strdup(v), *save = NULL;
        for (char *tok = copy ? strtok_r(copy, ":", &save) : NULL; tok; tok = strtok_r(NULL, ":", &save))
            st_strv_push(&dirs, tok);
        free(copy);
        st_strv_free(&s->skip_dirs);
        s->skip_dirs = dirs;
    }
    if (ENV1("SELF_TEST_ORPHAN_EXCLUDE") && (rc = st_set_orphan_exclude(s, v, WHERE())) < 0)
        return rc;
    if (ENV1("SELF_TEST_ORPHAN_TIMEOUT") &&
        (rc = st_set_seconds(&s->orphan_timeout_s, v, WHERE())) < 0)
        return rc;
    if (ENV1("SELF_TEST_ORPHAN_CHECK_MODE")) {
        if (strcmp(v, "fork") != 0 && strcmp(v, "process") != 0) {
            st_error("%s: must be \"fork\" or \"process\", not '%s'", WHERE(), v);
            return ST_ERR_INVALID;
        }
        if ((rc = st_set_string(&s->orphan_check_mode, v)) < 0)
            return rc;
    }
    for (size_t i = 0; i < sizeof(env_bools) / sizeof(env_bools[0]); i++) {
        v = env_first(env_bools[i].names, &which);
        if (v && ((rc = st_set_bool((int *)((char *)s + env_bools[i].offset), v, WHERE())) < 0 ||
                  (rc = st_settings_given(s, env_bools[i].offset, ST_GIVEN_ENV, WHERE())) < 0))
            return rc;
    }
#undef ENV1
#undef WHERE
    return ST_OK;
}

/* ---- derived settings ----------------------------------------------------------------------- */

/* The git top level of the cwd (a directory holding .git, dir or file), else the cwd. */
static char *default_root(void)
{
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd)))
        return NULL;
    char *dir = st_strdup(cwd);
    while (dir) {
        char *git = st_path_join(dir, ".git");
        int found = git && access(git, F_OK) == 0;
        free(git);
        if (found)
            return dir;
        if (strcmp(dir, "/") == 0)
            break;
        char *up = st_path_dirname(dir);
        free(dir);
        dir = up;
    }
    free(dir);
    return st_strdup(cwd);
}

static int make_absolute(char **p, const char *base)
{
    char *abs = st_path_absolute(base, *p);
    if (!abs)
        return ST_ERR_NOMEM;
    free(*p);
    *p = abs;
    return 0;
}

/* ---- discovery-python's switches ---------------------------------------------------------- */

/* Orphan and isolated discovery are discovery-python's business, so since plugin ABI 1.5 these
 * are its settings (settings = { recursive_orphans = false; }) and the generic discovery
 * options no longer carry them. Their old spellings stay: the top-level settings, the flags and
 * the variables are routed into the settings of every discovery-python instance. A flag or a
 * variable beats the plugin's own setting (as a flag beats the file everywhere); the plugin's
 * own setting beats the top-level one. */
static const struct {
    const char *key;
    size_t offset;
} dp_switches[ST_DP_SWITCHES] = {
    {"discover_orphans", OFF(discover_orphans)},
    {"recursive_orphans", OFF(recursive_orphans)},
    {"auto_include_isolated", OFF(auto_include_isolated)},
    {"recursive_isolated", OFF(recursive_isolated)},
};

int st_settings_given(st_settings *s, size_t offset, int given, const char *where)
{
    assert(offset < sizeof(*s) && where != NULL);
    assert(given >= ST_GIVEN_FILE && given <= ST_GIVEN_OPTION);
    for (size_t i = 0; i < ST_DP_SWITCHES; i++) {
        if (dp_switches[i].offset != offset || given < s->dp_given[i])
            continue;
        char *w = st_strdup(where);
        if (!w)
            return ST_ERR_NOMEM;
        free(s->dp_where[i]);
        s->dp_where[i] = w;
        s->dp_given[i] = given;
    }
    return 0;
}

int st_settings_route_discovery(st_settings *s, config_setting_t **group, const char *new_name)
{
    for (size_t i = 0; i < ST_DP_SWITCHES; i++) {
        if (s->dp_given[i] == ST_GIVEN_DEFAULT)
            continue;
        if (*group && s->dp_given[i] == ST_GIVEN_FILE &&
            config_setting_get_member(*group, dp_switches[i].key))
            continue; /* the plugin's own setting beats the top-level one */
        if (!s->cfg_loaded) {
            config_init(&s->cfg);
            s->cfg_loaded = 1;
        }
        if (!*group) {
            config_setting_t *root = config_root_setting(&s->cfg);
            *group = config_setting_get_member(root, new_name);
            if (!*group)
                *group = config_setting_add(root, new_name, CONFIG_TYPE_GROUP);
            if (!*group)
                return ST_ERR_NOMEM;
        }
        config_setting_remove(*group, dp_switches[i].key);
        config_setting_t *v = config_setting_add(*group, dp_switches[i].key, CONFIG_TYPE_BOOL);
        if (!v || !config_setting_set_bool(v, *(int *)((char *)s + dp_switches[i].offset)))
            return ST_ERR_NOMEM;
        /* the plugin's messages about it name the spelling that set it (cfg_where) */
        config_setting_set_hook(v, s->dp_where[i]);
    }
    return 0;
}

/* --metrics-port / SELF_TEST_METRICS_PORT alone turn the Prometheus exporter on: the port goes
 * into the settings of the configured exporter-prometheus entry (beating the file's port, as a
 * flag or variable beats the file), or into a new entry with otherwise default settings. */
static int add_metrics_exporter(st_settings *s)
{
    if (!s->cfg_loaded) {
        config_init(&s->cfg);
        s->cfg_loaded = 1;
    }
    st_plugin_conf *pc = NULL;
    for (size_t i = 0; i < s->n_plugins; i++)
        if (strcmp(s->plugins[i].name, "exporter-prometheus") == 0)
            pc = &s->plugins[i];
    if (!pc) {
        st_plugin_conf *grown = realloc(s->plugins, (s->n_plugins + 1) * sizeof(*grown));
        if (!grown)
            return ST_ERR_NOMEM;
        s->plugins = grown;
        pc = &s->plugins[s->n_plugins++];
        memset(pc, 0, sizeof(*pc));
        pc->kind = st_strdup("exporter");
        pc->name = st_strdup("exporter-prometheus");
        pc->where = st_strdup("--metrics-port/SELF_TEST_METRICS_PORT");
        if (!pc->kind || !pc->name || !pc->where)
            return ST_ERR_NOMEM;
    }
    if (!pc->settings) {
        config_setting_t *root = config_root_setting(&s->cfg);
        config_setting_t *g = config_setting_add(root, "selftest_metrics_exporter", CONFIG_TYPE_GROUP);
        if (!g)
            g = config_setting_get_member(root, "selftest_metrics_exporter");
        pc->settings = g;
    }
    if (!pc->settings)
        return ST_ERR_NOMEM;
    config_setting_remove(pc->settings, "port");
    config_setting_t *port = config_setting_add(pc->settings, "port", CONFIG_TYPE_INT);
    return port && config_setting_set_int(port, (int)s->metrics_port) ? ST_OK : ST_ERR_NOMEM;
}

int st_settings_set_group_string(st_settings *s, const char *group, const char *key,
                                 const char *value)
{
    return st_settings_set_group_option(s, group, key, value, NULL);
}

int st_settings_set_group_option(st_settings *s, const char *group, const char *key,
                                 const char *value, const char *where)
{
    if (!s->cfg_loaded) {
        config_init(&s->cfg);
        s->cfg_loaded = 1;
    }
    config_setting_t *root = config_root_setting(&s->cfg);
    config_setting_t *g = config_setting_get_member(root, group);
    if (!g)
        g = config_setting_add(root, group, CONFIG_TYPE_GROUP);
    if (!g)
        return ST_ERR_NOMEM;
    config_setting_remove(g, key);
    config_setting_t *v = config_setting_add(g, key, CONFIG_TYPE_STRING);
    if (!v || !config_setting_set_string(v, value))
        return ST_ERR_NOMEM;
    /* plugins' messages about this value name the option (cfg_where reads the hook) */
    if (where)
        config_setting_set_hook(v, (void *)where);
    return 0;
}

int st_settings_remove_group_key(st_settings *s, const char *group, const char *key)
{
    if (!s->cfg_loaded)
        return 0;
    config_setting_t *g = config_setting_get_member(config_root_setting(&s->cfg), group);
    if (g && config_setting_get_member(g, key))
        return config_setting_remove(g, key) == CONFIG_TRUE ? ST_OK : ST_ERR_INTERNAL;
    return 0;
}

int st_settings_set_group_list_option(st_settings *s, const char *group, const char *key,
                                      const char *const *values, size_t n, const char *where)
{
    if (!s->cfg_loaded) {
        config_init(&s->cfg);
        s->cfg_loaded = 1;
    }
    config_setting_t *root = config_root_setting(&s->cfg);
    config_setting_t *g = config_setting_get_member(root, group);
    if (!g)
        g = config_setting_add(root, group, CONFIG_TYPE_GROUP);
    if (!g)
        return ST_ERR_NOMEM;
    config_setting_remove(g, key);
    config_setting_t *v = config_setting_add(g, key, CONFIG_TYPE_ARRAY);
    if (!v)
        return ST_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        if (!config_setting_set_string_elem(v, -1, values[i]))
            return ST_ERR_NOMEM;
    if (where)
        config_setting_set_hook(v, (void *)where);
    return 0;
}

/* pythonpath: each entry an existing directory, relative entries relative to the root; the
 * entries inside the root also repo-relative (source roots of the import graph). */
static int finish_pythonpath(st_settings *s)
{
    char real_root[PATH_MAX];
    st_strv_free(&s->pythonpath_rel);
    if (s->pythonpath.n && !realpath(s->project_root, real_root)) {
        st_error("project root %s: %s", s->project_root, strerror(errno));
        return ST_ERR_INVALID;
    }
    for (size_t i = 0; i < s->pythonpath.n; i++) {
        const char *given = s->pythonpath.v[i];
        const char *where = s->pythonpath_where ? s->pythonpath_where : "pythonpath";
        if (!given[0] || strchr(given, ':')) {
            st_error("%s: pythonpath entry '%s' %s", where, given,
                     given[0] ? "contains ':' (PYTHONPATH separates entries with it)"
                              : "is empty");
            return ST_ERR_INVALID;
        }
        char *abs = st_path_absolute(s->project_root, given);
        char real[PATH_MAX];
        struct stat st;
        if (!abs)
            return ST_ERR_NOMEM;
        if (stat(abs, &st) < 0 || !S_ISDIR(st.st_mode)) {
            st_error("%s: pythonpath entry '%s' (%s) is not a directory%s", where, given, abs,
                     given[0] == '/' ? "" : " (relative entries are relative to the project root)");
            free(abs);
            return ST_ERR_INVALID;
        }
        free(s->pythonpath.v[i]);
        s->pythonpath.v[i] = abs;
        char *rel = realpath(abs, real) ? st_path_relative_to(real_root, real) : NULL;
        if (rel && strcmp(rel, ".") != 0)
            st_strv_push(&s->pythonpath_rel, rel);
        free(rel);
    }
    return s->pythonpath_rel.oom ? ST_ERR_NOMEM : ST_OK;
}

int st_settings_adopt_pytest_pythonpath(st_settings *s, const st_strv *dirs, const char *inipath)
{
    if (s->pythonpath.n && !s->pythonpath_pytest)
        return ST_OK; /* the setting, the variable or --pythonpath */
    st_strv_free(&s->pythonpath);
    st_strv_free(&s->pythonpath_rel);
    free(s->pythonpath_where);
    s->pythonpath_where = NULL;
    s->pythonpath_pytest = 0;
    st_strv kept = {0};
    const char *ini = inipath ? inipath : "pytest's configuration";
    for (size_t i = 0; dirs && i < dirs->n; i++) {
        const char *d = dirs->v[i];
        char *abs = d[0] && !strchr(d, ':') ? st_path_absolute(s->project_root, d) : NULL;
        struct stat st;
        if (abs && stat(abs, &st) == 0 && S_ISDIR(st.st_mode))
            st_strv_push(&kept, d);
        else
            st_warn("pythonpath entry '%s' in %s is not a directory%s; not an import root", d,
                    ini, d[0] ? " (or contains ':')" : "");
        free(abs);
    }
    if (kept.oom) {
        st_strv_free(&kept);
        return ST_ERR_NOMEM;
    }
    if (!kept.n)
        return ST_OK;
    s->pythonpath = kept;
    s->pythonpath_where = st_asprintf("pythonpath in %s", ini);
    if (!s->pythonpath_where)
        return ST_ERR_NOMEM;
    int rc = finish_pythonpath(s);
    if (rc < 0)
        return rc;
    s->pythonpath_pytest = 1;
    st_info("import roots from pythonpath in %s: %zu director%s", ini, kept.n,
            kept.n == 1 ? "y" : "ies");
    return ST_OK;
}

int st_settings_finish(st_settings *s)
{
    int rc;
    if (!s->project_root)
        s->project_root = default_root();
    if (!s->project_root)
        return ST_ERR_NOMEM;
    if ((rc = make_absolute(&s->project_root, NULL)) < 0)
        return rc;
    struct stat st;
    if (stat(s->project_root, &st) < 0 || !S_ISDIR(st.st_mode)) {
        st_error("project root %s is not a directory", s->project_root);
        return ST_ERR_INVALID;
    }
    if (!s->data_dir)
        s->data_dir = st_path_join(s->project_root, "sandbox_data");
    if (!s->data_dir)
        return ST_ERR_NOMEM;
    if ((rc = make_absolute(&s->data_dir, s->project_root)) < 0)
        return rc;
    if (stat(s->data_dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        st_error("data dir %s is not a directory (set data_dir or SANDBOX_DATA_DIR)", s->data_dir);
        return ST_ERR_INVALID;
    }
    if (!s->report_dir)
        s->report_dir = st_path_join(s->data_dir, "self_test_reports");
    if (!s->report_dir)
        return ST_ERR_NOMEM;
    if ((rc = make_absolute(&s->report_dir, s->project_root)) < 0)
        return rc;
    /* folded ("a/../b" -> "b"): container runtimes mount and copy these paths as given */
    if ((rc = make_absolute(&s->support_dir, NULL)) < 0)
        return rc;
    if (!s->lock_file)
        s->lock_file = st_path_join(s->data_dir, "self_test.lock");
    if (!s->lock_file)
        return ST_ERR_NOMEM;
    if ((rc = make_absolute(&s->lock_file, s->project_root)) < 0)
        return rc;
    if (!s->quarantine_file)
        s->quarantine_file = st_path_join(s->data_dir, "quarantine.json");
    if (!s->quarantine_file)
        return ST_ERR_NOMEM;
    if ((rc = make_absolute(&s->quarantine_file, s->project_root)) < 0)
        return rc;
    if (strcmp(s->container_fallback, "host") != 0 && strcmp(s->container_fallback, "fail") != 0) {
        st_error("container_fallback must be \"host\" or \"fail\", not '%s'", s->container_fallback);
        return ST_ERR_INVALID;
    }
    /* the readers of metrics.db look back over flaky_window runs (the flakiness score, the
     * quarantine's passing streak) and ST_HISTORY_RUNS (a batch's recorded duration) */
    if (s->keep_runs == ST_KEEP_RUNS_UNSET)
        s->keep_runs = s->flaky_window > ST_KEEP_RUNS_DEFAULT ? s->flaky_window
                                                             : ST_KEEP_RUNS_DEFAULT;
    if (s->keep_runs && (s->keep_runs < ST_KEEP_RUNS_MIN || s->keep_runs < s->flaky_window)) {
        st_error("keep_runs is %u: it must be 0 (keep every run) or at least %u and at least "
                 "flaky_window (%u)%s%s",
                 s->keep_runs, ST_KEEP_RUNS_MIN, s->flaky_window, s->config_path ? "; in " : "",
                 s->config_path ? s->config_path : "");
        return ST_ERR_INVALID;
    }
    if ((rc = finish_pythonpath(s)) < 0)
        return rc;
    if (s->metrics_port >= 0 && (rc = add_metrics_exporter(s)) < 0) {
        st_error("cannot configure exporter-prometheus for metrics port %ld", s->metrics_port);
        return rc;
    }

    if (s->cfg_loaded) {
        const char *group = strcmp(s->runtime, "host") == 0 ? "host" : "container";
        s->runtime_settings = config_lookup(&s->cfg, group);
    }
    return ST_OK;
}

void st_settings_free(st_settings *s)
{
    free(s->config_path);
    free(s->config_dir);
    if (s->cfg_loaded)
        config_destroy(&s->cfg);
    free(s->project_root);
    free(s->data_dir);
    free(s->report_dir);
    free(s->lock_file);
    st_strv_free(&s->paths);
    st_strv_free(&s->path_shard_names);
    free(s->path_shards);
    st_strv_free(&s->pytest_args);
    free(s->python);
    free(s->runtime);
    free(s->container_fallback);
    free(s->orphan_check_mode);
    st_strv_free(&s->plugin_path);
    st_strv_free(&s->plugin_system_path);
    free(s->support_dir);
    st_strv_free(&s->skip_dirs);
    st_strv_free(&s->pythonpath);
    st_strv_free(&s->pythonpath_rel);
    free(s->pythonpath_where);
    st_strv_free(&s->orphan_exclude);
    free(s->history_file);
    free(s->junit_xml);
    free(s->quarantine_file);
    for (size_t i = 0; i < ST_DP_SWITCHES; i++)
        free(s->dp_where[i]);
    for (size_t i = 0; i < s->n_plugins; i++) {
        free(s->plugins[i].kind);
        free(s->plugins[i].name);
        free(s->plugins[i].where);
    }
    free(s->plugins);
    memset(s, 0, sizeof(*s));
}
