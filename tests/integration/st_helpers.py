# SPDX-License-Identifier: MIT
"""Helpers of selftest-core's integration tests (pytest; Python 3 stdlib only at import).

Soft checks: ok(cond, name, diag) and is_eq(got, expected, name) record one named check of the
running test and return whether it held; a failed check does not stop the test: at its end the
test fails listing every failed check with its diagnostics (conftest.py installs a Checker for
each test; calling them outside a test is an error). skip(name, reason) records a check that
could not run (a missing tool): a test without failures that skipped a check is reported as
skipped with the reasons. note(text) prints diagnostics (shown with a failed test's output).

Environment (make check sets it; conftest.py gives the same defaults when pytest is run by hand):
    SELFTEST_BIN            the selftest binary under test
    SELF_TEST_PLUGIN_PATH   the plugin search path (the build tree's plugins)
    SELF_TEST_SUPPORT_DIR   the directory holding selftest_pytest_plugin.py
    FIXTURE_PLUGIN_DIR      the test fixture plugins (tests/fixtures/plugins in the build tree)
    top_srcdir, top_builddir the source and build trees
Defaults: the source tree is two levels above this file; the build tree is the current
directory when it holds a built selftest-core (a VPATH build), else the source tree.
"""

import contextlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

PYTHON = "/usr/bin/python3"


# --------------------------------------------------------------------------
# soft checks


def _clean_name(name):
    return " ".join(str(name).split())


class CheckFailed(AssertionError):
    """bail_out(): the test cannot go on."""


class Checker:
    """The named checks of one test: passed, failed (with diagnostics) and skipped ones."""

    def __init__(self):
        self.passed = []
        self.failed = []   # (name, diag or None)
        self.skipped = []  # (name, reason)

    def ok(self, cond, name, diag=None):
        if cond:
            self.passed.append(_clean_name(name))
        else:
            self.failed.append((_clean_name(name), None if diag is None else str(diag)))
            # also in the test's captured output, in order with its notes
            print("FAILED CHECK: %s" % _clean_name(name))
            if diag is not None:
                print(_indent(str(diag)))
        return bool(cond)

    def is_eq(self, got, expected, name):
        return self.ok(got == expected, name, "got:      %r\nexpected: %r" % (got, expected))

    def skip(self, name, reason):
        self.skipped.append((_clean_name(name), _clean_name(reason)))
        print("SKIPPED CHECK: %s: %s" % (_clean_name(name), _clean_name(reason)))

    def note(self, text):
        print(str(text))

    def failure_report(self):
        """The text listing every failed check and its diagnostics ("" when none failed)."""
        if not self.failed:
            return ""
        lines = ["%d of %d checks failed:" % (len(self.failed),
                                               len(self.failed) + len(self.passed))]
        for name, diag in self.failed:
            lines.append("  FAILED: " + name)
            if diag is not None:
                lines.append(_indent(diag, "      "))
        return "\n".join(lines)

    def skip_reason(self):
        return "; ".join("%s: %s" % nr for nr in self.skipped)


def _indent(text, prefix="    "):
    return "\n".join(prefix + line for line in (text.splitlines() or [""]))


_current = None


def set_current(checker):
    global _current
    _current = checker


def current():
    if _current is None:
        raise RuntimeError("a check outside a test (checks belong in test functions)")
    return _current


def ok(cond, name, diag=None):
    """One soft check of the running test; diag is shown when it fails. Returns bool(cond)."""
    return current().ok(cond, name, diag)


def is_eq(got, expected, name):
    """ok(got == expected) with a got/expected diagnostic."""
    return current().is_eq(got, expected, name)


def skip(name, reason):
    """A check of the running test that cannot run (reason: the missing tool)."""
    current().skip(name, reason)


def note(text):
    """Diagnostics, shown with a failed test's output."""
    print(str(text))


def bail_out(reason):
    """The running test cannot go on: fails it now (with the checks failed so far)."""
    raise CheckFailed(_clean_name(reason))


# --------------------------------------------------------------------------
# environment


