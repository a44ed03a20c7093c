/* SPDX-License-Identifier: MIT */
/* The plugin loader (see loader.h). libltdl is used here and nowhere else. */
#include "config.h"

#include "loader.h"

#include "log.h"
#include "settings.h"

#include <assert.h>
#include <ltdl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct st_loader {
    st_strv dirs;
    char *path_text;
    st_instance **insts;
    size_t n;
};

int st_loader_new(const st_strv *added, const st_strv *system_dirs, st_loader **out)
{
    assert(out != NULL);
    st_loader *ld = calloc(1, sizeof(*ld));
    if (!ld)
        return ST_ERR_NOMEM;
    for (size_t i = 0; added && i < added->n; i++)
        st_strv_push(&ld->dirs, added->v[i]);
    if (system_dirs) {
        for (size_t i = 0; i < system_dirs->n; i++)
            st_strv_push(&ld->dirs, system_dirs->v[i]);
    } else {
        st_strv_push(&ld->dirs, ST_PLUGINDIR);
    }
    st_buf b = {0};
    for (size_t i = 0; i < ld->dirs.n; i++)
        st_buf_printf(&b, "%s%s", i ? ":" : "", ld->dirs.v[i]);
    ld->path_text = ld->dirs.n ? st_buf_steal(&b) : st_strdup("(no plugin directory)");
    st_buf_free(&b);
    int oom = ld->dirs.oom || !ld->path_text;
    if (oom || lt_dlinit() != 0) {
        st_error("cannot initialise the plugin loader: %s", lt_dlerror() ? lt_dlerror() : "out of memory");
        st_strv_free(&ld->dirs);
        free(ld->path_text);
        free(ld);
        return oom ? ST_ERR_NOMEM : ST_ERR_INTERNAL;
    }
    *out = ld;
    return ST_OK;
}

