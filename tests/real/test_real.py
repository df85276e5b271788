#!/usr/bin/python3
"""tests/real/test_real.py - tlsmail.h against servers people send through:
Postfix with Dovecot SASL, and nodemailer's smtp-server.

    /usr/bin/python3 tests/real/test_real.py --build DIR [-k SUBSTR]... [--keep] [-v]

DIR holds the built itest and tlsmail-send. The suite makes a throw-away
PKI (tests/lib/pki.sh), starts a private Postfix (postfix -c DIR: its own
queue, maillog and five smtpd listeners, tests/real/servers.py), Dovecot
as its SASL server (dovecot -c FILE, passwd-file users) and
tests/real/nodemailer.js (four listeners), all on 127.0.0.1, and stops
them by pid at the end, after a failure and on Ctrl-C or SIGTERM too. The
host's Postfix and Dovecot configuration is never read or touched.

Every case checks what the server really saw: the bytes it delivered
(Postfix: through pipe(8) to tests/real/capture.py, less its own Received:
header; smtp-server: the DATA stream), the envelope and SASL user it
recorded, and its log of the dialogue (Postfix: debug_peer_list; smtp-server:
its command log).

Prints "PASS name" or "FAIL name: reason" per case and, last, "N passed,
N failed"; exits 1 if any case failed.
"""
import base64
import json
import os
import random
import re
import signal
import smtplib
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
sys.path.insert(0, HERE)
from testlib import (CaseFailure, check, normalise, registry, Result,  # noqa: E402
                     suite_main, PKI_SH, RUN_TIMEOUT, SETTLE)
import servers  # noqa: E402
from servers import (Postfix, Nodemailer, PostfixCapture, NodeCapture,  # noqa: E402
                     REJECTED, LIMIT_SIZE, POSTFIX_LISTENERS, NODE_LISTENERS)

USER, PASS = "alice@example.org", "s3cret-Pw"
USER2, PASS2 = "bob", "hunter2 with spaces"
USERS = [(USER, PASS), (USER2, PASS2)]
# XOAUTH2 (nodemailer): the token onAuth accepts for each user; USER2's is
# the size of Microsoft's (several KB), so its response must go after the 334.
LONG_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + "".join(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"[(i * 11 + 5) % 64]
    for i in range(5000)) + ".sig"
TOKENS = [(USER, "ya29.tlsmail-real-token"), (USER2, LONG_TOKEN)]
# XOAUTH2 and OAUTHBEARER (Postfix through Dovecot): JWTs signed with this key.
OAUTH_KEY = b"tlsmail real-server suite HS256 key"
FROM, TO = "sender@example.org", "rcpt@example.org"
# A complete header (From, Date, Message-ID), so tlsmail-send adds nothing
# and the stored bytes are the sent ones.
HDR = (b"From: sender@example.org\r\nTo: rcpt@example.org\r\n"
       b"Date: Tue, 01 Dec 2026 09:00:00 +0000\r\n"
       b"Message-ID: <real-server-test@example.org>\r\n"
       b"Subject: real-server test\r\n\r\n")
SIMPLE = HDR + b"Hello,\r\nthis is a test.\r\n.a line starting with a dot\r\n"


def big_message(size=5 * 1024 * 1024, seed=465):
    """About size octets: lines of every length up to the 998 limit (many
    at 997 and 998), lines that are a lone dot or start with dots, blank
    lines, bare LF and CR line ends. Seeded: the same bytes every run."""
    rnd = random.Random(seed)
    out = [HDR]
    n = len(HDR)
    alphabet = b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789-.,;:"
    while n < size:
        k = rnd.choice((0, 1, 2, 76, 78, 200, 997, 998, 998, rnd.randrange(999)))
        line = bytes(rnd.choice(alphabet) for _ in range(k))
        r = rnd.random()
        if r < 0.05:
            line = b"."
        elif r < 0.15:
            line = (b"." * rnd.randrange(1, 4) + line)[:998]
        end = b"\r\n" if rnd.random() < 0.9 else rnd.choice((b"\n", b"\r"))
        out.append(line + end)
        n += len(line) + len(end)
    return b"".join(out)


class Target:
    """One listener of one server: where to dial and how to read what the
    server saw."""

    def __init__(self, server, listener, port, capture, security="tls"):
        self.server, self.listener, self.port = server, listener, port
        self.capture, self.security = capture, security
        self.name = "%s/%s" % (server, listener)

    def addr(self):
        return "localhost:%d" % self.port


