# SPDX-License-Identifier: MIT
"""Flaky tests (issue 15): a failed test is run again alone, by node id, on the same runtime; one
that then passes is flaky (counted apart in the summary, the results, metrics.db, the history
file and self_test_flaky_total; not failing the cycle unless fail_on_flaky); a regression is
only a test that passed last cycle and fails every attempt; the quarantine file (edited by
`selftest-core flaky --quarantine/--release`, atomically; a malformed one reported and left as
it is) excuses its tests' failures; `selftest-core flaky` lists tests by flakiness score.

The fixture (tests/fixtures/projects/flaky): test_fails_first_time fails on odd attempts (a
counter file in SELF_TEST_FIXTURE_STATE, a directory outside the project; in a container, where
that directory is not mounted, on the first attempt of the cycle), test_always_fails and
test_known_bad always fail, test_breaks_on_demand fails with SELF_TEST_FIXTURE_BROKEN set, and
test_slow_rerun (with SELF_TEST_FIXTURE_SLOW) fails and then hangs when run again."""
import json
import os
import shutil
import sqlite3
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest
import st_helpers as t

pytestmark = pytest.mark.usefixtures("selftest_bin")

NODE = "tests/test_flaky.py::"
FLAKY = NODE + "test_fails_first_time"
ALWAYS = NODE + "test_always_fails"
KNOWN = NODE + "test_known_bad"
BREAKS = NODE + "test_breaks_on_demand"
SLOW = NODE + "test_slow_rerun"


def plugin_built(name):
    dirs = (os.environ.get("SELF_TEST_PLUGIN_PATH") or "").split(":")
    return any(os.path.exists(os.path.join(d, f)) for d in dirs if d
               for f in (name + ".la", name + ".so", os.path.join(name, name + ".la")))


class Project:
    """A copy of the flaky fixture with its own config, data dir, history file, textfile and
    attempt counters (outside the project's tree)."""

    def __init__(self, workdir, extra_conf="", runtime_conf=""):
        self.work = workdir
        self.root = os.path.join(workdir, "project")
        shutil.copytree(t.fixture("flaky"), self.root,
                        ignore=shutil.ignore_patterns("__pycache__", "sandbox_data", "*.pyc",
                                                      ".pytest_cache"))
        t.make_writable(self.root)
        self.state = os.path.join(workdir, "state")
        os.makedirs(self.state)
        self.history = os.path.join(workdir, "history.json")
        self.textfile = os.path.join(workdir, "prom", "selftest.prom")
        os.makedirs(os.path.dirname(self.textfile))
        self.conf = os.path.join(workdir, "selftest.conf")
        plugins = ""
        if plugin_built("exporter-prometheus"):
            plugins = ('plugins = ({ kind = "exporter"; name = "exporter-prometheus";\n'
                       '  settings = { textfile = "%s"; }; });\n' % self.textfile)
        with open(self.conf, "w") as fh:
            fh.write('project_root = "%s";\npython = "%s";\nretries = 0;\nworkers = 1;\n'
                     'paths = ["tests"];\nhistory = "%s";\ntimeout = 60;\n%s%s%s'
                     % (self.root, t.PYTHON, self.history, plugins, runtime_conf, extra_conf))
        self.data = os.path.join(self.root, "sandbox_data")
        self.quarantine = os.path.join(self.data, "quarantine.json")

    def run(self, *args, env=None, command="run", timeout=240, state=True, verbose=False):
        e = {"SELF_TEST_FIXTURE_STATE": self.state if state else None,
             "SELF_TEST_FIXTURE_BROKEN": None, "SELF_TEST_FIXTURE_SLOW": None,
             "SELF_TEST_RERUN_FAILURES": None}
        e.update(env or {})
        argv = [t.selftest_bin()] + (["-v"] if verbose else []) + ["-c", self.conf, command] + \
            list(args)
        if command in ("run", "run-scheduled") and "--json" not in args:
            argv.append("--json")
        rc, out, err = t.run(argv, env=t.base_env(e), timeout=timeout, cwd=self.work)
        res = None
        for line in out.splitlines():
            if line.startswith("{"):
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if obj.get("event") == "results" or command == "flaky":
                    res = obj
        return rc, res or {}, out, err

    def attempts(self, name="fails_first_time"):
        p = os.path.join(self.state, name)
        return int(open(p).read()) if os.path.exists(p) else 0

    def db(self):
        return sqlite3.connect(os.path.join(self.data, "metrics.db"))

    def prom(self):
        if not os.path.exists(self.textfile):
            return {}
        got = {}
        for line in open(self.textfile):
            if line and not line.startswith("#"):
                k, _, v = line.strip().rpartition(" ")
                got[k] = v
        return got


