/* SPDX-License-Identifier: MIT */
/* mm_store: canonical module_map.json model, renderer and atomic writer (see mm_store.h). */
#include "config.h"

#include "mm_store.h"

#include "st_buf.h"
#include "st_file.h"
#include "st_json.h"
#include "st_path.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- sorted key/id arrays --------------------------------------------------------------------- */

/* Index of key, or -(insertion point) - 1. */
static long kv_search(const mm_kv *v, size_t n, const char *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(v[mid].key, key);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

/* Sets key to id; with keep_lowest an existing entry only ever gets a lower id. */
static int kv_set(mm_kv **v, size_t *n, size_t *cap, const char *key, long long id,
                  int keep_lowest)
{
    long at = kv_search(*v, *n, key);
    if (at >= 0) {
        if (!keep_lowest || id < (*v)[at].id)
            (*v)[at].id = id;
        return 0;
    }
    size_t pos = (size_t)(-at - 1);
    if (ST_GROW(*v, *cap, *n + 1) < 0)
        return -1;
    char *k = strdup(key);
    if (!k)
        return -1;
    memmove(&(*v)[pos + 1], &(*v)[pos], (*n - pos) * sizeof(**v));
    (*v)[pos].key = k;
    (*v)[pos].id = id;
    (*n)++;
    return 0;
}

/* A non-negative decimal integer and nothing else. */
static int parse_id(const char *s, long long *out)
{
    if (!s || !*s)
        return -1;
    long long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > (LLONG_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return 0;
}

long long mm_model_find(const mm_model *m, const char *path)
{
    long at = kv_search(m->modules, m->n_modules, path);
    return at >= 0 ? m->modules[at].id : -1;
}

long long mm_model_max_id(const mm_model *m)
{
    long long max = 0;
    for (size_t i = 0; i < m->n_modules; i++)
        if (m->modules[i].id > max)
            max = m->modules[i].id;
    for (size_t i = 0; i < m->n_groups; i++)
        if (m->groups[i].id > max)
            max = m->groups[i].id;
    return max;
}

static int group_named(const mm_model *m, long long id)
{
    for (size_t i = 0; i < m->n_groups; i++)
        if (m->groups[i].id == id)
            return 1;
    return 0;
}

static int name_group(mm_model *m, long long id)
{
    if (group_named(m, id))
        return 0;
    char name[32];
    snprintf(name, sizeof(name), "%lld", id);
    /* a name "ID" taken by another id (a legacy file) keeps its value; the id then stays unnamed */
    if (kv_search(m->groups, m->n_groups, name) >= 0)
        return 0;
    return kv_set(&m->groups, &m->n_groups, &m->cap_groups, name, id, 0);
}

int mm_model_name_groups(mm_model *m)
{
    for (size_t i = 0; i < m->n_modules; i++)
        if (name_group(m, m->modules[i].id) < 0)
            return -1;
    return 0;
}

int mm_model_add(mm_model *m, const char *path, long long id)
{
    if (kv_set(&m->modules, &m->n_modules, &m->cap_modules, path, id, 0) < 0)
        return -1;
    return name_group(m, id);
}

void mm_model_free(mm_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_modules; i++)
        free(m->modules[i].key);
    for (size_t i = 0; i < m->n_groups; i++)
        free(m->groups[i].key);
    free(m->modules);
    free(m->groups);
    if (m->doc)
        yajl_tree_free(m->doc);
    for (size_t i = 0; i < m->n_dropped; i++)
        free(m->dropped[i]);
    free(m->dropped);
    memset(m, 0, sizeof(*m));
}

/* ---- building the model from what the reader saw ---------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A path that leaves the project: absolute, or with a ".." part. */
static int outside_project(const char *path)
{
    return path[0] && !st_path_is_safe_relative(NULL, path);
}

static int add_dropped(mm_model *m, const char *key)
{
    char **nd = realloc(m->dropped, (m->n_dropped + 1) * sizeof(*nd));
    if (!nd)
        return -1;
    m->dropped = nd;
    if (!(nd[m->n_dropped] = strdup(key)))
        return -1;
    m->n_dropped++;
    return 0;
}

/* The "tags" object of a canonical file, parsed once more (the reader does not keep it); the
 * whole document is kept for the other top-level keys. */
static int keep_tags(mm_model *m, const char *text, size_t len)
{
    char *copy = st_strndup(text, len);
    if (!copy)
        return -1;
    m->doc = st_json_tree_parse(copy, NULL, 0);
    free(copy);
    if (!m->doc)
        return -1; /* the reader parsed the same text: out of memory */
    if (!YAJL_IS_OBJECT(m->doc))
        return 0;
    for (size_t i = 0; i < m->doc->u.object.len; i++)
        if (strcmp(m->doc->u.object.keys[i], "tags") == 0)
            m->tags = m->doc->u.object.values[i]; /* kept as read, whatever it holds */
    return 0;
}

int mm_model_build(const stmm_map *map, const char *text, size_t len, stmm_exists_fn exists,
                   void *userdata, mm_model *out)
{
    memset(out, 0, sizeof(*out));
    const char **names = NULL; /* group names that need an id, sorted, unique */
    const char **ungrouped = NULL;
    size_t n_names = 0, n_ungrouped = 0;
    int rc = -1;

    if (map->canonical) {
        if (keep_tags(out, text, len) < 0)
            goto out;
        for (size_t i = 0; i < map->n_groups; i++)
            if (map->groups[i].id >= 0 &&
                kv_set(&out->groups, &out->n_groups, &out->cap_groups, map->groups[i].name,
                       map->groups[i].id, 0) < 0)
                goto out;
    }
    /* the largest numeric id anywhere, before names get theirs */
    long long max = mm_model_max_id(out);
    for (size_t i = 0; i < map->n_entries; i++) {
        long long id;
        if (parse_id(map->entries[i].group, &id) == 0 && id > max)
            max = id;
    }
    names = calloc(map->n_entries + 1, sizeof(*names));
    ungrouped = calloc(map->n_entries + 1, sizeof(*ungrouped));
    if (!names || !ungrouped)
        goto out;
    for (size_t i = 0; i < map->n_entries; i++) {
        const char *g = map->entries[i].group;
        long long id;
        if (!g)
            ungrouped[n_ungrouped++] = map->entries[i].module;
        else if (parse_id(g, &id) != 0 && kv_search(out->groups, out->n_groups, g) < 0)
            names[n_names++] = g;
    }
    qsort(names, n_names, sizeof(*names), cmp_str);
    qsort(ungrouped, n_ungrouped, sizeof(*ungrouped), cmp_str);
    for (size_t i = 0; i < n_names; i++)
        if ((i == 0 || strcmp(names[i], names[i - 1]) != 0) &&
            kv_set(&out->groups, &out->n_groups, &out->cap_groups, names[i], ++max, 0) < 0)
            goto out;
    for (size_t i = 0; i < map->n_entries; i++) {
        const stmm_entry *e = &map->entries[i];
        long long id = -1;
        if (e->group && parse_id(e->group, &id) != 0) {
            long at = kv_search(out->groups, out->n_groups, e->group);
            id = at >= 0 ? out->groups[at].id : -1;
        }
        if (!e->group) {
            for (size_t k = 0; k < n_ungrouped; k++)
                if (strcmp(ungrouped[k], e->module) == 0) {
                    id = max + 1 + (long long)k;
                    break;
                }
        }
        if (id < 0)
            continue; /* cannot happen: every name got an id above */
        char *path = stmm_key_to_path(e->module, exists, userdata);
        const char *key = path ? path : e->module;
        int r = outside_project(key)
                    ? add_dropped(out, e->module)
                    : kv_set(&out->modules, &out->n_modules, &out->cap_modules, key, id, 1);
        free(path);
        if (r < 0)
            goto out;
    }
    rc = mm_model_name_groups(out);
out:
    free(names);
    free(ungrouped);
    if (rc < 0)
        mm_model_free(out);
    return rc;
}

/* ---- rendering (the shape Python's json.dump(indent=2, sort_keys=True) gives) ------------------ */

/* The renderer writes into an st_buf; a failed append sets oom, checked once at the end. */

static void sb_indent(st_buf *b, int depth)
{
    st_buf_append(b, "\n", 1);
    for (int i = 0; i < depth; i++)
        st_buf_append(b, "  ", 2);
}

static void sb_json_string(st_buf *b, const char *s)
{
    st_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': st_buf_append(b, "\\\"", 2); break;
        case '\\': st_buf_append(b, "\\\\", 2); break;
        case '\n': st_buf_append(b, "\\n", 2); break;
        case '\r': st_buf_append(b, "\\r", 2); break;
        case '\t': st_buf_append(b, "\\t", 2); break;
        case '\b': st_buf_append(b, "\\b", 2); break;
        case '\f': st_buf_append(b, "\\f", 2); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", *p);
                st_buf_puts(b, esc);
            } else {
                st_buf_append(b, (const char *)p, 1);
            }
        }
    }
    st_buf_append(b, "\"", 1);
}

