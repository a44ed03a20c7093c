/* SPDX-License-Identifier: MIT */
/* modulemap: reads module_map.json in its canonical and legacy shapes (see modulemap.h). */
#include "config.h"

#include "modulemap.h"

#include "st_buf.h"
#include "st_file.h"
#include "st_json.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

static int push_entry(stmm_map *m, size_t *cap, const char *module, const char *group)
{
    if (ST_GROW(m->entries, *cap, m->n_entries + 1) < 0)
        return STMM_ENOMEM;
    stmm_entry *e = &m->entries[m->n_entries];
    e->module = st_strdup(module);
    e->group = group ? st_strdup(group) : NULL;
    if (!e->module || (group && !e->group)) {
        free(e->module);
        free(e->group);
        return STMM_ENOMEM;
    }
    m->n_entries++;
    return STMM_OK;
}

/* The group of a module value as text: an integer or a string; NULL for null. */
static int value_group(yajl_val v, char *buf, size_t size, const char **out)
{
    if (YAJL_IS_INTEGER(v)) {
        snprintf(buf, size, "%lld", YAJL_GET_INTEGER(v));
        *out = buf;
    } else if (YAJL_IS_STRING(v)) {
        *out = YAJL_GET_STRING(v);
    } else if (YAJL_IS_NULL(v)) {
        *out = NULL;
    } else {
        return -1;
    }
    return 0;
}

static int read_modules(stmm_map *m, size_t *cap, yajl_val obj, int legacy, char *err,
                        size_t size)
{
    for (size_t i = 0; i < obj->u.object.len; i++) {
        const char *key = obj->u.object.keys[i];
        yajl_val v = obj->u.object.values[i];
        char num[32];
        const char *group = NULL;
        int rc = STMM_OK;
        if (legacy && YAJL_IS_ARRAY(v)) {
            for (size_t k = 0; k < v->u.array.len && rc == STMM_OK; k++) {
                yajl_val mod = v->u.array.values[k];
                if (!YAJL_IS_STRING(mod)) {
                    st_set_err(err, size, "group \"%s\": expected module names (strings)", key);
                    return STMM_EMALFORMED;
                }
                rc = push_entry(m, cap, YAJL_GET_STRING(mod), key);
            }
        } else if (value_group(v, num, sizeof(num), &group) == 0) {
            rc = push_entry(m, cap, key, group);
        } else {
            st_set_err(err, size, "module \"%s\": expected a group id, a group name%s", key,
                    legacy ? " or a list of modules" : "");
            return STMM_EMALFORMED;
        }
        if (rc != STMM_OK)
            return rc;
    }
    return STMM_OK;
}

static int read_groups(stmm_map *m, yajl_val obj)
{
    if (!obj || !YAJL_IS_OBJECT(obj) || obj->u.object.len == 0)
        return STMM_OK;
    m->groups = calloc(obj->u.object.len, sizeof(*m->groups));
    if (!m->groups)
        return STMM_ENOMEM;
    for (size_t i = 0; i < obj->u.object.len; i++) {
        yajl_val v = obj->u.object.values[i];
        stmm_group *g = &m->groups[m->n_groups];
        g->name = st_strdup(obj->u.object.keys[i]);
        if (!g->name)
            return STMM_ENOMEM;
        g->id = YAJL_IS_INTEGER(v) ? YAJL_GET_INTEGER(v) : -1;
        m->n_groups++;
    }
    return STMM_OK;
}

