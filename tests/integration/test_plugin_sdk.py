# SPDX-License-Identifier: MIT
"""the plugin SDK as a third party sees it.

`make install DESTDIR=<tmp>` of this build tree; the installed headers (selftest/plugin.h,
selftest/version.h), selftest-core.pc with its plugindir variable and the ABI man page are
there; pkg-config finds them with PKG_CONFIG_PATH=<tmp><libdir>/pkgconfig and
PKG_CONFIG_SYSROOT_DIR=<tmp>; examples/integrator-example is copied out of the tree and built
with its own plain Makefile against the *installed* header (pkg-config only, -Werror), exports
only selftest_plugin_entry (nm -D), installs into the staged plugindir, is listed by
`selftest-core plugins` (kind integrator, with the licence and origin of its descriptor) from
there, also through SELF_TEST_PLUGIN_SYSTEM_PATH while SELF_TEST_PLUGIN_PATH adds the build
tree's plugins before it; the installed header, selftest-core.pc and the core agree on the plugin
ABI version, and ST_STRUCT_HAS works from the installed header; and its answer (integrated [x],
redundant [y]) shows up in results["integration"] of a run.  The last check needs the core's
integrate stage: it is skipped, with the reason, while the core does not call integrators.
"""

import json
import os
import shutil
import tempfile

import pytest
import st_helpers as sth
from st_helpers import is_eq, note, ok, skip

SCRUB = dict(sth.SCRUB, **dict.fromkeys(("DESTDIR", "MAKEFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MFLAGS", "PKG_CONFIG_LIBDIR", "PKG_CONFIG_PATH", "PKG_CONFIG_SYSROOT_DIR")))

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")
SRCDIR = sth.top_srcdir()
BUILDDIR = os.path.abspath(os.environ.get("top_builddir") or SRCDIR)
EXAMPLE_SRC = os.path.join(SRCDIR, "examples", "integrator-example")
PLUGIN = "integrator-example"

WORK = None  # set by the work fixture


@pytest.fixture(scope="module", autouse=True)
def work():
    """The module's scratch directory and what lives in it (module globals), removed at the end."""
    global STAGE, WORK
    WORK = tempfile.mkdtemp(prefix="st-sdk-")
    STAGE = os.path.join(WORK, "stage")
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)


def env(extra=None):
    e = dict(SCRUB)
    e.update(extra or {})
    return sth.base_env(e)


def tool(name):
    return shutil.which(name)


def find_file(top, name):
    for d, dirs, files in os.walk(top):
        if name in files:
            return os.path.join(d, name)
    return None


def install_tree():
    """make install DESTDIR=STAGE in the build tree; returns (ok, output)."""
    rc, out, err = sth.run(["make", "-C", BUILDDIR, "install", "DESTDIR=" + STAGE],
                           env=env(), timeout=900)
    return rc == 0, (out + err)[-3000:]


def pkg_config(pcdir, args):
    rc, out, err = sth.run(["pkg-config"] + args,
                           env=env({"PKG_CONFIG_PATH": pcdir,
                                    "PKG_CONFIG_SYSROOT_DIR": STAGE}))
    return rc, out.strip(), err.strip()


