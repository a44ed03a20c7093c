# SPDX-License-Identifier: MIT
"""`selftest-core html [--out DIR] [--cycles N]`: the HTML report from metrics.db.

1. Without metrics.db (no cycle yet) it exits 1 saying so, and writes nothing.
2. After three real cycles of the fixture "reports" (coverage on; between the second and the
   third a flag in the project flips, so the third has a regression and a fix), the page is
   written atomically to DIR/index.html and, read with Python's html.parser:
   - is self-contained: no <script>, no <link>, <img>, <iframe>, <object>; no attribute that
     points at a URL (the SVG namespace aside); a Content-Security-Policy that forbids fetches;
   - shows the last cycle's failures with their tracebacks and captured output, the crash
     batch with its reason and the end of its output, the regression and the fix, a trend
     chart per series (passed/failed, duration, coverage) with one point per cycle, the orphan
     checks (the failing one with its reason) and integrations per cycle, and the slowest
     tests, slowest first;
   - escapes what comes from the project: the markup in test ids, tracebacks and output is
     text, never an element.
   --cycles 2 limits the trends to the two newest cycles.
3. Headless Chromium (Debian's chromium; skipped when missing) loads the page without a
   console message (a control page with console.error shows that such messages are seen)
   and takes a screenshot (a PNG of the page's size).
"""

import glob
import html.parser
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile

import pytest
import st_helpers as sth
from st_helpers import is_eq, ok

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")
IGNORE = shutil.ignore_patterns(".pytest_cache", "__pycache__", "sandbox_data", "*.pyc")
PATHS = ["tests/mixed", "tests/crash"]
WORK = None


@pytest.fixture(scope="module", autouse=True)
def work():
    global WORK
    WORK = tempfile.mkdtemp(prefix="st-html-")
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)


def selftest(root, argv, timeout=240):
    conf = os.path.join(WORK, "empty.conf")
    with open(conf, "w") as fh:
        fh.write("# defaults\n")
    tmp = os.path.join(WORK, "tmp")
    os.makedirs(tmp, exist_ok=True)
    env = sth.base_env(dict(sth.SCRUB, SANDBOX_REPO_PATH=root, TMPDIR=tmp))
    return sth.run([BIN, "-c", conf] + list(argv), env=env, cwd=root, timeout=timeout)


