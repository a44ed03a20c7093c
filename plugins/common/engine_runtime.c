/* SPDX-License-Identifier: MIT */
/* engine_runtime: one container per batch over a container engine's REST API, shared by
 * runtime-docker and runtime-podman (see engine_runtime.h and docs/containers.md). */
#include "config.h"

#include "engine_runtime.h"
#include "engine_util.h"

#include "engine_demux.h"
#include "engine_http.h"
#include "st_json.h"
#include "st_settings.h"
#include "st_time.h"

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
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct er_runtime {
    const er_flavor *fl;
    er_conn conn;          /* host, instance, client, API prefix and api_timeout */
    char host_source[300]; /* where the address came from, for messages */
    pthread_mutex_t lock;
    er_running *list;
    int negotiated;
    char libpod_prefix[48]; /* "/v4.0.0/libpod", "" when the engine has no libpod API */
    /* settings */
    const char *image, *python, *network, *api_version;
    char user[64];
    long long memory_bytes, pids_limit;
    double cpus, max_age_s;
    int max_age_set; /* container.max_age given: it wins over the core's max_age */
    const char *const *passthrough;
    const char *const *ssh_options; /* "Key=Value", each passed as -o to ssh */
    int offline;
    int init; /* run an init (docker-init / catatonit) as PID 1 */
    int copy; /* transfer = "copy": upload the tree, copy results out (remote engines) */
    int user_differs; /* user is not the invoking uid:gid */
    const char *image_tar;
    char image_id[160]; /* the image's id as prepare() last saw it, "" when unknown */
    er_owner owner;     /* owner identity, for the labels and cleanup */
    /* ssh:// forward */
    pid_t ssh_pid;
    char ssh_dir[256];
} er_runtime;

static const char *const known_keys[] = {
    "image", "python", "memory", "pids_limit", "cpus", "user", "network", "env_passthrough",
    "max_age", "host", "api_version", "image_tar", "api_timeout", "init", "ssh_options", "transfer",
    "hosts", "workers", NULL};

/* ---- small helpers -------------------------------------------------------------------------- */


long long er_parse_memory(const char *s)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -1;
    double mult = 1;
    if (*end) {
        switch (tolower((unsigned char)*end)) {
        case 'b': mult = 1; break;
        case 'k': mult = 1024.0; break;
        case 'm': mult = 1024.0 * 1024; break;
        case 'g': mult = 1024.0 * 1024 * 1024; break;
        case 't': mult = 1024.0 * 1024 * 1024 * 1024; break;
        default: return -1;
        }
        end++;
        if (*end == 'b' || *end == 'B')
            end++;
        if (*end)
            return -1;
    }
    double bytes = v * mult;
    if (bytes > 9.0e18)
        return -1;
    return (long long)bytes;
}

long long er_process_start(long pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    if (!p)
        return -1;
    p++;
    /* after ")" come fields 3, 4, ...: field 22 is the 20th of them */
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return -1;
    }
    return strtoll(p + 1, NULL, 10);
}

int er_env_allowed(const char *entry, const char *const *passthrough)
{
    const char *eq = strchr(entry, '=');
    if (!eq || eq == entry)
        return 0;
    size_t nl = (size_t)(eq - entry);
    if (nl == 10 && strncmp(entry, "PYTHONHOME", 10) == 0)
        return 0; /* a host path: it would break the image's interpreter */
    if (strncmp(entry, "SELF_TEST_", 10) == 0 || strncmp(entry, "SANDBOX_", 8) == 0 ||
        strncmp(entry, "PYTHON", 6) == 0)
        return 1;
    for (size_t i = 0; passthrough && passthrough[i]; i++)
        if (strlen(passthrough[i]) == nl && strncmp(entry, passthrough[i], nl) == 0)
            return 1;
    return 0;
}

static int truthy(const char *v)
{
    return v && (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
                 strcasecmp(v, "on") == 0);
}

/* ---- requests ------------------------------------------------------------------------------- */

static int api_call(er_runtime *rt, void **h, const char *method, const char *path,
                    const char *json_body, double timeout_s, eh_response *resp, char *err,
                    size_t errlen)
{
    return er_api_call(&rt->conn, h, method, path, json_body, timeout_s, 0, resp, err, errlen);
}

static int jbool(yajl_val obj, const char *k1, const char *k2)
{
    const char *path[] = {k1, k2, NULL};
    yajl_val v = yajl_tree_get(obj, path, yajl_t_any);
    return v && YAJL_IS_TRUE(v);
}

/* ---- API version negotiation ------------------------------------------------------------------ */

/* GET /_ping (then /version when the header is missing). Sets the prefixes. */
static int negotiate(er_runtime *rt, char *err, size_t errlen)
{
    pthread_mutex_lock(&rt->lock);
    int done = rt->negotiated;
    pthread_mutex_unlock(&rt->lock);
    if (done)
        return ST_OK;
    void *h = NULL;
    eh_response resp;
    char api[40] = "", libpod[48] = "";
    int rc = er_get_ping(&rt->conn, &h, 10, &resp, err, errlen);
    if (rc != ST_OK)
        goto out;
    if (rt->api_version)
        snprintf(api, sizeof(api), "%s", rt->api_version);
    else if (er_valid_api_version(resp.api_version))
        snprintf(api, sizeof(api), "%s", resp.api_version);
    if (resp.libpod_version[0] && isdigit((unsigned char)resp.libpod_version[0]))
        snprintf(libpod, sizeof(libpod), "/v%ld.0.0/libpod",
                 strtol(resp.libpod_version, NULL, 10)); /* a leading digit: the major */
    eh_response_free(&resp);
    if (!api[0]) {
        rc = api_call(rt, &h, "GET", "!/version", NULL, 10, &resp, err, errlen);
        if (rc != ST_OK)
            goto out;
        yajl_val v = resp.status == 200 ? er_parse_body(&resp) : NULL;
        const char *av = v ? er_jstr(v, "ApiVersion", NULL, NULL) : NULL;
        if (!er_valid_api_version(av)) {
            snprintf(err, errlen,
                     "the engine at %s did not say which API version it speaks "
                     "(GET /version answered HTTP %ld%s); set api_version in the container group",
                     rt->conn.client.display, resp.status, v ? "" : " without valid JSON");
            if (v)
                yajl_tree_free(v);
            rc = ST_ERR_UNAVAILABLE;
            goto out;
        }
        snprintf(api, sizeof(api), "%s", av);
        yajl_tree_free(v);
    }
    pthread_mutex_lock(&rt->lock);
    snprintf(rt->conn.api_prefix, sizeof(rt->conn.api_prefix), "/v%s", api);
    snprintf(rt->libpod_prefix, sizeof(rt->libpod_prefix), "%s", rt->fl->libpod ? libpod : "");
    rt->negotiated = 1;
    pthread_mutex_unlock(&rt->lock);
    rt->conn.host->log(rt->conn.self, ST_LOG_DEBUG, "engine %s: API %s%s%s",
                       rt->conn.client.display, api, libpod[0] ? ", libpod " : "",
                       libpod[0] ? libpod : "");
out:
    eh_response_free(&resp);
    eh_handle_free(&h);
    return rc;
}

/* ---- ssh:// engines: a forwarded local socket ------------------------------------------------ */

