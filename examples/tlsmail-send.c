/* tlsmail-send - a sendmail-style command-line client built on tlsmail.h.

       tlsmail-send [options] RECIPIENT... < message

   Sends the message on stdin over SMTP with implicit TLS (port 465, RFC
   8314) or, when built with -DTLSMAIL_STARTTLS, STARTTLS (port 587). Exit
   status follows sysexits.h, as sendmail and msmtp do, so cron wrappers can
   tell "retry later" (75) from "fix the configuration" (64-69, 77). Run
   `tlsmail-send --help` for the options; README.md has the manual.

   Build: cc -std=c99 -O2 -I. examples/tlsmail-send.c -o tlsmail-send -lbearssl
          (add -DTLSMAIL_STARTTLS for --starttls) */
#define TLSMAIL_IMPLEMENTATION
#include "tlsmail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* sysexits.h values, spelled out: the header is not in C99 or POSIX. */
enum {
    EX_OK = 0,
    EX_USAGE = 64,       /* bad command line */
    EX_DATAERR = 65,     /* bad message or address */
    EX_NOINPUT = 66,     /* a file we were told to read can't be read */
    EX_UNAVAILABLE = 69, /* refused for good: 5xx, TLS, certificate */
    EX_SOFTWARE = 70,    /* internal error */
    EX_TEMPFAIL = 75,    /* try again later: 4xx, timeout, network */
    EX_PROTOCOL = 76,    /* the server broke the protocol */
    EX_NOPERM = 77       /* authentication refused */
};

#define MAX_MESSAGE (64ul * 1024 * 1024) /* larger input is refused (65) */

static const char usage_text[] =
    "usage: tlsmail-send [options] RECIPIENT... < message\n"
    "       tlsmail-send -t [options] [RECIPIENT...] < message\n"
    "       tlsmail-send --subject TEXT [options] RECIPIENT... < text\n"
    "\n"
    "Sends one message over SMTP with TLS: implicit TLS (port 465) by default,\n"
    "STARTTLS (port 587) with --starttls. The message is read from stdin.\n"
    "\n"
    "Server:\n"
    "  --server HOST[:PORT]     SMTP server (env TLSMAIL_SERVER); port 465,\n"
    "                           or 587 with --starttls\n"
    "  --starttls               connect in plaintext and require STARTTLS\n"
    "  --timeout SECONDS        limit for each connect, read and write (default 60)\n"
    "Sender and recipients:\n"
    "  -f, --from ADDR          envelope sender (env TLSMAIL_FROM; default: the\n"
    "                           address in the message's From header)\n"
    "  -t                       add the recipients of the To, Cc and Bcc headers\n"
    "                           (a Bcc header is always removed before sending)\n"
    "  -i, -oi                  accepted for sendmail compatibility (ignored: a\n"
    "                           line with a single dot never ends the message)\n"
    "Message:\n"
    "  --subject TEXT           compose the message: stdin is plain UTF-8 text,\n"
    "                           From is --from, To is the recipients\n"
    "Authentication:\n"
    "  --user USER              log in as USER; the password comes from env\n"
    "                           TLSMAIL_PASSWORD or --password-file, never argv\n"
    "  --password-file FILE     read the password from FILE (one trailing\n"
    "                           newline, LF or CRLF, is stripped)\n"
    "  --auth plain|login|auto  mechanism (default auto: PLAIN if the server\n"
    "                           offers it, else LOGIN)\n"
    "Trust (default: the system store; SSL_CERT_FILE, SSL_CERT_DIR honoured):\n"
    "  --cafile FILE            trust the CA certificates in this PEM file\n"
    "  --capath DIR             trust the CA certificates in this directory\n"
    "  --pin-sha256 BASE64      trust only the server key with this SHA-256\n"
    "                           (of its SubjectPublicKeyInfo, as curl's\n"
    "                           --pinnedpubkey sha256//BASE64)\n"
    "Other:\n"
    "  -v, --verbose            show the SMTP dialogue on stderr (AUTH masked)\n"
    "  -h, --help               show this help and exit\n"
    "  --version                show the version and exit\n"
    "\n"
    "Exit status: 0 sent; 64 usage; 65 bad message or address; 66 unreadable\n"
    "file; 69 refused or unavailable (5xx, TLS, certificate); 70 internal\n"
    "error; 75 temporary failure, retry later (4xx, timeout, network); 76\n"
    "protocol error; 77 authentication refused.\n";

