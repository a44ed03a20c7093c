/* SPDX-License-Identifier: MIT */
/* pyscan: byte-level Python lexer that reports import statements and literal importlib calls.
 * See pyscan.h for the contract. The lexer is an explicit state machine with a bounded frame
 * stack (code / f-string literal / replacement field / format spec): nothing recurses. */
#include "pyscan.h"

#include "st_buf.h"
#include "st_enum.h"

#include <selftest/plugin.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- character classes ------------------------------------------------------------------- */

enum { C_OTHER = 0, C_SPACE, C_NL, C_IDENT, C_DIGIT, C_QUOTE, C_HASH, C_BSLASH, C_DOT,
       C_OPEN, C_CLOSE, C_RBRACE, C_COLON };

/* The class of every byte, computed by the preprocessor from one expression (char_class_c). */
#define CLS(c) (cls_table[(unsigned char)(c)])
static const unsigned char cls_table[256] = {
#define X4(n) char_class_c(n), char_class_c((n) + 1), char_class_c((n) + 2), char_class_c((n) + 3)
#define char_class_c(c)                                                                        \
    ((c) == ' ' || (c) == '\t' || (c) == '\f' || (c) == '\v' ? C_SPACE                     \
     : (c) == '\n' || (c) == '\r'                            ? C_NL                        \
     : ((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || (c) == '_' || (c) >= 0x80 \
         ? C_IDENT                                                                     \
     : (c) >= '0' && (c) <= '9'        ? C_DIGIT                                           \
     : (c) == '\'' || (c) == '"'       ? C_QUOTE                                           \
     : (c) == '#'                      ? C_HASH                                            \
     : (c) == '\\'                     ? C_BSLASH                                          \
     : (c) == '.'                      ? C_DOT                                             \
     : (c) == '(' || (c) == '[' || (c) == '{' ? C_OPEN                                     \
     : (c) == ')' || (c) == ']'        ? C_CLOSE                                           \
     : (c) == '}'                      ? C_RBRACE                                          \
     : (c) == ':'                      ? C_COLON                                           \
                                       : C_OTHER)
#define X16(n) X4(n), X4((n) + 4), X4((n) + 8), X4((n) + 12)
#define X64(n) X16(n), X16((n) + 16), X16((n) + 32), X16((n) + 48)
    X64(0), X64(64), X64(128), X64(192)
#undef X64
#undef X16
#undef X4
#undef char_class_c
};

/* ---- tokens and frames ------------------------------------------------------------------- */

enum tok_type { T_EOF = 0, T_NEWLINE, T_NAME, T_NUMBER, T_STRING, T_FSTART, T_FEND, T_DOT,
                T_OP };

enum kw { KW_NONE = 0, KW_IMPORT, KW_FROM, KW_AS, KW_IMPORTLIB, KW_DUNDER_IMPORT,
          KW_IMPORT_MODULE };

typedef struct token {
    enum tok_type type;
    enum kw kw;
    unsigned char op;        /* T_OP: the character */
    bool str_plain;          /* T_STRING: not bytes, no unevaluated escapes */
    bool str_raw;
    bool in_fstring;            /* lexed inside an f-string replacement field */
    bool after_dot;             /* the previous token was '.' (`x.__import__`) */
    const unsigned char *start; /* T_NAME: the identifier; T_STRING: the contents */
    size_t len;
    unsigned line;
} token;

enum frame_kind { F_CODE, F_FSTR, F_FIELD, F_SPEC };

typedef struct frame {
    unsigned char kind;
    unsigned char quote;
    bool triple;
    bool raw;
    size_t depth; /* F_CODE / F_FIELD: open brackets */
} frame;

#define MAX_FRAMES (2 * ST_PYSCAN_MAX_FSTRING_DEPTH + 2)

typedef struct lexer {
    const unsigned char *p, *end;
    unsigned line;
    int status;
    bool last_dot;
    int nframes;
    frame frames[MAX_FRAMES];
} lexer;

static bool at_nl(const lexer *lx)
{
    return lx->p < lx->end && (*lx->p == '\n' || *lx->p == '\r');
}

/* Consumes one newline (LF, CRLF or CR) at lx->p. */
static void eat_nl(lexer *lx)
{
    if (*lx->p == '\r' && lx->p + 1 < lx->end && lx->p[1] == '\n')
        lx->p++;
    lx->p++;
    lx->line++;
}

/* Consumes a backslash and the character it protects (a whole newline if it is one). */
static void eat_escape(lexer *lx)
{
    lx->p++;
    if (lx->p >= lx->end)
        return;
    if (at_nl(lx))
        eat_nl(lx);
    else
        lx->p++;
}

static bool push_frame(lexer *lx, unsigned char kind, unsigned char quote, bool triple,
               bool raw)
{
    if (lx->nframes >= MAX_FRAMES) {
        lx->status = ST_PYSCAN_EDEPTH;
        return false;
    }
    frame *f = &lx->frames[lx->nframes++];
    f->kind = kind;
    f->quote = quote;
    f->triple = triple;
    f->raw = raw;
    f->depth = 0;
    return true;
}

/* Valid string prefixes (any case): r u b br rb f fr rf t tr rt. Sets flags. */
static bool string_prefix(const unsigned char *s, size_t n, bool *is_f, bool *is_b, bool *is_r)
{
    *is_f = *is_b = *is_r = false;
    if (n == 0 || n > 2)
        return false;
    bool u = false;
    for (size_t i = 0; i < n; i++) {
        switch (s[i] | 0x20) {
        case 'r': if (*is_r) return false; *is_r = true; break;
        case 'b': if (*is_b) return false; *is_b = true; break;
        case 'f': case 't': if (*is_f) return false; *is_f = true; break;
        case 'u': u = true; break;
        default: return false;
        }
    }
    if (u)
        return n == 1;
    return !(*is_f && *is_b);
}

/* Scans a non-f string whose opening quote is at lx->p. */
static void lex_plain_string(lexer *lx, token *t, bool raw)
{
    unsigned char q = *lx->p;
    bool triple = lx->p + 2 < lx->end && lx->p[1] == q && lx->p[2] == q;
    lx->p += triple ? 3 : 1;
    t->type = T_STRING;
    t->start = lx->p;
    t->str_raw = raw;
    bool escapes = false;
    while (lx->p < lx->end) {
        unsigned char c = *lx->p;
        if (c == q) {
            if (!triple) {
                t->len = (size_t)(lx->p - t->start);
                lx->p++;
                goto done;
            }
            if (lx->p + 2 < lx->end && lx->p[1] == q && lx->p[2] == q) {
                t->len = (size_t)(lx->p - t->start);
                lx->p += 3;
                goto done;
            }
            lx->p++;
        } else if (c == '\\') {
            escapes = true;
            eat_escape(lx);
        } else if (c == '\n' || c == '\r') {
            if (!triple) { /* unterminated: Python fails; recover at the line end */
                t->len = (size_t)(lx->p - t->start);
                goto done;
            }
            eat_nl(lx);
        } else {
            lx->p++;
        }
    }
    t->len = (size_t)(lx->p - t->start);
done:
    t->str_plain = raw || !escapes;
}

/* In quiet mode (see lex_next) a token the statement level ignores is skipped right here. */
#define SKIP_IF_QUIET(is_dot)                                                                   \
    if (quiet) {                                                                                \
        lx->last_dot = (is_dot);                                                                \
        continue;                                                                               \
    }

/* Code inside the top frame (F_CODE or F_FIELD). Returns false when the frame changed and the
 * caller must look at the new top frame. */
static bool lex_code(lexer *lx, token *t, bool quiet)
{
    frame *f = &lx->frames[lx->nframes - 1];
    for (;;) {
        while (lx->p < lx->end && CLS(*lx->p) == C_SPACE)
            lx->p++;
        if (lx->p >= lx->end) {
            t->type = T_EOF;
            t->line = lx->line;
            return true;
        }
        const unsigned char *s = lx->p;
        unsigned char c = *s;
        t->line = lx->line;
        switch (CLS(c)) {
        case C_NL:
            eat_nl(lx);
            if (f->kind == F_CODE && f->depth == 0) {
                t->type = T_NEWLINE;
                SKIP_IF_QUIET(false);
                return true;
            }
            continue;
        case C_HASH:
            while (lx->p < lx->end && *lx->p != '\n' && *lx->p != '\r')
                lx->p++;
            continue;
        case C_BSLASH:
            lx->p++;
            if (at_nl(lx)) {
                eat_nl(lx);
                continue;
            }
            t->type = T_OP;
            t->op = '\\';
            SKIP_IF_QUIET(false);
            return true;
        case C_IDENT: {
            while (lx->p < lx->end && (CLS(*lx->p) == C_IDENT || CLS(*lx->p) == C_DIGIT))
                lx->p++;
            size_t n = (size_t)(lx->p - s);
            bool is_f, is_b, is_r;
            if (lx->p < lx->end && CLS(*lx->p) == C_QUOTE &&
                string_prefix(s, n, &is_f, &is_b, &is_r)) {
                if (is_f) {
                    unsigned char q = *lx->p;
                    bool triple = lx->p + 2 < lx->end && lx->p[1] == q && lx->p[2] == q;
                    lx->p += triple ? 3 : 1;
                    if (!push_frame(lx, F_FSTR, q, triple, is_r)) {
                        t->type = T_EOF;
                        return true;
                    }
                    t->type = T_FSTART;
                    if (quiet) {
                        lx->last_dot = false;
                        return false; /* the top frame changed */
                    }
                    return true;
                }
                lex_plain_string(lx, t, is_r);
                if (is_b)
                    t->str_plain = false;
                SKIP_IF_QUIET(false);
                return true;
            }
            t->type = T_NAME;
            t->start = s;
            t->len = n;
            t->kw = KW_NONE;
            switch (n) {
            case 2: if (s[0] == 'a' && s[1] == 's') t->kw = KW_AS; break;
            case 4: if (!memcmp(s, "from", 4)) t->kw = KW_FROM; break;
            case 6: if (!memcmp(s, "import", 6)) t->kw = KW_IMPORT; break;
            case 9: if (!memcmp(s, "importlib", 9)) t->kw = KW_IMPORTLIB; break;
            case 10: if (!memcmp(s, "__import__", 10)) t->kw = KW_DUNDER_IMPORT; break;
            case 13: if (!memcmp(s, "import_module", 13)) t->kw = KW_IMPORT_MODULE; break;
            default: break;
            }
            if (t->kw == KW_NONE || t->kw == KW_AS)
                SKIP_IF_QUIET(false);
            return true;
        }
        case C_DIGIT:
        number:
            lx->p++;
            while (lx->p < lx->end) {
                unsigned char d = *lx->p;
                /* digits, '.', ASCII letters (suffixes, hex digits), and the sign of a decimal
                 * exponent */
                if (CLS(d) == C_DIGIT || CLS(d) == C_DOT || (CLS(d) == C_IDENT && d < 0x80) ||
                    ((d == '+' || d == '-') && ((lx->p[-1] | 0x20) == 'e') &&
                     !(lx->p - s > 1 && s[0] == '0' && (s[1] | 0x20) == 'x'))) {
                    lx->p++;
                } else {
                    break;
                }
            }
            t->type = T_NUMBER;
            SKIP_IF_QUIET(false);
            return true;
        case C_DOT:
            if (lx->p + 1 < lx->end && CLS(lx->p[1]) == C_DIGIT)
                goto number;
            lx->p++;
            t->type = T_DOT;
            SKIP_IF_QUIET(true);
            return true;
        case C_QUOTE:
            lex_plain_string(lx, t, false);
            SKIP_IF_QUIET(false);
            return true;
        case C_OPEN:
            f->depth++;
            lx->p++;
            t->type = T_OP;
            t->op = c;
            SKIP_IF_QUIET(false);
            return true;
        case C_CLOSE:
            if (f->depth > 0)
                f->depth--;
            lx->p++;
            t->type = T_OP;
            t->op = c;
            SKIP_IF_QUIET(false);
            return true;
        case C_RBRACE:
            lx->p++;
            if (f->kind == F_FIELD && f->depth == 0) {
                lx->nframes--; /* back to the f-string literal */
                return false;
            }
            if (f->depth > 0)
                f->depth--;
            t->type = T_OP;
            t->op = c;
            SKIP_IF_QUIET(false);
            return true;
        case C_COLON:
            lx->p++;
            if (f->kind == F_FIELD && f->depth == 0) {
                f->kind = F_SPEC;
                return false;
            }
            t->type = T_OP;
            t->op = c;
            SKIP_IF_QUIET(false);
            return true;
        default:
            lx->p++;
            t->type = T_OP;
            t->op = c;
            SKIP_IF_QUIET(false);
            return true;
        }
    }
}

#undef SKIP_IF_QUIET

/* Is lx->p at the closing quote(s) of f-string frame fs? */
static bool at_fstring_end(const lexer *lx, const frame *fs)
{
    if (*lx->p != fs->quote)
        return false;
    if (!fs->triple)
        return true;
    return lx->p + 2 < lx->end && lx->p[1] == fs->quote && lx->p[2] == fs->quote;
}

/* The literal part of an f-string (top frame F_FSTR). Returns true with T_FEND when the string
 * ended, false when a replacement field was entered. */
static bool lex_fstring(lexer *lx, token *t)
{
    frame *f = &lx->frames[lx->nframes - 1];
    while (lx->p < lx->end) {
        unsigned char c = *lx->p;
        if (c == f->quote && at_fstring_end(lx, f)) {
            lx->p += f->triple ? 3 : 1;
            break;
        }
        if (c == '\\') {
            if (lx->p + 1 < lx->end && (lx->p[1] == '{' || lx->p[1] == '}')) {
                lx->p++; /* \{ does not escape the brace */
            } else if (!f->raw && lx->p + 2 < lx->end && lx->p[1] == 'N' && lx->p[2] == '{') {
                lx->p += 3; /* \N{NAME}: not a replacement field */
                while (lx->p < lx->end && *lx->p != '}' && *lx->p != f->quote &&
                       *lx->p != '\n' && *lx->p != '\r')
                    lx->p++;
                if (lx->p < lx->end && *lx->p == '}')
                    lx->p++;
            } else {
                eat_escape(lx);
            }
        } else if (c == '{') {
            if (lx->p + 1 < lx->end && lx->p[1] == '{') {
                lx->p += 2;
                continue;
            }
            lx->p++;
            if (!push_frame(lx, F_FIELD, 0, false, false)) {
                t->type = T_EOF;
                return true;
            }
            return false;
        } else if (c == '\n' || c == '\r') {
            if (!f->triple)
                break; /* unterminated: ends at the line end, newline left for the code */
            eat_nl(lx);
        } else {
            lx->p++;
        }
    }
    lx->nframes--;
    t->type = T_FEND;
    t->line = lx->line;
    return true;
}

/* A format spec (top frame F_SPEC, which replaced the field's F_FIELD frame). */
static void lex_spec(lexer *lx)
{
    const frame *fs = &lx->frames[lx->nframes - 2];
    while (lx->p < lx->end) {
        unsigned char c = *lx->p;
        if (c == '{') {
            if (lx->p + 1 < lx->end && lx->p[1] == '{') {
                lx->p += 2;
                continue;
            }
            lx->p++;
            push_frame(lx, F_FIELD, 0, false, false);
            return;
        }
        if (c == '}') {
            lx->p++;
            lx->nframes--;
            return;
        }
        if (c == fs->quote && at_fstring_end(lx, fs)) {
            lx->nframes--; /* malformed; let the f-string frame end it */
            return;
        }
        if (c == '\\') {
            eat_escape(lx);
        } else if (c == '\n' || c == '\r') {
            if (!fs->triple) {
                lx->nframes--;
                return;
            }
            eat_nl(lx);
        } else {
            lx->p++;
        }
    }
    lx->nframes--;
}

/* Is t a token the statement level cares about (see lex_next's quiet mode)? */
static bool wanted_when_quiet(const token *t)
{
    return t->type == T_EOF || (t->type == T_NAME && t->kw != KW_NONE && t->kw != KW_AS);
}

/* The next token. In quiet mode (the parser is between statements and no importlib call is
 * being matched) only EOF and the names import/from/importlib/__import__/import_module are
 * returned; everything else is still lexed (brackets, strings, f-strings) but skipped here,
 * which saves the per-token work of the parser on the bulk of the code. */
static void lex_next(lexer *lx, token *t, bool quiet)
{
    for (;;) {
        if (lx->status != ST_PYSCAN_OK) {
            *t = (token){.type = T_EOF}; /* every field: the parser still reads after_dot */
            return;
        }
        frame *f = &lx->frames[lx->nframes - 1];
        bool have = false;
        switch (f->kind) {
        case F_CODE:
        case F_FIELD:
            if (lex_code(lx, t, quiet)) {
                if (t->type == T_EOF && lx->nframes > 1 && lx->status == ST_PYSCAN_OK) {
                    lx->nframes = 1; /* unterminated f-string at end of file */
                    t->type = T_FEND;
                }
                have = true;
            }
            break;
        case F_FSTR:
            have = lex_fstring(lx, t);
            break;
        case F_SPEC:
            lex_spec(lx);
            break;
        }
        if (!have)
            continue;
        t->after_dot = lx->last_dot;
        lx->last_dot = t->type == T_DOT;
        if (!quiet || wanted_when_quiet(t))
            return;
    }
}

/* ---- encodings ------------------------------------------------------------------------------ */


/* Python's get_normal_name() then codecs-style aliasing: lower case, '-'/' '/'.' -> '_'. */
static void normalise_codec(const char *raw, size_t n, char *out, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < cap; i++) {
        char c = raw[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c == '-' || c == ' ' || c == '.')
            c = '_';
        out[j++] = c;
    }
    out[j] = '\0';
}

static bool name_in(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(name, *list))
            return true;
    return false;
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Returns ST_PYSCAN_OK and sets *enc, or ST_PYSCAN_EENCODING. */
static int classify_codec(const char *norm, st_pyenc *enc)
{
    static const char *const utf8[] = {"utf_8", "utf8", "u8", "utf", "cp65001", "utf8_ucs2",
                       "utf8_ucs4", NULL};
    static const char *const latin1[] = {"latin_1", "latin1", "iso_8859_1", "iso8859_1", "8859",
                         "cp819", "latin", "l1", "iso_ir_100", "csisolatin1",
                         "iso_latin_1", NULL};
    static const char *const ascii[] = {"ascii", "us_ascii", "us", "646", "ansi_x3_4_1968",
                        "ansi_x3_4_1986", "cp367", "csascii", "ibm367",
                        "iso646_us", "iso_646_irv_1991", "iso_ir_6", NULL};
    static const char *const single[] = {"koi8_r", "koi8_u", "koi8_t", "cp437", "cp850",
                         "cp852", "cp855", "cp857", "cp858", "cp860", "cp861",
                         "cp862", "cp863", "cp864", "cp865", "cp866", "cp869",
                         "mac_roman", "macroman", "mac_latin2", "mac_cyrillic",
                         "mac_greek", "mac_iceland", "mac_turkish", "ptcp154",
                         "kz1048", "tis_620", "hp_roman8", NULL};
    if (name_in(norm, utf8) || has_prefix(norm, "utf_8_")) {
        *enc = ST_PYENC_UTF8;
    } else if (name_in(norm, latin1) || has_prefix(norm, "latin_1_") ||
           has_prefix(norm, "iso_8859_1_") || has_prefix(norm, "iso_latin_1_")) {
        *enc = ST_PYENC_LATIN1;
    } else if (name_in(norm, ascii)) {
        *enc = ST_PYENC_ASCII;
    } else if (name_in(norm, single) || has_prefix(norm, "iso_8859_") ||
           has_prefix(norm, "iso8859_") || has_prefix(norm, "windows_125") ||
           (has_prefix(norm, "cp125") && strlen(norm) == 6) ||
           (has_prefix(norm, "latin") && strlen(norm) <= 7) ||
           (norm[0] == 'l' && norm[1] >= '1' && norm[1] <= '9' && strlen(norm) <= 3)) {
        *enc = ST_PYENC_SINGLEBYTE;
    } else {
        return ST_PYSCAN_EENCODING;
    }
    return ST_PYSCAN_OK;
}

/* Finds a coding spec in line[0..n): the line must be blank up to '#'. Returns the length of
 * the raw encoding name at *name (0: no cookie). *code_line is set when the line holds
 * something other than blanks and a comment. */
static size_t find_cookie(const unsigned char *line, size_t n, const unsigned char **name,
              bool *code_line)
{
    size_t i = 0;
    *code_line = false;
    while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\f'))
        i++;
    if (i >= n)
        return 0;
    if (line[i] != '#') {
        *code_line = true;
        return 0;
    }
    for (; i + 6 <= n; i++) {
        if (memcmp(line + i, "coding", 6) != 0)
            continue;
        size_t k = i + 6;
        if (k >= n || (line[k] != ':' && line[k] != '='))
            continue;
        k++;
        while (k < n && (line[k] == ' ' || line[k] == '\t'))
            k++;
        size_t b = k;
        while (k < n && ((line[k] >= 'a' && line[k] <= 'z') || (line[k] >= 'A' && line[k] <= 'Z') ||
                 (line[k] >= '0' && line[k] <= '9') || line[k] == '-' ||
                 line[k] == '_' || line[k] == '.'))
            k++;
        if (k > b) {
            *name = line + b;
            return k - b;
        }
    }
    return 0;
}

/* Returns the offset of the first invalid UTF-8 sequence, or len if none. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (i + n > len)
            return i;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += n;
    }
    return len;
}

static unsigned line_of(const unsigned char *s, size_t off)
{
    unsigned line = 1;
    for (size_t i = 0; i < off; i++)
        if (s[i] == '\n' || (s[i] == '\r' && !(i + 1 < off && s[i + 1] == '\n')))
            line++;
    return line;
}

int st_pyscan_detect_encoding(const char *buf, size_t len, st_pyenc *enc, size_t *body_offset,
                  char *errbuf, size_t errlen)
{
    const unsigned char *s = (const unsigned char *)buf;
    bool bom = false;
    *enc = ST_PYENC_UTF8;
    *body_offset = 0;
    if (len >= 2 && ((s[0] == 0xFF && s[1] == 0xFE) || (s[0] == 0xFE && s[1] == 0xFF))) {
        st_set_err(errbuf, errlen, "line 1: UTF-16/UTF-32 byte order mark");
        return ST_PYSCAN_EENCODING;
    }
    const unsigned char *nul = memchr(s, 0, len);
    if (nul) {
        st_set_err(errbuf, errlen, "line %u: source contains a NUL byte",
            line_of(s, (size_t)(nul - s)));
        return ST_PYSCAN_ENUL;
    }
    if (len >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) {
        bom = true;
        *body_offset = 3;
    }
    /* the first two lines */
    const unsigned char *p = s + *body_offset, *end = s + len;
    for (unsigned lineno = 1; lineno <= 2 && p < end; lineno++) {
        const unsigned char *e = p;
        while (e < end && *e != '\n' && *e != '\r')
            e++;
        const unsigned char *name = NULL;
        bool code_line;
        size_t n = find_cookie(p, (size_t)(e - p), &name, &code_line);
        if (n) {
            char raw[64], norm[64];
            size_t cut = n < sizeof raw - 1 ? n : sizeof raw - 1;
            memcpy(raw, name, cut);
            raw[cut] = '\0';
            normalise_codec(raw, cut, norm, sizeof norm);
            if (classify_codec(norm, enc) != ST_PYSCAN_OK) {
                st_set_err(errbuf, errlen, "line %u: unsupported source encoding '%s'", lineno,
                    raw);
                return ST_PYSCAN_EENCODING;
            }
            if (bom && *enc != ST_PYENC_UTF8) {
                st_set_err(errbuf, errlen, "line %u: UTF-8 BOM with encoding cookie '%s'",
                    lineno, raw);
                return ST_PYSCAN_EENCODING;
            }
            break;
        }
        if (code_line)
            break;
        if (e < end && *e == '\r' && e + 1 < end && e[1] == '\n')
            e++;
        p = e + 1;
    }
    const unsigned char *body = s + *body_offset;
    size_t blen = len - *body_offset;
    if (*enc == ST_PYENC_UTF8) {
        size_t bad = utf8_invalid_at(body, blen);
        if (bad < blen) {
            st_set_err(errbuf, errlen, "line %u: invalid UTF-8",
                line_of(s, *body_offset + bad));
            return ST_PYSCAN_EDECODE;
        }
    } else if (*enc == ST_PYENC_ASCII) {
        for (size_t i = 0; i < blen; i++) {
            if (body[i] >= 0x80) {
                st_set_err(errbuf, errlen, "line %u: non-ASCII byte in an ascii file",
                    line_of(s, *body_offset + i));
                return ST_PYSCAN_EDECODE;
            }
        }
    }
    return ST_PYSCAN_OK;
}

