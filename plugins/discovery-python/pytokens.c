/* SPDX-License-Identifier: MIT */
/* pytokens: the compact Python tokenizer behind discovery-python's classification (see
 * pytokens.h for what it produces and its bounds). */
#include "config.h"

#include "pytokens.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PYTOK_COMMENT 100 /* internal: comments never enter the stream */
#define PYTOK_END 101

typedef struct lexer {
    const unsigned char *s;
    size_t n, i;
    size_t line;           /* physical line of i, 1-based */
    long depth;            /* bracket depth; newlines inside brackets are not NEWLINE */
    int at_line_start;     /* next char starts a physical line whose indentation counts */
    int line_has_tokens;   /* the current logical line emitted a token */
    int first_pending;     /* the next real token starts a logical line */
    int first_col;         /* its indentation column */
    int indents[PYTOK_MAX_INDENT];
    int n_indents;
    int pending_dedents, pending_indent;
} lexer;

typedef struct token {
    int kind;
    size_t start, len;
    size_t line;
    int first;     /* first token of a logical line */
    int col;       /* its indentation column when first */
} token;

static int is_name_start(unsigned char c)
{
    return isalpha(c) || c == '_' || c >= 0x80;
}

static int is_name_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c >= 0x80;
}

static size_t scan_fexpr(const unsigned char *s, size_t n, size_t i, int depth);

/* i is just after the opening quote(s); returns the index after the closing quote(s), or where
 * an unterminated literal stops (end of line for single quotes, end of input). */
static size_t scan_string(const unsigned char *s, size_t n, size_t i, unsigned char q, int triple,
                          int fmt, int depth)
{
    while (i < n) {
        unsigned char c = s[i];
        if (c == '\\') {
            i += 2;
            continue;
        }
        if (!triple && (c == '\n' || c == '\r'))
            return i;
        if (c == q) {
            if (!triple)
                return i + 1;
            if (i + 2 < n && s[i + 1] == q && s[i + 2] == q)
                return i + 3;
        }
        if (fmt && c == '{') {
            if (i + 1 < n && s[i + 1] == '{') {
                i += 2;
                continue;
            }
            if (depth < PYTOK_MAX_FSTRING_DEPTH) {
                i = scan_fexpr(s, n, i + 1, depth + 1);
                continue;
            }
        }
        i++;
    }
    return n;
}

/* A string prefix of up to three letters (r, b, u, f, t in any case) just before s[i]; returns
 * 1 with *fmt set when s[start..i) is one. */
static int string_prefix(const unsigned char *s, size_t start, size_t i, int *fmt)
{
    if (i - start > 3)
        return 0;
    *fmt = 0;
    for (size_t k = start; k < i; k++) {
        int c = tolower(s[k]);
        if (c == 'f' || c == 't')
            *fmt = 1;
        else if (c != 'r' && c != 'b' && c != 'u')
            return 0;
    }
    return 1;
}

/* Start of a literal at s[i] (a quote): returns the index after it. */
static size_t scan_literal(const unsigned char *s, size_t n, size_t i, int fmt, int depth)
{
    unsigned char q = s[i];
    int triple = i + 2 < n && s[i + 1] == q && s[i + 2] == q;
    return scan_string(s, n, i + (triple ? 3 : 1), q, triple, fmt, depth);
}

/* The replacement field of an f-string, from just after '{' to just after its '}'. Nested
 * literals may reuse the outer quote (3.12). */
static size_t scan_fexpr(const unsigned char *s, size_t n, size_t i, int depth)
{
    long br = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c == '(' || c == '[' || c == '{') {
            br++;
        } else if (c == ')' || c == ']') {
            if (br > 0)
                br--;
        } else if (c == '}') {
            if (br == 0)
                return i + 1;
            br--;
        } else if (c == ':' && br == 0) {
            /* format spec: literal text with nested replacement fields */
            i++;
            while (i < n && s[i] != '}') {
                if (s[i] == '{' && depth < PYTOK_MAX_FSTRING_DEPTH)
                    i = scan_fexpr(s, n, i + 1, depth + 1);
                else if (s[i] == '\n' || s[i] == '\r' || s[i] == '"' || s[i] == '\'')
                    return i; /* malformed: let the enclosing literal decide */
                else
                    i++;
            }
            return i < n ? i + 1 : n;
        } else if (c == '#') {
            while (i < n && s[i] != '\n' && s[i] != '\r')
                i++;
            continue;
        } else if (c == '\'' || c == '"') {
            size_t start = i;
            while (start > 0 && isalpha(s[start - 1]))
                start--;
            int fmt = 0;
            if (!string_prefix(s, start, i, &fmt))
                fmt = 0;
            i = scan_literal(s, n, i, fmt, depth);
            continue;
        } else if (c == '\\') {
            i += 2;
            continue;
        }
        i++;
    }
    return n;
}