static void sb_kv_object(st_buf *b, const mm_kv *v, size_t n, int depth)
{
    if (n == 0) {
        st_buf_puts(b, "{}");
        return;
    }
    st_buf_puts(b, "{");
    for (size_t i = 0; i < n; i++) {
        char num[32];
        sb_indent(b, depth + 1);
        sb_json_string(b, v[i].key);
        snprintf(num, sizeof(num), ": %lld", v[i].id);
        st_buf_puts(b, num);
        if (i + 1 < n)
            st_buf_puts(b, ",");
    }
    sb_indent(b, depth);
    st_buf_puts(b, "}");
}

typedef struct key_ref {
    const char *key;
    size_t index;
} key_ref;

static int cmp_key_ref(const void *a, const void *b)
{
    return strcmp(((const key_ref *)a)->key, ((const key_ref *)b)->key);
}

static void sb_value(st_buf *b, yajl_val v, int depth)
{
    if (!v || YAJL_IS_NULL(v)) {
        st_buf_puts(b, "null");
    } else if (YAJL_IS_TRUE(v)) {
        st_buf_puts(b, "true");
    } else if (YAJL_IS_FALSE(v)) {
        st_buf_puts(b, "false");
    } else if (YAJL_IS_NUMBER(v)) {
        st_buf_puts(b, v->u.number.r);
    } else if (YAJL_IS_STRING(v)) {
        sb_json_string(b, YAJL_GET_STRING(v));
    } else if (YAJL_IS_ARRAY(v)) {
        if (v->u.array.len == 0) {
            st_buf_puts(b, "[]");
            return;
        }
        st_buf_puts(b, "[");
        for (size_t i = 0; i < v->u.array.len; i++) {
            sb_indent(b, depth + 1);
            sb_value(b, v->u.array.values[i], depth + 1);
            if (i + 1 < v->u.array.len)
                st_buf_puts(b, ",");
        }
        sb_indent(b, depth);
        st_buf_puts(b, "]");
    } else if (YAJL_IS_OBJECT(v)) {
        size_t n = v->u.object.len;
        if (n == 0) {
            st_buf_puts(b, "{}");
            return;
        }
        key_ref *refs = calloc(n, sizeof(*refs));
        if (!refs) {
            b->oom = 1;
            return;
        }
        for (size_t i = 0; i < n; i++) {
            refs[i].key = v->u.object.keys[i];
            refs[i].index = i;
        }
        qsort(refs, n, sizeof(*refs), cmp_key_ref);
        st_buf_puts(b, "{");
        for (size_t i = 0; i < n; i++) {
            sb_indent(b, depth + 1);
            sb_json_string(b, refs[i].key);
            st_buf_puts(b, ": ");
            sb_value(b, v->u.object.values[refs[i].index], depth + 1);
            if (i + 1 < n)
                st_buf_puts(b, ",");
        }
        sb_indent(b, depth);
        st_buf_puts(b, "}");
        free(refs);
    }
}

