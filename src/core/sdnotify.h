/* SPDX-License-Identifier: MIT */
/* The service manager's notification protocol (sd_notify(3), without libsystemd): one datagram
 * of NAME=VALUE lines to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or "@name" for the
 * abstract namespace). run-scheduled sends READY=1 when its first cycle starts, STATUS= at the
 * start and end of every cycle, STOPPING=1, and WATCHDOG=1 every WATCHDOG_USEC/2 while its main
 * thread polls (waiting for batches, the project lock or the next cycle). Not started by a service manager (no $NOTIFY_SOCKET): every call does nothing. */
#ifndef ST_SDNOTIFY_H
#define ST_SDNOTIFY_H

/* Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID once and removes them from the environment
 * (the pytest processes must not talk to the service manager). An address that cannot be used
 * is logged (warning) and notifications are off. Idempotent. */
void st_notify_init(void);

/* Sends text (NAME=VALUE lines separated by '\n'). Returns 0, 1 when notifications are off, or
 * a negative errno (logged at debug level: the service manager may be gone). */
int st_notify_send(const char *text);
int st_notify_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sends WATCHDOG=1 when the watchdog is on and half its interval has passed since the last
 * ping. Cheap: call it from every loop that waits. */
void st_notify_watchdog(void);

/* The watchdog interval in microseconds (0: off), for the log. */
unsigned long long st_notify_watchdog_usec(void);

#endif
