/* SPDX-License-Identifier: MIT */
/* runtime-swarm: each batch is a Docker Swarm "replicated-job" service created on a swarm
 * manager's Engine API. The results come back without a shared filesystem: the bundled pytest
 * plugin frames its JSON result lines on the task's standard output (SELF_TEST_RESULTS_FRAME),
 * and this plugin cuts them out of the service's logs into the batch's results.jsonl. The project
 * reaches the nodes by bind mounts (transfer = "bind": the same path on every node) or inside an
 * image built on the test image for the cycle (transfer = "image"). See docs/scale-out.md. */
#include "config.h"

#include "engine_demux.h"
#include "engine_http.h"
#include "engine_runtime.h"
#include "engine_util.h"
#include "st_json.h"
#include "st_settings.h"
#include "st_time.h"

#include <selftest/plugin.h>

#include <curl/curl.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LABEL_SWARM_SERVICE "com.docker.swarm.service.id"

#define FRAME_MAX ((size_t)16 << 20) /* a longer frame is dropped (the plugin's are < 200 KiB) */

typedef struct sw_runtime {
    er_conn conn; /* host, instance, client, API prefix and api_timeout */
    char host_source[300];
    pthread_mutex_t lock;
    er_running *list;
    int negotiated;
    char node_id[80]; /* the manager's node id: task containers there can be removed directly */
    /* settings */
    const char *image, *python, *network, *api_version, *image_repository;
    char user[64];
    long long memory_bytes, pids_limit;
    double cpus, max_age_s;
    int max_age_set, init, transfer_image;
    int mode_setting; /* service_mode: 0 "auto", 1 "replicated-job", 2 "replicated" */
    int replicated;   /* the mode in use: one replica, restart none (see the docs) */
    const char *const *passthrough;
    const char *const *constraints;
    /* prepare */
    char image_id[160];        /* the test image's id on the manager, "" when unknown */
    char project_image[400];   /* transfer = "image": repository:tag of this cycle's image */
    char project_image_id[160];
    pthread_mutex_t build_lock;
    int build_needed;          /* prepare() ran: the first execute of the cycle builds it */
    er_owner owner;            /* owner identity, for the labels and cleanup */
} sw_runtime;

static const char *const known_keys[] = {
    "image", "python", "memory", "pids_limit", "cpus", "user", "network", "env_passthrough",
    "max_age", "host", "api_version", "api_timeout", "init", "transfer", "constraints",
    "image_repository", "service_mode", NULL};

/* ---- small helpers -------------------------------------------------------------------------- */

/* Length and elements of a JSON array (0 / NULL for anything else). */
static size_t arr_len(yajl_val v)
{
    return v && YAJL_IS_ARRAY(v) ? v->u.array.len : 0;
}

static yajl_val arr_at(yajl_val v, size_t i)
{
    return i < arr_len(v) ? v->u.array.values[i] : NULL;
}

/* ---- settings ------------------------------------------------------------------------------- */

static int read_settings(sw_runtime *rt, const st_config_node *cfg)
{
    const st_host *H = rt->conn.host;
    st_instance *S = rt->conn.self;
    const char *mem = NULL, *user = NULL, *host_url = NULL, *transfer = NULL, *mode = NULL;
    rt->image = "python:3.11-slim";
    rt->python = "python3";
    rt->image_repository = "selftest-project";
    rt->conn.api_timeout_s = 30;
    rt->init = 1;
    if (st_check_settings(H, S, cfg, known_keys, "container") != ST_OK)
        return -1;
    if (er_read_strings(&rt->conn, cfg, &rt->image, &rt->python, &rt->network, &mem, &user,
                        &host_url, &rt->api_version) < 0 ||
        H->cfg_string(S, cfg, "transfer", &transfer) < 0 ||
        H->cfg_string(S, cfg, "service_mode", &mode) < 0 ||
        H->cfg_string(S, cfg, "image_repository", &rt->image_repository) < 0 ||
        H->cfg_string_list(S, cfg, "env_passthrough", &rt->passthrough) < 0 ||
        H->cfg_string_list(S, cfg, "constraints", &rt->constraints) < 0 ||
        H->cfg_bool(S, cfg, "init", &rt->init) < 0)
        return -1;
    if (!er_safe_token(rt->image, "._-/:@"))
        return er_cfg_bad(&rt->conn, cfg, "image",
                          "must be an image reference like python:3.11-slim");
    if (!er_safe_token(rt->image_repository, "._-/:") ||
        strchr(strrchr(rt->image_repository, '/') ? strrchr(rt->image_repository, '/')
                                                  : rt->image_repository,
               ':'))
        return er_cfg_bad(
            &rt->conn, cfg, "image_repository",
            "must be a repository without a tag, like registry.example:5000/selftest");
    if (!rt->python[0])
        return er_cfg_bad(&rt->conn, cfg, "python", "must not be empty");
    if (rt->network && strcmp(rt->network, "none") != 0 && !er_safe_token(rt->network, "._-"))
        return er_cfg_bad(&rt->conn, cfg, "network",
                          "must name a swarm network (or \"none\": no network)");
    if (rt->network && strcmp(rt->network, "none") == 0)
        rt->network = NULL;
    if (er_check_settings(&rt->conn, cfg, rt->api_version, mem, &rt->memory_bytes, user, rt->user,
                          sizeof(rt->user), rt->passthrough) < 0)
        return -1;
    for (size_t i = 0; rt->constraints && rt->constraints[i]; i++) {
        const char *c = rt->constraints[i];
        if (!*c || strchr(c, '\n') || (!strstr(c, "==") && !strstr(c, "!=")))
            return er_cfg_bad(
                &rt->conn, cfg, "constraints",
                "each must be a placement constraint such as \"node.role==worker\" or "
                "\"node.labels.selftest==yes\"");
    }
    if (transfer && strcmp(transfer, "bind") != 0 && strcmp(transfer, "image") != 0)
        return er_cfg_bad(&rt->conn, cfg, "transfer",
                          "must be \"bind\" or \"image\" for runtime swarm");
    rt->transfer_image = transfer && strcmp(transfer, "image") == 0;
    if (mode && strcmp(mode, "auto") != 0 && strcmp(mode, "replicated-job") != 0 &&
        strcmp(mode, "replicated") != 0)
        return er_cfg_bad(&rt->conn, cfg, "service_mode",
                          "must be \"auto\", \"replicated-job\" or \"replicated\"");
    rt->mode_setting = !mode || strcmp(mode, "auto") == 0 ? 0
                       : strcmp(mode, "replicated-job") == 0 ? 1 : 2;
    rt->replicated = rt->mode_setting == 2;
    if (er_read_limits(&rt->conn, cfg, &rt->pids_limit, &rt->cpus, &rt->max_age_s,
                       &rt->max_age_set) < 0)
        return -1;
    /* the manager's address: DOCKER_HOST > the config file > the default socket */
    eh_address addr;
    if (er_read_address(&rt->conn, cfg, "DOCKER_HOST", host_url, "unix:///var/run/docker.sock",
                        NULL, NULL, rt->host_source, sizeof(rt->host_source), &addr) < 0)
        return -1;
    if (addr.scheme == EH_SSH) {
        H->log(S, ST_LOG_ERROR, "%s: runtime swarm talks to a manager over unix:// or tcp:// "
               "(forward the manager's socket for ssh)", rt->host_source);
        return -1;
    }
    eh_client_init(&rt->conn.client, &addr, getenv("DOCKER_CERT_PATH"));
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static void sw_destroy(void *ctx)
{
    sw_runtime *rt = ctx;
    if (!rt)
        return;
    pthread_mutex_destroy(&rt->lock);
    pthread_mutex_destroy(&rt->build_lock);
    curl_global_cleanup();
    free(rt);
}

static int sw_create(const st_host *host, st_instance *self, const st_config_node *cfg,
                     void **ctx)
{
    sw_runtime *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return ST_ERR_NOMEM;
    rt->conn.host = host;
    rt->conn.self = self;
    pthread_mutex_init(&rt->lock, NULL);
    pthread_mutex_init(&rt->build_lock, NULL);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        host->log(self, ST_LOG_ERROR, "cannot initialise libcurl");
        pthread_mutex_destroy(&rt->lock);
        pthread_mutex_destroy(&rt->build_lock);
        free(rt);
        return ST_ERR_INTERNAL;
    }
    if (read_settings(rt, cfg) < 0) {
        sw_destroy(rt);
        return ST_ERR_INVALID;
    }
    snprintf(rt->conn.api_prefix, sizeof(rt->conn.api_prefix), "/v%s",
             rt->api_version ? rt->api_version : "1.41");
    er_owner_init(&rt->owner);
    *ctx = rt;
    return ST_OK;
}

