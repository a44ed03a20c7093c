# SPDX-License-Identifier: MIT
"""which test paths a run uses, the pythonpath setting, pytest node ids as paths.

1. Default test paths. With no `paths` setting and no PATH on the command line a run (and
   `discover`) uses the `testpaths` of the project's pytest configuration, as pytest resolves
   them: tests/fixtures/projects/testpaths_{ini,pyproject,tox,setupcfg} set `testpaths` in
   pytest.ini, pyproject.toml ([tool.pytest.ini_options], with a glob `more/*`), tox.ini
   ([pytest]) and setup.cfg ([tool:pytest]); each also has tests/ and bench/ files that fail
   when run. The batches must be exactly the testpaths, and the counts those of plain
   `python3 -m pytest` in the project root. A testpaths that matches nothing makes pytest (and
   so the run) test the whole root; --pytest-args `-o testpaths=...` is pytest's too; given
   paths and the config's `paths` beat testpaths. Without testpaths: tests/ when it exists
   (fallback_tests), else the root (fallback_root).
2. pythonpath (tests/fixtures/projects/pythonpath: lib/pkgmod is importable only with lib/ on
   the import path): through the config file, SELF_TEST_PYTHONPATH and --pythonpath (flag >
   environment > file), the tests pass; the orphan lib/pkgmod/extra.py is import-checked as
   `pkgmod.extra` and passes; the import graph treats lib/ as a source root (the tested
   lib/pkgmod/core.py is no orphan). Bad values are usage errors naming FILE:LINE, the
   variable or the option. Without the setting, pytest's own `pythonpath` ini option (read
   with the testpaths) does the same; an entry that is no directory is named in a warning.
3. Node ids (tests/fixtures/projects/nodeids): `run FILE::test`, `FILE::Class::test`,
   `FILE::Class`, `FILE::test_param[3-c d]` each run as their own batch exactly the named
   nodes; node ids relative to the cwd; from the config's paths; bad ones are usage errors.
"""

import json
import os
import shutil
import tempfile

import pytest
import st_helpers as sth
from st_helpers import is_eq, ok

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")

WORK = None  # the module's scratch directory (the work fixture)
IGNORE = shutil.ignore_patterns(".pytest_cache", "__pycache__", "sandbox_data", "*.pyc")
_copies = 0


def copy(name):
    global _copies
    _copies += 1
    dst = os.path.join(WORK, "%s-%d" % (name, _copies))
    shutil.copytree(sth.fixture(name), dst, ignore=IGNORE)
    sth.make_writable(dst)
    return dst


def conf(text=""):
    """A config file in WORK (outside the project) with text; returns its path."""
    fd, path = tempfile.mkstemp(prefix="conf-", suffix=".conf", dir=WORK)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


EMPTY = None  # a config file of defaults (the work fixture)


@pytest.fixture(scope="module", autouse=True)
def work():
    global EMPTY, WORK
    WORK = tempfile.mkdtemp(prefix="st-paths-")
    EMPTY = conf("# defaults, environment and options only\n")
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)
SCRUB = dict(sth.SCRUB, SELF_TEST_PYTHONPATH=None, PYTHONPATH=None)


def selftest(root, args, command="run", env=None, conf_file=None, cwd=None, orphans=False):
    """selftest-core -c conf COMMAND --json ARGS with project root = root. Returns
    (rc, last JSON object or None, stdout, stderr)."""
    conf_file = EMPTY if conf_file is None else conf_file
    tmp = tempfile.mkdtemp(prefix="tmp-", dir=WORK)
    extra = dict(SCRUB, SANDBOX_REPO_PATH=root, TMPDIR=tmp)
    if not orphans:
        extra["SELF_TEST_DISABLE_ORPHANS"] = "1"
    extra.update(env or {})
    argv = [BIN, "-c", conf_file, command, "--json"]
    if command == "run":
        argv += ["--retries", "0", "--workers", "2"]
    rc, out, err = sth.run(argv + list(args), env=sth.base_env(extra), cwd=cwd or root,
                           timeout=180)
    obj = None
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                pass
            break
    return rc, obj, out, err


