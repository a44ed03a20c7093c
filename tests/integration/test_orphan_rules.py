# SPDX-License-Identifier: MIT
"""Orphans a user would call orphans (issue 9, points 4 to 10), through the real binary, the
bundled discovery-python and integrator-modulemap plugins and real pytest:
  4 test code and the orphan_exclude files are never orphans, checked or integrated;
  5 a missing third-party package is an unmet dependency, not a failed module;
  6 an integrated module is no candidate any more, and the gauges count only real checks;
  7 import checks are not retried, have their own timeout, and unchanged modules keep their
    verdict (cached);
  8 orphan_modules.json marks legacy modules redundant; every classification has a reason;
  9 recursive_isolated off (flag, both variables, config) adds no helpers of isolated modules;
 10 a failed check's reason and traceback name repository-relative paths."""
import json
import os
import shutil
import time
import urllib.request

import pytest
import st_helpers as t

pytestmark = pytest.mark.usefixtures("selftest_bin")

ORPHAN_VARS = ["SELF_TEST_ORPHAN_EXCLUDE", "SELF_TEST_ORPHAN_TIMEOUT", "SELF_TEST_DISABLE_ORPHANS",
               "SANDBOX_DISABLE_ORPHANS", "SELF_TEST_RECURSIVE_ISOLATED",
               "SANDBOX_RECURSIVE_ISOLATED", "SELF_TEST_AUTO_INCLUDE_ISOLATED",
               "SANDBOX_AUTO_INCLUDE_ISOLATED", "SELF_TEST_DISABLE_AUTO_INTEGRATION",
               "SELF_TEST_INCLUDE_ORPHANS", "SANDBOX_INCLUDE_ORPHANS", "SELF_TEST_RETRIES",
               "SELF_TEST_TIMEOUT"]
MISSING = "selftest_surely_absent_pkg"


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def env(extra=None):
    e = {k: None for k in ORPHAN_VARS}
    e.update(extra or {})
    return t.base_env(e)


def conf(root, extra=""):
    path = os.path.join(root, "selftest.conf")
    with open(path, "w") as f:
        f.write('project_root = ".";\npython = "%s";\nretries = 0;\n%s' % (t.PYTHON, extra))
    return path


def discover(root, *args, extra_env=None, conf_extra=""):
    c = conf(root, conf_extra)
    rc, out, err = t.run([t.selftest_bin(), "-c", c, "discover", "--json"] + list(args),
                         env=env(extra_env), timeout=120, cwd=root)
    try:
        return rc, json.loads(out), err
    except ValueError:
        return rc, {}, out + err


def run(root, *args, extra_env=None, conf_extra="", json_out=True):
    c = conf(root, conf_extra)
    argv = [t.selftest_bin(), "-c", c, "run"] + (["--json"] if json_out else []) + list(args)
    t0 = time.monotonic()
    rc, out, err = t.run(argv, env=env(extra_env), timeout=300, cwd=root)
    took = time.monotonic() - t0
    if not json_out:
        return rc, out, err, took
    lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    res = lines[-1] if lines else {}
    return rc, res, [l for l in lines if l.get("event") == "orphan"], err, took


def data(root, name):
    with open(os.path.join(root, "sandbox_data", name)) as f:
        return json.load(f)


# ---- 4 ------------------------------------------------------------------------------------

