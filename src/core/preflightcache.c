/* SPDX-License-Identifier: MIT */
/* preflightcache: the preflight's answers per interpreter or image (see preflightcache.h). */
#include "config.h"

#include "preflightcache.h"

#include "json.h"
#include "log.h"
#include "runner.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PF_CACHE_MAX_FILE (4u << 20)

/* The config files pytest looks for while finding its rootdir and ini file. */
static const char *const config_names[] = {"pytest.ini", ".pytest.ini", "pyproject.toml",
                                           "tox.ini", "setup.cfg",
                                           /* what pyenv's shims read to pick the interpreter */
                                           ".python-version", NULL};

/* "ino:size:mtime" of path (following symlinks), or "absent". */
static char *signature(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return st_strdup("absent");
    return st_asprintf("%llu:%lld:%lld.%09ld:%o", (unsigned long long)st.st_ino,
                       (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                       (long)st.st_mtim.tv_nsec, (unsigned)(st.st_mode & S_IFMT));
}

/* The interpreter file the host runtime would execute: name as execvp finds it. */
static char *resolve_interpreter(const char *name)
{
    if (strchr(name, '/'))
        return access(name, X_OK) == 0 ? realpath(name, NULL) : NULL;
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    const char *p = path;
    while (*p) {
        size_t n = strcspn(p, ":");
        char *cand = st_asprintf("%.*s/%s", (int)n, n ? p : ".", name);
        if (!cand)
            return NULL;
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) {
            char *abs = cand[0] == '/' ? cand : realpath(cand, NULL);
            if (abs != cand)
                free(cand);
            return abs;
        }
        free(cand);
        p += n;
        if (*p == ':')
            p++;
    }
    return NULL;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

#define END_OF(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))

char *st_pfcache_identity(const st_settings *s, st_instance *runtime, int config_asked,
                          const char *code)
{
    const st_runtime_ops *ops = runtime->ops;
    const char *rname = ops->runtime_name ? ops->runtime_name : s->runtime;
    st_buf b = {0};
    char envid[512] = "";
    if (ops->struct_size >= END_OF(st_runtime_ops, environment_id) && ops->environment_id) {
        if (ops->environment_id(runtime->ctx, envid, sizeof(envid)) != ST_OK || !envid[0])
            return NULL;
        st_buf_printf(&b, "%s %s python=%s", rname, envid, s->python);
    } else if (strcmp(rname, "host") == 0) {
        char *exe = resolve_interpreter(s->python);
        char *real = exe ? realpath(exe, NULL) : NULL;
        char *sig = real ? signature(real) : NULL;
        if (sig)
            st_buf_printf(&b, "host python=%s exe=%s real=%s file=%s", s->python, exe, real, sig);
        free(exe);
        free(real);
        if (!sig)
            return NULL;
        free(sig);
    } else {
        return NULL; /* a runtime that cannot say what runs inside it */
    }
    int oom = 0;
    char *pp = st_pythonpath_env(s, 0, &oom);
    st_buf_printf(&b, " %s", pp ? pp : "PYTHONPATH=");
    free(pp);
    const char *env_names[] = {"PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTHONHOME", "PYTHONNOUSERSITE",
                               "PYTHONUSERBASE", "PYENV_VERSION", "VIRTUAL_ENV", NULL};
    for (size_t i = 0; env_names[i]; i++) {
        const char *v = getenv(env_names[i]);
        if (v)
            st_buf_printf(&b, " %s=%s", env_names[i], v);
    }
    st_buf_printf(&b, " root=%s config=%d code=%016llx args=[", s->project_root,
                  config_asked ? 1 : 0, (unsigned long long)fnv1a(code));
    for (size_t i = 0; i < s->pytest_args.n; i++)
        st_buf_printf(&b, "%s%s", i ? "\x1f" : "", s->pytest_args.v[i]);
    st_buf_puts(&b, "]");
    char *id = st_buf_steal(&b);
    return oom ? (free(id), NULL) : id;
}

/* Reads the cache file: the root object (NULL: absent or malformed, *malformed set and logged
 * for the latter). Returns ST_OK or ST_ERR_NOMEM. */
static int read_cache(const char *file, yajl_val *out, int *malformed)
{
    char err[300];
    int rc = st_json_read_versioned(file, PF_CACHE_MAX_FILE, 1, "entries", out, err, sizeof(err));
    if (rc == ST_ERR_IO)
        st_error("%s: cannot read it (%s); the interpreter preflight runs, and the file is left "
                 "as it is",
                 file, err);
    else if (rc == ST_ERR_MALFORMED)
        st_error("%s: %s; the interpreter preflight runs, and the file is left as it is (fix or "
                 "remove it)",
                 file, err);
    *malformed = rc != ST_OK && rc != ST_ERR_NOMEM;
    return rc == ST_ERR_NOMEM ? rc : ST_OK;
}

/* 1 when the entry is well formed and every file it watches is as recorded. */
static int entry_fresh(yajl_val e)
{
    yajl_val files = st_jv_get(e, "files"), exists = st_jv_get(e, "exists");
    if (!YAJL_IS_OBJECT(e) || !st_jv_str(e, "answer") || !files || !YAJL_IS_OBJECT(files) ||
        !exists || !YAJL_IS_OBJECT(exists))
        return 0;
    for (size_t i = 0; i < files->u.object.len; i++) {
        const char *want = YAJL_GET_STRING(files->u.object.values[i]);
        if (!want)
            return 0;
        char *sig = signature(files->u.object.keys[i]);
        int same = sig && strcmp(sig, want) == 0;
        free(sig);
        if (!same)
            return 0;
    }
    for (size_t i = 0; i < exists->u.object.len; i++) {
        yajl_val v = exists->u.object.values[i];
        if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
            return 0;
        struct stat st;
        int present = lstat(exists->u.object.keys[i], &st) == 0;
        if (present != YAJL_IS_TRUE(v))
            return 0;
    }
    return 1;
}

int st_pfcache_lookup(const char *data_dir, const char *identity, char **answer)
{
    *answer = NULL;
    char *file = st_path_join(data_dir, ST_PREFLIGHT_CACHE_FILE);
    if (!file)
        return ST_ERR_NOMEM;
    yajl_val root = NULL;
    int malformed;
    int rc = read_cache(file, &root, &malformed);
    free(file);
    if (rc < 0)
        return ST_ERR_NOMEM;
    if (!root)
        return 0;
    yajl_val entries = st_jv_get(root, "entries"), e = NULL;
    for (size_t i = 0; i < entries->u.object.len && !e; i++)
        if (strcmp(entries->u.object.keys[i], identity) == 0)
            e = entries->u.object.values[i];
    rc = 0;
    if (e && entry_fresh(e)) {
        *answer = st_strdup(st_jv_str(e, "answer"));
        rc = *answer ? 1 : ST_ERR_NOMEM;
    }
    yajl_tree_free(root);
    return rc;
}

static int has_magic(const char *p)
{
    return strpbrk(p, "*?[") != NULL;
}

/* Writes one entry's object: answer, stored_at, and the watched files as they are now. */
static int gen_new_entry(yajl_gen g, const st_settings *s, const char *answer,
                         const st_strv *host_paths, const char *inipath,
                         const st_strv *testpaths, double now)
{
    st_strv files = {0};
    /* the project root and each ancestor: the files pytest's rootdir search looks at */
    char *dir = st_strdup(s->project_root);
    while (dir) {
        for (size_t i = 0; config_names[i]; i++)
            st_strv_push_owned(&files, st_path_join(dir, config_names[i]));
        if (strcmp(dir, "/") == 0 || !*dir)
            break;
        char *up = st_path_dirname(dir);
        free(dir);
        dir = up;
    }
    free(dir);
    if (inipath && *inipath)
        st_strv_push_owned(&files, st_path_join(s->project_root, inipath));
    for (size_t i = 0; host_paths && i < host_paths->n; i++)
        if (host_paths->v[i][0] == '/')
            st_strv_push(&files, host_paths->v[i]);
    int rc = files.oom ? ST_ERR_NOMEM : ST_OK;
    yajl_gen_map_open(g);
    st_jg_kstr(g, "answer", answer);
    st_jg_key(g, "exists");
    yajl_gen_map_open(g);
    for (size_t i = 0; rc == 0 && testpaths && i < testpaths->n; i++) {
        char *abs = st_path_join(s->project_root, testpaths->v[i]);
        if (!abs) {
            rc = ST_ERR_NOMEM;
            break;
        }
        struct stat st;
        st_jg_kbool(g, abs, lstat(abs, &st) == 0);
        free(abs);
    }
    yajl_gen_map_close(g);
    st_jg_key(g, "files");
    yajl_gen_map_open(g);
    for (size_t i = 0; rc == 0 && i < files.n; i++) {
        char *sig = signature(files.v[i]);
        if (!sig) {
            rc = ST_ERR_NOMEM;
            break;
        }
        st_jg_kstr(g, files.v[i], sig);
        free(sig);
    }
    yajl_gen_map_close(g);
    st_jg_kdouble(g, "stored_at", now);
    yajl_gen_map_close(g);
    st_strv_free(&files);
    return rc;
}

/* Copies a parsed JSON value into the generator. */
static void gen_value(yajl_gen g, yajl_val v)
{
    if (YAJL_IS_OBJECT(v)) {
        yajl_gen_map_open(g);
        for (size_t i = 0; i < v->u.object.len; i++) {
            st_jg_key(g, v->u.object.keys[i]);
            gen_value(g, v->u.object.values[i]);
        }
        yajl_gen_map_close(g);
    } else if (YAJL_IS_ARRAY(v)) {
        yajl_gen_array_open(g);
        for (size_t i = 0; i < v->u.array.len; i++)
            gen_value(g, v->u.array.values[i]);
        yajl_gen_array_close(g);
    } else if (YAJL_IS_STRING(v)) {
        st_jg_str(g, YAJL_GET_STRING(v));
    } else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        st_jg_bool(g, YAJL_IS_TRUE(v));
    } else if (YAJL_IS_NUMBER(v)) {
        st_jg_double(g, YAJL_GET_DOUBLE(v));
    } else {
        st_jg_null(g);
    }
}

