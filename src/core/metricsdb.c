/* SPDX-License-Identifier: MIT */
/* MetricsDB (see metricsdb.h). */
#include "config.h"

#include "metricsdb.h"

#include "json.h"
#include "log.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct st_metricsdb {
    sqlite3 *db;
    char *path;
    dev_t dev; /* the file opened, to notice it removed or replaced under a long run */
    ino_t ino;
    unsigned keep_runs; /* 0: every run */
};

/* The tables of schema version 1. */
#define T_EVAL_METRICS                                                                         \
    "eval_metrics(cycle TEXT, metric TEXT, value REAL, ts TEXT,"                               \
    " source_menace_id TEXT NOT NULL DEFAULT '')"
#define T_RUNS                                                                                 \
    "runs(id INTEGER PRIMARY KEY, run_id TEXT UNIQUE NOT NULL, started_at REAL,"               \
    " finished_at REAL, passed INTEGER, failed INTEGER, skipped INTEGER, xfailed INTEGER,"     \
    " errors INTEGER, coverage REAL, runtime REAL, total_runtime REAL, exit_status INTEGER,"   \
    " aborted INTEGER NOT NULL DEFAULT 0, runtime_used TEXT, results TEXT)"
/* the runs table of version 1; later migrations add columns to it (added[] below) */
#define T_TEST_OUTCOMES                                                                        \
    "test_outcomes(run INTEGER NOT NULL REFERENCES runs(id), nodeid TEXT NOT NULL,"            \
    " file TEXT, batch TEXT, outcome TEXT NOT NULL, phase TEXT, duration REAL)"
#define I_TEST_OUTCOMES_RUN "test_outcomes_run ON test_outcomes(run)"
#define T_ORPHAN_OUTCOMES                                                                      \
    "orphan_outcomes(run INTEGER NOT NULL REFERENCES runs(id), path TEXT NOT NULL,"            \
    " classification TEXT, outcome TEXT NOT NULL)"

/* Columns added by a later migration: when one is missing from a table whose user_version
 * claims it, check_schema adds it (nothing to guess: it is nullable and old rows have no value). */
#define C_RUNS_GIT_COMMIT "git_commit TEXT"
/* version 3 (flaky tests): the run's flaky count; per test report, how many times it ran
 * (reruns included) and the last line of its failure */
#define C_RUNS_FLAKY "flaky INTEGER"
#define C_TESTS_ATTEMPTS "attempts INTEGER"
#define C_TESTS_MESSAGE "message TEXT"

static int add_column(st_metricsdb *m, const char *table, const char *decl);

/* 2 -> 3: flaky tests. runs.flaky (tests that failed and passed when run again),
 * test_outcomes.attempts (how many times the report's test ran) and test_outcomes.message (the
 * last line of its failure); NULL in older rows. */
static int migrate_flaky(st_metricsdb *m)
{
    int rc;
    if ((rc = add_column(m, "runs", C_RUNS_FLAKY)) < 0 ||
        (rc = add_column(m, "test_outcomes", C_TESTS_ATTEMPTS)) < 0)
        return rc;
    return add_column(m, "test_outcomes", C_TESTS_MESSAGE);
}

/* 1 -> 2: the git commit each run tested (change-aware runs diff against the newest passing
 * run's commit); NULL for older runs and outside git. A version-1 file without a runs table
 * (repaired by check_schema) gets it there. */
static int migrate_git_commit(st_metricsdb *m)
{
    return add_column(m, "runs", C_RUNS_GIT_COMMIT);
}

static int migrate_flaky(st_metricsdb *m);

/* Migration i takes the schema from version i to i + 1: SQL, or a function for a step that
 * must look at the file first. Only ever append. Version 0 is a new file or a menace database
 * that may already hold eval_metrics. */
static const struct {
    const char *sql;
    int (*fn)(st_metricsdb *m);
} migrations[] = {
    {"CREATE TABLE IF NOT EXISTS " T_EVAL_METRICS ";"
     "CREATE TABLE " T_RUNS ";"
     "CREATE TABLE " T_TEST_OUTCOMES ";"
     "CREATE INDEX " I_TEST_OUTCOMES_RUN ";"
     "CREATE TABLE " T_ORPHAN_OUTCOMES ";", NULL},
    {NULL, migrate_git_commit},
    {NULL, migrate_flaky},
};
#define N_MIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

/* The OS error behind an SQLite I/O failure (a full disk, a read-only or vanished directory),
 * as " (No space left on device)", or "" when there is none. */
static const char *os_cause(sqlite3 *db, char *buf, size_t n)
{
    int code = sqlite3_errcode(db) & 0xff, e = sqlite3_system_errno(db);
    buf[0] = '\0';
    if (code == SQLITE_FULL && e <= 0)
        e = ENOSPC;
    if (e > 0 && (code == SQLITE_IOERR || code == SQLITE_FULL || code == SQLITE_CANTOPEN ||
                  code == SQLITE_READONLY))
        snprintf(buf, n, " (%s)", strerror(e));
    return buf;
}

/* An I/O failure of the file system, not a damaged or foreign file. */
static int is_io_error(sqlite3 *db)
{
    int code = sqlite3_errcode(db) & 0xff;
    return code == SQLITE_IOERR || code == SQLITE_FULL || code == SQLITE_CANTOPEN ||
           code == SQLITE_READONLY;
}

/* The st_status of the last SQLite failure on db (NULL: out of memory). */
static int db_status(sqlite3 *db)
{
    int status = st_sqlite_status(sqlite3_errcode(db));
    assert(status < 0); /* a failure is never ST_OK */
    return status;
}

