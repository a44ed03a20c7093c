/* exporter-prometheus: serves GET/HEAD /metrics with libmicrohttpd (internal polling thread),
 * writes a node_exporter textfile atomically and PUTs to a Pushgateway after every run. The body
 * is rendered once per change (create, begin_run, end_run) and scrapes only take a reference to
 * the ready response under the mutex, so a scrape costs no rendering. */
#include "config.h"

#include <selftest/plugin.h>

#include "prom_text.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_LISTEN "127.0.0.1"
#define DEFAULT_CONN_LIMIT 64
#define DEFAULT_CONN_TIMEOUT_S 10
#define PUSH_CONNECT_TIMEOUT_MS 2000L
#define PUSH_TIMEOUT_MS 5000L

typedef struct prom_exporter {
    const st_host *host;
    st_instance *self;

    /* settings (strings owned by the core until destroy, or by us where noted) */
    long port;                    /* -1: no HTTP server */
    char listen_addr[INET6_ADDRSTRLEN]; /* without brackets */
    int listen_family;            /* AF_INET or AF_INET6 */
    long connection_limit;
    long connection_timeout_s;
    const char *textfile;         /* NULL: none */
    char *push_url;               /* owned: <pushgateway>/metrics/job/<job>/instance/<inst> */
    char *push_base;              /* owned: the configured URL without trailing slashes */

    /* resources from start() */
    struct MHD_Daemon *daemon;
    struct MHD_Response *resp_404, *resp_405;
    unsigned bound_port;
    int curl_inited;

    /* shared with the HTTP thread */
    pthread_mutex_t lock;
    prom_snapshot snap;           /* guarded by lock */
    char runtime[64];             /* snap.runtime points here when set */
    struct MHD_Response *current; /* the rendered body; guarded by lock */
} prom_exporter;

/* ---- settings -------------------------------------------------------------------------------- */

static const char *const known_keys[] = {"port", "listen_address", "connection_limit",
                                         "connection_timeout", "textfile", "pushgateway", "job",
                                         "instance", NULL};

static int reject_unknown(prom_exporter *px, const st_config_node *cfg)
{
    const char *const *names = px->host->cfg_names(px->self, cfg);
    for (size_t i = 0; names && names[i]; i++) {
        int known = 0;
        for (size_t k = 0; known_keys[k] && !known; k++)
            known = strcmp(names[i], known_keys[k]) == 0;
        if (!known) {
            px->host->log(px->self, ST_LOG_ERROR,
                          "%s: unknown setting (known: port, listen_address, connection_limit, "
                          "connection_timeout, textfile, pushgateway, job, instance)",
                          px->host->cfg_where(px->self, cfg, names[i]));
            return ST_ERR_INVALID;
        }
    }
    return ST_OK;
}

/* An integer setting within [lo, hi]; *out untouched when absent. */
static int int_setting(prom_exporter *px, const st_config_node *cfg, const char *name, long lo,
                       long hi, long *out)
{
    long long v;
    int rc = px->host->cfg_int(px->self, cfg, name, &v);
    if (rc < 0)
        return rc;
    if (rc == ST_CFG_ABSENT)
        return ST_OK;
    if (v < lo || v > hi) {
        px->host->log(px->self, ST_LOG_ERROR, "%s: must be from %ld to %ld (got %lld)",
                      px->host->cfg_where(px->self, cfg, name), lo, hi, v);
        return ST_ERR_INVALID;
    }
    *out = (long)v;
    return ST_OK;
}

/* A non-empty string setting; *out untouched when absent. */
static int string_setting(prom_exporter *px, const st_config_node *cfg, const char *name,
                          const char **out)
{
    const char *v = NULL;
    int rc = px->host->cfg_string(px->self, cfg, name, &v);
    if (rc < 0)
        return rc;
    if (rc == ST_CFG_ABSENT)
        return ST_OK;
    if (!*v) {
        px->host->log(px->self, ST_LOG_ERROR, "%s: must not be empty",
                      px->host->cfg_where(px->self, cfg, name));
        return ST_ERR_INVALID;
    }
    *out = v;
    return ST_OK;
}

