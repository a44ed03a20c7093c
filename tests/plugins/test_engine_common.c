/* SPDX-License-Identifier: MIT */
/* Unit tests of plugins/common: the multiplexed log decoder, engine address parsing, error
 * bodies, errno diagnosis against dead / silent / answering unix sockets, helpers. */
#include "config.h"

#include "engine_demux.h"
#include "engine_http.h"
#include "engine_runtime.h"
#include "engine_multi.h"
#include "engine_util.h"
#include "st_json.h"

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- demux ---------------------------------------------------------------------------------- */

typedef struct collected {
    char out[4096], err[4096];
    size_t nout, nerr;
    unsigned calls;
} collected;

static void collect(void *opaque, int stream, const char *data, size_t len)
{
    collected *c = opaque;
    char *dst = stream == 2 ? c->err : c->out;
    size_t *n = stream == 2 ? &c->nerr : &c->nout;
    ck_assert_uint_lt(*n + len, sizeof(c->out));
    memcpy(dst + *n, data, len);
    *n += len;
    dst[*n] = '\0';
    c->calls++;
}

static size_t frame(char *buf, int stream, const char *payload)
{
    size_t n = strlen(payload);
    buf[0] = (char)stream;
    buf[1] = buf[2] = buf[3] = 0;
    buf[4] = (char)((n >> 24) & 0xff);
    buf[5] = (char)((n >> 16) & 0xff);
    buf[6] = (char)((n >> 8) & 0xff);
    buf[7] = (char)(n & 0xff);
    memcpy(buf + 8, payload, n);
    return n + 8;
}

static size_t sample_stream(char *buf)
{
    size_t n = 0;
    n += frame(buf + n, 1, "collected 3 items\n");
    n += frame(buf + n, 1, ".");
    n += frame(buf + n, 2, "warn: x\n");
    n += frame(buf + n, 1, "");
    n += frame(buf + n, 1, ".F\n3 passed");
    n += frame(buf + n, 2, "\n");
    return n;
}

START_TEST(demux_whole_buffer)
{
    char buf[512];
    size_t n = sample_stream(buf);
    collected c = {0};
    ed_demux d;
    ed_init(&d, collect, &c);
    ed_feed(&d, buf, n);
    ck_assert_str_eq(c.out, "collected 3 items\n..F\n3 passed");
    ck_assert_str_eq(c.err, "warn: x\n\n");
    ck_assert_int_eq(ed_incomplete(&d), 0);
    ck_assert_uint_eq(d.frames, 6);
}
END_TEST

START_TEST(demux_byte_by_byte)
{
    /* frames split anywhere, headers included: the result must not change */
    char buf[512];
    size_t n = sample_stream(buf);
    for (size_t chunk = 1; chunk <= 9; chunk++) {
        collected c = {0};
        ed_demux d;
        ed_init(&d, collect, &c);
        for (size_t i = 0; i < n; i += chunk)
            ed_feed(&d, buf + i, i + chunk <= n ? chunk : n - i);
        ck_assert_str_eq(c.out, "collected 3 items\n..F\n3 passed");
        ck_assert_str_eq(c.err, "warn: x\n\n");
        ck_assert_int_eq(ed_incomplete(&d), 0);
    }
}
END_TEST

START_TEST(demux_truncated_and_raw)
{
    char buf[64];
    size_t n = frame(buf, 1, "hello");
    collected c = {0};
    ed_demux d;
    ed_init(&d, collect, &c);
    ed_feed(&d, buf, n - 2); /* the stream ends inside the payload */
    ck_assert_str_eq(c.out, "hel");
    ck_assert_int_eq(ed_incomplete(&d), 1);
    ed_init(&d, collect, &c);
    ed_feed(&d, buf, 5); /* ... inside the header */
    ck_assert_int_eq(ed_incomplete(&d), 1);

    /* a Tty container's raw stream passes through as stdout */
    collected r = {0};
    ed_init(&d, collect, &r);
    ed_feed(&d, "plain ", 6);
    ed_feed(&d, "text\n", 5);
    ck_assert_str_eq(r.out, "plain text\n");
    ck_assert_int_eq(ed_incomplete(&d), 0);

    /* a bad header after good frames: passed through, nothing lost */
    collected b = {0};
    char buf2[64];
    size_t m = frame(buf2, 1, "ok");
    memcpy(buf2 + m, "\x01\x07\x00\x00zzzz", 8);
    ed_init(&d, collect, &b);
    ed_feed(&d, buf2, m + 8);
    ck_assert_uint_eq(b.nout, 2 + 8);
    ck_assert_int_eq(memcmp(b.out, "ok\x01\x07", 4), 0);
}
END_TEST

