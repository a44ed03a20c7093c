#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""/metrics under abusive connections: scrape latency with and without idle and slowloris
clients, and the exporter's threads, file descriptors and RSS.

`selftest-core run-scheduled` serves /metrics on a free loopback port (a temp project of two
quick tests, --interval 1, so the body is swapped every cycle). Two phases in the same run:

  baseline  SCRAPES scrapes, one new connection each, one every GAP seconds, nothing else;
  abuse     the same scrapes while IDLE idle connections (connect, send nothing) and SLOW
            slowloris connections (one byte of a never-ending request every BYTE_EVERY s) are
            held: every one the server closes is opened again after REOPEN_DELAY s, so the
            count stays up for the whole phase.

A scrape is `GET /metrics` with `Connection: close`; it succeeds on a 200 whose body holds
self_test_runs_total, read to the end within SCRAPE_TIMEOUT s. A failed scrape counts as
infinitely slow in the percentiles. Reports p50/p99/max of both
phases, failed scrapes, how many abusive connections the server closed, and the peak threads,
fds and VmRSS of the selftest-core process (from /proc) against the baseline. Goal: p99 under
50 ms during the abuse phase, resources bounded.

All traffic goes to 127.0.0.1. Nothing fails on a number: the exit status is 0 when the
measurement ran, 2 when it could not (binary missing, no port announced).

Usage: bench/metrics_abuse.py [--short] [--scrapes N] [--idle N] [--slow N] [--settings S]
Environment: SELFTEST_BIN, SELF_TEST_PLUGIN_PATH, SELF_TEST_SUPPORT_DIR (defaults: this tree).
"""
import argparse
import errno
import json
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
REQUEST = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
# what a slowloris client trickles: a request whose headers never end
SLOW_BYTES = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100000


def raise_nofile(want):
    """Raise this process's soft RLIMIT_NOFILE towards want (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def proc_stats(pid):
    """(threads, fds, VmRSS kB) of pid, or None when it is gone."""
    try:
        threads = len(os.listdir("/proc/%d/task" % pid))
        fds = len(os.listdir("/proc/%d/fd" % pid))
        rss = 0
        with open("/proc/%d/status" % pid) as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        return threads, fds, rss
    except OSError:
        return None


def scrape(port, timeout=5.0):
    """(seconds, None) for a good scrape, or (seconds, reason)."""
    t0 = time.perf_counter()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    data = b""
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(REQUEST)
        while True:
            left = timeout - (time.perf_counter() - t0)
            if left <= 0:
                return time.perf_counter() - t0, "timeout after %d bytes" % len(data)
            s.settimeout(left)
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        return time.perf_counter() - t0, "%s after %d bytes" % (e, len(data))
    finally:
        s.close()
    dt = time.perf_counter() - t0
    if not data.startswith(b"HTTP/1.1 200 ") or b"\nself_test_runs_total " not in data:
        return dt, "bad answer: %r" % data[:80]
    return dt, None


