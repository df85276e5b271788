#!/usr/bin/python3
"""tests/tls/test_tls.py - tlsmail.h's certificate and TLS policy against
real servers, beside `openssl verify`.

    /usr/bin/python3 tests/tls/test_tls.py --build DIR [-k SUBSTR]... [--keep] [-v]

Builds DIR/tlsdial (tests/tls/tlsdial.c), DIR/tlsdial-small (-DTLSMAIL_SMALL)
and DIR/tlsdial-asan (the same
under ASan+UBSan, with $SAN_CC, default clang) when missing or older than
their sources, makes the certificates with tests/tls/certs.sh, then:

  matrix/ROW     a Python ssl server on 127.0.0.1 sends the row's chain;
                 tlsdial dials it under the row's host name with the row's
                 root as trust (EHLO, NOOP, QUIT), and `openssl verify
                 -purpose sslserver -x509_strict -auth_level 2` judges the
                 same chain and name. The case fails when tlsmail's result
                 is not the row's, when tlsmail accepts what openssl refuses
                 and the row gives no written reason, and when SMTP bytes
                 moved over a refused session (or none over an accepted
                 one). The table goes to DIR/tls-matrix.md.
  small/matrix/  the same rows with tlsdial built -DTLSMAIL_SMALL: the same
                 verdict as the default build, for every row.
  clienthello/   the ClientHello as a raw TCP listener reads it: no SHA-1,
                 SHA-224 or MD5 in signature_algorithms; the suites and
                 groups offered by the default and the TLSMAIL_SMALL build.
  ske/           `openssl s_server -sigalgs ...+SHA1`: a ServerKeyExchange
                 signed with SHA-1 must fail the handshake.
  renegotiation  `openssl s_server -tls1_2` sends a HelloRequest after
                 EHLO: no second ClientHello, a clean end in bounded time.
  sni/           what the server sees as SNI for "localhost.", upper case,
                 pinned IPv4 and IPv6 literals.
  certmsg/       a raw TLS server (no TLS library) whose Certificate message
                 carries malformed DER, with a pinned key and with CA trust:
                 an error code, never a signal nor a sanitizer report.

Prints "PASS name: detail" or "FAIL name: reason" per case, then exactly
"N passed, N failed"; exit status 1 on any failure. Standard library only.
"""
import argparse
import base64
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
ROOT = os.path.dirname(TESTS)
sys.path.insert(0, os.path.join(TESTS, "lib"))
from testlib import WARN, CaseFailure, check, free_port, spki_pin  # noqa: E402

TIMEOUT_MS = 3000      # tlsdial's per-wait timeout
# tlsdial-asan: the same driver under ASan and UBSan (the flags of
# tests/lib/sanitize.sh); a report ends it with status 99.
SAN = ["-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
       "-fno-omit-frame-pointer"]
SAN_ENV = {"ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:exitcode=99:abort_on_error=0",
           "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1:exitcode=99"}
RUN_BOUND = 20.0       # seconds one tlsdial may take, whatever happens
SERVER_WAIT = 5.0      # seconds a test server waits for each step

OK, UNTRUSTED, EXPIRED, NAME = "OK", "ECERT_UNTRUSTED", "ECERT_EXPIRED", "ECERT_NAME"
CERT_ERRORS = ("ECERT_UNTRUSTED", "ECERT_EXPIRED", "ECERT_NAME", "ECERT_PIN")


# --------------------------------------------------------------- the matrix --

class Row:
    """One certificate situation. expect: the tlsmail result(s) the policy
    allows. reason: why tlsmail may accept what openssl refuses (it goes into
    the matrix). note: anything else a reader of the matrix should know."""

    def __init__(self, name, expect, what, host="localhost", cert=None, reason=None,
                 note=None):
        self.name, self.what, self.host = name, what, host
        self.expect = (expect,) if isinstance(expect, str) else tuple(expect)
        self.cert = cert or name
        self.reason, self.note = reason, note


