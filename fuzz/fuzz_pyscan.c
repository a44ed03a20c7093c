/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the pyscan lexer: any byte string must scan without crashing, reading
 * out of bounds, leaking or recursing, and every record must be well formed.
 * Build and run: see fuzz/README.md. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pyscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_record(const st_pyimport *imp, void *userdata)
{
    size_t *count = userdata;
    if (!imp->module || strlen(imp->module) > ST_PYSCAN_MAX_NAME || imp->line == 0)
        abort();
    if (imp->kind == ST_PYIMPORT_FROM && !imp->star && imp->n_names == 0)
        abort();
    for (size_t i = 0; i < imp->n_names; i++)
        if (!imp->names[i] || !imp->names[i][0])
            abort();
    if (imp->package && !imp->package[0])
        abort();
    (*count)++;
    return 0;
}

/* Random bytes are mostly invalid UTF-8 and would only exercise the decoder. An input whose
 * first byte is odd is therefore scanned as latin-1 (every byte valid) with NULs blanked, so
 * the lexer itself sees arbitrary bytes; an even first byte scans the input as it is. */
static const char latin1_cookie[] = "# coding: latin-1\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool lexer_mode = size > 0 && (data[0] & 1);
    size_t prefix = lexer_mode ? sizeof latin1_cookie - 1 : 0;
    if (lexer_mode) {
        data++;
        size--;
    }
    /* a private copy with no slack, so ASan sees any read past the end */
    char *copy = malloc(prefix + size ? prefix + size : 1);
    if (!copy)
        return 0;
    memcpy(copy, latin1_cookie, prefix);
    if (size)
        memcpy(copy + prefix, data, size);
    if (lexer_mode)
        for (size_t i = prefix; i < prefix + size; i++)
            if (copy[i] == '\0')
                copy[i] = ' ';
    size = prefix + size;
    size_t count = 0;
    char err[128];
    int status = st_pyscan_buffer(copy, size, check_record, &count, err, sizeof err);
    if (status > 0 || status < ST_PYSCAN_ECALLBACK)
        abort();
    free(copy);
    return 0;
}
