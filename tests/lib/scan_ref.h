/* tests/lib/scan_ref.h - the message scan (with the line limit that
   tlsmail__check_lines checked, and the number of the first line over it)
   and BDAT's line-end rule as 0.2.0 wrote them, one octet at a time, for
   tests/unit and fuzz_scan: the
   memchr versions (tlsmail__msg_scan, tlsmail__bdat_run) must give what
   these give for every input. Include it after tlsmail.h with
   TLSMAIL_IMPLEMENTATION. */
#ifndef TLSMAIL_TEST_SCAN_REF_H
#define TLSMAIL_TEST_SCAN_REF_H
static void msg_scan_ref(const unsigned char *s, size_t len, tlsmail__msginfo *mi) {
    size_t i, size = 0, ll = 0, line = 1;
    int bol = 1, in_head = 1, over = 0;
    memset(mi, 0, sizeof *mi);
    for (i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < len && s[i + 1] == '\n') i++;
            else mi->bare = 1;
            if (bol) in_head = 0;
            bol = 1;
            ll = 0;
            line++;
            over |= size > (size_t)-1 - 2;
            size += 2;
            continue;
        }
        if (c >= 0x80) {
            mi->body8 = 1;
            if (in_head) mi->head8 = 1;
        }
        bol = 0;
        if (++ll > 998 && !mi->longline) mi->longline = line;
        over |= size == (size_t)-1;
        size++;
    }
    if (!bol) {
        over |= size > (size_t)-1 - 2;
        size += 2;
    }
    mi->size = over ? (size_t)-1 : size;
}

/* Is s[i] a bare CR or bare LF, which BDAT sends as CRLF? */
static int bare_ref(const unsigned char *s, size_t n, size_t i) {
    return (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n')) ||
           (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'));
}
#endif
