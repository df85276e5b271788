/* fuzz_client.c - the whole SMTP dialogue over the callback transport.

   Build with -DTLSMAIL_INSECURE_NO_TLS_FOR_FUZZING -DTLSMAIL_NO_SOCKETS:
   the dialogue then runs on the bare tlsmail_io stream (no TLS), so the
   fuzzer's bytes are what the server says.

   Input byte 0 selects the run; the rest is the server's side of the
   connection, handed out in small reads (then 0 = EOF):
     bit 0     0: tlsmail_client_send with AUTH PLAIN; 1: a step-by-step session
               (dial, hello, extension, authenticate LOGIN, mail, rcpt x2,
               data_begin, data_write in pieces, data_end, reset, noop,
               quit, close)
     bits 1-4  read size - 1 (1..16 octets per read)
     bit 5     sendmail: one recipient instead of two
     bit 6     writes accept at most 5 octets per call (partial writes)

   Invariants, checked independently of the client's own state: results
   are 0 or a TLSMAIL_E* code; every line written ends in CRLF and holds no
   other CR or LF; MAIL is written only right after a 235 reply has been
   read; message text is written only when the last complete reply the
   client has read is 354 (or, with BDAT, follows "BDAT <n> LAST" and is
   exactly the message with its line ends made CRLF and no dot-stuffing, n
   octets); a result of 0 from sendmail / data_end means a reply read after
   the final "." (or the last chunk) was 2xx; no transaction of the one
   call or tlsmail_transact has more than TLSMAIL_RCPT_MAX RCPTs;
   tlsmail_transact's results say delivered only for an accepted
   recipient, for someone exactly when it returns 0 or EPARTIAL, and not
   for everyone on EPARTIAL (tlsmail_transact_begin's never); the trace
   never shows the password or its base64; no crash, UB or leak (ASan,
   UBSan, LSan). fuzz_client_groups.c is this target with one recipient a
   transaction, so that two make two transactions. */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
#include "fuzz_common.h"

#define USER "fuzz@example.org"
#define PASS "s3cret-Pw-fuzz"
#define PASS_B64 "czNjcmV0LVB3LWZ1eno=" /* base64 of PASS, as LOGIN sends it */

typedef struct {
    tlsmail_client *c;
    const uint8_t *in;
    size_t inlen, inpos, rsize;
    size_t wmax;
    int closed;
    /* what the client wrote, as lines */
    char line[4096];
    size_t linelen;
    int in_data;          /* "DATA" line written and no "." line yet */
    int dot_written;      /* the final "." line went out */
    size_t dot_consumed;  /* server octets the client had parsed then */
    int saw_auth;
    int mails;           /* MAIL commands written */
    int rcpts;           /* RCPT commands since the last MAIL */
    int by_hand;         /* tlsmail_rcpt called directly: as many as the caller asks */
    size_t bdat_left;     /* octets of a BDAT chunk still to come */
    size_t bdat_pos;      /* of the chunk, octets seen (checked against MSG) */
    char ref[256];        /* MSG as a BDAT chunk must carry it */
    size_t reflen;
} harness;

static const char MSG[] = "From: fuzz@example.org\r\nTo: a@example.org\r\nSubject: fuzz\r\n\r\n"
                          ".leading dot\r\n.\r\nbare LF\n.\nbare CR\r.\rlast line, no end";

/* MSG as BDAT must send it: every line end CRLF, a CRLF at the end. */
static size_t bdat_ref(char *out) {
    size_t i, n = 0;
    for (i = 0; i < sizeof MSG - 1; i++) {
        if (MSG[i] == '\r' || MSG[i] == '\n') {
            if (MSG[i] == '\r' && MSG[i + 1] == '\n') i++;
            out[n++] = '\r';
            out[n++] = '\n';
        } else {
            out[n++] = MSG[i];
        }
    }
    out[n++] = '\r';
    out[n++] = '\n';
    return n;
}

/* Server octets the client has parsed: read so far, minus what still waits
   in its receive buffer. */
static size_t consumed(const harness *h) {
    FUZZ_CHECK(h->c->rpos <= h->c->rlen && h->c->rlen <= sizeof h->c->rbuf);
    FUZZ_CHECK(h->c->rlen - h->c->rpos <= h->inpos);
    return h->inpos - (h->c->rlen - h->c->rpos);
}

/* Code of the last complete reply in in[from..upto), -1 if none. A reply is
   complete at a line whose 4th octet isn't '-'. Independent of the library's
   parser: only the LF and the code digits are looked at. */
