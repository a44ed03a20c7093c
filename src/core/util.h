/* SPDX-License-Identifier: MIT */
/* Small helpers the whole core uses: growable buffers and string vectors, paths, atomic files,
 * clocks, shell-style word splitting. Nothing here logs; errors are returned. */
#ifndef ST_UTIL_H
#define ST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* A growable, always NUL-terminated byte buffer. Zero-initialise to use. */
typedef struct st_buf {
    char *data;
    size_t len, cap;
    int oom; /* an append failed: the contents are truncated */
} st_buf;

void st_buf_append(st_buf *b, const char *data, size_t len);
void st_buf_puts(st_buf *b, const char *s);
void st_buf_printf(st_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void st_buf_vprintf(st_buf *b, const char *fmt, va_list ap);
/* Keep only the last max bytes (a bounded tail). */
void st_buf_keep_tail(st_buf *b, size_t max);
void st_buf_reset(st_buf *b);
void st_buf_free(st_buf *b);
/* Hands the data to the caller (who frees it) and resets the buffer. Never NULL unless oom. */
char *st_buf_steal(st_buf *b);

/* NULL-terminated vectors of owned strings. */
typedef struct st_strv {
    char **v;
    size_t n, cap;
    int oom;
} st_strv;

void st_strv_push(st_strv *s, const char *str);
void st_strv_push_owned(st_strv *s, char *str);
void st_strv_pushf(st_strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void st_strv_free(st_strv *s);
/* Always returns a NULL-terminated vector (an empty one for an empty st_strv). */
const char *const *st_strv_get(st_strv *s);
int st_strv_contains(const st_strv *s, const char *str);

char *st_strdup(const char *s);                   /* NULL-safe; NULL on OOM */
char *st_strndup(const char *s, size_t n);
char *st_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Paths. */
char *st_path_join(const char *a, const char *b); /* b absolute -> copy of b */
char *st_path_dirname(const char *path);
/* Resolves path (relative to base when relative) to an absolute path with "." and ".." folded,
 * without touching the file system. */
char *st_path_absolute(const char *base, const char *path);
/* If abs_path lies inside root (both absolute, normalised), returns the repo-relative POSIX
 * path ("." for root itself); NULL when it escapes. */
char *st_path_relative_to(const char *root, const char *abs_path);
/* Checks that rel is a safe repo-relative path: not absolute, no ".." component, not empty.
 * When root is given it also checks that no existing component is a symlink leading outside. */
int st_path_is_safe_relative(const char *root, const char *rel);
int st_mkdir_p(const char *path, unsigned mode); /* 0 or -errno */
int st_rm_rf(const char *path);                  /* 0 or -errno; never follows symlinks */

/* Writes data to path atomically: temp file in the same directory, fsync, rename, fsync of the
 * directory. The file gets mode (e.g. 0644). Returns 0 or -errno; on failure the old file is
 * untouched and no temp file remains. */
int st_write_file_atomic(const char *path, const char *data, size_t len, unsigned mode);
/* Reads a whole file (bounded by max bytes; -EFBIG past it). *out is NUL-terminated. */
int st_read_file(const char *path, size_t max, char **out, size_t *len);

double st_monotonic(void);   /* seconds */
double st_wall_clock(void);  /* UNIX seconds */
/* UTC timestamps: "%Y%m%d_%H%M%S" and ISO-8601 "YYYY-MM-DDTHH:MM:SSZ". */
void st_utc_stamp(double t, char *out, size_t size);
void st_utc_iso8601(double t, char *out, size_t size);

/* Shell-style splitting (POSIX quoting rules for '', "" and backslash; no expansion). Returns
 * 0, or -1 with *err pointing to a static message (unterminated quote). */
int st_shell_split(const char *s, st_strv *out, const char **err);

/* Boolean words: 1/0, true/false, yes/no, on/off, any case. Returns 0/1, or -1 if not one. */
int st_parse_bool(const char *s);
/* Strict integer and double parsing of a whole string: plain decimal only (no hex, inf or
 * nan), surrounding white space ignored (as by st_parse_bool). 0 on success, -1 otherwise. */
int st_parse_long(const char *s, long long *out);
int st_parse_double(const char *s, double *out);

unsigned st_cpu_count(void);
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
