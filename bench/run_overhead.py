#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Overhead of `selftest-core run` (host runtime) against plain `python3 -m pytest`.

Both run the same networkx test directories (Debian's python3-networkx, copied to a temp dir)
in the same session, alternating, REPEAT times each; the figures are medians and ratios of this
run, so a noisy machine moves both sides alike. Two shapes:
  one-batch:   selftest-core run D          vs  pytest D            (same single pytest process)
  per-path:    selftest-core run A B C --workers 1  vs  pytest A; pytest B; pytest C
It also reports selftest-core's own CPU time (children excluded), from the results object.

Usage: bench/run_overhead.py [--repeat N]   (env SELFTEST_BIN, SELF_TEST_PLUGIN_PATH,
SELF_TEST_SUPPORT_DIR as in `make bench`)
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
NX = "/usr/lib/python3/dist-packages/networkx"
DIRS = ["networkx/algorithms/flow/tests", "networkx/generators/tests",
        "networkx/classes/tests", "networkx/utils/tests"]


def timed(argv, cwd, env):
    t = time.monotonic()
    p = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return time.monotonic() - t, p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    binary = os.environ.get("SELFTEST_BIN", "./selftest-core")
    if not os.path.isdir(NX):
        sys.exit("python3-networkx is not installed (apt-get install python3-networkx)")
    work = tempfile.mkdtemp(prefix="selftest-bench-")
    try:
        shutil.copytree(NX, os.path.join(work, "networkx"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        env.pop("SELF_TEST_ARGS", None)
        conf = os.path.join(work, "bench.conf")
        with open(conf, "w") as f:
            f.write('project_root = "%s";\npython = "%s";\nretries = 0;\n'
                    'pytest_args = "-p no:cacheprovider";\n' % (work, PY))
        st = [binary, "-q", "-c", conf, "run", "--json", "--workers", "1"]
        py = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        shapes = {
            "one-batch": ([st + [os.path.join(work, DIRS[0])]], [py + [DIRS[0]]]),
            "per-path": ([st + [os.path.join(work, d) for d in DIRS]], [py + [d] for d in DIRS]),
        }
        print("selftest-core run vs python3 -m pytest, networkx tests, %d alternating repeats"
              % args.repeat)
        for name, (st_cmds, py_cmds) in shapes.items():
            st_t, py_t, cpu = [], [], []
            for _ in range(args.repeat):
                total = 0.0
                for c in py_cmds:
                    dt, _ = timed(c, work, env)
                    total += dt
                py_t.append(total)
                dt, p = timed(st_cmds[0], work, env)
                st_t.append(dt)
                last = p.stdout.decode().strip().splitlines()[-1]
                cpu.append(json.loads(last)["core_cpu_seconds"])
            ms, mp = statistics.median(st_t), statistics.median(py_t)
            print("  %-10s pytest %.2fs  selftest-core %.2fs  overhead %+.1f%%  core CPU %.1f ms"
                  % (name, mp, ms, 100 * (ms / mp - 1), 1000 * statistics.median(cpu)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
