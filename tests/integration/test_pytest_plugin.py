# SPDX-License-Identifier: MIT
"""Tests of python/selftest_pytest_plugin.py against the fixture projects.

For each fixture, pytest runs with the plugin (PYTHONPATH = the plugin dir,
SELF_TEST_RESULTS_FILE set), once without xdist and once with -n 2.  Checks:
the JSON lines are well formed with exactly the documented keys; the counts of
emitted outcomes equal pytest's own summary line of the same run and the known
outcome of the fixture (tests/fixtures/projects/EXPECTED.md); the end event's
exitstatus equals the process exit status; a crash (exit3, segv) leaves the
events before it and no end event, and its test_start without a test_finish
names the test that ended the process; every test's test_start and
test_finish.  Also: the timeout fixture killed mid-run, orphan checks, the
excerpt bound, a failing test's captured stdout/stderr (bounded to 64 KiB, the
end kept, with a note), an unwritable results file, the events framed on stdout
(SELF_TEST_RESULTS_FRAME) equal to the file's.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import st_helpers as sth
from st_helpers import is_eq, ok

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
START_KEYS = {"event", "pid", "argv", "workers", "python", "pytest"}
TEST_KEYS = {"event", "nodeid", "file", "line", "outcome", "phase", "duration", "excerpt",
             "stdout", "stderr", "skip_reason"}
MARK_KEYS = {"event", "nodeid"}  # test_start, test_finish
CERR_KEYS = {"event", "nodeid", "file", "excerpt"}
END_KEYS = {"event", "exitstatus", "counts", "duration"}
# summary-line key for each plugin outcome
SUMMARY_OF = {"passed": "passed", "failed": "failed", "error": "errors",
              "skipped": "skipped", "xfailed": "xfailed", "xpassed": "xpassed"}


def C(**kw):
    d = dict.fromkeys(OUTCOMES, 0)
    d.update(kw)
    return d


# (label, fixture, extra args, {mode: (expected counts or None for a crash, exit status)})
# mode "plain" = no xdist, "xdist" = -n 2.
CASES = [
    ("passing", "passing", [], {
        "plain": (C(passed=4, skipped=1, xfailed=1, xpassed=1), 0),
        "xdist": (C(passed=4, skipped=1, xfailed=1, xpassed=1), 0)}),
    ("failing", "failing", [], {
        "plain": (C(passed=3, failed=2), 1),
        "xdist": (C(passed=3, failed=2), 1)}),
    ("fixture_error", "fixture_error", [], {
        "plain": (C(passed=2, failed=1, error=3), 1),
        "xdist": (C(passed=2, failed=1, error=3), 1)}),
    ("collect_error", "collect_error", [], {
        "plain": (C(error=1), 2),                 # interrupted by the collection error
        "xdist": (C(passed=2, error=1), 1)}),     # xdist runs the good file anyway
    ("exit3", "exit3", [], {
        "plain": (None, 3),
        "xdist": (C(passed=1, failed=1), 1)}),    # xdist: "worker crashed" = failed
    ("segv", "segv", [], {
        "plain": (None, -signal.SIGSEGV),
        "xdist": (C(passed=1, failed=1), 1)}),
    ("empty", "empty", [], {
        "plain": (C(), 5),
        "xdist": (C(), 5)}),
    ("split", "split", [], {
        "plain": (C(passed=6), 0),
        "xdist": (C(passed=6), 0)}),
    ("split a b", "split", ["a", "b"], {
        "plain": (C(passed=4), 0),
        "xdist": (C(passed=4), 0)}),
    ("markers", "markers", [], {
        "plain": (C(passed=7), 0),
        "xdist": (C(passed=7), 0)}),
    ("markers -k -m", "markers", ["-k", "not slow", "-m", "smoke"], {
        "plain": (C(passed=2), 0),
        "xdist": (C(passed=2), 0)}),
    ("sample", "sample", [], {
        "plain": (C(passed=7), 0),
        "xdist": (C(passed=7), 0)}),
]
# crash fixtures: the events that must be there before the crash
CRASH_PASSED = {"exit3": "tests/test_exit3.py::test_first",
                "segv": "tests/test_segv.py::test_first"}
# ... and the test that ends the process (started, never finished)
CRASH_RUNNING = {"exit3": "tests/test_exit3.py::test_exit",
                 "segv": "tests/test_segv.py::test_segv"}
MARKERS_SELECTED = {"tests/test_markers.py::test_smoke_login",
                    "tests/test_markers.py::test_smoke_logout"}


def plugin_env(results, extra=None):
    env = {"PYTHONPATH": sth.plugin_dir(), "SELF_TEST_RESULTS_FILE": results}
    env.update(extra or {})
    return sth.base_env(env)


def read_events(path):
    """(events, bad_lines)"""
    events, bad = [], []
    if not os.path.exists(path):
        return events, bad
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                ev = json.loads(line)
                if not isinstance(ev, dict):
                    raise ValueError("not an object")
                events.append(ev)
            except ValueError:
                bad.append(line)
    return events, bad


def emitted_counts(events):
    c = C()
    for ev in events:
        if ev.get("event") == "test" and ev.get("outcome") in c:
            c[ev["outcome"]] += 1
        elif ev.get("event") == "collect_error":
            c["error"] += 1
    return c


def summary_as_outcomes(summ):
    return {o: summ[SUMMARY_OF[o]] for o in OUTCOMES}


def passed_names(events):
    """The sorted test names (no file, no class) of the passed reports."""
    return sorted(e["nodeid"].split("::")[-1] for e in events
                  if e.get("event") == "test" and e.get("outcome") == "passed")


def unfinished(events):
    """Node ids with a test_start and no test_finish after it."""
    running = []
    for e in events:
        if e.get("event") == "test_start":
            running.append(e["nodeid"])
        elif e.get("event") == "test_finish" and e["nodeid"] in running:
            running.remove(e["nodeid"])
    return running


def check_shapes(label, events, argv, workers):
    """Key sets and value types of every event."""
    problems = []
    starts = [e for e in events if e.get("event") == "start"]
    if len(starts) != 1 or events[0].get("event") != "start":
        problems.append("want exactly one start event, first: %d" % len(starts))
    for ev in events:
        kind = ev.get("event")
        if kind == "start":
            if set(ev) != START_KEYS:
                problems.append("start keys %s" % sorted(ev))
                continue
            if not isinstance(ev["pid"], int):
                problems.append("start pid %r" % ev["pid"])
            if ev["argv"] != argv:
                problems.append("start argv %r != %r" % (ev["argv"], argv))
            if ev["workers"] != workers:
                problems.append("start workers %r != %r" % (ev["workers"], workers))
            if ev["python"] != "%d.%d.%d" % sys.version_info[:3] and \
                    not isinstance(ev["python"], str):
                problems.append("start python %r" % ev["python"])
            if not isinstance(ev["pytest"], str) or not ev["pytest"][:1].isdigit():
                problems.append("start pytest %r" % ev["pytest"])
        elif kind == "test":
            if set(ev) != TEST_KEYS:
                problems.append("test keys %s" % sorted(ev))
                continue
            if ev["outcome"] not in OUTCOMES:
                problems.append("outcome %r" % ev["outcome"])
            if ev["phase"] not in ("setup", "call", "teardown", "collect"):
                problems.append("phase %r" % ev["phase"])
            if not isinstance(ev["duration"], float) or ev["duration"] < 0:
                problems.append("duration %r" % ev["duration"])
            if ev["line"] is not None and (not isinstance(ev["line"], int) or ev["line"] < 1):
                problems.append("line %r for %r" % (ev["line"], ev["nodeid"]))
            if ev["phase"] != "collect" and "::" in ev["nodeid"] and \
                    not isinstance(ev["line"], int) and "crashed" not in (ev["excerpt"] or ""):
                problems.append("no line for %r" % ev["nodeid"])
            if ev["skip_reason"] is not None and (
                    ev["outcome"] not in ("skipped", "xfailed") or
                    not isinstance(ev["skip_reason"], str) or not ev["skip_reason"] or
                    ev["skip_reason"].startswith("Skipped: ")):
                problems.append("skip_reason %r of %s %s" % (ev["skip_reason"], ev["outcome"],
                                                             ev["nodeid"]))
            if ev["file"] != ev["nodeid"].split("::")[0] or not ev["file"].endswith(".py"):
                problems.append("file %r for %r" % (ev["file"], ev["nodeid"]))
            if ev["outcome"] in ("failed", "error"):
                if not isinstance(ev["excerpt"], str) or not ev["excerpt"] \
                        or len(ev["excerpt"]) > 4000:
                    problems.append("excerpt of %s" % ev["nodeid"])
            elif ev["excerpt"] is not None:
                problems.append("excerpt not null for %s %s" % (ev["outcome"], ev["nodeid"]))
            for k in ("stdout", "stderr"):
                if ev[k] is not None and (ev["outcome"] not in ("failed", "error") or
                                          not isinstance(ev[k], str) or not ev[k]):
                    problems.append("%s of %s %s: %r" % (k, ev["outcome"], ev["nodeid"],
                                                        ev[k]))
        elif kind in ("test_start", "test_finish"):
            if set(ev) != MARK_KEYS or not isinstance(ev["nodeid"], str) or not ev["nodeid"]:
                problems.append("%s keys %s" % (kind, sorted(ev)))
        elif kind == "collect_error":
            if set(ev) != CERR_KEYS:
                problems.append("collect_error keys %s" % sorted(ev))
                continue
            if not isinstance(ev["excerpt"], str) or not ev["excerpt"]:
                problems.append("collect_error excerpt")
            if ev["file"] != ev["nodeid"].split("::")[0]:
                problems.append("collect_error file %r" % ev["file"])
        elif kind == "end":
            if set(ev) != END_KEYS:
                problems.append("end keys %s" % sorted(ev))
                continue
            if set(ev["counts"]) != set(OUTCOMES):
                problems.append("end counts keys %s" % sorted(ev["counts"]))
            if not isinstance(ev["exitstatus"], int) or not isinstance(ev["duration"], float):
                problems.append("end types")
        else:
            problems.append("unknown event %r" % kind)
    ok(not problems, "%s: event shapes" % label, "\n".join(problems))


def run_case(label, fixture, args, mode, expected, status):
    cwd = sth.fixture(fixture)
    xargs = ["-n", "2"] if mode == "xdist" else []
    extra = ["-p", "no:cacheprovider", "-p", "selftest_pytest_plugin"] + xargs + list(args)
    label = "%s [%s]" % (label, mode)
    with sth.tmpdir() as d:
        results = os.path.join(d, "results.jsonl")
        rc, out, err = sth.run([sth.PYTHON, "-m", "pytest"] + extra,
                               env=plugin_env(results), cwd=cwd, timeout=300)
        events, bad = read_events(results)
    summ = sth.parse_summary(out)
    tail = "stdout tail:\n%s\nstderr tail:\n%s" % (out[-1500:], err[-800:])

    is_eq(rc, status, "%s: exit status" % label)
    ok(not bad, "%s: every line is a JSON object" % label, "".join(bad[:3]))
    if not events:
        ok(False, "%s: events written" % label, tail)
        return
    check_shapes(label, events, extra, 2 if mode == "xdist" else 0)
    got = emitted_counts(events)
    ends = [e for e in events if e.get("event") == "end"]

    if expected is None:  # the interpreter died: no summary, no end event
        ok(summ["line"] is None, "%s: pytest printed no summary" % label, tail)
        ok(not ends, "%s: no end event after the crash" % label)
        first = CRASH_PASSED[fixture]
        ok(any(e.get("event") == "test" and e.get("nodeid") == first and
               e.get("outcome") == "passed" for e in events),
           "%s: the test before the crash was recorded" % label,
           json.dumps(events, indent=1)[:2000])
        is_eq(unfinished(events), [CRASH_RUNNING[fixture]],
              "%s: the one test started and not finished is the one that crashed" % label)
        return
    # under xdist a crashed worker's test is reported failed but never finished
    is_eq(unfinished(events), [CRASH_RUNNING[fixture]] if fixture in CRASH_RUNNING else [],
          "%s: every started test finished (but a crashed worker's)" % label)
    reported = {e["nodeid"] for e in events if e.get("event") == "test"
                and e["phase"] != "collect"}
    started = {e["nodeid"] for e in events if e.get("event") == "test_start"}
    ok(reported <= started, "%s: a test_start for every reported test" % label,
       sorted(reported - started))

    ok(summ["line"] is not None, "%s: pytest summary line found" % label, tail)
    is_eq(got, summary_as_outcomes(summ),
          "%s: emitted outcomes equal pytest's summary (%s)" % (label, summ["line"]))
    is_eq(got, expected, "%s: emitted outcomes equal the known outcome" % label)
    if ok(len(ends) == 1 and events[-1] is ends[0], "%s: one end event, last" % label):
        end = ends[0]
        is_eq(end["exitstatus"], rc, "%s: end exitstatus equals the exit status" % label)
        is_eq(end["counts"], got, "%s: end counts equal the emitted events" % label)
    if fixture == "markers" and args:
        is_eq({e["nodeid"] for e in events if e.get("event") == "test"}, MARKERS_SELECTED,
              "%s: -k/-m selected the known tests" % label)
    if fixture == "fixture_error":
        phases = sorted((e["nodeid"].split("::")[1], e["phase"], e["outcome"])
                        for e in events if e.get("event") == "test")
        is_eq(phases, [("test_ok", "call", "passed"),
                       ("test_setup_error", "setup", "error"),
                       ("test_teardown_error_after_fail", "call", "failed"),
                       ("test_teardown_error_after_fail", "teardown", "error"),
                       ("test_teardown_error_after_pass", "call", "passed"),
                       ("test_teardown_error_after_pass", "teardown", "error")],
              "%s: phases and outcomes per report" % label)
        exc = [e["excerpt"] for e in events if e.get("event") == "test"
               and e["outcome"] == "error" and e["phase"] == "setup"]
        ok(exc and "setup exploded" in exc[0], "%s: setup error excerpt" % label)
    if fixture == "collect_error":
        ce = [e for e in events if e.get("event") == "collect_error"]
        ok(len(ce) == 1 and ce[0]["file"] == "tests/test_broken.py"
           and "SyntaxError" in ce[0]["excerpt"],
           "%s: collect_error event for tests/test_broken.py" % label,
           json.dumps(ce)[:1500])


def run_timeout(mode):
    """Kill the timeout fixture once test_fast is recorded: no end event."""
    label = "timeout [%s]" % mode
    xargs = ["-n", "2"] if mode == "xdist" else []
    with sth.tmpdir() as d:
        results = os.path.join(d, "results.jsonl")
        proc = subprocess.Popen(
            sth.pytest_cmd([], xargs, plugin=True), cwd=sth.fixture("timeout"),
            env=plugin_env(results), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        seen = False
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                events, _ = read_events(results)
                if any(e.get("event") == "test" and
                       e.get("nodeid") == "tests/test_timeout.py::test_fast" and
                       e.get("outcome") == "passed" for e in events):
                    seen = True
                    break
                time.sleep(0.2)
            time.sleep(0.5)
            still_running = proc.poll() is None
        finally:
            sth.kill_group(proc)
            proc.wait()
        events, bad = read_events(results)
    ok(seen, "%s: test_fast recorded while test_sleep runs" % label)
    ok(still_running, "%s: pytest still running (sleeping) when killed" % label)
    ok(not bad and not any(e.get("event") == "end" for e in events),
       "%s: no end event after the kill" % label)
    ok(not any(e.get("nodeid", "").endswith("::test_sleep") for e in events
               if e.get("event") == "test"),
       "%s: no test event for the unfinished test" % label)
    is_eq(unfinished(events), ["tests/test_timeout.py::test_sleep"],
          "%s: test_start without test_finish names the test that was running" % label)


def run_orphans():
    root = sth.fixture("sample")
    with sth.tmpdir() as d:
        proj = os.path.join(d, "proj")
        os.makedirs(os.path.join(proj, "pkg"))
        for name, text in (("pkg/__init__.py", ""),
                           ("pkg/good.py", "VALUE = 1\n"),
                           ("pkg/bad.py", "raise ValueError('boom at import')\n"),
                           ("script.py", "import sys\nif __name__ == '__main__':\n"
                                         "    sys.exit(2)\nDONE = True\n")):
            with open(os.path.join(proj, name), "w") as fh:
                fh.write(text)
        work = os.path.join(d, "work")
        os.mkdir(work)
        for label, rootdir, entries, want in (
            ("orphans sample", root,
             [{"path": "calc/legacy_report.py", "module": "calc.legacy_report"}],
             {"orphan::calc/legacy_report.py": "passed"}),
            ("orphans mixed", proj,
             [{"path": "pkg/good.py", "module": "pkg.good"},
              {"path": "pkg/bad.py", "module": "pkg.bad"},
              {"path": "script.py", "module": None},
              {"path": "pkg/missing.py", "module": "pkg.missing"}],
             {"orphan::pkg/good.py": "passed", "orphan::pkg/bad.py": "failed",
              "orphan::script.py": "passed", "orphan::pkg/missing.py": "failed"}),
        ):
            results = os.path.join(d, label.replace(" ", "_") + ".jsonl")
            env = plugin_env(results, {"SELF_TEST_ORPHAN_MODULES": json.dumps(entries)})
            rc, out, err = sth.run(
                sth.pytest_cmd(["."], ["-q", "--rootdir=" + rootdir], plugin=True),
                env=env, cwd=work, timeout=120)
            events, bad = read_events(results)
            tests = {e["nodeid"]: e for e in events if e.get("event") == "test"}
            is_eq({k: v["outcome"] for k, v in tests.items()}, want,
                  "%s: one item per module, outcomes" % label)
            is_eq({k: v["file"] for k, v in tests.items()},
                  {k: k.split("::", 1)[1] for k in want}, "%s: file = module path" % label)
            is_eq(rc, 1 if "failed" in want.values() else 0, "%s: exit status" % label)
            if "orphan::pkg/bad.py" in tests:
                ok("boom at import" in (tests["orphan::pkg/bad.py"]["excerpt"] or ""),
                   "%s: failure excerpt has the error" % label)
            summ = sth.parse_summary(out)
            is_eq(emitted_counts(events), summary_as_outcomes(summ),
                  "%s: counts equal pytest's summary" % label)
        ok(os.listdir(work) == [], "orphans: nothing written in the working dir",
           repr(os.listdir(work)))


def run_misc():
    with sth.tmpdir() as d:
        proj = os.path.join(d, "proj")
        os.mkdir(proj)
        with open(os.path.join(proj, "pytest.ini"), "w") as fh:
            fh.write("[pytest]\n")
        with open(os.path.join(proj, "test_long.py"), "w") as fh:
            fh.write("def test_long():\n"
                     "    raise ValueError('A' * 6000 + 'THE-END')\n\n\n"
                     "def test_ok():\n    pass\n")
        results = os.path.join(d, "r.jsonl")
        rc, out, err = sth.run(sth.pytest_cmd([], [], plugin=True),
                               env=plugin_env(results), cwd=proj)
        events, _ = read_events(results)
        exc = [e["excerpt"] for e in events if e.get("outcome") == "failed"]
        ok(len(exc) == 1 and len(exc[0]) <= 4000 and exc[0].startswith("...\n")
           and "THE-END" in exc[0], "excerpt bounded to 4000 chars, keeps the end",
           repr([len(x) for x in exc]))

        # captured output of failing tests: bounded, the end kept, a note when cut
        with open(os.path.join(proj, "test_out.py"), "w") as fh:
            fh.write("import sys\n\n\n"
                     "def test_loud():\n"
                     "    sys.stdout.write('x' * 100000 + 'OUT-END\\n')\n"
                     "    sys.stderr.write('err line\\n')\n"
                     "    assert False\n\n\n"
                     "def test_quiet_fail():\n"
                     "    print('small')\n"
                     "    assert False\n\n\n"
                     "def test_pass_prints():\n"
                     "    print('not kept')\n")
        results_o = os.path.join(d, "o.jsonl")
        sth.run(sth.pytest_cmd(["test_out.py"], [], plugin=True),
                env=plugin_env(results_o), cwd=proj)
        os.unlink(os.path.join(proj, "test_out.py"))
        tests = {e["nodeid"].split("::")[-1]: e for e in read_events(results_o)[0]
                 if e.get("event") == "test"}
        loud = tests.get("test_loud") or {}
        out_l = loud.get("stdout") or ""
        ok(out_l.startswith("[selftest: ") and " earlier bytes not kept]\n" in out_l and
           out_l.endswith("OUT-END\n") and len(out_l.encode()) <= 64 * 1024 + 64,
           "a failing test's stdout is cut to 64 KiB, keeps the end, says so",
           repr(out_l[:80]) + " ... " + repr(out_l[-40:]) + " len %d" % len(out_l))
        is_eq(loud.get("stderr"), "err line\n", "a failing test's stderr is kept")
        is_eq((tests.get("test_quiet_fail") or {}).get("stdout"), "small\n",
              "a short stdout is kept whole, without a note")
        is_eq(((tests.get("test_pass_prints") or {}).get("stdout"),
               (tests.get("test_pass_prints") or {}).get("stderr")), (None, None),
              "a passing test's output is not kept")

        # Without xdist a passed test's lines wait for the next test_start (one write a
        # test). What the file says when the process ends is unchanged: the last test's lines
        # are written when it finishes, before any session-end hook (here one that ends the
        # process), and a test that ends the process in its teardown is the one running,
        # after every earlier test's lines.
        sub = sth.write_project(d, {
            "conftest.py": ("import os\n\n\n"
                            "def pytest_sessionfinish(session):\n"
                            "    if os.environ.get('END_IN_SESSIONFINISH'):\n"
                            "        os._exit(7)\n"),
            "test_held.py": ("import os\nimport pytest\n\n\n"
                             "@pytest.fixture\n"
                             "def dies_in_teardown():\n"
                             "    yield\n"
                             "    if os.environ.get('END_IN_TEARDOWN'):\n"
                             "        os._exit(9)\n\n\n"
                             "def test_a():\n    pass\n\n\n"
                             "def test_b():\n    pass\n\n\n"
                             "def test_c(dies_in_teardown):\n    pass\n")})
        held = {}
        for case, var in (("sessionfinish", "END_IN_SESSIONFINISH"),
                          ("teardown", "END_IN_TEARDOWN")):
            res_h = os.path.join(d, "held-%s.jsonl" % case)
            rc_h, _, err_h = sth.run(sth.pytest_cmd([], [], plugin=True),
                                     env=plugin_env(res_h, {var: "1"}), cwd=sub)
            evs = read_events(res_h)[0]
            held[case] = (rc_h, evs)
        rc_h, evs = held["sessionfinish"]
        is_eq((rc_h, passed_names(evs), unfinished(evs)), (7, ["test_a", "test_b", "test_c"], []),
              "ended in a session-end hook: every test's report and test_finish are written")
        rc_h, evs = held["teardown"]
        is_eq((rc_h, passed_names(evs), [n.split("::")[-1] for n in unfinished(evs)]),
              (9, ["test_a", "test_b"], ["test_c"]),
              "ended in a test's teardown: the earlier tests' lines, that test running")

        # A passed setup or teardown is not counted (pytest's own answer, taken without
        # asking pytest's hook while only pytest implements it); a conftest.py that counts one
        # is asked.
        sub = sth.write_project(d, {
            "conftest.py": ("def pytest_report_teststatus(report, config):\n"
                            "    if report.when == 'teardown' and report.passed and \\\n"
                            "            report.nodeid.endswith('test_counted'):\n"
                            "        return 'skipped', 's', 'SKIPPED-TEARDOWN'\n"),
            "test_status.py": "def test_counted():\n    pass\n\n\ndef test_plain():\n    pass\n"})
        res_s = os.path.join(d, "status.jsonl")
        sth.run(sth.pytest_cmd([], [], plugin=True), env=plugin_env(res_s), cwd=sub)
        got = sorted((e["nodeid"].split("::")[-1], e["phase"], e["outcome"])
                     for e in read_events(res_s)[0] if e.get("event") == "test")
        is_eq(got, [("test_counted", "call", "passed"), ("test_counted", "teardown", "skipped"),
                    ("test_plain", "call", "passed")],
              "a conftest.py's test status of a passed teardown is recorded")

        # the start gate: with SELF_TEST_START_GATE=fd:N the plugin reads one byte from N
        # before pytest loads anything of the project (a conftest.py), and removes the variable
        sub = sth.write_project(d, {
            "conftest.py": ("import os\n"
                            "open(os.path.join(os.path.dirname(__file__), 'loaded'), 'w').write(\n"
                            "    repr(os.environ.get('SELF_TEST_START_GATE')))\n"),
            "test_gate.py": "def test_gate():\n    pass\n"})
        rfd, wfd = os.pipe()
        env_g = plugin_env(os.path.join(d, "gate.jsonl"),
                           {"SELF_TEST_START_GATE": "fd:%d" % rfd})
        proc = subprocess.Popen(sth.pytest_cmd([], [], plugin=True), env=env_g, cwd=sub,
                                pass_fds=(rfd,), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        os.close(rfd)
        try:
            time.sleep(2)
            waited = proc.poll() is None and not os.path.exists(os.path.join(sub, "loaded"))
            try:
                os.write(wfd, b"g")
            except BrokenPipeError:
                pass  # pytest did not wait: it has ended (waited is False)
            rc_g = proc.wait(timeout=60)
        finally:
            os.close(wfd)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        ok(waited, "start gate: nothing of the project is loaded before the byte arrives")
        is_eq(rc_g, 0, "start gate: then the session runs")
        with open(os.path.join(sub, "loaded")) as fh:
            is_eq(fh.read(), "None", "start gate: the variable is gone for the project's code")

        # -p selftest_pytest_plugin loads the plugin without pytest's assertion rewriting,
        # which would parse and compile its source again in every process: a small module
        # takes the name and puts the implementation, imported from its byte-compiled file
        # by Python's own loader, in its place
        sub_l = sth.write_project(d, {
            "conftest.py": (
                "import os\nimport sys\n\n\n"
                "def pytest_configure(config):\n"
                "    impl = sys.modules.get('selftest_pytest_plugin_impl')\n"
                "    got = config.pluginmanager.get_plugin('selftest_pytest_plugin')\n"
                "    with open(os.path.join(str(config.rootpath), 'loader'), 'w') as fh:\n"
                "        fh.write('%s %s' % (impl is not None and got is impl,\n"
                "                            type(getattr(impl, '__loader__', None)).__name__))\n"),
            "test_l.py": "def test_l():\n    pass\n"})
        rc_l, out_l, err_l = sth.run(sth.pytest_cmd([], [], plugin=True),
                                     env=plugin_env(os.path.join(d, "l.jsonl")), cwd=sub_l)
        ok(rc_l == 0, "loader project: pytest passes", out_l[-800:] + err_l[-800:])
        with open(os.path.join(sub_l, "loader")) as fh:
            is_eq(fh.read(), "True SourceFileLoader",
                  "the plugin is registered as selftest_pytest_plugin, loaded without "
                  "assertion rewriting")
        is_eq(passed_names(read_events(os.path.join(d, "l.jsonl"))[0]), ["test_l"],
              "loader project: the plugin records the test")

        rc2, out2, err2 = sth.run(
            sth.pytest_cmd([], [], plugin=True),
            env=plugin_env(os.path.join(d, "no", "such", "dir", "r.jsonl")), cwd=proj)
        is_eq(rc2, rc, "unwritable results file: pytest runs normally")

        env = sth.base_env({"PYTHONPATH": sth.plugin_dir()})
        rc3, out3, err3 = sth.run(sth.pytest_cmd([], [], plugin=True), env=env, cwd=proj)
        is_eq((rc3, sorted(os.listdir(proj))), (rc, ["pytest.ini", "test_long.py"]),
              "SELF_TEST_RESULTS_FILE unset: plugin writes nothing")


def frames_of(out, token):
    """The JSON lines framed on out (text) with token, and out without them."""
    marker = "\x1eselftest-%s " % token
    lines, rest, pos = [], [], 0
    while True:
        i = out.find(marker, pos)
        if i < 0:
            rest.append(out[pos:])
            break
        rest.append(out[pos:i])
        j = out.find("\n", i)
        j = len(out) if j < 0 else j
        lines.append(out[i + len(marker):j])
        pos = j + 1
    return lines, "".join(rest)


def run_frames(fixture, mode):
    """SELF_TEST_RESULTS_FRAME: the events go to stdout as frames, the same as the file's."""
    label = "frames %s (%s)" % (fixture, mode)
    extra = ["-n", "2"] if mode == "xdist" else []
    proj = sth.fixture(fixture)
    with sth.tmpdir() as d:
        results = os.path.join(d, "r.jsonl")
        rc, out, err = sth.run(sth.pytest_cmd([], extra, plugin=True), env=plugin_env(results),
                               cwd=proj)
        file_events, _ = read_events(results)
        os.unlink(results)
        token = "T0k3n"
        rc2, out2, err2 = sth.run(sth.pytest_cmd([], extra, plugin=True),
                                  env=plugin_env(results, {"SELF_TEST_RESULTS_FRAME": token}),
                                  cwd=proj)
        lines, rest = frames_of(out2, token)
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                events.append({"bad": line})
        key = lambda e: (e.get("event"), e.get("nodeid"), e.get("outcome"))  # noqa: E731
        is_eq(rc2, rc, "%s: the same exit status as with the file" % label)
        ok(not os.path.exists(results), "%s: no results file is written" % label)
        is_eq(sorted(map(key, events), key=repr), sorted(map(key, file_events), key=repr),
              "%s: the frames carry the file's events" % label)
        ok(events and events[-1].get("event") == "end" and
           events[-1].get("counts") == file_events[-1].get("counts"),
           "%s: the end event last, with the file's counts" % label, repr(events[-1:]))
        ok("\x1eselftest-" not in rest and sth.parse_summary(rest)["line"] is not None and
           summary_as_outcomes(sth.parse_summary(rest)) ==
           summary_as_outcomes(sth.parse_summary(out)),
           "%s: the rest of stdout is pytest's own output (the same summary)" % label,
           rest[-600:])


@pytest.fixture(scope="module", autouse=True)
def plugin_there():
    if not os.path.exists(sth.PYTHON):
        pytest.skip("no %s" % sth.PYTHON)
    if not os.path.exists(os.path.join(sth.plugin_dir(), "selftest_pytest_plugin.py")):
        pytest.fail("no selftest_pytest_plugin.py in %s" % sth.plugin_dir())


@pytest.mark.parametrize("mode", ["plain", "xdist"])
@pytest.mark.parametrize("label,fixture,args,modes", CASES, ids=[c[0] for c in CASES])
def test_case(label, fixture, args, modes, mode):
    exp, status = modes[mode]
    run_case(label, fixture, args, mode, exp, status)


@pytest.mark.parametrize("mode", ["plain", "xdist"])
def test_timeout(mode):
    run_timeout(mode)


def test_orphans():
    run_orphans()


def test_misc():
    run_misc()


@pytest.mark.parametrize("mode", ["plain", "xdist"])
@pytest.mark.parametrize("fixture", ["failing", "output", "fixture_error"])
def test_frames(fixture, mode):
    run_frames(fixture, mode)
