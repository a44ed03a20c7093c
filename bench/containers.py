#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Container runtimes: selftest-core's runtime-docker / runtime-podman against the engines' own
CLIs and against the host.

Private engines from tools/engines/engines.sh (ST_ENGINES_DIR to reuse running ones; otherwise
started and torn down here, needs root). A synthetic project of 8 test paths (t0..t7, 25 tests
each, ~20 ms of CPU per test; the image has only pytest, so no third-party tests), copied to a
temp dir. Every figure is a median over --repeat alternating rounds of this run, so a noisy
machine moves both sides alike:

  per-batch   one path: the batch's own runtime in selftest-core's results (create + start +
              wait + logs + remove) and the whole `selftest-core run` (discovery, stores, and
              on its first cycle one preflight container, whose answer is then cached per
              image: that first cycle is shown apart and left out of the medians), against
              `docker run --rm IMAGE python3 -m pytest PATH` (`podman --remote run --rm ...`
              for podman) on the same image and tests.
  eight-paths `selftest-core run --workers 2 t0..t7` in containers, against one host pytest
              run over the same tests (`python3 -m pytest -n 2 t0..t7`).

Usage: bench/containers.py [--repeat N] [--engines docker,podman]
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

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "tools", "engines", "engines.sh")
PY = "/usr/bin/python3"
N_PATHS, N_TESTS = 8, 25

TEST_FILE = '''import pytest


def work(n):
    s = 0
    for i in range(n):
        s += i * i %% 7
    return s


@pytest.mark.parametrize("k", range(%d))
def test_work(k):
    assert work(120000 + k) >= 0
'''


def make_project(work):
    root = os.path.join(work, "proj")
    os.makedirs(root)
    with open(os.path.join(root, "pytest.ini"), "w") as fh:
        fh.write("[pytest]\n")
    for i in range(N_PATHS):
        d = os.path.join(root, "t%d" % i)
        os.makedirs(d)
        with open(os.path.join(d, "test_work_%d.py" % i), "w") as fh:
            fh.write(TEST_FILE % N_TESTS)
    return root


def timed(argv, env, cwd):
    t = time.monotonic()
    p = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return time.monotonic() - t, p


def engines():
    d = os.environ.get("ST_ENGINES_DIR")
    if d:
        return d, False
    if os.geteuid() != 0:
        sys.exit("needs root to start private engines (or set ST_ENGINES_DIR)")
    d = tempfile.mkdtemp(prefix="st-eng-", dir="/tmp")
    subprocess.run(["bash", SCRIPT, "up", d], check=True, stdout=subprocess.DEVNULL)
    return d, True


def read_env(d):
    env = {}
    with open(os.path.join(d, "env")) as fh:
        for line in fh:
            k, _, v = line.strip().partition("=")
            env[k] = v
    return env


def cli_argv(engine, sock, image, root, path):
    mount = ["-v", "%s:%s:ro" % (root, root), "-w", root, "--network", "none"]
    cmd = [image, "python3", "-m", "pytest", "-p", "no:cacheprovider", "-q", path]
    if engine == "docker":
        docker = shutil.which("docker", path="/usr/bin") or "docker"
        return [docker, "-H", "unix://" + sock, "run", "--rm", "-e", "PYTHONDONTWRITEBYTECODE=1"] + \
            mount + cmd
    return ["podman", "--remote", "--url", "unix://" + sock, "run", "--rm", "-e",
            "PYTHONDONTWRITEBYTECODE=1"] + mount + cmd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--engines", default="docker,podman")
    args = ap.parse_args()
    binary = os.environ.get("SELFTEST_BIN", "./selftest-core")
    d, own = engines()
    work = tempfile.mkdtemp(prefix="st-bench-ctr-")
    try:
        info = read_env(d)
        image = info["ST_IMAGE"]
        root = make_project(work)
        base = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", SANDBOX_REPO_PATH=root)
        for k in ("SELF_TEST_ARGS", "DOCKER_HOST", "CONTAINER_HOST", "SELF_TEST_WORKERS"):
            base.pop(k, None)
        paths = ["t%d" % i for i in range(N_PATHS)]
        print("containers: %d alternating rounds, medians; %d paths x %d tests (~20 ms each); "
              "image %s" % (args.repeat, N_PATHS, N_TESTS, image))
        host_t = []
        rows = []
        for engine in args.engines.split(","):
            sock = info["DOCKER_SOCK" if engine == "docker" else "PODMAN_SOCK"]
            conf = os.path.join(work, engine + ".conf")
            with open(conf, "w") as fh:
                fh.write('runtime = "%s";\nretries = 0;\ncontainer = { image = "%s"; host = '
                         '"unix://%s"; };\n' % (engine, image, sock))
            st = [binary, "-q", "-c", conf, "run", "--json"]
            batch, whole, cli, eight = [], [], [], []
            for r in range(args.repeat + 1):
                t, p = timed(st + ["--workers", "1", "t0"], base, root)
                res = json.loads(p.stdout.decode().strip().splitlines()[-1])
                assert res["exit_status"] == 0 and res["passed"] == N_TESTS, p.stderr[-500:]
                if r == 0:
                    # the first cycle of this data dir and image: the preflight container runs
                    print("%s: first cycle (preflight container): %.2f s" % (engine, t))
                    continue
                whole.append(t)
                batch.append(res["suite_metrics"]["t0"]["runtime"])
                t, p = timed(cli_argv(engine, sock, image, root, "t0"), base, root)
                assert p.returncode == 0, p.stderr[-800:]
                cli.append(t)
                t, p = timed(st + ["--workers", "2"] + paths, base, root)
                res = json.loads(p.stdout.decode().strip().splitlines()[-1])
                assert res["passed"] == N_PATHS * N_TESTS, p.stderr[-500:]
                eight.append(t)
                t, p = timed([PY, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2"] +
                             paths, base, root)
                assert p.returncode == 0, p.stdout[-500:]
                host_t.append(t)
            m = statistics.median
            rows.append((engine, m(batch), m(whole), m(cli), m(eight)))
        hm = statistics.median(host_t)
        print("%-7s %8s %8s %8s %10s %8s %14s %12s %8s" % (
            "engine", "batch s", "run s", "CLI s", "batch/CLI", "run/CLI", "8 paths -w2 s",
            "host -n2 s", "ratio"))
        for engine, b, w, c, e in rows:
            print("%-7s %8.2f %8.2f %8.2f %10.2f %8.2f %14.2f %12.2f %8.2f" % (
                engine, b, w, c, b / c, w / c, e, hm, e / hm))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if own:
            subprocess.run(["bash", SCRIPT, "down", d], stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
