/* The implementation in one file, linked with two that only declare. */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
int use_a(void);
int use_b(void);
int main(void) { return use_a() && use_b() ? 0 : 1; }
