/* SPDX-License-Identifier: MIT */
/* The unknown-settings check every plugin's create() runs over its settings group. Part of
 * libstlib; uses only the plugin ABI (the host's cfg_names, cfg_where and log). */
#ifndef ST_LIB_SETTINGS_H
#define ST_LIB_SETTINGS_H

#include <selftest/plugin.h>

/* Checks that every setting in the group cfg is named in known (NULL-terminated). For the first
 * that is not, logs "WHERE: unknown setting 'NAME' (known: a, b, c)" (WHERE from cfg_where; with
 * " in the GROUP group" after the name when group is not NULL) and returns ST_ERR_INVALID;
 * else ST_OK. */
int st_check_settings(const st_host *host, st_instance *self, const st_config_node *cfg,
                      const char *const *known, const char *group);

#endif
