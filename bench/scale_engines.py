#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Two engines against one: networkx's suite on two private dockerd vs one, in one run.

The engines are tools/engines/engines.sh's (`ST_ENGINES=docker,docker2`; ST_ENGINES_DIR names a
directory whose env has DOCKER_SOCK and DOCKER2_SOCK, else, as root, they are started here and
stopped at the end). Every container is limited to one CPU (container.cpus = 1) and each engine
runs one batch at a time (`?workers=1`), so "one engine" is one CPU and "two engines" two.

Debian's python3-networkx (its tests included) is copied into a temp dir; the test directories
(default: the four of tests/integration/test_networkx.py; --all: every tests/ directory of the
package) are the paths, each split into shards (default "auto" with shard_seconds 8). A first
run on the two engines records the durations (and warms the page cache); then, alternating,
R runs on one engine and R on two (`--docker-host` once or twice, the same configuration
otherwise). Printed: the median wall times, the ratio, and whether the counts are equal (they
must be). Nothing fails on a number: this is a benchmark, not a test.

  python3 bench/scale_engines.py [--repeats R] [--all] [--shards N|auto] [--shard-seconds S]
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

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
SCRIPT = os.path.join(TOP, "tools", "engines", "engines.sh")
BIN = os.environ.get("SELFTEST_BIN", os.path.join(TOP, "selftest-core"))
PLUGINS = os.environ.get("SELF_TEST_PLUGIN_PATH", os.path.join(TOP, "plugins"))
SUPPORT = os.environ.get("SELF_TEST_SUPPORT_DIR", os.path.join(TOP, "python"))
FOUR = ["networkx/algorithms/flow/tests", "networkx/classes/tests",
        "networkx/generators/tests", "networkx/utils/tests"]


def sh(argv, env=None, timeout=3600):
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def engines():
    d = os.environ.get("ST_ENGINES_DIR")
    own = False
    if not d:
        if os.geteuid() != 0:
            sys.exit("needs root to start the engines, or ST_ENGINES_DIR")
        d = tempfile.mkdtemp(prefix="st-bse-", dir="/tmp")
        env = dict(os.environ, ST_ENGINES="docker,docker2")
        rc, out, err = sh(["bash", SCRIPT, "up", d], env=env)
        if rc != 0:
            sh(["bash", SCRIPT, "down", d])
            sys.exit("engines.sh up failed: " + err[-1500:])
        own = True
    env = {}
    with open(os.path.join(d, "env")) as fh:
        for line in fh:
            k, _, v = line.strip().partition("=")
            env[k] = v
    if not env.get("DOCKER2_SOCK"):
        sys.exit("%s has no DOCKER2_SOCK (engines.sh up with ST_ENGINES=docker,docker2)" % d)
    return d, env, own