class Suite:
    def __init__(self, build, work, verbose):
        self.build = build
        self.itest_bin = os.path.join(build, "itest")
        self.send_bin = os.path.join(build, "tlsmail-send")
        self.work = work
        self.pki = os.path.join(work, "pki")
        self.verbose = verbose
        self.servers = {}       # testlib.run_cases checks each is alive after every case
        self.postfix = self.node = self.reaper = None
        self.nmsg = 0
        self.timings = {}

    # -- setup / teardown
    def setup(self):
        for exe in (self.itest_bin, self.send_bin):
            if not os.access(exe, os.X_OK):
                raise RuntimeError("%s is not built" % exe)
        t0 = time.monotonic()
        subprocess.run(["bash", PKI_SH, self.pki], check=True, timeout=60)
        self.timings["pki"] = time.monotonic() - t0
        self.reaper = servers.Reaper()
        t0 = time.monotonic()
        self.postfix = Postfix(self.work, self.pki, USERS, OAUTH_KEY)
        self.servers["postfix"] = self.postfix
        self.postfix.start(self.reaper)
        self.timings["postfix+dovecot start"] = time.monotonic() - t0
        t0 = time.monotonic()
        self.node = Nodemailer(self.work, self.build, self.pki, USERS, TOKENS)
        self.servers["nodemailer"] = self.node
        self.node.start(self.reaper)
        self.timings["nodemailer start"] = time.monotonic() - t0
        pc, nc = PostfixCapture(self.postfix), NodeCapture(self.node)
        self.targets = {}
        for name in POSTFIX_LISTENERS:
            t = Target("postfix", name, self.postfix.ports[name], pc,
                       "starttls" if name == "submission" else "tls")
            self.targets[t.name] = t
        for name in NODE_LISTENERS:
            t = Target("nodemailer", name, self.node.ports[name], nc,
                       "starttls" if name == "starttls" else "tls")
            self.targets[t.name] = t
        if self.verbose:
            print("    postfix %s, %s, %s" % (self.postfix.version(),
                                             self.postfix.dovecot.version(), self.node.version()))
            for t in self.targets.values():
                print("    %-22s %s" % (t.name, t.addr()))

    def teardown(self):
        errors = []
        t0 = time.monotonic()
        for srv in (self.node, self.postfix):
            if srv is None:
                continue
            try:
                srv.stop(errors)
            except Exception as e:      # the next server must still be stopped
                errors.append("%s: %s" % (type(srv).__name__, e))
        if self.reaper is not None:
            self.reaper.clear()
        self.timings["teardown"] = time.monotonic() - t0
        if self.verbose:
            print("    timings: " + ", ".join("%s %.2f s" % kv for kv in self.timings.items()))
        for e in errors:
            print("teardown: %s" % e, file=sys.stderr)

    # -- clients
    def p(self, name):
        return os.path.join(self.pki, name)

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
        r = Result(proc, (time.monotonic() - t0) * 1000)
        if self.verbose:
            print("    $ %s\n    %s" % (" ".join(cmd), r))
        return r

    def itest(self, target, msg=SIMPLE, api="client", auth="plain", user=USER, pw=PASS,
              frm=FROM, to=(TO,), chunk=None, security=None, extra=()):
        cmd = [self.itest_bin, "--addr", target.addr(), "--api", api, "--from", frm,
               "--msg", self.msgfile(msg)]
        for t in to:
            cmd += ["--to", t]
        if auth:
            cmd += ["--auth", auth, "--user", user, "--pass", pw]
        if api != "send":
            cmd += ["--cafile", self.p("ca.crt"), "--timeout-ms", "10000",
                    "--security", security or target.security]
            if chunk is not None:
                cmd += ["--chunk", str(chunk)]
        cmd += list(extra)
        r = self.run(cmd)
        check(r.name is not None, "itest printed no result line: %s" % r)
        check((r.rc == 0) == (r.name == "OK"), "exit status %s with result %s" % (r.rc, r.name))
        return r

    def token_file(self, token):
        """A file holding token: multi-KB tokens stay off the command line."""
        self.nmsg += 1
        path = os.path.join(self.work, "token-%04d" % self.nmsg)
        with open(path, "w") as f:
            f.write(token)
        return path

    def results(self, r):
        """The "rcpt I CODE ENHANCED TEXT" lines of itest --api sendex."""
        out = []
        for l in r.stdout.splitlines():
            f = l.split(" ", 4)
            if f[0] == "rcpt":
                out.append((int(f[2]), f[3], f[4] if len(f) > 4 else ""))
        return out

    def queue(self, r):
        return next((l.split(" ", 1)[1] for l in r.stdout.splitlines() if l.startswith("queue ")), None)

    def klass(self, r):
        return next((l.split(" ", 1)[1] for l in r.stdout.splitlines() if l.startswith("class ")), None)

    def tlsmail_send(self, target, msg, rcpts, user=USER, pw=PASS, extra=()):
        cmd = [self.send_bin, "--server", target.addr(), "--cafile", self.p("ca.crt"),
               "--timeout", "10", "--from", FROM, "--user", user] + list(extra)
        if target.security == "starttls":
            cmd.append("--starttls")
        cmd += ["--"] + list(rcpts)
        return self.run(cmd, stdin=msg, env=self.env(TLSMAIL_PASSWORD=pw))

    def tlsmail_send_env(self, target, msg, rcpts, env, user=USER, pw=PASS, extra=()):
        """tlsmail_send with more of the environment (a token, a log); no
        TLSMAIL_PASSWORD when pw is empty."""
        cmd = [self.send_bin, "--server", target.addr(), "--cafile", self.p("ca.crt"),
               "--timeout", "10", "--from", FROM, "--user", user] + list(extra)
        if target.security == "starttls":
            cmd.append("--starttls")
        cmd += ["--"] + list(rcpts)
        e = self.env(**env)
        if pw:
            e["TLSMAIL_PASSWORD"] = pw
        return self.run(cmd, stdin=msg, env=e)

    # -- what the servers saw
    def one_session(self, target, mark, count=1):
        ss = target.capture.wait_sessions(mark, count)
        mine = [s for s in ss if s.listener == target.listener]
        check(len(mine) == count, "%s: expected %d finished session(s), the server logged %d: %r"
              % (target.name, count, len(mine), ss))
        return mine[0] if count == 1 else mine

    def expect_delivered(self, target, mark, msg, frm=FROM, to=(TO,), user=USER, mech="PLAIN",
                         sessions=1):
        """Exactly one new message on target's server, byte for byte
        normalise(msg), from frm to every address of to, sent by user
        authenticated with mech, over TLS; returns (delivery, session)."""
        session = self.one_session(target, mark, sessions)
        if sessions > 1:
            session = session[-1]
        qids = target.capture.queue_ids(session)
        check(len(qids) == 1, "%s: expected one accepted message in the dialogue, got %r; "
              "replies %r" % (target.name, qids, session.replies()[-6:]))
        d = target.capture.wait_delivery(mark, qids[0], len(to))
        check(d is not None, "%s: message %s accepted but never delivered (%s)"
              % (target.name, qids[0], target.capture.new_deliveries(mark)))
        # Postfix's own delivery status notifications (null sender, RFC 3464
        # multipart/report: a NOTIFY=SUCCESS for this very message may land
        # before this check) are the server's reports, not messages sent
        others = [x for x in target.capture.new_deliveries(mark) if x.queue_id != d.queue_id
                  and not target.capture.accepted_before(mark, x.queue_id)
                  and not (x.sender == "" and b"multipart/report" in x.body)]
        check(not others, "%s: more messages than the one sent: %r" % (target.name, others))
        want = normalise(msg)
        if d.body != want:
            i = next((k for k in range(min(len(d.body), len(want))) if d.body[k] != want[k]),
                     min(len(d.body), len(want)))
            raise CaseFailure("%s: stored %d octets differ from the %d expected at offset %d: "
                              "got %r want %r" % (target.name, len(d.body), len(want), i,
                                                  d.body[max(0, i - 20):i + 40],
                                                  want[max(0, i - 20):i + 40]))
        check(d.sender == frm, "sender %r, want %r" % (d.sender, frm))
        check(sorted(d.rcpts) == sorted(to), "recipients %r, want %r" % (d.rcpts, list(to)))
        check(d.user == user, "SASL user %r, want %r" % (d.user, user))
        check((d.mech or "").upper() == mech, "SASL mechanism %r, want %r" % (d.mech, mech))
        self.expect_tls(target, session, d)
        return d, session

    def expect_tls(self, target, session, d):
        """The server's own word that the message came over TLS 1.2 from an
        authenticated client, and before TLS nothing but EHLO and STARTTLS."""
        check(session.tls(), "%s: no TLS in the server's log of the session" % target.name)
        clear = [c.split(" ")[0].upper() for c in session.clear_commands()]
        if target.security == "starttls":
            check(clear == ["EHLO", "STARTTLS"], "commands in clear: %r" % clear)
        else:
            check(clear == [], "commands in clear on an implicit-TLS port: %r" % clear)
        if d is None:
            return
        if d.server == "postfix":
            rec = (d.meta["received"] or b"").decode("utf-8", "replace")
            # ESMTPSA, or UTF8SMTPSA after MAIL ... SMTPUTF8: ESMTP, TLS, AUTH
            check("using TLSv1.2 with cipher " in rec and
                  re.search(r"with (?:UTF8SMTP|ESMTP)SA id %s\b" % d.queue_id, rec),
                  "Postfix's Received: header shows no TLS 1.2 + AUTH: %r" % rec)
            check(d.meta["bodies_equal"], "the deliveries of %s differ" % d.queue_id)
        else:
            check(d.meta["secure"] and d.meta["tls"]["version"] == "TLSv1.2",
                  "smtp-server saw no TLS 1.2: %r" % d.meta["tls"])
            check(d.meta["transmissionType"] == "ESMTPSA",
                  "transmission type %r, want ESMTPSA" % d.meta["transmissionType"])
            check(d.meta["servername"] == "localhost", "SNI %r" % d.meta["servername"])

    def expect_nothing_delivered(self, target, mark):
        time.sleep(SETTLE)
        for s in target.capture.sessions(mark):
            check(not target.capture.queue_ids(s), "%s: the server accepted a message: %r"
                  % (target.name, s.replies()[-4:]))
        new = [x for x in target.capture.new_deliveries(mark)
               if not target.capture.accepted_before(mark, x.queue_id)]
        check(not new, "%s: a message was delivered: %r" % (target.name, new))


# -------------------------------------------------------------------- cases --

IMPLICIT = ("postfix/smtps", "nodemailer/implicit")
STARTTLS = ("postfix/submission", "nodemailer/starttls")
BARE = ("postfix/bare", "nodemailer/bare")
LIMITS = ("postfix/limits", "nodemailer/limits")


