/* SPDX-License-Identifier: MIT */
/* pygraph: walks a project tree, scans every .py file with pyscan on a thread pool and resolves
 * the imports to files under the root (see pygraph.h for the rules). */
#include "pygraph.h"
#include "pyscan.h"
#include "scancache.h"

#include "st_buf.h"
#include "st_enum.h"
#include "st_file.h"

#include <selftest/plugin.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define DEFAULT_MAX_FILE (64u << 20)
#define MAX_REL_PATH 4096
#define MAX_SOURCE_ROOTS 16 /* configured source roots (pythonpath) plus an automatic src/ */
#define MAX_PATH_ENTRIES (2 + MAX_SOURCE_ROOTS)

enum { NODE_TEST = 1, NODE_CONFTEST = 2 };

static const char *const default_skip[] = {".git", ".venv", "venv", "__pycache__", "node_modules",
                       "build", "dist", "sandbox_data", NULL};

/* ---- the tree index -------------------------------------------------------------------------- */

typedef struct dir_rec {
    char *rel;          /* "" for the root */
    const char *name;   /* basename inside rel */
    int32_t parent;     /* -1 for the root */
    int32_t init;       /* node of its __init__.py, -1 if none */
    uint32_t lo, hi;    /* nodes whose path lies beneath: [lo, hi) */
} dir_rec;

typedef struct file_rec {
    char *rel;
    int32_t dir;
} file_rec;

/* One name inside one directory: a subdirectory and/or a module file. */
typedef struct entry {
    uint32_t dir;
    uint32_t hash;
    const char *name;
    size_t name_len;
    int32_t child_dir;
    int32_t module;
} entry;

typedef struct result {
    uint32_t *edges;
    size_t n_edges;
    char *error;
    uint64_t bytes;
    const sc_entry *hit; /* the scan cache's records were replayed */
    sc_entry fresh;      /* scanned now, to be cached (rel is NULL when not) */
} result;

struct st_pygraph {
    size_t n;
    char **paths;
    uint8_t *flags;
    uint32_t *dep_off, *deps;   /* CSR: deps of i are deps[dep_off[i] .. dep_off[i+1]) */
    uint32_t *rdep_off, *rdeps;
    uint64_t bytes;
    size_t n_errors;
    size_t n_cached; /* files whose records came from the scan cache */
};

typedef struct builder {
    const st_pygraph_options *opts;
    const char *const *skip;
    int root_fd;
    char root_real[PATH_MAX];
    dir_rec *dirs;
    size_t n_dirs, cap_dirs;
    file_rec *files;
    size_t n_files, cap_files;
    entry *entries;
    size_t n_entries, cap_entries;
    uint32_t *table;            /* open addressing: entry index + 1, 0 = empty */
    size_t table_mask;
    int32_t src_dirs[MAX_SOURCE_ROOTS]; /* sys.path entries after the root, in order */
    size_t n_src;
    result *results;
    atomic_size_t next_file;
    size_t n_errors;
    int status;
    sc_cache cache;     /* the scan cache as loaded (opts->scan_cache) */
    uint64_t recent_ns; /* files modified at or after this time are not cached */
} builder;

static void report(builder *b, const char *path, const char *msg)
{
    b->n_errors++;
    if (b->opts->on_error)
        b->opts->on_error(path, msg, b->opts->userdata);
}

