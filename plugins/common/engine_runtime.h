/* SPDX-License-Identifier: MIT */
/* engine_runtime: the runtime plugin ops both container engines share (create, probe, prepare,
 * execute, cancel, cleanup_stale over the engine's REST API). runtime-docker and runtime-podman
 * are thin: each passes its flavor (name, address variable, default socket, whether to use the
 * libpod API where it is better). */
#ifndef ST_ENGINE_RUNTIME_H
#define ST_ENGINE_RUNTIME_H

#include <selftest/plugin.h>

typedef struct er_flavor {
    const char *name;         /* "docker" / "podman": messages and runtime_used */
    const char *host_env;     /* "DOCKER_HOST" / "CONTAINER_HOST" */
    const char *default_sock; /* used when neither the environment nor the config names one */
    int libpod;               /* 1: libpod wait (interval=20ms) and libpod version header */
} er_flavor;

/* The lifecycle and runtime ops; ctx is the er_runtime the create op allocates. Thread-safe:
 * execute may run concurrently, cancel from any thread. */
int er_create(const er_flavor *fl, const st_host *host, st_instance *self,
              const st_config_node *cfg, void **ctx);
void er_destroy(void *ctx);
int er_stop(void *ctx);
int er_probe(void *ctx);
int er_prepare(void *ctx);
int er_execute(void *ctx, const st_exec_request *req, const st_exec_sink *sink,
               st_exec_result *res);
int er_cancel(void *ctx, const char *id);
int er_cleanup_stale(void *ctx, double max_age_s, st_cleanup_report *report);
/* "image=<id> ...": the image id prepare() saw, the interpreter and user; ST_ERR_UNAVAILABLE
 * before a successful prepare(). */
int er_environment_id(void *ctx, char *buf, size_t len);

/* The same for the engine at address (where: where it came from, for messages) instead of
 * the one the environment and `host` name; the rest of cfg as for er_create. (engine_multi.c
 * makes one per entry of `hosts`.) */
int er_create_at(const er_flavor *fl, const st_host *host, st_instance *self,
                 const st_config_node *cfg, const char *address, const char *where, void **ctx);
/* GET /_ping within timeout_s (0: api_timeout): ST_OK, or a negative status with err. */
int er_ping(void *ctx, double timeout_s, char *err, size_t errlen);
/* The engine's CPU count (GET /info NCPU), or -1. */
long er_engine_cpus(void *ctx);
/* The engine's address as given, for messages and results. */
const char *er_address(void *ctx);
/* Removes every container this instance created (its run label) that is still on the engine:
 * after the engine was lost and came back. ST_OK or a negative status; report counts. */
int er_remove_run(void *ctx, st_cleanup_report *report);

/* Helpers exposed for the unit tests. */
/* Parses a memory size: "512m", "2g", "1048576", "64k", "1.5g". Returns bytes or -1. */
long long er_parse_memory(const char *s);
/* Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or -1. */
long long er_process_start(long pid);
/* 1 when name=value should pass from the host environment into the container. */
int er_env_allowed(const char *entry, const char *const *passthrough);

#endif
