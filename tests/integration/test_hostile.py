# SPDX-License-Identifier: MIT
"""A hostile project on the host runtime.

The fixture project tests/fixtures/projects/hostile (copied to a temp dir) has one directory per
misbehaviour, each a batch: a test file that hangs at import, a fork bomb, a test that prints
without end, one that writes outside the project, one that deletes the project's files
(precious/ and the data dir), one whose child kills pytest, one that kills selftest-core (its
parent) with SIGKILL, one that sends it SIGTERM (and under run-scheduled SIGHUP), one that changes the working directory, one
that ignores and blocks SIGTERM, passing tests that leave children, and a memory hog; plus
`good/`, a normal batch that must pass whatever runs beside it. The same misbehaviours as
orphan modules (hostile/orphan_*.py) are import-checked.

Every run has limits so that it cannot hurt the machine (memory 512 MB of address space per
process, 64 processes, 4 MB of output, 16 MB per file, a 10 s timeout; the fixtures are
bounded themselves too), and every process of the project carries a marker in its environment
that /proc is searched for after each run. For each case the test asserts what the user sees
(the batch's outcome and reason, the cycle's exit status) and what is guaranteed (no process
left, metrics.db intact, the core alive, the good batch passed). Where the host runtime does not
protect (writing outside the project, deleting the project's files, SIGKILL of the core), it
asserts what really happens: docs/reliability.md, "Hostile projects", explains why the container
runtimes are the isolation boundary.
"""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid

import pytest
import st_helpers as t

BIN = t.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")

# the scratch directory, the project copied into it and the paths around it (the work fixture)
WORK = ROOT = DATA = OUTSIDE = ELSEWHERE = None
MARK = "hostile%d%s" % (os.getpid(), uuid.uuid4().hex[:10])
TIMEOUT = 10
KILL_GRACE = 1
LIMITS = """kill_grace = %d;
orphan_timeout = %d;
host = { batch_memory_mb = 512; batch_processes = 64; batch_output_mb = 4;
         batch_file_size_mb = 16; sandbox_memory_mb = 512; sandbox_processes = 64;
         sandbox_output_mb = 4; };
""" % (KILL_GRACE, TIMEOUT)


def kill_marked():
    for _ in range(50):
        pids = t.marked_pids(MARK)
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)


def check_no_leftovers(name, timeout=5.0):
    deadline = time.monotonic() + timeout
    left = t.marked_pids(MARK)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = t.marked_pids(MARK)
    t.is_eq(left, [], "%s: no process of the project is left" % name)
    if left:
        kill_marked()


def write_conf():
    conf = os.path.join(ROOT, "selftest.conf")
    with open(conf, "w") as fh:
        fh.write('project_root = ".";\npython = "%s";\nretries = 0;\nplugins = ();\n%s'
                 % (t.PYTHON, LIMITS))
    return conf


def env():
    return t.base_env({"HOSTILE_MARKER": MARK, "HOSTILE_ARMED": "1", "HOSTILE_OUTSIDE": OUTSIDE,
                       "HOSTILE_CHDIR": ELSEWHERE, "TMPDIR": WORK})


def argv(paths, workers=2):
    return [BIN, "-c", write_conf(), "run", "--json", "--retries", "0", "--workers",
            str(workers), "--timeout", str(TIMEOUT)] + list(paths)


def run(paths, workers=2, timeout=300):
    t0 = time.monotonic()
    rc, out, err = t.run(argv(paths, workers), env=env(), timeout=timeout, cwd=ROOT)
    wall = time.monotonic() - t0
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    res = json.loads(lines[-1]) if lines else {}
    return rc, res, err, wall


