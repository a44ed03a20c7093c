/* SPDX-License-Identifier: MIT */
/* engine_util: helpers runtime-docker, runtime-podman (engine_runtime.c) and runtime-swarm
 * share; see engine_util.h. */
#include "config.h"

#include "engine_util.h"

#include "engine_demux.h"
#include "engine_runtime.h"
#include "st_json.h"
#include "st_settings.h"
#include "st_time.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- the connection ------------------------------------------------------------------------ */

int er_api_call(er_conn *c, void **h, const char *method, const char *path, const char *json_body,
                double timeout_s, size_t max_body, eh_response *resp, char *err, size_t errlen)
{
    char full[3072];
    if (path[0] == '!')
        snprintf(full, sizeof(full), "%s", path + 1);
    else
        snprintf(full, sizeof(full), "%s%s", c->api_prefix, path);
    eh_request rq = {
        .method = method,
        .path = full,
        .body = json_body,
        .body_len = json_body ? strlen(json_body) : 0,
        .content_type = json_body ? "application/json" : NULL,
        .timeout_s = timeout_s > 0 ? timeout_s : c->api_timeout_s,
        .max_body = max_body,
    };
    double t0 = st_monotonic();
    int rc = eh_perform(&c->client, h, &rq, resp, err, errlen);
    c->host->log(c->self, ST_LOG_DEBUG, "%s %.120s -> %ld (%.0f ms)", method, full, resp->status,
                 (st_monotonic() - t0) * 1000);
    return rc;
}

int er_get_ping(er_conn *c, void **h, double timeout_s, eh_response *resp, char *err, size_t errlen)
{
    int rc = er_api_call(c, h, "GET", "!/_ping", NULL, timeout_s, 0, resp, err, errlen);
    if (rc == ST_OK && resp->status != 200) {
        er_http_error(resp, "the engine refused GET /_ping", err, errlen);
        rc = ST_ERR_UNAVAILABLE;
    }
    return rc;
}

static void on_log_data(void *opaque, const char *data, size_t len)
{
    ed_feed(opaque, data, len);
}

int er_stream_logs(er_conn *c, void **h, const char *path, double timeout_s,
                   void (*on_frame)(void *opaque, int stream, const char *data, size_t len),
                   void *opaque, const char *what, char *err, size_t errlen)
{
    ed_demux d;
    ed_init(&d, on_frame, opaque);
    eh_request rq = {.method = "GET",
                     .path = path,
                     .timeout_s = timeout_s,
                     .on_data = on_log_data,
                     .opaque = &d};
    eh_response resp;
    int rc = eh_perform(&c->client, h, &rq, &resp, err, errlen);
    if (rc == ST_OK && resp.status != 200) {
        er_http_error(&resp, what, err, errlen);
        rc = ST_ERR_IO;
    }
    eh_response_free(&resp);
    return rc;
}

int er_probe_result(const er_conn *c, int rc, const char *err, const char *source)
{
    if (rc == ST_OK)
        return ST_OK;
    c->host->log(c->self, ST_LOG_ERROR, "%s (address from %s)", err, source);
    return ST_ERR_UNAVAILABLE;
}

void er_http_error(const eh_response *resp, const char *what, char *err, size_t errlen)
{
    char msg[400];
    eh_error_text(resp, msg, sizeof(msg));
    snprintf(err, errlen, "%s: %s (HTTP %ld)", what, msg, resp->status);
}

/* ---- settings -------------------------------------------------------------------------------- */

int er_cfg_bad(const er_conn *c, const st_config_node *cfg, const char *key, const char *why)
{
    c->host->log(c->self, ST_LOG_ERROR, "%s: %s: %s", c->host->cfg_where(c->self, cfg, key), key,
                 why);
    return -1;
}

int er_read_strings(const er_conn *c, const st_config_node *cfg, const char **image,
                    const char **python, const char **network, const char **memory,
                    const char **user, const char **host_url, const char **api_version)
{
    const st_host *H = c->host;
    st_instance *S = c->self;
    if (H->cfg_string(S, cfg, "image", image) < 0 || H->cfg_string(S, cfg, "python", python) < 0 ||
        H->cfg_string(S, cfg, "network", network) < 0 ||
        H->cfg_string(S, cfg, "memory", memory) < 0 || H->cfg_string(S, cfg, "user", user) < 0 ||
        H->cfg_string(S, cfg, "host", host_url) < 0 ||
        H->cfg_string(S, cfg, "api_version", api_version) < 0)
        return -1;
    return 0;
}

