# SPDX-License-Identifier: MIT
"""the integrate stage end to end through the real binary (docs/spec.md §8.2, issue 4).

Small projects written into a temp dir, run with the host runtime:
- the seed's example: `run pkg_a/common.py pkg_b/common.py --auto-include-isolated` leaves two
  separate keys in module_map.json, each with a workflow in workflows.db;
- isolated.py imports helper.py: both checked and integrated, in one group; an orphan whose
  import raises is not integrated; a redundant (empty) module never reaches module_map.json;
- the same cycle twice: module_map.json byte for byte and workflows.db unchanged;
- a third-party integrator (examples/integrator-example, built here) answering integrated [x]
  and redundant [y] is merged into results["integration"];
- an integrator answering paths outside the root: refused, the rest still merged;
- an integrator that refuses its settings: reported by name, exit 2, nothing runs;
- a malformed module_map.json: reported with line and column, left untouched, integration
  skipped, and the run's exit status shows it;
- SELF_TEST_DISABLE_AUTO_INTEGRATION=1: nothing integrated, nothing written.
Everything is skipped, with the reason, while the core has no integrate stage (no integrator is
called and results["integration"] stays empty).
"""

import json
import os
import shutil
import sqlite3
import tempfile

import pytest
import st_helpers as sth
from st_helpers import is_eq, note, ok, skip

SCRUB = sth.SCRUB

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")
SRCDIR = sth.top_srcdir()
WORK = None  # set by the work fixture


@pytest.fixture(scope="module", autouse=True)
def work():
    """The module's scratch directory and what lives in it (module globals), removed at the end."""
    global PLUGINS, WORK
    WORK = tempfile.mkdtemp(prefix="st-integ-")
    PLUGINS = os.path.join(WORK, "plugins")  # the example integrator, built here
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)


EXAMPLE = "integrator-example"

SEED = {"tests/test_ok.py": "def test_ok():\n    assert True\n",
        "pkg_a/common.py": "VALUE = 1\n", "pkg_b/common.py": "VALUE = 2\n"}
ISOLATED = {"tests/test_ok.py": "def test_ok():\n    assert True\n",
            "isolated.py": "import helper\n\nVALUE = helper.X + 1\n",
            "helper.py": "X = 1\n",
            "broken.py": "raise RuntimeError('boom at import')\n",
            "empty.py": '"""Nothing but a docstring: redundant."""\n'}
_n = 0


def project(files):
    global _n
    _n += 1
    root = os.path.join(WORK, "proj%d" % _n)
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(text)
    return root


def conf(plugins=None):
    """A config: the host runtime and, when given, an explicit plugin list (libconfig text)."""
    global _n
    _n += 1
    path = os.path.join(WORK, "c%d.conf" % _n)
    with open(path, "w") as fh:
        fh.write('runtime = "host";\n')
        if plugins is not None:
            fh.write("plugins = (\n%s\n);\n" % ",\n".join(plugins))
    return path


DISCOVERY = '{ kind = "discovery"; name = "discovery-python"; }'
MODULEMAP = '{ kind = "integrator"; name = "integrator-modulemap"; }'


def example(**settings):
    body = " ".join('%s = [%s];' % (k, ", ".join('"%s"' % v for v in vals))
                    for k, vals in settings.items())
    return '{ kind = "integrator"; name = "%s"; settings = { %s }; }' % (EXAMPLE, body)


def run(root, args, conf_path, extra_env=None):
    path = ":".join(p for p in (PLUGINS, os.environ.get("SELF_TEST_PLUGIN_PATH")) if p)
    e = dict(SCRUB, SANDBOX_REPO_PATH=root, SELF_TEST_PLUGIN_PATH=path)
    e.update(extra_env or {})
    rc, out, err = sth.run([BIN, "-v", "-c", conf_path, "run", "--json", "--retries", "0"]
                           + list(args), env=sth.base_env(e), cwd=root, timeout=600)
    results = None
    for line in reversed(out.splitlines()):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and obj.get("event", "results") == "results" \
                and "exit_status" in obj:
            results = obj
            break
    return {"rc": rc, "out": out, "err": err, "results": results}


def integration(r):
    integ = (r["results"] or {}).get("integration") or {}
    return set(integ.get("integrated") or []), set(integ.get("redundant") or [])


def data_file(root, name):
    return os.path.join(root, "sandbox_data", name)


def read_bytes(path):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def load_map(root):
    data = read_bytes(data_file(root, "module_map.json"))
    try:
        return json.loads(data) if data is not None else None
    except ValueError:
        return None


def workflows(root):
    path = data_file(root, "workflows.db")
    if not os.path.exists(path):
        return None
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return db.execute("SELECT id, workflow FROM workflows ORDER BY id").fetchall()
    finally:
        db.close()


