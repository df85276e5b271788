/* tests/lib/dot_ref.h - the DATA encoder as 0.1 wrote it, one byte at a
   time, for tests/unit and fuzz_dot: the memchr version
   (tlsmail__dot_encode) must take and give exactly what this takes and
   gives on every call (used, written, result, bytes, and the state after
   it: bol, cr, linelen and the line number that TLSMAIL_ELINE reports),
   for any state, input and room. Include it after tlsmail.h with
   TLSMAIL_IMPLEMENTATION. */
#ifndef TLSMAIL_TEST_DOT_REF_H
#define TLSMAIL_TEST_DOT_REF_H
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
            d->line++;
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
#endif
