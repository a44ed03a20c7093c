/* SPDX-License-Identifier: MIT */
/* Exit statuses (see exitstatus.h). */
#include "config.h"

#include "exitstatus.h"

int st_exit_for_status(st_exit_stage stage, int status)
{
    if (status == ST_OK)
        return ST_EXIT_OK;
    if (stage == ST_STAGE_CREATE && status == ST_ERR_INVALID)
        return ST_EXIT_USAGE;
    return ST_EXIT_INFRA;
}

int st_run_exit_status(const st_run *r, int fail_on_orphans, int aborted_status)
{
    if (r->aborted)
        return aborted_status;
    int infra = r->integration_failed, failed = 0;
    for (size_t i = 0; i < r->n_batches; i++) {
        const st_batch *b = &r->batches[i];
        infra |= b->infra_error;
        failed |= !b->ok && !b->aborted;
    }
    if (infra)
        return ST_EXIT_INFRA;
    if (failed || (fail_on_orphans && st_run_orphans_failed(r)))
        return ST_EXIT_FAILED;
    return ST_EXIT_OK;
}