/* GET /_ping (API version), then GET /info: the engine must be an active swarm manager. */
static int ensure_engine(sw_runtime *rt, char *err, size_t errlen)
{
    pthread_mutex_lock(&rt->lock);
    int done = rt->negotiated;
    pthread_mutex_unlock(&rt->lock);
    if (done)
        return ST_OK;
    void *h = NULL;
    eh_response resp = {0};
    yajl_val v = NULL;
    char api[40] = "";
    int rc = er_get_ping(&rt->conn, &h, 10, &resp, err, errlen);
    if (rc != ST_OK)
        goto out;
    snprintf(api, sizeof(api), "%s",
             rt->api_version                          ? rt->api_version
             : er_valid_api_version(resp.api_version) ? resp.api_version
                                                      : "1.41");
    eh_response_free(&resp);
    char path[64];
    snprintf(path, sizeof(path), "!/v%s/info", api);
    rc = er_api_call(&rt->conn, &h, "GET", path, NULL, 0, (size_t)8 << 20, &resp, err, errlen);
    if (rc != ST_OK)
        goto out;
    v = resp.status == 200 ? er_parse_body(&resp) : NULL;
    if (!v) {
        if (resp.status != 200)
            er_http_error(&resp, "GET /info failed", err, errlen);
        else
            snprintf(err, errlen, "the engine's answer to GET /info is not JSON");
        rc = ST_ERR_UNAVAILABLE;
        goto out;
    }
    const char *state = er_jstr(v, "Swarm", "LocalNodeState", NULL);
    const char *node = er_jstr(v, "Swarm", "NodeID", NULL);
    const char *ca_path[] = {"Swarm", "ControlAvailable", NULL};
    yajl_val ca = yajl_tree_get(v, ca_path, yajl_t_any);
    if (!state || strcmp(state, "active") != 0) {
        snprintf(err, errlen,
                 "the engine at %s is not in a swarm (swarm state \"%s\"): run "
                 "`docker swarm init` there, or point host / DOCKER_HOST at a manager",
                 rt->conn.client.display, state ? state : "unknown");
        rc = ST_ERR_UNAVAILABLE;
        goto out;
    }
    if (!ca || !YAJL_IS_TRUE(ca)) {
        snprintf(err, errlen,
                 "the engine at %s is a swarm worker, not a manager: services can "
                 "only be created on a manager",
                 rt->conn.client.display);
        rc = ST_ERR_UNAVAILABLE;
        goto out;
    }
    /* service_mode "auto": a replicated job where Docker removes a removed job's tasks and
     * containers (23.0 and later), else one replica never restarted (the same run) */
    const char *version = er_jstr(v, "ServerVersion", NULL, NULL);
    long major = version && isdigit((unsigned char)version[0]) ? strtol(version, NULL, 10) : 0;
    pthread_mutex_lock(&rt->lock);
    snprintf(rt->conn.api_prefix, sizeof(rt->conn.api_prefix), "/v%s", api);
    snprintf(rt->node_id, sizeof(rt->node_id), "%s", node && er_safe_token(node, "") ? node : "");
    if (rt->mode_setting == 0)
        rt->replicated = major < 23;
    rt->negotiated = 1;
    pthread_mutex_unlock(&rt->lock);
    rt->conn.host->log(
        rt->conn.self, rt->mode_setting == 0 && rt->replicated ? ST_LOG_INFO : ST_LOG_DEBUG,
        "swarm manager %s runs Docker %s: batches run as %s services%s", rt->conn.client.display,
        version ? version : "(version unknown)", rt->replicated ? "replicated" : "replicated-job",
        rt->mode_setting == 0 && rt->replicated
            ? " with one replica, never restarted (before 23.0 Docker keeps the tasks "
              "and containers of a removed job)"
            : "");
    rt->conn.host->log(rt->conn.self, ST_LOG_DEBUG, "swarm manager %s: API %s, node %s",
                       rt->conn.client.display, api, rt->node_id);
out:
    if (v)
        yajl_tree_free(v);
    eh_response_free(&resp);
    eh_handle_free(&h);
    return rc;
}

static int sw_probe(void *ctx)
{
    sw_runtime *rt = ctx;
    char err[600];
    int rc = ensure_engine(rt, err, sizeof(err));
    return er_probe_result(&rt->conn, rc, err, rt->host_source);
}

/* ---- prepare: the test image, and the project image of transfer = "image" ------------------ */

/* The image's id on the manager into id (""), 1 present, 0 missing, < 0 error. */
static int image_inspect(sw_runtime *rt, void **h, const char *ref, char *id, size_t idlen,
                         char *err, size_t errlen)
{
    char enc[1300], path[1400];
    id[0] = '\0';
    if (eh_urlencode(ref, enc, sizeof(enc)) < 0) {
        snprintf(err, errlen, "image name too long");
        return ST_ERR_INVALID;
    }
    snprintf(path, sizeof(path), "/images/%s/json", enc);
    eh_response resp;
    int rc = er_api_call(&rt->conn, h, "GET", path, NULL, 0, 0, &resp, err, errlen);
    if (rc != ST_OK)
        return rc;
    if (resp.status == 200) {
        yajl_val v = er_parse_body(&resp);
        const char *s = v ? er_jstr(v, "Id", NULL, NULL) : NULL;
        if (s && er_safe_token(s, ":") && strlen(s) < idlen)
            snprintf(id, idlen, "%s", s);
        if (v)
            yajl_tree_free(v);
        rc = 1;
    } else if (resp.status == 404) {
        rc = 0;
    } else {
        er_http_error(&resp, "cannot inspect the image", err, errlen);
        rc = ST_ERR_UNAVAILABLE;
    }
    eh_response_free(&resp);
    return rc;
}

