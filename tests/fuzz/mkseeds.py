#!/usr/bin/python3
"""Regenerates the committed seed corpora: tests/fuzz/corpus/<target>/, and
the regression inputs made from the audit's reproducers
(tests/fuzz/regress/<target>/audit_*). Certificates are made here with the
openssl CLI (fresh keys each run). Run from anywhere:
/usr/bin/python3 tests/fuzz/mkseeds.py [AUDIT_DIR]   (default /work/shared/audit)"""
import base64, hashlib, os, shutil, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

def crlf(*lines):
    return b"".join(l.encode() + b"\r\n" for l in lines)

GREET = ["220 mail.example.org ESMTP ready"]
EHLO = {
    "postfix": ["250-mail.example.org", "250-PIPELINING", "250-SIZE 10240000", "250-VRFY",
                "250-ETRN", "250-AUTH PLAIN LOGIN", "250-AUTH=PLAIN LOGIN",
                "250-ENHANCEDSTATUSCODES", "250-8BITMIME", "250-DSN", "250-SMTPUTF8",
                "250 CHUNKING"],
    "gmail": ["250-smtp.gmail.com at your service, [203.0.113.7]", "250-SIZE 35882577",
              "250-8BITMIME", "250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH",
              "250-ENHANCEDSTATUSCODES", "250-PIPELINING", "250-CHUNKING", "250 SMTPUTF8"],
    "exchange": ["250-outlook.office365.com Hello [198.51.100.2]", "250-SIZE 157286400",
                 "250-PIPELINING", "250-DSN", "250-ENHANCEDSTATUSCODES", "250-AUTH LOGIN XOAUTH2",
                 "250-8BITMIME", "250-BINARYMIME", "250-CHUNKING", "250 SMTPUTF8"],
    "nopipe": ["250-mail.example.org", "250-AUTH PLAIN LOGIN", "250 8BITMIME"],
    "oldauth": ["250-legacy.example.org", "250-AUTH=LOGIN PLAIN", "250 SIZE"],
}

def sendmail_ok(ehlo, nto=2):
    pipe = any("PIPELINING" in l for l in EHLO[ehlo])
    s = GREET + EHLO[ehlo] + ["235 2.7.0 Authentication successful"]
    s += ["250 2.1.0 Ok"] + ["250 2.1.5 Ok"] * nto + ["354 End data with <CR><LF>.<CR><LF>"]
    s += ["250 2.0.0 Ok: queued as 4ABC123", "221 2.0.0 Bye"]
    return crlf(*s)

def step_ok(ehlo):
    s = GREET + EHLO[ehlo] + ["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", "235 2.7.0 Accepted"]
    s += ["250 2.1.0 Sender OK", "250 2.1.5 Recipient OK", "250 2.1.5 Recipient OK",
          "354 Start mail input; end with <CRLF>.<CRLF>", "250 2.0.0 queued",
          "250 2.0.0 Reset state", "250 2.0.0 OK", "221 2.0.0 closing"]
    return crlf(*s)