static int ssh_forward_start(er_runtime *rt, char *err, size_t errlen)
{
    const eh_address *a = &rt->conn.client.addr;
    const char *tmp = getenv("TMPDIR");
    snprintf(rt->ssh_dir, sizeof(rt->ssh_dir), "%s/selftest-ssh-%ld-XXXXXX",
             tmp && *tmp ? tmp : "/tmp", (long)getpid());
    if (!mkdtemp(rt->ssh_dir)) {
        snprintf(err, errlen, "cannot create a directory for the ssh forward: %s", strerror(errno));
        rt->ssh_dir[0] = '\0';
        return ST_ERR_IO;
    }
    snprintf(rt->conn.client.unix_path, sizeof(rt->conn.client.unix_path), "%s/engine.sock",
             rt->ssh_dir);
    const char *remote = a->path[0] ? a->path
                         : strcmp(rt->fl->name, "podman") == 0 ? "/run/podman/podman.sock"
                                                               : "/var/run/docker.sock";
    char fwd[512], port[16];
    snprintf(fwd, sizeof(fwd), "%s:%s", rt->conn.client.unix_path, remote);
    snprintf(port, sizeof(port), "%d", a->port);
    size_t n_extra = 0;
    while (rt->ssh_options && rt->ssh_options[n_extra])
        n_extra++;
    const char **argv = calloc(24 + 2 * n_extra, sizeof(*argv));
    if (!argv) {
        snprintf(err, errlen, "out of memory");
        return ST_ERR_NOMEM;
    }
    size_t n = 0;
    argv[n++] = "ssh";
    argv[n++] = "-N";
    argv[n++] = "-T";
    const char *opts[] = {"BatchMode=yes", "ExitOnForwardFailure=yes", "StreamLocalBindUnlink=yes",
                          "ServerAliveInterval=15", "ConnectTimeout=30"};
    for (size_t i = 0; i < 5; i++) {
        argv[n++] = "-o";
        argv[n++] = opts[i];
    }
    for (size_t i = 0; i < n_extra; i++) {
        argv[n++] = "-o";
        argv[n++] = rt->ssh_options[i];
    }
    if (a->user[0]) {
        argv[n++] = "-l";
        argv[n++] = a->user;
    }
    argv[n++] = "-p";
    argv[n++] = port;
    argv[n++] = "-L";
    argv[n++] = fwd;
    argv[n++] = "--";
    argv[n++] = a->host;
    argv[n] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "cannot fork ssh: %s", strerror(errno));
        free(argv);
        return ST_ERR_IO;
    }
    if (pid == 0) {
        setsid();
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        execvp("ssh", (char *const *)argv);
        _exit(127);
    }
    free(argv);
    rt->ssh_pid = pid;
    /* wait until the forwarded socket answers */
    double until = st_monotonic() + 35;
    while (st_monotonic() < until) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            rt->ssh_pid = 0;
            snprintf(err, errlen, "ssh to %s exited (status %d) before the forward was up: check "
                     "the login (BatchMode: keys or an agent only) and the remote socket %s",
                     a->host, WIFEXITED(status) ? WEXITSTATUS(status) : -1, remote);
            return ST_ERR_UNAVAILABLE;
        }
        if (access(rt->conn.client.unix_path, F_OK) == 0) {
            void *h = NULL;
            eh_response resp;
            char e2[256];
            int rc = api_call(rt, &h, "GET", "!/_ping", NULL, 5, &resp, e2, sizeof(e2));
            long st = resp.status;
            eh_response_free(&resp);
            eh_handle_free(&h);
            if (rc == ST_OK && st == 200)
                return ST_OK;
        }
        st_sleep(0.05);
    }
    snprintf(err, errlen, "the ssh forward to %s did not answer within 35 s", a->host);
    return ST_ERR_TIMEOUT;
}

