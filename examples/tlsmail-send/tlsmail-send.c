/* tlsmail-send - the sendmail of a small box, built on tlsmail.h.

       tlsmail-send [options] [--] RECIPIENT... < message
       tlsmail-send --check | --config-check [--account NAME]

   Sends the message on stdin over SMTP with implicit TLS (port 465, RFC
   8314) or, when built with -DTLSMAIL_STARTTLS, STARTTLS (port 587), with
   the settings of /etc/tlsmail-send.conf, ~/.config/tlsmail-send/config,
   the environment and the command line. It takes the argv that cron,
   mailx, git send-email, PHP's mail() and the other callers of
   /usr/sbin/sendmail pass. Exit status follows sysexits.h, as sendmail and
   msmtp do, so a caller can tell "retry later" (75) from "fix the
   configuration" (64-69, 77, 78). The manual: tlsmail-send(1) and
   tlsmail-send.conf(5), beside this file.

   Build: cc -std=c99 -O2 -DTLSMAIL_STARTTLS -I. \
              examples/tlsmail-send/tlsmail-send.c -o tlsmail-send -lbearssl
   (also builds as C++: c++ -x c++ -std=c++11 ...). Windows, with mingw-w64:
          x86_64-w64-mingw32-gcc -std=c99 -O2 -DTLSMAIL_STARTTLS -I. \
              examples/tlsmail-send/tlsmail-send.c -o tlsmail-send.exe \
              -lbearssl -lws2_32 -ladvapi32
   where the settings live in %ProgramData%\tlsmail-send\tlsmail-send.conf
   and %APPDATA%\tlsmail-send\config, log syslog means the Application
   event log, and a configuration file holding a password is not checked
   for others' read access (ACLs are no mode bits). What differs is in
   whole functions, one per system. */
#define TLSMAIL_IMPLEMENTATION
#include "tlsmail.h" /* first: it sets the POSIX feature macros */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#ifdef _WIN32
#include <io.h>
#include <process.h>
#include <windows.h> /* after tlsmail.h, which brings winsock2.h first */
#ifndef __MINGW32__  /* mingw-w64 has the POSIX names, MSVC only its own */
#define strcasecmp _stricmp
#define strncasecmp _strnicmp
#endif
#else
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <strings.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>
#endif

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
    EX_NOPERM = 77,      /* authentication refused */
    EX_CONFIG = 78       /* the configuration is wrong */
};

#define MAX_MESSAGE (64ul * 1024 * 1024) /* larger input is refused (65) */
/* What is read before connecting: a message that fits is checked whole
   first and sent in one pipelined exchange; a larger one is streamed in
   pieces of this size, so memory stays constant whatever its size. Its
   header section must fit (recipients, Bcc and the added headers are
   decided before the first octet goes out). */
#define WINDOW (256u * 1024)
/* TLS sessions kept in a session cache file, one per server. */
#define CACHE_ENTRIES 16
#ifdef _WIN32
#define SYSTEM_CONFIG "C:\\ProgramData\\tlsmail-send\\tlsmail-send.conf"
#else
#define SYSTEM_CONFIG "/etc/tlsmail-send.conf"
#endif
/* A stuck or dripping server must not hold a cron job for long; 120 s
   still carries a 10 MB message over a 1 Mbit/s uplink. */
#define DEFAULT_MAX_TIME "120"
#define MAX_ALIAS_DEPTH 8

/* ---- settings: one list of keys for the files, the environment, argv ---- */

#define KEYS(X)                                                                       \
    X(SERVER, "server", 0, "HOST[:PORT] of the SMTP server (required)")               \
    X(PORT, "port", 0, "port when server has none: 465, or 587 with starttls")        \
    X(SECURITY, "security", 0, "tls (implicit TLS, default) or starttls")             \
    X(USER, "user", 0, "login name; no AUTH when unset")                              \
    X(PASSWORD, "password", 1, "the secret itself")                                   \
    X(PASSWORD_FILE, "password_file", 0, "a file whose first line is the secret")     \
    X(PASSWORD_COMMAND, "password_command", 0, "a command that prints the secret")    \
    X(AUTH, "auth", 0, "plain, login or auto (default: PLAIN if offered, else LOGIN)")\
    X(FROM, "from", 0, "envelope sender and the address of an added From")            \
    X(FROM_NAME, "from_name", 0, "display name of an added From")                     \
    X(CAFILE, "cafile", 0, "trust the CA certificates in this PEM file")              \
    X(CAPATH, "capath", 0, "trust the CA certificates in this directory")             \
    X(PIN_SHA256, "pin_sha256", 0, "trust only the server key with this SHA-256")     \
    X(TIMEOUT, "timeout", 0, "seconds for each connect, read and write (default 60)") \
    X(MAX_TIME, "max_time", 0, "seconds for the whole run (default " DEFAULT_MAX_TIME ")") \
    X(HELO, "helo", 0, "the name sent with EHLO (default localhost)")                 \
    X(ALIASES, "aliases", 0, "aliases(5) file for recipients without a domain")       \
    X(DOMAIN, "domain", 0, "domain for local names no alias maps")                    \
    X(ADD_MISSING_HEADERS, "add_missing_headers", 0, "on (default) or off")           \
    X(LOG, "log", 0, "a file to append one line per message to, or syslog")           \
    X(SESSION_CACHE, "session_cache", 0, "a file to keep TLS sessions in, to resume them")

enum {
#define KEY_ENUM(id, name, secret, help) K_##id,
    KEYS(KEY_ENUM)
#undef KEY_ENUM
    K_COUNT
};

typedef struct keyinfo {
    const char *name;
    int secret;
    const char *help;
} keyinfo;

static const keyinfo keys[K_COUNT] = {
#define KEY_INFO(id, name, secret, help) { name, secret, help },
    KEYS(KEY_INFO)
#undef KEY_INFO
};

/* Where a value came from, lowest precedence first. */
enum { L_NONE, L_SYSTEM, L_USER, L_ENV, L_ARGV };

typedef struct setting {
    const char *value; /* NULL: unset */
    int level;
    char source[320];  /* "FILE:LINE", "env NAME", "argv --opt" */
} setting;

typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist;

/* Everything one run knows; one static instance. */
typedef struct run {
    setting set[K_COUNT];
    setting argset[K_COUNT]; /* from argv, applied last */
    setting account;
    strlist recipients;      /* from argv, as given */
    const char *opt_f;       /* sendmail -f/-r */
    const char *opt_fname;   /* sendmail -F */
    const char *subject;     /* --subject */
    const char *dsn_notify, *dsn_ret, *dsn_envid; /* -N, -R, -V: kept, not sent */
    strlist batch;           /* --batch FILE|DIR, as given */
    int tflag, verbose, check, config_check;
    char files[2][1024];     /* the files read, for messages */
    int nfiles;
    /* derived */
    tlsmail_config cfg;
    tlsmail_trust trust;
    char host[256];
    unsigned port;
    int starttls;
    char *msg;
    size_t len;
    char *from;              /* envelope sender */
    char *display;           /* display name for an added From */
    strlist rcpts;           /* envelope recipients */
    /* the message being sent: R.msg holds its first WINDOW octets, or all
       of it when msg_eof; the rest is read from msg_fd while it is sent */
    const char *msg_name;    /* "stdin" or the file's path */
    int msg_fd;
    int msg_eof;
    unsigned long long input;/* octets read of it */
    unsigned long long sent; /* octets handed to the library, added ones too */
    char *added;             /* header fields to put first, or NULL */
    size_t addlen;
    int aliases_loaded;
    strlist msgfiles;        /* --batch: the message files, in order */
    tlsmail_session session; /* --session-cache: the one for this server */
    char *cache_text;        /* the entry it was loaded from, or NULL */
} run;

static run R;
static tlsmail_client client; /* ~27 KB: static, not on the stack */
static char password[1024];

/* ---- small helpers ------------------------------------------------------ */

/* The library's wipe is private; this one is only for the secret. */
static void wipe(void *p, size_t n) {
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--) *v++ = 0;
}

#if defined(__GNUC__) || defined(__clang__)
static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
#endif
static void die(int code, const char *fmt, ...) {
    va_list ap;
    wipe(password, sizeof password);
    fputs("tlsmail-send: ", stderr);
    if (R.msgfiles.n && R.msg_name) fprintf(stderr, "%s: ", R.msg_name); /* --batch: which file */
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

#define usage_error(...) die(EX_USAGE, __VA_ARGS__)

/* 64 for a setting given on the command line, 78 for one from a file or
   the environment: who has to fix it. */
static int config_status(const setting *s) { return s->level == L_ARGV ? EX_USAGE : EX_CONFIG; }

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die(EX_SOFTWARE, "out of memory");
    return p;
}