def check_install():
    """The files plugin authors need; returns the pkgconfig dir or None."""
    good, log = install_tree()
    if not ok(good, "make install DESTDIR=<tmp> succeeds", log):
        return None
    pc = find_file(STAGE, "selftest-core.pc")
    if not ok(pc is not None, "selftest-core.pc is installed", "under %s" % STAGE):
        return None
    pcdir = os.path.dirname(pc)
    note("selftest-core.pc: %s" % os.path.relpath(pc, STAGE))
    rc, incdir, err = pkg_config(pcdir, ["--variable=includedir", "selftest-core"])
    ok(rc == 0 and incdir.startswith(STAGE), "pkg-config finds it through the DESTDIR "
       "(PKG_CONFIG_PATH + PKG_CONFIG_SYSROOT_DIR)", err or incdir)
    for header in ("plugin.h", "version.h"):
        path = os.path.join(incdir, "selftest", header)
        found = find_file(STAGE, header)
        ok(os.path.isfile(path), "selftest/%s is installed under pkg-config's includedir" % header,
           "expected %s; found: %s" % (path, found))
    rc, cflags, err = pkg_config(pcdir, ["--cflags", "selftest-core"])
    ok(rc == 0 and "-I" + incdir in cflags.split(),
       "pkg-config --cflags selftest-core names the installed include dir", cflags + err)
    rc, plugindir, err = pkg_config(pcdir, ["--variable=plugindir", "selftest-core"])
    ok(rc == 0 and plugindir.startswith(STAGE) and os.path.isdir(plugindir),
       "pkg-config --variable=plugindir names the staged plugin dir", plugindir + err)
    ok(plugindir and os.path.exists(os.path.join(plugindir, "runtime-host.so")),
       "the bundled plugins are installed in plugindir", plugindir)
    pc_abi = []
    for var in ("abi_major", "abi_minor"):
        rc, val, err = pkg_config(pcdir, ["--variable=" + var, "selftest-core"])
        ok(rc == 0 and val.isdigit(), "selftest-core.pc has %s (%s)" % (var, val), err)
        pc_abi.append(val)
    check_abi_one_source(incdir, ".".join(pc_abi))
    man = find_file(STAGE, "selftest-plugin.7")
    ok(man is not None, "the ABI man page selftest-plugin.7 is installed",
       "not under %s" % STAGE)
    if not man or not tool("man"):
        skip("selftest-plugin.7 renders with man", "no man page or no man(1)")
    else:
        rc, out, err = sth.run(["man", "-l", "-P", "cat", man],
                               env=env({"MANWIDTH": "80", "LC_ALL": "C.UTF-8"}))
        ok(rc == 0 and "selftest_plugin_entry" in out and "warning" not in err.lower(),
           "selftest-plugin.7 renders with man", err[-1000:])
    return pcdir


ABI_PROBE = r"""#include <selftest/plugin.h>
#include <stdio.h>
int main(void)
{
    st_exec_result r = {0};
    r.struct_size = offsetof(st_exec_result, limit); /* an ABI 1.2 runtime's result */
    printf("%u.%u %d %d %d\n", ST_ABI_MAJOR, ST_ABI_MINOR,
           ST_STRUCT_HAS(st_exec_result, &r, container), ST_STRUCT_HAS(st_exec_result, &r, limit),
           ST_EXEC_RESULT_HAS(&r, leftover));
    return 0;
}
"""


def check_abi_one_source(incdir, pc_abi):
    """The ABI version of the installed header, of selftest-core.pc and of the core agree (one
    definition in configure.ac); ST_STRUCT_HAS works from the installed header."""
    src = os.path.join(WORK, "abi_probe.c")
    exe = os.path.join(WORK, "abi_probe")
    with open(src, "w") as fh:
        fh.write(ABI_PROBE)
    rc, out, err = sth.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-I" + incdir,
                               "-o", exe, src], env=env(), timeout=120)
    if not ok(rc == 0, "a program using ST_STRUCT_HAS compiles against the installed header",
              out + err):
        return
    rc, out, err = sth.run([exe], env=env())
    fields = out.split()
    is_eq(fields[1:], ["1", "0", "0"], "ST_STRUCT_HAS / ST_EXEC_RESULT_HAS follow struct_size "
          "(container present; limit, leftover beyond an older runtime's result)")
    rc, ver, err = sth.run([BIN, "--version"], env=env())
    core_abi = ver.split("plugin ABI ")[-1].strip(" )\n") if "plugin ABI " in ver else ver
    is_eq([fields[0] if fields else out, pc_abi], [core_abi, core_abi],
          "the installed header, selftest-core.pc and the core say the same plugin ABI")