def diag(rc, out, err):
    return "rc=%r\nstderr: %s\nstdout tail: %s" % (rc, err[-2000:], out[-1500:])


def counts(res):
    return {k: res.get(k) for k in ("passed", "failed", "skipped")} if res else None


def pytest_counts(root, env=None):
    summ = sth.pytest_summary(cwd=root, env=env)
    return {"passed": summ["passed"] + summ["xpassed"],
            "failed": summ["failed"] + summ["errors"], "skipped": summ["skipped"]}, summ


def ran(res):
    """{batch path: sorted node ids that ran in it}"""
    got = {}
    for t in (res or {}).get("tests", []):
        got.setdefault(t["batch"], []).append(t["nodeid"])
    return {k: sorted(v) for k, v in got.items()}


# ---- 1. default test paths -------------------------------------------------------------------
def test_default_testpaths():
    TESTPATHS = {
        "testpaths_ini": ["checks"],
        "testpaths_pyproject": ["checks", "more/one", "more/two"],
        "testpaths_tox": ["checks"],
        "testpaths_setupcfg": ["checks"],
    }
    for name, expected in sorted(TESTPATHS.items()):
        root = copy(name)
        rc, res, out, err = selftest(root, [])
        n_expected = 2 + (len(expected) - 1)  # checks/: 2 tests, more/one and more/two: 1 each
        ok(res is not None and res.get("event") == "results", "%s: run --json ends with the results"
           % name, diag(rc, out, err))
        res = res or {}
        is_eq(res.get("workflow_tests"), expected, "%s: the batches are the testpaths" % name)
        is_eq(rc, 0, "%s: exit 0 (the failing tests/ and bench/ files are outside testpaths)" % name)
        is_eq(counts(res), {"passed": n_expected, "failed": 0, "skipped": 0},
              "%s: %d passed, 0 failed" % (name, n_expected))
        files = sorted({t["file"] for t in res.get("tests", [])})
        ok(files and all(f.split("/")[0] in ("checks", "more") for f in files),
           "%s: only files under testpaths ran" % name, "files: %r" % files)
        want, summ = pytest_counts(root)
        is_eq(counts(res), want, "%s: counts equal plain pytest's (%s)" % (name, summ["line"]))
        rc, dis, out, err = selftest(root, [], command="discover")
        is_eq((dis or {}).get("batches"), expected, "%s: discover's batches are the testpaths" % name)


def test_testpaths_matching_nothing():
    # a testpaths that matches nothing: pytest tests the whole root (and warns)
    root = copy("testpaths_ini")
    with open(os.path.join(root, "pytest.ini"), "w") as fh:
        fh.write("[pytest]\ntestpaths = nothing_here\n")
    rc, res, out, err = selftest(root, [])
    is_eq((res or {}).get("workflow_tests"), ["."], "testpaths matching nothing: the root is tested")
    ok("matches nothing" in err, "testpaths matching nothing: a warning says so", err[-800:])
    want, summ = pytest_counts(root)
    is_eq(counts(res), want, "testpaths matching nothing: counts equal plain pytest's (%s)"
          % summ["line"])
    is_eq(rc, 1, "testpaths matching nothing: exit 1 (the decoys ran and failed)")