def client_seeds():
    out = {}
    # byte 0: bit0 step session, bits1-4 read size-1, bit5 one rcpt, bit6 partial writes,
    # bit7 (step) tlsmail_transact
    for name in EHLO:
        out["send_ok_" + name] = bytes([0 | (15 << 1)]) + sendmail_ok(name)
        out["step_ok_" + name] = bytes([1 | (15 << 1)]) + step_ok(name)
    out["send_ok_1rcpt_small_reads"] = bytes([32 | (0 << 1)]) + sendmail_ok("postfix", 1)
    out["step_ok_partial_writes"] = bytes([1 | (3 << 1) | 64]) + step_ok("nopipe")
    out["send_ok_lf_only"] = bytes([6]) + sendmail_ok("nopipe").replace(b"\r\n", b"\n")
    good = crlf(*(GREET + EHLO["postfix"] + ["235 ok", "250 ok", "250 ok", "250 ok", "354 go",
                                                "250 queued", "221 bye"]))
    # refusals at each stage
    lines = [l + "\r\n" for l in GREET + EHLO["postfix"]]
    stages = [("greet554", ["554 5.3.2 no service"], 0), ("greet421", ["421 4.3.2 busy"], 0),
              ("ehlo502_helo", ["220 hi", "502 5.5.1 EHLO unknown", "250 hello"], 0)]
    for n, s, _ in stages:
        out["send_" + n] = bytes([30]) + crlf(*s)
    base = GREET + EHLO["nopipe"]
    for n, tail in [("auth535", ["535 5.7.8 bad credentials"]),
                    ("auth454", ["454 4.7.0 try later"]),
                    ("mail550", ["235 ok", "550 5.7.1 sender refused"]),
                    ("rcpt450", ["235 ok", "250 ok", "450 4.2.0 greylisted"]),
                    ("rcpt550_second", ["235 ok", "250 ok", "250 ok", "550 5.1.1 no such user"]),
                    ("data554", ["235 ok", "250 ok", "250 ok", "250 ok", "554 no data"]),
                    ("data250_not354", ["235 ok", "250 ok", "250 ok", "250 ok", "250 odd"]),
                    ("end552", ["235 ok", "250 ok", "250 ok", "250 ok", "354 go", "552 too big"]),
                    ("end421", ["235 ok", "250 ok", "250 ok", "250 ok", "354 go", "421 closing"]),
                    ("eof_after_dot", ["235 ok", "250 ok", "250 ok", "250 ok", "354 go"]),
                    ("multiline_mismatch", ["235 ok", "250-ok", "251 changed code"])]:
        out["send_" + n] = bytes([30]) + crlf(*(base + tail))
    for n, tail in [("login_3rd_334", ["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", "334 again"]),
                    ("login_235_early", ["334 VXNlcm5hbWU6", "235 too early"]),
                    ("login_535", ["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", "535 no"]),
                    ("login_multiline_334", ["334-VXNlcm5hbWU6", "334 more", "334 UGFzc3dvcmQ6", "235 ok"]),
                    ("noauth", [])]:
        out["step_" + n] = bytes([31]) + crlf(*(GREET + (EHLO["nopipe"] if n != "noauth" else ["250 plain.example.org"]) + tail))
    out["send_long_line"] = bytes([30]) + crlf("220 " + "x" * 600)
    out["send_ctrl_in_reply"] = bytes([30]) + b"220 hi\x1b[31m\r\n"
    out["send_pipelined_in_one_read"] = bytes([30]) + good
    # BDAT (CHUNKING): two recipients, the chunk after their replies; one
    # recipient, MAIL RCPT BDAT QUIT in one flight; a refusal of each. Read
    # one octet at a time: a larger read would take the next reply with the
    # greeting, which the client rightly refuses as spoken out of turn.
    bdat = GREET + EHLO["postfix"] + ["235 2.7.0 ok"]
    out["send_bdat_2rcpt"] = bytes([0]) + crlf(*(bdat + ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok",
                                                  "250 2.0.0 Ok: 163 bytes queued as 4ABC123",
                                                  "221 2.0.0 Bye"]))
    out["send_bdat_1rcpt_inflight"] = bytes([32]) + crlf(*(bdat + [
        "250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.0.0 Ok: 163 bytes queued as 4ABC124", "221 2.0.0 Bye"]))
    out["send_bdat_1rcpt_refused"] = bytes([32]) + crlf(*(bdat + [
        "250 2.1.0 Ok", "550 5.1.1 no such user", "554 5.5.1 Error: no valid recipients", "221 Bye"]))
    out["send_bdat_552"] = bytes([32]) + crlf(*(bdat + [
        "250 2.1.0 Ok", "250 2.1.5 Ok", "552 5.3.4 too big", "221 Bye"]))
    out["send_bdat_eof"] = bytes([32 | 64]) + crlf(*(bdat + ["250 2.1.0 Ok", "250 2.1.5 Ok"]))
    # bit 7 (with bit 0): tlsmail_transact twice on one client, RSET after
    # a refusal; bit 6 with it: deliver to the accepted recipients (and partial writes)
    login = GREET + EHLO["postfix"] + ["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", "235 2.7.0 Accepted"]
    one_ok = ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.0.0 Ok: queued as T1"]
    out["transact_bdat_1rcpt_twice"] = bytes([1 | 32 | 128]) + crlf(*(login + one_ok + one_ok +
                                                                     ["250 2.0.0 OK", "221 2.0.0 Bye"]))
    out["transact_bdat_refused_reset_ok"] = bytes([1 | 32 | 128]) + crlf(*(login + [
        "250 2.1.0 Ok", "550 5.1.1 no such user", "554 5.5.1 no valid recipients",
        "250 2.0.0 Reset"] + one_ok + ["250 2.0.0 OK", "221 2.0.0 Bye"]))
    out["transact_mail_refused_reset_ok"] = bytes([1 | 32 | 128]) + crlf(*(login + [
        "550 5.7.1 sender refused", "503 5.5.1 need MAIL", "503 5.5.1 no recipients",
        "250 2.0.0 Reset"] + one_ok + ["250 2.0.0 OK", "221 2.0.0 Bye"]))
    two = ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok", "250 2.0.0 Ok: queued as T2"]
    out["transact_bdat_2rcpt_one_refused_partial"] = bytes([1 | 64 | 128]) + crlf(*(login + [
        "250 2.1.0 Ok", "250 2.1.5 Ok", "550 5.1.1 no such user", "250 2.0.0 Ok: queued as T3"] + two +
        ["250 2.0.0 OK", "221 2.0.0 Bye"]))
    nopipe = GREET + EHLO["nopipe"] + ["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", "235 2.7.0 Accepted"]
    data = ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok", "354 go", "250 2.0.0 queued"]
    out["transact_stepwise_data_twice"] = bytes([1 | 128]) + crlf(*(nopipe + data + data +
                                                                   ["250 2.0.0 OK", "221 2.0.0 Bye"]))
    return out