static uint32_t hash_name(uint32_t dir, const char *s, size_t n)
{
    uint32_t h = 2166136261u ^ dir;
    h *= 16777619u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static const entry *lookup(const builder *b, uint32_t dir, const char *s, size_t n)
{
    uint32_t h = hash_name(dir, s, n);
    for (size_t i = h & b->table_mask;; i = (i + 1) & b->table_mask) {
        uint32_t k = b->table[i];
        if (!k)
            return NULL;
        const entry *e = &b->entries[k - 1];
        if (e->hash == h && e->dir == dir && e->name_len == n && !memcmp(e->name, s, n))
            return e;
    }
}

static entry *lookup_or_add(builder *b, uint32_t dir, const char *s, size_t n)
{
    uint32_t h = hash_name(dir, s, n);
    size_t i;
    for (i = h & b->table_mask; b->table[i]; i = (i + 1) & b->table_mask) {
        entry *e = &b->entries[b->table[i] - 1];
        if (e->hash == h && e->dir == dir && e->name_len == n && !memcmp(e->name, s, n))
            return e;
    }
    entry *e = &b->entries[b->n_entries++];
    *e = (entry){.dir = dir, .hash = h, .name = s, .name_len = n, .child_dir = -1, .module = -1};
    b->table[i] = (uint32_t)b->n_entries;
    return e;
}

/* ---- walking ----------------------------------------------------------------------------------- */

static bool is_skipped_name(const builder *b, const char *name)
{
    if (!strcmp(name, "site-packages"))
        return true;
    for (const char *const *s = b->skip; *s; s++)
        if (!strcmp(name, *s))
            return true;
    return false;
}

static char *join_rel(const char *dir, const char *name)
{
    size_t a = strlen(dir), n = strlen(name);
    if (a + n + 2 > MAX_REL_PATH)
        return NULL;
    char *s = malloc(a + n + 2);
    if (!s)
        return NULL;
    if (a) {
        memcpy(s, dir, a);
        s[a++] = '/';
    }
    memcpy(s + a, name, n);
    s[a + n] = '\0';
    return s;
}

static bool ends_with_py(const char *name)
{
    size_t n = strlen(name);
    return n > 3 && !strcmp(name + n - 3, ".py");
}

/* A symlinked file counts when it is a regular file whose real path stays inside the root. */
static bool symlink_file_ok(builder *b, int dfd, const char *name, const char *rel)
{
    struct stat st;
    if (fstatat(dfd, name, &st, 0) != 0 || !S_ISREG(st.st_mode))
        return false;
    char full[PATH_MAX + MAX_REL_PATH + 2], real[PATH_MAX];
    if ((size_t)snprintf(full, sizeof full, "%s/%s", b->root_real, rel) >= sizeof full)
        return false;
    if (!realpath(full, real))
        return false;
    size_t n = strlen(b->root_real);
    if (!strcmp(b->root_real, "/"))
        return true;
    return !strncmp(real, b->root_real, n) && real[n] == '/';
}

static int add_dir(builder *b, char *rel, const char *name, int32_t parent)
{
    if (st_grow((void **)&b->dirs, &b->cap_dirs, b->n_dirs + 1, sizeof *b->dirs))
        return ST_PYGRAPH_ENOMEM;
    b->dirs[b->n_dirs++] = (dir_rec){.rel = rel, .name = name, .parent = parent, .init = -1};
    return ST_PYGRAPH_OK;
}

static int add_file(builder *b, char *rel, int32_t dir)
{
    if (st_grow((void **)&b->files, &b->cap_files, b->n_files + 1, sizeof *b->files))
        return ST_PYGRAPH_ENOMEM;
    b->files[b->n_files++] = (file_rec){.rel = rel, .dir = dir};
    return ST_PYGRAPH_OK;
}

/* Reads one directory, appending its files and subdirectories (which the caller visits later:
 * the dirs array doubles as the BFS queue). */
static int walk_dir(builder *b, int32_t di)
{
    const char *rel = b->dirs[di].rel;
    int fd = openat(b->root_fd, *rel ? rel : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        report(b, rel, strerror(errno));
        return ST_PYGRAPH_OK;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        report(b, rel, strerror(errno));
        close(fd);
        return ST_PYGRAPH_OK;
    }
    int status = ST_PYGRAPH_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
            continue;
        unsigned char type = de->d_type;
        if (type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                continue;
            type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG
                   : S_ISLNK(st.st_mode)                             ? DT_LNK
                                         : DT_UNKNOWN;
        }
        if (type == DT_DIR) {
            if (is_skipped_name(b, name))
                continue;
            char probe[NAME_MAX + 16];
            struct stat st;
            snprintf(probe, sizeof probe, "%s/pyvenv.cfg", name);
            if (fstatat(fd, probe, &st, AT_SYMLINK_NOFOLLOW) == 0)
                continue;
            char *crel = join_rel(rel, name);
            if (!crel) {
                report(b, rel, "path too long or out of memory");
                continue;
            }
            status = add_dir(b, crel, crel + strlen(crel) - strlen(name), di);
            if (status) {
                free(crel);
                break;
            }
        } else if ((type == DT_REG || type == DT_LNK) && ends_with_py(name)) {
            char *frel = join_rel(rel, name);
            if (!frel) {
                report(b, rel, "path too long or out of memory");
                continue;
            }
            if (type == DT_LNK && !symlink_file_ok(b, fd, name, frel)) {
                free(frel);
                continue;
            }
            status = add_file(b, frel, di);
            if (status) {
                free(frel);
                break;
            }
        }
    }
    closedir(d);
    return status;
}

static int cmp_files(const void *a, const void *b)
{
    return strcmp(((const file_rec *)a)->rel, ((const file_rec *)b)->rel);
}

/* First node whose path is >= key. */
static uint32_t lower_bound(const builder *b, const char *key)
{
    size_t lo = 0, hi = b->n_files;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(b->files[mid].rel, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint32_t)lo;
}

/* The dir id of a repo-relative directory path ("a/b", "./a//b/" too), or -1. */
static int32_t find_dir(const builder *b, const char *rel)
{
    int32_t d = 0;
    const char *p = rel;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n && !(n == 1 && p[0] == '.')) {
            const entry *en = lookup(b, (uint32_t)d, p, n);
            if (!en || en->child_dir < 0)
                return -1;
            d = en->child_dir;
        }
        p += n;
        while (*p == '/')
            p++;
    }
    return d;
}

