# SPDX-License-Identifier: MIT
"""A slow or broken Pushgateway does not hold or fail the run.

exporter-prometheus pushes the exposition after every run (`pushgateway = URL`). Here the
gateway is a local server in this test that misbehaves in one way per case: it answers after
30 s, answers HTTP 500, resets the connection, never accepts it, trickles its answer a byte a
second, or is not there at all. For each: the run ends within the push's bounds (2 s connect,
5 s in all, plus margin) with exit 0 (the tests passed), one warning names the URL and the
failure, and metrics.db and the history file hold the run. Then run-scheduled against a gateway
that never answers: every cycle is stored, and SIGTERM still stops the daemon in bounded time.
"""

import json
import os
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import tempfile
import threading
import time

import pytest
import st_helpers as t

BIN = t.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")

WORK = None  # the module's scratch directory (the work fixture)
PUSH_TIMEOUT = 5.0  # the plugin's total timeout for one push
MARGIN = 6.0


class Gateway:
    """A TCP server on 127.0.0.1 misbehaving as `mode` says."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self.stop = threading.Event()
        self.conns = []
        if mode != "never":  # "never": connections wait in the backlog, never accepted
            threading.Thread(target=self.serve, daemon=True).start()

    def read_request(self, c):
        c.settimeout(10)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = c.recv(65536)
                if not chunk:
                    return data
                data += chunk
        except OSError:
            pass
        return data

    def serve(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(c)
            threading.Thread(target=self.handle, args=(c,), daemon=True).start()

    def handle(self, c):
        if self.read_request(c):
            self.requests += 1
        try:
            if self.mode == "slow":
                self.stop.wait(30)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            elif self.mode == "500":
                body = b"pushgateway is broken"
                c.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n"
                          b"Connection: close\r\n\r\n%s" % (len(body), body))
            elif self.mode == "reset":
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif self.mode == "trickle":
                for b in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                    if self.stop.wait(1):
                        break
                    c.send(bytes([b]))
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop.set()
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def project(name):
    root = os.path.join(WORK, name)
    shutil.copytree(t.fixture("passing"), root,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    t.make_writable(root)
    return root


def write_conf(root, url):
    conf = os.path.join(root, "selftest.conf")
    with open(conf, "w") as fh:
        fh.write('project_root = ".";\npython = "%s";\nretries = 0;\nhistory = "history.json";\n'
                 'plugins = ({ kind = "exporter"; name = "exporter-prometheus";\n'
                 '  settings = { pushgateway = "%s"; instance = "t"; };\n});\n'
                 % (t.PYTHON, url))
    return conf


def env():
    return t.base_env({"http_proxy": None, "HTTP_PROXY": None, "https_proxy": None,
                       "HTTPS_PROXY": None, "all_proxy": None, "ALL_PROXY": None,
                       "TMPDIR": WORK})


def stored(root):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(root, "sandbox_data", "metrics.db"),
                         uri=True, timeout=10)
    try:
        ok = db.execute("PRAGMA integrity_check").fetchone()[0]
        ids = [r[0] for r in db.execute("SELECT run_id FROM runs ORDER BY id")]
    finally:
        db.close()
    try:
        with open(os.path.join(root, "history.json")) as fh:
            hist = json.load(fh)
    except (OSError, ValueError):
        hist = None
    return ok, ids, hist


CASES = (
    ("slow", "answers after 30 s", r"push to \S+ failed: .*(timed out|Timeout)"),
    ("500", "answers HTTP 500", r"push to \S+ failed: HTTP 500 pushgateway is broken"),
    ("reset", "resets the connection", r"push to \S+ failed: .*(reset|Recv failure|"
                                       r"Empty reply|closed)"),
    ("never", "never accepts the connection", r"push to \S+ failed: .*(timed out|Timeout)"),
    ("trickle", "trickles its answer, a byte a second", r"push to \S+ failed: .*(timed out|"
                                                         r"Timeout)"),
    ("absent", "is not there (connection refused)", r"push to \S+ failed: .*(refused|"
                                                    r"Couldn't connect|Failed to connect)"),
)


def baseline():
    """How long one run of the project takes with nothing to push to."""
    root = project("baseline")
    conf = os.path.join(root, "selftest.conf")
    with open(conf, "w") as fh:
        fh.write('project_root = ".";\npython = "%s";\nretries = 0;\nplugins = ();\n' % t.PYTHON)
    t0 = time.monotonic()
    rc, out, err = t.run([BIN, "-c", conf, "run", "--workers", "1"], env=env(), cwd=root)
    t.is_eq(rc, 0, "baseline run without a pushgateway exits 0")
    return time.monotonic() - t0


def check_case(mode, what, pattern, base):
    import re
    gw = None
    if mode == "absent":
        url = "http://127.0.0.1:%d" % t.free_port()
    else:
        gw = Gateway(mode)
        url = "http://127.0.0.1:%d" % gw.port
    try:
        root = project(mode)
        conf = write_conf(root, url)
        t0 = time.monotonic()
        rc, out, err = t.run([BIN, "-c", conf, "run", "--json", "--workers", "1"],
                             env=env(), cwd=root, timeout=180)
        wall = time.monotonic() - t0
    finally:
        if gw:
            gw.close()
    name = "pushgateway that %s" % what
    t.is_eq(rc, 0, "%s: the run exits 0 (the tests passed)" % name)
    t.ok(wall < base + PUSH_TIMEOUT + MARGIN,
         "%s: the run ends in bounded time (%.1f s, %.1f s without a push)" % (name, wall, base))
    t.note("%s: %.1f s (baseline %.1f s)" % (name, wall, base))
    warn = [ln for ln in err.splitlines() if "push to %s/metrics/job/" % url in ln]
    t.is_eq(len(warn), 1, "%s: one warning about the push" % name)
    t.ok(warn and re.search(pattern, warn[0]) and "the run is not affected" in warn[0],
         "%s: the warning names the URL and the failure" % name, err[-1500:])
    if warn:
        t.note("%s: %s" % (name, warn[0][:300]))
    res = {}
    for ln in out.splitlines():
        if ln.startswith("{"):
            res = json.loads(ln)
    ok, ids, hist = stored(root)
    t.is_eq(ok, "ok", "%s: metrics.db passes integrity_check" % name)
    t.ok(res.get("run_id") and ids == [res.get("run_id")], "%s: metrics.db holds the run" % name,
         repr(ids))
    t.ok(isinstance(hist, list) and len(hist) == 1, "%s: the history holds the run" % name,
         repr(hist)[:300])


def check_daemon():
    """run-scheduled against a gateway that never answers: cycles go on, each stored, and
    SIGTERM stops the daemon even while a push waits."""
    gw = Gateway("slow")
    root = project("daemon")
    conf = write_conf(root, "http://127.0.0.1:%d" % gw.port)
    proc = subprocess.Popen([BIN, "-c", conf, "run-scheduled", "--interval", "1", "--workers",
                             "1"], env=env(), cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    name = "run-scheduled, pushgateway that answers after 30 s"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and gw.requests < 3:
            time.sleep(0.1)
        t.ok(gw.requests >= 3, "%s: three cycles pushed (the daemon goes on)" % name,
             "%d pushes" % gw.requests)
        time.sleep(1)  # inside the third push's wait
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            t.kill_group(proc)
            out, err = proc.communicate()
        took = time.monotonic() - t0
    finally:
        gw.close()
        if proc.poll() is None:
            t.kill_group(proc)
            proc.wait()
    t.is_eq(proc.returncode, 0, "%s: SIGTERM stops it, exit 0" % name)
    t.ok(took < PUSH_TIMEOUT + 3, "%s: ... within the push timeout (%.1f s)" % (name, took))
    t.note("%s: stopped %.1f s after SIGTERM" % (name, took))
    ok, ids, hist = stored(root)
    t.ok(ok == "ok" and len(ids) >= 3 and isinstance(hist, list) and len(hist) == len(ids),
         "%s: every cycle is in metrics.db and the history" % name,
         "%r %d %r" % (ok, len(ids), len(hist) if isinstance(hist, list) else hist))


@pytest.fixture(scope="module", autouse=True)
def work():
    global WORK
    WORK = tempfile.mkdtemp(prefix="st-pushfault-")
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)


_BASE = []


def base_time():
    """The baseline run's time (run, and checked, by the first test that needs it)."""
    if not _BASE:
        _BASE.append(baseline())
    return _BASE[0]


def test_baseline():
    base_time()


@pytest.mark.parametrize("mode,what,pattern", CASES, ids=[c[0] for c in CASES])
def test_pushgateway_fault(mode, what, pattern):
    check_case(mode, what, pattern, base_time())


def test_daemon():
    check_daemon()
