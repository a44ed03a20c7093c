#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Change-aware runs: does `run --changed` miss a failing test, and what does it save?

A project (a tarball of tests/corpus, or Debian's python3-networkx test directories) is copied
into a temp dir and committed to a fresh git repository; one full run records the baseline in
metrics.db and the test files' dependencies (record_test_deps). Then, from a fixed seed, MUTATIONS functions of the project's own (non-test) modules
are picked, and for each, in a fresh copy of that tree:

  1. the function gets `raise RuntimeError(...)` as its first statement (after the docstring);
  2. `selftest-core run --changed` runs (against the baseline metrics.db), timed;
  3. a full `selftest-core run` of the same paths runs, timed.

Every test that fails in the full run must have been run by --changed (0 missed: the script
exits 1 otherwise). Reported: missed tests, the median of the per-mutation wall-time ratio
full / --changed, and the median fraction of the full run's tests that --changed ran. Orphan
discovery is off on both sides (the point is the selection).

Usage: bench/changed.py [--project toolz|cachetools|simplejson|networkx] [--mutations N]
                        [--seed S] [--workers W]
(env SELFTEST_BIN, SELF_TEST_PLUGIN_PATH, SELF_TEST_SUPPORT_DIR as in `make bench`)
"""
import argparse
import ast
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

PY = "/usr/bin/python3"
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NX = "/usr/lib/python3/dist-packages/networkx"
# project -> (test paths, packages whose modules are mutated, extra environment)
PROJECTS = {
    "toolz": (["toolz/tests"], ["toolz"], {}),
    "cachetools": (["tests"], ["src/cachetools"], {"PYTHONPATH": "src"}),
    "simplejson": (["simplejson/tests"], ["simplejson"], {}),
    "networkx": (["networkx/algorithms/flow/tests", "networkx/generators/tests",
                  "networkx/classes/tests", "networkx/utils/tests"],
                 ["networkx/algorithms/flow", "networkx/generators", "networkx/classes",
                  "networkx/utils"], {}),
}
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def unpack(name, dest):
    if name == "networkx":
        if not os.path.isdir(NX):
            sys.exit("python3-networkx is not installed (apt-get install python3-networkx)")
        root = os.path.join(dest, "nx")
        shutil.copytree(NX, os.path.join(root, "networkx"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        return root
    with tarfile.open(os.path.join(TOP, "tests", "corpus", name + ".tar.gz")) as tar:
        tar.extractall(dest)
    return os.path.join(dest, name)


def git(root, *args):
    subprocess.run(["git", "-C", root] + list(args), check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, **GIT_ENV))


def candidates(root, packages):
    """(file, line, indent) of every function whose body starts on a line of its own, in the
    packages' non-test modules, in a stable order."""
    out = []
    for pkg in packages:
        for dirpath, dirs, files in os.walk(os.path.join(root, pkg)):
            dirs[:] = sorted(d for d in dirs if d not in ("tests", "__pycache__"))
            for f in sorted(files):
                if not f.endswith(".py") or f.startswith("test_") or f == "conftest.py":
                    continue
                path = os.path.join(dirpath, f)
                try:
                    tree = ast.parse(open(path, encoding="utf-8").read())
                except (SyntaxError, UnicodeDecodeError):
                    continue
                for node in ast.walk(tree):
                    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        continue
                    body = node.body
                    if (len(body) > 1 and isinstance(body[0], ast.Expr) and
                            isinstance(getattr(body[0], "value", None), ast.Constant) and
                            isinstance(body[0].value.value, str)):
                        body = body[1:]
                    first = body[0]
                    if first.lineno <= node.lineno or getattr(node, "end_lineno", 0) <= node.lineno:
                        continue
                    out.append((os.path.relpath(path, root), first.lineno, first.col_offset,
                                node.name))
    return sorted(out)


def mutate(root, cand):
    rel, line, col, name = cand
    path = os.path.join(root, rel)
    lines = open(path, encoding="utf-8").read().split("\n")
    lines.insert(line - 1, " " * col + "raise RuntimeError('selftest bench mutant: %s')" % name)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))


