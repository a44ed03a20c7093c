/* SPDX-License-Identifier: MIT */
/* Change-aware runs (see changed.h). */
#include "config.h"

#include "changed.h"

#include "pygraph.h"
#include "st_path.h"

#include <selftest/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

void st_selection_free(st_selection *sel)
{
    if (!sel)
        return;
    free(sel->everything_why);
    st_strv_free(&sel->tests);
    st_strv_free(&sel->why);
    memset(sel, 0, sizeof(*sel));
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int st_changed_ignored(const char *rel, const char *const *skip_dirs)
{
    if (ends_with(rel, ".pyc") || ends_with(rel, ".pyo"))
        return 1;
    /* every directory component (not the file name) against the skip list */
    const char *p = rel;
    for (const char *slash; (slash = strchr(p, '/')); p = slash + 1) {
        size_t len = (size_t)(slash - p);
        if (len == 4 && strncmp(p, ".git", 4) == 0)
            return 1;
        if (len == 11 && strncmp(p, "__pycache__", 11) == 0)
            return 1;
        if (len == 13 && strncmp(p, "site-packages", 13) == 0)
            return 1;
        for (size_t i = 0; skip_dirs && skip_dirs[i]; i++)
            if (strlen(skip_dirs[i]) == len && strncmp(p, skip_dirs[i], len) == 0)
                return 1;
    }
    return 0;
}

/* ---- selection ------------------------------------------------------------------------------ */

static int is_pytest_config(const char *base)
{
    return strcmp(base, "pytest.ini") == 0 || strcmp(base, "pyproject.toml") == 0 ||
           strcmp(base, "tox.ini") == 0 || strcmp(base, "setup.cfg") == 0;
}

/* dirname of a repo-relative path, "" for a top-level file; caller frees */
static char *dir_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? st_strndup(path, (size_t)(s - path)) : st_strdup("");
}

/* Is path inside directory dir ("" is the root)? */
static int under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return n == 0 || (strncmp(path, dir, n) == 0 && path[n] == '/');
}

/* A reverse edge the import graph does not hold: from -> to means "a change of from affects
 * to" (a package's __init__.py -> a test file inside it; a conftest.py -> a test file under
 * its directory). */
typedef struct extra_edge {
    uint32_t from, to;
} extra_edge;

static int extra_cmp(const void *a, const void *b)
{
    const extra_edge *x = a, *y = b;
    return x->from < y->from ? -1 : x->from > y->from ? 1 : x->to < y->to ? -1 : x->to > y->to;
}

typedef struct extra_edges {
    extra_edge *v;
    size_t n, cap;
} extra_edges;

static int extra_push(extra_edges *e, uint32_t from, uint32_t to)
{
    if (ST_GROW(e->v, e->cap, e->n + 1) < 0)
        return ST_ERR_NOMEM;
    e->v[e->n++] = (extra_edge){from, to};
    return 0;
}

/* The implicit edges of every test-side file: the __init__.py of each package holding it (up to
 * the first directory without one, as pytest's rootdir-based import does), and every conftest.py
 * of a directory above it. */
static int implicit_edges(const st_pygraph *g, extra_edges *e)
{
    size_t n = st_pygraph_count(g);
    /* the conftests, by directory */
    for (uint32_t t = 0; t < n; t++) {
        if (!st_pygraph_is_test(g, t))
            continue;
        const char *path = st_pygraph_path(g, t);
        char *dir = dir_of(path);
        if (!dir)
            return ST_ERR_NOMEM;
        /* packages: walk up while the directory has an __init__.py */
        char *d = st_strdup(dir);
        while (d && d[0]) {
            char *init = st_asprintf("%s/__init__.py", d);
            uint32_t id = init ? st_pygraph_find(g, init) : ST_PYGRAPH_NONE;
            free(init);
            if (id == ST_PYGRAPH_NONE)
                break;
            if (id != t && extra_push(e, id, t) < 0) {
                free(d);
                free(dir);
                return ST_ERR_NOMEM;
            }
            char *up = dir_of(d);
            free(d);
            d = up;
        }
        free(d);
        /* conftests of this directory and every one above it */
        d = dir;
        for (;;) {
            char *c = d[0] ? st_asprintf("%s/conftest.py", d) : st_strdup("conftest.py");
            uint32_t id = c ? st_pygraph_find(g, c) : ST_PYGRAPH_NONE;
            free(c);
            if (id != ST_PYGRAPH_NONE && id != t && extra_push(e, id, t) < 0) {
                free(d);
                return ST_ERR_NOMEM;
            }
            if (!d[0])
                break;
            char *up = dir_of(d);
            free(d);
            if (!up)
                return ST_ERR_NOMEM;
            d = up;
        }
        free(d);
    }
    if (e->n)
        qsort(e->v, e->n, sizeof(*e->v), extra_cmp);
    return 0;
}

