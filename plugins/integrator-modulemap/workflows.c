/* SPDX-License-Identifier: MIT */
/* workflows: single-step and group workflows in workflows.db (see workflows.h). */
#include "config.h"

#include "workflows.h"

#include "st_buf.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wf_db {
    sqlite3 *db;
    int full_columns; /* the table has every column this plugin fills (else: workflow only) */
};

/* The columns menace's WorkflowDB had that this plugin fills; `workflow` is the one that
 * matters (comma-separated steps). A table created by an older tool may lack the others: then
 * only `workflow` is written. */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS workflows ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " workflow TEXT NOT NULL,"  /* steps: comma-separated dotted module names */
    " action_chains TEXT NOT NULL DEFAULT '',"
    " argument_strings TEXT NOT NULL DEFAULT '',"
    " title TEXT NOT NULL DEFAULT '',"
    " description TEXT NOT NULL DEFAULT '',"
    " tags TEXT NOT NULL DEFAULT '',"
    " category TEXT NOT NULL DEFAULT '',"
    " type TEXT NOT NULL DEFAULT '',"
    " status TEXT NOT NULL DEFAULT '',"
    " timestamp TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))"
    ");";

static const char *const filled_columns[] = {"workflow", "title", "description", "category",
                                             "status", NULL};

static int has_columns(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    unsigned seen = 0, want = 0;
    for (size_t i = 0; filled_columns[i]; i++)
        want |= 1u << i;
    if (sqlite3_prepare_v2(db, "PRAGMA table_info(workflows)", -1, &st, NULL) != SQLITE_OK)
        return 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 1);
        for (size_t i = 0; name && filled_columns[i]; i++)
            if (strcmp(name, filled_columns[i]) == 0)
                seen |= 1u << i;
    }
    sqlite3_finalize(st);
    return seen == want;
}

int wf_open(const char *path, wf_db **out, char *err, size_t err_size)
{
    *out = NULL;
    wf_db *w = calloc(1, sizeof(*w));
    if (!w) {
        st_set_err(err, err_size, "out of memory");
        return -1;
    }
    int rc = sqlite3_open_v2(path, &w->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                               SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        st_set_err(err, err_size, "%s: %s", path, w->db ? sqlite3_errmsg(w->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(w->db, 10000);
    char *msg = NULL;
    if (sqlite3_exec(w->db, schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
        st_set_err(err, err_size, "%s: %s", path, msg ? msg : sqlite3_errmsg(w->db));
        sqlite3_free(msg);
        goto fail;
    }
    w->full_columns = has_columns(w->db);
    *out = w;
    return 0;
fail:
    sqlite3_close(w->db);
    free(w);
    return -1;
}

void wf_close(wf_db *w)
{
    if (!w)
        return;
    sqlite3_close(w->db);
    free(w);
}

/* ---- the rows that existed before this call --------------------------------------------------- */

typedef struct wf_row {
    long long id;
    char *workflow;
    int changed;
} wf_row;

typedef struct wf_rows {
    wf_row *v;
    size_t n, cap;
} wf_rows;

static void rows_free(wf_rows *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].workflow);
    free(r->v);
}

static int rows_load(sqlite3 *db, wf_rows *r)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT id, workflow FROM workflows ORDER BY id", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    int rc = 0, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (ST_GROW(r->v, r->cap, r->n + 1) < 0) {
            rc = -1;
            break;
        }
        const char *text = (const char *)sqlite3_column_text(st, 1);
        r->v[r->n].id = sqlite3_column_int64(st, 0);
        r->v[r->n].workflow = strdup(text ? text : "");
        r->v[r->n].changed = 0;
        if (!r->v[r->n].workflow) {
            rc = -1;
            break;
        }
        r->n++;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = -1;
    sqlite3_finalize(st);
    return rc;
}

/* Calls fn on every step of a comma-separated list (trimmed of spaces); stops when fn returns
 * non-zero and returns that. */
static int each_step(const char *list, int (*fn)(const char *step, void *ud), void *ud)
{
    char buf[1024];
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n && n < sizeof(buf)) {
            memcpy(buf, p, n);
            buf[n] = '\0';
            int r = fn(buf, ud);
            if (r)
                return r;
        }
        p += n;
        while (*p && *p != ',')
            p++;
        if (*p == ',')
            p++;
    }
    return 0;
}

