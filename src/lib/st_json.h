/* SPDX-License-Identifier: MIT */
/* Reading JSON with yajl, safely and with errors people can act on: a bound on nesting (yajl
 * builds a tree of any depth and frees it recursively, so a hostile file of a million "[" would
 * overflow the stack) and "line L, column C: message" for a parse error. Part of libstlib-json
 * (the part of the helper library that needs yajl). */
#ifndef ST_LIB_JSON_H
#define ST_LIB_JSON_H

#include <stddef.h>
#include <yajl/yajl_tree.h>

/* How deep arrays and objects may nest in what we read (our files and the engines' replies
 * nest a few levels). */
#define ST_JSON_MAX_DEPTH 64

/* 0 when no array or object in text[0..len) nests deeper than max_depth; else the byte offset
 * of the first bracket that does, plus one. Strings are skipped; the text need not be valid. */
size_t st_json_too_deep(const char *text, size_t len, unsigned max_depth);

/* Writes "line L, column C: msg" into err for byte offset off of text. */
void st_json_where(const char *text, size_t off, const char *msg, char *err, size_t err_size);

/* Parses NUL-terminated text; on error returns NULL and writes "line L, column C: message" into
 * err. Text nested deeper than ST_JSON_MAX_DEPTH is an error ("nested deeper than 64 levels"),
 * so every tree it returns is shallow. */
yajl_val st_json_parse(const char *text, char *err, size_t err_size);

/* st_json_parse of text[0..len) as read from a file (text[len] must be NUL): a NUL byte inside
 * is an error ("line L, column C: contains a NUL byte (not JSON text)"), where the parser would
 * otherwise stop and take the start for the whole. */
yajl_val st_json_parse_n(const char *text, size_t len, char *err, size_t err_size);

/* yajl_tree_parse with the same nesting bound, for replies whose errors need no location: on
 * error NULL, with yajl's message or "nested deeper than 64 levels" in err when err is given. */
yajl_val st_json_tree_parse(const char *text, char *err, size_t err_size);

/* Reads a versioned JSON file of the core's own, {"version": version, "<member>": {...}}, of
 * at most max bytes. Returns ST_OK (plugin.h) with *root the parsed file (the caller frees it
 * with yajl_tree_free), or with *root NULL when the file does not exist. Else *root is NULL and
 * err says why, for a message "FILE: cannot read it (ERR)" or "FILE: ERR": ST_ERR_IO (err:
 * "larger than N MiB" or "N bytes", or strerror), ST_ERR_MALFORMED (err: "line L, column C:
 * ...", or "line 1, column 1: expected {"version": V, "<member>": {...}}" for the wrong
 * shape), ST_ERR_NOMEM. */
int st_json_read_versioned(const char *path, size_t max, long long version, const char *member,
                           yajl_val *root, char *err, size_t err_size);

#endif
