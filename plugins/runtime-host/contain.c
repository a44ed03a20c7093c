/* SPDX-License-Identifier: MIT */
/* Process containment for runtime-host (see contain.h). */
#include "config.h"

#include "contain.h"

#include "st_time.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ENVIRON_MAX (1u << 20) /* bytes of /proc/PID/environ looked at */

/* ---- small file helpers (async-signal-safe: used by the guard too) ------------------------- */

static size_t s_len(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

/* dst = a b c (truncated to cap); returns 0, or -1 when it did not fit. */
static int s_cat(char *dst, size_t cap, const char *a, const char *b, const char *c)
{
    const char *parts[3] = {a, b, c};
    size_t k = 0;
    for (int i = 0; i < 3; i++)
        for (const char *p = parts[i]; p && *p; p++) {
            if (k + 1 >= cap) {
                dst[k] = '\0';
                return -1;
            }
            dst[k++] = *p;
        }
    dst[k] = '\0';
    return 0;
}

static void s_ulong(char *dst, unsigned long v) /* at least 21 bytes */
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++)
        dst[i] = tmp[n - 1 - i];
    dst[n] = '\0';
}

static int write_file(const char *dir, const char *name, const char *text)
{
    char path[CT_PATH + 96];
    if (s_cat(path, sizeof(path), dir, "/", name) < 0)
        return -1;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = s_len(text);
    ssize_t w;
    do
        w = write(fd, text, len);
    while (w < 0 && errno == EINTR);
    int e = errno;
    close(fd);
    errno = e;
    return w == (ssize_t)len ? 0 : -1;
}

/* Reads up to cap-1 bytes of dir/name (NUL-terminated); -1 on error. */
static ssize_t read_file(const char *dir, const char *name, char *buf, size_t cap)
{
    char path[CT_PATH + 96];
    if (s_cat(path, sizeof(path), dir, name ? "/" : "", name) < 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Does the environment block buf[0..len) hold an entry starting with needle? */
static int env_has(const char *buf, size_t len, const char *needle, size_t nlen)
{
    size_t i = 0;
    while (i < len) {
        if (len - i >= nlen && memcmp(buf + i, needle, nlen) == 0)
            return 1;
        while (i < len && buf[i])
            i++;
        i++;
    }
    return 0;
}

/* Calls fn(pid, arg) for each numeric entry of /proc; raw getdents64 so the guard may use it. */
struct linux_dirent64_ {
    unsigned long long d_ino;
    long long d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static void for_each_entry(const char *dir, int numeric, void (*fn)(const char *name, void *arg),
                           void *arg)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[8192] __attribute__((aligned(8)));
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            struct linux_dirent64_ *d = (struct linux_dirent64_ *)(void *)(buf + off);
            off += d->d_reclen;
            const char *name = d->d_name;
            if (numeric ? (name[0] < '1' || name[0] > '9')
                        : (d->d_type != DT_DIR || name[0] == '.'))
                continue;
            fn(name, arg);
        }
    }
    close(fd);
}

static long parse_pid(const char *s)
{
    long v = 0;
    for (; *s >= '0' && *s <= '9'; s++)
        v = v * 10 + (*s - '0');
    return v;
}

/* ---- token scan ------------------------------------------------------------------------------ */

typedef struct scan {
    const char *needle; /* "SELF_TEST_EXEC_TOKEN=<prefix or whole token>" */
    size_t nlen;
    int exact;          /* the token must end there (a whole token, not a prefix) */
    char *buf;
    size_t cap;
    pid_t self, except;
    int kill_them;
    pid_t *out;
    size_t n, out_cap;
} scan;

static void scan_one(const char *name, void *arg)
{
    scan *sc = arg;
    pid_t pid = (pid_t)parse_pid(name);
    if (pid == sc->self || pid == sc->except)
        return;
    char dir[40];
    s_cat(dir, sizeof(dir), "/proc/", name, NULL);
    ssize_t len = read_file(dir, "environ", sc->buf, sc->cap);
    if (len <= 0)
        return; /* gone, a kernel thread, or a zombie */
    int match;
    if (sc->exact) {
        /* the whole entry: needle then NUL (or the end of the block) */
        match = 0;
        size_t i = 0, L = (size_t)len;
        while (i < L && !match) {
            size_t j = i;
            while (j < L && sc->buf[j])
                j++;
            match = j - i == sc->nlen && memcmp(sc->buf + i, sc->needle, sc->nlen) == 0;
            i = j + 1;
        }
    } else {
        match = env_has(sc->buf, (size_t)len, sc->needle, sc->nlen);
    }
    if (!match)
        return;
    if (sc->kill_them)
        kill(pid, SIGKILL);
    if (sc->out && sc->n < sc->out_cap)
        sc->out[sc->n] = pid;
    sc->n++;
}

