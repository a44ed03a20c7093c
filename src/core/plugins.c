/* SPDX-License-Identifier: MIT */
/* The plugin set of one configuration (see plugins.h). */
#include "config.h"

#include "plugins.h"

#include "json.h"
#include "log.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* settings.c accepted only the four kind names */
static st_plugin_kind kind_from_name(const char *kind)
{
    st_plugin_kind k = ST_KIND_EXPORTER;
    st_kind_from_name(kind, &k);
    return k;
}

static int set_add(st_plugin_set *ps, st_instance *inst)
{
    st_instance **grown = realloc(ps->list, (ps->n + 1) * sizeof(st_instance *));
    if (!grown) {
        st_error("cannot add plugin %s: out of memory", inst->file ? inst->file : "(unnamed)");
        return ST_ERR_NOMEM;
    }
    ps->list = grown;
    ps->list[ps->n++] = inst;
    return ST_OK;
}

static int load_runtime(st_settings *s, st_plugin_set *ps, const char *runtime, st_instance **out)
{
    char *name = st_asprintf("runtime-%s", runtime);
    char *where = st_asprintf("runtime \"%s\"%s%s", runtime, s->config_path ? " in " : "",
                              s->config_path ? s->config_path : "");
    int rc = name && where ? st_loader_load(ps->ld, name, ST_KIND_RUNTIME, where, out)
                           : ST_ERR_NOMEM;
    if (rc == ST_OK) {
        const char *group = strcmp(runtime, "host") == 0 ? "host" : "container";
        (*out)->config = s->cfg_loaded ? config_lookup(&s->cfg, group) : NULL;
        (*out)->project = &ps->project.info;
        (*out)->pctx = &ps->project;
    }
    free(name);
    free(where);
    return rc;
}

/* The orphan switches' old spellings (top-level settings, flags, variables) go into the
 * settings of a discovery-python of ABI 1.5 or later; an older one gets them in the discover
 * options (st_plugins_discover_options). */
static int route_discovery(st_settings *s, const st_instance *inst, config_setting_t **group,
                           size_t entry)
{
    if (inst->desc->abi_minor < 5)
        return 0;
    char name[64];
    snprintf(name, sizeof(name), "selftest_discovery_python_%zu", entry);
    if (st_settings_route_discovery(s, group, name) < 0) {
        st_error("cannot pass the orphan switches to discovery-python's settings: out of memory");
        return ST_ERR_NOMEM;
    }
    return ST_OK;
}

st_discover_options st_plugins_discover_options(const st_settings *s, const st_instance *inst,
                                                const char *const *paths)
{
    assert(s != NULL && inst != NULL && inst->desc != NULL);
    assert(inst->desc->kind == ST_KIND_DISCOVERY);
    st_discover_options o = {
        .struct_size = sizeof(o),
        .paths = paths,
        .want_modules = !s->disable_orphans,
    };
    if (inst->desc->abi_minor < 5) {
        /* built against ABI 1.4 or older: the switches travel in the options, as then */
        o.discover_orphans = s->discover_orphans && !s->disable_orphans;
        o.include_orphans = s->include_orphans && !s->disable_orphans;
        o.recursive_orphans = s->recursive_orphans;
        o.auto_include_isolated = s->auto_include_isolated && !s->disable_orphans;
        o.recursive_isolated = s->recursive_isolated;
        o.refresh_orphans = s->refresh_orphans;
        o.include_redundant = s->include_redundant;
        o.disable_orphans = s->disable_orphans;
    }
    return o;
}

