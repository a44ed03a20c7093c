/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the configuration reader (src/core/settings.c over libconfig): the
 * bytes are the config file. They must be read or refused with a file:line message, without a
 * crash, a leak or a sanitizer report. */
#include "config.h"

#include "fuzz_common.h"

#include "log.h"
#include "settings.h"

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
    st_settings s;
    if (st_settings_init(&s) < 0)
        abort();
    st_settings_load_file(&s, path);
    st_settings_free(&s);
    return 0;
}
