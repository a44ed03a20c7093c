# SPDX-License-Identifier: MIT
"""`selftest-core run` over the fixture projects, compared with pytest itself.

Every fixture project (tests/fixtures/projects/*, and top_srcdir/sample) is copied into a
temp dir (nothing is written into the source tree) and run with
`selftest-core run --json --retries 0 --workers 1 <copy>`; the final JSON line's counts are
compared with pytest's own summary line for the same copy (sth.pytest_summary), and the
exit status of docs/spec.md §1.1 (0 all passed; 1 a test or batch failed, also pytest exit 5,
crashes and timeouts; 3 infrastructure).  Crash fixtures without a summary (timeout, exit3,
segv) are compared with what `pytest -v` printed before it died, and no process may be left.
Then: cumulative counts of the streamed "batch" lines, --workers 2 against pytest -n 2, the
worker split of docs/spec.md §5.1 as seen by pytest itself (pytest_argv, pytest_workers, overlap in
time), SELF_TEST_ARGS / --pytest-args / config pytest_args (shell split, precedence), the
failure report file, and the coverage union of docs/spec.md §5.3 against pytest-cov's own LCOV data.
"""

import concurrent.futures
import glob
import json
import os
import re
import shutil
import tempfile
import time
import uuid

import pytest
import st_helpers as sth
from st_helpers import is_eq, note, ok

FIXTURES = ["passing", "failing", "fixture_error", "collect_error", "timeout", "exit3", "segv",
            "empty", "split", "markers", "sample"]
# no summary line from pytest: (extra selftest args, reason regexp)
CRASHERS = {
    # long enough for pytest to start and run the fast test on a loaded CI machine
    "timeout": (["--timeout", "6"], r"timeout"),
    "exit3": ([], r"exit(ed with)? status 3\b"),
    "segv": ([], r"signal 11\b"),
}
COUNT_KEYS = ("passed", "failed", "skipped", "xfailed", "errors")
IGNORE = shutil.ignore_patterns(".pytest_cache", "__pycache__", "sandbox_data", ".coverage",
                                "*.pyc", "coverage.lcov")

# settings a caller's environment could carry into a run (the harness unsets most of them)
SCRUB = sth.SCRUB

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")

WORK = POOL = None  # set by the work fixture
TAG = "stfx%d%s" % (os.getpid(), uuid.uuid4().hex[:8])  # unique: finds leftover processes
WORKDIRS_LEFT = []  # work dirs selftest-core left in its TMPDIR


@pytest.fixture(scope="module", autouse=True)
def work():
    """The module's scratch directory and what lives in it (module globals), removed at the end."""
    global EMPTY_CONF, POOL, WORK
    WORK = tempfile.mkdtemp(prefix="st-runfx-")
    # up to three runs at a time (each fixture is a selftest-core run and a pytest run)
    POOL = concurrent.futures.ThreadPoolExecutor(max_workers=3)
    EMPTY_CONF = os.path.join(WORK, "empty.conf")
    with open(EMPTY_CONF, "w") as fh:
        fh.write("# empty: defaults, environment and options only\n")
    yield WORK
    POOL.shutdown(wait=True)
    shutil.rmtree(WORK, ignore_errors=True)


make_writable = sth.make_writable

def copy_fixture(name, dest_name=None):
    dst = os.path.join(WORK, dest_name or "%s-%s" % (TAG, name))
    shutil.copytree(sth.fixture(name), dst, ignore=IGNORE)
    make_writable(dst)
    return dst


def expected_counts(summ):
    """selftest-core's counts (docs/spec.md §5.2) from pytest's summary line."""
    return {"passed": summ["passed"] + summ["xpassed"],
            "failed": summ["failed"] + summ["errors"],
            "skipped": summ["skipped"], "xfailed": summ["xfailed"], "errors": summ["errors"]}


def counts_of(d):
    return {k: d.get(k) for k in COUNT_KEYS} if isinstance(d, dict) else None


