/* fuzz_certwalk.c - the streaming certificate walker (tlsmail__cw_*) that
   the policy engine runs beside BearSSL's X.509 engine.

   The input is one certificate entry. The first octet picks how it is cut
   into pieces; the rest is the DER. Properties:
   - no crash, no read or write outside the walker (ASan);
   - the verdict (done, err, eku, names) does not depend on the cutting:
     the same entry fed whole and in the input's pieces agrees;
   - kept names never exceed TLSMAIL__DN_MAX and are themselves one DER
     SEQUENCE of exactly their length;
   - an oracle: when BearSSL's own decoder reads the entry as a complete,
     valid certificate, the walker reads it to the end and its subject is
     the DN BearSSL's decoder reports; it may refuse only a malformed
     extendedKeyUsage or subjectAltName value, which BearSSL's decoder
     skips unread; and the
     validity tlsmail_tls_info reads from what the walker kept is the one
     BearSSL's decoder read (which also takes fractions of a second, which
     RFC 5280 forbids and tlsmail_tls_info refuses);
   - what the client keeps for tlsmail_tls_info (tlsmail__leaf_keep) fits
     its room and makes printable text. */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
#include "fuzz_common.h"

static tlsmail__certwalk whole, cut;
static unsigned char bear_dn[4096];
static size_t bear_dn_len;
static int bear_dn_over;

static void bear_dn_cb(void *ctx, const void *buf, size_t len) {
    (void)ctx;
    if (len > sizeof bear_dn - bear_dn_len) { bear_dn_over = 1; return; }
    memcpy(bear_dn + bear_dn_len, buf, len);
    bear_dn_len += len;
}

/* A kept name is one SEQUENCE whose DER length is what was kept. */
static void check_name(const unsigned char *dn, size_t n) {
    size_t hl, len;
    FUZZ_CHECK(n <= TLSMAIL__DN_MAX);
    if (n == 0) return;
    FUZZ_CHECK(n >= 2 && dn[0] == 0x30);
    if (dn[1] < 0x80) { hl = 2; len = dn[1]; }
    else {
        size_t k, nb = dn[1] & 0x7Fu;
        FUZZ_CHECK(nb >= 1 && nb <= 3 && n >= 2 + nb);
        for (len = 0, k = 0; k < nb; k++) len = len << 8 | dn[2 + k];
        hl = 2 + nb;
    }
    FUZZ_CHECK(hl + len == n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    br_x509_decoder_context dc;
    uint64_t rng;
    size_t i, n;
    const unsigned char *der;
    if (size < 1) return 0;
    rng = fuzz_hash(data, size);
    der = data + 1;
    n = size - 1;

    tlsmail__cw_init(&whole, n);
    tlsmail__cw_push(&whole, der, n);
    tlsmail__cw_init(&cut, n);
    for (i = 0; i < n;) {
        size_t k = data[0] == 0 ? 1 : 1 + (size_t)(fuzz_next(&rng) % (data[0] + 1u));
        if (k > n - i) k = n - i;
        tlsmail__cw_push(&cut, der + i, k);
        i += k;
    }
    FUZZ_CHECK(whole.done == cut.done && whole.err == cut.err && whole.eku == cut.eku);
    FUZZ_CHECK(whole.san == cut.san && whole.wild1 == cut.wild1 && whole.nc == cut.nc);
    FUZZ_CHECK(whole.issuer_done == cut.issuer_done && whole.dn_over == cut.dn_over);
    FUZZ_CHECK(whole.validity_done == cut.validity_done && whole.validity_len == cut.validity_len);
    FUZZ_CHECK(whole.validity_len <= sizeof whole.validity);
    FUZZ_CHECK(memcmp(whole.validity, cut.validity, whole.validity_len) == 0);
    FUZZ_CHECK(whole.issuer_len == cut.issuer_len && whole.subject_len == cut.subject_len);
    FUZZ_CHECK(memcmp(whole.issuer, cut.issuer, whole.issuer_len) == 0);
    FUZZ_CHECK(memcmp(whole.subject, cut.subject, whole.subject_len) == 0);
    if (whole.issuer_done) check_name(whole.issuer, whole.issuer_len);
    if (whole.done && !whole.err && !whole.dn_over) check_name(whole.subject, whole.subject_len);
    /* the CN reader (tlsmail__dn_wild1) on the kept subject, and on any
       bytes in a heap block of exactly n, where ASan sees a read past it */
    if (whole.subject_done) (void)tlsmail__dn_wild1(whole.subject, whole.subject_len);
    {
        unsigned char *copy = (unsigned char *)malloc(n ? n : 1);
        FUZZ_CHECK(copy != NULL);
        memcpy(copy, der, n);
        (void)tlsmail__dn_wild1(copy, n);
        free(copy);
    }

    /* the oracle: BearSSL's decoder on the same bytes (pushed once: it
       must not be pushed again after it stops) */
    bear_dn_len = 0;
    bear_dn_over = 0;
    br_x509_decoder_init(&dc, bear_dn_cb, NULL);
    if (n) br_x509_decoder_push(&dc, der, n);
    if (br_x509_decoder_last_error(&dc) == 0 && !bear_dn_over && bear_dn_len <= TLSMAIL__DN_MAX) {
        /* BearSSL's decoder skips extension values; the walker reads the
           extendedKeyUsage and subjectAltName ones, and only those may
           make it disagree */
        FUZZ_CHECK(whole.done || (whole.err && (whole.eku != 0 || whole.san)));
        if (whole.done && !whole.err) {
            long long nb, na;
            FUZZ_CHECK(whole.subject_len == bear_dn_len &&
                       memcmp(whole.subject, bear_dn, bear_dn_len) == 0);
            if (whole.validity_done &&
                tlsmail__validity(whole.validity, whole.validity_len, &nb, &na) == 0) {
                FUZZ_CHECK(nb == ((long long)dc.notbefore_days - 719528) * 86400 + dc.notbefore_seconds);
                FUZZ_CHECK(na == ((long long)dc.notafter_days - 719528) * 86400 + dc.notafter_seconds);
            }
        }
    }
    {   /* the client's summary of it, as the engines keep it */
        tlsmail__leaf leaf;
        char text[TLSMAIL_TLS_NAME];
        size_t k;
        memset(&leaf, 0, sizeof leaf);
        tlsmail__leaf_keep(&leaf, &whole);
        FUZZ_CHECK(leaf.subject_len <= sizeof leaf.subject && leaf.issuer_len <= sizeof leaf.issuer);
        FUZZ_CHECK(leaf.validity_len <= sizeof leaf.validity);
        tlsmail__dn_text(leaf.subject, leaf.subject_len, leaf.subject_cut, text, sizeof text);
        for (k = 0; text[k]; k++) FUZZ_CHECK(k < sizeof text && text[k] >= 0x20 && text[k] <= 0x7E);
    }
    return 0;
}