/* Is key one of the three the model writes itself? */
static int own_key(const char *key)
{
    return !strcmp(key, "groups") || !strcmp(key, "modules") || !strcmp(key, "tags");
}

char *mm_model_render(const mm_model *m, size_t *len)
{
    st_buf b = {0};
    /* groups, modules, tags and the file's other top-level keys (the last of a duplicated
     * key, as Python's json reads it), in sorted order */
    size_t n_doc = m->doc && YAJL_IS_OBJECT(m->doc) ? m->doc->u.object.len : 0;
    key_ref *refs = calloc(n_doc + 3, sizeof(*refs));
    if (!refs)
        return NULL;
    static const char *const own[] = {"groups", "modules", "tags"};
    size_t n = 0;
    for (size_t i = 0; i < 3; i++)
        refs[n++] = (key_ref){own[i], SIZE_MAX};
    for (size_t i = 0; i < n_doc; i++) {
        const char *key = m->doc->u.object.keys[i];
        int later = 0;
        for (size_t k = i + 1; k < n_doc && !later; k++)
            later = strcmp(m->doc->u.object.keys[k], key) == 0;
        if (!own_key(key) && !later)
            refs[n++] = (key_ref){key, i};
    }
    qsort(refs, n, sizeof(*refs), cmp_key_ref);
    st_buf_puts(&b, "{");
    for (size_t i = 0; i < n; i++) {
        sb_indent(&b, 1);
        sb_json_string(&b, refs[i].key);
        st_buf_puts(&b, ": ");
        if (refs[i].index != SIZE_MAX) {
            assert(m->doc != NULL); /* only keys of the file's own object carry an index */
            sb_value(&b, m->doc->u.object.values[refs[i].index], 1);
        } else if (!strcmp(refs[i].key, "groups"))
            sb_kv_object(&b, m->groups, m->n_groups, 1);
        else if (!strcmp(refs[i].key, "modules"))
            sb_kv_object(&b, m->modules, m->n_modules, 1);
        else if (m->tags)
            sb_value(&b, m->tags, 1);
        else
            st_buf_puts(&b, "{}");
        if (i + 1 < n)
            st_buf_puts(&b, ",");
    }
    free(refs);
    sb_indent(&b, 0);
    st_buf_puts(&b, "}\n");
    *len = b.len;
    return st_buf_steal(&b);
}

/* ---- files ------------------------------------------------------------------------------------ */

int mm_read_file(const char *path, char **data, size_t *len, char *err, size_t err_size)
{
    *data = NULL;
    *len = 0;
    int rc = st_read_file(path, STMM_MAX_BYTES, data, len);
    if (rc == -ENOENT)
        return 1;
    if (rc == -EFBIG)
        st_set_err(err, err_size, "too large (over %u bytes)", STMM_MAX_BYTES);
    else if (rc < 0)
        st_set_err(err, err_size, "%s", st_read_file_strerror(rc));
    return rc < 0 ? -1 : 0;
}

char *mm_dotted_name(const char *path, int strip_src)
{
    size_t n = strlen(path);
    if (n < 4 || strcmp(path + n - 3, ".py") != 0)
        return NULL;
    if (strip_src && strncmp(path, "src/", 4) == 0) {
        path += 4;
        n -= 4;
    }
    n -= 3;
    if (n >= 9 && strncmp(path + n - 9, "/__init__", 9) == 0)
        n -= 9;
    else if (n == 8 && strncmp(path, "__init__", 8) == 0)
        return NULL; /* the root's own __init__.py has no dotted name */
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = path[i] == '/' ? '.' : path[i];
    d[n] = '\0';
    return d;
}