def db_runs():
    """(integrity_check, [(run_id, passed, failed)]) of the project's metrics.db."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(DATA, "metrics.db"), uri=True,
                         timeout=10)
    try:
        ok = db.execute("PRAGMA integrity_check").fetchone()[0]
        rows = db.execute("SELECT run_id, passed, failed FROM runs ORDER BY id").fetchall()
    finally:
        db.close()
    return ok, rows


def seed():
    """A first, normal run, so that every later case has state to keep."""
    rc, res, err, wall = run(["good"])
    t.is_eq((rc, res.get("passed")), (0, 2), "seed run: the good batch passes, exit 0")
    return db_runs()[1]


def batch(res, path):
    return (res.get("suite_metrics") or {}).get(path) or {}


def outcome_of(res, nodeid):
    for x in res.get("tests") or []:
        if x.get("nodeid") == nodeid:
            return x
    return {}


def check_state(name, before, res):
    """metrics.db is intact, holds every earlier run and this one."""
    ok, rows = db_runs()
    t.is_eq(ok, "ok", "%s: metrics.db passes integrity_check" % name)
    t.is_eq(rows[:len(before)], before, "%s: metrics.db keeps every earlier run" % name)
    t.ok(res.get("run_id") and rows and rows[-1][0] == res.get("run_id"),
         "%s: metrics.db has this run" % name, repr(rows[-3:]))
    return rows


MIXED = ["good", "hang_import", "forkbomb", "endless", "outside", "chdir", "ignoreterm",
         "children", "memory", "killpytest"]


def check_mixed(before):
    """Every case that the host runtime contains, in one cycle beside the good batch."""
    os.makedirs(ELSEWHERE, exist_ok=True)
    rc, res, err, wall = run(MIXED)
    name = "hostile batches"
    t.is_eq(rc, 1, "%s: the cycle fails (exit 1)" % name)
    t.is_eq(res.get("exit_status"), 1, "%s: exit_status 1 in the results" % name)
    t.is_eq(res.get("aborted"), False, "%s: the cycle is not aborted" % name)
    # the longest batches are the two timeouts (10 s, +1 s kill grace), two at a time
    t.ok(wall < 60, "%s: the cycle ends in bounded time (%.1f s)" % (name, wall))
    t.note("%s: cycle took %.1f s" % (name, wall))
    for path in MIXED:
        b = batch(res, path)
        t.note("  %s: ok %s, %.1f s, %s" % (path, b.get("ok"), b.get("runtime") or 0,
                                          b.get("reason") or "%s passed, %s failed"
                                          % (b.get("passed"), b.get("failed"))))

    b = batch(res, "good")
    t.is_eq((b.get("ok"), b.get("passed"), b.get("failed")), (True, 2, 0),
            "good batch beside them: passed, unaffected")

    b = batch(res, "hang_import")
    t.is_eq((b.get("ok"), b.get("timed_out")), (False, True), "hang at import: the batch times out")
    t.ok(re.match(r"timeout: stopped after %d s" % TIMEOUT, b.get("reason") or ""),
         "hang at import: the reason names the timeout", b.get("reason"))
    t.ok(b.get("runtime", 99) < TIMEOUT + KILL_GRACE + 3,
         "hang at import: stopped at its timeout (%.1f s)" % b.get("runtime", -1))

    b = batch(res, "forkbomb")
    t.is_eq((b.get("ok"), b.get("timed_out")), (False, False),
            "fork bomb: the batch fails, not by a timeout")
    t.ok(re.match(r"process limit: 64 processes reached, \d+ forks refused \(batch_processes\)",
                  b.get("resource_limit") or ""),
         "fork bomb: resource_limit names the process limit", b.get("resource_limit"))
    t.ok("forkbomb/test_forkbomb.py::test_fork_bomb" in (b.get("reason") or ""),
         "fork bomb: the reason names the test", b.get("reason"))

    b = batch(res, "endless")
    t.is_eq((b.get("ok"), b.get("timed_out")), (False, False),
            "endless output: the batch fails, not by a timeout")
    x = outcome_of(res, "endless/test_endless.py::test_print_endlessly")
    # pytest captures to a temp file: the file size limit stops the writes (the test fails
    # with EFBIG); reporting the 16 MB captured then passes the output limit, which stops it
    t.ok(re.search(r"output limit: more than 4 MB", b.get("reason") or "") or
         "File too large" in (x.get("excerpt") or ""),
         "endless output: stopped at the file size or output limit",
         "%r / %r" % (b.get("reason"), (x.get("excerpt") or "")[-300:]))
    t.ok(len(json.dumps(res)) < 2 << 20, "endless output: the results stay small (%d bytes)"
         % len(json.dumps(res)))

    b = batch(res, "outside")
    t.is_eq(b.get("ok"), True, "write outside the project: the test passes (not contained)")
    t.ok(os.path.exists(OUTSIDE),
         "write outside the project: the file IS written on the host (same user: no boundary)")

    b = batch(res, "chdir")
    t.is_eq((b.get("ok"), b.get("passed")), (True, 2),
            "chdir at import and in a test: both tests counted and passed")
    t.is_eq(os.listdir(ELSEWHERE), [],
            "chdir: nothing of the run (results, coverage) lands in the new working directory")

    b = batch(res, "ignoreterm")
    t.is_eq((b.get("ok"), b.get("timed_out"), b.get("signal")), (False, True, 9),
            "SIGTERM ignored and blocked: timed out, then SIGKILL")
    t.ok(b.get("runtime", 99) < TIMEOUT + KILL_GRACE + 3,
         "SIGTERM ignored: stopped within timeout + kill_grace (%.1f s)" % b.get("runtime", -1))
    t.ok("ignoreterm/test_ignoreterm.py::test_ignore_sigterm" in (b.get("reason") or ""),
         "SIGTERM ignored: the reason names the running test", b.get("reason"))

    b = batch(res, "children")
    t.is_eq((b.get("ok"), b.get("passed")), (True, 3),
            "tests leaving children: passed (the children are stopped, not the tests' fault)")

    b = batch(res, "memory")
    x = outcome_of(res, "memory/test_memory.py::test_exhaust_memory")
    t.is_eq((b.get("ok"), b.get("failed"), x.get("outcome")), (False, 1, "failed"),
            "memory hog: its test fails")
    t.ok("MemoryError" in (x.get("excerpt") or ""), "memory hog: MemoryError at the limit",
         (x.get("excerpt") or "")[-300:])

    b = batch(res, "killpytest")
    t.is_eq((b.get("ok"), b.get("signal")), (False, 9), "child kills pytest: the batch fails")
    t.ok(re.match(r"pytest was killed by signal 9 \(Killed\), while running "
                  r"killpytest/test_killpytest.py::test_child_kills_pytest", b.get("reason") or ""),
         "child kills pytest: the reason names the signal and the test", b.get("reason"))

    t.ok(not re.search(r"error|fatal", err, re.I), "hostile batches: the core reports no error",
         err[-1500:])
    check_state("hostile batches", before, res)
    check_no_leftovers("hostile batches")


def check_orphans(before):
    mods = sorted("hostile/" + f for f in os.listdir(os.path.join(ROOT, "hostile"))
                  if f.startswith("orphan_"))
    rc, res, err, wall = run(mods)
    name = "hostile orphan modules"
    t.is_eq(rc, 0, "%s: a failed import check is reported, exit 0" % name)
    t.ok(wall < 60, "%s: the cycle ends in bounded time (%.1f s)" % (name, wall))
    checks = res.get("orphan_checks") or {}
    t.note("%s: cycle took %.1f s" % (name, wall))
    for m in mods:
        c = checks.get(m) or {}
        t.note("  %s: %s, %.1f s, %s" % (m, c.get("verdict"), c.get("runtime") or 0,
                                       c.get("reason")))
    want = {
        "orphan_hang": r"^timeout: stopped after %d s" % TIMEOUT,
        "orphan_ignoreterm": r"^timeout: stopped after %d s" % TIMEOUT,
        "orphan_forkbomb": r"process limit: 64 processes reached, \d+ forks refused "
                           r"\(sandbox_processes\)",
        "orphan_endless": r"output limit: more than 4 MB on stdout and stderr "
                          r"\(sandbox_output_mb\)",
        "orphan_memory": r"^MemoryError \(hostile/orphan_memory\.py:\d+\)",
        "orphan_killparent": r"killed by signal 9",
        "orphan_children": r"^importing hostile\.orphan_children left 1 process running "
                           r"\(stopped\)",
    }
    for m in mods:
        key = os.path.basename(m)[:-3]
        c = checks.get(m) or {}
        if key in want:
            t.ok(c.get("ok") is False and re.search(want[key], c.get("reason") or ""),
                 "orphan %s: the check fails, naming the cause" % key, json.dumps(c)[:500])
        else:
            t.is_eq(c.get("ok"), True, "orphan %s: the import check passes (not contained)"
                    % key)
    t.ok(os.path.exists(OUTSIDE + ".orphan"),
         "orphan writing outside the project: the file IS written on the host")
    t.ok(not os.path.exists(os.path.join(ROOT, "precious")),
         "orphan deleting project files: precious/ IS deleted on the host")
    check_state(name, before, res)
    check_no_leftovers(name)


def restore_precious():
    shutil.rmtree(os.path.join(ROOT, "precious"), ignore_errors=True)
    shutil.copytree(os.path.join(t.fixture("hostile"), "precious"),
                    os.path.join(ROOT, "precious"))


def check_deleter(before):
    """The test deletes precious/ and the data dir's files while the cycle runs."""
    restore_precious()
    rc, res, err, wall = run(["deleter", "good"])
    name = "deleting the project's files"
    t.is_eq((rc, res.get("passed")), (0, 3), "%s: the tests pass, exit 0" % name)
    t.ok(not os.path.exists(os.path.join(ROOT, "precious")),
         "%s: precious/ IS deleted on the host (same user: no boundary)" % name)
    t.ok(re.search(r"metrics\.db: removed since it was opened; the run is stored in a new file",
                   err), "%s: the core says metrics.db was removed under it" % name, err[-1000:])
    ok, rows = db_runs()
    t.is_eq(ok, "ok", "%s: the new metrics.db passes integrity_check" % name)
    t.is_eq([r[0] for r in rows], [res.get("run_id")],
            "%s: the earlier runs ARE lost; the new metrics.db holds this run" % name)
    # the next run works on the recreated data dir
    rc, res2, err, wall = run(["good"])
    t.is_eq(rc, 0, "%s: the next run exits 0" % name)
    t.is_eq([r[0] for r in db_runs()[1]], [res.get("run_id"), res2.get("run_id")],
            "%s: the next run is stored after it" % name)
    check_no_leftovers(name)
    restore_precious()
    return db_runs()[1]