static const char *const ops3[] = {"**=", "//=", ">>=", "<<=", "...", NULL};
static const char *const ops2[] = {"**", "//", ">>", "<<", "<=", ">=", "==", "!=", "->", "+=",
                                   "-=", "*=", "/=", "%=", "&=", "|=", "^=", "@=", ":=", NULL};

static size_t op_length(const unsigned char *s, size_t n, size_t i)
{
    for (size_t k = 0; ops3[k]; k++)
        if (i + 3 <= n && memcmp(s + i, ops3[k], 3) == 0)
            return 3;
    for (size_t k = 0; ops2[k]; k++)
        if (i + 2 <= n && memcmp(s + i, ops2[k], 2) == 0)
            return 2;
    return 1;
}

/* Indentation of the physical line at lx->i; sets up INDENT/DEDENT for a logical line start. */
static void line_start(lexer *lx)
{
    int col = 0;
    while (lx->i < lx->n) {
        unsigned char c = lx->s[lx->i];
        if (c == ' ')
            col++;
        else if (c == '\t')
            col = (col / 8 + 1) * 8;
        else if (c == '\f')
            col = 0;
        else
            break;
        lx->i++;
        if (col > 1 << 20)
            col = 1 << 20;
    }
    lx->at_line_start = 0;
    if (lx->i >= lx->n)
        return;
    unsigned char c = lx->s[lx->i];
    if (c == '#' || c == '\n' || c == '\r')
        return; /* blank or comment-only: indentation does not count */
    int top = lx->indents[lx->n_indents - 1];
    if (col > top) {
        if (lx->n_indents < PYTOK_MAX_INDENT) {
            lx->indents[lx->n_indents++] = col;
            lx->pending_indent = 1;
        }
    } else {
        while (lx->n_indents > 1 && lx->indents[lx->n_indents - 1] > col) {
            lx->n_indents--;
            lx->pending_dedents++;
        }
    }
    lx->first_pending = 1;
    lx->first_col = col;
}

static void emit(lexer *lx, token *t, int kind, size_t start, size_t len)
{
    t->kind = kind;
    t->start = start;
    t->len = len;
    t->line = lx->line;
    t->first = 0;
    t->col = 0;
    if (kind != PYTOK_COMMENT && kind != PYTOK_NEWLINE && kind != PYTOK_INDENT &&
        kind != PYTOK_DEDENT) {
        lx->line_has_tokens = 1;
        if (lx->first_pending) {
            t->first = 1;
            t->col = lx->first_col;
            lx->first_pending = 0;
        }
    }
}

static void count_lines(lexer *lx, size_t from, size_t to)
{
    for (size_t k = from; k < to; k++)
        if (lx->s[k] == '\n' || (lx->s[k] == '\r' && (k + 1 >= to || lx->s[k + 1] != '\n')))
            lx->line++;
}