def diag(r):
    return "rc=%r\nstderr:\n%s\nintegration=%r" % (
        r["rc"], r["err"][-3000:], (r["results"] or {}).get("integration"))


def build_example():
    """Builds examples/integrator-example into PLUGINS (against the source tree's headers and
    the build tree's generated version.h; the build against the installed ones is
    test_plugin_sdk.py's)."""
    os.makedirs(PLUGINS)
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return "no C compiler"
    so = os.path.join(PLUGINS, EXAMPLE + ".so")
    rc, out, err = sth.run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-fPIC",
                            "-fvisibility=hidden",
                            # <selftest/version.h> is generated by configure into the build tree
                            "-I", os.path.join(sth.top_builddir(), "include"),
                            "-I", os.path.join(SRCDIR, "include"),
                            "-shared", "-Wl,-z,defs", "-o", so,
                            os.path.join(SRCDIR, "examples", EXAMPLE, "integrator_example.c")])
    return None if rc == 0 and os.path.isfile(so) else "cc failed: %s" % (out + err)


# ---- the checks -------------------------------------------------------------------------------


def stage_present():
    """Runs the seed's example once; returns (present, reason, the run, its project)."""
    root = project(SEED)
    r = run(root, ["pkg_a/common.py", "pkg_b/common.py", "--auto-include-isolated"], conf())
    if r["results"] is None:
        return False, "selftest-core run gave no results line (rc=%r): %s" % (
            r["rc"], r["err"][-500:]), r, root
    integrated, redundant = integration(r)
    called = "integrator-modulemap:" in r["err"] or integrated or redundant or \
        os.path.exists(data_file(root, "module_map.json"))
    if not called:
        return False, ("the core's integrate stage does not call integrators yet "
                       "(results.integration = %r, no module_map.json)"
                       % r["results"].get("integration")), r, root
    return True, None, r, root


@pytest.fixture(scope="module")
def seed():
    """The seed's run (skips every test when the integrate stage is not there)."""
    present, reason, r, root = stage_present()
    if not present:
        pytest.skip(reason)
    return r, root


@pytest.fixture(scope="module")
def example_plugin():
    why = build_example()
    if why:
        pytest.fail("examples/integrator-example builds: %s" % why)
    return PLUGINS


def test_seed(seed):
    check_seed(*seed)


def test_isolated_and_second_cycle(seed):
    iso = check_isolated()
    if iso:
        check_twice(iso)
    else:
        check_twice(seed[1])


def test_third_party(seed, example_plugin):
    check_third_party()


def test_outside_root(seed, example_plugin):
    check_outside_root()


def test_create_fails(seed, example_plugin):
    check_create_fails()


def check_seed(r, root):
    is_eq(r["rc"], 0, "seed: run pkg_a/common.py pkg_b/common.py --auto-include-isolated exits 0")
    integrated, _ = integration(r)
    ok({"pkg_a/common.py", "pkg_b/common.py"} <= integrated,
       "seed: both modules are in results.integration.integrated", diag(r))
    m = load_map(root)
    modules = (m or {}).get("modules") or {}
    ok("pkg_a/common.py" in modules and "pkg_b/common.py" in modules,
       "seed: module_map.json has two separate keys, pkg_a/common.py and pkg_b/common.py", m)
    ok(modules.get("pkg_a/common.py") != modules.get("pkg_b/common.py"),
       "seed: they do not import each other: two groups", m)
    ok(set(m or {}) == {"modules", "groups", "tags"}, "seed: module_map.json is canonical", m)
    steps = sorted(w for _, w in workflows(root) or [])
    is_eq(steps, ["pkg_a.common", "pkg_b.common"], "seed: one single-step workflow per module")


def check_isolated():
    root = project(ISOLATED)
    r = run(root, ["--auto-include-isolated"], conf())
    res = r["results"] or {}
    checked = set((res.get("orphan_checks") or {}).keys()) | set(res.get("orphan_passed") or [])
    if "isolated.py" not in checked:
        skip("isolated.py and helper.py are checked and integrated",
             "discovery does not report isolated.py (orphan_checks: %s)" % sorted(checked))
        return None
    integrated, _ = integration(r)
    ok({"isolated.py", "helper.py"} <= integrated,
       "isolated.py imports helper.py: both integrated", diag(r))
    modules = (load_map(root) or {}).get("modules") or {}
    ok("isolated.py" in modules and modules.get("isolated.py") == modules.get("helper.py"),
       "isolated.py joins helper.py's group (an import neighbour)", modules)
    ok("broken.py" not in integrated and "broken.py" not in modules,
       "an orphan whose import raises is not integrated", diag(r))
    ok("broken.py" in (res.get("orphan_failed_modules") or []),
       "... and is reported failed", res.get("orphan_failed_modules"))
    if "empty.py" in (res.get("orphan_redundant_modules") or []):
        ok("empty.py" not in modules and "empty.py" not in integrated,
           "a redundant module never reaches module_map.json", modules)
    else:
        skip("a redundant module never reaches module_map.json",
             "discovery did not classify empty.py redundant")
    return root