static int last_reply(const harness *h, size_t from, size_t upto, int first) {
    size_t pos = from;
    int last = -1;
    while (pos < upto) {
        const uint8_t *nl = (const uint8_t *)memchr(h->in + pos, '\n', upto - pos);
        size_t len;
        if (!nl) break;
        len = (size_t)(nl - (h->in + pos));
        if (len && h->in[pos + len - 1] == '\r') len--;
        if (len >= 3 && !(len > 3 && h->in[pos + 3] == '-')) {
            last = (h->in[pos] - '0') * 100 + (h->in[pos + 1] - '0') * 10 + (h->in[pos + 2] - '0');
            if (first) return last;
        }
        pos = (size_t)(nl - h->in) + 1;
    }
    return last;
}

static int h_read(void *ctx, unsigned char *buf, size_t len) {
    harness *h = (harness *)ctx;
    size_t n = h->inlen - h->inpos;
    FUZZ_CHECK(!h->closed);
    FUZZ_CHECK(buf != NULL && len > 0);
    if (n > h->rsize) n = h->rsize;
    if (n > len) n = len;
    memcpy(buf, h->in + h->inpos, n);
    h->inpos += n;
    return (int)n; /* 0 at the end: EOF */
}

static void line_done(harness *h) {
    const char *l = h->line;
    size_t n = h->linelen, i;
    /* ends in CRLF, no other CR or LF */
    FUZZ_CHECK(n >= 2 && l[n - 2] == '\r' && l[n - 1] == '\n');
    for (i = 0; i + 2 < n; i++) FUZZ_CHECK(l[i] != '\r' && l[i] != '\n');
    if (h->in_data) {
        if (n == 3 && l[0] == '.') {
            h->in_data = 0;
            h->dot_written = 1;
            h->dot_consumed = consumed(h);
        }
    } else if (n >= 10 && memcmp(l, "MAIL FROM:", 10) == 0) {
        /* the first after AUTH's 235; a later one (tlsmail_transact) after
           the last message's 2xx or RSET's */
        int code = last_reply(h, 0, consumed(h), 0);
        FUZZ_CHECK(h->saw_auth);
        FUZZ_CHECK(h->mails ? code >= 200 && code <= 299 : code == 235);
        h->mails++;
        h->rcpts = 0;
    } else if (n >= 8 && memcmp(l, "RCPT TO:", 8) == 0) {
        FUZZ_CHECK(++h->rcpts <= TLSMAIL_RCPT_MAX || h->by_hand);
    } else if (n == 6 && memcmp(l, "DATA\r\n", 6) == 0) {
        h->in_data = 1;
    } else if (n >= 5 && memcmp(l, "BDAT ", 5) == 0) {
        /* one chunk, the whole message: "BDAT <size> LAST" */
        FUZZ_CHECK(n > 12 && memcmp(l + n - 7, " LAST\r\n", 7) == 0);
        h->bdat_left = (size_t)strtoul(l + 5, NULL, 10);
        FUZZ_CHECK(h->bdat_left == h->reflen);
        h->bdat_pos = 0;
    } else if (n >= 4 && memcmp(l, "AUTH", 4) == 0) {
        h->saw_auth = 1;
    }
    h->linelen = 0;
}

static int h_write(void *ctx, const unsigned char *buf, size_t len) {
    harness *h = (harness *)ctx;
    size_t i, n = len < h->wmax ? len : h->wmax;
    FUZZ_CHECK(!h->closed);
    FUZZ_CHECK(buf != NULL && len > 0);
    /* After "DATA": message text only once the client has read a 354. Any
       other reply refused DATA, and then only a command may follow (MSG has
       no line starting with one of these verbs, so text can't pass as one). */
    if (h->in_data && last_reply(h, 0, consumed(h), 0) != 354) {
        FUZZ_CHECK(h->linelen == 0 && len >= 4);
        FUZZ_CHECK(memcmp(buf, "RSET", 4) == 0 || memcmp(buf, "NOOP", 4) == 0 ||
                   memcmp(buf, "QUIT", 4) == 0);
        h->in_data = 0;
    }
    for (i = 0; i < n; i++) {
        if (h->bdat_left) { /* chunk octets, not a line */
            FUZZ_CHECK(buf[i] == (unsigned char)h->ref[h->bdat_pos]);
            h->bdat_pos++;
            if (--h->bdat_left == 0) {
                h->dot_written = 1;
                h->dot_consumed = consumed(h);
            }
            continue;
        }
        FUZZ_CHECK(h->linelen < sizeof h->line);
        h->line[h->linelen++] = (char)buf[i];
        if (buf[i] == '\n') line_done(h);
    }
    return (int)n;
}

