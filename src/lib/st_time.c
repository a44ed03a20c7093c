/* SPDX-License-Identifier: MIT */
/* Clocks, timestamps and random ids (see st_time.h). */
#include "config.h"

#include "st_time.h"

#include <errno.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

double st_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double st_wall_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void st_monotonic_deadline(double s, struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    if (!(s > 0))
        return;
    time_t whole = (time_t)s;
    long ns = ts->tv_nsec + (long)((s - (double)whole) * 1e9);
    ts->tv_sec += whole + ns / 1000000000L;
    ts->tv_nsec = ns % 1000000000L;
}

void st_sleep(double s)
{
    if (!(s > 0))
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

void st_utc_stamp(double t, char *out, size_t size)
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, size, "%Y%m%d_%H%M%S", &tm);
}

void st_utc_iso8601(double t, char *out, size_t size)
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void st_random_hex(char *out, size_t nhex)
{
    unsigned char raw[32];
    if (nhex > 2 * sizeof(raw))
        nhex = 2 * sizeof(raw);
    size_t nbytes = (nhex + 1) / 2;
    if (getrandom(raw, nbytes, GRND_NONBLOCK) != (ssize_t)nbytes) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long long x = (unsigned long long)ts.tv_nsec ^
                               ((unsigned long long)ts.tv_sec << 20) ^
                               ((unsigned long long)getpid() << 40);
        for (size_t i = 0; i < nbytes; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            raw[i] = (unsigned char)(x >> 56);
        }
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < nhex; i++)
        out[i] = hex[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[nhex] = '\0';
}
