# SPDX-License-Identifier: MIT
"""pytest configuration of selftest-core's integration tests (tests/integration).

Run from a built tree:   python3 -m pytest tests/integration
one test:                python3 -m pytest tests/integration/test_cli.py -k help
make check runs each file as `$(PYTHON) -m pytest --tap FILE` (tap_report.py: one TAP line per
test for automake's tap-driver). The environment make check sets (st_helpers.py) defaults to
the tree pytest runs from, so a run by hand sees the same binary, plugins and support files.

Fixtures: check (the soft checks of the running test; st_helpers.ok/is_eq/skip record into it),
selftest_bin (skips the test when the binary is not built), top_srcdir, top_builddir,
plugin_path, support_dir, workdir (a temporary directory removed afterwards), fixture_copy
(a writable copy of a fixture project), engines (the private container engines of
tools/engines/engines.sh, session-wide; skips without them).
"""
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_helpers  # noqa: E402

st_helpers.setup_environment()


def pytest_addoption(parser):
    parser.addoption("--tap", action="store_true", default=False,
                     help="print one TAP line per test on stdout (pytest's own report goes to "
                          "stderr), for automake's tap-driver")


def pytest_configure(config):
    if config.getoption("--tap"):
        import tap_report
        config.pluginmanager.register(tap_report.TapReporter(config), "selftest-tap-report")


# --------------------------------------------------------------------------------------------
# soft checks: every ok()/is_eq() of a test is recorded; the test fails at its end listing all
# the failed ones.


@pytest.fixture(autouse=True)
def check():
    """The Checker of the running test (st_helpers.ok/is_eq/skip/note record into it)."""
    c = st_helpers.Checker()
    st_helpers.set_current(c)
    yield c
    st_helpers.set_current(None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call":
        return
    c = getattr(item, "funcargs", {}).get("check")
    if not isinstance(c, st_helpers.Checker):
        return
    failures = c.failure_report()
    if failures:
        if rep.passed or rep.skipped:
            rep.outcome = "failed"
            rep.longrepr = failures
        else:  # the test also raised: keep its traceback, add the failed checks
            rep.sections.append(("failed checks", failures))
    elif rep.passed and c.skipped:
        rep.outcome = "skipped"
        path, lineno, _ = item.reportinfo()
        rep.longrepr = (str(path), (lineno or 0) + 1,
                        "Skipped: %d checks passed; skipped %s" % (len(c.passed), c.skip_reason()))


# --------------------------------------------------------------------------------------------
# the trees and the binary


@pytest.fixture(scope="session")
def top_srcdir():
    return st_helpers.top_srcdir()


@pytest.fixture(scope="session")
def top_builddir():
    return st_helpers.top_builddir()


@pytest.fixture(scope="session")
def selftest_bin():
    """The selftest binary under test; the test is skipped (with the reason) when it is not built."""
    why = st_helpers.missing_bin_reason()
    if why:
        pytest.skip(why)
    return st_helpers.selftest_bin()


@pytest.fixture(scope="session")
def plugin_path():
    return os.environ["SELF_TEST_PLUGIN_PATH"]


@pytest.fixture(scope="session")
def support_dir():
    return st_helpers.support_dir()


@pytest.fixture
def workdir():
    """A temporary directory, removed after the test."""
    d = tempfile.mkdtemp(prefix="selftest-it-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def fixture_copy(workdir):
    """fixture_copy(name, dest_name=None): a writable copy of tests/fixtures/projects/<name> (or
    sample) in the test's workdir."""
    def copy(name, dest_name=None):
        dst = os.path.join(workdir, dest_name or name)
        shutil.copytree(st_helpers.fixture(name), dst,
                        ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__",
                                                      "sandbox_data", "*.pyc"))
        st_helpers.make_writable(dst)
        return dst
    return copy


@pytest.fixture(scope="session")
def engines():
    """The private container engines (tools/engines/engines.sh: ST_ENGINES_DIR, or started here
    as root and stopped at the end of the session); skips without them."""
    eng, why = st_helpers.engines_up()
    if eng is None:
        pytest.skip(why)
    yield eng
    st_helpers.engines_down(eng)