static int exec_sql(st_metricsdb *m, const char *sql)
{
    char *err = NULL, cause[160];
    if (sqlite3_exec(m->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        st_error("%s: %s%s", m->path, err ? err : sqlite3_errmsg(m->db),
                 os_cause(m->db, cause, sizeof(cause)));
        sqlite3_free(err);
        return db_status(m->db);
    }
    return ST_OK;
}

/* Rolls back the open transaction, if any: SQLite has already rolled it back after some errors
 * (a full disk), and a ROLLBACK then would only add a misleading second error. */
static void rollback(st_metricsdb *m)
{
    if (!sqlite3_get_autocommit(m->db))
        exec_sql(m, "ROLLBACK");
}

static int user_version(st_metricsdb *m, int *out)
{
    sqlite3_stmt *st;
    *out = 0;
    if (sqlite3_prepare_v2(m->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        return db_status(m->db);
    }
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
        char cause[160];
        if (is_io_error(m->db))
            st_error("%s: cannot read it: %s%s; the file is left as it is", m->path,
                     sqlite3_errmsg(m->db), os_cause(m->db, cause, sizeof(cause)));
        else
            st_error("%s: not a readable SQLite database: %s", m->path, sqlite3_errmsg(m->db));
        return db_status(m->db);
    }
    return ST_OK;
}

static int migrate(st_metricsdb *m)
{
    int v, rc = user_version(m, &v);
    if (rc < 0)
        return rc;
    if (v > ST_METRICSDB_SCHEMA) {
        st_error("%s: schema version %d is newer than this selftest-core's (%d); refusing to "
                 "touch it (upgrade selftest-core or point SANDBOX_DATA_DIR elsewhere)",
                 m->path, v, ST_METRICSDB_SCHEMA);
        return ST_ERR_MALFORMED;
    }
    for (; v < (int)N_MIGRATIONS; v++) {
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d;", v + 1);
        /* inside the transaction of st_metricsdb_open, with check_schema: a file refused
         * there is left as it was */
        if ((rc = migrations[v].sql ? exec_sql(m, migrations[v].sql) : migrations[v].fn(m)) < 0 ||
            (rc = exec_sql(m, pragma)) < 0)
            return rc;
        st_info("%s: schema migrated to version %d", m->path, v + 1);
    }
    return ST_OK;
}

/* What the code reads and writes, whatever user_version says: each table with its columns and
 * the statement that creates it when it is missing. */
static const struct {
    const char *table;
    const char *create;
    const char *columns[24];
} needed[] = {
    {"eval_metrics", "CREATE TABLE " T_EVAL_METRICS,
     {"cycle", "metric", "value", "ts", "source_menace_id", NULL}},
    {"runs", "CREATE TABLE " T_RUNS,
     {"id", "run_id", "started_at", "finished_at", "passed", "failed", "skipped", "xfailed",
      "errors", "coverage", "runtime", "total_runtime", "exit_status", "aborted",
      "runtime_used", "results", "git_commit", "flaky", NULL}},
    {"test_outcomes", "CREATE TABLE " T_TEST_OUTCOMES ";CREATE INDEX " I_TEST_OUTCOMES_RUN,
     {"run", "nodeid", "file", "batch", "outcome", "phase", "duration", "attempts", "message",
      NULL}},
    {"orphan_outcomes", "CREATE TABLE " T_ORPHAN_OUTCOMES,
     {"run", "path", "classification", "outcome", NULL}},
};

/* Columns a later migration added: missing ones are added again (nullable, no value to guess);
 * every other missing column is refused. */
static const struct {
    const char *table, *column, *decl;
} addable[] = {
    {"runs", "git_commit", C_RUNS_GIT_COMMIT},
    {"runs", "flaky", C_RUNS_FLAKY},
    {"test_outcomes", "attempts", C_TESTS_ATTEMPTS},
    {"test_outcomes", "message", C_TESTS_MESSAGE},
};

static const char *addable_column(const char *table, const char *column)
{
    for (size_t i = 0; i < sizeof(addable) / sizeof(addable[0]); i++)
        if (strcmp(addable[i].table, table) == 0 && strcmp(addable[i].column, column) == 0)
            return addable[i].decl;
    return NULL;
}

/* The type of the schema object called name ("table", "view", ...), copied into type; "" when
 * there is none. Returns ST_OK or a negative st_status (logged). */
static int object_type(st_metricsdb *m, const char *name, char *type, size_t size)
{
    sqlite3_stmt *st;
    type[0] = '\0';
    if (sqlite3_prepare_v2(m->db, "SELECT type FROM sqlite_master WHERE name = ?1 COLLATE NOCASE",
                           -1, &st, NULL) != SQLITE_OK) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        return db_status(m->db);
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        snprintf(type, size, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        return db_status(m->db);
    }
    return ST_OK;
}

/* Does table have the column? 1 or 0, or a negative st_status (logged). */
static int has_column(st_metricsdb *m, const char *table, const char *column)
{
    char sql[96];
    sqlite3_stmt *st;
    snprintf(sql, sizeof(sql), "PRAGMA table_info(\"%s\")", table); /* a fixed name */
    if (sqlite3_prepare_v2(m->db, sql, -1, &st, NULL) != SQLITE_OK) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        return db_status(m->db);
    }
    int found = 0, rc = SQLITE_DONE;
    while (!found && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 1);
        found = name && strcasecmp(name, column) == 0;
    }
    /* a failed step is an error, not a missing column */
    int status = found || rc == SQLITE_DONE ? found : db_status(m->db);
    if (status < 0)
        st_error("%s: reading the columns of %s: %s", m->path, table, sqlite3_errmsg(m->db));
    sqlite3_finalize(st);
    return status;
}

/* Adds the column decl ("name TYPE") to table when the table exists without it. ST_OK or a
 * negative st_status (logged). */
static int add_column(st_metricsdb *m, const char *table, const char *decl)
{
    char type[32], name[64], sql[160];
    snprintf(name, sizeof(name), "%.*s", (int)strcspn(decl, " "), decl);
    int rc = object_type(m, table, type, sizeof(type));
    if (rc < 0)
        return rc;
    if (strcmp(type, "table") != 0)
        return ST_OK; /* missing: check_schema creates it; not a table: it refuses the file */
    int has = has_column(m, table, name);
    if (has < 0)
        return has;
    snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s", table, decl);
    return has ? ST_OK : exec_sql(m, sql);
}

/* user_version is only a claim: checks that every table the code needs is there with its
 * columns. Missing tables are created, and missing columns of later migrations (addable[])
 * added (one transaction); a table without another needed column, or a
 * view where a table belongs, cannot be repaired without guessing and is refused, nothing
 * changed. Returns ST_OK, or ST_ERR_MALFORMED (logged, naming the file, the table and the
 * column) or the status of the SQLite failure. */
