# SPDX-License-Identifier: MIT
"""the daemon and the run's resilience against its own state.

1. SIGHUP into a configuration whose plugins cannot start (a runtime whose start() fails):
   run-scheduled says why the reload was refused, naming the file and the plugin, and keeps
   running the old configuration (the old code stopped with exit 3).
2. SIGHUP never starts a cycle: ten SIGHUPs during a 60 s interval leave one cycle (the old code
   ran one per signal); a reload that shortens the interval applies to the next cycle.
3. Retries: absurd counts are refused naming the option, the variable or FILE:LINE; SIGTERM
   during a 6.4 s backoff ends the run at once (the old code slept it out), the batch is aborted.
4. metrics.db whose user_version says 1 but whose tables are missing is repaired (the run is
   stored); one with a table lacking a needed column is refused (exit 3, the file named, left
   byte for byte), never trusted to store nothing.
"""
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time

import pytest
import st_helpers as t

pytestmark = pytest.mark.usefixtures("selftest_bin")

FX_DIR = os.environ.get("FIXTURE_PLUGIN_DIR", "")


@pytest.fixture
def tmp(workdir):
    """The test's scratch directory (removed afterwards)."""
    return workdir


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def project(root, tests, extra=""):
    write(os.path.join(root, "tests", "test_x.py"), tests)
    conf = os.path.join(root, "selftest.conf")
    write(conf, 'project_root = ".";\npython = "%s";\nretries = 0;\nworkers = 1;\n%s'
          % (t.PYTHON, extra))
    return conf


