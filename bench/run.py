#!/usr/bin/python3
"""bench/run.py - tlsmail-send beside curl, msmtp and Python's smtplib.

    /usr/bin/python3 bench/run.py --tlsmail-send build/tlsmail-send
        [--rounds N] [--phases abcdef] [--write] [--keep] [-v]

Every client talks to the same server, bench/sink.c: BearSSL's server
engine in one C process, implicit TLS (and STARTTLS), PIPELINING, CHUNKING,
SIZE, 8BITMIME, AUTH PLAIN/LOGIN, session IDs for resumption. It counts and
hashes each message and reports it, so every send is checked (bytes and
hash of what arrived equal the file sent, the client exited 0): a client
that fails fast never looks fast. Being C, the server's own share of the
wall time is small and the same for every client. Before any measurement,
bench/sinkcheck.py proves that the sink's checks catch what they should.

Clients run through bench/spawn.c, which takes wall time (monotonic, fork
to reap), CPU time (user + sys of the client, wait4) and peak RSS
(ru_maxrss) of each run. Clients run interleaved, round-robin, the order
rotated each round, after one warm-up round; figures are medians; ratios
are tlsmail-send's value over curl's from the same run.

Phases (each has a time cap; a client or feature that is missing is
reported as n/a, never guessed):
  a  one 2 KiB send, trust from --cafile (the test CA): wall, CPU, RSS;
     heap (valgrind massif, peak of every malloc in the process); also
     tlsmail-send built with -DTLSMAIL_SMALL (what the small profile costs)
  b  the same with the default trust path: SSL_CERT_FILE = the system
     bundle + the test CA (curl: CURL_CA_BUNDLE, which its tool reads
     instead; msmtp: --tls-trust-file, GnuTLS reads no variable)
  c  round trips per message at +RTT (--rtt-ms, default 50), the delay
     applied to packets by bench/netdelay.py: the clients (and their
     launcher) run in a private network namespace, a second sink in
     another, joined by TUN devices through a forwarder that holds every
     packet, SYNs included, RTT/2 each way to the sink's delayed address
     and not at all to its other address (no netem on this kernel; the
     namespaces vanish with the processes). Clients reach the sink by
     host name (a private /etc/hosts bind-mounted in the clients' mount
     namespace; its certificate, from the test CA, names both). Round
     trips = (wall of a send to the delayed address - wall of the same
     client's send to the undelayed one) / RTT, medians, nothing added:
     TCP's handshake is measured like the rest. Beside it, the waits the
     forwarder saw in the packets (the client sending after a server
     packet reached it and a silence of most of a round trip). Variants:
     tlsmail-send against a listener without CHUNKING and, when it has a
     session cache, resumed; Python's smtplib with a resumed TLS session
     (its first connection undelayed), as a reference for what
     resumption saves against this server; with TCP Fast Open (the far
     namespace has net.ipv4.tcp_fastopen=3, the sink TCP_FASTOPEN on its
     listeners): tlsmail-send's --tcp-fastopen when its --help lists it
     (plain, resumed, resumed without CHUNKING; else n/a), curl's as a
     reference. The warm-up round gets the cookies; every timed TFO send
     must show its SYN's data acknowledged by the SYN-ACK (forwarder)
     and TCPFastOpenPassive counted in the far namespace, else the row
     fails
  d  one 50 MB message (long lines, dot lines): MB/s (10^6 B/s), CPU, RSS;
     also tlsmail-send built with -DTLSMAIL_SMALL, and the library's one
     call (bench/many.c --transact, the file mapped);
     then the floors no client avoids (bench/floor.c): BearSSL's AES-GCM
     over the message (CPU time) and loopback TCP carrying it to a reader
     that discards it (wall time)
  e  100 processes, 4 at a time (tlsmail-send with and without its
     session cache when it has one), and 1,000 messages on one connection
     (curl with -T globbing, smtplib in a loop, tlsmail-send's batch mode
     when it has one): msg/s
  f  footprint: stripped tlsmail-send as make built it; then built for
     size (SIZE_CFLAGS) with BearSSL's shared library, with Debian's
     libbearssl.a, with BearSSL built the same way from its source
     ($BEARSSL_SRC, else the tree make cross unpacks), and fully static
     with musl; the one call alone (tests/integration/gosend.c) with
     glibc and with musl; each of the last four also with -DTLSMAIL_SMALL,
     the small profile the targets name; each split by origin from ld's map (tlsmail.h,
     the program, BearSSL, the C library); each build really sends once;
     the other clients' binaries and libraries for comparison

Features that tlsmail-send may or may not have are picked up as they
come: a session cache from --help (an option named for sessions or
resumption whose line mentions a cache or resumption; FILE argument if it
takes one), TCP Fast Open from a --tcp-fastopen line, batch mode from a
"--batch DIR" line (or --tlsmail-batch), BDAT from what the sink saw (it
always offers CHUNKING but on the "nochunk" listener), a small BearSSL
profile from the option list in tlsmail.h's doc block.

--write puts the report into bench/RESULTS.md (machine, load, versions,
tables, verdicts against the 0.2 targets).
"""
import argparse
import glob
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIB = os.path.join(ROOT, "tests", "lib")
sys.path.insert(0, HERE)
from netdelay import DELAYED_NAME, DIRECT_NAME, NetDelay, stop_child, tcp_ext  # noqa: E402
from sinkcheck import Checker  # noqa: E402

PYTHON = "/usr/bin/python3"
USER, PASS = "bench@example.org", "bench-pass"
FROM, TO = "bench@example.org", "rcpt@example.org"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CLIENTS = ["tlsmail-send", "curl", "msmtp", "python smtplib"]
BASE = "curl"
LIB_ONE_CALL = "tlsmail.h one call (bench/many.c --transact)"
# tlsmail-send built as make builds it plus -DTLSMAIL_SMALL: what the small
# profile costs, beside the default, in (a) and (d)
SMALL_SEND = "tlsmail-send -DTLSMAIL_SMALL"
REF_RESUMED = "python smtplib, TLS session resumed (reference)"
REF_CURL_TFO = "curl --tcp-fastopen (reference)"

# The 0.2 targets, as ratios to curl from the same run unless said.
TARGETS = {
    "a": "wall <= 0.50, CPU <= 0.45, peak RSS <= 0.18",
    "b": "wall <= 0.60; tlsmail.h's heap <= 16 KB",
    "c": "<= 6 with session resumption, <= 5 with resumption + BDAT",
    "d": ">= 1 GB/s and >= 2x curl; peak RSS <= 4 MiB",
    "e": "100 processes >= 3x curl; 1,000 on one connection >= 1.5x curl",
}
HEAP_LIMIT = 16 * 1024
RSS_LIMIT_KB = 4 * 1024
# (f), in octets of the stripped file (KB = 1000 octets, as the README counts)
SIZE_LIMITS = {"glibc": 150_000, "musl": 190_000, "own_text": 24_000}
# How the README says to build for size: every function and object in its
# own section for --gc-sections, and no unwind tables (only exceptions,
# thread cancellation and backtrace() read them, none of which
# tlsmail-send uses; they were 16 KB of it). PIE and RELRO stay: the binary parses what
# servers send.
SIZE_CFLAGS = ["-Os", "-ffunction-sections", "-fdata-sections", "-fno-asynchronous-unwind-tables"]
# With glibc 2.36 and binutils 2.38 on, a PIE's relative relocations are
# stored as a bitmap (DT_RELR) instead of 24 octets each: 12 KB less for
# tlsmail-send, the addresses still randomised. Used where the linker
# takes it.
SIZE_RELR = "-Wl,-z,pack-relative-relocs"

SMTPLIB = r"""
import smtplib, socket, ssl, sys
where, cafile, user, pw, frm, to, count = sys.argv[1:8]

def addr(s):                # "[HOST:]PORT"
    host, _, port = s.rpartition(":")
    return host or "localhost", int(port)
ctx = ssl.create_default_context(cafile=cafile or None)
msg = sys.stdin.buffer.read()

class SMTP(smtplib.SMTP_SSL):
    session = None
    def _get_socket(self, host, port, timeout):
        raw = socket.create_connection((host, port), timeout)
        return self.context.wrap_socket(raw, server_hostname=self._host, session=SMTP.session)

if len(sys.argv) > 8:      # a TLS session from another connection first, to resume
    with SMTP(*addr(sys.argv[8]), context=ctx) as s:
        s.noop()
        SMTP.session = s.sock.session
with SMTP(*addr(where), context=ctx) as s:
    if SMTP.session and not s.sock.session_reused:
        sys.exit("the TLS session was not resumed")
    s.login(user, pw)
    for _ in range(int(count)):
        s.sendmail(frm, [to], msg)
"""

VERBOSE = False


def log(*a):
    print(*a, flush=True)


def vlog(*a):
    if VERBOSE:
        print(" ", *a, flush=True)


class Skip(Exception):
    """A measurement that cannot be made here; the text says why."""


# ------------------------------------------------------------------ messages --

