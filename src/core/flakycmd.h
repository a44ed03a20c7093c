/* SPDX-License-Identifier: MIT */
/* The `flaky` command: lists the tests whose flakiness score (from metrics.db, docs/flaky.md)
 * is above flaky_threshold, and edits the quarantine file. */
#ifndef ST_FLAKYCMD_H
#define ST_FLAKYCMD_H

#include "settings.h"

typedef struct st_flaky_opts {
    const char *quarantine; /* NODEID to add, or NULL */
    const char *reason;     /* its reason (required with quarantine) */
    const char *release;    /* NODEID to remove, or NULL */
    int json;
} st_flaky_opts;

/* Returns ST_OK, ST_ERR_INVALID (a usage error, or a quarantine file that is not in its
 * format: reported, never overwritten) or another negative st_status (logged). */
int st_flaky_command(const st_settings *s, const st_flaky_opts *o);

#endif
