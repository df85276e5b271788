#define TLSMAIL_STATIC
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
int static_a(void);
int main(void) { return static_a() && tlsmail_strerror(TLSMAIL_EINVAL)[0] ? 0 : 1; }
