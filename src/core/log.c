/* SPDX-License-Identifier: MIT */
/* Logging to stderr, serialised by one mutex so lines from worker threads never interleave. */
#include "config.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The only mutable globals outside main and the loader: the process-wide log settings. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static st_log_level log_max = ST_LOG_WARNING;
static void (*hook_before)(void *);
static void (*hook_after)(void *);
static void *hook_opaque;
static int log_journal; /* stderr is the journal: lines start with a syslog priority */

int st_log_detect_journal(void)
{
    /* systemd sets JOURNAL_STREAM=DEV:INODE of the stream it connected stdout/stderr to; the
     * variable alone proves nothing (it is inherited), stderr's own device and inode must
     * match it */
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev = 0, ino = 0;
    char *end = NULL;
    struct stat st;
    log_journal = 0;
    if (!js || *js < '0' || *js > '9')
        return 0;
    errno = 0;
    dev = strtoull(js, &end, 10);
    if (errno || *end != ':' || end[1] < '0' || end[1] > '9')
        return 0;
    ino = strtoull(end + 1, &end, 10);
    if (errno || *end)
        return 0;
    log_journal = fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
                  (unsigned long long)st.st_ino == ino;
    return log_journal;
}

void st_log_set_level(st_log_level max_level)
{
    log_max = max_level;
}

st_log_level st_log_get_level(void)
{
    return log_max;
}

void st_log_set_hook(void (*before)(void *), void (*after)(void *), void *opaque)
{
    pthread_mutex_lock(&log_lock);
    hook_before = before;
    hook_after = after;
    hook_opaque = opaque;
    pthread_mutex_unlock(&log_lock);
}

void st_logv(st_log_level level, const char *prefix, const char *fmt, va_list ap)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    if (level > log_max)
        return;
    st_buf line = {0};
    st_buf_printf(&line, "%sselftest-core: %s: ", st_log_priority(level), names[level]);
    if (prefix)
        st_buf_printf(&line, "%s: ", prefix);
    st_buf_vprintf(&line, fmt, ap);
    st_buf_puts(&line, "\n");
    pthread_mutex_lock(&log_lock);
    if (hook_before)
        hook_before(hook_opaque);
    if (line.data)
        fputs(line.data, stderr);
    fflush(stderr);
    if (hook_after)
        hook_after(hook_opaque);
    pthread_mutex_unlock(&log_lock);
    st_buf_free(&line);
}

const char *st_log_priority(st_log_level level)
{
    static const char *const priorities[] = {"<3>", "<4>", "<6>", "<7>"};
    return log_journal && level >= ST_LOG_ERROR && level <= ST_LOG_DEBUG ? priorities[level] : "";
}

void st_log_raw(st_log_level level, const char *fmt, ...)
{
    st_buf text = {0}, out = {0};
    va_list ap;
    va_start(ap, fmt);
    st_buf_vprintf(&text, fmt, ap);
    va_end(ap);
    const char *p = text.data ? text.data : "";
    /* every line gets the priority: journald reads each line as a record of its own */
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        if (n > 1 || *p != '\n')
            st_buf_puts(&out, st_log_priority(level));
        st_buf_append(&out, p, n);
        p += n;
    }
    pthread_mutex_lock(&log_lock);
    if (hook_before)
        hook_before(hook_opaque);
    if (out.data)
        fputs(out.data, stderr);
    fflush(stderr);
    if (hook_after)
        hook_after(hook_opaque);
    pthread_mutex_unlock(&log_lock);
    st_buf_free(&text);
    st_buf_free(&out);
}

void st_log(st_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    st_logv(level, NULL, fmt, ap);
    va_end(ap);
}
