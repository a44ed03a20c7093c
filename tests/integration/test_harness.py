# SPDX-License-Identifier: MIT
"""The integration tests' own harness: st_helpers (summary parsing, run(), tmpdir(),
pytest_summary on real fixtures, the soft checks, the environment defaults), conftest.py's
check fixture and tap_report.py's TAP, each run on a small test file by a real pytest."""

import os
import shutil
import subprocess
import sys

import pytest
import st_helpers as sth
from st_helpers import is_eq, ok

HERE = os.path.dirname(os.path.abspath(__file__))


def counts(res):
    return {k: res[k] for k in sth.SUMMARY_KEYS}


def expect(**kw):
    d = dict.fromkeys(sth.SUMMARY_KEYS, 0)
    d.update(kw)
    return d


# --------------------------------------------------------------------------------------------
# parse_summary on canned lines

CASES = [
    ("==== 4 passed, 1 skipped, 1 xfailed, 1 xpassed in 0.03s ====",
     expect(passed=4, skipped=1, xfailed=1, xpassed=1)),
    ("==== 1 failed, 2 passed, 3 errors in 0.02s ====",
     expect(failed=1, passed=2, errors=3)),
    ("Interrupted: 1 error during collection\n==== 1 error in 0.11s ====",
     expect(errors=1)),
    ("==== 2 errors in 1.50s ====", expect(errors=2)),
    ("1 passed, 1 warning in 0.01s", expect(passed=1)),
    ("==== 2 passed, 5 deselected in 65.20s (0:01:05) ====", expect(passed=2)),
    ("==== no tests ran in 0.00s ====", expect()),
]


@pytest.mark.parametrize("text,want", CASES, ids=[c[0].splitlines()[-1] for c in CASES])
def test_parse_summary(text, want):
    got = sth.parse_summary("noise\n" + text + "\n")
    is_eq(counts(got), want, "parse_summary: %s" % text.splitlines()[-1])
    ok(got["line"] is not None, "parse_summary finds the line: %s" % text.splitlines()[-1])


def test_parse_summary_deselected_and_crash():
    got = sth.parse_summary("==== 2 passed, 5 deselected in 0.2s ====")
    is_eq(got["deselected"], 5, "parse_summary counts deselected")
    got = sth.parse_summary("tests/test_exit3.py .")
    ok(got["line"] is None, "parse_summary: no summary line after a crash")


# --------------------------------------------------------------------------------------------
# run() and tmpdir()

def test_run():
    rc, out, err = sth.run([sth.PYTHON, "-c", "import sys; print('hi'); sys.exit(7)"])
    is_eq((rc, out), (7, "hi\n"), "run returns status and stdout")
    rc, out, err = sth.run([sth.PYTHON, "-c",
                            "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"])
    is_eq(rc, -15, "run reports a signal as -SIG")
    rc, out, err = sth.run([sth.PYTHON, "-c", "import time; time.sleep(30)"], timeout=1)
    is_eq(rc, None, "run returns None on timeout")


def test_tmpdir():
    with sth.tmpdir() as d:
        ok(os.path.isdir(d), "tmpdir exists inside the context")
    ok(not os.path.exists(d), "tmpdir removed afterwards")


# --------------------------------------------------------------------------------------------
# pytest_summary on real fixtures

def test_pytest_summary_on_fixtures():
    if not os.path.exists(sth.PYTHON):
        pytest.skip("no %s" % sth.PYTHON)
    res = sth.pytest_summary([], [], cwd=sth.fixture("passing"))
    is_eq(counts(res), expect(passed=4, skipped=1, xfailed=1, xpassed=1),
          "pytest_summary: passing fixture counts")
    is_eq(res["exitcode"], 0, "pytest_summary: passing fixture exit 0")

    res = sth.pytest_summary(["tests"], ["-q"], cwd=sth.fixture("fixture_error"))
    is_eq(counts(res), expect(failed=1, passed=2, errors=3),
          "pytest_summary: fixture_error counts (-q form)")
    is_eq(res["exitcode"], 1, "pytest_summary: fixture_error exit 1")

    res = sth.pytest_summary([], [], cwd=sth.fixture("empty"))
    ok(res["line"] is not None and "no tests ran" in res["line"],
       "pytest_summary: empty fixture says no tests ran", res["stdout"][-500:])
    is_eq(res["exitcode"], 5, "pytest_summary: empty fixture exit 5")


