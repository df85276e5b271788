/* pinned.c - reach a server with a self-signed certificate by pinning its key.

       pinned HOST:PORT PIN FROM TO < message
       (AUTH PLAIN when SMTP_USER and SMTP_PASSWORD are set)

   PIN is the base64 SHA-256 of the server's DER SubjectPublicKeyInfo:

       openssl x509 -in server.crt -pubkey -noout | openssl pkey -pubin -outform der \
           | openssl dgst -sha256 -binary | base64

   or from a running server:

       openssl s_client -connect HOST:465 </dev/null 2>/dev/null | openssl x509 -pubkey -noout \
           | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64

   With a pin, that key is the whole trust: no CA, no expiry, no name check,
   so it also reaches a server by IP address. Another key, even one with a
   valid certificate, fails with TLSMAIL_ECERT_PIN before any SMTP is spoken.
   No heap: the pin lives in the tlsmail_trust.

   Build: cc -std=c99 -I. examples/pinned.c -o pinned -lbearssl */
#define TLSMAIL_IMPLEMENTATION
#include "tlsmail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char msg[1 << 20];
static tlsmail_client client;

int main(int argc, char **argv) {
    const char *user = getenv("SMTP_USER"), *pw = getenv("SMTP_PASSWORD");
    const char *to[1];
    char desc[512];
    tlsmail_trust trust;
    tlsmail_config cfg;
    tlsmail_auth a;
    size_t len;
    int err;
    if (argc != 5) {
        fprintf(stderr, "usage: pinned HOST:PORT PIN FROM TO < message\n");
        return 2;
    }
    memset(&trust, 0, sizeof trust);
    if (tlsmail_trust_pin_sha256(&trust, argv[2]) != 0) {
        fprintf(stderr, "pinned: %s is not a base64 SHA-256\n", argv[2]);
        return 2;
    }
    len = fread(msg, 1, sizeof msg, stdin);
    memset(&cfg, 0, sizeof cfg);
    cfg.host = argv[1];          /* "host:port"; the port defaults to 465 */
    cfg.trust = &trust;
    cfg.timeout_ms = 10000;
    /* AUTH names the server it is for: the same "host:port" we dial. */
    a = tlsmail_plain_auth("", user, pw, argv[1]);
    to[0] = argv[4];
    err = tlsmail_client_send(&client, &cfg, user && pw ? &a : NULL, argv[3], to, 1, msg, len);
    if (err) fprintf(stderr, "pinned: %s\n", tlsmail_describe(&client, err, desc, sizeof desc));
    else printf("sent\n");
    tlsmail_close(&client);
    return err ? 1 : 0;
}
