# SPDX-License-Identifier: MIT
"""Compares tools/pygraph-dump (the C lexer + resolver) with tools/pygraph_ref.py (Python's own
`ast`, same resolution rules) on real trees, file by file: one test per tree.

Trees: /usr/lib/python3.11 (as its own root), and the Debian packages django, sympy and networkx, each
copied under a temporary root so that their absolute imports (`from sympy.core import ...`)
resolve. A tree that is not installed is skipped (Debian: python3-django, python3-sympy,
python3-networkx).
Files Python cannot parse are excluded from the comparison (their own edges only). Files the C
side rejects on purpose (encodings listed as unsupported in src/pygraph/pyscan.h) are noted.

Environment: top_builddir (pygraph-dump), top_srcdir (pygraph_ref.py, the fixture tree),
PYGRAPH_REF_TREES (comma-separated subset of python3.11,django,sympy,networkx; the whole run
takes a minute or two of CPU because the reference parses ~3,500 files with ast),
PYGRAPH_REF_PYTHON (interpreter for the reference; default: the newest python3.1X on PATH, as
docs/python-imports.md asks, else this one).
"""
import glob
import os
import shutil
import subprocess
import sys
import time

import pytest
import st_helpers as sth

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.environ.get("top_srcdir") or os.path.join(HERE, "..", ".."))
BUILDDIR = os.path.abspath(os.environ.get("top_builddir") or SRCDIR)
DUMP = os.path.join(BUILDDIR, "tools", "pygraph-dump")
REF = os.path.join(SRCDIR, "tools", "pygraph_ref.py")


def newest_python():
    """The newest working interpreter: python3.X on PATH, /usr/bin, /usr/local/bin, pyenv."""
    candidates = [shutil.which("python3.%d" % minor) for minor in range(8, 21)]
    for pattern in ("/usr/bin/python3.*", "/usr/local/bin/python3.*",
                    os.path.join(os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv")),
                                 "versions", "3.*", "bin", "python3")):
        candidates += glob.glob(pattern)
    best, best_version = sys.executable, tuple(sys.version_info[:2])
    for exe in candidates:
        if not exe or not os.access(exe, os.X_OK) or exe.endswith("-config"):
            continue
        r = subprocess.run([exe, "-c", "import ast, sys; print(*sys.version_info[:2])"],
                           capture_output=True, text=True, check=False)
        if r.returncode != 0:
            continue
        version = tuple(int(x) for x in r.stdout.split())
        if version > best_version:
            best, best_version = exe, version
    return best


REF_PYTHON = os.environ.get("PYGRAPH_REF_PYTHON") or newest_python()
DIST = "/usr/lib/python3/dist-packages"
TREES = [
    ("python3.11", "/usr/lib/python3.11", False),
    ("django", os.path.join(DIST, "django"), True),
    ("sympy", os.path.join(DIST, "sympy"), True),
    ("networkx", os.path.join(DIST, "networkx"), True),
]
INTENDED_C_SKIPS = ("unsupported source encoding", "byte order mark",
                    "UTF-8 BOM with encoding cookie")
MAX_DIAG_FILES = 100


def parse_graph(text):
    graph = {}
    for line in text.splitlines():
        if " -> " in line:
            src, dst = line.split(" -> ", 1)
            graph.setdefault(src, set()).add(dst)
        elif line:
            graph.setdefault(line, set())
    return graph


def parse_c_errors(text):
    errors = {}
    for line in text.splitlines():
        if line.startswith("pygraph-dump: "):
            path, _, msg = line[len("pygraph-dump: "):].partition(": ")
            errors[path] = msg
    return errors


