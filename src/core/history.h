/* SPDX-License-Identifier: MIT */
/* The history file (docs/spec.md §9.3): one {"passed", "failed", "coverage", "runtime", "ts"}
 * entry per cycle. A JSON array rewritten atomically; with a ".db" suffix, rows of table
 * test_history in that SQLite file (the original wrote them elsewhere). A malformed file is
 * reported with line and column and never overwritten. */
#ifndef ST_HISTORY_H
#define ST_HISTORY_H

#include "results.h"

/* Returns ST_OK, or a negative st_status after logging (the file is untouched then):
 * ST_ERR_MALFORMED (the file is not a JSON array, or nests too deeply), ST_ERR_IO or
 * ST_ERR_UNAVAILABLE (it or its directory cannot be read or written), the SQLite file's status
 * (st_sqlite_status), ST_ERR_NOMEM. */
int st_history_append(const char *path, const st_run *run);

#endif
