# SPDX-License-Identifier: MIT
"""configure's plugin switches and summary, and the installed default configuration.

configure runs in a scratch copy of its inputs (configure, build-aux/, the .in files config.status
names), so the tested tree stays as it is, in-tree or VPATH:
- --disable-all-plugins / --enable-all-plugins set every plugin; the options are read left to
  right and the last one naming a plugin, or all plugins, wins (`--disable-all-plugins
  --enable-runtime-host` builds only runtime-host; `--enable-runtime-host --disable-all-plugins`
  none); the generated Makefile's BUILD_PLUGIN_* conditionals follow the summary;
  --enable-all-plugins with a plugin's library missing is an error naming the plugins;
- the summary lists the libraries with the versions pkg-config reports and the install
  directories, expanded;
- AM_INIT_AUTOMAKE in configure.ac has no -Werror (a newer automake's warnings must not break a
  packager's build);
- `make install` puts conf/selftest.conf at $(sysconfdir)/selftest/selftest.conf only when there
  is none (an edited copy survives a reinstall), and `make uninstall` removes it only while it is
  unchanged.
"""

import os
import re
import shutil
import tempfile

import pytest
import st_helpers as sth
from st_helpers import is_eq, note, ok

SRCDIR = sth.top_srcdir()
BUILDDIR = sth.top_builddir()
SCRUB = dict.fromkeys(("DESTDIR", "MAKEFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MFLAGS",
                       "PKG_CONFIG_LIBDIR", "PKG_CONFIG_PATH", "PKG_CONFIG_SYSROOT_DIR",
                       "CONFIG_SITE", "CFLAGS", "CPPFLAGS", "LDFLAGS"))
PLUGINS = ("runtime-host", "runtime-docker", "runtime-podman", "runtime-swarm",
           "discovery-python", "exporter-prometheus", "integrator-modulemap")
# the pkg-config modules of the summary's library list, and whether configure requires them
LIBS = (("libconfig", "libconfig", True), ("yajl", "yajl", True), ("sqlite3", "sqlite3", True),
        ("libcurl", "libcurl", False), ("libmicrohttpd", "libmicrohttpd", False),
        ("check (unit tests)", "check", False))

WORK = None


def env(extra=None):
    e = dict(SCRUB)
    e.update(extra or {})
    return sth.base_env(e)


def config_status_files():
    """The files config.status of the build tree generates (each from FILE.in)."""
    rc, out, err = sth.run([os.path.join(BUILDDIR, "config.status"), "--help"], env=env())
    if rc != 0:
        return None
    files = []
    for section in ("Configuration files:", "Configuration headers:"):
        m = re.search(re.escape(section) + r"\n((?: .*\n)+)", out)
        if m:
            files += m.group(1).split()
    return files


@pytest.fixture(scope="module", autouse=True)
def work():
    """A scratch copy of configure's inputs (module global WORK), removed at the end."""
    global WORK
    if not os.path.isfile(os.path.join(SRCDIR, "configure")) or \
            not os.path.isfile(os.path.join(BUILDDIR, "config.status")):
        pytest.skip("the tree is not configured (./autogen.sh && ./configure)")
    if not shutil.which("pkg-config"):
        pytest.skip("pkg-config is not installed")
    WORK = tempfile.mkdtemp(prefix="st-configure-")
    src = os.path.join(WORK, "src")
    os.makedirs(src)
    shutil.copy2(os.path.join(SRCDIR, "configure"), src)
    shutil.copytree(os.path.join(SRCDIR, "build-aux"), os.path.join(src, "build-aux"))
    # configure's sanity check looks for AC_CONFIG_SRCDIR's file
    with open(os.path.join(SRCDIR, "configure")) as f:
        m = re.search(r'^ac_unique_file="([^"]+)"', f.read(), re.M)
    inputs = [m.group(1)] if m else []
    inputs += [f + ".in" for f in config_status_files() or []]
    for f in inputs:
        p = os.path.join(SRCDIR, f)
        if os.path.isfile(p):
            os.makedirs(os.path.dirname(os.path.join(src, f)), exist_ok=True)
            shutil.copy2(p, os.path.join(src, f))
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)


