/* SPDX-License-Identifier: MIT */
/* The export stage: the exporter plugins' begin_run / end_run, and the failure report. */
#include "config.h"

#include "pipeline_stages.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void st_export_begin(st_plugin_set *ps, const st_run *run)
{
    st_run_info info = {sizeof(info), run->run_id, run->started_at, (unsigned)run->n_batches,
                        run->runtime_used};
    for (size_t i = 0; i < ps->n; i++) {
        st_instance *inst = ps->list[i];
        const st_exporter_ops *ops = inst->ops;
        if (!st_plugins_usable(inst, ST_KIND_EXPORTER) || !ops->begin_run)
            continue;
        st_inst_lock(inst);
        if (ops->begin_run(inst->ctx, &info) != ST_OK)
            st_warn("export stage: %s: begin_run failed; the run goes on", inst->name);
        st_inst_unlock(inst);
    }
}

void st_export_end(st_plugin_set *ps, const st_run *run, const char *results_json,
                       const st_counters *c)
{
    st_run_summary sum = {
        .struct_size = sizeof(sum),
        .run_id = run->run_id,
        .started_at = run->started_at,
        .finished_at = run->finished_at,
        .passed = st_counts_passed(&run->totals),
        .failed = st_counts_failed(&run->totals),
        .skipped = run->totals.n[ST_OUT_SKIPPED],
        .xfailed = run->totals.n[ST_OUT_XFAILED],
        .errors = run->totals.n[ST_OUT_ERROR],
        .coverage = run->coverage,
        .mean_batch_runtime_s = run->mean_batch_runtime_s,
        .total_runtime_s = run->total_runtime_s,
        .exit_status = run->exit_status,
        .success = run->exit_status == 0 && !run->aborted, /* an aborted cycle may exit 0 */
        .aborted = run->aborted,
        .runtime_name = run->runtime_used,
        .container_failures_total = c->container_failures,
        .container_timeouts_total = c->container_timeouts,
        .orphans_tested_total = c->orphans_tested,
        .orphans_reintroduced_total = c->orphans_reintroduced,
        .orphans_failed_total = c->orphans_failed,
        .orphans_redundant_total = c->orphans_redundant,
        .runs_total = c->runs,
        .results_json = results_json,
        .orphans_unmet_total = c->orphans_unmet,
        .flaky = run->totals.flaky,
        .flaky_total = c->flaky,
    };
    for (size_t i = 0; i < ps->n; i++) {
        st_instance *inst = ps->list[i];
        const st_exporter_ops *ops = inst->ops;
        if (!st_plugins_usable(inst, ST_KIND_EXPORTER))
            continue;
        st_inst_lock(inst);
        if (ops->end_run(inst->ctx, &sum) != ST_OK)
            st_warn("export stage: %s: end_run failed; the results are not affected", inst->name);
        st_inst_unlock(inst);
    }
}

void st_export_report(const st_settings *s, const st_run *run)
{
    char *text = st_run_to_json(run, 1);
    char stamp[32];
    st_utc_stamp(run->started_at, stamp, sizeof(stamp));
    char *file = st_asprintf("%s/report_%s.json", s->report_dir, stamp);
    int rc = text && file ? st_mkdir_p(s->report_dir, 0755) : -ENOMEM;
    if (rc == 0)
        rc = st_write_file_atomic(file, text, strlen(text), 0644);
    if (rc < 0)
        st_warn("cannot write the report %s: %s", file ? file : s->report_dir, strerror(-rc));
    else
        st_info("report written to %s", file);
    free(text);
    free(file);
}