def test_point4_test_code_and_excluded_never_orphans(workdir):
    root = workdir
    write(root, "tests/__init__.py", "")
    write(root, "tests/test_a.py", "def test_a():\n    pass\n")
    write(root, "tests/conftest.py", "import os\nFIXTURE_DIR = os.getcwd()\n")
    write(root, "tests/helpers.py", "def make_user():\n    return {'name': 'x'}\n")
    write(root, "tests/factories/users.py", "USERS = [1, 2, 3]\n")
    write(root, "conftest.py", "import sys\nROOT = sys.prefix\n")
    write(root, "setup.py", "NAME = 'pkg'\nVERSION = '1.0'\n")
    write(root, "noxfile.py", "def tests(session):\n    session.run('pytest')\n")
    write(root, "docs/conf.py", "project = 'pkg'\nextensions = []\n")
    write(root, "doc/source/conf.py", "project = 'pkg'\nextensions = []\n")
    write(root, "pkg/lib.py", "def f():\n    return 1\nVALUE = f()\n")
    rc, res, err = discover(root)
    t.is_eq(rc, 0, "4: discover exits 0")
    t.is_eq(res.get("orphans"), ["pkg/lib.py"],
            "4: test code, setup.py, noxfile.py, conftest.py, docs/ and doc/ are no orphans")
    excluded = res.get("excluded", {})
    t.is_eq(sorted(excluded), ["doc/source/conf.py", "docs/conf.py", "noxfile.py",
                               "setup.py", "tests/__init__.py", "tests/factories/users.py",
                               "tests/helpers.py"],
            "4: discover --json lists the files kept out by rule")
    t.ok(excluded.get("tests/helpers.py", "").startswith("test code"),
         "4: a helper under the test path is test code", repr(excluded))
    t.ok(excluded.get("docs/conf.py", "").startswith("orphan_exclude 'docs/*'"),
         "4: docs/conf.py names the orphan_exclude rule", repr(excluded))
    rc, out, err = t.run([t.selftest_bin(), "-c", os.path.join(root, "selftest.conf"),
                          "discover", "-v"], env=env(), timeout=120, cwd=root)
    t.ok("tests/factories/users.py  (test code: in the test directory tests/)" in out and
         "setup.py  (orphan_exclude 'setup.py' (default))" in out,
         "4: discover -v says which rule excluded each file", out + err)
    # a run checks and integrates none of them
    rc, res, lines, err, _ = run(root)
    t.is_eq(sorted(res.get("orphan_checks", {})), ["pkg/lib.py"],
            "4: only the library module is import-checked")
    t.is_eq(res.get("integration", {}).get("integrated"), ["pkg/lib.py"],
            "4: only the library module is integrated")
    # an older cache listing test code: not checked any more
    mods = data(root, "orphan_modules.json")
    mods["tests/helpers.py"] = {"parents": [], "redundant": False}
    mods["docs/conf.py"] = {"parents": [], "redundant": False}
    with open(os.path.join(root, "sandbox_data", "orphan_modules.json"), "w") as f:
        json.dump(mods, f)
    rc, res, lines, err, _ = run(root)
    t.is_eq(sorted(res.get("orphan_checks", {})), [],
            "4: cached entries that are test code or excluded are not checked")
    # orphan_exclude replaces the defaults (config, then the variable beats it); without
    # the data dir, where pkg/lib.py is integrated by now
    shutil.rmtree(os.path.join(root, "sandbox_data"))
    rc, res, err = discover(root, conf_extra='orphan_exclude = ["pkg/"];\n')
    t.is_eq(sorted(res.get("orphans", [])),
            ["doc/source/conf.py", "docs/conf.py", "noxfile.py", "setup.py"],
            "4: orphan_exclude in the config replaces the default list")
    rc, res, err = discover(root, conf_extra='orphan_exclude = ["pkg/"];\n',
                            extra_env={"SELF_TEST_ORPHAN_EXCLUDE": "setup.py:docs/"})
    t.is_eq(sorted(res.get("orphans", [])), ["doc/source/conf.py", "noxfile.py",
                                             "pkg/lib.py"],
            "4: SELF_TEST_ORPHAN_EXCLUDE (colon-separated) beats the config")
    t.ok(res.get("excluded", {}).get("setup.py") == "orphan_exclude 'setup.py'",
         "4: a configured rule is named without (default)", repr(res.get("excluded")))
    rc, res, err = discover(root, extra_env={"SELF_TEST_ORPHAN_EXCLUDE": "../x"})
    t.ok(rc == 2 and "SELF_TEST_ORPHAN_EXCLUDE" in err,
         "4: a bad glob is a usage error naming the variable", "rc=%s\n%s" % (rc, err))


