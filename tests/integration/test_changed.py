# SPDX-License-Identifier: MIT
"""Change-aware runs (`run --changed[=REV]`, `--changed-first`, `--explain`).

A fixture git project with a known import graph is written into a temporary directory, committed,
and changed step by step:

    pkg/leaf.py          <- pkg/mid.py <- tests/test_mid.py
                         <- tests/test_leaf.py
    pkg/other.py         <- tests/test_other.py
    pkg/sub/reader.py    reads pkg/sub/data/table.txt; <- tests/test_reader.py
    pkg/newmod.py        (absent at first) <- tests/test_optional.py (a guarded import)
    tests/test_plain.py  imports nothing of the project

Checked: every run records the git commit it tested in metrics.db (and, in its results, the
files that differed from it: reverted later, they still count as changed); a leaf module change
selects exactly the tests that import it, transitively, with the import chain in --explain; the changes
are counted since the commit of the last passing run (not HEAD); a changed test file selects
itself; an untracked new module selects the test that imports it; the tests that failed since
the last passing run are included; a conftest.py, pytest.ini, a deleted module and a non-Python
file at the project root select everything; a data file counts as a change of the modules of
its package; --changed=REV diffs against REV (a bad revision is a usage error); --changed-first
runs everything with the affected tests first; outside a git work tree --changed warns and runs
everything, --changed=REV is an error; nothing affected: nothing runs, exit 0.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile

import pytest
import st_helpers as sth
from st_helpers import is_eq, ok

pytestmark = pytest.mark.skipif(not shutil.which("git"), reason="git is not installed")

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}

FILES = {
    "pytest.ini": "[pytest]\ntestpaths = tests\n",
    "README.md": "the fixture project\n",
    "pkg/__init__.py": "",
    "pkg/leaf.py": "def leaf():\n    return 1\n",
    "pkg/mid.py": "from pkg.leaf import leaf\n\n\ndef mid():\n    return leaf() + 1\n",
    "pkg/other.py": "def other():\n    return 3\n",
    "pkg/sub/__init__.py": "",
    "pkg/sub/reader.py": ("import os\n\n\ndef read():\n    p = os.path.join(os.path.dirname("
                          "__file__), 'data', 'table.txt')\n    with open(p) as f:\n"
                          "        return f.read().strip()\n"),
    "pkg/sub/data/table.txt": "7\n",
    "tests/conftest.py": "",
    "tests/test_leaf.py": ("from pkg.leaf import leaf\n\n\ndef test_leaf():\n"
                           "    assert leaf() == 1\n"),
    "tests/test_mid.py": "from pkg.mid import mid\n\n\ndef test_mid():\n    assert mid() == 2\n",
    "tests/test_other.py": ("from pkg.other import other\n\n\ndef test_other():\n"
                            "    assert other() == 3\n"),
    "tests/test_reader.py": ("from pkg.sub.reader import read\n\n\ndef test_read():\n"
                             "    assert read() == '7'\n"),
    "tests/test_optional.py": ("try:\n    from pkg import newmod\nexcept ImportError:\n"
                               "    newmod = None\n\n\ndef test_optional():\n"
                               "    assert newmod is None or newmod.VALUE == 5\n"),
    "tests/test_plain.py": "def test_plain():\n    assert True\n",
}
ALL = sorted(p for p in FILES if p.startswith("tests/test_"))


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)


def git(root, *args):
    r = subprocess.run(["git", "-C", root] + list(args), env=sth.base_env(GIT_ENV),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sth.bail_out("git %s: %s" % (" ".join(args), r.stderr))
    return r.stdout.strip()


WORK = None  # the running test's work directory (the workdir fixture)
BIN = None
CONF = None
_n = 0


@pytest.fixture(autouse=True)
def _work(workdir, selftest_bin):
    global WORK, BIN, CONF
    WORK, BIN = workdir, selftest_bin
    CONF = os.path.join(WORK, "empty.conf")
    with open(CONF, "w") as fh:
        fh.write("# defaults, environment and options only\n")
    yield


def project(use_git=True):
    """A fresh copy of the fixture project, committed; returns (root, data dir)."""
    global _n
    _n += 1
    root = os.path.join(WORK, "proj-%d" % _n)
    for rel, text in FILES.items():
        write(root, rel, text)
    if use_git:
        git(root, "init", "-q", "-b", "main")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "initial")
    return root, os.path.join(WORK, "data-%d" % _n)


def selftest(root, data, args, extra_env=None):
    """run --json ARGS; returns (rc, results object or None, stdout, stderr)."""
    tmp = tempfile.mkdtemp(prefix="tmp-", dir=WORK)
    env = sth.base_env(dict(sth.SCRUB, SANDBOX_REPO_PATH=root, SANDBOX_DATA_DIR=data,
                            SELF_TEST_DISABLE_ORPHANS="1", TMPDIR=tmp, **GIT_ENV,
                            **(extra_env or {})))
    argv = [BIN, "-c", CONF, "run", "--json", "--retries", "0", "--workers", "1"] + list(args)
    rc, out, err = sth.run(argv, env=env, cwd=root, timeout=180)
    obj = None
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                pass
            break
    return rc, obj, out, err


def files_run(res):
    return sorted({t["file"] for t in (res or {}).get("tests", [])})


def diag(rc, out, err):
    return "rc=%r\nstderr: %s\nstdout tail: %s" % (rc, err[-2500:], out[-1500:])


def baseline(root, data):
    rc, res, out, err = selftest(root, data, [])
    if rc != 0 or files_run(res) != ALL:
        sth.bail_out("the fixture project's full run does not pass: " + diag(rc, out, err))
    return res


def changed(root, data, *extra):
    return selftest(root, data, ["--changed", "--explain"] + list(extra))


def test_changed_in_a_git_project():
    # ---- the commit of each run -----------------------------------------------------------------
    root, data = project()
    res = baseline(root, data)
    head = git(root, "rev-parse", "HEAD")
    is_eq(res.get("git_commit"), head, "the results object names the commit the run tested")
    db = sqlite3.connect(os.path.join(data, "metrics.db"))
    is_eq(db.execute("SELECT git_commit FROM runs").fetchall(), [(head,)],
          "metrics.db records the run's git commit")
    db.close()

    # ---- a leaf module change: exactly the tests that import it, transitively -------------------
    write(root, "pkg/leaf.py", "def leaf():\n    return 1  # edited\n")
    rc, res, out, err = changed(root, data)
    is_eq(rc, 0, "--changed after editing pkg/leaf.py passes")
    is_eq(files_run(res), ["tests/test_leaf.py", "tests/test_mid.py"],
          "a leaf module change selects exactly the tests importing it (directly or not)")
    ok("selected tests/test_mid.py: pkg/leaf.py changed: tests/test_mid.py -> pkg/mid.py -> "
       "pkg/leaf.py" in err.splitlines(),
       "--explain names the changed file and the import chain", diag(rc, out, err))
    ok("selected tests/test_leaf.py: pkg/leaf.py changed: tests/test_leaf.py -> pkg/leaf.py"
       in err.splitlines(), "--explain: the direct importer", diag(rc, out, err))
    ok(sum(1 for ln in err.splitlines() if ln.startswith("selected ")) == 2,
       "--explain prints one line per selected test file", err)
    batches = res["suite_metrics"]
    ok(list(batches) == ["tests"] and
       batches["tests"]["pytest_argv"][-2:] == ["tests/test_leaf.py", "tests/test_mid.py"],
       "the batch runs only the selected files", batches)

    # ---- the next full run compares the tests --changed left out with their last outcome -------
    is_eq(res.get("changed_subset"), True, "the results of a --changed subset say so")
    write(root, "pkg/other.py", "def other():\n    return 4\n")
    rc, res, out, err = selftest(root, data, [])
    ok(res and "tests/test_other.py::test_other" in res.get("regressions", []),
       "a test the --changed run left out, failing in the next full run, is a regression",
       res and {k: res.get(k) for k in ("regressions", "new_tests", "still_failing")})
    ok(res and not res.get("new_tests"), "... and the tests --changed left out are not new",
       res and res.get("new_tests"))
    is_eq(res.get("changed_subset") if res else None, False, "a full run is not a subset")
    git(root, "checkout", "-q", "--", "pkg/other.py")
    write(root, "pkg/leaf.py", "def leaf():\n    return 1  # edited\n")
    baseline(root, data)

    # ---- since the last passing run, not HEAD ---------------------------------------------------
    git(root, "commit", "-qam", "leaf edited")
    write(root, "pkg/other.py", "def other():\n    return 3  # edited\n")
    git(root, "commit", "-qam", "other edited")
    rc, res, out, err = changed(root, data)
    is_eq(files_run(res), ["tests/test_leaf.py", "tests/test_mid.py", "tests/test_other.py"],
          "committed changes since the last passing run's commit count (HEAD moved twice)")
    # that run passed: the baseline is now HEAD
    rc, res, out, err = changed(root, data)
    is_eq(rc, 0, "nothing changed since the last passing run: exit 0")
    ok(res is None and "nothing to run" in out + err, "nothing changed: nothing runs",
       diag(rc, out, err))

    # ---- a test file change selects itself ------------------------------------------------------
    write(root, "tests/test_plain.py", "def test_plain():\n    assert 1\n")
    rc, res, out, err = changed(root, data)
    is_eq(files_run(res), ["tests/test_plain.py"], "a changed test file selects itself")
    ok("selected tests/test_plain.py: tests/test_plain.py changed" in err.splitlines(),
       "--explain: the test file itself changed", err)
    git(root, "commit", "-qam", "plain")
    baseline(root, data)

    # ---- an untracked new module imported by a test ---------------------------------------------
    write(root, "pkg/newmod.py", "VALUE = 5\n")
    rc, res, out, err = changed(root, data)
    is_eq(files_run(res), ["tests/test_optional.py"],
          "an untracked new module selects the test that imports it")
    ok("selected tests/test_optional.py: pkg/newmod.py changed: tests/test_optional.py -> "
       "pkg/newmod.py" in err.splitlines(), "--explain: the untracked module's chain", err)
    git(root, "add", "pkg/newmod.py")
    git(root, "commit", "-qm", "newmod")
    baseline(root, data)

    # ---- the tests that failed since the last passing run ---------------------------------------
    write(root, "pkg/other.py", "def other():\n    return 4\n")
    rc, res, out, err = selftest(root, data, [])
    is_eq(rc, 1, "a full run with test_other failing exits 1")
    git(root, "checkout", "-q", "--", "pkg/other.py")
    write(root, "pkg/leaf.py", "def leaf():\n    return 1  # again\n")
    rc, res, out, err = changed(root, data)
    is_eq(files_run(res), ["tests/test_leaf.py", "tests/test_mid.py", "tests/test_other.py"],
          "the test that failed in the last run is selected with the affected ones")
    ok("selected tests/test_other.py: failed in a run since the last passing one"
       in err.splitlines(), "--explain: selected for its failure", err)
    git(root, "checkout", "-q", "--", "pkg/leaf.py")
    rc, res, out, err = changed(root, data)
    is_eq(files_run(res), ["tests/test_leaf.py", "tests/test_mid.py"],
          "once it passed again, the failure is not selected (pkg/leaf.py, uncommitted in the last "
          "passing run and reverted since, is)")
    rc, res, out, err = changed(root, data)
    is_eq(files_run(res), [], "then nothing is selected")

    # ---- the base run's uncommitted changes count (it did not test the commit itself) -----------
    write(root, "pkg/other.py", "def other():\n    return 3  # uncommitted\n")
    res = baseline(root, data)
    is_eq(res.get("git_dirty"), ["pkg/other.py"],
          "the results list the files that differed from the commit")
    git(root, "checkout", "-q", "--", "pkg/other.py")
    rc, res, out, err = changed(root, data)
    is_eq(files_run(res), ["tests/test_other.py"],
          "a file the last passing run had uncommitted, reverted since, counts as changed")
    baseline(root, data)

    # ---- everything: conftest.py, pytest.ini, a deleted module, a non-Python file at the root ---
    for rel, text, why in (("tests/conftest.py", "import os\n", "tests/conftest.py changed"),
                           ("pytest.ini", "[pytest]\ntestpaths = tests\naddopts = -ra\n",
                            "pytest.ini changed"),
                           ("README.md", "edited\n", "README.md changed")):
        write(root, rel, text)
        rc, res, out, err = changed(root, data)
        is_eq(files_run(res), ALL, "a change to %s selects everything" % rel)
        ok(any(ln.startswith("selected everything: " + why) for ln in err.splitlines()),
           "--explain says why everything runs (%s)" % rel, err)
        git(root, "checkout", "-q", "--", rel)
        baseline(root, data)
    os.unlink(os.path.join(root, "pkg/newmod.py"))
    rc, res, out, err = changed(root, data)
    is_eq(files_run(res), ALL, "a deleted module (the graph cannot place it) selects everything")
    ok(any(ln.startswith("selected everything: pkg/newmod.py changed and the import graph cannot "
                         "place it") for ln in err.splitlines()), "--explain: cannot place", err)
    git(root, "checkout", "-q", "--", "pkg/newmod.py")
    baseline(root, data)

    # ---- a data file: the modules of its package ------------------------------------------------
    write(root, "pkg/sub/data/table.txt", "7\n\n")
    rc, res, out, err = changed(root, data)
    is_eq(files_run(res), ["tests/test_reader.py"],
          "a data file under pkg/sub selects the tests importing a module of pkg/sub")
    ok(any(ln.startswith("selected tests/test_reader.py: pkg/sub/data/table.txt changed (not a "
                         "Python module") for ln in err.splitlines()),
       "--explain: the data rule", err)
    git(root, "checkout", "-q", "--", "pkg/sub/data/table.txt")

    # ---- --changed=REV --------------------------------------------------------------------------
    rc, res, out, err = selftest(root, data, ["--changed=HEAD~2", "--explain"])
    is_eq(files_run(res), ["tests/test_optional.py", "tests/test_plain.py"],
          "--changed=HEAD~2: the changes of the last two commits (plain, newmod)")
    rc, res, out, err = selftest(root, data, ["--changed=no-such-rev"])
    is_eq(rc, 2, "--changed=REV with a bad revision: exit 2")
    ok("no-such-rev" in err and "does not name a commit" in err,
       "the error names the revision", err)

    # python_files in pytest's configuration: test files may have other names
    write(root, "tox.ini", "[pytest]\npython_files = check_*.py\n")
    git(root, "add", "tox.ini")
    git(root, "commit", "-qm", "tox.ini")
    baseline(root, data)
    write(root, "pkg/leaf.py", "def leaf():\n    return 1  # python_files\n")
    rc, res, out, err = changed(root, data)
    ok(any(ln.startswith("selected everything: tox.ini sets python_files")
           for ln in err.splitlines()),
       "pytest's python_files set: everything is selected", diag(rc, out, err))
    git(root, "rm", "-q", "tox.ini")
    git(root, "commit", "-qm", "no tox.ini")
    git(root, "checkout", "-q", "--", "pkg/leaf.py")
    baseline(root, data)

    # ---- --changed-first ------------------------------------------------------------------------
    write(root, "pkg/other.py", "def other():\n    return 3  # first\n")
    rc, res, out, err = selftest(root, data, ["--changed-first", "--explain"])
    is_eq(rc, 0, "--changed-first passes")
    order = [t["file"] for t in (res or {}).get("tests", [])]
    is_eq(sorted(set(order)), ALL, "--changed-first runs every test file")
    is_eq(order[:1], ["tests/test_other.py"], "--changed-first runs the affected test first")
    is_eq(len(order), len(ALL), "... and each test once")
    git(root, "checkout", "-q", "--", "pkg/other.py")

    # ---- usage ----------------------------------------------------------------------------------
    rc, res, out, err = selftest(root, data, ["--changed", "--changed-first"])
    is_eq(rc, 2, "--changed with --changed-first: usage error")
    rc, res, out, err = selftest(root, data, ["--explain"])
    is_eq(rc, 2, "--explain alone: usage error")


def test_not_a_git_repository():
    # ---- not a git repository -------------------------------------------------------------------
    root2, data2 = project(use_git=False)
    rc, res, out, err = selftest(root2, data2, ["--changed"])
    is_eq(rc, 0, "--changed outside git: the full run passes")
    is_eq(files_run(res), ALL, "--changed outside git runs everything")
    ok("not in a git work tree" in err and "running every test" in err,
       "--changed outside git says so", err)
    is_eq(res.get("git_commit") if res else "?", None, "outside git the run has no commit")
    rc, res, out, err = selftest(root2, data2, ["--changed=HEAD"])
    is_eq(rc, 2, "--changed=REV outside git: exit 2")
    ok("not in a git work tree" in err, "--changed=REV outside git: the error says why", err)


def _has_git_above(path):
    path = os.path.realpath(path)
    while True:
        if os.path.lexists(os.path.join(path, ".git")):
            return True
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent


def test_no_git_process_outside_git():
    """Every run records the commit it tested; a project with no .git in it or above it (and
    no GIT_DIR) is not asked about one: no git process (a `git` first in PATH logs its
    calls). In a work tree the same run asks git."""
    real = shutil.which("git")
    if not real:
        pytest.skip("git is not installed")
    if _has_git_above(WORK):
        pytest.skip("the work dir %s is inside a git work tree" % WORK)
    shim = os.path.join(WORK, "gitshim")
    os.makedirs(shim, exist_ok=True)
    log = os.path.join(shim, "calls.log")
    with open(os.path.join(shim, "git"), "w") as fh:
        fh.write('#!/bin/sh\necho "$@" >> "%s"\nexec "%s" "$@"\n' % (log, real))
    os.chmod(os.path.join(shim, "git"), 0o755)
    path = {"PATH": shim + os.pathsep + os.environ.get("PATH", "")}
    root, data = project(use_git=False)
    rc, res, out, err = selftest(root, data, [], extra_env=path)
    is_eq(rc, 0, "outside git: the run passes")
    ok(not os.path.exists(log), "outside git: no git process",
       open(log).read() if os.path.exists(log) else "")
    is_eq(res.get("git_commit") if res else "?", None, "outside git the run has no commit")
    root, data = project(use_git=True)
    rc, res, out, err = selftest(root, data, [], extra_env=path)
    is_eq(rc, 0, "in a work tree: the run passes")
    calls = open(log).read().splitlines() if os.path.exists(log) else []
    ok(any("rev-parse" in c for c in calls), "in a work tree: git is asked for the commit")
    ok(len(calls) <= 2, "in a work tree: two git processes at most (the commit and the "
       "root's prefix in one, the differences in the other)", "\n".join(calls))
    is_eq(res.get("git_commit") if res else "?", git(root, "rev-parse", "HEAD"),
          "in a work tree the run names its commit")


def test_git_state_of_a_project_in_a_subdirectory():
    """A project whose root is a subdirectory of its repository records HEAD and the files
    that differ from it below the root, relative to the root: modified, staged, deleted and
    untracked; not those elsewhere in the repository. A repository without a commit records
    none."""
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    global _n
    _n += 1
    repo = os.path.join(WORK, "repo-%d" % _n)
    root = os.path.join(repo, "sub", "proj")
    for rel, text in FILES.items():
        write(root, rel, text)
    write(repo, "elsewhere.py", "E = 1\n")
    git(repo, "init", "-q", "-b", "main")
    data = os.path.join(WORK, "data-%d" % _n)
    rc, res, out, err = selftest(root, data, [])
    is_eq((rc, (res or {}).get("git_commit")), (0, None),
          "a repository without a commit: the run passes and records none")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    write(root, "pkg/other.py", "def other():\n    return 3  # modified\n")
    write(root, "pkg/staged.py", "S = 1\n")
    git(repo, "add", "sub/proj/pkg/staged.py")
    os.unlink(os.path.join(root, "tests", "test_plain.py"))
    write(root, "notes.txt", "untracked\n")
    write(repo, "elsewhere.py", "E = 2\n")
    write(repo, "untracked_elsewhere.py", "U = 1\n")
    rc, res, out, err = selftest(root, data, [])
    ok(rc == 0, "the run passes", diag(rc, out, err))
    is_eq((res or {}).get("git_commit"), git(repo, "rev-parse", "HEAD"),
          "the run names HEAD's commit")
    is_eq(sorted((res or {}).get("git_dirty") or []),
          ["notes.txt", "pkg/other.py", "pkg/staged.py", "tests/test_plain.py"],
          "the differences below the root, relative to it: modified, staged, untracked and "
          "deleted files, nothing from elsewhere in the repository")


# ---- recorded test dependencies (record_test_deps) ------------------------------------------
# The shape of most libraries: the package's __init__ imports every module, so every test file's
# import closure holds every module and the graph alone selects everything for any change.
DEPS_FILES = {
    "pytest.ini": "[pytest]\ntestpaths = tests\n",
    "pkg2/__init__.py": ("from pkg2.a import fa, shared, unused\nfrom pkg2.b import fb, TABLE\n"
                         "from pkg2.c import VALUE\n"),
    "pkg2/a.py": ("def fa():\n    return 1\n\n\ndef shared():\n    \"\"\"Shared.\"\"\"\n"
                  "    return 10\n\n\ndef unused():\n    return 0\n"),
    "pkg2/b.py": ("from pkg2.a import shared\n\n\ndef fb():\n    return shared() + 2\n\n\n"
                  "TABLE = {'k': 5}\n"),
    "pkg2/c.py": "def made():\n    return 4\n\n\nVALUE = made()\n",
    "tests/test_fa.py": "from pkg2 import fa\n\n\ndef test_fa():\n    assert fa() == 1\n",
    "tests/test_fb.py": "from pkg2 import fb\n\n\ndef test_fb():\n    assert fb() == 12\n",
    "tests/test_shared.py": ("from pkg2.a import shared\n\n\ndef test_shared():\n"
                             "    assert shared() == 10\n"),
    "tests/test_table.py": ("from pkg2 import TABLE\n\n\ndef test_table():\n"
                            "    assert TABLE['k'] == 5\n"),
    "tests/test_value.py": ("from pkg2 import VALUE\n\n\ndef test_value():\n"
                            "    assert VALUE == 4\n"),
}
DEPS_ALL = sorted(p for p in DEPS_FILES if p.startswith("tests/test_"))


def deps_project():
    global _n
    _n += 1
    root = os.path.join(WORK, "deps-%d" % _n)
    for rel, text in DEPS_FILES.items():
        write(root, rel, text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root, os.path.join(WORK, "deps-data-%d" % _n)


def edit(root, rel, old, new):
    path = os.path.join(root, rel)
    with open(path) as fh:
        text = fh.read()
    if old not in text:
        sth.bail_out("%s does not hold %r" % (rel, old))
    with open(path, "w") as fh:
        fh.write(text.replace(old, new, 1))


def test_changed_with_test_dependencies():
    root, data = deps_project()
    base_data = data + "-base"
    os.environ["SELF_TEST_RECORD_TEST_DEPS"] = "1"  # the recorded run only
    try:
        rc, res, out, err = selftest(root, base_data, [])
    finally:
        del os.environ["SELF_TEST_RECORD_TEST_DEPS"]
    if rc != 0 or files_run(res) != DEPS_ALL:
        sth.bail_out("the fixture project's full run does not pass: " + diag(rc, out, err))
    path = os.path.join(base_data, "test_deps.json")
    ok(os.path.isfile(path), "a whole run with record_test_deps writes test_deps.json", err)
    with open(path) as fh:
        recorded = json.load(fh)
    is_eq(recorded.get("git_commit"), git(root, "rev-parse", "HEAD"), "the map names its commit")
    tests = {}
    for rec in recorded.get("records", []):
        tests.update(rec.get("tests", {}))
    is_eq(sorted(tests), DEPS_ALL, "the map has every test file")

    def case(name, rel, old, new, expect, failing):
        """Applies one edit on a fresh copy of the baseline's data; --changed must run exactly
        the test files `expect`, and the full run's failures must be among them (0 missed)."""
        edit(root, rel, old, new)
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(base_data, data)
        rc, res, out, err = changed(root, data)
        got = files_run(res)
        if res is None and "nothing to run" in out:
            got = []
        is_eq(got, expect, "%s: --changed runs %s" % (name, expect or "nothing"))
        if expect and got == expect:
            fails = sorted({t["file"] for t in res.get("tests", [])
                            if t["outcome"] in ("failed", "error")})
            is_eq(fails, failing, "%s: the affected tests fail" % name)
        full_data = data + "-full"
        shutil.rmtree(full_data, ignore_errors=True)
        shutil.copytree(base_data, full_data)
        rc, full, out2, err2 = selftest(root, full_data, [])
        full_fails = {t["file"] for t in (full or {}).get("tests", [])
                      if t["outcome"] in ("failed", "error")}
        is_eq(sorted(full_fails - set(got)), [], "%s: no failing test file is missed" % name)
        git(root, "checkout", "-q", "--", ".")
        return err

    # a function body: only the test files that ran it (the graph would select all five)
    err = case("fa's body", "pkg2/a.py", "def fa():\n", "def fa():\n    raise RuntimeError('x')\n",
               ["tests/test_fa.py"], ["tests/test_fa.py"])
    ok("placed by the recorded test dependencies" in err, "--explain says the map placed it", err)
    # called through another module's function: both callers' test files
    case("shared's body", "pkg2/a.py", "    return 10\n", "    return 11\n",
         ["tests/test_fb.py", "tests/test_shared.py"],
         ["tests/test_fb.py", "tests/test_shared.py"])
    # a function no test ran: nothing to run
    case("an unused function", "pkg2/a.py", "    return 0\n", "    return 9\n", [], [])
    # module-level code: the import graph (every test file imports pkg2)
    case("module-level code", "pkg2/b.py", "TABLE = {'k': 5}", "TABLE = {'k': 6}", DEPS_ALL,
         ["tests/test_table.py"])
    # a function run at import time (outside every test): the import graph
    case("a function run at import", "pkg2/c.py", "    return 4\n", "    return 3\n", DEPS_ALL,
         ["tests/test_value.py"])
    # a docstring is not the body's code: the import graph
    case("a docstring", "pkg2/a.py", '"""Shared."""', '"""Shared, changed."""', DEPS_ALL, [])

    # a map recorded at another commit is stale: the import graph
    edit(root, "pkg2/b.py", "TABLE = {'k': 5}", "TABLE = {'k': 5}  # c")
    git(root, "commit", "-q", "-am", "comment")
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(base_data, data)
    rc, res, out, err = selftest(root, data, [])  # a passing run at the new commit, no map
    edit(root, "pkg2/a.py", "def fa():\n", "def fa():\n    raise RuntimeError('x')\n")
    rc, res, out, err = changed(root, data)
    is_eq(files_run(res), DEPS_ALL, "a map of another commit is not used: the graph selects all")
    ok("recorded at" in err and "not at the base commit" in err,
       "--explain says why the map is not used", err)
    git(root, "checkout", "-q", "--", ".")
