# SPDX-License-Identifier: MIT
"""`selftest-core discover` on real projects nobody here wrote (tests/corpus, issue 9): each
snapshot is unpacked into a scratch directory and discover's orphans, and the files it keeps out
of the orphans by rule (discover -v, --json "excluded"), must equal tests/corpus/NAME.orphans,
whose every entry says why. The tarballs are never modified."""
import json
import os
import tarfile

import pytest
import st_helpers as t

CORPUS = os.path.join(t.top_srcdir(), "tests", "corpus")
# name, extra environment. cachetools is a src layout: SELF_TEST_PYTHONPATH=src is what its
# users would set (the pythonpath setting); the import graph finds src/ without it too, so the
# expectation holds either way.
PROJECTS = [("toolz", {}), ("cachetools", {"SELF_TEST_PYTHONPATH": "src"}), ("simplejson", {})]


def expectations(name):
    """{"orphan": {path: why}, "excluded": {path: why}} from NAME.orphans."""
    want = {"orphan": {}, "excluded": {}}
    with open(os.path.join(CORPUS, name + ".orphans")) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            kind, _, rest = line.partition(" ")
            path, sep, why = rest.partition(": ")
            if kind not in want or not sep or not why.strip():
                t.bail_out("%s.orphans:%d: expected 'orphan|excluded PATH: why'" % (name, n))
            want[kind][path] = why
    return want


def unpack(name, dest):
    with tarfile.open(os.path.join(CORPUS, name + ".tar.gz")) as tf:
        for m in tf.getmembers():
            if m.name.startswith("/") or ".." in m.name.split("/"):
                t.bail_out("%s.tar.gz: unsafe member %s" % (name, m.name))
        tf.extractall(dest)
    # the snapshot is one directory named after the project
    root = os.path.join(dest, name)
    return root if os.path.isdir(root) else dest


pytestmark = pytest.mark.usefixtures("selftest_bin")


@pytest.mark.parametrize("name,extra", PROJECTS, ids=[p[0] for p in PROJECTS])
def test_corpus_discover(name, extra, workdir):
    want = expectations(name)
    tmp = workdir
    root = unpack(name, tmp)
    conf = os.path.join(tmp, "selftest.conf")
    with open(conf, "w") as f:
        f.write('project_root = "%s";\ndata_dir = "%s";\npython = "%s";\n'
                % (root, os.path.join(tmp, "data"), t.PYTHON))
    env = t.base_env(dict({"SELF_TEST_ORPHAN_EXCLUDE": None,
                           "SELF_TEST_DISABLE_ORPHANS": None,
                           "SANDBOX_DISABLE_ORPHANS": None}, **extra))
    rc, out, err = t.run([t.selftest_bin(), "-c", conf, "discover", "--json"], env=env,
                         timeout=120, cwd=root)
    t.is_eq(rc, 0, "%s: discover exits 0" % name)
    try:
        res = json.loads(out)
    except ValueError:
        t.ok(False, "%s: discover --json prints one JSON object" % name, out + err)
        return
    t.is_eq(sorted(res.get("orphans", [])), sorted(want["orphan"]),
            "%s: the orphans are exactly those of %s.orphans" % (name, name))
    excluded = res.get("excluded", {})
    t.is_eq(sorted(excluded), sorted(want["excluded"]),
            "%s: the files kept out by rule are exactly those of %s.orphans"
            % (name, name))
    for path, rule in sorted(excluded.items()):
        kind = "test code" if "test code" in want["excluded"].get(path, "") else \
            "orphan_exclude"
        t.ok(rule.startswith(kind), "%s: %s is excluded by %s" % (name, path, kind),
             "rule: %s" % rule)
    # the human form: discover -v names the rule of each excluded file
    rc, out, err = t.run([t.selftest_bin(), "-c", conf, "discover", "-v"], env=env,
                         timeout=120, cwd=root)
    shown = {}
    for line in out.splitlines():
        words = line.split(None, 3)
        if len(words) == 4 and words[0] == "excluded":
            shown[words[2]] = words[3]
    t.is_eq(sorted(shown), sorted(want["excluded"]),
            "%s: discover -v lists each excluded file with its rule" % name)
    t.ok(all(r.startswith("(") and r.endswith(")") and len(r) > 2
             for r in shown.values()),
         "%s: each with the rule that excluded it" % name, repr(shown))
