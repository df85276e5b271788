/* tests/unit/unit_x509.c - the X.509 side of tlsmail.h, called directly:
   the pinned-key engine and the PEM trust loader, fed hostile DER the way
   BearSSL's SSL engine feeds a server's Certificate message (start_chain,
   start_cert, append in pieces, end_cert, end_chain). */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
#include "../lib/runner.h"

/* A self-signed P-256 certificate (CN=unit.example), made once with
   `openssl req -x509 -newkey ec`; its SPKI SHA-256, computed by openssl: */
static const unsigned char cert_der[] = {
    0x30, 0x82, 0x01, 0x84, 0x30, 0x82, 0x01, 0x2b, 0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x14, 0x28,
    0xc9, 0x24, 0x5c, 0xf9, 0xc8, 0xd8, 0x3e, 0xd2, 0xec, 0x8e, 0xcb, 0x01, 0xd7, 0x90, 0xbd, 0xd0,
    0x68, 0xca, 0x6b, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x30,
    0x17, 0x31, 0x15, 0x30, 0x13, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x0c, 0x75, 0x6e, 0x69, 0x74,
    0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x30, 0x20, 0x17, 0x0d, 0x32, 0x36, 0x31, 0x32,
    0x30, 0x31, 0x30, 0x39, 0x33, 0x33, 0x33, 0x32, 0x5a, 0x18, 0x0f, 0x32, 0x31, 0x32, 0x36, 0x31,
    0x31, 0x30, 0x37, 0x30, 0x39, 0x33, 0x33, 0x33, 0x32, 0x5a, 0x30, 0x17, 0x31, 0x15, 0x30, 0x13,
    0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x0c, 0x75, 0x6e, 0x69, 0x74, 0x2e, 0x65, 0x78, 0x61, 0x6d,
    0x70, 0x6c, 0x65, 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0x34, 0xa1,
    0x03, 0xb5, 0x52, 0x56, 0x95, 0xe3, 0xc3, 0x44, 0x23, 0x7f, 0x99, 0x06, 0xf6, 0x05, 0xd8, 0xe6,
    0x27, 0x00, 0x9a, 0x26, 0xd9, 0xd4, 0x49, 0x3b, 0x05, 0xa5, 0x86, 0x5b, 0x88, 0x78, 0x9c, 0xbb,
    0x39, 0x95, 0x52, 0x63, 0xd1, 0xd6, 0xfd, 0x07, 0x3b, 0xd6, 0x82, 0x0a, 0xf5, 0xea, 0xb0, 0xfc,
    0xaf, 0x06, 0xbb, 0x8f, 0x25, 0x9f, 0x03, 0xf3, 0xcd, 0xfc, 0xe9, 0x84, 0x8e, 0x9e, 0xa3, 0x53,
    0x30, 0x51, 0x30, 0x1d, 0x06, 0x03, 0x55, 0x1d, 0x0e, 0x04, 0x16, 0x04, 0x14, 0x68, 0xe7, 0xf1,
    0xad, 0x1a, 0x35, 0xb8, 0x3e, 0x37, 0x4b, 0x00, 0x09, 0xb8, 0xa8, 0x43, 0xbb, 0x37, 0xc0, 0xfa,
    0x75, 0x30, 0x1f, 0x06, 0x03, 0x55, 0x1d, 0x23, 0x04, 0x18, 0x30, 0x16, 0x80, 0x14, 0x68, 0xe7,
    0xf1, 0xad, 0x1a, 0x35, 0xb8, 0x3e, 0x37, 0x4b, 0x00, 0x09, 0xb8, 0xa8, 0x43, 0xbb, 0x37, 0xc0,
    0xfa, 0x75, 0x30, 0x0f, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x05, 0x30, 0x03,
    0x01, 0x01, 0xff, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x03,
    0x47, 0x00, 0x30, 0x44, 0x02, 0x20, 0x29, 0xa4, 0xcf, 0x8b, 0xfc, 0x0e, 0xfb, 0x8b, 0xd7, 0x07,
    0xfb, 0x8d, 0xcb, 0x53, 0x0c, 0x7d, 0xd0, 0xc8, 0x8a, 0xe1, 0x86, 0xde, 0x44, 0xaa, 0x93, 0xd1,
    0x31, 0x3e, 0x43, 0x67, 0x46, 0xba, 0x02, 0x20, 0x6a, 0x09, 0xaf, 0x4e, 0x7e, 0x79, 0x75, 0xf2,
    0x31, 0x19, 0xa5, 0x71, 0xcf, 0x39, 0x67, 0x36, 0x1f, 0xcc, 0x2a, 0x60, 0x03, 0xfa, 0xbb, 0xf8,
    0x42, 0x6e, 0x7b, 0xac, 0x5d, 0xdd, 0x73, 0xbb,
};
static const char cert_pin[] = "lk2RaR1swoCeef1L8uhi50P5nXNGSGJJa6+5JJNBeDM=";

