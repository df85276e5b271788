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
    /* the END line without its line end: the certificate is still there */
    CHECK_EQ_INT(tlsmail_trust_pem(&t, pem, n - 1), 0);
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

/* ---- the leaf's report (tlsmail_tls_info): names and times ------------- */

/* What the report of one certificate says: walked as the engines walk it,
   kept as the client keeps it, made text as tlsmail_tls_info makes it. */
typedef struct report {
    char subject[TLSMAIL_TLS_NAME], issuer[TLSMAIL_TLS_NAME];
    long long not_before, not_after;
    int names, times;
} report;

static void report_of(const unsigned char *der, size_t n, size_t chunk, size_t cap, report *r) {
    static tlsmail__certwalk w;
    tlsmail__leaf leaf;
    memset(&leaf, 0, sizeof leaf);
    memset(r, 0, sizeof *r);
    walk(&w, der, n, n, chunk);
    tlsmail__leaf_keep(&leaf, &w);
    r->names = leaf.names;
    tlsmail__dn_text(leaf.subject, leaf.subject_len, leaf.subject_cut, r->subject, cap);
    tlsmail__dn_text(leaf.issuer, leaf.issuer_len, leaf.issuer_cut, r->issuer, cap);
    r->times = tlsmail__validity(leaf.validity, leaf.validity_len, &r->not_before, &r->not_after) == 0;
}

/* openssl's view of a certificate file: "subject=...", "issuer=...",
   "notBefore=2026-12-01 12:17:20Z", "notAfter=..." as one string each. */
typedef struct ossl_view { char subject[1024], issuer[1024], not_before[64], not_after[64]; } ossl_view;

static int openssl_view(const char *path, const char *inform, ossl_view *v) {
    char cmd[600], line[1200];
    FILE *p;
    int got = 0;
    memset(v, 0, sizeof *v);
    snprintf(cmd, sizeof cmd, "openssl x509 -inform %s -in '%s' -noout -subject -issuer -startdate "
             "-enddate -nameopt RFC2253 -dateopt iso_8601 2>&1", inform, path);
    if ((p = popen(cmd, "r")) == NULL) return 0;
    while (fgets(line, sizeof line, p)) {
        static const char *const keys[] = { "subject=", "issuer=", "notBefore=", "notAfter=" };
        char *dest[4];
        size_t n = strlen(line), caps[4], i;
        dest[0] = v->subject; dest[1] = v->issuer; dest[2] = v->not_before; dest[3] = v->not_after;
        caps[0] = sizeof v->subject; caps[1] = sizeof v->issuer;
        caps[2] = sizeof v->not_before; caps[3] = sizeof v->not_after;
        if (n && line[n - 1] == '\n') line[--n] = 0;
        for (i = 0; i < 4; i++) {
            size_t kl = strlen(keys[i]);
            if (strncmp(line, keys[i], kl) != 0 || n - kl >= caps[i]) continue;
            memcpy(dest[i], line + kl, n - kl + 1);
            got |= 1 << i;
        }
    }
    return pclose(p) == 0 && got == 15;
}

/* Seconds since 1970 as openssl -dateopt iso_8601 writes them, through
   the C library's calendar, not ours. */
static void iso_time(long long t, char *out, size_t cap) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%SZ", &tm);
}

static char tmpdir[64];

static const char *work_dir(void) {
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/tlsmail-unit-x509.XXXXXX");
        if (!mkdtemp(tmpdir)) tmpdir[0] = 0;
    }
    return tmpdir;
}

static int write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(p, 1, n, f) == n;
    if (f) ok = fclose(f) == 0 && ok;
    return ok;
}

static size_t read_file(const char *path, unsigned char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap, f) : 0;
    if (f) fclose(f);
    return n;
}

/* One AttributeTypeAndValue into an RDN being built. */
static void der_ava(der_buf *set, const char *oid, size_t oidlen, unsigned tag, const char *v, size_t n) {
    der_buf atv, seq;
    atv.n = seq.n = 0;
    der_bytes(&atv, 0x06, oid, oidlen);
    der_bytes(&atv, tag, v, n);
    der_tlv(set, 0x30, &atv);
    (void)seq;
}

/* A certificate with the given Name DERs and Validity DER, a real EC
   SubjectPublicKeyInfo (cert_der's) and a signature nobody checks: what
   openssl x509 prints needs no signature, and the walker reads structure. */
