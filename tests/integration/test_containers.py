# SPDX-License-Identifier: MIT
"""runtime-docker and runtime-podman against a real dockerd and a real Podman service.

The engines are private ones started by tools/engines/engines.sh (own sockets, data dirs and
configs; a small python3+pytest image built from the host's packages, no registry), torn down at
the end. Set ST_ENGINES_DIR to the directory of an `engines.sh up` already running to reuse it
(then it is left running). Without root, or when the engines cannot start, everything is skipped.

Checked: the fixture projects give the same counts, exit status and reasons under docker and
podman as on the host; one container per test path, none left; the two configs differ only in
the runtime line; a hanging batch is killed at the timeout and its container removed; a container
killed from outside fails its batch with a clear reason; an engine stopped mid-run ends the run
with exit 3 without hanging; `cleanup` removes a dead owner's containers and keeps a live one's;
offline mode loads the image tarball and never pulls; no host secret reaches the container;
bad input (malformed address, unknown image, socket without permission, an engine answering
error bodies or broken JSON) gives a clear message, exit 3, no crash, no leaked container.
"""

import json
import os
import re
import shutil
import signal
import socketserver
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid

import pytest
import st_helpers as sth
from st_helpers import batch_of, counts_of, is_eq, label_filter, ok

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")

ENGINES = ("docker", "podman")
HOST_VAR = sth.ENGINE_HOST_VAR
FIXTURES = sth.RUNTIME_FIXTURES
SCRIPT = os.path.join(sth.top_srcdir(), "tools", "engines", "engines.sh")
WORK = ENG = None  # the scratch directory and the engines (the work fixture)


# --------------------------------------------------------------------------------------------
# engines


api = sth.engine_api  # (status, reply) of one engine API request


def managed(sock):
    st, body = api(sock, "GET", "/v1.41/containers/json?all=1&filters=" +
                   label_filter("menace_self_test"))
    return body if st == 200 else ["list failed: %r %r" % (st, body)]


IMAGE = None  # the engines' image (the work fixture)



# --------------------------------------------------------------------------------------------
# configs and runs

CONF_BODY = """# written by test_containers.py
runtime = "%s";
container = {
  image = "%s";
  env_passthrough = ["ST_PASSED_VAR"];
};
"""


def write_conf(runtime, name=None, body=None):
    path = os.path.join(WORK, name or "%s.conf" % runtime)
    with open(path, "w") as fh:
        fh.write(body if body is not None else CONF_BODY % (runtime, IMAGE))
    return path


HOST_CONF = CONF = FAIL_CONF = None  # the config files (the work fixture)


def write_confs():
    global HOST_CONF, CONF, FAIL_CONF
    HOST_CONF = write_conf("host", body='runtime = "host";\n')
    CONF = {e: write_conf(e) for e in ENGINES}
    # bad-input checks want the engine's error, not the host fallback (docs/spec.md §6.2)
    FAIL_CONF = {e: write_conf(e, "%s-fail.conf" % e, 'container_fallback = "fail";\n' +
                               CONF_BODY % (e, IMAGE)) for e in ENGINES}


def engine_env(engine, sock=None):
    env = {"DOCKER_HOST": None, "CONTAINER_HOST": None, "MENACE_OFFLINE_INSTALL": None,
           "MENACE_SELF_TEST_IMAGE_TAR": None}
    if engine in ENGINES:
        env[HOST_VAR[engine]] = "unix://" + (sock or ENG[engine])
    return env


def copy_fixture(name, dest=None):
    return sth.copy_fixture(WORK, name, dest)


def write_project(files):
    return sth.write_project(WORK, files)


def selftest(engine, root, args, env=None, conf=None, timeout=180, command="run", user=None,
             binary=None):
    extra = {"SANDBOX_REPO_PATH": root}
    extra.update(engine_env(engine))
    extra.update(env or {})
    argv = [binary or BIN, "-v", "-c", conf or (CONF.get(engine) or HOST_CONF), command] + \
        list(args)
    if user:
        argv = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + argv
    return sth.run_events(argv, sth.base_env(extra), root, timeout)


def diag(r):
    return "rc=%r\nstderr: %s\nstdout tail: %s" % (r["rc"], r["err"][-1500:], r["out"][-800:])


