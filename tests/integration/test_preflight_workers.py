# SPDX-License-Identifier: MIT
"""The interpreter preflight runs once per interpreter (or image) and configuration,
and the worker count of a batch follows its history when workers are not set explicitly.

Preflight cache (host runtime): the interpreter is a copy of python3 in a temp dir; a
sitecustomize.py on PYTHONPATH appends every interpreter start's argv to a marker file, so the
preflight (`python -c CODE --config ...`) is counted by what really started, not by anything
selftest-core says. The second run starts no preflight; changing the copy's mtime, the project's
pytest.ini, the pytest args, creating a directory named in `testpaths`, or changing the
interpreter a wrapper script runs runs it again (and the run then sees the change); a malformed
preflight_cache.json is reported with its name and position, never trusted and never
rewritten.

Preflight cache (docker and podman, when tools/engines/engines.sh engines are up or can be
started): containers created for the test's own image tag are counted with the engine's events:
two on the first run (preflight and batch), one on the second, two again after the tag points at
a rebuilt image (a commit of a container of it), then one.

Workers from history: a short batch runs under `-n 2` on the first run (no history: the
default split of 2 workers) and in one process on the second (its recorded test durations are
far below the rule's 2 s per worker), as pytest itself reports (pytest_argv, pytest_workers);
`--workers 2`, SELF_TEST_WORKERS=2 and `workers = 2;` in the config stay exact; a batch whose
recorded durations are long (sleeps) keeps xdist.
"""

import json
import os
import shutil
import time
import urllib.parse

import pytest
import st_helpers as sth
from st_helpers import is_eq, note, ok, skip

pytestmark = pytest.mark.usefixtures("selftest_bin")

WORK = MARK_DIR = None  # the test's scratch directory and the sitecustomize dir (fixture pfw)


@pytest.fixture
def pfw(workdir):
    """A scratch directory with a sitecustomize.py that logs every interpreter start's argv."""
    global WORK, MARK_DIR
    WORK = workdir
    os.chmod(WORK, 0o755)
    MARK_DIR = os.path.join(WORK, "mark")
    os.makedirs(MARK_DIR)
    with open(os.path.join(MARK_DIR, "sitecustomize.py"), "w") as fh:
        fh.write("import os, sys\n"
                 "m = os.environ.get('PF_MARK')\n"
                 "if m:\n"
                 "    with open(m, 'a') as fh:\n"
                 "        fh.write(repr(sys.argv) + '\\n')\n")
    return WORK


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)


def project(name, ini="[pytest]\ntestpaths = tests\n", tests=None):
    root = os.path.join(WORK, name)
    os.makedirs(root)
    write(os.path.join(root, "pytest.ini"), ini)
    for rel, text in (tests or {"tests/test_a.py": "def test_a():\n    assert True\n"}).items():
        write(os.path.join(root, rel), text)
    write(os.path.join(root, "selftest.conf"), "disable_orphans = true;\n")
    return root


def selftest(root, args=(), env=None, conf=None, timeout=300):
    argv = [sth.selftest_bin(), "-c", conf or os.path.join(root, "selftest.conf"), "run", "--json",
            "--retries", "0"] + list(args)
    e = sth.base_env(dict({"SANDBOX_REPO_PATH": root}, **(env or {})))
    rc, out, err = sth.run(argv, env=e, cwd=root, timeout=timeout)
    res = None
    for line in out.splitlines():
        try:
            v = json.loads(line)
        except ValueError:
            continue
        if isinstance(v, dict) and v.get("event") == "results":
            res = v
    return {"rc": rc, "out": out, "err": err, "res": res}


def diag(r):
    return "rc %r\nstderr: %s\nstdout: %s" % (r["rc"], r["err"][-3000:], r["out"][-1500:])


def preflights(mark):
    """How many preflights started (argv ['-c', '--config', ...])."""
    try:
        with open(mark) as fh:
            return sum(1 for line in fh if line.startswith("['-c', '--config'"))
    except FileNotFoundError:
        return 0


def passed(r):
    return (r["res"] or {}).get("passed")


# ---- the preflight cache on the host ----------------------------------------------------------

