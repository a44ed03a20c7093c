/* SPDX-License-Identifier: MIT */
/* runtime-podman: one container per batch through the Podman API service (libpod wait with a
 * 20 ms interval, the Docker-compatible API otherwise). The work is in plugins/common/engine_runtime.c. */
#include "config.h"

#include "engine_multi.h"

#include <selftest/plugin.h>

static const er_flavor podman_flavor = {
    .name = "podman",
    .host_env = "CONTAINER_HOST",
    .default_sock = "unix:///run/podman/podman.sock",
    .libpod = 1,
};

static int podman_create(const st_host *host, st_instance *self, const st_config_node *cfg,
                         void **ctx)
{
    return em_create(&podman_flavor, host, self, cfg, ctx);
}

static const st_runtime_ops podman_ops = {
    .struct_size = sizeof(st_runtime_ops),
    .life = {.create = podman_create, .stop = em_stop, .destroy = em_destroy},
    .probe = em_probe,
    .prepare = em_prepare,
    .execute = em_execute,
    .cancel = em_cancel,
    .cleanup_stale = em_cleanup_stale,
    .runtime_name = "podman",
    .environment_id = em_environment_id,
    .slots = em_slots,
};

static const st_plugin_descriptor podman_descriptor = {
    .abi_major = ST_ABI_MAJOR,
    .abi_minor = ST_ABI_MINOR,
    .struct_size = sizeof(st_plugin_descriptor),
    .kind = ST_KIND_RUNTIME,
    .name = "runtime-podman",
    .version = PACKAGE_VERSION,
    .description = "run each batch in a container through the Podman API service",
    .flags = ST_PLUGIN_THREAD_SAFE | ST_PLUGIN_MULTI_INSTANCE,
    .ops = &podman_ops,
    .license = "MIT",
    .author = "the selftest-core authors",
    .origin = "bundled with " PACKAGE_NAME,
};

ST_PLUGIN_DEFINE(podman_descriptor)