def small_message():
    """2,048 octets, CRLF, with every header msmtp would otherwise add
    (Date, Message-ID) and a line that needs dot-stuffing."""
    head = ("From: Bench <%s>\r\nTo: <%s>\r\nSubject: benchmark\r\n"
            "Date: Tue, 01 Dec 2026 09:00:00 +0000\r\n"
            "Message-ID: <bench.2kib@example.org>\r\n\r\n" % (FROM, TO)).encode()
    line = b"The quick brown fox jumps over the lazy dog 0123456789.\r\n"
    body = b".A line that starts with a dot.\r\n"
    body += line * ((2048 - len(head) - len(body)) // len(line) + 1)
    msg = (head + body)[:2048 - 2] + b"\r\n"
    assert len(msg) == 2048
    return msg


def big_message(size):
    """size octets: long lines (998, the RFC 5321 maximum), 76-octet lines,
    and lines that need dot-stuffing ('.', '..', '.x...'); deterministic."""
    head = ("From: Bench <%s>\r\nTo: <%s>\r\nSubject: big benchmark\r\n"
            "Date: Tue, 01 Dec 2026 09:00:00 +0000\r\n"
            "Message-ID: <bench.big@example.org>\r\n\r\n" % (FROM, TO)).encode()
    rng = random.Random(2026)
    printable = bytes(range(33, 127)) + b"    "
    table = bytes(printable[i % len(printable)] for i in range(256))
    lines = []
    total = 0
    while total < (1 << 20):
        r = rng.random()
        if r < 0.60:
            n = 998
        elif r < 0.90:
            n = 76
        else:
            n = rng.randrange(0, 200)
        text = rng.randbytes(n).translate(table)
        if r >= 0.95:
            text = rng.choice([b".", b"..", b"." + text[:997], b". " + text[:996]])
        lines.append(text + b"\r\n")
        total += len(lines[-1])
    block = b"".join(lines)
    room = size - len(head)
    body = block * (room // len(block) + 1)
    cut = body.rfind(b"\r\n", 0, room - 2) + 2
    pad = room - cut - 2
    body = body[:cut] + b"x" * pad + b"\r\n"
    msg = head + body
    assert len(msg) == size and pad <= 998
    return msg


# -------------------------------------------------------------------- tools --

def warnings():
    with open(os.path.join(LIB, "warnings")) as f:
        return ["-std=c99"] + f.read().split()


def build_c(src, out, libs=(), deps=(), flags=()):
    """out from src, unless out is newer than src and every one of deps."""
    if os.path.exists(out) and all(os.path.getmtime(out) > os.path.getmtime(f) for f in (src,) + tuple(deps)):
        return out
    cmd = [os.environ.get("CC", "cc"), "-O2"] + warnings() + list(flags) + [src, "-o", out] + list(libs)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode:
        raise SystemExit("bench: building %s failed:\n%s" % (src, r.stderr))
    return out


def run_text(cmd, timeout=30, env=None):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return "(%s)" % e


class Spawner:
    def __init__(self, path, work):
        self.path, self.work = path, work
        self.errfile = os.path.join(work, "stderr")

    def run(self, cmd, stdin="/dev/null", timeout=60.0, env=None, count=1, par=1, prefix=()):
        """Runs cmd count times (par at once); returns the launcher's figures.
        The client's stderr is kept for the error message. prefix: what
        the launcher itself runs under (nsenter into a namespace)."""
        open(self.errfile, "w").close()
        argv = list(prefix) + [self.path, "-t", str(int(timeout * 1000)), "-i", stdin,
                               "-e", self.errfile, "-n", str(count), "-j", str(par)] + cmd
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout + 30)
        m = dict(kv.split("=", 1) for kv in p.stdout.split())
        if "runs" not in m:
            raise RuntimeError("spawn: %s %s" % (p.stdout, p.stderr))
        res = {"runs": int(m["runs"]), "failed": int(m["failed"]),
               "wall_ms": int(m["wall_ns"]) / 1e6,
               "cpu_ms": (int(m["user_us"]) + int(m["sys_us"])) / 1e3,
               "rss_kb": int(m["maxrss_kb"]), "status": m["status"]}
        if res["failed"]:
            with open(self.errfile, errors="replace") as f:
                res["stderr"] = f.read().strip()[-400:]
        return res


# --------------------------------------------------------------------- sink --

class Sink:
    LISTEN = ("imp=implicit", "nochunk=implicit,nochunking", "st=starttls")

    def __init__(self, binary, pki, work, name="good", listen=LISTEN, prefix=(), extra=(),
                 tag="sink", max_seconds=7200):
        """The sink with pki/name.crt and .key; prefix: what it runs under
        (nsenter into the far namespace of phase (c)); extra: more options."""
        self.events = []
        self.cond = threading.Condition()
        self.ports = {}
        self.err = open(os.path.join(work, tag + ".err"), "w")
        argv = list(prefix) + [binary, "--cert", os.path.join(pki, name + ".crt"),
                               "--key", os.path.join(pki, name + ".key"), "--user", USER,
                               "--pass", PASS, "--idle-ms", "60000", "--max-seconds",
                               str(int(max_seconds))] + list(extra)
        for spec in listen:
            argv += ["--listen", spec]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True, bufsize=1)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        end = time.monotonic() + 10
        with self.cond:
            while not any(e[0] == "ready" for e in self.events):
                if time.monotonic() > end or self.proc.poll() is not None:
                    if self.proc.poll() is None:
                        self.proc.kill()
                        self.proc.wait(5)
                    raise SystemExit("bench: the sink did not start (see %s)" % self.err.name)
                self.cond.wait(0.1)
        for e in self.events:
            if e[0] == "listen":
                self.ports[e[1]] = int(e[2])

    def _read(self):
        for line in self.proc.stdout:
            parts = line.split()
            if not parts:
                continue
            ev = [parts[0]] + [p for p in parts[1:] if "=" not in p]
            kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
            with self.cond:
                self.events.append((ev[0], *ev[1:], kv) if kv else tuple(ev))
                self.cond.notify_all()

    def mark(self):
        with self.cond:
            return len(self.events)

    def expect(self, want):
        """Tells the sink what the next messages must be: (bytes, sum)."""
        if want == getattr(self, "_expect", None):
            return
        mark = self.mark()
        self.proc.stdin.write("expect %d %s\n" % want)
        self.proc.stdin.flush()
        end = time.monotonic() + 5
        with self.cond:
            while not any(e[0] == "expect" for e in self.events[mark:]):
                if time.monotonic() > end:
                    raise RuntimeError("the sink did not take the expectation")
                self.cond.wait(0.05)
        self._expect = want

    def wait(self, since, nmsgs, timeout=5.0, closes=0):
        """Events after since, once nmsgs messages (and closes connection
        ends) have been reported, or timeout seconds have passed."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                new = self.events[since:]
                m = sum(1 for e in new if e[0] == "msg")
                c = sum(1 for e in new if e[0] == "close")
                if (m >= nmsgs and c >= closes) or time.monotonic() > end:
                    return new
                self.cond.wait(0.05)

    def stop(self):
        stop_child(self.proc)
        self.err.close()


def sum_of(sink_bin, path):
    out = subprocess.run([sink_bin, "--sum", path], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    return int(out[0]), out[1]


def check_msgs(events, n, expect, what):
    """Raises unless exactly n intact messages arrived."""
    msgs = [e[-1] for e in events if e[0] == "msg"]
    if len(msgs) != n:
        raise RuntimeError("%s: the server got %d messages, not %d" % (what, len(msgs), n))
    bad = [m for m in msgs if (int(m["bytes"]), m["sum"]) != expect or m["verdict"] != "ok"]
    if bad:
        raise RuntimeError("%s: %d of %d messages differ from what was sent (first: %s bytes, "
                           "sum %s; sent %d, %s)" % (what, len(bad), n, bad[0]["bytes"],
                                                     bad[0]["sum"], expect[0], expect[1]))
    return msgs


# ------------------------------------------------------------------ clients --

class Clients:
    """The command line of every client for a port, a trust mode ('cafile':
    the test CA only; 'system': the default path, pointed at the system
    bundle + test CA) and a variant (tlsmail-send's session cache)."""

    def __init__(self, a, work, pki):
        self.work = work
        self.ca = os.path.join(pki, "ca.crt")
        self.bundle = os.path.join(work, "system+test-ca.crt")
        self.tlsmail = os.path.abspath(a.tlsmail_send)
        self.tlsmail_small = a.tlsmail_small      # built by main()
        self.pwfile = os.path.join(work, "password")
        with open(self.pwfile, "w") as f:
            f.write(PASS + "\n")
        self.msmtprc = self.msmtp_config("localhost")
        self.smtplib = os.path.join(work, "smtplib_send.py")
        with open(self.smtplib, "w") as f:
            f.write(SMTPLIB)
        self.have_bundle = os.path.exists(SYSTEM_BUNDLE)
        if self.have_bundle:
            with open(self.bundle, "wb") as out:
                for p in (SYSTEM_BUNDLE, self.ca):
                    with open(p, "rb") as f:
                        out.write(f.read())
        self.available = {}
        for name, exe in (("tlsmail-send", self.tlsmail), ("curl", "curl"), ("msmtp", "msmtp"),
                          ("python smtplib", PYTHON)):
            path = shutil.which(exe)
            self.available[name] = path is not None
        self.home = os.path.join(work, "home")
        os.makedirs(self.home, exist_ok=True)
        self.noconfig = os.path.join(work, "tlsmail-send.conf")
        open(self.noconfig, "w").close()
        self.features = probe_features(self.tlsmail, a)

    def msmtp_config(self, host):
        """msmtp's configuration for host (its --host would skip the file)."""
        path = os.path.join(self.work, "msmtprc" if host == "localhost" else "msmtprc-" + host)
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write("account default\nhost %s\ntls on\ntls_starttls off\nauth plain\n"
                        "user %s\npassword %s\nfrom %s\n" % (host, USER, PASS, FROM))
            os.chmod(path, 0o600)
        return path

    def env(self, extra=None):
        """A small, fixed environment: no user configuration (HOME is a
        fresh directory), no proxy variables, C locale."""
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home, "LC_ALL": "C"}
        e.update(extra or {})
        return e

    def cmd(self, name, port, trust="cafile", cache=None, count=1, batch_dir=None, prime=None,
            host="localhost", tfo=False):
        """(argv, env) for one send (or one batch) to host:port; prime:
        (host, port) of a connection before it, whose TLS session the send
        resumes (Python's smtplib only); tfo: TCP Fast Open (tlsmail-send
        when its --help has the flag, curl)."""
        sysenv = trust == "system"
        if tfo and not (name == "curl" or (name == "tlsmail-send" and self.features["tfo"])):
            raise KeyError("%s: no TCP Fast Open option" % name)
        if name in ("tlsmail-send", SMALL_SEND):
            argv = [self.tlsmail_small if name == SMALL_SEND else self.tlsmail, "--server", "%s:%d" % (host, port), "--user", USER,
                    "--password-file", self.pwfile, "--auth", "plain", "--from", FROM]
            if not sysenv:
                argv += ["--cafile", self.ca]
            if cache:
                flag, takes = self.features["session"]
                argv += [flag, cache] if takes else [flag]
            if tfo:
                argv += [self.features["tfo"]]
            if batch_dir:
                argv += self.features["batch_args"](batch_dir)
            # TLSMAIL_CONFIG: only this (empty) file, not /etc/tlsmail-send.conf
            extra = {"TLSMAIL_CONFIG": self.noconfig}
            if sysenv:
                extra["SSL_CERT_FILE"] = self.bundle
            return argv + [TO], self.env(extra)
        if name == "curl":
            argv = ["curl", "-q", "-sS", "--ssl-reqd", "--url", "smtps://%s:%d" % (host, port),
                    "--user", "%s:%s" % (USER, PASS), "--mail-from", FROM, "--mail-rcpt", TO]
            if tfo:
                argv += ["--tcp-fastopen"]
            argv += ["-T", os.path.join(batch_dir, "m[1-%d].eml" % count)] if batch_dir \
                else ["--upload-file", "-"]
            if not sysenv:
                argv += ["--cacert", self.ca]
            return argv, self.env({"CURL_CA_BUNDLE": self.bundle} if sysenv else None)
        if name == "msmtp":
            return (["msmtp", "-C", self.msmtp_config(host), "--port=%d" % port,
                     "--tls-trust-file=" + (self.bundle if sysenv else self.ca), TO], self.env())
        if name == "python smtplib":
            return ([PYTHON, self.smtplib, "%s:%d" % (host, port), "" if sysenv else self.ca, USER,
                     PASS, FROM, TO, str(count)] + (["%s:%d" % prime] if prime else []),
                    self.env({"SSL_CERT_FILE": self.bundle} if sysenv else None))
        raise KeyError(name)


