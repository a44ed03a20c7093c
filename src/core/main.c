/* SPDX-License-Identifier: MIT */
/* selftest-core: entry point. Installs signal handling, then hands over to the CLI. */
#include "config.h"

#include "cli.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t reload_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

static void on_reload_signal(int sig)
{
    reload_signal = sig;
}

int st_cli_stop_requested(void)
{
    return stop_signal != 0;
}

int st_cli_reload_requested(void)
{
    return reload_signal != 0;
}

void st_cli_clear_reload(void)
{
    reload_signal = 0;
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_reload_signal;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return st_cli_main(argc, argv);
}
