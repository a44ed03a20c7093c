/* SPDX-License-Identifier: MIT */
/* pyscan: finds every import in a Python source buffer without running Python.
 * A byte-level lexer that knows strings (all prefixes, triple quotes, f-/t-strings lexed
 * recursively with 3.12 quote reuse), comments, brackets and line continuations.
 *
 * What is reported (one st_pyimport per record, in source order of completion):
 *  - `import a.b.c [as x], d`        one ST_PYIMPORT_IMPORT record per dotted name;
 *  - `from ..x.y import a, b as c`   one ST_PYIMPORT_FROM record (level 2, module "x.y",
 *                                    names {"a","b"}); `from x import *` sets `star`;
 *  - `importlib.import_module("a.b")`, bare `import_module("a.b")` (the usual
 *    `from importlib import import_module`) and `__import__("a.b")` with a plain string literal
 *    (implicit concatenation allowed) as first positional argument: ST_PYIMPORT_IMPORTLIB.
 *    `import_module(".x", "pkg")` keeps level 1, module "x", package "pkg". Literals that
 *    contain a backslash escape are not evaluated and are skipped.
 * `from` counts only when dots and/or a dotted name and then `import` follow, so `yield from`
 * and `raise X from Y` never count. `import` inside strings, f-string literal parts and comments
 * never counts.
 *
 * Encodings: UTF-8 with or without BOM; a PEP 263 cookie on line 1, or on line 2 when line 1 is
 * blank or a comment (Python's rule). Accepted cookies: the utf-8 family, ascii, the latin-1
 * family, and ASCII-compatible single-byte code pages (iso-8859-N, cpXXX/windows-125X, koi8-*,
 * mac-*). Rejected (ST_PYSCAN_EENCODING): UTF-16/32 (BOM or cookie), multibyte encodings whose
 * trail bytes can be `\` or quotes (Shift-JIS, cp932, Big5, GBK, GB18030, cp949, johab, ...),
 * EUC and ISO-2022 (not needed so far), unknown names, a BOM with a non-UTF-8 cookie.
 * NUL bytes: ST_PYSCAN_ENUL. Invalid UTF-8 (or a non-ASCII byte in an ascii file):
 * ST_PYSCAN_EDECODE.
 *
 * Identifier normalisation (Python NFKC-normalises identifiers, not file names): import names
 * are mapped for the fullwidth ASCII block U+FF01-FF5E, the Latin ligatures U+FB00-FB06,
 * U+00AA/U+00BA/U+00B5/U+017F, and the Mathematical Alphanumeric letters and digits
 * (U+1D400-1D6A3, U+1D7CE-1D7FF). Other non-ASCII characters are passed through unchanged
 * (composed forms are not recomposed). In latin-1 files names are converted to UTF-8; in other
 * single-byte code pages a name with a non-ASCII byte is dropped. importlib string arguments are
 * never normalised (Python does not either).
 *
 * Bounds: no recursion; brackets are a counter; f-string nesting is limited to
 * ST_PYSCAN_MAX_FSTRING_DEPTH levels (deeper: ST_PYSCAN_EDEPTH, Python 3.12 stops at 150);
 * a dotted name longer than ST_PYSCAN_MAX_NAME bytes or with a component longer than 255 bytes
 * is dropped (no file could match it). Memory is O(largest statement).
 *
 * Thread-safety: every function is reentrant; no global state.
 */
#ifndef ST_PYSCAN_H
#define ST_PYSCAN_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ST_PYSCAN_MAX_NAME 4096
#define ST_PYSCAN_MAX_FSTRING_DEPTH 100

/* Status codes (0 or negative). */
enum {
    ST_PYSCAN_OK = 0,
    ST_PYSCAN_EENCODING = -1, /* unsupported or unknown source encoding */
    ST_PYSCAN_ENUL = -2,      /* the buffer contains a NUL byte */
    ST_PYSCAN_EDECODE = -3,   /* bytes invalid in the source encoding */
    ST_PYSCAN_ENOMEM = -4,
    ST_PYSCAN_EDEPTH = -5,    /* f-strings nested deeper than ST_PYSCAN_MAX_FSTRING_DEPTH */
    ST_PYSCAN_ECALLBACK = -6, /* the callback returned non-zero */
};

typedef enum {
    ST_PYIMPORT_IMPORT = 0,   /* import a.b.c */
    ST_PYIMPORT_FROM = 1,     /* from [.]x import y */
    ST_PYIMPORT_IMPORTLIB = 2 /* importlib.import_module / import_module / __import__ literal */
} st_pyimport_kind;

typedef enum {
    ST_PYENC_UTF8 = 0,
    ST_PYENC_ASCII,
    ST_PYENC_LATIN1,
    ST_PYENC_SINGLEBYTE /* another ASCII-compatible single-byte code page */
} st_pyenc;

/* One import record. Every pointer is borrowed: valid only during the callback. */
typedef struct st_pyimport {
    st_pyimport_kind kind;
    const char *module;           /* dotted name after the leading dots, UTF-8, may be "" */
    unsigned level;               /* leading dots; 0 = absolute */
    const char *package;          /* import_module's literal package argument, else NULL */
    const char *const *names;     /* ST_PYIMPORT_FROM: imported names (not the aliases) */
    size_t n_names;
    bool star;                    /* from x import * */
    unsigned line;                /* 1-based line of the `import`/`from` keyword or call */
} st_pyimport;

/* Called once per record. Return 0 to go on, non-zero to stop (st_pyscan_buffer then returns
 * ST_PYSCAN_ECALLBACK). */
typedef int (*st_pyscan_cb)(const st_pyimport *imp, void *userdata);

/* Scans buf[0..len) (need not be NUL-terminated; borrowed). On failure returns a negative
 * status and, if errbuf is non-NULL, writes a one-line message ("line 2: unsupported encoding
 * 'shift_jis'") into errbuf[0..errlen). Encoding/NUL errors are found before any callback
 * runs; ST_PYSCAN_EDEPTH may come after some records were reported. */
int st_pyscan_buffer(const char *buf, size_t len, st_pyscan_cb cb, void *userdata,
             char *errbuf, size_t errlen);

/* Only the encoding check of st_pyscan_buffer: returns ST_PYSCAN_OK and sets *enc and
 * *body_offset (3 after a UTF-8 BOM, else 0), or a negative status with a message. */
int st_pyscan_detect_encoding(const char *buf, size_t len, st_pyenc *enc, size_t *body_offset,
                  char *errbuf, size_t errlen);

/* Static text for a status code. */
const char *st_pyscan_strerror(int status);

#ifdef __cplusplus
}
#endif

#endif /* ST_PYSCAN_H */