def batch_name(label):
    """"batch-0" of a batch id label ("<run prefix>-batch-0" or "batch-0")."""
    m = re.search(r"(batch-\d+|preflight)$", label or "")
    return m.group(1) if m else label


def creates_since(engine, since, until):
    """Containers created on engine between since and until (UNIX s), from the events API:
    (batch labels, count)."""
    q = "since=%d&until=%d&filters=%s" % (since, until + 1, urllib.parse.quote(json.dumps(
        {"type": ["container"], "event": ["create"]})))
    st, data = api(ENG[engine], "GET", "/v1.41/events?" + q, raw=True, timeout=30)
    batches = []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        attrs = (ev.get("Actor") or {}).get("Attributes") or {}
        if attrs.get("menace_self_test") == "1" or "name" in attrs:
            batches.append(attrs.get("selftest.batch", "?"))
    return batches


# --------------------------------------------------------------------------------------------
# 1. the configs differ in one line

def check_configs():
    a = open(CONF["docker"]).read().splitlines()
    b = open(CONF["podman"]).read().splitlines()
    diff = [(x, y) for x, y in zip(a, b) if x != y]
    is_eq(diff, [('runtime = "docker";', 'runtime = "podman";')] if len(a) == len(b) else None,
          "the docker and podman configs differ only in the runtime line")


# --------------------------------------------------------------------------------------------
# 2. fixtures: host vs docker vs podman

def fixture_runs(name):
    args = ["--json", "--retries", "0", "--workers", "1"]
    if name == "timeout":
        args += ["--timeout", "3"]
    got = {}
    for engine in ("host",) + ENGINES:
        root = copy_fixture(name)
        t0 = time.time()
        got[engine] = selftest(engine, root, args + [root])
        got[engine]["since"], got[engine]["until"] = t0, time.time()
        got[engine]["root"] = root
    return got


def check_fixture(name, got):
    host = got["host"]
    if not ok(host["results"] is not None, "%s: host run gives results" % name, diag(host)):
        return
    for engine in ENGINES:
        r = got[engine]
        label = "%s under %s" % (name, engine)
        if not ok(r["results"] is not None, "%s: results object" % label, diag(r)):
            continue
        b, hb = sth.check_like_host(label, name, r, host, engine)
        if name == "timeout":
            ok(r["elapsed"] < 30, "%s: the run ends soon after the 3 s timeout" % label,
               "took %.1f s" % r["elapsed"])
        ok(re.fullmatch(r"selftest_[0-9a-f]{32}", b.get("container") or ""),
           "%s: the batch records its container's name" % label, repr(b.get("container")))
        if b.get("ok") is False:
            sth.check_log_tail(label, name, b, "the engine's logs of its container")
        else:
            is_eq(b.get("output_tail"), None, "%s: a passing batch keeps no output" % label)
        is_eq(managed(ENG[engine]), [], "%s: no container left" % label)


# --------------------------------------------------------------------------------------------
# 3. one container per path (split: a, b, c)

def check_one_per_path(engine):
    root = copy_fixture("split")
    time.sleep(1.1)  # the events API counts in whole seconds: no earlier run's creates
    t0 = int(time.time())
    r = selftest(engine, root, ["--json", "--retries", "0", "--workers", "2", "a", "b", "c"])
    t1 = time.time()
    if not ok(r["results"] is not None, "split a b c under %s: results" % engine, diag(r)):
        return
    is_eq(counts_of(r["results"])["passed"], 6, "split a b c under %s: 6 passed" % engine)
    runs = []
    for _ in range(10):  # podman writes its events file asynchronously
        time.sleep(0.5)
        batches = creates_since(engine, t0, t1 + 1)
        runs = sorted(batch_name(b) for b in batches if batch_name(b) != "preflight")
        if len(runs) >= 3:
            break
    is_eq(runs, ["batch-0", "batch-1", "batch-2"],
          "split a b c under %s: one container per test path (events API)" % engine)
    is_eq(managed(ENG[engine]), [], "split under %s: no container left" % engine)


# --------------------------------------------------------------------------------------------
# 4. environment: no host secret inside, passthrough names and SELF_TEST_* are

