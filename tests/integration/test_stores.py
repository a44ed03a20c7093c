# SPDX-License-Identifier: MIT
"""The core's stores and the daemon (issue 6 items owned by the core): metrics.db holds every
cycle and a reader in another process never sees half a run; regressions and fixes against the
previous run; the history file stays valid JSON after kill -9 at random points; malformed history
and a metrics.db of a newer schema are refused and left as they are; a full disk keeps the old
history; run-scheduled stops on SIGTERM within the grace period leaving no child process."""
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import time

import pytest
import st_helpers as t

pytestmark = pytest.mark.usefixtures("selftest_bin")


@pytest.fixture
def tmp(workdir):
    """The test's scratch directory (removed afterwards)."""
    return workdir


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def project(root, tests):
    """A project whose tests/test_x.py holds the given source."""
    write(os.path.join(root, "tests", "test_x.py"), tests)
    write(os.path.join(root, "selftest.conf"),
          'project_root = ".";\npython = "%s";\nretries = 0;\nworkers = 1;\n' % t.PYTHON)
    return os.path.join(root, "selftest.conf")


def st(conf, *args, timeout=120, env=None):
    return t.run([t.selftest_bin(), "-c", conf] + list(args), env=t.base_env(env),
                 timeout=timeout)


def last_json(out):
    lines = [l for l in out.splitlines() if l.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def procs_with(marker):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def test_regressions_and_db(tmp):
    conf = project(tmp, "def test_a(): assert True\ndef test_b(): assert False\n"
                        "def test_c(): assert True\n")
    rc, out, err = st(conf, "run", "--json")
    first = last_json(out)
    t.is_eq(rc, 1, "cycle 1 exits 1 (test_b fails)")
    t.is_eq(first.get("regressions"), [], "cycle 1 has nothing to compare with")
    project(tmp, "def test_a(): assert False\ndef test_b(): assert True\n"
                 "def test_c(): assert True\ndef test_d(): assert True\n")
    rc, out, err = st(conf, "run", "--json")
    second = last_json(out)
    t.is_eq(second.get("regressions"), ["tests/test_x.py::test_a"],
            "a test that passed in cycle 1 and fails in cycle 2 is a regression")
    t.is_eq(second.get("fixed"), ["tests/test_x.py::test_b"], "the reverse is fixed")
    t.is_eq(second.get("new_tests"), ["tests/test_x.py::test_d"], "a new test is new")
    rc, out, err = st(conf, "run")
    t.ok("Regressions" not in out.split("Failures")[0] or "test_a" not in out.split("Failures")[0],
         "cycle 3: test_a failed before too, so it is not a regression again", out)
    db = sqlite3.connect(os.path.join(tmp, "sandbox_data", "metrics.db"))
    runs = db.execute("SELECT run_id, passed, failed FROM runs ORDER BY id").fetchall()
    t.is_eq([(r[1], r[2]) for r in runs], [(2, 1), (3, 1), (3, 1)], "metrics.db holds every cycle")
    t.is_eq(runs[0][0], first.get("run_id"), "the DB row carries the run id of the results")
    evals = db.execute("SELECT metric FROM eval_metrics WHERE cycle = 'self_tests'").fetchall()
    names = {e[0] for e in evals}
    t.ok({"coverage", "runtime"} <= names, "menace eval_metrics rows (self_tests, coverage/runtime)",
         names)
    t.is_eq(db.execute("PRAGMA user_version").fetchone()[0], 3, "schema version recorded")
    t.is_eq(db.execute("PRAGMA journal_mode").fetchone()[0], "wal", "the DB is in WAL mode")
    db.close()


def test_reader_never_sees_half_a_run(tmp):
    # many tests per run so a run's writes take a while; a reader checks the invariant
    src = "".join("def test_%d(): assert %s\n" % (i, "True" if i % 7 else "False")
                  for i in range(400))
    conf = project(tmp, src)
    db_path = os.path.join(tmp, "sandbox_data", "metrics.db")
    # without reruns: 58 failed tests run again one process each would make a cycle last
    # longer than the reader watches, and reruns are not what this checks
    proc = subprocess.Popen([t.selftest_bin(), "-c", conf, "run-scheduled", "--interval", "0.2",
                             "--rerun-failures", "0"],
                            env=t.base_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    violations, checks, deadline = [], 0, time.monotonic() + 25
    runs_seen = 0
    while time.monotonic() < deadline and runs_seen < 4:
        if os.path.exists(db_path):
            try:
                db = sqlite3.connect(db_path, timeout=5)
                rows = db.execute(
                    "SELECT r.id, r.passed + r.failed + r.skipped + r.xfailed,"
                    " (SELECT COUNT(*) FROM test_outcomes o WHERE o.run = r.id) FROM runs r"
                ).fetchall()
                db.close()
                runs_seen = len(rows)
                checks += 1
                violations += [r for r in rows if r[1] != r[2]]
            except sqlite3.OperationalError as e:
                if "no such table" not in str(e):
                    violations.append(str(e))
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        t.kill_group(proc)
    t.ok(runs_seen >= 2, "metrics.db holds at least two cycles of run-scheduled (%d)" % runs_seen)
    t.ok(checks > 10 and not violations,
         "a reader in another process never sees half a run (%d reads)" % checks, violations[:5])


def test_history_survives_kill9(tmp):
    conf = project(tmp, "def test_a(): assert True\n")
    hist = os.path.join(tmp, "history.json")
    # The kills are spread over the span of one whole run, timed first on a history file of its
    # own, so that some runs are cut short and some complete however loaded the machine is.
    started = time.monotonic()
    subprocess.run([t.selftest_bin(), "-c", conf, "run", "--history",
                    os.path.join(tmp, "timing.json")], env=t.base_env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    span = max(0.9, 1.3 * (time.monotonic() - started))
    rng = random.Random(1234)
    bad, kills = [], 0
    for i in range(25):
        proc = subprocess.Popen([t.selftest_bin(), "-c", conf, "run", "--history", hist],
                                env=t.base_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.0, span))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        if os.path.exists(hist):
            try:
                with open(hist) as f:
                    data = json.load(f)
                if not isinstance(data, list):
                    bad.append((i, "not a list"))
            except ValueError as e:
                bad.append((i, str(e)))
    leftovers = [n for n in os.listdir(tmp) if ".tmp." in n]
    t.ok(kills >= 5, "kill -9 landed during %d of 25 runs" % kills)
    t.ok(not bad, "the history file is valid JSON after every kill -9", bad)
    t.ok(os.path.exists(hist), "some runs completed and wrote history")
    t.note("temp files left by killed runs (allowed, never read): %d" % len(leftovers))


def test_malformed_history_untouched(tmp):
    conf = project(tmp, "def test_a(): assert True\n")
    hist = os.path.join(tmp, "history.json")
    write(hist, '[{"passed": 1,\n "failed": oops}]\n')
    before = open(hist).read()
    rc, out, err = st(conf, "run", "--history", hist)
    t.is_eq(rc, 0, "a malformed history file does not fail the run")
    t.ok("history.json: line 2" in err, "the error names the file and the line", err)
    t.is_eq(open(hist).read(), before, "the malformed history file is left as it is")
    # .db form
    hdb = os.path.join(tmp, "history.db")
    st(conf, "run", "--history", hdb)
    st(conf, "run", "--history", hdb)
    rows = sqlite3.connect(hdb).execute("SELECT passed, failed FROM test_history").fetchall()
    t.is_eq(rows, [(1, 0), (1, 0)], "a .db history gets rows in table test_history of that file")


def test_newer_schema_refused(tmp):
    conf = project(tmp, "def test_a(): assert True\n")
    db_path = os.path.join(tmp, "sandbox_data", "metrics.db")
    os.makedirs(os.path.dirname(db_path))
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    before = hashlib.sha256(open(db_path, "rb").read()).hexdigest()
    rc, out, err = st(conf, "run")
    t.is_eq(rc, 3, "a metrics.db from a newer schema stops the run (exit 3)")
    t.ok("schema version 99 is newer" in err and "metrics.db" in err,
         "the message names the file and both versions", err)
    t.is_eq(hashlib.sha256(open(db_path, "rb").read()).hexdigest(), before,
            "the newer DB is not touched")


def test_full_disk_keeps_history(tmp):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    conf = project(tmp, "def test_a(): assert True\n")
    small = os.path.join(tmp, "small")
    os.makedirs(small)
    rc, _, err = t.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", small])
    if rc != 0:
        pytest.skip("cannot mount a tmpfs here: " + err.strip())
    try:
        hist = os.path.join(small, "history.json")
        entries = [{"passed": i, "failed": 0, "coverage": None, "runtime": 1.0,
                    "ts": "2026-01-01T00:00:00Z"} for i in range(20)]
        write(hist, json.dumps(entries, indent=2))
        # fill the rest of the tmpfs
        with open(os.path.join(small, "filler"), "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"x" * 1024)
            except OSError:
                pass
        before = open(hist).read()
        rc, out, err = st(conf, "run", "--history", hist)
        t.is_eq(rc, 0, "a full disk for the history does not fail the run")
        t.ok("cannot write" in err and "intact" in err, "the error says the old file is intact",
             err)
        t.is_eq(open(hist).read(), before, "the old history file is intact on a full disk")
        t.is_eq([n for n in os.listdir(small) if ".tmp." in n], [], "no temp file is left")
    finally:
        t.run(["umount", small])


def test_sigterm_during_long_batch(tmp):
    conf = project(tmp, "import time\ndef test_quick(): assert True\n"
                        "def test_long(): time.sleep(120)\n")
    marker = os.path.basename(tmp)
    proc = subprocess.Popen([t.selftest_bin(), "-c", conf, "run-scheduled", "--interval", "3600"],
                            env=t.base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    # wait until pytest runs the long test
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(procs_with(marker)) < 2:
        time.sleep(0.1)
    time.sleep(1.0)
    children = [p for p in procs_with(marker) if p != proc.pid]
    t.ok(children, "pytest runs under run-scheduled before the signal")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=20)
        elapsed = time.monotonic() - t0
    except subprocess.TimeoutExpired:
        t.kill_group(proc)
        rc, elapsed = None, 99
    err = proc.stderr.read().decode()
    t.ok(elapsed < 6.5, "run-scheduled exits within the grace period (5 s) after SIGTERM "
         "(%.1fs)" % elapsed)
    t.is_eq(rc, 0, "a clean stop exits 0")
    time.sleep(0.3)
    t.is_eq(procs_with(marker), [], "no child process is left")
    db = sqlite3.connect(os.path.join(tmp, "sandbox_data", "metrics.db"))
    row = db.execute("SELECT aborted FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    t.ok(row is not None and row[0] == 1, "the interrupted run is stored, marked aborted", err)
