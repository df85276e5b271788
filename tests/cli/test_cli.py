#!/usr/bin/python3
"""tests/cli/test_cli.py - tlsmail-send (examples/tlsmail-send.c), the composer
behind --subject, and the custom_io / pinned examples, against real servers.

    /usr/bin/python3 tests/cli/test_cli.py [--build DIR] [-k SUBSTR]... [--keep] [-v]

DIR holds the built tlsmail-send, custom_io and pinned; whatever is missing
there is built into a temporary directory (gcc, strict warnings), and so
are a STARTTLS build (tlsmail-send-starttls) and one without STARTTLS
(tlsmail-send-tlsonly), for the "unsupported" error.

Servers, all on 127.0.0.1: tests/lib/smtpd.py (aiosmtpd, implicit TLS, AUTH
required) per certificate of tests/lib/pki.sh, one in STARTTLS mode, plus small
in-process aiosmtpd servers for what smtpd.py cannot do (refuse recipients
with 4xx/5xx, offer LOGIN only, offer no AUTH) and a silent listener.

Prints "PASS name" or "FAIL name: reason" per case and, last, exactly
"N passed, N failed"; exits 1 if any case failed. Every wait is bounded.
"""
import argparse
import base64
import email
import email.policy
import logging
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from testlib import (CaseFailure, check, normalise, free_port,  # noqa: E402
                     spki_pin, registry, Server, SilentListener, ROOT, PKI_SH, WARN)

USER, PASS = "alice@example.org", "s3cret-Pw"
FROM, TO = "sender@example.org", "rcpt@example.org"
SIMPLE = (b"From: Sender <sender@example.org>\r\nTo: rcpt@example.org\r\n"
          b"Subject: cli test\r\n\r\nHello,\r\nthis is a test.\r\n")
READY_TIMEOUT = 10.0
RUN_TIMEOUT = 30.0
SETTLE = 0.25
OPTIONS = ["--server", "--starttls", "--timeout", "-f, --from", "-t", "-i, -oi", "--subject",
           "--user", "--password-file", "--auth", "--cafile", "--capath", "--pin-sha256",
           "-v, --verbose", "-h, --help", "--version", "TLSMAIL_SERVER", "TLSMAIL_FROM",
           "TLSMAIL_PASSWORD", "SSL_CERT_FILE"]


# ------------------------------------------------------------------- build --

def build(build_dir, work):
    inc = ["-I" + ROOT]
    bins = {}
    wanted = [("tlsmail-send", "tlsmail-send.c", []), ("custom_io", "custom_io.c", []),
              ("pinned", "pinned.c", [])]
    wanted.append(("tlsmail-send-starttls", "tlsmail-send.c", ["-DTLSMAIL_STARTTLS"]))
    wanted.append(("tlsmail-send-tlsonly", "tlsmail-send.c", []))   # built without STARTTLS
    out_dir = os.path.join(work, "bin")
    os.makedirs(out_dir)
    for name, src, extra in wanted:
        given = os.path.join(build_dir, name) if build_dir and name != "tlsmail-send-tlsonly" else None
        if given and os.access(given, os.X_OK):
            bins[name] = given
            continue
        exe = os.path.join(out_dir, name)
        cmd = ["gcc"] + WARN + ["-O2"] + extra + inc + [os.path.join(ROOT, "examples", src),
                                                        "-o", exe, "-lbearssl"]
        subprocess.run(cmd, check=True, timeout=120)
        bins[name] = exe
    return bins


# ----------------------------------------------------------------- servers --

class InProcess:
    """A small aiosmtpd server in this process (implicit TLS): recipients
    starting with "reject" get 550, with "tempfail" 451; optional AUTH with
    only the given mechanisms."""

    def __init__(self, pki, auth_mechs=None):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.messages = []
        outer = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if address.startswith("reject"):
                    return "550 5.1.1 <%s>: no such user here" % address
                if address.startswith("tempfail"):
                    return "451 4.3.0 mailbox busy, try again later"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                outer.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                       envelope.original_content))
                return "250 2.0.0 OK"

        class Ctl(Controller):
            def _trigger_server(self):
                if self.port == 0 and self.server is not None:
                    self.port = self.server.sockets[0].getsockname()[1]
                return super()._trigger_server()

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode()
                  and auth_data.password == PASS.encode())
            return AuthResult(success=ok, handled=False)

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(os.path.join(pki, "good.crt"), os.path.join(pki, "good.key"))
        kw = dict(hostname="127.0.0.1", port=0, ssl_context=ctx, server_hostname="localhost",
                  ready_timeout=READY_TIMEOUT, auth_require_tls=False)
        if auth_mechs is not None:
            kw.update(authenticator=authenticator, auth_required=True,
                      auth_exclude_mechanism=[m for m in ("PLAIN", "LOGIN") if m not in auth_mechs])
        else:   # no AUTH offered at all
            kw.update(auth_exclude_mechanism=["PLAIN", "LOGIN"])
        self.ctl = Ctl(Handler(), **kw)
        self.ctl.start()
        self.port = self.ctl.server.sockets[0].getsockname()[1]

    def stop(self):
        self.ctl.stop(no_assert=True)