static int check_schema(st_metricsdb *m)
{
    char created[128] = "", added[128] = "";
    int rc = ST_ERR_MALFORMED; /* the refusals below */
    for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
        char type[32];
        if ((rc = object_type(m, needed[i].table, type, sizeof(type))) < 0)
            goto fail;
        int just_created = !type[0];
        if (just_created) {
            if ((rc = exec_sql(m, needed[i].create)) < 0)
                goto fail;
            size_t used = strlen(created);
            snprintf(created + used, sizeof(created) - used, "%s%s", used ? ", " : "",
                     needed[i].table);
            snprintf(type, sizeof(type), "table");
            /* on to the columns: later migrations' ones are added to the new table */
        }
        if (strcmp(type, "table") != 0) {
            st_error("%s: '%s' is a %s, not the table this selftest-core needs (schema version "
                     "%d); refusing to use this metrics DB: move it aside (a new one is then "
                     "created) or repair it", m->path, needed[i].table, type,
                     ST_METRICSDB_SCHEMA);
            rc = ST_ERR_MALFORMED;
            goto fail;
        }
        for (size_t c = 0; needed[i].columns[c]; c++) {
            int has = has_column(m, needed[i].table, needed[i].columns[c]);
            if (has < 0) {
                rc = has;
                goto fail;
            }
            const char *decl = has ? NULL : addable_column(needed[i].table, needed[i].columns[c]);
            if (!has && decl) {
                char sql[160];
                snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s", needed[i].table, decl);
                if ((rc = exec_sql(m, sql)) < 0)
                    goto fail;
                size_t used = strlen(added);
                if (!just_created)
                    snprintf(added + used, sizeof(added) - used, "%s%s.%s", used ? ", " : "",
                             needed[i].table, needed[i].columns[c]);
                continue;
            }
            if (!has) {
                st_error("%s: table %s has no column %s (schema version %d needs it); refusing "
                         "to use this metrics DB: move it aside (a new one is then created) or "
                         "repair it", m->path, needed[i].table, needed[i].columns[c],
                         ST_METRICSDB_SCHEMA);
                rc = ST_ERR_MALFORMED;
                goto fail;
            }
        }
    }
    if (created[0])
        st_warn("%s: the schema version says %d but table(s) %s were missing; created them",
                m->path, ST_METRICSDB_SCHEMA, created);
    if (added[0])
        st_warn("%s: the schema version says %d but column(s) %s were missing; added them",
                m->path, ST_METRICSDB_SCHEMA, added);
    return ST_OK;
fail:
    return rc;
}

int st_metricsdb_open(const char *path, st_metricsdb **out)
{
    st_metricsdb *m = calloc(1, sizeof(*m));
    if (!m)
        return ST_ERR_NOMEM;
    m->path = st_strdup(path);
    char *dir = st_path_dirname(path);
    if (dir)
        st_mkdir_p(dir, 0755);
    free(dir);
    if (sqlite3_open_v2(path, &m->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        char cause[160] = "";
        st_error("%s: cannot open the metrics DB: %s%s", path,
                 m->db ? sqlite3_errmsg(m->db) : "out of memory",
                 m->db ? os_cause(m->db, cause, sizeof(cause)) : "");
        int status = db_status(m->db);
        st_metricsdb_close(m);
        return status;
    }
    sqlite3_busy_timeout(m->db, 10000);
    /* migrate() first: it refuses a newer schema before anything (even the journal mode) is
     * changed in the file. */
    /* the migrations and the schema check are one transaction: a file either is made whole
     * or is left exactly as it was */
    int v0, rc = user_version(m, &v0); /* an unreadable file is named as such */
    if (rc == ST_OK && v0 > ST_METRICSDB_SCHEMA)
        rc = migrate(m); /* refuses it, changing nothing */
    if (rc == ST_OK)
        rc = exec_sql(m, "BEGIN IMMEDIATE");
    if (rc == ST_OK && ((rc = migrate(m)) < 0 || (rc = check_schema(m)) < 0 ||
                        (rc = exec_sql(m, "COMMIT")) < 0)) {
        if (!sqlite3_get_autocommit(m->db))
            sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
    }
    if (rc == ST_OK)
        rc = exec_sql(m,
                      "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-256;");
    if (rc != ST_OK) {
        st_metricsdb_close(m);
        return rc;
    }
    struct stat sb;
    if (stat(path, &sb) == 0) {
        m->dev = sb.st_dev;
        m->ino = sb.st_ino;
    }
    *out = m;
    return ST_OK;
}

/* A run is stored in the file at m->path, not in one that was removed (the data dir deleted
 * under a run or a daemon) or replaced since it was opened: SQLite would go on writing into the
 * unlinked file, and the run would be lost without a word.  Reopens (recreating the data dir and
 * the schema) when the file is not the one opened. */
static int ensure_same_file(st_metricsdb *m)
{
    struct stat sb;
    int gone = stat(m->path, &sb) < 0;
    if (!gone && sb.st_dev == m->dev && sb.st_ino == m->ino)
        return ST_OK;
    st_warn("%s: %s since it was opened; the run is stored in a new %s", m->path,
            gone ? "removed" : "replaced", gone ? "file" : "file (the one there now)");
    st_metricsdb *n = NULL;
    int rc = st_metricsdb_open(m->path, &n);
    if (rc != ST_OK)
        return rc;
    sqlite3_close(m->db);
    m->db = n->db;
    m->dev = n->dev;
    m->ino = n->ino;
    free(n->path);
    free(n);
    return ST_OK;
}

void st_metricsdb_close(st_metricsdb *m)
{
    if (!m)
        return;
    sqlite3_close(m->db);
    free(m->path);
    free(m);
}

/* ---- classify ------------------------------------------------------------------------------ */

typedef struct prev_test {
    char *nodeid;
    const char *verdict; /* a static string */
    sqlite3_int64 run;
} prev_test;

static int prev_cmp(const void *a, const void *b)
{
    return strcmp(((const prev_test *)a)->nodeid, ((const prev_test *)b)->nodeid);
}

/* by node id, then the newest run first */
static int prev_sort(const void *a, const void *b)
{
    const prev_test *x = a, *y = b;
    int c = strcmp(x->nodeid, y->nodeid);
    return c ? c : x->run > y->run ? -1 : x->run < y->run;
}

int st_metricsdb_classify(st_metricsdb *m, st_run *run)
{
    /* The previous run's outcomes; the verdict per node (the worst over its phases) is folded
     * here after sorting, which costs far less than SQLite's GROUP BY on large suites. */
    /* A run of `--changed` ran a subset: tests it did not run are compared with their newest
     * outcome since the newest run that was not such a subset (one run, the previous, when
     * that is a whole run). */
    static const char sql[] =
        "SELECT nodeid, outcome, run FROM test_outcomes WHERE run IN (SELECT id FROM runs"
        " WHERE aborted = 0 AND run_id != ?1 AND id >= COALESCE((SELECT id FROM runs"
        " WHERE aborted = 0 AND run_id != ?1 AND NOT " ST_RESULTS_SUBSET_SQL
        " ORDER BY id DESC LIMIT 1), 0))";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->db, sql, -1, &st, NULL) != SQLITE_OK) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        return db_status(m->db);
    }
    sqlite3_bind_text(st, 1, run->run_id, -1, SQLITE_STATIC);
    prev_test *prev = NULL;
    size_t n_prev = 0, cap = 0;
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (ST_GROW(prev, cap, n_prev + 1) < 0) {
            rc = ST_ERR_NOMEM;
            break;
        }
        const char *outcome = (const char *)sqlite3_column_text(st, 1);
        /* a flaky test passed in the end: it counts as passed there */
        const char *verdict = !outcome ? "skipped"
                              : strcmp(outcome, "failed") == 0 || strcmp(outcome, "error") == 0
                                  ? "failed"
                              : strcmp(outcome, "passed") == 0 || strcmp(outcome, "xpassed") == 0 ||
                                      strcmp(outcome, "flaky") == 0
                                  ? "passed"
                                  : "skipped";
        prev[n_prev].nodeid = st_strdup((const char *)sqlite3_column_text(st, 0));
        prev[n_prev].verdict = verdict;
        prev[n_prev].run = sqlite3_column_int64(st, 2);
        if (!prev[n_prev].nodeid) {
            rc = ST_ERR_NOMEM;
            break;
        }
        n_prev++;
    }
    if (step != SQLITE_DONE && rc == 0) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        rc = db_status(m->db);
    }
    sqlite3_finalize(st);
    if (n_prev)
        qsort(prev, n_prev, sizeof(*prev), prev_sort);
    size_t folded = 0;
    for (size_t i = 0; i < n_prev; i++) {
        if (folded && strcmp(prev[folded - 1].nodeid, prev[i].nodeid) == 0) {
            /* only the node's newest run counts; within it, the worst phase */
            if (prev[i].run == prev[folded - 1].run &&
                (strcmp(prev[i].verdict, "failed") == 0 ||
                (strcmp(prev[i].verdict, "passed") == 0 &&
                 strcmp(prev[folded - 1].verdict, "skipped") == 0)))
                prev[folded - 1].verdict = prev[i].verdict;
            free(prev[i].nodeid);
        } else {
            prev[folded++] = prev[i];
        }
    }
    n_prev = folded;
    /* Also know whether a previous run exists at all (it may have had no tests). */
    sqlite3_stmt *cnt;
    if (rc == 0 &&
        sqlite3_prepare_v2(m->db, "SELECT COUNT(*) FROM runs WHERE aborted = 0 AND run_id != ?",
                           -1, &cnt, NULL) == SQLITE_OK) {
        sqlite3_bind_text(cnt, 1, run->run_id, -1, SQLITE_STATIC);
        if (sqlite3_step(cnt) == SQLITE_ROW)
            run->compared = sqlite3_column_int(cnt, 0) > 0;
        sqlite3_finalize(cnt);
    }
    size_t n_now = 0;
    st_node_verdict *now = rc == 0 ? st_run_node_verdicts(run, &n_now) : NULL;
    if (rc == 0 && !now)
        rc = ST_ERR_NOMEM;
    for (size_t i = 0; rc == 0 && run->compared && i < n_now; i++) {
        prev_test key = {(char *)now[i].nodeid, NULL, 0};
        prev_test *p = n_prev ? bsearch(&key, prev, n_prev, sizeof(*prev), prev_cmp) : NULL;
        int fails_now = strcmp(now[i].verdict, "failed") == 0;
        if (!p)
            st_strv_push(&run->new_tests, now[i].nodeid);
        else if (fails_now && strcmp(p->verdict, "passed") == 0 &&
                 !st_strv_contains(&run->quarantined, now[i].nodeid))
            /* failed every attempt (a rerun that passed made it flaky); a quarantined test
             * is never a regression */
            st_strv_push(&run->regressions, now[i].nodeid);
        else if (fails_now && strcmp(p->verdict, "failed") == 0)
            st_strv_push(&run->still_failing, now[i].nodeid);
        else if (!fails_now && strcmp(now[i].verdict, "passed") == 0 &&
                 strcmp(p->verdict, "failed") == 0)
            st_strv_push(&run->fixed, now[i].nodeid);
    }
    free(now);
    for (size_t i = 0; i < n_prev; i++)
        free(prev[i].nodeid);
    free(prev);
    return rc;
}