/* Sorts the files, fills the name index, the __init__ of each dir and the beneath-ranges. */
static int index_tree(builder *b)
{
    if (b->n_files > 1)
        qsort(b->files, b->n_files, sizeof *b->files, cmp_files);
    size_t want = b->n_files + b->n_dirs;
    size_t size = 16;
    while (size < 2 * want + 16)
        size *= 2;
    b->table = calloc(size, sizeof *b->table);
    b->entries = calloc(want + 1, sizeof *b->entries);
    if (!b->table || !b->entries)
        return ST_PYGRAPH_ENOMEM;
    b->table_mask = size - 1;
    for (size_t i = 1; i < b->n_dirs; i++) {
        dir_rec *d = &b->dirs[i];
        entry *e = lookup_or_add(b, (uint32_t)d->parent, d->name, strlen(d->name));
        e->child_dir = (int32_t)i;
    }
    for (size_t i = 0; i < b->n_files; i++) {
        file_rec *f = &b->files[i];
        const char *base = strrchr(f->rel, '/');
        base = base ? base + 1 : f->rel;
        size_t n = strlen(base) - 3;
        entry *e = lookup_or_add(b, (uint32_t)f->dir, base, n);
        e->module = (int32_t)i;
        if (n == 8 && !memcmp(base, "__init__", 8))
            b->dirs[f->dir].init = (int32_t)i;
    }
    char key[MAX_REL_PATH + 2];
    b->dirs[0].lo = 0;
    b->dirs[0].hi = (uint32_t)b->n_files;
    for (size_t i = 1; i < b->n_dirs; i++) {
        dir_rec *d = &b->dirs[i];
        snprintf(key, sizeof key, "%s/", d->rel);
        d->lo = lower_bound(b, key);
        key[strlen(key) - 1] = '/' + 1;
        d->hi = lower_bound(b, key);
    }
    b->n_src = 0;
    for (const char *const *r = b->opts->source_roots; r && *r; r++) {
        int32_t d = find_dir(b, *r);
        bool dup = d <= 0; /* missing, or the root itself (always first) */
        for (size_t k = 0; k < b->n_src && !dup; k++)
            dup = b->src_dirs[k] == d;
        if (!dup && b->n_src < MAX_SOURCE_ROOTS - 1)
            b->src_dirs[b->n_src++] = d;
    }
    const entry *src = lookup(b, 0, "src", 3);
    if (src && src->child_dir >= 0) {
        const dir_rec *d = &b->dirs[src->child_dir];
        bool dup = false;
        for (size_t k = 0; k < b->n_src && !dup; k++)
            dup = b->src_dirs[k] == src->child_dir;
        if (!dup && d->init < 0 && d->hi > d->lo)
            b->src_dirs[b->n_src++] = src->child_dir;
    }
    return ST_PYGRAPH_OK;
}

/* ---- resolution ------------------------------------------------------------------------------ */

enum spec_kind { SPEC_NONE, SPEC_PACKAGE, SPEC_MODULE, SPEC_NAMESPACE };

typedef struct spec {
    enum spec_kind kind;
    int32_t file;                       /* package __init__ or module */
    int32_t dirs[MAX_PATH_ENTRIES];     /* package dir or namespace portions */
    size_t n_dirs;
} spec;

/* Per-file state while its imports are resolved. */
typedef struct file_ctx {
    builder *b;
    uint32_t self;
    int32_t path[MAX_PATH_ENTRIES];
    size_t n_path;
    char package[MAX_REL_PATH]; /* dotted; "" for a top-level module */
    bool package_ok;            /* false: module name not representable, no relative imports */
    uint32_t *edges;
    size_t n_edges, cap_edges;
    bool nomem;
} file_ctx;

static void find_spec(const builder *b, const char *name, size_t n, const int32_t *dirs,
              size_t n_dirs, spec *out)
{
    out->kind = SPEC_NONE;
    out->n_dirs = 0;
    out->file = -1;
    for (size_t i = 0; i < n_dirs; i++) {
        const entry *e = lookup(b, (uint32_t)dirs[i], name, n);
        if (!e)
            continue;
        if (e->child_dir >= 0 && b->dirs[e->child_dir].init >= 0) {
            out->kind = SPEC_PACKAGE;
            out->file = b->dirs[e->child_dir].init;
            out->dirs[0] = e->child_dir;
            out->n_dirs = 1;
            return;
        }
        if (e->module >= 0) {
            out->kind = SPEC_MODULE;
            out->file = e->module;
            out->n_dirs = 0;
            return;
        }
        if (e->child_dir >= 0 && out->n_dirs < MAX_PATH_ENTRIES)
            out->dirs[out->n_dirs++] = e->child_dir;
    }
    if (out->n_dirs)
        out->kind = SPEC_NAMESPACE;
}

