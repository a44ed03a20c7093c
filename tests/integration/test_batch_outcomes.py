# SPDX-License-Identifier: MIT
"""what a batch and a run report, against the real binary and real pytest.

1. A test that ends the pytest process (os._exit(1), os.abort(), a NULL read through ctypes:
   fixture ends_process) makes a failed batch: exit 1, never an infrastructure error, never
   retried (--retries 2, no retry_errors); the batch names the test that was running
   (running_tests, reason) and keeps the last lines of the output (output_tail).
2. A failing test's captured stdout and stderr (fixture output) are in the results object, the
   failure report and the --json batch line, cut to 64 KiB with a note; the summary shows their
   end; a passing test's output is not kept.
3. A cycle stopped by SIGTERM or SIGINT (fixture stopped: a test sleeps, an orphan module waits
   for its check) is "aborted": the cut-short batch is not FAILED, the check that never started
   is not a failed orphan, no failure report is written, the history entry and metrics.db mark
   it aborted, and metrics.db's exit_status is the process's (run: 3; run-scheduled: 0).
4. Exit statuses: a runtime whose create() fails for a reason other than its settings, or whose
   start() fails, exits 3; one that refuses its settings exits 2; `report` without a report
   exits 1 saying so; an unknown option after a command says "unknown option", a missing value
   "needs an argument".
"""

import glob
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time

import pytest
import st_helpers as sth
from st_helpers import is_eq, ok

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")
FX_DIR = os.environ.get("FIXTURE_PLUGIN_DIR") or os.path.join(
    os.environ.get("top_builddir") or sth.top_srcdir(), "tests", "fixtures", "plugins")

WORK = None  # set by the work fixture
IGNORE = shutil.ignore_patterns(".pytest_cache", "__pycache__", "sandbox_data", "*.pyc")


@pytest.fixture(scope="module", autouse=True)
def work():
    """The module's scratch directory and what lives in it (module globals), removed at the end."""
    global EMPTY_CONF, WORK
    WORK = tempfile.mkdtemp(prefix="st-outcomes-")
    EMPTY_CONF = os.path.join(WORK, "empty.conf")
    with open(EMPTY_CONF, "w") as fh:
        fh.write("# empty: defaults, environment and options only\n")
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)


CAPTURE_MAX = 64 * 1024


def copy_fixture(name, dest):
    dst = os.path.join(WORK, dest)
    shutil.copytree(sth.fixture(name), dst, ignore=IGNORE)
    sth.make_writable(dst)
    return dst


def env_for(root, extra=None):
    tmp = os.path.join(WORK, "tmp-" + os.path.basename(root))
    os.makedirs(tmp, exist_ok=True)
    e = dict(sth.SCRUB, SANDBOX_REPO_PATH=root, TMPDIR=tmp,
             SELF_TEST_REPORT_DIR=os.path.join(root, "reports"))
    e.update(extra or {})
    return sth.base_env(e)


def selftest(root, argv, conf=None, extra_env=None, timeout=180):
    """selftest-core -c conf ARGV in root; (rc, out, err, lines of JSON on stdout)."""
    conf = EMPTY_CONF if conf is None else conf
    rc, out, err = sth.run([BIN, "-c", conf] + list(argv), env=env_for(root, extra_env),
                           cwd=root, timeout=timeout)
    lines = []
    for line in out.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            pass
    return rc, out, err, lines


def results_of(lines):
    last = lines[-1] if lines else None
    return last if isinstance(last, dict) and last.get("event") == "results" else None


def reports(root):
    return sorted(glob.glob(os.path.join(root, "reports", "report_*.json")))


# --------------------------------------------------------------------------------------------
# 1. a test that ends the pytest process

ENDS = {
    # batch path: (the test that ends the process, reason regexp, a line the output tail has)
    "tests/exit": ("tests/exit/test_osexit.py::test_exit",
                   r"exited with status 1 before its session finished", r"test_osexit\.py \."),
    "tests/abort": ("tests/abort/test_abort.py::test_abort", r"signal 6\b",
                    r"Fatal Python error: Aborted"),
    "tests/segv": ("tests/segv/test_ctypes.py::test_null", r"signal 11\b",
                   r"Fatal Python error: Segmentation fault"),
}