def build_cases(S):
    cases, case = registry()

    def send_ok(tname, msg=SIMPLE, mech="PLAIN", user=USER, pw=PASS, to=(TO,), frm=FROM, **kw):
        t = S.targets[tname]
        m = t.capture.mark()
        r = S.itest(t, msg=msg, auth=mech.lower(), user=user, pw=pw, to=to, frm=frm, **kw)
        check(r.name == "OK", "%s: expected OK, got %s" % (tname, r))
        return S.expect_delivered(t, m, msg, frm=frm, to=to, user=user, mech=mech) + (r,)

    # -- AUTH through both servers, implicit TLS and STARTTLS
    for tname in IMPLICIT + STARTTLS:
        for mech in ("PLAIN", "LOGIN"):
            @case("auth_%s[%s]" % (mech.lower(), tname))
            def _(tname=tname, mech=mech):
                d, s, r = send_ok(tname, mech=mech)
                auths = [c for c in s.commands() if c.upper().startswith("AUTH")]
                check(len(auths) == 1 and auths[0].upper().startswith("AUTH " + mech),
                      "AUTH commands the server read: %r" % auths)
                check(s.replies()[-1].startswith("221"), "no QUIT/221 at the end: %r"
                      % s.replies()[-3:])

            @case("auth_%s_user2[%s]" % (mech.lower(), tname))
            def _(tname=tname, mech=mech):   # a user name without a domain, a password with spaces
                send_ok(tname, mech=mech, user=USER2, pw=PASS2)

            @case("auth_%s_wrong_password[%s]" % (mech.lower(), tname))
            def _(tname=tname, mech=mech):
                t = S.targets[tname]
                m = t.capture.mark()
                r = S.itest(t, auth=mech.lower(), pw=PASS + "x")
                check(r.name == "EAUTH", "expected EAUTH, got %s" % r)
                check(r.stage == "AUTH", "stage %r, want AUTH" % r.stage)
                # RFC 3463 X.7.8, as both servers answer, explained
                check("(5.7.8: authentication credentials invalid)" in r.stderr,
                      "describe %r" % r.stderr[-300:])
                s = S.one_session(t, m)
                check(any(x.startswith("535") for x in s.replies()),
                      "the server sent no 535: %r" % s.replies())
                verbs = [c.split(" ")[0].split(":")[0].upper() for c in s.commands()]
                check(not {"MAIL", "RCPT", "DATA"} & set(verbs),
                      "after a failed AUTH the client sent %r" % verbs)
                S.expect_nothing_delivered(t, m)

    # -- the one call, tlsmail_send(), and the step-by-step client
    for tname in IMPLICIT:
        @case("api_send[%s]" % tname)
        def _(tname=tname):   # trust through SSL_CERT_FILE, the one call of net/smtp shape
            send_ok(tname, api="send")

        @case("api_stream_chunk_7[%s]" % tname)
        def _(tname=tname):
            send_ok(tname, api="stream", chunk=7, mech="LOGIN")

        @case("api_stream2_two_messages_one_session[%s]" % tname)
        def _(tname=tname):   # MAIL..DATA, RSET, MAIL..DATA on one connection
            t = S.targets[tname]
            m = t.capture.mark()
            r = S.itest(t, api="stream2", chunk=4096)
            check(r.name == "OK", "expected OK, got %s" % r)
            s = S.one_session(t, m)
            qids = t.capture.queue_ids(s)
            check(len(qids) == 2 and qids[0] != qids[1], "accepted messages %r" % qids)
            check([c.upper() for c in s.commands()].count("RSET") == 1, "commands %r" % s.commands())
            for q in qids:
                d = t.capture.wait_delivery(m, q, 1)
                check(d is not None and d.body == normalise(SIMPLE), "message %s: %r" % (q, d))

    # -- recipients
    three = ("one@example.org", "two@example.net", "Three.Person+tag@example.com")
    for tname in IMPLICIT + STARTTLS:
        @case("three_recipients[%s]" % tname)
        def _(tname=tname):
            d, s, r = send_ok(tname, to=three)
            got = [a for a, _ in s.rcpt_params()]
            check(got == list(three), "RCPT commands in order %r, want %r" % (got, list(three)))

    for tname in IMPLICIT:
        @case("transact_begin_three_recipients_then_data[%s]" % tname)
        def _(tname=tname):   # tlsmail_transact_begin: the envelope, DATA, the message streamed
            d, s, r = send_ok(tname, to=three, api="begin", chunk=4096)
            verbs = [c.split(" ")[0].split(":")[0].upper() for c in s.commands()
                     if not c.startswith("<")]   # nodemailer logs "<N bytes of DATA>" too
            check(verbs[-6:] == ["MAIL", "RCPT", "RCPT", "RCPT", "DATA", "QUIT"],
                  "commands the server read: %r" % s.commands())
            check([a for a, _ in s.rcpt_params()] == list(three), "RCPT %r" % s.rcpt_params())

        @case("recipient_rejected_5xx[%s]" % tname)
        def _(tname=tname):
            t = S.targets[tname]
            m = t.capture.mark()
            r = S.itest(t, to=(REJECTED,))
            check(r.name == "EPERMANENT", "expected EPERMANENT, got %s" % r)
            check(r.stage == "RCPT TO", "stage %r, want RCPT TO" % r.stage)
            check("550 5.1.1" in r.stderr, "the 550 5.1.1 reply is not in the description: %r"
                  % r.stderr[-300:])
            s = S.one_session(t, m)
            check(any(x.startswith("550 5.1.1") for x in s.replies()),
                  "the server's log has no 550 5.1.1: %r" % s.replies())
            check(not t.capture.queue_ids(s), "the server accepted a message: %r" % s.replies())
            S.expect_nothing_delivered(t, m)

        @case("null_reverse_path[%s]" % tname)
        def _(tname=tname):   # MAIL FROM:<>, as a bounce or an auto-reply is sent
            send_ok(tname, frm="")

    # -- a large message, byte for byte
    big = []        # made on first use (2 s of Python): not at all under -k without it
    for tname in IMPLICIT + STARTTLS:
        for api, chunk in (("client", None), ("stream", 65536), ("begin", 65536)):
            @case("large_5mb_long_and_dot_lines[%s,%s]" % (tname, api))
            def _(tname=tname, api=api, chunk=chunk):
                big[:] = big or [big_message()]
                d, s, r = send_ok(tname, msg=big[0], api=api, chunk=chunk)
                check(len(d.body) > 5 * 1024 * 1024, "stored only %d octets" % len(d.body))

    # -- a listener without PIPELINING, 8BITMIME, SMTPUTF8 (and CHUNKING)
    for tname in BARE:
        @case("unpipelined_no_8bitmime[%s]" % tname)
        def _(tname=tname):
            d, s, r = send_ok(tname, to=("one@example.org", "two@example.org"))
            kw = s.ehlo_keywords()
            for k in ("PIPELINING", "8BITMIME", "SMTPUTF8", "CHUNKING"):
                check(k not in kw, "the server announced %s: %r" % (k, kw))
            check("AUTH" in kw, "no AUTH announced: %r" % kw)
            # the client waited for each reply: in its trace every command
            # after EHLO is followed by the server's answer before the next one
            trace = [l for l in r.stderr.splitlines() if l[:2] in ("> ", "< ")]
            i = next(k for k, l in enumerate(trace) if l.startswith("> MAIL FROM:"))
            for a, b in zip(trace[i:], trace[i + 1:]):
                check(not (a.startswith("> ") and b.startswith("> ")),
                      "commands sent back to back without PIPELINING: %r, %r" % (a, b))
            check(not any("improper command pipelining" in l for l in s.log()),
                  "the server saw pipelining: %r" % s.log())
            for p in s.mail_params():
                check("BODY" not in p and "SMTPUTF8" not in p,
                      "MAIL parameters %r to a server without 8BITMIME/SMTPUTF8" % p)

    @case("broken_sasl_auth_clients_both_forms[postfix/bare]")
    def _():   # Postfix can only add AUTH= beside AUTH, never announce it alone
        t = S.targets["postfix/bare"]
        m = t.capture.mark()
        r = S.itest(t, auth="login")
        check(r.name == "OK", "expected OK, got %s" % r)
        d, s = S.expect_delivered(t, m, SIMPLE, mech="LOGIN")
        lines = [l[4:] for l in s.ehlo_lines()]
        for form in ("AUTH ", "AUTH="):
            got = [l for l in lines if l.upper().startswith(form)]
            check(len(got) == 1 and {"PLAIN", "LOGIN"} <= set(got[0][5:].upper().split()),
                  "no '%sPLAIN LOGIN ...' line in the EHLO reply %r" % (form, lines))

    # -- the pipelined path, seen from the client's trace, for contrast: with
    #    CHUNKING (Postfix) the message waits for the replies of the two
    #    recipients, then goes as one BDAT; without it, DATA rides along
    for tname in IMPLICIT:
        @case("pipelined_envelope[%s]" % tname)
        def _(tname=tname):
            d, s, r = send_ok(tname, to=("one@example.org", "two@example.org"))
            kw = s.ehlo_keywords()
            check("PIPELINING" in kw, "no PIPELINING: %r" % kw)
            trace = [l for l in r.stderr.splitlines() if l[:2] in ("> ", "< ")]
            i = next(k for k, l in enumerate(trace) if l.startswith("> MAIL FROM:"))
            verbs = [l[2:].split(":")[0].split(" ")[0] for l in trace[i:i + 7]]
            want = (["MAIL", "RCPT", "RCPT", "250", "250", "250", "BDAT"] if "CHUNKING" in kw else
                    ["MAIL", "RCPT", "RCPT", "DATA", "250", "250", "250"])
            check(verbs == want, "the client's groups %r, want %r" % (trace[i:i + 7], want))

    # -- the size limit (RFC 1870): refused here, before MAIL, nothing uploaded
    for tname in LIMITS:
        @case("over_size_limit_refused_before_mail[%s]" % tname)
        def _(tname=tname):
            t = S.targets[tname]
            m = t.capture.mark()
            msg = big_message(LIMIT_SIZE + 65536, seed=1870)
            r = S.itest(t, msg=msg)
            check(r.name == "ETOOBIG" and r.stage == "MAIL FROM", "expected ETOOBIG at MAIL, got %s" % r)
            check("(%d octets; the server's SIZE limit is %d)" % (len(normalise(msg)), LIMIT_SIZE)
                  in r.stderr, "describe: %r" % r.stderr[-300:])
            s = S.one_session(t, m)
            check("SIZE" in s.ehlo_keywords(), "no SIZE announced: %r" % s.ehlo_keywords())
            verbs = [c.split(" ")[0].split(":")[0].upper() for c in s.commands()]
            check(not {"MAIL", "RCPT", "DATA", "BDAT"} & set(verbs), "the server read %r" % verbs)
            S.expect_nothing_delivered(t, m)

        @case("under_size_limit[%s]" % tname)
        def _(tname=tname):
            msg = big_message(LIMIT_SIZE - 65536, seed=1871)
            d, s, r = send_ok(tname, msg=msg)
            check(s.mail_params()[0].get("SIZE") == str(len(normalise(msg))),
                  "SIZE= %r, the message is %d octets" % (s.mail_params(), len(normalise(msg))))

    build_proto_cases(S, case, send_ok)

    # -- a client certificate required (Postfix): none given, none delivered
    @case("client_certificate_required_none_given[postfix/ccert]")
    def _():
        t = S.targets["postfix/ccert"]
        m = t.capture.mark()
        r = S.itest(t)
        check(r.name == "ETRANSIENT", "expected ETRANSIENT (421), got %s" % r)
        check("421 4.7.1" in r.stderr, "no 421 4.7.1 in the description: %r" % r.stderr[-300:])
        s = S.one_session(t, m)
        check(s.tls(), "the server logged no TLS handshake")
        check(not s.commands(), "the server read commands: %r" % s.commands())
        S.expect_nothing_delivered(t, m)

    # -- tlsmail-send, the command-line client
    for tname in IMPLICIT + STARTTLS:
        @case("tlsmail_send[%s]" % tname)
        def _(tname=tname):
            t = S.targets[tname]
            m = t.capture.mark()
            r = S.tlsmail_send(t, SIMPLE, three)
            check(r.rc == 0, "tlsmail-send exit %s: %s" % (r.rc, r.stderr[-300:]))
            S.expect_delivered(t, m, SIMPLE, to=three)

    for tname in IMPLICIT:
        @case("tlsmail_send_recipient_rejected_exit_69[%s]" % tname)
        def _(tname=tname):
            t = S.targets[tname]
            m = t.capture.mark()
            r = S.tlsmail_send(t, SIMPLE, (REJECTED,))
            check(r.rc == 69, "tlsmail-send exit %s, want 69: %s" % (r.rc, r.stderr[-300:]))
            S.expect_nothing_delivered(t, m)

        @case("tlsmail_send_wrong_password_exit_77[%s]" % tname)
        def _(tname=tname):
            t = S.targets[tname]
            m = t.capture.mark()
            r = S.tlsmail_send(t, SIMPLE, (TO,), pw="wrong")
            check(r.rc == 77, "tlsmail-send exit %s, want 77: %s" % (r.rc, r.stderr[-300:]))
            check("wrong" not in r.stderr, "the password shows in the output")
            S.expect_nothing_delivered(t, m)

    # -- the capture itself, driven by Python's smtplib (not by tlsmail):
    #    what the cases for SIZE=, BODY=, DSN, XOAUTH2 and client
    #    certificates will read must really be there.
    for tname in IMPLICIT:
        @case("capture_selfcheck_esmtp_params[%s]" % tname)
        def _(tname=tname):
            t = S.targets[tname]
            m = t.capture.mark()
            body = HDR + "caf\u00e9\r\n".encode()
            with smtp_ssl(S, t) as c:
                c.login(USER, PASS)
                c.mail(FROM, ["SIZE=%d" % len(body), "BODY=8BITMIME", "RET=HDRS",
                              "ENVID=tlsmail-envid-1"])
                code, _ = c.rcpt("one@example.org", ["NOTIFY=SUCCESS,FAILURE",
                                                     "ORCPT=rfc822;one@example.org"])
                check(code == 250, "RCPT: %s" % code)
                code, _ = c.data(body)
                check(code == 250, "DATA: %s" % code)
            s = S.one_session(t, m)
            mp = s.mail_params()
            check(mp == [{"SIZE": str(len(body)), "BODY": "8BITMIME", "RET": "HDRS",
                          "ENVID": "tlsmail-envid-1"}], "MAIL parameters %r" % mp)
            check(s.rcpt_params() == [("one@example.org", {"NOTIFY": "SUCCESS,FAILURE",
                                                           "ORCPT": "rfc822;one@example.org"})],
                  "RCPT parameters %r" % s.rcpt_params())
            qids = t.capture.queue_ids(s)
            check(len(qids) == 1, "queue ids in the 250 reply: %r" % qids)
            d = t.capture.wait_delivery(m, qids[0], 1)
            check(d is not None and d.body == body, "delivered %r" % d)
            if d.server == "postfix":      # NOTIFY=SUCCESS: Postfix reports, in its own words
                rep = t.capture.wait_report(m, "tlsmail-envid-1")
                check(rep is not None, "no success notification from Postfix")
                text = rep.body.decode("utf-8", "replace")
                for want in ("Original-Envelope-Id: tlsmail-envid-1",
                             "Original-Recipient: rfc822;one@example.org", "Action: relayed"):
                    check(want in text, "the notification has no %r" % want)
                check(rep.rcpts == [FROM], "notification sent to %r" % rep.rcpts)
            if d.server == "nodemailer":   # smtp-server's own parse of the same parameters
                env = d.meta["envelope"]
                check(env["bodyType"] == "8bitmime" and env["dsn"] ==
                      {"ret": "HDRS", "envid": "tlsmail-envid-1"}, "envelope %r" % env)
                check(env["rcptTo"][0]["dsn"] == {"notify": ["SUCCESS", "FAILURE"],
                                                  "orcpt": "rfc822;one@example.org"},
                      "RCPT DSN %r" % env["rcptTo"][0])

    @case("capture_selfcheck_xoauth2[nodemailer/implicit]")
    def _():
        t = S.targets["nodemailer/implicit"]
        for token, want in ((TOKENS[0][1], 235), ("not-the-token", 535)):
            m = t.capture.mark()
            with smtp_ssl(S, t) as c:
                c.ehlo()
                blob = base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (USER, token))
                                        .encode()).decode()
                code, resp = c.docmd("AUTH", "XOAUTH2 " + blob)
                if code == 334:        # RFC 7628 error challenge: answer it empty
                    check(json.loads(base64.b64decode(resp))["status"] == "401", "challenge %r" % resp)
                    code, resp = c.docmd("")
                check(code == want, "token %r: %s %r, want %d" % (token, code, resp, want))
            t.capture.wait_sessions(m, 1)
            ev = [e for e in t.capture.events(m) if e["event"] == "auth"]
            check([(e["method"], e["user"], e["ok"]) for e in ev] == [("XOAUTH2", USER, want == 235)],
                  "auth events %r" % ev)

    @case("capture_selfcheck_xoauth2[postfix/smtps]")
    def _():   # Dovecot's oauth2 passdb, local JWT validation: no identity provider
        t = S.targets["postfix/smtps"]
        now = int(time.time())
        good = servers.jwt_hs256(OAUTH_KEY, {"sub": USER, "iat": now - 5, "exp": now + 3600})
        forged = servers.jwt_hs256(b"another key", {"sub": USER, "iat": now - 5, "exp": now + 3600})
        for token, want in ((good, 235), (forged, 535)):
            m = t.capture.mark()
            with smtp_ssl(S, t) as c:
                c.ehlo()
                check("XOAUTH2" in c.esmtp_features.get("auth", "").upper().split(),
                      "no XOAUTH2 offered: %r" % c.esmtp_features)
                blob = base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (USER, token))
                                        .encode()).decode()
                code, resp = c.docmd("AUTH", "XOAUTH2 " + blob)
                if code == 334:
                    check(json.loads(base64.b64decode(resp))["status"] == "401", "challenge %r" % resp)
                    code, resp = c.docmd("")
                check(code == want, "%s token: %s %r, want %d" % (
                    "valid" if want == 235 else "forged", code, resp, want))
                if code == 235:
                    c.sendmail(FROM, [TO], SIMPLE)
            s = S.one_session(t, m)
            if want == 235:
                d = t.capture.wait_delivery(m, t.capture.queue_ids(s)[0], 1)
                check(d is not None and (d.mech, d.user) == ("XOAUTH2", USER), "delivery %r" % d)
            else:
                S.expect_nothing_delivered(t, m)

    @case("capture_selfcheck_client_certificate[postfix/ccert]")
    def _():
        t = S.targets["postfix/ccert"]
        crt, key = client_cert(S)
        m = t.capture.mark()
        with smtp_ssl(S, t, certfile=crt, keyfile=key) as c:
            c.login(USER, PASS)
            c.sendmail(FROM, [TO], SIMPLE)
        s = S.one_session(t, m)
        check(any(x.startswith("Trusted TLS connection established") for k, x in s.items
                  if k == "TLS"), "Postfix did not verify the client certificate: %r"
              % [x for k, x in s.items if k == "TLS"])
        d = t.capture.wait_delivery(m, t.capture.queue_ids(s)[0], 1)
        rec = d.meta["received"].decode()
        check('Client CN "tlsmail test client"' in rec and "verified OK" in rec,
              "Received: header %r" % rec)

    return cases


