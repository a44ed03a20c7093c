# SPDX-License-Identifier: MIT
"""selftest-core's bundled pytest plugin (docs/spec.md §5.2 and §8.1).

Loading
    PYTHONPATH=<pkgdatadir>[:...] python3 -m pytest -p selftest_pytest_plugin ...

    selftest_pytest_plugin is a small module that imports this one and puts it in its place,
    registered under its name: pytest would rewrite the asserts of the module -p names,
    parsing and compiling it again in every process (see that module).

The plugin does nothing unless SELF_TEST_RESULTS_FILE names a file.  It appends
one JSON object per line to that file, and only in the controller process:
under pytest-xdist the workers load the plugin too (their config has
``workerinput``) but never write; every report reaches the controller's hooks,
so each event is written exactly once.

Events (keys are exactly these; strings are ASCII JSON with \\u escapes):

    {"event":"start","pid":INT,"argv":[STR...],"workers":INT,
     "python":"3.11.2","pytest":"7.2.1"}
        argv = config.invocation_params.args; workers = the resolved -n value
        when xdist distributes the run (capped by --maxprocesses), else 0.

    {"event":"test_start","nodeid":STR}
    {"event":"test_finish","nodeid":STR}
        At pytest_runtest_logstart / pytest_runtest_logfinish: a test's
        protocol (setup, call, teardown) begins / is over.  Under xdist the
        controller receives both for every test, so several tests may be
        running at once.  A test started and not finished when the process
        dies is the one that killed it (os._exit, a crash in C code).

    When and how: a test_start, a failure or an error reaches the file at
    once.  Without xdist, a passed (skipped, xfailed...) test's report and its
    test_finish are written with the next test_start, in one write (the last
    test's when it finishes), so the file always says which tests finished
    and which one is running; under xdist every line is written at once.

    {"event":"test","nodeid":STR,"file":STR,"line":INT|null,"outcome":STR,
     "phase":"setup"|"call"|"teardown"|"collect","duration":FLOAT,
     "excerpt":STR|null,"stdout":STR|null,"stderr":STR|null,
     "skip_reason":STR|null}
        One per report that pytest's terminal summary counts, categorised by
        pytest's own pytest_report_teststatus hook.  outcome is one of
        passed failed error skipped xfailed xpassed.  file = the test file's
        path relative to pytest's rootdir (the path part of the nodeid), POSIX;
        the core passes --rootdir=<project root> so it is repo-relative.
        line = the 1-based line where the test's definition starts (its first
        decorator, else its def), as
        pytest reports it (report.location); null when pytest has none
        (a collector, a module-level skip, xdist's crashed-worker report).
        excerpt = longrepr text for failed/error, at most 4000 characters,
        keeping the end ("...\\n" + tail when cut); null otherwise.
        stdout / stderr = what pytest captured for a failed/error report
        (every "Captured stdout/stderr" section of it: setup, call,
        teardown), at most 64 KiB each, keeping the end; when cut, the text
        starts with the line "[selftest: N earlier bytes not kept]".  null
        for other outcomes or when nothing was captured.
        skip_reason = why a skipped or xfailed report was (pytest.skip's or the
        skip mark's reason without pytest's "Skipped: " prefix; xfail's
        reason), at most 1000 characters; null for other outcomes or when
        pytest gives none.
        xdist's report for a test whose worker crashed gets phase "call".
        phase "collect" (outcome "skipped") is a collector that was skipped
        (pytest.skip(allow_module_level=True), importorskip at module level):
        pytest counts those as skipped, so they are emitted to keep counts equal.

    {"event":"collect_error","nodeid":STR,"file":STR,"excerpt":STR}
        One per failed collection report (pytest counts them as errors).

    {"event":"end","exitstatus":INT,"counts":{"passed":N,"failed":N,
     "error":N,"skipped":N,"xfailed":N,"xpassed":N},"duration":FLOAT}
        At pytest_sessionfinish.  counts = what this plugin emitted ("error"
        includes the collect_error events); they equal the numbers on pytest's
        final summary line.  duration = seconds since the start event.

    There is no end event when the process dies (os._exit, a signal): the
    caller must check the process exit status (0, 1 and 5 are the only normal
    ones); the test_start without its test_finish names the test that was
    running.  Under xdist a crashing worker is reported by xdist as a failed test
    and the run ends normally.

Affected tests first (`run --changed-first`)
    When SELF_TEST_FIRST_FILES is set to a JSON list of test files relative to
    the rootdir, the collected items of those files move to the front (a stable
    reordering, after every other plugin's); the rest keep their order.

Shards of a test file (selftest-core's `shards`)
    When SELF_TEST_SHARD_FILTER is set to a JSON object {"keep": {FILE: [NODEID, ...]},
    "drop": {FILE: [NODEID, ...]}} (files relative to the rootdir), the collected items of a
    file under "keep" other than the node ids listed, and those listed under "drop", are
    deselected (pytest_deselected): a long test file split over several shards runs each of
    its tests in exactly one of them, a test that is not listed (new since the durations were
    recorded) in the shard that has the file under "drop", and a listed test that no longer
    exists is no error.

Orphan checks (docs/spec.md §8.1)
    When SELF_TEST_ORPHAN_MODULES is set to a JSON list of
    {"path": "pkg/mod.py", "module": "pkg.mod" | null}, the plugin appends one
    item per entry (deduplicated by path) at the end of collection, nodeid
    "orphan::<path>".  Its test puts the project root first on sys.path and
    imports the module with importlib.import_module(module), or, when module is
    null, runs the file with runpy.run_path(run_name="__selftest_orphan__");
    sys.argv is [<file>] meanwhile.  It passes when that finishes without an
    exception (SystemExit with status 0 or None counts as finishing: a script
    that ends itself successfully at top level).  Its reports are ordinary "test" events with "file" = path.
    A failed one carries two more keys:
        "reason": "RuntimeError: boom (pkg/mod.py:4)": the exception, its
            first line, and the innermost line of project code it came from;
        "unmet": "numpy": only when the import failed with nothing but an
            ImportError / ModuleNotFoundError for a top-level name that is not
            a module of the project (nor, for "cannot import name", of the
            standard library): a missing third-party package; the reason is
            then "unmet dependency: numpy (imported at pkg/mod.py:1)".
    Its excerpt is Python's own traceback format, chained exceptions included,
    without pytest's, this plugin's and the import machinery's frames, with
    paths relative to the project root (not to the sandbox directory).
    The project root is $SELF_TEST_ORPHAN_ROOT if set, else pytest's rootdir;
    relative paths are resolved against it.  Invocation used by the core (the
    working directory a fresh empty temp dir, so nothing else is collected):

        cd "$(mktemp -d)" &&
        SELF_TEST_RESULTS_FILE=<outdir>/results.jsonl \\
        SELF_TEST_ORPHAN_MODULES='[{"path":"pkg/mod.py","module":"pkg.mod"}]' \\
        PYTHONPATH=<pkgdatadir> PYTHONDONTWRITEBYTECODE=1 \\
        python3 -m pytest -p selftest_pytest_plugin -p no:cacheprovider \\
            -q --rootdir=<project root> .

    No support file is needed (nothing else is collected from the empty
    directory; with an empty list pytest exits 5).  The orphan items are added
    after -k/-m deselection (trylast), so they are never deselected.  A module
    that kills the interpreter (os._exit, a signal) loses its event and those
    of the orphans after it: the core treats an orphan without a "test" event
    as failed (or runs one orphan per process).  A malformed
    SELF_TEST_ORPHAN_MODULES is a usage error (pytest exits 4).

Processes left behind
    When SELF_TEST_RESULTS_FILE is set, every pytest process of the run (the
    controller and each xdist worker) becomes a child subreaper
    (PR_SET_CHILD_SUBREAPER): whatever its tests start stays its descendant
    even after setsid, setpgid or a double fork.  At the end of the session
    (in each worker, and in the controller when it ran the tests itself) the
    descendants still running are killed and reaped, with one line on stderr
    naming them: a daemon holding a worker's pipes cannot hang xdist.  An
    orphan check whose import leaves a process running fails, naming it.
    SELF_TEST_SUBREAPER=yes says the process was made a subreaper before
    exec (selftest-core's host runtime does that); the plugin removes the
    variable from the environment at import.
    The runtime stops whatever escapes this (a process that changed its
    parent's subreaper, or outlives pytest) by itself.

Test dependencies (`record_test_deps`)
    When SELF_TEST_DEPS_DIR names a directory, every process that runs tests
    (the controller without xdist, each xdist worker) records which functions
    of the project each test file executed, and at the end of the session
    writes deps-<pid>.json there:
        {"version":1,"root":STR,"tracer":"monitoring"|"settrace",
         "functions":{FILE:[[FIRST,BODY_START,BODY_END],...]},
         "tests":{TESTFILE:{FILE:[INDEX,...]}},"outside":{FILE:[INDEX,...]},
         "incomplete":[TESTFILE,...]}
    FILE = a .py file under the rootdir (POSIX, rootdir-relative); functions
    = every function of it the interpreter compiled (from each executed
    module's code objects, nested ones included): its first line (the first
    decorator's), and the first and last line of its body's code (0 and 0
    for a body on the def line). tests = per test file (the path part of the
    nodeids), the indexes of the functions that ran while its tests ran
    (setup, call, teardown); outside = what ran outside any test: collection
    (imports) and the setup of session- and package-scoped fixtures.
    items = per test file, [tests run in this process, tests collected]
    (under xdist each worker runs a share: the sums tell whether all ran).
    incomplete = test files during which the recorder was displaced (a test
    set its own trace function) or some of whose tests were deselected (-k,
    -m, a shard's share). Python 3.12+ records with sys.monitoring (each
    function's first call per test file only); older ones with sys.settrace
    (every call: slower), and not at all when another trace function
    (coverage, a debugger) is already installed: no file is written then.

Results on stdout (runtimes without a shared filesystem)
    When SELF_TEST_RESULTS_FRAME is set to a token of letters and digits, the
    events are not written to the file but to the process's standard output
    as it was when the plugin was imported (before pytest's capture), one
    frame per event: the byte 0x1e, "selftest-", the token, a space, the JSON
    line, "\n" -- each frame in one write.  A runtime that reads the task's
    output from its engine's logs (runtime-swarm) cuts the frames out and
    writes the file itself.  A frame may begin in the middle of a line of
    pytest's output (after its progress dots); the reader looks for the marker
    anywhere.  An engine that splits long log lines joins them again
    (Docker's 16 KiB partial messages do).  The directory of
    SELF_TEST_RESULTS_FILE is created (it does not exist on the node) and
    its coverage.lcov, when pytest-cov wrote one, is sent back before the
    end event, one frame per line: 0x1e, "selftest-", the token,
    ":coverage.lcov ", the line, "\n".

Otherwise the plugin never lets its own errors reach pytest: every hook body
is guarded (an unwritable results file gives one line on stderr, no events).
"""