def test_ends_process():
    root = copy_fixture("ends_process", "ends")
    paths = sorted(ENDS)
    rc, out, err, lines = selftest(root, ["run", "--json", "--retries", "2", "--workers", "1"] +
                                   paths)
    res = results_of(lines)
    label = "a test ends the pytest process"
    if not ok(res is not None, "%s: the run ends with its results line" % label,
              "rc %r\n%s\n%s" % (rc, out[-1500:], err[-1500:])):
        return
    is_eq(rc, 1, "%s: exit status 1 (a failed batch, not an infrastructure error)" % label)
    is_eq(res.get("exit_status"), 1, "%s: results.exit_status is 1" % label)
    is_eq(res.get("retry_errors"), {}, "%s: no batch was retried (--retries 2)" % label)
    ok("retrying" not in err, "%s: nothing says it retries" % label, err[-1500:])
    ok("did not run" not in out + err, "%s: never 'the selftest pytest plugin did not run'"
       % label, err[-1500:])
    sm = res.get("suite_metrics") or {}
    for path in paths:
        running, reason_re, tail_re = ENDS[path]
        b = sm.get(path) or {}
        what = "%s (%s)" % (label, path)
        is_eq((b.get("ok"), b.get("aborted")), (False, False), "%s: the batch failed" % what)
        is_eq(b.get("running_tests"), [running],
              "%s: running_tests names the test that ended it" % what)
        reason = b.get("reason") or ""
        ok(re.search(reason_re, reason) and running in reason,
           "%s: the reason says how it ended and names %s" % (what, running), reason)
        ok(re.search(tail_re, b.get("output_tail") or ""),
           "%s: output_tail keeps the last lines of output (%s)" % (what, tail_re),
           repr((b.get("output_tail") or "")[-800:]))
        is_eq((b.get("passed"), b.get("failed")), (1, 0),
              "%s: the test that passed before is counted, nothing invented" % what)
    is_eq(len(reports(root)), 1, "%s: a failure report is written" % label)

    # the summary names the test and shows the end of the output
    rc2, out2, err2, _ = selftest(root, ["run", "--retries", "0", "--workers", "1", "tests/exit"])
    is_eq(rc2, 1, "%s (summary run): exit status 1" % label)
    ok(ENDS["tests/exit"][0] in out2 and re.search(r"test_osexit\.py \.", out2),
       "%s: the summary names the running test and shows the last output lines" % label, out2)


# --------------------------------------------------------------------------------------------
# 2. captured output of failing tests

def check_captured(label, tests):
    """tests: the entries of the failing tests of fixture output, by name."""
    loud, quiet = tests.get("test_loud") or {}, tests.get("test_quiet") or {}
    out = loud.get("stdout") or ""
    m = re.match(r"\[selftest: (\d+) earlier bytes not kept\]\n", out)
    ok(m and out.endswith("\nOUT-END\n") and len(out[m.end():].encode()) <= CAPTURE_MAX,
       "%s: test_loud's stdout is cut to 64 KiB, keeps the end, with a note" % label,
       "%r ... %r (%d chars)" % (out[:60], out[-30:], len(out)))
    if m:
        is_eq(int(m.group(1)) + len(out[m.end():].encode()), 100000 + len("\nOUT-END\n"),
              "%s: the note counts the bytes cut" % label)
    is_eq(loud.get("stderr"), "ERR-1\nERR-LAST\n", "%s: test_loud's stderr is kept" % label)
    is_eq((quiet.get("stdout"), quiet.get("stderr")), ("quiet line\n", None),
          "%s: test_quiet's stdout kept whole, no stderr" % label)