/* ---- name buffers and normalisation ------------------------------------------------------ */

/* Name buffers are st_bufs; sb_put says whether the append (and every one before) worked. */
static int sb_put(st_buf *b, const void *s, size_t n)
{
    st_buf_append(b, s, n);
    return b->oom ? ST_ERR_NOMEM : ST_OK;
}

static size_t put_utf8(uint32_t cp, unsigned char *o)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The NFKC subset of pyscan.h. Writes the replacement to o and returns its length. */
static size_t nfkc_subset(uint32_t cp, unsigned char *o)
{
    static const char *const lig[] = {"ff", "fi", "fl", "ffi", "ffl", "st", "st"};
    if (cp >= 0xFF01 && cp <= 0xFF5E)
        return put_utf8(cp - 0xFEE0, o);
    if (cp >= 0xFB00 && cp <= 0xFB06) {
        size_t n = strlen(lig[cp - 0xFB00]);
        memcpy(o, lig[cp - 0xFB00], n);
        return n;
    }
    if (cp >= 0x1D400 && cp <= 0x1D6A3) {
        uint32_t k = (cp - 0x1D400) % 52;
        return put_utf8(k < 26 ? 'A' + k : 'a' + (k - 26), o);
    }
    if (cp >= 0x1D7CE && cp <= 0x1D7FF)
        return put_utf8('0' + (cp - 0x1D7CE) % 10, o);
    switch (cp) {
    case 0xAA: return put_utf8('a', o);
    case 0xBA: return put_utf8('o', o);
    case 0xB5: return put_utf8(0x3BC, o);
    case 0x17F: return put_utf8('s', o);
    default: return put_utf8(cp, o);
    }
}

