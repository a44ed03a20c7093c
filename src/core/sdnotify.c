/* SPDX-License-Identifier: MIT */
/* sd_notify(3)'s protocol by hand (see sdnotify.h): a datagram to $NOTIFY_SOCKET. Used from the
 * main thread only. */
#include "config.h"

#include "sdnotify.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int initialised;
static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_addr_len;
static unsigned long long watchdog_usec;
static double last_ping;

/* Parses a whole decimal number: ST_OK, or ST_ERR_INVALID for anything else. */
static int parse_ull(const char *s, unsigned long long *out)
{
    if (!s || !*s)
        return ST_ERR_INVALID;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || *s == '-')
        return ST_ERR_INVALID;
    *out = v;
    return ST_OK;
}

static void init_watchdog(void)
{
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    unsigned long long v = 0, p = 0;
    if (!usec)
        return;
    if (parse_ull(usec, &v) < 0 || v == 0) {
        st_warn("WATCHDOG_USEC=%s is not a positive whole number of microseconds: no watchdog "
                "pings",
                usec);
        return;
    }
    /* WATCHDOG_PID names the process the watchdog is meant for: not us, no pings */
    if (pid && (parse_ull(pid, &p) < 0 || p != (unsigned long long)getpid()))
        return;
    watchdog_usec = v;
}

void st_notify_init(void)
{
    if (initialised)
        return;
    initialised = 1;
    const char *path = getenv("NOTIFY_SOCKET");
    if (path && *path) {
        size_t len = strlen(path);
        if ((path[0] != '/' && path[0] != '@') || len >= sizeof(notify_addr.sun_path)) {
            st_warn("NOTIFY_SOCKET=%s: not an AF_UNIX socket path (absolute, or @ for the "
                    "abstract namespace) shorter than %zu bytes: the service manager will not "
                    "hear from selftest-core",
                    path, sizeof(notify_addr.sun_path));
        } else {
            memset(&notify_addr, 0, sizeof(notify_addr));
            notify_addr.sun_family = AF_UNIX;
            memcpy(notify_addr.sun_path, path, len);
            if (path[0] == '@')
                notify_addr.sun_path[0] = '\0';
            /* an abstract name is exactly len bytes; a path ends with its NUL */
            notify_addr_len =
                (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
            notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            if (notify_fd < 0)
                st_warn("NOTIFY_SOCKET=%s: socket: %s: the service manager will not hear from "
                        "selftest-core",
                        path, strerror(errno));
        }
        if (notify_fd >= 0)
            init_watchdog();
    }
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

int st_notify_send(const char *text)
{
    if (notify_fd < 0)
        return 1;
    ssize_t n;
    do
        n = sendto(notify_fd, text, strlen(text), MSG_NOSIGNAL,
                   (const struct sockaddr *)&notify_addr, notify_addr_len);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        int err = errno;
        st_debug("NOTIFY_SOCKET: cannot send '%.40s': %s", text, strerror(err));
        return -err;
    }
    return 0;
}

int st_notify_printf(const char *fmt, ...)
{
    if (notify_fd < 0)
        return 1;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return st_notify_send(buf);
}

void st_notify_watchdog(void)
{
    if (!watchdog_usec || notify_fd < 0)
        return;
    double now = st_monotonic();
    if (last_ping > 0 && now - last_ping < (double)watchdog_usec / 2e6)
        return;
    last_ping = now;
    st_notify_send("WATCHDOG=1");
}

unsigned long long st_notify_watchdog_usec(void)
{
    return watchdog_usec;
}
