/* SPDX-License-Identifier: MIT */
/* Check suite of the stop and reload signals (src/core/signals.c) with the runtime that starts
 * the processes that may send them (runtime-host, whose .c files are included to drive it
 * through the core's real host services): a SIGTERM from a process the run started is ignored
 * even when the thread the kernel chose for it cannot run until that process has exited, and
 * the operator's SIGTERM and SIGHUP still stop and reload. */
#include "config.h"

#include "../../plugins/runtime-host/contain.c"
#include "../../plugins/runtime-host/runtime_host.c"

#include "plugin_services.h"
#include "signals.h"
#include "unit.h"

#include <libconfig.h>
#include <sys/syscall.h>

typedef struct fixture {
    char *dir;
    config_t cfg;
    st_instance inst;
    void *rt;
} fixture;

static void fx_open(fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->dir = unit_tmpdir();
    unit_write(f->dir, "test.conf", "settings = { cgroup = false; };\n");
    char *path = st_path_join(f->dir, "test.conf");
    config_init(&f->cfg);
    ck_assert_msg(config_read_file(&f->cfg, path) == CONFIG_TRUE, "%s:%d: %s", path,
                  config_error_line(&f->cfg), config_error_text(&f->cfg));
    free(path);
    f->inst.name = "runtime-host";
    f->inst.desc = &host_descriptor;
    f->inst.config = config_lookup(&f->cfg, "settings");
    pthread_mutex_init(&f->inst.lists_lock, NULL);
    ck_assert_int_eq(host_create(&st_host_services, &f->inst,
                                 (const st_config_node *)f->inst.config, &f->rt), ST_OK);
    ck_assert_int_eq(host_start(f->rt), ST_OK);
}

static void fx_close(fixture *f)
{
    host_stop(f->rt);
    host_destroy(f->rt);
    config_destroy(&f->cfg);
    for (size_t k = 0; k < f->inst.n_lists; k++)
        st_strv_free(&f->inst.lists[k]);
    free(f->inst.lists);
    pthread_mutex_destroy(&f->inst.lists_lock);
    st_rm_rf(f->dir);
    free(f->dir);
}

static void no_output(void *opaque, st_stream stream, const char *data, size_t len)
{
    (void)opaque, (void)stream, (void)data, (void)len;
}

typedef struct worker {
    fixture *fx;
    int ready_rd; /* readable once the main thread cannot run */
    int rc;
    st_exec_result res;
} worker;

/* Runs `sh -c 'kill -TERM $PPID'` through runtime-host: the shell is a child of this process,
 * sends it SIGTERM and exits; execute() reaps it. */
static void *run_killer(void *arg)
{
    worker *w = arg;
    char go;
    if (w->ready_rd >= 0)
        ck_assert_int_eq(read(w->ready_rd, &go, 1), 1);
    const char *argv[] = {"/bin/sh", "-c", "kill -TERM $PPID", NULL};
    const char *env[] = {NULL};
    st_exec_request req = {.struct_size = sizeof(req), .id = "batch-1", .kind = ST_EXEC_TESTS,
                           .label = "tests/test_killer.py", .argv = argv, .env = env,
                           .workdir = w->fx->dir, .project_root = w->fx->dir,
                           .output_dir = w->fx->dir, .support_dir = w->fx->dir, .workers = 1,
                           .timeout_s = 30, .kill_grace_s = 1, .expected_s = -1};
    st_exec_sink sink = {.struct_size = sizeof(sink), .output = no_output};
    w->res.struct_size = sizeof(w->res);
    w->rc = host_execute(w->fx->rt, &req, &sink, &w->res);
    return NULL;
}

/* The kernel gives a process-directed signal to the main thread when it does not block it, and
 * leaves it pending there while that thread waits without being interruptible (here: in
 * vfork until the child exits; on a loaded machine: waiting for a CPU). Meanwhile the batch's
 * process sends SIGTERM, exits and is reaped. The core must still see that a process of the run
 * sent it: runtime-host takes pending signals before reaping. Without that, the handler ran
 * after the vfork, found no sender in /proc and stopped the run. */
START_TEST(test_signal_pending_while_its_sender_is_reaped)
{
    st_signals_install();
    fixture fx;
    fx_open(&fx);
    int ready[2];
    ck_assert_int_eq(pipe(ready), 0);
    worker w = {.fx = &fx, .ready_rd = ready[0]};
    pthread_t th;
    unit_capture c;
    unit_capture_begin(&c);
    ck_assert_int_eq(pthread_create(&th, NULL, run_killer, &w), 0);
    /* The main thread is suspended until the vfork child exits; the child says when, waits
     * 2 s (enough for the worker to run the shell and reap it), then exits. Only system calls
     * in the child, which shares this process's memory. */
    pid_t child = vfork();
    if (child == 0) {
        char x = 'x';
        if (syscall(SYS_write, ready[1], &x, 1) != 1)
            syscall(SYS_exit, 1);
        struct timespec ts = {2, 0};
        syscall(SYS_nanosleep, &ts, NULL);
        syscall(SYS_exit, 0);
    }
    ck_assert_int_gt(child, 0);
    /* any pending handler runs here at the latest */
    pthread_join(th, NULL);
    int status = 0;
    waitpid(child, &status, 0);
    char *err = unit_capture_end(&c);
    close(ready[0]);
    close(ready[1]);
    ck_assert_msg(w.rc == ST_OK && w.res.exited && w.res.exit_status == 0,
                  "the shell ran (rc %d, exited %d, status %d): %s", w.rc, w.res.exited,
                  w.res.exit_status, w.res.error);
    ck_assert_msg(!st_signals_stop_requested(),
                  "a SIGTERM from a process the run started was taken for the operator's; "
                  "stderr: %s", err);
    ck_assert_contains(err, "warning: ignored SIGTERM from pid ");
    ck_assert_contains(err, "a process this run started");
    free(err);
    fx_close(&fx);
}
END_TEST

/* The same execution without the race: the handler runs at once, in whichever thread. */
START_TEST(test_signal_from_a_batch_is_ignored)
{
    st_signals_install();
    fixture fx;
    fx_open(&fx);
    worker w = {.fx = &fx, .ready_rd = -1};
    unit_capture c;
    unit_capture_begin(&c);
    run_killer(&w);
    char *err = unit_capture_end(&c);
    ck_assert_int_eq(w.rc, ST_OK);
    ck_assert_msg(!st_signals_stop_requested(), "stderr: %s", err);
    ck_assert_contains(err, "warning: ignored SIGTERM from pid ");
    free(err);
    fx_close(&fx);
}
END_TEST

/* The operator's signals (here: this process's own, which is no descendant) are obeyed; last,
 * since the stop flag stays set (CK_FORK=no under valgrind runs the tests in one process). */
START_TEST(test_operator_signals_are_obeyed)
{
    st_signals_install();
    ck_assert_int_eq(kill(getpid(), SIGHUP), 0);
    ck_assert(st_signals_reload_requested());
    st_signals_clear_reload();
    ck_assert(!st_signals_reload_requested());
    ck_assert_int_eq(kill(getpid(), SIGTERM), 0);
    ck_assert(st_signals_stop_requested());
}
END_TEST

int main(void)
{
    Suite *s = suite_create("host_signals");
    TCase *tc = tcase_create("signals");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_signal_pending_while_its_sender_is_reaped);
    tcase_add_test(tc, test_signal_from_a_batch_is_ignored);
    tcase_add_test(tc, test_operator_signals_are_obeyed);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
