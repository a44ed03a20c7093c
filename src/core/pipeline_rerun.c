/* SPDX-License-Identifier: MIT */
/* Flaky tests: after the test batches, each failed test is run again by node id, alone (its own
 * pytest process, one worker, on the same runtime), up to rerun_failures times; a test that
 * then passes is flaky. A test that failed (not flaky) in each of the last ST_RERUN_SKIP_AFTER
 * cycles is still failing and not run again. The reruns of a cycle together get at most one
 * batch timeout, and their wall time is part of the cycle's. The quarantine file is applied here too: a failure of a
 * listed test is reported but excused. */
#include "config.h"

#include "pipeline_stages.h"

#include "log.h"
#include "metricsdb.h"
#include "quarantine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A batch whose only failures are its failing tests (pytest exited 1 after a whole session):
 * not a timeout, a crash, a resource limit or a test that ended the process. */
/* cycles a test must have failed in, in a row, for its failure not to be rerun */
#define ST_RERUN_SKIP_AFTER 2

static int tests_speak(const st_batch *b)
{
    return b->kind == ST_EXEC_TESTS && b->done && !b->aborted && !b->infra_error &&
           !b->timed_out && !b->term_signal && !b->ended_early && !b->limit && !b->reason &&
           b->exit_status == 1 && b->saw_end;
}

static int is_failure(const st_test_result *tr)
{
    return tr->outcome == ST_OUT_FAILED || tr->outcome == ST_OUT_ERROR;
}

/* A report that names a test node pytest can run alone (not a collection error of a file). */
static int rerunnable(const st_test_result *tr)
{
    return is_failure(tr) && tr->nodeid && strstr(tr->nodeid, "::") &&
           (!tr->phase || strcmp(tr->phase, "collect") != 0);
}

/* Did the rerun b of nodeid pass: a finished session, no failure, the node passed? */
static int rerun_passed(const st_batch *b, const char *nodeid)
{
    if (!b->done || b->aborted || !b->ok)
        return 0;
    int passed = 0;
    for (size_t t = 0; t < b->n_tests; t++) {
        const st_test_result *tr = &b->tests[t];
        if (strcmp(tr->nodeid, nodeid) != 0)
            continue;
        if (is_failure(tr))
            return 0;
        passed |= tr->outcome == ST_OUT_PASSED || tr->outcome == ST_OUT_XPASSED;
    }
    return passed;
}

/* One round: runs every node of pending alone; the ones that passed move to flaky. Returns
 * ST_OK or a negative st_status. */
static int rerun_round(st_pipeline *p, st_cycle *c, st_run *run, const char *work,
                       const st_preflight *pf, unsigned round, double timeout_s,
                       st_strv *pending, st_strv *flaky)
{
    size_t n = pending->n;
    st_batch *items = calloc(n + 1, sizeof(*items));
    if (!items)
        return ST_ERR_NOMEM;
    int rc = ST_OK;
    for (size_t i = 0; i < n; i++) {
        st_batch *b = &items[i];
        b->id = st_asprintf("%.8s-rerun-%u-%zu", run->run_id, round, i);
        b->kind = ST_EXEC_TESTS;
        b->path = st_strdup(pending->v[i]);
        b->output_dir = st_asprintf("%s/rerun-%u-%zu", work, round, i);
        b->coverage = -1;
        b->exit_status = -1;
        b->workers_rule = "rerun";
        b->workers_max = 1; /* alone: one process, no xdist */
        b->history_s = -1;
        if (!b->id || !b->path || !b->output_dir || st_mkdir_p(b->output_dir, 0755) < 0)
            rc = ST_ERR_IO;
    }
    if (rc == ST_OK) {
        /* the same settings, but the round's time left as the timeout, and no infrastructure
         * retries: a rerun is itself a second chance */
        st_settings rs = *p->s;
        rs.timeout_s = timeout_s;
        rs.retries = 0;
        rs.coverage = 0; /* the reruns' lines are not the suite's coverage */
        st_runner_hooks hooks = {c, NULL, NULL, st_progress_should_stop, 0};
        rc = st_runner_run(&rs, p->ps.runtime, pf, run, items, n, &hooks);
    }
    st_strv still = {0};
    for (size_t i = 0; rc == ST_OK && i < n; i++) {
        run->reruns += items[i].done && !items[i].aborted;
        int passed = rerun_passed(&items[i], pending->v[i]);
        st_debug("rerun %u of %s: %s", round, pending->v[i],
                 passed ? "passed" : items[i].reason ? items[i].reason : "failed");
        st_strv_push(passed ? flaky : &still, pending->v[i]);
        /* a cancelled rerun has no verdict either way: the test stays failed */
    }
    for (size_t i = 0; i < n; i++)
        st_batch_free(&items[i]);
    free(items);
    if (rc == ST_OK && (still.oom || flaky->oom))
        rc = ST_ERR_NOMEM;
    st_strv_free(pending);
    *pending = still;
    return rc;
}

