/* tests/unit/unit.c - tests of tlsmail's pure codecs, called directly (no sockets).

   Every reply-parser case runs whole, byte by byte and in odd chunk sizes,
   and must give the same result each way (picohttpparser style). The DATA
   encoder is checked against a separate non-streaming reference over many
   pseudo-random inputs, every chunk size 1..17 and tiny output buffers. */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/runner.h"

#define U(s) ((const unsigned char *)(s))

/* ---- reply parser --------------------------------------------------------- */

static char tr_buf[1 << 16];

static void tr_add(char *tr, size_t cap, size_t *t, const char *s) {
    size_t n = strlen(s);
    if (*t + n + 1 <= cap) {
        memcpy(tr + *t, s, n + 1);
        *t += n;
    }
}

/* Feeds in[0..n) in chunks of `chunk` bytes (0: all at once) and writes one
   record per line: "<code><$ if last, - if not><nlines>|<line>|<text>", then
   "ERR" on a parse error or "END" when all input was consumed. */
static int reply_run(const unsigned char *in, size_t n, size_t chunk, char *tr, size_t cap) {
    tlsmail__reply r;
    size_t off = 0, t = 0;
    char rec[TLSMAIL_MAX_LINE * 2 + 64];
    tr[0] = '\0';
    tlsmail__reply_init(&r);
    while (off < n) {
        size_t len = chunk && chunk < n - off ? chunk : n - off, pos = 0;
        while (pos < len) {
            size_t used = (size_t)-1;
            int rc = tlsmail__reply_feed(&r, in + off + pos, len - pos, &used);
            if (rc < 0) {
                CHECK_EQ_INT(rc, TLSMAIL_EPROTO);
                tr_add(tr, cap, &t, "ERR\n");
                return rc;
            }
            CHECK(used <= len - pos);
            if (rc == 1) {
                CHECK(used >= 1);
                CHECK_EQ_INT(strlen(r.line), r.len);
                CHECK(r.len <= TLSMAIL_MAX_LINE);
                snprintf(rec, sizeof rec, "%d%c%d|%s|%s\n", r.code, r.done ? '$' : '-', r.nlines,
                         r.line, tlsmail__reply_text(&r));
                tr_add(tr, cap, &t, rec);
            } else {
                CHECK_EQ_INT(rc, 0);
                CHECK_EQ_INT(used, len - pos);
            }
            pos += used;
        }
        off += len;
    }
    tr_add(tr, cap, &t, "END\n");
    return 0;
}

/* The same input, whole and in chunks of 1, 2, 3, 5 and 7 bytes: every
   transcript must equal `expect`. */
static int reply_same(const char *in, size_t n, const char *expect) {
    static const size_t chunks[] = { 0, 1, 2, 3, 5, 7 };
    size_t i;
    int ok = 1;
    for (i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        reply_run(U(in), n, chunks[i], tr_buf, sizeof tr_buf);
        if (strcmp(tr_buf, expect) != 0) {
            printf("    chunk %lu: got:\n%s    expected:\n%s", (unsigned long)chunks[i], tr_buf,
                   expect);
            ok = 0;
        }
    }
    return ok;
}
#define REPLY(lit, expect) reply_same(lit, sizeof(lit) - 1, expect)

TEST(reply_single_line) {
    CHECK(REPLY("220 mx.example.org ESMTP ready\r\n",
                "220$1|220 mx.example.org ESMTP ready|mx.example.org ESMTP ready\nEND\n"));
    CHECK(REPLY("250\r\n", "250$1|250|\nEND\n"));
    CHECK(REPLY("250 \r\n", "250$1|250 |\nEND\n"));
    CHECK(REPLY("554 5.7.1 no\r\n", "554$1|554 5.7.1 no|5.7.1 no\nEND\n"));
    /* HT and UTF-8 text are allowed */
    CHECK(REPLY("250 a\tb \xc3\xa9t\xc3\xa9\r\n", "250$1|250 a\tb \xc3\xa9t\xc3\xa9|a\tb \xc3\xa9t\xc3\xa9\nEND\n"));
}

TEST(reply_multi_line) {
    CHECK(REPLY("250-mx.example.org Hello\r\n250-PIPELINING\r\n250-SIZE 35882577\r\n250 SMTPUTF8\r\n"
                "354 go ahead\r\n",
                "250-1|250-mx.example.org Hello|mx.example.org Hello\n"
                "250-2|250-PIPELINING|PIPELINING\n"
                "250-3|250-SIZE 35882577|SIZE 35882577\n"
                "250$4|250 SMTPUTF8|SMTPUTF8\n"
                "354$1|354 go ahead|go ahead\nEND\n"));
    /* "250-" with no text, a bare "250" ending a multi-line reply */
    CHECK(REPLY("250-\r\n250\r\n221 bye\r\n", "250-1|250-|\n250$2|250|\n221$1|221 bye|bye\nEND\n"));
    /* several replies back to back (pipelining), each starting over */
    CHECK(REPLY("250 ok\r\n550-no\r\n550 such user\r\n354 go\r\n",
                "250$1|250 ok|ok\n550-1|550-no|no\n550$2|550 such user|such user\n354$1|354 go|go\nEND\n"));
    /* an incomplete line is kept for later */
    CHECK(REPLY("250-a\r\n250 b", "250-1|250-a|a\nEND\n"));
}

TEST(reply_bare_lf) {
    CHECK(REPLY("250-a\n250 b\n", "250-1|250-a|a\n250$2|250 b|b\nEND\n"));
    CHECK(REPLY("250-a\r\n250 b\n", "250-1|250-a|a\n250$2|250 b|b\nEND\n"));
}

TEST(reply_bad_lines) {
    CHECK(REPLY("250-a\r\n251 b\r\n", "250-1|250-a|a\nERR\n"));  /* code changed */
    CHECK(REPLY("250-a\r\n350 b\r\n", "250-1|250-a|a\nERR\n"));
    CHECK(REPLY("25\r\n", "ERR\n"));
    CHECK(REPLY("2\r\n", "ERR\n"));
    CHECK(REPLY("\r\n", "ERR\n"));
    CHECK(REPLY("\n", "ERR\n"));
    CHECK(REPLY("2X0 x\r\n", "ERR\n"));
    CHECK(REPLY("250x\r\n", "ERR\n"));
    CHECK(REPLY("250\tx\r\n", "ERR\n"));
    CHECK(REPLY("250_x\r\n", "ERR\n"));
    CHECK(REPLY("150 x\r\n", "ERR\n"));  /* first digit 2-5 */
    CHECK(REPLY("650 x\r\n", "ERR\n"));
    CHECK(REPLY("260 x\r\n", "ERR\n"));  /* second digit 0-5 */
    CHECK(REPLY("25a x\r\n", "ERR\n"));
    CHECK(REPLY(" 250 x\r\n", "ERR\n"));
    CHECK(REPLY("250 a\0b\r\n", "ERR\n"));       /* NUL */
    CHECK(REPLY("\0" "250 a\r\n", "ERR\n"));
    CHECK(REPLY("250 a\x1b[31m\r\n", "ERR\n"));  /* ESC */
    CHECK(REPLY("250 a\x7f\r\n", "ERR\n"));      /* DEL */
    CHECK(REPLY("250 a\rb\r\n", "ERR\n"));       /* CR not before LF */
    CHECK(REPLY("250 a\r\r\n", "ERR\n"));
    CHECK(REPLY("250 a\r", "END\n"));          /* CR pending: no verdict yet */
    CHECK(REPLY("250-a\r\n250 b\rX", "250-1|250-a|a\nERR\n"));
}

