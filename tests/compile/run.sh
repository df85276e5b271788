#!/usr/bin/env bash
# Build checks: every compiler, language level and switch a user may pick,
# warning-free under -Werror. Prints PASS/FAIL per check and "N passed, N failed".
#   tests/compile/run.sh [BUILD_DIR] [-k SUBSTR]...
set -u
cd "$(dirname "$0")/../.." || exit 2
build=${1:-build}
out=$build/compile
shift
only=()
while [ $# -ge 2 ] && [ "$1" = -k ]; do only+=("$2"); shift 2; done
mkdir -p "$out"
pass=0 fail=0
WARN=$(cat tests/lib/warnings)   # the one shared list; -std is given per check
check() { # name, command...
    local name=$1 o want=1; shift
    if [ ${#only[@]} -gt 0 ]; then
        want=0
        for o in "${only[@]}"; do [[ $name == *"$o"* ]] && want=1; done
    fi
    [ $want = 1 ] || return 0
    if log=$("$@" 2>&1); then pass=$((pass + 1)); echo "PASS $name"
    else fail=$((fail + 1)); echo "FAIL $name"; echo "$log" | head -20 | sed 's/^/    /'; fi
}
impl="$out/impl.c"
printf '#define TLSMAIL_IMPLEMENTATION\n#include "tlsmail.h"\nint main(void) { return tlsmail_strerror(0)[0] == 0; }\n' > "$impl"
for cc in gcc clang; do
    for std in c99 c11; do
        check "$cc -std=$std implementation" $cc -std=$std $WARN -I. -c "$impl" -o "$out/impl-$cc-$std.o"
        check "$cc -std=$std declarations only" $cc -std=$std $WARN -c tests/compile/decl_a.c -o "$out/decl-$cc-$std.o"
    done
done
for cxx in g++ clang++; do
    check "$cxx -x c++ -std=c++11" $cxx -x c++ -std=c++11 -Wall -Wextra -Wpedantic -Werror -Wshadow -I. -c "$impl" -o "$out/impl-$cxx.o"
done
check "strict C with a system header first: a clear #error, not a wall of errors" bash -c \
    "printf '#include <stdio.h>\n#define TLSMAIL_IMPLEMENTATION\n#include \"tlsmail.h\"\n' | gcc -std=c99 -I. -x c -c - -o /dev/null 2>&1 | grep -q 'include tlsmail.h first'"
check "declarations in two files, implementation in a third" \
    gcc -std=c99 $WARN tests/compile/decl_a.c tests/compile/decl_b.c tests/compile/impl_main.c -o "$out/three" -lbearssl
check "three-file program runs" "$out/three"
check "TLSMAIL_STATIC in two files linked together" \
    gcc -std=c99 $WARN tests/compile/static_a.c tests/compile/static_b.c -o "$out/static" -lbearssl
check "TLSMAIL_STATIC program runs" "$out/static"
check "TLSMAIL_NO_SOCKETS" gcc -std=c99 $WARN tests/compile/no_sockets.c -o "$out/nosock" -lbearssl
check "TLSMAIL_NO_SOCKETS has no socket calls" bash -c "! nm -u '$out/nosock' | grep -E ' (socket|connect|getaddrinfo|poll|recv|send)(@|$)'"
check "TLSMAIL_NO_SOCKETS program runs" "$out/nosock"
# The README's build for size, run as written there in a directory that
# looks like the source tree: it must make a tlsmail-send that runs.
small_cmd=$(sed -n '/^cc -Os -ffunction-sections/,/strip tlsmail-send$/p' README.md | sed 's/\\$//' | tr '\n' ' ')
rm -rf "$out/small" && mkdir -p "$out/small" && ln -s "$PWD/tlsmail.h" "$PWD/examples" "$out/small/"
check "README's build for size makes a tlsmail-send that runs" bash -c \
    "cd '$out/small' && eval \"\$1\" && ./tlsmail-send --version | grep -q '^tlsmail-send '" _ "$small_cmd"
# STARTTLS code exists only with the flag. -O0 keeps every static function
# as a local symbol, so absence means "not compiled", not "inlined".
check "without TLSMAIL_STARTTLS: no STARTTLS code in the object" bash -c \
    "gcc -std=c99 -O0 -I. -c '$impl' -o '$out/nost.o' && ! nm '$out/nost.o' | grep -iE 'starttls|tlsmail__pending'"
check "with TLSMAIL_STARTTLS: the STARTTLS code is in the object" bash -c \
    "gcc -std=c99 -O0 -DTLSMAIL_STARTTLS -I. -c '$impl' -o '$out/st.o' && nm '$out/st.o' | grep -q ' t tlsmail__starttls$'"
for cc in gcc clang; do
    check "$cc -DTLSMAIL_STARTTLS implementation" $cc -std=c99 $WARN -DTLSMAIL_STARTTLS -I. -c "$impl" -o "$out/st-$cc.o"
done
check "g++ -DTLSMAIL_STARTTLS" g++ -x c++ -std=c++11 -Wall -Wextra -Wpedantic -Werror -DTLSMAIL_STARTTLS -I. -c "$impl" -o "$out/st-cxx.o"
check "without TLSMAIL_STARTTLS, asking for it is TLSMAIL_EINVAL" bash -c \
    "gcc -std=c99 $WARN tests/compile/no_starttls.c -o '$out/nost' -lbearssl && '$out/nost'"
# "No heap but trust loading": with the allocator macros pointed elsewhere,
# nothing in the library can reach malloc and friends on its own.
check "no malloc/calloc/realloc/free outside TLSMAIL_MALLOC/FREE" bash -c \
    "printf '#include <stddef.h>\nvoid *my_alloc(void *, size_t); void my_free(void *, void *);\n#define TLSMAIL_MALLOC(c, n) my_alloc(c, n)\n#define TLSMAIL_FREE(c, p) my_free(c, p)\n#define TLSMAIL_IMPLEMENTATION\n#define TLSMAIL_STARTTLS\n#include \"tlsmail.h\"\n' > '$out/heap.c' && gcc -std=c99 -O0 -I. -c '$out/heap.c' -o '$out/heap.o' && nm -u '$out/heap.o' | grep -q my_alloc && ! nm -u '$out/heap.o' | grep -wE 'malloc|calloc|realloc|free|strdup'"
check "TLSMAIL_MALLOC/FREE overrides" bash -c \
    "gcc -std=c99 $WARN tests/compile/alloc.c -o '$out/alloc' -lbearssl && '$out/alloc' /etc/ssl/certs/ca-certificates.crt"
libbearssl_a=$(ls /usr/lib/*/libbearssl.a /usr/lib/libbearssl.a 2>/dev/null | head -1)
check "linked with libbearssl.a (static)" gcc -std=c99 $WARN tests/compile/impl_main.c tests/compile/decl_a.c tests/compile/decl_b.c \
    -o "$out/bearstatic" ${libbearssl_a:-/nonexistent/libbearssl.a}
check "static build has no libbearssl.so dependency" bash -c "! ldd '$out/bearstatic' | grep -q bearssl"
# The README: make links BearSSL's static library into tlsmail-send when the
# compiler finds one, so the tool needs only the C library.
if [ -n "$libbearssl_a" ]; then
    check "make's tlsmail-send has BearSSL linked in: no libbearssl.so, and it runs" bash -c \
        "test -x '$build/tlsmail-send' && ! ldd '$build/tlsmail-send' | grep -q bearssl && '$build/tlsmail-send' --version"
fi
check "only tlsmail_ symbols exported" bash -c \
    "gcc -std=c99 -c -x c - -o '$out/sym.o' <<<'#define TLSMAIL_IMPLEMENTATION
#include \"$PWD/tlsmail.h\"' && ! nm -g --defined-only '$out/sym.o' | awk '{print \$3}' | grep -v '^tlsmail_'"
# tlsmail-send: warning-free as C99 with both compilers and as C++.
for cc in gcc clang; do
    check "tlsmail-send: $cc -std=c99" $cc -std=c99 $WARN -DTLSMAIL_STARTTLS -I. \
        examples/tlsmail-send/tlsmail-send.c -o "$out/tlsmail-send-$cc" -lbearssl
done
check "tlsmail-send: g++ -x c++ -std=c++11" g++ -x c++ -std=c++11 -Wall -Wextra -Wpedantic -Werror \
    -Wshadow -DTLSMAIL_STARTTLS -I. examples/tlsmail-send/tlsmail-send.c -o "$out/tlsmail-send-cxx" -lbearssl
# Every combination of the switches a user can pick, with both compilers.
for sw in "" "-DTLSMAIL_STARTTLS" "-DTLSMAIL_NO_SOCKETS" "-DTLSMAIL_NO_STDIO" \
          "-DTLSMAIL_STARTTLS -DTLSMAIL_NO_SOCKETS" "-DTLSMAIL_STARTTLS -DTLSMAIL_NO_STDIO" \
          "-DTLSMAIL_NO_SOCKETS -DTLSMAIL_NO_STDIO" \
          "-DTLSMAIL_STARTTLS -DTLSMAIL_NO_SOCKETS -DTLSMAIL_NO_STDIO" \
          "-DTLSMAIL_STATIC -DTLSMAIL_STARTTLS -DTLSMAIL_NO_SOCKETS -DTLSMAIL_NO_STDIO" \
          "-DTLSMAIL_NO_THREADS" "-DTLSMAIL_STARTTLS -DTLSMAIL_NO_THREADS" \
          "-DTLSMAIL_NO_THREADS -DTLSMAIL_NO_STDIO" \
          "-DTLSMAIL_STATIC -DTLSMAIL_STARTTLS -DTLSMAIL_NO_THREADS -DTLSMAIL_NO_STDIO" \
          "-DTLSMAIL_SMALL" "-DTLSMAIL_SMALL -DTLSMAIL_STARTTLS -DTLSMAIL_NO_THREADS" \
          "-DTLSMAIL_SMALL -DTLSMAIL_NO_SOCKETS -DTLSMAIL_NO_STDIO"; do
    for cc in gcc clang; do
        # shellcheck disable=SC2086 # the switches are a word list
        check "$cc switches: ${sw:-(none)}" $cc -std=c99 $WARN $sw -I. -c "$impl" -o "$out/sw.o"
    done
done
check "g++ -DTLSMAIL_SMALL -DTLSMAIL_STARTTLS" g++ -x c++ -std=c++11 -Wall -Wextra -Wpedantic -Werror \
    -DTLSMAIL_SMALL -DTLSMAIL_STARTTLS -I. -c "$impl" -o "$out/small-cxx.o"
# TLSMAIL_SMALL links one implementation of each piece: with BearSSL's
# static library, the run-time alternatives the default build links are
# gone from the program (and the default build has them, so this can fail).
bear_a=$(gcc -print-file-name=libbearssl.a)
alts='br_(chacha20_|poly1305_|ec_c25519_|ec_p256_m|aes_x86ni|ghash_pclmul|rsa_i62_)'
check "default build links BearSSL's alternatives (ChaCha20, X25519, AES-NI, i62)" bash -c \
    "gcc -std=c99 -Os -ffunction-sections -I. tests/integration/gosend.c '$bear_a' -Wl,--gc-sections -o '$out/gs-full' && [ \$(nm '$out/gs-full' | grep -cE ' $alts') -ge 6 ]"
check "TLSMAIL_SMALL links none of them (tlsmail-send and the one call)" bash -c \
    "gcc -std=c99 -Os -ffunction-sections -DTLSMAIL_SMALL -I. tests/integration/gosend.c '$bear_a' -Wl,--gc-sections -o '$out/gs-small' && ! nm '$out/gs-small' | grep -E ' $alts' && gcc -std=c99 -Os -ffunction-sections -DTLSMAIL_SMALL -DTLSMAIL_STARTTLS -I. examples/tlsmail-send/tlsmail-send.c '$bear_a' -Wl,--gc-sections -o '$out/ts-small' && ! nm '$out/ts-small' | grep -E ' $alts'"
# Name lookups run in a thread of their own, unless TLSMAIL_NO_THREADS.
check "g++ -DTLSMAIL_NO_THREADS" g++ -x c++ -std=c++11 -Wall -Wextra -Wpedantic -Werror -DTLSMAIL_NO_THREADS -I. -c "$impl" -o "$out/nt-cxx.o"
check "by default the lookup runs in a thread (pthread_create in the object)" bash -c \
    "gcc -std=c99 -O0 -I. -c '$impl' -o '$out/thr.o' && nm -u '$out/thr.o' | grep -qE ' pthread_create(@|$)'"
check "TLSMAIL_NO_THREADS: no thread calls in the object" bash -c \
    "gcc -std=c99 -O0 -DTLSMAIL_NO_THREADS -I. -c '$impl' -o '$out/nothr.o' && nm -u '$out/nothr.o' | grep -q getaddrinfo && ! nm -u '$out/nothr.o' | grep -E ' pthread_'"
check "TLSMAIL_NO_THREADS program links and runs" bash -c \
    "gcc -std=c99 $WARN -DTLSMAIL_NO_THREADS tests/compile/impl_main.c tests/compile/decl_a.c tests/compile/decl_b.c -o '$out/nothr' -lbearssl && '$out/nothr'"
check "the API index, the declaration headings and the implementation markers agree" \
    /usr/bin/python3 tests/compile/layout.py tlsmail.h
check "examples/minimal.c builds" gcc -std=c99 $WARN -I. examples/minimal.c -o "$out/minimal" -lbearssl
check "examples/minimal.c is the doc's quick start" /usr/bin/python3 -c "
import sys
h = open('tlsmail.h').read(); ex = open('examples/minimal.c').read()
a = h.index('QUICK START'); a = h.index('\n\n', a) + 2; b = h.index('COMPILE-TIME OPTIONS')
doc = [l[7:] for l in h[a:b].rstrip().split('\n')]
body = ex.split('\n', 1)[1].rstrip().split('\n')
sys.exit(0 if doc == body else 1)"
check "examples/minimal.c is the README's quick start" /usr/bin/python3 -c "
import sys
r = open('README.md').read(); ex = open('examples/minimal.c').read()
a = r.index('## Quick start'); a = r.index('\\x60\\x60\\x60c\\n', a) + 5; b = r.index('\\x60\\x60\\x60', a)
sys.exit(0 if r[a:b].rstrip() == ex.split('\\n', 1)[1].rstrip() else 1)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
