#!/usr/bin/env bash
# tests/run.sh [--quick] [BUILD_DIR] [SUBSTR]
#
# Runs the suites in order and adds up their "N passed, N failed" lines;
# the last line is "total: N passed, N failed". --quick: only the build
# checks and the unit tests (make quick). SUBSTR is handed to every runner
# as -k SUBSTR: only cases whose name contains it run.
set -u
cd "$(dirname "$0")/.." || exit 2
quick=0
[ "${1:-}" = --quick ] && { quick=1; shift; }
build=${1:-build}
k=()
[ -n "${2:-}" ] && k=(-k "$2")
pass=0 fail=0
suite() { # name, command...
    local name=$1 line p f; shift
    echo "=== $name"
    "$@" 2>&1 | tee "$build/$name.log"
    line=$(grep -E '^([a-z]+: )?[0-9]+ passed, [0-9]+ failed' "$build/$name.log" | tail -1)
    line=${line#*: }
    if [ -z "$line" ]; then
        echo "!!! $name printed no result line"; fail=$((fail + 1)); return
    fi
    p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
    pass=$((pass + p)); fail=$((fail + f))
}
t0=$SECONDS
suite compile bash tests/compile/run.sh "$build" "${k[@]}"
suite unit "$build/unit" "${k[@]}"
suite unit-compose "$build/unit_compose" "${k[@]}"
suite unit-x509 "$build/unit_x509" "${k[@]}"
if [ $quick = 0 ]; then
    suite integration /usr/bin/python3 tests/integration/test_integration.py --build "$build" "${k[@]}"
    suite starttls /usr/bin/python3 tests/integration/test_starttls.py --build "$build" "${k[@]}"
    suite trust /usr/bin/python3 tests/integration/test_trust.py --build "$build" "${k[@]}"
    suite hostile /usr/bin/python3 tests/hostile/test_hostile.py --build "$build" "${k[@]}"
    suite tls /usr/bin/python3 tests/tls/test_tls.py --build "$build" "${k[@]}"
    suite cli /usr/bin/python3 tests/cli/test_cli.py --build "$build" "${k[@]}"
    # Name lookups bounded by the timeout and the deadline, and
    # tlsmail_config.addresses, behind a resolver that never answers (a
    # private mount and network namespace).
    suite resolve /usr/bin/python3 tests/resolve/test_resolve.py --build "$build" "${k[@]}"
    # TCP Fast Open as the kernel saw it (its own counters), in a private
    # network namespace whose listeners all accept it.
    suite fastopen /usr/bin/python3 tests/fastopen/test_fastopen.py --build "$build" "${k[@]}"
    # TLS session resumption, tlsmail-send's session cache, streaming and
    # --batch, bench/many.c: what the speed features must still get right.
    suite perf /usr/bin/python3 tests/perf/test_perf.py --build "$build" "${k[@]}"
    suite real /usr/bin/python3 tests/real/test_real.py --build "$build" "${k[@]}"
    # tlsmail-send built for musl, aarch64 and armhf (qemu-user), a Winsock
    # program under wine, the Cortex-M4 image within its size budget.
    suite cross bash tests/cross/run.sh "$build" "${k[@]}"
    # The integration cases again under ASan+UBSan and under valgrind (a
    # subset; SANITIZE_VALGRIND=full for all), then every fuzz target
    # briefly on its committed seeds and regressions (make fuzz: longer).
    suite sanitizers env SANITIZE_VALGRIND="${SANITIZE_VALGRIND:-quick}" \
        bash tests/lib/sanitize.sh "$build" "${k[@]}"
    suite fuzz-smoke bash tests/fuzz/run.sh "${FUZZ_SMOKE_SECONDS:-10}" "$build" "${k[@]}"
fi
echo "time: $((SECONDS - t0)) s"
echo "total: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
