# SPDX-License-Identifier: MIT
"""nothing the host runtime starts outlives its batch, and its limits hold.

The hostile fixture project tests/fixtures/projects/escape (copied to a temp dir) starts, from
passing tests and from orphan modules, processes that leave their parent's process group in
every usual way: setsid, a double fork, setpgid(0, 0), Popen(start_new_session=True) and a
double-forked daemon that never execs (it holds the pipes of pytest-xdist's workers). Every one
of them carries a unique marker (HOSTILE_MARKER) in its environment, most also on their command
line; after each run /proc must hold no process with the marker. Then: kill -9 of selftest-core
in the middle of an xdist batch leaves nothing running (and when its guard was killed first,
the next run stops what is left); a fork bomb is stopped by the process
limit (only where a pids cgroup holds it: the bomb is bounded anyway) and fails its batch; an
output flood is cut at the output limit; the settings are validated.
"""

import json
import os
import re
import shutil
import signal
import tempfile
import time
import uuid
import subprocess

import pytest
import st_helpers as t

BIN = t.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")

WORK = ROOT = None  # the module's scratch directory and the project in it (the work fixture)
MARK = "hostile%d%s" % (os.getpid(), uuid.uuid4().hex[:10])
CONTAINMENT = []  # what the runtime found on this machine (its debug line)


def describe(pids):
    out = []
    for p in pids:
        try:
            with open("/proc/%d/cmdline" % p, "rb") as fh:
                out.append("%d %s" % (p, fh.read().replace(b"\0", b" ").decode("utf-8", "replace")))
        except OSError:
            pass
    return "\n".join(out)


def kill_marked():
    """The cleanup whatever happened (also when selftest-core got it wrong)."""
    for _ in range(50):
        pids = t.marked_pids(MARK)
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)


def settled(timeout=5.0):
    """Marked processes still there after timeout seconds (a dying process takes a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        left = t.marked_pids(MARK)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def write_conf(extra=""):
    conf = os.path.join(ROOT, "selftest.conf")
    with open(conf, "w") as fh:
        fh.write('project_root = ".";\npython = "%s";\nretries = 0;\nplugins = ();\n%s\n'
                 % (t.PYTHON, extra))
    return conf


def env():
    return t.base_env({"HOSTILE_MARKER": MARK})


def run(args, conf_extra="", timeout=180):
    conf = write_conf(conf_extra)
    t0 = time.monotonic()
    rc, out, err = t.run([BIN, "-vv", "-c", conf, "run", "--json", "--retries", "0"] + args,
                         env=env(), timeout=timeout, cwd=ROOT)
    wall = time.monotonic() - t0
    lines = [l for l in out.splitlines() if l.startswith("{")]
    res = json.loads(lines[-1]) if lines else {}
    return rc, res, err, wall


def batch_of(res, path):
    return (res.get("suite_metrics") or {}).get(path) or {}


def containment(err):
    m = re.search(r"runtime-host: processes tracked by ([^\n]*)", err)
    return m.group(1) if m else ""


def check_no_leftovers(name):
    left = settled()
    t.is_eq(left, [], "%s: no marked process is left" % name)
    if left:
        t.note(describe(left))
        kill_marked()


NO_CGROUP = "host = { cgroup = false; };"


def check_batches(extra=""):
    for workers in (1, 2):
        name = "tests, --workers %d%s%s" % (workers, " (xdist)" if workers > 1 else "",
                                            ", cgroup = false" if extra else "")
        # xdist waits for its workers' pipes to close: a leftover holding them made a passing
        # batch hang until the timeout (or xdist's own ~20s teardown limit)
        rc, res, err, wall = run(["--workers", str(workers), "--timeout", "15", "tests"],
                                 conf_extra=extra)
        b = batch_of(res, "tests")
        t.is_eq(rc, 0, "%s: exit 0" % name)
        t.is_eq((res.get("passed"), res.get("failed")), (5, 0), "%s: 5 passed" % name)
        t.is_eq(b.get("timed_out"), False, "%s: no timeout (leftovers do not hang xdist)" % name)
        t.ok(wall < 15, "%s: finished in %.1fs" % (name, wall))
        if workers > 1:
            t.is_eq(b.get("pytest_workers"), 2, "%s: pytest ran 2 xdist workers" % name)
        check_no_leftovers(name)
        if workers == 1 and not extra:
            CONTAINMENT.append(containment(err))
            t.note("runtime-host: processes tracked by %s" % CONTAINMENT[0])


def check_timeout():
    """A batch stopped by its timeout (xdist workers, and the escaped processes of its tests)."""
    rc, res, err, wall = run(["--workers", "2", "--timeout", "8", "slow"],
                             conf_extra="kill_grace = 1;")
    b = batch_of(res, "slow")
    t.is_eq((rc, b.get("timed_out")), (1, True), "timeout with leftovers: the batch timed out")
    check_no_leftovers("timeout with leftovers")


def check_plugin_alone():
    """The bundled pytest plugin by itself (pytest run directly, as the core runs it): it
    adopts and stops what the tests leave, in the controller and in each xdist worker."""
    for extra in ([], ["-n", "2"]):
        name = "pytest with the plugin%s" % (" -n 2" if extra else "")
        with t.tmpdir() as out:
            e = env()
            e["PYTHONPATH"] = t.support_dir()
            e["SELF_TEST_RESULTS_FILE"] = os.path.join(out, "results.jsonl")
            t0 = time.monotonic()
            rc, so, se = t.run(t.pytest_cmd(["tests"], extra, plugin=True), env=e, cwd=ROOT,
                               timeout=120)
            wall = time.monotonic() - t0
        t.is_eq(rc, 0, "%s: exit 0" % name)
        stopped = sum(int(n) for n in re.findall(
            r"selftest_pytest_plugin: stopped (\d+) process(?:es)? the tests left running", se))
        # the sleepers, and the daemon that never execs
        t.ok(stopped == 5, "%s: says it stopped the 5 processes the tests left (%d)"
             % (name, stopped), se[-1500:])
        t.ok(wall < 15, "%s: no wait for the leftovers' pipes (%.1fs)" % (name, wall))
        check_no_leftovers(name)


GATE_CONFTEST = """import json
import os

