# SPDX-License-Identifier: MIT
"""selftest-core's orphan check server: many import checks in one warm interpreter.

Invocation used by the core (orphan_check_mode = "fork"; the working directory
is the runtime's sandbox directory):

    SELF_TEST_FORKCHECK='{"root": "<project root>", "timeout": 60, "grace": 5,
                          "outdir": "<dir>", "checks": [{"path": "pkg/mod.py",
                          "module": "pkg.mod"}, ...]}' \\
    PYTHONPATH=<pkgdatadir> PYTHONDONTWRITEBYTECODE=1 \\
    python3 -m selftest_forkcheck

The server imports pytest and the bundled plugin and runs one empty pytest
session to warm them up (in a fresh empty directory: no project code is ever
imported in the server).  It makes itself a child subreaper, then for each
check, one at a time, forks a child that:

    - becomes the leader of its own process group,
    - makes its own fresh empty directory (inside the server's) its cwd,
    - lowers RLIMIT_CPU to the check's timeout (+1 s soft, +5 s hard); the
      other limits the runtime set (memory, files, file size) are per process
      and inherited,
    - sends its stdout and stderr to the server, which copies them to its own
      stdout (the runtime's output limit counts them) and to <outdir>/output-K.txt,
    - runs exactly the pytest session the process mode runs for that module
      (pytest.main with the bundled plugin, results in <outdir>/results-K.jsonl),
      then ends as an interpreter does (non-daemon threads joined, atexit callbacks run).

The server waits at most "timeout" seconds for the child; then it sends
SIGTERM to the child's process group, SIGKILL after "grace" seconds.  After the
child has exited, whatever it left running (its process group and every
process reparented to the server) is killed and counted.  One JSON line per
check goes to <outdir>/status.jsonl:

    {"index": K, "path": STR, "exited": 0|1, "exit_status": INT,
     "signal": INT, "timed_out": 0|1, "leftover": INT, "wall": FLOAT}

When SELF_TEST_RESULTS_FRAME is set (a runtime without a shared filesystem:
runtime-swarm), the server also sends each of these files back on its
standard output after each check, one frame per line: the byte 0x1e,
"selftest-", the token, ":", the file name, a space, the line, "\n"
(results-K.jsonl, output-K.txt, then the status line for status.jsonl); the
runtime writes them into its own <outdir>.  The checks themselves write their
files in the task as usual (the variable is removed before the plugin loads).

The core reads each check's results and status as it reads a process-mode
check's results and exit status, so verdicts, reasons and the check cache
are the same in both modes.  The server's own exit status is 0 when every
check got a status line.
"""

import json
import os
import select
import shutil
import signal
import sys
import tempfile
import time

ENV = "SELF_TEST_FORKCHECK"
FRAME_ENV = "SELF_TEST_RESULTS_FRAME"


def _frame_prefix():
    """The frame prefix of SELF_TEST_RESULTS_FRAME (removed from the environment, so neither the
    plugin of this server nor the checks frame their own lines), or None."""
    token = os.environ.pop(FRAME_ENV, "")
    if not token or not token.isascii() or not token.isalnum():
        return None
    return b"\x1eselftest-" + token.encode("ascii") + b":"


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except InterruptedError:
            continue


def _frame_lines(prefix, name, data):
    """The lines of data as frames of file name on stdout, in one write."""
    if not data:
        return
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    head = prefix + name.encode("ascii") + b" "
    _write_all(1, b"".join(head + line + b"\n" for line in lines))


def _frame_file(prefix, name, path):
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return
    _frame_lines(prefix, name, data)


def _pytest_args(root):
    return ["-p", "selftest_pytest_plugin", "-p", "no:cacheprovider", "-q",
            "--rootdir=%s" % root, "."]