static void remove_image(sw_runtime *rt, void **h, const char *ref)
{
    char enc[1300], path[1400], err[300];
    if (!ref[0] || eh_urlencode(ref, enc, sizeof(enc)) < 0)
        return;
    snprintf(path, sizeof(path), "/images/%s?force=1", enc);
    eh_response resp;
    if (er_api_call(&rt->conn, h, "DELETE", path, NULL, 0, 0, &resp, err, sizeof(err)) == ST_OK &&
        resp.status / 100 != 2 && resp.status != 404) {
        er_http_error(&resp, "remove failed", err, sizeof(err));
        rt->conn.host->log(rt->conn.self, ST_LOG_WARNING, "cannot remove image %s: %s", ref, err);
    }
    eh_response_free(&resp);
}

/* transfer = "image": a container of the test image (never started) gets the project root and
 * the support dir at their host paths (PUT /containers/{id}/archive), and is committed as
 * image_repository:<run id>; the container goes, the previous cycle's image too. */
static int build_project_image(sw_runtime *rt, void **h, const char *root, const char *support,
                               char *err, size_t errlen)
{
    const st_project_info *pi =
        rt->conn.host->project ? rt->conn.host->project(rt->conn.self) : NULL;
    if (!root || root[0] != '/') {
        snprintf(err, errlen, "transfer = \"image\": the project root is unknown");
        return ST_ERR_INVALID;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        return ST_ERR_NOMEM;
    yajl_gen_map_open(g);
    er_gen_kv(g, "Image", rt->image);
    er_gen_str(g, "Cmd");
    yajl_gen_array_open(g);
    er_gen_str(g, rt->python);
    yajl_gen_array_close(g);
    er_gen_str(g, "Labels");
    er_gen_owner_labels(g, &rt->owner, NULL, "project-image");
    er_gen_str(g, "HostConfig");
    yajl_gen_map_open(g);
    er_gen_kv(g, "NetworkMode", "none");
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    char *body = er_gen_finish(g);
    if (!body)
        return ST_ERR_NOMEM;
    eh_response resp = {0};
    char cid[80] = "", path[1600];
    int rc =
        er_api_call(&rt->conn, h, "POST", "/containers/create", body, 0, 0, &resp, err, errlen);
    free(body);
    if (rc == ST_OK && resp.status / 100 != 2) {
        er_http_error(&resp, "cannot create a container to build the project image", err, errlen);
        rc = ST_ERR_UNAVAILABLE;
    }
    if (rc == ST_OK) {
        yajl_val v = er_parse_body(&resp);
        const char *id = v ? er_jstr(v, "Id", NULL, NULL) : NULL;
        if (id && er_safe_token(id, "") && strlen(id) < sizeof(cid))
            snprintf(cid, sizeof(cid), "%s", id);
        if (v)
            yajl_tree_free(v);
        if (!cid[0]) {
            snprintf(err, errlen, "the answer to container create has no valid Id");
            rc = ST_ERR_IO;
        }
    }
    eh_response_free(&resp);
    if (rc != ST_OK)
        return rc;
    /* the tree: "./abs/path" names, so no name can pass for an option */
    er_tar_args a;
    er_tar_args_init(&a, pi);
    er_tar_args_path(&a, root);
    if (support && support[0] == '/' && strcmp(support, root) != 0)
        er_tar_args_path(&a, support);
    int fd = -1;
    pid_t pid = er_spawn_tar(a.argv, 0, &fd);
    if (pid < 0) {
        snprintf(err, errlen, "cannot run tar: %s", strerror(errno));
        rc = ST_ERR_IO;
        goto remove;
    }
    rc = er_put_archive(&rt->conn, h, cid, fd, pid, root, err, errlen);
    if (rc != ST_OK)
        goto remove;
    char repo_enc[900], tag[40];
    snprintf(tag, sizeof(tag), "%s", rt->owner.run_id);
    eh_urlencode(rt->image_repository, repo_enc, sizeof(repo_enc));
    snprintf(path, sizeof(path), "/commit?container=%s&repo=%s&tag=%s&pause=0", cid, repo_enc,
             tag);
    /* a JSON body (the container config to change: none); Docker wants the content type */
    rc = er_api_call(&rt->conn, h, "POST", path, "{}", 600, 0, &resp, err, errlen);
    if (rc == ST_OK && resp.status / 100 != 2) {
        er_http_error(&resp, "cannot commit the project image", err, errlen);
        rc = ST_ERR_UNAVAILABLE;
    }
    if (rc == ST_OK) {
        char old_id[160];
        snprintf(old_id, sizeof(old_id), "%s", rt->project_image_id);
        yajl_val v = er_parse_body(&resp);
        const char *id = v ? er_jstr(v, "Id", NULL, NULL) : NULL;
        snprintf(rt->project_image_id, sizeof(rt->project_image_id), "%s",
                 id && er_safe_token(id, ":") ? id : "");
        if (v)
            yajl_tree_free(v);
        snprintf(rt->project_image, sizeof(rt->project_image), "%s:%s", rt->image_repository,
                 tag);
        if (old_id[0] && strcmp(old_id, rt->project_image_id) != 0)
            remove_image(rt, h, old_id); /* the previous cycle's, untagged by this commit */
        rt->conn.host->log(rt->conn.self, ST_LOG_INFO, "project image %s (%.19s) built on %s",
                           rt->project_image, rt->project_image_id, rt->image);
    }
    eh_response_free(&resp);
remove:
    snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", cid);
    {
        char e2[300];
        eh_response r2;
        er_api_call(&rt->conn, h, "DELETE", path, NULL, 0, 0, &r2, e2, sizeof(e2));
        eh_response_free(&r2);
    }
    return rc;
}

static int sw_prepare(void *ctx)
{
    sw_runtime *rt = ctx;
    char err[800] = "";
    void *h = NULL;
    int rc = ensure_engine(rt, err, sizeof(err));
    if (rc == ST_OK) {
        rc = image_inspect(rt, &h, rt->image, rt->image_id, sizeof(rt->image_id), err,
                           sizeof(err));
        if (rc == 0 && rt->transfer_image) {
            snprintf(err, sizeof(err),
                     "transfer = \"image\": image %s is not on the manager %s "
                     "(pull or load it there first)",
                     rt->image, rt->conn.client.display);
            rc = ST_ERR_UNAVAILABLE;
        } else if (rc >= 0) {
            rc = ST_OK; /* transfer = "bind": every node pulls it itself when missing */
        }
    }
    if (rc == ST_OK && rt->transfer_image) {
        pthread_mutex_lock(&rt->build_lock);
        rt->build_needed = 1; /* the tree as it is now: built by the cycle's first execute */
        pthread_mutex_unlock(&rt->build_lock);
    }
    if (rc != ST_OK)
        rt->conn.host->log(rt->conn.self, ST_LOG_ERROR, "%s", err);
    eh_handle_free(&h);
    return rc == ST_OK ? ST_OK : (rc == ST_ERR_INVALID ? ST_ERR_INVALID : ST_ERR_UNAVAILABLE);
}

static int sw_stop(void *ctx)
{
    sw_runtime *rt = ctx;
    if (rt->project_image_id[0]) {
        void *h = NULL;
        remove_image(rt, &h, rt->project_image_id);
        eh_handle_free(&h);
        rt->project_image_id[0] = rt->project_image[0] = '\0';
    }
    return ST_OK;
}

static int sw_environment_id(void *ctx, char *buf, size_t len)
{
    sw_runtime *rt = ctx;
    if (!rt->image_id[0])
        return ST_ERR_UNAVAILABLE;
    int n = snprintf(buf, len, "image=%s image_name=%s container_python=%s user=%s swarm=1",
                     rt->image_id, rt->image, rt->python, rt->user);
    return n > 0 && (size_t)n < len ? ST_OK : ST_ERR_INVALID;
}

/* ---- execute -------------------------------------------------------------------------------- */

/* The task's environment (er_gen_env_items), then the result frame's marker: the host's
 * SELF_TEST_RESULTS_FRAME never passes. */
static void gen_env(sw_runtime *rt, yajl_gen g, const st_exec_request *req, const char *frame)
{
    yajl_gen_array_open(g);
    er_gen_env_items(g, req, rt->passthrough, "SELF_TEST_RESULTS_FRAME=");
    char fr[64];
    snprintf(fr, sizeof(fr), "SELF_TEST_RESULTS_FRAME=%s", frame);
    er_gen_str(g, fr);
    yajl_gen_array_close(g);
}

static char *service_body(sw_runtime *rt, const st_exec_request *req, const char *name,
                          const char *frame, const char *deadline, const char *sandbox)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        return NULL;
    yajl_gen_map_open(g);
    er_gen_kv(g, "Name", name);
    er_gen_str(g, "Labels");
    er_gen_owner_labels(g, &rt->owner, deadline, req->id ? req->id : "");
    er_gen_str(g, "TaskTemplate");
    yajl_gen_map_open(g);
    er_gen_str(g, "ContainerSpec");
    yajl_gen_map_open(g);
    er_gen_kv(g, "Image", rt->transfer_image ? rt->project_image : rt->image);
    er_gen_str(g, "Command");
    er_gen_command(g, rt->python, req->argv); /* nothing may write into the tree */
    er_gen_str(g, "Args");
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);
    /* an import check runs in an empty directory of its own, as on the host (pytest collects
     * "." there); the engine creates it */
    er_gen_kv(g, "Dir", req->sandboxed ? sandbox : req->workdir ? req->workdir : req->project_root);
    er_gen_kv(g, "User", rt->user);
    er_gen_str(g, "TTY");
    yajl_gen_bool(g, 0);
    er_gen_str(g, "Init");
    yajl_gen_bool(g, rt->init);
    if (req->kill_grace_s > 0) { /* SIGTERM -> SIGKILL when the service is removed */
        er_gen_str(g, "StopGracePeriod");
        yajl_gen_integer(g, (long long)(req->kill_grace_s * 1e9));
    }
    er_gen_str(g, "Env");
    gen_env(rt, g, req, frame);
    er_gen_str(g, "Labels");
    er_gen_owner_labels(g, &rt->owner, deadline, req->id ? req->id : "");
    er_gen_str(g, "Mounts");
    yajl_gen_array_open(g);
    if (!rt->transfer_image) {
        er_gen_mount(g, req->project_root, 1);
        if (req->support_dir && *req->support_dir &&
            strcmp(req->support_dir, req->project_root) != 0)
            er_gen_mount(g, req->support_dir, 1);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g); /* ContainerSpec */
    er_gen_str(g, "Resources");
    yajl_gen_map_open(g);
    er_gen_str(g, "Limits");
    yajl_gen_map_open(g);
    if (rt->cpus > 0) {
        er_gen_str(g, "NanoCPUs");
        yajl_gen_integer(g, (long long)(rt->cpus * 1e9));
    }
    if (rt->memory_bytes > 0) {
        er_gen_str(g, "MemoryBytes");
        yajl_gen_integer(g, rt->memory_bytes);
    }
    if (rt->pids_limit > 0) {
        er_gen_str(g, "Pids");
        yajl_gen_integer(g, rt->pids_limit);
    }
    yajl_gen_map_close(g);
    yajl_gen_map_close(g); /* Resources */
    er_gen_str(g, "RestartPolicy");
    yajl_gen_map_open(g);
    er_gen_kv(g, "Condition", "none");
    er_gen_str(g, "MaxAttempts");
    yajl_gen_integer(g, 0);
    yajl_gen_map_close(g);
    er_gen_str(g, "Placement");
    yajl_gen_map_open(g);
    er_gen_str(g, "Constraints");
    yajl_gen_array_open(g);
    for (size_t i = 0; rt->constraints && rt->constraints[i]; i++)
        er_gen_str(g, rt->constraints[i]);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    if (rt->network) {
        er_gen_str(g, "Networks");
        yajl_gen_array_open(g);
        yajl_gen_map_open(g);
        er_gen_kv(g, "Target", rt->network);
        yajl_gen_map_close(g);
        yajl_gen_array_close(g);
    }
    yajl_gen_map_close(g); /* TaskTemplate */
    er_gen_str(g, "Mode");
    yajl_gen_map_open(g);
    if (rt->replicated) {
        /* one replica that is never restarted: the same run, and Docker removes its task and
         * container with the service on every node (it keeps a removed job's) */
        er_gen_str(g, "Replicated");
        yajl_gen_map_open(g);
        er_gen_str(g, "Replicas");
        yajl_gen_integer(g, 1);
        yajl_gen_map_close(g);
    } else {
        er_gen_str(g, "ReplicatedJob");
        yajl_gen_map_open(g);
        er_gen_str(g, "MaxConcurrent");
        yajl_gen_integer(g, 1);
        er_gen_str(g, "TotalCompletions");
        yajl_gen_integer(g, 1);
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    return er_gen_finish(g);
}

