#!/usr/bin/python3
"""tests/hostile/test_hostile.py - tlsmail.h against a hostile SMTP server.

    /usr/bin/python3 tests/hostile/test_hostile.py [--build DIR] [-k SUBSTR]... [-v]

DIR holds the `itest` driver (tests/integration/itest.c, built with -DTLSMAIL_STARTTLS);
when it has none, itest is built into a temporary directory. The test PKI
(tests/lib/pki.sh) goes to a temporary directory.

Each case starts one scenario of tests/lib/hostile.py on 127.0.0.1 (port 0),
runs the driver against localhost:PORT with a short --timeout-ms, and checks
three things: the error name, the time taken (measured around the
subprocess, and as reported by the driver), and what the server received.

Prints "PASS name" or "FAIL name: why" per case, then exactly
"N passed, N failed". Exit 1 on failure.
"""
import argparse
import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
ROOT = os.path.dirname(TESTS)
sys.path.insert(0, os.path.join(TESTS, "lib"))
import hostile  # noqa: E402
from hostile import SCENARIOS  # noqa: E402

MARKER = b"X-Hostile-Marker: 5e1f-c0ffee"
MSG = MARKER + b"\r\nSubject: hostile\r\n\r\nhello\r\n.dot line\r\nbye\r\n"
MSG_WIRE = MARKER + b"\r\nSubject: hostile\r\n\r\nhello\r\n..dot line\r\nbye\r\n"
MSG_VERBS = ("X-HOSTILE-MARKER", "SUBJECT", "HELLO", "..DOT", "BYE", ".")
LONG_USER, LONG_PASS = "u" * 250, "p" * 250
T = 1000            # --timeout-ms for most cases
MARGIN = 1000       # what a case may take beyond its timeout
SPAWN_SLACK = 500   # process start, PKI load, handshake on a busy machine


class Case:
    def __init__(self, name, scenario, expect, args=(), timeout_ms=T, max_ms=None,
                 checks=(), group="implicit", msg=None, driver="itest", trace=False):
        self.name, self.scenario, self.driver = name, scenario, driver
        self.trace = trace  # the driver's trace (every line both ways) on stderr
        self.expect = {expect} if isinstance(expect, str) else set(expect)
        self.args, self.timeout_ms = list(args), timeout_ms
        self.max_ms = max_ms if max_ms is not None else timeout_ms + MARGIN
        self.checks, self.group, self.msg = list(checks), group, msg


# ---- checks on what the server received: each returns None or why it failed

def _all(srv):
    return srv.plain + srv.tls


def no_verbs(*verbs):
    def check(srv, res):
        for layer in ("plain", "tls"):
            got = [v.decode("latin-1") for v in srv.commands(layer)]
            bad = [v for v in got if v in verbs]
            if bad:
                return "server received %s (%s): %s" % (", ".join(bad), layer, got)
    check.__name__ = "no_" + "_".join(verbs)
    return check


def no_message(srv, res):
    if MARKER in _all(srv) or srv.messages:
        return "message bytes reached the server"


def no_auth(srv, res):
    return no_verbs("AUTH")(srv, res)


NO_ENVELOPE = no_verbs("MAIL", "RCPT", "DATA")


def nothing_after(mark="refused"):
    def check(srv, res):
        rest = srv.bytes_after(mark)
        if rest is None:
            return "the server never got to send its refusal (script: %s)" % srv.script_error
        if rest:
            return "client sent after the refusal: %r" % rest[:120]
    return check


def no_smtp(srv, res):
    if srv.tls or srv.plain:
        return "SMTP bytes exchanged: plain %r tls %r" % (srv.plain[:80], srv.tls[:80])


def no_handshake(srv, res):
    if srv.handshake_done:
        return "the TLS handshake completed"


def handshake_ok(srv, res):
    if not srv.handshake_done:
        return "no TLS handshake (%s)" % srv.tls_error


def message_stored(srv, res):
    if srv.messages != [MSG_WIRE]:
        return "message received %r, wanted %r" % (srv.messages, MSG_WIRE)
    if not srv.script_completed:
        return "server script broke off: %s" % srv.script_error


def message_received(srv, res):
    if srv.messages != [MSG_WIRE]:
        return "message received %r, wanted %r" % (srv.messages, MSG_WIRE)


def script_completed(srv, res):
    if not srv.script_completed:
        return "server script broke off: %s" % srv.script_error


def verbs_are(*verbs, layer="tls"):
    verbs = tuple(v.upper() for v in verbs)

    def check(srv, res):
        got = tuple(v.decode("latin-1") for v in srv.commands(layer))
        if got != verbs:
            return "%s commands %s, wanted %s" % (layer, got, verbs)
    return check


def line_after(prefix, want):
    """The line the client sent right after the line starting with prefix."""
    prefix = prefix.encode() if isinstance(prefix, str) else prefix

    def check(srv, res):
        lines = [l.rstrip(b"\r") for l in srv.lines("tls")]
        for i, l in enumerate(lines):
            if l.upper().startswith(prefix.upper()):
                got = lines[i + 1] if i + 1 < len(lines) else None
                if got != want:
                    return "after %r the client sent %r, wanted %r" % (prefix, got, want)
                return None
        return "no %r line" % prefix
    return check


def lines_after(prefix, wants):
    prefix = prefix.encode() if isinstance(prefix, str) else prefix

    def check(srv, res):
        lines = [l.rstrip(b"\r") for l in srv.lines("tls")]
        for i, l in enumerate(lines):
            if l.upper().startswith(prefix.upper()):
                got = lines[i + 1:i + 1 + len(wants)]
                if got != list(wants):
                    return "after %r the client sent %r, wanted %r" % (prefix, got, list(wants))
                return None
        return "no %r line" % prefix
    return check


def quotes_reply(text):
    """tlsmail_describe quotes the reply that caused the error."""
    def check(srv, res):
        if "server said: " + text not in res.get("stderr", ""):
            return "describe does not quote %r: %r" % (text, res.get("stderr", "")[-200:])
    return check


def quotes_no_reply(srv, res):
    """Our own decision: tlsmail_describe quotes no server reply."""
    if "server said" in res.get("stderr", ""):
        return "describe quotes a reply that did not cause the error: %r" % res["stderr"][-200:]


def one_connection(srv, res):
    if srv.connections != 1:
        return "client connected %d times" % srv.connections


def no_final_dot(srv, res):
    if b"\r\n.\r\n" in srv.tls:
        return "the final dot reached the server"


def faster_than(ms):
    def check(srv, res):
        if res["wall_ms"] >= ms:
            return "took %d ms, wanted well under the timeout (< %d ms)" % (res["wall_ms"], ms)
    return check


def slower_than(ms):
    def check(srv, res):
        if res["wall_ms"] < ms:
            return "took %d ms, wanted the whole wait (>= %d ms)" % (res["wall_ms"], ms)
    return check


def plain_only_ehlo_starttls(srv, res):
    got = [v.decode("latin-1") for v in srv.commands("plain")]
    bad = [v for v in got if v not in ("EHLO", "STARTTLS")]
    if bad:
        return "plaintext carried %s (all: %s)" % (bad, got)


def no_tls_data(srv, res):
    if srv.tls:
        return "the client spoke over TLS after a bad STARTTLS reply: %r" % srv.tls[:80]


FAILURE = [no_auth, NO_ENVELOPE, no_message, one_connection]
ST_FAILURE = [no_verbs("AUTH", "MAIL", "RCPT", "DATA", "HELO"), no_message,
              plain_only_ehlo_starttls, one_connection]

AUTH_PLAIN = ["--auth", "plain", "--user", "user@example.org", "--pass", "s3cret"]
AUTH_PLAIN_LONG = ["--auth", "plain", "--user", LONG_USER, "--pass", LONG_PASS]
AUTH_LOGIN = ["--auth", "login", "--user", "user@example.org", "--pass", "s3cret"]
THREE = ["--to", "a@example.org", "--to", "b@example.org", "--to", "c@example.org"]


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s)


# ---- OAuth, client certificates, SIZE, 8BITMIME, SMTPUTF8, DSN, BDAT

USER = "user@example.org"
TOKEN_SHORT = "ya29.a0AfB_byC-short-token_0123456789"
# A token the size of Microsoft's (a JWT of several KB): its response can
# only go after the 334, never on a 512-octet AUTH line.
TOKEN_LONG = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + "".join(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"[(i * 7 + 3) % 64]
    for i in range(6000)) + ".c2lnbmF0dXJl"