def test_pytest_args_and_given_paths():
    # the user's pytest args are pytest's: -o testpaths=bench
    root = copy("testpaths_ini")
    rc, res, out, err = selftest(root, ["--pytest-args", "-o testpaths=bench"])
    is_eq((res or {}).get("workflow_tests"), ["bench"], "--pytest-args '-o testpaths=bench': bench")
    want, summ = pytest_counts(root, env={"PYTEST_ADDOPTS": "-o testpaths=bench"})
    is_eq(counts(res), want, "-o testpaths=bench: counts equal pytest's (%s)" % summ["line"])

    # given paths and the config's paths beat testpaths
    rc, res, out, err = selftest(root, ["tests"])
    is_eq((res or {}).get("workflow_tests"), ["tests"], "a given PATH beats testpaths")
    is_eq(counts(res), {"passed": 0, "failed": 1, "skipped": 0}, "a given PATH: its test ran")
    c = conf('paths = ["bench"];\n')
    rc, res, out, err = selftest(root, [], conf_file=c)
    is_eq((res or {}).get("workflow_tests"), ["bench"], "the config's paths beat testpaths")


def test_without_testpaths():
    # without testpaths: tests/ if it exists, else the root
    root = copy("fallback_tests")
    rc, res, out, err = selftest(root, [])
    is_eq((res or {}).get("workflow_tests"), ["tests"], "no testpaths, tests/ exists: tests/")
    is_eq(counts(res), {"passed": 1, "failed": 0, "skipped": 0}, "no testpaths: tests/ ran alone")
    rc, dis, out, err = selftest(root, [], command="discover")
    is_eq((dis or {}).get("batches"), ["tests"], "no testpaths: discover says tests/")
    root = copy("fallback_root")
    rc, res, out, err = selftest(root, [])
    is_eq((res or {}).get("workflow_tests"), ["."], "no testpaths, no tests/: the root")
    is_eq(counts(res), {"passed": 2, "failed": 0, "skipped": 0}, "no testpaths, no tests/: all ran")
    want, summ = pytest_counts(root)
    is_eq(counts(res), want, "no tests/: counts equal plain pytest's (%s)" % summ["line"])


