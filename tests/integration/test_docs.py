# SPDX-License-Identifier: MIT
"""the configuration example and the documentation agree with the code.

- conf/selftest.conf shows every setting commented out: loading it changes nothing. `plugins`,
  `plugins --json`, `--check-config`, `discover --json` and `run --json` on a copy of the
  sample project behave exactly as with an empty configuration (the built-in defaults).
- selftest.conf(5) documents every setting the core and the bundled plugins accept, each with
  its default, in the section of its group or plugin. The names come from the sources' own
  tables (file_keys in src/core/settings.c, known_keys of each plugin), so a setting added
  there without a man page entry fails here. Every environment variable the code reads is in
  its ENVIRONMENT section.
- selftest-core(1) names every command and every long option of src/core/cli.c.
- The man pages are installed and distributed (conf/local.mk).
- README.md and docs/ stand on their own: no reference to files outside the repository or to
  sections of an outside specification. So do the sources (code, comments, tests, tools): each
  carries an SPDX-License-Identifier line, and every "docs/spec.md §N" they cite exists.
"""

import json
import os
import re
import shutil
import tempfile

import pytest
import st_helpers as sth
from st_helpers import is_eq, note, ok

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")
TOP = sth.top_srcdir()
WORK = None  # set by the work fixture


@pytest.fixture(scope="module", autouse=True)
def work():
    """The module's scratch directory and what lives in it (module globals), removed at the end."""
    global WORK
    WORK = tempfile.mkdtemp(prefix="st-docs-")
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)


EXAMPLE = os.path.join(TOP, "conf", "selftest.conf")


def read(rel):
    with open(os.path.join(TOP, rel), encoding="utf-8") as fh:
        return fh.read()


# ---- what the code accepts ----------------------------------------------------------------


def table_strings(source, table):
    """The string literals of the C array initialiser `table[] = { ... };` in source."""
    m = re.search(r"\b%s\[[^\]]*\]\s*=\s*\{(.*?)\};" % re.escape(table), source, re.S)
    if not m:
        return []
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    return re.findall(r'"([^"\\]*)"', body)


def plugin_settings(source):
    """The settings a plugin accepts: its known_keys[] table, or (runtime-host) the limits
    table limit_names[] as batch_NAME and sandbox_NAME plus the names of known_list."""
    keys = [k for k in table_strings(source, "known_keys") if k]
    limits = [k for k in table_strings(source, "limit_names") if k]
    keys += ["%s_%s" % (kind, n) for kind in ("batch", "sandbox") for n in limits]
    m = re.search(r"\bknown_list\[\]\s*=\s*((?:\s*\"[^\"]*\")+)\s*;", source)
    if m:
        text = "".join(re.findall(r'"([^"]*)"', m.group(1)))
        keys += [k.strip() for k in text.split(",") if k.strip()]
    return sorted(set(keys))


def core_settings():
    src = read("src/core/settings.c")
    m = re.search(r"\bfile_keys\[\]\s*=\s*\{(.*?)\n\};", src, re.S)
    return re.findall(r'\{\s*"([a-z_]+)"\s*,\s*K_', m.group(1)) if m else []


PLUGIN_SOURCES = {
    # man page subsection title -> source holding its known_keys
    "The host group": "plugins/runtime-host/runtime_host.c",
    "The container group": "plugins/common/engine_runtime.c",
    "The container group under runtime-swarm": "plugins/runtime-swarm/runtime_swarm.c",
    "discovery-python": "plugins/discovery-python/discovery_python.c",
    "integrator-modulemap": "plugins/integrator-modulemap/integrator_modulemap.c",
    "exporter-prometheus": "plugins/exporter-prometheus/exporter_prometheus.c",
}


def c_sources():
    out = []
    for d in ("src/core", "plugins"):
        for dirpath, dirs, files in os.walk(os.path.join(TOP, d)):
            out += [os.path.join(dirpath, f) for f in sorted(files) if f.endswith(".c")]
    return out


def env_variables():
    """Every variable the core and the bundled plugins read."""
    names = set()
    settings = read("src/core/settings.c")
    names.update(re.findall(r'ENV1\("([A-Z_]+)"\)', settings))
    names.update(s for s in table_strings(settings, "env_bools") if s)
    for path in c_sources():
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        names.update(re.findall(r'getenv\("([A-Za-z_]+)"\)', text))
        names.update(re.findall(r'\.host_env\s*=\s*"([A-Z_]+)"', text))
    return names


# ---- the man page ---------------------------------------------------------------------------


def unroff(text):
    text = re.sub(r"\\f[BIRP]", "", text)
    return text.replace("\\-", "-").replace("\\(em", "-").replace('\\"', '"')