MSG8 = MARKER + b"\r\nSubject: hostile\r\n\r\ncaf\xc3\xa9\r\n.dot line\r\n"
MSG_UTF8_HEADER = MARKER + b"\r\nSubject: caf\xc3\xa9\r\n\r\nplain ascii\r\n"
# bare LF and CR, dots: what BDAT must normalise but never dot-stuff
MSG_BDAT = MARKER + b"\r\nSubject: bdat\r\n\r\nbare LF\n.dot line\rlast line"
MSG_BIG = MARKER + b"\r\nSubject: big\r\n\r\n" + b"x" * 78 + b"\r\n"


def xoauth2(user, token):
    return b64("user=%s\x01auth=Bearer %s\x01\x01" % (user, token))


def oauthbearer(user, token, port):
    return b64("n,a=%s,\x01host=localhost\x01port=%d\x01auth=Bearer %s\x01\x01" % (user, port, token))


def raw_lines(srv):
    """Every line the client sent over TLS, blank ones included."""
    return srv.tls.split(b"\r\n")


def has_line(want):
    """The client sent exactly this line (want may be a function of srv)."""
    def check(srv, res):
        w = want(srv) if callable(want) else want
        if w not in raw_lines(srv):
            got = [l[:100] for l in raw_lines(srv) if l[:4].upper() in (w[:4].upper(),)]
            return "no line %r; similar: %r" % (w[:120], got)
    return check


def raw_line_after(prefix, want):
    prefix = prefix.encode() if isinstance(prefix, str) else prefix

    def check(srv, res):
        lines = raw_lines(srv)
        for i, l in enumerate(lines):
            if l.upper().startswith(prefix.upper()):
                got = lines[i + 1] if i + 1 < len(lines) else None
                return None if got == want else "after %r: %r, wanted %r" % (l[:60], got, want)
        return "no %r line" % prefix
    return check


def stdout_has(*wants):
    def check(srv, res):
        out = res.get("stdout", "")
        for w in wants:
            if w not in out.splitlines():
                return "driver output has no line %r: %r" % (w, out)
    return check


def describes(text):
    def check(srv, res):
        if text not in res.get("stderr", ""):
            return "describe does not say %r: %r" % (text, res.get("stderr", "")[-300:])
    return check


ECHO_PLAIN = base64.b64encode(b"\0user@example.org\0s3cret").decode()


def secret_not_shown(secret):
    """Neither the error text nor the trace shows the secret's base64."""
    def check(srv, res):
        if secret in res.get("stderr", "") or secret in res.get("stdout", ""):
            return "the driver's output shows %r: %r" % (secret, res.get("stderr", "")[-300:])
    return check


def stored(msg):
    def check(srv, res):
        if srv.messages != [msg]:
            return "message received %r, wanted %r" % (srv.messages, msg)
    return check


def bdat_chunks(*want):
    def check(srv, res):
        if srv.bdat_chunks != list(want):
            return "BDAT chunks %r, wanted %r" % (srv.bdat_chunks, list(want))
    return check


def first_after(mark, prefix):
    def check(srv, res):
        rest = srv.bytes_after(mark)
        if rest is None or not rest.startswith(prefix):
            return "after %s the client sent %r, wanted %r first" % (mark, (rest or b"")[:40], prefix)
    return check


def peer_cn(cn):
    def check(srv, res):
        if not srv.peer_subject or srv.peer_subject.get("commonName") != cn:
            return "client certificate subject %r, wanted CN %r" % (srv.peer_subject, cn)
    return check


def cipher_has(part):
    """The suite the server's handshake ended with names part."""
    def check(srv, res):
        done = [w for _t, w in srv.events if w.startswith("handshake done ")]
        if not done or part not in done[-1]:
            return "handshake %r, wanted a suite with %r" % (done[-1:] or "none", part)
    return check


def normalised(msg):
    """msg with every CRLF, bare CR and bare LF as CRLF, and a final CRLF."""
    out = msg.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    return out if out.endswith(b"\r\n") else out + b"\r\n"


# ---- more than TLSMAIL_RCPT_MAX recipients (serve() scenarios)

def transactions(*want):
    """serve()'s transactions: (recipients or None for any, message bytes or None)."""
    def check(srv, res):
        got = [(len(t["rcpts"]), t["message"]) for t in srv.transactions]
        if len(got) != len(want):
            return "%d transactions (%s), wanted %d" % (len(got), [g[0] for g in got], len(want))
        for i, ((n, m), (wn, wm)) in enumerate(zip(got, want)):
            if wn is not None and n != wn:
                return "transaction %d had %d recipients, wanted %d" % (i + 1, n, wn)
            if m != wm:
                return "transaction %d took message %r, wanted %r" % (i + 1, (m or b"")[:60], (wm or b"")[:60])
    return check


def body_verbs(*want):
    """DATA or BDAT, per transaction that had one, in order."""
    def check(srv, res):
        got = tuple(v for t in srv.transactions for v in t["verbs"])
        if got != want:
            return "DATA/BDAT per transaction %s, wanted %s" % (got, want)
    return check


def rcpts_after_mail(n, want):
    """The client sent want RCPT lines after the n-th MAIL FROM (what the
    server received, read or not)."""
    def check(srv, res):
        parts = srv.tls.upper().split(b"\r\nMAIL FROM:")
        if len(parts) <= n:
            return "fewer than %d MAIL commands" % n
        got = parts[n].count(b"\r\nRCPT TO:")
        if got != want:
            return "%d RCPT lines after MAIL number %d, wanted %d" % (got, n, want)
    return check


def no_message_after_mail(n):
    """No byte of the message after the n-th MAIL FROM."""
    def check(srv, res):
        parts = srv.tls.upper().split(b"MAIL FROM:")
        if len(parts) <= n:
            return "fewer than %d MAIL commands" % n
        if MARKER.upper() in b"MAIL FROM:".join(parts[n:]):
            return "message bytes after MAIL number %d" % n
    return check


def quit_once_at_end(srv, res):
    got = [v.decode("latin-1") for v in srv.commands("tls")]
    if got.count("QUIT") != 1 or got[-1] != "QUIT":
        return "QUIT %d times, last command %r" % (got.count("QUIT"), got[-1:] )


def rset_between(srv, res):
    got = [v.decode("latin-1") for v in srv.commands("tls")]
    mails = [i for i, v in enumerate(got) if v == "MAIL"]
    for a, b in zip(mails, mails[1:]):
        if "RSET" not in got[a:b]:
            return "no RSET between the MAIL commands %d and %d" % (a, b)


def flights_before_quit(n):
    """The client sent QUIT in the same write as the last BDAT chunk only:
    no QUIT before the last transaction's MAIL."""
    def check(srv, res):
        got = [v.decode("latin-1") for v in srv.commands("tls")]
        mails = [i for i, v in enumerate(got) if v == "MAIL"]
        if len(mails) != n:
            return "%d MAIL commands, wanted %d" % (len(mails), n)
        if "QUIT" in got[:mails[-1]]:
            return "QUIT before the last transaction: %s" % got
    return check


