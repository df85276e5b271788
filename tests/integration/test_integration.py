#!/usr/bin/python3
"""tests/integration/test_integration.py - tlsmail.h against a real SMTP server.

    /usr/bin/python3 tests/integration/test_integration.py --build DIR [-k SUBSTR]... [--keep] [-v]

DIR holds the built `itest` and `gosend` (tests/integration/itest.c, gosend.c).
Makes a throw-away PKI (tests/lib/pki.sh), starts one tests/lib/smtpd.py (aiosmtpd,
implicit TLS, AUTH required) per certificate variant on 127.0.0.1, runs every
case as a subprocess with a time bound and checks what the server really
received (stored .eml/.json, events.log). Standard library only.

Most cases are rows of the table below: delivers(NAME, API, ...) sends with
itest and wants OK and exactly the normalised message stored, with its
envelope and login; refuses(NAME, API, ERROR, FORBID, WHY, ...) wants ERROR,
no message stored and none of the FORBID events in the server's log. Both
run one function, send_case(). A case that needs code of its own is a
top-level function of S registered with @CASES.case(NAME) or CASES.add().
tests/README.md says how to add one.

Prints "PASS name" or "FAIL name: reason" per case and, last, "N passed,
N failed"; exits 1 if any case failed.
"""
import errno
import os
import re
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
# assert a wall-time bound (tag "timed") are left to the normal and ASan runs.
SLOW = os.environ.get("TLSMAIL_TEST_SLOW") == "1"

sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from testlib import (CaseFailure, check, normalise, longest_line, Server, spki_pin,  # noqa: E402
                     Cases, SilentListener, Result, verbs,
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

CASES = Cases()


# ------------------------------------------------------- the table's runner --

def send_case(S, api, want="OK", server="good", host="localhost", msg=SIMPLE, mech="PLAIN",
              count=1, forbid=(), why=None, checks=(), **opts):
    """Send msg with itest to server, as host:PORT, through api ("send",
    "client", "stream", "stream2", "begin", a chunk size after a slash: "stream/7"),
    with AUTH mech. opts go to Suite.itest (user, pw, frm, to, cafile, pin,
    authhost, extra, ...); env is a dict of changes to Suite.env() (None
    removes a variable); values made by pki(), pin_of() and own_pin() are
    filled in here. want "OK": exactly msg stored, count times, for the
    envelope and login sent. Any other want: that error, nothing stored,
    none of the forbid events. Then every check(r, events) of checks."""
    name, _, chunk = api.partition("/")
    opts = late(S, opts)
    if "env" in opts:
        env = S.env()
        for k, v in opts["env"].items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        opts["env"] = env
    m = S.servers[server].mark()
    r = S.itest(S.addr(server, host), msg=msg, api=name, chunk=int(chunk) if chunk else None,
                auth=mech.lower() if mech else None, **opts)
    S.expect_result(r, want)
    if want == "OK":
        ev = S.expect_stored(server, m, msg, mech=mech, count=count,
                             user=opts.get("user", USER), to=opts.get("to", (TO,)),
                             frm=opts.get("frm", FROM))
    else:
        ev = S.expect_nothing(server, m, forbid, why)
    for c in checks:
        c(r, ev)
    return ev


def delivers(name, api, **spec):
    """A row: name sends through api and the server stores the message."""
    CASES.add(_labelled(name, api), send_case, api, **spec)


def refuses(name, api, want, forbid, why, **spec):
    """A row: name ends in the error want, the server stores nothing and logs
    none of forbid (why says what the refusal is, for the failure message)."""
    CASES.add(_labelled(name, api), send_case, api, want, forbid=forbid, why=why, **spec)


def _labelled(name, api):
    # The [label] of a name is the API it runs: a row that says otherwise is
    # a copy-paste slip, refused when the table is read.
    m = re.search(r"\[(.*)\]$", name)
    if m and m.group(1) != api:
        raise ValueError("case %s runs api %r" % (name, api))
    return name


# Values known only once the suite runs (its PKI directory), for row options.
def pki(name):
    """The path of name in the test PKI."""
    return lambda S: S.p(name)


def pin_of(crt):
    """The pin of crt, computed by the openssl CLI."""
    return lambda S: S.pin_of(crt)


def own_pin(prefix=""):
    """The pin pki.sh wrote for the self-signed server (selfsigned.pin)."""
    def value(S):
        with open(S.p("selfsigned.pin")) as f:
            return prefix + f.read().strip()
    return value


def late(S, v):
    if callable(v):
        return v(S)
    if isinstance(v, dict):
        return {k: late(S, x) for k, x in v.items()}
    if isinstance(v, list):
        return [late(S, x) for x in v]
    return v


# Checks on the result r and the server's events (token lists), for checks=.
def saw(*tokens):
    """events.log has an event that is exactly these tokens (after the
    connection number)."""
    want = list(tokens)

    def c(r, ev):
        check(want in [e[1:] for e in ev], "no '%s' in events: %s" % (" ".join(want), verbs(ev)))
    return c


def verbs_include(*names):
    def c(r, ev):
        seen = [e[1] for e in ev if len(e) > 1]
        for v in names:
            check(v in seen, "no %s in events: %s" % (v, verbs(ev)))
    return c


def verb_count(name, n):
    def c(r, ev):
        got = [e[1] for e in ev if len(e) > 1].count(name)
        check(got == n, "%d %s in events, want %d: %s" % (got, name, n, verbs(ev)))
    return c


def rcpts_are(addrs):
    """The RCPT commands, in order, name exactly addrs."""
    def c(r, ev):
        rcpts = [" ".join(e[2:]) for e in ev if len(e) > 1 and e[1] == "RCPT"]
        check(rcpts == ["TO:<%s>" % t for t in addrs], "RCPT commands %r" % rcpts)
    return c


def never_said(text):
    def c(r, ev):
        check(not any(text in " ".join(e) for e in ev), "%r reached the server" % text)
    return c


# A refusal that is about the server's certificate came after a connection.
reached_server = saw("ACCEPT")


# -------------------------------------------------------------------- cases --
# In the order they run. A row's name is GROUP[API]: tests/lib/sanitize.sh
# runs one case per GROUP (and every API) under valgrind in make test.

# -- plain delivery
delivers("send_plain_message", "send",
         checks=[saw("SNI", "localhost"), verbs_include("EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT")])


def gosend_delivers(S, mech):
    m = S.servers["good"].mark()
    r = S.run([S.gosend_bin, mech, S.addr("good"), USER, PASS, FROM, TO], stdin=SIMPLE)
    check(r.rc == 0, "gosend failed: %s" % r)
    S.expect_stored("good", m, SIMPLE, mech=mech.upper())


def gosend_wrong_password(S, mech):
    m = S.servers["good"].mark()
    r = S.run([S.gosend_bin, mech, S.addr("good"), USER, PASS + "x", FROM, TO], stdin=SIMPLE)
    check(r.rc == 1, "gosend exit %s, want 1: %s" % (r.rc, r))
    check(r.stderr.strip() != "", "gosend printed no error")
    S.expect_nothing("good", m, ("MAIL",), "wrong password")


for mech in ("plain", "login"):
    CASES.add("gosend_" + mech, gosend_delivers, mech)
    CASES.add("gosend_%s_wrong_password" % mech, gosend_wrong_password, mech)

# -- body edge cases through every API
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
APIS = ("send", "client", "stream/1", "stream/2", "stream/7", "stream/4096", "begin/4096")
for bname, body in BODIES:
    for api in APIS:
        delivers("body_%s[%s]" % (bname, api), api, msg=body)

# -- recipients
THREE = ("one@example.org", "two@example.net", "Three.Person+tag@example.com")
for api in ("send", "client", "stream", "begin"):
    delivers("three_recipients[%s]" % api, api, to=THREE, checks=[rcpts_are(THREE)])
delivers("null_reverse_path[client]", "client", frm="")

# -- AUTH mechanisms
for api in ("send", "client", "stream"):
    for mech in ("PLAIN", "LOGIN"):
        delivers("auth_%s[%s]" % (mech.lower(), api), api, mech=mech, user=USER2, pw=PASS2)
        refuses("auth_%s_wrong_password[%s]" % (mech.lower(), api), api, "EAUTH",
                ("MAIL", "RCPT", "DATA"), "AUTH failed", mech=mech, pw=PASS + "x",
                checks=[saw("AUTH", mech, "fail")])

# -- credentials for another host
for api in ("send", "client", "stream"):
    if api == "stream":   # dialled before authenticate() was called
        refuses("auth_other_host[%s]" % api, api, "EAUTHHOST", ("AUTH", "MAIL"), "EAUTHHOST",
                authhost="smtp.example.org")
    else:                 # the one-call sends check before dialling
        refuses("auth_other_host[%s]" % api, api, "EAUTHHOST", NO_CONNECTION,
                "EAUTHHOST must be found before dialling", authhost="smtp.example.org")

# -- certificates
BAD_CERTS = (("wronghost", "ECERT_NAME"), ("cnonly", "ECERT_NAME"),
             ("expired", "ECERT_EXPIRED"), ("untrusted", "ECERT_UNTRUSTED"))
for srv, want in BAD_CERTS:
    for api in ("send", "client", "stream"):
        refuses("cert_%s[%s]" % (srv, api), api, want, NO_SMTP, "certificate refused",
                server=srv, checks=[reached_server])
for api in ("send", "client", "stream"):
    delivers("cert_good_rsa[%s]" % api, api, server="good-rsa")
# the same server is fine once its CA is trusted: the refusal above was trust
delivers("cert_untrusted_with_rogue_ca_file[client]", "client", server="untrusted",
         cafile="rogue-ca.crt")

# -- trust files
for f in ("ca-crlf.crt", "ca-nonl.crt", "bundle.crt"):
    delivers("cafile_%s[client]" % f, "client", cafile=f)
    delivers("ssl_cert_file_%s[send]" % f, "send", env={"SSL_CERT_FILE": pki(f)})
delivers("trust_pem_in_memory_crlf[client]", "client", cafile=None,
         extra=["--capem", pki("ca-crlf.crt")])
# the END line without its line end: complete once the input ends
delivers("trust_pem_in_memory_nonl[client]", "client", cafile=None,
         extra=["--capem", pki("ca-nonl.crt")])
# a source that only repeats known anchors is not "no certificate"
delivers("trust_same_ca_twice[client]", "client", cafile="bundle.crt",
         extra=["--capem", pki("ca.crt")])
# tlsmail_trust_anchors: the caller's array, used as is
delivers("trust_caller_anchors[client]", "client", cafile=None,
         extra=["--anchors", pki("bundle.crt")])


@CASES.case("ssl_cert_dir_with_hash_link[send]")
def ssl_cert_dir_with_hash_link(S):
    d = os.path.join(S.work, "certdir")
    if not os.path.isdir(d):
        os.makedirs(d)
        h = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", S.p("ca.crt")],
                           check=True, capture_output=True, timeout=10).stdout.decode().strip()
        os.symlink(S.p("ca.crt"), os.path.join(d, h + ".0"))
        shutil.copy(S.p("rogue-ca.crt"), os.path.join(d, "rogue.pem"))
        with open(os.path.join(d, "README"), "w") as f:
            f.write("not a certificate: skipped by name\n")
    send_case(S, "send", env={"SSL_CERT_DIR": "/nonexistent:" + d, "SSL_CERT_FILE": None})


