# SPDX-License-Identifier: MIT
"""Orphan checks in one warm interpreter (orphan_check_mode = "fork", the default), through the real
binary and the host runtime: every module is imported in a child forked from a server that never
imports project code, so
  1 each module's import runs in a child of the check server (not in a pytest process of its own);
  2 a module that hangs fails only its own check (the timeout reason); the others pass;
  3 a module that ends the interpreter (os._exit, SIGSEGV through ctypes) fails only its own check;
  4 a module that changes global state (os.environ, sys.modules, builtins, sys.path, the working
    dir) cannot affect the check of a module after it;
  5 a module that leaves a daemon fails with the leftover reason and nothing survives;
  6 a module importing a missing package is still an unmet dependency;
  7 every verdict and reason equals the process mode's (orphan_check_mode = "process");
  8 a module that trips a limit of the whole server (sandbox_output_mb) fails with that reason
    and the modules after it are checked in a new server;
  9 a bad orphan_check_mode (file or SELF_TEST_ORPHAN_CHECK_MODE) is an error naming it;
  10 in runtime-docker (the private engines of tools/engines/engines.sh; skipped when none can
    start) the fork mode gives the process mode's verdicts too."""
import json
import os
import re
import time

import pytest
import st_helpers as t

DAEMON_ARG = "987.654321"  # the daemons sleep this long: what finds them in /proc


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def run(root, *args, mode=None, env_extra=None, extra_conf=None):
    conf = os.path.join(root, "selftest.conf")
    with open(conf, "w") as f:
        f.write('project_root = ".";\nretries = 0;\nplugins = ();\nworkers = 1;\n'
                'orphan_timeout = 4;\nkill_grace = 1;\n%s%s'
                % ('orphan_check_mode = "%s";\n' % mode if mode else "",
                   extra_conf if extra_conf is not None else 'python = "%s";\n' % t.PYTHON))
    env = t.base_env(env_extra)
    rc, out, err = t.run([t.selftest_bin(), "-c", conf, "run", "--json"] + list(args),
                         env=env, timeout=300, cwd=root)
    lines = [l for l in out.splitlines() if l.startswith("{")]
    return rc, (json.loads(lines[-1]) if lines else {}), err


def daemons():
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if DAEMON_ARG.encode() in open("/proc/%s/cmdline" % pid, "rb").read():
                    found.append(pid)
            except OSError:
                pass
    return found


MODULES = {
    "first_ok.py": "X = 1\n",
    # global state a later check must not see
    "poison.py": "import os, sys, builtins\n"
                 "os.environ['SELFTEST_POISON'] = '1'\n"
                 "sys.modules['json'] = None\n"
                 "sys.path.insert(0, '/nonexistent-selftest-poison')\n"
                 "builtins.selftest_poison = True\n"
                 "builtins.len = lambda x: 0\n"
                 "os.chdir('/')\n",
    "victim.py": "import os, sys, builtins\n"
                 "assert 'SELFTEST_POISON' not in os.environ, 'environment leaked'\n"
                 "assert sys.modules.get('json', 1) is not None, 'sys.modules leaked'\n"
                 "import json\n"
                 "assert '/nonexistent-selftest-poison' not in sys.path, 'sys.path leaked'\n"
                 "assert not hasattr(builtins, 'selftest_poison'), 'builtins leaked'\n"
                 "assert len([1, 2]) == 2, 'builtins.len leaked'\n"
                 "assert os.getcwd() != '/', 'the working directory leaked'\n"
                 "assert 'poison' not in sys.modules, 'the other module is imported here'\n"
                 "assert 'first_ok' not in sys.modules, 'the other module is imported here'\n",
    "hangs.py": "import time\ntime.sleep(600)\n",
    "exits.py": "import os\nos._exit(3)\n",
    "segv.py": "import ctypes\nctypes.string_at(0)\n",
    "daemon.py": "import os, sys, time\n"
                 "if os.fork() == 0:\n"
                 "    os.setsid()\n"
                 "    if os.fork() == 0:\n"
                 "        os.execv(sys.executable, [sys.executable, '-c', "
                 "'import time; time.sleep(%s)'])\n"
                 "    os._exit(0)\n"
                 "os.wait()\n" % DAEMON_ARG,
    # a daemon left by a module that then ends the interpreter: the server itself finds it
    "escapes.py": "import os, sys\n"
                  "if os.fork() == 0:\n"
                  "    os.setsid()\n"
                  "    os.execv(sys.executable, [sys.executable, '-c', "
                  "'import time; time.sleep(%s)'])\n"
                  "os._exit(0)\n" % DAEMON_ARG,
    "missing.py": "import selftest_no_such_package_xyz\n",
    # where its import runs: the command line of the process importing it
    "where.py": "import os\n"
                "with open(os.environ['SELFTEST_WHERE_FILE'], 'w') as f:\n"
                "    f.write(open('/proc/self/cmdline', 'rb').read()"
                ".replace(b'\\0', b' ').decode())\n",
    "last_ok.py": "Y = 2\n",
}
ORDER = ["first_ok.py", "poison.py", "victim.py", "hangs.py", "exits.py", "segv.py",
         "daemon.py", "escapes.py", "missing.py", "where.py", "last_ok.py"]