int er_check_settings(const er_conn *c, const st_config_node *cfg, const char *api_version,
                      const char *memory, long long *memory_bytes, const char *user, char *user_buf,
                      size_t user_len, const char *const *passthrough)
{
    if (api_version && !er_valid_api_version(api_version))
        return er_cfg_bad(c, cfg, "api_version", "must look like \"1.41\"");
    if (memory && (*memory_bytes = er_parse_memory(memory)) < 0)
        return er_cfg_bad(c, cfg, "memory", "must be a size such as \"512m\" or \"2g\"");
    if (memory && *memory_bytes > 0 && *memory_bytes < 6 * 1024 * 1024)
        return er_cfg_bad(c, cfg, "memory", "must be at least 6m (the engines refuse less)");
    if (user && !er_safe_token(user, "._-:"))
        return er_cfg_bad(c, cfg, "user", "must be \"uid:gid\" or a user name");
    char self_user[64];
    snprintf(self_user, sizeof(self_user), "%u:%u", (unsigned)getuid(), (unsigned)getgid());
    snprintf(user_buf, user_len, "%s", user ? user : self_user);
    for (size_t i = 0; passthrough && passthrough[i]; i++)
        if (!er_safe_token(passthrough[i], "_"))
            return er_cfg_bad(c, cfg, "env_passthrough", "must list variable names");
    return strcmp(user_buf, self_user) != 0;
}

int er_read_limits(er_conn *c, const st_config_node *cfg, long long *pids_limit, double *cpus,
                   double *max_age_s, int *max_age_set)
{
    const st_host *H = c->host;
    st_instance *S = c->self;
    long long ll;
    double d;
    int rc = H->cfg_int(S, cfg, "pids_limit", &ll);
    if (rc < 0)
        return -1;
    if (rc == ST_CFG_FOUND) {
        if (ll < 0)
            return er_cfg_bad(c, cfg, "pids_limit", "must not be negative (0: no limit)");
        *pids_limit = ll;
    }
    struct {
        const char *key;
        double *out;
        double min;
    } dbl[] = {{"cpus", cpus, 0}, {"max_age", max_age_s, 0}, {"api_timeout", &c->api_timeout_s, 1}};
    for (size_t i = 0; i < 3; i++) {
        rc = H->cfg_double(S, cfg, dbl[i].key, &d);
        if (rc < 0)
            return -1;
        if (rc == ST_CFG_FOUND) {
            if (d < dbl[i].min || d != d)
                return er_cfg_bad(c, cfg, dbl[i].key,
                                  dbl[i].min > 0 ? "must be at least 1" : "must not be negative");
            *dbl[i].out = d;
            if (dbl[i].out == max_age_s)
                *max_age_set = 1;
        }
    }
    return 0;
}

int er_read_address(const er_conn *c, const st_config_node *cfg, const char *env_name,
                    const char *cfg_url, const char *default_url, const char *override,
                    const char *override_where, char *source, size_t sourcelen, eh_address *addr)
{
    const char *env_host = getenv(env_name);
    const char *url = default_url;
    if (override) {
        url = override;
        snprintf(source, sourcelen, "%s", override_where ? override_where : "hosts");
    } else if (env_host && *env_host) {
        url = env_host;
        snprintf(source, sourcelen, "%s", env_name);
    } else if (cfg_url) {
        url = cfg_url;
        snprintf(source, sourcelen, "%s", c->host->cfg_where(c->self, cfg, "host"));
    } else {
        snprintf(source, sourcelen, "the default");
    }
    char err[300];
    const char *tls_verify = getenv("DOCKER_TLS_VERIFY");
    if (eh_parse_address(url, tls_verify && *tls_verify, addr, err, sizeof(err)) < 0) {
        c->host->log(c->self, ST_LOG_ERROR, "%s: %s", source, err);
        return -1;
    }
    return 0;
}

int er_safe_token(const char *s, const char *extra)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
            return 0;
    return 1;
}

int er_valid_api_version(const char *v)
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

/* ---- JSON ------------------------------------------------------------------------------------ */

const char *er_jstr(yajl_val obj, const char *k1, const char *k2, const char *k3)
{
    const char *path[] = {k1, k2, k3, NULL};
    yajl_val v = yajl_tree_get(obj, path, yajl_t_string);
    return v ? YAJL_GET_STRING(v) : NULL;
}

int er_jint(yajl_val obj, const char *k1, const char *k2, const char *k3, long long *out)
{
    const char *path[] = {k1, k2, k3, NULL};
    yajl_val v = yajl_tree_get(obj, path, yajl_t_number);
    if (!v || !YAJL_IS_INTEGER(v))
        return -1;
    *out = YAJL_GET_INTEGER(v);
    return 0;
}

yajl_val er_parse_body(const eh_response *resp)
{
    if (!resp->body || resp->truncated)
        return NULL;
    return st_json_tree_parse(resp->body, NULL, 0);
}

