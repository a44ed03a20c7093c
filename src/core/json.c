/* SPDX-License-Identifier: MIT */
/* JSON helpers over yajl (see json.h). */
#include "config.h"

#include "json.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

yajl_gen st_jg_new(int pretty)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        return NULL;
    if (pretty) {
        yajl_gen_config(g, yajl_gen_beautify, 1);
        yajl_gen_config(g, yajl_gen_indent_string, "  ");
    }
    yajl_gen_config(g, yajl_gen_validate_utf8, 0);
    return g;
}

void st_jg_key(yajl_gen g, const char *key)
{
    yajl_gen_string(g, (const unsigned char *)key, strlen(key));
}

void st_jg_str(yajl_gen g, const char *s)
{
    if (!s)
        yajl_gen_null(g);
    else
        yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

void st_jg_int(yajl_gen g, long long v)
{
    yajl_gen_integer(g, v);
}

void st_jg_double(yajl_gen g, double v)
{
    if (!isfinite(v)) {
        yajl_gen_null(g);
        return;
    }
    /* yajl prints %.20g, which shows binary noise (0.1 -> 0.10000000000000000555); the shortest
     * form that reads back exactly, with '.' whatever the locale. */
    char buf[ST_DOUBLE_BUFSIZE + 2];
    st_format_double(v, buf);
    size_t used = strlen(buf);
    if (!strpbrk(buf, ".eEn"))
        snprintf(buf + used, sizeof(buf) - used, ".0");
    yajl_gen_number(g, buf, strlen(buf));
}

void st_jg_bool(yajl_gen g, int v)
{
    yajl_gen_bool(g, v != 0);
}

void st_jg_null(yajl_gen g)
{
    yajl_gen_null(g);
}

void st_jg_kstr(yajl_gen g, const char *key, const char *s)
{
    st_jg_key(g, key);
    st_jg_str(g, s);
}

void st_jg_kint(yajl_gen g, const char *key, long long v)
{
    st_jg_key(g, key);
    st_jg_int(g, v);
}

void st_jg_kdouble(yajl_gen g, const char *key, double v)
{
    st_jg_key(g, key);
    st_jg_double(g, v);
}

void st_jg_kpercent(yajl_gen g, const char *key, double v)
{
    st_jg_key(g, key);
    if (v < 0)
        st_jg_null(g);
    else
        st_jg_double(g, v);
}

void st_jg_kbool(yajl_gen g, const char *key, int v)
{
    st_jg_key(g, key);
    st_jg_bool(g, v);
}

/* yajl's beautifier prints an empty array or object over lines ("[\n  ]"); fold the whitespace
 * between an opening bracket and its closing one, outside strings, so they read [] and {}. */
static size_t fold_empty(char *s, size_t len)
{
    size_t r = 0, w = 0;
    int in_str = 0;
    while (r < len) {
        char ch = s[r++];
        s[w++] = ch;
        if (in_str) {
            if (ch == '\\' && r < len)
                s[w++] = s[r++];
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == '[' || ch == '{') {
            size_t k = r;
            while (k < len && (s[k] == ' ' || s[k] == '\n' || s[k] == '\t' || s[k] == '\r'))
                k++;
            if (k > r && k < len && s[k] == (ch == '[' ? ']' : '}'))
                r = k;
        }
    }
    return w;
}

char *st_jg_finish(yajl_gen g, int nl)
{
    const unsigned char *buf;
    size_t len;
    char *out = NULL;
    if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok) {
        /* yajl's beautifier already ends with a newline. */
        int add_nl = nl && !(len > 0 && buf[len - 1] == '\n');
        out = malloc(len + 2);
        if (out) {
            memcpy(out, buf, len);
            /* only the beautifier prints a raw newline (a string's is escaped): compact output
             * has nothing to fold, and large results objects skip the byte-by-byte pass */
            if (memchr(out, '\n', len))
                len = fold_empty(out, len);
            if (add_nl)
                out[len++] = '\n';
            out[len] = '\0';
        }
    }
    yajl_gen_free(g);
    return out;
}

yajl_val st_jv_get(yajl_val obj, const char *key)
{
    if (!obj || !YAJL_IS_OBJECT(obj))
        return NULL;
    for (size_t i = 0; i < obj->u.object.len; i++)
        if (strcmp(obj->u.object.keys[i], key) == 0)
            return obj->u.object.values[i];
    return NULL;
}

const char *st_jv_str(yajl_val obj, const char *key)
{
    yajl_val v = st_jv_get(obj, key);
    return v && YAJL_IS_STRING(v) ? v->u.string : NULL;
}

int st_jv_int(yajl_val obj, const char *key, long long *out)
{
    yajl_val v = st_jv_get(obj, key);
    if (!v)
        return ST_ERR_UNAVAILABLE;
    if (!YAJL_IS_INTEGER(v))
        return ST_ERR_MALFORMED;
    *out = YAJL_GET_INTEGER(v);
    return ST_OK;
}

int st_jv_double(yajl_val obj, const char *key, double *out)
{
    yajl_val v = st_jv_get(obj, key);
    if (!v)
        return ST_ERR_UNAVAILABLE;
    if (!YAJL_IS_NUMBER(v))
        return ST_ERR_MALFORMED;
    *out = YAJL_GET_DOUBLE(v);
    return ST_OK;
}