def test_host_cache(pfw):
    root = project("hostproj", tests={"tests/test_a.py": "def test_a():\n    pass\n",
                                      "other/test_o.py": "def test_o1():\n    pass\n\n"
                                                         "def test_o2():\n    pass\n"})
    py_dir = os.path.join(WORK, "bin")
    os.makedirs(py_dir)
    python = os.path.join(py_dir, "python3")
    # selftest-core's default interpreter (the one with pytest), copied
    shutil.copy2(os.path.realpath("/usr/bin/python3"), python)
    mark = os.path.join(WORK, "host.mark")
    env = {"SELF_TEST_PYTHON": python, "PYTHONPATH": MARK_DIR, "PF_MARK": mark}
    args = ["--workers", "1"]
    cache = os.path.join(root, "sandbox_data", "preflight_cache.json")

    r = selftest(root, args, env)
    ok(r["rc"] == 0 and passed(r) == 1, "host: first run passes the one test of testpaths",
       diag(r))
    is_eq(preflights(mark), 1, "host: the first run starts the preflight")
    data, entries = {}, {}
    try:
        with open(cache) as fh:
            data = json.load(fh)
        entries = data.get("entries", {})
    except (OSError, ValueError) as e:
        note("preflight_cache.json: %s" % e)
    ok(data.get("version") == 1 and len(entries) == 1 and
       all(python in k for k in entries),
       "host: preflight_cache.json holds one entry naming the interpreter", repr(entries)[:2000])

    r = selftest(root, args, env)
    ok(r["rc"] == 0 and passed(r) == 1, "host: second run passes the same test", diag(r))
    is_eq(preflights(mark), 1, "host: the second run starts no preflight (cached answer)")

    # the interpreter changes: same path, another mtime
    st = os.stat(python)
    os.utime(python, ns=(st.st_atime_ns, st.st_mtime_ns + 10 * 10**9))
    r = selftest(root, args, env)
    ok(r["rc"] == 0, "host: run after touching the interpreter passes", diag(r))
    is_eq(preflights(mark), 2, "host: an interpreter with another mtime is asked again")
    r = selftest(root, args, env)
    is_eq(preflights(mark), 2, "host: ... and cached again on the next run")

    # the project's pytest configuration changes: testpaths now names other/
    write(os.path.join(root, "pytest.ini"), "[pytest]\ntestpaths = other\n")
    r = selftest(root, args, env)
    is_eq(preflights(mark), 3, "host: a changed pytest.ini runs the preflight again")
    is_eq(passed(r), 2, "host: ... and the run uses the new testpaths (other/: 2 tests)")
    r = selftest(root, args, env)
    is_eq((preflights(mark), passed(r)), (3, 2), "host: ... then cached, same 2 tests")

    # a config file pytest looks for appears in the project root (pyproject.toml wins nothing
    # here, pytest.ini is first; still, the answer is asked again)
    write(os.path.join(root, "tox.ini"), "[tox]\n")
    r = selftest(root, args, env)
    is_eq(preflights(mark), 4, "host: a new tox.ini in the root runs the preflight again")

    # the pytest args change
    r = selftest(root, args + ["--pytest-args", "-q"], env)
    is_eq(preflights(mark), 5, "host: other pytest args run the preflight again")
    r = selftest(root, args, env)
    is_eq(preflights(mark), 5, "host: the earlier args' answer is still cached")

    # a directory named in testpaths appears
    write(os.path.join(root, "pytest.ini"), "[pytest]\ntestpaths = other later\n")
    r = selftest(root, args, env)
    is_eq((preflights(mark), passed(r)), (6, 2), "host: testpaths with a missing dir: 2 tests")
    write(os.path.join(root, "later", "test_l.py"), "def test_l():\n    pass\n")
    r = selftest(root, args, env)
    is_eq((preflights(mark), passed(r)), (7, 3),
          "host: the testpaths dir created: preflight asked again, its test runs")

    # a malformed cache file: reported, not trusted, not rewritten
    write(cache, '{"version": 1, "entries": [')
    r = selftest(root, args, env)
    ok(r["rc"] == 0 and passed(r) == 3, "host: malformed cache: the run still passes", diag(r))
    is_eq(preflights(mark), 8, "host: malformed cache: the preflight runs")
    ok("preflight_cache.json" in r["err"] and "line 1" in r["err"],
       "host: malformed cache: the error names the file and the position", r["err"][-2000:])
    with open(cache) as fh:
        is_eq(fh.read(), '{"version": 1, "entries": [', "host: malformed cache: left as it is")
    r = selftest(root, args, env)
    is_eq(preflights(mark), 9, "host: malformed cache: never trusted on the next run either")
    os.unlink(cache)
    r = selftest(root, args, env)
    r = selftest(root, args, env)
    is_eq(preflights(mark), 10, "host: removed by the user: written again and used")

    # a wrapper script: the interpreter it runs is watched too (sys.executable)
    wrapper = os.path.join(py_dir, "pywrap")
    write(wrapper, '#!/bin/sh\nexec "%s" "$@"\n' % python)
    os.chmod(wrapper, 0o755)
    wenv = dict(env, SELF_TEST_PYTHON=wrapper)
    selftest(root, args, wenv)
    r = selftest(root, args, wenv)
    ok(r["rc"] == 0 and preflights(mark) == 11,
       "host: behind a wrapper script: asked once, then cached", diag(r))
    st = os.stat(python)
    os.utime(python, ns=(st.st_atime_ns, st.st_mtime_ns + 10 * 10**9))
    r = selftest(root, args, wenv)
    is_eq(preflights(mark), 12, "host: the interpreter behind the wrapper changes: asked again")


