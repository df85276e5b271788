#!/usr/bin/python3
"""tests/fastopen/test_fastopen.py - TCP Fast Open (tlsmail_config.tcp_fastopen,
tlsmail-send --tcp-fastopen and its tcp_fastopen setting), seen by the kernel.

    /usr/bin/python3 tests/fastopen/test_fastopen.py --build DIR [-k SUBSTR]... [--keep] [-v]

The suite runs itself in a private mount and network namespace (the one
tests/resolve/deadns.py makes; its dead resolver is not used), whose
net.ipv4.tcp_fastopen is set to 1027: clients may use Fast Open, and every
listener accepts it without asking for it (0x400), so tests/lib/smtpd.py
(aiosmtpd) serves it unchanged. What happened on the wire is read from the
namespace's own counters in /proc/net/netstat: TCPFastOpenCookieReqd (a SYN
asked for a cookie), TCPFastOpenActive (our SYN carried data and the server
took it), TCPFastOpenPassive (the server took data from a SYN). The kernel's
cookie cache is per namespace too, so the cases run in order: the first
gets the cookie the others use.

Prints "PASS name" or "FAIL name: reason" per case and, last, exactly
"N passed, N failed"; exits 1 if any case failed. Every wait is bounded.
"""
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "resolve"))
from testlib import (CaseFailure, check, normalise, registry, suite_main,  # noqa: E402
                     Server, PKI_SH, READY_TIMEOUT, Result)
import deadns  # noqa: E402

FASTOPEN_SYSCTL = "1027"          # 0x1 client, 0x2 server, 0x400 every listener
RUN_TIMEOUT = 60                  # seconds for one tlsmail-send run
COUNTERS = ("TCPFastOpenCookieReqd", "TCPFastOpenActive", "TCPFastOpenPassive",
            "TCPFastOpenActiveFail")


def netstat():
    """The TcpExt counters of this namespace."""
    with open("/proc/net/netstat") as f:
        lines = [l.split() for l in f if l.startswith("TcpExt:")]
    return dict(zip(lines[0][1:], (int(v) for v in lines[1][1:])))


def traced(cmd, out, calls):
    """cmd under strace, the given system calls written to out."""
    return ["strace", "-qq", "-f", "-e", "trace=" + calls, "-o", out] + list(cmd)


def deferred(lines, port):
    """Did strace see connect() to port return 0 at once (the SYN deferred
    to the first write, as TCP_FASTOPEN_CONNECT does with a cookie)?"""
    return any("htons(%d)" % port in l and l.endswith("= 0") for l in lines)


def unlistened():
    """A socket bound on 127.0.0.1 that never listens: connects to its port
    are refused. (socket, port)"""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def set_fastopen(value):
    with open("/proc/sys/net/ipv4/tcp_fastopen", "w") as f:   # this namespace's own
        f.write(value + "\n")