/* Appends source text s[0..n) to b as UTF-8; normalises identifiers when nfkc.
 * Returns 0, -1 on ENOMEM, 1 when the text cannot be represented (drop the record). */
static int append_text(st_buf *b, const unsigned char *s, size_t n, st_pyenc enc, bool nfkc)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] < 0x80)
            j++;
        if (j > i && sb_put(b, s + i, j - i))
            return ST_ERR_NOMEM;
        if (j >= n)
            break;
        uint32_t cp;
        size_t used;
        if (enc == ST_PYENC_LATIN1) {
            cp = s[j];
            used = 1;
        } else if (enc == ST_PYENC_UTF8) {
            unsigned char c = s[j];
            size_t k = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (j + k > n)
                return 1;
            cp = c & (k == 4 ? 0x07 : k == 3 ? 0x0F : 0x1F);
            for (size_t m = 1; m < k; m++)
                cp = (cp << 6) | (s[j + m] & 0x3F);
            used = k;
        } else {
            return 1;
        }
        unsigned char o[8];
        size_t on = nfkc ? nfkc_subset(cp, o) : put_utf8(cp, o);
        if (sb_put(b, o, on))
            return ST_ERR_NOMEM;
        i = j + used;
    }
    return 0;
}

/* ---- the parser ---------------------------------------------------------------------------- */