static void add_edge(file_ctx *fc, int32_t file)
{
    if (file < 0 || (uint32_t)file == fc->self)
        return;
    if (st_grow((void **)&fc->edges, &fc->cap_edges, fc->n_edges + 1, sizeof *fc->edges)) {
        fc->nomem = true;
        return;
    }
    fc->edges[fc->n_edges++] = (uint32_t)file;
}

/* Imports the dotted name: an edge per resolved prefix. Returns true when the whole name
 * resolved; *last is the spec of the last resolved component. */
static bool import_chain(file_ctx *fc, const char *name, spec *last)
{
    const builder *b = fc->b;
    const int32_t *dirs = fc->path;
    size_t n_dirs = fc->n_path;
    last->kind = SPEC_NONE;
    const char *p = name;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        spec s;
        find_spec(b, p, n, dirs, n_dirs, &s);
        if (s.kind == SPEC_NONE)
            return false;
        *last = s;
        add_edge(fc, s.file);
        if (!dot)
            return true;
        if (s.kind == SPEC_MODULE)
            return false; /* a.b under a plain module a.py */
        dirs = last->dirs;
        n_dirs = last->n_dirs;
        p = dot + 1;
    }
}

static void add_beneath(file_ctx *fc, const spec *ns)
{
    for (size_t i = 0; i < ns->n_dirs; i++) {
        const dir_rec *d = &fc->b->dirs[ns->dirs[i]];
        for (uint32_t f = d->lo; f < d->hi; f++)
            add_edge(fc, (int32_t)f);
    }
}

/* Python's _resolve_name: the absolute name of a relative import, or false. */
static bool resolve_relative(const char *package, unsigned level, const char *module, char *out,
                 size_t cap)
{
    if (!*package)
        return false;
    size_t len = strlen(package);
    for (unsigned k = 1; k < level; k++) {
        const char *dot = NULL;
        for (size_t i = len; i > 0; i--)
            if (package[i - 1] == '.') {
                dot = package + i - 1;
                break;
            }
        if (!dot)
            return false;
        len = (size_t)(dot - package);
    }
    int w = *module ? snprintf(out, cap, "%.*s.%s", (int)len, package, module)
            : snprintf(out, cap, "%.*s", (int)len, package);
    return w >= 0 && (size_t)w < cap;
}

static int on_import(const st_pyimport *imp, void *userdata)
{
    file_ctx *fc = userdata;
    char abs[ST_PYSCAN_MAX_NAME + MAX_REL_PATH + 2];
    const char *name = imp->module;
    if (imp->level > 0) {
        const char *package = imp->package ? imp->package : fc->package;
        if (!imp->package && !fc->package_ok)
            return 0;
        if (!resolve_relative(package, imp->level, imp->module, abs, sizeof abs))
            return 0;
        name = abs;
    } else if (!strcmp(name, "__future__")) {
        return 0;
    }
    if (!*name)
        return 0;
    spec last;
    bool whole = import_chain(fc, name, &last);
    if (imp->kind != ST_PYIMPORT_FROM || !whole)
        return fc->nomem ? 1 : 0;
    if (imp->star) {
        if (last.kind == SPEC_NAMESPACE)
            add_beneath(fc, &last);
    } else if (last.kind == SPEC_PACKAGE || last.kind == SPEC_NAMESPACE) {
        for (size_t i = 0; i < imp->n_names; i++) {
            spec sub;
            find_spec(fc->b, imp->names[i], strlen(imp->names[i]), last.dirs, last.n_dirs,
                  &sub);
            add_edge(fc, sub.file);
        }
    }
    return fc->nomem ? 1 : 0;
}

static bool is_test_name(const char *base)
{
    size_t n = strlen(base);
    return n >= 8 && (!strncmp(base, "test_", 5) || !strcmp(base + n - 8, "_test.py"));
}

static const char *basename_of(const char *rel)
{
    const char *s = strrchr(rel, '/');
    return s ? s + 1 : rel;
}

static uint8_t file_flags(const char *rel)
{
    const char *base = basename_of(rel);
    if (!strcmp(base, "conftest.py"))
        return NODE_TEST | NODE_CONFTEST;
    return is_test_name(base) ? NODE_TEST : 0;
}

static void path_add(file_ctx *fc, int32_t dir)
{
    for (size_t i = 0; i < fc->n_path; i++)
        if (fc->path[i] == dir)
            return;
    if (fc->n_path < MAX_PATH_ENTRIES)
        fc->path[fc->n_path++] = dir;
}