def configure(name, args, extra_env=None, cache=True):
    """Runs the copied configure in its own build dir WORK/NAME; returns (rc, output, builddir)."""
    build = os.path.join(WORK, name)
    os.makedirs(build)
    argv = [os.path.join(WORK, "src", "configure"), "--prefix=/opt/st-test"] + list(args)
    if cache:
        argv.append("--cache-file=" + os.path.join(WORK, "config.cache"))
    rc, out, err = sth.run(argv, env=env(extra_env), cwd=build, timeout=600)
    return rc, out + err, build


def plugin_lines(output):
    """{plugin: (built, why)} from the summary."""
    got = {}
    for name in PLUGINS:
        m = re.search(r"^ +%s +(yes|no) \((.*)\)$" % re.escape(name), output, re.M)
        if m:
            got[name] = (m.group(1), m.group(2))
    return got


def conditionals(build):
    """{plugin: True/False}: the BUILD_PLUGIN_* conditionals configure substituted (config.log's
    output variables: BUILD_PLUGIN_X_TRUE is '' when X is built, '#' when not)."""
    got = {}
    try:
        with open(os.path.join(build, "config.log")) as f:
            text = f.read()
    except OSError:
        return got
    for name in PLUGINS:
        var = "BUILD_PLUGIN_%s_TRUE" % name.upper().replace("-", "_")
        m = re.search(r"^%s='(.*)'$" % var, text, re.M)
        if m:
            got[name] = m.group(1) != "#"
    return got


def have_pc(module):
    rc, _, _ = sth.run(["pkg-config", "--exists", module], env=env())
    return rc == 0


def pc_version(module):
    rc, out, _ = sth.run(["pkg-config", "--modversion", module], env=env())
    return out.strip() if rc == 0 else None


def expect_plugins(output, build, want, label):
    """want: {plugin: (built, why)}; checks the summary and the Makefile's conditionals."""
    got = plugin_lines(output)
    for name, (built, why) in want.items():
        is_eq(got.get(name), (built, why), "%s: %s is %s (%s)" % (label, name, built, why))
    cond = conditionals(build)
    for name, (built, _) in want.items():
        is_eq(cond.get(name), built == "yes",
              "%s: the Makefile's conditional for %s agrees" % (label, name))


def test_no_automake_werror():
    with open(os.path.join(SRCDIR, "configure.ac")) as f:
        text = f.read()
    m = re.search(r"^AM_INIT_AUTOMAKE\(\[([^]]*)\]\)", text, re.M)
    if ok(m is not None, "configure.ac calls AM_INIT_AUTOMAKE with options"):
        opts = m.group(1).split()
        ok("-Werror" not in opts, "AM_INIT_AUTOMAKE has no -Werror", " ".join(opts))
        ok("-Wall" in opts, "AM_INIT_AUTOMAKE keeps -Wall", " ".join(opts))