def test_output():
    root = copy_fixture("output", "output")
    rc, out, err, lines = selftest(root, ["run", "--json", "--retries", "0", "--workers", "1"])
    res = results_of(lines)
    label = "captured output"
    if not ok(res is not None, "%s: the run ends with its results line" % label,
              "rc %r\n%s\n%s" % (rc, out[-1500:], err[-1500:])):
        return
    is_eq(rc, 1, "%s: exit status 1" % label)
    by_name = {t["nodeid"].split("::")[-1]: t for t in res.get("tests", [])}
    check_captured("%s, results object" % label, by_name)
    passing = by_name.get("test_ok") or {}
    ok(passing.get("outcome") == "passed" and "stdout" not in passing and "stderr" not in passing,
       "%s: a passing test's output is not kept" % label, repr(passing))
    batch_lines = [x for x in lines if isinstance(x, dict) and x.get("event") == "batch"]
    fails = batch_lines[0].get("failures") if len(batch_lines) == 1 else None
    ok(isinstance(fails, list) and sorted(f.get("nodeid", "").split("::")[-1] for f in fails) ==
       ["test_loud", "test_quiet"], "%s: the --json batch line lists its failing tests" % label,
       repr(fails)[:800])
    if isinstance(fails, list):
        check_captured("%s, --json batch line" % label,
                       {f["nodeid"].split("::")[-1]: f for f in fails})
    files = reports(root)
    data = None
    if len(files) == 1:
        with open(files[0]) as fh:
            data = json.load(fh)
    if ok(isinstance(data, dict), "%s: one failure report" % label, repr(files)):
        check_captured("%s, failure report" % label,
                       {t["nodeid"].split("::")[-1]: t for t in data.get("tests", [])})
    rc2, out2, err2, _ = selftest(root, ["run", "--retries", "0", "--workers", "1"])
    loud_at = out2.find("tests/test_output.py::test_loud")
    section = out2[loud_at:out2.find("tests/test_output.py::test_quiet", loud_at)]
    ok(loud_at >= 0 and re.search(r"captured stdout.*\n(.*\n)*\s+OUT-END\n", section) and
       re.search(r"captured stderr.*\n(.*\n)*\s+ERR-LAST\n", section) and "xxxxxxxx" * 30
       not in section, "%s: the summary shows the end of test_loud's stdout and stderr" % label,
       out2[-3000:])
    ok("PASSING-OUTPUT" not in out2, "%s: the summary shows no passing test's output" % label)


# --------------------------------------------------------------------------------------------
# 3. an aborted cycle

def wait_running(tmp, nodeid, proc, timeout=90):
    """Until a batch's results file says nodeid started (and the process still runs)."""
    deadline = time.monotonic() + timeout
    needle = json.dumps({"event": "test_start", "nodeid": nodeid}, separators=(",", ":"))
    while time.monotonic() < deadline and proc.poll() is None:
        for f in glob.glob(os.path.join(tmp, "selftest-*", "batch-*", "results.jsonl")):
            try:
                with open(f) as fh:
                    if needle in fh.read():
                        return True
            except OSError:
                pass
        time.sleep(0.2)
    return False


def stopped_case(command, sig, json_out):
    root = copy_fixture("stopped", "stopped-%s-%s" % (command, sig.name))
    history = os.path.join(root, "history.json")
    conf, textfile = EMPTY_CONF, None
    if command == "run-scheduled":
        # the exporter's textfile shows whether the cycle counted as a success
        textfile = os.path.join(root, "selftest.prom")
        conf = os.path.join(WORK, "sched-%s.conf" % sig.name)
        with open(conf, "w") as fh:
            fh.write('plugins = ({ kind = "discovery"; name = "discovery-python"; },\n'
                     '  { kind = "exporter"; name = "exporter-prometheus";\n'
                     '    settings = { textfile = "%s"; }; });\n' % textfile)
    argv = [BIN, "-c", conf, "-v", command, "--retries", "0", "--workers", "1", "--timeout",
            "600", "--history", history]
    if command == "run-scheduled":
        argv += ["--interval", "3600"]
    if json_out:
        argv.append("--json")
    env = env_for(root)
    proc = subprocess.Popen(argv, env=env, cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    label = "%s stopped by %s" % (command, sig.name)
    running = wait_running(env["TMPDIR"], "tests/test_slow.py::test_long", proc)
    ok(running, "%s: test_long runs before the signal" % label)
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=60)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        sth.kill_group(proc)
        out, err = proc.communicate()
        rc = None
    out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    want_rc = 3 if command == "run" else 0
    is_eq(rc, want_rc, "%s: exit status %d" % (label, want_rc))
    is_eq(reports(root), [], "%s: no failure report is written" % label)
    ok(not re.search(r"\bFAILED\b", out + err), "%s: nothing is called FAILED" % label,
       out[-1500:] + err[-1500:])
    db = os.path.join(root, "sandbox_data", "metrics.db")
    row = None
    if os.path.exists(db):
        con = sqlite3.connect(db)
        row = con.execute("SELECT aborted, exit_status FROM runs ORDER BY id DESC LIMIT 1"
                          ).fetchone()
        evals = con.execute("SELECT COUNT(*) FROM eval_metrics").fetchone()[0]
        con.close()
        is_eq(evals, 0, "%s: no eval_metrics rows (menace's readers) from partial counts"
              % label)
    is_eq(row, (1, rc), "%s: metrics.db marks the cycle aborted, exit_status = the process's"
          % label)
    entries = None
    try:
        with open(history) as fh:
            entries = json.load(fh)
    except (OSError, ValueError) as e:
        entries = repr(e)
    ok(isinstance(entries, list) and entries and entries[-1].get("aborted") is True,
       "%s: the history entry is marked aborted" % label, repr(entries)[:500])
    if textfile:
        text = ""
        if os.path.exists(textfile):
            with open(textfile) as fh:
                text = fh.read()
        ok(re.search(r"^self_test_last_run_timestamp_seconds ", text, re.M) and
           not re.search(r"^self_test_last_success_timestamp_seconds ", text, re.M),
           "%s: the exporter saw the cycle, and not as a success" % label, text[-1500:])
    if json_out:
        lines = []
        for line in out.splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
        res = results_of(lines)
        if ok(res is not None, "%s: the results line is printed" % label, out[-1000:]):
            batch = (res.get("suite_metrics") or {}).get("tests") or {}
            is_eq((res.get("aborted"), res.get("exit_status")), (True, rc),
                  "%s: results: aborted, exit_status = the process's" % label)
            is_eq((batch.get("aborted"), batch.get("ok")), (True, False),
                  "%s: the cut-short batch is aborted" % label)
            ok(re.search(r"^aborted", batch.get("reason") or ""),
               "%s: its reason says aborted" % label, repr(batch.get("reason")))
            is_eq((res.get("orphan_failed"), res.get("orphan_failed_modules"),
                   res.get("orphan_total")), (0, [], 0),
                  "%s: the check that never started is not a failed orphan" % label)
            check = (res.get("orphan_checks") or {}).get("pkg/lonely.py") or {}
            is_eq((check.get("ok"), check.get("aborted")), (False, True),
                  "%s: pkg/lonely.py was to be checked; its check is marked aborted" % label)
    else:
        ok("ABORTED" in out and "not run (the run was stopped)" in out,
           "%s: the summary says the run was aborted and the check not run" % label, out[-1500:])


