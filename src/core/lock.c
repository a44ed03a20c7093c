/* SPDX-License-Identifier: MIT */
/* The run lock (see lock.h). */
#include "config.h"

#include "lock.h"

#include "log.h"
#include "util.h"

#include <selftest/plugin.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A lock file holds nothing or one pid (digits, optional surrounding white space). Anything
 * larger or else is somebody's file: it is never truncated nor written. */
#define LOCK_MAX_BYTES 32

/* Reads the file; 1 when it is empty or holds a pid (stored in *pid, 0 when empty), 0 when it
 * holds anything else, -errno on a read error. */
static int lock_content(int fd, long *pid)
{
    char buf[LOCK_MAX_BYTES + 2];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n < 0)
        return -errno;
    *pid = 0;
    if (n > LOCK_MAX_BYTES)
        return 0;
    buf[n] = '\0';
    size_t i = strspn(buf, " \t\r\n");
    if (buf[i] == '\0')
        return 1; /* empty or blank */
    size_t digits = 0;
    long v = 0;
    while (isdigit((unsigned char)buf[i]) && digits < 12) {
        v = v * 10 + (buf[i++] - '0');
        digits++;
    }
    if (!digits || buf[i + strspn(buf + i, " \t\r\n")] != '\0')
        return 0;
    *pid = v;
    return 1;
}

static long holder_pid(int fd)
{
    long pid = 0;
    return lock_content(fd, &pid) == 1 ? pid : 0;
}

/* Checks that fd is a lock file we may write: a regular file with one link. ST_OK or ST_ERR_IO
 * (logged). */
static int check_type(int fd, const char *path)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        st_error("lock file %s: %s", path, strerror(errno));
        return ST_ERR_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        st_error("lock file %s: not a regular file; refusing to use it as the run lock "
                 "(set lock_file or SELF_TEST_LOCK_FILE to a file of its own)",
                 path);
        return ST_ERR_IO;
    }
    if (st.st_nlink > 1) {
        st_error("lock file %s: has %lu hard links; refusing to use it as the run lock "
                 "(remove it, or set lock_file or SELF_TEST_LOCK_FILE to a file of its own)",
                 path, (unsigned long)st.st_nlink);
        return ST_ERR_IO;
    }
    return ST_OK;
}

int st_lock_acquire(const char *path, double timeout_s)
{
    return st_lock_acquire_poll(path, timeout_s, NULL);
}

int st_lock_acquire_poll(const char *path, double timeout_s, int (*should_stop)(void))
{
    char *dir = st_path_dirname(path);
    if (dir) {
        int rc = st_mkdir_p(dir, 0755);
        if (rc < 0) {
            st_error("lock file %s: cannot create its directory %s: %s", path, dir,
                     strerror(-rc));
            free(dir);
            return ST_ERR_IO;
        }
    }
    free(dir);
    /* O_NOFOLLOW: a symbolic link planted at the lock path must not make us write the file it
     * points to; O_NONBLOCK: opening a FIFO must not hang (it is refused below). */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0644);
    if (fd < 0) {
        if (errno == ELOOP)
            st_error("lock file %s: is a symbolic link; refusing to follow it (remove it, or "
                     "set lock_file or SELF_TEST_LOCK_FILE to a file of its own)",
                     path);
        else
            st_error("lock file %s: %s", path, strerror(errno));
        return ST_ERR_IO;
    }
    int status = check_type(fd, path);
    if (status != ST_OK) {
        close(fd);
        return status;
    }
    double deadline = st_monotonic() + timeout_s;
    int told = 0;
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            st_error("lock file %s: %s", path, strerror(errno));
            close(fd);
            return ST_ERR_IO;
        }
        long pid = holder_pid(fd);
        if (st_monotonic() >= deadline) {
            st_error("another run holds %s (pid %ld); gave up after %gs (lock_timeout)", path, pid,
                     timeout_s);
            close(fd);
            return ST_ERR_TIMEOUT;
        }
        if (!told) {
            st_warn("another run holds %s (pid %ld); waiting up to %gs", path, pid, timeout_s);
            told = 1;
        }
        if (should_stop && should_stop()) {
            st_info("stopped while waiting for the lock %s", path);
            close(fd);
            return ST_ERR_CANCELLED;
        }
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    /* Checked again under the lock: only an empty file or a pid is ever overwritten. */
    long old = 0;
    int c = lock_content(fd, &old);
    if (c <= 0) {
        if (c < 0)
            st_error("lock file %s: %s", path, strerror(-c));
        else
            st_error("lock file %s: holds something other than a pid; refusing to overwrite it "
                     "(is lock_file or SELF_TEST_LOCK_FILE naming another file?)",
                     path);
        flock(fd, LOCK_UN);
        close(fd);
        return ST_ERR_IO;
    }
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
        st_debug("cannot record our pid in %s: %s", path, strerror(errno));
    return fd;
}

void st_lock_release(int fd)
{
    if (fd < 0)
        return;
    /* Clear our pid, and only our pid: whatever else the file holds now stays. */
    long pid = 0;
    if (lock_content(fd, &pid) == 1 && pid == (long)getpid() && ftruncate(fd, 0) < 0) {
        /* the pid stays; harmless, the next holder overwrites it */
    }
    flock(fd, LOCK_UN);
    close(fd);
}