@CASES.case("ssl_cert_dir_without_the_ca[send]")
def ssl_cert_dir_without_the_ca(S):
    d = os.path.join(S.work, "certdir-rogue")
    os.makedirs(d, exist_ok=True)
    shutil.copy(S.p("rogue-ca.crt"), os.path.join(d, "rogue.pem"))
    send_case(S, "send", "ECERT_UNTRUSTED", forbid=NO_SMTP, why="CA not in SSL_CERT_DIR",
              env={"SSL_CERT_DIR": d, "SSL_CERT_FILE": None})


for api in ("client", "stream"):
    refuses("cafile_empty[%s]" % api, api, "ETRUST", NO_CONNECTION, "no trust anchors",
            cafile="empty.crt")


# -- key pinning
@CASES.case("pin_check_reference")
def pin_check_reference(S):
    # the pin file of pki.sh equals the pin computed here independently
    check(own_pin()(S) == S.pin_of("selfsigned.crt"), "selfsigned.pin mismatch")


for api in ("client", "stream"):
    delivers("pin_selfsigned[%s]" % api, api, server="selfsigned", cafile=None, pin=own_pin())
    refuses("pin_wrong[%s]" % api, api, "ECERT_PIN", NO_SMTP, "pinned key mismatch",
            server="selfsigned", cafile=None, pin=pin_of("good.crt"), checks=[reached_server])
    delivers("pin_ip_literal[%s]" % api, api, server="selfsigned", host="127.0.0.1",
             cafile=None, pin=own_pin())