def probe_features(tlsmail, a):
    """What this tlsmail-send can do, from its --help (and the header for
    the small profile). Each entry is None when absent."""
    help_text = run_text([tlsmail, "--help"])
    f = {"help": help_text, "session": None, "batch": None, "batch_args": None, "tfo": None}
    # TCP Fast Open: only the option by its name (it takes no argument)
    m = re.search(r"^\s*(?:-\w, )?(--tcp-fastopen)(?![\w-])(?![ =][A-Z])", help_text, re.M)
    if m:
        f["tfo"] = m.group(1)
    # an option line about TLS sessions that mentions a cache or resumption
    # (not, say, a time limit for the whole SMTP session)
    for line in help_text.splitlines():
        m = re.match(r"\s*(?:-\w, )?(--[a-z0-9-]+)(?:[ =]([A-Z][A-Z_]*))?", line)
        if m and re.search(r"session|resum", m.group(1)) and re.search(r"cache|resum", line, re.I):
            f["session"] = (m.group(1), bool(m.group(2)))
            break
    if a.tlsmail_batch:
        tmpl = a.tlsmail_batch.split()
        f["batch"] = a.tlsmail_batch
        f["batch_args"] = lambda d: [t.replace("{dir}", d) for t in tmpl]
    else:
        m = re.search(r"^\s*(--batch[a-z0-9-]*)(?:[ =]([A-Z][A-Z_]*))?(.*)$", help_text, re.M)
        # "--batch DIR", or "--batch FILE" whose description says a
        # directory may be given for FILE
        takes_dir = m and (m.group(2) in ("DIR", "DIRECTORY") or
                           re.search(r"directory", help_text[m.start():m.start() + 300]))
        if takes_dir:
            flag = m.group(1)
            f["batch"] = "%s DIR" % flag
            f["batch_args"] = lambda d: [flag, d]
        elif m:
            f["batch"] = None
            f["batch_unknown"] = m.group(0).strip()
    return f


# ---------------------------------------------------------------- the bench --

