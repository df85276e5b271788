#!/usr/bin/python3
"""tests/lib/testlib.py - what every Python suite shares: the case registry
and runner with its command line (--build, -k, --keep, -v), the reference
normaliser, servers (tests/lib/smtpd.py) and listeners, and the client
result line of itest.

Every suite prints "PASS name" or "FAIL name: reason" per case and, last,
exactly "N passed, N failed"; -k SUBSTR (repeatable) selects cases by name
in every suite. Standard library only.
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

LIB = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(LIB)
ROOT = os.path.dirname(TESTS)
PYTHON = "/usr/bin/python3"          # the interpreter that has aiosmtpd
PKI_SH = os.path.join(LIB, "pki.sh")
SMTPD = os.path.join(LIB, "smtpd.py")
# The one warning list of the project (tests/lib/warnings; the Makefile and
# the shell scripts read the same file).
with open(os.path.join(LIB, "warnings")) as _f:
    WARN = ["-std=c99"] + _f.read().split()

READY_TIMEOUT = 10.0      # seconds for a server to say READY
RUN_TIMEOUT = 30.0        # seconds for one client subprocess
SETTLE = 0.25             # seconds to let the server log before "nothing" checks



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
        cmd = [PYTHON, SMTPD, "--port", str(port), "--mode", mode,
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


class Cases:
    """Cases registered at module level, in the order they are added, each a
    function of the suite object S (not a closure inside one big function):

        CASES = Cases()

        @CASES.case("name")              # runs name(S)
        def name(S): ...

        CASES.add("name[x]", fn, "x")    # runs fn(S, "x")

    tags (a set of words, e.g. "timed") let a runner pick or skip cases;
    bind(S) gives the (name, fn) list that run_cases and suite_main take.
    A name can be registered once only."""

    def __init__(self):
        self.entries = []             # (name, fn, args, kw, tags)
        self._names = set()

    def add(self, name, fn, *args, tags=(), **kw):
        if name in self._names:
            raise ValueError("case %r registered twice" % name)
        self._names.add(name)
        self.entries.append((name, fn, args, kw, frozenset(tags)))
        return fn

    def case(self, name, *args, tags=(), **kw):
        def deco(fn):
            return self.add(name, fn, *args, tags=tags, **kw)
        return deco

    def names(self, tag=None):
        return [e[0] for e in self.entries if tag is None or tag in e[4]]

    def bind(self, S):
        return [(name, (lambda fn=fn, a=args, k=kw: fn(S, *a, **k)))
                for name, fn, args, kw, _ in self.entries]


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


def verbs(events):
    return " ".join(e[1] if len(e) < 3 or e[1] not in ("AUTH",) else "AUTH/%s/%s" % (e[2], e[3])
                    for e in events if len(e) > 1)


NO_CONNECTION = ("ACCEPT", "SNI", "CONNECT", "EHLO", "HELO", "AUTH", "MAIL", "RCPT", "DATA")
NO_SMTP = ("CONNECT", "EHLO", "HELO", "AUTH", "MAIL", "RCPT", "DATA")


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