import importlib
import json
import math
import os
import platform
import runpy
import signal
import sys
import time
import traceback

import pytest

START_GATE_ENV = "SELF_TEST_START_GATE"


def _start_gate():
    """selftest-core's host runtime starts this process at once and moves it into its cgroup
    v1 process limit meanwhile; "fd:N" names the pipe that says when that is done (one byte,
    or end of file when the runtime gave up). Read before pytest loads anything of the
    project. The variable goes, so no process started later waits."""
    value = os.environ.pop(START_GATE_ENV, None)
    if not value or not value.startswith("fd:"):
        return
    try:
        fd = int(value[3:])
    except ValueError:
        return
    try:
        os.read(fd, 1)
    except OSError:
        pass
    try:
        os.close(fd)
    except OSError:
        pass


_start_gate()

RESULTS_ENV = "SELF_TEST_RESULTS_FILE"
FRAME_ENV = "SELF_TEST_RESULTS_FRAME"
FRAME_FILES = ("coverage.lcov",)  # sent back in frame mode, from the results file's directory
ORPHAN_ENV = "SELF_TEST_ORPHAN_MODULES"
ORPHAN_ROOT_ENV = "SELF_TEST_ORPHAN_ROOT"
FIRST_ENV = "SELF_TEST_FIRST_FILES"
SHARD_ENV = "SELF_TEST_SHARD_FILTER"
DEPS_ENV = "SELF_TEST_DEPS_DIR"
EXCERPT_MAX = 4000
CAPTURE_MAX = 64 * 1024  # bytes of captured stdout / stderr kept per failing test
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
_FILE_PROP = "selftest_file"
_REASON_PROP = "selftest_reason"
_UNMET_PROP = "selftest_unmet"
REASON_MAX = 500
PR_SET_CHILD_SUBREAPER = 36
LEFTOVER_GRACE = 0.5  # seconds a process may take to finish exiting before it counts as left