TEST(reply_used_and_reset) {
    tlsmail__reply r;
    size_t used = 0;
    const char *in = "250-a\r\n250 b\r\n220 c\r\n";
    tlsmail__reply_init(&r);
    CHECK_STR(tlsmail__reply_text(&r), "");
    CHECK_EQ_INT(tlsmail__reply_feed(&r, U(in), strlen(in), &used), 1);
    CHECK_EQ_INT(used, 7);
    CHECK_EQ_INT(r.code, 250);
    CHECK_EQ_INT(r.done, 0);
    CHECK_EQ_INT(r.nlines, 1);
    CHECK_EQ_INT(r.len, 5);
    CHECK_STR(r.line, "250-a");
    CHECK_EQ_INT(tlsmail__reply_feed(&r, U(in) + 7, strlen(in) - 7, &used), 1);
    CHECK_EQ_INT(used, 7);
    CHECK_EQ_INT(r.done, 1);
    CHECK_EQ_INT(r.nlines, 2);
    CHECK_STR(tlsmail__reply_text(&r), "b");
    CHECK_EQ_INT(tlsmail__reply_feed(&r, U(in) + 14, 0, &used), 0);
    CHECK_EQ_INT(used, 0);
    CHECK_EQ_INT(tlsmail__reply_feed(&r, U(in) + 14, strlen(in) - 14, &used), 1);
    CHECK_EQ_INT(r.code, 220);
    CHECK_EQ_INT(r.nlines, 1);
    CHECK_EQ_INT(r.done, 1);
}

TEST(reply_line_length) {
    static char in[TLSMAIL_MAX_LINE + 16];
    static char expect[2 * TLSMAIL_MAX_LINE + 64];
    size_t n;
    memset(in, 'x', sizeof in);
    memcpy(in, "250 ", 4);
    /* exactly TLSMAIL_MAX_LINE octets before CRLF: accepted */
    memcpy(in + TLSMAIL_MAX_LINE, "\r\n", 2);
    n = TLSMAIL_MAX_LINE + 2;
    snprintf(expect, sizeof expect, "250$1|%.*s|%.*s\nEND\n", TLSMAIL_MAX_LINE, in,
             TLSMAIL_MAX_LINE - 4, in + 4);
    CHECK(reply_same(in, n, expect));
    /* and with a bare LF */
    memcpy(in + TLSMAIL_MAX_LINE, "\n", 1);
    CHECK(reply_same(in, TLSMAIL_MAX_LINE + 1, expect));
    /* one more octet: refused */
    memcpy(in + TLSMAIL_MAX_LINE, "x\r\n", 3);
    CHECK(reply_same(in, TLSMAIL_MAX_LINE + 3, "ERR\n"));
    memcpy(in + TLSMAIL_MAX_LINE, "x\n", 2);
    CHECK(reply_same(in, TLSMAIL_MAX_LINE + 2, "ERR\n"));
}

/* A server that never sends a line end must be cut off at the limit, not
   buffered: the error comes with the (TLSMAIL_MAX_LINE+1)th octet. */
TEST(reply_endless_line) {
    static unsigned char big[1 << 20];
    static const size_t chunks[] = { 1, 100, 4096, sizeof big };
    size_t ci;
    memset(big, 'a', sizeof big);
    memcpy(big, "250 ", 4);
    for (ci = 0; ci < sizeof chunks / sizeof chunks[0]; ci++) {
        tlsmail__reply r;
        size_t off = 0, consumed = 0;
        int rc = 0;
        tlsmail__reply_init(&r);
        while (off < sizeof big && rc == 0) {
            size_t len = chunks[ci] < sizeof big - off ? chunks[ci] : sizeof big - off, used = 0;
            rc = tlsmail__reply_feed(&r, big + off, len, &used);
            consumed += used;
            off += len;
        }
        CHECK_EQ_INT(rc, TLSMAIL_EPROTO);
        CHECK_EQ_INT(consumed, TLSMAIL_MAX_LINE);
        CHECK(off < TLSMAIL_MAX_LINE + chunks[ci] + 1);
    }
}

static size_t many_lines(char *buf, size_t cap, int nlines) {
    size_t t = 0;
    int i;
    for (i = 0; i < nlines; i++) {
        const char *l = i + 1 < nlines ? "250-x\r\n" : "250 x\r\n";
        if (t + 8 > cap) break;
        memcpy(buf + t, l, 7);
        t += 7;
    }
    return t;
}

TEST(reply_line_count) {
    static char in[(TLSMAIL_MAX_REPLY_LINES + 2) * 7];
    static char tr[1 << 16];
    size_t n;
    char last[64];
    /* exactly the limit: fine */
    n = many_lines(in, sizeof in, TLSMAIL_MAX_REPLY_LINES);
    CHECK_EQ_INT(reply_run(U(in), n, 0, tr_buf, sizeof tr_buf), 0);
    snprintf(last, sizeof last, "250$%d|250 x|x\nEND\n", TLSMAIL_MAX_REPLY_LINES);
    CHECK(strlen(tr_buf) > strlen(last) && strcmp(tr_buf + strlen(tr_buf) - strlen(last), last) == 0);
    reply_run(U(in), n, 1, tr, sizeof tr);
    CHECK_STR(tr, tr_buf);
    /* one more: refused at that line */
    n = many_lines(in, sizeof in, TLSMAIL_MAX_REPLY_LINES + 1);
    CHECK_EQ_INT(reply_run(U(in), n, 0, tr_buf, sizeof tr_buf), TLSMAIL_EPROTO);
    snprintf(last, sizeof last, "250-%d|250-x|x\nERR\n", TLSMAIL_MAX_REPLY_LINES);
    CHECK(strlen(tr_buf) > strlen(last) && strcmp(tr_buf + strlen(tr_buf) - strlen(last), last) == 0);
    reply_run(U(in), n, 1, tr, sizeof tr);
    CHECK_STR(tr, tr_buf);
}

/* ---- EHLO extensions ------------------------------------------------------ */

static void ext_lines(tlsmail__ext *e, const char *const *lines, size_t n) {
    size_t i;
    tlsmail__ext_init(e);
    for (i = 0; i < n; i++) tlsmail__ext_line(e, lines[i], strlen(lines[i]));
}

#define AUTHBIT(m) (1u << TLSMAIL_AUTH_##m)

TEST(ext_gmail) {
    static const char *const lines[] = {
        "SIZE 35882577", "8BITMIME",
        "AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH",
        "ENHANCEDSTATUSCODES", "PIPELINING", "CHUNKING", "SMTPUTF8",
    };
    tlsmail__ext e;
    ext_lines(&e, lines, sizeof lines / sizeof lines[0]);
    CHECK_EQ_INT(e.flags, TLSMAIL__EXT_SIZE | TLSMAIL__EXT_8BITMIME | TLSMAIL__EXT_AUTH |
                              TLSMAIL__EXT_ENHANCEDSTATUSCODES | TLSMAIL__EXT_PIPELINING |
                              TLSMAIL__EXT_SMTPUTF8);
    CHECK_EQ_INT(e.auth, AUTHBIT(PLAIN) | AUTHBIT(LOGIN));
    CHECK_STR(tlsmail__ext_find(&e, "size"), "35882577");
    CHECK_STR(tlsmail__ext_find(&e, "SIZE"), "35882577");
    CHECK_STR(tlsmail__ext_find(&e, "Chunking"), "");
    CHECK_STR(tlsmail__ext_find(&e, "AUTH"),
              "LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH");
    CHECK(tlsmail__ext_find(&e, "STARTTLS") == NULL);
    CHECK(tlsmail__ext_find(&e, "SIZ") == NULL);
    CHECK(tlsmail__ext_find(&e, "SIZE 35882577") == NULL);
    CHECK(tlsmail__ext_find(&e, "") == NULL);
    CHECK(tlsmail__ext_find(&e, NULL) == NULL);
    CHECK(e.len <= TLSMAIL_EXT_TEXT);
}