typedef struct exec_state {
    sw_runtime *rt;
    const st_exec_request *req;
    const st_exec_sink *sink;
    st_exec_result *res;
    void *h;
    er_running reg;
    char service[80]; /* id once created */
    char task_container[80];
    char task_node[80];
    double t0;
} exec_state;

/* The batch's infrastructure error (er_infra), logged with its label. */
#define infra(x, rc, ...) er_infra(&(x)->rt->conn, (x)->req->label, (x)->res, rc, __VA_ARGS__)

/* The task of the service: its state, error, exit code, container and node. Returns ST_OK
 * (state "" while the orchestrator has made no task yet) or a transport / HTTP error. */
typedef struct task_info {
    char state[32];
    char err[300];
    long long exit_code;
    int has_exit;
} task_info;

static int task_state(exec_state *x, task_info *ti, char *err, size_t errlen)
{
    char filter[200], enc[400], path[600];
    snprintf(filter, sizeof(filter), "{\"service\":[\"%s\"]}", x->service);
    eh_urlencode(filter, enc, sizeof(enc));
    snprintf(path, sizeof(path), "/tasks?filters=%s", enc);
    eh_response resp;
    memset(ti, 0, sizeof(*ti));
    int rc =
        er_api_call(&x->rt->conn, &x->h, "GET", path, NULL, 0, (size_t)4 << 20, &resp, err, errlen);
    if (rc != ST_OK)
        return rc;
    if (resp.status != 200) {
        er_http_error(&resp, "listing the service's tasks failed", err, errlen);
        eh_response_free(&resp);
        return ST_ERR_IO;
    }
    yajl_val v = er_parse_body(&resp);
    eh_response_free(&resp);
    if (!v || !YAJL_IS_ARRAY(v)) {
        snprintf(err, errlen, "the task list is not a JSON array");
        if (v)
            yajl_tree_free(v);
        return ST_ERR_IO;
    }
    /* one completion, no restarts: one task (the last listed, should there be more) */
    if (arr_len(v)) {
        yajl_val t = arr_at(v, arr_len(v) - 1);
        const char *st = er_jstr(t, "Status", "State", NULL);
        const char *e = er_jstr(t, "Status", "Err", NULL);
        const char *cid = er_jstr(t, "Status", "ContainerStatus", "ContainerID");
        const char *node = er_jstr(t, "NodeID", NULL, NULL);
        snprintf(ti->state, sizeof(ti->state), "%s", st ? st : "");
        snprintf(ti->err, sizeof(ti->err), "%s", e ? e : "");
        ti->has_exit = er_jint(t, "Status", "ContainerStatus", "ExitCode", &ti->exit_code) == 0;
        if (cid && er_safe_token(cid, "") && strlen(cid) < sizeof(x->task_container))
            snprintf(x->task_container, sizeof(x->task_container), "%s", cid);
        if (node && er_safe_token(node, "") && strlen(node) < sizeof(x->task_node))
            snprintf(x->task_node, sizeof(x->task_node), "%s", node);
    }
    yajl_tree_free(v);
    return ST_OK;
}