static size_t token_scan(const char *needle, int exact, char *buf, size_t cap, pid_t except,
                         int kill_them, pid_t *out, size_t out_cap)
{
    scan sc = {.needle = needle, .nlen = s_len(needle), .exact = exact, .buf = buf, .cap = cap,
               .self = getpid(), .except = except, .kill_them = kill_them, .out = out,
               .out_cap = out_cap};
    for_each_entry("/proc", 1, scan_one, &sc);
    return sc.n;
}

/* ---- cgroup helpers ------------------------------------------------------------------------- */

/* Kills every pid listed in dir/cgroup.procs; how many were listed. */
static size_t kill_procs_file(const char *dir, char *buf, size_t cap)
{
    if (read_file(dir, "cgroup.procs", buf, cap) < 0)
        return 0;
    size_t n = 0;
    for (char *p = buf; *p;) {
        long pid = parse_pid(p);
        if (pid > 0) {
            kill((pid_t)pid, SIGKILL);
            n++;
        }
        while (*p && *p != '\n')
            p++;
        while (*p == '\n')
            p++;
    }
    return n;
}

static int populated(const char *dir)
{
    char buf[256];
    if (read_file(dir, "cgroup.events", buf, sizeof(buf)) < 0)
        return 0;
    const char *p = strstr(buf, "populated ");
    return p && p[10] == '1';
}

typedef struct sub_ctx {
    const char *base;
    char *buf;
    size_t cap;
    int kill_them, rm;
} sub_ctx;

static void sub_one(const char *name, void *arg)
{
    sub_ctx *sc = arg;
    char dir[CT_PATH + 64];
    if (s_cat(dir, sizeof(dir), sc->base, "/", name) < 0)
        return;
    if (sc->kill_them)
        kill_procs_file(dir, sc->buf, sc->cap);
    if (sc->rm)
        rmdir(dir);
}

static void for_subgroups(const char *base, char *buf, size_t cap, int kill_them, int rm)
{
    sub_ctx sc = {base, buf, cap, kill_them, rm};
    for_each_entry(base, 0, sub_one, &sc);
}

/* ---- finding the cgroup hierarchies --------------------------------------------------------- */

/* The mount point of the hierarchy (fstype "cgroup2", or "cgroup" with option opt) and the root
 * of that mount, from /proc/self/mountinfo. */
static int find_mount(const char *fstype, const char *opt, char *mnt, size_t mcap, char *root,
                      size_t rcap)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -1;
    char line[4096];
    int found = -1;
    while (found < 0 && fgets(line, sizeof(line), f)) {
        char *fields[6] = {0};
        char *save = NULL, *tok = strtok_r(line, " ", &save);
        int i = 0;
        for (; tok && i < 6; i++, tok = strtok_r(NULL, " ", &save))
            fields[i] = tok;
        while (tok && strcmp(tok, "-") != 0)
            tok = strtok_r(NULL, " ", &save);
        char *type = tok ? strtok_r(NULL, " ", &save) : NULL;
        char *src = type ? strtok_r(NULL, " ", &save) : NULL;
        char *super = src ? strtok_r(NULL, " \n", &save) : NULL;
        if (i < 6 || !type || strcmp(type, fstype) != 0 || strchr(fields[4], '\\'))
            continue;
        if (opt) {
            int has = 0;
            char *s2 = NULL;
            for (char *o = super ? strtok_r(super, ",", &s2) : NULL; o && !has;
                 o = strtok_r(NULL, ",", &s2))
                has = strcmp(o, opt) == 0;
            if (!has)
                continue;
        }
        snprintf(mnt, mcap, "%s", fields[4]);
        snprintf(root, rcap, "%s", fields[3]);
        found = 0;
    }
    fclose(f);
    return found;
}