static int parse_listen(prom_exporter *px, const st_config_node *cfg, const char *addr)
{
    char tmp[INET6_ADDRSTRLEN];
    size_t n = strlen(addr);
    if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') { /* accept [::1] too */
        addr++;
        n -= 2;
    }
    if (n >= sizeof(tmp))
        goto bad;
    memcpy(tmp, addr, n);
    tmp[n] = '\0';
    struct in6_addr a6;
    if (inet_pton(AF_INET, tmp, &a6) == 1)
        px->listen_family = AF_INET;
    else if (inet_pton(AF_INET6, tmp, &a6) == 1)
        px->listen_family = AF_INET6;
    else
        goto bad;
    snprintf(px->listen_addr, sizeof(px->listen_addr), "%s", tmp);
    return ST_OK;
bad:
    px->host->log(px->self, ST_LOG_ERROR,
                  "%s: '%s' is not an IPv4 or IPv6 address literal (e.g. 127.0.0.1, ::1, 0.0.0.0)",
                  px->host->cfg_where(px->self, cfg, "listen_address"), addr);
    return ST_ERR_INVALID;
}

/* One path segment of a Pushgateway grouping key: URL-escaped, or the @base64 form (URL-safe
 * alphabet) when the value holds a '/', which no escaping can carry. Returns malloc'd text. */
static char *grouping_segment(const char *label, const char *value)
{
    size_t n = strlen(value);
    if (!strchr(value, '/')) {
        char *esc = curl_easy_escape(NULL, value, (int)n);
        if (!esc)
            return NULL;
        size_t len = strlen(label) + strlen(esc) + 2;
        char *out = malloc(len);
        if (out)
            snprintf(out, len, "%s/%s", label, esc);
        curl_free(esc);
        return out;
    }
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t len = strlen(label) + 8 + 4 * ((n + 2) / 3) + 2;
    char *out = malloc(len);
    if (!out)
        return NULL;
    size_t k = (size_t)snprintf(out, len, "%s@base64/", label);
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)value[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)value[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)value[i + 2];
        out[k++] = tbl[(v >> 18) & 63];
        out[k++] = tbl[(v >> 12) & 63];
        out[k++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[k++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[k] = '\0';
    return out;
}

static int parse_push(prom_exporter *px, const st_config_node *cfg, const char *url,
                      const char *job, const char *instance)
{
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        px->host->log(px->self, ST_LOG_ERROR, "%s: '%s' must be an http:// or https:// URL",
                      px->host->cfg_where(px->self, cfg, "pushgateway"), url);
        return ST_ERR_INVALID;
    }
    char hostname[256];
    if (!instance) {
        if (gethostname(hostname, sizeof(hostname)) != 0)
            snprintf(hostname, sizeof(hostname), "localhost");
        hostname[sizeof(hostname) - 1] = '\0';
        instance = hostname;
    }
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    px->push_base = strndup(url, n);
    char *seg_job = grouping_segment("job", job);
    char *seg_inst = grouping_segment("instance", instance);
    int rc = ST_ERR_NOMEM;
    if (px->push_base && seg_job && seg_inst) {
        size_t len = n + strlen(seg_job) + strlen(seg_inst) + 16;
        px->push_url = malloc(len);
        if (px->push_url) {
            snprintf(px->push_url, len, "%s/metrics/%s/%s", px->push_base, seg_job, seg_inst);
            rc = ST_OK;
        }
    }
    free(seg_job);
    free(seg_inst);
    return rc;
}