static int terminal_state(const char *s)
{
    static const char *const end[] = {"complete", "failed",   "shutdown", "rejected",
                                      "orphaned", "remove",   NULL};
    for (size_t i = 0; end[i]; i++)
        if (strcmp(s, end[i]) == 0)
            return 1;
    return 0;
}

/* The service's stdout, demultiplexed, with the result frames cut out into results.jsonl and
 * everything else passed to the sink. */
typedef struct fr_file {
    char name[72];
    int fd;
    int failed;
} fr_file;

#define FR_FILES 64

typedef struct frame_reader {
    const st_exec_sink *sink;
    char marker[48];
    size_t mlen, matched;
    int in_frame, overflow;
    char *frame;
    size_t flen, fcap;
    char out[4096];
    size_t olen;
    const char *dir;     /* the output dir the files go to */
    fr_file files[FR_FILES];
    size_t nfiles;
    int write_failed;
    char failed_name[72];
    int failed_errno;
    unsigned long frames, dropped;
} frame_reader;

static void fr_flush(frame_reader *fr)
{
    if (fr->olen && fr->sink && fr->sink->output)
        fr->sink->output(fr->sink->opaque, ST_STREAM_STDOUT, fr->out, fr->olen);
    fr->olen = 0;
}

static void fr_text(frame_reader *fr, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (fr->olen == sizeof(fr->out))
            fr_flush(fr);
        fr->out[fr->olen++] = s[i];
    }
}

/* A file name a frame may name: letters, digits, "._-", not starting with a dot. */
static int frame_name_ok(const char *s, size_t n)
{
    if (n == 0 || n >= sizeof(((fr_file *)0)->name) || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return 0;
    return 1;
}

/* Appends one line to the output dir's file name (created empty on first use). */
static void fr_write(frame_reader *fr, const char *name, size_t nlen, const char *s, size_t n)
{
    fr_file *f = NULL;
    for (size_t i = 0; i < fr->nfiles && !f; i++)
        if (strlen(fr->files[i].name) == nlen && memcmp(fr->files[i].name, name, nlen) == 0)
            f = &fr->files[i];
    if (!f) {
        if (fr->nfiles == FR_FILES) {
            fr->dropped++;
            return;
        }
        f = &fr->files[fr->nfiles++];
        memcpy(f->name, name, nlen);
        f->name[nlen] = '\0';
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", fr->dir, f->name);
        f->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        f->failed = f->fd < 0;
        if (f->failed && !fr->write_failed) {
            fr->write_failed = 1;
            fr->failed_errno = errno;
            snprintf(fr->failed_name, sizeof(fr->failed_name), "%s", f->name);
        }
    }
    struct {
        const char *p;
        size_t n;
    } parts[2] = {{s, n}, {"\n", 1}};
    for (int k = 0; k < 2 && !f->failed; k++) {
        const char *p = parts[k].p;
        size_t left = parts[k].n;
        while (left > 0) {
            ssize_t w = write(f->fd, p, left);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                f->failed = 1;
                if (!fr->write_failed) {
                    fr->write_failed = 1;
                    fr->failed_errno = w < 0 ? errno : EIO;
                    snprintf(fr->failed_name, sizeof(fr->failed_name), "%s", f->name);
                }
                break;
            }
            p += w;
            left -= (size_t)w;
        }
    }
}

/* A whole frame: " LINE" (a line of results.jsonl) or ":NAME LINE" (a line of NAME); anything
 * else (cut off, too long, a bad name) is dropped. */
static void fr_end_frame(frame_reader *fr)
{
    const char *f = fr->frame;
    size_t n = fr->flen;
    const char *name = NULL, *data = NULL;
    size_t nlen = 0;
    if (!fr->overflow && n > 0 && f[0] == ' ') {
        name = "results.jsonl";
        nlen = 13;
        data = f + 1;
    } else if (!fr->overflow && n > 0 && f[0] == ':') {
        const char *sp = memchr(f, ' ', n);
        if (sp && frame_name_ok(f + 1, (size_t)(sp - f - 1))) {
            name = f + 1;
            nlen = (size_t)(sp - f - 1);
            data = sp + 1;
        }
    }
    if (name) {
        fr_write(fr, name, nlen, data, n - (size_t)(data - f));
        fr->frames++;
    } else {
        fr->dropped++;
    }
    fr->flen = 0;
    fr->overflow = 0;
    fr->in_frame = 0;
}

static void fr_byte(frame_reader *fr, char c)
{
    if (fr->in_frame) {
        if (c == '\n') {
            fr_end_frame(fr);
            return;
        }
        if (fr->overflow)
            return;
        if (fr->flen == fr->fcap) {
            size_t cap = fr->fcap ? fr->fcap * 2 : 8192;
            char *p = cap <= FRAME_MAX ? realloc(fr->frame, cap) : NULL;
            if (!p) {
                fr->overflow = 1;
                return;
            }
            fr->frame = p;
            fr->fcap = cap;
        }
        fr->frame[fr->flen++] = c;
        return;
    }
    if (fr->matched) {
        if (c == fr->marker[fr->matched]) {
            if (++fr->matched == fr->mlen) {
                fr->matched = 0;
                fr->in_frame = 1;
            }
            return;
        }
        fr_text(fr, fr->marker, fr->matched);
        fr->matched = 0;
    }
    if (c == fr->marker[0])
        fr->matched = 1;
    else
        fr_text(fr, &c, 1);
}

