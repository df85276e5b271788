#!/usr/bin/python3
"""tests/integration/test_integration.py - tlsmail.h against a real SMTP server.

    /usr/bin/python3 tests/integration/test_integration.py --build DIR [-k SUBSTR]... [--keep] [-v]

DIR holds the built `itest` and `gosend` (tests/integration/itest.c, gosend.c).
Makes a throw-away PKI (tests/lib/pki.sh), starts one tests/lib/smtpd.py (aiosmtpd,
implicit TLS, AUTH required) per certificate variant on 127.0.0.1, runs every
case as a subprocess with a time bound and checks what the server really
received (stored .eml/.json, events.log). Standard library only.

Prints "PASS name" or "FAIL name: reason" per case and, last, "N passed,
N failed"; exits 1 if any case failed.
"""
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

USER, PASS = "alice@example.org", "s3cret-Pw"
USER2, PASS2 = "bob", "hunter2 with spaces"
FROM = "sender@example.org"
TO = "rcpt@example.org"
HDR = (b"From: sender@example.org\r\nTo: rcpt@example.org\r\n"
       b"Subject: integration test\r\n\r\n")
SIMPLE = HDR + b"Hello,\r\nthis is a test.\r\n"

SERVER_NAMES = ("good", "good-rsa", "wronghost", "cnonly", "expired",
                "untrusted", "selfsigned")
# Under valgrind (tests/lib/sanitize.sh) a client runs ~30x slower: the cases that
# assert a wall-time bound are left to the normal and ASan runs.
SLOW = os.environ.get("TLSMAIL_TEST_SLOW") == "1"
TIMED = ("nothing_listening", "_timeout_", "_deadline_")

sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from testlib import (CaseFailure, check, normalise, longest_line, Server, spki_pin,  # noqa: E402
                     registry, SilentListener, Result, verbs,
                     suite_main, PKI_SH, READY_TIMEOUT, RUN_TIMEOUT, SETTLE)