def cases():
    C = []

    def add(*a, **kw):
        C.append(Case(*a, **kw))

    ok = [message_stored, one_connection]
    # the reply left to read after the one call is the one that took the
    # message (its queue id, for a log), not QUIT's 221
    add("control: well-behaved server", "ok", "OK", checks=ok + [stdout_has("reply 250")])
    add("control: RSA certificate", "ok_rsa", "OK", checks=ok)
    add("control: PIPELINING", "ok_pipelining", "OK", checks=ok + [stdout_has("reply 250")])
    add("control: AUTH PLAIN", "ok_auth_plain", "OK", args=AUTH_PLAIN,
        checks=ok + [verbs_are("EHLO", "AUTH", "MAIL", "RCPT", "DATA", *MSG_VERBS, "QUIT")])

    add("replies one byte per TLS record", "bytewise", "OK",
        checks=ok + [verbs_are("EHLO", "MAIL", "RCPT", "DATA", *MSG_VERBS, "QUIT")])

    # malformed replies
    add("EHLO reply 250-a / 251 b", "ehlo_mixed_codes", "EPROTO", checks=FAILURE)
    for n in ("2X0", "25", "250x", "empty", "nul"):
        add("greeting %s" % n, "greet_bad_" + n, "EPROTO",
            checks=FAILURE + [no_verbs("EHLO", "HELO")])
    add("greeting: 1 MiB line without CRLF", "greet_1mib_noeol", "EPROTO", timeout_ms=5000,
        checks=FAILURE + [faster_than(1000), no_verbs("EHLO")])
    add("EHLO: endless 250- lines (5 MB flood)", "ehlo_flood", "EPROTO", timeout_ms=5000,
        checks=FAILURE + [faster_than(1000)])
    add("EHLO: 1000 keywords", "ehlo_1000_keywords", "EPROTO", checks=FAILURE)

    # refusals
    add("greeting 554", "greet_554", "EPERMANENT",
        checks=FAILURE + [no_verbs("EHLO", "HELO")])
    add("greeting 421", "greet_421", "ETRANSIENT", checks=FAILURE + [nothing_after()])
    for stage, sc, args in [("EHLO", "ehlo_421", []), ("AUTH", "auth_421", AUTH_PLAIN),
                            ("MAIL", "mail_421", []), ("RCPT", "rcpt_421", []),
                            ("DATA", "data_421", [])]:
        add("421 at %s" % stage, sc, "ETRANSIENT", args=args,
            checks=[nothing_after(), no_message, one_connection])
    # a reply code is success only when it is the command's own (RFC 5321
    # 4.3.2; as Go's net/smtp): 250, RCPT also 251, QUIT 221
    add("EHLO answered 251", "ehlo_251", "EPROTO",
        checks=FAILURE + [verbs_are("EHLO"), nothing_after(), quotes_reply("251 odd")])
    add("MAIL answered 251", "mail_251", "EPROTO",
        checks=[no_verbs("RCPT", "DATA"), no_message, nothing_after()])
    add("RCPT answered 252", "rcpt_252", "EPROTO",
        checks=[no_verbs("DATA"), no_message, nothing_after()])
    add("RCPT answered 251 (will forward): accepted", "rcpt_251", "OK", checks=ok)
    add("QUIT answered 250, step by step: the message went, QUIT did not", "quit_250",
        "EPROTO", args=["--api", "stream", "--chunk", "4096"],
        checks=[message_received, one_connection])
    add("QUIT answered 250, one call: delivered is delivered", "quit_250", "OK",
        checks=[message_received, one_connection])
    for sc in ("unsolicited_after_mail", "unsolicited_flood_after_mail", "unsolicited_record_after_mail"):
        add("the server speaks out of turn: %s" % sc, sc, "EPROTO",
            checks=[no_verbs("RCPT", "DATA"), no_message, nothing_after(), quotes_no_reply])
    add("the server speaks out of turn: replies in records of their own behind EHLO's",
        "unsolicited_records_after_ehlo", "EPROTO",
        checks=[verbs_are("EHLO"), no_message, nothing_after(), quotes_no_reply])
    add("8-bit sender, no SMTPUTF8: refused here, nothing sent", "ok", "ENOEXT",
        args=["--from", "j\u00fcrgen@example.org"],
        checks=FAILURE + [verbs_are("EHLO"), quotes_no_reply])

    add("421 after the final dot", "dot_421", "ETRANSIENT",
        checks=[nothing_after(), one_connection])

    add("EHLO 500, HELO accepted", "ehlo_500_helo", "OK",
        checks=ok + [verbs_are("EHLO", "HELO", "MAIL", "RCPT", "DATA", *MSG_VERBS, "QUIT")])
    add("EHLO 500, HELO accepted, AUTH wanted", "ehlo_500_helo_auth", "ENOMECH",
        args=AUTH_PLAIN, checks=FAILURE)

    # AUTH
    add("AUTH PLAIN: 334 with a challenge; the 334 quoted, not the answer to '*'",
        "auth_plain_challenge", "EPROTO", args=AUTH_PLAIN_LONG,
        checks=FAILURE[1:] + [verbs_are("EHLO", "AUTH", "*"), line_after("EHLO", b"AUTH PLAIN"),
                              quotes_reply("334 Y2hhbGxlbmdl")])
    plain_resp = b64("\0" + LONG_USER + "\0" + LONG_PASS)
    add("AUTH PLAIN: long credentials, empty 334", "auth_plain_long_ok", "OK",
        args=AUTH_PLAIN_LONG, checks=ok + [lines_after("AUTH PLAIN", [plain_resp])])
    add("AUTH LOGIN: prompts '334 Z2ltbWU=' and '334 '", "auth_login_odd_prompts", "OK",
        args=AUTH_LOGIN,
        checks=ok + [lines_after("AUTH LOGIN", [b64("user@example.org"), b64("s3cret")])])
    add("AUTH LOGIN: a third 334", "auth_login_third_334", "EAUTH", args=AUTH_LOGIN,
        checks=FAILURE[1:] + [verbs_are("EHLO", "AUTH", b64("user@example.org").decode(),
                                        b64("s3cret").decode(), "*"), quotes_reply("334 TW9yZTo=")])
    add("AUTH LOGIN: 235 before the password", "auth_login_early_235", "EPROTO", args=AUTH_LOGIN,
        checks=FAILURE[1:] + [verbs_are("EHLO", "AUTH", b64("user@example.org").decode()),
                              nothing_after()])
    # a server that quotes our credentials back: masked in the error text
    # and in the trace, which both reach logs
    add("AUTH PLAIN refused with the credentials quoted: masked", "auth_plain_echo", "EAUTH",
        args=AUTH_PLAIN, trace=True,
        checks=FAILURE[1:] + [verbs_are("EHLO", "AUTH"), secret_not_shown(ECHO_PLAIN),
                              quotes_reply("535 5.7.8 bad credentials for AUTH PLAIN <secret> "
                                           "5.7.8 (AUTH PLAIN <secret>)"),
                              describes("< 535-5.7.8 bad credentials for AUTH PLAIN <secret>\n")])
    add("AUTH LOGIN refused with the password quoted: masked", "auth_login_echo", "EAUTH",
        args=AUTH_LOGIN, trace=True,
        checks=FAILURE[1:] + [secret_not_shown(b64("s3cret").decode()),
                              quotes_reply("535 5.7.8 no such password: <secret>, try again")])
    add("AUTH PLAIN: a reply after AUTH is not masked", "auth_echo_after", "EPERMANENT",
        args=AUTH_PLAIN, checks=[quotes_reply("550 5.1.1 " + ECHO_PLAIN + " unknown")])
    for code, err in [("535", "EAUTH"), ("534", "ENOMECH"), ("454", "ETRANSIENT")]:
        # 534: the mechanism was offered and refused for this login (Gmail's
        # "Application-specific password required"), not "none offered"
        lead = [describes("AUTH: server refused the AUTH mechanism for this login; server said: "
                          "534 5.7.9 mechanism too weak")] if code == "534" else []
        add("AUTH PLAIN answered %s" % code, "auth_plain_" + code, err, args=AUTH_PLAIN,
            checks=FAILURE[1:] + [verbs_are("EHLO", "AUTH"), nothing_after()] + lead)

    # envelope
    add("MAIL 451", "mail_451", "ETRANSIENT",
        checks=[no_verbs("RCPT", "DATA"), no_message, nothing_after()])
    add("MAIL 550", "mail_550", "EPERMANENT",
        checks=[no_verbs("RCPT", "DATA"), no_message, nothing_after()])
    add("RCPT: one of three rejected", "rcpt_one_of_three_550", "EPERMANENT", args=THREE,
        checks=[no_verbs("DATA"), no_message, nothing_after()])
    add("RCPT: one of three rejected (PIPELINING)", "rcpt_one_of_three_550_pipelining",
        "EPERMANENT", args=THREE, checks=[no_message, nothing_after()])
    add("RCPT: all rejected", "rcpt_all_550", "EPERMANENT",
        args=["--to", "a@example.org", "--to", "b@example.org"],
        checks=[no_verbs("DATA"), no_message])
    add("RCPT: all rejected, yet 354 (PIPELINING)", "rcpt_all_550_pipelining_354", "EPERMANENT",
        args=["--to", "a@example.org", "--to", "b@example.org"],
        checks=[no_message, nothing_after()])
    for code, err in [("250", "EPROTO"), ("451", "ETRANSIENT"), ("554", "EPERMANENT")]:
        add("DATA answered %s" % code, "data_" + code, err, checks=[no_message, nothing_after()])
    for code, err in [("452", "ETRANSIENT"), ("552", "EPERMANENT")]:
        add("%s after the final dot" % code, "dot_" + code, err, checks=[one_connection])

    # connection lost
    add("TCP close mid-reply", "close_mid_reply", "ECLOSED", checks=FAILURE)
    add("TCP close after the final dot", "close_after_dot", "EUNKNOWN", checks=[one_connection])
    add("close_notify after the final dot", "close_notify_after_dot", "EUNKNOWN",
        checks=[one_connection])

    # stalls: ETIMEOUT within T + 1 s
    add("stall after the greeting", "stall_after_greeting", "ETIMEOUT", checks=FAILURE)
    add("stall mid-EHLO reply", "stall_mid_ehlo", "ETIMEOUT", checks=FAILURE)
    # one byte every 200 ms: no single wait times out, the session deadline must
    add("EHLO reply dripping, --deadline-ms 2000", "drip_ehlo", "ETIMEOUT",
        args=["--deadline-ms", "2000"], max_ms=2000 + MARGIN, checks=FAILURE)
    # No deadline given: the default one ends the drip (a driver built with
    # TLSMAIL_DEFAULT_DEADLINE_MS=1500, since the real default is 10 minutes).
    add("EHLO reply dripping, default deadline", "drip_ehlo", "ETIMEOUT",
        max_ms=1500 + MARGIN, checks=FAILURE, driver="itest-deadline1500")
    add("plaintext SMTP server on the implicit-TLS port", "plaintext_server", "EPLAINTEXT",
        checks=[no_handshake, one_connection,
                lambda s, r: None if s.layer_bytes("raw")[:1] == b"\x16"
                else "client sent %r, not a ClientHello" % s.layer_bytes("raw")[:40]])
    add("stall mid-handshake", "stall_mid_handshake", "ETIMEOUT", checks=[one_connection])
    add("stall after 354 (4 MB message, server not reading)", "stall_after_354", "ETIMEOUT",
        msg="big", checks=[no_final_dot, one_connection])
    # The verdict on a sent message may be slower than the per-wait timeout
    # (RFC 5321 4.5.3.2.6); only the session deadline cuts that wait off.
    add("stall after the final dot: the deadline ends it", "stall_after_dot", "EUNKNOWN",
        args=["--deadline-ms", "3000"], max_ms=3000 + MARGIN,
        checks=[one_connection, slower_than(3000)])
    for sc in ("slow_verdict", "slow_verdict_pipelined", "slow_verdict_bdat"):
        add("verdict 2.5 s after the end of the message, timeout 1 s (%s)" % sc, sc, "OK",
            max_ms=2500 + MARGIN, checks=[one_connection, script_completed, slower_than(2500),
                                          stored(normalised(MSG_BDAT)) if "bdat" in sc else message_received],
            msg=MSG_BDAT if "bdat" in sc else None)
    add("QUIT 221, then neither close_notify nor close", "quit_221_no_close", "OK",
        checks=[one_connection, message_received])

    # TLS parameters
    for name, sc in [("TLS 1.0-only server", "tls10_only"),
                     ("CBC-only suites (ECDHE-RSA-AES128-SHA)", "tls_cbc_only"),
                     ("RSA key exchange only (AES128-SHA, AES128-GCM-SHA256)", "tls_rsa_kex_only"),
                     ("DHE only (DHE-RSA-AES128-GCM-SHA256)", "tls_dhe_only")]:
        add(name, sc, "ETLS", checks=[no_handshake, no_smtp, one_connection])

    # ---- STARTTLS ----
    S = dict(group="starttls")
    st_ok = [message_stored, one_connection, plain_only_ehlo_starttls]
    add("STARTTLS: well-behaved", "st_ok", "OK",
        checks=st_ok + [verbs_are("EHLO", "STARTTLS", layer="plain")], **S)
    add("STARTTLS: not offered", "st_missing", "ESTARTTLS",
        checks=ST_FAILURE + [no_handshake, no_verbs("STARTTLS")], **S)
    for code, err in [("454", "ESTARTTLS"), ("502", "ESTARTTLS"), ("421", "ETRANSIENT")]:
        add("STARTTLS answered %s" % code, "st_reply_" + code, err,
            checks=ST_FAILURE + [no_handshake], **S)
    # Refused at the plaintext greeting: not even QUIT goes out in clear.
    add("STARTTLS: greeting 554", "st_greet_554", "EPERMANENT",
        checks=ST_FAILURE + [no_handshake, no_verbs("QUIT")], **S)
    add("STARTTLS: EHLO 500 (HELO only)", "st_ehlo_500", "ESTARTTLS",
        checks=ST_FAILURE + [no_handshake], **S)
    add("STARTTLS: 220 + injected EHLO reply in one segment", "st_220_injected",
        "ESTARTTLS", checks=ST_FAILURE + [no_handshake, no_tls_data], **S)
    add("STARTTLS: 220 + fragment without CRLF", "st_220_fragment", "ESTARTTLS",
        checks=ST_FAILURE + [no_handshake, no_tls_data], **S)
    add("STARTTLS: bytes after 220 in a later segment", "st_220_late_bytes",
        "ESTARTTLS", checks=ST_FAILURE + [no_tls_data], **S)
    add("STARTTLS: a 220 with the EHLO reply, before STARTTLS was sent", "st_220_before_starttls",
        "ESTARTTLS", checks=ST_FAILURE + [no_handshake, no_tls_data, no_verbs("STARTTLS")], **S)
    add("STARTTLS: '454' + '235 ok' at once", "st_454_then_235", "ESTARTTLS",
        checks=ST_FAILURE + [no_handshake], **S)
    add("STARTTLS: AUTH list changes after TLS", "st_auth_changes", "OK", args=AUTH_PLAIN,
        checks=st_ok + [verbs_are("EHLO", "STARTTLS", layer="plain"),
                        verbs_are("EHLO", "AUTH", "MAIL", "RCPT", "DATA", *MSG_VERBS, "QUIT")],
        **S)
    add("STARTTLS: offered again after TLS", "st_starttls_again", "OK",
        checks=st_ok + [verbs_are("EHLO", "STARTTLS", layer="plain"),
                        verbs_are("EHLO", "MAIL", "RCPT", "DATA", *MSG_VERBS, "QUIT")], **S)
    proto_cases(add, ok)
    return C