static char *xstrndup(const char *s, size_t n) {
    char *p = (char *)xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

static char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

static void list_push(strlist *l, char *s) {
    if (l->n == l->cap) {
        char **nv;
        l->cap = l->cap ? l->cap * 2 : 8;
        nv = (char **)realloc(l->v, l->cap * sizeof *nv);
        if (!nv) die(EX_SOFTWARE, "out of memory");
        l->v = nv;
    }
    l->v[l->n++] = s;
}

/* One RCPT per mailbox however often it appears. */
static void list_add_unique(strlist *l, char *addr) {
    size_t i;
    for (i = 0; i < l->n; i++)
        if (strcasecmp(l->v[i], addr) == 0) {
            free(addr);
            return;
        }
    list_push(l, addr);
}

static void list_free(strlist *l) {
    size_t i;
    for (i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int name_eq(const char *s, size_t n, const char *name) {
    return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

/* Seconds (fractions allowed) to milliseconds; -1 if not a number > 0. */
static int parse_seconds(const char *s) {
    char *e;
    double v = strtod(s, &e);
    if (e == s || *e || !(v > 0) || v > 2000000) return -1;
    return v * 1000 < 1 ? 1 : (int)(v * 1000 + 0.5);
}

static int parse_bool(const char *s) {
    if (!strcasecmp(s, "on") || !strcasecmp(s, "yes") || !strcasecmp(s, "true") || !strcmp(s, "1"))
        return 1;
    if (!strcasecmp(s, "off") || !strcasecmp(s, "no") || !strcasecmp(s, "false") || !strcmp(s, "0"))
        return 0;
    return -1;
}

/* ---- the command line: one table for the parser and --help -------------- */

enum {
    A_HEAD, A_KEY, A_FLAG_T, A_SENDER, A_FULLNAME, A_IGNORE, A_BODYTYPE, A_DSN_N, A_DSN_R,
    A_DSN_V, A_VERBOSE, A_HELP, A_VERSION, A_CHECK, A_CONFIG_CHECK, A_ACCOUNT, A_SUBJECT,
    A_STARTTLS, A_PASSWORD, A_BATCH
};
enum { ATTACHED = 1 }; /* the value may follow the letter: -fADDR */

typedef struct option {
    const char *names; /* spellings, '|'-separated; A_HEAD: a heading */
    const char *arg;   /* the value's name, or NULL for a flag */
    int act, key;
    unsigned flags;
    const char *help;  /* '\n' starts a continuation line */
} option;

static const option options[] = {
    { "Server (each also a setting of tlsmail-send.conf(5)):", NULL, A_HEAD, 0, 0, NULL },
    { "--server", "HOST[:PORT]", A_KEY, K_SERVER, 0, "SMTP server; port 465, or 587 with --starttls" },
    { "--starttls", NULL, A_STARTTLS, K_SECURITY, 0, "connect in plaintext and require STARTTLS" },
    { "--account", "NAME", A_ACCOUNT, 0, 0, "use this account of the configuration" },
    { "--timeout", "SECONDS", A_KEY, K_TIMEOUT, 0, "limit for each connect, read and write (default 60)" },
    { "--max-time", "SECONDS", A_KEY, K_MAX_TIME, 0,
      "whole run, connect to exit (default " DEFAULT_MAX_TIME ")" },
    { "Authentication:", NULL, A_HEAD, 0, 0, NULL },
    { "--user", "USER", A_KEY, K_USER, 0,
      "log in as USER; the password comes from the\nconfiguration, env TLSMAIL_PASSWORD or\n"
      "--password-file, never from argv" },
    { "--password-file", "FILE", A_KEY, K_PASSWORD_FILE, 0,
      "read the password from FILE (one trailing\nnewline, LF or CRLF, is stripped)" },
    { "--password|--pass|-p", NULL, A_PASSWORD, 0, 0, "refused: others could read it in the process list" },
    { "--auth", "plain|login|auto", A_KEY, K_AUTH, 0,
      "mechanism (default auto: PLAIN if the server\noffers it, else LOGIN)" },
    { "Trust (default: the system store; SSL_CERT_FILE, SSL_CERT_DIR honoured):", NULL, A_HEAD, 0, 0, NULL },
    { "--cafile", "FILE", A_KEY, K_CAFILE, 0, "trust the CA certificates in this PEM file" },
    { "--capath", "DIR", A_KEY, K_CAPATH, 0, "trust the CA certificates in this directory" },
    { "--pin-sha256", "BASE64", A_KEY, K_PIN_SHA256, 0,
      "trust only the server key with this SHA-256 (of\nits SubjectPublicKeyInfo, as curl's\n"
      "--pinnedpubkey sha256//BASE64)" },
    { "Sender, recipients, message:", NULL, A_HEAD, 0, 0, NULL },
    { "--from", "ADDR", A_KEY, K_FROM, 0, "envelope sender; wins over -f and the From header" },
    { "-f|-r", "ADDR", A_SENDER, 0, ATTACHED,
      "sendmail's envelope sender (also -fADDR), used\nwhen no from is configured" },
    { "-F", "NAME", A_FULLNAME, 0, ATTACHED, "display name for an added From header (also -FNAME)" },
    { "-t", NULL, A_FLAG_T, 0, 0,
      "add the recipients of the To, Cc and Bcc\nheaders (a Bcc header is always removed)" },
    { "--subject", "TEXT", A_SUBJECT, 0, 0,
      "compose the message: stdin is plain UTF-8\ntext, From is the sender, To the recipients" },
    { "--batch", "FILE", A_BATCH, 0, 0,
      "send FILE instead of stdin, over one connection\nwith the other --batch FILEs (repeatable; a\n"
      "directory: each file in it); recipients from\neach one's To, Cc and Bcc, and the RECIPIENTs" },
    { "--session-cache", "FILE", A_KEY, K_SESSION_CACHE, 0,
      "keep the TLS session in FILE and resume it\nnext time (a handshake without the\n"
      "certificates); FILE is made mode 0600" },
    { "sendmail compatibility (accepted; see tlsmail-send(1)):", NULL, A_HEAD, 0, 0, NULL },
    { "-i|-oi", NULL, A_IGNORE, 0, 0, "a lone dot never ends the message anyway" },
    { "-oem|-oee|-oep|-oeq|-oew", NULL, A_IGNORE, 0, 0, "errors are always reported by exit status and stderr" },
    { "-odi|-odb|-odq", NULL, A_IGNORE, 0, 0, "delivery is always at once (there is no queue)" },
    { "-bm", NULL, A_IGNORE, 0, 0, "deliver a message: the only mode" },
    { "-B", "7BIT|8BITMIME", A_BODYTYPE, 0, ATTACHED,
      "body type (also -BTYPE); BODY=8BITMIME goes\nout whenever the server offers it" },
    { "-N", "DSN", A_DSN_N, 0, ATTACHED, "never, or success,failure,delay: kept, not sent yet" },
    { "-R", "full|hdrs", A_DSN_R, 0, ATTACHED, "DSN return: kept, not sent yet" },
    { "-V", "ENVID", A_DSN_V, 0, ATTACHED, "DSN envelope id: kept, not sent yet" },
    { "Other:", NULL, A_HEAD, 0, 0, NULL },
    { "--check", NULL, A_CHECK, 0, 0,
      "connect, verify TLS, log in, QUIT; print\nwhat the server offers" },
    { "--config-check", NULL, A_CONFIG_CHECK, 0, 0,
      "print the effective settings and their sources" },
    { "-v|--verbose", NULL, A_VERBOSE, 0, 0, "show the SMTP dialogue on stderr (AUTH masked)" },
    { "-h|--help", NULL, A_HELP, 0, 0, "show this help and exit" },
    { "--version", NULL, A_VERSION, 0, 0, "show the version and exit" },
};
#define NOPTIONS (sizeof options / sizeof options[0])

static const char help_head[] =
    "usage: tlsmail-send [options] [--] RECIPIENT... < message\n"
    "       tlsmail-send -t [options] [RECIPIENT...] < message\n"
    "       tlsmail-send --subject TEXT [options] RECIPIENT... < text\n"
    "       tlsmail-send --batch FILE [--batch FILE]... [options] [RECIPIENT...]\n"
    "       tlsmail-send --check | --config-check [--account NAME]\n"
    "\n"
    "Sends one message over SMTP with TLS: implicit TLS (port 465) by default,\n"
    "STARTTLS (port 587) with --starttls. The message is read from stdin.\n"
    "Settings: the command line, then env TLSMAIL_<KEY> (TLSMAIL_SERVER,\n"
    "TLSMAIL_USER, TLSMAIL_PASSWORD, TLSMAIL_FROM, ...; TLSMAIL_ACCOUNT), then\n"
    "~/.config/tlsmail-send/config, then /etc/tlsmail-send.conf; TLSMAIL_CONFIG\n"
    "names the one file to read instead. See tlsmail-send.conf(5).\n";

static const char help_tail[] =
    "\n"
    "Exit status: 0 sent; 64 usage; 65 bad message or address; 66 unreadable\n"
    "file; 69 refused or unavailable (5xx, TLS, certificate); 70 internal\n"
    "error; 75 temporary failure, retry later (4xx, timeout, network); 76\n"
    "protocol error; 77 authentication refused; 78 bad configuration.\n";

/* The option column: "-f, -r ADDR". */
static void option_label(const option *o, char *buf, size_t cap) {
    size_t n = 0;
    const char *p;
    for (p = o->names; *p && n + 3 < cap; p++) {
        if (*p == '|') {
            buf[n++] = ',';
            buf[n++] = ' ';
        } else {
            buf[n++] = *p;
        }
    }
    buf[n] = 0;
    if (o->arg) snprintf(buf + n, cap - n, " %s", o->arg);
}

static void print_help(void) {
    size_t i;
    fputs(help_head, stdout);
    for (i = 0; i < NOPTIONS; i++) {
        const option *o = &options[i];
        char label[64];
        const char *h, *nl;
        if (o->act == A_HEAD) {
            printf("\n%s\n", o->names);
            continue;
        }
        option_label(o, label, sizeof label);
        if (strlen(label) > 23) printf("  %s\n%27s", label, "");
        else printf("  %-24s ", label);
        for (h = o->help; (nl = strchr(h, '\n')) != NULL; h = nl + 1)
            printf("%.*s\n%27s", (int)(nl - h), h, "");
        printf("%s\n", h);
    }
    fputs(help_tail, stdout);
}

/* Which spelling of o matches arg: its length, or 0. For an option that
   takes a value, "--opt=VALUE" and, with ATTACHED, "-fVALUE" match too. */
static size_t option_match(const option *o, const char *arg) {
    const char *p = o->names;
    while (*p) {
        const char *end = strchr(p, '|');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (strncmp(arg, p, n) == 0) {
            char next = arg[n];
            if (next == 0) return n;
            if ((o->arg || o->act == A_PASSWORD) && next == '=' && p[1] == '-') return n;
            if (o->arg && (o->flags & ATTACHED) && n == 2) return n;
        }
        p += n;
        if (*p == '|') p++;
    }
    return 0;
}

static void set_argv(int key, const char *value, const char *spelling) {
    setting *s = &R.argset[key];
    s->value = value;
    s->level = L_ARGV;
    snprintf(s->source, sizeof s->source, "argv %s", spelling);
}

static void check_choice(const char *opt, const char *v, const char *const *ok, int list) {
    /* v is one of ok, or with list a comma-separated list of them. */
    const char *p = v;
    size_t i;
    if (!*v) usage_error("%s: empty value", opt);
    while (*p) {
        const char *end = list ? strchr(p, ',') : NULL;
        size_t n = end ? (size_t)(end - p) : strlen(p);
        for (i = 0; ok[i]; i++)
            if (name_eq(p, n, ok[i])) break;
        if (!ok[i]) usage_error("%s %s: not a value sendmail knows here", opt, v);
        p += n;
        if (*p == ',') p++;
    }
}

static void parse_command_line(int argc, char **argv) {
    static const char *const body_types[] = { "7BIT", "8BITMIME", NULL };
    static const char *const notify[] = { "success", "failure", "delay", NULL };
    static const char *const never[] = { "never", NULL };
    static const char *const ret[] = { "full", "hdrs", NULL };
    int i, done = 0;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        const option *o = NULL;
        size_t k, n = 0;
        char spelling[40];
        if (done || a[0] != '-' || a[1] == 0) {
            list_push(&R.recipients, xstrdup(a));
            continue;
        }
        if (!strcmp(a, "--")) {
            done = 1;
            continue;
        }
        for (k = 0; k < NOPTIONS && !o; k++)
            if (options[k].act != A_HEAD && (n = option_match(&options[k], a)) != 0) o = &options[k];
        if (!o) usage_error("unknown option %s (see tlsmail-send --help)", a);
        snprintf(spelling, sizeof spelling, "%.*s", (int)n, a);
        if (o->act == A_PASSWORD)
            usage_error("%s: a password is never taken from the command line (other users can "
                        "read it); use env TLSMAIL_PASSWORD, password_file or --password-file",
                        spelling);
        if (o->arg) {
            if (a[n] == '=') val = a + n + 1;
            else if (a[n]) val = a + n;
            else if (i + 1 < argc) val = argv[++i];
            else usage_error("%s needs a value (%s)", spelling, o->arg);
        }
        if (!val) val = ""; /* a flag: the table gives it no value */
        switch (o->act) {
        case A_KEY: set_argv(o->key, val, spelling); break;
        case A_STARTTLS: set_argv(K_SECURITY, "starttls", spelling); break;
        case A_ACCOUNT:
            R.account.value = val;
            R.account.level = L_ARGV;
            snprintf(R.account.source, sizeof R.account.source, "argv %s", spelling);
            break;
        case A_SENDER: R.opt_f = val; break;
        case A_FULLNAME: R.opt_fname = val; break;
        case A_FLAG_T: R.tflag = 1; break;
        case A_SUBJECT: R.subject = val; break;
        case A_BATCH: list_push(&R.batch, xstrdup(val)); break;
        case A_IGNORE: break;
        case A_BODYTYPE: check_choice(spelling, val, body_types, 0); break;
        case A_DSN_N:
            check_choice(spelling, val, strcasecmp(val, "never") ? notify : never, 1);
            R.dsn_notify = val;
            break;
        case A_DSN_R: check_choice(spelling, val, ret, 0); R.dsn_ret = val; break;
        case A_DSN_V:
            if (!*val || strlen(val) > 100 || strpbrk(val, " +=\t\r\n"))
                usage_error("%s %s: want up to 100 printable characters without space, + or =",
                            spelling, val);
            R.dsn_envid = val;
            break;
        case A_VERBOSE: R.verbose = 1; break;
        case A_CHECK: R.check = 1; break;
        case A_CONFIG_CHECK: R.config_check = 1; break;
        case A_HELP: print_help(); exit(EX_OK);
        case A_VERSION:
            printf("tlsmail-send %s (tlsmail.h, %s)\n", TLSMAIL_VERSION_STRING,
#ifdef TLSMAIL_STARTTLS
                   "implicit TLS and STARTTLS"
#else
                   "implicit TLS only"
#endif
            );
            exit(EX_OK);
        default: break;
        }
    }
}

/* ---- the configuration files -------------------------------------------- */

typedef struct confline {
    const char *account; /* NULL: before the first account, for every one */
    int key, level;
    char *value;
    char source[320];
} confline;

static confline *clines;
static size_t nclines, capclines;
static strlist accounts;            /* declared names */
static const char *accounts_first;  /* the first one declared */
static setting default_account;

static void cline_add(const char *account, int key, int level, char *value, const char *src) {
    if (nclines == capclines) {
        confline *nv;
        capclines = capclines ? capclines * 2 : 32;
        nv = (confline *)realloc(clines, capclines * sizeof *nv);
        if (!nv) die(EX_SOFTWARE, "out of memory");
        clines = nv;
    }
    clines[nclines].account = account;
    clines[nclines].key = key;
    clines[nclines].level = level;
    clines[nclines].value = value;
    snprintf(clines[nclines].source, sizeof clines[nclines].source, "%s", src);
    nclines++;
}

/* A value as written, or in double quotes with \" and \\ inside. */
static char *conf_value(const char *v, const char *where) {
    size_t n = strlen(v), i, o = 0;
    char *out;
    if (n < 2 || v[0] != '"' || v[n - 1] != '"') return xstrdup(v);
    out = (char *)xmalloc(n);
    for (i = 1; i + 1 < n; i++) {
        if (v[i] == '\\' && i + 2 < n && (v[i + 1] == '"' || v[i + 1] == '\\')) i++;
        else if (v[i] == '"') die(EX_CONFIG, "%s: a quote inside a quoted value (write \\\")", where);
        out[o++] = v[i];
    }
    out[o] = 0;
    return out;
}

#ifdef _WIN32
static void user_config_path(char *out, size_t cap) {
    const char *xdg = getenv("XDG_CONFIG_HOME"), *appdata = getenv("APPDATA");
    if (xdg && *xdg) snprintf(out, cap, "%s\\tlsmail-send\\config", xdg);
    else if (appdata && *appdata) snprintf(out, cap, "%s\\tlsmail-send\\config", appdata);
    else out[0] = 0;
}

/* The login name, for a sender made up from it; "root" when unknown. */
static const char *login_name(void) {
    static char name[257];
    DWORD n = sizeof name;
    return GetUserNameA(name, &n) && name[0] ? name : "root";
}

/* Windows guards files with ACLs, not mode bits: nothing to check here. */
static int others_can_read(FILE *f, unsigned *mode) {
    (void)f;
    *mode = 0;
    return 0;
}

/* The CRT's read takes an unsigned count; a short read is fine here. */
static long read_fd(int fd, void *buf, size_t n) {
    return (long)_read(fd, buf, (unsigned)(n > (1u << 30) ? 1u << 30 : n));
}

/* A message file, octets as they are, not inherited by password_command. */
static int open_input(const char *path) { return _open(path, _O_RDONLY | _O_BINARY | _O_NOINHERIT); }

static void close_fd(int fd) { (void)_close(fd); }
#else
static void user_config_path(char *out, size_t cap) {
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    if (xdg && *xdg) {
        snprintf(out, cap, "%s/tlsmail-send/config", xdg);
        return;
    }
    if (!home || !*home) {
        struct passwd *pw = getpwuid(geteuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (home) snprintf(out, cap, "%s/.config/tlsmail-send/config", home);
    else out[0] = 0;
}

/* The login name, for a sender made up from it; "root" when unknown. */
static const char *login_name(void) {
    struct passwd *pw = getpwuid(geteuid());
    return pw && pw->pw_name ? pw->pw_name : "root";
}

/* Group or others may read the open file f; *mode: its permission bits. */
static int others_can_read(FILE *f, unsigned *mode) {
    struct stat st;
    if (fstat(fileno(f), &st) != 0) return 0;
    *mode = (unsigned)(st.st_mode & 0777);
    return (st.st_mode & (S_IRGRP | S_IROTH)) != 0;
}

static long read_fd(int fd, void *buf, size_t n) { return (long)read(fd, buf, n); }

/* A message file, not inherited by password_command. */
static int open_input(const char *path) { return open(path, O_RDONLY | O_CLOEXEC); }

static void close_fd(int fd) { (void)close(fd); }
#endif

/* Reads one file into clines. A missing file is fine unless required. */
static void read_config_file(const char *path, int level, int required) {
    FILE *f = fopen(path, "r");
    char line[4096], where[320];
    const char *account = NULL;
    unsigned long lineno = 0;
    int has_secret = 0;
    unsigned mode;
    if (!f) {
        if (errno == ENOENT && !required) return;
        die(EX_CONFIG, "cannot read %s: %s", path, strerror(errno));
    }
    snprintf(R.files[R.nfiles++], sizeof R.files[0], "%s", path);
    while (fgets(line, sizeof line, f)) {
        char *p = line, *key, *val, *e;
        size_t n = strlen(line);
        int k;
        lineno++;
        snprintf(where, sizeof where, "%s:%lu", path, lineno);
        if (n == sizeof line - 1 && line[n - 1] != '\n') die(EX_CONFIG, "%s: line too long", where);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                     line[n - 1] == '\t'))
            line[--n] = 0;
        while (*p == ' ' || *p == '\t') p++;
        if (!*p || *p == '#') continue;
        key = p;
        while (*p && *p != ' ' && *p != '\t') p++;
        e = p;
        while (*p == ' ' || *p == '\t') p++;
        *e = 0;
        val = p;
        if (!strcmp(key, "account") || !strcmp(key, "default")) {
            if (!*val || strpbrk(val, " \t"))
                die(EX_CONFIG, "%s: '%s' wants one account name", where, key);
            if (key[0] == 'd') {
                default_account.value = xstrdup(val);
                default_account.level = level;
                snprintf(default_account.source, sizeof default_account.source, "%s", where);
            } else {
                account = xstrdup(val);
                list_push(&accounts, xstrdup(val));
                if (!accounts_first) accounts_first = account;
            }
            continue;
        }
        for (k = 0; k < K_COUNT; k++)
            if (!strcmp(key, keys[k].name)) break;
        if (k == K_COUNT) die(EX_CONFIG, "%s: unknown key '%s' (see tlsmail-send.conf(5))", where, key);
        if (!*val) die(EX_CONFIG, "%s: '%s' needs a value", where, key);
        if (k == K_PASSWORD || k == K_PASSWORD_COMMAND) has_secret = 1;
        cline_add(account, k, level, conf_value(val, where), where);
    }
    if (ferror(f)) die(EX_CONFIG, "cannot read %s", path);
    /* As ssh does for keys: a secret others can read is no secret. */
    if (has_secret && others_can_read(f, &mode))
        die(EX_CONFIG, "%s holds a password but group or others can read it (mode %03o): "
                       "chmod 600 %s",
            path, mode, path);
    fclose(f);
}


static void put(int key, const char *value, int level, const char *source) {
    setting *s = &R.set[key];
    s->value = value;
    s->level = level;
    snprintf(s->source, sizeof s->source, "%s", source);
}

/* Files, then the environment, then argv: later wins. */
static void read_configuration(void) {
    const char *one = getenv("TLSMAIL_CONFIG"), *sys = getenv("TLSMAIL_SYSCONFIG"), *acct;
    char userpath[1024];
    size_t i;
    int k, found;
    if (one && *one) {
        read_config_file(one, L_USER, 1);
    } else {
        read_config_file(sys && *sys ? sys : SYSTEM_CONFIG, L_SYSTEM, 0);
        user_config_path(userpath, sizeof userpath);
        if (userpath[0]) read_config_file(userpath, L_USER, 0);
    }
    /* The account: --account, TLSMAIL_ACCOUNT, "default", the first one. */
    if (!R.account.value && (acct = getenv("TLSMAIL_ACCOUNT")) != NULL && *acct) {
        R.account.value = acct;
        R.account.level = L_ENV;
        snprintf(R.account.source, sizeof R.account.source, "env TLSMAIL_ACCOUNT");
    }
    if (!R.account.value && default_account.value) R.account = default_account;
    if (!R.account.value && accounts_first) {
        R.account.value = accounts_first;
        R.account.level = L_SYSTEM;
        snprintf(R.account.source, sizeof R.account.source, "the first account");
    }
    if (R.account.value) {
        for (found = 0, i = 0; i < accounts.n; i++)
            if (!strcmp(accounts.v[i], R.account.value)) found = 1;
        if (!found)
            die(config_status(&R.account), "no account '%s' in %s%s%s (%s)", R.account.value,
                R.nfiles ? R.files[0] : "any configuration file", R.nfiles > 1 ? " or " : "",
                R.nfiles > 1 ? R.files[1] : "", R.account.source);
    }
    for (i = 0; i < nclines; i++)
        if (!clines[i].account || (R.account.value && !strcmp(clines[i].account, R.account.value)))
            put(clines[i].key, clines[i].value, clines[i].level, clines[i].source);
    for (k = 0; k < K_COUNT; k++) {
        char name[64], *p;
        const char *v;
        snprintf(name, sizeof name, "TLSMAIL_%s", keys[k].name);
        for (p = name; *p; p++)
            if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
        if ((v = getenv(name)) != NULL && *v) {
            char src[80];
            snprintf(src, sizeof src, "env %s", name);
            put(k, v, L_ENV, src);
        }
    }
    for (k = 0; k < K_COUNT; k++)
        if (R.argset[k].value) R.set[k] = R.argset[k];
}

/* Checks each setting's form and fills R.cfg; nothing is read or sent. */
static void check_settings(void) {
    const setting *s;
    unsigned p;
    int ms;
    memset(&R.cfg, 0, sizeof R.cfg);
    s = &R.set[K_SECURITY];
    if (s->value && strcmp(s->value, "tls") && strcmp(s->value, "starttls"))
        die(config_status(s), "security %s: want tls or starttls (%s)", s->value, s->source);
    R.starttls = s->value && !strcmp(s->value, "starttls");
#ifndef TLSMAIL_STARTTLS
    if (R.starttls)
        die(config_status(s), "%s: this tlsmail-send was built without STARTTLS support "
            "(rebuild with -DTLSMAIL_STARTTLS), or use implicit TLS on port 465",
            s->level == L_ARGV ? "--starttls" : s->source);
#else
    if (R.starttls) R.cfg.security = TLSMAIL_SECURITY_STARTTLS;
#endif
    s = &R.set[K_PORT];
    R.port = R.starttls ? 587 : 465;
    if (s->value) {
        char buf[16];
        snprintf(buf, sizeof buf, "x:%.8s", s->value);
        if (strlen(s->value) > 5 || tlsmail_split_hostport(buf, R.host, sizeof R.host, &p, 0) || !p)
            die(config_status(s), "port %s: want 1..65535 (%s)", s->value, s->source);
        R.port = p;
    }
    s = &R.set[K_SERVER];
    if (s->value) {
        if (tlsmail_split_hostport(s->value, R.host, sizeof R.host, &p, 0))
            die(config_status(s), "server %s: bad host or port (%s)", s->value, s->source);
        if (p) R.port = p;
    } else {
        R.host[0] = 0;
    }
    R.cfg.host = R.host;
    R.cfg.port = R.port;
    R.cfg.helo_name = R.set[K_HELO].value;
    s = &R.set[K_TIMEOUT];
    if (s->value) {
        if ((ms = parse_seconds(s->value)) < 0)
            die(config_status(s), "timeout %s: want a number of seconds > 0 (%s)", s->value, s->source);
        R.cfg.timeout_ms = ms;
    }
    s = &R.set[K_MAX_TIME];
    if ((ms = parse_seconds(s->value ? s->value : DEFAULT_MAX_TIME)) < 0)
        die(config_status(s), "max_time %s: want a number of seconds > 0 (%s)", s->value, s->source);
    R.cfg.deadline_ms = ms;
    s = &R.set[K_AUTH];
    if (s->value && strcmp(s->value, "auto") && strcmp(s->value, "plain") && strcmp(s->value, "login"))
        die(config_status(s), "auth %s: want plain, login or auto (%s)", s->value, s->source);
    s = &R.set[K_ADD_MISSING_HEADERS];
    if (s->value && parse_bool(s->value) < 0)
        die(config_status(s), "add_missing_headers %s: want on or off (%s)", s->value, s->source);
    if (R.tflag && R.subject)
        usage_error("-t reads recipients from headers, --subject writes the headers: use one");
    if (R.batch.n && (R.subject || R.check))
        usage_error("--batch sends message files: not with %s", R.subject ? "--subject" : "--check");
}

/* ---- --config-check ----------------------------------------------------- */

static void print_config(void) {
    int k;
    printf("files:   %s%s%s\n", R.nfiles ? R.files[0] : "(none found)", R.nfiles > 1 ? ", " : "",
           R.nfiles > 1 ? R.files[1] : "");
    printf("account: %s", R.account.value ? R.account.value : "(none)");
    if (R.account.value) printf("  (%s)", R.account.source);
    putchar('\n');
    for (k = 0; k < K_COUNT; k++) {
        const setting *s = &R.set[k];
        if (!s->value) {
            printf("%-20s (unset: %s)\n", keys[k].name, keys[k].help);
            continue;
        }
        printf("%-20s %s  (%s)\n", keys[k].name, keys[k].secret ? "********" : s->value, s->source);
    }
}

/* ---- trust -------------------------------------------------------------- */

static void configure_trust(void) {
    const setting *pin = &R.set[K_PIN_SHA256], *cafile = &R.set[K_CAFILE], *capath = &R.set[K_CAPATH];
    int err, have = 0;
    memset(&R.trust, 0, sizeof R.trust);
    if (pin->value && (cafile->value || capath->value)) {
        const setting *other = cafile->value ? cafile : capath;
        die(pin->level == L_ARGV && other->level == L_ARGV ? EX_USAGE : EX_CONFIG,
            "pin_sha256 (%s) trusts one key: it can't be combined with %s (%s)", pin->source,
            other == cafile ? "cafile" : "capath", other->source);
    }
    if (pin->value) {
        if (tlsmail_trust_pin_sha256(&R.trust, pin->value) != 0)
            die(config_status(pin), "pin_sha256 %s: want the base64 of a SHA-256 (44 characters) (%s)",
                pin->value, pin->source);
        have = 1;
    }
    if (cafile->value) {
        if ((err = tlsmail_trust_file(&R.trust, cafile->value)) != 0)
            die(EX_NOINPUT, "cafile %s: %s (%s)", cafile->value, tlsmail_strerror(err), cafile->source);
        have = 1;
    }
    if (capath->value) {
        if ((err = tlsmail_trust_dir(&R.trust, capath->value)) != 0)
            die(EX_NOINPUT, "capath %s: %s (%s)", capath->value, tlsmail_strerror(err), capath->source);
        have = 1;
    }
    if (have) R.cfg.trust = &R.trust;
}

/* ---- the secret --------------------------------------------------------- */

/* The first line of a secret: one trailing LF or CRLF is not part of it. */
static void finish_secret(size_t n, const char *what) {
    password[n] = 0;
    if (n && password[n - 1] == '\n') password[--n] = 0;
    if (n && password[n - 1] == '\r') password[--n] = 0;
    if (memchr(password, 0, n)) die(EX_DATAERR, "%s: the password contains a NUL octet", what);
}

static void read_password_file(const setting *s) {
    FILE *f = fopen(s->value, "rb");
    size_t n;
    if (!f) die(EX_NOINPUT, "password_file %s: cannot open: %s (%s)", s->value, strerror(errno), s->source);
    n = fread(password, 1, sizeof password - 1, f);
    if (ferror(f) || !feof(f)) {
        fclose(f);
        die(EX_NOINPUT, "password_file %s: unreadable or longer than 1000 octets (%s)", s->value, s->source);
    }
    fclose(f);
    finish_secret(n, s->value);
}

/* password_command runs without a shell when it is only words (split at
   spaces and tabs, found on PATH); anything a shell would interpret makes
   it run as /bin/sh -c VALUE (on Windows: cmd.exe /d /s /c "VALUE"). Its
   stdout is the secret; stderr passes through; it has the per-wait
   timeout to finish. */
#ifdef _WIN32
/* The command's stdout, through a pipe only it inherits; stdin is NUL.
   PeekNamedPipe tells whether a read would block, so the timeout holds
   even when the command neither writes nor exits. */
static void run_password_command(const setting *s) {
    const char *cmd = s->value;
    int shell = strpbrk(cmd, "|&;<>()$`\\\"'*?[]#~=%{}^\n") != NULL;
    int timeout_ms = R.cfg.timeout_ms > 0 ? R.cfg.timeout_ms : TLSMAIL_DEFAULT_TIMEOUT_MS;
    SECURITY_ATTRIBUTES sa;
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    HANDLE rd, wr, nul;
    DWORD status = 1, avail, got;
    size_t n = 0, len = strlen(cmd) + 32;
    long long waited = 0;
    char *line = (char *)xmalloc(len);
    BOOL ok;
    snprintf(line, len, shell ? "cmd.exe /d /s /c \"%s\"" : "%s", cmd);
    memset(&sa, 0, sizeof sa);
    sa.nLength = sizeof sa;
    sa.bInheritHandle = TRUE;
    if (!CreatePipe(&rd, &wr, &sa, 0)) die(EX_SOFTWARE, "CreatePipe: error %lu", GetLastError());
    (void)SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0);
    nul = CreateFileA("NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa, OPEN_EXISTING, 0, NULL);
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = nul;
    si.hStdOutput = wr;
    si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    ok = CreateProcessA(NULL, line, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi);
    free(line);
    CloseHandle(wr);
    if (nul != INVALID_HANDLE_VALUE) CloseHandle(nul);
    if (!ok) {
        CloseHandle(rd);
        die(EX_CONFIG, "password_command: cannot run %s: error %lu (%s)", cmd, GetLastError(), s->source);
    }
    CloseHandle(pi.hThread);
    for (;;) {
        if (!PeekNamedPipe(rd, NULL, 0, NULL, &avail, NULL)) break; /* closed: the end */
        if (avail == 0) {
            if ((waited += 50) >= timeout_ms) {
                TerminateProcess(pi.hProcess, 1);
                WaitForSingleObject(pi.hProcess, 5000);
                CloseHandle(pi.hProcess);
                CloseHandle(rd);
                die(EX_TEMPFAIL, "password_command did not finish within the timeout (%s)", s->source);
            }
            Sleep(50);
            continue;
        }
        if (avail > sizeof password - 1 - n) avail = (DWORD)(sizeof password - 1 - n);
        if (!ReadFile(rd, password + n, avail, &got, NULL) || got == 0) break;
        n += got;
        if (n == sizeof password - 1) break;
    }
    CloseHandle(rd);
    if (WaitForSingleObject(pi.hProcess, (DWORD)timeout_ms) != WAIT_OBJECT_0) {
        TerminateProcess(pi.hProcess, 1);
        WaitForSingleObject(pi.hProcess, 5000);
    }
    if (!GetExitCodeProcess(pi.hProcess, &status)) status = 1;
    CloseHandle(pi.hProcess);
    if (status != 0) die(EX_CONFIG, "password_command failed (exit %lu) (%s)", status, s->source);
    if (n == sizeof password - 1) die(EX_CONFIG, "password_command printed more than 1000 octets");
    {
        char *nl = (char *)memchr(password, '\n', n); /* only the first line */
        if (nl && (size_t)(nl - password) + 1 < n) n = (size_t)(nl - password) + 1;
    }
    finish_secret(n, "password_command");
}
#else
static void run_password_command(const setting *s) {
    const char *cmd = s->value;
    int fds[2], status, shell = strpbrk(cmd, "|&;<>()$`\\\"'*?[]#~=%{}\n") != NULL;
    int timeout_ms = R.cfg.timeout_ms > 0 ? R.cfg.timeout_ms : TLSMAIL_DEFAULT_TIMEOUT_MS;
    size_t n = 0;
    pid_t pid;
    long long waited = 0;
    if (pipe(fds) != 0) die(EX_SOFTWARE, "pipe: %s", strerror(errno));
    pid = fork();
    if (pid < 0) die(EX_SOFTWARE, "fork: %s", strerror(errno));
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        if (shell) {
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        } else {
            char *copy = xstrdup(cmd), *argv[64], *tok;
            int argc = 0;
            for (tok = strtok(copy, " \t"); tok && argc < 63; tok = strtok(NULL, " \t")) argv[argc++] = tok;
            argv[argc] = NULL;
            if (argc) execvp(argv[0], argv);
        }
        fprintf(stderr, "tlsmail-send: password_command: cannot run %s: %s\n", cmd, strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        struct pollfd pfd;
        ssize_t r;
        pfd.fd = fds[0];
        pfd.events = POLLIN;
        if (poll(&pfd, 1, 200) == 0) {
            if ((waited += 200) >= timeout_ms) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                close(fds[0]);
                die(EX_TEMPFAIL, "password_command did not finish within the timeout (%s)", s->source);
            }
            continue;
        }
        r = read(fds[0], password + n, sizeof password - 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
        if (n == sizeof password - 1) break;
    }
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die(EX_CONFIG, "password_command failed (exit %d) (%s)",
            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), s->source);
    if (n == sizeof password - 1) die(EX_CONFIG, "password_command printed more than 1000 octets");
    {
        char *nl = (char *)memchr(password, '\n', n); /* only the first line */
        if (nl && (size_t)(nl - password) + 1 < n) n = (size_t)(nl - password) + 1;
    }
    finish_secret(n, "password_command");
}
#endif

/* The secret source with the highest precedence wins; on one level
   password_file, then password_command, then password. */
static void read_secret(void) {
    const setting *user = &R.set[K_USER], *best = NULL;
    static const int order[] = { K_PASSWORD_FILE, K_PASSWORD_COMMAND, K_PASSWORD };
    size_t i;
    for (i = 0; i < 3; i++) {
        const setting *s = &R.set[order[i]];
        if (s->value && (!best || s->level > best->level)) best = s;
    }
    if (!user->value) {
        if (best && best != &R.set[K_PASSWORD])
            die(config_status(best), "%s is set (%s) but no user: give --user or set user",
                best == &R.set[K_PASSWORD_FILE] ? "password_file" : "password_command", best->source);
        return;
    }
    if (!best)
        die(config_status(user), "user %s (%s) needs a password: set TLSMAIL_PASSWORD, password, "
            "password_file or password_command", user->value, user->source);
    if (best == &R.set[K_PASSWORD_FILE]) {
        read_password_file(best);
    } else if (best == &R.set[K_PASSWORD_COMMAND]) {
        run_password_command(best);
    } else {
        if (strlen(best->value) >= sizeof password) die(config_status(best), "the password is too long");
        strcpy(password, best->value);
    }
    if (!password[0]) die(config_status(best), "the password is empty (%s)", best->source);
}

/* ---- the message -------------------------------------------------------- */

/* Read all of f, at most max octets; NULL when the input is larger. */
static char *read_all(FILE *f, size_t max, size_t *len) {
    size_t cap = 1 << 16, n = 0, r;
    char *buf = (char *)xmalloc(cap + 1);
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n > max) {
            free(buf);
            return NULL;
        }
        if (n == cap) {
            char *nb = (char *)realloc(buf, cap * 2 + 1);
            if (!nb) die(EX_SOFTWARE, "out of memory");
            buf = nb;
            cap *= 2;
        }
    }
    if (ferror(f)) die(EX_NOINPUT, "cannot read the message from stdin");
    buf[n] = 0;
    *len = n;
    return buf;
}

