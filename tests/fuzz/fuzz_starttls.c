/* fuzz_starttls.c - the STARTTLS plaintext prelude (RFC 3207): the client in
   TLSMAIL_SECURITY_STARTTLS mode over the callback transport, the input
   being what the server says.

   Build with -DTLSMAIL_STARTTLS -DTLSMAIL_INSECURE_NO_TLS_FOR_FUZZING
   -DTLSMAIL_NO_SOCKETS: no TLS engine runs, so after the 220 to STARTTLS the
   session goes on over the same bare stream (where a real client would
   have done its handshake), and the fuzzer's bytes are the server's
   throughout.

   Input byte 0: bit 0: tlsmail_client_send with AUTH PLAIN (0) or a step
   by step session (1); bits 1-4: read size - 1; bit 5: writes take at most
   5 octets; bit 6: turns, below. The rest is the server's side, handed out
   in reads of that size (then EOF). With turns, each NUL is a point where
   the server waits for a line from the client (as after its 220 to
   STARTTLS, for the handshake): the NULs are dropped, no read goes past
   such a point until the client has written a line there, and a read
   that would is TLSMAIL_ETIMEOUT.

   Properties, checked against the server's bytes the client had parsed
   when it wrote each line (found here, not asked of the client):
   - before the 220 to STARTTLS the client writes exactly "EHLO name" after
     a complete 220 greeting, then "STARTTLS" after a complete 250 EHLO
     reply with a STARTTLS keyword line, and nothing else, not even QUIT;
   - it writes anything after STARTTLS only when the next complete reply
     is a 220 and it has read nothing past that reply (bytes injected
     before the handshake); the first line then is EHLO again;
   - so never AUTH, MAIL, RCPT or message text when the prelude failed,
     and no write at all after tlsmail_dial failed;
   - AUTH only when the latest EHLO after the upgrade offered it: what the
     plaintext EHLO said is forgotten (also: no extension is known and no
     reply code kept right after the dial);
   - the prelude's trace lines carry TLSMAIL_TRACE_PLAINTEXT;
   - results are 0 or TLSMAIL_E* codes; no crash, UB or leak. */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
#include "fuzz_common.h"

#ifndef TLSMAIL_STARTTLS
#error "fuzz_starttls needs -DTLSMAIL_STARTTLS"
#endif

#define HELO_NAME "client.example.org"
#define USER "fuzz@example.org"
#define PASS "s3cret-Pw-fuzz"

typedef struct {
    tlsmail_client *c;
    const uint8_t *in;  /* the server's octets (NULs dropped with turns) */
    size_t inlen, inpos, rsize, wmax;
    size_t waits[64], nwaits, nextwait; /* positions where the server waits */
    char line[4096];
    size_t linelen;
    int phase;          /* 0: nothing written, 1: EHLO, 2: STARTTLS, 3: upgraded */
    size_t ehlo_at, st_at, ehlo2_at; /* server octets parsed when those went out */
    int ehlo2;          /* the EHLO after the upgrade went out */
    int dial_failed;
    int closed;
} harness;

static int verbose(void) {
    static int v = -1;
    if (v < 0) v = getenv("FUZZ_VERBOSE") != NULL;
    return v;
}

/* Server octets the client has parsed: read, less what waits in rbuf. */
static size_t consumed(const harness *h) {
    FUZZ_CHECK(h->c->rpos <= h->c->rlen && h->c->rlen - h->c->rpos <= h->inpos);
    return h->inpos - (h->c->rlen - h->c->rpos);
}

/* The line's text starts with keyword w: then its end or a space; for
   AUTH also "=" (the pre-RFC 4954 "AUTH=PLAIN LOGIN" that servers still
   send). */
static int ieq_word(const uint8_t *p, size_t n, const char *w) {
    size_t i, k = strlen(w);
    if (n < k || (n > k && p[k] != ' ' && !(p[k] == '=' && strcmp(w, "AUTH") == 0))) return 0;
    for (i = 0; i < k; i++)
        if (tlsmail__lower(p[i]) != tlsmail__lower((unsigned char)w[i])) return 0;
    return 1;
}

/* If in[from..to) is exactly one complete reply (RFC 5321 4.2: lines
   "ddd-" then "ddd" / "ddd SP"), its code, else -1. *kw: a line after the
   first starts with the keyword (EHLO, RFC 5321 4.1.1.1), if kw. */
