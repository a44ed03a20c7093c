# SPDX-License-Identifier: MIT
"""Injected faults in the data dir: a full disk (ENOSPC) while metrics.db, the orphan caches, the
history and the failure report are written; a read-only data dir; a data dir that vanishes
mid-run.  Each: a clear message naming the file, the run's exit status that of its tests (a store
that cannot be written is reported, not a test failure), and nothing that was there before lost
or half-written.  The data dir is a small tmpfs mounted by the test: needs root, else skipped."""
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time

import pytest
import st_helpers as t

pytestmark = pytest.mark.usefixtures("selftest_bin")

STATE = ("orphan_modules.json", "orphan_classifications.json", "orphan_check_cache.json",
         "module_map.json", "history.json")


@pytest.fixture
def tmp(workdir):
    """The test's scratch directory (removed afterwards)."""
    return workdir


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def make_project(tmp, data):
    """A copy of the sample project whose data dir, history and reports are on `data`."""
    proj = os.path.join(tmp, "proj")
    shutil.copytree(t.fixture("sample"), proj)
    plugins = os.environ.get("SELF_TEST_PLUGIN_PATH") or os.path.join(t.top_srcdir(), "plugins")
    conf = os.path.join(proj, "selftest.conf")
    write(conf, 'project_root = ".";\npaths = ["tests"];\nruntime = "host";\ncoverage = true;\n'
                'python = "%s";\nretries = 0;\nworkers = 1;\nplugin_path = ["%s"];\n'
                'support_dir = "%s";\ndata_dir = "%s";\nreport_dir = "%s/reports";\n'
                % (t.PYTHON, plugins, t.support_dir(), data, data))
    return proj, conf


def st(conf, data, *args, timeout=120):
    return t.run([t.selftest_bin(), "-c", conf, "run", "--json",
                  "--history", os.path.join(data, "history.json")] + list(args),
                 env=t.base_env({"TMPDIR": os.path.dirname(os.path.dirname(conf))}),
                 timeout=timeout)


def last_json(out):
    lines = [l for l in out.splitlines() if l.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def snapshot(data):
    """sha256 of every regular file in data (but the lock and SQLite's -wal/-shm)."""
    snap = {}
    for root, _, files in os.walk(data):
        for n in files:
            p = os.path.join(root, n)
            rel = os.path.relpath(p, data)
            if n.endswith(("-wal", "-shm")) or n == "self_test.lock":
                continue
            with open(p, "rb") as f:
                snap[rel] = hashlib.sha256(f.read()).hexdigest()
    return snap


def db_rows(data):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data, "metrics.db"), uri=True,
                         timeout=10)
    try:
        ok = db.execute("PRAGMA integrity_check").fetchall()
        rows = db.execute("SELECT run_id, passed, failed FROM runs ORDER BY id").fetchall()
        outcomes = db.execute("SELECT COUNT(*) FROM test_outcomes").fetchone()[0]
    finally:
        db.close()
    return ok, rows, outcomes


def pytest_running(proj):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"pytest" in argv and any(proj.encode() in a for a in argv):
            return True
    return False


def change_project(proj):
    """Changes that make the next run write every store: a failing test (a report), a new
    orphan module (the orphan caches)."""
    write(os.path.join(proj, "tests", "test_new.py"), "def test_broken():\n    assert 1 == 2\n")
    write(os.path.join(proj, "calc", "extra_tool.py"), "from calc.arith import add\n\n"
          "def twice(x):\n    return add(x, x)\n")


class Tmpfs:
    def __init__(self, path, size):
        self.path, self.size, self.mounted = path, size, False

    def __enter__(self):
        os.makedirs(self.path, exist_ok=True)
        rc, _, err = t.run(["mount", "-t", "tmpfs", "-o", "size=%s" % self.size, "tmpfs",
                            self.path])
        self.mounted = rc == 0
        self.error = err.strip()
        return self

    def __exit__(self, *a):
        if self.mounted:
            t.run(["umount", "-l", self.path])


