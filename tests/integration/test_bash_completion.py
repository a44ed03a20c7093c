# SPDX-License-Identifier: MIT
"""The bash completion (conf/bash-completion/selftest-core, generated from its .in by make),
driven by a real bash: the script is sourced, COMP_WORDS/COMP_CWORD set, _selftest_core called,
COMPREPLY printed. Commands, global and per-command options, plugin names for
--container-runtime (from the plugin directories: --plugin-dir, SELF_TEST_PLUGIN_PATH, the
build tree's layout and an installed DIR/NAME.so), files and directories. Each command offers
every option its --help lists, and the parser knows every option offered (the completion and
the CLI cannot drift apart).
"""
import os
import re
import shutil
import subprocess

import pytest
import st_helpers as sth
from st_helpers import is_eq, ok

BIN = sth.selftest_bin()
SCRIPT = os.path.join(sth.top_builddir(), "conf", "bash-completion", "selftest-core")
COMMANDS = ["cleanup", "discover", "flaky", "html", "plugins", "report", "run", "run-scheduled"]


@pytest.fixture(autouse=True)
def bash():
    if not shutil.which("bash"):
        pytest.skip("bash not installed")
    # make always generates it (installed or not): missing is a failure, not a skip
    if not os.path.isfile(SCRIPT):
        sth.bail_out("%s is not generated (make builds it from its .in)" % SCRIPT)


def complete(words, cwd=None, env=None):
    """COMPREPLY for the command line words (the last one is the word being completed)."""
    script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); '
              'COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _selftest_core; rc=$?; '
              'printf "%s\\n" "${COMPREPLY[@]}"; exit $rc')
    e = dict(os.environ)
    for k in ("SELF_TEST_PLUGIN_PATH", "SELF_TEST_PLUGIN_SYSTEM_PATH"):
        e.pop(k, None)
    e.update(env or {})
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", script, "bash", SCRIPT] + words,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=e, timeout=30)
    ok(p.returncode == 0 and not p.stderr, "completion of %r runs cleanly" % words,
       p.stderr.decode("utf-8", "replace"))
    return sorted(l for l in p.stdout.decode().splitlines() if l)


def test_commands():
    is_eq(complete(["selftest-core", ""]), COMMANDS, "every command")
    is_eq(complete(["selftest-core", "ru"]), ["run", "run-scheduled"], "commands by prefix")
    is_eq(complete(["selftest-core", "-v", "-c", "x.conf", "dis"]), ["discover"],
          "a command after global options and -c's value")
    is_eq(complete(["selftest-core", "--ver"]), ["--verbose", "--version"], "global options")


def test_options():
    is_eq(complete(["selftest-core", "run", "--cha"]), ["--changed", "--changed-first"],
          "run's options")
    is_eq(complete(["selftest-core", "run-scheduled", "--int"]), ["--interval"],
          "run-scheduled's --interval")
    is_eq(complete(["selftest-core", "run", "--int"]), [], "run has no --interval")
    is_eq(complete(["selftest-core", "cleanup", "--m"]), ["--max-age"], "cleanup's options")
    is_eq(complete(["selftest-core", "report", "--p"]), ["--path"], "report's options")
    is_eq(complete(["selftest-core", "html", "--"]), ["--cycles", "--help", "--out"],
          "html's options")
    is_eq(complete(["selftest-core", "run", "--timeout", ""]), [], "no guess for a number")
    is_eq(complete(["selftest-core", "run", "--shards", "a"]), ["auto"], "--shards auto")


def help_options(cmd):
    rc, out, err = sth.run([BIN, cmd, "--help"], timeout=30)
    is_eq(rc, 0, "%s --help exits 0" % cmd)
    opts = set()
    for m in re.finditer(r"(?<![\w-])(--(\[no-\])?[a-z][a-z-]*|-[a-zA-Z])\b", out):
        word = m.group(1)
        if word.startswith("--[no-]"):
            opts.update({"--" + word[7:], "--no-" + word[7:]})
        else:
            opts.add(word)
    return opts