int stmm_parse(const char *text, size_t len, stmm_map *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof(*out));
    if (err && err_size)
        err[0] = '\0';
    st_buf buf = {0}; /* a NUL-terminated copy (NUL bytes inside kept, and refused) */
    st_buf_append(&buf, text, len);
    char *copy = st_buf_steal(&buf);
    if (!copy)
        return STMM_ENOMEM;
    yajl_val root = st_json_parse_n(copy, len, err, err_size);
    int rc = STMM_OK;
    size_t cap = 0;
    if (!root) {
        rc = STMM_EMALFORMED;
        goto out;
    }
    if (!YAJL_IS_OBJECT(root)) {
        st_set_err(err, err_size, "line 1, column 1: expected an object");
        rc = STMM_EMALFORMED;
        goto out;
    }
    yajl_val modules = NULL;
    for (size_t i = 0; i < root->u.object.len; i++) {
        yajl_val v = root->u.object.values[i];
        if (strcmp(root->u.object.keys[i], "modules") != 0)
            continue;
        /* a "modules" that is not an object is a broken canonical map, not a legacy module
         * called "modules" */
        if (!YAJL_IS_OBJECT(v)) {
            st_set_err(err, err_size, "\"modules\": expected an object of module paths and group "
                    "ids, found %s", YAJL_IS_ARRAY(v) ? "an array" : YAJL_IS_STRING(v) ? "a string"
                    : YAJL_IS_NUMBER(v) ? "a number" : YAJL_IS_NULL(v) ? "null" : "a boolean");
            rc = STMM_EMALFORMED;
            goto out;
        }
        modules = v;
    }
    if (modules) {
        out->canonical = 1;
        rc = read_modules(out, &cap, modules, 0, err, err_size);
        if (rc == STMM_OK) {
            yajl_val groups = NULL;
            for (size_t i = 0; i < root->u.object.len; i++)
                if (strcmp(root->u.object.keys[i], "groups") == 0)
                    groups = root->u.object.values[i];
            rc = read_groups(out, groups);
        }
    } else {
        rc = read_modules(out, &cap, root, 1, err, err_size);
    }
out:
    if (rc != STMM_OK)
        stmm_free(out);
    if (root)
        yajl_tree_free(root);
    free(copy);
    return rc;
}

int stmm_load(const char *path, stmm_map *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof(*out));
    char *buf = NULL;
    size_t len = 0;
    int rc = st_read_file(path, STMM_MAX_BYTES, &buf, &len);
    if (rc == -ENOENT)
        return STMM_ABSENT;
    if (rc == -ENOMEM)
        return STMM_ENOMEM;
    if (rc == -EFBIG)
        st_set_err(err, err_size, "too large (over 64 MiB)");
    else if (rc < 0)
        st_set_err(err, err_size, "%s", st_read_file_strerror(rc));
    if (rc < 0)
        return STMM_EIO;
    rc = stmm_parse(buf, len, out, err, err_size);
    free(buf);
    return rc;
}

void stmm_free(stmm_map *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_entries; i++) {
        free(m->entries[i].module);
        free(m->entries[i].group);
    }
    for (size_t i = 0; i < m->n_groups; i++)
        free(m->groups[i].name);
    free(m->entries);
    free(m->groups);
    memset(m, 0, sizeof(*m));
}

/* a.b.c: identifiers (ASCII letters, digits, '_' and any UTF-8 byte) separated by single dots. */
static int is_dotted_name(const char *s)
{
    int at_start = 1;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '.') {
            if (at_start)
                return 0;
            at_start = 1;
            continue;
        }
        int letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
        int digit = c >= '0' && c <= '9';
        if (!letter && !(digit && !at_start))
            return 0;
        at_start = 0;
    }
    return !at_start;
}

char *stmm_key_to_path(const char *key, stmm_exists_fn exists, void *userdata)
{
    if (!key || !*key)
        return NULL;
    size_t klen = strlen(key);
    if (strchr(key, '/') || (klen > 3 && strcmp(key + klen - 3, ".py") == 0)) {
        while (key[0] == '.' && key[1] == '/')
            key += 2;
        return *key ? st_strdup(key) : NULL;
    }
    if (!is_dotted_name(key) || !exists)
        return NULL;
    static const char *const forms[][2] = {
        {"", ".py"}, {"", "/__init__.py"}, {"src/", ".py"}, {"src/", "/__init__.py"}};
    char *slashed = st_strdup(key);
    if (!slashed)
        return NULL;
    for (char *p = slashed; *p; p++)
        if (*p == '.')
            *p = '/';
    size_t size = klen + 32;
    char *cand = malloc(size);
    char *found = NULL;
    for (size_t i = 0; cand && i < sizeof(forms) / sizeof(forms[0]) && !found; i++) {
        snprintf(cand, size, "%s%s%s", forms[i][0], slashed, forms[i][1]);
        if (exists(cand, userdata))
            found = cand;
    }
    if (!found)
        free(cand);
    free(slashed);
    return found;
}
