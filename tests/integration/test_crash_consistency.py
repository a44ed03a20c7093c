# SPDX-License-Identifier: MIT
"""Crash consistency: the core is killed with SIGKILL at random points (fixed seed) of `run` and
`run-scheduled` on a copy of the bundled sample project (tests, coverage, an orphan module that is
checked and integrated, a history file).  After every kill: metrics.db and workflows.db pass
PRAGMA integrity_check, every JSON state file in the data dir and the history parse, and the next
run obtains the lock.  At the end: no process of the killed runs is left, no work directory
(selftest-*) is left in $TMPDIR, and a normal cycle reports the right counts and stores them.

SELF_TEST_CRASH_TRIALS sets the number of trials (default 50; a longer mode: e.g. 500)."""
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest
import st_helpers as t

pytestmark = pytest.mark.usefixtures("selftest_bin")

SEED = 20261127
STATE_JSON = ("orphan_modules.json", "orphan_classifications.json", "orphan_check_cache.json",
              "module_map.json", "preflight_cache.json")
# every run of the sample: 7 tests pass, calc/legacy_report.py is an orphan that passes its check
# and is integrated (listed in module_map.json) by the first cycle that completes.
SAMPLE_PASSED = 7
ORPHAN = "calc/legacy_report.py"


def make_project(tmp):
    proj = os.path.join(tmp, "proj")
    shutil.copytree(t.fixture("sample"), proj)
    top = t.top_srcdir()
    plugins = os.environ.get("SELF_TEST_PLUGIN_PATH") or os.path.join(top, "plugins")
    conf = os.path.join(proj, "selftest.conf")
    with open(conf, "w") as f:
        f.write('project_root = ".";\npaths = ["tests"];\nruntime = "host";\ncoverage = true;\n'
                'python = "%s";\nretries = 0;\nworkers = 2;\nplugin_path = ["%s"];\n'
                'support_dir = "%s";\n' % (t.PYTHON, plugins, t.support_dir()))
    with open(os.path.join(proj, "nowait.conf"), "w") as f:
        f.write('@include "%s"\nlock_timeout = 1;\n' % conf)
    tmpdir = os.path.join(tmp, "tmpdir")
    os.makedirs(tmpdir)
    return proj, conf, tmpdir


def procs_with(marker, exclude=()):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid() or int(pid) in exclude:
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def check_state(data, hist):
    """Problems found in the data dir's stores and the history (an empty list when all is well)."""
    bad = []
    for name in ("metrics.db", "workflows.db"):
        path = os.path.join(data, name)
        if not os.path.exists(path):
            continue
        try:
            db = sqlite3.connect(path, timeout=10)
            res = db.execute("PRAGMA integrity_check").fetchall()
            db.close()
            if res != [("ok",)]:
                bad.append((name, res))
        except sqlite3.Error as e:
            bad.append((name, str(e)))
    for path in [os.path.join(data, n) for n in STATE_JSON] + [hist]:
        if not os.path.exists(path):
            continue
        try:
            with open(path) as f:
                json.load(f)
        except ValueError as e:
            bad.append((os.path.basename(path), str(e)))
    return bad


def lock_free(conf, env):
    """The next run obtains the lock at once (lock_timeout 1 s): `discover` takes the run lock."""
    nowait = os.path.join(os.path.dirname(conf), "nowait.conf")
    rc, out, err = t.run([t.selftest_bin(), "-c", nowait, "discover"], env=env, timeout=60)
    return rc == 0, err


