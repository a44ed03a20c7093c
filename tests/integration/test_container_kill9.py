# SPDX-License-Identifier: MIT
"""`kill -9` of selftest-core while a container batch runs leaves nothing for good.

runtime-docker and runtime-podman against the private engines of tools/engines/engines.sh (the
ones test_containers.py uses: own sockets and data dirs, a python3+pytest image built from the
host's packages). Set ST_ENGINES_DIR to the directory of an `engines.sh up` already running to
reuse it (then it is left running). Without root, or when the engines cannot start, everything is
skipped.

For each engine: a batch whose test sleeps is started; once its container runs, only the core is
killed with SIGKILL (not its process group). Checked: the container is still there, labelled with
the killed core as its owner (nothing could remove it); no host process of the killed run remains
(none carries the run's marker variable, none is in its process group or session); `cleanup`
then exits 0, reports the container as removed, and no container with the killed core's owner
labels is left on the engine.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import st_helpers as sth
from st_helpers import is_eq, note, ok

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")

ENGINES = ("docker", "podman")
WORK = ENG = None  # the scratch directory and the engines (the work fixture)


def write_conf(engine):
    path = os.path.join(WORK, "%s.conf" % engine)
    with open(path, "w") as fh:
        fh.write('runtime = "%s";\ncontainer = {\n  image = "%s";\n};\n' % (engine, ENG["image"]))
    return path


def host_leftovers(pid, marker):
    """Host processes of the killed run: carrying its marker variable, or in its process group
    or session (the core was a session leader). [(pid, cmdline)]"""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as fh:
                env = fh.read()
            with open("/proc/%s/stat" % d) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/cmdline" % d, "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        state, pgid, sid = fields[0], int(fields[2]), int(fields[3])
        if state == "Z" and int(d) == pid:
            continue
        if marker in env or pgid == pid or sid == pid:
            found.append((int(d), state, cmd[:200]))
    return found


def check_kill9(engine):
    sock = ENG[engine]
    conf = write_conf(engine)
    root = sth.sleep_project(WORK)
    marker = "ST_KILL9_MARK=" + uuid.uuid4().hex
    out_path = os.path.join(WORK, "core-%s.out" % engine)
    with open(out_path, "wb") as out:
        core = subprocess.Popen([BIN, "-v", "-c", conf, "run", "--json", "--retries", "0",
                                 "--timeout", "300"],
                                env=sth.engine_env(engine, root, sock, {marker.split("=")[0]:
                                                                        marker.split("=")[1]}),
                                cwd=root, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    c = sth.engine_wait_running(sock, core.pid)
    if not ok(c is not None, "%s: the sleeping batch's container runs, owned by the core (pid %d)"
              % (engine, core.pid), open(out_path, errors="replace").read()[-1500:]):
        sth.kill_group(core)
        core.wait()
        return
    cid = c["Id"]
    os.kill(core.pid, signal.SIGKILL)  # the core only, not its process group
    core.wait()
    is_eq(core.returncode, -signal.SIGKILL, "%s: the core died of SIGKILL" % engine)

    # nothing could remove the container: it is there, labelled with the dead owner
    after = [x for x in sth.engine_containers(sock, "selftest.owner.pid=%d" % core.pid)
             if isinstance(x, dict)]
    state = {x["Id"]: x.get("State") for x in after}
    note("%s: after kill -9 the batch's container %.12s is %s" %
         (engine, cid, state.get(cid, "gone")))
    ok(cid in state, "%s: after kill -9 the container is still there (the cleanup check below "
       "is not vacuous)" % engine, repr(state))
    labels = (after[0].get("Labels") or {}) if after else {}
    ok(labels.get("selftest.owner.host") == socket.gethostname() and
       labels.get("selftest.owner.start"),
       "%s: it carries the owner labels (host, pid, start time)" % engine, repr(labels))

    # no host process of the killed run remains (a short grace for exits already under way)
    left = host_leftovers(core.pid, marker.encode())
    until = time.time() + 5
    while left and time.time() < until:
        time.sleep(0.2)
        left = host_leftovers(core.pid, marker.encode())
    is_eq(left, [], "%s: no host process of the killed run remains" % engine)

    # cleanup removes it and says so
    rc, out, err = sth.run([BIN, "-v", "-c", conf, "cleanup"],
                           env=sth.engine_env(engine, root, sock), cwd=root, timeout=180)
    is_eq(rc, 0, "%s: cleanup after kill -9 exits 0" % engine)
    removed = None
    for line in out.splitlines():
        if line.startswith("cleanup: ") and " removed" in line:
            try:
                removed = int(line.split(",")[1].split()[0])
            except (IndexError, ValueError):
                pass
    ok(removed is not None and removed >= len(state) >= 1,
       "%s: cleanup reports the killed run's container(s) removed (%d)" % (engine, len(state)),
       "stdout: %r\nstderr: %s" % (out, err[-1500:]))
    ok(("removed container %.12s" % cid) in err + out,
       "%s: cleanup names the removed container (-v)" % engine, err[-1500:])
    is_eq(sth.engine_containers(sock, "selftest.owner.pid=%d" % core.pid), [],
          "%s: no container with the killed core's owner labels is left" % engine)
    if ENG.get("own"):
        is_eq(sth.engine_containers(sock), [], "%s: no selftest container at all is left" % engine)


@pytest.fixture(scope="module", autouse=True)
def work(selftest_bin, engines):
    """The private engines (conftest.py: started once per session, or ST_ENGINES_DIR's) and a
    scratch directory the containers may read."""
    global ENG, WORK
    ENG = engines
    WORK = tempfile.mkdtemp(prefix="st-k9-")
    os.chmod(WORK, 0o755)
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)


@pytest.mark.parametrize("engine", ENGINES)
def test_kill9(engine):
    if not ENG.get(engine):
        pytest.skip("no %s engine in %s" % (engine, ENG["dir"]))
    check_kill9(engine)
