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

extern char **environ;

#define LABEL_MANAGED "menace_self_test"
#define LABEL_HOST "selftest.owner.host"
#define LABEL_PID "selftest.owner.pid"
#define LABEL_START "selftest.owner.start"
#define LABEL_RUN "selftest.run"
#define LABEL_DEADLINE "selftest.deadline"
#define LABEL_BATCH "selftest.batch"
#define LABEL_SWARM_SERVICE "com.docker.swarm.service.id"

#define FRAME_MAX ((size_t)16 << 20) /* a longer frame is dropped (the plugin's are < 200 KiB) */

typedef struct sw_running {
    const char *id;     /* request id, borrowed */
    int cancelled;
    struct sw_running *next;
} sw_running;

typedef struct sw_runtime {
    const st_host *host;
    st_instance *self;
    eh_client client;
    char host_source[300];
    pthread_mutex_t lock;
    sw_running *list;
    int negotiated;
    char api_prefix[40];
    char node_id[80]; /* the manager's node id: task containers there can be removed directly */
    /* settings */
    const char *image, *python, *network, *api_version, *image_repository;
    char user[64];
    long long memory_bytes, pids_limit;
    double cpus, max_age_s, api_timeout_s;
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
    /* owner identity */
    char hostname[256];
    long pid;
    long long start_ticks;
    char run_id[17];
} sw_runtime;

static const char *const known_keys[] = {
    "image", "python", "memory", "pids_limit", "cpus", "user", "network", "env_passthrough",
    "max_age", "host", "api_version", "api_timeout", "init", "transfer", "constraints",
    "image_repository", "service_mode", NULL};

/* ---- small helpers -------------------------------------------------------------------------- */

static int safe_token(const char *s, const char *extra)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
            return 0;
    return 1;
}

static const char *jstr(yajl_val obj, const char *k1, const char *k2, const char *k3)
{
    const char *path[] = {k1, k2, k3, NULL};
    yajl_val v = yajl_tree_get(obj, path, yajl_t_string);
    return v ? YAJL_GET_STRING(v) : NULL;
}

static int jint(yajl_val obj, const char *k1, const char *k2, const char *k3, long long *out)
{
    const char *path[] = {k1, k2, k3, NULL};
    yajl_val v = yajl_tree_get(obj, path, yajl_t_number);
    if (!v || !YAJL_IS_INTEGER(v))
        return -1;
    *out = YAJL_GET_INTEGER(v);
    return 0;
}

/* Length and elements of a JSON array (0 / NULL for anything else). */
static size_t arr_len(yajl_val v)
{
    return v && YAJL_IS_ARRAY(v) ? v->u.array.len : 0;
}

static yajl_val arr_at(yajl_val v, size_t i)
{
    return i < arr_len(v) ? v->u.array.values[i] : NULL;
}

static yajl_val parse_body(const eh_response *resp)
{
    if (!resp->body || resp->truncated)
        return NULL;
    return st_json_tree_parse(resp->body, NULL, 0);
}

static int api_call(sw_runtime *rt, void **h, const char *method, const char *path,
                    const char *json_body, double timeout_s, size_t max_body, eh_response *resp,
                    char *err, size_t errlen)
{
    char full[3072];
    if (path[0] == '!')
        snprintf(full, sizeof(full), "%s", path + 1);
    else
        snprintf(full, sizeof(full), "%s%s", rt->api_prefix, path);
    eh_request rq = {
        .method = method,
        .path = full,
        .body = json_body,
        .body_len = json_body ? strlen(json_body) : 0,
        .content_type = json_body ? "application/json" : NULL,
        .timeout_s = timeout_s > 0 ? timeout_s : rt->api_timeout_s,
        .max_body = max_body,
    };
    double t0 = st_monotonic();
    int rc = eh_perform(&rt->client, h, &rq, resp, err, errlen);
    rt->host->log(rt->self, ST_LOG_DEBUG, "%s %.120s -> %ld (%.0f ms)", method, full, resp->status,
                  (st_monotonic() - t0) * 1000);
    return rc;
}

static void http_error(const eh_response *resp, const char *what, char *err, size_t errlen)
{
    char msg[400];
    eh_error_text(resp, msg, sizeof(msg));
    snprintf(err, errlen, "%s: %s (HTTP %ld)", what, msg, resp->status);
}

static void gen_str(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void gen_kv(yajl_gen g, const char *k, const char *v)
{
    gen_str(g, k);
    gen_str(g, v);
}

static char *gen_finish(yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    char *out = NULL;
    if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok) {
        out = malloc(len + 1);
        if (out) {
            memcpy(out, buf, len);
            out[len] = '\0';
        }
    }
    yajl_gen_free(g);
    return out;
}

static void gen_owner_labels(sw_runtime *rt, yajl_gen g, const char *deadline, const char *batch)
{
    char num[64];
    yajl_gen_map_open(g);
    gen_kv(g, LABEL_MANAGED, "1");
    gen_kv(g, LABEL_HOST, rt->hostname);
    snprintf(num, sizeof(num), "%ld", rt->pid);
    gen_kv(g, LABEL_PID, num);
    snprintf(num, sizeof(num), "%lld", rt->start_ticks);
    gen_kv(g, LABEL_START, num);
    gen_kv(g, LABEL_RUN, rt->run_id);
    if (deadline)
        gen_kv(g, LABEL_DEADLINE, deadline);
    if (batch)
        gen_kv(g, LABEL_BATCH, batch);
    yajl_gen_map_close(g);
}

/* ---- settings ------------------------------------------------------------------------------- */

static int bad(sw_runtime *rt, const st_config_node *cfg, const char *key, const char *why)
{
    rt->host->log(rt->self, ST_LOG_ERROR, "%s: %s: %s", rt->host->cfg_where(rt->self, cfg, key),
                  key, why);
    return -1;
}

