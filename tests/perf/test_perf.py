#!/usr/bin/python3
"""tests/perf/test_perf.py - what the speed features must still get right:
TLS session resumption (tlsmail_session, through tests/perf/sessdial.c),
tlsmail-send's session cache file, its streaming of large messages, its
--batch mode, and bench/many.c's one-connection sends. Speed itself is
measured by make bench, never asserted here.

    /usr/bin/python3 tests/perf/test_perf.py --build DIR [-k SUBSTR]... [--keep] [-v]

DIR may hold tlsmail-send and many (bench/many.c); sessdial is built
twice into a temporary directory (gcc, the project's warnings): with the
default session lifetime and with one of 4 seconds for the expiry cases.

Servers, all on 127.0.0.1, in this process: aiosmtpd with implicit TLS
(Python's ssl, session IDs, no tickets), one TLS context for all its ports
so one session cache serves them, recording for each connection whether
the handshake was resumed (SSLObject.session_reused) and every message.
In front of them taps: TCP relays that read the ClientHello on its way and
record the session ID it offers, so a case sees what the client offered,
not only what the server did with it.

Prints "PASS name" or "FAIL name: reason" per case and, last, exactly
"N passed, N failed"; exits 1 if any case failed. Every wait is bounded.
"""
import logging
import os
import select
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from testlib import (CaseFailure, check, normalise, registry, suite_main,  # noqa: E402
                     spki_pin, ROOT, PKI_SH, WARN)

FROM, TO = "sender@example.org", "rcpt@example.org"
RUN_TIMEOUT = 60.0
READY_TIMEOUT = 10.0


# ------------------------------------------------------------------ servers --

class TLSServer:
    """aiosmtpd in this process on nports ports with one TLS context."""

    def __init__(self, pki, nports=1, cert="good"):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import SMTP

        self.lock = threading.Lock()
        self.handshakes = []      # (port, resumed) per TLS connection
        self.messages = []        # (port, mail_from, rcpt_tos, content)
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                port = server.transport.get_extra_info("sockname")[1]
                with outer.lock:
                    outer.messages.append((port, envelope.mail_from, list(envelope.rcpt_tos),
                                           envelope.original_content))
                return "250 2.0.0 OK"

        class Smtp(SMTP):
            def connection_made(self, transport):
                super().connection_made(transport)
                obj = transport.get_extra_info("ssl_object")
                port = transport.get_extra_info("sockname")[1]
                with outer.lock:
                    outer.handshakes.append((port, bool(obj and obj.session_reused)))

        class Ctl(Controller):
            def factory(self):
                return Smtp(self.handler, **self.SMTP_kwargs)

            def _trigger_server(self):
                if self.port == 0 and self.server is not None:
                    self.port = self.server.sockets[0].getsockname()[1]
                return super()._trigger_server()

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(os.path.join(pki, cert + ".crt"), os.path.join(pki, cert + ".key"))
        ctx.options |= ssl.OP_NO_TICKET   # BearSSL resumes by session ID only
        self.ctls = []
        for _ in range(nports):
            c = Ctl(Handler(), hostname="127.0.0.1", port=0, ssl_context=ctx,
                    server_hostname="localhost", ready_timeout=READY_TIMEOUT,
                    auth_require_tls=False, auth_exclude_mechanism=["PLAIN", "LOGIN"])
            c.start()
            self.ctls.append(c)
        self.ports = [c.server.sockets[0].getsockname()[1] for c in self.ctls]
        self.port = self.ports[0]

    def mark(self):
        with self.lock:
            return len(self.handshakes), len(self.messages)

    def since(self, mark, settle=0.2):
        time.sleep(settle)   # the server logs after the client has gone
        with self.lock:
            return self.handshakes[mark[0]:], self.messages[mark[1]:]

    def alive(self):
        return True

    def stop(self):
        for c in self.ctls:
            c.stop(no_assert=True)


def client_hello_session_id(data):
    """The session ID of a TLS ClientHello at the start of data, as hex
    ("" for none), or None when data does not start with one."""
    # record: type 22, version, length; handshake: type 1, length(3),
    # client_version(2), random(32), session_id<0..32>
    if len(data) < 5 + 4 + 2 + 32 + 1 or data[0] != 22 or data[5] != 1:
        return None
    n = data[5 + 4 + 2 + 32]
    start = 5 + 4 + 2 + 32 + 1
    if n > 32 or len(data) < start + n:
        return None
    return data[start:start + n].hex()