def check_term_core(before):
    """The test sends SIGTERM to its parent, selftest-core: ignored (the operator's SIGTERM
    is not)."""
    rc, res, err, wall = run(["termcore", "good"])
    name = "a test sends SIGTERM to selftest-core"
    t.ok(re.search(r"warning: ignored SIGTERM from pid \d+, a process this run started", err),
         "%s: the core says it ignored it" % name, err[-1000:])
    t.is_eq((rc, res.get("aborted"), res.get("passed")), (0, False, 3),
            "%s: the cycle is not stopped: exit 0, not aborted, 3 passed" % name)
    rows = check_state(name, before, res)
    check_no_leftovers(name)

    # SIGTERM from outside the run (here: the core's parent) still stops it
    proc = subprocess.Popen(argv(["ignoreterm"], workers=1), env=env(), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(t.marked_pids(MARK)) < 2:
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            t.kill_group(proc)
            proc.wait()
    t.is_eq(proc.returncode, 3, "SIGTERM from outside the run still stops it (exit 3)")
    check_no_leftovers("SIGTERM from outside the run")
    return rows


def check_hup_daemon():
    """Under run-scheduled, a test sends SIGHUP to selftest-core: ignored, no reload (the
    operator's SIGHUP is not: it reloads)."""
    name = "run-scheduled, a test sends SIGHUP to selftest-core"
    proc = subprocess.Popen([BIN, "-v", "-c", write_conf(), "run-scheduled", "--interval", "1",
                             "--retries", "0", "--workers", "1", "hupcore"], env=env(), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    lines = []

    def reader():
        for raw in proc.stderr:
            lines.append(raw.decode("utf-8", "replace"))

    th = threading.Thread(target=reader, daemon=True)
    th.start()

    def cycles():
        return sum(1 for ln in lines if re.search(r"run-scheduled: cycle \d+ ended", ln))

    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and cycles() < 2 and proc.poll() is None:
            time.sleep(0.1)
        t.ok(cycles() >= 2, "%s: two cycles ran" % name, "".join(lines[-10:]))
        text = "".join(lines)
        t.ok(re.search(r"warning: ignored SIGHUP from pid \d+, a process this run started",
                       text), "%s: the core says it ignored it" % name, text[-1500:])
        t.ok("configuration reloaded" not in text, "%s: no reload" % name)
        proc.send_signal(signal.SIGHUP)  # the operator's
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "configuration reloaded" not in "".join(lines):
            time.sleep(0.1)
        t.ok("configuration reloaded" in "".join(lines),
             "SIGHUP from outside the run still reloads the configuration")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        t.is_eq(proc.returncode, 0, "%s: SIGTERM stops the daemon, exit 0" % name)
    finally:
        if proc.poll() is None:
            t.kill_group(proc)
            proc.wait()
        th.join(timeout=10)
    check_no_leftovers(name)


def check_kill_core(before):
    """The test kills its parent, selftest-core, with SIGKILL: nothing protects the core from
    a process of the same user; what it started dies with it, the state stays valid."""
    name = "a test kills selftest-core with SIGKILL"
    rc, res, err, wall = run(["killcore", "good"])
    t.is_eq(rc, -9, "%s: the core is killed (nothing can stop a SIGKILL)" % name)
    check_no_leftovers(name)
    ok, rows = db_runs()
    t.is_eq(ok, "ok", "%s: metrics.db passes integrity_check" % name)
    t.is_eq(rows, before, "%s: metrics.db keeps every earlier run, nothing half-stored" % name)
    rc, res, err, wall = run(["good"])
    t.is_eq(rc, 0, "%s: the next run obtains the lock and exits 0" % name)
    check_no_leftovers(name + ", next run")


CONTAINER_CONF = """project_root = ".";
retries = 0;
plugins = ();
runtime = "docker";
container = {
  image = "%s";
  env_passthrough = ["HOSTILE_ARMED", "HOSTILE_OUTSIDE", "HOSTILE_MARKER"];
};
"""


def check_container():
    """The cases the host cannot contain, in runtime-docker: the project is mounted read-only
    and the container has a file system of its own."""
    if os.environ.get("ST_ENGINES_DIR") is None:
        os.environ.setdefault("ST_ENGINES", "docker")
    eng, why = t.engines_up()
    if eng is None or not eng.get("docker"):
        pytest.skip(why or "no docker engine in the private engines")
    try:
        root = os.path.join(WORK, "in-docker")
        shutil.copytree(t.fixture("hostile"), root,
                        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
        t.make_writable(root)
        os.chmod(WORK, 0o755)
        conf = os.path.join(root, "selftest.conf")
        with open(conf, "w") as fh:
            fh.write(CONTAINER_CONF % eng["image"])
        outside = os.path.join(WORK, "outside-docker", "outside.txt")
        e = t.base_env({"HOSTILE_MARKER": MARK, "HOSTILE_ARMED": "1", "HOSTILE_OUTSIDE": outside,
                        "SANDBOX_REPO_PATH": root, "DOCKER_HOST": "unix://" + eng["docker"],
                        "CONTAINER_HOST": None, "TMPDIR": WORK})

        def crun(paths):
            rc, out, err = t.run([BIN, "-c", conf, "run", "--json", "--retries", "0",
                                  "--workers", "2", "--timeout", "120"] + paths,
                                 env=e, timeout=600, cwd=root)
            lines = [ln for ln in out.splitlines() if ln.startswith("{")]
            return rc, (json.loads(lines[-1]) if lines else {}), err

        name = "docker"
        rc, res, err = crun(["good"])
        if not t.is_eq(rc, 0, "%s: seed run, exit 0" % name):
            t.note(err[-2000:])
            return
        data = os.path.join(root, "sandbox_data")
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data, "metrics.db"), uri=True)
        before = db.execute("SELECT run_id FROM runs ORDER BY id").fetchall()
        db.close()
        rc, res, err = crun(["deleter", "outside", "good"])
        t.is_eq(rc, 1, "%s: deleting the project's files: the cycle fails (exit 1)" % name)
        x = outcome_of(res, "deleter/test_deleter.py::test_delete_project_files")
        t.ok(x.get("outcome") == "failed" and "Read-only file system" in (x.get("excerpt") or ""),
             "%s: deleting the project's files: the test fails, the tree is read-only" % name,
             json.dumps(x)[:800])
        t.ok(os.path.exists(os.path.join(root, "precious", "data.txt")),
             "%s: precious/ is intact on the host" % name)
        t.ok("removed since it was opened" not in err,
             "%s: the data dir is intact (metrics.db not removed)" % name, err[-1000:])
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data, "metrics.db"), uri=True)
        after = db.execute("SELECT run_id FROM runs ORDER BY id").fetchall()
        db.close()
        t.is_eq(after[:len(before)], before, "%s: metrics.db keeps the earlier runs" % name)
        t.is_eq(batch(res, "outside").get("ok"), True,
                "%s: writing outside the project: the test passes (in the container)" % name)
        t.ok(not os.path.exists(outside),
             "%s: writing outside the project: nothing reaches the host's file system" % name)
        t.is_eq(batch(res, "good").get("ok"), True, "%s: the good batch passes beside them"
                % name)
        check_no_leftovers(name)
    finally:
        t.engines_down(eng)