/* ---- addresses ------------------------------------------------------------------------------ */

START_TEST(hosts_entries)
{
    char a[64];
    unsigned w = 99;
    ck_assert_int_eq(em_parse_entry("unix:///x.sock", a, sizeof(a), &w), 0);
    ck_assert_str_eq(a, "unix:///x.sock");
    ck_assert_uint_eq(w, 0);
    ck_assert_int_eq(em_parse_entry("tcp://h:2376?workers=8", a, sizeof(a), &w), 0);
    ck_assert_str_eq(a, "tcp://h:2376");
    ck_assert_uint_eq(w, 8);
    ck_assert_int_eq(em_parse_entry("tcp://h?workers=0", a, sizeof(a), &w), -1);
    ck_assert_int_eq(em_parse_entry("tcp://h?workers=", a, sizeof(a), &w), -1);
    ck_assert_int_eq(em_parse_entry("tcp://h?workers=2x", a, sizeof(a), &w), -1);
    ck_assert_int_eq(em_parse_entry("?workers=2", a, sizeof(a), &w), -1);
    ck_assert_int_eq(em_parse_entry("unix:///a/very/long/path/that/does/not/fit/into/sixty-four/"
                                    "bytes.sock", a, sizeof(a), &w), -1);
}
END_TEST

/* ---- placement ------------------------------------------------------------------------------ */

static unsigned long place_seq;

/* Places a request as em_execute does: the chosen engine's busy workers, load and turn. */
static long place(em_place_view *v, size_t n, unsigned w, double expected)
{
    int all_down = 0;
    long i = em_place(v, n, w, expected, &all_down);
    if (i >= 0) {
        unsigned cap = v[i].workers ? v[i].workers : 1;
        v[i].busy += w < cap ? w : cap;
        v[i].load_s += expected > 0 ? expected : 0;
        v[i].last_pick = ++place_seq;
    }
    return i;
}

static void finish(em_place_view *v, long i, unsigned w, double expected)
{
    unsigned cap = v[i].workers ? v[i].workers : 1;
    v[i].busy -= w < cap ? w : cap;
    v[i].load_s -= expected > 0 ? expected : 0;
}

/* Requests that each arrive after the one before has ended (one worker thread, or a second
 * thread that starts late): equal engines take turns, so the two longest shards still run on
 * two engines and the loads differ by at most one shard. Choosing the first free engine put
 * all four on engine 0. */
/* The order of waiting requests: longest expected first, unknown durations last, then by
 * arrival. Four shards arriving in the worst order (shortest first) are placed longest first. */
START_TEST(waiting_requests_longest_first)
{
    ck_assert(em_before(8, 4, 2, 1));   /* longer, though it arrived later */
    ck_assert(!em_before(2, 1, 8, 4));
    ck_assert(em_before(5, 1, 5, 2));   /* equal: the first to arrive */
    ck_assert(!em_before(5, 2, 5, 1));
    ck_assert(em_before(0.5, 9, -1, 1)); /* a known duration before an unknown one */
    ck_assert(!em_before(-1, 1, 0.5, 9));
    ck_assert(em_before(-1, 1, -1, 2)); /* unknown: by arrival */
    const double exp[4] = {2, 4, 6, 8}; /* arrival order 1..4 */
    int placed[4] = {0, 0, 0, 0};
    for (int round = 0; round < 4; round++) {
        int first = -1;
        for (int k = 0; k < 4; k++)
            if (!placed[k] && (first < 0 || em_before(exp[k], (unsigned long)k + 1, exp[first],
                                                       (unsigned long)first + 1)))
                first = k;
        ck_assert_int_eq(first, 3 - round);
        placed[first] = 1;
    }
}
END_TEST

