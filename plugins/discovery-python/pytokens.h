/* SPDX-License-Identifier: MIT */
/* pytokens: a compact Python tokenizer for discovery-python's classification (docs/spec.md §7.3):
 * the token stream without comments and whitespace (for duplicates), and the facts classification
 * needs (empty module, legacy marker). Not an import scanner (that is the core's pyscan).
 *
 * Tokens follow Python's tokenize closely enough for comparison: NAME, NUMBER, STRING (the
 * whole literal with prefix and quotes; f-strings with nested quotes and braces, 3.12 style),
 * OP (longest operator), NEWLINE (end of a logical line), INDENT, DEDENT. Comments, blank
 * lines, line continuations and whitespace inside lines never produce tokens, so two files that
 * differ only there have the same stream. Bounded: linear in the input, no recursion deeper
 * than PYTOK_MAX_FSTRING_DEPTH, an indentation stack of PYTOK_MAX_INDENT levels, any byte
 * accepted (NUL bytes, bad UTF-8 and unterminated strings become ordinary tokens).
 * Thread-safety: no shared state. */
#ifndef ST_PYTOKENS_H
#define ST_PYTOKENS_H

#include <stddef.h>
#include <stdint.h>

#include "st_buf.h"

#define PYTOK_MAX_FSTRING_DEPTH 32
#define PYTOK_MAX_INDENT 256

typedef enum pytok_kind {
    PYTOK_NAME = 1,
    PYTOK_NUMBER,
    PYTOK_STRING,
    PYTOK_OP,
    PYTOK_NEWLINE,
    PYTOK_INDENT,
    PYTOK_DEDENT
} pytok_kind;

/* What classification needs to know about one module. */
typedef struct pytok_facts {
    uint64_t hash;       /* FNV-1a over the normalised token stream */
    size_t n_tokens;
    int empty;           /* only docstrings, imports and `pass` statements (or nothing) */
    int legacy;          /* a marker was found; legacy_where says which */
    char legacy_where[96]; /* "module docstring", "top-of-file comment (line 2)", ... */
} pytok_facts;

/* Tokenises src[0..len) (a leading UTF-8 BOM is skipped) and fills *facts. When stream is not
 * NULL the normalised stream is appended to it (one record per token: kind byte, text, 0xff).
 * Returns 0, or -1 when stream ran out of memory. */
int pytok_analyze(const char *src, size_t len, pytok_facts *facts, st_buf *stream);

#endif /* ST_PYTOKENS_H */
