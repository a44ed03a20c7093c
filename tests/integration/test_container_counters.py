# SPDX-License-Identifier: MIT
"""the container gauges of exporter-prometheus count what happened, against the
private dockerd and Podman service of tools/engines/engines.sh (started here, or reused with
ST_ENGINES_DIR; without root everything is skipped).

- self_test_container_timeouts_total counts every timed-out attempt: a batch that hangs, with
  --retries 1, times out twice and counts 2.
- a container that cannot be removed counts in self_test_container_failures_total: a proxy in
  front of the engine refuses every container removal (HTTP 500); each container of the run
  (the interpreter preflight and the batch) is left behind and counted, and the count equals
  the containers of that project the engine still has (removed through the API afterwards).

Only the containers of this test's own projects are looked at or removed (by the project
mounted into them), so an engine shared with test_containers.py is left alone; that test's
"no container left" checks count every managed container, so with one ST_ENGINES_DIR for both,
do not run the two at the same time (without it, each starts its own engines).
"""

import os
import re
import shutil
import socket
import socketserver
import tempfile
import threading

import pytest
import st_helpers as sth
from st_helpers import is_eq, ok

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")

ENGINES = ("docker", "podman")
HOST_VAR = sth.ENGINE_HOST_VAR
WORK = ENG = None  # the scratch directory and the engines (the work fixture)


# ---- the engine API ---------------------------------------------------------------------------

def managed(sock, root):
    """The managed containers that have the project root mounted (this test's runs only)."""
    return [c for c in sth.engine_containers(sock) if not isinstance(c, dict) or  # list failed
            any(m.get("Source") == root for m in c.get("Mounts") or [])]


# ---- a proxy that refuses container removals ---------------------------------------------------

REMOVE = re.compile(rb"^DELETE /(v[\d.]+/)?(libpod/)?containers/[^/?\s]+(\?\S*)?\s", re.I)


class Proxy(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path, engine_sock):
        self.engine_sock = engine_sock
        self.refused = 0
        super().__init__(path, ProxyHandler)