# at import, before any test: where this process is and what it was given
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "seen.json"), "w") as fh:
    with open("/proc/self/cgroup") as cg:
        json.dump({"cgroup": cg.read().splitlines(),
                   "gate": os.environ.get("SELF_TEST_START_GATE")}, fh)
"""

# in a test, after pytest_configure: whether the plugin needed ctypes (the runtime made pytest
# a child subreaper before exec and said so), and whether pytest is one
GATE_TEST = """import sys

LOADED = "ctypes" in sys.modules  # when pytest imports this file, before the import below

import ctypes  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402


def test_gate():
    state = ctypes.c_int(-1)
    ctypes.CDLL(None, use_errno=True).prctl(37, ctypes.byref(state), 0, 0, 0)  # PR_GET_..
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "seen2.json"), "w") as fh:
        json.dump({"subreaper": state.value, "ctypes_loaded": LOADED,
                   "var": os.environ.get("SELF_TEST_SUBREAPER")}, fh)
"""


def check_start_gate():
    """A batch starts in its cgroup v2 directory (clone3) and, where the process limit is a
    cgroup v1 pids group, the bundled plugin waits at the start gate until the runtime has
    moved it there: the project's first code (a conftest.py at import) already runs in both
    cgroups, and the gate's variable is gone."""
    gate = os.path.join(ROOT, "gate")
    os.makedirs(gate, exist_ok=True)
    with open(os.path.join(gate, "conftest.py"), "w") as fh:
        fh.write(GATE_CONFTEST)
    with open(os.path.join(gate, "test_gate.py"), "w") as fh:
        fh.write(GATE_TEST)
    rc, res, err, wall = run(["--workers", "1", "gate"])
    how = containment(err)
    t.is_eq(rc, 0, "start gate: the batch passes")
    with open(os.path.join(gate, "seen2.json")) as fh:
        seen2 = json.load(fh)
    t.is_eq(seen2, {"subreaper": 1, "ctypes_loaded": False, "var": None},
            "subreaper: pytest is one from its start, the plugin loaded no ctypes for it, and "
            "the variable that said so is gone")
    if "cgroup" not in how:
        pytest.skip("no cgroup here: %s" % how)
    with open(os.path.join(gate, "seen.json")) as fh:
        seen = json.load(fh)
    t.is_eq(seen.get("gate"), None, "start gate: the variable is gone before the project's code")
    lines = {l.split(":", 2)[1]: l.split(":", 2)[2] for l in seen.get("cgroup", []) if
             l.count(":") >= 2}
    if "cgroup v2" in how:
        t.ok(re.search(r"/selftest-[^/]+/x\d+$", lines.get("", "")),
             "start gate: the conftest runs in the execution's cgroup v2 directory",
             repr(lines.get("")))
    if "process limit by cgroup v1" in how:
        t.ok(re.search(r"/selftest-[^/]+/x\d+$", lines.get("pids", "")),
             "start gate: the conftest runs in the execution's v1 pids cgroup",
             repr(lines.get("pids")))
    # a normal stop (every execution ended with nothing left): the guard only removes the
    # instance's cgroups, in every hierarchy
    leaf = re.search(r"/(selftest-[^/\s]+) and environment token", how)
    t.ok(leaf, "the instance's cgroup is named in the log", how)
    if leaf:
        left = [os.path.join(d, leaf.group(1)) for d, subdirs, _ in os.walk("/sys/fs/cgroup")
                if leaf.group(1) in subdirs]
        t.is_eq(left, [], "after the run, none of the instance's cgroups is left")