ROWS = [
    # keys and algorithms
    Row("ec-p256", OK, "EC P-256 leaf, EC P-256 root: the baseline"),
    Row("rsa-2048", OK, "RSA-2048 leaf, RSA-2048 root"),
    Row("rsa-1024-leaf", UNTRUSTED, "RSA-1024 leaf"),
    Row("rsa-1024-int", UNTRUSTED, "RSA-1024 intermediate"),
    Row("rsa-1024-root", (UNTRUSTED, "ETRUST"), "RSA-1024 root, the trust anchor itself",
        note="OpenSSL at auth_level 2 checks the anchor's key too; so does the policy "
             "(2048 bits everywhere). ETRUST if such an anchor is refused at loading"),
    Row("ec-p384", OK, "EC P-384 leaf"),
    Row("ec-p521", OK, "EC P-521 leaf"),
    Row("ec-p224-leaf", (UNTRUSTED, "ETLS"), "EC P-224 leaf",
        note="BearSSL knows P-256/384/521 only; the server can't sign with a curve the "
             "client doesn't offer, so the handshake may stop before the certificate"),
    Row("ec-p224-int", UNTRUSTED, "EC P-224 intermediate over a P-256 leaf",
        note="the certificate check itself refusing an unknown curve"),
    Row("ec-bp256-leaf", (UNTRUSTED, "ETLS"), "brainpoolP256r1 leaf",
        note="256 bits, but a curve BearSSL lacks"),
    Row("sha1-leaf", UNTRUSTED, "leaf signed ecdsa-with-SHA1"),
    Row("sha1-leaf-rsa", UNTRUSTED, "leaf signed sha1WithRSAEncryption"),
    Row("sha1-int", UNTRUSTED, "intermediate signed with SHA-1"),
    Row("sha1-root", OK, "self-signed SHA-1 root as the anchor",
        note="an anchor's own signature is never verified (RFC 5280 6.1), by OpenSSL "
             "neither"),
    Row("sha224-leaf", UNTRUSTED, "leaf signed ecdsa-with-SHA224",
        note="OpenSSL accepts SHA-224 at auth_level 2 (112 bits); the policy wants "
             "SHA-256 or stronger"),
    Row("md5-leaf", UNTRUSTED, "leaf signed md5WithRSAEncryption"),
    Row("sha384-leaf", OK, "leaf signed ecdsa-with-SHA384"),
    Row("sha512-leaf-rsa", OK, "leaf signed sha512WithRSAEncryption"),
    Row("rsa-pss-leaf", UNTRUSTED, "leaf signed RSASSA-PSS (SHA-256)",
        note="BearSSL 0.6 verifies no RSA-PSS certificate signature"),
    # chains and CAs
    Row("chain-int", OK, "leaf, one SHA-256 EC intermediate"),
    Row("chain-2int", OK, "leaf, two intermediates in order"),
    Row("chain-order", UNTRUSTED, "two intermediates sent root-side first",
        note="BearSSL follows the order RFC 5246 7.4.2 prescribes; OpenSSL "
             "reorders"),
    Row("chain-missing-int", UNTRUSTED, "server leaves out its intermediate"),
    Row("untrusted-root", UNTRUSTED, "leaf from a CA the client was not given"),
    Row("int-nobc", UNTRUSTED, "intermediate without basicConstraints"),
    Row("int-cafalse", UNTRUSTED, "intermediate with basicConstraints CA:FALSE"),
    Row("int-pathlen", UNTRUSTED, "pathlen:0 intermediate over another CA"),
    Row("int-noksign", UNTRUSTED, "intermediate whose keyUsage lacks keyCertSign"),
    Row("root-nobc", UNTRUSTED, "v3 root without basicConstraints"),
    Row("int-nc", UNTRUSTED, "intermediate with nameConstraints (not critical) the leaf breaks"),
    Row("int-nc-within", UNTRUSTED, "intermediate with nameConstraints (not critical) the leaf keeps",
        host="a.allowed.test",
        note="nothing here enforces name constraints, so a certificate with them is refused "
             "whether or not the chain keeps them (BearSSL refuses them marked critical); "
             "OpenSSL accepts"),
    Row("root-nc", UNTRUSTED, "root, the trust anchor, with nameConstraints the leaf breaks",
        note="not used as an anchor: one that narrows its trust in a way nobody checks"),
    Row("root-eku-client", UNTRUSTED, "root, the trust anchor, with EKU clientAuth only",
        note="not used as an anchor: it is not for servers (OpenSSL honours a root's EKU "
             "too)"),
    Row("root-pathlen", OK, "root, the trust anchor, with pathlen:0 over an intermediate",
        reason="RFC 5280 6.1.1 (d) takes only the anchor's name and key, not its "
               "constraints (RFC 5937 would), and BearSSL keeps no more; OpenSSL applies "
               "the root's pathLenConstraint"),
    Row("root-noksign", OK, "root, the trust anchor, whose keyUsage lacks keyCertSign",
        reason="as for pathlen: the anchor's name and key are what is trusted (RFC 5280 "
               "6.1.1 d); OpenSSL checks the root's keyUsage"),
    Row("anchor-int", OK, "an intermediate given as the only trust anchor (a partial chain)",
        reason="any CA certificate the caller names is an anchor, as in BearSSL and "
               "Go; OpenSSL needs X509_V_FLAG_PARTIAL_CHAIN (-partial_chain) for it"),
    Row("root-v1", UNTRUSTED, "version 1 root (no extensions at all)",
        note="no basicConstraints, so no CA for BearSSL. openssl's complaint is the "
             "leaf's authorityKeyIdentifier, which can't name a v1 root's key"),
    # key usage, extended key usage, extensions
    Row("eku-clientauth", UNTRUSTED, "EKU clientAuth only"),
    Row("eku-server-client", OK, "EKU serverAuth, clientAuth"),
    Row("eku-any", OK, "EKU anyExtendedKeyUsage only",
        reason="RFC 5280 4.2.1.12 leaves anyExtendedKeyUsage to the application and the "
               "policy accepts it (as Go does); OpenSSL's sslserver purpose does not"),
    Row("eku-none", OK, "no EKU extension"),
    Row("eku-email", UNTRUSTED, "EKU emailProtection only"),
    Row("eku-critical", UNTRUSTED, "EKU serverAuth, marked critical",
        note="RFC 5280 4.2.1.12 allows a critical EKU and OpenSSL accepts it, but "
             "BearSSL's X.509 engine refuses every critical extension it does not "
             "process itself, and stops there (RFC 5280 4.2 lets it)"),
    Row("ku-ec-keyagreement", (UNTRUSTED, "ETLS"), "EC leaf, keyUsage keyAgreement only",
        note="openssl verify's sslserver purpose allows it, but an ECDHE_ECDSA server "
             "must sign; OpenSSL's own TLS client refuses it as well (the test's "
             "OpenSSL server gives up first: ETLS, its handshake_failure alert)"),
    Row("ku-rsa-keyencipherment", UNTRUSTED,
        "RSA leaf, keyUsage keyEncipherment only",
        note="ECDHE_RSA needs digitalSignature; as above"),
    Row("critical-ext", UNTRUSTED, "unknown critical extension in the leaf"),
    # validity
    Row("expired", EXPIRED, "leaf expired (2020-2021)"),
    Row("not-yet-valid", EXPIRED, "leaf not valid before 2099"),
    Row("int-expired", EXPIRED, "intermediate expired"),
    Row("root-expired", OK, "root, the trust anchor, expired",
        reason="a trust anchor is configuration, not part of the path: RFC 5280 6.1.1 "
               "(d) takes no validity for it and BearSSL keeps none; OpenSSL checks "
               "the root's dates"),
    # names
    Row("wronghost", NAME, "SAN DNS:wrong.example"),
    Row("wildcard-match", OK, "*.example.test for a.example.test", host="a.example.test",
        cert="wildcard"),
    Row("wildcard-apex", NAME, "*.example.test for example.test", host="example.test",
        cert="wildcard"),
    Row("wildcard-multi", NAME, "*.example.test for a.b.example.test",
        host="a.b.example.test", cert="wildcard"),
    Row("wildcard-partial", NAME, "f*.example.test for foo.example.test",
        host="foo.example.test",
        note="OpenSSL matches partial wildcards unless told not to; RFC 6125 6.4.3 "
             "lets a client refuse them"),
    Row("wildcard-inner", NAME, "a.*.example.test for a.b.example.test",
        host="a.b.example.test"),
    Row("wildcard-tld", NAME, "*.test for mail.test", host="mail.test",
        note="BearSSL matches it; the walker refuses a wildcard over one label"),
    Row("wildcard-tld-exact", NAME, "*.test and mail.test for mail.test", host="mail.test",
        note="refused for the *.test beside the exact name, which OpenSSL would match: no "
             "CA may issue such a wildcard (RFC 6125 6.4.3), so the certificate is bad"),
    Row("san-upper", OK, "SAN DNS:LOCALHOST for localhost"),
    Row("host-upper", OK, "SAN DNS:localhost for LOCALHOST", host="LOCALHOST",
        cert="ec-p256"),
    Row("cn-only", OK, "CN=localhost, no SAN extension"),
    Row("cn-not-san", NAME, "SAN DNS:other.example, CN=localhost"),
    Row("cn-wildcard", OK, "CN=*.example.test, no SAN extension, for a.example.test",
        host="a.example.test"),
    Row("cn-wildcard-tld", NAME, "CN=*.test, no SAN extension, for mail.test",
        host="mail.test",
        note="BearSSL matches a wildcard in the CN as in a dNSName; the walker refuses "
             "one over a single label in either"),
    Row("ip-san-only", NAME, "SAN IP:127.0.0.1 only, CN=ip.example, dialled by name"),
    Row("ip-san-cn", NAME, "SAN IP:127.0.0.1 only, CN=localhost, dialled by name",
        note="the CN counts only when there is no subjectAltName extension at all, "
             "as in BearSSL; RFC 9525 drops the CN altogether and Go ignores it; "
             "OpenSSL falls back to the CN when the SAN has no DNS entry"),
    Row("ip-literal-ca", "EINVAL", "SAN DNS:localhost, IP:127.0.0.1; dialled as "
        "127.0.0.1 with CA trust", host="127.0.0.1", cert="ip-dns-san",
        note="an IP literal is dialled only with a pinned key (no iPAddress matching "
             "in BearSSL); openssl -verify_ip accepts"),
    Row("trailing-dot", OK, "SAN DNS:localhost for localhost.", host="localhost.",
        cert="ec-p256",
        reason="the trailing dot is the absolute form of the same DNS name (RFC 1034 "
               "3.1); curl strips it before the name check too, OpenSSL's "
               "X509_check_host does not"),
    Row("ip-literal-dot", "EINVAL", "SAN DNS:localhost, IP:127.0.0.1; dialled as "
        "127.0.0.1. with CA trust", host="127.0.0.1.", cert="ip-dns-san",
        note="the trailing dot does not make an IP literal a name (it would be matched "
             "against the CN)"),
    Row("double-dot", "EINVAL", "SAN DNS:localhost for localhost..",
        host="localhost..", cert="ec-p256",
        note="not a host name (an empty label): refused before the ClientHello"),
]


