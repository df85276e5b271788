#!/usr/bin/env bash
# tests/tls/certs.sh OUTDIR - the certificates of the TLS policy matrix
# (tests/tls/test_tls.py), made with the openssl CLI only (OpenSSL 3.0).
#
# For every matrix row ROW:
#   ROW.key        the server's private key
#   ROW.crt        the server's certificate (the leaf)
#   ROW.chain.pem  what the server sends: the leaf, then its intermediates
#   ROW.int.pem    the intermediates alone (empty when there are none)
#   ROW.ca.pem     the root the client is given as its trust
# plus the CAs themselves (NAME.crt / NAME.key) and rows.txt, the row names.
#
# Unless a row says otherwise a leaf is EC P-256, signed with SHA-256 by
# ca-root-ec (P-256), CN=localhost, SAN DNS:localhost, keyUsage
# digitalSignature (RSA: and keyEncipherment), EKU serverAuth, with key
# identifiers, valid from now for 825 days; CAs have basicConstraints
# critical CA:TRUE and keyUsage keyCertSign, cRLSign. Everything else is
# the one thing the row is about. Every certificate is made with `openssl
# ca`, the one OpenSSL 3.0 command that sets arbitrary dates.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
OUT=$1
OPENSSL=${OPENSSL:-openssl}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "$OUT/.certs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

mkdir db
: > db/index.txt
echo 1000 > db/serial
cat > ca.cnf <<'CNF'
[ ca ]
default_ca = matrix
[ matrix ]
database         = ./db/index.txt
serial           = ./db/serial
new_certs_dir    = ./db
policy           = any
unique_subject   = no
copy_extensions  = none
[ any ]
organizationName = optional
commonName       = optional
CNF

# newkey FILE TYPE: ec256 ec384 ec521 ec224 bp256 rsa1024 rsa2048
newkey() {
    case $2 in
        ec256) set -- "$1" EC ec_paramgen_curve:P-256 ;;
        ec384) set -- "$1" EC ec_paramgen_curve:P-384 ;;
        ec521) set -- "$1" EC ec_paramgen_curve:P-521 ;;
        ec224) set -- "$1" EC ec_paramgen_curve:P-224 ;;
        bp256) set -- "$1" EC ec_paramgen_curve:brainpoolP256r1 ;;
        rsa1024) set -- "$1" RSA rsa_keygen_bits:1024 ;;
        rsa2048) set -- "$1" RSA rsa_keygen_bits:2048 ;;
        *) echo "certs.sh: unknown key type $2" >&2; exit 1 ;;
    esac
    "$OPENSSL" genpkey -algorithm "$2" -pkeyopt "$3" -out "$1" 2>/dev/null
}

# issue NAME ISSUER MD CN EXTFILE START END SIGOPT: NAME.crt from NAME.key.
# ISSUER "self": self-signed. START/END empty: now, for 825 days. EXTFILE
# empty: no extensions at all (a version 1 certificate).
issue() {
    local name=$1 issuer=$2 md=$3 cn=$4 ext=$5 start=$6 end=$7 sigopt=$8 args
    args=(-batch -config ca.cnf -notext -md "$md" -subj "/O=tlsmail test/CN=$cn"
          -in "$name.csr" -out "$name.crt")
    "$OPENSSL" req -new -key "$name.key" -subj "/O=tlsmail test/CN=$cn" -out "$name.csr" 2>/dev/null
    if [ "$issuer" = self ]; then args+=(-selfsign -keyfile "$name.key")
    else args+=(-cert "$issuer.crt" -keyfile "$issuer.key"); fi
    if [ -n "$start" ]; then args+=(-startdate "$start" -enddate "$end")
    else args+=(-days 825); fi
    [ -n "$ext" ] && args+=(-extfile "$ext")
    # shellcheck disable=SC2206
    [ -n "$sigopt" ] && args+=($sigopt)
    "$OPENSSL" ca "${args[@]}" 2>ca.err || { cat ca.err >&2; exit 1; }
}