enum il_state { IL_IDLE, IL_LIB, IL_LIBDOT, IL_FUNC, IL_ARG1, IL_ARG1S, IL_ARG2, IL_ARG2S };

typedef struct parser {
    lexer lx;
    st_pyenc enc;
    st_pyscan_cb cb;
    void *userdata;
    int status;
    token pending;
    bool has_pending;
    /* import statements */
    st_buf module;
    bool module_bad;
    st_buf names;            /* NUL-separated */
    size_t *name_offs;
    size_t n_names, cap_names;
    const char **name_ptrs;
    size_t cap_ptrs;
    /* the importlib call recogniser */
    enum il_state il;
    bool il_dunder;
    bool il_bad;
    unsigned il_line;
    st_buf il_name, il_pkg;
} parser;

static void fail(parser *ps, int status)
{
    if (ps->status == ST_PYSCAN_OK)
        ps->status = status;
}

static void emit(parser *ps, st_pyimport *imp)
{
    if (ps->status != ST_PYSCAN_OK)
        return;
    if (ps->cb(imp, ps->userdata) != 0)
        fail(ps, ST_PYSCAN_ECALLBACK);
}

static bool dotted_ok(const char *s, size_t len)
{
    if (len > ST_PYSCAN_MAX_NAME)
        return false;
    size_t comp = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            comp = 0;
        } else if (++comp > 255) {
            return false;
        }
    }
    return true;
}