def test_sigkill_at_random_points(workdir):
    trials = int(os.environ.get("SELF_TEST_CRASH_TRIALS", "50"))
    rng = random.Random(SEED)
    tmp = workdir
    proj, conf, tmpdir = make_project(tmp)
    data = os.path.join(proj, "sandbox_data")
    hist = os.path.join(data, "history.json")
    env = t.base_env({"TMPDIR": tmpdir})
    marker = proj

    # the span of a cycle on this machine, to spread the kills over it: the longer of a
    # first cycle (orphan check, integration) and a second one (a load spike can make either
    # look short)
    spans = []
    for n in range(2):
        t0 = time.monotonic()
        rc, out, err = t.run([t.selftest_bin(), "-c", conf, "run", "--history", hist],
                             env=env, timeout=120)
        spans.append(time.monotonic() - t0)
        t.is_eq(rc, 0, "cycle %d of the sample completes (%.1fs)" % (n + 1, spans[-1]))
        if rc != 0:
            t.note(err)
    span = max(spans)
    # start over, so that the kills also land in the first cycle's writes
    shutil.rmtree(data, ignore_errors=True)

    state_bad, lock_bad, leftovers, killed_mid, outcomes = [], [], [], 0, {}
    t_start = time.monotonic()
    for i in range(trials):
        scheduled = i % 2 == 1
        argv = [t.selftest_bin(), "-c", conf]
        if scheduled:
            argv += ["run-scheduled", "--interval", "0.1", "--history", hist]
            delay = rng.uniform(0.0, 1.2 * span)
        else:
            argv += ["run", "--history", hist]
            delay = rng.uniform(0.0, span)
        # the core in its own session (so that nothing here gets its signals); only the core
        # is killed: what it started must not outlive it
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_mid += 1
            outcome = "killed"
        else:
            outcome = "finished"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        proc.wait()
        # what the killed core started has a moment to go
        deadline = time.monotonic() + 3.0
        left = procs_with(marker)
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = procs_with(marker)
        if left:
            leftovers.append((i, len(left)))
            for pid in left:  # so that they do not disturb the next trials
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.2)
        problems = check_state(data, hist)
        if problems:
            state_bad.append((i, "run-scheduled" if scheduled else "run", delay, problems))
        got, err = lock_free(conf, env)
        if not got:
            lock_bad.append((i, err.strip()[-300:]))
    elapsed = time.monotonic() - t_start

    t.note("%d trials (%d killed mid-cycle) in %.0fs, outcomes %r" %
           (trials, killed_mid, elapsed, outcomes))
    t.ok(killed_mid >= trials // 2, "SIGKILL landed during %d of %d runs" % (killed_mid, trials))
    t.ok(not state_bad, "metrics.db, workflows.db, the JSON state files and the history are "
         "valid after every SIGKILL", state_bad[:5])
    t.ok(not lock_bad, "the next run obtains the lock after every SIGKILL", lock_bad[:5])
    t.ok(not leftovers, "no process of a killed run is left (%d trials with leftovers)" %
         len(leftovers), leftovers[:10])

    # the next cycle: right counts, stored, and the work dirs of the killed runs removed
    rc, out, err = t.run([t.selftest_bin(), "-c", conf, "run", "--json", "--history", hist],
                         env=env, timeout=120)
    lines = [l for l in out.splitlines() if l.startswith("{")]
    res = json.loads(lines[-1]) if lines else {}
    t.is_eq(rc, 0, "the next cycle after the kills exits 0")
    t.is_eq([res.get(k) for k in ("passed", "failed", "errors", "skipped")],
            [SAMPLE_PASSED, 0, 0, 0], "the next cycle's test counts are right", )
    with open(os.path.join(data, "module_map.json")) as f:
        mm = f.read()
    t.ok(ORPHAN in mm or ORPHAN in (res.get("orphan_passed") or []),
         "the orphan module is integrated (module_map.json) or passes its check again",
         (mm, res.get("orphan_checks")))
    t.ok(not res.get("orphan_failed") and not res.get("orphan_unmet"),
         "no orphan check fails after the kills", res.get("orphan_checks"))
    db = sqlite3.connect(os.path.join(data, "metrics.db"))
    row = db.execute("SELECT run_id, passed, failed, aborted FROM runs ORDER BY id DESC "
                     "LIMIT 1").fetchone()
    n_out = db.execute("SELECT COUNT(*) FROM test_outcomes o WHERE o.run = "
                       "(SELECT MAX(id) FROM runs)").fetchone()[0]
    db.close()
    t.is_eq(row, (res.get("run_id"), SAMPLE_PASSED, 0, 0),
            "metrics.db stores the next cycle with its counts")
    t.is_eq(n_out, SAMPLE_PASSED, "metrics.db holds one outcome row per test of that cycle")
    with open(hist) as f:
        h = json.load(f)
    t.ok(isinstance(h, list) and h and h[-1].get("passed") == SAMPLE_PASSED,
         "the history's last entry is the next cycle", h[-1:] if isinstance(h, list) else h)
    left_dirs = sorted(n for n in os.listdir(tmpdir) if n.startswith("selftest-"))
    t.is_eq(left_dirs, [], "no work directory of the killed runs is left in $TMPDIR")
    t.is_eq(procs_with(marker), [], "no process is left after the next cycle")
