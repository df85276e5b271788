/* fuzz_pem.c - tlsmail_trust_pem, and the DER -> trust anchor conversion
   behind it, on arbitrary bytes.

   Input: byte 0 = flags, then the data.
     bit 0     0: the data is PEM text as it is; 1: the data is DER entries (a
               2-octet big-endian length, then that many octets) that the
               target wraps into PEM blocks itself, so the fuzzer's mutations
               reach the X.509 decoding
     bits 1-3  the allocation (1..7) that fails, 0: none
     bit 4     wrapped: CRLF line ends        bit 5  wrapped: no final newline
     bits 6-7  wrapped: the label: CERTIFICATE, X509 CERTIFICATE (both taken),
               TRUSTED CERTIFICATE, PRIVATE KEY (both ignored)

   Properties:
   - the result is 0, TLSMAIL_ETRUST, or TLSMAIL_ENOMEM exactly when an
     allocation failed; 0 means at least one anchor (the trust is loaded);
   - the trust is consistent: count <= cap, anchors only with cap, each
     anchor an RSA or EC key with its DN, no two the same; no more anchors
     than "-----BEGIN" lines;
   - wrapped: the anchors are exactly the reference's: each entry of at
     most TLSMAIL__CERT_MAX octets that BearSSL's decoder, given it in one
     push, decodes (DN at most 1024 octets) to a key the policy accepts
     (tlsmail__key_usable: no RSA under 2048 bits) and the certificate
     walker takes as an anchor (tlsmail__anchor_fit: DER, no
     nameConstraints, an extendedKeyUsage that allows servers), once per DN
     and key, in order, with its CA flag;
   - loading the same bytes again adds nothing (that the reader finds the
     same certificates however its input is cut is fuzz_pemscan's);
   - tlsmail_trust_free releases every allocation (counted here, and LSan)
     and leaves a zeroed trust that keeps only alloc_ctx. */
#include <stddef.h>
typedef struct fuzz_alloc { int fail_at, count, failed; long live; } fuzz_alloc;
static void *fuzz_malloc(void *ctx, size_t n);
static void fuzz_free(void *ctx, void *p);
#define TLSMAIL_MALLOC(ctx, n) fuzz_malloc(ctx, n)
#define TLSMAIL_FREE(ctx, p) fuzz_free(ctx, p)
#define TLSMAIL_IMPLEMENTATION
#define TLSMAIL_NO_SOCKETS
#include "../../tlsmail.h"
#include "fuzz_common.h"

static void *fuzz_malloc(void *ctx, size_t n) {
    fuzz_alloc *a = (fuzz_alloc *)ctx;
    FUZZ_CHECK(a != NULL); /* the library passes the trust's alloc_ctx */
    if (++a->count == a->fail_at) {
        a->failed = 1;
        return NULL;
    }
    a->live++;
    return malloc(n);
}

static void fuzz_free(void *ctx, void *p) {
    fuzz_alloc *a = (fuzz_alloc *)ctx;
    FUZZ_CHECK(a != NULL && p != NULL);
    a->live--;
    free(p);
}

static int verbose(void) {
    static int v = -1;
    if (v < 0) v = getenv("FUZZ_VERBOSE") != NULL;
    return v;
}

static const unsigned char *key_bytes(const br_x509_pkey *k, size_t *n) {
    if (k->key_type == BR_KEYTYPE_RSA) {
        *n = k->key.rsa.nlen;
        return k->key.rsa.n;
    }
    *n = k->key.ec.qlen;
    return k->key.ec.q;
}

static int same_anchor(const br_x509_trust_anchor *a, const br_x509_trust_anchor *b) {
    size_t na, nb;
    const unsigned char *ka = key_bytes(&a->pkey, &na), *kb = key_bytes(&b->pkey, &nb);
    return a->dn.len == b->dn.len && memcmp(a->dn.data, b->dn.data, a->dn.len) == 0 &&
           a->pkey.key_type == b->pkey.key_type && na == nb && memcmp(ka, kb, na) == 0;
}