def reply_seeds():
    return {
        "greeting": crlf("220 mail.example.org ESMTP Postfix"),
        "ehlo_postfix": crlf(*EHLO["postfix"]),
        "ehlo_gmail": crlf(*EHLO["gmail"]),
        "bare_code": b"250\r\n",
        "lf_only": b"250-a\n250 b\n",
        "code_change": crlf("250-a", "251 b"),
        "bad_code": crlf("600 no", "199 no", "2x0 no"),
        "bare_cr": b"250 a\rb\r\n",
        "nul": b"250 a\x00b\r\n",
        "utf8": "250 caf\u00e9 \u2713\r\n".encode(),
        "max_line": b"250 " + b"a" * 508 + b"\r\n",
        "over_line": b"250 " + b"a" * 509 + b"\r\n",
        "many_lines": b"250-x\r\n" * 127 + b"250 end\r\n",
        "too_many_lines": b"250-x\r\n" * 128 + b"250 end\r\n",
        "two_replies": crlf("354 go ahead", "250 ok queued", "221 bye"),
        "tab": b"250\tweird\r\n",
    }

def ehlo_seeds():
    out = {k: crlf(*[l[4:] for l in v]) for k, v in EHLO.items()}
    out["odd"] = crlf("-BAD", "AUTH", "AUTH PLAINX LOGINY", "auth plain", "X-EXT a b  c",
                      "SIZE", "AUTH=", "8bitmime", "STARTTLS", "a" * 300, "b" * 300)
    out["fill"] = b"".join(b"K%03d %s\r\n" % (i, b"v" * 40) for i in range(20))
    out["spaces"] = b"AUTH    PLAIN   LOGIN  \r\nPIPELINING \r\n \r\n"
    return out

def base64_seeds():
    out = {}
    for i, raw in enumerate([b"", b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar",
                              b"\x00user\x00pass", bytes(range(256))[:48]]):
        out["valid_%d" % i] = base64.b64encode(raw)
    out["pin"] = base64.b64encode(hashlib.sha256(b"spki").digest())
    out["noncanon1"] = b"Zm9=" ; out["noncanon2"] = b"Zh=="
    out["pad_middle"] = b"Zg==Zg=="; out["bad_char"] = b"Zm9v!A=="; out["short"] = b"Zm9"
    out["login_prompt"] = b"VXNlcm5hbWU6"
    return out

def dot_seeds():
    out = {}
    hdr = b"From: a@example.org\r\nSubject: t\r\n\r\n"
    bodies = {"plain": hdr + b"Hello\r\n", "dots": b".\r\n..x\r\n...\r\n.\n.\r.",
              "smuggle": hdr + b"a\n.\nMAIL FROM:<e@x>\r\n", "cr_cr_lf": b"a\r\r\nb\r\r\n",
              "mixed": b"a\r\nb\nc\rd\n\re\r\n\n\r\r\nf", "empty": b"", "no_end": b"last",
              "trailing_cr": b"x\r", "line998": b"z" * 998 + b"\r\n",
              "line999": b"z" * 999 + b"\r\n", "dot998": b"." + b"z" * 997 + b"\r\n",
              "bin": bytes(range(256))}
    for i, (k, v) in enumerate(bodies.items()):
        n = i % 4
        out[k] = bytes([((i * 5) % 32) << 3 | n]) + bytes([(i * 37 + j * 11) % 256 for j in range(n)]) + v
    return out

def scan_seeds():
    # the message itself: line ends of every kind, 8-bit octets in the
    # header and in the body, a line past next_eol's 4 KiB window
    hdr = b"From: a@example.org\r\nSubject: t\r\n\r\n"
    return {"plain": hdr + b"Hello\r\n", "mixed": b"a\r\nb\nc\rd\n\re\r\n\n\r\r\nf",
            "cr_cr_lf": b"a\r\r\nb\r\r\n", "trailing_cr": b"x\r", "lead_lf": b"\nx",
            "empty": b"", "no_end": b"last", "head8": b"Subject: caf\xc3\xa9\r\n\r\nx",
            "body8": hdr + b"caf\xc3\xa9\n", "no_header": b"\r\nA: \xff\r\n",
            "long_cr": b"y" * 4100 + b"\r" + b"z" * 3 + b"\n", "bin": bytes(range(256))}

