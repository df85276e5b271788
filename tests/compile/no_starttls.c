/* Built without TLSMAIL_STARTTLS: asking for STARTTLS is a clear error,
   before any connection. */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
int main(void) {
    tlsmail_client c;
    tlsmail_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.host = "localhost:1";
    cfg.security = TLSMAIL_SECURITY_STARTTLS;
    if (tlsmail_dial(&c, &cfg) != TLSMAIL_EINVAL || tlsmail_stage(&c) != TLSMAIL_STAGE_CONNECT)
        return 1;
    cfg.security = TLSMAIL_SECURITY_TLS_OR_STARTTLS;
    return tlsmail_dial(&c, &cfg) == TLSMAIL_EINVAL ? 0 : 1;
}
