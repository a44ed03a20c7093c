/* SPDX-License-Identifier: MIT */
/* JUnit XML (see junit.h). */
#include "config.h"

#include "junit.h"

#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- escaping ------------------------------------------------------------------------------ */

/* Decodes one UTF-8 sequence at s (at most n bytes). Returns its length and sets *cp, or 0 when
 * the bytes are not a valid, shortest-form sequence of a Unicode scalar value. */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, min = 0x80, c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, min = 0x800, c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

void st_xml_escape(st_buf *out, const char *str, int attr)
{
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    size_t n = strlen((const char *)s);
    size_t i = 0;
    while (i < n) {
        unsigned cp;
        size_t len = utf8_decode(s + i, n - i, &cp);
        if (len == 0) {
            st_buf_append(out, replacement, 3);
            i++;
            continue;
        }
        switch (cp) {
        case '&':
            st_buf_puts(out, "&amp;");
            break;
        case '<':
            st_buf_puts(out, "&lt;");
            break;
        case '>':
            st_buf_puts(out, "&gt;");
            break;
        case '"':
            st_buf_puts(out, "&quot;");
            break;
        case '\'':
            st_buf_puts(out, "&apos;");
            break;
        case '\t':
            st_buf_puts(out, attr ? "&#9;" : "\t");
            break;
        case '\n':
            st_buf_puts(out, attr ? "&#10;" : "\n");
            break;
        case '\r':
            st_buf_puts(out, "&#13;");
            break;
        default:
            if (cp < 0x20 || cp == 0xFFFE || cp == 0xFFFF)
                st_buf_append(out, replacement, 3);
            else
                st_buf_append(out, s + i, len);
        }
        i += len;
    }
}

static void attr(st_buf *b, const char *name, const char *value)
{
    st_buf_printf(b, " %s=\"", name);
    st_xml_escape(b, value, 1);
    st_buf_puts(b, "\"");
}

static void attr_uint(st_buf *b, const char *name, unsigned long v)
{
    st_buf_printf(b, " %s=\"%lu\"", name, v);
}

static void attr_time(st_buf *b, const char *name, double seconds)
{
    st_buf_printf(b, " %s=\"%.3f\"", name, seconds > 0 && seconds < 1e12 ? seconds : 0.0);
}

/* <NAME>text</NAME> when text is not empty */
static void element_text(st_buf *b, const char *indent, const char *name, const char *text)
{
    if (!text || !*text)
        return;
    st_buf_printf(b, "%s<%s>", indent, name);
    st_xml_escape(b, text, 0);
    st_buf_printf(b, "</%s>\n", name);
}

/* ---- properties ---------------------------------------------------------------------------- */

typedef struct prop {
    const char *name;
    char *value; /* owned */
} prop;

typedef struct props {
    prop v[16];
    size_t n;
} props;

static void prop_add(props *p, const char *name, char *value)
{
    if (!value)
        return;
    if (p->n == sizeof(p->v) / sizeof(p->v[0])) {
        free(value);
        return;
    }
    p->v[p->n].name = name;
    p->v[p->n++].value = value;
}

static void props_emit(st_buf *b, const char *indent, props *p)
{
    if (p->n) {
        st_buf_printf(b, "%s<properties>\n", indent);
        for (size_t i = 0; i < p->n; i++) {
            st_buf_printf(b, "%s  <property", indent);
            attr(b, "name", p->v[i].name);
            attr(b, "value", p->v[i].value);
            st_buf_puts(b, "/>\n");
        }
        st_buf_printf(b, "%s</properties>\n", indent);
    }
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].value);
    p->n = 0;
}

/* The properties of one testcase. Every <testcase> may carry a <properties> block: this is the
 * one place that decides what goes into it (the pytest phase of a setup or teardown report; a
 * later per-test fact such as a flaky verdict belongs here too). */
static char *failure_message(const char *excerpt, const char *fallback);

