/* runtime-host: runs each batch or orphan check as a child process in its own process group,
 * argv only (never a shell), with its output captured and its timeout enforced (SIGTERM to the
 * group, SIGKILL after the grace period). Not a security boundary: see docs. */
#include "config.h"

#include <selftest/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct running {
    char *id;
    pid_t pgid;
    int cancel_wr; /* write end of the execution's cancel pipe */
    int cancelled;
    struct running *next;
} running;

typedef struct host_rt {
    const st_host *host;
    st_instance *self;
    pthread_mutex_t lock;
    running *list;
    long long sandbox_memory_mb; /* RLIMIT_AS of orphan checks, 0 = unlimited */
    long long sandbox_open_files;
    long long sandbox_processes; /* RLIMIT_NPROC of orphan checks, 0 = unlimited */
} host_rt;

static const char *const known_keys[] = {"sandbox_memory_mb", "sandbox_open_files",
                                         "sandbox_processes", NULL};

static int host_create(const st_host *host, st_instance *self, const st_config_node *cfg,
                       void **out)
{
    host_rt *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return ST_ERR_NOMEM;
    rt->host = host;
    rt->self = self;
    rt->sandbox_memory_mb = 2048;
    rt->sandbox_open_files = 256;
    rt->sandbox_processes = 0;
    pthread_mutex_init(&rt->lock, NULL);
    const char *const *names = host->cfg_names(self, cfg);
    for (size_t i = 0; names && names[i]; i++) {
        int known = 0;
        for (size_t k = 0; known_keys[k]; k++)
            known |= strcmp(names[i], known_keys[k]) == 0;
        if (!known) {
            host->log(self, ST_LOG_ERROR, "%s: unknown setting (known: sandbox_memory_mb, "
                      "sandbox_open_files, sandbox_processes)",
                      host->cfg_where(self, cfg, names[i]));
            goto invalid;
        }
    }
    long long *fields[] = {&rt->sandbox_memory_mb, &rt->sandbox_open_files, &rt->sandbox_processes};
    for (size_t i = 0; i < 3; i++) {
        int rc = host->cfg_int(self, cfg, known_keys[i], fields[i]);
        if (rc < 0)
            goto invalid;
        if (*fields[i] < 0) {
            host->log(self, ST_LOG_ERROR, "%s: must not be negative",
                      host->cfg_where(self, cfg, known_keys[i]));
            goto invalid;
        }
    }
    *out = rt;
    return ST_OK;
invalid:
    pthread_mutex_destroy(&rt->lock);
    free(rt);
    return ST_ERR_INVALID;
}

static void host_destroy(void *ctx)
{
    host_rt *rt = ctx;
    if (!rt)
        return;
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

/* ---- the child ------------------------------------------------------------------------------ */

typedef struct child_setup {
    const st_exec_request *req;
    char *const *envp;
    const char *cwd;
    int out_wr, err_wr, err_pipe_wr;
    struct rlimit as, nofile, nproc, cpu;
    int sandboxed;
} child_setup;

/* Runs in the forked child: only async-signal-safe calls until exec. */
static void child_exec(const child_setup *cs) __attribute__((noreturn));
static void child_exec(const child_setup *cs)
{
    int e;
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(cs->out_wr, 1) < 0 || dup2(cs->err_wr, 2) < 0)
        goto fail;
    if (chdir(cs->cwd) < 0)
        goto fail;
    if (cs->sandboxed) {
        if ((cs->as.rlim_cur && setrlimit(RLIMIT_AS, &cs->as) < 0) ||
            setrlimit(RLIMIT_NOFILE, &cs->nofile) < 0 || setrlimit(RLIMIT_CPU, &cs->cpu) < 0 ||
            (cs->nproc.rlim_cur && setrlimit(RLIMIT_NPROC, &cs->nproc) < 0))
            goto fail;
    }
    execvpe(cs->req->argv[0], (char *const *)cs->req->argv, cs->envp);
fail:
    e = errno;
    if (write(cs->err_pipe_wr, &e, sizeof(e)) < 0) {
        /* nothing more can be done */
    }
    _exit(127);
}