/* The process's path in the hierarchy: the "0::" line (v2) or the line naming controller. */
static int own_path(const char *controller, char *out, size_t cap)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return -1;
    char line[4096];
    int found = -1;
    while (found < 0 && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        int match = 0;
        if (!controller) {
            match = c1 == line + 1 && line[0] == '0' && c1 + 1 == c2;
        } else {
            char *s2 = NULL;
            for (char *o = strtok_r(c1 + 1, ",", &s2); o && !match; o = strtok_r(NULL, ",", &s2))
                match = strcmp(o, controller) == 0;
        }
        if (match) {
            snprintf(out, cap, "%s", c2 + 1);
            found = 0;
        }
    }
    fclose(f);
    return found;
}

/* dir = the mount point + the process's path below the mount's root, + "/" + leaf; mkdir. */
static int make_base(const char *fstype, const char *opt, const char *leaf, char *dir, size_t cap)
{
    char mnt[CT_PATH], root[CT_PATH], path[CT_PATH];
    if (find_mount(fstype, opt, mnt, sizeof(mnt), root, sizeof(root)) < 0 ||
        own_path(opt, path, sizeof(path)) < 0)
        return -1;
    const char *rel = path;
    size_t rl = strlen(root);
    if (strcmp(root, "/") != 0) {
        if (strncmp(path, root, rl) != 0 || (path[rl] && path[rl] != '/'))
            return -1; /* our cgroup is not below this mount */
        rel = path + rl;
    }
    if (strstr(rel, "/..") || (size_t)snprintf(dir, cap, "%s%s%s/%s", mnt,
                                               *rel == '/' ? "" : "/", rel, leaf) >= cap)
        return -1;
    /* "//" when our cgroup is the root: harmless, but keep messages tidy */
    for (char *p = dir; (p = strstr(p, "//")) != NULL;)
        memmove(p, p + 1, strlen(p));
    if (mkdir(dir, 0755) < 0)
        return -1;
    return 0;
}

/* ---- the guard ------------------------------------------------------------------------------- */

static void sweep(const ct_instance *ci, char *buf, size_t cap)
{
    char needle[128];
    s_cat(needle, sizeof(needle), CT_TOKEN_VAR "=", ci->prefix, NULL);
    for (int round = 0; round < 50; round++) {
        size_t n = 0;
        if (ci->v2_base[0]) {
            if (!ci->v2_kill || write_file(ci->v2_base, "cgroup.kill", "1") < 0)
                for_subgroups(ci->v2_base, buf, cap, 1, 0);
            n += (size_t)populated(ci->v2_base);
        }
        n += token_scan(needle, 0, buf, cap, -1, 1, NULL, 0);
        if (n == 0)
            break;
        nap_ms(20);
    }
    for (int i = 0; i < 50; i++) {
        if (ci->v2_base[0]) {
            for_subgroups(ci->v2_base, buf, cap, 0, 1);
            rmdir(ci->v2_base);
        }
        if (ci->v1_pids_base[0]) {
            for_subgroups(ci->v1_pids_base, buf, cap, 1, 1);
            rmdir(ci->v1_pids_base);
        }
        if ((!ci->v2_base[0] || access(ci->v2_base, F_OK) < 0) &&
            (!ci->v1_pids_base[0] || access(ci->v1_pids_base, F_OK) < 0))
            break;
        nap_ms(20);
    }
}

static unsigned sweep_stale(const char *v2_parent, const char *v1_parent, unsigned long pidns,
                            char *buf);

/* The instance's cgroups only: what ct_stop leaves the guard when every execution ended with
 * nothing left (their subgroups are gone already) */
static void remove_bases(const ct_instance *ci)
{
    for (int i = 0; i < 50; i++) {
        int left = 0;
        if (ci->v2_base[0] && rmdir(ci->v2_base) < 0 && errno != ENOENT)
            left = 1;
        if (ci->v1_pids_base[0] && rmdir(ci->v1_pids_base) < 0 && errno != ENOENT)
            left = 1;
        if (!left)
            return;
        nap_ms(20);
    }
}

