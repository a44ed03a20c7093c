/* SPDX-License-Identifier: MIT */
/* JSON helpers over yajl: a generator with 2-space indentation for files people read, compact
 * for streams, and tree lookups with bounds. */
#ifndef ST_JSON_H
#define ST_JSON_H

#include <selftest/plugin.h> /* st_status */
#include <stddef.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "st_json.h" /* st_json_parse, st_json_too_deep: bounded parsing, located errors */

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
/* ST_OK (*out set), ST_ERR_UNAVAILABLE (no such key) or ST_ERR_MALFORMED (not a number of the
 * kind asked for). */
int st_jv_int(yajl_val obj, const char *key, long long *out);
int st_jv_double(yajl_val obj, const char *key, double *out);

#endif
