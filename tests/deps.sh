#!/usr/bin/env bash
# tests/deps.sh SET... - install the Debian packages a make target needs, only
# those missing (as root, or through sudo). SETs: demo, quick, test, cross,
# check, bench.
# One list for make demo, make test, make check, make bench and CI.
set -euo pipefail
declare -A sets=(
    [demo]="gcc make libc6-dev libbearssl-dev python3-aiosmtpd openssl ca-certificates"
    [quick]="gcc g++ clang make libc6-dev binutils libbearssl-dev openssl ca-certificates"
    [test]="gcc g++ clang make libc6-dev binutils libbearssl-dev python3-aiosmtpd openssl ca-certificates libclang-rt-14-dev valgrind bsd-mailx git git-email libmailtools-perl pkgconf time iproute2 util-linux mount strace"
    [check]="clang cppcheck clang-tidy"
    # tests/cross: cross compilers and C libraries, qemu-user, wine, and
    # dpkg-dev for apt-get source bearssl; clang for the C++ build against
    # mingw's headers; iproute2, util-linux and mount for the namespace of
    # the dead-resolver cases (tests/resolve/deadns.py).
    [cross]="gcc make libc6-dev binutils libbearssl-dev dpkg-dev python3-aiosmtpd openssl musl-tools gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross qemu-user gcc-arm-none-eabi libnewlib-arm-none-eabi gcc-mingw-w64-x86-64 wine64 clang iproute2 util-linux mount"
    [bench]="curl msmtp valgrind musl-tools binutils openssl ca-certificates iproute2 util-linux"
    # tests/real: Postfix + Dovecot SASL and nodemailer's smtp-server (npm ci
    # of tests/real/package-lock.json happens in the suite, into the build dir)
    [real]="postfix dovecot-core nodejs npm openssl"
)
sets[test]+=" ${sets[real]}"
want=()
for s in "$@"; do
    [ -n "${sets[$s]:-}" ] || { echo "deps.sh: unknown set '$s'" >&2; exit 2; }
    # shellcheck disable=SC2206
    want+=(${sets[$s]})
done
command -v dpkg-query >/dev/null 2>&1 || exit 0   # not Debian: the README lists what to install
missing=()
for p in "${want[@]}"; do
    # a Node.js that brings its own npm (e.g. NodeSource's nodejs) must not
    # get Debian's npm, which would pull Debian's nodejs over it
    [ "$p" = npm ] && command -v npm >/dev/null 2>&1 && continue
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "missing packages: ${missing[*]} (run as root, or install them)" >&2; exit 1; }
    SUDO=sudo
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
case " ${missing[*]} " in
*" postfix "*)  # no debconf question, no system configuration: tests/real runs its own (-c)
    echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections ;;
esac
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