# --------------------------------------------------------------------------------------------
# the soft checks

def test_checker_records_every_check():
    c = sth.Checker()
    is_eq(c.ok(True, "fine"), True, "ok returns True for a check that holds")
    is_eq(c.ok(0, "zero  is\nfalse", "why it failed"), False,
          "ok returns False for one that fails")
    is_eq(c.is_eq([1], [2], "lists differ"), False, "is_eq returns False when they differ")
    c.skip("later", "no tool")
    is_eq(c.passed, ["fine"], "the passed check is recorded")
    is_eq([name for name, _ in c.failed], ["zero is false", "lists differ"],
          "both failed checks are recorded, in order, names on one line")
    report = c.failure_report()
    ok(report.startswith("2 of 3 checks failed:"), "the report counts the failures", report)
    ok("FAILED: zero is false" in report and "why it failed" in report,
       "the report names a failed check with its diagnostic", report)
    ok("got:      [1]" in report and "expected: [2]" in report,
       "is_eq's diagnostic shows got and expected", report)
    is_eq(c.skip_reason(), "later: no tool", "the skipped check and its reason")
    is_eq(sth.Checker().failure_report(), "", "no failure, no report")


def test_checks_outside_a_test_are_refused():
    saved = sth.current()
    sth.set_current(None)
    try:
        with pytest.raises(RuntimeError):
            sth.ok(True, "outside")
    finally:
        sth.set_current(saved)
    ok(sth.current() is saved, "the test's checker is back")


# --------------------------------------------------------------------------------------------
# the environment defaults (a run by hand sees what make check sets)

def test_default_environment_of_a_vpath_build(workdir, monkeypatch):
    build = os.path.join(workdir, "build")
    os.makedirs(build)
    for name in ("config.status", "selftest-core"):
        with open(os.path.join(build, name), "w"):
            pass
    monkeypatch.chdir(build)
    monkeypatch.delenv("top_builddir", raising=False)
    monkeypatch.delenv("top_srcdir", raising=False)
    env = sth.default_environment()
    src = os.path.dirname(os.path.dirname(HERE))
    is_eq(env["top_srcdir"], src, "the source tree is two levels above the tests")
    is_eq(env["top_builddir"], build, "a build directory as the working directory is the build tree")
    is_eq(env["SELFTEST_BIN"], os.path.join(build, "selftest-core"), "the binary of the build tree")
    is_eq(env["SELF_TEST_PLUGIN_PATH"].split(":"),
          [os.path.join(build, "plugins"), os.path.join(build, "tests", "fixtures", "plugins")],
          "the plugins and the fixture plugins of the build tree")
    is_eq(env["SELF_TEST_SUPPORT_DIR"], os.path.join(src, "python"),
          "the support files of the source tree")
    monkeypatch.chdir(workdir)
    is_eq(sth.default_environment()["top_builddir"], src,
          "elsewhere the build tree is the source tree (an in-tree build)")


# --------------------------------------------------------------------------------------------
# conftest.py and tap_report.py on a small test file, through a real pytest

DEMO = '''import pytest
import st_helpers as t


def test_pass():
    t.ok(True, "fine")


def test_soft():
    t.ok(False, "first check", "first diagnostic")
    t.is_eq(1, 2, "second check")
    t.ok(True, "third check")


def test_skip():
    pytest.skip("no frobnicator")


def test_partial_skip():
    t.ok(True, "ran")
    t.skip("the other half", "no widget")


def test_raises_after_a_failed_check():
    t.ok(False, "before the exception")
    raise ValueError("boom")


def test_bail_out():
    t.bail_out("cannot go on")
    t.ok(True, "never reached")


def test_needs_the_binary(selftest_bin):
    t.ok(True, "ran with the binary")
'''


