/* SPDX-License-Identifier: MIT */
/* Small helpers the whole core uses: buffers, string vectors, paths, atomic files, clocks,
 * shell-style splitting. See util.h for the contracts. */
#include "config.h"

#include "util.h"

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

/* ---- st_buf --------------------------------------------------------------------------------- */

static int buf_reserve(st_buf *b, size_t extra)
{
    if (b->oom)
        return -1;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void st_buf_append(st_buf *b, const char *data, size_t len)
{
    if (buf_reserve(b, len) < 0)
        return;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void st_buf_puts(st_buf *b, const char *s)
{
    st_buf_append(b, s, strlen(s));
}

void st_buf_vprintf(st_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || buf_reserve(b, (size_t)n) < 0)
        return;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void st_buf_printf(st_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    st_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void st_buf_keep_tail(st_buf *b, size_t max)
{
    if (b->len <= max)
        return;
    memmove(b->data, b->data + (b->len - max), max);
    b->len = max;
    b->data[max] = '\0';
}

void st_buf_reset(st_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void st_buf_free(st_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

char *st_buf_steal(st_buf *b)
{
    if (b->oom) {
        st_buf_free(b);
        return NULL;
    }
    if (!b->data)
        return st_strdup("");
    char *d = b->data;
    memset(b, 0, sizeof(*b));
    return d;
}

/* ---- st_strv -------------------------------------------------------------------------------- */

void st_strv_push_owned(st_strv *s, char *str)
{
    if (!str) {
        s->oom = 1;
        return;
    }
    if (s->n + 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        char **v = realloc(s->v, cap * sizeof(*v));
        if (!v) {
            free(str);
            s->oom = 1;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = str;
    s->v[s->n] = NULL;
}

void st_strv_push(st_strv *s, const char *str)
{
    st_strv_push_owned(s, st_strdup(str));
}

void st_strv_pushf(st_strv *s, const char *fmt, ...)
{
    st_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    st_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    st_strv_push_owned(s, st_buf_steal(&b));
}

void st_strv_free(st_strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

const char *const *st_strv_get(st_strv *s)
{
    static const char *const empty[] = {NULL};
    if (!s->v)
        return empty;
    return (const char *const *)s->v;
}

int st_strv_contains(const st_strv *s, const char *str)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], str) == 0)
            return 1;
    return 0;
}

/* ---- strings -------------------------------------------------------------------------------- */

char *st_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

char *st_strndup(const char *s, size_t n)
{
    return s ? strndup(s, n) : NULL;
}

char *st_asprintf(const char *fmt, ...)
{
    st_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    st_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return st_buf_steal(&b);
}

/* ---- paths ---------------------------------------------------------------------------------- */

char *st_path_join(const char *a, const char *b)
{
    if (b[0] == '/' || a[0] == '\0')
        return st_strdup(b);
    size_t la = strlen(a);
    if (la && a[la - 1] == '/')
        return st_asprintf("%s%s", a, b);
    return st_asprintf("%s/%s", a, b);
}

char *st_path_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return st_strdup(".");
    if (slash == path)
        return st_strdup("/");
    return st_strndup(path, (size_t)(slash - path));
}

char *st_path_absolute(const char *base, const char *path)
{
    char *joined = NULL;
    if (path[0] == '/') {
        joined = st_strdup(path);
    } else {
        char cwd[PATH_MAX];
        if (!base) {
            if (!getcwd(cwd, sizeof(cwd)))
                return NULL;
            base = cwd;
        }
        joined = st_path_join(base, path);
    }
    if (!joined)
        return NULL;
    /* Fold ".", ".." and repeated slashes: keep the start offset of every kept component so
     * ".." can drop the last one. */
    size_t n = strlen(joined);
    char *out = malloc(n + 2);
    size_t *starts = malloc((n / 2 + 2) * sizeof(*starts));
    if (!out || !starts) {
        free(out);
        free(starts);
        free(joined);
        return NULL;
    }
    size_t o = 0, depth = 0;
    const char *p = joined;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 1 && p[0] == '.') {
            /* skip */
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (depth > 0)
                o = starts[--depth];
        } else {
            starts[depth++] = o;
            out[o++] = '/';
            memcpy(out + o, p, len);
            o += len;
        }
        p += len;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    free(starts);
    free(joined);
    return out;
}

char *st_path_relative_to(const char *root, const char *abs_path)
{
    size_t lr = strlen(root);
    if (strcmp(root, "/") == 0)
        return st_strdup(abs_path[1] ? abs_path + 1 : ".");
    if (strncmp(root, abs_path, lr) != 0)
        return NULL;
    if (abs_path[lr] == '\0')
        return st_strdup(".");
    if (abs_path[lr] != '/')
        return NULL;
    return st_strdup(abs_path + lr + 1);
}

int st_path_is_safe_relative(const char *root, const char *rel)
{
    if (!rel || !rel[0] || rel[0] == '/')
        return 0;
    const char *p = rel;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return 0;
        p += len;
        while (*p == '/')
            p++;
    }
    if (root) {
        /* Resolve symlinks of what exists and check the result stays inside root. */
        char *joined = st_path_join(root, rel);
        char real_root[PATH_MAX], real_path[PATH_MAX];
        int ok = 1;
        if (joined && realpath(root, real_root) && realpath(joined, real_path)) {
            size_t lr = strlen(real_root);
            if (!(strncmp(real_root, real_path, lr) == 0 &&
                  (real_path[lr] == '\0' || real_path[lr] == '/' || lr == 1)))
                ok = 0;
        }
        free(joined);
        return ok;
    }
    return 1;
}

int st_mkdir_p(const char *path, unsigned mode)
{
    char *tmp = st_strdup(path);
    if (!tmp)
        return -ENOMEM;
    int rc = 0;
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, mode) < 0 && errno != EEXIST) {
                rc = -errno;
                break;
            }
            *p = c;
            if (!c)
                break;
        }
    }
    free(tmp);
    if (rc == 0) {
        struct stat st;
        if (stat(path, &st) < 0)
            rc = -errno;
        else if (!S_ISDIR(st.st_mode))
            rc = -ENOTDIR;
    }
    return rc;
}