def run(conf, root, hosts, tag):
    argv = [BIN, "-c", conf, "run", "--json", "--retries", "0"]
    for h in hosts:
        argv += ["--docker-host", "unix://%s?workers=1" % h]
    env = dict(os.environ, SANDBOX_REPO_PATH=root, SELF_TEST_PLUGIN_PATH=PLUGINS,
               SELF_TEST_SUPPORT_DIR=SUPPORT)
    for k in ("DOCKER_HOST", "CONTAINER_HOST", "SELF_TEST_WORKERS", "SELF_TEST_SHARDS"):
        env.pop(k, None)
    t0 = time.monotonic()
    rc, out, err = sh(argv, env=env)
    wall = time.monotonic() - t0
    res = None
    for line in out.splitlines():
        try:
            x = json.loads(line)
        except ValueError:
            continue
        if x.get("event") == "results":
            res = x
    if res is None:
        sys.exit("%s: no results (exit %d): %s" % (tag, rc, err[-2000:]))
    counts = tuple(res.get(k) for k in ("passed", "failed", "skipped", "xfailed", "errors"))
    shards = sum(b.get("shards", 1) for b in res["suite_metrics"].values())
    # what a batch costs besides its tests: the batches' wall times minus the tests' durations
    busy = sum(s["runtime"] for b in res["suite_metrics"].values()
               for s in (b.get("shard_results") or [b]))
    tests = sum(t.get("duration") or 0 for t in res["tests"])
    overhead = (busy - tests) / shards if shards else 0
    print("  %-12s %6.1f s  exit %d  counts %r  %d batches, %.1f s of tests, %.2f s overhead "
          "per batch" % (tag, wall, rc, counts, shards, tests, overhead), flush=True)
    return wall, counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--all", action="store_true", help="every tests/ directory of networkx")
    ap.add_argument("--shards", default="auto")
    ap.add_argument("--shard-seconds", default="8")
    a = ap.parse_args()
    rc, out, _ = sh([sys.executable, "-c",
                     "import networkx, os; print(os.path.dirname(networkx.__file__))"])
    if rc != 0:
        sys.exit("python3-networkx is not installed")
    nx = out.strip()
    d, env, own = engines()
    work = tempfile.mkdtemp(prefix="st-bse-w-")
    os.chmod(work, 0o755)
    try:
        root = os.path.join(work, "proj")
        os.makedirs(root)
        shutil.copytree(nx, os.path.join(root, "networkx"))
        with open(os.path.join(root, "pytest.ini"), "w") as fh:
            fh.write("[pytest]\n")
        if a.all:
            dirs = sorted(os.path.relpath(p, root) for p, ds, fs in os.walk(root)
                          if os.path.basename(p) == "tests" and
                          any(f.startswith("test_") for f in fs))
        else:
            dirs = FOUR
        shards = a.shards if a.shards == "auto" else int(a.shards)
        conf = os.path.join(work, "selftest.conf")
        with open(conf, "w") as fh:
            fh.write('project_root = "%s";\nruntime = "docker";\ncontainer_fallback = "fail";\n'
                     'disable_orphans = true;\ntimeout = 1800;\nshard_seconds = %s;\n'
                     'shards = %s;\npaths = [%s];\n'
                     'container = {\n  image = "%s";\n  cpus = 1.0;\n};\n'
                     % (root, a.shard_seconds, json.dumps(shards),
                        ", ".join(json.dumps(x) for x in dirs), env["ST_IMAGE"]))
        one, two = [env["DOCKER_SOCK"]], [env["DOCKER_SOCK"], env["DOCKER2_SOCK"]]
        print("networkx %s: %d test directories, shards %s (shard_seconds %s), one CPU per "
              "container, one batch per engine at a time; load average %s"
              % (os.path.basename(os.path.dirname(nx)), len(dirs), a.shards, a.shard_seconds,
                 open("/proc/loadavg").read().split()[0]), flush=True)
        run(conf, root, two, "warm-up (2)")
        walls = {1: [], 2: []}
        counts = {1: set(), 2: set()}
        for i in range(a.repeats):
            for n, hosts in ((1, one), (2, two)):
                w, c = run(conf, root, hosts, "%d engine%s #%d" % (n, "" if n == 1 else "s",
                                                                   i + 1))
                walls[n].append(w)
                counts[n].add(c)
        m1, m2 = statistics.median(walls[1]), statistics.median(walls[2])
        same = counts[1] == counts[2] and len(counts[1]) == 1
        print("| engines | wall (median of %d) | speed-up | counts |" % a.repeats)
        print("|---|---|---|---|")
        print("| 1 | %.1f s | 1.00x | %r |" % (m1, sorted(counts[1])))
        print("| 2 | %.1f s | %.2fx | %r |" % (m2, m1 / m2, sorted(counts[2])))
        print("same counts: %s; load average at the end %s" %
              ("yes" if same else "NO", open("/proc/loadavg").read().split()[0]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if own:
            sh(["bash", SCRIPT, "down", d])


if __name__ == "__main__":
    main()
