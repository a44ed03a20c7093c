/* SPDX-License-Identifier: MIT */
/* JUnit XML: a cycle's results in the form CI servers read (Jenkins' junit plugin, GitLab's
 * test reports): <testsuites>, one <testsuite> per test batch, one <testcase> per test report
 * of the results object. docs/junit.md describes the mapping; tests/junit/jenkins-junit.xsd
 * is the schema the tests validate against. */
#ifndef ST_JUNIT_H
#define ST_JUNIT_H

#include "results.h"

/* The XML text of run (NUL-terminated, caller frees), or NULL on OOM. hostname names the
 * machine in each testsuite. */
char *st_junit_render(const st_run *run, const char *hostname);

/* Renders run and replaces file with it atomically (its directory created). Returns ST_OK, or
 * a negative st_status (st_status_of_errno) with a warning naming the file and the cause; the
 * old file is then left as it was. */
int st_junit_write(const st_run *run, const char *file);

/* Text made safe for XML 1.0 (appended to out): &, <, >, " and ' as entities; in attributes
 * (attr != 0) also tab, newline and carriage return as character references so they survive
 * attribute normalisation; bytes that are not valid UTF-8 and characters XML does not allow
 * (control characters, U+FFFE, U+FFFF) as U+FFFD. Exposed for the unit tests. */
void st_xml_escape(st_buf *out, const char *s, int attr);

#endif