class Suite:
    def __init__(self, build, work, verbose):
        self.itest_bin = os.path.join(build, "itest")
        self.gosend_bin = os.path.join(build, "gosend")
        self.work = work
        self.pki = os.path.join(work, "pki")
        self.verbose = verbose
        self.servers = {}
        self.silent = None
        self.silent_tls = None
        self.nmsg = 0

    # -- setup
    def setup(self):
        for exe in (self.itest_bin, self.gosend_bin):
            if not os.access(exe, os.X_OK):
                raise RuntimeError("%s is not built" % exe)
        subprocess.run(["bash", PKI_SH, self.pki],
                       check=True, timeout=60)
        users = [(USER, PASS), (USER2, PASS2)]
        for n in SERVER_NAMES:
            self.servers[n] = Server(n, self.pki, self.work, users)
        deadline = time.monotonic() + READY_TIMEOUT
        for s in self.servers.values():
            s.wait_ready(deadline)
        self.silent = SilentListener()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.p("good.crt"), self.p("good.key"))
        self.silent_tls = SilentListener(ctx)

    def teardown(self):
        for s in self.servers.values():
            try:
                s.stop()
            except Exception:
                pass
        for l in (self.silent, self.silent_tls):
            if l is not None:
                l.close()

    def p(self, name):
        return os.path.join(self.pki, name)

    def pin_of(self, crt):
        return spki_pin(self.p(crt))

    def env(self, **extra):
        e = dict(os.environ)
        e.pop("SSL_CERT_DIR", None)
        e["SSL_CERT_FILE"] = self.p("ca.crt")
        e["ITEST_TRACE"] = "1"
        e.update(extra)
        return e

    def msgfile(self, msg):
        self.nmsg += 1
        path = os.path.join(self.work, "msg-%04d" % self.nmsg)
        with open(path, "wb") as f:
            f.write(msg)
        return path

    def run(self, cmd, stdin=b"", env=None, timeout=RUN_TIMEOUT):
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, input=stdin, capture_output=True,
                                  env=env or self.env(), timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CaseFailure("client did not finish within %.0f s: %r" % (timeout, cmd))
        wall = (time.monotonic() - t0) * 1000
        r = Result(proc, wall)
        if self.verbose:
            print("    $ %s\n    %s" % (" ".join(repr(c) for c in cmd), r))
        return r

    def itest(self, addr, msg=SIMPLE, api="send", auth="plain", user=USER, pw=PASS,
              frm=FROM, to=(TO,), cafile="ca.crt", pin=None, authhost=None,
              chunk=None, timeout_ms=5000, deadline_ms=None, env=None, timeout=RUN_TIMEOUT,
              extra=()):
        cmd = [self.itest_bin, "--addr", addr, "--api", api, "--from", frm,
               "--msg", self.msgfile(msg)]
        for t in to:
            cmd += ["--to", t]
        if auth:
            cmd += ["--auth", auth, "--user", user, "--pass", pw]
        if authhost is not None:
            cmd += ["--authhost", authhost]
        if api != "send":
            if cafile:
                cmd += ["--cafile", self.p(cafile) if "/" not in cafile else cafile]
            if pin:
                cmd += ["--pin", pin]
            if timeout_ms is not None:
                cmd += ["--timeout-ms", str(timeout_ms)]
            if deadline_ms is not None:
                cmd += ["--deadline-ms", str(deadline_ms)]
            if chunk is not None:
                cmd += ["--chunk", str(chunk)]
        cmd += list(extra)
        r = self.run(cmd, env=env, timeout=timeout)
        check(r.name is not None, "itest printed no result line: %s" % r)
        check((r.rc == 0) == (r.name == "OK"), "exit status %s with result %s" % (r.rc, r.name))
        return r

    def addr(self, server, host="localhost"):
        return "%s:%d" % (host, self.servers[server].port)

    # -- assertions on what the server saw
    def expect_result(self, r, name):
        check(r.name == name, "expected %s, got %s" % (name, r))

    def expect_stored(self, server, mark, msg, frm=FROM, to=(TO,), user=USER, count=1,
                      mech=None):
        s = self.servers[server]
        events, new = s.since(mark)
        check(len(new) == count, "expected %d stored message(s), found %d (events %s)"
              % (count, len(new), verbs(events)))
        want = normalise(msg)
        for eml in new:
            body, meta = s.stored(eml)
            check(body == want, "stored %s differs from the reference:\n      got  %r\n      want %r"
                  % (eml, body[:300], want[:300]) if len(want) > 300 or len(body) > 300 else
                  "stored %s differs from the reference: got %r want %r" % (eml, body, want))
            want_from = frm if frm else "<>"   # aiosmtpd records the null path as "<>"
            check(meta["mail_from"] == want_from, "mail_from %r != %r" % (meta["mail_from"], want_from))
            check(meta["rcpt_tos"] == list(to), "rcpt_tos %r != %r" % (meta["rcpt_tos"], list(to)))
            check(meta["auth_user"] == user, "auth_user %r != %r" % (meta["auth_user"], user))
        if mech:
            check(["AUTH", mech, "ok"] in [e[1:] for e in events],
                  "events.log has no 'AUTH %s ok': %s" % (mech, verbs(events)))
        return events

    def expect_nothing(self, server, mark, forbidden, what):
        """No stored message, and none of the forbidden events since mark."""
        time.sleep(SETTLE)
        s = self.servers[server]
        check(s.alive(), "server %s died" % server)
        events, new = s.since(mark)
        check(not new, "a message was stored: %s" % new)
        seen = [e[1] for e in events if len(e) > 1 and e[1] in forbidden]
        check(not seen, "%s, but the server log shows %s (events %s)"
              % (what, sorted(set(seen)), verbs(events)))
        return events