static int one_reply(const harness *h, size_t from, size_t to, const char *kw, int *has_kw) {
    size_t pos = from;
    int nline = 0;
    if (has_kw) *has_kw = 0;
    while (pos < to) {
        const uint8_t *l = h->in + pos, *nl = (const uint8_t *)memchr(l, '\n', to - pos);
        size_t len;
        if (!nl) return -1;
        len = (size_t)(nl - l);
        if (len && l[len - 1] == '\r') len--;
        if (len < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' || l[2] < '0' ||
            l[2] > '9')
            return -1;
        if (nline++ > 0 && kw && len > 4 && ieq_word(l + 4, len - 4, kw)) *has_kw = 1;
        pos = (size_t)(nl - h->in) + 1;
        if (len == 3 || l[3] != '-')
            return pos == to ? (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0') : -1;
    }
    return -1;
}

/* The first complete reply in in[from..upto): its code, -1 if none; kw as
   above. */
static int first_reply(const harness *h, size_t from, size_t upto, const char *kw, int *has_kw) {
    size_t pos = from;
    while (pos < upto) {
        const uint8_t *nl = (const uint8_t *)memchr(h->in + pos, '\n', upto - pos);
        size_t len;
        if (!nl) return -1;
        len = (size_t)(nl - (h->in + pos));
        if (len && h->in[pos + len - 1] == '\r') len--;
        if (len == 3 || (len > 3 && h->in[pos + 3] != '-'))
            return one_reply(h, from, (size_t)(nl - h->in) + 1, kw, has_kw);
        pos = (size_t)(nl - h->in) + 1;
    }
    return -1;
}

/* The end of the first complete reply from in[from] on (after its LF), or
   0 if the input holds none. Found in the input, since the client drops
   what it buffered when it upgrades. */
static size_t reply_end(const harness *h, size_t from) {
    size_t pos = from;
    while (pos < h->inlen) {
        const uint8_t *l = h->in + pos, *nl = (const uint8_t *)memchr(l, '\n', h->inlen - pos);
        size_t len;
        if (!nl) return 0;
        len = (size_t)(nl - l);
        if (len && l[len - 1] == '\r') len--;
        pos += (size_t)(nl - l) + 1;
        if (len == 3 || (len > 3 && l[3] != '-')) return pos;
    }
    return 0;
}

/* The 220 to STARTTLS is complete and the client read nothing past it. */
static void check_upgrade(const harness *h) {
    size_t e = reply_end(h, h->st_at);
    FUZZ_CHECK(e != 0 && one_reply(h, h->st_at, e, NULL, NULL) == 220);
    FUZZ_CHECK(h->inpos == e);
}

static void line_done(harness *h) {
    const char *l = h->line;
    size_t n = h->linelen, i, at = consumed(h);
    int kw;
    FUZZ_CHECK(n >= 2 && l[n - 2] == '\r' && l[n - 1] == '\n');
    for (i = 0; i + 2 < n; i++) FUZZ_CHECK(l[i] != '\r' && l[i] != '\n');
    FUZZ_CHECK(!h->dial_failed);
    switch (h->phase) {
    case 0: /* after the greeting, EHLO and nothing else */
        FUZZ_CHECK(n == sizeof "EHLO " HELO_NAME "\r\n" - 1 && memcmp(l, "EHLO " HELO_NAME "\r\n", n) == 0);
        FUZZ_CHECK(one_reply(h, 0, at, NULL, NULL) == 220);
        h->ehlo_at = at;
        h->phase = 1;
        break;
    case 1: /* STARTTLS only when the EHLO reply offered it */
        FUZZ_CHECK(n == 10 && memcmp(l, "STARTTLS\r\n", 10) == 0);
        FUZZ_CHECK(one_reply(h, h->ehlo_at, at, "STARTTLS", &kw) == 250 && kw);
        h->st_at = at;
        h->phase = 2;
        break;
    case 2: /* anything more only after a 220, nothing read past it */
        check_upgrade(h);
        FUZZ_CHECK(n == sizeof "EHLO " HELO_NAME "\r\n" - 1 && memcmp(l, "EHLO " HELO_NAME "\r\n", n) == 0);
        h->phase = 3;
        h->ehlo2 = 1;
        h->ehlo2_at = at; /* == inpos: the client kept nothing buffered */
        break;
    default: /* AUTH only if the reply to the latest EHLO offers it */
        if (n >= 5 && memcmp(l, "EHLO ", 5) == 0) h->ehlo2_at = at;
        if (n >= 5 && memcmp(l, "AUTH ", 5) == 0) {
            FUZZ_CHECK(h->ehlo2);
            FUZZ_CHECK(first_reply(h, h->ehlo2_at, at, "AUTH", &kw) == 250 && kw);
        }
        break;
    }
    h->linelen = 0;
    /* the server got the line it waited for */
    if (h->nextwait < h->nwaits && h->inpos == h->waits[h->nextwait]) h->nextwait++;
}

static int h_read(void *ctx, unsigned char *buf, size_t len) {
    harness *h = (harness *)ctx;
    size_t n = h->inlen - h->inpos;
    FUZZ_CHECK(!h->closed && buf != NULL && len > 0);
    if (h->nextwait < h->nwaits) {
        n = h->waits[h->nextwait] - h->inpos;
        if (n == 0) return TLSMAIL_ETIMEOUT; /* the server waits for us */
    }
    if (n > h->rsize) n = h->rsize;
    if (n > len) n = len;
    memcpy(buf, h->in + h->inpos, n);
    h->inpos += n;
    return (int)n;
}

static int h_write(void *ctx, const unsigned char *buf, size_t len) {
    harness *h = (harness *)ctx;
    size_t i, n = len < h->wmax ? len : h->wmax;
    FUZZ_CHECK(!h->closed && buf != NULL && len > 0);
    for (i = 0; i < n; i++) {
        FUZZ_CHECK(h->linelen < sizeof h->line);
        h->line[h->linelen++] = (char)buf[i];
        /* message text comes after DATA: only lines are checked here */
        if (buf[i] == '\n') line_done(h);
    }
    return (int)n;
}

static void h_close(void *ctx) {
    harness *h = (harness *)ctx;
    FUZZ_CHECK(!h->closed);
    h->closed = 1;
}

static harness *trace_h; /* the harness of the session being traced */

static void h_trace(void *ud, int dir, const char *line, size_t len) {
    (void)ud;
    (void)line;
    (void)len;
    FUZZ_CHECK(dir >= 0 && dir <= 3);
    if (trace_h->phase < 3) FUZZ_CHECK(dir & TLSMAIL_TRACE_PLAINTEXT);
}

static void check_rc(int rc) { FUZZ_CHECK(rc <= 0 && rc >= TLSMAIL__ERROR_LAST); }

static const char MSG[] = "From: fuzz@example.org\r\nTo: a@example.org\r\nSubject: fuzz\r\n\r\nhello\r\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const to[] = { "a@example.org" };
    tlsmail_client *c;
    tlsmail_trust trust;
    tlsmail_config cfg;
    tlsmail_io io;
    harness h;
    int rc;
    if (size < 1) return 0;
    c = (tlsmail_client *)malloc(sizeof *c);
    FUZZ_CHECK(c != NULL);
    memset(c, 0xA5, sizeof *c);
    memset(&h, 0, sizeof h);
    h.c = c;
    h.in = data + 1;
    h.inlen = size - 1;
    if (data[0] & 64) { /* turns: the NULs become wait points */
        uint8_t *clean = (uint8_t *)malloc(size);
        size_t i;
        FUZZ_CHECK(clean != NULL);
        h.inlen = 0;
        for (i = 1; i < size; i++) {
            if (data[i] != 0) clean[h.inlen++] = data[i];
            else if (h.nwaits < sizeof h.waits / sizeof h.waits[0]) h.waits[h.nwaits++] = h.inlen;
        }
        h.in = clean;
    }
    h.rsize = 1 + (size_t)(data[0] >> 1 & 15);
    h.wmax = (data[0] & 32) ? 5 : (size_t)-1;
    trace_h = &h;
    memset(&trust, 0, sizeof trust);
    FUZZ_CHECK(tlsmail_trust_pin_sha256(&trust, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=") == 0);
    io.ctx = &h;
    io.read = h_read;
    io.write = h_write;
    io.close = h_close;
    memset(&cfg, 0, sizeof cfg);
    cfg.host = "mail.example.org";
    cfg.security = TLSMAIL_SECURITY_STARTTLS;
    cfg.helo_name = HELO_NAME;
    cfg.trust = &trust;
    cfg.io = &io;
    cfg.trace = h_trace;

    if (!(data[0] & 1)) {
        tlsmail_auth a = tlsmail_plain_auth("", USER, PASS, "mail.example.org");
        rc = tlsmail_client_send(c, &cfg, &a, "from@example.org", to, 1, MSG, sizeof MSG - 1);
        check_rc(rc);
        if (rc == 0) FUZZ_CHECK(h.phase == 3);
        if (h.phase < 3) FUZZ_CHECK(rc != 0);
        if (verbose()) fprintf(stderr, "send: %d %s, stage %s, prelude phase %d\n", rc,
                               tlsmail_strerror(rc), tlsmail_stage_name(tlsmail_stage(c)), h.phase);
        tlsmail_close(c);
    } else {
        tlsmail_auth a = tlsmail_plain_auth("", USER, PASS, "mail.example.org");
        rc = tlsmail_dial(c, &cfg);
        check_rc(rc);
        if (verbose()) fprintf(stderr, "dial: %d %s, prelude phase %d\n", rc, tlsmail_strerror(rc), h.phase);
        FUZZ_CHECK(h.phase <= 2);
        if (rc != 0) {
            h.dial_failed = 1;
        } else {
            /* upgraded: what the plaintext EHLO said is gone */
            FUZZ_CHECK(h.phase == 2 && h.linelen == 0);
            check_upgrade(&h);
            FUZZ_CHECK(tlsmail_extension(c, "STARTTLS") == NULL);
            FUZZ_CHECK(tlsmail_reply_code(c) == 0 && tlsmail_reply_text(c)[0] == 0);
        }
        check_rc(tlsmail_hello(c));
        check_rc(tlsmail_authenticate(c, &a));
        check_rc(tlsmail_mail(c, "from@example.org"));
        check_rc(tlsmail_rcpt(c, to[0]));
        check_rc(tlsmail_data_begin(c));
        check_rc(tlsmail_data_write(c, MSG, sizeof MSG - 1));
        check_rc(tlsmail_data_end(c));
        check_rc(tlsmail_quit(c));
        tlsmail_close(c);
    }
    tlsmail_trust_free(&trust);
    free(c);
    if (h.in != data + 1) free((void *)h.in);
    return 0;
}