static void der_cert_named(der_buf *out, const der_buf *issuer, const der_buf *subject,
                           const der_buf *validity) {
    der_buf tbs, cert, v;
    size_t i;
    tbs.n = cert.n = v.n = 0;
    der_bytes(&v, 0x02, "\x02", 1);
    der_tlv(&tbs, 0xA0, &v);
    der_bytes(&tbs, 0x02, "\x01\x23", 2);
    der_bytes(&tbs, 0x30, "\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02", 10);
    der_raw(&tbs, issuer->b, issuer->n);
    der_raw(&tbs, validity->b, validity->n);
    der_raw(&tbs, subject->b, subject->n);
    for (i = 0; i + 4 < sizeof cert_der; i++) /* the SPKI: SEQUENCE (0x59) { SEQUENCE (0x13) ... */
        if (!memcmp(cert_der + i, "\x30\x59\x30\x13", 4)) break;
    der_raw(&tbs, cert_der + i, 0x5b);
    der_tlv(&cert, 0x30, &tbs);
    der_bytes(&cert, 0x30, "\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02", 10);
    der_bytes(&cert, 0x03, "\x00\x30\x06\x02\x01\x01\x02\x01\x01", 9);
    out->n = 0;
    der_tlv(out, 0x30, &cert);
}

static void der_validity(der_buf *d, unsigned t1, const char *a, unsigned t2, const char *b) {
    der_buf c;
    c.n = 0;
    der_bytes(&c, t1, a, strlen(a));
    der_bytes(&c, t2, b, strlen(b));
    d->n = 0;
    der_tlv(d, 0x30, &c);
}

#define CN "\x55\x04\x03"
#define OU "\x55\x04\x0b"
#define O_ "\x55\x04\x0a"

/* Names and times the walker reads as openssl prints them (-nameopt
   RFC2253, -dateopt iso_8601), for certificates made here: every string
   type, the characters RFC 4514 escapes, octets that are not printable,
   an unknown attribute type, a multi-valued RDN, UTCTime and
   GeneralizedTime. */
/* The CN BearSSL matches when there is no subjectAltName: a wildcard over
   one label there is refused as in a dNSName. */
TEST(common_name_wildcard_over_one_label) {
    static const struct { const char *cn; int wild1; } cases[] = {
        { "*.test", 1 }, { "*.com", 1 }, { "*.example.test", 0 }, { "mail.test", 0 },
        { "*", 0 }, { "*.", 0 }, { "f*.test", 0 }, { "", 0 },
    };
    static tlsmail__certwalk w;
    size_t k;
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        der_buf cert;
        der_cert(&cert, "Issuer CA", cases[k].cn, NULL);
        walk(&w, cert.b, cert.n, cert.n, 3);
        CHECK(w.done && !w.err && w.subject_done && !w.san);
        CHECK_EQ_INT(tlsmail__dn_wild1(w.subject, w.subject_len), cases[k].wild1);
    }
    {   /* the wildcard CN in a second RDN, behind an O; one AVA of a
           multi-valued RDN */
        der_buf set1, set2, rdns, dn;
        set1.n = set2.n = rdns.n = dn.n = 0;
        der_ava(&set1, "\x55\x04\x0a", 3, 0x0C, "tlsmail test", 12);
        der_ava(&set2, "\x55\x04\x0b", 3, 0x0C, "unit", 4);
        der_ava(&set2, "\x55\x04\x03", 3, 0x13, "*.org", 5);
        der_tlv(&rdns, 0x31, &set1);
        der_tlv(&rdns, 0x31, &set2);
        der_tlv(&dn, 0x30, &rdns);
        CHECK_EQ_INT(tlsmail__dn_wild1(dn.b, dn.n), 1);
        /* an O of "*.org" is no name to BearSSL */
        set2.n = rdns.n = dn.n = 0;
        der_ava(&set2, "\x55\x04\x0a", 3, 0x0C, "*.org", 5);
        der_tlv(&rdns, 0x31, &set2);
        der_tlv(&dn, 0x30, &rdns);
        CHECK_EQ_INT(tlsmail__dn_wild1(dn.b, dn.n), 0);
        /* what is not a Name counts as a wildcard: it is refused, not read
           past its end */
        CHECK_EQ_INT(tlsmail__dn_wild1(dn.b, dn.n - 1), 1);
        CHECK_EQ_INT(tlsmail__dn_wild1((const unsigned char *)"\x31\x00", 2), 1);
        CHECK_EQ_INT(tlsmail__dn_wild1((const unsigned char *)"\x30\x02\x31\x05", 4), 1);
        CHECK_EQ_INT(tlsmail__dn_wild1((const unsigned char *)"\x30\x00", 2), 0);
    }
}

