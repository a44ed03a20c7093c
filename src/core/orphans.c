/* SPDX-License-Identifier: MIT */
/* orphans: load, update and save orphan_modules.json and orphan_classifications.json
 * (docs/spec.md §7.4); the rules are in orphans.h. */
#include "config.h"

#include "orphans.h"

#include "json.h"
#include "log.h"
#include "../../plugins/common/modulemap.h"

#include <errno.h>
#include <fnmatch.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const known_classes[] = {"candidate", "legacy", "redundant", "failed",
                                            "passed", "unmet", NULL};

static int known_class(const char *s)
{
    for (size_t i = 0; known_classes[i]; i++)
        if (strcmp(s, known_classes[i]) == 0)
            return 1;
    return 0;
}

static void orphan_free(st_orphan *o)
{
    free(o->path);
    st_strv_free(&o->parents);
    free(o->classification);
    free(o->reason);
    memset(o, 0, sizeof(*o));
}

/* Binary search: index of path, or where it would go (with *found 0). */
static size_t find_index(const st_orphan_cache *c, const char *path, int *found)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(c->v[mid].path, path);
        if (cmp == 0) {
            *found = 1;
            return mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

const st_orphan *st_orphans_find(const st_orphan_cache *c, const char *path)
{
    int found;
    size_t i = find_index(c, path, &found);
    return found ? &c->v[i] : NULL;
}

/* The entry of path, created empty when absent; NULL on OOM. */
static st_orphan *get_entry(st_orphan_cache *c, const char *path)
{
    int found;
    size_t i = find_index(c, path, &found);
    if (found)
        return &c->v[i];
    if (ST_GROW(c->v, c->cap, c->n + 1) < 0)
        return NULL;
    char *copy = st_strdup(path);
    if (!copy)
        return NULL;
    memmove(&c->v[i + 1], &c->v[i], (c->n - i) * sizeof(*c->v));
    memset(&c->v[i], 0, sizeof(c->v[i]));
    c->v[i].path = copy;
    c->n++;
    return &c->v[i];
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Replaces o's parents with a sorted, deduplicated copy of list[0..n). */
static int set_parents(st_orphan *o, const char *const *list, size_t n)
{
    st_strv_free(&o->parents);
    for (size_t i = 0; i < n; i++)
        if (list[i] && !st_strv_contains(&o->parents, list[i]))
            st_strv_push(&o->parents, list[i]);
    if (o->parents.n > 1)
        qsort(o->parents.v, o->parents.n, sizeof(char *), cmp_str);
    return o->parents.oom ? ST_ERR_NOMEM : ST_OK;
}


/* ---- reading --------------------------------------------------------------------------------- */

typedef enum { F_MODULES, F_CLASSES } file_kind;

/* Does the module file exist as a regular file under the root? */
static int file_exists(const char *root, const char *rel)
{
    char *abs = st_path_join(root, rel);
    struct stat st;
    int ok = abs && stat(abs, &st) == 0 && S_ISREG(st.st_mode);
    free(abs);
    return ok;
}

/* Checks one key; returns 1 to keep it. Sets *bad for a rejected (unsafe) key. */
static int accept_key(st_orphan_cache *c, const char *file, const char *key, int *bad)
{
    if (!st_path_is_safe_relative(c->root, key)) {
        st_error("%s: '%s' is not a path inside the project root (absolute, '..' or a symlink "
                 "out): rejected; the file is left as it is and not rewritten this run",
                 file, key);
        *bad = 1;
        return 0;
    }
    if (!file_exists(c->root, key)) {
        st_info("%s: dropped '%s': the file is gone", file, key);
        c->dirty = 1;
        return 0;
    }
    return 1;
}

/* Strings of a JSON array (others ignored) as a NULL-terminated borrowed vector. */
static const char **array_strings(yajl_val arr, size_t *n)
{
    size_t len = arr && YAJL_IS_ARRAY(arr) ? arr->u.array.len : 0;
    const char **v = calloc(len + 1, sizeof(*v));
    *n = 0;
    if (!v)
        return NULL;
    for (size_t i = 0; i < len; i++)
        if (YAJL_IS_STRING(arr->u.array.values[i]))
            v[(*n)++] = YAJL_GET_STRING(arr->u.array.values[i]);
    return v;
}

static int load_value(st_orphan_cache *c, file_kind kind, const char *key, yajl_val val)
{
    st_orphan *o = get_entry(c, key);
    if (!o)
        return ST_ERR_NOMEM;
    if (kind == F_MODULES)
        o->in_modules = 1;
    else
        o->in_classes = 1;
    if (!val)
        return 0;
    /* one parents list per module: orphan_modules.json's wins over the classifications' */
    yajl_val parents = YAJL_IS_ARRAY(val) ? val : st_jv_get(val, "parents");
    int parents_known = kind == F_CLASSES && o->in_modules;
    if (parents && YAJL_IS_ARRAY(parents) && !parents_known) {
        size_t n;
        const char **list = array_strings(parents, &n);
        if (!list)
            return ST_ERR_NOMEM;
        int rc = set_parents(o, list, n);
        free(list);
        if (rc)
            return rc;
    }
    yajl_val red = st_jv_get(val, "redundant");
    if (red && (YAJL_IS_TRUE(red) || YAJL_IS_FALSE(red)))
        o->redundant = YAJL_IS_TRUE(red);
    if (kind == F_CLASSES) {
        const char *cls = st_jv_str(val, "classification");
        if (cls && st_strset(&o->classification, cls))
            return ST_ERR_NOMEM;
        const char *reason = st_jv_str(val, "reason");
        if (reason && st_strset(&o->reason, reason))
            return ST_ERR_NOMEM;
    }
    return 0;
}

/* Loads one file; problems with its contents are logged and make it read-only. */
static int load_file(st_orphan_cache *c, file_kind kind)
{
    const char *file = kind == F_MODULES ? c->modules_file : c->classes_file;
    int *readonly = kind == F_MODULES ? &c->modules_readonly : &c->classes_readonly;
    char *text = NULL;
    size_t len = 0;
    int rc = st_read_file(file, ST_ORPHANS_MAX_FILE, &text, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0) {
        st_error("%s: cannot read it (%s); treated as empty, left as it is and not rewritten "
                 "this run",
                 file, rc == -EFBIG ? "larger than 64 MiB" : strerror(-rc));
        *readonly = 1;
        return 0;
    }
    char err[300];
    yajl_val root = st_json_parse_n(text, len, err, sizeof(err));
    if (root && !YAJL_IS_OBJECT(root) && !(kind == F_MODULES && YAJL_IS_ARRAY(root))) {
        snprintf(err, sizeof(err), "line 1, column 1: expected %s",
                 kind == F_MODULES ? "an object or a list of paths" : "an object");
        yajl_tree_free(root);
        root = NULL;
    }
    free(text);
    if (!root) {
        st_error("%s: %s; treated as empty, left as it is and not rewritten this run", file, err);
        *readonly = 1;
        return 0;
    }
    int bad = 0;
    rc = 0;
    if (YAJL_IS_ARRAY(root)) { /* legacy form: a list of paths */
        for (size_t i = 0; rc == 0 && i < root->u.array.len; i++) {
            yajl_val v = root->u.array.values[i];
            if (!YAJL_IS_STRING(v))
                continue;
            if (accept_key(c, file, YAJL_GET_STRING(v), &bad))
                rc = load_value(c, kind, YAJL_GET_STRING(v), NULL);
        }
        c->dirty = 1; /* rewritten in the current form at the next save */
    } else {
        for (size_t i = 0; rc == 0 && i < root->u.object.len; i++) {
            const char *key = root->u.object.keys[i];
            if (accept_key(c, file, key, &bad))
                rc = load_value(c, kind, key, root->u.object.values[i]);
        }
    }
    yajl_tree_free(root);
    if (bad)
        *readonly = 1;
    return rc;
}

int st_orphans_load(st_orphan_cache *c, const char *root, const char *data_dir)
{
    memset(c, 0, sizeof(*c));
    c->root = st_strdup(root);
    c->modules_file = st_path_join(data_dir, ST_ORPHAN_MODULES_FILE);
    c->classes_file = st_path_join(data_dir, ST_ORPHAN_CLASSES_FILE);
    if (!c->root || !c->modules_file || !c->classes_file)
        return ST_ERR_NOMEM;
    int rc = load_file(c, F_MODULES);
    if (rc == 0)
        rc = load_file(c, F_CLASSES);
    return rc;
}

void st_orphans_clear(st_orphan_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        orphan_free(&c->v[i]);
    c->n = 0;
    c->dirty = 1;
}

/* ---- updating -------------------------------------------------------------------------------- */

int st_orphans_merge(st_orphan_cache *c, const st_orphan_update *u)
{
    if (!u->path || !st_path_is_safe_relative(c->root, u->path)) {
        st_error("orphan cache: refused module '%s': not a path inside the project root",
                 u->path ? u->path : "(null)");
        return ST_ERR_INVALID;
    }
    if (!u->classification || !known_class(u->classification)) {
        st_error("orphan cache: %s: unknown classification '%s'", u->path,
                 u->classification ? u->classification : "(null)");
        return ST_ERR_INVALID;
    }
    st_orphan *o = get_entry(c, u->path);
    if (!o)
        return ST_ERR_NOMEM;
    size_t n = 0;
    while (u->parents && u->parents[n])
        n++;
    int rc = set_parents(o, u->parents, n);
    if (!rc)
        rc = st_strset(&o->classification, u->classification);
    if (!rc)
        rc = st_strset(&o->reason, u->reason);
    /* the original's readers skip an entry marked redundant: legacy modules too */
    o->redundant = strcmp(u->classification, "redundant") == 0 ||
                   strcmp(u->classification, "legacy") == 0;
    o->in_modules = o->in_classes = 1;
    c->dirty = 1;
    return rc;
}

int st_orphans_merge_entry(st_orphan_cache *c, const st_module_entry *e)
{
    if (e->origin != ST_ORIGIN_ORPHAN && e->origin != ST_ORIGIN_ISOLATED)
        return 0;
    const char *cls = e->classification == ST_CLASS_LEGACY      ? "legacy"
                      : e->classification == ST_CLASS_REDUNDANT ? "redundant"
                                                                : "candidate";
    st_orphan_update u = {.path = e->path, .parents = e->parents, .classification = cls,
                          .reason = e->reason};
    return st_orphans_merge(c, &u);
}

static int mark_as(st_orphan_cache *c, const char *path, const char *cls, const char *reason);

int st_orphans_mark(st_orphan_cache *c, const char *path, int passed, const char *reason)
{
    return mark_as(c, path, passed ? "passed" : "failed", reason);
}

int st_orphans_mark_unmet(st_orphan_cache *c, const char *path, const char *reason)
{
    return mark_as(c, path, "unmet", reason);
}

static int mark_as(st_orphan_cache *c, const char *path, const char *cls, const char *reason)
{
    if (!path || !st_path_is_safe_relative(c->root, path)) {
        st_error("orphan cache: refused check result for '%s': not a path inside the project "
                 "root",
                 path ? path : "(null)");
        return ST_ERR_INVALID;
    }
    st_orphan *o = get_entry(c, path);
    if (!o)
        return ST_ERR_NOMEM;
    o->in_classes = 1;
    c->dirty = 1;
    if (st_strset(&o->classification, cls))
        return ST_ERR_NOMEM;
    /* every entry keeps a reason: a check without one leaves discovery's */
    return reason ? st_strset(&o->reason, reason) : 0;
}

static int listed(const char *const *v, const char *s)
{
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp(v[i], s) == 0)
            return 1;
    return 0;
}

size_t st_orphans_remove_integrated(st_orphan_cache *c, const char *const *integrated)
{
    size_t removed = 0;
    for (size_t i = 0; i < c->n; i++) {
        st_orphan *o = &c->v[i];
        if (!o->in_modules)
            continue;
        int drop = listed(integrated, o->path);
        if (!drop && o->parents.n > 0) {
            drop = 1;
            for (size_t k = 0; k < o->parents.n && drop; k++)
                drop = listed(integrated, o->parents.v[k]);
        }
        if (drop) {
            st_info("orphan cache: %s removed from %s (integrated%s)", o->path,
                    ST_ORPHAN_MODULES_FILE, listed(integrated, o->path) ? "" : " parents");
            o->in_modules = 0;
            removed++;
        }
    }
    /* entries in neither file are forgotten */
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (!c->v[i].in_modules && !c->v[i].in_classes)
            orphan_free(&c->v[i]);
        else
            c->v[k++] = c->v[i];
    }
    c->n = k;
    if (removed)
        c->dirty = 1;
    return removed;
}

