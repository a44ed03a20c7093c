/* SPDX-License-Identifier: MIT */
/* Bounded JSON parsing with located errors (see st_json.h). */
#include "config.h"

#include "st_json.h"

#include "st_file.h"

#include <selftest/plugin.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

size_t st_json_too_deep(const char *text, size_t len, unsigned max_depth)
{
    unsigned depth = 0;
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (in_string) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_string = 0;
        } else if (ch == '"') {
            in_string = 1;
        } else if (ch == '[' || ch == '{') {
            if (++depth > max_depth)
                return i + 1;
        } else if ((ch == ']' || ch == '}') && depth) {
            depth--;
        }
    }
    return 0;
}

void st_json_where(const char *text, size_t off, const char *msg, char *err, size_t err_size)
{
    if (!err || !err_size)
        return;
    unsigned line = 1, col = 1;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    snprintf(err, err_size, "line %u, column %u: %s", line, col, msg);
}

static const char deep_msg[] = "nested deeper than 64 levels";
_Static_assert(ST_JSON_MAX_DEPTH == 64, "deep_msg names the bound");

/* yajl reports errors by byte offset inside its message ("... (right here) ------^"); turn the
 * offset into line and column ourselves by re-parsing with a stream parser. Nesting is checked
 * first, so every tree returned (and every walk and free of it) stays bounded. */
yajl_val st_json_parse(const char *text, char *err, size_t err_size)
{
    char msg[256] = "";
    size_t len = strlen(text);
    size_t deep = st_json_too_deep(text, len, ST_JSON_MAX_DEPTH);
    if (deep) {
        st_json_where(text, deep - 1, deep_msg, err, err_size);
        return NULL;
    }
    yajl_val v = yajl_tree_parse(text, msg, sizeof(msg));
    if (v)
        return v;
    yajl_handle h = yajl_alloc(NULL, NULL, NULL);
    size_t off = len;
    if (h) {
        yajl_status s = yajl_parse(h, (const unsigned char *)text, len);
        if (s == yajl_status_ok)
            s = yajl_complete_parse(h);
        if (s != yajl_status_ok)
            off = yajl_get_bytes_consumed(h);
        yajl_free(h);
    }
    if (off > len)
        off = len;
    /* Keep only yajl's first line (the rest is an ASCII-art pointer). */
    char *nl = strchr(msg, '\n');
    if (nl)
        *nl = '\0';
    if (!msg[0])
        snprintf(msg, sizeof(msg), "invalid JSON");
    st_json_where(text, off, msg, err, err_size);
    return NULL;
}

yajl_val st_json_parse_n(const char *text, size_t len, char *err, size_t err_size)
{
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        st_json_where(text, (size_t)(nul - text), "contains a NUL byte (not JSON text)", err,
                      err_size);
        return NULL;
    }
    return st_json_parse(text, err, err_size);
}

yajl_val st_json_tree_parse(const char *text, char *err, size_t err_size)
{
    if (st_json_too_deep(text, strlen(text), ST_JSON_MAX_DEPTH)) {
        if (err && err_size)
            snprintf(err, err_size, "%s", deep_msg);
        return NULL;
    }
    return yajl_tree_parse(text, err, err_size);
}

/* The member key of object v, or NULL (v not an object, or no such key). */
static yajl_val member_of(yajl_val v, const char *key)
{
    for (size_t i = 0; v && YAJL_IS_OBJECT(v) && i < v->u.object.len; i++)
        if (strcmp(v->u.object.keys[i], key) == 0)
            return v->u.object.values[i];
    return NULL;
}

int st_json_read_versioned(const char *path, size_t max, long long version, const char *member,
                           yajl_val *root, char *err, size_t err_size)
{
    *root = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = st_read_file(path, max, &text, &len);
    if (rc == -ENOENT)
        return ST_OK;
    if (rc < 0) {
        if (rc == -EFBIG && max >= (1u << 20) && max % (1u << 20) == 0)
            snprintf(err, err_size, "larger than %zu MiB", max >> 20);
        else if (rc == -EFBIG)
            snprintf(err, err_size, "larger than %zu bytes", max);
        else
            snprintf(err, err_size, "%s", strerror(-rc));
        return rc == -ENOMEM ? ST_ERR_NOMEM : ST_ERR_IO;
    }
    yajl_val v = st_json_parse_n(text, len, err, err_size);
    free(text);
    if (!v)
        return ST_ERR_MALFORMED;
    yajl_val ver = member_of(v, "version"), m = member_of(v, member);
    if (!ver || !YAJL_IS_INTEGER(ver) || YAJL_GET_INTEGER(ver) != version || !m ||
        !YAJL_IS_OBJECT(m)) {
        snprintf(err, err_size, "line 1, column 1: expected {\"version\": %lld, \"%s\": {...}}",
                 version, member);
        yajl_tree_free(v);
        return ST_ERR_MALFORMED;
    }
    *root = v;
    return ST_OK;
}