TEST(report_names_and_times_as_openssl_prints_them) {
    struct { const char *what; int kind; } names[] = {
        { "plain", 0 }, { "escapes", 1 }, { "utf8", 2 }, { "bmp_t61_universal", 3 },
        { "controls", 4 }, { "unknown_type", 5 }, { "multivalued", 6 }, { "lead_trail", 7 },
    };
    size_t k, c;
    const char *dir = work_dir();
    CHECK(dir[0] != 0);
    for (k = 0; k < sizeof names / sizeof names[0]; k++) {
        der_buf rdn, seq, name, issuer, validity, cert;
        char path[128], when[64];
        ossl_view v;
        report r;
        seq.n = 0;
        rdn.n = 0;
        switch (names[k].kind) {
        case 0:
            der_ava(&rdn, "\x55\x04\x06", 3, 0x13, "DE", 2); der_tlv(&seq, 0x31, &rdn); rdn.n = 0;
            der_ava(&rdn, "\x55\x04\x08", 3, 0x0C, "Bayern", 6); der_tlv(&seq, 0x31, &rdn); rdn.n = 0;
            der_ava(&rdn, "\x55\x04\x07", 3, 0x0C, "Muenchen", 8); der_tlv(&seq, 0x31, &rdn); rdn.n = 0;
            der_ava(&rdn, O_, 3, 0x0C, "Example GmbH", 12); der_tlv(&seq, 0x31, &rdn); rdn.n = 0;
            der_ava(&rdn, OU, 3, 0x0C, "Mail", 4); der_tlv(&seq, 0x31, &rdn); rdn.n = 0;
            der_ava(&rdn, CN, 3, 0x0C, "mail.example.org", 16); der_tlv(&seq, 0x31, &rdn); rdn.n = 0;
            der_ava(&rdn, "\x2a\x86\x48\x86\xf7\x0d\x01\x09\x01", 9, 0x16, "pm@example.org", 14);
            der_tlv(&seq, 0x31, &rdn);
            break;
        case 1:
            der_ava(&rdn, O_, 3, 0x0C, "a,b+c\"d\\e<f>g;h=i", 17); der_tlv(&seq, 0x31, &rdn); rdn.n = 0;
            der_ava(&rdn, CN, 3, 0x0C, "#1 mail", 7); der_tlv(&seq, 0x31, &rdn);
            break;
        case 2:
            der_ava(&rdn, O_, 3, 0x0C, "M\xc3\xbcller Gr\xc3\xbc\xc3\x9f" "e", 14); der_tlv(&seq, 0x31, &rdn);
            rdn.n = 0;
            der_ava(&rdn, CN, 3, 0x0C, "\xe6\x97\xa5\xe6\x9c\xac.example", 14); der_tlv(&seq, 0x31, &rdn);
            break;
        case 3:
            der_ava(&rdn, O_, 3, 0x1E, "\x00M\x00\xfc\x65\xe5", 6); der_tlv(&seq, 0x31, &rdn); rdn.n = 0;
            der_ava(&rdn, OU, 3, 0x14, "caf\xe9", 4); der_tlv(&seq, 0x31, &rdn); rdn.n = 0;
            der_ava(&rdn, CN, 3, 0x1C, "\x00\x00\x00x\x00\x01\xf6\x00", 8); der_tlv(&seq, 0x31, &rdn);
            break;
        case 4:
            der_ava(&rdn, CN, 3, 0x0C, "a\x1b[31mb\x7f" "c\x01", 10); der_tlv(&seq, 0x31, &rdn);
            break;
        case 5:
            der_ava(&rdn, "\x2a\x03\x04\x05", 4, 0x0C, "abc", 3); der_tlv(&seq, 0x31, &rdn); rdn.n = 0;
            der_ava(&rdn, "\x88\x37\x01", 3, 0x13, "x", 1); der_tlv(&seq, 0x31, &rdn); rdn.n = 0;
            der_ava(&rdn, CN, 3, 0x0C, "x", 1); der_tlv(&seq, 0x31, &rdn);
            break;
        case 6:
            der_ava(&rdn, O_, 3, 0x0C, "Org", 3); der_tlv(&seq, 0x31, &rdn); rdn.n = 0;
            der_ava(&rdn, CN, 3, 0x0C, "a", 1);
            der_ava(&rdn, OU, 3, 0x0C, "b", 1); der_tlv(&seq, 0x31, &rdn);
            break;
        default:
            der_ava(&rdn, O_, 3, 0x0C, " lead", 5); der_tlv(&seq, 0x31, &rdn); rdn.n = 0;
            der_ava(&rdn, CN, 3, 0x0C, "trail ", 6); der_tlv(&seq, 0x31, &rdn);
            break;
        }
        name.n = 0;
        der_tlv(&name, 0x30, &seq);
        issuer.n = 0;
        der_name(&issuer, "tlsmail unit CA");
        der_validity(&validity, 0x17, k & 1 ? "491231235959Z" : "261201101500Z", 0x18,
                     k & 1 ? "20500101000000Z" : "99991231235960Z");
        der_cert_named(&cert, &issuer, &name, &validity);
        snprintf(path, sizeof path, "%s/%s.der", dir, names[k].what);
        CHECK(write_file(path, cert.b, cert.n));
        CHECK(openssl_view(path, "DER", &v));
        for (c = 0; c < NCHUNKS; c++) {
            report_of(cert.b, cert.n, chunks[c], TLSMAIL_TLS_NAME, &r);
            CHECK(r.names);
            CHECK_STR(r.subject, v.subject);
            CHECK_STR(r.issuer, v.issuer);
            CHECK(r.times);
            iso_time(r.not_before, when, sizeof when);
            CHECK_STR(when, v.not_before);
            /* a 60th second is the next minute's first, as BearSSL counts
               it; openssl keeps the 60 */
            iso_time(r.not_after - (k & 1 ? 0 : 1), when, sizeof when);
            CHECK_STR(when, k & 1 ? v.not_after : "9999-12-31 23:59:59Z");
        }
    }
}