# -- fuzz_address: every rule of RFC 5321 4.1.2 / 4.1.3 and RFC 6531 3.3
ADDRESSES = [
    "a@example.org", "first.last@example.org", "!#$%&'*+-/=?^_`{|}~@example.org",
    '"a b"@example.org', '""@example.org', '"\\"\\\\"@example.org', '"a@b"@x', '"a<b>"@x',
    "a@b-c.example", "a@123", "a@[192.0.2.1]", "a@[255.255.255.255]", "a@[256.0.0.1]",
    "a@[IPv6:2001:db8::1]", "a@[IPv6:::]", "a@[IPv6:1:2:3:4:5:6:7:8]", "a@[IPv6:1:2:3:4:5:6::]",
    "a@[IPv6:::ffff:192.0.2.1]", "a@[IPv6:1:2:3:4:5:6:192.0.2.1]", "a@[ipv6:1::2]",
    "a@[IPv6:1:2:3:4:5:6:7::]", "a@[IPv6:zz]", "a@[x-tag:any!thing]", "a@[x:<>]",
    "j\u00f6rg@example.org", "\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a", '"\u00e9 \u00e9"@x',
    "a@b\u00fccher.example", "\U0001f600@x",
    "a@b,c@d", "g:a@b;", "a@b(x)", ".a@b", "a..b@c", "a.@b", "a@-b", "a@b-", "a@b..c", "a@b.",
    "a b@c", '"a\\"@c', "a@", "@b", "Postmaster", "postmaster", "", "a@b\r\nRCPT TO:<x@y>",
    "l" * 64 + "@example.org", "l" * 65 + "@example.org", "l@" + "d" * 252, "l@" + "d" * 253,
]

def address_seeds():
    out = {}
    for i, a in enumerate(ADDRESSES):
        raw = a.encode("utf-8", "surrogatepass")
        out["addr_%02d" % i] = raw
    out["bad_utf8"] = b"a\xc3@x"
    out["overlong"] = b"\xc0\xaf@x"
    out["surrogate"] = b"\xed\xa0\x80@x"
    out["nul_inside"] = b"a@b\x00c"
    return out

# -- fuzz_compose: byte 0 flags (bits 0-1 To, 2-3 Cc, 4 generated Date, 5 a
# Message-ID field, 6 Subject NULL, 7 small buffers), NUL-separated fields
# from, to..., cc..., subject, [message_id], then the body.
def compose_input(flags, fields, body):
    return bytes([flags]) + b"".join(f.encode() + b"\0" for f in fields) + body

def compose_seeds():
    u = "J\u00f6hn D\u0153 <john@example.org>"
    return {
        "plain": compose_input(1, ["sender@example.org", "rcpt@example.org", "Hello"], b"body\n"),
        "names": compose_input(3 | 1 << 2, ["\u00c5lice <alice@example.org>", u,
                                            "Doe, Jane <jane@example.org>",
                                            '"Quote \\" Back\\\\slash" <q@example.org>',
                                            "Plain Name <plain@example.org>",
                                            "Gr\u00fc\u00dfe aus K\u00f6ln \u2713"],
                               "h\u00e9llo = w\u00f6rld  \ntrailing\t\r\nx".encode()),
        "generated": compose_input(1 | 16 | 128, ["Sender <s@Mail.Example.org>", "r@[IPv6:::1]",
                                                  "A plain ASCII subject that is long enough to be folded onto "
                                                  "a second line and maybe a third"], b"a" * 1200),
        "msgid": compose_input(2 | 32 | 128, ["a@b.c", "c@d.e", "\"x y\"@[192.0.2.1]", "",
                                             "<id@host>"], b""),
        "encoded_word_lookalike": compose_input(1, ["a@b.c", "=?UTF-8?B?Zm9v?= <x@y.z>",
                                                    "looks like =?UTF-8?B?Zm9v?= a word"], b".\r\n..\r\n"),
        "long_word": compose_input(1, ["a@b.c", "Name " + "w" * 500 + " <x@y.z>", "s" * 950], b"\0NUL"),
        "tabs": compose_input(1 | 4, ["\"a\tb\" <a@b.c>", "x@y.z", "t@u.v",
                                      "a" * 60 + "\t" + "b" * 20 + " \t"], b"tab\t\n"),
        "many": compose_input(3 | 12, ["Person One <one@example.org>"] +
                              ["Person Number %d With A Long Name <person%d@example.org>" % (i, i) for i in range(6)] +
                              ["Subject"], "\u00e9".encode() * 600),
        "invalid": compose_input(1, ["a@b,c@d", "g:a@b;", "x\r\nBcc: y@z"], b"\xff"),
    }

