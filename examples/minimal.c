/* The README's and tlsmail.h's quick start, verbatim (tests check it stays so). */
#define TLSMAIL_IMPLEMENTATION
#include "tlsmail.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    const char *pw = getenv("SMTP_PASSWORD");
    const char *to[] = { "ops@example.org" };
    const char *msg = "From: alerts@example.org\r\n"
                      "To: ops@example.org\r\n"
                      "Subject: disk full\r\n\r\n/var is at 97%\r\n";
    tlsmail_auth a = tlsmail_plain_auth("", "alerts@example.org",
                                        pw ? pw : "", "smtp.example.org");
    int err = tlsmail_send("smtp.example.org:465", &a, "alerts@example.org",
                           to, 1, msg, strlen(msg));
    if (err) fprintf(stderr, "send: %s\n", tlsmail_strerror(err));
    return err ? 1 : 0;
}