/* The sys.path entries of file i and its package name (module name minus the last part, or
 * the module itself for __init__.py). */
static void setup_file_ctx(builder *b, uint32_t i, file_ctx *fc)
{
    const file_rec *f = &b->files[i];
    int32_t base_dir = 0;
    fc->n_path = 0;
    if (file_flags(f->rel) & NODE_TEST) {
        int32_t d = f->dir;
        while (d > 0 && b->dirs[d].init >= 0)
            d = b->dirs[d].parent;
        base_dir = d;
        path_add(fc, d);
    } else {
        /* named relative to the deepest source root holding it */
        for (size_t k = 0; k < b->n_src; k++) {
            const dir_rec *d = &b->dirs[b->src_dirs[k]];
            if (d->lo <= i && i < d->hi &&
                (!base_dir || strlen(d->rel) > strlen(b->dirs[base_dir].rel)))
                base_dir = b->src_dirs[k];
        }
    }
    path_add(fc, 0);
    for (size_t k = 0; k < b->n_src; k++)
        path_add(fc, b->src_dirs[k]);
    /* package = the directories from base_dir down to the file's dir, dotted */
    const char *rel = f->rel;
    size_t skip = base_dir ? strlen(b->dirs[base_dir].rel) + 1 : 0;
    const char *base = basename_of(rel);
    const char *pkg_start = rel + skip;
    size_t pkg_len = base > pkg_start ? (size_t)(base - pkg_start) - 1 : 0;
    fc->package_ok = pkg_len < sizeof fc->package;
    if (!fc->package_ok) {
        fc->package[0] = '\0';
        return;
    }
    for (size_t k = 0; k < pkg_len; k++)
        fc->package[k] = pkg_start[k] == '/' ? '.' : pkg_start[k];
    fc->package[pkg_len] = '\0'; /* for __init__.py too: a package is its own package */
}

/* ---- the worker pool ------------------------------------------------------------------------ */

/* Reads rel below root_fd into *buf (grown as needed). ST_OK, or ST_ERR_UNAVAILABLE (not
 * there), ST_ERR_NOMEM or ST_ERR_IO, with err set. */
static int read_file(int root_fd, const char *rel, size_t max, char **buf, size_t *cap,
             size_t *len, struct stat *stp, char *err, size_t errlen)
{
    int status = ST_ERR_IO;
    int fd = openat(root_fd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        return st_status_of_errno(errno);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        snprintf(err, errlen, "file larger than %zu bytes", max);
        goto out;
    }
    *stp = st;
    size_t want = (size_t)st.st_size + 1;
    if (st_grow((void **)buf, cap, want, 1)) {
        snprintf(err, errlen, "out of memory");
        status = ST_ERR_NOMEM;
        goto out;
    }
    size_t got = 0;
    for (;;) {
        if (got + 1 > *cap && st_grow((void **)buf, cap, got + 4096, 1)) {
            snprintf(err, errlen, "out of memory");
            status = ST_ERR_NOMEM;
            goto out;
        }
        size_t room = *cap - got;
        if (got + room > max + 1)
            room = max + 1 - got;
        ssize_t r = read(fd, *buf + got, room);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "%s", strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got > max) {
            snprintf(err, errlen, "file larger than %zu bytes", max);
            goto out;
        }
    }
    *len = got;
    status = ST_OK;
out:
    close(fd);
    return status;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* on_import, recording each record for the scan cache too */
typedef struct recording {
    file_ctx *fc;
    sc_entry *entry; /* NULL: not recorded */
    bool nomem;
} recording;

static int on_import_recorded(const st_pyimport *imp, void *userdata)
{
    recording *rc = userdata;
    if (rc->entry && sc_entry_add(rc->entry, imp) < 0) {
        rc->nomem = true;
        return 1;
    }
    return on_import(imp, rc->fc);
}