# ca NAME [issuer=self] [kt=ec256] [md=sha256] [bc=...] [ku=...] [extra=EXT-LINE]
#    [start= end=]
ca() {
    local name=$1; shift
    local issuer=self kt=ec256 md=sha256 bc="critical,CA:TRUE" ku="critical,keyCertSign,cRLSign"
    local start="" end="" v1="" extra=""
    [ $# -eq 0 ] || local "$@"
    newkey "$name.key" "$kt"
    if [ -n "$v1" ]; then
        issue "$name" "$issuer" "$md" "$name" "" "$start" "$end" ""
        return
    fi
    {
        [ -n "$bc" ] && echo "basicConstraints=$bc"
        [ -n "$ku" ] && echo "keyUsage=$ku"
        [ -n "$extra" ] && echo "$extra"
        echo "subjectKeyIdentifier=hash"
        [ "$issuer" = self ] || echo "authorityKeyIdentifier=keyid,issuer"
    } > "$name.ext"
    issue "$name" "$issuer" "$md" "$name" "$name.ext" "$start" "$end" ""
}

# leaf ROW [issuer=ca-root-ec] [kt=ec256] [md=sha256] [cn=localhost]
#      [san=DNS:localhost] [eku=serverAuth] [ku=...] [extra=EXT-LINE]
#      [start= end=] [sigopt="-sigopt k:v ..."]; empty san or eku: none.
leaf() {
    local name=$1; shift
    local issuer=ca-root-ec kt=ec256 md=sha256 cn=localhost san=DNS:localhost eku=serverAuth
    local ku="" extra="" start="" end="" sigopt=""
    [ $# -eq 0 ] || local "$@"
    if [ -z "$ku" ]; then
        case $kt in rsa*) ku="critical,digitalSignature,keyEncipherment" ;;
                    *) ku="critical,digitalSignature" ;; esac
    fi
    newkey "$name.key" "$kt"
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=$ku"
        [ -n "$eku" ] && echo "extendedKeyUsage=$eku"
        [ -n "$san" ] && echo "subjectAltName=$san"
        [ -n "$extra" ] && echo "$extra"
        echo "subjectKeyIdentifier=hash"
        echo "authorityKeyIdentifier=keyid,issuer"
    } > "$name.ext"
    issue "$name" "$issuer" "$md" "$cn" "$name.ext" "$start" "$end" "$sigopt"
}

ROWS=()
# row ROW ROOT [INTERMEDIATE...]: the files the suite reads, intermediates
# in the order the server sends them.
row() {
    local name=$1 root=$2 i; shift 2
    : > "$name.int.pem"
    for i in "$@"; do cat "$i.crt" >> "$name.int.pem"; done
    cat "$name.crt" "$name.int.pem" > "$name.chain.pem"
    cp "$root.crt" "$name.ca.pem"
    ROWS+=("$name")
}

# ---- roots
ca ca-root-ec
ca ca-root-rsa kt=rsa2048
ca ca-root-rsa1024 kt=rsa1024
ca ca-root-sha1 md=sha1
ca ca-root-expired start=20150101000000Z end=20200101000000Z
ca ca-root-nobc bc=""
ca ca-root-v1 v1=1
ca ca-root-other

# ---- intermediates (under ca-root-ec unless said otherwise)
ca ca-int-ec issuer=ca-root-ec
ca ca-int-rsa1024 issuer=ca-root-rsa kt=rsa1024
ca ca-int-sha1 issuer=ca-root-ec md=sha1
ca ca-int-nobc issuer=ca-root-ec bc=""
ca ca-int-cafalse issuer=ca-root-ec bc="critical,CA:FALSE"
ca ca-int-pl0 issuer=ca-root-ec bc="critical,CA:TRUE,pathlen:0"
ca ca-int-pl0-sub issuer=ca-int-pl0
ca ca-int-noksign issuer=ca-root-ec ku="critical,digitalSignature,cRLSign"
ca ca-int-expired issuer=ca-root-ec start=20150101000000Z end=20200101000000Z
ca ca-int-p224 issuer=ca-root-ec kt=ec224
ca ca-int-a issuer=ca-root-ec
# name constraints not marked critical (critical ones BearSSL refuses itself)
ca ca-int-nc issuer=ca-root-ec extra="nameConstraints=permitted;DNS:.allowed.test"
ca ca-root-nc extra="nameConstraints=permitted;DNS:.allowed.test"
ca ca-root-eku-client extra="extendedKeyUsage=clientAuth"
ca ca-root-pl0 bc="critical,CA:TRUE,pathlen:0"
ca ca-int-under-pl0 issuer=ca-root-pl0
ca ca-root-noksign ku="critical,digitalSignature,cRLSign"
ca ca-int-b issuer=ca-int-a

