/* win_store.c - the current user's certificate stores, for tests/cross
   under wine (in the suite's own prefix): puts a certificate into the ROOT
   or the Disallowed store and takes it out again, sets the purposes
   Windows keeps beside a root, and runs the library's own lookup in the
   ROOT store, the one a zeroed tlsmail_trust means on Windows.

       win_store add STORE CAFILE       STORE: ROOT or Disallowed
       win_store remove STORE CAFILE    every copy; prints "removed N"
       win_store has STORE CAFILE       prints "present" or "absent"
       win_store purposes CAFILE none|clear|OID...
                                        the ROOT entry's purposes property:
                                        no purpose at all, no property, or
                                        these OIDs only
       win_store lookup CAFILE N        N lookups of the CA's subject, as
                                        the handshake asks for the issuer
                                        of a certificate it signed

   add, remove, has and purposes work on the user's own registry store
   (HKCU, the prefix's user.reg): wine persists neither a deletion made
   through the system store, which also shows the machine's roots, nor a
   property set on a copy already in a store, so purposes takes the entry
   out and adds it back with the property on it.
   CAFILE holds one PEM certificate. lookup prints
       store <certificates in ROOT>
       found <anchors> <1 if the first has the CA's key, else 0>
       heap <peak octets> <allocations> <octets still held>
       us <first lookup> <mean of the others>  (microseconds)
   Exit 0, or 1 with the reason on stderr. */
#include "../lib/heap_count.h"
#define TLSMAIL_NO_SOCKETS
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char der[16384];
static DWORD derlen;

static int fail(const char *what) {
    fprintf(stderr, "win_store: %s (error 0x%08lx)\n", what, (unsigned long)GetLastError());
    return 1;
}

/* The first PEM certificate of path, into der; crypt32 decodes it. */
static int read_cert(const char *path) {
    static char pem[32768];
    FILE *f = fopen(path, "rb");
    size_t n;
    if (!f) return fail(path);
    n = fread(pem, 1, sizeof pem, f);
    fclose(f);
    derlen = sizeof der;
    if (!CryptStringToBinaryA(pem, (DWORD)n, CRYPT_STRING_BASE64HEADER, der, &derlen, NULL, NULL))
        return fail("no PEM certificate");
    return 0;
}

static const wchar_t *store_name(const char *s) {
    if (!strcmp(s, "ROOT")) return L"ROOT";
    if (!strcmp(s, "Disallowed")) return L"Disallowed";
    return NULL;
}

/* The current user's registry store, for writing. */
static HCERTSTORE open_store(const wchar_t *name) {
    return CertOpenStore(CERT_STORE_PROV_SYSTEM_REGISTRY_W, 0, 0, CERT_SYSTEM_STORE_CURRENT_USER, name);
}

/* The store's copy of our certificate, or NULL. */
static PCCERT_CONTEXT find_cert(HCERTSTORE s) {
    PCCERT_CONTEXT want = CertCreateCertificateContext(X509_ASN_ENCODING, der, derlen), got;
    if (!want) return NULL;
    got = CertFindCertificateInStore(s, X509_ASN_ENCODING, 0, CERT_FIND_EXISTING, want, NULL);
    CertFreeCertificateContext(want);
    return got;
}

static int cmd_add(HCERTSTORE s) {
    if (!CertAddEncodedCertificateToStore(s, X509_ASN_ENCODING, der, derlen, CERT_STORE_ADD_REPLACE_EXISTING,
                                          NULL))
        return fail("CertAddEncodedCertificateToStore");
    printf("added\n");
    return 0;
}

static int cmd_remove(HCERTSTORE s) {
    PCCERT_CONTEXT c;
    int n = 0;
    while (n < 16 && (c = find_cert(s)) != NULL) {
        if (!CertDeleteCertificateFromStore(c)) return fail("CertDeleteCertificateFromStore");
        n++;
    }
    printf("removed %d\n", n);
    return 0;
}

static int cmd_has(HCERTSTORE s) {
    PCCERT_CONTEXT c = find_cert(s);
    printf("%s\n", c ? "present" : "absent");
    if (c) CertFreeCertificateContext(c);
    return 0;
}

