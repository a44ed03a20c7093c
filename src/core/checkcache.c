/* SPDX-License-Identifier: MIT */
/* checkcache: verdicts of earlier import checks (see checkcache.h). */
#include "config.h"

#include "checkcache.h"

#include "json.h"
#include "log.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CHECK_CACHE_MAX_FILE (64u << 20)
#define SOURCE_MAX (64u << 20)

static void entry_free(st_check_entry *e)
{
    free(e->path);
    free(e->key);
    free(e->interpreter);
    free(e->reason);
    free(e->excerpt);
    memset(e, 0, sizeof(*e));
}

static st_check_entry *find(const st_check_cache *c, const char *path)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i].path, path) == 0)
            return &c->v[i];
    return NULL;
}


int st_checkcache_put(st_check_cache *c, const char *path, const char *key,
                      const char *interpreter, int passed, const char *reason,
                      const char *excerpt, double checked_at)
{
    /* preconditions (the header's contract), not input checks: a caller's bug */
    assert(c != NULL && path != NULL && key != NULL && interpreter != NULL);
    st_check_entry *e = find(c, path);
    if (!e) {
        if (ST_GROW(c->v, c->cap, c->n + 1) < 0)
            return ST_ERR_NOMEM;
        e = &c->v[c->n];
        memset(e, 0, sizeof(*e));
        if (st_strset(&e->path, path) < 0)
            return ST_ERR_NOMEM;
        c->n++;
    }
    if (st_strset(&e->key, key) < 0 || st_strset(&e->interpreter, interpreter) < 0 ||
        st_strset(&e->reason, reason) < 0 || st_strset(&e->excerpt, excerpt) < 0)
        return ST_ERR_NOMEM;
    e->passed = passed != 0;
    e->checked_at = checked_at;
    c->dirty = 1;
    return 0;
}

const st_check_entry *st_checkcache_get(const st_check_cache *c, const char *path,
                                        const char *key, const char *interpreter)
{
    const st_check_entry *e = find(c, path);
    if (!e || !key || !interpreter || !e->key || !e->interpreter)
        return NULL;
    return strcmp(e->key, key) == 0 && strcmp(e->interpreter, interpreter) == 0 ? e : NULL;
}

int st_checkcache_load(st_check_cache *c, const char *data_dir)
{
    memset(c, 0, sizeof(*c));
    c->file = st_path_join(data_dir, ST_CHECK_CACHE_FILE);
    if (!c->file)
        return ST_ERR_NOMEM;
    char err[300];
    yajl_val root = NULL;
    int rc = st_json_read_versioned(c->file, CHECK_CACHE_MAX_FILE, 1, "modules", &root, err,
                                    sizeof(err));
    if (rc == ST_OK && !root)
        return 0; /* no file yet */
    if (rc != ST_OK) {
        if (rc == ST_ERR_MALFORMED)
            st_error("%s: %s; every module is checked, and the file is left as it is (fix or "
                     "remove it)",
                     c->file, err);
        else
            st_error("%s: cannot read it (%s); every module is checked, and the file is left as "
                     "it is",
                     c->file, err);
        c->readonly = 1;
        return 0;
    }
    yajl_val mods = st_jv_get(root, "modules");
    rc = 0;
    for (size_t i = 0; rc == 0 && i < mods->u.object.len; i++) {
        yajl_val e = mods->u.object.values[i];
        const char *key = st_jv_str(e, "key"), *interp = st_jv_str(e, "interpreter");
        const char *verdict = st_jv_str(e, "verdict");
        double at = 0;
        st_jv_double(e, "checked_at", &at);
        if (!key || !interp || !verdict ||
            (strcmp(verdict, "passed") != 0 && strcmp(verdict, "failed") != 0))
            continue; /* an entry of another shape is a miss; rewritten at the next save */
        rc = st_checkcache_put(c, mods->u.object.keys[i], key, interp,
                               strcmp(verdict, "passed") == 0, st_jv_str(e, "reason"),
                               st_jv_str(e, "excerpt"), at);
    }
    c->dirty = 0;
    yajl_tree_free(root);
    return rc;
}

void st_checkcache_prune(st_check_cache *c, const char *root)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) {
        char *abs = st_path_join(root, c->v[i].path);
        struct stat st;
        int keep = !abs || (stat(abs, &st) == 0 && S_ISREG(st.st_mode));
        free(abs);
        if (keep) {
            c->v[k++] = c->v[i];
        } else {
            entry_free(&c->v[i]);
            c->dirty = 1;
        }
    }
    c->n = k;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const st_check_entry *)a)->path, ((const st_check_entry *)b)->path);
}

