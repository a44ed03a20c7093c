# SPDX-License-Identifier: MIT
"""Small things a user sees, with the real binary and real pytest.

- every spelling of the original service (--ephemeral, --no-ephemeral, --state,
  --test-redundant, run-scheduled --cron, --no-container, the `manual` command) gets a message
  naming what replaces it, exit 2, never a bare "unknown option";
- --docker-host errors name the flag, not DOCKER_HOST / CONTAINER_HOST (a socket that is not
  there: no engine needed);
- an unreachable engine with container_fallback = "host" is a warning, not an error;
- --history FILE in a directory that does not exist yet: the directory is created;
- metrics.db's eval_metrics stores NULL, not 0.0, for coverage that was not measured;
- on a terminal the progress line moves per test, not per batch (a pty).
"""

import os
import pty
import re
import shutil
import sqlite3
import tempfile

import pytest
import st_helpers as sth
from st_helpers import is_eq, note, ok

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")

WORK = None  # set by the work fixture


@pytest.fixture(scope="module", autouse=True)
def work():
    """The module's scratch directory and what lives in it (module globals), removed at the end."""
    global EMPTY_CONF, PROJECT, WORK
    WORK = tempfile.mkdtemp(prefix="st-visible-")
    PROJECT = os.path.join(WORK, "project")
    shutil.copytree(sth.fixture("passing"), PROJECT,
                    ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__", "sandbox_data"))
    sth.make_writable(PROJECT)
    EMPTY_CONF = os.path.join(WORK, "empty.conf")
    with open(EMPTY_CONF, "w") as fh:
        fh.write("# defaults only\n")
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)


def env(extra=None):
    e = dict(sth.SCRUB, SANDBOX_REPO_PATH=PROJECT, SANDBOX_DATA_DIR=os.path.join(WORK, "data"),
             SELF_TEST_REPORT_DIR=os.path.join(WORK, "reports"), DOCKER_HOST=None,
             CONTAINER_HOST=None)
    e.update(extra or {})
    return sth.base_env(e)


def cli(argv, extra_env=None, conf=None, timeout=180):
    return sth.run([BIN, "-c", conf or EMPTY_CONF] + list(argv), env=env(extra_env), cwd=PROJECT,
                   timeout=timeout)


def test_legacy_spellings():
    cases = [
        (["--ephemeral", "run"], "--use-container"),
        (["run", "--ephemeral"], "--use-container"),
        (["run", "--no-ephemeral"], 'runtime = "host"'),
        (["run", "--state", "x.json"], "data_dir"),
        (["run", "--state=x.json"], "SANDBOX_DATA_DIR"),
        (["run", "--test-redundant"], "--include-redundant"),
        (["discover", "--test-redundant"], "--include-redundant"),
        (["run-scheduled", "--cron", "0 3 * * *"], "--interval"),
        (["run", "--no-container"], "--use-container"),
        (["manual"], "selftest-core run"),
    ]
    for argv, instead in cases:
        label = " ".join(argv)
        rc, out, err = cli(argv)
        is_eq(rc, 2, "%s: exit 2" % label)
        spelled = argv[1] if argv[0] in ("run", "discover", "run-scheduled") else argv[0]
        spelled = spelled.split("=")[0]
        ok("'%s'" % spelled in err and "original service" in err and instead in err,
           "%s: names what replaces it (%s)" % (label, instead), err)
        ok("unknown option" not in err and "unknown command" not in err,
           "%s: not a bare unknown option/command" % label, err)
    rc, out, err = cli(["run", "--bogus-flag"])
    ok(rc == 2 and "unknown option" in err and "original service" not in err,
       "an option that never existed is still a plain unknown option", err)