# ---- 2. pythonpath ---------------------------------------------------------------------------
def test_pythonpath():
    root = copy("pythonpath")
    rc, res, out, err = selftest(root, [])
    ok(rc == 1 and res and res.get("failed", 0) >= 1,
       "pythonpath unset: lib/pkgmod cannot be imported, the run fails", diag(rc, out, err))
    rc, dis, out, err = selftest(root, [], command="discover", orphans=True)
    ok("lib/pkgmod/core.py" in (dis or {}).get("orphans", []),
       "pythonpath unset: the import graph cannot resolve pkgmod, core.py looks orphan",
       diag(rc, out, err))

    OK_COUNTS = {"passed": 2, "failed": 0, "skipped": 0}
    c_lib = conf('pythonpath = ["lib"];\n')
    root = copy("pythonpath")  # a fresh copy: no orphan cache, nothing integrated yet
    rc, dis, out, err = selftest(root, [], command="discover", conf_file=c_lib, orphans=True)
    orph = (dis or {}).get("orphans", [])
    ok("lib/pkgmod/extra.py" in orph and "lib/pkgmod/core.py" not in orph,
       "config pythonpath: lib/ is a source root of the import graph", "orphans: %r" % orph)
    rc, res, out, err = selftest(root, [], conf_file=c_lib, orphans=True)
    is_eq(rc, 0, "config pythonpath = [\"lib\"]: exit 0")
    is_eq(counts(res), OK_COUNTS, "config pythonpath: the tests pass")
    checks = (res or {}).get("orphan_checks") or {}
    extra = checks.get("lib/pkgmod/extra.py") or {}
    is_eq((extra.get("module"), extra.get("ok")), ("pkgmod.extra", True),
          "config pythonpath: the orphan lib/pkgmod/extra.py is checked as pkgmod.extra and passes")
    ok("lib/pkgmod/core.py" not in checks, "config pythonpath: the tested core.py is not checked",
       "checks: %r" % sorted(checks))

    rc, res, out, err = selftest(root, [], env={"SELF_TEST_PYTHONPATH": "lib"})
    is_eq((rc, counts(res)), (0, OK_COUNTS), "SELF_TEST_PYTHONPATH=lib: the tests pass")
    rc, res, out, err = selftest(root, ["--pythonpath", "lib"])
    is_eq((rc, counts(res)), (0, OK_COUNTS), "--pythonpath lib: the tests pass")
    rc, res, out, err = selftest(root, ["--pythonpath", os.path.join(root, "lib")])
    is_eq((rc, counts(res)), (0, OK_COUNTS), "--pythonpath with an absolute directory")
    rc, res, out, err = selftest(root, ["--pythonpath", "tests:lib"])
    is_eq((rc, counts(res)), (0, OK_COUNTS), "--pythonpath tests:lib (two entries)")
    # an inherited PYTHONPATH is kept after the setting's entries
    rc, res, out, err = selftest(root, [], env={"PYTHONPATH": os.path.join(root, "lib")})
    is_eq((rc, counts(res)), (0, OK_COUNTS), "an inherited PYTHONPATH still reaches the batches")

    # precedence: flag > environment > file
    c_bad = conf('pythonpath = ["no_such_dir"];\n')
    rc, res, out, err = selftest(root, [], conf_file=c_bad, env={"SELF_TEST_PYTHONPATH": "lib"})
    is_eq((rc, counts(res)), (0, OK_COUNTS), "SELF_TEST_PYTHONPATH beats the config file")
    rc, res, out, err = selftest(root, ["--pythonpath", "lib"],
                                 env={"SELF_TEST_PYTHONPATH": "no_such_dir"})
    is_eq((rc, counts(res)), (0, OK_COUNTS), "--pythonpath beats SELF_TEST_PYTHONPATH")

    # bad values
    rc, res, out, err = selftest(root, [], conf_file=conf('workers = 1;\npythonpath = ["no_such_dir"];\n'))
    ok(rc == 2 and ".conf:2" in err and "no_such_dir" in err and "not a directory" in err,
       "config pythonpath naming a missing dir: exit 2 naming FILE:LINE", diag(rc, out, err))
    rc, res, out, err = selftest(root, [], conf_file=conf("pythonpath = 5;\n"))
    ok(rc == 2 and ".conf:1" in err and "pythonpath" in err,
       "config pythonpath = 5: exit 2 naming FILE:LINE", diag(rc, out, err))
    rc, res, out, err = selftest(root, [], env={"SELF_TEST_PYTHONPATH": "no_such_dir"})
    ok(rc == 2 and "SELF_TEST_PYTHONPATH" in err and "no_such_dir" in err,
       "SELF_TEST_PYTHONPATH=no_such_dir: exit 2 naming the variable", diag(rc, out, err))
    rc, res, out, err = selftest(root, [], env={"SELF_TEST_PYTHONPATH": "lib::tests"})
    ok(rc == 2 and "SELF_TEST_PYTHONPATH" in err and "empty entry" in err,
       "SELF_TEST_PYTHONPATH=lib::tests: exit 2, an empty entry", diag(rc, out, err))
    rc, res, out, err = selftest(root, ["--pythonpath", "tests/test_core.py"])
    ok(rc == 2 and "option --pythonpath" in err and "not a directory" in err,
       "--pythonpath naming a file: exit 2 naming the option", diag(rc, out, err))
    rc, res, out, err = selftest(root, [], command="discover",
                                 env={"SELF_TEST_PYTHONPATH": "no_such_dir"})
    is_eq(rc, 2, "discover checks pythonpath too")


