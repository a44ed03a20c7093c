#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs libFuzzer targets one after the other, each for a bounded time on a scratch corpus seeded
# from the kept corpus, and prints one line per target: executions, coverage (libFuzzer's cov:
# edges and ft: features), corpus size, and the verdict. Exit status 1 when any target crashed,
# leaked, hit a sanitizer report or a timeout (the reproducer is left in CRASHES/NAME/), or did
# not run; 0 otherwise. Used by `make fuzz` and tools/test-all.
#   run.sh --bindir DIR --corpus DIR --scratch DIR --crashes DIR --seconds N [--max-len N]
#          [--seed N] NAME...
# --seed N (N > 0) makes a run repeatable (CI's short pass); without it (or 0) libFuzzer picks a
# new seed each run, which is what long runs want.
set -u
bindir=fuzz corpus=fuzz/corpus scratch=fuzz-corpus crashes=fuzz-crashes seconds=60 max_len=8192
seed=0
while [ $# -gt 0 ]; do
    case $1 in
    --bindir) bindir=$2; shift 2 ;;
    --corpus) corpus=$2; shift 2 ;;
    --scratch) scratch=$2; shift 2 ;;
    --crashes) crashes=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --max-len) max_len=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
case $seconds in
'' | *[!0-9]*) echo "run.sh: --seconds must be a whole number of seconds, not '$seconds'" >&2
    exit 2 ;;
esac
case $seed in
'' | *[!0-9]*) echo "run.sh: --seed must be a whole number, not '$seed'" >&2; exit 2 ;;
esac
[ $# -gt 0 ] || { echo "run.sh: no target named" >&2; exit 2; }
failed=0 passed=0
here=$(cd "$(dirname "$0")" && pwd)
# known leaks of system libraries, not of this code (see the file)
LSAN_OPTIONS="suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS
for name in "$@"; do
    bin=$bindir/fuzz-$name
    if [ ! -x "$bin" ]; then
        echo "fuzz $name: FAILED: $bin is not built"
        failed=$((failed + 1))
        continue
    fi
    mkdir -p "$scratch/$name" "$crashes/$name" || exit 1
    log=$scratch/$name.log
    seeds=
    [ -d "$corpus/$name" ] && seeds=$corpus/$name
    # -timeout: one input taking longer is a hang; -rss_limit_mb: bounded memory;
    # -close_fd_mask=3: the targets' own stdout and stderr are noise (a refused file is logged
    # on every execution, gigabytes in a long run); libFuzzer's and the sanitizers' reports go
    # to a duplicate of stderr that it keeps
    "$bin" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
        -close_fd_mask=3 -print_final_stats=1 -seed="$seed" -artifact_prefix="$crashes/$name/" \
        "$scratch/$name" $seeds >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(printf '%s\n' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    units=$(printf '%s\n' "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    if [ "$rc" -eq 0 ]; then
        verdict=ok
        passed=$((passed + 1))
    else
        verdict="FAILED (exit $rc; see $log and $crashes/$name/)"
        failed=$((failed + 1))
        grep -E 'ERROR: |SUMMARY: |runtime error' "$log" | head -n 5 | sed 's/^/    /'
    fi
    echo "fuzz $name: ${execs:-?} executions in ${seconds} s, cov ${cov:-?}, ft ${ft:-?}," \
        "corpus ${units:-?}: $verdict"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
