/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the results JSON lines (src/core/results.c): what the bundled pytest
 * plugin writes to results.jsonl and the core reads back. Any bytes must be read without a
 * crash, a leak or a sanitizer report, and what was read must go through the verdict, the
 * results object, the --json batch line and the summary (which print the strings read). */
#include "config.h"

#include "fuzz_common.h"

#include "log.h"
#include "results.h"

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    st_log_set_level(ST_LOG_ERROR);
    devnull = fopen("/dev/null", "w");
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
    b->workers = 1;
    b->coverage = -1;
    char err[512] = "";
    int rc = st_results_read(b, path, err, sizeof err);
    /* bytes that are not events are malformed; nothing else can go wrong with a readable file */
    if (rc != ST_OK && rc != ST_ERR_MALFORMED && rc != ST_ERR_NOMEM)
        abort();
    if (rc < 0 && !err[0])
        abort(); /* an error must say what it is */
    st_exec_result er = {.struct_size = sizeof er, .exited = 1, .exit_status = size & 3,
                         .wall_s = 1.5};
    st_batch_verdict(b, &er, 60);
    st_run_finalize(&run);
    char *line = st_batch_line_json(b, &run.totals);
    free(line);
    char *json = st_run_to_json(&run, size & 1);
    free(json);
    st_run_print_summary(&run, devnull, 0);
    st_run_free(&run);
    return 0;
}
