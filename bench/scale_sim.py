#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Predicts a cycle's wall time on 1 to 100 engines from recorded per-file durations.

Replays the durations of a real run (bench/data/networkx-durations.json, recorded from
metrics.db; or --db METRICS_DB --path PATH for your own project) under two policies:

  shards     the path split into shards by test file, balanced as selftest-core balances them
             (longest file first onto the least-loaded shard; a file longer than 1.25 times a
             shard's share split by test), as many as `shards = "auto"` makes with
             --shard-seconds (default 60: a whole number per engine slot), or
             --shards-per-slot K per slot; the shards dispatched longest expected first, each onto the engine
             slot that is free first (the core runs the longest first; the engines' placement
             takes the engine that will be done first). One shard pays `overhead` seconds
             (interpreter start, imports, collection, container create/start/remove).
  paths      one batch per test directory (the package's tests/ dirs), no shards: the best a
             run without shards can do (the same longest-first placement; each directory pays
             the overhead once).

For each engine count it prints the predicted wall time, the speed-up over one engine under the
same policy and the efficiency (speed-up / engines; the ideal speed-up is the engine count).
Nothing is run: the prediction is only as good as the durations and the overhead; bench/README.md
compares it with a measured two-engine run.

  python3 bench/scale_sim.py [--durations FILE | --db METRICS_DB --path PATH]
                             [--engines 1,2,4,...] [--workers W] [--overhead S]
                             [--shard-seconds S | --shards-per-slot K] [--without FILE]
                             [--json]
  python3 bench/scale_sim.py --record METRICS_DB --path PATH --out FILE [--note TEXT]
                             (write a data file)
"""

import argparse
import heapq
import math
import json
import os
import sqlite3
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "data", "networkx-durations.json")
DEFAULT_ENGINES = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 100]


def read_db(db_path, path):
    """The newest complete run of path in a metrics.db: {file: seconds} (the sum of each file's
    test durations, every phase), {file: [each test's seconds]}, and the number of tests."""
    db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    try:
        for (run,) in db.execute("SELECT id FROM runs WHERE aborted = 0 ORDER BY id DESC"):
            rows = db.execute("SELECT file, nodeid, SUM(MAX(duration, 0)) FROM test_outcomes "
                              "WHERE run = ? AND batch = ? AND file IS NOT NULL GROUP BY nodeid "
                              "ORDER BY MIN(rowid)", (run, path)).fetchall()
            if rows:
                files, tests = {}, {}
                for f, _, d in rows:
                    files[f] = files.get(f, 0.0) + d
                    tests.setdefault(f, []).append(d)
                return files, tests, len(rows)
    finally:
        db.close()
    sys.exit("%s: no run of %s" % (db_path, path))


def lpt(weights, k):
    """selftest-core's shard balance: heaviest first onto the least-loaded of k (ties: the
    lowest). Returns the k loads and the items of each."""
    loads = [0.0] * k
    items = [[] for _ in range(k)]
    for i in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
        s = min(range(k), key=lambda s: (loads[s], s))
        loads[s] += weights[i]
        items[s].append(i)
    return loads, items


def makespan(jobs, slots):
    """List scheduling: jobs (seconds) longest first, each onto the slot free first."""
    free = [0.0] * slots
    heapq.heapify(free)
    end = 0.0
    for j in sorted(jobs, reverse=True):
        t = heapq.heappop(free) + j
        end = max(end, t)
        heapq.heappush(free, t)
    return end


SPLIT_FILE_FACTOR = 1.25  # as src/core/pipeline.c: a file over 1.25 shares is split by test


def auto_count(total, shard_s, n, slots):
    """src/core/shards.c st_shards_auto: shard_s seconds each, a whole number per slot."""
    want = math.ceil(total / shard_s)
    if slots > 1 and want >= slots:
        want = slots * math.floor(want / slots + 0.5)
    return max(1, min(want, n, 1000))


def by_shards(files, tests, slots, per_slot, overhead, shard_s=60.0):
    """selftest-core's shards: `shards = "auto"` with shard_s (or per_slot shards per slot); a
    file heavier than 1.25 times a shard's share split into its tests (when they are known);
    LPT over the pieces."""
    total = sum(files.values())
    k = slots * per_slot if per_slot else auto_count(total, shard_s, len(files), slots)
    share = total / k
    w = []
    for f, d in files.items():
        if k > 1 and d > SPLIT_FILE_FACTOR * share and len(tests.get(f, [])) >= 2:
            w.extend(tests[f])
        else:
            w.append(d)
    if not per_slot and len(w) > len(files):
        k = auto_count(total, shard_s, len(w), slots)
    k = min(k, len(w))
    loads, _ = lpt(w, k)
    return makespan([x + overhead for x in loads], slots), k, max(w)


def test_dir(f):
    return f.rsplit("/", 1)[0] if "/" in f else "."


def by_paths(files, slots, overhead):
    dirs = {}
    for f, d in files.items():
        dirs[test_dir(f)] = dirs.get(test_dir(f), 0.0) + d
    return makespan([x + overhead for x in dirs.values()], slots), len(dirs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--durations", default=DEFAULT_DATA)
    ap.add_argument("--db")
    ap.add_argument("--path")
    ap.add_argument("--engines", default=",".join(map(str, DEFAULT_ENGINES)))
    ap.add_argument("--workers", type=int, default=1, help="slots per engine (default 1)")
    ap.add_argument("--overhead", type=float, default=None,
                    help="seconds each batch pays besides its tests (default: the data "
                         "file's measured overhead, else 1.0)")
    ap.add_argument("--shard-seconds", type=float, default=60.0,
                    help='shards = "auto" with this shard_seconds (default 60)')
    ap.add_argument("--shards-per-slot", type=int, default=0,
                    help="instead of auto: this many shards per engine slot")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--without", action="append", metavar="FILE",
                    help="leave a test file out of the data (e.g. one a project would run apart)")
    ap.add_argument("--record", metavar="METRICS_DB")
    ap.add_argument("--out")
    ap.add_argument("--note", help="--record: a note stored with the data (how it was recorded)")
    a = ap.parse_args()
    if a.record:
        if not a.path or not a.out:
            sys.exit("--record needs --path and --out")
        files, tests, n_tests = read_db(a.record, a.path)
        total = sum(files.values())
        # the tests of the files that could be split (more than 0.5 % of the total each)
        big = {f: [round(x, 4) for x in tests[f]] for f in sorted(files)
               if files[f] > 0.005 * total and len(tests[f]) >= 2}
        data = {"project": a.path, "recorded": time.strftime("%Y-%m-%d"), "tests": n_tests,
                "seconds": round(total, 3), "note": a.note or "",
                "files": {f: round(d, 4) for f, d in sorted(files.items())},
                "file_tests": big}
        tmp = a.out + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, a.out)
        print("%s: %d files, %d tests, %.1f s" % (a.out, len(files), n_tests, data["seconds"]))
        return
    if a.db:
        if not a.path:
            sys.exit("--db needs --path")
        files, tests, n_tests = read_db(a.db, a.path)
        overhead = a.overhead if a.overhead is not None else 1.0
        name = "%s (%s)" % (a.path, a.db)
    else:
        with open(a.durations) as fh:
            data = json.load(fh)
        files, tests, n_tests = data["files"], data.get("file_tests", {}), data.get("tests")
        overhead = a.overhead if a.overhead is not None else data.get("overhead", 1.0)
        name = "%s, recorded %s" % (data.get("project"), data.get("recorded"))
    engines = [int(x) for x in a.engines.split(",")]
    total = sum(files.values())
    biggest = max(files.values())
    for f in a.without or []:
        if f not in files:
            sys.exit("--without %s: no such file in the data" % f)
        del files[f]
        tests.pop(f, None)
    one_s, _, _ = by_shards(files, tests, a.workers, a.shards_per_slot, overhead,
                             a.shard_seconds)
    one_p, n_dirs = by_paths(files, a.workers, overhead)
    rows = []
    for n in engines:
        slots = n * a.workers
        ts, k, piece = by_shards(files, tests, slots, a.shards_per_slot, overhead,
                                   a.shard_seconds)
        tp, _ = by_paths(files, slots, overhead)
        # no schedule beats the longest piece that cannot be split (one test)
        bound = min(float(n), one_s / (piece + overhead))
        rows.append({"engines": n, "shards": k, "shards_s": ts, "shards_speedup": one_s / ts,
                     "shards_efficiency": one_s / ts / n, "bound": bound,
                     "bound_efficiency": one_s / ts / bound, "paths_s": tp,
                     "paths_speedup": one_p / tp, "paths_efficiency": one_p / tp / n})
    if a.json:
        print(json.dumps({"data": name, "files": len(files), "tests": n_tests, "seconds": total,
                          "largest_file": biggest, "overhead": overhead, "workers": a.workers,
                          "rows": rows}, indent=1))
        return
    print("%s: %d test files, %s tests, %.1f s of tests; the longest file %.1f s; %d test "
          "directories; %.2f s overhead per batch; %d worker%s per engine"
          % (name, len(files), n_tests, total, biggest, n_dirs, overhead, a.workers,
             "" if a.workers == 1 else "s"))
    print("| engines | shards | wall (shards) | speed-up | of ideal (N) | bound | of bound | wall "
          "(one path per engine) | speed-up | of ideal (N) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %d | %d | %.1f s | %.2fx | %.0f %% | %.2fx | %.0f %% | %.1f s | %.2fx | %.0f %% |"
              % (r["engines"], r["shards"], r["shards_s"], r["shards_speedup"],
                 100 * r["shards_efficiency"], r["bound"], 100 * r["bound_efficiency"],
                 r["paths_s"], r["paths_speedup"], 100 * r["paths_efficiency"]))
    print("bound: the speed-up no schedule can beat, min(engines, one engine's wall / the longest "
          "piece that cannot be split plus its overhead)")


if __name__ == "__main__":
    main()
