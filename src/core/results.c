/* SPDX-License-Identifier: MIT */
/* The results model (see results.h). */
#include "config.h"

#include "results.h"

#include "st_enum.h"

#include "coverage.h"
#include "exitstatus.h"
#include "json.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#define RESULTS_MAX_BYTES (512u << 20)  /* a results file larger than this is refused */
#define EXCERPT_MAX 4000
#define SKIP_REASON_MAX 1000

static const st_enum_name outcome_names[] = {
    {ST_OUT_PASSED, "passed"},   {ST_OUT_FAILED, "failed"},   {ST_OUT_ERROR, "error"},
    {ST_OUT_SKIPPED, "skipped"}, {ST_OUT_XFAILED, "xfailed"}, {ST_OUT_XPASSED, "xpassed"},
};
_Static_assert(ST_ENUM_COUNT(outcome_names) == ST_OUT_COUNT, "a name for every outcome");

const char *st_outcome_name(st_outcome o)
{
    return ST_ENUM_NAME(outcome_names, o, "unknown");
}

const char *st_check_verdict(const st_batch *c)
{
    return c->aborted || !c->done ? "aborted" : c->ok ? "passed" : c->unmet ? "unmet" : "failed";
}

const char *st_classification_name(st_classification c)
{
    return c == ST_CLASS_LEGACY ? "legacy" : c == ST_CLASS_REDUNDANT ? "redundant" : "candidate";
}

static int outcome_from_name(const char *s, st_outcome *o)
{
    int v;
    int rc = ST_ENUM_VALUE(outcome_names, s, &v);
    if (rc < 0)
        return rc;
    *o = (st_outcome)v;
    return ST_OK;
}

unsigned st_counts_passed(const st_counts *c)
{
    return c->n[ST_OUT_PASSED] + c->n[ST_OUT_XPASSED];
}

unsigned st_counts_failed(const st_counts *c)
{
    return c->n[ST_OUT_FAILED] + c->n[ST_OUT_ERROR];
}

void st_counts_add(st_counts *dst, const st_counts *src)
{
    for (int i = 0; i < ST_OUT_COUNT; i++)
        dst->n[i] += src->n[i];
    dst->flaky += src->flaky;
}

/* One event line, read with yajl's callback parser (no tree: this runs once per test, and the
 * tree parser was a third of the core's CPU time on large suites). Only the top-level scalar
 * keys the core uses and the "argv" list are kept. */
typedef struct event_fields {
    int depth;         /* 1 inside the event object */
    int top_seen;      /* a top-level value started */
    int top_not_object;
    int in_argv;
    char key[16];      /* the current top-level key (longer keys are not ours) */
    char *event, *nodeid, *file, *outcome, *phase, *excerpt, *out, *err;
    char *reason, *unmet; /* orphan checks: why the import failed, a missing package */
    char *skip_reason;    /* why a skipped or xfailed report was */
    double duration;
    char duration_text[32];
    const char *number_error; /* a number yajl would have refused (overflow), else NULL */
    long long workers;
    long long line;    /* the test's line (1-based), 0 when not given */
    st_strv argv;
} event_fields;

static void fields_free(event_fields *f)
{
    free(f->event);
    free(f->nodeid);
    free(f->file);
    free(f->outcome);
    free(f->phase);
    free(f->excerpt);
    free(f->out);
    free(f->err);
    free(f->reason);
    free(f->unmet);
    free(f->skip_reason);
    st_strv_free(&f->argv);
}

static int top_value(event_fields *f)
{
    if (f->depth == 0) {
        f->top_seen = 1;
        f->top_not_object = 1;
        return 0; /* stop: an event is an object */
    }
    return 1;
}

static int cb_null(void *ctx)
{
    return top_value(ctx);
}

static int cb_bool(void *ctx, int v)
{
    (void)v;
    return top_value(ctx);
}

/* Numbers arrive as yajl lexed them: only the two the core keeps (workers, duration) are
 * converted, and the duration's text is kept to be written back as read. Overflow is refused as
 * yajl refuses it (an integer beyond 64 bits; a double beyond +-HUGE_VAL). */