def proto_cases(add, ok):
    T_SHORT = ["--auth", "xoauth2", "--user", USER, "--token", TOKEN_SHORT]
    T_LONG = ["--auth", "xoauth2", "--user", USER, "--token", TOKEN_LONG]
    B_SHORT = ["--auth", "oauthbearer", "--user", USER, "--token", TOKEN_SHORT]
    B_LONG = ["--auth", "oauthbearer", "--user", USER, "--token", TOKEN_LONG]
    queue = stdout_has("queue H0ST1LE")
    # -- OAuth 2.0: the initial response on the AUTH line only when it fits 512 octets
    add("XOAUTH2: short token on the AUTH line", "xoauth2_ir", "OK", args=T_SHORT,
        checks=ok + [queue, has_line(b"AUTH XOAUTH2 " + xoauth2(USER, TOKEN_SHORT))])
    add("XOAUTH2: 6 KB token after an empty 334", "xoauth2_334", "OK", args=T_LONG,
        checks=ok + [queue, has_line(b"AUTH XOAUTH2"),
                     raw_line_after("AUTH XOAUTH2", xoauth2(USER, TOKEN_LONG))])
    add("OAUTHBEARER: short token on the AUTH line, host and port", "oauthbearer_ir", "OK",
        args=B_SHORT, checks=ok + [has_line(
            lambda srv: b"AUTH OAUTHBEARER " + oauthbearer(USER, TOKEN_SHORT, srv.port))])
    add("OAUTHBEARER: 6 KB token after an empty 334", "oauthbearer_334", "OK", args=B_LONG,
        checks=ok + [has_line(b"AUTH OAUTHBEARER"), lambda srv, res: raw_line_after(
            "AUTH OAUTHBEARER", oauthbearer(USER, TOKEN_LONG, srv.port))(srv, res)])
    def no_token_shown(srv, res):
        if TOKEN_SHORT in res["stderr"] + res["stdout"] or TOKEN_LONG in res["stderr"] + res["stdout"]:
            return "the token shows in the driver's output"
    refused = [nothing_after(), describes("(OAuth error status: 401)"), no_token_shown,
               describes("server said: 535 5.7.8 Username and Password not accepted")]
    for mech, answer, args in (("XOAUTH2", b"", T_SHORT), ("OAUTHBEARER", b"AQ==", B_SHORT)):
        add("%s: error challenge answered %r, then EAUTH" % (mech, answer), mech.lower() + "_error",
            "EAUTH", args=args, checks=FAILURE[1:] + refused + [raw_line_after("AUTH " + mech, answer)])
    add("XOAUTH2: 6 KB token after the 334, error challenge answered, then EAUTH",
        "xoauth2_334_error", "EAUTH", args=T_LONG,
        checks=FAILURE[1:] + refused + [raw_line_after("AUTH XOAUTH2", xoauth2(USER, TOKEN_LONG)),
                                        raw_line_after(xoauth2(USER, TOKEN_LONG).decode(), b"")])
    add("XOAUTH2: 235 after the error challenge", "xoauth2_error_then_235", "EPROTO", args=T_SHORT,
        checks=FAILURE[1:] + [nothing_after()])
    add("AUTO with a password and a token: OAUTHBEARER", "oauth_auto", "OK",
        args=["--auth", "auto", "--user", USER, "--pass", "pw", "--token", TOKEN_SHORT],
        checks=ok + [has_line(lambda srv: b"AUTH OAUTHBEARER " + oauthbearer(USER, TOKEN_SHORT, srv.port))])
    add("XOAUTH2 asked, server offers PLAIN LOGIN: ENOMECH names the offer", "auth_login_only",
        "ENOMECH", args=T_SHORT,
        checks=FAILURE + [verbs_are("EHLO"), quotes_no_reply,
                          describes("(XOAUTH2 asked for; the server offers AUTH LOGIN CRAM-MD5)")])
    add("PLAIN asked, server offers LOGIN: the hint names LOGIN", "auth_login_only", "ENOMECH",
        args=AUTH_PLAIN, checks=FAILURE + [verbs_are("EHLO"),
                                           describes("(PLAIN asked for; the server offers AUTH LOGIN CRAM-MD5)")])
    add("AUTH only in the old AUTH= form", "auth_eq_form_only", "OK", args=AUTH_PLAIN,
        checks=ok + [verbs_are("EHLO", "AUTH", "MAIL", "RCPT", "DATA", *MSG_VERBS, "QUIT")])
    # -- client certificates (the server requires one from the test CA)
    for kind in ("ec", "rsa", "ec-sec1", "combined"):
        add("client certificate (%s) and AUTH PLAIN" % kind, "ccert_plain", "OK",
            args=AUTH_PLAIN + ["--cert", "{client-%s.crt}" % kind] +
            ([] if kind == "combined" else ["--key", "{client-%s.key}" % kind]),
            checks=ok + [peer_cn("tlsmail hostile client " + kind.split("-")[0]
                                 if kind != "combined" else "tlsmail hostile client ec")])
    # TLSMAIL_SMALL signs with other code (BearSSL's i31 RSA and generic EC)
    for kind in ("ec", "rsa"):
        add("TLSMAIL_SMALL: client certificate (%s), AES-GCM" % kind, "ccert_plain", "OK",
            args=AUTH_PLAIN + ["--cert", "{client-%s.crt}" % kind, "--key", "{client-%s.key}" % kind],
            checks=ok + [peer_cn("tlsmail hostile client " + kind), cipher_has("-GCM-")],
            driver="itest-small")
    add("client certificate and AUTH EXTERNAL", "ccert_external", "OK",
        args=["--auth", "external", "--cert", "{client-rsa.crt}", "--key", "{client-rsa.key}"],
        checks=ok + [has_line(b"AUTH EXTERNAL ="), peer_cn("tlsmail hostile client rsa")])
    add("AUTH EXTERNAL with an authorisation identity", "ccert_external", "OK",
        args=["--auth", "external", "--identity", "ops@example.org", "--cert", "{client-ec.crt}",
              "--key", "{client-ec.key}"],
        checks=ok + [has_line(b"AUTH EXTERNAL " + b64("ops@example.org"))])
    # the server's alert (ETLS), or its reset arriving first (ECLOSED)
    add("client certificate required, none given: the handshake fails", "ccert_required_none",
        ("ETLS", "ECLOSED"), checks=[no_smtp, one_connection])
    for name, files, want in (("a key of another certificate", ("client-ec.crt", "client-rsa.key"),
                               "ECLIENTCERT"),
                              ("an encrypted key", ("client-ec.crt", "client-enc.key"), "ECLIENTCERT"),
                              ("no key", ("client-ec.crt", "client-ec.crt"), "ECLIENTCERT"),
                              ("no certificate", ("client-ec.key", "client-ec.key"), "ECLIENTCERT"),
                              ("a missing file", ("client-none.crt", "client-ec.key"), "ECLIENTCERT")):
        add("client certificate: %s is refused before dialling" % name, "ok", want,
            args=["--cert", "{%s}" % files[0], "--key", "{%s}" % files[1]],
            checks=[lambda srv, res: None if srv.connections == 0 else "the client connected"])
    # -- SIZE, 8BITMIME, SMTPUTF8: declared when needed, refused here when missing
    add("SIZE 100, a larger message: ETOOBIG, no MAIL", "size_100", "ETOOBIG", msg=MSG_BIG,
        checks=FAILURE + [verbs_are("EHLO"), quotes_no_reply,
                          describes("(%d octets; the server's SIZE limit is 100)" % len(normalised(MSG_BIG)))])
    add("SIZE= is the normalised size, not the dot-stuffed one", "size_ok", "OK",
        checks=ok + [has_line(b"MAIL FROM:<sender@example.org> SIZE=%d" % len(normalised(MSG)))])
    add("SIZE= from tlsmail_message_size, step by step", "size_ok", "OK",
        args=["--api", "stream", "--chunk", "5", "--size", "auto", "--body", "7bit"],
        checks=[one_connection, message_received,
                has_line(b"MAIL FROM:<sender@example.org> SIZE=%d" % len(normalised(MSG)))])
    add("8-bit body, no 8BITMIME: ENOEXT, no MAIL", "no_8bitmime", "ENOEXT", msg=MSG8,
        checks=FAILURE + [verbs_are("EHLO"), quotes_no_reply,
                          describes("(needs 8BITMIME)")])
    add("ASCII body, no 8BITMIME: sent, no BODY=", "no_8bitmime_ok", "OK",
        checks=ok + [has_line(b"MAIL FROM:<sender@example.org> SIZE=%d" % len(normalised(MSG)))])
    add("ASCII body to an 8BITMIME server: no BODY=", "8bitmime_ok", "OK",
        checks=ok + [has_line(b"MAIL FROM:<sender@example.org>")])
    add("8-bit body to an 8BITMIME server: BODY=8BITMIME", "8bitmime_ok", "OK", msg=MSG8,
        checks=[one_connection, stored(MSG8.replace(b"\n.dot", b"\n..dot")),
                has_line(b"MAIL FROM:<sender@example.org> BODY=8BITMIME")])
    add("ASCII message, SMTPUTF8 offered: not declared", "smtputf8_ok", "OK",
        checks=ok + [has_line(b"MAIL FROM:<sender@example.org>")])
    add("8-bit Subject: SMTPUTF8 declared", "smtputf8_ok", "OK", msg=MSG_UTF8_HEADER,
        checks=[one_connection,
                has_line(b"MAIL FROM:<sender@example.org> BODY=8BITMIME SMTPUTF8")])
    add("8-bit recipient: SMTPUTF8 declared", "smtputf8_ok", "OK",
        args=["--to", "j\u00fcrgen@example.org"],
        checks=[one_connection, has_line(b"MAIL FROM:<sender@example.org> SMTPUTF8"),
                has_line("RCPT TO:<j\u00fcrgen@example.org>".encode())])
    add("8-bit Subject, no SMTPUTF8: ENOEXT, no MAIL", "no_smtputf8", "ENOEXT", msg=MSG_UTF8_HEADER,
        checks=FAILURE + [verbs_are("EHLO"), quotes_no_reply, describes("needs SMTPUTF8")])
    add("stream API, server without 8BITMIME: data_write refuses 8-bit, no final dot",
        "stream_no_8bitmime", "ENOEXT", msg=MSG8, args=["--api", "stream", "--chunk", "4096"],
        checks=[no_final_dot, one_connection,
                lambda srv, res: None if b"caf\xc3" not in srv.tls else "the 8-bit octets went out"])
    # -- DSN
    dsn = ["--api", "sendex", "--ret", "hdrs", "--envid", "QQ 314+x=y", "--notify",
           "success,failure", "--orcpt", "a+b@example.org"]
    add("DSN: RET, ENVID, NOTIFY, ORCPT, xtext-encoded", "dsn_ok", "OK", args=dsn,
        checks=ok + [has_line(b"MAIL FROM:<sender@example.org> RET=HDRS ENVID=QQ+20314+2Bx+3Dy"),
                     has_line(b"RCPT TO:<rcpt@example.org> NOTIFY=SUCCESS,FAILURE "
                              b"ORCPT=rfc822;a+2Bb@example.org")])
    # 64 "+" are 384 octets as RFC 6533 writes them: a valid address whose
    # ORCPT outgrows the 500 characters
    long_orcpt = "+" * 64 + "@" + "\u00e9" * 30 + "." + "\u00e9" * 30 + ".org"
    add("DSN: an ORCPT too long once encoded is refused before dialling", "dsn_ok", "EINVAL",
        args=["--api", "sendex", "--notify", "failure", "--orcpt", long_orcpt],
        checks=[lambda srv, res: None if srv.connections == 0 else "the client connected"])
    add("DSN options, server without DSN: left out", "8bitmime_ok", "OK", args=dsn,
        checks=ok + [has_line(b"MAIL FROM:<sender@example.org>"),
                     has_line(b"RCPT TO:<rcpt@example.org>")])
    add("DSN: NOTIFY=NEVER with another value is refused here", "dsn_ok", "EINVAL",
        args=["--api", "sendex", "--notify", "never,failure"],
        checks=[lambda srv, res: None if srv.connections == 0 else "the client connected"])
    # -- BDAT (CHUNKING)
    add("BDAT: MAIL, RCPT, BDAT LAST and QUIT in one flight", "bdat_inflight", "OK", msg=MSG_BDAT,
        checks=[one_connection, script_completed, stored(normalised(MSG_BDAT)),
                bdat_chunks((len(normalised(MSG_BDAT)), True)), no_verbs("DATA"),
                stdout_has("queue B0AT1"),
                has_line(b"BDAT %d LAST" % len(normalised(MSG_BDAT)))])
    add("BDAT without PIPELINING: each reply awaited", "bdat_stepwise", "OK", msg=MSG_BDAT,
        checks=[one_connection, script_completed, stored(normalised(MSG_BDAT)),
                stdout_has("queue B0AT2"), no_verbs("DATA")])
    add("BDAT, three recipients: the message waits for their replies", "bdat_three_rcpt", "OK",
        args=THREE, checks=[one_connection, script_completed, stored(normalised(MSG)),
                            first_after("replied", b"BDAT "), stdout_has("queue B0AT3")])
    add("BDAT, one of three recipients refused: no BDAT at all", "bdat_three_rcpt_one_refused",
        "EPERMANENT", args=THREE, checks=[no_verbs("BDAT", "DATA"), no_message, nothing_after()])
    add("BDAT in the flight, the one recipient refused", "bdat_inflight_refused", "EPERMANENT",
        checks=[one_connection, lambda srv, res: None if res.get("stage") == "RCPT TO"
                else "stage %r" % res.get("stage")])
    add("BDAT in the flight, partial delivery, every recipient refused, the chunk taken anyway: "
        "the last refusal", "bdat_partial_none", "EPERMANENT",
        args=["--api", "sendex", "--to", "a@example.org", "--to", "b@example.org", "--partial"],
        checks=[one_connection, quotes_reply("550 5.1.2 no such user either"), stdout_has("queue -"),
                stdout_has("rcpt 0 550 5.1.1 5.1.1 no such user", "rcpt 1 550 5.1.2 5.1.2 no such user either")])
    add("BDAT in the flight, partial delivery, every recipient refused, the chunk refused: "
        "the server's word on it", "bdat_partial_none_refused", "EPERMANENT",
        args=["--api", "sendex", "--to", "a@example.org", "--to", "b@example.org", "--partial"],
        checks=[one_connection, quotes_reply("554 5.5.1 Error: no valid recipients"), stdout_has("queue -"),
                stdout_has("rcpt 0 550 5.1.1 5.1.1 no such user", "rcpt 1 450 4.2.1 4.2.1 later")])
    add("BDAT in the flight, connection lost: maybe delivered", "bdat_inflight_lost", "EUNKNOWN",
        checks=[one_connection, stored(normalised(MSG))])
    add("BDAT, connection lost after the chunk: maybe delivered", "bdat_stepwise_lost", "EUNKNOWN",
        checks=[one_connection, stored(normalised(MSG))])
    # -- per-recipient results, delivery to the accepted ones
    sendex = ["--api", "sendex"]
    add("results: one of three refused (PIPELINING), the send stops there",
        "rcpt_one_of_three_550_pipelining", "EPERMANENT", args=sendex + THREE,
        checks=[no_message, nothing_after(), stdout_has(
            "rcpt 0 250 - ok", "rcpt 1 550 5.1.1 5.1.1 no such user", "rcpt 2 0 - ")])
    add("partial: one of three refused, the others get it", "partial_pipelined", "OK",
        args=sendex + THREE + ["--partial"],
        checks=[message_stored, one_connection, stdout_has(
            "rcpt 0 250 2.1.5 2.1.5 ok", "rcpt 1 550 5.1.1 5.1.1 no such user here",
            "rcpt 2 250 2.1.5 2.1.5 ok", "queue H0ST1LE")])
    add("partial: all refused, DATA refused: EPERMANENT, no message", "partial_pipelined_none",
        "EPERMANENT", args=sendex + ["--to", "a@example.org", "--to", "b@example.org", "--partial"],
        checks=[no_message, nothing_after(), quotes_reply("554 5.5.1 no valid recipients"),
                stdout_has("rcpt 0 550 5.1.1 5.1.1 no", "rcpt 1 450 4.2.1 4.2.1 later")])
    add("partial: all refused, DATA answered 354 anyway: no message, the last refusal quoted",
        "partial_pipelined_none_354", "ETRANSIENT",
        args=sendex + ["--to", "a@example.org", "--to", "b@example.org", "--partial"],
        checks=[no_message, nothing_after(), quotes_reply("450 4.2.1 later"),
                lambda srv, res: None if res.get("stage") == "RCPT TO" else "stage %r" % res.get("stage")])
    # -- tlsmail_transact: many messages on one client
    transact = ["--api", "transact"]
    add("transact: MAIL refused, the replies after it read, the 550 quoted; RSET, then one flight",
        "transact_mail_refused_then_ok", "OK", args=transact,
        checks=[one_connection, script_completed,
                stdout_has("first EPERMANENT MAIL FROM", "again OK", "queue TR4N1"),
                quotes_reply("550 5.7.1 sender refused")])
    # ... and tlsmail_transact_begin (its envelope, the message streamed by
    # DATA), the same wire where the server offers no CHUNKING
    begin = ["--api", "begin", "--chunk", "7"]
    again = verbs_are("EHLO", "MAIL", "RCPT", "RCPT", "RCPT", "RSET", "MAIL", "RCPT", "RCPT", "RCPT", "DATA",
                      *MSG_VERBS, "QUIT")
    for name, api in (("transact", transact), ("transact_begin", begin)):
        add("%s: one of three refused, every reply read, no DATA; RSET, then DATA" % name,
            "transact_rcpt_refused_then_data", "OK", args=api + THREE,
            checks=[message_stored, one_connection,
                    stdout_has("first EPERMANENT RCPT TO", "again OK", "rcpt 0 250 2.1.5 2.1.5 ok",
                               "rcpt 1 550 5.1.1 5.1.1 no such user here", "rcpt 2 250 2.1.5 2.1.5 ok"),
                    quotes_reply("550 5.1.1 no such user here"), again])
        add("%s without PIPELINING: every recipient asked after a refusal, the first kept" % name,
            "transact_stepwise_every_rcpt_asked", "OK", args=api + THREE,
            checks=[message_stored, one_connection,
                    stdout_has("first EPERMANENT RCPT TO", "again OK", "rcpt 0 250 2.1.5 2.1.5 ok",
                               "rcpt 1 550 5.1.1 5.1.1 no such user here",
                               "rcpt 2 450 4.2.2 4.2.2 mailbox full"),
                    quotes_reply("550 5.1.1 no such user here"), again])
    add("transact_begin: MAIL and three RCPTs in one write, DATA after their replies, no BDAT",
        "begin_pipelined_then_data", "OK", args=begin + THREE,
        checks=[message_stored, one_connection, first_after("replied", b"DATA\r\n"), no_verbs("BDAT"),
                stdout_has("first OK message", "rcpt 0 250 2.1.5 2.1.5 ok", "rcpt 2 250 2.1.5 2.1.5 ok",
                           "queue H0ST1LE"),
                verbs_are("EHLO", "MAIL", "RCPT", "RCPT", "RCPT", "DATA", *MSG_VERBS, "QUIT")])
    add("transact_begin: MAIL refused, the RCPT reply read, the 550 quoted; RSET, then DATA",
        "begin_mail_refused_then_ok", "OK", args=begin,
        checks=[message_stored, one_connection, stdout_has("first EPERMANENT MAIL FROM", "again OK"),
                quotes_reply("550 5.7.1 sender refused"),
                verbs_are("EHLO", "MAIL", "RCPT", "RSET", "MAIL", "RCPT", "DATA", *MSG_VERBS, "QUIT")])
    add("transact_begin, partial: one of three refused, DATA, the others get it", "begin_partial", "OK",
        args=begin + THREE + ["--partial"],
        checks=[message_stored, one_connection,
                stdout_has("first OK message", "rcpt 1 550 5.1.1 5.1.1 no such user here", "queue H0ST1LE"),
                verbs_are("EHLO", "MAIL", "RCPT", "RCPT", "RCPT", "DATA", *MSG_VERBS, "QUIT")])
    add("partial, one command at a time: a 450 noted, the others get it", "partial_stepwise",
        "OK", args=sendex + THREE + ["--partial"],
        checks=[message_stored, one_connection, stdout_has(
            "rcpt 1 450 4.2.2 4.2.2 mailbox full", "rcpt 2 250 2.1.5 2.1.5 ok")])
    # -- more than TLSMAIL_RCPT_MAX (100) recipients: transactions of 100
    # at most against a server that takes no more (Gmail's 452 4.5.3)
    def rcpts(n, first=1):
        out = []
        for i in range(first, first + n):
            out += ["--to", "r%d@example.org" % i]
        return out
    R150, R100, R120 = rcpts(150), rcpts(100), rcpts(120)
    quit_last = [quit_once_at_end, one_connection]
    for name, wire in (("plain", MSG_WIRE), ("pipe", MSG_WIRE), ("bdat", normalised(MSG)),
                       ("bdat_nopipe", normalised(MSG))):
        verb = "BDAT" if name.startswith("bdat") else "DATA"
        for api in ("client", "sendex", "transact"):
            add("150 recipients (%s, %s): 100 + 50, a message each, QUIT once" % (name, api),
                "gmail_" + name, "OK", args=["--api", api] + R150,
                checks=quit_last + [transactions((100, wire), (50, wire)), body_verbs(verb, verb)] +
                ([stdout_has("delivered " + "1" * 150, "rcpt 149 250 2.1.5 2.1.5 OK")]
                 if api != "client" else []))
        add("101 recipients (%s): 100 + 1" % name, "gmail_" + name, "OK", args=rcpts(101),
            checks=quit_last + [transactions((100, wire), (1, wire))])
        add("100 recipients (%s): one transaction, as before" % name, "gmail_" + name, "OK",
            args=["--api", "sendex"] + R100,
            checks=quit_last + [transactions((100, wire)), stdout_has("delivered " + "1" * 100)])
        # DELIVER_ALL: a refusal in the second group ends the send there
        add("150 recipients (%s), r120 refused: EPARTIAL, 100 have it, no 2nd message" % name,
            "gmail_%s_550_r120" % name, "EPARTIAL", args=["--api", "sendex"] + R150,
            checks=[one_connection, no_verbs("QUIT"), no_message_after_mail(2),
                    # pipelined (the 2nd group of 50 fits one flight): all 50 RCPTs
                    # went, and with DATA as for one transaction (never the message);
                    # how many the server answered before the client left varies
                    transactions((100, wire), (None, None)),
                    rcpts_after_mail(2, 50 if name in ("pipe", "bdat") else 20),
                    body_verbs(verb) if name != "pipe" else lambda srv, res: None,
                    stdout_has("delivered " + "1" * 100 + "0" * 50, "class PARTIAL",
                               "rcpt 99 250 2.1.5 2.1.5 OK", "rcpt 100 250 2.1.5 2.1.5 OK",
                               "rcpt 118 250 2.1.5 2.1.5 OK",
                               "rcpt 119 550 5.1.1 5.1.1 no such user r120",
                               "rcpt 120 0 - ", "rcpt 149 0 - "),
                    describes("delivered to 100 of 150 recipients"),
                    quotes_reply("550 5.1.1 no such user r120")])
        add("150 recipients (%s), connection lost after the 1st message: EPARTIAL" % name,
            "gmail_%s_lost" % name, "EPARTIAL", args=["--api", "sendex"] + R150,
            checks=[one_connection, transactions((100, wire)),
                    stdout_has("delivered " + "1" * 100 + "0" * 50, "class PARTIAL"),
                    describes("delivered to 100 of 150 recipients"), quotes_no_reply])
        # DELIVER_ACCEPTED: a group with nobody accepted is RSET, the next goes
        add("partial, 150 recipients (%s), the first 100 refused: RSET, the 50 get it" % name,
            "gmail_%s_first_refused" % name, "OK", args=["--api", "sendex", "--partial"] + R150,
            checks=quit_last + [transactions((100, None), (50, wire)), rset_between,
                                stdout_has("delivered " + "0" * 100 + "1" * 50,
                                           "rcpt 0 550 5.1.1 5.1.1 no such user")])
        add("partial, 150 recipients (%s), the last 50 refused: the 100 have it, OK" % name,
            "gmail_%s_second_refused" % name, "OK", args=["--api", "sendex", "--partial"] + R150,
            checks=[one_connection, transactions((100, wire), (50, None)),
                    stdout_has("delivered " + "1" * 100 + "0" * 50,
                               "rcpt 149 550 5.1.1 5.1.1 no such user")])
    add("150 recipients, the 2nd message refused: EPARTIAL, the 554 quoted", "gmail_pipe_body_refused",
        "EPARTIAL", args=["--api", "sendex"] + R150,
        checks=[one_connection, transactions((100, MSG_WIRE), (50, None)),
                stdout_has("delivered " + "1" * 100 + "0" * 50),
                describes("delivered to 100 of 150 recipients"),
                quotes_reply("554 5.7.1 message refused as spam")])
    add("150 recipients, r120 refused, transact: EPARTIAL, every one of its group asked",
        "gmail_pipe_550_r120", "EPARTIAL", args=["--api", "transact"] + R150,
        checks=[one_connection, transactions((100, MSG_WIRE), (50, None)), body_verbs("DATA"),
                stdout_has("first EPARTIAL RCPT TO", "delivered " + "1" * 100 + "0" * 50,
                           "rcpt 119 550 5.1.1 5.1.1 no such user r120", "rcpt 149 250 2.1.5 2.1.5 OK"),
                describes("delivered to 100 of 150 recipients")])
    add("150 recipients, the first refused: the refusal as before, one transaction",
        "gmail_plain_first_refused", "EPERMANENT", args=["--api", "sendex"] + R150,
        checks=[one_connection, transactions((1, None)), no_verbs("DATA", "BDAT"),
                quotes_reply("550 5.1.1 no such user")])
    # 61 to 100 recipients went a command at a time (TLSMAIL__PIPE_MAX was 64)
    for api in ("sendex", "transact"):
        add("100 recipients, PIPELINING (%s): MAIL and every RCPT in one flight" % api,
            "pipe_100_one_flight", "OK", args=["--api", api] + R100, timeout_ms=3000,
            checks=[one_connection, stdout_has("delivered " + "1" * 100)])
    add("transact_begin, 101 recipients: EINVAL before MAIL", "gmail_pipe", "EINVAL",
        args=["--api", "begin"] + rcpts(101), checks=[no_verbs("MAIL", "RCPT", "DATA"), quotes_no_reply])
    # TLSMAIL_RCPT_MAX 50: groups small enough to pipeline, BDAT in the
    # flight (partial) without QUIT but for the last
    r50 = ["--api", "sendex", "--partial"] + R120
    add("RCPT_MAX 50, partial, BDAT in each flight, QUIT in the last only", "gmail_bdat", "OK",
        args=r50, driver="itest-rcptmax50",
        checks=quit_last + [transactions((50, normalised(MSG)), (50, normalised(MSG)), (20, normalised(MSG))),
                            stdout_has("delivered " + "1" * 120), flights_before_quit(3)])
    add("RCPT_MAX 50, PIPELINING: MAIL, RCPTs, DATA in each flight, QUIT after the last dot only",
        "gmail_pipe", "OK", args=["--api", "client"] + R120, driver="itest-rcptmax50",
        checks=quit_last + [transactions((50, MSG_WIRE), (50, MSG_WIRE), (20, MSG_WIRE)),
                            flights_before_quit(3), body_verbs("DATA", "DATA", "DATA")])
    add("RCPT_MAX 50, r120 refused in the 3rd group: EPARTIAL, delivered to 100 of 120",
        "gmail_pipe_550_r120", "EPARTIAL", args=["--api", "sendex"] + R120, driver="itest-rcptmax50",
        checks=[one_connection, no_verbs("QUIT"), no_message_after_mail(3),
                transactions((50, MSG_WIRE), (50, MSG_WIRE), (20, None)),
                stdout_has("delivered " + "1" * 100 + "0" * 20, "rcpt 119 550 5.1.1 5.1.1 no such user r120"),
                describes("delivered to 100 of 120 recipients")])
    add("RCPT_MAX 50, partial, the last group refused, DATA answered 354 anyway: OK, no QUIT",
        "gmail_pipe_last_refused_354", "OK", args=r50, driver="itest-rcptmax50",
        checks=[one_connection, no_verbs("QUIT", "RSET"), no_message_after_mail(3),
                transactions((50, MSG_WIRE), (50, MSG_WIRE), (20, None)),
                stdout_has("delivered " + "1" * 100 + "0" * 20)])
    add("RCPT_MAX 50, partial, a middle group refused, DATA answered 354 anyway: EPARTIAL, no RSET",
        "gmail_pipe_middle_refused_354", "EPARTIAL", args=r50, driver="itest-rcptmax50",
        checks=[one_connection, no_verbs("QUIT", "RSET"), no_message_after_mail(2),
                transactions((50, MSG_WIRE), (50, None)), stdout_has("delivered " + "1" * 50 + "0" * 70),
                describes("delivered to 50 of 120 recipients")])
    add("RCPT_MAX 50, partial, the first group refused, DATA in its flight refused: RSET, on",
        "gmail_pipe_first_refused", "OK", args=r50, driver="itest-rcptmax50",
        checks=quit_last + [transactions((50, None), (50, None), (20, MSG_WIRE)),
                            stdout_has("delivered " + "0" * 100 + "1" * 20)])


