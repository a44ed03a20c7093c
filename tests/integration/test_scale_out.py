# SPDX-License-Identifier: MIT
"""scale-out: shards of a test path, and several engines in one run.

Shards (on the host runtime, then on one engine): a path split by test file into concurrent
batches; the --json batch lines name each shard and its files; the results, metrics.db and the
summary report the configured path once, with the shards rolled up and the same counts as an
unsplit run; a second run balances the shards by the per-file durations the first recorded
(longest first onto the least-loaded shard); `shards = "auto"` with shard_seconds; bad values
are refused naming the file and line or the option.

Several engines (two private dockerd of tools/engines/engines.sh, ST_ENGINES=docker,docker2,
started for this file from the session's image archive): `container.hosts` and a repeated
--docker-host spread the shards over both engines, each batch naming its engine, the same
counts and no container left on either; placement follows the recorded durations (the two
longest shards go to different engines when each engine takes one at a time); one dockerd
killed (SIGKILL) mid-run: its shard is retried on the other (an infrastructure retry in
retry_errors) and the run passes with the same counts; started again while the run goes on,
the containers the run left there are removed before it takes work again; killed and left dead
until the run ends, the leftover container is removed by `cleanup` over both engines.
Without root or engines the engine tests skip.
"""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest
import st_helpers as sth
from st_helpers import is_eq, note, ok

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")
SCRIPT = os.path.join(sth.top_srcdir(), "tools", "engines", "engines.sh")

# file name -> (seconds each of its two tests sleeps, whether its second test fails)
FILES = {"test_a.py": 0.9, "test_b.py": 0.7, "test_c.py": 0.5, "test_d.py": 0.3,
         "test_e.py": 0.2, "test_f.py": 0.1}


def write_project(root, files=FILES, failing=("test_c.py",), extra_tests=0):
    os.makedirs(os.path.join(root, "tests"), exist_ok=True)
    with open(os.path.join(root, "pytest.ini"), "w") as fh:
        fh.write("[pytest]\n")
    for name, secs in files.items():
        body = "import time\n\n\ndef test_one():\n    time.sleep(%r)\n\n\ndef test_two():\n" \
               "    assert %s\n" % (secs, "False" if name in failing else "True")
        for k in range(extra_tests):
            body += "\n\ndef test_more_%d():\n    pass\n" % k
        with open(os.path.join(root, "tests", name), "w") as fh:
            fh.write(body)
    # a helper module named like a test file, without a test: its shard collects nothing
    with open(os.path.join(root, "tests", "test_helpers_only.py"), "w") as fh:
        fh.write("VALUE = 1\n")
    return root


def write_conf(root, body, name="selftest.conf"):
    path = os.path.join(root, name)
    with open(path, "w") as fh:
        fh.write('project_root = ".";\nworkers = 4;\n' + body)
    return path


def run_json(conf, root, *args, env=None, timeout=300):
    rc, out, err = sth.run([BIN, "-v", "-c", conf, "run", "--json"] + list(args),
                           env=sth.base_env(dict({"SANDBOX_REPO_PATH": root}, **(env or {}))),
                           cwd=root, timeout=timeout)
    lines = []
    for ln in out.splitlines():
        try:
            lines.append(json.loads(ln))
        except ValueError:
            pass
    batches = [x for x in lines if x.get("event") == "batch"]
    results = next((x for x in lines if x.get("event") == "results"), None)
    return rc, batches, results, err


def counts(r):
    return {k: r.get(k) for k in ("passed", "failed", "skipped")} if r else None


# ---- shards on the host ------------------------------------------------------------------------

