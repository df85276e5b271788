/* tests/lib/err_name.h - "ETIMEOUT" for TLSMAIL_ETIMEOUT, "OK" for 0: the
   names the test drivers print and the suites match, from the library's
   own TLSMAIL__ERRORS list. Include it after tlsmail.h. */
#ifndef TLSMAIL_TEST_ERR_NAME_H
#define TLSMAIL_TEST_ERR_NAME_H
#include <stddef.h>

static const char *err_name(int err) {
    static const struct { int code; const char *name; } names[] = {
#define TLSMAIL_TEST_ERR_NAME(name, cls, text) { TLSMAIL_##name, #name },
        TLSMAIL__ERRORS(TLSMAIL_TEST_ERR_NAME)
#undef TLSMAIL_TEST_ERR_NAME
    };
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].code == err) return names[i].name;
    return "UNKNOWN_CODE";
}
#endif