class Suite:
    def __init__(self, build, work, verbose):
        self.build, self.work, self.verbose = build, work, verbose
        self.pki = os.path.join(work, "pki")
        self.servers = {}
        self.send_bin = os.path.join(build, "tlsmail-send")
        self.itest = os.path.join(build, "itest")
        self.cookie = False           # the kernel holds a cookie for 127.0.0.1
        self.n = 0

    def say(self, text):
        print("  " + text, flush=True)

    def setup(self):
        r = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("ip link set lo up: %s" % r.stderr.decode().strip())
        set_fastopen(FASTOPEN_SYSCTL)
        for exe in (self.send_bin, self.itest):
            if not os.access(exe, os.X_OK):
                raise RuntimeError("no %s (make test builds it)" % exe)
        r = subprocess.run(["bash", PKI_SH, self.pki], capture_output=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("pki.sh: %s" % r.stderr.decode()[-500:])
        for name, mode in (("implicit", "implicit"), ("starttls", "starttls")):
            s = Server(name, self.pki, self.work, [], mode=mode, cert="good")
            self.servers[name] = s
            s.wait_ready(time.monotonic() + READY_TIMEOUT)

    def teardown(self):
        for s in self.servers.values():
            s.stop()

    def run(self, port, extra=(), env=None, msg=None, trace=False):
        """One tlsmail-send run to localhost:port; (rc, stderr, ms, counter
        deltas, strace lines)."""
        self.n += 1
        msg = msg or ("From: <a@example.org>\r\nTo: <b@example.org>\r\nSubject: fastopen %d\r\n"
                      "\r\n.dot line\r\nbare LF\nend\r\n" % self.n).encode()
        cmd = [self.send_bin, "--server", "localhost:%d" % port,
               "--cafile", os.path.join(self.pki, "ca.crt"), "--from", "a@example.org",
               "b@example.org"] + list(extra)
        st = os.path.join(self.work, "strace-%d.txt" % self.n)
        if trace:
            cmd = traced(cmd, st, "connect,sendto")
        before = netstat()
        t0 = time.monotonic()
        try:
            # the message as it is sent: no Date or Message-ID added
            p = subprocess.run(cmd, input=msg, capture_output=True, timeout=RUN_TIMEOUT,
                               env=dict(os.environ, TLSMAIL_ADD_MISSING_HEADERS="off",
                                        **(env or {})))
        except subprocess.TimeoutExpired:
            raise CaseFailure("no exit within %d s: %s" % (RUN_TIMEOUT, cmd))
        ms = int((time.monotonic() - t0) * 1000)
        after = netstat()
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in COUNTERS}
        lines = []
        if trace:
            with open(st) as f:
                lines = [l.strip() for l in f if "AF_INET" in l or "sendto(" in l]
        err = p.stderr.decode("utf-8", "replace")
        if self.verbose:
            self.say("%s -> rc %d in %d ms, %s, stderr %r" % (" ".join(extra), p.returncode, ms,
                                                              delta, err.strip()[-200:]))
        return p.returncode, err, ms, delta, lines, msg

    def with_and_without(self, port, extra=()):
        """tlsmail-send to port with --tcp-fastopen and without, traced:
        the exit status and stderr must be the same, and the first run's
        connect must have been deferred. (rc, stderr, ms with, ms without,
        strace lines of the first)"""
        (rc1, e1, ms1, _d, lines, _m), (rc0, e0, ms0, _d0, _l0, _m0) = (
            self.run(port, list(flag) + list(extra), trace=True) for flag in (["--tcp-fastopen"], []))
        check((rc1, e1) == (rc0, e0), "fast open %r, without %r" % ((rc1, e1), (rc0, e0)))
        check(deferred(lines, port), "connect was not deferred (no cookie used?): %s" % lines)
        return rc1, e1, ms1, ms0, lines

    def ensure_cookie(self):
        """A cookie for 127.0.0.1 in this namespace's cache: cases run
        alone (-k) get it here; in order, the first case got it already."""
        if not self.cookie:
            rc, err, _ms, _d, _l, _m = self.run(self.servers["implicit"].port, ["--tcp-fastopen"])
            check(rc == 0, "getting a cookie: rc %d: %s" % (rc, err))
            self.cookie = True

    def delivered(self, name, mark, msg):
        """The one message the server stored since mark is msg."""
        srv = self.servers[name]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            _events, new = srv.since(mark)
            if new:
                break
            time.sleep(0.05)
        check(len(new) == 1, "server stored %d messages, wanted 1" % len(new))
        body, _meta = srv.stored(new[0])
        check(body == normalise(msg), "stored %r, sent %r" % (body[:120], msg[:120]))


def full_listener():
    """A listening socket whose accept queue is full: the kernel drops every
    further SYN, so a connect to it is never answered. (socket, the
    connection that fills it)"""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    c = socket.socket()      # a backlog of 0 holds one
    c.settimeout(5)
    c.connect(s.getsockname())
    return s, c


