/* The run lock (see lock.h). */
#include "config.h"

#include "lock.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static long holder_pid(int fd)
{
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

int st_lock_acquire(const char *path, double timeout_s)
{
    char *dir = st_path_dirname(path);
    if (dir)
        st_mkdir_p(dir, 0755);
    free(dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        st_error("lock file %s: %s (set SELF_TEST_LOCK_FILE)", path, strerror(errno));
        return -1;
    }
    double deadline = st_monotonic() + timeout_s;
    int told = 0;
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            st_error("lock file %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        long pid = holder_pid(fd);
        if (st_monotonic() >= deadline) {
            st_error("another run holds %s (pid %ld); gave up after %gs (lock_timeout)", path, pid,
                     timeout_s);
            close(fd);
            return -1;
        }
        if (!told) {
            st_warn("another run holds %s (pid %ld); waiting up to %gs", path, pid, timeout_s);
            told = 1;
        }
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
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
    if (ftruncate(fd, 0) < 0) {
        /* the pid stays; harmless, the next holder overwrites it */
    }
    flock(fd, LOCK_UN);
    close(fd);
}