/* A real certificate, signed, from openssl req: through the pin engine
   (which reads the names for the report beside the pin) and the walker. */
TEST(report_of_an_openssl_certificate_through_the_pin_engine) {
    const char *dir = work_dir();
    char cmd[1200], path[128], pem[128], pin[128], when[64];
    unsigned char der[4096];
    size_t n, i;
    ossl_view v;
    tlsmail_trust t;
    tlsmail__leaf leaf;
    static tlsmail__pin p;
    const br_x509_class **vt = &p.vtable;
    FILE *f;
    CHECK(dir[0] != 0);
    snprintf(pem, sizeof pem, "%s/req.pem", dir);
    snprintf(path, sizeof path, "%s/req.der", dir);
    snprintf(cmd, sizeof cmd, "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout %s/req.key -out %s -days 4000 -utf8 -subj '/C=DE/ST=Bayern/L=M\xc3\xbcnchen/"
             "O=Example GmbH/OU=Mail/CN=mail.example.org/emailAddress=postmaster@example.org' "
             ">/dev/null 2>&1 && openssl x509 -in %s -outform DER -out %s", dir, pem, pem, path);
    CHECK(system(cmd) == 0);
    n = read_file(path, der, sizeof der);
    CHECK(n > 100);
    CHECK(openssl_view(pem, "PEM", &v));
    snprintf(cmd, sizeof cmd, "openssl x509 -in %s -pubkey -noout | openssl pkey -pubin -outform der "
             "| openssl dgst -sha256 -binary | base64", pem);
    f = popen(cmd, "r");
    CHECK(f && fgets(pin, sizeof pin, f));
    if (f) pclose(f);
    pin[strcspn(pin, "\n")] = 0;
    memset(&t, 0, sizeof t);
    CHECK_EQ_INT(tlsmail_trust_pin_sha256(&t, pin), 0);
    for (i = 0; i < NCHUNKS; i++) {
        char text[TLSMAIL_TLS_NAME];
        size_t k;
        long long nb = 0, na = 0;
        memset(&p, 0, sizeof p);
        memset(&leaf, 0, sizeof leaf);
        p.vtable = &tlsmail__pin_vtable;
        p.pin = t.pin;
        p.leaf = &leaf;
        (*vt)->start_chain(vt, "mail.example.org");
        (*vt)->start_cert(vt, (uint32_t)n);
        for (k = 0; k < n; k += chunks[i]) (*vt)->append(vt, der + k, n - k < chunks[i] ? n - k : chunks[i]);
        (*vt)->end_cert(vt);
        CHECK_EQ_INT((*vt)->end_chain(vt), 0);
        CHECK(leaf.names);
        tlsmail__dn_text(leaf.subject, leaf.subject_len, leaf.subject_cut, text, sizeof text);
        CHECK_STR(text, v.subject);
        tlsmail__dn_text(leaf.issuer, leaf.issuer_len, leaf.issuer_cut, text, sizeof text);
        CHECK_STR(text, v.issuer);
        CHECK_EQ_INT(tlsmail__validity(leaf.validity, leaf.validity_len, &nb, &na), 0);
        iso_time(nb, when, sizeof when);
        CHECK_STR(when, v.not_before);
        iso_time(na, when, sizeof when);
        CHECK_STR(when, v.not_after);
    }
}

