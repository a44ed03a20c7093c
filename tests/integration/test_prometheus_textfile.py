# SPDX-License-Identifier: MIT
"""exporter-prometheus with the real binary (one-shot `run`).

On a copy of tests/fixtures/projects/passing (nothing is written into the source tree):
- the node_exporter textfile is complete, mode 0644, no temp file is left beside it, and
  `promtool check metrics` exits 3 with exactly the 8 known `_total` gauge lines;
- a real Pushgateway (started here on a free loopback port, stopped afterwards) receives the PUT
  with the run's self_test_passed_total and the job/instance labels;
- a Pushgateway URL that refuses connections is logged once and does not change the exit status;
- a metrics port already in use gives one clear error and the run still exits 0;
- over a running server (a temp project whose test sleeps): GET /metrics has the exact content
  type, HEAD has no body, POST is 405 with Allow, /other is 404.
"""

import http.client
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time

import pytest
import st_helpers as sth
from st_helpers import is_eq, ok

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LEGACY_TOTAL_GAUGES = sorted([
    "self_test_passed_total", "self_test_failed_total", "self_test_container_failures_total",
    "self_test_container_timeouts_total", "orphan_modules_tested_total",
    "orphan_modules_reintroduced_total", "orphan_modules_failed_total",
    "orphan_modules_redundant_total"])
# orphan_modules_unmet_total (issue 9) is named like the legacy orphan family it belongs to
PROMTOOL_EXPECTED = sorted('%s non-counter metrics should not have "_total" suffix' % n
                           for n in LEGACY_TOTAL_GAUGES + ["orphan_modules_unmet_total"])

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")

WORK = None  # set by the work fixture


@pytest.fixture(scope="module", autouse=True)
def work():
    """The module's scratch directory and what lives in it (module globals), removed at the end."""
    global WORK
    WORK = tempfile.mkdtemp(prefix="st-prom-")
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)


IGNORE = shutil.ignore_patterns(".pytest_cache", "__pycache__", "sandbox_data", "*.pyc")


free_port = sth.free_port


def write_conf(name, settings):
    body = "".join("%s = %s; " % (k, json.dumps(v)) for k, v in settings.items())
    path = os.path.join(WORK, name)
    with open(path, "w") as fh:
        fh.write('plugins = ({ kind = "exporter"; name = "exporter-prometheus";\n'
                 '  settings = { %s};\n});\n' % body)
    return path


def copy_passing(name):
    dst = os.path.join(WORK, name)
    shutil.copytree(sth.fixture("passing"), dst, ignore=IGNORE)
    return dst


def env_for(root):
    # no proxy may capture loopback traffic of libcurl
    return sth.base_env({"SANDBOX_REPO_PATH": root, "http_proxy": None, "HTTP_PROXY": None,
                         "https_proxy": None, "HTTPS_PROXY": None, "all_proxy": None,
                         "ALL_PROXY": None})


def selftest_run(conf, root, extra=(), timeout=120):
    rc, out, err = sth.run([BIN, "-v", "-c", conf, "run", "--json", "--retries", "0",
                            "--workers", "1"] + list(extra), env=env_for(root),
                           timeout=timeout)
    results = None
    for line in out.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "passed" in obj and "exit_status" in obj:
            results = obj
    return rc, out, err, results


def samples(text):
    """{'name{labels}': 'value'} of an exposition, comments skipped."""
    got = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            got[key] = value
    return got


def plugin_available():
    conf = write_conf("probe.conf", {})
    rc, out, err = sth.run([BIN, "-c", conf, "plugins"], env=env_for(WORK), timeout=30)
    return rc == 0 and "exporter-prometheus" in out, (out + err).strip()


# ---- textfile + promtool -------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def plugin_loadable(selftest_bin, work):
    avail, why = plugin_available()
    if not avail:
        pytest.skip("exporter-prometheus not built or not loadable: %s" % why[:200])