def build_proto_cases(S, case, send_ok):
    """What MAIL and RCPT declare (SIZE, BODY, SMTPUTF8, DSN), the queue id,
    OAuth through Dovecot and smtp-server, client certificates, per-recipient
    results and BDAT, as the real servers saw them."""
    ascii_msg = SIMPLE.replace(b"\r\n", b"\n")          # LF line ends: counted as CRLF
    msg8 = HDR + "Gr\u00fc\u00dfe, caf\u00e9\r\n.a dot line\r\n".encode()
    msg_utf8_subject = HDR.replace(b"Subject: real-server test",
                                   "Subject: caf\u00e9 \u2615".encode()) + b"body\r\n"

    for tname in IMPLICIT:
        @case("size_and_no_body_for_ascii[%s]" % tname)
        def _(tname=tname):   # SIZE= the stored size; no BODY=, no SMTPUTF8 for ASCII
            d, s, r = send_ok(tname, msg=ascii_msg)
            check(s.mail_params() == [{"SIZE": str(len(normalise(ascii_msg)))}],
                  "MAIL parameters %r, want only SIZE=%d" % (s.mail_params(), len(normalise(ascii_msg))))
            if d.server == "nodemailer":
                check(d.meta["envelope"]["bodyType"] == "7bit" and not d.meta["envelope"]["smtpUtf8"],
                      "smtp-server's envelope %r" % d.meta["envelope"])

        @case("body_8bitmime_only_for_8bit[%s]" % tname)
        def _(tname=tname):
            d, s, r = send_ok(tname, msg=msg8)
            check(s.mail_params() == [{"SIZE": str(len(normalise(msg8))), "BODY": "8BITMIME"}],
                  "MAIL parameters %r" % s.mail_params())
            if d.server == "nodemailer":
                check(d.meta["envelope"]["bodyType"] == "8bitmime", "envelope %r" % d.meta["envelope"])

        @case("smtputf8_for_a_utf8_subject[%s]" % tname)
        def _(tname=tname):
            d, s, r = send_ok(tname, msg=msg_utf8_subject)
            check(s.mail_params()[0].get("SMTPUTF8") is True and
                  s.mail_params()[0].get("BODY") == "8BITMIME", "MAIL parameters %r" % s.mail_params())
            if d.server == "nodemailer":
                check(d.meta["envelope"]["smtpUtf8"] is True, "envelope %r" % d.meta["envelope"])

        @case("smtputf8_for_a_utf8_recipient[%s]" % tname)
        def _(tname=tname):
            to = ("j\u00fcrgen@example.org",)
            d, s, r = send_ok(tname, to=to)
            check(s.mail_params()[0].get("SMTPUTF8") is True and "BODY" not in s.mail_params()[0],
                  "MAIL parameters %r" % s.mail_params())

        @case("stream_api_size_and_7bit[%s]" % tname)
        def _(tname=tname):   # tlsmail_mail_ex: SIZE= from tlsmail_message_size, 7BIT: no BODY=
            d, s, r = send_ok(tname, api="stream", chunk=4096, msg=ascii_msg,
                              extra=["--size", "auto", "--body", "7bit"])
            check(s.mail_params() == [{"SIZE": str(len(normalise(ascii_msg)))}],
                  "MAIL parameters %r" % s.mail_params())

        @case("stream_api_default_body_8bitmime[%s]" % tname)
        def _(tname=tname):   # tlsmail_mail: the body is unknown, BODY=8BITMIME as offered
            d, s, r = send_ok(tname, api="stream", chunk=4096, msg=msg8)
            check(s.mail_params() == [{"BODY": "8BITMIME"}], "MAIL parameters %r" % s.mail_params())

        @case("queue_id_is_the_servers[%s]" % tname)
        def _(tname=tname):   # the id tlsmail_queue_id gives is the one the server logged
            d, s, r = send_ok(tname)
            check(S.queue(r) == d.queue_id, "tlsmail_queue_id %r, the server's %r" % (S.queue(r), d.queue_id))

        @case("dsn_parameters[%s]" % tname)
        def _(tname=tname):
            t = S.targets[tname]
            m = t.capture.mark()
            envid = "tlsmail+dsn=%d" % random.randrange(1 << 30)
            to = ("one@example.org", "two@example.org")
            r = S.itest(t, api="sendex", to=to, extra=[
                "--ret", "hdrs", "--envid", envid, "--notify", "success,failure",
                "--orcpt", "first+orig@example.org", "--orcpt", "second@example.org"])
            check(r.name == "OK", "expected OK, got %s" % r)
            d, s = S.expect_delivered(t, m, SIMPLE, to=to)
            xt = envid.replace("+", "+2B").replace("=", "+3D")
            check(s.mail_params() == [{"SIZE": str(len(normalise(SIMPLE))), "RET": "HDRS",
                                       "ENVID": xt}], "MAIL parameters %r" % s.mail_params())
            check(s.rcpt_params() == [
                ("one@example.org", {"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;first+2Borig@example.org"}),
                ("two@example.org", {"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;second@example.org"})],
                "RCPT parameters %r" % s.rcpt_params())
            if d.server == "postfix":     # Postfix's own notification, in its words
                rep = t.capture.wait_report(m, envid)
                check(rep is not None, "no success notification from Postfix for %s" % envid)
                text = rep.body.decode("utf-8", "replace")
                for want in ("Original-Envelope-Id: " + envid,
                             "Original-Recipient: rfc822;first+orig@example.org",
                             "Original-Recipient: rfc822;second@example.org", "Action: relayed"):
                    check(want in text, "the notification has no %r" % want)
                check(rep.rcpts == [FROM], "notification sent to %r" % rep.rcpts)
            else:                         # smtp-server's parse of the same parameters
                env = d.meta["envelope"]
                check(env["dsn"] == {"ret": "HDRS", "envid": envid}, "envelope DSN %r" % env["dsn"])
                check([x["dsn"] for x in env["rcptTo"]] == [
                    {"notify": ["SUCCESS", "FAILURE"], "orcpt": "rfc822;first+orig@example.org"},
                    {"notify": ["SUCCESS", "FAILURE"], "orcpt": "rfc822;second@example.org"}],
                    "RCPT DSN %r" % [x["dsn"] for x in env["rcptTo"]])

        @case("results_default_mode_rejected_recipient[%s]" % tname)
        def _(tname=tname):   # Go's rule: one refusal and nothing is sent
            t = S.targets[tname]
            m = t.capture.mark()
            r = S.itest(t, api="sendex", to=("one@example.org", REJECTED, "two@example.org"))
            check(r.name == "EPERMANENT" and r.stage == "RCPT TO", "got %s" % r)
            res = S.results(r)
            check(res[0][0] == 250 and res[1][:2] == (550, "5.1.1") and "no such user" in res[1][2]
                  and res[2][0] == 0, "results %r" % res)
            check(S.klass(r) == "CONFIG", "class %r, want CONFIG (5.1.1: the address)" % S.klass(r))
            check("(5.1.1: bad destination mailbox address)" in r.stderr, "describe %r" % r.stderr[-300:])
            S.expect_nothing_delivered(t, m)

        @case("results_partial_delivery[%s]" % tname)
        def _(tname=tname):   # TLSMAIL_DELIVER_ACCEPTED: the others get it
            t = S.targets[tname]
            m = t.capture.mark()
            r = S.itest(t, api="sendex", to=("one@example.org", REJECTED, "two@example.org"),
                        extra=["--partial"])
            check(r.name == "OK", "expected OK, got %s" % r)
            res = S.results(r)
            check([x[0] for x in res] == [250, 550, 250] and res[1][1] == "5.1.1", "results %r" % res)
            d, s = S.expect_delivered(t, m, SIMPLE, to=("one@example.org", "two@example.org"))
            check(S.queue(r) == d.queue_id, "queue id %r, the server's %r" % (S.queue(r), d.queue_id))

    # -- OAuth 2.0 bearer tokens: short ones on the AUTH line, multi-KB ones
    #    after the 334 (Postfix cuts AUTH lines at line_length_limit, 2048)
    def jwt(sub, pad, key=OAUTH_KEY):
        now = int(time.time())
        return servers.jwt_hs256(key, {"sub": sub, "iat": now - 5, "exp": now + 3600, "pad": "p" * pad})

    for mech in ("XOAUTH2", "OAUTHBEARER"):
        for size, pad in (("short", 10), ("4kb", 3000)):
            @case("%s_%s_token[postfix/smtps]" % (mech.lower(), size))
            def _(mech=mech, pad=pad):
                token = jwt(USER, pad)
                d, s, r = send_ok("postfix/smtps", mech=mech, pw="",
                                  extra=["--token-file", S.token_file(token)])
                auths = [c for c in s.commands() if c.upper().startswith("AUTH")]
                on_line = len(token) < 300
                check(len(auths) == 1 and auths[0].upper().startswith("AUTH " + mech) and
                      (len(auths[0]) > 100) == on_line,
                      "AUTH line %r (the response on it: %s)" % ([a[:40] for a in auths], on_line))

        @case("%s_refused_token_error_challenge[postfix/smtps]" % mech.lower())
        def _(mech=mech):
            t = S.targets["postfix/smtps"]
            m = t.capture.mark()
            token = jwt(USER, 10, key=b"not the key Dovecot knows")
            r = S.itest(t, auth=mech.lower(), pw="", extra=["--token-file", S.token_file(token)])
            check(r.name == "EAUTH" and r.stage == "AUTH", "expected EAUTH, got %s" % r)
            check("(OAuth error status: " in r.stderr, "no OAuth status in %r" % r.stderr[-300:])
            check(token not in r.stderr + r.stdout, "the token shows in the output")
            s = S.one_session(t, m)
            check(any(x.startswith("334 ") for x in s.replies()) and
                  any(x.startswith("535") for x in s.replies()), "replies %r" % s.replies())
            S.expect_nothing_delivered(t, m)

    for user, size in ((USER, "short"), (USER2, "5kb")):
        @case("xoauth2_%s_token[nodemailer/implicit]" % size)
        def _(user=user):
            send_ok("nodemailer/implicit", mech="XOAUTH2", user=user, pw="",
                    extra=["--token-file", S.token_file(dict(TOKENS)[user])])

    @case("xoauth2_refused_token_error_challenge[nodemailer/implicit]")
    def _():   # smtp-server's 334 {"status":"401",...}, answered, then 535
        t = S.targets["nodemailer/implicit"]
        m = t.capture.mark()
        r = S.itest(t, auth="xoauth2", pw="", extra=["--token", "ya29.not-the-token"])
        check(r.name == "EAUTH", "expected EAUTH, got %s" % r)
        check("(OAuth error status: 401)" in r.stderr, "describe %r" % r.stderr[-300:])
        t.capture.wait_sessions(m, 1)
        ev = [e for e in t.capture.events(m) if e["event"] == "auth"]
        check([(e["method"], e["ok"]) for e in ev] == [("XOAUTH2", False)], "auth events %r" % ev)
        S.expect_nothing_delivered(t, m)

    @case("mechanism_not_offered_names_the_offer[nodemailer/implicit]")
    def _():   # OAUTHBEARER asked for, smtp-server has PLAIN LOGIN XOAUTH2: ENOMECH, nothing sent
        t = S.targets["nodemailer/implicit"]
        m = t.capture.mark()
        r = S.itest(t, auth="oauthbearer", pw="", extra=["--token", "ya29.x"])
        check(r.name == "ENOMECH", "expected ENOMECH, got %s" % r)
        check("(OAUTHBEARER asked for; the server offers AUTH PLAIN LOGIN XOAUTH2)" in r.stderr,
              "describe %r" % r.stderr[-300:])
        s = S.one_session(t, m)
        check(not [c for c in s.commands() if c.upper().startswith(("AUTH", "MAIL"))],
              "the server read %r" % s.commands())

    @case("auto_prefers_oauthbearer[postfix/smtps]")
    def _():   # a password and a token: AUTO takes OAUTHBEARER where offered
        d, s, r = send_ok("postfix/smtps", mech="OAUTHBEARER", pw=PASS,
                          extra=["--auth", "auto", "--token-file", S.token_file(jwt(USER, 10))])

    # -- a client certificate on the listener that requires one
    @case("client_certificate_login[postfix/ccert]")
    def _():
        crt, key = client_cert(S)
        d, s, r = send_ok("postfix/ccert", extra=["--cert", crt, "--key", key])
        check(any(x.startswith("Trusted TLS connection established") for k, x in s.items
                  if k == "TLS"), "Postfix did not verify the client certificate: %r"
              % [x for k, x in s.items if k == "TLS"])
        rec = d.meta["received"].decode()
        check('Client CN "tlsmail test client"' in rec and "verified OK" in rec,
              "Received: header %r" % rec)

    # -- tlsmail-send with OAuth tokens, a client certificate, DSN, the
    #    queue id and refused recipients, as the real servers saw them
    def token_command(token):
        """A token_command printing token (multi-KB: never on argv)."""
        path = S.token_file(token)
        script = path + ".sh"
        with open(script, "w") as f:
            f.write("#!/bin/sh\ncat %s\n" % path)
        os.chmod(script, 0o700)
        return script

    def send_cli(tname, extra, env, to=(TO,), mech="PLAIN", user=USER, msg=SIMPLE, pw=PASS):
        t = S.targets[tname]
        m = t.capture.mark()
        r = S.tlsmail_send_env(t, msg, to, env, user=user, pw=pw, extra=extra)
        check(r.rc == 0, "tlsmail-send exit %s: %s" % (r.rc, r.stderr[-400:]))
        return (t, m, r) + S.expect_delivered(t, m, msg, to=to, user=user, mech=mech)

    for mech in ("XOAUTH2", "OAUTHBEARER"):
        @case("tlsmail_send_%s_4kb_token_command[postfix/smtps]" % mech.lower())
        def _(mech=mech):   # Dovecot checks the JWT; the response goes after the 334
            token = jwt(USER, 3000)
            t, m, r, d, s = send_cli("postfix/smtps", ["--auth", mech.lower()],
                                     {"TLSMAIL_TOKEN_COMMAND": token_command(token)}, mech=mech, pw="")
            auths = [c for c in s.commands() if c.upper().startswith("AUTH")]
            check(auths == ["AUTH " + mech], "AUTH lines %r" % [a[:40] for a in auths])
            check(token[:40] not in r.stderr + r.stdout, "the token shows in the output")

    @case("tlsmail_send_auto_token_from_env_oauthbearer[postfix/smtps]")
    def _():   # TLSMAIL_TOKEN and a password: auto takes OAUTHBEARER
        send_cli("postfix/smtps", [], {"TLSMAIL_TOKEN": jwt(USER, 10)}, mech="OAUTHBEARER")

    @case("tlsmail_send_xoauth2_5kb_token_from_env[nodemailer/implicit]")
    def _():
        send_cli("nodemailer/implicit", ["--auth", "xoauth2"], {"TLSMAIL_TOKEN": dict(TOKENS)[USER2]},
                 mech="XOAUTH2", user=USER2, pw="")

    @case("tlsmail_send_token_refused_exit_77[postfix/smtps]")
    def _():
        t = S.targets["postfix/smtps"]
        m = t.capture.mark()
        token = jwt(USER, 10, key=b"not the key Dovecot knows")
        r = S.tlsmail_send_env(t, SIMPLE, (TO,), {"TLSMAIL_TOKEN_COMMAND": token_command(token)}, pw="",
                               extra=["--auth", "xoauth2"])
        check(r.rc == 77, "tlsmail-send exit %s, want 77: %s" % (r.rc, r.stderr[-300:]))
        check("(OAuth error status: " in r.stderr and token[:30] not in r.stderr, "%r" % r.stderr[-300:])
        S.expect_nothing_delivered(t, m)

    @case("tlsmail_send_client_certificate[postfix/ccert]")
    def _():
        crt, key = client_cert(S)
        os.chmod(key, 0o600)
        t, m, r, d, s = send_cli("postfix/ccert", ["--cert", crt, "--key", key], {})
        rec = d.meta["received"].decode()
        check('Client CN "tlsmail test client"' in rec and "verified OK" in rec, "Received: header %r" % rec)

    @case("tlsmail_send_no_client_certificate_refused[postfix/ccert]")
    def _():
        t = S.targets["postfix/ccert"]
        m = t.capture.mark()
        r = S.tlsmail_send(t, SIMPLE, (TO,))
        check(r.rc in (69, 75), "tlsmail-send exit %s: %s" % (r.rc, r.stderr[-300:]))
        S.expect_nothing_delivered(t, m)

    for tname in IMPLICIT:
        @case("tlsmail_send_dsn_parameters[%s]" % tname)
        def _(tname=tname):
            envid = "cli+dsn=%d" % random.randrange(1 << 30)
            to = ("one@example.org", "two@example.org")
            t, m, r, d, s = send_cli(tname, ["-N", "success,failure", "-R", "hdrs", "-V", envid], {}, to=to)
            xt = envid.replace("+", "+2B").replace("=", "+3D")
            check(s.mail_params() == [{"SIZE": str(len(normalise(SIMPLE))), "RET": "HDRS", "ENVID": xt}],
                  "MAIL parameters %r" % s.mail_params())
            check(s.rcpt_params() == [(a, {"NOTIFY": "SUCCESS,FAILURE"}) for a in to],
                  "RCPT parameters %r" % s.rcpt_params())
            if d.server == "postfix":
                rep = t.capture.wait_report(m, envid)
                check(rep is not None and "Original-Envelope-Id: " + envid in rep.body.decode("utf-8", "replace"),
                      "no notification from Postfix for %s" % envid)
                # what expect_delivered leaves out as the server's own report
                check(b"multipart/report" in rep.body, "the notification is no multipart/report")
            else:
                check(d.meta["envelope"]["dsn"] == {"ret": "HDRS", "envid": envid}, "%r" % d.meta["envelope"])

        @case("tlsmail_send_queue_id_logged[%s]" % tname)
        def _(tname=tname):
            logf = os.path.join(S.work, "queue-%s.log" % tname.replace("/", "-"))
            t, m, r, d, s = send_cli(tname, ["-v"], {"TLSMAIL_LOG": logf})
            check(open(logf).read().rstrip().endswith(" queue=%s" % d.queue_id), "log %r, queue id %s"
                  % (open(logf).read(), d.queue_id))
            check("* queued as %s\n" % d.queue_id in r.stderr, "-v: %r" % r.stderr[-300:])

        @case("tlsmail_send_refused_recipient_named_nothing_sent[%s]" % tname)
        def _(tname=tname):
            t = S.targets[tname]
            m = t.capture.mark()
            r = S.tlsmail_send(t, SIMPLE, ("one@example.org", REJECTED, "two@example.org"))
            check(r.rc == 69, "tlsmail-send exit %s, want 69: %s" % (r.rc, r.stderr[-300:]))
            lines = r.stderr.strip().splitlines()
            check(lines[0].startswith("tlsmail-send: %s: RCPT TO: server refused (5xx); server said: 5" % REJECTED)
                  and lines[-1] == "tlsmail-send: 1 of 3 recipients refused: nothing was sent", "%r" % lines)
            S.expect_nothing_delivered(t, m)

        @case("tlsmail_send_deliver_accepted_to_the_others[%s]" % tname)
        def _(tname=tname):
            t = S.targets[tname]
            m = t.capture.mark()
            r = S.tlsmail_send(t, SIMPLE, ("one@example.org", REJECTED, "two@example.org"),
                               extra=["--deliver", "accepted"])
            check(r.rc == 0, "tlsmail-send exit %s, want 0: %s" % (r.rc, r.stderr[-300:]))
            lines = r.stderr.strip().splitlines()
            check(lines[0].startswith("tlsmail-send: %s: RCPT TO: server refused (5xx); server said: 5" % REJECTED)
                  and lines[-1] == "tlsmail-send: 1 of 3 recipients refused: sending to the others", "%r" % lines)
            S.expect_delivered(t, m, SIMPLE, to=("one@example.org", "two@example.org"))

    # -- more than 100 recipients to a Postfix that takes 100 a transaction
    #    (smtpd_recipient_limit, as Gmail): transactions of 100, each its own
    #    message, every one of the 150 delivered
    many = tuple("r%d@example.org" % i for i in range(1, 151))

    def expect_groups(t, m, r, rcpts, msg):
        s = S.one_session(t, m)
        qids = t.capture.queue_ids(s)
        check(len(qids) == 2 and qids[0] != qids[1], "accepted messages %r; replies %r"
              % (qids, s.replies()[-6:]))
        check(not any(x.startswith("452") for x in s.replies()), "the server said 452: %r"
              % [x for x in s.replies() if x.startswith("452")][:2])
        got = []
        for q, n in zip(qids, (100, 50)):
            d = t.capture.wait_delivery(m, q, n)
            check(d is not None, "message %s accepted but not delivered to %d" % (q, n))
            check(d.body == normalise(msg), "message %s differs: %r" % (q, d.body[:200]))
            check(len(d.rcpts) == n, "message %s to %d recipients, want %d" % (q, len(d.rcpts), n))
            got += d.rcpts
        check(sorted(got) == sorted(rcpts), "delivered to %d distinct of %d: missing %r"
              % (len(set(got)), len(rcpts), sorted(set(rcpts) - set(got))[:5]))
        verbs = [c.split(" ")[0].split(":")[0].upper() for c in s.commands()]
        check(verbs.count("MAIL") == 2 and verbs.count("QUIT") == 1 and verbs[-1] == "QUIT",
              "commands %r" % [v for v in verbs if v != "RCPT"])

    @case("tlsmail_send_150_recipients_two_transactions[postfix/limit100]")
    def _():
        t = S.targets["postfix/limit100"]
        m = t.capture.mark()
        r = S.tlsmail_send(t, SIMPLE, many)
        check(r.rc == 0, "tlsmail-send exit %s: %s" % (r.rc, r.stderr[-300:]))
        expect_groups(t, m, r, many, SIMPLE)

    @case("api_client_150_recipients_two_transactions[postfix/limit100]")
    def _():
        t = S.targets["postfix/limit100"]
        m = t.capture.mark()
        r = S.itest(t, auth="plain", to=many)
        check(r.name == "OK", "expected OK, got %s" % r)
        expect_groups(t, m, r, many, SIMPLE)

    # -- --batch: several files over one connection, each by tlsmail_transact
    #    (PIPELINING and BDAT where offered); a refused one in the middle
    #    is reported, the connection reset, and the next one delivered
    for tname in IMPLICIT + BARE:
        @case("tlsmail_send_batch_one_connection_refused_in_the_middle[%s]" % tname)
        def _(tname=tname):
            t = S.targets[tname]
            files, msgs = [], []
            for i, to in enumerate(("one@example.org", REJECTED, "two@example.org")):
                msg = ("From: %s\nTo: %s\nSubject: batch %d\nDate: Tue, 1 Dec 2026 10:00:00 +0000\n"
                       "Message-ID: <batch%d.%s@example.org>\n\nmessage %d\n.dot line\n"
                       % (FROM, to, i, i, tname.replace("/", "-"), i)).encode()
                f = os.path.join(S.work, "batch-%s-%d.eml" % (tname.replace("/", "-"), i))
                with open(f, "wb") as fh:
                    fh.write(msg)
                files += ["--batch", f]
                msgs.append(msg)
            m = t.capture.mark()
            r = S.tlsmail_send(t, b"", (), extra=files)
            check(r.rc == 69, "tlsmail-send exit %s, want 69: %s" % (r.rc, r.stderr[-400:]))
            check(("%s: %s: RCPT TO: server refused (5xx)" % (files[3], REJECTED)) in r.stderr,
                  "stderr %r" % r.stderr[-400:])
            s = S.one_session(t, m)
            qids = t.capture.queue_ids(s)
            check(len(qids) == 2, "%s: accepted %r" % (t.name, qids))
            for qid, msg, to in zip(qids, (msgs[0], msgs[2]), ("one@example.org", "two@example.org")):
                d = t.capture.wait_delivery(m, qid, 1)
                check(d is not None and d.body == normalise(msg) and d.rcpts == [to],
                      "%s: %s delivered as %r" % (t.name, qid, d and (d.rcpts, d.body[:80])))
            cmds = [c.split(" ")[0].split(":")[0].upper() for c in s.commands()]
            check(cmds.count("MAIL") == 3 and cmds.count("RSET") == 1,
                  "%s: commands %r" % (t.name, cmds))
            if tname == "postfix/smtps":   # CHUNKING offered: BDAT, never DATA
                check(cmds.count("BDAT") >= 2 and "DATA" not in cmds, "commands %r" % cmds)
            S.expect_tls(t, s, None)

    # -- BDAT where offered (Postfix): byte for byte, in one flight with MAIL
    big = []
    for api in ("client", "sendex"):
        @case("bdat_5mb_byte_exact[postfix/smtps,%s]" % api)
        def _(api=api):
            big[:] = big or [big_message(seed=3030)]
            d, s, r = send_ok("postfix/smtps", msg=big[0], api=api)
            cmds = [c.upper() for c in s.commands()]
            check("BDAT %d LAST" % len(normalise(big[0])) in cmds and "DATA" not in cmds,
                  "commands %r" % [c[:30] for c in cmds])
            trace = [l for l in r.stderr.splitlines() if l[:2] in ("> ", "< ")]
            i = next(k for k, l in enumerate(trace) if l.startswith("> MAIL FROM:"))
            check([l.split(" ")[1].split(":")[0] for l in trace[i:i + 4]] == ["MAIL", "RCPT", "BDAT", "QUIT"],
                  "not one flight: %r" % trace[i:i + 4])