int st_plugins_load(st_settings *s, st_plugin_set *ps, int runtime_only)
{
    st_project_ctx_init(&ps->project);
    ps->project.info = (st_project_info){
        .struct_size = sizeof(st_project_info),
        .root = s->project_root,
        .data_dir = s->data_dir,
        .report_dir = s->report_dir,
        .skip_dirs = st_strv_get(&s->skip_dirs),
        .python = s->python,
    };
    ps->project.source_roots = st_strv_get(&s->pythonpath_rel);
    int status = st_loader_new(&s->plugin_path,
                               s->plugin_system_path_set ? &s->plugin_system_path : NULL, &ps->ld);
    if (status == ST_OK)
        status = load_runtime(s, ps, s->runtime, &ps->runtime);
    if (status == ST_OK)
        status = set_add(ps, ps->runtime);
    if (status != ST_OK || runtime_only)
        return status;
    /* Without a `plugins` setting the bundled discovery and integrator work as the original
     * service did (orphan discovery and integration on by default); a packager may ship them
     * separately, so a missing one is only noted. An explicit `plugins = ();` loads none. */
    static const char *const defaults[][2] = {{"discovery", "discovery-python"},
                                              {"integrator", "integrator-modulemap"}};
    for (size_t i = 0; !s->plugins_configured && i < 2; i++) {
        st_instance *inst;
        if (!st_loader_has(ps->ld, defaults[i][1])) {
            st_info("default plugin %s is not installed (in %s); its stage is skipped",
                    defaults[i][1], st_loader_path(ps->ld));
            continue;
        }
        status = st_loader_load(ps->ld, defaults[i][1], kind_from_name(defaults[i][0]),
                                "default plugins", &inst);
        if (status == ST_OK)
            status = set_add(ps, inst);
        if (status != ST_OK)
            return status;
        inst->project = &ps->project.info;
        inst->pctx = &ps->project;
        if (strcmp(defaults[i][1], "discovery-python") == 0) {
            status = route_discovery(s, inst, &s->dp_default_settings, 0);
            if (status != ST_OK)
                return status;
            inst->config = s->dp_default_settings;
        }
    }
    for (size_t i = 0; i < s->n_plugins; i++) {
        st_plugin_conf *pc = &s->plugins[i];
        st_instance *inst;
        if (strcmp(pc->kind, "runtime") == 0) {
            st_error("%s: runtimes are chosen with the top-level setting runtime = \"...\"; "
                     "do not list them in plugins",
                     pc->where);
            return ST_ERR_INVALID;
        }
        status = st_loader_load(ps->ld, pc->name, kind_from_name(pc->kind), pc->where, &inst);
        if (status != ST_OK)
            return status;
        for (size_t k = 0; k < ps->n; k++) {
            if (ps->list[k]->desc == inst->desc &&
                !(inst->desc->flags & ST_PLUGIN_MULTI_INSTANCE)) {
                st_error("%s: plugin '%s' is listed twice but does not support several instances",
                         pc->where, pc->name);
                return ST_ERR_INVALID;
            }
        }
        if (strcmp(pc->name, "discovery-python") == 0) {
            status = route_discovery(s, inst, &pc->settings, i + 1);
            if (status != ST_OK)
                return status;
        }
        inst->config = pc->settings;
        inst->project = &ps->project.info;
        inst->pctx = &ps->project;
        status = set_add(ps, inst);
        if (status != ST_OK)
            return status;
    }
    return ST_OK;
}

int st_plugins_start(st_plugin_set *ps)
{
    /* Every plugin is created (its settings parsed) before any starts. Invalid settings in any
     * of them are a configuration error, as --check-config says: nothing starts, exit 2. */
    int invalid = 0;
    for (size_t i = 0; i < ps->n; i++) {
        int rc = st_inst_create(ps->list[i]);
        if (rc == ST_ERR_INVALID) {
            st_error("%s refused its settings (see above); nothing is run", ps->list[i]->name);
            invalid = 1;
        } else if (rc != ST_OK && ps->list[i] == ps->runtime) {
            return rc < 0 ? rc : ST_ERR_INTERNAL;
        }
    }
    if (invalid)
        return ST_ERR_INVALID;
    for (size_t i = 0; i < ps->n; i++) {
        st_instance *inst = ps->list[i];
        if (!inst->created)
            continue;
        int rc = st_inst_start(inst);
        if (rc != ST_OK) {
            if (inst == ps->runtime)
                return rc < 0 ? rc : ST_ERR_INTERNAL;
            st_warn("%s: left out of this run", inst->name);
        }
    }
    return ST_OK;
}

