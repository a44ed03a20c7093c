# SPDX-License-Identifier: MIT
"""Self-check of taplib: summary parsing, run(), and pytest_summary on real fixtures."""

import os
import sys

import pytest
import st_helpers as sth
from st_helpers import is_eq, ok, skip


def counts(res):
    return {k: res[k] for k in sth.SUMMARY_KEYS}


def expect(**kw):
    d = dict.fromkeys(sth.SUMMARY_KEYS, 0)
    d.update(kw)
    return d


# --- parse_summary on canned lines
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
for text, want in CASES:
    got = sth.parse_summary("noise\n" + text + "\n")
    is_eq(counts(got), want, "parse_summary: %s" % text.splitlines()[-1])
    ok(got["line"] is not None, "parse_summary finds the line: %s" % text.splitlines()[-1])
got = sth.parse_summary("==== 2 passed, 5 deselected in 0.2s ====")
is_eq(got["deselected"], 5, "parse_summary counts deselected")
got = sth.parse_summary("tests/test_exit3.py .")
ok(got["line"] is None, "parse_summary: no summary line after a crash")

# --- run()
rc, out, err = sth.run([sth.PYTHON, "-c", "import sys; print('hi'); sys.exit(7)"])
is_eq((rc, out), (7, "hi\n"), "run returns status and stdout")
rc, out, err = sth.run([sth.PYTHON, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"])
is_eq(rc, -15, "run reports a signal as -SIG")
rc, out, err = sth.run([sth.PYTHON, "-c", "import time; time.sleep(30)"], timeout=1)
is_eq(rc, None, "run returns None on timeout")

# --- tmpdir()
with sth.tmpdir() as d:
    ok(os.path.isdir(d), "tmpdir exists inside the context")
ok(not os.path.exists(d), "tmpdir removed afterwards")

# --- pytest_summary on real fixtures
if not os.path.exists(sth.PYTHON):
    skip("pytest_summary on fixtures", "no %s" % sth.PYTHON)
else:
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