static void il_reset(parser *ps)
{
    ps->il = IL_IDLE;
    ps->il_bad = false;
    ps->il_name.len = 0;
    ps->il_pkg.len = 0;
}

static void il_emit(parser *ps)
{
    const char *name = ps->il_name.data ? ps->il_name.data : "";
    size_t len = ps->il_name.len;
    if (ps->il_bad || len == 0)
        return;
    unsigned level = 0;
    while (level < len && name[level] == '.')
        level++;
    if (level && (ps->il_dunder || ps->il == IL_ARG1S))
        return; /* __import__(".x") or import_module(".x") without a package: fails */
    const char *pkg = NULL;
    if (level && ps->il == IL_ARG2S)
        pkg = ps->il_pkg.data ? ps->il_pkg.data : "";
    if (level && (!pkg || !*pkg))
        return;
    if (!dotted_ok(name + level, len - level))
        return;
    st_pyimport imp = {.kind = ST_PYIMPORT_IMPORTLIB, .module = name + level, .level = level,
               .package = pkg, .line = ps->il_line};
    emit(ps, &imp);
}

static void il_append(parser *ps, st_buf *b, const token *t)
{
    if (!t->str_plain) {
        ps->il_bad = true;
        return;
    }
    int r = append_text(b, t->start, t->len, ps->enc, false);
    if (r < 0)
        fail(ps, ST_PYSCAN_ENOMEM);
    else if (r > 0 || b->len > ST_PYSCAN_MAX_NAME)
        ps->il_bad = true;
}