/* A certificate header that promises 454 octets and then holds a version
   (7) BearSSL refuses: the decoder stops after a dozen octets. */
static const unsigned char bad_version[16] = { 0x30, 0x82, 0x01, 0xc6, 0x30, 0x82, 0x01, 0x6b,
                                               0xa0, 0x03, 0x02, 0x01, 0x07, 0x02, 0x01, 0x01 };

/* One chain through the pinned-key engine, the certificate's bytes in
   pieces of chunk octets, as the SSL engine would deliver them. */
static unsigned pin_chain(const char *pin_b64, const unsigned char *der, size_t len, size_t cert_len,
                          size_t chunk) {
    tlsmail_trust t;
    tlsmail__pin p;
    const br_x509_class **vt = &p.vtable;
    size_t i;
    memset(&t, 0, sizeof t);
    if (tlsmail_trust_pin_sha256(&t, pin_b64) != 0) return 9999;
    memset(&p, 0, sizeof p);
    p.vtable = &tlsmail__pin_vtable;
    p.pin = t.pin;
    (*vt)->start_chain(vt, "unit.example");
    (*vt)->start_cert(vt, (uint32_t)cert_len);
    for (i = 0; i < len; i += chunk) (*vt)->append(vt, der + i, len - i < chunk ? len - i : chunk);
    (*vt)->end_cert(vt);
    return (*vt)->end_chain(vt);
}

TEST(pin_good_certificate_any_chunking) {
    size_t chunks[] = { 1, 2, 7, 16, 100, sizeof cert_der };
    size_t i;
    for (i = 0; i < sizeof chunks / sizeof chunks[0]; i++)
        CHECK_EQ_INT(pin_chain(cert_pin, cert_der, sizeof cert_der, sizeof cert_der, chunks[i]), 0);
    /* another key's pin: not trusted, and said so */
    CHECK_EQ_INT(pin_chain("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", cert_der, sizeof cert_der,
                           sizeof cert_der, 16), BR_ERR_X509_NOT_TRUSTED);
}

/* The decoder stops at the bad version; the rest of the promised length
   must not reach it (BearSSL 0.6 crashed here). */
TEST(pin_malformed_der_is_an_error_not_a_crash) {
    unsigned char der[470];
    size_t chunks[] = { 1, 5, 16, sizeof der };
    size_t i;
    memset(der, 0x41, sizeof der);
    memcpy(der, bad_version, sizeof bad_version);
    for (i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        unsigned r = pin_chain(cert_pin, der, sizeof der, sizeof der, chunks[i]);
        CHECK(r != 0);
    }
}

/* The whole certificate, then octets the Certificate entry still holds:
   one DER object per certificate, so this is refused, not ignored. */
TEST(pin_trailing_bytes_after_the_der_refused) {
    unsigned char der[sizeof cert_der + 9];
    size_t chunks[] = { 1, 3, 16, sizeof der };
    size_t i;
    memcpy(der, cert_der, sizeof cert_der);
    memset(der + sizeof cert_der, 0, 9);
    /* byte by byte, BearSSL 0.6's decoder ends its program on the second
       extra octet and crashed on the third */
    for (i = 0; i < sizeof chunks / sizeof chunks[0]; i++)
        CHECK_EQ_INT(pin_chain(cert_pin, der, sizeof der, sizeof der, chunks[i]),
                     BR_ERR_X509_EXTRA_ELEMENT);
}

