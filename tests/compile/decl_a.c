/* Declarations only, from a second translation unit. */
#include "../../tlsmail.h"
int use_a(void);
int use_a(void) { return tlsmail_strerror(TLSMAIL_ETIMEOUT)[0] != 0; }
