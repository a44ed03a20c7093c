# SPDX-License-Identifier: MIT
"""The Debian packages (debian/), built, checked, installed, used and purged on this machine.

Opt-in: it installs packages system-wide, so it runs only with SELFTEST_DEB_TEST=1 (tools/test-all
sets it and runs it as a step of its own), as root, with dpkg-buildpackage, debhelper, fakeroot
and lintian installed; otherwise it is skipped with the reason.

- a copy of the source tree (the files `git ls-files` lists: never the build tree) is built with
  `dpkg-buildpackage -us -uc -b` (DEB_BUILD_OPTIONS="nocheck parallel=2": the package build runs
  no tests) into selftest-core, selftest-core-containers, selftest-core-prometheus and
  selftest-core-dev;
- `lintian` over the .changes reports no error (its warnings are listed in the log);
- each package holds its plugins and nothing else's (core: runtime-host, discovery-python,
  integrator-modulemap; containers: runtime-docker, runtime-podman, runtime-swarm; prometheus:
  exporter-prometheus), no libtool .la file, and the core the program, the bundled pytest plugin,
  the man pages, the systemd units, the sysusers.d file, the bash completion and
  /etc/selftest/selftest.conf as a conffile; prometheus the alerting rules and the dashboard; -dev the header, the .pc, the
  plugin man page, the guide and the example plugin; the plugin packages depend on the core of
  the same version and on their libraries (shlibs);
- `dpkg -i` of the four, then one cycle of the sample project with /usr/bin/selftest-core: the
  plugins come from the installed plugin directory (`selftest-core plugins` names their files),
  every test passes;
- `dpkg --purge` of the four leaves none of their files or directories behind.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest
import st_helpers as sth
from st_helpers import is_eq, note, ok

SRCDIR = sth.top_srcdir()
PACKAGES = ("selftest-core", "selftest-core-containers", "selftest-core-prometheus",
            "selftest-core-dev")
PLUGINS = {"selftest-core": {"runtime-host", "discovery-python", "integrator-modulemap"},
           "selftest-core-containers": {"runtime-docker", "runtime-podman", "runtime-swarm"},
           "selftest-core-prometheus": {"exporter-prometheus"},
           "selftest-core-dev": set()}
TOOLS = ("dpkg-buildpackage", "dh", "fakeroot", "lintian", "dpkg", "dpkg-deb", "git")
# what make check sets for the build tree: the installed program must find its own files
SCRUB = dict.fromkeys(("SELF_TEST_PLUGIN_PATH", "SELF_TEST_PLUGIN_SYSTEM_PATH",
                       "SELF_TEST_SUPPORT_DIR", "FIXTURE_PLUGIN_DIR", "SELFTEST_BIN",
                       "DESTDIR", "MAKEFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MFLAGS",
                       "DEB_BUILD_OPTIONS", "DEB_BUILD_PROFILES", "CFLAGS", "CPPFLAGS",
                       "LDFLAGS", "PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR"))

WORK = None


def skip_reason():
    if os.environ.get("SELFTEST_DEB_TEST") != "1":
        return ("set SELFTEST_DEB_TEST=1 to run it (tools/test-all does): it installs and purges "
                "the selftest-core packages on this machine")
    if os.geteuid() != 0:
        return "not root: dpkg -i needs root"
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        return "not installed: %s (Debian: dpkg-dev debhelper fakeroot lintian git)" % \
            " ".join(missing)
    rc, out, _ = sth.run(["git", "-C", SRCDIR, "rev-parse", "--is-inside-work-tree"])
    if rc != 0 or out.strip() != "true":
        return "%s is not a git work tree: the package is built from `git ls-files`" % SRCDIR
    return None


def env(extra=None):
    e = dict(SCRUB)
    e.update(extra or {})
    return sth.base_env(e)


def installed(pkg):
    rc, out, _ = sth.run(["dpkg-query", "-W", "-f=${Status}", pkg], env=env())
    return rc == 0 and "installed" in out.split() and "not-installed" not in out.split()


def known(pkg):
    """dpkg knows the package in any state but not-installed (config-files counts)."""
    rc, out, _ = sth.run(["dpkg-query", "-W", "-f=${Status}", pkg], env=env())
    return rc == 0 and not out.strip().endswith("not-installed")


def purge_all():
    present = [p for p in PACKAGES if known(p)]
    if not present:
        return 0, ""
    rc, out, err = sth.run(["dpkg", "--purge"] + present,
                           env=env({"DEBIAN_FRONTEND": "noninteractive"}), timeout=300)
    return rc, out + err


@pytest.fixture(scope="module", autouse=True)
def work():
    global WORK
    why = skip_reason()
    if why:
        pytest.skip(why)
    already = [p for p in PACKAGES if known(p)]
    if already:
        pytest.fail("already known to dpkg: %s; this test installs and purges its own build, "
                    "purge them first (dpkg --purge %s)" % (" ".join(already), " ".join(already)))
    WORK = tempfile.mkdtemp(prefix="st-deb-")
    yield WORK
    rc, out = purge_all()  # whatever failed on the way, the machine is left without them
    if rc != 0:
        print("dpkg --purge at the end failed:\n" + out)
    shutil.rmtree(WORK, ignore_errors=True)


def copy_source(dest):
    """The files git lists (tracked ones, as they are in the work tree) copied to dest."""
    out = subprocess.run(["git", "-C", SRCDIR, "ls-files", "-z"], check=True,
                         stdout=subprocess.PIPE).stdout.decode()
    n = 0
    for rel in filter(None, out.split("\0")):
        src = os.path.join(SRCDIR, rel)
        if not os.path.lexists(src):
            continue  # deleted in the work tree, not yet committed
        dst = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
        n += 1
    return n


def deb_files(deb):
    """The paths (files and links, no directories) a .deb holds, without the leading '.'."""
    proc = subprocess.run(["dpkg-deb", "-c", deb], stdout=subprocess.PIPE, check=True)
    files = []
    for line in proc.stdout.decode().splitlines():
        fields = line.split(None, 5)
        if len(fields) < 6 or fields[0].startswith("d"):
            continue
        name = fields[5].split(" -> ")[0]
        files.append(name[1:] if name.startswith(".") else name)
    return files


def deb_field(deb, field):
    rc, out, _ = sth.run(["dpkg-deb", "-f", deb, field], env=env())
    return out.strip() if rc == 0 else None


def deb_conffiles(deb):
    d = os.path.join(WORK, "ctrl-" + os.path.basename(deb))
    subprocess.run(["dpkg-deb", "-e", deb, d], check=True)
    try:
        with open(os.path.join(d, "conffiles")) as f:
            return f.read().split()
    except OSError:
        return []


def plugin_names(files):
    return {os.path.basename(f)[:-3] for f in files
            if re.search(r"/selftest-core/[^/]+\.so$", f)}


def test_build_lint_install_run_purge(capsys):
    tree = os.path.join(WORK, "selftest-core")
    n = copy_source(tree)
    note("copied %d files from `git ls-files`" % n)
    ok(os.path.isfile(os.path.join(tree, "debian", "rules")), "debian/rules is a tracked file")

    log = os.path.join(WORK, "dpkg-buildpackage.log")
    with open(log, "w") as f:
        proc = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=tree,
                              env=env({"DEB_BUILD_OPTIONS": "nocheck parallel=2"}),
                              stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                              timeout=1800)
    with open(log, errors="replace") as f:
        build_out = f.read()
    if not ok(proc.returncode == 0, "dpkg-buildpackage -us -uc -b succeeds", build_out[-4000:]):
        return
    debs = {}
    for name in os.listdir(WORK):
        m = re.match(r"^([a-z0-9.+-]+)_([^_]+)_([a-z0-9]+)\.deb$", name)
        if m:
            debs[m.group(1)] = os.path.join(WORK, name)
    note("built: %s" % " ".join(sorted(os.path.basename(d) for d in debs.values())))
    for p in PACKAGES:
        ok(p in debs, "%s is built" % p, " ".join(sorted(debs)))
    if not all(p in debs for p in PACKAGES):
        return
    changes = [f for f in os.listdir(WORK) if f.endswith(".changes")]

    # ---- lintian: no errors; warnings listed
    if ok(len(changes) == 1, "one .changes file", changes):
        rc, out, err = sth.run(["lintian", "--no-tag-display-limit",
                                os.path.join(WORK, changes[0])], env=env(), timeout=600)
        tags = [l for l in (out + err).splitlines() if re.match(r"^[EWIPXON]: ", l)]
        errors = [l for l in tags if l.startswith("E: ")]
        warnings = [l for l in tags if l.startswith("W: ")]
        # listed whether the test passes or not: on stderr, past pytest's capture (make check
        # writes it to the test's log)
        with capsys.disabled():
            sys.stderr.write("\nlintian: %d errors, %d warnings%s\n" % (
                len(errors), len(warnings), "".join("\n  " + w for w in warnings)))
            sys.stderr.flush()
        ok(not errors, "lintian reports no error (%d warnings)" % len(warnings),
           "\n".join(errors))
        ok(rc == 0 or errors, "lintian exits 0 without errors", (out + err)[-2000:])

    # ---- what each package holds
    files = {p: deb_files(debs[p]) for p in PACKAGES}
    for p in PACKAGES:
        note("%s:\n  %s" % (p, "\n  ".join(files[p])))
        is_eq(sorted(plugin_names(files[p])), sorted(PLUGINS[p]), "%s holds its plugins" % p)
        ok(not [f for f in files[p] if f.endswith(".la")], "%s ships no .la file" % p,
           [f for f in files[p] if f.endswith(".la")])
    core = set(files["selftest-core"])
    for path in ("/usr/bin/selftest-core", "/etc/selftest/selftest.conf",
                 "/usr/share/selftest-core/python/selftest_pytest_plugin.py",
                 "/usr/share/selftest-core/python/selftest_pytest_plugin_impl.py",
                 "/usr/share/man/man1/selftest-core.1.gz", "/usr/share/man/man5/selftest.conf.5.gz",
                 "/usr/share/doc/selftest-core/examples/selftest.conf",
                 "/usr/share/bash-completion/completions/selftest-core",
                 "/usr/lib/sysusers.d/selftest-core.conf"):
        ok(path in core, "selftest-core holds %s" % path)
    ok(any(f.endswith("/systemd/system/selftest-core.service") for f in core),
       "selftest-core holds the systemd unit")
    prom = set(files["selftest-core-prometheus"])
    for path in ("/usr/share/selftest-core/prometheus/selftest.rules.yml",
                 "/usr/share/selftest-core/grafana/selftest-core.json"):
        ok(path in prom, "selftest-core-prometheus holds %s" % path)
    is_eq(deb_conffiles(debs["selftest-core"]), ["/etc/selftest/selftest.conf"],
          "/etc/selftest/selftest.conf is selftest-core's conffile")
    dev = set(files["selftest-core-dev"])
    for path in ("/usr/include/selftest/plugin.h", "/usr/include/selftest/version.h",
                 "/usr/share/man/man7/selftest-plugin.7.gz"):
        ok(path in dev, "selftest-core-dev holds %s" % path)
    ok(any(f.endswith("/pkgconfig/selftest-core.pc") for f in dev),
       "selftest-core-dev holds selftest-core.pc")
    ok(any(re.search(r"/doc/selftest-core-dev/plugin-guide\.md(\.gz)?$", f) for f in dev),
       "selftest-core-dev holds the plugin guide")
    ok(any(f.endswith("/doc/selftest-core-dev/examples/integrator-example/integrator_example.c")
           for f in dev), "selftest-core-dev holds the example plugin's source")
    version = deb_field(debs["selftest-core"], "Version")
    for p, lib in (("selftest-core", "libconfig"), ("selftest-core-containers", "libcurl"),
                   ("selftest-core-prometheus", "libmicrohttpd")):
        dep = deb_field(debs[p], "Depends") or ""
        ok(lib in dep, "%s depends on its libraries (shlibs: %s)" % (p, lib), dep)
        if p != "selftest-core":
            ok("selftest-core (= %s)" % version in dep,
               "%s depends on selftest-core of the same version" % p, dep)
    rec = deb_field(debs["selftest-core"], "Recommends") or ""
    ok("python3-pytest" in rec, "selftest-core recommends python3-pytest", rec)

    # ---- install, one cycle of the sample, purge
    rc, out, err = sth.run(["dpkg", "-i"] + [debs[p] for p in PACKAGES],
                           env=env({"DEBIAN_FRONTEND": "noninteractive"}), timeout=600)
    if not ok(rc == 0, "dpkg -i of the four packages succeeds", (out + err)[-3000:]):
        return
    for p in PACKAGES:
        ok(installed(p), "%s is installed" % p)
    rc, out, err = sth.run(["getent", "passwd", "selftest"], env=env())
    ok(rc == 0 and out.startswith("selftest:"),
       "the units' user selftest exists (sysusers.d, at installation)", out + err)
    run_sample(files)

    rc, out = purge_all()
    ok(rc == 0, "dpkg --purge of the four succeeds", out[-3000:])
    for p in PACKAGES:
        ok(not known(p), "%s is purged" % p)
    left = sorted(f for p in PACKAGES for f in files[p] if os.path.lexists(f))
    is_eq(left, [], "no file of the packages is left")
    dirs = ["/etc/selftest", "/usr/share/selftest-core", "/usr/include/selftest"] + \
        ["/usr/share/doc/" + p for p in PACKAGES] + \
        sorted({os.path.dirname(f) for f in files["selftest-core"] if f.endswith(".so")})
    is_eq([d for d in dirs if os.path.lexists(d)], [], "none of their directories is left")


def run_sample(files):
    """One cycle of the sample project with the installed program and its installed plugins."""
    sample = os.path.join(WORK, "sample")
    shutil.copytree(os.path.join(SRCDIR, "sample"), sample,
                    ignore=shutil.ignore_patterns("sandbox_data", "__pycache__", ".pytest_cache",
                                                  "selftest.conf"))
    conf = os.path.join(sample, "selftest.conf")
    with open(conf, "w") as f:
        f.write('project_root = ".";\npaths = ["tests"];\nruntime = "host";\n'
                'plugins = ( { kind = "discovery"; name = "discovery-python"; },\n'
                '            { kind = "integrator"; name = "integrator-modulemap"; },\n'
                '            { kind = "exporter"; name = "exporter-prometheus";\n'
                '              settings = { textfile = "%s"; }; } );\n'
                % os.path.join(sample, "metrics.prom"))
    plugindir = sorted({os.path.dirname(f) for f in files["selftest-core"] if f.endswith(".so")})
    rc, out, err = sth.run(["/usr/bin/selftest-core", "-c", conf, "plugins"], env=env(),
                           cwd=sample, timeout=120)
    note(out + err)
    if ok(rc == 0 and len(plugindir) == 1, "selftest-core plugins lists the configured plugins",
          out + err):
        for name in ("runtime-host", "discovery-python", "integrator-modulemap",
                     "exporter-prometheus"):
            path = os.path.join(plugindir[0], name + ".so")
            ok(re.search(r"^\S+\s+%s\s.*\s%s\s" % (re.escape(name), re.escape(path)), out,
                         re.M) is not None,
               "%s is loaded from the installed plugin directory (%s)" % (name, path))
    rc, out, err = sth.run(["/usr/bin/selftest-core", "-c", conf, "run", "--json"], env=env(),
                           cwd=sample, timeout=600)
    results = None
    for line in out.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and obj.get("event") == "results":
            results = obj
    if not ok(rc == 0 and results is not None,
              "one cycle of the sample with /usr/bin/selftest-core passes (exit 0)",
              (out + err)[-3000:]):
        return
    ok(results.get("passed", 0) > 0 and results.get("failed") == 0,
       "its tests ran and passed", json.dumps({k: results.get(k) for k in
                                               ("passed", "failed", "skipped")}))
    ok(os.path.isfile(os.path.join(sample, "metrics.prom")),
       "exporter-prometheus from selftest-core-prometheus wrote its textfile")
