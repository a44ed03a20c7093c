/* SPDX-License-Identifier: MIT */
/* integrator-example: a third-party integrator for selftest-core, built out of tree against the
 * installed <selftest/plugin.h> (see Makefile and docs/plugin-guide.md). It integrates nothing
 * for real: its settings say which offered modules it answers as integrated and which as
 * redundant, which makes it the smallest complete integrator and a handy test double.
 *
 * Settings (all optional, lists of strings):
 *   integrate        = ["*_util.py"];  fnmatch(3) globs: offered modules answered "integrated"
 *   redundant        = ["old_*.py"];   globs: offered modules answered "redundant" (wins)
 *   force_integrated = ["x.py"];       paths answered "integrated" whether offered or not, to
 *                                      try the core's checks on answers
 * Unknown settings and empty patterns are refused in create(), as every plugin should. */
#define _POSIX_C_SOURCE 200809L

#include <selftest/plugin.h>

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

/* Everything a plugin keeps lives in its context: no globals, so two instances can coexist. */
typedef struct example {
    const st_host *host;
    st_instance *self;
    const char *const *integrate; /* NULL-terminated, owned by the core until destroy() */
    const char *const *redundant;
    const char *const *force_integrated;
} example;

static const char *const known_settings[] = {"integrate", "redundant", "force_integrated", NULL};
static const char *const no_patterns[] = {NULL};

static int check_patterns(example *ex, const st_config_node *cfg, const char *name,
                          const char *const **out)
{
    *out = no_patterns;
    int rc = ex->host->cfg_string_list(ex->self, cfg, name, out);
    if (rc < 0) /* present with the wrong type: the core already logged file:line */
        return ST_ERR_INVALID;
    for (size_t i = 0; (*out)[i]; i++)
        if (!(*out)[i][0]) {
            ex->host->log(ex->self, ST_LOG_ERROR, "%s: empty pattern in '%s'",
                          ex->host->cfg_where(ex->self, cfg, name), name);
            return ST_ERR_INVALID;
        }
    return ST_OK;
}

static int example_create(const st_host *host, st_instance *self, const st_config_node *cfg,
                          void **ctx)
{
    example *ex = calloc(1, sizeof(*ex));
    if (!ex)
        return ST_ERR_NOMEM;
    ex->host = host;
    ex->self = self;
    const char *const *names = host->cfg_names(self, cfg);
    for (size_t i = 0; names && names[i]; i++) {
        int known = 0;
        for (size_t k = 0; known_settings[k]; k++)
            known |= strcmp(names[i], known_settings[k]) == 0;
        if (!known) {
            host->log(self, ST_LOG_ERROR, "%s: unknown setting '%s' (known: integrate, redundant, "
                      "force_integrated)", host->cfg_where(self, cfg, names[i]), names[i]);
            free(ex);
            return ST_ERR_INVALID;
        }
    }
    if (check_patterns(ex, cfg, "integrate", &ex->integrate) != ST_OK ||
        check_patterns(ex, cfg, "redundant", &ex->redundant) != ST_OK ||
        check_patterns(ex, cfg, "force_integrated", &ex->force_integrated) != ST_OK) {
        free(ex);
        return ST_ERR_INVALID;
    }
    *ctx = ex;
    return ST_OK;
}

static void example_destroy(void *ctx)
{
    free(ctx);
}

static int matches(const char *const *globs, const char *path)
{
    for (size_t i = 0; globs[i]; i++)
        if (fnmatch(globs[i], path, 0) == 0)
            return 1;
    return 0;
}

/* The core may be newer than this plugin and pass larger structs: step through the array by the
 * size the core declares, and read only fields this plugin knows. */
static const st_integrate_module *module_at(const st_integrate_request *req, size_t i)
{
    return (const st_integrate_module *)((const char *)req->modules +
                                         i * req->modules[0].struct_size);
}

static int example_integrate(void *ctx, const st_integrate_request *req,
                             const st_integrate_sink *sink)
{
    example *ex = ctx;
    unsigned n_integrated = 0, n_redundant = 0;
    ex->host->log(ex->self, ST_LOG_INFO, "offered %zu modules", req->n_modules);
    for (size_t i = 0; i < req->n_modules; i++) {
        const st_integrate_module *mod = module_at(req, i);
        /* The path is borrowed: the sink copies it before it returns. */
        if (matches(ex->redundant, mod->path)) {
            if (sink->redundant(sink->opaque, mod->path) == ST_OK)
                n_redundant++;
        } else if (matches(ex->integrate, mod->path)) {
            if (sink->integrated(sink->opaque, mod->path) == ST_OK)
                n_integrated++;
        }
    }
    for (size_t i = 0; ex->force_integrated[i]; i++) {
        /* The core refuses paths outside the project root; a refusal is not our failure. */
        if (sink->integrated(sink->opaque, ex->force_integrated[i]) == ST_OK)
            n_integrated++;
        else
            ex->host->log(ex->self, ST_LOG_WARNING, "the core refused '%s'",
                          ex->force_integrated[i]);
    }
    ex->host->log(ex->self, ST_LOG_INFO, "answered %u integrated, %u redundant", n_integrated,
                  n_redundant);
    return ST_OK;
}

static const st_integrator_ops example_ops = {
    .struct_size = sizeof(st_integrator_ops),
    .life = {.create = example_create, .destroy = example_destroy},
    .integrate = example_integrate,
};

static const st_plugin_descriptor example_descriptor = {
    .abi_major = ST_ABI_MAJOR,
    .abi_minor = ST_ABI_MINOR,
    .struct_size = sizeof(st_plugin_descriptor),
    .kind = ST_KIND_INTEGRATOR,
    .name = "integrator-example", /* must equal the file name: integrator-example.so */
    .version = "1.0.0",
    .description = "example third-party integrator: answers what its settings say",
    .flags = ST_PLUGIN_MULTI_INSTANCE,
    .ops = &example_ops,
    /* ABI 1.5: shown by `selftest-core plugins`; say where users find the source and whom to
     * ask */
    .license = "MIT",
    .author = "Example Author <author@example.org>",
    .origin = "https://example.org/integrator-example",
};

/* The one exported symbol. Everything else is hidden (-fvisibility=hidden in the Makefile). */
ST_PLUGIN_DEFINE(example_descriptor)