static uint64_t mtime_ns(const struct stat *st)
{
    return (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
}

static void *worker(void *arg)
{
    builder *b = arg;
    char *buf = NULL;
    size_t cap = 0;
    size_t max = b->opts->max_file_bytes ? b->opts->max_file_bytes : DEFAULT_MAX_FILE;
    file_ctx *fc = calloc(1, sizeof *fc);
    if (!fc)
        return (void *)1;
    fc->b = b;
    for (;;) {
        size_t i = atomic_fetch_add(&b->next_file, 1);
        if (i >= b->n_files)
            break;
        result *r = &b->results[i];
        char err[256] = "";
        size_t len = 0;
        struct stat fst = {0};
        int st = ST_PYSCAN_OK;
        if (b->opts->scan_cache && fstatat(b->root_fd, b->files[i].rel, &fst, 0) == 0 &&
            S_ISREG(fst.st_mode) && (uint64_t)fst.st_size <= max &&
            (r->hit = sc_find(&b->cache, b->files[i].rel, &fst))) {
            /* unchanged since it was scanned: its records, without reading it */
            r->bytes = r->hit->size;
            setup_file_ctx(b, (uint32_t)i, fc);
            fc->self = (uint32_t)i;
            fc->edges = NULL;
            fc->n_edges = fc->cap_edges = 0;
            fc->nomem = false;
            sc_replay(r->hit, on_import, fc);
        } else {
            if (read_file(b->root_fd, b->files[i].rel, max, &buf, &cap, &len, &fst, err,
                          sizeof err)) {
                r->error = strdup(err);
                continue;
            }
            r->bytes = len;
            setup_file_ctx(b, (uint32_t)i, fc);
            fc->self = (uint32_t)i;
            fc->edges = NULL;
            fc->n_edges = fc->cap_edges = 0;
            fc->nomem = false;
            recording rec = {fc, NULL, false};
            if (b->opts->scan_cache && mtime_ns(&fst) < b->recent_ns &&
                sc_entry_init(&r->fresh, b->files[i].rel, &fst) == 0)
                rec.entry = &r->fresh;
            st = st_pyscan_buffer(buf, len, on_import_recorded, &rec, err, sizeof err);
            if (rec.nomem)
                fc->nomem = true;
            if (st != ST_PYSCAN_OK || fc->nomem)
                sc_entry_free(&r->fresh); /* a failed scan is not cached */
        }
        if (fc->nomem) {
            free(fc->edges);
            r->error = strdup("out of memory");
            continue;
        }
        if (st != ST_PYSCAN_OK) {
            free(fc->edges);
            r->error = strdup(*err ? err : st_pyscan_strerror(st));
            continue;
        }
        if (fc->n_edges > 1)
            qsort(fc->edges, fc->n_edges, sizeof *fc->edges, cmp_u32);
        size_t n = 0;
        for (size_t k = 0; k < fc->n_edges; k++)
            if (n == 0 || fc->edges[n - 1] != fc->edges[k])
                fc->edges[n++] = fc->edges[k];
        r->edges = fc->edges;
        r->n_edges = n;
    }
    free(buf);
    free(fc);
    return NULL;
}

static unsigned thread_count(const st_pygraph_options *opts, size_t n_files)
{
    long n = opts->threads ? (long)opts->threads : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > MAX_THREADS)
        n = MAX_THREADS;
    if ((size_t)n > n_files)
        n = n_files ? (long)n_files : 1;
    return (unsigned)n;
}

static int scan_all(builder *b)
{
    pthread_t tids[MAX_THREADS];
    unsigned n = thread_count(b->opts, b->n_files), started = 0;
    int status = ST_PYGRAPH_OK;
    atomic_init(&b->next_file, 0);
    for (; started < n; started++) {
        if (started == 0 && n == 1)
            break;
        if (pthread_create(&tids[started], NULL, worker, b) != 0) {
            status = ST_PYGRAPH_ETHREAD;
            break;
        }
    }
    if (started == 0 && status == ST_PYGRAPH_OK) {
        if (worker(b) != NULL)
            status = ST_PYGRAPH_ENOMEM;
    }
    for (unsigned k = 0; k < started; k++) {
        void *ret = NULL;
        pthread_join(tids[k], &ret);
        if (ret != NULL)
            status = ST_PYGRAPH_ENOMEM;
    }
    return status;
}

/* ---- assembling the graph --------------------------------------------------------------------- */

static int assemble(builder *b, st_pygraph *g)
{
    size_t n = b->n_files, total = 0;
    g->n = n;
    g->paths = calloc(n ? n : 1, sizeof *g->paths);
    g->flags = calloc(n ? n : 1, 1);
    g->dep_off = calloc(n + 1, sizeof *g->dep_off);
    g->rdep_off = calloc(n + 1, sizeof *g->rdep_off);
    if (!g->paths || !g->flags || !g->dep_off || !g->rdep_off)
        return ST_PYGRAPH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        total += b->results[i].n_edges;
        g->bytes += b->results[i].bytes;
    }
    if (total > UINT32_MAX)
        return ST_PYGRAPH_ENOMEM;
    g->deps = malloc((total ? total : 1) * sizeof *g->deps);
    g->rdeps = malloc((total ? total : 1) * sizeof *g->rdeps);
    if (!g->deps || !g->rdeps)
        return ST_PYGRAPH_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        g->paths[i] = b->files[i].rel;
        b->files[i].rel = NULL;
        g->flags[i] = file_flags(g->paths[i]);
        g->dep_off[i] = (uint32_t)k;
        for (size_t e = 0; e < b->results[i].n_edges; e++) {
            g->deps[k++] = b->results[i].edges[e];
            g->rdep_off[b->results[i].edges[e] + 1]++;
        }
    }
    g->dep_off[n] = (uint32_t)k;
    for (size_t i = 0; i < n; i++)
        g->rdep_off[i + 1] += g->rdep_off[i];
    uint32_t *fill = calloc(n ? n : 1, sizeof *fill);
    if (!fill)
        return ST_PYGRAPH_ENOMEM;
    /* sources are visited in id order, so every rdeps list comes out sorted */
    for (size_t i = 0; i < n; i++)
        for (uint32_t e = g->dep_off[i]; e < g->dep_off[i + 1]; e++) {
            uint32_t t = g->deps[e];
            g->rdeps[g->rdep_off[t] + fill[t]++] = (uint32_t)i;
        }
    free(fill);
    return ST_PYGRAPH_OK;
}

