/* fuzz_session.c - tlsmail_session_import and _export: the text a session
   cache keeps, which a damaged or hostile file can make anything.

   Properties, for any input:
   - import returns 0 or TLSMAIL_EINVAL, and after EINVAL the session is
     cleared to zero, whatever it held before;
   - what imports exports, the ENOMEM size query agrees with the real
     length, the export imports again to the same fields, and exporting
     that gives the same text (one canonical form);
   - an empty session never exports. */
/* Every creation time in an input is fresh, so the clock never decides. */
#define TLSMAIL_SESSION_LIFETIME 100000000000LL
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
#include "fuzz_common.h"

static int same(const tlsmail_session *a, const tlsmail_session *b) {
    return a->valid == b->valid && strcmp(a->host, b->host) == 0 && a->port == b->port &&
           memcmp(a->trust, b->trust, sizeof a->trust) == 0 && a->created == b->created &&
           a->params.version == b->params.version && a->params.cipher_suite == b->params.cipher_suite &&
           a->params.session_id_len == b->params.session_id_len &&
           memcmp(a->params.session_id, b->params.session_id, a->params.session_id_len) == 0 &&
           memcmp(a->params.master_secret, b->params.master_secret, 48) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tlsmail_session a, b;
    char t1[TLSMAIL_SESSION_TEXT], t2[TLSMAIL_SESSION_TEXT], small[16];
    size_t n1 = 0, n2 = 0, n3 = 0, i;
    int rc;
    memset(&a, 0xA5, sizeof a);
    rc = tlsmail_session_import(&a, (const char *)data, size);
    FUZZ_CHECK(rc == 0 || rc == TLSMAIL_EINVAL);
    if (rc) {
        const unsigned char *p = (const unsigned char *)&a;
        for (i = 0; i < sizeof a; i++) FUZZ_CHECK(p[i] == 0);
        FUZZ_CHECK(tlsmail_session_export(&a, t1, sizeof t1, &n1) == TLSMAIL_EINVAL);
        return 0;
    }
    FUZZ_CHECK(tlsmail_session_export(&a, t1, sizeof t1, &n1) == 0);
    FUZZ_CHECK(n1 > 0 && n1 < sizeof t1 && strlen(t1) == n1);
    FUZZ_CHECK(tlsmail_session_export(&a, small, sizeof small, &n3) == TLSMAIL_ENOMEM && n3 == n1);
    FUZZ_CHECK(tlsmail_session_import(&b, t1, n1) == 0);
    FUZZ_CHECK(same(&a, &b));
    FUZZ_CHECK(tlsmail_session_export(&b, t2, sizeof t2, &n2) == 0);
    FUZZ_CHECK(n2 == n1 && memcmp(t1, t2, n1) == 0);
    tlsmail_session_clear(&a);
    tlsmail_session_clear(&b);
    return 0;
}