/* ---- small helpers ------------------------------------------------------ */

static void die(int code, const char *fmt, const char *a, const char *b) {
    fputs("tlsmail-send: ", stderr);
    fprintf(stderr, fmt, a ? a : "", b ? b : "");
    fputc('\n', stderr);
    exit(code);
}

static void usage_error(const char *fmt, const char *a) {
    fputs("tlsmail-send: ", stderr);
    fprintf(stderr, fmt, a ? a : "");
    fputs("\n(try tlsmail-send --help)\n", stderr);
    exit(EX_USAGE);
}

static void wipe(void *p, size_t n) {
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--) *v++ = 0;
}

static int ieq(const char *a, const char *b) {
    for (;; a++, b++) {
        int x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z') x += 'a' - 'A';
        if (y >= 'A' && y <= 'Z') y += 'a' - 'A';
        if (x != y) return 0;
        if (!x) return 1;
    }
}

static int ieqn(const char *a, size_t n, const char *b) {
    size_t i;
    for (i = 0; i < n; i++) {
        int x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (!y) return 0;
        if (x >= 'A' && x <= 'Z') x += 'a' - 'A';
        if (y >= 'A' && y <= 'Z') y += 'a' - 'A';
        if (x != y) return 0;
    }
    return b[n] == 0;
}

static char *xstrndup(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) die(EX_SOFTWARE, "out of memory%s%s", NULL, NULL);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* Read all of f, at most max octets; returns NULL (and *len > max) when
   the input is larger. No line length limit: lines are checked later. */
static char *read_all(FILE *f, size_t max, size_t *len) {
    size_t cap = 1 << 16, n = 0, r;
    char *buf = malloc(cap + 1);
    if (!buf) die(EX_SOFTWARE, "out of memory%s%s", NULL, NULL);
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n > max) {
            free(buf);
            *len = n;
            return NULL;
        }
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) die(EX_SOFTWARE, "out of memory%s%s", NULL, NULL);
            buf = nb;
            cap *= 2;
        }
    }
    if (ferror(f)) die(EX_NOINPUT, "cannot read the message from stdin%s%s", NULL, NULL);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* ---- recipients --------------------------------------------------------- */

typedef struct list {
    char **v;
    size_t n, cap;
} list;

/* Adds addr unless it is already there (compared case-insensitively: one
   RCPT per mailbox however often it appears in the headers). */
static void list_add(list *l, char *addr) {
    size_t i;
    for (i = 0; i < l->n; i++)
        if (ieq(l->v[i], addr)) {
            free(addr);
            return;
        }
    if (l->n == l->cap) {
        char **nv;
        l->cap = l->cap ? l->cap * 2 : 8;
        nv = realloc(l->v, l->cap * sizeof *nv);
        if (!nv) die(EX_SOFTWARE, "out of memory%s%s", NULL, NULL);
        l->v = nv;
    }
    l->v[l->n++] = addr;
}

/* An RFC 5322 address list (To: "A" <a@x>, b@y (comment), grp: c@z;) to
   bare addresses: display names, comments and group names dropped, quoted
   local parts kept. Unfolded or folded text in, one list_add per mailbox. */
