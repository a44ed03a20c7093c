/* SPDX-License-Identifier: MIT */
/* json_depth: a bound on how deep JSON nests, for the plugins' yajl trees (the core has the same
 * check in st_json_parse; plugins cannot link it). yajl builds a tree of any depth and frees it
 * recursively, so a hostile file or reply of a million "[" would overflow the stack; text deeper
 * than the bound is refused before a tree is built, which keeps every free and walk bounded. */
#ifndef ST_JSON_DEPTH_H
#define ST_JSON_DEPTH_H

#include <stddef.h>
#include <string.h>
#include <yajl/yajl_tree.h>

/* Deeper than this is refused (our files and the engines' replies nest a few levels). */
#define STJ_MAX_DEPTH 64u

/* 0 when no array or object in text[0..len) nests deeper than max_depth; else the byte offset
 * of the first bracket that does, plus one. Strings are skipped; the text need not be valid. */
static inline size_t stj_too_deep(const char *text, size_t len, unsigned max_depth)
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

/* yajl_tree_parse of NUL-terminated text, NULL (with "nested deeper than 64 levels" in err when
 * err is given) for text nested deeper than STJ_MAX_DEPTH. */
static inline yajl_val stj_tree_parse(const char *text, char *err, size_t err_size)
{
    if (stj_too_deep(text, strlen(text), STJ_MAX_DEPTH)) {
        if (err && err_size) {
            strncpy(err, "nested deeper than 64 levels", err_size - 1);
            err[err_size - 1] = '\0';
        }
        return NULL;
    }
    return yajl_tree_parse(text, err, err_size);
}

#endif
