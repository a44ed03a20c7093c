/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the module map reader (plugins/common/modulemap.c): module_map.json as
 * discovery-python and integrator-modulemap read it. Any bytes must parse or be refused with a
 * message, without a crash, a leak or a sanitizer report; every key is then mapped to a path. */
#include "fuzz_common.h"

#include "modulemap.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static int exists_some(const char *path, void *userdata)
{
    (void)userdata;
    return strlen(path) % 3 == 0; /* deterministic: some candidates exist, some do not */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exactly sized, not NUL-terminated: stmm_parse takes a length */
    char *text = malloc(size ? size : 1);
    if (!text)
        abort();
    if (size)
        memcpy(text, data, size);
    stmm_map m;
    char err[256] = "";
    int rc = stmm_parse(text, size, &m, err, sizeof err);
    if (rc == STMM_EMALFORMED && !err[0])
        abort();
    if (rc != STMM_OK && (m.n_entries || m.n_groups))
        abort(); /* a refused map is empty */
    for (size_t i = 0; i < m.n_entries; i++) {
        if (!m.entries[i].module)
            abort();
        free(stmm_key_to_path(m.entries[i].module, exists_some, NULL));
    }
    stmm_free(&m);
    free(text);
    return 0;
}