def test_summary_libraries_and_directories():
    rc, out, build = configure("default", ["--with-systemdsystemunitdir=/opt/st-test/units",
                                           "--with-sysusersdir=/opt/st-test/sysusers",
                                           "--with-bash-completion-dir=no"])
    if not ok(rc == 0, "configure succeeds", out[-3000:]):
        return
    note(out[out.find("selftest-core "):] if "selftest-core " in out else out[-2000:])
    for label, module, required in LIBS:
        m = re.search(r"^ +%s +(\S.*)$" % re.escape(label), out, re.M)
        found = m.group(1).strip() if m else None
        want = pc_version(module) if have_pc(module) else "not found"
        is_eq(found, want, "the summary lists %s with pkg-config's version" % label)
    ok(re.search(r"^ +libltdl +found", out, re.M) is not None,
       "the summary lists libltdl as found")
    dirs = {"bindir": "/opt/st-test/bin", "sysconfdir": "/opt/st-test/etc",
            "config file": "/opt/st-test/etc/selftest/selftest.conf",
            r"plugins \(pkglibdir\)": "/opt/st-test/lib/selftest-core",
            r"data \(pkgdatadir\)": "/opt/st-test/share/selftest-core",
            "includedir": "/opt/st-test/include",
            "pkgconfigdir": "/opt/st-test/lib/pkgconfig",
            "mandir": "/opt/st-test/share/man",
            "docdir": "/opt/st-test/share/doc/selftest-core",
            "systemd units": "/opt/st-test/units", r"sysusers\.d": "/opt/st-test/sysusers",
            "bash completion": "(not installed)"}
    for label, want in dirs.items():
        m = re.search(r"^ +%s +(\S.*)$" % label, out, re.M)
        is_eq(m.group(1).strip() if m else None, want,
              "the summary lists %s, expanded" % label.replace("\\", ""))
    libcurl, mhd = have_pc("libcurl"), have_pc("libmicrohttpd")
    auto = {"runtime-host": ("yes", "auto"), "discovery-python": ("yes", "auto"),
            "integrator-modulemap": ("yes", "auto"),
            "runtime-docker": ("yes", "auto") if libcurl else ("no", "libcurl not found"),
            "runtime-podman": ("yes", "auto") if libcurl else ("no", "libcurl not found"),
            "runtime-swarm": ("yes", "auto") if libcurl else ("no", "libcurl not found"),
            "exporter-prometheus": ("yes", "auto") if libcurl and mhd else
            ("no", "libmicrohttpd and libcurl not found")}
    expect_plugins(out, build, auto, "no switch")


def test_disable_all_plugins():
    rc, out, build = configure("none", ["--disable-all-plugins"])
    if ok(rc == 0, "configure --disable-all-plugins succeeds", out[-3000:]):
        expect_plugins(out, build, {p: ("no", "disabled by --disable-all-plugins")
                                    for p in PLUGINS}, "--disable-all-plugins")


def test_disable_all_then_enable_some():
    rc, out, build = configure("some", ["--disable-all-plugins", "--enable-runtime-host",
                                        "--enable-discovery-python"])
    if not ok(rc == 0, "configure succeeds", out[-3000:]):
        return
    want = {p: ("no", "disabled by --disable-all-plugins") for p in PLUGINS}
    want["runtime-host"] = ("yes", "enabled")
    want["discovery-python"] = ("yes", "enabled")
    expect_plugins(out, build, want, "--disable-all-plugins --enable-runtime-host "
                   "--enable-discovery-python")


def test_later_all_switch_wins():
    rc, out, build = configure("order", ["--enable-runtime-host", "--disable-all-plugins"])
    if ok(rc == 0, "configure succeeds", out[-3000:]):
        expect_plugins(out, build, {p: ("no", "disabled by --disable-all-plugins")
                                    for p in PLUGINS},
                       "--enable-runtime-host --disable-all-plugins (the later switch wins)")


def test_enable_all_then_disable_one():
    if not (have_pc("libcurl") and have_pc("libmicrohttpd")):
        pytest.skip("libcurl or libmicrohttpd development files are not installed")
    rc, out, build = configure("all", ["--enable-all-plugins", "--disable-runtime-docker"])
    if not ok(rc == 0, "configure succeeds", out[-3000:]):
        return
    want = {p: ("yes", "enabled by --enable-all-plugins") for p in PLUGINS}
    want["runtime-docker"] = ("no", "disabled")
    expect_plugins(out, build, want, "--enable-all-plugins --disable-runtime-docker")