def verdicts(res):
    out = {}
    for path, c in (res.get("orphan_checks") or {}).items():
        reason = re.sub(r"pid \d+", "pid N", c.get("reason") or "")
        out[path] = (c.get("verdict"), reason, c.get("unmet"))
    return out


pytestmark = pytest.mark.usefixtures("selftest_bin")


def test_fork_server(workdir):
    if not os.path.exists(t.PYTHON):
        pytest.skip("no %s" % t.PYTHON)
    root = os.path.join(workdir, "proj")
    for rel, text in MODULES.items():
        write(root, rel, text)
    where = os.path.join(workdir, "where.txt")  # outside the project
    env = {"SELFTEST_WHERE_FILE": where}
    rc, res, err = run(root, *ORDER, env_extra=env)
    checks = res.get("orphan_checks") or {}
    t.is_eq(rc, 0, "the run completes (failed checks are reported, not fatal)")
    t.is_eq(len(checks), len(ORDER), "every module got a check")
    try:
        parent = open(where).read()
    except OSError:
        parent = ""
    t.ok("selftest_forkcheck" in parent,
         "1: the import runs in a process forked from the check server", "cmdline: %r" % parent)
    t.is_eq(sorted(res.get("orphan_passed_modules", [])),
            ["first_ok.py", "last_ok.py", "poison.py", "victim.py", "where.py"],
            "2-4: the modules around the hanging, crashing and state-changing ones pass")
    c = checks.get("hangs.py", {})
    t.ok(c.get("verdict") == "failed" and "timeout" in (c.get("reason") or ""),
         "2: the hanging module fails with the timeout reason", c)
    for rel in ("exits.py", "segv.py"):
        c = checks.get(rel, {})
        t.is_eq(c.get("verdict"), "failed", "3: %s fails its own check" % rel)
    t.ok("signal 11" in (checks.get("segv.py", {}).get("reason") or ""),
         "3: the SIGSEGV is named", checks.get("segv.py"))
    t.ok("victim.py" in res.get("orphan_passed_modules", []),
         "4: environment, sys.modules, sys.path, builtins and cwd changes do not leak",
         checks.get("victim.py"))
    c = checks.get("daemon.py", {})
    t.ok(c.get("verdict") == "failed" and "left 1 process" in (c.get("reason") or ""),
         "5: a module leaving a daemon fails with the leftover reason", c)
    c = checks.get("escapes.py", {})
    t.is_eq(c.get("verdict"), "failed", "5: so does one leaving a daemon and ending itself")
    time.sleep(0.3)
    t.is_eq(daemons(), [], "5: nothing the modules started survives")
    c = checks.get("missing.py", {})
    t.is_eq((c.get("verdict"), c.get("unmet")), ("unmet", "selftest_no_such_package_xyz"),
            "6: a missing package is an unmet dependency")
    t.ok((c.get("reason") or "").startswith("unmet dependency: selftest_no_such_package_xyz"),
         "6: with its reason", c)

    fork = verdicts(res)
    os.unlink(where)
    rc2, res2, err2 = run(root, *ORDER, mode="process", env_extra=env)
    proc = verdicts(res2)
    diff = {k: (fork.get(k), proc.get(k)) for k in set(fork) | set(proc)
            if fork.get(k) != proc.get(k)}
    t.is_eq(diff, {}, "7: every verdict and reason equals the process mode's")
    try:
        parent = open(where).read()
    except OSError:
        parent = ""
    t.ok("selftest_forkcheck" not in parent and "pytest" in parent,
         "7: orphan_check_mode = \"process\" runs a pytest process per check",
         "cmdline: %r" % parent)
    t.is_eq(daemons(), [], "7: nothing survives the process mode either")
    os.unlink(where)

    write(root, "endless.py", "import os\nfor _ in range(100000):\n"
                              "    os.write(1, b'x' * 8192 + b'\\n')\n")
    limited = ["first_ok.py", "endless.py", "victim.py", "missing.py"]
    rc, res, err = run(root, *limited,
                       extra_conf='python = "%s";\nhost = { sandbox_output_mb = 1; };\n'
                       % t.PYTHON)
    c = (res.get("orphan_checks") or {}).get("endless.py") or {}
    t.ok(c.get("verdict") == "failed" and "output limit" in (c.get("reason") or ""),
         "8: a module tripping the server's output limit fails with that reason", c)
    t.is_eq((sorted(res.get("orphan_passed_modules") or []), res.get("orphan_unmet_modules")),
            (["first_ok.py", "victim.py"], ["missing.py"]),
            "8: the modules before and after it get their own verdicts")

    rc, res, err = run(root, "first_ok.py", mode="threads")
    t.ok(rc != 0 and "orphan_check_mode" in err and "threads" in err,
         "9: a bad orphan_check_mode names the setting and the value", err[-400:])
    rc, res, err = run(root, "first_ok.py", env_extra={"SELF_TEST_ORPHAN_CHECK_MODE": "x"})
    t.ok(rc != 0 and "SELF_TEST_ORPHAN_CHECK_MODE" in err,
         "9: so does a bad SELF_TEST_ORPHAN_CHECK_MODE", err[-400:])
    rc, res, err = run(root, "first_ok.py",
                       env_extra={"SELF_TEST_ORPHAN_CHECK_MODE": "process"})
    t.is_eq((rc, res.get("orphan_passed_modules")), (0, ["first_ok.py"]),
            "9: SELF_TEST_ORPHAN_CHECK_MODE=process is accepted")