/* ---- history ------------------------------------------------------------------------------- */

int st_metricsdb_batch_history(st_metricsdb *m, const char *const *paths, size_t n,
                               double *duration_s, long *tests)
{
    for (size_t i = 0; i < n; i++) {
        duration_s[i] = -1;
        tests[i] = 0;
    }
    /* The rows of one run are read in insertion order and summed here: cheaper than SQLite's
     * GROUP BY (a temporary b-tree) on large suites. A test's rows (one per reported phase)
     * are consecutive, so counting changes of nodeid counts tests. */
    sqlite3_stmt *runs = NULL, *per = NULL;
    double *sum = calloc(n + 1, sizeof(*sum));
    long *cnt = calloc(n + 1, sizeof(*cnt));
    char **last_own = calloc(n + 1, sizeof(*last_own));
    int rc = ST_ERR_NOMEM;
    if (!sum || !cnt || !last_own)
        goto out;
    /* not a run of `run --changed` that ran a subset: its batches' durations are partial */
    if (sqlite3_prepare_v2(m->db,
                           "SELECT id FROM runs WHERE aborted = 0 AND NOT "
                           ST_RESULTS_SUBSET_SQL " ORDER BY id DESC LIMIT ?",
                           -1, &runs, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(m->db,
                           "SELECT batch, duration, nodeid FROM test_outcomes WHERE run = ?"
                           " ORDER BY rowid",
                           -1, &per, NULL) != SQLITE_OK) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        rc = db_status(m->db);
        goto out;
    }
    sqlite3_bind_int(runs, 1, ST_HISTORY_RUNS);
    size_t left = n;
    while (left && sqlite3_step(runs) == SQLITE_ROW) {
        sqlite3_bind_int64(per, 1, sqlite3_column_int64(runs, 0));
        for (size_t i = 0; i < n; i++) {
            sum[i] = 0;
            cnt[i] = 0;
            free(last_own[i]);
            last_own[i] = NULL;
        }
        size_t hint = 0;
        int s2;
        while ((s2 = sqlite3_step(per)) == SQLITE_ROW) {
            const char *batch = (const char *)sqlite3_column_text(per, 0);
            if (!batch)
                continue;
            /* rows come batch by batch: try the last batch matched first */
            size_t i = hint;
            if (i >= n || strcmp(paths[i], batch) != 0)
                for (i = 0; i < n && strcmp(paths[i], batch) != 0; i++)
                    ;
            if (i == n || duration_s[i] >= 0)
                continue; /* not asked, or known from a newer run */
            hint = i;
            double d = sqlite3_column_double(per, 1);
            sum[i] += d > 0 ? d : 0;
            const char *node = (const char *)sqlite3_column_text(per, 2);
            if (node && (!last_own[i] || strcmp(last_own[i], node) != 0)) {
                cnt[i]++;
                free(last_own[i]);
                last_own[i] = st_strdup(node);
                if (!last_own[i])
                    goto out;
            }
        }
        sqlite3_reset(per);
        if (s2 != SQLITE_DONE) {
            st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
            rc = db_status(m->db);
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if (duration_s[i] < 0 && cnt[i] > 0) {
                duration_s[i] = sum[i];
                tests[i] = cnt[i];
                left--;
            }
    }
    rc = ST_OK;
out:
    sqlite3_finalize(runs);
    sqlite3_finalize(per);
    for (size_t i = 0; last_own && i < n; i++)
        free(last_own[i]);
    free(last_own);
    free(cnt);
    free(sum);
    if (rc == ST_ERR_NOMEM)
        st_error("%s: out of memory", m->path);
    return rc;
}

int st_metricsdb_test_durations(st_metricsdb *m, const char *path, st_strv *nodeids,
                                st_strv *files, double **duration_s)
{
    sqlite3_stmt *runs = NULL, *per = NULL;
    int rc = ST_ERR_NOMEM;
    *duration_s = NULL;
    size_t cap = 0;
    if (sqlite3_prepare_v2(m->db,
                           "SELECT id FROM runs WHERE aborted = 0 AND NOT COALESCE(CASE WHEN"
                           " json_valid(results) THEN json_extract(results, '$.changed_subset')"
                           " END, 0) ORDER BY id DESC LIMIT ?",
                           -1, &runs, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(m->db,
                           "SELECT nodeid, file, SUM(MAX(duration, 0)) FROM test_outcomes"
                           " WHERE run = ? AND batch = ? AND file IS NOT NULL GROUP BY nodeid"
                           " ORDER BY MIN(rowid)",
                           -1, &per, NULL) != SQLITE_OK) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        rc = db_status(m->db);
        goto out;
    }
    sqlite3_bind_int(runs, 1, ST_HISTORY_RUNS);
    while (nodeids->n == 0 && sqlite3_step(runs) == SQLITE_ROW) {
        sqlite3_bind_int64(per, 1, sqlite3_column_int64(runs, 0));
        sqlite3_bind_text(per, 2, path, -1, SQLITE_STATIC);
        int s2;
        while ((s2 = sqlite3_step(per)) == SQLITE_ROW) {
            const char *node = (const char *)sqlite3_column_text(per, 0);
            const char *file = (const char *)sqlite3_column_text(per, 1);
            if (!node || !file)
                continue;
            if (nodeids->n + 1 > cap) {
                size_t nc = cap ? 2 * cap : 256;
                double *d = realloc(*duration_s, nc * sizeof(*d));
                if (!d)
                    goto oom;
                *duration_s = d;
                cap = nc;
            }
            (*duration_s)[nodeids->n] = sqlite3_column_double(per, 2);
            st_strv_push(nodeids, node);
            st_strv_push(files, file);
            if (nodeids->oom || files->oom)
                goto oom;
        }
        sqlite3_reset(per);
        if (s2 != SQLITE_DONE) {
            st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
            rc = db_status(m->db);
            goto out;
        }
    }
    rc = ST_OK;
    goto out;
oom:
    st_error("%s: out of memory", m->path);
out:
    sqlite3_finalize(runs);
    sqlite3_finalize(per);
    if (rc < 0) {
        st_strv_free(nodeids);
        st_strv_free(files);
        free(*duration_s);
        *duration_s = NULL;
    }
    return rc;
}

/* ---- store --------------------------------------------------------------------------------- */

/* The line of a failure's excerpt that names the exception: the first line of pytest's last
 * block of "E   " lines (the lines after it explain the assertion), else the last non-blank
 * line; at most 300 bytes. NULL when there is none (or on OOM). */
static char *failure_message(const char *excerpt)
{
    if (!excerpt)
        return NULL;
    const char *best = NULL, *best_end = NULL, *last = NULL, *last_end = NULL;
    int in_block = 0;
    for (const char *p = excerpt; *p;) {
        const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);
        int e_line = end - p >= 2 && p[0] == 'E' && p[1] == ' ';
        if (e_line && !in_block) {
            best = p;
            best_end = end;
        }
        in_block = e_line;
        if (strspn(p, " \t\r") < (size_t)(end - p)) {
            last = p;
            last_end = end;
        }
        p = nl ? nl + 1 : end;
    }
    if (best) {
        best += 1;
        best += strspn(best, " ");
    } else {
        best = last;
        best_end = last_end;
    }
    while (best && best_end > best && (best_end[-1] == '\r' || best_end[-1] == ' '))
        best_end--;
    size_t len = best ? (size_t)(best_end - best) : 0;
    return len ? st_strndup(best, len > 300 ? 300 : len) : NULL;
}

