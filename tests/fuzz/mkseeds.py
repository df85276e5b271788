#!/usr/bin/python3
"""Regenerates the committed seed corpora: tests/fuzz/corpus/<target>/.
Run from anywhere: /usr/bin/python3 tests/fuzz/mkseeds.py"""
import base64, hashlib, os, shutil

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
    # byte 0: bit0 step session, bits1-4 read size-1, bit5 one rcpt, bit6 partial writes
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

def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
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

write("fuzz_client", client_seeds())
write("fuzz_challenge", challenge_seeds())
write("fuzz_queue_id", queue_id_seeds())
write("fuzz_reply", reply_seeds())
write("fuzz_ehlo", ehlo_seeds())
write("fuzz_base64", base64_seeds())
write("fuzz_dot", dot_seeds())