delivers("pin_with_sha256_prefix[client]", "client", server="selfsigned", cafile=None,
         pin=own_pin("sha256//"))
refuses("selfsigned_without_pin[client]", "client", "ECERT_UNTRUSTED", NO_SMTP,
        "certificate refused", server="selfsigned")
for api in ("send", "client", "stream"):
    refuses("ip_literal_without_pin[%s]" % api, api, "EINVAL", NO_CONNECTION,
            "an IP literal cannot be name-checked", host="127.0.0.1")

# -- invalid envelope addresses: refused before connecting
BAD_ADDRESSES = [
    ("rcpt_crlf", dict(to=("rcpt@example.org\r\nRCPT TO:<evil@example.net>",))),
    ("rcpt_lf", dict(to=("rcpt@example.org\nDATA",))),
    ("rcpt_angle", dict(to=("evil@example.net>",))),
    ("rcpt_lt", dict(to=("<rcpt@example.org",))),
    ("second_rcpt_bad", dict(to=(TO, "a<b@example.org"))),
    ("from_space", dict(frm="sender name@example.org")),
    ("from_crlf", dict(frm="sender@example.org\r\nRSET")),
    ("local_part_65", dict(to=("a" * 65 + "@example.org",))),
]
for bname, kw in BAD_ADDRESSES:
    for api in ("send", "client"):
        refuses("bad_address_%s[%s]" % (bname, api), api, "EINVAL", NO_CONNECTION,
                "invalid address", **kw)
# the stream API has dialled before the recipient comes
refuses("bad_address_rcpt_crlf[stream]", "stream", "EINVAL", ("RCPT", "DATA"),
        "invalid recipient", to=("rcpt@example.org\r\nRCPT TO:<evil@example.net>",),
        checks=[never_said("evil")])
for api in ("send", "client", "stream"):
    delivers("local_part_64[%s]" % api, api, to=("b" * 64 + "@example.org",))

# -- line length
LINE999 = HDR + b"x" * 999 + b"\r\n" + b"after\r\n"
LINE998 = HDR + b"y" * 998 + b"\r\n" + b"after\r\n"
check(longest_line(LINE999) == 999 and longest_line(LINE998) == 998, "bad line fixtures")
# which line: CRLF, a bare CR and a bare LF each end one (tlsmail_error_line)
LINE999_MIXED = HDR + b"cr\rlf\ncrlf\r\n" + b"x" * 999 + b"\r\n"


def says_line(n):
    def check_line(r, events):
        check("message line longer than 998 octets (line %d)" % n in r.stderr, "description %r" % r.stderr)
    return check_line


for api in ("send", "client", "stream/1", "stream/7", "stream/4096", "begin/7"):
    if api == "send":   # the message is checked before any byte goes out
        refuses("line_999[%s]" % api, api, "ELINE", NO_CONNECTION, "ELINE with tlsmail_send",
                msg=LINE999)
    else:
        refuses("line_999[%s]" % api, api, "ELINE", ("STORED",), "ELINE", msg=LINE999,
                checks=[says_line(HDR.count(b"\n") + 1)])
        refuses("line_999_after_bare_ends[%s]" % api, api, "ELINE", ("STORED",), "ELINE",
                msg=LINE999_MIXED, checks=[says_line(HDR.count(b"\n") + 4)])
    delivers("line_998[%s]" % api, api, msg=LINE998)
for ending, ename in ((b"", "last_no_newline"), (b"\n", "lf"), (b"\r", "cr")):
    refuses("line_999_%s[send]" % ename, "send", "ELINE", NO_CONNECTION,
            "ELINE with tlsmail_send", msg=HDR + b"z" * 999 + ending)
    delivers("line_998_%s[send]" % ename, "send", msg=HDR + b"z" * 998 + ending)


