# SPDX-License-Identifier: MIT
"""Defects a hostile probe found (bad input, corrupted state, crashes), each with the guarantee
kept: the run lock never empties a file that is not its own (a symbolic link, the config file or
any file named by lock_file or SELF_TEST_LOCK_FILE); "--" ends the options; deeply nested JSON in
a state file is reported and left alone while the run goes on; invalid plugin settings fail
`run` and `run-scheduled` with exit 2; an empty module measured by pytest-cov keeps coverage;
an absurd --workers is clamped with a warning; work directories of crashed runs are removed at
the next start; and smaller input checks (FIFO config, history path, --check-config with a
command, NUL in history.json, runtime names, numbers in the environment)."""
import json
import os
import signal
import subprocess
import time

import pytest
import st_helpers as t

BIN = t.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")


@pytest.fixture
def tmp(workdir):
    """The test's scratch directory (removed afterwards)."""
    return workdir


def write(path, text, mode="w"):
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    with open(path, mode) as f:
        f.write(text)


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def project(root, tests="def test_a():\n    assert True\n", extra=""):
    """A project with tests/test_x.py and a selftest.conf (plus extra settings)."""
    write(os.path.join(root, "tests", "test_x.py"), tests)
    conf = os.path.join(root, "selftest.conf")
    write(conf, 'project_root = ".";\npython = "%s";\nretries = 0;\nworkers = 1;\n%s'
          % (t.PYTHON, extra))
    return conf


def env(extra=None):
    e = dict(t.SCRUB)
    e.update(extra or {})
    return t.base_env(e)


def st(conf, *args, timeout=120, extra_env=None, cwd=None):
    argv = [BIN] + (["-c", conf] if conf else []) + list(args)
    if cwd is None and conf:
        cwd = os.path.dirname(conf)  # paths on the command line are relative to the cwd
    return t.run(argv, env=env(extra_env), timeout=timeout, cwd=cwd)


def eq(got, expected, name, diag=""):
    """is_eq with the output that explains a failure."""
    t.ok(got == expected, name, "got %r, expected %r\n%s" % (got, expected, diag))


def last_json(out):
    lines = [l for l in out.splitlines() if l.startswith("{")]
    try:
        return json.loads(lines[-1]) if lines else {}
    except ValueError:
        return {}


# ---- 1. the lock -------------------------------------------------------------------------------

def test_lock_never_truncates(tmp):
    conf = project(tmp, extra='lock_file = "selftest.conf";\n')
    before = read(conf)
    rc, out, err = st(conf, "run")
    eq(rc, 3, "lock_file = \"selftest.conf\": the run is refused (exit 3)")
    eq(read(conf), before, "the config file named as lock_file keeps its content")
    t.ok(conf in err and "other than a pid" in err, "the error names the file and why", err)

    conf = project(tmp)
    precious = os.path.join(tmp, "precious.txt")
    write(precious, "do not truncate me\n")
    rc, out, err = st(conf, "run", extra_env={"SELF_TEST_LOCK_FILE": precious})
    eq(rc, 3, "SELF_TEST_LOCK_FILE=/some/file: the run is refused (exit 3)")
    eq(read(precious), "do not truncate me\n", "the file SELF_TEST_LOCK_FILE names is intact")
    t.ok(precious in err, "the error names it", err)

    data = os.path.join(tmp, "sandbox_data")
    os.makedirs(data, exist_ok=True)
    lock = os.path.join(data, "self_test.lock")
    if os.path.lexists(lock):
        os.unlink(lock)
    os.symlink(precious, lock)
    rc, out, err = st(conf, "run")
    eq(rc, 3, "a symlinked self_test.lock is refused (exit 3)")
    eq(read(precious), "do not truncate me\n", "the file the symlink points to is intact")
    t.ok(lock in err and "symbolic link" in err, "the error names the link", err)
    os.unlink(lock)
    rc, out, err = st(conf, "run")
    eq(rc, 0, "with the link gone the run takes its lock again", err)
    eq(read(lock), "", "the lock file is left empty after the run")


# ---- 2. "--" and option values -----------------------------------------------------------------