/* The ROOT entry again, with the purposes property set on it first. */
static int cmd_purposes(HCERTSTORE s, int argc, char **argv) {
    PCCERT_CONTEXT c;
    CERT_ENHKEY_USAGE u;
    int ok;
    if (cmd_remove(s)) return 1;
    if ((c = CertCreateCertificateContext(X509_ASN_ENCODING, der, derlen)) == NULL)
        return fail("CertCreateCertificateContext");
    u.cUsageIdentifier = 0;
    u.rgpszUsageIdentifier = NULL;
    if (argc == 1 && !strcmp(argv[0], "clear")) ok = 1;
    else {
        if (!(argc == 1 && !strcmp(argv[0], "none"))) {
            u.cUsageIdentifier = (DWORD)argc;
            u.rgpszUsageIdentifier = argv;
        }
        ok = CertSetEnhancedKeyUsage(c, &u);
    }
    ok = ok && CertAddCertificateContextToStore(s, c, CERT_STORE_ADD_NEW, NULL);
    CertFreeCertificateContext(c);
    if (!ok) return fail("CertSetEnhancedKeyUsage, CertAddCertificateContextToStore");
    printf("purposes set\n");
    return 0;
}

static long long now_us(void) {
    LARGE_INTEGER f, t;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&t);
    return (long long)(t.QuadPart / f.QuadPart * 1000000 + t.QuadPart % f.QuadPart * 1000000 / f.QuadPart);
}

/* The library's lookup, with a zeroed trust (the system store): the CA's
   subject as the issuer's name, as a handshake asks for it. */
static int cmd_lookup(int n) {
    static tlsmail__certwalk cw;
    static tlsmail__certdec dec;
    static tlsmail__found found;
    const br_x509_pkey *key;
    tlsmail__names want;
    HCERTSTORE s;
    PCCERT_CONTEXT c = NULL;
    long long t0, first = 0, rest = 0;
    int i, certs = 0, same = 0, err;
    size_t nfound = 0;
    tlsmail__cw_init(&cw, derlen);
    tlsmail__cw_push(&cw, der, derlen);
    if (cw.err || !cw.done || !(key = tlsmail__cert_decode(&dec, der, derlen)))
        return fail("not a usable certificate");
    want.ca = cw.subject;
    want.calen = cw.subject_len;
    want.leaf = NULL;
    want.leaflen = 0;
    heap_peak = heap_live;
    heap_allocs = 0;
    for (i = 0; i < n; i++) {
        memset(&found, 0, sizeof found);
        t0 = now_us();
        err = tlsmail__trust_lookup(NULL, &found, NULL, &want);
        t0 = now_us() - t0;
        if (i == 0) first = t0;
        else rest += t0;
        if (err) return fail(tlsmail_strerror(err));
        nfound = found.n;
        same = found.n > 0 && tlsmail__same_key(&found.ta[0].pkey, key) && found.ta[0].dn.len == cw.subject_len &&
               !memcmp(found.ta[0].dn.data, cw.subject, cw.subject_len);
        tlsmail__found_free(&found, NULL);
    }
    /* counted after the lookups: the first one opens the store first */
    if ((s = CertOpenSystemStoreW(0, L"ROOT")) == NULL) return fail("CertOpenSystemStore");
    while ((c = CertEnumCertificatesInStore(s, c)) != NULL) certs++;
    CertCloseStore(s, 0);
    printf("store %d\nfound %lu %d\nheap %lu %lu %lu\nus %lld %lld\n", certs, (unsigned long)nfound, same,
           (unsigned long)heap_peak, (unsigned long)heap_allocs, (unsigned long)heap_live, first,
           n > 1 ? rest / (n - 1) : 0);
    return 0;
}

static int usage(void) {
    fprintf(stderr, "usage: win_store add|remove|has ROOT|Disallowed CAFILE\n"
                    "       win_store purposes CAFILE none|clear|OID...\n"
                    "       win_store lookup CAFILE N\n");
    return 2;
}

int main(int argc, char **argv) {
    const wchar_t *name;
    HCERTSTORE s;
    int rc;
    if (argc < 4) return usage();
    if (!strcmp(argv[1], "lookup")) {
        if (read_cert(argv[2])) return 1;
        return cmd_lookup(atoi(argv[3]) > 0 ? atoi(argv[3]) : 1);
    }
    if (!strcmp(argv[1], "purposes")) {
        if (read_cert(argv[2])) return 1;
        if ((s = open_store(L"ROOT")) == NULL) return fail("CertOpenStore ROOT");
        rc = cmd_purposes(s, argc - 3, argv + 3);
    } else {
        if (argc != 4 || (name = store_name(argv[2])) == NULL) return usage();
        if (read_cert(argv[3])) return 1;
        if ((s = open_store(name)) == NULL) return fail("CertOpenStore");
        if (!strcmp(argv[1], "add")) rc = cmd_add(s);
        else if (!strcmp(argv[1], "remove")) rc = cmd_remove(s);
        else if (!strcmp(argv[1], "has")) rc = cmd_has(s);
        else rc = usage();
    }
    CertCloseStore(s, 0);
    return rc;
}