/* A name longer than the client keeps: the last RDNs, whole, then "...";
   a text buffer too small: cut at a whole character or escape, "..." after. */
TEST(report_long_names_cut_safely) {
    der_buf rdn, seq, name, issuer, validity, cert;
    char path[128];
    ossl_view v;
    report r;
    size_t k, cap, len;
    seq.n = 0;
    for (k = 0; k < 8; k++) {
        char ou[40];
        rdn.n = 0;
        snprintf(ou, sizeof ou, "organisational unit number %u", (unsigned)k);
        der_ava(&rdn, OU, 3, 0x0C, ou, strlen(ou));
        der_tlv(&seq, 0x31, &rdn);
    }
    rdn.n = 0;
    der_ava(&rdn, CN, 3, 0x0C, "caf\xc3\xa9 \\ mail.example.org", 24);
    der_tlv(&seq, 0x31, &rdn);
    name.n = 0;
    der_tlv(&name, 0x30, &seq);
    CHECK(name.n > TLSMAIL__LEAF_DN);
    issuer.n = 0;
    der_name(&issuer, "CA");
    der_validity(&validity, 0x17, "261201101500Z", 0x17, "271201101500Z");
    der_cert_named(&cert, &issuer, &name, &validity);
    snprintf(path, sizeof path, "%s/long.der", work_dir());
    CHECK(write_file(path, cert.b, cert.n));
    CHECK(openssl_view(path, "DER", &v));
    report_of(cert.b, cert.n, 5, TLSMAIL_TLS_NAME, &r);
    len = strlen(r.subject);
    /* whole RDNs of openssl's text (the last ones first), then "..." */
    CHECK(len > 3 && !strcmp(r.subject + len - 3, "...") && len - 3 < strlen(v.subject));
    CHECK(!strncmp(r.subject, v.subject, len - 3) && v.subject[len - 3] == ',');
    CHECK(!strncmp(r.subject, "CN=caf\\C3\\A9 \\\\ mail.example.org,OU=organisational unit number 7,", 65));
    /* every buffer size: NUL-terminated inside it, a prefix of the whole
       text cut before a unit, "..." when cut */
    report_of(cert.b, cert.n, 4096, TLSMAIL_TLS_NAME, &r);
    for (cap = 1; cap < 80; cap++) {
        tlsmail__leaf leaf;
        static tlsmail__certwalk w;
        char small[80];
        size_t sl;
        memset(&leaf, 0, sizeof leaf);
        walk(&w, cert.b, cert.n, cert.n, 4096);
        tlsmail__leaf_keep(&leaf, &w);
        memset(small, 'Z', sizeof small);
        tlsmail__dn_text(leaf.subject, leaf.subject_len, leaf.subject_cut, small, cap);
        sl = strlen(small);
        CHECK(sl < cap);
        CHECK(sl < 3 || !strcmp(small + sl - 3, "..."));
        if (sl >= 3) CHECK(!strncmp(small, r.subject, sl - 3));
        /* never half an escape: the cut falls where an escape (\XX or \c)
           ends or a plain character does */
        if (sl >= 3) {
            size_t at = 0, cut = sl - 3;
            while (at < cut) at += r.subject[at] != '\\' ? 1 : tlsmail__isxdigit((unsigned char)r.subject[at + 1]) ? 3 : 2;
            CHECK_EQ_INT(at, cut);
        }
    }
}

