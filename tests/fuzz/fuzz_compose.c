/* fuzz_compose.c - tlsmail_compose on messages built from the input.

   Input: byte 0 = flags, then NUL-separated fields, missing ones empty:
     bits 0-1  number of To mailboxes (0..3)     bits 2-3  number of Cc (0..3)
     bit 4     Date generated (NULL), else fixed  bit 5     a Message-ID field
               (else NULL: generated)             bit 6     Subject NULL
     bit 7     also compose into too small buffers
   fields: from, to..., cc..., subject, [message_id], then the body: all the
   rest, NULs included.

   Properties:
   - the size query and the real write agree: same result, same length;
     with a buffer one octet short (or less), TLSMAIL_ENOMEM, the needed size
     in *len and no write past the buffer (ASan: buffers are exact);
   - the result is what the documented rules predict: a model of the input
     rules below says "valid" (then 0 is required), "invalid" (then EINVAL)
     or, for names whose words are close to the 998-octet line limit, that
     either is fine;
   - every line ends in CRLF, no bare CR or LF; header lines at most 998
     octets, 76 when they hold an encoded word (RFC 2047 2); no folded line
     is white space only; the header fields are the documented ones, in
     order;
   - the output parses back: From, To and Cc, read as RFC 5322 mailbox
     lists with RFC 2047 words decoded, give each input mailbox's name and
     address; the unfolded Subject, decoded, is the input subject; Date and
     Message-ID are as given or of the generated form;
   - the body is 7bit exactly when the rules say so, and decodes (7bit or
     quoted-printable, RFC 2045 6.7) to the input with CRLF line ends;
   - tlsmail_format_mailbox(from) is the From field body.
   The readers here are written from the RFCs, not from the composer. */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
#include "fuzz_common.h"
#include "addr_ref.h"
#include "../lib/mime_ref.h"

#define FIXED_DATE "Sat, 28 Nov 2026 18:27:24 +0000"

typedef struct { const char *s; size_t n; } span;

static int verbose(void) {
    static int v = -1;
    if (v < 0) v = getenv("FUZZ_VERBOSE") != NULL;
    return v;
}

/* ---- the input rules, as documented --------------------------------------- */

/* RFC 3629 well-formed UTF-8, by the table of its section 4. */
static int utf8_ok(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        unsigned lo = 0x80, hi = 0xBF;
        size_t j;
        if (k == 0 || i + k > n) return 0;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
        for (j = 1; j < k; j++) {
            if (s[i + j] < (j == 1 ? lo : 0x80) || s[i + j] > (j == 1 ? hi : 0xBF)) return 0;
        }
        i += k;
    }
    return 1;
}

/* A header value: UTF-8, no control character but TAB. */
static int hvalue_ok(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7F) return 0;
    }
    return utf8_ok((const unsigned char *)s, n);
}

static int is_wsp(int c) { return c == ' ' || c == '\t'; }

enum { BAD = 0, GOOD = 1, EITHER = 2 };

typedef struct {
    char name[1100];
    size_t nlen;
    char addr[256];
    size_t alen;
} mailbox;

/* What the composer's doc says of one mailbox: "addr" or "Display Name
   <addr>", surrounding white space trimmed, a name in quotes taken as its
   content. Fills mb; returns BAD, GOOD, or EITHER when a word of the name
   (with the white space before it) is so long that the 998-octet line may
   not hold it. */
