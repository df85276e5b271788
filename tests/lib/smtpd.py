#!/usr/bin/python3
"""tests/lib/smtpd.py - a real SMTP server (aiosmtpd) for the tlsmail tests.

    /usr/bin/python3 tests/lib/smtpd.py --port N --cert F --key F --spool DIR
        [--mode implicit|starttls] [--user USER:PASS ...] [--host 127.0.0.1]

implicit (default): TLS from the first byte (RFC 8314, what tlsmail speaks).
starttls: plaintext greeting, STARTTLS required before anything else.
With --user, AUTH (PLAIN, LOGIN) is required before MAIL and only the given
credentials are accepted. --port 0 picks a free port.

Records, in DIR:
    NNN.eml   the message exactly as received (envelope.original_content:
              dot-unstuffed, CRLF line ends); written last, after NNN.json
    NNN.json  {"mail_from", "rcpt_tos", "mail_options", "rcpt_options",
               "auth_user"}
    events.log  one line per event: "<conn> <EVENT> [args]", conn being a
              per-connection number ("-" for events without a connection):
                ACCEPT      TCP connection accepted (before any TLS)
                SNI name    TLS ClientHello server name (implicit TLS only)
                CONNECT ip port   TLS done (implicit) / accepted (starttls):
                            the SMTP session starts, greeting is sent
                EHLO x, HELO x, STARTTLS, AUTH <MECH> <ok|fail>, MAIL <arg>,
                RCPT <arg>, DATA, RSET, NOOP, QUIT, <VERB> for any other
                known verb, UNKNOWN <verb> for unknown ones
                STORED NNN  a message was written
                DISCONNECT  connection closed
              Lines written before "- READY <port>" come from the server's
              own start-up self-check.
    port      the port, written when ready
When ready prints "READY <port>" on stdout (flushed). Runs until SIGTERM or
SIGINT, then exits 0.
"""
import argparse
import functools
import itertools
import json
import logging
import os
import signal
import ssl
import sys
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class EventLog:
    def __init__(self, path):
        self._f = open(path, "a", buffering=1, encoding="utf-8",
                       errors="backslashreplace")
        self._lock = threading.Lock()

    def write(self, conn, event, *args):
        parts = [str(conn), event] + [self._clean(a) for a in args if a is not None]
        with self._lock:
            self._f.write(" ".join(parts) + "\n")
            self._f.flush()

    @staticmethod
    def _clean(a):
        # One event per line, whatever a client sends.
        return str(a).encode("unicode_escape").decode("ascii").replace(" ", "\\x20") \
            if any(c in str(a) for c in "\r\n") else str(a)

    def close(self):
        with self._lock:
            self._f.close()


class Handler:
    def __init__(self, spool, events):
        self.spool = spool
        self.events = events
        self.count = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        n = next(self.count)
        base = os.path.join(self.spool, "%03d" % n)
        login = session.auth_data if isinstance(session.auth_data, str) else None
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "rcpt_options": list(envelope.rcpt_options),
            "auth_user": login,
        }
        # write-then-rename: a reader never sees half a file; .eml comes last
        for ext, data in ((".json", json.dumps(meta, indent=1).encode() + b"\n"),
                          (".eml", envelope.original_content or b"")):
            tmp = base + ext + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, base + ext)
        self.events.write(getattr(server, "conn_id", "-"), "STORED", "%03d" % n)
        return "250 2.0.0 OK stored as %03d" % n


def make_authenticator(users):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = False
        login = None
        if isinstance(auth_data, LoginPassword):
            try:
                login = auth_data.login.decode("utf-8")
                password = auth_data.password.decode("utf-8")
            except UnicodeDecodeError:
                login = password = None
            ok = login is not None and users.get(login) == password
        return AuthResult(success=ok, handled=False,
                          auth_data=login if ok else None)
    return authenticator


class LoggingSMTP(SMTP):
    """SMTP that logs every connection event and command verb."""

    def __init__(self, *args, events, conn_id, **kwargs):
        super().__init__(*args, **kwargs)
        self.events = events
        self.conn_id = conn_id
        for verb, method in list(self._smtp_methods.items()):
            self._smtp_methods[verb] = self._wrap(verb, method)

    def _wrap(self, verb, method):
        @functools.wraps(method)   # keeps the HELP syntax attributes
        async def wrapper(arg):
            if verb == "AUTH":
                mech = (arg or "").split()[0].upper() if (arg or "").split() else "-"
                ok = False
                try:
                    await method(arg)
                    ok = bool(self.session and self.session.authenticated)
                finally:
                    self.events.write(self.conn_id, "AUTH", mech, "ok" if ok else "fail")
                return None
            if verb in ("MAIL", "RCPT", "EHLO", "HELO"):
                self.events.write(self.conn_id, verb, arg)
            else:
                self.events.write(self.conn_id, verb)
            return await method(arg)
        return wrapper

    def connection_made(self, transport):
        first = self.transport is None
        super().connection_made(transport)
        if first:
            peer = transport.get_extra_info("peername") or ("?", "?")
            self.events.write(self.conn_id, "CONNECT", peer[0], peer[1])

    def connection_lost(self, error):
        self.events.write(self.conn_id, "DISCONNECT")
        super().connection_lost(error)


class LoggingController(Controller):
    def __init__(self, handler, events, **kwargs):
        self.events = events
        self._ids = itertools.count(1)
        super().__init__(handler, **kwargs)

    def factory(self):
        # Called by asyncio for each accepted TCP connection, before TLS.
        conn_id = next(self._ids)
        self.events.write(conn_id, "ACCEPT")
        return LoggingSMTP(self.handler, events=self.events, conn_id=conn_id,
                           **self.SMTP_kwargs)

    def _trigger_server(self):
        # With port 0 the self-check must use the port actually bound.
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        return super()._trigger_server()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--spool", required=True)
    p.add_argument("--mode", choices=("implicit", "starttls"), default="implicit")
    p.add_argument("--user", action="append", default=[], metavar="USER:PASS")
    p.add_argument("--ready-timeout", type=float, default=10.0)
    a = p.parse_args()

    users = {}
    for u in a.user:
        name, sep, pw = u.partition(":")
        if not sep:
            p.error("--user wants USER:PASS")
        users[name] = pw

    os.makedirs(a.spool, exist_ok=True)
    logging.basicConfig(level=logging.CRITICAL)   # aiosmtpd is chatty
    warnings.simplefilter("ignore")               # auth_require_tls=False warns
    events = EventLog(os.path.join(a.spool, "events.log"))

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.cert, a.key)
    if a.mode == "implicit":
        def sni(sslobj, name, _ctx):
            events.write("-", "SNI", name if name is not None else "(none)")
        ctx.sni_callback = sni

    kwargs = dict(hostname=a.host, port=a.port, server_hostname="localhost",
                  ready_timeout=a.ready_timeout, timeout=60)
    if a.mode == "implicit":
        # The whole connection is TLS: AUTH may be advertised at once.
        kwargs.update(ssl_context=ctx, auth_require_tls=False)
    else:
        kwargs.update(tls_context=ctx, require_starttls=True, auth_require_tls=True)
    if users:
        kwargs.update(authenticator=make_authenticator(users), auth_required=True)

    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.set())

    controller = LoggingController(Handler(a.spool, events), events, **kwargs)
    controller.start()
    port = controller.server.sockets[0].getsockname()[1]
    tmp = os.path.join(a.spool, "port.tmp")
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, os.path.join(a.spool, "port"))
    events.write("-", "READY", port)
    print("READY %d" % port, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        controller.stop(no_assert=True)
        events.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