/* rfd: the core's pipe; rfd + 1: where the stale sweep's count goes */
static void guard_main(const ct_instance *ci, int rfd, int max_fd) __attribute__((noreturn));
static void guard_main(const ct_instance *ci, int rfd, int max_fd)
{
    setsid();
    prctl(PR_SET_NAME, "selftest-guard", 0, 0, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    int ignored[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        sigaction(ignored[i], &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Hold nothing of the core's (its lock, its sockets, the batches' pipes): close_range
     * (Linux 5.9) in two system calls, else one close() per possible descriptor (65536 system
     * calls, on a CPU the tests share) */
    int closed = 0;
#ifdef SYS_close_range
    closed = (rfd == 0 || syscall(SYS_close_range, 0u, (unsigned)rfd - 1, 0u) == 0) &&
             syscall(SYS_close_range, (unsigned)rfd + 2, ~0u, 0u) == 0;
#endif
    for (int fd = 0; !closed && fd <= max_fd; fd++)
        if (fd != rfd && fd != rfd + 1)
            close(fd);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0 && devnull != 0) {
        dup2(devnull, 0);
        close(devnull);
    }
    if (chdir("/") < 0) {
        /* not needed for the sweep */
    }
    /* what dead instances left, while the core goes on; the count for its log */
    unsigned killed = sweep_stale(ci->v2_parent, ci->v1_parent, ci->pidns, ci->scratch);
    if (write(rfd + 1, &killed, sizeof(killed)) < 0) {
        /* the core is gone: nobody to tell */
    }
    close(rfd + 1);
    char c;
    int clean = 0;
    for (;;) {
        ssize_t n = read(rfd, &c, 1);
        if (n == 1)
            clean = c == 'q';
        else if (n == 0 || errno != EINTR)
            break;
    }
    if (clean)
        remove_bases(ci);
    else
        sweep(ci, ci->scratch, ci->scratch_len);
    _exit(0);
}

static int is_zombie(pid_t pid)
{
    char path[64], num[24], buf[512];
    s_ulong(num, (unsigned long)pid);
    s_cat(path, sizeof(path), "/proc/", num, NULL);
    if (read_file(path, "stat", buf, sizeof(buf)) <= 0)
        return 1; /* gone */
    const char *p = strrchr(buf, ')');
    return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
}

/* ---- what dead instances left ---------------------------------------------------------------- */

typedef struct stale {
    char *buf;
    size_t cap;
    unsigned long pidns;
    unsigned killed;
} stale;

/* "<pid>.<pid namespace>-...": is it a selftest-core of this namespace that is gone? */
static int core_gone(const stale *st, const char *s)
{
    long pid = parse_pid(s);
    while (*s >= '0' && *s <= '9')
        s++;
    if (*s != '.' || (unsigned long)parse_pid(s + 1) != st->pidns || !st->pidns)
        return 0;
    /* gone, or a zombie nobody reaped yet */
    return pid > 0 && ((kill((pid_t)pid, 0) < 0 && errno == ESRCH) || is_zombie((pid_t)pid));
}

/* A process whose token names a selftest-core that is gone (its guard was killed too). */
static void stale_proc(const char *name, void *arg)
{
    stale *st = arg;
    char dir[40];
    s_cat(dir, sizeof(dir), "/proc/", name, NULL);
    ssize_t len = read_file(dir, "environ", st->buf, st->cap);
    static const char needle[] = CT_TOKEN_VAR "=st";
    for (ssize_t i = 0; i < len;) {
        const char *e = st->buf + i;
        size_t el = strnlen(e, (size_t)(len - i));
        if (el > sizeof(needle) - 1 && memcmp(e, needle, sizeof(needle) - 1) == 0) {
            if (core_gone(st, e + sizeof(needle) - 1) && kill((pid_t)parse_pid(name), SIGKILL) == 0)
                st->killed++;
            return;
        }
        i += (ssize_t)el + 1;
    }
}

/* A cgroup "selftest-<pid>-<nonce>" of a selftest-core that is gone: empty it, remove it. */
static void stale_cgroup(const char *name, void *arg)
{
    stale *st = arg;
    if (strncmp(name, "selftest-", 9) != 0 || !core_gone(st, name + 9))
        return;
    const char *base = st->buf + st->cap; /* the parent directory, after the scratch buffer */
    char dir[CT_PATH + 64];
    if (s_cat(dir, sizeof(dir), base, "/", name) < 0)
        return;
    if (write_file(dir, "cgroup.kill", "1") < 0)
        for_subgroups(dir, st->buf, st->cap, 1, 0);
    for (int i = 0; i < 50; i++) {
        for_subgroups(dir, st->buf, st->cap, 1, 1);
        if (rmdir(dir) == 0 || errno != EBUSY)
            break;
        nap_ms(20);
    }
}

/* buf: ENVIRON_MAX + CT_PATH bytes. Only system calls: the guard runs it. */
static unsigned sweep_stale(const char *v2_parent, const char *v1_parent, unsigned long pidns,
                            char *buf)
{
    stale st = {buf, ENVIRON_MAX, pidns, 0};
    for (int round = 0; round < 5; round++) {
        unsigned before = st.killed;
        for_each_entry("/proc", 1, stale_proc, &st);
        if (st.killed == before)
            break;
        nap_ms(20);
    }
    const char *parents[2] = {v2_parent, v1_parent};
    for (int i = 0; i < 2; i++)
        if (parents[i] && parents[i][0] &&
            s_cat(st.buf + st.cap, CT_PATH, parents[i], NULL, NULL) == 0)
            for_each_entry(parents[i], 0, stale_cgroup, &st);
    return st.killed;
}

unsigned ct_sweep_stale(const ct_instance *ci)
{
    char *buf = malloc(ENVIRON_MAX + CT_PATH);
    unsigned n = buf ? sweep_stale(ci->v2_parent, ci->v1_parent, ci->pidns, buf) : 0;
    free(buf);
    return n;
}

/* ---- the instance ---------------------------------------------------------------------------- */

void ct_start(ct_instance *ci, int use_cgroup)
{
    char nonce[9];
    st_random_hex(nonce, 8);
    /* the pid namespace too: a pid means nothing in another one (a container's /proc view) */
    struct stat ns;
    ci->pidns = stat("/proc/self/ns/pid", &ns) == 0 ? (unsigned long)ns.st_ino : 0;
    snprintf(ci->prefix, sizeof(ci->prefix), "st%ld.%lu-%s-", (long)getpid(), ci->pidns, nonce);
    ci->guard = -1;
    ci->guard_fd = -1;
    ci->stale_fd = -1;
    ci->stale_killed = 0;
    ci->open_execs = ci->unclean = 0;
    ci->v2_base[0] = ci->v1_pids_base[0] = '\0';
    char leaf[96];
    snprintf(leaf, sizeof(leaf), "selftest-%ld.%lu-%s", (long)getpid(), ci->pidns, nonce);
    if (use_cgroup && make_base("cgroup2", NULL, leaf, ci->v2_base, sizeof(ci->v2_base)) == 0) {
        char path[CT_PATH + 32];
        snprintf(path, sizeof(path), "%s/cgroup.kill", ci->v2_base);
        ci->v2_kill = access(path, F_OK) == 0;
        char ctl[512];
        if (read_file(ci->v2_base, "cgroup.controllers", ctl, sizeof(ctl)) >= 0) {
            for (char *s2 = NULL, *o = strtok_r(ctl, " \n", &s2); o; o = strtok_r(NULL, " \n", &s2))
                if (strcmp(o, "pids") == 0)
                    ci->v2_pids = write_file(ci->v2_base, "cgroup.subtree_control", "+pids") == 0;
        }
    } else {
        ci->v2_base[0] = '\0';
    }
    if (use_cgroup && !ci->v2_pids &&
        make_base("cgroup", "pids", leaf, ci->v1_pids_base, sizeof(ci->v1_pids_base)) < 0)
        ci->v1_pids_base[0] = '\0';
    snprintf(ci->v2_parent, sizeof(ci->v2_parent), "%s", ci->v2_base);
    snprintf(ci->v1_parent, sizeof(ci->v1_parent), "%s", ci->v1_pids_base);
    char *slash;
    if ((slash = strrchr(ci->v2_parent, '/')) != NULL)
        *slash = '\0';
    if ((slash = strrchr(ci->v1_parent, '/')) != NULL)
        *slash = '\0';
    snprintf(ci->why, sizeof(ci->why), "processes tracked by %s%s%s; process limit by %s",
             ci->v2_base[0] ? "cgroup v2 " : "", ci->v2_base[0] ? ci->v2_base : "",
             ci->v2_base[0] ? " and environment token" : "environment token",
             ci->v2_pids           ? "cgroup v2 pids.max"
             : ci->v1_pids_base[0] ? "cgroup v1 pids.max"
                                   : "RLIMIT_NPROC (per user; not enforced for root)");

    ci->scratch_len = ENVIRON_MAX;
    ci->scratch = malloc(ci->scratch_len + CT_PATH); /* + CT_PATH: sweep_stale's */
    int p[2] = {-1, -1}, r[2] = {-1, -1};
    if (!ci->scratch || pipe2(p, O_CLOEXEC) < 0 || pipe2(r, O_CLOEXEC) < 0)
        goto no_guard;
    long max_fd = sysconf(_SC_OPEN_MAX);
    if (max_fd < 0 || max_fd > 65536)
        max_fd = 65536;
    pid_t pid = fork();
    if (pid == 0) {
        /* the report's write end next to the pipe's read end, where guard_main keeps it */
        if (r[1] != p[0] + 1 && dup2(r[1], p[0] + 1) < 0)
            _exit(1);
        guard_main(ci, p[0], (int)max_fd);
    }
    close(p[0]);
    close(r[1]);
    if (pid < 0) {
        p[0] = r[1] = -1;
        goto no_guard;
    }
    ci->guard = pid;
    ci->guard_fd = p[1];
    ci->stale_fd = r[0];
    return;
no_guard: /* what dead instances left is swept here, before the batches */
    for (int i = 0; i < 2; i++) {
        if (p[i] >= 0)
            close(p[i]);
        if (r[i] >= 0)
            close(r[i]);
    }
    ci->stale_killed = ct_sweep_stale(ci);
}

unsigned ct_stale_killed(ct_instance *ci)
{
    if (ci->stale_fd >= 0) {
        unsigned n = 0;
        ssize_t r;
        do
            r = read(ci->stale_fd, &n, sizeof(n));
        while (r < 0 && errno == EINTR);
        if (r == (ssize_t)sizeof(n))
            ci->stale_killed += n;
        close(ci->stale_fd);
        ci->stale_fd = -1;
    }
    unsigned n = ci->stale_killed;
    ci->stale_killed = 0;
    return n;
}

void ct_stop(ct_instance *ci)
{
    if (ci->stale_fd >= 0) {
        close(ci->stale_fd);
        ci->stale_fd = -1;
    }
    if (ci->guard_fd >= 0) {
        /* every execution closed seen empty: only the cgroups are left to remove */
        if (ci->open_execs == 0 && ci->unclean == 0 && write(ci->guard_fd, "q", 1) < 0) {
            /* then the guard sweeps as after a crash */
        }
        close(ci->guard_fd);
        ci->guard_fd = -1;
    }
    if (ci->guard > 0) {
        while (waitpid(ci->guard, NULL, 0) < 0 && errno == EINTR) {
        }
        ci->guard = -1;
    } else if (ci->scratch) {
        sweep(ci, ci->scratch, ci->scratch_len); /* no guard: do its work here */
    }
    free(ci->scratch);
    ci->scratch = NULL;
}

/* ---- executions ------------------------------------------------------------------------------ */

void ct_exec_open(ct_instance *ci, ct_exec *ce, unsigned long seq, long long max_pids, char *warn,
                  size_t warn_len)
{
    char num[24], limit[24];
    s_ulong(num, seq);
    memset(ce, 0, sizeof(*ce));
    ce->ci = ci;
    __atomic_add_fetch(&ci->open_execs, 1, __ATOMIC_SEQ_CST);
    snprintf(ce->token, sizeof(ce->token), CT_TOKEN_VAR "=%s%s", ci->prefix, num);
    warn[0] = '\0';
    if (max_pids > 0)
        s_ulong(limit, (unsigned long)max_pids);
    if (ci->v2_base[0]) {
        s_cat(ce->v2, sizeof(ce->v2), ci->v2_base, "/x", num);
        if (mkdir(ce->v2, 0755) < 0) {
            snprintf(warn, warn_len, "cannot create the cgroup %s: %s", ce->v2, strerror(errno));
            ce->v2[0] = '\0';
        } else if (ci->v2_pids && max_pids > 0) {
            if (write_file(ce->v2, "pids.max", limit) == 0)
                ce->pids_max = max_pids;
            else
                snprintf(warn, warn_len, "cannot set %s/pids.max: %s", ce->v2, strerror(errno));
        }
    }
    if (ci->v1_pids_base[0] && max_pids > 0 && !ce->pids_max) {
        s_cat(ce->v1, sizeof(ce->v1), ci->v1_pids_base, "/x", num);
        if (mkdir(ce->v1, 0755) < 0) {
            snprintf(warn, warn_len, "cannot create the cgroup %s: %s", ce->v1, strerror(errno));
            ce->v1[0] = '\0';
        } else if (write_file(ce->v1, "pids.max", limit) == 0) {
            ce->pids_max = max_pids;
        } else {
            snprintf(warn, warn_len, "cannot set %s/pids.max: %s", ce->v1, strerror(errno));
        }
    }
}

int ct_exec_join(const ct_exec *ce, pid_t pid, int in_v2, char *err, size_t err_len)
{
    char num[24];
    s_ulong(num, (unsigned long)pid);
    const char *dirs[2] = {in_v2 ? "" : ce->v2, ce->v1};
    for (int i = 0; i < 2; i++)
        if (dirs[i][0] && write_file(dirs[i], "cgroup.procs", num) < 0) {
            snprintf(err, err_len, "cannot move pid %ld into the cgroup %s: %s", (long)pid,
                     dirs[i], strerror(errno));
            return -1;
        }
    return 0;
}

long long ct_exec_pids_refused(const ct_exec *ce)
{
    const char *dir = ce->v1[0] ? ce->v1 : ce->v2;
    char buf[256];
    if (!ce->pids_max || read_file(dir, "pids.events", buf, sizeof(buf)) < 0)
        return 0;
    const char *p = strstr(buf, "max ");
    return p ? strtoll(p + 4, NULL, 10) : 0;
}


size_t ct_exec_members(const ct_instance *ci, const ct_exec *ce, pid_t except, pid_t *out,
                       size_t cap)
{
    size_t n = 0;
    char *buf = malloc(ENVIRON_MAX);
    if (!buf)
        return 0;
    pid_t found[256];
    size_t nf = token_scan(ce->token, 1, buf, ENVIRON_MAX, except, 0, found, 256);
    if (nf > 256)
        nf = 256;
    if (ce->v2[0] && read_file(ce->v2, "cgroup.procs", buf, ENVIRON_MAX) >= 0) {
        for (char *p = buf; *p && nf < 256;) {
            pid_t pid = (pid_t)parse_pid(p);
            int dup = pid == except || pid <= 0;
            for (size_t i = 0; i < nf && !dup; i++)
                dup = found[i] == pid;
            if (!dup)
                found[nf++] = pid;
            while (*p && *p != '\n')
                p++;
            while (*p == '\n')
                p++;
        }
    }
    (void)ci;
    for (size_t i = 0; i < nf; i++)
        if (!is_zombie(found[i])) {
            if (n < cap)
                out[n] = found[i];
            n++;
        }
    free(buf);
    return n;
}

void ct_exec_mark_clear(ct_exec *ce)
{
    ce->clear = 1;
}

void ct_exec_kill(const ct_instance *ci, ct_exec *ce)
{
    if (ce->clear)
        return;
    char *buf = malloc(ENVIRON_MAX);
    if (!buf)
        return;
    for (int round = 0; round < 150; round++) {
        if (ce->v2[0] && (!ci->v2_kill || write_file(ce->v2, "cgroup.kill", "1") < 0))
            kill_procs_file(ce->v2, buf, ENVIRON_MAX);
        if (ce->v1[0])
            kill_procs_file(ce->v1, buf, ENVIRON_MAX);
        token_scan(ce->token, 1, buf, ENVIRON_MAX, -1, 1, NULL, 0);
        pid_t any[1];
        if (ct_exec_members(ci, ce, -1, any, 1) == 0) {
            ce->clear = 1;
            break;
        }
        nap_ms(20);
    }
    free(buf);
}

void ct_exec_close(ct_exec *ce)
{
    int left = !ce->clear;
    char *dirs[2] = {ce->v2, ce->v1};
    for (int i = 0; i < 2; i++) {
        if (!dirs[i][0])
            continue;
        int t = 0;
        while (t < 100 && rmdir(dirs[i]) < 0 && errno == EBUSY) {
            nap_ms(10);
            t++;
        }
        left |= t == 100;
        dirs[i][0] = '\0';
    }
    if (ce->ci) {
        if (left)
            __atomic_add_fetch(&ce->ci->unclean, 1, __ATOMIC_SEQ_CST);
        __atomic_sub_fetch(&ce->ci->open_execs, 1, __ATOMIC_SEQ_CST);
        ce->ci = NULL;
    }
}
