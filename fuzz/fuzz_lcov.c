/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the coverage reader (st_coverage_read, src/core/coverage.c): pytest-cov's
 * LCOV report. Any bytes must be read or refused with a message, without a crash, a leak or a
 * sanitizer report; the lines read must then go through the union coverage of the run. */
#include "config.h"

#include "fuzz_common.h"

#include "log.h"
#include "coverage.h"
#include "results.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    st_log_set_level(ST_LOG_ERROR);
    fuzz_scratch();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_put_file("input", data, size);
    st_run run = {0};
    run.batches = calloc(1, sizeof(st_batch));
    if (!run.batches)
        abort();
    run.n_batches = 1;
    st_batch *b = &run.batches[0];
    b->id = strdup("batch-0");
    b->path = strdup("tests");
    b->coverage = -1;
    char err[512] = "";
    int rc = st_coverage_read(b, path, err, sizeof err);
    /* absent (1), read (ST_OK), or malformed with a message; nothing else for a readable file */
    if (rc != 1 && rc != ST_OK && rc != ST_ERR_MALFORMED && rc != ST_ERR_NOMEM)
        abort();
    if (rc < 0 && !err[0])
        abort();
    if (rc == 0 && (b->coverage < 0 || b->coverage > 100))
        abort();
    if (rc != 0)
        b->coverage = -1;
    st_run_finalize(&run);
    if (run.coverage > 100)
        abort();
    st_run_free(&run);
    return 0;
}
