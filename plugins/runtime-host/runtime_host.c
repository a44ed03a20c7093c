/* SPDX-License-Identifier: MIT */
/* runtime-host: runs each batch or orphan check as a child process in its own process group,
 * argv only (never a shell), with its output captured and its timeout enforced (SIGTERM to the
 * group, SIGKILL after the grace period). Every process an execution starts is found and stopped
 * when it ends, and when the core dies (contain.h); resource limits per batch and per orphan
 * check. Not a security boundary: see docs. */
#include "config.h"

#include "contain.h"

#include <selftest/plugin.h>

#include "st_settings.h"
#include "st_time.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_LINUX_SCHED_H
#include <linux/sched.h> /* struct clone_args, CLONE_INTO_CGROUP */
#endif

extern char **environ;

typedef struct running {
    char *id;
    pid_t pgid;
    int cancel_wr; /* write end of the execution's cancel pipe */
    int cancelled;
    struct running *next;
} running;

/* Limits of one kind of execution; 0 = none (inherited). */
typedef struct limits {
    long long memory_mb;    /* RLIMIT_AS of each process */
    long long open_files;   /* RLIMIT_NOFILE */
    long long processes;    /* pids.max of the execution's cgroup (RLIMIT_NPROC without one) */
    long long cpu_seconds;  /* RLIMIT_CPU of each process */
    long long file_size_mb; /* RLIMIT_FSIZE: the largest file a process may write */
    long long output_mb;    /* stdout + stderr read back before the execution is stopped */
} limits;

typedef struct host_rt {
    const st_host *host;
    st_instance *self;
    pthread_mutex_t lock;
    running *list;
    limits batch, sandbox; /* test batches (and the preflight); orphan checks */
    int use_cgroup;
    unsigned long seq;     /* executions so far (under lock) */
    ct_instance ct;
    int started;
    int warned_nproc;
} host_rt;

#define N_LIMITS 6
static const char *const limit_names[N_LIMITS] = {"memory_mb",    "open_files",   "processes",
                                                  "cpu_seconds", "file_size_mb", "output_mb"};

static long long *limit_field(limits *l, size_t i)
{
    long long *f[N_LIMITS] = {&l->memory_mb,   &l->open_files,   &l->processes,
                              &l->cpu_seconds, &l->file_size_mb, &l->output_mb};
    return f[i];
}

static const char *const known_keys[] = {
    "cgroup",
    "batch_memory_mb", "batch_open_files", "batch_processes", "batch_cpu_seconds",
    "batch_file_size_mb", "batch_output_mb",
    "sandbox_memory_mb", "sandbox_open_files", "sandbox_processes", "sandbox_cpu_seconds",
    "sandbox_file_size_mb", "sandbox_output_mb", NULL};

static int host_create(const st_host *host, st_instance *self, const st_config_node *cfg,
                       void **out)
{
    host_rt *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return ST_ERR_NOMEM;
    rt->host = host;
    rt->self = self;
    rt->batch = (limits){.memory_mb = 0, .open_files = 0, .processes = 4096, .cpu_seconds = 0,
                         .file_size_mb = 1024, .output_mb = 64};
    rt->sandbox = (limits){.memory_mb = 2048, .open_files = 256, .processes = 256,
                           .cpu_seconds = 0, .file_size_mb = 64, .output_mb = 16};
    rt->use_cgroup = 1;
    rt->ct.guard = -1;
    rt->ct.guard_fd = -1;
    pthread_mutex_init(&rt->lock, NULL);
    if (st_check_settings(host, self, cfg, known_keys, NULL) != ST_OK)
        goto invalid;
    if (host->cfg_bool(self, cfg, "cgroup", &rt->use_cgroup) < 0)
        goto invalid;
    for (int kind = 0; kind < 2; kind++) {
        limits *l = kind ? &rt->sandbox : &rt->batch;
        for (size_t i = 0; i < N_LIMITS; i++) {
            char key[64];
            snprintf(key, sizeof(key), "%s_%s", kind ? "sandbox" : "batch", limit_names[i]);
            long long *f = limit_field(l, i);
            if (host->cfg_int(self, cfg, key, f) < 0)
                goto invalid;
            /* each limit is converted to bytes or counts below: keep it far from overflow */
            if (*f < 0 || *f > (1LL << 40)) {
                host->log(self, ST_LOG_ERROR, "%s: must be between 0 and %lld (0 = no limit)",
                          host->cfg_where(self, cfg, key), 1LL << 40);
                goto invalid;
            }
        }
    }
    *out = rt;
    return ST_OK;
invalid:
    pthread_mutex_destroy(&rt->lock);
    free(rt);
    return ST_ERR_INVALID;
}

