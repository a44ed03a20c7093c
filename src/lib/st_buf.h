/* SPDX-License-Identifier: MIT */
/* st_buf: the one growable byte buffer (with an optional size cap); st_strv: NULL-terminated
 * vectors of owned strings; small string helpers. Part of libstlib, the helper library the core
 * and every plugin link (src/lib/local.mk). Nothing here logs; failures are flags or NULL. */
#ifndef ST_LIB_BUF_H
#define ST_LIB_BUF_H

#include <stdarg.h>
#include <stddef.h>

/* A growable, always NUL-terminated byte buffer (data is NULL until the first append).
 * Zero-initialise to use; set max before the first append to cap it. */
typedef struct st_buf {
    char *data;
    size_t len, cap;
    size_t max;    /* 0: no cap; else len never exceeds max (see truncated) */
    int oom;       /* an allocation failed: later appends are ignored, contents unusable */
    int truncated; /* an append went past max: what did not fit was dropped */
} st_buf;

void st_buf_append(st_buf *b, const void *data, size_t len);
void st_buf_puts(st_buf *b, const char *s);
void st_buf_printf(st_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void st_buf_vprintf(st_buf *b, const char *fmt, va_list ap);
/* Keep only the last max bytes (a bounded tail). */
void st_buf_keep_tail(st_buf *b, size_t max);
/* Empties the buffer (keeps its memory and its cap) and clears oom and truncated. */
void st_buf_reset(st_buf *b);
void st_buf_free(st_buf *b);
/* Hands the data to the caller (who frees it) and resets the buffer. Never NULL unless oom. */
char *st_buf_steal(st_buf *b);

/* NULL-terminated vectors of owned strings. */
typedef struct st_strv {
    char **v;
    size_t n, cap;
    int oom;
} st_strv;

void st_strv_push(st_strv *s, const char *str);
void st_strv_push_owned(st_strv *s, char *str);
void st_strv_pushf(st_strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void st_strv_free(st_strv *s);
/* Always returns a NULL-terminated vector (an empty one for an empty st_strv). */
const char *const *st_strv_get(st_strv *s);
int st_strv_contains(const st_strv *s, const char *str);

char *st_strdup(const char *s); /* NULL-safe; NULL on OOM */
char *st_strndup(const char *s, size_t n);
char *st_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Replaces *dst by a copy of s (NULL: by NULL), freeing the old string. ST_OK, or ST_ERR_NOMEM
 * (then *dst is untouched). */
int st_strset(char **dst, const char *s);

/* Growable arrays: makes room for need elements of elem bytes in *data, whose capacity is *cap
 * (doubling, from 16). ST_OK, or ST_ERR_NOMEM on overflow or out of memory (then *data and
 * *cap are untouched). ST_GROW(array, cap, need) passes the element size of the array. */
int st_grow(void **data, size_t *cap, size_t need, size_t elem);
#define ST_GROW(array, cap, need) st_grow((void **)&(array), &(cap), (need), sizeof(*(array)))

/* Formats a message into err[0..size) (nothing when err is NULL or size 0): the error-out
 * parameter convention of the plugins' helpers. */
void st_set_err(char *err, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
