/* fuzz_pin.c - the pinned-key X.509 engine (tlsmail__pin_vtable), driven as
   BearSSL's SSL engine drives it: start_chain, then per certificate
   start_cert(length), append in fragments, end_cert; end_chain, get_pkey.

   Input: byte 0 = flags, bit 0: the pin is the right one, the SHA-256 of
   the first certificate's SubjectPublicKeyInfo as its DER holds it (what
   openssl and curl compute); else the pin is the next 32 octets. Bits 1-7:
   the largest fragment, 1..128. Then the chain: entries of a 2-octet
   big-endian length and that many octets (the last cut short by the end).

   The chain is fed whole (one append per certificate), octet by octet, and
   in fragments of 0..max octets drawn from the input; then again on the
   same engine (a second handshake). Properties:
   - every way gives the same verdict and the same key: fragmentation and
     reuse don't matter;
   - the reference: BearSSL's decoder given the first entry in one push.
     If it decodes the certificate, its key's canonical SPKI is the one in
     the DER, and the pin is right, the chain passes and get_pkey gives
     that key; a chain that passes always has all of this (no pin bypass);
   - an empty chain is BR_ERR_X509_EMPTY_CHAIN; a chain that passes has
     its key from get_pkey, for both usages;
   - no crash, UB or leak (the engine has no heap). */
#define TLSMAIL_IMPLEMENTATION
#define TLSMAIL_NO_SOCKETS
#include "../../tlsmail.h"
#include "fuzz_common.h"

enum { MAX_CERTS = 8 };

typedef struct {
    const uint8_t *der[MAX_CERTS];
    size_t len[MAX_CERTS];
    size_t n;
} chain;

typedef struct {
    unsigned verdict;
    int has_key, type, curve;
    unsigned char k1[600], k2[600];
    size_t l1, l2;
} outcome;

static int verbose(void) {
    static int v = -1;
    if (v < 0) v = getenv("FUZZ_VERBOSE") != NULL;
    return v;
}

static void key_of(const br_x509_pkey *k, outcome *o) {
    o->has_key = k != NULL;
    if (!k) return;
    o->type = k->key_type;
    if (k->key_type == BR_KEYTYPE_RSA) {
        FUZZ_CHECK(k->key.rsa.nlen <= sizeof o->k1 && k->key.rsa.elen <= sizeof o->k2);
        o->l1 = k->key.rsa.nlen;
        o->l2 = k->key.rsa.elen;
        memcpy(o->k1, k->key.rsa.n, o->l1);
        memcpy(o->k2, k->key.rsa.e, o->l2);
    } else {
        FUZZ_CHECK(k->key_type == BR_KEYTYPE_EC && k->key.ec.qlen <= sizeof o->k1);
        o->curve = k->key.ec.curve;
        o->l1 = k->key.ec.qlen;
        memcpy(o->k1, k->key.ec.q, o->l1);
    }
}

static int same(const outcome *a, const outcome *b) {
    if (a->verdict != b->verdict || a->has_key != b->has_key) return 0;
    if (!a->has_key) return 1;
    return a->type == b->type && a->curve == b->curve && a->l1 == b->l1 && a->l2 == b->l2 &&
           memcmp(a->k1, b->k1, a->l1) == 0 && memcmp(a->k2, b->k2, a->l2) == 0;
}

/* mode 0: whole, 1: octet by octet, 2: fragments of 0..max from seed */
static void run(tlsmail__pin *p, const chain *c, int mode, size_t max, uint64_t seed, outcome *o) {
    const br_x509_class **vt = &p->vtable;
    size_t i;
    unsigned usages = 0;
    memset(o, 0, sizeof *o);
    (*vt)->start_chain(vt, "mail.example.org");
    for (i = 0; i < c->n; i++) {
        size_t off = 0;
        (*vt)->start_cert(vt, (uint32_t)c->len[i]);
        while (off < c->len[i]) {
            size_t k = mode == 0 ? c->len[i] : mode == 1 ? 1 : (size_t)(fuzz_next(&seed) % (max + 1));
            if (k > c->len[i] - off) k = c->len[i] - off;
            (*vt)->append(vt, c->der[i] + off, k);
            off += k;
        }
        (*vt)->end_cert(vt);
    }
    o->verdict = (*vt)->end_chain(vt);
    /* BearSSL asks for the key only of a chain that passed (bearssl_x509.h) */
    if (o->verdict == 0) {
        key_of((*vt)->get_pkey(vt, &usages), o);
        FUZZ_CHECK(o->has_key && usages == (BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN));
    }
}

/* DER TLV at p[0..n): header and content lengths; 0 if it isn't one
   (definite lengths of 1 to 4 octets). */
static int tlv(const uint8_t *p, size_t n, size_t *hl, size_t *cl) {
    size_t l = 0, k, i;
    if (n < 2 || (p[0] & 0x1F) == 0x1F) return 0;
    if (p[1] < 0x80) {
        *hl = 2;
        l = p[1];
    } else {
        k = p[1] & 0x7Fu;
        if (k == 0 || k > 4 || n < 2 + k) return 0;
        for (i = 0; i < k; i++) l = l << 8 | p[2 + i];
        *hl = 2 + k;
    }
    if (l > n - *hl) return 0;
    *cl = l;
    return 1;
}

