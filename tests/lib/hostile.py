#!/usr/bin/python3
"""tests/lib/hostile.py - a scripted, misbehaving SMTP server for the tlsmail tests.

Library use (tests/hostile/test_hostile.py):

    srv = HostileServer(SCENARIOS["greet_554"], pki_dir)
    port = srv.start()            # 127.0.0.1, port 0 -> a free port
    ... run the client against localhost:port ...
    srv.stop()                    # bounded; ends stalls at once
    srv.plain, srv.tls            # bytes received before / after TLS
    srv.lines("tls"), srv.commands(), srv.messages, srv.events

Manual use:

    /usr/bin/python3 tests/lib/hostile.py --scenario NAME --port N --cert F --key F
    /usr/bin/python3 tests/lib/hostile.py --list

A scenario is a mode ("implicit": TLS from the first byte; "starttls":
plaintext until a starttls() step; "raw": no TLS at all, the script sees the
client's bytes as they are), TLS parameters (tls_max_version, ciphers, cert;
client_ca: a client certificate from the test CA is required, and its
subject recorded as srv.peer_subject), and a script: a list of steps run in
order on one accepted connection.

Steps (functions below build them):
    send(b)              write b (one TLS record / one TCP write)
    send_bytewise(b)     one byte per TLS record (per TCP segment: TCP_NODELAY
                         and a tiny sleep between bytes)
    send_segments(*bs)   each piece in its own write, 50 ms apart
    send_records(*bs)    each piece its own TLS record, all in one TCP write
                         (so all of them wait at the client when it reads
                         the first)
    expect_line(prefix)  read one line (to LF); record it; a line not
                         starting with prefix (case-insensitive) ends the script
    expect_data()        read the message up to and including CRLF.CRLF
    expect_bdat()        read "BDAT <n> [LAST]" and the n octets after it; a
                         LAST chunk ends a message (its chunks joined)
    stall(s)             send and read nothing for s seconds (ends at stop())
    sleep(s)             same as stall, for short pauses
    close()              TCP close, no TLS close_notify (FIN)
    rst()                TCP reset (SO_LINGER 0)
    close_notify()       TLS close_notify, TCP left open
    starttls()           TLS handshake on the plaintext connection (bytes the
                         client sent early are fed to TLS and recorded)
    flood(line, max)     send line over and over, at most max bytes in all
    drip(b, interval)    send b one byte at a time, interval seconds apart
    recv_raw(n)          read at least n raw bytes (raw mode: the ClientHello)
    mark(name)           remember how much was received so far (bytes_after)
    drain(s)             read (and record) until EOF or s seconds
    serve(**kw)          answer as an SMTP server would, command by command,
                         until QUIT: MAIL, RCPT, DATA, BDAT, RSET, NOOP, with
                         at most rcpt_max recipients a transaction (Gmail's
                         two-line 452 4.5.3 to the one after); every
                         transaction in srv.transactions (see _do_serve)

When the script ends (or breaks off because the client went away or sent
something unexpected) the server drains what the client still sends, until
EOF or 3 s, then closes the TCP connection without close_notify.

Every byte received is recorded with its layer: "plain" (before TLS, in the
clear), "tlsrec" (raw TLS records), "tls" (decrypted application data), and
the index of the step that was running. Every wait is bounded.
"""
import argparse
import base64
import json
import os
import select
import socket
import ssl
import sys
import threading
import time

IO_TIMEOUT = 5.0          # one expect/handshake wait
DRAIN_TIMEOUT = 3.0       # after the script
MAX_LINE = 1 << 16        # longest client line we buffer
MAX_DATA = 64 << 20       # longest message we buffer


class ScriptEnd(Exception):
    """The script cannot go on (client gone, timeout, unexpected input)."""


# ---- step constructors -----------------------------------------------------

def send(b): return ("send", bytes(b))
def send_bytewise(b): return ("send_bytewise", bytes(b))
def send_segments(*bs): return ("send_segments", [bytes(b) for b in bs])
def send_records(*bs): return ("send_records", [bytes(b) for b in bs])
def expect_line(prefix=b""): return ("expect_line", prefix.encode() if isinstance(prefix, str) else prefix)
def expect_data(): return ("expect_data",)
def expect_bdat(): return ("expect_bdat",)
def stall(seconds): return ("stall", float(seconds))
def sleep(seconds): return ("stall", float(seconds))
def close(): return ("close",)
def rst(): return ("rst",)
def close_notify(): return ("close_notify",)
def starttls(): return ("starttls",)
def flood(line, max_bytes): return ("flood", bytes(line), int(max_bytes))
def drip(data, interval): return ("drip", bytes(data), float(interval))
def recv_raw(n): return ("recv_raw", int(n))
def mark(name): return ("mark", name)
def drain(seconds=DRAIN_TIMEOUT): return ("drain", float(seconds))
def serve(rcpt_max=100, refuse=None, lose_after=None, refuse_message=None, data_354=False):
    return ("serve", rcpt_max, dict(refuse or {}), lose_after, dict(refuse_message or {}), data_354)


class Scenario:
    def __init__(self, name, steps, mode="implicit", cert="good", tls_max_version=None,
                 ciphers=None, rcvbuf=None, doc="", client_ca=False):
        assert mode in ("implicit", "starttls", "raw")
        self.name, self.steps, self.mode, self.cert = name, steps, mode, cert
        self.tls_max_version, self.ciphers, self.rcvbuf, self.doc = \
            tls_max_version, ciphers, rcvbuf, doc
        self.client_ca = client_ca


# ---- the server --------------------------------------------------------------

