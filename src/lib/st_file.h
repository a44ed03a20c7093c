/* SPDX-License-Identifier: MIT */
/* Atomic file writes and bounded whole-file reads. Part of libstlib. Nothing here logs.
 *
 * Every file the core and the plugins write for others to read is replaced atomically: the data
 * goes to a hidden temp file ".NAME.tmp.XXXXXX" in the same directory (a reader listing or
 * globbing the directory never picks it up: it never matches "*.json" or "*.prom"), is
 * fsync'ed, renamed over NAME, and the directory is fsync'ed. On any failure the old file is
 * untouched and no temp file remains. */
#ifndef ST_LIB_FILE_H
#define ST_LIB_FILE_H

#include <stddef.h>

/* st_file_prepare's mode: the mode of the existing file, 0644 when there is none. */
#define ST_FILE_MODE_KEEP (-1)

/* Step one: writes data to a new temp file beside path with mode (e.g. 0644, or
 * ST_FILE_MODE_KEEP) and fsyncs it. On success *tmp_out is its name (the caller frees it and
 * later calls st_file_commit or st_file_abort). Returns 0 or -errno; then no temp file is left
 * and *what (when what is not NULL) names the failed step ("allocate", "create a temp file in
 * its directory", "write", "close"). */
int st_file_prepare(const char *path, const void *data, size_t len, int mode, char **tmp_out,
                    const char **what);
/* Step two: renames tmp over path and fsyncs the directory. Returns 0 or -errno (*what then is
 * "rename the temp file"; the temp file is removed). */
int st_file_commit(const char *tmp, const char *path, const char **what);
/* Removes a prepared temp file that will not be committed (NULL: nothing). */
void st_file_abort(const char *tmp);

/* Both steps at once. Returns 0 or -errno; *what (when not NULL) names the failed step. */
int st_write_file_atomic_what(const char *path, const void *data, size_t len, int mode,
                              const char **what);
/* The same with the step left out: 0 or -errno. */
int st_write_file_atomic(const char *path, const char *data, size_t len, unsigned mode);
/* st_write_file_atomic, unless path is already a regular file holding exactly these bytes
 * (then nothing is written: no fsync, the mtime stays). 0 or -errno. */
int st_write_file_atomic_changed(const char *path, const char *data, size_t len, unsigned mode);

/* Reads a whole regular file (bounded by max bytes; -EFBIG past it). *out is NUL-terminated and
 * owned by the caller; *len (when len is not NULL) its length. Returns 0 or -errno: -EISDIR for
 * a directory, -EINVAL for anything else that is not a regular file (a FIFO is refused at once,
 * never waited on). */
int st_read_file(const char *path, size_t max, char **out, size_t *len);
/* What st_read_file's failure rc means, for a message: "not a regular file" for -EISDIR and
 * -EINVAL, "too large" for -EFBIG, else strerror(-rc). */
const char *st_read_file_strerror(int rc);

/* The st_status (plugin.h) of an errno value (either sign, as these functions return it):
 * ST_ERR_UNAVAILABLE when the file is not there (ENOENT, ENOTDIR), ST_ERR_NOMEM for ENOMEM,
 * ST_ERR_IO for anything else (0: ST_OK). */
int st_status_of_errno(int err);

#endif
