# SPDX-License-Identifier: MIT
"""`selftest-core discover` through the real binary and discovery-python (docs/spec.md §7, issue 3).

Scenarios on generated projects: a -> b -> c gives [a] without recursion and [a, b, c] with
(b's parents [a], c's [b]); the a,d / b / c / e<->f tree gives the roots [a, d]; tested code is
never an orphan; module_map.json entries are known; a `# deprecated` header is legacy; the same
token stream is redundant with duplicate_of; pkg_a/common.py and pkg_b/common.py stay apart; a
namespace package's modules are found; an isolated module with its helpers; --deps; the orphan
files written atomically with sorted keys; a malformed or escaping orphan_modules.json is
reported and left untouched.

Expected `discover --json` output (one JSON object on stdout):
    {"batches": ["tests"],
     "modules": [{"path": "a.py", "origin": "orphan"|"isolated", "parents": [...],
                  "classification": "candidate"|"legacy"|"redundant", "reason": "...",
                  "duplicate_of": "x.py"|null}, ...],          sorted by path
     "orphans": ["a.py", ...], "isolated": [...],              paths by origin, sorted
     "deps": {"tool.py": [{"path": "lib/helper.py", "parents": ["tool.py"]}, ...]}}
                                                              only with --deps PATH...
While the command is missing every check is skipped (never passed).
"""
import json
import os

import pytest
import st_helpers as t

pytestmark = pytest.mark.usefixtures("selftest_bin")

BIN = t.selftest_bin()


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def env(extra=None):
    e = {"SANDBOX_REPO_PATH": None, "SANDBOX_DATA_DIR": None, "SELF_TEST_DISABLE_ORPHANS": None,
         "SANDBOX_DISABLE_ORPHANS": None, "SELF_TEST_RECURSIVE_ORPHANS": None,
         "SANDBOX_RECURSIVE_ORPHANS": None, "SELF_TEST_AUTO_INCLUDE_ISOLATED": None,
         "SANDBOX_AUTO_INCLUDE_ISOLATED": None, "SELF_TEST_RECURSIVE_ISOLATED": None,
         "SANDBOX_RECURSIVE_ISOLATED": None}
    e.update(extra or {})
    return t.base_env(e)


def discover(root, *args, extra_env=None):
    """Runs discover --json in root; returns (rc, parsed object or None, stdout, stderr)."""
    conf = os.path.join(root, "selftest.conf")
    if not os.path.exists(conf):
        with open(conf, "w") as f:
            f.write('project_root = ".";\npython = "%s";\n' % t.PYTHON)
    rc, out, err = t.run([BIN, "-c", conf, "discover", "--json"] + list(args),
                         env=env(extra_env), timeout=120, cwd=root)
    obj = None
    for line in out.splitlines()[::-1]:
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            break
    if obj is None and out.strip().startswith("{"):
        try:
            obj = json.loads(out)
        except ValueError:
            obj = None
    return rc, obj, out, err


def mods(obj):
    return {m.get("path"): m for m in (obj or {}).get("modules", [])}


def paths(obj):
    return sorted(mods(obj))


def project(root, files):
    for rel, text in files.items():
        write(root, rel, text)
    write(root, "tests/test_nothing.py", "def test_nothing():\n    assert True\n")


CHECKS = [
    "chain without recursion", "chain with recursion", "chain parents",
    "orphan roots [a, d]", "recursive roots tree", "tested code never an orphan",
    "known modules", "legacy header", "duplicate", "same-named modules",
    "namespace package", "isolated with helpers", "deps", "orphan files written",
    "orphan files sorted, 2-space", "no temp file left", "malformed orphan file untouched",
    "escaping path rejected, file untouched",
]


def command_available():
    if not BIN or not os.access(BIN, os.X_OK):
        return False, "SELFTEST_BIN is not set or not executable"
    rc, out, err = t.run([BIN, "discover", "--help"], env=env(), timeout=30)
    if rc != 0:
        return False, "the discover command is not there yet (exit %r)" % (rc,)
    return True, ""


@pytest.fixture(scope="module", autouse=True)
def discover_available(selftest_bin):
    available, why = command_available()
    if not available:
        pytest.skip(why)