class Bench:
    def __init__(self, a, work, sink_bin, spawner, sink, clients):
        self.a, self.work = a, work
        self.sink_bin, self.sp, self.sink, self.cl = sink_bin, spawner, sink, clients
        self.results = {}
        self.notes = []
        self.phase_load = {}
        self.names = [n for n in CLIENTS if clients.available[n]]
        self.small = os.path.join(work, "small.eml")
        self.many_bin = None          # bench/many.c, built by main()
        self.small_names = [SMALL_SEND] if clients.available["tlsmail-send"] else []
        self.floor_bin = None         # bench/floor.c, built by main()
        with open(self.small, "wb") as f:
            f.write(small_message())
        self.small_sum = sum_of(sink_bin, self.small)

    # one checked send ------------------------------------------------------
    def send(self, name, port, trust="cafile", msgfile=None, expect=None, cache=None,
             timeout=60.0, prime=None, host="localhost", net=None, tfo=False, need_tfo=False,
             cmd=None):
        """One checked send. With net (phase (c)'s NetDelay) the client runs
        in its near namespace and the forwarder's record of the connection
        comes back: waits counted ("turns") and whether TCP Fast Open
        carried the ClientHello ("tfo"); need_tfo: fail unless it did (the
        SYN's data acknowledged by the SYN-ACK, and TCPFastOpenPassive up
        by one in the server's namespace). cmd: (argv, env) of a program
        that is not one of the clients (bench/many.c)."""
        msgfile = msgfile or self.small
        expect = expect or self.small_sum
        argv, env = cmd or self.cl.cmd(name, port, trust, cache, prime=prime, host=host, tfo=tfo)
        self.sink.expect(expect)
        mark = self.sink.mark()
        passive = tcp_ext(self.sink.proc.pid).get("TCPFastOpenPassive", 0) if net else 0
        r = self.sp.run(argv, stdin=msgfile, timeout=timeout, env=env,
                        prefix=net.near if net else ())
        if r["failed"]:
            if net:
                net.take(1)
            raise RuntimeError("%s failed (%s): %s" % (name, r["status"], r.get("stderr", "")))
        ev = self.sink.wait(mark, 1, closes=2 if prime else 1)
        msgs = check_msgs(ev, 1, expect, name)
        r["mode"] = msgs[0]["mode"]
        r["resumed"] = msgs[0]["resumed"] == "1"
        r["sink_cpu_ms"] = int(msgs[0]["cpu_us"]) / 1e3
        r["sink_body_ms"] = int(msgs[0]["body_us"]) / 1e3
        r["conns"] = sum(1 for e in ev if e[0] == "open")
        if net:
            conns = net.take()
            mine = [c for c in conns if c["addr"] == net.addr[host] and c["port"] == port]
            want = 2 if prime and prime == (host, port) else 1
            if len(mine) != want:
                raise RuntimeError("%s: the forwarder saw %d connections to %s:%d, not %d"
                                   % (name, len(mine), host, port, want))
            c = mine[-1]
            r["turns"] = c["turns"]
            r["tfo"] = c["syn_data"] > 0 and c["syn_data_acked"]
            r["tfo_passive"] = tcp_ext(self.sink.proc.pid).get("TCPFastOpenPassive", 0) - passive
            vlog("%s to %s (ms since SYN, who, payload, flags, *wait):" % (name, host),
                 " ".join("%s%s%s:%d%s" % ("*" if t else "", w, ms, n, f) for ms, w, n, f, t
                          in c["timeline"]))
            if need_tfo and not (r["tfo"] and r["tfo_passive"] >= 1):
                raise RuntimeError(
                    "%s to %s did not use TCP Fast Open: the SYN carried %d octets (TFO option: "
                    "%s), %sacknowledged by the SYN-ACK (option: %s); TCPFastOpenPassive in the "
                    "server's namespace +%d" % (name, host, c["syn_data"], c["syn_opt"],
                                                 "" if c["syn_data_acked"] else "not ",
                                                 c["synack_opt"], r["tfo_passive"]))
        return r

    def rounds(self, phase, n, fn, names):
        """fn(name, round) for every name, n rounds after a warm-up round,
        the order rotated each round; stops at the phase's time cap. A
        client that fails is dropped from the phase, with its error."""
        out = {k: [] for k in names}
        errors = {}
        end = time.monotonic() + self.a.phase_cap
        live = list(names)
        for rnd in range(n + 1):
            if rnd and time.monotonic() > end:
                self.notes.append("(%s) time cap of %d s reached after %d rounds"
                                  % (phase, self.a.phase_cap, rnd - 1))
                break
            order = live[rnd % len(live):] + live[:rnd % len(live)] if live else []
            for k in order:
                try:
                    r = fn(k, rnd)
                except (RuntimeError, Skip, subprocess.TimeoutExpired, OSError) as e:
                    errors[k] = str(e)
                    live.remove(k)
                    log("  %s: %s" % (k, e))
                    continue
                if rnd:
                    out[k].append(r)
                vlog(phase, rnd, k, {x: r[x] for x in r if x != "stderr"})
        return out, errors

    # (a), (b) ----------------------------------------------------------------
    def phase_send(self, key, trust):
        port = self.sink.ports["imp"]
        names = self.names + (self.small_names if key == "a" else [])
        res, err = self.rounds(key, self.a.rounds, lambda k, r: self.send(k, port, trust), names)
        rows = {}
        for k in names:
            if k in err or not res[k]:
                rows[k] = {"error": err.get(k, "no samples")}
                continue
            rows[k] = {"wall_ms": med(res[k], "wall_ms"), "cpu_ms": med(res[k], "cpu_ms"),
                       "rss_kb": med(res[k], "rss_kb"), "n": len(res[k]),
                       "wall_range": spread(res[k], "wall_ms"), "mode": res[k][0]["mode"]}
        for k in names:
            if "error" in rows[k]:
                continue
            try:
                rows[k]["heap"] = self.heap(k, port, trust)
            except (RuntimeError, Skip, subprocess.TimeoutExpired, OSError) as e:
                rows[k]["heap_error"] = str(e)
        self.results[key] = rows

    def heap(self, name, port, trust):
        """Peak heap of one send under valgrind's massif: every malloc of
        the process, and separately the library's own (allocations made
        directly from tlsmail.h: trust loading)."""
        if not shutil.which("valgrind"):
            raise Skip("valgrind not installed")
        out = os.path.join(self.work, "massif.out")
        argv, env = self.cl.cmd(name, port, trust)
        self.sink.expect(self.small_sum)
        mark = self.sink.mark()
        r = self.sp.run(["valgrind", "--tool=massif", "--quiet", "--threshold=0",
                         "--peak-inaccuracy=0", "--detailed-freq=1", "--massif-out-file=" + out]
                        + argv, stdin=self.small, timeout=300, env=env)
        if r["failed"]:
            raise RuntimeError("under valgrind: %s %s" % (r["status"], r.get("stderr", "")))
        check_msgs(self.sink.wait(mark, 1), 1, self.small_sum, name + " (massif)")
        return parse_massif(out)

    # (c) ---------------------------------------------------------------------
    def phase_rtt(self):
        rtt_ms = self.a.rtt_ms
        tfo = self.cl.features["tfo"]
        session = self.cl.features["session"]
        variants = []           # (label, client, listener, cache: True/False/"prime", TFO?)
        na = {}                 # rows that cannot be measured: label -> why
        order = []              # every row's label, in the table's order

        def add(label, *v):
            variants.append((label,) + v)
            order.append(label)

        for k in self.names:
            add(k, k, "imp", False, False)
        if self.cl.available["python smtplib"]:
            # What a resumed TLS 1.2 handshake costs against this server,
            # from a client that can resume today.
            add(REF_RESUMED, "python smtplib", "imp", "prime", False)
        if self.cl.available["tlsmail-send"]:
            add("tlsmail-send, no CHUNKING", "tlsmail-send", "nochunk", False, False)
            if session:
                add("tlsmail-send, resumed, no CHUNKING", "tlsmail-send", "nochunk", True, False)
                add("tlsmail-send, resumed", "tlsmail-send", "imp", True, False)
            tfo_rows = [("tlsmail-send, TCP Fast Open", "imp", False)]
            if session:
                tfo_rows += [("tlsmail-send, resumed, no CHUNKING, TCP Fast Open", "nochunk", True),
                             ("tlsmail-send, resumed, TCP Fast Open", "imp", True)]
            for label, lst, cache in tfo_rows:
                if tfo:
                    add(label, "tlsmail-send", lst, cache, True)
                else:
                    na[label] = "no --tcp-fastopen in tlsmail-send's --help"
                    order.append(label)
        if self.cl.available["curl"]:
            add(REF_CURL_TFO, "curl", "imp", False, True)
        by_label = {v[0]: v for v in variants}
        net = NetDelay(rtt_ms / 2000.0, self.work, max_seconds=self.a.phase_cap + 300,
                       python=PYTHON)
        saved, far = self.sink, None
        try:
            pki = self.far_pki()
            try:
                far = Sink(self.sink_bin, pki, self.work, name="far",
                           listen=("imp=implicit", "nochunk=implicit,nochunking"),
                           prefix=net.far, extra=["--addr", "0.0.0.0"], tag="sink-far",
                           max_seconds=self.a.phase_cap + 300)
            except SystemExit as e:     # the phase fails, not the benchmark
                raise RuntimeError(str(e))
            self.sink = far
            caches = {}
            for label, k, lst, cache, _ in variants:
                if cache is True:   # one per server name: a client's cache may be keyed by it
                    caches[label] = (os.path.join(self.work, "cache-%s-direct" % lst),
                                     os.path.join(self.work, "cache-%s-delayed" % lst))
                    for f in caches[label]:
                        if os.path.exists(f):
                            os.unlink(f)

            def one(label, rnd):
                _, k, lst, cache, use_tfo = by_label[label]
                cd, cp = caches.get(label, (None, None))
                port = self.sink.ports[lst]
                # smtplib's first connection, whose session it resumes, is
                # never delayed: only the measured one is
                prime = (DIRECT_NAME, self.sink.ports["imp"]) if cache == "prime" else None
                # the warm-up round gets each name its TFO cookie; every
                # timed send after it must use TFO
                need = use_tfo and rnd > 0
                d = self.send(k, port, cache=cd, prime=prime, host=DIRECT_NAME, net=net,
                              tfo=use_tfo, need_tfo=need)
                p = self.send(k, port, cache=cp, prime=prime, host=DELAYED_NAME, net=net,
                              tfo=use_tfo, need_tfo=need, timeout=120)
                p["direct_ms"] = d["wall_ms"]
                if cache and (rnd or cache == "prime") and not (p["resumed"] and d["resumed"]):
                    raise RuntimeError("the session was not resumed (the sink saw a full handshake)")
                return p
            res, err = self.rounds("c", self.a.rounds, one, [v[0] for v in variants])
        finally:
            self.sink = saved
            if far:
                far.stop()
            net.stop()
        rows = {}
        for label in order:
            if label in na:
                rows[label] = {"na": na[label], "client": "tlsmail-send", "tfo_flag": True}
                continue
            _, k, lst, cache, use_tfo = by_label[label]
            if label in err or not res[label]:
                rows[label] = {"error": err.get(label, "no samples"), "client": k,
                               "tfo_flag": use_tfo}
                continue
            rs = res[label]
            rows[label] = {"wall_rt": (med(rs, "wall_ms") - med(rs, "direct_ms")) / rtt_ms,
                           "delayed_ms": med(rs, "wall_ms"), "direct_ms": med(rs, "direct_ms"),
                           "turns": med(rs, "turns"), "turns_min": min(r["turns"] for r in rs),
                           "turns_max": max(r["turns"] for r in rs),
                           "mode": rs[0]["mode"], "resumed": all(r["resumed"] for r in rs),
                           "tfo": all(r["tfo"] for r in rs), "tfo_flag": use_tfo,
                           "listener": lst, "n": len(rs), "client": k}
            rows[label]["rt"] = round(rows[label]["wall_rt"])
        self.results["c"] = rows

    def far_pki(self):
        """A server certificate for the far namespace's two names, from the
        test CA (tests/lib/pki.sh's, which names only localhost)."""
        pki = os.path.join(self.work, "pki")
        crt, key = os.path.join(pki, "far.crt"), os.path.join(pki, "far.key")
        if os.path.exists(crt):
            return pki
        ext = os.path.join(pki, "far.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s,DNS:%s\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
                    % (DELAYED_NAME, DIRECT_NAME))
        csr = os.path.join(pki, "far.csr")
        for cmd in (["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-out", key],
                    ["openssl", "req", "-new", "-key", key, "-subj", "/O=tlsmail test/CN=" + DELAYED_NAME,
                     "-out", csr],
                    ["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(pki, "ca.crt"),
                     "-CAkey", os.path.join(pki, "ca.key"), "-set_serial",
                     "0x%016x" % random.getrandbits(63), "-days", "30", "-sha256", "-extfile", ext,
                     "-out", crt]):
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            if r.returncode:
                raise RuntimeError("%s: %s" % (" ".join(cmd[:2]), r.stderr.strip()[-300:]))
        return pki

    # (d) ---------------------------------------------------------------------
    def phase_big(self):
        path = os.path.join(self.work, "big.eml")
        with open(path, "wb") as f:
            f.write(big_message(self.a.big_bytes))
        expect = sum_of(self.sink_bin, path)
        port = self.sink.ports["imp"]
        n = max(1, min(self.a.rounds, self.a.big_rounds))
        # The library's one call, beside the tools: tlsmail_transact with
        # the whole message mapped from the file (BDAT here).
        lib = ([self.many_bin, "--server", "localhost:%d" % port, "--cafile",
                self.cl.ca, "--user", USER, "--password-file", self.cl.pwfile, "--from", FROM,
                "--to", TO, "--count", "1", "--message", path, "--transact"], self.cl.env())
        names = self.names + self.small_names + [LIB_ONE_CALL]
        res, err = self.rounds("d", n, lambda k, r: self.send(
            k, port, msgfile=path, expect=expect, timeout=self.a.big_timeout,
            cmd=lib if k == LIB_ONE_CALL else None), names)
        rows = {}
        for k in names:
            if k in err or not res[k]:
                rows[k] = {"error": err.get(k, "no samples")}
                continue
            wall = med(res[k], "wall_ms")
            rows[k] = {"mbps": self.a.big_bytes / 1e6 / (wall / 1000), "wall_ms": wall,
                       "cpu_ms": med(res[k], "cpu_ms"), "rss_kb": med(res[k], "rss_kb"),
                       "mode": res[k][0]["mode"], "n": len(res[k]),
                       "sink_cpu_ms": med(res[k], "sink_cpu_ms"),
                       "sink_body_ms": med(res[k], "sink_body_ms")}
        self.results["d"] = rows
        os.unlink(path)
        # What no client can avoid for this message here: sealing it and
        # writing it to loopback TCP, each the least of 5 runs.
        out = run_text([self.floor_bin, str(self.a.big_bytes), "5"], timeout=300)
        m = re.match(r"gcm_ms=([\d.]+) tcp_ms=([\d.]+) impl=(\S+)$", out)
        self.results["d_floor"] = ({"gcm_ms": float(m.group(1)), "tcp_ms": float(m.group(2)),
                                    "impl": m.group(3)} if m else {"error": out[-200:]})

    # (e) ---------------------------------------------------------------------
    def phase_many(self):
        port = self.sink.ports["imp"]
        nproc, par, nbatch = self.a.procs, self.a.procs_parallel, self.a.batch
        variants = [(k, k, False) for k in self.names]
        if self.cl.available["tlsmail-send"] and self.cl.features["session"]:
            variants.append(("tlsmail-send, session cache", "tlsmail-send", True))
        cache = os.path.join(self.work, "cache-procs")

        def procs(label, rnd):
            _, k, use_cache = next(v for v in variants if v[0] == label)
            if use_cache and os.path.exists(cache):
                os.unlink(cache)       # every round starts cold: the first ones fill it
            argv, env = self.cl.cmd(k, port, cache=cache if use_cache else None)
            self.sink.expect(self.small_sum)
            mark = self.sink.mark()
            r = self.sp.run(argv, stdin=self.small, timeout=self.a.phase_cap, env=env,
                            count=nproc, par=par)
            if r["failed"]:
                raise RuntimeError("%d of %d runs failed (%s): %s"
                                   % (r["failed"], nproc, r["status"], r.get("stderr", "")))
            ev = self.sink.wait(mark, nproc, timeout=10, closes=nproc)
            msgs = check_msgs(ev, nproc, self.small_sum, label)
            r["resumed"] = sum(1 for m in msgs if m["resumed"] == "1")
            r["msgps"] = nproc / (r["wall_ms"] / 1000)
            return r
        res, err = self.rounds("e", self.a.rounds, procs, [v[0] for v in variants])
        rows = {}
        for label, k, use_cache in variants:
            if label in err or not res[label]:
                rows[label] = {"error": err.get(label, "no samples")}
                continue
            rows[label] = {"msgps": med(res[label], "msgps"), "cpu_ms": med(res[label], "cpu_ms") / nproc,
                           "resumed": med(res[label], "resumed"), "n": len(res[label])}
        self.results["e_procs"] = rows

        # 1,000 messages on one connection
        bdir = os.path.join(self.work, "batch")
        os.makedirs(bdir, exist_ok=True)
        for i in range(1, nbatch + 1):
            os.symlink(self.small, os.path.join(bdir, "m%d.eml" % i))
        batchers = []
        na = {}
        for k in self.names:
            if k == "msmtp":
                na[k] = "sends one message per connection"
            elif k == "tlsmail-send" and not self.cl.features["batch"]:
                na[k] = ("no batch mode in --help" if "batch_unknown" not in self.cl.features
                         else "batch option not understood: %s" % self.cl.features["batch_unknown"])
            else:
                batchers.append(k)

        def batch(k, rnd):
            argv, env = self.cl.cmd(k, port, count=nbatch, batch_dir=bdir)
            self.sink.expect(self.small_sum)
            mark = self.sink.mark()
            r = self.sp.run(argv, stdin=self.small, timeout=self.a.phase_cap, env=env)
            if r["failed"]:
                raise RuntimeError("failed (%s): %s" % (r["status"], r.get("stderr", "")))
            ev = self.sink.wait(mark, nbatch, timeout=10, closes=1)
            check_msgs(ev, nbatch, self.small_sum, k)
            r["conns"] = sum(1 for e in ev if e[0] == "open")
            r["msgps"] = nbatch / (r["wall_ms"] / 1000)
            return r
        res, err = self.rounds("e", self.a.rounds, batch, batchers)
        rows = {}
        for k in self.names:
            if k in na:
                rows[k] = {"na": na[k]}
            elif k in err or not res[k]:
                rows[k] = {"error": err.get(k, "no samples")}
            else:
                rows[k] = {"msgps": med(res[k], "msgps"), "cpu_ms": med(res[k], "cpu_ms"),
                           "rss_kb": med(res[k], "rss_kb"), "conns": max(r["conns"] for r in res[k]),
                           "n": len(res[k])}
        self.results["e_batch"] = rows
        shutil.rmtree(bdir, ignore_errors=True)

    # (f) ---------------------------------------------------------------------
    def phase_footprint(self):
        """Stripped sizes: make's tlsmail-send, then tlsmail-send and the
        one call alone (tests/integration/gosend.c) built by SIZE_CFLAGS,
        each split by where its octets come from (ld's map); every build
        really sends once."""
        rows = {}
        bdir = os.path.join(self.work, "footprint")
        os.makedirs(bdir, exist_ok=True)
        send_src = os.path.join(ROOT, "examples", "tlsmail-send", "tlsmail-send.c")
        gosend_src = os.path.join(ROOT, "tests", "integration", "gosend.c")
        port = self.sink.ports["imp"]

        def measure(label, binary, mapfile=None, program=None):
            s = os.path.join(bdir, os.path.basename(binary) + ".stripped")
            shutil.copy(binary, s)
            subprocess.run(["strip", s], check=True, timeout=60)
            row = {"bytes": os.path.getsize(s), "size": size_of(s)}
            if mapfile:
                row["parts"] = link_parts(mapfile, program)
            try:
                if program:   # the one call: trust from SSL_CERT_FILE, as tlsmail_send reads it
                    self.send("gosend", port, cmd=(
                        [s, "plain", "localhost:%d" % port, USER, PASS, FROM, TO],
                        self.cl.env({"SSL_CERT_FILE": self.cl.ca})))
                else:
                    saved = self.cl.tlsmail
                    self.cl.tlsmail = s
                    try:
                        self.send("tlsmail-send", port)
                    finally:
                        self.cl.tlsmail = saved
                row["sends"] = "yes"
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                row["sends"] = "no: %s" % e
            rows[label] = row

        def build(label, cc, src, lib, extra, out, program=None):
            cmd = ([cc] + SIZE_CFLAGS + ["-DTLSMAIL_STARTTLS", "-I" + ROOT] + extra + [src, lib,
                   "-Wl,--gc-sections", "-Wl,-Map=" + out + ".map", "-o", out])
            if cc == "cc" and relr:
                cmd.append(SIZE_RELR)
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if r.returncode:
                rows[label] = {"error": "build failed: %s" % r.stderr.strip()[-300:]}
            else:
                measure(label, out, out + ".map", program)

        probe = os.path.join(bdir, "relr.c")
        with open(probe, "w") as f:
            f.write("int main(void) { return 0; }\n")
        relr = subprocess.run(["cc", probe, SIZE_RELR, "-o", probe[:-2]], capture_output=True,
                              timeout=60).returncode == 0
        self.results["f_relr"] = relr
        made = os.path.abspath(self.a.tlsmail_send)
        measure("make's tlsmail-send (-O2 -g; BearSSL %s)" % (
            "shared" if "libbearssl" in run_text(["ldd", made]) else "static"), made)
        label = "tlsmail-send; BearSSL shared (-lbearssl); glibc shared"
        build(label, "cc", send_src, "-lbearssl", [], os.path.join(bdir, "send-shared-bearssl"))
        cands = glob.glob("/usr/lib/*/libbearssl.a") + glob.glob("/usr/lib/libbearssl.a")
        label = "tlsmail-send; Debian's libbearssl.a (-O2); glibc shared"
        if cands:
            build(label, "cc", send_src, cands[0], [], os.path.join(bdir, "send-debian-bearssl"))
        else:
            rows[label] = {"na": "no libbearssl.a"}
        for cc, what, extra in (("cc", "glibc shared", []), ("musl-gcc", "static, musl", ["-static"])):
            lib, inc, why = self.bearssl_for_size(cc)
            targets = [("tlsmail-send", send_src, None),
                       ("the one call (tests/integration/gosend.c)", gosend_src, {"main"})]
            for small in (False, True):
                for name, src, program in targets:
                    label = "%s%s; BearSSL built -Os; %s" % (name, " -DTLSMAIL_SMALL" if small else "",
                                                             what)
                    if why:
                        rows[label] = {"na": why}
                        continue
                    out = os.path.join(bdir, "%s-%s%s" % (os.path.basename(src)[:-2],
                                                          os.path.basename(cc), "-small" if small else ""))
                    build(label, cc, src, lib, extra + ["-isystem", inc] +
                          (["-DTLSMAIL_SMALL"] if small else []), out, program)
        if uses_full_profile():
            rows["small profile"] = {"na": "tlsmail.h calls br_ssl_client_init_full"}
        else:
            self.notes.append("(f) small profile: tlsmail.h sets up only the suites and engines it "
                              "offers (no br_ssl_client_init_full) in every build; -DTLSMAIL_SMALL "
                              "also links one implementation of each piece (AES-GCM only, no "
                              "X25519, no AES-NI), and the targets are judged on those rows.")
        self.results["f"] = rows
        others = {}
        for name, exe in (("tlsmail-send", os.path.abspath(self.a.tlsmail_send)),
                          ("curl", shutil.which("curl")), ("msmtp", shutil.which("msmtp")),
                          ("python smtplib", PYTHON)):
            if exe:
                others[name] = closure(exe)
        self.results["f_closure"] = others

    def bearssl_for_size(self, cc):
        """(libbearssl.a, include dir, None) built by cc with SIZE_CFLAGS
        from BearSSL's source ($BEARSSL_SRC, else the Debian source tree
        tests/cross unpacks), cached in the build directory; (None, None,
        why) when there is no source or no cc."""
        if not shutil.which(cc):
            return None, None, "%s not installed%s" % (cc, " (musl-tools)" if "musl" in cc else "")
        src = os.environ.get("BEARSSL_SRC")
        if not src:
            trees = sorted(glob.glob(os.path.join(os.path.dirname(self.a.build_dir), "cross", "src",
                                                  "*", "bearssl-*", "src")))
            src = os.path.dirname(trees[-1]) if trees else None
        if not src or not os.path.isdir(os.path.join(src, "src")):
            return None, None, ("no BearSSL source: run make cross first (it unpacks Debian's), or "
                                "set BEARSSL_SRC to an unpacked bearssl tree")
        inc = os.path.join(src, "inc")
        out = os.path.join(self.a.build_dir, "bearssl-size-" + os.path.basename(cc))
        lib = os.path.join(out, "libbearssl.a")
        key = " ".join([cc] + SIZE_CFLAGS + [src])
        stamp = os.path.join(out, "key")
        if os.path.exists(lib) and os.path.exists(stamp) and open(stamp).read() == key:
            return lib, inc, None
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        files = sorted(glob.glob(os.path.join(src, "src", "**", "*.c"), recursive=True))
        log("  building BearSSL with %s %s (%d files, once)" % (cc, " ".join(SIZE_CFLAGS), len(files)))
        objs, procs = [], []
        for f in files:
            o = os.path.join(out, os.path.relpath(f, os.path.join(src, "src")).replace("/", "_")[:-2] + ".o")
            objs.append(o)
            procs.append(subprocess.Popen(["nice", "-n", "10", cc] + SIZE_CFLAGS +
                                          ["-c", "-I" + inc, "-I" + os.path.join(src, "src"), f, "-o", o]))
            if len(procs) >= 2 and procs.pop(0).wait(300):
                return None, None, "BearSSL did not build with %s" % cc
        if any(p.wait(300) for p in procs):
            return None, None, "BearSSL did not build with %s" % cc
        subprocess.run(["ar", "rcs", lib + ".tmp"] + objs, check=True, timeout=120)
        os.rename(lib + ".tmp", lib)
        with open(stamp, "w") as f:
            f.write(key)
        return lib, inc, None


