#!/usr/bin/python3
"""tests/resolve/test_resolve.py - name resolution inside the per-wait
timeout and the session deadline, and tlsmail_config.addresses, against a
system resolver that never answers.

    /usr/bin/python3 tests/resolve/test_resolve.py --build DIR [-k SUBSTR]... [--keep] [-v]

The suite runs itself in a private mount and network namespace
(tests/resolve/deadns.py): /etc/resolv.conf names 127.0.0.1 with "options
timeout:6 attempts:1", and a UDP socket there counts every query and
answers none, so a lookup of any name outside /etc/hosts waits 6 s for the
system resolver to give up. tests/lib/smtpd.py runs on the namespace's
loopback with a certificate for mail.resolve.test (made here with the
openssl CLI, signed by the CA of tests/lib/pki.sh).

tests/resolve/rdial.c is built four times into DIR/resolve: as is (the
lookup in a thread of its own), with TLSMAIL_NO_THREADS (the control: it
waits for the resolver), and under ThreadSanitizer and ASan+UBSan+LSan,
where lookups given up on must finish and free their block without a race,
a use after free or a leak.

Prints "PASS name" or "FAIL name: reason" per case and, last, exactly
"N passed, N failed"; exits 1 if any case failed. Every wait is bounded.
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
sys.path.insert(0, HERE)
from testlib import (CaseFailure, check, normalise, registry, suite_main,  # noqa: E402
                     Server, ROOT, PKI_SH, WARN, READY_TIMEOUT, Result)
import deadns  # noqa: E402

NAME = "mail.resolve.test"        # in no /etc/hosts: only DNS could answer
USER, PASS = "resolve@example.org", "resolve-Pw-1"
RESOLVER_S = deadns.DEFAULT_TIMEOUT
RUN_TIMEOUT = 60                  # seconds for one rdial run
LINGER_MS = (RESOLVER_S + 3) * 1000  # long enough for every lookup to end
SLACK_MS = 2000                   # scheduling on a loaded machine

SRC = os.path.join(HERE, "rdial.c")
VARIANTS = {
    "rdial": [],
    "rdial-nothreads": ["-DTLSMAIL_NO_THREADS"],
    "rdial-tsan": ["-fsanitize=thread", "-g", "-O1"],
    "rdial-asan": ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                   "-fno-omit-frame-pointer", "-g", "-O1"],
}
SAN_ENV = {
    "TSAN_OPTIONS": "halt_on_error=0 exitcode=66",
    "ASAN_OPTIONS": "detect_leaks=1 exitcode=66",
    "UBSAN_OPTIONS": "print_stacktrace=1",
}


class Suite:
    def __init__(self, build, work, verbose):
        self.build = build
        self.out = os.path.join(build, "resolve")
        self.work = work
        self.verbose = verbose
        self.servers = {}
        self.dead = None
        self.pki = os.path.join(work, "pki")
        self.bins = {}

    def say(self, text):
        print("  " + text, flush=True)

    def setup(self):
        os.makedirs(self.out, exist_ok=True)
        self.dead = deadns.DeadResolver(RESOLVER_S)
        with open("/etc/hosts") as f:
            check(NAME not in f.read(), "%s is in /etc/hosts" % NAME)
        self.make_pki()
        for name, flags in VARIANTS.items():
            exe = os.path.join(self.out, name)
            cmd = (["gcc"] + WARN + ["-O2"] + flags + [SRC, "-o", exe, "-lbearssl"])
            p = subprocess.run(["nice", "-n", "10"] + cmd, capture_output=True, timeout=300,
                               cwd=ROOT)
            if p.returncode != 0:
                raise RuntimeError("%s: %s" % (" ".join(cmd), p.stderr.decode()[-2000:]))
            self.bins[name] = exe
        s = Server("resolve", self.pki, self.work, [(USER, PASS)], cert="resolve")
        self.servers["resolve"] = s
        s.wait_ready(time.monotonic() + READY_TIMEOUT)

    def make_pki(self):
        r = subprocess.run(["bash", PKI_SH, self.pki], capture_output=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("pki.sh: %s" % r.stderr.decode()[-500:])
        key, csr, ext, crt = (os.path.join(self.pki, "resolve." + x)
                              for x in ("key", "csr", "ext", "crt"))
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s\n" % NAME)
        for cmd in (["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                     "ec_paramgen_curve:P-256", "-out", key],
                    ["openssl", "req", "-new", "-key", key, "-subj", "/CN=" + NAME, "-out", csr],
                    ["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(self.pki, "ca.crt"),
                     "-CAkey", os.path.join(self.pki, "ca.key"), "-set_serial", "0x5e5017e",
                     "-days", "30", "-sha256", "-extfile", ext, "-out", crt]):
            r = subprocess.run(cmd, capture_output=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError("%s: %s" % (cmd[1], r.stderr.decode()[-500:]))

    def teardown(self):
        for s in self.servers.values():
            s.stop()
        if self.dead:
            self.dead.close()

    def port(self):
        return self.servers["resolve"].port

    def rdial(self, variant="rdial", host=None, extra=(), env=None):
        """One rdial run; Result plus the DNS queries it made."""
        cmd = [self.bins[variant], "--host", host or "%s:%d" % (NAME, self.port()),
               "--cafile", os.path.join(self.pki, "ca.crt")] + list(extra)
        before = self.dead.count()
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=RUN_TIMEOUT,
                               env=dict(os.environ, **(env or {})))
        except subprocess.TimeoutExpired:
            raise CaseFailure("%s: no exit within %d s" % (variant, RUN_TIMEOUT))
        r = Result(p, int((time.monotonic() - t0) * 1000))
        r.results = [l.split() for l in r.stdout.splitlines() if l.startswith("result ")]
        # the dead server's socket thread may see the last datagram late
        time.sleep(0.1)
        r.queries = self.dead.count() - before
        if self.verbose:
            self.say("%s %s -> %s, %d DNS queries" % (variant, " ".join(extra), r, r.queries))
        return r

    def send(self, addresses, tag):
        """A byte-exact send to NAME dialled at addresses; returns the events."""
        srv = self.servers["resolve"]
        msg = ("From: <%s>\r\nTo: <rcpt-%s@example.org>\r\nSubject: %s\r\n\r\n"
               ".dot line\r\nbare LF\nend\r\n" % (USER, tag, tag)).encode()
        path = os.path.join(self.work, tag + ".eml")
        with open(path, "wb") as f:
            f.write(msg)
        mark = srv.mark()
        r = self.rdial(extra=["--addresses", addresses, "--user", USER, "--pass", PASS,
                              "--from", USER, "--to", "rcpt-%s@example.org" % tag,
                              "--msg", path, "--timeout-ms", "20000"])
        check(r.rc == 0 and r.name == "OK", "send: %s" % r)
        time.sleep(0.25)
        events, new = srv.since(mark)
        check(len(new) == 1, "server stored %d messages, wanted 1" % len(new))
        body, meta = srv.stored(new[0])
        check(body == normalise(msg), "stored %r, sent %r" % (body[:120], msg[:120]))
        check(meta["rcpt_tos"] == ["rcpt-%s@example.org" % tag], "RCPT %r" % meta["rcpt_tos"])
        flat = [" ".join(e[1:]) for e in events]
        check("SNI " + NAME in flat, "no SNI %s in %s" % (NAME, flat[:6]))
        check(r.queries == 0, "%d DNS queries with addresses given" % r.queries)
        return r, events


def build_cases(S):
    cases, case = registry()

    def gave_up(r, lo_ms, hi_ms, what):
        check(r.name == "ERESOLVE" and r.stage == "connect", "%s: %s" % (what, r))
        check(lo_ms <= r.elapsed <= hi_ms,
              "%s: gave up after %d ms, wanted %d..%d" % (what, r.elapsed, lo_ms, hi_ms))
        check(r.queries >= 1, "%s: the dead resolver was never asked" % what)

    @case("control: TLSMAIL_NO_THREADS waits for the dead resolver (%d s), past a 1 s timeout"
          % RESOLVER_S)
    def _():
        r = S.rdial("rdial-nothreads", extra=["--timeout-ms", "1000"])
        gave_up(r, (RESOLVER_S - 1) * 1000, (RESOLVER_S * 3) * 1000, "no threads")

    @case("thread: ERESOLVE at the 1 s per-wait timeout, not the resolver's %d s" % RESOLVER_S)
    def _():
        r = S.rdial(extra=["--timeout-ms", "1000"])
        gave_up(r, 900, 1000 + SLACK_MS, "1 s timeout")
        check(r.wall_ms < RESOLVER_S * 1000, "the process ran %d ms" % r.wall_ms)

    @case("thread: the session deadline (1.5 s) cuts the lookup short of a 60 s timeout")
    def _():
        r = S.rdial(extra=["--timeout-ms", "60000", "--deadline-ms", "1500"])
        gave_up(r, 1400, 1500 + SLACK_MS, "1.5 s deadline")

    @case("thread: timeout_ms < 0 and no deadline: the lookup is the resolver's own")
    def _():
        r = S.rdial(extra=["--timeout-ms", "-1", "--deadline-ms", "-1"])
        gave_up(r, (RESOLVER_S - 1) * 1000, (RESOLVER_S * 3) * 1000, "no limit")

    @case("thread: a lookup left running does not hold up the next dial")
    def _():
        r = S.rdial(extra=["--timeout-ms", "500", "--repeat", "4"])
        check(r.rc == 1 and len(r.results) == 4, "4 attempts: %s" % r)
        for f in r.results:
            check(f[1] == "ERESOLVE" and int(f[-1]) <= 500 + SLACK_MS, "attempt %s" % f)
        check(r.wall_ms < RESOLVER_S * 1000, "4 attempts took %d ms" % r.wall_ms)

    for variant, what in (("rdial-tsan", "ThreadSanitizer: no data race"),
                          ("rdial-asan", "ASan+LSan: no use after free, no leak")):
        @case("thread: lookups given up on finish and free their block (%s)" % what)
        def _(variant=variant):
            r = S.rdial(variant, extra=["--timeout-ms", "300", "--repeat", "3", "--linger-ms",
                                        str(LINGER_MS)], env=SAN_ENV)
            check(len(r.results) == 3, "3 attempts: %s" % r)
            for f in r.results:
                check(f[1] == "ERESOLVE" and int(f[-1]) <= 300 + SLACK_MS * 2, "attempt %s" % f)
            check(r.rc == 1, "exit %d (66: a sanitizer report): %s" % (r.rc, r.stderr[-3000:]))
            for word in ("ThreadSanitizer", "AddressSanitizer", "LeakSanitizer",
                         "runtime error"):
                check(word not in r.stderr, "%s: %s" % (word, r.stderr[-3000:]))
            check(r.queries >= 3, "only %d DNS queries for 3 lookups" % r.queries)

    @case("addresses: 127.0.0.1 for %s: sent byte-exact, SNI and check by name, no lookup"
          % NAME)
    def _():
        S.send("127.0.0.1", "one")

    @case("addresses: tried in order, refused ones skipped ([::1], 127.0.0.2, then 127.0.0.1)")
    def _():
        _r, events = S.send(" [::1] ,127.0.0.2, 127.0.0.1 ", "order")
        accepts = [e for e in events if len(e) > 1 and e[1] == "ACCEPT"]
        check(len(accepts) == 1, "%d connections reached the server" % len(accepts))

    @case("addresses: a name, an empty entry or a bad bracket is EINVAL before any dial")
    def _():
        srv = S.servers["resolve"]
        for bad in ("127.0.0.1, " + NAME, "", " , 127.0.0.1", "127.0.0.1,,127.0.0.1",
                    "[127.0.0.1", "127.0.0.1 x", "1" * 70):
            mark = srv.mark()
            r = S.rdial(extra=["--addresses", bad, "--timeout-ms", "20000"])
            check(r.name == "EINVAL" and r.stage == "connect", "%r: %s" % (bad, r))
            check(r.queries == 0, "%r: %d DNS queries" % (bad, r.queries))
            time.sleep(0.1)
            events, _new = srv.since(mark)
            check(not events, "%r: the server saw %s" % (bad, events[:3]))

    @case("addresses: every address refused is ECONNECT")
    def _():
        r = S.rdial(extra=["--addresses", "127.0.0.2,127.0.0.3", "--timeout-ms", "20000"])
        check(r.name == "ECONNECT" and r.stage == "connect", "%s" % r)
        check(r.queries == 0, "%d DNS queries" % r.queries)

    return cases


def main():
    deadns.enter()   # first: the rest runs inside the namespace with the dead resolver
    return suite_main(__doc__.splitlines()[0], Suite, build_cases)

if __name__ == "__main__":
    sys.exit(main())