static void check_trust(const tlsmail_trust *t, size_t begins) {
    size_t i, j;
    FUZZ_CHECK(t->count <= t->cap);
    FUZZ_CHECK((t->anchors != NULL) == (t->cap > 0));
    FUZZ_CHECK(t->kind == (t->count ? TLSMAIL__TRUST_SOURCES : TLSMAIL__TRUST_DEFAULT));
    FUZZ_CHECK(t->count <= begins);
    for (i = 0; i < t->count; i++) {
        const br_x509_trust_anchor *a = &t->anchors[i];
        FUZZ_CHECK(a->dn.data != NULL && a->dn.len <= 1024);
        FUZZ_CHECK(a->flags == 0 || a->flags == BR_X509_TA_CA);
        if (a->pkey.key_type == BR_KEYTYPE_RSA) {
            FUZZ_CHECK(a->pkey.key.rsa.nlen > 0 && a->pkey.key.rsa.elen > 0);
            FUZZ_CHECK(a->pkey.key.rsa.e == a->pkey.key.rsa.n + a->pkey.key.rsa.nlen);
        } else {
            FUZZ_CHECK(a->pkey.key_type == BR_KEYTYPE_EC && a->pkey.key.ec.qlen > 0);
        }
        /* the key sits right after the DN, in the same allocation */
        FUZZ_CHECK(key_bytes(&a->pkey, &j) == a->dn.data + a->dn.len);
        for (j = 0; j < i; j++) FUZZ_CHECK(!same_anchor(a, &t->anchors[j]));
    }
}

/* tlsmail_trust_free: no allocation left, and a zeroed trust but alloc_ctx. */
static void free_and_check(tlsmail_trust *t, fuzz_alloc *a) {
    tlsmail_trust zero;
    tlsmail_trust_free(t);
    FUZZ_CHECK(a->live == 0);
    memset(&zero, 0, sizeof zero);
    zero.alloc_ctx = a;
    FUZZ_CHECK(memcmp(t, &zero, sizeof zero) == 0);
}

static const char *const labels[] = { "CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE",
                                      "PRIVATE KEY" };

typedef struct { unsigned char *p; size_t n, cap; } text;

