/* SPDX-License-Identifier: MIT */
/* exporter-prometheus: serves GET/HEAD /metrics with libmicrohttpd, writes a node_exporter
 * textfile atomically and PUTs to a Pushgateway after every run. The body is rendered once per
 * change (create, begin_run, end_run) and scrapes only take a reference to the ready response
 * under the mutex, so a scrape costs no rendering.
 *
 * The HTTP server runs libmicrohttpd in external-loop mode (epoll; select where libmicrohttpd
 * has no epoll) driven by one thread of ours. That thread also tracks every connection, so it
 * can enforce what libmicrohttpd cannot: a total deadline per request (its own timeout is an
 * inactivity timeout, which a client sending a byte every few seconds never reaches), and
 * limits that close the oldest connection still waiting for a request instead of refusing the
 * new one (so idle or slowloris clients holding every slot cannot keep a scrape out). Everything
 * libmicrohttpd calls back and every shutdown() of a connection happen on that one thread, so a
 * socket is never shut down after libmicrohttpd closed it. */
#include "config.h"

#include <selftest/plugin.h>

#include "prom_text.h"
#include "st_file.h"
#include "st_settings.h"
#include "st_time.h"

#include <arpa/inet.h>
#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef MHD_HTTP_CONTENT_TOO_LARGE /* the name before libmicrohttpd 0.9.74 */
#define MHD_HTTP_CONTENT_TOO_LARGE 413
#endif

#define DEFAULT_LISTEN "127.0.0.1"
/* connection_limit when not set: this many, or less when RLIMIT_NOFILE is low (no warning);
 * per_ip_connection_limit when not set: half of the connection limit. */
#define DEFAULT_CONN_LIMIT 512
#define DEFAULT_CONN_TIMEOUT_S 10
#define DEFAULT_REQUEST_TIMEOUT_S 10
/* libmicrohttpd's own hard limit is ours plus this much: room for the connections it accepts
 * in one turn before the loop can close older ones, and for those being closed (they count
 * until libmicrohttpd has seen the end of them). */
#define CONN_SLACK 32
/* File descriptors kept free for the rest of the process when clamping connection_limit. */
#define FD_RESERVE 128
/* Memory per connection: request line and headers must fit (14 kB of headers do); a larger
 * request gets 431, or is closed when not even that answer fits. */
#define CONN_MEMORY_LIMIT 16384
#define LISTEN_BACKLOG 1024
#define REPORT_INTERVAL_S 60.0
/* After this many closed connections, at most every TRIM_INTERVAL_S, free memory goes back to
 * the system: a flood of short connections otherwise fragments the allocator's heap. */
#define TRIM_AFTER_CLOSED 1000
#define TRIM_INTERVAL_S 10.0
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
    int conn_limit_set;           /* connection_limit was configured */
    long per_ip_limit;            /* 0: none; -1: not set, half of conn_limit_eff */
    long connection_timeout_s;
    long request_timeout_s;
    const char *textfile;         /* NULL: none */
    char *push_url;               /* owned: <pushgateway>/metrics/job/<job>/instance/<inst> */
    char *push_base;              /* owned: the configured URL without trailing slashes */

    /* resources from start() */
    struct MHD_Daemon *daemon;
    struct MHD_Response *resp_404, *resp_405, *resp_413;
    unsigned bound_port;
    int curl_inited;
    long conn_limit_eff;          /* connection_limit after clamping to RLIMIT_NOFILE */
    long per_ip_eff;              /* per_ip_connection_limit in force; 0: none */
    int use_epoll;                /* else select */
    int epoll_fd;                 /* libmicrohttpd's, when use_epoll */
    int wake_fd;                  /* eventfd: wakes the server thread to stop */
    pthread_t thread;
    int thread_started;
    atomic_int stopping;

    /* only touched by the server thread (and by stop() after joining it) */
    struct prom_conn *conn_head, *conn_tail; /* ordered by 'since', oldest first */
    long conns_live;              /* tracked connections not being closed */
    unsigned long turn;           /* turns of the server loop (one libmicrohttpd run each) */
    int ip_pending;               /* a client is over per_ip_connection_limit: retry after the turn */
    unsigned long n_over_limit, n_over_ip, n_timed_out; /* since the last report */
    double last_report;
    unsigned long closed_since_trim;
    double last_trim;

    /* shared with the HTTP thread */
    pthread_mutex_t lock;
    prom_snapshot snap;           /* guarded by lock */
    char runtime[64];             /* snap.runtime points here when set */
    struct MHD_Response *current; /* the rendered body; guarded by lock */
} prom_exporter;