# ----------------------------------------------------------- wire parsing --

HASHES = {1: "md5", 2: "sha1", 3: "sha224", 4: "sha256", 5: "sha384", 6: "sha512"}
SIGS = {1: "rsa", 2: "dsa", 3: "ecdsa"}


def parse_client_hello(buf):
    """The ClientHello at the start of buf (TLS records, possibly several):
    {"version", "suites", "ext": {type: bytes}}; None while incomplete.
    ValueError when the bytes are not a ClientHello."""
    hs, off = b"", 0
    while True:
        if len(buf) < off + 5:
            return None
        ctype, _ver, n = struct.unpack(">BHH", buf[off:off + 5])
        if ctype != 22:
            raise ValueError("record type %d, not handshake" % ctype)
        if len(buf) < off + 5 + n:
            return None
        hs += buf[off + 5:off + 5 + n]
        off += 5 + n
        if len(hs) >= 4:
            if hs[0] != 1:
                raise ValueError("handshake type %d, not ClientHello" % hs[0])
            hlen = int.from_bytes(hs[1:4], "big")
            if len(hs) >= 4 + hlen:
                break
        if off > 1 << 16:
            raise ValueError("no ClientHello in 64 KB")
    body = hs[4:4 + hlen]

    def take(p, n):
        if p + n > len(body):
            raise ValueError("ClientHello truncated at %d" % p)
        return body[p:p + n], p + n

    version, p = take(0, 2)
    _random, p = take(p, 32)
    sid_len, p = take(p, 1)
    _sid, p = take(p, sid_len[0])
    ns, p = take(p, 2)
    suites_raw, p = take(p, int.from_bytes(ns, "big"))
    nc, p = take(p, 1)
    _comp, p = take(p, nc[0])
    ext = {}
    if p < len(body):
        el, p = take(p, 2)
        end = p + int.from_bytes(el, "big")
        while p < end:
            et, p = take(p, 2)
            ln, p = take(p, 2)
            data, p = take(p, int.from_bytes(ln, "big"))
            ext[int.from_bytes(et, "big")] = data
    suites = [int.from_bytes(suites_raw[i:i + 2], "big") for i in range(0, len(suites_raw), 2)]
    return {"version": int.from_bytes(version, "big"), "suites": suites, "ext": ext}


def hello_sni(hello):
    """The host_name of the server_name extension (RFC 6066 3), or None."""
    data = hello["ext"].get(0)
    if data is None:
        return None
    p, end = 2, 2 + int.from_bytes(data[0:2], "big")
    while p + 3 <= end:
        kind, n = data[p], int.from_bytes(data[p + 1:p + 3], "big")
        if kind == 0:
            return data[p + 3:p + 3 + n].decode("latin-1")
        p += 3 + n
    return None


def hello_sigalgs(hello):
    """signature_algorithms (RFC 5246 7.4.1.4.1) as [(hash, sig)], or None."""
    data = hello["ext"].get(13)
    if data is None:
        return None
    n = int.from_bytes(data[0:2], "big")
    return [(data[i], data[i + 1]) for i in range(2, 2 + n, 2)]


def sigalg_name(h, s):
    if h == 8:  # the TLS 1.3-style code points (RSA-PSS, EdDSA)
        return "0x08%02x" % s
    return "%s+%s" % (SIGS.get(s, "sig%d" % s), HASHES.get(h, "hash%d" % h))


def read_client_hello(conn, deadline, peek=False):
    """Read (or, with peek, look at without consuming) the client's first
    flight until it holds a whole ClientHello; None if the client sent none
    (closed first, or silent until deadline)."""
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        conn.settimeout(left)
        try:
            if peek:
                chunk = conn.recv(65536, socket.MSG_PEEK)
                if not chunk:
                    return None
                if len(chunk) == len(buf):
                    time.sleep(0.01)  # the rest is still on its way
                    continue
                buf = chunk
            else:
                chunk = conn.recv(65536)
                if not chunk:
                    return None
                buf += chunk
        except (socket.timeout, OSError):
            return None
        hello = parse_client_hello(buf)
        if hello is not None:
            return hello


# --------------------------------------------------------------- servers --