/* RFC 5321 4.5.3.1.6, with the line number, over a message fed in pieces:
   line ends as the library reads them (CRLF, LF, a bare CR), each line
   found with memchr within the 998 octets it may have. */
typedef struct linecheck {
    unsigned long line; /* the current line, from 1 */
    size_t len;         /* its octets so far */
    int cr;             /* the last octet was a CR */
} linecheck;

/* The number of the first line over 998 octets in what was fed so far
   (this piece included), or 0. */
static unsigned long linecheck_feed(linecheck *lc, const char *p, size_t n) {
    const char *end = p + n;
    if (!lc->line) lc->line = 1;
    while (p < end) {
        const char *lf, *cr;
        size_t k, room;
        if (*p == '\n' && lc->cr) { /* the LF of a CRLF: that line end was counted */
            lc->cr = 0;
            p++;
            continue;
        }
        lc->cr = 0;
        if (*p == '\r' || *p == '\n') {
            lc->cr = *p == '\r';
            lc->line++;
            lc->len = 0;
            p++;
            continue;
        }
        room = 999 - lc->len; /* a 999th octet is one too many */
        k = (size_t)(end - p) < room ? (size_t)(end - p) : room;
        lf = (const char *)memchr(p, '\n', k);
        cr = (const char *)memchr(p, '\r', lf ? (size_t)(lf - p) : k);
        if (cr) lf = cr;
        if (!lf) {
            if (k == room) return lc->line;
            lc->len += k;
            p += k;
            continue;
        }
        lc->len += (size_t)(lf - p);
        p = lf;
    }
    return 0;
}