# -- network failures, bounded in time
def nothing_listening(S, api):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = S.itest("localhost:%d" % port, api=api)
    S.expect_result(r, "ECONNECT")
    if api == "client":  # tlsmail_describe names the system's error in words, and by number
        check("connect: cannot connect to server (connection refused; errno %d)" % errno.ECONNREFUSED
              in r.stderr, "description: %r" % r.stderr)
    check(r.wall_ms < 1000, "took %d ms (want < 1000)" % r.wall_ms)
    check(r.elapsed < 1000, "itest measured %d ms (want < 1000)" % r.elapsed)


# the listener each kind of silence comes from (Suite attributes)
SILENT = {"tcp": "silent", "tls": "silent_tls"}


def silent_timeout(S, api, what):
    l = getattr(S, SILENT[what])
    hs = l.handshakes
    r = S.itest("localhost:%d" % l.port, api=api, timeout_ms=800, timeout=10)
    S.expect_result(r, "ETIMEOUT")
    if l.tls_ctx is not None:   # the wait timed out was the greeting's
        check(l.handshakes > hs, "the TLS handshake did not complete")
    check(700 <= r.wall_ms <= 3000, "wall time %d ms, want 700..3000" % r.wall_ms)
    check(700 <= r.elapsed <= 3000, "itest elapsed %d ms, want 700..3000" % r.elapsed)


def silent_deadline(S, api, what):
    l = getattr(S, SILENT[what])
    r = S.itest("localhost:%d" % l.port, api=api, timeout_ms=10000,
                deadline_ms=1000, timeout=15)
    S.expect_result(r, "ETIMEOUT")
    check(900 <= r.wall_ms <= 3000, "wall time %d ms, want ~1000..3000" % r.wall_ms)
    check(900 <= r.elapsed <= 3000, "itest elapsed %d ms, want ~1000..3000" % r.elapsed)


for api in ("send", "client"):
    CASES.add("nothing_listening[%s]" % api, nothing_listening, api, tags={"timed"})
for api in ("client", "stream"):
    for what in ("tcp", "tls"):
        CASES.add("silent_%s_timeout_800[%s]" % (what, api), silent_timeout, api, what,
                  tags={"timed"})
        CASES.add("silent_%s_deadline_1000[%s]" % (what, api), silent_deadline, api, what,
                  tags={"timed"})

# -- several messages on one connection
TWO = ("first@example.org", "second@example.org")
for api in ("stream2/1", "stream2/4096"):
    delivers("two_messages_rset[%s]" % api, api, to=TWO, count=2,
             checks=[verb_count("CONNECT", 1), verbs_include("RSET"), verb_count("MAIL", 2),
                     verb_count("DATA", 2)])


# ------------------------------------------------------------------ runners --

def build_cases(S):
    return CASES.bind(S)


# Under valgrind, every API variant of these bodies: the DATA encoder's
# dot-stuffing and line ends across every chunk size.
VALGRIND_BODIES = ("body_dots_middle", "body_many_dot_lines", "body_smuggle_lf_dot_lf")


def valgrind_subset():
    """The cases make test runs under valgrind (tests/lib/sanitize.sh,
    SANITIZE_VALGRIND=quick): the first case of every GROUP (a name less its
    [API]), every API variant of VALGRIND_BODIES, and for any API label
    still missing its first case; none tagged timed (skipped there)."""
    timed = set(CASES.names("timed"))
    names = [n for n in CASES.names() if n not in timed]
    group = lambda n: n.split("[")[0]
    label = lambda n: n[n.index("[") + 1:-1] if n.endswith("]") else None
    pick, groups, labels = [], set(), set()
    for n in names:
        if group(n) not in groups or group(n) in VALGRIND_BODIES:
            pick.append(n)
            groups.add(group(n))
            labels.add(label(n))
    for n in names:
        if label(n) not in labels:
            pick.append(n)
            labels.add(label(n))
    return [n for n in names if n in pick]


def main():
    timed = set(CASES.names("timed"))
    return suite_main("tlsmail integration tests", Suite, build_cases,
                      skip=lambda n: SLOW and n in timed)


if __name__ == "__main__":
    sys.exit(main())
