/* SPDX-License-Identifier: MIT */
/* Stop and reload signals: SIGTERM and SIGINT ask the run to stop, SIGHUP to reload the
 * configuration, unless a process the run started sent them (a test that signals its parent must
 * not stop or reload the service). The handlers only set flags; the pipeline and the scheduler
 * poll them. */
#include "config.h"

#include "signals.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t reload_signal;

/* Appends the decimal form of v to buf at *len (async-signal-safe). */
static void put_num(char *buf, size_t size, size_t *len, long v)
{
    char tmp[24];
    size_t n = 0;
    if (v < 0)
        v = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < sizeof(tmp));
    while (n && *len + 1 < size)
        buf[(*len)++] = tmp[--n];
}

static void put_str(char *buf, size_t size, size_t *len, const char *s)
{
    while (*s && *len + 1 < size)
        buf[(*len)++] = *s++;
}

/* Is pid a descendant of this process? Follows the parent links of /proc/PID/stat with
 * open, read and close only (async-signal-safe). */
static int own_descendant(pid_t pid)
{
    pid_t self = getpid();
    for (int depth = 0; depth < 128 && pid > 1 && pid != self; depth++) {
        char path[40], buf[512];
        size_t len = 0;
        put_str(path, sizeof(path), &len, "/proc/");
        put_num(path, sizeof(path), &len, (long)pid);
        put_str(path, sizeof(path), &len, "/stat");
        path[len] = '\0';
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return 0;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
            return 0;
        /* "PID (COMM) STATE PPID ...": COMM may hold ')', the last one ends it */
        ssize_t i = n - 1;
        while (i > 0 && buf[i] != ')')
            i--;
        i += 2; /* ") " */
        while (i < n && buf[i] != ' ')
            i++; /* the state */
        long ppid = 0;
        for (i++; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
            ppid = ppid * 10 + (buf[i] - '0');
        if (ppid == (long)self)
            return 1;
        pid = (pid_t)ppid;
    }
    return 0;
}

/* A signal sent by a process this run started (a test, a module it imports, a process they
 * left) is not the operator's: a test that signals its parent must not stop or reload the
 * service. Says so on stderr and returns 1 for such a signal. */
static int from_the_run(int sig, const siginfo_t *si)
{
    if (!si || (si->si_code != SI_USER && si->si_code != SI_QUEUE) || si->si_pid <= 0 ||
        !own_descendant(si->si_pid))
        return 0;
    char msg[256];
    size_t len = 0;
    put_str(msg, sizeof(msg), &len, st_log_priority(ST_LOG_WARNING));
    put_str(msg, sizeof(msg), &len, "selftest-core: warning: ignored ");
    put_str(msg, sizeof(msg), &len, sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" :
            sig == SIGHUP ? "SIGHUP" : "a signal");
    put_str(msg, sizeof(msg), &len, " from pid ");
    put_num(msg, sizeof(msg), &len, (long)si->si_pid);
    put_str(msg, sizeof(msg), &len, ", a process this run started (a test or a module it "
            "imports)\n");
    ssize_t w = write(STDERR_FILENO, msg, len);
    (void)w;
    return 1;
}

static void on_stop_signal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    int saved = errno;
    if (!from_the_run(sig, si))
        stop_signal = sig;
    errno = saved;
}

static void on_reload_signal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    int saved = errno;
    if (!from_the_run(sig, si))
        reload_signal = sig;
    errno = saved;
}

int st_signals_stop_requested(void)
{
    return stop_signal != 0;
}

int st_signals_reload_requested(void)
{
    return reload_signal != 0;
}

void st_signals_clear_reload(void)
{
    reload_signal = 0;
}

void st_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO;
    sa.sa_sigaction = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_sigaction = on_reload_signal;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
