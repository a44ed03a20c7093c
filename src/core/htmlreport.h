/* SPDX-License-Identifier: MIT */
/* `selftest-core html`: a self-contained HTML page (inline CSS and SVG, no scripts, nothing
 * fetched) from the runs kept in <data>/metrics.db. docs/html-report.md describes it. */
#ifndef ST_HTMLREPORT_H
#define ST_HTMLREPORT_H

#include "settings.h"

/* The default number of cycles the trends cover. */
#define ST_HTML_CYCLES 30

/* Writes out_dir/index.html (out_dir created; NULL: <data>/html) from the newest `cycles` runs
 * of <data>/metrics.db, atomically, and prints its name. Returns ST_OK (*no_runs set, and said
 * on stderr, when there is no metrics.db or no run in it: nothing is written), or a negative
 * st_status (logged, naming the file). */
int st_html_report(const st_settings *s, const char *out_dir, unsigned cycles, int *no_runs);

/* The page itself from n results objects (JSON text) and the UNIX times their cycles started,
 * oldest first; title names the project. A results object that is not JSON is left out with a
 * warning. Caller frees; NULL on OOM. Exposed for the unit tests. */
char *st_html_render(const char *title, const double *started, const char *const *results,
                     size_t n);

#endif
