/* fuzz_cli.c - the parsers of tlsmail-send (examples/tlsmail-send/) that
   read bytes someone else wrote: the configuration file (accounts, keys,
   values, quoting), the aliases file, the message's header section (-t
   recipients, Bcc, the headers added when missing) and the command line.

   tlsmail-send.c is built into this file whole, with main renamed and
   TLSMAIL_SEND_FUZZ set, which makes the end of a run (die(), --help)
   return here by longjmp instead of exiting. That runs the real parsers,
   with the state they really share (the settings, the aliases, the
   recipients), where moving them into a library of their own would fuzz
   a copy; forget_run() frees and zeroes that state between inputs, as it
   does at the end of a real run.

   Byte 0 picks the parser (mod 4), byte 1 a few switches, the rest is the
   input, copied to a buffer of its exact size (no NUL after it: nothing
   may be read past it, ASan checks). Properties beyond "no crash, no
   leak":
   0 configuration: a run that stops says why with status 78; a
     configuration that parses prints (--config-check's print_config) each
     setting that came from it as "key value  (source)", and those lines,
     their sources cut off, read back as a file of their own give exactly
     the same settings;
   1 aliases: every entry has a name and its addresses no blanks at
     either end and no comma; every name expands (with a domain set) to
     recipients tlsmail_check_address accepts, or the run stops saying so
     (65, or 78 for a pipe or file);
   2 header section: the recipients found (-t) are each accepted by
     tlsmail_check_address or the run stops with 65 (64: none at all, 78: a
     local name without a domain); no Bcc field is left in the header
     section and the body is untouched; with a domain, a second pass of
     qualify_headers finds nothing to add; the added fields are whole
     CRLF-ended lines of at most 998 octets, and with them the message has
     From, Date and Message-ID, the added From being the envelope sender;
   3 argv (NUL-separated words): a run that stops does so with 64 (or 0
     for --help, --version), since every setting came from argv; otherwise
     every recipient and every value is one of the words, or a part of
     one, as given. */
#define TLSMAIL_SEND_FUZZ
#define main tlsmail_send_main
#include "../../examples/tlsmail-send/tlsmail-send.c"
#undef main
#include "fuzz_common.h"

#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    static const char *const env[] = { "TLSMAIL_ACCOUNT", "TLSMAIL_CONFIG", "TLSMAIL_SYSCONFIG" };
    size_t i;
    int k;
    (void)argc;
    (void)argv;
    for (i = 0; i < sizeof env / sizeof env[0]; i++) unsetenv(env[i]);
    for (k = 0; k < K_COUNT; k++) {
        char name[64], *p;
        snprintf(name, sizeof name, "TLSMAIL_%s", keys[k].name);
        for (p = name; *p; p++)
            if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
        unsetenv(name);
    }
    /* --help and --version print to stdout: not into libFuzzer's log */
    if (!freopen("/dev/null", "w", stdout)) abort();
    return 0;
}

/* Each of these runs one step of tlsmail-send; 0, or the status the run
   stopped with (a stop with 0, --help, is EX_OK + 1000). */
static int stopped(void) { return fuzz_status ? fuzz_status : 1000; }

static int try_config(const char *text, size_t n) {
    int has_secret;
    if (setjmp(fuzz_end)) return stopped();
    parse_config(text, n, "fuzz.conf", L_USER, &has_secret);
    apply_settings();
    return 0;
}

static int try_aliases(const char *text, size_t n) {
    if (setjmp(fuzz_end)) return stopped();
    parse_aliases(text, n, "fuzz.aliases");
    return 0;
}

static int try_expand(const char *name) {
    if (setjmp(fuzz_end)) return stopped();
    list_push(&R.recipients, xstrdup(name));
    collect_recipients();
    return 0;
}

static int try_window(void) {
    if (setjmp(fuzz_end)) return stopped();
    process_window();
    return 0;
}

static int try_argv(int argc, char **argv) {
    if (setjmp(fuzz_end)) return stopped();
    parse_command_line(argc, argv);
    apply_settings();
    check_settings();
    return 0;
}

/* ---- 0: the configuration ------------------------------------------------ */