int st_plugins_switch_runtime(st_settings *s, st_plugin_set *ps, const char *runtime)
{
    st_instance *inst;
    if (load_runtime(s, ps, runtime, &inst) < 0)
        return ST_ERR_UNAVAILABLE;
    int rc = st_inst_create(inst);
    if (rc == ST_OK)
        rc = st_inst_start(inst);
    if (rc != ST_OK)
        return rc;
    ps->runtime = inst;
    return ST_OK;
}

int st_plugins_usable(const st_instance *inst, st_plugin_kind kind)
{
    return inst->desc->kind == kind && inst->started && !inst->failed;
}

void st_plugins_free(st_plugin_set *ps)
{
    st_loader_free(ps->ld);
    free(ps->list);
    if (ps->project.info.struct_size)
        st_project_ctx_destroy(&ps->project);
    memset(ps, 0, sizeof(*ps));
}

int st_plugins_list(st_settings *s, int json, int check)
{
    st_plugin_set ps = {0};
    int rc = st_plugins_load(s, &ps, 0);
    if (rc != ST_OK)
        goto out;
    rc = ST_ERR_INVALID; /* a plugin's create() refusing its settings */
    if (check) {
        /* --check-config: every plugin parses its settings (create), then is destroyed; nothing
         * is started, no socket or process is opened. */
        int bad = 0;
        for (size_t i = 0; i < ps.n; i++) {
            if (st_inst_create(ps.list[i]) != ST_OK)
                bad = 1;
            st_inst_destroy(ps.list[i]);
        }
        if (bad)
            goto out;
        if (!json) {
            printf("configuration OK: %s, %zu plugin%s\n",
                   s->config_path ? s->config_path : "(no file: defaults and environment)", ps.n,
                   ps.n == 1 ? "" : "s");
            rc = ST_OK;
            goto out;
        }
    }
    yajl_gen g = json ? st_jg_new(0) : NULL;
    if (g)
        yajl_gen_array_open(g);
    else
        printf("%-11s %-24s %-9s %-5s %s  %s\n", "KIND", "NAME", "VERSION", "ABI", "FILE",
               "LICENSE");
    for (size_t i = 0; i < ps.n; i++) {
        const st_instance *inst = ps.list[i];
        const st_plugin_descriptor *d = inst->desc;
        /* ABI 1.5 fields: absent from older descriptors */
        const char *license = ST_STRUCT_HAS(st_plugin_descriptor, d, license) ? d->license : NULL;
        const char *author = ST_STRUCT_HAS(st_plugin_descriptor, d, author) ? d->author : NULL;
        const char *origin = ST_STRUCT_HAS(st_plugin_descriptor, d, origin) ? d->origin : NULL;
        if (g) {
            yajl_gen_map_open(g);
            st_jg_kstr(g, "kind", st_kind_name(d->kind));
            st_jg_kstr(g, "name", d->name);
            st_jg_kstr(g, "version", d->version);
            st_jg_kint(g, "abi_major", d->abi_major);
            st_jg_kint(g, "abi_minor", d->abi_minor);
            st_jg_kstr(g, "file", inst->file);
            st_jg_kstr(g, "description", d->description);
            st_jg_kstr(g, "license", license);
            st_jg_kstr(g, "author", author);
            st_jg_kstr(g, "origin", origin);
            yajl_gen_map_close(g);
        } else {
            char abi[32];
            snprintf(abi, sizeof(abi), "%u.%u", d->abi_major, d->abi_minor);
            printf("%-11s %-24s %-9s %-5s %s  %s\n", st_kind_name(d->kind), d->name,
                   d->version ? d->version : "?", abi, inst->file, license ? license : "?");
        }
    }
    if (g) {
        yajl_gen_array_close(g);
        char *text = st_jg_finish(g, 1);
        if (text)
            fputs(text, stdout);
        free(text);
    }
    rc = ST_OK;
out:
    st_plugins_free(&ps);
    return rc;
}