/* der as a PEM CERTIFICATE block. */
static size_t to_pem(const unsigned char *der, size_t n, char *out, size_t cap) {
    size_t o = 0, i;
    char b64[4096];
    size_t bl = tlsmail__b64_encode(b64, sizeof b64, der, n);
    o += (size_t)snprintf(out + o, cap - o, "-----BEGIN CERTIFICATE-----\n");
    for (i = 0; i < bl; i += 64) o += (size_t)snprintf(out + o, cap - o, "%.*s\n", (int)(bl - i < 64 ? bl - i : 64), b64 + i);
    o += (size_t)snprintf(out + o, cap - o, "-----END CERTIFICATE-----\n");
    return o;
}

TEST(pem_loader_good_and_hostile) {
    char pem[8192];
    unsigned char der[470];
    tlsmail_trust t;
    size_t n;
    memset(&t, 0, sizeof t);
    n = to_pem(cert_der, sizeof cert_der, pem, sizeof pem);
    CHECK_EQ_INT(tlsmail_trust_pem(&t, pem, n), 0);
    CHECK_EQ_INT(t.count, 1);
    tlsmail_trust_free(&t);
    /* the malformed certificate: skipped, so "no certificate", no crash */
    memset(der, 0x41, sizeof der);
    memcpy(der, bad_version, sizeof bad_version);
    n = to_pem(der, sizeof der, pem, sizeof pem);
    CHECK_EQ_INT(tlsmail_trust_pem(&t, pem, n), TLSMAIL_ETRUST);
    CHECK_EQ_INT(t.count, 0);
    tlsmail_trust_free(&t);
    /* a good certificate with bytes after its DER: skipped too */
    memcpy(der, cert_der, sizeof cert_der);
    memset(der + sizeof cert_der, 0, 9);
    n = to_pem(der, sizeof cert_der + 9, pem, sizeof pem);
    CHECK_EQ_INT(tlsmail_trust_pem(&t, pem, n), TLSMAIL_ETRUST);
    tlsmail_trust_free(&t);
}

/* ---- the certificate walker ------------------------------------------- */

/* A tiny DER writer for made-up certificates: the walker reads structure,
   not signatures, so these need not verify. */
typedef struct { unsigned char b[4096]; size_t n; } der_buf;

static void der_raw(der_buf *d, const void *p, size_t n) {
    memcpy(d->b + d->n, p, n);
    d->n += n;
}

static void der_tlv(der_buf *d, unsigned tag, const der_buf *content) {
    unsigned char h[4];
    size_t hl = 0, n = content->n;
    h[hl++] = (unsigned char)tag;
    if (n < 0x80) h[hl++] = (unsigned char)n;
    else if (n < 0x100) { h[hl++] = 0x81; h[hl++] = (unsigned char)n; }
    else { h[hl++] = 0x82; h[hl++] = (unsigned char)(n >> 8); h[hl++] = (unsigned char)n; }
    der_raw(d, h, hl);
    der_raw(d, content->b, n);
}

static void der_bytes(der_buf *d, unsigned tag, const char *bytes, size_t n) {
    der_buf c;
    c.n = 0;
    der_raw(&c, bytes, n);
    der_tlv(d, tag, &c);
}

/* Name ::= SEQUENCE { SET { SEQUENCE { OID 2.5.4.3 (CN), UTF8String } } } */
static void der_name(der_buf *d, const char *cn) {
    der_buf atv, set, seq;
    atv.n = set.n = seq.n = 0;
    der_bytes(&atv, 0x06, "\x55\x04\x03", 3);
    der_bytes(&atv, 0x0C, cn, strlen(cn));
    der_tlv(&set, 0x30, &atv);
    der_tlv(&seq, 0x31, &set);
    der_tlv(d, 0x30, &seq);
}

/* One Extension with a SEQUENCE OF OID value (EKU), flagged critical. */
static void der_eku(der_buf *d, const char *const *oids, size_t n) {
    der_buf list, octets, ext;
    size_t i;
    list.n = octets.n = ext.n = 0;
    /* anyExtendedKeyUsage ends in a zero octet: its length is known */
    for (i = 0; i < n; i++)
        der_bytes(&list, 0x06, oids[i], strcmp(oids[i], "\x55\x1d\x25") ? strlen(oids[i]) : 4);
    der_tlv(&octets, 0x30, &list);
    der_bytes(&ext, 0x06, "\x55\x1d\x25", 3);
    der_bytes(&ext, 0x01, "\xff", 1);
    der_tlv(&ext, 0x04, &octets);
    der_tlv(d, 0x30, &ext);
}