def test_shards_host(workdir):
    """shards on the host runtime: lines per shard, one rolled-up path, balance by history"""
    root = write_project(os.path.join(workdir, "p"))
    conf1 = write_conf(root, 'runtime = "host";\npaths = ["tests"];\n')
    rc, b1, r1, err = run_json(conf1, root)
    if not ok(r1 is not None, "unsplit run: results", err[-1500:]):
        return
    is_eq(rc, 1, "unsplit run: exit 1 (one failing test)")
    is_eq(len(b1), 1, "unsplit run: one batch line")
    ok(b1[0].get("shard") is None and b1[0]["batch"].get("shards") == 1,
       "unsplit: the line names no shard, the batch says shards 1", repr(b1[0]["batch"])[:400])

    conf = write_conf(root, 'runtime = "host";\npaths = ( { path = "tests"; shards = 3; } );\n')
    rc, bl, r, err = run_json(conf, root)
    if not ok(r is not None, "3 shards: results", err[-1500:]):
        return
    is_eq(rc, 1, "3 shards: exit 1, as unsplit")
    is_eq(sorted(x.get("shard") for x in bl), ["1/3", "2/3", "3/3"],
          "3 shards: one --json line per shard, naming it")
    files = sorted(f for x in bl for f in x["batch"]["shard_files"])
    is_eq(files, sorted("tests/" + f for f in list(FILES) + ["test_helpers_only.py"]),
          "3 shards: every test file in exactly one shard")
    ok(all(x["path"] == "tests" for x in bl), "3 shards: each line's path is the configured path")
    is_eq(counts(r), counts(r1), "3 shards: the same counts as unsplit")
    is_eq(list(r["suite_metrics"]), ["tests"], "3 shards: suite_metrics has the path once")
    sm = r["suite_metrics"]["tests"]
    is_eq(sm.get("shards"), 3, "3 shards: the rolled-up batch says shards 3")
    is_eq(len(sm.get("shard_results") or []), 3, "3 shards: shard_results lists each shard")
    is_eq((sm["passed"], sm["failed"]), (r1["passed"], r1["failed"]),
          "3 shards: the rolled-up batch has the path's counts")
    ok(not sm["ok"], "3 shards: the path failed (its failing test is in one shard)")
    is_eq(sorted(t["nodeid"] for t in r["tests"]), sorted(t["nodeid"] for t in r1["tests"]),
          "3 shards: the results list every test once")
    ok(all(t["batch"] == "tests" for t in r["tests"]), "3 shards: each test's batch is the path")
    # the shard whose files hold no test collected nothing: not a failure of the path
    ok(not any("no tests collected" in (s.get("reason") or "") for s in sm["shard_results"]
               if not s["ok"]), "3 shards: a shard without tests is no failure",
       repr(sm["shard_results"]))
    db = sqlite3.connect(os.path.join(root, "sandbox_data", "metrics.db"))
    try:
        rows = db.execute("SELECT DISTINCT batch FROM test_outcomes WHERE run = "
                          "(SELECT MAX(id) FROM runs)").fetchall()
    finally:
        db.close()
    is_eq(rows, [("tests",)], "metrics.db: the tests are stored under the configured path")

    # the second run balances by the recorded per-file durations: with 2 shards, LPT puts
    # a (0.9 s a file) with d, e, f and b with c... the loads differ by at most one file's time
    conf2 = write_conf(root, 'runtime = "host";\npaths = ( { path = "tests"; shards = 2; } );\n')
    rc, bl2, r2, err = run_json(conf2, root)
    loads = []
    for x in bl2:
        hd = x["batch"].get("history_duration")
        loads.append(hd)
    ok(all(isinstance(v, (int, float)) for v in loads),
       "history: each shard has the expected duration of its files", repr(loads))
    if all(isinstance(v, (int, float)) for v in loads) and len(loads) == 2:
        ok(abs(loads[0] - loads[1]) <= 0.35,
           "history: the two shards' expected durations are balanced (LPT over the files)",
           repr(loads))
        a = next(x for x in bl2 if "tests/test_a.py" in x["batch"]["shard_files"])
        b = next(x for x in bl2 if "tests/test_b.py" in x["batch"]["shard_files"])
        ok(a is not b, "history: the two longest files are in different shards")
    is_eq(counts(r2), counts(r1), "history: the same counts")

    # auto: about shard_seconds each by the recorded total (~5.4 s of sleep in all)
    rc, bla, ra, err = run_json(conf1, root, "--shards", "auto", "--shard-seconds", "0.7")
    n = len(bla)
    ok(4 <= n <= 6, "auto (--shard-seconds 0.7 over ~2.7 s recorded): 4 to 6 shards",
       "%d shards" % n)
    is_eq(counts(ra), counts(r1), "auto: the same counts")

    # bad values name where they came from
    bad = write_conf(root, 'runtime = "host";\npaths = ( { path = "tests"; shards = 0; } );\n',
                     "bad.conf")
    rc, out, err = sth.run([BIN, "-c", bad, "run"], env=sth.base_env({"SANDBOX_REPO_PATH": root}),
                           cwd=root)
    is_eq(rc, 2, "shards = 0: a configuration error")
    ok(re.search(r"bad\.conf:4: shards '0' must be", err), "shards = 0: file:line named",
       err[-500:])
    rc, out, err = sth.run([BIN, "-c", conf1, "run", "--shards", "many"],
                           env=sth.base_env({"SANDBOX_REPO_PATH": root}), cwd=root)
    is_eq(rc, 2, "--shards many: a usage error")
    ok("option --shards" in err, "--shards many: the option named", err[-500:])
    bad = write_conf(root, 'runtime = "host";\npaths = ( { path = "tests"; shard = 2; } );\n',
                     "bad2.conf")
    rc, out, err = sth.run([BIN, "-c", bad, "run"], env=sth.base_env({"SANDBOX_REPO_PATH": root}),
                           cwd=root)
    is_eq(rc, 2, "a paths entry with an unknown key: a configuration error")
    ok("unknown setting 'shard'" in err, "... naming the key", err[-500:])


