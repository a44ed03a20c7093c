/* SPDX-License-Identifier: MIT */
/* engine_http: HTTP to a container engine over a unix socket or tcp (see engine_http.h). */
#include "config.h"

#include "engine_http.h"
#include "st_buf.h"
#include "st_json.h"

#include <selftest/plugin.h>

#include <curl/curl.h>
#include <yajl/yajl_tree.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- addresses ------------------------------------------------------------------------------ */

static int set_err(char *err, size_t errlen, const char *url, const char *why)
{
    snprintf(err, errlen, "bad engine address '%s': %s", url, why);
    return -1;
}

/* host[:port] or [v6]:port, up to end (exclusive). */
static int parse_hostport(const char *s, const char *end, eh_address *out, const char *url,
                          char *err, size_t errlen)
{
    const char *host = s, *host_end, *colon = NULL;
    if (s < end && *s == '[') {
        host = s + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (!host_end)
            return set_err(err, errlen, url, "missing ']' after an IPv6 address");
        if (host_end + 1 < end) {
            if (host_end[1] != ':')
                return set_err(err, errlen, url, "unexpected text after ']'");
            colon = host_end + 1;
        }
    } else {
        colon = memchr(s, ':', (size_t)(end - s));
        host_end = colon ? colon : end;
    }
    size_t hl = (size_t)(host_end - host);
    if (hl == 0)
        return set_err(err, errlen, url, "no host name");
    if (hl >= sizeof(out->host))
        return set_err(err, errlen, url, "host name too long");
    for (const char *p = host; p < host_end; p++)
        if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_' || *p == ':' ||
              *p == '%'))
            return set_err(err, errlen, url, "invalid character in the host name");
    memcpy(out->host, host, hl);
    out->host[hl] = '\0';
    if (colon) {
        const char *p = colon + 1;
        if (p >= end)
            return set_err(err, errlen, url, "empty port");
        long port = 0;
        for (; p < end; p++) {
            if (!isdigit((unsigned char)*p))
                return set_err(err, errlen, url, "the port is not a number");
            port = port * 10 + (*p - '0');
            if (port > 65535)
                break;
        }
        if (port < 1 || port > 65535)
            return set_err(err, errlen, url, "the port must be 1..65535");
        out->port = (int)port;
    }
    return 0;
}

static int set_unix_path(const char *path, eh_address *out, const char *url, char *err,
                         size_t errlen)
{
    if (path[0] != '/')
        return set_err(err, errlen, url, "the socket path must be absolute");
    if (strlen(path) >= sizeof(out->path))
        return set_err(err, errlen, url, "the socket path is longer than a unix socket allows");
    snprintf(out->path, sizeof(out->path), "%s", path);
    return 0;
}

int eh_parse_address(const char *url, int tls_env, eh_address *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!url || !*url)
        return set_err(err, errlen, url ? url : "", "empty");
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return set_err(err, errlen, url, "contains a space or control character");
    if (url[0] == '/') {
        out->scheme = EH_UNIX;
        return set_unix_path(url, out, url, err, errlen);
    }
    const char *sep = strstr(url, "://");
    if (!sep)
        return set_err(err, errlen, url,
                       "expected unix:///path, tcp://host:port, https://host:port or "
                       "ssh://[user@]host[:port][/path]");
    size_t sl = (size_t)(sep - url);
    const char *rest = sep + 3;
    if (sl == 4 && strncasecmp(url, "unix", 4) == 0) {
        out->scheme = EH_UNIX;
        return set_unix_path(rest, out, url, err, errlen);
    }
    int tcp = sl == 3 && strncasecmp(url, "tcp", 3) == 0;
    int http = sl == 4 && strncasecmp(url, "http", 4) == 0;
    int https = sl == 5 && strncasecmp(url, "https", 5) == 0;
    if (tcp || http || https) {
        out->scheme = EH_TCP;
        const char *end = rest + strcspn(rest, "/?#");
        if (*end && strcmp(end, "/") != 0)
            return set_err(err, errlen, url, "a tcp address takes no path");
        if (parse_hostport(rest, end, out, url, err, errlen) < 0)
            return -1;
        out->tls = https || (tcp && tls_env);
        if (!out->port)
            out->port = out->tls ? 2376 : (http ? 80 : 2375);
        return 0;
    }
    if (sl == 3 && strncasecmp(url, "ssh", 3) == 0) {
        out->scheme = EH_SSH;
        const char *at = strchr(rest, '@');
        const char *slash = strchr(rest, '/');
        if (at && (!slash || at < slash)) {
            size_t ul = (size_t)(at - rest);
            if (ul == 0 || ul >= sizeof(out->user))
                return set_err(err, errlen, url, "bad user name");
            for (const char *p = rest; p < at; p++)
                if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_'))
                    return set_err(err, errlen, url, "invalid character in the user name");
            memcpy(out->user, rest, ul);
            rest = at + 1;
        }
        const char *end = slash ? slash : rest + strlen(rest);
        if (parse_hostport(rest, end, out, url, err, errlen) < 0)
            return -1;
        if (out->host[0] == '-')
            return set_err(err, errlen, url, "a host name may not start with '-'");
        if (!out->port)
            out->port = 22;
        if (slash && slash[1]) {
            if (strlen(slash) >= sizeof(out->path))
                return set_err(err, errlen, url, "the remote socket path is too long");
            snprintf(out->path, sizeof(out->path), "%s", slash);
        }
        return 0;
    }
    return set_err(err, errlen, url, "unknown scheme (unix, tcp, http, https, ssh)");
}