def _frame_prefix():
    token = os.environ.get(FRAME_ENV, "")
    if not token or not token.isascii() or not token.isalnum():
        return None
    return b"\x1eselftest-" + token.encode("ascii") + b" "


_FRAME_PREFIX = _frame_prefix()
_frame_fd = None
if _FRAME_PREFIX is not None:
    # the real stdout, duplicated before pytest's capture replaces fd 1 (plugins named with -p
    # are imported before capturing starts); not inherited by the tests' processes
    try:
        _frame_fd = os.dup(1)
    except OSError:
        _frame_fd = None


# --------------------------------------------------------------------------
# processes the tests leave behind

# selftest-core's host runtime makes the process it starts for this plugin a child subreaper
# before exec and says so (yes); the variable goes, so no process started later believes it
_subreaper = os.environ.pop("SELF_TEST_SUBREAPER", None) == "yes"


def _become_subreaper():
    """Orphaned descendants are reparented to this process instead of init."""
    global _subreaper
    if _subreaper or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
            _subreaper = True
    except Exception:
        pass


def _proc_table():
    """{pid: (ppid, state)} of every process in /proc."""
    table = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return table
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as fh:
                stat = fh.read().decode("ascii", "replace")
            rest = stat[stat.rindex(")") + 2:].split()
            table[int(name)] = (int(rest[1]), rest[0])
        except (OSError, ValueError, IndexError):
            continue
    return table


def _children():
    """Pids of this process's children, zombies included, from /proc/self/task/*/children
    (one small read a thread instead of reading all of /proc); None where the kernel has no
    such file (CONFIG_PROC_CHILDREN)."""
    pids = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with open("/proc/self/task/%s/children" % tid, "rb") as fh:
                pids.extend(int(p) for p in fh.read().split())
    except (OSError, ValueError):
        return None
    return pids


def _descendants(zombies=False):
    """Pids of this process's live descendants (and zombies when asked)."""
    if _children() == []:  # no child, so no descendant: the usual end of a session
        return []
    table = _proc_table()
    me, found, todo = os.getpid(), [], [os.getpid()]
    children = {}
    for pid, (ppid, state) in table.items():
        children.setdefault(ppid, []).append((pid, state))
    while todo:
        for pid, state in children.get(todo.pop(), ()):
            if pid == me:
                continue
            todo.append(pid)
            if zombies or state not in ("Z", "X"):
                found.append(pid)
    return found


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        cmd = ""
    return _clean(cmd[:120]) or "?"


def _reap():
    """Collects this process's zombie children (its own and the adopted ones)."""
    if _children() == []:
        return
    table = _proc_table()
    for pid, (ppid, state) in table.items():
        if ppid == os.getpid() and state in ("Z", "X"):
            try:
                os.waitpid(pid, os.WNOHANG)
            except OSError:
                pass


def _leftovers(grace=LEFTOVER_GRACE):
    """Descendants still running after grace seconds: [(pid, cmdline)]."""
    deadline = time.monotonic() + grace
    while True:
        _reap()
        pids = _descendants()
        if not pids or time.monotonic() >= deadline:
            return [(p, _cmdline(p)) for p in pids]
        time.sleep(0.05)


def _stop_descendants():
    """Kills every descendant (new ones forked meanwhile too) and reaps them."""
    for _ in range(50):
        pids = _descendants()
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)
        _reap()
    _reap()


def _describe_pids(left):
    return "; ".join("pid %d: %s" % (p, c) for p, c in left[:5]) + \
        ("; ..." if len(left) > 5 else "")


def _clean(s):
    """A str that encodes as UTF-8 (no lone surrogates), for yajl."""
    if s is None:
        return None
    if not isinstance(s, str):
        s = str(s)
    if s.isascii():  # most: no need to encode
        return s
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "replace").decode("utf-8")


def _excerpt(text):
    text = _clean(text) or ""
    if len(text) > EXCERPT_MAX:
        text = "...\n" + text[-(EXCERPT_MAX - 4):]
    return text


def _captured(text):
    """Captured output of a failing test: None when empty, else at most CAPTURE_MAX
    bytes (UTF-8), the end kept, with a note when cut."""
    text = _clean(text) or ""
    if not text:
        return None
    data = text.encode("utf-8")
    if len(data) <= CAPTURE_MAX:
        return text
    cut = len(data) - CAPTURE_MAX
    tail = data[cut:].decode("utf-8", "ignore")
    return "[selftest: %d earlier bytes not kept]\n%s" % (cut, tail)


def _posix(path):
    path = str(path or "")
    if os.sep != "/":
        path = path.replace(os.sep, "/")
    return path


# one encoder for every line (json.dumps with options makes a new one per call)
_ENCODER = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def _json_str(s):
    """A JSON string (ASCII, \\u escapes) of _clean(s), or null."""
    s = _clean(s)
    return "null" if s is None else json.encoder.encode_basestring_ascii(s)


def _json_line(obj):
    """obj as one line of ASCII JSON; a str is a line made already."""
    return obj if isinstance(obj, str) else _ENCODER.encode(obj)


