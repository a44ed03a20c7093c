/* SPDX-License-Identifier: MIT */
/* The core's own small helpers: shell-style word splitting, work directories. It includes the
 * helper library (src/lib: buffers, string vectors, paths, atomic files, clocks, numbers) that
 * the whole core uses. Nothing here logs; errors are returned. */
#ifndef ST_UTIL_H
#define ST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <selftest/plugin.h> /* st_status */

#include "st_buf.h"
#include "st_file.h"
#include "st_num.h"
#include "st_path.h"
#include "st_time.h"

/* Shell-style splitting (POSIX quoting rules for '', "" and backslash; no expansion). Returns
 * ST_OK, ST_ERR_INVALID with *err pointing to a static message (an unterminated quote), or
 * ST_ERR_NOMEM. */
int st_shell_split(const char *s, st_strv *out, const char **err);

unsigned st_cpu_count(void);

/* The st_status of an SQLite result code (sqlite3_errcode) of the metrics DB or the history
 * file's DB: ST_ERR_NOMEM, ST_ERR_TIMEOUT (SQLITE_BUSY, SQLITE_LOCKED: another process held
 * the file past the busy timeout), ST_ERR_MALFORMED (SQLITE_CORRUPT, SQLITE_NOTADB),
 * ST_ERR_INTERNAL (SQLITE_CONSTRAINT: a constraint the core's own rows broke), else ST_ERR_IO.
 * Needs only SQLite's header, not the library. */
int st_sqlite_status(int code);
int st_is_identifier(const char *s);

/* Work directories: a run's temporary directories are named "selftest-PID-XXXXXX" (also
 * "selftest-sandbox-PID-..." and "selftest-ssh-PID-..."), PID being the core's. A crashed or
 * killed run leaves them behind; st_remove_stale_workdirs removes, under dir, every such
 * directory that this user owns (not a symbolic link) whose PID no longer exists. Returns how
 * many were removed. */
size_t st_remove_stale_workdirs(const char *dir);
/* The directory work directories go in: $TMPDIR, else /tmp. */
const char *st_tmpdir(void);

#endif