class Tap:
    """A TCP relay to 127.0.0.1:target that records, per connection, the
    session ID the client's ClientHello offers. Threads end with stop()."""

    def __init__(self, target):
        self.target = target
        self.offers = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._relay, args=(c,), daemon=True)
            self.threads.append(t)
            t.start()

    def _relay(self, c):
        try:
            s = socket.create_connection(("127.0.0.1", self.target), timeout=5)
        except OSError:
            c.close()
            return
        first = b""
        recorded = False
        end = time.monotonic() + RUN_TIMEOUT
        try:
            while not self.stopping.is_set() and time.monotonic() < end:
                r, _, _ = select.select([c, s], [], [], 0.2)
                for src in r:
                    data = src.recv(65536)
                    if not data:
                        return
                    if src is c and not recorded:
                        first += data
                        sid = client_hello_session_id(first)
                        if sid is not None or len(first) > 512:
                            with self.lock:
                                self.offers.append(sid)
                            recorded = True
                    (s if src is c else c).sendall(data)
        except OSError:
            pass
        finally:
            c.close()
            s.close()

    def mark(self):
        with self.lock:
            return len(self.offers)

    def since(self, mark):
        with self.lock:
            return self.offers[mark:]

    def stop(self):
        self.stopping.set()
        self.sock.close()
        for t in self.threads:
            t.join(5)


# ------------------------------------------------------------------- build --

def build(build_dir, work):
    out = os.path.join(work, "bin")
    os.makedirs(out)
    bins = {}
    want = [("sessdial", os.path.join(HERE, "sessdial.c"), []),
            ("sessdial-4s", os.path.join(HERE, "sessdial.c"), ["-DTLSMAIL_SESSION_LIFETIME=4"])]
    given = os.path.join(build_dir, "tlsmail-send") if build_dir else None
    if given and os.access(given, os.X_OK):
        bins["tlsmail-send"] = given
    else:
        want.append(("tlsmail-send", os.path.join(ROOT, "examples", "tlsmail-send", "tlsmail-send.c"),
                     ["-DTLSMAIL_STARTTLS"]))
    many = os.path.join(build_dir, "many") if build_dir else None
    if many and os.access(many, os.X_OK):
        bins["many"] = many
    else:
        want.append(("many", os.path.join(ROOT, "bench", "many.c"), []))
    for name, src, extra in want:
        exe = os.path.join(out, name)
        subprocess.run(["gcc"] + WARN + ["-O2", "-I" + ROOT] + extra + [src, "-o", exe, "-lbearssl"],
                       check=True, timeout=180)
        bins[name] = exe
    return bins


# ------------------------------------------------------------------- suite --

class Result:
    def __init__(self, proc, wall):
        self.rc = proc.returncode
        self.stdout = proc.stdout.decode("utf-8", "replace")
        self.stderr = proc.stderr.decode("utf-8", "replace")
        self.wall = wall

    def lines(self, word):
        return [l.split() for l in self.stdout.splitlines() if l.startswith(word + " ")]

    def __str__(self):
        return "rc=%s wall=%.1fs stdout=%r stderr=%r" % (self.rc, self.wall, self.stdout[-600:],
                                                         self.stderr[-600:])


class Suite:
    def __init__(self, build_dir, work, verbose):
        self.build_dir, self.work, self.verbose = build_dir, work, verbose
        self.pki = os.path.join(work, "pki")
        self.servers = {}
        self.taps = []
        self.nfile = 0

    def setup(self):
        logging.getLogger("mail.log").setLevel(logging.CRITICAL)
        warnings.simplefilter("ignore")
        self.bins = build(self.build_dir, self.work)
        subprocess.run(["bash", PKI_SH, self.pki], check=True, timeout=120,
                       stdout=subprocess.DEVNULL)
        self.servers["good"] = TLSServer(self.pki, nports=2)

    def teardown(self):
        for t in self.taps:
            t.stop()
        for s in self.servers.values():
            try:
                s.stop()
            except Exception:
                pass

    def p(self, name):
        return os.path.join(self.pki, name)

    def path(self, name):
        self.nfile += 1
        return os.path.join(self.work, "%d-%s" % (self.nfile, name))

    def tap(self, port=None):
        t = Tap(port or self.servers["good"].port)
        self.taps.append(t)
        return t

    def run(self, cmd, stdin=b"", env=None, timeout=RUN_TIMEOUT):
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, input=stdin, capture_output=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CaseFailure("did not finish within %.0f s: %r" % (timeout, cmd))
        r = Result(proc, time.monotonic() - t0)
        if self.verbose:
            print("    $ %s\n    %s" % (" ".join(cmd), r))
        return r

    def sessdial(self, host, tap, *args, binary="sessdial", cafile="ca.crt"):
        cmd = [self.bins[binary], "--server", host, "--connect", str(tap.port)]
        if cafile:
            cmd += ["--cafile", self.p(cafile)]
        return self.run(cmd + list(args))


