# SPDX-License-Identifier: MIT
"""Tests of selftest-core's command line and its handling of bad input.

Help and version; unknown commands and options (exit 2, named); then a list of bad inputs,
each of which must give a clear one-line error naming what is wrong and where (file:line,
option, variable, plugin file), exit 2 (usage/config) or 3 (infrastructure), no crash, and
nothing written to the report or data dirs or the project: a missing config file, config
syntax errors, unknown settings, wrong types, unknown plugins, every loader fixture plugin
(tests/fixtures/plugins), nonexistent or outside test paths, bad environment values, a
results file that is not JSON or truncated (a fake interpreter writes it), and a Python
without pytest.  Also: fx-good is listed by `plugins` and `plugins --json`, and a plugin
whose create fails is reported while the run still completes.
"""

import json
import os
import re
import shutil
import stat
import tempfile

import pytest
import st_helpers as sth
from st_helpers import is_eq, ok

# settings a caller's environment could carry into a run (the harness unsets most of them)
SCRUB = sth.SCRUB

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")
FX_DIR = os.environ.get("FIXTURE_PLUGIN_DIR") or os.path.join(
    os.environ.get("top_builddir") or sth.top_srcdir(), "tests", "fixtures", "plugins")

WORK = None  # set by the work fixture
_conf_n = 0


make_writable = sth.make_writable


@pytest.fixture(scope="module", autouse=True)
def work():
    """The module's scratch directory and what lives in it (module globals), removed at the end."""
    global DATA, EMPTY_CONF, OUTSIDE, PROJECT, PROJECT_TREE, REPORTS, RUN_TMP, WORK
    WORK = tempfile.mkdtemp(prefix="st-cli-")
    PROJECT = os.path.join(WORK, "project")
    DATA = os.path.join(WORK, "data")
    REPORTS = os.path.join(WORK, "reports")
    OUTSIDE = os.path.join(WORK, "outside")
    RUN_TMP = os.path.join(WORK, "tmp")  # TMPDIR of every run: its work dirs must go away
    shutil.copytree(sth.fixture("passing"), PROJECT,
                    ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__", "sandbox_data"))
    os.makedirs(OUTSIDE)
    os.makedirs(RUN_TMP)
    with open(os.path.join(OUTSIDE, "test_out.py"), "w") as fh:
        fh.write("def test_out():\n    pass\n")
    EMPTY_CONF = os.path.join(WORK, "empty.conf")
    with open(EMPTY_CONF, "w") as fh:
        fh.write("# empty: defaults, environment and options only\n")
    make_writable(PROJECT)
    PROJECT_TREE = tree(PROJECT)
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)


def env(extra=None):
    e = dict(SCRUB, SANDBOX_REPO_PATH=PROJECT, SANDBOX_DATA_DIR=DATA,
             SELF_TEST_REPORT_DIR=REPORTS, TMPDIR=RUN_TMP)
    e.update(extra or {})
    return sth.base_env(e)


def conf(text):
    """Writes a config file into the work dir; returns its path."""
    global _conf_n
    _conf_n += 1
    path = os.path.join(WORK, "c%02d.conf" % _conf_n)
    with open(path, "w") as fh:
        fh.write(text)
    return path


def script(name, text):
    path = os.path.join(WORK, name)
    with open(path, "w") as fh:
        fh.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def cli(argv, extra_env=None, timeout=120):
    """selftest-core ARGV in the project copy; without -c, an empty config (so no installed
    $(sysconfdir)/selftest/selftest.conf can change the outcome)."""
    argv = list(argv)
    if "-c" not in argv and argv[:1] not in (["--help"], ["-h"], ["--version"]):
        argv = ["-c", EMPTY_CONF] + argv
    return sth.run([BIN] + argv, env=env(extra_env), cwd=PROJECT, timeout=timeout)


def tree(path):
    out = []
    for d, dirs, files in os.walk(path):
        for f in dirs + files:
            out.append(os.path.relpath(os.path.join(d, f), path))
    return sorted(out)


PROJECT_TREE = None  # the project as copied (the work fixture)


def no_crash(label, rc, out, err):
    text = out + err
    ok(rc is not None and 0 <= rc < 128 and
       not re.search(r"Segmentation|core dumped|Aborted|AddressSanitizer|double free", text),
       "%s: no crash (exit %r)" % (label, rc), text[-1500:])


# A lock file may stay behind (flock lock files conventionally do); nothing else may.
LOCK_NAMES = ("self_test.lock",)