const char *st_loader_path(const st_loader *ld)
{
    return ld->path_text;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The first existing candidate: DIR/NAME.la, DIR/NAME.so, DIR/NAME/NAME.la (a build tree). */
static char *find_plugin(const st_loader *ld, const char *name)
{
    for (size_t i = 0; i < ld->dirs.n; i++) {
        const char *d = ld->dirs.v[i];
        char *candidates[] = {
            st_asprintf("%s/%s.la", d, name),
            st_asprintf("%s/%s.so", d, name),
            st_asprintf("%s/%s/%s.la", d, name, name),
        };
        char *found = NULL;
        for (size_t c = 0; c < sizeof(candidates) / sizeof(candidates[0]); c++) {
            if (!found && candidates[c] && file_exists(candidates[c]))
                found = candidates[c];
            else
                free(candidates[c]);
        }
        if (found)
            return found;
    }
    return NULL;
}

int st_loader_has(const st_loader *ld, const char *name)
{
    char *file = find_plugin(ld, name);
    free(file);
    return file != NULL;
}

/* Offset just past a member: the minimal struct_size that contains it. */
#define END_OF(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))

static const char *check_ops(st_plugin_kind kind, const void *ops)
{
    assert(ops != NULL); /* check_descriptor refused a NULL ops table first */
    const st_lifecycle_ops *life;
    size_t size = *(const size_t *)ops;
    switch (kind) {
    case ST_KIND_RUNTIME: {
        const st_runtime_ops *o = ops;
        if (size < END_OF(st_runtime_ops, cancel))
            return "runtime ops struct too small for execute and cancel";
        if (!o->execute || !o->cancel)
            return "runtime ops: execute and cancel are mandatory";
        life = &o->life;
        break;
    }
    case ST_KIND_DISCOVERY: {
        const st_discovery_ops *o = ops;
        if (size < END_OF(st_discovery_ops, discover) || !o->discover)
            return "discovery ops: discover is mandatory";
        life = &o->life;
        break;
    }
    case ST_KIND_INTEGRATOR: {
        const st_integrator_ops *o = ops;
        if (size < END_OF(st_integrator_ops, integrate) || !o->integrate)
            return "integrator ops: integrate is mandatory";
        life = &o->life;
        break;
    }
    case ST_KIND_EXPORTER: {
        const st_exporter_ops *o = ops;
        if (size < END_OF(st_exporter_ops, end_run) || !o->end_run)
            return "exporter ops: end_run is mandatory";
        life = &o->life;
        break;
    }
    default:
        return "unknown kind";
    }
    if (!life->create || !life->destroy)
        return "lifecycle ops: create and destroy are mandatory";
    return NULL;
}

/* All checks of architecture.md, before any plugin op is called. */
static int check_descriptor(const char *file, const char *name, st_plugin_kind kind,
                            const st_plugin_descriptor *d)
{
    if (!d) {
        st_error("%s: plugin '%s' declined to load into this core (ABI %u.%u)", file, name,
                 ST_ABI_MAJOR, ST_ABI_MINOR);
        return ST_ERR_INVALID;
    }
    if (d->abi_major != ST_ABI_MAJOR) {
        st_error("%s: plugin '%s' was built for plugin ABI %u.%u, but this core provides ABI %u.%u "
                 "(major versions must match; rebuild the plugin)",
                 file, name, d->abi_major, d->abi_minor, ST_ABI_MAJOR, ST_ABI_MINOR);
        return ST_ERR_INVALID;
    }
    if (d->abi_minor > ST_ABI_MINOR) {
        st_error("%s: plugin '%s' needs plugin ABI %u.%u, newer than this core's ABI %u.%u "
                 "(upgrade selftest-core)",
                 file, name, d->abi_major, d->abi_minor, ST_ABI_MAJOR, ST_ABI_MINOR);
        return ST_ERR_INVALID;
    }
    if (d->struct_size < END_OF(st_plugin_descriptor, ops)) {
        st_error("%s: plugin '%s' descriptor is %zu bytes, smaller than the %zu bytes of ABI %u.0",
                 file, name, d->struct_size, END_OF(st_plugin_descriptor, ops), ST_ABI_MAJOR);
        return ST_ERR_INVALID;
    }
    if (!d->name || strcmp(d->name, name) != 0) {
        st_error("%s: the file declares plugin name '%s', but the config asks for '%s'", file,
                 d->name ? d->name : "(null)", name);
        return ST_ERR_INVALID;
    }
    if (d->kind != kind) {
        st_error("%s: plugin '%s' is of kind '%s', but the config loads it as kind '%s'", file,
                 name, st_kind_name(d->kind), st_kind_name(kind));
        return ST_ERR_INVALID;
    }
    if (!d->ops) {
        st_error("%s: plugin '%s' has no ops table", file, name);
        return ST_ERR_INVALID;
    }
    const char *why = check_ops(kind, d->ops);
    if (why) {
        st_error("%s: plugin '%s' rejected: %s", file, name, why);
        return ST_ERR_INVALID;
    }
    return ST_OK;
}

int st_loader_load(st_loader *ld, const char *name, st_plugin_kind kind, const char *where,
                   st_instance **out)
{
    /* preconditions: programming errors of the caller, not input errors */
    assert(ld != NULL && name != NULL && where != NULL && out != NULL);
    char *file = find_plugin(ld, name);
    if (!file) {
        st_error("%s: unknown plugin '%s': no %s.la or %s.so in %s", where, name, name, name,
                 ld->path_text);
        return ST_ERR_INVALID;
    }
    lt_dladvise advise;
    lt_dladvise_init(&advise);
    lt_dladvise_local(&advise);
    lt_dlhandle h = lt_dlopenadvise(file, advise);
    lt_dladvise_destroy(&advise);
    if (!h) {
        const char *e = lt_dlerror();
        st_error("%s: cannot open plugin '%s': %s", file, name, e ? e : "unknown error");
        free(file);
        return ST_ERR_INVALID;
    }
    void *sym = lt_dlsym(h, ST_PLUGIN_ENTRY_SYMBOL);
    if (!sym) {
        st_error("%s: '%s' is not a selftest-core plugin: no symbol %s", file, name,
                 ST_PLUGIN_ENTRY_SYMBOL);
        lt_dlclose(h);
        free(file);
        return ST_ERR_INVALID;
    }
    st_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof(entry)); /* object pointer to function pointer, as dlsym(3) */
    const st_plugin_descriptor *d = entry(ST_ABI_MAJOR, ST_ABI_MINOR);
    int status = check_descriptor(file, name, kind, d);
    if (status != ST_OK) {
        lt_dlclose(h);
        free(file);
        return status;
    }
    st_instance **grown = realloc(ld->insts, (ld->n + 1) * sizeof(st_instance *));
    st_instance *inst = calloc(1, sizeof(*inst));
    if (!grown || !inst) {
        free(inst);
        if (grown)
            ld->insts = grown;
        st_error("%s: cannot load plugin '%s': out of memory", file, name);
        lt_dlclose(h);
        free(file);
        return ST_ERR_NOMEM;
    }
    ld->insts = grown;
    /* what every later op relies on: the descriptor passed all checks, life points into ops */
    assert(d->ops != NULL && d->kind == kind);
    inst->name = st_strdup(name);
    inst->file = file;
    inst->handle = h;
    inst->desc = d;
    inst->ops = d->ops;
    inst->life = (const st_lifecycle_ops *)((const char *)d->ops + offsetof(st_runtime_ops, life));
    pthread_mutex_init(&inst->serial, NULL);
    pthread_mutex_init(&inst->lists_lock, NULL);
    ld->insts[ld->n++] = inst;
    *out = inst;
    return ST_OK;
}

void st_loader_free(st_loader *ld)
{
    if (!ld)
        return;
    for (size_t i = ld->n; i-- > 0;)
        st_inst_stop(ld->insts[i]);
    for (size_t i = ld->n; i-- > 0;) {
        st_instance *inst = ld->insts[i];
        st_inst_destroy(inst);
        for (size_t k = 0; k < inst->n_lists; k++)
            st_strv_free(&inst->lists[k]);
        free(inst->lists);
        pthread_mutex_destroy(&inst->serial);
        pthread_mutex_destroy(&inst->lists_lock);
        lt_dlclose((lt_dlhandle)inst->handle);
        free(inst->name);
        free(inst->file);
        free(inst);
    }
    free(ld->insts);
    st_strv_free(&ld->dirs);
    free(ld->path_text);
    lt_dlexit();
    free(ld);
}