def check_twice(root):
    before_map = read_bytes(data_file(root, "module_map.json"))
    before_wf = workflows(root)
    r = run(root, ["--auto-include-isolated"], conf())
    is_eq(r["rc"], 0, "second cycle: exit 0")
    ok(read_bytes(data_file(root, "module_map.json")) == before_map,
       "second cycle: module_map.json unchanged byte for byte (same ids)", diag(r))
    is_eq(workflows(root), before_wf, "second cycle: workflows.db unchanged (no duplicate)")


def check_third_party():
    root = project(SEED)
    c = conf([DISCOVERY, MODULEMAP, example(integrate=["pkg_a/*.py"], redundant=["pkg_b/*.py"])])
    r = run(root, ["pkg_a/common.py", "pkg_b/common.py"], c)
    integrated, redundant = integration(r)
    ok("%s: offered" % EXAMPLE in r["err"], "the third-party integrator is called", diag(r))
    ok("pkg_a/common.py" in integrated, "its integrated [pkg_a/common.py] is merged", diag(r))
    ok("pkg_b/common.py" in redundant, "its redundant [pkg_b/common.py] is merged", diag(r))
    is_eq(r["rc"], 0, "the run with two integrators exits 0")


def check_outside_root():
    root = project(SEED)
    bad = ["../outside.py", "/etc/passwd", "pkg_a/../../escape.py"]
    c = conf([DISCOVERY, MODULEMAP, example(integrate=["pkg_a/*.py"], force_integrated=bad)])
    r = run(root, ["pkg_a/common.py"], c)
    integrated, redundant = integration(r)
    ok(r["results"] is not None, "an integrator answering paths outside the root: the run "
       "completes", diag(r))
    ok(not (set(bad) & (integrated | redundant)), "paths outside the root are refused", diag(r))
    ok("../outside.py" in r["err"], "the refusal names the path", r["err"][-2000:])
    ok("pkg_a/common.py" in integrated, "the valid answers are still merged", diag(r))
    note("exit status with refused answers: %r" % r["rc"])


def check_create_fails():
    root = project(SEED)
    c = conf([DISCOVERY, example(integrate=["*"], no_such_setting=["x"]), MODULEMAP])
    r = run(root, ["pkg_a/common.py"], c)
    ok(EXAMPLE in r["err"] and "no_such_setting" in r["err"],
       "an integrator whose create fails is reported by name, with the reason", r["err"][-2000:])
    # invalid settings are a configuration error, as --check-config says: nothing runs
    is_eq(r["rc"], 2, "an integrator that refuses its settings: exit 2")
    ok(r["results"] is None and load_map(root) is None,
       "nothing runs and nothing is integrated (no results, no module_map.json)", diag(r))


def test_malformed(seed):
    root = project(SEED)
    bad = b'{"old/mod.py": 1,\n  "other.py": }\n'
    os.makedirs(os.path.join(root, "sandbox_data"))
    with open(data_file(root, "module_map.json"), "wb") as fh:
        fh.write(bad)
    r = run(root, ["pkg_a/common.py"], conf())
    is_eq(read_bytes(data_file(root, "module_map.json")), bad,
          "a malformed module_map.json is left untouched byte for byte")
    ok("module_map.json" in r["err"] and "line 2, column" in r["err"],
       "it is reported with file, line and column", r["err"][-2000:])
    integrated, _ = integration(r)
    ok("pkg_a/common.py" not in integrated, "integration by integrator-modulemap is skipped",
       diag(r))
    ok(r["rc"] not in (0, None) and r["rc"] > 0,
       "the run's exit status shows it (got %r)" % r["rc"], diag(r))
    ok(not [f for f in os.listdir(os.path.join(root, "sandbox_data")) if f.startswith(".module_map")],
       "no temp file is left beside it")


def test_disabled(seed):
    root = project(SEED)
    r = run(root, ["pkg_a/common.py"], conf(), {"SELF_TEST_DISABLE_AUTO_INTEGRATION": "1"})
    integrated, redundant = integration(r)
    ok(r["results"] is not None and not integrated and not redundant,
       "SELF_TEST_DISABLE_AUTO_INTEGRATION=1: nothing integrated", diag(r))
    ok(not os.path.exists(data_file(root, "module_map.json")),
       "SELF_TEST_DISABLE_AUTO_INTEGRATION=1: no module_map.json written")