ENV_TEST = '''import os

def test_no_secret():
    assert "ST_FAKE_SECRET" not in os.environ
    assert "hunter2" not in repr(dict(os.environ))

def test_passthrough_and_prefixes():
    assert os.environ.get("ST_PASSED_VAR") == "passed"
    assert os.environ.get("SELF_TEST_MARKER") == "m1"
    assert os.environ.get("PYTHONDONTWRITEBYTECODE") == "1"

def test_readonly_tree():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        open(os.path.join(here, "written.txt"), "w").close()
    except OSError:
        return
    raise AssertionError("the project tree is writable in the container")
'''


def check_env(engine):
    root = write_project({"tests/test_env.py": ENV_TEST})
    r = selftest(engine, root, ["--json", "--retries", "0"],
                 env={"ST_FAKE_SECRET": "hunter2", "ST_PASSED_VAR": "passed",
                      "SELF_TEST_MARKER": "m1"})
    ok(r["results"] is not None and counts_of(r["results"])["passed"] == 3 and r["rc"] == 0,
       "%s: no host secret in the container; passthrough, SELF_TEST_* kept; tree read-only"
       % engine, diag(r) + "\n" + json.dumps(r["results"] and r["results"].get("tests"))[:1500])
    ok(not os.path.exists(os.path.join(root, "tests", "__pycache__")) and
       not os.path.exists(os.path.join(root, ".pytest_cache")),
       "%s: nothing written into the project tree (no bytecode, no cache)" % engine)


LIMITS_TEST = sth.LIMITS_READ + '''
def test_user_and_limits():
    assert (os.getuid(), os.getgid()) == (65534, 65534)
    mem = read("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert mem == str(96 * 1024 * 1024), mem
    pids = read("/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max")
    assert pids == "64", pids
'''


def check_limits(engine):
    conf = write_conf(engine, "limits-%s.conf" % engine, CONF_BODY.replace(
        "};", '  user = "65534:65534";\n  memory = "96m";\n  pids_limit = 64;\n  cpus = 1.0;\n};')
        % (engine, IMAGE))
    root = write_project({"tests/test_limits.py": LIMITS_TEST})
    r = selftest(engine, root, ["--json", "--retries", "0"], conf=conf)
    ok(r["rc"] == 0 and r["results"] and r["results"]["passed"] == 1,
       "%s: user, memory and pids limits reach the container (results written as that user)"
       % engine, diag(r) + json.dumps((r["results"] or {}).get("tests"))[:1500])


# --------------------------------------------------------------------------------------------
# 5. killed from outside, timeout removal

SLEEP_TEST = '''import time

def test_sleeps():
    time.sleep(60)
'''


def wait_for_container(sock, batch, timeout=30):
    until = time.time() + timeout
    while time.time() < until:
        for c in managed(sock):
            if isinstance(c, dict) and \
                    batch_name((c.get("Labels") or {}).get("selftest.batch")) == batch \
                    and c.get("State") == "running":
                return c["Id"]
        time.sleep(0.1)
    return None


def check_killed_from_outside(engine):
    root = write_project({"tests/test_sleep.py": SLEEP_TEST})
    box = {}
    t = threading.Thread(target=lambda: box.update(
        r=selftest(engine, root, ["--json", "--retries", "0", "--timeout", "120"])))
    t.start()
    cid = wait_for_container(ENG[engine], "batch-0")
    if cid:
        api(ENG[engine], "POST", "/v1.41/containers/%s/kill?signal=KILL" % cid)
    t.join(180)
    r = box.get("r")
    ok(cid is not None, "%s: the sleeping batch's container is seen running" % engine)
    if not r or not ok(r["results"] is not None, "%s: killed from outside: results" % engine,
                       diag(r) if r else "no run"):
        return
    b = batch_of(r["results"], ".")
    ok(b.get("ok") is False and re.search(r"signal 9\b", b.get("reason") or ""),
       "%s: a container killed from outside fails its batch with a clear reason" % engine,
       "reason: %r" % b.get("reason"))
    is_eq(r["rc"], 1, "%s: killed from outside: exit status 1" % engine)
    ok(r["elapsed"] < 60, "%s: killed from outside: the run ends at once" % engine,
       "%.1f s" % r["elapsed"])
    ok("from outside" in r["err"] + r["out"], "%s: the output says it was killed from outside"
       % engine, r["err"][-800:])
    is_eq(managed(ENG[engine]), [], "%s: killed from outside: no container left" % engine)


