# SPDX-License-Identifier: MIT
"""runtime-swarm against a real swarm: the private dockerd of tools/engines/engines.sh in swarm
mode as the manager and a second dockerd in a network namespace joined as a worker
(ST_ENGINES=swarm2; a single-node swarm, ST_ENGINES=swarm, when that cannot start), torn down at
the end. Set ST_ENGINES_DIR to an `engines.sh up` whose env has SWARM_SOCK to reuse it (left
running).
Without root, or when the engine cannot start, everything is skipped.

Checked: the fixture projects give the same counts, exit status and reasons as on the host
(also on the worker node, placed there by a constraint, and spread over both nodes),
with transfer = "bind" and transfer = "image", the results coming back only through the
service's logs (the batch's output dir is not mounted); failure, timeout and SIGTERM mid-run
leave nothing on the engine (no service, no task container, no project image); placement
constraints and resource limits reach the task; `cleanup` removes a dead owner's services and the
task containers Docker leaves behind a removed job, and keeps a live owner's; the corpus projects
(toolz and simplejson) give the host's counts and
coverage.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import urllib.parse
import uuid

import pytest
import st_helpers as sth
from st_helpers import SLEEP_TEST, counts_of, is_eq, label_filter, ok

import test_containers as tc  # its api(): the Engine API over a unix socket

BIN = sth.selftest_bin()
pytestmark = pytest.mark.usefixtures("selftest_bin")

SCRIPT = os.path.join(sth.top_srcdir(), "tools", "engines", "engines.sh")
FIXTURES = sth.RUNTIME_FIXTURES
SOCK = IMAGE = WORK = WORKER = None  # WORKER: a worker node's engine (ST_ENGINES=swarm2)
WHY_ONE_NODE = ["ST_ENGINES_DIR's swarm has one node"]


def api(method, path, body=None, timeout=60, raw=False):
    return tc.api(SOCK, method, "/v1.41" + path, body=body, timeout=timeout, raw=raw)


def leftovers():
    """What a run may have left on the engine: services, task containers, project images."""
    st, services = api("GET", "/services")
    st2, containers = api("GET", "/containers/json?all=1&filters=" +
                          label_filter("com.docker.swarm.service.id"))
    st3, images = api("GET", "/images/json")
    if WORKER:
        st4, wcs = tc.api(WORKER, "GET", "/v1.41/containers/json?all=1")
        if st4 == 200:
            containers = (containers if st2 == 200 else []) + wcs
        else:
            containers, st2 = ["worker list failed %r" % st4], 200
    return {
        "services": [s.get("Spec", {}).get("Name") for s in services] if st == 200
        else ["list failed %r" % st],
        "task containers": [c.get("Names") for c in containers] if st2 == 200
        else ["list failed %r" % st2],
        "project images": [t for i in (images if st3 == 200 else []) for t in
                           (i.get("RepoTags") or []) if t.startswith("selftest-project")] +
        [i["Id"][:19] for i in (images if st3 == 200 else [])
         if (i.get("Labels") or {}).get("menace_self_test") == "1"],
    }


NOTHING = {"services": [], "task containers": [], "project images": []}


def wait_nothing_left(timeout=20):
    """The engine's state once it is clean (or the timeout passed): a removed service's task
    container goes asynchronously."""
    until = time.time() + timeout
    while True:
        left = leftovers()
        if left == NOTHING or time.time() > until:
            return left
        time.sleep(0.25)


CONF_BODY = """# written by test_swarm.py
runtime = "%s";
container = {
  image = "%s";
%s};
"""


def write_conf(name, runtime="swarm", extra=""):
    path = os.path.join(WORK, name)
    with open(path, "w") as fh:
        fh.write(CONF_BODY % (runtime, IMAGE, extra))
    return path


def copy_fixture(name):
    return sth.copy_fixture(WORK, name)


def write_project(files):
    return sth.write_project(WORK, files)


def selftest(conf, root, args, env=None, timeout=240, command="run"):
    extra = {"SANDBOX_REPO_PATH": root, "DOCKER_HOST": "unix://" + SOCK,
             "CONTAINER_HOST": None, "MENACE_OFFLINE_INSTALL": None}
    extra.update(env or {})
    argv = [BIN, "-v", "-c", conf, command] + list(args)
    return sth.run_events(argv, sth.base_env(extra), root, timeout)


def diag(r):
    return "rc=%r\nstderr: %s\nstdout tail: %s" % (r["rc"], r["err"][-2000:], r["out"][-800:])


# --------------------------------------------------------------------------------------------
# fixtures: host vs swarm (bind and image)

def check_fixture(name, transfer, mode=None):
    args = ["--json", "--retries", "0", "--workers", "1"]
    if name == "timeout":
        args += ["--timeout", "3"]
    hroot = copy_fixture(name)
    host = selftest(HOST_CONF, hroot, args + [hroot])
    if not ok(host["results"] is not None, "%s: host run gives results" % name, diag(host)):
        return
    root = copy_fixture(name)
    extra = '  transfer = "%s";\n' % transfer
    if transfer == "image":
        # the project image is committed on the manager; without a registry only its node has it
        extra += '  constraints = ["node.role==manager"];\n'
    if mode:
        # a replicated job: Docker before 23.0 leaves a removed job's task container, which the
        # runtime removes itself on the manager's node (the node it is constrained to here)
        extra += '  service_mode = "%s";\n  constraints = ["node.role==manager"];\n' % mode
    conf = write_conf("swarm-%s-%s.conf" % (transfer, mode or "auto"), extra=extra)
    r = selftest(conf, root, args + [root])
    label = "%s under swarm (transfer %s, service_mode %s)" % (name, transfer, mode or "auto")
    if not ok(r["results"] is not None, "%s: results object" % label, diag(r)):
        return
    b, hb = sth.check_like_host(label, name, r, host, "swarm")
    if name == "timeout":
        ok(r["elapsed"] < 40, "%s: the run ends soon after the 3 s timeout" % label,
           "took %.1f s" % r["elapsed"])
        is_eq(b.get("running_tests"), hb.get("running_tests"),
              "%s: the test that was running at the timeout is named (its frames came back "
              "from the logs of a task that was still running)" % label)
    ok(re.fullmatch(r"selftest_[0-9a-f]{24}", b.get("container") or ""),
       "%s: the batch records its service's name" % label, repr(b.get("container")))
    if b.get("ok") is False:
        tail = sth.check_log_tail(label, name, b, "the service's logs")
        ok("\x1eselftest-" not in tail, "%s: the result frames are cut out of the output" % label,
           repr(tail[-600:]))
    is_eq(wait_nothing_left(), NOTHING, "%s: nothing left on the engine" % label)


# --------------------------------------------------------------------------------------------
# several paths: one service each, run side by side

def check_parallel():
    args = ["--json", "--retries", "0", "--workers", "3", "a", "b", "c"]
    host = selftest(HOST_CONF, copy_fixture("split"), args)
    r = selftest(write_conf("swarm-bind.conf", extra='  transfer = "bind";\n'),
                 copy_fixture("split"), args)
    if not ok(host["results"] and r["results"], "split a b c: both runs give results",
              diag(host) + "\n" + diag(r)):
        return
    is_eq(counts_of(r["results"]), counts_of(host["results"]),
          "split a b c under swarm: the host's counts")
    names = sorted(b.get("container") or "" for b in r["results"]["suite_metrics"].values())
    ok(len(set(names)) == 3 and all(re.fullmatch(r"selftest_[0-9a-f]{24}", n) for n in names),
       "split a b c under swarm: one service per test path", repr(names))
    is_eq(wait_nothing_left(), NOTHING, "split a b c under swarm: nothing left")


# --------------------------------------------------------------------------------------------
# shards: each shard of a path is a service of its own

def check_shards():
    args = ["--json", "--retries", "0", "--workers", "3"]
    host = selftest(HOST_CONF, copy_fixture("split"), args)
    conf = write_conf("swarm-shards.conf", extra="")
    with open(conf, "a") as fh:
        fh.write("shards = 3;\n")
    r = selftest(conf, copy_fixture("split"), args)
    if not ok(host["results"] and r["results"], "shards: both runs give results",
              diag(host) + "\n" + diag(r)):
        return
    is_eq(counts_of(r["results"]), counts_of(host["results"]),
          "shards = 3 under swarm: the host's counts")
    names = sorted((b.get("batch") or {}).get("container") or "" for b in r.get("batches", []))
    shards = sorted(str(b.get("shard")) for b in r.get("batches", []))
    ok(len(set(names)) == 3 and all(re.fullmatch(r"selftest_[0-9a-f]{24}", n) for n in names)
       and shards == ["1/3", "2/3", "3/3"], "shards = 3 under swarm: one service per shard",
       repr(list(zip(shards, names))))
    is_eq(wait_nothing_left(), NOTHING, "shards under swarm: nothing left")


# --------------------------------------------------------------------------------------------
# two nodes (ST_ENGINES=swarm2): placement on the worker, spread, nothing left on either

def creates(sock, since):
    """Names of the containers created on the engine at sock since (UNIX s)."""
    q = "since=%d&until=%d&filters=%s" % (since, int(time.time()) + 1, urllib.parse.quote(
        json.dumps({"type": ["container"], "event": ["create"]})))
    st, data = tc.api(sock, "GET", "/v1.41/events?" + q, raw=True, timeout=30)
    names = []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            names.append(json.loads(line)["Actor"]["Attributes"]["name"])
        except (ValueError, KeyError, TypeError):
            pass
    return [n for n in names if n.startswith("selftest_")]


def check_two_nodes():
    if not WORKER:
        sth.skip("swarm: two nodes", "the swarm has one node: %s" % WHY_ONE_NODE[0])
        return
    args = ["--json", "--retries", "0", "--workers", "1"]
    host = selftest(HOST_CONF, copy_fixture("failing"), args)
    time.sleep(1.1)  # the events API counts whole seconds
    t0 = int(time.time())
    conf = write_conf("swarm-worker.conf", extra='  service_mode = "replicated";\n'
                      '  constraints = ["node.role==worker"];\n')
    r = selftest(conf, copy_fixture("failing"), args)
    ok(r["results"] and counts_of(r["results"]) == counts_of(host["results"]) and
       r["rc"] == host["rc"], "two nodes: constrained to the worker, the host's counts and exit "
       "status (the logs came through the manager)", diag(r))
    on_worker, on_manager = creates(WORKER, t0), creates(SOCK, t0)
    ok(on_worker and not on_manager, "two nodes: node.role==worker placed every task on the "
       "worker", "worker %r, manager %r" % (on_worker, on_manager))
    is_eq(wait_nothing_left(), NOTHING, "two nodes, replicated: nothing left on either engine")
    # three services side by side, no constraint: the scheduler uses both nodes
    args = ["--json", "--retries", "0", "--workers", "3", "a", "b", "c"]
    host = selftest(HOST_CONF, copy_fixture("split"), args)
    time.sleep(1.1)
    t0 = int(time.time())
    r = selftest(write_conf("swarm-spread.conf", extra='  service_mode = "replicated";\n'),
                 copy_fixture("split"), args)
    ok(r["results"] and counts_of(r["results"]) == counts_of(host["results"]),
       "two nodes: split a b c gives the host's counts", diag(r))
    on_worker, on_manager = creates(WORKER, t0), creates(SOCK, t0)
    ok(on_worker and on_manager, "two nodes: the tasks ran on both nodes",
       "worker %r, manager %r" % (on_worker, on_manager))
    is_eq(wait_nothing_left(), NOTHING, "two nodes, spread: nothing left on either engine")


# --------------------------------------------------------------------------------------------
# the results travel only through the logs

OUTDIR_TEST = '''import os

def test_results_not_written_here():
    # the host's output dir is not mounted: the plugin sends its lines on stdout instead
    assert not os.path.exists(os.environ["SELF_TEST_RESULTS_FILE"])
    out = os.path.dirname(os.environ["SELF_TEST_RESULTS_FILE"])
    assert "results.jsonl" not in os.listdir(out)

def test_frame_token_set():
    assert os.environ.get("SELF_TEST_RESULTS_FRAME", "").isalnum()
'''


def check_no_shared_output():
    root = write_project({"tests/test_outdir.py": OUTDIR_TEST})
    r = selftest(write_conf("swarm-bind.conf", extra='  transfer = "bind";\n'), root,
                 ["--json", "--retries", "0"])
    ok(r["rc"] == 0 and r["results"] and r["results"]["passed"] == 2,
       "swarm: no results file is written in the task, the results come back anyway",
       diag(r) + json.dumps((r["results"] or {}).get("tests"))[:1500])


# --------------------------------------------------------------------------------------------
# orphan checks (both modes) give the host's verdicts

ORPHANS = {
    "tests/test_a.py": "def test_a():\n    assert True\n",
    "pkg/__init__.py": "",
    "pkg/lonely.py": "X = 1\n",
    "pkg/broken.py": "raise RuntimeError('boom')\n",
    "pkg/needs.py": "import numpy_is_not_here_selftest\n",
}
ORPHAN_KEYS = ("orphan_total", "orphan_failed", "orphan_unmet", "orphan_passed_modules",
               "orphan_failed_modules", "orphan_unmet_modules")


def check_orphans(mode):
    args = ["--json", "--retries", "0", "--include-orphans"]
    got = {}
    for runtime in ("host", "swarm"):
        root = write_project(ORPHANS)
        conf = os.path.join(WORK, "orphans-%s-%s.conf" % (runtime, mode))
        with open(conf, "w") as fh:
            fh.write((CONF_BODY % (runtime, IMAGE, "") if runtime == "swarm" else
                      'runtime = "host";\n') + 'orphan_check_mode = "%s";\n' % mode)
        got[runtime] = selftest(conf, root, args)
    h, r = got["host"]["results"], got["swarm"]["results"]
    if not ok(h and r, "orphans (%s mode): both runs give results" % mode,
              diag(got["host"]) + "\n" + diag(got["swarm"])):
        return
    ok(h.get("orphan_passed_modules") == ["pkg/lonely.py"] and
       h.get("orphan_failed_modules") == ["pkg/broken.py"],
       "orphans (%s mode): on the host one import check passes, one fails" % mode,
       repr({k: h.get(k) for k in ORPHAN_KEYS}))
    is_eq({k: r.get(k) for k in ORPHAN_KEYS}, {k: h.get(k) for k in ORPHAN_KEYS},
          "orphans (%s mode) under swarm: the host's verdicts (passed, failed, unmet)" % mode)
    is_eq(wait_nothing_left(), NOTHING, "orphans (%s mode) under swarm: nothing left" % mode)


# --------------------------------------------------------------------------------------------
# limits and placement reach the task

LIMITS_TEST = sth.LIMITS_READ + '''
def test_limits():
    mem = read("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert mem == str(96 * 1024 * 1024), mem
    pids = read("/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max")
    assert pids == "64", pids
    quota = read("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
                 "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us")
    assert quota is not None and quota.split()[0] in ("50000",), quota
'''


def check_limits_and_placement():
    conf = write_conf("swarm-limits.conf", extra='  memory = "96m";\n  pids_limit = 64;\n'
                      '  cpus = 0.5;\n  constraints = ["node.role==manager"];\n')
    root = write_project({"tests/test_limits.py": LIMITS_TEST})
    r = selftest(conf, root, ["--json", "--retries", "0"])
    ok(r["rc"] == 0 and r["results"] and r["results"]["passed"] == 1,
       "swarm: memory, pids and cpu limits reach the task; a constraint the node meets runs it",
       diag(r) + json.dumps((r["results"] or {}).get("tests"))[:1500])
    conf = write_conf("swarm-nowhere.conf",
                      extra='  constraints = ["node.labels.selftest_nowhere==yes"];\n')
    root = copy_fixture("passing")
    r = selftest(conf, root, ["--json", "--retries", "0"])
    is_eq(r["rc"], 3, "swarm: a constraint no node meets: exit 3 (infrastructure)")
    ok(re.search(r"no swarm node can run service selftest_[0-9a-f]{24}: .*no suitable node",
                 r["err"]), "swarm: the error says no node can run the service, and why",
       diag(r))
    is_eq(wait_nothing_left(), NOTHING, "swarm: unplaceable service: nothing left")


# --------------------------------------------------------------------------------------------
# network: tasks join a named swarm network (an internal overlay), an unknown one is refused

NET_TEST = '''import os

def test_interfaces():
    names = sorted(os.listdir("/sys/class/net"))
    assert len([n for n in names if n != "lo"]) >= 1, names
'''


def check_network():
    name = "selftest-net-%s" % uuid.uuid4().hex[:8]
    st, body = api("POST", "/networks/create", {"Name": name, "Driver": "overlay",
                                                "Internal": True})
    if not ok(st == 201, "swarm: an internal overlay network created", repr(body)):
        return
    try:
        root = write_project({"tests/test_net.py": NET_TEST})
        r = selftest(write_conf("swarm-net.conf", extra='  network = "%s";\n' % name), root,
                     ["--json", "--retries", "0"])
        ok(r["rc"] == 0 and r["results"] and r["results"]["passed"] == 1,
           "swarm: network = an internal overlay: the task joins it", diag(r))
        r = selftest(write_conf("swarm-nonet.conf", extra='  network = "no-such-net-x";\n'),
                     root, ["--json", "--retries", "0"])
        ok(r["rc"] == 3 and "no-such-net-x" in r["err"],
           "swarm: an unknown network: exit 3, the manager's refusal names it", diag(r))
        is_eq(wait_nothing_left(), NOTHING, "swarm: network checks: nothing left")
    finally:
        until = time.time() + 30
        while api("DELETE", "/networks/%s" % name)[0] not in (204, 404) and \
                time.time() < until:
            time.sleep(0.5)  # the removed task may still hold it a moment


# --------------------------------------------------------------------------------------------
# bad input: an image no node has, a manager that is not there

def check_bad_input():
    conf = os.path.join(WORK, "swarm-noimage.conf")
    with open(conf, "w") as fh:
        fh.write('runtime = "swarm";\ncontainer_fallback = "fail";\n'
                 'container = {\n  image = "selftest-no-such-image:zz";\n};\n')
    root = copy_fixture("passing")
    r = selftest(conf, root, ["--json", "--retries", "0"])
    is_eq(r["rc"], 3, "swarm: an image no node has: exit 3")
    ok(re.search(r'service selftest_[0-9a-f]{24} ended "rejected": .*selftest-no-such-image',
                 r["err"]), "swarm: the error names the rejected task and the image", diag(r))
    is_eq(wait_nothing_left(), NOTHING, "swarm: rejected task: nothing left")
    gone = os.path.join(WORK, "no-manager.sock")
    r = selftest(conf, root, ["--json", "--retries", "0"], env={"DOCKER_HOST": "unix://" + gone})
    is_eq(r["rc"], 3, "swarm: no manager at the address: exit 3")
    ok("no socket at that path" in r["err"] and "DOCKER_HOST" in r["err"],
       "swarm: the error names the address and where it came from", diag(r))


# --------------------------------------------------------------------------------------------
# SIGTERM mid-run

def running_service(timeout=60):
    until = time.time() + timeout
    while time.time() < until:
        st, tasks = api("GET", "/tasks")
        for t in tasks if st == 200 else []:
            if (t.get("Status") or {}).get("State") == "running":
                return t.get("ServiceID")
        time.sleep(0.2)
    return None


def check_sigterm():
    root = write_project({"tests/test_sleep.py": SLEEP_TEST})
    conf = write_conf("swarm-bind.conf", extra='  transfer = "bind";\n')
    extra = {"SANDBOX_REPO_PATH": root, "DOCKER_HOST": "unix://" + SOCK}
    t0 = time.monotonic()
    p = subprocess.Popen([BIN, "-c", conf, "run", "--json", "--retries", "0", "--timeout",
                          "300"], env=sth.base_env(extra), cwd=root, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    svc = running_service()
    p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        sth.kill_group(p)
        out, err = p.communicate()
    elapsed = time.monotonic() - t0
    ok(svc is not None, "swarm: the sleeping batch's task is seen running")
    ok(p.returncode is not None and elapsed < 60,
       "swarm: SIGTERM during a batch: the run stops soon (rc %r, %.1f s)"
       % (p.returncode, elapsed), err.decode()[-1500:])
    is_eq(wait_nothing_left(), NOTHING, "swarm: SIGTERM: the service and its task's container "
          "are removed")


# --------------------------------------------------------------------------------------------
# cleanup

def make_service(labels, cmd=("python3", "-c", "import time; time.sleep(300)")):
    st, body = api("POST", "/services/create", {
        "Name": "selftest_%s" % uuid.uuid4().hex[:24], "Labels": labels,
        "TaskTemplate": {"ContainerSpec": {"Image": IMAGE, "Command": list(cmd),
                                           "Labels": labels},
                         "RestartPolicy": {"Condition": "none"},
                         # cleanup covers the manager's node (docs/scale-out.md)
                         "Placement": {"Constraints": ["node.role==manager"]}},
        "Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}})
    return body.get("ID") if st == 201 and isinstance(body, dict) else None


def task_containers():
    """{service id: [container ids]} of the swarm's task containers on the engine."""
    st, cs = api("GET", "/containers/json?all=1&filters=" +
                 label_filter("com.docker.swarm.service.id"))
    out = {}
    for c in cs if st == 200 else []:
        out.setdefault((c.get("Labels") or {}).get("com.docker.swarm.service.id"),
                       []).append(c["Id"])
    return out