static int valid_api_version(const char *v)
{
    int dots = 0;
    if (!v || !isdigit((unsigned char)*v))
        return 0;
    for (; *v; v++) {
        if (*v == '.')
            dots++;
        else if (!isdigit((unsigned char)*v))
            return 0;
    }
    return dots >= 1 && dots <= 2;
}

static int read_settings(sw_runtime *rt, const st_config_node *cfg)
{
    const st_host *H = rt->host;
    st_instance *S = rt->self;
    const char *mem = NULL, *user = NULL, *host_url = NULL, *transfer = NULL, *mode = NULL;
    long long ll;
    double d;
    rt->image = "python:3.11-slim";
    rt->python = "python3";
    rt->image_repository = "selftest-project";
    rt->api_timeout_s = 30;
    rt->init = 1;
    if (st_check_settings(H, S, cfg, known_keys, "container") != ST_OK)
        return -1;
    if (H->cfg_string(S, cfg, "image", &rt->image) < 0 ||
        H->cfg_string(S, cfg, "python", &rt->python) < 0 ||
        H->cfg_string(S, cfg, "network", &rt->network) < 0 ||
        H->cfg_string(S, cfg, "memory", &mem) < 0 || H->cfg_string(S, cfg, "user", &user) < 0 ||
        H->cfg_string(S, cfg, "host", &host_url) < 0 ||
        H->cfg_string(S, cfg, "api_version", &rt->api_version) < 0 ||
        H->cfg_string(S, cfg, "transfer", &transfer) < 0 ||
        H->cfg_string(S, cfg, "service_mode", &mode) < 0 ||
        H->cfg_string(S, cfg, "image_repository", &rt->image_repository) < 0 ||
        H->cfg_string_list(S, cfg, "env_passthrough", &rt->passthrough) < 0 ||
        H->cfg_string_list(S, cfg, "constraints", &rt->constraints) < 0 ||
        H->cfg_bool(S, cfg, "init", &rt->init) < 0)
        return -1;
    if (!safe_token(rt->image, "._-/:@"))
        return bad(rt, cfg, "image", "must be an image reference like python:3.11-slim");
    if (!safe_token(rt->image_repository, "._-/:") ||
        strchr(strrchr(rt->image_repository, '/') ? strrchr(rt->image_repository, '/')
                                                  : rt->image_repository, ':'))
        return bad(rt, cfg, "image_repository",
                   "must be a repository without a tag, like registry.example:5000/selftest");
    if (!rt->python[0])
        return bad(rt, cfg, "python", "must not be empty");
    if (rt->network && strcmp(rt->network, "none") != 0 && !safe_token(rt->network, "._-"))
        return bad(rt, cfg, "network", "must name a swarm network (or \"none\": no network)");
    if (rt->network && strcmp(rt->network, "none") == 0)
        rt->network = NULL;
    if (rt->api_version && !valid_api_version(rt->api_version))
        return bad(rt, cfg, "api_version", "must look like \"1.41\"");
    if (mem && (rt->memory_bytes = er_parse_memory(mem)) < 0)
        return bad(rt, cfg, "memory", "must be a size such as \"512m\" or \"2g\"");
    if (mem && rt->memory_bytes > 0 && rt->memory_bytes < 6 * 1024 * 1024)
        return bad(rt, cfg, "memory", "must be at least 6m (the engines refuse less)");
    if (user && !safe_token(user, "._-:"))
        return bad(rt, cfg, "user", "must be \"uid:gid\" or a user name");
    snprintf(rt->user, sizeof(rt->user), "%s", user ? user : "");
    if (!user)
        snprintf(rt->user, sizeof(rt->user), "%u:%u", (unsigned)getuid(), (unsigned)getgid());
    for (size_t i = 0; rt->passthrough && rt->passthrough[i]; i++)
        if (!safe_token(rt->passthrough[i], "_"))
            return bad(rt, cfg, "env_passthrough", "must list variable names");
    for (size_t i = 0; rt->constraints && rt->constraints[i]; i++) {
        const char *c = rt->constraints[i];
        if (!*c || strchr(c, '\n') || (!strstr(c, "==") && !strstr(c, "!=")))
            return bad(rt, cfg, "constraints",
                       "each must be a placement constraint such as \"node.role==worker\" or "
                       "\"node.labels.selftest==yes\"");
    }
    if (transfer && strcmp(transfer, "bind") != 0 && strcmp(transfer, "image") != 0)
        return bad(rt, cfg, "transfer", "must be \"bind\" or \"image\" for runtime swarm");
    rt->transfer_image = transfer && strcmp(transfer, "image") == 0;
    if (mode && strcmp(mode, "auto") != 0 && strcmp(mode, "replicated-job") != 0 &&
        strcmp(mode, "replicated") != 0)
        return bad(rt, cfg, "service_mode",
                   "must be \"auto\", \"replicated-job\" or \"replicated\"");
    rt->mode_setting = !mode || strcmp(mode, "auto") == 0 ? 0
                       : strcmp(mode, "replicated-job") == 0 ? 1 : 2;
    rt->replicated = rt->mode_setting == 2;
    int rc = H->cfg_int(S, cfg, "pids_limit", &ll);
    if (rc < 0)
        return -1;
    if (rc == ST_CFG_FOUND) {
        if (ll < 0)
            return bad(rt, cfg, "pids_limit", "must not be negative (0: no limit)");
        rt->pids_limit = ll;
    }
    struct {
        const char *key;
        double *out;
        double min;
    } dbl[] = {{"cpus", &rt->cpus, 0}, {"max_age", &rt->max_age_s, 0},
               {"api_timeout", &rt->api_timeout_s, 1}};
    for (size_t i = 0; i < 3; i++) {
        rc = H->cfg_double(S, cfg, dbl[i].key, &d);
        if (rc < 0)
            return -1;
        if (rc == ST_CFG_FOUND) {
            if (d < dbl[i].min || d != d)
                return bad(rt, cfg, dbl[i].key, dbl[i].min > 0 ? "must be at least 1"
                                                                : "must not be negative");
            *dbl[i].out = d;
            if (dbl[i].out == &rt->max_age_s)
                rt->max_age_set = 1;
        }
    }
    /* the manager's address: DOCKER_HOST > the config file > the default socket */
    const char *env_host = getenv("DOCKER_HOST");
    const char *url = "unix:///var/run/docker.sock";
    if (env_host && *env_host) {
        url = env_host;
        snprintf(rt->host_source, sizeof(rt->host_source), "DOCKER_HOST");
    } else if (host_url) {
        url = host_url;
        snprintf(rt->host_source, sizeof(rt->host_source), "%s", H->cfg_where(S, cfg, "host"));
    } else {
        snprintf(rt->host_source, sizeof(rt->host_source), "the default");
    }
    eh_address addr;
    char err[300];
    const char *tls_verify = getenv("DOCKER_TLS_VERIFY");
    if (eh_parse_address(url, tls_verify && *tls_verify, &addr, err, sizeof(err)) < 0) {
        H->log(S, ST_LOG_ERROR, "%s: %s", rt->host_source, err);
        return -1;
    }
    if (addr.scheme == EH_SSH) {
        H->log(S, ST_LOG_ERROR, "%s: runtime swarm talks to a manager over unix:// or tcp:// "
               "(forward the manager's socket for ssh)", rt->host_source);
        return -1;
    }
    eh_client_init(&rt->client, &addr, getenv("DOCKER_CERT_PATH"));
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
    rt->host = host;
    rt->self = self;
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
    snprintf(rt->api_prefix, sizeof(rt->api_prefix), "/v%s",
             rt->api_version ? rt->api_version : "1.41");
    if (gethostname(rt->hostname, sizeof(rt->hostname) - 1) < 0)
        snprintf(rt->hostname, sizeof(rt->hostname), "unknown");
    rt->pid = (long)getpid();
    rt->start_ticks = er_process_start(rt->pid);
    st_random_hex(rt->run_id, 16);
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
    int rc = api_call(rt, &h, "GET", "!/_ping", NULL, 10, 0, &resp, err, errlen);
    if (rc != ST_OK)
        goto out;
    if (resp.status != 200) {
        http_error(&resp, "the engine refused GET /_ping", err, errlen);
        rc = ST_ERR_UNAVAILABLE;
        goto out;
    }
    snprintf(api, sizeof(api), "%s",
             rt->api_version ? rt->api_version
                             : valid_api_version(resp.api_version) ? resp.api_version : "1.41");
    eh_response_free(&resp);
    char path[64];
    snprintf(path, sizeof(path), "!/v%s/info", api);
    rc = api_call(rt, &h, "GET", path, NULL, 0, (size_t)8 << 20, &resp, err, errlen);
    if (rc != ST_OK)
        goto out;
    v = resp.status == 200 ? parse_body(&resp) : NULL;
    if (!v) {
        if (resp.status != 200)
            http_error(&resp, "GET /info failed", err, errlen);
        else
            snprintf(err, errlen, "the engine's answer to GET /info is not JSON");
        rc = ST_ERR_UNAVAILABLE;
        goto out;
    }
    const char *state = jstr(v, "Swarm", "LocalNodeState", NULL);
    const char *node = jstr(v, "Swarm", "NodeID", NULL);
    const char *ca_path[] = {"Swarm", "ControlAvailable", NULL};
    yajl_val ca = yajl_tree_get(v, ca_path, yajl_t_any);
    if (!state || strcmp(state, "active") != 0) {
        snprintf(err, errlen, "the engine at %s is not in a swarm (swarm state \"%s\"): run "
                 "`docker swarm init` there, or point host / DOCKER_HOST at a manager",
                 rt->client.display, state ? state : "unknown");
        rc = ST_ERR_UNAVAILABLE;
        goto out;
    }
    if (!ca || !YAJL_IS_TRUE(ca)) {
        snprintf(err, errlen, "the engine at %s is a swarm worker, not a manager: services can "
                 "only be created on a manager", rt->client.display);
        rc = ST_ERR_UNAVAILABLE;
        goto out;
    }
    /* service_mode "auto": a replicated job where Docker removes a removed job's tasks and
     * containers (23.0 and later), else one replica never restarted (the same run) */
    const char *version = jstr(v, "ServerVersion", NULL, NULL);
    long major = version && isdigit((unsigned char)version[0]) ? strtol(version, NULL, 10) : 0;
    pthread_mutex_lock(&rt->lock);
    snprintf(rt->api_prefix, sizeof(rt->api_prefix), "/v%s", api);
    snprintf(rt->node_id, sizeof(rt->node_id), "%s", node && safe_token(node, "") ? node : "");
    if (rt->mode_setting == 0)
        rt->replicated = major < 23;
    rt->negotiated = 1;
    pthread_mutex_unlock(&rt->lock);
    rt->host->log(rt->self, rt->mode_setting == 0 && rt->replicated ? ST_LOG_INFO : ST_LOG_DEBUG,
                  "swarm manager %s runs Docker %s: batches run as %s services%s",
                  rt->client.display, version ? version : "(version unknown)",
                  rt->replicated ? "replicated" : "replicated-job",
                  rt->mode_setting == 0 && rt->replicated
                      ? " with one replica, never restarted (before 23.0 Docker keeps the tasks "
                        "and containers of a removed job)"
                      : "");
    rt->host->log(rt->self, ST_LOG_DEBUG, "swarm manager %s: API %s, node %s", rt->client.display,
                  api, rt->node_id);
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
    if (rc != ST_OK) {
        rt->host->log(rt->self, ST_LOG_ERROR, "%s (address from %s)", err, rt->host_source);
        return ST_ERR_UNAVAILABLE;
    }
    return ST_OK;
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
    int rc = api_call(rt, h, "GET", path, NULL, 0, 0, &resp, err, errlen);
    if (rc != ST_OK)
        return rc;
    if (resp.status == 200) {
        yajl_val v = parse_body(&resp);
        const char *s = v ? jstr(v, "Id", NULL, NULL) : NULL;
        if (s && safe_token(s, ":") && strlen(s) < idlen)
            snprintf(id, idlen, "%s", s);
        if (v)
            yajl_tree_free(v);
        rc = 1;
    } else if (resp.status == 404) {
        rc = 0;
    } else {
        http_error(&resp, "cannot inspect the image", err, errlen);
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
    if (api_call(rt, h, "DELETE", path, NULL, 0, 0, &resp, err, sizeof(err)) == ST_OK &&
        resp.status / 100 != 2 && resp.status != 404) {
        http_error(&resp, "remove failed", err, sizeof(err));
        rt->host->log(rt->self, ST_LOG_WARNING, "cannot remove image %s: %s", ref, err);
    }
    eh_response_free(&resp);
}

static pid_t spawn_tar(const char *const *argv, int *fd_out)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(p[1], 1);
        if (devnull >= 0)
            dup2(devnull, 0);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    *fd_out = p[0];
    return pid;
}

