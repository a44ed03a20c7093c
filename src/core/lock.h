/* The run lock (spec §6.4): an flock on SELF_TEST_LOCK_FILE serialises whole runs of one project
 * across processes. The holder writes its pid into the file so a waiter can say for whom. */
#ifndef ST_LOCK_H
#define ST_LOCK_H

/* Takes the lock, waiting up to timeout_s (0: do not wait). Returns the fd (>= 0) to pass to
 * st_lock_release, or -1 after logging who holds it. */
int st_lock_acquire(const char *path, double timeout_s);
void st_lock_release(int fd);

#endif