static int cb_number(void *ctx, const char *s, size_t len)
{
    event_fields *f = ctx;
    if (!top_value(f))
        return 0;
    char small[64], *buf = small;
    if (len >= sizeof(small) && !(buf = st_strndup(s, len)))
        return 0;
    if (buf == small) {
        memcpy(small, s, len);
        small[len] = '\0';
    }
    int is_double = memchr(s, '.', len) || memchr(s, 'e', len) || memchr(s, 'E', len);
    int rc = 1;
    errno = 0;
    if (is_double) {
        double v = strtod(buf, NULL);
        if ((v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE) {
            f->number_error = "numeric (floating point) overflow";
            rc = 0;
        } else if (f->depth == 1 && strcmp(f->key, "duration") == 0) {
            f->duration = v;
            size_t keep = len < sizeof(f->duration_text) ? len : 0;
            memcpy(f->duration_text, s, keep);
            f->duration_text[keep] = '\0';
        }
    } else {
        long long v = strtoll(buf, NULL, 10);
        if (errno == ERANGE) {
            f->number_error = "integer overflow";
            rc = 0;
        } else if (f->depth == 1 && strcmp(f->key, "workers") == 0) {
            f->workers = v;
        } else if (f->depth == 1 && strcmp(f->key, "line") == 0) {
            f->line = v > 0 && v <= INT_MAX ? v : 0;
        } else if (f->depth == 1 && strcmp(f->key, "duration") == 0) {
            f->duration = (double)v;
            f->duration_text[0] = '\0';
        }
    }
    if (buf != small)
        free(buf);
    return rc;
}

/* A captured stream of at most ST_CAPTURE_MAX bytes, the end kept, with a note when cut (the
 * plugin already cuts; this bounds what any results file can make the core hold). */
static char *captured(const unsigned char *s, size_t len)
{
    if (len == 0)
        return NULL;
    if (len <= ST_CAPTURE_MAX + 64)
        return st_strndup((const char *)s, len);
    size_t cut = len - ST_CAPTURE_MAX;
    while (cut < len && (s[cut] & 0xC0) == 0x80) /* not inside a UTF-8 sequence */
        cut++;
    return st_asprintf("[selftest: %zu earlier bytes not kept]\n%.*s", cut, (int)(len - cut),
                       (const char *)s + cut);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    event_fields *f = ctx;
    if (!top_value(f))
        return 0;
    if (f->in_argv && f->depth == 1) {
        st_strv_push_owned(&f->argv, st_strndup((const char *)s, len));
        return !f->argv.oom;
    }
    if (f->depth != 1)
        return 1;
    char **slot = strcmp(f->key, "event") == 0     ? &f->event
                  : strcmp(f->key, "nodeid") == 0  ? &f->nodeid
                  : strcmp(f->key, "file") == 0    ? &f->file
                  : strcmp(f->key, "outcome") == 0 ? &f->outcome
                  : strcmp(f->key, "phase") == 0   ? &f->phase
                  : strcmp(f->key, "excerpt") == 0 ? &f->excerpt
                  : strcmp(f->key, "stdout") == 0  ? &f->out
                  : strcmp(f->key, "stderr") == 0  ? &f->err
                  : strcmp(f->key, "reason") == 0  ? &f->reason
                  : strcmp(f->key, "unmet") == 0   ? &f->unmet
                  : strcmp(f->key, "skip_reason") == 0 ? &f->skip_reason
                                                   : NULL;
    if (slot == &f->out || slot == &f->err) {
        free(*slot);
        *slot = captured(s, len);
        return *slot != NULL || len == 0;
    }
    if (slot) {
        free(*slot);
        /* an excerpt keeps its end: the error is there */
        if (slot == &f->skip_reason && len > SKIP_REASON_MAX) {
            while (len > SKIP_REASON_MAX || (len && (s[len] & 0xC0) == 0x80))
                len--; /* the start kept, cut at a character boundary */
            *slot = st_strndup((const char *)s, len);
        } else if (slot == &f->excerpt && len > EXCERPT_MAX) {
            /* the end kept, from a character boundary */
            size_t from = len - EXCERPT_MAX;
            while (from < len && (s[from] & 0xC0) == 0x80)
                from++;
            *slot = malloc(len - from + 5);
            if (*slot) {
                memcpy(*slot, "...\n", 4);
                memcpy(*slot + 4, s + from, len - from);
                (*slot)[len - from + 4] = '\0';
            }
        } else {
            *slot = st_strndup((const char *)s, len);
        }
        return *slot != NULL;
    }
    return 1;
}

static int cb_start_map(void *ctx)
{
    event_fields *f = ctx;
    if (f->depth == 0)
        f->top_seen = 1;
    f->depth++;
    return 1;
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
    event_fields *f = ctx;
    if (f->depth == 1) {
        if (len >= sizeof(f->key))
            len = 0; /* not one of ours */
        memcpy(f->key, key, len);
        f->key[len] = '\0';
    }
    return 1;
}

static int cb_end_map(void *ctx)
{
    event_fields *f = ctx;
    f->depth--;
    return 1;
}

static int cb_start_array(void *ctx)
{
    event_fields *f = ctx;
    if (!top_value(f))
        return 0;
    if (f->depth == 1 && strcmp(f->key, "argv") == 0)
        f->in_argv = 1;
    else
        f->depth++; /* a nested array: treated like a nested object */
    return 1;
}

static int cb_end_array(void *ctx)
{
    event_fields *f = ctx;
    if (f->in_argv && f->depth == 1)
        f->in_argv = 0;
    else
        f->depth--;
    return 1;
}

static const yajl_callbacks event_callbacks = {
    cb_null, cb_bool, NULL, NULL, cb_number, cb_string,
    cb_start_map, cb_map_key, cb_end_map, cb_start_array, cb_end_array,
};

/* Parses one line into f; on error writes the reason into why and returns ST_ERR_MALFORMED (or
 * ST_ERR_NOMEM). */
static int parse_event(const char *line, size_t len, event_fields *f, char *why, size_t why_size)
{
    yajl_handle h = yajl_alloc(&event_callbacks, NULL, f);
    if (!h) {
        snprintf(why, why_size, "out of memory");
        return ST_ERR_NOMEM;
    }
    yajl_status st = yajl_parse(h, (const unsigned char *)line, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    int rc = 0;
    if (f->top_not_object) {
        snprintf(why, why_size, "not a JSON object: another JSON type");
        rc = ST_ERR_MALFORMED;
    } else if (st != yajl_status_ok && f->number_error) {
        /* the message yajl gives when it converts numbers itself */
        snprintf(why, why_size, "not a JSON object: parse error: %s\n, column %zu",
                 f->number_error, yajl_get_bytes_consumed(h) + 1);
        rc = ST_ERR_MALFORMED;
    } else if (st != yajl_status_ok) {
        unsigned char *msg = yajl_get_error(h, 0, (const unsigned char *)line, len);
        snprintf(why, why_size, "not a JSON object: %s, column %zu",
                 msg ? (const char *)msg : "invalid JSON", yajl_get_bytes_consumed(h) + 1);
        if (msg)
            yajl_free_error(h, msg);
        rc = ST_ERR_MALFORMED;
    }
    yajl_free(h);
    return rc;
}

static int add_test(st_batch *b, event_fields *f, const char *kind, st_outcome outcome)
{
    if (b->n_tests == b->cap_tests) {
        size_t cap = b->cap_tests ? b->cap_tests * 2 : 64;
        st_test_result *t = realloc(b->tests, cap * sizeof(*t));
        if (!t)
            return ST_ERR_NOMEM;
        b->tests = t;
        b->cap_tests = cap;
    }
    st_test_result *t = &b->tests[b->n_tests++];
    memset(t, 0, sizeof(*t));
    /* the strings move from the parsed event to the result */
    t->nodeid = f->nodeid ? f->nodeid : st_strdup("?");
    t->file = f->file ? f->file : st_strdup("");
    t->phase = f->phase ? f->phase : st_strdup(kind);
    t->excerpt = f->excerpt;
    t->out = f->out;
    t->err = f->err;
    t->reason = f->reason;
    t->unmet = f->unmet;
    t->skip_reason = f->skip_reason;
    f->skip_reason = NULL;
    f->nodeid = f->file = f->phase = f->excerpt = f->out = f->err = NULL;
    f->reason = f->unmet = NULL;
    t->outcome = outcome;
    t->duration_s = f->duration;
    t->line = (int)f->line;
    memcpy(t->duration_text, f->duration_text, sizeof(t->duration_text));
    b->counts.n[outcome]++;
    return t->nodeid && t->file && t->phase ? ST_OK : ST_ERR_NOMEM;
}

static int handle_event(st_batch *b, event_fields *f, char *why, size_t why_size)
{
    if (!f->event) {
        snprintf(why, why_size, "no \"event\" key");
        return ST_ERR_MALFORMED;
    }
    if (strcmp(f->event, "start") == 0) {
        b->saw_start = 1;
        st_strv_free(&b->argv_seen);
        b->argv_seen = f->argv;
        memset(&f->argv, 0, sizeof(f->argv));
        b->workers_seen = (long)f->workers;
        return ST_OK;
    }
    if (strcmp(f->event, "test") == 0) {
        st_outcome outcome;
        if (!f->outcome || outcome_from_name(f->outcome, &outcome) < 0) {
            snprintf(why, why_size, "test event with unknown outcome '%s'",
                     f->outcome ? f->outcome : "(none)");
            return ST_ERR_MALFORMED;
        }
        return add_test(b, f, "call", outcome);
    }
    if (strcmp(f->event, "collect_error") == 0)
        return add_test(b, f, "collect", ST_OUT_ERROR);
    if (strcmp(f->event, "test_start") == 0) {
        st_strv_push(&b->running, f->nodeid ? f->nodeid : "?");
        return b->running.oom ? ST_ERR_NOMEM : ST_OK;
    }
    if (strcmp(f->event, "test_finish") == 0) {
        /* the newest first: without xdist the list holds one test */
        for (size_t i = b->running.n; f->nodeid && i-- > 0;)
            if (strcmp(b->running.v[i], f->nodeid) == 0) {
                free(b->running.v[i]);
                memmove(b->running.v + i, b->running.v + i + 1,
                        (b->running.n - i) * sizeof(*b->running.v)); /* with the NULL */
                b->running.n--;
                break;
            }
        return ST_OK;
    }
    if (strcmp(f->event, "end") == 0) {
        b->saw_end = 1;
        return ST_OK;
    }
    snprintf(why, why_size, "unknown event '%s'", f->event);
    return ST_ERR_MALFORMED;
}

/* The bundled plugin writes two of every three lines as {"event":"test_start","nodeid":"..."}
 * or {"event":"test_finish","nodeid":"..."}. A line of exactly that form whose node id is
 * printable ASCII without '"' or '\\' is valid JSON meaning the same as the parser would make of
 * it: it is handled here without the parser (1). Anything else returns 0 (parse it), -1 out of
 * memory. */
static int running_line(st_batch *b, const char *line, size_t len)
{
    static const char start[] = "{\"event\":\"test_start\",\"nodeid\":\"";
    static const char finish[] = "{\"event\":\"test_finish\",\"nodeid\":\"";
    int is_start = len > sizeof(start) + 1 && memcmp(line, start, sizeof(start) - 1) == 0;
    int is_finish = !is_start && len > sizeof(finish) + 1 &&
                    memcmp(line, finish, sizeof(finish) - 1) == 0;
    if (!is_start && !is_finish)
        return 0;
    const char *id = line + (is_start ? sizeof(start) - 1 : sizeof(finish) - 1);
    const char *end = line + len - 2; /* the closing quote, then the brace */
    if (end[0] != '"' || end[1] != '}' || end < id)
        return 0;
    for (const char *c = id; c < end; c++)
        if (*c < 0x20 || *c > 0x7e || *c == '"' || *c == '\\')
            return 0;
    size_t n = (size_t)(end - id);
    if (is_start) {
        st_strv_push_owned(&b->running, st_strndup(id, n));
        return b->running.oom ? -1 : 1;
    }
    /* the newest first: without xdist the list holds one test */
    for (size_t i = b->running.n; i-- > 0;)
        if (strncmp(b->running.v[i], id, n) == 0 && b->running.v[i][n] == '\0') {
            free(b->running.v[i]);
            memmove(b->running.v + i, b->running.v + i + 1,
                    (b->running.n - i) * sizeof(*b->running.v)); /* with the NULL */
            b->running.n--;
            break;
        }
    return 1;
}

int st_results_read(st_batch *b, const char *file, char *err, size_t err_size)
{
    char *text = NULL;
    size_t len = 0;
    int rc = st_read_file(file, RESULTS_MAX_BYTES, &text, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0) {
        snprintf(err, err_size, "%s: cannot read: %s", file, strerror(-rc));
        return st_status_of_errno(rc);
    }
    unsigned lineno = 0;
    char *p = text;
    rc = 0;
    while (p < text + len) {
        lineno++;
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        if (!nl) {
            free(b->truncated);
            b->truncated = st_asprintf("%s:%u: truncated line (no newline at the end of the file)",
                                       file, lineno);
            break;
        }
        int quick = nl > p ? running_line(b, p, (size_t)(nl - p)) : 0;
        if (quick < 0) {
            snprintf(err, err_size, "%s:%u: out of memory", file, lineno);
            rc = ST_ERR_NOMEM;
            break;
        }
        if (nl > p && !quick) {
            event_fields f = {0};
            char why[200] = "out of memory";
            rc = parse_event(p, (size_t)(nl - p), &f, why, sizeof(why));
            if (rc == ST_OK)
                rc = handle_event(b, &f, why, sizeof(why));
            if (rc < 0)
                snprintf(err, err_size, "%s:%u: %s", file, lineno, why);
            fields_free(&f);
            if (rc < 0)
                break;
        }
        p = nl + 1;
    }
    free(text);
    return rc;
}

/* ---- verdicts ------------------------------------------------------------------------------ */

static void set_reason(st_batch *b, char *reason)
{
    free(b->reason);
    b->reason = reason;
}

/* ", while running NODE" (and how many more under xdist), or "". */
static char *while_running(const st_batch *b)
{
    if (!b->running.n)
        return st_strdup("");
    if (b->running.n == 1)
        return st_asprintf(", while running %s", b->running.v[0]);
    return st_asprintf(", while running %s and %zu other test%s", b->running.v[b->running.n - 1],
                       b->running.n - 1, b->running.n == 2 ? "" : "s");
}

/* An import check stopped at its timeout: the bundled plugin turned the SIGTERM into a failure
 * whose reason ends with the innermost project line, "(pkg/mod.py:12)". ", in the import at
 * pkg/mod.py:12", or "". Points into a static buffer (one verdict at a time per thread). */
static const char *stopped_at(const st_batch *b)
{
    static __thread char buf[300];
    buf[0] = '\0';
    for (size_t i = 0; b->kind == ST_EXEC_ORPHAN_CHECK && i < b->n_tests; i++) {
        const char *r = b->tests[i].reason;
        size_t n = r ? strlen(r) : 0;
        const char *open = n && r[n - 1] == ')' ? strrchr(r, '(') : NULL;
        if (open && strncmp(r, "OrphanImportStopped:", 20) == 0 && open > r && open[-1] == ' ') {
            snprintf(buf, sizeof(buf), ", in the import at %.*s", (int)(r + n - 1 - open - 1),
                     open + 1);
            break;
        }
    }
    return buf;
}

void st_batch_verdict(st_batch *b, const st_exec_result *er, double timeout_s)
{
    b->exit_status = er->exited ? er->exit_status : -1;
    b->term_signal = er->term_signal;
    b->timed_out = er->timed_out;
    b->runtime_s = er->wall_s;
    b->ok = 0;
    free(b->container);
    b->container = er->container[0] ? st_strdup(er->container) : NULL;
    free(b->engine);
    b->engine = ST_EXEC_RESULT_HAS(er, engine) && er->engine[0] ? st_strdup(er->engine) : NULL;
    if (b->saw_end) {
        /* a finished session: xdist reports a crashed worker's test as failed, and no test
         * is left running */
        st_strv_free(&b->running);
    }
    char *during = while_running(b);
    if (!during) {
        b->infra_error = 1;
        set_reason(b, st_strdup("out of memory"));
        return;
    }
    free(b->limit);
    b->limit = ST_EXEC_RESULT_HAS(er, limit) && er->limit[0] ? st_strdup(er->limit) : NULL;
    b->leftover = ST_EXEC_RESULT_HAS(er, leftover) ? er->leftover : 0;
    if (er->infra_error) {
        b->infra_error = 1;
        set_reason(b, st_strdup(er->error[0] ? er->error : "the runtime could not run the batch"));
    } else if (b->limit) {
        set_reason(b, st_asprintf("stopped at a resource limit: %s%s", b->limit, during));
    } else if (er->timed_out) {
        set_reason(b, st_asprintf("timeout: stopped after %g s%s%s", timeout_s, during,
                                  stopped_at(b)));
    } else if (er->cancelled) {
        b->aborted = 1;
        set_reason(b, st_strdup("aborted: the run was stopped before this finished"));
    } else if (!er->exited) {
        set_reason(b, st_asprintf("pytest was killed by signal %d (%s)%s", er->term_signal,
                                  strsignal(er->term_signal), during));
    } else if (b->read_error) {
        b->infra_error = 1;
        set_reason(b, st_asprintf("cannot use the results: %s", b->read_error));
    } else if (b->saw_start && !b->saw_end && !b->truncated) {
        /* the session began and the process ended without finishing it: something in the
         * tests ended it (os._exit, sys.exit from a thread, a crash that exits). A failed batch,
         * not an infrastructure error: running it again would end the same way. */
        b->ended_early = 1;
        set_reason(b, st_asprintf("pytest exited with status %d before its session finished "
                                  "(a test ended the process)%s",
                                  er->exit_status, during));
    } else if (er->exit_status != 0 && er->exit_status != 1 && er->exit_status != 5) {
        set_reason(b, st_asprintf("pytest exited with status %d%s", er->exit_status,
                                  er->exit_status == 2   ? " (interrupted)"
                                  : er->exit_status == 3 ? " (internal error)"
                                  : er->exit_status == 4 ? " (usage error)"
                                                         : ""));
    } else if (er->exit_status == 5) {
        b->no_tests = 1;
        set_reason(b, st_strdup("no tests collected (pytest exit status 5)"));
    } else if (!b->saw_start || !b->saw_end || b->truncated) {
        b->infra_error = 1;
        set_reason(b, b->truncated ? st_asprintf("cannot use the results: %s", b->truncated)
                                   : st_strdup("pytest exited without writing complete results "
                                               "(the selftest pytest plugin did not run)"));
    } else if (er->exit_status == 0) {
        b->ok = st_counts_failed(&b->counts) == 0;
        if (!b->ok)
            set_reason(b, st_strdup("pytest exited 0 but reported failures"));
    } else if (st_counts_failed(&b->counts) == 0) {
        set_reason(b, st_strdup("pytest exited with status 1 without a failing test"));
    }
    free(during);
}

void st_batch_reset_outcome(st_batch *b)
{
    for (size_t i = 0; i < b->n_tests; i++) {
        free(b->tests[i].nodeid);
        free(b->tests[i].file);
        free(b->tests[i].phase);
        free(b->tests[i].excerpt);
        free(b->tests[i].out);
        free(b->tests[i].err);
        free(b->tests[i].reason);
        free(b->tests[i].unmet);
        free(b->tests[i].skip_reason);
    }
    b->n_tests = 0;
    memset(&b->counts, 0, sizeof(b->counts));
    b->saw_start = b->saw_end = 0;
    b->infra_error = b->timed_out = b->no_tests = b->aborted = b->ended_early = 0;
    st_strv_free(&b->running);
    free(b->container);
    b->container = NULL;
    free(b->engine);
    b->engine = NULL;
    free(b->truncated);
    b->truncated = NULL;
    free(b->read_error);
    b->read_error = NULL;
    free(b->reason);
    b->reason = NULL;
    free(b->limit);
    b->limit = NULL;
    b->leftover = 0;
    free(b->cov);
    b->cov = NULL;
    b->n_cov = 0;
    st_strv_free(&b->cov_files);
    st_buf_reset(&b->output_tail);
    free(b->unmet);
    b->unmet = NULL;
}

void st_batch_free(st_batch *b)
{
    st_batch_reset_outcome(b);
    st_strv_free(&b->select);
    free(b->id);
    free(b->path);
    free(b->module);
    free(b->class_reason);
    free(b->duplicate_of);
    free(b->cached_excerpt);
    free(b->check_key);
    st_strv_free(&b->parents);
    free(b->output_dir);
    free(b->tests);
    st_strv_free(&b->argv_seen);
    free(b->shard_filter);
    for (size_t i = 0; i < b->n_shards; i++) {
        free(b->shards[i].engine);
        free(b->shards[i].container);
        free(b->shards[i].reason);
    }
    free(b->shards);
    for (size_t i = 0; i < b->n_retries; i++) {
        free(b->retries[i].error);
        free(b->retries[i].container);
    }
    free(b->retries);
    st_buf_free(&b->output_tail);
    memset(b, 0, sizeof(*b));
}

/* ---- the run ------------------------------------------------------------------------------- */

void st_run_finalize(st_run *r)
{
    memset(&r->totals, 0, sizeof(r->totals));
    double sum = 0;
    size_t ran = 0;
    for (size_t i = 0; i < r->n_batches; i++) {
        const st_batch *b = &r->batches[i];
        st_counts_add(&r->totals, &b->counts);
        if (b->done) {
            sum += b->runtime_s;
            ran++;
        }
    }
    r->mean_batch_runtime_s = ran ? sum / (double)ran : 0;
    r->coverage = r->coverage_requested ? st_coverage_union(r) : -1;
    r->exit_status = st_exit_status(ST_OK, st_run_verdict(r, 0, ST_VERDICT_BROKEN));
}

unsigned st_run_orphans_checked(const st_run *r)
{
    unsigned n = 0;
    for (size_t i = 0; i < r->n_checks; i++)
        n += r->checks[i].done && !r->checks[i].aborted;
    return n;
}

unsigned st_run_orphans_failed(const st_run *r)
{
    unsigned n = 0;
    for (size_t i = 0; i < r->n_checks; i++)
        n += r->checks[i].done && !r->checks[i].aborted && !r->checks[i].ok &&
             !r->checks[i].unmet; /* a missing third-party package is not a failed module */
    return n;
}

/* ---- output tails ---------------------------------------------------------------------------- */

#define OUTPUT_TAIL_LINES 100
#define OUTPUT_TAIL_BYTES 16384u

/* The last lines of text (at most max_lines lines and max_bytes bytes), as valid UTF-8 (other
 * bytes become '?'). Caller frees; NULL when text is empty. */
static char *tail_lines(const char *text, size_t len, unsigned max_lines, size_t max_bytes)
{
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    if (!len)
        return NULL;
    size_t start = len > max_bytes ? len - max_bytes : 0;
    unsigned lines = 0;
    for (size_t i = len; i-- > start;)
        if (text[i] == '\n' && ++lines == max_lines) {
            start = i + 1;
            break;
        }
    if (start && text[start - 1] != '\n') { /* cut by bytes: begin at a line */
        const char *nl = memchr(text + start, '\n', len - start);
        if (nl && nl + 1 < text + len)
            start = (size_t)(nl + 1 - text);
    }
    char *out = malloc(len - start + 1);
    if (!out)
        return NULL;
    size_t k = 0;
    const unsigned char *p = (const unsigned char *)text + start, *end = (const unsigned char *)text + len;
    while (p < end) {
        unsigned char c = *p;
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int valid = n && (size_t)(end - p) >= n;
        for (size_t j = 1; valid && j < n; j++)
            valid = (p[j] & 0xC0) == 0x80;
        if (!valid) {
            out[k++] = '?';
            p++;
            continue;
        }
        memcpy(out + k, p, n);
        k += n;
        p += n;
    }
    out[k] = '\0';
    return out;
}

static void gen_counts(yajl_gen g, const st_counts *c)
{
    st_jg_kint(g, "passed", st_counts_passed(c));
    st_jg_kint(g, "failed", st_counts_failed(c));
    st_jg_kint(g, "skipped", c->n[ST_OUT_SKIPPED]);
    st_jg_kint(g, "xfailed", c->n[ST_OUT_XFAILED]);
    st_jg_kint(g, "errors", c->n[ST_OUT_ERROR]);
}

static void gen_test(yajl_gen g, const st_batch *b, const st_test_result *tr)
{
    yajl_gen_map_open(g);
    st_jg_kstr(g, "nodeid", tr->nodeid);
    st_jg_kstr(g, "file", tr->file);
    if (tr->line > 0)
        st_jg_kint(g, "line", tr->line);
    st_jg_kstr(g, "batch", b->path);
    st_jg_kstr(g, "outcome", tr->flaky ? "flaky" : st_outcome_name(tr->outcome));
    st_jg_kstr(g, "phase", tr->phase);
    if (tr->attempts > 1)
        st_jg_kint(g, "attempts", tr->attempts);
    if (tr->quarantined)
        st_jg_kbool(g, "quarantined", 1);
    if (tr->duration_text[0]) { /* as read: no formatting, nothing lost */
        st_jg_key(g, "duration");
        yajl_gen_number(g, tr->duration_text, strlen(tr->duration_text));
    } else {
        st_jg_kdouble(g, "duration", tr->duration_s);
    }
    if (tr->excerpt)
        st_jg_kstr(g, "excerpt", tr->excerpt);
    if (tr->out)
        st_jg_kstr(g, "stdout", tr->out);
    if (tr->err)
        st_jg_kstr(g, "stderr", tr->err);
    if (tr->skip_reason)
        st_jg_kstr(g, "skip_reason", tr->skip_reason);
    yajl_gen_map_close(g);
}

static void gen_batch(yajl_gen g, const st_batch *b)
{
    yajl_gen_map_open(g);
    gen_counts(g, &b->counts);
    st_jg_kint(g, "flaky", b->counts.flaky);
    st_jg_kpercent(g, "coverage", b->coverage);
    st_jg_kdouble(g, "runtime", b->runtime_s);
    st_jg_kbool(g, "ok", b->ok);
    st_jg_kstr(g, "reason", b->reason);
    st_jg_kint(g, "workers", b->workers);
    if (b->exit_status >= 0)
        st_jg_kint(g, "exit_status", b->exit_status);
    else
        st_jg_kstr(g, "exit_status", NULL);
    if (b->term_signal)
        st_jg_kint(g, "signal", b->term_signal);
    st_jg_kbool(g, "timed_out", b->timed_out);
    st_jg_kbool(g, "aborted", b->aborted);
    /* the tests that were running when the process ended without finishing its session */
    st_jg_key(g, "running_tests");
    yajl_gen_array_open(g);
    for (size_t i = 0; !b->saw_end && i < b->running.n; i++)
        st_jg_str(g, b->running.v[i]);
    yajl_gen_array_close(g);
    st_jg_kstr(g, "container", b->container);
    st_jg_kstr(g, "engine", b->engine);
    if (b->shard_count) {
        st_jg_kint(g, "shard", b->shard_index);
        st_jg_kint(g, "shards", b->shard_count);
        st_jg_key(g, "shard_files");
        yajl_gen_array_open(g);
        for (size_t i = 0; i < b->select.n; i++)
            st_jg_str(g, b->select.v[i]);
        yajl_gen_array_close(g);
    } else if (b->kind == ST_EXEC_TESTS) {
        /* a path split into shards: each shard's outcome, engine and files */
        st_jg_kint(g, "shards", b->n_shards ? (long long)b->n_shards : 1);
        if (b->n_shards) {
            st_jg_key(g, "shard_results");
            yajl_gen_array_open(g);
            for (size_t i = 0; i < b->n_shards; i++) {
                const st_shard_info *si = &b->shards[i];
                yajl_gen_map_open(g);
                st_jg_kint(g, "shard", si->index);
                st_jg_kint(g, "files", (long long)si->files);
                st_jg_kbool(g, "ok", si->ok);
                st_jg_kint(g, "passed", si->passed);
                st_jg_kint(g, "failed", si->failed);
                st_jg_kdouble(g, "runtime", si->runtime_s);
                if (si->expected_s >= 0)
                    st_jg_kdouble(g, "expected", si->expected_s);
                else
                    st_jg_kstr(g, "expected", NULL);
                st_jg_kstr(g, "engine", si->engine);
                st_jg_kstr(g, "container", si->container);
                st_jg_kstr(g, "reason", si->reason);
                yajl_gen_map_close(g);
            }
            yajl_gen_array_close(g);
        }
    }
    /* a failed batch keeps the end of its output (a container's: the engine's logs of it) */
    char *tail = !b->ok && !b->aborted && b->output_tail.len
                     ? tail_lines(b->output_tail.data, b->output_tail.len, OUTPUT_TAIL_LINES,
                                  OUTPUT_TAIL_BYTES)
                     : NULL;
    st_jg_kstr(g, "output_tail", tail);
    free(tail);
    st_jg_kstr(g, "resource_limit", b->limit);
    st_jg_kint(g, "leftover_processes", b->leftover);
    st_jg_kdouble(g, "started_at", b->started_at);
    st_jg_kdouble(g, "finished_at", b->finished_at);
    /* What pytest itself reported receiving: the proof of the worker split and of the args. */
    st_jg_kint(g, "pytest_workers", b->workers_seen);
    st_jg_key(g, "pytest_argv");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < b->argv_seen.n; i++)
        st_jg_str(g, b->argv_seen.v[i]);
    yajl_gen_array_close(g);
    if (b->kind == ST_EXEC_TESTS) {
        st_jg_kstr(g, "workers_rule", b->workers_rule);
        if (b->history_s >= 0)
            st_jg_kdouble(g, "history_duration", b->history_s);
        else
            st_jg_kstr(g, "history_duration", NULL);
    }
    if (b->kind == ST_EXEC_ORPHAN_CHECK) {
        st_jg_kstr(g, "unmet", b->unmet);
        st_jg_kbool(g, "cached", b->cached);
    }
    yajl_gen_map_close(g);
}

/* The traceback of a failed orphan check (this run's, or the cached one). */
static const char *check_excerpt(const st_batch *c)
{
    for (size_t t = 0; t < c->n_tests; t++)
        if (c->tests[t].excerpt)
            return c->tests[t].excerpt;
    return c->cached_excerpt;
}

char *st_batch_line_json(const st_batch *b, const st_counts *cumulative)
{
    yajl_gen g = st_jg_new(0);
    if (!g)
        return NULL;
    yajl_gen_map_open(g);
    st_jg_kstr(g, "event", b->kind == ST_EXEC_ORPHAN_CHECK ? "orphan" : "batch");
    st_jg_kstr(g, "path", b->path);
    if (b->shard_count) {
        char shard[48];
        snprintf(shard, sizeof(shard), "%u/%u", b->shard_index, b->shard_count);
        st_jg_kstr(g, "shard", shard);
    }
    st_jg_key(g, "batch");
    gen_batch(g, b);
    /* the failing tests of this batch, with their excerpts and captured output */
    st_jg_key(g, "failures");
    yajl_gen_array_open(g);
    for (size_t t = 0; t < b->n_tests; t++)
        if ((b->tests[t].outcome == ST_OUT_FAILED || b->tests[t].outcome == ST_OUT_ERROR) &&
            !b->tests[t].flaky)
            gen_test(g, b, &b->tests[t]);
    yajl_gen_array_close(g);
    gen_counts(g, cumulative);
    st_jg_kint(g, "flaky", cumulative->flaky);
    yajl_gen_map_close(g);
    return st_jg_finish(g, 1);
}

char *st_run_to_json(const st_run *r, int pretty)
{
    yajl_gen g = st_jg_new(pretty);
    if (!g)
        return NULL;
    yajl_gen_map_open(g);
    if (!pretty) {
        st_jg_kstr(g, "event", "results");
        /* at a fixed place in the compact form, which metrics.db stores: its readers find it
         * without parsing the whole object (ST_RESULTS_SUBSET_SQL) */
        st_jg_kbool(g, "changed_subset", r->changed_subset);
    }
    gen_counts(g, &r->totals);
    st_jg_kint(g, "xpassed", r->totals.n[ST_OUT_XPASSED]);
    st_jg_kint(g, "flaky_count", r->totals.flaky); /* "flaky" is the list of node ids */
    st_jg_kpercent(g, "coverage", r->coverage);
    st_jg_kdouble(g, "runtime", r->mean_batch_runtime_s);
    st_jg_kdouble(g, "total_runtime", r->total_runtime_s);
    st_jg_kint(g, "reruns", r->reruns);
    st_jg_kdouble(g, "rerun_runtime", r->rerun_runtime_s);
    st_jg_key(g, "suite_metrics");
    yajl_gen_map_open(g);
    for (size_t i = 0; i < r->n_batches; i++) {
        st_jg_key(g, r->batches[i].path);
        gen_batch(g, &r->batches[i]);
    }
    yajl_gen_map_close(g);
    st_jg_key(g, "workflow_tests");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < r->n_batches; i++)
        st_jg_str(g, r->batches[i].path);
    yajl_gen_array_close(g);
    st_jg_key(g, "tests");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < r->n_batches; i++) {
        const st_batch *b = &r->batches[i];
        for (size_t t = 0; t < b->n_tests; t++)
            gen_test(g, b, &b->tests[t]);
    }
    yajl_gen_array_close(g);
    const struct {
        const char *key;
        const st_strv *list;
    } lists[] = {{"regressions", &r->regressions},
                 {"fixed", &r->fixed},
                 {"still_failing", &r->still_failing},
                 {"new_tests", &r->new_tests},
                 {"flaky", &r->flaky},
                 {"quarantined", &r->quarantined},
                 {"quarantine_ready", &r->quarantine_ready}};
    for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
        st_jg_key(g, lists[l].key);
        yajl_gen_array_open(g);
        for (size_t i = 0; i < lists[l].list->n; i++)
            st_jg_str(g, lists[l].list->v[i]);
        yajl_gen_array_close(g);
    }
    st_jg_key(g, "retry_errors");
    yajl_gen_map_open(g);
    for (size_t i = 0; i < r->n_batches; i++) {
        const st_batch *b = &r->batches[i];
        if (!b->n_retries)
            continue;
        st_jg_key(g, b->path);
        yajl_gen_array_open(g);
        for (size_t k = 0; k < b->n_retries; k++) {
            yajl_gen_map_open(g);
            st_jg_kint(g, "attempt", b->retries[k].attempt);
            st_jg_kstr(g, "error", b->retries[k].error);
            st_jg_kstr(g, "container", b->retries[k].container);
            yajl_gen_map_close(g);
        }
        yajl_gen_array_close(g);
    }
    yajl_gen_map_close(g);
    st_jg_kint(g, "orphan_total", r->orphan_total);
    st_jg_kint(g, "orphan_failed", r->orphan_failed);
    st_jg_kint(g, "orphan_unmet", r->orphan_unmet);
    st_jg_kint(g, "orphan_cached", r->orphan_cached);
    /* orphan_passed is the original's list of paths; *_modules the same split by verdict */
    const char *passed_keys[] = {"orphan_passed", "orphan_passed_modules"};
    for (size_t k = 0; k < 2; k++) {
        st_jg_key(g, passed_keys[k]);
        yajl_gen_array_open(g);
        for (size_t i = 0; i < r->n_checks; i++)
            if (r->checks[i].ok)
                st_jg_str(g, r->checks[i].path);
        yajl_gen_array_close(g);
    }
    st_jg_key(g, "orphan_failed_modules");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < r->n_checks; i++)
        if (!r->checks[i].ok && r->checks[i].done && !r->checks[i].aborted &&
            !r->checks[i].unmet)
            st_jg_str(g, r->checks[i].path);
    yajl_gen_array_close(g);
    /* a missing third-party package is not a failed module */
    st_jg_key(g, "orphan_unmet_modules");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < r->n_checks; i++)
        if (r->checks[i].unmet)
            st_jg_str(g, r->checks[i].path);
    yajl_gen_array_close(g);
    st_jg_key(g, "orphan_redundant_modules");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < r->orphan_skipped.n; i++)
        st_jg_str(g, r->orphan_skipped.v[i]);
    yajl_gen_array_close(g);
    st_jg_key(g, "orphan_checks");
    yajl_gen_map_open(g);
    for (size_t i = 0; i < r->n_checks; i++) {
        const st_batch *c = &r->checks[i];
        st_jg_key(g, c->path);
        yajl_gen_map_open(g);
        st_jg_kbool(g, "ok", c->ok);
        st_jg_kbool(g, "aborted", c->aborted || !c->done); /* stopped: no verdict */
        st_jg_kstr(g, "verdict", st_check_verdict(c));
        st_jg_kstr(g, "reason", c->reason);
        st_jg_kstr(g, "unmet", c->unmet);
        st_jg_kbool(g, "cached", c->cached);
        st_jg_kstr(g, "excerpt", c->ok ? NULL : check_excerpt(c));
        st_jg_kstr(g, "module", c->module);
        st_jg_kstr(g, "origin", c->origin == ST_ORIGIN_ISOLATED   ? "isolated"
                                 : c->origin == ST_ORIGIN_EXPLICIT ? "explicit"
                                                                   : "orphan");
        st_jg_kstr(g, "classification", st_classification_name(c->classification));
        st_jg_kdouble(g, "runtime", c->runtime_s);
        st_jg_key(g, "parents");
        yajl_gen_array_open(g);
        for (size_t k = 0; k < c->parents.n; k++)
            st_jg_str(g, c->parents.v[k]);
        yajl_gen_array_close(g);
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
    st_jg_key(g, "integration");
    yajl_gen_map_open(g);
    st_jg_key(g, "integrated");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < r->integrated.n; i++)
        st_jg_str(g, r->integrated.v[i]);
    yajl_gen_array_close(g);
    st_jg_key(g, "redundant");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < r->integration_redundant.n; i++)
        st_jg_str(g, r->integration_redundant.v[i]);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    st_jg_kstr(g, "runtime_used", r->runtime_used);
    st_jg_kstr(g, "run_id", r->run_id);
    st_jg_kstr(g, "git_commit", r->git_commit);
    if (pretty)
        st_jg_kbool(g, "changed_subset", r->changed_subset);
    st_jg_key(g, "git_dirty");
    if (r->git_commit) {
        yajl_gen_array_open(g);
        for (size_t i = 0; i < r->git_dirty.n; i++)
            st_jg_str(g, r->git_dirty.v[i]);
        yajl_gen_array_close(g);
    } else {
        st_jg_null(g);
    }
    st_jg_kdouble(g, "core_cpu_seconds", r->core_cpu_s);
    st_jg_kbool(g, "aborted", r->aborted);
    st_jg_kint(g, "exit_status", r->exit_status);
    yajl_gen_map_close(g);
    return st_jg_finish(g, 1);
}