/* test_outcomes' attempts and message (version 3) of one report, bound from index i. */
static int bind_flaky_columns(sqlite3_stmt *st, int i, const st_test_result *tr)
{
    if (tr->attempts)
        sqlite3_bind_int(st, i, (int)tr->attempts);
    else
        sqlite3_bind_null(st, i);
    char *msg = failure_message(tr->excerpt); /* NULL: none, or out of memory (not stored) */
    sqlite3_bind_text(st, i + 1, msg, -1, SQLITE_TRANSIENT);
    free(msg);
    return 0;
}

static int bind_step(st_metricsdb *m, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    int status = rc == SQLITE_DONE ? ST_OK : db_status(m->db);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
    return status;
}

void st_metricsdb_keep_runs(st_metricsdb *m, unsigned n)
{
    m->keep_runs = n;
}

static int last_passing_id(st_metricsdb *m, sqlite3_int64 *id, int with_commit);

/* One id (0 when the query returns no row) from sql, whose ?1 is bound to arg when arg >= 0. */
static int select_id(st_metricsdb *m, const char *sql, sqlite3_int64 arg, sqlite3_int64 *id)
{
    sqlite3_stmt *st;
    *id = 0;
    if (sqlite3_prepare_v2(m->db, sql, -1, &st, NULL) != SQLITE_OK) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        return db_status(m->db);
    }
    if (arg >= 0)
        sqlite3_bind_int64(st, 1, arg);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        return db_status(m->db);
    }
    return ST_OK;
}

/* Retention, inside the store's transaction: the runs older than the newest keep_runs that
 * were not aborted are deleted with their test and orphan rows, except the newest passing run
 * (with and without a commit: `run --changed` starts from it) and the newest whole run (not a
 * `--changed` subset: the classify stage and the worker history read it). eval_metrics rows
 * stay: six small rows a cycle, menace's trend. */