class Page(html.parser.HTMLParser):
    """The elements (tag, attrs, path of enclosing tags) and the text of each element id'd
    section; text is unescaped by the parser, so markup from the project shows up here."""

    VOID = {"meta", "br", "img", "link", "input", "hr", "wbr", "source", "area", "col", "embed",
            "param", "track", "base"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements = []
        self.stack = []
        self.text = {}
        self.all_text = []
        self.svg = []        # per <svg>: {"section": id, "title": ..., "polylines": [points]}

    def section(self):
        for tag, attrs in reversed(self.stack):
            if tag == "section" and attrs.get("id"):
                return attrs["id"]
        return None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.elements.append((tag, a, tuple(t for t, _ in self.stack)))
        if tag == "svg":
            self.svg.append({"section": self.section(), "label": a.get("aria-label"),
                             "polylines": []})
        if tag == "polyline" and self.svg:
            pts = (a.get("points") or "").split()
            self.svg[-1]["polylines"].append((a.get("stroke"), len(pts)))
        if tag not in self.VOID and not tag.endswith("/"):
            self.stack.append((tag, a))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID and self.stack and self.stack[-1][0] == tag:
            self.stack.pop()

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        self.all_text.append(data)
        sec = self.section()
        if sec:
            self.text.setdefault(sec, []).append(data)

    def section_text(self, sec):
        return "".join(self.text.get(sec, []))


def parse(path):
    p = Page()
    with open(path, encoding="utf-8") as fh:
        p.feed(fh.read())
    p.close()
    return p


def cycle(root, label):
    rc, out, err = selftest(root, ["run", "--workers", "2", "--retries", "0", "--coverage"] +
                            PATHS)
    ok(rc == 1, "%s: the cycle ran (exit 1: the fixture fails on purpose)" % label,
       "rc %r\n%s" % (rc, err[-2000:]))


def last_results(root):
    db = sqlite3.connect(os.path.join(root, "sandbox_data", "metrics.db"))
    try:
        row = db.execute("SELECT results FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        db.close()
    return json.loads(row[0]) if row else None


def plugin_built(name):
    for d in (os.environ.get("SELF_TEST_PLUGIN_PATH") or "").split(":"):
        for f in ("%s.la" % name, "%s.so" % name, os.path.join(name, "%s.la" % name)):
            if d and os.path.exists(os.path.join(d, f)):
                return True
    return False


def chromium_bin():
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    return None


def chromium(url, shot, profile):
    """Loads url headless, screenshots it; (rc, the console lines it logged, stderr)."""
    argv = [chromium_bin(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0",
            "--window-size=1280,2400", "--screenshot=" + shot, url]
    rc, out, err = sth.run(argv, timeout=180, env=sth.base_env({"HOME": profile}))
    console = [l for l in err.splitlines() if re.search(r":CONSOLE[:(]", l)]
    return rc, console, err


def test_no_metrics_db():
    root = os.path.join(WORK, "fresh")
    shutil.copytree(sth.fixture("reports"), root, ignore=IGNORE)
    sth.make_writable(root)
    out = os.path.join(WORK, "fresh-out")
    rc, so, se = selftest(root, ["html", "--out", out])
    is_eq(rc, 1, "no metrics.db: exit 1")
    ok("metrics.db" in se and "no cycle has run yet" in se,
       "no metrics.db: the message names the file and says why", se)
    ok(not os.path.exists(out), "no metrics.db: nothing written")
    rc, so, se = selftest(root, ["html", "--cycles", "0"])
    is_eq(rc, 2, "--cycles 0 is a usage error")
    ok("--cycles" in se, "--cycles 0: the message names the option", se)


def test_html_report():
    root = os.path.join(WORK, "proj")
    shutil.copytree(sth.fixture("reports"), root, ignore=IGNORE)
    sth.make_writable(root)
    cycle(root, "cycle 1")
    cycle(root, "cycle 2")
    src = os.path.join(root, "tests", "mixed", "test_mixed.py")
    text = open(src).read()
    ok("FLIP = False" in text, "the fixture has the flag to flip")
    with open(src, "w") as fh:
        fh.write(text.replace("FLIP = False", "FLIP = True"))
    cycle(root, "cycle 3")
    res = last_results(root)
    if not ok(res is not None, "metrics.db holds the cycles"):
        return
    is_eq((res["regressions"], res["fixed"]),
          (["tests/mixed/test_mixed.py::test_flip"],
           ["tests/mixed/test_mixed.py::test_fixed_later"]),
          "the third cycle has a regression and a fix (the fixture works)")

    out = os.path.join(WORK, "out")
    rc, so, se = selftest(root, ["html", "--out", out, "--cycles", "10"])
    page_file = os.path.join(out, "index.html")
    is_eq(rc, 0, "html: exit 0")
    is_eq(so.strip(), page_file, "html: prints the file it wrote")
    is_eq(sorted(os.listdir(out)), ["index.html"], "html: no temp file left beside it")
    if not ok(os.path.isfile(page_file), "html: DIR/index.html written", se):
        return
    raw = open(page_file, encoding="utf-8").read()
    p = parse(page_file)

    # self-contained
    tags = [t for t, _, _ in p.elements]
    for bad in ("script", "link", "img", "iframe", "object", "embed", "base"):
        ok(bad not in tags, "self-contained: no <%s>" % bad)
    urls = [(t, k, v) for t, a, _ in p.elements for k, v in a.items()
            if v and "://" in v and not (t == "svg" and k == "xmlns")]
    is_eq(urls, [], "self-contained: no attribute points at a URL")
    ok(not re.search(r"url\(|@import", raw), "self-contained: the CSS fetches nothing")
    csp = [a.get("content") for t, a, _ in p.elements
           if t == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy"]
    ok(csp and "default-src 'none'" in csp[0], "a CSP that forbids fetches", csp)

    # sections
    for sec in ("summary", "failures", "changes", "trends", "orphans", "slowest"):
        ok(sec in p.text, "section %s is there" % sec, sorted(p.text))
    fail = p.section_text("failures")
    ok("tests/mixed/test_mixed.py::test_fail_with_output" in fail and "assert 4 == 5" in fail,
       "failures: the failing test with its traceback", fail[:3000])
    ok('stdout of <test> & "quotes"' in fail and "stderr line <b>bold</b>" in fail,
       "failures: its captured stdout and stderr, as text", fail[:3000])
    ok("<script>alert('x')</script>" in fail,
       "failures: markup from the project is text (the parser unescaped it)")
    ok("tests/mixed/test_mixed.py::test_setup_error" in fail and "setup <broke> & stopped" in fail,
       "failures: the setup error")
    ok("tests/crash" in fail and "while running tests/crash/test_crash.py::test_crash" in fail and
       "tests/crash/test_crash.py ." in fail,
       "failures: the crash batch with its reason and the end of its output", fail[-3000:])
    for t, a, path in p.elements:
        if t in ("b", "script") and "pre" in path:
            ok(False, "no element inside a <pre> (escaped output)", (t, a, path))
    ch = p.section_text("changes")
    ok("test_flip" in ch and "test_fixed_later" in ch, "changes: the regression and the fix", ch)
    # trends: one point per cycle
    trend = [s for s in p.svg if s["section"] == "trends"]
    is_eq(len(trend), 3, "trends: three charts (tests, duration, coverage)")
    for s in trend:
        for stroke, npts in s["polylines"]:
            is_eq(npts, 3, "trends: %s: %s has a point per cycle" % (s["label"], stroke))
    is_eq([len(s["polylines"]) for s in trend], [2, 1, 1],
          "trends: passed and failed, duration, coverage")
    orph = [s for s in p.svg if s["section"] == "orphans"]
    ok(len(orph) == 1 and len(orph[0]["polylines"]) == 3 and
       all(n == 3 for _, n in orph[0]["polylines"]),
       "orphans: checked, failed and integrated per cycle", orph)
    ot = p.section_text("orphans")
    if not plugin_built("discovery-python"):
        sth.skip("orphans: the failed check", "discovery-python is not built (no orphan checks)")
    else:
        ok("pkg/orphan_bad.py" in ot and "RuntimeError: orphan_bad <refuses> & fails" in ot,
           "orphans: the failed check with its reason", ot[:2000])
    # slowest: the slowest test of the last cycle comes first
    slow = p.section_text("slowest")
    tests = sorted(res["tests"], key=lambda t: (-t["duration"], t["nodeid"]))
    first = slow.find(tests[0]["nodeid"])
    last = slow.find(tests[-1]["nodeid"])
    ok(first >= 0 and (last < 0 or first <= last),
       "slowest: the slowest test first (%s)" % tests[0]["nodeid"], slow[:1500])
    ok("test_param[a<b]" in slow, "slowest: parametrised ids with markup are text")

    # --cycles 2
    out2 = os.path.join(WORK, "out2")
    rc, so, se = selftest(root, ["html", "--out", out2, "--cycles", "2"])
    p2 = parse(os.path.join(out2, "index.html")) if rc == 0 else Page()
    trend2 = [s for s in p2.svg if s["section"] == "trends"]
    ok(trend2 and all(n == 2 for s in trend2 for _, n in s["polylines"]),
       "--cycles 2: the trends have two points", trend2)

    # 3. headless Chromium
    if not chromium_bin():
        sth.skip("chromium", "chromium is not installed (Debian package chromium)")
        return
    ctl = os.path.join(WORK, "control.html")
    with open(ctl, "w") as fh:
        fh.write('<!DOCTYPE html><html><body><p>control</p>'
                 '<script>console.error("selftest-control-error")</script></body></html>')
    rc, console, err = chromium("file://" + ctl, os.path.join(WORK, "control.png"),
                                os.path.join(WORK, "chromium-control"))
    ok(any("selftest-control-error" in l for l in console),
       "chromium: a console.error of a control page is seen", err[-3000:])
    shot = os.path.join(WORK, "report.png")
    rc, console, err = chromium("file://" + page_file, shot, os.path.join(WORK, "chromium-rep"))
    is_eq(console, [], "chromium: the report logs nothing to the console")
    ok(os.path.isfile(shot) and os.path.getsize(shot) > 10000 and
       open(shot, "rb").read(8) == b"\x89PNG\r\n\x1a\n",
       "chromium: a screenshot (PNG) of the report", err[-3000:])