# ---- running -----------------------------------------------------------------

RESULT_RE = re.compile(r"^result (\S+) (-?\d+) (.+) (\d+)$", re.M)


def case_msgfile(case, msgfile, bigfile):
    """The message file of a case: the default one, the big one, or its own bytes."""
    if case.msg is None:
        return msgfile
    if case.msg == "big":
        return bigfile
    path = os.path.join(os.path.dirname(msgfile), "msg-%s.eml" % hashlib.sha1(case.msg).hexdigest()[:12])
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(case.msg)
    return path


def run_case(case, driver, pki, msgfile, bigfile, verbose):
    sc = SCENARIOS[case.scenario]
    srv = hostile.HostileServer(sc, pki)
    port = srv.start()
    # "{name}": a file of the test PKI (client certificates and keys)
    args = [os.path.join(pki, a[1:-1]) if a.startswith("{") and a.endswith("}") else a
            for a in case.args]
    cmd = [driver, "--addr", "localhost:%d" % port, "--api", "client",
           "--cafile", os.path.join(pki, "ca.crt"), "--timeout-ms", str(case.timeout_ms),
           "--msg", case_msgfile(case, msgfile, bigfile)] + args
    if case.group == "starttls":
        cmd += ["--security", "starttls"]
    env = dict(os.environ, ITEST_TRACE="1" if verbose or case.trace else "0")
    res = {"wall_ms": None}
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=env,
                           timeout=case.timeout_ms / 1000 + 15)
        res["wall_ms"] = int((time.monotonic() - t0) * 1000)
        out, err, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        res["wall_ms"] = int((time.monotonic() - t0) * 1000)
        out, err, rc = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) \
            else (e.stdout or ""), "", None
    # the driver has exited, so its socket is closed: a server still busy
    # after this is stalling on purpose, and stop() ends that at once
    srv.wait_done(1.0)
    stopped = srv.stop()
    res["stderr"] = err
    res["stdout"] = out
    why = []
    m = RESULT_RE.search(out)
    if rc is None:
        why.append("driver hung (killed after %d ms)" % res["wall_ms"])
    elif rc < 0 or rc > 1:
        why.append("driver crashed or failed: exit %d, stderr %r" % (rc, err[-300:]))
    if not m:
        why.append("no result line in %r" % out[-200:])
        name = None
    else:
        name, stage, ms = m.group(1), m.group(3), int(m.group(4))
        res.update(name=name, stage=stage, ms=ms)
        if name not in case.expect:
            why.append("got %s (stage %s), wanted %s" % (name, stage, "|".join(sorted(case.expect))))
        if ms >= case.max_ms:
            why.append("driver reports %d ms, bound %d ms" % (ms, case.max_ms))
    if res["wall_ms"] >= case.max_ms + SPAWN_SLACK:
        why.append("took %d ms (wall), bound %d ms" % (res["wall_ms"], case.max_ms + SPAWN_SLACK))
    for chk in case.checks:
        try:
            r = chk(srv, res)
        except Exception as e:  # a broken check is a failure, not a crash
            r = "check %s raised %r" % (getattr(chk, "__name__", chk), e)
        if r:
            why.append(r)
    if not stopped:
        why.append("server thread did not stop")
    return why, out, err, srv


