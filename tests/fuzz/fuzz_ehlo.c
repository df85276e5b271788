/* fuzz_ehlo.c - the EHLO extension table (tlsmail__ext_line, _ext_find).

   Every input line (split at LF, one CR before it dropped) is one EHLO
   reply line's text. After each: e->len <= sizeof e->text, every stored
   entry is NUL-terminated inside e->len, keywords are stored upper-case and
   made of ALPHA / DIGIT / '-', only known flag and mechanism bits are set,
   a size limit only with SIZE, and a stored known keyword has its flag. Then lookups: fixed names, every
   line's first word, NULL; a hit is a NUL-terminated string inside the
   table. */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"
#include "fuzz_common.h"

static void check_table(const tlsmail__ext *e) {
    size_t off = 0;
    FUZZ_CHECK(e->len <= sizeof e->text);
    FUZZ_CHECK(e->len == 0 || e->text[e->len - 1] == '\0');
    FUZZ_CHECK((e->flags & ~511u) == 0);
    FUZZ_CHECK((e->auth & ~((1u << TLSMAIL_AUTH_PLAIN) | (1u << TLSMAIL_AUTH_LOGIN) |
                            (1u << TLSMAIL_AUTH_XOAUTH2) | (1u << TLSMAIL_AUTH_OAUTHBEARER) |
                            (1u << TLSMAIL_AUTH_EXTERNAL))) == 0);
    FUZZ_CHECK(e->size_limit == 0 || (e->flags & TLSMAIL__EXT_SIZE));
    FUZZ_CHECK(e->auth == 0 || (e->flags & TLSMAIL__EXT_AUTH));
    while (off < e->len) {
        const char *ent = e->text + off;
        const char *nul = (const char *)memchr(ent, '\0', e->len - off);
        size_t k;
        FUZZ_CHECK(nul != NULL);
        FUZZ_CHECK(nul > ent); /* no empty entry */
        for (k = 0; ent + k < nul && ent[k] != ' '; k++) {
            char ch = ent[k];
            FUZZ_CHECK((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                       (ch == '-' && k > 0));
        }
        off = (size_t)(nul - e->text) + 1;
    }
}

static void check_find(const tlsmail__ext *e, const char *name) {
    const char *v = tlsmail__ext_find(e, name);
    if (!v) return;
    FUZZ_CHECK(v >= e->text && v < e->text + e->len);
    FUZZ_CHECK(memchr(v, '\0', (size_t)(e->text + e->len - v)) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const struct { const char *name; unsigned bit; } known[] = {
        { "PIPELINING", TLSMAIL__EXT_PIPELINING }, { "8BITMIME", TLSMAIL__EXT_8BITMIME },
        { "SMTPUTF8", TLSMAIL__EXT_SMTPUTF8 },     { "STARTTLS", TLSMAIL__EXT_STARTTLS },
        { "ENHANCEDSTATUSCODES", TLSMAIL__EXT_ENHANCEDSTATUSCODES },
        { "SIZE", TLSMAIL__EXT_SIZE },             { "AUTH", TLSMAIL__EXT_AUTH },
        { "DSN", TLSMAIL__EXT_DSN },               { "CHUNKING", TLSMAIL__EXT_CHUNKING },
    };
    static const char *const others[] = { "auth", "Pipelining", "DSN", "CHUNKING", "X", "",
                                          "AUTH=PLAIN", "SIZE 10", "8bitmime" };
    tlsmail__ext e;
    size_t pos = 0, i;
    char *copy;
    tlsmail__ext_init(&e);
    while (pos < size) {
        const uint8_t *nl = (const uint8_t *)memchr(data + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - data) : size, len = end - pos;
        if (len && data[pos + len - 1] == '\r') len--;
        /* An exact-size heap copy: ASan sees any read past the line. */
        copy = (char *)malloc(len ? len : 1);
        FUZZ_CHECK(copy != NULL);
        if (len) memcpy(copy, data + pos, len);
        tlsmail__ext_line(&e, copy, len);
        check_table(&e);
        free(copy);
        pos = end + 1;
    }
    tlsmail__ext_line(&e, NULL, 0);
    check_table(&e);
    for (i = 0; i < sizeof known / sizeof known[0]; i++) {
        check_find(&e, known[i].name);
        if (tlsmail__ext_find(&e, known[i].name)) FUZZ_CHECK(e.flags & known[i].bit);
    }
    for (i = 0; i < sizeof others / sizeof others[0]; i++) check_find(&e, others[i]);
    FUZZ_CHECK(tlsmail__ext_find(&e, NULL) == NULL);
    /* every line's first word, NUL-terminated, as a lookup name */
    pos = 0;
    while (pos < size) {
        size_t k = 0;
        char name[64];
        while (pos + k < size && k < sizeof name - 1 && data[pos + k] != ' ' &&
               data[pos + k] != '\n' && data[pos + k] != '\0')
            k++;
        memcpy(name, data + pos, k);
        name[k] = '\0';
        check_find(&e, name);
        {
            const uint8_t *nl = (const uint8_t *)memchr(data + pos, '\n', size - pos);
            if (!nl) break;
            pos = (size_t)(nl - data) + 1;
        }
    }
    return 0;
}