def nothing_left(label, check_data=True, check_reports=True):
    """No file in the data dir (but the lock file) or the report dir, no new file in the
    project; then both dirs are removed for the next case."""
    left = []
    for d, check in ((DATA, check_data), (REPORTS, check_reports)):
        if check and os.path.exists(d):
            left += [os.path.join(d, f) for f in tree(d) if f not in LOCK_NAMES]
    now = tree(PROJECT)
    left += ["project: " + f for f in now if f not in PROJECT_TREE and ".pytest_cache" not in f]
    what = " and ".join(n for n, c in (("data", check_data), ("report", check_reports)) if c)
    is_eq(left, [], "%s: nothing left in the %s dirs or the project" % (label, what))
    for d in (DATA, REPORTS):
        shutil.rmtree(d, ignore_errors=True)


def error_lines(err):
    return [line for line in err.splitlines() if line.strip()]


def bad(label, argv, want_rc, must, extra_env=None, where=None):
    """One bad input: exit in want_rc, one error line on stderr containing every string (or
    regexp, when given as re.Pattern) of must, no crash, nothing left behind."""
    rc, out, err = cli(argv, extra_env)
    lines = error_lines(err)
    ok(rc in want_rc, "%s: exit status in %s" % (label, sorted(want_rc)),
       "rc=%r\nstderr: %s\nstdout: %s" % (rc, err[-1500:], out[-500:]))
    is_eq(len(lines), 1, "%s: exactly one error line on stderr" % label)
    text = where if where is not None else err
    missing = [m.pattern if hasattr(m, "pattern") else m for m in must
               if not (m.search(text) if hasattr(m, "pattern") else m in text)]
    ok(not missing, "%s: the message names %s" % (label, ", ".join(
        m.pattern if hasattr(m, "pattern") else repr(m) for m in must)),
       "missing %r in: %s" % (missing, text[-1500:]))
    no_crash(label, rc, out, err)
    nothing_left(label)
    return rc, out, err


# --------------------------------------------------------------------------------------------

def test_help():
    for argv, want in ((["--help"], r"^Usage: selftest-core"), (["-h"], r"^Usage: selftest-core"),
                       (["run", "--help"], r"^Usage: selftest-core .*\brun\b"),
                       (["plugins", "--help"], r"^Usage: selftest-core .*\bplugins\b")):
        rc, out, err = cli(argv)
        label = " ".join(argv)
        is_eq(rc, 0, "%s: exit 0" % label)
        ok(re.search(want, out, re.M), "%s: prints usage on stdout" % label, out[-800:] + err)
    # every command the main help lists has its own --help (docs/spec.md §1)
    rc, out, err = cli(["--help"])
    block = re.search(r"^Commands:\n((?:[ \t]+\S.*\n)+)", out, re.M)
    cmds = re.findall(r"^\s+([a-z][a-z-]*)\b", block.group(1), re.M) if block else []
    ok({"run", "plugins"} <= set(cmds), "--help lists the commands (%s)" % ", ".join(cmds), out)
    for cmd in cmds:
        if cmd in ("run", "plugins"):
            continue
        rc, cout, cerr = cli([cmd, "--help"])
        ok(rc == 0 and re.search(r"^Usage: selftest-core .*\b%s\b" % re.escape(cmd), cout,
                                 re.M),
           "%s --help: exit 0 and its usage" % cmd, "rc=%r\n%s%s" % (rc, cout[-600:], cerr))
    rc, out, err = cli(["run", "--help"])
    for opt in ("--workers", "--pytest-args", "--timeout", "--retries", "--report-dir", "--json"):
        ok(opt in out, "run --help lists %s" % opt, out)
    rc, out, err = cli(["--version"])
    is_eq(rc, 0, "--version: exit 0")
    ok(re.search(r"^selftest-core \d+\.\d+\.\d+", out), "--version: prints the version", out + err)
    m = re.search(r"ABI (\d+)\.(\d+)", out)
    ok(m, "--version: prints the plugin ABI", out)
    nothing_left("help and version")