class OneConnection:
    """A listener on loopback that serves one connection in a thread with
    handle(conn); it stops waiting for one when finish() is called."""

    def __init__(self, family=socket.AF_INET):
        self.error = None
        self.stopping = threading.Event()
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        end = time.monotonic() + RUN_BOUND
        while True:
            if self.stopping.is_set() or time.monotonic() > end:
                return
            try:
                conn, _ = self.sock.accept()
                break
            except socket.timeout:
                continue
            except OSError as e:
                self.error = "accept: %s" % e
                return
        try:
            self.handle(conn)
        except (OSError, ValueError) as e:
            self.error = "%s: %s" % (type(e).__name__, e)
        finally:
            conn.close()

    def finish(self):
        """Stop (once the client is done); False if the thread hangs."""
        self.stopping.set()
        self.thread.join(RUN_BOUND + SERVER_WAIT)
        self.sock.close()
        return not self.thread.is_alive()


class TLSServer(OneConnection):
    """A Python ssl server: records the SNI its callback saw, the
    ClientHello as it came (peeked before the handshake), the handshake's
    outcome and the SMTP verbs received. It answers 220, then 250 to EHLO
    and NOOP, 221 to QUIT."""

    def __init__(self, chain, key, family=socket.AF_INET):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        # Level 0: the server must serve the weak chains the client is to
        # refuse (OpenSSL would refuse to send them at its default level).
        ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:@SECLEVEL=0")
        ctx.load_cert_chain(chain, key)
        ctx.sni_callback = self._sni
        self.ctx = ctx
        self.sni_seen = []          # what the callback was given, per handshake
        self.hello = None           # the ClientHello, parsed
        self.handshake = None       # True, or the error
        self.cipher = None          # the suite negotiated (OpenSSL's name)
        self.verbs = []
        super().__init__(family)

    def _sni(self, _sslsock, name, _ctx):
        self.sni_seen.append(name)

    def handle(self, conn):
        deadline = time.monotonic() + RUN_BOUND
        self.hello = read_client_hello(conn, time.monotonic() + SERVER_WAIT, peek=True)
        if self.hello is None:
            return
        conn.settimeout(SERVER_WAIT)
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError) as e:
            self.handshake = "%s" % e
            return
        self.handshake = True
        self.cipher = tls.cipher()[0]
        try:
            self._smtp(tls, deadline)
        finally:
            tls.close()

    def _smtp(self, tls, deadline):
        tls.sendall(b"220 tlsmail-test ESMTP\r\n")
        buf = b""
        for _ in range(20):  # a few commands at most
            while b"\r\n" not in buf:
                if time.monotonic() > deadline:
                    return
                try:
                    chunk = tls.recv(4096)
                except (OSError, ssl.SSLError):
                    return
                if not chunk:
                    return
                buf += chunk
            line, buf = buf.split(b"\r\n", 1)
            verb = line.split(b" ", 1)[0].upper().decode("latin-1")
            self.verbs.append(verb)
            if verb == "QUIT":
                tls.sendall(b"221 bye\r\n")
                return
            tls.sendall(b"250 tlsmail-test\r\n" if verb in ("EHLO", "NOOP") else b"502 no\r\n")