static linecheck message_lines; /* the message being read */

/* An RFC 5322 address list (To: "A" <a@x>, b@y (comment), grp: c@z;) to
   bare addresses: display names, comments and group names dropped, quoted
   local parts kept. tlsmail.h parses one mailbox for tlsmail_format_mailbox
   but offers no address-list parser, so -t needs this one. */
static void parse_addresses(const char *s, size_t n, strlist *out) {
    char *cur = (char *)xmalloc(n + 1), *ang = (char *)xmalloc(n + 1);
    size_t cl = 0, al = 0, i;
    int quote = 0, depth = 0, in_ang = 0, have_ang = 0;
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
                    const char *colon = (const char *)memchr(a, ':', len);
                    if (colon) { len -= (size_t)(colon + 1 - a); a = colon + 1; }
                }
                if (len) list_add_unique(out, xstrndup(a, len));
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

/* "Display Name <addr>": a new addr, and the name (NULL if none) through
   *name; anything else: a copy as it is. */
static char *split_mailbox(const char *s, char **name) {
    const char *lt = strrchr(s, '<'), *a = s, *b;
    size_t n = strlen(s);
    if (name) *name = NULL;
    if (!lt || n == 0 || s[n - 1] != '>') return xstrdup(s);
    if (name) {
        b = lt;
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        if (b > a) *name = xstrndup(a, (size_t)(b - a));
    }
    return xstrndup(lt + 1, n - 2 - (size_t)(lt - s));
}

/* Where the line after the line end at k starts (CRLF, LF or a bare CR). */
static size_t next_line(const char *m, size_t n, size_t k) {
    if (k < n && m[k] == '\r') return k + 1 < n && m[k + 1] == '\n' ? k + 2 : k + 1;
    return k < n ? k + 1 : n;
}