@pytest.fixture(scope="module", autouse=True)
def work():
    """The hostile project copied into a scratch directory; afterwards every process holding
    MARK is killed and the directory removed."""
    global WORK, ROOT, DATA, OUTSIDE, ELSEWHERE
    WORK = tempfile.mkdtemp(prefix="st-hostile-")
    ROOT = os.path.join(WORK, "hostile")
    DATA = os.path.join(ROOT, "sandbox_data")
    OUTSIDE = os.path.join(WORK, "outside.txt")
    ELSEWHERE = os.path.join(WORK, "elsewhere")
    shutil.copytree(t.fixture("hostile"), ROOT,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    t.make_writable(ROOT)
    t.note("marker %s, work dir %s" % (MARK, WORK))
    yield WORK
    kill_marked()
    shutil.rmtree(WORK, ignore_errors=True)


def runs_before():
    """The runs metrics.db holds before a case; the seed run first when there is none yet (the
    cases run in order, each on what the one before left; one selected alone still has state)."""
    if not os.path.exists(os.path.join(DATA, "metrics.db")):
        return seed()
    return db_runs()[1]


def test_mixed():
    check_mixed(runs_before())


def test_orphans():
    check_orphans(runs_before())


def test_deleter():
    check_deleter(runs_before())


def test_term_core():
    check_term_core(runs_before())


def test_hup_daemon():
    check_hup_daemon()


def test_kill_core():
    check_kill_core(runs_before())


def test_container():
    check_container()
