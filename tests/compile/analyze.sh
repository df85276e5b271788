#!/usr/bin/env bash
# tests/compile/analyze.sh [BUILD_DIR]
#
# Static analysis of the implementation, with TLSMAIL_STARTTLS (the
# largest configuration): a file BUILD_DIR/check/impl.c that defines
# TLSMAIL_IMPLEMENTATION and TLSMAIL_STARTTLS and includes tlsmail.h.
#   cppcheck      --enable=warning,portability,performance, inline
#                 suppressions honoured ("cppcheck-suppress id" comments)
#   clang-tidy    bugprone-*, cert-*, clang-analyzer-* minus the noise below,
#                 on tlsmail.h only (-header-filter)
#   clang --analyze
#   gcc           -Wconversion -Wshadow -Wcast-qual -Wformat=2
#                 -Wnull-dereference -Wduplicated-cond -Wlogical-op -Werror
#                 (-O2, which -Wnull-dereference needs)
# Prints "PASS tool" / "FAIL tool" (findings above the FAIL), then exactly
# "N passed, N failed"; exits 1 if any tool failed or is missing.
set -u
cd "$(dirname "$0")/../.." || exit 2
build=${1:-build}
dir=$build/check
mkdir -p "$dir" || exit 2
impl=$dir/impl.c
printf '%s\n' '#define TLSMAIL_IMPLEMENTATION' '#define TLSMAIL_STARTTLS' '#include "tlsmail.h"' >"$impl"
INC=(-I.)

# clang-tidy checks switched off, each for a reason:
TIDY_OFF=(
    # The public API mirrors Go's net/smtp argument for argument
    # (from, to, msg...); adjacent const char * parameters are the design.
    -bugprone-easily-swappable-parameters
    # Flags every int -> char of a char-valued expression (c ? 'x' : s[i]);
    # gcc -Wconversion below checks the same with value ranges, and is clean.
    -bugprone-narrowing-conversions
    # Length-delimited byte buffers (command lines, the date's fixed
    # fields) are filled with memcpy on purpose; nothing reads them as
    # strings before the explicit NUL or length.
    -bugprone-not-null-terminated-result
    # Small bounded table indexes (3 * weekday, 3 * (month - 1)); the
    # product can't overflow unsigned int.
    -bugprone-implicit-widening-of-multiplication-result
    # Flags strcpy/strcat by name. The one use (MAIL FROM parameters) appends
    # two constants, 24 octets at most, to a 32-octet buffer.
    -clang-analyzer-security.insecureAPI.strcpy
)
TIDY_CHECKS="-*,bugprone-*,cert-*,clang-analyzer-*$(printf ',%s' "${TIDY_OFF[@]}")"
# _POSIX_C_SOURCE is a feature-test macro: defining it is its purpose.
TIDY_CONFIG='{CheckOptions: [
  {key: bugprone-reserved-identifier.AllowedIdentifiers, value: _POSIX_C_SOURCE},
  {key: cert-dcl37-c.AllowedIdentifiers, value: _POSIX_C_SOURCE},
  {key: cert-dcl51-cpp.AllowedIdentifiers, value: _POSIX_C_SOURCE}]}'

pass=0 fail=0
tool() { # NAME LOG COMMAND...: PASS if it exits 0 and LOG has no warning/error
    local name=$1 log=$2 rc; shift 2
    if ! command -v "$1" >/dev/null; then
        echo "FAIL $name (not installed)"; fail=$((fail + 1)); return
    fi
    "$@" >"$log" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ] && ! grep -qE '(warning|error):' "$log"; then
        echo "PASS $name"; pass=$((pass + 1))
    else
        grep -E '(warning|error|note):|^ ' "$log" | grep -v 'warnings generated' | head -60
        echo "FAIL $name (exit $rc)"; fail=$((fail + 1))
    fi
}

tool cppcheck "$dir/cppcheck.log" cppcheck --enable=warning,portability,performance \
    --error-exitcode=1 --inline-suppr --std=c99 --suppress=missingIncludeSystem -q \
    "${INC[@]}" "$impl"
tool clang-tidy "$dir/clang-tidy.log" clang-tidy --quiet -checks="$TIDY_CHECKS" \
    -config="$TIDY_CONFIG" -header-filter='tlsmail\.h' -warnings-as-errors='*' "$impl" \
    -- -std=c99 "${INC[@]}"
tool clang-analyze "$dir/clang-analyze.log" clang --analyze -std=c99 "${INC[@]}" \
    -Xanalyzer -analyzer-output=text "$impl" -o "$dir/impl.plist"
tool gcc-warnings "$dir/gcc.log" gcc -std=c99 -O2 -c "${INC[@]}" -Wall -Wextra -Wconversion \
    -Wshadow -Wcast-qual -Wformat=2 -Wnull-dereference -Wduplicated-cond -Wlogical-op \
    -Werror "$impl" -o "$dir/impl.o"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