def build_cases(S):
    cases, case = registry()
    imp = lambda: S.servers["implicit"].port  # noqa: E731

    @case("fastopen: the first send asks for a cookie, the next sends the ClientHello in the "
          "SYN; both delivered byte-exact")
    def _():
        for n, want in ((1, {"TCPFastOpenCookieReqd": 1, "TCPFastOpenActive": 0}),
                        (2, {"TCPFastOpenCookieReqd": 0, "TCPFastOpenActive": 1,
                             "TCPFastOpenPassive": 1})):
            mark = S.servers["implicit"].mark()
            rc, err, _ms, delta, _l, msg = S.run(imp(), ["--tcp-fastopen"])
            check(rc == 0, "send %d: rc %d: %s" % (n, rc, err))
            for k, v in want.items():
                check(delta[k] == v, "send %d: %s moved by %d, wanted %d (%s)"
                      % (n, k, delta[k], v, delta))
            S.delivered("implicit", mark, msg)
            S.cookie = True

    @case("fastopen: off by default: with a cookie held, nothing rides in the SYN")
    def _():
        S.ensure_cookie()
        mark = S.servers["implicit"].mark()
        rc, err, _ms, delta, _l, msg = S.run(imp())
        check(rc == 0, "rc %d: %s" % (rc, err))
        check(delta["TCPFastOpenActive"] == 0 and delta["TCPFastOpenCookieReqd"] == 0,
              "Fast Open used without being asked for: %s" % delta)
        S.delivered("implicit", mark, msg)

    @case("fastopen: the tcp_fastopen setting (env TLSMAIL_TCP_FASTOPEN=on) does what the "
          "flag does; a bad value is 78 before any connection")
    def _():
        S.ensure_cookie()
        mark = S.servers["implicit"].mark()
        rc, err, _ms, delta, _l, msg = S.run(imp(), env={"TLSMAIL_TCP_FASTOPEN": "on"})
        check(rc == 0 and delta["TCPFastOpenActive"] == 1, "rc %d, %s: %s" % (rc, delta, err))
        S.delivered("implicit", mark, msg)
        mark = S.servers["implicit"].mark()
        rc, err, _ms, _d, _l, _m = S.run(imp(), env={"TLSMAIL_TCP_FASTOPEN": "sometimes"})
        check(rc == 78 and "tcp_fastopen sometimes: want on or off" in err, "rc %d: %s" % (rc, err))
        time.sleep(0.2)
        events, _new = S.servers["implicit"].since(mark)
        check(not events, "the server saw %s" % events[:3])

    @case("fastopen: STARTTLS ignores it: the greeting comes first, so no SYN waits for a write")
    def _():
        S.ensure_cookie()
        mark = S.servers["starttls"].mark()
        rc, err, ms, delta, _l, msg = S.run(S.servers["starttls"].port,
                                           ["--tcp-fastopen", "--starttls", "--timeout", "10"])
        check(rc == 0, "rc %d after %d ms: %s" % (rc, ms, err))
        check(delta["TCPFastOpenActive"] == 0, "data in a STARTTLS SYN: %s" % delta)
        S.delivered("starttls", mark, msg)

    @case("fastopen: a server that stopped offering it ignores the SYN's data: the hello is "
          "sent again after the handshake and the mail arrives")
    def _():
        S.ensure_cookie()
        set_fastopen("1")   # this namespace's listeners: no Fast Open; our cookie stays cached
        try:
            mark = S.servers["implicit"].mark()
            rc, err, _ms, delta, _l, msg = S.run(imp(), ["--tcp-fastopen"])
        finally:
            set_fastopen(FASTOPEN_SYSCTL)
        check(rc == 0, "rc %d: %s" % (rc, err))
        check(delta["TCPFastOpenActiveFail"] == 1 and delta["TCPFastOpenPassive"] == 0,
              "wanted the SYN's data refused and sent again: %s" % delta)
        S.delivered("implicit", mark, msg)

    @case("fastopen: with a cookie, nothing listening is the same connect error as without "
          "(75, refused), and connect returned at once")
    def _():
        S.ensure_cookie()
        s, port = unlistened()
        try:
            rc, err, _ms1, _ms0, _l = S.with_and_without(port)
        finally:
            s.close()
        check(rc == 75 and "connect:" in err, "fast open: rc %d: %s" % (rc, err))

    @case("fastopen: library, TLSMAIL_SECURITY_TLS_OR_STARTTLS: with a cookie, implicit TLS "
          "refused after connect returned is still 'nothing listens', so STARTTLS on the other "
          "port delivers")
    def _():
        S.ensure_cookie()
        s, refused = unlistened()
        srv = S.servers["starttls"]
        msg = b"From: <a@example.org>\r\nTo: <b@example.org>\r\nSubject: fallback\r\n\r\nx\r\n"
        path = os.path.join(S.work, "fallback.eml")
        with open(path, "wb") as f:
            f.write(msg)
        st = os.path.join(S.work, "strace-fallback.txt")
        mark = srv.mark()
        t0 = time.monotonic()
        try:
            p = subprocess.run(traced([S.itest, "--addr", "localhost:%d" % refused, "--api", "client",
                                       "--security", "fallback", "--starttls-port", str(srv.port),
                                       "--cafile", os.path.join(S.pki, "ca.crt"), "--from",
                                       "a@example.org", "--to", "b@example.org", "--msg", path,
                                       "--timeout-ms", "10000", "--tcp-fastopen"], st, "connect"),
                               capture_output=True, timeout=RUN_TIMEOUT)
        finally:
            s.close()
        r = Result(p, int((time.monotonic() - t0) * 1000))
        check(r.name == "OK", "itest: %s" % r)
        with open(st) as f:
            lines = [l.strip() for l in f if "AF_INET" in l]
        check(deferred(lines, refused), "the refused connect was not deferred: %s" % lines)
        check(any("htons(%d)" % srv.port in l for l in lines), "no STARTTLS dial: %s" % lines)
        S.delivered("starttls", mark, msg)

    @case("fastopen: with a cookie, a SYN never answered is 'connect: timed out' at the "
          "timeout, as without")
    def _():
        S.ensure_cookie()
        lst, held = full_listener()
        port = lst.getsockname()[1]
        try:
            rc, err, ms1, ms0, lines = S.with_and_without(port, ["--timeout", "2"])
        finally:
            held.close()
            lst.close()
        check(rc == 75 and "connect: timed out" in err, "fast open: rc %d: %s" % (rc, err))
        check(any(l.split(None, 1)[1].startswith("sendto(") for l in lines),
              "no ClientHello was queued for the deferred SYN: %s" % lines)
        for ms in (ms1, ms0):
            check(1900 <= ms <= 2000 + 3000, "gave up after %d ms, wanted about 2000" % ms)

    return cases


def main():
    deadns.enter()   # first: the rest runs in a private network namespace
    return suite_main(__doc__.splitlines()[0], Suite, build_cases)


if __name__ == "__main__":
    sys.exit(main())
