#!/usr/bin/env bash
# tests/cross/run.sh BUILD_DIR [-k SUBSTR]... - tlsmail built for musl,
# aarch64, armhf, Windows and a Cortex-M4, sending real mail to a local
# server (under qemu-user and wine where the CPU or the system differs) and
# the Cortex-M4 image held to tests/cross/budget.txt. BearSSL is built from
# Debian's source package once per target and cached in BUILD_DIR/cross.
# Prints PASS/FAIL per case and "N passed, N failed" last.
set -u
cd "$(dirname "$0")/../.." || exit 2
build=${1:-build}
[ $# -gt 0 ] && shift
exec /usr/bin/python3 tests/cross/test_cross.py --build "$build" "$@"
