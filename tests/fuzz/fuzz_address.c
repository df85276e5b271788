/* fuzz_address.c - tlsmail__check_mailbox (and tlsmail_check_address)
   against addr_ref.h, an independent reading of the RFC 5321 4.1.2
   Mailbox grammar with RFC 6531 3.3 UTF-8.

   The input, up to its first NUL, is the address. It is checked as a MAIL
   argument, a RCPT argument and a plain Mailbox; library and reference
   must agree on each, tlsmail_check_address must answer as RCPT does, and
   an accepted address can't leave "MAIL FROM:<...>": no control octet,
   a space only inside a quoted local part, '<' and '>' only there or in
   an address literal. */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
#include "fuzz_common.h"
#include "addr_ref.h"

/* FUZZ_VERBOSE=1: print each verdict (to see what the seeds reach). */
static int verbose(void) {
    static int v = -1;
    if (v < 0) v = getenv("FUZZ_VERBOSE") != NULL;
    return v;
}

/* No control octet; a space only inside a quoted local part; '<' and '>'
   only there or inside an address literal (dcontent holds both). */
static void check_stays_inside(const char *a) {
    size_t i, n = strlen(a), qend = 0, at;
    if (a[0] == '"') /* the closing quote of a quoted local part */
        for (qend = 1; qend < n && a[qend] != '"'; qend++)
            if (a[qend] == '\\') qend++;
    for (at = qend; at < n && a[at] != '@'; at++) {}
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        FUZZ_CHECK(c >= 0x20 && c != 0x7F);
        if (c == ' ') FUZZ_CHECK(i < qend);
        if (c == '<' || c == '>') FUZZ_CHECK(i < qend || (i > at && a[at + 1] == '['));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *a = (char *)malloc(size + 1);
    int kind;
    FUZZ_CHECK(a != NULL);
    memcpy(a, data, size);
    a[size] = 0;
    for (kind = REF_RCPT; kind <= REF_MAILBOX; kind++) {
        int lib = tlsmail__check_mailbox(a, kind), ref = ref_check(a, kind);
        FUZZ_CHECK(lib == 0 || lib == TLSMAIL_EINVAL);
        if (verbose()) fprintf(stderr, "kind %d: library %s, reference %s\n", kind,
                               lib ? "refuses" : "accepts", ref ? "accepts" : "refuses");
        FUZZ_CHECK((lib == 0) == (ref == 1));
        if (lib == 0) check_stays_inside(a);
    }
    FUZZ_CHECK(tlsmail_check_address(a) == tlsmail__check_mailbox(a, TLSMAIL__ADDR_RCPT));
    free(a);
    return 0;
}