def med(rs, key):
    return statistics.median(r[key] for r in rs)


def spread(rs, key):
    return [min(r[key] for r in rs), max(r[key] for r in rs)]


def parse_massif(path):
    """Peak useful heap over all snapshots: total, and the part allocated by
    callers in tlsmail.h (top-level entries of each detailed tree)."""
    total = lib = 0
    cur_total = cur_lib = 0
    debug_info = False
    with open(path) as f:
        for line in f:
            if line.startswith("snapshot="):
                total, lib = max(total, cur_total), max(lib, cur_lib)
                cur_total = cur_lib = 0
            elif line.startswith("mem_heap_B="):
                cur_total = int(line.split("=")[1])
            elif line.startswith(" n") and not line.startswith("  "):
                debug_info = debug_info or re.search(r"\(\S+\.[ch]:\d+\)", line) is not None
                if "(tlsmail.h:" in line:
                    cur_lib += int(line.split()[1])
    # without debug information no frame names tlsmail.h: unknown, not 0
    return {"total": max(total, cur_total), "lib": max(lib, cur_lib) if debug_info else None}


def size_of(path):
    out = run_text(["size", path]).splitlines()
    if len(out) >= 2:
        t, d, b = out[1].split()[:3]
        return {"text": int(t), "data": int(d), "bss": int(b)}
    return None


def link_parts(mapfile, program=None):
    """Octets of code (text) and constants (rodata, data) in a linked
    binary by origin, from ld's map: tlsmail.h, the program's own code,
    strings and constants the compiler merged (which name no function), BearSSL,
    and the C library with its start files. In the one source file,
    functions and objects named tlsmail_* are tlsmail.h's (a static object
    inside a function counts as the program's); program: the set of names
    that are the program's, the rest of that file being tlsmail.h's."""
    parts = {}
    lines = open(mapfile, errors="replace").read().split("\n")
    started = False
    for i, line in enumerate(lines):
        started = started or line.startswith("Linker script and memory map")
        if not started:
            continue
        if re.match(r"^ \.(text|rodata|data)\S*\s*$", line) and i + 1 < len(lines):
            line = line.rstrip() + " " + lines[i + 1].strip()   # a long name wraps
        m = re.match(r"^ (\.(text|rodata|data)\S*)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+)", line)
        if not m:
            continue
        sec, kind, size, obj = m.group(1), m.group(2), int(m.group(3), 16), m.group(4)
        if "libbearssl" in obj:
            who = "BearSSL"
        elif obj.startswith(tempfile.gettempdir()) and obj.endswith(".o"):   # the one source file
            name = re.sub(r"^\.(text|rodata|data)(\.(unlikely|startup|hot|rel\.ro\.local|rel\.ro|"
                          r"rel\.local|rel))?\.?", "", sec)
            if not name or re.match(r"^(str\d|cst\d)", name):
                who = "merged strings"
            elif program is not None:
                who = "program" if name.split(".")[0] in program else "tlsmail.h"
            else:
                who = "tlsmail.h" if name.startswith("tlsmail_") else "program"
        else:
            who = "C library, start files"
        p = parts.setdefault(who, {"code": 0, "const": 0})
        p["code" if kind == "text" else "const"] += size
    return parts


