# SPDX-License-Identifier: MIT
"""Tiny TAP helper for selftest-core's integration tests (Python 3 stdlib only).

Output is plan-last TAP: one "ok N - name" / "not ok N - name" line per check,
"# " diagnostics, and "1..N" from done().  done() exits 0: failures are
reported through the "not ok" lines, which automake's tap-driver counts.

Environment (set by the Makefile):
    SELFTEST_BIN            the selftest binary under test
    SELF_TEST_PLUGIN_PATH   the plugin search path (the build tree's plugins)
    SELF_TEST_SUPPORT_DIR   the directory holding selftest_pytest_plugin.py
    top_srcdir              the source tree
Defaults for running a test by hand from anywhere: the source tree is two
levels above this file, the plugin dir is <top_srcdir>/python.
"""

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

PYTHON = "/usr/bin/python3"

_count = 0
_failed = 0


# --------------------------------------------------------------------------
# TAP output


def _emit(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _clean_name(name):
    # "#" starts a directive in TAP; keep names on one line.
    return " ".join(str(name).replace("#", "\\#").split())


def note(text):
    """Print text as TAP diagnostics ("# " lines)."""
    for line in str(text).splitlines() or [""]:
        _emit("# " + line)


def ok(cond, name, diag=None):
    """One check; diag is printed as "# " diagnostics when it fails."""
    global _count, _failed
    _count += 1
    if cond:
        _emit("ok %d - %s" % (_count, _clean_name(name)))
    else:
        _failed += 1
        _emit("not ok %d - %s" % (_count, _clean_name(name)))
        if diag is not None:
            note(diag)
    return bool(cond)


def is_eq(got, expected, name):
    """ok(got == expected) with a got/expected diagnostic."""
    return ok(got == expected, name,
              "got:      %r\nexpected: %r" % (got, expected))


def skip(name, reason):
    global _count
    _count += 1
    _emit("ok %d - %s # SKIP %s" % (_count, _clean_name(name),
                                      _clean_name(reason)))


def bail_out(reason):
    _emit("Bail out! %s" % _clean_name(reason))
    sys.exit(1)


def failures():
    return _failed


def done():
    """Print the plan (1..N) and exit 0."""
    _emit("1..%d" % _count)
    sys.exit(0)


# --------------------------------------------------------------------------
# environment


def top_srcdir():
    d = os.environ.get("top_srcdir")
    if d:
        return os.path.abspath(d)
    return os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def plugin_dir():
    """The directory of the bundled pytest plugin (selftest_pytest_plugin.py)."""
    return support_dir()


def support_dir():
    return os.environ.get("SELF_TEST_SUPPORT_DIR") or os.path.join(top_srcdir(), "python")


def selftest_bin():
    return os.environ.get("SELFTEST_BIN")


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


@contextlib.contextmanager
def tmpdir(prefix="selftest-tap-"):
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
    "SELF_TEST_INCLUDE_REDUNDANT", "SANDBOX_TEST_REDUNDANT"))


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
            note(err[-2000:])
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