static void parse_addresses(const char *s, size_t n, list *out) {
    char *cur = malloc(n + 1), *ang = malloc(n + 1);
    size_t cl = 0, al = 0, i;
    int quote = 0, depth = 0, in_ang = 0, have_ang = 0;
    if (!cur || !ang) die(EX_SOFTWARE, "out of memory%s%s", NULL, NULL);
#define PUT(ch) (in_ang ? (void)(ang[al++] = (ch)) : (void)(cur[cl++] = (ch)))
    for (i = 0; i <= n; i++) {
        char c = i < n ? s[i] : ',';
        if (i == n) quote = depth = in_ang = 0; /* unterminated: end it here */
        if (depth) { /* RFC 5322 3.2.2: comments nest, and are dropped */
            if (c == '\\' && i + 1 < n) i++;
            else if (c == '(') depth++;
            else if (c == ')') depth--;
            continue;
        }
        if (quote) {
            PUT(c);
            if (c == '\\' && i + 1 < n) PUT(s[++i]);
            else if (c == '"') quote = 0;
            continue;
        }
        switch (c) {
        case '(': depth = 1; break;
        case '"': quote = 1; PUT(c); break;
        case '<': if (!in_ang) { in_ang = 1; al = 0; } else PUT(c); break;
        case '>': if (in_ang) { in_ang = 0; have_ang = 1; } else PUT(c); break;
        case ':': /* a group's name, unless in a source route <@a:b@c> */
            if (in_ang) PUT(c);
            else if (!have_ang) cl = 0;
            break;
        case ',': case ';':
            if (in_ang) { PUT(c); break; }
            {
                const char *a = have_ang ? ang : cur;
                size_t len = have_ang ? al : cl;
                if (have_ang && len && a[0] == '@') { /* obsolete source route */
                    const char *colon = memchr(a, ':', len);
                    if (colon) { len -= (size_t)(colon + 1 - a); a = colon + 1; }
                }
                if (len) list_add(out, xstrndup(a, len));
                cl = al = 0;
                have_ang = 0;
            }
            break;
        case ' ': case '\t': case '\r': case '\n': break;
        default: PUT(c);
        }
    }
#undef PUT
    free(cur);
    free(ang);
}

/* "Display Name <addr>" -> a new "addr"; NULL if s has no such form. */
static char *angle_address(const char *s) {
    const char *lt = strrchr(s, '<');
    size_t n = strlen(s);
    if (!lt || n == 0 || s[n - 1] != '>') return NULL;
    return xstrndup(lt + 1, (size_t)(s + n - 1 - (lt + 1)));
}

/* ---- the message -------------------------------------------------------- */

/* RFC 5321 4.5.3.1.6: checked before connecting, with the line number. */
static size_t long_line(const char *m, size_t n) {
    size_t i, ll = 0, line = 1;
    for (i = 0; i < n; i++) {
        if (m[i] == '\r' || m[i] == '\n') {
            if (!(m[i] == '\n' && i > 0 && m[i - 1] == '\r')) line++;
            ll = 0;
        } else if (++ll > 998) {
            return line;
        }
    }
    return 0;
}

/* Where the line after the line end at k starts (CRLF, LF or a bare CR). */
static size_t next_line(const char *m, size_t n, size_t k) {
    if (k < n && m[k] == '\r') return k + 1 < n && m[k + 1] == '\n' ? k + 2 : k + 1;
    return k < n ? k + 1 : n;
}

/* Walk the header section (up to the first empty line, or the first line
   that is neither a field nor a continuation): with collect (-t), add the
   To, Cc and Bcc recipients; note the From address; and always cut every
   Bcc field, continuation lines included, out of the message, as msmtp
   does: a Bcc header must never reach the other recipients. */
static void scan_headers(char *msg, size_t *len, list *rcpts, int collect, char **from_hdr) {
    size_t pos = 0, n = *len;
    while (pos < n) {
        size_t fstart = pos, fend, k, colon, vstart, nl;
        for (k = pos; k < n && msg[k] != '\n' && msg[k] != '\r'; k++) {}
        if (k == pos) break; /* empty line: the body starts */
        for (colon = pos; colon < k && msg[colon] != ':'; colon++)
            if ((unsigned char)msg[colon] <= ' ' || (unsigned char)msg[colon] == 0x7F) break;
        if (colon == k || msg[colon] != ':' || colon == pos) break; /* not a field */
        vstart = colon + 1;
        fend = k;
        pos = next_line(msg, n, k);
        while (pos < n && (msg[pos] == ' ' || msg[pos] == '\t')) { /* RFC 5322 2.2.3 folding */
            for (fend = pos; fend < n && msg[fend] != '\n' && msg[fend] != '\r'; fend++) {}
            pos = next_line(msg, n, fend);
        }
        nl = colon - fstart;
        if (collect && (ieqn(msg + fstart, nl, "to") || ieqn(msg + fstart, nl, "cc") ||
                        ieqn(msg + fstart, nl, "bcc")))
            parse_addresses(msg + vstart, fend - vstart, rcpts);
        if (from_hdr && !*from_hdr && ieqn(msg + fstart, nl, "from")) {
            list one = { NULL, 0, 0 };
            parse_addresses(msg + vstart, fend - vstart, &one);
            if (one.n) *from_hdr = one.v[0];
            while (one.n > 1) free(one.v[--one.n]);
            free(one.v);
        }
        if (ieqn(msg + fstart, nl, "bcc")) {
            memmove(msg + fstart, msg + pos, n - pos);
            n -= pos - fstart;
            pos = fstart;
        }
    }
    *len = n;
}