class SServer:
    """One `openssl s_server` (-naccept 1) on 127.0.0.1, its stdout read
    into memory as it comes, its -trace of the handshake in msgfile; say()
    types a line on its stdin."""

    def __init__(self, work, args, tag):
        self.port = free_port()
        self.msgfile = os.path.join(work, "s_server-%s.msg" % tag)
        cmd = ["openssl", "s_server", "-accept", "127.0.0.1:%d" % self.port, "-naccept", "1",
               "-crlf", "-trace", "-msgfile", self.msgfile] + args
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.out = b""
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not self.wait_for(b"ACCEPT", 10):
            self.stop()
            raise CaseFailure("s_server did not start: %r" % self.out[-300:])

    def _read(self):
        while True:
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                return
            with self.lock:
                self.out += chunk

    def seen(self, pattern):
        with self.lock:
            return pattern in self.out

    def wait_for(self, pattern, timeout, also=None):
        """True once pattern shows in stdout; False on timeout, when the
        server exits, or when also() (e.g. "the client is gone") is true."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.seen(pattern):
                return True
            if self.proc.poll() is not None or (also and also()):
                time.sleep(0.1)  # the last output may still be on its way
                return self.seen(pattern)
            time.sleep(0.02)
        return False

    def say(self, line):
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def msg(self):
        try:
            with open(self.msgfile, "rb") as f:
                return f.read().decode("latin-1")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.reader.join(5)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


def record(ctype, payload):
    return struct.pack(">BHH", ctype, 0x0303, len(payload)) + payload


def handshake_msg(htype, body):
    return bytes([htype]) + len(body).to_bytes(3, "big") + body


class RawCertServer(OneConnection):
    """A TLS 1.2 server written out by hand: it reads the ClientHello,
    answers with a ServerHello (an ECDHE_ECDSA suite the client offered,
    the empty renegotiation_info of RFC 5746) and a Certificate message
    whose entries are the given bytes, and nothing more: it shuts its side
    and reads until the client closes. A client that accepts
    the certificate then finds the connection closed where the
    ServerKeyExchange should be."""

    ECDSA_SUITES = (0xC02B, 0xC02C, 0xCCA9)

    def __init__(self, entries):
        self.entries = entries
        self.hello = None
        super().__init__()

    def handle(self, conn):
        self.hello = read_client_hello(conn, time.monotonic() + SERVER_WAIT)
        if self.hello is None:
            self.error = "no ClientHello"
            return
        suite = next((s for s in self.ECDSA_SUITES if s in self.hello["suites"]), None)
        if suite is None:
            self.error = "client offers no ECDHE_ECDSA AEAD suite"
            return
        sh = (b"\x03\x03" + os.urandom(32) + b"\x00" + suite.to_bytes(2, "big") + b"\x00"
              + b"\x00\x05" + b"\xff\x01\x00\x01\x00")
        certs = b"".join(len(e).to_bytes(3, "big") + e for e in self.entries)
        cert_msg = len(certs).to_bytes(3, "big") + certs
        conn.sendall(record(22, handshake_msg(2, sh)) + record(22, handshake_msg(11, cert_msg)))
        conn.shutdown(socket.SHUT_WR)
        end = time.monotonic() + SERVER_WAIT
        while time.monotonic() < end:
            conn.settimeout(max(0.01, end - time.monotonic()))
            try:
                chunk = conn.recv(4096)
            except socket.timeout:
                break
            if not chunk:
                break


# ---------------------------------------------------------------- the suite --

class Dial:
    """What one tlsdial run did."""

    def __init__(self, proc, out, err, wall):
        self.rc, self.stdout, self.stderr, self.wall = proc.returncode, out, err, wall
        self.name, self.code, self.brerr = None, None, None
        for line in out.splitlines():
            f = line.split()
            if len(f) == 4 and f[0] == "result":
                self.name, self.code, self.brerr = f[1], int(f[2]), int(f[3])

    def why_broken(self):
        """None if tlsdial ended by itself with a result line, else why not."""
        if self.rc is None:
            return "tlsdial still running after %.0f s" % RUN_BOUND
        if self.rc < 0:
            return "tlsdial killed by signal %s (%s)" % (
                signal.Signals(-self.rc).name, self.stderr.strip()[-200:])
        if self.name is None:
            return "tlsdial printed no result line (rc %d): %r %r" % (
                self.rc, self.stdout[-200:], self.stderr[-300:])
        return None

    def __str__(self):
        return "%s (BearSSL %d)" % (self.name, self.brerr) if self.brerr else str(self.name)


class Suite:
    def __init__(self, build, work, verbose):
        self.build, self.work, self.verbose = build, work, verbose
        self.certs = os.path.join(work, "certs")
        self.tlsdial = os.path.join(build, "tlsdial")
        self.tlsdial_san = os.path.join(build, "tlsdial-asan")
        self.tlsdial_small = os.path.join(build, "tlsdial-small")
        self.verdicts = {}      # row name: the default build's result
        self.matrix = []
        self.entries = None     # malformed_entries(), made once

    def setup(self):
        os.makedirs(self.build, exist_ok=True)
        src = [os.path.join(HERE, "tlsdial.c"), os.path.join(ROOT, "tlsmail.h"),
               os.path.join(ROOT, "tests", "lib", "err_name.h")]
        newest = max(os.path.getmtime(s) for s in src)
        for exe, cc, flags in ((self.tlsdial, "gcc", ["-O1", "-g"]),
                               (self.tlsdial_small, "gcc", ["-O1", "-g", "-DTLSMAIL_SMALL"]),
                               (self.tlsdial_san, os.environ.get("SAN_CC", "clang"), SAN)):
            if os.access(exe, os.X_OK) and os.path.getmtime(exe) >= newest:
                continue
            p = subprocess.run([cc] + WARN + flags + ["-o", exe, src[0], "-lbearssl"],
                               capture_output=True, text=True, timeout=300)
            if p.returncode != 0:
                raise RuntimeError("build %s: %s" % (exe, p.stderr[-1500:]))
        p = subprocess.run(["bash", os.path.join(HERE, "certs.sh"), self.certs],
                           capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise RuntimeError("certs.sh: %s" % p.stderr[-1500:])
        with open(os.path.join(self.certs, "rows.txt")) as f:
            made = set(f.read().split())
        missing = sorted({r.cert for r in ROWS} - made)
        if missing:
            raise RuntimeError("certs.sh made no row for %s" % ", ".join(missing))

    def f(self, row, kind):
        return os.path.join(self.certs, "%s.%s" % (row, kind))

    def dial(self, port, host, cafile=None, pin=None, ipv6=False, noop=False, background=False,
             sanitized=False, small=False):
        exe = self.tlsdial_san if sanitized else self.tlsdial_small if small else self.tlsdial
        cmd = [exe, "--port", str(port), "--host", host,
               "--timeout-ms", str(TIMEOUT_MS)]
        cmd += ["--cafile", cafile] if cafile else ["--pin", pin]
        if ipv6:
            cmd.append("--ipv6")
        if noop:
            cmd.append("--noop")
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL,
                                env=dict(os.environ, **SAN_ENV) if sanitized else None)
        if background:
            return proc, t0
        return self.collect(proc, t0)

    def collect(self, proc, t0):
        """Wait for a dial started in the background, RUN_BOUND at most."""
        hung = False
        try:
            out, err = proc.communicate(timeout=max(0.1, RUN_BOUND - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            hung = True
            proc.kill()
            out, err = proc.communicate()
        d = Dial(proc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                 time.monotonic() - t0)
        if hung:
            d.rc = None
        return d

    def expect_dial(self, d, allowed):
        broken = d.why_broken()
        check(broken is None, broken)
        check(d.name in allowed, "tlsmail %s, wanted %s%s" % (
            d, "|".join(allowed), "" if d.name == OK else " (%s)" % d.stderr.strip()[-200:]))


def is_ip(host):
    return ":" in host or re.fullmatch(r"[0-9.]+", host) is not None


def openssl_verify(S, row):
    """openssl's verdict on the row's chain and name: ("OK", text) or
    ("refused", "error N at depth D: text")."""
    cmd = ["openssl", "verify", "-purpose", "sslserver", "-x509_strict", "-auth_level", "2",
           "-verify_ip" if is_ip(row.host) else "-verify_hostname", row.host,
           "-CAfile", S.f(row.cert, "ca.pem")]
    if os.path.getsize(S.f(row.cert, "int.pem")) > 0:
        cmd += ["-untrusted", S.f(row.cert, "int.pem")]
    cmd.append(S.f(row.cert, "crt"))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    text = p.stdout + p.stderr
    if p.returncode == 0 and ": OK" in text:
        return "OK", "OK"
    m = re.search(r"error (\d+) at (\d+) depth lookup: (.*)", text)
    return "refused", ("error %s at depth %s: %s" % m.groups()) if m else text.strip()[-120:]


def matrix_case(S, row, small=False):
    def run():
        srv = TLSServer(S.f(row.cert, "chain.pem"), S.f(row.cert, "key"))
        try:
            d = S.dial(srv.port, row.host, cafile=S.f(row.cert, "ca.pem"), noop=True, small=small)
        finally:
            stopped = srv.finish()
        verdict, vtext = openssl_verify(S, row)
        if small:
            # the smaller code must judge every chain as the default build does
            judge(d, srv, stopped, verdict, vtext)
            want = S.verdicts.get(row.name)
            check(want is None or d.name == want,
                  "TLSMAIL_SMALL says %s, the default build %s" % (d, want))
            return "TLSMAIL_SMALL %s%s; suite %s" % (d, "" if want is None else ", as the default build",
                                                     srv.cipher)
        S.verdicts[row.name] = d.name
        sni = hello_sni(srv.hello) if srv.hello else False  # False: no ClientHello at all
        entry = {"row": row, "got": d.name or "-", "br": d.brerr, "openssl": verdict,
                 "otext": vtext, "sni": sni, "pass": False}
        S.matrix.append(entry)
        try:
            judge(d, srv, stopped, verdict, vtext)
        except CaseFailure as e:
            raise CaseFailure("%s; openssl %s" % (e, vtext))
        entry["pass"] = True
        return "tlsmail %s, openssl %s" % (d, vtext)

    def judge(d, srv, stopped, verdict, vtext):
        S.expect_dial(d, row.expect)
        check(stopped, "server thread did not stop")
        check(srv.error is None, "server: %s" % srv.error)
        if d.name == OK:
            check(verdict == "OK" or row.reason,
                  "tlsmail accepts what openssl refuses and the row gives no reason")
            check(srv.verbs == ["EHLO", "NOOP", "QUIT"],
                  "server received %s, wanted EHLO NOOP QUIT" % srv.verbs)
        else:
            check(not srv.verbs, "SMTP over a refused session: the server received %s"
                  % srv.verbs)
        if d.name == "EINVAL":
            check(srv.hello is None, "a ClientHello went out although the dial was refused")
    return run


def write_matrix(S, path):
    def cell(s):
        return (s or "").replace("|", "\\|")
    lines = ["# tlsmail certificate matrix",
             "",
             "Each row: a Python ssl server on 127.0.0.1 sends the chain; tlsdial dials it",
             "under the host name given, trusting the row's root; `openssl verify -purpose",
             "sslserver -x509_strict -auth_level 2` judges the same chain and name.",
             "",
             "| row | certificate | host | SNI sent | tlsmail wanted | tlsmail got | "
             "openssl verify | case | why / note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in S.matrix:
        r = e["row"]
        got = e["got"] + (" (BearSSL %s)" % e["br"] if e["br"] else "")
        why = []
        if r.reason:
            why.append("why tlsmail may accept what openssl refuses: " + r.reason)
        if r.note:
            why.append(r.note)
        sni = {None: "none", False: "no ClientHello"}.get(e["sni"]) or "`%s`" % e["sni"]
        lines.append("| %s | %s | `%s` | %s | %s | %s | %s | %s | %s |" % (
            r.name, cell(r.what), r.host, sni, " or ".join(r.expect), got,
            "OK" if e["openssl"] == "OK" else "refused: " + cell(e["otext"]),
            "PASS" if e["pass"] else "**FAIL**", cell("; ".join(why))))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# ------------------------------------------------------------- edge cases --

def first_hello(S, small=False):
    """The ClientHello tlsdial sends to a raw TCP listener, which then
    closes; and the dial, which must have ended by itself."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(RUN_BOUND)
    try:
        proc, t0 = S.dial(ls.getsockname()[1], "localhost", cafile=S.f("ec-p256", "ca.pem"),
                          background=True, small=small)
        conn, _ = ls.accept()
        try:
            hello = read_client_hello(conn, time.monotonic() + SERVER_WAIT)
        finally:
            conn.close()
        d = S.collect(proc, t0)
    finally:
        ls.close()
    check(hello is not None, "no ClientHello arrived")
    broken = d.why_broken()
    check(broken is None, broken)
    check(d.name != OK, "tlsdial says OK without a server")
    return hello, d