static int host_start(void *ctx)
{
    host_rt *rt = ctx;
    if (rt->started)
        return ST_OK;
    ct_start(&rt->ct, rt->use_cgroup);
    rt->started = 1;
    rt->host->log(rt->self, ST_LOG_DEBUG, "%s; guard process %ld", rt->ct.why,
                  (long)rt->ct.guard);
    if (rt->ct.guard < 0)
        rt->host->log(rt->self, ST_LOG_WARNING, "cannot start the guard process: processes of "
                      "the batches may outlive a killed selftest-core");
    return ST_OK;
}

static void log_stale(host_rt *rt);

static int host_stop(void *ctx)
{
    host_rt *rt = ctx;
    if (rt->started) {
        log_stale(rt);
        ct_stop(&rt->ct);
        rt->started = 0;
    }
    return ST_OK;
}

static void host_destroy(void *ctx)
{
    host_rt *rt = ctx;
    if (!rt)
        return;
    host_stop(rt);
    pthread_mutex_destroy(&rt->lock);
    free(rt);
}

/* ---- environment ---------------------------------------------------------------------------- */

/* The process environment with the request's variables replacing same-named ones. */
static char **build_env(const char *const *extra)
{
    size_t n = 0, m = 0;
    while (environ[n])
        n++;
    while (extra && extra[m])
        m++;
    char **env = calloc(n + m + 1, sizeof(*env));
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t len = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int replaced = 0;
        for (size_t j = 0; j < m && !replaced; j++)
            replaced = strncmp(extra[j], environ[i], len) == 0 && extra[j][len] == '=';
        if (!replaced)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++)
        env[k++] = (char *)extra[j];
    env[k] = NULL;
    return env;
}

/* The core tells a signal from a process it started (a test that sends SIGTERM to its parent)
 * from the operator's by finding the sender among its descendants in /proc when the handler
 * runs. The thread the kernel chose for the signal may not run before the execution ends (a
 * loaded machine, an uninterruptible wait): reaping the leader first would remove the sender
 * from /proc and make the test's signal look like the operator's. Unblocking a pending signal
 * delivers it before pthread_sigmask returns (POSIX), so blocking and unblocking the stop and
 * reload signals here runs any pending handler in this thread, while the leader is still a
 * zombie child of this process. */
static void take_pending_signals(void)
{
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &stop, &old) == 0)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* ---- the child ------------------------------------------------------------------------------ */

typedef struct child_setup {
    const st_exec_request *req;
    char *const *envp;
    const char *cwd;
    int out_wr, err_wr, err_pipe_wr, go_rd;
    int gate_after_exec; /* the program waits for go itself (START_GATE_FD), not the child */
    int subreaper;       /* made a child subreaper before exec (the bundled plugin) */
    struct rlimit as, nofile, nproc, cpu, fsize;
} child_setup;

/* The start gate. Moving a process into a cgroup v1 hierarchy waits for the kernel's
 * synchronisation of cgroup migrations (8-15 ms here, a whole sub-second suite's margin). A
 * program that says it reads the gate (SELF_TEST_START_GATE=yes in the request: the bundled
 * pytest plugin and the orphan check server, before any code of the project runs) is started at
 * once, with the gate's read end as START_GATE_FD, while the runtime moves it; it reads one
 * byte from the gate before going on. Anything else waits in the child, before exec, as
 * before. The cgroup v2 move costs nothing: the child starts in its cgroup (clone3). */
#define START_GATE_VAR "SELF_TEST_START_GATE"
#define START_GATE_FD 3
static const char gate_env_fd[] = START_GATE_VAR "=fd:3";
static const char gate_env_none[] = START_GATE_VAR "=";

/* The same programs keep whatever their tests start as their descendants
 * (PR_SET_CHILD_SUBREAPER, kept across exec): set here, in the child, and said by SUBREAPER_VAR,
 * the plugin need not load ctypes to set it itself (a millisecond of every batch). Any other
 * program is left as it is: one that never waits for its children would collect zombies. */
#define SUBREAPER_VAR "SELF_TEST_SUBREAPER"
static const char subreaper_env_yes[] = SUBREAPER_VAR "=yes";
static const char subreaper_env_none[] = SUBREAPER_VAR "=";

