/* SPDX-License-Identifier: MIT */
/* Atomic writes and bounded reads (see st_file.h). */
#include "config.h"

#include "st_file.h"

#include "st_buf.h"
#include "st_path.h"

#include <selftest/plugin.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void set_what(const char **what, const char *step)
{
    if (what)
        *what = step;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ".NAME.tmp.XXXXXX" in the directory of path. */
static char *temp_template(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return st_asprintf(".%s.tmp.XXXXXX", path);
    return st_asprintf("%.*s/.%s.tmp.XXXXXX", (int)(slash - path), path, slash + 1);
}

int st_file_prepare(const char *path, const void *data, size_t len, int mode, char **tmp_out,
                    const char **what)
{
    *tmp_out = NULL;
    set_what(what, "allocate");
    char *tmp = temp_template(path);
    if (!tmp)
        return -ENOMEM;
    if (mode == ST_FILE_MODE_KEEP) {
        struct stat st;
        mode = stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : 0644;
    }
    set_what(what, "create a temp file in its directory");
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        free(tmp);
        return rc;
    }
    set_what(what, "write");
    int rc = 0;
    if (fchmod(fd, (mode_t)mode) < 0 || (rc = write_all(fd, data, len)) < 0 || fsync(fd) < 0) {
        rc = rc < 0 ? rc : -errno;
        close(fd);
        goto fail;
    }
    set_what(what, "close");
    if (close(fd) < 0) {
        rc = -errno;
        goto fail;
    }
    *tmp_out = tmp;
    return 0;
fail:
    unlink(tmp);
    free(tmp);
    return rc;
}

int st_file_commit(const char *tmp, const char *path, const char **what)
{
    assert(tmp != NULL && path != NULL);
    if (rename(tmp, path) < 0) {
        int rc = -errno;
        set_what(what, "rename the temp file");
        unlink(tmp);
        return rc;
    }
    /* best effort: the rename is durable once the directory is */
    char *dir = st_path_dirname(path);
    int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dir);
    return 0;
}

void st_file_abort(const char *tmp)
{
    if (tmp)
        unlink(tmp);
}

int st_write_file_atomic_what(const char *path, const void *data, size_t len, int mode,
                              const char **what)
{
    char *tmp = NULL;
    int rc = st_file_prepare(path, data, len, mode, &tmp, what);
    if (rc == 0)
        rc = st_file_commit(tmp, path, what);
    free(tmp);
    return rc;
}

int st_write_file_atomic(const char *path, const char *data, size_t len, unsigned mode)
{
    return st_write_file_atomic_what(path, data, len, (int)mode, NULL);
}

int st_write_file_atomic_changed(const char *path, const char *data, size_t len, unsigned mode)
{
    char *old = NULL;
    size_t old_len = 0;
    int same = st_read_file(path, len, &old, &old_len) == 0 && old && old_len == len &&
               (len == 0 || memcmp(old, data, len) == 0);
    free(old);
    return same ? 0 : st_write_file_atomic(path, data, len, mode);
}

int st_read_file(const char *path, size_t max, char **out, size_t *len)
{
    /* O_NONBLOCK: a FIFO must not hang the open; it is refused below */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0)
        rc = -errno;
    else if (S_ISDIR(st.st_mode))
        rc = -EISDIR;
    else if (!S_ISREG(st.st_mode))
        rc = -EINVAL;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    st_buf b = {0};
    char chunk[65536];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        if (b.len + (size_t)r > max) {
            rc = -EFBIG;
            break;
        }
        st_buf_append(&b, chunk, (size_t)r);
        if (b.oom) {
            rc = -ENOMEM;
            break;
        }
    }
    close(fd);
    if (rc < 0) {
        st_buf_free(&b);
        return rc;
    }
    if (len)
        *len = b.len;
    *out = st_buf_steal(&b);
    return *out ? 0 : -ENOMEM;
}

const char *st_read_file_strerror(int rc)
{
    if (rc == -EISDIR || rc == -EINVAL)
        return "not a regular file";
    if (rc == -EFBIG)
        return "too large";
    return strerror(-rc);
}

int st_status_of_errno(int err)
{
    if (err < 0)
        err = -err;
    switch (err) {
    case 0:
        return ST_OK;
    case ENOENT:
    case ENOTDIR:
        return ST_ERR_UNAVAILABLE;
    case ENOMEM:
        return ST_ERR_NOMEM;
    }
    return ST_ERR_IO;
}
