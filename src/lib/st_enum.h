/* SPDX-License-Identifier: MIT */
/* Enum-to-string tables: one {value, name} array per enum instead of a switch or a parallel
 * array per direction. Part of libstlib.
 *
 *     static const st_enum_name kinds[] = {{ST_KIND_RUNTIME, "runtime"}, ...};
 *     ST_ENUM_NAME(kinds, kind, "unknown")          -> "runtime"
 *     ST_ENUM_VALUE(kinds, "runtime", &v)           -> 0, v = ST_KIND_RUNTIME
 */
#ifndef ST_LIB_ENUM_H
#define ST_LIB_ENUM_H

#include <stddef.h>

typedef struct st_enum_name {
    int value;
    const char *name;
} st_enum_name;

/* The name of value in table[0..n), or unknown when the table has none. */
const char *st_enum_to_name(const st_enum_name *table, size_t n, int value, const char *unknown);
/* The value named name (exact match): ST_OK and *out set, or ST_ERR_INVALID when the table has
 * no such name. */
int st_enum_from_name(const st_enum_name *table, size_t n, const char *name, int *out);

#define ST_ENUM_COUNT(table) (sizeof(table) / sizeof((table)[0]))
#define ST_ENUM_NAME(table, value, unknown) \
    st_enum_to_name((table), ST_ENUM_COUNT(table), (int)(value), (unknown))
#define ST_ENUM_VALUE(table, name, out) st_enum_from_name((table), ST_ENUM_COUNT(table), (name), (out))

#endif
