/* SPDX-License-Identifier: MIT */
/* Exit statuses (see exitstatus.h). */
#include "config.h"

#include "exitstatus.h"

int st_exit_status(int status, st_verdict verdict)
{
    if (status == ST_ERR_INVALID)
        return ST_EXIT_USAGE;
    if (status != ST_OK)
        return ST_EXIT_INFRA;
    switch (verdict) {
    case ST_VERDICT_PASSED:
        return ST_EXIT_OK;
    case ST_VERDICT_FAILED:
        return ST_EXIT_FAILED;
    case ST_VERDICT_BROKEN:
        break;
    }
    return ST_EXIT_INFRA;
}

st_verdict st_run_verdict(const st_run *r, int fail_on_orphans, st_verdict stopped)
{
    if (r->aborted)
        return stopped;
    int infra = r->integration_failed, failed = 0;
    for (size_t i = 0; i < r->n_batches; i++) {
        const st_batch *b = &r->batches[i];
        infra |= b->infra_error;
        failed |= !b->ok && !b->aborted;
    }
    if (infra)
        return ST_VERDICT_BROKEN;
    if (failed || (fail_on_orphans && st_run_orphans_failed(r)))
        return ST_VERDICT_FAILED;
    return ST_VERDICT_PASSED;
}
