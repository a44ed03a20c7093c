/* SPDX-License-Identifier: MIT */
/* Paths (see st_path.h). */
#include "config.h"

#include "st_path.h"

#include "st_buf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