def selftest(root, args, env=None, conf=None, timeout=120, cwd=None):
    """Runs selftest-core -c conf run <args> with project root = root.

    Returns a dict: rc, out, err, lines (parsed JSON lines), batches (event "batch"),
    results (the final line, event "results") or None, elapsed."""
    conf = EMPTY_CONF if conf is None else conf
    tmp = tempfile.mkdtemp(prefix="tmp-", dir=WORK)  # the run's TMPDIR: its work dir goes here
    extra = dict(SCRUB, SANDBOX_REPO_PATH=root, TMPDIR=tmp)
    extra.update(env or {})
    t0 = time.monotonic()
    rc, out, err = sth.run([BIN, "-c", conf, "run"] + list(args),
                           env=sth.base_env(extra), cwd=cwd or root, timeout=timeout)
    res = {"rc": rc, "out": out, "err": err, "lines": [], "batches": [], "results": None,
           "elapsed": time.monotonic() - t0, "bad": []}
    left = sorted(f for f in os.listdir(tmp) if f.startswith("selftest"))
    if left:
        WORKDIRS_LEFT.append("%s %s: %s" % (os.path.basename(root), " ".join(args), left))
    for line in out.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            res["bad"].append(line)
            continue
        res["lines"].append(obj)
        if isinstance(obj, dict) and obj.get("event") == "batch":
            res["batches"].append(obj)
    if res["lines"] and isinstance(res["lines"][-1], dict) and \
            res["lines"][-1].get("event") == "results":
        res["results"] = res["lines"][-1]
    return res


def diag(r):
    return "rc=%r\nstderr: %s\nstdout tail: %s" % (r["rc"], r["err"][-1500:], r["out"][-1500:])


def results_ok(r, label):
    return ok(r["results"] is not None and not r["bad"],
              "%s: the last stdout line is the results object, every line is JSON" % label,
              diag(r))


def expected_rc(pytest_rc):
    """docs/spec.md §1.1: 0 when pytest says all passed, else 1 (failures, exit 2/5, crashes,
    timeouts)."""
    return 0 if pytest_rc == 0 else 1


