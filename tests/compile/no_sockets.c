/* TLSMAIL_NO_SOCKETS: no socket code; dialling needs the caller's I/O. */
#define TLSMAIL_NO_SOCKETS
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
int main(void) {
    tlsmail_client c;
    tlsmail_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.host = "localhost";
    /* Without a tlsmail_io there is nothing to dial with. */
    return tlsmail_dial(&c, &cfg) == TLSMAIL_EINVAL ? 0 : 1;
}