typedef struct headers {
    int from, date, message_id; /* present */
    char *from_addr;            /* the first From address */
    size_t end;                 /* offset where the header section ends */
    int blank;                  /* the section ends with an empty line */
} headers;

/* Walks the header section (up to the first empty line, or the first line
   that is neither a field nor a continuation): with collect (-t) adds the
   To, Cc and Bcc recipients; notes From, Date and Message-ID; and always
   cuts every Bcc field out, as msmtp does: a Bcc header must never reach
   the other recipients. */
static void scan_headers(char *msg, size_t *len, strlist *rcpts, int collect, headers *h) {
    size_t pos = 0, n = *len;
    memset(h, 0, sizeof *h);
    while (pos < n) {
        size_t fstart = pos, fend, k, colon, vstart, nl;
        for (k = pos; k < n && msg[k] != '\n' && msg[k] != '\r'; k++) {}
        if (k == pos) {
            h->blank = 1;
            break; /* empty line: the body starts */
        }
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
        if (collect && (name_eq(msg + fstart, nl, "to") || name_eq(msg + fstart, nl, "cc") ||
                        name_eq(msg + fstart, nl, "bcc")))
            parse_addresses(msg + vstart, fend - vstart, rcpts);
        if (name_eq(msg + fstart, nl, "date")) h->date = 1;
        if (name_eq(msg + fstart, nl, "message-id")) h->message_id = 1;
        if (name_eq(msg + fstart, nl, "from") && !h->from) {
            strlist one = { NULL, 0, 0 };
            h->from = 1;
            parse_addresses(msg + vstart, fend - vstart, &one);
            if (one.n) h->from_addr = xstrdup(one.v[0]);
            list_free(&one);
        }
        if (name_eq(msg + fstart, nl, "bcc")) {
            memmove(msg + fstart, msg + pos, n - pos);
            n -= pos - fstart;
            pos = fstart;
        }
    }
    h->end = pos;
    *len = n;
}

/* ---- local names: aliases(5) and the domain ----------------------------- */

typedef struct alias {
    char *name;
    strlist to;
    char where[320];
} alias;

static alias *aliastab;
static size_t naliases;

/* name: a, b, c   with continuation lines that start with a space or tab;
   '#' comments. Pipes, files and :include: are kept and refused if used. */
static void load_aliases(const setting *s) {
    FILE *f = fopen(s->value, "r");
    char line[4096], *entry = NULL, where[320] = "", entry_where[320] = "";
    size_t elen = 0;
    unsigned long lineno = 0;
    int more = 1;
    if (!f) die(EX_CONFIG, "aliases %s: %s (%s)", s->value, strerror(errno), s->source);
    while (more) {
        int cont = 0;
        size_t n;
        more = fgets(line, sizeof line, f) != NULL;
        if (more) {
            lineno++;
            n = strlen(line);
            while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
            if (line[0] == '#') continue;
            cont = line[0] == ' ' || line[0] == '\t';
            if (cont && entry) {
                char *ne = (char *)realloc(entry, elen + n + 2);
                if (!ne) die(EX_SOFTWARE, "out of memory");
                entry = ne;
                entry[elen++] = ' ';
                memcpy(entry + elen, line, n + 1);
                elen += n;
                continue;
            }
            snprintf(where, sizeof where, "%s:%lu", s->value, lineno);
        }
        if (entry) { /* the previous entry is complete */
            char *colon = strchr(entry, ':'), *p, *e;
            alias *na;
            if (!colon) die(EX_CONFIG, "%s: want 'name: address, ...'", entry_where);
            for (e = colon; e > entry && (e[-1] == ' ' || e[-1] == '\t'); e--) {}
            na = (alias *)realloc(aliastab, (naliases + 1) * sizeof *na);
            if (!na) die(EX_SOFTWARE, "out of memory");
            aliastab = na;
            memset(&aliastab[naliases], 0, sizeof aliastab[naliases]);
            aliastab[naliases].name = xstrndup(entry, (size_t)(e - entry));
            snprintf(aliastab[naliases].where, sizeof aliastab[naliases].where, "%s", entry_where);
            for (p = colon + 1; *p;) {
                char *comma = strchr(p, ','), *a = p, *z;
                z = comma ? comma : p + strlen(p);
                while (a < z && (*a == ' ' || *a == '\t')) a++;
                while (z > a && (z[-1] == ' ' || z[-1] == '\t')) z--;
                if (z > a) list_push(&aliastab[naliases].to, xstrndup(a, (size_t)(z - a)));
                p = comma ? comma + 1 : p + strlen(p);
            }
            naliases++;
            free(entry);
            entry = NULL;
        }
        if (more) {
            n = strlen(line);
            while (n && (line[n - 1] == ' ' || line[n - 1] == '\t')) line[--n] = 0;
            if (!n || line[0] == ' ' || line[0] == '\t') continue;
            entry = xstrdup(line);
            elen = n;
            snprintf(entry_where, sizeof entry_where, "%s", where);
        }
    }
    fclose(f);
}

static const alias *find_alias(const char *name) {
    size_t i;
    for (i = 0; i < naliases; i++)
        if (!strcasecmp(aliastab[i].name, name)) return &aliastab[i];
    return NULL;
}

/* A recipient without '@': its aliases (nested ones too), else the
   configured domain, else an error before any connection: a bare local
   part is never sent. */
static void expand_local(const char *name, strlist *out, int depth) {
    const alias *a = find_alias(name);
    const setting *dom = &R.set[K_DOMAIN];
    size_t i;
    if (!a && depth == 0 && strcasecmp(name, "default")) a = find_alias("default");
    if (a && depth < MAX_ALIAS_DEPTH) {
        for (i = 0; i < a->to.n; i++) {
            const char *t = a->to.v[i];
            if (t[0] == '|' || t[0] == '/' || !strncasecmp(t, ":include:", 9))
                die(EX_CONFIG, "alias %s (%s): pipes, files and :include: are not supported", a->name,
                    a->where);
            if (strchr(t, '@')) list_add_unique(out, split_mailbox(t, NULL));
            else if (!strcasecmp(t, name)) /* "root: root" ends the chain */
                expand_local(t, out, MAX_ALIAS_DEPTH);
            else expand_local(t, out, depth + 1);
        }
        return;
    }
    if (dom->value) {
        size_t n = strlen(name) + strlen(dom->value) + 2;
        char *addr = (char *)xmalloc(n);
        snprintf(addr, n, "%s@%s", name, dom->value);
        list_add_unique(out, addr);
        return;
    }
    die(EX_CONFIG, "recipient '%s' has no domain and no alias: set domain or aliases in the "
                   "configuration (see tlsmail-send.conf(5))", name);
}

static char *qualify_sender(char *addr, const char *what) {
    const setting *dom = &R.set[K_DOMAIN];
    char *out;
    size_t n;
    if (!*addr || strchr(addr, '@')) return addr;
    if (!dom->value)
        die(EX_CONFIG, "sender '%s' (%s) has no domain: set from or domain in the configuration",
            addr, what);
    n = strlen(addr) + strlen(dom->value) + 2;
    out = (char *)xmalloc(n);
    snprintf(out, n, "%s@%s", addr, dom->value);
    free(addr);
    return out;
}

/* ---- preparing the message ---------------------------------------------- */

static void choose_sender(const headers *h) {
    const setting *from = &R.set[K_FROM];
    char *name = NULL;
    char what[360];
    if (from->value) {
        R.from = split_mailbox(from->value, &name);
        snprintf(what, sizeof what, "from, %s", from->source);
        if (R.verbose && R.opt_f && strcasecmp(R.opt_f, R.from))
            fprintf(stderr, "* -f %s not used: from is %s (%s)\n", R.opt_f, R.from, from->source);
    } else if (R.opt_f) {
        R.from = split_mailbox(R.opt_f, NULL);
        snprintf(what, sizeof what, "-f");
    } else if (h && h->from_addr) {
        R.from = xstrdup(h->from_addr);
        snprintf(what, sizeof what, "the From header");
    } else if (R.set[K_DOMAIN].value) {
        /* No sender anywhere: the login name at the domain, as sendmail. */
        R.from = xstrdup(login_name());
        snprintf(what, sizeof what, "the login name");
    } else {
        usage_error("no sender: set from (or --from ADDR, TLSMAIL_FROM), give -f ADDR, or put a "
                    "From header in the message");
    }
    R.from = qualify_sender(R.from, what);
    if (*R.from && tlsmail_check_address(R.from) != 0)
        die(EX_DATAERR, "invalid sender address '%s' (%s)", R.from, what);
    /* The display name of an added From: -F, from_name, the name in from. */
    if (R.opt_fname && *R.opt_fname) R.display = xstrdup(R.opt_fname);
    else if (R.set[K_FROM_NAME].value) R.display = xstrdup(R.set[K_FROM_NAME].value);
    else {
        R.display = name;
        name = NULL;
    }
    free(name);
}

/* From, Date and Message-ID when the message has none, to go ahead of the
   existing fields (R.added); an empty line too when it had no header
   section. */
static void add_missing_headers(const headers *h) {
    char date[32], id[300], *mailbox = NULL, *out, *p;
    size_t need = 0, flen = 0, n;
    int blank = h->end == 0 && !h->blank;
    if (h->from && h->date && h->message_id) return;
    if (!h->from) {
        if (R.display) {
            n = strlen(R.display) + strlen(R.from) + 4;
            mailbox = (char *)xmalloc(n);
            snprintf(mailbox, n, "%s <%s>", R.display, R.from);
            if (tlsmail_format_mailbox(mailbox, NULL, 0, &flen) != 0) {
                if (R.verbose) fprintf(stderr, "* display name '%s' dropped: not usable\n", R.display);
                free(mailbox);
                mailbox = NULL;
            }
        }
        if (!mailbox) mailbox = xstrdup(R.from);
        if (tlsmail_format_mailbox(mailbox, NULL, 0, &flen) != 0)
            die(EX_DATAERR, "cannot write a From header for '%s'", mailbox);
        need += 5 + flen + 2;
    }
    if (!h->date) {
        tlsmail_format_date(date, (long long)time(NULL));
        need += 6 + strlen(date) + 2;
    }
    if (!h->message_id) {
        if (tlsmail_message_id(id, sizeof id, R.from) != 0)
            die(EX_SOFTWARE, "cannot make a Message-ID (no system random source)");
        need += 12 + strlen(id) + 2;
    }
    if (blank) need += 2;
    out = p = (char *)xmalloc(need + 1);
    if (!h->from) {
        memcpy(p, "From:", 5);
        p += 5;
        if (tlsmail_format_mailbox(mailbox, p, flen + 1, &flen) != 0) die(EX_SOFTWARE, "From header");
        p += flen;
        memcpy(p, "\r\n", 2);
        p += 2;
    }
    if (!h->date) p += sprintf(p, "Date: %s\r\n", date);
    if (!h->message_id) p += sprintf(p, "Message-ID: %s\r\n", id);
    if (blank) {
        memcpy(p, "\r\n", 2);
        p += 2;
    }
    *p = 0;
    free(mailbox);
    R.added = out;
    R.addlen = (size_t)(p - out);
}

static void compose_message(void) {
    tlsmail_message m;
    size_t need, n, i;
    char *out, *mailbox;
    strlist to = { NULL, 0, 0 };
    int err;
    if (!R.recipients.n) usage_error("no recipients");
    n = strlen(R.from) + (R.display ? strlen(R.display) : 0) + 4;
    mailbox = (char *)xmalloc(n);
    if (R.display) snprintf(mailbox, n, "%s <%s>", R.display, R.from);
    else snprintf(mailbox, n, "%s", R.from);
    for (i = 0; i < R.recipients.n; i++) { /* To: as given; a local name: its addresses */
        const char *r = R.recipients.v[i];
        if (strchr(r, '@')) list_push(&to, xstrdup(r));
        else expand_local(r, &to, 0);
    }
    memset(&m, 0, sizeof m);
    m.from = mailbox;
    m.to = (const char *const *)to.v;
    m.nto = to.n;
    m.subject = R.subject;
    m.body = R.msg;
    m.body_len = R.len;
    out = NULL;
    if ((err = tlsmail_compose(&m, NULL, 0, &need)) != 0 || (out = (char *)malloc(need + 1)) == NULL ||
        (err = tlsmail_compose(&m, out, need + 1, &n)) != 0)
        die(EX_DATAERR, "cannot compose the message: %s",
            err == TLSMAIL_EINVAL ? "a control character (CR, LF...) in --subject or an address, "
                                    "an address without a domain, or text that is not UTF-8"
                                  : tlsmail_strerror(err));
    free(R.msg);
    free(mailbox);
    list_free(&to);
    R.msg = out;
    R.len = n;
}