int st_rerun_stage(st_pipeline *p, st_cycle *c, st_run *run, const char *work,
                   const st_preflight *pf)
{
    const st_settings *s = p->s;
    st_quarantine q = {0};
    if (st_quarantine_load(s->quarantine_file, &q) < 0)
        st_warn("the quarantine file is not applied this cycle (see above)");
    for (size_t i = 0; i < q.n; i++)
        st_strv_push(&run->quarantine_listed, q.v[i].nodeid);
    st_strv failed = {0}, pending = {0}, flaky = {0}, known = {0}, skipped = {0};
    unsigned *attempts = NULL;
    for (size_t i = 0; s->rerun_failures && i < run->n_batches; i++) {
        const st_batch *b = &run->batches[i];
        if (!tests_speak(b))
            continue;
        for (size_t t = 0; t < b->n_tests; t++)
            if (rerunnable(&b->tests[t]) && !st_strv_contains(&failed, b->tests[t].nodeid))
                st_strv_push(&failed, b->tests[t].nodeid);
    }
    /* a test that failed every attempt in each of the last cycles too is still failing: a
     * rerun would only repeat its failure (and cost a pytest start each cycle); metrics.db is
     * asked only when something failed */
    if (failed.n && st_pipeline_open_db(p) == ST_OK && p->db &&
        st_metricsdb_still_failing(p->db, ST_RERUN_SKIP_AFTER, &known) < 0)
        st_strv_free(&known); /* logged; every failed test is rerun */
    for (size_t i = 0; i < failed.n; i++)
        st_strv_push(st_strv_contains(&known, failed.v[i]) ? &skipped : &pending, failed.v[i]);
    int failed_oom = failed.oom;
    st_strv_free(&failed);
    if (skipped.n) {
        st_info("reruns: %zu failed test%s not run again: failed in each of the last %u cycles "
                "too (still failing): %s%s", skipped.n, skipped.n == 1 ? "" : "s",
                ST_RERUN_SKIP_AFTER, skipped.v[0], skipped.n > 1 ? ", ..." : "");
        for (size_t i = 1; i < skipped.n; i++)
            st_debug("reruns: not run again (still failing): %s", skipped.v[i]);
    }
    st_strv_free(&known);
    st_strv_free(&skipped);
    int rc = pending.oom || failed_oom ? ST_ERR_NOMEM : ST_OK;
    st_strv all = {0}; /* every node that was rerun, for the attempt counts */
    for (size_t i = 0; i < pending.n; i++)
        st_strv_push(&all, pending.v[i]);
    attempts = calloc(all.n + 1, sizeof(*attempts));
    if (!attempts || all.oom)
        rc = ST_ERR_NOMEM;
    double t0 = st_monotonic();
    for (unsigned round = 1; rc == ST_OK && round <= s->rerun_failures && pending.n &&
                             !run->aborted;
         round++) {
        double left = s->timeout_s - (st_monotonic() - t0);
        if (left < 0.5) {
            st_warn("reruns: the batch timeout (%gs) is used up; %zu failed test%s not run "
                    "again", s->timeout_s, pending.n, pending.n == 1 ? "" : "s");
            break;
        }
        for (size_t i = 0; i < pending.n; i++)
            for (size_t k = 0; k < all.n; k++)
                if (strcmp(all.v[k], pending.v[i]) == 0)
                    attempts[k]++;
        st_info("reruns: round %u of %u, %zu failed test%s run again alone", round,
                s->rerun_failures, pending.n, pending.n == 1 ? "" : "s");
        rc = rerun_round(p, c, run, work, pf, round, left, &pending, &flaky);
    }
    run->rerun_runtime_s = all.n ? st_monotonic() - t0 : 0;
    /* the verdicts: flaky reports no longer count as failed; quarantined ones are excused */
    for (size_t i = 0; rc == ST_OK && i < run->n_batches; i++) {
        st_batch *b = &run->batches[i];
        st_strv counted = {0};
        int excused = 1, any = 0;
        for (size_t t = 0; t < b->n_tests; t++) {
            st_test_result *tr = &b->tests[t];
            if (!is_failure(tr))
                continue;
            any = 1;
            tr->attempts = 1;
            for (size_t k = 0; k < all.n; k++)
                if (strcmp(all.v[k], tr->nodeid) == 0)
                    tr->attempts += attempts[k];
            if (st_strv_contains(&flaky, tr->nodeid)) {
                tr->flaky = 1;
                b->counts.n[tr->outcome]--;
                if (!st_strv_contains(&counted, tr->nodeid)) {
                    st_strv_push(&counted, tr->nodeid);
                    b->counts.flaky++;
                    st_strv_push(&run->flaky, tr->nodeid);
                }
            }
            if (st_quarantine_find(&q, tr->nodeid)) {
                tr->quarantined = 1;
                if (!tr->flaky && !st_strv_contains(&run->quarantined, tr->nodeid))
                    st_strv_push(&run->quarantined, tr->nodeid);
            }
            excused &= tr->quarantined || (tr->flaky && !s->fail_on_flaky);
        }
        st_strv_free(&counted);
        /* a batch that failed only through excused tests: its verdict is ok */
        if (any && excused && !b->ok && tests_speak(b))
            b->ok = 1;
    }
    if (run->flaky.oom || run->quarantined.oom)
        rc = ST_ERR_NOMEM;
    free(attempts);
    st_strv_free(&all);
    st_strv_free(&pending);
    st_strv_free(&flaky);
    st_quarantine_free(&q);
    return rc;
}

void st_quarantine_ready_stage(st_pipeline *p, st_run *run)
{
    const st_settings *s = p->s;
    if (!p->db || !run->quarantine_listed.n)
        return;
    size_t n = 0;
    st_node_verdict *now = st_run_node_verdicts(run, &n);
    for (size_t i = 0; now && i < run->quarantine_listed.n; i++) {
        const char *nodeid = run->quarantine_listed.v[i];
        int passed = 0;
        for (size_t k = 0; k < n && !passed; k++)
            passed = strcmp(now[k].nodeid, nodeid) == 0 && strcmp(now[k].verdict, "passed") == 0;
        if (!passed)
            continue;
        /* this cycle and the flaky_window - 1 before it */
        unsigned streak = 0, need = s->flaky_window - 1;
        if (need && st_metricsdb_passing_streak(p->db, nodeid, need, &streak) < 0)
            break;
        if (streak >= need)
            st_strv_push(&run->quarantine_ready, nodeid);
    }
    free(now);
}