def test_textfile():
    root = copy_passing("tf")
    outdir = os.path.join(WORK, "textfile")
    os.mkdir(outdir)
    target = os.path.join(outdir, "selftest.prom")
    conf = write_conf("tf.conf", {"textfile": target})
    old = os.umask(0o077)  # the file must still be 0644
    try:
        rc, out, err, res = selftest_run(conf, root)
    finally:
        os.umask(old)
    is_eq(rc, 0, "textfile run exits 0")
    if not ok(os.path.isfile(target), "textfile written", err):
        return
    is_eq(stat.S_IMODE(os.stat(target).st_mode), 0o644, "textfile mode 0644")
    is_eq(sorted(os.listdir(outdir)), ["selftest.prom"], "no temp file left beside the textfile")
    with open(target, "rb") as fh:
        raw = fh.read()
    text = raw.decode("utf-8")
    ok(raw.endswith(b"\n") and b"\r" not in raw, "LF only, final newline")
    got = samples(text)
    passed = res["passed"] if res else None
    is_eq(got.get("self_test_passed_total"), str(passed), "textfile passed = the run's passed")
    is_eq(got.get("self_test_failed_total"), "0", "textfile failed = 0")
    is_eq(got.get("self_test_runs_total"), "1", "textfile runs_total = 1")
    ok("self_test_last_run_timestamp_seconds" in got, "last run timestamp present")
    ok('self_test_config_info{runtime="host"}' in got, "config_info names the runtime")
    families = re.findall(r"^# TYPE (\S+) ", text, re.M)
    is_eq(len(families), len(set(families)), "one TYPE per family")
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool not installed (Debian package prometheus)")
    with open(target, "rb") as fh:
        p = subprocess.run([promtool, "check", "metrics"], stdin=fh, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
    lines = sorted(l.strip() for l in (p.stdout + p.stderr).decode().splitlines() if l.strip())
    is_eq(p.returncode, 3, "promtool check metrics exits 3 (lint warnings only)")
    is_eq(lines, PROMTOOL_EXPECTED, "promtool reports exactly the 8 legacy _total gauges and orphan_modules_unmet_total")


# ---- Pushgateway ---------------------------------------------------------------------------

def http_get(port, path, method="GET", body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), data
    finally:
        conn.close()


def wait_http(port, path, deadline_s=20):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            status, _, _ = http_get(port, path)
            if status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def test_pushgateway():
    exe = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if not exe:
        pytest.skip("prometheus-pushgateway not installed")
    port = free_port()
    log = open(os.path.join(WORK, "pushgateway.log"), "w")
    pg = subprocess.Popen([exe, "--persistence.file=", "--web.listen-address=127.0.0.1:%d" % port],
                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        if not ok(wait_http(port, "/-/ready"), "pushgateway started on 127.0.0.1:%d" % port):
            return
        root = copy_passing("pg")
        conf = write_conf("pg.conf", {"pushgateway": "http://127.0.0.1:%d/" % port,
                                      "job": "selftest-it", "instance": "it-host"})
        rc, out, err, res = selftest_run(conf, root)
        is_eq(rc, 0, "run with a pushgateway exits 0")
        ok("push to" not in err, "no push failure logged", err)
        status, _, body = http_get(port, "/metrics")
        got = samples(body.decode())
        key = 'self_test_passed_total{instance="it-host",job="selftest-it"}'
        is_eq(got.get(key), str(res["passed"] if res else None),
              "pushgateway shows self_test_passed_total with job and instance labels")
        key = 'self_test_runs_total{instance="it-host",job="selftest-it"}'
        is_eq(got.get(key), "1", "pushgateway shows the counter too")
    finally:
        pg.terminate()
        try:
            pg.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sth.kill_group(pg)
            pg.wait()
        log.close()


def test_push_refused():
    port = free_port()  # nothing listens there
    root = copy_passing("refused")
    conf = write_conf("refused.conf", {"pushgateway": "http://127.0.0.1:%d" % port,
                                       "instance": "x"})
    rc, out, err, res = selftest_run(conf, root)
    is_eq(rc, 0, "refused pushgateway: the run still exits 0")
    n = len([l for l in err.splitlines() if "push to http://127.0.0.1:%d" % port in l])
    is_eq(n, 1, "refused pushgateway: logged exactly once")


# ---- busy port -----------------------------------------------------------------------------

def test_port_in_use():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    try:
        root = copy_passing("busy")
        conf = write_conf("busy.conf", {"port": port})
        rc, out, err, res = selftest_run(conf, root)
        is_eq(rc, 0, "metrics port in use: the run still exits 0")
        want = "cannot listen on 127.0.0.1:%d: Address already in use" % port
        lines = [l for l in err.splitlines() if want in l]
        is_eq(len(lines), 1, "metrics port in use: one clear error naming address and port")
        ok(res is not None and res.get("passed") == 5, "metrics port in use: the tests ran")
    finally:
        blocker.close()


# ---- a live server -------------------------------------------------------------------------

def sleeping_project(name, seconds):
    root = os.path.join(WORK, name)
    os.makedirs(os.path.join(root, "tests"))
    with open(os.path.join(root, "pytest.ini"), "w") as fh:
        fh.write("[pytest]\n")
    with open(os.path.join(root, "tests", "test_sleep.py"), "w") as fh:
        fh.write("import time\n\n\ndef test_sleep():\n    time.sleep(%s)\n" % seconds)
    return root


class Served:
    """selftest-core -v run in the background; .port once it printed 'serving http://...'."""

    def __init__(self, argv, env):
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.err = []
        self.port = None
        self._ready = threading.Event()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.err.append(line)
            m = re.search(r"serving http://127\.0\.0\.1:(\d+)/metrics", line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self._ready.set()
        self._ready.set()

    def wait_port(self, timeout=30):
        self._ready.wait(timeout)
        return self.port

    def stop(self, timeout=60):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            sth.kill_group(self.proc)
            return self.proc.wait()


def test_live_server():
    root = sleeping_project("sleepy", 4)
    conf = write_conf("live.conf", {"port": 0})
    srv = Served([BIN, "-v", "-c", conf, "run", "--retries", "0", "--workers", "1"],
                 env_for(root))
    try:
        port = srv.wait_port()
        if not ok(port, "server announces its port on stderr", "".join(srv.err)):
            return
        status, hdr, body = http_get(port, "/metrics")
        is_eq(status, 200, "GET /metrics: 200")
        is_eq(hdr.get("content-type"), CONTENT_TYPE, "GET /metrics: exact content type")
        ok(b"\nself_test_passed_total 0\n" in body, "before the first run the gauges are 0")
        status, hdr, body = http_get(port, "/metrics", method="HEAD")
        is_eq((status, body), (200, b""), "HEAD /metrics: 200 without a body")
        is_eq(hdr.get("content-type"), CONTENT_TYPE, "HEAD /metrics: exact content type")
        status, hdr, body = http_get(port, "/metrics", method="POST", body=b"x=1",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        is_eq(status, 405, "POST /metrics: 405")
        is_eq(hdr.get("allow"), "GET, HEAD", "405 carries Allow: GET, HEAD")
        status, _, _ = http_get(port, "/other")
        is_eq(status, 404, "GET /other: 404")
        # keep-alive: two requests on one connection
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/metrics")
            r1 = conn.getresponse()
            r1.read()
            closes = (r1.getheader("Connection") or "").lower() == "close"
            conn.request("GET", "/metrics")
            r2 = conn.getresponse()
            r2.read()
            ok(not closes and r2.status == 200, "keep-alive: a second request on one connection")
        finally:
            conn.close()
    finally:
        rc = srv.stop()
    is_eq(rc, 0, "the sleeping run exits 0")