/* The first WINDOW octets of the message (all of it, when it is no
   longer) into R.msg, and whether that is all. */
static void read_window(void) {
    long r = 1;
    if (!R.msg) R.msg = (char *)xmalloc(WINDOW + 1);
    R.len = 0;
    while (R.len < WINDOW && (r = read_fd(R.msg_fd, R.msg + R.len, WINDOW - R.len)) != 0) {
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die(EX_NOINPUT, "cannot read the message from %s: %s", R.msg_name, strerror(errno));
        R.len += (size_t)r;
    }
    R.msg_eof = r == 0; /* a message of exactly WINDOW octets streams: no harm */
    R.msg[R.len] = 0;
    R.input = R.len;
}

/* A file on stdin (or in a batch) tells its size: too large is refused
   before connecting. A pipe is counted while it is sent. */
static void check_size_first(void) {
    struct stat st;
    off_t at = lseek(R.msg_fd, 0, SEEK_CUR);
    if (fstat(R.msg_fd, &st) == 0 && S_ISREG(st.st_mode) && at >= 0 &&
        (unsigned long long)(st.st_size - at) + R.len > MAX_MESSAGE)
        die(EX_DATAERR, "the message is larger than 64 MiB");
}

/* Where the header section ends must be known before sending: at the end
   of the message, or at a line that is whole inside the window. */
static int headers_complete(const headers *h) {
    size_t i;
    if (R.msg_eof) return 1;
    for (i = h->end; i < R.len; i++)
        if (R.msg[i] == '\n' || (R.msg[i] == '\r' && i + 1 < R.len)) return 1;
    return 0;
}

static void prepare_message(void) {
    strlist hdr_rcpts = { NULL, 0, 0 }, all = { NULL, 0, 0 };
    headers h;
    size_t i;
    const setting *add = &R.set[K_ADD_MISSING_HEADERS];
    if (R.subject) { /* the composer needs the whole text */
        R.msg = read_all(stdin, MAX_MESSAGE, &R.len);
        if (!R.msg) die(EX_DATAERR, "the message is larger than 64 MiB");
        R.msg_eof = 1;
        R.input = R.len;
    } else {
        read_window();
        if (!R.msg_eof) check_size_first();
    }
    if (R.set[K_ALIASES].value && !R.aliases_loaded) {
        load_aliases(&R.set[K_ALIASES]);
        R.aliases_loaded = 1;
    }
    if (R.subject) {
        choose_sender(NULL);
        compose_message();
    } else {
        unsigned long line;
        memset(&message_lines, 0, sizeof message_lines);
        if ((line = linecheck_feed(&message_lines, R.msg, R.len)) != 0)
            die(EX_DATAERR, "message line %lu is longer than 998 octets (RFC 5321 4.5.3.1.6)", line);
        scan_headers(R.msg, &R.len, &hdr_rcpts, R.tflag || R.msgfiles.n, &h);
        if (!headers_complete(&h))
            die(EX_DATAERR, "the header section is longer than %u KiB", WINDOW / 1024);
        choose_sender(&h);
        if (!add->value || parse_bool(add->value)) add_missing_headers(&h);
        free(h.from_addr);
    }
    /* The headers' recipients, then argv's; "Name <addr>" takes addr. */
    for (i = 0; i < hdr_rcpts.n; i++) list_push(&all, xstrdup(hdr_rcpts.v[i]));
    for (i = 0; i < R.recipients.n; i++) list_push(&all, split_mailbox(R.recipients.v[i], NULL));
    list_free(&hdr_rcpts);
    for (i = 0; i < all.n; i++) {
        if (strchr(all.v[i], '@') || !*all.v[i]) list_add_unique(&R.rcpts, xstrdup(all.v[i]));
        else expand_local(all.v[i], &R.rcpts, 0);
    }
    list_free(&all);
    if (!R.rcpts.n) {
        if (R.msgfiles.n) usage_error("no recipients in To, Cc, Bcc or on the command line");
        usage_error(R.tflag ? "no recipients on the command line or in To, Cc, Bcc" : "no recipients");
    }
    for (i = 0; i < R.rcpts.n; i++)
        if (tlsmail_check_address(R.rcpts.v[i]) != 0)
            die(EX_DATAERR, "invalid recipient address '%s'", R.rcpts.v[i]);
    R.sent = R.addlen + R.len; /* the size as far as known: a streamed message grows */
}

/* ---- sending and reporting ---------------------------------------------- */

static void trace(void *ud, int dir, const char *line, size_t len) {
    (void)ud;
    fprintf(stderr, "%s%s %.*s\n", (dir & TLSMAIL_TRACE_RECV) ? "<" : ">",
            (dir & TLSMAIL_TRACE_PLAINTEXT) ? " (plaintext)" : "", (int)len, line);
}

/* The exit status: the library's class says whether a retry can help;
   the sysexits table refines it. */
static int exit_status(int err) {
    int stage = tlsmail_stage(&client);
    switch (tlsmail_error_class(&client, err)) {
    case TLSMAIL_CLASS_NONE: return EX_OK;
    case TLSMAIL_CLASS_RETRY: return EX_TEMPFAIL;
    /* The message may have arrived: retrying may deliver it twice, but not
       retrying may lose it, and a duplicate is the lesser harm. */
    case TLSMAIL_CLASS_MAYBE_DELIVERED: return EX_TEMPFAIL;
    case TLSMAIL_CLASS_REFUSED: return EX_UNAVAILABLE;
    case TLSMAIL_CLASS_TAMPERING: return err == TLSMAIL_EPROTO ? EX_PROTOCOL : EX_UNAVAILABLE;
    default: break;
    }
    switch (err) { /* TLSMAIL_CLASS_CONFIG: what to fix */
    case TLSMAIL_EAUTH: case TLSMAIL_ENOMECH: case TLSMAIL_EAUTHHOST: return EX_NOPERM;
    case TLSMAIL_ELINE: return EX_DATAERR;
    case TLSMAIL_ETRUST: return EX_NOINPUT;
    case TLSMAIL_EPERMANENT: case TLSMAIL_EPLAINTEXT: case TLSMAIL_ENOEXT: case TLSMAIL_ETOOBIG:
        return EX_UNAVAILABLE;
    case TLSMAIL_EINVAL:
        return stage == TLSMAIL_STAGE_CONNECT || stage == TLSMAIL_STAGE_AUTH ? EX_USAGE : EX_DATAERR;
    default: return EX_SOFTWARE;
    }
}

/* A hint for the mistakes people make most, on the same line. */
static const char *hint(int err) {
    int stage = tlsmail_stage(&client);
    if (err == TLSMAIL_EPLAINTEXT)
        return R.starttls ? "" : " (hint: this port wants --starttls, or use port 465)";
    if (err == TLSMAIL_ETLS && stage == TLSMAIL_STAGE_TLS && !R.starttls && (R.port == 587 || R.port == 25))
        return " (hint: port 587 normally needs --starttls)";
    if (err == TLSMAIL_ETIMEOUT && R.starttls &&
        (stage == TLSMAIL_STAGE_GREETING || stage == TLSMAIL_STAGE_STARTTLS || R.port == 465))
        return " (hint: a server that says nothing may expect implicit TLS: drop --starttls, port 465)";
    if (err == TLSMAIL_ECERT_UNTRUSTED)
        return " (hint: give the issuing CA with --cafile, or pin the key with --pin-sha256)";
    if (err == TLSMAIL_ECERT_NAME) return " (hint: connect by the name in the certificate)";
    if (err == TLSMAIL_EINVAL && stage == TLSMAIL_STAGE_CONNECT &&
        (strchr(R.host, ':') || (R.host[0] >= '0' && R.host[0] <= '9')))
        return " (hint: a certificate names a host, so an IP address needs --pin-sha256)";
    if (err == TLSMAIL_ENOMECH) return " (hint: the server offers no PLAIN/LOGIN here; see --auth)";
    return "";
}

static const char *status_name(int rc) {
    switch (rc) {
    case EX_OK: return "EX_OK";
    case EX_USAGE: return "EX_USAGE";
    case EX_DATAERR: return "EX_DATAERR";
    case EX_NOINPUT: return "EX_NOINPUT";
    case EX_UNAVAILABLE: return "EX_UNAVAILABLE";
    case EX_TEMPFAIL: return "EX_TEMPFAIL";
    case EX_PROTOCOL: return "EX_PROTOCOL";
    case EX_NOPERM: return "EX_NOPERM";
    case EX_CONFIG: return "EX_CONFIG";
    default: return "EX_SOFTWARE";
    }
}

#ifdef _WIN32
/* The Application event log is Windows' syslog. */
static void system_log(int error, const char *line) {
    HANDLE h = RegisterEventSourceA(NULL, "tlsmail-send");
    const char *strings[1];
    strings[0] = line;
    if (!h || !ReportEventA(h, error ? EVENTLOG_ERROR_TYPE : EVENTLOG_INFORMATION_TYPE, 0, 0, NULL,
                            1, 0, strings, NULL))
        fprintf(stderr, "tlsmail-send: log syslog (the event log): error %lu\n", GetLastError());
    if (h) DeregisterEventSource(h);
}

/* Local time with its offset, "2026-11-28T19:27:24+0100": the CRT's %z
   names the zone instead, so the offset is the distance from UTC. */
static void local_stamp(char *out, size_t cap) {
    time_t now = time(NULL);
    struct tm lt, gt;
    long off;
    size_t n;
    if (localtime_s(&lt, &now) != 0 || gmtime_s(&gt, &now) != 0) {
        snprintf(out, cap, "-");
        return;
    }
    gt.tm_isdst = lt.tm_isdst;
    n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &lt);
    off = (long)difftime(mktime(&lt), mktime(&gt)) / 60;
    snprintf(out + n, cap - n, "%c%02ld%02ld", off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
}
#else
static void system_log(int error, const char *line) {
    openlog("tlsmail-send", LOG_PID, LOG_MAIL);
    syslog(error ? LOG_ERR : LOG_INFO, "%s", line);
    closelog();
}

static void local_stamp(char *out, size_t cap) {
    time_t now = time(NULL);
    struct tm tm;
    strftime(out, cap, "%Y-%m-%dT%H:%M:%S%z", localtime_r(&now, &tm));
}
#endif

/* One line per message, as msmtp's logfile: never the secret. */
static void log_result(int rc, const char *result) {
    const setting *lg = &R.set[K_LOG];
    char line[4096], reply[1100];
    const char *t = tlsmail_reply_text(&client);
    size_t n = 0, i;
    int r;
    if (!lg->value) return;
    for (i = 0; t[i] && i + 1 < sizeof reply; i++) reply[i] = t[i] == '\n' ? ' ' : t[i];
    reply[i] = 0;
    r = snprintf(line, sizeof line, "account=%s host=%s port=%u from=%s recipients=",
                 R.account.value ? R.account.value : "-", R.host, R.port, R.from ? R.from : "-");
    n = r > 0 ? (size_t)r : 0;
    for (i = 0; i < R.rcpts.n && n < sizeof line; i++) {
        r = snprintf(line + n, sizeof line - n, "%s%s", i ? "," : "", R.rcpts.v[i]);
        n += r > 0 ? (size_t)r : 0;
    }
    if (n < sizeof line)
        snprintf(line + n, sizeof line - n, " size=%llu status=%d (%s) result='%s' reply='%d %s'",
                 R.sent, rc, status_name(rc), result, tlsmail_reply_code(&client), reply);
    if (!strcmp(lg->value, "syslog")) {
        system_log(rc, line);
    } else {
        FILE *f = fopen(lg->value, "a");
        char stamp[40];
        if (!f) {
            fprintf(stderr, "tlsmail-send: log %s: %s (%s)\n", lg->value, strerror(errno), lg->source);
            return;
        }
        local_stamp(stamp, sizeof stamp);
        fprintf(f, "%s %s\n", stamp, line);
        if (fclose(f) != 0) fprintf(stderr, "tlsmail-send: log %s: %s\n", lg->value, strerror(errno));
    }
}

static tlsmail_auth make_auth(void) {
    const char *user = R.set[K_USER].value, *mech = R.set[K_AUTH].value;
    if (mech && !strcmp(mech, "login")) return tlsmail_login_auth(user, password, R.host);
    if (mech && !strcmp(mech, "plain")) return tlsmail_plain_auth("", user, password, R.host);
    return tlsmail_auto_auth(user, password, R.host); /* PLAIN if offered, else LOGIN */
}