# ---- keys and algorithms
# leaf ROW [what the row changes]              row ROW ROOT [INTERMEDIATES as sent]
leaf ec-p256;                                   row ec-p256 ca-root-ec
leaf rsa-2048 issuer=ca-root-rsa kt=rsa2048;    row rsa-2048 ca-root-rsa
leaf rsa-1024-leaf issuer=ca-root-rsa kt=rsa1024
row rsa-1024-leaf ca-root-rsa
leaf rsa-1024-int issuer=ca-int-rsa1024;        row rsa-1024-int ca-root-rsa ca-int-rsa1024
leaf rsa-1024-root issuer=ca-root-rsa1024;      row rsa-1024-root ca-root-rsa1024
leaf ec-p384 kt=ec384;                          row ec-p384 ca-root-ec
leaf ec-p521 kt=ec521;                          row ec-p521 ca-root-ec
leaf ec-p224-leaf kt=ec224;                     row ec-p224-leaf ca-root-ec
leaf ec-p224-int issuer=ca-int-p224;            row ec-p224-int ca-root-ec ca-int-p224
leaf ec-bp256-leaf kt=bp256;                    row ec-bp256-leaf ca-root-ec
leaf sha1-leaf md=sha1;                         row sha1-leaf ca-root-ec
leaf sha1-leaf-rsa issuer=ca-root-rsa kt=rsa2048 md=sha1
row sha1-leaf-rsa ca-root-rsa
leaf sha1-int issuer=ca-int-sha1;               row sha1-int ca-root-ec ca-int-sha1
leaf sha1-root issuer=ca-root-sha1;             row sha1-root ca-root-sha1
leaf sha224-leaf md=sha224;                     row sha224-leaf ca-root-ec
leaf md5-leaf issuer=ca-root-rsa kt=rsa2048 md=md5
row md5-leaf ca-root-rsa
leaf sha384-leaf md=sha384;                     row sha384-leaf ca-root-ec
leaf sha512-leaf-rsa issuer=ca-root-rsa kt=rsa2048 md=sha512
row sha512-leaf-rsa ca-root-rsa
leaf rsa-pss-leaf issuer=ca-root-rsa kt=rsa2048 \
    sigopt="-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32"
row rsa-pss-leaf ca-root-rsa

# ---- chains and CAs
leaf chain-int issuer=ca-int-ec;                row chain-int ca-root-ec ca-int-ec
leaf chain-2int issuer=ca-int-b;                row chain-2int ca-root-ec ca-int-b ca-int-a
leaf chain-order issuer=ca-int-b;               row chain-order ca-root-ec ca-int-a ca-int-b
leaf chain-missing-int issuer=ca-int-ec;        row chain-missing-int ca-root-ec
leaf untrusted-root issuer=ca-root-other;       row untrusted-root ca-root-ec
leaf int-nobc issuer=ca-int-nobc;               row int-nobc ca-root-ec ca-int-nobc
leaf int-cafalse issuer=ca-int-cafalse;         row int-cafalse ca-root-ec ca-int-cafalse
leaf int-pathlen issuer=ca-int-pl0-sub;         row int-pathlen ca-root-ec ca-int-pl0-sub ca-int-pl0
leaf int-noksign issuer=ca-int-noksign;         row int-noksign ca-root-ec ca-int-noksign
leaf root-nobc issuer=ca-root-nobc;             row root-nobc ca-root-nobc
leaf root-v1 issuer=ca-root-v1;                 row root-v1 ca-root-v1
leaf int-nc issuer=ca-int-nc;                   row int-nc ca-root-ec ca-int-nc
leaf int-nc-within issuer=ca-int-nc cn=a.allowed.test san=DNS:a.allowed.test
row int-nc-within ca-root-ec ca-int-nc
leaf root-nc issuer=ca-root-nc;                 row root-nc ca-root-nc
leaf root-eku-client issuer=ca-root-eku-client; row root-eku-client ca-root-eku-client
leaf root-pathlen issuer=ca-int-under-pl0;      row root-pathlen ca-root-pl0 ca-int-under-pl0
leaf root-noksign issuer=ca-root-noksign;       row root-noksign ca-root-noksign
leaf anchor-int issuer=ca-int-ec;               row anchor-int ca-int-ec ca-int-ec

