/* SPDX-License-Identifier: MIT */
/* The run lock (docs/spec.md §6.4): an flock on SELF_TEST_LOCK_FILE serialises whole runs of one
 * project across processes. The holder writes its pid into the file so a waiter can say for whom.
 * The lock path is opened without following a symbolic link and must be a regular file with one
 * link that is empty or holds a pid; anything else (somebody's file named by lock_file or
 * SELF_TEST_LOCK_FILE, a link planted in the data dir) is refused, never truncated. */
#ifndef ST_LOCK_H
#define ST_LOCK_H

/* Takes the lock, waiting up to timeout_s (0: do not wait). Returns the fd (>= 0) to pass to
 * st_lock_release, or a negative st_status after logging why: ST_ERR_TIMEOUT (another run held
 * it for timeout_s; the message says who), ST_ERR_IO (the file cannot be created or locked, or
 * is not a lock file). */
int st_lock_acquire(const char *path, double timeout_s);
/* The same; while it waits, should_stop (may be NULL) is polled every 100 ms: non-zero gives up
 * at once with ST_ERR_CANCELLED (a stop signal; run-scheduled also pings the watchdog from it). */
int st_lock_acquire_poll(const char *path, double timeout_s, int (*should_stop)(void));
void st_lock_release(int fd);

#endif