def _work_dir(root):
    """Where the checks' directories go: the working directory the runtime gave (its sandbox
    directory, removed after the execution), unless it is not writable or is in the project
    (a container's working directory is the read-only project): then a new temp dir."""
    here = os.path.abspath(os.getcwd())
    inside = here == root or here.startswith(root.rstrip(os.sep) + os.sep)
    if not inside and os.access(here, os.W_OK | os.X_OK):
        return here, False
    return tempfile.mkdtemp(prefix="selftest-forkcheck-"), True


def _warm_up(plugin, base):
    """One empty session: imports what pytest.main imports (its plugins, the
    installed pytest11 plugins) so each child starts warm."""
    import pytest
    d = tempfile.mkdtemp(prefix="warm-", dir=base)
    saved_out, saved_err = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    here = os.getcwd()
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.chdir(d)
        env = {k: os.environ.pop(k) for k in ("SELF_TEST_RESULTS_FILE",
                                             "SELF_TEST_ORPHAN_MODULES")
               if k in os.environ}
        pytest.main(["-p", "selftest_pytest_plugin", "-p", "no:cacheprovider", "-q",
                     "--rootdir=%s" % d, "."])
        os.environ.update(env)
    except BaseException:
        pass
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        for fd in (saved_out, saved_err, null):
            os.close(fd)
        os.chdir(here)
        try:
            os.rmdir(d)
        except OSError:
            pass
    plugin._recorder = None


def _child(check, root, timeout, results, out_w, cwd):
    """In the forked child: never returns."""
    rc = 70
    try:
        os.setpgid(0, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.close(out_w)
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        want_soft, want_hard = int(timeout) + 1, int(timeout) + 5
        if hard != resource.RLIM_INFINITY:
            want_hard = min(want_hard, hard)
        if soft != resource.RLIM_INFINITY:
            want_soft = min(want_soft, soft)
        resource.setrlimit(resource.RLIMIT_CPU, (min(want_soft, want_hard), want_hard))
        os.chdir(cwd)
        os.environ["SELF_TEST_RESULTS_FILE"] = results
        os.environ["SELF_TEST_ORPHAN_MODULES"] = json.dumps(
            [{"path": check["path"], "module": check.get("module")}])
        os.environ["SELF_TEST_ORPHAN_ROOT"] = root
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        import pytest
        rc = int(pytest.main(_pytest_args(root)))
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        rc = 70
        try:
            e = sys.exc_info()[1]
            os.write(2, ("selftest_forkcheck: %s: %r\n" % (type(e).__name__, e)).encode())
        except BaseException:
            pass
    # what an interpreter does when it ends normally (os._exit skips it): wait for the
    # non-daemon threads, then run the atexit callbacks (a module's atexit daemon is found)
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
    except BaseException:
        pass
    try:
        import atexit
        atexit._run_exitfuncs()
    except BaseException:
        pass
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    os._exit(rc)


def _forward(fd, sink):
    """Copies what is readable on fd (non-blocking) to this server's stdout (so the runtime's
    output limit sees it) and to the check's output file. False at end of file."""
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        for out in (1, sink):
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(out, view):]
                except InterruptedError:
                    continue
                except OSError:
                    break


def _wait(pid, timeout, grace, out_r, sink):
    """Waits for the child, forwarding its output; kills its group at the timeout.
    (status, timed_out)."""
    deadline = time.monotonic() + timeout
    kill_at = None
    timed_out = False
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    while True:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got == pid:
            break
        now = time.monotonic()
        if kill_at is None and now >= deadline:
            timed_out = True
            try:
                os.killpg(pid, signal.SIGTERM)
            except OSError:
                pass
            kill_at = now + grace
        elif kill_at is not None and now >= kill_at:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            kill_at = now + 3600
        wake = (kill_at if kill_at is not None else deadline) - now
        wake = max(0.0, min(wake, 0.5))
        fds = [out_r] + ([pidfd] if pidfd is not None else [])
        if pidfd is None:
            wake = min(wake, 0.01)
        ready = select.select(fds, [], [], wake)[0]
        if out_r in ready:
            _forward(out_r, sink)
    if pidfd is not None:
        os.close(pidfd)
    return status, timed_out