# ---- 5 ------------------------------------------------------------------------------------

def test_point5_missing_package_is_unmet(workdir):
    root = workdir
    write(root, "tests/test_a.py", "def test_a():\n    pass\n")
    write(root, "pkg/__init__.py", "")
    write(root, "pkg/needs.py", "import %s.sub\nVALUE = 1\n" % MISSING)
    write(root, "pkg/uses_needs.py", "from pkg import needs\nVALUE = needs.VALUE\n")
    write(root, "pkg/localmiss.py", "import pkg.not_there\nVALUE = 1\n")
    write(root, "pkg/ok.py", "VALUE = 2\n")
    textfile = os.path.join(root, "out", "selftest.prom")
    os.makedirs(os.path.dirname(textfile))
    plugins = ('plugins = ({ kind = "discovery"; name = "discovery-python"; },\n'
               '  { kind = "integrator"; name = "integrator-modulemap"; },\n'
               '  { kind = "exporter"; name = "exporter-prometheus";\n'
               '    settings = { textfile = "%s"; }; });\n' % textfile)
    have_prom = any(os.path.exists(os.path.join(d, n)) for d in
                    os.environ.get("SELF_TEST_PLUGIN_PATH", "").split(":") if d
                    for n in ("exporter-prometheus.la", "exporter-prometheus.so",
                              "exporter-prometheus/exporter-prometheus.la"))
    rc, res, lines, err, _ = run(root, conf_extra=plugins if have_prom else "")
    metrics = {}
    if have_prom and os.path.exists(textfile):
        with open(textfile) as f:
            metrics = dict(l.split() for l in f if l and not l.startswith("#") and
                           len(l.split()) == 2)
    unmet = sorted(res.get("orphan_unmet_modules", []))
    t.is_eq(unmet, ["pkg/needs.py", "pkg/uses_needs.py"],
            "5: a missing third-party package gives unmet dependencies (also through a "
            "local import)")
    t.is_eq(res.get("orphan_failed_modules"), ["pkg/localmiss.py"],
            "5: a missing module of the project itself is a failed module")
    t.is_eq((res.get("orphan_failed"), res.get("orphan_unmet")), (1, 2),
            "5: orphan_failed does not count unmet dependencies")
    check = res.get("orphan_checks", {}).get("pkg/needs.py", {})
    t.is_eq((check.get("verdict"), check.get("unmet")), ("unmet", MISSING),
            "5: the check names the missing package")
    t.ok((check.get("reason") or "").startswith("unmet dependency: %s" % MISSING),
         "5: its reason is 'unmet dependency: NAME'", repr(check))
    t.is_eq(res.get("integration", {}).get("integrated"), ["pkg/ok.py"],
            "5: unmet dependencies are never integrated")
    line = [l for l in lines if l.get("path") == "pkg/needs.py"]
    t.ok(line and line[0]["batch"].get("unmet") == MISSING,
         "5: the --json stream carries it", repr(line))
    rc, out, err, _ = run(root, json_out=False, conf_extra=plugins if have_prom else "")
    t.ok("2 unmet dependencies" in out and "unmet dependency: %s  pkg/needs.py" % MISSING
         in out and "FAILED pkg/needs.py" not in out,
         "5: the summary shows them apart from the failures", out)
    if not have_prom:
        pytest.skip("exporter-prometheus is not built")
    t.is_eq((metrics.get("orphan_modules_unmet_total"),
             metrics.get("orphan_modules_failed_total")), ("2", "1"),
            "5: gauge orphan_modules_unmet_total, not counted in orphan_modules_failed_total")


# ---- 6 ------------------------------------------------------------------------------------

