/* SPDX-License-Identifier: MIT */
/* Test dependencies (see testdeps.h). */
#include "config.h"

#include "testdeps.h"

#include "changed.h"
#include "json.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#define DEPS_MAX_BYTES (256u << 20) /* a record or a map larger than this is not read */

struct st_testdeps {
    yajl_val root;
    yajl_val records; /* array of the plugin's per-process objects */
    const char *run_id;
    st_strv dirty;
};

/* Is text one JSON object? */
static int json_object(const char *text, size_t len)
{
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t' || text[i] == '\r'))
        i++;
    if (i == len || text[i] != '{')
        return 0;
    yajl_handle h = yajl_alloc(NULL, NULL, NULL);
    if (!h)
        return 0;
    int ok = yajl_parse(h, (const unsigned char *)text, len) == yajl_status_ok &&
             yajl_complete_parse(h) == yajl_status_ok;
    yajl_free(h);
    return ok;
}

static int add_records(st_buf *out, const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return ST_OK; /* the batch recorded nothing */
    struct dirent *e;
    int rc = ST_OK;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "deps-", 5) != 0 || len < 6 ||
            strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        char *path = st_path_join(dir, e->d_name), *text = NULL;
        size_t tlen = 0;
        int r = path ? st_read_file(path, DEPS_MAX_BYTES, &text, &tlen) : -ENOMEM;
        if (r == 0 && json_object(text, tlen)) {
            if (*n)
                st_buf_puts(out, ",");
            st_buf_append(out, text, tlen);
            (*n)++;
            rc = out->oom ? ST_ERR_NOMEM : ST_OK;
        } else if (r != -ENOMEM) {
            st_warn("test dependencies: %s: %s: not used", path,
                    r == 0 ? "not a JSON object" : st_read_file_strerror(r));
        } else {
            rc = ST_ERR_NOMEM;
        }
        free(text);
        free(path);
    }
    closedir(d);
    return rc;
}

int st_testdeps_save(const char *data_dir, const st_run *run)
{
    yajl_gen g = st_jg_new(0);
    if (!g)
        return ST_ERR_NOMEM;
    yajl_gen_map_open(g);
    st_jg_kint(g, "version", 1);
    st_jg_kstr(g, "run_id", run->run_id);
    st_jg_kstr(g, "git_commit", run->git_commit);
    st_jg_key(g, "git_dirty");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < run->git_dirty.n; i++)
        st_jg_str(g, run->git_dirty.v[i]);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    char *head = st_jg_finish(g, 0);
    if (!head)
        return ST_ERR_NOMEM;
    st_buf out = {0};
    /* the header without its closing brace, then the records */
    st_buf_append(&out, head, strlen(head) - 1);
    st_buf_puts(&out, ",\"records\":[");
    free(head);
    size_t n = 0;
    int rc = ST_OK;
    for (size_t b = 0; rc == 0 && b < run->n_batches; b++) {
        const st_batch *bt = &run->batches[b];
        if (bt->kind != ST_EXEC_TESTS || !bt->output_dir)
            continue;
        char *dir = st_path_join(bt->output_dir, ST_TESTDEPS_DIR);
        rc = dir ? add_records(&out, dir, &n) : ST_ERR_NOMEM;
        free(dir);
    }
    st_buf_puts(&out, "]}\n");
    if (rc == 0 && out.oom)
        rc = ST_ERR_NOMEM;
    if (rc < 0)
        st_error("test dependencies: out of memory");
    if (rc == 0 && n) {
        char *path = st_path_join(data_dir, ST_TESTDEPS_FILE);
        int w = path ? st_write_file_atomic(path, out.data, out.len, 0644) : -ENOMEM;
        if (w < 0) {
            st_error("test dependencies: cannot write %s: %s", path ? path : ST_TESTDEPS_FILE,
                     strerror(-w));
            rc = st_status_of_errno(-w);
        } else {
            st_info("test dependencies of %zu test process%s written to %s", n,
                    n == 1 ? "" : "es", path);
        }
        free(path);
    }
    st_buf_free(&out);
    return rc;
}