def case_clienthello(S):
    """The offer itself, as bytes on the wire."""
    def run():
        hello, d = first_hello(S)
        check(hello["version"] == 0x0303, "client_version 0x%04x, wanted 0x0303 (TLS 1.2)"
              % hello["version"])
        algs = hello_sigalgs(hello)
        check(algs is not None, "no signature_algorithms extension")
        names = [sigalg_name(h, s) for h, s in algs]
        weak = [sigalg_name(h, s) for h, s in algs if h in (1, 2, 3)]
        check(not weak, "signature_algorithms offers %s (all: %s)" % (" ".join(weak),
                                                                      " ".join(names)))
        check((4, 3) in algs and (4, 1) in algs,
              "no ecdsa+sha256 or rsa+sha256 in %s" % " ".join(names))
        return "signature_algorithms %s; tlsdial %s" % (" ".join(names), d)
    return run


GCM_SUITES = [0xC02B, 0xC02F, 0xC02C, 0xC030]   # ECDHE-{ECDSA,RSA}-AES{128,256}-GCM
CHACHA_SUITES = [0xCCA9, 0xCCA8]                # ECDHE-{ECDSA,RSA}-CHACHA20-POLY1305
X25519, P256, P384 = 29, 23, 24


def hello_groups(hello):
    """supported_groups (RFC 8422 5.1.1) as a list of code points, or None."""
    data = hello["ext"].get(10)
    if data is None:
        return None
    n = int.from_bytes(data[0:2], "big")
    return [int.from_bytes(data[i:i + 2], "big") for i in range(2, 2 + n, 2)]


def case_offer(S, small):
    """The suites and groups offered: TLSMAIL_SMALL offers AES-GCM on P-256
    and P-384 and nothing else; the default build ChaCha20 and X25519 too."""
    def run():
        hello, _ = first_hello(S, small)
        suites = [x for x in hello["suites"] if x not in (0x00FF, 0x5600)]   # SCSVs aside
        groups = hello_groups(hello)
        check(groups is not None, "no supported_groups extension")
        shown = "suites %s, groups %s" % (" ".join("%04X" % x for x in suites),
                                          " ".join(str(g) for g in groups))
        if small:
            check(sorted(suites) == sorted(GCM_SUITES), "%s: wanted the four AES-GCM suites alone"
                  % shown)
            check(P256 in groups and P384 in groups and X25519 not in groups,
                  "%s: wanted P-256 and P-384, no X25519" % shown)
        else:
            check(set(GCM_SUITES + CHACHA_SUITES) == set(suites),
                  "%s: wanted AES-GCM and ChaCha20-Poly1305" % shown)
            check(X25519 in groups and P256 in groups, "%s: wanted X25519 and P-256" % shown)
        return shown
    return run


