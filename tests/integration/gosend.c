/* tests/integration/gosend.c - the acceptance program, written only against the four
   Go-shaped calls. Usage: gosend plain|login HOST:PORT USER PASS FROM TO < msg */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
#include <stdio.h>
#include <string.h>

static char msg[1 << 20];

int main(int argc, char **argv) {
    size_t len = fread(msg, 1, sizeof msg, stdin);
    const char *to[1];
    tlsmail_auth a;
    int err;
    if (argc != 7 || (strcmp(argv[1], "plain") && strcmp(argv[1], "login"))) {
        fprintf(stderr, "usage: gosend plain|login HOST:PORT USER PASS FROM TO < msg\n");
        return 2;
    }
    /* Go's PlainAuth takes the bare host; ours also takes the addr as is */
    a = !strcmp(argv[1], "plain") ? tlsmail_plain_auth("", argv[3], argv[4], argv[2])
                                  : tlsmail_login_auth(argv[3], argv[4], argv[2]);
    to[0] = argv[6];
    err = tlsmail_send(argv[2], &a, argv[5], to, 1, msg, len);
    if (err) fprintf(stderr, "%s\n", tlsmail_strerror(err));
    return err ? 1 : 0;
}