BIG = """import time

import pytest


@pytest.mark.parametrize("i", range(%d))
def test_slow(i):
    time.sleep(0.4)


def test_fast():
    pass
"""


def test_shards_python_files(workdir):
    """a project whose pytest.ini sets python_files: its paths are not split (the import graph
    knows test_*.py and *_test.py only, so shards would leave check_*.py out)"""
    root = write_project(os.path.join(workdir, "pf"))
    with open(os.path.join(root, "pytest.ini"), "w") as fh:
        fh.write("[pytest]\npython_files = check_*.py test_*.py\n")
    with open(os.path.join(root, "tests", "check_extra.py"), "w") as fh:
        fh.write("def test_extra_one():\n    pass\n\n\ndef test_extra_two():\n    pass\n")
    conf1 = write_conf(root, 'runtime = "host";\npaths = ["tests"];\n')
    _, _, r1, err = run_json(conf1, root)
    if not ok(r1 is not None, "python_files, unsplit: results", err[-1500:]):
        return
    ok(any("check_extra.py" in t["nodeid"] for t in r1["tests"]),
       "python_files, unsplit: pytest collects check_extra.py")
    conf = write_conf(root, 'runtime = "host";\npaths = ( { path = "tests"; shards = 3; } );\n')
    rc, bl, r, err = run_json(conf, root)
    if not ok(r is not None, "python_files, shards = 3: results", err[-1500:]):
        return
    ok("tests: not split into shards: pytest.ini sets python_files" in err,
       "python_files, shards = 3: a warning says why the path is not split", err[-1500:])
    is_eq(len(bl), 1, "python_files, shards = 3: one batch")
    is_eq(sorted(t["nodeid"] for t in r["tests"]), sorted(t["nodeid"] for t in r1["tests"]),
          "python_files, shards = 3: every test of the unsplit run ran, check_extra.py's too")


def test_batch_variables_not_inherited(workdir):
    """selftest-core started from a batch of another one (its tests run it): the variables that
    describe that batch to the pytest plugin (a shard filter, a results frame, orphan modules)
    do not reach this run's batches"""
    root = write_project(os.path.join(workdir, "nested"))
    conf = write_conf(root, 'runtime = "host";\npaths = ["tests"];\n')
    _, _, r1, err = run_json(conf, root)
    if not ok(r1 is not None, "clean environment: results", err[-1500:]):
        return
    leaked = {"SELF_TEST_SHARD_FILTER": json.dumps({"keep": {"tests/test_a.py": []}}),
              "SELF_TEST_RESULTS_FRAME": "abc123",
              "SELF_TEST_FIRST_FILES": json.dumps(["tests/test_f.py"]),
              "SELF_TEST_ORPHAN_MODULES": json.dumps([{"path": "x.py", "module": "x"}])}
    rc, bl, r2, err = run_json(conf, root, env=leaked)
    if not ok(r2 is not None, "an outer batch's variables in the environment: results",
              err[-1500:]):
        return
    is_eq(counts(r2), counts(r1), "an outer batch's variables in the environment: the same counts")
    is_eq(sorted(t["nodeid"] for t in r2["tests"]), sorted(t["nodeid"] for t in r1["tests"]),
          "an outer batch's variables in the environment: the same tests")