static int parse_settings(prom_exporter *px, const st_config_node *cfg)
{
    const char *listen = DEFAULT_LISTEN, *push = NULL, *job = "selftest", *instance = NULL;
    int rc = reject_unknown(px, cfg);
    if (rc == ST_OK)
        rc = int_setting(px, cfg, "port", 0, 65535, &px->port);
    if (rc == ST_OK)
        rc = int_setting(px, cfg, "connection_limit", 1, 65535, &px->connection_limit);
    if (rc == ST_OK)
        rc = int_setting(px, cfg, "connection_timeout", 1, 3600, &px->connection_timeout_s);
    if (rc == ST_OK)
        rc = string_setting(px, cfg, "listen_address", &listen);
    if (rc == ST_OK)
        rc = string_setting(px, cfg, "textfile", &px->textfile);
    if (rc == ST_OK)
        rc = string_setting(px, cfg, "pushgateway", &push);
    if (rc == ST_OK)
        rc = string_setting(px, cfg, "job", &job);
    if (rc == ST_OK)
        rc = string_setting(px, cfg, "instance", &instance);
    if (rc == ST_OK)
        rc = parse_listen(px, cfg, listen);
    if (rc == ST_OK && px->textfile && px->textfile[0] != '/') {
        px->host->log(px->self, ST_LOG_ERROR, "%s: '%s' must be an absolute path",
                      px->host->cfg_where(px->self, cfg, "textfile"), px->textfile);
        rc = ST_ERR_INVALID;
    }
    if (rc == ST_OK && push)
        rc = parse_push(px, cfg, push, job, instance);
    return rc;
}

/* ---- the snapshot and its rendering ---------------------------------------------------------- */

/* Renders px->snap into a new MHD response and swaps it in. Caller holds px->lock. out, when not
 * NULL, receives a copy of the text for the textfile and the Pushgateway. */
static int publish_locked(prom_exporter *px, prom_buf *out)
{
    prom_buf b = {0};
    if (prom_render(&px->snap, &b) != 0) {
        prom_buf_free(&b);
        return ST_ERR_NOMEM;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
    if (!r || MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, PROM_CONTENT_TYPE) != MHD_YES) {
        if (r)
            MHD_destroy_response(r);
        prom_buf_free(&b);
        return ST_ERR_NOMEM;
    }
    /* MHD responses are reference counted: a scrape still sending the old one keeps it alive. */
    if (px->current)
        MHD_destroy_response(px->current);
    px->current = r;
    if (out)
        *out = b;
    else
        prom_buf_free(&b);
    return ST_OK;
}

/* Fills the snapshot from a finished run (caller holds the lock). */
static void apply_summary(prom_exporter *px, const st_run_summary *s)
{
    prom_snapshot *m = &px->snap;
    m->passed = s->passed;
    m->failed = s->failed;
    m->average_runtime_s = s->mean_batch_runtime_s;
    m->coverage = s->coverage < 0 ? NAN : s->coverage;
    m->container_failures = s->container_failures_total;
    m->container_timeouts = s->container_timeouts_total;
    m->orphans_tested = s->orphans_tested_total;
    m->orphans_reintroduced = s->orphans_reintroduced_total;
    m->orphans_failed = s->orphans_failed_total;
    m->orphans_redundant = s->orphans_redundant_total;
    /* ABI 1.2: a 1.1 core does not count unmet dependencies */
    if (s->struct_size >= offsetof(st_run_summary, orphans_unmet_total) +
                              sizeof(s->orphans_unmet_total))
        m->orphans_unmet = s->orphans_unmet_total;
    double duration = s->total_runtime_s > 0 ? s->total_runtime_s : s->finished_at - s->started_at;
    if (!(duration >= 0))
        duration = 0;
    m->have_run = 1;
    m->last_run_ts = s->finished_at;
    m->last_run_duration_s = duration;
    if (s->success) {
        m->have_success = 1;
        m->last_success_ts = s->finished_at;
    }
    /* Our own count survives a core that does not count; the core's survives our re-creation
     * (config reload), so the larger one is right. */
    m->runs_total++;
    if (s->runs_total > m->runs_total)
        m->runs_total = s->runs_total;
    prom_observe_duration(m, duration);
    if (s->runtime_name && *s->runtime_name) {
        snprintf(px->runtime, sizeof(px->runtime), "%s", s->runtime_name);
        m->runtime = px->runtime;
    }
}

/* ---- textfile -------------------------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes text to path atomically: a hidden temp file in the same directory (not *.prom, so the
 * textfile collector never reads it half-written), fsync, mode 0644, rename, fsync of the dir.
 * No temp file is left on any failure. Returns 0 or -errno; *what names the failed step. */
