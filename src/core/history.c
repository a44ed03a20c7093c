/* SPDX-License-Identifier: MIT */
/* The history file (see history.h). */
#include "config.h"

#include "history.h"

#include "json.h"
#include "log.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define HISTORY_MAX_BYTES (256u << 20)
#define JSON_MAX_DEPTH 64

/* Re-emits a parsed value unchanged (bounded depth: deeper is ST_ERR_MALFORMED). */
static int gen_value(yajl_gen g, yajl_val v, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return ST_ERR_MALFORMED;
    switch (v->type) {
    case yajl_t_string:
        st_jg_str(g, v->u.string);
        break;
    case yajl_t_number:
        yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
        break;
    case yajl_t_object:
        yajl_gen_map_open(g);
        for (size_t i = 0; i < v->u.object.len; i++) {
            st_jg_key(g, v->u.object.keys[i]);
            int rc = gen_value(g, v->u.object.values[i], depth + 1);
            if (rc < 0)
                return rc;
        }
        yajl_gen_map_close(g);
        break;
    case yajl_t_array:
        yajl_gen_array_open(g);
        for (size_t i = 0; i < v->u.array.len; i++) {
            int rc = gen_value(g, v->u.array.values[i], depth + 1);
            if (rc < 0)
                return rc;
        }
        yajl_gen_array_close(g);
        break;
    case yajl_t_true:
        yajl_gen_bool(g, 1);
        break;
    case yajl_t_false:
        yajl_gen_bool(g, 0);
        break;
    default:
        yajl_gen_null(g);
        break;
    }
    return ST_OK;
}

static void gen_entry(yajl_gen g, const st_run *run)
{
    char ts[32];
    st_utc_iso8601(run->finished_at, ts, sizeof(ts));
    yajl_gen_map_open(g);
    st_jg_kpercent(g, "coverage", run->coverage);
    st_jg_kint(g, "failed", st_counts_failed(&run->totals));
    st_jg_kint(g, "passed", st_counts_passed(&run->totals));
    st_jg_kint(g, "flaky", run->totals.flaky); /* failed, then passed when run again */
    st_jg_kdouble(g, "runtime", run->mean_batch_runtime_s);
    st_jg_kstr(g, "ts", ts);
    st_jg_kbool(g, "aborted", run->aborted); /* stopped by a signal: the counts are partial */
    yajl_gen_map_close(g);
}

static int append_json(const char *path, const st_run *run)
{
    char *text = NULL;
    size_t len = 0;
    yajl_val old = NULL;
    int rc = st_read_file(path, HISTORY_MAX_BYTES, &text, &len);
    if (rc < 0 && rc != -ENOENT) {
        st_error("history %s: cannot read: %s; not written this cycle", path, strerror(-rc));
        return st_status_of_errno(rc);
    }
    /* blank: no history yet (a NUL byte is not blank: st_json_parse_n refuses it, so the
     * rewrite never drops what follows it) */
    if (rc == 0 && strspn(text, " \t\r\n") != len) {
        char err[256];
        old = st_json_parse_n(text, len, err, sizeof(err));
        if (!old || !YAJL_IS_ARRAY(old)) {
            st_error("history %s: %s; the file is left as it is and not written until fixed",
                     path, old ? "not a JSON array" : err);
            yajl_tree_free(old);
            free(text);
            return ST_ERR_MALFORMED;
        }
    }
    free(text);
    yajl_gen g = st_jg_new(1);
    if (!g) {
        yajl_tree_free(old);
        return ST_ERR_NOMEM;
    }
    yajl_gen_array_open(g);
    for (size_t i = 0; old && i < old->u.array.len; i++) {
        rc = gen_value(g, old->u.array.values[i], 0);
        if (rc < 0) {
            st_error("history %s: nested too deeply; left as it is", path);
            yajl_gen_free(g);
            yajl_tree_free(old);
            return rc;
        }
    }
    yajl_tree_free(old);
    gen_entry(g, run);
    yajl_gen_array_close(g);
    char *out = st_jg_finish(g, 1);
    if (!out)
        return ST_ERR_NOMEM;
    rc = st_write_file_atomic(path, out, strlen(out), 0644);
    free(out);
    if (rc == -ENOENT) {
        st_error("history %s: cannot write: its directory is gone (removed during the run?)",
                 path);
        return ST_ERR_UNAVAILABLE;
    }
    if (rc < 0) {
        st_error("history %s: cannot write: %s; the previous file is intact", path, strerror(-rc));
        return st_status_of_errno(rc);
    }
    return ST_OK;
}