NO_CONNECTION = ("ACCEPT", "SNI", "CONNECT", "EHLO", "HELO", "AUTH", "MAIL", "RCPT", "DATA")
NO_SMTP = ("CONNECT", "EHLO", "HELO", "AUTH", "MAIL", "RCPT", "DATA")


# -------------------------------------------------------------------- cases --

BODIES = [
    ("dot_line_start", b".\r\nafter the dot\r\n"),
    ("dotdot_start", b"..x\r\nafter\r\n"),
    ("dot_lf_start", b".\nafter\n"),
    ("dots_middle", HDR + b"a\r\n.\r\nb\r\n..x\r\n...\r\nc\r\n.\nd\r\n. leading dot\r\n"),
    ("dot_line_end", HDR + b"body\r\n.\r\n"),
    ("dot_end_no_newline", HDR + b"body\r\n."),
    ("dotdot_end", HDR + b"body\r\n..x"),
    ("dot_lf_end", HDR + b"body\n.\n"),
    ("smuggle_lf_dot_lf", HDR + b"a\n.\nMAIL FROM:<evil@example.net>\r\n"),
    ("smuggle_cr_dot_cr", HDR + b"a\r.\rRSET\r\n"),
    ("smuggle_crlf_dot_lf", HDR + b"a\r\n.\nQUIT\r\n"),
    ("bare_lf", b"From: sender@example.org\nSubject: lf\n\nline one\nline two\n"),
    ("bare_cr", b"From: sender@example.org\rSubject: cr\r\rline one\rline two\r"),
    ("cr_cr_lf", HDR + b"a\r\r\nb\r\r\n"),
    ("mixed_ends", HDR + b"a\r\nb\nc\rd\n\re\r\n\n\r\r\nf"),
    ("no_final_newline", HDR + b"last line without end"),
    ("trailing_cr", HDR + b"ends in CR\r"),
    ("empty_body", HDR),
    ("empty_message", b""),
    ("binary_8bit", HDR + "caf\u00e9 \u2713\r\n".encode("utf-8") + bytes(range(128, 256)) + b"\r\n"),
    ("many_dot_lines", HDR + b"".join(b"." * (i % 4) + b"line %d\r\n" % i + (b"\n" if i % 5 == 0 else b"") + (b"\r" if i % 7 == 0 else b"")
                                      for i in range(400))),
]
APIS = [("send", None), ("client", None), ("stream", 1), ("stream", 2), ("stream", 7),
        ("stream", 4096)]