def test_docker_host_named():
    sock = os.path.join(WORK, "no-engine.sock")
    conf = os.path.join(WORK, "fail.conf")
    with open(conf, "w") as fh:
        fh.write('container_fallback = "fail";\n')
    for runtime in ("docker", "podman"):
        for url, what in (("unix://" + sock, "a missing socket"),
                          ("bogus://x", "a malformed address")):
            rc, out, err = cli(["run", "--retries", "0", "--container-runtime", runtime,
                                "--docker-host", url], conf=conf)
            ok(rc in (2, 3), "--docker-host to %s (%s): fails (exit %r)" % (what, runtime, rc),
               err)
            ok("--docker-host" in err, "--docker-host to %s (%s): the error names the flag"
               % (what, runtime), err)
            ok("DOCKER_HOST" not in err and "CONTAINER_HOST" not in err,
               "--docker-host to %s (%s): the error does not blame a variable" % (what, runtime),
               err)
    # the variable is still named when it is the source
    rc, out, err = cli(["run", "--retries", "0", "--container-runtime", "podman"], conf=conf,
                       extra_env={"CONTAINER_HOST": "unix://" + sock})
    ok("CONTAINER_HOST" in err and "--docker-host" not in err,
       "CONTAINER_HOST set by the caller: the error names CONTAINER_HOST", err)


def error_lines(err):
    return [line for line in err.splitlines() if re.search(r"\berror\b", line, re.I)]


def test_fallback_is_a_warning():
    sock = os.path.join(WORK, "no-engine.sock")
    rc, out, err = cli(["run", "--retries", "0", "--container-runtime", "docker",
                        "--docker-host", "unix://" + sock])
    is_eq(rc, 0, "unreachable engine with container_fallback = host: the run passes on the host")
    ok("FALLING BACK TO THE HOST RUNTIME" in err, "the fallback is announced", err)
    ok(sock in err and "warning" in err, "the reason (the engine address) is in a warning", err)
    is_eq(error_lines(err), [], "no line of the fallback is an error")


def test_history_dirs():
    hist = os.path.join(WORK, "hist", "nested", "deeper", "history.json")
    rc, out, err = cli(["run", "--history", hist])
    is_eq(rc, 0, "run with --history in a missing directory passes")
    ok(os.path.isfile(hist), "the history file's parent directories are created", err)
    hist_db = os.path.join(WORK, "hist-db", "sub", "history.db")
    rc, out, err = cli(["run", "--history", hist_db])
    ok(rc == 0 and os.path.isfile(hist_db), "the same for a .db history", err)


def test_eval_metrics_null():
    data = os.path.join(WORK, "data-eval")
    rc, out, err = cli(["run", "--no-coverage"], extra_env={"SANDBOX_DATA_DIR": data})
    is_eq(rc, 0, "run without coverage passes")
    db = sqlite3.connect(os.path.join(data, "metrics.db"))
    rows = db.execute("SELECT value FROM eval_metrics WHERE metric = 'coverage'").fetchall()
    runs = db.execute("SELECT coverage FROM runs").fetchall()
    db.close()
    ok(len(rows) == 1, "one eval_metrics coverage row", rows)
    is_eq([r[0] for r in rows], [None], "eval_metrics coverage is NULL when not measured")
    is_eq([r[0] for r in runs], [None], "runs.coverage is NULL too")


def run_on_pty(argv, extra_env):
    """argv with stdout and stderr on a pseudo-terminal; returns (exit status, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.chdir(PROJECT)
            os.execve(argv[0], argv, env(extra_env))
        finally:
            os._exit(127)
    out = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        out += data
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace")


def test_progress_per_test():
    proj = os.path.join(WORK, "slow")
    os.makedirs(os.path.join(proj, "tests"))
    with open(os.path.join(proj, "tests", "test_slow.py"), "w") as fh:
        fh.write("import time\nimport pytest\n\n\n@pytest.mark.parametrize('i', range(6))\n"
                 "def test_slow(i):\n    time.sleep(0.7)\n    assert i != 3\n")
    rc, out = run_on_pty([BIN, "-c", EMPTY_CONF, "run", "--workers", "1"],
                         {"SANDBOX_REPO_PATH": proj})
    is_eq(rc, 1, "one failing test of six: exit 1")
    seen = sorted(set((int(p), int(f)) for p, f in
                      re.findall(r"\[0/1 batches, 1 running\] (\d+) passed, (\d+) failed", out)))
    note("progress while the batch ran: %s" % seen)
    ok(len(seen) >= 4, "the progress line moved at least 4 times within the one batch", out[-2000:])
    ok(any(0 < p < 5 and f == 0 for p, f in seen) and any(p < 5 and f == 1 for p, f in seen),
       "it showed passed and failed tests before the batch ended", seen)