class _Recorder:
    """Per-session writer; exists only in the controller when the env is set."""

    def __init__(self, config, path):
        self.config = config
        self.path = path
        self.fd = None
        self.broken = False
        self.t0 = time.monotonic()
        self.counts = dict.fromkeys(OUTCOMES, 0)
        # Lines held back until the next write that must reach the file at once (see hold):
        # one system call per test instead of three.
        self.held = []
        self.may_hold = False  # set at session start: only without xdist
        self.last_nodeid = None  # the session's last test (its lines are not held back)
        self.current = (None, "null")  # the running test's nodeid and its JSON string
        self.file_jsons = {}  # see file_json
        self.builtin_status = None  # see _only_builtin_teststatus

    def nodeid_json(self, nodeid):
        """The JSON string of a nodeid: the running test's is made once, at its start."""
        return self.current[1] if self.current[0] == nodeid else _json_str(nodeid)

    def file_json(self, path):
        """The JSON string of a test file, made once a session."""
        text = self.file_jsons.get(path)
        if text is None:
            text = self.file_jsons[path] = _json_str(path)
        return text

    def hold(self, obj):
        """A line that may wait for the next test's start: a passed test's report and its
        test_finish. Without xdist, the next test_start is written with them in one write, so
        what the file says when the process dies is as before: the tests that finished, and
        the one that was running. The last test's are written when it finishes."""
        if not self.may_hold:
            self.write(obj)
            return
        try:
            self.held.append(_json_line(obj))
        except Exception:
            self.write(obj)

    def flush_held(self):
        if self.held:
            self.write(None)

    def write(self, obj):
        if self.broken:
            self.held = []
            return
        try:
            lines = self.held
            self.held = []
            if obj is not None:
                lines.append(_json_line(obj))
            if not lines:
                return
            if _FRAME_PREFIX is not None:
                if _frame_fd is None:
                    raise OSError("the standard output is closed")
                data = b"".join(_FRAME_PREFIX + line.encode("ascii") + b"\n"
                                for line in lines)
                while data:
                    data = data[os.write(_frame_fd, data):]
                return
            if self.fd is None:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT |
                                  os.O_CLOEXEC, 0o644)
            data = ("\n".join(lines) + "\n").encode("utf-8")
            while data:
                data = data[os.write(self.fd, data):]
        except Exception as exc:  # never crash pytest
            self.broken = True
            try:
                sys.stderr.write("selftest_pytest_plugin: cannot write %s: %s\n"
                                 % (self.path, exc))
            except Exception:
                pass

    def send_files(self):
        """Frame mode: the text files of the output dir the runtime wants back (pytest-cov's
        lcov report, written when the test loop ended), as frames naming each file."""
        if _FRAME_PREFIX is None or _frame_fd is None or self.broken:
            return
        outdir = os.path.dirname(self.path) if self.path != "<stdout>" else ""
        for name in FRAME_FILES:
            try:
                with open(os.path.join(outdir, name), "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            head = _FRAME_PREFIX[:-1] + b":" + name.encode("ascii") + b" "
            lines = data.split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
            out = b"".join(head + line + b"\n" for line in lines)
            try:
                while out:
                    out = out[os.write(_frame_fd, out):]
            except OSError:
                return

    def close(self):
        self.flush_held()
        try:
            if self.fd is not None:
                os.close(self.fd)
        except Exception:
            pass
        self.fd = None


_recorder = None


def _report_prop(report, name):
    try:
        for prop in getattr(report, "user_properties", None) or ():
            if isinstance(prop, (tuple, list)) and len(prop) == 2 \
                    and prop[0] == name:
                return _clean(prop[1])
    except Exception:
        pass
    return None


def _report_file(report):
    try:
        for prop in getattr(report, "user_properties", None) or ():
            if isinstance(prop, (tuple, list)) and len(prop) == 2 \
                    and prop[0] == _FILE_PROP:
                return _posix(prop[1])
    except Exception:
        pass
    nodeid = getattr(report, "nodeid", "") or ""
    head = nodeid.split("::")[0]
    if head:
        return _posix(head)
    loc = getattr(report, "location", None)
    if loc:
        return _posix(loc[0])
    return ""


def _skip_reason(report, category):
    """Why a skipped or xfailed report was, or None."""
    try:
        if category == "xfailed":
            text = getattr(report, "wasxfail", None)
        elif category == "skipped":
            lr = getattr(report, "longrepr", None)
            text = lr[2] if isinstance(lr, tuple) and len(lr) == 3 else None
            if isinstance(text, str) and text.startswith("Skipped: "):
                text = text[len("Skipped: "):]
        else:
            return None
        text = _clean(text)
        if not text:
            return None
        return text[:1000]
    except Exception:
        return None


def _report_line(report):
    """The 1-based line of the test's definition, or None."""
    try:
        loc = getattr(report, "location", None)
        if loc and isinstance(loc[1], int) and not isinstance(loc[1], bool) \
                and loc[1] >= 0:
            return loc[1] + 1
    except Exception:
        pass
    return None


def _workers(config):
    try:
        n = getattr(config.option, "numprocesses", None)
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            return 0
        if getattr(config.option, "dist", "no") == "no":
            return 0
        maxp = getattr(config.option, "maxprocesses", None)
        if isinstance(maxp, int) and maxp > 0:
            n = min(n, maxp)
        return n
    except Exception:
        return 0


# --------------------------------------------------------------------------
# result recording hooks


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    global _recorder
    try:
        path = os.environ.get(RESULTS_ENV)
        if _FRAME_PREFIX is not None:
            path = path or "<stdout>"
            if path != "<stdout>" and not hasattr(config, "workerinput"):
                # the runtime's output dir does not exist on the node: made here, for what
                # other plugins write there (pytest-cov's report, sent back at the end)
                try:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                except OSError:
                    pass
        if path:
            _become_subreaper()
            _deps_begin(config)
        if not path or hasattr(config, "workerinput"):
            return
        _recorder = _Recorder(config, path)
    except Exception:
        _recorder = None


def pytest_unconfigure(config):
    global _recorder
    try:
        if _recorder is not None and _recorder.config is config:
            _recorder.close()
            _recorder = None
    except Exception:
        pass


def pytest_sessionstart(session):
    rec = _recorder
    if rec is None:
        return
    try:
        rec.t0 = time.monotonic()
        # under xdist the tests of several workers finish in any order, and a finished one
        # must not wait for a start that may not come
        rec.may_hold = _workers(rec.config) == 0
        try:
            argv = [str(a) for a in rec.config.invocation_params.args]
        except Exception:
            argv = []
        rec.write({
            "event": "start",
            "pid": os.getpid(),
            "argv": [_clean(a) for a in argv],
            "workers": _workers(rec.config),
            "python": platform.python_version(),
            "pytest": pytest.__version__,
        })
    except Exception:
        pass


def _only_builtin_teststatus(config):
    """Are pytest's own the only pytest_report_teststatus hooks (no plugin or conftest.py that
    could count a passed setup or teardown)? Asked once, when the first test has run: every
    conftest.py is loaded by then."""
    try:
        impls = config.hook.pytest_report_teststatus.get_hookimpls()
        return all(getattr(i.plugin, "__name__", "").startswith("_pytest.") for i in impls)
    except Exception:
        return False


def pytest_runtest_logreport(report):
    rec = _recorder
    if rec is None:
        return
    try:
        if rec.builtin_status is None:
            rec.builtin_status = _only_builtin_teststatus(rec.config)
        if rec.builtin_status and report.passed and not hasattr(report, "wasxfail"):
            # what pytest's own hooks answer, without asking them (three reports a test)
            if getattr(report, "when", None) in ("setup", "teardown"):
                return  # "": not counted
            category = "passed"
        else:
            res = rec.config.hook.pytest_report_teststatus(report=report,
                                                           config=rec.config)
            category = res[0] if res else ""
        if category not in OUTCOMES:
            return  # "" = passed setup/teardown, not counted by pytest
        excerpt = stdout = stderr = None
        if category in ("failed", "error"):
            try:
                excerpt = _excerpt(report.longreprtext)
            except Exception:
                excerpt = _excerpt(str(getattr(report, "longrepr", "")))
            try:
                stdout = _captured(report.capstdout)
                stderr = _captured(report.capstderr)
            except Exception:
                stdout = stderr = None
        try:
            duration = float(getattr(report, "duration", 0.0) or 0.0)
        except Exception:
            duration = 0.0
        phase = getattr(report, "when", None)
        if phase not in ("setup", "call", "teardown"):
            phase = "call"  # xdist's crashed-worker report has when="???"
        rec.counts[category] += 1
        if category == "passed" and math.isfinite(duration):
            # most reports: the same line as below, made without a JSON encoder
            line = _report_line(report)
            rec.hold('{"event":"test","nodeid":%s,"file":%s,"line":%s,"outcome":"passed",'
                     '"phase":"%s","duration":%r,"excerpt":null,"stdout":null,"stderr":null,'
                     '"skip_reason":null}'
                     % (rec.nodeid_json(report.nodeid), rec.file_json(_report_file(report)),
                        "null" if line is None else int(line), phase, duration))
            return
        event = {
            "event": "test",
            "nodeid": _clean(report.nodeid),
            "file": _clean(_report_file(report)),
            "line": _report_line(report),
            "outcome": category,
            "phase": phase,
            "duration": duration,
            "excerpt": excerpt,
            "stdout": stdout,
            "stderr": stderr,
            "skip_reason": _skip_reason(report, category),
        }
        if category in ("failed", "error"):
            reason = _report_prop(report, _REASON_PROP)
            if reason:
                event["reason"] = reason
            unmet = _report_prop(report, _UNMET_PROP)
            if unmet:
                event["unmet"] = unmet
            rec.write(event)
        else:
            rec.hold(event)
    except Exception:
        pass


def pytest_runtest_logstart(nodeid, location):
    rec = _recorder
    if rec is None:
        return
    try:
        rec.current = (nodeid, _json_str(nodeid))
        rec.write('{"event":"test_start","nodeid":%s}' % rec.current[1])
    except Exception:
        pass


def pytest_runtest_logfinish(nodeid, location):
    rec = _recorder
    if rec is None:
        return
    try:
        rec.hold('{"event":"test_finish","nodeid":%s}' % rec.nodeid_json(nodeid))
        if nodeid == rec.last_nodeid:
            rec.flush_held()
    except Exception:
        pass


def pytest_collectreport(report):
    rec = _recorder
    if rec is None:
        return
    try:
        if report.failed:
            try:
                text = report.longreprtext
            except Exception:
                text = str(getattr(report, "longrepr", ""))
            rec.counts["error"] += 1
            rec.write({
                "event": "collect_error",
                "nodeid": _clean(report.nodeid),
                "file": _clean(_report_file(report)),
                "excerpt": _excerpt(text),
            })
        elif report.skipped:
            rec.counts["skipped"] += 1
            rec.write({
                "event": "test",
                "nodeid": _clean(report.nodeid),
                "file": _clean(_report_file(report)),
                "line": None,
                "outcome": "skipped",
                "phase": "collect",
                "duration": 0.0,
                "excerpt": None,
                "stdout": None,
                "stderr": None,
                "skip_reason": _skip_reason(report, "skipped"),
            })
    except Exception:
        pass


def _stop_leftovers(session):
    """Stops what the tests left running. In an xdist worker this runs before the worker
    reports that it finished (xdist's hook wraps this one): its controller waits for the
    worker's pipes to close, and a leftover may hold them."""
    if not _subreaper:
        return
    try:
        config = session.config
        if not hasattr(config, "workerinput") and _workers(config) > 0:
            return  # the controller: its descendants are the workers, still running
        left = _leftovers(grace=0)
        if left:
            _stop_descendants()
            sys.stderr.write("selftest_pytest_plugin: stopped %d process%s the tests left "
                             "running: %s\n" % (len(left), "" if len(left) == 1 else "es",
                                                _describe_pids(left)))
            sys.stderr.flush()
    except Exception:
        pass


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    _deps_end()
    _stop_leftovers(session)
    rec = _recorder
    if rec is None:
        return
    try:
        try:
            status = int(getattr(session, "exitstatus", exitstatus))
        except Exception:
            status = int(exitstatus)
        rec.flush_held()
        rec.send_files()
        rec.write({
            "event": "end",
            "exitstatus": status,
            "counts": dict(rec.counts),
            "duration": max(0.0, time.monotonic() - rec.t0),
        })
        rec.close()
    except Exception:
        pass


# --------------------------------------------------------------------------
# test dependencies: which project functions each test file executed

_CO_OPTIMIZED = 0x1  # a function's code (not a module or a class body)


class _Deps:
    """Records the code objects executed, in one set per test file ("" outside tests)."""

    def __init__(self, out_dir):
        self.root = None  # the rootdir, known at pytest_configure
        self.out_dir = out_dir
        self.sets = {"": set()}
        self.key = ""
        self.incomplete = set()
        self.tool = None
        self.tracer = None
        self.ran = {}  # test file -> items run here
        self.collected = {}  # test file -> items collected (after deselection)

    def start(self):
        global _deps_add
        _deps_add = self.sets[""].add
        mon = getattr(sys, "monitoring", None)
        if mon is not None:
            for tool in (5, 4, 3, 2):
                try:
                    mon.use_tool_id(tool, "selftest-deps")
                except ValueError:
                    continue
                self.tool = tool
                mon.register_callback(tool, mon.events.PY_START, _deps_py_start)
                mon.register_callback(tool, mon.events.PY_RESUME, _deps_py_start)
                mon.set_events(tool, mon.events.PY_START | mon.events.PY_RESUME)
                self.tracer = "monitoring"
                return True
            return False
        if sys.gettrace() is not None:
            return False  # coverage or a debugger: not displaced
        import threading
        threading.settrace(_deps_trace)
        sys.settrace(_deps_trace)
        self.tracer = "settrace"
        return True

    def switch(self, key):
        global _deps_add
        if self.tracer == "settrace" and sys.gettrace() is not _deps_trace:
            self.incomplete.add(self.key)  # a test replaced the trace function
            sys.settrace(_deps_trace)
        self.key = key
        _deps_add = self.sets.setdefault(key, set()).add
        if self.tracer == "monitoring":
            sys.monitoring.restart_events()  # each function's first call again

    def stop(self):
        global _deps_add
        _deps_add = _deps_noop
        if self.tracer == "settrace":
            if sys.gettrace() is not _deps_trace:
                self.incomplete.add(self.key)
            sys.settrace(None)
            import threading
            threading.settrace(None)
        elif self.tracer == "monitoring":
            mon = sys.monitoring
            mon.set_events(self.tool, 0)
            mon.register_callback(self.tool, mon.events.PY_START, None)
            mon.register_callback(self.tool, mon.events.PY_RESUME, None)
            mon.free_tool_id(self.tool)

    def _rel(self, filename, cache):
        rel = cache.get(filename, False)
        if rel is not False:
            return rel
        rel = None
        if filename.endswith(".py") and self.root:
            try:
                real = os.path.realpath(filename)
                if real.startswith(self.root + os.sep):
                    rel = _posix(real[len(self.root) + 1:])
            except Exception:
                rel = None
        cache[filename] = rel
        return rel

    @staticmethod
    def _span(code):
        lines = sorted({ln for _, _, ln in code.co_lines() if ln is not None})
        body = [ln for ln in lines if ln > code.co_firstlineno]
        if not body:
            return [code.co_firstlineno, 0, 0]
        return [code.co_firstlineno, body[0], body[-1]]

    def write(self):
        cache = {}
        functions = {}  # rel -> list of spans
        index = {}  # code -> (rel, i)

        def add(code, rel):
            if code in index:
                return
            table = functions.setdefault(rel, [])
            index[code] = (rel, len(table))
            table.append(self._span(code))

        def walk(code, rel, seen):
            for const in code.co_consts:
                if hasattr(const, "co_code") and id(const) not in seen:
                    seen.add(id(const))
                    if const.co_flags & _CO_OPTIMIZED:
                        add(const, rel)
                    walk(const, rel, seen)

        executed = set()
        for codes in self.sets.values():
            executed |= codes
        files = {}
        for code in executed:
            rel = self._rel(code.co_filename, cache)
            if rel is not None:
                files.setdefault(rel, code.co_filename)
        by_span = {}  # (rel, span) -> index
        for rel in sorted(files):
            # every function of the file, from its source compiled as the import did
            try:
                with open(files[rel], "rb") as fh:
                    module = compile(fh.read(), files[rel], "exec", dont_inherit=True)
            except Exception:
                continue
            walk(module, rel, set())
        for code, (rel, i) in index.items():
            by_span.setdefault((rel, tuple(functions[rel][i])), i)
        tests, outside = {}, {}
        for key, codes in self.sets.items():
            per = {}
            for code in codes:
                if not code.co_flags & _CO_OPTIMIZED:
                    continue
                rel = self._rel(code.co_filename, cache)
                if rel is None:
                    continue
                i = by_span.get((rel, tuple(self._span(code))))
                if i is None:  # not in the file as compiled now (exec'd code, an edit)
                    add(code, rel)
                    i = index[code][1]
                per.setdefault(rel, []).append(i)
            for rel in per:
                per[rel] = sorted(set(per[rel]))
            if key:
                tests[key] = per
            else:
                outside = per
        items = {k: [self.ran.get(k, 0), n] for k, n in self.collected.items()}
        out = {"version": 1, "root": self.root, "tracer": self.tracer,
               "functions": functions, "tests": tests, "outside": outside,
               "items": items, "incomplete": sorted(k for k in self.incomplete if k)}
        path = os.path.join(self.out_dir, "deps-%d.json" % os.getpid())
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(out, fh, ensure_ascii=True, separators=(",", ":"))
        os.replace(tmp, path)


def _deps_noop(code):
    pass


_deps_add = _deps_noop
_deps = None


def _deps_trace(frame, event, arg):
    _deps_add(frame.f_code)


def _deps_py_start(code, offset):
    _deps_add(code)
    return sys.monitoring.DISABLE


def _deps_import():
    """Starts recording when the plugin is imported (-p loads it before any conftest, so the
    imports of the project are seen); pytest_configure decides whether it goes on."""
    global _deps
    try:
        out_dir = os.environ.get(DEPS_ENV)
        if not out_dir or os.environ.get(ORPHAN_ENV) or not os.environ.get(RESULTS_ENV):
            return
        deps = _Deps(out_dir)
        if deps.start():
            _deps = deps
        else:
            sys.stderr.write("selftest_pytest_plugin: test dependencies not recorded: another "
                             "trace function is installed (coverage, a debugger)\n")
    except Exception:
        _deps = None


def _deps_begin(config):
    global _deps
    deps = _deps
    if deps is None:
        return
    try:
        deps.root = os.path.realpath(str(config.rootpath))
        stop = not hasattr(config, "workerinput") and _workers(config) > 0
        if not stop and deps.tracer == "settrace" and sys.gettrace() is not _deps_trace:
            stop = True  # coverage started since: it displaced the recorder
            sys.stderr.write("selftest_pytest_plugin: test dependencies not recorded: another "
                             "trace function was installed (coverage, a debugger)\n")
        if stop:  # (an xdist controller runs no test)
            _deps = None
            deps.stop()
        else:
            config.pluginmanager.register(_DepsHooks(), "selftest-deps")
    except Exception:
        _deps = None


_deps_import()


def _deps_key(item):
    return _posix(item.nodeid.split("::")[0])


class _DepsHooks:
    """The hooks that follow which test file runs, registered only while test dependencies
    are recorded (two hook wrappers around every test and fixture cost a short suite time)."""

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem):
        deps = _deps
        if deps is not None:
            try:
                key = _deps_key(item)
                deps.ran[key] = deps.ran.get(key, 0) + 1
                deps.switch(key)
            except Exception:
                pass
        yield
        if deps is not None:
            try:
                deps.switch("")
            except Exception:
                pass

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        deps = _deps
        key = None
        if deps is not None and getattr(fixturedef, "scope", "") in ("session", "package"):
            key = deps.key
            try:
                deps.switch("")  # shared by test files: what it runs counts for every one
            except Exception:
                key = None
        yield
        if key is not None:
            try:
                deps.switch(key)
            except Exception:
                pass