static int write_textfile(const char *path, const char *text, size_t len, const char **what)
{
    char *dcopy = strdup(path), *bcopy = strdup(path);
    char *tmp = NULL;
    int fd = -1, rc = -ENOMEM;
    *what = "allocate";
    if (!dcopy || !bcopy)
        goto out;
    const char *dir = dirname(dcopy), *base = basename(bcopy);
    size_t tlen = strlen(dir) + strlen(base) + 16;
    tmp = malloc(tlen);
    if (!tmp)
        goto out;
    snprintf(tmp, tlen, "%s/.%s.XXXXXX", dir, base);
    *what = "create a temp file in its directory";
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        free(tmp);
        tmp = NULL; /* nothing to remove */
        goto out;
    }
    *what = "write";
    if (fchmod(fd, 0644) < 0 || (rc = write_all(fd, text, len)) < 0 || fsync(fd) < 0) {
        rc = rc < 0 ? rc : -errno;
        goto out;
    }
    *what = "close";
    int cfd = fd;
    fd = -1;
    if (close(cfd) < 0) {
        rc = -errno;
        goto out;
    }
    *what = "rename the temp file";
    if (rename(tmp, path) < 0) {
        rc = -errno;
        goto out;
    }
    free(tmp);
    tmp = NULL;
    rc = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* best effort: the rename is durable once the directory is */
        close(dfd);
    }
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(dcopy);
    free(bcopy);
    return rc;
}

/* ---- Pushgateway ----------------------------------------------------------------------------- */

typedef struct push_reply {
    char text[256];
    size_t len;
} push_reply;

static size_t push_collect(char *data, size_t size, size_t nmemb, void *opaque)
{
    push_reply *r = opaque;
    size_t n = size * nmemb, room = sizeof(r->text) - 1 - r->len;
    size_t take = n < room ? n : room;
    memcpy(r->text + r->len, data, take);
    r->len += take;
    r->text[r->len] = '\0';
    return n; /* keep reading, keep only the beginning */
}

/* PUT text to the grouping key. Logs one line on failure; never fails the run. */
static void push(prom_exporter *px, const char *text, size_t len)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hdr = NULL;
    push_reply reply = {.len = 0};
    char err[CURL_ERROR_SIZE] = "";
    if (!c) {
        px->host->log(px->self, ST_LOG_WARNING, "push to %s failed: no memory", px->push_base);
        return;
    }
    hdr = curl_slist_append(hdr, "Content-Type: " PROM_CONTENT_TYPE);
    curl_easy_setopt(c, CURLOPT_URL, px->push_url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, PUSH_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, PUSH_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, push_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        px->host->log(px->self, ST_LOG_WARNING, "push to %s failed: %s; the run is not affected",
                      px->push_url, err[0] ? err : curl_easy_strerror(cc));
    } else if (status < 200 || status > 299) {
        for (size_t i = 0; i < reply.len; i++)
            if (reply.text[i] == '\n' || reply.text[i] == '\r')
                reply.text[i] = ' ';
        px->host->log(px->self, ST_LOG_WARNING,
                      "push to %s failed: HTTP %ld %s; the run is not affected", px->push_url,
                      status, reply.text);
    } else {
        px->host->log(px->self, ST_LOG_DEBUG, "pushed to %s", px->push_url);
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    prom_exporter *px = cls;
    (void)version;
    (void)upload_data;
    /* Answering on the first call makes MHD close the connection; the second keeps it alive. */
    if (*con_cls == NULL) {
        *con_cls = px; /* any non-NULL marker */
        return MHD_YES;
    }
    if (*upload_data_size) { /* a body we do not want: consume it */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, px->resp_405);
    if (strcmp(url, "/metrics") != 0)
        return MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, px->resp_404);
    pthread_mutex_lock(&px->lock);
    enum MHD_Result r = MHD_queue_response(conn, MHD_HTTP_OK, px->current);
    pthread_mutex_unlock(&px->lock);
    return r;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    prom_exporter *px = cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    px->host->log(px->self, ST_LOG_DEBUG, "libmicrohttpd: %s", msg);
}