def leftover_processes(tag):
    """Processes whose command line or working directory mentions tag (xdist workers have a
    generic command line but run in the project root)."""
    found = []
    for d in glob.glob("/proc/[0-9]*"):
        pid = int(d.split("/")[2])
        if pid == os.getpid():
            continue
        try:
            with open(d + "/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue
        try:
            cwd = os.readlink(d + "/cwd")
        except OSError:
            cwd = ""
        if tag in cmd or tag in cwd:
            found.append("%d: %s (cwd %s)" % (pid, cmd, cwd))
    return found


def passed_before_crash(output):
    """Nodeids that pytest -v printed as PASSED."""
    plain = re.findall(r"^(\S+::\S+) PASSED", output, re.M)
    xdist = re.findall(r"\bPASSED (\S+::\S+)", output)  # "[gw0] [ 50%] PASSED nodeid"
    return sorted(set(plain + xdist))




# --------------------------------------------------------------------------------------------
# 1. every fixture, --workers 1, against pytest's own summary

def plain_case(name):
    root = copy_fixture(name)
    extra, _ = CRASHERS.get(name, ([], None))
    st = selftest(root, ["--json", "--retries", "0", "--workers", "1"] + extra + [root])
    if name == "timeout":
        # pytest itself never finishes: ask it what it printed in the first seconds
        pt = sth.pytest_summary([root], ["-v"], cwd=root, env={"PYTHONUNBUFFERED": "1"},
                                timeout=4)
    elif name in CRASHERS:
        pt = sth.pytest_summary([root], ["-v"], cwd=root, env={"PYTHONUNBUFFERED": "1"})
    else:
        pt = sth.pytest_summary([root], cwd=root)
    time.sleep(0.5)
    left = leftover_processes(os.path.basename(root))
    return root, st, pt, left


def check_plain(name, root, st, pt, left):
    label = "%s (--workers 1)" % name
    if not results_ok(st, label):
        return
    r = st["results"]
    batch = r.get("suite_metrics", {}).get(".") or {}
    if name in CRASHERS:
        extra, reason_re = CRASHERS[name]
        ok(pt["line"] is None, "%s: pytest itself prints no summary line" % label,
           "pytest printed: %r" % pt["line"])
        first = passed_before_crash(pt["stdout"])
        ok(bool(first), "%s: pytest -v shows a test passing before the crash" % label,
           pt["stdout"][-1000:])
        got_passed = sorted(t["nodeid"] for t in r.get("tests", []) if t.get("outcome") == "passed")
        is_eq(got_passed, first, "%s: results.tests has the test(s) that passed first" % label)
        is_eq(counts_of(r), dict(passed=len(first), failed=0, skipped=0, xfailed=0, errors=0),
              "%s: counts are the outcomes pytest reported before dying" % label)
        is_eq(batch.get("ok"), False, "%s: the batch is not ok" % label)
        ok(re.search(reason_re, batch.get("reason") or ""),
           "%s: the batch reason names the cause (%s)" % (label, reason_re),
           "reason: %r" % batch.get("reason"))
        if name == "timeout":
            is_eq(batch.get("timed_out"), True, "%s: batch timed_out is true" % label)
            ok(st["elapsed"] < 30, "%s: the run ends soon after the 3 s timeout" % label,
               "took %.1f s" % st["elapsed"])
        if name == "segv":
            is_eq(batch.get("signal"), 11, "%s: batch signal is 11" % label)
        if name == "exit3":
            is_eq(batch.get("exit_status"), 3, "%s: batch exit_status is 3" % label)
        is_eq(st["rc"], 1, "%s: exit status 1 (a crashed/timed-out batch is a failed batch)"
              % label)
        is_eq(left, [], "%s: no process of the run is left behind" % label)
    else:
        ok(pt["line"] is not None, "%s: pytest printed a summary (%s)" % (label, pt["line"]),
           pt["stdout"][-1000:])
        is_eq(counts_of(r), expected_counts(pt),
              "%s: counts equal pytest's summary '%s'" % (label, pt["line"]))
        is_eq(st["rc"], expected_rc(pt["exitcode"]),
              "%s: exit status for pytest exit %r" % (label, pt["exitcode"]))
        is_eq(batch.get("ok"), pt["exitcode"] == 0,
              "%s: the batch is ok exactly when pytest exits 0" % label)
        if pt["exitcode"] == 5:
            ok(re.search(r"no tests", batch.get("reason") or ""),
               "%s: the batch reason says no tests were collected" % label,
               "reason: %r" % batch.get("reason"))
        if pt["exitcode"] == 2:
            ok(re.search(r"status 2", batch.get("reason") or ""),
               "%s: the batch reason names pytest exit status 2" % label,
               "reason: %r" % batch.get("reason"))
    is_eq(r.get("exit_status"), st["rc"], "%s: results.exit_status equals the exit status" % label)
    ok(len(st["batches"]) == 1 and counts_of(st["batches"][0]) == counts_of(r),
       "%s: one streamed batch line, its cumulative counts equal the final counts" % label,
       "batch lines: %r" % [counts_of(b) for b in st["batches"]])


# --------------------------------------------------------------------------------------------
# 2. --workers 2 against pytest -n 2 (xdist turns crashes into failed tests)

def selected(request, test_name):
    """The fixture names of the parametrized test_name that this session runs (-k selects)."""
    return [i.callspec.params["name"] for i in request.session.items
            if i.module is request.module and getattr(i, "originalname", None) == test_name]


@pytest.fixture(scope="module")
def plain_runs(request):
    """The runs of every selected test_plain, started together (three at a time)."""
    return {n: POOL.submit(plain_case, n) for n in selected(request, "test_plain")}


@pytest.mark.parametrize("name", FIXTURES)
def test_plain(name, plain_runs):
    check_plain(name, *plain_runs[name].result())


XDIST_FIXTURES = FIXTURES


def xdist_case(name):
    root = copy_fixture(name, "%s-x2-%s" % (TAG, name))
    # xdist needs its workers up before the fast test can pass: as long as pytest's own check
    extra = ["--timeout", "8"] if name == "timeout" else []
    st = selftest(root, ["--json", "--retries", "0", "--workers", "2"] + extra + [root])
    if name == "timeout":
        pt = sth.pytest_summary([root], ["-n", "2", "-v"], cwd=root,
                                env={"PYTHONUNBUFFERED": "1"}, timeout=8)
    else:
        pt = sth.pytest_summary([root], ["-n", "2"], cwd=root)
    time.sleep(0.5)
    left = leftover_processes(os.path.basename(root))
    return root, st, pt, left


def check_xdist(name, root, st, pt, left):
    label = "%s (--workers 2)" % name
    if not results_ok(st, label):
        return
    r = st["results"]
    batch = r.get("suite_metrics", {}).get(".") or {}
    is_eq(left, [], "%s: no process of the run (xdist workers included) is left behind" % label)
    if name == "timeout":
        ok(pt["line"] is None, "%s: pytest -n 2 itself prints no summary line" % label,
           "pytest printed: %r" % pt["line"])
        first = passed_before_crash(pt["stdout"])
        ok(bool(first), "%s: pytest -n 2 -v shows a test passing before the timeout" % label,
           pt["stdout"][-1000:])
        got_passed = sorted(t["nodeid"] for t in r.get("tests", []) if t.get("outcome") == "passed")
        is_eq(got_passed, first, "%s: results.tests has the test(s) that passed first" % label)
        is_eq(batch.get("ok"), False, "%s: the batch is not ok" % label)
        ok(re.search(r"timeout", batch.get("reason") or ""),
           "%s: the batch reason names the timeout" % label, "reason: %r" % batch.get("reason"))
        is_eq(st["rc"], 1, "%s: exit status 1 (a timed-out batch is a failed batch)" % label)
        return
    ok(pt["line"] is not None, "%s: pytest -n 2 printed a summary (%s)" % (label, pt["line"]),
       pt["stdout"][-1000:])
    is_eq(counts_of(r), expected_counts(pt),
          "%s: counts equal pytest -n 2's summary '%s'" % (label, pt["line"]))
    is_eq(st["rc"], expected_rc(pt["exitcode"]),
          "%s: exit status for pytest -n 2 exit %r" % (label, pt["exitcode"]))
    argv = batch.get("pytest_argv") or []
    ok(has_seq(argv, ["-n", "2"]) and batch.get("pytest_workers") == 2,
       "%s: pytest received -n 2 and reported 2 workers" % label,
       "pytest_argv %r, pytest_workers %r" % (argv, batch.get("pytest_workers")))


@pytest.fixture(scope="module")
def xdist_runs(request):
    return {n: POOL.submit(xdist_case, n) for n in selected(request, "test_xdist")}


@pytest.mark.parametrize("name", XDIST_FIXTURES)
def test_xdist(name, xdist_runs):
    check_xdist(name, *xdist_runs[name].result())


def has_seq(lst, seq):
    return any(lst[i:i + len(seq)] == seq for i in range(len(lst) - len(seq) + 1))


# --------------------------------------------------------------------------------------------
# 3. several batches: cumulative streamed counts

def mixed_project():
    """One project with three test dirs: p (passing), f (failing), e (fixture_error)."""
    root = os.path.join(WORK, "%s-mixed" % TAG)
    os.makedirs(root)
    shutil.copyfile(os.path.join(sth.fixture("passing"), "pytest.ini"),
                    os.path.join(root, "pytest.ini"))
    for sub, fx in (("p", "passing"), ("f", "failing"), ("e", "fixture_error")):
        shutil.copytree(os.path.join(sth.fixture(fx), "tests"), os.path.join(root, sub),
                        ignore=IGNORE)
    make_writable(root)
    return root


def test_cumulative():
    root = mixed_project()
    subs = ["p", "f", "e"]
    fut = {s: POOL.submit(sth.pytest_summary, [s], (), root) for s in subs}
    st = selftest(root, ["--json", "--retries", "0", "--workers", "1"] + subs)
    label = "3 batches p f e"
    if not results_ok(st, label):
        return
    r = st["results"]
    is_eq(sorted(b.get("path") for b in st["batches"]), sorted(subs),
          "%s: one streamed batch line per batch" % label)
    running = dict.fromkeys(COUNT_KEYS, 0)
    cum_ok, problems = True, []
    for b in st["batches"]:
        for k in COUNT_KEYS:
            running[k] += (b.get("batch") or {}).get(k, 0)
        if counts_of(b) != running:
            cum_ok = False
            problems.append("after %s: line %r, sum so far %r" % (b.get("path"), counts_of(b),
                                                                 dict(running)))
    ok(cum_ok and st["batches"], "%s: each batch line carries the cumulative counts so far"
       % label, "\n".join(problems))
    is_eq(counts_of(st["batches"][-1]) if st["batches"] else None, counts_of(r),
          "%s: the last batch line's cumulative counts equal the final counts" % label)
    total = dict.fromkeys(COUNT_KEYS, 0)
    for s in subs:
        pt = fut[s].result()
        exp = expected_counts(pt)
        is_eq(counts_of((r.get("suite_metrics") or {}).get(s)), exp,
              "%s: batch %s counts equal pytest's summary '%s'" % (label, s, pt["line"]))
        for k in COUNT_KEYS:
            total[k] += exp[k]
    is_eq(counts_of(r), total, "%s: run counts are the sum of pytest's per-path summaries" % label)
    is_eq(st["rc"], 1, "%s: exit status 1 (tests failed)" % label)
    is_eq(r.get("coverage"), None,
          "%s: coverage is null when coverage was not requested (docs/spec.md §5.3, §5.4)" % label)


# --------------------------------------------------------------------------------------------
# 4. the worker split (docs/spec.md §5.1), as pytest itself saw it

def spec_split(W, P):
    if P <= W:
        return [W // P + (1 if i < W % P else 0) for i in range(P)], P
    return [1] * P, W


def max_overlap(metrics):
    spans = [(m.get("started_at"), m.get("finished_at")) for m in metrics.values()]
    if any(not isinstance(a, (int, float)) or not isinstance(b, (int, float)) for a, b in spans):
        return None
    return max(sum(1 for a2, b2 in spans if a2 <= a < b2) for a, _ in spans)


def check_split(root, W, paths, slow=False, how=None, flag=True, env=None, conf=None):
    """W: the worker budget that should win; how: label for a precedence case."""
    conf = EMPTY_CONF if conf is None else conf
    label = "split %s %s%s" % (how or "--workers %d" % W, " ".join(paths),
                               " (1 s tests)" if slow else "")
    fut = POOL.submit(sth.pytest_summary, paths, (), root)
    wargs = ["--workers", str(W)] if flag is True else (["--workers", str(flag)] if flag else [])
    st = selftest(root, ["--json", "--retries", "0"] + wargs + paths, env=env, conf=conf)
    pt = fut.result()
    if not results_ok(st, label):
        return
    r = st["results"]
    sm = r.get("suite_metrics") or {}
    is_eq(counts_of(r), expected_counts(pt), "%s: counts equal pytest's '%s'" % (label, pt["line"]))
    is_eq(st["rc"], expected_rc(pt["exitcode"]), "%s: exit status" % label)
    want, concurrency = spec_split(W, len(paths))
    got_n, got_workers, problems = [], [], []
    for p in paths:
        m = sm.get(p) or {}
        argv = m.get("pytest_argv") or []
        n = None
        if "-n" in argv:
            i = argv.index("-n")
            n = int(argv[i + 1]) if i + 1 < len(argv) and argv[i + 1].isdigit() else "?"
        got_n.append(n if n is not None else 1)
        got_workers.append(m.get("pytest_workers"))
        if argv[-1:] != [p]:
            problems.append("%s: argv does not end with the batch path: %r" % (p, argv))
        if n is not None and n == 1:
            problems.append("%s: -n 1 given (w = 1 must run without -n)" % p)
    is_eq(got_n, want, "%s: -n per batch as pytest received it (docs/spec.md §5.1)" % label)
    is_eq(got_workers, [w if w > 1 else 0 for w in want],
          "%s: xdist workers per batch as pytest reported them" % label)
    ok(not problems, "%s: argv shape (path last, no -n 1)" % label, "\n".join(problems))
    ov = max_overlap({p: sm.get(p) or {} for p in paths})
    ok(ov is not None and ov <= concurrency,
       "%s: at most %d batches overlap in time" % (label, concurrency),
       "max overlap %r; spans %r" % (ov, [(p, (sm.get(p) or {}).get("started_at"),
                                           (sm.get(p) or {}).get("finished_at")) for p in paths]))
    if slow:
        ok(ov == concurrency, "%s: batches do run concurrently (%d at once)" % (label, concurrency),
           "max overlap %r" % ov)


def slow_split():
    root = copy_fixture("split", "%s-split-slow" % TAG)
    for d in ("a", "b", "c"):
        path = os.path.join(root, d, "test_%s.py" % d)
        with open(path, "w") as fh:
            fh.write("import time\n\n\ndef test_%s_one():\n    time.sleep(1)\n\n\n"
                     "def test_%s_two():\n    time.sleep(1)\n" % (d, d))
    return root


# --------------------------------------------------------------------------------------------
# 5. pytest args: shell split, precedence flag > env > config file

@pytest.fixture(scope="module")
def split():
    return copy_fixture("split", "%s-wsplit" % TAG)


def test_worker_split(split):
    check_split(split, 5, ["a", "b", "c"])
    check_split(split, 4, ["a", "b"])
    check_split(slow_split(), 2, ["a", "b", "c"], slow=True)


def test_worker_budget_precedence(split):
    """flag > SELF_TEST_WORKERS > config file"""
    wconf = os.path.join(WORK, "workers1.conf")
    with open(wconf, "w") as fh:
        fh.write("workers = 1;\n")
    check_split(split, 1, ["a", "b"], how="config workers = 1", flag=False, conf=wconf)
    check_split(split, 4, ["a", "b"], how="config workers = 1, SELF_TEST_WORKERS=4",
                flag=False, conf=wconf, env={"SELF_TEST_WORKERS": "4"})
    check_split(split, 1, ["a", "b"], how="SELF_TEST_WORKERS=4, --workers 1", flag=1,
                conf=wconf, env={"SELF_TEST_WORKERS": "4"})


def test_pytest_args():
    root = copy_fixture("markers", "%s-markers-args" % TAG)
    conf = os.path.join(WORK, "args.conf")
    with open(conf, "w") as fh:
        fh.write('project_root = "%s";\npytest_args = "-k plain";\n' % root)
    env_args = "-k 'not slow' -m smoke"
    futs = {
        "env": POOL.submit(sth.pytest_summary, ["tests"], ["-k", "not slow", "-m", "smoke"],
                           root),
        "flag": POOL.submit(sth.pytest_summary, ["tests"], ["-k", "heavy"], root),
        "file": POOL.submit(sth.pytest_summary, ["tests"], ["-k", "plain"], root),
    }
    base = ["--json", "--retries", "0", "--workers", "1", "tests"]
    runs = {
        "env": (selftest(root, base, env={"SELF_TEST_ARGS": env_args}),
                ["-k", "not slow", "-m", "smoke"], "SELF_TEST_ARGS=%s" % env_args),
        "env over file": (selftest(root, base, env={"SELF_TEST_ARGS": env_args}, conf=conf),
                          ["-k", "not slow", "-m", "smoke"], "SELF_TEST_ARGS beats config"),
        "flag": (selftest(root, base + ["--pytest-args", "-k heavy"],
                          env={"SELF_TEST_ARGS": env_args}, conf=conf),
                 ["-k", "heavy"], "--pytest-args beats SELF_TEST_ARGS and config"),
        "file": (selftest(root, base, conf=conf), ["-k", "plain"], "config pytest_args alone"),
    }
    summaries = {"env": futs["env"].result(), "env over file": futs["env"].result(),
                 "flag": futs["flag"].result(), "file": futs["file"].result()}
    for key, (st, want_args, what) in runs.items():
        label = "markers, %s" % what
        if not results_ok(st, label):
            continue
        r = st["results"]
        pt = summaries[key]
        is_eq(counts_of(r), expected_counts(pt),
              "%s: counts equal pytest %s: '%s'" % (label, " ".join(want_args), pt["line"]))
        argv = ((r.get("suite_metrics") or {}).get("tests") or {}).get("pytest_argv") or []
        ok(has_seq(argv, want_args), "%s: pytest_argv has %r as separate elements"
           % (label, want_args), "pytest_argv %r" % argv)
        others = [a for a in ("not slow", "smoke", "heavy", "plain") if a not in want_args]
        ok(not any(a in argv for a in others), "%s: no arguments from a lower-precedence source"
           % label, "pytest_argv %r" % argv)
        ok(argv[-1:] == ["tests"] and argv.count("tests") == 1,
           "%s: the only test path pytest received is the batch path" % label,
           "pytest_argv %r" % argv)
    if summaries["env"]["passed"] != 2:
        note("pytest -k 'not slow' -m smoke gave %r (EXPECTED.md says 2 passed)" %
             summaries["env"]["line"])


# --------------------------------------------------------------------------------------------
# 6. the report file

def test_report():
    for name, should in (("failing", True), ("passing", False)):
        root = copy_fixture(name, "%s-report-%s" % (TAG, name))
        rdir = os.path.join(WORK, "reports-%s" % name)
        st = selftest(root, ["--json", "--retries", "0", "--workers", "1", "--report-dir", rdir,
                             root])
        label = "report dir, %s run (exit %r)" % (name, st["rc"])
        files = sorted(os.listdir(rdir)) if os.path.isdir(rdir) else []
        reports = [f for f in files if re.fullmatch(r"report_\d{8}_\d{6}\.json", f)]
        tmps = [f for f in files if ".tmp." in f]
        if should:
            is_eq(len(reports), 1, "%s: one report_<UTC stamp>.json written" % label)
            data = None
            if reports:
                try:
                    with open(os.path.join(rdir, reports[0])) as fh:
                        data = json.load(fh)
                except ValueError as e:
                    data = e
            ok(isinstance(data, dict), "%s: the report is valid JSON (an object)" % label,
               repr(data))
            if isinstance(data, dict) and st["results"]:
                is_eq(counts_of(data), counts_of(st["results"]),
                      "%s: the report's counts equal the results line" % label)
        else:
            is_eq(reports, [], "%s: no report when every test passed" % label)
        is_eq(tmps, [], "%s: no temp file (*.tmp.*) left in the report dir" % label)


# --------------------------------------------------------------------------------------------
# 7. coverage: the union across batches, computed independently with pytest-cov's LCOV

def lcov_lines(path):
    lines = {}
    cur = None
    with open(path) as fh:
        for raw in fh:
            raw = raw.strip()
            if raw.startswith("SF:"):
                cur = raw[3:]
            elif raw.startswith("DA:") and cur is not None:
                parts = raw[3:].split(",")
                key = (cur, int(parts[0]))
                lines[key] = lines.get(key, False) or int(parts[1]) > 0
            elif raw == "end_of_record":
                cur = None
    return lines


def pct(lines):
    return 100.0 * sum(1 for v in lines.values() if v) / len(lines) if lines else 100.0


def independent_coverage(root, paths, tag):
    """pytest-cov per batch (and once over all paths): per-batch %, union %, all-at-once %."""
    per, union = {}, {}
    for p in paths + [None]:
        out = os.path.join(WORK, "cov-%s-%s.lcov" % (tag, p or "all"))
        env = {"COVERAGE_FILE": os.path.join(WORK, ".coverage-%s-%s" % (tag, p or "all"))}
        summ = sth.pytest_summary(paths if p is None else [p],
                                  ["--cov=%s" % root, "--cov-report=lcov:%s" % out], cwd=root,
                                  env=env)
        if not os.path.exists(out):
            return None, "pytest-cov wrote no LCOV for %s: %s" % (p, summ["stdout"][-800:])
        lines = lcov_lines(out)
        if p is None:
            all_pct = pct(lines)
        else:
            per[p] = pct(lines)
            for k, v in lines.items():
                union[k] = union.get(k, False) or v
    return {"per": per, "union": pct(union), "all": all_pct}, None


def cov_variant():
    """split-like project whose batches share lib.py: union != mean of batch percentages."""
    root = os.path.join(WORK, "%s-covvar" % TAG)
    for d in ("a", "b", "c"):
        os.makedirs(os.path.join(root, d))
        with open(os.path.join(root, d, "test_%s.py" % d), "w") as fh:
            fh.write("import lib\n\n\ndef test_%s():\n    assert lib.f%s(1) is not None\n" % (d, d))
    with open(os.path.join(root, "pytest.ini"), "w") as fh:
        fh.write("[pytest]\n")
    with open(os.path.join(root, "lib.py"), "w") as fh:
        fh.write("def fa(x):\n    y = x + 1\n    return y\n\n\n"
                 "def fb(x):\n    y = x * 2\n    z = y - 1\n    return z\n\n\n"
                 "def fc(x):\n    if x > 0:\n        return 'pos'\n    return 'neg'\n\n\n"
                 "def never():\n    a = 1\n    b = 2\n    return a + b\n")
    return root


def check_coverage(root, label, want_differ):
    paths = ["a", "b", "c"]
    fut = POOL.submit(independent_coverage, root, paths, os.path.basename(root))
    st = selftest(root, ["--json", "--retries", "0", "--workers", "3", "--coverage"] + paths)
    ind, why = fut.result()
    if not results_ok(st, label):
        return
    if ind is None:
        ok(False, "%s: independent pytest-cov run" % label, why)
        return
    r = st["results"]
    sm = r.get("suite_metrics") or {}
    got = r.get("coverage")
    ok(isinstance(got, (int, float)) and abs(got - ind["union"]) < 1e-6,
       "%s: results.coverage equals the union from pytest-cov (%.4f)" % (label, ind["union"]),
       "got %r, union %r, all paths at once %r" % (got, ind["union"], ind["all"]))
    ok(abs(ind["union"] - ind["all"]) < 1e-6,
       "%s: (sanity) union of per-batch LCOV equals one pytest-cov run over all paths" % label,
       "union %r, all %r" % (ind["union"], ind["all"]))
    per_got = {p: (sm.get(p) or {}).get("coverage") for p in paths}
    ok(all(isinstance(per_got[p], (int, float)) and abs(per_got[p] - ind["per"][p]) < 1e-6
           for p in paths),
       "%s: per-batch coverage equals pytest-cov per path" % label,
       "got %r, pytest-cov %r" % (per_got, ind["per"]))
    mean = sum(ind["per"].values()) / len(paths)
    if want_differ:
        ok(abs(mean - ind["union"]) > 1, "%s: (sanity) the mean of batch coverages (%.2f) differs "
           "from the union (%.2f)" % (label, mean, ind["union"]))
        ok(isinstance(got, (int, float)) and abs(got - mean) > 1e-6,
           "%s: results.coverage is not the mean of batch coverages" % label,
           "got %r, mean %r" % (got, mean))
    is_eq(st["rc"], 0, "%s: exit status 0" % label)


# --------------------------------------------------------------------------------------------


def test_coverage_union():
    if sth.run([sth.PYTHON, "-c", "import pytest_cov"])[0] != 0:
        pytest.skip("pytest-cov is not installed for %s" % sth.PYTHON)
    check_coverage(copy_fixture("split", "%s-split-cov" % TAG), "coverage, split a b c",
                   False)
    check_coverage(cov_variant(), "coverage, shared lib.py a b c", True)


def test_nothing_left():
    """Last: no process of any run above is left, no work dir in $TMPDIR."""
    is_eq(leftover_processes(TAG), [], "no process of any run is left behind")
    is_eq(WORKDIRS_LEFT, [], "every run removed its work dir (selftest-*) from $TMPDIR")