class HostileServer:
    def __init__(self, scenario, pki_dir=None, cert=None, key=None, host="127.0.0.1", port=0,
                 connections=1):
        self.sc = scenario
        self.cert = cert or os.path.join(pki_dir, scenario.cert + ".crt")
        self.key = key or os.path.join(pki_dir, scenario.cert + ".key")
        self.ca = os.path.join(pki_dir or os.path.dirname(self.cert), "ca.crt")
        self.peer_subject = None      # the client certificate's subject (client_ca)
        self.bdat_chunks = []         # (size, last) of every BDAT read
        self.transactions = []        # serve(): one dict per MAIL (see _do_serve)
        self.host, self.req_port, self.max_conns = host, port, connections
        self.port = None
        self.stop_ev = threading.Event()
        self.done_ev = threading.Event()
        self.lock = threading.Lock()
        self.log = []             # (layer, step, bytes)
        self.events = []          # (time, what)
        self.messages = []        # message bodies as received (wire form)
        self.marks = {}
        self.connections = 0
        self.handshake_done = False
        self.tls_error = None
        self.script_error = None  # why the script broke off (None: it ran to the end)
        self.script_completed = False
        self.eof = None           # "close_notify", "tcp" or None
        self._lsock = None
        self._thread = None
        self._step = -1

    # -- recording
    def _ev(self, what):
        with self.lock:
            self.events.append((round(time.monotonic(), 3), what))

    def _rec(self, layer, data):
        if data:
            with self.lock:
                self.log.append((layer, self._step, bytes(data)))

    def layer_bytes(self, layer):
        with self.lock:
            return b"".join(d for l, s, d in self.log if l == layer)

    @property
    def plain(self): return self.layer_bytes("plain")

    @property
    def tls(self): return self.layer_bytes("tls")

    @property
    def tlsrec(self): return self.layer_bytes("tlsrec")

    def lines(self, layer="tls"):
        data = self.layer_bytes(layer)
        # CR dropped; blank lines (the message's header/body gap) left out;
        # the last piece may lack its LF
        return [l.rstrip(b"\r") for l in data.split(b"\n") if l.rstrip(b"\r") != b""]

    def commands(self, layer="tls"):
        """Upper-cased first word (before a space or colon) of every line."""
        return [l.split(b" ", 1)[0].split(b":", 1)[0].upper()
                for l in self.lines(layer)]

    def bytes_after(self, name, layer="tls"):
        with self.lock:
            count = self.marks.get(name)
            if count is None:
                return None
            data = b"".join(d for l, s, d in self.log if l == layer)
        return data[count.get(layer, 0):]

    def summary(self):
        return {
            "scenario": self.sc.name, "port": self.port, "connections": self.connections,
            "handshake_done": self.handshake_done, "tls_error": self.tls_error,
            "script_error": self.script_error, "script_completed": self.script_completed,
            "eof": self.eof, "plain": self.plain.decode("latin-1")[:2000],
            "tls": self.tls.decode("latin-1")[:2000], "tlsrec_len": len(self.tlsrec),
            "messages": [m.decode("latin-1")[:2000] for m in self.messages],
            "events": self.events[-40:],
        }

    # -- life cycle
    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.sc.rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.sc.rcvbuf)
        s.bind((self.host, self.req_port))
        s.listen(4)
        s.settimeout(0.05)
        self._lsock = s
        self.port = s.getsockname()[1]
        if self.sc.mode != "raw":
            self.ctx = self._context()
        self._thread = threading.Thread(target=self._serve, name="hostile-" + self.sc.name,
                                        daemon=True)
        self._thread.start()
        return self.port

    def _context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if self.sc.tls_max_version == "TLSv1":
            ctx.set_ciphers("ALL:@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1
        elif self.sc.tls_max_version:
            v = getattr(ssl.TLSVersion, self.sc.tls_max_version)
            ctx.maximum_version = v
        if self.sc.ciphers:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers(self.sc.ciphers + ":@SECLEVEL=0")
        ctx.load_cert_chain(self.cert, self.key)
        if self.sc.client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.ca)
        return ctx

    def stop(self, timeout=5.0):
        self.stop_ev.set()
        if self._thread:
            self._thread.join(timeout)
        try:
            if self._lsock:
                self._lsock.close()
        except OSError:
            pass
        return not (self._thread and self._thread.is_alive())

    def wait_done(self, timeout):
        return self.done_ev.wait(timeout)

    def _serve(self):
        try:
            while not self.stop_ev.is_set() and self.connections < self.max_conns:
                try:
                    sock, _ = self._lsock.accept()
                except socket.timeout:
                    continue
                except OSError:
                    break
                self.connections += 1
                self._ev("accept")
                try:
                    self._handle(sock)
                finally:
                    try:
                        sock.close()
                    except OSError:
                        pass
                    self._ev("closed")
                    self.done_ev.set()
            # a client that reconnects is noticed, not served
            end = time.monotonic() + 0.3
            while not self.stop_ev.is_set() and time.monotonic() < end:
                try:
                    extra, _ = self._lsock.accept()
                    self.connections += 1
                    self._ev("extra connection")
                    extra.close()
                except socket.timeout:
                    pass
                except OSError:
                    break
        finally:
            self.done_ev.set()

    # -- one connection
    def _handle(self, sock):
        self.sock = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""            # received, not yet consumed by the script
        self.obj = None           # ssl.SSLObject once TLS is up
        self.closed = False
        self.peer_eof = False
        try:
            if self.sc.mode == "implicit":
                self._step = -1
                self._handshake()
            for i, step in enumerate(self.sc.steps):
                if self.stop_ev.is_set():
                    raise ScriptEnd("stopped")
                self._step = i
                self._ev("step %d %s" % (i, step[0]))
                getattr(self, "_do_" + step[0])(*step[1:])
                if self.closed:
                    break
            self.script_completed = True
        except ScriptEnd as e:
            self.script_error = str(e)
            self._ev("script ended: %s" % e)
        except (OSError, ssl.SSLError) as e:
            self.script_error = "%s: %s" % (type(e).__name__, e)
            self._ev("script ended: %s" % self.script_error)
        self._step = len(self.sc.steps)
        if not self.closed:
            try:
                self._do_drain(DRAIN_TIMEOUT)
            except (ScriptEnd, OSError, ssl.SSLError):
                pass

    # -- raw socket I/O
    def _wait_readable(self, end):
        while True:
            if self.stop_ev.is_set():
                raise ScriptEnd("stopped")
            left = end - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.sock], [], [], min(left, 0.1))
            if r:
                return True

    def _raw_recv(self, end):
        """Bytes from the socket (b"" at EOF); ScriptEnd on timeout."""
        if not self._wait_readable(end):
            raise ScriptEnd("timeout waiting for the client")
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.peer_eof = True
            if self.eof is None:
                self.eof = "tcp"
            self._ev("peer eof (tcp)")
        else:
            if self.obj is not None:
                layer = "tlsrec"
            else:
                layer = "raw" if self.sc.mode == "raw" else "plain"
            self._rec(layer, data)
        return data

    def _raw_send(self, data):
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise ScriptEnd("client went away while we sent: %s" % e)

    def _flush_tls(self):
        out = self.outb.read()
        if out:
            self._raw_send(out)

    # -- TLS
    def _handshake(self):
        self.inb, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = self.ctx.wrap_bio(self.inb, self.outb, server_side=True)
        if self.buf:
            # what the client sent early, before our TLS even started
            self._rec("early", self.buf)
            self.inb.write(self.buf)
            self.buf = b""
        end = time.monotonic() + IO_TIMEOUT
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush_tls()
                data = self._raw_recv(end)
                if not data:
                    self.inb.write_eof()
                    self.tls_error = "eof during handshake"
                    raise ScriptEnd("client closed during the handshake")
                self.inb.write(data)
            except ssl.SSLError as e:
                try:
                    self._flush_tls()  # our alert
                except ScriptEnd:
                    pass
                self.tls_error = "%s" % e
                raise ScriptEnd("TLS handshake failed: %s" % e)
        self._flush_tls()
        self.handshake_done = True
        if self.sc.client_ca:
            cert = self.obj.getpeercert() or {}
            self.peer_subject = dict(x[0] for x in cert.get("subject", ()))
        self._ev("handshake done %s %s" % (self.obj.version(), self.obj.cipher()[0]))

    def _recv_some(self, end):
        """Application bytes into self.buf; False at EOF."""
        if self.peer_eof:
            return False
        if self.obj is None:
            data = self._raw_recv(end)
            if not data:
                return False
            self.buf += data
            return True
        while True:
            try:
                data = self.obj.read(65536)
                if data:
                    self._rec("tls", data)
                    self.buf += data
                    return True
                self.peer_eof = True       # a clean TLS close
                self.eof = "close_notify"
                self._ev("peer close_notify")
                return False
            except ssl.SSLWantReadError:
                raw = self._raw_recv(end)
                if not raw:
                    return False
                self.inb.write(raw)
            except ssl.SSLZeroReturnError:
                self.peer_eof = True
                self.eof = "close_notify"
                self._ev("peer close_notify")
                return False
            except ssl.SSLError as e:
                self.peer_eof = True
                self._ev("tls read error %s" % e)
                return False

    def _send(self, data):
        if self.obj is None:
            self._raw_send(data)
        else:
            try:
                self.obj.write(data)
            except ssl.SSLError as e:
                raise ScriptEnd("TLS write failed: %s" % e)
            self._flush_tls()

    # -- steps
    def _do_send(self, data):
        self._send(data)

    def _do_send_bytewise(self, data):
        for i in range(len(data)):
            self._send(data[i:i + 1])
            time.sleep(0.0005)

    def _do_send_records(self, pieces):
        if self.obj is None:
            raise ScriptEnd("send_records needs TLS")
        try:
            for p in pieces:
                self.obj.write(p)
        except ssl.SSLError as e:
            raise ScriptEnd("TLS write failed: %s" % e)
        self._flush_tls()

    def _do_send_segments(self, pieces):
        for i, p in enumerate(pieces):
            if i:
                self.stop_ev.wait(0.05)
            self._send(p)

    def _do_expect_line(self, prefix):
        end = time.monotonic() + IO_TIMEOUT
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE:
                raise ScriptEnd("client line too long")
            if not self._recv_some(end):
                raise ScriptEnd("client closed while we waited for %r" % prefix)
        line, self.buf = self.buf.split(b"\n", 1)
        line = line.rstrip(b"\r")
        self.last_line = line
        self._ev("line %r" % line[:80])
        if not line.upper().startswith(prefix.upper()):
            raise ScriptEnd("expected %r, got %r" % (prefix, line[:80]))

    def _do_expect_data(self):
        end = time.monotonic() + IO_TIMEOUT
        while True:
            if self.buf.startswith(b".\r\n"):
                idx = 0
                break
            idx = self.buf.find(b"\r\n.\r\n")
            if idx >= 0:
                idx += 2
                break
            if len(self.buf) > MAX_DATA:
                raise ScriptEnd("message too long")
            if not self._recv_some(end):
                self.messages_partial = self.buf
                raise ScriptEnd("client closed during the message")
        self.messages.append(self.buf[:idx])
        self.buf = self.buf[idx + 3:]
        self._ev("message %d bytes" % idx)

    def _do_expect_bdat(self):
        self._do_expect_line(b"BDAT ")
        line = self.last_line.split()
        if len(line) not in (2, 3) or not line[1].isdigit() or \
                (len(line) == 3 and line[2].upper() != b"LAST"):
            raise ScriptEnd("bad BDAT line %r" % self.last_line[:80])
        n, last = int(line[1]), len(line) == 3
        end = time.monotonic() + IO_TIMEOUT
        while len(self.buf) < n:
            if n > MAX_DATA:
                raise ScriptEnd("BDAT chunk too long")
            if not self._recv_some(end):
                raise ScriptEnd("client closed during a BDAT chunk")
        self.bdat_chunks.append((n, last))
        self.chunk_data = getattr(self, "chunk_data", b"") + self.buf[:n]
        self.buf = self.buf[n:]
        self._ev("bdat %d%s" % (n, " last" if last else ""))
        if last:
            self.messages.append(self.chunk_data)
            self.chunk_data = b""

    def _do_stall(self, seconds):
        self.stop_ev.wait(seconds)

    def _do_close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.closed = True
        self._ev("closed (tcp, no close_notify)")

    def _do_rst(self):
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        self.sock.close()
        self.closed = True
        self._ev("reset")

    def _do_close_notify(self):
        try:
            self.obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        self._flush_tls()
        self._ev("close_notify sent")

    def _do_starttls(self):
        self._handshake()

    def _do_flood(self, line, max_bytes):
        sent = 0
        batch = line * max(1, 16384 // max(1, len(line)))
        end = time.monotonic() + 30
        while sent < max_bytes and time.monotonic() < end and not self.stop_ev.is_set():
            chunk = batch[:max_bytes - sent]
            try:
                self._send(chunk)
            except ScriptEnd:
                self._ev("flood stopped after %d bytes" % sent)
                self.flood_sent = sent
                raise
            sent += len(chunk)
        self.flood_sent = sent
        self._ev("flood sent %d bytes" % sent)

    def _do_drip(self, data, interval):
        for i in range(len(data)):
            if self.stop_ev.wait(interval):
                raise ScriptEnd("stopped")
            self._send(data[i:i + 1])

    def _do_recv_raw(self, n):
        end = time.monotonic() + IO_TIMEOUT
        got = 0
        while got < n:
            data = self._raw_recv(end)
            if not data:
                raise ScriptEnd("client closed")
            got += len(data)

    def _do_mark(self, name):
        with self.lock:
            counts = {}
            for l, s, d in self.log:
                counts[l] = counts.get(l, 0) + len(d)
            self.marks[name] = counts

    def _serve_line(self, end):
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE:
                raise ScriptEnd("client line too long")
            if not self._recv_some(end):
                raise ScriptEnd("client closed")
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def _do_serve(self, rcpt_max, refuse, lose_after, refuse_message, data_354):
        """A server that counts: each MAIL opens a transaction, recorded as
        {"rcpts": [address of every RCPT], "accepted": [the accepted ones],
        "verbs": ["DATA" or "BDAT" for each one received], "body": "DATA",
        "BDAT" or None (no message taken), "message": its bytes or None}.
        The RCPT after rcpt_max in one transaction gets Gmail's 452 4.5.3;
        refuse maps an address to the reply its RCPT gets instead; after the
        lose_after-th message taken the connection drops (no close_notify);
        refuse_message maps n to the reply the n-th message gets instead of
        250 (not taken); data_354: DATA gets 354 even with nobody accepted
        (RFC 5321 3.3 says 554), and then the script ends."""
        tx = None
        taken = ended = 0
        while True:
            end = time.monotonic() + IO_TIMEOUT
            line = self._serve_line(end)
            self._ev("line %r" % line[:80])
            verb = line.split(b" ", 1)[0].split(b":", 1)[0].upper()
            if verb == b"MAIL":
                tx = {"rcpts": [], "accepted": [], "verbs": [], "body": None, "message": None}
                self.transactions.append(tx)
                self._send(b"250 2.1.0 OK\r\n")
            elif verb == b"RCPT":
                addr = line.split(b"<", 1)[-1].split(b">", 1)[0].decode("latin-1")
                if tx is None:
                    self._send(b"503 5.5.1 need MAIL first\r\n")
                    continue
                tx["rcpts"].append(addr)
                if len(tx["rcpts"]) > rcpt_max:
                    self._send(b"452-4.5.3 Your message has too many recipients. For more information\r\n"
                               b"452 4.5.3 regarding Google's sending limits, visit support - gsmtp\r\n")
                elif addr in refuse:
                    self._send(refuse[addr])
                else:
                    tx["accepted"].append(addr)
                    self._send(b"250 2.1.5 OK\r\n")
            elif verb in (b"DATA", b"BDAT"):
                if tx is not None:
                    tx["verbs"].append(verb.decode())
                if verb == b"DATA":
                    if tx is None or not tx["accepted"]:
                        if data_354:
                            self._send(b"354 go ahead anyway\r\n")
                            return
                        self._send(b"554 5.5.1 Error: no valid recipients\r\n")
                        continue
                    self._send(b"354 go ahead\r\n")
                    n0 = len(self.messages)
                    self._do_expect_data()
                    msg = self.messages.pop() if len(self.messages) > n0 else None
                else:
                    self.last_line = line
                    self.buf = line + b"\r\n" + self.buf
                    n0 = len(self.messages)
                    self._do_expect_bdat()
                    msg = self.messages.pop() if len(self.messages) > n0 else None
                    if tx is None or not tx["accepted"]:
                        self._send(b"554 5.5.1 Error: no valid recipients\r\n")
                        continue
                ended += 1
                if ended in refuse_message:
                    self._send(refuse_message[ended])
                    continue
                tx["body"], tx["message"] = verb.decode(), msg
                self.messages.append(msg)
                taken += 1
                self._send(b"250 2.0.0 OK queued as Q%d\r\n" % taken)
                tx = None
                if lose_after is not None and taken >= lose_after:
                    self._do_close()
                    return
            elif verb == b"RSET":
                tx = None
                self._send(b"250 2.0.0 OK\r\n")
            elif verb == b"NOOP":
                self._send(b"250 2.0.0 OK\r\n")
            elif verb == b"QUIT":
                self._send(b"221 2.0.0 bye\r\n")
                self._do_drain(DRAIN_TIMEOUT)
                self._do_close()
                return
            else:
                self._send(b"502 5.5.2 unrecognized command\r\n")

    def _do_drain(self, seconds):
        end = time.monotonic() + seconds
        try:
            while self._recv_some(end):
                pass
        except ScriptEnd:
            pass


# ---- building blocks for scripts -------------------------------------------

GREETING = b"220 hostile.test ESMTP ready\r\n"
MSG_OK = b"250 2.0.0 queued as H0ST1LE\r\n"


def ehlo_reply(*keywords, code=b"250"):
    lines = [b"hostile.test greets you"] + [k.encode() if isinstance(k, str) else k for k in keywords]
    out = b""
    for i, l in enumerate(lines):
        out += code + (b" " if i == len(lines) - 1 else b"-") + l + b"\r\n"
    return out


EHLO_PLAIN = ehlo_reply("8BITMIME", "SIZE 10240000")
EHLO_AUTH = ehlo_reply("8BITMIME", "AUTH PLAIN LOGIN")
EHLO_PIPE = ehlo_reply("PIPELINING", "8BITMIME")


def envelope(nrcpt=1, tx=send):
    s = [expect_line("MAIL FROM:"), tx(b"250 2.1.0 ok\r\n")]
    for _ in range(nrcpt):
        s += [expect_line("RCPT TO:"), tx(b"250 2.1.5 ok\r\n")]
    return s


def message_ok(tx=send):
    return [expect_line("DATA"), tx(b"354 go ahead\r\n"), expect_data(), tx(MSG_OK)]


def quit_ok(tx=send):
    return [expect_line("QUIT"), tx(b"221 2.0.0 bye\r\n"), drain(), close()]


def greet_ehlo(ehlo=EHLO_PLAIN, tx=send):
    return [tx(GREETING), expect_line("EHLO"), tx(ehlo)]


def full_ok(ehlo=EHLO_PLAIN, nrcpt=1, tx=send, auth=()):
    return greet_ehlo(ehlo, tx) + list(auth) + envelope(nrcpt, tx) + message_ok(tx) + quit_ok(tx)


def pipelined_ok(nrcpt=1):
    """With PIPELINING the client sends MAIL, RCPT..., DATA in one go, and
    QUIT with the final dot."""
    s = greet_ehlo(EHLO_PIPE) + [expect_line("MAIL FROM:")]
    s += [expect_line("RCPT TO:") for _ in range(nrcpt)]
    s += [expect_line("DATA"), send(b"250 ok\r\n" + b"250 ok\r\n" * nrcpt + b"354 go\r\n"),
          expect_data(), expect_line("QUIT"), send(MSG_OK + b"221 bye\r\n"), drain(), close()]
    return s


def after_mark(*steps):
    """Send the last reply, then record what the client still sends."""
    return list(steps) + [mark("refused"), drain()]


# STARTTLS (port 587) building blocks
STLS_EHLO = ehlo_reply("PIPELINING", "STARTTLS", "8BITMIME")


def stls_pre(ehlo=STLS_EHLO):
    return [send(GREETING), expect_line("EHLO"), send(ehlo), expect_line("STARTTLS")]


def stls_ok_after(post_ehlo=ehlo_reply("8BITMIME", "AUTH PLAIN LOGIN"), auth=()):
    return [send(b"220 2.0.0 go ahead\r\n"), starttls(), expect_line("EHLO"), send(post_ehlo)] + \
        list(auth) + envelope(1) + message_ok() + quit_ok()


AUTH_PLAIN_OK = [expect_line("AUTH PLAIN "), send(b"235 2.7.0 ok\r\n")]


# ---- the scenarios -----------------------------------------------------------

def _build():
    S = {}

    def add(name, steps, **kw):
        assert name not in S, name
        S[name] = Scenario(name, steps, **kw)

    # well-behaved references
    add("ok", full_ok())
    add("ok_rsa", full_ok(), cert="good-rsa")
    add("ok_pipelining", pipelined_ok(1))
    add("ok_auth_plain", full_ok(EHLO_AUTH, auth=AUTH_PLAIN_OK))

    # every reply one byte per TLS record, CRLF split across records
    add("bytewise", full_ok(ehlo_reply("8BITMIME", "SIZE 1000000", "HELP"), tx=send_bytewise))

    # malformed replies
    add("ehlo_mixed_codes", [send(GREETING), expect_line("EHLO"),
                             send(b"250-a\r\n251 b\r\n")])
    for name, greet in [("2X0", b"2X0 hi\r\n"), ("25", b"25\r\n"), ("250x", b"250x hi\r\n"),
                        ("empty", b"\r\n"), ("nul", b"220 hel\0lo\r\n")]:
        add("greet_bad_" + name, [send(greet)])
    add("greet_1mib_noeol", [send(b"220 " + b"x" * (1 << 20))])
    add("ehlo_flood", [send(GREETING), expect_line("EHLO"),
                       flood(b"250-" + b"y" * 60 + b"\r\n", 5 << 20)])
    add("ehlo_1000_keywords", [send(GREETING), expect_line("EHLO"),
                               send(ehlo_reply(*["X-KW%d" % i for i in range(1000)]))])

    # refusals by code
    add("greet_554", [send(b"554 5.7.1 go away\r\n")])
    add("greet_421", after_mark(send(b"421 4.3.2 busy\r\n")))
    add("ehlo_421", [send(GREETING), expect_line("EHLO")] +
        after_mark(send(b"421 4.3.2 shutting down\r\n")))
    add("auth_421", greet_ehlo(EHLO_AUTH) + [expect_line("AUTH")] +
        after_mark(send(b"421 4.3.2 shutting down\r\n")))
    add("mail_421", greet_ehlo() + [expect_line("MAIL FROM:")] +
        after_mark(send(b"421 4.3.2 shutting down\r\n")))
    add("rcpt_421", greet_ehlo() + [expect_line("MAIL FROM:"), send(b"250 ok\r\n"),
                                    expect_line("RCPT TO:")] +
        after_mark(send(b"421 4.3.2 shutting down\r\n")))
    add("data_421", greet_ehlo() + envelope(1) + [expect_line("DATA")] +
        after_mark(send(b"421 4.3.2 shutting down\r\n")))
    add("dot_421", greet_ehlo() + envelope(1) + [expect_line("DATA"), send(b"354 go\r\n"),
                                                 expect_data()] +
        after_mark(send(b"421 4.3.2 shutting down\r\n")))

    # a 2xx or 3xx other than the one a command succeeds with is not success
    add("ehlo_251", [send(GREETING), expect_line("EHLO")] + after_mark(send(b"251 odd\r\n")))
    add("mail_251", greet_ehlo() + [expect_line("MAIL FROM:")] +
        after_mark(send(b"251 2.1.0 ok?\r\n")))
    add("rcpt_252", greet_ehlo() + [expect_line("MAIL FROM:"), send(b"250 ok\r\n"),
                                    expect_line("RCPT TO:")] +
        after_mark(send(b"252 2.1.5 cannot VRFY\r\n")))
    add("rcpt_251", greet_ehlo() + [expect_line("MAIL FROM:"), send(b"250 ok\r\n"),
                                    expect_line("RCPT TO:"),
                                    send(b"251 2.1.5 not local, will forward\r\n")] +
        message_ok() + quit_ok())
    add("quit_250", full_ok()[:-4] + [expect_line("QUIT"), send(b"250 bye?\r\n"), drain(),
                                      close()])
    # the server speaks out of turn: replies nobody asked for, a few lines
    # (all in the client's read buffer) or many (still in the TLS engine)
    add("unsolicited_after_mail", greet_ehlo() + [expect_line("MAIL FROM:")] +
        after_mark(send(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n")))
    add("unsolicited_flood_after_mail", greet_ehlo() + [expect_line("MAIL FROM:")] +
        after_mark(send(b"250 ok\r\n" + (b"250-" + b"z" * 90 + b"\r\n") * 60 + b"250 z\r\n")))
    # ... or as records of their own behind the reply, in the same segment:
    # read ahead of the TLS engine, not yet decrypted, when the reply is done
    add("unsolicited_record_after_mail", greet_ehlo() + [expect_line("MAIL FROM:")] +
        after_mark(send_records(b"250 2.1.0 ok\r\n", b"250 2.1.5 recipient ok\r\n")) +
        [expect_line("RCPT TO:"), send(b"550 5.1.1 no such user\r\n")] + message_ok())
    add("unsolicited_records_after_ehlo", [send(GREETING), expect_line("EHLO")] +
        after_mark(send_records(EHLO_PLAIN, b"250 2.1.0 ok\r\n", b"250 2.1.5 ok\r\n",
                                b"354 go ahead\r\n")))

    # EHLO refused, HELO accepted
    helo = [send(GREETING), expect_line("EHLO"), send(b"500 5.5.1 what?\r\n"),
            expect_line("HELO"), send(b"250 hostile.test\r\n")]
    add("ehlo_500_helo", helo + envelope(1) + message_ok() + quit_ok())
    add("ehlo_500_helo_auth", helo + [drain()])

    # AUTH
    long_plain = [expect_line("AUTH PLAIN")]
    add("auth_plain_challenge", greet_ehlo(EHLO_AUTH) + long_plain +
        [send(b"334 Y2hhbGxlbmdl\r\n"), expect_line("*"), send(b"501 5.7.0 cancelled\r\n"),
         drain()])
    add("auth_plain_long_ok", greet_ehlo(EHLO_AUTH) + long_plain +
        [send(b"334 \r\n"), expect_line(""), send(b"235 2.7.0 ok\r\n")] +
        envelope(1) + message_ok() + quit_ok())
    add("auth_login_odd_prompts", greet_ehlo(EHLO_AUTH) +
        [expect_line("AUTH LOGIN"), send(b"334 Z2ltbWU=\r\n"), expect_line(""),
         send(b"334 \r\n"), expect_line(""), send(b"235 2.7.0 ok\r\n")] +
        envelope(1) + message_ok() + quit_ok())
    add("auth_login_third_334", greet_ehlo(EHLO_AUTH) +
        [expect_line("AUTH LOGIN"), send(b"334 VXNlcm5hbWU6\r\n"), expect_line(""),
         send(b"334 UGFzc3dvcmQ6\r\n"), expect_line(""), send(b"334 TW9yZTo=\r\n"),
         expect_line("*"), send(b"501 cancelled\r\n"), drain()])
    echo = base64.b64encode(b"\0user@example.org\0s3cret")
    add("auth_plain_echo", greet_ehlo(EHLO_AUTH) + [expect_line("AUTH PLAIN ")] +
        after_mark(send(b"535-5.7.8 bad credentials for AUTH PLAIN " + echo + b"\r\n"
                        b"535 5.7.8 (AUTH PLAIN " + echo[:20] + b")\r\n")))
    add("auth_login_echo", greet_ehlo(EHLO_AUTH) +
        [expect_line("AUTH LOGIN"), send(b"334 VXNlcm5hbWU6\r\n"), expect_line(""),
         send(b"334 UGFzc3dvcmQ6\r\n"), expect_line("")] +
        after_mark(send(b"535 5.7.8 no such password: " + base64.b64encode(b"s3cret") +
                        b", try again\r\n")))
    add("auth_echo_after", greet_ehlo(EHLO_AUTH) + [expect_line("AUTH PLAIN "),
        send(b"235 2.7.0 ok\r\n"), expect_line("MAIL FROM:"),
        send(b"550 5.1.1 " + echo + b" unknown\r\n"), drain()])
    add("auth_login_early_235", greet_ehlo(EHLO_AUTH) +
        [expect_line("AUTH LOGIN"), send(b"334 VXNlcm5hbWU6\r\n"), expect_line("")] +
        after_mark(send(b"235 2.7.0 ok already\r\n")) + envelope(1) + message_ok())
    for code, text in [("535", b"535 5.7.8 bad credentials\r\n"),
                       ("534", b"534 5.7.9 mechanism too weak\r\n"),
                       ("454", b"454 4.7.0 temporary failure\r\n")]:
        add("auth_plain_" + code, greet_ehlo(EHLO_AUTH) + [expect_line("AUTH PLAIN ")] +
            after_mark(send(text)))

    # envelope refusals
    add("mail_451", greet_ehlo() + [expect_line("MAIL FROM:")] + after_mark(send(b"451 4.3.0 later\r\n")))
    add("mail_550", greet_ehlo() + [expect_line("MAIL FROM:")] + after_mark(send(b"550 5.7.1 no\r\n")))
    add("rcpt_one_of_three_550", greet_ehlo() +
        [expect_line("MAIL FROM:"), send(b"250 ok\r\n"),
         expect_line("RCPT TO:"), send(b"250 ok\r\n"),
         expect_line("RCPT TO:")] + after_mark(send(b"550 5.1.1 no such user\r\n")) +
        # a client that goes on anyway gets a willing server
        [expect_line("RCPT TO:"), send(b"250 ok\r\n"), expect_line("DATA"), send(b"354 go\r\n"),
         expect_data(), send(MSG_OK)])
    add("rcpt_one_of_three_550_pipelining", greet_ehlo(EHLO_PIPE) +
        [expect_line("MAIL FROM:"), expect_line("RCPT TO:"), expect_line("RCPT TO:"),
         expect_line("RCPT TO:"), expect_line("DATA"),
         send(b"250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n354 go\r\n"),
         mark("refused"), drain()])
    add("rcpt_all_550", greet_ehlo() +
        [expect_line("MAIL FROM:"), send(b"250 ok\r\n"), expect_line("RCPT TO:")] +
        after_mark(send(b"550 5.1.1 no such user\r\n")) +
        [expect_line("RCPT TO:"), send(b"550 5.1.1 no such user\r\n"),
         expect_line("DATA"), send(b"354 go\r\n"), expect_data(), send(MSG_OK)])
    # a hostile pipelining server that says 354 although every RCPT failed
    add("rcpt_all_550_pipelining_354", greet_ehlo(EHLO_PIPE) +
        [expect_line("MAIL FROM:"), expect_line("RCPT TO:"), expect_line("RCPT TO:"),
         expect_line("DATA"),
         send(b"250 ok\r\n550 5.1.1 no\r\n550 5.1.1 no\r\n354 go\r\n"), mark("refused"), drain()])
    for code, text in [("250", b"250 ok\r\n"), ("451", b"451 4.3.0 later\r\n"),
                       ("554", b"554 5.5.1 no valid recipients\r\n")]:
        add("data_" + code, greet_ehlo() + envelope(1) + [expect_line("DATA")] +
            after_mark(send(text)))
    for code, text in [("452", b"452 4.3.1 insufficient storage\r\n"),
                       ("552", b"552 5.3.4 message too big\r\n")]:
        add("dot_" + code, greet_ehlo() + envelope(1) +
            [expect_line("DATA"), send(b"354 go\r\n"), expect_data()] + after_mark(send(text)))

    # connection lost
    add("close_mid_reply", [send(GREETING), expect_line("EHLO"),
                            send(b"250-hostile.test\r\n250-PIPEL"), close()])
    add("close_after_dot", greet_ehlo() + envelope(1) +
        [expect_line("DATA"), send(b"354 go\r\n"), expect_data(), close()])
    add("close_notify_after_dot", greet_ehlo() + envelope(1) +
        [expect_line("DATA"), send(b"354 go\r\n"), expect_data(), close_notify(), drain()])

    # stalls (the test stops the server, which ends the stall at once)
    add("stall_after_greeting", [send(GREETING), expect_line("EHLO"), stall(30)])
    add("stall_mid_ehlo", [send(GREETING), expect_line("EHLO"),
                           send(b"250-hostile.test\r\n250-8BITMIME\r\n"), stall(30)])
    add("drip_ehlo", [send(GREETING), expect_line("EHLO"),
                      drip(b"250-" + b"d" * 400 + b"\r\n", 0.2)])
    add("plaintext_server", [send(GREETING), recv_raw(1), drain()], mode="raw")
    add("stall_mid_handshake", [recv_raw(1), stall(30)], mode="raw")
    add("stall_after_354", greet_ehlo() + envelope(1) + [expect_line("DATA"), send(b"354 go\r\n"),
                                                         stall(30)], rcvbuf=4096)
    add("stall_after_dot", greet_ehlo() + envelope(1) +
        [expect_line("DATA"), send(b"354 go\r\n"), expect_data(), stall(30)])
    # a verdict after the end of the message later than the per-wait
    # timeout, as from a content filter (RFC 5321 4.5.3.2.6 allows 10 min)
    add("slow_verdict", greet_ehlo() + envelope(1) +
        [expect_line("DATA"), send(b"354 go\r\n"), expect_data(), sleep(2.5), send(MSG_OK)] +
        quit_ok())
    add("slow_verdict_pipelined", greet_ehlo(EHLO_PIPE) +
        [expect_line("MAIL FROM:"), expect_line("RCPT TO:"), expect_line("DATA"),
         send(b"250 ok\r\n250 ok\r\n354 go\r\n"), expect_data(), expect_line("QUIT"),
         sleep(2.5), send(MSG_OK + b"221 bye\r\n"), drain(), close()])
    add("slow_verdict_bdat", greet_ehlo(ehlo_reply("CHUNKING", "8BITMIME")) + envelope(1) +
        [expect_bdat(), sleep(2.5), send(MSG_OK)] + quit_ok())
    add("quit_221_no_close", greet_ehlo() + envelope(1) + message_ok() +
        [expect_line("QUIT"), send(b"221 bye\r\n"), stall(30)])

    # TLS parameters the client must refuse
    add("tls10_only", full_ok(), tls_max_version="TLSv1")
    add("tls_cbc_only", full_ok(), cert="good-rsa", ciphers="ECDHE-RSA-AES128-SHA")
    add("tls_rsa_kex_only", full_ok(), cert="good-rsa", ciphers="AES128-SHA:AES128-GCM-SHA256")
    add("tls_dhe_only", full_ok(), cert="good-rsa", ciphers="DHE-RSA-AES128-GCM-SHA256")

    # ---- STARTTLS (port 587) ----
    st = dict(mode="starttls")
    add("st_ok", stls_pre() + stls_ok_after(), **st)
    add("st_missing", [send(GREETING), expect_line("EHLO"), send(EHLO_PIPE), drain()], **st)
    add("st_greet_554", [send(b"554 5.3.2 no service\r\n"), drain()], **st)
    for code, text in [("454", b"454 4.7.0 TLS not available\r\n"),
                       ("502", b"502 5.5.1 not implemented\r\n"),
                       ("421", b"421 4.3.2 shutting down\r\n")]:
        add("st_reply_" + code, stls_pre() + [send(text), drain()], **st)
    add("st_ehlo_500", [send(GREETING), expect_line("EHLO"), send(b"500 5.5.1 what?\r\n"),
                        drain()], **st)
    add("st_220_injected", stls_pre() +
        [send(b"220 Ready\r\n250-x\r\n250 AUTH PLAIN\r\n"), starttls(), drain()], **st)
    add("st_220_fragment", stls_pre() + [send(b"220 Ready\r\n250-fra"), starttls(), drain()], **st)
    add("st_220_late_bytes", stls_pre() +
        [send_segments(b"220 Ready\r\n", b"250 x\r\n"), starttls(), drain()], **st)
    add("st_220_before_starttls", [send(GREETING), expect_line("EHLO"),
                                   send(STLS_EHLO + b"220 2.0.0 go ahead, unasked\r\n"),
                                   expect_line("STARTTLS"), starttls(), drain()], **st)
    add("st_454_then_235", stls_pre() + [send(b"454 4.7.0 no\r\n235 ok\r\n"), drain()], **st)
    add("st_auth_changes", stls_pre(ehlo_reply("STARTTLS", "AUTH LOGIN")) +
        stls_ok_after(ehlo_reply("AUTH PLAIN"), auth=AUTH_PLAIN_OK), **st)
    add("st_starttls_again", stls_pre() +
        stls_ok_after(ehlo_reply("STARTTLS", "8BITMIME")), **st)
    _build_proto(add)
    return S


# ---- OAuth, client certificates, SIZE, 8BITMIME, SMTPUTF8, DSN, BDAT ---------

OAUTH_ERROR = b"eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ=="
EHLO_OAUTH = ehlo_reply("8BITMIME", "AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER")
EHLO_BDAT = ehlo_reply("PIPELINING", "CHUNKING", "8BITMIME", "SIZE 10240000")
RCPT_OK = b"250 2.1.5 ok\r\n"


def _build_proto(add):
    tail = envelope(1) + message_ok() + quit_ok()
    # Gmail's recipient limit: 100 a transaction, the 101st gets 452 4.5.3
    # (Postfix's smtpd_recipient_limit alike). Addresses r1..r150@example.org.
    for name, ehlo in (("plain", EHLO_PLAIN), ("pipe", EHLO_PIPE), ("bdat", EHLO_BDAT),
                       ("bdat_nopipe", ehlo_reply("CHUNKING", "8BITMIME"))):
        add("gmail_" + name, greet_ehlo(ehlo) + [serve()])
        add("gmail_%s_550_r120" % name,
            greet_ehlo(ehlo) + [serve(refuse={"r120@example.org": b"550 5.1.1 no such user r120\r\n"})])
        add("gmail_%s_lost" % name, greet_ehlo(ehlo) + [serve(lose_after=1)])
        add("gmail_%s_first_refused" % name, greet_ehlo(ehlo) + [serve(refuse={
            "r%d@example.org" % i: b"550 5.1.1 no such user\r\n" for i in range(1, 101)})])
        add("gmail_%s_second_refused" % name, greet_ehlo(ehlo) + [serve(refuse={
            "r%d@example.org" % i: b"550 5.1.1 no such user\r\n" for i in range(101, 151)})])
    add("gmail_pipe_last_refused_354", greet_ehlo(EHLO_PIPE) + [serve(refuse={
        "r%d@example.org" % i: b"550 5.1.1 no such user\r\n" for i in range(101, 121)}, data_354=True)])
    add("gmail_pipe_middle_refused_354", greet_ehlo(EHLO_PIPE) + [serve(refuse={
        "r%d@example.org" % i: b"550 5.1.1 no such user\r\n" for i in range(51, 101)}, data_354=True)])
    # a group of 100 in one flight: MAIL and the 100 RCPTs read before any
    # reply, so a client that waits for one before the next times out
    add("pipe_100_one_flight", greet_ehlo(EHLO_PIPE) + [expect_line("MAIL FROM:")] +
        [expect_line("RCPT TO:")] * 100 + [send(b"250 2.1.0 ok\r\n" + RCPT_OK * 100)] +
        message_ok() + quit_ok())
    add("gmail_pipe_body_refused", greet_ehlo(EHLO_PIPE) +
        [serve(refuse_message={2: b"554 5.7.1 message refused as spam\r\n"})])

    # OAuth 2.0 (RFC 7628): the response on the AUTH line, or after an empty 334
    for mech in ("XOAUTH2", "OAUTHBEARER"):
        m = mech.lower()
        add(m + "_ir", greet_ehlo(EHLO_OAUTH) +
            [expect_line("AUTH %s " % mech), send(b"235 2.7.0 ok\r\n")] + tail)
        add(m + "_334", greet_ehlo(EHLO_OAUTH) +
            [expect_line("AUTH %s" % mech), send(b"334 \r\n"), expect_line(""),
             send(b"235 2.7.0 ok\r\n")] + tail)
        # refused: the error challenge answered, then the final 535
        add(m + "_error", greet_ehlo(EHLO_OAUTH) +
            [expect_line("AUTH %s" % mech), send(b"334 " + OAUTH_ERROR + b"\r\n"),
             expect_line(b"" if mech == "XOAUTH2" else b"AQ=="),
             send(b"535 5.7.8 Username and Password not accepted\r\n"), mark("refused"), drain()])
    add("xoauth2_334_error", greet_ehlo(EHLO_OAUTH) +
        [expect_line("AUTH XOAUTH2"), send(b"334 \r\n"), expect_line(""),
         send(b"334 " + OAUTH_ERROR + b"\r\n"), expect_line(""),
         send(b"535 5.7.8 Username and Password not accepted\r\n"), mark("refused"), drain()])
    add("xoauth2_error_then_235", greet_ehlo(EHLO_OAUTH) +
        [expect_line("AUTH XOAUTH2"), send(b"334 " + OAUTH_ERROR + b"\r\n"), expect_line(""),
         send(b"235 2.7.0 ok anyway\r\n"), mark("refused"), drain()])
    add("oauth_auto", greet_ehlo(EHLO_OAUTH) +
        [expect_line("AUTH OAUTHBEARER "), send(b"235 2.7.0 ok\r\n")] + tail)
    add("auth_login_only", greet_ehlo(ehlo_reply("8BITMIME", "AUTH LOGIN CRAM-MD5")) + [drain()])
    add("auth_eq_form_only", greet_ehlo(ehlo_reply("8BITMIME", "AUTH=LOGIN PLAIN")) +
        AUTH_PLAIN_OK + tail)
    # a client certificate from the test CA required (and AUTH EXTERNAL)
    cc = dict(client_ca=True)
    add("ccert_plain", greet_ehlo(EHLO_AUTH) + AUTH_PLAIN_OK + tail, **cc)
    add("ccert_external", greet_ehlo(ehlo_reply("8BITMIME", "AUTH PLAIN EXTERNAL")) +
        [expect_line("AUTH EXTERNAL "), send(b"235 2.7.0 ok\r\n")] + tail, **cc)
    add("ccert_required_none", full_ok(), **cc)
    # SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531)
    add("size_100", greet_ehlo(ehlo_reply("8BITMIME", "SIZE 100")) + [drain()])
    add("size_ok", full_ok(ehlo_reply("8BITMIME", "SIZE 10240000")))
    add("no_8bitmime", greet_ehlo(ehlo_reply("SIZE 10240000")) + [drain()])
    add("no_8bitmime_ok", full_ok(ehlo_reply("SIZE 10240000")))
    add("8bitmime_ok", full_ok(ehlo_reply("8BITMIME")))
    add("smtputf8_ok", full_ok(ehlo_reply("8BITMIME", "SMTPUTF8")))
    add("no_smtputf8", greet_ehlo(ehlo_reply("8BITMIME")) + [drain()])
    # the stream API without BODY=8BITMIME: data_write must not send 8-bit
    add("stream_no_8bitmime", greet_ehlo(ehlo_reply("SIZE 10240000")) + envelope(1) +
        [expect_line("DATA"), send(b"354 go\r\n"), drain()])
    # DSN (RFC 3461)
    add("dsn_ok", full_ok(ehlo_reply("8BITMIME", "DSN")))
    # CHUNKING (RFC 3030): with PIPELINING and one recipient, one flight
    add("bdat_inflight", greet_ehlo(EHLO_BDAT) +
        [expect_line("MAIL FROM:"), expect_line("RCPT TO:"), expect_bdat(), expect_line("QUIT"),
         send(b"250 2.1.0 ok\r\n" + RCPT_OK + b"250 2.0.0 Ok: 1234 bytes queued as B0AT1\r\n"
              b"221 2.0.0 bye\r\n"), drain(), close()])
    add("bdat_stepwise", greet_ehlo(ehlo_reply("CHUNKING", "8BITMIME")) + envelope(1) +
        [expect_bdat(), send(b"250 2.0.0 Ok: 1234 bytes queued as B0AT2\r\n")] + quit_ok())
    # several recipients: the message waits for their replies
    add("bdat_three_rcpt", greet_ehlo(EHLO_BDAT) +
        [expect_line("MAIL FROM:")] + [expect_line("RCPT TO:")] * 3 +
        [send(b"250 ok\r\n" + RCPT_OK * 3), mark("replied"), expect_bdat(), expect_line("QUIT"),
         send(b"250 2.0.0 Ok: queued as B0AT3\r\n221 bye\r\n"), drain(), close()])
    add("bdat_three_rcpt_one_refused", greet_ehlo(EHLO_BDAT) +
        [expect_line("MAIL FROM:")] + [expect_line("RCPT TO:")] * 3 +
        [send(b"250 ok\r\n" + RCPT_OK + b"550 5.1.1 no such user\r\n" + RCPT_OK),
         mark("refused"), drain()])
    add("bdat_inflight_refused", greet_ehlo(EHLO_BDAT) +
        [expect_line("MAIL FROM:"), expect_line("RCPT TO:"), expect_bdat(), expect_line("QUIT"),
         send(b"250 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 Error: no valid recipients\r\n"
              b"221 bye\r\n"), drain(), close()])
    # partial delivery, every recipient refused, and a server that still
    # takes the chunk (RFC 3030 2 says it must not)
    add("bdat_partial_none", greet_ehlo(EHLO_BDAT) +
        [expect_line("MAIL FROM:"), expect_line("RCPT TO:"), expect_line("RCPT TO:"), expect_bdat(),
         expect_line("QUIT"),
         send(b"250 ok\r\n550 5.1.1 no such user\r\n550 5.1.2 no such user either\r\n"
              b"250 2.0.0 Ok: queued as N0B0DY\r\n221 bye\r\n"), drain(), close()])
    add("bdat_partial_none_refused", greet_ehlo(EHLO_BDAT) +
        [expect_line("MAIL FROM:"), expect_line("RCPT TO:"), expect_line("RCPT TO:"), expect_bdat(),
         expect_line("QUIT"),
         send(b"250 ok\r\n550 5.1.1 no such user\r\n450 4.2.1 later\r\n"
              b"554 5.5.1 Error: no valid recipients\r\n221 bye\r\n"), drain(), close()])
    add("bdat_inflight_lost", greet_ehlo(EHLO_BDAT) +
        [expect_line("MAIL FROM:"), expect_line("RCPT TO:"), expect_bdat(), expect_line("QUIT"),
         close()])
    add("bdat_stepwise_lost", greet_ehlo(ehlo_reply("CHUNKING")) + envelope(1) +
        [expect_bdat(), close()])
    # tlsmail_transact: one message on an open client, the connection kept
    # in step. MAIL refused, the RCPT and BDAT replies after it read too,
    # RSET, then the same message in one flight.
    add("transact_mail_refused_then_ok", greet_ehlo(EHLO_BDAT) +
        [expect_line("MAIL FROM:"), expect_line("RCPT TO:"), expect_bdat(),
         send(b"550 5.7.1 sender refused\r\n503 5.5.1 need MAIL first\r\n"
              b"503 5.5.1 no valid recipients\r\n"),
         expect_line("RSET"), send(b"250 2.0.0 ok\r\n"),
         expect_line("MAIL FROM:"), expect_line("RCPT TO:"), expect_bdat(),
         send(b"250 2.1.0 ok\r\n" + RCPT_OK + b"250 2.0.0 Ok: queued as TR4N1\r\n")] + quit_ok())
    # three recipients, the middle one refused: MAIL and the RCPTs in one
    # write, all three replies read, no message; then again, DATA this time
    add("transact_rcpt_refused_then_data", greet_ehlo(EHLO_PIPE) +
        [expect_line("MAIL FROM:")] + [expect_line("RCPT TO:")] * 3 +
        [send(b"250 ok\r\n" + RCPT_OK + b"550 5.1.1 no such user here\r\n" + RCPT_OK),
         expect_line("RSET"), send(b"250 2.0.0 ok\r\n"),
         expect_line("MAIL FROM:")] + [expect_line("RCPT TO:")] * 3 +
        [send(b"250 ok\r\n" + RCPT_OK * 3), expect_line("DATA"), send(b"354 go\r\n"),
         expect_data(), send(MSG_OK)] + quit_ok())
    # partial delivery: the accepted recipients get the message
    add("partial_pipelined", greet_ehlo(EHLO_PIPE) +
        [expect_line("MAIL FROM:")] + [expect_line("RCPT TO:")] * 3 +
        [expect_line("DATA"),
         send(b"250 ok\r\n" + RCPT_OK + b"550 5.1.1 no such user here\r\n" + RCPT_OK +
              b"354 go\r\n"), expect_data(), expect_line("QUIT"), send(MSG_OK + b"221 bye\r\n"),
         drain(), close()])
    add("partial_pipelined_none", greet_ehlo(EHLO_PIPE) +
        [expect_line("MAIL FROM:")] + [expect_line("RCPT TO:")] * 2 +
        [expect_line("DATA"),
         send(b"250 ok\r\n550 5.1.1 no\r\n450 4.2.1 later\r\n554 5.5.1 no valid recipients\r\n"),
         mark("refused"), drain()])
    add("partial_pipelined_none_354", greet_ehlo(EHLO_PIPE) +
        [expect_line("MAIL FROM:")] + [expect_line("RCPT TO:")] * 2 +
        [expect_line("DATA"),
         send(b"250 ok\r\n550 5.1.1 no\r\n450 4.2.1 later\r\n354 go ahead anyway\r\n"),
         mark("refused"), drain()])
    # tlsmail_transact without PIPELINING: every recipient asked after a refusal
    add("transact_stepwise_every_rcpt_asked", greet_ehlo() +
        [expect_line("MAIL FROM:"), send(b"250 ok\r\n"), expect_line("RCPT TO:"), send(RCPT_OK),
         expect_line("RCPT TO:"), send(b"550 5.1.1 no such user here\r\n"), expect_line("RCPT TO:"),
         send(b"450 4.2.2 mailbox full\r\n"), expect_line("RSET"), send(b"250 2.0.0 ok\r\n"),
         expect_line("MAIL FROM:"), send(b"250 ok\r\n")] +
        [expect_line("RCPT TO:"), send(RCPT_OK)] * 3 + message_ok() + quit_ok())
    # tlsmail_transact_begin: the envelope pipelined as tlsmail_transact's,
    # then DATA once its replies are in (CHUNKING offered, and unused: the
    # message has no size yet); a refusal, RSET, then the message
    add("begin_pipelined_then_data", greet_ehlo(EHLO_BDAT) +
        [expect_line("MAIL FROM:")] + [expect_line("RCPT TO:")] * 3 +
        [send(b"250 ok\r\n" + RCPT_OK * 3), mark("replied")] + message_ok() + quit_ok())
    add("begin_mail_refused_then_ok", greet_ehlo(EHLO_PIPE) +
        [expect_line("MAIL FROM:"), expect_line("RCPT TO:"),
         send(b"550 5.7.1 sender refused\r\n503 5.5.1 need MAIL first\r\n"),
         expect_line("RSET"), send(b"250 2.0.0 ok\r\n"),
         expect_line("MAIL FROM:"), expect_line("RCPT TO:"), send(b"250 ok\r\n" + RCPT_OK)] +
        message_ok() + quit_ok())
    add("begin_partial", greet_ehlo(EHLO_PIPE) +
        [expect_line("MAIL FROM:")] + [expect_line("RCPT TO:")] * 3 +
        [send(b"250 ok\r\n" + RCPT_OK + b"550 5.1.1 no such user here\r\n" + RCPT_OK)] +
        message_ok() + quit_ok())
    add("partial_stepwise", greet_ehlo() +
        [expect_line("MAIL FROM:"), send(b"250 ok\r\n"), expect_line("RCPT TO:"), send(RCPT_OK),
         expect_line("RCPT TO:"), send(b"450 4.2.2 mailbox full\r\n"), expect_line("RCPT TO:"),
         send(RCPT_OK)] + message_ok() + quit_ok())


SCENARIOS = _build()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--pki", help="directory from tests/lib/pki.sh (instead of --cert/--key)")
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if a.list or not a.scenario:
        for n, s in SCENARIOS.items():
            print("%-36s %s" % (n, s.mode))
        return 0
    sc = SCENARIOS[a.scenario]
    if not a.pki and not (a.cert and a.key):
        ap.error("--cert and --key (or --pki) are required")
    srv = HostileServer(sc, a.pki, a.cert, a.key, port=a.port, connections=a.connections)
    port = srv.start()
    print("READY %d" % port, flush=True)
    try:
        while not srv.wait_done(0.5):
            pass
        srv.stop()
    except KeyboardInterrupt:
        srv.stop()
    print(json.dumps(srv.summary(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
