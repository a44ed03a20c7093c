/* SPDX-License-Identifier: MIT */
/* Logging to stderr: one line per message, "selftest-core: LEVEL: text", thread-safe. The
 * verbosity is set once by main (-v / -q). */
#ifndef ST_LOG_H
#define ST_LOG_H

#include <selftest/plugin.h>
#include <stdarg.h>

void st_log_set_level(st_log_level max_level);
/* When stderr is the journal (JOURNAL_STREAM names stderr's device and inode), every line starts
 * with its syslog priority: <3> error, <4> warning, <6> info, <7> debug. Called once by main;
 * returns whether it is. */
int st_log_detect_journal(void);
/* The priority prefix of a line of that level ("<3>" for an error ... "<7>" for debug) when
 * stderr is the journal, else "". Async-signal-safe. */
const char *st_log_priority(st_log_level level);
/* Writes text to stderr as it is (no "selftest-core: LEVEL:" head, whatever the verbosity),
 * each line with the level's priority prefix under the journal: usage errors and messages of
 * the CLI. */
void st_log_raw(st_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
st_log_level st_log_get_level(void);
/* prefix may be NULL; it names a plugin instance. */
void st_logv(st_log_level level, const char *prefix, const char *fmt, va_list ap);
void st_log(st_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define st_error(...) st_log(ST_LOG_ERROR, __VA_ARGS__)
#define st_warn(...) st_log(ST_LOG_WARNING, __VA_ARGS__)
#define st_info(...) st_log(ST_LOG_INFO, __VA_ARGS__)
#define st_debug(...) st_log(ST_LOG_DEBUG, __VA_ARGS__)

/* Hook so the progress line can be cleared before a message is printed (set by the CLI). */
void st_log_set_hook(void (*before)(void *), void (*after)(void *), void *opaque);

#endif