static void builder_free(builder *b)
{
    for (size_t i = 0; i < b->n_dirs; i++)
        free(b->dirs[i].rel);
    for (size_t i = 0; i < b->n_files; i++)
        free(b->files[i].rel);
    if (b->results)
        for (size_t i = 0; i < b->n_files; i++) {
            free(b->results[i].edges);
            free(b->results[i].error);
            sc_entry_free(&b->results[i].fresh);
        }
    sc_free(&b->cache);
    free(b->results);
    free(b->dirs);
    free(b->files);
    free(b->entries);
    free(b->table);
    if (b->root_fd >= 0)
        close(b->root_fd);
}

/* Rewrites the scan cache when its entries changed: one per file scanned now or replayed. */
static void save_cache(builder *b)
{
    const sc_entry **keep = malloc((b->n_files ? b->n_files : 1) * sizeof(const sc_entry *));
    if (!keep)
        return;
    size_t n = 0, fresh = 0;
    for (size_t i = 0; i < b->n_files; i++) {
        if (b->results[i].hit)
            keep[n++] = b->results[i].hit;
        else if (b->results[i].fresh.rel) {
            keep[n++] = &b->results[i].fresh;
            fresh++;
        }
    }
    /* the files are in strcmp order, as the cache must be */
    if ((fresh || n != b->cache.n) && sc_save(b->opts->scan_cache, keep, n) < 0) {
        char msg[PATH_MAX + 128];
        snprintf(msg, sizeof msg, "cannot write the scan cache %s: %s", b->opts->scan_cache,
                 strerror(errno));
        if (b->opts->on_error) /* not a file of the tree: not counted among its errors */
            b->opts->on_error("", msg, b->opts->userdata);
    }
    free(keep);
}

int st_pygraph_build(const char *root, const st_pygraph_options *opts, st_pygraph **out)
{
    static const st_pygraph_options defaults;
    builder b = {.root_fd = -1};
    st_pygraph *g = NULL;
    int status;
    if (!root || !out)
        return ST_PYGRAPH_EINVAL;
    *out = NULL;
    b.opts = opts ? opts : &defaults;
    b.skip = b.opts->skip_dirs ? b.opts->skip_dirs : default_skip;
    b.root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (b.root_fd < 0 || !realpath(root, b.root_real)) {
        status = ST_PYGRAPH_EROOT;
        goto out;
    }
    char *root_rel = strdup("");
    if (!root_rel || add_dir(&b, root_rel, root_rel, -1)) {
        free(root_rel);
        status = ST_PYGRAPH_ENOMEM;
        goto out;
    }
    for (size_t di = 0; di < b.n_dirs; di++) {
        status = walk_dir(&b, (int32_t)di);
        if (status)
            goto out;
    }
    if (b.n_files >= UINT32_MAX || b.n_dirs >= INT32_MAX) {
        status = ST_PYGRAPH_ENOMEM;
        goto out;
    }
    status = index_tree(&b);
    if (status)
        goto out;
    b.results = calloc(b.n_files ? b.n_files : 1, sizeof *b.results);
    if (!b.results) {
        status = ST_PYGRAPH_ENOMEM;
        goto out;
    }
    if (b.opts->scan_cache) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        b.recent_ns = now.tv_sec > 2 ? (uint64_t)(now.tv_sec - 2) * 1000000000u : 0;
        sc_load(&b.cache, b.opts->scan_cache);
    }
    status = scan_all(&b);
    if (status)
        goto out;
    if (b.opts->scan_cache)
        save_cache(&b);
    for (size_t i = 0; i < b.n_files; i++)
        if (b.results[i].error)
            report(&b, b.files[i].rel, b.results[i].error);
    g = calloc(1, sizeof *g);
    if (!g) {
        status = ST_PYGRAPH_ENOMEM;
        goto out;
    }
    status = assemble(&b, g);
    g->n_errors = b.n_errors;
    for (size_t i = 0; i < b.n_files; i++)
        g->n_cached += b.results[i].hit != NULL;