# -- fuzz_starttls: byte 0 (bit 0 step session, bits 1-4 read size - 1, bit
# 5 partial writes), then the server's side
def starttls_seeds():
    greet = ["220 mail.example.org ESMTP"]
    plain_ehlo = ["250-mail.example.org", "250-PIPELINING", "250-STARTTLS", "250-AUTH PLAIN LOGIN",
                  "250 8BITMIME"]
    tls_ehlo = ["250-mail.example.org", "250-PIPELINING", "250-AUTH PLAIN LOGIN", "250 8BITMIME"]
    go = ["220 2.0.0 Ready to start TLS"]
    after = tls_ehlo + ["235 2.7.0 ok", "250 ok", "250 ok", "354 go", "250 queued", "221 bye"]
    out = {}
    # bit 6: a NUL is where the server waits for the client's next line
    # (after the 220 to STARTTLS, for the handshake)
    def add(name, before, after_go=(), flags=30 | 64):
        out[name] = bytes([flags]) + crlf(*before) + (b"\0" + crlf(*after_go) if after_go else b"")
    add("ok_send", greet + plain_ehlo + go, after)
    add("ok_step", greet + plain_ehlo + go, after, 31 | 64)
    add("ok_small_reads", greet + plain_ehlo + go, after, 64)
    add("ok_partial_writes", greet + plain_ehlo + go, after, 32 | 64 | 6)
    add("ok_no_turns_byte_reads", greet + plain_ehlo + go + after, (), 0)
    add("no_starttls", greet + tls_ehlo)
    add("starttls_first_line_only", greet + ["250 STARTTLS"])
    add("starttls_454", greet + plain_ehlo + ["454 4.7.0 TLS not available"])
    add("starttls_250", greet + plain_ehlo + ["250 ok"])
    add("injected_after_220", greet + plain_ehlo + go + ["250 injected"], after)
    add("injected_one_read", greet + plain_ehlo + go + ["250 injected"], (), 30)
    add("greeting_554", ["554 no service"])
    add("greeting_multiline", ["220-mail.example.org", "220 ESMTP"] + plain_ehlo + go, after)
    add("ehlo_502", greet + ["502 5.5.1 unknown"])
    add("auth_only_in_plaintext", greet + plain_ehlo + go,
        ["250-mail.example.org", "250 8BITMIME", "250 ok", "250 ok", "354 go", "250 queued"])
    add("step_auth_only_in_plaintext", greet + plain_ehlo + go,
        ["250-mail.example.org", "250 8BITMIME", "250 ok", "250 ok", "354 go", "250 queued"], 31 | 64)
    add("multiline_220", greet + plain_ehlo + ["220-go", "220 ahead"], after)
    out["lf_only"] = out["ok_send"].replace(b"\r\n", b"\n")
    return out

# -- certificates for fuzz_pem and fuzz_pin, made with the openssl CLI
def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def make_certs(tmp):
    """DER certificates: an RSA CA, leaves of each key type it signs, and
    self-signed EC certificates on each curve BearSSL knows."""
    ext = os.path.join(tmp, "leaf.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nsubjectAltName=DNS:mail.example.org\n")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "3650", "-subj", "/O=tlsmail fuzz/CN=fuzz root CA", cwd=tmp)
    certs = {"ca_rsa2048": "ca.pem"}
    keys = {"leaf_p256": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "leaf_rsa1024": ["-newkey", "rsa:1024"]}
    for name, kargs in keys.items():
        openssl("req", "-new", "-nodes", *kargs, "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=mail.example.org", cwd=tmp)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "365", "-extfile", ext, "-out", name + ".pem", cwd=tmp)
        certs[name] = name + ".pem"
    for curve in ("P-256", "P-384", "P-521"):
        name = "self_" + curve.replace("-", "").lower()
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:" + curve, "-nodes",
                "-keyout", name + ".key", "-out", name + ".pem", "-days", "365",
                "-subj", "/CN=" + name + ".example", cwd=tmp)
        certs[name] = name + ".pem"
    out = {}
    for name, pem in certs.items():
        openssl("x509", "-in", pem, "-outform", "DER", "-out", name + ".der", cwd=tmp)
        with open(os.path.join(tmp, name + ".der"), "rb") as f:
            out[name] = f.read()
    return out

def pem_block(der, label="CERTIFICATE", nl="\n"):
    b = base64.b64encode(der).decode()
    return ("-----BEGIN %s-----%s" % (label, nl) + "".join(b[i:i + 64] + nl for i in range(0, len(b), 64))
            + "-----END %s-----%s" % (label, nl)).encode()

def entries(*ders):
    return b"".join(len(d).to_bytes(2, "big") + d for d in ders)

# -- fuzz_pem: byte 0 (bit 0 wrapped DER entries, bits 1-3 failing
# allocation, bit 4 CRLF, bit 5 no final newline, bits 6-7 label)
def pem_seeds(c):
    out = {
        "one_rsa": bytes([0]) + pem_block(c["ca_rsa2048"]),
        "bundle": bytes([0]) + b"junk before\n" + pem_block(c["ca_rsa2048"]) + b"# between\n"
                  + pem_block(c["leaf_p256"]) + pem_block(c["self_p384"]),
        "crlf_no_final_newline": bytes([0]) + pem_block(c["self_p521"], nl="\r\n")[:-2],
        "duplicate": bytes([0]) + pem_block(c["leaf_p256"]) * 2,
        "x509_label": bytes([0]) + pem_block(c["self_p256"], "X509 CERTIFICATE"),
        "private_key_only": bytes([0]) + pem_block(b"\x30\x03\x02\x01\x00", "PRIVATE KEY"),
        "bad_base64": bytes([0]) + b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        "unterminated": bytes([0]) + pem_block(c["ca_rsa2048"])[:300],
        "trailing_der": bytes([0]) + pem_block(c["leaf_p256"] + b"\0" * 9),
        "wrapped_chain": bytes([1]) + entries(c["leaf_p256"], c["ca_rsa2048"]),
        "wrapped_all": bytes([1 | 16]) + entries(c["self_p256"], c["self_p384"], c["self_p521"]),
        "wrapped_truncated": bytes([1 | 32]) + entries(c["leaf_rsa1024"][:200]),
        "wrapped_trusted_label": bytes([1 | 2 << 6]) + entries(c["self_p256"]),
        "alloc_fail_1": bytes([1 << 1]) + pem_block(c["self_p256"]) * 2,
        "alloc_fail_3": bytes([1 | 3 << 1]) + entries(c["self_p256"], c["self_p384"], c["leaf_p256"]),
    }
    return out