static int tar_status(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* transfer = "image": a container of the test image (never started) gets the project root and
 * the support dir at their host paths (PUT /containers/{id}/archive), and is committed as
 * image_repository:<run id>; the container goes, the previous cycle's image too. */
static int build_project_image(sw_runtime *rt, void **h, const char *root, const char *support,
                               char *err, size_t errlen)
{
    const st_project_info *pi = rt->host->project ? rt->host->project(rt->self) : NULL;
    if (!root || root[0] != '/') {
        snprintf(err, errlen, "transfer = \"image\": the project root is unknown");
        return ST_ERR_INVALID;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        return ST_ERR_NOMEM;
    yajl_gen_map_open(g);
    gen_kv(g, "Image", rt->image);
    gen_str(g, "Cmd");
    yajl_gen_array_open(g);
    gen_str(g, rt->python);
    yajl_gen_array_close(g);
    gen_str(g, "Labels");
    gen_owner_labels(rt, g, NULL, "project-image");
    gen_str(g, "HostConfig");
    yajl_gen_map_open(g);
    gen_kv(g, "NetworkMode", "none");
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    char *body = gen_finish(g);
    if (!body)
        return ST_ERR_NOMEM;
    eh_response resp = {0};
    char cid[80] = "", path[1600];
    int rc = api_call(rt, h, "POST", "/containers/create", body, 0, 0, &resp, err, errlen);
    free(body);
    if (rc == ST_OK && resp.status / 100 != 2) {
        http_error(&resp, "cannot create a container to build the project image", err, errlen);
        rc = ST_ERR_UNAVAILABLE;
    }
    if (rc == ST_OK) {
        yajl_val v = parse_body(&resp);
        const char *id = v ? jstr(v, "Id", NULL, NULL) : NULL;
        if (id && safe_token(id, "") && strlen(id) < sizeof(cid))
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
    char root_rel[4100], support_rel[4100], excl[24][300];
    const char *argv[64];
    size_t n = 0, ne = 0;
    argv[n++] = "tar";
    argv[n++] = "-c";
    argv[n++] = "-f";
    argv[n++] = "-";
    argv[n++] = "-C";
    argv[n++] = "/";
    for (size_t i = 0; pi && pi->skip_dirs && pi->skip_dirs[i] && ne < 24; i++) {
        snprintf(excl[ne], sizeof(excl[ne]), "--exclude=%s", pi->skip_dirs[i]);
        argv[n++] = excl[ne++];
    }
    argv[n++] = "--exclude=__pycache__";
    snprintf(root_rel, sizeof(root_rel), ".%s", root);
    argv[n++] = root_rel;
    if (support && support[0] == '/' && strcmp(support, root) != 0) {
        snprintf(support_rel, sizeof(support_rel), ".%s", support);
        argv[n++] = support_rel;
    }
    argv[n] = NULL;
    int fd = -1;
    pid_t pid = spawn_tar(argv, &fd);
    if (pid < 0) {
        snprintf(err, errlen, "cannot run tar: %s", strerror(errno));
        rc = ST_ERR_IO;
        goto remove;
    }
    snprintf(path, sizeof(path), "%s/containers/%s/archive?path=/", rt->api_prefix, cid);
    eh_request rq = {.method = "PUT", .path = path, .content_type = "application/x-tar",
                     .upload_fd = fd, .timeout_s = 600};
    rc = eh_perform(&rt->client, h, &rq, &resp, err, errlen);
    close(fd);
    int ts = tar_status(pid);
    if (rc == ST_OK && resp.status / 100 != 2) {
        http_error(&resp, "the engine refused the project upload", err, errlen);
        rc = ST_ERR_IO;
    } else if (rc == ST_OK && ts != 0) {
        snprintf(err, errlen, "tar of %s failed (status %d)", root, ts);
        rc = ST_ERR_IO;
    }
    eh_response_free(&resp);
    if (rc != ST_OK)
        goto remove;
    char repo_enc[900], tag[40];
    snprintf(tag, sizeof(tag), "%s", rt->run_id);
    eh_urlencode(rt->image_repository, repo_enc, sizeof(repo_enc));
    snprintf(path, sizeof(path), "/commit?container=%s&repo=%s&tag=%s&pause=0", cid, repo_enc,
             tag);
    /* a JSON body (the container config to change: none); Docker wants the content type */
    rc = api_call(rt, h, "POST", path, "{}", 600, 0, &resp, err, errlen);
    if (rc == ST_OK && resp.status / 100 != 2) {
        http_error(&resp, "cannot commit the project image", err, errlen);
        rc = ST_ERR_UNAVAILABLE;
    }
    if (rc == ST_OK) {
        char old_id[160];
        snprintf(old_id, sizeof(old_id), "%s", rt->project_image_id);
        yajl_val v = parse_body(&resp);
        const char *id = v ? jstr(v, "Id", NULL, NULL) : NULL;
        snprintf(rt->project_image_id, sizeof(rt->project_image_id), "%s",
                 id && safe_token(id, ":") ? id : "");
        if (v)
            yajl_tree_free(v);
        snprintf(rt->project_image, sizeof(rt->project_image), "%s:%s", rt->image_repository,
                 tag);
        if (old_id[0] && strcmp(old_id, rt->project_image_id) != 0)
            remove_image(rt, h, old_id); /* the previous cycle's, untagged by this commit */
        rt->host->log(rt->self, ST_LOG_INFO, "project image %s (%.19s) built on %s",
                      rt->project_image, rt->project_image_id, rt->image);
    }
    eh_response_free(&resp);
remove:
    snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", cid);
    {
        char e2[300];
        eh_response r2;
        api_call(rt, h, "DELETE", path, NULL, 0, 0, &r2, e2, sizeof(e2));
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
            snprintf(err, sizeof(err), "transfer = \"image\": image %s is not on the manager %s "
                     "(pull or load it there first)", rt->image, rt->client.display);
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
        rt->host->log(rt->self, ST_LOG_ERROR, "%s", err);
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

static void gen_env(sw_runtime *rt, yajl_gen g, const st_exec_request *req, const char *frame)
{
    yajl_gen_array_open(g);
    int have_dwb = 0;
    for (char **e = environ; *e; e++) {
        if (!er_env_allowed(*e, rt->passthrough))
            continue;
        size_t nl = (size_t)(strchr(*e, '=') - *e);
        int overridden = strncmp(*e, "SELF_TEST_RESULTS_FRAME=", 24) == 0;
        for (size_t j = 0; req->env && req->env[j] && !overridden; j++)
            overridden = strncmp(req->env[j], *e, nl) == 0 && req->env[j][nl] == '=';
        if (overridden)
            continue;
        have_dwb |= strncmp(*e, "PYTHONDONTWRITEBYTECODE=", 24) == 0;
        gen_str(g, *e);
    }
    for (size_t j = 0; req->env && req->env[j]; j++) {
        have_dwb |= strncmp(req->env[j], "PYTHONDONTWRITEBYTECODE=", 24) == 0;
        gen_str(g, req->env[j]);
    }
    if (!have_dwb)
        gen_str(g, "PYTHONDONTWRITEBYTECODE=1");
    char fr[64];
    snprintf(fr, sizeof(fr), "SELF_TEST_RESULTS_FRAME=%s", frame);
    gen_str(g, fr);
    yajl_gen_array_close(g);
}

static void gen_mount(yajl_gen g, const char *path)
{
    yajl_gen_map_open(g);
    gen_kv(g, "Type", "bind");
    gen_kv(g, "Source", path);
    gen_kv(g, "Target", path);
    gen_str(g, "ReadOnly");
    yajl_gen_bool(g, 1);
    yajl_gen_map_close(g);
}

static char *service_body(sw_runtime *rt, const st_exec_request *req, const char *name,
                          const char *frame, const char *deadline, const char *sandbox)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        return NULL;
    yajl_gen_map_open(g);
    gen_kv(g, "Name", name);
    gen_str(g, "Labels");
    gen_owner_labels(rt, g, deadline, req->id ? req->id : "");
    gen_str(g, "TaskTemplate");
    yajl_gen_map_open(g);
    gen_str(g, "ContainerSpec");
    yajl_gen_map_open(g);
    gen_kv(g, "Image", rt->transfer_image ? rt->project_image : rt->image);
    gen_str(g, "Command");
    yajl_gen_array_open(g);
    gen_str(g, rt->python);
    int is_pytest = req->argv[0] && req->argv[1] && req->argv[2] &&
                    strcmp(req->argv[1], "-m") == 0 && strcmp(req->argv[2], "pytest") == 0;
    for (size_t i = 1; req->argv[0] && req->argv[i]; i++) {
        gen_str(g, req->argv[i]);
        if (i == 2 && is_pytest) { /* nothing may write into the tree */
            gen_str(g, "-p");
            gen_str(g, "no:cacheprovider");
        }
    }
    yajl_gen_array_close(g);
    gen_str(g, "Args");
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);
    /* an import check runs in an empty directory of its own, as on the host (pytest collects
     * "." there); the engine creates it */
    gen_kv(g, "Dir", req->sandboxed ? sandbox : req->workdir ? req->workdir : req->project_root);
    gen_kv(g, "User", rt->user);
    gen_str(g, "TTY");
    yajl_gen_bool(g, 0);
    gen_str(g, "Init");
    yajl_gen_bool(g, rt->init);
    if (req->kill_grace_s > 0) { /* SIGTERM -> SIGKILL when the service is removed */
        gen_str(g, "StopGracePeriod");
        yajl_gen_integer(g, (long long)(req->kill_grace_s * 1e9));
    }
    gen_str(g, "Env");
    gen_env(rt, g, req, frame);
    gen_str(g, "Labels");
    gen_owner_labels(rt, g, deadline, req->id ? req->id : "");
    gen_str(g, "Mounts");
    yajl_gen_array_open(g);
    if (!rt->transfer_image) {
        gen_mount(g, req->project_root);
        if (req->support_dir && *req->support_dir &&
            strcmp(req->support_dir, req->project_root) != 0)
            gen_mount(g, req->support_dir);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g); /* ContainerSpec */
    gen_str(g, "Resources");
    yajl_gen_map_open(g);
    gen_str(g, "Limits");
    yajl_gen_map_open(g);
    if (rt->cpus > 0) {
        gen_str(g, "NanoCPUs");
        yajl_gen_integer(g, (long long)(rt->cpus * 1e9));
    }
    if (rt->memory_bytes > 0) {
        gen_str(g, "MemoryBytes");
        yajl_gen_integer(g, rt->memory_bytes);
    }
    if (rt->pids_limit > 0) {
        gen_str(g, "Pids");
        yajl_gen_integer(g, rt->pids_limit);
    }
    yajl_gen_map_close(g);
    yajl_gen_map_close(g); /* Resources */
    gen_str(g, "RestartPolicy");
    yajl_gen_map_open(g);
    gen_kv(g, "Condition", "none");
    gen_str(g, "MaxAttempts");
    yajl_gen_integer(g, 0);
    yajl_gen_map_close(g);
    gen_str(g, "Placement");
    yajl_gen_map_open(g);
    gen_str(g, "Constraints");
    yajl_gen_array_open(g);
    for (size_t i = 0; rt->constraints && rt->constraints[i]; i++)
        gen_str(g, rt->constraints[i]);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    if (rt->network) {
        gen_str(g, "Networks");
        yajl_gen_array_open(g);
        yajl_gen_map_open(g);
        gen_kv(g, "Target", rt->network);
        yajl_gen_map_close(g);
        yajl_gen_array_close(g);
    }
    yajl_gen_map_close(g); /* TaskTemplate */
    gen_str(g, "Mode");
    yajl_gen_map_open(g);
    if (rt->replicated) {
        /* one replica that is never restarted: the same run, and Docker removes its task and
         * container with the service on every node (it keeps a removed job's) */
        gen_str(g, "Replicated");
        yajl_gen_map_open(g);
        gen_str(g, "Replicas");
        yajl_gen_integer(g, 1);
        yajl_gen_map_close(g);
    } else {
        gen_str(g, "ReplicatedJob");
        yajl_gen_map_open(g);
        gen_str(g, "MaxConcurrent");
        yajl_gen_integer(g, 1);
        gen_str(g, "TotalCompletions");
        yajl_gen_integer(g, 1);
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    return gen_finish(g);
}

static void sink_note(const st_exec_sink *sink, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sink_note(const st_exec_sink *sink, const char *fmt, ...)
{
    char buf[700];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    if (sink && sink->output)
        sink->output(sink->opaque, ST_STREAM_STDERR, buf, (size_t)n);
}

typedef struct exec_state {
    sw_runtime *rt;
    const st_exec_request *req;
    const st_exec_sink *sink;
    st_exec_result *res;
    void *h;
    sw_running reg;
    char service[80]; /* id once created */
    char task_container[80];
    char task_node[80];
    double t0;
} exec_state;

static int infra(exec_state *x, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int infra(exec_state *x, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->res->error, sizeof(x->res->error), fmt, ap);
    va_end(ap);
    x->res->infra_error = 1;
    x->rt->host->log(x->rt->self, ST_LOG_ERROR, "%s: %s", x->req->label, x->res->error);
    return rc == ST_OK ? ST_ERR_UNAVAILABLE : rc;
}

static int is_cancelled(sw_runtime *rt, sw_running *r)
{
    pthread_mutex_lock(&rt->lock);
    int c = r->cancelled;
    pthread_mutex_unlock(&rt->lock);
    return c;
}

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
    int rc = api_call(x->rt, &x->h, "GET", path, NULL, 0, (size_t)4 << 20, &resp, err, errlen);
    if (rc != ST_OK)
        return rc;
    if (resp.status != 200) {
        http_error(&resp, "listing the service's tasks failed", err, errlen);
        eh_response_free(&resp);
        return ST_ERR_IO;
    }
    yajl_val v = parse_body(&resp);
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
        const char *st = jstr(t, "Status", "State", NULL);
        const char *e = jstr(t, "Status", "Err", NULL);
        const char *cid = jstr(t, "Status", "ContainerStatus", "ContainerID");
        const char *node = jstr(t, "NodeID", NULL, NULL);
        snprintf(ti->state, sizeof(ti->state), "%s", st ? st : "");
        snprintf(ti->err, sizeof(ti->err), "%s", e ? e : "");
        ti->has_exit = jint(t, "Status", "ContainerStatus", "ExitCode", &ti->exit_code) == 0;
        if (cid && safe_token(cid, "") && strlen(cid) < sizeof(x->task_container))
            snprintf(x->task_container, sizeof(x->task_container), "%s", cid);
        if (node && safe_token(node, "") && strlen(node) < sizeof(x->task_node))
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

static void on_log_data(void *opaque, const char *data, size_t len)
{
    ed_feed(opaque, data, len);
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
    snprintf(path, sizeof(path), "%s/services/%s/logs?stdout=1&stderr=1", rt->api_prefix,
             x->service);
    ed_demux d;
    ed_init(&d, on_log_frame, frp);
    eh_request rq = {.method = "GET", .path = path, .timeout_s = 120, .on_data = on_log_data,
                     .opaque = &d};
    eh_response resp;
    int rc = eh_perform(&rt->client, &x->h, &rq, &resp, err, errlen);
    if (rc == ST_OK && resp.status != 200) {
        http_error(&resp, "cannot read the service's logs", err, errlen);
        rc = ST_ERR_IO;
    }
    eh_response_free(&resp);
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
    rt->host->log(rt->self, ST_LOG_DEBUG, "%s: %lu result lines from the service's logs (%lu "
                  "dropped: cut off or malformed)", x->req->label, frp->frames, frp->dropped);
    free(frp);
    return rc;
}

/* DELETE path (a container, ?force=1): 0 when it is gone (also when the engine was already
 * removing it: then its removal is awaited, at most api_timeout), else -1 with err. */
static int delete_container(sw_runtime *rt, void **h, const char *path, char *err, size_t errlen)
{
    double give_up = st_monotonic() + rt->api_timeout_s;
    for (int attempt = 0;; attempt++) {
        eh_response resp;
        int rc = api_call(rt, h, "DELETE", path, NULL, 15, 0, &resp, err, errlen);
        long st = resp.status;
        int busy = rc == ST_OK && st == 409 && resp.body && strstr(resp.body, "in progress");
        if (rc == ST_OK && st / 100 != 2 && st != 404)
            http_error(&resp, "remove failed", err, errlen);
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
        int rc = api_call(rt, &x->h, "DELETE", path, NULL, 15, 0, &resp, err, sizeof(err));
        if (rc == ST_OK && (resp.status / 100 == 2 || resp.status == 404))
            removed = 1;
        else if (rc == ST_OK)
            http_error(&resp, "remove failed", err, sizeof(err));
        eh_response_free(&resp);
        if (!removed && rc == ST_ERR_UNAVAILABLE)
            break;
        if (!removed)
            st_sleep(0.2);
    }
    if (!removed) {
        rt->host->log(rt->self, ST_LOG_WARNING, "%s: could not remove service %.12s (%s); "
                      "`selftest-core cleanup` removes it later", x->req->label, x->service, err);
        left = 1;
    }
    if (x->task_container[0] && rt->node_id[0] && strcmp(x->task_node, rt->node_id) == 0) {
        snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", x->task_container);
        if (delete_container(rt, &x->h, path, err, sizeof(err)) < 0) {
            rt->host->log(rt->self, ST_LOG_WARNING, "%s: could not remove the task's container "
                          "%.12s (%s); `selftest-core cleanup` removes it later", x->req->label,
                          x->task_container, err);
            left = 1;
        }
    }
    return left ? -1 : 0;
}

static void note_cleanup_failure(st_exec_result *res)
{
    if (ST_EXEC_RESULT_HAS(res, cleanup_failures))
        res->cleanup_failures++;
}

static void set_exit(st_exec_result *res, long long code)
{
    if (code > 128 && code < 128 + 65) {
        res->exited = 0;
        res->term_signal = (int)(code - 128);
    } else {
        res->exited = 1;
        res->exit_status = (int)code;
    }
}

static void register_running(sw_runtime *rt, sw_running *r)
{
    pthread_mutex_lock(&rt->lock);
    r->next = rt->list;
    rt->list = r;
    pthread_mutex_unlock(&rt->lock);
}

static void unregister_running(sw_runtime *rt, sw_running *r)
{
    pthread_mutex_lock(&rt->lock);
    for (sw_running **p = &rt->list; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    pthread_mutex_unlock(&rt->lock);
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
    int rc = api_call(rt, &x->h, "POST", "/services/create", body, 0, 0, &resp, err, sizeof(err));
    free(body);
    if (rc != ST_OK) {
        eh_response_free(&resp);
        return infra(x, rc, "cannot create a service: %s", err);
    }
    if (resp.status / 100 != 2) {
        char what[600];
        snprintf(what, sizeof(what), "the swarm manager %s refused the service for image %s",
                 rt->client.display, rt->transfer_image ? rt->project_image : rt->image);
        http_error(&resp, what, err, sizeof(err));
        eh_response_free(&resp);
        return infra(x, ST_ERR_UNAVAILABLE, "%s", err);
    }
    yajl_val v = parse_body(&resp);
    const char *id = v ? jstr(v, "ID", NULL, NULL) : NULL;
    if (id && safe_token(id, "") && strlen(id) < sizeof(x->service))
        snprintf(x->service, sizeof(x->service), "%s", id);
    if (v)
        yajl_tree_free(v);
    eh_response_free(&resp);
    if (!x->service[0]) {
        /* it may exist under its name: remove it by name */
        snprintf(x->service, sizeof(x->service), "%s", name);
        if (remove_service(x) < 0)
            note_cleanup_failure(x->res);
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
    register_running(rt, &x.reg);
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
    double deadline = x.t0 + req->timeout_s + rt->api_timeout_s, pause = 0.05;
    int lost = 0, running = 0;
    for (;;) {
        if (is_cancelled(rt, &x.reg)) {
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
        rt->host->log(rt->self, ST_LOG_WARNING, "%s: timeout after %gs, removing service %s",
                      req->label, req->timeout_s, name);
    }
    /* the logs before the removal: a timed-out or cancelled task's results so far */
    if (read_logs(&x, frame, err, sizeof(err)) != ST_OK) {
        rc = infra(&x, ST_ERR_IO, "%s", err);
        goto remove;
    }
    if (res->timed_out) {
        sink_note(sink, "[selftest-core] timeout after %gs: service %s removed", req->timeout_s,
                  name);
        res->exited = 0;
        res->term_signal = SIGKILL;
    } else if (res->cancelled) {
        res->exited = 0;
        res->term_signal = SIGKILL;
    } else if (strcmp(ti.state, "complete") == 0) {
        set_exit(res, 0);
    } else if (strcmp(ti.state, "failed") == 0 && ti.has_exit && ti.exit_code != 0) {
        set_exit(res, ti.exit_code);
    } else {
        rc = infra(&x, ST_ERR_UNAVAILABLE, "the task of service %s ended \"%s\"%s%s", name,
                   ti.state, ti.err[0] ? ": " : "", ti.err);
    }
remove:
    if (x.service[0] && remove_service(&x) < 0)
        note_cleanup_failure(res);
out:
    unregister_running(rt, &x.reg);
    eh_handle_free(&x.h);
    res->wall_s = st_monotonic() - x.t0;
    return res->infra_error ? (rc != ST_OK ? rc : ST_ERR_UNAVAILABLE) : ST_OK;
}

static int sw_cancel(void *ctx, const char *id)
{
    sw_runtime *rt = ctx;
    pthread_mutex_lock(&rt->lock);
    for (sw_running *r = rt->list; r; r = r->next)
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

static const char *stale_reason(sw_runtime *rt, yajl_val labels, long long created,
                                double max_age_s, time_t began)
{
    if (created > (long long)began)
        return NULL;
    const char *host = jstr(labels, LABEL_HOST, NULL, NULL);
    const char *pid_s = jstr(labels, LABEL_PID, NULL, NULL);
    const char *start_s = jstr(labels, LABEL_START, NULL, NULL);
    const char *deadline_s = jstr(labels, LABEL_DEADLINE, NULL, NULL);
    if (host && pid_s && start_s && strcmp(host, rt->hostname) == 0) {
        long pid = strtol(pid_s, NULL, 10);
        long long start = strtoll(start_s, NULL, 10);
        long long now_start = pid > 0 ? er_process_start(pid) : -1;
        if (now_start >= 0 && now_start == start)
            return NULL; /* a live run's */
        return "its owner process is gone";
    }
    time_t now = time(NULL);
    if (deadline_s && strtoll(deadline_s, NULL, 10) < (long long)now)
        return "its deadline has passed";
    if (max_age_s > 0 && created > 0 && (double)(now - created) > max_age_s)
        return "it is older than max_age";
    return NULL;
}

static yajl_val list_json(sw_runtime *rt, void **h, const char *what, char *err, size_t errlen)
{
    char filter[128], path[300];
    eh_urlencode("{\"label\":[\"" LABEL_MANAGED "\"]}", filter, sizeof(filter));
    snprintf(path, sizeof(path), "/%s?%sfilters=%s", what,
             strcmp(what, "containers/json") == 0 ? "all=1&" : "", filter);
    eh_response resp;
    int rc = api_call(rt, h, "GET", path, NULL, 0, (size_t)64 << 20, &resp, err, errlen);
    yajl_val v = NULL;
    if (rc == ST_OK && resp.status != 200)
        http_error(&resp, "listing failed", err, errlen);
    else if (rc == ST_OK) {
        v = parse_body(&resp);
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
    int rc = api_call(rt, h, "DELETE", path, NULL, 0, 0, &resp, err, errlen);
    int ok = rc == ST_OK && (resp.status / 100 == 2 || resp.status == 404);
    if (rc == ST_OK && !ok)
        http_error(&resp, "remove failed", err, errlen);
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
        rt->host->log(rt->self, ST_LOG_ERROR, "cleanup: %s", err);
        return ST_ERR_UNAVAILABLE;
    }
    /* 1. services */
    yajl_val services = list_json(rt, &h, "services", err, sizeof(err));
    if (!services) {
        report->failed++;
        rt->host->log(rt->self, ST_LOG_ERROR, "cleanup: listing services: %s", err);
    }
    for (size_t i = 0; i < arr_len(services); i++) {
        yajl_val s = arr_at(services, i);
        const char *id = jstr(s, "ID", NULL, NULL);
        const char *lp[] = {"Spec", "Labels", NULL};
        yajl_val labels = yajl_tree_get(s, lp, yajl_t_object);
        if (!id || !safe_token(id, "") || !labels)
            continue;
        report->listed++;
        const char *why = stale_reason(rt, labels, parse_rfc3339(jstr(s, "CreatedAt", NULL, NULL)),
                                       max_age_s, began);
        if (!why)
            continue;
        char path[200];
        snprintf(path, sizeof(path), "/services/%s", id);
        if (delete_path(rt, &h, path, err, sizeof(err)) == 0) {
            report->removed++;
            rt->host->log(rt->self, ST_LOG_INFO, "cleanup: removed service %.12s (%s)", id, why);
        } else {
            report->failed++;
            rt->host->log(rt->self, ST_LOG_ERROR, "cleanup: cannot remove service %.12s: %s", id,
                          err);
        }
    }
    /* 2. task containers on this node whose service is gone (Docker leaves those of a removed
     * replicated-job service) or that are stale themselves */
    yajl_val containers = list_json(rt, &h, "containers/json", err, sizeof(err));
    if (!containers) {
        report->failed++;
        rt->host->log(rt->self, ST_LOG_ERROR, "cleanup: listing containers: %s", err);
    }
    for (size_t i = 0; i < arr_len(containers); i++) {
        yajl_val c = arr_at(containers, i);
        const char *id = jstr(c, "Id", NULL, NULL);
        const char *lp[] = {"Labels", NULL};
        yajl_val labels = yajl_tree_get(c, lp, yajl_t_object);
        const char *svc = labels ? jstr(labels, LABEL_SWARM_SERVICE, NULL, NULL) : NULL;
        if (!id || !safe_token(id, "") || !labels || !svc)
            continue; /* runtime-docker's containers are not this plugin's business */
        report->listed++;
        long long created = 0;
        jint(c, "Created", NULL, NULL, &created);
        const char *why = stale_reason(rt, labels, created, max_age_s, began);
        if (!why && safe_token(svc, "")) {
            char path[200];
            eh_response resp;
            snprintf(path, sizeof(path), "/services/%s", svc);
            if (created <= (long long)began &&
                api_call(rt, &h, "GET", path, NULL, 0, 0, &resp, err, sizeof(err)) == ST_OK &&
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
            rt->host->log(rt->self, ST_LOG_INFO, "cleanup: removed task container %.12s (%s)",
                          id, why);
        } else {
            report->failed++;
            rt->host->log(rt->self, ST_LOG_ERROR, "cleanup: cannot remove container %.12s: %s",
                          id, err);
        }
    }
    /* 3. project images (transfer = "image") of dead runs: they carry the owner labels of the
     * container they were committed from */
    yajl_val images = list_json(rt, &h, "images/json", err, sizeof(err));
    if (!images) {
        report->failed++;
        rt->host->log(rt->self, ST_LOG_ERROR, "cleanup: listing images: %s", err);
    }
    for (size_t i = 0; i < arr_len(images); i++) {
        yajl_val im = arr_at(images, i);
        const char *id = jstr(im, "Id", NULL, NULL);
        const char *lp[] = {"Labels", NULL};
        yajl_val labels = yajl_tree_get(im, lp, yajl_t_object);
        if (!id || !safe_token(id, ":") || !labels)
            continue;
        report->listed++;
        long long created = 0;
        jint(im, "Created", NULL, NULL, &created);
        const char *why = stale_reason(rt, labels, created, max_age_s, began);
        if (!why)
            continue;
        char path[300];
        snprintf(path, sizeof(path), "/images/%s?force=1", id);
        if (delete_path(rt, &h, path, err, sizeof(err)) == 0) {
            report->removed++;
            rt->host->log(rt->self, ST_LOG_INFO, "cleanup: removed project image %.19s (%s)",
                          id, why);
        } else {
            report->failed++;
            rt->host->log(rt->self, ST_LOG_ERROR, "cleanup: cannot remove image %.19s: %s", id,
                          err);
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