static void ssh_forward_stop(er_runtime *rt)
{
    if (rt->ssh_pid > 0) {
        kill(rt->ssh_pid, SIGTERM);
        waitpid(rt->ssh_pid, NULL, 0);
        rt->ssh_pid = 0;
    }
    if (rt->ssh_dir[0]) {
        unlink(rt->conn.client.unix_path); /* ssh leaves it */
        rmdir(rt->ssh_dir);
        rt->ssh_dir[0] = '\0';
    }
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

/* The exit code in the engine's answer to wait: a bare integer (libpod) or {"StatusCode": n}.
 * Returns 0, or -1 when the answer is not JSON or holds no code. */
static int wait_reply_code(const eh_response *resp, long long *code)
{
    yajl_val v = er_parse_body(resp);
    *code = -1;
    if (v && YAJL_IS_INTEGER(v))
        *code = YAJL_GET_INTEGER(v);
    else if (v)
        er_jint(v, "StatusCode", NULL, NULL, code);
    if (v)
        yajl_tree_free(v);
    return v && *code >= 0 ? 0 : -1;
}

/* The "Id" of the engine's answer to container create, copied into id when it is a plain token
 * that fits. Returns 0, or -1. */
static int create_reply_id(const eh_response *resp, char *id, size_t idlen)
{
    yajl_val v = er_parse_body(resp);
    const char *s = v ? er_jstr(v, "Id", NULL, NULL) : NULL;
    int ok = s && er_safe_token(s, "") && strlen(s) < idlen;
    if (ok)
        snprintf(id, idlen, "%s", s);
    if (v)
        yajl_tree_free(v);
    return ok ? 0 : -1;
}

/* The engine's answer to container inspect after the wait: sets *oom, and *code when the
 * container exited with one. Returns 1 when the container never started (serr: the engine's
 * reason, "" if none), else 0 (also when the answer is not JSON: nothing is set then). */
static int inspect_reply_state(const eh_response *resp, long long *code, int *oom, char *serr,
                               size_t serrlen)
{
    int never_started = 0;
    serr[0] = '\0';
    yajl_val v = er_parse_body(resp);
    if (!v)
        return 0;
    const char *status = er_jstr(v, "State", "Status", NULL);
    const char *e = er_jstr(v, "State", "Error", NULL);
    long long ec;
    *oom = jbool(v, "State", "OOMKilled");
    if (status && strcmp(status, "created") == 0) {
        snprintf(serr, serrlen, "%s", e ? e : "");
        never_started = 1;
    } else if (er_jint(v, "State", "ExitCode", NULL, &ec) == 0 && status &&
               (strcmp(status, "exited") == 0 || strcmp(status, "stopped") == 0)) {
        *code = ec;
    }
    yajl_tree_free(v);
    return never_started;
}

static int read_settings(er_runtime *rt, const st_config_node *cfg, const char *addr_override,
                         const char *addr_where)
{
    const st_host *H = rt->conn.host;
    st_instance *S = rt->conn.self;
    const char *mem = NULL, *user = NULL, *host_url = NULL;
    rt->image = "python:3.11-slim";
    rt->python = "python3";
    rt->network = "none";
    rt->conn.api_timeout_s = 30;
    rt->max_age_s = 0;
    if (st_check_settings(rt->conn.host, rt->conn.self, cfg, known_keys, "container") != ST_OK)
        return -1;
    if (er_read_strings(&rt->conn, cfg, &rt->image, &rt->python, &rt->network, &mem, &user,
                        &host_url, &rt->api_version) < 0 ||
        H->cfg_string(S, cfg, "image_tar", &rt->image_tar) < 0 ||
        H->cfg_string_list(S, cfg, "env_passthrough", &rt->passthrough) < 0 ||
        H->cfg_string_list(S, cfg, "ssh_options", &rt->ssh_options) < 0)
        return -1;
    for (size_t i = 0; rt->ssh_options && rt->ssh_options[i]; i++) {
        const char *o = rt->ssh_options[i];
        if (!isalpha((unsigned char)o[0]) || !strchr(o, '=') || strchr(o, '\n'))
            return er_cfg_bad(&rt->conn, cfg, "ssh_options",
                              "each must be an ssh option \"Key=Value\"");
    }
    if (!er_safe_token(rt->image, "._-/:@"))
        return er_cfg_bad(&rt->conn, cfg, "image",
                          "must be an image reference like python:3.11-slim");
    if (!rt->python[0])
        return er_cfg_bad(&rt->conn, cfg, "python", "must not be empty");
    if (!er_safe_token(rt->network, "._-:"))
        return er_cfg_bad(&rt->conn, cfg, "network", "must be a network mode such as \"none\"");
    int differs = er_check_settings(&rt->conn, cfg, rt->api_version, mem, &rt->memory_bytes, user,
                                    rt->user, sizeof(rt->user), rt->passthrough);
    if (differs < 0)
        return -1;
    rt->user_differs = differs;
    rt->init = 1;
    if (H->cfg_bool(S, cfg, "init", &rt->init) < 0)
        return -1;
    if (er_read_limits(&rt->conn, cfg, &rt->pids_limit, &rt->cpus, &rt->max_age_s,
                       &rt->max_age_set) < 0)
        return -1;
    /* engine address: environment > config file > the engine's default socket (rootless podman:
     * the one in XDG_RUNTIME_DIR) */
    const char *url = rt->fl->default_sock;
    const char *run = getenv("XDG_RUNTIME_DIR");
    char xdg[200];
    if (strcmp(rt->fl->name, "podman") == 0 && getuid() != 0 && run && *run) {
        snprintf(xdg, sizeof(xdg), "unix://%s/podman/podman.sock", run);
        url = xdg;
    }
    eh_address addr;
    if (er_read_address(&rt->conn, cfg, rt->fl->host_env, host_url, url, addr_override, addr_where,
                        rt->host_source, sizeof(rt->host_source), &addr) < 0)
        return -1;
    eh_client_init(&rt->conn.client, &addr, getenv("DOCKER_CERT_PATH"));
    /* how the tree reaches the container: binds for a local engine, copies for a remote one */
    const char *transfer = NULL;
    if (H->cfg_string(S, cfg, "transfer", &transfer) < 0)
        return -1;
    if (transfer && strcmp(transfer, "bind") != 0 && strcmp(transfer, "copy") != 0)
        return er_cfg_bad(&rt->conn, cfg, "transfer", "must be \"bind\" or \"copy\"");
    rt->copy = transfer ? strcmp(transfer, "copy") == 0 : addr.scheme != EH_UNIX;
    /* offline image load: MENACE_OFFLINE_INSTALL=1 and MENACE_SELF_TEST_IMAGE_TAR (env > file) */
    const char *off = getenv("MENACE_OFFLINE_INSTALL");
    if (off && *off && !truthy(off) && strcmp(off, "0") != 0 && strcasecmp(off, "false") != 0 &&
        strcasecmp(off, "no") != 0 && strcasecmp(off, "off") != 0) {
        H->log(S, ST_LOG_ERROR, "MENACE_OFFLINE_INSTALL: '%s' is not a boolean (1/0, true/false, "
               "yes/no, on/off)", off);
        return -1;
    }
    rt->offline = truthy(off);
    const char *tar = getenv("MENACE_SELF_TEST_IMAGE_TAR");
    if (tar && *tar)
        rt->image_tar = tar;
    return 0;
}

int er_create(const er_flavor *fl, const st_host *host, st_instance *self,
              const st_config_node *cfg, void **ctx)
{
    return er_create_at(fl, host, self, cfg, NULL, NULL, ctx);
}

int er_create_at(const er_flavor *fl, const st_host *host, st_instance *self,
                 const st_config_node *cfg, const char *address, const char *where, void **ctx)
{
    er_runtime *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return ST_ERR_NOMEM;
    rt->fl = fl;
    rt->conn.host = host;
    rt->conn.self = self;
    pthread_mutex_init(&rt->lock, NULL);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        host->log(self, ST_LOG_ERROR, "cannot initialise libcurl");
        pthread_mutex_destroy(&rt->lock);
        free(rt);
        return ST_ERR_INTERNAL;
    }
    if (read_settings(rt, cfg, address, where) < 0) {
        er_destroy(rt);
        return ST_ERR_INVALID;
    }
    snprintf(rt->conn.api_prefix, sizeof(rt->conn.api_prefix), "/v%s",
             rt->api_version ? rt->api_version : "1.41");
    er_owner_init(&rt->owner);
    *ctx = rt;
    return ST_OK;
}

int er_stop(void *ctx)
{
    ssh_forward_stop(ctx);
    return ST_OK;
}

void er_destroy(void *ctx)
{
    er_runtime *rt = ctx;
    if (!rt)
        return;
    ssh_forward_stop(rt);
    pthread_mutex_destroy(&rt->lock);
    curl_global_cleanup();
    free(rt);
}

/* Connects (starting the ssh forward on first use) and negotiates the API version. */
static int ensure_engine(er_runtime *rt, char *err, size_t errlen)
{
    if (rt->conn.client.addr.scheme == EH_SSH) {
        pthread_mutex_lock(&rt->lock);
        int rc = ST_OK;
        if (rt->ssh_pid > 0 && waitpid(rt->ssh_pid, NULL, WNOHANG) == rt->ssh_pid) {
            rt->conn.host->log(rt->conn.self, ST_LOG_WARNING,
                               "the ssh forward to %s ended; starting it again",
                               rt->conn.client.addr.host);
            rt->ssh_pid = 0;
            ssh_forward_stop(rt);
        }
        if (rt->ssh_pid <= 0)
            rc = ssh_forward_start(rt, err, errlen);
        pthread_mutex_unlock(&rt->lock);
        if (rc != ST_OK)
            return rc;
    }
    return negotiate(rt, err, errlen);
}

int er_probe(void *ctx)
{
    er_runtime *rt = ctx;
    char err[512];
    int rc = ensure_engine(rt, err, sizeof(err));
    return er_probe_result(&rt->conn, rc, err, rt->host_source);
}

/* ---- prepare: the image ----------------------------------------------------------------------- */

/* Scans the JSON-lines progress body of image load / pull for errors and loaded names. */
typedef struct progress {
    char line[8192];
    size_t len;
    int overflow;
    char error[400];
    char loaded[400];
} progress;

static void progress_line(progress *p)
{
    p->line[p->len] = '\0';
    yajl_val v = st_json_tree_parse(p->line, NULL, 0);
    if (!v)
        return;
    const char *e = er_jstr(v, "error", NULL, NULL);
    if (!e)
        e = er_jstr(v, "errorDetail", "message", NULL);
    if (e && !p->error[0])
        snprintf(p->error, sizeof(p->error), "%s", e);
    const char *s = er_jstr(v, "stream", NULL, NULL);
    if (!s)
        s = er_jstr(v, "status", NULL, NULL);
    if (s && strncmp(s, "Loaded image", 12) == 0) {
        size_t l = strlen(p->loaded);
        snprintf(p->loaded + l, sizeof(p->loaded) - l, "%s%.*s", l ? ", " : "",
                 (int)strcspn(s, "\r\n"), s);
    }
    yajl_tree_free(v);
}

