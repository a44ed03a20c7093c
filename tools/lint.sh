#!/bin/sh
# SPDX-License-Identifier: MIT
# `make lint`: cppcheck and clang-tidy (Debian's) over the C sources of src/ and plugins/, with
# the checked-in configuration: .clang-tidy (checks, each exclusion with its reason) and
# tools/cppcheck.supp (one suppression per false positive, each with its reason). Prints every
# finding as FILE:LINE and exits 1 when there is one; exits 0 after a line saying so when a tool
# is missing (make lint then checks nothing: install cppcheck and clang-tidy).
#   usage: tools/lint.sh SRCDIR BUILDDIR [COMPILER FLAGS...]
# Environment: CPPCHECK, CLANG_TIDY (the programs), LINT_FILES (default: every .c under src/
# and plugins/).
set -u
srcdir=$1
builddir=$2
shift 2
cppcheck=${CPPCHECK:-cppcheck}
clang_tidy=${CLANG_TIDY:-clang-tidy}

missing=
command -v "$cppcheck" >/dev/null 2>&1 || missing="$missing cppcheck"
command -v "$clang_tidy" >/dev/null 2>&1 || missing="$missing clang-tidy"
if [ -n "$missing" ]; then
    echo "lint: skipped: not installed:$missing (Debian: apt-get install cppcheck clang-tidy)"
    exit 0
fi

files=${LINT_FILES:-$(cd "$srcdir" && find src plugins -name '*.c' | LC_ALL=C sort)}
# every directory with a header, so that a file finds its neighbours' and the shared helpers'
incs=$(cd "$srcdir" && find src plugins -name '*.h' -exec dirname {} \; | LC_ALL=C sort -u |
       sed "s|^|-I$srcdir/|")

status=0
echo "lint: cppcheck $("$cppcheck" --version | sed 's/^Cppcheck //')"
# --max-configs=1: the configuration config.h describes, not every #ifdef combination;
# --library=posix: the POSIX functions' contracts. Only warning, performance and portability:
# the style class is taste, which .clang-format and review cover.
(cd "$srcdir" &&
 "$cppcheck" --quiet --std=c11 --language=c --enable=warning,performance,portability \
     --library=posix --max-configs=1 --inline-suppr --error-exitcode=1 \
     --suppressions-list=tools/cppcheck.supp \
     --template='{file}:{line}: cppcheck {severity} [{id}]: {message}' \
     -DHAVE_CONFIG_H -D__GNUC__ -I"$builddir" -I"$builddir/include" -Iinclude $incs $files) ||
    status=1

echo "lint: $("$clang_tidy" --version | grep -i version | head -1 | sed 's/^ *//')"
# one process for every file (the flags are the same); .clang-tidy is found from each file;
# WarningsAsErrors there makes any finding a failure
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
(cd "$srcdir" &&
 "$clang_tidy" --quiet $files -- -std=gnu11 -DHAVE_CONFIG_H -I"$builddir" \
     -I"$builddir/include" -Iinclude $incs "$@") >"$out" 2>&1 || status=1
grep -v -E '^[0-9]+ (warnings?|errors?)( and [0-9]+ errors?)? generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^Use -system-headers|^Error while processing' "$out"
[ "$status" -eq 0 ] && echo "lint: clean"
exit $status