static int model_mailbox(const char *in, mailbox *mb) {
    size_t n = strlen(in), b = 0, e = n, i, lt = (size_t)-1, run = 0, maxrun = 0;
    const char *name = NULL;
    size_t nlen = 0;
    memset(mb, 0, sizeof *mb);
    if (!hvalue_ok(in, n)) return BAD;
    while (b < e && is_wsp(in[b])) b++;
    while (e > b && is_wsp(in[e - 1])) e--;
    if (e > b && in[e - 1] == '>')
        for (i = b; i < e; i++)
            if (in[i] == '<') lt = i;
    if (lt != (size_t)-1) {
        name = in + b;
        nlen = lt - b;
        while (nlen && is_wsp(name[nlen - 1])) nlen--;
        b = lt + 1;
        e--;
    }
    if (e - b == 0 || e - b > 255) return BAD;
    memcpy(mb->addr, in + b, e - b);
    mb->alen = e - b;
    if (!ref_check(mb->addr, REF_MAILBOX)) return BAD;
    if (nlen >= 2 && name[0] == '"' && name[nlen - 1] == '"') {
        /* RFC 5322 3.2.4 quoted-string content: qtext and quoted-pairs */
        for (i = 1; i + 1 < nlen; i++) {
            if (name[i] == '"') return BAD;
            if (name[i] == '\\') {
                if (i + 2 >= nlen) return BAD; /* escapes the closing quote */
                i++;
            }
            if (mb->nlen >= 1023) return BAD;
            mb->name[mb->nlen++] = name[i];
        }
    } else {
        if (nlen > 1023) return BAD;
        if (nlen) memcpy(mb->name, name, nlen);
        mb->nlen = nlen;
    }
    /* Encoded names never fail; others are written unit by unit (white
       space and the word after it: no fold splits one), at worst doubled
       by quoting. */
    for (i = 0; i < mb->nlen; i++) {
        int wsp = is_wsp(mb->name[i]);
        run = wsp && i > 0 && !is_wsp(mb->name[i - 1]) ? 1 : run + 1;
        if (run > maxrun) maxrun = run;
    }
    if (2 * maxrun + 2 >= 900) {
        int ascii = 1;
        for (i = 0; i < mb->nlen; i++)
            if ((unsigned char)mb->name[i] >= 0x80) ascii = 0;
        for (i = 0; i + 1 < mb->nlen; i++)
            if (mb->name[i] == '=' && mb->name[i + 1] == '?') ascii = 0;
        if (ascii) return EITHER;
    }
    return GOOD;
}

/* msg-id as documented: printable ASCII, at most 900 octets, "<id@host>"
   with the brackets optional and no others inside. */
static int model_msgid(const char *id) {
    size_t n = strlen(id), i;
    if (n == 0 || n > 900) return BAD;
    for (i = 0; i < n; i++)
        if ((unsigned char)id[i] < 0x21 || (unsigned char)id[i] > 0x7E) return BAD;
    if (id[0] == '<') {
        if (n < 3 || id[n - 1] != '>') return BAD;
        id++;
        n -= 2;
    }
    for (i = 0; i < n; i++)
        if (id[i] == '<' || id[i] == '>') return BAD;
    return memchr(id, '@', n) ? GOOD : BAD;
}

/* ---- readers for the output ------------------------------------------------- */

/* Unfolded value of header field name in hdr[0..n) (RFC 5322 2.2.3: remove
   every CRLF followed by WSP), or -1 if the field is absent. */
static long field(const char *hdr, size_t n, const char *name, char *out, size_t cap) {
    size_t nl = strlen(name), i = 0, o = 0;
    while (i < n) {
        size_t e = i;
        while (e + 1 < n && !(hdr[e] == '\r' && hdr[e + 1] == '\n')) e++;
        if (e - i > nl && memcmp(hdr + i, name, nl) == 0 && hdr[i + nl] == ':') {
            size_t p = i + nl + 1;
            for (;;) {
                if (p + 2 < n && hdr[p] == '\r' && hdr[p + 1] == '\n' && is_wsp(hdr[p + 2])) {
                    p += 2;
                    continue;
                }
                if (p + 1 >= n || (hdr[p] == '\r' && hdr[p + 1] == '\n')) break;
                FUZZ_CHECK(o + 1 < cap);
                out[o++] = hdr[p++];
            }
            out[o] = 0;
            return (long)o;
        }
        i = e + 2;
    }
    return -1;
}