static void fuzz_config(const char *text, size_t n) {
    char *vals[K_COUNT], *printed = NULL, *again;
    size_t plen = 0, alen = 0, i;
    int k, rc;
    FILE *out;
    rc = try_config(text, n);
    if (rc) {
        FUZZ_CHECK(rc == EX_CONFIG);
        return;
    }
    for (k = 0; k < K_COUNT; k++) vals[k] = R.set[k].value ? xstrdup(R.set[k].value) : NULL;
    out = open_memstream(&printed, &plen);
    FUZZ_CHECK(out != NULL);
    print_config(out);
    fclose(out);
    /* each line of a setting: "key" padded, the value, "  (fuzz.conf:N)" */
    again = (char *)xmalloc(plen + 1);
    for (i = 0; i < plen;) {
        char *line = printed + i, *lf = (char *)memchr(line, '\n', plen - i), *src;
        size_t len = (size_t)(lf - line), kl, sl;
        FUZZ_CHECK(lf != NULL);
        i += len + 1;
        *lf = 0;
        for (k = 0; k < K_COUNT; k++) {
            kl = strlen(keys[k].name);
            if (!strncmp(line, keys[k].name, kl) && line[kl] == ' ') break;
        }
        if (k == K_COUNT) { /* the files: and account: lines */
            FUZZ_CHECK(!strncmp(line, "files:", 6) || !strncmp(line, "account:", 8));
            continue;
        }
        if (!vals[k]) {
            FUZZ_CHECK(strstr(line, " (unset: ") != NULL);
            continue;
        }
        sl = strlen(R.set[k].source);
        FUZZ_CHECK(len > sl + 4);
        src = line + len - sl - 4;
        FUZZ_CHECK(!strncmp(src, "  (", 3) && !strncmp(src + 3, R.set[k].source, sl) && line[len - 1] == ')');
        if (keys[k].secret) continue; /* printed masked: not read back */
        memcpy(again + alen, line, (size_t)(src - line));
        alen += (size_t)(src - line);
        again[alen++] = '\n';
    }
    free(printed);
    forget_run();
    rc = try_config(again, alen);
    FUZZ_CHECK(rc == 0);
    for (k = 0; k < K_COUNT; k++) {
        if (keys[k].secret) {
            FUZZ_CHECK((R.set[k].value == NULL) == 1);
        } else {
            FUZZ_CHECK((R.set[k].value == NULL) == (vals[k] == NULL));
            if (vals[k]) FUZZ_CHECK(!strcmp(R.set[k].value, vals[k]));
        }
        free(vals[k]);
    }
    free(again);
}

/* ---- 1: aliases -------------------------------------------------------- */

static void fuzz_aliases(const char *text, size_t n, unsigned flags) {
    size_t i, j, count;
    char **names;
    int rc = try_aliases(text, n);
    if (rc) {
        FUZZ_CHECK(rc == EX_CONFIG);
        return;
    }
    for (i = 0; i < naliases; i++) {
        FUZZ_CHECK(!strchr(aliastab[i].name, ':'));
        for (j = 0; j < aliastab[i].to.n; j++) {
            const char *t = aliastab[i].to.v[j];
            size_t tl = strlen(t);
            FUZZ_CHECK(tl > 0 && !strchr(t, ','));
            FUZZ_CHECK(t[0] != ' ' && t[0] != '\t' && t[tl - 1] != ' ' && t[tl - 1] != '\t');
        }
    }
    /* the first names, each as the one recipient of a run */
    count = naliases < 6 ? naliases : 6;
    names = (char **)xmalloc((count + 1) * sizeof *names);
    for (i = 0; i < count; i++) names[i] = xstrdup(aliastab[i].name);
    for (i = 0; i < count; i++) {
        static char domain[] = "example.org";
        if (flags & 1) R.set[K_DOMAIN].value = domain;
        rc = try_expand(names[i]);
        if (rc == 0)
            for (j = 0; j < R.rcpts.n; j++) FUZZ_CHECK(tlsmail_check_address(R.rcpts.v[j]) == 0);
        else
            FUZZ_CHECK(rc == EX_DATAERR || rc == EX_CONFIG || rc == EX_USAGE);
        R.set[K_DOMAIN].value = NULL;
        list_free(&R.rcpts);
        list_free(&R.found);
        list_free(&R.recipients);
    }
    for (i = 0; i < count; i++) free(names[i]);
    free(names);
}