START_TEST(placement_takes_turns_whatever_the_timing)
{
    em_place_view v[2] = {{0, 1, 0, 0, 0}, {0, 1, 0, 0, 0}};
    const double shard[4] = {8, 6, 4, 2};
    double load[2] = {0, 0};
    long where[4];
    for (int k = 0; k < 4; k++) {
        where[k] = place(v, 2, 1, shard[k]);
        ck_assert_int_ge(where[k], 0);
        load[where[k]] += shard[k];
        finish(v, where[k], 1, shard[k]);
    }
    ck_assert_int_ne(where[0], where[1]);
    ck_assert_msg(load[0] - load[1] <= 8 && load[1] - load[0] <= 8, "loads %g and %g", load[0],
                  load[1]);
    /* unknown durations: the same */
    em_place_view u[3] = {{0, 1, 0, 0, 0}, {0, 1, 0, 0, 0}, {0, 1, 0, 0, 0}};
    int used[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        long i = place(u, 3, 1, -1);
        ck_assert_int_ge(i, 0);
        used[i]++;
        finish(u, i, 1, -1);
    }
    ck_assert(used[0] == 1 && used[1] == 1 && used[2] == 1);
}
END_TEST

/* The expected finish time comes first; an engine without room, or lost, is never chosen. */
START_TEST(placement_by_expected_finish)
{
    /* engine 0: 2 workers, one running 10 s; engine 1: 1 worker, idle */
    em_place_view v[2] = {{0, 2, 1, 10, 5}, {0, 1, 0, 0, 6}};
    int all_down = 1;
    ck_assert_int_eq(em_place(v, 2, 1, 4, &all_down), 1); /* (10+4)/2 = 7 > 4/1 */
    ck_assert_int_eq(all_down, 0);
    v[1].load_s = 12;
    ck_assert_int_eq(em_place(v, 2, 1, 4, &all_down), 0); /* 7 < 16 */
    v[0].busy = 2;                                        /* no room on 0 */
    ck_assert_int_eq(em_place(v, 2, 1, 4, &all_down), 1);
    v[1].busy = 1;
    ck_assert_int_eq(em_place(v, 2, 1, 4, &all_down), -1);
    ck_assert_int_eq(all_down, 0);
    v[0].down = v[1].down = 1;
    ck_assert_int_eq(em_place(v, 2, 1, 4, &all_down), -1);
    ck_assert_int_eq(all_down, 1);
    /* a request wider than an engine runs alone there */
    em_place_view w[1] = {{0, 2, 0, 0, 0}};
    ck_assert_int_eq(em_place(w, 1, 8, 1, &all_down), 0);
}
END_TEST