def closure(exe):
    """The binary and every shared library it loads (ldd), in bytes."""
    files = {os.path.realpath(exe)}
    for line in run_text(["ldd", exe]).splitlines():
        m = re.search(r"(/\S+) \(0x", line)
        if m:
            files.add(os.path.realpath(m.group(1)))
    return {"files": len(files), "bytes": sum(os.path.getsize(f) for f in files if os.path.exists(f)),
            "binary": os.path.getsize(os.path.realpath(exe))}


def uses_full_profile():
    """Whether the implementation calls BearSSL's everything-in profile."""
    with open(os.path.join(ROOT, "tlsmail.h"), errors="replace") as f:
        return re.search(r"\bbr_ssl_client_init_full\s*\(", f.read()) is not None


def small_profile_macro():
    """A compile-time option for a reduced BearSSL profile, if tlsmail.h's
    option list documents one."""
    with open(os.path.join(ROOT, "tlsmail.h"), errors="replace") as f:
        head = f.read(20000)
    m = re.search(r"COMPILE-TIME OPTIONS[^\n]*\n(.*?)\n(?=[A-Z])", head, re.S)
    if m:
        k = re.search(r"\b(TLSMAIL_\w*(?:SMALL|PROFILE|MINIMAL|TINY)\w*)\b", m.group(1))
        if k:
            return k.group(1)
    return None


# ------------------------------------------------------------------- report --

def ratio(x, base):
    return x / base if base else float("nan")


def verdict(ok):
    return "met" if ok else "MISSED"


def fmt_ratio(x):
    return "%.2fx" % x


METHOD = {
    "a": "Each client sends the same 2,048-octet message (AUTH PLAIN, implicit TLS, the test CA "
         "as the only trust) to the sink on 127.0.0.1. Wall: fork to exit; CPU: user + sys of "
         "the client; peak RSS: ru_maxrss. Heap: one more send under valgrind --tool=massif "
         "(--peak-inaccuracy=0, every snapshot detailed): the peak of all malloc'd bytes in the "
         "process; for tlsmail-send also the peak of the bytes allocated straight from "
         "tlsmail.h's code (the library's own, e.g. trust anchors).",
    "b": "As (a), with the trust each client finds by default, pointed at the system bundle "
         "(%s) with the test CA appended: SSL_CERT_FILE for tlsmail-send and Python; "
         "CURL_CA_BUNDLE for curl (its tool reads that, not SSL_CERT_FILE); msmtp "
         "--tls-trust-file (GnuTLS reads no variable)." % SYSTEM_BUNDLE,
    "c": "The clients run in a private network namespace, the sink in another; the two are "
         "joined by TUN devices (MTU 1500, as on Ethernet) and bench/netdelay.py, which "
         "holds every IP packet (SYNs and "
         "ACKs too) for half the RTT in each direction on its way to the server's delayed "
         "address, and for no time on its way to the server's other address (this kernel has "
         "no netem). Each client sends to both, alternately, by host name (a private /etc/hosts "
         "in the clients' mount namespace; the sink's certificate names both); the far "
         "namespace has TCP Fast Open on for servers (net.ipv4.tcp_fastopen=3), the sink sets "
         "TCP_FASTOPEN on its listeners.",
    "d": "One generated message (60% lines of 998 octets, 30% of 76, the rest short; 5% of the "
         "lines need dot-stuffing), from a file on stdin. MB/s = 10^6 octets per second of "
         "wall time.",
    "e": "The same 2 KiB message: N client processes started by the launcher, a few at a time "
         "(msg/s = N / wall time from the first fork to the last exit); then one client "
         "process sending many messages over one connection, where it can.",
    "f": "make's tlsmail-send, then tlsmail-send and the one call alone built for size, "
         "stripped; each build sends one message to the sink before it is counted.",
}