/* ---- 2: the header section ----------------------------------------------- */

/* Is a field of this name in m[0..end)? (Field names at line starts.) */
static int has_field(const char *m, size_t end, const char *name) {
    size_t pos = 0, nl = strlen(name);
    while (pos < end) {
        size_t k = pos;
        while (k < end && m[k] != '\n' && m[k] != '\r') k++;
        if (k - pos > nl && m[pos + nl] == ':' && !strncasecmp(m + pos, name, nl)) return 1;
        pos = next_line(m, end, k);
    }
    return 0;
}

/* fold_line on each line of text: unfolded (the line end before each
   space or tab it put in taken out) it is the line as it was, and it is
   either the line untouched or lines of at most 998 octets. 1: text has a
   line over 998 octets. */
static int check_folds(const char *text, size_t n) {
    const char *p = text, *end = text + n;
    int longer = 0;
    while (p < end) {
        const char *le = (const char *)memchr(p, '\n', (size_t)(end - p));
        size_t len, got, i, j = 0, run = 0, most = 0;
        char *out;
        if (!le) le = end;
        len = (size_t)(le - p);
        longer |= len > 998;
        out = (char *)xmalloc(2 * len + 2);
        got = fold_line(p, le, "\n", out);
        FUZZ_CHECK(got == fold_line(p, le, "\n", NULL));
        for (i = 0; i < got; i++) {
            if (out[i] == '\n') {
                FUZZ_CHECK(i + 1 < got && (out[i + 1] == ' ' || out[i + 1] == '\t'));
                most = run > most ? run : most;
                run = 0;
                continue;
            }
            run++;
            FUZZ_CHECK(j < len && out[i] == p[j]);
            j++;
        }
        most = run > most ? run : most;
        FUZZ_CHECK(j == len && (got == len || most <= 998));
        free(out);
        p = le + 1;
    }
    return longer;
}

static void fuzz_headers(const char *text, size_t n, unsigned flags) {
    static char from[] = "sender@example.org", domain[] = "example.org", off[] = "off";
    char *orig = (char *)xmalloc(n ? n : 1), *whole;
    headers h;
    size_t i, tail;
    int rc, longer = check_folds(text, n);
    memcpy(orig, text, n);
    R.msg = (char *)xmalloc(n ? n : 1);
    memcpy(R.msg, text, n);
    R.len = n;
    R.msg_eof = 1;
    R.tflag = (flags & 1) != 0;
    if (flags & 2) R.set[K_FROM].value = from;
    if (flags & 4) R.set[K_DOMAIN].value = domain;
    if (flags & 8) R.set[K_ADD_MISSING_HEADERS].value = off;
    if (flags & 16) list_push(&R.recipients, xstrdup("ops@example.org"));
    if (flags & 32) list_push(&R.recipients, xstrdup("root"));
    rc = try_window();
    if (rc) {
        FUZZ_CHECK(rc == EX_DATAERR || rc == EX_USAGE || rc == EX_CONFIG);
        free(orig);
        return;
    }
    for (i = 0; i < R.rcpts.n; i++) FUZZ_CHECK(tlsmail_check_address(R.rcpts.v[i]) == 0);
    /* only a long header line's folds and the domain add octets */
    FUZZ_CHECK(R.len <= n || longer || (flags & 4));
    /* the header section as it is now: no Bcc, and the body as it was */
    memset(&h, 0, sizeof h);
    {
        strlist none = { NULL, 0, 0 };
        size_t len = R.len, end;
        scan_headers(R.msg, &len, &none, 0, 0, &h);
        FUZZ_CHECK(len == R.len && none.n == 0);
        free(h.from_addr);
        /* qualified once and for all: a second pass finds no name left
           without the domain that it would take */
        end = h.end;
        len = R.len;
        qualify_headers(&h);
        FUZZ_CHECK(R.len == len && h.end == end);
    }
    FUZZ_CHECK(!has_field(R.msg, h.end, "bcc"));
    /* the empty line to insert (R.gap): where a header section ended at a
       line that is no field, at that line's start (after a CR, LF or CRLF) */
    if (R.gap)
        FUZZ_CHECK(R.gap == h.end && !h.blank && R.gap < R.len &&
                   (R.msg[R.gap - 1] == '\n' || R.msg[R.gap - 1] == '\r'));
    tail = R.len - h.end;
    FUZZ_CHECK(tail <= n && memcmp(R.msg + h.end, orig + n - tail, tail) == 0);
    /* the added fields: whole lines, and with them nothing is missing */
    if (R.added) {
        for (i = 0; i < R.addlen;) {
            const char *lf = (const char *)memchr(R.added + i, '\n', R.addlen - i);
            FUZZ_CHECK(lf && lf > R.added + i && lf[-1] == '\r');
            FUZZ_CHECK((size_t)(lf - (R.added + i)) <= 999);
            i = (size_t)(lf - R.added) + 1;
        }
    }
    if (!(flags & 8)) {
        headers w;
        strlist none = { NULL, 0, 0 };
        size_t wl = R.addlen + R.len;
        whole = (char *)xmalloc(wl + 1);
        if (R.addlen) memcpy(whole, R.added, R.addlen);
        memcpy(whole + R.addlen, R.msg, R.len);
        scan_headers(whole, &wl, &none, 0, 0, &w);
        FUZZ_CHECK(w.from && w.date && w.message_id);
        if (R.added && !h.from && R.from[0]) FUZZ_CHECK(w.from_addr && !strcmp(w.from_addr, R.from));
        free(w.from_addr);
        free(whole);
    }
    free(orig);
}