def man_sections(path):
    """{(SH title, SS title or ''): [lines]}"""
    sections = {}
    sh = ss = ""
    for line in read(path).splitlines():
        m = re.match(r'\.SH\s+"?(.*?)"?\s*$', line)
        if m:
            sh, ss = m.group(1), ""
            continue
        m = re.match(r'\.SS\s+"?(.*?)"?\s*$', line)
        if m:
            ss = m.group(1)
            continue
        sections.setdefault((sh, ss), []).append(line)
    return sections


def entries(lines):
    """{name: paragraph} of the `.TP` / `.B name` entries of a section."""
    out = {}
    name = None
    for i, line in enumerate(lines):
        if line.startswith(".TP") and i + 1 < len(lines):
            m = re.match(r"\.BR?\s+(\S+)", lines[i + 1])
            name = unroff(m.group(1)).strip('"') if m else None
            if name:
                out[name] = []
            continue
        if name:
            out[name].append(line)
    return {k: unroff(" ".join(v)) for k, v in out.items()}


def test_man5():
    man = "docs/selftest.conf.5"
    secs = man_sections(man)
    group_titles = [t for t in PLUGIN_SOURCES if t.startswith("The ")]
    core_doc = {}
    for (sh, ss), lines in secs.items():
        if sh == "SETTINGS" and not any(ss.startswith(t) for t in group_titles):
            core_doc.update(entries(lines))
    names = core_settings()
    ok(len(names) >= 30, "the core's settings read from src/core/settings.c (%d)" % len(names))
    missing = [n for n in names if n not in core_doc]
    is_eq(missing, [], "every core setting has an entry in selftest.conf(5)")
    no_default = [n for n in names if n in core_doc and "Default" not in core_doc[n]]
    is_eq(no_default, [], "every core setting's entry states its default")
    for title, src in PLUGIN_SOURCES.items():
        keys = plugin_settings(read(src))
        ok(keys, "%s: settings read from %s (%s)" % (title, src, ", ".join(keys)))
        doc = {}
        for (sh, ss), lines in secs.items():
            if ss.startswith(title):
                doc.update(entries(lines))
        missing = [k for k in keys if k not in doc]
        is_eq(missing, [], "%s: every setting has an entry in selftest.conf(5)" % title)
        no_default = [k for k in keys if k in doc and "Default" not in doc[k]]
        is_eq(no_default, [], "%s: every entry states its default" % title)
    env_text = unroff("\n".join(secs.get(("ENVIRONMENT", ""), [])))
    env_words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", env_text))
    variables = env_variables()
    ok(len(variables) >= 25, "variables read by the code (%d)" % len(variables))
    missing = sorted(v for v in variables if v not in env_words)
    is_eq(missing, [], "every variable the code reads is in ENVIRONMENT of selftest.conf(5)")
    # a variable named next to a setting is one the code reads (no invented names)
    full = unroff(read(man))
    named = set(re.findall(r"\b((?:SELF_TEST|SANDBOX|MENACE)_[A-Z_]+)\b", full))
    invented = sorted(named - variables)
    is_eq(invented, [], "selftest.conf(5) names no variable the code does not read")


def test_man1():
    cli = read("src/core/cli.c")
    man = unroff(read("docs/selftest-core.1"))
    longs = set(re.findall(r'OPT\("([a-z][a-z-]*)"', cli))
    longs.update(re.findall(r'\{"([a-z][a-z-]*)",\s*(?:required|no)_argument', cli))
    m = re.search(r"bool_flags\[\]\s*=\s*\{(.*?)\n\};", cli, re.S)
    for name, neg in re.findall(r'\{"([a-z-]+)",\s*offsetof\([^)]*\),\s*([01])\}', m.group(1)):
        longs.add(name)
        if neg == "1":
            longs.add("no-" + name)
    ok(len(longs) >= 35, "long options read from src/core/cli.c (%d)" % len(longs))
    def documented(o):
        if re.search(r"--%s\b" % re.escape(o), man):
            return True
        base = o[3:] if o.startswith("no-") else o
        return re.search(r"--\[no-\]%s\b" % re.escape(base), man) is not None

    missing = sorted(o for o in longs if not documented(o))
    is_eq(missing, [], "selftest-core(1) names every long option of the CLI")
    commands = re.findall(r'\{"([a-z-]+)", CMD_[A-Z]+\}', cli)
    ok(len(commands) >= 6, "commands read from src/core/cli.c (%s)" % ", ".join(commands))
    missing = [c for c in commands if not re.search(r"^\.B[R]? %s\b" % re.escape(c),
                                                    man, re.M)]
    is_eq(missing, [], "selftest-core(1) has an entry per command")
    ok(re.search(r"selftest\.conf\s*\(5\)", man), "selftest-core(1) points to selftest.conf(5)")


