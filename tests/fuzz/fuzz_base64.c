/* fuzz_base64.c - the strict base64 codec (tlsmail__b64_encode/decode).

   1. decode(input) into an exact-size heap buffer (the decoded size, and
      also one byte short of it): never writes past cap; when it succeeds,
      encode(result) must give back the input byte for byte (strictness:
      one encoding per byte string).
   2. encode(input) then decode: the input again; the encoded length is
      4 * ceil(n / 3); a cap one byte short fails without writing past it. */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *in = (const char *)data;
    size_t cap = size / 4 * 3 + 1, enc_len, need;
    unsigned char *out = (unsigned char *)malloc(cap);
    char *enc, *small;
    long r;
    FUZZ_CHECK(out != NULL);

    /* 1: decode anything */
    r = tlsmail__b64_decode(out, cap, in, size);
    FUZZ_CHECK(r >= -1);
    if (r >= 0) {
        size_t back_cap = ((size_t)r + 2) / 3 * 4 + 1, back_len;
        char *back = (char *)malloc(back_cap);
        FUZZ_CHECK((size_t)r <= cap);
        FUZZ_CHECK(size % 4 == 0);
        FUZZ_CHECK(back != NULL);
        back_len = tlsmail__b64_encode(back, back_cap, out, (size_t)r);
        FUZZ_CHECK(back_len == size);
        FUZZ_CHECK(size == 0 || memcmp(back, in, size) == 0);
        FUZZ_CHECK(back[back_len] == '\0');
        free(back);
        if (r > 0) { /* the same input with a cap one short must fail cleanly */
            unsigned char *tight = (unsigned char *)malloc((size_t)r - 1 ? (size_t)r - 1 : 1);
            FUZZ_CHECK(tight != NULL);
            FUZZ_CHECK(tlsmail__b64_decode(tight, (size_t)r - 1, in, size) == -1);
            free(tight);
        }
    }
    free(out);

    /* 2: encode anything, decode it back */
    enc_len = (size + 2) / 3 * 4;
    need = enc_len + 1;
    enc = (char *)malloc(need);
    FUZZ_CHECK(enc != NULL);
    FUZZ_CHECK(tlsmail__b64_encode(enc, need, data, size) == enc_len);
    FUZZ_CHECK(enc[enc_len] == '\0');
    out = (unsigned char *)malloc(size ? size : 1);
    FUZZ_CHECK(out != NULL);
    r = tlsmail__b64_decode(out, size, enc, enc_len);
    FUZZ_CHECK(r == (long)size);
    FUZZ_CHECK(size == 0 || memcmp(out, data, size) == 0);
    free(out);
    if (size > 0) { /* too small by one: returns 0, writes nothing past cap */
        small = (char *)malloc(enc_len);
        FUZZ_CHECK(small != NULL);
        FUZZ_CHECK(tlsmail__b64_encode(small, enc_len, data, size) == 0);
        free(small);
    }
    free(enc);
    return 0;
}
