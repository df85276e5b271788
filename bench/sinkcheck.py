"""bench/sinkcheck.py - proof that the sink checks what it claims, run by
bench/run.py before any measurement: a benchmark whose server miscounted
would report nonsense at full speed.

Each check talks to the running sink with Python's ssl module and compares
what the sink reported with what was sent, including cases that must fail
(a changed byte, a wrong password, plaintext after STARTTLS)."""
import base64
import random
import socket
import ssl
import time


def _reply(s):
    """One whole SMTP reply (all its lines)."""
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed while waiting for a reply: %r" % data)
        data += chunk
        lines = data.split(b"\r\n")
        if len(lines) > 1 and all(len(l) >= 4 for l in lines[:-1]) and lines[-2][3:4] == b" " \
                and lines[-1] == b"":
            return data


def _expect(s, code):
    r = _reply(s)
    if not r.startswith(code.encode()):
        raise RuntimeError("expected %s, got %r" % (code, r[:200]))
    return r


def _stuff(msg):
    out = []
    for line in msg.split(b"\r\n")[:-1]:
        out.append(b"." + line if line.startswith(b".") else line)
    return b"\r\n".join(out) + b"\r\n.\r\n"


class Checker:
    def __init__(self, sink, ca, user, password, sum_file, work):
        self.sink, self.user, self.password = sink, user, password
        self.sum_file, self.work = sum_file, work
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.maximum_version = ssl.TLSVersion.TLSv1_2

    def events_until(self, mark, found, timeout=5.0):
        """The sink's events after mark, once one of them is found (or
        after timeout s). Not "the next close": the previous connection's
        may be reported after the mark."""
        end = time.monotonic() + timeout
        while True:
            ev = self.sink.wait(mark, 0, timeout=0)
            if any(found(e) for e in ev) or time.monotonic() > end:
                return ev
            time.sleep(0.02)

    def connect(self, listener="imp", session=None):
        raw = socket.create_connection(("127.0.0.1", self.sink.ports[listener]), timeout=10)
        s = self.ctx.wrap_socket(raw, server_hostname="localhost", session=session)
        _expect(s, "220")
        s.sendall(b"EHLO check.example\r\n")
        return s, _expect(s, "250")

    def login(self, s, password=None):
        token = base64.b64encode(b"\0" + self.user.encode() + b"\0" +
                                 (password or self.password).encode())
        s.sendall(b"AUTH PLAIN " + token + b"\r\n")
        return _reply(s)

    def sum_of(self, content):
        path = "%s/check.eml" % self.work
        with open(path, "wb") as f:
            f.write(content)
        return self.sum_file(path)

    def expect_msg(self, mark, content, what, verdict="ok"):
        """The one message reported since mark: its bytes and sum must be
        those of content, and the sink's verdict the one given."""
        want = self.sum_of(content)
        ev = self.sink.wait(mark, 1, timeout=5)
        msgs = [e[-1] for e in ev if e[0] == "msg"]
        if len(msgs) != 1 or (int(msgs[0]["bytes"]), msgs[0]["sum"]) != want \
                or msgs[0]["verdict"] != verdict:
            raise RuntimeError("%s: the sink reported %s, the content is %s, verdict should be %s"
                               % (what, msgs, want, verdict))
        return msgs[0]

    def run(self):
        rng = random.Random(7)
        msg = (b"From: <a@example.org>\r\nSubject: check\r\n\r\n.\r\n..\r\n.x\r\n"
               b"line\r\n.\rx\r\n" + bytes(rng.randrange(33, 127) for _ in range(3000)) + b"\r\n")

        # DATA, dot-stuffed, in pieces of 1 to 7 octets (each its own record)
        self.sink.expect(self.sum_of(msg))
        s, ehlo = self.connect()
        for ext in (b"PIPELINING", b"CHUNKING", b"AUTH PLAIN LOGIN", b"SIZE", b"8BITMIME"):
            if ext not in ehlo:
                raise RuntimeError("EHLO lacks %s: %r" % (ext, ehlo))
        if not self.login(s).startswith(b"235"):
            raise RuntimeError("AUTH PLAIN with the right password refused")
        mark = self.sink.mark()
        s.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        r = b""
        while r.count(b"\r\n") < 3:
            r += s.recv(4096)
        if not (r.startswith(b"250") and b"\r\n354" in r):
            raise RuntimeError("pipelined MAIL/RCPT/DATA: %r" % r)
        body, i = _stuff(msg), 0
        while i < len(body):
            n = rng.randrange(1, 8)
            s.sendall(body[i:i + n])
            i += n
        _expect(s, "250")
        m = self.expect_msg(mark, msg, "DATA in small pieces")
        if m["mode"] != "DATA":
            raise RuntimeError("mode %s, not DATA" % m["mode"])

        # BDAT in chunks of 1, 3, 1000 and the rest, on the same connection
        mark = self.sink.mark()
        cmds = b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
        i = 0
        for n in (1, 3, 1000):
            cmds += b"BDAT %d\r\n" % n + msg[i:i + n]
            i += n
        cmds += b"BDAT %d LAST\r\n" % (len(msg) - i) + msg[i:]
        s.sendall(cmds)
        got = b""
        while got.count(b"\r\n") < 6:
            got += s.recv(4096)
        m = self.expect_msg(mark, msg, "BDAT in four chunks")
        if m["mode"] != "BDAT" or m["seq"] != "2":
            raise RuntimeError("BDAT: %s" % m)

        # one octet changed: the sink must report another hash
        mark = self.sink.mark()
        bad = bytearray(msg)
        bad[len(bad) // 2] ^= 1
        s.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        while True:
            r = _reply(s)
            if b"354" in r:
                break
        s.sendall(_stuff(bytes(bad)))
        _expect(s, "250")
        m = self.expect_msg(mark, bytes(bad), "changed octet", verdict="BAD")
        if m["sum"] == self.sum_of(msg)[1]:
            raise RuntimeError("the sink's hash did not notice a changed octet")
        s.sendall(b"QUIT\r\n")
        _expect(s, "221")
        session = s.session
        s.close()

        # resumption: the session of the connection above, then none
        for sess, want in ((session, "1"), (None, "0")):
            mark = self.sink.mark()
            s, _ = self.connect(session=sess)
            s.sendall(b"QUIT\r\n")
            _expect(s, "221")
            s.close()
            tls = [e[-1] for e in self.events_until(mark, lambda e: e[0] == "tls") if e[0] == "tls"]
            if not tls or tls[0]["resumed"] != want:
                raise RuntimeError("resumption: the sink reported %s, expected resumed=%s" % (tls, want))

        # a wrong password is refused, and MAIL without AUTH too
        s, _ = self.connect()
        if not self.login(s, "wrong").startswith(b"535"):
            raise RuntimeError("a wrong password was accepted")
        s.sendall(b"MAIL FROM:<a@example.org>\r\n")
        _expect(s, "530")
        s.close()

        # STARTTLS: plaintext sent behind it must end the connection
        raw = socket.create_connection(("127.0.0.1", self.sink.ports["st"]), timeout=10)
        _expect(raw, "220")
        raw.sendall(b"EHLO check.example\r\n")
        if b"STARTTLS" not in _expect(raw, "250"):
            raise RuntimeError("no STARTTLS offered on the STARTTLS listener")
        mark = self.sink.mark()
        raw.sendall(b"STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n")
        refused = lambda e: e[0] == "close" and e[-1].get("why") == "data-after-starttls"  # noqa: E731
        closes = [e for e in self.events_until(mark, refused) if e[0] == "close"]
        raw.close()
        if not any(e[-1].get("why") == "data-after-starttls" for e in closes):
            raise RuntimeError("plaintext after STARTTLS was not refused: %s" % closes)
        time.sleep(0.05)