static void h_close(void *ctx) {
    harness *h = (harness *)ctx;
    FUZZ_CHECK(!h->closed); /* closed once */
    h->closed = 1;
}

static void h_trace(void *ud, int dir, const char *line, size_t len) {
    size_t i;
    (void)ud;
    FUZZ_CHECK(dir >= 0 && dir <= 3);
    FUZZ_CHECK(line != NULL && len <= TLSMAIL__CMD_MAX + 16);
    for (i = 0; i < len; i++) FUZZ_CHECK(line[i] != '\r' && line[i] != '\n');
    /* the secrets never reach the trace of what we send (the server's
       lines are the fuzzer's: they may hold anything) */
    if ((dir & TLSMAIL_TRACE_RECV) != 0) return;
    for (i = 0; i + sizeof PASS - 1 <= len; i++)
        FUZZ_CHECK(memcmp(line + i, PASS, sizeof PASS - 1) != 0);
    for (i = 0; i + sizeof PASS_B64 - 1 <= len; i++)
        FUZZ_CHECK(memcmp(line + i, PASS_B64, sizeof PASS_B64 - 1) != 0);
}

static void check_rc(int rc) { FUZZ_CHECK(rc <= 0 && rc >= TLSMAIL__ERROR_LAST); }

/* A result of 0 after the final ".": the first complete reply read after
   it was 2xx. */
static void check_delivered(const harness *h) {
    int code;
    FUZZ_CHECK(h->dot_written);
    code = last_reply(h, h->dot_consumed, consumed(h), 1);
    FUZZ_CHECK(code >= 200 && code <= 299);
}

/* FUZZ_VERBOSE=1 in the environment: print each session's results (for
   checking that the seeds reach where they should). */