/* RFC 5280 4.1: Certificate = SEQUENCE { tbsCertificate = SEQUENCE {
   [0] version OPTIONAL, serialNumber, signature, issuer, validity,
   subject, subjectPublicKeyInfo, ... }, ... }. The SPKI's whole TLV. */
static int find_spki(const uint8_t *d, size_t n, const uint8_t **spki, size_t *len) {
    size_t hl, cl, i;
    if (!tlv(d, n, &hl, &cl) || d[0] != 0x30) return 0;
    d += hl;
    n = cl;
    if (!tlv(d, n, &hl, &cl) || d[0] != 0x30) return 0;
    d += hl;
    n = cl;
    for (i = 0; i < 7; i++) {
        if (!tlv(d, n, &hl, &cl)) return 0;
        if (i == 0 && d[0] != 0xA0) i++; /* no version: serial first */
        if (i == 6) {
            if (d[0] != 0x30) return 0;
            *spki = d;
            *len = hl + cl;
            return 1;
        }
        d += hl + cl;
        n -= hl + cl;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tlsmail__pin p;
    chain c;
    outcome o[4], ref;
    unsigned char pin[32], raw_hash[32], canon[32];
    const uint8_t *q, *end = data + size, *spki;
    size_t max, spki_len, i;
    int right, ref_ok = 0, canonical = 0, has_spki = 0;
    uint64_t seed = fuzz_hash(data, size);
    br_x509_decoder_context dc;
    if (size < 1) return 0;
    right = data[0] & 1;
    max = 1 + (size_t)(data[0] >> 1);
    q = data + 1;
    if (!right) {
        if (size < 33) return 0;
        memcpy(pin, q, 32);
        q += 32;
    }
    memset(&c, 0, sizeof c);
    while (q + 2 <= end && c.n < MAX_CERTS) {
        size_t l = (size_t)q[0] << 8 | q[1];
        q += 2;
        if (l > (size_t)(end - q)) l = (size_t)(end - q);
        c.der[c.n] = q;
        c.len[c.n++] = l;
        q += l;
    }

    /* the reference, from the first certificate */
    memset(&ref, 0, sizeof ref);
    if (c.n > 0) {
        br_sha256_context h;
        br_x509_decoder_init(&dc, NULL, NULL);
        if (c.len[0]) br_x509_decoder_push(&dc, c.der[0], c.len[0]);
        ref_ok = br_x509_decoder_last_error(&dc) == 0 && br_x509_decoder_get_pkey(&dc) != NULL;
        if (ref_ok) key_of(br_x509_decoder_get_pkey(&dc), &ref);
        if (find_spki(c.der[0], c.len[0], &spki, &spki_len)) {
            has_spki = 1;
            br_sha256_init(&h);
            br_sha256_update(&h, spki, spki_len);
            br_sha256_out(&h, raw_hash);
        }
        if (ref_ok && has_spki && tlsmail__spki_sha256(br_x509_decoder_get_pkey(&dc), canon) == 0)
            canonical = memcmp(canon, raw_hash, 32) == 0;
    }
    if (right) { /* no SubjectPublicKeyInfo to take it from: no pin is right */
        if (has_spki) memcpy(pin, raw_hash, 32);
        else memset(pin, 0, 32);
    }

    memset(&p, 0, sizeof p); /* as tlsmail__tls_start sets it up */
    p.vtable = &tlsmail__pin_vtable;
    p.pin = pin;
    run(&p, &c, 0, max, seed, &o[0]);
    run(&p, &c, 1, max, seed, &o[1]);
    run(&p, &c, 2, max, seed, &o[2]);
    run(&p, &c, 0, max, seed, &o[3]); /* the same engine once more */
    if (verbose())
        fprintf(stderr, "certs %lu, reference %s%s, pin %s: verdict %u\n", (unsigned long)c.n,
                ref_ok ? "decodes" : "refuses", canonical ? " (canonical SPKI)" : "",
                right ? "right" : "from input", o[0].verdict);
    for (i = 1; i < 4; i++) FUZZ_CHECK(same(&o[0], &o[i]));
    if (c.n == 0) FUZZ_CHECK(o[0].verdict == BR_ERR_X509_EMPTY_CHAIN);
    if (right && has_spki && ref_ok && canonical) {
        FUZZ_CHECK(o[0].verdict == 0);
        FUZZ_CHECK(same(&o[0], &ref));
    }
    if (o[0].verdict == 0) {
        FUZZ_CHECK(ref_ok && o[0].has_key && same(&o[0], &ref));
        FUZZ_CHECK(tlsmail__spki_sha256(br_x509_decoder_get_pkey(&dc), canon) == 0);
        FUZZ_CHECK(memcmp(canon, pin, 32) == 0);
    }
    return 0;
}
