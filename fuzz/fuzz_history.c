/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the history reader (src/core/history.c): the JSON array of the history
 * file, read and rewritten with one more entry every cycle. Any bytes must be appended to or
 * refused without a crash, a leak or a sanitizer report; a refused file must be left byte for
 * byte as it was, and an accepted one must be rewritten as a JSON array one entry longer. */
#include "config.h"

#include "fuzz_common.h"

#include "history.h"
#include "json.h"
#include "log.h"

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
    const char *path = fuzz_put_file("history.json", data, size);
    st_run run = {0};
    run.finished_at = 1700000000.5;
    run.coverage = size & 1 ? -1 : 87.5;
    run.mean_batch_runtime_s = 1.25;
    run.totals.n[ST_OUT_PASSED] = 3;
    int rc = st_history_append(path, &run);
    char *text = NULL;
    size_t len = 0;
    if (st_read_file(path, (size_t)1 << 30, &text, &len) < 0)
        abort();
    if (rc < 0) {
        if (len != size || (size && memcmp(text, data, size) != 0))
            abort(); /* a refused file is never changed */
    } else {
        char err[256];
        yajl_val v = st_json_parse(text, err, sizeof err);
        if (!v || !YAJL_IS_ARRAY(v) || v->u.array.len == 0)
            abort();
        yajl_tree_free(v);
    }
    free(text);
    return 0;
}