static int verbose(void) {
    static int v = -1;
    if (v < 0) v = getenv("FUZZ_VERBOSE") != NULL;
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const to[] = { "a@example.org", "b@example.org" };
    tlsmail_client *c;
    tlsmail_trust trust;
    tlsmail_config cfg;
    tlsmail_io io;
    harness h;
    int rc;
    if (size < 1) return 0;

    c = (tlsmail_client *)malloc(sizeof *c);
    FUZZ_CHECK(c != NULL);
    memset(c, 0xA5, sizeof *c); /* the library must not rely on a zeroed client */
    memset(&h, 0, sizeof h);
    h.reflen = bdat_ref(h.ref);
    h.c = c;
    h.in = data + 1;
    h.inlen = size - 1;
    h.rsize = 1 + (size_t)((data[0] >> 1) & 15);
    h.wmax = (data[0] & 64) ? 5 : (size_t)-1;

    memset(&trust, 0, sizeof trust);
    /* Any valid 32-byte pin: no system store is loaded, no TLS runs here. */
    FUZZ_CHECK(tlsmail_trust_pin_sha256(&trust, "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=") == 0);
    io.ctx = &h;
    io.read = h_read;
    io.write = h_write;
    io.close = h_close;
    memset(&cfg, 0, sizeof cfg);
    cfg.host = "mail.example.org";
    cfg.helo_name = "client.example.org";
    cfg.trust = &trust;
    cfg.io = &io;
    cfg.trace = h_trace;

    if (!(data[0] & 1)) {
        tlsmail_auth a = tlsmail_plain_auth("", USER, PASS, "mail.example.org");
        size_t nto = (data[0] & 32) ? 1 : 2;
        rc = tlsmail_client_send(c, &cfg, &a, "from@example.org", to, nto, MSG, sizeof MSG - 1);
        check_rc(rc);
        if (rc == 0) check_delivered(&h);
        if (verbose()) fprintf(stderr, "sendmail: %d %s, stage %s, reply %d\n", rc,
                               tlsmail_strerror(rc), tlsmail_stage_name(tlsmail_stage(c)),
                               tlsmail_reply_code(c));
        check_rc(tlsmail_stage(c) >= 0 ? 0 : -1);
        (void)tlsmail_reply_code(c);
        FUZZ_CHECK(strlen(tlsmail_reply_text(c)) < TLSMAIL_REPLY_TEXT);
        {
            char d[300];
            tlsmail_describe(c, rc, d, sizeof d);
            FUZZ_CHECK(strlen(d) < sizeof d);
        }
        tlsmail_close(c);
    } else {
        tlsmail_auth a = tlsmail_login_auth(USER, PASS, "mail.example.org");
        const char *ext;
        size_t off = 0, piece = 7;
        rc = tlsmail_dial(c, &cfg);
        check_rc(rc);
        check_rc(tlsmail_hello(c));
        ext = tlsmail_extension(c, "AUTH");
        if (ext) FUZZ_CHECK(strlen(ext) < TLSMAIL_EXT_TEXT);
        ext = tlsmail_extension(c, "SIZE");
        if (ext) FUZZ_CHECK(strlen(ext) < TLSMAIL_EXT_TEXT);
        rc = tlsmail_authenticate(c, &a);
        check_rc(rc);
        if (verbose()) fprintf(stderr, "step: authenticate %d %s\n", rc, tlsmail_strerror(rc));
        if (rc == 0 && (data[0] & 128)) { /* tlsmail_transact, then transact_begin, on one client */
            tlsmail_rcpt_result res[2];
            tlsmail_send_opts so;
            int k;
            memset(&so, 0, sizeof so);
            so.results = res;
            so.deliver = (data[0] & 64) ? TLSMAIL_DELIVER_ACCEPTED : TLSMAIL_DELIVER_ALL;
            for (k = 0; k < 2; k++) {
                size_t nto = (data[0] & 32) ? 1 : 2, i;
                /* a call refused before its checks (ESTATE) leaves them as they were */
                memset(res, 0, sizeof res);
                if (k == 0) {
                    rc = tlsmail_transact(c, "from@example.org", to, nto, MSG, sizeof MSG - 1, &so);
                } else { /* SIZE= declared as tlsmail_transact declares it */
                    tlsmail_mail_opts mo;
                    memset(&mo, 0, sizeof mo);
                    mo.size = tlsmail_message_size(MSG, sizeof MSG - 1);
                    so.mail = &mo;
                    rc = tlsmail_transact_begin(c, "from@example.org", to, nto, &so);
                    so.mail = NULL;
                    if (rc == 0) rc = tlsmail_data_write(c, MSG, sizeof MSG - 1);
                    if (rc == 0) rc = tlsmail_data_end(c);
                }
                check_rc(rc);
                {
                    size_t got = 0;
                    for (i = 0; i < nto; i++) {
                        FUZZ_CHECK(res[i].code == 0 || (res[i].code >= 200 && res[i].code <= 599));
                        FUZZ_CHECK(strlen(res[i].text) < sizeof res[i].text);
                        FUZZ_CHECK(res[i].delivered == 0 || res[i].delivered == 1);
                        if (res[i].delivered) FUZZ_CHECK(res[i].code == 250 || res[i].code == 251);
                        got += (size_t)res[i].delivered;
                    }
                    if (k == 1) FUZZ_CHECK(got == 0); /* its verdict came from data_end */
                    else FUZZ_CHECK((got > 0) == (rc == 0 || rc == TLSMAIL_EPARTIAL));
                    if (rc == TLSMAIL_EPARTIAL) FUZZ_CHECK(got < nto);
                }
                if (verbose()) fprintf(stderr, "step: transact %d %s\n", rc, tlsmail_strerror(rc));
                if (rc == 0) check_delivered(&h);
                if (rc != 0 && tlsmail_reset(c) != 0) break;
            }
        } else if (rc == 0) { /* never MAIL after a failed AUTH: the harness asserts it */
            h.by_hand = 1;
            check_rc(tlsmail_mail(c, "from@example.org"));
            check_rc(tlsmail_rcpt(c, to[0]));
            check_rc(tlsmail_rcpt(c, to[1]));
            check_rc(tlsmail_data_begin(c));
            while (off < sizeof MSG - 1) {
                size_t n = sizeof MSG - 1 - off < piece ? sizeof MSG - 1 - off : piece;
                check_rc(tlsmail_data_write(c, MSG + off, n));
                off += n;
                piece = piece * 2 + 1;
            }
            rc = tlsmail_data_end(c);
            check_rc(rc);
            if (rc == 0) check_delivered(&h);
            if (verbose()) fprintf(stderr, "step: data_end %d %s\n", rc, tlsmail_strerror(rc));
            check_rc(tlsmail_reset(c));
        }
        check_rc(tlsmail_noop(c));
        check_rc(tlsmail_quit(c));
        tlsmail_close(c);
        tlsmail_close(c); /* twice is harmless */
    }
    tlsmail_trust_free(&trust);
    free(c);
    return 0;
}