def _clear_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass


def main():
    # first of all: the bundled plugin, whose import waits at the runtime's start gate (until
    # this process is in its process limit's cgroup; see the plugin's _start_gate)
    import selftest_pytest_plugin  # noqa: F401
    raw = os.environ.get(ENV)
    if not raw:
        sys.stderr.write("selftest_forkcheck: %s is not set\n" % ENV)
        return 2
    try:
        req = json.loads(raw)
        root = os.path.abspath(req["root"])
        timeout = float(req["timeout"])
        grace = float(req.get("grace", 5))
        outdir = req["outdir"]
        checks = list(req["checks"])
    except (ValueError, KeyError, TypeError) as exc:
        sys.stderr.write("selftest_forkcheck: bad %s: %s\n" % (ENV, exc))
        return 2
    del os.environ[ENV]
    frame = _frame_prefix()
    if frame is not None:
        os.makedirs(outdir, exist_ok=True)  # the task's own: the runtime gets the frames
    here, own = _work_dir(root)
    import selftest_pytest_plugin as plugin
    _warm_up(plugin, here)
    # each child imports the plugin afresh through -p, as a pytest process does (its own
    # state); the server keeps this copy for its own leftover handling
    sys.modules.pop("selftest_pytest_plugin", None)
    sys.modules.pop("selftest_pytest_plugin_impl", None)
    plugin._become_subreaper()
    status_path = os.path.join(outdir, "status.jsonl")
    with open(status_path, "w", buffering=1, encoding="utf-8") as st:
        for k, check in enumerate(checks):
            results = os.path.join(outdir, "results-%d.jsonl" % k)
            output = os.path.join(outdir, "output-%d.txt" % k)
            sink = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
            out_r, out_w = os.pipe()
            os.set_blocking(out_r, False)
            t0 = time.monotonic()
            sys.stdout.flush()
            sys.stderr.flush()
            cwd = tempfile.mkdtemp(prefix="check-%d-" % k, dir=here)
            pid = os.fork()
            if pid == 0:
                os.close(out_r)
                _child(check, root, timeout, results, out_w, cwd)
            os.close(out_w)
            try:
                os.setpgid(pid, pid)  # also here: a kill of the group cannot race the child
            except OSError:
                pass
            status, timed_out = _wait(pid, timeout, grace, out_r, sink)
            # what the check left: its group, and whatever was reparented to this server
            _clear_group(pid)
            left = plugin._leftovers()
            if left:
                plugin._stop_descendants()
                sys.stderr.write("selftest_forkcheck: %s: stopped %d process%s left running: "
                                 "%s\n" % (check.get("path"), len(left),
                                           "" if len(left) == 1 else "es",
                                           plugin._describe_pids(left)))
                sys.stderr.flush()
            # every writer is gone now: the rest of the output
            end = time.monotonic() + 2
            while _forward(out_r, sink) and time.monotonic() < end:
                select.select([out_r], [], [], 0.1)
            os.close(out_r)
            os.close(sink)
            shutil.rmtree(cwd, ignore_errors=True)
            line = {
                "index": k,
                "path": check.get("path"),
                "exited": 1 if os.WIFEXITED(status) else 0,
                "exit_status": os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1,
                "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0,
                "timed_out": 1 if timed_out else 0,
                "leftover": 0 if timed_out else len(left),
                "wall": time.monotonic() - t0,
            }
            st.write(json.dumps(line, separators=(",", ":")) + "\n")
            st.flush()
            if frame is not None:
                sys.stdout.flush()
                _frame_file(frame, "results-%d.jsonl" % k, results)
                _frame_file(frame, "output-%d.txt" % k, output)
                _frame_lines(frame, "status.jsonl",
                             json.dumps(line, separators=(",", ":")).encode("ascii"))
    if own:
        shutil.rmtree(here, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