def pytest_collection_finish(session):
    rec = _recorder
    if rec is not None:
        try:
            rec.last_nodeid = session.items[-1].nodeid if session.items else None
        except Exception:
            rec.last_nodeid = None
    deps = _deps
    if deps is None:
        return
    try:
        for item in session.items:
            key = _deps_key(item)
            deps.collected[key] = deps.collected.get(key, 0) + 1
    except Exception:
        pass


def pytest_deselected(items):
    deps = _deps
    if deps is None:
        return
    try:
        for item in items:  # a file whose tests did not all run is not known whole
            deps.incomplete.add(_deps_key(item))
    except Exception:
        pass


def _deps_end():
    global _deps
    deps = _deps
    _deps = None
    if deps is None:
        return
    try:
        deps.stop()
        deps.write()
    except Exception as exc:
        try:
            sys.stderr.write("selftest_pytest_plugin: cannot write the test dependencies: %s\n"
                             % exc)
        except Exception:
            pass


# --------------------------------------------------------------------------
# orphan checks


class OrphanCheckFailed(Exception):
    pass


class OrphanImportStopped(Exception):
    """Raised in the import by SIGTERM (the runtime's first step at the check's timeout): the
    failure then names where the import was."""


def _stop_import(signum, frame):
    raise OrphanImportStopped("the import was stopped (SIGTERM: the check's timeout)")


