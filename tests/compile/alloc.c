/* TLSMAIL_MALLOC/FREE overrides really receive the context. */

static int calls;
#define TLSMAIL_MALLOC(ctx, n) ((void)(ctx), calls++, malloc(n))
#define TLSMAIL_FREE(ctx, p) ((void)(ctx), free(p))
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
int main(int argc, char **argv) {
    tlsmail_trust t;
    memset(&t, 0, sizeof t);
    if (argc < 2 || tlsmail_trust_file(&t, argv[1]) != 0) return 1;
    tlsmail_trust_free(&t);
    return calls > 0 ? 0 : 1;
}