/* ---- 3: argv ------------------------------------------------------------ */

/* Does p point into one of the words, or into a piece split_bundles cut
   from one ("-Vvalue" out of "-tVvalue")? */
static int in_words(const char *p, char **argv, int argc) {
    size_t k;
    int i;
    for (i = 1; i < argc; i++)
        if (p >= argv[i] && p <= argv[i] + strlen(argv[i])) return 1;
    for (k = 0; k + 1 < split_words.n; k++) /* the last is the vector itself */
        if (p >= split_words.v[k] && p <= split_words.v[k] + strlen(split_words.v[k])) return 1;
    return 0;
}

static void fuzz_argv(const char *text, size_t n) {
    char *argv[66];
    int argc = 1, rc, k;
    size_t i, start = 0;
    static char name[] = "tlsmail-send";
    argv[0] = name;
    for (i = 0; i <= n && argc < 65; i++)
        if (i == n || text[i] == 0) {
            argv[argc++] = xstrndup(text + start, i - start);
            start = i + 1;
        }
    argv[argc] = NULL;
    rc = try_argv(argc, argv);
    if (rc) {
        FUZZ_CHECK(rc == EX_USAGE || rc == 1000);
    } else {
        FUZZ_CHECK(R.recipients.n < (size_t)argc);
        for (i = 0; i < R.recipients.n; i++) {
            int found = 0;
            for (k = 1; k < argc; k++) found |= !strcmp(R.recipients.v[i], argv[k]);
            FUZZ_CHECK(found);
        }
        for (k = 0; k < K_COUNT; k++)
            /* (--starttls and --tcp-fastopen set constants, not words) */
            if (R.argset[k].value && k != K_SECURITY && k != K_TCP_FASTOPEN)
                FUZZ_CHECK(in_words(R.argset[k].value, argv, argc));
        if (R.mopts.envid) FUZZ_CHECK(in_words(R.mopts.envid, argv, argc));
    }
    forget_run();
    for (k = 1; k < argc; k++) free(argv[k]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy;
    size_t n;
    if (size < 2) return 0;
    n = size - 2;
    copy = (char *)malloc(n ? n : 1);
    memcpy(copy, data + 2, n);
    switch (data[0] % 4) {
    case 0: fuzz_config(copy, n); break;
    case 1: fuzz_aliases(copy, n, data[1]); break;
    case 2: fuzz_headers(copy, n, data[1]); break;
    default: fuzz_argv(copy, n); break;
    }
    forget_run();
    free(copy);
    return 0;
}