class OrphanItem(pytest.Item):
    """Imports one orphan module; passes when its top-level code completes."""

    def __init__(self, *, orphan_path, module, root, **kwargs):
        super().__init__(**kwargs)
        self.orphan_path = orphan_path
        self.module_name = module
        self.project_root = root
        self.user_properties.append((_FILE_PROP, orphan_path))

    def _abspath(self):
        if os.path.isabs(self.orphan_path):
            return self.orphan_path
        return os.path.join(self.project_root, self.orphan_path)

    def runtest(self):
        root = self.project_root
        if root and root not in sys.path:
            sys.path.insert(0, root)
        path = self._abspath()
        saved_argv = sys.argv
        sys.argv = [path]
        try:
            saved_term = signal.signal(signal.SIGTERM, _stop_import)
        except (ValueError, OSError):  # not the main thread
            saved_term = None
        try:
            if self.module_name:
                importlib.import_module(self.module_name)
            else:
                if not os.path.isfile(path):
                    raise OrphanCheckFailed("no such file: %s" % path)
                runpy.run_path(path, run_name="__selftest_orphan__")
        except SystemExit as exc:
            # a script that ends itself successfully at top level (sys.exit(), exit(0))
            # finished without error
            if exc.code is None or exc.code == 0:
                self._check_leftovers()
                return
            try:
                self._describe(exc)
            except Exception:
                pass
            raise
        except BaseException as exc:
            try:
                self._describe(exc)
            except Exception:
                pass
            raise
        finally:
            sys.argv = saved_argv
            if saved_term is not None:
                try:
                    signal.signal(signal.SIGTERM, saved_term)
                except (ValueError, OSError):
                    pass
        self._check_leftovers()

    def _check_leftovers(self):
        """An import that leaves a process running fails (the process is stopped)."""
        if not _subreaper:
            return
        left = _leftovers()
        if left:
            _stop_descendants()
            exc = OrphanCheckFailed(
                "importing %s left %d process%s running (stopped): %s"
                % (self.module_name or self.orphan_path, len(left),
                   "" if len(left) == 1 else "es", _describe_pids(left)))
            try:
                self._describe(exc)
            except Exception:
                pass
            raise exc

    # -- why it failed: one line for the core, a traceback with repository paths

    def _rel(self, filename):
        root = self.project_root
        try:
            full = os.path.abspath(filename)
            if root and (full == root or full.startswith(root.rstrip(os.sep) + os.sep)):
                return _posix(os.path.relpath(full, root))
        except Exception:
            pass
        return filename

    @staticmethod
    def _keep_frame(filename):
        p = str(filename)
        if p.startswith("<frozen") or os.path.splitext(os.path.abspath(p))[0] == \
                os.path.splitext(os.path.abspath(__file__))[0]:
            return False
        return not (os.path.basename(p) == "runpy.py" or
                    (os.sep + "importlib" + os.sep) in p or
                    (os.sep + "_pytest" + os.sep) in p or
                    (os.sep + "pluggy" + os.sep) in p)

    def _local_name(self, top):
        """Is the top-level name a module of the project (the root, src/, or a
        sys.path entry inside the root)?"""
        root = self.project_root
        dirs = [root, os.path.join(root, "src")]
        for d in sys.path:
            try:
                d = os.path.abspath(d or os.curdir)
            except Exception:
                continue
            if d == root or d.startswith(root.rstrip(os.sep) + os.sep):
                dirs.append(d)
        for d in dirs:
            if os.path.isfile(os.path.join(d, top + ".py")) or \
                    os.path.isdir(os.path.join(d, top)):
                return True
            try:
                if any(n.startswith(top + ".") and n.endswith((".so", ".pyd"))
                       for n in os.listdir(d)):
                    return True
            except OSError:
                pass
        return False

    def _unmet(self, exc):
        """The missing third-party package when exc is only that, else None."""
        if not isinstance(exc, ImportError):
            return None
        name = getattr(exc, "name", None)
        if not isinstance(name, str) or not name:
            return None
        top = name.split(".")[0]
        if self._local_name(top):
            return None
        if isinstance(exc, ModuleNotFoundError):
            return top
        # "cannot import name X from N": N is there but lacks X (an older version)
        stdlib = getattr(sys, "stdlib_module_names", ())
        if top in stdlib or top in sys.builtin_module_names:
            return None
        return top

    def _describe(self, exc):
        if isinstance(exc, OrphanCheckFailed):
            self.user_properties.append((_REASON_PROP, str(exc)))
            return
        where = None
        if isinstance(exc, SyntaxError) and getattr(exc, "filename", None):
            where = (self._rel(exc.filename), exc.lineno)
        else:
            frames = [f for f in traceback.extract_tb(exc.__traceback__)
                      if self._keep_frame(f.filename)]
            if frames:
                where = (self._rel(frames[-1].filename), frames[-1].lineno)
        text = str(exc).strip().splitlines()
        reason = type(exc).__name__ + (": " + text[0] if text else "")
        if where:
            reason += " (%s:%s)" % where
        if len(reason) > REASON_MAX:
            reason = reason[:REASON_MAX - 3] + "..."
        unmet = self._unmet(exc)
        if unmet:
            self.user_properties.append((_UNMET_PROP, unmet))
            reason = "unmet dependency: %s" % unmet
            if where:
                reason += " (imported at %s:%s)" % where
        self.user_properties.append((_REASON_PROP, reason))

    def _format(self, exc):
        """Python's own traceback format, chained exceptions included, without
        the frames of pytest, this plugin and the import machinery, and with
        paths relative to the project root."""
        te = traceback.TracebackException.from_exception(exc)
        seen = set()
        t = te
        while t is not None and id(t) not in seen:
            seen.add(id(t))
            t.stack = traceback.StackSummary.from_list(
                [f for f in t.stack if self._keep_frame(f.filename)])
            t = t.__cause__ or (None if t.__suppress_context__ else t.__context__)
        text = "".join(te.format())
        root = self.project_root.rstrip(os.sep)
        return text.replace('"' + root + os.sep, '"').replace(root + os.sep, "")

    @staticmethod
    def _user_frames(excinfo):
        """The traceback from runtest() on, minus this file and the import
        machinery (importlib, runpy, frozen modules)."""
        here = os.path.splitext(os.path.abspath(__file__))[0]

        def keep(entry):
            p = str(entry.path)
            if p.startswith("<frozen") or os.path.splitext(p)[0] == here:
                return False
            return not (os.path.basename(p) == "runpy.py" or
                        (os.sep + "importlib" + os.sep) in p)

        tb = excinfo.traceback
        try:  # start at runtest(): drop pytest's and pluggy's frames
            tb = tb.cut(path=os.path.abspath(__file__))
        except Exception:
            pass
        return tb.filter(keep)

    def _prunetraceback(self, excinfo):
        try:
            ntb = self._user_frames(excinfo)
            if ntb:
                excinfo.traceback = ntb
        except Exception:
            pass

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, OrphanCheckFailed):
            return str(excinfo.value)
        try:
            return self._format(excinfo.value)
        except Exception:
            pass
        try:
            if not self._user_frames(excinfo):  # e.g. ModuleNotFoundError
                return "%s: %s" % (type(excinfo.value).__name__, excinfo.value)
        except Exception:
            pass
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        target = self.module_name or "run_path"
        return self._abspath(), None, "orphan %s (%s)" % (self.orphan_path, target)