def diag(rc, out, err):
    return "rc=%r\nstderr: %s\nstdout tail: %s" % (rc, err[-2000:], out[-1500:])


def outcome_of(res, nodeid):
    return [x.get("outcome") for x in res.get("tests", []) if x.get("nodeid") == nodeid]


def check_junit(path):
    """JUnit XML: the flaky test is a pass with the flaky property; a test that failed every
    attempt is a failure with its attempts; the counts leave the flaky test out."""
    if not os.path.exists(path):
        t.ok(False, "the JUnit XML file is written", path)
        return
    root = ET.parse(path).getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    props = {n: {p.get("name"): p.get("value") for p in c.iter("property")}
             for n, c in cases.items()}
    flaky = cases.get("test_fails_first_time")
    t.ok(flaky is not None and flaky.find("failure") is None and flaky.find("error") is None,
         "JUnit: the flaky test is a pass (no <failure>)")
    t.is_eq((props.get("test_fails_first_time") or {}).get("flaky"), "true",
            "JUnit: ...with the property flaky = true")
    t.is_eq((props.get("test_fails_first_time") or {}).get("selftest.attempts"), "2",
            "JUnit: ...and its attempts")
    always = cases.get("test_always_fails")
    t.ok(always is not None and always.find("failure") is not None,
         "JUnit: the test that failed every attempt is a failure")
    t.is_eq((props.get("test_always_fails") or {}).get("selftest.attempts"), "2",
            "JUnit: ...with its attempts")
    t.is_eq(root.get("failures"), "2", "JUnit: failures leave the flaky test out")
    xsd = os.path.join(t.top_srcdir(), "tests", "junit", "jenkins-junit.xsd")
    if shutil.which("xmllint") and os.path.exists(xsd):
        v = subprocess.run(["xmllint", "--noout", "--schema", xsd, path], capture_output=True,
                           text=True)
        t.ok(v.returncode == 0, "JUnit: valid against the Jenkins schema", v.stderr[-1000:])
    else:
        t.skip("JUnit schema", "xmllint is not installed (Debian package libxml2-utils)")