def test_chain_recursion(workdir):
    root = workdir
    project(root, {"a.py": "import b\nA = 1\n", "b.py": "import c\nB = 2\n",
                   "c.py": "C = 3\n"})
    rc, obj, out, err = discover(root, "--orphans",
                                 extra_env={"SELF_TEST_RECURSIVE_ORPHANS": "0"})
    t.is_eq((rc, paths(obj)), (0, ["a.py"]), CHECKS[0])
    if rc != 0:
        t.note(err)
    rc, obj, out, err = discover(root, "--orphans",
                                 extra_env={"SELF_TEST_RECURSIVE_ORPHANS": "1"})
    t.is_eq((rc, paths(obj)), (0, ["a.py", "b.py", "c.py"]), CHECKS[1])
    m = mods(obj)
    t.is_eq([m.get(p, {}).get("parents") for p in ("a.py", "b.py", "c.py")],
            [[], ["a.py"], ["b.py"]], CHECKS[2])


def test_orphan_roots(workdir):
    root = workdir
    project(root, {"a.py": "import b\n", "d.py": "import b\nD = 1\n",
                   "b.py": "import c\nB = 1\n", "c.py": "C = 1\n",
                   "e.py": "import b\nimport f\nE = 1\n", "f.py": "import e\nF = 1\n"})
    rc, obj, out, err = discover(root, "--orphans",
                                 extra_env={"SELF_TEST_RECURSIVE_ORPHANS": "0"})
    t.is_eq(paths(obj), ["a.py", "d.py"], CHECKS[3])
    rc, obj, out, err = discover(root, "--orphans")
    m = mods(obj)
    t.is_eq((paths(obj), m.get("b.py", {}).get("parents")),
            (["a.py", "b.py", "c.py", "d.py", "e.py", "f.py"], ["a.py", "d.py", "e.py"]),
            CHECKS[4])


def test_tested_code_never_an_orphan(workdir):
    root = workdir
    project(root, {"lib.py": "import helper\n\ndef f():\n    return helper.G\n",
                   "helper.py": "G = 1\n", "lonely.py": "L = 1\n",
                   "tests/test_lib.py": "import lib\n\ndef test_f():\n    assert lib.f()\n"})
    rc, obj, out, err = discover(root, "--orphans")
    t.is_eq(paths(obj), ["lonely.py"], CHECKS[5])


def test_known_modules(workdir):
    root = workdir
    project(root, {"a.py": "A = 1\n", "b.py": "B = 2\n", "pkg/__init__.py": "P = 0\n",
                   "pkg/mod.py": "M = 3\n",
                   "sandbox_data/module_map.json":
                       '{"modules": {"a.py": 1, "pkg.mod": 2}, "groups": {}, "tags": {}}\n'})
    rc, obj, out, err = discover(root, "--orphans")
    t.is_eq(paths(obj), ["b.py", "pkg/__init__.py"], CHECKS[6])


def test_classification_and_orphan_files(workdir):
    root = workdir
    project(root, {
        "old.py": "# deprecated: use new.py\nX = 1\n",
        "new.py": "X = 2\n",
        "alpha.py": "def f(x):\n    # double\n    return x * 2\n",
        "beta.py": "def f( x ):\n    return x*2  # same tokens\n",
        "pkg_a/__init__.py": "", "pkg_a/common.py": "VALUE = 1\n",
        "pkg_b/__init__.py": "", "pkg_b/common.py": "VALUE = 2\n",
        "ns/sub/mod.py": "N = 1\n", "ns/user.py": "from ns.sub import mod\n",
    })
    rc, obj, out, err = discover(root, "--orphans")
    m = mods(obj)
    t.is_eq((m.get("old.py", {}).get("classification"),
             m.get("new.py", {}).get("classification")), ("legacy", "candidate"), CHECKS[7])
    t.is_eq((m.get("beta.py", {}).get("classification"),
             m.get("beta.py", {}).get("duplicate_of"),
             m.get("alpha.py", {}).get("classification")),
            ("redundant", "alpha.py", "candidate"), CHECKS[8])
    t.ok("pkg_a/common.py" in m and "pkg_b/common.py" in m, CHECKS[9], sorted(m))
    t.is_eq((m.get("ns/sub/mod.py", {}).get("parents"), "ns/user.py" in m),
            (["ns/user.py"], True), CHECKS[10])

    data = os.path.join(root, "sandbox_data")
    mf = os.path.join(data, "orphan_modules.json")
    cf = os.path.join(data, "orphan_classifications.json")
    t.ok(os.path.isfile(mf) and os.path.isfile(cf), CHECKS[13], str(os.listdir(root)))
    try:
        with open(mf) as f:
            text = f.read()
        cached = json.loads(text)
        sorted_ok = list(cached) == sorted(cached) and text.startswith('{\n  "')
    except (OSError, ValueError) as e:
        sorted_ok = False
        t.note(str(e))
    t.ok(sorted_ok, CHECKS[14])
    t.is_eq(sorted(n for n in os.listdir(data) if not n.endswith(".json")
                   and not n.endswith(".lock") and not n.endswith(".db")),
            [], CHECKS[15])

    bad = '{\n  "old.py": {"parents": [}\n}\n'
    with open(mf, "w") as f:
        f.write(bad)
    rc, obj, out, err = discover(root, "--orphans")
    with open(mf) as f:
        after = f.read()
    t.ok(rc == 0 and after == bad and "orphan_modules.json" in err and "line 2" in err,
         CHECKS[16], "rc=%r stderr=%s" % (rc, err))

    escaping = '{"../outside.py": {"parents": []}, "old.py": {"parents": []}}'
    with open(mf, "w") as f:
        f.write(escaping)
    rc, obj, out, err = discover(root, "--orphans")
    with open(mf) as f:
        after = f.read()
    t.ok(rc == 0 and after == escaping and "../outside.py" in err, CHECKS[17],
         "rc=%r stderr=%s" % (rc, err))