START_TEST(address_good)
{
    eh_address a;
    char err[256], s[400];
    ck_assert_int_eq(eh_parse_address("unix:///run/x/docker.sock", 0, &a, err, sizeof(err)), 0);
    ck_assert_int_eq(a.scheme, EH_UNIX);
    ck_assert_str_eq(a.path, "/run/x/docker.sock");
    ck_assert_int_eq(eh_parse_address("/var/run/docker.sock", 0, &a, err, sizeof(err)), 0);
    ck_assert_int_eq(a.scheme, EH_UNIX);
    ck_assert_int_eq(eh_parse_address("tcp://10.0.0.1:2375", 0, &a, err, sizeof(err)), 0);
    ck_assert_int_eq(a.scheme, EH_TCP);
    ck_assert_str_eq(a.host, "10.0.0.1");
    ck_assert_int_eq(a.port, 2375);
    ck_assert_int_eq(a.tls, 0);
    ck_assert_int_eq(eh_parse_address("tcp://engine.example", 0, &a, err, sizeof(err)), 0);
    ck_assert_int_eq(a.port, 2375);
    ck_assert_int_eq(eh_parse_address("tcp://engine.example/", 1, &a, err, sizeof(err)), 0);
    ck_assert_int_eq(a.port, 2376);
    ck_assert_int_eq(a.tls, 1);
    ck_assert_int_eq(eh_parse_address("https://h:443", 0, &a, err, sizeof(err)), 0);
    ck_assert_int_eq(a.tls, 1);
    ck_assert_int_eq(eh_parse_address("tcp://[::1]:2375", 0, &a, err, sizeof(err)), 0);
    ck_assert_str_eq(a.host, "::1");
    eh_address_str(&a, s, sizeof(s));
    ck_assert_str_eq(s, "tcp://[::1]:2375");
    ck_assert_int_eq(eh_parse_address("ssh://ci@build-1:2222/run/podman/podman.sock", 0, &a, err,
                                      sizeof(err)), 0);
    ck_assert_int_eq(a.scheme, EH_SSH);
    ck_assert_str_eq(a.user, "ci");
    ck_assert_str_eq(a.host, "build-1");
    ck_assert_int_eq(a.port, 2222);
    ck_assert_str_eq(a.path, "/run/podman/podman.sock");
    ck_assert_int_eq(eh_parse_address("ssh://build-1", 0, &a, err, sizeof(err)), 0);
    ck_assert_int_eq(a.port, 22);
    ck_assert_str_eq(a.user, "");
    ck_assert_str_eq(a.path, "");
}
END_TEST

START_TEST(address_bad)
{
    static const struct {
        const char *url, *why;
    } cases[] = {
        {"", "empty"},
        {"unix://relative.sock", "absolute"},
        {"tcp://", "no host"},
        {"tcp://:2375", "no host"},
        {"tcp://host:", "empty port"},
        {"tcp://host:99999", "1..65535"},
        {"tcp://host:0", "1..65535"},
        {"tcp://host:12ab", "not a number"},
        {"tcp://host/v1.41", "no path"},
        {"tcp://ho st:1", "space"},
        {"tcp://[::1", "']'"},
        {"ftp://host", "unknown scheme"},
        {"docker.sock", "expected"},
        {"ssh://-oProxy", "start with '-'"},
        {"ssh://a b@host", "space"},
        {"tcp://h\x01st:1", "control"},
        {"unix:///aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock", "longer"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        eh_address a;
        char err[256] = "";
        ck_assert_msg(eh_parse_address(cases[i].url, 0, &a, err, sizeof(err)) == -1, "accepted %s",
                      cases[i].url);
        ck_assert_msg(strstr(err, cases[i].why) != NULL, "%s: '%s' lacks '%s'", cases[i].url, err,
                      cases[i].why);
        ck_assert_msg(strstr(err, "bad engine address") != NULL, "%s", err);
    }
}
END_TEST

/* ---- error bodies and helpers --------------------------------------------------------------- */

START_TEST(error_text)
{
    char buf[200];
    char body1[] = "{\"message\":\"No such image: nope:1\"}";
    eh_response r = {.status = 404, .body = body1, .len = sizeof(body1) - 1};
    eh_error_text(&r, buf, sizeof(buf));
    ck_assert_str_eq(buf, "No such image: nope:1");
    char body2[] = "{\"cause\":\"x\",\"message\":\"bad\\nthing\",\"response\":500}";
    r = (eh_response){.status = 500, .body = body2, .len = sizeof(body2) - 1};
    eh_error_text(&r, buf, sizeof(buf));
    ck_assert_str_eq(buf, "bad thing");
    char body3[] = "{\"message\": tru";
    r = (eh_response){.status = 500, .body = body3, .len = sizeof(body3) - 1};
    eh_error_text(&r, buf, sizeof(buf));
    ck_assert_str_eq(buf, "HTTP 500: {\"message\": tru");
    r = (eh_response){.status = 502};
    eh_error_text(&r, buf, sizeof(buf));
    ck_assert_str_eq(buf, "HTTP 502");
}
END_TEST

/* An engine (or anything at its address) answering a million levels of [[[...]]] must not make
 * yajl build a tree whose recursive free overflows the stack. */
START_TEST(error_text_deep_body)
{
    size_t n = 1000000;
    char *body = malloc(2 * n + 1);
    ck_assert_ptr_nonnull(body);
    memset(body, '[', n);
    memset(body + n, ']', n);
    body[2 * n] = '\0';
    char buf[200];
    eh_response r = {.status = 500, .body = body, .len = 2 * n};
    eh_error_text(&r, buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "HTTP 500: [[[[", 14) == 0, "%s", buf);
    char err[64] = "";
    ck_assert_ptr_null(st_json_tree_parse(body, err, sizeof(err)));
    ck_assert_str_eq(err, "nested deeper than 64 levels");
    free(body);
    yajl_val v = st_json_tree_parse("{\"a\": [[{\"b\": \"[[[[\"}]]}", NULL, 0);
    ck_assert_ptr_nonnull(v);
    yajl_tree_free(v);
}
END_TEST