void st_testdeps_free(st_testdeps *d)
{
    if (!d)
        return;
    yajl_tree_free(d->root);
    st_strv_free(&d->dirty);
    free(d);
}

int st_testdeps_load(const char *data_dir, const char *sha, st_testdeps **out, char *why,
                     size_t why_size)
{
    *out = NULL;
    char *path = st_path_join(data_dir, ST_TESTDEPS_FILE), *text = NULL;
    if (!path)
        return ST_ERR_NOMEM;
    int r = st_read_file(path, DEPS_MAX_BYTES, &text, NULL);
    if (r < 0) {
        st_set_err(why, why_size, "%s: %s", path,
                   r == -ENOENT ? "none recorded (record_test_deps)" : st_read_file_strerror(r));
        free(path);
        return r == -ENOMEM ? ST_ERR_NOMEM : ST_OK;
    }
    char err[256] = "";
    yajl_val root = yajl_tree_parse(text, err, sizeof(err));
    free(text);
    long long version = 0;
    const char *commit = root ? st_jv_str(root, "git_commit") : NULL;
    yajl_val records = root ? st_jv_get(root, "records") : NULL;
    yajl_val dirty = root ? st_jv_get(root, "git_dirty") : NULL;
    if (!root || st_jv_int(root, "version", &version) < 0 || version != 1 || !records ||
        !YAJL_IS_ARRAY(records) || !dirty || !YAJL_IS_ARRAY(dirty)) {
        st_set_err(why, why_size, "%s: not a map this selftest-core reads%s%s", path,
                   err[0] ? ": " : "", err);
        yajl_tree_free(root);
        free(path);
        return 0;
    }
    if (!commit || !sha || strcmp(commit, sha) != 0) {
        st_set_err(why, why_size, "%s: recorded at %.12s, not at the base commit %.12s", path,
                   commit ? commit : "no commit", sha ? sha : "?");
        yajl_tree_free(root);
        free(path);
        return 0;
    }
    free(path);
    st_testdeps *d = calloc(1, sizeof(*d));
    if (!d) {
        yajl_tree_free(root);
        return ST_ERR_NOMEM;
    }
    d->root = root;
    d->records = records;
    d->run_id = st_jv_str(root, "run_id");
    for (size_t i = 0; i < dirty->u.array.len; i++) {
        const char *name = YAJL_GET_STRING(dirty->u.array.values[i]);
        if (name)
            st_strv_push(&d->dirty, name);
    }
    if (d->dirty.oom) {
        st_testdeps_free(d);
        return ST_ERR_NOMEM;
    }
    *out = d;
    return 0;
}

static int int_at(yajl_val arr, size_t i, long long *v)
{
    if (!arr || !YAJL_IS_ARRAY(arr) || i >= arr->u.array.len ||
        !YAJL_IS_INTEGER(arr->u.array.values[i]))
        return ST_ERR_INVALID;
    *v = YAJL_GET_INTEGER(arr->u.array.values[i]);
    return ST_OK;
}

static int holds(yajl_val arr, long long x)
{
    long long v;
    for (size_t i = 0; arr && YAJL_IS_ARRAY(arr) && i < arr->u.array.len; i++)
        if (int_at(arr, i, &v) == 0 && v == x)
            return 1;
    return 0;
}

/* The innermost function of funcs whose body holds the hunk, or -1 (with its body lines). */
static long innermost(yajl_val funcs, const st_hunk *h, long long *bs_out, long long *be_out)
{
    long best = -1;
    long long best_w = 0;
    for (size_t i = 0; i < funcs->u.array.len; i++) {
        yajl_val f = funcs->u.array.values[i];
        long long bs, be;
        if (int_at(f, 1, &bs) < 0 || int_at(f, 2, &be) < 0 || bs <= 0 || be < bs)
            continue;
        /* an insertion after line start: between two lines of the body (the line before
         * its first code line included: the def line, the docstring's end, a comment) */
        int inside = h->count == 0 ? bs - 1 <= h->start && h->start + 1 <= be
                                   : bs <= h->start && h->start + h->count - 1 <= be;
        if (inside && (best < 0 || be - bs < best_w)) {
            best = (long)i;
            best_w = be - bs;
            *bs_out = bs;
            *be_out = be;
        }
    }
    return best;
}