def test_isolated_and_deps(workdir):
    root = workdir
    project(root, {"tool.py": "from lib import helper\nimport shared\n",
                   "lib/__init__.py": "", "lib/helper.py": "from lib import inner\n",
                   "lib/inner.py": "V = 1\n", "shared.py": "S = 1\n",
                   "used.py": "import shared\n",
                   "tests/test_used.py": "import used\n\ndef test_u():\n    pass\n"})
    rc, obj, out, err = discover(root, "--isolated",
                                 extra_env={"SELF_TEST_DISCOVER_ORPHANS": "0"})
    m = mods(obj)
    t.is_eq((paths(obj), m.get("lib/helper.py", {}).get("parents"),
             m.get("tool.py", {}).get("origin")),
            (["lib/__init__.py", "lib/helper.py", "lib/inner.py", "tool.py"], ["tool.py"],
             "isolated"), CHECKS[11])
    rc, obj, out, err = discover(root, "--deps", "tool.py")
    deps = (obj or {}).get("deps", {}).get("tool.py", [])
    t.is_eq(sorted(d.get("path") for d in deps),
            ["lib/__init__.py", "lib/helper.py", "lib/inner.py", "shared.py"], CHECKS[12])


def test_switches_in_plugin_settings(workdir):
    """Since plugin ABI 1.5 the orphan switches are discovery-python's settings; the old
    top-level settings, flags and variables are routed there: a flag or a variable beats the
    plugin's own setting, which beats the top-level one."""
    def conf(root, top, group):
        with open(os.path.join(root, "selftest.conf"), "w") as f:
            f.write('project_root = ".";\npython = "%s";\n%s\nplugins = ({ kind = "discovery"; '
                    'name = "discovery-python"; %s });\n'
                    % (t.PYTHON, top, "settings = { %s };" % group if group else ""))
    root = workdir
    project(root, {"a.py": "import b\nA = 1\n", "b.py": "import c\nB = 2\n",
                   "c.py": "C = 3\n"})
    everything = ["a.py", "b.py", "c.py"]
    conf(root, "", "recursive_orphans = false;")
    rc, obj, out, err = discover(root, "--orphans")
    t.is_eq((rc, paths(obj), err if rc else ""), (0, ["a.py"], ""),
            "discovery-python's own setting recursive_orphans = false")
    rc, obj, out, err = discover(root, "--orphans", "--recursive-orphans")
    t.is_eq((rc, paths(obj), err if rc else ""), (0, everything, ""),
            "the flag --recursive-orphans beats the plugin's setting")
    rc, obj, out, err = discover(root, "--orphans",
                                 extra_env={"SANDBOX_RECURSIVE_ORPHANS": "1"})
    t.is_eq((rc, paths(obj), err if rc else ""), (0, everything, ""),
            "the variable SANDBOX_RECURSIVE_ORPHANS beats the plugin's setting")
    conf(root, "recursive_orphans = true;", "recursive_orphans = false;")
    rc, obj, out, err = discover(root, "--orphans")
    t.is_eq((rc, paths(obj), err if rc else ""), (0, ["a.py"], ""),
            "the plugin's own setting beats the top-level recursive_orphans")
    conf(root, "recursive_orphans = false;", "")
    rc, obj, out, err = discover(root, "--orphans")
    t.is_eq((rc, paths(obj), err if rc else ""), (0, ["a.py"], ""),
            "the top-level recursive_orphans still reaches a configured discovery-python")
    conf(root, "", 'recursive_orphans = "no";')
    rc, obj, out, err = discover(root, "--orphans")
    t.ok(rc == 2 and "recursive_orphans" in err and "selftest.conf:" in err,
         "a switch of the wrong type in the plugin's settings is refused (exit 2) naming "
         "the file and the setting", "rc=%r %s" % (rc, err))