static int prune(st_metricsdb *m)
{
    if (!m->keep_runs)
        return ST_OK;
    sqlite3_int64 oldest, keep[3];
    int rc = select_id(m,
                       "SELECT id FROM runs WHERE aborted = 0 ORDER BY id DESC LIMIT 1 OFFSET ?1",
                       (sqlite3_int64)m->keep_runs - 1, &oldest);
    if (rc < 0 || !oldest)
        return rc; /* fewer runs than that */
    if ((rc = last_passing_id(m, &keep[0], 0)) < 0 || (rc = last_passing_id(m, &keep[1], 1)) < 0 ||
        (rc = select_id(m,
                        "SELECT id FROM runs WHERE aborted = 0 AND NOT " ST_RESULTS_SUBSET_SQL
                        " ORDER BY id DESC LIMIT 1",
                        -1, &keep[2])) < 0)
        return rc;
    /* children first; test_outcomes and runs by a range of their index (runs: its key) */
    static const char *const sql[] = {
        "DELETE FROM test_outcomes WHERE run < ?1 AND run NOT IN (?2, ?3, ?4)",
        "DELETE FROM orphan_outcomes WHERE run < ?1 AND run NOT IN (?2, ?3, ?4)",
        "DELETE FROM runs WHERE id < ?1 AND id NOT IN (?2, ?3, ?4)",
    };
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(m->db, sql[i], -1, &st, NULL) != SQLITE_OK) {
            st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
            return db_status(m->db);
        }
        sqlite3_bind_int64(st, 1, oldest);
        for (int k = 0; k < 3; k++)
            sqlite3_bind_int64(st, 2 + k, keep[k]);
        int step = sqlite3_step(st);
        sqlite3_finalize(st);
        if (step != SQLITE_DONE) {
            st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
            return db_status(m->db);
        }
        if (i == 2 && sqlite3_changes(m->db))
            st_debug("%s: %d run(s) older than the newest %u deleted (keep_runs)", m->path,
                     sqlite3_changes(m->db), m->keep_runs);
    }
    return ST_OK;
}

int st_metricsdb_store(st_metricsdb *m, const st_run *run, const char *results_json)
{
    sqlite3_stmt *ins_run = NULL, *ins_test = NULL, *ins_eval = NULL, *ins_orphan = NULL;
    int rc = ensure_same_file(m);
    if (rc < 0 || (rc = exec_sql(m, "BEGIN IMMEDIATE")) < 0)
        return rc;
    if (sqlite3_prepare_v2(m->db,
                           "INSERT INTO runs(run_id, started_at, finished_at, passed, failed,"
                           " skipped, xfailed, errors, coverage, runtime, total_runtime,"
                           " exit_status, aborted, runtime_used, results, git_commit, flaky)"
                           " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &ins_run, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(m->db,
                           "INSERT INTO test_outcomes(run, nodeid, file, batch, outcome, phase,"
                           " duration, attempts, message) VALUES(?,?,?,?,?,?,?,?,?)",
                           -1, &ins_test, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(m->db,
                           "INSERT INTO eval_metrics(cycle, metric, value, ts, source_menace_id)"
                           " VALUES('self_tests', ?, ?, ?, '')",
                           -1, &ins_eval, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(m->db,
                           "INSERT INTO orphan_outcomes(run, path, classification, outcome)"
                           " VALUES(?,?,?,?)",
                           -1, &ins_orphan, NULL) != SQLITE_OK) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        rc = db_status(m->db);
        goto out;
    }
    int i = 1;
    sqlite3_bind_text(ins_run, i++, run->run_id, -1, SQLITE_STATIC);
    sqlite3_bind_double(ins_run, i++, run->started_at);
    sqlite3_bind_double(ins_run, i++, run->finished_at);
    sqlite3_bind_int(ins_run, i++, (int)st_counts_passed(&run->totals));
    sqlite3_bind_int(ins_run, i++, (int)st_counts_failed(&run->totals));
    sqlite3_bind_int(ins_run, i++, (int)run->totals.n[ST_OUT_SKIPPED]);
    sqlite3_bind_int(ins_run, i++, (int)run->totals.n[ST_OUT_XFAILED]);
    sqlite3_bind_int(ins_run, i++, (int)run->totals.n[ST_OUT_ERROR]);
    if (run->coverage >= 0)
        sqlite3_bind_double(ins_run, i++, run->coverage);
    else
        sqlite3_bind_null(ins_run, i++);
    sqlite3_bind_double(ins_run, i++, run->mean_batch_runtime_s);
    sqlite3_bind_double(ins_run, i++, run->total_runtime_s);
    sqlite3_bind_int(ins_run, i++, run->exit_status);
    sqlite3_bind_int(ins_run, i++, run->aborted);
    sqlite3_bind_text(ins_run, i++, run->runtime_used, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins_run, i++, results_json, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins_run, i++, run->git_commit, -1, SQLITE_STATIC); /* NULL: none */
    sqlite3_bind_int(ins_run, i++, (int)run->totals.flaky);
    if ((rc = bind_step(m, ins_run)) < 0)
        goto out;
    sqlite3_int64 id = sqlite3_last_insert_rowid(m->db);
    for (size_t b = 0; b < run->n_batches; b++) {
        const st_batch *bt = &run->batches[b];
        for (size_t t = 0; t < bt->n_tests; t++) {
            const st_test_result *tr = &bt->tests[t];
            sqlite3_bind_int64(ins_test, 1, id);
            sqlite3_bind_text(ins_test, 2, tr->nodeid, -1, SQLITE_STATIC);
            sqlite3_bind_text(ins_test, 3, tr->file, -1, SQLITE_STATIC);
            sqlite3_bind_text(ins_test, 4, bt->path, -1, SQLITE_STATIC);
            sqlite3_bind_text(ins_test, 5, tr->flaky ? "flaky" : st_outcome_name(tr->outcome), -1,
                              SQLITE_STATIC);
            sqlite3_bind_text(ins_test, 6, tr->phase, -1, SQLITE_STATIC);
            sqlite3_bind_double(ins_test, 7, tr->duration_s);
            if ((rc = bind_flaky_columns(ins_test, 8, tr)) < 0)
                goto out;
            if ((rc = bind_step(m, ins_test)) < 0)
                goto out;
        }
    }
    /* one row per orphan check: its verdict (passed, failed, unmet, aborted) */
    for (size_t c = 0; c < run->n_checks; c++) {
        const st_batch *ck = &run->checks[c];
        sqlite3_bind_int64(ins_orphan, 1, id);
        sqlite3_bind_text(ins_orphan, 2, ck->path, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins_orphan, 3, st_classification_name(ck->classification), -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(ins_orphan, 4, st_check_verdict(ck), -1, SQLITE_STATIC);
        if ((rc = bind_step(m, ins_orphan)) < 0)
            goto out;
    }
    /* menace's rows: (self_tests, coverage) and (self_tests, runtime), plus counts */
    char ts[32];
    st_utc_iso8601(run->finished_at, ts, sizeof(ts));
    const struct {
        const char *metric;
        double value;
    } evals[] = {
        {"coverage", run->coverage >= 0 ? run->coverage : NAN}, /* NULL: not measured */
        {"runtime", run->mean_batch_runtime_s},
        {"passed", st_counts_passed(&run->totals)},
        {"failed", st_counts_failed(&run->totals)},
        {"orphan_total", run->orphan_total},
        {"orphan_failed", run->orphan_failed},
    };
    /* an aborted cycle's counts are partial: menace's readers must not take them for a result */
    for (size_t e = 0; !run->aborted && e < sizeof(evals) / sizeof(evals[0]); e++) {
        sqlite3_bind_text(ins_eval, 1, evals[e].metric, -1, SQLITE_STATIC);
        if (isnan(evals[e].value))
            sqlite3_bind_null(ins_eval, 2);
        else
            sqlite3_bind_double(ins_eval, 2, evals[e].value);
        sqlite3_bind_text(ins_eval, 3, ts, -1, SQLITE_TRANSIENT);
        if ((rc = bind_step(m, ins_eval)) < 0)
            goto out;
    }
    if ((rc = prune(m)) < 0)
        goto out;
    rc = exec_sql(m, "COMMIT");
out:
    sqlite3_finalize(ins_run);
    sqlite3_finalize(ins_test);
    sqlite3_finalize(ins_eval);
    sqlite3_finalize(ins_orphan);
    if (rc < 0)
        rollback(m);
    return rc;
}

/* ---- change-aware runs --------------------------------------------------------------------- */

/* The id of the newest run that passed (not aborted, exit status 0), 0 when none. */
static int last_passing_id(st_metricsdb *m, sqlite3_int64 *id, int with_commit)
{
    return select_id(m,
                     with_commit ? "SELECT id FROM runs WHERE aborted = 0 AND exit_status = 0 AND "
                                   "git_commit IS NOT NULL ORDER BY id DESC LIMIT 1"
                                 : "SELECT id FROM runs WHERE aborted = 0 AND exit_status = 0 "
                                   "ORDER BY id DESC LIMIT 1",
                     -1, id);
}

int st_metricsdb_last_passing(st_metricsdb *m, char **commit, char **run_id)
{
    *commit = NULL;
    if (run_id)
        *run_id = NULL;
    sqlite3_int64 id;
    int rc = last_passing_id(m, &id, 1);
    if (rc < 0 || !id)
        return rc;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->db, "SELECT git_commit, run_id FROM runs WHERE id = ?", -1, &st,
                           NULL) != SQLITE_OK) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        return db_status(m->db);
    }
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *commit = st_strdup((const char *)sqlite3_column_text(st, 0));
        if (run_id)
            *run_id = st_strdup((const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    return ST_OK;
}

/* Does run id hold a failed or errored test of batch path? 1 or 0, or a negative st_status. */
static int batch_has_failure(st_metricsdb *m, sqlite3_int64 id, const char *path)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->db,
                           "SELECT 1 FROM test_outcomes WHERE run = ? AND batch = ? AND "
                           "outcome IN ('failed', 'error') LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return db_status(m->db);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int status = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : db_status(m->db);
    sqlite3_finalize(st);
    return status;
}

