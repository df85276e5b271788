/* fuzz_tlsinfo.c - what tlsmail_tls_info makes of the server certificate's
   bytes: a Name's RDNs kept the last first (tlsmail__rdns_reversed), their
   RFC 4514 text (tlsmail__dn_text) and the validity times
   (tlsmail__der_time, tlsmail__validity).

   Byte 0 picks the part: 0 a Name (DER, the rest of the input), 1 a Time
   (byte 1 its tag, the rest its content), 2 a Validity (DER). Byte 1 of a
   Name is also the size of the smaller text buffer. Properties:
   - no crash, nothing read outside the input (ASan; the input is copied
     to a buffer of its exact size);
   - the kept RDNs are whole SETs of the input, its last ones, in reverse
     order, and fill at most the client's room; what was left out is said;
   - the text is NUL-terminated inside its buffer and printable ASCII; a
     smaller buffer gives a prefix of the larger one's text, cut where a
     character or an escape ends, then "...";
   - a Time is taken exactly when an independent reading (digits, ranges,
     a naive day count) takes it, and gives the same second. */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
#include "fuzz_common.h"

static int leap(long long y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* The reference: the same rules written another way. */
static int ref_time(unsigned tag, const unsigned char *v, size_t n, long long *t) {
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int yd = tag == 0x18 ? 4 : tag == 0x17 ? 2 : 0, f[7], i, k = 0;
    long long y, days = 0, yy;
    if (!yd || n != (size_t)yd + 11 || v[n - 1] != 'Z') return -1;
    for (i = 0; i + 1 < (int)n; i++)
        if (v[i] < '0' || v[i] > '9') return -1;
    for (i = 0; i < yd + 10; i += 2) f[k++] = (v[i] - '0') * 10 + (v[i + 1] - '0');
    if (yd == 4) {
        y = f[0] * 100 + f[1];
        memmove(f, f + 1, sizeof f - sizeof f[0]);
    } else {
        y = f[0] < 50 ? 2000 + f[0] : 1900 + f[0];
    }
    /* f[1] month, f[2] day, f[3] hour, f[4] minute, f[5] second */
    if (f[1] < 1 || f[1] > 12) return -1;
    if (f[2] < 1 || f[2] > mdays[f[1] - 1] + (f[1] == 2 && leap(y))) return -1;
    if (f[3] > 23 || f[4] > 59 || f[5] > 60) return -1;
    for (yy = 1970; yy < y; yy++) days += 365 + leap(yy);
    for (yy = y; yy < 1970; yy++) days -= 365 + leap(yy);
    for (i = 1; i < f[1]; i++) days += mdays[i - 1] + (i == 2 && leap(y));
    days += f[2] - 1;
    *t = days * 86400 + f[3] * 3600 + f[4] * 60 + f[5];
    return 0;
}

/* The SETs of a Name, in order: their offsets and sizes; -1 if it is
   not a SEQUENCE of SETs. */
static int name_rdns(const unsigned char *dn, size_t n, size_t *at, size_t *sz, size_t max, size_t *count) {
    unsigned tag;
    size_t off, len, pos;
    *count = 0;
    if (!tlsmail__der_tlv(dn, n, &tag, &off, &len) || tag != 0x30 || off + len != n) return -1;
    for (pos = off; pos < n;) {
        size_t so, sl;
        if (!tlsmail__der_tlv(dn + pos, n - pos, &tag, &so, &sl) || tag != 0x31) return -1;
        if (*count < max) {
            at[*count] = pos;
            sz[*count] = so + sl;
        }
        ++*count;
        pos += so + sl;
    }
    return 0;
}

static void check_text(const char *t, size_t cap) {
    size_t i, n = strlen(t);
    FUZZ_CHECK(n < cap);
    for (i = 0; i < n; i++) FUZZ_CHECK(t[i] >= 0x20 && t[i] <= 0x7E);
}

/* where an escape-aware reading of t can stop: at an escape's end */
static int unit_boundary(const char *t, size_t cut) {
    size_t at = 0;
    while (at < cut) at += t[at] != '\\' ? 1 : tlsmail__isxdigit((unsigned char)t[at + 1]) ? 3 : 2;
    return at == cut;
}

static void fuzz_name(const unsigned char *dn, size_t n, size_t small) {
    static size_t at[600], sz[600];
    unsigned char kept[TLSMAIL__LEAF_DN];
    char full[TLSMAIL_TLS_NAME], part[TLSMAIL_TLS_NAME];
    size_t count, used, i, pos, fl, pl;
    int cut;
    used = tlsmail__rdns_reversed(kept, sizeof kept, dn, n, &cut);
    FUZZ_CHECK(used <= sizeof kept);
    if (name_rdns(dn, n, at, sz, 600, &count) != 0) {
        FUZZ_CHECK(used == 0);
    } else if (count <= 600) {
        /* whole SETs, the last ones first, as many as fit, none skipped */
        size_t k = count;
        for (pos = 0; pos < used; pos += sz[k]) {
            FUZZ_CHECK(k > 0);
            k--;
            FUZZ_CHECK(pos + sz[k] <= used && memcmp(kept + pos, dn + at[k], sz[k]) == 0);
        }
        FUZZ_CHECK(pos == used);
        FUZZ_CHECK(cut == (k > 0));
        if (k > 0) FUZZ_CHECK(used + sz[k - 1] > sizeof kept);
    }
    tlsmail__dn_text(kept, used, cut, full, sizeof full);
    check_text(full, sizeof full);
    /* the same RDNs straight from the input, without the client's room */
    tlsmail__dn_text(dn, n, 0, part, sizeof part);
    check_text(part, sizeof part);
    if (small < 1) small = 1;
    if (small > sizeof part) small = sizeof part;
    tlsmail__dn_text(kept, used, cut, part, small);
    check_text(part, small);
    fl = strlen(full);
    pl = strlen(part);
    if (small < sizeof full && pl >= 3 && !strcmp(part + pl - 3, "...")) {
        FUZZ_CHECK(strncmp(part, full, pl - 3) == 0);
        FUZZ_CHECK(unit_boundary(full, pl - 3));
    } else if (small >= sizeof full) {
        FUZZ_CHECK(strcmp(part, full) == 0);
    } else {
        FUZZ_CHECK(strcmp(part, full) == 0 || pl == 0);
    }
    for (i = 0; i < fl; i++) FUZZ_CHECK(full[i] != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned char *copy;
    long long t = 12345, r = 67890, nb, na;
    int got, want;
    if (size < 2) return 0;
    copy = (unsigned char *)malloc(size - 2 ? size - 2 : 1);
    memcpy(copy, data + 2, size - 2);
    switch (data[0] % 3) {
    case 0:
        fuzz_name(copy, size - 2, data[1]);
        break;
    case 1:
        got = tlsmail__der_time(data[1], copy, size - 2, &t);
        want = ref_time(data[1], copy, size - 2, &r);
        FUZZ_CHECK(got == want);
        if (got == 0) FUZZ_CHECK(t == r);
        else FUZZ_CHECK(t == 12345);
        break;
    default:
        if (tlsmail__validity(copy, size - 2, &nb, &na) == 0) {
            unsigned tag;
            size_t off, len, o1, l1;
            FUZZ_CHECK(tlsmail__der_tlv(copy, size - 2, &tag, &off, &len) && tag == 0x30);
            FUZZ_CHECK(tlsmail__der_tlv(copy + off, len, &tag, &o1, &l1));
            FUZZ_CHECK(ref_time(tag, copy + off + o1, l1, &r) == 0 && r == nb);
        }
        break;
    }
    free(copy);
    return 0;
}
