/* SPDX-License-Identifier: MIT */
/* JSON helpers over yajl: a generator with 2-space indentation for files people read, compact
 * for streams, and tree lookups with bounds. */
#ifndef ST_JSON_H
#define ST_JSON_H

#include <stddef.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

yajl_gen st_jg_new(int pretty); /* NULL on OOM */
void st_jg_key(yajl_gen g, const char *key);
void st_jg_str(yajl_gen g, const char *s); /* NULL -> null */
void st_jg_int(yajl_gen g, long long v);
void st_jg_double(yajl_gen g, double v);   /* NaN/inf -> null */
void st_jg_bool(yajl_gen g, int v);
void st_jg_null(yajl_gen g);
void st_jg_kstr(yajl_gen g, const char *key, const char *s);
void st_jg_kint(yajl_gen g, const char *key, long long v);
void st_jg_kdouble(yajl_gen g, const char *key, double v);
/* A percentage that is unknown when negative: null then. */
void st_jg_kpercent(yajl_gen g, const char *key, double v);
void st_jg_kbool(yajl_gen g, const char *key, int v);
/* Copies the generated text (with a trailing newline when nl) and frees g. NULL on OOM. */
char *st_jg_finish(yajl_gen g, int nl);

/* Tree helpers: NULL when absent or of another type. */
yajl_val st_jv_get(yajl_val obj, const char *key);
const char *st_jv_str(yajl_val obj, const char *key);
int st_jv_int(yajl_val obj, const char *key, long long *out); /* 0 found, -1 not */
int st_jv_double(yajl_val obj, const char *key, double *out);

/* How deep arrays and objects may nest in a file we read (ours are 4 levels at most). */
#define ST_JSON_MAX_DEPTH 64

/* 0 when no array or object in text[0..len) nests deeper than max_depth; else the byte offset
 * of the first bracket that does, plus one. Strings are skipped; the text need not be valid. */
size_t st_json_too_deep(const char *text, size_t len, unsigned max_depth);

/* Parses text; on error returns NULL and writes "line L, column C: message" into err. Text
 * nested deeper than ST_JSON_MAX_DEPTH is an error ("nested deeper than 64 levels"), so every
 * tree it returns is shallow. */
yajl_val st_json_parse(const char *text, char *err, size_t err_size);

#endif
