# SPDX-License-Identifier: MIT
"""TAP output of a pytest run, for automake's tap-driver (conftest.py registers it on --tap).

One line per test on stdout: "ok N - NODEID", "not ok N - NODEID" (followed by "# " lines with
the failure: the failed checks or the exception), "ok N - NODEID # SKIP reason", xfail as
"not ok N - NODEID # TODO reason", a collection error as "not ok N - NODEID (collection)",
and the plan last ("1..N"; "1..0 # SKIP ..." when nothing ran). pytest's own report (tracebacks,
captured output) goes to stderr, which tap-driver writes to the test's log without parsing it.
Like the TAP scripts this replaces, the exit status is 0 when tests failed (the "not ok" lines
count them) and pytest's for anything else (an interrupted or broken run is an ERROR).
"""
import os
import sys

import pytest

try:  # pytest >= 7
    from _pytest.config import create_terminal_writer
except ImportError:  # pragma: no cover
    create_terminal_writer = None


def _one_line(text):
    # "#" starts a directive in TAP; keep a name on one line.
    return " ".join(str(text).replace("#", "\\#").split())


class TapReporter:
    def __init__(self, config):
        self.config = config
        self.count = 0
        self.failed = 0
        self.reports = {}  # nodeid -> [reports of its phases]
        # TAP goes to the stdout pytest started with; everything else pytest prints to stderr.
        self.out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)

    def emit(self, line):
        self.out.write(line + "\n")
        self.out.flush()

    def diag(self, text):
        for line in str(text).splitlines() or [""]:
            self.emit("# " + line)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session):
        # after every pytest_configure (the terminal reporter registers itself in one), before
        # the reporter's first line
        config = self.config
        tr = config.pluginmanager.getplugin("terminalreporter")
        if tr is not None and create_terminal_writer is not None:
            tr._tw = create_terminal_writer(config, sys.stderr)

    def pytest_collectreport(self, report):
        if report.failed:
            self.count += 1
            self.failed += 1
            self.emit("not ok %d - %s (collection)" % (self.count, _one_line(report.nodeid or
                                                                               "collection")))
            self.diag(report.longreprtext)

    def pytest_runtest_logreport(self, report):
        self.reports.setdefault(report.nodeid, []).append(report)
        if report.when == "teardown":
            self.result(report.nodeid, self.reports.pop(report.nodeid))

    def result(self, nodeid, reports):
        self.count += 1
        name = _one_line(nodeid)
        bad = [r for r in reports if r.failed]
        skipped = [r for r in reports if r.skipped]
        xfail = [r for r in reports if hasattr(r, "wasxfail")]
        if bad:
            self.failed += 1
            self.emit("not ok %d - %s" % (self.count, name))
            for r in bad:
                self.diag("%s failed:" % r.when)
                self.diag(self._failure_text(r))
                for title, content in r.sections:
                    if title == "failed checks":
                        self.diag(content)
        elif xfail and skipped:
            self.emit("not ok %d - %s # TODO %s" % (self.count, name,
                                                     _one_line(xfail[0].wasxfail or "xfail")))
        elif xfail:
            self.emit("ok %d - %s # TODO %s" % (self.count, name,
                                                 _one_line(xfail[0].wasxfail or "xpass")))
        elif skipped:
            self.emit("ok %d - %s # SKIP %s" % (self.count, name, _one_line(self._skip_reason(
                skipped[0]))))
        else:
            self.emit("ok %d - %s" % (self.count, name))

    @staticmethod
    def _failure_text(report):
        crash = getattr(report.longrepr, "reprcrash", None)
        if crash is not None:  # an exception: where, and its message (the traceback is in the log)
            return "%s:%s: %s" % (crash.path, crash.lineno, crash.message)
        return report.longreprtext  # the failed checks

    @staticmethod
    def _skip_reason(report):
        lr = report.longrepr
        if isinstance(lr, tuple) and len(lr) == 3:
            reason = lr[2]
            return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason
        return report.longreprtext or "skipped"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if self.count == 0:
            self.emit("1..0 # SKIP no test selected")
        else:
            self.emit("1..%d" % self.count)
        if exitstatus in (pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.OK
