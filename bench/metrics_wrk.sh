#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/metrics_wrk.sh: wrk against exporter-prometheus's /metrics on loopback while a run is
# active (a temp project whose one test sleeps), reports requests/s and p99 latency against the
# goals (>= 5000 req/s, p99 < 5 ms). Usage: bench/metrics_wrk.sh [SECONDS] (default 10).
# Environment: SELFTEST_BIN, SELF_TEST_PLUGIN_PATH, SELF_TEST_SUPPORT_DIR (defaults: the build
# tree this script lives in), WRK_THREADS (1), WRK_CONNECTIONS (4: a few scrapers).
set -eu

duration=${1:-10}
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${SELFTEST_BIN:-$top/selftest-core}
SELF_TEST_PLUGIN_PATH=${SELF_TEST_PLUGIN_PATH:-$top/plugins}
SELF_TEST_SUPPORT_DIR=${SELF_TEST_SUPPORT_DIR:-$top/python}
export SELF_TEST_PLUGIN_PATH SELF_TEST_SUPPORT_DIR
threads=${WRK_THREADS:-1}
conns=${WRK_CONNECTIONS:-4}

command -v wrk >/dev/null 2>&1 || { echo "metrics_wrk: wrk not found (Debian: apt-get install wrk)" >&2; exit 77; }
[ -x "$bin" ] || { echo "metrics_wrk: $bin is not executable (set SELFTEST_BIN)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/st-bench-metrics.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# A project whose single test outlives the measurement: the run is active the whole time.
mkdir -p "$work/proj/tests"
printf '[pytest]\n' > "$work/proj/pytest.ini"
printf 'import time\n\n\ndef test_sleep():\n    time.sleep(%s)\n' "$((duration + 10))" \
    > "$work/proj/tests/test_sleep.py"
cat > "$work/selftest.conf" <<EOF
plugins = ({ kind = "exporter"; name = "exporter-prometheus"; settings = { port = 0; }; });
EOF

SANDBOX_REPO_PATH="$work/proj" PYTHONDONTWRITEBYTECODE=1 \
    "$bin" -v -c "$work/selftest.conf" run --workers 1 --retries 0 \
    >"$work/stdout" 2>"$work/stderr" &
pid=$!

port=
i=0
while [ $i -lt 300 ]; do
    port=$(sed -n 's|.*serving http://127\.0\.0\.1:\([0-9]*\)/metrics.*|\1|p' "$work/stderr" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
done
if [ -z "$port" ]; then
    echo "metrics_wrk: the exporter did not announce a port; stderr:" >&2
    cat "$work/stderr" >&2
    exit 1
fi
sleep 1 # let pytest start: measure while the run is really active

url="http://127.0.0.1:$port/metrics"
echo "metrics_wrk: wrk -t$threads -c$conns -d${duration}s --latency $url"
wrk -t"$threads" -c"$conns" -d"${duration}s" --latency "$url" > "$work/wrk.out"
cat "$work/wrk.out"
kill -0 "$pid" 2>/dev/null || echo "metrics_wrk: warning: the run ended during the measurement" >&2

# Requests/sec:  12345.67 ; "     99%    1.23ms"
rps=$(awk '/^Requests\/sec:/ {print $2}' "$work/wrk.out")
p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.out")
p99_ms=$(printf '%s\n' "$p99" | awk '
    /us$/ {sub(/us$/, ""); printf "%.3f", $0 / 1000; next}
    /ms$/ {sub(/ms$/, ""); printf "%.3f", $0; next}
    /s$/  {sub(/s$/, "");  printf "%.3f", $0 * 1000; next}')
errors=$(awk '/Non-2xx|Socket errors/' "$work/wrk.out")
verdict=$(awk -v r="$rps" -v p="$p99_ms" 'BEGIN { print (r + 0 >= 5000 && p + 0 < 5) ? "PASS" : "FAIL" }')
echo "metrics_wrk: requests/s=$rps p99=${p99_ms}ms (goal >= 5000 req/s, p99 < 5 ms): $verdict"
[ -z "$errors" ] || echo "metrics_wrk: $errors"
[ "$verdict" = PASS ]
