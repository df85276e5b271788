#!/usr/bin/python3
"""tests/integration/test_starttls.py - the STARTTLS upgrade and the fallback, against aiosmtpd.

    /usr/bin/python3 tests/integration/test_starttls.py --build DIR [-k SUBSTR]... [-v]

DIR holds `itest` built with -DTLSMAIL_STARTTLS. Servers: tests/lib/smtpd.py in
STARTTLS mode (aiosmtpd, require_starttls, AUTH only after TLS) and in
implicit-TLS mode, on 127.0.0.1. The hostile cases (injection after 220,
refusals, ...) live in tests/hostile/test_hostile.py; here a real server shows the
upgrade works and the fallback takes only the paths it should.

Prints PASS/FAIL per case and, last, "N passed, N failed".
"""
import os
import socket
import ssl
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
sys.path.insert(0, HERE)
import test_integration as ti  # noqa: E402  (the integration suite's servers and assertions)
from testlib import check, free_port, registry, CaseFailure  # noqa: E402
from test_integration import USER, PASS, USER2, PASS2, SIMPLE  # noqa: E402

# Everything a client may say in clear on a STARTTLS port, and what it must not.
SECRET_VERBS = {"AUTH", "MAIL", "RCPT", "DATA", "STORED"}


class AlertServer:
    """Implicit-TLS listener whose handshake always ends in a fatal alert: it
    only offers a suite tlsmail never proposes, so the server answers the
    ClientHello with handshake_failure."""

    def __init__(self, pki):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(os.path.join(pki, "good-rsa.crt"), os.path.join(pki, "good-rsa.key"))
        self.ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.ctx.set_ciphers("AES128-SHA")       # RSA key exchange, CBC: not in our list
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        deadline = time.monotonic() + 600
        while not self.stop and time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(5)
            self.handshakes += 1
            try:
                self.ctx.wrap_socket(conn, server_side=True).close()
            except (ssl.SSLError, OSError):
                pass
            conn.close()

    def close(self):
        self.stop = True
        self.sock.close()
        self.t.join(2)