static void on_progress_data(void *opaque, const char *data, size_t len)
{
    progress *p = opaque;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') {
            if (!p->overflow && p->len)
                progress_line(p);
            p->len = 0;
            p->overflow = 0;
        } else if (p->len + 1 < sizeof(p->line)) {
            p->line[p->len++] = data[i];
        } else {
            p->overflow = 1;
        }
    }
}

/* 1 present, 0 missing, < 0 error. */
static int image_present(er_runtime *rt, void **h, char *err, size_t errlen)
{
    char enc[600], path[700];
    if (eh_urlencode(rt->image, enc, sizeof(enc)) < 0) {
        snprintf(err, errlen, "image name too long");
        return ST_ERR_INVALID;
    }
    snprintf(path, sizeof(path), "/images/%s/json", enc);
    eh_response resp;
    int rc = api_call(rt, h, "GET", path, NULL, 0, &resp, err, errlen);
    if (rc != ST_OK)
        return rc;
    if (resp.status == 200) {
        rc = 1;
        /* the id names the content: a rebuilt or retagged image has another one */
        yajl_val v = er_parse_body(&resp);
        const char *id = v ? er_jstr(v, "Id", NULL, NULL) : NULL;
        if (id && er_safe_token(id, ":") && strlen(id) < sizeof(rt->image_id))
            snprintf(rt->image_id, sizeof(rt->image_id), "%s", id);
        else
            rt->image_id[0] = '\0';
        if (v)
            yajl_tree_free(v);
    } else if (resp.status == 404)
        rc = 0;
    else {
        char what[700];
        snprintf(what, sizeof(what), "cannot inspect image %s", rt->image);
        er_http_error(&resp, what, err, errlen);
        rc = ST_ERR_UNAVAILABLE;
    }
    eh_response_free(&resp);
    return rc;
}

static int load_image(er_runtime *rt, void **h, char *err, size_t errlen)
{
    int fd = open(rt->image_tar, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "MENACE_SELF_TEST_IMAGE_TAR: cannot open %s: %s", rt->image_tar,
                 strerror(errno));
        return ST_ERR_INVALID;
    }
    progress *p = calloc(1, sizeof(*p));
    if (!p) {
        close(fd);
        return ST_ERR_NOMEM;
    }
    char path[80];
    snprintf(path, sizeof(path), "%s/images/load?quiet=1", rt->conn.api_prefix);
    eh_request rq = {.method = "POST", .path = path, .content_type = "application/x-tar",
                     .upload_fd = fd, .timeout_s = 900, .on_data = on_progress_data, .opaque = p};
    eh_response resp;
    rt->conn.host->log(rt->conn.self, ST_LOG_INFO, "loading image %s from %s (offline mode)",
                       rt->image, rt->image_tar);
    int rc = eh_perform(&rt->conn.client, h, &rq, &resp, err, errlen);
    close(fd);
    if (rc == ST_OK) {
        if (resp.status / 100 != 2) {
            char what[600];
            snprintf(what, sizeof(what), "the engine refused the image tarball %s", rt->image_tar);
            er_http_error(&resp, what, err, errlen);
            rc = ST_ERR_INVALID;
        } else {
            if (p->len && !p->overflow)
                progress_line(p);
            if (p->error[0]) {
                snprintf(err, errlen, "loading the image tarball %s failed: %s", rt->image_tar,
                         p->error);
                rc = ST_ERR_INVALID;
            }
        }
    }
    if (rc == ST_OK && p->loaded[0])
        rt->conn.host->log(rt->conn.self, ST_LOG_INFO, "%s", p->loaded);
    eh_response_free(&resp);
    free(p);
    return rc;
}

static int pull_image(er_runtime *rt, void **h, char *err, size_t errlen)
{
    char repo[512], tag[160] = "", erepo[1600], etag[500], path[2200];
    snprintf(repo, sizeof(repo), "%s", rt->image);
    char *slash = strrchr(repo, '/');
    char *colon = strrchr(repo, ':');
    if (!strchr(repo, '@') && colon && (!slash || colon > slash)) {
        *colon = '\0';
        snprintf(tag, sizeof(tag), "%s", colon + 1);
    }
    if (eh_urlencode(repo, erepo, sizeof(erepo)) < 0 || eh_urlencode(tag, etag, sizeof(etag)) < 0)
        return ST_ERR_INVALID;
    snprintf(path, sizeof(path), "%s/images/create?fromImage=%s%s%s", rt->conn.api_prefix, erepo,
             tag[0] ? "&tag=" : "", etag);
    progress *p = calloc(1, sizeof(*p));
    if (!p)
        return ST_ERR_NOMEM;
    rt->conn.host->log(rt->conn.self, ST_LOG_INFO, "pulling image %s", rt->image);
    eh_request rq = {.method = "POST", .path = path, .timeout_s = 900,
                     .on_data = on_progress_data, .opaque = p};
    eh_response resp;
    int rc = eh_perform(&rt->conn.client, h, &rq, &resp, err, errlen);
    if (rc == ST_OK && resp.status / 100 != 2) {
        char what[600];
        snprintf(what, sizeof(what), "cannot pull image %s", rt->image);
        er_http_error(&resp, what, err, errlen);
        rc = ST_ERR_UNAVAILABLE;
    } else if (rc == ST_OK) {
        if (p->len && !p->overflow)
            progress_line(p);
        if (p->error[0]) {
            snprintf(err, errlen, "cannot pull image %s: %s", rt->image, p->error);
            rc = ST_ERR_UNAVAILABLE;
        }
    }
    eh_response_free(&resp);
    free(p);
    return rc;
}

int er_prepare(void *ctx)
{
    er_runtime *rt = ctx;
    char err[700] = "";
    void *h = NULL;
    rt->image_id[0] = '\0';
    int rc = ensure_engine(rt, err, sizeof(err));
    if (rc != ST_OK)
        goto out;
    rc = image_present(rt, &h, err, sizeof(err));
    if (rc < 0)
        goto out;
    if (rc == 1) {
        rc = ST_OK;
        goto out;
    }
    if (rt->offline) {
        if (!rt->image_tar) {
            snprintf(err, sizeof(err), "image %s is missing and offline mode is on "
                     "(MENACE_OFFLINE_INSTALL): set MENACE_SELF_TEST_IMAGE_TAR (or image_tar) to "
                     "a tarball of the image; nothing is pulled offline", rt->image);
            rc = ST_ERR_UNAVAILABLE;
            goto out;
        }
        rc = load_image(rt, &h, err, sizeof(err));
    } else {
        rc = pull_image(rt, &h, err, sizeof(err));
    }
    if (rc != ST_OK)
        goto out;
    rc = image_present(rt, &h, err, sizeof(err));
    if (rc == 0) {
        snprintf(err, sizeof(err), "image %s is still missing after %s", rt->image,
                 rt->offline ? "loading the tarball (does it hold that name and tag?)"
                             : "the pull");
        rc = ST_ERR_UNAVAILABLE;
    } else if (rc == 1) {
        rc = ST_OK;
    }
out:
    if (rc != ST_OK)
        rt->conn.host->log(rt->conn.self, ST_LOG_ERROR, "%s", err);
    eh_handle_free(&h);
    return rc == ST_OK ? ST_OK : (rc == ST_ERR_INVALID ? ST_ERR_INVALID : ST_ERR_UNAVAILABLE);
}

int er_environment_id(void *ctx, char *buf, size_t len)
{
    er_runtime *rt = ctx;
    if (!rt->image_id[0])
        return ST_ERR_UNAVAILABLE; /* prepare() did not learn it */
    int n = snprintf(buf, len, "image=%s image_name=%s container_python=%s user=%s",
                     rt->image_id, rt->image, rt->python ? rt->python : "", rt->user);
    return n > 0 && (size_t)n < len ? ST_OK : ST_ERR_INVALID;
}

