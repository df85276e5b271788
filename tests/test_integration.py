#!/usr/bin/python3
"""tests/test_integration.py - tlsmail.h against a real SMTP server.

    /usr/bin/python3 tests/test_integration.py --build DIR [-k SUBSTR]... [--keep] [-v]

DIR holds the built `itest` and `gosend` (tests/itest.c, tests/gosend.c).
Makes a throw-away PKI (tests/pki.sh), starts one tests/smtpd.py (aiosmtpd,
implicit TLS, AUTH required) per certificate variant on 127.0.0.1, runs every
case as a subprocess with a time bound and checks what the server really
received (stored .eml/.json, events.log). Standard library only.

Prints "PASS name" or "FAIL name: reason" per case and, last, "N passed,
N failed"; exits 1 if any case failed.
"""
import argparse
import base64
import hashlib
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"          # the interpreter that has aiosmtpd

USER, PASS = "alice@example.org", "s3cret-Pw"
USER2, PASS2 = "bob", "hunter2 with spaces"
FROM = "sender@example.org"
TO = "rcpt@example.org"
HDR = (b"From: sender@example.org\r\nTo: rcpt@example.org\r\n"
       b"Subject: integration test\r\n\r\n")
SIMPLE = HDR + b"Hello,\r\nthis is a test.\r\n"

SERVER_NAMES = ("good", "good-rsa", "wronghost", "cnonly", "expired",
                "untrusted", "selfsigned")
READY_TIMEOUT = 10.0      # seconds for a server to say READY
RUN_TIMEOUT = 30.0        # seconds for one client subprocess
SETTLE = 0.25             # seconds to let the server log before "nothing" checks
# Under valgrind (tests/sanitize.sh) a client runs ~30x slower: the cases that
# assert a wall-time bound are left to the normal and ASan runs.
SLOW = os.environ.get("TLSMAIL_TEST_SLOW") == "1"
TIMED = ("nothing_listening", "_timeout_", "_deadline_")


class CaseFailure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CaseFailure(msg)


# ---------------------------------------------------------------- reference --

def normalise(msg):
    """What the server must store for msg: every CRLF, bare CR and bare LF
    becomes CRLF, a last line without a line end gets CRLF. (The client
    dot-stuffs, aiosmtpd un-stuffs, so dots do not show here.)"""
    out = bytearray()
    i, n = 0, len(msg)
    while i < n:
        c = msg[i]
        if c == 13:
            out += b"\r\n"
            i += 2 if msg[i + 1:i + 2] == b"\n" else 1
        elif c == 10:
            out += b"\r\n"
            i += 1
        else:
            out.append(c)
            i += 1
    if out and not out.endswith(b"\r\n"):
        out += b"\r\n"
    return bytes(out)


def longest_line(msg):
    """Longest line of msg in octets, line ends (CRLF, CR, LF) excluded."""
    return max(len(l) for l in normalise(msg).split(b"\r\n"))


# ------------------------------------------------------------------ servers --

class Server:
    """One tests/smtpd.py subprocess."""

    def __init__(self, name, pki, work, users, mode="implicit", port=0, cert=None):
        self.name = name
        cert = cert or name
        self.spool = os.path.join(work, "spool-" + name)
        os.makedirs(self.spool)
        self.errf = open(os.path.join(work, "smtpd-%s.stderr" % name), "wb")
        cmd = [PYTHON, os.path.join(HERE, "smtpd.py"), "--port", str(port), "--mode", mode,
               "--cert", os.path.join(pki, cert + ".crt"),
               "--key", os.path.join(pki, cert + ".key"),
               "--spool", self.spool]
        for u, p in users:
            cmd += ["--user", "%s:%s" % (u, p)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.errf,
                                     stdin=subprocess.DEVNULL)
        self.port = None

    def wait_ready(self, deadline):
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("smtpd %s: no READY within %.0f s" % (self.name, READY_TIMEOUT))
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 256)
                if not chunk:
                    raise RuntimeError("smtpd %s exited (rc %s) before READY"
                                       % (self.name, self.proc.poll()))
                buf += chunk
        line = buf.split(b"\n")[0].decode()
        if not line.startswith("READY "):
            raise RuntimeError("smtpd %s: unexpected %r" % (self.name, line))
        self.port = int(line.split()[1])

    def alive(self):
        return self.proc.poll() is None

    def mark(self):
        log = os.path.join(self.spool, "events.log")
        size = os.path.getsize(log) if os.path.exists(log) else 0
        return (size, set(self.emls()))

    def emls(self):
        return sorted(f for f in os.listdir(self.spool) if f.endswith(".eml"))

    def since(self, mark):
        """Events (list of token lists) and new stored message names since mark."""
        size, before = mark
        with open(os.path.join(self.spool, "events.log"), "rb") as f:
            f.seek(size)
            data = f.read().decode("utf-8", "replace")
        events = [l.split(" ") for l in data.splitlines() if l]
        new = [e for e in self.emls() if e not in before]
        return events, new

    def stored(self, eml):
        base = os.path.join(self.spool, eml[:-4])
        with open(base + ".eml", "rb") as f:
            body = f.read()
        with open(base + ".json") as f:
            meta = json.load(f)
        return body, meta

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        self.errf.close()