class Abuser:
    """Holds `idle` idle and `slow` slowloris connections to 127.0.0.1:port on one thread;
    reopens each one the server closes after reopen_delay seconds."""

    def __init__(self, port, idle, slow, byte_every=2.0, reopen_delay=0.1):
        self.port, self.byte_every, self.reopen_delay = port, byte_every, reopen_delay
        self.kinds = ["idle"] * idle + ["slow"] * slow
        self.sel = selectors.DefaultSelector()
        self.socks = {}          # slot -> socket
        self.sent = {}           # slot -> bytes of SLOW_BYTES sent
        self.next_byte = {}      # slot -> when the next slow byte is due
        self.reopen_at = {}      # slot -> when to open it again
        self.opened = 0
        self.closed_by_server = 0
        self.open_errors = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        now = time.monotonic()
        for slot in range(len(self.kinds)):
            self.reopen_at[slot] = now
        self.thread.start()

    def held(self):
        return len(self.socks)

    def stop(self):
        self._stop.set()
        self.thread.join(30)
        for s in list(self.socks.values()):
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        self.socks.clear()
        self.sel.close()

    def _open(self, slot, now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        rc = s.connect_ex(("127.0.0.1", self.port))
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            self.open_errors += 1
            self.reopen_at[slot] = now + self.reopen_delay
            return
        self.socks[slot] = s
        self.sent[slot] = 0
        self.next_byte[slot] = now  # the first byte goes out as soon as connected
        self.sel.register(s, selectors.EVENT_READ, slot)
        self.opened += 1

    def _lost(self, slot, now):
        s = self.socks.pop(slot)
        self.sel.unregister(s)
        s.close()
        self.closed_by_server += 1
        self.reopen_at[slot] = now + self.reopen_delay

    def _run(self):
        while not self._stop.is_set():
            now = time.monotonic()
            for slot, when in list(self.reopen_at.items()):
                if when <= now:
                    del self.reopen_at[slot]
                    self._open(slot, now)
            for slot, s in list(self.socks.items()):
                if self.kinds[slot] != "slow" or self.next_byte[slot] > now:
                    continue
                i = self.sent[slot] % len(SLOW_BYTES)
                try:
                    n = s.send(SLOW_BYTES[i:i + 1])
                except BlockingIOError:
                    n = 0  # still connecting
                except OSError:
                    self._lost(slot, now)
                    continue
                self.sent[slot] += n
                self.next_byte[slot] = now + (self.byte_every if n else 0.05)
            for key, _ in self.sel.select(timeout=0.05):
                slot = key.data
                if slot not in self.socks:
                    continue
                try:
                    data = key.fileobj.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self._lost(slot, time.monotonic())
                # an answer (e.g. 408) is read and dropped; the close follows


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


class Server:
    """selftest-core run-scheduled serving /metrics on port 0 for a temp two-test project."""

    def __init__(self, binary, settings="", interval="1"):
        self.work = tempfile.mkdtemp(prefix="st-metrics-abuse-")
        proj = os.path.join(self.work, "proj")
        os.makedirs(os.path.join(proj, "tests"))
        with open(os.path.join(proj, "pytest.ini"), "w") as fh:
            fh.write("[pytest]\n")
        with open(os.path.join(proj, "tests", "test_a.py"), "w") as fh:
            fh.write("def test_a():\n    assert True\n\n\ndef test_b():\n    assert 1 + 1 == 2\n")
        conf = os.path.join(self.work, "selftest.conf")
        with open(conf, "w") as fh:
            fh.write('plugins = ({ kind = "exporter"; name = "exporter-prometheus";\n'
                     '  settings = { port = 0; %s }; });\n' % settings)
        env = dict(os.environ)
        env.setdefault("SELF_TEST_PLUGIN_PATH", os.path.join(TOP, "plugins"))
        env.setdefault("SELF_TEST_SUPPORT_DIR", os.path.join(TOP, "python"))
        env["SANDBOX_REPO_PATH"] = proj
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        for k in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_XDIST_WORKER"):
            env.pop(k, None)
        self.lines = []
        self.port = None
        self._ready = threading.Event()
        self.proc = subprocess.Popen(
            [binary, "-v", "-c", conf, "run-scheduled", "--interval", interval, "--retries",
             "0", "--workers", "1"], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            m = re.search(r"serving http://127\.0\.0\.1:(\d+)/metrics", line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout=30):
        self._ready.wait(timeout)
        return self.port

    def stop(self):
        rc = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        else:
            rc = self.proc.returncode
        shutil.rmtree(self.work, ignore_errors=True)
        return rc


def scrape_series(port, n, gap, timeout, pid, stats):
    """n scrapes one after the other; latencies of the good ones, and the failures."""
    lat, fails = [], []
    for _ in range(n):
        dt, why = scrape(port, timeout)
        if why:
            fails.append(why)
        else:
            lat.append(dt)
        st = proc_stats(pid)
        if st:
            stats.append(st)
        time.sleep(gap)
    return lat, fails


def summarize(name, lat, fails, n):
    """Percentiles over every scrape, a failed one counting as infinitely slow."""
    ms = [x * 1000 for x in lat]
    every = ms + [float("inf")] * len(fails)
    return {"phase": name, "scrapes": n, "ok": len(lat), "failed": len(fails),
            "p50_ms": round(percentile(every, 50), 2), "p99_ms": round(percentile(every, 99), 2),
            "max_ms": round(max(ms), 2) if ms else None,
            "first_failures": fails[:3]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--short", action="store_true", help="CI mode: 100 scrapes per phase")
    ap.add_argument("--scrapes", type=int, default=1000)
    ap.add_argument("--gap", type=float, default=0.01, help="seconds between scrapes")
    ap.add_argument("--idle", type=int, default=500)
    ap.add_argument("--slow", type=int, default=50)
    ap.add_argument("--byte-every", type=float, default=2.0)
    ap.add_argument("--reopen-delay", type=float, default=0.1)
    ap.add_argument("--scrape-timeout", type=float, default=5.0)
    ap.add_argument("--settings", default="", help="extra exporter settings, libconfig text")
    a = ap.parse_args()
    if a.short:
        a.scrapes = min(a.scrapes, 100)
    # SIGTERM/SIGINT: unwind, so the server and the connections are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    binary = os.environ.get("SELFTEST_BIN", os.path.join(TOP, "selftest-core"))
    if not os.access(binary, os.X_OK):
        print("metrics_abuse: %s is not executable (set SELFTEST_BIN)" % binary, file=sys.stderr)
        return 2
    nofile = raise_nofile(a.idle + a.slow + 256)
    if nofile < a.idle + a.slow + 64:
        print("metrics_abuse: RLIMIT_NOFILE %d is too low for %d connections" %
              (nofile, a.idle + a.slow), file=sys.stderr)
        return 2
    srv = Server(binary, a.settings)
    abuser = None
    try:
        port = srv.wait_ready()
        if not port:
            print("metrics_abuse: no port announced; stderr:\n" + "".join(srv.lines)[-2000:],
                  file=sys.stderr)
            return 2
        pid = srv.proc.pid
        time.sleep(1.0)
        base_stats, abuse_stats = [], []
        lat0, fail0 = scrape_series(port, a.scrapes, a.gap, a.scrape_timeout, pid, base_stats)
        abuser = Abuser(port, a.idle, a.slow, a.byte_every, a.reopen_delay)
        abuser.start()
        deadline = time.monotonic() + 10
        while abuser.opened < a.idle + a.slow and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.5)  # every slowloris client has sent a byte or two
        closed_before = abuser.closed_by_server
        t0 = time.monotonic()
        lat1, fail1 = scrape_series(port, a.scrapes, a.gap, a.scrape_timeout, pid, abuse_stats)
        elapsed = time.monotonic() - t0
        held = abuser.held()
        closed = abuser.closed_by_server - closed_before
        abuser.stop()
        abuser = None
        res = {
            "baseline": summarize("baseline", lat0, fail0, a.scrapes),
            "abuse": summarize("abuse", lat1, fail1, a.scrapes),
            "abuse_idle": a.idle, "abuse_slow": a.slow, "abuse_held_at_end": held,
            "abuse_closed_by_server_per_s": round(closed / elapsed, 1) if elapsed else None,
            "settings": a.settings or "(defaults)",
        }
        for key, samples in (("baseline_proc", base_stats), ("abuse_proc", abuse_stats)):
            if samples:
                res[key] = {"threads_max": max(s[0] for s in samples),
                            "fds_max": max(s[1] for s in samples),
                            "rss_kb_max": max(s[2] for s in samples),
                            "rss_kb_first": samples[0][2], "rss_kb_last": samples[-1][2]}
        print("metrics_abuse: %d scrapes per phase; abuse: %d idle + %d slowloris "
              "(a byte every %gs), reopened %gs after the server closes one" %
              (a.scrapes, a.idle, a.slow, a.byte_every, a.reopen_delay))
        for ph in ("baseline", "abuse"):
            r = res[ph]
            pr = res.get(ph + "_proc", {})
            print("  %-8s ok %4d/%-4d p50 %7.2f ms  p99 %7.2f ms  max %8.2f ms  "
                  "threads %s fds %s rss %s kB" %
                  (ph, r["ok"], r["scrapes"], r["p50_ms"], r["p99_ms"], r["max_ms"] or -1,
                   pr.get("threads_max"), pr.get("fds_max"), pr.get("rss_kb_max")))
        print("  abusive connections the server closed: %s/s; held at the end: %d" %
              (res["abuse_closed_by_server_per_s"], held))
        if "abuse_proc" in res:
            print("  VmRSS under abuse: %d kB after the first scrape, %d kB after the last" %
                  (res["abuse_proc"]["rss_kb_first"], res["abuse_proc"]["rss_kb_last"]))
        p99 = res["abuse"]["p99_ms"]
        met = p99 < 50
        print("metrics_abuse: abuse p99 %.2f ms (baseline %.2f ms), %d of %d failed "
              "(goal: p99 < 50 ms): %s" % (p99, res["baseline"]["p99_ms"], res["abuse"]["failed"],
                                          a.scrapes, "met" if met else "MISSED"))
        print("metrics_abuse: json " + json.dumps(res, sort_keys=True))
        return 0
    finally:
        if abuser:
            abuser.stop()
        srv.stop()


if __name__ == "__main__":
    sys.exit(main())