static int rm_rf_at(int dirfd, const char *name, int depth)
{
    if (depth > 256)
        return -ELOOP;
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = -errno;
        close(fd);
        return e;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int r = rm_rf_at(fd, de->d_name, depth + 1);
        if (r < 0 && rc == 0)
            rc = r;
    }
    closedir(d);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && rc == 0)
        rc = -errno;
    return rc;
}

int st_rm_rf(const char *path)
{
    return rm_rf_at(AT_FDCWD, path, 0);
}

int st_write_file_atomic(const char *path, const char *data, size_t len, unsigned mode)
{
    char *dir = st_path_dirname(path);
    char *tmp = st_asprintf("%s.tmp.XXXXXX", path);
    int rc = 0, fd = -1;
    if (!dir || !tmp) {
        rc = -ENOMEM;
        goto out;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = -errno;
        free(tmp);
        tmp = NULL;
        goto out;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        off += (size_t)w;
    }
    if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
        rc = -errno;
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = -errno;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = -errno;
        goto out;
    }
    free(tmp);
    tmp = NULL;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(dir);
    return rc;
}

int st_read_file(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    st_buf b = {0};
    char chunk[65536];
    int rc = 0;
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        if (b.len + (size_t)r > max) {
            rc = -EFBIG;
            break;
        }
        st_buf_append(&b, chunk, (size_t)r);
        if (b.oom) {
            rc = -ENOMEM;
            break;
        }
    }
    close(fd);
    if (rc < 0) {
        st_buf_free(&b);
        return rc;
    }
    if (len)
        *len = b.len;
    *out = st_buf_steal(&b);
    return *out ? 0 : -ENOMEM;
}

/* ---- clocks --------------------------------------------------------------------------------- */

double st_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double st_wall_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void st_utc_stamp(double t, char *out, size_t size)
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, size, "%Y%m%d_%H%M%S", &tm);
}

void st_utc_iso8601(double t, char *out, size_t size)
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

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
    return out->oom ? -1 : 0;
fail:
    st_buf_free(&word);
    return -1;
}

/* Copies s without surrounding white space (a value read from a file or written by a script
 * often ends in a space or newline) into buf; -1 when empty or too long. */
static int trimmed(const char *s, char *buf, size_t size)
{
    if (!s)
        return -1;
    s += strspn(s, " \t\r\n");
    size_t n = strlen(s);
    while (n && strchr(" \t\r\n", s[n - 1]))
        n--;
    if (!n || n >= size)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return 0;
}

/* Is buf a plain decimal number: [+-]digits, and with fraction also .digits and an exponent?
 * (strtoll/strtod alone would take "0x10", "inf" and "1e999".) */
static int is_decimal(const char *p, int fraction)
{
    static const char digits[] = "0123456789";
    if (*p == '+' || *p == '-')
        p++;
    size_t d = strspn(p, digits);
    p += d;
    if (fraction && *p == '.') {
        size_t f = strspn(++p, digits);
        p += f;
        d += f;
    }
    if (fraction && d && (*p == 'e' || *p == 'E')) {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        size_t e = strspn(p, digits);
        if (!e)
            return 0;
        p += e;
    }
    return d && !*p;
}

int st_parse_bool(const char *s)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    char buf[16];
    if (trimmed(s, buf, sizeof(buf)) < 0)
        return -1;
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(buf, yes[i]) == 0)
            return 1;
        if (strcasecmp(buf, no[i]) == 0)
            return 0;
    }
    return -1;
}

int st_parse_long(const char *s, long long *out)
{
    char buf[64];
    if (trimmed(s, buf, sizeof(buf)) < 0 || !is_decimal(buf, 0))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end || end == buf)
        return -1;
    *out = v;
    return 0;
}

int st_parse_double(const char *s, double *out)
{
    char buf[64];
    if (trimmed(s, buf, sizeof(buf)) < 0 || !is_decimal(buf, 1))
        return -1;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (errno || *end || end == buf || v != v)
        return -1;
    *out = v;
    return 0;
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