/* A certificate issued by issuer to subject, with the extensions in exts
   (the content of the SEQUENCE inside [3]; NULL: no extensions). */
static void der_cert(der_buf *out, const char *issuer, const char *subject, const der_buf *exts) {
    der_buf tbs, cert, v, seqs, x3;
    tbs.n = cert.n = v.n = seqs.n = x3.n = 0;
    der_bytes(&v, 0x02, "\x02", 1);
    der_tlv(&tbs, 0xA0, &v);                                    /* version v3 */
    der_bytes(&tbs, 0x02, "\x01\x23", 2);                       /* serial */
    der_bytes(&tbs, 0x30, "\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02", 10); /* ecdsa-sha256 */
    der_name(&tbs, issuer);
    der_bytes(&tbs, 0x30, "\x17\x0d" "260101000000Z" "\x17\x0d" "360101000000Z", 30);
    der_name(&tbs, subject);
    der_bytes(&tbs, 0x30, "\x30\x00\x03\x01\x00", 5);           /* a placeholder SPKI */
    if (exts) {
        der_tlv(&seqs, 0x30, exts);
        der_tlv(&tbs, 0xA3, &seqs);
    }
    der_tlv(&cert, 0x30, &tbs);
    der_bytes(&cert, 0x30, "\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02", 10);
    der_bytes(&cert, 0x03, "\x00\x01\x02", 3);
    out->n = 0;
    der_tlv(out, 0x30, &cert);
}

/* Walk der (with the entry length n) in pieces of chunk octets. */
static void walk(tlsmail__certwalk *w, const unsigned char *der, size_t n, size_t entry, size_t chunk) {
    size_t i;
    tlsmail__cw_init(w, entry);
    for (i = 0; i < n; i += chunk) tlsmail__cw_push(w, der + i, n - i < chunk ? n - i : chunk);
}

static const size_t chunks[] = { 1, 2, 3, 5, 64, 4096 };
#define NCHUNKS (sizeof chunks / sizeof chunks[0])

TEST(walker_names_of_a_real_certificate) {
    static tlsmail__certwalk w;
    tlsmail_trust t;
    char pem[8192];
    size_t i, n;
    memset(&t, 0, sizeof t);
    n = to_pem(cert_der, sizeof cert_der, pem, sizeof pem);
    CHECK_EQ_INT(tlsmail_trust_pem(&t, pem, n), 0);
    for (i = 0; i < NCHUNKS; i++) {
        walk(&w, cert_der, sizeof cert_der, sizeof cert_der, chunks[i]);
        CHECK(w.done && !w.err && w.issuer_done);
        CHECK_EQ_INT(w.eku, 0);
        /* self-signed: the issuer is the subject, and both are the DN
           BearSSL's decoder hands the loader */
        CHECK_MEM(w.issuer, w.issuer_len, t.anchors[0].dn.data, t.anchors[0].dn.len);
        CHECK_MEM(w.subject, w.subject_len, t.anchors[0].dn.data, t.anchors[0].dn.len);
    }
    tlsmail_trust_free(&t);
}