def build_example(pcdir):
    """Copies the example out of the tree and builds it with its own Makefile; returns the .so."""
    build = os.path.join(WORK, "integrator-example")
    shutil.copytree(EXAMPLE_SRC, build)
    for d, dirs, files in os.walk(build):  # under distcheck the source tree is read-only
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)
    e = env({"PKG_CONFIG_PATH": pcdir, "PKG_CONFIG_SYSROOT_DIR": STAGE})
    rc, out, err = sth.run(["make", "-C", build, "CFLAGS=-O2 -g -Werror"], env=e, timeout=300)
    so = os.path.join(build, PLUGIN + ".so")
    if not ok(rc == 0 and os.path.isfile(so),
              "the example builds out of tree with its plain Makefile, -Werror", out + err):
        return None, None
    incdir = pkg_config(pcdir, ["--variable=includedir", "selftest-core"])[1]
    ok(("-I" + incdir) in out, "it was compiled against the installed header (%s)" % incdir, out)
    nm = tool("nm")
    if nm:
        rc, out, err = sth.run([nm, "-D", "--defined-only", so])
        syms = [line.split()[-1] for line in out.splitlines() if line.strip()]
        is_eq(syms, ["selftest_plugin_entry"], "the .so exports only selftest_plugin_entry")
        rc, out, err = sth.run([nm, "-D", "--undefined-only", so])
        undef = [line.split()[-1] for line in out.splitlines() if line.strip()]
        ok(not any(s.startswith("st_") or "selftest" in s for s in undef),
           "it needs nothing from the core (no st_* imports)", " ".join(undef))
    else:
        skip("the .so exports only selftest_plugin_entry", "nm not found")
    rc, out, err = sth.run(["make", "-C", build, "install"], env=e, timeout=120)
    plugindir = pkg_config(pcdir, ["--variable=plugindir", "selftest-core"])[1]
    installed = os.path.join(plugindir, PLUGIN + ".so")
    ok(rc == 0 and os.path.isfile(installed), "make install puts it into plugindir", out + err)
    return so, plugindir if os.path.isfile(installed) else None


def write_conf(name, text):
    path = os.path.join(WORK, name)
    with open(path, "w") as fh:
        fh.write(text)
    return path


EXAMPLE_CONF = """runtime = "host";
plugins = (
  { kind = "integrator"; name = "integrator-example";
    settings = { integrate = ["pkg_a/*.py"]; redundant = ["pkg_b/*.py"]; }; }
);
"""


def check_listed(plugindir):
    conf = write_conf("list.conf", EXAMPLE_CONF)
    rc, out, err = sth.run([BIN, "-c", conf, "--plugin-dir", plugindir, "plugins", "--json"],
                           env=env())
    try:
        rows = json.loads(out)
    except ValueError:
        rows = None
    ok(rc == 0 and isinstance(rows, list), "selftest-core plugins loads it from plugindir",
       out + err)
    row = [r for r in rows or [] if r.get("name") == PLUGIN]
    ok(len(row) == 1 and row[0].get("kind") == "integrator"
       and row[0].get("file", "").startswith(plugindir)
       and row[0].get("version") == "1.0.0",
       "it is listed as kind integrator, version 1.0.0, from the installed file", out)
    is_eq([row[0].get(k) for k in ("license", "author", "origin")] if row else None,
          ["MIT", "Example Author <author@example.org>", "https://example.org/integrator-example"],
          "plugins --json shows the licence, author and origin of its descriptor")
    bad = write_conf("bad.conf", EXAMPLE_CONF.replace("integrate = ", "frobnicate = "))
    rc, out, err = sth.run([BIN, "-c", bad, "--plugin-dir", plugindir, "run", "--json"],
                           env=env({"SANDBOX_REPO_PATH": make_project("bad")}), timeout=300)
    ok("frobnicate" in err and PLUGIN in err,
       "an unknown setting is refused in create, naming the plugin and the setting", err[-2000:])