# -- fuzz_pin: byte 0 (bit 0 right pin, else 32 pin octets follow; bits 1-7
# largest fragment - 1), then entries
def pin_seeds(c):
    return {
        "p256_leaf_chain": bytes([1 | 15 << 1]) + entries(c["leaf_p256"], c["ca_rsa2048"]),
        "rsa1024_leaf": bytes([1 | 0 << 1]) + entries(c["leaf_rsa1024"]),
        "rsa2048": bytes([1 | 63 << 1]) + entries(c["ca_rsa2048"]),
        "p384": bytes([1 | 7 << 1]) + entries(c["self_p384"]),
        "p521": bytes([1 | 127 << 1]) + entries(c["self_p521"]),
        "wrong_pin": bytes([30]) + b"\x5a" * 32 + entries(c["self_p256"]),
        "trailing_bytes": bytes([1 | 2 << 1]) + entries(c["self_p256"] + b"\0" * 9),
        "truncated": bytes([1 | 3 << 1]) + entries(c["self_p256"][:150]),
        "empty_chain": bytes([30]) + b"\x00" * 32,
        "empty_cert": bytes([30]) + b"\x00" * 32 + entries(b"", c["self_p256"]),
    }

def write(target, seeds, kind="corpus", clear=True):
    d = os.path.join(HERE, kind, target)
    if clear:
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        assert len(data) < 4096, (target, name, len(data))
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)

def challenge_seeds():
    # byte 0: bits 0-5 output capacity - 1 (63: the whole buffer), bit 6 a gs2 piece
    js = lambda j: bytes([63]) + base64.b64encode(j)
    return {
        "google_401": js(b'{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}'),
        "dovecot_401": js(b'{"status":"401","schemes":"bearer","scope":"mail"}'),
        "rfc7628_invalid_token": js(b'{"status":"invalid_token","scope":"example_scope",'
                                    b'"openid-configuration":"https://example.com/.well-known/openid-configuration"}'),
        "small_cap": bytes([10]) + base64.b64encode(b'{"status":"401"}'),
        "number": js(b'{"status" : 400 ,"x":1}'),
        "escape": js(b'{"status":"4\\"01"}'),
        "newlines": js(b'{\n\t"status":"401"\r\n}'),
        "control": js(b'{"status":"\x1b[31m"}'),
        "not_b64": bytes([63]) + b"334 not base64 at all",
        "noncanon": bytes([63]) + b"Zm9=",
        "gs2_user": bytes([64 | 63]) + b"n,a=a,b=c,\x01host=h\x01port=465\x01auth=Bearer t\x01\x01",
        "empty": bytes([0]),
    }

def queue_id_seeds():
    # byte 0: the output capacity
    return {k: bytes([c]) + v.encode() for k, (c, v) in {
        "postfix": (128, "2.0.0 Ok: queued as 4Fh2x1XYZ"),
        "postfix_bdat": (128, "2.0.0 Ok: 214 bytes queued as DFA44A783F5"),
        "exim": (128, "OK id=1tXYZa-000abc-Cd"),
        "gmail": (128, "2.0.0 OK  1701234567 e12sm1234567wrx.45 - gsmtp"),
        "m365": (200, "2.0.0 OK <DB9PR01MB1234@DB9PR01MB1234.eurprd01.prod.exchangelabs.com> "
                      "[Hostname=DB9PR01MB1234.eurprd01.prod.exchangelabs.com]"),
        "exchange": (128, "2.6.0 <a1@mail.example.org> [InternalId=123, Hostname=EX1] Queued mail for delivery"),
        "haraka": (128, "Message Queued (4E1F1B2C-ABCD.1)"),
        "sendmail": (128, "2.0.0 4B1Hx0Ab012345 Message accepted for delivery"),
        "ses": (128, "Ok 0100018c7c1e2f3a-1b2c3d4e-000000"),
        "stored": (128, "2.0.0 OK: stored as 12"),
        "none": (128, "2.0.0 Ok"),
        "small": (4, "Ok: queued as ABCDEF"),
        "multiline": (128, "2.0.0 Ok\nqueued as X"),
        "dots": (128, "queued as ..."),
        "brackets": (128, "<<<>>> <a<b> id= - gsmtp"),
    }.items()}
# -- fuzz_tlsinfo: byte 0 the part (0 Name, 1 Time, 2 Validity), byte 1 the
# small text buffer (Name) or the Time's tag, then the DER or the content
def der(tag, body):
    n = len(body)
    if n < 0x80:
        h = bytes([n])
    elif n < 0x100:
        h = bytes([0x81, n])
    else:
        h = bytes([0x82, n >> 8, n & 255])
    return bytes([tag]) + h + body