/* ---- execute -------------------------------------------------------------------------------- */

static char *create_body(er_runtime *rt, const st_exec_request *req, const char *deadline)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        return NULL;
    yajl_gen_map_open(g);
    er_gen_kv(g, "Image", rt->image);
    er_gen_str(g, "Cmd");
    er_gen_command(g, rt->python, req->argv); /* nothing may write into the read-only tree */
    er_gen_str(g, "Entrypoint");
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);
    /* an import check runs in an empty writable directory, as on the host (its sandbox dir):
     * in the project root its "." would collect the project's own tests, and the module could
     * not write beside itself; the output dir is mounted (or copied) writable and holds only
     * the results */
    er_gen_kv(g, "WorkingDir",
              req->sandboxed && req->output_dir && req->output_dir[0] ? req->output_dir
              : req->workdir                                          ? req->workdir
                                                                      : req->project_root);
    er_gen_kv(g, "User", rt->user);
    er_gen_str(g, "Tty");
    yajl_gen_bool(g, 0);
    er_gen_str(g, "AttachStdin");
    yajl_gen_bool(g, 0);
    er_gen_str(g, "OpenStdin");
    yajl_gen_bool(g, 0);
    er_gen_str(g, "Env");
    /* allowed host variables, then the request's (which win), then PYTHONDONTWRITEBYTECODE */
    yajl_gen_array_open(g);
    er_gen_env_items(g, req, rt->passthrough, NULL);
    yajl_gen_array_close(g);
    er_gen_str(g, "Labels");
    er_gen_owner_labels(g, &rt->owner, deadline, req->id ? req->id : "");
    er_gen_str(g, "HostConfig");
    yajl_gen_map_open(g);
    er_gen_str(g, "Mounts");
    yajl_gen_array_open(g);
    const char *paths[3] = {req->project_root, req->support_dir, req->output_dir};
    const int ro[3] = {1, 1, 0};
    for (int i = 0; i < 3 && !rt->copy; i++) {
        int dup = !paths[i] || !*paths[i];
        for (int j = 0; j < i && !dup; j++)
            dup = paths[j] && strcmp(paths[i], paths[j]) == 0;
        if (!dup)
            er_gen_mount(g, paths[i], ro[i]);
    }
    yajl_gen_array_close(g);
    er_gen_kv(g, "NetworkMode", rt->network);
    if (rt->memory_bytes > 0) {
        er_gen_str(g, "Memory");
        yajl_gen_integer(g, rt->memory_bytes);
        er_gen_str(g, "MemorySwap");
        yajl_gen_integer(g, rt->memory_bytes);
    }
    if (rt->pids_limit > 0) {
        er_gen_str(g, "PidsLimit");
        yajl_gen_integer(g, rt->pids_limit);
    }
    if (rt->cpus > 0) {
        er_gen_str(g, "NanoCpus");
        yajl_gen_integer(g, (long long)(rt->cpus * 1e9));
    }
    er_gen_str(g, "AutoRemove");
    yajl_gen_bool(g, 0);
    /* pytest must not be PID 1: PID 1 ignores signals it has no handler for (a test killing
     * itself with SIGSEGV would pass), and nothing would reap xdist's zombies */
    er_gen_str(g, "Init");
    yajl_gen_bool(g, rt->init);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    return er_gen_finish(g);
}

/* Returns ST_OK when the engine answered (any status), else the transport error, err filled. */
static int kill_container_err(er_runtime *rt, void **h, const char *cid, char *err, size_t errlen)
{
    char path[200];
    eh_response resp;
    snprintf(path, sizeof(path), "/containers/%s/kill?signal=KILL", cid);
    /* 409 (Docker) / 500 (Podman) when it is no longer running: fine */
    int rc = api_call(rt, h, "POST", path, NULL, 5, &resp, err, errlen);
    eh_response_free(&resp);
    return rc;
}

static void kill_container(er_runtime *rt, void **h, const char *cid)
{
    char err[300];
    kill_container_err(rt, h, cid, err, sizeof(err));
}

/* Waits for the container to exit, up to timeout_s. Returns ST_OK with *code set, ST_ERR_TIMEOUT,
 * or another status with err filled (the engine went away, an error answer). */
static int wait_container(er_runtime *rt, void **h, const char *cid, double timeout_s, long long *code,
                          char *err, size_t errlen)
{
    char path[300];
    eh_response resp;
    if (rt->libpod_prefix[0])
        snprintf(path, sizeof(path),
                 "!%s/containers/%s/wait?condition=stopped&condition=exited&interval=20ms",
                 rt->libpod_prefix, cid);
    else
        snprintf(path, sizeof(path), "/containers/%s/wait?condition=not-running", cid);
    int rc = api_call(rt, h, "POST", path, NULL, timeout_s, &resp, err, errlen);
    if (rc == ST_OK) {
        if (resp.status != 200) {
            er_http_error(&resp, "waiting for the container failed", err, errlen);
            rc = resp.status == 404 ? ST_ERR_CANCELLED : ST_ERR_IO;
        } else {
            if (wait_reply_code(&resp, code) < 0) {
                snprintf(err, errlen, "the engine's answer to wait is not valid JSON");
                rc = ST_ERR_IO;
            }
        }
    }
    eh_response_free(&resp);
    return rc;
}

typedef struct log_ctx {
    const st_exec_sink *sink;
} log_ctx;

static void on_log_frame(void *opaque, int stream, const char *data, size_t len)
{
    log_ctx *lc = opaque;
    if (lc->sink && lc->sink->output)
        lc->sink->output(lc->sink->opaque, stream == 2 ? ST_STREAM_STDERR : ST_STREAM_STDOUT, data,
                         len);
}

static int read_logs(er_runtime *rt, void **h, const char *cid, const st_exec_sink *sink,
                     char *err, size_t errlen)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/containers/%s/logs?stdout=1&stderr=1", rt->conn.api_prefix,
             cid);
    log_ctx lc = {sink};
    return er_stream_logs(&rt->conn, h, path, 60, on_log_frame, &lc,
                          "cannot read the container's output", err, errlen);
}

/* DELETE ?force=1&v=1, tried twice. */
/* Returns 0, or -1 when the container is still there (logged). */
static int remove_container(er_runtime *rt, void **h, const char *cid, const char *label)
{
    char path[200], err[400] = "";
    snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", cid);
    for (int attempt = 0; attempt < 2; attempt++) {
        eh_response resp;
        int rc = api_call(rt, h, "DELETE", path, NULL, 15, &resp, err, sizeof(err));
        long st = resp.status;
        if (rc == ST_OK && st / 100 != 2 && st != 404)
            er_http_error(&resp, "remove failed", err, sizeof(err));
        eh_response_free(&resp);
        if (rc == ST_OK && (st / 100 == 2 || st == 404))
            return 0;
        if (rc == ST_ERR_UNAVAILABLE)
            break; /* the engine is gone: nothing to retry */
        st_sleep(0.2);
    }
    rt->conn.host->log(
        rt->conn.self, ST_LOG_WARNING,
        "%s: could not remove container %.12s (%s); `selftest-core cleanup` removes it later",
        label, cid, err);
    return -1;
}

