# SPDX-License-Identifier: MIT
"""`run --junit-xml FILE` (config junit_xml, SELF_TEST_JUNIT_XML): JUnit XML for CI servers.

1. On the fixture "reports" (passes, a failure with captured output and markup in it, a setup
   error, a skip, an xfail, an xpass, parametrised class tests, and a batch that a test ends
   with os._exit: a crash batch without a failing test), the file validates against the
   schema shipped in tests/junit/jenkins-junit.xsd (xmllint --schema), has one <testsuite>
   per batch, and its counts equal the --json results object's: per batch and in total,
   testcases = reports, failures = failed, errors = errors, skipped = skipped + xfailed, plus
   one <error> testcase for the crash batch (named after the test that ended the process).
   Each testcase carries classname, name, file, line (the def line) and time; a failure its
   message and traceback, its captured stdout/stderr; a skip or xfail its reason; text from the project is escaped
   (markup survives as text, an ANSI escape becomes U+FFFD).
2. The schema is strict enough to matter: the same file without a testsuite's timestamp, or
   with a count that is not a number, fails validation.
3. Where it goes: the config's junit_xml (relative to the config file), beaten by
   SELF_TEST_JUNIT_XML, beaten by --junit-xml; each cycle replaces the file atomically (no
   temp file left); a file that cannot be written is a warning naming it, and the exit status
   stays the tests'.
4. With a container runtime (private engines; skipped without) the file has the same
   testsuites and testcases as on the host.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET

import pytest
import st_helpers as sth
from st_helpers import is_eq, ok

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")
XSD = os.path.join(sth.top_srcdir(), "tests", "junit", "jenkins-junit.xsd")
IGNORE = shutil.ignore_patterns(".pytest_cache", "__pycache__", "sandbox_data", "*.pyc")
PATHS = ["tests/mixed", "tests/crash"]
WORK = None


@pytest.fixture(scope="module", autouse=True)
def work():
    global WORK
    WORK = tempfile.mkdtemp(prefix="st-junit-")
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)


def copy_fixture(name, dest):
    dst = os.path.join(WORK, dest)
    shutil.copytree(sth.fixture(name), dst, ignore=IGNORE)
    sth.make_writable(dst)
    return dst


def write(path, text):
    with open(path, "w") as fh:
        fh.write(text)
    return path


def selftest(root, argv, conf_text="", extra_env=None, timeout=240, conf=None):
    if conf is None:
        conf = write(os.path.join(WORK, "conf-%s.conf" % os.path.basename(root)), conf_text)
    tmp = os.path.join(WORK, "tmp-" + os.path.basename(root))
    os.makedirs(tmp, exist_ok=True)
    env = dict(sth.SCRUB, SANDBOX_REPO_PATH=root, TMPDIR=tmp)
    env.update(extra_env or {})
    rc, out, err = sth.run([BIN, "-c", conf] + list(argv), env=sth.base_env(env), cwd=root,
                           timeout=timeout)
    res = None
    for line in out.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and obj.get("event") == "results":
            res = obj
    return rc, out, err, res


def xmllint_validate(path):
    """(True/False, output) or (None, why) when xmllint is missing."""
    if not shutil.which("xmllint"):
        return None, "xmllint is not installed (Debian package libxml2-utils)"
    p = subprocess.run(["xmllint", "--noout", "--schema", XSD, path], capture_output=True,
                       text=True, timeout=60)
    return p.returncode == 0, p.stdout + p.stderr


def def_line(root, rel, func):
    """The line where func's definition starts: its first decorator, else its def (as
    pytest locates a test)."""
    with open(os.path.join(root, rel)) as fh:
        lines = fh.read().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"\s*def %s\b" % re.escape(func), line):
            while i > 0 and lines[i - 1].lstrip().startswith("@"):
                i -= 1
            return i + 1
    return None


def kind_of(tc):
    """The outcome a testcase shows: failure, error, skipped or passed."""
    for k in ("failure", "error", "skipped"):
        if tc.find(k) is not None:
            return k
    return "passed"


def props(el):
    p = el.find("properties")
    return [(x.get("name"), x.get("value")) for x in (p if p is not None else [])]


def check_counts_against_results(doc, res, label):
    """Per batch and in total, the XML's counts equal the results object's (plus one error per
    batch that failed without a failing test). Returns the number of such batches."""
    suites = doc.findall("testsuite")
    sm = res["suite_metrics"]
    is_eq(sorted(s.get("name") for s in suites), sorted(sm), "%s: one testsuite per batch" % label)
    silent_total = 0
    for s in suites:
        name = s.get("name")
        m = sm.get(name, {})
        tests = [t for t in res["tests"] if t["batch"] == name]
        by = {o: sum(1 for t in tests if t["outcome"] == o) for o in
              ("passed", "failed", "error", "skipped", "xfailed", "xpassed")}
        silent = 1 if (not m.get("ok") and not m.get("aborted") and m.get("failed") == 0) else 0
        silent_total += silent
        cases = s.findall("testcase")
        kinds = [kind_of(tc) for tc in cases]
        is_eq([int(s.get(k)) for k in ("tests", "failures", "errors", "skipped")],
              [len(tests) + silent, m.get("failed", 0) - m.get("errors", 0),
               m.get("errors", 0) + silent, m.get("skipped", 0) + m.get("xfailed", 0)],
              "%s: %s: tests/failures/errors/skipped equal the results' suite_metrics" % (label, name))
        is_eq([len(cases), kinds.count("failure"), kinds.count("error"), kinds.count("skipped")],
              [int(s.get(k)) for k in ("tests", "failures", "errors", "skipped")],
              "%s: %s: the testcases add up to the testsuite's counts" % (label, name))
        is_eq([by["failed"], by["error"], by["skipped"] + by["xfailed"]],
              [kinds.count("failure"), kinds.count("error") - silent, kinds.count("skipped")],
              "%s: %s: one testcase per report of the results' tests" % (label, name))
    tot = [int(doc.get(k)) for k in ("tests", "failures", "errors")]
    is_eq(tot, [len(res["tests"]) + silent_total, res["failed"] - res["errors"],
                res["errors"] + silent_total],
          "%s: testsuites tests/failures/errors equal the results object's" % label)
    return silent_total


# --------------------------------------------------------------------------------------------
# 1 and 2


def test_junit_host():
    root = copy_fixture("reports", "host")
    out_file = os.path.join(WORK, "out", "junit.xml")
    rc, out, err, res = selftest(root, ["run", "--json", "--workers", "2", "--retries", "0",
                                        "--junit-xml", out_file] + PATHS)
    label = "host"
    if not ok(res is not None and os.path.isfile(out_file),
              "%s: the run ends with results and writes the file" % label,
              "rc %r\nstderr:\n%s" % (rc, err[-3000:])):
        return
    is_eq(rc, 1, "%s: exit 1 (failures, a crash batch)" % label)
    is_eq(sorted(os.listdir(os.path.dirname(out_file))), ["junit.xml"],
          "%s: no temp file left beside the file" % label)
    valid, why = xmllint_validate(out_file)
    if valid is None:
        sth.skip("%s: xmllint --schema" % label, why)
    else:
        ok(valid, "%s: validates against tests/junit/jenkins-junit.xsd" % label, why)
    doc = ET.parse(out_file).getroot()
    is_eq(doc.tag, "testsuites", "%s: the root is <testsuites>" % label)
    # the fixture has every outcome
    for k in ("passed", "failed", "skipped", "xfailed", "errors", "xpassed"):
        ok(res[k] > 0, "%s: the results have %s tests (the fixture covers it)" % (label, k))
    silent = check_counts_against_results(doc, res, label)
    is_eq(silent, 1, "%s: exactly one batch failed without a failing test (the crash)" % label)

    for s in doc.findall("testsuite"):
        ok(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", s.get("timestamp") or ""),
           "%s: %s: timestamp is ISO 8601" % (label, s.get("name")), s.get("timestamp"))
        ok(s.get("hostname"), "%s: %s: hostname" % (label, s.get("name")))
        ok(float(s.get("time")) > 0, "%s: %s: time" % (label, s.get("name")))
        ok(("selftest.run_id", res["run_id"]) in props(s),
           "%s: %s: the run id in the testsuite's properties" % (label, s.get("name")),
           props(s))

    cases = {}
    for s in doc.findall("testsuite"):
        for tc in s.findall("testcase"):
            cases.setdefault((s.get("name"), tc.get("classname"), tc.get("name")), []).append(tc)

    def one(batch, cls, name):
        got = cases.get((batch, cls, name)) or []
        ok(len(got) == 1, "%s: one testcase %s %s" % (label, cls, name), sorted(cases))
        return got[0] if got else ET.Element("testcase")

    mixed = "tests/mixed/test_mixed.py"
    tc = one("tests/mixed", "tests.mixed.test_mixed", "test_pass")
    is_eq((tc.get("file"), tc.get("line"), kind_of(tc)),
          (mixed, str(def_line(root, mixed, "test_pass")), "passed"),
          "%s: test_pass: file, def line, passed" % label)
    is_eq(one("tests/mixed", "tests.mixed.test_mixed", "test_xfail").get("line"),
          str(def_line(root, mixed, "test_xfail")),
          "%s: a decorated test's line is its first decorator's (as pytest locates it)" % label)
    tc = one("tests/mixed", "tests.mixed.test_mixed", "test_fail_with_output")
    f = tc.find("failure")
    ok(f is not None and f.get("message") == "AssertionError: <script>alert('x')</script>",
       "%s: the failure's message is the exception, markup kept as text" % label,
       None if f is None else f.get("message"))
    ok(f is not None and "assert 4 == 5" in (f.text or "") and
       "tests/mixed/test_mixed.py:" in (f.text or ""),
       "%s: the failure carries the traceback" % label, None if f is None else f.text)
    so, se = tc.findtext("system-out") or "", tc.findtext("system-err") or ""
    ok('stdout of <test> & "quotes" \ufffd[31mred\ufffd[0m \u00fc' in so,
       "%s: system-out has the captured stdout (escaped; ESC as U+FFFD)" % label, repr(so))
    ok("stderr line <b>bold</b>" in se, "%s: system-err has the captured stderr" % label, repr(se))
    is_eq(tc.get("line"), str(def_line(root, mixed, "test_fail_with_output")),
          "%s: the failure's line" % label)
    tc = one("tests/mixed", "tests.mixed.test_mixed", "test_setup_error")
    e = tc.find("error")
    ok(e is not None and "setup <broke> & stopped" in (e.get("message") or "") and
       "setup" in (e.get("message") or "") and "RuntimeError" in (e.text or ""),
       "%s: a setup error is an <error> with message and traceback" % label,
       None if e is None else (e.get("message"), e.text))
    ok(("selftest.phase", "setup") in props(tc), "%s: its phase in its properties" % label,
       props(tc))
    sk = one("tests/mixed", "tests.mixed.test_mixed", "test_skip").find("skipped")
    ok(sk is not None and sk.get("type") == "pytest.skip" and sk.get("message") == "not today",
       "%s: a skip is <skipped> with pytest.skip's reason" % label,
       None if sk is None else sk.attrib)
    xf = one("tests/mixed", "tests.mixed.test_mixed", "test_xfail").find("skipped")
    ok(xf is not None and xf.get("type") == "pytest.xfail" and xf.get("message") == "known bug",
       "%s: an xfail is <skipped type=pytest.xfail> with the mark's reason" % label,
       None if xf is None else xf.attrib)
    tc = one("tests/mixed", "tests.mixed.test_mixed", "test_xpass")
    is_eq(kind_of(tc), "passed", "%s: an xpass passes (the results count it as passed)" % label)
    for param in ("a<b", "c&d"):
        tc = one("tests/mixed", "tests.mixed.test_mixed.TestGroup", "test_param[%s]" % param)
        is_eq(tc.get("line"), str(def_line(root, mixed, "test_param")),
              "%s: a parametrised method: class in classname, id in name, def line" % label)
    crash = "tests/crash/test_crash.py"
    tc = one("tests/crash", "tests.crash.test_crash", "test_crash")
    e = tc.find("error")
    ok(e is not None and "while running tests/crash/test_crash.py::test_crash" in
       (e.get("message") or "") and "test_crash.py ." in (e.text or ""),
       "%s: the crash batch is an <error> testcase named after the test that ended it, its "
       "reason the message, the end of its output the text" % label,
       None if e is None else (e.get("message"), e.text))
    is_eq(tc.get("file"), crash, "%s: the crash testcase's file" % label)
    ok(("selftest.batch_failure", "true") in props(tc), "%s: marked as a batch failure in its "
       "properties" % label, props(tc))
    is_eq(kind_of(one("tests/crash", "tests.crash.test_crash", "test_first")), "passed",
          "%s: the test before the crash passed" % label)

    # 2. the schema refuses what a CI server could not read
    if valid is not None:
        text = open(out_file, encoding="utf-8").read()
        for what, bad in (("a testsuite without timestamp",
                           re.sub(r' timestamp="[^"]*"', "", text, count=1)),
                          ("a count that is not a number",
                           re.sub(r' failures="\d+"', ' failures="many"', text, count=1)),
                          ("a testcase without name",
                           re.sub(r'(<testcase classname="[^"]*") name="[^"]*"', r"\1", text,
                                  count=1))):
            ok(bad != text, "schema check: %s: the document was changed" % what)
            badf = write(os.path.join(WORK, "bad.xml"), bad)
            valid2, why2 = xmllint_validate(badf)
            ok(valid2 is False, "schema check: %s fails validation" % what, why2)


# --------------------------------------------------------------------------------------------
# 3


def test_junit_where():
    root = copy_fixture("passing", "where")
    confdir = os.path.join(WORK, "confdir")
    os.makedirs(confdir, exist_ok=True)
    conf = write(os.path.join(confdir, "sel.conf"), 'junit_xml = "reports/from-conf.xml";\n')
    from_conf = os.path.join(confdir, "reports", "from-conf.xml")
    rc, out, err, res = selftest(root, ["run"], conf=conf)
    is_eq(rc, 0, "where: the passing fixture passes")
    ok(os.path.isfile(from_conf), "where: junit_xml in the config, relative to the config file",
       err[-2000:])
    env_file = os.path.join(WORK, "env-out", "from-env.xml")
    rc, out, err, res = selftest(root, ["run"], conf=conf,
                                 extra_env={"SELF_TEST_JUNIT_XML": env_file})
    ok(os.path.isfile(env_file), "where: SELF_TEST_JUNIT_XML beats the config", err[-2000:])
    flag_file = os.path.join(WORK, "flag-out", "from-flag.xml")
    before = os.stat(env_file).st_mtime_ns
    rc, out, err, res = selftest(root, ["run", "--junit-xml", flag_file], conf=conf,
                                 extra_env={"SELF_TEST_JUNIT_XML": env_file})
    ok(os.path.isfile(flag_file) and os.stat(env_file).st_mtime_ns == before,
       "where: --junit-xml beats SELF_TEST_JUNIT_XML")
    # each cycle replaces the file: a new inode, the run's id inside
    ino = os.stat(flag_file).st_ino
    rc, out, err, res = selftest(root, ["run", "--json", "--junit-xml", flag_file], conf=conf)
    ok(res is not None and os.stat(flag_file).st_ino != ino and
       res["run_id"] in open(flag_file).read(),
       "where: the next cycle replaces the file (rename over it) with its own results")
    is_eq(sorted(os.listdir(os.path.dirname(flag_file))), ["from-flag.xml"],
          "where: no temp file left")
    # a file that cannot be written: a warning naming it; the exit status stays the tests'
    blocker = write(os.path.join(WORK, "not-a-dir"), "x")
    bad = os.path.join(blocker, "junit.xml")
    rc, out, err, res = selftest(root, ["run", "--junit-xml", bad], conf=conf)
    is_eq(rc, 0, "where: an unwritable JUnit file does not change the exit status")
    ok(bad in err and "Not a directory" in err,
       "where: the warning names the file and the cause", err[-2000:])


# --------------------------------------------------------------------------------------------
# 4


def plugin_built(name):
    for d in (os.environ.get("SELF_TEST_PLUGIN_PATH") or "").split(":"):
        for f in ("%s.la" % name, "%s.so" % name, os.path.join(name, "%s.la" % name)):
            if d and os.path.exists(os.path.join(d, f)):
                return True
    return False


def junit_shape(doc):
    return sorted((s.get("name"), tc.get("classname"), tc.get("name"), kind_of(tc))
                  for s in doc.findall("testsuite") for tc in s.findall("testcase"))


def test_junit_container(engines):
    host_root = copy_fixture("reports", "host-again")
    host_file = os.path.join(WORK, "out-host", "junit.xml")
    rc_h, _, err_h, res_h = selftest(host_root, ["run", "--json", "--workers", "2", "--retries",
                                                 "0", "--junit-xml", host_file] + PATHS)
    ok(res_h is not None, "container: the host run for comparison", err_h[-2000:])
    for engine in ("docker", "podman"):
        sock = engines.get(engine)
        if not sock or not plugin_built("runtime-" + engine):
            sth.skip("container: %s" % engine, "no %s engine" % engine if not sock else
                     "runtime-%s is not built (configure --disable-runtime-%s)" % (engine, engine))
            continue
        root = copy_fixture("reports", "ctr-%s" % engine)
        out_file = os.path.join(WORK, "out-%s" % engine, "junit.xml")
        conf = 'runtime = "%s";\ncontainer_fallback = "fail";\ncontainer = { image = "%s"; };\n' % (
            engine, engines["image"])
        env = {"DOCKER_HOST": None, "CONTAINER_HOST": None}
        env["DOCKER_HOST" if engine == "docker" else "CONTAINER_HOST"] = "unix://" + sock
        rc, out, err, res = selftest(root, ["run", "--json", "--workers", "2", "--retries", "0",
                                            "--junit-xml", out_file] + PATHS, conf_text=conf,
                                     extra_env=env, timeout=600)
        label = engine
        if not ok(res is not None and res.get("runtime_used") == engine and
                  os.path.isfile(out_file), "%s: ran in the engine and wrote the file" % label,
                  "rc %r\n%s" % (rc, err[-3000:])):
            continue
        is_eq(rc, rc_h, "%s: the same exit status as on the host" % label)
        valid, why = xmllint_validate(out_file)
        if valid is None:
            sth.skip("%s: xmllint --schema" % label, why)
        else:
            ok(valid, "%s: validates against the schema" % label, why)
        doc = ET.parse(out_file).getroot()
        check_counts_against_results(doc, res, label)
        if res_h is not None:
            is_eq(junit_shape(doc), junit_shape(ET.parse(host_file).getroot()),
                  "%s: the same testsuites and testcases as on the host" % label)
        ctr = [v for s in doc.findall("testsuite") for (n, v) in props(s)
               if n == "selftest.container"]
        ok(len(ctr) == 2 and all(re.match(r"^selftest_[0-9a-f]{32}$", c) for c in ctr),
           "%s: each testsuite names its container" % label, ctr)