START_TEST(helpers)
{
    ck_assert_int_eq(er_parse_memory("512m"), 512LL * 1024 * 1024);
    ck_assert_int_eq(er_parse_memory("2G"), 2LL * 1024 * 1024 * 1024);
    ck_assert_int_eq(er_parse_memory("64kb"), 64LL * 1024);
    ck_assert_int_eq(er_parse_memory("1000"), 1000);
    ck_assert_int_eq(er_parse_memory("1.5g"), 3LL * 512 * 1024 * 1024);
    ck_assert_int_eq(er_parse_memory("12x"), -1);
    ck_assert_int_eq(er_parse_memory("-1m"), -1);
    ck_assert_int_eq(er_parse_memory(""), -1);
    ck_assert_int_eq(er_parse_memory("m"), -1);

    const char *pass[] = {"HTTP_PROXY", NULL};
    ck_assert(er_env_allowed("SELF_TEST_X=1", NULL));
    ck_assert(er_env_allowed("SANDBOX_REPO_PATH=/x", NULL));
    ck_assert(er_env_allowed("PYTHONPATH=/x", NULL));
    ck_assert(!er_env_allowed("PYTHONHOME=/usr", NULL));
    ck_assert(!er_env_allowed("AWS_SECRET_ACCESS_KEY=x", pass));
    ck_assert(er_env_allowed("HTTP_PROXY=http://p", pass));
    ck_assert(!er_env_allowed("HTTP_PROXY2=x", pass));
    ck_assert(!er_env_allowed("HTTP=x", pass));
    ck_assert(!er_env_allowed("=x", pass));

    ck_assert_int_gt(er_process_start((long)getpid()), 0);
    ck_assert_int_eq(er_process_start((long)getpid()), er_process_start((long)getpid()));
    ck_assert_int_eq(er_process_start(999999999L), -1);

    char enc[64];
    ck_assert_int_eq(eh_urlencode("{\"label\":[\"a=b\"]}", enc, sizeof(enc)), 0);
    ck_assert_str_eq(enc, "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D");
    ck_assert_int_eq(eh_urlencode("abcdef", enc, 4), -1);
}
END_TEST

/* engine_util: what runtime-docker, runtime-podman and runtime-swarm build and judge alike. */
static char *gen_text(void (*fill)(yajl_gen g, const void *arg), const void *arg)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    ck_assert_ptr_nonnull(g);
    fill(g, arg);
    return er_gen_finish(g);
}

static void fill_command(yajl_gen g, const void *arg)
{
    er_gen_command(g, "python3", arg);
}

static void fill_env(yajl_gen g, const void *arg)
{
    yajl_gen_array_open(g);
    er_gen_env_items(g, arg, NULL, "SELF_TEST_RESULTS_FRAME=");
    yajl_gen_array_close(g);
}

