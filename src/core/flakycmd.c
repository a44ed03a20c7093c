/* SPDX-License-Identifier: MIT */
/* The `flaky` command (see flakycmd.h). */
#include "config.h"

#include "flakycmd.h"

#include "json.h"
#include "log.h"
#include "metricsdb.h"
#include "quarantine.h"

#include <errno.h>
#include <selftest/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int edit(const st_settings *s, const st_flaky_opts *o)
{
    const char *nodeid = o->quarantine ? o->quarantine : o->release;
    if (o->quarantine && (!o->reason || !o->reason[0])) {
        fprintf(stderr, "selftest-core flaky: --quarantine needs --reason TEXT (why the test is "
                        "quarantined)\n");
        return ST_ERR_INVALID;
    }
    if (o->quarantine && (!strstr(nodeid, "::") || strchr(nodeid, '\n'))) {
        fprintf(stderr, "selftest-core flaky: --quarantine '%s' is not a pytest node id "
                        "(FILE::TEST, as the results' \"nodeid\" names it)\n", nodeid);
        return ST_ERR_INVALID;
    }
    st_quarantine q;
    if (st_quarantine_load(s->quarantine_file, &q) < 0)
        return ST_ERR_INVALID; /* named the file and the fault; left as it is */
    int rc = ST_OK;
    if (o->release) {
        if (!st_quarantine_remove(&q, nodeid)) {
            fprintf(stderr, "selftest-core flaky: --release: %s is not in the quarantine file "
                            "%s\n", nodeid, s->quarantine_file);
            rc = ST_ERR_INVALID;
        }
    } else if (st_quarantine_add(&q, nodeid, o->reason, st_wall_clock()) < 0) {
        rc = ST_ERR_NOMEM;
    }
    if (rc == ST_OK && st_quarantine_save(s->quarantine_file, &q) < 0)
        rc = ST_ERR_IO;
    if (rc == ST_OK)
        printf("%s %s %s %s\n", o->release ? "released" : "quarantined", nodeid,
               o->release ? "from" : "in", s->quarantine_file);
    st_quarantine_free(&q);
    return rc;
}

int st_flaky_command(const st_settings *s, const st_flaky_opts *o)
{
    if (o->quarantine && o->release) {
        fprintf(stderr, "selftest-core flaky: --quarantine and --release exclude each other\n");
        return ST_ERR_INVALID;
    }
    if (o->reason && !o->quarantine) {
        fprintf(stderr, "selftest-core flaky: --reason goes with --quarantine NODEID\n");
        return ST_ERR_INVALID;
    }
    if (o->quarantine || o->release)
        return edit(s, o);
    st_quarantine q;
    if (st_quarantine_load(s->quarantine_file, &q) < 0)
        return ST_ERR_INVALID;
    st_flaky_score *v = NULL;
    size_t n = 0;
    char *db_path = st_path_join(s->data_dir, "metrics.db");
    int rc = db_path ? ST_OK : ST_ERR_NOMEM;
    if (rc == ST_OK && access(db_path, F_OK) == 0) { /* no runs yet: nothing to score */
        st_metricsdb *db = NULL;
        if (st_metricsdb_open(db_path, &db) < 0 ||
            st_metricsdb_flaky_scores(db, s->flaky_window, &v, &n) < 0)
            rc = ST_ERR_IO;
        st_metricsdb_close(db);
    }
    free(db_path);
    if (rc != ST_OK) {
        st_quarantine_free(&q);
        return rc;
    }
    if (o->json) {
        yajl_gen g = st_jg_new(0);
        if (!g)
            rc = ST_ERR_NOMEM;
        if (g) {
            yajl_gen_map_open(g);
            st_jg_kint(g, "window", s->flaky_window);
            st_jg_kdouble(g, "threshold", s->flaky_threshold);
            st_jg_key(g, "tests");
            yajl_gen_array_open(g);
            for (size_t i = 0; i < n; i++) {
                if (!(v[i].score > s->flaky_threshold))
                    continue;
                char ts[32] = "";
                if (v[i].last_flake > 0)
                    st_utc_iso8601(v[i].last_flake, ts, sizeof(ts));
                yajl_gen_map_open(g);
                st_jg_kstr(g, "nodeid", v[i].nodeid);
                st_jg_kdouble(g, "score", v[i].score);
                st_jg_kint(g, "runs", v[i].runs);
                st_jg_kint(g, "flaky", v[i].flaky);
                st_jg_kint(g, "flips", v[i].flips);
                st_jg_kstr(g, "last_flake", ts[0] ? ts : NULL);
                st_jg_kstr(g, "last_outcome", v[i].last);
                st_jg_kstr(g, "message", v[i].message);
                st_jg_kbool(g, "quarantined", st_quarantine_find(&q, v[i].nodeid) != NULL);
                yajl_gen_map_close(g);
            }
            yajl_gen_array_close(g);
            st_jg_key(g, "quarantine");
            yajl_gen_array_open(g);
            for (size_t i = 0; i < q.n; i++) {
                yajl_gen_map_open(g);
                st_jg_kstr(g, "nodeid", q.v[i].nodeid);
                st_jg_kstr(g, "reason", q.v[i].reason);
                st_jg_kstr(g, "since", q.v[i].since);
                yajl_gen_map_close(g);
            }
            yajl_gen_array_close(g);
            st_jg_kstr(g, "quarantine_file", s->quarantine_file);
            yajl_gen_map_close(g);
            char *out = st_jg_finish(g, 1);
            if (out)
                fputs(out, stdout);
            else
                rc = ST_ERR_NOMEM;
            free(out);
        }
    } else {
        size_t shown = 0;
        for (size_t i = 0; i < n; i++) {
            if (!(v[i].score > s->flaky_threshold))
                continue;
            if (!shown++)
                printf("Flaky tests (score above %g over the last %u runs)\n",
                       s->flaky_threshold, s->flaky_window);
            char ts[32] = "never";
            if (v[i].last_flake > 0)
                st_utc_iso8601(v[i].last_flake, ts, sizeof(ts));
            printf("  %.2f  %s%s\n        %u flaky and %u flip%s in %u run%s; last flake %s; "
                   "last run %s\n",
                   v[i].score, v[i].nodeid,
                   st_quarantine_find(&q, v[i].nodeid) ? "  (quarantined)" : "", v[i].flaky,
                   v[i].flips, v[i].flips == 1 ? "" : "s", v[i].runs, v[i].runs == 1 ? "" : "s",
                   ts, v[i].last);
            if (v[i].message)
                printf("        %s\n", v[i].message);
        }
        if (!shown)
            printf("No flaky tests (no score above %g over the last %u runs)\n",
                   s->flaky_threshold, s->flaky_window);
        if (q.n)
            printf("Quarantined (%s)\n", s->quarantine_file);
        for (size_t i = 0; i < q.n; i++)
            printf("  %s  since %s: %s\n", q.v[i].nodeid, q.v[i].since, q.v[i].reason);
    }
    st_flaky_scores_free(v, n);
    st_quarantine_free(&q);
    return rc;
}