static void on_log_frame(void *opaque, int stream, const char *data, size_t len)
{
    frame_reader *fr = opaque;
    if (stream == 2) {
        if (fr->sink && fr->sink->output)
            fr->sink->output(fr->sink->opaque, ST_STREAM_STDERR, data, len);
        return;
    }
    for (size_t i = 0; i < len; i++)
        fr_byte(fr, data[i]);
    fr_flush(fr);
}

static int read_logs(exec_state *x, const char *frame, char *err, size_t errlen)
{
    sw_runtime *rt = x->rt;
    frame_reader *frp = calloc(1, sizeof(*frp));
    if (!frp) {
        snprintf(err, errlen, "out of memory");
        return ST_ERR_NOMEM;
    }
    frp->sink = x->sink;
    frp->dir = x->req->output_dir;
    snprintf(frp->marker, sizeof(frp->marker), "\x1eselftest-%s", frame);
    frp->mlen = strlen(frp->marker);
    char path[300];
    snprintf(path, sizeof(path), "%s/services/%s/logs?stdout=1&stderr=1", rt->conn.api_prefix,
             x->service);
    int rc = er_stream_logs(&rt->conn, &x->h, path, 120, on_log_frame, frp,
                            "cannot read the service's logs", err, errlen);
    if (frp->matched)
        fr_text(frp, frp->marker, frp->matched);
    fr_flush(frp);
    if (frp->in_frame)
        frp->dropped++; /* cut off mid-frame (a killed task): not a whole line */
    free(frp->frame);
    for (size_t i = 0; i < frp->nfiles; i++)
        if (frp->files[i].fd >= 0 && close(frp->files[i].fd) < 0 && !frp->write_failed) {
            frp->write_failed = 1;
            frp->failed_errno = errno;
            snprintf(frp->failed_name, sizeof(frp->failed_name), "%s", frp->files[i].name);
        }
    if (rc == ST_OK && frp->write_failed) {
        snprintf(err, errlen, "cannot write %s/%s: %s", x->req->output_dir, frp->failed_name,
                 strerror(frp->failed_errno));
        rc = ST_ERR_IO;
    }
    rt->conn.host->log(rt->conn.self, ST_LOG_DEBUG,
                       "%s: %lu result lines from the service's logs (%lu "
                       "dropped: cut off or malformed)",
                       x->req->label, frp->frames, frp->dropped);
    free(frp);
    return rc;
}

/* DELETE path (a container, ?force=1): 0 when it is gone (also when the engine was already
 * removing it: then its removal is awaited, at most api_timeout), else -1 with err. */
static int delete_container(sw_runtime *rt, void **h, const char *path, char *err, size_t errlen)
{
    double give_up = st_monotonic() + rt->conn.api_timeout_s;
    for (int attempt = 0;; attempt++) {
        eh_response resp;
        int rc = er_api_call(&rt->conn, h, "DELETE", path, NULL, 15, 0, &resp, err, errlen);
        long st = resp.status;
        int busy = rc == ST_OK && st == 409 && resp.body && strstr(resp.body, "in progress");
        if (rc == ST_OK && st / 100 != 2 && st != 404)
            er_http_error(&resp, "remove failed", err, errlen);
        eh_response_free(&resp);
        if (rc == ST_OK && (st / 100 == 2 || st == 404))
            return 0;
        if (rc == ST_ERR_UNAVAILABLE || (!busy && attempt >= 1) || st_monotonic() >= give_up)
            return -1;
        st_sleep(busy ? 0.5 : 0.2);
    }
}

/* DELETE /services/{id}; then the task's container when it ran on the manager's node (Docker
 * leaves the tasks of a removed replicated-job service and their containers: moby issue 42789).
 * Returns 0, or -1 when something is left (logged). */
static int remove_service(exec_state *x)
{
    sw_runtime *rt = x->rt;
    char path[300], err[400] = "";
    int left = 0;
    task_info ti;
    /* the task's container as it is now (a cancel may have come before the poll that saw it) */
    task_state(x, &ti, err, sizeof(err));
    snprintf(path, sizeof(path), "/services/%s", x->service);
    int removed = 0;
    for (int attempt = 0; attempt < 2 && !removed; attempt++) {
        eh_response resp;
        int rc =
            er_api_call(&rt->conn, &x->h, "DELETE", path, NULL, 15, 0, &resp, err, sizeof(err));
        if (rc == ST_OK && (resp.status / 100 == 2 || resp.status == 404))
            removed = 1;
        else if (rc == ST_OK)
            er_http_error(&resp, "remove failed", err, sizeof(err));
        eh_response_free(&resp);
        if (!removed && rc == ST_ERR_UNAVAILABLE)
            break;
        if (!removed)
            st_sleep(0.2);
    }
    if (!removed) {
        rt->conn.host->log(rt->conn.self, ST_LOG_WARNING,
                           "%s: could not remove service %.12s (%s); "
                           "`selftest-core cleanup` removes it later",
                           x->req->label, x->service, err);
        left = 1;
    }
    if (x->task_container[0] && rt->node_id[0] && strcmp(x->task_node, rt->node_id) == 0) {
        snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", x->task_container);
        if (delete_container(rt, &x->h, path, err, sizeof(err)) < 0) {
            rt->conn.host->log(rt->conn.self, ST_LOG_WARNING,
                               "%s: could not remove the task's container "
                               "%.12s (%s); `selftest-core cleanup` removes it later",
                               x->req->label, x->task_container, err);
            left = 1;
        }
    }
    return left ? -1 : 0;
}

static int do_create(exec_state *x, const char *name, const char *frame)
{
    sw_runtime *rt = x->rt;
    char deadline[32], err[500], hex[33], sandbox[64];
    snprintf(deadline, sizeof(deadline), "%lld",
             (long long)time(NULL) + (long long)(x->req->timeout_s + 120));
    st_random_hex(hex, 16);
    snprintf(sandbox, sizeof(sandbox), "/tmp/selftest-sandbox-%s", hex);
    char *body = service_body(rt, x->req, name, frame, deadline, sandbox);
    if (!body)
        return infra(x, ST_ERR_NOMEM, "out of memory building the service request");
    eh_response resp;
    int rc = er_api_call(&rt->conn, &x->h, "POST", "/services/create", body, 0, 0, &resp, err,
                         sizeof(err));
    free(body);
    if (rc != ST_OK) {
        eh_response_free(&resp);
        return infra(x, rc, "cannot create a service: %s", err);
    }
    if (resp.status / 100 != 2) {
        char what[600];
        snprintf(what, sizeof(what), "the swarm manager %s refused the service for image %s",
                 rt->conn.client.display, rt->transfer_image ? rt->project_image : rt->image);
        er_http_error(&resp, what, err, sizeof(err));
        eh_response_free(&resp);
        return infra(x, ST_ERR_UNAVAILABLE, "%s", err);
    }
    yajl_val v = er_parse_body(&resp);
    const char *id = v ? er_jstr(v, "ID", NULL, NULL) : NULL;
    if (id && er_safe_token(id, "") && strlen(id) < sizeof(x->service))
        snprintf(x->service, sizeof(x->service), "%s", id);
    if (v)
        yajl_tree_free(v);
    eh_response_free(&resp);
    if (!x->service[0]) {
        /* it may exist under its name: remove it by name */
        snprintf(x->service, sizeof(x->service), "%s", name);
        if (remove_service(x) < 0)
            er_note_cleanup_failure(x->res);
        x->service[0] = '\0';
        return infra(x, ST_ERR_IO, "the manager's answer to service create has no valid ID");
    }
    return ST_OK;
}