static void print_excerpt(FILE *out, const char *excerpt, unsigned max_lines)
{
    /* The last max_lines lines: the error is at the end of a pytest traceback. */
    const char *end = excerpt + strlen(excerpt);
    while (end > excerpt && end[-1] == '\n')
        end--;
    const char *start = end;
    unsigned lines = 0;
    while (start > excerpt && lines < max_lines) {
        start--;
        if (*start == '\n')
            lines++;
    }
    if (start > excerpt || *start == '\n')
        start++;
    const char *p = start;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        fprintf(out, "      %.*s\n", (int)(len > 200 ? 200 : len), p);
        p += len + 1;
    }
}

void st_run_print_summary(const st_run *r, FILE *out, int color)
{
    const char *red = color ? "\033[31m" : "", *green = color ? "\033[32m" : "",
               *bold = color ? "\033[1m" : "", *off = color ? "\033[0m" : "";
    if (r->regressions.n) {
        fprintf(out, "%s%sRegressions%s (passed in the previous run, fail now)\n", bold, red, off);
        for (size_t i = 0; i < r->regressions.n && i < 50; i++)
            fprintf(out, "  %s\n", r->regressions.v[i]);
    }
    if (r->fixed.n) {
        fprintf(out, "%s%sFixed%s (failed in the previous run, pass now)\n", bold, green, off);
        for (size_t i = 0; i < r->fixed.n && i < 50; i++)
            fprintf(out, "  %s\n", r->fixed.v[i]);
    }
    if (r->flaky.n) {
        fprintf(out, "%sFlaky%s (failed, then passed when run again alone)\n", bold, off);
        for (size_t i = 0; i < r->flaky.n && i < 50; i++)
            fprintf(out, "  %s\n", r->flaky.v[i]);
    }
    if (r->quarantined.n) {
        fprintf(out, "%sQuarantined%s (failed; in the quarantine file: the exit status ignores them)\n",
                bold, off);
        for (size_t i = 0; i < r->quarantined.n && i < 50; i++)
            fprintf(out, "  %s\n", r->quarantined.v[i]);
    }
    for (size_t i = 0; i < r->quarantine_ready.n && i < 50; i++)
        fprintf(out, "quarantine: %s has passed in every recent cycle: ready to release "
                "(selftest-core flaky --release)\n", r->quarantine_ready.v[i]);
    unsigned shown = 0;
    for (size_t i = 0; i < r->n_batches; i++) {
        const st_batch *b = &r->batches[i];
        for (size_t t = 0; t < b->n_tests; t++) {
            const st_test_result *tr = &b->tests[t];
            if ((tr->outcome != ST_OUT_FAILED && tr->outcome != ST_OUT_ERROR) || tr->flaky)
                continue;
            if (shown++ == 0)
                fprintf(out, "%sFailures%s\n", bold, off);
            if (shown > 50)
                continue;
            fprintf(out, "  %s%s%s %s%s%s\n", red, tr->outcome == ST_OUT_ERROR ? "ERROR" : "FAILED",
                    off, tr->quarantined ? "(quarantined) " : "", tr->nodeid,
                    strcmp(tr->phase, "call") ? (strcmp(tr->phase, "setup") == 0 ? " (setup)"
                                                 : strcmp(tr->phase, "teardown") == 0 ? " (teardown)"
                                                 : " (collection)")
                                              : "");
            if (tr->excerpt)
                print_excerpt(out, tr->excerpt, 6);
            const char *streams[2][2] = {{"stdout", tr->out}, {"stderr", tr->err}};
            for (size_t k = 0; k < 2; k++) {
                if (!streams[k][1])
                    continue;
                fprintf(out, "    captured %s (end):\n", streams[k][0]);
                print_excerpt(out, streams[k][1], 5);
            }
        }
    }
    if (shown > 50)
        fprintf(out, "  ... and %u more (see the report file or --json)\n", shown - 50);
    for (size_t i = 0; i < r->n_batches; i++) {
        const st_batch *b = &r->batches[i];
        if (!b->reason)
            continue;
        fprintf(out, "%s%s%s: %s\n", b->ok || b->aborted ? "" : red, b->path, off, b->reason);
        if (!b->ok && !b->aborted && b->output_tail.len &&
            (b->term_signal || b->exit_status > 1 || b->infra_error || b->ended_early ||
             b->timed_out)) {
            char *tail = tail_lines(b->output_tail.data, b->output_tail.len, 8, 4096);
            if (tail)
                print_excerpt(out, tail, 8);
            free(tail);
            if (b->container)
                fprintf(out, "      (the end of the logs of container %s)\n", b->container);
        }
    }
    if (r->n_checks || r->orphan_skipped.n) {
        unsigned checked = st_run_orphans_checked(r), failed_checks = st_run_orphans_failed(r);
        fprintf(out, "%sOrphan checks%s: %u passed, %u failed", bold, off,
                checked - failed_checks - r->orphan_unmet, failed_checks);
        if (r->orphan_unmet)
            fprintf(out, ", %u unmet dependenc%s", r->orphan_unmet,
                    r->orphan_unmet == 1 ? "y" : "ies");
        if (r->orphan_skipped.n)
            fprintf(out, ", %zu not checked (redundant or legacy)", r->orphan_skipped.n);
        if (r->n_checks > checked)
            fprintf(out, ", %zu not run (the run was stopped)", r->n_checks - checked);
        if (r->orphan_cached)
            fprintf(out, "; %u verdict%s cached (unchanged since the last check)",
                    r->orphan_cached, r->orphan_cached == 1 ? "" : "s");
        fputc('\n', out);
        for (size_t i = 0; i < r->n_checks; i++) {
            const st_batch *c = &r->checks[i];
            if (c->ok || !c->done || c->aborted || c->unmet)
                continue;
            fprintf(out, "  %sFAILED%s %s%s: %s\n", red, off, c->path,
                    c->cached ? " (cached)" : "", c->reason ? c->reason : "the import raised");
            const char *excerpt = check_excerpt(c);
            if (excerpt)
                print_excerpt(out, excerpt, 4);
        }
        /* apart: the module may be fine, the environment lacks a package */
        for (size_t i = 0; i < r->n_checks; i++) {
            const st_batch *c = &r->checks[i];
            if (c->unmet)
                fprintf(out, "  unmet dependency: %s  %s%s\n", c->unmet, c->path,
                        c->cached ? " (cached)" : "");
        }
        for (size_t i = 0; i < r->integrated.n && i < 20; i++)
            fprintf(out, "  %sintegrated%s %s\n", green, off, r->integrated.v[i]);
        if (r->integrated.n > 20)
            fprintf(out, "  ... and %zu more integrated\n", r->integrated.n - 20);
        for (size_t i = 0; i < r->integration_redundant.n && i < 20; i++)
            fprintf(out, "  redundant (says an integrator) %s\n", r->integration_redundant.v[i]);
        if (r->integration_failed)
            fprintf(out, "%sIntegration failed%s (see the errors above)\n", red, off);
    }
    char cov[32] = "n/a";
    if (r->coverage >= 0)
        snprintf(cov, sizeof(cov), "%.1f%%", r->coverage);
    if (r->aborted)
        fprintf(out, "%sABORTED%s: the run was stopped by a signal; the counts are partial\n",
                bold, off);
    char flaky[96] = "";
    if (r->totals.flaky || r->reruns)
        snprintf(flaky, sizeof(flaky), ", %u flaky (%u rerun%s, %.2fs)", r->totals.flaky,
                 r->reruns, r->reruns == 1 ? "" : "s", r->rerun_runtime_s);
    fprintf(out, "%s%s%u passed, %u failed%s, %u skipped, %u xfailed (%u errors, %u xpassed)%s in "
                 "%zu batch%s, %.2fs; coverage %s; runtime %s\n",
            bold, r->aborted ? "" : r->exit_status == 0 ? green : red, st_counts_passed(&r->totals),
            st_counts_failed(&r->totals), flaky, r->totals.n[ST_OUT_SKIPPED],
            r->totals.n[ST_OUT_XFAILED], r->totals.n[ST_OUT_ERROR], r->totals.n[ST_OUT_XPASSED],
            off, r->n_batches, r->n_batches == 1 ? "" : "es", r->total_runtime_s, cov,
            r->runtime_used);
}