/* ---- settings -------------------------------------------------------------------------------- */

static const char *const known_keys[] = {"port", "listen_address", "connection_limit",
                                         "per_ip_connection_limit", "connection_timeout",
                                         "request_timeout", "textfile", "pushgateway", "job",
                                         "instance", NULL};

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
    int rc = st_check_settings(px->host, px->self, cfg, known_keys, NULL);
    if (rc == ST_OK)
        rc = int_setting(px, cfg, "port", 0, 65535, &px->port);
    if (rc == ST_OK)
        rc = int_setting(px, cfg, "connection_limit", 1, 65535, &px->connection_limit);
    long long present;
    px->conn_limit_set =
        rc == ST_OK && px->host->cfg_int(px->self, cfg, "connection_limit", &present) == ST_OK;
    if (rc == ST_OK)
        rc = int_setting(px, cfg, "per_ip_connection_limit", 0, 65535, &px->per_ip_limit);
    if (rc == ST_OK)
        rc = int_setting(px, cfg, "connection_timeout", 1, 3600, &px->connection_timeout_s);
    if (rc == ST_OK)
        rc = int_setting(px, cfg, "request_timeout", 1, 3600, &px->request_timeout_s);
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
static int publish_locked(prom_exporter *px, st_buf *out)
{
    st_buf b = {0};
    if (prom_render(&px->snap, &b) != 0) {
        st_buf_free(&b);
        return ST_ERR_NOMEM;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
    if (!r || MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, PROM_CONTENT_TYPE) != MHD_YES) {
        if (r)
            MHD_destroy_response(r);
        st_buf_free(&b);
        return ST_ERR_NOMEM;
    }
    /* MHD responses are reference counted: a scrape still sending the old one keeps it alive. */
    if (px->current)
        MHD_destroy_response(px->current);
    px->current = r;
    if (out)
        *out = b;
    else
        st_buf_free(&b);
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
    /* ABI 1.6: an older core does not tell flaky tests apart. Our own sum survives a core
     * that restarted counting; the core's survives our re-creation: the larger is right. */
    if (s->struct_size >= offsetof(st_run_summary, flaky_total) + sizeof(s->flaky_total)) {
        m->flaky_total += s->flaky;
        if (s->flaky_total > m->flaky_total)
            m->flaky_total = s->flaky_total;
    }
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
    m->last_exit_status = s->exit_status;
    /* a cycle stopped by a signal says nothing about the suite: the streak stays as it was */
    if (s->exit_status == 0)
        m->failed_in_a_row = 0;
    else if (!s->aborted)
        m->failed_in_a_row++;
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

/* ---- connection tracking --------------------------------------------------------------------- */

/* One accepted connection, from libmicrohttpd's STARTED to its CLOSED notification. */
typedef struct prom_conn {
    struct prom_conn *prev, *next;
    int fd;
    int family;                   /* AF_INET, AF_INET6 or 0 (unknown: no per-IP limit) */
    unsigned char addr[16];
    int answering;                /* request headers complete, answer not yet sent */
    int closing;                  /* shut down by us; libmicrohttpd closes it on its next turn */
    double since;                 /* accepted, or its previous answer sent (monotonic s) */
    unsigned long turn;           /* the server loop's turn that accepted it */
} prom_conn;


static void conn_unlink(prom_exporter *px, prom_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        px->conn_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        px->conn_tail = c->prev;
    c->prev = c->next = NULL;
}

static void conn_append(prom_exporter *px, prom_conn *c)
{
    c->prev = px->conn_tail;
    c->next = NULL;
    if (px->conn_tail)
        px->conn_tail->next = c;
    else
        px->conn_head = c;
    px->conn_tail = c;
}

/* Closes a connection from our side. libmicrohttpd sees end-of-file on its next turn and closes
 * the socket itself (and then notifies CLOSED). Safe: we run on the thread that closes sockets,
 * and the entry exists until CLOSED, so c->fd is still this connection's socket. */
static void conn_shut(prom_exporter *px, prom_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    px->conns_live--;
    shutdown(c->fd, SHUT_RDWR);
}

static int same_client(const prom_conn *a, const prom_conn *b)
{
    size_t n = a->family == AF_INET ? 4 : 16;
    return a->family && a->family == b->family && memcmp(a->addr, b->addr, n) == 0;
}

/* Could c have sent its request yet? libmicrohttpd reads a connection accepted with epoll in
 * the same run, with select() in the next one; before that, a scrape whose request is already
 * on its way looks exactly like an idle client. */
static int had_its_turn(const prom_exporter *px, const prom_conn *c)
{
    return px->turn - c->turn >= (px->use_epoll ? 1u : 2u);
}

/* Has the client sent bytes that libmicrohttpd has not read yet? Then it is active right now
 * (a scrape whose request arrived in this turn), and libmicrohttpd reads it in this turn. */
static int has_unread(const prom_conn *c)
{
    char b;
    return recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* The oldest connection still waiting for a request after its first turn, with nothing unread,
 * of the same client as `like` when not NULL. */
static prom_conn *oldest_waiting(prom_exporter *px, const prom_conn *like)
{
    for (prom_conn *c = px->conn_head; c; c = c->next)
        if (!c->closing && !c->answering && had_its_turn(px, c) &&
            (!like || same_client(c, like)) && !has_unread(c))
            return c;
    return NULL;
}

/* Closes the oldest waiting connections of like's client while it is over its limit. */
static void enforce_ip_limit(prom_exporter *px, const prom_conn *like)
{
    long n = 0;
    for (prom_conn *o = px->conn_head; o; o = o->next)
        n += !o->closing && same_client(o, like);
    while (n > px->per_ip_eff) {
        prom_conn *v = oldest_waiting(px, like);
        if (!v) {
            px->ip_pending = 1; /* retried after this turn */
            return;
        }
        conn_shut(px, v);
        px->n_over_ip++;
        n--;
    }
}

/* Over a limit: close the oldest connections that are waiting for a request (idle, or sending
 * one slowly) rather than refuse new ones. Called with the new connection when one is
 * accepted, and with NULL after each turn: those accepted in a turn are spared until they have
 * been read, libmicrohttpd's own limit (ours + CONN_SLACK) bounding the excess meanwhile. */
static void enforce_limits(prom_exporter *px, const prom_conn *fresh)
{
    if (px->per_ip_eff > 0) {
        if (fresh && fresh->family) {
            enforce_ip_limit(px, fresh);
        } else if (!fresh && px->ip_pending) {
            px->ip_pending = 0;
            for (prom_conn *c = px->conn_head; c; c = c->next)
                if (!c->closing && c->family)
                    enforce_ip_limit(px, c);
        }
    }
    while (px->conns_live > px->conn_limit_eff) {
        prom_conn *v = oldest_waiting(px, NULL);
        if (!v)
            break;
        conn_shut(px, v);
        px->n_over_limit++;
    }
}

/* Closes every connection whose current request has not been answered request_timeout seconds
 * after it became ready for it (accepted, or previous answer sent). Returns the seconds until
 * the next deadline, or -1 when there is none. */
static double enforce_deadlines(prom_exporter *px, double now)
{
    double limit = (double)px->request_timeout_s;
    for (prom_conn *c = px->conn_head; c; c = c->next) {
        if (c->closing)
            continue;
        if (now - c->since < limit)
            return c->since + limit - now; /* the list is ordered by since */
        conn_shut(px, c);
        px->n_timed_out++;
    }
    return -1;
}

/* At most one warning a minute about the connections we closed. */
static void report_closed(prom_exporter *px, double now)
{
    unsigned long total = px->n_over_limit + px->n_over_ip + px->n_timed_out;
    if (!total || (px->last_report > 0 && now - px->last_report < REPORT_INTERVAL_S))
        return;
    px->host->log(px->self, ST_LOG_WARNING,
                  "closed %lu idle or slow connections to /metrics (%lu over connection_limit %ld, "
                  "%lu over per_ip_connection_limit %ld, %lu past request_timeout %lds); next "
                  "report in %.0f s at the earliest",
                  total, px->n_over_limit, px->conn_limit_eff, px->n_over_ip, px->per_ip_eff,
                  px->n_timed_out, px->request_timeout_s, REPORT_INTERVAL_S);
    px->n_over_limit = px->n_over_ip = px->n_timed_out = 0;
    px->last_report = now;
}

static void trim_memory(prom_exporter *px, double now)
{
    if (px->closed_since_trim < TRIM_AFTER_CLOSED || now - px->last_trim < TRIM_INTERVAL_S)
        return;
    px->closed_since_trim = 0;
    px->last_trim = now;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static prom_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    prom_exporter *px = cls;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        prom_conn *c = *socket_context;
        if (c) {
            if (!c->closing)
                px->conns_live--;
            conn_unlink(px, c);
            free(c);
            px->closed_since_trim++;
            *socket_context = NULL;
        }
        return;
    }
    const union MHD_ConnectionInfo *fdi =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    prom_conn *c = calloc(1, sizeof(*c));
    if (!c || !fdi) {
        /* Untracked, it could escape the deadline: close it at once. */
        if (fdi)
            shutdown(fdi->connect_fd, SHUT_RDWR);
        free(c);
        return;
    }
    c->fd = fdi->connect_fd;
    c->since = st_monotonic();
    c->turn = px->turn;
    const union MHD_ConnectionInfo *ai =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ai && ai->client_addr) {
        const struct sockaddr *sa = ai->client_addr;
        if (sa->sa_family == AF_INET) {
            c->family = AF_INET;
            memcpy(c->addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        } else if (sa->sa_family == AF_INET6) {
            c->family = AF_INET6;
            memcpy(c->addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        }
    }
    *socket_context = c;
    conn_append(px, c);
    px->conns_live++;
    enforce_limits(px, c);
}

/* A request ended (answered, or failed): the connection waits for the next one from now. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    prom_exporter *px = cls;
    (void)con_cls;
    (void)toe;
    prom_conn *c = conn_of(conn);
    if (!c)
        return;
    c->answering = 0;
    c->since = st_monotonic();
    conn_unlink(px, c);
    conn_append(px, c);
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
    if (*con_cls == NULL) {
        *con_cls = px; /* any non-NULL marker */
        prom_conn *c = conn_of(conn);
        if (c)
            c->answering = 1;
        /* Nothing we serve takes a body: refuse one at once, without reading it (answering now
         * makes libmicrohttpd close the connection after the answer). */
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
            return MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, px->resp_405);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_TRANSFER_ENCODING);
        if ((cl && strcmp(cl, "0") != 0) || te)
            return MHD_queue_response(conn, MHD_HTTP_CONTENT_TOO_LARGE, px->resp_413);
        /* Answering on the first call makes MHD close the connection; the second keeps it alive. */
        return MHD_YES;
    }
    if (*upload_data_size) { /* not reached: a body is refused above */
        *upload_data_size = 0;
        return MHD_YES;
    }
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
    /* A deep backlog: under a burst of connections a scrape waits in the queue for the next
     * accept instead of having its SYN dropped (and retried a second later). */
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        int e = errno;
        px->host->log(px->self, ST_LOG_ERROR, "cannot listen on %s: %s%s", where, strerror(e),
                      e == EADDRINUSE ? " (another process uses that port; change 'port')" : "");
        close(fd);
        return -1;
    }
    return fd;
}

