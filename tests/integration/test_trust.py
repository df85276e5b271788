#!/usr/bin/python3
"""tests/integration/test_trust.py - trust is looked up, not loaded.

    /usr/bin/python3 tests/integration/test_trust.py --build DIR [-k SUBSTR]... [-v]

DIR holds `itest` (tests/integration/itest.c), which reports the heap the
library used during a session ("heap PEAK ALLOCS LIVE") and, with
--name-hashes FILE, the OpenSSL subject hash it computes per certificate.
One tests/lib/smtpd.py (aiosmtpd, implicit TLS) on 127.0.0.1 with the test
PKI's good certificate. Cases: the subject hash agrees with `openssl x509
-subject_hash` on the system bundle and on odd names (T61String, BMPString,
multi-valued RDNs, case and whitespace); a send through the system store
(a 150-certificate bundle, a hashed directory) stays within 16 KB of heap
and frees it all; a pin and the caller's anchors use none; a hashed
directory is read by name only (strace: no other file in it is opened, and
no name twice); a directory without hash names, a bundle with a broken
block before the CA, and SSL_CERT_FILE replacing the defaults.
"""
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from testlib import (CaseFailure, check, registry, Server, suite_main,  # noqa: E402
                     spki_pin, PKI_SH, READY_TIMEOUT, RUN_TIMEOUT)

USER, PASS = "alice@example.org", "s3cret-Pw"
MSG = (b"From: sender@example.org\r\nTo: rcpt@example.org\r\n"
       b"Subject: trust\r\n\r\nHello.\r\n")
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
HEAP_MAX = 16 * 1024


def pem_blocks(text):
    return re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", text, re.S)


class Suite:
    def __init__(self, build, work, verbose):
        self.itest = os.path.join(build, "itest")
        self.work, self.verbose = work, verbose
        self.pki = os.path.join(work, "pki")
        self.servers = {}

    def p(self, name):
        return os.path.join(self.pki, name)

    def setup(self):
        if not os.access(self.itest, os.X_OK):
            raise RuntimeError("%s is not built" % self.itest)
        subprocess.run(["bash", PKI_SH, self.pki], check=True, timeout=120)
        self.servers["good"] = Server("good", self.pki, self.work, [(USER, PASS)])
        self.servers["good"].wait_ready(time.monotonic() + READY_TIMEOUT)
        self.msg = os.path.join(self.work, "msg.eml")
        with open(self.msg, "wb") as f:
            f.write(MSG)
        # the system bundle with the test CA last: the worst case for a scan
        self.bundle = os.path.join(self.work, "bundle.pem")
        with open(self.bundle, "w") as f:
            f.write(open(SYSTEM_BUNDLE).read() + open(self.p("ca.crt")).read())
        # a hashed directory: every system certificate and the test CA,
        # rehashed by openssl, plus extra names to be left alone
        self.hashdir = os.path.join(self.work, "hashed")
        os.makedirs(self.hashdir)
        for i, b in enumerate(pem_blocks(open(SYSTEM_BUNDLE).read())):
            with open(os.path.join(self.hashdir, "sys%03d.pem" % i), "w") as f:
                f.write(b)
        shutil.copy(self.p("ca.crt"), os.path.join(self.hashdir, "tlsmail-test-ca.pem"))
        subprocess.run(["openssl", "rehash", self.hashdir], check=True, timeout=60,
                       capture_output=True)

    def teardown(self):
        for s in self.servers.values():
            s.stop()

    def addr(self):
        return "localhost:%d" % self.servers["good"].port

    def run(self, args, env=None, strace=None):
        e = dict(os.environ)
        e.pop("SSL_CERT_FILE", None)
        e.pop("SSL_CERT_DIR", None)
        e.update(env or {})
        cmd = [self.itest, "--addr", self.addr(), "--api", "client", "--auth", "plain",
               "--user", USER, "--pass", PASS, "--msg", self.msg, "--timeout-ms", "10000"] + args
        if strace:
            cmd = ["strace", "-f", "-qq", "-e", "trace=open,openat", "-o", strace] + cmd
        p = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=RUN_TIMEOUT)
        res = {"rc": p.returncode, "out": p.stdout, "err": p.stderr}
        m = re.search(r"^heap (\d+) (\d+) (\d+)$", p.stdout, re.M)
        r = re.search(r"^result (\S+)", p.stdout, re.M)
        check(r, "itest printed no result line: %r %r" % (p.stdout, p.stderr[-300:]))
        res["result"] = r.group(1)
        if m:  # none when the trust could not even be set up
            res.update(peak=int(m.group(1)), allocs=int(m.group(2)), live=int(m.group(3)))
        if self.verbose:
            print("    %s" % res)
        return res

    def expect_ok_within_heap(self, res, bound=HEAP_MAX):
        check(res["result"] == "OK", "expected OK: %s" % res["err"][-300:])
        check(res["peak"] <= bound, "heap peak %d > %d" % (res["peak"], bound))
        check(res["live"] == 0, "%d octets of heap still held after the session" % res["live"])