void eh_address_str(const eh_address *a, char *buf, size_t len)
{
    int v6 = strchr(a->host, ':') != NULL;
    switch (a->scheme) {
    case EH_UNIX:
        snprintf(buf, len, "unix://%s", a->path);
        break;
    case EH_TCP:
        snprintf(buf, len, "%s://%s%s%s:%d", a->tls ? "https" : "tcp", v6 ? "[" : "", a->host,
                 v6 ? "]" : "", a->port);
        break;
    case EH_SSH:
        snprintf(buf, len, "ssh://%s%s%s%s%s:%d%s", a->user, a->user[0] ? "@" : "",
                 v6 ? "[" : "", a->host, v6 ? "]" : "", a->port, a->path);
        break;
    default:
        snprintf(buf, len, "?");
    }
}

void eh_client_init(eh_client *c, const eh_address *addr, const char *cert_dir)
{
    memset(c, 0, sizeof(*c));
    c->addr = *addr;
    c->connect_timeout_s = 5;
    eh_address_str(addr, c->display, sizeof(c->display));
    if (addr->scheme == EH_TCP) {
        int v6 = strchr(addr->host, ':') != NULL;
        snprintf(c->base, sizeof(c->base), "%s://%s%s%s:%d", addr->tls ? "https" : "http",
                 v6 ? "[" : "", addr->host, v6 ? "]" : "", addr->port);
        if (addr->tls) {
            const char *home = getenv("HOME");
            if (cert_dir && *cert_dir)
                snprintf(c->cert_dir, sizeof(c->cert_dir), "%s", cert_dir);
            else if (home && *home)
                snprintf(c->cert_dir, sizeof(c->cert_dir), "%s/.docker", home);
        }
    } else {
        snprintf(c->base, sizeof(c->base), "http://d");
        if (addr->scheme == EH_UNIX)
            snprintf(c->unix_path, sizeof(c->unix_path), "%s", addr->path);
    }
}

/* ---- requests ------------------------------------------------------------------------------- */

typedef struct xfer {
    const eh_request *rq;
    eh_response *resp;
    st_buf body; /* capped at the request's max_body; handed to resp at the end */
} xfer;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    xfer *x = userdata;
    size_t n = size * nmemb;
    if (x->rq->on_data) {
        x->rq->on_data(x->rq->opaque, ptr, n);
        return n;
    }
    st_buf_append(&x->body, ptr, n);
    return x->body.oom ? 0 : n; /* past the cap: keep reading (and discarding) so the
                                   connection ends cleanly */
}

static void header_value(const char *line, size_t n, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    if (n <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t vl = (size_t)(end - v);
    if (vl >= outlen)
        vl = outlen - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    xfer *x = userdata;
    size_t n = size * nmemb;
    header_value(ptr, n, "Api-Version", x->resp->api_version, sizeof(x->resp->api_version));
    header_value(ptr, n, "Libpod-Api-Version", x->resp->libpod_version,
                 sizeof(x->resp->libpod_version));
    return n;
}

static size_t on_upload(char *buf, size_t size, size_t nitems, void *userdata)
{
    int fd = *(int *)userdata;
    for (;;) {
        ssize_t n = read(fd, buf, size * nitems);
        if (n >= 0)
            return (size_t)n;
        if (errno != EINTR)
            return CURL_READFUNC_ABORT;
    }
}

static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    volatile int *flag = clientp;
    return flag && *flag ? 1 : 0;
}