/* ---- sending ------------------------------------------------------------ */

static void trace(void *ud, int dir, const char *line, size_t len) {
    (void)ud;
    fprintf(stderr, "%s%s %.*s\n", (dir & TLSMAIL_TRACE_RECV) ? "<" : ">",
            (dir & TLSMAIL_TRACE_PLAINTEXT) ? " (plaintext)" : "", (int)len, line);
}

/* The exit status for a library error: the table in --help and README. */
static int exit_code(int err, int stage) {
    switch (err) {
    case TLSMAIL_OK: return EX_OK;
    case TLSMAIL_ETRANSIENT: case TLSMAIL_ETIMEOUT: case TLSMAIL_ECONNECT: case TLSMAIL_ERESOLVE:
    case TLSMAIL_ECLOSED: case TLSMAIL_EIO:
        return EX_TEMPFAIL;
    /* The message may have arrived: retrying may deliver it twice, but not
       retrying may lose it, and a duplicate is the lesser harm. */
    case TLSMAIL_EUNKNOWN: return EX_TEMPFAIL;
    case TLSMAIL_EPERMANENT: case TLSMAIL_ETLS: case TLSMAIL_ECERT_UNTRUSTED:
    case TLSMAIL_ECERT_EXPIRED: case TLSMAIL_ECERT_NAME: case TLSMAIL_ECERT_PIN:
    case TLSMAIL_ESTARTTLS: case TLSMAIL_EPLAINTEXT:
        return EX_UNAVAILABLE;
    case TLSMAIL_ETRUST: return EX_NOINPUT;
    case TLSMAIL_EPROTO: return EX_PROTOCOL;
    case TLSMAIL_EAUTH: case TLSMAIL_ENOMECH: case TLSMAIL_EAUTHHOST: return EX_NOPERM;
    case TLSMAIL_ELINE: return EX_DATAERR;
    case TLSMAIL_EINVAL:
        if (stage == TLSMAIL_STAGE_CONNECT || stage == TLSMAIL_STAGE_AUTH) return EX_USAGE;
        return EX_DATAERR;
    default: return EX_SOFTWARE;
    }
}

/* A hint for the mistakes people make most, on the same line. */
static const char *hint(int err, int stage, unsigned port, int starttls, const char *host) {
    if (err == TLSMAIL_EPLAINTEXT)
        return starttls ? "" : " (hint: this port wants --starttls, or use port 465)";
    if (err == TLSMAIL_ETLS && stage == TLSMAIL_STAGE_TLS && !starttls && (port == 587 || port == 25))
        return " (hint: port 587 normally needs --starttls)";
    if (err == TLSMAIL_ETIMEOUT && starttls &&
        (stage == TLSMAIL_STAGE_GREETING || stage == TLSMAIL_STAGE_STARTTLS || port == 465))
        return " (hint: a server that says nothing may expect implicit TLS: drop --starttls, "
               "port 465)";
    if (err == TLSMAIL_ECERT_UNTRUSTED)
        return " (hint: give the issuing CA with --cafile, or pin the key with --pin-sha256)";
    if (err == TLSMAIL_ECERT_NAME) return " (hint: connect by the name in the certificate)";
    if (err == TLSMAIL_EINVAL && stage == TLSMAIL_STAGE_CONNECT && host &&
        (strchr(host, ':') || (host[0] >= '0' && host[0] <= '9')))
        return " (hint: a certificate names a host, so an IP address needs --pin-sha256)";
    if (err == TLSMAIL_ENOMECH) return " (hint: the server offers no PLAIN/LOGIN here; see --auth)";
    return "";
}

/* ---- main --------------------------------------------------------------- */

static tlsmail_client client;   /* ~27 KB: static, not on the stack */
static char password[1024];