static struct MHD_Response *plain_response(const char *text, const char *allow)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return NULL;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8") !=
            MHD_YES ||
        (allow && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)) {
        MHD_destroy_response(r);
        return NULL;
    }
    return r;
}

/* "ADDR:PORT", IPv6 in brackets. */
static void addr_port(const prom_exporter *px, unsigned port, char *out, size_t size)
{
    if (px->listen_family == AF_INET6)
        snprintf(out, size, "[%s]:%u", px->listen_addr, port);
    else
        snprintf(out, size, "%s:%u", px->listen_addr, port);
}

/* Binds the listening socket ourselves, so a busy port gives errno, not a silent NULL from MHD.
 * Returns the socket or -1 after logging one line naming address and port. */
static int bind_listener(prom_exporter *px)
{
    char where[INET6_ADDRSTRLEN + 16];
    addr_port(px, (unsigned)px->port, where, sizeof(where));
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    if (px->listen_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)px->port);
        inet_pton(AF_INET6, px->listen_addr, &a->sin6_addr);
        sl = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)px->port);
        inet_pton(AF_INET, px->listen_addr, &a->sin_addr);
        sl = sizeof(*a);
    }
    int fd = socket(px->listen_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd < 0) {
        px->host->log(px->self, ST_LOG_ERROR, "cannot listen on %s: socket: %s", where,
                      strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (px->listen_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
        int e = errno;
        px->host->log(px->self, ST_LOG_ERROR, "cannot listen on %s: %s%s", where, strerror(e),
                      e == EADDRINUSE ? " (another process uses that port; change 'port')" : "");
        close(fd);
        return -1;
    }
    return fd;
}

static int start_http(prom_exporter *px)
{
    px->resp_404 = plain_response("Not Found: only /metrics is served\n", NULL);
    px->resp_405 = plain_response("Method Not Allowed: use GET or HEAD\n", "GET, HEAD");
    if (!px->resp_404 || !px->resp_405)
        return ST_ERR_NOMEM;
    int fd = bind_listener(px);
    if (fd < 0)
        return ST_ERR_UNAVAILABLE;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (px->listen_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    px->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, px, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)px->connection_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)px->connection_timeout_s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, px, MHD_OPTION_END);
    if (!px->daemon) {
        char where[INET6_ADDRSTRLEN + 16];
        addr_port(px, (unsigned)px->port, where, sizeof(where));
        px->host->log(px->self, ST_LOG_ERROR, "cannot serve on %s: libmicrohttpd did not start",
                      where);
        close(fd);
        return ST_ERR_UNAVAILABLE;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(px->daemon, MHD_DAEMON_INFO_BIND_PORT);
    px->bound_port = info ? info->port : (unsigned)px->port;
    char where[INET6_ADDRSTRLEN + 16];
    addr_port(px, px->bound_port, where, sizeof(where));
    px->host->log(px->self, ST_LOG_INFO, "serving http://%s/metrics", where);
    return ST_OK;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static void prom_destroy(void *ctx);

static int prom_create(const st_host *host, st_instance *self, const st_config_node *cfg,
                       void **out)
{
    prom_exporter *px = calloc(1, sizeof(*px));
    if (!px)
        return ST_ERR_NOMEM;
    px->host = host;
    px->self = self;
    px->port = -1;
    px->connection_limit = DEFAULT_CONN_LIMIT;
    px->connection_timeout_s = DEFAULT_CONN_TIMEOUT_S;
    pthread_mutex_init(&px->lock, NULL);
    px->snap.version = host->core_version ? host->core_version : PACKAGE_VERSION;
    int rc = parse_settings(px, cfg);
    if (rc == ST_OK) {
        pthread_mutex_lock(&px->lock);
        rc = publish_locked(px, NULL); /* zeros until the first run */
        pthread_mutex_unlock(&px->lock);
    }
    if (rc != ST_OK) {
        prom_destroy(px);
        return rc;
    }
    *out = px;
    return ST_OK;
}

static int prom_stop(void *ctx)
{
    prom_exporter *px = ctx;
    if (px->daemon) {
        MHD_stop_daemon(px->daemon); /* joins the thread, closes the listening socket */
        px->daemon = NULL;
    }
    if (px->resp_404) {
        MHD_destroy_response(px->resp_404);
        px->resp_404 = NULL;
    }
    if (px->resp_405) {
        MHD_destroy_response(px->resp_405);
        px->resp_405 = NULL;
    }
    if (px->curl_inited) {
        curl_global_cleanup();
        px->curl_inited = 0;
    }
    return ST_OK;
}

static int prom_start(void *ctx)
{
    prom_exporter *px = ctx;
    if (px->push_url) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            px->host->log(px->self, ST_LOG_ERROR, "libcurl did not initialise");
            return ST_ERR_UNAVAILABLE;
        }
        px->curl_inited = 1;
    }
    if (px->port >= 0) {
        int rc = start_http(px);
        if (rc != ST_OK) {
            prom_stop(px);
            return rc;
        }
    }
    return ST_OK;
}