def expect_dials(r, want):
    """want: [(code, resumed)] for dial 1, 2, ..."""
    got = [(f[2], f[3]) for f in r.lines("dial")]
    exp = [(code, "resumed=%d" % res) for code, res in want]
    check(got == exp, "dials %s, want %s: %s" % (got, exp, r))


def build_cases(S):
    cases, case = registry()

    def good():
        return S.servers["good"]

    # ---- tlsmail_session in one process
    @case("resume_second_and_third_dial")
    def _():
        t = S.tap()
        m = good().mark()
        r = S.sessdial("localhost:465", t, "--dials", "3")
        expect_dials(r, [("OK", 0), ("OK", 1), ("OK", 1)])
        hs, msgs = good().since(m)
        check([x[1] for x in hs] == [False, True, True], "server handshakes (resumed?) %s" % hs)
        offers = t.since(0)
        check(len(offers) == 3 and offers[0] == "" and offers[1] and offers[1] == offers[2],
              "offered session IDs %s: none, then the one the server gave" % offers)
        subjects = sorted(c.split(b"Subject: ")[1].split(b"\r\n")[0] for _, _, _, c in msgs)
        check(subjects == [b"sessdial 1", b"sessdial 2", b"sessdial 3"], "stored %s" % subjects)

    @case("no_session_configured_every_handshake_full")
    def _():
        t = S.tap()
        m = good().mark()
        r = S.sessdial("localhost:465", t, "--dials", "2", "--no-session")
        expect_dials(r, [("OK", 0), ("OK", 0)])
        hs, msgs = good().since(m)
        check([x[1] for x in hs] == [False, False] and len(msgs) == 2, "server saw %s, %d messages"
              % (hs, len(msgs)))
        check(t.since(0) == ["", ""], "offered %s" % t.since(0))

    def exported(tap):
        f = S.path("session")
        r = S.sessdial("localhost:465", tap, "--export", f)
        check(r.rc == 0 and r.lines("export") == [["export", "OK"]], "export: %s" % r)
        with open(f) as fh:
            text = fh.read()
        check(text.startswith("tlsmail-session-1 localhost 465 "), "export text %r" % text[:60])
        return f, text

    @case("export_import_resumes_in_another_process")
    def _():
        t = S.tap()
        f, text = exported(t)
        sid = text.split()[7]
        m = good().mark()
        r = S.sessdial("localhost:465", t, "--import", f)
        check(r.lines("import") == [["import", "OK"]], "import: %s" % r)
        expect_dials(r, [("OK", 1)])
        hs, msgs = good().since(m)
        check(hs and hs[-1][1] is True and len(msgs) == 1, "server: %s, %d messages" % (hs, len(msgs)))
        check(t.since(1) == [sid], "offered %s, want the exported %s" % (t.since(1), sid))

    # The binding: a session verified for localhost is never offered to
    # another name, port or trust. Each would be resumed by this server if
    # offered (one cache for every name, port and trust), so a missing
    # binding shows as an offered ID, a resumed handshake and a send that
    # skipped the check.
    @case("other_host_name_not_offered_name_checked")
    def _():
        t = S.tap()
        f, _ = exported(t)
        m = good().mark()
        r = S.sessdial("other.example:465", t, "--import", f)
        check(r.lines("import") == [["import", "OK"]], "import: %s" % r)
        expect_dials(r, [("ECERT_NAME", 0)])
        check(t.since(1) == [""], "offered %s to other.example" % t.since(1))
        hs, msgs = good().since(m)
        check(not hs and not msgs, "the server saw %s, %d messages" % (hs, len(msgs)))

    @case("other_port_not_offered")
    def _():
        t = S.tap()
        f, _ = exported(t)
        m = good().mark()
        r = S.sessdial("localhost:587", t, "--import", f)
        expect_dials(r, [("OK", 0)])
        check(t.since(1) == [""], "offered %s on another port" % t.since(1))
        hs, _ = good().since(m)
        check([x[1] for x in hs] == [False], "server: %s" % hs)

    @case("other_trust_not_offered_chain_checked")
    def _():
        t = S.tap()
        f, _ = exported(t)
        # rogue-ca.crt does not trust the server: offered, the session would
        # resume and the send succeed
        r = S.sessdial("localhost:465", t, "--import", f, cafile="rogue-ca.crt")
        expect_dials(r, [("ECERT_UNTRUSTED", 0)])
        # bundle.crt trusts it, but is other trust: a full handshake
        m = good().mark()
        r2 = S.sessdial("localhost:465", t, "--import", f, cafile="bundle.crt")
        expect_dials(r2, [("OK", 0)])
        # a pin of the same key: other trust too
        r3 = S.sessdial("localhost:465", t, "--import", f, "--pin", spki_pin(S.p("good.crt")),
                        cafile=None)
        expect_dials(r3, [("OK", 0)])
        check(t.since(1) == ["", "", ""], "offered %s under other trust" % t.since(1))
        hs, _ = good().since(m)
        check([x[1] for x in hs] == [False, False], "server: %s" % hs)

    # The lifetime is counted in whole seconds since 1970: an age measured
    # is at least the real age's whole seconds and less than one more, so
    # these pauses decide the outcome whatever the clock's fraction.
    @case("expired_session_not_offered")
    def _():
        t = S.tap()
        r = S.sessdial("localhost:465", t, "--dials", "2", "--pause-ms", "4200", binary="sessdial-4s")
        expect_dials(r, [("OK", 0), ("OK", 0)])
        check(t.since(0) == ["", ""], "offered %s after the lifetime" % t.since(0))
        r = S.sessdial("localhost:465", t, "--dials", "2", "--pause-ms", "500", binary="sessdial-4s")
        expect_dials(r, [("OK", 0), ("OK", 1)])

    @case("resumed_sessions_never_extend_the_lifetime")
    def _():
        t = S.tap()
        # dial 2 resumes at ~2 s; dial 3, ~4.5 s after the full handshake
        # but ~2.5 s after the resumption, is full again
        r = S.sessdial("localhost:465", t, "--dials", "3", "--pause-ms", "2000,2500",
                       binary="sessdial-4s")
        expect_dials(r, [("OK", 0), ("OK", 1), ("OK", 0)])
        offers = t.since(0)
        check(offers[0] == "" and offers[1] and offers[2] == "", "offered %s" % offers)

    @case("bad_secret_fails_once_then_full_handshake")
    def _():
        t = S.tap()
        f, text = exported(t)
        fields = text.split()
        sec = fields[8]
        fields[8] = ("0" if sec[0] != "0" else "1") + sec[1:]
        bad = S.path("bad-session")
        with open(bad, "w") as fh:
            fh.write(" ".join(fields) + "\n")
        m = good().mark()
        r = S.sessdial("localhost:465", t, "--import", bad, "--dials", "2")
        check(r.lines("import") == [["import", "OK"]], "import: %s" % r)
        # the server accepts the ID, the Finished MACs disagree: a failed
        # handshake, which clears the session; the next dial is full
        expect_dials(r, [("ETLS", 0), ("OK", 0)])
        offers = t.since(1)
        check(offers == [fields[7], ""], "offered %s" % offers)
        _, msgs = good().since(m)
        check(len(msgs) == 1, "stored %d messages" % len(msgs))

    @case("import_refuses_what_no_handshake_made")
    def _():
        t = S.tap()
        f, text = exported(t)
        fields = text.split()
        bad = []
        for i, v in ((0, "tlsmail-session-2"), (2, "0"), (2, "70000"), (4, "00"), (5, "0301"),
                     (7, ""), (7, "00" * 33), (8, "00" * 47), (3, "x")):
            g = list(fields)
            g[i] = v
            bad.append(" ".join(x for x in g if x))
        bad.append(text.strip() + " extra")
        bad.append(text.strip().replace("localhost", "local host"))
        for i, line in enumerate(bad):
            p = S.path("imp%d" % i)
            with open(p, "w") as fh:
                fh.write(line + "\n")
            r = S.sessdial("localhost:465", t, "--import", p)
            check(r.lines("import") == [["import", "EINVAL"]], "accepted %r: %s" % (line[:80], r))
            expect_dials(r, [("OK", 0)])
        check(all(o == "" for o in t.since(1)), "offered %s" % t.since(1))

    return cases


def main():
    return suite_main(__doc__.splitlines()[0], Suite, build_cases)


if __name__ == "__main__":
    sys.exit(main())
