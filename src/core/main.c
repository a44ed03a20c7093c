/* SPDX-License-Identifier: MIT */
/* selftest-core: entry point. Installs signal handling (signals.c), then hands over to the CLI. */
#include "config.h"

#include "cli.h"
#include "log.h"
#include "signals.h"

int main(int argc, char **argv)
{
    st_signals_install();
    st_log_detect_journal();
    return st_cli_main(argc, argv);
}
