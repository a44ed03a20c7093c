# SPDX-License-Identifier: MIT
"""Orphan checks through the real binary and the host runtime (docs/spec.md §8.1, issue 4): a module
given on the command line is imported in the sandbox by its dotted name (by path when it has
none); passing, raising, hanging, file-writing and forking modules (one that leaves a process running
fails); same-named modules in two
packages stay apart; a failed check is reported, not fatal, unless fail_on_orphans."""
import json
import os
import sqlite3
import time

import pytest
import st_helpers as t


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def run(root, *args, conf_extra=""):
    conf = os.path.join(root, "selftest.conf")
    with open(conf, "w") as f:
        f.write('project_root = ".";\npython = "%s";\nretries = 0;\nplugins = ();\n%s'
                % (t.PYTHON, conf_extra))
    rc, out, err = t.run([t.selftest_bin(), "-c", conf, "run", "--json"] + list(args),
                         env=t.base_env(), timeout=120, cwd=root)
    lines = [l for l in out.splitlines() if l.startswith("{")]
    return rc, (json.loads(lines[-1]) if lines else {}), lines, err


pytestmark = pytest.mark.usefixtures("selftest_bin")


def test_orphan_checks(workdir):
    root = workdir
    write(root, "pkg_a/__init__.py", "")
    write(root, "pkg_b/__init__.py", "")
    write(root, "pkg_a/common.py", "VALUE = 1\n")
    write(root, "pkg_b/common.py", "VALUE = 2\n")
    write(root, "raises.py", "import json\nraise RuntimeError('boom at import')\n")
    write(root, "hangs.py", "import time\ntime.sleep(600)\n")
    marker = os.path.join(root, "escaped.txt")
    write(root, "writes.py", "open('written_here.txt', 'w').write('x')\n")
    write(root, "forks.py", "import os, time\nif os.fork() == 0:\n    time.sleep(600)\n"
                            "    os._exit(0)\n")
    write(root, "my-script.py", "X = 1\n")
    rc, res, lines, err = run(root, "pkg_a/common.py", "pkg_b/common.py", "raises.py",
                              "writes.py", "forks.py", "my-script.py")
    checks = res.get("orphan_checks", {})
    t.is_eq(rc, 0, "a failed orphan check is reported, not fatal")
    t.is_eq(sorted(res.get("orphan_passed_modules", [])),
            ["my-script.py", "pkg_a/common.py", "pkg_b/common.py", "writes.py"],
            "passing modules (imports that finish without error, leaving nothing running)")
    t.is_eq(sorted(res.get("orphan_failed_modules")), ["forks.py", "raises.py"],
            "a raising import fails, and so does one that leaves a child running")
    t.is_eq(res.get("orphan_total"), 6, "orphan_total counts every check")
    t.is_eq(res.get("orphan_failed"), 2, "orphan_failed counts the failures")
    t.is_eq(checks.get("pkg_a/common.py", {}).get("module"), "pkg_a.common",
            "imported by dotted name")
    t.is_eq(checks.get("my-script.py", {}).get("module"), None,
            "a file name that is no identifier is run by path")
    t.ok("pkg_b/common.py" in checks and "pkg_a/common.py" in checks,
         "same-named modules in two packages stay two entries")
    t.ok(not os.path.exists(os.path.join(root, "written_here.txt")),
         "a module writing files at import writes into the sandbox dir, not the project")
    t.ok(len([l for l in lines if '"event":"orphan"' in l]) == 6,
         "--json streams one line per orphan check")
    db = sqlite3.connect(os.path.join(root, "sandbox_data", "metrics.db"))
    try:
        rows = sorted(db.execute("SELECT path, classification, outcome FROM orphan_outcomes"))
    finally:
        db.close()
    t.is_eq(rows, [("forks.py", "candidate", "failed"), ("my-script.py", "candidate", "passed"),
                   ("pkg_a/common.py", "candidate", "passed"),
                   ("pkg_b/common.py", "candidate", "passed"),
                   ("raises.py", "candidate", "failed"), ("writes.py", "candidate", "passed")],
            "metrics.db's orphan_outcomes holds each check's verdict")
    time.sleep(0.3)
    left = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if b"forks.py" in open("/proc/%s/cmdline" % pid, "rb").read() or \
                   root.encode() in open("/proc/%s/environ" % pid, "rb").read():
                    left.append(pid)
            except OSError:
                pass
    t.is_eq(left, [], "a module that forks at import leaves no process behind")

    rc, res, lines, err = run(root, "hangs.py", "--timeout", "3")
    t.is_eq(res.get("orphan_failed_modules"), ["hangs.py"], "a hanging import fails")
    reason = res.get("orphan_checks", {}).get("hangs.py", {}).get("reason") or ""
    t.ok("timeout" in reason, "its reason is the timeout", reason)
    t.ok("in the import at hangs.py:2" in reason, "its reason names where the import hung",
         reason)

    rc, res, lines, err = run(root, "raises.py", conf_extra="fail_on_orphans = true;\n")
    t.is_eq(rc, 1, "fail_on_orphans = true makes a failed check fail the run")


def test_clean_orphans(workdir):
    """--clean-orphans, end to end with the bundled discovery and integrator plugins"""
    root = workdir
    write(root, "tests/test_a.py", "def test_a():\n    assert True\n")
    write(root, "good.py", "import helper\nVALUE = helper.X\n")
    write(root, "helper.py", "X = 1\n")
    write(root, "bad.py", "raise RuntimeError('no')\n")
    conf = os.path.join(root, "selftest.conf")
    with open(conf, "w") as f:
        f.write('project_root = ".";\npython = "%s";\nretries = 0;\n' % t.PYTHON)
    cache = os.path.join(root, "sandbox_data", "orphan_modules.json")

    def cycle(*extra):
        rc, out, err = t.run([t.selftest_bin(), "-c", conf, "run", "--json"] + list(extra),
                             env=t.base_env({"SELF_TEST_DISABLE_AUTO_INTEGRATION": None}),
                             timeout=120, cwd=root)
        lines = [l for l in out.splitlines() if l.startswith("{")]
        return json.loads(lines[-1]) if lines else {}, err

    res, err = cycle("--no-include-orphans", "--refresh-orphans")
    with open(cache) as f:
        before = json.load(f)
    t.ok(sorted(before) == ["bad.py", "good.py", "helper.py"],
         "the orphan cache lists the three orphans", "%r\n%s" % (sorted(before), err))
    t.is_eq(before.get("helper.py", {}).get("parents"), ["good.py"],
            "helper.py is cached with its parent")
    got = sorted(res.get("integration", {}).get("integrated", []))
    t.ok(got == ["good.py", "helper.py"], "the passing orphans are integrated",
         "%r\n%s" % (got, err))
    res, err = cycle("--clean-orphans")
    t.is_eq(res.get("integration", {}).get("integrated"), [],
            "integrated modules are not checked nor integrated again (issue 9)")
    with open(cache) as f:
        after = json.load(f)
    t.is_eq(sorted(after), ["bad.py"],
            "--clean-orphans drops the integrated entries and keeps the failing one")
    with open(os.path.join(root, "sandbox_data", "orphan_classifications.json")) as f:
        classes = json.load(f)
    t.is_eq(classes.get("bad.py", {}).get("classification"), "failed",
            "orphan_classifications.json marks the failed check")