/* Past max_time the run ends, whatever it waits for (a lookup where the
   library has no threads, a server's close, anything unforeseen): a cron
   job is never held for longer. */
#ifdef _WIN32
static unsigned __stdcall on_alarm(void *arg) {
    static const char text[] = "tlsmail-send: gave up: max_time reached\n";
    Sleep((DWORD)(size_t)arg);
    if (_write(2, text, sizeof text - 1) < 0) {}
    _exit(EX_TEMPFAIL);
}

static void arm_deadline(void) {
    size_t ms = ((size_t)R.cfg.deadline_ms / 1000 + 2) * 1000;
    uintptr_t t = _beginthreadex(NULL, 0, on_alarm, (void *)ms, 0, NULL);
    if (!t) die(EX_SOFTWARE, "cannot start the max_time watchdog: error %lu", GetLastError());
    CloseHandle((HANDLE)t);
}

/* The message is octets: no CRLF translation, no ^Z as end of file. */
static void platform_init(void) { (void)_setmode(_fileno(stdin), _O_BINARY); }
#else
static void on_alarm(int sig) {
    static const char text[] = "tlsmail-send: gave up: max_time reached\n";
    (void)sig;
    if (write(2, text, sizeof text - 1) < 0) {}
    _exit(EX_TEMPFAIL);
}

static void arm_deadline(void) {
    unsigned s = (unsigned)(R.cfg.deadline_ms / 1000) + 2;
    signal(SIGALRM, on_alarm);
    alarm(s);
}

static void platform_init(void) {}
#endif

/* ---- the session cache: TLS sessions across runs ------------------------- */

/* One line per server, the library's export after "entry HOST PORT ", under
   a first line naming this machine and above a last line with the SHA-256
   of everything before it:

       tlsmail-send-cache 1 HOSTNAME
       entry smtp.example.org 465 tlsmail-session-1 smtp.example.org 465 ...
       sha256 HEX

   What can go wrong with a file only its owner can write is damage, not
   forgery: whoever can write it as its owner can as well rewrite that
   user's configuration (trust, server, password command), and would read
   any MAC key the program can read, so a MAC would add nothing. The protection is the file's ownership and mode
   (ours, 0600, not a link), checked before it is read; the checksum catches
   what ownership can't: a file cut short or mangled, whose damaged secret
   would make the server's resumption fail the send. The machine's name
   keeps a cache copied with a home directory or an image from being used
   elsewhere, sharing one session's secret between machines. Anything
   wrong: the file is not used (a full handshake), and rewritten. */
static char *cache_keep[CACHE_ENTRIES]; /* other servers' lines, newest first */
static size_t cache_nkeep;
static int cache_writable;              /* ours to replace */
static int cache_stale;                 /* the file needs writing whatever the
                                           session: unusable, or held an entry
                                           now dropped */

static void cache_warn(const char *why) {
    fprintf(stderr, "tlsmail-send: session cache %s: %s: not used\n", R.set[K_SESSION_CACHE].value, why);
}

static void sha256_hex(const void *p, size_t n, char out[65]) {
    br_sha256_context h;
    unsigned char d[32];
    size_t i;
    br_sha256_init(&h);
    br_sha256_update(&h, p, n);
    br_sha256_out(&h, d);
    for (i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

#ifdef _WIN32
static void machine_name(char *out, size_t cap) {
    DWORD n = (DWORD)cap;
    if (!GetComputerNameA(out, &n) || !out[0]) snprintf(out, cap, "-");
}

/* Windows keeps who may read a file in its ACL, which is not inspected:
   the file is read when it is a file and no link (a reparse point), and
   a file under the user's own profile (%LOCALAPPDATA%) is only theirs.
   The cache file into buf: 1, 0 when there is none, -1 when it is not to
   be used (said why; cache_writable says whether it may be replaced). */
static int cache_read_file(const char *path, char *buf, size_t cap, size_t *len) {
    HANDLE h = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                           FILE_FLAG_OPEN_REPARSE_POINT, NULL);
    BY_HANDLE_FILE_INFORMATION fi;
    DWORD got;
    *len = 0;
    if (h == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        char why[40];
        if (e == ERROR_FILE_NOT_FOUND) return 0;
        snprintf(why, sizeof why, "cannot open it: error %lu", e);
        cache_warn(why);
        return -1;
    }
    if (!GetFileInformationByHandle(h, &fi) ||
        (fi.dwFileAttributes & (FILE_ATTRIBUTE_REPARSE_POINT | FILE_ATTRIBUTE_DIRECTORY))) {
        cache_writable = 0;
        cache_warn("a link or not a file");
        CloseHandle(h);
        return -1;
    }
    while (*len < cap - 1 && ReadFile(h, buf + *len, (DWORD)(cap - 1 - *len), &got, NULL) && got)
        *len += got;
    CloseHandle(h);
    buf[*len] = 0;
    return 1;
}

/* data into a new file beside path (CREATE_NEW: never one that exists),
   then moved over path in one step. */
static void cache_write_file(const char *path, const char *data, size_t n) {
    char *tmp = (char *)xmalloc(strlen(path) + 40);
    HANDLE h;
    DWORD put = 0;
    size_t off = 0;
    int ok;
    sprintf(tmp, "%s.%lu.%llu", path, (unsigned long)GetCurrentProcessId(),
            (unsigned long long)GetTickCount64());
    h = CreateFileA(tmp, GENERIC_WRITE, 0, NULL, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "tlsmail-send: session cache %s: cannot write beside it: error %lu\n", path,
                GetLastError());
        free(tmp);
        return;
    }
    while (off < n && WriteFile(h, data + off, (DWORD)(n - off), &put, NULL) && put) off += put;
    ok = CloseHandle(h) && off == n &&
         MoveFileExA(tmp, path, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH);
    if (!ok) {
        fprintf(stderr, "tlsmail-send: session cache %s: not written: error %lu\n", path, GetLastError());
        DeleteFileA(tmp);
    }
    free(tmp);
}
#else
static void machine_name(char *out, size_t cap) {
    if (gethostname(out, cap) != 0) snprintf(out, cap, "-");
    out[cap - 1] = 0;
}

/* The cache file into buf: 1, 0 when there is none, -1 when it is not to
   be used (said why; cache_writable says whether it may be replaced). It
   must be a regular file of this user's that nobody else may read or
   write, opened without following a link. */
static int cache_read_file(const char *path, char *buf, size_t cap, size_t *len) {
    struct stat st;
    long r;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    *len = 0;
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        cache_writable = errno != ELOOP;
        cache_warn(errno == ELOOP ? "a symbolic link" : strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        cache_writable = 0;
        cache_warn("not a file of this user's");
        close(fd);
        return -1;
    }
    if (st.st_mode & 077) {
        cache_stale = 1; /* ours: rewritten, mode 0600 */
        cache_warn("group or others may read or write it (want mode 600)");
        close(fd);
        return -1;
    }
    while (*len < cap - 1 && (r = read_fd(fd, buf + *len, cap - 1 - *len)) != 0) {
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) break;
        *len += (size_t)r;
    }
    close(fd);
    buf[*len] = 0;
    return 1;
}

/* data into a new file beside path, mode 0600 from the start (mkstemp),
   then renamed over path. */
static void cache_write_file(const char *path, const char *data, size_t n) {
    char *tmp = (char *)xmalloc(strlen(path) + 8);
    int fd;
    sprintf(tmp, "%s.XXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0) {
        fprintf(stderr, "tlsmail-send: session cache %s: cannot write beside it: %s\n", path, strerror(errno));
    } else {
        size_t off = 0;
        ssize_t w = 0;
        while (off < n && ((w = write(fd, data + off, n - off)) > 0 || (w < 0 && errno == EINTR)))
            if (w > 0) off += (size_t)w;
        if (fchmod(fd, 0600) != 0 || off != n || close(fd) != 0 || rename(tmp, path) != 0) {
            fprintf(stderr, "tlsmail-send: session cache %s: not written: %s\n", path, strerror(errno));
            unlink(tmp);
        }
    }
    free(tmp);
}
#endif

static void cache_first_line(char *out, size_t cap) {
    char host[256];
    machine_name(host, sizeof host);
    snprintf(out, cap, "tlsmail-send-cache 1 %s\n", host);
}

/* The entry for this server into R.session; the others kept for the
   rewrite, those that have expired dropped. */
static void cache_load(void) {
    const char *path = R.set[K_SESSION_CACHE].value;
    char buf[CACHE_ENTRIES * 640 + 512], first[300], sum[65], *line, *end, *next;
    size_t n = 0;
    int got;
    if (!path) return;
    R.cfg.session = &R.session;
    cache_writable = 1;
    if ((got = cache_read_file(path, buf, sizeof buf, &n)) <= 0) return;
    cache_stale = 1; /* until it proves sound */
    cache_first_line(first, sizeof first);
    /* the checksum line: "sha256 HEX\n", last */
    end = n >= 72 ? buf + n - 72 : NULL;
    if (!end || strncmp(end, "sha256 ", 7) != 0 || buf[n - 1] != '\n' || (end > buf && end[-1] != '\n')) {
        if (R.verbose) cache_warn("damaged (no checksum line)");
        goto out;
    }
    sha256_hex(buf, (size_t)(end - buf), sum);
    if (memcmp(end + 7, sum, 64) != 0) {
        if (R.verbose) cache_warn("damaged (checksum mismatch)");
        goto out;
    }
    if (strncmp(buf, first, strlen(first)) != 0) {
        if (R.verbose) cache_warn("written on another machine");
        goto out;
    }
    cache_stale = 0;
    for (line = buf + strlen(first); line < end; line = next) {
        char host[256], *text;
        unsigned port;
        int at = 0;
        tlsmail_session probe;
        next = (char *)memchr(line, '\n', (size_t)(end - line)) + 1; /* end[-1] is '\n' */
        next[-1] = 0;
        if (sscanf(line, "entry %255s %u %n", host, &port, &at) != 2 || at == 0) continue;
        text = line + at;
        if (strcasecmp(host, R.host) == 0 && port == R.port) {
            if (!R.cache_text && tlsmail_session_import(&R.session, text, strlen(text)) == 0)
                R.cache_text = xstrdup(text);
            else
                cache_stale = 1;
            continue;
        }
        memset(&probe, 0, sizeof probe);
        if (tlsmail_session_import(&probe, text, strlen(text)) == 0 && cache_nkeep < CACHE_ENTRIES - 1)
            cache_keep[cache_nkeep++] = xstrdup(line);
        else
            cache_stale = 1; /* expired, or one too many */
        tlsmail_session_clear(&probe);
    }
out:
    wipe(buf, sizeof buf);
}

/* The file again, this server's session first, when it changed: written
   beside it (mode 0600 from the start) and renamed over it. */
static void cache_store(void) {
    const char *path = R.set[K_SESSION_CACHE].value;
    char text[TLSMAIL_SESSION_TEXT], first[300], sum[65], *out;
    size_t len = 0, n, i, cap;
    int have;
    if (!path || !cache_writable) return;
    have = tlsmail_session_export(&R.session, text, sizeof text, &len) == 0;
    if (!cache_stale && (have ? R.cache_text && strcmp(text, R.cache_text) == 0 : !R.cache_text)) {
        wipe(text, sizeof text);
        return; /* nothing new: resumed, or no session either way */
    }
    cache_first_line(first, sizeof first);
    cap = strlen(first) + strlen(R.host) + len + 100;
    for (i = 0; i < cache_nkeep; i++) cap += strlen(cache_keep[i]) + 1;
    out = (char *)xmalloc(cap);
    n = (size_t)snprintf(out, cap, "%s", first);
    if (have) n += (size_t)snprintf(out + n, cap - n, "entry %s %u %s\n", R.host, R.port, text);
    for (i = 0; i < cache_nkeep; i++) n += (size_t)snprintf(out + n, cap - n, "%s\n", cache_keep[i]);
    sha256_hex(out, n, sum);
    n += (size_t)snprintf(out + n, cap - n, "sha256 %s\n", sum);
    cache_write_file(path, out, n);
    wipe(out, cap);
    wipe(text, sizeof text);
    free(out);
}

static void cache_free(void) {
    size_t i;
    for (i = 0; i < cache_nkeep; i++) {
        wipe(cache_keep[i], strlen(cache_keep[i]));
        free(cache_keep[i]);
    }
    if (R.cache_text) {
        wipe(R.cache_text, strlen(R.cache_text));
        free(R.cache_text);
    }
    tlsmail_session_clear(&R.session);
}

/* ---- sending: a message whole, streamed, or a batch ---------------------- */

/* The library's error on stderr (after the message file's name in a
   batch), in the log, and as the exit status. */
