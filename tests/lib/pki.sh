#!/usr/bin/env bash
# tests/lib/pki.sh OUTDIR - throw-away test PKI for the tlsmail integration tests.
#
#   ca.crt/ca.key            test root CA (EC P-256)
#   good                     CN=localhost, SAN DNS:localhost (EC P-256)
#   good-rsa                 same, RSA-2048 key
#   wronghost                CN=wrong.example, SAN DNS:wrong.example
#   cnonly                   CN=localhost, SAN DNS:other.example
#   expired                  SAN DNS:localhost, validity 2020-01-01..2021-01-01
#   untrusted                SAN DNS:localhost, signed by rogue-ca
#   selfsigned               self-signed, SAN DNS:localhost; selfsigned.pin
#   rogue-ca.crt/.key        a second CA the client is never given
#   ca-crlf.crt ca-nonl.crt  the CA PEM with CRLF ends / without final newline
#   bundle.crt               rogue CA + CA
#   empty.crt                an empty file (no certificate at all)
#
# Server certificates are NAME.crt (leaf only) and NAME.key (PKCS#8 PEM).
# Idempotent: does nothing when OUTDIR/ca.crt is newer than this script and
# every output exists. Uses only the openssl CLI (tested with OpenSSL 3.0).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
OUT=$1
SELF=${BASH_SOURCE[0]}
NAMES="good good-rsa wronghost cnonly expired untrusted selfsigned"
OUTPUTS="ca.crt ca.key rogue-ca.crt rogue-ca.key ca-crlf.crt ca-nonl.crt bundle.crt empty.crt selfsigned.pin"
for n in $NAMES; do OUTPUTS="$OUTPUTS $n.crt $n.key"; done

mkdir -p "$OUT"
if [ -f "$OUT/ca.crt" ] && [ "$OUT/ca.crt" -nt "$SELF" ]; then
    complete=1
    for f in $OUTPUTS; do [ -f "$OUT/$f" ] || complete=0; done
    if [ $complete = 1 ]; then exit 0; fi
fi

OPENSSL=${OPENSSL:-openssl}
WORK=$(mktemp -d "$OUT/.pki.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

eckey() { "$OPENSSL" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
rsakey() { "$OPENSSL" genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }
serial() { echo "0x$("$OPENSSL" rand -hex 8)"; }

# ca NAME CN: self-signed CA certificate
mkca() {
    eckey "$1.key"
    "$OPENSSL" req -new -x509 -key "$1.key" -out "$1.crt" -days 3650 -sha256 \
        -subj "/O=tlsmail test/CN=$2" -set_serial "$(serial)" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" 2>/dev/null
}

# leaf NAME CN SAN CANAME KEYTYPE: server certificate signed by CANAME
leaf() {
    local name=$1 cn=$2 san=$3 ca=$4 kt=$5 ku
    if [ "$kt" = rsa ]; then rsakey "$name.key"; ku="digitalSignature,keyEncipherment"
    else eckey "$name.key"; ku="digitalSignature"; fi
    cat > "$name.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,$ku
extendedKeyUsage=serverAuth
subjectAltName=$san
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
    "$OPENSSL" req -new -key "$name.key" -subj "/O=tlsmail test/CN=$cn" -out "$name.csr" 2>/dev/null
    "$OPENSSL" x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" \
        -set_serial "$(serial)" -days 825 -sha256 -extfile "$name.ext" \
        -out "$name.crt" 2>/dev/null
}

mkca ca "tlsmail test root CA"
mkca rogue-ca "tlsmail rogue CA"

leaf good       localhost      DNS:localhost     ca       ec
leaf good-rsa   localhost      DNS:localhost     ca       rsa
leaf wronghost  wrong.example  DNS:wrong.example ca       ec
leaf cnonly     localhost      DNS:other.example ca       ec
leaf untrusted  localhost      DNS:localhost     rogue-ca ec

# expired: `openssl x509 -req` of OpenSSL 3.0 cannot set dates, `openssl ca` can.
eckey expired.key
"$OPENSSL" req -new -key expired.key -subj "/O=tlsmail test/CN=localhost" -out expired.csr 2>/dev/null
mkdir -p ca.db
: > ca.db/index.txt
echo 1000 > ca.db/serial
cat > ca.cnf <<'CNF'
[ ca ]
default_ca = test_ca
[ test_ca ]
dir              = .
database         = ./ca.db/index.txt
serial           = ./ca.db/serial
new_certs_dir    = ./ca.db
certificate      = ./ca.crt
private_key      = ./ca.key
default_md       = sha256
policy           = policy_any
unique_subject   = no
copy_extensions  = none
x509_extensions  = leaf_ext
[ policy_any ]
organizationName = optional
commonName       = supplied
[ leaf_ext ]
basicConstraints = critical,CA:FALSE
keyUsage         = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName   = DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
"$OPENSSL" ca -batch -config ca.cnf -notext -in expired.csr -out expired.crt \
    -startdate 20200101000000Z -enddate 20210101000000Z 2>/dev/null

# selfsigned: its own issuer; trusted only through the key pin
eckey selfsigned.key
"$OPENSSL" req -new -x509 -key selfsigned.key -out selfsigned.crt -days 825 -sha256 \
    -subj "/O=tlsmail test/CN=localhost" -set_serial "$(serial)" \
    -addext "subjectAltName=DNS:localhost" \
    -addext "keyUsage=critical,digitalSignature" \
    -addext "extendedKeyUsage=serverAuth" 2>/dev/null
"$OPENSSL" x509 -in selfsigned.crt -pubkey -noout | "$OPENSSL" pkey -pubin -outform der \
    | "$OPENSSL" dgst -sha256 -binary | "$OPENSSL" base64 -A > selfsigned.pin
echo >> selfsigned.pin

# trust file variants
sed 's/$/\r/' ca.crt > ca-crlf.crt
printf '%s' "$(cat ca.crt)" > ca-nonl.crt
cat rogue-ca.crt ca.crt > bundle.crt
: > empty.crt

# sanity: each leaf verifies against its issuer (expired only with a past time)
for n in good good-rsa wronghost cnonly; do
    "$OPENSSL" verify -CAfile ca.crt "$n.crt" >/dev/null
done
"$OPENSSL" verify -CAfile rogue-ca.crt untrusted.crt >/dev/null
"$OPENSSL" verify -CAfile ca.crt -no_check_time expired.crt >/dev/null
if "$OPENSSL" verify -CAfile ca.crt expired.crt >/dev/null 2>&1; then
    echo "pki.sh: expired.crt is not expired" >&2; exit 1
fi

chmod 600 ./*.key
# ca.crt last, so an interrupted run is never mistaken for a complete one
for f in $OUTPUTS; do
    [ "$f" = ca.crt ] || mv -f "$f" "../$f"
done
mv -f ca.crt ../ca.crt