static int sw_execute(void *ctx, const st_exec_request *req, const st_exec_sink *sink,
                      st_exec_result *res)
{
    sw_runtime *rt = ctx;
    exec_state x = {.rt = rt, .req = req, .sink = sink, .res = res, .t0 = st_monotonic()};
    char err[600], name[48], hex[33], frame[33];
    int rc = ST_OK;
    x.reg.id = req->id;
    er_running_add(&rt->lock, &rt->list, &x.reg);
    if (!req->argv || !req->argv[0]) {
        rc = infra(&x, ST_ERR_INVALID, "empty argv");
        goto out;
    }
    rc = ensure_engine(rt, err, sizeof(err));
    if (rc != ST_OK) {
        rc = infra(&x, rc, "%s", err);
        goto out;
    }
    if (rt->transfer_image) {
        pthread_mutex_lock(&rt->build_lock);
        if (rt->build_needed || !rt->project_image[0]) {
            rc = build_project_image(rt, &x.h, req->project_root, req->support_dir, err,
                                     sizeof(err));
            rt->build_needed = rc != ST_OK;
        }
        pthread_mutex_unlock(&rt->build_lock);
        if (rc != ST_OK) {
            rc = infra(&x, rc, "transfer = \"image\": cannot build the project image: %s", err);
            goto out;
        }
    }
    st_random_hex(hex, 24);
    snprintf(name, sizeof(name), "selftest_%s", hex);
    st_random_hex(frame, 32);
    rc = do_create(&x, name, frame);
    if (rc != ST_OK)
        goto out;
    snprintf(res->container, sizeof(res->container), "%s", name);
    /* wait for the task to end: poll its state, 50 ms growing to 500 ms. The batch timeout
     * counts from the task's start, as a container runtime's from its container's: placing it
     * and pulling the image may take api_timeout more */
    task_info ti;
    memset(&ti, 0, sizeof(ti));
    double deadline = x.t0 + req->timeout_s + rt->conn.api_timeout_s, pause = 0.05;
    int lost = 0, running = 0;
    for (;;) {
        if (er_running_cancelled(&rt->lock, &x.reg)) {
            res->cancelled = 1;
            break;
        }
        if (st_monotonic() >= deadline) {
            res->timed_out = 1;
            break;
        }
        rc = task_state(&x, &ti, err, sizeof(err));
        if (rc != ST_OK) {
            if (++lost >= 3) {
                rc = infra(&x, rc, "lost the swarm manager while service %s ran: %s", name, err);
                goto remove;
            }
        } else {
            lost = 0;
            if (terminal_state(ti.state))
                break;
            if (!running && strcmp(ti.state, "running") == 0) {
                running = 1;
                deadline = st_monotonic() + req->timeout_s;
            }
            if (strcmp(ti.state, "pending") == 0 && strstr(ti.err, "no suitable node")) {
                rc = infra(&x, ST_ERR_UNAVAILABLE, "no swarm node can run service %s: %s "
                           "(constraints, resources, or the image's platform)", name, ti.err);
                goto remove;
            }
        }
        double left = deadline - st_monotonic();
        st_sleep(pause < left ? pause : (left > 0 ? left : 0));
        if (pause < 0.5)
            pause *= 1.5;
    }
    if (res->timed_out) {
        rt->conn.host->log(rt->conn.self, ST_LOG_WARNING,
                           "%s: timeout after %gs, removing service %s", req->label, req->timeout_s,
                           name);
    }
    /* the logs before the removal: a timed-out or cancelled task's results so far */
    if (read_logs(&x, frame, err, sizeof(err)) != ST_OK) {
        rc = infra(&x, ST_ERR_IO, "%s", err);
        goto remove;
    }
    if (res->timed_out) {
        er_sink_note(sink, "[selftest-core] timeout after %gs: service %s removed", req->timeout_s,
                     name);
        res->exited = 0;
        res->term_signal = SIGKILL;
    } else if (res->cancelled) {
        res->exited = 0;
        res->term_signal = SIGKILL;
    } else if (strcmp(ti.state, "complete") == 0) {
        er_set_exit(res, 0);
    } else if (strcmp(ti.state, "failed") == 0 && ti.has_exit && ti.exit_code != 0) {
        er_set_exit(res, ti.exit_code);
    } else {
        rc = infra(&x, ST_ERR_UNAVAILABLE, "the task of service %s ended \"%s\"%s%s", name,
                   ti.state, ti.err[0] ? ": " : "", ti.err);
    }
remove:
    if (x.service[0] && remove_service(&x) < 0)
        er_note_cleanup_failure(res);
out:
    er_running_remove(&rt->lock, &rt->list, &x.reg);
    eh_handle_free(&x.h);
    res->wall_s = st_monotonic() - x.t0;
    return res->infra_error ? (rc != ST_OK ? rc : ST_ERR_UNAVAILABLE) : ST_OK;
}

static int sw_cancel(void *ctx, const char *id)
{
    sw_runtime *rt = ctx;
    pthread_mutex_lock(&rt->lock);
    for (er_running *r = rt->list; r; r = r->next)
        if (id && r->id && strcmp(r->id, id) == 0)
            r->cancelled = 1;
    pthread_mutex_unlock(&rt->lock);
    return ST_OK;
}

/* ---- cleanup_stale ---------------------------------------------------------------------------- */

/* "2026-11-27T15:28:38.347280424Z" -> UNIX time, or 0. */
static long long parse_rfc3339(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
        return 0;
    return (long long)timegm(&tm);
}

static yajl_val list_json(sw_runtime *rt, void **h, const char *what, char *err, size_t errlen)
{
    char filter[128], path[300];
    eh_urlencode("{\"label\":[\"" ER_LABEL_MANAGED "\"]}", filter, sizeof(filter));
    snprintf(path, sizeof(path), "/%s?%sfilters=%s", what,
             strcmp(what, "containers/json") == 0 ? "all=1&" : "", filter);
    eh_response resp;
    int rc = er_api_call(&rt->conn, h, "GET", path, NULL, 0, (size_t)64 << 20, &resp, err, errlen);
    yajl_val v = NULL;
    if (rc == ST_OK && resp.status != 200)
        er_http_error(&resp, "listing failed", err, errlen);
    else if (rc == ST_OK) {
        v = er_parse_body(&resp);
        if (v && !YAJL_IS_ARRAY(v)) {
            yajl_tree_free(v);
            v = NULL;
        }
        if (!v)
            snprintf(err, errlen, "the list of %s is not a JSON array", what);
    }
    eh_response_free(&resp);
    return v;
}

static int delete_path(sw_runtime *rt, void **h, const char *path, char *err, size_t errlen)
{
    eh_response resp;
    int rc = er_api_call(&rt->conn, h, "DELETE", path, NULL, 0, 0, &resp, err, errlen);
    int ok = rc == ST_OK && (resp.status / 100 == 2 || resp.status == 404);
    if (rc == ST_OK && !ok)
        er_http_error(&resp, "remove failed", err, errlen);
    eh_response_free(&resp);
    return ok ? 0 : -1;
}

