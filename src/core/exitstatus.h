/* SPDX-License-Identifier: MIT */
/* Exit statuses: the one place where a plugin's status or a run's outcome becomes the process's
 * exit status.
 *
 *   0  every test passed
 *   1  a test failed, or a batch failed (timeout, crash, signal, no tests collected, a test that
 *      ended the pytest process), or (with fail_on_orphans) an orphan check failed; also `report`
 *      when there is no report to print
 *   2  usage or configuration error (a bad option, setting or variable; a plugin's create()
 *      refusing its settings with ST_ERR_INVALID)
 *   3  infrastructure error (the interpreter or pytest missing, a runtime whose create() fails
 *      for another reason or whose start() fails, results that cannot be read, the lock not
 *      obtained, an integrator failure, `run` stopped by a signal) */
#ifndef ST_EXITSTATUS_H
#define ST_EXITSTATUS_H

#include "results.h"

enum {
    ST_EXIT_OK = 0,
    ST_EXIT_FAILED = 1,
    ST_EXIT_USAGE = 2,
    ST_EXIT_INFRA = 3
};

/* The stage a plugin status comes from. */
typedef enum st_exit_stage {
    ST_STAGE_CREATE, /* create(): ST_ERR_INVALID means its settings are wrong */
    ST_STAGE_START,  /* start() and everything after it: never a configuration error */
} st_exit_stage;

/* ST_OK -> 0; from create(), ST_ERR_INVALID -> 2; any other failure -> 3. */
int st_exit_for_status(st_exit_stage stage, int status);

/* The exit status of a finished run: aborted_status when it was stopped by a signal; else 3
 * when a batch hit an infrastructure error or an integrator failed; else 1 when a batch failed
 * (a batch cut short by the stop does not count) or, with fail_on_orphans, an orphan check
 * failed; else 0. */
int st_run_exit_status(const st_run *r, int fail_on_orphans, int aborted_status);

#endif
