#!/usr/bin/env bash
# make bench: installs the other clients when missing (Debian, as root), then
# runs bench/run.py against build/tlsmail-send.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
need=()
for p in curl:curl msmtp:msmtp time:/usr/bin/time python3-aiosmtpd:/usr/lib/python3/dist-packages/aiosmtpd openssl:openssl; do
    pkg=${p%%:*} probe=${p#*:}
    if [[ $probe == /* ]]; then [ -e "$probe" ] || need+=("$pkg"); else command -v "$probe" >/dev/null || need+=("$pkg"); fi
done
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
exec /usr/bin/python3 bench/run.py --tlsmail-send "$build/tlsmail-send" "${@:2}"