/* Feeds every lexed token to the importlib call recogniser. */
static void il_feed(parser *ps, const token *t)
{
    bool after_dot = t->after_dot;
    for (int again = 0; again < 2; again++) {
        switch (ps->il) {
        case IL_IDLE:
            if (t->type != T_NAME || after_dot)
                return;
            if (t->kw == KW_IMPORTLIB) {
                ps->il = IL_LIB;
                ps->il_line = t->line;
            } else if (t->kw == KW_IMPORT_MODULE || t->kw == KW_DUNDER_IMPORT) {
                ps->il = IL_FUNC;
                ps->il_dunder = t->kw == KW_DUNDER_IMPORT;
                ps->il_line = t->line;
            }
            return;
        case IL_LIB:
            if (t->type == T_DOT) {
                ps->il = IL_LIBDOT;
                return;
            }
            break;
        case IL_LIBDOT:
            if (t->type == T_NAME && t->kw == KW_IMPORT_MODULE) {
                ps->il = IL_FUNC;
                ps->il_dunder = false;
                return;
            }
            break;
        case IL_FUNC:
            if (t->type == T_OP && t->op == '(') {
                ps->il = IL_ARG1;
                return;
            }
            break;
        case IL_ARG1:
            if (t->type == T_STRING) {
                il_append(ps, &ps->il_name, t);
                ps->il = IL_ARG1S;
                return;
            }
            break;
        case IL_ARG1S:
            if (t->type == T_STRING) {
                il_append(ps, &ps->il_name, t);
                return;
            }
            if (t->type == T_OP && t->op == ')') {
                il_emit(ps);
                il_reset(ps);
                return;
            }
            if (t->type == T_OP && t->op == ',') {
                bool relative = ps->il_name.len && ps->il_name.data[0] == '.';
                if (ps->il_dunder || !relative) {
                    il_emit(ps);
                    il_reset(ps);
                } else {
                    ps->il = IL_ARG2;
                }
                return;
            }
            break;
        case IL_ARG2:
            if (t->type == T_STRING) {
                il_append(ps, &ps->il_pkg, t);
                ps->il = IL_ARG2S;
                return;
            }
            break;
        case IL_ARG2S:
            if (t->type == T_STRING) {
                il_append(ps, &ps->il_pkg, t);
                return;
            }
            if (t->type == T_OP && (t->op == ')' || t->op == ',')) {
                il_emit(ps);
                il_reset(ps);
                return;
            }
            break;
        }
        il_reset(ps); /* pattern broken: the token may start a new one */
    }
}