def top_srcdir():
    d = os.environ.get("top_srcdir")
    if d:
        return os.path.abspath(d)
    return os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def top_builddir():
    d = os.environ.get("top_builddir")
    if d:
        return os.path.abspath(d)
    cwd = os.getcwd()
    if os.path.isfile(os.path.join(cwd, "config.status")) and \
            os.path.exists(os.path.join(cwd, "selftest-core")):
        return cwd
    return top_srcdir()


def default_environment():
    """The variables make check sets, for a run by hand: {name: value}."""
    src, build = top_srcdir(), top_builddir()
    return {
        "top_srcdir": src,
        "top_builddir": build,
        "SELFTEST_BIN": os.path.join(build, "selftest-core"),
        "SELF_TEST_PLUGIN_PATH": "%s:%s" % (os.path.join(build, "plugins"),
                                            os.path.join(build, "tests", "fixtures", "plugins")),
        "SELF_TEST_PLUGIN_SYSTEM_PATH": "",  # never an installed copy of a plugin
        "SELF_TEST_SUPPORT_DIR": os.path.join(src, "python"),
        "FIXTURE_PLUGIN_DIR": os.path.join(build, "tests", "fixtures", "plugins"),
        "PYTHON": PYTHON,
    }


# Unset by make check (AM_TESTS_ENVIRONMENT) and by conftest.py: a developer's shell may export
# them and they change how selftest-core runs.
UNSET_FOR_TESTS = ("SELF_TEST_ARGS", "SELF_TEST_WORKERS", "SELF_TEST_TIMEOUT", "SELF_TEST_RETRIES",
                   "SANDBOX_REPO_PATH", "SANDBOX_DATA_DIR", "SELF_TEST_PYTHON",
                   "SELF_TEST_PYTHONPATH", "SELF_TEST_JUNIT_XML")


def setup_environment():
    """Gives os.environ make check's variables (those already set are kept) and unsets
    UNSET_FOR_TESTS, so a test run by hand sees what it sees under make check."""
    for k, v in default_environment().items():
        if not os.environ.get(k):
            os.environ[k] = v
    for k in UNSET_FOR_TESTS:
        os.environ.pop(k, None)


def plugin_dir():
    """The directory of the bundled pytest plugin (selftest_pytest_plugin.py)."""
    return support_dir()


def support_dir():
    return os.environ.get("SELF_TEST_SUPPORT_DIR") or os.path.join(top_srcdir(), "python")


def selftest_bin():
    return os.environ.get("SELFTEST_BIN") or os.path.join(top_builddir(), "selftest-core")


def missing_bin_reason():
    """None when the selftest binary exists and is executable, else why not (a skip reason)."""
    b = selftest_bin()
    if not os.access(b, os.X_OK):
        return "selftest binary %s is not built (make, or set SELFTEST_BIN)" % b
    return None


def fixture(name):
    """Path of a fixture project (tests/fixtures/projects/<name>); "sample" is <top_srcdir>/sample."""
    if name == "sample":
        return os.path.join(top_srcdir(), "sample")
    return os.path.join(top_srcdir(), "tests", "fixtures", "projects", name)


