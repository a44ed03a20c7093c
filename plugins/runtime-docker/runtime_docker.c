/* SPDX-License-Identifier: MIT */
/* runtime-docker: one container per batch through the Docker Engine API (unix socket or tcp,
 * ssh:// through a forwarded socket). The work is in plugins/common/engine_runtime.c. */
#include "config.h"

#include "engine_multi.h"

#include <selftest/plugin.h>

static const er_flavor docker_flavor = {
    .name = "docker",
    .host_env = "DOCKER_HOST",
    .default_sock = "unix:///var/run/docker.sock",
    .libpod = 0,
};

static int docker_create(const st_host *host, st_instance *self, const st_config_node *cfg,
                         void **ctx)
{
    return em_create(&docker_flavor, host, self, cfg, ctx);
}

static const st_runtime_ops docker_ops = {
    .struct_size = sizeof(st_runtime_ops),
    .life = {.create = docker_create, .stop = em_stop, .destroy = em_destroy},
    .probe = em_probe,
    .prepare = em_prepare,
    .execute = em_execute,
    .cancel = em_cancel,
    .cleanup_stale = em_cleanup_stale,
    .runtime_name = "docker",
    .environment_id = em_environment_id,
    .slots = em_slots,
};

static const st_plugin_descriptor docker_descriptor = {
    .abi_major = ST_ABI_MAJOR,
    .abi_minor = ST_ABI_MINOR,
    .struct_size = sizeof(st_plugin_descriptor),
    .kind = ST_KIND_RUNTIME,
    .name = "runtime-docker",
    .version = PACKAGE_VERSION,
    .description = "run each batch in a container through the Docker Engine API",
    .flags = ST_PLUGIN_THREAD_SAFE | ST_PLUGIN_MULTI_INSTANCE,
    .ops = &docker_ops,
    .license = "MIT",
    .author = "the selftest-core authors",
    .origin = "bundled with " PACKAGE_NAME,
};

ST_PLUGIN_DEFINE(docker_descriptor)