@pytest.fixture(scope="module")
def core_abi():
    """The plugin ABI (major, minor) --version prints (test_help checks that it does)."""
    rc, out, err = cli(["--version"])
    m = re.search(r"ABI (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (1, 0)


def test_unknown():
    rc, out, err = cli(["frobnicate"])
    is_eq(rc, 2, "unknown command: exit 2")
    ok("frobnicate" in err, "unknown command: the message names it", err)
    no_crash("unknown command", rc, out, err)
    for argv, name in ((["--frobnicate-opt"], "--frobnicate-opt"),
                       (["run", "--frobnicate-opt"], "--frobnicate-opt"),
                       (["plugins", "--frobnicate-opt"], "--frobnicate-opt"),
                       (["run", "--workers"], "--workers")):
        label = "%s" % " ".join(argv)
        rc, out, err = cli(argv)
        is_eq(rc, 2, "%s: exit 2" % label)
        ok(name in err, "%s: the message names %s" % (label, name), err)
        no_crash(label, rc, out, err)
    rc, out, err = cli([])
    is_eq(rc, 2, "no command: exit 2")
    nothing_left("unknown command/options")


def test_config_errors():
    missing = os.path.join(WORK, "no-such-dir", "selftest.conf")
    bad("missing config file", ["-c", missing, "run"], {2}, [missing])
    for lineno in (3, 5):
        lines = ["# selftest config", "workers = 2;", "retries = 0;", "timeout = 30;",
                 "coverage = false;"]
        lines[lineno - 1] = "timeout = = 5;"
        c = conf("\n".join(lines) + "\n")
        bad("config syntax error on line %d" % lineno, ["-c", c, "run"], {2},
            ["%s:%d" % (c, lineno)])
    c = conf("# selftest config\nworkers = 2;\n\nfrobnicate_level = 3;\nretries = 0;\n")
    bad("unknown setting", ["-c", c, "run"], {2}, ["%s:4" % c, "frobnicate_level"])
    c = conf("retries = 0;\nworkers = \"x\";\n")
    bad("workers = \"x\"", ["-c", c, "run"], {2}, ["%s:2" % c, "workers"])
    c = conf("retries = 0;\ntimeout = \"soon\";\n")
    bad("timeout = \"soon\"", ["-c", c, "run"], {2}, ["%s:2" % c, "timeout"])
    c = conf("retries = 0;\ncoverage = 3;\n")
    bad("coverage = 3", ["-c", c, "run"], {2}, ["%s:2" % c, "coverage"])
    c = conf("retries = 0;\n\nplugins = ({kind=\"exporter\"; name=\"nope\";});\n")
    bad("unknown plugin 'nope' (run)", ["-c", c, "run"], {2, 3}, ["'nope'", "%s:3" % c])
    bad("unknown plugin 'nope' (plugins)", ["-c", c, "plugins"], {2, 3}, ["'nope'", "%s:3" % c])


def fx_file(name):
    for ext in (".la", ".so"):
        if os.path.exists(os.path.join(FX_DIR, name + ext)):
            return os.path.join(FX_DIR, name + ext)
    return None


def test_loader_fixtures(core_abi):
    core = "%d.%d" % core_abi
    cases = [
        ("fx-major", ["2.0", core]),
        ("fx-minor", ["1.99", core]),
        ("fx-small", ["descriptor"]),
        ("fx-name", ["somebody-else", "fx-name"]),
        ("fx-kind", ["integrator", "exporter"]),
        ("fx-noentry", [re.compile(r"entry", re.I)]),
        ("fx-decline", ["declined"]),
        ("fx-missing-op", ["end_run"]),
    ]
    for name, must in cases:
        label = "loader fixture %s" % name
        if not fx_file(name):
            ok(False, "%s: fixture plugin is built in %s" % (label, FX_DIR))
            continue
        c = conf("plugins = ({kind=\"exporter\"; name=\"%s\";});\n" % name)
        bad(label, ["-c", c, "plugins"], {2, 3},
            must + [name, re.compile(re.escape(os.path.join(FX_DIR, name)) + r"\.(la|so)")])


def test_fx_good(core_abi):
    if not fx_file("fx-good"):
        ok(False, "fx-good is built in %s" % FX_DIR)
        return
    c = conf("plugins = ({kind=\"exporter\"; name=\"fx-good\";});\n")
    rc, out, err = cli(["-c", c, "plugins"])
    is_eq(rc, 0, "plugins with fx-good: exit 0")
    rows = [line.split() for line in out.splitlines() if line.strip()]
    good = [r for r in rows if len(r) >= 5 and r[1] == "fx-good"]
    ok(len(good) == 1 and good[0][0] == "exporter" and good[0][2] and
       good[0][3] == "%d.%d" % core_abi and os.path.realpath(good[0][4]) ==
       os.path.realpath(fx_file("fx-good")),
       "plugins lists fx-good: kind, name, version, ABI, file", out + err)
    ok(rows and [w.upper() for w in rows[0][:5]] == ["KIND", "NAME", "VERSION", "ABI", "FILE"],
       "plugins prints a KIND NAME VERSION ABI FILE header", out)
    ok(any(r[:1] == ["runtime"] for r in rows), "plugins lists the runtime too", out)
    rc, out, err = cli(["-c", c, "plugins", "--json"])
    is_eq(rc, 0, "plugins --json with fx-good: exit 0")
    try:
        data = json.loads(out)
    except ValueError as e:
        data = e
    ok(isinstance(data, list), "plugins --json prints a JSON list", out + err)
    ent = [d for d in data if isinstance(d, dict) and d.get("name") == "fx-good"] \
        if isinstance(data, list) else []
    ok(len(ent) == 1 and ent[0].get("kind") == "exporter" and ent[0].get("version") and
       (ent[0].get("abi_major"), ent[0].get("abi_minor")) == core_abi and
       os.path.realpath(ent[0].get("file") or "") == os.path.realpath(fx_file("fx-good")),
       "plugins --json has fx-good with kind, version, abi, file", out)
    nothing_left("plugins listing")


def test_create_fails():
    """A plugin that refuses its settings (create returns ST_ERR_INVALID) is a configuration
    error for `run` as for --check-config: named, exit 2, no test run."""
    if not fx_file("fx-create-fails"):
        ok(False, "fx-create-fails is built in %s" % FX_DIR)
        return
    c = conf("plugins = ({kind=\"exporter\"; name=\"fx-create-fails\";});\n")
    rc, out, err = cli(["-c", c, "run", "--json", "--retries", "0", "--workers", "1", PROJECT])
    label = "run with fx-create-fails"
    ok("fx-create-fails" in err, "%s: the failure is reported, naming the plugin" % label, err)
    is_eq(rc, 2, "%s: exit 2 (invalid plugin settings are a configuration error)" % label)
    ok('"event":"results"' not in out and '"event": "results"' not in out,
       "%s: no test is run" % label, out[-800:])
    no_crash(label, rc, out, err)
    nothing_left(label, check_data=False)  # earlier checks ran: metrics.db may be there


def test_paths_and_env():
    run = ["run", "--retries", "0", "--workers", "1"]
    nope = os.path.join(PROJECT, "tests", "no_such_test.py")
    bad("nonexistent test path", run + [nope], {2}, [nope])
    bad("test path outside the project root", run + [OUTSIDE], {2}, [OUTSIDE])
    bad("test path '..'", run + [".."], {2}, ["'..'"])
    link = os.path.join(PROJECT, "escape")
    os.symlink(OUTSIDE, link)
    PROJECT_TREE.append("escape")
    bad("test path symlinked out of the root", run + [link], {2}, [link])
    for var, val in (("SELF_TEST_WORKERS", "abc"), ("SELF_TEST_TIMEOUT", "-1"),
                     ("SELF_TEST_INCLUDE_ORPHANS", "maybe"), ("SELF_TEST_RETRIES", "many"),
                     ("SELF_TEST_WORKERS", "0")):
        bad("%s=%s" % (var, val), run + [PROJECT], {2}, [var, val], extra_env={var: val})
    for opt, val in (("--workers", "abc"), ("--timeout", "-1"), ("--retries", "x")):
        bad("%s %s" % (opt, val), ["run", opt, val, PROJECT], {2}, [opt, val])


FAKEPY = r"""#!/bin/sh
# fake interpreter: the preflight (-c CODE) goes to the real python3, "-m pytest" writes a
# broken results file
if [ "$1" = "-c" ]; then exec /usr/bin/python3 "$@"; fi
printf '%%s' "$SELF_TEST_RESULTS_FILE" > "%(seen)s"
START='{"event":"start","pid":1,"argv":["tests"],"workers":0,"python":"3.11.2","pytest":"7.2.1"}'
TEST='{"event":"test","nodeid":"tests/t.py::t","file":"tests/t.py","outcome":"passed","phase":"call","duration":0.1,"excerpt":null}'
case "$FAKE_MODE" in
  nonjson) printf '%%s\n%%s\nthis is not JSON at all\n' "$START" "$TEST" > "$SELF_TEST_RESULTS_FILE" ;;
  trunc)   printf '%%s\n%%s\n{"event":"test","nodeid":"tests/t.py::u","fi' "$START" "$TEST" > "$SELF_TEST_RESULTS_FILE" ;;
esac
exit "$FAKE_RC"
"""


def test_results_file():
    seen = os.path.join(WORK, "seen-results-path")
    fake = script("fakepy", FAKEPY % {"seen": seen})
    c = conf("python = \"%s\";\n" % fake)
    for mode, what in (("nonjson", "a line that is not JSON"),
                       ("trunc", "a truncated JSON line without newline")):
        for code in (0, 1):
            label = "results file with %s, pytest exit %d" % (what, code)
            if os.path.exists(seen):
                os.unlink(seen)
            rc, out, err = cli(["-c", c, "run", "--retries", "0", "--workers", "1", PROJECT],
                               {"FAKE_MODE": mode, "FAKE_RC": str(code)})
            is_eq(rc, 3, "%s: exit 3 (infrastructure)" % label)
            path = open(seen).read() if os.path.exists(seen) else None
            ok(path and ("%s:3" % path) in out + err,
               "%s: the message names the results file and line 3" % label,
               "results file %r\nstdout: %s\nstderr: %s" % (path, out[-1200:], err[-800:]))
            no_crash(label, rc, out, err)
            # the run failed: a report (and the run in metrics.db) is expected, no temp file
            files = tree(REPORTS) if os.path.isdir(REPORTS) else []
            ok(any(re.fullmatch(r"report_\d{8}_\d{6}\.json", f) for f in files),
               "%s: the failed run wrote its report" % label, repr(files))
            is_eq([f for f in files if ".tmp." in f], [],
                  "%s: no temp file left in the report dir" % label)
            nothing_left(label, check_data=False, check_reports=False)


def test_no_pytest():
    nopy = script("nopytest-python", "#!/bin/sh\nexec /usr/bin/python3 -S \"$@\"\n")
    if sth.run([nopy, "-c", "import pytest"])[0] == 0:
        pytest.skip("pytest is importable even with -S")
    c = conf("python = \"%s\";\n" % nopy)
    bad("python without pytest", ["-c", c, "run", "--retries", "0", PROJECT], {3},
        [nopy, re.compile(r"cannot import pytest|pytest cannot be imported|no module named "
                          r"'?pytest", re.I)])
    bad("python without pytest (SELF_TEST_PYTHON)", ["run", "--retries", "0", PROJECT], {3},
        [nopy, re.compile(r"cannot import pytest|pytest cannot be imported|no module named "
                          r"'?pytest", re.I)], extra_env={"SELF_TEST_PYTHON": nopy})
    missing = os.path.join(WORK, "no-such-python3")
    bad("nonexistent interpreter", ["run", "--retries", "0", PROJECT], {2, 3}, [missing],
        extra_env={"SELF_TEST_PYTHON": missing})


def test_engine_address():
    """--docker-host reaches the container runtime (no engine needed: a socket that is not
    there, with container_fallback = "fail")."""
    sock = os.path.join(WORK, "no-engine.sock")
    c = conf('project_root = "%s";\ncontainer_fallback = "fail";\n' % PROJECT)
    for runtime in ("docker", "podman"):
        bad("--docker-host to a missing socket (%s)" % runtime,
            ["-c", c, "run", "--retries", "0", "--container-runtime", runtime,
             "--docker-host", "unix://" + sock, PROJECT], {3}, [sock, "no socket"])


def test_config_check():
    """--check-config: the configuration and every plugin's settings, nothing started."""
    good = conf('project_root = "%s";\npython = "%s";\n' % (PROJECT, sth.PYTHON))
    rc, out, err = cli(["-c", good, "--check-config"])
    is_eq(rc, 0, "--check-config: a valid configuration exits 0")
    ok("configuration OK" in out, "--check-config says so", out + err)
    broken = conf('project_root = "%s";\nhost = {\n  sandbox_memory_mb = 10;\n  bogus = 1;\n};\n'
                  % PROJECT)
    bad("--check-config with an unknown runtime setting", ["-c", broken, "--check-config"], {2},
        [broken + ":4", "bogus"])


def test_no_work_dir_left():
    """Last: no run of the tests above left its work dir in $TMPDIR."""
    is_eq(sorted(f for f in os.listdir(RUN_TMP) if f.startswith("selftest")), [],
          "no run left its work dir (selftest-*) in $TMPDIR")