# ---- the preflight cache with a container runtime ----------------------------------------------

def api(sock, method, path, body=None):
    """(status, the reply as text) of one engine API request."""
    st, data = sth.engine_api(sock, method, path, body, timeout=120, raw=True)
    return st, data.decode("utf-8", "replace")


def creates(sock, image, since):
    """Containers created from image since the UNIX time since (engine events)."""
    filters = urllib.parse.quote(json.dumps({"type": ["container"], "event": ["create"]}))
    st, body = api(sock, "GET", "/v1.41/events?since=%d&until=%d&filters=%s"
                   % (since, int(time.time()) + 1, filters))
    n = 0
    for line in body.splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        attrs = (ev.get("Actor") or {}).get("Attributes") or {}
        img = attrs.get("image") or ev.get("from") or ""
        # podman names it docker.io/library/NAME:TAG; only selftest-core's containers count
        if (img == image or img.endswith("/" + image)) and attrs.get("menace_self_test") == "1":
            n += 1
    return n


def settled_creates(sock, image, since):
    """creates() once two reads agree (podman writes its events file asynchronously)."""
    last = creates(sock, image, since)
    for _ in range(10):
        time.sleep(0.5)
        n = creates(sock, image, since)
        if n == last:
            break
        last = n
    return last


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_container_cache(pfw, engines, engine):
    eng = engines
    if not eng.get(engine):
        pytest.skip("%s is not up" % engine)
    sock = eng[engine]
    base = eng["image"]
    repo, tag = "selftest-pfc-%d" % os.getpid(), "t"
    image = "%s:%s" % (repo, tag)
    st, body = api(sock, "POST", "/v1.41/images/%s/tag?repo=%s&tag=%s"
                   % (urllib.parse.quote(base, safe=""), repo, tag))
    if st // 100 != 2:
        skip("%s: container preflight cache" % engine, "cannot tag the test image: %s %s"
             % (st, body[:300]))
        return
    root = project("ctr-%s" % engine)
    conf = os.path.join(root, "selftest.conf")
    write(conf, 'disable_orphans = true;\nruntime = "%s";\ncontainer = { image = "%s"; };\n'
          % (engine, image))
    host_var = {"docker": "DOCKER_HOST", "podman": "CONTAINER_HOST"}[engine]
    env = {"DOCKER_HOST": None, "CONTAINER_HOST": None, "MENACE_OFFLINE_INSTALL": None,
           "MENACE_SELF_TEST_IMAGE_TAR": None, host_var: "unix://" + sock}
    since = int(time.time()) - 1
    counts = []
    rs = []
    for step in range(4):
        if step == 2:
            # the tag moves to a rebuilt image: a commit of a container of it
            st, body = api(sock, "POST", "/v1.41/containers/create",
                           {"Image": image, "Cmd": ["true"], "Labels": {"pfc": "1"}})
            cid = json.loads(body).get("Id") if st // 100 == 2 else None
            st2, body2 = (api(sock, "POST", "/v1.41/commit?container=%s&repo=%s&tag=%s"
                              % (cid, repo, tag), {"Labels": {"rebuilt": str(time.time())}})
                          if cid else (0, ""))
            if cid:
                api(sock, "DELETE", "/v1.41/containers/%s?force=1" % cid)
            ok(st2 // 100 == 2, "%s: the image tag now names a rebuilt image" % engine,
               "%s %s / %s %s" % (st, body[:300], st2, body2[:300]))
        r = selftest(root, ["--workers", "1"], conf=conf, env=env)
        rs.append(r)
        ok(r["rc"] == 0 and passed(r) == 1, "%s: run %d passes" % (engine, step + 1), diag(r))
        counts.append(settled_creates(sock, image, since))
    # cumulative counts after each run
    made = [b - a for a, b in zip([0] + counts[:-1], counts)]
    is_eq(made, [2, 1, 2, 1], "%s: containers per run: preflight+batch, batch, preflight+batch "
          "after the rebuild, batch" % engine)
    api(sock, "DELETE", "/v1.41/images/%s?force=1" % urllib.parse.quote(image, safe=""))