# ---- key usage and extended key usage
leaf eku-clientauth eku=clientAuth;             row eku-clientauth ca-root-ec
leaf eku-server-client eku=serverAuth,clientAuth
row eku-server-client ca-root-ec
leaf eku-any eku=anyExtendedKeyUsage;           row eku-any ca-root-ec
leaf eku-none eku="";                           row eku-none ca-root-ec
leaf eku-email eku=emailProtection;             row eku-email ca-root-ec
leaf eku-critical eku=critical,serverAuth;      row eku-critical ca-root-ec
leaf ku-ec-keyagreement ku=critical,keyAgreement
row ku-ec-keyagreement ca-root-ec
leaf ku-rsa-keyencipherment issuer=ca-root-rsa kt=rsa2048 ku=critical,keyEncipherment
row ku-rsa-keyencipherment ca-root-rsa
leaf critical-ext extra="1.3.6.1.4.1.55555.1=critical,ASN1:UTF8String:tlsmail test"
row critical-ext ca-root-ec

# ---- validity
leaf expired start=20200101000000Z end=20210101000000Z
row expired ca-root-ec
leaf not-yet-valid start=20990101000000Z end=21000101000000Z
row not-yet-valid ca-root-ec
leaf int-expired issuer=ca-int-expired;         row int-expired ca-root-ec ca-int-expired
leaf root-expired issuer=ca-root-expired;       row root-expired ca-root-expired

# ---- names
leaf wronghost cn=wrong.example san=DNS:wrong.example
row wronghost ca-root-ec
leaf wildcard cn=wild.example.test san=DNS:*.example.test
row wildcard ca-root-ec
leaf wildcard-partial cn=wild.example.test san=DNS:f*.example.test
row wildcard-partial ca-root-ec
leaf wildcard-inner cn=wild.example.test san=DNS:a.*.example.test
row wildcard-inner ca-root-ec
leaf wildcard-tld cn=wild.test san=DNS:*.test;  row wildcard-tld ca-root-ec
leaf wildcard-tld-exact cn=mail.test san=DNS:*.test,DNS:mail.test
row wildcard-tld-exact ca-root-ec
leaf san-upper san=DNS:LOCALHOST;               row san-upper ca-root-ec
leaf cn-only san="";                            row cn-only ca-root-ec
leaf cn-not-san san=DNS:other.example;          row cn-not-san ca-root-ec
leaf cn-wildcard cn=*.example.test san="";      row cn-wildcard ca-root-ec
leaf cn-wildcard-tld cn=*.test san="";          row cn-wildcard-tld ca-root-ec
leaf ip-san-only cn=ip.example san=IP:127.0.0.1
row ip-san-only ca-root-ec
leaf ip-san-cn san=IP:127.0.0.1;                row ip-san-cn ca-root-ec
leaf ip-dns-san san=DNS:localhost,IP:127.0.0.1,IP:::1
row ip-dns-san ca-root-ec

# sanity: the good rows verify as they are meant to
for r in ec-p256 rsa-2048 chain-int chain-2int; do
    if [ -s "$r.int.pem" ]; then
        "$OPENSSL" verify -CAfile "$r.ca.pem" -untrusted "$r.int.pem" "$r.crt" >/dev/null
    else
        "$OPENSSL" verify -CAfile "$r.ca.pem" "$r.crt" >/dev/null
    fi
done

chmod 600 ./*.key
printf '%s\n' "${ROWS[@]}" > rows.txt
mv -f ./*.key ./*.crt ./*.pem rows.txt "$OUT/"