/* Runs in the forked child: only async-signal-safe calls until exec. */
static void child_exec(const child_setup *cs) __attribute__((noreturn));
static void child_exec(const child_setup *cs)
{
    int e;
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (cs->subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        goto fail; /* not on Linux before 3.4, which cannot run this runtime anyway */
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    int gate = -1;
    if (cs->gate_after_exec) {
        /* out of the way of the standard descriptors; F_DUPFD leaves FD_CLOEXEC off */
        gate = fcntl(cs->go_rd, F_DUPFD, 10);
        if (gate < 0)
            goto fail;
    } else {
        /* Wait until the parent has put this process in the execution's cgroups. */
        char go;
        ssize_t g;
        do
            g = read(cs->go_rd, &go, 1);
        while (g < 0 && errno == EINTR);
        if (g != 1)
            _exit(127); /* the parent gave up */
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(cs->out_wr, 1) < 0 || dup2(cs->err_wr, 2) < 0)
        goto fail;
    if (gate >= 0 && (dup2(gate, START_GATE_FD) < 0 || close(gate) < 0))
        goto fail;
    if (chdir(cs->cwd) < 0)
        goto fail;
    if ((cs->as.rlim_cur && setrlimit(RLIMIT_AS, &cs->as) < 0) ||
        (cs->nofile.rlim_cur && setrlimit(RLIMIT_NOFILE, &cs->nofile) < 0) ||
        (cs->cpu.rlim_cur && setrlimit(RLIMIT_CPU, &cs->cpu) < 0) ||
        (cs->fsize.rlim_cur && setrlimit(RLIMIT_FSIZE, &cs->fsize) < 0) ||
        (cs->nproc.rlim_cur && setrlimit(RLIMIT_NPROC, &cs->nproc) < 0))
        goto fail;
    execvpe(cs->req->argv[0], (char *const *)cs->req->argv, cs->envp);
fail:
    e = errno;
    if (write(cs->err_pipe_wr, &e, sizeof(e)) < 0) {
        /* nothing more can be done */
    }
    _exit(127);
}

/* ---- execute -------------------------------------------------------------------------------- */

/* fork(), the child started in the cgroup v2 directory dir (when not "") with clone3's
 * CLONE_INTO_CGROUP (Linux 5.7): no migration to wait for. *in_v2 says whether it was; else
 * (an older kernel, a directory it refuses) a plain fork, and the parent moves the child. */
static pid_t spawn_into(const char *dir, int *in_v2)
{
    *in_v2 = 0;
#if defined(SYS_clone3) && defined(CLONE_INTO_CGROUP)
    int cfd = dir[0] ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (cfd >= 0) {
        struct clone_args ca;
        memset(&ca, 0, sizeof(ca));
        ca.flags = CLONE_INTO_CGROUP;
        ca.exit_signal = SIGCHLD;
        ca.cgroup = (unsigned long long)cfd;
        long r = syscall(SYS_clone3, &ca, sizeof(ca));
        if (r >= 0) {
            if (r > 0) {
                close(cfd);
                *in_v2 = 1;
            }
            return (pid_t)r; /* the child: only async-signal-safe calls follow, until exec */
        }
        close(cfd);
    }
#else
    (void)dir;
#endif
    return fork();
}

static int pidfd_open_compat(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}


static void register_running(host_rt *rt, running *r)
{
    pthread_mutex_lock(&rt->lock);
    r->next = rt->list;
    rt->list = r;
    pthread_mutex_unlock(&rt->lock);
}

/* What the guard's first sweep stopped (it runs while the first batches start), said once:
 * after the first execution (a daemon runs for long), else when the runtime stops. Called with
 * rt->lock held, or from the only thread. */
static void log_stale(host_rt *rt)
{
    unsigned n = ct_stale_killed(&rt->ct);
    if (n)
        rt->host->log(rt->self, ST_LOG_WARNING, "stopped %u process%s left running by a "
                      "selftest-core that died", n, n == 1 ? "" : "es");
}

static void unregister_running(host_rt *rt, running *r)
{
    pthread_mutex_lock(&rt->lock);
    for (running **p = &rt->list; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    log_stale(rt);
    pthread_mutex_unlock(&rt->lock);
}

static int host_cancel(void *ctx, const char *id)
{
    host_rt *rt = ctx;
    pthread_mutex_lock(&rt->lock);
    for (running *r = rt->list; r; r = r->next) {
        if (strcmp(r->id, id) == 0 && !r->cancelled) {
            r->cancelled = 1;
            char c = 'x';
            if (write(r->cancel_wr, &c, 1) < 0) {
                /* the pipe is full or closed: a cancel is already pending */
            }
        }
    }
    pthread_mutex_unlock(&rt->lock);
    return ST_OK;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

typedef struct output_meter {
    const st_exec_sink *sink;
    unsigned long long total, cap; /* cap 0 = none */
} output_meter;

/* seconds between two reads of an execution's output, and between two reads of its process
 * limit's counter (see the wait loop): four wakeups a second at most while it runs */
#define OUTPUT_READ_INTERVAL 0.25
#define PIDS_CHECK_INTERVAL 0.25

/* Reads what is available from *fd into the sink; closes it at EOF. Past the output cap the
 * bytes are read and dropped (so the writer does not block), and the caller stops the
 * execution. */
static void pump(int *fd, st_stream stream, output_meter *m)
{
    char buf[65536];
    for (int rounds = 0; rounds < 64; rounds++) {
        ssize_t n = read(*fd, buf, sizeof(buf));
        if (n > 0) {
            size_t pass = (size_t)n;
            if (m->cap && m->total + pass > m->cap)
                pass = m->total < m->cap ? (size_t)(m->cap - m->total) : 0;
            m->total += (unsigned long long)n;
            if (pass && m->sink && m->sink->output)
                m->sink->output(m->sink->opaque, stream, buf, pass);
            if ((size_t)n < sizeof(buf))
                return;
            continue;
        }
        if (n < 0 && (errno == EINTR))
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        close_fd(fd);
        return;
    }
}

static void set_limit(st_exec_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_limit(st_exec_result *res, const char *fmt, ...)
{
    if (!ST_EXEC_RESULT_HAS(res, limit) || res->limit[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->limit, sizeof(res->limit), fmt, ap);
    va_end(ap);
}

/* Has the execution's process limit refused a fork? Then the limit is the result's. */
static int pids_limit_hit(const ct_exec *ce, st_exec_result *res, int sandboxed)
{
    long long refused = ct_exec_pids_refused(ce);
    if (refused <= 0)
        return 0;
    set_limit(res, "process limit: %lld processes reached, %lld fork%s refused (%s_processes)",
              ce->pids_max, refused, refused == 1 ? "" : "s", sandboxed ? "sandbox" : "batch");
    return 1;
}

/* "pid 12: python3 -c ..." for the first few pids, for the log. */
static void describe_pids(const pid_t *pids, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && i < 4 && k + 1 < cap; i++) {
        char path[64], cmd[120] = "";
        snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pids[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t r = read(fd, cmd, sizeof(cmd) - 1);
            close(fd);
            for (ssize_t j = 0; j < r; j++)
                if (cmd[j] == '\0' || cmd[j] == '\n')
                    cmd[j] = ' ';
            while (r > 0 && cmd[r - 1] == ' ')
                r--;
            cmd[r > 0 ? r : 0] = '\0';
        }
        int w = snprintf(out + k, cap - k, "%spid %ld (%s)", i ? ", " : "", (long)pids[i],
                         cmd[0] ? cmd : "?");
        if (w < 0)
            break;
        k += (size_t)w < cap - k ? (size_t)w : cap - k - 1;
    }
    if (n > 4 && k + 6 < cap)
        snprintf(out + k, cap - k, ", ...");
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type == FTW_DNR) /* a directory the module made unreadable: open it up, then retry */
        return chmod(path, 0700) == 0 && nftw(path, remove_entry, 32, FTW_DEPTH | FTW_PHYS) == 0
                   ? 0
                   : -1;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static rlim_t mb_bytes(long long mb)
{
    return (rlim_t)mb * 1024 * 1024;
}

static int host_execute(void *ctx, const st_exec_request *req, const st_exec_sink *sink,
                        st_exec_result *res)
{
    host_rt *rt = ctx;
    int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, exec_p[2] = {-1, -1}, cancel_p[2] = {-1, -1};
    int go_p[2] = {-1, -1};
    int pidfd = -1;
    char **envp = NULL;
    char *sandbox_dir = NULL;
    running reg = {0};
    int rc = ST_OK;
    double start = st_monotonic();
    pid_t pid = -1;
    ct_exec ce;
    int ce_open = 0;
    const char **env_in = NULL;
    const limits *lim = req->sandboxed ? &rt->sandbox : &rt->batch;
    output_meter meter = {sink, 0, (unsigned long long)lim->output_mb * 1024 * 1024};

    pthread_mutex_lock(&rt->lock);
    if (!rt->started)
        host_start(rt); /* a host that never called start(): contain anyway */
    unsigned long seq = ++rt->seq;
    pthread_mutex_unlock(&rt->lock);
    char warn[600];
    ct_exec_open(&rt->ct, &ce, seq, lim->processes, warn, sizeof(warn));
    ce_open = 1;
    if (warn[0])
        rt->host->log(rt->self, ST_LOG_WARNING, "%s: %s", req->label, warn);
    int warn_nproc = 0;
    if (lim->processes && !ce.pids_max && getuid() == 0) {
        pthread_mutex_lock(&rt->lock);
        warn_nproc = !rt->warned_nproc;
        rt->warned_nproc = 1;
        pthread_mutex_unlock(&rt->lock);
    }
    if (warn_nproc)
        rt->host->log(rt->self, ST_LOG_WARNING, "no pids cgroup available: the process limit "
                      "(%s_processes = %lld) is not enforced for root",
                      req->sandboxed ? "sandbox" : "batch", lim->processes);

    /* the request's environment plus the token that marks every process of this execution */
    size_t n_env = 0;
    while (req->env && req->env[n_env])
        n_env++;
    env_in = calloc(n_env + 4, sizeof(*env_in));
    if (pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0 ||
        pipe2(exec_p, O_CLOEXEC) < 0 || pipe2(cancel_p, O_CLOEXEC | O_NONBLOCK) < 0 ||
        pipe2(go_p, O_CLOEXEC) < 0) {
        snprintf(res->error, sizeof(res->error), "cannot create pipes: %s", strerror(errno));
        goto infra;
    }
    /* the gate after exec: asked for by the program, and worth it only for a v1 move */
    int gate_asked = 0;
    for (size_t i = 0; i < n_env; i++)
        gate_asked |= strcmp(req->env[i], START_GATE_VAR "=yes") == 0;
    int gate_after_exec = gate_asked && ce.v1[0];
    if (env_in) {
        size_t k = 0;
        for (size_t i = 0; i < n_env; i++)
            if (strncmp(req->env[i], START_GATE_VAR "=", sizeof(START_GATE_VAR)) != 0 &&
                strncmp(req->env[i], SUBREAPER_VAR "=", sizeof(SUBREAPER_VAR)) != 0)
                env_in[k++] = req->env[i];
        env_in[k++] = ce.token;
        /* never inherited ones */
        env_in[k++] = gate_after_exec ? gate_env_fd : gate_env_none;
        env_in[k++] = gate_asked ? subreaper_env_yes : subreaper_env_none;
        envp = build_env(env_in);
    }
    if (!envp) {
        snprintf(res->error, sizeof(res->error), "out of memory");
        goto infra;
    }
    child_setup cs = {.req = req, .envp = envp, .cwd = req->workdir, .out_wr = out_p[1],
                      .err_wr = err_p[1], .err_pipe_wr = exec_p[1], .go_rd = go_p[0],
                      .gate_after_exec = gate_after_exec, .subreaper = gate_asked};
    if (req->sandboxed) {
        const char *tmp = getenv("TMPDIR");
        char tmpl[4096];
        /* named with our pid: the core removes it after a crash (st_remove_stale_workdirs) */
        snprintf(tmpl, sizeof(tmpl), "%s/selftest-sandbox-%ld-XXXXXX", tmp && *tmp ? tmp : "/tmp",
                 (long)getpid());
        if (!mkdtemp(tmpl)) {
            snprintf(res->error, sizeof(res->error), "cannot create a sandbox dir: %s",
                     strerror(errno));
            goto infra;
        }
        sandbox_dir = strdup(tmpl);
        cs.cwd = sandbox_dir;
    }
    cs.as.rlim_cur = cs.as.rlim_max = mb_bytes(lim->memory_mb);
    cs.nofile.rlim_cur = cs.nofile.rlim_max = (rlim_t)lim->open_files;
    cs.fsize.rlim_cur = cs.fsize.rlim_max = mb_bytes(lim->file_size_mb);
    if (lim->cpu_seconds) {
        cs.cpu.rlim_cur = cs.cpu.rlim_max = (rlim_t)lim->cpu_seconds;
    } else if (req->sandboxed) {
        cs.cpu.rlim_cur = (rlim_t)(req->timeout_s + 1);
        cs.cpu.rlim_max = (rlim_t)(req->timeout_s + 5);
    }
    /* RLIMIT_NPROC counts every process of the user: only a stand-in without a pids cgroup, and
     * root ignores it */
    if (lim->processes && !ce.pids_max && getuid() != 0)
        cs.nproc.rlim_cur = cs.nproc.rlim_max = (rlim_t)lim->processes;
    int in_v2 = 0;
    pid = spawn_into(ce.v2, &in_v2);
    if (pid < 0) {
        snprintf(res->error, sizeof(res->error), "cannot fork: %s", strerror(errno));
        goto infra;
    }
    if (pid == 0)
        child_exec(&cs);
    setpgid(pid, pid); /* also in the parent, so a kill of the group cannot race the child */
    close_fd(&go_p[0]);
    close_fd(&out_p[1]);
    close_fd(&err_p[1]);
    close_fd(&exec_p[1]);
    char jerr[600];
    if (ct_exec_join(&ce, pid, in_v2, jerr, sizeof(jerr)) < 0)
        rt->host->log(rt->self, ST_LOG_WARNING, "%s: %s (its processes are still tracked by "
                      "their environment)", req->label, jerr);
    char go = 'g';
    if (write(go_p[1], &go, 1) != 1) {
        /* the child died: the exec pipe says so */
    }
    close_fd(&go_p[1]);
    reg.id = (char *)req->id;
    reg.pgid = pid;
    reg.cancel_wr = cancel_p[1];
    register_running(rt, &reg);

    /* Did exec work? The pipe closes on exec (EOF) or carries errno. */
    int exec_errno = 0;
    ssize_t got;
    do
        got = read(exec_p[0], &exec_errno, sizeof(exec_errno));
    while (got < 0 && errno == EINTR);
    close_fd(&exec_p[0]);
    if (got == (ssize_t)sizeof(exec_errno)) {
        waitpid(pid, NULL, 0);
        unregister_running(rt, &reg);
        snprintf(res->error, sizeof(res->error), "cannot execute '%s': %s", req->argv[0],
                 strerror(exec_errno));
        goto infra;
    }
    fcntl(out_p[0], F_SETFL, O_NONBLOCK);
    fcntl(err_p[0], F_SETFL, O_NONBLOCK);
#ifdef F_SETPIPE_SZ
    /* room for the output between two reads; the default (64 KiB) where the system refuses */
    fcntl(out_p[0], F_SETPIPE_SZ, 1 << 20);
    fcntl(err_p[0], F_SETPIPE_SZ, 1 << 20);
#endif
    pidfd = pidfd_open_compat(pid);

    double deadline = start + req->timeout_s;
    double kill_at = 0; /* when SIGKILL follows the SIGTERM */
    double grace = req->kill_grace_s > 0 ? req->kill_grace_s : 5;
    int exited = 0, limited = 0;
    double next_pids_check = 0; /* when the process limit's counter is read next */
    double next_read = 0;       /* when the output pipes are read next */
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    while (!exited) {
        struct pollfd pfd[4];
        int n = 0;
        int i_out = -1, i_err = -1, i_cancel = -1, i_pid = -1;
        double now = st_monotonic();
        /* The output is read at most every OUTPUT_READ_INTERVAL (four times a second): pytest
         * writes its progress a test at a time, and waking for each write cost the core more
         * CPU than everything else it does in a run. The pipes hold 1 MiB meanwhile; the
         * exit, a cancel and the deadline still wake the loop at once. */
        int reading = now >= next_read;
        if (out_p[0] >= 0 && reading)
            pfd[i_out = n++] = (struct pollfd){out_p[0], POLLIN, 0};
        if (err_p[0] >= 0 && reading)
            pfd[i_err = n++] = (struct pollfd){err_p[0], POLLIN, 0};
        pfd[i_cancel = n++] = (struct pollfd){cancel_p[0], POLLIN, 0};
        if (pidfd >= 0)
            pfd[i_pid = n++] = (struct pollfd){pidfd, POLLIN, 0}; /* wakes the loop when the child exits */
        double next = kill_at ? kill_at : deadline;
        int wait_ms = next > now ? (int)((next - now) * 1000) + 1 : 0;
        if (pidfd < 0 && wait_ms > 100)
            wait_ms = 100; /* no pidfd: poll the child */
        if (ce.pids_max && wait_ms > (int)(PIDS_CHECK_INTERVAL * 1000))
            wait_ms = (int)(PIDS_CHECK_INTERVAL * 1000); /* a process limit: watch it */
        if (!reading && (out_p[0] >= 0 || err_p[0] >= 0)) {
            int until_read = (int)((next_read - now) * 1000) + 1;
            if (wait_ms > until_read)
                wait_ms = until_read;
        }
        int pr = poll(pfd, (nfds_t)n, wait_ms);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr > 0) {
            int read_any = 0;
            if (i_out >= 0 && pfd[i_out].revents) {
                pump(&out_p[0], ST_STREAM_STDOUT, &meter);
                read_any = 1;
            }
            if (i_err >= 0 && pfd[i_err].revents) {
                pump(&err_p[0], ST_STREAM_STDERR, &meter);
                read_any = 1;
            }
            if (read_any)
                next_read = st_monotonic() + OUTPUT_READ_INTERVAL;
            if (pfd[i_cancel].revents && !kill_at) {
                char drain[16];
                while (read(cancel_p[0], drain, sizeof(drain)) > 0) {
                }
                res->cancelled = 1;
                kill(-pid, SIGTERM);
                kill_at = st_monotonic() + grace;
            }
        }
        /* Has the leader exited? Look without reaping, so its pid (and so the group id) cannot
         * be reused before the rest of the group is killed. With a pidfd, only when it says so
         * or the wait timed out (not at every write of the output). */
        memset(&info, 0, sizeof(info));
        int look = i_pid < 0 || pr <= 0 || pfd[i_pid].revents;
        if (look && waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
            info.si_pid == pid)
            exited = 1;
        /* A resource limit stops the whole execution at once. */
        if (!limited && meter.cap && meter.total > meter.cap) {
            limited = 1;
            set_limit(res, "output limit: more than %lld MB on stdout and stderr (%s_output_mb)",
                      lim->output_mb, req->sandboxed ? "sandbox" : "batch");
        }
        /* the process limit's counter, about every PIDS_CHECK_INTERVAL (at a wakeup that
         * comes anyway: a read of the output, or the wait's cap above), and when it has ended
         * (a fork refused since the last read still names the failure) */
        if (!limited && ce.pids_max && (exited || st_monotonic() >= next_pids_check)) {
            limited = pids_limit_hit(&ce, res, req->sandboxed);
            next_pids_check = st_monotonic() + 0.8 * PIDS_CHECK_INTERVAL;
        }
        if (limited == 1) {
            limited = 2;
            rt->host->log(rt->self, ST_LOG_WARNING, "%s: %s; stopping it", req->label,
                          ST_EXEC_RESULT_HAS(res, limit) ? res->limit : "resource limit");
            kill(-pid, SIGKILL);
            ct_exec_kill(&rt->ct, &ce);
        }
        now = st_monotonic();
        if (!exited && !kill_at && now >= deadline) {
            res->timed_out = 1;
            rt->host->log(rt->self, ST_LOG_WARNING, "%s: timeout after %gs, stopping process group %d",
                          req->label, req->timeout_s, (int)pid);
            kill(-pid, SIGTERM);
            kill_at = now + grace;
        } else if (!exited && kill_at && now >= kill_at) {
            kill(-pid, SIGKILL);
            ct_exec_kill(&rt->ct, &ce);
            kill_at = now + 3600; /* SIGKILL cannot be ignored; just wait */
        }
    }
    /* Leave nothing behind: whatever the execution started, wherever it went. Processes still
     * running a moment after the main one exited are counted as left behind. */
    kill(-pid, SIGKILL);
    if (!limited && !kill_at) {
        pid_t left[64];
        size_t n_left = 0;
        for (int t = 0; t < 10; t++) {
            n_left = ct_exec_members(&rt->ct, &ce, pid, left, 64);
            if (n_left == 0) {
                /* the leader has exited (a zombie until reaped below) and nothing else of the
                 * execution runs: the kills below need not scan /proc again */
                ct_exec_mark_clear(&ce);
                break;
            }
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (n_left) {
            char what[600];
            describe_pids(left, n_left < 64 ? n_left : 64, what, sizeof(what));
            rt->host->log(rt->self, ST_LOG_WARNING, "%s: %zu process%s still running after "
                          "the main process exited; stopped: %s", req->label, n_left,
                          n_left == 1 ? "" : "es", what);
            if (ST_EXEC_RESULT_HAS(res, leftover))
                res->leftover = (unsigned)n_left;
        }
    }
    ct_exec_kill(&rt->ct, &ce);
    double drain_until = st_monotonic() + 2;
    while ((out_p[0] >= 0 || err_p[0] >= 0) && st_monotonic() < drain_until) {
        struct pollfd pfd[2];
        int n = 0, i_out = -1, i_err = -1;
        if (out_p[0] >= 0)
            pfd[i_out = n++] = (struct pollfd){out_p[0], POLLIN, 0};
        if (err_p[0] >= 0)
            pfd[i_err = n++] = (struct pollfd){err_p[0], POLLIN, 0};
        if (poll(pfd, (nfds_t)n, 100) <= 0)
            continue;
        if (i_out >= 0 && pfd[i_out].revents)
            pump(&out_p[0], ST_STREAM_STDOUT, &meter);
        if (i_err >= 0 && pfd[i_err].revents)
            pump(&err_p[0], ST_STREAM_STDERR, &meter);
    }
    take_pending_signals();
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    unregister_running(rt, &reg);
    if (WIFEXITED(status)) {
        res->exited = 1;
        res->exit_status = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        res->term_signal = WTERMSIG(status);
    }
    res->wall_s = st_monotonic() - start;
    goto out;

infra:
    res->infra_error = 1;
    res->wall_s = st_monotonic() - start;
    rc = ST_ERR_UNAVAILABLE;
    /* the detail travels in res->error; the core reports it once, with its context */
    rt->host->log(rt->self, ST_LOG_DEBUG, "%s: %s", req->label, res->error);
out:
    if (ce_open) {
        ct_exec_kill(&rt->ct, &ce);
        ct_exec_close(&ce);
    }
    close_fd(&out_p[0]);
    close_fd(&out_p[1]);
    close_fd(&err_p[0]);
    close_fd(&err_p[1]);
    close_fd(&exec_p[0]);
    close_fd(&exec_p[1]);
    close_fd(&cancel_p[0]);
    close_fd(&cancel_p[1]);
    close_fd(&go_p[0]);
    close_fd(&go_p[1]);
    close_fd(&pidfd);
    free(envp);
    free(env_in);
    if (sandbox_dir) {
        /* The module may have written files: remove the whole dir (nothing runs in it any
         * more: every process of the execution is gone). */
        if (nftw(sandbox_dir, remove_entry, 32, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
            rt->host->log(rt->self, ST_LOG_WARNING, "%s: cannot remove the sandbox dir %s: %s",
                          req->label, sandbox_dir, strerror(errno));
        free(sandbox_dir);
    }
    return rc;
}

/* `selftest-core cleanup`: what selftest-core processes that died (and their guards with them)
 * left running. Age does not matter: a process whose selftest-core is gone is stale. */
static int host_cleanup_stale(void *ctx, double max_age_s, st_cleanup_report *report)
{
    host_rt *rt = ctx;
    (void)max_age_s;
    pthread_mutex_lock(&rt->lock);
    if (!rt->started)
        host_start(rt);
    unsigned n = ct_stale_killed(&rt->ct); /* the guard's sweep at start, then one more */
    n += ct_sweep_stale(&rt->ct);
    pthread_mutex_unlock(&rt->lock);
    report->listed = report->removed = n;
    report->failed = 0;
    return ST_OK;
}

static const st_runtime_ops host_ops = {
    .struct_size = sizeof(st_runtime_ops),
    .life = {.create = host_create, .start = host_start, .stop = host_stop,
             .destroy = host_destroy},
    .execute = host_execute,
    .cancel = host_cancel,
    .cleanup_stale = host_cleanup_stale,
    .runtime_name = "host",
};

static const st_plugin_descriptor host_descriptor = {
    .abi_major = ST_ABI_MAJOR,
    .abi_minor = ST_ABI_MINOR,
    .struct_size = sizeof(st_plugin_descriptor),
    .kind = ST_KIND_RUNTIME,
    .name = "runtime-host",
    .version = PACKAGE_VERSION,
    .description = "run pytest as child processes on the host",
    .flags = ST_PLUGIN_THREAD_SAFE | ST_PLUGIN_MULTI_INSTANCE,
    .ops = &host_ops,
    .license = "MIT",
    .author = "the selftest-core authors",
    .origin = "bundled with " PACKAGE_NAME,
};

ST_PLUGIN_DEFINE(host_descriptor)