def test_rerun_flaky_quarantine_regression(workdir):
    """Items 1, 3 and 4 on the host, over four cycles."""
    p = Project(workdir)
    # cycle 1: the flaky test fails once and passes on its rerun; the two broken tests fail
    # both attempts: the cycle fails for them, not for the flaky one
    junit = os.path.join(workdir, "junit.xml")
    rc, res, out, err = p.run("--junit-xml", junit)
    t.is_eq(rc, 1, "cycle 1 exits 1 (two tests fail every attempt)")
    t.is_eq(res.get("flaky"), [FLAKY], "cycle 1: the test that passed when run again is flaky")
    t.is_eq(res.get("flaky_count"), 1, "cycle 1: flaky_count")
    t.is_eq((res.get("passed"), res.get("failed")), (3, 2),
            "cycle 1: the flaky test is neither passed nor failed")
    t.is_eq(outcome_of(res, FLAKY), ["flaky"], "its test entry's outcome is flaky")
    t.is_eq([x.get("attempts") for x in res.get("tests", []) if x.get("nodeid") == ALWAYS],
            [2], "a test that failed its rerun too: 2 attempts, still failed")
    t.is_eq(outcome_of(res, ALWAYS), ["failed"], "...outcome failed")
    t.is_eq(p.attempts(), 2, "the flaky test ran twice (the batch, then the rerun)")
    t.is_eq(res.get("reruns"), 3, "three reruns: the flaky test and the two broken ones")
    t.ok(0 < res.get("rerun_runtime", 0) <= res.get("total_runtime", 0),
         "the reruns' wall time is part of the cycle's", res.get("rerun_runtime"))
    check_junit(junit)
    sm = list(res.get("suite_metrics", {}).values())
    t.is_eq([b.get("flaky") for b in sm], [1], "the batch counts its flaky test apart")
    # the summary (no --json): a Flaky section and the count on the last line
    argv = [t.selftest_bin(), "-c", p.conf, "run"]
    s2 = os.path.join(workdir, "state-summary")  # its own counter: attempt 1 fails again
    os.makedirs(s2)
    rc_s, out_s, err_s = t.run(argv, env=t.base_env({"SELF_TEST_FIXTURE_STATE": s2}),
                               cwd=workdir, timeout=240)
    t.ok("Flaky (failed, then passed when run again alone)\n  " + FLAKY in out_s,
         "the summary lists the flaky test in its own section", out_s)
    t.ok(", 1 flaky (3 reruns," in out_s.splitlines()[-1], "the counts line has the flaky count",
         out_s)
    t.ok(FLAKY not in out_s.split("Failures")[-1], "the flaky test is not among the failures",
         out_s)

    db = p.db()
    runs = db.execute("SELECT flaky, failed, passed FROM runs ORDER BY id").fetchall()
    t.is_eq(runs[0], (1, 2, 3), "metrics.db runs.flaky of cycle 1")
    rows = db.execute("SELECT outcome, attempts, message FROM test_outcomes WHERE run = "
                      "(SELECT MIN(id) FROM runs) AND nodeid = ?", (FLAKY,)).fetchall()
    t.is_eq([r[:2] for r in rows], [("flaky", 2)], "metrics.db: outcome flaky, 2 attempts")
    t.ok(rows and "odd attempts fail" in (rows[0][2] or ""), "metrics.db keeps the failure "
         "message", rows)
    t.is_eq(db.execute("PRAGMA user_version").fetchone()[0], 3, "schema version 3")
    hist = json.load(open(p.history))
    t.is_eq([h.get("flaky") for h in hist][:1], [1], "the history entry counts the flaky test")
    if plugin_built("exporter-prometheus"):
        t.is_eq(p.prom().get("self_test_flaky_total"), "1", "the textfile's self_test_flaky_total")
        t.is_eq(p.prom().get("self_test_failed_total"), "2", "...and failed leaves it out")
    else:
        t.skip("textfile", "exporter-prometheus is not built")

    # quarantine the two broken tests: the cycle passes, they are still run and reported
    for node in (ALWAYS, KNOWN):
        rc, _, out, err = p.run("--quarantine", node, "--reason", "known: issue 99",
                                command="flaky")
        t.is_eq(rc, 0, "flaky --quarantine %s exits 0" % node)
    q = json.load(open(p.quarantine))
    t.is_eq(sorted(e["nodeid"] for e in q["tests"]), sorted([ALWAYS, KNOWN]),
            "the quarantine file lists both")
    t.ok(all(e["reason"] == "known: issue 99" and e["since"].endswith("Z") for e in q["tests"]),
         "with the reason and the date", q)
    t.is_eq(sorted(os.listdir(p.data)).count("quarantine.json"), 1, "no temp file left")
    t.ok(not [f for f in os.listdir(p.data) if "quarantine" in f and f != "quarantine.json"],
         "nothing but quarantine.json", os.listdir(p.data))
    rc, res, out, err = p.run()
    t.is_eq(rc, 0, "cycle with the broken tests quarantined exits 0 (the flaky one does not "
            "fail it either)")
    t.is_eq(sorted(res.get("quarantined", [])), sorted([ALWAYS, KNOWN]),
            "the quarantined failures are reported")
    t.is_eq(outcome_of(res, ALWAYS), ["failed"], "...as failed tests, still run")
    t.is_eq(res.get("flaky"), [FLAKY], "the flaky test is flaky again")
    t.is_eq(res.get("regressions"), [], "no regression")

    # fail_on_flaky: the same cycle fails
    with open(p.conf, "a") as fh:
        fh.write("fail_on_flaky = true;\n")
    rc, res, out, err = p.run()
    t.is_eq((rc, res.get("flaky")), (1, [FLAKY]), "fail_on_flaky = true: a flaky test fails "
            "the cycle")
    with open(p.conf) as fh:
        body = fh.read().replace("fail_on_flaky = true;\n", "")
    with open(p.conf, "w") as fh:
        fh.write(body)

    # a regression: passed last cycle, fails every attempt now; the flaky test, which passed
    # last cycle and failed its first attempt now, is not one
    rc, res, out, err = p.run(env={"SELF_TEST_FIXTURE_BROKEN": "1"})
    t.is_eq(rc, 1, "the broken test fails the cycle")
    t.is_eq(res.get("regressions"), [BREAKS], "the only regression is the test that failed "
            "every attempt")
    t.is_eq(res.get("flaky"), [FLAKY], "the flaky test is flaky, not a regression")

    # the score: the flaky test is listed, the one broken once is not (one change of state)
    rc, fl, out, err = p.run("--json", command="flaky")
    t.is_eq(rc, 0, "flaky --json exits 0")
    listed = {x["nodeid"]: x for x in fl.get("tests", [])}
    t.ok(FLAKY in listed and listed[FLAKY]["score"] > fl.get("threshold", 1),
         "the flaky test is above the threshold", fl)
    t.ok(FLAKY in listed and listed[FLAKY]["flaky"] >= 4 and listed[FLAKY]["last_flake"],
         "with its flaky runs and last flake", listed.get(FLAKY))
    t.ok(FLAKY in listed and "odd attempts fail" in (listed[FLAKY]["message"] or ""),
         "and its failure message", listed.get(FLAKY))
    t.ok(BREAKS not in listed, "a test that broke once is not flaky", fl)
    t.ok(ALWAYS not in listed, "a test that always fails is not flaky", fl)
    t.is_eq(sorted(e["nodeid"] for e in fl.get("quarantine", [])), sorted([ALWAYS, KNOWN]),
            "flaky --json lists the quarantine")
    rc, _, out, err = p.run(command="flaky")
    t.ok("Flaky tests (score above 0.05 over the last 20 runs)" in out and FLAKY in out and
         "Quarantined (" in out, "flaky prints the list and the quarantine", out)

    # the HTML page shows them
    html_dir = os.path.join(workdir, "html")
    rc, _, out, err = p.run("--out", html_dir, command="html")
    page = open(os.path.join(html_dir, "index.html")).read() if rc == 0 else ""
    flaky_part = page.split('<section id="flaky">', 1)[-1].split("</section>", 1)[0]
    t.ok('<section id="flaky">' in page and FLAKY in flaky_part,
         "the HTML page has a flaky section naming the flaky test", err)
    n_runs = p.db().execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    t.ok("%d of %d" % (n_runs, n_runs) in flaky_part,
         "...flaky in every cycle shown (%d)" % n_runs, flaky_part[-1500:])
    t.ok("(quarantined: does not fail the cycle)" in page,
         "the page marks the quarantined failures")

    # release: the test counts again
    rc, _, out, err = p.run("--release", KNOWN, command="flaky")
    t.is_eq(rc, 0, "flaky --release exits 0")
    t.is_eq([e["nodeid"] for e in json.load(open(p.quarantine))["tests"]], [ALWAYS],
            "the released test is gone from the file")
    rc, res, out, err = p.run()
    t.is_eq((rc, res.get("quarantined")), (1, [ALWAYS]), "the released test fails the cycle "
            "again")
    rc, _, out, err = p.run("--release", KNOWN, command="flaky")
    t.is_eq(rc, 2, "releasing a test that is not quarantined is a usage error")
    t.ok("is not in the quarantine file" in err, "...saying so", err)