class ProxyHandler(socketserver.BaseRequestHandler):
    """One request per connection (Connection: close both ways), relayed byte for byte."""

    def handle(self):
        c = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = c.recv(65536)
            if not chunk:
                return
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        if REMOVE.match(head):
            self.server.refused += 1
            body = b'{"message":"removal refused by the test proxy"}'
            c.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
            return
        lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
        e = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        e.connect(self.server.engine_sock)
        e.sendall(b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n" + rest)

        def upstream():
            try:
                while True:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    e.sendall(chunk)
            except OSError:
                pass

        t = threading.Thread(target=upstream, daemon=True)
        t.start()
        try:
            while True:
                chunk = e.recv(65536)
                if not chunk:
                    break
                c.sendall(chunk)
        except OSError:
            pass
        e.close()


# ---- runs -------------------------------------------------------------------------------------

def write_conf(engine, prom):
    path = os.path.join(WORK, "%s-%s.conf" % (engine, os.path.basename(prom)))
    with open(path, "w") as fh:
        fh.write('runtime = "%s";\ncontainer_fallback = "fail";\ncontainer = { image = "%s"; };\n'
                 'plugins = ( { kind = "exporter"; name = "exporter-prometheus";\n'
                 '              settings = { textfile = "%s"; }; } );\n'
                 % (engine, ENG["image"], prom))
    return path


def selftest(engine, conf, root, args, sock, command="run", timeout=240):
    env = dict(sth.SCRUB, SANDBOX_REPO_PATH=root, DOCKER_HOST=None, CONTAINER_HOST=None,
               MENACE_OFFLINE_INSTALL=None, MENACE_SELF_TEST_IMAGE_TAR=None)
    env[HOST_VAR[engine]] = "unix://" + sock
    argv = [BIN, "-c", conf, command] + list(args)
    return sth.run(argv, env=sth.base_env(env), cwd=root, timeout=timeout)


def gauges(path):
    out = {}
    try:
        with open(path) as fh:
            for line in fh:
                m = re.match(r"^([a-z_]+) (\S+)$", line.strip())
                if m:
                    out[m.group(1)] = float(m.group(2))
    except OSError:
        pass
    return out


def check_timeouts(engine):
    root = sth.one_test_project(WORK, "hang-%s" % engine, "import time\n\n\ndef test_hang():\n"
                                "    time.sleep(120)\n")
    prom = os.path.join(WORK, "timeouts-%s.prom" % engine)
    conf = write_conf(engine, prom)
    rc, out, err = selftest(engine, conf, root, ["--timeout", "2", "--retries", "1",
                                                 "--workers", "1"], ENG[engine])
    label = "a hanging batch under %s, --retries 1" % engine
    is_eq(rc, 1, "%s: the batch fails (exit 1)" % label)
    is_eq(len(re.findall(r"timeout after 2s", err)), 2, "%s: two attempts timed out" % label)
    g = gauges(prom)
    is_eq(g.get("self_test_container_timeouts_total"), 2.0,
          "%s: self_test_container_timeouts_total counts both attempts" % label)
    is_eq(g.get("self_test_container_failures_total"), 0.0,
          "%s: no container failure" % label)
    is_eq(managed(ENG[engine], root), [], "%s: no container left" % label)


def check_removal_failures(engine):
    root = sth.one_test_project(WORK, "pass-%s" % engine, "def test_ok():\n    pass\n")
    prom = os.path.join(WORK, "failures-%s.prom" % engine)
    conf = write_conf(engine, prom)
    path = os.path.join(WORK, "proxy-%s.sock" % engine)
    proxy = Proxy(path, ENG[engine])
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    label = "removals refused under %s" % engine
    try:
        rc, out, err = selftest(engine, conf, root, ["--retries", "0", "--workers", "1"], path)
    finally:
        proxy.shutdown()
        proxy.server_close()
    is_eq(rc, 0, "%s: the run itself passes" % label)
    ok(proxy.refused >= 2, "%s: the proxy refused the removals (%d)" % (label, proxy.refused),
       err[-1500:])
    left = managed(ENG[engine], root)
    ok(len(left) >= 2 and all(isinstance(c, dict) for c in left),
       "%s: the preflight's and the batch's containers are left behind (%d)" % (label, len(left)),
       left)
    g = gauges(prom)
    is_eq(g.get("self_test_container_failures_total"), float(len(left)),
          "%s: self_test_container_failures_total counts each container left behind" % label)
    for c in left:
        if isinstance(c, dict):
            sth.engine_api(ENG[engine], "DELETE", "/v1.41/containers/%s?force=1&v=1" % c.get("Id"))
    is_eq(managed(ENG[engine], root), [], "%s: what was left is removed through the API" % label)


def plugin_built(name):
    dirs = (os.environ.get("SELF_TEST_PLUGIN_PATH") or "").split(":")
    return any(os.path.exists(os.path.join(d, f)) for d in dirs if d
               for f in (name + ".la", name + ".so", os.path.join(name, name + ".la")))


@pytest.fixture(scope="module", autouse=True)
def work(selftest_bin, engines):
    """The private engines (conftest.py: started once per session, or ST_ENGINES_DIR's) and a
    scratch directory the containers may read."""
    global ENG, WORK
    ENG = engines
    WORK = tempfile.mkdtemp(prefix="st-ctrc-")
    os.chmod(WORK, 0o755)
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)


def engine_ready(engine):
    if not ENG.get(engine):
        pytest.skip("no %s engine in %s" % (engine, ENG["dir"]))
    if not plugin_built("runtime-" + engine):
        pytest.skip("runtime-%s is not built" % engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_timeouts(engine):
    engine_ready(engine)
    check_timeouts(engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_removal_failures(engine):
    engine_ready(engine)
    check_removal_failures(engine)