typedef struct exec_state {
    er_runtime *rt;
    const st_exec_request *req;
    const st_exec_sink *sink;
    st_exec_result *res;
    void *h;
    er_running reg;
    double t0;
} exec_state;

/* The batch's infrastructure error (er_infra), logged with its label. */
#define infra(x, rc, ...) er_infra(&(x)->rt->conn, (x)->req->label, (x)->res, rc, __VA_ARGS__)

/* ---- transfer = "copy": the tree goes in and the results come out as tar streams ---------- */

/* PUT /containers/{id}/archive?path=/ with the project root (without the skip dirs), the
 * support dir and the empty output dir, at their host paths. */
static int upload_tree(exec_state *x)
{
    er_runtime *rt = x->rt;
    const st_exec_request *req = x->req;
    const st_project_info *pi =
        rt->conn.host->project ? rt->conn.host->project(rt->conn.self) : NULL;
    /* "./tmp/x" (er_tar_args), so that no name can pass for an option ("--" would end the
     * options and turn --no-recursion into a file name) */
    er_tar_args a;
    er_tar_args_init(&a, pi);
    er_tar_args_path(&a, req->project_root);
    if (req->support_dir && strcmp(req->support_dir, req->project_root) != 0)
        er_tar_args_path(&a, req->support_dir);
    a.argv[a.n++] = "--no-recursion";
    er_tar_args_path(&a, req->output_dir);
    int fd = -1;
    pid_t pid = er_spawn_tar(a.argv, 0, &fd);
    if (pid < 0)
        return infra(x, ST_ERR_IO, "cannot run tar to upload the project: %s", strerror(errno));
    char err[400];
    int rc = er_put_archive(&rt->conn, &x->h, x->reg.container, fd, pid, req->project_root, err,
                            sizeof(err));
    if (rc != ST_OK)
        return infra(x, rc, "cannot upload the project into container %s: %s", x->res->container,
                     err);
    return ST_OK;
}

typedef struct sink_fd {
    int fd;
    int failed;
} sink_fd;

static void on_archive_data(void *opaque, const char *data, size_t len)
{
    sink_fd *s = opaque;
    while (len > 0 && !s->failed) {
        ssize_t w = write(s->fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            s->failed = 1;
            return;
        }
        data += w;
        len -= (size_t)w;
    }
}

/* GET /containers/{id}/archive?path=<output dir>, extracted next to the host's output dir. */
static int copy_results_out(exec_state *x)
{
    er_runtime *rt = x->rt;
    const char *out = x->req->output_dir;
    char parent[4096], enc[4096 * 3], path[13000], err[400];
    snprintf(parent, sizeof(parent), "%s", out);
    char *slash = strrchr(parent, '/');
    if (!slash || slash == parent)
        return infra(x, ST_ERR_INVALID, "output dir %s has no parent", out);
    *slash = '\0';
    if (eh_urlencode(out, enc, sizeof(enc)) < 0)
        return infra(x, ST_ERR_INVALID, "output dir path too long");
    snprintf(path, sizeof(path), "%s/containers/%s/archive?path=%s", rt->conn.api_prefix,
             x->reg.container, enc);
    const char *argv[] = {"tar", "-x", "-f", "-", "--no-same-owner", "-C", parent, NULL};
    int fd = -1;
    pid_t pid = er_spawn_tar(argv, 1, &fd);
    if (pid < 0)
        return infra(x, ST_ERR_IO, "cannot run tar to copy the results out: %s", strerror(errno));
    sink_fd sf = {fd, 0};
    eh_request rq = {.method = "GET", .path = path, .timeout_s = 600, .on_data = on_archive_data,
                     .opaque = &sf};
    eh_response resp;
    int rc = eh_perform(&rt->conn.client, &x->h, &rq, &resp, err, sizeof(err));
    close(fd);
    int ts = er_tar_status(pid);
    if (rc == ST_OK && resp.status != 200) {
        snprintf(err, sizeof(err), "HTTP %ld", resp.status);
        rc = ST_ERR_IO;
    } else if (rc == ST_OK && (ts != 0 || sf.failed)) {
        snprintf(err, sizeof(err), "tar -x into %s failed (status %d)", parent, ts);
        rc = ST_ERR_IO;
    }
    eh_response_free(&resp);
    if (rc != ST_OK)
        return infra(x, rc, "cannot copy the results out of container %s: %s",
                     x->res->container, err);
    return ST_OK;
}

/* Creates the container; fills reg.container. */
static int do_create(exec_state *x)
{
    er_runtime *rt = x->rt;
    char name[48], path[120], err[400], deadline[32];
    char cname[16 + 33];
    st_random_hex(name, 32);
    snprintf(cname, sizeof(cname), "selftest_%s", name);
    snprintf(deadline, sizeof(deadline), "%lld",
             (long long)time(NULL) + (long long)(x->req->timeout_s + 120));
    char *body = create_body(rt, x->req, deadline);
    if (!body)
        return infra(x, ST_ERR_NOMEM, "out of memory building the container request");
    snprintf(path, sizeof(path), "/containers/create?name=%s", cname);
    eh_response resp;
    int rc = api_call(rt, &x->h, "POST", path, body, 0, &resp, err, sizeof(err));
    free(body);
    if (rc != ST_OK) {
        eh_response_free(&resp);
        return infra(x, rc, "cannot create a container: %s", err);
    }
    if (resp.status != 201 && resp.status != 200) {
        char what[200];
        snprintf(what, sizeof(what), "cannot create a container from image %s", rt->image);
        er_http_error(&resp, what, err, sizeof(err));
        eh_response_free(&resp);
        return infra(x, ST_ERR_UNAVAILABLE, "%s", err);
    }
    char id[sizeof(x->reg.container)];
    if (create_reply_id(&resp, id, sizeof(id)) < 0) {
        eh_response_free(&resp);
        /* the container may exist under its name: remove it by name */
        if (remove_container(rt, &x->h, cname, x->req->label) < 0)
            er_note_cleanup_failure(x->res);
        return infra(x, ST_ERR_IO, "the engine's answer to container create has no valid Id "
                     "(not JSON?)");
    }
    pthread_mutex_lock(&rt->lock);
    snprintf(x->reg.container, sizeof(x->reg.container), "%s", id);
    pthread_mutex_unlock(&rt->lock);
    snprintf(x->res->container, sizeof(x->res->container), "%s", cname);
    eh_response_free(&resp);
    return ST_OK;
}

static int do_start(exec_state *x)
{
    char path[200], err[400];
    eh_response resp;
    snprintf(path, sizeof(path), "/containers/%s/start", x->reg.container);
    int rc = api_call(x->rt, &x->h, "POST", path, NULL, 0, &resp, err, sizeof(err));
    if (rc == ST_OK && resp.status != 204 && resp.status != 304) {
        er_http_error(&resp, "cannot start the container", err, sizeof(err));
        rc = ST_ERR_UNAVAILABLE;
    } else if (rc != ST_OK) {
        char tmp[400];
        snprintf(tmp, sizeof(tmp), "cannot start the container: %s", err);
        snprintf(err, sizeof(err), "%s", tmp);
    }
    eh_response_free(&resp);
    if (rc != ST_OK)
        return infra(x, rc, "%s", err);
    return ST_OK;
}

/* After the wait: the container's state (start errors, OOM kills). Returns 0, or -1 when the
 * container never ran (infra error set). */
