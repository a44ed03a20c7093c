/* SPDX-License-Identifier: MIT */
/* The quarantine file (default <data>/quarantine.json, or the quarantine_file setting): the
 * tests whose failures are known and tolerated. They still run and are reported, but a
 * failure of theirs neither changes the exit status nor counts as a regression.
 *
 *   {"tests": [{"nodeid": "tests/test_x.py::test_f", "reason": "races the clock",
 *               "since": "2026-11-27T10:00:00Z"}]}
 *
 * Written atomically (temp file, fsync, rename); a file that is not in this format is reported
 * (naming the file and what is wrong) and never overwritten. */
#ifndef ST_QUARANTINE_H
#define ST_QUARANTINE_H

#include <stddef.h>

typedef struct st_quarantine_entry {
    char *nodeid;
    char *reason;
    char *since; /* UTC, ISO 8601 */
} st_quarantine_entry;

typedef struct st_quarantine {
    st_quarantine_entry *v;
    size_t n, cap;
} st_quarantine;

/* Reads path into q (a missing or empty file: no entries). Returns ST_OK, or (logged, naming
 * the file) ST_ERR_MALFORMED (not JSON, not the format above), ST_ERR_IO (unreadable) or
 * ST_ERR_NOMEM. */
int st_quarantine_load(const char *path, st_quarantine *q);
/* Writes q to path atomically. Returns ST_OK or a negative st_status (logged). */
int st_quarantine_save(const char *path, const st_quarantine *q);
/* The entry of nodeid, or NULL. */
const st_quarantine_entry *st_quarantine_find(const st_quarantine *q, const char *nodeid);
/* Adds nodeid (or replaces its reason and date). ST_OK or ST_ERR_NOMEM. */
int st_quarantine_add(st_quarantine *q, const char *nodeid, const char *reason, double now);
/* Removes nodeid: 1 when it was there, 0 when not. */
int st_quarantine_remove(st_quarantine *q, const char *nodeid);
void st_quarantine_free(st_quarantine *q);

#endif