class Report:
    def __init__(self, b, info):
        self.b, self.info, self.lines = b, info, []

    def p(self, s=""):
        self.lines.append(s)

    def head(self, key, title):
        self.p("## " + title)
        self.p()
        if key in self.b.phase_load:
            self.p("Load average at the start: %s. %s" % (self.b.phase_load[key], METHOD[key]))
        else:
            self.p(METHOD[key])
        self.p()

    def table(self, head, rows):
        self.p("| " + " | ".join(head) + " |")
        self.p("|" + "|".join("---" for _ in head) + "|")
        for r in rows:
            self.p("| " + " | ".join(str(x) for x in r) + " |")
        self.p()

    def build(self):
        R, a, info = self.b.results, self.b.a, self.info
        self.p("# tlsmail-send beside curl, msmtp and Python smtplib")
        self.p()
        self.p("Written by `make bench BENCH_FLAGS=--write` (bench/run.py). Medians of %d "
               "interleaved rounds (after one warm-up round); ratios are tlsmail-send / curl from "
               "this run. bench/run.py's doc comment says what each phase does." % a.rounds)
        self.p()
        self.table(["what", "this run"], [[k, v] for k, v in info.items()])
        for key, title in (("a", "(a) one 2 KiB send, trust from --cafile"),
                           ("b", "(b) one 2 KiB send, the default trust path")):
            if key in R:
                self.send_table(key, title)
        if "c" in R:
            self.rtt_table()
        if "d" in R:
            self.big_table()
        if "e_procs" in R:
            self.many_tables()
        if "f" in R:
            self.footprint_table()
        if self.b.notes:
            self.p("## Notes")
            self.p()
            for n in self.b.notes:
                self.p("- " + n)
            self.p()
        return "\n".join(self.lines) + "\n"

    def send_table(self, key, title):
        rows = self.b.results[key]
        self.head(key, title)
        base = rows.get(BASE, {})
        out = []
        for k, r in rows.items():
            if "error" in r:
                out.append([k, "failed: %s" % r["error"][:120], "", "", "", "", "", ""])
                continue
            h = r.get("heap")
            if not h:
                heap = "n/a: %s" % r.get("heap_error", "")[:80]
            elif k == "tlsmail-send" and h["lib"] is not None:
                heap = "{:,} B (tlsmail.h's own: {:,} B)".format(h["total"], h["lib"])
            else:
                heap = "{:,} B".format(h["total"])
            rb = lambda f: fmt_ratio(ratio(r[f], base[f])) if f in base else "n/a"
            out.append([k, "%.1f (%.0f-%.0f)" % ((r["wall_ms"],) + tuple(r["wall_range"])), rb("wall_ms"),
                        "%.1f" % r["cpu_ms"], rb("cpu_ms"), "%d" % r["rss_kb"], rb("rss_kb"), heap])
        self.table(["client", "wall ms (min-max)", "x curl", "CPU ms", "x curl", "peak RSS KiB",
                    "x curl", "peak heap (massif)"], out)
        t = rows.get("tlsmail-send", {})
        if "error" in t or "error" in base or not t or not base:
            self.p("Targets (%s): n/a, a client failed." % TARGETS[key])
        elif key == "a":
            w, c, m = (ratio(t[f], base[f]) for f in ("wall_ms", "cpu_ms", "rss_kb"))
            self.p("Targets: wall %.3f <= 0.50 %s; CPU %.3f <= 0.45 %s; peak RSS %.3f <= 0.18 %s."
                   % (w, verdict(w <= 0.50), c, verdict(c <= 0.45), m, verdict(m <= 0.18)))
        else:
            w = ratio(t["wall_ms"], base["wall_ms"])
            h = t.get("heap")
            # The target is the trust path's (tlsmail.h's allocations: the
            # anchors looked up); the CLI's own buffers, its message window
            # first, are shown beside it.
            hs = ("%s B <= 16 KB (%d B) %s (the whole process: %d B)"
                  % ("?" if h["lib"] is None else h["lib"], HEAP_LIMIT,
                     verdict(h["lib"] is not None and h["lib"] <= HEAP_LIMIT), h["total"])
                  if h else "n/a")
            self.p("Targets: wall %.3f <= 0.60 %s; tlsmail.h's heap %s." % (w, verdict(w <= 0.60), hs))
        self.p()

    def rtt_table(self):
        rows = self.b.results["c"]
        self.head("c", "(c) round trips per message, %d ms RTT added to every packet" % self.b.a.rtt_ms)
        out = []
        for k, r in rows.items():
            if "na" in r:
                out.append([k, "n/a: " + r["na"], "", "", "", ""])
                continue
            if "error" in r:
                out.append([k, "failed: %s" % r["error"][:200], "", "", "", ""])
                continue
            spread = "" if r["turns_min"] == r["turns_max"] else " (%d-%d)" % (r["turns_min"], r["turns_max"])
            out.append([k, "%.1f" % r["wall_rt"], "%g%s" % (r["turns"], spread),
                        "yes" if r["tfo"] else "no", r["mode"], "yes" if r["resumed"] else "no"])
        self.table(["client", "round trips (wall time)", "waits seen in the packets",
                    "TCP Fast Open", "body sent by", "TLS resumed"], out)
        self.p("Round trips: (wall time of a send to the delayed address - wall time of the same "
               "client's send to the undelayed one, same namespaces, same forwarder) / RTT, "
               "medians; nothing is added, TCP's handshake is delayed like any other packet. "
               "Waits seen in the packets (delayed sends, median): the forwarder counts one each "
               "time the client sends (data, SYN, FIN or RST) after a server packet reached it "
               "(data, SYN-ACK, FIN, RST, or an ACK of new data, which a client held back by "
               "Nagle waits for) and after a silence of most of a round trip; TCP's handshake is "
               "one unless the SYN carries the ClientHello. TCP Fast Open: every timed send of "
               "the row had its SYN's data acknowledged by the SYN-ACK, and the server's kernel "
               "counted it (TcpExt TCPFastOpenPassive in the far namespace); a TFO row fails "
               "otherwise. Its cookie comes from the warm-up round. 7 is the minimum for a full TLS 1.2 "
               "handshake + AUTH with PIPELINING after a TCP handshake.")
        self.p()
        odd = [k for k, r in rows.items() if "rt" in r and r["rt"] != r["turns"]]
        if odd:
            self.p("The wall time and the packets disagree (by a whole round trip or more, after "
                   "rounding) for: %s." % ", ".join(odd))
            self.p()
        ref, full = rows.get(REF_RESUMED, {}), rows.get("python smtplib", {})
        if "rt" in ref and "rt" in full:
            if ref["rt"] == full["rt"]:
                self.p("Resumption against this server: Python's smtplib needs %d round trips with a "
                       "resumed TLS session and %d with a full handshake. In TLS 1.2 the server of a "
                       "resumed session sends its Finished first and its greeting only once the "
                       "client's Finished has arrived, so the wait saved in the handshake comes back "
                       "before the greeting: resumption saves CPU (no ECDHE, no signature, no "
                       "chain), not a round trip." % (ref["rt"], full["rt"]))
            else:
                self.p("Resumption against this server: Python's smtplib needs %d round trips with a "
                       "resumed TLS session and %d with a full handshake." % (ref["rt"], full["rt"]))
            self.p()
        res = [r for r in rows.values() if r.get("client") == "tlsmail-send" and "rt" in r
               and r["resumed"]]
        why = ("the resumed sends failed, see above" if self.b.cl.features["session"]
               else "no session resumption in this tlsmail-send")

        def target(mode, limit, tfo):
            got = [r for r in res if r["mode"] == mode and r["tfo_flag"] == tfo]
            if got:
                return "%d (%.1f) <= %d %s" % (got[0]["rt"], got[0]["wall_rt"], limit,
                                               verdict(got[0]["rt"] <= limit))
            if tfo:
                label = "tlsmail-send, resumed, %sTCP Fast Open" % ("no CHUNKING, " if mode == "DATA" else "")
                r = rows.get(label, {})
                if "na" in r:
                    return "n/a (%s)" % r["na"]
                if "error" in r:
                    return "n/a (%s failed, see above)" % label
            if mode == "BDAT" and res:
                return "n/a (the client did not use BDAT)"
            return "n/a (%s)" % why
        self.p("Targets (round trips from the wall time, to the nearest whole one): with session "
               "resumption %s, with TCP Fast Open %s; with resumption + BDAT %s, with TCP Fast "
               "Open %s." % (target("DATA", 6, False), target("DATA", 6, True),
                             target("BDAT", 5, False), target("BDAT", 5, True)))
        self.p()

    def big_table(self):
        rows = self.b.results["d"]
        self.head("d", "(d) one %g MB message (long lines, dot lines)" % (self.b.a.big_bytes / 1e6))
        base = rows.get(BASE, {})
        out = []
        for k, r in rows.items():
            if "error" in r:
                out.append([k, "failed: %s" % r["error"][:120], "", "", "", "", "", ""])
                continue
            rb = lambda f: fmt_ratio(ratio(r[f], base[f])) if f in base else "n/a"
            out.append([k, "%.0f" % r["mbps"], rb("mbps"), "%.0f" % r["cpu_ms"], rb("cpu_ms"),
                        "%d" % r["rss_kb"], rb("rss_kb"), r["mode"],
                        "%.0f / %.0f" % (r["sink_cpu_ms"], r["sink_body_ms"])])
        self.table(["client", "MB/s", "x curl", "CPU ms", "x curl", "peak RSS KiB", "x curl",
                    "body sent by", "server CPU / wall ms for the body"], out)
        self.p("The server's columns show whether it kept up: its CPU time (AES-GCM, "
               "un-dot-stuffing, hashing) from DATA to the final dot against the wall time "
               "of that stretch. The library row is a program that maps the message file and "
               "hands it whole to tlsmail_transact (its RSS counts the mapped file); "
               "tlsmail-send streams the file a piece at a time.")
        cpus = [r["sink_cpu_ms"] for r in rows.values() if "sink_cpu_ms" in r]
        if cpus:
            self.p("At its least CPU time for one message here (%.0f ms), the sink can take at "
                   "least %.0f MB/s; a client near that figure would be measuring the sink."
                   % (min(cpus), self.b.a.big_bytes / 1e6 / (min(cpus) / 1000)))
        self.p()
        t = rows.get("tlsmail-send", {})
        if "error" in t or "error" in base or not t or not base:
            self.p("Targets (%s): n/a, a client failed." % TARGETS["d"])
        else:
            x = ratio(t["mbps"], base["mbps"])
            self.p("Targets: %.0f MB/s >= 1000 %s; %.2fx curl >= 2 %s; peak RSS %d KiB <= 4096 %s."
                   % (t["mbps"], verdict(t["mbps"] >= 1000), x, verdict(x >= 2),
                      t["rss_kb"], verdict(t["rss_kb"] <= RSS_LIMIT_KB)))
        self.p()
        fl = self.b.results.get("d_floor")
        if fl and "error" not in fl:
            mb = self.b.a.big_bytes / 1e6
            self.p("Floors on this machine (bench/floor.c, the least of 5 runs): BearSSL's "
                   "AES-128-GCM (%s) seals the message in 16 KiB records in %.1f ms of CPU "
                   "(%.0f MB/s), and the sink must open it again; loopback TCP carries it from "
                   "a writer to a reader that discards it in %.1f ms (%.0f MB/s). At 1 GB/s the "
                   "whole send has %.0f ms."
                   % (fl["impl"], fl["gcm_ms"], mb / (fl["gcm_ms"] / 1000), fl["tcp_ms"],
                      mb / (fl["tcp_ms"] / 1000), mb))
            self.p()
        elif fl:
            self.p("Floors: n/a (%s)." % fl["error"])
            self.p()

    def many_tables(self):
        a = self.b.a
        rows = self.b.results["e_procs"]
        self.head("e", "(e) many messages")
        self.p("%d processes, %d at a time, one message each:" % (a.procs, a.procs_parallel))
        self.p()
        base = rows.get(BASE, {})
        out = []
        for k, r in rows.items():
            if "error" in r:
                out.append([k, "failed: %s" % r["error"][:120], "", "", ""])
                continue
            out.append([k, "%.0f" % r["msgps"], fmt_ratio(ratio(r["msgps"], base["msgps"]))
                        if "msgps" in base else "n/a", "%.1f" % r["cpu_ms"],
                        "%d of %d" % (r["resumed"], a.procs)])
        self.table(["client", "msg/s", "x curl", "CPU ms per message", "TLS resumed"], out)
        # The target is with the session cache; without it each process
        # pays a full handshake, as curl's does.
        for k in ("tlsmail-send, session cache",):
            r = rows.get(k)
            if r and "msgps" in r and "msgps" in base:
                x = ratio(r["msgps"], base["msgps"])
                self.p("Target (%s): %.2fx curl >= 3 %s." % (k, x, verdict(x >= 3)))
        if "tlsmail-send, session cache" not in rows:
            self.p("tlsmail-send with its session cache: n/a (no session option in --help).")
        self.p()
        rows = self.b.results["e_batch"]
        self.p("%d messages on one connection:" % a.batch)
        self.p()
        base = rows.get(BASE, {})
        out = []
        for k, r in rows.items():
            if "na" in r:
                out.append([k, "n/a: " + r["na"], "", "", ""])
            elif "error" in r:
                out.append([k, "failed: %s" % r["error"][:120], "", "", ""])
            else:
                out.append([k, "%.0f" % r["msgps"], fmt_ratio(ratio(r["msgps"], base["msgps"]))
                            if "msgps" in base else "n/a", "%.0f" % r["cpu_ms"], r["conns"]])
        self.table(["client", "msg/s", "x curl", "CPU ms (all)", "connections"], out)
        t = rows.get("tlsmail-send", {})
        if "msgps" in t and "msgps" in base:
            x = ratio(t["msgps"], base["msgps"])
            self.p("Target: %.2fx curl >= 1.5 %s." % (x, verdict(x >= 1.5)))
        else:
            self.p("Target (>= 1.5x curl): n/a (%s)." % t.get("na", t.get("error", "")))
        self.p()

    def footprint_table(self):
        rows = self.b.results["f"]
        self.head("f", "(f) footprint of tlsmail-send (stripped)")
        self.p("Built for size: `%s`, `-Wl,--gc-sections`%s, BearSSL linked statically; "
               "tlsmail-send with -DTLSMAIL_STARTTLS. Octets of code + constants by origin, "
               "from ld's map; \"the rest\" is ELF and dynamic-linking tables, unwind tables "
               "and alignment (the file less the parts)." % (
                   " ".join(SIZE_CFLAGS),
                   " (glibc: and `%s`)" % SIZE_RELR if self.b.results.get("f_relr") else ""))
        self.p()
        who = ["tlsmail.h", "program", "merged strings", "BearSSL", "C library, start files"]
        out = []
        for k, r in rows.items():
            if "na" in r or "error" in r:
                out.append([k, "n/a: " + r.get("na", r.get("error", ""))] + [""] * (len(who) + 2))
                continue
            parts = r.get("parts")
            cells = []
            for w in who:
                p = (parts or {}).get(w)
                cells.append("{:,} + {:,}".format(p["code"], p["const"]) if p else ("-" if parts else ""))
            rest = r["bytes"] - sum(p["code"] + p["const"] for p in parts.values()) if parts else None
            out.append([k, "{:,}".format(r["bytes"])] + cells +
                       ["{:,}".format(rest) if rest is not None else "", r["sends"]])
        self.table(["build", "file bytes"] + who + ["the rest", "sends"], out)

        def got(*prefixes):
            """The first row whose label starts with one of prefixes, in
            their order: (label, row), or None."""
            for prefix in prefixes:
                for k, r in rows.items():
                    if k.startswith(prefix) and "bytes" in r:
                        return k, r
            return None
        # the small profile (TLSMAIL_SMALL) is what the targets name
        sm = " -DTLSMAIL_SMALL"
        glibc = got("tlsmail-send%s; BearSSL built -Os; glibc" % sm,
                    "tlsmail-send; BearSSL built -Os; glibc", "tlsmail-send; Debian's")
        musl = got("tlsmail-send%s; BearSSL built -Os; static, musl" % sm,
                   "tlsmail-send; BearSSL built -Os; static, musl")
        one = got("the one call (tests/integration/gosend.c)%s; BearSSL built -Os; glibc" % sm,
                  "the one call (tests/integration/gosend.c); BearSSL built -Os; glibc")

        def which(g):
            return " (TLSMAIL_SMALL)" if sm in g[0] else " (default profile)"
        verdicts = []
        for what, g, limit in (("glibc shared", glibc, SIZE_LIMITS["glibc"]),
                               ("static musl", musl, SIZE_LIMITS["musl"])):
            verdicts.append("%s%s %s <= %s %s" % (what, which(g) if g else "",
                                                  "{:,}".format(g[1]["bytes"]) if g else "n/a",
                                                  "{:,}".format(limit),
                                                  verdict(g[1]["bytes"] <= limit) if g else ""))
        if one and one[1].get("parts", {}).get("tlsmail.h"):
            t = one[1]["parts"]["tlsmail.h"]["code"]
            verdicts.append("tlsmail.h's own text in the one call{} {:,} <= {:,} {}".format(
                which(one), t, SIZE_LIMITS["own_text"], verdict(t <= SIZE_LIMITS["own_text"])))
        else:
            verdicts.append("tlsmail.h's own text: n/a")
        self.p("Targets (stripped): %s." % "; ".join(verdicts))
        self.p()
        alone = [("%s%s" % (k.rsplit("; ", 1)[1], " with TLSMAIL_SMALL" if sm in k else ""), r["bytes"])
                 for k, r in rows.items() if k.startswith("the one call") and "bytes" in r]
        if alone:
            self.p("A program that sends by the one call alone, beside the same limits: %s."
                   % "; ".join("%s {:,}".format(b) % w for w, b in alone))
            self.p()
        cl = self.b.results.get("f_closure", {})
        if cl:
            self.p("On disk with the shared libraries each client loads (ldd; unstripped, as installed):")
            self.p()
            self.table(["client", "binary bytes", "with its libraries", "files"],
                       [[k, "{:,}".format(v["binary"]), "{:,}".format(v["bytes"]), v["files"]]
                        for k, v in cl.items()])