/* The times: exactly RFC 5280's two forms, fields in range, nothing else. */
TEST(report_times_strict) {
    static const struct { unsigned tag; const char *v; long long want; } good[] = {
        { 0x17, "700101000000Z", 0 }, { 0x17, "491231235959Z", 2524607999LL },
        { 0x17, "500101000000Z", -631152000LL }, { 0x18, "19700101000000Z", 0 },
        { 0x18, "20000229120000Z", 951825600LL }, { 0x18, "99991231235959Z", 253402300799LL },
        { 0x18, "00000101000000Z", -62167219200LL }, { 0x17, "160630235960Z", 1467331200LL },
    };
    static const struct { unsigned tag; const char *v; } bad[] = {
        { 0x17, "7001010000Z" },       { 0x17, "700101000000" },     { 0x17, "700101000000+0100" },
        { 0x18, "19700101000000.5Z" }, { 0x18, "197001010000Z" },    { 0x17, "701301000000Z" },
        { 0x17, "700001000000Z" },     { 0x17, "700132000000Z" },    { 0x17, "700229000000Z" },
        { 0x18, "21000229000000Z" },   { 0x17, "700101240000Z" },    { 0x17, "700101006000Z" },
        { 0x17, "700101000061Z" },     { 0x17, "70010100000 Z" },    { 0x17, "7a0101000000Z" },
        { 0x18, "700101000000Z" },     { 0x17, "19700101000000Z" },  { 0x04, "700101000000Z" },
        { 0x17, "-70101000000Z" },     { 0x17, "700431000000Z" },
    };
    size_t i;
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        long long t = -1;
        CHECK_EQ_INT(tlsmail__der_time(good[i].tag, (const unsigned char *)good[i].v, strlen(good[i].v), &t), 0);
        CHECK_EQ_INT(t, good[i].want);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long long t = 7;
        CHECK_EQ_INT(tlsmail__der_time(bad[i].tag, (const unsigned char *)bad[i].v, strlen(bad[i].v), &t), -1);
        CHECK_EQ_INT(t, 7);
    }
}

/* Names that are not DER inside, handed to the formatter directly: it
   stops with "..." at the first thing it can't read and reads nothing
   past the end (the sanitizer build checks that). */
TEST(report_hostile_names) {
    static const struct { const char *der; size_t n; const char *want; } cases[] = {
        { "\x31\x0a\x30\x08\x06\x03\x55\x04\x03\x0c\x01x", 12, "CN=x" },
        { "\x31\x0a\x30\x08\x06\x03\x55\x04\x03\x0c\x02x", 12, "..." },           /* value past the AVA */
        { "\x31\x09\x30\x07\x06\x03\x55\x04\x03\x0c\x00", 11, "CN=" },
        { "\x31\x08\x30\x06\x06\x01\x80\x0c\x01x", 10, "..." },                   /* OID with 0x80 */
        { "\x31\x08\x30\x06\x06\x00\x0c\x02xy", 10, "..." },                      /* empty OID */
        { "\x31\x0a\x30\x08\x06\x03\x55\x04\x03\x1e\x01x", 12, "CN=#1E0178" },    /* odd BMPString */
        { "\x31\x0a\x30\x08\x06\x03\x55\x04\x03\x02\x01\x05", 12, "CN=#020105" }, /* an INTEGER */
        { "\x30\x0a\x30\x08\x06\x03\x55\x04\x03\x0c\x01x", 12, "..." },           /* no SET */
        { "\x31\x00", 2, "" },
        { "\x31", 1, "..." },
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        unsigned char *copy = (unsigned char *)malloc(cases[i].n);
        memcpy(copy, cases[i].der, cases[i].n);
        tlsmail__dn_text(copy, cases[i].n, 0, out, sizeof out);
        CHECK_STR(out, cases[i].want);
        free(copy);
    }
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
    RUN(common_name_wildcard_over_one_label);
    RUN(report_names_and_times_as_openssl_prints_them);
    RUN(report_of_an_openssl_certificate_through_the_pin_engine);
    RUN(report_long_names_cut_safely);
    RUN(report_times_strict);
    RUN(report_hostile_names);
    if (tmpdir[0]) {
        char cmd[100];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) printf("could not remove %s\n", tmpdir);
    }
    return runner_finish();
}
