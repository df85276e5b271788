/* fuzz_challenge.c - what reads the server's OAuth error challenge (RFC 7628
   3.2.2): tlsmail__oauth_challenge (base64 JSON into the reply text) and
   tlsmail__oauth_status (its "status"), and the encoder that writes the
   client's responses, tlsmail__b64_parts, against the one-shot decoder.

   Input byte 0: bits 0-5 the output capacity - 1 (1..64, or the whole
   buffer when 63), bit 6 a gs2 piece; the rest is the challenge text, handed
   over as an exact-size heap copy so ASan sees any read past its end.
   Invariants: the decoder returns -1 with out "" or a length below the
   capacity with out NUL-terminated at it and free of controls; the status is
   NUL-terminated within its buffer, printable, and found in the JSON; the
   streamed base64 decodes back to the input (',' and '=' escaped in a gs2
   piece), in pieces of at most 64 characters, its length as computed. */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
#include "fuzz_common.h"

typedef struct {
    char buf[4 * 4096 + 16];
    size_t n;
} collect;

static int collect_emit(void *ctx, const char *s, size_t n) {
    collect *k = (collect *)ctx;
    FUZZ_CHECK(n > 0 && n <= 64 && n % 4 == 0);
    FUZZ_CHECK(k->n + n <= sizeof k->buf);
    memcpy(k->buf + k->n, s, n);
    k->n += n;
    return 0;
}

static void check_status(const char *json, size_t n) {
    char st[32];
    size_t len;
    tlsmail__oauth_status(json, n, st, sizeof st);
    len = strlen(st);
    FUZZ_CHECK(len < sizeof st);
    if (len) {
        size_t i;
        for (i = 0; i < len; i++) FUZZ_CHECK(st[i] >= 0x20 && st[i] != 0x7F && st[i] != '"');
        FUZZ_CHECK(n >= len);
    }
}

static void check_encoder(const uint8_t *in, size_t n, int gs2) {
    tlsmail__part pt[2];
    collect k;
    unsigned char *dec, *want;
    size_t cut = n / 3, i, w = 0;
    long got;
    pt[0].p = (const char *)in;
    pt[0].n = cut;
    pt[0].gs2 = 0;
    pt[1].p = (const char *)in + cut;
    pt[1].n = n - cut;
    pt[1].gs2 = gs2;
    k.n = 0;
    FUZZ_CHECK(tlsmail__b64_parts(pt, 2, collect_emit, &k) == 0);
    FUZZ_CHECK(k.n == tlsmail__b64_len(tlsmail__parts_len(pt, 2)));
    want = (unsigned char *)malloc(3 * n + 1);
    dec = (unsigned char *)malloc(3 * n + 1);
    FUZZ_CHECK(want && dec);
    for (i = 0; i < n; i++) {
        if (i >= cut && gs2 && (in[i] == ',' || in[i] == '=')) {
            want[w++] = '=';
            want[w++] = in[i] == ',' ? '2' : '3';
            want[w++] = in[i] == ',' ? 'C' : 'D';
        } else {
            want[w++] = in[i];
        }
    }
    FUZZ_CHECK(w == tlsmail__parts_len(pt, 2));
    got = tlsmail__b64_decode(dec, 3 * n + 1, k.buf, k.n);
    FUZZ_CHECK(got == (long)w);
    FUZZ_CHECK(w == 0 || memcmp(dec, want, w) == 0);
    free(want);
    free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char out[TLSMAIL_REPLY_TEXT];
    size_t cap, n;
    char *text;
    long r;
    if (size < 1) return 0;
    cap = (data[0] & 63) == 63 ? sizeof out : (size_t)(data[0] & 63) + 1;
    n = size - 1;
    text = (char *)malloc(n ? n : 1);
    FUZZ_CHECK(text != NULL);
    if (n) memcpy(text, data + 1, n);
    memset(out, 'Z', sizeof out);
    r = tlsmail__oauth_challenge(out, cap, text, n);
    if (r < 0) {
        FUZZ_CHECK(r == -1 && out[0] == '\0');
    } else {
        long i;
        FUZZ_CHECK((size_t)r < cap && out[r] == '\0');
        for (i = 0; i < r; i++) FUZZ_CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7F);
        check_status(out, (size_t)r);
    }
    check_status(text, n); /* the status scan on raw server bytes too */
    if (n <= 4096) check_encoder(data + 1, n, (data[0] & 64) != 0);
    free(text);
    return 0;
}