def client_certs(pki):
    """Client certificates from the test CA (clientAuth), made with the
    openssl CLI: EC in PKCS#8 and in SEC 1 form, RSA in PKCS#1 form, EC
    with its key in the same file, and an encrypted key. None, or why not."""
    ext = os.path.join(pki, "client.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=clientAuth\n")

    def run(*a):
        p = subprocess.run(a, capture_output=True, timeout=60, cwd=pki)
        if p.returncode != 0:
            raise RuntimeError("%s: %s" % (" ".join(a), p.stderr.decode()[-300:]))
    try:
        run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", "client-ec.key")
        run("openssl", "genrsa", "-traditional", "-out", "client-rsa.key", "2048")
        for kind in ("ec", "rsa"):
            run("openssl", "req", "-new", "-key", "client-%s.key" % kind, "-subj",
                "/O=tlsmail test/CN=tlsmail hostile client %s" % kind, "-out", "client-%s.csr" % kind)
            run("openssl", "x509", "-req", "-in", "client-%s.csr" % kind, "-CA", "ca.crt",
                "-CAkey", "ca.key", "-set_serial", "0x%x" % (0x1000 + len(kind)), "-days", "30",
                "-sha256", "-extfile", ext, "-out", "client-%s.crt" % kind)
        run("openssl", "ec", "-in", "client-ec.key", "-out", "client-ec-sec1.key")
        shutil.copy(os.path.join(pki, "client-ec.crt"), os.path.join(pki, "client-ec-sec1.crt"))
        run("openssl", "pkey", "-in", "client-ec.key", "-aes256", "-passout", "pass:x",
            "-out", "client-enc.key")
        with open(os.path.join(pki, "client-combined.crt"), "wb") as out:
            for n in ("client-ec.crt", "client-ec.key"):
                with open(os.path.join(pki, n), "rb") as f:
                    out.write(f.read())
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    return None