/* 1 when table test_history has the column, 0 when not, a negative st_status on error. */
static int has_column(sqlite3 *db, const char *column)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA table_info(test_history)", -1, &st, NULL) != SQLITE_OK)
        return st_sqlite_status(sqlite3_errcode(db));
    int found = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 1);
        found |= name && strcmp(name, column) == 0;
    }
    int status = rc == SQLITE_DONE ? found : st_sqlite_status(sqlite3_errcode(db));
    sqlite3_finalize(st);
    return status;
}

static int append_db(const char *path, const st_run *run)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = ST_ERR_IO; /* set from SQLite's error below */
    char ts[32];
    st_utc_iso8601(run->finished_at, ts, sizeof(ts));
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(db, 10000);
    if (sqlite3_exec(db,
                     "CREATE TABLE IF NOT EXISTS test_history(passed INTEGER, failed INTEGER,"
                     " coverage REAL, runtime REAL, ts TEXT,"
                     " aborted INTEGER NOT NULL DEFAULT 0, flaky INTEGER NOT NULL DEFAULT 0)",
                     NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    /* a table written by the original service (or an older selftest-core) lacks the columns */
    int has = has_column(db, "aborted");
    if (has < 0 || (has == 0 && sqlite3_exec(db,
                                             "ALTER TABLE test_history ADD COLUMN aborted INTEGER"
                                             " NOT NULL DEFAULT 0",
                                             NULL, NULL, NULL) != SQLITE_OK))
        goto out;
    has = has_column(db, "flaky");
    if (has < 0 || (has == 0 && sqlite3_exec(db,
                                             "ALTER TABLE test_history ADD COLUMN flaky INTEGER"
                                             " NOT NULL DEFAULT 0",
                                             NULL, NULL, NULL) != SQLITE_OK))
        goto out;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO test_history(passed, failed, coverage, runtime, ts, aborted,"
                           " flaky) VALUES(?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int(st, 1, (int)st_counts_passed(&run->totals));
    sqlite3_bind_int(st, 2, (int)st_counts_failed(&run->totals));
    if (run->coverage >= 0)
        sqlite3_bind_double(st, 3, run->coverage);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_double(st, 4, run->mean_batch_runtime_s);
    sqlite3_bind_text(st, 5, ts, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, run->aborted);
    sqlite3_bind_int(st, 7, (int)run->totals.flaky);
    if (sqlite3_step(st) == SQLITE_DONE)
        rc = ST_OK;
out:
    if (rc < 0) {
        st_error("history %s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
        rc = st_sqlite_status(sqlite3_errcode(db)); /* NULL db: out of memory */
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

int st_history_append(const char *path, const st_run *run)
{
    /* like the report dir and the data dir, the file's directory is created when missing */
    char *dir = st_path_dirname(path);
    int mk = dir ? st_mkdir_p(dir, 0755) : -ENOMEM;
    if (mk < 0) {
        st_error("history %s: cannot create its directory %s: %s", path, dir ? dir : "",
                 strerror(-mk));
        free(dir);
        return st_status_of_errno(mk);
    }
    free(dir);
    size_t n = strlen(path);
    if (n > 3 && strcmp(path + n - 3, ".db") == 0)
        return append_db(path, run);
    return append_json(path, run);
}