int st_testdeps_place(const st_testdeps *d, const char *root, const char *sha, const char *rel,
                      st_strv *tests, st_strv *why)
{
    if (!d || st_strv_contains(&d->dirty, rel))
        return 0; /* changed when the map was recorded: it describes another text */
    st_hunk *hunks = NULL;
    size_t n_hunks = 0;
    if (st_git_hunks(root, sha, rel, &hunks, &n_hunks) != ST_GIT_OK || n_hunks == 0) {
        free(hunks);
        return 0; /* untracked, binary, or only a mode change: nothing to place */
    }
    st_strv t_new = {0}, w_new = {0};
    int placed = 0, found = 0;
    for (size_t r = 0; r < d->records->u.array.len; r++) {
        yajl_val rec = d->records->u.array.values[r];
        yajl_val funcs = st_jv_get(st_jv_get(rec, "functions"), rel);
        if (!funcs || !YAJL_IS_ARRAY(funcs))
            continue; /* this process never loaded the file */
        found = 1;
        yajl_val outside = st_jv_get(st_jv_get(rec, "outside"), rel);
        yajl_val per_test = st_jv_get(rec, "tests");
        for (size_t k = 0; k < n_hunks; k++) {
            long long bs = 0, be = 0;
            long fn = innermost(funcs, &hunks[k], &bs, &be);
            if (fn < 0 || holds(outside, fn))
                goto out; /* module-level code, a signature, or run outside the tests */
            for (size_t t = 0; per_test && YAJL_IS_OBJECT(per_test) && t < per_test->u.object.len;
                 t++) {
                const char *test = per_test->u.object.keys[t];
                if (!holds(st_jv_get(per_test->u.object.values[t], rel), fn) ||
                    st_strv_contains(&t_new, test) || st_strv_contains(tests, test))
                    continue;
                st_strv_push(&t_new, test);
                st_strv_pushf(&w_new, "%s changed inside the body of the function at lines "
                              "%lld-%lld, which it ran (test dependencies of run %.8s)", rel, bs,
                              be, d->run_id ? d->run_id : "?");
            }
        }
    }
    placed = found;
out:
    free(hunks);
    int rc = placed;
    if (placed) {
        for (size_t i = 0; i < t_new.n; i++) {
            st_strv_push(tests, t_new.v[i]);
            st_strv_push(why, w_new.v[i]);
        }
        if (tests->oom || why->oom)
            rc = ST_ERR_NOMEM;
    }
    if (t_new.oom || w_new.oom)
        rc = ST_ERR_NOMEM;
    st_strv_free(&t_new);
    st_strv_free(&w_new);
    return rc;
}

int st_testdeps_covers(const st_testdeps *d, const char *rel)
{
    long long ran = 0, collected = 0;
    int seen = 0;
    for (size_t r = 0; d && r < d->records->u.array.len; r++) {
        yajl_val rec = d->records->u.array.values[r];
        yajl_val inc = st_jv_get(rec, "incomplete");
        for (size_t i = 0; inc && YAJL_IS_ARRAY(inc) && i < inc->u.array.len; i++) {
            const char *name = YAJL_GET_STRING(inc->u.array.values[i]);
            if (name && strcmp(name, rel) == 0)
                return 0;
        }
        long long a, b;
        yajl_val it = st_jv_get(st_jv_get(rec, "items"), rel);
        if (int_at(it, 0, &a) == 0 && int_at(it, 1, &b) == 0) {
            seen = 1;
            ran += a;
            if (b > collected)
                collected = b;
        }
    }
    return seen && collected > 0 && ran >= collected;
}
