/* fuzz_dot.c - the DATA encoder (tlsmail__dot_encode/finish).

   Input: byte 0 = k (low 3 bits: how many chunk-size bytes follow) and the
   output buffer size (high 5 bits: 2..33 octets); then k chunk sizes
   (1..256 each, cycled); the rest is the message. Properties:
   - whole (one call, big buffer) and chunked (small exact-size heap
     buffers, so ASan sees any overrun) give identical bytes and results;
   - TLSMAIL_ELINE exactly when a line of the CRLF-normalised message (CRLF,
     bare CR, bare LF -> CRLF) exceeds 998 octets, at the same input offset
     both ways;
   - otherwise the reference decoder (split at CRLF, drop one leading '.',
     stop at the lone '.') gives back the normalised message (final CRLF
     added if missing), the output has no lone CR or LF, and "<CRLF>.<CRLF>"
     occurs only as the final terminator (counting the CRLF that ended the
     DATA command before the body);
   - every call, whole or chunked, takes and gives exactly what the 0.1
     encoder (one byte at a time, step_ref in tests/lib/dot_ref.h) takes
     and gives from the same state: used, written, result and bytes. */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
#include "fuzz_common.h"
#include "../lib/dot_ref.h"

typedef struct {
    unsigned char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const unsigned char *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t nc = (b->len + n) * 2 + 64;
        unsigned char *np = (unsigned char *)realloc(b->p, nc);
        FUZZ_CHECK(np != NULL);
        b->p = np;
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* Reference normalisation; returns the first line (from 1) of more than
   998 octets, or 0. */
static size_t normalise(const unsigned char *m, size_t n, buf *out) {
    size_t i = 0, ll = 0, line = 1, toolong = 0;
    static const unsigned char crlf[2] = { '\r', '\n' };
    while (i < n) {
        if (m[i] == '\r') {
            put(out, crlf, 2);
            i += (i + 1 < n && m[i + 1] == '\n') ? 2 : 1;
            ll = 0;
            line++;
        } else if (m[i] == '\n') {
            put(out, crlf, 2);
            i++;
            ll = 0;
            line++;
        } else {
            put(out, m + i, 1);
            if (++ll > 998 && !toolong) toolong = line;
            i++;
        }
    }
    if (out->len && !(out->len >= 2 && out->p[out->len - 2] == '\r' && out->p[out->len - 1] == '\n'))
        put(out, crlf, 2);
    return toolong;
}

/* Reference decoder of the wire form: lines at CRLF, un-stuff, stop at ".". */
static void decode(const unsigned char *w, size_t n, buf *out) {
    size_t pos = 0;
    static const unsigned char crlf[2] = { '\r', '\n' };
    int ended = 0;
    while (pos < n) {
        size_t e = pos;
        while (e + 1 < n && !(w[e] == '\r' && w[e + 1] == '\n')) e++;
        FUZZ_CHECK(e + 1 < n); /* every line, the last too, ends in CRLF */
        if (e - pos == 1 && w[pos] == '.') {
            FUZZ_CHECK(e + 2 == n); /* the terminator is the very end */
            ended = 1;
            break;
        }
        if (w[pos] == '.' && e > pos) put(out, w + pos + 1, e - pos - 1);
        else put(out, w + pos, e - pos);
        put(out, crlf, 2);
        pos = e + 2;
    }
    FUZZ_CHECK(ended);
}


/* Encode msg; chunks NULL: one call with a big buffer. Returns rc and sets
   *eline_at to the input offset of the ELINE, *eline_line to the line the
   encoder was on. */
static int encode(const unsigned char *msg, size_t n, const unsigned char *chunks, size_t nchunks,
                  size_t outcap, buf *wire, size_t *eline_at, size_t *eline_line) {
    tlsmail__dot d;
    size_t pos = 0, ci = 0;
    unsigned char *out, *ref, *fin;
    tlsmail__dot_init(&d);
    if (!chunks) outcap = 2 * n + 2;
    out = (unsigned char *)malloc(outcap);
    ref = (unsigned char *)malloc(outcap);
    FUZZ_CHECK(out != NULL && ref != NULL);
    while (pos < n) {
        size_t want = chunks && nchunks ? 1 + (size_t)chunks[ci++ % nchunks] : n - pos;
        size_t end = pos + want > n ? n : pos + want;
        while (pos < end) {
            size_t used = (size_t)-1, written = (size_t)-1, rused, rwritten;
            tlsmail__dot rd = d;
            int rc = tlsmail__dot_encode(&d, msg + pos, end - pos, out, outcap, &used, &written);
            int rrc = step_ref(&rd, msg + pos, end - pos, ref, outcap, &rused, &rwritten);
            FUZZ_CHECK(used <= end - pos && written <= outcap);
            FUZZ_CHECK(rc == rrc && used == rused && written == rwritten);
            FUZZ_CHECK(written == 0 || memcmp(out, ref, written) == 0);
            FUZZ_CHECK(d.bol == rd.bol && d.cr == rd.cr && d.linelen == rd.linelen && d.line == rd.line);
            put(wire, out, written);
            pos += used;
            if (rc) {
                FUZZ_CHECK(rc == TLSMAIL_ELINE);
                *eline_at = pos;
                *eline_line = d.line;
                free(out);
                free(ref);
                return rc;
            }
            if (!chunks) FUZZ_CHECK(pos == end);
            FUZZ_CHECK(used > 0 || written > 0); /* progress with cap >= 2 */
        }
    }
    free(out);
    free(ref);
    fin = (unsigned char *)malloc(5); /* the documented worst case: CRLF . CRLF */
    FUZZ_CHECK(fin != NULL);
    put(wire, fin, tlsmail__dot_finish(&d, fin));
    free(fin);
    FUZZ_CHECK(d.bol == 1 && d.cr == 0 && d.linelen == 0); /* ready for the next message */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    buf norm = { NULL, 0, 0 }, w1 = { NULL, 0, 0 }, w2 = { NULL, 0, 0 }, dec = { NULL, 0, 0 };
    size_t k, outcap, e1 = 0, e2 = 0, l1 = 0, l2 = 0, i, toolong;
    const unsigned char *chunks, *msg;
    size_t msglen;
    int rc1, rc2;
    if (size < 1) return 0;
    k = data[0] & 7;
    outcap = 2 + (size_t)(data[0] >> 3);
    if (size < 1 + k) return 0;
    chunks = data + 1;
    msg = data + 1 + k;
    msglen = size - 1 - k;

    toolong = normalise(msg, msglen, &norm);
    rc1 = encode(msg, msglen, NULL, 0, 0, &w1, &e1, &l1);
    rc2 = encode(msg, msglen, chunks, k, outcap, &w2, &e2, &l2);
    FUZZ_CHECK(rc1 == rc2);
    FUZZ_CHECK(w1.len == w2.len && (w1.len == 0 || memcmp(w1.p, w2.p, w1.len) == 0));
    FUZZ_CHECK((rc1 == TLSMAIL_ELINE) == (toolong != 0));
    {
        tlsmail__msginfo mi; /* the one call's check before anything is sent */
        tlsmail__msg_scan(msg, msglen, &mi);
        FUZZ_CHECK(mi.longline == toolong);
    }
    if (rc1) FUZZ_CHECK(e1 == e2 && l1 == toolong && l2 == toolong); /* tlsmail_error_line's */
    /* no lone CR or LF, even in a partial output */
    for (i = 0; i < w1.len; i++) {
        if (w1.p[i] == '\r') FUZZ_CHECK(i + 1 < w1.len && w1.p[i + 1] == '\n');
        if (w1.p[i] == '\n') FUZZ_CHECK(i > 0 && w1.p[i - 1] == '\r');
    }
    /* "<CRLF>.<CRLF>" (the DATA command's CRLF before the body counts) only
       at the very end, and only when finished */
    for (i = 0; i + 3 <= w1.len; i++) {
        int at_bol = i == 0 || (i >= 2 && w1.p[i - 2] == '\r' && w1.p[i - 1] == '\n');
        if (at_bol && w1.p[i] == '.' && w1.p[i + 1] == '\r' && w1.p[i + 2] == '\n')
            FUZZ_CHECK(rc1 == 0 && i + 3 == w1.len);
    }
    if (rc1 == 0) {
        decode(w1.p, w1.len, &dec);
        FUZZ_CHECK(dec.len == norm.len && (dec.len == 0 || memcmp(dec.p, norm.p, dec.len) == 0));
    }
    free(norm.p);
    free(w1.p);
    free(w2.p);
    free(dec.p);
    return 0;
}