def test_install():
    mk = read("conf/local.mk")
    ok(re.search(r"^man5_MANS\s*\+?=.*docs/selftest\.conf\.5", mk, re.M),
       "selftest.conf.5 is installed (man5_MANS)")
    ok(re.search(r"^EXTRA_DIST\s*\+=.*docs/selftest\.conf\.5", mk, re.M),
       "selftest.conf.5 is distributed (EXTRA_DIST)")


def test_self_contained():
    docs = ["README.md"] + ["docs/" + f for f in sorted(os.listdir(os.path.join(TOP, "docs")))
                            if f.endswith((".md", ".1", ".5", ".7"))]
    bad = []
    for rel in docs:
        for n, line in enumerate(read(rel).splitlines(), 1):
            if re.search(r"\.\./shared|/work/|\bspec(ification)?\b[^.\n]{0,20}§|spec section|"
                         r"\bthe spec\b", line, re.I):
                bad.append("%s:%d: %s" % (rel, n, line.strip()))
    is_eq(bad, [], "README.md and docs/ refer to nothing outside the repository")
    readme = read("README.md")
    stated = re.findall(r"Without a `plugins` setting", readme)
    is_eq(len(stated), 1, "the README states the plugins default once")
    check_sources()


# Directories whose files are data that tests read byte for byte (fixture projects, corpus
# tarballs, fuzz inputs, the sample project): neither checked for the licence line nor edited.
DATA_DIRS = {"tests/corpus", "tests/fixtures", "fuzz/corpus", "sample", ".git", "autom4te.cache"}
# Source files that carry the licence line: by suffix, plus these scripts without one.
SOURCE_SUFFIXES = (".c", ".h", ".py", ".sh", ".mk", ".m4", ".in")
SOURCE_NAMES = {"Makefile.am", "configure.ac", "autogen.sh", "tools/test-all", ".ci/run",
                "examples/integrator-example/Makefile", "conf/systemd/selftest-core-run.timer",
                "tests/fixtures/plugins/fixture_plugin.c",
                "tests/fixtures/plugins/fixture_runtime.c"}
SOURCE_DIRS = ["src", "plugins", "include", "python", "tests", "tools", "fuzz", "bench", "conf",
               "examples", "m4", ".ci"]


def source_files():
    """The source files of the tree (relative paths), generated files of a build excluded."""
    out = [n for n in ("Makefile.am", "configure.ac", "autogen.sh", "selftest-core.pc.in")
           if os.path.exists(os.path.join(TOP, n))]
    out += [n for n in SOURCE_NAMES if os.path.exists(os.path.join(TOP, n))]
    for top in SOURCE_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(TOP, top)):
            rel_dir = os.path.relpath(dirpath, TOP)
            dirnames[:] = [d for d in dirnames
                           if os.path.join(rel_dir, d) not in DATA_DIRS
                           and d not in (".deps", ".libs", "__pycache__")]
            for f in filenames:
                rel = os.path.join(rel_dir, f)
                if top == "m4" and not f.startswith("st_"):
                    continue  # libtool's macros, copied in by autogen.sh
                if f.endswith(SOURCE_SUFFIXES) or rel in SOURCE_NAMES:
                    out.append(rel)
    # generated from a .in of the same name by configure or make: the .in is checked
    return sorted(r for r in set(out) if not os.path.exists(os.path.join(TOP, r + ".in")))


def spec_sections():
    """The section numbers of docs/spec.md ("1", "1.1", "5.4", ...)."""
    return set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\. ", read("docs/spec.md"), re.M)) | \
        set(re.findall(r"^#{3} (\d+\.\d+) ", read("docs/spec.md"), re.M))


def check_sources():
    """Code, comments and tests stand on their own, carry the licence line, and cite sections
    of docs/spec.md that exist."""
    files = source_files()
    ok(len(files) > 100, "%d source files found" % len(files))
    outside, unlicensed, dangling = [], [], []
    sections = spec_sections()
    ok({"1", "1.1", "2", "3", "5.1", "5.4", "7.4", "8.2", "9.3"} <= sections,
       "docs/spec.md has its numbered sections")
    for rel in files:
        with open(os.path.join(TOP, rel), encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        if not any("SPDX-License-Identifier: MIT" in line for line in text.splitlines()[:3]):
            unlicensed.append(rel)
        if rel == "tests/integration/test_docs.py":
            continue  # the patterns below
        for n, line in enumerate(text.splitlines(), 1):
            if re.search(r"\.\./shared|/work/|(?<!docs/)\bspec(\.md)? ?§|spec section|"
                         r"\bspec(\.md)? [0-9]|\bthe spec\b(?! of\b)", line, re.I):
                outside.append("%s:%d: %s" % (rel, n, line.strip()))
            for ref in re.finditer(r"docs/spec\.md ((?:§[0-9.]*[0-9](?:, |-| and |/)?)+)", line):
                for sec in re.findall(r"§([0-9]+(?:\.[0-9]+)?)", ref.group(1)):
                    if sec not in sections:
                        dangling.append("%s:%d: §%s" % (rel, n, sec))
    is_eq(unlicensed, [], "every source file has an SPDX-License-Identifier line at its top")
    is_eq(outside, [], "no source file refers to anything outside the repository")
    is_eq(dangling, [], "every docs/spec.md section cited in the sources exists")
    ok(os.path.exists(os.path.join(TOP, "LICENSE")) and
       "MIT License" in read("LICENSE"), "LICENSE holds the MIT licence")
    am = read("Makefile.am")
    ok(re.search(r"^EXTRA_DIST\s*=.*\bLICENSE\b.*docs/spec\.md", am, re.M),
       "LICENSE and docs/spec.md are distributed (EXTRA_DIST)")


# ---- conf/selftest.conf changes nothing ------------------------------------------------------


def active_lines(text):
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0].strip()
        if code:
            out.append("%d: %s" % (n, line))
    return out


