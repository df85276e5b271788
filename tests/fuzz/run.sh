#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS_PER_TARGET] [BUILD_DIR] [-k SUBSTR]...
#
# Builds every libFuzzer target in tests/fuzz/ (clang, -fsanitize=fuzzer,
# address,undefined) into BUILD_DIR/fuzz/ and runs each for SECONDS (default
# 10) on a temporary copy of its committed seed corpus plus any regression
# inputs (tests/fuzz/regress/<target>/), so the committed corpus never grows.
# A crash, leak, timeout (> 5 s per input) or out-of-memory (> 1 GB) fails the
# target; the reproducer is kept as BUILD_DIR/fuzz/artifacts/<target>-*.
# Prints "PASS fuzz_x (N runs)" or "FAIL fuzz_x" per target, then exactly
# "N passed, N failed"; exits 1 if any failed.
#
# Reproduce a failure:  BUILD_DIR/fuzz/fuzz_x BUILD_DIR/fuzz/artifacts/fuzz_x-crash-...
# Fuzz longer by hand:  BUILD_DIR/fuzz/fuzz_x -dict=tests/fuzz/smtp.dict DIR tests/fuzz/corpus/fuzz_x
set -u
cd "$(dirname "$0")/../.." || exit 2
secs=${1:-10}
build=${2:-build}
shift 2 2>/dev/null || shift $#
only=()   # -k SUBSTR...: only the targets whose name has one
while [ $# -ge 2 ] && [ "$1" = -k ]; do only+=("$2"); shift 2; done
out=$build/fuzz
CC=${FUZZ_CC:-clang}
CFLAGS="-g -O1 -std=c99 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
mkdir -p "$out/artifacts" || exit 2
# LSan is on by default in libFuzzer+ASan; make it explicit, and keep stacks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# Per target: extra compiler flags and a dictionary. A target added later
# (e.g. the CLI's argument and header parsing) adds its lines here.
declare -A extra=(
    [fuzz_client]="-DTLSMAIL_INSECURE_NO_TLS_FOR_FUZZING -DTLSMAIL_NO_SOCKETS"
    [fuzz_client_groups]="-DTLSMAIL_INSECURE_NO_TLS_FOR_FUZZING -DTLSMAIL_NO_SOCKETS"
    [fuzz_starttls]="-DTLSMAIL_STARTTLS -DTLSMAIL_INSECURE_NO_TLS_FOR_FUZZING -DTLSMAIL_NO_SOCKETS"
    [fuzz_cli]="-I."
)
declare -A dict=(
    [fuzz_client]=tests/fuzz/smtp.dict [fuzz_client_groups]=tests/fuzz/smtp.dict
    [fuzz_reply]=tests/fuzz/smtp.dict
    [fuzz_ehlo]=tests/fuzz/smtp.dict [fuzz_base64]=tests/fuzz/base64.dict
    [fuzz_dot]=tests/fuzz/dot.dict [fuzz_challenge]=tests/fuzz/base64.dict
    [fuzz_queue_id]=tests/fuzz/smtp.dict
    [fuzz_dot]=tests/fuzz/dot.dict [fuzz_address]=tests/fuzz/address.dict
    [fuzz_compose]=tests/fuzz/compose.dict [fuzz_pem]=tests/fuzz/pem.dict
    [fuzz_pin]=tests/fuzz/pem.dict [fuzz_starttls]=tests/fuzz/starttls.dict
    [fuzz_cli]=tests/fuzz/cli.dict
)
# A target whose seeds are another's: the same input format.
declare -A seeds=(
    [fuzz_client_groups]=fuzz_client
)

pass=0 fail=0
for src in tests/fuzz/fuzz_*.c; do
    t=$(basename "$src" .c)
    if [ ${#only[@]} -gt 0 ]; then
        want=0
        for o in "${only[@]}"; do [[ $t == *"$o"* ]] && want=1; done
        [ $want = 1 ] || continue
    fi
    bin=$out/$t
    # shellcheck disable=SC2086 # extra flags are word lists
    if ! $CC $CFLAGS ${extra[$t]:-} "$src" -o "$bin" -lbearssl >"$out/$t.build.log" 2>&1; then
        cat "$out/$t.build.log"
        echo "FAIL $t (build)"
        fail=$((fail + 1))
        continue
    fi
    work=$(mktemp -d "${TMPDIR:-/tmp}/tlsmail-$t.XXXXXX")
    mkdir "$work/corpus"
    cp tests/fuzz/corpus/"${seeds[$t]:-$t}"/* "$work/corpus/" 2>/dev/null
    cp tests/fuzz/regress/"$t"/* "$work/corpus/" 2>/dev/null
    args=(-max_total_time="$secs" -timeout=5 -rss_limit_mb=1024 -max_len=4096
          -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-")
    [ -n "${dict[$t]:-}" ] && args+=(-dict="${dict[$t]}")
    "$bin" "${args[@]}" "$work/corpus" >"$out/$t.log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log" | tail -1)
    if [ "$rc" -eq 0 ]; then
        echo "PASS $t (${runs:-?} runs)"
        pass=$((pass + 1))
    else
        grep -E 'ERROR|invariant failed|runtime error|SUMMARY|^    #[0-9]' "$out/$t.log" | head -30
        echo "    log: $out/$t.log"
        ls "$out/artifacts/$t-"* 2>/dev/null | sed 's/^/    reproducer: /'
        echo "FAIL $t"
        fail=$((fail + 1))
    fi
    rm -rf "$work"
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