def test_point6_integrated_no_candidate(workdir):
    root = workdir
    write(root, "tests/test_a.py", "def test_a():\n    pass\n")
    write(root, "good.py", "VALUE = 1\n")
    write(root, "bad.py", "raise RuntimeError('no')\n")
    write(root, "empty.py", '"""Nothing here yet."""\n')
    rc, res, lines, err, _ = run(root)
    t.is_eq(res.get("integration", {}).get("integrated"), ["good.py"],
            "6: the first cycle integrates the passing orphan")
    rc, res, lines, err, _ = run(root)
    t.ok("good.py" not in res.get("orphan_checks", {}),
         "6: an integrated module is not checked again", repr(res.get("orphan_checks")))
    t.is_eq(res.get("integration", {}).get("integrated"), [],
            "6: nor integrated again")
    # the gauges of run-scheduled: several cycles, one real check of each module
    port = t.free_port()
    shutil.rmtree(os.path.join(root, "sandbox_data"))
    c = conf(root)
    proc_env = env()
    import subprocess
    proc = subprocess.Popen([t.selftest_bin(), "-c", c, "run-scheduled", "--interval", "1",
                             "--metrics-port", str(port)], env=proc_env, cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    metrics = {}
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                              timeout=5).read().decode()
            except OSError:
                continue
            metrics = dict(l.split() for l in text.splitlines()
                           if l and not l.startswith("#") and len(l.split()) == 2)
            if int(metrics.get("self_test_runs_total", "0")) >= 3:
                break
    finally:
        t.kill_group(proc)
        proc.wait()
    t.ok(int(metrics.get("self_test_runs_total", "0")) >= 3, "6: three cycles ran",
         repr(metrics))
    t.is_eq((metrics.get("orphan_modules_tested_total"),
             metrics.get("orphan_modules_failed_total"),
             metrics.get("orphan_modules_reintroduced_total"),
             metrics.get("orphan_modules_redundant_total")), ("2", "1", "1", "1"),
            "6: the gauges count each module once, in the cycle that checked it")


# ---- 7 ------------------------------------------------------------------------------------