/* Where the walk reached a node from: the node nearer the change, and the change (an index into
 * the labels). */
typedef struct reach_info {
    uint32_t parent; /* ST_PYGRAPH_NONE for a start */
    uint32_t label;  /* index of the changed file's description */
    uint8_t seen;
} reach_info;

static void set_everything(st_selection *sel, char *why)
{
    if (sel->everything) {
        free(why);
        return;
    }
    sel->everything = 1;
    sel->everything_why = why;
}

typedef struct sel_item {
    const char *test;
    char *why;
} sel_item;

static int item_cmp(const void *a, const void *b)
{
    return strcmp(((const sel_item *)a)->test, ((const sel_item *)b)->test);
}

int st_changed_select(const st_pygraph *g, const char *const *changed, size_t n_changed,
                      const char *const *failed, size_t n_failed, st_selection *sel)
{
    size_t n = st_pygraph_count(g);
    reach_info *ri = calloc(n + 1, sizeof(*ri));
    uint32_t *queue = calloc(n + 1, sizeof(*queue));
    st_strv labels = {0};
    extra_edges extra = {0};
    sel_item *items = NULL;
    size_t n_items = 0;
    int rc = ST_ERR_NOMEM;
    if (!ri || !queue)
        goto out;
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < n_changed; i++) {
        const char *path = changed[i], *base = base_name(path);
        if (strcmp(base, "conftest.py") == 0) {
            set_everything(sel, st_asprintf("%s changed (a conftest.py applies to the tests "
                                            "below it)", path));
            continue;
        }
        if (is_pytest_config(base)) {
            set_everything(sel, st_asprintf("%s changed (pytest's configuration)", path));
            continue;
        }
        if (ends_with(path, ".py")) {
            uint32_t id = st_pygraph_find(g, path);
            if (id == ST_PYGRAPH_NONE) {
                set_everything(sel, st_asprintf("%s changed and the import graph cannot place "
                                                "it (deleted, or not importable)", path));
                continue;
            }
            if (!ri[id].seen) {
                ri[id] = (reach_info){ST_PYGRAPH_NONE, (uint32_t)labels.n, 1};
                queue[tail++] = id;
                st_strv_pushf(&labels, "%s changed", path);
            }
            continue;
        }
        /* not a Python module: the modules of the nearest directory holding Python files */
        char *dir = dir_of(path);
        int placed = 0;
        while (dir && !placed) {
            if (!dir[0])
                break; /* the project root: anything may read it */
            uint32_t label = (uint32_t)labels.n;
            for (uint32_t id = 0; id < n; id++) {
                const char *p = st_pygraph_path(g, id);
                const char *slash = strrchr(p, '/');
                if (!slash || (size_t)(slash - p) != strlen(dir) ||
                    strncmp(p, dir, strlen(dir)) != 0)
                    continue;
                if (!placed)
                    st_strv_pushf(&labels, "%s changed (not a Python module: counted as a change "
                                  "of every module in %s/)", path, dir);
                placed = 1;
                if (!ri[id].seen) {
                    ri[id] = (reach_info){ST_PYGRAPH_NONE, label, 1};
                    queue[tail++] = id;
                }
            }
            if (!placed) {
                char *up = dir_of(dir);
                free(dir);
                dir = up;
            }
        }
        if (!dir)
            goto out;
        if (!placed)
            set_everything(sel, st_asprintf("%s changed: not a Python module, and no directory "
                                            "below the project root holding Python files "
                                            "contains it", path));
        free(dir);
    }
    if (labels.oom || (sel->everything && !sel->everything_why))
        goto out;
    if (implicit_edges(g, &extra) < 0)
        goto out;
    /* breadth first over the reverse edges: everything that imports a changed file */
    while (head < tail) {
        uint32_t node = queue[head++];
        const uint32_t *rd;
        size_t nr = st_pygraph_rdeps(g, node, &rd);
        for (size_t k = 0; k < nr; k++)
            if (!ri[rd[k]].seen) {
                ri[rd[k]] = (reach_info){node, ri[node].label, 1};
                queue[tail++] = rd[k];
            }
        extra_edge key = {node, 0};
        size_t lo = 0, hi = extra.n;
        while (lo < hi) { /* the first edge from node */
            size_t mid = (lo + hi) / 2;
            if (extra_cmp(&extra.v[mid], &key) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (; lo < extra.n && extra.v[lo].from == node; lo++)
            if (!ri[extra.v[lo].to].seen) {
                ri[extra.v[lo].to] = (reach_info){node, ri[node].label, 1};
                queue[tail++] = extra.v[lo].to;
            }
    }
    items = calloc(n + n_failed + 1, sizeof(*items));
    if (!items)
        goto out;
    for (uint32_t id = 0; id < n; id++) {
        if (!ri[id].seen || !st_pygraph_is_test(g, id) || st_pygraph_is_conftest(g, id))
            continue;
        st_buf b = {0};
        st_buf_printf(&b, "%s", labels.v[ri[id].label]);
        if (ri[id].parent != ST_PYGRAPH_NONE) {
            st_buf_puts(&b, ": ");
            for (uint32_t x = id;; x = ri[x].parent) {
                st_buf_puts(&b, st_pygraph_path(g, x));
                if (ri[x].parent == ST_PYGRAPH_NONE)
                    break;
                st_buf_puts(&b, " -> ");
            }
        }
        items[n_items].test = st_pygraph_path(g, id);
        items[n_items].why = st_buf_steal(&b);
        if (!items[n_items++].why)
            goto out;
    }
    for (size_t i = 0; i < n_failed; i++) {
        uint32_t id = st_pygraph_find(g, failed[i]);
        if (id == ST_PYGRAPH_NONE || ri[id].seen)
            continue; /* gone, or already chosen for a change */
        ri[id].seen = 1;
        items[n_items].test = st_pygraph_path(g, id);
        items[n_items].why = st_strdup("failed in a run since the last passing one");
        if (!items[n_items++].why)
            goto out;
    }
    if (n_items)
        qsort(items, n_items, sizeof(*items), item_cmp);
    for (size_t i = 0; i < n_items; i++) {
        st_strv_push(&sel->tests, items[i].test);
        st_strv_push(&sel->why, items[i].why);
    }
    rc = sel->tests.oom || sel->why.oom ? ST_ERR_NOMEM : ST_OK;
out:
    for (size_t i = 0; items && i < n_items; i++)
        free(items[i].why);
    free(items);
    free(extra.v);
    st_strv_free(&labels);
    free(queue);
    free(ri);
    return rc;
}

int st_changed_plan(const st_selection *sel, const st_strv *whole, st_strv *batches,
                    st_strv **keeps, int affected_first)
{
    size_t n = batches->n;
    st_strv *k = calloc(n + 1, sizeof(*k));
    int *hit = calloc(n + 1, sizeof(*hit));
    if (!k || !hit) {
        free(k);
        free(hit);
        return ST_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const char *b = batches->v[i];
        const char *node = strstr(b, "::");
        if (sel->everything || (whole && st_strv_contains(whole, b))) {
            hit[i] = 1;
            continue;
        }
        if (node || ends_with(b, ".py")) { /* a file, or a node of one */
            size_t len = node ? (size_t)(node - b) : strlen(b);
            for (size_t t = 0; t < sel->tests.n && !hit[i]; t++)
                hit[i] = strlen(sel->tests.v[t]) == len && strncmp(sel->tests.v[t], b, len) == 0;
            continue;
        }
        const char *dir = strcmp(b, ".") == 0 ? "" : b;
        for (size_t t = 0; t < sel->tests.n; t++)
            if (under(sel->tests.v[t], dir))
                st_strv_push(&k[i], sel->tests.v[t]);
        hit[i] = k[i].n > 0;
    }
    /* the new order: batches with affected files first (all of them with affected_first) */
    st_strv nb = {0};
    st_strv *nk = calloc(n + 1, sizeof(*nk));
    size_t m = 0;
    int oom = !nk;
    for (int pass = 0; !oom && pass < 2; pass++)
        for (size_t i = 0; i < n; i++) {
            if ((pass == 0) != (hit[i] != 0) || (pass == 1 && !affected_first))
                continue;
            st_strv_push(&nb, batches->v[i]);
            nk[m++] = k[i];
            memset(&k[i], 0, sizeof(k[i]));
        }
    for (size_t i = 0; i < n; i++)
        oom |= k[i].oom, st_strv_free(&k[i]);
    for (size_t i = 0; nk && i < m; i++)
        oom |= nk[i].oom;
    free(k);
    free(hit);
    if (oom || nb.oom) {
        for (size_t i = 0; nk && i < m; i++)
            st_strv_free(&nk[i]);
        free(nk);
        st_strv_free(&nb);
        return ST_ERR_NOMEM;
    }
    st_strv_free(batches);
    *batches = nb;
    *keeps = nk;
    return 0;
}

/* ---- git ------------------------------------------------------------------------------------ */

/* Runs `git -C root ARGS...` (no shell) and collects its stdout and stderr. Returns git's exit
 * status (0..255; 128 + signal when killed), or ST_ERR_IO with errno when it cannot be
 * started. */
static int git_run(const char *root, const char *const *args, st_buf *out, st_buf *err)
{
    const char *argv[24];
    size_t n = 0;
    argv[n++] = "git";
    argv[n++] = "-C";
    argv[n++] = root;
    for (size_t i = 0; args[i] && n < sizeof(argv) / sizeof(argv[0]) - 1; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int po[2] = {-1, -1}, pe[2] = {-1, -1};
    if (pipe2(po, O_CLOEXEC) < 0)
        return ST_ERR_IO;
    if (pipe2(pe, O_CLOEXEC) < 0) {
        int e = errno;
        close(po[0]);
        close(po[1]);
        errno = e;
        return ST_ERR_IO;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    pid_t pid;
    int src = posix_spawnp(&pid, "git", &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(po[1]);
    close(pe[1]);
    if (src != 0) {
        close(po[0]);
        close(pe[0]);
        errno = src;
        return ST_ERR_IO;
    }
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    st_buf *bufs[2] = {out, err};
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !fds[i].revents)
                continue;
            char chunk[8192];
            ssize_t r = read(fds[i].fd, chunk, sizeof(chunk));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
                continue;
            }
            st_buf_append(bufs[i], chunk, (size_t)r);
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 255;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* git's stderr as one line: the first line, without "fatal: " */
static void git_message(const st_buf *err, char *msg, size_t size)
{
    if (!msg || !size)
        return;
    const char *s = err->data ? err->data : "";
    if (strncmp(s, "fatal: ", 7) == 0 || strncmp(s, "error: ", 7) == 0)
        s += 7;
    size_t len = strcspn(s, "\n");
    snprintf(msg, size, "%.*s", (int)len, len ? s : "git failed without a message");
}

/* The root's path inside its work tree ("" or "sub/dir/"), or a status. */
static int git_prefix(const char *root, char **prefix, char *msg, size_t size)
{
    st_buf out = {0}, err = {0};
    static const char *const args[] = {"rev-parse", "--show-prefix", NULL};
    int rc = git_run(root, args, &out, &err);
    int status = ST_GIT_OK;
    if (rc < 0) {
        if (msg)
            snprintf(msg, size, "cannot run git: %s", strerror(errno));
        status = ST_GIT_MISSING;
    } else if (rc != 0) {
        git_message(&err, msg, size);
        status = ST_GIT_NOT_REPO;
    } else {
        size_t len = out.data ? strcspn(out.data, "\n") : 0;
        *prefix = st_strndup(out.data ? out.data : "", len);
        if (!*prefix)
            status = ST_GIT_ERROR;
    }
    st_buf_free(&out);
    st_buf_free(&err);
    return status;
}

int st_git_resolve(const char *root, const char *rev, char **sha, char *msg, size_t size)
{
    *sha = NULL;
    int status;
    char *spec = st_asprintf("%s^{commit}", rev);
    if (!spec)
        return ST_GIT_ERROR;
    /* "--end-of-options": a revision starting with '-' is not an option */
    const char *const args[] = {"rev-parse", "--verify", "--quiet", "--end-of-options", spec,
                                NULL};
    st_buf out = {0}, err = {0};
    int rc = rev[0] ? git_run(root, args, &out, &err) : 1;
    free(spec);
    size_t len = out.data ? strcspn(out.data, "\n") : 0;
    if (rc < 0) {
        if (msg)
            snprintf(msg, size, "cannot run git: %s", strerror(errno));
        status = ST_GIT_MISSING;
    } else if (rc == 128) { /* git's fatal error: not a repository (or one it refuses) */
        git_message(&err, msg, size);
        status = ST_GIT_NOT_REPO;
    } else if (rc != 0 || len < 40) {
        if (msg)
            snprintf(msg, size, "'%s' does not name a commit", rev);
        status = ST_GIT_BAD_REV;
    } else {
        *sha = st_strndup(out.data, len);
        status = *sha ? ST_GIT_OK : ST_GIT_ERROR;
    }
    st_buf_free(&out);
    st_buf_free(&err);
    return status;
}

/* Can root be in a git work tree? No when neither it nor a directory above it holds a .git
 * (and GIT_DIR does not name one elsewhere): every run records the commit it ran on, and a
 * project outside git need not pay a git process for it. */
static int maybe_in_git(const char *root)
{
    const char *gd = getenv("GIT_DIR");
    if (gd && *gd)
        return 1;
    char *dir = realpath(root, NULL);
    if (!dir)
        return 1; /* let git say what is wrong */
    int found = 0;
    while (dir && !found) {
        char *dotgit = st_path_join(dir, ".git");
        struct stat st;
        found = !dotgit || lstat(dotgit, &st) == 0;
        free(dotgit);
        char *up = strcmp(dir, "/") == 0 ? NULL : st_path_dirname(dir);
        free(dir);
        dir = up;
    }
    free(dir);
    return found;
}

int st_git_head(const char *root, char **sha)
{
    *sha = NULL;
    if (!maybe_in_git(root))
        return ST_GIT_NOT_REPO;
    return st_git_resolve(root, "HEAD", sha, NULL, 0);
}

/* Adds the NUL-separated toplevel-relative paths of text[0..len) that lie under prefix, made
 * relative to it; skip: bytes to skip at the start of each entry (status's "XY "). */
static void add_paths(const char *text, size_t len, size_t skip, const char *prefix,
                      st_strv *out)
{
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < len;) {
        const char *entry = text + i;
        size_t elen = strnlen(entry, len - i);
        i += elen + 1;
        if (elen <= skip)
            continue;
        const char *path = entry + skip;
        if (strncmp(path, prefix, plen) != 0 || !path[plen])
            continue; /* outside the project root */
        if (!st_strv_contains(out, path + plen))
            st_strv_push(out, path + plen);
    }
}

/* The files under root that differ from commit sha (NULL: HEAD, whose differences `git status`
 * alone lists) into out, root-relative; prefix: root's path in its work tree. */
static int changed_since(const char *root, const char *prefix, const char *sha, st_strv *out,
                         char *msg, size_t size)
{
    int status = ST_GIT_OK;
    const char *const diff[] = {"diff", "--name-only", "--no-renames", "--no-ext-diff",
                                "--no-relative", "-z", sha, "--", ".", NULL};
    const char *const stat[] = {"--no-optional-locks", "status", "--porcelain", "-z",
                                "--untracked-files=all", "--no-renames", "--", ".", NULL};
    const char *const *cmds[2] = {diff, stat};
    for (int c = sha ? 0 : 1; c < 2 && status == ST_GIT_OK; c++) {
        st_buf o = {0}, e = {0};
        int rc = git_run(root, cmds[c], &o, &e);
        if (rc < 0) {
            if (msg)
                snprintf(msg, size, "cannot run git: %s", strerror(errno));
            status = ST_GIT_MISSING;
        } else if (rc != 0) {
            git_message(&e, msg, size);
            status = ST_GIT_ERROR;
        } else {
            add_paths(o.data ? o.data : "", o.len, c == 0 ? 0 : 3, prefix, out);
            if (o.oom || out->oom)
                status = ST_GIT_ERROR;
        }
        st_buf_free(&o);
        st_buf_free(&e);
    }
    return status;
}

int st_git_changed_files(const char *root, const char *sha, st_strv *out, char *msg,
                         size_t size)
{
    char *prefix = NULL;
    int status = git_prefix(root, &prefix, msg, size);
    if (status == ST_GIT_OK)
        status = changed_since(root, prefix, sha, out, msg, size);
    free(prefix);
    return status;
}

int st_git_state(const char *root, char **sha, st_strv *changed)
{
    *sha = NULL;
    if (!maybe_in_git(root))
        return ST_GIT_NOT_REPO;
    /* one process for the prefix and the commit: "PREFIX\nSHA\n" */
    static const char *const args[] = {"rev-parse", "--show-prefix", "--verify", "--quiet",
                                       "HEAD^{commit}", NULL};
    st_buf out = {0}, err = {0};
    int rc = git_run(root, args, &out, &err);
    int status = rc < 0 ? ST_GIT_MISSING : rc == 128 ? ST_GIT_NOT_REPO : ST_GIT_BAD_REV;
    const char *text = out.data ? out.data : "";
    const char *nl = strchr(text, '\n');
    size_t sha_len = nl ? strcspn(nl + 1, "\n") : 0;
    char *prefix = NULL;
    if (rc == 0 && nl && sha_len >= 40) {
        prefix = st_strndup(text, (size_t)(nl - text));
        *sha = st_strndup(nl + 1, sha_len);
        status = prefix && *sha ? ST_GIT_OK : ST_GIT_ERROR;
    }
    st_buf_free(&out);
    st_buf_free(&err);
    if (status == ST_GIT_OK) /* the differences from HEAD: what `git status` lists */
        status = changed_since(root, prefix, NULL, changed, NULL, 0);
    free(prefix);
    if (status != ST_GIT_OK) {
        free(*sha);
        *sha = NULL;
    }
    return status;
}

int st_git_hunks(const char *root, const char *sha, const char *rel, st_hunk **hunks, size_t *n)
{
    *hunks = NULL;
    *n = 0;
    const char *const args[] = {"diff", "-U0", "--no-color", "--no-ext-diff", "--no-textconv",
                                "--no-renames", sha, "--", rel, NULL};
    st_buf o = {0}, e = {0};
    int rc = git_run(root, args, &o, &e), status = ST_GIT_OK;
    size_t cap = 0;
    if (rc < 0)
        status = ST_GIT_MISSING;
    else if (rc != 0 || o.oom)
        status = ST_GIT_ERROR;
    for (const char *p = o.data; status == ST_GIT_OK && p && p < o.data + o.len;) {
        const char *nl = memchr(p, '\n', (size_t)(o.data + o.len - p));
        const char *end = nl ? nl : o.data + o.len;
        if (end - p > 4 && memcmp(p, "@@ -", 4) == 0) {
            char *q;
            long start = strtol(p + 4, &q, 10), count = 1;
            if (*q == ',')
                count = strtol(q + 1, &q, 10);
            if (*q != ' ' || start < 0 || count < 0 || ST_GROW(*hunks, cap, *n + 1) < 0) {
                status = ST_GIT_ERROR;
                break;
            }
            (*hunks)[(*n)++] = (st_hunk){start, count};
        } else if (end - p > 11 && memcmp(p, "Binary files", 12) == 0) {
            status = ST_GIT_ERROR; /* no lines to place */
        }
        p = end + 1;
    }
    st_buf_free(&o);
    st_buf_free(&e);
    if (status != ST_GIT_OK) {
        free(*hunks);
        *hunks = NULL;
        *n = 0;
    }
    return status;
}