def build_cases(S):
    cases, case = registry()

    def deliver(server, msg, api="send", chunk=None, mech="PLAIN", addr_host="localhost",
                count=1, **kw):
        """Send msg with AUTH mech; check OK and exactly what the server stored."""
        m = S.servers[server].mark()
        r = S.itest(S.addr(server, addr_host), msg=msg, api=api, chunk=chunk,
                    auth=mech.lower(), **kw)
        S.expect_result(r, "OK")
        return S.expect_stored(server, m, msg, mech=mech, count=count,
                               user=kw.get("user", USER), to=kw.get("to", (TO,)),
                               frm=kw.get("frm", FROM))

    # -- plain delivery
    @case("send_plain_message")
    def _():
        ev = deliver("good", SIMPLE, api="send")
        check(["SNI", "localhost"] in [e[1:] for e in ev],
              "the client sent no SNI 'localhost': %s" % verbs(ev))
        names = [e[1] for e in ev if len(e) > 1]
        for v in ("EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"):
            check(v in names, "no %s in events: %s" % (v, verbs(ev)))

    for mech in ("plain", "login"):
        @case("gosend_" + mech)
        def _(mech=mech):
            m = S.servers["good"].mark()
            r = S.run([S.gosend_bin, mech, S.addr("good"), USER, PASS, FROM, TO], stdin=SIMPLE)
            check(r.rc == 0, "gosend failed: %s" % r)
            S.expect_stored("good", m, SIMPLE, mech=mech.upper())

        @case("gosend_%s_wrong_password" % mech)
        def _(mech=mech):
            m = S.servers["good"].mark()
            r = S.run([S.gosend_bin, mech, S.addr("good"), USER, PASS + "x", FROM, TO], stdin=SIMPLE)
            check(r.rc == 1, "gosend exit %s, want 1: %s" % (r.rc, r))
            check(r.stderr.strip() != "", "gosend printed no error")
            S.expect_nothing("good", m, ("MAIL",), "wrong password")

    # -- body edge cases through every API
    for bname, body in BODIES:
        for api, chunk in APIS:
            label = api if chunk is None else "%s/%d" % (api, chunk)

            @case("body_%s[%s]" % (bname, label))
            def _(body=body, api=api, chunk=chunk):
                deliver("good", body, api=api, chunk=chunk)

    # -- recipients
    three = ("one@example.org", "two@example.net", "Three.Person+tag@example.com")
    for api in ("send", "client", "stream"):
        @case("three_recipients[%s]" % api)
        def _(api=api):
            ev = deliver("good", SIMPLE, api=api, to=three)
            rcpts = [" ".join(e[2:]) for e in ev if len(e) > 1 and e[1] == "RCPT"]
            check(rcpts == ["TO:<%s>" % t for t in three], "RCPT commands %r" % rcpts)

    @case("null_reverse_path[client]")
    def _():
        deliver("good", SIMPLE, api="client", frm="")

    # -- AUTH mechanisms
    for api in ("send", "client", "stream"):
        for mech in ("PLAIN", "LOGIN"):
            @case("auth_%s[%s]" % (mech.lower(), api))
            def _(api=api, mech=mech):
                deliver("good", SIMPLE, api=api, mech=mech, user=USER2, pw=PASS2)

            @case("auth_%s_wrong_password[%s]" % (mech.lower(), api))
            def _(api=api, mech=mech):
                m = S.servers["good"].mark()
                r = S.itest(S.addr("good"), api=api, auth=mech.lower(), pw=PASS + "x")
                S.expect_result(r, "EAUTH")
                ev = S.expect_nothing("good", m, ("MAIL", "RCPT", "DATA"), "AUTH failed")
                check(["AUTH", mech, "fail"] in [e[1:] for e in ev],
                      "no 'AUTH %s fail' in events: %s" % (mech, verbs(ev)))

    # -- credentials for another host
    for api in ("send", "client", "stream"):
        @case("auth_other_host[%s]" % api)
        def _(api=api):
            m = S.servers["good"].mark()
            r = S.itest(S.addr("good"), api=api, authhost="smtp.example.org")
            S.expect_result(r, "EAUTHHOST")
            if api == "stream":   # dialled before authenticate() was called
                S.expect_nothing("good", m, ("AUTH", "MAIL"), "EAUTHHOST")
            else:                 # the one-call sends check before dialling
                S.expect_nothing("good", m, NO_CONNECTION, "EAUTHHOST must be found before dialling")

    # -- certificates
    bad_certs = {"wronghost": "ECERT_NAME", "cnonly": "ECERT_NAME",
                 "expired": "ECERT_EXPIRED", "untrusted": "ECERT_UNTRUSTED"}
    for srv, want in bad_certs.items():
        for api in ("send", "client", "stream"):
            @case("cert_%s[%s]" % (srv, api))
            def _(srv=srv, want=want, api=api):
                m = S.servers[srv].mark()
                r = S.itest(S.addr(srv), api=api)
                S.expect_result(r, want)
                ev = S.expect_nothing(srv, m, NO_SMTP, "certificate refused")
                check(any(e[1] == "ACCEPT" for e in ev if len(e) > 1),
                      "the client never reached the server: %s" % verbs(ev))

    for api in ("send", "client", "stream"):
        @case("cert_good_rsa[%s]" % api)
        def _(api=api):
            deliver("good-rsa", SIMPLE, api=api)

    @case("cert_untrusted_with_rogue_ca_file[client]")
    def _():   # the same server is fine once its CA is trusted: the failure above was trust
        deliver("untrusted", SIMPLE, api="client", cafile="rogue-ca.crt")

    # -- trust files
    for f in ("ca-crlf.crt", "ca-nonl.crt", "bundle.crt"):
        @case("cafile_%s[client]" % f)
        def _(f=f):
            deliver("good", SIMPLE, api="client", cafile=f)

        @case("ssl_cert_file_%s[send]" % f)
        def _(f=f):
            deliver("good", SIMPLE, api="send", env=S.env(SSL_CERT_FILE=S.p(f)))

    @case("trust_pem_in_memory_crlf[client]")
    def _():
        deliver("good", SIMPLE, api="client", cafile=None, extra=["--capem", S.p("ca-crlf.crt")])

    @case("trust_same_ca_twice[client]")
    def _():   # a source that only repeats known anchors is not "no certificate"
        deliver("good", SIMPLE, api="client", cafile="bundle.crt", extra=["--capem", S.p("ca.crt")])

    @case("trust_caller_anchors[client]")
    def _():   # tlsmail_trust_anchors: the caller's array, used as is
        deliver("good", SIMPLE, api="client", cafile=None, extra=["--anchors", S.p("bundle.crt")])

    @case("ssl_cert_dir_with_hash_link[send]")
    def _():
        d = os.path.join(S.work, "certdir")
        if not os.path.isdir(d):
            os.makedirs(d)
            h = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", S.p("ca.crt")],
                               check=True, capture_output=True, timeout=10).stdout.decode().strip()
            os.symlink(S.p("ca.crt"), os.path.join(d, h + ".0"))
            shutil.copy(S.p("rogue-ca.crt"), os.path.join(d, "rogue.pem"))
            with open(os.path.join(d, "README"), "w") as f:
                f.write("not a certificate: skipped by name\n")
        env = S.env(SSL_CERT_DIR="/nonexistent:" + d)
        env.pop("SSL_CERT_FILE")
        deliver("good", SIMPLE, api="send", env=env)

    @case("ssl_cert_dir_without_the_ca[send]")
    def _():
        d = os.path.join(S.work, "certdir-rogue")
        os.makedirs(d, exist_ok=True)
        shutil.copy(S.p("rogue-ca.crt"), os.path.join(d, "rogue.pem"))
        env = S.env(SSL_CERT_DIR=d)
        env.pop("SSL_CERT_FILE")
        m = S.servers["good"].mark()
        r = S.itest(S.addr("good"), api="send", env=env)
        S.expect_result(r, "ECERT_UNTRUSTED")
        S.expect_nothing("good", m, NO_SMTP, "CA not in SSL_CERT_DIR")

    for api in ("client", "stream"):
        @case("cafile_empty[%s]" % api)
        def _(api=api):
            m = S.servers["good"].mark()
            r = S.itest(S.addr("good"), api=api, cafile="empty.crt")
            S.expect_result(r, "ETRUST")
            S.expect_nothing("good", m, NO_CONNECTION, "no trust anchors")

    # -- key pinning
    def own_pin():
        with open(S.p("selfsigned.pin")) as f:
            return f.read().strip()

    @case("pin_check_reference")
    def _():   # the pin file of pki.sh equals the pin computed here independently
        check(own_pin() == S.pin_of("selfsigned.crt"), "selfsigned.pin mismatch")

    for api in ("client", "stream"):
        @case("pin_selfsigned[%s]" % api)
        def _(api=api):
            deliver("selfsigned", SIMPLE, api=api, cafile=None, pin=own_pin())

        @case("pin_wrong[%s]" % api)
        def _(api=api):
            m = S.servers["selfsigned"].mark()
            r = S.itest(S.addr("selfsigned"), api=api, cafile=None, pin=S.pin_of("good.crt"))
            S.expect_result(r, "ECERT_PIN")
            ev = S.expect_nothing("selfsigned", m, NO_SMTP, "pinned key mismatch")
            check(any(e[1] == "ACCEPT" for e in ev if len(e) > 1),
                  "the client never reached the server: %s" % verbs(ev))

        @case("pin_ip_literal[%s]" % api)
        def _(api=api):
            deliver("selfsigned", SIMPLE, api=api, cafile=None, pin=own_pin(),
                    addr_host="127.0.0.1")

    @case("pin_with_sha256_prefix[client]")
    def _():
        deliver("selfsigned", SIMPLE, api="client", cafile=None, pin="sha256//" + own_pin())

    @case("selfsigned_without_pin[client]")
    def _():
        m = S.servers["selfsigned"].mark()
        r = S.itest(S.addr("selfsigned"), api="client")
        S.expect_result(r, "ECERT_UNTRUSTED")
        S.expect_nothing("selfsigned", m, NO_SMTP, "certificate refused")

    for api in ("send", "client", "stream"):
        @case("ip_literal_without_pin[%s]" % api)
        def _(api=api):
            m = S.servers["good"].mark()
            r = S.itest(S.addr("good", "127.0.0.1"), api=api)
            S.expect_result(r, "EINVAL")
            S.expect_nothing("good", m, NO_CONNECTION, "an IP literal cannot be name-checked")

    # -- invalid envelope addresses: refused before connecting
    bad_addrs = [
        ("rcpt_crlf", dict(to=("rcpt@example.org\r\nRCPT TO:<evil@example.net>",))),
        ("rcpt_lf", dict(to=("rcpt@example.org\nDATA",))),
        ("rcpt_angle", dict(to=("evil@example.net>",))),
        ("rcpt_lt", dict(to=("<rcpt@example.org",))),
        ("second_rcpt_bad", dict(to=(TO, "a<b@example.org"))),
        ("from_space", dict(frm="sender name@example.org")),
        ("from_crlf", dict(frm="sender@example.org\r\nRSET")),
        ("local_part_65", dict(to=("a" * 65 + "@example.org",))),
    ]
    for bname, kw in bad_addrs:
        for api in ("send", "client"):
            @case("bad_address_%s[%s]" % (bname, api))
            def _(kw=kw, api=api):
                m = S.servers["good"].mark()
                r = S.itest(S.addr("good"), api=api, **kw)
                S.expect_result(r, "EINVAL")
                S.expect_nothing("good", m, NO_CONNECTION, "invalid address")

    @case("bad_address_rcpt_crlf[stream]")
    def _():
        m = S.servers["good"].mark()
        r = S.itest(S.addr("good"), api="stream", to=("rcpt@example.org\r\nRCPT TO:<evil@example.net>",))
        S.expect_result(r, "EINVAL")
        ev = S.expect_nothing("good", m, ("RCPT", "DATA"), "invalid recipient")
        check(not any("evil" in " ".join(e) for e in ev), "injected text reached the server")

    for api in ("send", "client", "stream"):
        @case("local_part_64[%s]" % api)
        def _(api=api):
            to = ("b" * 64 + "@example.org",)
            deliver("good", SIMPLE, api=api, to=to)

    # -- line length
    line999 = HDR + b"x" * 999 + b"\r\n" + b"after\r\n"
    line998 = HDR + b"y" * 998 + b"\r\n" + b"after\r\n"
    check(longest_line(line999) == 999 and longest_line(line998) == 998, "bad line fixtures")
    for api, chunk in (("send", None), ("client", None), ("stream", 1), ("stream", 7),
                       ("stream", 4096)):
        label = api if chunk is None else "%s/%d" % (api, chunk)

        @case("line_999[%s]" % label)
        def _(api=api, chunk=chunk):
            m = S.servers["good"].mark()
            r = S.itest(S.addr("good"), msg=line999, api=api, chunk=chunk)
            S.expect_result(r, "ELINE")
            if api == "send":   # the message is checked before any byte goes out
                S.expect_nothing("good", m, NO_CONNECTION, "ELINE with tlsmail_send")
            else:
                S.expect_nothing("good", m, ("STORED",), "ELINE")

        @case("line_998[%s]" % label)
        def _(api=api, chunk=chunk):
            deliver("good", line998, api=api, chunk=chunk)

    for ending, name in ((b"", "last_no_newline"), (b"\n", "lf"), (b"\r", "cr")):
        @case("line_999_%s[send]" % name)
        def _(ending=ending):
            msg = HDR + b"z" * 999 + ending
            m = S.servers["good"].mark()
            r = S.itest(S.addr("good"), msg=msg, api="send")
            S.expect_result(r, "ELINE")
            S.expect_nothing("good", m, NO_CONNECTION, "ELINE with tlsmail_send")

        @case("line_998_%s[send]" % name)
        def _(ending=ending):
            deliver("good", HDR + b"z" * 998 + ending, api="send")

    # -- network failures, bounded in time
    for api in ("send", "client"):
        @case("nothing_listening[%s]" % api)
        def _(api=api):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            r = S.itest("localhost:%d" % port, api=api)
            S.expect_result(r, "ECONNECT")
            check(r.wall_ms < 1000, "took %d ms (want < 1000)" % r.wall_ms)
            check(r.elapsed < 1000, "itest measured %d ms (want < 1000)" % r.elapsed)

    for api in ("client", "stream"):
        for lst, what in (("silent", "TCP"), ("silent_tls", "TLS")):
            @case("silent_%s_timeout_800[%s]" % (what.lower(), api))
            def _(api=api, lst=lst):
                l = getattr(S, lst)
                hs = l.handshakes
                r = S.itest("localhost:%d" % l.port, api=api, timeout_ms=800, timeout=10)
                S.expect_result(r, "ETIMEOUT")
                if l.tls_ctx is not None:   # the wait timed out was the greeting's
                    check(l.handshakes > hs, "the TLS handshake did not complete")
                check(700 <= r.wall_ms <= 3000, "wall time %d ms, want 700..3000" % r.wall_ms)
                check(700 <= r.elapsed <= 3000, "itest elapsed %d ms, want 700..3000" % r.elapsed)

            @case("silent_%s_deadline_1000[%s]" % (what.lower(), api))
            def _(api=api, lst=lst):
                l = getattr(S, lst)
                r = S.itest("localhost:%d" % l.port, api=api, timeout_ms=10000,
                            deadline_ms=1000, timeout=15)
                S.expect_result(r, "ETIMEOUT")
                check(900 <= r.wall_ms <= 3000, "wall time %d ms, want ~1000..3000" % r.wall_ms)
                check(900 <= r.elapsed <= 3000, "itest elapsed %d ms, want ~1000..3000" % r.elapsed)

    # -- several messages on one connection
    for chunk in (1, 4096):
        @case("two_messages_rset[stream2/%d]" % chunk)
        def _(chunk=chunk):
            two = ("first@example.org", "second@example.org")
            ev = deliver("good", SIMPLE, api="stream2", chunk=chunk, to=two, count=2)
            names = [e[1] for e in ev if len(e) > 1]
            check(names.count("CONNECT") == 1, "expected one connection: %s" % verbs(ev))
            check("RSET" in names, "no RSET in events: %s" % verbs(ev))
            check(names.count("MAIL") == 2 and names.count("DATA") == 2,
                  "expected 2 MAIL and 2 DATA: %s" % verbs(ev))

    return cases


def main():
    return suite_main("tlsmail integration tests", Suite, build_cases,
                      skip=lambda n: SLOW and any(t in n for t in TIMED))


if __name__ == "__main__":
    sys.exit(main())