def check_orphans():
    mods = ["hostile/orphan_%s.py" % k for k in
            ("setsid", "double_fork", "setpgid", "popen", "fork_daemon")]
    rc, res, err, wall = run(["--workers", "2", "--timeout", "60"] + mods)
    t.is_eq(rc, 0, "orphan checks: a failed check is reported, not fatal")
    t.is_eq(sorted(res.get("orphan_failed_modules") or []), sorted(mods),
            "orphan checks: every import that starts a daemon fails")
    t.is_eq(res.get("orphan_passed_modules"), [], "orphan checks: none is reported passed")
    checks = res.get("orphan_checks") or {}
    for m in mods:
        reason = (checks.get(m) or {}).get("reason") or ""
        t.ok(re.match(r"importing \S+ left 1 process running \(stopped\): pid \d+", reason),
             "orphan %s: its reason says it left a process running" % m, reason)
    check_no_leftovers("orphan checks")
    # the reason (the failing import's excerpt) is in the human summary
    conf = write_conf()
    rc, out, err = t.run([BIN, "-c", conf, "run", "--workers", "2", "--retries", "0"] + mods,
                         env=env(), timeout=180, cwd=ROOT)
    for m in mods:
        dotted = m[:-3].replace("/", ".")
        t.ok(re.search(r"importing %s left 1 process running \(stopped\): pid \d+"
                       % re.escape(dotted), out),
             "orphan %s: the summary says it left a process running" % m, out[-3000:])
    check_no_leftovers("orphan checks, summary")


def check_runtime_sweep(extra=""):
    """What starts after the bundled plugin looked (an atexit handler) is the runtime's job."""
    if extra:
        rc, res, err, wall = run(["--workers", "1", "--timeout", "60", "late"], conf_extra=extra)
        t.is_eq(batch_of(res, "late").get("leftover_processes"), 1,
                "atexit daemon in a batch, cgroup = false: found by its token")
        t.ok("processes tracked by environment token;" in err,
             "cgroup = false: the environment token alone", containment(err))
        check_no_leftovers("atexit daemon in a batch, cgroup = false")
        return
    rc, res, err, wall = run(["--workers", "1", "--timeout", "60", "late"])
    b = batch_of(res, "late")
    t.is_eq(rc, 0, "atexit daemon in a batch: the tests passed, exit 0")
    t.is_eq(b.get("leftover_processes"), 1,
            "atexit daemon in a batch: one leftover process counted")
    t.ok(re.search(r"late: 1 process still running after the main process exited; stopped",
                   err), "atexit daemon in a batch: a warning names it", err[-2000:])
    check_no_leftovers("atexit daemon in a batch")

    rc, res, err, wall = run(["--workers", "1", "--timeout", "60", "hostile/orphan_atexit.py"])
    chk = (res.get("orphan_checks") or {}).get("hostile/orphan_atexit.py") or {}
    t.is_eq(res.get("orphan_failed_modules"), ["hostile/orphan_atexit.py"],
            "atexit daemon in an orphan module: the check fails")
    t.ok("left 1 process running" in json.dumps(chk),
         "atexit daemon in an orphan module: the reason says so", json.dumps(chk)[:600])
    check_no_leftovers("atexit daemon in an orphan module")


def other_cores(ours):
    """Pids of the selftest-core processes running now, other than ours."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != ours:
            try:
                with open("/proc/%s/comm" % name) as fh:
                    if fh.read().strip() == "selftest-core":
                        found.append(int(name))
            except OSError:
                pass
    return found


def guard_of(core):
    """The guard process of a selftest-core (a child named selftest-guard)."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as fh:
                    stat = fh.read()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            if comm == "selftest-guard" and int(stat[stat.rindex(")") + 2:].split()[1]) == core:
                return int(name)
    return None