def spki_pin(crt_path):
    """base64 SHA-256 of a certificate's DER SubjectPublicKeyInfo, computed
    by the openssl CLI (independently of the library)."""
    pem = subprocess.run(["openssl", "x509", "-in", crt_path, "-pubkey", "-noout"],
                         check=True, capture_output=True, timeout=10).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pem,
                         check=True, capture_output=True, timeout=10).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def registry():
    """A list of (name, fn) cases and the @case(name) decorator that fills it."""
    cases = []

    def case(name):
        def deco(fn):
            cases.append((name, fn))
            return fn
        return deco
    return cases, case


def free_port():
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class SilentListener:
    """Accepts TCP connections and never says a word (optionally after a TLS
    handshake). Threads are bounded: they stop when close() is called."""

    def __init__(self, tls_ctx=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.tls_ctx = tls_ctx
        self.held = []
        self.accepted = 0
        self.handshakes = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            if self.tls_ctx is not None:
                conn.settimeout(5)
                try:
                    conn = self.tls_ctx.wrap_socket(conn, server_side=True)
                    self.handshakes += 1
                except (OSError, ssl.SSLError):
                    pass
            self.held.append(conn)

    def close(self):
        self.stopping.set()
        self.thread.join(5)
        for c in self.held:
            try:
                c.close()
            except OSError:
                pass
        self.sock.close()


# ------------------------------------------------------------------ clients --

class Result:
    def __init__(self, proc, wall_ms):
        self.rc = proc.returncode
        self.stdout = proc.stdout.decode("utf-8", "replace")
        self.stderr = proc.stderr.decode("utf-8", "replace")
        self.wall_ms = wall_ms
        self.name, self.code, self.stage, self.elapsed = None, None, None, None
        for line in self.stdout.splitlines():
            f = line.split()
            # result NAME CODE STAGE ELAPSED; a stage name may contain spaces
            if len(f) >= 5 and f[0] == "result":
                self.name, self.code, self.elapsed = f[1], int(f[2]), int(f[-1])
                self.stage = " ".join(f[3:-1])

    def __str__(self):
        tail = self.stderr.strip().splitlines()[-6:]
        return "rc=%s result=%s/%s stage=%s elapsed=%s wall=%dms stderr=%r" % (
            self.rc, self.name, self.code, self.stage, self.elapsed, self.wall_ms,
            " | ".join(tail))


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
        subprocess.run(["bash", os.path.join(HERE, "pki.sh"), self.pki],
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


def verbs(events):
    return " ".join(e[1] if len(e) < 3 or e[1] not in ("AUTH",) else "AUTH/%s/%s" % (e[2], e[3])
                    for e in events if len(e) > 1)


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


def run_cases(S, cases, only=()):
    """Run (name, fn) cases, print PASS/FAIL for each; returns (passed, failed).
    Every server in S.servers must still be alive after each case."""
    passed = failed = 0
    for name, fn in cases:
        if only and not any(k in name for k in only):
            continue
        try:
            fn()
            for sname, srv in S.servers.items():
                check(srv is None or srv.alive(), "server %s died" % sname)
        except CaseFailure as e:
            failed += 1
            print("FAIL %s: %s" % (name, e), flush=True)
            continue
        except Exception as e:
            failed += 1
            print("FAIL %s: %s" % (name, "".join(
                traceback.format_exception_only(type(e), e)).strip()), flush=True)
            continue
        passed += 1
        print("PASS %s" % name, flush=True)
    return passed, failed


def suite_main(description, suite_class, build_cases, skip=lambda name: False):
    """The command line shared by the suites that drive itest: set up the
    servers, run the cases, tear down, print "N passed, N failed"."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--build", required=True, help="directory with the built test programs")
    ap.add_argument("-k", action="append", default=[], metavar="SUBSTR",
                    help="run only cases whose name contains SUBSTR (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="tlsmail-test-")
    S = suite_class(os.path.abspath(a.build), work, a.verbose)
    passed = failed = 0
    try:
        try:
            S.setup()
        except Exception as e:
            print("FAIL setup: %s" % e)
            print("0 passed, 1 failed")
            return 1
        cases = [(n, f) for n, f in build_cases(S) if not skip(n)]
        passed, failed = run_cases(S, cases, a.k)
    finally:
        S.teardown()
        if a.keep:
            print("kept %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def main():
    return suite_main("tlsmail integration tests", Suite, build_cases,
                      skip=lambda n: SLOW and any(t in n for t in TIMED))


if __name__ == "__main__":
    sys.exit(main())
