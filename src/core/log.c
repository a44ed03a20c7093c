/* SPDX-License-Identifier: MIT */
/* Logging to stderr, serialised by one mutex so lines from worker threads never interleave. */
#include "config.h"

#include "log.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>

/* The only mutable globals outside main and the loader: the process-wide log settings. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static st_log_level log_max = ST_LOG_WARNING;
static void (*hook_before)(void *);
static void (*hook_after)(void *);
static void *hook_opaque;

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
    st_buf_printf(&line, "selftest-core: %s: ", names[level]);
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

void st_log(st_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    st_logv(level, NULL, fmt, ap);
    va_end(ap);
}