static void testcase_properties(const st_batch *b, const st_test_result *tr, props *p)
{
    (void)b;
    if (tr->phase && strcmp(tr->phase, "call") != 0)
        prop_add(p, "selftest.phase", st_strdup(tr->phase));
    if (tr->outcome == ST_OUT_XPASSED)
        prop_add(p, "selftest.outcome", st_strdup("xpassed"));
    /* failed, then passed when run again alone: a pass that says so (docs/flaky.md) */
    if (tr->flaky) {
        prop_add(p, "flaky", st_strdup("true"));
        prop_add(p, "selftest.attempts", st_asprintf("%u", tr->attempts));
        prop_add(p, "selftest.first_failure", failure_message(tr->excerpt, "failed"));
    } else if (tr->attempts > 1) {
        prop_add(p, "selftest.attempts", st_asprintf("%u", tr->attempts));
    }
    if (tr->quarantined)
        prop_add(p, "selftest.quarantined", st_strdup("true"));
}

/* ---- names and messages -------------------------------------------------------------------- */

/* Splits a pytest node id at its "::" separators outside [] (a parametrised id may hold
 * "::"). Returns the number of parts; starts[i] / lens[i] locate them (at most max parts, the
 * last holding the rest). */
static size_t split_nodeid(const char *id, const char **starts, size_t *lens, size_t max)
{
    size_t n = 0, depth = 0;
    const char *part = id;
    for (const char *c = id; *c; c++) {
        if (*c == '[')
            depth++;
        else if (*c == ']' && depth)
            depth--;
        else if (depth == 0 && c[0] == ':' && c[1] == ':' && n + 1 < max) {
            starts[n] = part;
            lens[n++] = (size_t)(c - part);
            part = c + 2;
            c++;
        }
    }
    starts[n] = part;
    lens[n++] = strlen(part);
    return n;
}

/* classname: the test file as a dotted module path, then the classes; name: the test. A node
 * without "::" (a file that failed to collect) is its own name, the module its classname. */
static void testcase_names(const char *nodeid, char **classname, char **name)
{
    const char *starts[32];
    size_t lens[32];
    size_t n = split_nodeid(nodeid, starts, lens, 32);
    st_buf cls = {0};
    size_t flen = lens[0];
    if (flen > 3 && strncmp(starts[0] + flen - 3, ".py", 3) == 0)
        flen -= 3;
    for (size_t i = 0; i < flen; i++)
        st_buf_append(&cls, starts[0][i] == '/' ? "." : starts[0] + i, 1);
    for (size_t i = 1; i + 1 < n; i++) {
        st_buf_append(&cls, ".", 1);
        st_buf_append(&cls, starts[i], lens[i]);
    }
    if (!cls.data)
        st_buf_puts(&cls, "");
    *classname = st_buf_steal(&cls);
    *name = st_strndup(starts[n - 1], lens[n - 1]);
}

/* The message of a failure: the first line of the last "E   " block of pytest's traceback
 * (the exception, as pytest's own junitxml gives it), else the last line that is not empty;
 * at most 512 bytes (cut at a character boundary). */
static char *failure_message(const char *excerpt, const char *fallback)
{
    if (!excerpt || !*excerpt)
        return st_strdup(fallback);
    const char *best = NULL, *last = NULL;
    int in_block = 0;
    for (const char *line = excerpt; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        int is_e = len >= 2 && line[0] == 'E' && (line[1] == ' ' || line[1] == '\t');
        if (is_e && !in_block)
            best = line;
        in_block = is_e;
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t'))
            k++;
        if (k < len)
            last = line;
        line = end ? end + 1 : line + len;
    }
    const char *from = best ? best + 1 : last;
    if (!from)
        return st_strdup(fallback);
    while (*from == ' ' || *from == '\t')
        from++;
    size_t len = strcspn(from, "\n");
    if (len > 512) {
        len = 512;
        while (len && ((unsigned char)from[len] & 0xC0) == 0x80)
            len--;
    }
    return st_strndup(from, len);
}

/* ---- rendering ----------------------------------------------------------------------------- */

static const char *phase_word(const char *phase)
{
    return phase && strcmp(phase, "call") != 0 ? phase : NULL;
}