def check_kill9(kill_guard=False, extra=""):
    """kill -9 of the core in the middle of an xdist batch (and of its guard first: then the
    next run stops what is left)."""
    what = "kill -9 of selftest-core and its guard" if kill_guard else \
        "kill -9 of selftest-core mid-batch"
    if extra:
        what += ", cgroup = false"
    conf = write_conf(extra)
    proc = subprocess.Popen([BIN, "-c", conf, "run", "--workers", "2", "--retries", "0",
                             "--timeout", "200", "slow"], env=env(), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        # the five leftovers plus pytest and two workers carry the marker in their environment
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(t.marked_pids(MARK)) < 8:
            time.sleep(0.2)
        before = t.marked_pids(MARK)
        t.ok(len(before) >= 8, "%s: the batch is running (%d marked processes)"
             % (what, len(before)))
        if kill_guard:
            guard = guard_of(proc.pid)
            t.ok(guard, "%s: the guard is running" % what)
            if guard:
                os.kill(guard, signal.SIGKILL)
        os.kill(proc.pid, signal.SIGKILL)  # the core only, not its process group
        proc.wait()
        if kill_guard:
            # Any host runtime that starts stops a dead core's leftovers; under make -j that can
            # be another test's selftest-core within this window, and then survival cannot be
            # seen here: that case is a skip with its reason, never a pass.
            others_seen = False
            for _ in range(15):
                others_seen = others_seen or bool(other_cores(proc.pid))
                time.sleep(0.02)
            survivors = len(t.marked_pids(MARK))
            others_seen = others_seen or bool(other_cores(proc.pid))
            name = "%s: without the guard the batch's processes survive" % what
            if survivors < 5 and others_seen:
                t.skip(name, "another selftest-core ran meanwhile and stopped them (make -j)")
            else:
                t.ok(survivors >= 5, name, "%d marked processes left" % survivors)
            # any host runtime that starts now stops them (under make -j that may be another
            # test's selftest-core; then this run has nothing left to say)
            present = len(t.marked_pids(MARK))
            if extra:  # `selftest-core cleanup` does it too, and counts them
                rc, out, err = t.run([BIN, "-c", write_conf(extra), "cleanup"], env=env(),
                                     timeout=60, cwd=ROOT)
                t.is_eq(rc, 0, "%s: cleanup exits 0" % what)
                m = re.search(r"cleanup: (\d+) listed, (\d+) removed", out)
                if present:
                    t.ok(m and int(m.group(2)) >= 5, "%s: cleanup stopped them" % what,
                         out + err[-1000:])
            else:
                rc, res, err, wall = run(["--workers", "1", "--timeout", "60", "late"],
                                         conf_extra=extra)
                said = re.search(r"stopped \d+ process(es)? left running by a selftest-core "
                                 r"that died", err)
                if present:
                    t.ok(said, "%s: the next run says it stopped them" % what, err[-1500:])
        check_no_leftovers(what)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kill_marked()


def pids_cgroup_offered():
    """Can this process create a pids cgroup below its own (v2 with the pids controller, or a
    v1 pids hierarchy)? Then the process limit must be enforced."""
    try:
        with open("/proc/self/mountinfo") as fh:
            mounts = [l.split() for l in fh]
        with open("/proc/self/cgroup") as fh:
            own = dict((l.split(":", 2)[1], l.split(":", 2)[2].strip()) for l in fh)
    except OSError:
        return False
    for m in mounts:
        sep = m.index("-")
        fstype, sup, mnt, root = m[sep + 1], m[-1].split(","), m[4], m[3]
        if fstype == "cgroup" and "pids" in sup:
            path = own.get("pids")
        elif fstype == "cgroup2":
            path = own.get("")
        else:
            continue
        if path is None or root != "/":
            continue
        d = mnt + (path if path != "/" else "")
        if not os.access(d, os.W_OK):
            continue
        if fstype == "cgroup":
            return True
        try:
            with open(os.path.join(d, "cgroup.subtree_control")) as fh:
                if "pids" in fh.read().split():
                    return True
            with open(os.path.join(d, "cgroup.controllers")) as fh:
                if "pids" in fh.read().split() and path == "/":
                    return True
        except OSError:
            pass
    return False


def check_fork_bomb():
    how = CONTAINMENT[0] if CONTAINMENT else ""
    if not pids_cgroup_offered():
        pytest.skip("this machine offers no pids cgroup this user may create")
    t.ok("process limit by cgroup" in how, "fork bomb: the runtime found the pids cgroup", how)
    try:
        rc, res, err, wall = run(["--workers", "1", "--timeout", "60", "bomb"],
                                 conf_extra="host = { batch_processes = 32; };")
        b = batch_of(res, "bomb")
        t.is_eq(rc, 1, "fork bomb: the run fails")
        t.is_eq(b.get("ok"), False, "fork bomb: the batch fails")
        t.ok(re.search(r"process limit: 32 processes reached", b.get("reason") or ""),
             "fork bomb: stopped at the process limit", b.get("reason"))
        t.is_eq(b.get("timed_out"), False, "fork bomb: not a timeout")
        t.ok(wall < 40, "fork bomb: stopped at once (%.1fs)" % wall)
    finally:
        check_no_leftovers("fork bomb")


def check_flood():
    extra = "host = { batch_output_mb = 2; batch_file_size_mb = 8; };"
    rc, res, err, wall = run(["--workers", "1", "--timeout", "60", "--pytest-args=-s", "flood"],
                             conf_extra=extra)
    b = batch_of(res, "flood")
    t.is_eq(rc, 1, "output flood (-s): the run fails")
    t.ok(re.search(r"output limit: more than 2 MB", b.get("reason") or ""),
         "output flood (-s): stopped at the output limit", b.get("reason"))
    t.is_eq(b.get("resource_limit", "")[:12], "output limit",
            "output flood (-s): resource_limit in the JSON")
    # captured by pytest into a temp file: the file size limit stops the writes
    rc, res, err, wall = run(["--workers", "1", "--timeout", "60", "flood"], conf_extra=extra)
    b = batch_of(res, "flood")
    t.is_eq(rc, 1, "output flood (captured): the run fails")
    t.is_eq(b.get("timed_out"), False, "output flood (captured): not a timeout")
    t.ok(re.search(r"File too large|output limit", json.dumps(res)),
         "output flood (captured): the file size or output limit stopped it",
         json.dumps(b)[:600])
    check_no_leftovers("output flood")


def check_settings():
    for extra, want in (("host = { batch_processs = 3; };", r"batch_processs: unknown setting"),
                        ("host = { sandbox_output_mb = -1; };",
                         r"sandbox_output_mb: must be between 0"),
                        ("host = { cgroup = 3; };", r"cgroup")):
        conf = write_conf(extra)
        rc, out, err = t.run([BIN, "-c", conf, "run", "tests"], env=env(), timeout=60, cwd=ROOT)
        t.is_eq(rc, 2, "bad setting %s: exit 2" % extra)
        t.ok(re.search(want, err) and "selftest.conf:" in err,
             "bad setting %s: the message names it and its file" % extra, err[-800:])


@pytest.fixture(scope="module", autouse=True)
def work():
    """A copy of the escape fixture in a scratch directory; afterwards every process holding
    MARK is killed and the directory removed."""
    global ROOT, WORK
    WORK = tempfile.mkdtemp(prefix="st-contain-")
    ROOT = os.path.join(WORK, "escape")
    shutil.copytree(t.fixture("escape"), ROOT,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    t.make_writable(ROOT)
    t.note("marker %s, work dir %s" % (MARK, WORK))
    yield WORK
    kill_marked()
    shutil.rmtree(WORK, ignore_errors=True)


def test_batches():
    check_batches()


def test_plugin_alone():
    check_plugin_alone()


def test_timeout():
    check_timeout()


def test_orphans():
    check_orphans()


def test_start_gate():
    check_start_gate()


def test_runtime_sweep():
    check_runtime_sweep()


@pytest.mark.parametrize("kill_guard", [False, True], ids=["kill9", "kill9_guard"])
def test_kill9(kill_guard):
    check_kill9(kill_guard=kill_guard)


# where no cgroup can be created (not root): the token and the guard alone

def test_batches_no_cgroup():
    check_batches(NO_CGROUP)


def test_runtime_sweep_no_cgroup():
    check_runtime_sweep(NO_CGROUP)


@pytest.mark.parametrize("kill_guard", [False, True], ids=["kill9", "kill9_guard"])
def test_kill9_no_cgroup(kill_guard):
    check_kill9(kill_guard=kill_guard, extra=NO_CGROUP)


def test_fork_bomb():
    if not CONTAINMENT:  # test_batches did not run (-k): what the runtime finds, from one batch
        rc, res, err, wall = run(["--workers", "1", "--timeout", "15", "tests"])
        CONTAINMENT.append(containment(err))
    check_fork_bomb()


def test_flood():
    check_flood()


def test_settings():
    check_settings()