def test_pytest_pythonpath_ini():
    # pytest's own `pythonpath` ini option (pytest 7+): without a pythonpath setting it is the
    # import roots of the graph and the orphan checks, as it is pytest's for the batches
    root = copy("pythonpath")
    with open(os.path.join(root, "pytest.ini"), "a") as fh:
        fh.write("pythonpath = lib gone\n")
    rc, dis, out, err = selftest(root, [], command="discover", orphans=True)
    orph = (dis or {}).get("orphans", [])
    ok("lib/pkgmod/extra.py" in orph and "lib/pkgmod/core.py" not in orph,
       "pytest.ini pythonpath = lib: lib/ is a source root of the import graph",
       "orphans: %r\n%s" % (orph, diag(rc, out, err)))
    ok("'gone'" in err and "pytest.ini" in err and "not a directory" in err,
       "a pythonpath entry of pytest.ini that is no directory is named in a warning", err[-800:])
    rc, res, out, err = selftest(root, [], orphans=True)
    is_eq((rc, counts(res)), (0, {"passed": 2, "failed": 0, "skipped": 0}),
          "pytest.ini pythonpath: exit 0, the tests pass")
    checks = (res or {}).get("orphan_checks") or {}
    extra = checks.get("lib/pkgmod/extra.py") or {}
    is_eq((extra.get("module"), extra.get("ok")), ("pkgmod.extra", True),
          "pytest.ini pythonpath: the orphan extra.py is checked as pkgmod.extra and passes")
    ok("lib/pkgmod/core.py" not in checks, "pytest.ini pythonpath: the tested core.py is no orphan",
       "checks: %r" % sorted(checks))
    # a second run takes the preflight's cached answer: the same roots
    rc, dis, out, err = selftest(root, [], command="discover", orphans=True)
    ok("lib/pkgmod/core.py" not in (dis or {}).get("orphans", []),
       "with the cached preflight answer lib/ is still a source root", diag(rc, out, err))
    # a pythonpath setting wins over pytest's
    rc, dis, out, err = selftest(root, [], command="discover", orphans=True,
                                 env={"SELF_TEST_PYTHONPATH": "tests"})
    ok("lib/pkgmod/core.py" in (dis or {}).get("orphans", []),
       "SELF_TEST_PYTHONPATH=tests replaces pytest.ini's pythonpath", diag(rc, out, err))


# ---- 3. node ids -----------------------------------------------------------------------------
def test_node_ids():
    root = copy("nodeids")
    F = "tests/test_nodes.py"
    ids = [F + "::test_plain", F + "::TestGroup::test_method", F + "::test_param[3-c d]",
           F + "::test_param[1-a]"]
    rc, res, out, err = selftest(root, ids)
    is_eq(rc, 0, "node ids: exit 0")
    is_eq(sorted((res or {}).get("workflow_tests", [])), sorted(ids), "node ids: one batch each")
    is_eq(ran(res), {i: [i] for i in ids}, "node ids: each batch ran exactly its node")
    is_eq(counts(res), {"passed": 4, "failed": 0, "skipped": 0}, "node ids: 4 passed")

    rc, res, out, err = selftest(root, [F + "::TestGroup"])
    is_eq(ran(res), {F + "::TestGroup": [F + "::TestGroup::test_method",
                                         F + "::TestGroup::test_sibling"]},
          "FILE::Class runs the class's tests only")
    rc, res, out, err = selftest(root, ["test_nodes.py::test_other"], cwd=os.path.join(root, "tests"))
    is_eq(ran(res), {F + "::test_other": [F + "::test_other"]},
          "a node id relative to the cwd becomes repo-relative")
    rc, res, out, err = selftest(root, [], conf_file=conf('paths = ["%s::test_param[2-b]"];\n' % F))
    is_eq(ran(res), {F + "::test_param[2-b]": [F + "::test_param[2-b]"]},
          "a node id in the config's paths")
    for bad, why in (("tests/nope.py::test_x", "no such file"), ("tests::test_x", "not a file"),
                     ("::test_x", "not a pytest node id"), (F + "::", "not a pytest node id")):
        rc, res, out, err = selftest(root, [bad])
        ok(rc == 2 and bad in err and why in err, "bad node id %r: exit 2 (%s)" % (bad, why),
           diag(rc, out, err))