TEST(walker_extended_key_usage) {
    static const char *const server[] = { "\x2b\x06\x01\x05\x05\x07\x03\x01" };
    static const char *const client[] = { "\x2b\x06\x01\x05\x05\x07\x03\x02" };
    static const char *const client_any[] = { "\x2b\x06\x01\x05\x05\x07\x03\x02", "\x55\x1d\x25\x00" };
    static const char *const mail_server[] = { "\x2b\x06\x01\x05\x05\x07\x03\x04",
                                               "\x2b\x06\x01\x05\x05\x07\x03\x01" };
    static tlsmail__certwalk w;
    struct { const char *const *oids; size_t n; int want; } cases[] = {
        { server, 1, 1 }, { client, 1, -1 }, { client_any, 2, 1 }, { mail_server, 2, 1 },
        { NULL, 0, -1 }, /* an empty list allows nothing */
    };
    size_t i, k;
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        der_buf exts, cert;
        exts.n = 0;
        der_bytes(&exts, 0x30, "\x06\x03\x55\x1d\x0f\x04\x04\x03\x02\x07\x80", 11); /* keyUsage */
        der_eku(&exts, cases[k].oids, cases[k].n);
        der_cert(&cert, "Issuer CA", "mail.example.org", &exts);
        for (i = 0; i < NCHUNKS; i++) {
            walk(&w, cert.b, cert.n, cert.n, chunks[i]);
            CHECK(w.done && !w.err);
            CHECK_EQ_INT(w.eku, cases[k].want);
        }
    }
    {   /* no extensions at all, and extensions without EKU */
        der_buf exts, cert;
        der_cert(&cert, "Issuer CA", "mail.example.org", NULL);
        walk(&w, cert.b, cert.n, cert.n, 1);
        CHECK(w.done && !w.err);
        CHECK_EQ_INT(w.eku, 0);
        exts.n = 0;
        der_bytes(&exts, 0x30, "\x06\x03\x55\x1d\x0f\x04\x04\x03\x02\x07\x80", 11);
        der_cert(&cert, "Issuer CA", "mail.example.org", &exts);
        walk(&w, cert.b, cert.n, cert.n, 7);
        CHECK(w.done && !w.err);
        CHECK_EQ_INT(w.eku, 0);
        /* the name of the issuer: its whole DER */
        CHECK_EQ_INT(w.issuer_len, 2 + 2 + 2 + 5 + 2 + strlen("Issuer CA"));
        CHECK_MEM(w.issuer + w.issuer_len - 9, 9, "Issuer CA", 9);
    }
    {   /* two EKU extensions: RFC 5280 allows one */
        der_buf exts, cert;
        exts.n = 0;
        der_eku(&exts, server, 1);
        der_eku(&exts, server, 1);
        der_cert(&cert, "Issuer CA", "mail.example.org", &exts);
        walk(&w, cert.b, cert.n, cert.n, 3);
        CHECK(w.err);
    }
}

TEST(walker_refuses_what_is_not_der) {
    static tlsmail__certwalk w;
    der_buf cert;
    unsigned char bad[4200];
    size_t i;
    der_cert(&cert, "Issuer CA", "mail.example.org", NULL);
    for (i = 0; i < NCHUNKS; i++) {
        /* the entry is longer than the certificate: trailing octets */
        memcpy(bad, cert.b, cert.n);
        bad[cert.n] = 0;
        walk(&w, bad, cert.n + 1, cert.n + 1, chunks[i]);
        CHECK(w.err || !w.done);
        /* the entry is shorter: the certificate overruns it */
        walk(&w, cert.b, cert.n - 1, cert.n - 1, chunks[i]);
        CHECK(w.err);
        /* truncated: never done */
        walk(&w, cert.b, cert.n - 1, cert.n, chunks[i]);
        CHECK(!w.err && !w.done);
    }
    /* indefinite length (BER, not DER) */
    memcpy(bad, cert.b, cert.n);
    bad[1] = 0x80;
    walk(&w, bad, cert.n, cert.n, 1);
    CHECK(w.err);
    /* a length in the long form that fits the short one */
    {
        unsigned char nm[] = { 0x30, 0x81, 0x03, 0x02, 0x01, 0x00 };
        walk(&w, nm, sizeof nm, sizeof nm, 1);
        CHECK(w.err);
    }
    /* a child longer than its parent: the tbsCertificate claims 4 octets
       where the certificate has 3 left */
    {
        unsigned char over[] = { 0x30, 0x05, 0x30, 0x04, 0x02, 0x01, 0x00 };
        walk(&w, over, sizeof over, sizeof over, 1);
        CHECK(w.err);
        over[3] = 0x03; /* and with the length right, it reads to the end */
        walk(&w, over, sizeof over, sizeof over, 1);
        CHECK(!w.err && w.done);
    }
    /* not a SEQUENCE at the top */
    memcpy(bad, cert.b, cert.n);
    bad[0] = 0x31;
    walk(&w, bad, cert.n, cert.n, 4096);
    CHECK(w.err);
}

int main(int argc, char **argv) {
    runner_args(argc, argv);
    RUN(pin_good_certificate_any_chunking);
    RUN(pin_malformed_der_is_an_error_not_a_crash);
    RUN(pin_trailing_bytes_after_the_der_refused);
    RUN(pem_loader_good_and_hostile);
    RUN(walker_names_of_a_real_certificate);
    RUN(walker_extended_key_usage);
    RUN(walker_refuses_what_is_not_der);
    return runner_finish();
}