def test_example_text():
    text = read("conf/selftest.conf")
    is_eq(active_lines(text), [], "conf/selftest.conf has no active setting (all commented)")
    shown = set(re.findall(r"^#\s*([a-z_]+)\s*=", text, re.M))
    missing = [n for n in core_settings() if n not in shown]
    is_eq(missing, [], "conf/selftest.conf shows every core setting")
    host_keys = plugin_settings(read(PLUGIN_SOURCES["The host group"]))
    missing = [k for k in host_keys if k not in shown]
    is_eq(missing, [], "conf/selftest.conf shows every setting of the host group")


def project_copy(name):
    dst = os.path.join(WORK, name)
    shutil.copytree(sth.fixture("sample"), dst, ignore=shutil.ignore_patterns(
        ".pytest_cache", "__pycache__", "sandbox_data", "selftest.conf"))
    sth.make_writable(dst)
    return dst


def st(conf, argv, project):
    env = sth.base_env(dict(sth.SCRUB, SANDBOX_REPO_PATH=project))
    return sth.run([BIN, "-c", conf] + argv, env=env, cwd=project, timeout=300)


VOLATILE = {"runtime", "total_runtime", "duration", "started_at", "finished_at", "run_id",
            "core_cpu_seconds"}


def stable(value, proj):
    """The results object without timings and ids, the project copy's path replaced."""
    if isinstance(value, dict):
        return {k: stable(v, proj) for k, v in sorted(value.items()) if k not in VOLATILE}
    if isinstance(value, list):
        items = [stable(v, proj) for v in value]
        if all(isinstance(v, dict) for v in items):  # tests finish in any order under xdist
            items.sort(key=lambda v: json.dumps(v, sort_keys=True))
        return items
    if isinstance(value, str):
        value = value.replace(proj, "<project>")
        return re.sub(r"/(tmp|var/tmp)/\S*?selftest-\w+", "<work>", value)
    return value


def test_example_behaviour():
    empty = os.path.join(WORK, "empty.conf")
    with open(empty, "w") as fh:
        fh.write("# nothing: the built-in defaults\n")
    results = {}
    for label, conf in (("example", EXAMPLE), ("empty", empty)):
        proj = project_copy(label)
        r = {}
        rc, out, err = st(conf, ["plugins", "--json"], proj)
        r["plugins"] = (rc, out)
        rc, out, err = st(conf, ["--check-config"], proj)
        r["check"] = (rc, out.replace(conf, "CONF"), err)
        rc, out, err = st(conf, ["discover", "--json"], proj)
        r["discover"] = (rc, stable(json.loads(out), proj) if rc == 0 else err)
        rc, out, err = st(conf, ["run", "--json"], proj)
        last = out.strip().splitlines()[-1] if out.strip() else "null"
        r["run"] = (rc, stable(json.loads(last), proj) if rc in (0, 1) else err)
        data = os.path.join(proj, "sandbox_data")
        r["data"] = sorted(os.listdir(data)) if os.path.isdir(data) else []
        results[label] = r
        note("%s: plugins %s" % (label, [p["name"] for p in json.loads(r["plugins"][1] or "[]")]))
    ex, em = results["example"], results["empty"]
    is_eq(ex["plugins"], em["plugins"],
          "plugins --json: conf/selftest.conf loads what no configuration loads")
    names = [p["name"] for p in json.loads(em["plugins"][1] or "[]")]
    ok("discovery-python" in names and "integrator-modulemap" in names,
       "the defaults load discovery-python and integrator-modulemap", names)
    is_eq(ex["check"], em["check"], "--check-config: the same verdict and plugin count")
    is_eq(ex["discover"], em["discover"], "discover --json: the same batches and orphans")
    is_eq(ex["run"], em["run"], "run --json: the same results object (timings aside)")
    is_eq(ex["data"], em["data"], "the same files in the data dir afterwards")