def tbs_parts(cert):
    """issuer, validity and subject of a DER certificate, as DER."""
    def tlv(b, i):
        l = b[i + 1]
        k = 2
        if l & 0x80:
            nb = l & 0x7F
            l = int.from_bytes(b[i + 2:i + 2 + nb], "big")
            k = 2 + nb
        return i + k, l
    o, _ = tlv(cert, 0)              # Certificate
    o, _ = tlv(cert, o)              # tbsCertificate
    parts = []
    while len(parts) < 6:
        c, l = tlv(cert, o)
        parts.append(cert[o:c + l])
        o = c + l
    # [0] version, serial, signature, issuer, validity, subject
    return parts[3], parts[4], parts[5]

def tlsinfo_seeds(c):
    CN, O, OU = b"\x06\x03\x55\x04\x03", b"\x06\x03\x55\x04\x0a", b"\x06\x03\x55\x04\x0b"
    ava = lambda oid, tag, v: der(0x30, oid + der(tag, v))
    rdn = lambda *avas: der(0x31, b"".join(avas))
    name = lambda *rdns: der(0x30, b"".join(rdns))
    out = {}
    for k, d in c.items():
        iss, val, sub = tbs_parts(d)
        out["name_" + k] = bytes([0, 40]) + sub
        out["issuer_" + k] = bytes([0, 255]) + iss
        out["validity_" + k] = bytes([2, 0]) + val
    out["name_escapes"] = bytes([0, 20]) + name(rdn(ava(O, 0x0C, b'a,b+c"d\\e<f>g;h')), rdn(ava(CN, 0x0C, b"#1 x ")))
    out["name_bmp_t61_univ"] = bytes([0, 64]) + name(rdn(ava(O, 0x1E, "Mü日".encode("utf-16-be"))),
                                                     rdn(ava(OU, 0x14, b"caf\xe9")),
                                                     rdn(ava(CN, 0x1C, "x\U0001f600".encode("utf-32-be"))))
    out["name_multivalued"] = bytes([0, 9]) + name(rdn(ava(CN, 0x0C, b"a"), ava(OU, 0x0C, b"b")))
    out["name_unknown_oid"] = bytes([0, 99]) + name(rdn(ava(b"\x06\x04\x2a\x03\x04\x05", 0x0C, b"abc")),
                                                    rdn(ava(b"\x06\x03\x88\x37\x01", 0x02, b"\x05")))
    out["name_controls"] = bytes([0, 30]) + name(rdn(ava(CN, 0x0C, b"a\x1b[31mb\x7f\x00")))
    out["name_long"] = bytes([0, 100]) + name(*[rdn(ava(OU, 0x0C, b"unit %d of a long name" % i))
                                                for i in range(12)])
    for t, v in (("utc", b"261201101500Z"), ("utc_1950", b"500101000000Z"), ("gen", b"20500101000000Z"),
                 ("gen_leap", b"20000229235960Z"), ("frac", b"20500101000000.5Z"), ("offset", b"261201101500+0100"),
                 ("bad_day", b"260231000000Z")):
        out["time_" + t] = bytes([1, 0x18 if len(v) > 13 else 0x17]) + v
    return out