static int inspect_state(exec_state *x, long long *code, int *oom)
{
    char path[200], err[400];
    eh_response resp;
    snprintf(path, sizeof(path), "/containers/%s/json", x->reg.container);
    int rc = api_call(x->rt, &x->h, "GET", path, NULL, 0, &resp, err, sizeof(err));
    int out = 0;
    if (rc != ST_OK) {
        infra(x, rc, "lost the engine after the container ended: %s", err);
        out = -1;
    } else if (resp.status == 200) {
        char serr[300];
        if (inspect_reply_state(&resp, code, oom, serr, sizeof(serr)) == 1) {
            infra(x, ST_ERR_UNAVAILABLE, "the container did not start%s%s", *serr ? ": " : "",
                  serr);
            out = -1;
        }
    }
    eh_response_free(&resp);
    return out;
}

/* The kill loop of gitlab-runner: SIGKILL every second, with a wait open, until it returns.
 * An engine that has answered no kill for the API timeout is hung: give up then (the container
 * is left to `cleanup`) rather than go on for 30 rounds of request timeouts. */
static int kill_until_exit(exec_state *x, long long *code, char *err, size_t errlen)
{
    double give_up = st_monotonic() + x->rt->conn.api_timeout_s;
    for (int attempt = 0; attempt < 30; attempt++) {
        char kerr[300];
        int krc = kill_container_err(x->rt, &x->h, x->reg.container, kerr, sizeof(kerr));
        if (krc != ST_OK && st_monotonic() >= give_up) {
            snprintf(err, errlen, "the engine answered no kill request for %gs (api_timeout): %s",
                     x->rt->conn.api_timeout_s, kerr);
            return ST_ERR_TIMEOUT;
        }
        int rc = wait_container(x->rt, &x->h, x->reg.container, 1.0, code, err, errlen);
        if (rc != ST_ERR_TIMEOUT)
            return rc;
    }
    snprintf(err, errlen, "the container did not stop after 30 SIGKILLs");
    return ST_ERR_TIMEOUT;
}

int er_execute(void *ctx, const st_exec_request *req, const st_exec_sink *sink,
               st_exec_result *res)
{
    er_runtime *rt = ctx;
    exec_state x = {.rt = rt, .req = req, .sink = sink, .res = res, .t0 = st_monotonic()};
    char err[500];
    int rc;
    long long code = -1;
    int oom = 0;
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
    if (!rt->copy && rt->user_differs && chmod(req->output_dir, 0777) < 0) {
        /* the configured user must be able to write the results; the output dir lies in the
         * core's private (0700) work dir, so this opens it to nobody else on the host */
        rc = infra(&x, ST_ERR_IO, "cannot open the output dir %s to user %s: %s",
                   req->output_dir, rt->user, strerror(errno));
        goto out;
    }
    rc = do_create(&x);
    if (rc != ST_OK)
        goto out;
    if (er_running_cancelled(&rt->lock, &x.reg)) {
        res->cancelled = 1;
        goto remove;
    }
    if (rt->copy && (rc = upload_tree(&x)) != ST_OK)
        goto remove;
    rc = do_start(&x);
    if (rc != ST_OK)
        goto remove;
    /* cancel() came while it started: its kill may have missed */
    if (er_running_cancelled(&rt->lock, &x.reg))
        kill_container(rt, &x.h, x.reg.container);
    rc = wait_container(rt, &x.h, x.reg.container, req->timeout_s, &code, err, sizeof(err));
    if (rc == ST_ERR_TIMEOUT) {
        res->timed_out = 1;
        rt->conn.host->log(rt->conn.self, ST_LOG_WARNING,
                           "%s: timeout after %gs, killing container %s", req->label,
                           req->timeout_s, res->container);
        er_sink_note(sink, "[selftest-core] timeout after %gs: container %s killed", req->timeout_s,
                     res->container);
        rc = kill_until_exit(&x, &code, err, sizeof(err));
    }
    if (rc == ST_ERR_CANCELLED) {
        /* 404: the container disappeared (removed from outside) */
        rc = ST_OK;
        er_sink_note(sink, "[selftest-core] container %s was removed from outside while it ran",
                     res->container);
        res->exited = 0;
        res->term_signal = SIGKILL;
        goto remove;
    }
    if (rc != ST_OK) {
        if (res->timed_out && rc == ST_ERR_TIMEOUT)
            rc = infra(&x, rc, "container %s did not stop after the timeout: %s", res->container,
                       err);
        else
            rc = infra(&x, rc, "lost the engine while container %s ran: %s", res->container, err);
        goto remove;
    }
    if (inspect_state(&x, &code, &oom) < 0) {
        rc = ST_ERR_UNAVAILABLE;
        goto remove;
    }
    if (read_logs(rt, &x.h, x.reg.container, sink, err, sizeof(err)) != ST_OK) {
        rc = infra(&x, ST_ERR_IO, "%s", err);
        goto remove;
    }
    if (rt->copy && (rc = copy_results_out(&x)) != ST_OK)
        goto remove;
    er_set_exit(res, code);
    if (er_running_cancelled(&rt->lock, &x.reg))
        res->cancelled = 1;
    if (oom) {
        er_sink_note(sink,
                     "[selftest-core] container %s was killed: out of memory (memory limit %lld "
                     "bytes)",
                     res->container, rt->memory_bytes);
        rt->conn.host->log(rt->conn.self, ST_LOG_WARNING, "%s: container %s was OOM-killed",
                           req->label, res->container);
    } else if (!res->timed_out && !res->cancelled && res->term_signal == SIGKILL) {
        er_sink_note(sink,
                     "[selftest-core] container %s was killed (SIGKILL) from outside "
                     "selftest-core",
                     res->container);
        rt->conn.host->log(rt->conn.self, ST_LOG_WARNING,
                           "%s: container %s was killed from outside", req->label, res->container);
    }
remove:
    if (x.reg.container[0] && remove_container(rt, &x.h, x.reg.container, req->label) < 0)
        er_note_cleanup_failure(res);
out:
    er_running_remove(&rt->lock, &rt->list, &x.reg);
    eh_handle_free(&x.h);
    res->wall_s = st_monotonic() - x.t0;
    if (ST_EXEC_RESULT_HAS(res, engine))
        snprintf(res->engine, sizeof(res->engine), "%s", rt->conn.client.display);
    return res->infra_error ? (rc != ST_OK ? rc : ST_ERR_UNAVAILABLE) : ST_OK;
}

int er_cancel(void *ctx, const char *id)
{
    er_runtime *rt = ctx;
    char cids[16][80];
    size_t n = 0;
    pthread_mutex_lock(&rt->lock);
    for (er_running *r = rt->list; r; r = r->next)
        if (id && r->id && strcmp(r->id, id) == 0) {
            r->cancelled = 1;
            if (r->container[0] && n < 16)
                snprintf(cids[n++], sizeof(cids[0]), "%s", r->container);
        }
    pthread_mutex_unlock(&rt->lock);
    void *h = NULL;
    for (size_t i = 0; i < n; i++)
        kill_container(rt, &h, cids[i]);
    eh_handle_free(&h);
    return ST_OK;
}

/* ---- cleanup_stale ---------------------------------------------------------------------------- */

static int cleanup_list(er_runtime *rt, double max_age_s, int own_run, st_cleanup_report *report);

int er_ping(void *ctx, double timeout_s, char *err, size_t errlen)
{
    er_runtime *rt = ctx;
    void *h = NULL;
    eh_response resp;
    int rc = ST_OK;
    if (rt->conn.client.addr.scheme == EH_SSH)
        rc = ensure_engine(rt, err, errlen);
    if (rc == ST_OK) {
        rc = er_get_ping(&rt->conn, &h, timeout_s, &resp, err, errlen);
        eh_response_free(&resp);
    }
    eh_handle_free(&h);
    return rc;
}

