/* SPDX-License-Identifier: MIT */
/* Exit statuses: the one place where a status and a run's outcome become the process's exit
 * status (docs/spec.md §1.1). Below cli.c every function reports failure as a negative
 * st_status (plugin.h: ST_ERR_INVALID a bad option, setting, variable or path; anything else
 * what the infrastructure could not do); only cli.c turns it into an exit status, here.
 *
 *   0  every test passed
 *   1  a test failed, or a batch failed (timeout, crash, signal, no tests collected, a test that
 *      ended the pytest process), or (with fail_on_orphans) an orphan check failed; also `report`
 *      when there is no report to print
 *   2  usage or configuration error (ST_ERR_INVALID: a bad option, setting, variable or test
 *      path; a plugin that cannot be loaded; a plugin's create() refusing its settings)
 *   3  infrastructure error (any other status: the interpreter or pytest missing, a runtime
 *      whose create() fails for another reason or whose start() fails, results that cannot be
 *      read, the lock not obtained; or the verdict "broken": a batch's infrastructure error, an
 *      integrator failure, `run` stopped by a signal) */
#ifndef ST_EXITSTATUS_H
#define ST_EXITSTATUS_H

#include "results.h"

enum {
    ST_EXIT_OK = 0,
    ST_EXIT_FAILED = 1,
    ST_EXIT_USAGE = 2,
    ST_EXIT_INFRA = 3
};

/* What a command's work came to when it ended with ST_OK. */
typedef enum st_verdict {
    ST_VERDICT_PASSED = 0, /* every test passed, or there was nothing to judge */
    ST_VERDICT_FAILED,     /* a test or a batch failed; `report`: no report */
    ST_VERDICT_BROKEN,     /* a batch hit an infrastructure error, an integrator failed, or
                              `run` was stopped by a signal */
} st_verdict;

/* The exit status of a command that ended with status (ST_OK or a negative st_status) and, when
 * status is ST_OK, verdict: ST_OK -> 0, 1 or 3 by the verdict; ST_ERR_INVALID -> 2; any other
 * status -> 3. */
int st_exit_status(int status, st_verdict verdict);

/* The verdict of a finished run: stopped when it was stopped by a signal; else broken when a
 * batch hit an infrastructure error or an integrator failed; else failed when a batch failed
 * (a batch cut short by the stop does not count) or, with fail_on_orphans, an orphan check
 * failed; else passed. */
st_verdict st_run_verdict(const st_run *r, int fail_on_orphans, st_verdict stopped);

#endif