int st_metricsdb_failed_files(st_metricsdb *m, st_strv *files, st_strv *failed_batches)
{
    sqlite3_int64 since;
    int rc = last_passing_id(m, &since, 0), step;
    if (rc < 0)
        return rc;
    /* no passing run: the newest run alone */
    const char *runs_sql =
        since ? "SELECT id, results FROM runs WHERE aborted = 0 AND id > ? ORDER BY id"
              : "SELECT id, results FROM runs WHERE aborted = 0 AND id >= ? ORDER BY id DESC "
                "LIMIT 1";
    sqlite3_stmt *runs, *tests;
    if (sqlite3_prepare_v2(m->db, runs_sql, -1, &runs, NULL) != SQLITE_OK) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        return db_status(m->db);
    }
    if (sqlite3_prepare_v2(m->db,
                           "SELECT DISTINCT file FROM test_outcomes WHERE run = ? AND "
                           "outcome IN ('failed', 'error') AND file IS NOT NULL",
                           -1, &tests, NULL) != SQLITE_OK) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        rc = db_status(m->db);
        sqlite3_finalize(runs);
        return rc;
    }
    sqlite3_bind_int64(runs, 1, since);
    while (rc == 0 && (step = sqlite3_step(runs)) == SQLITE_ROW) {
        sqlite3_int64 id = sqlite3_column_int64(runs, 0);
        sqlite3_bind_int64(tests, 1, id);
        while (sqlite3_step(tests) == SQLITE_ROW) {
            const char *f = (const char *)sqlite3_column_text(tests, 0);
            if (f && !st_strv_contains(files, f))
                st_strv_push(files, f);
        }
        sqlite3_reset(tests);
        /* a batch that failed without a failing test to show for it (a crash, a timeout,
         * nothing collected): its whole path */
        const char *text = (const char *)sqlite3_column_text(runs, 1);
        char err[128];
        yajl_val v = text ? st_json_parse(text, err, sizeof(err)) : NULL;
        yajl_val sm = v ? st_jv_get(v, "suite_metrics") : NULL;
        /* {path: batch object} */
        for (size_t i = 0; sm && YAJL_IS_OBJECT(sm) && i < sm->u.object.len; i++) {
            yajl_val b = sm->u.object.values[i];
            yajl_val ok = st_jv_get(b, "ok"), ab = st_jv_get(b, "aborted");
            const char *path = sm->u.object.keys[i];
            if (!path || !ok || YAJL_IS_TRUE(ok) || (ab && YAJL_IS_TRUE(ab)))
                continue;
            int has = batch_has_failure(m, id, path);
            if (has < 0)
                rc = has;
            else if (!has && !st_strv_contains(failed_batches, path))
                st_strv_push(failed_batches, path);
        }
        if (v)
            yajl_tree_free(v);
    }
    if (rc == 0 && step != SQLITE_DONE) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        rc = db_status(m->db);
    }
    sqlite3_finalize(runs);
    sqlite3_finalize(tests);
    return rc < 0 ? rc : files->oom || failed_batches->oom ? ST_ERR_NOMEM : ST_OK;
}

int st_metricsdb_run_dirty(st_metricsdb *m, const char *run_id, st_strv *files)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->db, "SELECT results FROM runs WHERE run_id = ?", -1, &st, NULL) !=
        SQLITE_OK) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        return db_status(m->db);
    }
    sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
        char err[128];
        yajl_val v = st_json_parse((const char *)sqlite3_column_text(st, 0), err, sizeof(err));
        yajl_val d = v ? st_jv_get(v, "git_dirty") : NULL;
        for (size_t i = 0; d && YAJL_IS_ARRAY(d) && i < d->u.array.len; i++)
            if (YAJL_IS_STRING(d->u.array.values[i]) &&
                !st_strv_contains(files, YAJL_GET_STRING(d->u.array.values[i])))
                st_strv_push(files, YAJL_GET_STRING(d->u.array.values[i]));
        if (v)
            yajl_tree_free(v);
        rc = files->oom ? ST_ERR_NOMEM : ST_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- flaky tests ----------------------------------------------------------------------------- */

/* A report's outcome folded into a run's verdict of its node: the worst phase wins. */
static int flaky_rank(const char *outcome)
{
    if (!outcome)
        return 0;
    if (strcmp(outcome, "failed") == 0 || strcmp(outcome, "error") == 0)
        return 3;
    if (strcmp(outcome, "flaky") == 0)
        return 2;
    if (strcmp(outcome, "passed") == 0 || strcmp(outcome, "xpassed") == 0)
        return 1;
    return 0; /* skipped, xfailed */
}

