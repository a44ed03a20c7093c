/* SPDX-License-Identifier: MIT */
/* Helpers shared by the check suites: a temp dir per test and stderr capture, so a test can
 * assert what an error message names. */
#ifndef ST_UNIT_H
#define ST_UNIT_H

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* Creates a fresh temp dir; the caller removes it with st_rm_rf and frees the string. */
static inline char *unit_tmpdir(void)
{
    char tmpl[] = "/tmp/st-unit-XXXXXX";
    char *d = mkdtemp(tmpl);
    ck_assert_ptr_nonnull(d);
    return st_strdup(d);
}

static inline void unit_write(const char *dir, const char *name, const char *text)
{
    char *path = st_path_join(dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    free(path);
}

/* stderr capture: begin redirects fd 2 to a temp file; end restores it and returns the text. */
typedef struct unit_capture {
    int saved;
    char path[64];
} unit_capture;

static inline void unit_capture_begin(unit_capture *c)
{
    fflush(stderr);
    snprintf(c->path, sizeof(c->path), "/tmp/st-unit-err-XXXXXX");
    int fd = mkstemp(c->path);
    ck_assert_int_ge(fd, 0);
    c->saved = dup(2);
    dup2(fd, 2);
    close(fd);
}

static inline char *unit_capture_end(unit_capture *c)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    char *text = NULL;
    ck_assert_int_eq(st_read_file(c->path, 1 << 20, &text, NULL), 0);
    unlink(c->path);
    return text;
}

#define ck_assert_contains(hay, needle)                                                        \
    ck_assert_msg(strstr((hay), (needle)) != NULL, "expected \"%s\" in: %s", (needle), (hay))

/* Runs a suite and returns the exit status for the harness. */
static inline int unit_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
