/* SPDX-License-Identifier: MIT */
/* The integrate stage (docs/spec.md §8.2): the passing modules handed to the integrators. */
#include "config.h"

#include "pipeline_stages.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

typedef struct integrate_ctx {
    const st_settings *s;
    st_run *run;
    const char *plugin;
    const st_strv *offered;
    unsigned refused;
} integrate_ctx;

static int integrate_answer(integrate_ctx *ic, const char *path, st_strv *into)
{
    if (!path || !st_path_is_safe_relative(ic->s->project_root, path)) {
        st_error("integrate stage: %s answered '%s', which is not inside the project root; "
                 "refused",
                 ic->plugin, path ? path : "(null)");
        ic->refused++;
        return ST_ERR_INVALID;
    }
    if (!st_strv_contains(into, path))
        st_strv_push(into, path);
    return into->oom ? ST_ERR_NOMEM : ST_OK;
}

static int sink_integrated(void *opaque, const char *path)
{
    integrate_ctx *ic = opaque;
    return integrate_answer(ic, path, &ic->run->integrated);
}

static int sink_redundant(void *opaque, const char *path)
{
    integrate_ctx *ic = opaque;
    return integrate_answer(ic, path, &ic->run->integration_redundant);
}

/* Hands the passing, non-redundant modules to every integrator (docs/spec.md §8.2). */
void st_integrate_stage(st_pipeline *p, st_run *run)
{
    st_settings *s = p->s;
    if (s->disable_integration || s->disable_orphans)
        return;
    st_integrate_module *mods = calloc(run->n_checks + 1, sizeof(*mods));
    st_strv offered = {0};
    size_t n = 0;
    if (!mods)
        return;
    for (size_t i = 0; i < run->n_checks; i++) {
        const st_batch *c = &run->checks[i];
        if (!c->ok || c->classification == ST_CLASS_REDUNDANT)
            continue;
        mods[n++] = (st_integrate_module){
            .struct_size = sizeof(st_integrate_module),
            .path = c->path,
            .parents = st_strv_get((st_strv *)&c->parents),
            .classification = c->classification,
            .coverage = -1,
            .runtime_s = c->runtime_s,
        };
        st_strv_push(&offered, c->path);
    }
    for (size_t i = 0; n && i < p->ps.n; i++) {
        st_instance *inst = p->ps.list[i];
        if (!st_plugins_usable(inst, ST_KIND_INTEGRATOR))
            continue;
        const st_integrator_ops *ops = inst->ops;
        integrate_ctx ic = {s, run, inst->name, &offered, 0};
        st_integrate_request req = {sizeof(req), mods, n};
        st_integrate_sink sink = {sizeof(sink), &ic, sink_integrated, sink_redundant};
        st_inst_lock(inst);
        int rc = ops->integrate(inst->ctx, &req, &sink);
        st_inst_unlock(inst);
        if (rc != ST_OK) {
            st_error("integrate stage: %s failed (%s, status %d); its modules are not "
                     "integrated", inst->name, st_status_str(rc), rc);
            run->integration_failed = 1;
        }
    }
    st_strv_free(&offered);
    free(mods);
}