static void fill_labels(yajl_gen g, const void *arg)
{
    er_gen_owner_labels(g, arg, "123", NULL);
}

START_TEST(shared_helpers)
{
    ck_assert(er_safe_token("abc123", ""));
    ck_assert(er_safe_token("sha256:ab", ":"));
    ck_assert(!er_safe_token("sha256:ab", ""));
    ck_assert(!er_safe_token("", "_"));
    ck_assert(!er_safe_token(NULL, "_"));
    ck_assert(er_valid_api_version("1.41"));
    ck_assert(er_valid_api_version("4.0.0"));
    ck_assert(!er_valid_api_version("1"));
    ck_assert(!er_valid_api_version("1.2.3.4"));
    ck_assert(!er_valid_api_version("v1.41"));
    ck_assert(!er_valid_api_version(NULL));

    /* pytest gets -p no:cacheprovider after "-m pytest"; another module does not */
    const char *pytest[] = {"python", "-m", "pytest", "-q", NULL};
    char *t = gen_text(fill_command, pytest);
    ck_assert_str_eq(t, "[\"python3\",\"-m\",\"pytest\",\"-p\",\"no:cacheprovider\",\"-q\"]");
    free(t);
    const char *other[] = {"python", "-m", "other", NULL};
    t = gen_text(fill_command, other);
    ck_assert_str_eq(t, "[\"python3\",\"-m\",\"other\"]");
    free(t);

    /* the host's variable named by drop never passes; the request's win; the bytecode default */
    const char *dwb = getenv("PYTHONDONTWRITEBYTECODE");
    char *saved_dwb = dwb ? strdup(dwb) : NULL;
    unsetenv("PYTHONDONTWRITEBYTECODE");
    setenv("SELF_TEST_RESULTS_FRAME", "host", 1);
    setenv("SELF_TEST_ENGINE_UTIL", "host", 1);
    const char *env[] = {"SELF_TEST_ENGINE_UTIL=req", NULL};
    st_exec_request req = {.env = env};
    t = gen_text(fill_env, &req);
    ck_assert_ptr_null(strstr(t, "SELF_TEST_RESULTS_FRAME"));
    ck_assert_ptr_null(strstr(t, "SELF_TEST_ENGINE_UTIL=host"));
    ck_assert_ptr_nonnull(strstr(t, "\"SELF_TEST_ENGINE_UTIL=req\""));
    ck_assert_ptr_nonnull(strstr(t, "\"PYTHONDONTWRITEBYTECODE=1\"]"));
    free(t);
    unsetenv("SELF_TEST_RESULTS_FRAME");
    unsetenv("SELF_TEST_ENGINE_UTIL");
    if (saved_dwb)
        setenv("PYTHONDONTWRITEBYTECODE", saved_dwb, 1);
    free(saved_dwb);

    er_owner me;
    er_owner_init(&me);
    ck_assert_int_eq(me.pid, (long)getpid());
    ck_assert_uint_eq(strlen(me.run_id), 16);
    t = gen_text(fill_labels, &me);
    char want[600];
    snprintf(want, sizeof(want),
             "{\"menace_self_test\":\"1\",\"selftest.owner.host\":\"%s\",\"selftest.owner.pid\":"
             "\"%ld\",\"selftest.owner.start\":\"%lld\",\"selftest.run\":\"%s\","
             "\"selftest.deadline\":\"123\"}",
             me.hostname, me.pid, me.start_ticks, me.run_id);
    ck_assert_str_eq(t, want);

    /* the stale rule on those labels: this live process's stay, a dead owner's go */
    time_t now = time(NULL);
    yajl_val labels = st_json_tree_parse(t, NULL, 0);
    ck_assert_ptr_nonnull(labels);
    ck_assert_ptr_null(er_stale_reason(&me, labels, (long long)now - 10, 0, now));
    er_owner later = me;
    later.start_ticks = me.start_ticks + 1; /* the same pid, another start: a reused pid */
    free(t);
    t = gen_text(fill_labels, &later);
    yajl_tree_free(labels);
    labels = st_json_tree_parse(t, NULL, 0);
    ck_assert_str_eq(er_stale_reason(&me, labels, (long long)now - 10, 0, now),
                     "its owner process is gone");
    /* created after the cleanup began: never touched */
    ck_assert_ptr_null(er_stale_reason(&me, labels, (long long)now + 5, 0, now));
    /* another host's: its deadline (123, long past), then max_age */
    er_owner elsewhere = me;
    snprintf(elsewhere.hostname, sizeof(elsewhere.hostname), "elsewhere.invalid");
    ck_assert_str_eq(er_stale_reason(&elsewhere, labels, (long long)now - 10, 0, now),
                     "its deadline has passed");
    ck_assert_str_eq(er_stale_reason(&elsewhere, NULL, (long long)now - 100, 50, now),
                     "it is older than max_age");
    ck_assert_ptr_null(er_stale_reason(&elsewhere, NULL, (long long)now - 10, 50, now));
    yajl_tree_free(labels);
    free(t);

    er_tar_args a;
    const char *skip[] = {".git", NULL};
    st_project_info pi = {.skip_dirs = skip};
    er_tar_args_init(&a, &pi);
    er_tar_args_path(&a, "/p/root");
    ck_assert_uint_eq(a.n, 9);
    const char *want_argv[] = {
        "tar", "-c", "-f", "-", "-C", "/", "--exclude=.git", "--exclude=__pycache__", "./p/root"};
    for (size_t i = 0; i < 9; i++)
        ck_assert_str_eq(a.argv[i], want_argv[i]);
    ck_assert_ptr_null(a.argv[9]);
}
END_TEST