def check_cleanup():
    labels = sth.owner_labels()
    ids = {k: make_service(labels[k]) for k in ("dead", "live", "foreign_expired")}
    # a job service of a live owner that ran and was removed by hand: Docker leaves its task's
    # container (moby issue 42789); cleanup removes it, its service being gone
    orphan = make_service(labels["live"], cmd=("python3", "-c", "pass"))
    until = time.time() + 60
    while orphan and time.time() < until:
        st, tasks = api("GET", "/tasks?filters=" + urllib.parse.quote(
            json.dumps({"service": [orphan]})))
        if st == 200 and tasks and tasks[0]["Status"]["State"] == "complete":
            break
        time.sleep(0.2)
    api("DELETE", "/services/%s" % orphan)
    # every service's task has its container (running, or exited for the orphan's)
    until = time.time() + 60
    while time.time() < until:
        by_service = task_containers()
        if all(by_service.get(v) for v in list(ids.values()) + [orphan]):
            break
        time.sleep(0.2)
    ok(all(ids.values()) and orphan, "swarm: cleanup fixtures created", repr(ids))
    ok(by_service.get(orphan), "swarm: the removed job left its task's container (what Docker "
       "does, and what cleanup covers)", repr(by_service))
    # Docker leaves the task containers of a removed job service: cleanup removes the dead
    # owners' services, then their containers and the orphan's
    gone = [c for k in ("dead", "foreign_expired") for c in by_service.get(ids[k], [])] + \
        by_service.get(orphan, [])
    # a dead run's project image (transfer = "image"), committed from a container that carried
    # its owner labels
    st, c = api("POST", "/containers/create", {"Image": IMAGE, "Cmd": ["true"],
                                                "Labels": labels["dead"]})
    st2, img = api("POST", "/commit?container=%s&repo=selftest-project&tag=deadrun" % c["Id"],
                   {}) if st == 201 else (st, c)
    api("DELETE", "/containers/%s?force=1" % c.get("Id"))
    ok(st2 == 201, "swarm: a dead run's project image committed", repr(img))
    root = copy_fixture("passing")
    r = selftest(write_conf("swarm-bind.conf", extra='  transfer = "bind";\n'), root, [],
                 command="cleanup")
    st, images = api("GET", "/images/json")
    is_eq([t for i in images for t in i.get("RepoTags") or [] if t.startswith("selftest-project")],
          [], "swarm: cleanup removes a dead run's project image")
    st, services = api("GET", "/services")
    left = {s["ID"] for s in services} if st == 200 else set()
    is_eq(r["rc"], 0, "swarm: cleanup exits 0")
    ok(re.search(r"\b%d removed" % (3 + len(gone)), r["out"]),
       "swarm: cleanup reports what it removed (2 services, %d task containers, 1 image)"
       % len(gone), diag(r))
    is_eq(sorted(k for k, v in ids.items() if v in left), ["live"],
          "swarm: cleanup removes dead owners' services (pid gone, foreign past deadline) and "
          "keeps a live run's")
    after = task_containers()
    is_eq([c for c in gone if any(c in v for v in after.values())], [],
          "swarm: cleanup removes the task containers of removed and stale services")
    ok(after.get(ids["live"]), "swarm: cleanup keeps the live run's task container",
       repr(after))
    for sid in left:
        api("DELETE", "/services/%s" % sid)
    for cs in after.values():
        for c in cs:
            api("DELETE", "/containers/%s?force=1" % c)
    is_eq(wait_nothing_left(), NOTHING, "swarm: cleanup: nothing left")