static int report(int err) {
    char desc[1400];
    int rc = exit_status(err);
    if (err) {
        tlsmail_describe(&client, err, desc, sizeof desc);
        fprintf(stderr, "tlsmail-send: %s%s%s%s\n", R.msgfiles.n ? R.msg_name : "", R.msgfiles.n ? ": " : "",
                desc, hint(err));
    } else {
        snprintf(desc, sizeof desc, "sent");
        if (R.verbose) fprintf(stderr, "* sent%s%s\n", R.msgfiles.n ? " " : "", R.msgfiles.n ? R.msg_name : "");
    }
    log_result(rc, desc);
    return rc;
}

static void say_sending(void) {
    if (!R.verbose) return;
    fprintf(stderr, "* %s port %u, %s, %lu recipient(s), %lu%s octets%s\n", R.host, R.port,
            R.starttls ? "STARTTLS" : "implicit TLS", (unsigned long)R.rcpts.n,
            (unsigned long)(R.addlen + R.len), R.msg_eof ? "" : "+", R.msg_eof ? "" : " (streamed)");
    if (R.dsn_notify || R.dsn_ret || R.dsn_envid)
        fprintf(stderr, "* -N/-R/-V (DSN) accepted but not sent: not supported yet\n");
}

static void say_handshake(void) {
    if (R.verbose && R.cfg.session)
        fprintf(stderr, "* TLS session %s\n", tlsmail_session_resumed(&client) ? "resumed" : "not resumed");
}

/* A message that fitted in the window: the one call, which checks it all
   before connecting and pipelines MAIL, RCPT and DATA. */
static int send_whole(const tlsmail_auth *a) {
    char *m = R.msg;
    size_t n = R.len;
    int err;
    if (R.added) {
        m = (char *)xmalloc(R.addlen + R.len + 1);
        memcpy(m, R.added, R.addlen);
        memcpy(m + R.addlen, R.msg, R.len);
        n = R.addlen + R.len;
    }
    err = tlsmail_client_send(&client, &R.cfg, a, R.from, (const char *const *)R.rcpts.v, R.rcpts.n,
                              m, n);
    if (m != R.msg) free(m);
    return err;
}

/* Leave in the middle of DATA: without the final "." the server
   delivers nothing. */
#if defined(__GNUC__) || defined(__clang__)
static void abandon(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
#endif
static void abandon(int code, const char *fmt, ...) {
    char what[600];
    va_list ap;
    tlsmail_close(&client);
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    die(code, "%s: nothing was delivered", what);
}

/* The rest of the input after the window, a piece at a time: counted and
   its lines checked before the piece is sent (to = NULL: only checked).
   R.sent grows with it. */
static int stream_rest(tlsmail_client *to) {
    unsigned long line;
    int err;
    while (!R.msg_eof) {
        long r = read_fd(R.msg_fd, R.msg, WINDOW);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            if (!to) die(EX_NOINPUT, "cannot read the message: %s", strerror(errno));
            abandon(EX_NOINPUT, "cannot read the message from %s: %s", R.msg_name, strerror(errno));
        }
        if (r == 0) {
            R.msg_eof = 1;
            break;
        }
        R.input += (unsigned long long)r;
        if (R.input > MAX_MESSAGE) {
            if (!to) die(EX_DATAERR, "the message is larger than 64 MiB");
            abandon(EX_DATAERR, "the message is larger than 64 MiB");
        }
        if ((line = linecheck_feed(&message_lines, R.msg, (size_t)r)) != 0) {
            if (!to) die(EX_DATAERR, "message line %lu is longer than 998 octets (RFC 5321 4.5.3.1.6)", line);
            abandon(EX_DATAERR, "message line %lu is longer than 998 octets (RFC 5321 4.5.3.1.6)", line);
        }
        if (to && (err = tlsmail_data_write(to, R.msg, (size_t)r)) != 0) return err;
        R.sent += (unsigned long long)r;
    }
    return 0;
}

/* One message on a connected client, step by step: MAIL, RCPT, DATA, the
   added headers, the window, the rest as it is read, ".". */
static int transact(void) {
    size_t i;
    int err;
    if ((err = tlsmail_mail(&client, R.from)) != 0) return err;
    for (i = 0; i < R.rcpts.n; i++)
        if ((err = tlsmail_rcpt(&client, R.rcpts.v[i])) != 0) return err;
    if ((err = tlsmail_data_begin(&client)) != 0) return err;
    if (R.added && (err = tlsmail_data_write(&client, R.added, R.addlen)) != 0) return err;
    if ((err = tlsmail_data_write(&client, R.msg, R.len)) != 0) return err;
    if ((err = stream_rest(&client)) != 0) return err;
    return tlsmail_data_end(&client);
}

/* Connect, EHLO, AUTH; the password is wiped once it has been used. */
static int open_session(const tlsmail_auth *a) {
    int err = tlsmail_dial(&client, &R.cfg);
    say_handshake();
    if (!err) err = tlsmail_hello(&client);
    if (!err && a) err = tlsmail_authenticate(&client, a);
    wipe(password, sizeof password);
    return err;
}

static int send_and_report(void) {
    tlsmail_auth a = make_auth();
    const tlsmail_auth *ap = R.set[K_USER].value ? &a : NULL;
    int err, rc;
    say_sending();
    arm_deadline();
    if (R.msg_eof) {
        err = send_whole(ap);
        say_handshake();
    } else if ((err = open_session(ap)) == 0 && (err = transact()) == 0) {
        (void)tlsmail_quit(&client); /* delivered: QUIT's fate changes nothing */
    }
    wipe(password, sizeof password);
    rc = report(err);
    tlsmail_close(&client);
    return rc;
}

/* ---- --batch: message files over one connection --------------------------- */

static int name_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* --batch FILE or DIR (its files, not those starting with '.', by name). */
static void collect_files(void) {
    size_t i;
    for (i = 0; i < R.batch.n; i++) {
        const char *p = R.batch.v[i];
        struct stat st;
        if (stat(p, &st) != 0) die(EX_NOINPUT, "--batch %s: %s", p, strerror(errno));
        if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(p);
            struct dirent *e;
            size_t first = R.msgfiles.n;
            if (!d) die(EX_NOINPUT, "--batch %s: %s", p, strerror(errno));
            while ((e = readdir(d)) != NULL) {
                char *f;
                if (e->d_name[0] == '.') continue;
                f = (char *)xmalloc(strlen(p) + strlen(e->d_name) + 2);
                sprintf(f, "%s/%s", p, e->d_name);
                if (stat(f, &st) == 0 && S_ISREG(st.st_mode)) list_push(&R.msgfiles, f);
                else free(f);
            }
            closedir(d);
            qsort(R.msgfiles.v + first, R.msgfiles.n - first, sizeof *R.msgfiles.v, name_cmp);
        } else {
            list_push(&R.msgfiles, xstrdup(p));
        }
    }
    if (!R.msgfiles.n) usage_error("--batch: no message files");
}

static void open_message(const char *path) {
    R.msg_name = path;
    if ((R.msg_fd = open_input(path)) < 0) die(EX_NOINPUT, "%s", strerror(errno));
}

/* What one message of a batch left behind, for the next one. */
static void close_message(void) {
    if (R.msg_fd > 0) close_fd(R.msg_fd);
    R.msg_fd = 0;
    R.msg_name = NULL;
    free(R.from);
    free(R.display);
    free(R.added);
    R.from = R.display = R.added = NULL;
    R.addlen = 0;
    list_free(&R.rcpts);
}

/* Every file is checked whole first (headers, recipients, lines, size):
   a bad one stops the batch before anything is sent. Then one connection;
   a message the server refuses is reported and the next one goes after
   RSET; a lost connection ends the batch. Each message sent is named on
   stdout ("sent FILE"); the exit status is the first failure's. */
static int send_batch(void) {
    tlsmail_auth a = make_auth();
    size_t i;
    int err, rc = EX_OK;
    for (i = 0; i < R.msgfiles.n; i++) {
        open_message(R.msgfiles.v[i]);
        prepare_message();
        (void)stream_rest(NULL);
        close_message();
    }
    arm_deadline();
    if (R.verbose) fprintf(stderr, "* %s port %u, %s, %lu messages\n", R.host, R.port,
                           R.starttls ? "STARTTLS" : "implicit TLS", (unsigned long)R.msgfiles.n);
    if ((err = open_session(R.set[K_USER].value ? &a : NULL)) != 0) {
        R.msg_name = "(connection)";
        rc = report(err);
        fprintf(stderr, "tlsmail-send: none of the %lu messages was sent\n", (unsigned long)R.msgfiles.n);
        tlsmail_close(&client);
        return rc;
    }
    for (i = 0; i < R.msgfiles.n; i++) {
        int r;
        open_message(R.msgfiles.v[i]);
        prepare_message();
        err = transact();
        r = report(err);
        if (!err) printf("sent %s\n", R.msg_name);
        else if (rc == EX_OK) rc = r;
        close_message();
        if (err && tlsmail_reset(&client) != 0) {
            if (i + 1 < R.msgfiles.n)
                fprintf(stderr, "tlsmail-send: the connection is lost: %lu more message(s) not sent\n",
                        (unsigned long)(R.msgfiles.n - i - 1));
            break;
        }
    }
    fflush(stdout);
    (void)tlsmail_quit(&client);
    tlsmail_close(&client);
    return rc;
}

/* --check: connect, verify, log in, QUIT, and say what the server offers. */
static int check_server(void) {
    char ehlo[TLSMAIL_REPLY_TEXT + 1], desc[1400];
    const char *auth, *p;
    int err, rc;
    arm_deadline();
    if ((err = tlsmail_dial(&client, &R.cfg)) == 0 && (err = tlsmail_hello(&client)) == 0) {
        snprintf(ehlo, sizeof ehlo, "%s", tlsmail_reply_text(&client));
        auth = tlsmail_extension(&client, "AUTH");
        printf("server:     %s port %u, %s\n", R.host, R.port, R.starttls ? "STARTTLS" : "implicit TLS");
        printf("trust:      %s, certificate verified\n",
               R.set[K_PIN_SHA256].value ? "pinned key" :
               R.set[K_CAFILE].value || R.set[K_CAPATH].value ? "cafile/capath" : "system store");
        /* The TLS version, cipher suite, and the certificate's subject and
           expiry belong here; tlsmail.h has no call that reports them yet. */
        printf("tls:        (version, suite, certificate subject and expiry: not reported by "
               "tlsmail.h yet)\n");
        p = strchr(ehlo, '\n');
        printf("name:       %.*s\n", (int)(p ? (size_t)(p - ehlo) : strlen(ehlo)), ehlo);
        printf("extensions:");
        while (p) {
            const char *q = strchr(p + 1, '\n');
            printf(" %.*s%s", (int)(q ? (size_t)(q - p - 1) : strlen(p + 1)), p + 1, q ? "," : "");
            p = q;
        }
        printf("\nauth:       %s\n", auth ? (*auth ? auth : "(none listed)") : "(not offered)");
        if (R.set[K_USER].value) {
            tlsmail_auth a = make_auth();
            err = tlsmail_authenticate(&client, &a);
            if (!err) printf("login:      %s accepted\n", R.set[K_USER].value);
        }
        if (!err) err = tlsmail_quit(&client);
    }
    wipe(password, sizeof password);
    rc = exit_status(err);
    if (err) {
        tlsmail_describe(&client, err, desc, sizeof desc);
        fprintf(stderr, "tlsmail-send: %s%s\n", desc, hint(err));
    }
    tlsmail_close(&client);
    return rc;
}

int main(int argc, char **argv) {
    int rc;
    platform_init();
    if (argc < 2) usage_error("no recipients (see tlsmail-send --help)");
    parse_command_line(argc, argv);
    read_configuration();
    check_settings();
    if (R.config_check) {
        print_config();
        return EX_OK;
    }
    if (!R.host[0])
        usage_error("no server: set server in tlsmail-send.conf, TLSMAIL_SERVER, or give --server "
                    "HOST[:PORT]");
    if (R.verbose) R.cfg.trace = trace;
    configure_trust();
    if (R.batch.n) collect_files();
    cache_load();
    if (R.check) {
        read_secret();
        rc = check_server();
    } else if (R.msgfiles.n) {
        read_secret();
        rc = send_batch();
    } else {
        R.msg_name = "stdin";
        prepare_message();
        read_secret();
        rc = send_and_report();
    }
    cache_store();
    cache_free();
    tlsmail_trust_free(&R.trust);
    list_free(&R.rcpts);
    list_free(&R.recipients);
    list_free(&R.batch);
    list_free(&R.msgfiles);
    free(R.msg);
    free(R.from);
    free(R.display);
    free(R.added);
    return rc;
}