static void next_token(lexer *lx, token *t)
{
    for (;;) {
        if (lx->pending_dedents > 0) {
            lx->pending_dedents--;
            emit(lx, t, PYTOK_DEDENT, lx->i, 0);
            return;
        }
        if (lx->pending_indent) {
            lx->pending_indent = 0;
            emit(lx, t, PYTOK_INDENT, lx->i, 0);
            return;
        }
        if (lx->at_line_start && lx->depth == 0) {
            line_start(lx);
            continue;
        }
        if (lx->i >= lx->n) {
            if (lx->line_has_tokens) {
                lx->line_has_tokens = 0;
                emit(lx, t, PYTOK_NEWLINE, lx->n, 0);
            } else if (lx->n_indents > 1) {
                lx->n_indents--;
                emit(lx, t, PYTOK_DEDENT, lx->n, 0);
            } else {
                emit(lx, t, PYTOK_END, lx->n, 0);
            }
            return;
        }
        const unsigned char *s = lx->s;
        size_t i = lx->i, n = lx->n;
        unsigned char c = s[i];
        if (c == ' ' || c == '\t' || c == '\f') {
            lx->i++;
            continue;
        }
        if (c == '\n' || c == '\r') {
            lx->i += (c == '\r' && i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
            lx->line++;
            if (lx->depth > 0)
                continue;
            lx->at_line_start = 1;
            if (lx->line_has_tokens) {
                lx->line_has_tokens = 0;
                emit(lx, t, PYTOK_NEWLINE, i, 0);
                return;
            }
            continue;
        }
        if (c == '\\' && i + 1 < n && (s[i + 1] == '\n' || s[i + 1] == '\r')) {
            lx->i += (s[i + 1] == '\r' && i + 2 < n && s[i + 2] == '\n') ? 3 : 2;
            lx->line++;
            continue;
        }
        if (c == '#') {
            size_t e = i;
            while (e < n && s[e] != '\n' && s[e] != '\r')
                e++;
            lx->i = e;
            emit(lx, t, PYTOK_COMMENT, i, e - i);
            return;
        }
        if (is_name_start(c)) {
            size_t e = i;
            while (e < n && is_name_char(s[e]))
                e++;
            int fmt = 0;
            if (e < n && (s[e] == '\'' || s[e] == '"') && string_prefix(s, i, e, &fmt)) {
                size_t end = scan_literal(s, n, e, fmt, 0);
                lx->i = end;
                emit(lx, t, PYTOK_STRING, i, end - i);
                count_lines(lx, i, end);
                return;
            }
            lx->i = e;
            emit(lx, t, PYTOK_NAME, i, e - i);
            return;
        }
        if (isdigit(c) || (c == '.' && i + 1 < n && isdigit(s[i + 1]))) {
            size_t e = i + 1;
            int hex = c == '0' && e < n && (s[e] == 'x' || s[e] == 'X');
            while (e < n) {
                unsigned char d = s[e];
                /* digits, letters (suffixes, hex), '_', '.', and the sign of an exponent */
                if (isalnum(d) || d == '_' || d == '.' ||
                    ((d == '+' || d == '-') && !hex && (s[e - 1] == 'e' || s[e - 1] == 'E')))
                    e++;
                else
                    break;
            }
            lx->i = e;
            emit(lx, t, PYTOK_NUMBER, i, e - i);
            return;
        }
        if (c == '\'' || c == '"') {
            size_t end = scan_literal(s, n, i, 0, 0);
            lx->i = end;
            emit(lx, t, PYTOK_STRING, i, end - i);
            count_lines(lx, i, end);
            return;
        }
        if (c == '(' || c == '[' || c == '{')
            lx->depth++;
        else if ((c == ')' || c == ']' || c == '}') && lx->depth > 0)
            lx->depth--;
        size_t len = op_length(s, n, i);
        lx->i = i + len;
        emit(lx, t, PYTOK_OP, i, len);
        return;
    }
}

/* ---- analysis -------------------------------------------------------------------------------- */

static int contains_marker(const unsigned char *s, size_t len)
{
    static const char *const words[] = {"deprecated", "legacy"};
    for (size_t w = 0; w < 2; w++) {
        size_t wl = strlen(words[w]);
        for (size_t i = 0; i + wl <= len; i++) {
            size_t k = 0;
            while (k < wl && tolower(s[i + k]) == words[w][k])
                k++;
            if (k == wl)
                return 1;
        }
    }
    return 0;
}

static int name_is(const lexer *lx, const token *t, const char *word)
{
    size_t wl = strlen(word);
    return t->kind == PYTOK_NAME && t->len == wl && memcmp(lx->s + t->start, word, wl) == 0;
}

/* One statement (a logical line, or a part of one between top-level ';'). */
typedef struct statement {
    size_t n_tokens;
    int all_strings;
    int first_is_import, first_is_pass;
    int has_warn, has_depwarn;
    size_t line;
} statement;

typedef struct analysis {
    pytok_facts *f;
    int seen_code;         /* a real token was seen (top-of-file comments end there) */
    int in_docstring_stmt; /* the current statement is the first one and starts with a string */
    int docstring_marked;
    long block_col;        /* indentation of the enclosing module-level def/class, or -1 */
    statement st;
} analysis;

static void set_legacy(analysis *a, const char *where, size_t line)
{
    if (a->f->legacy)
        return;
    a->f->legacy = 1;
    if (line)
        snprintf(a->f->legacy_where, sizeof(a->f->legacy_where), "%s (line %zu)", where, line);
    else
        snprintf(a->f->legacy_where, sizeof(a->f->legacy_where), "%s", where);
}

static void end_statement(analysis *a)
{
    statement *st = &a->st;
    if (st->n_tokens > 0) {
        int harmless = st->all_strings || st->first_is_import ||
                       (st->first_is_pass && st->n_tokens == 1);
        if (!harmless)
            a->f->empty = 0;
        if (a->in_docstring_stmt && st->all_strings && a->docstring_marked)
            set_legacy(a, "module docstring", 0);
        if (a->block_col < 0 && st->has_warn && st->has_depwarn)
            set_legacy(a, "module-level DeprecationWarning", st->line);
    }
    a->in_docstring_stmt = 0;
    memset(st, 0, sizeof(*st));
}

static void statement_token(analysis *a, const lexer *lx, const token *t)
{
    statement *st = &a->st;
    if (st->n_tokens == 0) {
        st->all_strings = 1;
        st->line = t->line;
        st->first_is_import = name_is(lx, t, "import") || name_is(lx, t, "from");
        st->first_is_pass = name_is(lx, t, "pass");
    }
    st->n_tokens++;
    if (t->kind != PYTOK_STRING)
        st->all_strings = 0;
    if (name_is(lx, t, "warn") || name_is(lx, t, "warn_explicit"))
        st->has_warn = 1;
    if (name_is(lx, t, "DeprecationWarning"))
        st->has_depwarn = 1;
}

int pytok_analyze(const char *src, size_t len, pytok_facts *facts, st_buf *stream)
{
    memset(facts, 0, sizeof(*facts));
    facts->empty = 1;
    facts->hash = 1469598103934665603ull;
    lexer lx = {.s = (const unsigned char *)src, .n = len, .line = 1, .at_line_start = 1,
                .n_indents = 1};
    if (len >= 3 && memcmp(src, "\xef\xbb\xbf", 3) == 0)
        lx.i = 3;
    analysis a = {.f = facts, .block_col = -1};
    for (;;) {
        token t;
        next_token(&lx, &t);
        if (t.kind == PYTOK_END)
            break;
        const unsigned char *text = lx.s + t.start;
        if (t.kind == PYTOK_COMMENT) {
            if (!a.seen_code && contains_marker(text, t.len))
                set_legacy(&a, "top-of-file comment", t.line);
            continue;
        }
        /* the normalised stream */
        unsigned char kind = (unsigned char)t.kind, sep = 0xff;
        facts->hash = (facts->hash ^ kind) * 1099511628211ull;
        for (size_t k = 0; k < t.len; k++)
            facts->hash = (facts->hash ^ text[k]) * 1099511628211ull;
        facts->hash = (facts->hash ^ sep) * 1099511628211ull;
        facts->n_tokens++;
        if (stream) {
            st_buf_append(stream, &kind, 1);
            st_buf_append(stream, text, t.len);
            st_buf_append(stream, &sep, 1);
        }
        /* statements */
        if (t.kind == PYTOK_NEWLINE) {
            end_statement(&a);
            continue;
        }
        if (t.kind == PYTOK_INDENT || t.kind == PYTOK_DEDENT)
            continue;
        if (t.first) {
            if (a.block_col >= 0 && t.col <= a.block_col)
                a.block_col = -1;
            if (a.block_col < 0 && (name_is(&lx, &t, "def") || name_is(&lx, &t, "class") ||
                                    name_is(&lx, &t, "async")))
                a.block_col = t.col;
            if (!a.seen_code && t.kind == PYTOK_STRING)
                a.in_docstring_stmt = 1;
        }
        a.seen_code = 1;
        if (t.kind == PYTOK_OP && t.len == 1 && text[0] == ';' && lx.depth == 0) {
            end_statement(&a);
            continue;
        }
        if (a.in_docstring_stmt && t.kind == PYTOK_STRING && contains_marker(text, t.len))
            a.docstring_marked = 1;
        statement_token(&a, &lx, &t);
    }
    end_statement(&a);
    return stream && stream->oom ? -1 : 0;
}