def test_shards_split_file(workdir):
    """a file longer than a shard's share is split by test; new and removed tests are safe"""
    root = os.path.join(workdir, "big")
    os.makedirs(os.path.join(root, "tests"))
    with open(os.path.join(root, "pytest.ini"), "w") as fh:
        fh.write("[pytest]\n")
    big = os.path.join(root, "tests", "test_big.py")
    with open(big, "w") as fh:
        fh.write(BIG % 6)
    for i in range(3):
        with open(os.path.join(root, "tests", "test_s%d.py" % i), "w") as fh:
            fh.write("def test_x():\n    pass\n")
    conf = write_conf(root, 'runtime = "host";\npaths = ( { path = "tests"; shards = 3; } );\n')
    rc, bl, r, err = run_json(conf, root)
    is_eq((rc, r and r["passed"]), (0, 10), "first run (no history): 10 tests pass")
    rc, bl, r, err = run_json(conf, root)
    holding = [x for x in bl if "tests/test_big.py" in x["batch"]["shard_files"]]
    ok(len(holding) >= 2, "with history: the long file is split over several shards",
       repr([(x["shard"], x["batch"]["shard_files"]) for x in bl]))
    is_eq((rc, r and r["passed"]), (0, 10), "split: the same 10 tests pass")
    nodes = [t["nodeid"] for t in (r or {}).get("tests", []) if t.get("phase") == "call"]
    is_eq(sorted(nodes), sorted(set(nodes)), "split: each test ran once")
    loads = sorted(x["batch"].get("history_duration") or 0 for x in bl)
    ok(len(loads) == 3 and loads[-1] < 1.6,
       "split: no shard expects more than about a third of the 2.4 s (one file was all of it)",
       repr(loads))
    # a test added since: it runs once, in the file's home shard
    with open(big, "a") as fh:
        fh.write("\n\ndef test_new():\n    pass\n")
    rc, bl, r, err = run_json(conf, root)
    new = [t for t in (r or {}).get("tests", []) if t["nodeid"].endswith("::test_new") and
           t.get("phase") == "call"]
    is_eq((rc, r and r["passed"], len(new)), (0, 11, 1),
          "a test added to the split file runs once (11 pass)")
    # recorded tests that are gone are no error
    with open(big, "w") as fh:
        fh.write(BIG % 3)
    rc, bl, r, err = run_json(conf, root)
    is_eq((rc, r and r["passed"]), (0, 7), "tests removed from the split file: no error, 7 pass")


# ---- two engines ---------------------------------------------------------------------------------