# --------------------------------------------------------------------------------------------
# real projects (tests/corpus): the host's counts

def check_corpus(name):
    tar = os.path.join(sth.top_srcdir(), "tests", "corpus", "%s.tar.gz" % name)
    d = os.path.join(WORK, "%s-%s" % (name, uuid.uuid4().hex[:6]))
    os.makedirs(d)
    with tarfile.open(tar) as tf:
        tf.extractall(d)
    tops = [os.path.join(d, n) for n in os.listdir(d)]
    root = tops[0] if len(tops) == 1 and os.path.isdir(tops[0]) else d
    args = ["--json", "--retries", "0", "--workers", "2", "--timeout", "600", "--coverage"]
    host = selftest(HOST_CONF, root, args, timeout=900)
    shutil.rmtree(os.path.join(root, "sandbox_data"), ignore_errors=True)
    r = selftest(write_conf("swarm-bind.conf", extra='  transfer = "bind";\n'), root, args,
                 timeout=900)
    ok(host["results"] is not None and r["results"] is not None, "%s: both runs give results"
       % name, diag(host) + "\n" + diag(r))
    if host["results"] and r["results"]:
        ok(sum(counts_of(host["results"]).values()) > 100, "%s: the host ran the suite" % name,
           repr(counts_of(host["results"])))
        is_eq(counts_of(r["results"]), counts_of(host["results"]),
              "%s under swarm: the host's counts" % name)
        is_eq(r["rc"], host["rc"], "%s under swarm: the host's exit status" % name)
        ok(host["results"].get("coverage") is not None and
           r["results"].get("coverage") == host["results"].get("coverage"),
           "%s under swarm: the host's coverage (the lcov report came back through the logs)"
           % name, "host %r, swarm %r" % (host["results"].get("coverage"),
                                          r["results"].get("coverage")))
    is_eq(wait_nothing_left(), NOTHING, "%s under swarm: nothing left" % name)