def test_rerun_settings(workdir):
    """rerun_failures: 0 turns reruns off; bad values are refused naming their source."""
    p = Project(workdir)
    rc, res, out, err = p.run("--rerun-failures", "0")
    t.is_eq((rc, res.get("flaky"), res.get("reruns")), (1, [], 0),
            "--rerun-failures 0: no reruns, no flaky test")
    t.is_eq(outcome_of(res, FLAKY), ["failed"], "...the flaky test is failed")
    t.is_eq(p.attempts(), 1, "...and ran once")
    os.unlink(os.path.join(p.state, "fails_first_time"))
    rc, res, out, err = p.run(env={"SELF_TEST_RERUN_FAILURES": "3"})
    t.is_eq(p.attempts(), 2, "SELF_TEST_RERUN_FAILURES=3: the flaky test is not run again once "
            "it passed")
    t.is_eq(res.get("flaky"), [FLAKY], "...and it is flaky")
    t.is_eq([x.get("attempts") for x in res.get("tests", []) if x.get("nodeid") == ALWAYS],
            [4], "a test failing every attempt ran 1 + 3 times")
    for args, env, where in (
            (["--rerun-failures", "11"], None, "option --rerun-failures: '11'"),
            (["--rerun-failures", "x"], None, "option --rerun-failures: 'x'"),
            ([], {"SELF_TEST_RERUN_FAILURES": "-1"},
             "environment variable SELF_TEST_RERUN_FAILURES: '-1'")):
        rc, res, out, err = p.run(*args, env=env)
        t.is_eq(rc, 2, "%s is refused with exit 2" % where)
        t.ok(where in err and "from 0 to 10" in err, "naming it: " + where, err)
    for line, msg in (("rerun_failures = 12;", "selftest.conf:"),
                      ("flaky_threshold = 1.5;", "not a number from 0 to 1"),
                      ("fail_on_flaky = 3;", "must be true or false"),
                      ("flaky_window = 0;", "'flaky_window' must be a whole number")):
        with open(p.conf) as fh:
            body = fh.read()
        with open(p.conf, "a") as fh:
            fh.write(line + "\n")
        rc, res, out, err = p.run()
        t.is_eq(rc, 2, "%s is refused" % line)
        t.ok(msg in err, "%s: the error names it" % line, err)
        with open(p.conf, "w") as fh:
            fh.write(body)


