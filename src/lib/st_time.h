/* SPDX-License-Identifier: MIT */
/* Clocks, UTC timestamps and random ids. Part of libstlib. */
#ifndef ST_LIB_TIME_H
#define ST_LIB_TIME_H

#include <stddef.h>
#include <time.h>

double st_monotonic(void);  /* seconds */
double st_wall_clock(void); /* UNIX seconds */
/* The CLOCK_MONOTONIC time s seconds from now, as pthread_cond_timedwait wants it (with a
 * condition variable whose clock attribute is CLOCK_MONOTONIC). */
void st_monotonic_deadline(double s, struct timespec *ts);
/* Sleeps s seconds (resumed after signals); nothing for s <= 0. */
void st_sleep(double s);
/* UTC timestamps: "%Y%m%d_%H%M%S" and ISO-8601 "YYYY-MM-DDTHH:MM:SSZ". */
void st_utc_stamp(double t, char *out, size_t size);
void st_utc_iso8601(double t, char *out, size_t size);

/* Writes nhex random lowercase hex digits and a NUL into out (size nhex + 1; at most 64 digits,
 * more are cut). The bytes come from getrandom(2) (never waiting for the entropy pool); when it
 * fails (early boot, a seccomp filter) from the clock and the pid, which keeps ids distinct but
 * not secret. */
void st_random_hex(char *out, size_t nhex);

#endif
