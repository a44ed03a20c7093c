#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A default `selftest-core run` (second cycle: history, caches) against `python3 -m pytest`
and `python3 -m pytest -n auto` on the vendored corpus projects (tests/corpus/*.tar.gz).

Each project is unpacked into a temp dir (the tarballs are never modified). One first cycle of
`selftest-core run` (no options: default workers, orphan discovery, checks and integration)
fills the data dir; then the three commands run alternately REPEAT times. The bundled plugin
is byte-compiled in a copy of the support dir, as an installation leaves it; pytest runs as
the user would type it (its cache plugin on, as in the batch). Reported: medians,
and the ratio of selftest-core to the faster of the two pytest runs, of this run only (a noisy
machine moves every side alike), plus the core's own CPU (`core_cpu_seconds`). "paired": the
median over the rounds of each round's ratio of selftest-core to the faster command's time in
the same round (a round's three commands run back to back, so a slow spell of a shared machine
moves both sides of one ratio).

--git makes each unpacked project a git work tree (one commit), as a user's checkout is: every
run then records its commit and what differs from it (two git processes).

PROJECT "networkx": Debian's python3-networkx (copied), its four test directories of
bench/run_overhead.py given to all three commands (the whole suite takes minutes a run).

Usage: bench/vs_pytest.py [--repeat N] [--git] [PROJECT...]   (env SELFTEST_BIN,
SELF_TEST_PLUGIN_PATH, SELF_TEST_SUPPORT_DIR as in `make bench`)
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

PY = "/usr/bin/python3"
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# per project: extra PYTHONPATH (relative to its root) for both sides, as tests/corpus/README.md
# says plain pytest needs it
PYTHONPATH = {"cachetools": "src"}
# "networkx": Debian's python3-networkx copied into the work dir, run on the four test
# directories of bench/run_overhead.py (its whole suite takes minutes a run here)
NX = "/usr/lib/python3/dist-packages/networkx"
NX_DIRS = ["networkx/algorithms/flow/tests", "networkx/generators/tests",
           "networkx/classes/tests", "networkx/utils/tests"]


def timed(argv, cwd, env):
    t = time.monotonic()
    p = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return time.monotonic() - t, p


def unpack(tarball, dest):
    with tarfile.open(tarball) as tf:
        tf.extractall(dest, filter="data") if hasattr(tarfile, "data_filter") \
            else tf.extractall(dest)
    entries = [e for e in os.listdir(dest) if not e.startswith(".")]
    return os.path.join(dest, entries[0]) if len(entries) == 1 and \
        os.path.isdir(os.path.join(dest, entries[0])) else dest


def compiled_support(work):
    """A copy of the support dir (SELF_TEST_SUPPORT_DIR, else python/) in work with the
    bundled plugin byte-compiled, as `make install` and the Debian package leave it
    (PYTHONDONTWRITEBYTECODE, set on both sides, would otherwise compile it in every batch).
    Returns its path."""
    support = os.environ.get("SELF_TEST_SUPPORT_DIR") or os.path.join(TOP, "python")
    compiled = os.path.join(work, "support")
    shutil.copytree(support, compiled, ignore=shutil.ignore_patterns("__pycache__", "*.mk"))
    subprocess.run([PY, "-m", "compileall", "-q", compiled], check=True)
    return compiled


def git_init(root):
    """The unpacked tree as a git work tree with one commit (its own identity, no hooks)."""
    genv = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@localhost",
                GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@localhost",
                GIT_CONFIG_NOSYSTEM="1", HOME=root)
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run(["git", "-C", root] + argv, env=genv, check=True,
                       stdout=subprocess.DEVNULL)


def bench_project(name, binary, repeat, work, use_git=False):
    paths = []
    if name == "networkx":
        if not os.path.isdir(NX):
            sys.exit("python3-networkx is not installed (apt-get install python3-networkx)")
        root = os.path.join(work, "networkx-tree")
        shutil.copytree(NX, os.path.join(root, "networkx"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        paths = NX_DIRS
    else:
        root = unpack(os.path.join(TOP, "tests", "corpus", name + ".tar.gz"),
                      os.path.join(work, name))
    if use_git:
        git_init(root)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    for k in ("SELF_TEST_ARGS", "SELF_TEST_WORKERS", "PYTEST_ADDOPTS", "SANDBOX_DATA_DIR"):
        env.pop(k, None)
    conf = os.path.join(work, name + ".conf")
    with open(conf, "w") as f:
        f.write('project_root = "%s";\npython = "%s";\n' % (root, PY))
        if name in PYTHONPATH:
            f.write('pythonpath = ["%s"];\n' % PYTHONPATH[name])
    py_env = dict(env)
    if name in PYTHONPATH:
        py_env["PYTHONPATH"] = os.path.join(root, PYTHONPATH[name])
    st = [binary, "-q", "-c", conf, "run", "--json"] + paths
    cmds = {
        "selftest-core run": (st, env),
        # the commands a user compares with, as they are: pytest's cache plugin on, as it is
        # in the batch (both sides write .pytest_cache)
        "pytest": ([PY, "-m", "pytest", "-q"] + paths, py_env),
        "pytest -n auto": ([PY, "-m", "pytest", "-q", "-n", "auto"] + paths, py_env),
    }
    first, p = timed(st, root, env)  # the first cycle: no history, nothing cached
    times = {k: [] for k in cmds}
    cpu, workers = [], []
    for _ in range(repeat):
        for k, (argv, e) in cmds.items():
            t, p = timed(argv, root, e)
            times[k].append(t)
            if k == "selftest-core run":
                for line in p.stdout.decode("utf-8", "replace").splitlines():
                    try:
                        r = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(r, dict) and r.get("event") == "results":
                        cpu.append(r.get("core_cpu_seconds") or 0)
                        workers.append(",".join(str(b.get("workers"))
                                                for b in r.get("suite_metrics", {}).values()))
    med = {k: statistics.median(v) for k, v in times.items()}
    best = min(med["pytest"], med["pytest -n auto"])
    faster = "pytest" if med["pytest"] <= med["pytest -n auto"] else "pytest -n auto"
    paired = statistics.median(a / b for a, b in zip(times["selftest-core run"], times[faster]))
    return {"project": name, "first": first, "median": med,
            "ratio": med["selftest-core run"] / best, "paired": paired,
            "core_cpu_ms": 1000 * statistics.median(cpu) if cpu else None,
            "workers": workers[-1] if workers else "?"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--git", action="store_true",
                    help="make each project a git work tree with one commit")
    ap.add_argument("projects", nargs="*", default=["toolz", "cachetools", "simplejson"],
                    help="corpus projects (tests/corpus/NAME.tar.gz) or networkx")
    args = ap.parse_args()
    binary = os.environ.get("SELFTEST_BIN", os.path.join(TOP, "selftest-core"))
    work = tempfile.mkdtemp(prefix="selftest-bench-vs-")
    os.environ["SELF_TEST_SUPPORT_DIR"] = compiled_support(work)
    try:
        print("selftest-core run (second cycle) vs python3 -m pytest [-n auto], %d alternating "
              "repeats, medians%s" % (args.repeat, "; git work trees" if args.git else ""))
        print("| project | first cycle | run | pytest | pytest -n auto | run / faster | "
              "paired | core CPU | batch workers |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name in args.projects:
            r = bench_project(name, binary, args.repeat, work, args.git)
            m = r["median"]
            print("| %s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f | %.2f | %s | %s |" % (
                name, r["first"], m["selftest-core run"], m["pytest"], m["pytest -n auto"],
                r["ratio"], r["paired"], "%.0f ms" % r["core_cpu_ms"]
                if r["core_cpu_ms"] is not None else "?", r["workers"]))
            sys.stdout.flush()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
