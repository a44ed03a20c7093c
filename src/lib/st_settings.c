/* SPDX-License-Identifier: MIT */
/* The unknown-settings check (see st_settings.h). */
#include "config.h"

#include "st_settings.h"

#include "st_buf.h"

#include <stdlib.h>
#include <string.h>

static int is_known(const char *name, const char *const *known)
{
    for (size_t k = 0; known[k]; k++)
        if (strcmp(name, known[k]) == 0)
            return 1;
    return 0;
}

int st_check_settings(const st_host *host, st_instance *self, const st_config_node *cfg,
                      const char *const *known, const char *group)
{
    const char *const *names = host->cfg_names(self, cfg);
    for (size_t i = 0; names && names[i]; i++) {
        if (is_known(names[i], known))
            continue;
        st_buf list = {0};
        for (size_t k = 0; known[k]; k++)
            st_buf_printf(&list, "%s%s", k ? ", " : "", known[k]);
        host->log(self, ST_LOG_ERROR, "%s: unknown setting '%s'%s%s%s (known: %s)",
                  host->cfg_where(self, cfg, names[i]), names[i], group ? " in the " : "",
                  group ? group : "", group ? " group" : "", list.data && !list.oom ? list.data : "");
        st_buf_free(&list);
        return ST_ERR_INVALID;
    }
    return ST_OK;
}
