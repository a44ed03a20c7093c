# SPDX-License-Identifier: MIT
"""The wall clock jumps under run-scheduled.

The machine's clock is not touched: the shim tests/fixtures/clockjump (LD_PRELOAD) offsets
CLOCK_REALTIME, time() and gettimeofday() of selftest-core (and of what it starts) by the
seconds written in a file, re-read while it runs. run-scheduled --interval 3 runs; after the
first cycle the wall clock jumps a day forwards, after the third two days backwards. The
schedule and the durations use CLOCK_MONOTONIC, so: no cycles back-to-back after the forward
jump, no stall after the backward one (the gaps between cycles stay near the interval, as
measured by this test's monotonic clock), every cycle is stored in metrics.db and the history
with a positive duration, and the stored start times show the jumps (so the shim did act on
the core: the check can fail).
"""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time

import pytest
import st_helpers as t

BIN = t.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")

INTERVAL = 3.0
DAY = 86400
SHIM = os.path.join(os.environ.get("top_builddir") or t.top_srcdir(), "tests", "fixtures",
                    "clockjump", ".libs", "clockjump.so")


def test_clock_jump_under_run_scheduled(workdir):
    if not os.path.exists(SHIM):
        pytest.skip("the shim %s is not built (make check builds it)" % SHIM)
    work = workdir
    root = os.path.join(work, "passing")
    shutil.copytree(t.fixture("passing"), root,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    t.make_writable(root)
    conf = os.path.join(root, "selftest.conf")
    with open(conf, "w") as fh:
        fh.write('project_root = ".";\npython = "%s";\nretries = 0;\nhistory = "history.json";\n'
                 'plugins = ();\n' % t.PYTHON)
    offset = os.path.join(work, "offset")
    with open(offset, "w") as fh:
        fh.write("0\n")
    env = t.base_env({"LD_PRELOAD": SHIM, "CLOCKJUMP_FILE": offset, "TMPDIR": work})
    ends = []  # (monotonic time, cycle number) of each "cycle N ended" line
    log = []
    proc = subprocess.Popen([BIN, "-v", "-c", conf, "run-scheduled", "--interval", str(INTERVAL),
                             "--workers", "1"], env=env, cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)

    def reader():
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace")
            log.append(line)
            m = re.search(r"run-scheduled: cycle (\d+) ended", line)
            if m:
                ends.append((time.monotonic(), int(m.group(1))))

    th = threading.Thread(target=reader, daemon=True)
    th.start()

    def wait_cycles(n, timeout=120):
        deadline = time.monotonic() + timeout
        while len(ends) < n and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        return len(ends) >= n

    def jump(seconds):
        with open(offset + ".tmp", "w") as fh:
            fh.write("%d\n" % seconds)
        os.rename(offset + ".tmp", offset)

    try:
        ok = wait_cycles(1)
        jump(DAY)  # a day forwards, during the wait for cycle 2
        ok = ok and wait_cycles(3)
        jump(-DAY)  # two days back from there: a day before the real time
        ok = ok and wait_cycles(5)
        t.ok(ok, "run-scheduled ran 5 cycles across the jumps", "".join(log[-20:]))
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            t.kill_group(proc)
            proc.wait()
        th.join(timeout=10)
        t.is_eq(proc.returncode, 0, "SIGTERM after the jumps: exit 0")
        gaps = [round(b[0] - a[0], 2) for a, b in zip(ends, ends[1:5])]
        t.note("gaps between the ends of cycles 1-5: %r s (interval %g s)" % (gaps, INTERVAL))
        # cycles start INTERVAL apart (monotonic); their ends vary by the cycles' durations
        t.ok(len(gaps) == 4 and min(gaps) > INTERVAL * 0.5,
             "no cycles back-to-back after the forward jump", repr(gaps))
        t.ok(len(gaps) == 4 and max(gaps) < INTERVAL * 2 + 3,
             "no stall after the backward jump", repr(gaps))

        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(root, "sandbox_data",
                                                              "metrics.db"), uri=True)
        rows = db.execute("SELECT started_at, finished_at, total_runtime FROM runs ORDER BY id"
                          ).fetchall()
        db.close()
        with open(os.path.join(root, "history.json")) as fh:
            hist = json.load(fh)
        t.ok(len(rows) >= 5 and len(hist) == len(rows),
             "every cycle is in metrics.db and the history (%d, %d)" % (len(rows), len(hist)))
        t.ok(all(0 < r[2] < 60 for r in rows), "every duration is positive and sane (monotonic)",
             repr([r[2] for r in rows]))
        t.ok(all(0 < h.get("runtime", -1) < 60 for h in hist),
             "every history runtime is positive and sane", repr([h.get("runtime") for h in hist]))
        now = time.time()
        starts = [r[0] - now for r in rows[:5]]
        t.note("stored start times relative to the real clock: %r s" % [round(s) for s in starts])
        # the shim acted on the core: cycles 2-3 are stored a day ahead, 4-5 a day behind
        t.ok(len(starts) == 5 and abs(starts[0]) < 120 and
             all(abs(s - DAY) < 120 for s in starts[1:3]) and
             all(abs(s + DAY) < 120 for s in starts[3:5]),
             "the stored wall-clock start times show both jumps", repr(starts))
    finally:
        if proc.poll() is None:
            t.kill_group(proc)
            proc.wait()