def base_env(extra=None):
    """os.environ without pytest-affecting variables, plus extra (None values unset)."""
    env = dict(os.environ)
    for k in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_XDIST_WORKER",
              "PYTEST_CURRENT_TEST", "SELF_TEST_RESULTS_FILE",
              "SELF_TEST_ORPHAN_MODULES", "SELF_TEST_ORPHAN_ROOT"):
        env.pop(k, None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for k, v in (extra or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


# --------------------------------------------------------------------------
# processes


def run(argv, env=None, timeout=120, cwd=None, input=None):
    """Run argv (no shell). Returns (rc, stdout, stderr) as text.

    rc is the exit status, or -SIGNAL when killed by a signal.  On timeout
    the whole process group is killed and rc is None.
    """
    proc = subprocess.Popen(
        [str(a) for a in argv], env=env, cwd=cwd,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)
    try:
        out, err = proc.communicate(input=input.encode() if isinstance(input, str) else input,
                                    timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        rc = None
    return (rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def kill_group(proc, sig=None):
    """SIGKILL (or sig) the process group of a Popen started with start_new_session."""
    import signal
    try:
        os.killpg(proc.pid, sig if sig is not None else signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def marked_pids(mark):
    """Pids (not ours) whose command line or environment holds the string mark: what a run
    started with a marker variable left behind."""
    found, me, needle = [], os.getpid(), mark.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        for what in ("cmdline", "environ"):
            try:
                with open("/proc/%s/%s" % (name, what), "rb") as fh:
                    if needle in fh.read():
                        found.append(int(name))
                        break
            except OSError:
                pass
    return sorted(set(found))


@contextlib.contextmanager
def tmpdir(prefix="selftest-it-"):
    """A temporary directory, removed afterwards."""
    d = tempfile.mkdtemp(prefix=prefix)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------
# pytest summary parsing

SUMMARY_KEYS = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed")
_WORDS = {
    "passed": "passed", "failed": "failed", "error": "errors",
    "errors": "errors", "skipped": "skipped", "xfailed": "xfailed",
    "xpassed": "xpassed", "deselected": "deselected",
    "warning": "warnings", "warnings": "warnings",
}
_PART = re.compile(r"(\d+) ([a-z]+)")
_TIME = re.compile(r"\bin [\d.]+s\b")


def parse_summary(output):
    """Parse pytest's final summary line ("= 1 failed, 2 passed, 3 errors in 0.1s =",
    "= no tests ran in 0.01s =", or the -q form without "=") from output.

    Returns a dict with SUMMARY_KEYS (+ deselected, warnings) as ints, and
    "line" = the line found, or None when there is no summary line (crash).
    """
    counts = dict.fromkeys(SUMMARY_KEYS, 0)
    counts["deselected"] = 0
    counts["warnings"] = 0
    counts["line"] = None
    for raw in reversed(output.splitlines()):
        line = raw.strip().strip("=").strip()
        if not _TIME.search(line):
            continue
        head = _TIME.split(line)[0]
        if "no tests ran" in head:
            counts["line"] = line
            return counts
        parts = _PART.findall(head)
        if not parts or any(w not in _WORDS for _, w in parts):
            continue
        for n, word in parts:
            counts[_WORDS[word]] += int(n)
        counts["line"] = line
        return counts
    return counts


def pytest_cmd(path_list=(), extra_args=(), plugin=False):
    argv = [PYTHON, "-m", "pytest", "-p", "no:cacheprovider"]
    if plugin:
        argv += ["-p", "selftest_pytest_plugin"]
    return argv + list(extra_args) + [str(p) for p in path_list]


def pytest_summary(path_list=(), extra_args=(), cwd=None, env=None, timeout=300):
    """Run /usr/bin/python3 -m pytest -p no:cacheprovider <extra_args> <paths> in cwd.

    Returns a dict {passed, failed, errors, skipped, xfailed, xpassed,
    deselected, warnings, line, exitcode, stdout, stderr}.  exitcode is the
    process status (-SIG when killed by a signal, None on timeout).
    """
    rc, out, err = run(pytest_cmd(path_list, extra_args), env=base_env(env),
                       timeout=timeout, cwd=cwd)
    res = parse_summary(out)
    res["exitcode"] = rc
    res["stdout"] = out
    res["stderr"] = err
    return res


# Settings a test's environment must not inherit from the caller's (a developer's shell may
# export some): passed as extra to base_env() they are unset. The harness's own variables
# (SELFTEST_BIN, SELF_TEST_PLUGIN_PATH, SELF_TEST_SUPPORT_DIR) are kept.
SCRUB = dict.fromkeys((
    "SELF_TEST_ARGS", "SELF_TEST_WORKERS", "SELF_TEST_TIMEOUT", "SELF_TEST_RETRIES",
    "SELF_TEST_PYTHON", "SELF_TEST_PYTHONPATH", "SELF_TEST_REPORT_DIR", "SELF_TEST_LOCK_FILE", "SELF_TEST_COVERAGE",
    "SELF_TEST_METRICS_PORT", "SANDBOX_DATA_DIR", "SANDBOX_REPO_PATH",
    "SELF_TEST_DISABLE_ORPHANS", "SANDBOX_DISABLE_ORPHANS", "SELF_TEST_DISABLE_AUTO_INTEGRATION",
    "SELF_TEST_AUTO_INCLUDE_ISOLATED", "SANDBOX_AUTO_INCLUDE_ISOLATED", "SANDBOX_CLEAN_ORPHANS",
    "SELF_TEST_INCLUDE_REDUNDANT", "SANDBOX_TEST_REDUNDANT", "SELF_TEST_JUNIT_XML"))


def make_writable(top):
    """copytree copies modes: under make distcheck the source tree is read-only."""
    for d, dirs, files in os.walk(top):
        for name in [d] + [os.path.join(d, f) for f in files]:
            try:
                if not os.path.islink(name):
                    os.chmod(name, os.stat(name).st_mode | 0o200)
            except OSError:
                pass


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def engines_up():
    """The private container engines of tools/engines/engines.sh: ST_ENGINES_DIR names one
    already up, else (as root) one is started in a new directory. Returns ({"docker": socket,
    "podman": socket, "dir", "image", "tar", "own": True when started here}, None) or
    (None, the reason to skip)."""
    script = os.path.join(top_srcdir(), "tools", "engines", "engines.sh")
    d = os.environ.get("ST_ENGINES_DIR")
    own = False
    if not d:
        if os.geteuid() != 0:
            return None, "needs root to start private engines (or set ST_ENGINES_DIR)"
        d = tempfile.mkdtemp(prefix="st-eng-", dir="/tmp")
        rc, out, err = run(["bash", script, "up", d], timeout=600)
        own = True
        if rc != 0:
            sys.stderr.write(err[-2000:] + "\n")
            run(["bash", script, "down", d], timeout=120)
            return None, "tools/engines/engines.sh up failed (rc %r)" % rc
    env = {}
    try:
        with open(os.path.join(d, "env")) as fh:
            for line in fh:
                k, _, v = line.strip().partition("=")
                env[k] = v
    except OSError as e:
        return None, "no engines in %s: %s" % (d, e)
    return {"docker": env.get("DOCKER_SOCK"), "podman": env.get("PODMAN_SOCK"), "dir": d,
            "image": env.get("ST_IMAGE"), "tar": env.get("ST_IMAGE_TAR"), "own": own}, None


def engines_down(eng):
    """Stops the engines engines_up() started (not those of ST_ENGINES_DIR)."""
    if eng and eng.get("own"):
        run(["bash", os.path.join(top_srcdir(), "tools", "engines", "engines.sh"), "down",
             eng["dir"]], timeout=300)


# --------------------------------------------------------------------------
# the engines' HTTP API (over their unix sockets) and containers under test

# the variable that gives each engine plugin its engine address
ENGINE_HOST_VAR = {"docker": "DOCKER_HOST", "podman": "CONTAINER_HOST"}

# a test file whose test sleeps long enough for a batch to be caught while it runs
SLEEP_TEST = '''import time

def test_sleeps():
    time.sleep(120)
'''


class UnixHTTP(http.client.HTTPConnection):
    """HTTP to the unix socket at path (an engine's API)."""

    def __init__(self, path, timeout=60):
        super().__init__("d", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def engine_api(sock, method, path, body=None, timeout=60, raw=False):
    """One request to the engine API at the unix socket sock (body: sent as JSON). Returns
    (status, reply): the reply's JSON (None when empty, the bytes when not JSON), or with raw
    the bytes."""
    c = UnixHTTP(sock, timeout)
    try:
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers=hdrs)
        r = c.getresponse()
        data = r.read()
    finally:
        c.close()
    if raw:
        return r.status, data
    try:
        return r.status, json.loads(data) if data.strip() else None
    except ValueError:
        return r.status, data


def engine_containers(sock, *labels):
    """selftest-core's containers (all states) on the engine at sock that carry every label of
    labels ("k" or "k=v"); ["list failed: ..."] when the engine does not list them."""
    q = urllib.parse.quote(json.dumps({"label": ["menace_self_test"] + list(labels)}))
    st, body = engine_api(sock, "GET", "/v1.41/containers/json?all=1&filters=" + q)
    if st != 200 or not isinstance(body, list):
        return ["list failed: %r %r" % (st, body)]
    return body


def engine_wait_running(sock, owner_pid, timeout=90):
    """The running container of the first batch of the selftest-core process owner_pid (not
    the interpreter preflight's), or None after timeout seconds."""
    until = time.time() + timeout
    while time.time() < until:
        for c in engine_containers(sock, "selftest.owner.pid=%d" % owner_pid):
            if isinstance(c, dict) and c.get("State") == "running" and \
                    re.search(r"batch-0$", (c.get("Labels") or {}).get("selftest.batch", "")):
                return c
        time.sleep(0.1)
    return None


def engine_env(engine, root, sock, extra=None):
    """The environment of a selftest-core run of the project root on the engine at sock, with
    no other engine address and no offline image set."""
    env = {"SANDBOX_REPO_PATH": root, "DOCKER_HOST": None, "CONTAINER_HOST": None,
           "MENACE_OFFLINE_INSTALL": None, "MENACE_SELF_TEST_IMAGE_TAR": None,
           ENGINE_HOST_VAR[engine]: "unix://" + sock}
    env.update(extra or {})
    return base_env(env)


def one_test_project(parent, name, test_text, test_file="test_it.py"):
    """A new project parent/name (name None: "proj-" and a random suffix): a pytest.ini and
    tests/test_file holding test_text. Returns its root."""
    root = os.path.join(parent, name or "proj-%s" % uuid.uuid4().hex[:6])
    os.makedirs(os.path.join(root, "tests"))
    with open(os.path.join(root, "pytest.ini"), "w") as fh:
        fh.write("[pytest]\n")
    with open(os.path.join(root, "tests", test_file), "w") as fh:
        fh.write(test_text)
    return root


def sleep_project(parent):
    """A new project under parent whose one test sleeps (SLEEP_TEST); returns its root."""
    return one_test_project(parent, None, SLEEP_TEST, test_file="test_sleep.py")


# --------------------------------------------------------------------------
# runs of the container runtimes against the host's (test_containers.py, test_swarm.py)

# the fixture projects each runtime must run as the host does
RUNTIME_FIXTURES = ["passing", "failing", "fixture_error", "collect_error", "timeout", "exit3",
                    "segv", "empty", "split"]
# what a failed batch's reason must name
RUNTIME_REASONS = {"timeout": r"timeout", "exit3": r"exit(ed with)? status 3\b",
                   "segv": r"signal 11\b"}
# what the end of a failed batch's output (the engine's logs) must show
RUNTIME_LOG_MARKS = {"failing": r"2 failed, 3 passed", "exit3": r"test_exit3\.py \.",
                     "segv": r"Fatal Python error: Segmentation fault", "empty": r"no tests ran"}
COUNT_KEYS = ("passed", "failed", "skipped", "xfailed", "errors")
# what a fixture's copy leaves out
FIXTURE_IGNORE = shutil.ignore_patterns(".pytest_cache", "__pycache__", "sandbox_data",
                                        ".coverage", "*.pyc")

# the start of a test file that reads cgroup limits: read() gives the first file of names
# (globs) that exists, stripped, or None
LIMITS_READ = '''import glob, os

def read(*names):
    for n in names:
        for p in glob.glob(n):
            with open(p) as fh:
                return fh.read().strip()
    return None
'''


def label_filter(*labels):
    """The engine API's filters= value for objects carrying every label ("k" or "k=v")."""
    return urllib.parse.quote(json.dumps({"label": list(labels)}))


def copy_fixture(work, name, dest=None):
    """A copy of the fixture project name in work (name None: a new empty directory), as
    work/dest or work/<name>-<random>. Returns its root."""
    dst = os.path.join(work, dest or "%s-%s" % (name or "proj", uuid.uuid4().hex[:6]))
    if name is None:
        os.makedirs(dst)
    else:
        shutil.copytree(fixture(name), dst, ignore=FIXTURE_IGNORE)
    return dst


def write_project(work, files):
    """A new project in work: a pytest.ini and files ({relative path: text}). Returns its
    root."""
    root = copy_fixture(work, None)
    with open(os.path.join(root, "pytest.ini"), "w") as fh:
        fh.write("[pytest]\n")
    for rel, text in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as fh:
            fh.write(text)
    return root


def run_events(argv, env, cwd, timeout):
    """Runs selftest-core (argv, env as for run()) and reads its --json events: {"rc", "out",
    "err", "elapsed", "results": the "results" event or None, "batches": the "batch"
    events}."""
    t0 = time.monotonic()
    rc, out, err = run(argv, env=env, cwd=cwd, timeout=timeout)
    res = {"rc": rc, "out": out, "err": err, "results": None, "batches": [],
           "elapsed": time.monotonic() - t0}
    for line in out.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and obj.get("event") == "batch":
            res["batches"].append(obj)
        if isinstance(obj, dict) and obj.get("event") == "results":
            res["results"] = obj
    return res


def counts_of(results):
    """The test counts of a results object (None for none)."""
    return {k: results.get(k) for k in COUNT_KEYS} if results else None


def batch_of(results, path):
    """The suite metrics of path in a results object (the only one when path is not there),
    or {}."""
    sm = (results or {}).get("suite_metrics") or {}
    if path not in sm and len(sm) == 1:
        return list(sm.values())[0]
    return sm.get(path) or {}


def check_like_host(label, name, r, host, runtime):
    """Checks that run r (of run_events) of fixture name under runtime gives the host run's
    counts, exit status, batch outcome and reason, and says runtime_used. Returns the batch of
    "." of r and of host."""
    res = r["results"]
    is_eq(counts_of(res), counts_of(host["results"]), "%s: same counts as on the host" % label)
    is_eq(r["rc"], host["rc"], "%s: same exit status as on the host (%r)" % (label, host["rc"]))
    is_eq(res.get("runtime_used"), runtime, "%s: runtime_used" % label)
    b, hb = batch_of(res, "."), batch_of(host["results"], ".")
    is_eq(b.get("ok"), hb.get("ok"), "%s: batch ok as on the host" % label)
    if name in RUNTIME_REASONS:
        ok(re.search(RUNTIME_REASONS[name], b.get("reason") or ""),
           "%s: the reason names the cause like the host's (%r)" % (label, hb.get("reason")),
           "reason: %r" % b.get("reason"))
    return b, hb


def proc_start(pid):
    """Field 22 of /proc/<pid>/stat (the start time the owner labels record), as a string."""
    with open("/proc/%d/stat" % pid) as fh:
        return fh.read().rsplit(")", 1)[1].split()[19]


def owner_labels():
    """Labels of objects a cleanup must judge, as the runtimes write them: "dead" (this host,
    a process that has ended), "reused" (this process's pid with another start time), "live"
    (this process) and "foreign_expired" (another host's, past its deadline)."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    base = {"menace_self_test": "1", "selftest.owner.host": socket.gethostname(),
            "selftest.run": "t", "selftest.deadline": str(int(time.time()) + 3600)}
    me = str(os.getpid())
    return {
        "dead": dict(base, **{"selftest.owner.pid": str(dead.pid),
                              "selftest.owner.start": "12345"}),
        "reused": dict(base, **{"selftest.owner.pid": me, "selftest.owner.start": "1"}),
        "live": dict(base, **{"selftest.owner.pid": me,
                              "selftest.owner.start": proc_start(os.getpid())}),
        "foreign_expired": dict(base, **{
            "selftest.owner.host": "elsewhere", "selftest.owner.pid": "1",
            "selftest.owner.start": "1", "selftest.deadline": str(int(time.time()) - 10)}),
    }


def check_log_tail(label, name, batch, logs):
    """Checks that a failed batch kept the end of logs (what the engine's logs are, for the
    message) and that it shows what RUNTIME_LOG_MARKS says for fixture name. Returns the
    tail."""
    tail = batch.get("output_tail") or ""
    marks = RUNTIME_LOG_MARKS
    ok(tail and (name not in marks or re.search(marks[name], tail)),
       "%s: the failed batch keeps the end of %s (%s)"
       % (label, logs, marks.get(name, "not empty")), repr(tail[-600:]))
    return tail
