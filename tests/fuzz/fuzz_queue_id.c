/* fuzz_queue_id.c - the queue id in the server's 250 after a message
   (tlsmail__queue_id), on arbitrary reply text.

   Input byte 0: the output capacity (0..255, 0 meaning 0); the rest is the
   text, as an exact-size heap copy so ASan sees any read past its end.
   Invariants: the result is strlen(out), below the capacity; out is "" or
   id characters only (printable ASCII, no brackets or separators), not
   ending in '.'; the id occurs in the text's first line; the same text
   gives the same id every time. */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char out[256], again[256];
    size_t cap, n, r, i, line;
    char *text;
    if (size < 1) return 0;
    cap = data[0];
    n = size - 1;
    text = (char *)malloc(n ? n : 1);
    FUZZ_CHECK(text != NULL);
    if (n) memcpy(text, data + 1, n);
    memset(out, 'Z', sizeof out);
    r = tlsmail__queue_id(text, n, out, cap);
    if (cap == 0) {
        FUZZ_CHECK(r == 0 && out[0] == 'Z');
    } else {
        FUZZ_CHECK(r < cap && out[r] == '\0' && strlen(out) == r);
        for (i = 0; i < r; i++) FUZZ_CHECK(tlsmail__idchar((unsigned char)out[i]));
        FUZZ_CHECK(r == 0 || out[r - 1] != '.');
        for (line = 0; line < n && text[line] != '\n'; line++) {}
        if (r) {
            int found = 0;
            for (i = 0; i + r <= line && !found; i++) found = memcmp(text + i, out, r) == 0;
            FUZZ_CHECK(found);
        }
        FUZZ_CHECK(tlsmail__queue_id(text, n, again, cap) == r && memcmp(again, out, r + 1) == 0);
    }
    free(text);
    return 0;
}
