/* Declarations only, from a third translation unit. */
#include "../../tlsmail.h"
int use_b(void);
int use_b(void) {
    tlsmail_auth a = tlsmail_login_auth("u", "p", "h");
    return a.mechanism == TLSMAIL_AUTH_LOGIN;
}