def test_point7_checks_not_retried_own_timeout_cached(workdir):
    root = workdir
    write(root, "tests/test_a.py", "def test_a():\n    pass\n")
    # each attempt leaves a line beside the module, then hangs
    write(root, "hangs.py", "import os, time\n"
                            "with open(os.path.join(os.path.dirname(os.path.abspath(__file__)),"
                            " 'attempts.log'), 'a') as f:\n    f.write('x\\n')\n"
                            "time.sleep(600)\n")
    rc, res, lines, err, took = run(root, "--retries", "2", "--timeout", "4",
                                    extra_env={"SELF_TEST_ORPHAN_TIMEOUT": "2"})
    check = res.get("orphan_checks", {}).get("hangs.py", {})
    t.ok("timeout: stopped after 2 s" in (check.get("reason") or ""),
         "7: an import check has its own timeout (SELF_TEST_ORPHAN_TIMEOUT)", repr(check))
    with open(os.path.join(root, "attempts.log")) as f:
        attempts = len(f.read().splitlines())
    t.is_eq(attempts, 1, "7: ... and is never retried (--retries 2 is for infrastructure)")
    t.ok("hangs.py" not in res.get("retry_errors", {}), "7: no retry recorded")
    rc, res, lines, err, took = run(root, "--retries", "2", "--timeout", "120",
                                    conf_extra="orphan_timeout = 2;\n")
    check = res.get("orphan_checks", {}).get("hangs.py", {})
    t.ok(check.get("cached") is True and "timeout" in (check.get("reason") or ""),
         "7: the hanging module is not run again (orphan_timeout in the config): its "
         "verdict is cached", repr(check))
    with open(os.path.join(root, "attempts.log")) as f:
        attempts = len(f.read().splitlines())
    t.ok(attempts == 1 and took < 30, "7: a cached verdict costs no timeout",
         "took %.1fs, %d attempts" % (took, attempts))

    with t.tmpdir() as root:
        write(root, "tests/test_a.py", "def test_a():\n    pass\n")
        write(root, "pkg/__init__.py", "")
        write(root, "pkg/helper.py", "X = 1\n")
        write(root, "pkg/good.py", "from pkg import helper\nVALUE = helper.X\n")
        write(root, "pkg/bad.py", "raise ValueError('broken')\n")
        noint = {"SELF_TEST_DISABLE_AUTO_INTEGRATION": "1"}
        rc, res, lines, err, _ = run(root, extra_env=noint)
        checks = res.get("orphan_checks", {})
        t.is_eq(sorted(p for p, c in checks.items() if not c.get("cached")),
                ["pkg/bad.py", "pkg/good.py", "pkg/helper.py"], "7: the first cycle checks all")
        rc, res, lines, err, _ = run(root, extra_env=noint)
        checks = res.get("orphan_checks", {})
        t.ok(all(c.get("cached") for c in checks.values()) and len(checks) == 3,
             "7: unchanged modules are not checked again", repr(checks))
        t.is_eq((checks.get("pkg/bad.py", {}).get("ok"),
                 checks.get("pkg/bad.py", {}).get("reason")),
                (False, "ValueError: broken (pkg/bad.py:1)"), "7: the last verdict stands")
        t.is_eq(res.get("orphan_cached"), 3, "7: orphan_cached counts them")
        t.ok(all(l["batch"].get("cached") for l in lines) and len(lines) == 3,
             "7: the --json stream shows them as cached", repr(lines))
        rc, out, err, _ = run(root, json_out=False, extra_env=noint)
        t.ok("3 verdicts cached" in out and "FAILED pkg/bad.py (cached)" in out,
             "7: the summary says so", out)
        # a local import changes: the importer is checked again, the others are not
        write(root, "pkg/helper.py", "X = 2\n")
        rc, res, lines, err, _ = run(root, extra_env=noint)
        fresh = sorted(p for p, c in res.get("orphan_checks", {}).items() if not c.get("cached"))
        t.is_eq(fresh, ["pkg/good.py", "pkg/helper.py"],
                "7: a changed module and its importers are checked again")
        # another interpreter (another path) is a miss
        alias = os.path.join(root, "py3")
        os.symlink(os.path.realpath(t.PYTHON), alias)
        rc, res, lines, err, _ = run(root, extra_env=dict(noint, SELF_TEST_PYTHON=alias))
        t.is_eq(res.get("orphan_cached"), 0, "7: another interpreter checks everything again")
        # a malformed cache file is reported and not overwritten
        cache_file = os.path.join(root, "sandbox_data", "orphan_check_cache.json")
        with open(cache_file, "w") as f:
            f.write("{broken")
        rc, res, lines, err, _ = run(root, extra_env=noint)
        with open(cache_file) as f:
            kept = f.read()
        t.ok("orphan_check_cache.json" in err and "line 1" in err and kept == "{broken",
             "7: a malformed cache is reported (file, line) and left as it is",
             "%r\n%s" % (kept, err))
        t.is_eq(res.get("orphan_cached"), 0, "7: ... and every module is checked")


# ---- 8 ------------------------------------------------------------------------------------

def test_point8_legacy_redundant_with_reasons(workdir):
    root = workdir
    write(root, "tests/test_a.py", "def test_a():\n    pass\n")
    write(root, "old.py", '"""Deprecated: use new.py."""\nVALUE = 1\n')
    write(root, "good.py", "VALUE = 1\n")
    write(root, "bad.py", "raise RuntimeError('no')\n")
    rc, res, lines, err, _ = run(root, extra_env={"SELF_TEST_DISABLE_AUTO_INTEGRATION": "1"})
    mods = data(root, "orphan_modules.json")
    t.is_eq(mods.get("old.py", {}).get("redundant"), True,
            "8: a legacy module is marked redundant in orphan_modules.json")
    t.is_eq(mods.get("good.py", {}).get("redundant"), False, "8: a candidate is not")
    classes = data(root, "orphan_classifications.json")
    t.ok(all(isinstance(e.get("reason"), str) and e["reason"] for e in classes.values()),
         "8: every classification entry keeps a reason", json.dumps(classes, indent=1))
    t.is_eq((classes.get("old.py", {}).get("classification"),
             classes.get("good.py", {}).get("classification"),
             classes.get("bad.py", {}).get("classification")),
            ("legacy", "passed", "failed"), "8: with the latest verdict")