static int b64v(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* RFC 2045 6.8 base64, strict: whole groups, padding only at the end. */
static long b64dec(const char *s, size_t n, unsigned char *out) {
    size_t i, o = 0;
    if (n % 4) return -1;
    for (i = 0; i < n; i += 4) {
        int v[4], k, pad = 0;
        for (k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) { v[k] = 0; pad++; continue; }
            if (pad || (v[k] = b64v((unsigned char)s[i + k])) < 0) return -1;
        }
        out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        if (pad < 2) out[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
        if (pad < 1) out[o++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
    }
    return (long)o;
}

/* An RFC 2047 encoded-word at s[0..n) exactly: "=?" charset "?" B/Q "?"
   text "?=". Returns 1 and its decoding (checked: at most 75 characters,
   UTF-8, base64, whole characters) in out, or 0 if s is no encoded word. */
static int encoded_word(const char *s, size_t n, char *out, size_t *olen) {
    size_t i, q1, q2;
    long k;
    if (n < 8 || memcmp(s, "=?", 2) != 0 || memcmp(s + n - 2, "?=", 2) != 0) return 0;
    for (q1 = 2; q1 < n - 2 && s[q1] != '?'; q1++) {}
    if (q1 + 2 >= n - 2 || s[q1 + 2] != '?') return 0;
    q2 = q1 + 2;
    for (i = q2 + 1; i < n - 2; i++)
        if (s[i] == '?' || is_wsp(s[i])) return 0;
    /* It is one: the composer writes only its own kind. */
    FUZZ_CHECK(n <= 75);
    FUZZ_CHECK(q1 == 7 && memcmp(s + 2, "UTF-8", 5) == 0 && s[q1 + 1] == 'B');
    k = b64dec(s + q2 + 1, n - 2 - (q2 + 1), (unsigned char *)out);
    FUZZ_CHECK(k > 0);
    FUZZ_CHECK(utf8_ok((const unsigned char *)out, (size_t)k));
    *olen = (size_t)k;
    return 1;
}

/* Appends to a bounded buffer. */
static void put(char *dst, size_t *o, size_t cap, const char *s, size_t n) {
    FUZZ_CHECK(*o + n <= cap);
    memcpy(dst + *o, s, n);
    *o += n;
}

/* RFC 2047 6.2: white space between two encoded words is dropped; any
   other white space, and every other token, stays as it is. */
typedef struct { char *dst; size_t o, cap; int last_enc; span ws; } joiner;

static void join_token(joiner *j, const char *s, size_t n, int enc) {
    if (!(enc && j->last_enc)) put(j->dst, &j->o, j->cap, j->ws.s, j->ws.n);
    put(j->dst, &j->o, j->cap, s, n);
    j->last_enc = enc;
    j->ws.n = 0;
}

/* Unstructured text (Subject): tokens between white space. */
static size_t decode_unstructured(const char *v, size_t n, char *dst, size_t cap) {
    joiner j;
    size_t i = 0;
    memset(&j, 0, sizeof j);
    j.dst = dst;
    j.cap = cap;
    while (i < n) {
        size_t b = i, e;
        while (i < n && is_wsp(v[i])) i++;
        j.ws.s = v + b;
        j.ws.n = i - b;
        if (i == n) break;
        for (e = i; e < n && !is_wsp(v[e]); e++) {}
        {
            char dec[80];
            size_t dl;
            if (encoded_word(v + i, e - i, dec, &dl)) join_token(&j, dec, dl, 1);
            else {
                size_t k; /* plain text never looks like the start of a word */
                for (k = i; k + 1 < e; k++) FUZZ_CHECK(!(v[k] == '=' && v[k + 1] == '?'));
                join_token(&j, v + i, e - i, 0);
            }
        }
        i = e;
    }
    put(dst, &j.o, cap, j.ws.s, j.ws.n); /* trailing white space */
    return j.o;
}

/* RFC 5322 3.2.4 quoted-string at v[*i]: content (quoted-pairs undone) into
   dst; the closing quote must come. */
static void quoted(const char *v, size_t n, size_t *i, char *dst, size_t *o, size_t cap) {
    size_t p = *i + 1;
    for (;;) {
        FUZZ_CHECK(p < n);
        if (v[p] == '"') break;
        if (v[p] == '\\') {
            p++;
            FUZZ_CHECK(p < n);
        }
        put(dst, o, cap, v + p, 1);
        p++;
    }
    *i = p + 1;
}

/* addr-spec (RFC 5322 3.4.1, with RFC 6532 UTF-8) at v[*i]: its text. */
static int addr_spec(const char *v, size_t n, size_t *i, span *a) {
    size_t p = *i;
    if (p < n && v[p] == '"') {
        for (p++; p < n && v[p] != '"'; p++)
            if (v[p] == '\\') p++;
        if (p >= n) return 0;
        p++;
    } else {
        while (p < n && !strchr(" \t<>,@\"[]", v[p])) p++;
    }
    if (p == *i || p >= n || v[p] != '@') return 0;
    p++;
    if (p < n && v[p] == '[') {
        while (p < n && v[p] != ']') p++;
        if (p >= n) return 0;
        p++;
    } else {
        size_t d = p;
        while (p < n && !strchr(" \t<>,@\"[]", v[p])) p++;
        if (p == d) return 0;
    }
    a->s = v + *i;
    a->n = p - *i;
    *i = p;
    return 1;
}

/* A mailbox list (RFC 5322 3.4): each name-addr's phrase decoded (RFC 2047
   5(3): encoded words as whole words of it), checked against want[]. */
static void check_mailboxes(const char *v, size_t n, const mailbox *want, size_t nwant) {
    size_t i = 0, k;
    for (k = 0; k < nwant; k++) {
        static char name[4096];
        span a;
        size_t save;
        while (i < n && is_wsp(v[i])) i++;
        save = i;
        if (addr_spec(v, n, &i, &a) && (i == n || v[i] == ',')) {
            FUZZ_CHECK(want[k].nlen == 0);
        } else {
            joiner j;
            i = save;
            memset(&j, 0, sizeof j);
            j.dst = name;
            j.cap = sizeof name;
            while (i < n && v[i] != '<') {
                size_t b = i;
                while (i < n && is_wsp(v[i])) i++;
                j.ws.s = v + b;
                j.ws.n = i - b;
                FUZZ_CHECK(i < n);
                if (v[i] == '<') break;
                if (v[i] == '"') {
                    char q[2100];
                    size_t ql = 0, z;
                    quoted(v, n, &i, q, &ql, sizeof q);
                    for (z = 0; z + 1 < ql; z++) FUZZ_CHECK(!(q[z] == '=' && q[z + 1] == '?'));
                    join_token(&j, q, ql, 0);
                } else {
                    size_t e = i;
                    char dec[80];
                    size_t dl;
                    while (e < n && !strchr(" \t<\",", v[e])) e++;
                    FUZZ_CHECK(e > i);
                    if (encoded_word(v + i, e - i, dec, &dl)) {
                        join_token(&j, dec, dl, 1);
                    } else {
                        size_t z; /* an atom: RFC 5322 atext only */
                        for (z = i; z < e; z++)
                            FUZZ_CHECK(tlsmail__isalnum((unsigned char)v[z]) ||
                                       strchr("!#$%&'*+-/=?^_`{|}~", v[z]));
                        for (z = i; z + 1 < e; z++) FUZZ_CHECK(!(v[z] == '=' && v[z + 1] == '?'));
                        join_token(&j, v + i, e - i, 0);
                    }
                    i = e;
                }
            }
            FUZZ_CHECK(i < n && v[i] == '<');
            FUZZ_CHECK(j.ws.n == 1); /* one space before "<" */
            i++;
            FUZZ_CHECK(addr_spec(v, n, &i, &a));
            FUZZ_CHECK(i < n && v[i] == '>');
            i++;
            FUZZ_CHECK(j.o == want[k].nlen && memcmp(name, want[k].name, j.o) == 0);
        }
        FUZZ_CHECK(a.n == want[k].alen && memcmp(a.s, want[k].addr, a.n) == 0);
        if (k + 1 < nwant) {
            FUZZ_CHECK(i + 1 < n && v[i] == ',' && v[i + 1] == ' ');
            i++;
        }
    }
    FUZZ_CHECK(i == n);
}

/* "Sat, 28 Nov 2026 18:27:24 +0000" (RFC 5322 3.3, UTC) */
static int is_date(const char *d) {
    static const char days[] = "MonTueWedThuFriSatSun", mons[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    static const int digits[] = { 5, 6, 12, 13, 14, 15, 17, 18, 20, 21, 23, 24 };
    int ok = 0, i;
    if (strlen(d) != 31 || strcmp(d + 25, " +0000") != 0) return 0;
    for (i = 0; i < 7; i++) ok |= memcmp(d, days + 3 * i, 3) == 0;
    for (i = 0; i < 12; i++) ok |= (memcmp(d + 8, mons + 3 * i, 3) == 0) << 1;
    for (i = 0; i < 12; i++)
        if (!tlsmail__isdigit((unsigned char)d[digits[i]])) return 0;
    return ok == 3 && memcmp(d + 3, ", ", 2) == 0 && d[7] == ' ' && d[11] == ' ' &&
           d[16] == ' ' && d[19] == ':' && d[22] == ':';
}

/* ---- the target -------------------------------------------------------------- */

typedef struct {
    const char *from, *to[3], *cc[3], *subject, *msgid;
    size_t nto, ncc;
    const char *body;
    size_t body_len;
    int flags;
} input;

/* needle in hay[0..n), or NULL: the output has no NUL after it. */
static const char *find(const char *hay, size_t n, const char *needle) {
    size_t k = strlen(needle), i;
    for (i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0) return hay + i;
    return NULL;
}

static void check_output(const input *in, const tlsmail_message *m, const char *o, size_t n,
                         const mailbox *mfrom, const mailbox *mto, const mailbox *mcc) {
    static char v[1 << 16], dec[1 << 16], want[1 << 17];
    static const char *const order[] = { "From", "To", "Cc", "Subject", "Date", "Message-ID",
                                         "MIME-Version", "Content-Type",
                                         "Content-Transfer-Encoding" };
    size_t i, hend = 0, k, nf = 0;
    long vl;
    int qp = 0;
    /* lines: CRLF only; header lines and fields */
    for (i = 0; i < n; i++) {
        FUZZ_CHECK(o[i] != '\n' || (i > 0 && o[i - 1] == '\r'));
        FUZZ_CHECK(o[i] != '\r' || (i + 1 < n && o[i + 1] == '\n'));
    }
    FUZZ_CHECK(n >= 2 && o[n - 2] == '\r' && o[n - 1] == '\n');
    for (i = 0; i < n;) {
        const char *l = o + i, *e = find(l, n - i, "\r\n");
        size_t ll, z;
        int enc = 0, blank = 1;
        FUZZ_CHECK(e != NULL);
        ll = (size_t)(e - l);
        i += ll + 2;
        if (ll == 0) { hend = i; break; }
        FUZZ_CHECK(ll <= 998);
        /* an encoded word is a token of its own, "=?...?=" (an address
           may hold "=?": RFC 2047 5 never reads words there) */
        for (z = 0; z < ll;) {
            size_t te = z;
            while (te < ll && !is_wsp(l[te])) te++;
            enc |= te - z >= 4 && memcmp(l + z, "=?", 2) == 0 && memcmp(l + te - 2, "?=", 2) == 0;
            z = te + 1;
        }
        if (enc) FUZZ_CHECK(ll <= 76);
        for (z = 0; z < ll; z++) blank &= is_wsp(l[z]);
        FUZZ_CHECK(!blank);
        if (!is_wsp(l[0])) {
            const char *colon = (const char *)memchr(l, ':', ll);
            FUZZ_CHECK(colon != NULL);
            while (nf < 9 && !((size_t)(colon - l) == strlen(order[nf]) &&
                               memcmp(l, order[nf], strlen(order[nf])) == 0))
                nf++;
            FUZZ_CHECK(nf < 9); /* a known field, in order */
            FUZZ_CHECK((nf != 1 || in->nto) && (nf != 2 || in->ncc));
            nf++;
        }
    }
    FUZZ_CHECK(hend > 0 && nf == 9);

    FUZZ_CHECK((vl = field(o, hend, "From", v, sizeof v)) >= 1 && v[0] == ' ');
    check_mailboxes(v + 1, (size_t)vl - 1, mfrom, 1);
    {   /* tlsmail_format_mailbox writes the same field body */
        char fb[4096];
        size_t fl = 0, hl;
        const char *h = o + 5, *he = find(o, hend, "\r\nTo:");
        if (!he) he = find(o, hend, "\r\nCc:");
        if (!he) he = find(o, hend, "\r\nSubject:");
        FUZZ_CHECK(tlsmail_format_mailbox(in->from, fb, sizeof fb, &fl) == 0);
        hl = (size_t)(he - h);
        FUZZ_CHECK(fl == hl && memcmp(fb, h, fl) == 0);
    }
    if (in->nto) {
        FUZZ_CHECK((vl = field(o, hend, "To", v, sizeof v)) >= 1 && v[0] == ' ');
        check_mailboxes(v + 1, (size_t)vl - 1, mto, in->nto);
    }
    if (in->ncc) {
        FUZZ_CHECK((vl = field(o, hend, "Cc", v, sizeof v)) >= 1 && v[0] == ' ');
        check_mailboxes(v + 1, (size_t)vl - 1, mcc, in->ncc);
    }
    FUZZ_CHECK((vl = field(o, hend, "Subject", v, sizeof v)) >= 0);
    {
        const char *s = in->subject ? in->subject : "";
        size_t dl;
        if (*s) FUZZ_CHECK(v[0] == ' ');
        dl = *s ? decode_unstructured(v + 1, (size_t)vl - 1, dec, sizeof dec) : (size_t)vl;
        FUZZ_CHECK(dl == strlen(s) && memcmp(dec, s, dl) == 0);
    }
    FUZZ_CHECK(field(o, hend, "Date", v, sizeof v) == 32 && v[0] == ' ');
    if (m->date) FUZZ_CHECK(strcmp(v + 1, FIXED_DATE) == 0);
    else FUZZ_CHECK(is_date(v + 1));
    FUZZ_CHECK((vl = field(o, hend, "Message-ID", v, sizeof v)) >= 3 && v[0] == ' ');
    if (in->msgid) {
        const char *id = in->msgid;
        size_t il = strlen(id);
        if (id[0] == '<') FUZZ_CHECK((size_t)vl == il + 1 && memcmp(v + 1, id, il) == 0);
        else FUZZ_CHECK((size_t)vl == il + 3 && v[1] == '<' && memcmp(v + 2, id, il) == 0 && v[vl - 1] == '>');
    } else {
        /* "<32 hex@domain>": the From domain when it is an ASCII host name */
        const char *dom = "localhost";
        char d[256];
        size_t at = 0;
        /* the '@' after the local part: a quoted one may hold '@', and so
           may a General-address-literal */
        if (mfrom->addr[0] == '"')
            for (at = 1; mfrom->addr[at] != '"'; at++)
                if (mfrom->addr[at] == '\\') at++;
        while (at < mfrom->alen && mfrom->addr[at] != '@') at++;
        at++;
        if (at < mfrom->alen) {
            size_t dl = mfrom->alen - at, z;
            int ascii = 1;
            memcpy(d, mfrom->addr + at, dl);
            d[dl] = 0;
            for (z = 0; z < dl; z++) ascii &= (unsigned char)d[z] < 0x80;
            if (ascii && d[0] != '[') dom = d;
        }
        FUZZ_CHECK((size_t)vl == 1 + 1 + 32 + 1 + strlen(dom) + 1);
        for (k = 2; k < 34; k++) FUZZ_CHECK(strchr("0123456789abcdef", v[k]) != NULL);
        FUZZ_CHECK(v[1] == '<' && v[34] == '@' && memcmp(v + 35, dom, strlen(dom)) == 0);
    }
    FUZZ_CHECK(field(o, hend, "MIME-Version", v, sizeof v) >= 0 && strcmp(v, " 1.0") == 0);
    FUZZ_CHECK(field(o, hend, "Content-Type", v, sizeof v) >= 0 &&
               strcmp(v, " text/plain; charset=UTF-8") == 0);
    FUZZ_CHECK(field(o, hend, "Content-Transfer-Encoding", v, sizeof v) >= 0);
    /* 7bit exactly when the text is ASCII without NUL, no line over 998 */
    {
        size_t ll = 0;
        for (i = 0; i < in->body_len; i++) {
            unsigned char c = (unsigned char)in->body[i];
            if (c >= 0x80 || c == 0) qp = 1;
            if (c == '\r' || c == '\n') ll = 0;
            else if (++ll > 998) qp = 1;
        }
    }
    FUZZ_CHECK(strcmp(v, qp ? " quoted-printable" : " 7bit") == 0);
    k = normalise(in->body, in->body_len, want);
    if (qp) {
        long dl = decode_qp(o + hend, n - hend, dec, sizeof dec);
        FUZZ_CHECK(dl >= 0 && (size_t)dl == k && memcmp(dec, want, k) == 0);
    } else {
        FUZZ_CHECK(n - hend == k && memcmp(o + hend, want, k) == 0);
    }
}

/* NUL-separated field j of the input, or "" past its end. */
static const char *next_field(const uint8_t **p, const uint8_t *end, char **store) {
    const uint8_t *z = *p < end ? (const uint8_t *)memchr(*p, 0, (size_t)(end - *p)) : NULL;
    size_t n = z ? (size_t)(z - *p) : (size_t)(end - *p);
    char *s = *store;
    if (*p >= end) n = 0;
    memcpy(s, *p, n);
    s[n] = 0;
    *store += n + 1;
    *p = z ? z + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static mailbox mfrom, mto[3], mcc[3];
    const uint8_t *p = data + 1, *end = data + size;
    char *store, *strings;
    input in;
    tlsmail_message m;
    size_t need = 0, got = 0, k;
    int rc_q, rc_w, expect = GOOD;
    char *buf;
    if (size < 1) return 0;
    memset(&in, 0, sizeof in);
    in.flags = data[0];
    in.nto = (size_t)(data[0] & 3);
    in.ncc = (size_t)(data[0] >> 2 & 3);
    strings = store = (char *)malloc(2 * size + 16);
    FUZZ_CHECK(strings != NULL);
    in.from = next_field(&p, end, &store);
    for (k = 0; k < in.nto; k++) in.to[k] = next_field(&p, end, &store);
    for (k = 0; k < in.ncc; k++) in.cc[k] = next_field(&p, end, &store);
    in.subject = next_field(&p, end, &store);
    if (data[0] & 64) in.subject = NULL;
    if (data[0] & 32) in.msgid = next_field(&p, end, &store);
    in.body = (const char *)p;
    in.body_len = (size_t)(end - p);

    memset(&m, 0, sizeof m);
    m.from = in.from;
    m.to = in.to;
    m.nto = in.nto;
    m.cc = in.cc;
    m.ncc = in.ncc;
    m.subject = in.subject;
    m.body = in.body;
    m.body_len = in.body_len;
    m.date = (data[0] & 16) ? NULL : FIXED_DATE;
    m.message_id = in.msgid;

    /* what the rules say */
#define MODEL(x) do { int r_ = (x); if (r_ == BAD) expect = BAD; else if (r_ == EITHER && expect == GOOD) expect = EITHER; } while (0)
    MODEL(model_mailbox(in.from, &mfrom));
    for (k = 0; k < in.nto; k++) MODEL(model_mailbox(in.to[k], &mto[k]));
    for (k = 0; k < in.ncc; k++) MODEL(model_mailbox(in.cc[k], &mcc[k]));
    if (in.subject) MODEL(hvalue_ok(in.subject, strlen(in.subject)) ? GOOD : BAD);
    if (in.msgid) MODEL(model_msgid(in.msgid));
    MODEL(utf8_ok((const unsigned char *)in.body, in.body_len) ? GOOD : BAD);

    rc_q = tlsmail_compose(&m, NULL, 0, &need);
    if (verbose()) fprintf(stderr, "size query: %d (%s), need %lu, model %d\n", rc_q,
                           tlsmail_strerror(rc_q), (unsigned long)need, expect);
    FUZZ_CHECK(rc_q == 0 || rc_q == TLSMAIL_EINVAL);
    FUZZ_CHECK(expect == EITHER || (rc_q == 0) == (expect == GOOD));
    buf = (char *)malloc(need ? need : 1);
    FUZZ_CHECK(buf != NULL);
    rc_w = tlsmail_compose(&m, buf, need, &got);
    FUZZ_CHECK(rc_w == rc_q);
    if (rc_q == 0) {
        FUZZ_CHECK(got == need);
        if (verbose()) fwrite(buf, 1, got, stderr);
        check_output(&in, &m, buf, got, &mfrom, mto, mcc);
        if (data[0] & 128) {
            /* one short, and a cut drawn from the input: ENOMEM, *len the
               size needed, nothing past the (exact) buffer */
            size_t caps[2];
            uint64_t h = fuzz_hash(data, size);
            int t;
            caps[0] = need - 1;
            caps[1] = (size_t)(fuzz_next(&h) % need);
            for (t = 0; t < 2; t++) {
                char *small = (char *)malloc(caps[t] ? caps[t] : 1);
                size_t l2 = 0;
                FUZZ_CHECK(small != NULL);
                FUZZ_CHECK(tlsmail_compose(&m, small, caps[t], &l2) == TLSMAIL_ENOMEM);
                FUZZ_CHECK(l2 == need);
                free(small);
            }
            {   /* with room for it, a NUL follows */
                char *big = (char *)malloc(need + 1);
                FUZZ_CHECK(big != NULL);
                FUZZ_CHECK(tlsmail_compose(&m, big, need + 1, &got) == 0);
                FUZZ_CHECK(got == need && big[need] == 0);
                free(big);
            }
        }
    } else {
        FUZZ_CHECK(got == 0 && need == 0);
    }
    free(buf);
    free(strings);
    return 0;
}
