#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Daemon memory over many cycles: run-scheduled on a tiny project with a short interval,
VmRSS of the selftest-core process sampled after cycle WARMUP and after cycle CYCLES (counted in
metrics.db). Goal (issue 6): flat within 1 MB across 200 short cycles.

Usage: bench/daemon_rss.py [--cycles 200] [--warmup 10]   (env as in `make bench`)
"""
import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import shutil

PY = "/usr/bin/python3"


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cycles(db_path):
    try:
        db = sqlite3.connect(db_path, timeout=5)
        n = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        db.close()
        return n
    except sqlite3.Error:
        return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    a = ap.parse_args()
    binary = os.environ.get("SELFTEST_BIN", "./selftest-core")
    work = tempfile.mkdtemp(prefix="selftest-rss-")
    try:
        os.makedirs(os.path.join(work, "tests"))
        with open(os.path.join(work, "tests", "test_a.py"), "w") as f:
            f.write("def test_a():\n    assert True\n\ndef test_b():\n    assert 1 + 1 == 2\n")
        conf = os.path.join(work, "selftest.conf")
        with open(conf, "w") as f:
            f.write('project_root = ".";\npython = "%s";\nretries = 0;\nworkers = 1;\n' % PY)
        db = os.path.join(work, "sandbox_data", "metrics.db")
        p = subprocess.Popen([binary, "-q", "-c", conf, "run-scheduled", "--interval", "0.01",
                              "--history", os.path.join(work, "history.json")],
                             stdout=subprocess.DEVNULL)
        samples = {}
        t0 = time.monotonic()
        while p.poll() is None:
            n = cycles(db)
            if n >= a.warmup and "warm" not in samples:
                samples["warm"] = (n, rss_kb(p.pid))
            if n >= a.cycles:
                samples["end"] = (n, rss_kb(p.pid))
                break
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        (n0, r0), (n1, r1) = samples["warm"], samples["end"]
        print("run-scheduled RSS: %d kB after cycle %d, %d kB after cycle %d: %+d kB "
              "(%.0f s, goal: within 1024 kB)" % (r0, n0, r1, n1, r1 - r0, time.monotonic() - t0))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
