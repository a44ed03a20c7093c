/* SPDX-License-Identifier: MIT */
/* st_buf, st_strv and string helpers (see st_buf.h). */
#include "config.h"

#include "st_buf.h"

#include <selftest/plugin.h>

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- st_buf --------------------------------------------------------------------------------- */

static int buf_reserve(st_buf *b, size_t extra)
{
    if (b->oom)
        return ST_ERR_NOMEM;
    if (extra > SIZE_MAX - b->len - 1) {
        b->oom = 1;
        return ST_ERR_NOMEM;
    }
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return ST_ERR_NOMEM;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return ST_ERR_NOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

/* How much of len more bytes the cap lets in (all of them without a cap). */
static size_t buf_room(st_buf *b, size_t len)
{
    if (!b->max)
        return len;
    size_t room = b->len < b->max ? b->max - b->len : 0;
    if (len > room) {
        b->truncated = 1;
        return room;
    }
    return len;
}

void st_buf_append(st_buf *b, const void *data, size_t len)
{
    len = buf_room(b, len);
    if (buf_reserve(b, len) < 0)
        return;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void st_buf_puts(st_buf *b, const char *s)
{
    st_buf_append(b, s, strlen(s));
}

void st_buf_vprintf(st_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || buf_reserve(b, (size_t)n) < 0)
        return;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    size_t keep = buf_room(b, (size_t)n);
    b->len += keep;
    b->data[b->len] = '\0';
}

void st_buf_printf(st_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    st_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void st_buf_keep_tail(st_buf *b, size_t max)
{
    if (b->len <= max)
        return;
    memmove(b->data, b->data + (b->len - max), max);
    b->len = max;
    b->data[max] = '\0';
}

void st_buf_reset(st_buf *b)
{
    b->len = 0;
    b->oom = 0;
    b->truncated = 0;
    if (b->data)
        b->data[0] = '\0';
}

void st_buf_free(st_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

char *st_buf_steal(st_buf *b)
{
    if (b->oom) {
        st_buf_free(b);
        return NULL;
    }
    if (!b->data)
        return st_strdup("");
    char *d = b->data;
    memset(b, 0, sizeof(*b));
    return d;
}

/* ---- st_strv -------------------------------------------------------------------------------- */

void st_strv_push_owned(st_strv *s, char *str)
{
    if (!str) {
        s->oom = 1;
        return;
    }
    if (s->n + 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        char **v = realloc(s->v, cap * sizeof(*v));
        if (!v) {
            free(str);
            s->oom = 1;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = str;
    s->v[s->n] = NULL;
}

void st_strv_push(st_strv *s, const char *str)
{
    st_strv_push_owned(s, st_strdup(str));
}

void st_strv_pushf(st_strv *s, const char *fmt, ...)
{
    st_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    st_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    st_strv_push_owned(s, st_buf_steal(&b));
}

void st_strv_free(st_strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

const char *const *st_strv_get(st_strv *s)
{
    static const char *const empty[] = {NULL};
    if (!s->v)
        return empty;
    return (const char *const *)s->v;
}

int st_strv_contains(const st_strv *s, const char *str)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], str) == 0)
            return 1;
    return 0;
}

/* ---- strings -------------------------------------------------------------------------------- */

char *st_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

char *st_strndup(const char *s, size_t n)
{
    return s ? strndup(s, n) : NULL;
}

char *st_asprintf(const char *fmt, ...)
{
    st_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    st_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return st_buf_steal(&b);
}

int st_strset(char **dst, const char *s)
{
    char *copy = s ? strdup(s) : NULL;
    if (s && !copy)
        return ST_ERR_NOMEM;
    free(*dst);
    *dst = copy;
    return ST_OK;
}

int st_grow(void **data, size_t *cap, size_t need, size_t elem)
{
    assert(data != NULL && cap != NULL && elem > 0); /* a caller's bug, not an input error */
    if (need <= *cap)
        return 0;
    size_t cap2 = *cap ? *cap : 16;
    while (cap2 < need) {
        if (cap2 > SIZE_MAX / 2)
            return ST_ERR_NOMEM;
        cap2 *= 2;
    }
    if (elem && cap2 > SIZE_MAX / elem)
        return ST_ERR_NOMEM;
    void *d = realloc(*data, cap2 * elem);
    if (!d)
        return ST_ERR_NOMEM;
    *data = d;
    *cap = cap2;
    return 0;
}

void st_set_err(char *err, size_t size, const char *fmt, ...)
{
    if (!err || !size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
}