/* The server thread: waits on libmicrohttpd's sockets (its epoll descriptor, or its fd sets)
 * and our wake-up eventfd, runs libmicrohttpd, then the deadlines. */
static void *serve_loop(void *arg)
{
    prom_exporter *px = arg;
    double next_deadline = -1;
    while (!atomic_load(&px->stopping)) {
        /* wait at most until libmicrohttpd's next timeout, our next deadline, or 1 s */
        long wait_ms = 1000;
        MHD_UNSIGNED_LONG_LONG mhd_ms;
        if (MHD_get_timeout(px->daemon, &mhd_ms) == MHD_YES && mhd_ms < (MHD_UNSIGNED_LONG_LONG)wait_ms)
            wait_ms = (long)mhd_ms;
        if (next_deadline >= 0) {
            long d = (long)(next_deadline * 1000.0) + 1;
            if (d < wait_ms)
                wait_ms = d;
        }
        if (px->use_epoll) {
            struct pollfd p[2] = {{.fd = px->epoll_fd, .events = POLLIN},
                                  {.fd = px->wake_fd, .events = POLLIN}};
            poll(p, 2, (int)wait_ms);
            MHD_run(px->daemon);
        } else {
            fd_set rs, ws, es;
            MHD_socket maxfd = 0;
            FD_ZERO(&rs);
            FD_ZERO(&ws);
            FD_ZERO(&es);
            if (MHD_get_fdset2(px->daemon, &rs, &ws, &es, &maxfd, FD_SETSIZE) != MHD_YES)
                maxfd = 0;
            FD_SET(px->wake_fd, &rs);
            if (px->wake_fd > maxfd)
                maxfd = px->wake_fd;
            struct timeval tv = {.tv_sec = wait_ms / 1000, .tv_usec = (wait_ms % 1000) * 1000};
            if (select(maxfd + 1, &rs, &ws, &es, &tv) < 0) {
                FD_ZERO(&rs);
                FD_ZERO(&ws);
                FD_ZERO(&es);
            }
            MHD_run_from_select(px->daemon, &rs, &ws, &es);
        }
        px->turn++;
        enforce_limits(px, NULL);
        double now = st_monotonic();
        next_deadline = enforce_deadlines(px, now);
        report_closed(px, now);
        trim_memory(px, now);
    }
    return NULL;
}

