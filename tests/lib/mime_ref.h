/* tests/lib/mime_ref.h - independent readings of what tlsmail_compose
   writes, for tests/unit and fuzz_compose: a quoted-printable decoder that
   also checks the encoder's rules, and the line-end normalisation a body
   must come back as. Include it after tlsmail.h. */
#ifndef TLSMAIL_TEST_MIME_REF_H
#define TLSMAIL_TEST_MIME_REF_H
#include <stddef.h>

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1; /* RFC 2045 6.7 (1): uppercase only */
}

/* RFC 2045 6.7 decoding; also checks the encoder's rules: lines <= 76,
   no trailing whitespace, only "=XX" escapes, literal characters in
   33..126 except '=', plus space and tab. */
static long decode_qp(const char *s, size_t n, char *dst, size_t cap) {
    size_t i = 0, o = 0;
    while (i < n) {
        size_t e = i, k;
        while (e + 1 < n && !(s[e] == '\r' && s[e + 1] == '\n')) e++;
        if (e + 1 >= n) return -1; /* a line without CRLF */
        if (e - i > 76) return -2;
        if (e > i && (s[e - 1] == ' ' || s[e - 1] == '\t')) return -3;
        for (k = i; k < e; k++) {
            unsigned char c = (unsigned char)s[k];
            if (c == '=') {
                if (k + 1 == e) break; /* soft line break */
                if (k + 2 >= e || hexval(s[k + 1]) < 0 || hexval(s[k + 2]) < 0) return -4;
                if (o >= cap) return -5;
                dst[o++] = (char)(hexval(s[k + 1]) * 16 + hexval(s[k + 2]));
                k += 2;
            } else if ((c >= 33 && c <= 126) || c == ' ' || c == '\t') {
                if (o >= cap) return -5;
                dst[o++] = (char)c;
            } else {
                return -6;
            }
        }
        if (!(e > i && s[e - 1] == '=')) { /* hard line break */
            if (o + 2 > cap) return -5;
            dst[o++] = '\r';
            dst[o++] = '\n';
        }
        i = e + 2;
    }
    return (long)o;
}

/* Line ends to CRLF, a final CRLF added: what the body must decode to. */
static size_t normalise(const char *s, size_t n, char *dst) {
    size_t i, o = 0;
    for (i = 0; i < n; i++) {
        if (s[i] == '\r' || s[i] == '\n') {
            dst[o++] = '\r';
            dst[o++] = '\n';
            if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') i++;
        } else {
            dst[o++] = s[i];
        }
    }
    if (o && !(o >= 2 && dst[o - 2] == '\r' && dst[o - 1] == '\n')) {
        dst[o++] = '\r';
        dst[o++] = '\n';
    }
    return o;
}
#endif
