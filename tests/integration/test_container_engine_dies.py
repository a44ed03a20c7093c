# SPDX-License-Identifier: MIT
"""the engine dies while a container batch runs.

runtime-docker against a private dockerd of tools/engines/engines.sh started for this test alone
(the image comes from the engines of ST_ENGINES_DIR or of a first `engines.sh up`, as in
test_containers.py), so no other test's engine is stopped. Without root, or when the engines
cannot start, everything is skipped.

A batch whose test sleeps (batch timeout 300 s, api_timeout 10 s) runs; once its container runs,
dockerd is killed with SIGKILL. Checked: the run ends with exit 3 well before the batch timeout
(within the API timeout plus margin), with a message that names the engine; after the engine is
started again the dead run's container is still listed (so the next check is not vacuous), and
`cleanup -v` exits 0, reports it removed, and leaves no selftest container on that engine.

Then the engine hangs instead (SIGSTOP) while a batch with a 15 s timeout runs: the run ends with
exit 3 and a message naming the engine that did not answer, within the batch timeout plus 75 s
(the kill loop gives up once no kill was answered for the API timeout; before, it went on for 30
rounds of 5 s kill and 1 s wait timeouts, more than 3 minutes). Right after the engine resumes
(SIGCONT), `cleanup` exits 0 and reports the batch's container removed, though the engine is
still removing it (409 "removal ... already in progress": cleanup waits for it), and no
selftest container is left.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import st_helpers as sth
from st_helpers import is_eq, note, ok, skip

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")

ENGINES = ("docker", "podman")
SCRIPT = os.path.join(sth.top_srcdir(), "tools", "engines", "engines.sh")
WORK = ENG = None  # the scratch directory and the engines (the work fixture)

API_TIMEOUT = 10
HANG_BATCH_TIMEOUT = 15
HANG_MARGIN = 75


def write_conf(engine):
    path = os.path.join(WORK, "%s.conf" % engine)
    with open(path, "w") as fh:
        fh.write('runtime = "%s";\ncontainer = {\n  image = "%s";\n  api_timeout = %d;\n};\n'
                 % (engine, ENG["image"], API_TIMEOUT))
    return path


def check_engine_dies(mode, engine="docker"):
    """mode "dies": dockerd gets SIGKILL; "hangs": SIGSTOP (SIGCONT once the run has ended)."""
    d = tempfile.mkdtemp(prefix="st-e3-", dir="/tmp")
    try:
        rc, out, err = sth.run(["bash", SCRIPT, "up", d], env=sth.base_env({
            "ST_ENGINES": engine, "ST_IMAGE_TAR_IN": ENG["tar"]}), timeout=300)
        tag = "%s %s" % (engine, mode)
        if not ok(rc == 0, "%s: a second engine for this test" % tag, err[-1500:]):
            return
        sock = os.path.join(d, "%s.sock" % engine)
        conf = write_conf(engine)
        root = sth.sleep_project(WORK)
        out_path = os.path.join(WORK, "core-%s-%s.out" % (engine, mode))
        batch_timeout = 300 if mode == "dies" else HANG_BATCH_TIMEOUT
        t0 = time.monotonic()
        with open(out_path, "wb") as fh:
            core = subprocess.Popen([BIN, "-v", "-c", conf, "run", "--json", "--retries", "0",
                                     "--timeout", str(batch_timeout)],
                                    env=sth.engine_env(engine, root, sock),
                                    cwd=root, stdin=subprocess.DEVNULL, stdout=fh,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        c = sth.engine_wait_running(sock, core.pid)
        if not ok(c is not None, "%s: the sleeping batch's container (batch-0) runs" % tag,
                  open(out_path, errors="replace").read()[-1500:]):
            sth.kill_group(core)
            core.wait()
            return
        with open(os.path.join(d, "docker.pid")) as fh:
            dpid = int(fh.read().strip())
        os.kill(dpid, signal.SIGKILL if mode == "dies" else signal.SIGSTOP)
        t_kill = time.monotonic()
        limit = API_TIMEOUT * 3 if mode == "dies" else HANG_BATCH_TIMEOUT + HANG_MARGIN
        try:
            core.wait(timeout=limit + 120)
        except subprocess.TimeoutExpired:
            sth.kill_group(core)
            core.wait()
        took = time.monotonic() - t_kill
        text = open(out_path, errors="replace").read()
        if mode == "hangs":
            os.kill(dpid, signal.SIGCONT)
        is_eq(core.returncode, 3, "%s: the engine %s mid-batch: the run ends with exit 3"
              % (tag, "dying" if mode == "dies" else "hanging"))
        if mode == "dies":
            ok(took < limit, "%s: ... within the API timeout (%d s) plus margin, far from the "
               "300 s batch timeout" % (tag, API_TIMEOUT), "%.1f s after the kill" % took)
        else:
            ok(took < limit, "%s: ... within the %d s batch timeout plus %d s (the kill given up "
               "after the %d s API timeout, the removal's own two 15 s tries)"
               % (tag, HANG_BATCH_TIMEOUT, HANG_MARGIN, API_TIMEOUT),
               "%.1f s after the engine stopped" % took)
        note("%s: run took %.1f s in all, %.1f s after the engine was %s"
             % (tag, time.monotonic() - t0, took, "killed" if mode == "dies" else "stopped"))
        msgs = [ln for ln in text.splitlines() if not ln.startswith("{") and
                re.search(r"engine|docker", ln, re.I) and
                re.search(r"error|fail|cannot|could not|unreachable|lost|closed", ln, re.I)]
        for ln in msgs[:3]:
            note("%s: message: %s" % (tag, ln[:300]))
        ok(msgs, "%s: a clear message names the engine and the failure" % tag, text[-2000:])
        if mode == "hangs":
            # dockerd, resumed, serves the DELETE the run sent while it was stopped: the
            # container is "Removal In Progress" for a while and a DELETE answers 409; cleanup
            # right after the resume waits for that removal (at most api_timeout)
            before = [x for x in sth.engine_containers(sock) if isinstance(x, dict)]
            note("%s: just after the resume: %r" % (tag, [(x["Id"][:12], x.get("State"),
                                                         x.get("Status")) for x in before]))
            name = "%s: cleanup just after the engine resumes" % tag
            if not any(x["Id"] == c["Id"] for x in before):
                skip(name, "the engine had ended the removal before the container was listed")
            else:
                t0 = time.monotonic()
                rc, out, err = sth.run([BIN, "-v", "-c", conf, "cleanup"],
                                       env=sth.engine_env(engine, root, sock), cwd=root,
                                       timeout=180)
                note("%s: cleanup took %.1f s" % (tag, time.monotonic() - t0))
                for ln in (err + out).splitlines():
                    if re.search(r"cleanup: |409", ln):
                        note("%s: %s" % (tag, ln[:300]))
                is_eq(rc, 0, "%s: exits 0" % name)
                ok(re.search(r"cleanup: \d+ listed, %d removed" % len(before), out) and
                   ("removed container %.12s" % c["Id"]) in err + out,
                   "%s: reports the batch's container removed" % name,
                   "stdout: %r\nstderr: %s" % (out, err[-1500:]))
            is_eq(sth.engine_containers(sock), [], "%s: no selftest container is left" % tag)
            return
        # the engine comes back: the dead run's container is there, and cleanup removes it
        rc, out, err = sth.run(["bash", SCRIPT, "restart", d], timeout=120)
        if not ok(rc == 0, "%s: the engine restarts" % tag, err[-1000:]):
            return
        before = [x for x in sth.engine_containers(sock) if isinstance(x, dict)]
        ok(any(x["Id"] == c["Id"] for x in before),
           "%s: after the engine is back the dead run's container is still listed" % tag,
           repr([(x["Id"][:12], x.get("State")) for x in before]))
        rc, out, err = sth.run([BIN, "-v", "-c", conf, "cleanup"],
                               env=sth.engine_env(engine, root, sock), cwd=root, timeout=180)
        is_eq(rc, 0, "%s: cleanup exits 0" % tag)
        ok(re.search(r"cleanup: \d+ listed, %d removed" % len(before), out) and
           ("removed container %.12s" % c["Id"]) in err + out,
           "%s: cleanup reports the leftover container removed" % tag,
           "stdout: %r\nstderr: %s" % (out, err[-1500:]))
        is_eq(sth.engine_containers(sock), [], "%s: no selftest container is left" % tag)
    finally:
        sth.run(["bash", SCRIPT, "down", d], timeout=300)


@pytest.fixture(scope="module", autouse=True)
def work(selftest_bin, engines):
    """The private engines (conftest.py: started once per session, or ST_ENGINES_DIR's) and a
    scratch directory the containers may read."""
    global ENG, WORK
    ENG = engines
    WORK = tempfile.mkdtemp(prefix="st-edie-")
    os.chmod(WORK, 0o755)
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)


@pytest.mark.parametrize("mode", ["dies", "hangs"])
def test_engine_dies(mode):
    """docker: the engine dies (SIGKILL) or hangs (SIGSTOP) mid-batch"""
    if not ENG.get("tar"):
        pytest.skip("no image tarball in the engines' env")
    check_engine_dies(mode)