void st_orphans_to_test(const st_orphan_cache *c, int include_redundant, st_strv *out)
{
    for (size_t i = 0; i < c->n; i++) {
        const st_orphan *o = &c->v[i];
        if (!o->in_modules || !file_exists(c->root, o->path))
            continue;
        int skipped = o->redundant || (o->classification &&
                                       (strcmp(o->classification, "redundant") == 0 ||
                                        strcmp(o->classification, "legacy") == 0));
        if (skipped && !include_redundant)
            continue;
        st_strv_push(out, o->path);
    }
}

/* ---- writing --------------------------------------------------------------------------------- */

static char *render(const st_orphan_cache *c, file_kind kind)
{
    yajl_gen g = st_jg_new(1);
    if (!g)
        return NULL;
    yajl_gen_map_open(g);
    for (size_t i = 0; i < c->n; i++) {
        const st_orphan *o = &c->v[i];
        if (kind == F_MODULES ? !o->in_modules : !o->in_classes)
            continue;
        st_jg_key(g, o->path);
        yajl_gen_map_open(g);
        /* keys in sorted order */
        if (kind == F_CLASSES && o->classification)
            st_jg_kstr(g, "classification", o->classification);
        st_jg_key(g, "parents");
        yajl_gen_array_open(g);
        for (size_t k = 0; k < o->parents.n; k++)
            st_jg_str(g, o->parents.v[k]);
        yajl_gen_array_close(g);
        if (kind == F_CLASSES)
            st_jg_kstr(g, "reason", o->reason ? o->reason : "");
        st_jg_kbool(g, "redundant", o->redundant);
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
    return st_jg_finish(g, 1);
}

static int save_file(st_orphan_cache *c, file_kind kind)
{
    const char *file = kind == F_MODULES ? c->modules_file : c->classes_file;
    if (kind == F_MODULES ? c->modules_readonly : c->classes_readonly) {
        st_warn("%s: not updated: it could not be read cleanly at load (see the error above); "
                "fix or remove it",
                file);
        return 0;
    }
    char *text = render(c, kind);
    if (!text) {
        st_error("%s: out of memory", file);
        return ST_ERR_NOMEM;
    }
    /* unchanged (most cycles): not rewritten, which saves the fsyncs */
    int rc = st_write_file_atomic_changed(file, text, strlen(text), 0644);
    if (rc < 0)
        st_error("%s: cannot write it: %s", file, strerror(-rc));
    free(text);
    return st_status_of_errno(rc);
}

int st_orphans_save(st_orphan_cache *c)
{
    char *dir = st_path_dirname(c->modules_file);
    int rc = dir ? st_mkdir_p(dir, 0755) : -ENOMEM;
    if (rc < 0)
        st_error("%s: cannot create it: %s", dir ? dir : "data dir", strerror(-rc));
    free(dir);
    if (rc < 0)
        return st_status_of_errno(rc);
    int r1 = save_file(c, F_MODULES);
    int r2 = save_file(c, F_CLASSES);
    if (r1 == 0 && r2 == 0)
        c->dirty = 0;
    return r1 < 0 ? r1 : r2;
}

void st_orphans_free(st_orphan_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        orphan_free(&c->v[i]);
    free(c->v);
    free(c->root);
    free(c->modules_file);
    free(c->classes_file);
    memset(c, 0, sizeof(*c));
}

/* ---- rules: test code, orphan_exclude, module_map.json ------------------------------------- */

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A test path that is a plain directory of tests: not the root, a directory, no __init__.py,
 * no package (a subdirectory with __init__.py) directly inside it. */
static int plain_test_dir(const char *root, const char *rel)
{
    if (strcmp(rel, ".") == 0)
        return 0;
    char *abs = st_path_join(root, rel);
    char *init = abs ? st_path_join(abs, "__init__.py") : NULL;
    int plain = abs && init && is_dir(abs) && access(init, F_OK) != 0;
    free(init);
    DIR *d = plain ? opendir(abs) : NULL;
    struct dirent *de;
    while (d && plain && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *sub = st_asprintf("%s/%s/__init__.py", abs, de->d_name);
        plain = sub && access(sub, F_OK) != 0;
        free(sub);
    }
    if (d)
        closedir(d);
    free(abs);
    return plain;
}

static int file_exists_cb(const char *path, void *userdata)
{
    return file_exists(userdata, path);
}

int st_orphan_rules_init(st_orphan_rules *r, const char *root, const char *data_dir,
                         const st_strv *test_paths, const st_strv *exclude,
                         int exclude_is_default)
{
    memset(r, 0, sizeof(*r));
    for (size_t i = 0; i < test_paths->n; i++) {
        st_strv_push(&r->test_paths, test_paths->v[i]);
        if (plain_test_dir(root, test_paths->v[i]))
            st_strv_push(&r->plain_dirs, test_paths->v[i]);
    }
    for (size_t i = 0; i < exclude->n; i++)
        st_strv_push(&r->exclude, exclude->v[i]);
    r->exclude_default = exclude_is_default;
    char *file = st_path_join(data_dir, "module_map.json");
    if (!file)
        return ST_ERR_NOMEM;
    stmm_map map;
    char err[300];
    int rc = stmm_load(file, &map, err, sizeof(err));
    if (rc == STMM_ENOMEM) {
        free(file);
        return ST_ERR_NOMEM;
    }
    if (rc == STMM_EMALFORMED || rc == STMM_EIO)
        st_warn("%s: %s; no module counts as integrated this run", file, err);
    for (size_t i = 0; rc == STMM_OK && i < map.n_entries; i++) {
        char *path = stmm_key_to_path(map.entries[i].module, file_exists_cb, (void *)root);
        if (path && !st_strv_contains(&r->known, path))
            st_strv_push(&r->known, path);
        free(path);
    }
    stmm_free(&map);
    free(file);
    return r->test_paths.oom || r->plain_dirs.oom || r->exclude.oom || r->known.oom ? ST_ERR_NOMEM
                                                                                    : 0;
}

static int is_test_file_name(const char *base)
{
    size_t n = strlen(base);
    return n > 3 && strcmp(base + n - 3, ".py") == 0 &&
           (strncmp(base, "test_", 5) == 0 || (n >= 8 && strcmp(base + n - 8, "_test.py") == 0));
}

static int is_test_dir_name(const char *s, size_t len)
{
    return (len == 4 && strncmp(s, "test", 4) == 0) || (len == 5 && strncmp(s, "tests", 5) == 0);
}

int st_orphan_rules_excluded(const st_orphan_rules *r, const char *path, char *why,
                             size_t why_size)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (is_test_file_name(base)) {
        snprintf(why, why_size, "test code: a test file");
        return 1;
    }
    for (size_t i = 0; i < r->test_paths.n; i++) {
        const char *tp = r->test_paths.v[i];
        int root = strcmp(tp, ".") == 0;
        size_t tl = strlen(tp);
        if (!root && strcmp(path, tp) == 0) {
            snprintf(why, why_size, "test code: the test path %s", tp);
            return 1;
        }
        if (!root && !(strncmp(path, tp, tl) == 0 && path[tl] == '/'))
            continue;
        if (strcmp(base, "conftest.py") == 0) {
            snprintf(why, why_size, "test code: conftest.py under the test path %s", tp);
            return 1;
        }
        /* directories from the test path's own name down to the file's directory */
        const char *from = root ? path : path + tl + 1;
        if (!root) {
            const char *tb = strrchr(tp, '/');
            tb = tb ? tb + 1 : tp;
            if (is_test_dir_name(tb, strlen(tb))) {
                snprintf(why, why_size, "test code: in the test directory %s/", tp);
                return 1;
            }
        }
        for (const char *c = from; c < base;) {
            const char *slash = strchr(c, '/');
            if (!slash || slash >= base)
                break;
            if (is_test_dir_name(c, (size_t)(slash - c))) {
                snprintf(why, why_size, "test code: in the test directory %.*s/",
                         (int)(slash - path), path);
                return 1;
            }
            c = slash + 1;
        }
        if (st_strv_contains(&r->plain_dirs, tp)) {
            snprintf(why, why_size,
                     "test code: under the test path %s (a directory of tests, not a package)",
                     tp);
            return 1;
        }
    }
    for (size_t i = 0; i < r->exclude.n; i++) {
        const char *g = r->exclude.v[i];
        const char *subject = strchr(g, '/') ? path : base;
        if (fnmatch(g[0] == '/' ? g + 1 : g, subject, 0) == 0) {
            snprintf(why, why_size, "orphan_exclude '%s'%s", g,
                     r->exclude_default ? " (default)" : "");
            return 1;
        }
    }
    return 0;
}

int st_orphan_rules_known(const st_orphan_rules *r, const char *path)
{
    return st_strv_contains(&r->known, path);
}

void st_orphan_rules_free(st_orphan_rules *r)
{
    if (!r)
        return;
    st_strv_free(&r->test_paths);
    st_strv_free(&r->plain_dirs);
    st_strv_free(&r->exclude);
    st_strv_free(&r->known);
    memset(r, 0, sizeof(*r));
}