TEST(ext_postfix) {
    static const char *const lines[] = {
        "PIPELINING", "SIZE 10240000", "VRFY", "ETRN", "STARTTLS", "AUTH PLAIN LOGIN",
        "AUTH=PLAIN LOGIN", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING",
    };
    tlsmail__ext e;
    ext_lines(&e, lines, sizeof lines / sizeof lines[0]);
    CHECK_EQ_INT(e.flags, TLSMAIL__EXT_PIPELINING | TLSMAIL__EXT_SIZE | TLSMAIL__EXT_STARTTLS |
                              TLSMAIL__EXT_AUTH | TLSMAIL__EXT_ENHANCEDSTATUSCODES |
                              TLSMAIL__EXT_8BITMIME | TLSMAIL__EXT_SMTPUTF8);
    CHECK_EQ_INT(e.auth, AUTHBIT(PLAIN) | AUTHBIT(LOGIN));
    CHECK_STR(tlsmail__ext_find(&e, "auth"), "PLAIN LOGIN");
    CHECK_STR(tlsmail__ext_find(&e, "dsn"), "");
    CHECK_STR(tlsmail__ext_find(&e, "STARTTLS"), "");
    CHECK(tlsmail__ext_find(&e, "AUTH=PLAIN") == NULL);
}

TEST(ext_auth_forms) {
    tlsmail__ext e;
    /* old "AUTH=" form alone: an AUTH offer, but no AUTH entry */
    tlsmail__ext_init(&e);
    tlsmail__ext_line(&e, "AUTH=LOGIN", 10);
    CHECK_EQ_INT(e.flags, TLSMAIL__EXT_AUTH);
    CHECK_EQ_INT(e.auth, AUTHBIT(LOGIN));
    CHECK(tlsmail__ext_find(&e, "AUTH") == NULL);
    tlsmail__ext_line(&e, "auth=plain", 10);
    CHECK_EQ_INT(e.auth, AUTHBIT(PLAIN) | AUTHBIT(LOGIN));

    /* case-insensitive keyword and mechanisms; keyword stored upper-case */
    tlsmail__ext_init(&e);
    tlsmail__ext_line(&e, "auth plain", 10);
    CHECK_EQ_INT(e.auth, AUTHBIT(PLAIN));
    CHECK_EQ_INT(e.flags, TLSMAIL__EXT_AUTH);
    CHECK_STR(e.text, "AUTH plain");
    CHECK_STR(tlsmail__ext_find(&e, "Auth"), "plain");

    /* whole words only */
    tlsmail__ext_init(&e);
    tlsmail__ext_line(&e, "AUTH PLAINX XPLAIN LOGINX PLAIN-CLIENTTOKEN CRAM-MD5", 52);
    CHECK_EQ_INT(e.auth, 0);
    CHECK_EQ_INT(e.flags, TLSMAIL__EXT_AUTH);
    tlsmail__ext_line(&e, "AUTH=PLAINX", 11);
    CHECK_EQ_INT(e.auth, 0);

    /* several AUTH lines accumulate; find returns the first */
    tlsmail__ext_init(&e);
    tlsmail__ext_line(&e, "AUTH PLAIN", 10);
    tlsmail__ext_line(&e, "AUTH  LOGIN", 11);
    CHECK_EQ_INT(e.auth, AUTHBIT(PLAIN) | AUTHBIT(LOGIN));
    CHECK_STR(tlsmail__ext_find(&e, "AUTH"), "PLAIN");

    /* a keyword that is a prefix of AUTH is not AUTH */
    tlsmail__ext_init(&e);
    tlsmail__ext_line(&e, "AUTHX PLAIN", 11);
    tlsmail__ext_line(&e, "AUT PLAIN", 9);
    CHECK_EQ_INT(e.auth, 0);
    CHECK_EQ_INT(e.flags, 0);
}

TEST(ext_params_and_junk) {
    tlsmail__ext e;
    tlsmail__ext_init(&e);
    tlsmail__ext_line(&e, "SIZE    100", 11);    /* several spaces */
    tlsmail__ext_line(&e, "SIZE 200", 8);         /* duplicate: first wins */
    tlsmail__ext_line(&e, "X-FOO a b", 9);
    tlsmail__ext_line(&e, "8bitmimeXXXX", 8);     /* len, not NUL, ends the text */
    CHECK_STR(tlsmail__ext_find(&e, "size"), "100");
    CHECK_STR(tlsmail__ext_find(&e, "x-foo"), "a b");
    CHECK_STR(tlsmail__ext_find(&e, "8BITMIME"), "");
    CHECK_EQ_INT(e.flags, TLSMAIL__EXT_SIZE | TLSMAIL__EXT_8BITMIME);

    /* ignored: empty, leading space, bad keyword characters, NUL inside */
    tlsmail__ext_init(&e);
    tlsmail__ext_line(&e, "", 0);
    tlsmail__ext_line(&e, " SIZE 1", 7);
    tlsmail__ext_line(&e, "X_FOO bar", 9);
    tlsmail__ext_line(&e, "-FOO", 4);
    tlsmail__ext_line(&e, "FOO\x01", 4);
    tlsmail__ext_line(&e, "SIZE\t1", 6);
    tlsmail__ext_line(&e, "STARTTLS\0", 9);
    tlsmail__ext_line(&e, "PIPE\xc3\xa9LINING", 12);
    tlsmail__ext_line(&e, NULL, 0);
    CHECK_EQ_INT(e.flags, 0);
    CHECK_EQ_INT(e.auth, 0);
    CHECK_EQ_INT(e.len, 0);
    CHECK(tlsmail__ext_find(&e, "SIZE") == NULL);
    CHECK(tlsmail__ext_find(&e, "FOO") == NULL);
}

TEST(ext_overflow) {
    tlsmail__ext e;
    char line[TLSMAIL_EXT_TEXT + 8];
    size_t room;
    tlsmail__ext_init(&e);
    tlsmail__ext_line(&e, "SIZE 1000", 9);
    /* an entry that does not fit is dropped, flags and mechanisms stay */
    memset(line, 'A', sizeof line);
    memcpy(line, "AUTH PLAIN LOGIN ", 17);
    tlsmail__ext_line(&e, line, sizeof line);
    CHECK_EQ_INT(e.auth, AUTHBIT(PLAIN) | AUTHBIT(LOGIN));
    CHECK(e.flags & TLSMAIL__EXT_AUTH);
    CHECK(tlsmail__ext_find(&e, "AUTH") == NULL);
    /* fill to exactly the last byte: "X-PAD " + params + NUL */
    room = sizeof e.text - e.len;
    memset(line, 'p', sizeof line);
    memcpy(line, "X-PAD ", 6);
    tlsmail__ext_line(&e, line, room);       /* room + 1 needed: dropped */
    CHECK(tlsmail__ext_find(&e, "X-PAD") == NULL);
    tlsmail__ext_line(&e, line, room - 1);   /* exactly fits */
    CHECK(tlsmail__ext_find(&e, "X-PAD") != NULL);
    CHECK_EQ_INT(e.len, TLSMAIL_EXT_TEXT);
    CHECK_EQ_INT(strlen(tlsmail__ext_find(&e, "X-PAD")), room - 1 - 6);
    tlsmail__ext_line(&e, "STARTTLS", 8);
    tlsmail__ext_line(&e, "PIPELINING", 10);
    CHECK(e.flags & TLSMAIL__EXT_STARTTLS);
    CHECK(e.flags & TLSMAIL__EXT_PIPELINING);
    CHECK(tlsmail__ext_find(&e, "STARTTLS") == NULL);
    CHECK_STR(tlsmail__ext_find(&e, "SIZE"), "1000");
    CHECK_EQ_INT(e.len, TLSMAIL_EXT_TEXT);
}

/* ---- base64 ---------------------------------------------------------------- */