# ---- 9 ------------------------------------------------------------------------------------

def test_point9_recursive_isolated_off(workdir):
    root = workdir
    write(root, "tests/test_a.py", "def test_a():\n    pass\n")
    write(root, "iso.py", "import helper\nVALUE = helper.X\n")
    write(root, "helper.py", "X = 1\n")
    base = ["--isolated", "--no-discover-orphans"]
    rc, res, err = discover(root, *base)
    t.is_eq(sorted(res.get("isolated", [])), ["helper.py", "iso.py"],
            "9: by default an isolated module's own imports are added")
    for name, args, extra, cfg in [
            ("--no-recursive-isolated", ["--no-recursive-isolated"], {}, ""),
            ("SELF_TEST_RECURSIVE_ISOLATED=0", [], {"SELF_TEST_RECURSIVE_ISOLATED": "0"}, ""),
            ("SANDBOX_RECURSIVE_ISOLATED=0", [], {"SANDBOX_RECURSIVE_ISOLATED": "0"}, ""),
            ("recursive_isolated = false", [], {}, "recursive_isolated = false;\n")]:
        rc, res, err = discover(root, *(base + args), extra_env=extra, conf_extra=cfg)
        t.is_eq(res.get("isolated"), ["iso.py"], "9: %s: only the isolated module" % name)
    rc, res, lines, err, _ = run(root, "--auto-include-isolated", "--no-discover-orphans",
                                 "--no-include-orphans", extra_env={"SELF_TEST_RECURSIVE_ISOLATED": "0",
                                            "SELF_TEST_DISABLE_AUTO_INTEGRATION": "1"})
    t.is_eq(sorted(res.get("orphan_checks", {})), ["iso.py"],
            "9: run --auto-include-isolated keeps it off too")


# ---- 10 -----------------------------------------------------------------------------------

def test_point10_failure_paths_repository_relative(workdir):
    root = workdir
    write(root, "tests/test_a.py", "def test_a():\n    pass\n")
    write(root, "pkg/__init__.py", "")
    write(root, "pkg/raises.py", "import json\n\n\ndef f():\n    raise RuntimeError('boom')\n\n"
                                 "\nf()\n")
    rc, res, lines, err, _ = run(root, extra_env={"SELF_TEST_DISABLE_AUTO_INTEGRATION": "1"})
    check = res.get("orphan_checks", {}).get("pkg/raises.py", {})
    t.is_eq(check.get("reason"), "RuntimeError: boom (pkg/raises.py:5)",
            "10: the results object has the exception and its line")
    line = [l for l in lines if l.get("path") == "pkg/raises.py"]
    t.is_eq(line[0]["batch"].get("reason") if line else None,
            "RuntimeError: boom (pkg/raises.py:5)", "10: so has the --json stream")
    excerpt = check.get("excerpt") or ""
    t.ok('File "pkg/raises.py", line 8, in <module>' in excerpt and
         'File "pkg/raises.py", line 5, in f' in excerpt and "../" not in excerpt and
         root not in excerpt,
         "10: the traceback shows repository-relative paths", excerpt)
    rc, out, err, _ = run(root, json_out=False,
                          extra_env={"SELF_TEST_DISABLE_AUTO_INTEGRATION": "1"})
    t.ok("FAILED pkg/raises.py (cached): RuntimeError: boom (pkg/raises.py:5)" in out and
         'File "pkg/raises.py", line 5, in f' in out and "../" not in out,
         "10: so does the summary", out)
