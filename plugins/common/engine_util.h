/* SPDX-License-Identifier: MIT */
/* engine_util: the helpers every runtime on a Docker-compatible Engine API shares
 * (engine_runtime.c for runtime-docker and runtime-podman, runtime-swarm): the connection and
 * its requests, the common settings, the owner labels and stale-object rule, JSON building and
 * reading, tar streams, the running-request list and the result helpers. */
#ifndef ST_ENGINE_UTIL_H
#define ST_ENGINE_UTIL_H

#include "engine_http.h"

#include <selftest/plugin.h>

#include <pthread.h>
#include <sys/types.h>
#include <time.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

/* The labels on everything a runtime creates: the owner (host, pid, the pid's start time), the
 * instance's run id, the deadline (UNIX seconds) and the batch id. */
#define ER_LABEL_MANAGED "menace_self_test"
#define ER_LABEL_HOST "selftest.owner.host"
#define ER_LABEL_PID "selftest.owner.pid"
#define ER_LABEL_START "selftest.owner.start"
#define ER_LABEL_RUN "selftest.run"
#define ER_LABEL_DEADLINE "selftest.deadline"
#define ER_LABEL_BATCH "selftest.batch"

/* ---- the connection ------------------------------------------------------------------------ */

typedef struct er_conn {
    const st_host *host;
    st_instance *self;
    eh_client client;
    char api_prefix[40];  /* "/v1.41" */
    double api_timeout_s; /* a request's timeout when the caller gives none */
} er_conn;

/* One API call; path is relative to the API prefix unless it starts with "!" (then verbatim).
 * timeout_s 0: api_timeout_s; max_body 0: the client's default. Logs the call at debug level.
 * Returns ST_OK when the engine answered (any status; resp filled, free it), else the transport
 * error with err filled. */
int er_api_call(er_conn *c, void **h, const char *method, const char *path, const char *json_body,
                double timeout_s, size_t max_body, eh_response *resp, char *err, size_t errlen);
/* GET /_ping within timeout_s: ST_OK when it answered 200, ST_ERR_UNAVAILABLE ("the engine
 * refused GET /_ping: ...") for another status, else the transport error. resp is filled (its
 * headers name the API version) whenever the engine answered: the caller frees it. */
int er_get_ping(er_conn *c, void **h, double timeout_s, eh_response *resp, char *err,
                size_t errlen);
/* GET path (an absolute URL path) as a stream of multiplexed log frames, each passed to
 * on_frame (engine_demux.h). A non-200 answer: ST_ERR_IO, err "what: engine message (HTTP n)". */
int er_stream_logs(er_conn *c, void **h, const char *path, double timeout_s,
                   void (*on_frame)(void *opaque, int stream, const char *data, size_t len),
                   void *opaque, const char *what, char *err, size_t errlen);
/* probe()'s answer to rc, the status of connecting to the engine: ST_OK, or ST_ERR_UNAVAILABLE
 * after logging "<err> (address from <source>)". */
int er_probe_result(const er_conn *c, int rc, const char *err, const char *source);
/* "what: engine message (HTTP n)" for a non-2xx answer. */
void er_http_error(const eh_response *resp, const char *what, char *err, size_t errlen);

/* ---- settings -------------------------------------------------------------------------------- */

/* Logs "<where>: key: why" at error level; returns -1. */
int er_cfg_bad(const er_conn *c, const st_config_node *cfg, const char *key, const char *why);
/* Reads the strings every runtime has, in this order: image, python, network, memory, user,
 * host, api_version (each left as it is when absent). Returns 0, or -1 (logged). */
int er_read_strings(const er_conn *c, const st_config_node *cfg, const char **image,
                    const char **python, const char **network, const char **memory,
                    const char **user, const char **host_url, const char **api_version);
/* Checks api_version, memory (into *memory_bytes), user (into user_buf: the value, or the
 * invoking "uid:gid" when NULL) and env_passthrough. Returns -1 (logged), else 1 when user_buf
 * differs from the invoking uid:gid, 0 when it is the same. */
int er_check_settings(const er_conn *c, const st_config_node *cfg, const char *api_version,
                      const char *memory, long long *memory_bytes, const char *user, char *user_buf,
                      size_t user_len, const char *const *passthrough);
/* Reads pids_limit, cpus, max_age (*max_age_set = 1 when given) and api_timeout (into
 * c->api_timeout_s). Returns 0, or -1 (logged). */
int er_read_limits(er_conn *c, const st_config_node *cfg, long long *pids_limit, double *cpus,
                   double *max_age_s, int *max_age_set);
/* The engine's address: override (from override_where, "hosts" when NULL) > the environment
 * variable env_name > cfg_url (the config's `host`) > default_url. source gets where it came
 * from, for messages. Returns 0, or -1 after logging "<source>: <why>". DOCKER_TLS_VERIFY
 * decides tcp:// with TLS. */
int er_read_address(const er_conn *c, const st_config_node *cfg, const char *env_name,
                    const char *cfg_url, const char *default_url, const char *override,
                    const char *override_where, char *source, size_t sourcelen, eh_address *addr);