static int node_cmp(const void *a, const void *b)
{
    const st_node_verdict *x = a, *y = b;
    return strcmp(x->nodeid, y->nodeid);
}

static int verdict_rank(const char *v)
{
    return strcmp(v, "failed") == 0  ? 3
           : strcmp(v, "flaky") == 0 ? 2
           : strcmp(v, "passed") == 0 ? 1
                                      : 0;
}

st_node_verdict *st_run_node_verdicts(const st_run *r, size_t *n)
{
    size_t total = 0;
    for (size_t i = 0; i < r->n_batches; i++)
        total += r->batches[i].n_tests;
    st_node_verdict *v = malloc((total + 1) * sizeof(*v));
    if (!v)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < r->n_batches; i++) {
        for (size_t t = 0; t < r->batches[i].n_tests; t++) {
            const st_test_result *tr = &r->batches[i].tests[t];
            const char *verdict = tr->flaky ? "flaky"
                                  : tr->outcome == ST_OUT_FAILED || tr->outcome == ST_OUT_ERROR
                                      ? "failed"
                                  : tr->outcome == ST_OUT_PASSED || tr->outcome == ST_OUT_XPASSED
                                      ? "passed"
                                      : "skipped";
            v[k++] = (st_node_verdict){tr->nodeid, verdict};
        }
    }
    qsort(v, k, sizeof(*v), node_cmp);
    /* fold the phases of one node: the worst verdict wins */
    size_t out = 0;
    for (size_t i = 0; i < k; i++) {
        if (out && strcmp(v[out - 1].nodeid, v[i].nodeid) == 0) {
            if (verdict_rank(v[i].verdict) > verdict_rank(v[out - 1].verdict))
                v[out - 1].verdict = v[i].verdict;
        } else {
            v[out++] = v[i];
        }
    }
    *n = out;
    return v;
}

void st_run_free(st_run *r)
{
    free(r->git_commit);
    st_strv_free(&r->git_dirty);
    for (size_t i = 0; i < r->n_checks; i++)
        st_batch_free(&r->checks[i]);
    free(r->checks);
    st_strv_free(&r->orphan_skipped);
    st_strv_free(&r->integrated);
    st_strv_free(&r->integration_redundant);
    st_strv_free(&r->regressions);
    st_strv_free(&r->fixed);
    st_strv_free(&r->still_failing);
    st_strv_free(&r->new_tests);
    st_strv_free(&r->flaky);
    st_strv_free(&r->quarantined);
    st_strv_free(&r->quarantine_ready);
    st_strv_free(&r->quarantine_listed);
    for (size_t i = 0; i < r->n_batches; i++)
        st_batch_free(&r->batches[i]);
    free(r->batches);
    free(r->run_id);
    memset(r, 0, sizeof(*r));
}
