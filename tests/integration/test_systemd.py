# SPDX-License-Identifier: MIT
"""selftest-core under systemd, with systemd's own protocols played by the test.

1. Type=notify: a real run-scheduled, NOTIFY_SOCKET naming an AF_UNIX datagram socket of the
   test (a file path; then an abstract "@name"), WATCHDOG_USEC set: the socket receives
   READY=1 with the first cycle's STATUS=, a STATUS= with each cycle's outcome (a cycle cut
   short by SIGTERM: "stopped by a signal"), WATCHDOG=1 while a batch runs and every
   WATCHDOG_USEC/2 between cycles, and STOPPING=1 after SIGTERM. While the cycle waits for
   the project lock (another run holds it) the watchdog is pinged too, and SIGTERM ends the
   wait at once. The tests of the project assert that
   NOTIFY_SOCKET and WATCHDOG_USEC are not in their environment (the cycle passes only then).
   WATCHDOG_PID naming another process: no WATCHDOG=1. No NOTIFY_SOCKET: nothing is sent.
2. Journal priorities: JOURNAL_STREAM equal to stderr's device:inode gives every log line its
   syslog priority prefix (<3> error, <4> warning, <6> info, <7> debug), usage errors too;
   unset, or naming another file, gives none.
3. The generated units (conf/systemd/*.service from their .in) pass `systemd-analyze verify`
   (installed with `make install DESTDIR=...` so ExecStart exists; skipped without
   systemd-analyze), and the service unit is Type=notify and hardened.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import st_helpers as sth
from st_helpers import is_eq, ok

pytestmark = pytest.mark.usefixtures("selftest_bin")
BIN = sth.selftest_bin()

ENV_PROBE = '''import os
import time


def test_no_service_manager_variables():
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        assert name not in os.environ, name


def test_slow():
    # long enough for the watchdog to be pinged while the batch runs
    time.sleep(float(os.environ.get("ST_TEST_SLEEP", "0")))
'''


def make_project(root):
    os.makedirs(os.path.join(root, "tests"))
    with open(os.path.join(root, "tests", "test_env.py"), "w") as fh:
        fh.write(ENV_PROBE)
    conf = os.path.join(root, "selftest.conf")
    with open(conf, "w") as fh:
        fh.write('project_root = ".";\npython = "%s";\nretries = 0;\nworkers = 1;\n'
                 'coverage = false;\n' % sth.PYTHON)
    return conf


class Listener:
    """An AF_UNIX datagram socket collecting what is sent to it (address: a path or @name)."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.messages = []  # (monotonic time, text)
        self.lock = threading.Lock()
        self.done = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.done:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append((time.monotonic(), data.decode("utf-8", "replace")))

    def texts(self):
        with self.lock:
            return [m for _, m in self.messages]

    def close(self):
        self.done = True
        self.thread.join(5)
        self.sock.close()