out:
    builder_free(&b);
    if (status != ST_PYGRAPH_OK) {
        st_pygraph_free(g);
        return status;
    }
    *out = g;
    return ST_PYGRAPH_OK;
}

void st_pygraph_free(st_pygraph *g)
{
    if (!g)
        return;
    if (g->paths)
        for (size_t i = 0; i < g->n; i++)
            free(g->paths[i]);
    free(g->paths);
    free(g->flags);
    free(g->dep_off);
    free(g->deps);
    free(g->rdep_off);
    free(g->rdeps);
    free(g);
}

/* ---- queries ------------------------------------------------------------------------------------ */

size_t st_pygraph_count(const st_pygraph *g)
{
    return g->n;
}

const char *st_pygraph_path(const st_pygraph *g, uint32_t node)
{
    return node < g->n ? g->paths[node] : NULL;
}

bool st_pygraph_is_test(const st_pygraph *g, uint32_t node)
{
    return node < g->n && (g->flags[node] & NODE_TEST);
}

bool st_pygraph_is_conftest(const st_pygraph *g, uint32_t node)
{
    return node < g->n && (g->flags[node] & NODE_CONFTEST);
}

uint32_t st_pygraph_find(const st_pygraph *g, const char *path)
{
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->paths[mid], path);
        if (c == 0)
            return (uint32_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return ST_PYGRAPH_NONE;
}

size_t st_pygraph_deps(const st_pygraph *g, uint32_t node, const uint32_t **ids)
{
    if (node >= g->n) {
        *ids = NULL;
        return 0;
    }
    *ids = g->deps + g->dep_off[node];
    return g->dep_off[node + 1] - g->dep_off[node];
}

size_t st_pygraph_rdeps(const st_pygraph *g, uint32_t node, const uint32_t **ids)
{
    if (node >= g->n) {
        *ids = NULL;
        return 0;
    }
    *ids = g->rdeps + g->rdep_off[node];
    return g->rdep_off[node + 1] - g->rdep_off[node];
}

long st_pygraph_reach(const st_pygraph *g, const uint32_t *starts, size_t n_starts,
              uint8_t *mark, st_pygraph_step *order)
{
    if (!mark || (n_starts && !starts))
        return ST_PYGRAPH_EINVAL;
    memset(mark, 0, g->n);
    uint32_t *queue = malloc((g->n ? g->n : 1) * sizeof *queue);
    if (!queue)
        return ST_PYGRAPH_ENOMEM;
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < n_starts; i++) {
        uint32_t s = starts[i];
        if (s >= g->n || mark[s])
            continue;
        mark[s] = 1;
        if (order)
            order[tail] = (st_pygraph_step){s, ST_PYGRAPH_NONE};
        queue[tail++] = s;
    }
    while (head < tail) {
        uint32_t u = queue[head++];
        for (uint32_t e = g->dep_off[u]; e < g->dep_off[u + 1]; e++) {
            uint32_t v = g->deps[e];
            if (mark[v])
                continue;
            mark[v] = 1;
            if (order)
                order[tail] = (st_pygraph_step){v, u};
            queue[tail++] = v;
        }
    }
    free(queue);
    return (long)tail;
}

long st_pygraph_reach_tests(const st_pygraph *g, uint8_t *mark, st_pygraph_step *order)
{
    uint32_t *starts = malloc((g->n ? g->n : 1) * sizeof *starts);
    if (!starts)
        return ST_PYGRAPH_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++)
        if (g->flags[i] & NODE_TEST)
            starts[n++] = (uint32_t)i;
    long r = st_pygraph_reach(g, starts, n, mark, order);
    free(starts);
    return r;
}

size_t st_pygraph_roots(const st_pygraph *g, uint32_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++)
        if (g->rdep_off[i + 1] == g->rdep_off[i])
            out[n++] = (uint32_t)i;
    return n;
}

uint64_t st_pygraph_bytes(const st_pygraph *g)
{
    return g->bytes;
}

size_t st_pygraph_n_edges(const st_pygraph *g)
{
    return g->dep_off[g->n];
}

size_t st_pygraph_n_errors(const st_pygraph *g)
{
    return g->n_errors;
}

size_t st_pygraph_n_cached(const st_pygraph *g)
{
    return g->n_cached;
}

static const st_enum_name pygraph_errors[] = {
    {ST_PYGRAPH_OK, "success"},
    {ST_PYGRAPH_EROOT, "the project root cannot be opened"},
    {ST_PYGRAPH_ENOMEM, "out of memory"},
    {ST_PYGRAPH_ETHREAD, "cannot start a worker thread"},
    {ST_PYGRAPH_EINVAL, "invalid argument"},
};

const char *st_pygraph_strerror(int status)
{
    return ST_ENUM_NAME(pygraph_errors, status, "unknown pygraph status");
}