int st_checkcache_save(st_check_cache *c)
{
    if (!c->file || !c->dirty)
        return 0;
    if (c->readonly) {
        st_warn("%s: not updated: it could not be read cleanly at load (see the error above)",
                c->file);
        return 0;
    }
    if (c->n > 1)
        qsort(c->v, c->n, sizeof(*c->v), entry_cmp);
    yajl_gen g = st_jg_new(1);
    if (!g)
        return ST_ERR_NOMEM;
    yajl_gen_map_open(g);
    st_jg_key(g, "modules");
    yajl_gen_map_open(g);
    for (size_t i = 0; i < c->n; i++) {
        const st_check_entry *e = &c->v[i];
        st_jg_key(g, e->path);
        yajl_gen_map_open(g);
        st_jg_kdouble(g, "checked_at", e->checked_at);
        st_jg_kstr(g, "excerpt", e->excerpt);
        st_jg_kstr(g, "interpreter", e->interpreter);
        st_jg_kstr(g, "key", e->key);
        st_jg_kstr(g, "reason", e->reason);
        st_jg_kstr(g, "verdict", e->passed ? "passed" : "failed");
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
    st_jg_kint(g, "version", 1);
    yajl_gen_map_close(g);
    char *text = st_jg_finish(g, 1);
    if (!text)
        return ST_ERR_NOMEM;
    char *dir = st_path_dirname(c->file);
    int rc = dir ? st_mkdir_p(dir, 0755) : -ENOMEM;
    free(dir);
    if (rc == 0)
        rc = st_write_file_atomic(c->file, text, strlen(text), 0644);
    if (rc < 0)
        st_error("%s: cannot write it: %s", c->file, strerror(-rc));
    else
        c->dirty = 0;
    free(text);
    return st_status_of_errno(rc);
}

void st_checkcache_free(st_check_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        entry_free(&c->v[i]);
    free(c->v);
    free(c->file);
    memset(c, 0, sizeof(*c));
}

/* ---- the key ------------------------------------------------------------------------------- */

/* Two FNV-1a lanes with different offsets: 128 bits, enough to tell edits apart (not a defence
 * against someone crafting collisions, which would only skip a check). */
typedef struct hash128 {
    uint64_t a, b;
} hash128;

static void hash_bytes(hash128 *h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h->a = (h->a ^ p[i]) * 0x100000001b3ULL;
        h->b = (h->b ^ p[i]) * 0x100000001b3ULL;
        h->b ^= h->b >> 29;
    }
}

int st_check_hasher_init(st_check_hasher *h, const struct st_pygraph *g, const char *root)
{
    memset(h, 0, sizeof(*h));
    h->g = g;
    h->root = root;
    h->n = g ? st_pygraph_count(g) : 0;
    if (!g)
        return 0;
    h->node = calloc(2 * h->n + 1, sizeof(*h->node));
    h->state = calloc(h->n + 1, 1);
    h->mark = calloc(h->n + 1, 1);
    return h->node && h->state && h->mark ? ST_OK : ST_ERR_NOMEM;
}

void st_check_hasher_free(st_check_hasher *h)
{
    free(h->node);
    free(h->state);
    free(h->mark);
    memset(h, 0, sizeof(*h));
}

/* The hash of one node's path and bytes, read once per hasher; 0 when unreadable. */
static int node_hash(st_check_hasher *h, uint32_t v)
{
    if (h->state[v] == 0) {
        const char *rel = st_pygraph_path(h->g, v);
        char *abs = st_path_join(h->root, rel);
        char *text = NULL;
        size_t len = 0;
        int ok = abs && st_read_file(abs, SOURCE_MAX, &text, &len) == 0;
        if (ok) {
            hash128 x = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL};
            unsigned char lenbuf[8];
            for (int k = 0; k < 8; k++)
                lenbuf[k] = (unsigned char)((uint64_t)len >> (8 * k));
            hash_bytes(&x, rel, strlen(rel) + 1);
            hash_bytes(&x, lenbuf, sizeof(lenbuf));
            hash_bytes(&x, text, len);
            h->node[2 * v] = x.a;
            h->node[2 * v + 1] = x.b;
        }
        free(text);
        free(abs);
        h->state[v] = ok ? 1 : 2;
    }
    return h->state[v] == 1;
}

char *st_check_hasher_key(st_check_hasher *h, const char *path)
{
    if (!h->g || !h->node)
        return NULL;
    uint32_t start = st_pygraph_find(h->g, path);
    if (start == ST_PYGRAPH_NONE || st_pygraph_reach(h->g, &start, 1, h->mark, NULL) < 0)
        return NULL;
    hash128 k = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL};
    for (uint32_t v = 0; v < h->n; v++) {
        if (!h->mark[v])
            continue;
        if (!node_hash(h, v))
            return NULL;
        hash_bytes(&k, &h->node[2 * v], 2 * sizeof(uint64_t));
    }
    return st_asprintf("%016llx%016llx", (unsigned long long)k.a, (unsigned long long)k.b);
}

char *st_checkcache_key(const st_pygraph *g, const char *root, const char *path)
{
    st_check_hasher h;
    char *key = st_check_hasher_init(&h, g, root) == 0 ? st_check_hasher_key(&h, path) : NULL;
    st_check_hasher_free(&h);
    return key;
}