def fill(path):
    with open(os.path.join(path, "filler"), "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"x" * 4096)
        except OSError:
            pass
    # then the last blocks too
    with open(os.path.join(path, "filler2"), "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"x")
        except OSError:
            pass


def test_full_disk(tmp):
    """A reader (a dashboard, the exporter) holds metrics.db open, so its -wal and -shm exist:
    the run goes on, each store fails on its own and says so."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    data = os.path.join(tmp, "small")
    with Tmpfs(data, "4m") as fs:
        if not fs.mounted:
            pytest.skip("cannot mount a tmpfs here: " + fs.error)
        proj, conf = make_project(tmp, data)
        rc, out, err = st(conf, data)
        t.is_eq(rc, 0, "a first run on the small tmpfs passes", )
        if rc != 0:
            t.note(err)
        change_project(proj)
        before = snapshot(data)
        ok0, rows0, outc0 = db_rows(data)
        reader = sqlite3.connect(os.path.join(data, "metrics.db"), timeout=10)
        reader.execute("SELECT COUNT(*) FROM runs").fetchone()
        fill(data)
        rc, out, err = st(conf, data)
        reader.close()
        res = last_json(out)
        # the new orphan passes its check, and the module map cannot be written: an integrator
        # that failed is an infrastructure error (3); the other stores do not change the status
        t.is_eq(rc, 3, "on a full disk the run exits 3 (the integrator could not write "
                "module_map.json)")
        t.ok(any("module_map.json" in l and "No space left on device" in l
                 for l in err.splitlines()), "the integrator's message names module_map.json and "
             "the cause", err)
        t.is_eq((res.get("passed"), res.get("failed")), (7, 1),
                "the results are still reported on stdout")
        for what, needle in (("metrics.db", "metrics"), ("history", "history"),
                             ("orphan_modules.json", "orphan_modules.json"),
                             ("the report", "report")):
            lines = [l for l in err.splitlines() if needle in l and
                     ("No space" in l or "cannot" in l or "not stored" in l)]
            t.ok(lines, "a clear message says %s was not written" % what, err)
        t.ok(any("metrics.db" in l and "No space left on device" in l for l in err.splitlines()),
             "the metrics.db message gives the cause (No space left on device)", err)
        t.ok("no transaction is active" not in err, "no misleading second error from SQLite",
             err)
        after = snapshot(data)
        for n in ("filler", "filler2"):
            after.pop(n, None)
        changed = sorted(k for k in before if after.get(k) != before[k] and k != "metrics.db")
        t.is_eq(changed, [], "every state file is byte-identical to before the run")
        temps = sorted(k for k in after if ".tmp." in k or k not in before and k != "metrics.db")
        t.is_eq(temps, [], "no temp or half-written new file is left")
        ok1, rows1, outc1 = db_rows(data)
        t.is_eq(ok1, [("ok",)], "metrics.db passes integrity_check after the full disk")
        t.ok(rows1[:len(rows0)] == rows0 and outc1 >= outc0,
             "metrics.db keeps every run it held before", (rows0, rows1))
        t.ok(len(rows1) == len(rows0) or (len(rows1) == len(rows0) + 1 and
                                          rows1[-1][1:] == (7, 1)),
             "the DB holds the new run whole or not at all", rows1)
        # space again: the next run stores everything
        os.unlink(os.path.join(data, "filler"))
        os.unlink(os.path.join(data, "filler2"))
        rc, out, err = st(conf, data)
        ok2, rows2, _ = db_rows(data)
        t.is_eq(rc, 1, "with space again the next run's status is its tests' (1)")
        t.ok(ok2 == [("ok",)] and rows2[-1][1:] == (7, 1), "and metrics.db stores it", rows2)
        with open(os.path.join(data, "history.json")) as f:
            h = json.load(f)
        t.is_eq((h[-1].get("passed"), h[-1].get("failed")), (7, 1), "and the history gets it")


def test_full_disk_at_open(tmp):
    """No reader: SQLite cannot create metrics.db's -wal/-shm on the full disk.  The run cannot
    record anything and stops before running: exit 3, the cause named, nothing touched."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    data = os.path.join(tmp, "small")
    with Tmpfs(data, "4m") as fs:
        if not fs.mounted:
            pytest.skip("cannot mount a tmpfs here: " + fs.error)
        proj, conf = make_project(tmp, data)
        rc, out, err = st(conf, data)
        t.is_eq(rc, 0, "a first run on the small tmpfs passes", )
        change_project(proj)
        before = snapshot(data)
        fill(data)
        rc, out, err = st(conf, data)
        t.ok(rc in (1, 3), "metrics.db cannot be opened on a full disk: exit 3 (or 1 when SQLite "
             "still could, the tests' status) (rc %r)" % rc, err)
        if rc == 3:
            t.ok(any("metrics.db" in l and "No space left on device" in l
                     for l in err.splitlines()),
                 "the message names metrics.db and the cause (No space left on device)", err)
            t.ok("not a readable SQLite database" not in err,
                 "a full disk is not blamed on the file", err)
        else:
            t.ok("No space left on device" in err, "the messages give the cause", err)
        after = snapshot(data)
        for n in ("filler", "filler2"):
            after.pop(n, None)
            os.unlink(os.path.join(data, n))
        t.is_eq(after, before, "every file in the data dir is as it was")
        ok1, rows1, _ = db_rows(data)
        t.is_eq((ok1, len(rows1)), ([("ok",)], 1), "metrics.db is intact with its one run")


def test_read_only(tmp):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    data = os.path.join(tmp, "ro")
    with Tmpfs(data, "4m") as fs:
        if not fs.mounted:
            pytest.skip("cannot mount a tmpfs here: " + fs.error)
        proj, conf = make_project(tmp, data)
        rc, out, err = st(conf, data)
        t.is_eq(rc, 0, "a first run passes")
        change_project(proj)
        before = snapshot(data)
        rc2, _, err2 = t.run(["mount", "-o", "remount,ro", data])
        if rc2 != 0:
            pytest.skip("cannot remount read-only: " + err2.strip())
        rc, out, err = st(conf, data)
        t.ok(rc in (1, 3), "a read-only data dir: exit 1 (the tests' status) or 3 (refused), "
             "not 0 and no crash (rc %r)" % rc, err)
        t.ok("Read-only file system" in err, "the message gives the cause (Read-only file "
             "system)", err)
        t.ok(data in err, "the message names the data dir or a file in it", err)
        t.run(["mount", "-o", "remount,rw", data])
        t.is_eq(snapshot(data), before, "every file in the data dir is as it was")
        ok, rows, _ = db_rows(data)
        t.is_eq((ok, len(rows)), ([("ok",)], 1), "metrics.db is intact with its one run")


def test_vanishing_data_dir(tmp):
    """The data dir (and the history's directory) is removed while pytest runs: the run says
    so, exits with its tests' status, and stores the run in a new metrics.db at the configured
    path, not in the removed file; the next run goes on from there."""
    data = os.path.join(tmp, "data")
    proj, conf = make_project(tmp, data)
    write(os.path.join(proj, "tests", "test_slow.py"),
          "import time\ndef test_slow():\n    time.sleep(3)\n")
    rc, out, err = st(conf, data)
    t.is_eq(rc, 0, "a first run passes")
    # a --history outside the data dir, removed too
    hdir = os.path.join(tmp, "hist")
    os.makedirs(hdir)
    proc = subprocess.Popen([t.selftest_bin(), "-c", conf, "run", "--json", "--history",
                             os.path.join(hdir, "history.json")],
                            env=t.base_env({"TMPDIR": tmp}), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    # remove it once pytest runs test_slow (metrics.db is open by then)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not pytest_running(proj):
        time.sleep(0.05)
    time.sleep(0.5)
    t.ok(proc.poll() is None, "the data dir is removed while the run goes on")
    shutil.rmtree(data)
    shutil.rmtree(hdir)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        t.kill_group(proc)
        out, err = proc.communicate()
    out, err = out.decode(), err.decode()
    res = last_json(out)
    t.is_eq(proc.returncode, 0, "a vanished data dir: exit 0 (the tests' status), no crash")
    t.is_eq(res.get("passed"), 8, "the results are still reported")
    t.ok(os.path.join(data, "metrics.db") + ": removed since it was opened" in err,
         "the message says metrics.db was removed during the run", err)
    # history parent directories are created (like the data dir): the removed one comes back
    # with this run as its only entry, and no message claims an old file is intact
    hist = []
    try:
        with open(os.path.join(hdir, "history.json")) as f:
            hist = json.load(f)
    except (OSError, ValueError):
        pass
    t.ok(len(hist) == 1 and "intact" not in err,
         "the history's removed directory is created again and holds this run", (hist, err))
    # the run is in the metrics.db at the path, not in the removed (unlinked) file
    ok, rows, _ = db_rows(data)
    t.is_eq((ok, [r[0] for r in rows]), ([("ok",)], [res.get("run_id")]),
            "the run is stored in a new metrics.db in the recreated data dir")
    rc, out, err = st(conf, data)
    t.is_eq(rc, 0, "the next run goes on")
    ok, rows, _ = db_rows(data)
    t.ok(ok == [("ok",)] and len(rows) == 2 and rows[-1][1:] == (8, 0), "and stores its run",
         rows)