def sserver_session(S, srv, host, cafile, renegotiate=False):
    """Drive tlsdial against an s_server, typing the SMTP replies when the
    client's commands show up. renegotiate: after EHLO, type "r" (send a
    HelloRequest) and give the client time to answer it before the 250."""
    proc, t0 = S.dial(srv.port, host, cafile=cafile, background=True)
    gone = lambda: proc.poll() is not None  # noqa: E731
    try:
        if srv.wait_for(b"CIPHER is", SERVER_WAIT, also=gone):
            srv.say("220 tlsmail-test ESMTP")
            if srv.wait_for(b"EHLO", SERVER_WAIT, also=gone):
                if renegotiate:
                    srv.say("r")
                    end = time.monotonic() + SERVER_WAIT
                    # until the client answers the HelloRequest one way or the other
                    while time.monotonic() < end and not gone() and srv.proc.poll() is None:
                        m = srv.msg()
                        if m.count("ClientHello,") > 1 or "description=" in m:
                            break
                        time.sleep(0.05)
                srv.say("250 tlsmail-test")
                if srv.wait_for(b"QUIT", SERVER_WAIT, also=gone):
                    srv.say("221 bye")
        return S.collect(proc, t0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def case_ske(S, row, sigalgs, cipher, allowed, signed=None):
    """signed: the signature algorithm the server's ServerKeyExchange must
    show when the handshake goes through (for the control)."""
    def run():
        srv = SServer(S.work, ["-tls1_2", "-cert", S.f(row, "crt"), "-key", S.f(row, "key"),
                               "-sigalgs", sigalgs, "-cipher", cipher + ":@SECLEVEL=0"],
                      "ske-" + sigalgs.replace("+", ""))
        try:
            d = sserver_session(S, srv, "localhost", S.f(row, "ca.pem"))
        finally:
            srv.stop()
        # -trace: "ServerKeyExchange, Length=..." then "Signature Algorithm: NAME (0xHHHH)"
        m = re.search(r"ServerKeyExchange,.*?Signature Algorithm: (\S+)", srv.msg(), re.S)
        ske = "ServerKeyExchange signed " + m.group(1) if m else "no ServerKeyExchange sent"
        try:
            S.expect_dial(d, allowed)
            if d.name == OK:
                check(srv.seen(b"EHLO"), "OK but the server never saw EHLO")
                check(signed is None or (m and m.group(1) == signed), "wanted %s" % signed)
            else:
                check(not srv.seen(b"EHLO"), "EHLO went out over a refused handshake")
        except CaseFailure as e:
            raise CaseFailure("%s; %s" % (e, ske))
        return "tlsdial %s; %s" % (d, ske)
    return run


def case_renegotiation(S):
    def run():
        srv = SServer(S.work, ["-tls1_2", "-cert", S.f("ec-p256", "crt"),
                               "-key", S.f("ec-p256", "key")], "reneg")
        try:
            d = sserver_session(S, srv, "localhost", S.f("ec-p256", "ca.pem"), renegotiate=True)
        finally:
            srv.stop()
        m = srv.msg()
        hellos = m.count("ClientHello,")
        check("HelloRequest," in m,
              "the server sent no HelloRequest (s_server: %r)" % srv.out[-300:])
        check(hellos == 1, "the server received %d ClientHellos: the client renegotiated"
              % hellos)
        S.expect_dial(d, (OK, "ETLS", "ECLOSED"))
        check(d.wall < RUN_BOUND, "took %.1f s" % d.wall)
        return "one ClientHello; tlsdial %s in %.1f s" % (d, d.wall)
    return run


def case_sni(S, host, want_sni, trust, ipv6=False, nocase=False):
    """want_sni: the SNI the server must see (nocase: in any case, DNS names
    being case-insensitive); None: no server_name extension at all."""
    def run():
        srv = TLSServer(S.f("ip-dns-san", "chain.pem"), S.f("ip-dns-san", "key"),
                        socket.AF_INET6 if ipv6 else socket.AF_INET)
        try:
            if trust == "pin":
                d = S.dial(srv.port, host, pin=spki_pin(S.f("ip-dns-san", "crt")), ipv6=ipv6)
            else:
                d = S.dial(srv.port, host, cafile=S.f("ip-dns-san", "ca.pem"), ipv6=ipv6)
        finally:
            stopped = srv.finish()
        check(stopped, "server thread did not stop")
        check(srv.error is None, "server: %s" % srv.error)
        check(srv.hello is not None, "no ClientHello reached the server (%s)" % d)
        raw = hello_sni(srv.hello)
        if want_sni is None:
            check(0 not in srv.hello["ext"], "server_name sent: %r" % raw)
        else:
            same = raw is not None and (raw.lower() == want_sni.lower() if nocase
                                        else raw == want_sni)
            check(same, "SNI %r, wanted %r" % (raw, want_sni))
        if srv.handshake is True:
            check(srv.sni_seen == [raw], "ssl's SNI callback saw %r, the bytes say %r"
                  % (srv.sni_seen, raw))
        S.expect_dial(d, (OK,))
        return "SNI %s; tlsdial %s" % ("none" if raw is None else repr(raw), d)
    return run


def pem_der(path):
    """The bytes a lenient PEM reader takes from path: every base64
    character after the BEGIN line up to a well-formed END line, cut to a
    multiple of four."""
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    start = next(i for i, l in enumerate(lines) if l.startswith(b"-----BEGIN CERTIFICATE-----"))
    b64 = b""
    for l in lines[start + 1:]:
        if l.startswith(b"-----END CERTIFICATE-----"):
            break
        b64 += bytes(c for c in l if c in
                     b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    return base64.b64decode(b64[:len(b64) // 4 * 4])


def cert_der(path):
    return subprocess.run(["openssl", "x509", "-in", path, "-outform", "DER"],
                          capture_output=True, check=True, timeout=10).stdout


# BearSSL hands a certificate to the X.509 engine in pieces of 256 octets.
# The decoder stops at its first error (or the end of the DER); 0.1's pin
# engine kept pushing, and BearSSL 0.6 jumps through NULL two pieces later.
# So each malformed entry runs on for more than two pieces past its flaw.
TAIL = b"\xa5" * (3 * 256)


def malformed_entries(S):
    """name -> (the entries of the Certificate message, the matrix row
    whose key the pin names and whose root the CA trust is): each a way DER
    can lie."""
    if S.entries is None:
        S.entries = _malformed_entries(S)
    return S.entries


def _malformed_entries(S):
    good = cert_der(S.f("ec-p256", "crt"))
    body_len = int.from_bytes(good[2:4], "big")
    check(good[0:2] == b"\x30\x82" and body_len + 4 == len(good), "unexpected DER header")
    short = good[0:2] + (body_len - 16).to_bytes(2, "big") + good[4:]
    return {
        # the DER that crashed 0.1's pin engine (see the head of the file)
        "audit-der": ([pem_der(os.path.join(HERE, "pem_crash.pem"))], "ec-p256"),
        # a whole certificate, then more bytes inside the same entry
        "trailing-garbage": ([good + TAIL], "ec-p256"),
        # the outer SEQUENCE claims to end 16 octets before its content does
        "short-outer-length": ([short + TAIL], "ec-p256"),
        # the entry stops halfway through the certificate
        "truncated": ([good[:len(good) // 2]], "ec-p256"),
        "not-der": ([b"\xff" * 200 + TAIL], "ec-p256"),
        "indefinite-length": ([b"\x30\x80" + good[4:] + b"\x00\x00" + TAIL], "ec-p256"),
        "length-2gb": ([b"\x30\x84\x7f\xff\xff\xff" + good[4:] + TAIL], "ec-p256"),
        "empty-entry": ([b""], "ec-p256"),
        # a good leaf under an intermediate, then garbage where the
        # intermediate should be
        "garbage-intermediate": ([cert_der(S.f("chain-int", "crt")),
                                  b"\x30\x82\x00\x10" + b"\xff" * 40 + TAIL], "chain-int"),
        # the same server with a good certificate: the client must get past
        # the Certificate message, so the cases above fail on the DER and
        # not on the hand-made ServerHello
        "control": ([good], "ec-p256"),
    }


def case_certmsg(S, variant, trust):
    """Each variant twice: the plain driver (a crash is a signal) and the
    one under ASan and UBSan (a bad read or write that happens not to crash
    is a report), with the same result."""
    def dial(srv, row, sanitized):
        if trust == "pin":
            return S.dial(srv.port, "localhost", pin=spki_pin(S.f(row, "crt")),
                          sanitized=sanitized)
        return S.dial(srv.port, "localhost", cafile=S.f(row, "ca.pem"), sanitized=sanitized)

    def run():
        entries, row = malformed_entries(S)[variant]
        got = []
        for sanitized in (False, True):
            srv = RawCertServer(entries)
            try:
                d = dial(srv, row, sanitized)
            finally:
                stopped = srv.finish()
            check(srv.error is None, "raw server: %s" % srv.error)
            check(stopped, "raw server thread did not stop")
            where = " (under ASan+UBSan)" if sanitized else ""
            check(d.rc != 99, "sanitizer report: %s" % d.stderr.strip()[-1500:])
            broken = d.why_broken()
            check(broken is None, "%s%s" % (broken, where))
            got.append(d)
        d, dsan = got
        check((d.name, d.brerr) == (dsan.name, dsan.brerr),
              "tlsdial %s, tlsdial-asan %s" % (d, dsan))
        if variant == "control" or (variant == "garbage-intermediate" and trust == "pin"):
            # The certificate passes (a pin is on the leaf's key alone: the
            # rest of the chain is not looked at), then the connection ends.
            S.expect_dial(d, ("ECLOSED",))
            return "certificate accepted, then %s where the ServerKeyExchange belongs" % d
        check(d.name in CERT_ERRORS + ("ETLS",), "tlsmail %s, wanted ECERT_* or ETLS (%s)"
              % (d, d.stderr.strip()[-200:]))
        check(32 <= d.brerr < 64, "BearSSL error %d is no X.509 verdict" % d.brerr)
        check(d.wall < RUN_BOUND, "took %.1f s" % d.wall)
        return "tlsdial %s, also under ASan+UBSan" % d
    return run


def build_cases(S):
    C = []
    for r in ROWS:
        C.append(("matrix/" + r.name, matrix_case(S, r)))
    for r in ROWS:
        C.append(("small/matrix/" + r.name, matrix_case(S, r, small=True)))
    C.append(("clienthello/signature_algorithms", case_clienthello(S)))
    C.append(("clienthello/offer default", case_offer(S, small=False)))
    C.append(("clienthello/offer TLSMAIL_SMALL", case_offer(S, small=True)))
    C.append(("ske/rsa+sha1", case_ske(S, "rsa-2048", "RSA+SHA1", "ECDHE-RSA-AES128-GCM-SHA256",
                                       ("ETLS", UNTRUSTED))))
    C.append(("ske/ecdsa+sha1", case_ske(S, "ec-p256", "ECDSA+SHA1",
                                         "ECDHE-ECDSA-AES128-GCM-SHA256", ("ETLS", UNTRUSTED))))
    C.append(("ske/rsa+sha256 control", case_ske(S, "rsa-2048", "RSA+SHA256",
                                                 "ECDHE-RSA-AES128-GCM-SHA256", (OK,),
                                                 "rsa_pkcs1_sha256")))
    C.append(("renegotiation/server HelloRequest", case_renegotiation(S)))
    C.append(("sni/localhost", case_sni(S, "localhost", "localhost", "ca")))
    C.append(("sni/localhost. (trailing dot)", case_sni(S, "localhost.", "localhost", "ca")))
    C.append(("sni/LOCALHOST", case_sni(S, "LOCALHOST", "localhost", "ca", nocase=True)))
    C.append(("sni/127.0.0.1 pinned", case_sni(S, "127.0.0.1", None, "pin")))
    C.append(("sni/::1 pinned", case_sni(S, "::1", None, "pin", ipv6=True)))
    for v in ("control", "audit-der", "trailing-garbage", "short-outer-length", "truncated",
              "not-der", "indefinite-length", "length-2gb", "empty-entry",
              "garbage-intermediate"):
        for trust in ("pin", "ca"):
            C.append(("certmsg/%s %s" % (v, trust), case_certmsg(S, v, trust)))
    return C


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True, help="directory for tlsdial and tls-matrix.md")
    ap.add_argument("-k", action="append", default=[], metavar="SUBSTR",
                    help="run only cases whose name contains SUBSTR (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="tlsmail-tls-")
    S = Suite(os.path.abspath(a.build), work, a.verbose)
    passed = failed = 0
    cases = [(n, fn) for n, fn in build_cases(S) if not a.k or any(k in n for k in a.k)]
    try:
        try:
            if cases:
                S.setup()
        except Exception as e:
            print("FAIL setup: %s" % e)
            print("0 passed, 1 failed")
            return 1
        for name, fn in cases:
            try:
                detail = fn()
            except CaseFailure as e:
                failed += 1
                print("FAIL %s: %s" % (name, e), flush=True)
                continue
            except Exception as e:
                failed += 1
                print("FAIL %s: %s" % (name, "".join(
                    traceback.format_exception_only(type(e), e)).strip()), flush=True)
                if a.verbose:
                    traceback.print_exc()
                continue
            passed += 1
            print("PASS %s: %s" % (name, detail), flush=True)
        if S.matrix:
            path = os.path.join(S.build, "tls-matrix.md")
            write_matrix(S, path)
            print("matrix: %s" % path)
    finally:
        if a.keep:
            print("kept %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