static void add(text *t, const void *s, size_t n) {
    if (n == 0) return;
    if (t->n + n > t->cap) {
        t->cap = (t->n + n) * 2 + 64;
        t->p = (unsigned char *)realloc(t->p, t->cap);
        FUZZ_CHECK(t->p != NULL);
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
}

/* Entries of the wrapped mode, as PEM (RFC 7468: 64 base64 characters a line). */
static void wrap(const uint8_t *q, const uint8_t *end, int flags, text *pem,
                 const uint8_t **der, size_t *len, size_t *n, size_t max) {
    const char *nl = (flags & 16) ? "\r\n" : "\n", *label = labels[flags >> 6 & 3];
    static char b64[8192];
    *n = 0;
    while (q + 2 <= end && *n < max) {
        size_t l = (size_t)q[0] << 8 | q[1], bl, i;
        q += 2;
        if (l > (size_t)(end - q)) l = (size_t)(end - q);
        if (l > 6000) l = 6000;
        der[*n] = q;
        len[(*n)++] = l;
        bl = tlsmail__b64_encode(b64, sizeof b64, q, l);
        FUZZ_CHECK(l == 0 || bl > 0);
        add(pem, "-----BEGIN ", 11);
        add(pem, label, strlen(label));
        add(pem, "-----", 5);
        add(pem, nl, strlen(nl));
        for (i = 0; i < bl; i += 64) {
            add(pem, b64 + i, bl - i < 64 ? bl - i : 64);
            add(pem, nl, strlen(nl));
        }
        add(pem, "-----END ", 9);
        add(pem, label, strlen(label));
        add(pem, "-----", 5);
        if (!((flags & 32) && q + l + 2 > end)) add(pem, nl, strlen(nl));
        q += l;
    }
}

/* The DN callback of the reference decoder. */
typedef struct { unsigned char dn[1100]; size_t n; int over; } dnbuf;
static void ref_dn(void *ctx, const void *buf, size_t len) {
    dnbuf *d = (dnbuf *)ctx;
    if (len > 1024 - d->n) { d->over = 1; return; }
    memcpy(d->dn + d->n, buf, len);
    d->n += len;
}

/* What the wrapped entries must give: anchors in ref (static storage). */
static size_t reference(const uint8_t *const *der, const size_t *len, size_t n,
                        br_x509_trust_anchor *ref, int *decoded) {
    static dnbuf dns[16];
    static unsigned char keys[16][1200];
    static br_x509_decoder_context dc;
    static tlsmail__certwalk cw;
    size_t i, j, count = 0;
    *decoded = 0;
    for (i = 0; i < n; i++) {
        const br_x509_pkey *pk;
        br_x509_trust_anchor *a = &ref[count];
        size_t kl, el = 0;
        memset(&dns[count], 0, sizeof dns[count]);
        if (len[i] > TLSMAIL__CERT_MAX) continue;
        br_x509_decoder_init(&dc, ref_dn, &dns[count]);
        /* through the library's guard: BearSSL's decoder itself jumps
           through NULL on some inputs (the audit's pem_crash) */
        if (len[i] && tlsmail__x509_push(&dc, der[i], len[i]) != 0) continue;
        pk = br_x509_decoder_get_pkey(&dc);
        if (br_x509_decoder_last_error(&dc) != 0 || !pk || dns[count].over) continue;
        if (!tlsmail__key_usable(pk)) continue;
        tlsmail__cw_init(&cw, len[i]);
        tlsmail__cw_push(&cw, der[i], len[i]);
        if (!tlsmail__anchor_fit(&cw)) continue;
        (*decoded)++;
        memset(a, 0, sizeof *a);
        a->dn.data = dns[count].dn;
        a->dn.len = dns[count].n;
        a->flags = br_x509_decoder_isCA(&dc) ? BR_X509_TA_CA : 0;
        a->pkey = *pk;
        kl = pk->key_type == BR_KEYTYPE_RSA ? pk->key.rsa.nlen : pk->key.ec.qlen;
        if (pk->key_type == BR_KEYTYPE_RSA) el = pk->key.rsa.elen;
        FUZZ_CHECK(kl + el <= sizeof keys[count]);
        memcpy(keys[count], pk->key_type == BR_KEYTYPE_RSA ? pk->key.rsa.n : pk->key.ec.q, kl);
        if (el) memcpy(keys[count] + kl, pk->key.rsa.e, el);
        if (pk->key_type == BR_KEYTYPE_RSA) {
            a->pkey.key.rsa.n = keys[count];
            a->pkey.key.rsa.e = keys[count] + kl;
        } else {
            a->pkey.key.ec.q = keys[count];
        }
        for (j = 0; j < count && !same_anchor(a, &ref[j]); j++) {}
        if (j == count) count++;
    }
    return count;
}

static size_t count_begins(const unsigned char *p, size_t n) {
    size_t i, c = 0;
    for (i = 0; i + 10 <= n; i++) c += memcmp(p + i, "-----BEGIN", 10) == 0;
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static br_x509_trust_anchor ref[16];
    const uint8_t *der[16];
    size_t len[16], nder = 0, begins, nref = 0, i, count;
    text pem = { NULL, 0, 0 };
    fuzz_alloc a;
    tlsmail_trust t;
    int flags, rc, rc2, decoded = 0;
    if (size < 1) return 0;
    flags = data[0];
    if (flags & 1) {
        wrap(data + 1, data + size, flags, &pem, der, len, &nder, 16);
    } else {
        add(&pem, data + 1, size - 1);
    }
    begins = count_begins(pem.p, pem.n);

    memset(&a, 0, sizeof a);
    a.fail_at = flags >> 1 & 7;
    memset(&t, 0, sizeof t);
    t.alloc_ctx = &a;
    rc = tlsmail_trust_pem(&t, pem.p, pem.n);
    if (verbose())
        fprintf(stderr, "%lu octets of PEM, %lu blocks: %d (%s), %lu anchors, %d allocations\n",
                (unsigned long)pem.n, (unsigned long)begins, rc, tlsmail_strerror(rc),
                (unsigned long)t.count, a.count);
    FUZZ_CHECK(rc == 0 || rc == TLSMAIL_ETRUST || rc == TLSMAIL_ENOMEM);
    FUZZ_CHECK((rc == TLSMAIL_ENOMEM) == (a.failed != 0));
    if (rc == 0) FUZZ_CHECK(t.count >= 1);
    check_trust(&t, begins);
    count = t.count;
    a.fail_at = 0; /* only the first load has an allocation fail */
    if (flags & 1 && !a.failed) {
        int want = (flags >> 6 & 3) < 2;
        nref = want ? reference(der, len, nder, ref, &decoded) : 0;
        FUZZ_CHECK(rc == (decoded ? 0 : TLSMAIL_ETRUST));
        FUZZ_CHECK(t.count == nref);
        for (i = 0; i < nref; i++) {
            FUZZ_CHECK(same_anchor(&t.anchors[i], &ref[i]));
            FUZZ_CHECK(t.anchors[i].flags == ref[i].flags);
            if (ref[i].pkey.key_type == BR_KEYTYPE_RSA) {
                FUZZ_CHECK(t.anchors[i].pkey.key.rsa.elen == ref[i].pkey.key.rsa.elen);
                FUZZ_CHECK(memcmp(t.anchors[i].pkey.key.rsa.e, ref[i].pkey.key.rsa.e,
                                  ref[i].pkey.key.rsa.elen) == 0);
            } else {
                FUZZ_CHECK(t.anchors[i].pkey.key.ec.curve == ref[i].pkey.key.ec.curve);
            }
        }
    }
    if (!a.failed) {
        /* the same bytes again: nothing new, the same verdict */
        rc2 = tlsmail_trust_pem(&t, pem.p, pem.n);
        FUZZ_CHECK(rc2 == rc && t.count == count);
        check_trust(&t, begins);
    }
    free_and_check(&t, &a);
    free(pem.p);
    return 0;
}