static void render_testcase(st_buf *b, const st_batch *bt, const st_test_result *tr)
{
    char *classname = NULL, *name = NULL;
    testcase_names(tr->nodeid, &classname, &name);
    st_buf_puts(b, "    <testcase");
    attr(b, "classname", classname ? classname : "");
    attr(b, "name", name ? name : tr->nodeid);
    attr(b, "file", tr->file);
    if (tr->line > 0)
        attr_uint(b, "line", (unsigned long)tr->line);
    attr_time(b, "time", tr->duration_s);
    free(classname);
    free(name);
    props p = {.n = 0};
    testcase_properties(bt, tr, &p);
    /* a flaky test passed in the end: no <failure>, its properties say what happened */
    st_outcome outcome = tr->flaky ? ST_OUT_PASSED : tr->outcome;
    int empty = p.n == 0 && outcome != ST_OUT_FAILED && outcome != ST_OUT_ERROR &&
                outcome != ST_OUT_SKIPPED && outcome != ST_OUT_XFAILED;
    if (empty) {
        st_buf_puts(b, "/>\n");
        return;
    }
    st_buf_puts(b, ">\n");
    props_emit(b, "      ", &p);
    switch (outcome) {
    case ST_OUT_FAILED:
    case ST_OUT_ERROR: {
        int failed = tr->outcome == ST_OUT_FAILED;
        char *msg = failure_message(tr->excerpt, failed ? "failed" : "error");
        const char *ph = phase_word(tr->phase);
        char *full = ph && msg ? st_asprintf("error at %s: %s", ph, msg) : NULL;
        st_buf_printf(b, "      <%s", failed ? "failure" : "error");
        attr(b, "type", failed ? "failure" : ph ? ph : "error");
        attr(b, "message", full ? full : msg ? msg : "");
        st_buf_puts(b, ">");
        st_xml_escape(b, tr->excerpt, 0);
        st_buf_printf(b, "</%s>\n", failed ? "failure" : "error");
        free(full);
        free(msg);
        break;
    }
    case ST_OUT_SKIPPED:
        st_buf_puts(b, "      <skipped type=\"pytest.skip\"");
        attr(b, "message", tr->skip_reason ? tr->skip_reason : "skipped");
        st_buf_puts(b, "/>\n");
        break;
    case ST_OUT_XFAILED:
        st_buf_puts(b, "      <skipped type=\"pytest.xfail\"");
        attr(b, "message", tr->skip_reason ? tr->skip_reason : "expected failure");
        st_buf_puts(b, "/>\n");
        break;
    default:
        break;
    }
    element_text(b, "      ", "system-out", tr->out);
    element_text(b, "      ", "system-err", tr->err);
    st_buf_puts(b, "    </testcase>\n");
}

/* A batch that failed with no failed or errored test to show for it (a crash, a timeout, a
 * signal, nothing collected, results that could not be read): one <testcase> with an <error>
 * so that a CI server does not show the batch as green. */
static int batch_failed_silently(const st_batch *b)
{
    return b->done && !b->ok && !b->aborted && st_counts_failed(&b->counts) == 0;
}

static void render_batch_error(st_buf *b, const st_batch *bt)
{
    /* named after the test that was running when it ended, when there was exactly one */
    const char *running = !bt->saw_end && bt->running.n == 1 ? bt->running.v[0] : NULL;
    char *classname = NULL, *name = NULL;
    if (running)
        testcase_names(running, &classname, &name);
    st_buf_puts(b, "    <testcase");
    attr(b, "classname", classname ? classname : "selftest-core.batch");
    attr(b, "name", name ? name : bt->path);
    if (running) {
        char *file = st_strndup(running, strcspn(running, ":"));
        attr(b, "file", file ? file : "");
        free(file);
    }
    free(classname);
    free(name);
    attr_time(b, "time", bt->runtime_s);
    st_buf_puts(b, ">\n");
    props p = {.n = 0};
    prop_add(&p, "selftest.batch_failure", st_strdup("true"));
    for (size_t i = 0; !bt->saw_end && i < bt->running.n; i++)
        prop_add(&p, "selftest.running_test", st_strdup(bt->running.v[i]));
    props_emit(b, "      ", &p);
    const char *reason = bt->reason ? bt->reason : "the batch failed";
    st_buf_puts(b, "      <error");
    attr(b, "type", bt->timed_out ? "timeout" : bt->term_signal ? "signal" : "batch");
    attr(b, "message", reason);
    st_buf_puts(b, ">");
    st_xml_escape(b, bt->output_tail.len ? bt->output_tail.data : reason, 0);
    st_buf_puts(b, "</error>\n    </testcase>\n");
}

