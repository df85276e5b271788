#!/usr/bin/env bash
# Runs every suite, then adds up their "N passed, N failed" lines.
set -u
cd "$(dirname "$0")/.." || exit 2
build=${1:-build}
pass=0 fail=0 broken=0
suite() { # name, command...
    local name=$1 line p f; shift
    echo "=== $name"
    "$@" 2>&1 | tee "$build/$name.log"
    line=$(grep -E '^([a-z]+: )?[0-9]+ passed, [0-9]+ failed' "$build/$name.log" | tail -1)
    line=${line#*: }
    if [ -z "$line" ]; then
        echo "!!! $name printed no result line"; broken=$((broken + 1)); fail=$((fail + 1)); return
    fi
    p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
    pass=$((pass + p)); fail=$((fail + f))
}
suite build-checks bash tests/build_checks.sh "$build"
suite unit "$build/unit"
suite unit-compose "$build/unit_compose"
suite integration /usr/bin/python3 tests/test_integration.py --build "$build"
suite starttls /usr/bin/python3 tests/test_starttls.py --build "$build"
suite hostile /usr/bin/python3 tests/test_hostile.py --build "$build"
suite cli /usr/bin/python3 tests/test_cli.py --build "$build"
# The same tests again under ASan+UBSan and under valgrind, then every fuzz
# target briefly on its committed seeds (make fuzz runs them longer).
suite sanitizers env SANITIZE_VALGRIND="${SANITIZE_VALGRIND:-full}" bash tests/sanitize.sh "$build"
suite fuzz-smoke bash tests/fuzz.sh "${FUZZ_SMOKE_SECONDS:-10}" "$build"
echo "total: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