def test_still_failing_not_rerun(workdir):
    """A test that failed every attempt in each of the last two cycles is still failing: it is
    not run again a third time (the flaky one still is), and says so."""
    p = Project(workdir)

    def attempts_of(res, node):
        # the results object leaves out "attempts" for a test that ran once
        return [x.get("attempts", 1) for x in res.get("tests", []) if x.get("nodeid") == node]

    for cycle in (1, 2):
        rc, res, out, err = p.run()
        t.is_eq(attempts_of(res, ALWAYS), [2], "cycle %d: the always-failing test is run "
                "again (it has not failed in two earlier cycles yet)" % cycle)
        t.ok("not run again" not in err, "cycle %d: no test is left out of the reruns" % cycle,
             err[-800:])
    rc, res, out, err = p.run(verbose=True)
    t.is_eq(rc, 1, "cycle 3: the failing tests still fail the cycle")
    for node in (ALWAYS, KNOWN):
        t.is_eq(attempts_of(res, node), [1], "cycle 3: %s ran once, not again" % node)
        t.is_eq(outcome_of(res, node), ["failed"], "cycle 3: %s is failed" % node)
    t.ok("reruns: 2 failed tests not run again: failed in each of the last 2 cycles too "
         "(still failing): " + ALWAYS in err, "cycle 3: the log says which and why", err[-1500:])
    t.is_eq(res.get("flaky"), [FLAKY], "cycle 3: the flaky test is still run again: flaky")
    t.ok(ALWAYS in (res.get("still_failing") or []), "cycle 3: verdict still failing",
         res.get("still_failing"))


def test_rerun_time_bound(workdir):
    """A rerun that hangs is stopped within the batch timeout; the test stays failed."""
    p = Project(workdir)
    with open(p.conf) as fh:
        body = fh.read().replace("timeout = 60;", "timeout = 8;")
    with open(p.conf, "w") as fh:
        fh.write(body)
    t0 = time.monotonic()
    rc, res, out, err = p.run("--rerun-failures", "3", env={"SELF_TEST_FIXTURE_SLOW": "1"})
    took = time.monotonic() - t0
    t.is_eq(outcome_of(res, SLOW), ["failed"], "the test whose rerun hangs stays failed")
    t.ok(res.get("rerun_runtime", 99) < 8 + 6, "all the reruns took about one batch timeout at "
         "most", res.get("rerun_runtime"))
    t.ok(took < 60, "the cycle did not wait for the hung rerun (600 s)", took)
    t.is_eq(res.get("flaky"), [FLAKY], "the flaky test's rerun, in the same round, passed")