def check_sigint(engine):
    """SIGINT to selftest-core while a batch runs: cancel() kills the container, none is left."""
    root = write_project({"tests/test_sleep.py": SLEEP_TEST})
    extra = {"SANDBOX_REPO_PATH": root}
    extra.update(engine_env(engine))
    t0 = time.monotonic()
    p = subprocess.Popen([BIN, "-c", CONF[engine], "run", "--json", "--retries", "0",
                          "--timeout", "120"], env=sth.base_env(extra), cwd=root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    cid = wait_for_container(ENG[engine], "batch-0")
    p.send_signal(signal.SIGINT)
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        sth.kill_group(p)
        out, err = p.communicate()
    elapsed = time.monotonic() - t0
    ok(cid is not None and p.returncode is not None and elapsed < 40,
       "%s: SIGINT during a batch: the run stops soon (rc %r, %.1f s)" % (engine, p.returncode,
                                                                        elapsed),
       err.decode()[-1000:])
    is_eq(managed(ENG[engine]), [], "%s: SIGINT: the batch's container is killed and removed"
          % engine)


# --------------------------------------------------------------------------------------------
# 6. cleanup: a dead owner's container goes, a live owner's stays

def make_labelled(sock, labels):
    st, body = api(sock, "POST", "/v1.41/containers/create?name=selftest_%s" % uuid.uuid4().hex,
                   {"Image": IMAGE, "Cmd": ["python3", "-c", "pass"], "Labels": labels,
                    "HostConfig": {"NetworkMode": "none"}})
    return body.get("Id") if st == 201 and isinstance(body, dict) else None


def check_cleanup(engine):
    sock = ENG[engine]
    labels = sth.owner_labels()
    labels["foreign_live"] = dict(labels["live"], **{
        "selftest.owner.host": "elsewhere", "selftest.owner.pid": "1",
        "selftest.owner.start": "1"})
    ids = {k: make_labelled(sock, v) for k, v in labels.items()}
    ok(all(ids.values()), "%s: cleanup fixtures created" % engine, repr(ids))
    root = copy_fixture("passing")
    r = selftest(engine, root, [], command="cleanup")
    left = {c["Id"] for c in managed(sock) if isinstance(c, dict)}
    is_eq(r["rc"], 0, "%s: cleanup exits 0" % engine)
    ok("3 removed" in r["out"], "%s: cleanup reports what it removed" % engine, diag(r))
    is_eq(sorted(k for k, v in ids.items() if v in left), ["foreign_live", "live"],
          "%s: cleanup removes dead owners' (pid gone, pid reused, foreign past deadline) "
          "and keeps live runs'" % engine)
    for cid in left:
        api(sock, "DELETE", "/v1.41/containers/%s?force=1" % cid)


# --------------------------------------------------------------------------------------------
# 7. offline: the tarball is loaded, nothing is pulled

def check_offline(engine):
    sock = ENG[engine]
    name = "selftest-offline-%s:t1" % engine
    repo, tag = name.split(":")
    tar = os.path.join(WORK, "offline-%s.tar" % engine)
    # a tarball holding only `name`: tag, save, untag
    api(sock, "POST", "/v1.41/images/%s/tag?repo=%s&tag=%s" % (IMAGE, repo, tag))
    st, data = api(sock, "GET", "/v1.41/images/%s/get" % name, raw=True, timeout=300)
    with open(tar, "wb") as fh:
        fh.write(data)
    api(sock, "DELETE", "/v1.41/images/%s" % name)
    st2, _ = api(sock, "GET", "/v1.41/images/%s/json" % name)
    ok(st == 200 and st2 == 404, "%s: offline image tarball made, image absent" % engine,
       "save %r, inspect after untag %r" % (st, st2))
    conf = write_conf(engine, "offline-%s.conf" % engine, CONF_BODY % (engine, name))
    root = copy_fixture("passing")
    r = selftest(engine, root, ["--json", "--retries", "0"], conf=conf,
                 env={"MENACE_OFFLINE_INSTALL": "1", "MENACE_SELF_TEST_IMAGE_TAR": tar,
                      })
    ok(r["rc"] == 0 and r["results"] and r["results"]["passed"] == 5,
       "%s: offline: the image is loaded from the tarball and the run passes" % engine, diag(r))
    ok("loading image" in r["err"] and "pulling" not in r["err"],
       "%s: offline: loaded, never pulled" % engine, r["err"][-1000:])
    api(sock, "DELETE", "/v1.41/images/%s" % name)
    r = selftest(engine, root, ["--json", "--retries", "0"], conf=conf,
                 env={"MENACE_OFFLINE_INSTALL": "1"})
    ok(r["rc"] == 3 and "MENACE_SELF_TEST_IMAGE_TAR" in r["err"] and "pulling" not in r["err"],
       "%s: offline without a tarball: exit 3 naming MENACE_SELF_TEST_IMAGE_TAR, no pull"
       % engine, diag(r))
    bad = os.path.join(WORK, "not-a-tar.tar")
    with open(bad, "w") as fh:
        fh.write("this is not a tarball\n" * 100)
    r = selftest(engine, root, ["--json", "--retries", "0"], conf=conf,
                 env={"MENACE_OFFLINE_INSTALL": "1", "MENACE_SELF_TEST_IMAGE_TAR": bad})
    ok(r["rc"] == 3 and bad in r["err"], "%s: offline with a broken tarball: exit 3 naming it"
       % engine, diag(r))


# --------------------------------------------------------------------------------------------
# 8. bad input

def check_bad_address(engine):
    root = copy_fixture("passing")
    for url, words in (("tcp://localhost:99999", "1..65535"), ("unix://relative.sock", "absolute"),
                       ("bogus", "expected")):
        r = selftest(engine, root, ["--json", "--retries", "0"], env={HOST_VAR[engine]: url},
                     conf=FAIL_CONF[engine])
        ok(r["rc"] in (2, 3) and HOST_VAR[engine] in r["err"] and words in r["err"],
           "%s: malformed address %r: exit 2/3 naming %s and why" % (engine, url, HOST_VAR[engine]),
           diag(r))
    env = {HOST_VAR[engine]: "unix://%s/none.sock" % WORK}
    r = selftest(engine, root, ["--json", "--retries", "0"], env=env, conf=FAIL_CONF[engine])
    ok(r["rc"] == 3 and "no socket at that path" in r["err"],
       "%s: missing socket, container_fallback fail: exit 3, 'no socket at that path'" % engine,
       diag(r))
    r = selftest(engine, root, ["--json", "--retries", "0"], env=env)
    ok(r["rc"] == 0 and (r["results"] or {}).get("runtime_used") == "host" and
       "FALLING BACK" in r["err"].upper(),
       "%s: missing socket, default container_fallback: loudly on the host" % engine, diag(r))


def check_unknown_image(engine):
    conf = write_conf(engine, "unknown-%s.conf" % engine,
                      CONF_BODY % (engine, "selftest-no-such-image:never"))
    root = copy_fixture("passing")
    r = selftest(engine, root, ["--json", "--retries", "0"], conf=conf, timeout=300)
    ok(r["rc"] == 3 and "selftest-no-such-image" in r["err"],
       "%s: unknown image: exit 3 naming the image" % engine, diag(r))
    is_eq(managed(ENG[engine]), [], "%s: unknown image: no container left" % engine)


def check_permission(engine):
    sock = ENG[engine]
    mode = os.stat(sock).st_mode & 0o777
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv")
    root = copy_fixture("passing")
    # The unprivileged user must reach the binary, the plugins and the pytest plugin even when
    # the checkout sits in a directory only root may enter (mktemp -d): stage copies in WORK.
    stage = os.path.join(WORK, "uid-stage")
    if not os.path.isdir(stage):
        shutil.copytree(os.path.join(os.path.dirname(BIN), "plugins"),
                        os.path.join(stage, "plugins"), symlinks=True)
        shutil.copytree(sth.support_dir(), os.path.join(stage, "python"))
        shutil.copy2(BIN, os.path.join(stage, "selftest-core"))
    for d in (WORK, root, stage):
        os.chmod(d, 0o777)
    for top in (root, stage):
        for dp, dn, fn in os.walk(top):
            for n in dn + fn:
                if not os.path.islink(os.path.join(dp, n)):
                    os.chmod(os.path.join(dp, n), 0o777)
    os.chmod(sock, 0o600)
    try:
        r = selftest(engine, root, ["--json", "--retries", "0"], user=65534,
                     env={"TMPDIR": WORK, "HOME": WORK,
                          "SELF_TEST_PLUGIN_PATH": os.path.join(stage, "plugins"),
                          "SELF_TEST_SUPPORT_DIR": os.path.join(stage, "python")},
                     conf=FAIL_CONF[engine], binary=os.path.join(stage, "selftest-core"))
    finally:
        os.chmod(sock, mode)
    ok(r["rc"] == 3 and "permission denied" in r["err"],
       "%s: socket without permission (uid 65534): exit 3, 'permission denied'" % engine,
       diag(r))


class FakeEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def fake_engine(path, mode):
    """A tiny engine on a unix socket: mode 'error' answers every request with an error body;
    'broken' speaks the handshake and then answers with broken JSON."""
    calls = []

    class H(socketserver.StreamRequestHandler):
        def handle(self):
            line = self.rfile.readline().decode("latin-1").strip()
            if not line:
                return
            length = 0
            while True:
                h = self.rfile.readline().decode("latin-1").strip()
                if not h:
                    break
                k, _, v = h.partition(":")
                if k.lower() == "content-length":
                    length = int(v)
                if k.lower() == "transfer-encoding" and "chunked" in v:
                    length = -1
            if length > 0:
                self.rfile.read(length)
            method, path_, _ = line.split(" ", 2)
            calls.append((method, path_))
            status, body = 500, b'{"message": "fake engine: out of cheese", "cause": "x"}'
            if mode == "broken":
                if path_ == "/_ping":
                    status, body = 200, b"OK"
                elif "/images/" in path_ and path_.endswith("/json"):
                    status, body = 200, b'{"Id": "sha256:1"}'
                elif "/containers/create" in path_:
                    status, body = 201, b'{"Id": "abc'
                elif method == "DELETE":
                    status, body = 204, b""
                else:
                    status, body = 200, b"{not json"
            self.wfile.write(b"HTTP/1.1 %d X\r\nApi-Version: 1.41\r\nContent-Type: "
                             b"application/json\r\nContent-Length: %d\r\nConnection: close\r\n"
                             b"\r\n%s" % (status, len(body), body))

    srv = FakeEngine(path, H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return srv, calls


def check_fake_engine(engine):
    root = copy_fixture("passing")
    for mode, words in (("error", "out of cheese"), ("broken", "not JSON")):
        path = os.path.join(WORK, "fake-%s-%s.sock" % (engine, mode))
        srv, calls = fake_engine(path, mode)
        try:
            r = selftest(engine, root, ["--json", "--retries", "0"], env={
                HOST_VAR[engine]: "unix://" + path}, timeout=120, conf=FAIL_CONF[engine])
        finally:
            srv.shutdown()
            srv.server_close()
        ok(r["rc"] == 3 and words in r["err"],
           "%s: fake engine answering %s: exit 3, clear message (%r)" % (engine, mode, words),
           diag(r) + "\ncalls: %r" % calls[:20])
        if mode == "broken":
            created = [p for m, p in calls if "/containers/create" in p]
            deleted = [p for m, p in calls if m == "DELETE"]
            ok(created and len(deleted) >= len(created),
               "%s: broken create answer: the container is removed by name anyway" % engine,
               repr(calls[:20]))


# --------------------------------------------------------------------------------------------
# 9. timeout removes the container; the engine stopping mid-run ends the run

def check_timeout_removed(engine):
    root = write_project({"tests/test_sleep.py": SLEEP_TEST})
    # the textfile exporter shows the container timeout gauge of this run
    textfile = os.path.join(WORK, "timeout-%s.prom" % engine)
    conf = write_conf(engine, "timeout-%s.conf" % engine, CONF_BODY % (engine, IMAGE) +
                      'plugins = ({ kind = "exporter"; name = "exporter-prometheus";'
                      ' settings = { textfile = "%s"; }; });\n' % textfile)
    r = selftest(engine, root, ["--json", "--retries", "0", "--timeout", "2"], conf=conf)
    b = batch_of(r["results"], ".")
    ok(r["rc"] == 1 and b.get("timed_out") is True and "timeout" in (b.get("reason") or ""),
       "%s: a hanging batch is killed at the timeout" % engine, diag(r))
    ok(r["elapsed"] < 20, "%s: ... soon after the 2 s timeout" % engine, "%.1f s" % r["elapsed"])
    is_eq(managed(ENG[engine]), [], "%s: the timed-out batch's container is removed" % engine)
    gauge = None
    if os.path.exists(textfile):
        for line in open(textfile):
            if line.startswith("self_test_container_timeouts_total "):
                gauge = float(line.split()[1])
    is_eq(gauge, 1.0, "%s: the timeout is counted in self_test_container_timeouts_total" % engine)


def check_engine_stops(engine):
    """A second private engine of the same kind, stopped while a batch runs."""
    d = tempfile.mkdtemp(prefix="st-e2-", dir="/tmp")
    try:
        rc, out, err = sth.run(["bash", SCRIPT, "up", d], env=sth.base_env({
            "ST_ENGINES": engine, "ST_IMAGE_TAR_IN": ENG["tar"]}), timeout=300)
        if not ok(rc == 0, "%s: a second engine for the stop test" % engine, err[-1500:]):
            return
        sock = os.path.join(d, "%s.sock" % engine)
        pidfile = os.path.join(d, "docker.pid" if engine == "docker" else "podman.pid")
        root = write_project({"tests/test_sleep.py": SLEEP_TEST})
        box = {}
        env = {HOST_VAR[engine]: "unix://" + sock}

        def run():
            extra = {"SANDBOX_REPO_PATH": root}
            extra.update(engine_env(engine, sock))
            box["r"] = selftest(engine, root, ["--json", "--retries", "0", "--timeout", "120"],
                                env=env)
        t = threading.Thread(target=run)
        t.start()
        cid = wait_for_container(sock, "batch-0")
        with open(pidfile) as fh:
            os.kill(int(fh.read().strip()), signal.SIGKILL)
        t.join(150)
        r = box.get("r")
        ok(cid is not None and r is not None and r["rc"] == 3,
           "%s: the engine stopped mid-run ends the run with exit 3" % engine,
           diag(r) if r else "hung")
        ok(r is not None and r["elapsed"] < 60, "%s: ... without hanging" % engine,
           "%.1f s" % r["elapsed"] if r else "hung")
        b = batch_of(r and r["results"], ".")
        ok("engine" in (b.get("reason") or ""), "%s: the batch reason names the engine" % engine,
           "reason: %r" % b.get("reason"))
        # the engine comes back: the dead run's container is found and removed by cleanup
        rc, out, err = sth.run(["bash", SCRIPT, "restart", d], timeout=120)
        if ok(rc == 0, "%s: the engine restarts" % engine, err[-1000:]):
            r2 = selftest(engine, root, [], command="cleanup", env=env)
            left = managed(sock)
            ok(r2["rc"] == 0 and left == [],
               "%s: after the restart, cleanup leaves none of the dead run's containers" % engine,
               diag(r2) + "\nleft: %r" % left)
    finally:
        sth.run(["bash", SCRIPT, "down", d], timeout=300)


# --------------------------------------------------------------------------------------------
# 10. transfer = "copy" (what remote engines need): tree uploaded, results copied out

def check_copy(engine):
    conf = write_conf(engine, "copy-%s.conf" % engine, CONF_BODY.replace(
        "};", '  transfer = "copy";\n};') % (engine, IMAGE))
    for name in ("failing", "split", "segv"):
        root = copy_fixture(name)
        bind = selftest(engine, root, ["--json", "--retries", "0", "--workers", "2", root])
        copy = selftest(engine, root, ["--json", "--retries", "0", "--workers", "2", root],
                        conf=conf)
        ok(copy["results"] is not None and bind["results"] is not None and
           counts_of(copy["results"]) == counts_of(bind["results"]) and
           copy["rc"] == bind["rc"],
           "%s: transfer copy gives the same results as binds (%s)" % (engine, name),
           diag(copy) + "\nbind: " + json.dumps(counts_of(bind["results"])))
    is_eq(managed(ENG[engine]), [], "%s: transfer copy: no container left" % engine)


# --------------------------------------------------------------------------------------------
# 11. ssh:// through a private sshd on 127.0.0.1 (the engine is local, so the binds still work)

free_port = sth.free_port


def check_ssh(engine):
    sshd = shutil.which("sshd", path="/usr/sbin:/usr/bin")
    if os.geteuid() != 0 or not sshd or not shutil.which("ssh"):
        pytest.skip("needs root, sshd (openssh-server) and ssh")
    d = tempfile.mkdtemp(prefix="st-ssh-", dir="/tmp")
    made_run = not os.path.isdir("/run/sshd")  # sshd's privilege separation dir
    proc = None
    try:
        if made_run:
            os.makedirs("/run/sshd", 0o755)
        for key in ("hostkey", "id"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            os.path.join(d, key)], check=True)
        shutil.copy(os.path.join(d, "id.pub"), os.path.join(d, "authorized_keys"))
        port = free_port()
        with open(os.path.join(d, "sshd_config"), "w") as fh:
            fh.write("Port %d\nListenAddress 127.0.0.1\nHostKey %s/hostkey\nPidFile %s/sshd.pid\n"
                     "AuthorizedKeysFile %s/authorized_keys\nStrictModes no\nUsePAM no\n"
                     "PasswordAuthentication no\nPermitRootLogin prohibit-password\n"
                     "AllowStreamLocalForwarding yes\n" % (port, d, d, d))
        with open(os.path.join(d, "hostkey.pub")) as fh:
            hostkey = fh.read().split()
        with open(os.path.join(d, "known_hosts"), "w") as fh:
            fh.write("[127.0.0.1]:%d %s %s\n" % (port, hostkey[0], hostkey[1]))
        proc = subprocess.Popen([sshd, "-D", "-e", "-f", os.path.join(d, "sshd_config")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)
        conf = write_conf(engine, "ssh-%s.conf" % engine, CONF_BODY.replace(
            "};", '  ssh_options = ["IdentityFile=%s/id", "IdentitiesOnly=yes", '
            '"UserKnownHostsFile=%s/known_hosts", "StrictHostKeyChecking=yes"];\n};'
            % (d, d)) % (engine, IMAGE))
        url = "ssh://root@127.0.0.1:%d%s" % (port, ENG[engine])
        root = copy_fixture("passing")
        tmp = os.path.join(d, "tmp")
        os.makedirs(tmp)
        r = selftest(engine, root, ["--json", "--retries", "0"], conf=conf,
                     env={HOST_VAR[engine]: url, "TMPDIR": tmp})
        ok(r["rc"] == 0 and r["results"] and r["results"]["passed"] == 5 and
           r["results"].get("runtime_used") == engine,
           "%s: ssh://root@127.0.0.1:PORT/socket: the run goes through the forwarded socket"
           % engine, diag(r))
        left = [n for n in os.listdir(tmp) if n.startswith("selftest-ssh-")]
        is_eq(left, [], "%s: ssh: the forward's socket directory is removed afterwards" % engine)
        r = selftest(engine, root, ["--json", "--retries", "0"], conf=FAIL_CONF[engine],
                     env={HOST_VAR[engine]: url, "TMPDIR": tmp}, timeout=120)
        ok(r["rc"] == 3 and "ssh" in r["err"],
           "%s: ssh with an unknown host key: exit 3 with a message about ssh" % engine, diag(r))
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)
        if made_run:
            shutil.rmtree("/run/sshd", ignore_errors=True)
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def work(selftest_bin, engines):
    """The private engines (conftest.py: started once per session, or ST_ENGINES_DIR's) and a
    scratch directory the containers may read."""
    global ENG, IMAGE, WORK
    ENG = engines
    IMAGE = ENG["image"]
    WORK = tempfile.mkdtemp(prefix="st-ctr-")
    os.chmod(WORK, 0o755)
    write_confs()
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)


def test_configs():
    check_configs()


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture(name):
    check_fixture(name, fixture_runs(name))


ENGINE_CHECKS = ["one_per_path", "env", "limits", "timeout_removed", "killed_from_outside",
                 "sigint", "cleanup", "offline", "bad_address", "unknown_image", "permission",
                 "fake_engine", "engine_stops", "ssh", "copy"]


# every check under docker, then every check under podman
@pytest.mark.parametrize("engine,what", [(e, c) for e in ENGINES for c in ENGINE_CHECKS],
                         ids=["%s-%s" % (e, c) for e in ENGINES for c in ENGINE_CHECKS])
def test_engine(engine, what):
    globals()["check_" + what](engine)