static int sw_cleanup_stale(void *ctx, double max_age_s, st_cleanup_report *report)
{
    sw_runtime *rt = ctx;
    char err[600];
    void *h = NULL;
    time_t began = time(NULL);
    if (rt->max_age_set || max_age_s <= 0)
        max_age_s = rt->max_age_s;
    report->listed = report->removed = report->failed = 0;
    if (ensure_engine(rt, err, sizeof(err)) != ST_OK) {
        report->failed++;
        rt->conn.host->log(rt->conn.self, ST_LOG_ERROR, "cleanup: %s", err);
        return ST_ERR_UNAVAILABLE;
    }
    /* 1. services */
    yajl_val services = list_json(rt, &h, "services", err, sizeof(err));
    if (!services) {
        report->failed++;
        rt->conn.host->log(rt->conn.self, ST_LOG_ERROR, "cleanup: listing services: %s", err);
    }
    for (size_t i = 0; i < arr_len(services); i++) {
        yajl_val s = arr_at(services, i);
        const char *id = er_jstr(s, "ID", NULL, NULL);
        const char *lp[] = {"Spec", "Labels", NULL};
        yajl_val labels = yajl_tree_get(s, lp, yajl_t_object);
        if (!id || !er_safe_token(id, "") || !labels)
            continue;
        report->listed++;
        const char *why =
            er_stale_reason(&rt->owner, labels, parse_rfc3339(er_jstr(s, "CreatedAt", NULL, NULL)),
                            max_age_s, began);
        if (!why)
            continue;
        char path[200];
        snprintf(path, sizeof(path), "/services/%s", id);
        if (delete_path(rt, &h, path, err, sizeof(err)) == 0) {
            report->removed++;
            rt->conn.host->log(rt->conn.self, ST_LOG_INFO, "cleanup: removed service %.12s (%s)",
                               id, why);
        } else {
            report->failed++;
            rt->conn.host->log(rt->conn.self, ST_LOG_ERROR,
                               "cleanup: cannot remove service %.12s: %s", id, err);
        }
    }
    /* 2. task containers on this node whose service is gone (Docker leaves those of a removed
     * replicated-job service) or that are stale themselves */
    yajl_val containers = list_json(rt, &h, "containers/json", err, sizeof(err));
    if (!containers) {
        report->failed++;
        rt->conn.host->log(rt->conn.self, ST_LOG_ERROR, "cleanup: listing containers: %s", err);
    }
    for (size_t i = 0; i < arr_len(containers); i++) {
        yajl_val c = arr_at(containers, i);
        const char *id = er_jstr(c, "Id", NULL, NULL);
        const char *lp[] = {"Labels", NULL};
        yajl_val labels = yajl_tree_get(c, lp, yajl_t_object);
        const char *svc = labels ? er_jstr(labels, LABEL_SWARM_SERVICE, NULL, NULL) : NULL;
        if (!id || !er_safe_token(id, "") || !labels || !svc)
            continue; /* runtime-docker's containers are not this plugin's business */
        report->listed++;
        long long created = 0;
        er_jint(c, "Created", NULL, NULL, &created);
        const char *why = er_stale_reason(&rt->owner, labels, created, max_age_s, began);
        if (!why && er_safe_token(svc, "")) {
            char path[200];
            eh_response resp;
            snprintf(path, sizeof(path), "/services/%s", svc);
            if (created <= (long long)began &&
                er_api_call(&rt->conn, &h, "GET", path, NULL, 0, 0, &resp, err, sizeof(err)) ==
                    ST_OK &&
                resp.status == 404)
                why = "its service is gone";
            eh_response_free(&resp);
        }
        if (!why)
            continue;
        char path[200];
        snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", id);
        if (delete_container(rt, &h, path, err, sizeof(err)) == 0) {
            report->removed++;
            rt->conn.host->log(rt->conn.self, ST_LOG_INFO,
                               "cleanup: removed task container %.12s (%s)", id, why);
        } else {
            report->failed++;
            rt->conn.host->log(rt->conn.self, ST_LOG_ERROR,
                               "cleanup: cannot remove container %.12s: %s", id, err);
        }
    }
    /* 3. project images (transfer = "image") of dead runs: they carry the owner labels of the
     * container they were committed from */
    yajl_val images = list_json(rt, &h, "images/json", err, sizeof(err));
    if (!images) {
        report->failed++;
        rt->conn.host->log(rt->conn.self, ST_LOG_ERROR, "cleanup: listing images: %s", err);
    }
    for (size_t i = 0; i < arr_len(images); i++) {
        yajl_val im = arr_at(images, i);
        const char *id = er_jstr(im, "Id", NULL, NULL);
        const char *lp[] = {"Labels", NULL};
        yajl_val labels = yajl_tree_get(im, lp, yajl_t_object);
        if (!id || !er_safe_token(id, ":") || !labels)
            continue;
        report->listed++;
        long long created = 0;
        er_jint(im, "Created", NULL, NULL, &created);
        const char *why = er_stale_reason(&rt->owner, labels, created, max_age_s, began);
        if (!why)
            continue;
        char path[300];
        snprintf(path, sizeof(path), "/images/%s?force=1", id);
        if (delete_path(rt, &h, path, err, sizeof(err)) == 0) {
            report->removed++;
            rt->conn.host->log(rt->conn.self, ST_LOG_INFO,
                               "cleanup: removed project image %.19s (%s)", id, why);
        } else {
            report->failed++;
            rt->conn.host->log(rt->conn.self, ST_LOG_ERROR,
                               "cleanup: cannot remove image %.19s: %s", id, err);
        }
    }
    if (services)
        yajl_tree_free(services);
    if (containers)
        yajl_tree_free(containers);
    if (images)
        yajl_tree_free(images);
    eh_handle_free(&h);
    return report->failed ? ST_ERR_IO : ST_OK;
}

static const st_runtime_ops swarm_ops = {
    .struct_size = sizeof(st_runtime_ops),
    .life = {.create = sw_create, .stop = sw_stop, .destroy = sw_destroy},
    .probe = sw_probe,
    .prepare = sw_prepare,
    .execute = sw_execute,
    .cancel = sw_cancel,
    .cleanup_stale = sw_cleanup_stale,
    .runtime_name = "swarm",
    .environment_id = sw_environment_id,
};

static const st_plugin_descriptor swarm_descriptor = {
    .abi_major = ST_ABI_MAJOR,
    .abi_minor = ST_ABI_MINOR,
    .struct_size = sizeof(st_plugin_descriptor),
    .kind = ST_KIND_RUNTIME,
    .name = "runtime-swarm",
    .version = PACKAGE_VERSION,
    .description = "run each batch as a Docker Swarm replicated-job service",
    .flags = ST_PLUGIN_THREAD_SAFE | ST_PLUGIN_MULTI_INSTANCE,
    .ops = &swarm_ops,
    .license = "MIT",
    .author = "the selftest-core authors",
    .origin = "bundled with " PACKAGE_NAME,
};

ST_PLUGIN_DEFINE(swarm_descriptor)