int main(int argc, char **argv) {
    const char *server = getenv("TLSMAIL_SERVER"), *from = getenv("TLSMAIL_FROM");
    const char *user = NULL, *pwfile = NULL, *authm = "auto", *cafile = NULL, *capath = NULL;
    const char *pin = NULL, *subject = NULL, *timeout = NULL;
    int starttls = 0, verbose = 0, tflag = 0, opts_done = 0, err, i, rc;
    list rcpts = { NULL, 0, 0 }, cmdline = { NULL, 0, 0 };
    char host[256], *msg, *from_hdr = NULL, *env_from = NULL, desc[1400];
    unsigned port = 0;
    size_t len, k;
    tlsmail_config cfg;
    tlsmail_trust trust;
    int have_trust = 0;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL, *eq;
        char name[32];
        if (opts_done || a[0] != '-' || a[1] == 0) {
            list_add(&cmdline, xstrndup(a, strlen(a)));
            continue;
        }
        if (!strcmp(a, "--")) { opts_done = 1; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(usage_text, stdout); return EX_OK; }
        if (!strcmp(a, "--version")) {
            printf("tlsmail-send %s (tlsmail.h, %s)\n", TLSMAIL_VERSION_STRING,
#ifdef TLSMAIL_STARTTLS
                   "implicit TLS and STARTTLS"
#else
                   "implicit TLS only"
#endif
            );
            return EX_OK;
        }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) { verbose = 1; continue; }
        if (!strcmp(a, "-t")) { tflag = 1; continue; }
        if (!strcmp(a, "-i") || !strcmp(a, "-oi")) continue;
        if (!strcmp(a, "--starttls")) { starttls = 1; continue; }
        if (a[1] == 'f' && a[2]) { from = a + 2; continue; } /* sendmail's -fADDR */
        /* options with a value: "--opt VALUE" or "--opt=VALUE" */
        eq = a[1] == '-' ? strchr(a, '=') : NULL;
        k = eq ? (size_t)(eq - a) : strlen(a);
        if (k >= sizeof name) usage_error("unknown option %s", a);
        memcpy(name, a, k);
        name[k] = 0;
        if (!strcmp(name, "--password") || !strcmp(name, "--pass") || !strcmp(name, "-p"))
            usage_error("%s: a password is never taken from the command line (other users can "
                        "read it); use env TLSMAIL_PASSWORD or --password-file", name);
        if (strcmp(name, "--server") && strcmp(name, "-f") && strcmp(name, "--from") &&
            strcmp(name, "--user") && strcmp(name, "--password-file") && strcmp(name, "--auth") &&
            strcmp(name, "--cafile") && strcmp(name, "--capath") && strcmp(name, "--pin-sha256") &&
            strcmp(name, "--timeout") && strcmp(name, "--subject"))
            usage_error("unknown option %s", a);
        if (eq) val = eq + 1;
        else if (i + 1 < argc) val = argv[++i];
        else usage_error("%s needs a value", name);
        if (!strcmp(name, "--server")) server = val;
        else if (!strcmp(name, "-f") || !strcmp(name, "--from")) from = val;
        else if (!strcmp(name, "--user")) user = val;
        else if (!strcmp(name, "--password-file")) pwfile = val;
        else if (!strcmp(name, "--auth")) authm = val;
        else if (!strcmp(name, "--cafile")) cafile = val;
        else if (!strcmp(name, "--capath")) capath = val;
        else if (!strcmp(name, "--pin-sha256")) pin = val;
        else if (!strcmp(name, "--timeout")) timeout = val;
        else subject = val;
    }

    /* ---- the command line, checked before anything is read or sent */
    memset(&cfg, 0, sizeof cfg);
    if (!server || !*server) usage_error("no server: give --server HOST[:PORT] or set TLSMAIL_SERVER%s", NULL);
#ifndef TLSMAIL_STARTTLS
    if (starttls)
        usage_error("--starttls: this tlsmail-send was built without STARTTLS support "
                    "(rebuild with -DTLSMAIL_STARTTLS), or use implicit TLS on port 465%s", NULL);
#else
    if (starttls) cfg.security = TLSMAIL_SECURITY_STARTTLS;