def test_quarantine_file(workdir):
    """Malformed quarantine files are reported and never overwritten; a quarantined test that
    passed for flaky_window cycles is ready to release; an explicit quarantine_file is used."""
    p = Project(workdir, extra_conf="flaky_window = 2;\n")
    os.makedirs(p.data)
    for text, msg in (("{not json", "quarantine file %s" % p.quarantine),
                      ('{"tests": [{"reason": "x"}]}', 'entry 1 of "tests" has no "nodeid"'),
                      ('[1]', 'not an object with a "tests" array')):
        with open(p.quarantine, "w") as fh:
            fh.write(text)
        rc, _, out, err = p.run("--quarantine", FLAKY, "--reason", "r", command="flaky")
        t.is_eq(rc, 2, "flaky --quarantine refuses a malformed file (%s)" % text)
        t.ok(msg in err and "left as it is" in err, "naming the file and the fault", err)
        t.is_eq(open(p.quarantine).read(), text, "the file is left as it was")
    rc, res, out, err = p.run()
    t.ok("the quarantine file is not applied this cycle" in err, "a run warns", err)
    t.is_eq(open(p.quarantine).read(), '[1]', "...and leaves it as it is")
    t.is_eq(res.get("quarantined"), [], "nothing is quarantined then")
    os.unlink(p.quarantine)
    rc, _, out, err = p.run("--quarantine", "tests/test_flaky.py", "--reason", "r",
                            command="flaky")
    t.is_eq(rc, 2, "a file is not a node id")
    rc, _, out, err = p.run("--quarantine", FLAKY, command="flaky")
    t.is_eq(rc, 2, "--quarantine needs --reason")
    t.ok(not os.path.exists(p.quarantine), "nothing written after a usage error")
    # ready to release: test_passes passed in this cycle and the one before (flaky_window 2)
    rc, _, out, err = p.run("--quarantine", NODE + "test_passes", "--reason", "r",
                            command="flaky")
    rc, res, out, err = p.run()
    t.is_eq(res.get("quarantine_ready"), [NODE + "test_passes"],
            "a quarantined test that passed flaky_window cycles in a row is ready to release")
    # an explicit quarantine_file
    other = os.path.join(workdir, "q", "quarantine.json")
    with open(p.conf, "a") as fh:
        fh.write('quarantine_file = "%s";\n' % other)
    rc, _, out, err = p.run("--quarantine", ALWAYS, "--reason", "r", command="flaky")
    t.is_eq([e["nodeid"] for e in json.load(open(other))["tests"]], [ALWAYS],
            "quarantine_file names the file edited")
    rc, res, out, err = p.run()
    t.is_eq(res.get("quarantined"), [ALWAYS], "...and the file applied")


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_rerun_in_container(workdir, engine, engines):
    """Item 1 in a container runtime: the rerun runs in a container of its own (the same
    runtime), the flaky test is flaky and the cycle's verdict follows."""
    if not plugin_built("runtime-" + engine):
        pytest.skip("runtime-%s is not built" % engine)
    if not engines.get(engine):
        pytest.skip("no %s engine" % engine)
    os.chmod(workdir, 0o755)
    p = Project(workdir, runtime_conf='runtime = "%s";\ncontainer_fallback = "fail";\n'
                                      'container = { image = "%s"; };\n'
                                      % (engine, engines["image"]))
    var = {"docker": "DOCKER_HOST", "podman": "CONTAINER_HOST"}[engine]
    env = {var: "unix://" + engines[engine], "DOCKER_HOST" if engine == "podman" else
           "CONTAINER_HOST": None}
    rc, res, out, err = p.run(env=env, state=False)
    t.ok(res.get("runtime_used") == engine, "the cycle ran in %s" % engine, diag(rc, out, err))
    t.is_eq(rc, 1, "exit 1: the broken tests")
    t.is_eq(res.get("flaky"), [FLAKY], "the test that failed its first attempt is flaky")
    t.is_eq(res.get("reruns"), 3, "three reruns")
    t.is_eq(outcome_of(res, ALWAYS), ["failed"], "the broken test stays failed")
    rc, _, out, err = p.run("--quarantine", ALWAYS, "--reason", "r", command="flaky", env=env)
    rc, _, out, err = p.run("--quarantine", KNOWN, "--reason", "r", command="flaky", env=env)
    rc, res, out, err = p.run(env=env, state=False)
    t.ok((rc, res.get("flaky"), sorted(res.get("quarantined", []))) ==
         (0, [FLAKY], sorted([ALWAYS, KNOWN])),
         "quarantined and flaky failures do not fail the cycle in a container either",
         diag(rc, out, err))
    db = p.db()
    t.is_eq(db.execute("SELECT flaky FROM runs ORDER BY id").fetchall(), [(1,), (1,)],
            "metrics.db counts the flaky test of each cycle")
