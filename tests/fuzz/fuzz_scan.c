/* fuzz_scan.c - the whole-message scan (tlsmail__msg_scan), BDAT's runs
   (tlsmail__bdat_run) and what both stand on (tlsmail__next_eol,
   tlsmail__has8), on the input as a message. Properties:
   - the scan gives the size, body8, head8, longline (that line's number)
     and bare of the octet-at-a-time scan of tests/lib/scan_ref.h;
   - the runs, each followed by CRLF where it stopped at a bare CR or LF,
     and a CRLF after a last line without one, are the message with every
     CRLF, bare CR and bare LF as CRLF (normalise of tests/lib/mime_ref.h,
     one octet at a time), and exactly the size the scan counted; no run
     holds a bare line end;
   - next_eol finds the first CR or LF, first8 (and has8) the first octet
     over 127, as a loop over every octet would. */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
#include "fuzz_common.h"
#include "../lib/scan_ref.h"
#include "../lib/mime_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tlsmail__msginfo a, b;
    unsigned char *runs, *norm;
    size_t i, at = 0, nr = 0, eol = size, first8 = size;
    int bare = 1;
    for (i = 0; i < size; i++)
        if (data[i] == '\r' || data[i] == '\n') {
            eol = i;
            break;
        }
    for (i = 0; i < size && first8 == size; i++)
        if (data[i] >= 0x80) first8 = i;
    FUZZ_CHECK(tlsmail__next_eol(data, size) == eol);
    FUZZ_CHECK(tlsmail__first8(data, size) == first8);
    FUZZ_CHECK(tlsmail__has8(data, size) == (first8 < size));

    tlsmail__msg_scan(data, size, &a);
    msg_scan_ref(data, size, &b);
    FUZZ_CHECK(a.size == b.size && a.body8 == b.body8 && a.head8 == b.head8);
    FUZZ_CHECK(a.longline == b.longline && a.bare == b.bare);

    runs = (unsigned char *)malloc(2 * size + 2);
    norm = (unsigned char *)malloc(2 * size + 2);
    FUZZ_CHECK(runs != NULL && norm != NULL);
    while (at < size && bare) {
        size_t end = tlsmail__bdat_run(data, size, at, &bare);
        FUZZ_CHECK(end >= at && end <= size);
        for (i = at; i < end; i++) FUZZ_CHECK(!bare_ref(data, size, i));
        FUZZ_CHECK(bare ? end < size && bare_ref(data, size, end) : end == size);
        memcpy(runs + nr, data + at, end - at);
        nr += end - at;
        if (bare) {
            runs[nr++] = '\r';
            runs[nr++] = '\n';
        }
        at = end + 1;
    }
    if (size && data[size - 1] != '\r' && data[size - 1] != '\n') {
        runs[nr++] = '\r';
        runs[nr++] = '\n';
    }
    FUZZ_CHECK(nr == normalise((const char *)data, size, (char *)norm));
    FUZZ_CHECK(nr == 0 || memcmp(runs, norm, nr) == 0);
    FUZZ_CHECK(nr == a.size);
    free(runs);
    free(norm);
    return 0;
}