def openssl_hash(pem):
    return subprocess.run(["openssl", "x509", "-subject_hash", "-noout"], input=pem,
                          capture_output=True, text=True, timeout=10).stdout.strip()


def build_cases(S):
    cases, case = registry()

    def hashes_agree(path):
        blocks = pem_blocks(open(path).read())
        ours = subprocess.run([S.itest, "--name-hashes", path], capture_output=True, text=True,
                              timeout=60).stdout.split()
        check(len(ours) == len(blocks), "%d hashes for %d certificates" % (len(ours), len(blocks)))
        bad = [(o, h) for o, h in ((openssl_hash(b), h) for b, h in zip(blocks, ours)) if o != h]
        check(not bad, "%d of %d differ from openssl (openssl, ours): %s"
              % (len(bad), len(blocks), bad[:5]))

    @case("name_hash_equals_openssl[system bundle]")
    def _():
        hashes_agree(SYSTEM_BUNDLE)

    @case("name_hash_equals_openssl[odd names]")
    def _():
        d = os.path.join(S.work, "odd")
        os.makedirs(d, exist_ok=True)
        key = os.path.join(d, "k.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-out", key], check=True, capture_output=True)
        subjects = [
            ("mvrdn", "default", ["-multivalue-rdn"], "/CN=Zed+O=Alpha/OU=Mixed   CASE"),
            ("t61", "nombstr", [], "/C=DE/CN=  J\u00fcrgen   Gro\u00df  /O=Example\tTabs"),
            ("bmp", "default", [], "/CN=\u65e5\u672c \u30c6\u30b9\u30c8/O=ACME  Inc."),
            ("utf8", "utf8only", [], "/CN=UPPER lower \u00c9T\u00c9/emailAddress=Ops@Example.ORG"),
            ("printable", "default", [], "/C=US/ST=New   York/L= Spaced /CN=Plain.Example.COM"),
        ]
        out = []
        for name, mask, extra, subj in subjects:
            cnf = os.path.join(d, name + ".cnf")
            with open(cnf, "w") as f:
                f.write("[req]\ndistinguished_name=dn\nstring_mask=%s\n[dn]\n" % mask)
            crt = os.path.join(d, name + ".crt")
            subprocess.run(["openssl", "req", "-config", cnf, "-new", "-x509", "-key", key, "-out",
                            crt, "-days", "10", "-utf8", "-subj", subj] + extra,
                           check=True, capture_output=True, timeout=30)
            out.append(open(crt).read())
        allp = os.path.join(d, "all.pem")
        with open(allp, "w") as f:
            f.write("".join(out))
        asn = subprocess.run(["openssl", "asn1parse", "-in", os.path.join(d, "t61.crt")],
                             capture_output=True, timeout=10).stdout
        check(b"T61STRING" in asn, "the t61 certificate holds no T61String")
        asn = subprocess.run(["openssl", "asn1parse", "-in", os.path.join(d, "bmp.crt")],
                             capture_output=True, timeout=10).stdout
        check(b"BMPSTRING" in asn, "the bmp certificate holds no BMPString")
        hashes_agree(allp)

    @case("system_store_file: 151 certificates, within 16 KB of heap, all freed")
    def _():
        res = S.run([], env={"SSL_CERT_FILE": S.bundle})
        S.expect_ok_within_heap(res)

    @case("system_store_hashed_dir: within 16 KB of heap, all freed")
    def _():
        res = S.run([], env={"SSL_CERT_DIR": S.hashdir})
        S.expect_ok_within_heap(res)

    @case("cafile_bundle: the same bundle as --cafile")
    def _():
        res = S.run(["--cafile", S.bundle])
        S.expect_ok_within_heap(res)

    # A name lookup has a heap block of its own (CONVENTIONS); these dial
    # the address directly so that only trust could allocate.
    @case("pin: no heap at all")
    def _():
        res = S.run(["--pin", spki_pin(S.p("good.crt")), "--addresses", "127.0.0.1"])
        check(res["result"] == "OK", "expected OK: %s" % res["err"][-300:])
        check(res["allocs"] == 0 and res["peak"] == 0, "a pinned session allocated: %s" % res)

    @case("caller_anchors: no heap during the session")
    def _():
        res = S.run(["--anchors", S.p("ca.crt"), "--addresses", "127.0.0.1"])
        check(res["result"] == "OK", "expected OK: %s" % res["err"][-300:])
        check(res["allocs"] == 0 and res["peak"] == 0, "the caller's anchors cost heap: %s" % res)

    @case("hashed_dir_is_read_by_name_only")
    def _():
        log = os.path.join(S.work, "strace.log")
        res = S.run([], env={"SSL_CERT_DIR": S.hashdir}, strace=log)
        check(res["result"] == "OK", "expected OK: %s" % res["err"][-300:])
        opened = re.findall(r'open(?:at)?\([^"]*"%s/([^"]+)"' % re.escape(S.hashdir), open(log).read())
        names = [n for n in opened]
        ca_hash = openssl_hash(open(S.p("ca.crt")).read())
        leaf_hash = openssl_hash(open(S.p("good.crt")).read())
        allowed = {"%s.%d" % (h, i) for h in (ca_hash, leaf_hash) for i in range(16)}
        check(names, "nothing in the directory was opened")
        check(all(n in allowed for n in names), "opened beyond the hash names %s: %s"
              % (sorted({ca_hash, leaf_hash}), names))
        found = [n for n in names if os.path.exists(os.path.join(S.hashdir, n))]
        check(len(found) == len(set(found)), "a name was read twice: %s" % found)

    @case("plain_dir_without_hash_names (--capath)")
    def _():
        d = os.path.join(S.work, "plain")
        os.makedirs(d, exist_ok=True)
        shutil.copy(S.p("ca.crt"), os.path.join(d, "ca.pem"))
        shutil.copy(S.p("rogue-ca.crt"), os.path.join(d, "other.crt"))
        with open(os.path.join(d, "README"), "w") as f:
            f.write("not a certificate\n")
        res = S.run(["--capath", d])
        S.expect_ok_within_heap(res)

    @case("ssl_cert_dir_is_hashed_as_in_openssl: plain files there are not read")
    def _():
        d = os.path.join(S.work, "plain-env")
        os.makedirs(d, exist_ok=True)
        shutil.copy(S.p("ca.crt"), os.path.join(d, "ca.pem"))
        res = S.run([], env={"SSL_CERT_DIR": d})
        check(res["result"] == "ECERT_UNTRUSTED", "expected ECERT_UNTRUSTED, got %s" % res["result"])

    @case("bundle_with_a_broken_block_before_the_ca")
    def _():
        b = os.path.join(S.work, "broken.pem")
        with open(b, "w") as f:
            f.write("# a comment line\n-----BEGIN CERTIFICATE-----\nMIIB!!!notbase64\n"
                    "-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nAAAA\n"
                    "-----END CERTIFICATE-----\n" + open(S.p("ca.crt")).read())
        res = S.run(["--cafile", b])
        S.expect_ok_within_heap(res)

    @case("ssl_cert_file_replaces_the_defaults")
    def _():
        res = S.run([], env={"SSL_CERT_FILE": S.p("rogue-ca.crt")})
        check(res["result"] == "ECERT_UNTRUSTED", "expected ECERT_UNTRUSTED, got %s" % res["result"])
        check(res["live"] == 0, "heap still held: %s" % res)

    @case("no_usable_certificate_is_etrust")
    def _():
        res = S.run(["--cafile", S.p("empty.crt")])
        check(res["result"] == "ETRUST", "expected ETRUST, got %s" % res["result"])

    return cases


def main():
    return suite_main("tlsmail trust lookup tests", Suite, build_cases)


if __name__ == "__main__":
    sys.exit(main())