def build_cases(S, pki):
    cases, case = registry()

    def st(server, **kw):
        kw.setdefault("api", "client")
        extra = kw.pop("extra", [])
        r = S.itest_extra(S.addr(server), extra=["--security", "starttls"] + extra, **kw)
        return r

    for mech, user, pw in (("plain", USER, PASS), ("login", USER2, PASS2)):
        for api in ("client", "stream"):
            @case("starttls_%s_%s_stored" % (mech, api))
            def _(mech=mech, user=user, pw=pw, api=api):
                srv = "st-good"
                m = S.servers[srv].mark()
                msg = SIMPLE + b".dot line\n\nbare LF\rbare CR"
                r = st(srv, msg=msg, auth=mech, user=user, pw=pw, api=api)
                S.expect_result(r, "OK")
                ev = S.expect_stored(srv, m, msg, user=user, mech=mech.upper())
                v = [e[1] for e in ev if len(e) > 1]
                # In clear: EHLO and STARTTLS only; then EHLO again over TLS.
                check(v[v.index("STARTTLS") - 1] == "EHLO" and v[v.index("STARTTLS") + 1] == "EHLO",
                      "dialogue %s" % v)
                check(not SECRET_VERBS & set(v[:v.index("STARTTLS")]),
                      "sent in plaintext: %s" % v[:v.index("STARTTLS")])
                check(v.count("STARTTLS") == 1, "STARTTLS sent %d times" % v.count("STARTTLS"))

    @case("starttls_trace_marks_plaintext")
    def _():
        srv = "st-good"
        r = st(srv)
        S.expect_result(r, "OK")
        # itest prints plaintext lines with a "(plain)" marker: the greeting,
        # EHLO reply and STARTTLS reply were before TLS, nothing after.
        plain = [l for l in r.stderr.splitlines() if "(plain)" in l]
        check(any("STARTTLS" in l for l in plain), "STARTTLS not marked plaintext: %s" % plain)
        check(not any("AUTH" in l and l.startswith(">") for l in plain),
              "AUTH marked plaintext: %s" % plain)
        tls_lines = [l for l in r.stderr.splitlines() if l[:1] in "<>" and "(plain)" not in l]
        check(any(l.startswith("> EHLO") for l in tls_lines), "no EHLO over TLS: %s" % tls_lines)

    # The upgraded connection gets the same certificate checks as implicit TLS.
    for what, srv, ca, want in (("wrong_host", "st-wronghost", "ca.crt", "ECERT_NAME"),
                                ("expired", "st-expired", "ca.crt", "ECERT_EXPIRED"),
                                ("untrusted", "st-good", "rogue-ca.crt", "ECERT_UNTRUSTED")):
        @case("starttls_%s_cert_refused_before_auth" % what)
        def _(srv=srv, ca=ca, want=want):
            m = S.servers[srv].mark()
            r = st(srv, cafile=ca)
            S.expect_result(r, want)
            S.expect_nothing(srv, m, SECRET_VERBS, want)

    @case("implicit_tls_to_starttls_port_is_EPLAINTEXT")
    def _():
        srv = "st-good"
        m = S.servers[srv].mark()
        r = S.itest_extra(S.addr(srv), api="client")
        S.expect_result(r, "EPLAINTEXT")
        S.expect_nothing(srv, m, SECRET_VERBS | {"EHLO", "STARTTLS"}, "implicit TLS to a plaintext port")

    @case("send_on_port_587_means_starttls")
    def _():
        if S.servers.get("st-587") is None:
            raise CaseFailure("port 587 on 127.0.0.1 was not free for the test server")
        srv = "st-587"
        m = S.servers[srv].mark()
        r = S.itest_extra("localhost:587", api="send")
        S.expect_result(r, "OK")
        ev = S.expect_stored(srv, m, SIMPLE, mech="PLAIN")
        check("STARTTLS" in [e[1] for e in ev], "no STARTTLS on port 587")

    @case("fallback_from_plaintext_server_on_implicit_port")
    def _():
        a, b = "st-good", "st-587b"
        ma, mb = S.servers[a].mark(), S.servers[b].mark()
        r = S.itest_extra(S.addr(a), api="client",
                          extra=["--security", "fallback", "--starttls-port", str(S.servers[b].port)])
        S.expect_result(r, "OK")
        S.expect_stored(b, mb, SIMPLE, mech="PLAIN")
        S.expect_nothing(a, ma, SECRET_VERBS | {"STARTTLS"}, "the plaintext server on the implicit port")

    @case("fallback_when_implicit_port_refuses")
    def _():
        b = "st-587b"
        mb = S.servers[b].mark()
        r = S.itest_extra("localhost:%d" % free_port(), api="client",
                          extra=["--security", "fallback", "--starttls-port", str(S.servers[b].port)])
        S.expect_result(r, "OK")
        S.expect_stored(b, mb, SIMPLE, mech="PLAIN")

    # The default trust (no --cafile: the system store, here SSL_CERT_FILE)
    # must still be there for the second dial: both fallback paths.
    @case("fallback_with_system_trust_when_implicit_port_refuses")
    def _():
        b = "st-587b"
        mb = S.servers[b].mark()
        r = S.itest_extra("localhost:%d" % free_port(), cafile=None,
                          extra=["--security", "fallback", "--starttls-port", str(S.servers[b].port)])
        S.expect_result(r, "OK")
        S.expect_stored(b, mb, SIMPLE, mech="PLAIN")

    @case("fallback_with_system_trust_from_plaintext_server")
    def _():
        a, b = "st-good", "st-587b"
        mb = S.servers[b].mark()
        r = S.itest_extra(S.addr(a), cafile=None,
                          extra=["--security", "fallback", "--starttls-port", str(S.servers[b].port)])
        S.expect_result(r, "OK")
        S.expect_stored(b, mb, SIMPLE, mech="PLAIN")

    for cert, want in (("untrusted", "ECERT_UNTRUSTED"), ("expired", "ECERT_EXPIRED"),
                       ("wronghost", "ECERT_NAME")):
        @case("no_fallback_after_%s_certificate" % cert)
        def _(cert=cert, want=want):
            b = "st-587b"
            mb = S.servers[b].mark()
            r = S.itest_extra(S.addr(cert), api="client",
                              extra=["--security", "fallback", "--starttls-port", str(S.servers[b].port)])
            S.expect_result(r, want)
            time.sleep(ti.SETTLE)
            ev, _ = S.servers[b].since(mb)
            # A new connection shows as ACCEPT; a late DISCONNECT of the
            # previous case's connection is not one.
            check(not [e for e in ev if e[1:2] == ["ACCEPT"]],
                  "fell back to the STARTTLS port after %s: %s" % (want, ti.verbs(ev)))

    @case("no_fallback_after_tls_alert")
    def _():
        b = "st-587b"
        mb = S.servers[b].mark()
        before = S.alert.handshakes
        r = S.itest_extra("localhost:%d" % S.alert.port, api="client",
                          extra=["--security", "fallback", "--starttls-port", str(S.servers[b].port)])
        S.expect_result(r, "ETLS")
        check(S.alert.handshakes > before, "the alert server saw no handshake")
        time.sleep(ti.SETTLE)
        ev, _ = S.servers[b].since(mb)
        check(not [e for e in ev if e[1:2] == ["ACCEPT"]],
              "fell back to the STARTTLS port after an alert: %s" % ti.verbs(ev))

    return cases


class Suite(ti.Suite):
    def __init__(self, build, work, verbose):
        ti.Suite.__init__(self, build, work, verbose)
        self.alert = None

    def setup(self):
        if not os.access(self.itest_bin, os.X_OK):
            raise RuntimeError("%s is not built" % self.itest_bin)
        import subprocess
        subprocess.run(["bash", ti.PKI_SH, self.pki], check=True, timeout=60)
        users = [(USER, PASS), (USER2, PASS2)]
        specs = [("st-good", "starttls", 0, "good"), ("st-wronghost", "starttls", 0, "wronghost"),
                 ("st-expired", "starttls", 0, "expired"),
                 ("st-587b", "starttls", 0, "good"), ("untrusted", "implicit", 0, None),
                 ("expired", "implicit", 0, None), ("wronghost", "implicit", 0, None)]
        probe = socket.socket()
        try:
            probe.bind(("127.0.0.1", 587))
            specs.append(("st-587", "starttls", 587, "good"))
        except OSError:
            self.servers["st-587"] = None
        finally:
            probe.close()
        for name, mode, port, cert in specs:
            self.servers[name] = ti.Server(name, self.pki, self.work, users, mode=mode, port=port,
                                           cert=cert)
        deadline = time.monotonic() + ti.READY_TIMEOUT
        for s in self.servers.values():
            if s is not None:
                s.wait_ready(deadline)
        self.alert = AlertServer(self.pki)

    def teardown(self):
        self.servers = {k: v for k, v in self.servers.items() if v is not None}
        ti.Suite.teardown(self)
        if self.alert:
            self.alert.close()

    def itest_extra(self, addr, extra=(), api="client", **kw):
        return self.itest(addr, api=api, extra=extra, **kw)


def main():
    return ti.suite_main("tlsmail STARTTLS tests", Suite, lambda S: build_cases(S, S.pki))


if __name__ == "__main__":
    sys.exit(main())