/* ---- requests against local unix sockets ---------------------------------------------------- */

static char sock_dir[64];

static int make_socket(const char *name, int do_listen, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", sock_dir, name);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    if (do_listen)
        ck_assert_int_eq(listen(fd, 4), 0);
    return fd;
}

static void setup_dir(void)
{
    snprintf(sock_dir, sizeof(sock_dir), "/tmp/st-engine-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(sock_dir));
}

static void client_for(eh_client *c, const char *path)
{
    eh_address a;
    char err[256], url[200];
    snprintf(url, sizeof(url), "unix://%s", path);
    ck_assert_int_eq(eh_parse_address(url, 0, &a, err, sizeof(err)), 0);
    eh_client_init(c, &a, NULL);
    c->connect_timeout_s = 1;
}

typedef struct server {
    int fd;
    const char *answer; /* NULL: accept and stay silent */
} server;

static void *serve_one(void *arg)
{
    server *s = arg;
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    char buf[4096];
    ssize_t n = read(c, buf, sizeof(buf));
    (void)n;
    if (s->answer) {
        ssize_t w = write(c, s->answer, strlen(s->answer));
        (void)w;
    } else {
        n = read(c, buf, sizeof(buf)); /* until the client gives up */
    }
    close(c);
    return NULL;
}

START_TEST(unreachable_engines)
{
    setup_dir();
    eh_client c;
    eh_response r;
    void *h = NULL;
    char err[512], path[128];
    eh_request rq = {.method = "GET", .path = "/_ping", .timeout_s = 2};

    snprintf(path, sizeof(path), "%s/none.sock", sock_dir);
    client_for(&c, path);
    ck_assert_int_eq(eh_perform(&c, &h, &rq, &r, err, sizeof(err)), -3 /* UNAVAILABLE */);
    ck_assert_int_eq(r.os_errno, ENOENT);
    ck_assert_msg(strstr(err, "no socket at that path") && strstr(err, path), "%s", err);
    eh_response_free(&r);

    int fd = make_socket("stale.sock", 0, path, sizeof(path)); /* bound, not listening */
    client_for(&c, path);
    ck_assert_int_eq(eh_perform(&c, &h, &rq, &r, err, sizeof(err)), -3);
    ck_assert_int_eq(r.os_errno, ECONNREFUSED);
    ck_assert_msg(strstr(err, "connection refused"), "%s", err);
    eh_response_free(&r);
    close(fd);
    unlink(path);

    /* accepts and never answers: the overall timeout ends it */
    server s = {make_socket("silent.sock", 1, path, sizeof(path)), NULL};
    pthread_t t;
    pthread_create(&t, NULL, serve_one, &s);
    client_for(&c, path);
    rq.timeout_s = 0.5;
    ck_assert_int_eq(eh_perform(&c, &h, &rq, &r, err, sizeof(err)), -4 /* TIMEOUT */);
    ck_assert_msg(strstr(err, "did not answer within 0.5s"), "%s", err);
    eh_response_free(&r);
    eh_handle_free(&h);
    pthread_join(t, NULL);
    close(s.fd);
    unlink(path);
    rmdir(sock_dir);
}
END_TEST

START_TEST(answers_are_read_and_bounded)
{
    setup_dir();
    char path[128], err[512];
    eh_client c;
    eh_response r;
    void *h = NULL;
    server s = {make_socket("engine.sock", 1, path, sizeof(path)),
                "HTTP/1.1 500 Internal Server Error\r\nApi-Version: 1.41\r\n"
                "Libpod-Api-Version: 4.3.1\r\nContent-Type: application/json\r\n"
                "Content-Length: 62\r\nConnection: close\r\n\r\n"
                "{\"cause\":\"x\",\"message\":\"no such container\",\"response\":500}    "};
    pthread_t t;
    pthread_create(&t, NULL, serve_one, &s);
    client_for(&c, path);
    eh_request rq = {.method = "GET", .path = "/v1.41/containers/x/json", .max_body = 20};
    ck_assert_int_eq(eh_perform(&c, &h, &rq, &r, err, sizeof(err)), 0);
    ck_assert_int_eq(r.status, 500);
    ck_assert_str_eq(r.api_version, "1.41");
    ck_assert_str_eq(r.libpod_version, "4.3.1");
    ck_assert_uint_eq(r.len, 20);
    ck_assert_int_eq(r.truncated, 1);
    eh_response_free(&r);
    pthread_join(t, NULL);

    s.answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK";
    pthread_create(&t, NULL, serve_one, &s);
    rq.max_body = 0;
    ck_assert_int_eq(eh_perform(&c, &h, &rq, &r, err, sizeof(err)), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "OK");
    eh_response_free(&r);
    pthread_join(t, NULL);

    /* the engine hangs up mid-answer */
    s.answer = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"Id\":";
    pthread_create(&t, NULL, serve_one, &s);
    ck_assert_int_eq(eh_perform(&c, &h, &rq, &r, err, sizeof(err)), -6 /* IO */);
    ck_assert_msg(strstr(err, "connection to the engine"), "%s", err);
    eh_response_free(&r);
    pthread_join(t, NULL);
    eh_handle_free(&h);
    close(s.fd);
    unlink(path);
    rmdir(sock_dir);
}
END_TEST

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("engine_common");
    TCase *tc = tcase_create("engine_common");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, demux_whole_buffer);
    tcase_add_test(tc, demux_byte_by_byte);
    tcase_add_test(tc, demux_truncated_and_raw);
    tcase_add_test(tc, hosts_entries);
    tcase_add_test(tc, address_good);
    tcase_add_test(tc, address_bad);
    tcase_add_test(tc, error_text);
    tcase_add_test(tc, error_text_deep_body);
    tcase_add_test(tc, helpers);
    tcase_add_test(tc, shared_helpers);
    tcase_add_test(tc, waiting_requests_longest_first);
    tcase_add_test(tc, placement_takes_turns_whatever_the_timing);
    tcase_add_test(tc, placement_by_expected_finish);
    tcase_add_test(tc, unreachable_engines);
    tcase_add_test(tc, answers_are_read_and_bounded);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