/* connection_limit, lowered when RLIMIT_NOFILE could not hold it next to the rest of the
 * process (pipes to pytest, metrics.db, ...): the exporter must never take them all. */
static long effective_conn_limit(prom_exporter *px)
{
    long limit = px->connection_limit;
    struct rlimit rl = {0, 0};
    long room = -1;
    char why[96] = "";
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        room = (long)rl.rlim_cur / 2 - CONN_SLACK;
        snprintf(why, sizeof(why), "half of RLIMIT_NOFILE (%ld) minus %d", (long)rl.rlim_cur,
                 CONN_SLACK);
    }
    if (!px->use_epoll) {
        long sel = FD_SETSIZE - FD_RESERVE - CONN_SLACK;
        if (room < 0 || sel < room) {
            room = sel;
            snprintf(why, sizeof(why), "what select() can watch next to the rest");
        }
    }
    if (room >= 0 && limit > room) {
        long lower = room < 1 ? 1 : room;
        if (!px->conn_limit_set)
            return lower; /* the default adapts to the process's limit */
        px->host->log(px->self, ST_LOG_WARNING,
                      "connection_limit %ld lowered to %ld: the exporter takes at most %s, so "
                      "the runs keep the file descriptors they need",
                      limit, lower, why);
        limit = lower;
    }
    return limit;
}