TEST(b64_rfc4648_vectors) {
    static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                       "Zm9vYmFy" };
    size_t i;
    for (i = 0; i < 7; i++) {
        char out[16];
        unsigned char dec[16];
        size_t pl = strlen(plain[i]), el = strlen(enc[i]);
        memset(out, '#', sizeof out);
        CHECK_EQ_INT(tlsmail__b64_encode(out, sizeof out, plain[i], pl), el);
        CHECK_STR(out, enc[i]);
        /* exact capacity: encoding + NUL */
        memset(out, '#', sizeof out);
        CHECK_EQ_INT(tlsmail__b64_encode(out, el + 1, plain[i], pl), el);
        CHECK_STR(out, enc[i]);
        CHECK_EQ_INT(tlsmail__b64_decode(dec, sizeof dec, enc[i], el), pl);
        CHECK_MEM(dec, pl, plain[i], pl);
        /* exact capacity, and one short */
        CHECK_EQ_INT(tlsmail__b64_decode(dec, pl, enc[i], el), pl);
        if (pl) CHECK_EQ_INT(tlsmail__b64_decode(dec, pl - 1, enc[i], el), -1);
    }
}

TEST(b64_encode_capacity) {
    char out[16];
    memset(out, '#', sizeof out);
    CHECK_EQ_INT(tlsmail__b64_encode(out, 8, "foob", 4), 0);  /* needs 9 */
    CHECK_EQ_INT(tlsmail__b64_encode(out, 4, "f", 1), 0);     /* needs 5 */
    CHECK_EQ_INT(tlsmail__b64_encode(out, 0, "f", 1), 0);
    CHECK(out[0] == '#' && out[4] == '#' && out[8] == '#');   /* nothing written */
    CHECK_EQ_INT(tlsmail__b64_encode(out, 0, "", 0), 0);
    CHECK(out[0] == '#');
    CHECK_EQ_INT(tlsmail__b64_encode(out, 1, "", 0), 0);
    CHECK(out[0] == '\0');
}

TEST(b64_decode_bad) {
    static const char *const bad[] = {
        "Zg", "Zg=", "Z", "Zm9vY", "Z===", "====", "=Zg=", "Zg==Zg==", "Zm=v",
        "Zh==",          /* non-canonical: trailing bits set */
        "Zm9=",          /* "fo" is Zm8= */
        "Zm 9v", "Zm9v\n", "Zm9v\r\n", " Zm9v", "Zm9v!A==", "-_8=", "Zm9\0", "Zm9v====",
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char dec[16];
        size_t n = strlen(bad[i]);
        if (strcmp(bad[i], "Zm9\0") == 0) n = 4;
        if (tlsmail__b64_decode(dec, sizeof dec, bad[i], n) != -1)
            printf("    accepted bad base64 #%lu \"%s\"\n", (unsigned long)i, bad[i]);
        CHECK_EQ_INT(tlsmail__b64_decode(dec, sizeof dec, bad[i], n), -1);
    }
    {
        unsigned char dec[4];
        CHECK_EQ_INT(tlsmail__b64_decode(dec, sizeof dec, "", 0), 0);
        /* n, not a NUL, ends the input: slices of valid text are not valid */
        CHECK_EQ_INT(tlsmail__b64_decode(dec, sizeof dec, "Zm9vYg==", 6), -1);
        CHECK_EQ_INT(tlsmail__b64_decode(dec, sizeof dec, "Zm9vYmFy", 5), -1);
        CHECK_EQ_INT(tlsmail__b64_decode(dec, sizeof dec, "Zm9vYmFy", 4), 3);
        CHECK_EQ_INT(tlsmail__b64_decode(dec, sizeof dec, "+/+/", 4), 3);
        CHECK(dec[0] == 0xfb && dec[1] == 0xff && dec[2] == 0xbf);
    }
}

TEST(b64_round_trip) {
    unsigned char in[300], dec[300];
    char enc[404];
    size_t n, i;
    unsigned x = 12345;
    for (i = 0; i < sizeof in; i++) in[i] = (unsigned char)i;
    for (n = 0; n <= sizeof in; n++) {
        size_t el;
        if (n >= 256) {
            for (i = 0; i < n; i++) {
                x = x * 1103515245u + 12345u;
                in[i] = (unsigned char)(x >> 16);
            }
        }
        el = tlsmail__b64_encode(enc, sizeof enc, in, n);
        CHECK_EQ_INT(el, (n + 2) / 3 * 4);
        CHECK_EQ_INT(strlen(enc), el);
        CHECK_EQ_INT(tlsmail__b64_decode(dec, sizeof dec, enc, el), n);
        CHECK_MEM(dec, n, in, n);
    }
}

/* ---- AUTH PLAIN -------------------------------------------------------------- */

