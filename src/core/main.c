/* SPDX-License-Identifier: MIT */
/* selftest-core: entry point. Installs signal handling (signals.c), then hands over to the CLI. */
#include "config.h"

#include "cli.h"
#include "log.h"
#include "signals.h"

#include <stdlib.h>

/* The variables through which the core (or a runtime) tells the bundled pytest plugin what a
 * batch is. They are set per batch when they apply; one inherited from the environment (this
 * selftest-core started by a test of another one's batch) would otherwise reach every batch
 * where it does not apply: a shard filter deselecting tests, results framed on stdout instead
 * of the results file, another run's orphan modules. */
static void forget_batch_variables(void)
{
    static const char *const names[] = {
        "SELF_TEST_RESULTS_FILE", "SELF_TEST_RESULTS_FRAME", "SELF_TEST_SHARD_FILTER",
        "SELF_TEST_FIRST_FILES",  "SELF_TEST_DEPS_DIR",      "SELF_TEST_ORPHAN_MODULES",
        "SELF_TEST_ORPHAN_ROOT",  "SELF_TEST_FORKCHECK", "SELF_TEST_START_GATE",
        "SELF_TEST_SUBREAPER"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        unsetenv(names[i]);
}

int main(int argc, char **argv)
{
    forget_batch_variables();
    st_signals_install();
    st_log_detect_journal();
    return st_cli_main(argc, argv);
}