def check_plugin_path(plugindir):
    """SELF_TEST_PLUGIN_PATH is searched before the system plugin directory, which
    SELF_TEST_PLUGIN_SYSTEM_PATH replaces (here: the staged plugindir, which holds the example
    and a copy of every bundled plugin)."""
    conf = write_conf("path.conf", EXAMPLE_CONF)
    build_plugins = os.path.join(BUILDDIR, "plugins")
    rc, out, err = sth.run([BIN, "-c", conf, "plugins", "--json"],
                              env=env({"SELF_TEST_PLUGIN_PATH": build_plugins,
                                       "SELF_TEST_PLUGIN_SYSTEM_PATH": plugindir}))
    try:
        rows = {r.get("name"): r.get("file", "") for r in json.loads(out)}
    except (ValueError, AttributeError, TypeError):
        rows = {}
    ok(rc == 0 and rows.get(PLUGIN, "").startswith(plugindir + os.sep),
       "a plugin only in SELF_TEST_PLUGIN_SYSTEM_PATH loads while SELF_TEST_PLUGIN_PATH is set "
       "(the path adds to the system directory)", out + err)
    ok(rows.get("runtime-host", "").startswith(build_plugins + os.sep),
       "a plugin in SELF_TEST_PLUGIN_PATH shadows the installed one of the same name",
       repr(rows))
    rc, out, err = sth.run([BIN, "-c", conf, "plugins"],
                              env=env({"SELF_TEST_PLUGIN_PATH": build_plugins,
                                       "SELF_TEST_PLUGIN_SYSTEM_PATH": ""}))
    ok(rc == 2 and "unknown plugin '%s'" % PLUGIN in err and plugindir not in err,
       "SELF_TEST_PLUGIN_SYSTEM_PATH set but empty: no system directory is searched", out + err)


def make_project(name):
    root = os.path.join(WORK, "proj-" + name)
    files = {"tests/test_ok.py": "def test_ok():\n    assert True\n",
             "pkg_a/common.py": "VALUE = 1\n", "pkg_b/common.py": "VALUE = 2\n"}
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(text)
    return root


def check_answer_merged(plugindir):
    """The example's answer in results["integration"] (needs the core's integrate stage)."""
    name = 'its answer shows up in results["integration"]'
    root = make_project("run")
    conf = write_conf("run.conf", EXAMPLE_CONF)
    path = ":".join([plugindir, os.environ.get("SELF_TEST_PLUGIN_PATH", "")])
    rc, out, err = sth.run([BIN, "-v", "-c", conf, "run", "--json", "--retries", "0",
                            "pkg_a/common.py", "pkg_b/common.py"],
                           env=env({"SANDBOX_REPO_PATH": root,
                                    "SELF_TEST_PLUGIN_PATH": path}),
                           cwd=root, timeout=300)
    results = None
    for line in reversed(out.splitlines()):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and obj.get("event", "results") == "results":
            results = obj
            break
    if not ok(results is not None, "a run with the example integrator gives results",
              "rc=%r\n%s" % (rc, err[-2000:])):
        return
    if "%s: offered" % PLUGIN not in err:
        pytest.skip("the core's integrate stage does not call integrators yet (no 'offered' line "
    "from %s; results.integration = %r)" % (PLUGIN, results.get("integration")))
    integ = results.get("integration") or {}
    is_eq(sorted(integ.get("integrated", [])), ["pkg_a/common.py"],
          name + ": integrated [pkg_a/common.py]")
    is_eq(sorted(integ.get("redundant", [])), ["pkg_b/common.py"],
          name + ": redundant [pkg_b/common.py]")
    is_eq(rc, 0, "the run exits 0")


@pytest.fixture(scope="module", autouse=True)
def sdk_tools():
    for name in ("make", "pkg-config", "cc"):
        if not tool(name):
            pytest.skip("%s not found" % name)


# Each step needs the one before; a test selected alone (-k) runs them (and their checks) itself.
_DONE = {}


def installed():
    if "pcdir" not in _DONE:
        _DONE["pcdir"] = check_install()
    if not _DONE["pcdir"]:
        pytest.skip("nothing installed")
    return _DONE["pcdir"]


def example_plugindir():
    if "plugindir" not in _DONE:
        _DONE["plugindir"] = build_example(installed())[1]
    if not _DONE["plugindir"]:
        pytest.skip("the example was not built and installed")
    return _DONE["plugindir"]


def test_install():
    installed()


def test_build_example_against_the_installed_header():
    example_plugindir()


def test_listed():
    check_listed(example_plugindir())


def test_plugin_path():
    check_plugin_path(example_plugindir())


def test_answer_merged():
    check_answer_merged(example_plugindir())
