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
#include "../lib/dot_ref.h"
#include "../lib/scan_ref.h"
#include "../lib/err_name.h"

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
                              TLSMAIL__EXT_SMTPUTF8 | TLSMAIL__EXT_CHUNKING);
    CHECK_EQ_INT(e.auth, AUTHBIT(PLAIN) | AUTHBIT(LOGIN) | AUTHBIT(XOAUTH2) | AUTHBIT(OAUTHBEARER));
    CHECK_EQ_INT(e.size_limit, 35882577);
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
                              TLSMAIL__EXT_8BITMIME | TLSMAIL__EXT_SMTPUTF8 | TLSMAIL__EXT_DSN |
                              TLSMAIL__EXT_CHUNKING);
    CHECK_EQ_INT(e.size_limit, 10240000);
    CHECK_EQ_INT(e.auth, AUTHBIT(PLAIN) | AUTHBIT(LOGIN));
    CHECK_STR(tlsmail__ext_find(&e, "auth"), "PLAIN LOGIN");
    CHECK_STR(tlsmail__ext_find(&e, "dsn"), "");
    CHECK_STR(tlsmail__ext_find(&e, "STARTTLS"), "");
    CHECK(tlsmail__ext_find(&e, "AUTH=PLAIN") == NULL);
}

TEST(ext_auth_forms) {
    tlsmail__ext e;
    /* old "AUTH=" form alone: an AUTH offer, kept as the AUTH entry (what
       the server offers must be nameable), the first one only */
    tlsmail__ext_init(&e);
    tlsmail__ext_line(&e, "AUTH=LOGIN", 10);
    CHECK_EQ_INT(e.flags, TLSMAIL__EXT_AUTH);
    CHECK_EQ_INT(e.auth, AUTHBIT(LOGIN));
    CHECK_STR(tlsmail__ext_find(&e, "AUTH"), "LOGIN");
    tlsmail__ext_line(&e, "auth=plain", 10);
    CHECK_EQ_INT(e.auth, AUTHBIT(PLAIN) | AUTHBIT(LOGIN));
    CHECK_STR(tlsmail__ext_find(&e, "AUTH"), "LOGIN");
    CHECK(tlsmail__ext_find(&e, "AUTH=LOGIN") == NULL);
    /* Postfix's broken_sasl_auth_clients: the proper line first, then AUTH= */
    tlsmail__ext_init(&e);
    tlsmail__ext_line(&e, "AUTH PLAIN LOGIN", 16);
    tlsmail__ext_line(&e, "AUTH=PLAIN LOGIN", 16);
    CHECK_STR(tlsmail__ext_find(&e, "AUTH"), "PLAIN LOGIN");
    CHECK_EQ_INT(e.len, sizeof "AUTH PLAIN LOGIN");
    /* AUTH= first (old Exchange): kept; the proper line is kept as well */
    tlsmail__ext_init(&e);
    tlsmail__ext_line(&e, "AUTH=  LOGIN", 12);
    tlsmail__ext_line(&e, "AUTH LOGIN NTLM", 15);
    CHECK_STR(tlsmail__ext_find(&e, "AUTH"), "LOGIN");
    CHECK_EQ_INT(e.auth, AUTHBIT(LOGIN));
    /* the OAuth mechanisms and EXTERNAL, whole words only */
    tlsmail__ext_init(&e);
    tlsmail__ext_line(&e, "AUTH XOAUTH2 OAUTHBEARER EXTERNAL XOAUTH", 40);
    CHECK_EQ_INT(e.auth, AUTHBIT(XOAUTH2) | AUTHBIT(OAUTHBEARER) | AUTHBIT(EXTERNAL));
    tlsmail__ext_init(&e);
    tlsmail__ext_line(&e, "AUTH=xoauth2", 12);
    CHECK_EQ_INT(e.auth, AUTHBIT(XOAUTH2));
    tlsmail__ext_init(&e);
    tlsmail__ext_line(&e, "AUTH XOAUTH2X OAUTHBEARE EXTERNAL-X", 35);
    CHECK_EQ_INT(e.auth, 0);

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

/* RFC 1870 3: "SIZE" [SP max-size]; none or 0: no fixed limit. */
TEST(ext_size) {
    tlsmail__ext e;
#define SIZE_OF(line) (tlsmail__ext_init(&e), tlsmail__ext_line(&e, line, sizeof(line) - 1), e.size_limit)
    CHECK_EQ_INT(SIZE_OF("SIZE 15000000"), 15000000);
    CHECK(e.flags & TLSMAIL__EXT_SIZE);
    CHECK_EQ_INT(SIZE_OF("SIZE"), 0);
    CHECK(e.flags & TLSMAIL__EXT_SIZE);
    CHECK_EQ_INT(SIZE_OF("SIZE 0"), 0);
    CHECK_EQ_INT(SIZE_OF("size   1024"), 1024);
    CHECK_EQ_INT(SIZE_OF("SIZE 12x"), 0);
    CHECK_EQ_INT(SIZE_OF("SIZE -1"), 0);
    CHECK_EQ_INT(SIZE_OF("SIZE 10 20"), 10);
    CHECK_EQ_INT(SIZE_OF("SIZE 99999999999999999999999999"), 0);   /* past size_t: no limit */
    CHECK_EQ_INT(SIZE_OF("SIZEX 100"), 0);
    CHECK_EQ_INT(e.flags, 0);
#undef SIZE_OF
    /* the first SIZE line counts, as tlsmail_extension's lookup */
    tlsmail__ext_init(&e);
    tlsmail__ext_line(&e, "SIZE 100", 8);
    tlsmail__ext_line(&e, "SIZE 200", 8);
    CHECK_EQ_INT(e.size_limit, 100);
    /* kept when the text is full */
    {
        char line[TLSMAIL_EXT_TEXT + 8];
        memset(line, 'x', sizeof line);
        memcpy(line, "X-FILL ", 7);
        tlsmail__ext_init(&e);
        tlsmail__ext_line(&e, line, TLSMAIL_EXT_TEXT - 1);
        tlsmail__ext_line(&e, "SIZE 4096", 9);
        CHECK(tlsmail__ext_find(&e, "SIZE") == NULL);
        CHECK_EQ_INT(e.size_limit, 4096);
    }
    /* DSN and CHUNKING are known flags */
    tlsmail__ext_init(&e);
    tlsmail__ext_line(&e, "DSN", 3);
    tlsmail__ext_line(&e, "chunking", 8);
    CHECK_EQ_INT(e.flags, TLSMAIL__EXT_DSN | TLSMAIL__EXT_CHUNKING);
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

/* ---- SASL responses: PLAIN, XOAUTH2, OAUTHBEARER, base64 on the fly ---------- */

typedef struct {
    char buf[16384];
    size_t n;
    size_t calls, longest;
    int fail_at;  /* nonzero: the call of that number fails with TLSMAIL_EIO */
} sink;

static int sink_emit(void *ctx, const char *s, size_t n) {
    sink *k = (sink *)ctx;
    k->calls++;
    if (k->fail_at && (int)k->calls == k->fail_at) return TLSMAIL_EIO;
    if (n > k->longest) k->longest = n;
    if (k->n + n < sizeof k->buf) memcpy(k->buf + k->n, s, n);
    k->n += n;
    k->buf[k->n < sizeof k->buf ? k->n : sizeof k->buf - 1] = '\0';
    return 0;
}

/* The base64 the parts stream out, and its length as announced. */
static const char *parts_b64(const tlsmail__part *pt, size_t np, sink *k) {
    memset(k, 0, sizeof *k);
    CHECK_EQ_INT(tlsmail__b64_parts(pt, np, sink_emit, k), 0);
    CHECK_EQ_INT(k->n, tlsmail__b64_len(tlsmail__parts_len(pt, np)));
    CHECK(k->longest <= 64);
    return k->buf;
}

TEST(plain_rfc4616) {
    tlsmail__part pt[5];
    sink k;
    unsigned char dec[128];
    /* RFC 4616 4 examples */
    CHECK_STR(parts_b64(pt, tlsmail__plain_parts(pt, "", "tim", "tanstaaftanstaaf"), &k),
              "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    CHECK_STR(parts_b64(pt, tlsmail__plain_parts(pt, NULL, "tim", "tanstaaftanstaaf"), &k),
              "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    CHECK_STR(parts_b64(pt, tlsmail__plain_parts(pt, "Ursel", "Kurt", "xipj3plmq"), &k),
              "VXJzZWwAS3VydAB4aXBqM3BsbXE=");
    CHECK_EQ_INT(tlsmail__b64_decode(dec, sizeof dec, k.buf, k.n), 20);
    CHECK_MEM(dec, 20, "Ursel\0Kurt\0xipj3plmq", 20);
}

/* The credentials' checks, before anything is sent. */
TEST(auth_check_fields) {
    char f255[256], f256[257];
    tlsmail_auth a;
    memset(f255, 'u', 255);
    f255[255] = '\0';
    memset(f256, 'u', 256);
    f256[256] = '\0';
#define AUTH_RC(expr) (a = (expr), tlsmail__check_auth(&a, "mx.example.org"))
    CHECK_EQ_INT(AUTH_RC(tlsmail_plain_auth("", "u", "p", "mx.example.org")), 0);
    CHECK_EQ_INT(AUTH_RC(tlsmail_plain_auth("", NULL, "pw", "mx.example.org")), TLSMAIL_EINVAL);
    CHECK_EQ_INT(AUTH_RC(tlsmail_plain_auth("", "", "pw", "mx.example.org")), TLSMAIL_EINVAL);
    CHECK_EQ_INT(AUTH_RC(tlsmail_plain_auth("", "u", NULL, "mx.example.org")), TLSMAIL_EINVAL);
    CHECK_EQ_INT(AUTH_RC(tlsmail_plain_auth("", "u", "", "mx.example.org")), TLSMAIL_EINVAL);
    CHECK_EQ_INT(AUTH_RC(tlsmail_plain_auth(f256, "u", "p", "mx.example.org")), TLSMAIL_EINVAL);
    CHECK_EQ_INT(AUTH_RC(tlsmail_plain_auth("", f256, "p", "mx.example.org")), TLSMAIL_EINVAL);
    CHECK_EQ_INT(AUTH_RC(tlsmail_plain_auth("", "u", f256, "mx.example.org")), TLSMAIL_EINVAL);
    CHECK_EQ_INT(AUTH_RC(tlsmail_plain_auth(f255, f255, f255, "mx.example.org")), 0);
    CHECK_EQ_INT(AUTH_RC(tlsmail_plain_auth("", "u", "p", "other.example.org")), TLSMAIL_EAUTHHOST);
    CHECK_EQ_INT(AUTH_RC(tlsmail_plain_auth("", "u", "p", "mx.example.org:465")), 0);
    CHECK_EQ_INT(AUTH_RC(tlsmail_plain_auth("", "u", "p", NULL)), TLSMAIL_EINVAL);
    CHECK_EQ_INT(AUTH_RC(tlsmail_login_auth("u", "p", "MX.example.org.")), 0);
    /* OAuth: a token, printable and without spaces; a user without controls */
    CHECK_EQ_INT(AUTH_RC(tlsmail_xoauth2_auth("u@example.org", "ya29.a-b_c~d+e/f=", "mx.example.org")), 0);
    CHECK_EQ_INT(AUTH_RC(tlsmail_oauthbearer_auth("u@example.org", "t", "mx.example.org")), 0);
    CHECK_EQ_INT(AUTH_RC(tlsmail_xoauth2_auth("u@example.org", NULL, "mx.example.org")), TLSMAIL_EINVAL);
    CHECK_EQ_INT(AUTH_RC(tlsmail_xoauth2_auth("u@example.org", "", "mx.example.org")), TLSMAIL_EINVAL);
    CHECK_EQ_INT(AUTH_RC(tlsmail_xoauth2_auth("u@example.org", "a b", "mx.example.org")), TLSMAIL_EINVAL);
    CHECK_EQ_INT(AUTH_RC(tlsmail_xoauth2_auth("u@example.org", "a\001b", "mx.example.org")), TLSMAIL_EINVAL);
    CHECK_EQ_INT(AUTH_RC(tlsmail_xoauth2_auth("u\001x", "t", "mx.example.org")), TLSMAIL_EINVAL);
    CHECK_EQ_INT(AUTH_RC(tlsmail_xoauth2_auth("", "t", "mx.example.org")), TLSMAIL_EINVAL);
    CHECK_EQ_INT(AUTH_RC(tlsmail_oauthbearer_auth("u", "t", "evil.example.org")), TLSMAIL_EAUTHHOST);
    /* AUTO: a password, a token or both */
    a = tlsmail_auto_auth("u", NULL, "mx.example.org");
    CHECK_EQ_INT(tlsmail__check_auth(&a, "mx.example.org"), TLSMAIL_EINVAL);
    a.token = "tok";
    CHECK_EQ_INT(tlsmail__check_auth(&a, "mx.example.org"), 0);
    a.secret = "pw";
    CHECK_EQ_INT(tlsmail__check_auth(&a, "mx.example.org"), 0);
    a.token = "bad token";
    CHECK_EQ_INT(tlsmail__check_auth(&a, "mx.example.org"), TLSMAIL_EINVAL);
    /* EXTERNAL: only an identity of at most 255 octets */
    CHECK_EQ_INT(AUTH_RC(tlsmail_external_auth(NULL, "mx.example.org")), 0);
    CHECK_EQ_INT(AUTH_RC(tlsmail_external_auth("", "mx.example.org")), 0);
    CHECK_EQ_INT(AUTH_RC(tlsmail_external_auth(f255, "mx.example.org")), 0);
    CHECK_EQ_INT(AUTH_RC(tlsmail_external_auth(f256, "mx.example.org")), TLSMAIL_EINVAL);
    a = tlsmail_plain_auth("", "u", "p", "mx.example.org");
    a.mechanism = TLSMAIL_AUTH_EXTERNAL + 1;
    CHECK_EQ_INT(tlsmail__check_auth(&a, "mx.example.org"), TLSMAIL_EINVAL);
    a.mechanism = TLSMAIL_AUTH_NONE;
    CHECK_EQ_INT(tlsmail__check_auth(&a, "mx.example.org"), TLSMAIL_EINVAL);
#undef AUTH_RC
}

/* The constructors fill every field, the new token included. */
TEST(auth_constructors) {
    tlsmail_auth a = tlsmail_xoauth2_auth("u", "t", "h");
    CHECK_EQ_INT(a.mechanism, TLSMAIL_AUTH_XOAUTH2);
    CHECK(a.secret == NULL && a.identity == NULL);
    CHECK_STR(a.token, "t");
    a = tlsmail_oauthbearer_auth("u", "t", "h");
    CHECK_EQ_INT(a.mechanism, TLSMAIL_AUTH_OAUTHBEARER);
    a = tlsmail_plain_auth("i", "u", "p", "h");
    CHECK(a.token == NULL);
    CHECK_STR(a.identity, "i");
    a = tlsmail_external_auth("id", "h");
    CHECK_EQ_INT(a.mechanism, TLSMAIL_AUTH_EXTERNAL);
    CHECK(a.username == NULL && a.secret == NULL && a.token == NULL);
    CHECK_STR(a.identity, "id");
}

/* Google's and RFC 7628's published examples. */
TEST(oauth_payloads) {
    tlsmail__part pt[12];
    sink k;
    size_t np = tlsmail__oauth_parts(pt, TLSMAIL_AUTH_XOAUTH2, "someuser@example.com",
                                     "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg", "h", "1");
    CHECK_STR(parts_b64(pt, np, &k),
              "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNS"
              "bGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==");
    /* RFC 7628 4.1 */
    np = tlsmail__oauth_parts(pt, TLSMAIL_AUTH_OAUTHBEARER, "user@example.com",
                              "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", "server.example.com",
                              "143");
    CHECK_STR(parts_b64(pt, np, &k),
              "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9"
              "QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB");
    /* RFC 5801 4: ',' and '=' in the saslname are escaped, not in the token */
    np = tlsmail__oauth_parts(pt, TLSMAIL_AUTH_OAUTHBEARER, "a,b=c", "t=,", "h", "465");
    {
        unsigned char dec[128];
        const char *b64 = parts_b64(pt, np, &k);
        long n = tlsmail__b64_decode(dec, sizeof dec, b64, k.n);
        static const char want[] = "n,a=a=2Cb=3Dc,\001host=h\001port=465\001auth=Bearer t=,\001\001";
        CHECK_MEM(dec, (size_t)n, want, sizeof want - 1);
        CHECK_EQ_INT(tlsmail__parts_len(pt, np), sizeof want - 1);
    }
}

/* The streaming encoder against the one-shot one, for every length that
   crosses its 64-character pieces, split into parts anywhere. */
TEST(b64_parts_streaming) {
    unsigned char in[400];
    char want[600];
    tlsmail__part pt[3];
    sink k;
    size_t n, cut;
    for (n = 0; n < sizeof in; n++) in[n] = (unsigned char)(n * 131 + 7);
    for (n = 0; n <= 200; n++) {
        for (cut = 0; cut <= n; cut += 17) {
            pt[0].p = (const char *)in; pt[0].n = cut; pt[0].gs2 = 0;
            pt[1].p = (const char *)in + cut; pt[1].n = n - cut; pt[1].gs2 = 0;
            pt[2].p = ""; pt[2].n = 0; pt[2].gs2 = 0;
            (void)tlsmail__b64_encode(want, sizeof want, in, n);
            CHECK_STR(parts_b64(pt, 3, &k), n ? want : "");
            CHECK_EQ_INT(k.calls, (tlsmail__b64_len(n) + 63) / 64);
        }
    }
    /* the emitter's error stops it and comes back */
    pt[0].p = (const char *)in; pt[0].n = sizeof in; pt[0].gs2 = 0;
    memset(&k, 0, sizeof k);
    k.fail_at = 2;
    CHECK_EQ_INT(tlsmail__b64_parts(pt, 1, sink_emit, &k), TLSMAIL_EIO);
    CHECK_EQ_INT(k.calls, 2);
    CHECK_EQ_INT(k.n, 64);
}

/* RFC 7628 3.2.2 error challenges: decoded when they are base64 JSON. */
TEST(oauth_challenge) {
    char out[512], st[32];
    static const char google[] =
        "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xl"
        "LmNvbS8ifQ==";
    static const char rfc[] =
        "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwib3BlbmlkLWNvbmZp"
        "Z3VyYXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25maWd1cmF0aW9u"
        "In0=";
    CHECK_EQ_INT(tlsmail__oauth_challenge(out, sizeof out, google, sizeof google - 1), 70);
    CHECK_STR(out, "{\"status\":\"401\",\"schemes\":\"bearer\",\"scope\":\"https://mail.google.com/\"}");
    tlsmail__oauth_status(out, strlen(out), st, sizeof st);
    CHECK_STR(st, "401");
    CHECK(tlsmail__oauth_challenge(out, sizeof out, rfc, sizeof rfc - 1) > 0);
    tlsmail__oauth_status(out, strlen(out), st, sizeof st);
    CHECK_STR(st, "invalid_token");
    /* too small an output, not base64, non-canonical, empty, controls */
    CHECK_EQ_INT(tlsmail__oauth_challenge(out, 70, google, sizeof google - 1), -1);
    CHECK_STR(out, "");
    CHECK_EQ_INT(tlsmail__oauth_challenge(out, 71, google, sizeof google - 1), 70);
    CHECK_EQ_INT(tlsmail__oauth_challenge(out, sizeof out, "not base64!", 11), -1);
    CHECK_EQ_INT(tlsmail__oauth_challenge(out, sizeof out, "Zm9=", 4), -1);
    CHECK_EQ_INT(tlsmail__oauth_challenge(out, sizeof out, "", 0), -1);
    CHECK_EQ_INT(tlsmail__oauth_challenge(out, sizeof out, "ewAb", 4), -1);   /* "{\0\x1b" */
    CHECK_EQ_INT(tlsmail__oauth_challenge(out, sizeof out, "ewobfQ==", 8), -1); /* "{\n\x1b}" */
    CHECK_EQ_INT(tlsmail__oauth_challenge(out, sizeof out, "ewoJfQ==", 8), 4); /* "{\n\t}" */
    CHECK_STR(out, "{  }");
    CHECK_EQ_INT(tlsmail__oauth_challenge(out, 0, google, sizeof google - 1), -1);
}

TEST(oauth_status) {
    char st[8];
#define STATUS(json) (tlsmail__oauth_status(json, sizeof(json) - 1, st, sizeof st), st)
    CHECK_STR(STATUS("{\"status\":\"401\"}"), "401");
    CHECK_STR(STATUS("{\"status\" : 400, \"scope\":\"x\"}"), "400");
    CHECK_STR(STATUS("{\"scope\":\"s\",\"status\":\"bad\"}"), "bad");
    CHECK_STR(STATUS("{\"Status\":\"401\"}"), "");            /* keys are case-sensitive */
    CHECK_STR(STATUS("{\"status\":\"40\\\"1\"}"), "");        /* escapes: not taken */
    CHECK_STR(STATUS("{\"status\":\"12345678\"}"), "");       /* does not fit */
    CHECK_STR(STATUS("{\"status\":\"1234567\"}"), "1234567");
    CHECK_STR(STATUS("{\"status\":\"401"), "");               /* cut short */
    CHECK_STR(STATUS("{\"status\""), "");
    CHECK_STR(STATUS("{\"status\":}"), "");
    CHECK_STR(STATUS("{\"statusx\":\"1\",\"status\":\"2\"}"), "2");
    CHECK_STR(STATUS(""), "");
#undef STATUS
}

/* ---- the queue id in the 250 after the message -------------------------------- */

TEST(queue_id_forms) {
    char id[TLSMAIL_QUEUE_ID];
#define QID(t) (tlsmail__queue_id(t, sizeof(t) - 1, id, sizeof id), id)
    CHECK_STR(QID("2.0.0 Ok: queued as 4Fh2x1XYZ"), "4Fh2x1XYZ");               /* Postfix */
    CHECK_STR(QID("Ok: queued as 4Fh2x1XYZ"), "4Fh2x1XYZ");
    CHECK_STR(QID("2.0.0 OK: queued as 5Zh8yXqZT0eF-1a2b3c"), "5Zh8yXqZT0eF-1a2b3c");
    CHECK_STR(QID("2.0.0 OK: stored as 12"), "12");                          /* nodemailer suite */
    CHECK_STR(QID("OK id=1tXYZa-000abc-Cd"), "1tXYZa-000abc-Cd");              /* Exim */
    CHECK_STR(QID("2.0.0 OK  1701234567 e12sm1234567wrx.45 - gsmtp"), "e12sm1234567wrx.45"); /* Gmail */
    CHECK_STR(QID("2.0.0 OK <DB9PR01MB1234A1B2C3D4E5F6@DB9PR01MB1234.eurprd01.prod.exchangelabs.com>"
                  " [Hostname=DB9PR01MB1234.eurprd01.prod.exchangelabs.com]"),
              "DB9PR01MB1234A1B2C3D4E5F6@DB9PR01MB1234.eurprd01.prod.exchangelabs.com"); /* M365 */
    CHECK_STR(QID("2.6.0 <a1@mail.example.org> [InternalId=123, Hostname=EX1] Queued mail for delivery"),
              "a1@mail.example.org");                                          /* Exchange */
    CHECK_STR(QID("Message Queued (4E1F1B2C-ABCD.1)"), "4E1F1B2C-ABCD.1");     /* Haraka */
    CHECK_STR(QID("2.0.0 4B1Hx0Ab012345 Message accepted for delivery"), "4B1Hx0Ab012345"); /* Sendmail */
    CHECK_STR(QID("Ok 0100018c7c1e2f3a-1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901-000000"),
              "0100018c7c1e2f3a-1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901-000000"); /* Amazon SES */
    CHECK_STR(QID("2.0.0 Ok: queued as ABC123.\nsecond line"), "ABC123");      /* first line; '.' */
}

TEST(queue_id_none) {
    char id[16];
    CHECK_EQ_INT(tlsmail__queue_id("2.0.0 Ok", 8, id, sizeof id), 0);
    CHECK_STR(id, "");
    CHECK_STR(QID("OK"), "");
    CHECK_STR(QID("OK: message queued"), "");                 /* smtp-server's default */
    CHECK_STR(QID("Ok: queued as "), "");
    CHECK_STR(QID("Ok: queued as 0123456789ABCDEF"), "");     /* 16 octets: no room for the NUL */
    CHECK_STR(QID("Ok: queued as 0123456789ABCDE"), "0123456789ABCDE");
    CHECK_STR(QID("2.0.0 ok 1701234567 qp 12345"), "");       /* qmail: nothing we can tell */
    CHECK_STR(QID("<unterminated"), "");
    CHECK_STR(QID("Ok <a b>"), "");
    CHECK_STR(QID("bid=x"), "");                               /* "id=" inside a word */
    CHECK_STR(QID("- gsmtp"), "");
    CHECK_STR(QID(""), "");
    CHECK_EQ_INT(tlsmail__queue_id("Ok: queued as X", 15, id, 0), 0);
#undef QID
}

/* ---- ESMTP parameters ------------------------------------------------------------ */

TEST(xtext) {
    char out[64];
    CHECK_EQ_INT(tlsmail__xtext(out, sizeof out, "a+b=c d", 7, 0), 13);
    CHECK_STR(out, "a+2Bb+3Dc+20d");
    CHECK_EQ_INT(tlsmail__xtext(out, sizeof out, "rcpt@example.org", 16, 0), 16);
    CHECK_STR(out, "rcpt@example.org");
    CHECK_EQ_INT(tlsmail__xtext(out, sizeof out, "\x01~\x7f\xc3\xa9", 5, 0), 13);
    CHECK_STR(out, "+01~+7F+C3+A9");
    /* RFC 6533 utf-8-addr-xtext */
    CHECK_EQ_INT(tlsmail__xtext(out, sizeof out, "j\xc3\xbcrgen+x=y@ex", 14, 1), 24);
    CHECK_STR(out, "j\xc3\xbcrgen\\x{2B}x\\x{3D}y@ex");
    /* exact capacity, one short */
    CHECK_EQ_INT(tlsmail__xtext(out, 4, "a+", 2, 0), -1);
    CHECK_EQ_INT(tlsmail__xtext(out, 5, "a+", 2, 0), 4);
    CHECK_EQ_INT(tlsmail__xtext(out, 1, "", 0, 0), 0);
    CHECK_EQ_INT(tlsmail__xtext(out, 0, "", 0, 0), -1);
}

/* The one call's line check, made before anything is sent. */
static int long_line(const void *msg, size_t n) {
    tlsmail__msginfo mi;
    tlsmail__msg_scan(msg, n, &mi);
    return mi.longline ? TLSMAIL_ELINE : 0;
}

/* RFC 1870's size, and what the message needs. */
TEST(message_size_and_8bit) {
    tlsmail__msginfo mi;
#define SCAN(lit) (tlsmail__msg_scan(lit, sizeof(lit) - 1, &mi), mi.size)
    CHECK_EQ_INT(SCAN(""), 0);
    CHECK_EQ_INT(SCAN("a\r\n"), 3);
    CHECK_EQ_INT(SCAN("a"), 3);                     /* the CRLF a last line gets */
    CHECK_EQ_INT(SCAN("a\n"), 3);
    CHECK_EQ_INT(SCAN("a\r"), 3);
    CHECK_EQ_INT(SCAN("a\r\r\n"), 5);               /* CR, then CRLF */
    CHECK_EQ_INT(SCAN("a\n\r"), 5);                 /* LF, then CR */
    CHECK_EQ_INT(SCAN(".\r\n..\r\n"), 7);           /* no dot-stuffing counted */
    CHECK_EQ_INT(SCAN("\r\n\r\n"), 4);
    CHECK_EQ_INT(mi.body8 + mi.head8, 0);
    CHECK_EQ_INT(tlsmail_message_size("Subject: x\nbody", 15), 18);
    CHECK_EQ_INT(tlsmail_message_size(NULL, 5), 0);
    /* 8-bit octets: the body alone, or the header section too */
    (void)SCAN("Subject: x\r\n\r\ncaf\xc3\xa9\r\n");
    CHECK(mi.body8 && !mi.head8);
    (void)SCAN("Subject: caf\xc3\xa9\r\n\r\nx\r\n");
    CHECK(mi.body8 && mi.head8);
    (void)SCAN("Subject: x\n\nb\xff");
    CHECK(mi.body8 && !mi.head8);
    (void)SCAN("\r\nSubject: caf\xc3\xa9\r\n");    /* an empty first line: no header at all */
    CHECK(mi.body8 && !mi.head8);
    (void)SCAN("A: b\rC: \xc3\xa9\r\rbody");       /* bare CRs end lines too */
    CHECK(mi.head8);
    CHECK_EQ_INT(mi.size, 4 + 2 + 5 + 2 + 2 + 4 + 2);
#undef SCAN
}

/* A client with the given EHLO lines, as if hello had run. */
static void fake_client(tlsmail_client *c, const char *const *lines, size_t n) {
    size_t i;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    tlsmail__ext_init(&c->ext);
    for (i = 0; i < n; i++) tlsmail__ext_line(&c->ext, lines[i], strlen(lines[i]));
}

static tlsmail_client fake;

TEST(mail_params) {
    static const char *const full[] = { "SIZE 1000", "8BITMIME", "SMTPUTF8", "DSN", "PIPELINING" };
    static const char *const bare[] = { "PIPELINING" };
    tlsmail_mail_opts o;
    tlsmail__mailplan mp;
    memset(&o, 0, sizeof o);
    fake_client(&fake, full, 5);
    /* no options: BODY=8BITMIME when offered, nothing else */
    CHECK_EQ_INT(tlsmail__plan_mail(&fake, "a@b.example", NULL, &mp), 0);
    CHECK_STR(mp.tail, "> BODY=8BITMIME");
    CHECK(mp.body8 && !mp.utf8);
    o.body = TLSMAIL_BODY_7BIT;
    o.size = 1000;
    CHECK_EQ_INT(tlsmail__plan_mail(&fake, "a@b.example", &o, &mp), 0);
    CHECK_STR(mp.tail, "> SIZE=1000");
    CHECK(!mp.body8);
    o.size = 1001;
    CHECK_EQ_INT(tlsmail__plan_mail(&fake, "a@b.example", &o, &mp), TLSMAIL_ETOOBIG);
    o.size = 12;
    o.body = TLSMAIL_BODY_8BITMIME;
    o.smtputf8 = 1;
    o.ret = TLSMAIL_RET_HDRS;
    o.envid = "QQ+314=x y";
    CHECK_EQ_INT(tlsmail__plan_mail(&fake, "a@b.example", &o, &mp), 0);
    CHECK_STR(mp.tail, "> SIZE=12 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ+2B314+3Dx+20y");
    CHECK(mp.body8 && mp.utf8);
    /* a sender that is not ASCII needs SMTPUTF8 by itself */
    memset(&o, 0, sizeof o);
    o.body = TLSMAIL_BODY_7BIT;
    CHECK_EQ_INT(tlsmail__plan_mail(&fake, "j\xc3\xbcrgen@b.example", &o, &mp), 0);
    CHECK_STR(mp.tail, "> SMTPUTF8");
    /* a server with none of them: parameters left out, local refusals */
    fake_client(&fake, bare, 1);
    o.size = 99999999;
    o.ret = TLSMAIL_RET_FULL;
    o.envid = "id";
    CHECK_EQ_INT(tlsmail__plan_mail(&fake, "a@b.example", &o, &mp), 0);
    CHECK_STR(mp.tail, ">");
    CHECK_EQ_INT(tlsmail__plan_mail(&fake, "a@b.example", NULL, &mp), 0);
    CHECK_STR(mp.tail, ">");
    CHECK(!mp.body8);
    o.body = TLSMAIL_BODY_8BITMIME;
    CHECK_EQ_INT(tlsmail__plan_mail(&fake, "a@b.example", &o, &mp), TLSMAIL_ENOEXT);
    CHECK_EQ_INT(fake.missing_ext, TLSMAIL__EXT_8BITMIME);
    o.body = TLSMAIL_BODY_AUTO;
    o.smtputf8 = 1;
    CHECK_EQ_INT(tlsmail__plan_mail(&fake, "a@b.example", &o, &mp), TLSMAIL_ENOEXT);
    CHECK_EQ_INT(fake.missing_ext, TLSMAIL__EXT_SMTPUTF8);
    /* bad options, whatever the server offers */
    memset(&o, 0, sizeof o);
    o.envid = "";
    CHECK_EQ_INT(tlsmail__plan_mail(&fake, "a@b.example", &o, &mp), TLSMAIL_EINVAL);
    o.envid = "tab\there";
    CHECK_EQ_INT(tlsmail__plan_mail(&fake, "a@b.example", &o, &mp), TLSMAIL_EINVAL);
    o.envid = "++++++++++++++++++++++++++++++++++"; /* 34: 102 encoded */
    CHECK_EQ_INT(tlsmail__plan_mail(&fake, "a@b.example", &o, &mp), TLSMAIL_EINVAL);
    o.envid = "+++++++++++++++++++++++++++++++++";  /* 33: 99 encoded */
    CHECK_EQ_INT(tlsmail__plan_mail(&fake, "a@b.example", &o, &mp), 0);
    o.envid = NULL;
    o.ret = 3;
    CHECK_EQ_INT(tlsmail__plan_mail(&fake, "a@b.example", &o, &mp), TLSMAIL_EINVAL);
    o.ret = 0;
    o.body = 3;
    CHECK_EQ_INT(tlsmail__plan_mail(&fake, "a@b.example", &o, &mp), TLSMAIL_EINVAL);
}

TEST(rcpt_params) {
    static const char *const dsn[] = { "DSN", "SMTPUTF8" };
    static const char *const none[] = { "SMTPUTF8" };
    tlsmail_rcpt_opts o;
    char tail[TLSMAIL__RCPT_TAIL];
    fake_client(&fake, dsn, 2);
    memset(&o, 0, sizeof o);
    CHECK_EQ_INT(tlsmail__rcpt_tail(&fake, NULL, 0, tail, sizeof tail), 0);
    CHECK_STR(tail, ">");
    CHECK_EQ_INT(tlsmail__rcpt_tail(&fake, &o, 0, tail, sizeof tail), 0);
    CHECK_STR(tail, ">");
    o.notify = TLSMAIL_NOTIFY_SUCCESS | TLSMAIL_NOTIFY_FAILURE | TLSMAIL_NOTIFY_DELAY;
    o.orcpt = "one+x@example.org";
    CHECK_EQ_INT(tlsmail__rcpt_tail(&fake, &o, 0, tail, sizeof tail), 0);
    CHECK_STR(tail, "> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;one+2Bx@example.org");
    o.notify = TLSMAIL_NOTIFY_NEVER;
    o.orcpt = "j\xc3\xbcrgen@example.org";
    CHECK_EQ_INT(tlsmail__rcpt_tail(&fake, &o, 0, tail, sizeof tail), TLSMAIL_ENOEXT);
    CHECK_EQ_INT(tlsmail__rcpt_tail(&fake, &o, 1, tail, sizeof tail), 0);
    CHECK_STR(tail, "> NOTIFY=NEVER ORCPT=utf-8;j\xc3\xbcrgen@example.org");
    /* checked whatever the server offers */
    o.notify = TLSMAIL_NOTIFY_NEVER | TLSMAIL_NOTIFY_FAILURE;
    CHECK_EQ_INT(tlsmail__check_rcpt_opts(&o), TLSMAIL_EINVAL);
    o.notify = 16;
    CHECK_EQ_INT(tlsmail__check_rcpt_opts(&o), TLSMAIL_EINVAL);
    o.notify = TLSMAIL_NOTIFY_FAILURE;
    o.orcpt = "a@b>c";
    CHECK_EQ_INT(tlsmail__check_rcpt_opts(&o), TLSMAIL_EINVAL);
    o.orcpt = "a@b.example";
    CHECK_EQ_INT(tlsmail__check_rcpt_opts(&o), 0);
    /* no DSN on the server: nothing declared */
    fake_client(&fake, none, 1);
    CHECK_EQ_INT(tlsmail__rcpt_tail(&fake, &o, 0, tail, sizeof tail), 0);
    CHECK_STR(tail, ">");
}

/* Describe names what a local refusal was about, and explains the
   enhanced status of a quoted reply. */
TEST(describe_local_and_enhanced) {
    static const char *const ehlo[] = { "AUTH LOGIN CRAM-MD5", "SIZE 100" };
    char d[400];
    fake_client(&fake, ehlo, 2);
    fake.stage = TLSMAIL_STAGE_AUTH;
    fake.auth_asked = TLSMAIL_AUTH_PLAIN;
    CHECK_STR(tlsmail_describe(&fake, TLSMAIL_ENOMECH, d, sizeof d),
              "AUTH: server offers no usable AUTH mechanism (PLAIN asked for; the server offers "
              "AUTH LOGIN CRAM-MD5)");
    fake.stage = TLSMAIL_STAGE_MAIL;
    fake.size_declared = 1870;
    fake.ext.size_limit = 100;
    CHECK(strstr(tlsmail_describe(&fake, TLSMAIL_ETOOBIG, d, sizeof d),
                 "(1870 octets; the server's SIZE limit is 100)") != NULL);
    fake.missing_ext = TLSMAIL__EXT_8BITMIME;
    CHECK_STR(tlsmail_describe(&fake, TLSMAIL_ENOEXT, d, sizeof d),
              "MAIL FROM: server lacks an SMTP extension the message needs (nothing was sent) "
              "(needs 8BITMIME)");
    fake.ext.flags |= TLSMAIL__EXT_8BITMIME; /* offered: MAIL's own omission */
    CHECK(strstr(tlsmail_describe(&fake, TLSMAIL_ENOEXT, d, sizeof d),
                 "(needs 8BITMIME: offered, but MAIL did not declare it)") != NULL);
    fake.ext.flags &= ~(unsigned)TLSMAIL__EXT_8BITMIME;
    /* ELINE: which line, only while ELINE is the result */
    fake.stage = TLSMAIL_STAGE_BODY;
    fake.eline = 1234;
    fake.err = TLSMAIL_ELINE;
    CHECK_EQ_INT((int)tlsmail_error_line(&fake), 1234);
    CHECK_STR(tlsmail_describe(&fake, TLSMAIL_ELINE, d, sizeof d),
              "message: message line longer than 998 octets (line 1234)");
    fake.err = TLSMAIL_EIO;
    CHECK_EQ_INT((int)tlsmail_error_line(&fake), 0);
    CHECK_EQ_INT((int)tlsmail_error_line(NULL), 0);
    fake.err = 0;
    fake.eline = 0;
    fake.missing_ext = TLSMAIL__EXT_SMTPUTF8;
    CHECK(strstr(tlsmail_describe(&fake, TLSMAIL_ENOEXT, d, sizeof d), "needs SMTPUTF8") != NULL);
    /* a quoted reply with its enhanced status explained */
    fake.stage = TLSMAIL_STAGE_RCPT;
    fake.code = 550;
    fake.reply_fresh = 1;
    fake.reply_tls = 1;
    strcpy(fake.text, "5.1.1 no such user here");
    strcpy(fake.enhanced, "5.1.1");
    CHECK_STR(tlsmail_describe(&fake, TLSMAIL_EPERMANENT, d, sizeof d),
              "RCPT TO: server refused (5xx); server said: 550 5.1.1 no such user here "
              "(5.1.1: bad destination mailbox address)");
    fake.code = 452;
    strcpy(fake.text, "4.2.2 mailbox full");
    strcpy(fake.enhanced, "4.2.2");
    CHECK(strstr(tlsmail_describe(&fake, TLSMAIL_ETRANSIENT, d, sizeof d),
                 "(4.2.2: mailbox full; for now)") != NULL);
    strcpy(fake.enhanced, "4.2.9");   /* a detail we don't list: its subject */
    CHECK(strstr(tlsmail_describe(&fake, TLSMAIL_ETRANSIENT, d, sizeof d), "(4.2.9: mailbox; for now)"));
    /* the OAuth error's status */
    fake.stage = TLSMAIL_STAGE_AUTH;
    fake.code = 535;
    strcpy(fake.text, "5.7.8 Username and Password not accepted");
    strcpy(fake.enhanced, "5.7.8");
    strcpy(fake.auth_status, "401");
    CHECK_STR(tlsmail_describe(&fake, TLSMAIL_EAUTH, d, sizeof d),
              "AUTH: authentication failed; server said: 535 5.7.8 Username and Password not "
              "accepted (5.7.8: authentication credentials invalid) (OAuth error status: 401)");
    /* cut to fit, always terminated */
    CHECK_EQ_INT(strlen(tlsmail_describe(&fake, TLSMAIL_EAUTH, d, 20)), 19);
    CHECK_EQ_INT(strlen(tlsmail_describe(&fake, TLSMAIL_EAUTH, d, 1)), 0);
}

/* One recipient's answer in the same words describe gives while that
   reply is the client's, so a tool can name every refusal alike. */
TEST(describe_rcpt_as_describe_would) {
    tlsmail_rcpt_result r;
    char a[400], b[400];
    fake_client(&fake, NULL, 0);
    fake.stage = TLSMAIL_STAGE_RCPT;
    fake.reply_fresh = 1;
    fake.reply_tls = 1;
    memset(&r, 0, sizeof r);
    r.code = fake.code = 550;
    strcpy(r.enhanced, "5.1.1");
    strcpy(fake.enhanced, "5.1.1");
    strcpy(r.text, "5.1.1 no such user here");
    strcpy(fake.text, "5.1.1 no such user here");
    CHECK_STR(tlsmail_describe_rcpt(&r, a, sizeof a), tlsmail_describe(&fake, TLSMAIL_EPERMANENT, b, sizeof b));
    CHECK_STR(a, "RCPT TO: server refused (5xx); server said: 550 5.1.1 no such user here "
                 "(5.1.1: bad destination mailbox address)");
    r.code = fake.code = 451;
    r.enhanced[0] = fake.enhanced[0] = 0;
    strcpy(r.text, "try later");
    strcpy(fake.text, "try later");
    CHECK_STR(tlsmail_describe_rcpt(&r, a, sizeof a), tlsmail_describe(&fake, TLSMAIL_ETRANSIENT, b, sizeof b));
    r.code = 250;
    strcpy(r.text, "ok");
    CHECK_STR(tlsmail_describe_rcpt(&r, a, sizeof a), "RCPT TO: success; server said: 250 ok");
    r.code = 0;
    CHECK(strstr(tlsmail_describe_rcpt(&r, a, sizeof a), "RCPT TO: no reply") == a);
    CHECK_EQ_INT(strlen(tlsmail_describe_rcpt(&r, a, 10)), 9);
    CHECK_STR(tlsmail_describe_rcpt(NULL, a, sizeof a), "");
}

TEST(error_class_enhanced) {
    fake_client(&fake, NULL, 0);
    fake.code = 550;
    strcpy(fake.enhanced, "5.1.1");
    CHECK_EQ_INT(tlsmail_error_class(&fake, TLSMAIL_EPERMANENT), TLSMAIL_CLASS_CONFIG);
    strcpy(fake.enhanced, "5.7.1");
    CHECK_EQ_INT(tlsmail_error_class(&fake, TLSMAIL_EPERMANENT), TLSMAIL_CLASS_CONFIG);
    fake.code = 552;
    strcpy(fake.enhanced, "5.3.4");
    CHECK_EQ_INT(tlsmail_error_class(&fake, TLSMAIL_EPERMANENT), TLSMAIL_CLASS_CONFIG);
    fake.code = 554;
    strcpy(fake.enhanced, "5.6.7");
    CHECK_EQ_INT(tlsmail_error_class(&fake, TLSMAIL_EPERMANENT), TLSMAIL_CLASS_CONFIG);
    fake.code = 552;
    strcpy(fake.enhanced, "5.2.2");
    CHECK_EQ_INT(tlsmail_error_class(&fake, TLSMAIL_EPERMANENT), TLSMAIL_CLASS_REFUSED);
    fake.enhanced[0] = '\0';
    CHECK_EQ_INT(tlsmail_error_class(&fake, TLSMAIL_EPERMANENT), TLSMAIL_CLASS_REFUSED);
    CHECK_EQ_INT(tlsmail_error_class(NULL, TLSMAIL_EPERMANENT), TLSMAIL_CLASS_REFUSED);
    fake.code = 451;
    strcpy(fake.enhanced, "4.7.1");
    CHECK_EQ_INT(tlsmail_error_class(&fake, TLSMAIL_ETRANSIENT), TLSMAIL_CLASS_RETRY);
    CHECK_EQ_INT(tlsmail_error_class(&fake, TLSMAIL_ECLIENTCERT), TLSMAIL_CLASS_CONFIG);
}

/* EPARTIAL (more than TLSMAIL_RCPT_MAX recipients, a later transaction
   failed): its own class, a number after every older one, and a describe
   that says who has it before what stopped the rest, quoting only a reply
   that did. */
TEST(partial_delivery_name_class_describe) {
    char d[600];
    CHECK_EQ_INT(TLSMAIL_EPARTIAL, -30);
    CHECK_EQ_INT(TLSMAIL_EPARTIAL, TLSMAIL__ERROR_LAST);
    CHECK_STR(tlsmail_strerror(TLSMAIL_EPARTIAL),
              "delivered to some recipients only: a retry would send it again to those");
    CHECK_STR(err_name(TLSMAIL_EPARTIAL), "EPARTIAL");
    CHECK_EQ_INT(tlsmail_error_class(NULL, TLSMAIL_EPARTIAL), TLSMAIL_CLASS_PARTIAL);
    fake_client(&fake, NULL, 0);
    fake.code = 550;                   /* a 5.1.1 refusal does not make it CONFIG */
    strcpy(fake.enhanced, "5.1.1");
    CHECK_EQ_INT(tlsmail_error_class(&fake, TLSMAIL_EPARTIAL), TLSMAIL_CLASS_PARTIAL);
    fake.stage = TLSMAIL_STAGE_RCPT;
    fake.reply_fresh = 1;
    fake.reply_tls = 1;
    strcpy(fake.text, "5.1.1 no such user here");
    fake.partial_err = TLSMAIL_EPERMANENT;
    fake.rcpt_done = 100;
    fake.rcpt_total = 150;
    CHECK_STR(tlsmail_describe(&fake, TLSMAIL_EPARTIAL, d, sizeof d),
              "delivered to 100 of 150 recipients (a retry would send it again to those); RCPT TO: "
              "server refused (5xx); server said: 550 5.1.1 no such user here (5.1.1: bad "
              "destination mailbox address)");
    /* a lost connection: no reply quoted, the last one (250 to the first
       message) did not cause it */
    fake.stage = TLSMAIL_STAGE_MAIL;
    fake.code = 250;
    strcpy(fake.text, "2.0.0 OK queued as Q1");
    strcpy(fake.enhanced, "2.0.0");
    fake.reply_fresh = 0;
    fake.partial_err = TLSMAIL_ECLOSED;
    CHECK_STR(tlsmail_describe(&fake, TLSMAIL_EPARTIAL, d, sizeof d),
              "delivered to 100 of 150 recipients (a retry would send it again to those); MAIL FROM: "
              "connection closed by server");
    CHECK_EQ_INT(strlen(tlsmail_describe(&fake, TLSMAIL_EPARTIAL, d, 30)), 29);
    CHECK_EQ_INT(strlen(tlsmail_describe(&fake, TLSMAIL_EPARTIAL, d, 1)), 0);
    /* without the counts (a caller's own client): described as any code */
    fake.partial_err = 0;
    CHECK_STR(tlsmail_describe(&fake, TLSMAIL_EPARTIAL, d, sizeof d),
              "MAIL FROM: delivered to some recipients only: a retry would send it again to those");
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
    CHECK_EQ_INT(long_line(in, n), 0);
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
    CHECK_EQ_INT(long_line(in, 999), 0);
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
    CHECK_EQ_INT(long_line(in, 1000), TLSMAIL_ELINE);
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
    CHECK_EQ_INT(long_line(in, 2000), 0);
    CHECK_EQ_INT(enc_chunked(in, 2000, 13, 5, out, sizeof out, &ol), 0);
    CHECK_EQ_INT(ol, 998 + 2 + 998 + 2 + 1 + 2 + 3);
    CHECK_EQ_INT(long_line("", 0), 0);
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
   before it, however the input is cut, and the one call's check before
   sending (tlsmail__msg_scan's longline) must agree. */
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
        CHECK_EQ_INT(long_line(in, n), refrc);
        if (refrc) elines++; else oks++;
        for (chunk = 1; chunk <= 17; chunk += 4) {
            int rc = enc_chunked(in, n, chunk, chunk + 1, enc_a, sizeof enc_a, &ol);
            CHECK_EQ_INT(rc, refrc);
            CHECK_MEM(enc_a, ol, enc_b, refl);
        }
    }
    CHECK(elines > 5 && oks > 5); /* both outcomes were exercised */
}

/* The message scan and BDAT's runs against the octet-at-a-time versions
   of tests/lib/scan_ref.h: random messages of CRLFs, bare CRs and LFs,
   8-bit octets before and after the first empty line, and lines past the
   4 KiB window in which tlsmail__next_eol searches (CR-only and LF-only
   messages too). The runs, with CRLF for each bare end and one after a
   last line without one, are the size the scan counts. */
TEST(scan_and_bdat_runs_reference) {
    static unsigned char in[20000];
    unsigned seed = 0x5ca77u;
    int k, bare_seen = 0, head8_seen = 0, body8_only = 0, long_seen = 0, short_seen = 0;
    for (k = 0; k < 600; k++) {
        size_t n = rng_next(&seed) % (k % 10 == 0 ? sizeof in : 300), i, at = 0, out = 0, nbare = 0;
        unsigned kind = rng_next(&seed) % 5; /* 0 mixed, 1 CR-only, 2 LF-only, 3 CRLF, 4 long lines */
        tlsmail__msginfo a, b;
        int bare = 1;
        for (i = 0; i < n; i++) {
            unsigned r = rng_next(&seed) % (kind == 4 ? 9000 : 40);
            unsigned char c = (unsigned char)('a' + r % 26);
            if (r == 0) c = kind == 1 ? '\r' : '\n';
            else if (r == 1) c = kind == 2 ? '\n' : '\r';
            else if (r == 2 && rng_next(&seed) % 8 == 0) c = 0xc3;
            if (kind == 3 && c == '\r' && i + 1 < n) in[i++] = '\r', c = '\n';
            in[i] = c;
        }
        tlsmail__msg_scan(in, n, &a);
        msg_scan_ref(in, n, &b);
        if (a.size != b.size || a.body8 != b.body8 || a.head8 != b.head8 || a.longline != b.longline ||
            a.bare != b.bare) {
            printf("    input #%d (kind %u, %lu octets): size %lu/%lu body8 %d/%d head8 %d/%d long %lu/%lu "
                   "bare %d/%d\n", k, kind, (unsigned long)n, (unsigned long)a.size, (unsigned long)b.size,
                   a.body8, b.body8, a.head8, b.head8, (unsigned long)a.longline, (unsigned long)b.longline,
                   a.bare, b.bare);
            CHECK(0);
            return;
        }
        head8_seen += a.head8;
        long_seen += a.longline != 0;
        short_seen += !a.longline && n > 998;
        body8_only += a.body8 && !a.head8;
        /* the runs: every octet between them is a bare line end, and no
           bare one is inside a run */
        while (at < n && bare) {
            size_t end = tlsmail__bdat_run(in, n, at, &bare);
            for (i = at; i < end; i++)
                if (bare_ref(in, n, i)) {
                    printf("    input #%d: bare line end at %lu inside the run %lu..%lu\n", k,
                           (unsigned long)i, (unsigned long)at, (unsigned long)end);
                    CHECK(0);
                    return;
                }
            CHECK(end <= n && (bare ? end < n && bare_ref(in, n, end) : end == n));
            out += end - at + (bare ? 2 : 0);
            nbare += (size_t)bare;
            at = end + 1;
        }
        if (n && in[n - 1] != '\r' && in[n - 1] != '\n') out += 2;
        CHECK_EQ_INT(out, a.size);
        bare_seen += nbare > 0;
    }
    /* every outcome exercised */
    CHECK(bare_seen > 100 && head8_seen > 10 && body8_only > 10 && long_seen > 10 && short_seen > 10);
}

/* Feeds in[0..n) to the encoder and to step_ref, each from the same state,
   at random cuts and rooms (0 to 40 octets and large); every call must
   take and give the same, and leave the same state. 0, or -1 after a
   difference (reported). */
static int dot_against_ref(const unsigned char *in, size_t n, unsigned *seed, int k, int *calls,
                           int *elines) {
    static unsigned char o1[9000], o2[9000];
    size_t pos = 0;
    tlsmail__dot a, b;
    tlsmail__dot_init(&a);
    tlsmail__dot_init(&b);
    while (pos < n) {
        size_t len = 1 + rng_next(seed) % (rng_next(seed) % 2 ? 64 : n - pos);
        size_t cap = rng_next(seed) % 4 ? rng_next(seed) % 41 : 1 + rng_next(seed) % 9000;
        size_t u1 = 7, w1 = 7, u2 = 9, w2 = 9;
        int r1, r2;
        if (len > n - pos) len = n - pos;
        if (cap > sizeof o1) cap = sizeof o1;
        r1 = tlsmail__dot_encode(&a, in + pos, len, o1, cap, &u1, &w1);
        r2 = step_ref(&b, in + pos, len, o2, cap, &u2, &w2);
        (*calls)++;
        if (r1 != r2 || u1 != u2 || w1 != w2 || memcmp(o1, o2, w1) != 0 || a.bol != b.bol ||
            a.cr != b.cr || a.linelen != b.linelen || a.line != b.line) {
            printf("    input #%d at %lu, len %lu, cap %lu: rc %d/%d used %lu/%lu written %lu/%lu "
                   "line %lu/%lu\n",
                   k, (unsigned long)pos, (unsigned long)len, (unsigned long)cap, r1, r2,
                   (unsigned long)u1, (unsigned long)u2, (unsigned long)w1, (unsigned long)w2,
                   (unsigned long)a.line, (unsigned long)b.line);
            CHECK(0);
            return -1;
        }
        if (r1) {
            (*elines)++;
            return 0;
        }
        pos += u1;
        if (u1 == 0 && cap >= 2) { /* room for progress must make progress */
            CHECK(u1 > 0);
            return -1;
        }
    }
    return 0;
}

/* Every call of the encoder against step_ref, from the same state: random
   text with long and short lines, bare CRs and LFs, dots, at random cuts
   and rooms (0 to 40 octets and large), through lines near 998 octets. */
TEST(dot_per_call_reference) {
    static unsigned char in[6000];
    unsigned seed = 0x1234567u;
    int k, calls = 0, elines = 0;
    for (k = 0; k < 400; k++) {
        size_t n = 1 + rng_next(&seed) % sizeof in, i;
        unsigned long_lines = rng_next(&seed) % 3; /* 0: short lines, 2: mostly very long */
        for (i = 0; i < n; i++) {
            unsigned r = rng_next(&seed) % (long_lines == 2 ? 1100 : long_lines ? 200 : 12);
            in[i] = (unsigned char)(r == 0 ? '\n' : r == 1 ? '\r' : r == 2 ? '.' : 'a' + r % 26);
        }
        if (dot_against_ref(in, n, &seed, k, &calls, &elines) != 0) return;
    }
    CHECK(calls > 5000 && elines > 20);
}

/* The same for text made of lines, as mail is: mostly CRLF-terminated,
   of every length around the limit (997, 998, 999 and beyond), some
   empty, some starting with "." or "..", some ended by a bare CR or LF
   or by a CR at the end of the input, cut anywhere: the line limit and
   line starts meet every cut and room. (A run-of-lines encoder, one copy
   for many lines, was tried against this and measured slower than a
   copy per line: the scan is what costs, not the copies.) */
TEST(dot_per_call_reference_lines) {
    static unsigned char in[40000];
    static const size_t lens[] = { 0, 1, 2, 75, 76, 996, 997, 998, 999, 1000 };
    unsigned seed = 0x89abcdefu;
    int k, calls = 0, elines = 0, runs = 0;
    for (k = 0; k < 300; k++) {
        size_t n = 0, target = 1 + rng_next(&seed) % sizeof in;
        unsigned longish = rng_next(&seed) % 4; /* 0: no line over the limit */
        while (n < target) {
            unsigned r = rng_next(&seed) % 100;
            size_t len = r < 50 ? lens[rng_next(&seed) % (longish ? 10 : 8)] : rng_next(&seed) % 120, i;
            if (n + len + 2 > sizeof in) break;
            for (i = 0; i < len; i++) in[n + i] = (unsigned char)('a' + rng_next(&seed) % 26);
            if (len && r % 10 == 0) in[n] = '.';
            if (len > 1 && r % 20 == 0) in[n + 1] = '.';
            n += len;
            r = rng_next(&seed) % 100;
            if (r < 90) {
                in[n++] = '\r';
                in[n++] = '\n';
                runs++;
            } else {
                in[n++] = (unsigned char)(r < 95 ? '\r' : '\n');
            }
        }
        if (n && rng_next(&seed) % 4 == 0) in[n - 1] = '\r'; /* a CR last, its LF never comes */
        if (n && dot_against_ref(in, n, &seed, k, &calls, &elines) != 0) return;
    }
    CHECK(calls > 5000 && elines > 20 && runs > 10000);
}

/* ---- argument checks -------------------------------------------------------------- */

TEST(check_mailbox) {
    char buf[300];
    CHECK_EQ_INT(tlsmail__check_mailbox("user@example.org", TLSMAIL__ADDR_RCPT), 0);
    CHECK_EQ_INT(tlsmail__check_mailbox("user@example.org", TLSMAIL__ADDR_MAIL), 0);
    CHECK_EQ_INT(tlsmail__check_mailbox("user@example.org", TLSMAIL__ADDR_MAILBOX), 0);
    CHECK_EQ_INT(tlsmail__check_mailbox(NULL, TLSMAIL__ADDR_MAIL), TLSMAIL_EINVAL);
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
    CHECK_EQ_INT(tlsmail__check_mailbox("\"a<b\"@x", 0), 0);  /* quoted: cannot end the path */
    CHECK_EQ_INT(tlsmail__check_mailbox("\"a\\\r\"@x", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("a@\"b c\"", 0), TLSMAIL_EINVAL); /* space in domain */
    CHECK_EQ_INT(tlsmail__check_mailbox("@x", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("a@", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("@", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("\"a@b\"@x", 0), 0);  /* '@' inside the quotes */
    CHECK_EQ_INT(tlsmail__check_mailbox("a@b@", 0), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("\xce\xb4\xce\xbf\xce\xba@\xcf\x80\xce\xb1.gr", 0), 0);
    /* local part 64 ok, 65 not */
    memset(buf, 'l', 64);
    strcpy(buf + 64, "@example.org");
    CHECK_EQ_INT(tlsmail__check_mailbox(buf, 0), 0);
    memset(buf, 'l', 65);
    strcpy(buf + 65, "@example.org");
    CHECK_EQ_INT(tlsmail__check_mailbox(buf, 0), TLSMAIL_EINVAL);
    /* a quoted local part counts its quotes: 62 octets inside is 64 */
    buf[0] = '"';
    memset(buf + 1, 'q', 62);
    strcpy(buf + 63, "\"@example.org");
    CHECK_EQ_INT(tlsmail__check_mailbox(buf, 0), 0);
    buf[63] = 'q';
    strcpy(buf + 64, "\"@example.org");
    CHECK_EQ_INT(tlsmail__check_mailbox(buf, 0), TLSMAIL_EINVAL);
    /* 254 in all ok, 255 not (the path is 256 with "<>") */
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

/* RFC 5321 4.1.2 and 4.1.3 rule by rule, with RFC 6531 3.3's UTF-8: each
   accepted form once, and each way to break it. */
TEST(check_mailbox_grammar) {
    static const char *const good[] = {
        /* Dot-string: atoms of atext joined by single dots */
        "a@example.org", "first.last@example.org", "a.b.c.d@example.org",
        "!#$%&'*+-/=?^_`{|}~@example.org", "0@example.org", "x@y",
        /* Quoted-string: qtextSMTP (space too) and quoted-pairSMTP */
        "\"\"@example.org", "\"a b\"@example.org", "\" \"@example.org", "\"a..b\"@example.org",
        "\".a\"@example.org", "\"a,b;c:d(e)[f]<g>\"@example.org", "\"@\"@example.org",
        "\"\\\"\"@example.org", "\"\\\\\"@example.org", "\"\\a\\ \"@example.org",
        "\"~!\"@example.org",
        /* sub-domains: letters, digits, inner hyphens; any number of labels */
        "a@b-c.org", "a@b--c.org", "a@1.2.3.4.example", "a@123", "a@x-1.y-2.z",
        "a@EXAMPLE.ORG", "a@a.b.c.d.e.f.g.h",
        /* address literals */
        "a@[192.0.2.1]", "a@[0.0.0.0]", "a@[255.255.255.255]", "a@[001.02.3.004]",
        "a@[IPv6:2001:db8::1]", "a@[IPv6:::]", "a@[IPv6:::1]", "a@[IPv6:1::]",
        "a@[IPv6:1:2:3:4:5:6:7:8]", "a@[IPv6:1:2:3:4:5:6::]", "a@[IPv6:1::2:3:4:5:6]",
        "a@[IPv6:ABCD:ef01::FFFF]", "a@[ipv6:::1]", "a@[IPv6:::ffff:192.0.2.1]",
        "a@[IPv6:1:2:3:4:5:6:192.0.2.1]", "a@[IPv6:1:2::3:4:192.0.2.1]",
        "a@[IPv6:::1.2.3.4]", "a@[IPv6:1:2:3:4::1.2.3.4]",
        "a@[x-tag:anything!\"#goes~]", "a@[a:b]", "a@[-a:b]", "a@[Tag:@@]",
        /* RFC 6531 3.3: UTF-8 in atext, qtextSMTP and U-labels */
        "j\xc3\xb6rg@example.org", "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a",
        "\"\xc3\xa9 \xc3\xa9\"@example.org", "a@b\xc3\xbc\x63her.example", "a@\xc3\xbc",
        "a@x-\xc3\xbc-y.example", "\xf0\x9f\x98\x80@example.org",
    };
    static const char *const bad[] = {
        /* the audit's five: lists, groups, comments, stray dots */
        "a@b,c@d", "g:a@b;", "a@b(x)", ".a@b", "a..b@c",
        /* Dot-string */
        "a.@b", ".@b", "a@@b", "a(b)@c", "a,b@c", "a:b@c", "a;b@c", "a[b]@c", "a\\b@c",
        "a\"b\"@c", "\"a\"b@c", "a\"b@c", "a b@c", "a\xc3@c", "a\xc0\xaf@c", "a\xed\xa0\x80@c",
        "a\x80@c", "a\xf4\x90\x80\x80@c",
        /* Quoted-string */
        "\"a\"\"b\"@c", "\"a\\\"@c", "\"a\".b@c", "a.\"b\"@c", "\"a\tb\"@c", "\"a\\\tb\"@c",
        "\"a\x7f\"@c", "\"a\\\x7f\"@c", "\"a\\\xc3\xa9\"@c", "\"\xc3\"@c", "\"a",
        /* Domain */
        "a@-b", "a@b-", "a@b.-c", "a@b.c-", "a@b..c", "a@.b", "a@b.", "a@b_c", "a@b c", "a@b!",
        "a@-\xc3\xbc", "a@\xc3\xbc-", "a@\xc3", "a@b\xc3\xbc\xc3.c", "a@\"b\"", "a@b@c",
        /* address literals */
        "a@[]", "a@[1.2.3]", "a@[1.2.3.4.5]", "a@[256.1.1.1]", "a@[1.2.3.1000]", "a@[1..2.3]",
        "a@[1.2.3.4", "a@1.2.3.4]", "a@[1.2.3.4]x", "a@x[1.2.3.4]", "a@[ 1.2.3.4]",
        "a@[IPv6:1:2:3:4:5:6:7]", "a@[IPv6:1:2:3:4:5:6:7:8:9]", "a@[IPv6:1:2:3:4:5:6:7::]",
        "a@[IPv6::1:2:3:4:5:6:7]", "a@[IPv6:1::2::3]", "a@[IPv6:12345::]", "a@[IPv6:g::]",
        "a@[IPv6::1]", "a@[IPv6:1:]", "a@[IPv6:1:::2]", "a@[IPv6:]", "a@[IPv6]", "a@[IPv6:zz]",
        "a@[IPv6:1:2:3:4:5:192.0.2.1]", "a@[IPv6:1:2:3:4:5::192.0.2.1]", "a@[IPv6:::1.2.3]",
        "a@[IPv6:1.2.3.4]", "a@[:b]", "a@[a-:b]", "a@[a_b:c]", "a@[a:]", "a@[a:b c]",
        "a@[a:b[c]", "a@[a:b\\c]", "a@[a:b]c]", "a@[a:\xc3\xa9]",
        /* neither Postmaster nor "" is a Mailbox */
        "Postmaster", "",
    };
    size_t i;
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        int kind;
        for (kind = TLSMAIL__ADDR_RCPT; kind <= TLSMAIL__ADDR_MAILBOX; kind++) {
            if (tlsmail__check_mailbox(good[i], kind) != 0) {
                printf("    refused \"%s\" (kind %d)\n", good[i], kind);
                CHECK(0);
            }
        }
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (tlsmail__check_mailbox(bad[i], TLSMAIL__ADDR_MAILBOX) != TLSMAIL_EINVAL) {
            printf("    accepted \"%s\"\n", bad[i]);
            CHECK(0);
        }
    }
}

/* RFC 5321 4.1.1.3 and 4.5.1: RCPT TO:<Postmaster>, any case, alone;
   4.5.5: MAIL FROM:<>. Each only where it belongs. */
TEST(check_mailbox_postmaster_and_null_path) {
    CHECK_EQ_INT(tlsmail__check_mailbox("Postmaster", TLSMAIL__ADDR_RCPT), 0);
    CHECK_EQ_INT(tlsmail__check_mailbox("postmaster", TLSMAIL__ADDR_RCPT), 0);
    CHECK_EQ_INT(tlsmail__check_mailbox("POSTMASTER", TLSMAIL__ADDR_RCPT), 0);
    CHECK_EQ_INT(tlsmail__check_mailbox("Postmaster", TLSMAIL__ADDR_MAIL), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("Postmaster", TLSMAIL__ADDR_MAILBOX), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("Postmaster.", TLSMAIL__ADDR_RCPT), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("Postmasterx", TLSMAIL__ADDR_RCPT), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("Postmaster@example.org", TLSMAIL__ADDR_MAIL), 0);
    CHECK_EQ_INT(tlsmail__check_mailbox("", TLSMAIL__ADDR_MAIL), 0);
    CHECK_EQ_INT(tlsmail__check_mailbox("", TLSMAIL__ADDR_RCPT), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("", TLSMAIL__ADDR_MAILBOX), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("<>", TLSMAIL__ADDR_MAIL), TLSMAIL_EINVAL);
    CHECK_EQ_INT(tlsmail__check_mailbox("\"\"", TLSMAIL__ADDR_MAIL), TLSMAIL_EINVAL);
    /* the public check answers as RCPT does */
    CHECK_EQ_INT(tlsmail_check_address("postmaster"), 0);
    CHECK_EQ_INT(tlsmail_check_address(""), TLSMAIL_EINVAL);
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
                                         "<a@b>", "j\xc3\xb6rg@example.org", "a@b,c@d",
                                         "a@[IPv6:::1]" };
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

/* What tlsmail_dial takes as a host name; anything else is EINVAL before a
   byte goes out (an empty label would leave in the ClientHello first). */
/* A transport that lies about how much it read: what it returns is not
   trusted. mode 0: len + 7; 1: a negative value that is no TLSMAIL_E code;
   2: a write that claims more than it was given. */
typedef struct { int mode, reads, writes; } liar_io;

static int liar_read(void *ctx, unsigned char *buf, size_t len) {
    liar_io *l = (liar_io *)ctx;
    l->reads++;
    memset(buf, 0x16, len);
    if (l->mode == 0) return (int)len + 7;
    if (l->mode == 1) return -1000;
    return (int)len;
}

static int liar_write(void *ctx, const unsigned char *buf, size_t len) {
    liar_io *l = (liar_io *)ctx;
    (void)buf;
    l->writes++;
    return l->mode == 2 ? (int)len + 1 : (int)len;
}

/* The README says "about 30 KB per connection": the client is the whole
   per-connection state (BearSSL's buffer and engines, the reply, the
   keywords), so its size is the figure. */
TEST(client_size_as_the_readme_says) {
    CHECK(sizeof(tlsmail_client) >= 28 * 1024 && sizeof(tlsmail_client) <= 32 * 1024);
}

TEST(io_answers_checked) {
    int mode;
    CHECK_EQ_INT(tlsmail__io_checked(10, 10), 10);
    CHECK_EQ_INT(tlsmail__io_checked(11, 10), TLSMAIL_EIO);
    CHECK_EQ_INT(tlsmail__io_checked(TLSMAIL_ETIMEOUT, 10), TLSMAIL_ETIMEOUT);
    CHECK_EQ_INT(tlsmail__io_checked(-1000, 10), TLSMAIL_EIO);
    for (mode = 0; mode < 3; mode++) {
        liar_io l = {0, 0, 0};
        tlsmail_io io;
        tlsmail_config cfg;
        tlsmail_client c;
        l.mode = mode;
        io.ctx = &l;
        io.read = liar_read;
        io.write = liar_write;
        io.close = NULL;
        memset(&cfg, 0, sizeof cfg);
        cfg.host = "mail.example";
        cfg.io = &io;
        cfg.timeout_ms = 1000;
        CHECK_EQ_INT(tlsmail_dial(&c, &cfg), TLSMAIL_EIO);
        CHECK(l.writes >= 1);
        CHECK(mode == 2 || l.reads >= 1);
        tlsmail_close(&c);
    }
}

TEST(host_name_ok) {
    char long_label[80], long_name[300];
    size_t i;
    CHECK(tlsmail__host_name_ok("localhost"));
    CHECK(tlsmail__host_name_ok("localhost."));
    CHECK(tlsmail__host_name_ok("smtp.example.org"));
    CHECK(tlsmail__host_name_ok("xn--bcher-kva.example"));
    CHECK(tlsmail__host_name_ok("mail_1.internal"));
    CHECK(!tlsmail__host_name_ok(""));
    CHECK(!tlsmail__host_name_ok("."));
    CHECK(!tlsmail__host_name_ok("localhost.."));
    CHECK(!tlsmail__host_name_ok(".localhost"));
    CHECK(!tlsmail__host_name_ok("a..b"));
    CHECK(!tlsmail__host_name_ok("a b"));
    CHECK(!tlsmail__host_name_ok("b\xc3\xbc" "cher.example"));
    CHECK(!tlsmail__host_name_ok("a/b"));
    memset(long_label, 'a', 64);
    long_label[64] = 0;
    CHECK(!tlsmail__host_name_ok(long_label));
    long_label[63] = 0;
    CHECK(tlsmail__host_name_ok(long_label));
    for (i = 0; i < 254; i++) long_name[i] = (char)(i % 2 ? '.' : 'a');
    long_name[253] = 0; /* a.a. ... a: 253 octets */
    CHECK(tlsmail__host_name_ok(long_name));
    long_name[253] = '.';
    long_name[254] = 0; /* the same, absolute */
    CHECK(tlsmail__host_name_ok(long_name));
    long_name[253] = 'a';
    long_name[254] = 'a';
    long_name[255] = 0; /* 255 octets */
    CHECK(!tlsmail__host_name_ok(long_name));
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
    /* to the certificate check, the absolute form is one too */
    CHECK_EQ_INT(tlsmail__is_ip_name("127.0.0.1."), 1);
    CHECK_EQ_INT(tlsmail__is_ip_name("127.0.0.1"), 1);
    CHECK_EQ_INT(tlsmail__is_ip_name("mail.example."), 0);
    CHECK_EQ_INT(tlsmail__is_ip_name("1..2."), 0);
    CHECK_EQ_INT(tlsmail__is_ip_name("."), 0);
}

/* A reply quoting the secret we sent: each base64 run that starts with
   what we sent becomes "<secret>", or stars where that would not fit. */
static int masks(const char *in, const char *echo, const char *want) {
    char buf[256];
    size_t n = strlen(in), r;
    memcpy(buf, in, n + 1);
    r = tlsmail__mask_echo(buf, n, echo);
    return r == strlen(want) && strcmp(buf, want) == 0;
}

TEST(mask_echo) {
    CHECK(masks("bad AUTH PLAIN AHVzZXIAczNjcmV0", "AHVzZXIAczNj", "bad AUTH PLAIN <secret>"));
    CHECK(masks("AHVzZXIAczNjcmV0= twice AHVzZXIAczNjcmV0.", "AHVzZXIAczNj",
                "<secret> twice <secret>."));
    CHECK(masks("cut AHVzZXIAcz", "AHVzZXIAczNj", "cut AHVzZXIAcz"));  /* less than we sent */
    CHECK(masks("pw czNjcm!", "czNj", "pw ******!"));                   /* shorter than "<secret>" */
    CHECK(masks("pw czNjcmV0", "czNj", "pw <secret>"));
    CHECK(masks("xczNjcmV0", "czNj", "x<secret>"));                     /* glued to a word */
    CHECK(masks("nothing here", "czNj", "nothing here"));
    CHECK(masks("no echo set", "", "no echo set"));
    CHECK(masks("", "czNj", ""));
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

/* A results array reused from an earlier send is cleared also when the
   call is refused before any byte: EINVAL, ESTATE. */
TEST(rcpt_results_cleared_on_refusal_before_any_byte) {
    static const char *const to[2] = { "a@b.example", "c@d.example" };
    tlsmail_rcpt_result res[2];
    tlsmail_send_opts o;
    tlsmail_client c;
    tlsmail_config cfg;
    size_t i, k;
    int step;
    memset(&o, 0, sizeof o);
    memset(&cfg, 0, sizeof cfg);
    cfg.host = "localhost:1";
    o.results = res;
    for (step = 0; step < 4; step++) {
        const unsigned char *b = (const unsigned char *)res;
        memset(res, 0x5a, sizeof res);
        memset(&c, 0, sizeof c);
        c.fd = -1; /* never connected: ESTATE */
        if (step == 0) CHECK_EQ_INT(tlsmail_transact(&c, "f@x.example", to, 2, "x\r\n", 3, &o), TLSMAIL_ESTATE);
        if (step == 1) CHECK_EQ_INT(tlsmail_transact_begin(&c, "f@x.example", to, 2, &o), TLSMAIL_ESTATE);
        if (step == 2) CHECK_EQ_INT(tlsmail_client_send_ex(&c, &cfg, NULL, "no sender", to, 2, "x", 1, &o), TLSMAIL_EINVAL);
        if (step == 3) CHECK_EQ_INT(tlsmail_client_send_ex(&c, &cfg, NULL, "f@x.example", to, 2, NULL, 1, &o), TLSMAIL_EINVAL);
        for (k = 0, i = 0; i < sizeof res; i++) k += b[i] != 0;
        CHECK_EQ_INT((int)k, 0);
    }
}

int main(int argc, char **argv) {
    runner_args(argc, argv);
    RUN(reply_single_line);
    RUN(rcpt_results_cleared_on_refusal_before_any_byte);
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
    RUN(ext_size);
    RUN(ext_params_and_junk);
    RUN(ext_overflow);
    RUN(b64_rfc4648_vectors);
    RUN(b64_encode_capacity);
    RUN(b64_decode_bad);
    RUN(b64_round_trip);
    RUN(plain_rfc4616);
    RUN(auth_check_fields);
    RUN(auth_constructors);
    RUN(oauth_payloads);
    RUN(b64_parts_streaming);
    RUN(oauth_challenge);
    RUN(oauth_status);
    RUN(queue_id_forms);
    RUN(queue_id_none);
    RUN(xtext);
    RUN(message_size_and_8bit);
    RUN(scan_and_bdat_runs_reference);
    RUN(mail_params);
    RUN(rcpt_params);
    RUN(describe_local_and_enhanced);
    RUN(describe_rcpt_as_describe_would);
    RUN(error_class_enhanced);
    RUN(partial_delivery_name_class_describe);
    RUN(wipe);
    RUN(dot_line_ends);
    RUN(dot_stuffing);
    RUN(dot_line_length);
    RUN(dot_small_buffers);
    RUN(dot_chunking_invariance);
    RUN(dot_chunking_eline);
    RUN(dot_per_call_reference);
    RUN(dot_per_call_reference_lines);
    RUN(check_mailbox);
    RUN(check_mailbox_grammar);
    RUN(check_mailbox_postmaster_and_null_path);
    RUN(tls_offer);
    RUN(check_address_public);
    RUN(check_token);
    RUN(host_name_ok);
    RUN(io_answers_checked);
    RUN(client_size_as_the_readme_says);
    RUN(split_hostport);
    RUN(is_ip_literal);
    RUN(ieq);
    RUN(mask_echo);
    return runner_finish();
}