# --------------------------------------------------------------------------------------------

HOST_CONF = None


@pytest.fixture(scope="module", autouse=True)
def work(selftest_bin):
    global SOCK, IMAGE, WORK, HOST_CONF, WORKER
    d = os.environ.get("ST_ENGINES_DIR")
    env = {}
    if d:
        try:
            with open(os.path.join(d, "env")) as fh:
                env = dict(line.strip().partition("=")[::2] for line in fh if "=" in line)
        except OSError:
            env = {}
    own = None
    if not env.get("SWARM_SOCK"):
        if os.geteuid() != 0:
            pytest.skip("needs root to start a private swarm (or ST_ENGINES_DIR with SWARM_SOCK)")
        own = tempfile.mkdtemp(prefix="st-sw-", dir="/tmp")
        # two nodes (a worker dockerd in a network namespace), else one
        for engines in ("swarm2", "swarm"):
            rc, out, err = sth.run(["bash", SCRIPT, "up", own],
                                   env=sth.base_env({"ST_ENGINES": engines}), timeout=900)
            if rc == 0:
                break
            WHY_ONE_NODE[0] = "engines.sh up with ST_ENGINES=%s failed: %s" % (
                engines, " | ".join(err.strip().splitlines()[-4:]))
            sth.run(["bash", SCRIPT, "down", own], timeout=300)
            os.makedirs(own, exist_ok=True)
        if rc != 0:
            shutil.rmtree(own, ignore_errors=True)
            pytest.skip("tools/engines/engines.sh up (ST_ENGINES=swarm) failed: %s" % err[-500:])
        with open(os.path.join(own, "env")) as fh:
            env = dict(line.strip().partition("=")[::2] for line in fh if "=" in line)
    SOCK, IMAGE, WORKER = env["SWARM_SOCK"], env["ST_IMAGE"], env.get("SWARM_WORKER_SOCK")
    WORK = tempfile.mkdtemp(prefix="st-swarm-")
    os.chmod(WORK, 0o755)
    HOST_CONF = os.path.join(WORK, "host.conf")
    with open(HOST_CONF, "w") as fh:
        fh.write('runtime = "host";\n')
    yield WORK
    shutil.rmtree(WORK, ignore_errors=True)
    if own:
        sth.run(["bash", SCRIPT, "down", own], timeout=300)


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_bind(name):
    check_fixture(name, "bind")


@pytest.mark.parametrize("name", ["passing", "failing", "timeout", "split"])
def test_fixture_image(name):
    check_fixture(name, "image")


@pytest.mark.parametrize("name", ["passing", "failing", "timeout", "segv"])
def test_fixture_job(name):
    check_fixture(name, "bind", "replicated-job")


CHECKS = ["parallel", "shards", "two_nodes", "no_shared_output", "limits_and_placement", "network", "bad_input",
          "sigterm", "cleanup"]


@pytest.mark.parametrize("what", CHECKS)
def test_swarm(what):
    globals()["check_" + what]()


@pytest.mark.parametrize("mode", ["fork", "process"])
def test_orphans(mode):
    check_orphans(mode)


@pytest.mark.parametrize("name", ["toolz", "simplejson"])
def test_corpus(name):
    check_corpus(name)