def test_options_match_help_and_parser(workdir):
    if sth.missing_bin_reason():
        pytest.skip(sth.missing_bin_reason())
    empty = os.path.join(workdir, "empty.conf")
    open(empty, "w").close()
    for cmd in COMMANDS:
        got = set(complete(["selftest-core", cmd, "-"]))
        # every option the command's --help documents is offered (--check-config, named in
        # plugins --help, is a global option)
        want = help_options(cmd) - {"--check-config"}
        ok(want <= got, "%s: the completion offers every option of --help" % cmd,
           "missing: %s" % sorted(want - got))
        ok({"-h", "--help"} <= got, "%s: -h and --help are offered" % cmd)
        # and the parser knows every option offered (--check-config: nothing runs)
        for opt in sorted(got):
            rc, out, err = sth.run([BIN, "-c", empty, "--check-config", cmd, opt], timeout=30)
            ok("unknown option" not in err, "%s %s is an option of the parser" % (cmd, opt),
               err[-500:])


def test_plugin_names(workdir):
    build_plugins = os.path.join(sth.top_builddir(), "plugins")
    runtimes = sorted(d[len("runtime-"):] for d in os.listdir(build_plugins)
                      if d.startswith("runtime-") and
                      os.path.exists(os.path.join(build_plugins, d, d + ".la")))
    ok("host" in runtimes, "the build tree has runtime-host", runtimes)
    got = complete(["selftest-core", "run", "--container-runtime", ""],
                   env={"SELF_TEST_PLUGIN_PATH": build_plugins,
                        "SELF_TEST_PLUGIN_SYSTEM_PATH": os.path.join(workdir, "none")})
    is_eq(got, runtimes, "runtime names of the build tree (DIR/NAME/NAME.la)")
    installed = os.path.join(workdir, "lib")
    os.mkdir(installed)
    for name in ("runtime-fancy.so", "exporter-other.so", "runtime-host.so"):
        open(os.path.join(installed, name), "w").close()
    got = complete(["selftest-core", "--plugin-dir", installed, "cleanup", "--container-runtime",
                    ""], env={"SELF_TEST_PLUGIN_SYSTEM_PATH": os.path.join(workdir, "none")})
    is_eq(got, ["fancy", "host"], "--plugin-dir's DIR/NAME.so, runtimes only")
    got = complete(["selftest-core", "run", "--container-runtime", "f"],
                   env={"SELF_TEST_PLUGIN_SYSTEM_PATH": installed})
    is_eq(got, ["fancy"], "the system plugin directory, by prefix")


def test_files(workdir):
    os.makedirs(os.path.join(workdir, "tests", "unit"))
    for name in ("selftest.conf", "tests/test_api.py", "tests/test_app.py", "setup.py"):
        open(os.path.join(workdir, name), "w").close()
    is_eq(complete(["selftest-core", "-c", "sel"], cwd=workdir), ["selftest.conf"],
          "-c completes a file")
    is_eq(complete(["selftest-core", "run", "tests/test_a"], cwd=workdir),
          ["tests/test_api.py", "tests/test_app.py"], "run completes test files")
    is_eq(complete(["selftest-core", "run", "--workers", "2", "tests/u"], cwd=workdir),
          ["tests/unit"], "after an option's value, paths")
    is_eq(complete(["selftest-core", "--plugin-dir", "t"], cwd=workdir), ["tests"],
          "--plugin-dir completes directories only")
    is_eq(complete(["selftest-core", "run", "--pythonpath", "src:te"], cwd=workdir),
          ["src:tests"], "--pythonpath completes the last of ':'-separated directories")
    is_eq(complete(["selftest-core", "html", "--out", "t"], cwd=workdir), ["tests"],
          "html --out completes directories")
    is_eq(complete(["selftest-core", "run", "--junit-xml", "sel"], cwd=workdir),
          ["selftest.conf"], "--junit-xml completes a file")
    is_eq(complete(["selftest-core", "plugins", "s"], cwd=workdir), [],
          "plugins takes no paths")