def test_enable_all_plugins_missing_library_is_an_error():
    """With libcurl and libmicrohttpd hidden from pkg-config, --enable-all-plugins fails naming
    the plugins that need them; without the switch those plugins are left out."""
    pcdir = os.path.join(WORK, "pc-core-only")
    os.makedirs(pcdir)
    rc, out, _ = sth.run(["pkg-config", "--variable=pc_path", "pkg-config"], env=env())
    search = [d for d in out.strip().split(":") if d]
    for module in ("libconfig", "yajl", "sqlite3", "check"):
        for d in search:
            p = os.path.join(d, module + ".pc")
            if os.path.isfile(p):
                os.symlink(p, os.path.join(pcdir, module + ".pc"))
                break
    hidden = {"PKG_CONFIG_LIBDIR": pcdir, "PKG_CONFIG_PATH": None}
    rc, out, build = configure("missing-all", ["--enable-all-plugins"], hidden, cache=False)
    ok(rc != 0, "--enable-all-plugins without libcurl fails", out[-2000:])
    m = re.search(r"error: plugins requested but not buildable:(.*)", out)
    is_eq(sorted(m.group(1).split()) if m else None,
          ["exporter-prometheus", "runtime-docker", "runtime-podman", "runtime-swarm"],
          "the error names the plugins whose libraries are missing")
    is_eq(plugin_lines(out).get("runtime-docker"),
          ("no", "requested by --enable-all-plugins but libcurl not found"),
          "the summary says why runtime-docker is not built")
    rc, out, build = configure("missing-auto", [], hidden, cache=False)
    if ok(rc == 0, "without the switch configure succeeds", out[-2000:]):
        expect_plugins(out, build, {"runtime-docker": ("no", "libcurl not found"),
                                    "runtime-host": ("yes", "auto")}, "libcurl hidden, auto")
        m = re.search(r"^ +libcurl +(\S.*)$", out, re.M)
        is_eq(m.group(1).strip() if m else None, "not found",
              "the summary lists libcurl as not found")


def test_enable_all_plugins_bad_value():
    rc, out, _ = configure("bad", ["--enable-all-plugins=maybe"])
    ok(rc != 0 and "--enable-all-plugins=maybe: the value must be yes or no" in out,
       "--enable-all-plugins=maybe is refused with a message naming the option", out[-1500:])


# --------------------------------------------------------------------------------------------
# the default configuration at install and uninstall


def make(target, destdir):
    rc, out, err = sth.run(["make", "-C", BUILDDIR, target, "DESTDIR=" + destdir],
                           env=env(), timeout=900)
    return rc, out + err


def installed_config(destdir):
    for d, dirs, files in os.walk(destdir):
        if "selftest.conf" in files and os.path.basename(d) == "selftest" and \
                os.path.basename(os.path.dirname(d)) == "etc":
            return os.path.join(d, "selftest.conf")
    return None


def test_default_config_install_uninstall():
    with open(os.path.join(SRCDIR, "conf", "selftest.conf"), "rb") as f:
        default = f.read()
    dest = os.path.join(WORK, "stage")
    rc, out = make("install", dest)
    if not ok(rc == 0, "make install DESTDIR=<tmp> succeeds", out[-3000:]):
        return
    conf = installed_config(dest)
    if not ok(conf is not None, "make install puts selftest.conf into $(sysconfdir)/selftest/",
              out[-2000:]):
        return
    note("installed: %s" % os.path.relpath(conf, dest))
    with open(conf, "rb") as f:
        ok(f.read() == default, "it is conf/selftest.conf")

    edited = default + b"\nworkers = 3;\n"
    with open(conf, "wb") as f:
        f.write(edited)
    rc, out = make("install", dest)
    ok(rc == 0, "a second make install succeeds", out[-3000:])
    with open(conf, "rb") as f:
        ok(f.read() == edited, "a second make install keeps the edited selftest.conf")
    ok("kept as it is" in out, "make install says it kept the existing file", out[-2000:])

    rc, out = make("uninstall", dest)
    ok(rc == 0, "make uninstall succeeds", out[-3000:])
    ok(os.path.isfile(conf), "make uninstall keeps an edited selftest.conf")
    ok("differs from the default: kept" in out, "make uninstall says it kept it", out[-2000:])
    left = [os.path.relpath(os.path.join(d, f), dest)
            for d, _, files in os.walk(dest) for f in files]
    is_eq(left, [os.path.relpath(conf, dest)], "it is the only file make uninstall leaves")

    with open(conf, "wb") as f:
        f.write(default)
    rc, out = make("uninstall", dest)
    ok(rc == 0, "make uninstall succeeds again", out[-3000:])
    ok(not os.path.exists(conf), "make uninstall removes an unchanged selftest.conf")
    ok(not os.path.exists(os.path.dirname(conf)), "and its empty directory")
