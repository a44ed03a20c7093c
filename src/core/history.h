/* SPDX-License-Identifier: MIT */
/* The history file (docs/spec.md §9.3): one {"passed", "failed", "coverage", "runtime", "ts"}
 * entry per cycle. A JSON array rewritten atomically; with a ".db" suffix, rows of table
 * test_history in that SQLite file (the original wrote them elsewhere). A malformed file is
 * reported with line and column and never overwritten. */
#ifndef ST_HISTORY_H
#define ST_HISTORY_H

#include "results.h"

/* Returns 0, or -1 after logging (the file is untouched then). */
int st_history_append(const char *path, const st_run *run);

#endif
