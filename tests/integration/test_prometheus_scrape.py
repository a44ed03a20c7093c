# SPDX-License-Identifier: MIT
"""A real Prometheus scrapes `selftest-core run-scheduled` (docs/spec.md §9.1).

On a copy of tests/fixtures/projects/passing, `run-scheduled --interval 2` serves /metrics on a
free loopback port (read back from `-v` stderr), bound once for the whole process; a Prometheus 2.x started here (scrape_interval
1s, one static target, private storage and port) is polled through /api/v1/query until two
cycles are visible; then each of the ten legacy gauges and the last-run timestamp must be there
with the right values. SIGTERM stops selftest-core (exit 0); everything started is stopped.
Skips (never passes) when the binary does not know run-scheduled or prometheus is missing.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import pytest
import st_helpers as sth
from st_helpers import is_eq, ok

LEGACY = ["self_test_passed_total", "self_test_failed_total", "self_test_average_runtime_seconds",
          "self_test_average_coverage", "self_test_container_failures_total",
          "self_test_container_timeouts_total", "orphan_modules_tested_total",
          "orphan_modules_reintroduced_total", "orphan_modules_failed_total",
          "orphan_modules_redundant_total"]

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")

WORK = None  # the module's scratch directory (the work fixture)


@pytest.fixture(scope="module", autouse=True)
def work():
    global WORK
    WORK = tempfile.mkdtemp(prefix="st-promscrape-")
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)
IGNORE = shutil.ignore_patterns(".pytest_cache", "__pycache__", "sandbox_data", "*.pyc")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


free_port = sth.free_port


def env_for(root):
    return sth.base_env({"SANDBOX_REPO_PATH": root})


def scheduled_known():
    """(known, reason): does the binary know run-scheduled?"""
    rc, out, err = sth.run([BIN, "run-scheduled", "--help"], env=env_for(WORK), timeout=30)
    if rc == 2 and "unknown command" in (out + err):
        return False, "selftest-core has no run-scheduled command yet (exit 2 unknown command)"
    if rc != 0:
        return False, "run-scheduled --help exited %r: %s" % (rc, (out + err).strip()[:200])
    return True, ""


def query(prom_port, expr):
    """The instant vector of expr as [(labels, value-string)], or None when unreachable."""
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (prom_port,
                                                   urllib.parse.urlencode({"query": expr}))
    try:
        with NO_PROXY.open(url, timeout=5) as resp:
            doc = json.load(resp)
    except (OSError, ValueError):
        return None
    if doc.get("status") != "success":
        return None
    return [(r["metric"], r["value"][1]) for r in doc["data"]["result"]]


class Proc:
    """A background process; stderr lines collected; stopped with SIGTERM then SIGKILL."""

    def __init__(self, argv, env=None, log=None):
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.lines = []
        self.port = None
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            m = re.search(r"serving http://127\.0\.0\.1:(\d+)/metrics", line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self.ready.set()
        self.ready.set()

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                sth.kill_group(self.proc)
                self.proc.wait()
                return None
        return self.proc.returncode


def test_prometheus_scrapes_run_scheduled():
    """A real Prometheus scrapes run-scheduled: the ten legacy gauges and the last-run timestamp
    in the query API."""
    known, why = scheduled_known()
    if not known:
        pytest.skip(why)
    prom_exe = shutil.which("prometheus")
    if not prom_exe:
        pytest.skip("prometheus not installed (Debian: prometheus)")
    root = os.path.join(WORK, "passing")
    shutil.copytree(sth.fixture("passing"), root, ignore=IGNORE)
    conf = os.path.join(WORK, "selftest.conf")
    # a fixed port (not 0): a second bind of it anywhere in the process would show as an error
    with open(conf, "w") as fh:
        fh.write('plugins = ({ kind = "exporter"; name = "exporter-prometheus";\n'
                 '  settings = { port = %d; }; });\n' % free_port())
    st = Proc([BIN, "-v", "-c", conf, "run-scheduled", "--interval", "2", "--retries", "0",
               "--workers", "1"], env=env_for(root))
    prom = None
    try:
        st.ready.wait(30)
        if not ok(st.port, "run-scheduled announces its metrics port", "".join(st.lines)[-2000:]):
            return
        prom_port = free_port()
        pconf = os.path.join(WORK, "prometheus.yml")
        with open(pconf, "w") as fh:
            fh.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                     "scrape_configs:\n  - job_name: selftest\n    static_configs:\n"
                     "      - targets: ['127.0.0.1:%d']\n" % st.port)
        prom = Proc([prom_exe, "--config.file=" + pconf,
                     "--storage.tsdb.path=" + os.path.join(WORK, "tsdb"),
                     "--web.listen-address=127.0.0.1:%d" % prom_port])
        # two cycles seen by Prometheus (its first scrape comes after about 5 s)
        deadline = time.monotonic() + 90
        runs = None
        while time.monotonic() < deadline:
            res = query(prom_port, "self_test_runs_total")
            if res:
                runs = float(res[0][1])
                if runs >= 2:
                    break
            if st.proc.poll() is not None:
                break
            time.sleep(0.5)
        if not ok(runs is not None and runs >= 2, "Prometheus scraped two cycles",
                  "runs=%r\nselftest stderr tail:\n%s" % (runs, "".join(st.lines)[-2000:])):
            return
        expect = {"self_test_passed_total": 5.0, "self_test_failed_total": 0.0,
                  "self_test_container_failures_total": 0.0,
                  "self_test_container_timeouts_total": 0.0}
        for name in LEGACY:
            res = query(prom_port, name)
            good = bool(res) and len(res) == 1 and res[0][0].get("job") == "selftest"
            if good and name in expect:
                good = float(res[0][1]) == expect[name]
            if good and name == "self_test_average_runtime_seconds":
                good = float(res[0][1]) > 0
            ok(good, "query API returns %s" % name, "got %r" % (res,))
        res = query(prom_port, "self_test_last_run_timestamp_seconds")
        ts = float(res[0][1]) if res else None
        ok(ts is not None and abs(time.time() - ts) < 120,
           "query API returns a recent self_test_last_run_timestamp_seconds", "got %r" % (res,))
        res = query(prom_port, 'up{job="selftest"}')
        is_eq(res and res[0][1], "1", "the target is up")
    finally:
        rc = st.stop()
        is_eq(rc, 0, "SIGTERM stops run-scheduled with exit 0")
        binds = [l for l in st.lines if "exporter-prometheus: serving" in l
                 or "exporter-prometheus: cannot listen" in l]
        ok(len(binds) == 1, "the metrics port is bound once for the whole run-scheduled",
           "".join(binds))
        if prom:
            prom.stop()