def machine_info(a, clients, load_before):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    flags = open("/proc/cpuinfo").read()
    deb = run_text(["cat", "/etc/debian_version"])

    def first(cmd):
        t = run_text(cmd)
        return t.splitlines()[0] if t else "?"

    def pkg(p):
        return run_text(["dpkg-query", "-W", "-f=${Version}", p])
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": "%s, %d CPUs%s" % (cpu, os.cpu_count() or 0, ", AES-NI" if " aes " in flags else ""),
        "kernel": "%s %s" % (platform.system(), platform.release()),
        "system": "Debian %s" % deb,
        "load average before": load_before,
        "tlsmail-send": first([clients.tlsmail, "--version"]),
        "BearSSL": "libbearssl-dev %s" % pkg("libbearssl-dev"),
        "curl": first(["curl", "--version"]),
        "msmtp": "%s (%s)" % (first(["msmtp", "--version"]), "GnuTLS " + pkg("libgnutls30")),
        "python smtplib": "Python %s, %s" % (
            platform.python_version(), run_text([PYTHON, "-c", "import ssl; print(ssl.OPENSSL_VERSION)"])),
        "compiler": first([os.environ.get("CC", "cc"), "--version"]),
        "valgrind": first(["valgrind", "--version"]),
        "server": "bench/sink.c (BearSSL server, ECDSA P-256 certificate, TLS 1.2, "
                  "AES-128-GCM first, server's order)",
        "features probed": "session option: %s; TCP Fast Open: %s; batch mode: %s; small "
                           "profile: %s" % (
            clients.features["session"][0] if clients.features["session"] else "none",
            clients.features["tfo"] or "none",
            clients.features["batch"] or "none", small_profile_macro() or
            ("none needed (no br_ssl_client_init_full)" if not uses_full_profile() else "none")),
    }
    return info


def cpu_stat():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
    return busy / os.sysconf("SC_CLK_TCK"), (busy + v[3] + v[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu():
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def main():
    global VERBOSE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tlsmail-send", required=True)
    ap.add_argument("--build-dir", help="where the sink and launcher are built "
                    "(default: the directory of --tlsmail-send, /bench)")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--phases", default="abcdef")
    ap.add_argument("--rtt-ms", type=int, default=50)
    ap.add_argument("--big-bytes", type=int, default=50_000_000)
    ap.add_argument("--big-rounds", type=int, default=9)
    ap.add_argument("--big-timeout", type=float, default=300)
    ap.add_argument("--procs", type=int, default=100)
    ap.add_argument("--procs-parallel", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--tlsmail-batch", help="tlsmail-send's batch arguments, {dir} = a directory "
                    "of messages m1.eml...; default: probed from --help")
    ap.add_argument("--phase-cap", type=int, default=600, help="seconds per phase")
    ap.add_argument("--write", action="store_true", help="write bench/RESULTS.md")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    VERBOSE = a.verbose
    # so that the finally below stops the sink and removes the work directory
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not os.access(a.tlsmail_send, os.X_OK):
        raise SystemExit("bench: %s is not an executable" % a.tlsmail_send)
    a.build_dir = os.path.abspath(a.build_dir or os.path.join(os.path.dirname(a.tlsmail_send), "bench"))
    os.makedirs(a.build_dir, exist_ok=True)
    sink_bin = build_c(os.path.join(HERE, "sink.c"), os.path.join(a.build_dir, "sink"), ["-lbearssl"])
    spawn_bin = build_c(os.path.join(HERE, "spawn.c"), os.path.join(a.build_dir, "spawn"))
    many_bin = build_c(os.path.join(HERE, "many.c"), os.path.join(a.build_dir, "many"), ["-lbearssl"],
                       deps=(os.path.join(ROOT, "tlsmail.h"),), flags=["-I" + ROOT])
    floor_bin = build_c(os.path.join(HERE, "floor.c"), os.path.join(a.build_dir, "floor"), ["-lbearssl"])
    # linked as make links tlsmail-send: BearSSL's static library when cc finds one
    bear_a = run_text([os.environ.get("CC", "cc"), "-print-file-name=libbearssl.a"])
    a.tlsmail_small = build_c(os.path.join(ROOT, "examples", "tlsmail-send", "tlsmail-send.c"),
                              os.path.join(a.build_dir, "tlsmail-send-small"),
                              [bear_a if os.path.isabs(bear_a) else "-lbearssl"],
                              deps=(os.path.join(ROOT, "tlsmail.h"),),
                              flags=["-g", "-I" + ROOT, "-DTLSMAIL_STARTTLS", "-DTLSMAIL_SMALL"])

    load_before = open("/proc/loadavg").read().split()[:3]
    stat0, own0, t0 = cpu_stat(), own_cpu(), time.monotonic()
    work = tempfile.mkdtemp(prefix="tlsmail-bench-")
    sink = None
    try:
        pki = os.path.join(work, "pki")
        subprocess.run(["bash", os.path.join(LIB, "pki.sh"), pki], check=True, timeout=120,
                       stdout=subprocess.DEVNULL)
        sink = Sink(sink_bin, pki, work)
        clients = Clients(a, work, pki)
        b = Bench(a, work, sink_bin, Spawner(spawn_bin, work), sink, clients)
        b.many_bin, b.floor_bin = many_bin, floor_bin
        missing = [k for k in CLIENTS if not clients.available[k]]
        if missing:
            b.notes.append("not installed, not measured: " + ", ".join(missing))
        if not clients.available[BASE]:
            raise SystemExit("bench: curl is the baseline and is not installed")
        log("preflight: the sink's own checks, one send per client, STARTTLS through tlsmail-send")
        try:
            Checker(sink, os.path.join(pki, "ca.crt"), USER, PASS,
                    lambda path: sum_of(sink_bin, path), work).run()
        except (RuntimeError, OSError, ssl.SSLError) as e:
            raise SystemExit("bench: the sink failed its own check: %s" % e)
        for k in list(b.names):
            try:
                b.send(k, sink.ports["imp"])
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                raise SystemExit("bench: preflight: %s" % e)
        argv, env = clients.cmd("tlsmail-send", sink.ports["st"])
        sink.expect(b.small_sum)
        mark = sink.mark()
        r = b.sp.run(argv[:1] + ["--starttls"] + argv[1:], stdin=b.small, env=env)
        if r["failed"]:
            b.notes.append("preflight: tlsmail-send --starttls failed: %s"
                           % r.get("stderr", "").strip().splitlines()[-1:])
        else:
            check_msgs(sink.wait(mark, 1), 1, b.small_sum, "tlsmail-send --starttls")
        phases = [("a", "one 2 KiB send, --cafile", lambda: b.phase_send("a", "cafile")),
                  ("b", "one 2 KiB send, default trust path", lambda: b.phase_send("b", "system")),
                  ("c", "round trips at +%d ms RTT" % a.rtt_ms, b.phase_rtt),
                  ("d", "one %g MB message" % (a.big_bytes / 1e6), b.phase_big),
                  ("e", "%d processes; %d messages on one connection" % (a.procs, a.batch), b.phase_many),
                  ("f", "footprint", b.phase_footprint)]
        for key, title, fn in phases:
            if key not in a.phases:
                continue
            if key == "b" and not clients.have_bundle:
                b.notes.append("(b) n/a: no system bundle at " + SYSTEM_BUNDLE)
                continue
            b.phase_load[key] = " ".join(open("/proc/loadavg").read().split()[:3])
            log("(%s) %s, load %s" % (key, title, b.phase_load[key]))
            ts = time.monotonic()
            try:
                fn()
            except Exception as e:     # the other phases still run and report
                import traceback
                traceback.print_exc()
                b.notes.append("(%s) failed: %s: %s" % (key, type(e).__name__, e))
            log("    %.0f s" % (time.monotonic() - ts))
        sink.stop()
        sink = None
        stat1, own1, t1 = cpu_stat(), own_cpu(), time.monotonic()
        load_after = open("/proc/loadavg").read().split()[:3]
        info = machine_info(a, clients, " ".join(load_before))
        info["load average after"] = " ".join(load_after)
        others = (stat1[0] - stat0[0]) - (own1 - own0)
        info["others' CPU during the run"] = "%.0f%% of one CPU (machine busy time minus this " \
            "benchmark's own, over %.0f s)" % (100 * max(others, 0) / (t1 - t0), t1 - t0)
        rep = Report(b, info).build()
        print()
        print(rep)
        with open(os.path.join(a.build_dir, "report.md"), "w") as f:
            f.write(rep)
        with open(os.path.join(a.build_dir, "results.json"), "w") as f:
            json.dump({"info": info, "results": b.results, "notes": b.notes}, f, indent=1, default=str)
        if a.write:
            with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
                f.write(rep)
            log("wrote bench/RESULTS.md")
    finally:
        if sink:
            sink.stop()
        if a.keep:
            log("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