def test_aborted():
    stopped_case("run", signal.SIGTERM, True)
    stopped_case("run", signal.SIGINT, False)
    stopped_case("run-scheduled", signal.SIGTERM, True)


# --------------------------------------------------------------------------------------------
# 4. exit statuses

def test_exit_statuses():
    root = copy_fixture("passing", "exits")
    for runtime, want, words in (("fx-create-fails", 3, "the engine is not there"),
                                 ("fx-start-fails", 3, "start failed"),
                                 ("fx-bad-settings", 2, "refusing its settings")):
        if not os.path.exists(os.path.join(FX_DIR, "runtime-%s.la" % runtime)):
            ok(False, "runtime-%s is built in %s" % (runtime, FX_DIR))
            continue
        conf = os.path.join(WORK, "rt-%s.conf" % runtime)
        with open(conf, "w") as fh:
            fh.write('runtime = "%s";\n' % runtime)
        for cmd in (["run", "--retries", "0"], ["cleanup"]):
            rc, out, err, _ = selftest(root, cmd, conf=conf)
            is_eq(rc, want, "runtime-%s, %s: exit status %d" % (runtime, cmd[0], want))
            ok("runtime-%s" % runtime in err and words in err,
               "runtime-%s, %s: the error names the plugin and why" % (runtime, cmd[0]), err)
    rc, out, err, _ = selftest(root, ["report"])
    is_eq(rc, 1, "report without a report dir: exit 1")
    ok("no report" in err and os.path.join(root, "reports") in err and not out,
       "report without a report dir: says so on stderr, naming the dir", err)
    os.makedirs(os.path.join(root, "reports"))
    rc, out, err, _ = selftest(root, ["report"])
    is_eq(rc, 1, "report with an empty report dir: exit 1")
    ok("no report" in err and not out, "report with an empty report dir: says so", err)
    for argv, want in ((["run", "-v"], r"unknown option '-v'.*before the command"),
                       (["run", "--bogus"], r"unknown option '--bogus'"),
                       (["discover", "-x"], r"unknown option '-x'"),
                       (["run", "--workers"], r"option needs an argument: '--workers'")):
        rc, out, err, _ = selftest(root, argv)
        is_eq(rc, 2, "%s: exit status 2" % " ".join(argv))
        ok(re.search(want, err) and len(err.strip().splitlines()) == 2,
           "%s: says %s" % (" ".join(argv), want), err)
