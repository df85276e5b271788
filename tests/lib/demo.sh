#!/usr/bin/env bash
# tests/lib/demo.sh - what `make demo` runs: send one mail through tlsmail-send to
# a throw-away local SMTP server (aiosmtpd, implicit TLS, a demo user) and
# show the dialogue and the message as the server stored it.
#
#   bash tests/lib/demo.sh [BUILD_DIR]      (default build/)
#
# On a fresh Debian machine, as root, it first installs what is missing
# (gcc, make, libbearssl-dev, python3-aiosmtpd, openssl) with apt-get. It
# listens on 127.0.0.1 only, every wait is bounded, and the server and the
# temporary PKI are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
PY=/usr/bin/python3
CC=${CC:-gcc}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# ---- 1. packages, only the missing ones
bash tests/deps.sh demo

# ---- 2. build tlsmail-send
mkdir -p "$BUILD"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsmail-demo.XXXXXX")
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say "building $BUILD/tlsmail-send"
(set -x; "$CC" -std=c99 -O2 -Wall -Wextra -DTLSMAIL_STARTTLS -I. examples/tlsmail-send/tlsmail-send.c \
    -o "$BUILD/tlsmail-send" -lbearssl)

# ---- 3. a throw-away CA and a certificate for localhost
say "making a throw-away CA and a localhost certificate (tests/lib/pki.sh)"
bash tests/lib/pki.sh "$WORK/pki"
echo "CA: $WORK/pki/ca.crt   server: $WORK/pki/good.crt"

# ---- 4. the server: aiosmtpd, implicit TLS, AUTH required
DEMO_USER=demo@example.org
DEMO_PASSWORD=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
say "starting tests/lib/smtpd.py on 127.0.0.1 (implicit TLS, user $DEMO_USER)"
"$PY" tests/lib/smtpd.py --port 0 --host 127.0.0.1 --cert "$WORK/pki/good.crt" \
    --key "$WORK/pki/good.key" --spool "$WORK/spool" --user "$DEMO_USER:$DEMO_PASSWORD" \
    >"$WORK/smtpd.out" 2>"$WORK/smtpd.err" </dev/null &
SERVER_PID=$!
PORT=
for _ in $(seq 100); do   # at most 10 s
    if [ -s "$WORK/spool/port" ]; then PORT=$(cat "$WORK/spool/port"); break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$PORT" ]; then
    echo "demo: the server did not start:" >&2
    cat "$WORK/smtpd.err" >&2
    exit 1
fi
echo "listening on localhost:$PORT"

# ---- 5. send
say "sending (the SMTP dialogue, AUTH masked, on stderr)"
BODY='Hello from tlsmail-send!\n\nThis message went over implicit TLS (RFC 8314),\nverified against a throw-away CA.\n'
cat <<CMD
\$ printf '$BODY' |
    TLSMAIL_PASSWORD=... $BUILD/tlsmail-send -v --timeout 10 \\
        --server localhost:$PORT --cafile $WORK/pki/ca.crt --user $DEMO_USER \\
        --from "Demo Sender <$DEMO_USER>" --subject "tlsmail demo ✓" you@example.org
CMD
rc=0
# shellcheck disable=SC2059
printf "$BODY" |
    TLSMAIL_PASSWORD=$DEMO_PASSWORD "$BUILD/tlsmail-send" -v --timeout 10 \
        --server "localhost:$PORT" --cafile "$WORK/pki/ca.crt" --user "$DEMO_USER" \
        --from "Demo Sender <$DEMO_USER>" --subject "tlsmail demo ✓" you@example.org 2>&1 || rc=$?
echo "exit status: $rc (0: sent; see --help for the others)"
[ "$rc" -eq 0 ] || exit "$rc"

# ---- 6. what the server stored
for _ in $(seq 50); do [ -f "$WORK/spool/001.eml" ] && break; sleep 0.1; done
say "the message as the server stored it ($WORK/spool/001.eml)"
cat "$WORK/spool/001.eml"
say "its envelope"
cat "$WORK/spool/001.json"
say "done: server stopped, temporary files removed"
