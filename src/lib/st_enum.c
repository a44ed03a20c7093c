/* SPDX-License-Identifier: MIT */
/* Enum-to-string tables (see st_enum.h). */
#include "config.h"

#include "st_enum.h"

#include <selftest/plugin.h>

#include <string.h>

const char *st_enum_to_name(const st_enum_name *table, size_t n, int value, const char *unknown)
{
    for (size_t i = 0; i < n; i++)
        if (table[i].value == value)
            return table[i].name;
    return unknown;
}

int st_enum_from_name(const st_enum_name *table, size_t n, const char *name, int *out)
{
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(table[i].name, name) == 0) {
            *out = table[i].value;
            return ST_OK;
        }
    return ST_ERR_INVALID;
}
