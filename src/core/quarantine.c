/* SPDX-License-Identifier: MIT */
/* The quarantine file (see quarantine.h). */
#include "config.h"

#include "quarantine.h"

#include "json.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define QUARANTINE_MAX_BYTES (16u << 20)

static void entry_free(st_quarantine_entry *e)
{
    free(e->nodeid);
    free(e->reason);
    free(e->since);
}

void st_quarantine_free(st_quarantine *q)
{
    for (size_t i = 0; i < q->n; i++)
        entry_free(&q->v[i]);
    free(q->v);
    memset(q, 0, sizeof(*q));
}

static int push(st_quarantine *q, const char *nodeid, const char *reason, const char *since)
{
    if (ST_GROW(q->v, q->cap, q->n + 1) < 0)
        return ST_ERR_NOMEM;
    st_quarantine_entry *e = &q->v[q->n];
    e->nodeid = st_strdup(nodeid);
    e->reason = st_strdup(reason ? reason : "");
    e->since = st_strdup(since ? since : "");
    if (!e->nodeid || !e->reason || !e->since) {
        entry_free(e);
        return ST_ERR_NOMEM;
    }
    q->n++;
    return ST_OK;
}

int st_quarantine_load(const char *path, st_quarantine *q)
{
    memset(q, 0, sizeof(*q));
    char *text = NULL;
    size_t len = 0;
    int rc = st_read_file(path, QUARANTINE_MAX_BYTES, &text, &len);
    if (rc == -ENOENT)
        return ST_OK;
    if (rc < 0) {
        st_error("quarantine file %s: cannot read it: %s", path, st_read_file_strerror(rc));
        return st_status_of_errno(-rc);
    }
    if (strspn(text, " \t\r\n") == len) {
        free(text);
        return ST_OK;
    }
    char err[256];
    yajl_val v = st_json_parse_n(text, len, err, sizeof(err));
    free(text);
    const char *bad = NULL;
    int status = ST_ERR_MALFORMED;
    char why[320];
    yajl_val tests = v ? st_jv_get(v, "tests") : NULL;
    if (!v)
        bad = err;
    else if (!YAJL_IS_OBJECT(v) || !tests || !YAJL_IS_ARRAY(tests))
        bad = "not an object with a \"tests\" array";
    for (size_t i = 0; !bad && i < tests->u.array.len; i++) {
        yajl_val e = tests->u.array.values[i];
        const char *nodeid = YAJL_IS_OBJECT(e) ? st_jv_str(e, "nodeid") : NULL;
        if (!nodeid || !nodeid[0]) {
            snprintf(why, sizeof(why), "entry %zu of \"tests\" has no \"nodeid\" string", i + 1);
            bad = why;
        } else if (st_quarantine_find(q, nodeid)) {
            snprintf(why, sizeof(why), "entry %zu of \"tests\": %.200s is listed twice", i + 1,
                     nodeid);
            bad = why;
        } else if (push(q, nodeid, st_jv_str(e, "reason"), st_jv_str(e, "since")) < 0) {
            bad = "out of memory";
            status = ST_ERR_NOMEM;
        }
    }
    if (v)
        yajl_tree_free(v);
    if (bad) {
        st_error("quarantine file %s: %s; the file is left as it is (fix or remove it)", path,
                 bad);
        st_quarantine_free(q);
        return status;
    }
    return ST_OK;
}

int st_quarantine_save(const char *path, const st_quarantine *q)
{
    yajl_gen g = st_jg_new(1);
    if (!g)
        return ST_ERR_NOMEM;
    yajl_gen_map_open(g);
    st_jg_key(g, "tests");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < q->n; i++) {
        yajl_gen_map_open(g);
        st_jg_kstr(g, "nodeid", q->v[i].nodeid);
        st_jg_kstr(g, "reason", q->v[i].reason);
        st_jg_kstr(g, "since", q->v[i].since);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    char *out = st_jg_finish(g, 1);
    if (!out) {
        st_error("quarantine file %s: out of memory", path);
        return ST_ERR_NOMEM;
    }
    char *dir = st_path_dirname(path);
    if (dir)
        st_mkdir_p(dir, 0755);
    free(dir);
    int rc = st_write_file_atomic(path, out, strlen(out), 0644);
    free(out);
    if (rc < 0) {
        st_error("quarantine file %s: cannot write it: %s; the previous file is intact", path,
                 strerror(-rc));
        return st_status_of_errno(-rc);
    }
    return ST_OK;
}

const st_quarantine_entry *st_quarantine_find(const st_quarantine *q, const char *nodeid)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->v[i].nodeid, nodeid) == 0)
            return &q->v[i];
    return NULL;
}

int st_quarantine_add(st_quarantine *q, const char *nodeid, const char *reason, double now)
{
    char since[32];
    st_utc_iso8601(now, since, sizeof(since));
    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->v[i].nodeid, nodeid) != 0)
            continue;
        char *r = st_strdup(reason ? reason : ""), *s = st_strdup(since);
        if (!r || !s) {
            free(r);
            free(s);
            return ST_ERR_NOMEM;
        }
        free(q->v[i].reason);
        free(q->v[i].since);
        q->v[i].reason = r;
        q->v[i].since = s;
        return ST_OK;
    }
    return push(q, nodeid, reason, since);
}

int st_quarantine_remove(st_quarantine *q, const char *nodeid)
{
    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->v[i].nodeid, nodeid) != 0)
            continue;
        entry_free(&q->v[i]);
        memmove(&q->v[i], &q->v[i + 1], (q->n - i - 1) * sizeof(q->v[0]));
        q->n--;
        return 1;
    }
    return 0;
}