/* 1 when s is not empty and holds only letters, digits and the characters of extra. */
int er_safe_token(const char *s, const char *extra);
/* 1 for an API version like "1.41" or "4.0.0" (digits, one or two dots). */
int er_valid_api_version(const char *v);

/* ---- JSON ------------------------------------------------------------------------------------ */

/* The string / integer at obj.k1.k2.k3 (k2, k3 NULL for a shorter path); NULL / -1 when absent
 * or of another type. */
const char *er_jstr(yajl_val obj, const char *k1, const char *k2, const char *k3);
int er_jint(yajl_val obj, const char *k1, const char *k2, const char *k3, long long *out);
/* The answer's body as JSON, or NULL (none, cut off, or not JSON). */
yajl_val er_parse_body(const eh_response *resp);
void er_gen_str(yajl_gen g, const char *s);
void er_gen_kv(yajl_gen g, const char *k, const char *v);
/* {"Type": "bind", "Source": path, "Target": path, "ReadOnly": read_only} */
void er_gen_mount(yajl_gen g, const char *path, int read_only);
/* The command array: python, then argv[1..]; for "-m pytest" "-p no:cacheprovider" follows, as
 * nothing may write into the project tree. */
void er_gen_command(yajl_gen g, const char *python, const char *const *argv);
/* The environment array's items: the host variables er_env_allowed passes (except those whose
 * "NAME=" is drop, NULL: none), then the request's (which win), then PYTHONDONTWRITEBYTECODE=1
 * unless one of them set it. The caller opens and closes the array. */
void er_gen_env_items(yajl_gen g, const st_exec_request *req, const char *const *passthrough,
                      const char *drop);
/* Frees g; returns its text (malloc'ed) or NULL. */
char *er_gen_finish(yajl_gen g);

/* ---- owner labels and stale objects ---------------------------------------------------------- */

typedef struct er_owner {
    char hostname[256];
    long pid;
    long long start_ticks; /* er_process_start(pid) */
    char run_id[17];       /* random, per instance */
} er_owner;

/* This process as the owner, with a new run id. */
void er_owner_init(er_owner *o);
/* The labels map (deadline, batch NULL: left out). */
void er_gen_owner_labels(yajl_gen g, const er_owner *o, const char *deadline, const char *batch);
/* Why an object with these labels (a JSON object, or NULL), created at created (UNIX seconds,
 * 0 unknown), may be removed by a cleanup that began at began: its owner process on this host
 * is gone, its deadline has passed, or it is older than max_age_s (> 0). NULL when it must
 * stay. */
const char *er_stale_reason(const er_owner *o, yajl_val labels, long long created, double max_age_s,
                            time_t began);

/* ---- tar streams ----------------------------------------------------------------------------- */

/* "tar -c -f - -C / --exclude=<skip dir>... --exclude=__pycache__" and paths added as "./abs"
 * (so no name can pass for an option). */
typedef struct er_tar_args {
    const char *argv[64];
    size_t n;
    char excl[24][300];
    char rel[3][4100];
    size_t nrel;
} er_tar_args;

/* skip_dirs from the project (NULL: none). */
void er_tar_args_init(er_tar_args *a, const st_project_info *pi);
/* Adds "." + abs_path (at most 3 paths). */
void er_tar_args_path(er_tar_args *a, const char *abs_path);
/* Spawns tar (argv, never a shell) with one end of a pipe as its stdin (to_child) or stdout;
 * *fd_out is the parent's end. Returns the pid or -1 (errno). */
pid_t er_spawn_tar(const char *const *argv, int to_child, int *fd_out);
/* Waits for tar: its exit status, 128 + signal, or -1. */
int er_tar_status(pid_t pid);
/* PUT /containers/{cid}/archive?path=/ with the tar stream on fd from tar process pid (both
 * consumed). err: the engine's refusal, or "tar of <root> failed (status n)". */
int er_put_archive(er_conn *c, void **h, const char *cid, int fd, pid_t pid, const char *root,
                   char *err, size_t errlen);

/* ---- requests in flight and results ---------------------------------------------------------- */

typedef struct er_running {
    const char *id;     /* the request id, borrowed for the execute call */
    char container[80]; /* the engine's container id once created (unused by runtime-swarm) */
    int cancelled;
    struct er_running *next;
} er_running;

/* Adds r to / removes it from *list, under lock. */
void er_running_add(pthread_mutex_t *lock, er_running **list, er_running *r);
void er_running_remove(pthread_mutex_t *lock, er_running **list, er_running *r);
/* r->cancelled, read under lock. */
int er_running_cancelled(pthread_mutex_t *lock, er_running *r);

/* Sets res->error from fmt, marks an infrastructure error and logs "label: error". Returns rc,
 * or ST_ERR_UNAVAILABLE when rc is ST_OK. */
int er_infra(const er_conn *c, const char *label, st_exec_result *res, int rc, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A line (fmt + "\n") on the sink's stderr stream. */
void er_sink_note(const st_exec_sink *sink, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* An exit code: > 128 (up to 128 + 64) is death by signal code - 128, else an exit status. */
void er_set_exit(st_exec_result *res, long long code);
/* Counts an object left behind in the result, when the core's result struct has the field. */
void er_note_cleanup_failure(st_exec_result *res);

#endif
