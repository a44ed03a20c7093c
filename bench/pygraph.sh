#!/bin/sh
# SPDX-License-Identifier: MIT
# Times `cat` of every .py file, tools/pygraph-dump and tools/pygraph_ref.py (Python ast) on the
# same trees in one run, and prints files/s, MB/s and the ratios. Goal: pygraph-dump >= 100x
# faster than the reference and within 3x of cat. Results: bench/README-pygraph.md.
#
# usage: bench/pygraph.sh [TREE...]   (default: /usr/lib/python3.11 and Debian's sympy)
# env:   top_builddir (pygraph-dump), top_srcdir (pygraph_ref.py), PYTHON (the reference's
#        interpreter, default python3), RUNS (best of, default 5), SKIP_REF=1 (no reference)
set -eu

srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${top_builddir:-$srcdir}
dump=$builddir/tools/pygraph-dump
ref=$srcdir/tools/pygraph_ref.py
python=${PYTHON:-python3}
runs=${RUNS:-5}
[ -x "$dump" ] || { echo "pygraph.sh: $dump is not built (make tools/pygraph-dump)" >&2; exit 2; }
[ $# -gt 0 ] || set -- /usr/lib/python3.11 /usr/lib/python3/dist-packages/sympy

now() { date +%s.%N; }
# best wall time of $runs runs of "$@" (stdout discarded)
best() {
    b=
    i=0
    while [ "$i" -lt "$runs" ]; do
        t0=$(now)
        "$@" > /dev/null
        t1=$(now)
        b=$(echo "$t0 $t1 ${b:-}" | awk '{ d = $2 - $1; if ($3 == "" || d < $3) print d; else print $3 }')
        i=$((i + 1))
    done
    echo "$b"
}
cat_all() { find "$1" -name '*.py' -type f -print0 | xargs -0 cat; }

printf '%-28s %6s %7s | %8s %9s | %8s %9s %7s | %8s %7s | %7s %7s\n' tree files MB \
    cat_s cat_MB/s dump_s dump_MB/s files/s ref_s ref_MB/s ref/dump dump/cat
for tree in "$@"; do
    [ -d "$tree" ] || { echo "pygraph.sh: $tree: no such directory" >&2; continue; }
    stats=$("$dump" --stats --quiet "$tree")
    files=$(echo "$stats" | awk '$1 == "files" { print $2 }')
    bytes=$(echo "$stats" | awk '$1 == "bytes" { print $2 }')
    cat_all "$tree" > /dev/null # warm the cache
    t_cat=$(best cat_all "$tree")
    t_dump=$(best "$dump" --quiet "$tree")
    if [ "${SKIP_REF:-0}" = 1 ]; then
        t_ref=0
    else
        t0=$(now)
        "$python" "$ref" --unparsable /dev/null "$tree" > /dev/null
        t1=$(now)
        t_ref=$(echo "$t0 $t1" | awk '{ print $2 - $1 }')
    fi
    echo "$tree $files $bytes $t_cat $t_dump $t_ref" | awk '{
        mb = $3 / 1e6
        printf "%-28s %6d %7.1f | %8.3f %9.0f | %8.3f %9.0f %7.0f | %8.2f %7.1f | %7.0f %7.2f\n",
            $1, $2, mb, $4, mb / $4, $5, mb / $5, $2 / $5, $6, ($6 > 0 ? mb / $6 : 0),
            ($6 > 0 ? $6 / $5 : 0), $5 / $4 }'
done
