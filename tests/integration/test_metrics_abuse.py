# SPDX-License-Identifier: MIT
"""/metrics keeps answering while idle and slowloris clients hold connections.

`selftest-core run-scheduled --interval 1` serves /metrics with the exporter's default limits on
a free loopback port (a temp project of two quick tests). After a baseline (scrapes, and the
process's threads, fds and VmRSS from /proc), 500 idle connections (connect, send nothing) and
50 slowloris connections (one byte of a never-ending request every 2 s) are opened, and each one
the server closes is opened again 0.1 s later, so they stay held for the whole test. While they
are: 20 scrapes (a new connection each, `Connection: close`) must each get a complete 200 within
2 s, with a median under 200 ms; the exporter's threads must not grow by more than one, its fds
by more than the default connection_limit (512) plus libmicrohttpd's slack (32), its VmRSS by
more than 16 MB. The server must say that it closed connections, answer again once the abuse
stops, and stop with exit 0 on SIGTERM.

On the old exporter (connection_limit 64, an inactivity timeout that a byte every 2 s resets)
no scrape gets through. All traffic goes to 127.0.0.1; about 20 s in all (at most about 60 s
when scrapes time out). The client code is bench/metrics_abuse.py's.
"""

import importlib.util
import os
import statistics
import time

import pytest
import st_helpers as sth
from st_helpers import is_eq, note, ok

IDLE, SLOW = 500, 50
SCRAPES, SCRAPE_TIMEOUT = 20, 2.0
CONN_LIMIT_DEFAULT, MHD_SLACK = 512, 32

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")

spec = importlib.util.spec_from_file_location(
    "metrics_abuse", os.path.join(sth.top_srcdir(), "bench", "metrics_abuse.py"))
ma = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ma)


def scheduled_known():
    rc, out, err = sth.run([BIN, "run-scheduled", "--help"], env=sth.base_env(), timeout=30)
    if rc != 0:
        return False, "run-scheduled --help exited %r: %s" % (rc, (out + err).strip()[:200])
    return True, ""


def test_metrics_under_idle_and_slowloris_connections():
    """/metrics answers under idle and slowloris connections"""
    known, why = scheduled_known()
    if not known:
        pytest.skip(why)
    nofile = ma.raise_nofile(IDLE + SLOW + 256)
    if nofile < IDLE + SLOW + 64:
        pytest.skip("RLIMIT_NOFILE %d cannot hold %d connections" % (nofile, IDLE + SLOW))
    os.environ.setdefault("SELF_TEST_PLUGIN_PATH", os.path.join(sth.top_srcdir(), "plugins"))
    srv = ma.Server(BIN)
    abuser = None
    try:
        port = srv.wait_ready()
        if not ok(port, "run-scheduled announces its metrics port", "".join(srv.lines)[-2000:]):
            return
        pid = srv.proc.pid
        base = []
        lat0, fail0 = ma.scrape_series(port, 15, 0.2, SCRAPE_TIMEOUT, pid, base)
        ok(not fail0, "baseline: every scrape answers", "%r" % fail0[:3])
        base_threads = max(s[0] for s in base)
        base_fds = max(s[1] for s in base)
        base_rss = max(s[2] for s in base)
        note("baseline: median %.2f ms; threads %d, fds %d, rss %d kB" %
             (statistics.median(lat0) * 1000 if lat0 else -1, base_threads, base_fds, base_rss))

        abuser = ma.Abuser(port, IDLE, SLOW, byte_every=2.0, reopen_delay=0.1)
        abuser.start()
        deadline = time.monotonic() + 15
        while abuser.opened < IDLE + SLOW and time.monotonic() < deadline:
            time.sleep(0.05)
        ok(abuser.opened >= IDLE + SLOW, "%d idle and %d slowloris connections opened" %
           (IDLE, SLOW), "opened %d, errors %d" % (abuser.opened, abuser.open_errors))
        time.sleep(2.5)  # every slowloris client has sent a byte or two

        during = []
        lat, fails = ma.scrape_series(port, SCRAPES, 0.1, SCRAPE_TIMEOUT, pid, during)
        note("under abuse: %d/%d answered, median %.2f ms, max %.2f ms; server closed %d "
             "abusive connections, %d held now" %
             (len(lat), SCRAPES, statistics.median(lat) * 1000 if lat else -1,
              max(lat) * 1000 if lat else -1, abuser.closed_by_server, abuser.held()))
        ok(not fails, "every scrape answers within %g s while %d idle and %d slowloris "
           "connections are held" % (SCRAPE_TIMEOUT, IDLE, SLOW),
           "%d of %d failed: %r" % (len(fails), SCRAPES, fails[:3]))
        med = statistics.median(lat) if lat else None
        ok(med is not None and med < 0.2, "the median scrape under abuse takes under 200 ms",
           "median %r s" % med)
        ok(during, "the exporter's process was sampled under abuse")
        if during:
            threads = max(s[0] for s in during)
            fds = max(s[1] for s in during)
            rss = max(s[2] for s in during)
            ok(threads <= base_threads + 1, "threads stay bounded (%d; baseline %d)" %
               (threads, base_threads))
            ok(fds <= base_fds + CONN_LIMIT_DEFAULT + MHD_SLACK,
               "fds stay bounded (%d; baseline %d + %d + %d)" %
               (fds, base_fds, CONN_LIMIT_DEFAULT, MHD_SLACK))
            ok(rss <= base_rss + 16 * 1024, "VmRSS stays bounded (%d kB; baseline %d kB)" %
               (rss, base_rss))
        ok(any("closed" in l and "idle or slow connections" in l for l in srv.lines),
           "the exporter reports the connections it closed", "".join(srv.lines)[-1500:])
        abuser.stop()
        abuser = None
        dt, why = ma.scrape(port, SCRAPE_TIMEOUT)
        ok(why is None, "a scrape answers after the abuse stops", why)
    finally:
        if abuser:
            abuser.stop()
        rc = srv.stop()
        is_eq(rc, 0, "SIGTERM stops run-scheduled with exit 0")