static void prom_destroy(void *ctx)
{
    prom_exporter *px = ctx;
    if (!px)
        return;
    prom_stop(px);
    if (px->current)
        MHD_destroy_response(px->current);
    pthread_mutex_destroy(&px->lock);
    free(px->push_url);
    free(px->push_base);
    free(px);
}

static int prom_begin_run(void *ctx, const st_run_info *info)
{
    prom_exporter *px = ctx;
    if (!info->runtime_name || !*info->runtime_name)
        return ST_OK;
    pthread_mutex_lock(&px->lock);
    snprintf(px->runtime, sizeof(px->runtime), "%s", info->runtime_name);
    px->snap.runtime = px->runtime;
    int rc = publish_locked(px, NULL);
    pthread_mutex_unlock(&px->lock);
    return rc;
}

static int prom_end_run(void *ctx, const st_run_summary *summary)
{
    prom_exporter *px = ctx;
    prom_buf text = {0};
    pthread_mutex_lock(&px->lock);
    apply_summary(px, summary);
    int rc = publish_locked(px, px->textfile || px->push_url ? &text : NULL);
    pthread_mutex_unlock(&px->lock);
    if (rc != ST_OK) {
        px->host->log(px->self, ST_LOG_ERROR, "cannot render the metrics: no memory");
        return rc;
    }
    /* Slow outputs run outside the lock: scrapes go on meanwhile. */
    if (px->textfile) {
        const char *what = NULL;
        int w = write_textfile(px->textfile, text.data, text.len, &what);
        if (w < 0) {
            px->host->log(px->self, ST_LOG_WARNING, "textfile %s: cannot %s: %s", px->textfile,
                          what, strerror(-w));
            rc = ST_ERR_IO;
        }
    }
    if (px->push_url)
        push(px, text.data, text.len);
    prom_buf_free(&text);
    return rc;
}

static const st_exporter_ops prom_ops = {
    .struct_size = sizeof(st_exporter_ops),
    .life = {.create = prom_create, .start = prom_start, .stop = prom_stop,
             .destroy = prom_destroy},
    .begin_run = prom_begin_run,
    .record = NULL, /* every value describes a finished run; see docs/exporter-prometheus.md */
    .end_run = prom_end_run,
    .flush = NULL,
};

static const st_plugin_descriptor prom_descriptor = {
    .abi_major = ST_ABI_MAJOR,
    .abi_minor = ST_ABI_MINOR,
    .struct_size = sizeof(st_plugin_descriptor),
    .kind = ST_KIND_EXPORTER,
    .name = "exporter-prometheus",
    .version = PACKAGE_VERSION,
    .description = "Prometheus /metrics (libmicrohttpd), node_exporter textfile, Pushgateway",
    .flags = ST_PLUGIN_THREAD_SAFE,
    .ops = &prom_ops,
};

ST_PLUGIN_DEFINE(prom_descriptor)