/* Test hook: serve with select() even where epoll exists. */
static int force_select;

static int start_http(prom_exporter *px)
{
    px->resp_404 = plain_response("Not Found: only /metrics is served\n", NULL);
    px->resp_405 = plain_response("Method Not Allowed: use GET or HEAD\n", "GET, HEAD");
    px->resp_413 = plain_response("Payload Too Large: requests take no body\n", NULL);
    if (!px->resp_404 || !px->resp_405 || !px->resp_413)
        return ST_ERR_NOMEM;
    px->use_epoll = !force_select && MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES;
    px->conn_limit_eff = effective_conn_limit(px);
    px->per_ip_eff = px->per_ip_limit >= 0 ? px->per_ip_limit : (px->conn_limit_eff + 1) / 2;
    px->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (px->wake_fd < 0) {
        px->host->log(px->self, ST_LOG_ERROR, "cannot serve /metrics: eventfd: %s",
                      strerror(errno));
        return ST_ERR_UNAVAILABLE;
    }
    int fd = bind_listener(px);
    if (fd < 0)
        return ST_ERR_UNAVAILABLE;
    unsigned flags = MHD_USE_ERROR_LOG;
    if (px->use_epoll)
        flags |= MHD_USE_EPOLL;
    if (px->listen_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    px->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, px, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, px,
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(px->conn_limit_eff + CONN_SLACK),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)px->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY_LIMIT,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, px,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, px, MHD_OPTION_END);
    char where[INET6_ADDRSTRLEN + 16];
    if (!px->daemon) {
        addr_port(px, (unsigned)px->port, where, sizeof(where));
        px->host->log(px->self, ST_LOG_ERROR, "cannot serve on %s: libmicrohttpd did not start",
                      where);
        close(fd);
        return ST_ERR_UNAVAILABLE;
    }
    if (px->use_epoll) {
        const union MHD_DaemonInfo *ei = MHD_get_daemon_info(px->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        px->epoll_fd = ei ? ei->epoll_fd : -1;
        if (px->epoll_fd < 0) {
            px->host->log(px->self, ST_LOG_ERROR,
                          "cannot serve /metrics: libmicrohttpd gave no epoll descriptor");
            return ST_ERR_UNAVAILABLE;
        }
    }
    atomic_store(&px->stopping, 0);
    int e = pthread_create(&px->thread, NULL, serve_loop, px);
    if (e != 0) {
        px->host->log(px->self, ST_LOG_ERROR, "cannot serve /metrics: pthread_create: %s",
                      strerror(e));
        return ST_ERR_UNAVAILABLE;
    }
    px->thread_started = 1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(px->daemon, MHD_DAEMON_INFO_BIND_PORT);
    px->bound_port = info ? info->port : (unsigned)px->port;
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
    px->per_ip_limit = -1;
    px->connection_timeout_s = DEFAULT_CONN_TIMEOUT_S;
    px->request_timeout_s = DEFAULT_REQUEST_TIMEOUT_S;
    px->epoll_fd = -1;
    px->wake_fd = -1;
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
    if (px->thread_started) {
        atomic_store(&px->stopping, 1);
        uint64_t one = 1;
        if (write(px->wake_fd, &one, sizeof(one)) < 0) {
            /* the counter cannot overflow here; the loop also wakes within 1 s */
        }
        pthread_join(px->thread, NULL);
        px->thread_started = 0;
    }
    if (px->daemon) {
        MHD_stop_daemon(px->daemon); /* closes the connections and the listening socket */
        px->daemon = NULL;
    }
    /* libmicrohttpd notified CLOSED for each connection; free anything it did not. */
    while (px->conn_head) {
        prom_conn *c = px->conn_head;
        assert(c->prev == NULL); /* the list's invariant: conn_unlink then moves the head on */
        conn_unlink(px, c);
        free(c);
    }
    px->conns_live = 0;
    px->epoll_fd = -1;
    if (px->wake_fd >= 0) {
        close(px->wake_fd);
        px->wake_fd = -1;
    }
    if (px->resp_413) {
        MHD_destroy_response(px->resp_413);
        px->resp_413 = NULL;
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
    st_buf text = {0};
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
        int w = st_write_file_atomic_what(px->textfile, text.data, text.len, 0644, &what);
        if (w < 0) {
            px->host->log(px->self, ST_LOG_WARNING, "textfile %s: cannot %s: %s", px->textfile,
                          what, strerror(-w));
            rc = ST_ERR_IO;
        }
    }
    if (px->push_url)
        push(px, text.data, text.len);
    st_buf_free(&text);
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
    .license = "MIT",
    .author = "the selftest-core authors",
    .origin = "bundled with " PACKAGE_NAME,
};

ST_PLUGIN_DEFINE(prom_descriptor)