def _orphan_entries():
    raw = os.environ.get(ORPHAN_ENV)
    if not raw:
        return []
    data = json.loads(raw)
    if not isinstance(data, list):
        raise ValueError("%s must be a JSON list" % ORPHAN_ENV)
    out, seen = [], set()
    for ent in data:
        if isinstance(ent, str):
            ent = {"path": ent, "module": None}
        if not isinstance(ent, dict):
            continue
        path = ent.get("path")
        if not isinstance(path, str) or not path or path in seen:
            continue
        module = ent.get("module")
        if not isinstance(module, str) or not module:
            module = None
        seen.add(path)
        out.append((_posix(path), module))
    return out


def _first_files(config, items):
    """Moves the items of the files SELF_TEST_FIRST_FILES names to the front (stable)."""
    try:
        files = json.loads(os.environ[FIRST_ENV])
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ValueError("not a JSON list of strings")
    except ValueError as exc:
        raise pytest.UsageError("selftest_pytest_plugin: bad %s: %s" % (FIRST_ENV, exc))
    root = str(config.rootpath)
    first = {os.path.normpath(os.path.join(root, f)) for f in files}

    def is_first(item):
        path = getattr(item, "path", None) or getattr(item, "fspath", None)
        return path is not None and os.path.normpath(str(path)) in first

    items[:] = [i for i in items if is_first(i)] + [i for i in items if not is_first(i)]