static const char *errno_hint(int e, const eh_client *c)
{
    switch (e) {
    case ENOENT:
        return c->addr.scheme == EH_TCP ? "no such host"
                                        : "no socket at that path (is the engine running?)";
    case ECONNREFUSED:
        return c->addr.scheme == EH_TCP ? "connection refused (nothing listens on that port)"
                                        : "connection refused (stale socket: the engine is not "
                                          "running)";
    case EACCES:
    case EPERM:
        return "permission denied (not allowed to use the socket: check its owner and group)";
    case ENOTSOCK:
        return "the path is not a socket";
    case ETIMEDOUT:
        return "connect timed out";
    case EHOSTUNREACH:
    case ENETUNREACH:
        return "host unreachable";
    default:
        return NULL;
    }
}

/* Which TLS files were used, for a failed handshake: "certificates from DIR: ca.pem, no
 * cert.pem, no key.pem". */
static void tls_files(const eh_client *c, char *buf, size_t len)
{
    static const char *const name[3] = {"ca.pem", "cert.pem", "key.pem"};
    size_t n = 0;
    int w = snprintf(buf, len, "certificates from %s (DOCKER_CERT_PATH, else ~/.docker):",
                     c->cert_dir[0] ? c->cert_dir : "nowhere");
    n = w > 0 && (size_t)w < len ? (size_t)w : 0;
    for (int i = 0; i < 3 && n < len; i++) {
        char path[1100];
        snprintf(path, sizeof(path), "%s/%s", c->cert_dir, name[i]);
        int have = c->cert_dir[0] && access(path, R_OK) == 0;
        w = snprintf(buf + n, len - n, "%s %s%s%s", i ? "," : "", have ? "" : "no ", name[i],
                     !have && i == 0 ? " (the system's CAs)" : "");
        n = w > 0 && (size_t)w < len - n ? n + (size_t)w : len;
    }
}