def run_daemon(conf, root, env_extra, until, timeout=120, interval=1):
    """run-scheduled --interval INTERVAL until until(stderr so far) or timeout; then SIGTERM.
    Returns (exit status, stderr)."""
    env = sth.base_env(dict({"SANDBOX_REPO_PATH": root}, **env_extra))
    proc = subprocess.Popen([BIN, "-v", "-c", conf, "run-scheduled", "--interval",
                             str(interval)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True, cwd=root)
    err = []

    def read():
        for line in proc.stderr:
            err.append(line)
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None and \
            not until(b"".join(err).decode("utf-8", "replace")):
        time.sleep(0.1)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(60)
    except subprocess.TimeoutExpired:
        sth.kill_group(proc)
        rc = proc.wait()
    reader.join(10)
    return rc, b"".join(err).decode("utf-8", "replace")


def cycle_ends(texts):
    return [t for t in texts if re.search(r"STATUS=cycle \d+: ", t)]


def test_notify_ready_status_watchdog(workdir):
    root = os.path.join(workdir, "proj")
    conf = make_project(root)
    sock_path = os.path.join(workdir, "notify.sock")
    lis = Listener(sock_path)
    try:
        rc, err = run_daemon(conf, root, {"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "400000",
                                          "WATCHDOG_PID": None, "ST_TEST_SLEEP": "1.5"},
                             until=lambda _: "STATUS=cycle 2 running" in lis.texts(),
                             interval=12)
        time.sleep(0.5)
    finally:
        lis.close()
    texts = lis.texts()
    sth.note("received: %r" % texts[:60])
    is_eq(rc, 0, "run-scheduled stopped by SIGTERM exits 0")
    state = [t for t in texts if t != "WATCHDOG=1"]
    ok(state and state[0] == "READY=1\nSTATUS=cycle 1 running",
       "the first message is READY=1 with the first cycle's status", state[:3])
    is_eq(sum(t.startswith("READY=1") for t in texts), 1, "READY=1 is sent once")
    ends = cycle_ends(texts)
    # cycle 2 is stopped by the SIGTERM
    is_eq(ends[1:], ["STATUS=cycle 2: stopped by a signal"], "a STATUS= at the end of each cycle")
    ok(ends and re.fullmatch(r"STATUS=cycle 1: passed \(exit status 0\); next cycle at "
                             r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", ends[0]),
       "cycle 1 passed (its tests saw no NOTIFY_SOCKET or WATCHDOG_USEC)", ends[:1])
    ok("STATUS=cycle 2 running" in texts, "the second cycle's start is reported")
    ok(texts and texts[-1] == "STOPPING=1\nSTATUS=stopping", "STOPPING=1 last", texts[-3:])
    with lis.lock:
        msgs = list(lis.messages)
    at = {m: t for t, m in reversed(msgs)}  # first time of each message
    t_ready, t_end1 = at.get("READY=1\nSTATUS=cycle 1 running"), at.get(ends[0] if ends else "")
    t_start2 = at.get("STATUS=cycle 2 running")
    pings = [t for t, m in msgs if m == "WATCHDOG=1"]
    if not ok(None not in (t_ready, t_end1, t_start2), "the cycles' messages arrived"):
        return
    # while the batch runs (its test sleeps 1.5 s): pinged from the runner's wait loop
    during = [t for t in pings if t_ready < t < t_end1]
    ok(len(during) >= 3, "WATCHDOG=1 while the first cycle runs (%d)" % len(during))
    # between the cycles (12 s from the start of the first): every WATCHDOG_USEC/2 = 0.2 s, never later
    # than the 0.4 s watchdog
    between = [t_end1] + [t for t in pings if t_end1 < t < t_start2]
    gaps = [b - a for a, b in zip(between, between[1:])]
    ok(len(gaps) >= 5, "WATCHDOG=1 while waiting for the next cycle (%d)" % len(gaps))
    ok(gaps and max(gaps) < 0.4, "no gap of the watchdog's length between pings",
       "max gap %.3fs" % (max(gaps) if gaps else -1))
    # the times are when the test's reader thread got each datagram, which a loaded machine
    # delays by a few ms now and then (a late one makes the next gap look short): the rate is
    # what can be measured, N pings need (N - 1) x 0.2 s (50 ms for the two ends' jitter)
    span = pings[-1] - pings[0] if pings else 0
    ok(len(pings) >= 2 and (len(pings) - 1) * 0.2 <= span + 0.05,
       "pings not more often than every WATCHDOG_USEC/2",
       "%d pings in %.3fs" % (len(pings), span))
    ok("watchdog pings every 0.2s" in err, "the watchdog interval is logged", err[-2000:])


def test_notify_abstract_socket_and_foreign_watchdog(workdir):
    root = os.path.join(workdir, "proj")
    conf = make_project(root)
    name = "@selftest-notify-%d-%d" % (os.getpid(), int(time.time() * 1000))
    lis = Listener(name)
    try:
        rc, err = run_daemon(conf, root, {"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "400000",
                                          "WATCHDOG_PID": "1"},
                             until=lambda _: len(cycle_ends(lis.texts())) >= 1)
        time.sleep(0.5)
    finally:
        lis.close()
    texts = lis.texts()
    is_eq(rc, 0, "exit 0")
    ok(texts and texts[0] == "READY=1\nSTATUS=cycle 1 running", "READY=1 on an abstract socket",
       texts[:3])
    ok("WATCHDOG=1" not in texts, "no pings when WATCHDOG_PID names another process")


def test_watchdog_while_waiting_for_the_lock(workdir):
    # another run holds the project lock: the cycle waits for it (lock_timeout) and must keep
    # the watchdog fed meanwhile, and SIGTERM must end the wait at once
    import fcntl
    root = os.path.join(workdir, "proj")
    conf = make_project(root)
    lock = os.path.join(workdir, "held.lock")
    with open(conf, "a") as fh:
        fh.write('lock_file = "%s";\nlock_timeout = 600;\n' % lock)
    holder = open(lock, "w")
    try:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        holder.write(str(os.getpid()))
        holder.flush()
        sock_path = os.path.join(workdir, "notify.sock")
        lis = Listener(sock_path)
        try:
            start = [None]

            def until(err):
                # 3 s into the wait for the lock
                if "another run holds" in err and start[0] is None:
                    start[0] = time.monotonic()
                return start[0] is not None and time.monotonic() - start[0] > 3
            t0 = time.monotonic()
            rc, err = run_daemon(conf, root, {"NOTIFY_SOCKET": sock_path,
                                              "WATCHDOG_USEC": "400000", "WATCHDOG_PID": None},
                                 until=until, timeout=60)
            stopped_after = time.monotonic() - (start[0] or t0)
            time.sleep(0.3)
        finally:
            lis.close()
    finally:
        holder.close()
    ok("another run holds %s" % lock in err, "the cycle waited for the lock", err[-2000:])
    is_eq(rc, 0, "run-scheduled stopped by SIGTERM exits 0")
    ok(stopped_after < 10, "SIGTERM ends the wait for the lock at once (%.1fs)" % stopped_after)
    with lis.lock:
        msgs = list(lis.messages)
    texts = [m for _, m in msgs]
    ok(texts and texts[0] == "READY=1\nSTATUS=cycle 1 running", "READY=1 first", texts[:3])
    ok("STATUS=cycle 1: stopped by a signal" in texts, "the cycle was stopped", texts[-4:])
    pings = [t for t, m in msgs if m == "WATCHDOG=1"]
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    ok(len(pings) >= 10, "WATCHDOG=1 while waiting for the lock (%d)" % len(pings))
    # the lock is polled every 100 ms; the pings stay at WATCHDOG_USEC/2 (see above)
    span = pings[-1] - pings[0] if pings else 0
    ok(len(pings) >= 2 and (len(pings) - 1) * 0.2 <= span + 0.05,
       "pings not more often than every WATCHDOG_USEC/2", "%d pings in %.3fs" % (len(pings), span))
    ok(gaps and max(gaps) < 0.4, "no gap of the watchdog's length between pings",
       "max gap %.3fs" % (max(gaps) if gaps else -1))


def test_no_notify_socket_sends_nothing(workdir):
    # a socket exists but NOTIFY_SOCKET does not name it: nothing may arrive; the cycle runs
    root = os.path.join(workdir, "proj")
    conf = make_project(root)
    sock_path = os.path.join(workdir, "notify.sock")
    lis = Listener(sock_path)
    try:
        rc, err = run_daemon(conf, root, {"NOTIFY_SOCKET": None, "WATCHDOG_USEC": "400000"},
                             until=lambda err: "cycle 2 ended" in err)
    finally:
        lis.close()
    is_eq(rc, 0, "exit 0")
    is_eq(lis.texts(), [], "nothing sent")
    ok("run-scheduled: cycle 1 ended with exit status 0" in err, "the cycle ran", err[-2000:])


# ---- journal priorities ------------------------------------------------------------------------

LINE = re.compile(r"^(<\d>)?selftest-core: (error|warning|info|debug): ", re.M)
PRIORITY = {"error": "<3>", "warning": "<4>", "info": "<6>", "debug": "<7>"}


def run_logged(workdir, root, conf, journal_stream, argv_tail):
    """Runs selftest-core -vv with stderr into a file; journal_stream(stat of that file) gives
    JOURNAL_STREAM (None: unset). Returns (rc, stderr text)."""
    path = os.path.join(workdir, "stderr-%d.txt" % len(os.listdir(workdir)))
    with open(path, "wb") as fh:
        st = os.fstat(fh.fileno())
        js = journal_stream(st)
        # NOTIFY_SOCKET that is not a socket path: one warning
        env = sth.base_env({"SANDBOX_REPO_PATH": root, "JOURNAL_STREAM": js,
                            "NOTIFY_SOCKET": "not-a-path"})
        p = subprocess.run([BIN, "-vv", "-c", conf] + argv_tail, env=env, stdout=subprocess.PIPE,
                           stderr=fh, timeout=180, cwd=root)
    with open(path, encoding="utf-8", errors="replace") as fh:
        return p.returncode, fh.read()


def test_journal_priorities(workdir):
    root = os.path.join(workdir, "proj")
    conf = make_project(root)
    logs = os.path.join(workdir, "logs")
    os.mkdir(logs)
    match = lambda st: "%d:%d" % (st.st_dev, st.st_ino)
    # an error line: a test path that does not exist
    for argv_tail, want_rc in ((["run"], 0), (["run", "tests/no_such_dir"], 2)):
        rc, err = run_logged(logs, root, conf, match, argv_tail)
        is_eq(rc, want_rc, "%s exits %d" % (" ".join(argv_tail), want_rc))
        lines = LINE.findall(err)
        ok(lines, "log lines written", err[-2000:])
        wrong = [(p, lvl) for p, lvl in lines if p != PRIORITY[lvl]]
        ok(not wrong, "every line starts with its priority (%s)" % " ".join(argv_tail),
           "wrong: %r\n%s" % (wrong[:5], err[-3000:]))
        levels = {lvl for _, lvl in lines}
        want = {"error", "warning"} if want_rc else {"warning", "info", "debug"}
        ok(want <= levels, "levels seen: %s" % sorted(levels), "wanted %s" % sorted(want))
    # a usage error, printed before anything runs: every line of it is an error
    rc, err = run_logged(logs, root, conf, match, ["run", "--no-such-option"])
    is_eq(rc, 2, "an unknown option exits 2")
    lines = [l for l in err.splitlines() if l]
    ok(lines and all(l.startswith("<3>") for l in lines) and
       any("unknown option '--no-such-option'" in l for l in lines),
       "a usage error's lines are errors (<3>)", err)
    rc, err = run_logged(logs, root, conf, lambda st: None, ["run", "--no-such-option"])
    ok(err.startswith("selftest-core run: unknown option '--no-such-option'"),
       "without the journal the usage error is unchanged", err)
    # JOURNAL_STREAM unset, naming another inode, or garbage: no prefix
    for what, js in (("unset", lambda st: None),
                     ("another inode", lambda st: "%d:%d" % (st.st_dev, st.st_ino + 1)),
                     ("another device", lambda st: "%d:%d" % (st.st_dev + 1, st.st_ino)),
                     ("garbage", lambda st: "%d:%dx" % (st.st_dev, st.st_ino))):
        rc, err = run_logged(logs, root, conf, js, ["run"])
        is_eq(rc, 0, "run exits 0 (JOURNAL_STREAM %s)" % what)
        lines = LINE.findall(err)
        ok(lines and all(not p for p, _ in lines), "no priority prefix (JOURNAL_STREAM %s)" % what,
           err[-2000:])


# ---- the units ---------------------------------------------------------------------------------

def unit_text(name):
    path = os.path.join(sth.top_builddir(), "conf", "systemd", name)
    if not os.path.isfile(path):
        sth.bail_out("%s is not generated (make)" % path)
    with open(path) as fh:
        return fh.read()


def test_units_generated_and_hardened():
    for name in ("selftest-core.service", "selftest-core-run.service"):
        text = unit_text(name)
        ok("@" not in re.sub(r"^#.*$", "", text, flags=re.M),
           "%s: every @VARIABLE@ substituted" % name)
        exec_start = re.search(r"^ExecStart=(\S+)", text, re.M)
        ok(exec_start and os.path.isabs(exec_start.group(1)) and
           exec_start.group(1).endswith("/selftest-core"), "%s: ExecStart is absolute" % name)
        for setting in ("ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes",
                        "User=selftest", "StateDirectory=selftest",
                        "ReadWritePaths=/var/lib/selftest"):
            ok(re.search(r"^%s$" % re.escape(setting), text, re.M), "%s: %s" % (name, setting))
    text = unit_text("selftest-core.service")
    ok(re.search(r"^Type=notify$", text, re.M), "selftest-core.service is Type=notify")
    ok(re.search(r"^WatchdogSec=\S+$", text, re.M), "selftest-core.service has a watchdog")
    src = os.path.join(sth.top_srcdir(), "conf", "systemd")
    for name in ("selftest-core.service", "selftest-core-run.service"):
        if os.path.abspath(src) != os.path.abspath(os.path.join(sth.top_builddir(), "conf",
                                                                "systemd")):
            continue
        tracked = subprocess.run(["git", "-C", sth.top_srcdir(), "ls-files", "--error-unmatch",
                                  "conf/systemd/" + name], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        if tracked.returncode in (0, 1):
            ok(tracked.returncode == 1, "%s is generated, not in git" % name)


def test_units_verify(workdir):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    if not shutil.which("make"):
        pytest.skip("make not installed")
    dest = os.path.join(workdir, "dest")
    p = subprocess.run(["make", "-C", sth.top_builddir(), "install", "DESTDIR=" + dest],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    if not ok(p.returncode == 0, "make install DESTDIR=... works",
              p.stdout.decode("utf-8", "replace")[-3000:]):
        return
    units = []
    for top, _, files in os.walk(dest):
        units += [os.path.join(top, f) for f in files if re.match(r"selftest-core.*\.(service|timer)$", f)]
    names = sorted(os.path.basename(u) for u in units)
    is_eq(names, ["selftest-core-run.service", "selftest-core-run.timer",
                  "selftest-core.service"], "the units are installed")
    # systemd-analyze checks that ExecStart= exists: the installed units are verified as they
    # are, with only the configured bindir pointed into DESTDIR (a copy of each, side by side
    # so the timer finds its service)
    check_dir = os.path.join(workdir, "verify")
    os.mkdir(check_dir)
    bindir = None
    for u in units:
        with open(u) as fh:
            text = fh.read()
        m = re.search(r"^ExecStart=(\S+)/selftest-core ", text, re.M)
        if m:
            bindir = m.group(1)
            ok(os.access(dest + bindir + "/selftest-core", os.X_OK),
               "%s: ExecStart names the installed binary" % os.path.basename(u))
            text = text.replace("ExecStart=%s/" % bindir, "ExecStart=%s%s/" % (dest, bindir))
        with open(os.path.join(check_dir, os.path.basename(u)), "w") as fh:
            fh.write(text)
    ok(bindir, "the services have an ExecStart")
    p = subprocess.run([analyze, "verify", "--man=no"] +
                       sorted(os.path.join(check_dir, os.path.basename(u)) for u in units),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    out = p.stdout.decode("utf-8", "replace")
    is_eq(p.returncode, 0, "systemd-analyze verify passes")
    ok(not out.strip(), "systemd-analyze verify has nothing to say", out)