# ------------------------------------------------------------------- suite --

class Result:
    def __init__(self, proc, wall):
        self.rc = proc.returncode
        self.stdout = proc.stdout.decode("utf-8", "replace")
        self.stderr = proc.stderr.decode("utf-8", "replace")
        self.wall = wall

    def __str__(self):
        return "rc=%s wall=%.1fs stderr=%r" % (self.rc, self.wall, self.stderr[-600:])


class Suite:
    def __init__(self, build_dir, work, verbose):
        self.build_dir = build_dir
        self.work = work
        self.verbose = verbose
        self.pki = os.path.join(work, "pki")
        self.servers = {}
        self.extra = {}
        self.silent = None
        self.n = 0

    def setup(self):
        self.bins = build(self.build_dir, self.work)
        subprocess.run(["bash", PKI_SH, self.pki], check=True, timeout=120)
        for name, cert, mode in (("good", "good", "implicit"), ("untrusted", "untrusted", "implicit"),
                                 ("wronghost", "wronghost", "implicit"),
                                 ("expired", "expired", "implicit"),
                                 ("selfsigned", "selfsigned", "implicit"),
                                 ("starttls", "good", "starttls")):
            self.servers[name] = Server(name, self.pki, self.work, [(USER, PASS)], mode=mode, cert=cert)
        deadline = time.monotonic() + READY_TIMEOUT
        for s in self.servers.values():
            s.wait_ready(deadline)
        self.extra["refuse"] = InProcess(self.pki)                       # no AUTH
        self.extra["loginonly"] = InProcess(self.pki, auth_mechs=("LOGIN",))
        self.silent = SilentListener()
        self.capath = os.path.join(self.work, "capath")
        os.makedirs(self.capath)
        shutil.copy(self.p("ca.crt"), os.path.join(self.capath, "ca.pem"))

    def teardown(self):
        for s in list(self.servers.values()) + list(self.extra.values()):
            try:
                s.stop()
            except Exception:
                pass
        if self.silent:
            self.silent.close()

    def p(self, name):
        return os.path.join(self.pki, name)

    def pin_of(self, crt):
        return spki_pin(self.p(crt))

    def env(self, **extra):
        e = {k: v for k, v in os.environ.items()
             if not k.startswith("TLSMAIL_") and not k.startswith("SSL_CERT_")
             and not k.startswith("SMTP_")}
        e.update(extra)
        return e

    def run(self, cmd, stdin=b"", env=None, timeout=RUN_TIMEOUT):
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, input=stdin, capture_output=True,
                                  env=env if env is not None else self.env(), timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CaseFailure("did not finish within %.0f s: %r" % (timeout, cmd))
        r = Result(proc, time.monotonic() - t0)
        if self.verbose:
            print("    $ %s\n    %s" % (" ".join(cmd), r))
        return r

    def addr(self, server):
        return "localhost:%d" % self.servers[server].port

    def cli(self, args, stdin=SIMPLE, server="good", user=USER, pw=PASS, cafile="ca.crt",
            env_extra=None, binary="tlsmail-send", to=(TO,), timeout=RUN_TIMEOUT):
        """tlsmail-send with the usual options; the password through the env."""
        cmd = [self.bins[binary]]
        if server:
            port = self.servers[server].port if server in self.servers else self.extra[server].port
            cmd += ["--server", "localhost:%d" % port]
        if cafile:
            cmd += ["--cafile", self.p(cafile)]
        if user:
            cmd += ["--user", user]
        cmd += ["--timeout", "10"] + list(args) + list(to)
        extra = dict(env_extra or {})
        if pw is not None:
            extra.setdefault("TLSMAIL_PASSWORD", pw)
        return self.run(cmd, stdin=stdin, env=self.env(**extra), timeout=timeout)

    def expect_rc(self, r, rc):
        check(r.rc == rc, "exit status %s, want %s: %s" % (r.rc, rc, r))

    def expect_stored(self, server, mark, msg=None, frm=FROM, to=(TO,), user=USER):
        s = self.servers[server]
        events, new = s.since(mark)
        check(len(new) == 1, "expected 1 stored message, found %d (events %s)"
              % (len(new), [e[1] for e in events if len(e) > 1]))
        body, meta = s.stored(new[0])
        if msg is not None:
            check(body == normalise(msg), "stored message differs:\n got  %r\n want %r"
                  % (body[:400], normalise(msg)[:400]))
        check(meta["mail_from"] == frm, "mail_from %r != %r" % (meta["mail_from"], frm))
        check(sorted(meta["rcpt_tos"]) == sorted(to), "rcpt_tos %r != %r" % (meta["rcpt_tos"], list(to)))
        check(meta["auth_user"] == user, "auth_user %r != %r" % (meta["auth_user"], user))
        return body, meta, events

    def expect_nothing(self, server, mark, forbidden=("MAIL",)):
        time.sleep(SETTLE)
        events, new = self.servers[server].since(mark)
        check(not new, "a message was stored: %s" % new)
        seen = [e[1] for e in events if len(e) > 1 and e[1] in forbidden]
        check(not seen, "the server saw %s" % seen)
        return events


