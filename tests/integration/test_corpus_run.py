# SPDX-License-Identifier: MIT
"""`selftest-core run` on the real projects of tests/corpus gives pytest's counts.

Each tarball (toolz, cachetools, simplejson; see tests/corpus/README.md) is unpacked into a
temp dir (the tarballs are never modified). In the project root, with no PATH and no `paths`
setting (so the default test paths: pytest's own testpaths, else tests/, else the root),
`selftest-core run --json` and plain `python3 -m pytest -p no:cacheprovider` run the same way
(same interpreter, same PYTHONPATH: cachetools is a src layout, run with `pythonpath =
["src"]` and plain pytest with PYTHONPATH=<root>/src). Their passed/failed/skipped counts must
be equal, and equal the numbers the README records:

    toolz       185 passed, 1 failed   (testpaths = ["toolz"] in pyproject.toml: bench/ and
                                        the other test_*.py files outside it are not run)
    cachetools  277 passed, 2 skipped  (pythonpath = ["src"])
    simplejson  178 passed, 41 skipped

Orphan discovery and checks run as configured by default; only the test counts and the exit
status are compared here, not the orphan results.
"""

import json
import os
import shutil
import tarfile
import tempfile

import pytest
import st_helpers as sth
from st_helpers import is_eq, note, ok

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")

CORPUS = os.path.join(sth.top_srcdir(), "tests", "corpus")
WORK = None  # the module's scratch directory (the work fixture)
KEYS = ("passed", "failed", "skipped")

# project: (config text, PYTHONPATH entries for plain pytest (relative to the root),
#           README counts, selftest-core's exit status)
PROJECTS = {
    "toolz": ("", [], {"passed": 185, "failed": 1, "skipped": 0}, 1),
    "cachetools": ('pythonpath = ["src"];\n', ["src"],
                   {"passed": 277, "failed": 0, "skipped": 2}, 0),
    "simplejson": ("", [], {"passed": 178, "failed": 0, "skipped": 41}, 0),
}


@pytest.fixture(scope="module", autouse=True)
def work():
    global WORK
    WORK = tempfile.mkdtemp(prefix="st-corpus-")
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)


def unpack(name):
    """Unpacks tests/corpus/NAME.tar.gz into WORK/NAME; returns the project root (the tarball's
    single top-level directory)."""
    dest = os.path.join(WORK, name)
    os.makedirs(dest)
    with tarfile.open(os.path.join(CORPUS, name + ".tar.gz")) as tar:
        for m in tar.getmembers():
            if m.name.startswith("/") or ".." in m.name.split("/") or not (m.isfile() or
                                                                       m.isdir()):
                raise ValueError("unexpected member %r in %s.tar.gz" % (m.name, name))
        tar.extractall(dest)
    tops = os.listdir(dest)
    if len(tops) != 1:
        raise ValueError("%s.tar.gz: expected one top-level directory, got %r" % (name, tops))
    root = os.path.join(dest, tops[0])
    sth.make_writable(root)
    return root


def selftest_run(root, conf_text):
    conf = os.path.join(WORK, os.path.basename(root) + ".conf")
    with open(conf, "w") as fh:
        fh.write(conf_text)
    tmp = tempfile.mkdtemp(prefix="tmp-", dir=WORK)
    data = tempfile.mkdtemp(prefix="data-", dir=WORK)  # keeps the project tree as unpacked
    env = sth.base_env(dict(sth.SCRUB, SANDBOX_REPO_PATH=root, SANDBOX_DATA_DIR=data,
                            TMPDIR=tmp, PYTHONPATH=None))
    rc, out, err = sth.run([BIN, "-c", conf, "run", "--json", "--retries", "0"], env=env,
                           cwd=root, timeout=600)
    res = None
    lines = out.splitlines()
    if lines:
        try:
            res = json.loads(lines[-1])
        except ValueError:
            res = None
    return rc, res, out, err


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_corpus_counts(name):
    conf_text, pp, readme, want_rc = PROJECTS[name]
    if not os.path.exists(os.path.join(CORPUS, name + ".tar.gz")):
        pytest.skip("tests/corpus/%s.tar.gz is missing" % name)
    root = unpack(name)
    rc, res, out, err = selftest_run(root, conf_text)
    ok(isinstance(res, dict) and res.get("event") == "results",
       "%s: run --json ends with the results object" % name,
       "rc=%r\nstderr: %s\nstdout tail: %s" % (rc, err[-2000:], out[-1000:]))
    res = res if isinstance(res, dict) else {}
    note("%s: batches %r" % (name, res.get("workflow_tests")))
    got = {k: res.get(k) for k in KEYS}
    env = {"PYTHONPATH": ":".join(os.path.join(root, p) for p in pp) if pp else None}
    summ = sth.pytest_summary(cwd=root, env=env, timeout=600)
    plain = {"passed": summ["passed"] + summ["xpassed"],
             "failed": summ["failed"] + summ["errors"], "skipped": summ["skipped"]}
    is_eq(plain, readme, "%s: plain pytest gives the README's counts (%s)" % (name, summ["line"]))
    is_eq(got, plain, "%s: selftest-core run gives plain pytest's counts" % name)
    is_eq(got, readme, "%s: %s" % (name, ", ".join("%d %s" % (readme[k], k) for k in KEYS
                                                   if readme[k])))
    is_eq(rc, want_rc, "%s: exit status %d" % (name, want_rc))