def smtp_ssl(S, t, certfile=None, keyfile=None):
    ctx = ssl.create_default_context(cafile=S.p("ca.crt"))
    if certfile:
        ctx.load_cert_chain(certfile, keyfile)
    return smtplib.SMTP_SSL("localhost", t.port, context=ctx, timeout=10)


def client_cert(S):
    """A client certificate (clientAuth) from the test CA, made with the
    openssl CLI once per run: what Postfix's ccert listener verifies."""
    crt, key = S.p("client.crt"), S.p("client.key")
    if os.path.exists(crt):
        return crt, key
    ext = S.p("client.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid\n")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=30)
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", key)
    run("openssl", "req", "-new", "-key", key, "-subj", "/O=tlsmail test/CN=tlsmail test client",
        "-out", S.p("client.csr"))
    run("openssl", "x509", "-req", "-in", S.p("client.csr"), "-CA", S.p("ca.crt"),
        "-CAkey", S.p("ca.key"), "-set_serial", "0x%x" % random.getrandbits(63), "-days", "30",
        "-sha256", "-extfile", ext, "-out", crt)
    return crt, key


def _sigterm(signum, frame):
    # run.sh or CI stopping the suite: unwind through suite_main's finally,
    # which stops every server by pid.
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        sys.exit(suite_main(__doc__.split("\n\n")[0], Suite, build_cases))
    except KeyboardInterrupt:
        print("interrupted: servers stopped", file=sys.stderr)
        sys.exit(130)