static int step_equals(const char *step, void *ud)
{
    return strcmp(step, (const char *)ud) == 0;
}

typedef struct group_probe {
    wf_group_fn group_of;
    void *userdata;
    long long group;
} group_probe;

static int step_in_group(const char *step, void *ud)
{
    group_probe *g = ud;
    return g->group_of(step, g->userdata) == g->group;
}

/* The first step of a workflow is the module it was created for. */
static int first_step_is(const char *list, const char *step)
{
    size_t n = strlen(step);
    while (*list == ' ')
        list++;
    if (strncmp(list, step, n) != 0)
        return 0;
    list += n;
    while (*list == ' ')
        list++;
    return *list == '\0' || *list == ',';
}

static int has_own_workflow(sqlite3 *db, const char *step, int *found)
{
    sqlite3_stmt *st = NULL;
    *found = 0;
    if (sqlite3_prepare_v2(db, "SELECT workflow FROM workflows", -1, &st, NULL) != SQLITE_OK)
        return -1;
    int s = SQLITE_DONE;
    while (!*found && (s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 0);
        *found = text && first_step_is(text, step);
    }
    sqlite3_finalize(st);
    /* a failed step (busy, corrupt) is not "no such workflow": that would insert a duplicate */
    return *found || s == SQLITE_DONE ? 0 : -1;
}

static int insert_single(wf_db *w, const char *step)
{
    sqlite3_stmt *st = NULL;
    const char *sql = w->full_columns
                          ? "INSERT INTO workflows (workflow, title, description, category, status)"
                            " VALUES (?1, ?1, 'integrated by selftest-core integrator-modulemap',"
                            " 'orphan_integration', 'pending')"
                          : "INSERT INTO workflows (workflow) VALUES (?1)";
    if (sqlite3_prepare_v2(w->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, step, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

static int update_row(sqlite3 *db, const wf_row *row)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "UPDATE workflows SET workflow = ?1 WHERE id = ?2", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, row->workflow, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, row->id);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

static int append_step(wf_row *row, const char *step)
{
    size_t a = strlen(row->workflow), b = strlen(step);
    char *n = malloc(a + b + 2);
    if (!n)
        return -1;
    if (a)
        snprintf(n, a + b + 2, "%s,%s", row->workflow, step);
    else
        memcpy(n, step, b + 1);
    free(row->workflow);
    row->workflow = n;
    row->changed = 1;
    return 0;
}

int wf_apply(wf_db *w, const wf_item *items, size_t n, wf_group_fn group_of, void *userdata,
             wf_stats *stats, char *err, size_t err_size)
{
    wf_stats local = {0};
    wf_rows rows = {0};
    int rc = -1, in_tx = 0;
    if (sqlite3_exec(w->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    in_tx = 1;
    if (rows_load(w->db, &rows) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        int found;
        if (has_own_workflow(w->db, items[i].step, &found) < 0)
            goto out;
        /* a module with its own workflow was integrated by an earlier cycle (one interrupted
         * before its map was renamed): it was appended to its group's workflows then */
        if (found)
            continue;
        if (insert_single(w, items[i].step) < 0)
            goto out;
        local.created++;
        group_probe probe = {group_of, userdata, items[i].group};
        for (size_t r = 0; r < rows.n; r++) {
            if (each_step(rows.v[r].workflow, step_equals, (void *)items[i].step))
                continue;
            if (!each_step(rows.v[r].workflow, step_in_group, &probe))
                continue;
            if (append_step(&rows.v[r], items[i].step) < 0)
                goto out;
            local.appended++;
        }
    }
    for (size_t r = 0; r < rows.n; r++)
        if (rows.v[r].changed && update_row(w->db, &rows.v[r]) < 0)
            goto out;
    if (sqlite3_exec(w->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    in_tx = 0;
    rc = 0;
out:
    if (rc < 0) {
        st_set_err(err, err_size, "workflows.db: %s", sqlite3_errmsg(w->db));
        if (in_tx)
            sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
    } else if (stats) {
        *stats = local;
    }
    rows_free(&rows);
    return rc;
}
