# SPDX-License-Identifier: MIT
"""selftest-core over a real-world suite, Debian's python3-networkx.

The installed networkx package (with its tests) is copied into a temp dir, so nothing is
written into /usr, and four of its test directories are run once by
`selftest-core run --workers 2 --retries 0 --json` (one batch each) and once by
`python3 -m pytest -p no:cacheprovider` per directory (summed).  The passed, failed, skipped,
xfailed and error counts must be equal, per directory and in total.  Both runs use the copy
as project root, working directory and rootdir; a guard test added to the copy fails if
`networkx` is imported from anywhere else.

If python3-networkx (with its tests) is missing the test is skipped: tests install nothing
(tools/test-all installs it).
"""

import json
import os
import shutil
import time

import pytest
import st_helpers as sth
from st_helpers import is_eq, note, ok

# 10-40 s of tests in all on Debian 12 (measured: flow ~9 s, classes ~13 s, generators ~5 s,
# utils ~1 s with one CPU).
TEST_DIRS = ["networkx/algorithms/flow/tests", "networkx/classes/tests",
             "networkx/generators/tests", "networkx/utils/tests"]
COUNT_KEYS = ("passed", "failed", "skipped", "xfailed", "errors")
GUARD = "networkx/utils/tests/test_zz_selftest_origin.py"

# settings a caller's environment could carry into a run (the harness unsets most of them)
SCRUB = sth.SCRUB

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")


make_writable = sth.make_writable

def networkx_dir():
    rc, out, _ = sth.run([sth.PYTHON, "-c",
                          "import networkx, os; print(os.path.dirname(networkx.__file__))"],
                         env=sth.base_env(), cwd="/")
    d = out.strip() if rc == 0 else None
    if d and all(os.path.isdir(os.path.join(d, t.split("/", 1)[1])) for t in TEST_DIRS):
        return d
    return None


def expected_counts(summ):
    return {"passed": summ["passed"] + summ["xpassed"],
            "failed": summ["failed"] + summ["errors"],
            "skipped": summ["skipped"], "xfailed": summ["xfailed"], "errors": summ["errors"]}


def counts_of(d):
    return {k: d.get(k) for k in COUNT_KEYS} if isinstance(d, dict) else None


def test_networkx_suite_through_selftest(workdir):
    src = networkx_dir()
    if not src:
        pytest.skip("python3-networkx (with its tests) is not installed")
    src_before = sorted(os.listdir(src))
    work = workdir
    root = os.path.join(work, "nx")
    copy = os.path.join(root, "networkx")
    shutil.copytree(src, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    make_writable(root)
    with open(os.path.join(root, GUARD), "w") as fh:
        fh.write("import os\n\nimport networkx\n\n\ndef test_networkx_is_the_copy():\n"
                 "    assert os.path.dirname(os.path.abspath(networkx.__file__)) == %r\n"
                 % copy)
    conf = os.path.join(work, "empty.conf")
    with open(conf, "w") as fh:
        fh.write("# defaults\n")
    note("networkx from %s copied to %s" % (src, copy))

    t0 = time.monotonic()
    rc, out, err = sth.run(
        [BIN, "-c", conf, "run", "--workers", "2", "--retries", "0", "--json",
         "--timeout", "600"] + TEST_DIRS,
        env=sth.base_env(dict(SCRUB, SANDBOX_REPO_PATH=root)), cwd=root, timeout=900)
    note("selftest-core: exit %r in %.1f s" % (rc, time.monotonic() - t0))
    results = None
    try:
        results = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        pass
    if not ok(isinstance(results, dict) and results.get("event") == "results",
              "selftest-core printed its results line",
              "rc=%r\nstderr: %s\nstdout: %s" % (rc, err[-2000:], out[-1000:])):
        return

    total = dict.fromkeys(COUNT_KEYS, 0)
    rcs = []
    sm = results.get("suite_metrics") or {}
    t0 = time.monotonic()
    for d in TEST_DIRS:
        pt = sth.pytest_summary([d], ["--rootdir=%s" % root], cwd=root, timeout=600)
        rcs.append(pt["exitcode"])
        if not ok(pt["line"] is not None, "pytest %s printed a summary (%s)" % (d, pt["line"]),
                  pt["stdout"][-1500:] + pt["stderr"][-500:]):
            continue
        exp = expected_counts(pt)
        for k in COUNT_KEYS:
            total[k] += exp[k]
        is_eq(counts_of(sm.get(d)), exp, "%s: counts equal pytest's '%s'" % (d, pt["line"]))
    note("pytest per directory: %.1f s" % (time.monotonic() - t0))

    ok(total["passed"] > 100, "(sanity) pytest ran a real number of tests (%d passed)"
       % total["passed"])
    is_eq(counts_of(results), total,
          "run totals (passed, failed, skipped, xfailed, errors) equal pytest's summed")
    is_eq(sorted(results.get("workflow_tests") or []), sorted(TEST_DIRS),
          "one batch per test directory")
    guard = [t for t in results.get("tests") or [] if t.get("file") == GUARD]
    ok(len(guard) == 1 and guard[0].get("outcome") == "passed",
       "selftest-core's run imported networkx from the copy", repr(guard))
    want_rc = 0 if all(c == 0 for c in rcs) else 1
    is_eq(rc, want_rc, "exit status %d (pytest exits %r)" % (want_rc, rcs))
    is_eq(results.get("exit_status"), rc, "results.exit_status equals the exit status")
    pg = sth.pytest_summary([GUARD], ["--rootdir=%s" % root], cwd=root)
    ok(pg["exitcode"] == 0 and pg["passed"] == 1,
       "pytest's run imports networkx from the copy too", pg["stdout"][-1500:])
    is_eq(sorted(os.listdir(src)), src_before,
          "nothing was written into the installed networkx (%s)" % src)