# -- fuzz_cli: byte 0 the parser (0 configuration, 1 aliases, 2 header
# section, 3 argv as NUL-separated words), byte 1 switches (aliases: bit 0
# a domain; headers: bit 0 -t, 1 from set, 2 domain set, 3 nothing added,
# 4 and 5 argv recipients), then the input
def cli_seeds():
    conf = lambda t: bytes([0, 0]) + t.encode()
    out = {
        "conf_man_example": conf("# ~/.config/tlsmail-send/config - chmod 600\ntimeout 30\naliases /etc/aliases\n\n"
                                 "account work\nserver smtp.example.org\nuser me@example.org\n"
                                 "password_command pass show mail/work\nfrom me@example.org\nfrom_name Jane Doe\n\n"
                                 "account box\nserver mail.example.net:587\nsecurity starttls\nuser alerts@example.net\n"
                                 "password_file /etc/tlsmail-send.secret\nfrom alerts@example.net\ndomain example.net\n\n"
                                 "default box\n"),
        "conf_oauth": conf("server smtp.office365.com:587\nsecurity starttls\nauth xoauth2\nuser me@example.com\n"
                           "token_command /usr/local/bin/m365-token\n"),
        "conf_cert": conf("server mail.example.org\ntls_cert_file /etc/ssl/box.pem\ntls_key_file /etc/ssl/box.key\n"
                          "auth external\n"),
        "conf_quotes": conf('from_name "  Jane \\"JD\\" Doe  "\nhelo "\\\\host"\nlog  "syslog"  \n'
                            'domain \t example.org\t\r\n'),
        "conf_crlf_tabs": conf("server\tsmtp.example.org\r\n\t# comment\r\nport 465\r\n"),
        "conf_bad_quote": conf('from_name "a"b"\n'),
        "conf_unknown": conf("smtp_server x\n"),
        "aliases": bytes([1, 1]) + b"# aliases(5)\nroot: ops@example.org,\n   admin\nadmin: Boss <boss@example.org>\n"
                   b"postmaster: root\ndefault: catchall@example.org\nloop: loop2\nloop2: loop, x@example.org\n",
        "aliases_pipe": bytes([1, 0]) + b"bin: |/usr/bin/true\nfile: /var/mail/x\ninc: :include:/etc/x\n",
        "aliases_fanout": bytes([1, 1]) + b"a: b, b, b, c\nb: c, c, d\nc: d, d\nd: e@example.org\n",
    }
    cron = (b"From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@box> echo hello\n"
            b"MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n\nhello from cron\n")
    out["hdr_cron"] = bytes([2, 4 | 32]) + cron
    out["hdr_t_groups_bcc"] = bytes([2, 1 | 2]) + (
        b"To: \"Doe, Jane\" <jane@example.org>, team: a@example.org, b@example.org;\r\n"
        b"Cc: c@example.org (comment (nested)), <@route:d@example.org>\r\n"
        b"Bcc: secret@example.org\r\nBcc:\r\n more@example.org\r\nSubject: x\r\n\r\nbody\r\nBcc: not a header\r\n")
    out["hdr_bare_body"] = bytes([2, 2 | 16]) + b"no header here, just text\n"
    out["hdr_complete"] = bytes([2, 16]) + (b"From: Sender <sender@example.org>\r\nTo: rcpt@example.org\r\n"
                                            b"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: <x@example.org>\r\n\r\nhi\r\n")
    out["hdr_utf8_name"] = bytes([2, 1 | 4]) + "From: Jörg Müller <jm@example.org>\nTo: root, Ops <ops@example.org>\n\nx\n".encode()
    argv = lambda *a: bytes([3, 0]) + b"\0".join(x.encode() for x in a)
    out["argv_cronie"] = argv("-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root")
    out["argv_cron"] = argv("-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root")
    out["argv_git"] = argv("-f", "dev@example.org", "-i", "rcpt@example.org", "root")
    out["argv_dsn"] = argv("-N", "success,failure", "-R", "hdrs", "-V", "env+1=x", "-Ndelay", "--", "-a@b")
    out["argv_long"] = argv("--server=smtp.example.org:465", "--auth", "xoauth2", "--token-file", "/t",
                            "--cert", "c.pem", "--key=k.pem", "--timeout", "0.5", "--max-time=9", "-v", "x@y")
    out["argv_refused"] = argv("--password=x", "--token", "t")
    return out

def pem_to_der(pem):
    body = b"".join(l for l in pem.splitlines() if l and not l.startswith(b"-----"))
    return base64.b64decode(body)

def audit_regressions(audit):
    """The audit's crash inputs, in each target's input format."""
    with open(os.path.join(audit, "pem_crash.pem"), "rb") as f:
        crash_pem = f.read()
    der = pem_to_der(crash_pem)
    # the reproducer fed the pin engine 16-octet fragments, with a wrong pin
    write("fuzz_pem", {"audit_pem_crash": bytes([0]) + crash_pem,
                       "audit_pem_crash_wrapped": bytes([1]) + entries(der)}, "regress", False)
    write("fuzz_pin", {"audit_pem_crash_der": bytes([15 << 1]) + b"0123456789abcdef" * 2 + entries(der),
                       "audit_pem_crash_der_right_pin": bytes([1 | 15 << 1]) + entries(der)},
          "regress", False)
    # compose_size_input.bin: from, to1, to2, subject, body (message id "x@y")
    with open(os.path.join(audit, "compose_size_input.bin"), "rb") as f:
        raw = f.read()
    parts = raw.split(b"\0", 4)
    body = parts[4] if len(parts) > 4 else b""
    reshaped = bytes([2 | 32]) + b"".join(p + b"\0" for p in parts[:4]) + b"x@y\0" + body
    write("fuzz_compose", {"audit_compose_size": reshaped}, "regress", False)

write("fuzz_client", client_seeds())
write("fuzz_challenge", challenge_seeds())
write("fuzz_queue_id", queue_id_seeds())
write("fuzz_reply", reply_seeds())
write("fuzz_ehlo", ehlo_seeds())
write("fuzz_base64", base64_seeds())
write("fuzz_dot", dot_seeds())
write("fuzz_scan", scan_seeds())
write("fuzz_address", address_seeds())
write("fuzz_compose", compose_seeds())
write("fuzz_starttls", starttls_seeds())
write("fuzz_cli", cli_seeds())
with tempfile.TemporaryDirectory() as tmp:
    certs = make_certs(tmp)
write("fuzz_pem", pem_seeds(certs))
write("fuzz_tlsinfo", tlsinfo_seeds(certs))
write("fuzz_pin", pin_seeds(certs))
audit = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/audit"
if os.path.isdir(audit):
    audit_regressions(audit)
