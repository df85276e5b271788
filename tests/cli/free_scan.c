/* free_scan.c - tlsmail-send built whole (main renamed), every block it
   frees looked at first: how many held the text of env FREE_SCAN_SECRET
   when they were handed back. free() leaves a block's bytes as they were,
   so a secret in one stays in the heap, for a core file or a later
   malloc. tests/cli/test_cli.py runs it with a configuration whose
   password is that text; it prints the count last on stderr. glibc
   (malloc_usable_size). */
#define _POSIX_C_SOURCE 200809L
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void scanned_free(void *p);
int tlsmail_send_main(int argc, char **argv);
#define free scanned_free
#define main tlsmail_send_main
#include "../../examples/tlsmail-send/tlsmail-send.c"
#undef main
#undef free

static const char *watch;
static size_t watch_len;
static unsigned long holding;

static void scanned_free(void *p) {
    if (p && watch_len) {
        const char *c = (const char *)p;
        size_t n = malloc_usable_size(p), i;
        for (i = 0; i + watch_len <= n; i++)
            if (memcmp(c + i, watch, watch_len) == 0) {
                holding++;
                break;
            }
    }
    free(p);
}

int main(int argc, char **argv) {
    int rc;
    watch = getenv("FREE_SCAN_SECRET");
    watch_len = watch ? strlen(watch) : 0;
    rc = tlsmail_send_main(argc, argv);
    fprintf(stderr, "free_scan: %lu freed block(s) held the secret\n", holding);
    return rc;
}
