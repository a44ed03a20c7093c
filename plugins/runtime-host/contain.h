/* SPDX-License-Identifier: MIT */
/* Keeping track of every process an execution starts, and stopping them all when it ends or when
 * the core dies.
 *
 * Three mechanisms, used together:
 *  - a token: each execution gets SELF_TEST_EXEC_TOKEN=<instance prefix><seq> in its environment;
 *    every descendant that keeps its environment (setsid, setpgid, double fork, Popen with
 *    start_new_session all do) carries it in /proc/PID/environ and is found by a scan;
 *  - a cgroup v2 per execution, when the core may create one below its own cgroup: nothing
 *    leaves it but a process that writes to cgroup files itself; cgroup.kill stops them all at
 *    once. A process limit comes from the pids controller, in the v2 cgroup when it is enabled
 *    there, else in a v1 pids hierarchy when one is mounted;
 *  - a guard process, started with the runtime, in a session of its own: it waits for the core
 *    to go away (EOF on a pipe only the core holds) and then kills whatever is left in the
 *    instance's cgroups and whatever carries the instance's token, and removes the cgroups.
 *    So kill -9 of the core leaves nothing running. It uses only system calls (async-signal-safe
 *    after fork in a threaded process). When the core stops normally after every execution
 *    ended with nothing left, it says so first ('q'), and the guard only removes the cgroups.
 *    The guard also stops, at its start and while the core goes on, what dead instances left.
 */
#ifndef RUNTIME_HOST_CONTAIN_H
#define RUNTIME_HOST_CONTAIN_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#define CT_TOKEN_VAR "SELF_TEST_EXEC_TOKEN"
#define CT_PATH 512

typedef struct ct_instance {
    char prefix[64];          /* token prefix of this instance, "st<pid>.<pidns>-<nonce>-" */
    unsigned long pidns;      /* inode of the pid namespace, 0 unknown */
    char v2_base[CT_PATH];    /* the instance's cgroup v2 directory, "" when none */
    char v1_pids_base[CT_PATH]; /* the instance's cgroup v1 pids directory, "" when none */
    char v2_parent[CT_PATH], v1_parent[CT_PATH]; /* where instances' cgroups are created */
    int v2_pids;              /* the pids controller is enabled below v2_base */
    int v2_kill;              /* cgroup.kill exists (Linux 5.14) */
    pid_t guard;              /* the guard process, or -1 */
    int guard_fd;             /* write end of the guard's pipe, or -1 */
    int stale_fd;             /* read end of the guard's report of its stale sweep, or -1 */
    int open_execs, unclean;  /* executions open, and closed with something maybe left */
    char *scratch;            /* the guard's read buffer (allocated before fork) */
    size_t scratch_len;
    unsigned stale_killed;    /* processes of dead instances stopped at start (ct_stale_killed) */
    char why[CT_PATH + 160];            /* what was found, for the log */
} ct_instance;

typedef struct ct_exec {
    char token[128];          /* SELF_TEST_EXEC_TOKEN=... (the whole env entry) */
    char v2[CT_PATH + 32];       /* this execution's cgroup v2 directory, or "" */
    char v1[CT_PATH + 32];       /* this execution's v1 pids cgroup, or "" */
    long long pids_max;       /* the pids.max in force, 0 = none */
    int clear;                /* seen empty after the leader exited: nothing left to kill */
    ct_instance *ci;
} ct_exec;

/* Finds what the machine offers, creates the instance's cgroups and starts the guard, which
 * first stops what instances of dead selftest-core processes left (processes whose token names
 * a core that is gone, when their guard died with it, and their cgroups) while the core goes
 * on; without a guard that is done here. Never fails: without cgroups the token alone is used.
 * use_cgroup = 0 skips cgroups. */
void ct_start(ct_instance *ci, int use_cgroup);
/* How many processes ct_start's stale sweep stopped (waits for the guard's report, once; 0
 * after the first call). */
unsigned ct_stale_killed(ct_instance *ci);
/* Stops what dead instances left (as ct_start does); how many processes it killed. */
unsigned ct_sweep_stale(const ct_instance *ci);
/* Stops the guard and removes the instance's cgroups; the guard sweeps once more unless every
 * execution was closed seen empty. Idempotent. */
void ct_stop(ct_instance *ci);

/* Prepares an execution: token and cgroups (pids.max when max_pids > 0 and a pids controller is
 * there). Returns 0; on a cgroup error the execution runs without that cgroup (warn says why). */
void ct_exec_open(ct_instance *ci, ct_exec *ce, unsigned long seq, long long max_pids,
                  char *warn, size_t warn_len);
/* Moves pid into the execution's cgroups (not the v2 one when in_v2: it was started there);
 * -1 with err on failure. */
int ct_exec_join(const ct_exec *ce, pid_t pid, int in_v2, char *err, size_t err_len);
/* How often the execution's process limit refused a fork so far (pids.events "max"). */
long long ct_exec_pids_refused(const ct_exec *ce);
/* Pids of the execution still running (zombies excluded), except `except`; up to cap in out,
 * returns how many there are. */
size_t ct_exec_members(const ct_instance *ci, const ct_exec *ce, pid_t except, pid_t *out,
                       size_t cap);
/* Marks the execution as seen empty (ct_exec_members found no process but the leader, which
 * has exited): a later ct_exec_kill has nothing to look for, since a zombie cannot fork and
 * no other process carries the token or sits in the cgroups. */
void ct_exec_mark_clear(ct_exec *ce);
/* Kills every process of the execution and waits (bounded) until none is left; returns at once
 * once the execution was seen empty (ct_exec_mark_clear, or an earlier ct_exec_kill). */
void ct_exec_kill(const ct_instance *ci, ct_exec *ce);
/* Removes the execution's cgroups (after ct_exec_kill and after the leader is reaped). */
void ct_exec_close(ct_exec *ce);

#endif