def runs_stored(tmp):
    import sqlite3
    db = os.path.join(tmp, "sandbox_data", "metrics.db")
    if not os.path.exists(db):
        return 0
    try:
        return sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_double_dash(tmp):
    conf = project(tmp)
    rc, out, err = st(conf, "run", "--json", "--", "tests", timeout=60)
    eq(rc, 0, "run -- tests: runs and exits 0 (no endless argument loop)", err)
    eq(last_json(out).get("passed"), 1, "run -- tests ran tests/ once")
    rc, out, err = st(conf, "discover", "--", "tests", timeout=60)
    eq(rc, 0, "discover -- tests exits 0", err)
    t.ok("1 test batch: tests" in out, "discover -- tests lists the one batch", out)
    rc, out, err = st(conf, "run", "--", "--json", timeout=60)
    eq(rc, 2, "run -- --json: a word after -- is a path, not an option (exit 2)")
    t.ok("--json" in err, "the missing path --json is named", err)

    proc = subprocess.Popen([BIN, "-v", "-c", conf, "run-scheduled", "--interval", "3600", "--",
                             "tests"], env=env(), cwd=tmp, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    before = runs_stored(tmp)
    deadline = time.time() + 60
    rows = before
    while time.time() < deadline and proc.poll() is None and rows <= before:
        rows = runs_stored(tmp)
        time.sleep(0.2)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        t.kill_group(proc)
        rc = None
    err = proc.stderr.read().decode("utf-8", "replace")
    t.ok(rows > before, "run-scheduled -- tests ran a cycle", err[-2000:])
    eq(rc, 0, "and stopped cleanly on SIGTERM")


def test_option_needs_value(tmp):
    rc, out, err = st(None, "--plugin-dir")
    eq(rc, 2, "--plugin-dir without a value: exit 2")
    t.ok("needs an argument" in err and "--plugin-dir" in err and "unknown" not in err,
         "says the option needs an argument (not 'unknown option')", err)
    rc, out, err = st(None, "-c")
    t.ok(rc == 2 and "needs an argument" in err and "'-c'" in err, "-c without a value too", err)
    rc, out, err = st(None, "--no-such-option", "run")
    t.ok(rc == 2 and "unknown option" in err, "an unknown global option is still unknown", err)


# ---- 3. deeply nested JSON in the state files --------------------------------------------------

def test_deep_json_state(tmp):
    conf = project(tmp)
    deep = "[" * 1000000 + "]" * 1000000
    data = os.path.join(tmp, "sandbox_data")
    for name in ("orphan_modules.json", "orphan_classifications.json", "module_map.json"):
        path = os.path.join(data, name)
        write(path, deep)
        rc, out, err = st(conf, "run", "--json")
        eq(rc, 0, "2 MB of [[[...]]] in %s: the run goes on and exits 0 (no SIGSEGV)" % name,
           err[-2000:])
        eq(last_json(out).get("passed"), 1, "%s: the tests still ran" % name)
        t.ok(path in err and "nested deeper than" in err,
             "%s: reported with the file named" % name, err[-2000:])
        t.ok(read(path) == deep, "%s: left as it is" % name)
        os.unlink(path)
    hist = os.path.join(tmp, "h.json")
    text = '[{"passed": 1, "x": %s1%s}]' % ("[" * 1000000, "]" * 1000000)
    write(hist, text)
    rc, out, err = st(conf, "run", "--history", hist)
    eq(rc, 0, "a history file nested a million deep: the run exits 0 (no SIGSEGV)", err[-2000:])
    t.ok(hist in err and "nested deeper than" in err, "the history file is named", err[-2000:])
    t.ok(read(hist) == text, "the history file is left as it is")


# ---- 5. invalid plugin settings ------------------------------------------------------------------

def test_invalid_plugin_settings(tmp):
    typo = ('plugins = ({kind = "exporter"; name = "exporter-prometheus";\n'
            '            settings = { porrt = 9464; };});\n')
    conf = project(tmp, extra=typo)
    rc, out, err = st(conf, "--check-config")
    eq(rc, 2, "--check-config: a typo in the exporter's settings exits 2", err)
    rc, out, err = st(conf, "run", "--json")
    eq(rc, 2, "run: the same typo exits 2 (not 0 without the exporter)", err)
    t.ok("porrt" in err and "selftest.conf:" in err, "run: the setting is named with file:line",
         err)
    t.ok('"event":"results"' not in out, "run: no test ran", out[-500:])
    rc, out, err = st(conf, "run-scheduled", "--interval", "3600", timeout=30)
    eq(rc, 2, "run-scheduled: exits 2 at once instead of running without /metrics", err)
    conf = project(tmp, extra='plugins = ({kind = "integrator"; name = "integrator-modulemap";\n'
                              '            settings = { bogus = 1; };});\n')
    rc, out, err = st(conf, "run")
    eq(rc, 2, "run: an integrator with an unknown setting exits 2", err)


# ---- 9. coverage with an empty module -------------------------------------------------------------

def have_module(name):
    rc, out, err = t.run([t.PYTHON, "-c", "import " + name], env=t.base_env(), timeout=60)
    return rc == 0


def test_empty_module_keeps_coverage(tmp):
    if not have_module("pytest_cov"):
        pytest.skip("pytest-cov is not installed for %s" % t.PYTHON)
    write(os.path.join(tmp, "pkg", "__init__.py"), "")
    write(os.path.join(tmp, "pkg", "m.py"), "def f():\n    return 1\n\n\ndef g():\n"
          "    return 2\n")
    conf = project(tmp, tests="from pkg.m import f\n\n\ndef test_f():\n    assert f() == 1\n",
                   extra="coverage = true;\n")
    rc, out, err = st(conf, "run", "--json")
    res = last_json(out)
    eq(rc, 0, "a project with an empty __init__.py: the run passes", err)
    cov = res.get("coverage")
    t.ok(isinstance(cov, (int, float)), "coverage is measured, not n/a (pytest-cov wrote "
         "DA:0 for the empty module)", "coverage=%r\n%s" % (cov, err[-1500:]))
    # statements: m.py 4 (2 def, 2 return; g's body does not run), tests/test_x.py 3 -> 6 of 7
    if isinstance(cov, (int, float)):
        t.ok(abs(cov - 100.0 * 6 / 7) < 0.01, "coverage counts the empty module as no statement "
             "(6 of 7 lines: %.2f)" % cov)
    t.ok("malformed LCOV" not in err, "no LCOV error is logged", err[-1500:])


# ---- 10. an absurd worker count -----------------------------------------------------------------

def batch_events(out):
    events = []
    for line in out.splitlines():
        if line.startswith('{"event":"batch"'):
            try:
                events.append(json.loads(line))
            except ValueError:
                pass
    return events


def test_workers_clamped(tmp):
    conf = project(tmp)
    cap = 4 * (os.sysconf("SC_NPROCESSORS_ONLN") or 1)
    rc, out, err = st(conf, "run", "--json", "--workers", "100000", timeout=180)
    eq(rc, 0, "--workers 100000: the run passes", err[-1500:])
    batches = batch_events(out)
    got = batches[0]["batch"].get("workers") if batches else None
    eq(got, cap, "the batch gets 4 workers per CPU (%d), not 100000" % cap)
    argv = batches[0]["batch"].get("pytest_argv") or [] if batches else []
    t.ok("100000" not in argv, "pytest never sees -n 100000", repr(argv))
    t.ok("100000" in err and "using %d" % cap in err, "a warning says what was asked and what "
         "is used", err[-1500:])
    rc, out, err = st(conf, "run", "--json", "--workers", "1", timeout=120)
    t.ok("more than" not in err, "a sensible count gives no warning", err[-1500:])


# ---- 13. work directories of crashed runs --------------------------------------------------------

def workdirs(tmpdir):
    return sorted(n for n in os.listdir(tmpdir) if n.startswith("selftest-"))


def test_stale_workdirs_removed(tmp):
    runtmp = os.path.join(tmp, "runtmp")
    os.makedirs(runtmp)
    marker = os.path.join(tmp, "started")
    conf = project(tmp, tests="import os, time\n\n\ndef test_slow():\n"
                              "    open(%r, 'w').close()\n    time.sleep(60)\n" % marker)
    e = {"TMPDIR": runtmp}
    counts = []
    for _ in range(3):  # three crashes: each run removes what the crashed one before it left
        if os.path.exists(marker):
            os.unlink(marker)
        proc = subprocess.Popen([BIN, "-c", conf, "run"], env=env(e), cwd=tmp,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline and not os.path.exists(marker) and proc.poll() is None:
            time.sleep(0.1)
        t.kill_group(proc)  # kill -9 of the core and its batch
        proc.wait()
        left = workdirs(runtmp)
        counts.append((len(left), all(n.startswith("selftest-%d-" % proc.pid) for n in left)))
    eq(counts, [(1, True)] * 3, "after each of three kill -9 during a batch, only the killed "
       "run's work dir (named with its pid) is left: the earlier ones were removed at start")
    # a live process's directory (this test's pid) and someone else's name stay
    mine = os.path.join(runtmp, "selftest-%d-aaaaaa" % os.getpid())
    other = os.path.join(runtmp, "selftest-notes")
    os.makedirs(mine)
    os.makedirs(other)
    conf = project(tmp)
    rc, out, err = st(conf, "-v", "run", extra_env=e)
    eq(rc, 0, "the next run passes", err[-1500:])
    eq(workdirs(runtmp), ["selftest-%d-aaaaaa" % os.getpid(), "selftest-notes"],
       "the next run removed the dead runs' work dirs and its own, nothing else")
    t.ok("removed 1 work directory" in err, "and says so (with -v)", err[-1500:])


# ---- 14. smaller input checks -------------------------------------------------------------------

def test_fifo_config_refused(tmp):
    project(tmp)
    fifo = os.path.join(tmp, "fifo.conf")
    os.mkfifo(fifo)
    rc, out, err = st(fifo, "run", timeout=30)
    eq(rc, 2, "a FIFO as the config file: exit 2 at once (no hang)", err)
    t.ok(fifo in err and "not a regular file" in err, "the error names it", err)


def test_history_relative_to_config(tmp):
    conf_dir = os.path.join(tmp, "etc")
    conf = project(tmp)
    write(os.path.join(conf_dir, "selftest.conf"), read(conf).replace(
        'project_root = ".";', 'project_root = "..";') + 'history = "h.json";\n')
    elsewhere = os.path.join(tmp, "elsewhere")
    os.makedirs(elsewhere)
    rc, out, err = st(os.path.join(conf_dir, "selftest.conf"), "run", cwd=elsewhere)
    eq(rc, 0, "a run with history = \"h.json\" from another cwd passes", err)
    t.ok(os.path.exists(os.path.join(conf_dir, "h.json")),
         "the history file is next to the config file")
    t.ok(not os.path.exists(os.path.join(elsewhere, "h.json")), "not in the cwd")


def test_check_config_with_command(tmp):
    marker = os.path.join(tmp, "ran")
    conf = project(tmp, tests="def test_a():\n    open(%r, 'w').close()\n" % marker)
    rc, out, err = st(conf, "--check-config", "run")
    eq(rc, 0, "--check-config run: a valid configuration exits 0", err)
    t.ok("configuration OK" in out, "it says so", out + err)
    t.ok(not os.path.exists(marker), "and no test ran (no cycle)")
    eq(runs_stored(tmp), 0, "nothing was stored in metrics.db")
    rc, out, err = st(conf, "--check-config", "run", "--workers", "x")
    eq(rc, 2, "--check-config run --workers x: the command's options are checked too", err)


def test_nul_in_history(tmp):
    conf = project(tmp)
    hist = os.path.join(tmp, "h.json")
    text = b'[{"passed": 1}]\x00[{"passed": 2}] keep this\n'
    write(hist, text, "wb")
    rc, out, err = st(conf, "run", "--history", hist)
    eq(rc, 0, "a history file with a NUL byte: the run still passes", err)
    eq(read(hist, "rb"), text, "the file is left as it is (nothing after the NUL is dropped)")
    t.ok(hist in err and "NUL" in err, "the error names the file and the NUL", err)


def test_runtime_name_refused(tmp):
    conf = project(tmp, extra='runtime = "../../evil";\n')
    rc, out, err = st(conf, "run")
    eq(rc, 2, "runtime = \"../../evil\": exit 2", err)
    t.ok("selftest.conf:5" in err and "plain name" in err,
         "refused with file:line like a plugin name", err)


def test_numbers_in_environment(tmp):
    conf = project(tmp)
    rc, out, err = st(conf, "--check-config", extra_env={"SELF_TEST_TIMEOUT": "0x10"})
    eq(rc, 2, "SELF_TEST_TIMEOUT=0x10 is refused (not read as 16)", err)
    t.ok("SELF_TEST_TIMEOUT" in err, "naming the variable", err)
    for name, value in (("SELF_TEST_TIMEOUT", "inf"), ("SELF_TEST_WORKERS", "0x4"),
                        ("SELF_TEST_RETRIES", "1e1")):
        rc, out, err = st(conf, "--check-config", extra_env={name: value})
        eq(rc, 2, "%s=%s is refused" % (name, value), err)
    for name, value in (("SELF_TEST_WORKERS", "4 "), ("SELF_TEST_WORKERS", " 4"),
                        ("SELF_TEST_TIMEOUT", "30\n"), ("SELF_TEST_COVERAGE", "true ")):
        rc, out, err = st(conf, "--check-config", extra_env={name: value})
        eq(rc, 0, "%s=%r: surrounding white space is accepted, the same for every variable"
           % (name, value), err)


def test_messages_name_their_source(tmp):
    conf = project(tmp, extra='container_fallback = "maybe";\n')
    rc, out, err = st(conf, "--check-config")
    t.ok(rc == 2 and "selftest.conf:5" in err and "container_fallback" in err,
         "container_fallback = \"maybe\" is reported with file:line", err)
    conf = project(tmp, extra='@include "no-such-include.conf"\n')
    rc, out, err = st(conf, "--check-config")
    t.ok(rc == 2 and "no-such-include.conf" in err, "a missing @include file is named", err)
    conf = project(tmp)
    write(conf, read(conf).replace("workers = 1;", "workers = 99999999999999999999;"))
    rc, out, err = st(conf, "--check-config")
    t.ok(rc == 2 and "'-1'" not in err and "workers" in err and "selftest.conf:4" in err,
         "workers = 99999999999999999999 is not reported as '-1'", err)
    conf = project(tmp, extra='data_dir = "/dev/null";\n')
    rc, out, err = st(conf, "run")
    t.ok(rc == 2 and "data dir /dev/null" in err and "SELF_TEST_LOCK_FILE" not in err,
         "data_dir = \"/dev/null\" is blamed on the data dir, not SELF_TEST_LOCK_FILE", err)