#endif
    {
        /* HOST, HOST:PORT, [V6]:PORT or a bare IPv6 address */
        const char *h = server, *colon = strrchr(server, ':'), *end;
        char *e;
        unsigned long p = starttls ? 587 : 465;
        if (server[0] == '[') {
            const char *close = strchr(server, ']');
            if (!close) usage_error("--server %s: missing ']'", server);
            h = server + 1;
            end = close;
            if (close[1] == ':') colon = close + 1;
            else if (close[1]) usage_error("--server %s: expected [ADDRESS]:PORT", server);
            else colon = NULL;
        } else if (colon && strchr(server, ':') != colon) {
            end = server + strlen(server); /* several colons: IPv6 without a port */
            colon = NULL;
        } else {
            end = colon ? colon : server + strlen(server);
        }
        if (colon) {
            p = strtoul(colon + 1, &e, 10);
            if (!colon[1] || *e || p == 0 || p > 65535) usage_error("--server %s: bad port", server);
        }
        if (end == h || (size_t)(end - h) >= sizeof host) usage_error("--server %s: bad host", server);
        memcpy(host, h, (size_t)(end - h));
        host[end - h] = 0;
        port = (unsigned)p;
    }
    cfg.host = host;
    cfg.port = port;
    if (timeout) {
        char *e;
        double s = strtod(timeout, &e);
        if (e == timeout || *e || !(s > 0) || s > 2000000)
            usage_error("--timeout %s: want a number of seconds > 0", timeout);
        cfg.timeout_ms = (int)(s * 1000 + 0.5);
        if (cfg.timeout_ms < 1) cfg.timeout_ms = 1;
    }
    if (verbose) {
        cfg.trace = trace;
        cfg.trace_ud = NULL;
    }
    if (strcmp(authm, "auto") && strcmp(authm, "plain") && strcmp(authm, "login"))
        usage_error("--auth %s: want plain, login or auto", authm);
    if (pwfile && !user) usage_error("--password-file needs --user%s", NULL);
    if (tflag && subject) usage_error("-t reads recipients from headers, --subject writes the headers: use one%s", NULL);
    if (pin && (cafile || capath)) usage_error("--pin-sha256 trusts one key: it can't be combined with --cafile or --capath%s", NULL);

    memset(&trust, 0, sizeof trust);
    if (pin) {
        if (tlsmail_trust_pin_sha256(&trust, pin) != 0)
            usage_error("--pin-sha256 %s: want the base64 of a SHA-256 (44 characters)", pin);
        have_trust = 1;
    }
    if (cafile) {
        if ((err = tlsmail_trust_file(&trust, cafile)) != 0)
            die(EX_NOINPUT, "--cafile %s: %s", cafile, tlsmail_strerror(err));
        have_trust = 1;
    }
    if (capath) {
        if ((err = tlsmail_trust_dir(&trust, capath)) != 0)
            die(EX_NOINPUT, "--capath %s: %s", capath, tlsmail_strerror(err));
        have_trust = 1;
    }
    if (have_trust) cfg.trust = &trust;

    if (user) {
        if (pwfile) {
            FILE *f = fopen(pwfile, "rb");
            size_t n;
            if (!f) die(EX_NOINPUT, "--password-file %s: cannot open%s", pwfile, NULL);
            n = fread(password, 1, sizeof password - 1, f);
            if (ferror(f) || !feof(f)) {
                fclose(f);
                wipe(password, sizeof password);
                die(EX_NOINPUT, "--password-file %s: unreadable or longer than 1000 octets%s", pwfile, NULL);
            }
            fclose(f);
            password[n] = 0;
            if (n && password[n - 1] == '\n') password[--n] = 0;
            if (n && password[n - 1] == '\r') password[--n] = 0;
            if (memchr(password, 0, n)) {
                wipe(password, sizeof password);
                die(EX_DATAERR, "--password-file %s: the password contains a NUL octet%s", pwfile, NULL);
            }
        } else {
            const char *pw = getenv("TLSMAIL_PASSWORD");
            if (!pw) usage_error("--user needs a password: set TLSMAIL_PASSWORD or use --password-file%s", NULL);
            if (strlen(pw) >= sizeof password) usage_error("TLSMAIL_PASSWORD is too long%s", NULL);
            strcpy(password, pw);
        }
        if (!password[0]) usage_error("--user: the password is empty%s", NULL);
    }

    /* ---- the message */
    msg = read_all(stdin, MAX_MESSAGE, &len);
    if (!msg) die(EX_DATAERR, "the message is larger than 64 MiB%s%s", NULL, NULL);

    if (subject) {
        tlsmail_message m;
        size_t need;
        char *out = NULL;
        if (!from) usage_error("--subject needs --from (the From header)%s", NULL);
        if (!cmdline.n) usage_error("no recipients%s", NULL);
        memset(&m, 0, sizeof m);
        m.from = from;
        m.to = (const char *const *)cmdline.v;
        m.nto = cmdline.n;
        m.subject = subject;
        m.body = msg;
        m.body_len = len;
        if ((err = tlsmail_compose(&m, NULL, 0, &need)) != 0 || !(out = malloc(need + 1)) ||
            (err = tlsmail_compose(&m, out, need + 1, &len)) != 0)
            die(EX_DATAERR, "cannot compose the message: %s%s",
                err == TLSMAIL_EINVAL ? "a control character (CR, LF...) in --subject or an address, "
                                        "an invalid address, or text that is not UTF-8"
                                      : tlsmail_strerror(err), NULL);
        free(msg);
        msg = out;
    } else {
        size_t line = long_line(msg, len);
        if (line) {
            char num[32];
            snprintf(num, sizeof num, "%lu", (unsigned long)line);
            die(EX_DATAERR, "message line %s is longer than 998 octets (RFC 5321 4.5.3.1.6)%s", num, NULL);
        }
        scan_headers(msg, &len, &rcpts, tflag, from ? NULL : &from_hdr);
        if (!from) from = from_hdr;
        if (!from) usage_error("no sender: give --from ADDR, set TLSMAIL_FROM, or put a From header in the message%s", NULL);
    }
    /* "Name <addr>" on the command line (the form --subject puts in the
       headers): the envelope takes addr. Anything else goes as given. */
    for (k = 0; k < cmdline.n; k++) {
        char *bare = angle_address(cmdline.v[k]);
        if (bare) {
            free(cmdline.v[k]);
            cmdline.v[k] = bare;
        }
        list_add(&rcpts, cmdline.v[k]);
    }
    if (from && (env_from = angle_address(from)) != NULL) from = env_from;
    if (!rcpts.n) usage_error(tflag ? "no recipients on the command line or in To, Cc, Bcc%s" : "no recipients%s", NULL);
    if (*from && tlsmail_check_address(from) != 0) die(EX_DATAERR, "invalid sender address '%s'%s", from, NULL);
    for (k = 0; k < rcpts.n; k++)
        if (tlsmail_check_address(rcpts.v[k]) != 0) die(EX_DATAERR, "invalid recipient address '%s'%s", rcpts.v[k], NULL);

    if (verbose)
        fprintf(stderr, "* %s port %u, %s, %lu recipient(s), %lu octets\n", host, port,
                starttls ? "STARTTLS" : "implicit TLS", (unsigned long)rcpts.n, (unsigned long)len);

    /* ---- send */
    {
        tlsmail_auth a;
        if (user && !strcmp(authm, "login")) a = tlsmail_login_auth(user, password, host);
        else if (user && !strcmp(authm, "plain")) a = tlsmail_plain_auth("", user, password, host);
        else a = tlsmail_auto_auth(user, password, host); /* PLAIN if offered, else LOGIN */
        err = tlsmail_client_send(&client, &cfg, user ? &a : NULL, from, (const char *const *)rcpts.v,
                               rcpts.n, msg, len);
    }
    wipe(password, sizeof password);
    rc = exit_code(err, tlsmail_stage(&client));
    if (err) {
        tlsmail_describe(&client, err, desc, sizeof desc);
        fprintf(stderr, "tlsmail-send: %s%s\n", desc,
                hint(err, tlsmail_stage(&client), port, starttls, host));
    } else if (verbose) {
        fprintf(stderr, "* sent\n");
    }
    tlsmail_close(&client);
    tlsmail_trust_free(&trust);
    for (k = 0; k < rcpts.n; k++) free(rcpts.v[k]);
    free(rcpts.v);
    free(cmdline.v);
    free(from_hdr);
    free(env_from);
    free(msg);
    return rc;
}
