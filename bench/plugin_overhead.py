#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What the bundled pytest plugin costs a test, against the same pytest without it.

A generated suite of N trivial tests (one parametrized function) runs alternately REPEAT times
as `python3 -m pytest -q -p no:cacheprovider` and the same with `-p selftest_pytest_plugin`
writing its results file (as in a batch), the plugin byte-compiled as installed. Reported: the
CPU time of each (the minimum over the repeats: the CPU speed of a shared machine moves both
alike), the plugin's cost a test and the ratio, of this run.

Usage: bench/plugin_overhead.py [--repeat R] [--tests N]   (env SELF_TEST_SUPPORT_DIR)
"""
import argparse
import os
import resource
import shutil
import subprocess
import tempfile

from vs_pytest import PY, compiled_support


def cpu_of(argv, cwd, env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--tests", type=int, default=3000)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="selftest-bench-plugin-")
    try:
        suite = os.path.join(work, "suite")
        os.mkdir(suite)
        with open(os.path.join(suite, "pytest.ini"), "w") as fh:
            fh.write("[pytest]\n")
        with open(os.path.join(suite, "test_many.py"), "w") as fh:
            fh.write("import pytest\n\n\n@pytest.mark.parametrize('i', range(%d))\n"
                     "def test_x(i):\n    assert i >= 0\n" % args.tests)
        compiled = compiled_support(work)
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        for k in ("PYTHONUNBUFFERED", "PYTEST_ADDOPTS", "SELF_TEST_RESULTS_FILE"):
            env.pop(k, None)
        plain = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        with_plugin = dict(env, PYTHONPATH=compiled,
                           SELF_TEST_RESULTS_FILE=os.path.join(work, "results.jsonl"))
        runs = {"pytest": [], "pytest + plugin": []}
        for _ in range(args.repeat):
            runs["pytest"].append(cpu_of(plain, suite, env))
            if os.path.exists(with_plugin["SELF_TEST_RESULTS_FILE"]):
                os.unlink(with_plugin["SELF_TEST_RESULTS_FILE"])
            runs["pytest + plugin"].append(
                cpu_of(plain + ["-p", "selftest_pytest_plugin"], suite, with_plugin))
        a, b = min(runs["pytest"]), min(runs["pytest + plugin"])
        print("%d trivial tests, %d alternating repeats, minimum CPU time" % (args.tests,
                                                                           args.repeat))
        print("| pytest | pytest + plugin | plugin a test | ratio |")
        print("|---|---|---|---|")
        print("| %.0f ms | %.0f ms | %.1f us | %.3f |" % (a * 1e3, b * 1e3,
                                                         (b - a) / args.tests * 1e6, b / a))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