char *st_junit_render(const st_run *run, const char *hostname)
{
    st_buf b = {0};
    unsigned long tests = 0, failures = 0, errors = 0, skipped = 0;
    for (size_t i = 0; i < run->n_batches; i++) {
        const st_batch *bt = &run->batches[i];
        tests += bt->n_tests;
        failures += bt->counts.n[ST_OUT_FAILED];
        errors += bt->counts.n[ST_OUT_ERROR];
        skipped += bt->counts.n[ST_OUT_SKIPPED] + bt->counts.n[ST_OUT_XFAILED];
        if (batch_failed_silently(bt))
            tests++, errors++;
    }
    st_buf_puts(&b,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"selftest-core\"");
    attr_uint(&b, "tests", tests);
    attr_uint(&b, "failures", failures);
    attr_uint(&b, "errors", errors);
    attr_time(&b, "time", run->total_runtime_s);
    st_buf_puts(&b, ">\n");
    for (size_t i = 0; i < run->n_batches; i++) {
        const st_batch *bt = &run->batches[i];
        int silent = batch_failed_silently(bt);
        char stamp[32];
        st_utc_iso8601(bt->started_at > 0 ? bt->started_at : run->started_at, stamp, sizeof(stamp));
        st_buf_puts(&b, "  <testsuite");
        attr(&b, "name", bt->path);
        attr_uint(&b, "tests", bt->n_tests + (silent ? 1 : 0));
        attr_uint(&b, "failures", bt->counts.n[ST_OUT_FAILED]);
        attr_uint(&b, "errors", bt->counts.n[ST_OUT_ERROR] + (silent ? 1 : 0));
        attr_uint(&b, "skipped", bt->counts.n[ST_OUT_SKIPPED] + bt->counts.n[ST_OUT_XFAILED]);
        attr_time(&b, "time", bt->runtime_s);
        attr(&b, "timestamp", stamp);
        attr(&b, "hostname", hostname ? hostname : "localhost");
        attr_uint(&b, "id", (unsigned long)i);
        st_buf_puts(&b, ">\n");
        props p = {.n = 0};
        prop_add(&p, "selftest.run_id", st_strdup(run->run_id));
        prop_add(&p, "selftest.runtime", st_strdup(run->runtime_used));
        if (run->git_commit)
            prop_add(&p, "selftest.git_commit", st_strdup(run->git_commit));
        prop_add(&p, "selftest.batch_ok", st_strdup(bt->ok ? "true" : "false"));
        if (bt->reason)
            prop_add(&p, "selftest.batch_reason", st_strdup(bt->reason));
        if (bt->aborted)
            prop_add(&p, "selftest.aborted", st_strdup("true"));
        if (bt->container)
            prop_add(&p, "selftest.container", st_strdup(bt->container));
        prop_add(&p, "selftest.workers", st_asprintf("%u", bt->workers));
        props_emit(&b, "    ", &p);
        for (size_t t = 0; t < bt->n_tests; t++)
            render_testcase(&b, bt, &bt->tests[t]);
        if (silent)
            render_batch_error(&b, bt);
        st_buf_puts(&b, "  </testsuite>\n");
    }
    st_buf_puts(&b, "</testsuites>\n");
    if (b.oom) {
        st_buf_free(&b);
        return NULL;
    }
    return st_buf_steal(&b);
}

int st_junit_write(const st_run *run, const char *file)
{
    char host[256] = "localhost";
    if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
        strcpy(host, "localhost");
    host[sizeof(host) - 1] = '\0';
    char *text = st_junit_render(run, host);
    char *dir = st_path_dirname(file);
    int rc = text && dir ? st_mkdir_p(dir, 0755) : -ENOMEM;
    const char *what = NULL;
    if (rc == 0)
        rc = st_write_file_atomic_what(file, text, strlen(text), 0644, &what);
    if (rc < 0)
        st_warn("cannot write the JUnit XML %s%s%s: %s; the old file is left as it was", file,
                what ? ": cannot " : "", what ? what : "", strerror(-rc));
    else
        st_info("JUnit XML written to %s", file);
    free(text);
    free(dir);
    return st_status_of_errno(rc);
}
