#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Flaky tests: do intermittent tests stay out of the verdicts, and what do the reruns cost?

A fixture project holds INTERMITTENT tests that fail with probability P on each attempt (each
draw from random.Random("SEED-TEST-CYCLE-ATTEMPT"): the same seed gives the same failures),
STABLE tests that always pass, and 2 of them broken on purpose from cycle BREAK_AT on. CYCLES
cycles run with `rerun_failures = RERUNS` (and, as the baseline, the same cycles with
`rerun_failures = 0`: the same draws for the first attempts), each a `selftest-core run --json`
on the host. Reported, against the goals of issue 15:

  - intermittent tests reported as regressions, and cycles failed by an intermittent test
    (goal: 0 with reruns);
  - whether both broken tests are regressions in cycle BREAK_AT (goal: yes);
  - the first cycle by which every intermittent test is above flaky_threshold in
    `selftest-core flaky --json` (goal: cycle 10 or earlier);
  - the wall time reruns cost: the cycles' rerun_runtime (the core's own measure), and the mean
    cycle wall time with and without reruns.

Exits 1 when a goal is missed (the figures are printed either way).

Usage: bench/flaky.py [--cycles N] [--seed S] [--probability P] [--reruns R] [--short]
  --short: 6 cycles, the break at cycle 3, no baseline (a quick check that it all runs)
(env SELFTEST_BIN, SELF_TEST_PLUGIN_PATH, SELF_TEST_SUPPORT_DIR as in `make bench`)
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PY = "/usr/bin/python3"
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTERMITTENT = 10
STABLE = 20
BROKEN = ("test_broken_0", "test_broken_1")

TEST_SOURCE = '''import os
import pathlib
import random

import pytest

SEED = os.environ["BENCH_SEED"]
CYCLE = int(os.environ["BENCH_CYCLE"])
P = float(os.environ["BENCH_P"])


def attempt(name):
    """This test's attempt in this cycle (1 for the batch, 2 for the first rerun, ...)."""
    p = pathlib.Path(os.environ["BENCH_STATE"], "%d-%s" % (CYCLE, name))
    n = int(p.read_text()) + 1 if p.exists() else 1
    p.write_text(str(n))
    return n


@pytest.mark.parametrize("i", range({n}))
def test_intermittent(i):
    name = "intermittent-%d" % i
    a = attempt(name)
    draw = random.Random("%s-%s-%d-%d" % (SEED, name, CYCLE, a)).random()
    assert draw >= P, "intermittent %d failed (attempt %d, draw %.3f < %.2f)" % (i, a, draw, P)
'''

STABLE_SOURCE = '''import os

import pytest

CYCLE = int(os.environ["BENCH_CYCLE"])
BREAK_AT = int(os.environ["BENCH_BREAK_AT"])


@pytest.mark.parametrize("i", range({n}))
def test_stable(i):
    assert i >= 0


def test_broken_0():
    assert CYCLE < BREAK_AT, "broken on purpose from cycle %d" % BREAK_AT


def test_broken_1():
    assert CYCLE < BREAK_AT, "broken on purpose from cycle %d" % BREAK_AT
'''


def env_for(args, state, cycle, break_at):
    env = dict(os.environ)
    for k in ("SELF_TEST_ARGS", "SELF_TEST_WORKERS", "SELF_TEST_TIMEOUT", "SELF_TEST_RETRIES",
              "SANDBOX_REPO_PATH", "SANDBOX_DATA_DIR", "SELF_TEST_PYTHON",
              "SELF_TEST_RERUN_FAILURES", "PYTEST_ADDOPTS"):
        env.pop(k, None)
    env.setdefault("SELF_TEST_PLUGIN_PATH", os.path.join(TOP, "plugins"))
    env.setdefault("SELF_TEST_SUPPORT_DIR", os.path.join(TOP, "python"))
    env["SELF_TEST_PLUGIN_SYSTEM_PATH"] = ""
    env.update({"BENCH_SEED": str(args.seed), "BENCH_CYCLE": str(cycle),
                "BENCH_P": str(args.probability), "BENCH_STATE": state,
                "BENCH_BREAK_AT": str(break_at), "PYTHONDONTWRITEBYTECODE": "1"})
    return env


def make_project(work, reruns):
    root = os.path.join(work, "project")
    os.makedirs(os.path.join(root, "tests"))
    with open(os.path.join(root, "pytest.ini"), "w") as fh:
        fh.write("[pytest]\n")
    with open(os.path.join(root, "tests", "test_intermittent.py"), "w") as fh:
        fh.write(TEST_SOURCE.replace("{n}", str(INTERMITTENT)))
    with open(os.path.join(root, "tests", "test_stable.py"), "w") as fh:
        fh.write(STABLE_SOURCE.replace("{n}", str(STABLE)))
    conf = os.path.join(work, "selftest.conf")
    with open(conf, "w") as fh:
        fh.write('project_root = "%s";\npython = "%s";\npaths = ["tests"];\nretries = 0;\n'
                 'workers = 2;\nrerun_failures = %d;\nplugins = ();\n' % (root, PY, reruns))
    state = os.path.join(work, "state")
    os.makedirs(state)
    return conf, state


