# SPDX-License-Identifier: MIT
"""The shipped alerting rules and Grafana dashboard against the real exporter.

- `promtool check rules conf/prometheus/selftest.rules.yml` succeeds;
- `promtool test rules tests/prometheus/selftest.rules.test.yml` (the rules' unit tests) passes;
- a real cycle of a passing and of a failing project writes self_test_last_exit_status (0, 1),
  self_test_consecutive_failed_runs and self_test_last_run_timestamp_seconds (the cycle's end);
- conf/grafana/selftest-core.json is valid JSON, and every metric name an alert expression, a
  dashboard query or its template variable uses is one the exporter wrote in that real run.
Skips (saying why) when promtool or the exporter plugin is missing.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest
import st_helpers as sth
from st_helpers import is_eq, ok

BIN = sth.selftest_bin()
SRC = sth.top_srcdir()
RULES = os.path.join(SRC, "conf", "prometheus", "selftest.rules.yml")
RULES_TEST = os.path.join(SRC, "tests", "prometheus", "selftest.rules.test.yml")
DASHBOARD = os.path.join(SRC, "conf", "grafana", "selftest-core.json")
IGNORE = shutil.ignore_patterns(".pytest_cache", "__pycache__", "sandbox_data", "*.pyc")

pytestmark = pytest.mark.usefixtures("selftest_bin")


def promtool():
    p = shutil.which("promtool")
    if not p:
        pytest.skip("promtool not installed (Debian package prometheus)")
    return p


# ---- metric names in PromQL ------------------------------------------------------------------

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "offset", "bool", "inf", "nan", "atan2"}


def metric_names(expr):
    """The metric names a PromQL expression selects (Grafana variables removed first)."""
    e = re.sub(r"\$\{[^}]*\}|\$\w+", "x", expr)
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', e)
    e = re.sub(r"\{[^}]*\}", " ", e)                      # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)                     # ranges and subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in KEYWORDS or re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names


def test_metric_names_parser():
    # the checker below is only as good as this parser: it must find names, and only names
    is_eq(metric_names('histogram_quantile(0.9, sum by (le, instance) (increase('
                       'self_test_run_duration_seconds_bucket{instance=~"$instance"}[1d])))'),
          {"self_test_run_duration_seconds_bucket"}, "names inside functions and aggregations")
    is_eq(metric_names("self_test_build_info unless on(job, instance) "
                       "self_test_last_run_timestamp_seconds"),
          {"self_test_build_info", "self_test_last_run_timestamp_seconds"}, "set operators")
    is_eq(metric_names("time() - selftest_typo > 2 * 86400"), {"selftest_typo"},
          "a wrong name is reported")


def family_names(text):
    """Every series name an exposition holds (a histogram's _bucket, _sum and _count too)."""
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def samples(text):
    got = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            got[key] = value
    return got


# ---- promtool --------------------------------------------------------------------------------

def test_rules_check():
    p = subprocess.run([promtool(), "check", "rules", RULES], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    out = p.stdout.decode("utf-8", "replace")
    is_eq(p.returncode, 0, "promtool check rules exits 0")
    ok("SUCCESS: 8 rules found" in out, "promtool finds the 8 alerting rules", out)


def test_rules_unit_tests():
    p = subprocess.run([promtool(), "test", "rules", RULES_TEST], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    out = p.stdout.decode("utf-8", "replace")
    is_eq(p.returncode, 0, "promtool test rules passes")
    ok("SUCCESS" in out, "promtool says SUCCESS", out)


# ---- the real exporter -----------------------------------------------------------------------

def run_cycle(work, project):
    root = os.path.join(work, project)
    shutil.copytree(sth.fixture(project), root, ignore=IGNORE)
    target = os.path.join(work, project + ".prom")
    conf = os.path.join(work, project + ".conf")
    with open(conf, "w") as fh:
        fh.write('plugins = ({ kind = "exporter"; name = "exporter-prometheus";\n'
                 '  settings = { textfile = "%s"; };\n});\n' % target)
    env = sth.base_env({"SANDBOX_REPO_PATH": root})
    before = time.time()
    rc, out, err = sth.run([BIN, "-c", conf, "run", "--retries", "0", "--workers", "1"],
                           env=env, timeout=180)
    after = time.time()
    if not os.path.isfile(target):
        if "exporter-prometheus" in err and ("unknown plugin" in err or "cannot" in err):
            pytest.skip("exporter-prometheus not built or not loadable: %s" % err[-300:])
        sth.bail_out("no textfile written (exit %r): %s" % (rc, err[-2000:]))
    with open(target) as fh:
        return rc, fh.read(), before, after


@pytest.fixture(scope="module")
def expositions():
    work = tempfile.mkdtemp(prefix="st-rules-")
    try:
        yield {name: run_cycle(work, name) for name in ("passing", "failing")}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_new_series(expositions):
    rc, text, before, after = expositions["passing"]
    is_eq(rc, 0, "the passing project exits 0")
    got = samples(text)
    is_eq(got.get("self_test_last_exit_status"), "0", "last exit status 0 after a passing run")
    is_eq(got.get("self_test_consecutive_failed_runs"), "0", "no failed run in a row")
    ts = float(got.get("self_test_last_run_timestamp_seconds", "nan"))
    ok(before <= ts <= after + 1, "last run timestamp is the cycle's end",
       "%r not in [%r, %r]" % (ts, before, after))
    rc, text, _, _ = expositions["failing"]
    is_eq(rc, 1, "the failing project exits 1")
    got = samples(text)
    is_eq(got.get("self_test_last_exit_status"), "1", "last exit status 1 after a failing run")
    is_eq(got.get("self_test_consecutive_failed_runs"), "1", "one failed run in a row")
    ok("self_test_last_success_timestamp_seconds" not in got, "no success to report")


def test_rules_use_emitted_names(expositions):
    import yaml
    emitted = family_names(expositions["passing"][1]) | family_names(expositions["failing"][1])
    with open(RULES) as fh:
        doc = yaml.safe_load(fh)
    used = set()
    for group in doc["groups"]:
        for rule in group["rules"]:
            names = metric_names(rule["expr"])
            ok(names, "%s selects a metric" % rule["alert"], rule["expr"])
            unknown = names - emitted
            ok(not unknown, "%s uses only emitted metrics" % rule["alert"],
               "not emitted: %s" % sorted(unknown))
            used |= names
    for name in ("self_test_last_exit_status", "self_test_consecutive_failed_runs",
                 "self_test_last_run_timestamp_seconds", "self_test_average_coverage",
                 "self_test_container_failures_total"):
        ok(name in used, "the rules use %s" % name)


def test_dashboard(expositions):
    emitted = family_names(expositions["passing"][1]) | family_names(expositions["failing"][1])
    with open(DASHBOARD) as fh:
        try:
            dash = json.load(fh)
        except ValueError as e:
            sth.bail_out("%s is not JSON: %s" % (DASHBOARD, e))
    ok(isinstance(dash.get("panels"), list) and dash["panels"], "the dashboard has panels")
    exprs = []
    for panel in dash.get("panels", []):
        targets = panel.get("targets") or []
        ok(targets, "panel %r has queries" % panel.get("title"))
        for t in targets:
            exprs.append(("panel %r" % panel.get("title"), t.get("expr", "")))
    for var in dash.get("templating", {}).get("list", []):
        q = var.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if var.get("type") == "query":
            m = re.fullmatch(r"label_values\((.*),\s*\w+\)", q or "")
            ok(m, "variable %s is label_values(...)" % var.get("name"), q)
            if m:
                exprs.append(("variable %s" % var.get("name"), m.group(1)))
    used = set()
    for where, expr in exprs:
        names = metric_names(expr)
        ok(names, "%s selects a metric" % where, expr)
        unknown = names - emitted
        ok(not unknown, "%s uses only emitted metrics" % where, "not emitted: %s" % sorted(unknown))
        used |= names
    # every family the exporter writes is on the dashboard somewhere
    families = {n for n in emitted if not re.search(r"_(sum|count)$", n)}
    missing = families - used
    ok(not missing, "every exported series is on the dashboard", "missing: %s" % sorted(missing))