def srv_result(_why, out):
    m = RESULT_RE.search(out)
    return m.group(1) if m else "?"


def _ms(out):
    m = RESULT_RE.search(out)
    return m.group(4) if m else "?"


def build(cmd, what):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        return "%s: %s" % (what, (p.stderr or p.stdout)[-800:])
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=None, help="directory holding itest")
    ap.add_argument("-k", action="append", default=[], metavar="SUBSTR",
                    help="run only cases whose name or scenario contains SUBSTR (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="tlsmail-hostile.")
    try:
        return run_all(a, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_all(a, tmp):
    itest = os.path.join(a.build, "itest") if a.build else None
    if not itest or not os.access(itest, os.X_OK):
        itest = os.path.join(tmp, "itest")
        e = build(["gcc", "-std=c99", "-O1", "-DTLSMAIL_STARTTLS", "-I" + ROOT, "-o", itest,
                   os.path.join(TESTS, "integration", "itest.c"), "-lbearssl"], "build itest")
        if e:
            print("FAIL build itest: %s" % e)
            print("0 passed, 1 failed")
            return 1
    pki = os.path.join(tmp, "pki")
    p = subprocess.run(["bash", os.path.join(TESTS, "lib", "pki.sh"), pki], capture_output=True,
                       text=True, timeout=120)
    if p.returncode != 0:
        print("FAIL pki: %s" % p.stderr[-500:])
        print("0 passed, 1 failed")
        return 1
    e = client_certs(pki)
    if e:
        print("FAIL client certificates: %s" % e)
        print("0 passed, 1 failed")
        return 1
    msgfile = os.path.join(tmp, "msg.eml")
    with open(msgfile, "wb") as f:
        f.write(MSG)
    bigfile = os.path.join(tmp, "big.eml")
    with open(bigfile, "wb") as f:
        f.write(b"Subject: big\r\n\r\n" + (b"z" * 78 + b"\r\n") * (4 * 1024 * 1024 // 80))

    # itest again with one compile-time switch each, for the cases that name it
    drivers = {"itest": itest}
    for name, switch, what in (("itest-deadline1500", "-DTLSMAIL_DEFAULT_DEADLINE_MS=1500",
                                "a short default deadline"),
                               ("itest-small", "-DTLSMAIL_SMALL", "TLSMAIL_SMALL"),
                               ("itest-rcptmax50", "-DTLSMAIL_RCPT_MAX=50", "TLSMAIL_RCPT_MAX 50")):
        drivers[name] = os.path.join(tmp, name)
        e = build(["gcc", "-std=c99", "-O1", "-DTLSMAIL_STARTTLS", switch, "-I" + ROOT, "-o",
                   drivers[name], os.path.join(TESTS, "integration", "itest.c"), "-lbearssl"],
                  "build itest with " + what)
        if e:
            print("FAIL %s" % e)
            print("0 passed, 1 failed")
            return 1
    all_cases = cases()

    passed = failed = 0
    for c in all_cases:
        if a.k and not any(k in c.name or k in c.scenario for k in a.k):
            continue
        label = "%s [%s]" % (c.name, c.scenario)
        why, out, err, srv = run_case(c, drivers[c.driver], pki, msgfile, bigfile, a.verbose)
        if why:
            failed += 1
            print("FAIL %s: %s" % (label, "; ".join(why)))
            if a.verbose:
                print("  driver: %s  %s" % (out.strip(), err.strip()[-1500:]))
                print("  server: script_error=%s tls_error=%s plain=%r tls=%r" %
                      (srv.script_error, srv.tls_error, srv.plain[:300], srv.tls[:600]))
        else:
            passed += 1
            print("PASS %s (%s, %s ms)" % (label, srv_result(why, out), _ms(out)))
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