NO_CONNECTION = ("ACCEPT", "CONNECT", "EHLO", "AUTH", "MAIL", "RCPT", "DATA")


def build_cases(S):
    cases, case = registry()

    # ---- help, version, usage
    @case("help_lists_every_option")
    def _():
        r = S.run([S.bins["tlsmail-send"], "--help"])
        S.expect_rc(r, 0)
        for o in OPTIONS:
            check(o in r.stdout, "--help does not mention %s" % o)
        for code in ("64", "65", "66", "69", "70", "75", "76", "77"):
            check(code in r.stdout, "--help has no exit status %s" % code)
        # The manual quotes --help verbatim: the two can't drift apart.
        with open(os.path.join(ROOT, "README.md")) as f:
            text = f.read()
        check(r.stdout.strip() in text, "README.md does not quote tlsmail-send --help verbatim")

    @case("version")
    def _():
        v = re.search(r'#define TLSMAIL_VERSION_STRING "([^"]+)"',
                      open(os.path.join(ROOT, "tlsmail.h")).read()).group(1)
        r = S.run([S.bins["tlsmail-send"], "--version"])
        S.expect_rc(r, 0)
        check(v in r.stdout, "--version %r lacks %s" % (r.stdout, v))

    usage = [
        ("no_arguments", []),
        ("unknown_option", ["--server", "localhost:1", "--bogus", TO]),
        ("no_server", [TO]),
        ("no_recipients", ["--server", "localhost:1", "--from", FROM]),
        ("password_on_command_line", ["--server", "localhost:1", "--password", "x", TO]),
        ("password_equals_on_command_line", ["--server", "localhost:1", "--password=x", TO]),
        ("user_without_password", ["--server", "localhost:1", "--user", "u", TO]),
        ("bad_auth", ["--server", "localhost:1", "--auth", "cram-md5", TO]),
        ("bad_timeout", ["--server", "localhost:1", "--timeout", "0", TO]),
        ("bad_port", ["--server", "localhost:99999", TO]),
        ("bad_pin", ["--server", "localhost:1", "--pin-sha256", "not-base64!", TO]),
        ("pin_and_cafile", ["--server", "localhost:1", "--pin-sha256",
                            base64.b64encode(b"x" * 32).decode(), "--cafile", "/dev/null", TO]),
        ("t_and_subject", ["--server", "localhost:1", "-t", "--subject", "x", TO]),
        ("missing_value", ["--server"]),
    ]
    for name, args in usage:
        @case("usage_%s_64" % name)
        def _(args=args):
            r = S.run([S.bins["tlsmail-send"]] + args, stdin=SIMPLE)
            S.expect_rc(r, 64)
            check(r.stderr.startswith("tlsmail-send: "), "no error message: %s" % r)
            check(r.wall < 5, "took %.1f s" % r.wall)

    @case("usage_ip_literal_needs_pin_64")
    def _():
        r = S.run([S.bins["tlsmail-send"], "--server", "127.0.0.1:%d" % S.servers["good"].port,
                   "--from", FROM, TO], stdin=SIMPLE)
        S.expect_rc(r, 64)
        check("--pin-sha256" in r.stderr, "no hint about pinning: %s" % r)

    @case("starttls_unsupported_build_64")
    def _():
        m = S.servers["good"].mark()
        r = S.cli(["--starttls", "--from", FROM], binary="tlsmail-send-tlsonly")
        S.expect_rc(r, 64)
        check("TLSMAIL_STARTTLS" in r.stderr, "the error does not say how to get STARTTLS: %s" % r)
        S.expect_nothing("good", m, NO_CONNECTION)

    # ---- delivery and AUTH
    @case("send_default_auth_auto_plain")
    def _():
        m = S.servers["good"].mark()
        r = S.cli(["--from", FROM])
        S.expect_rc(r, 0)
        check(r.stderr == "", "stderr not empty on success: %r" % r.stderr)
        _, _, ev = S.expect_stored("good", m, SIMPLE)
        check(["AUTH", "PLAIN", "ok"] in [e[1:] for e in ev], "no AUTH PLAIN ok")

    for mech in ("plain", "login"):
        @case("send_auth_%s" % mech)
        def _(mech=mech):
            m = S.servers["good"].mark()
            r = S.cli(["--from", FROM, "--auth", mech])
            S.expect_rc(r, 0)
            _, _, ev = S.expect_stored("good", m, SIMPLE)
            check(["AUTH", mech.upper(), "ok"] in [e[1:] for e in ev], "no AUTH %s ok" % mech)

        @case("auth_%s_refused_77" % mech)
        def _(mech=mech):
            m = S.servers["good"].mark()
            r = S.cli(["--from", FROM, "--auth", mech], pw=PASS + "x")
            S.expect_rc(r, 77)
            check("AUTH" in r.stderr and "535" in r.stderr,
                  "the error line names no stage or reply: %s" % r)
            check(len(r.stderr.strip().splitlines()) == 1, "more than one line: %s" % r)
            S.expect_nothing("good", m)

    @case("auth_auto_refused_77")
    def _():
        m = S.servers["good"].mark()
        r = S.cli(["--from", FROM], pw="wrong")
        S.expect_rc(r, 77)
        check("535" in r.stderr, "no server reply quoted: %s" % r)
        S.expect_nothing("good", m)

    @case("auth_auto_picks_login")
    def _():
        srv = S.extra["loginonly"]
        before = len(srv.messages)
        r = S.cli(["--from", FROM, "-v"], server="loginonly")
        S.expect_rc(r, 0)
        check("> AUTH LOGIN" in r.stderr, "LOGIN not used: %s" % r)
        check(len(srv.messages) == before + 1, "nothing delivered")

    for mech in ("auto", "plain", "login"):
        @case("auth_no_mechanism_offered_77[%s]" % mech)
        def _(mech=mech):
            srv = S.extra["refuse"]
            before = len(srv.messages)
            r = S.cli(["--from", FROM, "--auth", mech], server="refuse")
            S.expect_rc(r, 77)
            check("no usable AUTH mechanism" in r.stderr, "not ENOMECH: %s" % r)
            check(len(srv.messages) == before, "sent without authenticating")

    # ---- password sources
    for label, content, rc in (("lf", PASS + "\n", 0), ("crlf", PASS + "\r\n", 0),
                               ("no_newline", PASS, 0), ("two_newlines", PASS + "\n\n", 77)):
        @case("password_file_%s" % label)
        def _(content=content, rc=rc):
            path = os.path.join(S.work, "pw-%d" % id(content))
            with open(path, "w", newline="") as f:
                f.write(content)
            m = S.servers["good"].mark()
            r = S.cli(["--from", FROM, "--password-file", path], pw=None)
            S.expect_rc(r, rc)
            if rc == 0:
                S.expect_stored("good", m, SIMPLE)

    @case("password_file_wins_over_env")
    def _():
        path = os.path.join(S.work, "pw-right")
        with open(path, "w") as f:
            f.write(PASS + "\n")
        r = S.cli(["--from", FROM, "--password-file", path], pw="wrong")
        S.expect_rc(r, 0)

    @case("password_file_missing_66")
    def _():
        r = S.cli(["--from", FROM, "--password-file", os.path.join(S.work, "nope")], pw=None)
        S.expect_rc(r, 66)

    # ---- environment and sender
    @case("env_server_and_from")
    def _():
        m = S.servers["good"].mark()
        r = S.run([S.bins["tlsmail-send"], "--cafile", S.p("ca.crt"), "--user", USER, TO],
                  stdin=SIMPLE, env=S.env(TLSMAIL_SERVER=S.addr("good"), TLSMAIL_FROM="env@example.org",
                                          TLSMAIL_PASSWORD=PASS))
        S.expect_rc(r, 0)
        S.expect_stored("good", m, SIMPLE, frm="env@example.org")

    @case("from_option_with_display_name")
    def _():
        m = S.servers["good"].mark()
        r = S.cli(["--from", "Alerts <alerts@example.org>"], to=("Ops Team <ops@example.org>",))
        S.expect_rc(r, 0)
        S.expect_stored("good", m, SIMPLE, frm="alerts@example.org", to=("ops@example.org",))

    @case("sender_from_header")
    def _():
        m = S.servers["good"].mark()
        r = S.cli([])
        S.expect_rc(r, 0)
        S.expect_stored("good", m, SIMPLE, frm="sender@example.org")

    @case("sendmail_style_flags")
    def _():
        m = S.servers["good"].mark()
        r = S.cli(["-oi", "-i", "-fbounce@example.org"])
        S.expect_rc(r, 0)
        S.expect_stored("good", m, SIMPLE, frm="bounce@example.org")

    # ---- server verdicts and network failures
    @case("rcpt_5xx_69")
    def _():
        srv = S.extra["refuse"]
        before = len(srv.messages)
        r = S.cli(["--from", FROM], server="refuse", user=None, to=("reject@example.org",))
        S.expect_rc(r, 69)
        check("RCPT" in r.stderr and "550" in r.stderr and "no such user" in r.stderr,
              "stage or reply missing: %s" % r)
        check(len(srv.messages) == before, "a message was delivered")

    @case("rcpt_5xx_one_of_two_69")
    def _():
        srv = S.extra["refuse"]
        before = len(srv.messages)
        r = S.cli(["--from", FROM], server="refuse", user=None,
                  to=("ok@example.org", "reject@example.org"))
        S.expect_rc(r, 69)
        check(len(srv.messages) == before, "a message was delivered")

    @case("rcpt_4xx_75")
    def _():
        srv = S.extra["refuse"]
        before = len(srv.messages)
        r = S.cli(["--from", FROM], server="refuse", user=None, to=("tempfail@example.org",))
        S.expect_rc(r, 75)
        check("451" in r.stderr and "RCPT" in r.stderr, "stage or reply missing: %s" % r)
        check(len(srv.messages) == before, "a message was delivered")

    @case("no_auth_send_to_open_server")
    def _():
        srv = S.extra["refuse"]
        before = len(srv.messages)
        r = S.cli(["--from", FROM], server="refuse", user=None)
        S.expect_rc(r, 0)
        check(len(srv.messages) == before + 1, "nothing delivered")
        check(srv.messages[-1][2] == normalise(SIMPLE), "content differs")

    @case("timeout_silent_server_75")
    def _():
        r = S.run([S.bins["tlsmail-send"], "--server", "localhost:%d" % S.silent.port,
                   "--cafile", S.p("ca.crt"), "--from", FROM, "--timeout", "1", TO], stdin=SIMPLE)
        S.expect_rc(r, 75)
        check(r.wall < 8, "took %.1f s with --timeout 1" % r.wall)
        check("timed out" in r.stderr, "no 'timed out': %s" % r)

    @case("timeout_fractional_75")
    def _():
        r = S.run([S.bins["tlsmail-send"], "--server", "localhost:%d" % S.silent.port,
                   "--cafile", S.p("ca.crt"), "--from", FROM, "--timeout", "0.3", TO], stdin=SIMPLE)
        S.expect_rc(r, 75)
        check(r.wall < 5, "took %.1f s with --timeout 0.3" % r.wall)

    @case("connection_refused_75")
    def _():
        r = S.run([S.bins["tlsmail-send"], "--server", "localhost:%d" % free_port(),
                   "--cafile", S.p("ca.crt"), "--from", FROM, TO], stdin=SIMPLE)
        S.expect_rc(r, 75)
        check("connect" in r.stderr, "stage not named: %s" % r)

    # ---- certificates and trust
    for srv in ("untrusted", "wronghost", "expired"):
        @case("cert_%s_69" % srv)
        def _(srv=srv):
            m = S.servers[srv].mark()
            r = S.cli(["--from", FROM], server=srv)
            S.expect_rc(r, 69)
            check("certificate" in r.stderr, "no certificate error: %s" % r)
            S.expect_nothing(srv, m, ("CONNECT", "EHLO", "AUTH", "MAIL"))

    @case("no_trust_given_system_store_69")
    def _():
        r = S.cli(["--from", FROM], cafile=None)
        S.expect_rc(r, 69)

    @case("ssl_cert_file_env")
    def _():
        m = S.servers["good"].mark()
        r = S.cli(["--from", FROM], cafile=None, env_extra={"SSL_CERT_FILE": S.p("ca.crt")})
        S.expect_rc(r, 0)
        S.expect_stored("good", m, SIMPLE)

    @case("capath")
    def _():
        m = S.servers["good"].mark()
        r = S.cli(["--from", FROM, "--capath", S.capath], cafile=None)
        S.expect_rc(r, 0)
        S.expect_stored("good", m, SIMPLE)

    @case("cafile_unreadable_66")
    def _():
        r = S.cli(["--from", FROM, "--cafile", S.p("empty.crt")], cafile=None)
        S.expect_rc(r, 66)

    @case("pin_right")
    def _():
        m = S.servers["selfsigned"].mark()
        pin = open(S.p("selfsigned.pin")).read().strip()
        r = S.cli(["--from", FROM, "--pin-sha256", pin], server="selfsigned", cafile=None)
        S.expect_rc(r, 0)
        S.expect_stored("selfsigned", m, SIMPLE)

    @case("pin_right_by_ip_address")
    def _():
        m = S.servers["selfsigned"].mark()
        pin = "sha256//" + S.pin_of("selfsigned.crt")
        r = S.run([S.bins["tlsmail-send"], "--server", "127.0.0.1:%d" % S.servers["selfsigned"].port,
                   "--pin-sha256", pin, "--user", USER, "--from", FROM, TO], stdin=SIMPLE,
                  env=S.env(TLSMAIL_PASSWORD=PASS))
        S.expect_rc(r, 0)
        S.expect_stored("selfsigned", m, SIMPLE)

    @case("pin_wrong_69")
    def _():
        m = S.servers["selfsigned"].mark()
        r = S.cli(["--from", FROM, "--pin-sha256", S.pin_of("good.crt")], server="selfsigned",
                  cafile=None)
        S.expect_rc(r, 69)
        check("pinned" in r.stderr, "no pin error: %s" % r)
        S.expect_nothing("selfsigned", m, ("CONNECT", "EHLO", "AUTH", "MAIL"))

    # ---- the message
    @case("long_line_65")
    def _():
        m = S.servers["good"].mark()
        r = S.cli(["--from", FROM], stdin=SIMPLE + b"x" * 999 + b"\r\n")
        S.expect_rc(r, 65)
        check("998" in r.stderr, "no line length in the error: %s" % r)
        S.expect_nothing("good", m, NO_CONNECTION)

    @case("line_of_998_is_fine")
    def _():
        m = S.servers["good"].mark()
        msg = SIMPLE + b"y" * 998 + b"\n"
        r = S.cli(["--from", FROM], stdin=msg)
        S.expect_rc(r, 0)
        S.expect_stored("good", m, msg)

    @case("message_over_64MiB_65")
    def _():
        m = S.servers["good"].mark()
        big = SIMPLE + (b"z" * 900 + b"\r\n") * (64 * 1024 * 1024 // 902 + 10)
        r = S.cli(["--from", FROM], stdin=big, timeout=60)
        S.expect_rc(r, 65)
        S.expect_nothing("good", m, NO_CONNECTION)

    for label, bad in (("space", "bad address@example.org"), ("angle", "a<b@example.org"),
                       ("control", "a\x01b@example.org")):
        @case("invalid_recipient_%s_65" % label)
        def _(bad=bad):
            m = S.servers["good"].mark()
            r = S.cli(["--from", FROM], to=(bad,))
            S.expect_rc(r, 65)
            S.expect_nothing("good", m, NO_CONNECTION)

    @case("lf_and_crlf_input_store_the_same")
    def _():
        lf = SIMPLE.replace(b"\r\n", b"\n")
        stored = []
        for msg in (SIMPLE, lf, SIMPLE.replace(b"\r\n", b"\r")):
            m = S.servers["good"].mark()
            r = S.cli(["--from", FROM], stdin=msg)
            S.expect_rc(r, 0)
            body, _, _ = S.expect_stored("good", m, SIMPLE)
            stored.append(body)
        check(stored[0] == stored[1] == stored[2], "stored messages differ")

    @case("dots_and_no_final_newline")
    def _():
        msg = SIMPLE + b".\r\n..two\r\n.\nlast line"
        m = S.servers["good"].mark()
        r = S.cli(["--from", FROM], stdin=msg)
        S.expect_rc(r, 0)
        S.expect_stored("good", m, msg)

    # ---- -t and Bcc
    T_MSG = (b"From: Sender <sender@example.org>\n"
             b"To: \"Doe, Jane\" <jane@example.org>, bob@example.org (Bob)\n"
             b"Cc: Carol <carol@example.org>,\n"
             b"\t\"Dave, the \\\"Boss\\\"\" <dave@example.org>\n"
             b"Subject: t test\n"
             b"bcc: hidden1@example.org,\n"
             b"  Hidden Two <hidden2@example.org>\n"
             b"X-After: kept\n"
             b"\n"
             b"Body. To: notarecipient@example.org\n")
    T_SENT = (b"From: Sender <sender@example.org>\n"
              b"To: \"Doe, Jane\" <jane@example.org>, bob@example.org (Bob)\n"
              b"Cc: Carol <carol@example.org>,\n"
              b"\t\"Dave, the \\\"Boss\\\"\" <dave@example.org>\n"
              b"Subject: t test\n"
              b"X-After: kept\n"
              b"\n"
              b"Body. To: notarecipient@example.org\n")

    @case("t_recipients_from_headers_bcc_removed")
    def _():
        m = S.servers["good"].mark()
        r = S.cli(["-t"], stdin=T_MSG, to=("extra@example.org", "BOB@example.org"))
        S.expect_rc(r, 0)
        body, meta, _ = S.expect_stored(
            "good", m, T_SENT, frm="sender@example.org",
            to=("jane@example.org", "bob@example.org", "carol@example.org", "dave@example.org",
                "hidden1@example.org", "hidden2@example.org", "extra@example.org"))
        check(b"hidden" not in body.lower() and b"bcc" not in body.lower(), "Bcc leaked: %r" % body)

    @case("t_crlf_input")
    def _():
        m = S.servers["good"].mark()
        r = S.cli(["-t"], stdin=T_MSG.replace(b"\n", b"\r\n"), to=())
        S.expect_rc(r, 0)
        S.expect_stored("good", m, T_SENT, frm="sender@example.org",
                        to=("jane@example.org", "bob@example.org", "carol@example.org",
                            "dave@example.org", "hidden1@example.org", "hidden2@example.org"))

    @case("t_group_and_bcc_only")
    def _():
        msg = (b"From: sender@example.org\r\nTo: undisclosed-recipients:;\r\n"
               b"Bcc: a@example.org, b@example.org\r\nSubject: g\r\n\r\nbody\r\n")
        m = S.servers["good"].mark()
        r = S.cli(["-t"], stdin=msg, to=())
        S.expect_rc(r, 0)
        body, _, _ = S.expect_stored("good", m, msg.replace(b"Bcc: a@example.org, b@example.org\r\n", b""),
                                     to=("a@example.org", "b@example.org"))

    @case("t_no_recipients_64")
    def _():
        r = S.cli(["-t"], stdin=b"From: sender@example.org\r\nSubject: x\r\n\r\nbody\r\n", to=())
        S.expect_rc(r, 64)

    @case("bcc_removed_without_t")
    def _():
        msg = b"From: sender@example.org\r\nBcc: secret@example.org\r\nSubject: x\r\n\r\nbody\r\n"
        m = S.servers["good"].mark()
        r = S.cli([], stdin=msg)
        S.expect_rc(r, 0)
        S.expect_stored("good", m, msg.replace(b"Bcc: secret@example.org\r\n", b""))

    # ---- --subject (tlsmail_compose)
    SUBJ = "Grüße aus Köln — Prüfbericht ✓ with a long enough subject to need folding 😀"
    BODY = "Hallo Welt,\nüberall Umlaute: äöü ß, and = signs, trailing space \nLetzte Zeile ✓\n"
    for ending in ("lf", "crlf"):
        @case("subject_compose_non_ascii_%s" % ending)
        def _(ending=ending):
            body = BODY if ending == "lf" else BODY.replace("\n", "\r\n")
            m = S.servers["good"].mark()
            r = S.cli(["--from", "Jörg Sender <sender@example.org>", "--subject", SUBJ],
                      stdin=body.encode(), to=("Rcpt Ünïcode <rcpt@example.org>", "second@example.org"))
            S.expect_rc(r, 0)
            raw, _, _ = S.expect_stored("good", m, None, to=("rcpt@example.org", "second@example.org"))
            for line in raw.split(b"\r\n"):
                check(len(line) <= 78, "a line of %d octets: %r" % (len(line), line))
            check(all(b < 128 for b in raw), "8-bit octets in a composed message")
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            check(msg["subject"] == SUBJ, "subject %r" % msg["subject"])
            check(msg["from"].addresses[0].display_name == "Jörg Sender", "from %r" % msg["from"])
            check(msg["from"].addresses[0].addr_spec == "sender@example.org", "from %r" % msg["from"])
            tos = [(a.display_name, a.addr_spec) for a in msg["to"].addresses]
            check(tos == [("Rcpt Ünïcode", "rcpt@example.org"), ("", "second@example.org")],
                  "to %r" % tos)
            check(msg.get_content_type() == "text/plain", "type %s" % msg.get_content_type())
            check(msg.get_content_charset() == "utf-8", "charset %s" % msg.get_content_charset())
            check(msg["content-transfer-encoding"] == "quoted-printable", "cte")
            check(msg.get_content().replace("\r\n", "\n") == BODY,
                  "body %r != %r" % (msg.get_content(), BODY))
            check(re.match(r"<[0-9a-f]{32}@example\.org>$", msg["message-id"]),
                  "message-id %r" % msg["message-id"])
            check(msg["date"].datetime is not None and
                  abs(msg["date"].datetime.timestamp() - time.time()) < 300, "date %r" % msg["date"])

    @case("subject_ascii_7bit")
    def _():
        m = S.servers["good"].mark()
        r = S.cli(["--from", FROM, "--subject", "plain report"], stdin=b"all good\n")
        S.expect_rc(r, 0)
        raw, _, _ = S.expect_stored("good", m, None)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        check(msg["subject"] == "plain report", "subject")
        check(msg["content-transfer-encoding"] == "7bit", "cte %r" % msg["content-transfer-encoding"])
        check(msg.get_content().replace("\r\n", "\n") == "all good\n", "body %r" % msg.get_content())

    @case("subject_long_line_body_quoted_printable")
    def _():
        body = "x" * 3000 + "\nshort\n"
        m = S.servers["good"].mark()
        r = S.cli(["--from", FROM, "--subject", "long"], stdin=body.encode())
        S.expect_rc(r, 0)
        raw, _, _ = S.expect_stored("good", m, None)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        check(msg.get_content().replace("\r\n", "\n") == body, "body differs")

    @case("subject_header_injection_65")
    def _():
        m = S.servers["good"].mark()
        r = S.cli(["--from", FROM, "--subject", "hi\r\nBcc: evil@example.net"], stdin=b"x\n")
        S.expect_rc(r, 65)
        S.expect_nothing("good", m, NO_CONNECTION)

    @case("subject_not_utf8_body_65")
    def _():
        m = S.servers["good"].mark()
        r = S.cli(["--from", FROM, "--subject", "latin1"], stdin=b"caf\xe9\n")
        S.expect_rc(r, 65)
        S.expect_nothing("good", m, NO_CONNECTION)

    # ---- -v
    for mech in ("plain", "login", "auto"):
        @case("verbose_masks_auth_%s" % mech)
        def _(mech=mech):
            r = S.cli(["--from", FROM, "-v", "--auth", mech])
            S.expect_rc(r, 0)
            for word in ("EHLO", "AUTH", "MAIL FROM", "RCPT TO", "DATA", "250", "235"):
                check(word in r.stderr, "-v output lacks %s: %s" % (word, r))
            secrets = [PASS, base64.b64encode(PASS.encode()).decode(),
                       base64.b64encode(b"\0" + USER.encode() + b"\0" + PASS.encode()).decode(),
                       base64.b64encode(USER.encode() + b"\0" + PASS.encode()).decode()[:-4]]
            for s in secrets:
                check(s not in r.stderr, "a secret (%s) is on stderr" % s[:6])
            check("Hello," not in r.stderr, "the message body is traced")

    # ---- STARTTLS
    @case("starttls_send")
    def _():
        m = S.servers["starttls"].mark()
        r = S.cli(["--from", FROM, "--starttls", "-v"], server="starttls",
                  binary="tlsmail-send-starttls")
        S.expect_rc(r, 0)
        check("STARTTLS" in r.stderr, "no STARTTLS in the dialogue")
        S.expect_stored("starttls", m, SIMPLE)

    @case("implicit_tls_to_starttls_port_69")
    def _():
        m = S.servers["starttls"].mark()
        r = S.cli(["--from", FROM], server="starttls", binary="tlsmail-send-starttls")
        S.expect_rc(r, 69)
        check("--starttls" in r.stderr, "no hint: %s" % r)
        S.expect_nothing("starttls", m, ("AUTH", "MAIL"))

    @case("starttls_to_implicit_port_fails")
    def _():
        r = S.cli(["--from", FROM, "--starttls", "--timeout", "2"], server="good",
                  binary="tlsmail-send-starttls")
        check(r.rc in (69, 75, 76), "exit status %s: %s" % (r.rc, r))

    # ---- examples
    @case("example_custom_io")
    def _():
        m = S.servers["good"].mark()
        r = S.run([S.bins["custom_io"], S.addr("good"), S.p("ca.crt"), FROM, TO], stdin=SIMPLE,
                  env=S.env(SMTP_USER=USER, SMTP_PASSWORD=PASS))
        S.expect_rc(r, 0)
        S.expect_stored("good", m, SIMPLE)

    @case("example_custom_io_untrusted")
    def _():
        m = S.servers["untrusted"].mark()
        r = S.run([S.bins["custom_io"], S.addr("untrusted"), S.p("ca.crt"), FROM, TO], stdin=SIMPLE,
                  env=S.env(SMTP_USER=USER, SMTP_PASSWORD=PASS))
        S.expect_rc(r, 1)
        check("certificate" in r.stderr, "no certificate error: %s" % r)
        S.expect_nothing("untrusted", m, ("EHLO", "MAIL"))

    @case("example_pinned")
    def _():
        m = S.servers["selfsigned"].mark()
        pin = open(S.p("selfsigned.pin")).read().strip()
        r = S.run([S.bins["pinned"], S.addr("selfsigned"), pin, FROM, TO], stdin=SIMPLE,
                  env=S.env(SMTP_USER=USER, SMTP_PASSWORD=PASS))
        S.expect_rc(r, 0)
        S.expect_stored("selfsigned", m, SIMPLE)

    @case("example_pinned_wrong_key")
    def _():
        m = S.servers["good"].mark()
        pin = open(S.p("selfsigned.pin")).read().strip()
        r = S.run([S.bins["pinned"], S.addr("good"), pin, FROM, TO], stdin=SIMPLE,
                  env=S.env(SMTP_USER=USER, SMTP_PASSWORD=PASS))
        S.expect_rc(r, 1)
        check("pinned" in r.stderr, "no pin error: %s" % r)
        S.expect_nothing("good", m, ("EHLO", "MAIL"))

    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=None)
    ap.add_argument("-k", action="append", default=[])
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    warnings.simplefilter("ignore")               # aiosmtpd's auth_require_tls notes
    logging.basicConfig(level=logging.CRITICAL)   # and its chatter
    work = tempfile.mkdtemp(prefix="tlsmail-cli-")
    S = Suite(a.build, work, a.v)
    passed = failed = 0
    try:
        S.setup()
        for name, fn in build_cases(S):
            if a.k and not any(k in name for k in a.k):
                continue
            try:
                fn()
                print("PASS %s" % name)
                passed += 1
            except CaseFailure as e:
                print("FAIL %s: %s" % (name, e))
                failed += 1
            except Exception:
                print("FAIL %s: %s" % (name, traceback.format_exc().strip().replace("\n", " | ")))
                failed += 1
            sys.stdout.flush()
    except Exception:
        print("FAIL setup: %s" % traceback.format_exc().strip().replace("\n", " | "))
        failed += 1
    finally:
        S.teardown()
        if a.keep:
            print("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
