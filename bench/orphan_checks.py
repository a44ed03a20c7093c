#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Wall time of N orphan import checks: orphan_check_mode = "fork" against "process".

A temp project of N small modules (each imports a few standard-library modules), all named on
the command line of `selftest-core run` (so each is checked; no test batch: an empty test file).
The two modes run alternating, REPEAT times each, in the same session; the figures are medians
and their ratio, so a noisy machine moves both sides alike.

Usage: bench/orphan_checks.py [--checks N] [--repeat N] [--workers W]
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


def one(binary, conf, mods, mode, workers, work):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", SELF_TEST_ORPHAN_CHECK_MODE=mode)
    env.pop("SELF_TEST_ARGS", None)
    t = time.monotonic()
    p = subprocess.run([binary, "-q", "-c", conf, "run", "--json", "--workers", str(workers),
                        "--refresh-orphans"] + mods,
                       cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - t
    lines = [l for l in p.stdout.decode().splitlines() if l.startswith("{")]
    res = json.loads(lines[-1]) if lines else {}
    passed = len(res.get("orphan_passed_modules") or [])
    return wall, passed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    binary = os.environ.get("SELFTEST_BIN", "./selftest-core")
    work = tempfile.mkdtemp(prefix="selftest-bench-orphans-")
    try:
        os.makedirs(os.path.join(work, "tests"))
        with open(os.path.join(work, "tests", "test_one.py"), "w") as f:
            f.write("def test_one():\n    pass\n")
        mods = []
        for i in range(args.checks):
            rel = "mod_%02d.py" % i
            with open(os.path.join(work, rel), "w") as f:
                f.write("import json, re, collections, dataclasses\nVALUE = %d\n" % i)
            mods.append(rel)
        conf = os.path.join(work, "bench.conf")
        with open(conf, "w") as f:
            f.write('project_root = "%s";\npython = "%s";\nretries = 0;\nplugins = ();\n'
                    'paths = ["tests"];\npytest_args = "-p no:cacheprovider";\n' % (work, PY))
        times = {"fork": [], "process": []}
        for r in range(args.repeat):
            for mode in ("fork", "process"):
                wall, passed = one(binary, conf, mods, mode, args.workers, work)
                if passed != args.checks:
                    sys.exit("%s mode: %d of %d checks passed" % (mode, passed, args.checks))
                times[mode].append(wall)
        f, p = statistics.median(times["fork"]), statistics.median(times["process"])
        print("orphan checks: %d modules, --workers %d, %d alternating repeats (whole run, one "
              "2-test batch included)" % (args.checks, args.workers, args.repeat))
        print("  process mode: median %.2f s  (%s)" % (p, " ".join("%.2f" % x for x in times["process"])))
        print("  fork mode:    median %.2f s  (%s)" % (f, " ".join("%.2f" % x for x in times["fork"])))
        print("  ratio fork/process: %.2f  (%.2f s saved, %.0f ms per check)"
              % (f / p, p - f, 1000 * (p - f) / args.checks))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
