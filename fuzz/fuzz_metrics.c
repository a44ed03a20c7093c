/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the /metrics request path of exporter-prometheus: the bytes a client
 * sends, parsed by libmicrohttpd and answered by the plugin's request handler (on_request;
 * exporter_prometheus.c is included, the handler is static). A daemon without a listening
 * socket in external-poll mode gets each input over a socketpair: the input is written, the
 * client half-closes, and the daemon is run until it has answered and closed the connection.
 * Any bytes must be answered or refused without a crash, a leak, a sanitizer report or a
 * connection left open, and every answer must start with an HTTP status line. */
#include "../plugins/exporter-prometheus/exporter_prometheus.c"

#include "fuzz_common.h"

#include <poll.h>

static prom_exporter fpx;
static struct MHD_Daemon *fd_daemon;

static void quiet_log(st_instance *self, st_log_level level, const char *fmt, ...)
{
    (void)self;
    (void)level;
    (void)fmt;
}

static st_host fuzz_host;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_host.log = quiet_log;
    fpx.host = &fuzz_host;
    pthread_mutex_init(&fpx.lock, NULL);
    /* the plugin's responses and limits, as start_http sets them up */
    fpx.resp_404 = plain_response("Not Found: only /metrics is served\n", NULL);
    fpx.resp_405 = plain_response("Method Not Allowed: use GET or HEAD\n", "GET, HEAD");
    fpx.resp_413 = plain_response("Payload Too Large: requests take no body\n", NULL);
    static const char body[] = "# TYPE self_test_passed_total gauge\nself_test_passed_total 3\n";
    fpx.current = MHD_create_response_from_buffer(sizeof body - 1, (void *)body,
                                                  MHD_RESPMEM_PERSISTENT);
    if (!fpx.resp_404 || !fpx.resp_405 || !fpx.resp_413 || !fpx.current)
        abort();
    fpx.connection_limit = 4;
    fpx.conn_limit_eff = 4;
    fpx.per_ip_eff = 2;
    fpx.wake_fd = -1;
    fd_daemon = MHD_start_daemon(
        MHD_USE_NO_LISTEN_SOCKET, 0, NULL, NULL, on_request, &fpx,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(fpx.conn_limit_eff + CONN_SLACK),
        MHD_OPTION_CONNECTION_TIMEOUT, 10u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY_LIMIT,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, &fpx,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, &fpx, MHD_OPTION_END);
    if (!fd_daemon)
        abort();
    return 0;
}

static unsigned open_connections(void)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(fd_daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info ? info->num_connections : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    /* the whole input fits the socket buffer (-max_len is far below it) */
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(sv[0], data + off, size - off);
        if (n <= 0)
            abort();
        off += (size_t)n;
    }
    shutdown(sv[0], SHUT_WR);
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000)};
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (MHD_add_connection(fd_daemon, sv[1], (const struct sockaddr *)&peer, sizeof peer) !=
        MHD_YES) {
        close(sv[0]);
        return 0; /* MHD closed sv[1] */
    }
    char head[16] = "";
    size_t got = 0;
    int eof = 0;
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    /* MHD_run never blocks: run it while the connection makes progress (an answer to each of
     * many pipelined requests takes a round of its own), and only after 100 rounds in a row
     * without a byte back wait a millisecond between rounds. 10 000 idle rounds (over 10 s) mean
     * the connection was left open. */
    for (int idle = 0; idle < 10000 && !eof;) {
        MHD_run(fd_daemon);
        char buf[4096];
        size_t before = got;
        for (;;) {
            ssize_t n = read(sv[0], buf, sizeof buf);
            if (n > 0) {
                if (got < sizeof head - 1) {
                    size_t k = (size_t)n < sizeof head - 1 - got ? (size_t)n : sizeof head - 1 - got;
                    memcpy(head + got, buf, k);
                }
                got += (size_t)n;
                continue;
            }
            if (n == 0)
                eof = 1;
            break;
        }
        idle = got > before ? 0 : idle + 1;
        if (!eof && idle >= 100) {
            struct pollfd p = {.fd = sv[0], .events = POLLIN};
            poll(&p, 1, 1);
        }
    }
    if (!eof)
        abort(); /* the connection was left open after the client had said everything */
    if (got > 0 && strncmp(head, "HTTP/1.", 7) != 0)
        abort(); /* an answer that is not HTTP */
    close(sv[0]);
    for (int round = 0; round < 100 && open_connections() > 0; round++)
        MHD_run(fd_daemon);
    if (open_connections() > 0)
        abort();
    return 0;
}