TEST(plain_rfc4616) {
    char out[128];
    unsigned char dec[128];
    CHECK_EQ_INT(tlsmail__plain_response(out, sizeof out, "", "tim", "tanstaaftanstaaf"), 28);
    CHECK_STR(out, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    CHECK_EQ_INT(tlsmail__plain_response(out, sizeof out, NULL, "tim", "tanstaaftanstaaf"), 28);
    CHECK_STR(out, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    CHECK_EQ_INT(tlsmail__plain_response(out, sizeof out, "Ursel", "Kurt", "xipj3plmq"), 28);
    CHECK_STR(out, "VXJzZWwAS3VydAB4aXBqM3BsbXE=");
    CHECK_EQ_INT(tlsmail__b64_decode(dec, sizeof dec, out, strlen(out)), 20);
    CHECK_MEM(dec, 20, "Ursel\0Kurt\0xipj3plmq", 20);
    /* exact capacity and one short */
    CHECK_EQ_INT(tlsmail__plain_response(out, 29, "", "tim", "tanstaaftanstaaf"), 28);
    CHECK_EQ_INT(tlsmail__plain_response(out, 28, "", "tim", "tanstaaftanstaaf"), TLSMAIL_EINVAL);
}

TEST(plain_invalid) {
    char out[1200], f255[256], f256[257];
    memset(f255, 'u', 255);
    f255[255] = '\0';
    memset(f256, 'u', 256);
    f256[256] = '\0';
    CHECK_EQ_INT(tlsmail__plain_response(out, sizeof out, "", NULL, "pw"), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__plain_response(out, sizeof out, "", "", "pw"), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__plain_response(out, sizeof out, "", "u", NULL), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__plain_response(out, sizeof out, "", "u", ""), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__plain_response(out, sizeof out, f256, "u", "p"), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__plain_response(out, sizeof out, "", f256, "p"), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__plain_response(out, sizeof out, "", "u", f256), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__plain_response(out, 0, "", "u", "p"), TLSMAIL_EINVAL);
    /* 255 everywhere is the maximum: 767 octets, 1024 base64 chars */
    CHECK_EQ_INT(tlsmail__plain_response(out, sizeof out, f255, f255, f255), 1024);
    CHECK_EQ_INT(tlsmail__plain_response(out, 1025, f255, f255, f255), 1024);
    CHECK_EQ_INT(tlsmail__plain_response(out, 1024, f255, f255, f255), TLSMAIL_EINVAL);
}

TEST(wipe) {
    unsigned char b[64];
    size_t i;
    int nonzero = 0;
    memset(b, 0xA5, sizeof b);
    tlsmail__wipe(b + 1, sizeof b - 2);
    for (i = 1; i + 1 < sizeof b; i++) nonzero |= b[i];
    CHECK_EQ_INT(nonzero, 0);
    CHECK(b[0] == 0xA5 && b[63] == 0xA5);
    tlsmail__wipe(NULL, 0);
    tlsmail__wipe(b, 0);
    CHECK(b[0] == 0xA5);
}

/* ---- DATA encoder -------------------------------------------------------------- */

/* The straightforward whole-buffer form of the rules, looking ahead instead of
   keeping state: the streaming encoder must agree with it byte for byte. */
static int ref_encode(const unsigned char *in, size_t n, unsigned char *out, size_t *outlen) {
    size_t i, o = 0, ll = 0;
    int bol = 1;
    for (i = 0; i < n; i++) {
        if (in[i] == '\r' || in[i] == '\n') {
            if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n') i++;
            out[o++] = '\r';
            out[o++] = '\n';
            bol = 1;
            ll = 0;
            continue;
        }
        if (++ll > 998) {
            *outlen = o;
            return TLSMAIL_ELINE;
        }
        if (bol && in[i] == '.') out[o++] = '.';
        out[o++] = in[i];
        bol = 0;
    }
    if (!bol) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    memcpy(out + o, ".\r\n", 3);
    *outlen = o + 3;
    return 0;
}

/* Encodes in chunks of `chunk` input bytes through an output buffer of
   `cap` bytes; on success appends the terminator. */
static int enc_chunked(const unsigned char *in, size_t n, size_t chunk, size_t cap,
                       unsigned char *out, size_t outcap, size_t *outlen) {
    tlsmail__dot d;
    unsigned char tmp[4096];
    size_t off = 0, o = 0;
    *outlen = 0;
    tlsmail__dot_init(&d);
    CHECK(cap <= sizeof tmp);
    while (off < n) {
        size_t len = chunk && chunk < n - off ? chunk : n - off, pos = 0;
        while (pos < len) {
            size_t used = (size_t)-1, written = (size_t)-1;
            int rc = tlsmail__dot_encode(&d, in + off + pos, len - pos, tmp, cap, &used, &written);
            CHECK(used <= len - pos);
            CHECK(written <= cap);
            if (used > len - pos || written > cap || o + written > outcap) return -999;
            memcpy(out + o, tmp, written);
            o += written;
            pos += used;
            if (rc) {
                *outlen = o;
                return rc;
            }
            if (used == 0) { /* cap >= 2 always makes progress */
                CHECK(used > 0);
                return -999;
            }
        }
        off += len;
    }
    if (outcap - o < 5) return -999;
    o += tlsmail__dot_finish(&d, out + o);
    *outlen = o;
    return 0;
}

static unsigned char enc_a[1 << 15], enc_b[1 << 15];

static int encode_is(const char *in, size_t n, const char *expect, size_t elen) {
    static const size_t chunks[] = { 0, 1, 2, 3, 5 };
    static const size_t caps[] = { 2, 3, 4096 };
    size_t ci, ki, ol;
    int ok = 1;
    for (ci = 0; ci < 5; ci++)
        for (ki = 0; ki < 3; ki++) {
            int rc = enc_chunked(U(in), n, chunks[ci], caps[ki], enc_a, sizeof enc_a, &ol);
            if (rc != 0 || ol != elen || memcmp(enc_a, expect, elen) != 0) {
                printf("    chunk %lu cap %lu rc %d:\n", (unsigned long)chunks[ci],
                       (unsigned long)caps[ki], rc);
                runner_dump("got:     ", enc_a, ol);
                runner_dump("expected:", expect, elen);
                ok = 0;
            }
        }
    CHECK_EQ_INT(tlsmail__check_lines(in, n), 0);
    return ok;
}
#define ENCODES(in, out) encode_is(in, sizeof(in) - 1, out, sizeof(out) - 1)

TEST(dot_line_ends) {
    CHECK(ENCODES("a\r\nb\r\n", "a\r\nb\r\n.\r\n"));
    CHECK(ENCODES("a\nb\n", "a\r\nb\r\n.\r\n"));
    CHECK(ENCODES("a\rb\r", "a\r\nb\r\n.\r\n"));
    CHECK(ENCODES("a\r\r\nb", "a\r\n\r\nb\r\n.\r\n"));    /* CR CR LF */
    CHECK(ENCODES("a\n\rb", "a\r\n\r\nb\r\n.\r\n"));      /* LF CR: two line ends */
    CHECK(ENCODES("a\n\nb", "a\r\n\r\nb\r\n.\r\n"));
    CHECK(ENCODES("\r\n", "\r\n.\r\n"));
    CHECK(ENCODES("\n", "\r\n.\r\n"));
    CHECK(ENCODES("\r", "\r\n.\r\n"));
    CHECK(ENCODES("abc", "abc\r\n.\r\n"));                /* no final newline */
    CHECK(ENCODES("", ".\r\n"));                          /* empty body */
    CHECK(ENCODES("a\0b\r\n", "a\0b\r\n.\r\n"));          /* NUL passes through */
}

TEST(dot_stuffing) {
    CHECK(ENCODES(".", "..\r\n.\r\n"));
    CHECK(ENCODES(".\r\n", "..\r\n.\r\n"));
    CHECK(ENCODES(".a\r\n..b\r\n.\r\n", "..a\r\n...b\r\n..\r\n.\r\n"));
    CHECK(ENCODES("a.b\r\n", "a.b\r\n.\r\n"));
    /* SMTP smuggling: every end-of-data look-alike is neutralised */
    CHECK(ENCODES("\n.\n", "\r\n..\r\n.\r\n"));
    CHECK(ENCODES("x\n.\nMAIL FROM:<a@b>\n", "x\r\n..\r\nMAIL FROM:<a@b>\r\n.\r\n"));
    CHECK(ENCODES("x\r.\r", "x\r\n..\r\n.\r\n"));
    CHECK(ENCODES("x\r\n.\n", "x\r\n..\r\n.\r\n"));
    CHECK(ENCODES("x\n.\r\n", "x\r\n..\r\n.\r\n"));
    CHECK(ENCODES("x\r\n.\r\n", "x\r\n..\r\n.\r\n"));
    CHECK(ENCODES("x\r\n.\rMAIL", "x\r\n..\r\nMAIL\r\n.\r\n"));
}

TEST(dot_line_length) {
    static unsigned char in[3000], out[4096];
    size_t used, written, ol;
    tlsmail__dot d;
    memset(in, 'x', sizeof in);
    /* 998 octets: fine, in any chunking */
    in[998] = '\n';
    CHECK_EQ_INT(tlsmail__check_lines(in, 999), 0);
    CHECK_EQ_INT(enc_chunked(in, 999, 7, 64, out, sizeof out, &ol), 0);
    CHECK_EQ_INT(ol, 998 + 2 + 3);
    /* a leading dot does not count against the line */
    in[0] = '.';
    CHECK_EQ_INT(enc_chunked(in, 999, 0, sizeof out, out, sizeof out, &ol), 0);
    CHECK_EQ_INT(ol, 999 + 2 + 3);
    CHECK(out[0] == '.' && out[1] == '.');
    in[0] = 'x';
    /* 999: refused at the 999th octet, nothing of it written */
    in[998] = 'x';
    in[999] = '\n';
    CHECK_EQ_INT(tlsmail__check_lines(in, 1000), TLSMAIL_ELINE);
    tlsmail__dot_init(&d);
    CHECK_EQ_INT(tlsmail__dot_encode(&d, in, 1000, out, sizeof out, &used, &written),
                 TLSMAIL_ELINE);
    CHECK_EQ_INT(used, 998);
    CHECK_EQ_INT(written, 998);
    CHECK_EQ_INT(enc_chunked(in, 1000, 1, 2, out, sizeof out, &ol), TLSMAIL_ELINE);
    CHECK_EQ_INT(ol, 998);
    /* the limit is per line, whatever the line end */
    in[998] = '\r';
    in[999] = '\n';
    memset(in + 1000, 'y', 998);
    in[1998] = '\r';
    in[1999] = 'z';
    CHECK_EQ_INT(tlsmail__check_lines(in, 2000), 0);
    CHECK_EQ_INT(enc_chunked(in, 2000, 13, 5, out, sizeof out, &ol), 0);
    CHECK_EQ_INT(ol, 998 + 2 + 998 + 2 + 1 + 2 + 3);
    CHECK_EQ_INT(tlsmail__check_lines("", 0), 0);
}

TEST(dot_small_buffers) {
    tlsmail__dot d;
    unsigned char out[8];
    size_t used, written;
    /* less than 2 bytes of room: no input byte is taken */
    tlsmail__dot_init(&d);
    CHECK_EQ_INT(tlsmail__dot_encode(&d, U("ab"), 2, out, 1, &used, &written), 0);
    CHECK_EQ_INT(used, 0);
    CHECK_EQ_INT(written, 0);
    CHECK_EQ_INT(tlsmail__dot_encode(&d, U("ab"), 2, out, 0, &used, &written), 0);
    CHECK_EQ_INT(used, 0);
    /* room for 2: one byte at a time in the worst case */
    CHECK_EQ_INT(tlsmail__dot_encode(&d, U(".a"), 2, out, 2, &used, &written), 0);
    CHECK_EQ_INT(used, 1);
    CHECK_MEM(out, written, "..", 2);
    /* the CR sends CRLF; its LF needs no room */
    CHECK_EQ_INT(tlsmail__dot_encode(&d, U("a\r\nb"), 4, out, 3, &used, &written), 0);
    CHECK_EQ_INT(used, 3);
    CHECK_MEM(out, written, "a\r\n", 3);
    /* a CR ending one call, its LF starting the next */
    CHECK_EQ_INT(tlsmail__dot_encode(&d, U("b\r"), 2, out, 8, &used, &written), 0);
    CHECK_EQ_INT(used, 2);
    CHECK_MEM(out, written, "b\r\n", 3);
    CHECK_EQ_INT(tlsmail__dot_encode(&d, U("\nc"), 2, out, 1, &used, &written), 0);
    CHECK_EQ_INT(used, 1);
    CHECK_EQ_INT(written, 0);
    CHECK_EQ_INT(tlsmail__dot_encode(&d, U("c"), 1, out, 8, &used, &written), 0);
    CHECK_MEM(out, written, "c", 1);
    CHECK_EQ_INT(tlsmail__dot_finish(&d, out), 5);
    CHECK_MEM(out, 5, "\r\n.\r\n", 5);
    /* finish leaves the encoder ready for the next message */
    CHECK_EQ_INT(tlsmail__dot_finish(&d, out), 3);
    CHECK_MEM(out, 3, ".\r\n", 3);
}

/* The encoder as 0.1 wrote it, one byte at a time: the memchr version
   must take and give exactly what this takes and gives on every call
   (used, written, result, bytes), for any state, input and room. */
static int step_ref(tlsmail__dot *d, const unsigned char *in, size_t n, unsigned char *out,
                    size_t cap, size_t *used, size_t *written) {
    size_t i, w = 0;
    int rc = 0;
    for (i = 0; i < n; i++) {
        unsigned char c = in[i];
        if (d->cr && c == '\n') {
            d->cr = 0;
            continue;
        }
        if (cap - w < 2) break;
        if (c == '\r' || c == '\n') {
            out[w++] = '\r';
            out[w++] = '\n';
            d->cr = c == '\r';
            d->bol = 1;
            d->linelen = 0;
        } else {
            if (d->linelen >= 998) {
                rc = TLSMAIL_ELINE;
                break;
            }
            if (d->bol && c == '.') out[w++] = '.';
            out[w++] = c;
            d->bol = 0;
            d->cr = 0;
            d->linelen++;
        }
    }
    *used = i;
    *written = w;
    return rc;
}

static unsigned rng_next(unsigned *s) { /* xorshift32: same sequence everywhere */
    unsigned x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* What the server must see: only CRLF line ends, and "CRLF.CRLF" exactly once,
   at the very end (or ".CRLF" alone for an empty body). */
static int wire_ok(const unsigned char *o, size_t n) {
    size_t i;
    if (n < 3 || memcmp(o + n - 3, ".\r\n", 3) != 0) return 0;
    if (n > 3 && (n < 5 || memcmp(o + n - 5, "\r\n", 2) != 0)) return 0;
    if (n > 3 && o[0] == '.' && o[1] == '\r') return 0;
    for (i = 0; i < n; i++) {
        if (o[i] == '\r' && (i + 1 == n || o[i + 1] != '\n')) return 0;
        if (o[i] == '\n' && (i == 0 || o[i - 1] != '\r')) return 0;
        if (i + 5 < n && memcmp(o + i, "\r\n.\r\n", 5) == 0) return 0;
    }
    return 1;
}

TEST(dot_chunking_invariance) {
    static const char abc[4] = { 'a', '.', '\r', '\n' };
    static const size_t caps[] = { 2, 3, 4, 5, 7, 64 };
    static unsigned char in[400];
    unsigned seed = 0x2545F491u;
    int k, bad = 0;
    for (k = 0; k < 300 && bad < 5; k++) {
        size_t n = rng_next(&seed) % (k < 100 ? 12 : sizeof in), i, chunk, ci, refl, ol;
        for (i = 0; i < n; i++) in[i] = (unsigned char)abc[rng_next(&seed) % 4];
        CHECK_EQ_INT(ref_encode(in, n, enc_b, &refl), 0);
        CHECK(wire_ok(enc_b, refl));
        for (chunk = 1; chunk <= 17; chunk++)
            for (ci = 0; ci < sizeof caps / sizeof caps[0]; ci++) {
                int rc = enc_chunked(in, n, chunk, caps[ci], enc_a, sizeof enc_a, &ol);
                if (rc != 0 || ol != refl || memcmp(enc_a, enc_b, refl) != 0 || !wire_ok(enc_a, ol)) {
                    printf("    input #%d chunk %lu cap %lu differs\n", k, (unsigned long)chunk,
                           (unsigned long)caps[ci]);
                    runner_dump("input:", in, n);
                    runner_dump("got:  ", enc_a, ol);
                    runner_dump("want: ", enc_b, refl);
                    CHECK(0);
                    bad++;
                    chunk = 18;
                    break;
                }
            }
        /* one shot with plenty of room */
        CHECK_EQ_INT(enc_chunked(in, n, 0, sizeof in * 2 + 8, enc_a, sizeof enc_a, &ol), 0);
        CHECK_MEM(enc_a, ol, enc_b, refl);
    }
}

/* Long random lines: ELINE must come at the same byte, with the same output
   before it, however the input is cut, and check_lines must agree. */
TEST(dot_chunking_eline) {
    static unsigned char in[2600];
    unsigned seed = 0x9E3779B9u;
    int k, elines = 0, oks = 0;
    for (k = 0; k < 60; k++) {
        size_t n = 900 + rng_next(&seed) % 1700, i, refl, ol, chunk;
        int refrc;
        for (i = 0; i < n; i++) {
            unsigned r = rng_next(&seed) % 1200;
            in[i] = (unsigned char)(r == 0 ? '\n' : r == 1 ? '\r' : r < 4 ? '.' : 'a');
        }
        refrc = ref_encode(in, n, enc_b, &refl);
        CHECK_EQ_INT(tlsmail__check_lines(in, n), refrc);
        if (refrc) elines++; else oks++;
        for (chunk = 1; chunk <= 17; chunk += 4) {
            int rc = enc_chunked(in, n, chunk, chunk + 1, enc_a, sizeof enc_a, &ol);
            CHECK_EQ_INT(rc, refrc);
            CHECK_MEM(enc_a, ol, enc_b, refl);
        }
    }
    CHECK(elines > 5 && oks > 5); /* both outcomes were exercised */
}

/* Every call of the encoder against step_ref, from the same state: random
   text with long and short lines, bare CRs and LFs, dots, at random cuts
   and rooms (0 to 40 octets and large), through lines near 998 octets. */
TEST(dot_per_call_reference) {
    static unsigned char in[6000], o1[9000], o2[9000];
    unsigned seed = 0x1234567u;
    int k, calls = 0, elines = 0;
    for (k = 0; k < 400; k++) {
        size_t n = 1 + rng_next(&seed) % sizeof in, i, pos = 0;
        unsigned long_lines = rng_next(&seed) % 3; /* 0: short lines, 2: mostly very long */
        tlsmail__dot a, b;
        for (i = 0; i < n; i++) {
            unsigned r = rng_next(&seed) % (long_lines == 2 ? 1100 : long_lines ? 200 : 12);
            in[i] = (unsigned char)(r == 0 ? '\n' : r == 1 ? '\r' : r == 2 ? '.' : 'a' + r % 26);
        }
        tlsmail__dot_init(&a);
        tlsmail__dot_init(&b);
        while (pos < n) {
            size_t len = 1 + rng_next(&seed) % (rng_next(&seed) % 2 ? 64 : n - pos);
            size_t cap = rng_next(&seed) % 4 ? rng_next(&seed) % 41 : 1 + rng_next(&seed) % 9000;
            size_t u1 = 7, w1 = 7, u2 = 9, w2 = 9;
            int r1, r2;
            if (len > n - pos) len = n - pos;
            if (cap > sizeof o1) cap = sizeof o1;
            r1 = tlsmail__dot_encode(&a, in + pos, len, o1, cap, &u1, &w1);
            r2 = step_ref(&b, in + pos, len, o2, cap, &u2, &w2);
            calls++;
            if (r1 != r2 || u1 != u2 || w1 != w2 || memcmp(o1, o2, w1) != 0 || a.bol != b.bol ||
                a.cr != b.cr || a.linelen != b.linelen) {
                printf("    input #%d at %lu, len %lu, cap %lu: rc %d/%d used %lu/%lu written %lu/%lu\n",
                       k, (unsigned long)pos, (unsigned long)len, (unsigned long)cap, r1, r2,
                       (unsigned long)u1, (unsigned long)u2, (unsigned long)w1, (unsigned long)w2);
                CHECK(0);
                return;
            }
            if (r1) {
                elines++;
                break;
            }
            pos += u1;
            if (u1 == 0 && cap >= 2) { /* room for progress must make progress */
                CHECK(u1 > 0);
                return;
            }
        }
    }
    CHECK(calls > 5000 && elines > 20);
}

/* ---- argument checks -------------------------------------------------------------- */

TEST(check_mailbox) {
    char buf[300];
    CHECK_EQ_INT(tlsmail__check_mailbox("user@example.org", 0), 0);
    CHECK_EQ_INT(tlsmail__check_mailbox("postmaster", 0), 0);
    CHECK_EQ_INT(tlsmail__check_mailbox("", 1), 0);
    CHECK_EQ_INT(tlsmail__check_mailbox("", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox(NULL, 1), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("a\r\n@x", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("a@x>\r\nRCPT TO:<b@y", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("a@x\nDATA", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("a@x\r", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("a\tb@x", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("a\x7f@x", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("a\x01@x", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("<a@x>", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("a>@x", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("a b@x", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("a@x SIZE=1", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox(" a@x", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("\"a b\"@x", 0), 0);
    CHECK_EQ_INT(tlsmail__check_mailbox("\"a\\\"b\"@x", 0), 0);
    CHECK_EQ_INT(tlsmail__check_mailbox("\"a b@x", 0), TLSMAIL_EINVAL);  /* unterminated */
    CHECK_EQ_INT(tlsmail__check_mailbox("\"a<b\"@x", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("\"a\\\r\"@x", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("a@\"b c\"", 0), TLSMAIL_EINVAL); /* space in domain */
    CHECK_EQ_INT(tlsmail__check_mailbox("@x", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("a@", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("@", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("\"a@b\"@x", 0), 0);  /* the last '@' splits */
    CHECK_EQ_INT(tlsmail__check_mailbox("a@b@", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("\xce\xb4\xce\xbf\xce\xba@\xcf\x80\xce\xb1.gr", 0), 0);
    /* local part 64 ok, 65 not */
    memset(buf, 'l', 64);
    strcpy(buf + 64, "@example.org");
    CHECK_EQ_INT(tlsmail__check_mailbox(buf, 0), 0);
    memset(buf, 'l', 65);
    strcpy(buf + 65, "@example.org");
    CHECK_EQ_INT(tlsmail__check_mailbox(buf, 0), TLSMAIL_EINVAL);
    /* 254 in all ok, 255 not */
    memset(buf, 'd', sizeof buf);
    memcpy(buf, "l@", 2);
    buf[254] = '\0';
    CHECK_EQ_INT(tlsmail__check_mailbox(buf, 0), 0);
    buf[254] = 'd';
    buf[255] = '\0';
    CHECK_EQ_INT(tlsmail__check_mailbox(buf, 0), TLSMAIL_EINVAL);
    buf[299] = '\0';
    CHECK_EQ_INT(tlsmail__check_mailbox(buf, 0), TLSMAIL_EINVAL);
}

/* What the ClientHello offers: TLS 1.2 only, ECDHE + AEAD only, AES-GCM
   first exactly when the CPU has AES-NI and PCLMUL. (Reads BearSSL's engine
   fields, which only a test may do.) */
TEST(tls_offer) {
    static br_ssl_client_context sc;
    static br_x509_minimal_context xc;
    size_t i;
    int id, hw = br_aes_x86ni_ctr_get_vtable() != NULL && br_ghash_pclmul_get() != 0;
    tlsmail__tls_profile(&sc, &xc);
    /* signatures with SHA-256 or stronger only, in TLS and in certificates */
    for (id = br_md5_ID; id <= br_sha512_ID; id++) {
        int want = id >= br_sha256_ID;
        CHECK_EQ_INT(br_multihash_getimpl(&sc.eng.mhash, id) != NULL, want);
        CHECK_EQ_INT(br_multihash_getimpl(&xc.mhash, id) != NULL, want);
    }
    CHECK((br_ssl_engine_get_flags(&sc.eng) & BR_OPT_NO_RENEGOTIATION) != 0);
    CHECK_EQ_INT(xc.min_rsa_size, 256 - 128); /* RSA >= 2048 bits */
    /* nothing registered that no offered suite uses: no CBC, no 3DES, no CCM */
    CHECK(sc.eng.iaes_cbcenc == NULL && sc.eng.ides_cbcenc == NULL && sc.eng.iaes_ctrcbc == NULL);
    CHECK(sc.eng.icbc_in == NULL && sc.eng.iccm_in == NULL);
    CHECK_EQ_INT(sc.eng.version_min, BR_TLS12);
    CHECK_EQ_INT(sc.eng.version_max, BR_TLS12);
    CHECK_EQ_INT(sc.eng.suites_num, 6);
    for (i = 0; i < sc.eng.suites_num; i++) {
        unsigned s = sc.eng.suites_buf[i];
        CHECK(s == BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 ||
              s == BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 ||
              s == BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 ||
              s == BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 ||
              s == BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 ||
              s == BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256);
    }
    CHECK_EQ_INT(sc.eng.suites_buf[0] == BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, hw);
    CHECK_EQ_INT(sc.eng.suites_buf[0] == BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, !hw);
}

/* The public check is the one the dialogue applies: same verdicts. */
TEST(check_address_public) {
    static const char *const addrs[] = { "user@example.org", "\"a b\"@example.org", "postmaster",
                                         "", "a b@example.org", "a@b\r\nRCPT TO:<x@y>",
                                         "<a@b>", "j\xc3\xb6rg@example.org" };
    size_t i;
    for (i = 0; i < sizeof addrs / sizeof addrs[0]; i++)
        CHECK_EQ_INT(tlsmail_check_address(addrs[i]), tlsmail__check_mailbox(addrs[i], 0));
    CHECK_EQ_INT(tlsmail_check_address("user@example.org"), 0);
    CHECK_EQ_INT(tlsmail_check_address("a@b\r\nRCPT TO:<x@y>"), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail_check_address(""), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail_check_address(NULL), TLSMAIL_EINVAL);
}

TEST(check_token) {
    CHECK_EQ_INT(tlsmail__check_token("mail.example.org", 255), 0);
    CHECK_EQ_INT(tlsmail__check_token("[192.0.2.1]", 255), 0);
    CHECK_EQ_INT(tlsmail__check_token("h\xc3\xa9", 255), 0);
    CHECK_EQ_INT(tlsmail__check_token("abcde", 5), 0);
    CHECK_EQ_INT(tlsmail__check_token("abcdef", 5), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_token("", 5), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_token(NULL, 5), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_token("a b", 5), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_token("a\r\n", 5), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_token("a\t", 5), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_token("a\x7f", 5), TLSMAIL_EINVAL);
}

static int hp(const char *addr, const char *host, unsigned port) {
    char h[64];
    unsigned p = 7;
    int rc = tlsmail_split_hostport(addr, h, sizeof h, &p, 465);
    if (rc != 0 || strcmp(h, host) != 0 || p != port) {
        printf("    \"%s\": rc %d host \"%s\" port %u\n", addr, rc, rc ? "" : h, p);
        return 0;
    }
    return 1;
}

static int hp_bad(const char *addr) {
    char h[64];
    unsigned p = 7;
    memset(h, '#', sizeof h);
    if (tlsmail_split_hostport(addr, h, sizeof h, &p, 465) != TLSMAIL_EINVAL) return 0;
    return p == 7 && h[0] == '#'; /* nothing written on failure */
}

TEST(split_hostport) {
    char h[8];
    unsigned p = 0;
    CHECK(hp("smtp.example.org:465", "smtp.example.org", 465));
    CHECK(hp("smtp.example.org", "smtp.example.org", 465));
    CHECK(hp("smtp.example.org:2525", "smtp.example.org", 2525));
    CHECK(hp("localhost:1", "localhost", 1));
    CHECK(hp("h:65535", "h", 65535));
    CHECK(hp("h:0465", "h", 465));
    CHECK(hp("192.0.2.1:25", "192.0.2.1", 25));
    CHECK(hp("[::1]:2525", "::1", 2525));
    CHECK(hp("[::1]", "::1", 465));
    CHECK(hp("[2001:db8::1]:465", "2001:db8::1", 465));
    CHECK(hp("::1", "::1", 465));
    CHECK(hp("2001:db8::25", "2001:db8::25", 465));
    CHECK(hp_bad(""));
    CHECK(hp_bad(":465"));
    CHECK(hp_bad("h:"));
    CHECK(hp_bad("h:0"));
    CHECK(hp_bad("h:65536"));
    CHECK(hp_bad("h:99999999999999999999"));
    CHECK(hp_bad("h:4x5"));
    CHECK(hp_bad("h:+465"));
    CHECK(hp_bad("h:-1"));
    CHECK(hp_bad("[]:465"));
    CHECK(hp_bad("[]"));
    CHECK(hp_bad("[::1"));
    CHECK(hp_bad("[::1]x"));
    CHECK(hp_bad("[::1]:"));
    CHECK(hp_bad("[::1]]"));
    CHECK(hp_bad("[[::1]"));
    CHECK(hp_bad("a]b"));
    CHECK(hp_bad("a[b:465"));
    CHECK(hp_bad("ho st:465"));
    CHECK(hp_bad("host\r\n:465"));
    CHECK(hp_bad("host:465\n"));
    CHECK(hp_bad("host\t"));
    CHECK(hp_bad("h\x7f"));
    CHECK_EQ_INT(tlsmail_split_hostport(NULL, h, sizeof h, &p, 465), TLSMAIL_EINVAL);
    /* host capacity: 7 characters + NUL fit in 8 */
    CHECK_EQ_INT(tlsmail_split_hostport("abcdefg:25", h, sizeof h, &p, 465), 0);
    CHECK_STR(h, "abcdefg");
    CHECK_EQ_INT(tlsmail_split_hostport("abcdefgh:25", h, sizeof h, &p, 465), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail_split_hostport("[abcdefgh]", h, sizeof h, &p, 465), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail_split_hostport("h", h, 0, &p, 465), TLSMAIL_EINVAL);
}

TEST(is_ip_literal) {
    CHECK_EQ_INT(tlsmail__is_ip_literal("192.0.2.1"), 1);
    CHECK_EQ_INT(tlsmail__is_ip_literal("0.0.0.0"), 1);
    CHECK_EQ_INT(tlsmail__is_ip_literal("::1"), 1);
    CHECK_EQ_INT(tlsmail__is_ip_literal("2001:db8::1"), 1);
    CHECK_EQ_INT(tlsmail__is_ip_literal("fe80::1%eth0"), 1);
    CHECK_EQ_INT(tlsmail__is_ip_literal("::ffff:192.0.2.1"), 1);
    /* forms inet_aton (so getaddrinfo) also dials */
    CHECK_EQ_INT(tlsmail__is_ip_literal("127.1"), 1);
    CHECK_EQ_INT(tlsmail__is_ip_literal("2130706433"), 1);
    CHECK_EQ_INT(tlsmail__is_ip_literal("0x7f.0.0.1"), 1);
    CHECK_EQ_INT(tlsmail__is_ip_literal("0X7F000001"), 1);
    CHECK_EQ_INT(tlsmail__is_ip_literal("smtp.example.org"), 0);
    CHECK_EQ_INT(tlsmail__is_ip_literal("localhost"), 0);
    CHECK_EQ_INT(tlsmail__is_ip_literal("1.2.3.4.5"), 0);
    CHECK_EQ_INT(tlsmail__is_ip_literal("1.2.3.4."), 0);
    CHECK_EQ_INT(tlsmail__is_ip_literal(".1.2.3"), 0);
    CHECK_EQ_INT(tlsmail__is_ip_literal("1..2"), 0);
    CHECK_EQ_INT(tlsmail__is_ip_literal("1e100.net"), 0);
    CHECK_EQ_INT(tlsmail__is_ip_literal("123.example"), 0);
    CHECK_EQ_INT(tlsmail__is_ip_literal("a1.2.3.4"), 0);
    CHECK_EQ_INT(tlsmail__is_ip_literal(""), 0);
    CHECK_EQ_INT(tlsmail__is_ip_literal(NULL), 0);
}

TEST(ieq) {
    CHECK_EQ_INT(tlsmail__ieq("EHLO", "ehlo"), 1);
    CHECK_EQ_INT(tlsmail__ieq("Auth", "AUTH"), 1);
    CHECK_EQ_INT(tlsmail__ieq("", ""), 1);
    CHECK_EQ_INT(tlsmail__ieq("abc", "abcd"), 0);
    CHECK_EQ_INT(tlsmail__ieq("abcd", "abc"), 0);
    CHECK_EQ_INT(tlsmail__ieq("a@b", "a`b"), 0);  /* '@'/'`' differ by 0x20 too */
    CHECK_EQ_INT(tlsmail__ieq("[", "{"), 0);
    CHECK_EQ_INT(tlsmail__ieq("\xc4", "\xe4"), 0);  /* ASCII only: no locale folding */
    CHECK_EQ_INT(tlsmail__ieq("x", NULL), 0);
}

int main(int argc, char **argv) {
    runner_args(argc, argv);
    RUN(reply_single_line);
    RUN(reply_multi_line);
    RUN(reply_bare_lf);
    RUN(reply_bad_lines);
    RUN(reply_used_and_reset);
    RUN(reply_line_length);
    RUN(reply_endless_line);
    RUN(reply_line_count);
    RUN(ext_gmail);
    RUN(ext_postfix);
    RUN(ext_auth_forms);
    RUN(ext_params_and_junk);
    RUN(ext_overflow);
    RUN(b64_rfc4648_vectors);
    RUN(b64_encode_capacity);
    RUN(b64_decode_bad);
    RUN(b64_round_trip);
    RUN(plain_rfc4616);
    RUN(plain_invalid);
    RUN(wipe);
    RUN(dot_line_ends);
    RUN(dot_stuffing);
    RUN(dot_line_length);
    RUN(dot_small_buffers);
    RUN(dot_chunking_invariance);
    RUN(dot_chunking_eline);
    RUN(dot_per_call_reference);
    RUN(check_mailbox);
    RUN(tls_offer);
    RUN(check_address_public);
    RUN(check_token);
    RUN(split_hostport);
    RUN(is_ip_literal);
    RUN(ieq);
    return runner_finish();
}