static void next_mode(parser *ps, token *t, bool quiet)
{
    if (ps->has_pending) {
        *t = ps->pending;
        ps->has_pending = false;
        return;
    }
    lex_next(&ps->lx, t, quiet);
    t->in_fstring = ps->lx.nframes > 1;
    if (ps->lx.status != ST_PYSCAN_OK)
        fail(ps, ps->lx.status);
    il_feed(ps, t);
}

static void next(parser *ps, token *t)
{
    next_mode(ps, t, false);
}

static void push_back(parser *ps, const token *t)
{
    ps->pending = *t;
    ps->has_pending = true;
}

static bool is_plain_name(const token *t)
{
    return t->type == T_NAME && t->kw != KW_IMPORT && t->kw != KW_FROM;
}

static void module_add(parser *ps, const token *t)
{
    int r = append_text(&ps->module, t->start, t->len, ps->enc, true);
    if (r < 0)
        fail(ps, ST_PYSCAN_ENOMEM);
    else if (r > 0)
        ps->module_bad = true;
}

/* Parses NAME ('.' NAME)* into ps->module starting at token *t; leaves the following token in
 * *t. Returns false (and leaves *t) if *t is not a name. */
static bool parse_dotted(parser *ps, token *t)
{
    ps->module.len = 0;
    ps->module_bad = false;
    if (sb_put(&ps->module, "", 0)) {
        fail(ps, ST_PYSCAN_ENOMEM);
        return false;
    }
    ps->module.data[0] = '\0';
    if (!is_plain_name(t))
        return false;
    module_add(ps, t);
    for (;;) {
        next(ps, t);
        if (t->type != T_DOT)
            return true;
        next(ps, t);
        if (!is_plain_name(t)) {
            ps->module_bad = true; /* `import a.` is a syntax error */
            return true;
        }
        if (sb_put(&ps->module, ".", 1))
            fail(ps, ST_PYSCAN_ENOMEM);
        module_add(ps, t);
    }
}

static bool module_ok(parser *ps)
{
    return !ps->module_bad && dotted_ok(ps->module.data, ps->module.len);
}

static void skip_alias(parser *ps, token *t)
{
    if (t->type == T_NAME && t->kw == KW_AS) {
        next(ps, t);
        if (t->type == T_NAME)
            next(ps, t);
    }
}

static void parse_import(parser *ps, unsigned line)
{
    token t;
    for (;;) {
        next(ps, &t);
        if (!parse_dotted(ps, &t))
            break;
        if (module_ok(ps)) {
            st_pyimport imp = {.kind = ST_PYIMPORT_IMPORT, .module = ps->module.data,
                       .line = line};
            emit(ps, &imp);
        }
        skip_alias(ps, &t);
        if (!(t.type == T_OP && t.op == ','))
            break;
    }
    push_back(ps, &t);
}

static int names_add(parser *ps, const token *t)
{
    if (ps->n_names == ps->cap_names) {
        size_t cap = ps->cap_names ? 2 * ps->cap_names : 16;
        size_t *o = realloc(ps->name_offs, cap * sizeof *o);
        if (!o)
            return ST_ERR_NOMEM;
        ps->name_offs = o;
        ps->cap_names = cap;
    }
    size_t off = ps->names.len;
    int r = append_text(&ps->names, t->start, t->len, ps->enc, true);
    if (r < 0)
        return ST_ERR_NOMEM;
    if (r > 0 || ps->names.len - off > 255) {
        ps->names.len = off; /* unrepresentable name: drop it */
        return 0;
    }
    if (sb_put(&ps->names, "", 1))
        return ST_ERR_NOMEM;
    ps->name_offs[ps->n_names++] = off;
    return 0;
}