def api(sock, method, path, timeout=30):
    import http.client
    import socket

    class UnixHTTP(http.client.HTTPConnection):
        def connect(self):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(sock)
            self.sock = s

    c = UnixHTTP("d", timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        data = r.read()
    finally:
        c.close()
    try:
        return r.status, json.loads(data) if data.strip() else None
    except ValueError:
        return r.status, data


def listed(sock):
    q = urllib.parse.quote(json.dumps({"label": ["menace_self_test"]}))
    try:
        st, body = api(sock, "GET", "/v1.41/containers/json?all=1&filters=" + q)
    except OSError as e:
        return ["list failed: %s" % e]
    return body if st == 200 and isinstance(body, list) else ["list failed: %r" % st]


@pytest.fixture(scope="module")
def two(engines):
    """Two private dockerd of their own (docker, docker2) for this file: one is killed."""
    if not any(os.path.exists(os.path.join(d, sub, "runtime-docker.so"))
               for d in os.environ.get("SELF_TEST_PLUGIN_PATH", "").split(":") if d
               for sub in ("", "runtime-docker/.libs")):
        pytest.skip("runtime-docker is not built (./configure --disable-runtime-docker)")
    if not engines.get("tar"):
        pytest.skip("no image archive in the engines' env")
    d = tempfile.mkdtemp(prefix="st-so-", dir="/tmp")
    rc, out, err = sth.run(["bash", SCRIPT, "up", d], env=sth.base_env({
        "ST_ENGINES": "docker,docker2", "ST_IMAGE_TAR_IN": engines["tar"]}), timeout=400)
    if rc != 0:
        sth.run(["bash", SCRIPT, "down", d], timeout=300)
        pytest.skip("engines.sh up with docker,docker2 failed: %s" % err[-800:])
    yield {"dir": d, "up_out": out, "a": os.path.join(d, "docker.sock"), "b": os.path.join(d, "docker2.sock"),
           "image": engines["image"]}
    sth.run(["bash", SCRIPT, "down", d], timeout=300)


def engine_conf(root, two, hosts_line, paths_line, extra=""):
    return write_conf(root, 'runtime = "docker";\ncontainer_fallback = "fail";\n%s\n'
                      'container = {\n  image = "%s";\n%s%s};\n'
                      % (paths_line, two["image"], hosts_line, extra))


def engine_env():
    return {"DOCKER_HOST": None, "CONTAINER_HOST": None, "MENACE_OFFLINE_INSTALL": None,
            "MENACE_SELF_TEST_IMAGE_TAR": None}


def test_two_engines(workdir, two):
    """container.hosts and --docker-host: shards over two engines, placement, cleanup"""
    os.chmod(workdir, 0o755)
    ok("DOCKER2_SOCK=%s/docker2.sock" % two["dir"] in two["up_out"],
       "engines.sh up with docker2 prints DOCKER2_SOCK", two["up_out"][-500:])
    root = write_project(os.path.join(workdir, "p2"))
    host_conf = write_conf(root, 'runtime = "host";\npaths = ["tests"];\n')
    _, _, rh, err = run_json(host_conf, root)
    if not ok(rh is not None, "host run: results", err[-1000:]):
        return
    hosts = '  hosts = ["unix://%s?workers=2", "unix://%s?workers=2"];\n' % (two["a"], two["b"])
    conf = engine_conf(root, two, hosts, 'paths = ( { path = "tests"; shards = 4; } );')
    rc, bl, r, err = run_json(conf, root, env=engine_env())
    if not ok(r is not None, "hosts: results", err[-2000:]):
        return
    is_eq(counts(r), counts(rh), "hosts: the same counts as on the host")
    is_eq(r.get("runtime_used"), "docker", "hosts: runtime_used docker")
    engines_seen = {x["batch"].get("engine") for x in bl}
    is_eq(engines_seen, {"unix://" + two["a"], "unix://" + two["b"]},
          "hosts: the shards ran on both engines, each batch naming its engine")
    ok(all(x["batch"].get("container") for x in bl), "hosts: each shard names its container")
    sm = r["suite_metrics"]["tests"]
    ok(set((sm.get("engine") or "").split(", ")) == engines_seen,
       "hosts: the rolled-up path names the engines of its shards", sm.get("engine"))
    is_eq((listed(two["a"]), listed(two["b"])), ([], []), "hosts: no container left on either")

    # the same through a repeated --docker-host (the config's hosts replaced)
    conf_cli = engine_conf(root, two, "", 'paths = ( { path = "tests"; shards = 4; } );')
    rc, bl, r2, err = run_json(conf_cli, root, "--docker-host", "unix://" + two["a"],
                               "--docker-host", "unix://" + two["b"], env=engine_env())
    if ok(r2 is not None, "--docker-host twice: results", err[-1500:]):
        is_eq(counts(r2), counts(rh), "--docker-host twice: the same counts")
        is_eq({x["batch"].get("engine") for x in bl},
              {"unix://" + two["a"], "unix://" + two["b"]}, "--docker-host twice: both engines")

    # tcp:// with TLS (docker2's TLS port, which verifies client certificates) beside a unix
    # socket, through --docker-host: DOCKER_TLS_VERIFY and DOCKER_CERT_PATH as for the docker CLI
    tls_host = re.search(r"^DOCKER2_TLS_HOST=(tcp://127\.0\.0\.1:\d+)$", two["up_out"], re.M)
    cert = re.search(r"^DOCKER2_CERT_PATH=(\S+)$", two["up_out"], re.M)
    if ok(tls_host and cert, "engines.sh up with docker2 prints DOCKER2_TLS_HOST and "
          "DOCKER2_CERT_PATH", two["up_out"][-800:]):
        tls_env = dict(engine_env(), DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=cert.group(1))
        rc, bl, r4, err = run_json(conf_cli, root, "--docker-host", "unix://" + two["a"],
                                   "--docker-host", tls_host.group(1), env=tls_env)
        if ok(r4 is not None, "tcp:// with TLS and unix://: results", err[-1500:]):
            is_eq(counts(r4), counts(rh), "tcp:// with TLS and unix://: the same counts")
            seen = {x["batch"].get("engine") for x in bl}
            port = tls_host.group(1).rsplit(":", 1)[1]
            ok(len(seen) == 2 and "unix://" + two["a"] in seen and
               any(e and e.endswith("127.0.0.1:" + port) for e in seen),
               "tcp:// with TLS and unix://: the shards ran on both engines", repr(seen))
        is_eq((listed(two["a"]), listed(two["b"])), ([], []),
              "tcp:// with TLS: no container left on either")
        # without the CA the engine's certificate is not trusted; with the CA but without a
        # client certificate the engine refuses the client: each says which engine and which
        # certificate files it had
        port = tls_host.group(1).rsplit(":", 1)[1]
        for what, files in (("no certificate files", ()), ("the CA but no client certificate",
                                                               ("ca.pem",))):
            d = os.path.join(workdir, "certs-" + str(len(files)))
            os.makedirs(d, exist_ok=True)
            for f in files:
                shutil.copy(os.path.join(cert.group(1), f), d)
            rc, bl, r5, err = run_json(conf_cli, root, "--docker-host", tls_host.group(1),
                                       env=dict(engine_env(), DOCKER_TLS_VERIFY="1",
                                                DOCKER_CERT_PATH=d))
            note("tcp:// with TLS, %s: exit %d: %s" % (what, rc, err.strip()[-600:]))
            ok(rc not in (0, 1) and r5 is None and
               re.search(r"TLS connection to the engine at https://127\.0\.0\.1:%s failed: .*"
                         r"certificates from %s .*: %sca\.pem.*, no cert\.pem, no key\.pem"
                         % (port, re.escape(d), "" if files else "no "), err),
               "tcp:// with TLS, %s: refused (exit %d), naming the engine and the files" %
               (what, rc), err[-1500:])

    # placement: one worker per engine, 4 shards whose recorded durations differ; the two
    # longest start first, one on each engine
    hosts1 = '  hosts = ["unix://%s?workers=1", "unix://%s?workers=1"];\n' % (two["a"], two["b"])
    conf1 = engine_conf(root, two, hosts1, 'paths = ( { path = "tests"; shards = 4; } );')
    # Whatever the timing of the worker threads (the second may be placed after the first has
    # ended, on a loaded machine): engines that are otherwise equal take turns
    # (tests/plugins/test_engine_common covers those orders one by one).
    rc, bl, r3, err = run_json(conf1, root, env=engine_env())
    if r3 is not None and len(bl) == 4:
        by_exp = sorted(bl, key=lambda x: -(x["batch"].get("history_duration") or 0))
        t0 = min(x["batch"].get("started_at") or 0 for x in bl)
        note("placement (shard, recorded duration, engine, started, finished, seconds after "
             "the first start): %r" % [(x["shard"], x["batch"].get("history_duration"),
                                        x["batch"]["engine"],
                                        round((x["batch"].get("started_at") or 0) - t0, 3),
                                        round((x["batch"].get("finished_at") or 0) - t0, 3))
                                       for x in by_exp])
    if ok(r3 is not None and len(bl) == 4, "placement: 4 shards ran", err[-1500:]):
        ok(by_exp[0]["batch"]["engine"] != by_exp[1]["batch"]["engine"],
           "placement: the two longest shards ran on different engines", err[-3000:])
        loads = {}
        for x in bl:
            loads[x["batch"]["engine"]] = loads.get(x["batch"]["engine"], 0) + \
                (x["batch"].get("history_duration") or 0)
        v = sorted(loads.values())
        ok(len(v) == 2 and v[1] - v[0] <= max(x["batch"].get("history_duration") or 0
                                              for x in bl),
           "placement: the engines' expected loads differ by at most one shard", repr(loads))
        is_eq(counts(r3), counts(rh), "placement: the same counts")

    # cleanup goes over every engine
    rc, out, err = sth.run([BIN, "-v", "-c", conf, "cleanup"], env=sth.base_env(
        dict(engine_env(), SANDBOX_REPO_PATH=root)), cwd=root, timeout=120)
    is_eq(rc, 0, "cleanup over hosts: exit 0")
    for s in (two["a"], two["b"]):
        ok("engine unix://%s:" % s in err + out, "cleanup over hosts: reports engine %s"
           % os.path.basename(s), (err + out)[-1500:])


def wait_running_on(sock, timeout=90):
    until = time.time() + timeout
    while time.time() < until:
        for c in listed(sock):
            if isinstance(c, dict) and c.get("State") == "running" and \
                    "-s" in (c.get("Labels") or {}).get("selftest.batch", ""):
                return c
        time.sleep(0.1)
    return None


def kill_docker2(two):
    with open(os.path.join(two["dir"], "docker2.pid")) as fh:
        pid = int(fh.read().strip())
    os.kill(pid, signal.SIGKILL)
    return pid


@pytest.mark.parametrize("back", ["comes back", "stays dead"])
def test_engine_lost(workdir, two, back):
    """docker2 killed mid-run: its shard goes to docker; back: its containers removed"""
    os.chmod(workdir, 0o755)
    slow = {"test_%s.py" % c: 2.5 for c in "abcdefgh"}
    root = write_project(os.path.join(workdir, "p3"), files=slow, failing=())
    hosts = '  hosts = ["unix://%s?workers=1", "unix://%s?workers=1"];\n  api_timeout = 10;\n' \
        % (two["a"], two["b"])
    conf = engine_conf(root, two, hosts, 'paths = ( { path = "tests"; shards = 8; } );')
    out_path = os.path.join(workdir, "lost-%s.out" % back.replace(" ", "-"))
    tag = "engine lost, %s" % back
    with open(out_path, "wb") as fh:
        core = subprocess.Popen([BIN, "-v", "-c", conf, "run", "--json", "--retries", "1"],
                                env=sth.base_env(dict(engine_env(), SANDBOX_REPO_PATH=root)),
                                cwd=root, stdin=subprocess.DEVNULL, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
    c = wait_running_on(two["b"])
    if not ok(c is not None, "%s: a shard runs on docker2" % tag,
              open(out_path, errors="replace").read()[-1500:]):
        sth.kill_group(core)
        core.wait()
        return
    kill_docker2(two)
    restarted = None
    if back == "comes back":
        time.sleep(1)
        rc, out, err = sth.run(["bash", SCRIPT, "restart", two["dir"]], timeout=120)
        restarted = rc == 0
        ok(restarted, "%s: docker2 restarted while the run goes on" % tag, err[-800:])
    try:
        core.wait(timeout=240)
    except subprocess.TimeoutExpired:
        sth.kill_group(core)
        core.wait()
    text = open(out_path, errors="replace").read()
    lines = [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]
    r = next((x for x in lines if x.get("event") == "results"), None)
    is_eq(core.returncode, 0, "%s: the run passes (the lost shard ran on docker)" % tag)
    if not ok(r is not None, "%s: results" % tag, text[-2000:]):
        return
    is_eq((r["passed"], r["failed"]), (16, 0), "%s: the same counts (8 files x 2 tests)" % tag)
    retries = r.get("retry_errors") or {}
    errs = [e["error"] for v in retries.values() for e in v]
    ok(any("docker2.sock" in e and "lost" in e for e in errs),
       "%s: retry_errors has the lost shard's infrastructure error naming docker2" % tag,
       repr(retries)[:1500])
    ok(re.search(r"engine unix://\S*docker2\.sock lost", text),
       "%s: the log says the engine was lost" % tag, text[-2000:])
    if back == "comes back":
        ok(re.search(r"engine unix://\S*docker2\.sock is back: removed [1-9]\d* container", text),
           "%s: when it is back, the run removes the containers it left there" % tag,
           text[-2500:])
        is_eq((listed(two["a"]), listed(two["b"])), ([], []),
              "%s: no container left on either engine" % tag)
        return
    ok(re.search(r"engine unix://\S*docker2\.sock is still lost", text),
       "%s: the end of the run says what is left there" % tag, text[-1500:])
    rc, out, err = sth.run(["bash", SCRIPT, "restart", two["dir"]], timeout=120)
    if not ok(rc == 0, "%s: docker2 restarted after the run" % tag, err[-800:]):
        return
    left = [x for x in listed(two["b"]) if isinstance(x, dict)]
    ok(len(left) >= 1, "%s: the dead run's container is on docker2 (not vacuous)" % tag,
       repr(listed(two["b"]))[:500])
    rc, out, err = sth.run([BIN, "-v", "-c", conf, "cleanup"], env=sth.base_env(
        dict(engine_env(), SANDBOX_REPO_PATH=root)), cwd=root, timeout=120)
    is_eq(rc, 0, "%s: cleanup over both engines exits 0" % tag)
    is_eq((listed(two["a"]), listed(two["b"])), ([], []),
          "%s: cleanup left no container on either engine" % tag)