/* ---- execute -------------------------------------------------------------------------------- */

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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void register_running(host_rt *rt, running *r)
{
    pthread_mutex_lock(&rt->lock);
    r->next = rt->list;
    rt->list = r;
    pthread_mutex_unlock(&rt->lock);
}

static void unregister_running(host_rt *rt, running *r)
{
    pthread_mutex_lock(&rt->lock);
    for (running **p = &rt->list; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
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

/* Reads what is available from *fd into the sink; closes it at EOF. */
static void pump(int *fd, st_stream stream, const st_exec_sink *sink)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(*fd, buf, sizeof(buf));
        if (n > 0) {
            if (sink && sink->output)
                sink->output(sink->opaque, stream, buf, (size_t)n);
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

static int host_execute(void *ctx, const st_exec_request *req, const st_exec_sink *sink,
                        st_exec_result *res)
{
    host_rt *rt = ctx;
    int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, exec_p[2] = {-1, -1}, cancel_p[2] = {-1, -1};
    int pidfd = -1;
    char **envp = NULL;
    char *sandbox_dir = NULL;
    running reg = {0};
    int rc = ST_OK;
    double start = now_s();
    pid_t pid = -1;

    if (pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0 ||
        pipe2(exec_p, O_CLOEXEC) < 0 || pipe2(cancel_p, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(res->error, sizeof(res->error), "cannot create pipes: %s", strerror(errno));
        goto infra;
    }
    envp = build_env(req->env);
    if (!envp) {
        snprintf(res->error, sizeof(res->error), "out of memory");
        goto infra;
    }
    child_setup cs = {.req = req, .envp = envp, .cwd = req->workdir, .out_wr = out_p[1],
                      .err_wr = err_p[1], .err_pipe_wr = exec_p[1], .sandboxed = req->sandboxed};
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
        rlim_t mb = (rlim_t)rt->sandbox_memory_mb;
        cs.as.rlim_cur = cs.as.rlim_max = mb ? mb * 1024 * 1024 : 0;
        cs.nofile.rlim_cur = cs.nofile.rlim_max = (rlim_t)rt->sandbox_open_files;
        cs.nproc.rlim_cur = cs.nproc.rlim_max = (rlim_t)rt->sandbox_processes;
        cs.cpu.rlim_cur = (rlim_t)(req->timeout_s + 1);
        cs.cpu.rlim_max = (rlim_t)(req->timeout_s + 5);
    }
    pid = fork();
    if (pid < 0) {
        snprintf(res->error, sizeof(res->error), "cannot fork: %s", strerror(errno));
        goto infra;
    }
    if (pid == 0)
        child_exec(&cs);
    setpgid(pid, pid); /* also in the parent, so a kill of the group cannot race the child */
    close_fd(&out_p[1]);
    close_fd(&err_p[1]);
    close_fd(&exec_p[1]);
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
        pid = -1;
        snprintf(res->error, sizeof(res->error), "cannot execute '%s': %s", req->argv[0],
                 strerror(exec_errno));
        goto infra;
    }
    fcntl(out_p[0], F_SETFL, O_NONBLOCK);
    fcntl(err_p[0], F_SETFL, O_NONBLOCK);
    pidfd = pidfd_open_compat(pid);

    double deadline = start + req->timeout_s;
    double kill_at = 0; /* when SIGKILL follows the SIGTERM */
    double grace = req->kill_grace_s > 0 ? req->kill_grace_s : 5;
    int exited = 0;
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    while (!exited) {
        struct pollfd pfd[4];
        int n = 0;
        int i_out = -1, i_err = -1, i_cancel = -1, i_pid = -1;
        if (out_p[0] >= 0)
            pfd[i_out = n++] = (struct pollfd){out_p[0], POLLIN, 0};
        if (err_p[0] >= 0)
            pfd[i_err = n++] = (struct pollfd){err_p[0], POLLIN, 0};
        pfd[i_cancel = n++] = (struct pollfd){cancel_p[0], POLLIN, 0};
        if (pidfd >= 0)
            pfd[i_pid = n++] = (struct pollfd){pidfd, POLLIN, 0};
        double now = now_s();
        double next = kill_at ? kill_at : deadline;
        int wait_ms = next > now ? (int)((next - now) * 1000) + 1 : 0;
        if (pidfd < 0 && wait_ms > 100)
            wait_ms = 100; /* no pidfd: poll the child */
        int pr = poll(pfd, (nfds_t)n, wait_ms);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr > 0) {
            if (i_out >= 0 && pfd[i_out].revents)
                pump(&out_p[0], ST_STREAM_STDOUT, sink);
            if (i_err >= 0 && pfd[i_err].revents)
                pump(&err_p[0], ST_STREAM_STDERR, sink);
            if (pfd[i_cancel].revents && !kill_at) {
                char drain[16];
                while (read(cancel_p[0], drain, sizeof(drain)) > 0) {
                }
                res->cancelled = 1;
                kill(-pid, SIGTERM);
                kill_at = now_s() + grace;
            }
        }
        /* Has the leader exited? Look without reaping, so its pid (and so the group id) cannot
         * be reused before the rest of the group is killed. */
        memset(&info, 0, sizeof(info));
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid)
            exited = 1;
        now = now_s();
        if (!exited && !kill_at && now >= deadline) {
            res->timed_out = 1;
            rt->host->log(rt->self, ST_LOG_WARNING, "%s: timeout after %gs, stopping process group %d",
                          req->label, req->timeout_s, (int)pid);
            kill(-pid, SIGTERM);
            kill_at = now + grace;
        } else if (!exited && kill_at && now >= kill_at) {
            kill(-pid, SIGKILL);
            kill_at = now + 3600; /* SIGKILL cannot be ignored; just wait */
        }
    }
    /* Leave nothing behind: whatever the tests started in the group goes too. */
    kill(-pid, SIGKILL);
    double drain_until = now_s() + 2;
    while ((out_p[0] >= 0 || err_p[0] >= 0) && now_s() < drain_until) {
        struct pollfd pfd[2];
        int n = 0, i_out = -1, i_err = -1;
        if (out_p[0] >= 0)
            pfd[i_out = n++] = (struct pollfd){out_p[0], POLLIN, 0};
        if (err_p[0] >= 0)
            pfd[i_err = n++] = (struct pollfd){err_p[0], POLLIN, 0};
        if (poll(pfd, (nfds_t)n, 100) <= 0)
            continue;
        if (i_out >= 0 && pfd[i_out].revents)
            pump(&out_p[0], ST_STREAM_STDOUT, sink);
        if (i_err >= 0 && pfd[i_err].revents)
            pump(&err_p[0], ST_STREAM_STDERR, sink);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    unregister_running(rt, &reg);
    pid = -1;
    if (WIFEXITED(status)) {
        res->exited = 1;
        res->exit_status = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        res->term_signal = WTERMSIG(status);
    }
    res->wall_s = now_s() - start;
    goto out;

infra:
    res->infra_error = 1;
    res->wall_s = now_s() - start;
    rc = ST_ERR_UNAVAILABLE;
    /* the detail travels in res->error; the core reports it once, with its context */
    rt->host->log(rt->self, ST_LOG_DEBUG, "%s: %s", req->label, res->error);
out:
    close_fd(&out_p[0]);
    close_fd(&out_p[1]);
    close_fd(&err_p[0]);
    close_fd(&err_p[1]);
    close_fd(&exec_p[0]);
    close_fd(&exec_p[1]);
    close_fd(&cancel_p[0]);
    close_fd(&cancel_p[1]);
    close_fd(&pidfd);
    free(envp);
    if (sandbox_dir) {
        /* The module may have written files: remove the whole dir without a shell. */
        char *argv_rm[] = {"rm", "-rf", "--", sandbox_dir, NULL};
        pid_t r = fork();
        if (r == 0) {
            execvp("rm", argv_rm);
            _exit(127);
        }
        if (r > 0)
            waitpid(r, NULL, 0);
        free(sandbox_dir);
    }
    return rc;
}

static const st_runtime_ops host_ops = {
    .struct_size = sizeof(st_runtime_ops),
    .life = {.create = host_create, .destroy = host_destroy},
    .execute = host_execute,
    .cancel = host_cancel,
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
};

ST_PLUGIN_DEFINE(host_descriptor)
