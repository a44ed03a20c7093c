/* SPDX-License-Identifier: MIT */
/* Progress and streaming while a cycle runs: the live progress line, a batch's JSON line, the
 * exporters' per-batch records and the log line of each finished batch or import check. */
#include "config.h"

#include "pipeline_stages.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>

void st_progress_clear(void *opaque)
{
    st_cycle *c = opaque;
    if (c->progress_shown) {
        fputs("\r\033[K", stdout);
        fflush(stdout);
        c->progress_shown = 0;
    }
}

/* live: what the running batches reported so far, test by test (NULL: nothing) */
static void progress_draw(st_cycle *c, const st_run *run, size_t running, const st_counts *live)
{
    if (!c->o->progress)
        return;
    st_counts shown = c->cumulative;
    if (live)
        st_counts_add(&shown, live);
    printf("\r\033[K[%zu/%zu batches, %zu running] %u passed, %u failed  %.1fs", c->done,
           c->units ? c->units : run->n_batches, running, st_counts_passed(&shown), st_counts_failed(&shown),
           st_monotonic() - c->t0);
    fflush(stdout);
    c->progress_shown = 1;
}

/* A failed import check's reason and missing package, from its test event. */
static void check_outcome(st_batch *b)
{
    if (b->ok || b->cached)
        return;
    for (size_t t = 0; t < b->n_tests; t++) {
        const st_test_result *tr = &b->tests[t];
        if (tr->reason && !b->reason)
            b->reason = st_strdup(tr->reason);
        if (tr->unmet && !b->unmet && !b->timed_out && !b->infra_error)
            b->unmet = st_strdup(tr->unmet);
    }
}

/* " (shard k/N)" for a shard, else "" */
static const char *shard_label(const st_batch *b)
{
    static __thread char buf[48];
    if (!b->shard_count)
        return "";
    snprintf(buf, sizeof(buf), " (shard %u/%u)", b->shard_index, b->shard_count);
    return buf;
}

/* The exporters' record of a finished batch or check. */
static void record(st_cycle *c, const st_batch *b)
{
    int check = b->kind == ST_EXEC_ORPHAN_CHECK;
    st_record rec = {
        .struct_size = sizeof(rec),
        .kind = check ? ST_RECORD_ORPHAN : ST_RECORD_BATCH,
        .path = b->path,
        .passed = st_counts_passed(&b->counts),
        .failed = st_counts_failed(&b->counts),
        .skipped = b->counts.n[ST_OUT_SKIPPED],
        .xfailed = b->counts.n[ST_OUT_XFAILED],
        .errors = b->counts.n[ST_OUT_ERROR],
        .coverage = b->coverage,
        .runtime_s = b->runtime_s,
        .ok = b->ok,
        .reason = b->reason,
    };
    for (size_t i = 0; i < c->ps->n; i++) {
        st_instance *inst = c->ps->list[i];
        const st_exporter_ops *ops = inst->ops;
        if (!st_plugins_usable(inst, ST_KIND_EXPORTER) || !ops->record)
            continue;
        st_inst_lock(inst);
        ops->record(inst->ctx, &rec);
        st_inst_unlock(inst);
    }
}

void st_progress_rolled_up(st_cycle *c, st_run *run, st_batch *b)
{
    record(c, b);
    st_info("%s: %s (%zu shards: %u passed, %u failed, %.2fs)", b->path,
            b->ok ? "ok" : b->aborted ? "aborted" : "FAILED", b->n_shards,
            st_counts_passed(&b->counts), st_counts_failed(&b->counts), b->runtime_s);
    (void)run;
}

void st_progress_batch_done(void *opaque, st_run *run, st_batch *b)
{
    st_cycle *c = opaque;
    int check = b->kind == ST_EXEC_ORPHAN_CHECK;
    if (check)
        check_outcome(b);
    c->done++;
    if (!check)
        st_counts_add(&c->cumulative, &b->counts);
    if (c->o->json) {
        char *line = st_batch_line_json(b, &c->cumulative);
        if (line) {
            fputs(line, stdout);
            fflush(stdout);
        }
        free(line);
    }
    if (!b->shard_count) /* a shard's path is recorded once, rolled up */
        record(c, b);
    if (check)
        st_info("%s: import check %s%s%s%s", b->path,
                b->ok        ? "passed"
                : b->aborted ? "aborted"
                : b->unmet   ? "unmet dependency"
                             : "FAILED",
                b->cached ? " (cached)" : "", b->reason ? ": " : "", b->reason ? b->reason : "");
    else
        st_info("%s%s: %s (%u passed, %u failed, %.2fs)", b->path, shard_label(b),
                b->ok ? "ok" : b->aborted ? "aborted" : "FAILED",
                st_counts_passed(&b->counts), st_counts_failed(&b->counts), b->runtime_s);
    progress_draw(c, run, 0, NULL);
}

void st_progress_tick(void *opaque, st_run *run, size_t done, size_t running,
                    const st_counts *live)
{
    st_cycle *c = opaque;
    (void)done;
    progress_draw(c, run, running, live);
}

int st_progress_should_stop(void *opaque)
{
    st_cycle *c = opaque;
    return c->o->should_stop && c->o->should_stop();
}
