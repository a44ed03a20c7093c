/* SPDX-License-Identifier: MIT */
/* Coverage (see coverage.h): pytest-cov's LCOV report per batch, and the union over a run. */
#include "config.h"

#include "coverage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COVERAGE_MAX_BYTES (512u << 20) /* an LCOV report larger than this is refused */

static int add_cov_line(st_batch *b, const char *file, long line, int executed, size_t *cap)
{
    if (b->n_cov == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        st_cov_line *grown = realloc(b->cov, ncap * sizeof(*grown));
        if (!grown)
            return ST_ERR_NOMEM;
        b->cov = grown;
        *cap = ncap;
    }
    b->cov[b->n_cov++] = (st_cov_line){file, line, executed};
    return ST_OK;
}

/* pytest-cov's LCOV report: "SF:<file>", then "DA:<line>,<hits>[,<checksum>]" per statement,
 * then "end_of_record". (Debian 12's pytest-cov 4.0 has no JSON report; LCOV carries the same
 * per-line facts and is trivial to read.) A module without statements (an empty __init__.py)
 * gets "DA:0,1" and "LF:0": line 0 is no statement, so it is skipped, as coverage.py counts
 * it. */
int st_coverage_read(st_batch *b, const char *file, char *err, size_t err_size)
{
    char *text = NULL;
    int rc = st_read_file(file, COVERAGE_MAX_BYTES, &text, NULL);
    if (rc == -ENOENT)
        return 1;
    if (rc < 0) {
        snprintf(err, err_size, "%s: cannot read: %s", file, strerror(-rc));
        return st_status_of_errno(rc);
    }
    const char *current = NULL;
    size_t executed = 0, statements = 0, cap = b->n_cov;
    unsigned lineno = 0;
    rc = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (strncmp(line, "SF:", 3) == 0) {
            st_strv_push(&b->cov_files, line + 3);
            if (b->cov_files.oom) {
                rc = ST_ERR_NOMEM;
                break;
            }
            current = b->cov_files.v[b->cov_files.n - 1];
        } else if (strncmp(line, "DA:", 3) == 0) {
            char *end;
            long ln = strtol(line + 3, &end, 10);
            long hits = *end == ',' ? strtol(end + 1, &end, 10) : -1;
            if (!current || ln < 0 || hits < 0 || (*end && *end != ',')) {
                snprintf(err, err_size, "%s:%u: malformed LCOV line", file, lineno);
                rc = ST_ERR_MALFORMED;
                break;
            }
            if (ln == 0)
                continue; /* the marker of a module without statements */
            rc = add_cov_line(b, current, ln, hits > 0, &cap);
            if (rc < 0)
                break;
            statements++;
            executed += hits > 0;
        } else if (strcmp(line, "end_of_record") == 0) {
            current = NULL;
        }
    }
    free(text);
    if (rc == ST_ERR_NOMEM)
        snprintf(err, err_size, "%s: out of memory", file);
    if (rc == 0)
        b->coverage = statements ? 100.0 * (double)executed / (double)statements : 100.0;
    return rc;
}

static int cov_cmp(const void *a, const void *b)
{
    const st_cov_line *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    if (c)
        return c;
    return (x->line > y->line) - (x->line < y->line);
}

double st_coverage_union(const st_run *r)
{
    size_t n = 0;
    int any = 0;
    for (size_t i = 0; i < r->n_batches; i++) {
        n += r->batches[i].n_cov;
        any |= r->batches[i].coverage >= 0;
    }
    if (!any)
        return -1;
    st_cov_line *all = malloc((n + 1) * sizeof(*all));
    if (!all)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < r->n_batches; i++) {
        memcpy(all + k, r->batches[i].cov, r->batches[i].n_cov * sizeof(*all));
        k += r->batches[i].n_cov;
    }
    qsort(all, n, sizeof(*all), cov_cmp);
    size_t statements = 0, covered = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        int ran = 0;
        while (j < n && cov_cmp(&all[i], &all[j]) == 0)
            ran |= all[j++].executed;
        statements++;
        covered += ran != 0;
        i = j;
    }
    free(all);
    return statements ? 100.0 * (double)covered / (double)statements : 100.0;
}
