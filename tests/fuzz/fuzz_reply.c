/* fuzz_reply.c - the streaming SMTP reply parser (tlsmail__reply_feed).

   The input is the server's byte stream. It is parsed three ways: whole,
   byte by byte, and in chunks whose sizes come from a hash of the input;
   every way must give the same transcript (each line handed out, each error
   and where it happened). Every returned line is checked: a 3-digit code
   200..599 whose first digit is 2-5, len <= TLSMAIL_MAX_LINE, a
   NUL-terminated line of that length, nlines in 1..TLSMAIL_MAX_REPLY_LINES,
   and a call never consumes more than it was given. After an error the
   parser is re-initialised and parsing resumes one byte later, so one input
   exercises many replies. The same input also goes through the masking of
   a secret quoted back (mask() below). */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
#include "fuzz_common.h"

typedef struct {
    char *buf;
    size_t len, cap;
} transcript;

static void tr_put(transcript *t, const void *p, size_t n) {
    if (t->len + n > t->cap) {
        size_t nc = (t->len + n) * 2 + 256;
        char *nb = (char *)realloc(t->buf, nc);
        FUZZ_CHECK(nb != NULL);
        t->buf = nb;
        t->cap = nc;
    }
    memcpy(t->buf + t->len, p, n);
    t->len += n;
}

static void check_line(const tlsmail__reply *r) {
    const char *text;
    FUZZ_CHECK(r->code >= 200 && r->code <= 599);
    FUZZ_CHECK(r->len >= 3 && r->len <= TLSMAIL_MAX_LINE);
    FUZZ_CHECK(r->line[r->len] == '\0' && strlen(r->line) == r->len);
    FUZZ_CHECK(r->line[0] >= '2' && r->line[0] <= '5');
    FUZZ_CHECK((r->line[0] - '0') * 100 + (r->line[1] - '0') * 10 + (r->line[2] - '0') ==
               r->code);
    FUZZ_CHECK(r->nlines >= 1 && r->nlines <= TLSMAIL_MAX_REPLY_LINES);
    FUZZ_CHECK(r->done == 0 || r->done == 1);
    FUZZ_CHECK(r->done ? (r->len == 3 || r->line[3] == ' ') : r->line[3] == '-');
    FUZZ_CHECK(strchr(r->line, '\r') == NULL && strchr(r->line, '\n') == NULL);
    text = tlsmail__reply_text(r);
    FUZZ_CHECK(text >= r->line && text <= r->line + r->len);
}

/* chunk: 0 = whole, 1 = byte by byte, else sizes drawn from seed. */
static void run(const uint8_t *data, size_t size, int mode, transcript *t) {
    tlsmail__reply r;
    size_t pos = 0, chunk_end = 0;
    uint64_t seed = fuzz_hash(data, size);
    tlsmail__reply_init(&r);
    while (pos < size) {
        size_t n, used = (size_t)-1;
        int rc;
        if (pos >= chunk_end) {
            size_t step = mode == 0 ? size : mode == 1 ? 1 : 1 + (size_t)(fuzz_next(&seed) % 37);
            chunk_end = pos + step > size ? size : pos + step;
        }
        n = chunk_end - pos;
        rc = tlsmail__reply_feed(&r, data + pos, n, &used);
        FUZZ_CHECK(used <= n);
        if (rc == 1) {
            char rec[64];
            int k;
            FUZZ_CHECK(used >= 1 && data[pos + used - 1] == '\n');
            check_line(&r);
            k = snprintf(rec, sizeof rec, "L%lu %d %d %d %lu|", (unsigned long)(pos + used),
                         r.code, r.done, r.nlines, (unsigned long)r.len);
            tr_put(t, rec, (size_t)k);
            tr_put(t, r.line, r.len + 1);
            pos += used;
        } else if (rc == 0) {
            FUZZ_CHECK(used == n);
            pos += used;
        } else {
            char rec[64];
            int k;
            FUZZ_CHECK(rc == TLSMAIL_EPROTO);
            k = snprintf(rec, sizeof rec, "E%lu|", (unsigned long)(pos + used));
            tr_put(t, rec, (size_t)k);
            /* resume after the offending byte */
            pos += used + 1;
            tlsmail__reply_init(&r);
        }
    }
}

/* tlsmail__mask_echo on a reply line: the first octet's low 4 bits are the
   length of the echo (up to 16, as the client keeps), the next octets the
   echo, the rest the line. It stays within the line, never grows it, ends
   it with a NUL, and leaves no copy of an echo of base64 octets longer
   than "secret" behind. */
static void mask(const uint8_t *data, size_t size) {
    char echo[17], *line;
    size_t el, n, r, i;
    int b64 = 1;
    if (size == 0) return;
    el = data[0] & 15u;
    if (el + 1 > size) el = size - 1;
    memcpy(echo, data + 1, el);
    echo[el] = 0;
    el = strlen(echo);
    for (i = 0; i < el; i++) b64 &= tlsmail__b64_val((unsigned char)echo[i]) >= 0;
    n = size - 1 - (data[0] & 15u < size - 1 ? (size_t)(data[0] & 15u) : size - 1);
    line = (char *)malloc(n + 1);
    FUZZ_CHECK(line != NULL);
    memcpy(line, data + size - n, n);
    line[n] = 0;
    r = tlsmail__mask_echo(line, n, echo);
    FUZZ_CHECK(r <= n && line[r] == 0);
    if (b64 && el > 6 && !memchr(line, 0, r)) FUZZ_CHECK(strstr(line, echo) == NULL);
    free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    transcript a = { NULL, 0, 0 }, b = { NULL, 0, 0 }, c = { NULL, 0, 0 };
    mask(data, size);
    run(data, size, 0, &a);
    run(data, size, 1, &b);
    run(data, size, 2, &c);
    FUZZ_CHECK(a.len == b.len && (a.len == 0 || memcmp(a.buf, b.buf, a.len) == 0));
    FUZZ_CHECK(a.len == c.len && (a.len == 0 || memcmp(a.buf, c.buf, a.len) == 0));
    free(a.buf);
    free(b.buf);
    free(c.buf);
    return 0;
}
