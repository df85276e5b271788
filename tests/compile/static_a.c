/* TLSMAIL_STATIC: a private copy in each of two files, linked together. */
#define TLSMAIL_STATIC
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
int static_a(void);
int static_a(void) { return tlsmail_strerror(TLSMAIL_OK)[0] == 's'; }