# ---- workers from history -------------------------------------------------------------------

def batch_of(r):
    sm = (r["res"] or {}).get("suite_metrics") or {}
    return next(iter(sm.values()), {}) if len(sm) == 1 else {}


def test_workers_from_history(pfw):
    quick = {"tests/test_q.py": "".join("def test_%d():\n    pass\n\n" % i for i in range(6))}
    root = project("short", tests=quick)
    env = {"SELF_TEST_WORKERS": None}
    cpu_env = {}
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs 2 CPUs for a default split of 2 workers")
    r1 = selftest(root, [], dict(env, **cpu_env))
    b1 = batch_of(r1)
    ok(r1["rc"] == 0 and b1.get("pytest_workers", 0) >= 2 and "-n" in b1.get("pytest_argv", []),
       "history: first run (no history) keeps the default split under xdist",
       "batch %r\n%s" % ({k: b1.get(k) for k in ("workers", "workers_rule", "pytest_argv",
                                                  "pytest_workers")}, diag(r1)))
    is_eq((b1.get("workers_rule"), b1.get("history_duration")), ("default", None),
          "history: first run's batch says workers_rule default, no history_duration")
    r2 = selftest(root, [], env)
    b2 = batch_of(r2)
    ok(r2["rc"] == 0 and b2.get("workers") == 1 and b2.get("pytest_workers") == 0 and
       "-n" not in b2.get("pytest_argv", ["-n"]),
       "history: second run of the short batch runs in one process (no -n)",
       "batch %r" % {k: b2.get(k) for k in ("workers", "workers_rule", "pytest_argv",
                                            "pytest_workers", "history_duration")})
    hd = b2.get("history_duration")
    ok(b2.get("workers_rule") == "history" and isinstance(hd, (int, float)) and 0 <= hd < 2,
       "history: second run says workers_rule history with the recorded duration", repr(hd))
    # explicit settings stay exact, history or not
    for label, args, e, conf in (
            ("--workers 2", ["--workers", "2"], env, None),
            ("SELF_TEST_WORKERS=2", [], {"SELF_TEST_WORKERS": "2"}, None),
            ("workers = 2 in the config", [], env, "workers")):
        cpath = None
        if conf:
            cpath = os.path.join(root, "w2.conf")
            write(cpath, "disable_orphans = true;\nworkers = 2;\n")
        r = selftest(root, args, e, conf=cpath)
        b = batch_of(r)
        ok(r["rc"] == 0 and b.get("pytest_workers") == 2 and b.get("workers_rule") == "explicit",
           "history: %s stays exact (-n 2)" % label,
           "batch %r\n%s" % ({k: b.get(k) for k in ("workers", "workers_rule", "pytest_argv",
                                                     "pytest_workers")}, diag(r)))
    # a pytest node id without history: one process (xdist would start workers for one test)
    fresh = project("nodeid", tests=quick)
    r = selftest(fresh, ["tests/test_q.py::test_1"], env)
    b = batch_of(r)
    ok(r["rc"] == 0 and passed(r) == 1 and b.get("workers_rule") == "default" and
       b.get("pytest_workers") == 0 and "-n" not in b.get("pytest_argv", ["-n"]),
       "history: a node-id batch without history runs in one process",
       "batch %r\n%s" % ({k: b.get(k) for k in ("workers", "workers_rule", "pytest_argv",
                                                   "pytest_workers")}, diag(r)))
    # a batch whose tests take long keeps xdist
    slow = {"tests/test_s.py": "import time\n" + "".join(
        "def test_%d():\n    time.sleep(0.9)\n\n" % i for i in range(6))}
    root = project("long", tests=slow)
    selftest(root, [], env)
    r = selftest(root, [], env)
    b = batch_of(r)
    ok(r["rc"] == 0 and b.get("workers_rule") == "history" and b.get("pytest_workers") == 2,
       "history: a batch with 5.4 s of recorded tests keeps -n 2",
       "batch %r" % {k: b.get(k) for k in ("workers", "workers_rule", "pytest_argv",
                                           "pytest_workers", "history_duration")})