def series(args, reruns, cycles, break_at, binary):
    """Runs the cycles; returns one record per cycle and the cycle by which every intermittent
    test was above the threshold (None: never)."""
    work = tempfile.mkdtemp(prefix="bench-flaky-")
    try:
        conf, state = make_project(work, reruns)
        records, all_flagged_at = [], None
        for cycle in range(1, cycles + 1):
            env = env_for(args, state, cycle, break_at)
            t0 = time.monotonic()
            p = subprocess.run([binary, "-q", "-c", conf, "run", "--json"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            wall = time.monotonic() - t0
            res = {}
            for line in p.stdout.splitlines():
                if line.startswith('{"event":"results"'):
                    res = json.loads(line)
            if not res:
                sys.exit("cycle %d: no results (exit %d): %s" % (cycle, p.returncode,
                                                                 p.stderr[-2000:]))
            failed = sorted({t["nodeid"] for t in res["tests"] if t["outcome"] == "failed"})
            records.append({"cycle": cycle, "exit": p.returncode, "wall": wall,
                            "rerun_runtime": res.get("rerun_runtime", 0),
                            "reruns": res.get("reruns", 0),
                            "regressions": res.get("regressions", []),
                            "flaky": res.get("flaky", []), "failed": failed})
            if reruns and all_flagged_at is None:
                q = subprocess.run([binary, "-q", "-c", conf, "flaky", "--json"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                listed = {t["nodeid"] for t in json.loads(q.stdout or "{}").get("tests", [])}
                if sum("test_intermittent[" in n for n in listed) == INTERMITTENT:
                    all_flagged_at = cycle
        return records, all_flagged_at
    finally:
        shutil.rmtree(work, ignore_errors=True)


def intermittent(nodes):
    return [n for n in nodes if "test_intermittent[" in n]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--probability", type=float, default=0.2)
    ap.add_argument("--reruns", type=int, default=2)
    ap.add_argument("--short", action="store_true")
    args = ap.parse_args()
    binary = os.environ.get("SELFTEST_BIN") or os.path.join(TOP, "selftest-core")
    cycles, break_at = (6, 3) if args.short else (args.cycles, 5)
    print("flaky bench: %d intermittent tests (p = %.2f per attempt, seed %d), %d stable, 2 "
          "broken from cycle %d; %d cycles, rerun_failures = %d"
          % (INTERMITTENT, args.probability, args.seed, STABLE, break_at, cycles, args.reruns))
    recs, flagged_at = series(args, args.reruns, cycles, break_at, binary)
    base = None if args.short else series(args, 0, cycles, break_at, binary)[0]

    def summarize(label, rs):
        regs = sum(len(intermittent(r["regressions"])) for r in rs)
        failing = [r["cycle"] for r in rs if intermittent(r["failed"])]
        print("%-22s intermittent regressions %2d; cycles an intermittent test failed: %s; "
              "flaky outcomes %3d; mean cycle %.2fs"
              % (label, regs, failing or "none", sum(len(r["flaky"]) for r in rs),
                 statistics.mean(r["wall"] for r in rs)))
        return regs, failing

    regs, failing = summarize("rerun_failures = %d:" % args.reruns, recs)
    if base:
        summarize("rerun_failures = 0:", base)
    at_break = recs[break_at - 1]
    broken = sorted(n.split("::")[-1] for n in at_break["regressions"] if "test_broken_" in n)
    print("cycle %d regressions: %s" % (break_at, at_break["regressions"]))
    print("every intermittent test above flaky_threshold by cycle: %s" % flagged_at)
    # no history can flag a test before its first flaky run: when each test first was flaky
    first = {}
    for r in recs:
        for n in intermittent(r["flaky"]):
            first.setdefault(n, r["cycle"])
    print("first flaky cycle of each intermittent test: %s"
          % ", ".join("%s: %s" % (i, first.get("tests/test_intermittent.py::"
                                               "test_intermittent[%d]" % i, "never"))
                      for i in range(INTERMITTENT)))
    rr = sum(r["rerun_runtime"] for r in recs)
    print("reruns: %d in all, %.2fs of %.2fs of cycle wall time (%.1f%%); per rerun %.3fs"
          % (sum(r["reruns"] for r in recs), rr, sum(r["wall"] for r in recs),
             100 * rr / max(sum(r["wall"] for r in recs), 1e-9),
             rr / max(sum(r["reruns"] for r in recs), 1)))
    if base:
        print("mean cycle wall time: %.2fs with reruns, %.2fs without (+%.2fs)"
              % (statistics.mean(r["wall"] for r in recs),
                 statistics.mean(r["wall"] for r in base),
                 statistics.mean(r["wall"] for r in recs) -
                 statistics.mean(r["wall"] for r in base)))
    goals = {"0 intermittent regressions": regs == 0,
             "0 cycles failed by an intermittent test": not failing,
             "both broken tests are regressions in cycle %d" % break_at:
                 broken == list(BROKEN),
             "every intermittent test flagged by cycle %d" % (10 if not args.short else cycles):
                 flagged_at is not None and flagged_at <= (10 if not args.short else cycles)}
    for name, met in goals.items():
        print("goal %-50s %s" % (name, "met" if met else "MISSED"))
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