def _shard_filter(config, items):
    """Deselects what SELF_TEST_SHARD_FILTER gives to other shards of a split file."""
    try:
        spec = json.loads(os.environ[SHARD_ENV])
        if not isinstance(spec, dict):
            raise ValueError("not a JSON object")
        keep = {f: set(v) for f, v in (spec.get("keep") or {}).items()}
        drop = {f: set(v) for f, v in (spec.get("drop") or {}).items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise pytest.UsageError("selftest_pytest_plugin: bad %s: %s" % (SHARD_ENV, exc))
    kept, gone = [], []
    for item in items:
        f = item.nodeid.split("::", 1)[0]
        if (f in keep and item.nodeid not in keep[f]) or (f in drop and item.nodeid in drop[f]):
            gone.append(item)
        else:
            kept.append(item)
    if gone:
        config.hook.pytest_deselected(items=gone)
        items[:] = kept


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    if os.environ.get(SHARD_ENV):
        _shard_filter(config, items)
    if os.environ.get(FIRST_ENV):
        _first_files(config, items)
    if not os.environ.get(ORPHAN_ENV):
        return
    try:
        entries = _orphan_entries()
    except Exception as exc:
        raise pytest.UsageError("selftest_pytest_plugin: bad %s: %s"
                                % (ORPHAN_ENV, exc))
    root = os.environ.get(ORPHAN_ROOT_ENV) or str(config.rootpath)
    root = os.path.abspath(root)
    for path, module in entries:
        items.append(OrphanItem.from_parent(
            session, name="orphan::" + path, nodeid="orphan::" + path,
            orphan_path=path, module=module, root=root))