DOCKER_CONF = """runtime = "docker";
container = {
  image = "%s";
};
"""
DOCKER_ORDER = ["first_ok.py", "poison.py", "victim.py", "exits.py", "segv.py", "daemon.py",
                "escapes.py", "missing.py", "last_ok.py"]


def test_fork_server_docker(engines):
    eng = engines
    if not eng.get("docker"):
        pytest.skip("no docker engine in the private engines")
    with t.tmpdir() as top:
        root = os.path.join(top, "proj")
        for rel in DOCKER_ORDER:
            write(root, rel, MODULES[rel])
        # a test file in the project root: a check whose working directory were the root
        # would collect it beside its import (and fail: not exactly one passing import)
        write(root, "test_here.py", "def test_here():\n    pass\n")
        t.make_writable(root)
        os.chmod(top, 0o755)  # the container's user reaches the mounted project
        env = {"DOCKER_HOST": "unix://" + eng["docker"], "CONTAINER_HOST": None}
        conf = DOCKER_CONF % eng["image"]
        rc, res, err = run(root, *DOCKER_ORDER, env_extra=env, extra_conf=conf)
        passed = sorted(res.get("orphan_passed_modules") or [])
        t.ok(passed == ["first_ok.py", "last_ok.py", "poison.py", "victim.py"],
             "10: docker, fork mode: the expected modules pass",
             "passed: %r\n%s" % (passed, err[-1500:]))
        fork = verdicts(res)
        rc, res2, err2 = run(root, *DOCKER_ORDER, mode="process", env_extra=env,
                             extra_conf=conf)
        proc = verdicts(res2)
        diff = {k: (fork.get(k), proc.get(k)) for k in set(fork) | set(proc)
                if fork.get(k) != proc.get(k)}
        t.is_eq(diff, {}, "10: docker: every verdict and reason equals the process mode's")
        t.is_eq(len(fork), len(DOCKER_ORDER), "10: docker: every module got a check")