static double stored_at(yajl_val e)
{
    double at = 0;
    st_jv_double(e, "stored_at", &at);
    return at;
}

int st_pfcache_store(const st_settings *s, const char *identity, const char *answer,
                     const st_strv *host_paths, const char *inipath, const st_strv *testpaths)
{
    for (size_t i = 0; testpaths && i < testpaths->n; i++)
        if (has_magic(testpaths->v[i]))
            return 0; /* what a pattern matches changes with the tree: asked every time */
    char *file = st_path_join(s->data_dir, ST_PREFLIGHT_CACHE_FILE);
    if (!file)
        return ST_ERR_NOMEM;
    yajl_val root = NULL;
    int malformed = 0;
    if (read_cache(file, &root, &malformed) < 0 || malformed) {
        if (malformed)
            st_warn("%s: not updated: it could not be read cleanly (see the error above)", file);
        free(file);
        return malformed ? ST_ERR_MALFORMED : ST_ERR_NOMEM;
    }
    yajl_val entries = root ? st_jv_get(root, "entries") : NULL;
    size_t n_old = entries ? entries->u.object.len : 0;
    /* keep the newest ST_PREFLIGHT_CACHE_MAX - 1 other entries */
    unsigned char *keep = calloc(n_old + 1, 1);
    size_t kept = 0;
    int rc = keep ? ST_OK : ST_ERR_NOMEM;
    for (size_t i = 0; rc == 0 && i < n_old; i++)
        keep[i] = strcmp(entries->u.object.keys[i], identity) != 0 &&
                  YAJL_IS_OBJECT(entries->u.object.values[i]);
    for (size_t i = 0; rc == 0 && i < n_old; i++)
        kept += keep[i];
    while (rc == 0 && kept > ST_PREFLIGHT_CACHE_MAX - 1) {
        size_t oldest = SIZE_MAX;
        for (size_t i = 0; i < n_old; i++)
            if (keep[i] && (oldest == SIZE_MAX || stored_at(entries->u.object.values[i]) <
                                                      stored_at(entries->u.object.values[oldest])))
                oldest = i;
        keep[oldest] = 0;
        kept--;
    }
    yajl_gen g = rc == 0 ? st_jg_new(1) : NULL;
    if (!g)
        rc = ST_ERR_NOMEM;
    if (rc == 0) {
        yajl_gen_map_open(g);
        st_jg_key(g, "entries");
        yajl_gen_map_open(g);
        for (size_t i = 0; i < n_old; i++) {
            if (!keep[i])
                continue;
            st_jg_key(g, entries->u.object.keys[i]);
            gen_value(g, entries->u.object.values[i]);
        }
        st_jg_key(g, identity);
        rc = gen_new_entry(g, s, answer, host_paths, inipath, testpaths, st_wall_clock());
        yajl_gen_map_close(g);
        st_jg_kint(g, "version", 1);
        yajl_gen_map_close(g);
    }
    char *text = g ? st_jg_finish(g, 1) : NULL;
    if (rc == 0 && !text)
        rc = ST_ERR_NOMEM;
    if (rc == 0) {
        char *dir = st_path_dirname(file);
        int wrc = dir ? st_mkdir_p(dir, 0755) : -ENOMEM;
        free(dir);
        if (wrc == 0)
            wrc = st_write_file_atomic(file, text, strlen(text), 0644);
        if (wrc < 0) {
            st_warn("%s: cannot write it: %s", file, strerror(-wrc));
            rc = st_status_of_errno(wrc);
        }
    } else {
        st_warn("%s: out of memory", file);
    }
    free(text);
    free(keep);
    yajl_tree_free(root);
    free(file);
    return rc;
}