static void emit_from(parser *ps, unsigned level, bool star, unsigned line)
{
    if (ps->n_names > ps->cap_ptrs) {
        const char **p = realloc(ps->name_ptrs, ps->n_names * sizeof *p);
        if (!p) {
            fail(ps, ST_PYSCAN_ENOMEM);
            return;
        }
        ps->name_ptrs = p;
        ps->cap_ptrs = ps->n_names;
    }
    for (size_t i = 0; i < ps->n_names; i++)
        ps->name_ptrs[i] = ps->names.data + ps->name_offs[i];
    st_pyimport imp = {.kind = ST_PYIMPORT_FROM, .module = ps->module.data, .level = level,
               .names = ps->name_ptrs, .n_names = ps->n_names, .star = star,
               .line = line};
    emit(ps, &imp);
}

static void parse_from(parser *ps, unsigned line)
{
    token t;
    unsigned level = 0;
    next(ps, &t);
    while (t.type == T_DOT) {
        if (level < 1000000)
            level++;
        next(ps, &t);
    }
    if (!parse_dotted(ps, &t) && level == 0)
        goto not_import;
    if (!(t.type == T_NAME && t.kw == KW_IMPORT))
        goto not_import;
    bool ok = module_ok(ps);
    ps->n_names = 0;
    ps->names.len = 0;
    next(ps, &t);
    if (t.type == T_OP && t.op == '*') {
        if (ok)
            emit_from(ps, level, true, line);
        return;
    }
    bool paren = t.type == T_OP && t.op == '(';
    if (paren)
        next(ps, &t);
    while (is_plain_name(&t)) {
        if (names_add(ps, &t)) {
            fail(ps, ST_PYSCAN_ENOMEM);
            return;
        }
        next(ps, &t);
        skip_alias(ps, &t);
        if (!(t.type == T_OP && t.op == ','))
            break;
        next(ps, &t);
    }
    if (ok && ps->n_names > 0)
        emit_from(ps, level, false, line);
    if (paren && t.type == T_OP && t.op == ')')
        return;
not_import:
    push_back(ps, &t);
}

int st_pyscan_buffer(const char *buf, size_t len, st_pyscan_cb cb, void *userdata,
             char *errbuf, size_t errlen)
{
    parser *ps = NULL;
    size_t offset;
    st_pyenc enc;
    int status = st_pyscan_detect_encoding(buf, len, &enc, &offset, errbuf, errlen);
    if (status != ST_PYSCAN_OK)
        return status;
    ps = calloc(1, sizeof *ps);
    if (!ps) {
        status = ST_PYSCAN_ENOMEM;
        goto out;
    }
    ps->enc = enc;
    ps->cb = cb;
    ps->userdata = userdata;
    ps->lx.p = (const unsigned char *)buf + offset;
    ps->lx.end = (const unsigned char *)buf + len;
    ps->lx.line = 1;
    ps->lx.nframes = 1;
    ps->lx.frames[0].kind = F_CODE;
    token t;
    for (;;) {
        next_mode(ps, &t, ps->il == IL_IDLE);
        if (t.type == T_EOF || ps->status != ST_PYSCAN_OK)
            break;
        if (t.type != T_NAME || t.in_fstring)
            continue; /* a statement never sits inside an f-string field */
        if (t.kw == KW_IMPORT)
            parse_import(ps, t.line);
        else if (t.kw == KW_FROM)
            parse_from(ps, t.line);
        if (ps->status != ST_PYSCAN_OK)
            break;
    }
    status = ps->status;
    if (status == ST_PYSCAN_EDEPTH)
        st_set_err(errbuf, errlen, "line %u: f-strings nested too deeply", ps->lx.line);
    else if (status == ST_PYSCAN_ENOMEM)
        st_set_err(errbuf, errlen, "line %u: out of memory", ps->lx.line);
    else if (status == ST_PYSCAN_ECALLBACK)
        st_set_err(errbuf, errlen, "line %u: stopped by the callback", ps->lx.line);
out:
    if (ps) {
        free(ps->module.data);
        free(ps->names.data);
        free(ps->name_offs);
        free(ps->name_ptrs);
        free(ps->il_name.data);
        free(ps->il_pkg.data);
        free(ps);
    }
    return status;
}

static const st_enum_name pyscan_errors[] = {
    {ST_PYSCAN_OK, "success"},
    {ST_PYSCAN_EENCODING, "unsupported source encoding"},
    {ST_PYSCAN_ENUL, "source contains a NUL byte"},
    {ST_PYSCAN_EDECODE, "source is not valid in its encoding"},
    {ST_PYSCAN_ENOMEM, "out of memory"},
    {ST_PYSCAN_EDEPTH, "f-strings nested too deeply"},
    {ST_PYSCAN_ECALLBACK, "stopped by the callback"},
};

const char *st_pyscan_strerror(int status)
{
    return ST_ENUM_NAME(pyscan_errors, status, "unknown pyscan status");
}