void er_gen_str(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

void er_gen_kv(yajl_gen g, const char *k, const char *v)
{
    er_gen_str(g, k);
    er_gen_str(g, v);
}

void er_gen_mount(yajl_gen g, const char *path, int read_only)
{
    yajl_gen_map_open(g);
    er_gen_kv(g, "Type", "bind");
    er_gen_kv(g, "Source", path);
    er_gen_kv(g, "Target", path);
    er_gen_str(g, "ReadOnly");
    yajl_gen_bool(g, read_only);
    yajl_gen_map_close(g);
}

void er_gen_command(yajl_gen g, const char *python, const char *const *argv)
{
    yajl_gen_array_open(g);
    er_gen_str(g, python);
    int is_pytest = argv[0] && argv[1] && argv[2] && strcmp(argv[1], "-m") == 0 &&
                    strcmp(argv[2], "pytest") == 0;
    for (size_t i = 1; argv[0] && argv[i]; i++) {
        er_gen_str(g, argv[i]);
        if (i == 2 && is_pytest) {
            er_gen_str(g, "-p");
            er_gen_str(g, "no:cacheprovider");
        }
    }
    yajl_gen_array_close(g);
}

void er_gen_env_items(yajl_gen g, const st_exec_request *req, const char *const *passthrough,
                      const char *drop)
{
    int have_dwb = 0;
    for (char **e = environ; *e; e++) {
        if (!er_env_allowed(*e, passthrough))
            continue;
        size_t nl = (size_t)(strchr(*e, '=') - *e);
        int overridden = drop && strncmp(*e, drop, strlen(drop)) == 0;
        for (size_t j = 0; req->env && req->env[j] && !overridden; j++)
            overridden = strncmp(req->env[j], *e, nl) == 0 && req->env[j][nl] == '=';
        if (overridden)
            continue;
        have_dwb |= strncmp(*e, "PYTHONDONTWRITEBYTECODE=", 24) == 0;
        er_gen_str(g, *e);
    }
    for (size_t j = 0; req->env && req->env[j]; j++) {
        have_dwb |= strncmp(req->env[j], "PYTHONDONTWRITEBYTECODE=", 24) == 0;
        er_gen_str(g, req->env[j]);
    }
    if (!have_dwb)
        er_gen_str(g, "PYTHONDONTWRITEBYTECODE=1");
}

char *er_gen_finish(yajl_gen g)
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

/* ---- owner labels and stale objects ---------------------------------------------------------- */

void er_owner_init(er_owner *o)
{
    if (gethostname(o->hostname, sizeof(o->hostname) - 1) < 0)
        snprintf(o->hostname, sizeof(o->hostname), "unknown");
    o->pid = (long)getpid();
    o->start_ticks = er_process_start(o->pid);
    st_random_hex(o->run_id, 16);
}

void er_gen_owner_labels(yajl_gen g, const er_owner *o, const char *deadline, const char *batch)
{
    char num[64];
    yajl_gen_map_open(g);
    er_gen_kv(g, ER_LABEL_MANAGED, "1");
    er_gen_kv(g, ER_LABEL_HOST, o->hostname);
    snprintf(num, sizeof(num), "%ld", o->pid);
    er_gen_kv(g, ER_LABEL_PID, num);
    snprintf(num, sizeof(num), "%lld", o->start_ticks);
    er_gen_kv(g, ER_LABEL_START, num);
    er_gen_kv(g, ER_LABEL_RUN, o->run_id);
    if (deadline)
        er_gen_kv(g, ER_LABEL_DEADLINE, deadline);
    if (batch)
        er_gen_kv(g, ER_LABEL_BATCH, batch);
    yajl_gen_map_close(g);
}

const char *er_stale_reason(const er_owner *o, yajl_val labels, long long created, double max_age_s,
                            time_t began)
{
    if (created > (long long)began)
        return NULL; /* created after this cleanup began */
    const char *host = er_jstr(labels, ER_LABEL_HOST, NULL, NULL);
    const char *pid_s = er_jstr(labels, ER_LABEL_PID, NULL, NULL);
    const char *start_s = er_jstr(labels, ER_LABEL_START, NULL, NULL);
    const char *deadline_s = er_jstr(labels, ER_LABEL_DEADLINE, NULL, NULL);
    if (host && pid_s && start_s && strcmp(host, o->hostname) == 0) {
        long pid = strtol(pid_s, NULL, 10);
        long long start = strtoll(start_s, NULL, 10);
        long long now_start = pid > 0 ? er_process_start(pid) : -1;
        if (now_start >= 0 && now_start == start)
            return NULL; /* a live run's: never touched */
        return "its owner process is gone";
    }
    time_t now = time(NULL);
    if (deadline_s && strtoll(deadline_s, NULL, 10) < (long long)now)
        return "its deadline has passed";
    if (max_age_s > 0 && created > 0 && (double)(now - created) > max_age_s)
        return "it is older than max_age";
    return NULL;
}

/* ---- tar streams ----------------------------------------------------------------------------- */

void er_tar_args_init(er_tar_args *a, const st_project_info *pi)
{
    size_t ne = 0;
    a->n = a->nrel = 0;
    a->argv[a->n++] = "tar";
    a->argv[a->n++] = "-c";
    a->argv[a->n++] = "-f";
    a->argv[a->n++] = "-";
    a->argv[a->n++] = "-C";
    a->argv[a->n++] = "/";
    for (size_t i = 0; pi && pi->skip_dirs && pi->skip_dirs[i] && ne < 24; i++) {
        snprintf(a->excl[ne], sizeof(a->excl[ne]), "--exclude=%s", pi->skip_dirs[i]);
        a->argv[a->n++] = a->excl[ne++];
    }
    a->argv[a->n++] = "--exclude=__pycache__";
    a->argv[a->n] = NULL;
}

void er_tar_args_path(er_tar_args *a, const char *abs_path)
{
    if (a->nrel >= 3 || a->n + 1 >= sizeof(a->argv) / sizeof(a->argv[0]))
        return;
    snprintf(a->rel[a->nrel], sizeof(a->rel[a->nrel]), ".%s", abs_path);
    a->argv[a->n++] = a->rel[a->nrel++];
    a->argv[a->n] = NULL;
}

pid_t er_spawn_tar(const char *const *argv, int to_child, int *fd_out)
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
        if (to_child) {
            dup2(p[0], 0);
            if (devnull >= 0)
                dup2(devnull, 1);
        } else {
            dup2(p[1], 1);
            if (devnull >= 0)
                dup2(devnull, 0);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (to_child) {
        close(p[0]);
        *fd_out = p[1];
    } else {
        close(p[1]);
        *fd_out = p[0];
    }
    return pid;
}

int er_tar_status(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int er_put_archive(er_conn *c, void **h, const char *cid, int fd, pid_t pid, const char *root,
                   char *err, size_t errlen)
{
    char path[200];
    snprintf(path, sizeof(path), "%s/containers/%s/archive?path=/", c->api_prefix, cid);
    eh_request rq = {.method = "PUT",
                     .path = path,
                     .content_type = "application/x-tar",
                     .upload_fd = fd,
                     .timeout_s = 600};
    eh_response resp;
    int rc = eh_perform(&c->client, h, &rq, &resp, err, errlen);
    close(fd);
    int ts = er_tar_status(pid);
    if (rc == ST_OK && resp.status / 100 != 2) {
        er_http_error(&resp, "the engine refused the project upload", err, errlen);
        rc = ST_ERR_IO;
    } else if (rc == ST_OK && ts != 0) {
        snprintf(err, errlen, "tar of %s failed (status %d)", root, ts);
        rc = ST_ERR_IO;
    }
    eh_response_free(&resp);
    return rc;
}

/* ---- requests in flight and results ---------------------------------------------------------- */

void er_running_add(pthread_mutex_t *lock, er_running **list, er_running *r)
{
    pthread_mutex_lock(lock);
    r->next = *list;
    *list = r;
    pthread_mutex_unlock(lock);
}

void er_running_remove(pthread_mutex_t *lock, er_running **list, er_running *r)
{
    pthread_mutex_lock(lock);
    for (er_running **p = list; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    pthread_mutex_unlock(lock);
}

int er_running_cancelled(pthread_mutex_t *lock, er_running *r)
{
    pthread_mutex_lock(lock);
    int c = r->cancelled;
    pthread_mutex_unlock(lock);
    return c;
}

int er_infra(const er_conn *c, const char *label, st_exec_result *res, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof(res->error), fmt, ap);
    va_end(ap);
    res->infra_error = 1;
    c->host->log(c->self, ST_LOG_ERROR, "%s: %s", label, res->error);
    return rc == ST_OK ? ST_ERR_UNAVAILABLE : rc;
}

void er_sink_note(const st_exec_sink *sink, const char *fmt, ...)
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

void er_set_exit(st_exec_result *res, long long code)
{
    if (code > 128 && code < 128 + 65) {
        res->exited = 0;
        res->term_signal = (int)(code - 128);
    } else {
        res->exited = 1;
        res->exit_status = (int)code;
    }
}

void er_note_cleanup_failure(st_exec_result *res)
{
    if (ST_EXEC_RESULT_HAS(res, cleanup_failures))
        res->cleanup_failures++;
}
