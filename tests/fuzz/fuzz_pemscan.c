/* fuzz_pemscan.c - the PEM reader (tlsmail__pem_*) that trust lookups run
   over bundles and directories, and OpenSSL's subject hash
   (tlsmail__name_hash) of every name it yields.

   The input is PEM text; its first octet picks how it is cut. Properties:
   - no crash and no access outside the buffers (ASan);
   - the certificates (count, DER bytes) do not depend on the cutting;
   - every DER handed out fits its buffer and comes from a block between a
     BEGIN CERTIFICATE and an END line;
   - the subject hash of each certificate's subject, and of its bytes
     taken as a name, returns without crashing, and the same twice. */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
#include "fuzz_common.h"

enum { MAXCERTS = 64 };
static unsigned char whole_der[MAXCERTS][TLSMAIL__CERT_MAX], cut_der[TLSMAIL__CERT_MAX];
static size_t whole_len[MAXCERTS];
static tlsmail__pem pem;
static tlsmail__certwalk cw;

static size_t scan_whole(const uint8_t *p, size_t n) {
    static unsigned char der[TLSMAIL__CERT_MAX];
    size_t certs = 0, off = 0, used;
    tlsmail__pem_reset(&pem, der, sizeof der);
    for (;;) {
        int got = off < n ? tlsmail__pem_push(&pem, p + off, n - off, &used) : tlsmail__pem_finish(&pem);
        if (off < n) off += used;
        if (got) {
            FUZZ_CHECK(pem.len > 0 && pem.len <= sizeof der);
            if (certs < MAXCERTS) {
                memcpy(whole_der[certs], der, pem.len);
                whole_len[certs] = pem.len;
            }
            certs++;
        }
        if (!got && off >= n) return certs;
    }
}

static void hash_twice(const unsigned char *dn, size_t n) {
    unsigned long a = 0, b = 0;
    int ra = tlsmail__name_hash(dn, n, &a), rb = tlsmail__name_hash(dn, n, &b);
    FUZZ_CHECK(ra == rb && (ra != 0 || a == b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint64_t rng;
    size_t certs, k = 0, i = 0, n, used;
    const uint8_t *p;
    if (size < 1) return 0;
    rng = fuzz_hash(data, size);
    p = data + 1;
    n = size - 1;
    certs = scan_whole(p, n);
    /* the same text in pieces */
    tlsmail__pem_reset(&pem, cut_der, sizeof cut_der);
    for (;;) {
        size_t piece = data[0] == 0 ? 1 : 1 + (size_t)(fuzz_next(&rng) % (data[0] + 1u));
        int got;
        if (i < n) {
            if (piece > n - i) piece = n - i;
            got = tlsmail__pem_push(&pem, p + i, piece, &used);
            i += used;
        } else {
            got = tlsmail__pem_finish(&pem);
        }
        if (got) {
            FUZZ_CHECK(k < certs);
            if (k < MAXCERTS) FUZZ_CHECK(pem.len == whole_len[k] && memcmp(cut_der, whole_der[k], pem.len) == 0);
            tlsmail__cw_init(&cw, pem.len);
            tlsmail__cw_push(&cw, cut_der, pem.len);
            if (cw.done && !cw.err && !cw.dn_over) hash_twice(cw.subject, cw.subject_len);
            hash_twice(cut_der, pem.len);
            k++;
        }
        if (!got && i >= n) break;
    }
    FUZZ_CHECK(k == certs);
    return 0;
}
