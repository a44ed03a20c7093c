/* SPDX-License-Identifier: MIT */
/* engine_http: talk HTTP to a container engine's REST API (Docker Engine API, Podman API) with
 * libcurl, over a unix socket or tcp (TLS as the docker CLI does it), with a connect timeout and
 * an overall timeout on every request, bounded response bodies and errno-level diagnosis of an
 * unreachable engine. Shared by runtime-docker and runtime-podman; never linked into the core. */
#ifndef ST_ENGINE_HTTP_H
#define ST_ENGINE_HTTP_H

#include <stddef.h>

typedef enum eh_scheme { EH_UNIX = 1, EH_TCP = 2, EH_SSH = 3 } eh_scheme;

/* A parsed engine address. */
typedef struct eh_address {
    eh_scheme scheme;
    char path[108];  /* EH_UNIX: socket path; EH_SSH: remote socket path ("" = engine default) */
    char host[256];  /* EH_TCP / EH_SSH: host name or address (IPv6 without brackets) */
    int port;        /* EH_TCP / EH_SSH: port, 0 = default (ssh: 22) */
    int tls;         /* EH_TCP: https (https:// or DOCKER_TLS_VERIFY) */
    char user[64];   /* EH_SSH: login, "" = ssh's default */
} eh_address;

/* Parses unix:///path, /path, tcp://host[:port], http://host[:port], https://host[:port],
 * ssh://[user@]host[:port][/path]. tcp:// defaults to port 2375 (2376 when tls_env is set).
 * tls_env: DOCKER_TLS_VERIFY is set (tcp:// becomes https). Returns 0, or -1 with err filled. */
int eh_parse_address(const char *url, int tls_env, eh_address *out, char *err, size_t errlen);

/* Writes the address back as a URL for messages. */
void eh_address_str(const eh_address *a, char *buf, size_t len);

typedef struct eh_client {
    eh_address addr;
    char unix_path[108];     /* the socket libcurl connects to (EH_UNIX, or the ssh forward) */
    char base[320];          /* "http://d", "http://host:port", "https://host:port" */
    char cert_dir[1024];     /* TLS: ca.pem, cert.pem, key.pem ("" = no client certs) */
    double connect_timeout_s;
    char display[400];       /* the address as the user gave it, for messages */
} eh_client;

/* Sets up a client for addr. cert_dir: DOCKER_CERT_PATH or NULL (then ~/.docker when tls). */
void eh_client_init(eh_client *c, const eh_address *addr, const char *cert_dir);

typedef void (*eh_data_fn)(void *opaque, const char *data, size_t len);

typedef struct eh_request {
    const char *method;        /* "GET", "POST", "DELETE" */
    const char *path;          /* "/v1.41/containers/json?all=1" (already URL-encoded) */
    const char *body;          /* request body or NULL */
    size_t body_len;
    const char *content_type;  /* of body / upload, e.g. "application/json" */
    int upload_fd;             /* > 0: stream the body from this fd (never read into memory) */
    double timeout_s;          /* overall limit of the exchange; 0 = 30 s */
    size_t max_body;           /* bound of the buffered response body; 0 = 1 MiB */
    eh_data_fn on_data;        /* when set, the body is streamed here instead of buffered */
    void *opaque;
    volatile int *abort_flag;  /* when set and non-zero, the transfer stops (ST_ERR_CANCELLED) */
} eh_request;

typedef struct eh_response {
    long status;               /* HTTP status, 0 when no answer */
    char *body;                /* NUL-terminated buffered body (malloc'd, may be NULL) */
    size_t len;
    int truncated;             /* the body exceeded max_body */
    char api_version[32];      /* "Api-Version" header, "" if none */
    char libpod_version[32];   /* "Libpod-Api-Version" header, "" if none */
    int os_errno;              /* CURLINFO_OS_ERRNO of a failed connect */
    int curl_code;
} eh_response;

/* Performs one request with a fresh or reused easy handle (*handle: NULL on first use; free
 * it with eh_handle_free). Returns 0 when an HTTP answer came (any status), else a negative
 * st_status: ST_ERR_UNAVAILABLE (could not connect), ST_ERR_TIMEOUT, ST_ERR_CANCELLED,
 * ST_ERR_IO (connection broken mid-way, bad answer), ST_ERR_NOMEM. err says what happened,
 * naming the engine address. Thread-safe as long as each thread uses its own handle. */
int eh_perform(const eh_client *c, void **handle, const eh_request *rq, eh_response *resp,
               char *err, size_t errlen);
void eh_handle_free(void **handle);
void eh_response_free(eh_response *resp);

/* The engine's error text for a non-2xx answer: its JSON "message", else the start of the body
 * (control characters replaced), else "HTTP <status>". */
void eh_error_text(const eh_response *resp, char *buf, size_t len);

/* URL-encodes s into buf (RFC 3986 unreserved kept). Returns 0, -1 when it does not fit. */
int eh_urlencode(const char *s, char *buf, size_t len);

#endif