@pytest.fixture
def demo(workdir):
    """A directory with the harness files and DEMO as test_demo.py."""
    for name in ("conftest.py", "st_helpers.py", "tap_report.py", "pytest.ini"):
        shutil.copy(os.path.join(HERE, name), workdir)
    with open(os.path.join(workdir, "test_demo.py"), "w") as fh:
        fh.write(DEMO)
    return workdir


def run_pytest(cwd, *args, env=None):
    e = sth.base_env(dict({"SELFTEST_BIN": "/nonexistent/selftest-core"}, **(env or {})))
    p = subprocess.run([sys.executable, "-B", "-m", "pytest"] + list(args), cwd=cwd, env=e,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def test_tap_report(demo):
    rc, out, err = run_pytest(demo, "--tap", "test_demo.py")
    lines = out.splitlines()
    is_eq(rc, 0, "--tap: exit 0 when tests failed (the not ok lines count them)")
    bad = [l for l in lines if not l.startswith(("ok ", "not ok ", "# ", "1.."))]
    is_eq(bad, [], "--tap: stdout is TAP only (pytest's report goes to stderr)")
    results = [l for l in lines if l.startswith(("ok ", "not ok "))]
    is_eq(results, [
        "ok 1 - test_demo.py::test_pass",
        "not ok 2 - test_demo.py::test_soft",
        "ok 3 - test_demo.py::test_skip # SKIP no frobnicator",
        "ok 4 - test_demo.py::test_partial_skip # SKIP 1 checks passed; skipped the other half: "
        "no widget",
        "not ok 5 - test_demo.py::test_raises_after_a_failed_check",
        "not ok 6 - test_demo.py::test_bail_out",
        "ok 7 - test_demo.py::test_needs_the_binary # SKIP selftest binary "
        "/nonexistent/selftest-core is not built (make, or set SELFTEST_BIN)",
    ], "one TAP line per test: passed, failed, skipped")
    is_eq(lines[-1], "1..7", "the plan comes last")
    text = "\n".join(lines)
    soft = text.split("not ok 2 - ")[1].split("\nok 3 - ")[0]
    ok("#   FAILED: first check" in soft and "#       first diagnostic" in soft and
       "#   FAILED: second check" in soft and "#       expected: 2" in soft and
       "third check" not in soft,
       "a failed test's diagnostics list every failed check with its diagnostic", soft)
    raised = text.split("not ok 5 - ")[1].split("\nnot ok 6 - ")[0]
    ok("ValueError: boom" in raised and "FAILED: before the exception" in raised,
       "an exception after a failed check: both are reported", raised)
    ok("cannot go on" in text.split("not ok 6 - ")[1], "bail_out's reason is reported", text)
    ok("2 of 3 checks failed" in err and "Traceback" not in out,
       "pytest's own report (the log) is on stderr", err[-2000:])


def test_tap_report_edge_cases(demo):
    rc, out, err = run_pytest(demo, "--tap", "test_demo.py", "-k", "nothing_matches")
    is_eq((rc, out.splitlines()), (0, ["1..0 # SKIP no test selected"]),
          "nothing selected: an empty plan that says so, exit 0")
    rc, out, err = run_pytest(demo, "--tap", "test_demo.py", "-k", "test_pass")
    is_eq((rc, out.splitlines()), (0, ["ok 1 - test_demo.py::test_pass", "1..1"]),
          "-k selects one test")
    with open(os.path.join(demo, "test_broken.py"), "w") as fh:
        fh.write("import no_such_module_here\n")
    rc, out, err = run_pytest(demo, "--tap", "test_broken.py")
    ok(rc != 0 and out.startswith("not ok 1 - test_broken.py (collection)") and
       "no_such_module_here" in out and out.splitlines()[-1] == "1..1",
       "a collection error is a not ok line and a failed exit status", "rc=%r\n%s" % (rc, out))


def test_without_tap(demo):
    rc, out, err = run_pytest(demo, "test_demo.py")
    is_eq(rc, 1, "without --tap: pytest's exit status 1 when tests failed")
    summ = sth.parse_summary(out)
    is_eq(counts(summ), expect(passed=1, failed=3, skipped=3),
          "without --tap: pytest's counts (a failed soft check fails its test)")
    ok("ok 1 - " not in out, "without --tap: no TAP", out[-1000:])