int eh_perform(const eh_client *c, void **handle, const eh_request *rq, eh_response *resp,
               char *err, size_t errlen)
{
    memset(resp, 0, sizeof(*resp));
    CURL *h = *handle;
    if (!h) {
        h = curl_easy_init();
        if (!h) {
            snprintf(err, errlen, "out of memory (curl)");
            return ST_ERR_NOMEM;
        }
        *handle = h;
    } else {
        curl_easy_reset(h);
    }
    char url[4096];
    if ((size_t)snprintf(url, sizeof(url), "%s%s", c->base, rq->path) >= sizeof(url)) {
        snprintf(err, errlen, "request path too long");
        return ST_ERR_INVALID;
    }
    xfer x = {rq, resp, {.max = rq->max_body ? rq->max_body : (size_t)1 << 20}};
    struct curl_slist *hdrs = NULL;
    char ct[128];
    int upload_fd = rq->upload_fd;
    double timeout = rq->timeout_s > 0 ? rq->timeout_s : 30;

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (c->unix_path[0])
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->unix_path);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->connect_timeout_s * 1000));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85: the string form; the bitmask is deprecated */
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (rq->abort_flag) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)rq->abort_flag);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    if (c->addr.scheme == EH_TCP && c->addr.tls) {
        char path[1100];
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        if (c->cert_dir[0]) {
            snprintf(path, sizeof(path), "%s/ca.pem", c->cert_dir);
            if (access(path, R_OK) == 0)
                curl_easy_setopt(h, CURLOPT_CAINFO, path);
            snprintf(path, sizeof(path), "%s/cert.pem", c->cert_dir);
            if (access(path, R_OK) == 0)
                curl_easy_setopt(h, CURLOPT_SSLCERT, path);
            snprintf(path, sizeof(path), "%s/key.pem", c->cert_dir);
            if (access(path, R_OK) == 0)
                curl_easy_setopt(h, CURLOPT_SSLKEY, path);
        }
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
    hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
    if (rq->content_type) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", rq->content_type);
        hdrs = curl_slist_append(hdrs, ct);
    }
    if (upload_fd > 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload);
        curl_easy_setopt(h, CURLOPT_READDATA, &upload_fd);
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    } else if (rq->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    } else if (strcmp(rq->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

    CURLcode cc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    resp->curl_code = (int)cc;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    if (x.body.oom) {
        st_buf_free(&x.body);
        snprintf(err, errlen, "out of memory reading the answer of %s", c->display);
        return ST_ERR_NOMEM;
    }
    resp->body = x.body.data;
    resp->len = x.body.len;
    resp->truncated = x.body.truncated;
    if (cc == CURLE_OK)
        return 0;
    long os_errno = 0;
    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
    resp->os_errno = (int)os_errno;
    const char *what = strerror((int)os_errno);
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST: {
        const char *hint = errno_hint((int)os_errno, c);
        if (cc == CURLE_COULDNT_RESOLVE_HOST)
            hint = "cannot resolve the host name";
        snprintf(err, errlen, "cannot connect to the engine at %s: %s%s%s", c->display,
                 hint ? hint : curl_easy_strerror(cc), os_errno && hint ? " — " : "",
                 os_errno && hint ? what : "");
        return ST_ERR_UNAVAILABLE;
    }
    case CURLE_OPERATION_TIMEDOUT:
        if (resp->status == 0 && resp->api_version[0] == '\0' && resp->len == 0)
            snprintf(err, errlen, "%s %s: the engine at %s did not answer within %gs",
                     rq->method, rq->path, c->display, timeout);
        else
            snprintf(err, errlen, "%s %s: the engine at %s did not finish within %gs",
                     rq->method, rq->path, c->display, timeout);
        return ST_ERR_TIMEOUT;
    case CURLE_ABORTED_BY_CALLBACK:
        snprintf(err, errlen, "%s %s: cancelled", rq->method, rq->path);
        return ST_ERR_CANCELLED;
    case CURLE_READ_ERROR:
        snprintf(err, errlen, "%s %s: cannot read the upload: %s", rq->method, rq->path, what);
        return ST_ERR_IO;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_RECV_ERROR: /* the engine refusing the client certificate ends the handshake */
        if (c->addr.scheme == EH_TCP && c->addr.tls) {
            char files[1200];
            tls_files(c, files, sizeof(files));
            snprintf(err, errlen, "%s %s: TLS connection to the engine at %s failed: %s (%s)",
                     rq->method, rq->path, c->display, curl_easy_strerror(cc), files);
            return ST_ERR_IO;
        }
        /* fall through */
    default:
        snprintf(err, errlen, "%s %s: connection to the engine at %s failed: %s", rq->method,
                 rq->path, c->display, curl_easy_strerror(cc));
        return ST_ERR_IO;
    }
}

void eh_handle_free(void **handle)
{
    if (*handle)
        curl_easy_cleanup(*handle);
    *handle = NULL;
}

void eh_response_free(eh_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
}

static void printable_copy(const char *s, size_t n, char *buf, size_t len)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[k++] = (ch < ' ' || ch == 0x7f) ? ' ' : (char)ch;
    }
    while (k > 0 && buf[k - 1] == ' ')
        k--;
    buf[k] = '\0';
}

void eh_error_text(const eh_response *resp, char *buf, size_t len)
{
    if (resp->body && resp->len) {
        yajl_val v = st_json_tree_parse(resp->body, NULL, 0);
        if (v && YAJL_IS_OBJECT(v)) {
            const char *path[] = {"message", NULL};
            yajl_val m = yajl_tree_get(v, path, yajl_t_string);
            if (m && YAJL_GET_STRING(m) && *YAJL_GET_STRING(m)) {
                const char *s = YAJL_GET_STRING(m);
                printable_copy(s, strlen(s), buf, len);
                yajl_tree_free(v);
                return;
            }
        }
        if (v)
            yajl_tree_free(v);
        char tmp[200];
        printable_copy(resp->body, resp->len < 160 ? resp->len : 160, tmp, sizeof(tmp));
        if (tmp[0]) {
            snprintf(buf, len, "HTTP %ld: %s%s", resp->status, tmp, resp->len > 160 ? "..." : "");
            return;
        }
    }
    snprintf(buf, len, "HTTP %ld", resp->status);
}

int eh_urlencode(const char *s, char *buf, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            if (k + 1 >= len)
                return -1;
            buf[k++] = (char)ch;
        } else {
            if (k + 3 >= len)
                return -1;
            buf[k++] = '%';
            buf[k++] = hex[ch >> 4];
            buf[k++] = hex[ch & 15];
        }
    }
    if (k >= len)
        return -1;
    buf[k] = '\0';
    return 0;
}