def compare(name, c_graph, c_errors, r_graph, unparsable):
    sth.is_eq(sorted(c_graph), sorted(r_graph), "%s: same %d files" % (name, len(r_graph)))
    diags, compared, noted = [], 0, []
    for src in sorted(set(c_graph) & set(r_graph)):
        if src in unparsable:
            continue
        if src in c_errors:
            if any(k in c_errors[src] for k in INTENDED_C_SKIPS):
                noted.append("%s: skipped by C on purpose: %s" % (src, c_errors[src]))
            else:
                diags.append("%s: C skipped it (%s), Python parsed it" % (src, c_errors[src]))
            continue
        compared += 1
        missing = sorted(r_graph[src] - c_graph[src])
        extra = sorted(c_graph[src] - r_graph[src])
        if missing or extra:
            diags.append("%s:%s%s" % (src, "".join("\n    C lacks  -> " + d for d in missing),
                                      "".join("\n    C extra  -> " + d for d in extra)))
    for line in noted:
        sth.note(line)
    for path in sorted(unparsable):
        sth.note("%s: Python cannot parse it: %s" % (path, unparsable[path]))
    shown = diags[:MAX_DIAG_FILES]
    if len(diags) > len(shown):
        shown.append("... and %d more files" % (len(diags) - len(shown)))
    sth.ok(not diags, "%s: edges of %d files match (%d differ)" % (name, compared, len(diags)),
           "\n".join(shown))


def start(tree_root, workdir, name):
    """Starts both builders; returns their Popen objects and output paths."""
    out = {k: os.path.join(workdir, "%s.%s" % (name, k))
           for k in ("c", "c_err", "r", "r_bad", "r_err")}
    t0 = time.monotonic()
    with open(out["c"], "w") as o, open(out["c_err"], "w") as e:
        c = subprocess.run([DUMP, tree_root], stdout=o, stderr=e, check=False)
    c_secs = time.monotonic() - t0
    with open(out["r"], "w") as o, open(out["r_err"], "w") as e:
        r = subprocess.Popen([REF_PYTHON, REF, "--unparsable", out["r_bad"], tree_root],
                             stdout=o, stderr=e)
    return c.returncode, c_secs, r, time.monotonic(), out


def read(path):
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        return fh.read()


@pytest.fixture(scope="module")
def dump():
    if not os.access(DUMP, os.X_OK):
        pytest.skip("%s is not built" % DUMP)
    return DUMP


def test_fixture_expected_agrees_with_ast(dump, workdir):
    """The hand-written EXPECTED of the fixture tree must agree with Python too."""
    fixture = os.path.join(SRCDIR, "tests", "fixtures", "pygraph")
    bad = os.path.join(workdir, "fixture.bad")
    r = subprocess.run([REF_PYTHON, REF, "--unparsable", bad, fixture],
                       capture_output=True, text=True, check=False)
    unparsable = {line.split("\t")[0] for line in read(bad).splitlines()}
    expected = parse_graph(read(os.path.join(fixture, "EXPECTED")))
    got = parse_graph(r.stdout)
    for path in unparsable:
        expected.pop(path, None)
        got.pop(path, None)
    version = subprocess.run([REF_PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=False).stdout.strip()
    sth.note("reference interpreter: %s %s" % (REF_PYTHON, version))
    new_syntax = tuple(int(x) for x in version.split(".")) >= (3, 12)
    sth.is_eq(unparsable, set() if new_syntax else {"traps312.py"},
              "fixture: unparsable files are the expected ones")
    sth.is_eq(got, expected, "fixture: the ast reference agrees with EXPECTED")


@pytest.mark.parametrize("name,path,copy", TREES, ids=[t[0] for t in TREES])
def test_tree(name, path, copy, dump, workdir):
    wanted = os.environ.get("PYGRAPH_REF_TREES")
    if wanted and name not in wanted.split(","):
        pytest.skip("not in PYGRAPH_REF_TREES")
    if not os.path.isdir(path):
        pytest.skip("%s is not installed" % path)
    work = workdir
    root = path
    if copy:
        root = os.path.join(work, name + "-root")
        shutil.copytree(path, os.path.join(root, os.path.basename(path)), symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    c_rc, c_secs, proc, t0, out = start(root, work, name)
    proc.wait()
    r_secs = time.monotonic() - t0
    sth.is_eq(c_rc, 0, "%s: pygraph-dump exits 0" % name)
    sth.is_eq(proc.returncode, 0, "%s: pygraph_ref.py exits 0" % name)
    sth.note("%s: pygraph-dump %.3f s, pygraph_ref.py %.1f s" % (name, c_secs, r_secs))
    bad = {}
    for line in read(out["r_bad"]).splitlines():
        path, _, reason = line.partition("\t")
        bad[path] = reason
    compare(name, parse_graph(read(out["c"])), parse_c_errors(read(out["c_err"])),
            parse_graph(read(out["r"])), bad)