class Daemon:
    """selftest-core -v run-scheduled in the background, stderr collected line by line."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, env=t.base_env(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.lines = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stderr:
            with self.lock:
                self.lines.append(raw.decode("utf-8", "replace"))

    def text(self):
        with self.lock:
            return "".join(self.lines)

    def cycles(self):
        return self.text().count("run-scheduled: cycle ")

    def wait_for(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            if self.proc.poll() is not None:
                time.sleep(0.2)  # the reader may still be draining
                return pred()
            time.sleep(0.05)
        return pred()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                t.kill_group(self.proc)
                self.proc.wait()
                return None
        return self.proc.returncode


def test_reload_refused(tmp):
    if not os.path.exists(os.path.join(FX_DIR, "runtime-fx-start-fails.la")):
        pytest.skip("runtime-fx-start-fails is not built")
    conf = project(tmp, "def test_a(): assert True\n", "interval = 1;\n")
    d = Daemon([t.selftest_bin(), "-v", "-c", conf, "run-scheduled"])
    try:
        t.ok(d.wait_for(lambda: d.cycles() >= 1, 60), "run-scheduled runs a first cycle",
             d.text()[-2000:])
        with open(conf, "a") as f:
            f.write('runtime = "fx-start-fails";\n')
        d.proc.send_signal(signal.SIGHUP)
        t.ok(d.wait_for(lambda: "reload refused" in d.text(), 30),
             "SIGHUP into a runtime that cannot start: the reload is refused", d.text()[-3000:])
        before = d.cycles()
        t.ok(d.wait_for(lambda: d.cycles() >= before + 2, 60),
             "the old configuration keeps running cycles after the refused reload",
             d.text()[-3000:])
        t.ok(d.proc.poll() is None, "the daemon is still running",
             "exit status %r" % d.proc.returncode)
        refused = [l for l in d.text().splitlines() if "reload refused" in l]
        t.ok(refused and conf in refused[0] and "keeping the running configuration" in refused[0],
             "the refusal names the configuration file and says the old one is kept", refused)
        t.ok("runtime-fx-start-fails" in d.text(), "the log names the plugin that cannot start",
             d.text()[-3000:])
    finally:
        rc = d.stop()
    t.is_eq(rc, 0, "SIGTERM after a refused reload: exit 0")


def test_sighup_never_starts_a_cycle(tmp):
    conf = project(tmp, "def test_a(): assert True\n", "interval = 60;\n")
    d = Daemon([t.selftest_bin(), "-v", "-c", conf, "run-scheduled"])
    try:
        t.ok(d.wait_for(lambda: d.cycles() >= 1, 60), "run-scheduled runs a first cycle",
             d.text()[-2000:])
        for _ in range(10):
            d.proc.send_signal(signal.SIGHUP)
            time.sleep(0.3)
        time.sleep(3)
        t.is_eq(d.cycles(), 1, "ten SIGHUPs within the 60 s interval start no cycle")
        t.ok("configuration reloaded" in d.text(), "SIGHUP reloads the configuration",
             d.text()[-2000:])
        t.ok(d.proc.poll() is None, "the daemon is still running")
        # a reload that shortens the interval: the next cycle comes on the new schedule
        write(conf, open(conf).read().replace("interval = 60;", "interval = 1;"))
        d.proc.send_signal(signal.SIGHUP)
        t.ok(d.wait_for(lambda: d.cycles() >= 2, 60),
             "after a reload to interval = 1 the next cycle runs on the new schedule",
             d.text()[-2000:])
    finally:
        rc = d.stop()
    t.is_eq(rc, 0, "SIGTERM: exit 0")


def test_retries_refused(tmp):
    conf = project(tmp, "def test_a(): assert True\n")
    bin_ = t.selftest_bin()
    rc, out, err = t.run([bin_, "-c", conf, "run", "--retries", "30"], env=t.base_env())
    t.is_eq(rc, 2, "--retries 30: exit 2")
    t.ok("option --retries" in err and "'30'" in err and "20" in err,
         "--retries 30: the error names the option, the value and the limit", err)
    rc, out, err = t.run([bin_, "-c", conf, "plugins"],
                         env=t.base_env({"SELF_TEST_RETRIES": "1000"}))
    t.is_eq(rc, 2, "SELF_TEST_RETRIES=1000: exit 2")
    t.ok("SELF_TEST_RETRIES" in err and "'1000'" in err,
         "SELF_TEST_RETRIES=1000: the error names the variable", err)
    bad = os.path.join(tmp, "bad.conf")
    write(bad, 'project_root = ".";\n\nretries = 21;\n')
    rc, out, err = t.run([bin_, "-c", bad, "plugins"], env=t.base_env())
    t.is_eq(rc, 2, "retries = 21 in the file: exit 2")
    t.ok("%s:3" % bad in err and "'21'" in err, "retries = 21: the error names FILE:LINE", err)
    rc, out, err = t.run([bin_, "-c", conf, "plugins"], env=t.base_env({"SELF_TEST_RETRIES": "20"}))
    t.ok(rc == 0, "SELF_TEST_RETRIES=20 (the limit) is accepted", err)


def test_backoff_wakes_on_stop(tmp):
    conf = project(tmp, "import time\ndef test_slow(): time.sleep(60)\n", "kill_grace = 0.2;\n")
    proc = subprocess.Popen([t.selftest_bin(), "-c", conf, "run", "--json", "--timeout", "0.2",
                             "--retries", "7"], env=t.base_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    lines, out = [], []
    threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True).start()

    def read():
        for raw in proc.stderr:
            lines.append(raw.decode("utf-8", "replace"))
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if any("retrying in 6.4s" in l for l in lines):
            break
        time.sleep(0.02)
    waiting = any("retrying in 6.4s" in l for l in lines)
    t.ok(waiting, "the seventh retry waits 6.4 s", "".join(lines)[-2000:])
    time.sleep(0.3)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        t.kill_group(proc)
        rc = proc.wait()
    took = time.monotonic() - t0
    reader.join(5)
    t.ok(took < 3.0, "SIGTERM during the 6.4 s backoff ends the run within 3 s (%.2f s)" % took)
    t.is_eq(rc, 3, "run stopped by SIGTERM: exit 3")
    time.sleep(0.2)
    text = out[0].decode("utf-8", "replace") if out else ""
    res = {}
    for l in text.splitlines():
        if l.startswith("{") and '"event":"results"' in l.replace(" ", ""):
            res = json.loads(l)
    batches = list((res.get("suite_metrics") or {}).values())
    b = batches[0] if batches else {}
    t.ok(res.get("aborted") is True and b.get("aborted") is True and
         "waiting to retry" in (b.get("reason") or ""),
         "the results say the batch was aborted while waiting to retry", text[-2000:])
    t.is_eq(len((res.get("retry_errors") or {}).get("tests", [])), 7,
            "retry_errors holds the seven failed attempts")


def db_hash(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_metricsdb_schema(tmp):
    conf = project(tmp, "def test_a(): assert True\n")
    data = os.path.join(tmp, "sandbox_data")
    os.makedirs(data)
    dbp = os.path.join(data, "metrics.db")
    # user_version 1, no tables at all
    db = sqlite3.connect(dbp)
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    rc, out, err = t.run([t.selftest_bin(), "-c", conf, "run"], env=t.base_env())
    t.is_eq(rc, 0, "metrics.db at version 1 without tables: the run passes")
    db = sqlite3.connect(dbp)
    try:
        runs = db.execute("SELECT passed, failed FROM runs").fetchall()
        evals = db.execute("SELECT COUNT(*) FROM eval_metrics").fetchone()[0]
    except sqlite3.OperationalError as e:
        runs, evals = str(e), 0
    db.close()
    t.is_eq(runs, [(1, 0)], "the missing tables were created and the run stored")
    t.ok(evals > 0, "eval_metrics rows were stored")
    t.ok(dbp in err and "created" in err, "the repair is reported, naming the file", err)
    rc, out, err = t.run([t.selftest_bin(), "-c", conf, "run"], env=t.base_env())
    t.ok(rc == 0 and "created" not in err, "the next run finds the schema whole", err)

    # a table the code needs lacks a column: refused, file untouched
    os.remove(dbp)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(dbp + suffix):
            os.remove(dbp + suffix)
    db = sqlite3.connect(dbp)
    db.execute("CREATE TABLE runs(id INTEGER PRIMARY KEY, passed INTEGER)")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    before = db_hash(dbp)
    rc, out, err = t.run([t.selftest_bin(), "-c", conf, "run"], env=t.base_env())
    t.is_eq(rc, 3, "metrics.db whose runs table lacks columns: exit 3")
    t.ok(dbp in err and "runs" in err and "run_id" in err,
         "the error names the file, the table and the missing column", err)
    t.is_eq(db_hash(dbp), before, "the refused metrics.db is left byte for byte")


def test_keep_runs_bounds_metricsdb(tmp):
    """keep_runs = 10: after 12 cycles metrics.db holds the newest 10 runs and their test rows;
    menace's eval_metrics rows of all 12 stay."""
    conf = project(tmp, "def test_a(): assert True\ndef test_b(): assert True\n",
                   "keep_runs = 10;\nflaky_window = 10;\n")
    ids = []
    for i in range(12):
        rc, out, err = t.run([t.selftest_bin(), "-c", conf, "run", "--json"], env=t.base_env())
        if rc != 0:
            t.ok(False, "cycle %d passes" % (i + 1), err)
            return
        ids.append(json.loads(out.strip().splitlines()[-1])["run_id"])
    db = sqlite3.connect(os.path.join(tmp, "sandbox_data", "metrics.db"))
    try:
        kept = [r[0] for r in db.execute("SELECT run_id FROM runs ORDER BY id")]
        tests = db.execute("SELECT COUNT(*) FROM test_outcomes").fetchone()[0]
        orphaned = db.execute("SELECT COUNT(*) FROM test_outcomes WHERE run NOT IN"
                              " (SELECT id FROM runs)").fetchone()[0]
        evals = db.execute("SELECT COUNT(*) FROM eval_metrics WHERE metric = 'passed'"
                           ).fetchone()[0]
    finally:
        db.close()
    t.is_eq(kept, ids[2:], "the newest 10 runs are kept, the 2 oldest deleted")
    t.is_eq((tests, orphaned), (20, 0), "their test rows alone are left (2 a run)")
    t.is_eq(evals, 12, "eval_metrics keeps a row of every cycle")
    # below flaky_window: refused before anything runs, naming both settings and the file
    conf = project(tmp, "def test_a(): assert True\n", "keep_runs = 15;\nflaky_window = 20;\n")
    rc, out, err = t.run([t.selftest_bin(), "-c", conf, "run"], env=t.base_env())
    t.is_eq(rc, 2, "keep_runs below flaky_window: a usage error")
    t.ok("keep_runs is 15" in err and "flaky_window (20)" in err and conf in err,
         "the error names both settings and the file", err)
