/* SPDX-License-Identifier: MIT */
/* The core's own small helpers: shell-style splitting, work directories (see util.h). */
#include "config.h"

#include "util.h"

#include <sqlite3.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- parsing -------------------------------------------------------------------------------- */

int st_shell_split(const char *s, st_strv *out, const char **err)
{
    st_buf word = {0};
    int in_word = 0;
    const char *p = s;
    *err = NULL;
    while (*p) {
        char c = *p;
        if (c == ' ' || c == '\t' || c == '\n') {
            if (in_word) {
                st_strv_push_owned(out, st_buf_steal(&word));
                in_word = 0;
            }
            p++;
        } else if (c == '\'') {
            const char *e = strchr(p + 1, '\'');
            if (!e) {
                *err = "unterminated single quote";
                goto fail;
            }
            st_buf_append(&word, p + 1, (size_t)(e - p - 1));
            in_word = 1;
            p = e + 1;
        } else if (c == '"') {
            p++;
            for (;;) {
                if (!*p) {
                    *err = "unterminated double quote";
                    goto fail;
                }
                if (*p == '"')
                    break;
                if (*p == '\\' && p[1] && strchr("\\\"$`\n", p[1])) {
                    if (p[1] != '\n')
                        st_buf_append(&word, p + 1, 1);
                    p += 2;
                    continue;
                }
                st_buf_append(&word, p, 1);
                p++;
            }
            p++;
            in_word = 1;
        } else if (c == '\\') {
            if (!p[1]) {
                *err = "trailing backslash";
                goto fail;
            }
            if (p[1] != '\n')
                st_buf_append(&word, p + 1, 1);
            p += 2;
            in_word = 1;
        } else {
            st_buf_append(&word, p, 1);
            in_word = 1;
            p++;
        }
    }
    if (in_word)
        st_strv_push_owned(out, st_buf_steal(&word));
    st_buf_free(&word);
    return out->oom ? ST_ERR_NOMEM : ST_OK;
fail:
    st_buf_free(&word);
    return ST_ERR_INVALID;
}

unsigned st_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

int st_is_identifier(const char *s)
{
    if (!s || !*s || isdigit((unsigned char)*s))
        return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || (unsigned char)*s >= 0x80))
            return 0;
    return 1;
}

const char *st_tmpdir(void)
{
    const char *tmp = getenv("TMPDIR");
    return tmp && *tmp ? tmp : "/tmp";
}

/* The owner pid of a work directory name, or 0 when the name is not one. */
static long workdir_pid(const char *name)
{
    static const char *const prefixes[] = {"selftest-sandbox-", "selftest-ssh-", "selftest-"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(name, prefixes[i], n) != 0)
            continue;
        const char *p = name + n;
        long pid = 0;
        size_t digits = 0;
        while (isdigit((unsigned char)*p) && digits < 10) {
            pid = pid * 10 + (*p++ - '0');
            digits++;
        }
        /* PID, '-', and mkdtemp's six characters */
        if (digits && *p == '-' && strlen(p + 1) == 6 && pid > 0)
            return pid;
    }
    return 0;
}

size_t st_remove_stale_workdirs(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int dfd = dirfd(d);
    size_t removed = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        long pid = workdir_pid(de->d_name);
        if (pid <= 0 || pid == (long)getpid())
            continue;
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode) ||
            st.st_uid != geteuid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* alive (or not ours to signal): its run may still use it */
        char *path = st_path_join(dir, de->d_name);
        if (path && st_rm_rf(path) == 0)
            removed++;
        free(path);
    }
    closedir(d);
    return removed;
}

int st_sqlite_status(int code)
{
    switch (code & 0xff) {
    case SQLITE_NOMEM:
        return ST_ERR_NOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return ST_ERR_TIMEOUT;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return ST_ERR_MALFORMED;
    case SQLITE_CONSTRAINT:
        return ST_ERR_INTERNAL;
    default:
        return ST_ERR_IO;
    }
}