long er_engine_cpus(void *ctx)
{
    er_runtime *rt = ctx;
    char err[300];
    void *h = NULL;
    eh_response resp;
    long cpus = -1;
    if (ensure_engine(rt, err, sizeof(err)) != ST_OK)
        return -1;
    if (api_call(rt, &h, "GET", "/info", NULL, 0, &resp, err, sizeof(err)) == ST_OK) {
        yajl_val v = resp.status == 200 ? er_parse_body(&resp) : NULL;
        long long n = 0;
        if (v && er_jint(v, "NCPU", NULL, NULL, &n) == 0 && n > 0)
            cpus = (long)n;
        if (v)
            yajl_tree_free(v);
        eh_response_free(&resp);
    }
    eh_handle_free(&h);
    return cpus;
}

const char *er_address(void *ctx)
{
    er_runtime *rt = ctx;
    return rt->conn.client.display;
}

/* Why a listed container may go, or NULL when it must stay. */
static const char *stale_reason(er_runtime *rt, yajl_val c, double max_age_s, time_t began)
{
    const char *labels_path[] = {"Labels", NULL};
    long long created = 0;
    er_jint(c, "Created", NULL, NULL, &created);
    return er_stale_reason(&rt->owner, yajl_tree_get(c, labels_path, yajl_t_object), created,
                           max_age_s, began);
}

/* A DELETE answered 409 because the engine is already removing the container (Docker, when it
 * resumes after a hang and serves the DELETE a run sent meanwhile: "removal of container ... is
 * already in progress"). */
static int removal_in_progress(const eh_response *resp)
{
    return resp->status == 409 && resp->body && strstr(resp->body, "already in progress");
}

/* Waits, at most api_timeout, for a removal already in progress to end. Returns 1 when the
 * container is gone, 0 when it is still there (err says why). */
static int wait_removal(er_runtime *rt, void **h, const char *id, char *err, size_t errlen)
{
    char path[200];
    snprintf(path, sizeof(path), "/containers/%s/json", id);
    double give_up = st_monotonic() + rt->conn.api_timeout_s;
    for (;;) {
        eh_response r;
        int rc = api_call(rt, h, "GET", path, NULL, 0, &r, err, errlen);
        long st = r.status;
        eh_response_free(&r);
        if (rc == ST_OK && st == 404)
            return 1;
        if (rc != ST_OK)
            return 0;
        if (st_monotonic() >= give_up)
            break;
        st_sleep(0.5);
    }
    snprintf(err, errlen,
             "its removal, already in progress in the engine, did not end within "
             "%gs (api_timeout)",
             rt->conn.api_timeout_s);
    return 0;
}

int er_cleanup_stale(void *ctx, double max_age_s, st_cleanup_report *report)
{
    return cleanup_list(ctx, max_age_s, 0, report);
}

int er_remove_run(void *ctx, st_cleanup_report *report)
{
    return cleanup_list(ctx, 0, 1, report);
}

/* Lists the managed containers (own_run: only this instance's, by its run label) and removes
 * the stale ones (own_run: all of them). */
static int cleanup_list(er_runtime *rt, double max_age_s, int own_run, st_cleanup_report *report)
{
    char err[500];
    void *h = NULL;
    eh_response resp = {0};
    yajl_val list = NULL;
    time_t began = time(NULL);
    int rc;
    if (rt->max_age_set || max_age_s <= 0)
        max_age_s = rt->max_age_s;
    report->listed = report->removed = report->failed = 0;
    rc = ensure_engine(rt, err, sizeof(err));
    if (rc != ST_OK) {
        report->failed++;
        rt->conn.host->log(rt->conn.self, ST_LOG_ERROR, "cleanup: %s", err);
        return ST_ERR_UNAVAILABLE;
    }
    char filter[200], raw[120];
    if (own_run)
        snprintf(raw, sizeof(raw), "{\"label\":[\"" ER_LABEL_RUN "=%s\"]}", rt->owner.run_id);
    else
        snprintf(raw, sizeof(raw), "{\"label\":[\"" ER_LABEL_MANAGED "\"]}");
    eh_urlencode(raw, filter, sizeof(filter));
    char path[300];
    snprintf(path, sizeof(path), "/containers/json?all=1&filters=%s", filter);
    for (int attempt = 0; attempt < 2; attempt++) {
        eh_response_free(&resp);
        rc = er_api_call(&rt->conn, &h, "GET", path, NULL, 0, (size_t)64 << 20, &resp, err,
                         sizeof(err));
        if (rc == ST_OK && resp.status != 200) {
            er_http_error(&resp, "listing containers failed", err, sizeof(err));
            rc = ST_ERR_IO;
        }
        if (rc == ST_OK) {
            list = st_json_tree_parse(resp.body ? resp.body : "", NULL, 0);
            if (!list || !YAJL_IS_ARRAY(list)) {
                snprintf(err, sizeof(err), "the container list is not a JSON array%s",
                         resp.truncated ? " (too long)" : "");
                rc = ST_ERR_IO;
            }
        }
        if (rc == ST_OK)
            break;
        if (list)
            yajl_tree_free(list);
        list = NULL;
        st_sleep(0.1);
    }
    if (rc != ST_OK) {
        report->failed++;
        rt->conn.host->log(rt->conn.self, ST_LOG_ERROR, "cleanup: %s", err);
        goto out;
    }
    for (size_t i = 0; i < YAJL_GET_ARRAY(list)->len; i++) {
        yajl_val c = YAJL_GET_ARRAY(list)->values[i];
        const char *id = er_jstr(c, "Id", NULL, NULL);
        if (!id || !er_safe_token(id, ""))
            continue;
        report->listed++;
        const char *why = own_run ? "left by this run on an engine that was lost"
                                  : stale_reason(rt, c, max_age_s, began);
        if (!why)
            continue;
        snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", id);
        int removed = 0, waited = 0;
        for (int attempt = 0; attempt < 2 && !removed; attempt++) {
            eh_response r2;
            int rc2 = api_call(rt, &h, "DELETE", path, NULL, 0, &r2, err, sizeof(err));
            if (rc2 == ST_OK && (r2.status / 100 == 2 || r2.status == 404)) {
                removed = 1;
            } else if (rc2 == ST_OK) {
                int busy = removal_in_progress(&r2);
                er_http_error(&r2, "remove failed", err, sizeof(err));
                if (busy && !waited) {
                    waited = 1;
                    removed = wait_removal(rt, &h, id, err, sizeof(err));
                    if (!removed) {
                        eh_response_free(&r2);
                        break; /* err says the wait ended; another DELETE would say 409 */
                    }
                }
            }
            eh_response_free(&r2);
        }
        if (removed) {
            report->removed++;
            rt->conn.host->log(rt->conn.self, ST_LOG_INFO,
                               "cleanup: removed container %.12s (%s%s)", id, why,
                               waited ? "; its removal was already in progress in the engine" : "");
        } else {
            report->failed++;
            rt->conn.host->log(rt->conn.self, ST_LOG_ERROR,
                               "cleanup: cannot remove container %.12s: %s", id, err);
        }
    }
    rc = report->failed ? ST_ERR_IO : ST_OK;
out:
    if (list)
        yajl_tree_free(list);
    eh_response_free(&resp);
    eh_handle_free(&h);
    return rc;
}