static const char *const rank_verdict[] = {"skipped", "passed", "flaky", "failed"};

void st_flaky_scores_free(st_flaky_score *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].nodeid);
        free(v[i].message);
    }
    free(v);
}

/* Adds run verdict rank (of run finished at `at`, message msg) to the node's score. */
static void score_add(st_flaky_score *f, int rank, double at, const char *msg, int *last_state)
{
    if (rank == 0)
        return; /* skipped: says nothing */
    f->runs++;
    f->last = rank_verdict[rank];
    if (rank == 2) {
        f->flaky++;
        f->last_flake = at;
    }
    int state = rank == 3; /* a flaky run passed in the end */
    if (*last_state >= 0 && state != *last_state)
        f->flips++;
    *last_state = state;
    if (msg && rank >= 2) {
        char *m = st_strdup(msg);
        if (m) {
            free(f->message);
            f->message = m;
        }
    }
}

int st_metricsdb_flaky_scores(st_metricsdb *m, unsigned window, st_flaky_score **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    static const char sql[] =
        "SELECT o.nodeid, o.run, o.outcome, o.message, r.finished_at FROM test_outcomes o"
        " JOIN runs r ON r.id = o.run WHERE o.run IN (SELECT id FROM runs WHERE aborted = 0"
        " ORDER BY id DESC LIMIT ?1) ORDER BY o.nodeid, o.run, o.rowid";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->db, sql, -1, &st, NULL) != SQLITE_OK) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        return db_status(m->db);
    }
    sqlite3_bind_int(st, 1, (int)window);
    st_flaky_score *v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_int64 cur_run = 0;
    int cur_rank = 0, last_state = -1, rc = 0, step;
    double cur_at = 0;
    char *cur_msg = NULL;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *node = (const char *)sqlite3_column_text(st, 0);
        sqlite3_int64 run = sqlite3_column_int64(st, 1);
        const char *outcome = (const char *)sqlite3_column_text(st, 2);
        const char *msg = (const char *)sqlite3_column_text(st, 3);
        if (!node)
            continue;
        int new_node = !cnt || strcmp(v[cnt - 1].nodeid, node) != 0;
        if (cnt && (new_node || run != cur_run)) { /* the previous run of a node is complete */
            score_add(&v[cnt - 1], cur_rank, cur_at, cur_msg, &last_state);
            free(cur_msg);
            cur_msg = NULL;
            cur_rank = 0;
        }
        if (new_node) {
            if (ST_GROW(v, cap, cnt + 1) < 0 || !(v[cnt].nodeid = st_strdup(node))) {
                rc = ST_ERR_NOMEM;
                break;
            }
            v[cnt].score = 0;
            v[cnt].runs = v[cnt].flaky = v[cnt].flips = 0;
            v[cnt].last_flake = 0;
            v[cnt].message = NULL;
            v[cnt].last = "skipped";
            cnt++;
            last_state = -1;
        }
        cur_run = run;
        cur_at = sqlite3_column_double(st, 4);
        int r = flaky_rank(outcome);
        if (r > cur_rank)
            cur_rank = r;
        if (msg && r >= 2 && !cur_msg)
            cur_msg = st_strdup(msg);
    }
    if (rc == 0 && step != SQLITE_DONE) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        rc = st_sqlite_status(step);
    }
    if (rc == 0 && cnt)
        score_add(&v[cnt - 1], cur_rank, cur_at, cur_msg, &last_state);
    free(cur_msg);
    sqlite3_finalize(st);
    if (rc < 0) {
        st_flaky_scores_free(v, cnt);
        return rc;
    }
    /* the score: flaky runs, plus every change of state after the first (one change alone is
     * a test that broke, or was fixed), over the runs that ran the test */
    for (size_t i = 0; i < cnt; i++) {
        v[i].score = v[i].runs ? (v[i].flaky + (v[i].flips > 1 ? v[i].flips - 1 : 0)) /
                                     (double)v[i].runs
                               : 0;
        if (v[i].score > 1)
            v[i].score = 1;
    }
    *out = v;
    *n = cnt;
    return ST_OK;
}

int st_metricsdb_passing_streak(st_metricsdb *m, const char *nodeid, unsigned max,
                                unsigned *streak)
{
    *streak = 0;
    static const char sql[] =
        "SELECT run, outcome FROM test_outcomes WHERE nodeid = ?1 AND run IN (SELECT id FROM"
        " runs WHERE aborted = 0 ORDER BY id DESC LIMIT ?2) ORDER BY run DESC";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->db, sql, -1, &st, NULL) != SQLITE_OK) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        return db_status(m->db);
    }
    sqlite3_bind_text(st, 1, nodeid, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, (int)max);
    sqlite3_int64 cur = -1;
    int rank = 0, step, broken = 0;
    while (!broken && (step = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 run = sqlite3_column_int64(st, 0);
        if (cur >= 0 && run != cur) {
            if (rank != 1)
                broken = 1; /* not a clean pass (a flaky one included) */
            else
                (*streak)++;
            rank = 0;
        }
        cur = run;
        int r = flaky_rank((const char *)sqlite3_column_text(st, 1));
        if (r > rank)
            rank = r;
    }
    if (!broken && cur >= 0 && rank == 1)
        (*streak)++;
    int rc = broken || step == SQLITE_DONE ? ST_OK : st_sqlite_status(step);
    if (rc < 0)
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
    sqlite3_finalize(st);
    return rc;
}

int st_metricsdb_still_failing(st_metricsdb *m, unsigned runs, st_strv *out)
{
    static const char sql[] =
        "SELECT nodeid FROM test_outcomes WHERE run IN (SELECT id FROM runs WHERE aborted = 0"
        " ORDER BY id DESC LIMIT ?1) GROUP BY nodeid HAVING COUNT(DISTINCT CASE WHEN outcome"
        " IN ('failed', 'error') THEN run END) = ?1 AND SUM(outcome = 'flaky') = 0"
        " ORDER BY nodeid";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->db, sql, -1, &st, NULL) != SQLITE_OK) {
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
        return db_status(m->db);
    }
    sqlite3_bind_int(st, 1, (int)runs);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *nodeid = (const char *)sqlite3_column_text(st, 0);
        if (nodeid)
            st_strv_push(out, nodeid);
    }
    int rc = step == SQLITE_DONE ? (out->oom ? ST_ERR_NOMEM : ST_OK) : st_sqlite_status(step);
    if (step != SQLITE_DONE)
        st_error("%s: %s", m->path, sqlite3_errmsg(m->db));
    sqlite3_finalize(st);
    return rc;
}