def selftest(root, conf, paths, extra, workers, env):
    argv = [os.environ.get("SELFTEST_BIN", os.path.join(TOP, "selftest-core")), "-q", "-c", conf,
            "run", "--json", "--retries", "0", "--workers", str(workers)] + extra + paths
    t = time.monotonic()
    p = subprocess.run(argv, cwd=root, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    dt = time.monotonic() - t
    res = None
    for line in reversed(p.stdout.decode("utf-8", "replace").splitlines()):
        if line.startswith("{"):
            res = json.loads(line)
            break
    return dt, res, p


def nodes(res, failed_only=False):
    return {t["nodeid"] for t in (res or {}).get("tests", [])
            if not failed_only or t["outcome"] in ("failed", "error")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--project", default="toolz", choices=sorted(PROJECTS))
    ap.add_argument("--mutations", type=int, default=30)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    paths, packages, penv = PROJECTS[args.project]
    work = tempfile.mkdtemp(prefix="selftest-bench-changed-")
    try:
        template = unpack(args.project, work)
        conf = os.path.join(work, "bench.conf")
        with open(conf, "w") as fh:
            fh.write('python = "%s";\npytest_args = "-p no:cacheprovider";\n' % PY)
        git(template, "init", "-q")
        git(template, "add", "-A")
        git(template, "commit", "-q", "-m", "snapshot")

        def env_for(root):
            env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", SANDBOX_REPO_PATH=root,
                       SANDBOX_DATA_DIR=os.path.join(root, "sandbox_data"),
                       SELF_TEST_DISABLE_ORPHANS="1", **GIT_ENV)
            for k, v in penv.items():
                env[k] = os.path.join(root, v) if k == "PYTHONPATH" else v
            env.pop("SELF_TEST_ARGS", None)
            return env

        # the baseline records the test files' dependencies (record_test_deps); the timed full
        # runs below do not (recording traces every call on Python < 3.12)
        base_env = dict(env_for(template), SELF_TEST_RECORD_TEST_DEPS="1")
        dt, base, p = selftest(template, conf, paths, [], args.workers, base_env)
        if base is None:
            sys.exit("the baseline run failed: %s" % p.stderr.decode()[-2000:])
        total = len(nodes(base))
        print("%s: %d tests in %s; baseline full run %.2fs (%d failing)"
              % (args.project, total, " ".join(paths), dt, len(nodes(base, True))))
        cands = candidates(template, packages)
        picked = random.Random(args.seed).sample(cands, min(args.mutations, len(cands)))
        print("%d candidate functions, %d mutations (seed %d)" % (len(cands), len(picked),
                                                                  args.seed))
        ratios, fractions, missed_total, failing_mutants = [], [], 0, 0
        t_full, t_changed = [], []
        for i, cand in enumerate(picked):
            root = os.path.join(work, "m%d" % i)
            shutil.copytree(template, root, symlinks=True)
            mutate(root, cand)
            env = env_for(root)
            dc, rc_res, pc = selftest(root, conf, paths, ["--changed"], args.workers, env)
            df, rf_res, pf = selftest(root, conf, paths, [], args.workers, env)
            ran = nodes(rc_res)
            failing_all = nodes(rf_res, True)
            failing = failing_all - nodes(base, True)
            missed = sorted(failing_all - ran)
            missed_total += len(missed)
            failing_mutants += bool(failing)
            frac = len(ran) / max(1, len(nodes(rf_res)))
            ratios.append(df / dc)
            fractions.append(frac)
            t_full.append(df)
            t_changed.append(dc)
            print("  %2d %-45s full %6.2fs changed %6.2fs  ran %5.1f%%  newly failing %4d  "
                  "missed %d" % (i, "%s:%s" % (cand[0], cand[3]), df, dc, 100 * frac,
                                 len(failing), len(missed)))
            for m in missed[:5]:
                print("       MISSED %s" % m)
            shutil.rmtree(root, ignore_errors=True)
        print("mutations: %d (%d made a test fail); missed tests: %d"
              % (len(picked), failing_mutants, missed_total))
        print("median wall time: full %.2fs, --changed %.2fs; median ratio full/--changed %.2fx"
              % (statistics.median(t_full), statistics.median(t_changed),
                 statistics.median(ratios)))
        print("median fraction of the tests run by --changed: %.1f%% (mean %.1f%%)"
              % (100 * statistics.median(fractions), 100 * statistics.mean(fractions)))
        return 1 if missed_total else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
