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
              -lbearssl -lws2_32 -ladvapi32 -lcrypt32
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
#include <signal.h> /* sig_atomic_t, also for the Windows watchdog thread */
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
#include <sys/resource.h>
#include <strings.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#endif

/* sysexits.h values, spelled out: the header is not in C99 or POSIX. */
enum {
    EX_OK = 0,
    EX_USAGE = 64,       /* bad command line */
    EX_DATAERR = 65,     /* bad message or address */
    EX_NOINPUT = 66,     /* a file we were told to read can't be read */
    EX_UNAVAILABLE = 69, /* refused for good: 5xx, TLS, certificate */
    EX_SOFTWARE = 70,    /* internal error */
    EX_IOERR = 74,       /* --batch: stdout can't be written */
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
    X(AUTH, "auth", 0, "plain, login, xoauth2, oauthbearer, external or auto (default)") \
    X(TOKEN, "token", 1, "an OAuth 2.0 access token itself")                          \
    X(TOKEN_FILE, "token_file", 0, "a file whose first line is the OAuth token")       \
    X(TOKEN_COMMAND, "token_command", 0, "a command that prints the OAuth token")      \
    X(TLS_CERT_FILE, "tls_cert_file", 0, "a client certificate (PEM), sent when asked") \
    X(TLS_KEY_FILE, "tls_key_file", 0, "its private key (PEM), for no one else to read") \
    X(FROM, "from", 0, "envelope sender and the address of an added From")            \
    X(FROM_NAME, "from_name", 0, "display name of an added From")                     \
    X(FROM_HEADER, "from_header", 0, "keep (default) or replace: the message's From by the sender's") \
    X(CAFILE, "cafile", 0, "trust the CA certificates in this PEM file")              \
    X(CAPATH, "capath", 0, "trust the CA certificates in this directory")             \
    X(PIN_SHA256, "pin_sha256", 0, "trust only the server key with this SHA-256")     \
    X(TIMEOUT, "timeout", 0, "seconds for each connect, read and write (default 60)") \
    X(MAX_TIME, "max_time", 0, "seconds for the whole run (default " DEFAULT_MAX_TIME ")") \
    X(HELO, "helo", 0, "the name sent with EHLO (default localhost)")                 \
    X(ALIASES, "aliases", 0, "aliases(5) file for recipients without a domain")       \
    X(DOMAIN, "domain", 0, "domain for local names no alias maps")                    \
    X(ADD_MISSING_HEADERS, "add_missing_headers", 0, "on (default) or off")           \
    X(LONG_LINES, "long_lines", 0, "encode (default: a text body as quoted-printable) or refuse") \
    X(DELIVER, "deliver", 0, "all (default) or accepted: who gets it when some are refused") \
    X(LOG, "log", 0, "a file to append one line per message to, or syslog")           \
    X(SESSION_CACHE, "session_cache", 0, "a file to keep TLS sessions in, to resume them") \
    X(TCP_FASTOPEN, "tcp_fastopen", 0, "on or off (default): TCP Fast Open for implicit TLS")

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
    tlsmail_mail_opts mopts; /* -R, -V (DSN) and -B 7BIT; the rest per message */
    unsigned notify;         /* -N: TLSMAIL_NOTIFY_* for every recipient */
    int dsn;                 /* -N, -R or -V was given */
    int server_dsn;          /* -v: the EHLO reply (over TLS) offered DSN */
    int body8, head8;        /* the message (its window) has 8-bit octets; its header */
    size_t refused;          /* recipients refused (envelope) */
    int partial;             /* ...and sent to the others (deliver accepted) */
    int refused_rc;          /* ...the exit status they make */
    char result[1600];       /* ...and what the log says */
    char refused_reply[1100];/* ...the last refusal */
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
    size_t msg_cap;          /* read_window's room in msg (0: msg is not its) */
    char *from;              /* envelope sender */
    char *display;           /* display name for an added From */
    strlist rcpts;           /* envelope recipients */
    strlist found;           /* ...as found in the headers and argv, before aliases */
    char *from_header;       /* the first From address of the message, or NULL */
    /* the message being sent: R.msg holds its first WINDOW octets, or all
       of it when msg_eof; the rest is read from msg_fd while it is sent */
    const char *msg_name;    /* "stdin" or the file's path */
    int msg_fd;
    int msg_eof;
    long long file_at, file_end; /* a message file's offset; its size when the rest began, or 0 */
    int shrank;              /* it ended before that size */
    unsigned long long input;/* octets read of it */
    unsigned long long sent; /* octets handed to the library, added ones too */
    long line_base;          /* the input's line number less the library's (streamed) */
    char *added;             /* header fields to put first, or NULL */
    size_t addlen;
    size_t gap;              /* >0: an empty line goes before R.msg[gap] */
    int aliases_loaded;
    strlist msgfiles;        /* --batch: the message files, in order */
    tlsmail_session session; /* --session-cache: the one for this server */
    tlsmail_client_cert cc;  /* --cert: the client certificate, or zeroed */
    char *cache_text;        /* the entry it was loaded from, or NULL */
} run;

static run R;
static tlsmail_client client; /* ~30 KB: static, not on the stack */
/* The secrets, in static buffers that are wiped on every way out. An
   OAuth access token from Microsoft runs to a few KB; the library takes
   responses of up to 12,288 octets of base64 (tokens of about 9 KB). */
static char password[1024];
static char token[12288];

/* ---- small helpers ------------------------------------------------------ */

/* The library's wipe is private; this one is only for the secrets. */
static void wipe(void *p, size_t n) {
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--) *v++ = 0;
}

static void wipe_secrets(void) {
    wipe(password, sizeof password);
    wipe(token, sizeof token);
}

#if defined(__GNUC__) || defined(__clang__)
static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void leave(int code) __attribute__((noreturn));
#endif
#ifdef TLSMAIL_SEND_FUZZ
/* tests/fuzz/fuzz_cli.c runs the parsers over and over in one process: the
   end of a run, which is exit() here otherwise, returns to its setjmp,
   with the status and the message kept for its checks. */
#include <setjmp.h>
static jmp_buf fuzz_end;
static int fuzz_status;
static char fuzz_said[2048];

static void leave(int code) {
    fuzz_status = code;
    longjmp(fuzz_end, 1);
}

static void die(int code, const char *fmt, ...) {
    va_list ap;
    wipe_secrets();
    va_start(ap, fmt);
    vsnprintf(fuzz_said, sizeof fuzz_said, fmt, ap);
    va_end(ap);
    leave(code);
}
#else
static void leave(int code) { exit(code); }

static void die(int code, const char *fmt, ...) {
    va_list ap;
    wipe_secrets();
    fputs("tlsmail-send: ", stderr);
    if (R.msgfiles.n && R.msg_name) fprintf(stderr, "%s: ", R.msg_name); /* --batch: which file */
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    leave(code);
}
#endif

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
    A_STARTTLS, A_PASSWORD, A_TOKEN, A_BATCH, A_FASTOPEN
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
    { "--tcp-fastopen", NULL, A_FASTOPEN, K_TCP_FASTOPEN, 0,
      "send the TLS hello in TCP's SYN once the\nserver has given this system a cookie: one\n"
      "round trip less (Linux; implicit TLS only)" },
    { "--max-time", "SECONDS", A_KEY, K_MAX_TIME, 0,
      "whole run, connect to exit (default " DEFAULT_MAX_TIME ")" },
    { "Authentication:", NULL, A_HEAD, 0, 0, NULL },
    { "--user", "USER", A_KEY, K_USER, 0,
      "log in as USER; the password comes from the\nconfiguration, env TLSMAIL_PASSWORD or\n"
      "--password-file, never from argv" },
    { "--password-file", "FILE", A_KEY, K_PASSWORD_FILE, 0,
      "read the password from FILE: its first line,\nwithout the LF or CRLF" },
    { "--password|--pass|-p", NULL, A_PASSWORD, 0, 0, "refused: others could read it in the process list" },
    { "--auth", "plain|login|xoauth2|oauthbearer|external|auto", A_KEY, K_AUTH, 0,
      "mechanism (default auto: OAUTHBEARER or XOAUTH2\nwith a token, PLAIN or LOGIN with a password,\n"
      "as the server offers; external: the --cert)" },
    { "--token-file", "FILE", A_KEY, K_TOKEN_FILE, 0,
      "read the OAuth 2.0 access token from FILE (or\nenv TLSMAIL_TOKEN, token_command), never argv" },
    { "--token", NULL, A_TOKEN, 0, 0, "refused: others could read it in the process list" },
    { "--cert", "FILE", A_KEY, K_TLS_CERT_FILE, 0,
      "client certificate (PEM, with its chain and,\nwithout --key, its key), sent when asked for" },
    { "--key", "FILE", A_KEY, K_TLS_KEY_FILE, 0,
      "the certificate's private key (PEM), a file\nnobody but its owner may read" },
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
    { "--from-header", "keep|replace", A_KEY, K_FROM_HEADER, 0,
      "keep (default) the message's From; replace drops\nit and adds the sender's, as when it has none\n"
      "(for servers that take only the login's From)" },
    { "-t", NULL, A_FLAG_T, 0, 0,
      "add the recipients of the To, Cc and Bcc\nheaders (of Resent-To, -Cc, -Bcc alone in a\n"
      "resent message); Bcc is always removed" },
    { "--subject", "TEXT", A_SUBJECT, 0, 0,
      "compose the message: stdin is plain UTF-8\ntext, From is the sender, To the recipients" },
    { "--batch", "FILE", A_BATCH, 0, 0,
      "send FILE instead of stdin, over one connection\nwith the other --batch FILEs (repeatable; a\n"
      "directory: each file in it); recipients from\neach one's To, Cc and Bcc, and the RECIPIENTs" },
    { "--long-lines", "encode|refuse", A_KEY, K_LONG_LINES, 0,
      "a body line over 998 octets: encode (default)\nsends a single text part read whole as\n"
      "quoted-printable; refuse exits 65" },
    { "--deliver", "all|accepted", A_KEY, K_DELIVER, 0,
      "when the server refuses some recipients: all\n(default) sends to none; accepted sends to\n"
      "the others, and names the refused" },
    { "--session-cache", "FILE", A_KEY, K_SESSION_CACHE, 0,
      "keep the TLS session in FILE and resume it\nnext time (a handshake without the\n"
      "certificates); FILE is made mode 0600" },
    { "sendmail compatibility (accepted; see tlsmail-send(1)):", NULL, A_HEAD, 0, 0, NULL },
    { "-i|-oi", NULL, A_IGNORE, 0, 0, "a lone dot never ends the message anyway" },
    { "-oem|-oee|-oep|-oeq|-oew", NULL, A_IGNORE, 0, 0, "errors are always reported by exit status and stderr" },
    { "-odi|-odb|-odq", NULL, A_IGNORE, 0, 0, "delivery is always at once (there is no queue)" },
    { "-bm", NULL, A_IGNORE, 0, 0, "deliver a message: the only mode" },
    { "-h", "N", A_IGNORE, 0, ATTACHED, "hop count (also -hN): the server counts Received\nfields itself" },
    { "-m|-om", NULL, A_IGNORE, 0, 0, "me too (bsd-mailx's metoo): the sender is never\ntaken out of the recipients anyway" },
    { "-L", "LABEL", A_IGNORE, 0, ATTACHED, "syslog label (also -LLABEL): the log is\ntlsmail-send's own" },
    { "-O", "OPTION=VALUE", A_IGNORE, 0, ATTACHED, "sendmail.cf option (also -OOPTION=VALUE): the\nsettings are tlsmail-send.conf(5)'s" },
    { "-B", "7BIT|8BITMIME", A_BODYTYPE, 0, ATTACHED,
      "body type (also -BTYPE): 7BIT refuses 8-bit\noctets; BODY=8BITMIME goes with 8-bit ones" },
    { "-N", "DSN", A_DSN_N, 0, ATTACHED,
      "never, or success,failure,delay (blanks after\nthe commas allowed): NOTIFY= for every\nrecipient, when the server offers DSN" },
    { "-R", "full|hdrs", A_DSN_R, 0, ATTACHED, "DSN return (RET=), when the server offers DSN" },
    { "-V", "ENVID", A_DSN_V, 0, ATTACHED, "DSN envelope id (ENVID=), when the server offers DSN" },
    { "Other:", NULL, A_HEAD, 0, 0, NULL },
    { "--check", NULL, A_CHECK, 0, 0,
      "connect, verify TLS, log in, QUIT; print\nwhat the server offers" },
    { "--config-check", NULL, A_CONFIG_CHECK, 0, 0,
      "print the effective settings and their sources" },
    { "-v|--verbose", NULL, A_VERBOSE, 0, 0, "show the SMTP dialogue on stderr (AUTH masked)" },
    { "--help", NULL, A_HELP, 0, 0, "show this help and exit (so does -h alone)" },
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
    "file; 69 refused or unavailable (5xx, TLS, certificate), or delivered to\n"
    "some recipients only (over 100 go in groups, and a later one failed: do\n"
    "not retry, stderr names who did not get it); 70 internal error; 74 stdout\n"
    "unwritable (--batch); 75 temporary failure, retry later (4xx, timeout,\n"
    "network); 76 protocol error; 77 authentication refused; 78 bad\n"
    "configuration.\n";

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
            if ((o->arg || o->act == A_PASSWORD || o->act == A_TOKEN) && next == '=' && p[1] == '-')
                return n;
            /* -pSECRET, --passwordSECRET, --tokenSECRET: refused as the
               option, or "unknown option" would echo the secret */
            if (o->act == A_PASSWORD || o->act == A_TOKEN) return n;
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

/* The index of v[0..n) in ok, a value of opt (whole, as given); else
   the run ends with 64. */
static size_t check_choice(const char *opt, const char *v, size_t n, const char *whole,
                           const char *const *ok) {
    size_t i;
    if (!*whole) usage_error("%s: empty value", opt);
    for (i = 0; ok[i]; i++)
        if (name_eq(v, n, ok[i])) return i;
    usage_error("%s %s: not a value sendmail knows here", opt, whole);
    return 0;
}

/* Letters sendmail lets callers bundle behind one '-', as getopt does:
   BusyBox crond runs "sendmail -ti", scripts "-itf ADDR". The flags, and
   those that take a value (the rest of the word, or the next argument). */
static const char bundle_flags[] = "timv";
static const char bundle_valued[] = "frFBNRVh";

/* sendmail's other modes, which scripts call on whatever
   /usr/sbin/sendmail is: why each is not done here, or NULL. */
static const char *sendmail_mode(const char *w) {
    if (!strcmp(w, "-bp") || !strncmp(w, "-q", 2))
        return "there is no mail queue: a message is sent at once, or the exit status says why not";
    if (!strcmp(w, "-bi") || !strcmp(w, "-I"))
        return "there is no alias database to build: the aliases file is read as it is";
    if (!strcmp(w, "-bs") || !strcmp(w, "-bd") || !strcmp(w, "-bl"))
        return "there is no SMTP server mode: tlsmail-send sends the message on stdin";
    if (!strcmp(w, "-bv"))
        return "there is no address verification mode";
    return NULL;
}

/* The option word w is, when it is one: NULL if none. */
static const option *option_of(const char *w, size_t *len) {
    size_t k, n;
    for (k = 0; k < NOPTIONS; k++)
        if (options[k].act != A_HEAD && (n = option_match(&options[k], w)) != 0) {
            if (len) *len = n;
            return &options[k];
        }
    return NULL;
}

/* Words split_bundles made, freed with the run. */
static strlist split_words;

/* argv with every bundled word ("-ti", "-itfADDR") split into options of
   their own ("-t", "-i", "-fADDR"), so each is read as if given alone; a
   word that is an option as it stands, the value of the option before it,
   or one with a letter of neither kind is left as it is (and refused if
   unknown). A 'p' in a bundle starts "-p...", refused as the password
   option, never echoed. */
static char **split_bundles(int argc, char **argv, int *newc) {
    char **out;
    size_t cap = 1;
    int i, n = 0, done = 0, value_next = 0;
    for (i = 0; i < argc; i++) cap += strlen(argv[i]) + 1; /* a word gives a word a letter at most */
    out = (char **)xmalloc(cap * sizeof *out);
    for (i = 0; i < argc; i++) {
        const char *a = argv[i], *c, *last;
        const option *o = NULL;
        size_t len = 0;
        int ok = 1;
        if (i > 0 && !done && !value_next && !(done = !strcmp(a, "--"))) o = option_of(a, &len);
        if (i == 0 || done || value_next || o || a[0] != '-' || a[1] == '-' || a[1] == 0 || a[2] == 0) {
            value_next = o && o->arg && a[len] == 0; /* the next word is its value */
            out[n++] = argv[i];
            continue;
        }
        for (c = a + 1; *c && ok; c++) {
            if (*c == 'p' || strchr(bundle_valued, *c)) break;
            ok = strchr(bundle_flags, *c) != NULL;
        }
        if (!ok) {
            out[n++] = argv[i];
            continue;
        }
        for (c = a + 1; *c; c++) {
            int valued = *c == 'p' || strchr(bundle_valued, *c) != NULL;
            char *w = (char *)xmalloc(strlen(c) + 2);
            w[0] = '-';
            w[1] = *c;
            w[2] = 0;
            if (valued) strcpy(w + 1, c); /* the letter and its attached value */
            list_push(&split_words, w);
            out[n++] = w;
            if (valued) break;
        }
        last = out[n - 1];
        value_next = last[2] == 0 && (o = option_of(last, NULL)) != NULL && o->arg;
    }
    out[n] = NULL;
    list_push(&split_words, (char *)out);
    *newc = n;
    return out;
}

static void parse_command_line(int argc, char **argv) {
    static const char *const body_types[] = { "7BIT", "8BITMIME", NULL };
    static const char *const notify[] = { "success", "failure", "delay", "never", NULL };
    static const char *const ret[] = { "full", "hdrs", NULL };
    int i, done = 0;
    if (argc == 2 && !strcmp(argv[1], "-h")) { /* alone: help; else sendmail's hop count */
        print_help();
        leave(EX_OK);
    }
    argv = split_bundles(argc, argv, &argc);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL, *why;
        const option *o = NULL;
        size_t n = 0;
        char spelling[40];
        if (done || a[0] != '-' || a[1] == 0) {
            list_push(&R.recipients, xstrdup(a));
            continue;
        }
        if (!strcmp(a, "--")) {
            done = 1;
            continue;
        }
        o = option_of(a, &n);
        if (!o && (why = sendmail_mode(a)) != NULL) usage_error("%s: %s", a, why);
        if (!o) /* not what follows '=' of --opt=VALUE: a mistyped --password= holds one */
            usage_error("unknown option %.*s (see tlsmail-send --help)",
                        (int)(a[1] == '-' ? strcspn(a, "=") : strlen(a)), a);
        snprintf(spelling, sizeof spelling, "%.*s", (int)n, a);
        if (o->act == A_PASSWORD)
            usage_error("%s: a password is never taken from the command line (other users can "
                        "read it); use env TLSMAIL_PASSWORD, password_file or --password-file",
                        spelling);
        if (o->act == A_TOKEN)
            usage_error("%s: a token is never taken from the command line (other users can read "
                        "it); use env TLSMAIL_TOKEN, token_file, --token-file or token_command",
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
        case A_FASTOPEN: set_argv(K_TCP_FASTOPEN, "on", spelling); break;
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
        case A_BODYTYPE:
            (void)check_choice(spelling, val, strlen(val), val, body_types);
            /* 7BIT holds the message to it; 8BITMIME is what the library
               declares by itself for a message with 8-bit octets */
            R.mopts.body = strcasecmp(val, "7BIT") ? TLSMAIL_BODY_AUTO : TLSMAIL_BODY_7BIT;
            break;
        case A_DSN_N: {
            /* never, or a comma-separated list of the others; blanks
               around an item go: Postfix's own manual writes the default
               "-N 'delay, failure'" */
            static const int bits[] = { TLSMAIL_NOTIFY_SUCCESS, TLSMAIL_NOTIFY_FAILURE,
                                        TLSMAIL_NOTIFY_DELAY, TLSMAIL_NOTIFY_NEVER };
            const char *p = val;
            int items = 0;
            if (!*val) usage_error("%s: empty value", spelling);
            for (R.notify = 0; *(p += strspn(p, " \t")); items++) {
                size_t w;
                for (w = strcspn(p, ","); w && (p[w - 1] == ' ' || p[w - 1] == '\t'); w--) {}
                R.notify |= (unsigned)bits[check_choice(spelling, p, w, val, notify)];
                p += strcspn(p, ",");
                if (*p == ',') p++;
            }
            if ((R.notify & TLSMAIL_NOTIFY_NEVER) && items > 1)
                usage_error("%s %s: not a value sendmail knows here", spelling, val);
            R.dsn = 1;
            break;
        }
        case A_DSN_R:
            (void)check_choice(spelling, val, strlen(val), val, ret);
            R.mopts.ret = strcasecmp(val, "full") ? TLSMAIL_RET_HDRS : TLSMAIL_RET_FULL;
            R.dsn = 1;
            break;
        case A_DSN_V: {
            /* RFC 3461 4.4: printable ASCII, at most 100 octets as xtext
               (where '+', '=' and a space take three) */
            size_t j, x = 0;
            for (j = 0; val[j]; j++) {
                unsigned char c = (unsigned char)val[j];
                if (c < 0x20 || c > 0x7E) x = 1000;
                x += c <= 0x20 || c == '+' || c == '=' ? 3 : 1;
            }
            if (!*val || x > 100)
                usage_error("%s %s: want printable ASCII, at most 100 octets once '+', '=' and "
                            "spaces are written as +XX (RFC 3461 4.4)", spelling, val);
            R.mopts.envid = val;
            R.dsn = 1;
            break;
        }
        case A_VERBOSE: R.verbose = 1; break;
        case A_CHECK: R.check = 1; break;
        case A_CONFIG_CHECK: R.config_check = 1; break;
        case A_HELP: print_help(); leave(EX_OK);
        case A_VERSION:
            printf("tlsmail-send %s (tlsmail.h, %s)\n", TLSMAIL_VERSION_STRING,
#ifdef TLSMAIL_STARTTLS
                   "implicit TLS and STARTTLS"
#else
                   "implicit TLS only"
#endif
            );
            leave(EX_OK);
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
static char *default_name;          /* its value, ours */

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
    for (i = 0; i < n; i++) /* a line's text: TAB, and no other control character */
        if (((unsigned char)v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7F)
            die(EX_CONFIG, "%s: a control character in the value", where);
    if (n < 2 || v[0] != '"' || v[n - 1] != '"') return xstrdup(v);
    for (i = 1; i + 1 < n; i++) {
        if (v[i] == '\\' && i + 2 < n && (v[i + 1] == '"' || v[i + 1] == '\\')) i++;
        else if (v[i] == '"') die(EX_CONFIG, "%s: a quote inside a quoted value (write \\\")", where);
    }
    out = (char *)xmalloc(n);
    for (i = 1; i + 1 < n; i++) {
        if (v[i] == '\\' && i + 2 < n && (v[i + 1] == '"' || v[i + 1] == '\\')) i++;
        out[o++] = v[i];
    }
    out[o] = 0;
    return out;
}

/* The value as a configuration file would need it to read back the
   same: as it is, or quoted when blanks at either end or quotes around it
   would otherwise be lost. For --config-check, which prints every setting
   in the file's syntax; a control character, which no file value holds
   (one from the environment or argv), is shown as '?'. */
static void conf_print_value(FILE *out, const char *v) {
    size_t n = strlen(v), i;
    int quote = n == 0 || v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t' ||
                (n >= 2 && v[0] == '"' && v[n - 1] == '"');
    if (quote) fputc('"', out);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (quote && (c == '"' || c == '\\')) fputc('\\', out);
        fputc((c < 0x20 && c != '\t') || c == 0x7F ? '?' : c, out);
    }
    if (quote) fputc('"', out);
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

/* The longest line of a configuration or aliases file, and the largest
   file: neither is meant to be big. */
#define MAX_CONF_LINE 4095
#define MAX_CONF_FILE (1024 * 1024)

/* The next line of text[*pos..len) into line (NUL-terminated, without
   its LF); 0 at the end. where names it for errors. */
static int next_conf_line(const char *text, size_t len, size_t *pos, char line[MAX_CONF_LINE + 1],
                          const char *where) {
    const char *lf;
    size_t n;
    if (*pos >= len) return 0;
    lf = (const char *)memchr(text + *pos, '\n', len - *pos);
    n = lf ? (size_t)(lf - (text + *pos)) : len - *pos;
    if (n > MAX_CONF_LINE) die(EX_CONFIG, "%s: line too long", where);
    if (memchr(text + *pos, 0, n)) die(EX_CONFIG, "%s: a NUL octet", where);
    memcpy(line, text + *pos, n);
    line[n] = 0;
    *pos += n + (lf != NULL);
    return 1;
}

/* All of f (at most MAX_CONF_FILE octets) in a new buffer, grown by
   copying, not realloc, so a secret never stays behind in a block handed
   back unwiped; a typical file fits the first 4 KiB. NULL, with nothing
   left behind, when f cannot be read or is larger: *big says which. */
static char *read_whole(FILE *f, size_t *len, int *big) {
    size_t cap = 4096;
    char *buf = (char *)xmalloc(cap);
    *len = fread(buf, 1, cap, f);
    while (*len == cap && cap <= MAX_CONF_FILE) {
        size_t more = cap * 2 > MAX_CONF_FILE + 1 ? MAX_CONF_FILE + 1 : cap * 2;
        char *bigger = (char *)xmalloc(more);
        memcpy(bigger, buf, *len);
        wipe(buf, cap);
        free(buf);
        buf = bigger;
        cap = more;
        *len += fread(buf + *len, 1, cap - *len, f);
    }
    *big = !ferror(f) && *len > MAX_CONF_FILE;
    if (!ferror(f) && !*big) return buf;
    wipe(buf, cap);
    free(buf);
    return NULL;
}

/* A whole file into a new buffer (at most MAX_CONF_FILE octets), and
   whether group or others may read it: *mode its permission bits. */
static char *read_text_file(const char *path, const char *what, size_t *len, int *readable,
                            unsigned *mode) {
    FILE *f = fopen(path, "rb");
    char *buf;
    int big;
    if (!f) return NULL;
    buf = read_whole(f, len, &big);
    *readable = others_can_read(f, mode);
    fclose(f);
    if (!buf && big) die(EX_CONFIG, "%s %s: larger than 1 MiB", what, path);
    if (!buf) die(EX_CONFIG, "cannot read %s", path);
    return buf;
}

/* The keys whose value is a secret or runs the command that makes one: a
   file holding one must be the owner's alone. */
static int holds_secret(int k) {
    return k == K_PASSWORD || k == K_PASSWORD_COMMAND || k == K_TOKEN || k == K_TOKEN_COMMAND;
}

/* One configuration file's text into clines: accounts, keys, values.
   Nothing is read past len (the text needs no NUL); *has_secret: it set
   a key holds_secret names. */
static void parse_config(const char *text, size_t len, const char *path, int level, int *has_secret) {
    char line[MAX_CONF_LINE + 1], where[320];
    const char *account = NULL;
    unsigned long lineno = 0;
    size_t pos = 0;
    *has_secret = 0;
    for (;;) {
        char *p = line, *key, *val, *e;
        size_t n;
        int k;
        snprintf(where, sizeof where, "%s:%lu", path, lineno + 1);
        if (!next_conf_line(text, len, &pos, line, where)) break;
        lineno++;
        n = strlen(line);
        while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t')) line[--n] = 0;
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
                free(default_name);
                default_account.value = default_name = xstrdup(val);
                default_account.level = level;
                snprintf(default_account.source, sizeof default_account.source, "%s", where);
            } else {
                list_push(&accounts, xstrdup(val));
                account = accounts.v[accounts.n - 1];
                if (!accounts_first) accounts_first = account;
            }
            continue;
        }
        for (k = 0; k < K_COUNT; k++)
            if (!strcmp(key, keys[k].name)) break;
        if (k == K_COUNT) die(EX_CONFIG, "%s: unknown key '%s' (see tlsmail-send.conf(5))", where, key);
        if (!*val) die(EX_CONFIG, "%s: '%s' needs a value", where, key);
        if (holds_secret(k)) *has_secret = 1;
        cline_add(account, k, level, conf_value(val, where), where);
    }
    wipe(line, sizeof line); /* the last line read may have been the password's */
}

/* Reads one file into clines. A missing file is fine unless required. */
static void read_config_file(const char *path, int level, int required) {
    size_t len = 0;
    unsigned mode = 0;
    int readable = 0, has_secret;
    char *text = read_text_file(path, "configuration", &len, &readable, &mode);
    if (!text) {
        if (errno == ENOENT && !required) return;
        die(EX_CONFIG, "cannot read %s: %s", path, strerror(errno));
    }
    snprintf(R.files[R.nfiles++], sizeof R.files[0], "%s", path);
    parse_config(text, len, path, level, &has_secret);
    wipe(text, len);
    free(text);
    /* As ssh does for keys: a secret others can read is no secret. */
    if (has_secret && readable)
        die(EX_CONFIG, "%s holds a password or token but group or others can read it (mode %03o): "
                       "chmod 600 %s",
            path, mode, path);
}

static void put(int key, const char *value, int level, const char *source) {
    setting *s = &R.set[key];
    s->value = value;
    s->level = level;
    snprintf(s->source, sizeof s->source, "%s", source);
}

static void read_config_files(void) {
    const char *one = getenv("TLSMAIL_CONFIG"), *sys = getenv("TLSMAIL_SYSCONFIG");
    char userpath[1024];
    if (one && *one) {
        read_config_file(one, L_USER, 1);
    } else {
        read_config_file(sys && *sys ? sys : SYSTEM_CONFIG, L_SYSTEM, 0);
        user_config_path(userpath, sizeof userpath);
        if (userpath[0]) read_config_file(userpath, L_USER, 0);
    }
}

/* The files' lines of the account in use, then the environment, then
   argv: later wins. */
static void apply_settings(void) {
    const char *acct;
    size_t i;
    int k, found;
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

/* The mechanism asked for (auth), as the library numbers it. */
static int auth_mechanism(void) {
    static const char *const names[] = { "plain", "login", "auto", "xoauth2", "oauthbearer", "external" };
    static const int mechs[] = { TLSMAIL_AUTH_PLAIN, TLSMAIL_AUTH_LOGIN, TLSMAIL_AUTH_AUTO,
                                 TLSMAIL_AUTH_XOAUTH2, TLSMAIL_AUTH_OAUTHBEARER, TLSMAIL_AUTH_EXTERNAL };
    const setting *s = &R.set[K_AUTH];
    size_t i;
    if (!s->value) return TLSMAIL_AUTH_AUTO;
    for (i = 0; i < sizeof mechs / sizeof mechs[0]; i++)
        if (!strcmp(s->value, names[i])) return mechs[i];
    die(config_status(s), "auth %s: want plain, login, xoauth2, oauthbearer, external or auto (%s)",
        s->value, s->source);
}

/* AUTH happens when a user is set, or with auth external (the client
   certificate is the credential, the user only an identity to act as). */
static int want_auth(void) {
    return R.set[K_USER].value != NULL || auth_mechanism() == TLSMAIL_AUTH_EXTERNAL;
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
    (void)auth_mechanism(); /* a known one */
    s = &R.set[K_ADD_MISSING_HEADERS];
    if (s->value && parse_bool(s->value) < 0)
        die(config_status(s), "add_missing_headers %s: want on or off (%s)", s->value, s->source);
    s = &R.set[K_TCP_FASTOPEN];
    if (s->value && (R.cfg.tcp_fastopen = parse_bool(s->value)) < 0)
        die(config_status(s), "tcp_fastopen %s: want on or off (%s)", s->value, s->source);
    s = &R.set[K_DELIVER];
    if (s->value && strcmp(s->value, "all") != 0 && strcmp(s->value, "accepted") != 0)
        die(config_status(s), "deliver %s: want all or accepted (%s)", s->value, s->source);
    s = &R.set[K_FROM_HEADER];
    if (s->value && strcmp(s->value, "keep") != 0 && strcmp(s->value, "replace") != 0)
        die(config_status(s), "from_header %s: want keep or replace (%s)", s->value, s->source);
    s = &R.set[K_LONG_LINES];
    if (s->value && strcmp(s->value, "encode") != 0 && strcmp(s->value, "refuse") != 0)
        die(config_status(s), "long_lines %s: want encode or refuse (%s)", s->value, s->source);
    if (R.tflag && R.subject)
        usage_error("-t reads recipients from headers, --subject writes the headers: use one");
    if (R.batch.n && (R.subject || R.check))
        usage_error("--batch sends message files: not with %s", R.subject ? "--subject" : "--check");
}

/* ---- --config-check ----------------------------------------------------- */

/* Every setting, its value in the file's syntax (so a line without its
   source reads back as the same setting) and where it came from. */
static void print_config(FILE *out) {
    int k;
    fprintf(out, "files:   %s%s%s\n", R.nfiles ? R.files[0] : "(none found)", R.nfiles > 1 ? ", " : "",
            R.nfiles > 1 ? R.files[1] : "");
    fprintf(out, "account: %s", R.account.value ? R.account.value : "(none)");
    if (R.account.value) fprintf(out, "  (%s)", R.account.source);
    fputc('\n', out);
    for (k = 0; k < K_COUNT; k++) {
        const setting *s = &R.set[k];
        if (!s->value) {
            fprintf(out, "%-20s (unset: %s)\n", keys[k].name, keys[k].help);
            continue;
        }
        fprintf(out, "%-20s ", keys[k].name);
        conf_print_value(out, keys[k].secret ? "********" : s->value);
        fprintf(out, "  (%s)\n", s->source);
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

/* ---- the secrets: a password, an OAuth token, a client key -------------- */

/* Where a secret goes: the static buffer, its size, and the words the
   errors use ("password", "password_file", "password_command"). */
typedef struct secret {
    char *buf;
    size_t cap;
    const char *noun, *file_key, *command_key;
} secret;

static const secret password_secret = { password, sizeof password, "password", "password_file",
                                        "password_command" };
static const secret token_secret = { token, sizeof token, "token", "token_file", "token_command" };

/* A core file (or a crash reporter) must never get a secret: none is
   written from here on, and on Linux the process is not dumpable at all
   (a core_pattern pipe ignores RLIMIT_CORE), nor open to ptrace by the
   user's other processes. */
#ifdef _WIN32
static void no_core_dumps(void) {
    /* no crash dialog and no Windows Error Reporting upload of our memory */
    (void)SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
}
#elif defined(__linux__)
static void no_core_dumps(void) {
    struct rlimit none;
    none.rlim_cur = none.rlim_max = 0;
    (void)setrlimit(RLIMIT_CORE, &none);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
#else
static void no_core_dumps(void) {
    struct rlimit none;
    none.rlim_cur = none.rlim_max = 0;
    (void)setrlimit(RLIMIT_CORE, &none);
}
#endif

/* The first line of a secret (first_line cut it): its LF or CRLF is not
   part of it. */
static void finish_secret(const secret *sec, size_t n, const char *what) {
    char *b = sec->buf;
    b[n] = 0;
    if (n && b[n - 1] == '\n') b[--n] = 0;
    if (n && b[n - 1] == '\r') b[--n] = 0;
    if (memchr(b, 0, n)) die(EX_DATAERR, "%s: the %s contains a NUL octet", what, sec->noun);
}

/* The length of what buf[0..n) has up to and with its first LF; the
   rest (a second line) is wiped, never taken as part of the secret. */
static size_t first_line(const secret *sec, size_t n) {
    char *nl = (char *)memchr(sec->buf, '\n', n);
    size_t keep = nl ? (size_t)(nl - sec->buf) + 1 : n;
    wipe(sec->buf + keep, n - keep);
    return keep;
}

#ifdef _WIN32
/* The file's first line is the secret, as tlsmail-send.conf(5) says:
   what follows it (a note, a second line) is not read as part of it. */
static void read_secret_file(const secret *sec, const setting *s) {
    FILE *f = fopen(s->value, "rb");
    size_t n;
    if (!f)
        die(EX_NOINPUT, "%s %s: cannot open: %s (%s)", sec->file_key, s->value, strerror(errno), s->source);
    n = fread(sec->buf, 1, sec->cap - 1, f);
    if (ferror(f) || (!feof(f) && !memchr(sec->buf, '\n', n))) {
        fclose(f);
        wipe(sec->buf, sec->cap);
        die(EX_NOINPUT, "%s %s: unreadable, or its first line is longer than %lu octets (%s)",
            sec->file_key, s->value, (unsigned long)(sec->cap - 2), s->source);
    }
    fclose(f);
    finish_secret(sec, first_line(sec, n), s->value);
}

#else
static long long now_ms(void) {
    struct timespec t;
    if (clock_gettime(CLOCK_MONOTONIC, &t) != 0) die(EX_SOFTWARE, "clock_gettime: %s", strerror(errno));
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The file's first line is the secret, as tlsmail-send.conf(5) says:
   what follows it (a note, a second line) is not read as part of it. A
   FIFO or a pipe is fine (--password-file <(pass show x)) but may never
   get a writer, or one that never ends the line: open(2) would wait for
   the writer, and no timer runs yet. So it is opened without waiting and
   read up to its first LF, or its end, within the timeout, as
   run_secret_command bounds its command. */
static void read_secret_file(const secret *sec, const setting *s) {
    int timeout_ms = R.cfg.timeout_ms > 0 ? R.cfg.timeout_ms : TLSMAIL_DEFAULT_TIMEOUT_MS;
    long long deadline = now_ms() + timeout_ms;
    int fd = open(s->value, O_RDONLY | O_NONBLOCK | O_CLOEXEC), stream, eof = 0;
    struct stat st;
    size_t n = 0;
    if (fd < 0)
        die(EX_NOINPUT, "%s %s: cannot open: %s (%s)", sec->file_key, s->value, strerror(errno), s->source);
    stream = fstat(fd, &st) != 0 || !S_ISREG(st.st_mode);
    while (n < sec->cap - 1 && !memchr(sec->buf, '\n', n)) {
        ssize_t r;
        if (stream) {
            struct pollfd pfd;
            long long left = deadline - now_ms();
            if (left <= 0) {
                close(fd);
                wipe(sec->buf, sec->cap);
                die(EX_TEMPFAIL, "%s %s: no whole first line came within the timeout of %g s (%s)",
                    sec->file_key, s->value, timeout_ms / 1000.0, s->source);
            }
            pfd.fd = fd;
            pfd.events = POLLIN;
            /* a FIFO no writer has opened yet reads as its end: wait first */
            if (poll(&pfd, 1, left > 200 ? 200 : (int)left) <= 0) continue;
        }
        r = read(fd, sec->buf + n, sec->cap - 1 - n);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r <= 0) {
            eof = r == 0;
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    if (!eof && !memchr(sec->buf, '\n', n)) {
        wipe(sec->buf, sec->cap);
        die(EX_NOINPUT, "%s %s: unreadable, or its first line is longer than %lu octets (%s)",
            sec->file_key, s->value, (unsigned long)(sec->cap - 2), s->source);
    }
    finish_secret(sec, first_line(sec, n), s->value);
}
#endif

/* The first line of what the command printed is the secret. */
static void finish_command(const secret *sec, const setting *s, size_t n) {
    if (n == sec->cap - 1)
        die(EX_CONFIG, "%s printed more than %lu octets (%s)", sec->command_key,
            (unsigned long)(sec->cap - 2), s->source);
    finish_secret(sec, first_line(sec, n), sec->command_key);
}

/* password_command and token_command run without a shell when they are
   only words (split at spaces and tabs, found on PATH); anything a shell
   would interpret makes them run as /bin/sh -c VALUE (on Windows:
   cmd.exe /d /s /c "VALUE"). Stdout is the secret; stderr passes through;
   the command has the per-wait timeout to finish. */
#ifdef _WIN32
/* The command's stdout, through a pipe only it inherits; stdin is NUL.
   PeekNamedPipe tells whether a read would block, so the timeout holds
   even when the command neither writes nor exits. */
static void run_secret_command(const secret *sec, const setting *s) {
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
        die(EX_CONFIG, "%s: cannot run %s: error %lu (%s)", sec->command_key, cmd, GetLastError(),
            s->source);
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
                die(EX_TEMPFAIL, "%s did not finish within the timeout (%s)", sec->command_key, s->source);
            }
            Sleep(50);
            continue;
        }
        if (avail > sec->cap - 1 - n) avail = (DWORD)(sec->cap - 1 - n);
        if (!ReadFile(rd, sec->buf + n, avail, &got, NULL) || got == 0) break;
        n += got;
        if (n == sec->cap - 1) break;
    }
    CloseHandle(rd);
    /* stdout closed is not the end: the timeout holds for its exit too */
    if (WaitForSingleObject(pi.hProcess, waited < timeout_ms ? (DWORD)(timeout_ms - waited) : 0) !=
        WAIT_OBJECT_0) {
        TerminateProcess(pi.hProcess, 1);
        WaitForSingleObject(pi.hProcess, 5000);
        CloseHandle(pi.hProcess);
        die(EX_TEMPFAIL, "%s did not finish within the timeout of %g s; killed (%s)", sec->command_key,
            timeout_ms / 1000.0, s->source);
    }
    if (!GetExitCodeProcess(pi.hProcess, &status)) status = 1;
    CloseHandle(pi.hProcess);
    if (status != 0) die(EX_CONFIG, "%s failed (exit %lu) (%s)", sec->command_key, status, s->source);
    finish_command(sec, s, n);
}
#else
/* Whether this process has a controlling terminal: cron, systemd and a
   script's setsid have none. */
static int have_terminal(void) {
    int fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return 0;
    close(fd);
    return 1;
}

#if defined(__GNUC__) || defined(__clang__)
static void secret_command_overdue(const secret *sec, const setting *s, pid_t pid, int group, int fd)
    __attribute__((noreturn));
#endif
/* Past the timeout: the command is killed and reaped (no zombie), then
   the run ends. With group, what it started goes too (pass's gpg, the
   sleep of "sleep 300; echo x"): left running, it would hold our stderr,
   and a caller reading that ($(...), cron) would wait for it. */
static void secret_command_overdue(const secret *sec, const setting *s, pid_t pid, int group, int fd) {
    int status;
    if (!group || kill(-pid, SIGKILL) != 0) kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (fd >= 0) close(fd);
    die(EX_TEMPFAIL, "%s did not finish within the timeout of %g s; killed (%s)", sec->command_key,
        (R.cfg.timeout_ms > 0 ? R.cfg.timeout_ms : TLSMAIL_DEFAULT_TIMEOUT_MS) / 1000.0, s->source);
}

static void run_secret_command(const secret *sec, const setting *s) {
    const char *cmd = s->value;
    int fds[2], status, shell = strpbrk(cmd, "|&;<>()$`\\\"'*?[]#~=%{}\n") != NULL;
    int timeout_ms = R.cfg.timeout_ms > 0 ? R.cfg.timeout_ms : TLSMAIL_DEFAULT_TIMEOUT_MS;
    size_t n = 0;
    pid_t pid;
    long long deadline = now_ms() + timeout_ms;
    /* A process group of its own, to be killed whole at the timeout; but
       not with a terminal, where that group would be in the background
       and a pinentry or gpg prompt reading the terminal would be stopped
       (SIGTTIN) instead of asking. */
    int group = !have_terminal();
    if (pipe(fds) != 0) die(EX_SOFTWARE, "pipe: %s", strerror(errno));
    pid = fork();
    if (pid < 0) die(EX_SOFTWARE, "fork: %s", strerror(errno));
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (group) (void)setpgid(0, 0);
        signal(SIGPIPE, SIG_DFL); /* an ignored signal stays ignored across exec */
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
        fprintf(stderr, "tlsmail-send: %s: cannot run %s: %s\n", sec->command_key, cmd, strerror(errno));
        _exit(127);
    }
    if (group) (void)setpgid(pid, pid); /* here too: the group exists before any kill */
    close(fds[1]);
    for (;;) {
        struct pollfd pfd;
        ssize_t r;
        pfd.fd = fds[0];
        pfd.events = POLLIN;
        if (poll(&pfd, 1, 200) == 0) {
            if (now_ms() >= deadline) secret_command_overdue(sec, s, pid, group, fds[0]);
            continue;
        }
        r = read(fds[0], sec->buf + n, sec->cap - 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
        if (n == sec->cap - 1) break;
    }
    close(fds[0]);
    /* A command that closed its stdout may still run (a daemon it left
       behind, a sleep): the timeout holds for its exit too, or a cron job
       would wait on it for ever. */
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) die(EX_SOFTWARE, "waitpid: %s", strerror(errno));
        if (now_ms() >= deadline) secret_command_overdue(sec, s, pid, group, -1);
        (void)poll(NULL, 0, 20);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die(EX_CONFIG, "%s failed (exit %d) (%s)", sec->command_key,
            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), s->source);
    finish_command(sec, s, n);
}
#endif

/* The name of a setting key, for messages. */
static const char *key_name(const setting *s) { return keys[s - R.set].name; }

/* Of a secret's keys, the one from the source with the highest
   precedence; on one level in the order given. NULL: none set. */
static const setting *secret_source(const int *order) {
    const setting *best = NULL;
    size_t i;
    for (i = 0; i < 3; i++) {
        const setting *s = &R.set[order[i]];
        if (s->value && (!best || s->level > best->level)) best = s;
    }
    return best;
}

static void read_one_secret(const secret *sec, const setting *s, int value_key) {
    no_core_dumps();
    if (s == &R.set[value_key]) {
        if (strlen(s->value) >= sec->cap) die(config_status(s), "the %s is too long (%s)", sec->noun, s->source);
        strcpy(sec->buf, s->value);
    } else if (!strcmp(key_name(s), sec->file_key)) {
        read_secret_file(sec, s);
    } else {
        run_secret_command(sec, s);
    }
    if (!sec->buf[0]) die(config_status(s), "the %s is empty (%s)", sec->noun, s->source);
}

/* What the mechanism needs, read before connecting: the password (PLAIN,
   LOGIN), the token (XOAUTH2, OAUTHBEARER), either or both (AUTO: a token
   makes it OAUTHBEARER or XOAUTH2, a password PLAIN or LOGIN, as the
   server offers), nothing (EXTERNAL). The password's keys: password_file,
   then password_command, then password on one level; the token's: token
   (TLSMAIL_TOKEN), then token_file, then token_command. */
static void read_secret(void) {
    static const int pw_order[] = { K_PASSWORD_FILE, K_PASSWORD_COMMAND, K_PASSWORD };
    static const int tok_order[] = { K_TOKEN, K_TOKEN_FILE, K_TOKEN_COMMAND };
    const setting *user = &R.set[K_USER], *pw = secret_source(pw_order), *tok = secret_source(tok_order);
    int mech = auth_mechanism(), use_pw, use_tok;
    if (mech == TLSMAIL_AUTH_EXTERNAL) return;
    if (!user->value) {
        if (pw && pw != &R.set[K_PASSWORD])
            die(config_status(pw), "%s is set (%s) but no user: give --user or set user", key_name(pw),
                pw->source);
        if (tok && tok != &R.set[K_TOKEN])
            die(config_status(tok), "%s is set (%s) but no user: give --user or set user", key_name(tok),
                tok->source);
        if (R.set[K_AUTH].value)
            die(config_status(&R.set[K_AUTH]), "auth %s (%s) but no user: give --user or set user",
                R.set[K_AUTH].value, R.set[K_AUTH].source);
        return;
    }
    use_pw = mech == TLSMAIL_AUTH_PLAIN || mech == TLSMAIL_AUTH_LOGIN || (mech == TLSMAIL_AUTH_AUTO && pw);
    use_tok = mech == TLSMAIL_AUTH_XOAUTH2 || mech == TLSMAIL_AUTH_OAUTHBEARER ||
              (mech == TLSMAIL_AUTH_AUTO && tok);
    if (mech == TLSMAIL_AUTH_AUTO && !pw && !tok)
        die(config_status(user), "user %s (%s) needs a password (TLSMAIL_PASSWORD, password, "
            "password_file or password_command) or an OAuth token (TLSMAIL_TOKEN, token_file or "
            "token_command)", user->value, user->source);
    if (use_pw && !pw)
        die(config_status(user), "user %s (%s) needs a password for auth %s: set TLSMAIL_PASSWORD, "
            "password, password_file or password_command", user->value, user->source, R.set[K_AUTH].value);
    if (use_tok && !tok)
        die(config_status(user), "auth %s needs an OAuth token for user %s (%s): set TLSMAIL_TOKEN, "
            "token_file or token_command", R.set[K_AUTH].value, user->value, user->source);
    if (use_pw) read_one_secret(&password_secret, pw, K_PASSWORD);
    if (use_tok) {
        size_t i;
        read_one_secret(&token_secret, tok, K_TOKEN);
        /* what tlsmail_xoauth2_auth takes; checked here so a token_command
           that printed something else fails before connecting */
        for (i = 0; token[i]; i++)
            if ((unsigned char)token[i] <= ' ' || token[i] == 0x7F)
                die(EX_CONFIG, "the token from %s (%s) holds a space or a control character",
                    key_name(tok), tok->source);
    }
}

/* ---- the client certificate -------------------------------------------- */

/* A PEM file for the client certificate, wiped and freed by the caller;
   key: it holds a private key, which group and others must not read. */
static char *read_pem_file(const setting *s, int key, size_t *len) {
    FILE *f = fopen(s->value, "rb");
    char *buf;
    unsigned mode = 0;
    int big;
    if (!f) die(EX_NOINPUT, "%s %s: cannot open: %s (%s)", key_name(s), s->value, strerror(errno), s->source);
    if (key && others_can_read(f, &mode)) {
        fclose(f);
        die(EX_CONFIG, "%s %s holds a private key but group or others can read it (mode %03o): "
                       "chmod 600 %s (%s)", key_name(s), s->value, mode, s->value, s->source);
    }
    buf = read_whole(f, len, &big);
    fclose(f);
    if (!buf) die(EX_NOINPUT, "%s %s: unreadable or larger than 1 MiB (%s)", key_name(s), s->value, s->source);
    return buf;
}

/* tls_cert_file (and tls_key_file, else the key is in the same file) into
   R.cc for the handshake; read by us, so the mode is checked on the file
   that is read. */
static void load_client_cert(void) {
    const setting *cs = &R.set[K_TLS_CERT_FILE], *ks = &R.set[K_TLS_KEY_FILE];
    char *cert, *key = NULL;
    size_t clen, klen = 0;
    int err;
    if (!cs->value) {
        if (ks->value)
            die(config_status(ks), "tls_key_file (%s) without tls_cert_file: give --cert too", ks->source);
        if (auth_mechanism() == TLSMAIL_AUTH_EXTERNAL)
            die(config_status(&R.set[K_AUTH]), "auth external (%s) needs a client certificate: give "
                "--cert (tls_cert_file)", R.set[K_AUTH].source);
        return;
    }
    no_core_dumps();
    cert = read_pem_file(cs, !ks->value, &clen);
    if (ks->value) key = read_pem_file(ks, 1, &klen);
    memset(&R.cc, 0, sizeof R.cc);
    err = tlsmail_client_cert_pem(&R.cc, cert, clen, key, klen);
    wipe(cert, clen);
    free(cert);
    if (key) {
        wipe(key, klen);
        free(key);
    }
    if (err)
        die(EX_CONFIG, "tls_cert_file %s%s%s: %s (%s)", cs->value, ks->value ? ", tls_key_file " : "",
            ks->value ? ks->value : "", tlsmail_strerror(err), cs->source);
    R.cfg.client_cert = &R.cc;
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

/* The first octet over 127 in p[0..n), or NULL. */
static const char *find_8bit(const char *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80) return p + i;
    return NULL;
}

#define NOT_7BIT "an octet over 127 in a message sent as 7BIT (-B7BIT)"

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

#define PAST_WINDOW "the message goes on past the 256 KiB window read before sending"
#define LONG_LINE "message line %lu is longer than 998 octets (RFC 5321 4.5.3.1.6)%s"

/* What follows LONG_LINE: under long_lines encode, why this message could
   not be sent as quoted-printable, so that the sender knows whether
   changing the message would help; nothing under refuse, which asked for
   the refusal. */
static const char *not_encoded(const char *why) {
    static char text[160];
    const char *v = R.set[K_LONG_LINES].value;
    if (v && !strcmp(v, "refuse")) return "";
    snprintf(text, sizeof text, "; not sent as quoted-printable: %s", why);
    return text;
}

/* The line ends in p[0..n), as the library counts them (no line there is
   too long: the window was checked). */
static unsigned long line_ends(const char *p, size_t n) {
    linecheck lc;
    if (!n) return 0;
    memset(&lc, 0, sizeof lc);
    (void)linecheck_feed(&lc, p, n);
    return lc.line - 1;
}

/* An RFC 5322 address list (To: "A" <a@x>, b@y (comment), grp: c@z;) to
   bare addresses: display names, comments and group names dropped, quoted
   local parts kept. tlsmail.h parses one mailbox for tlsmail_format_mailbox
   but offers no address-list parser, so -t needs this one. Each address
   goes to each(ctx, addr, len, from, at, words): s[from..at) is where it
   was written, at where a domain would go (its '>', or just after its
   last octet); words, how many
   blank- or comment-separated pieces it was written in (1 for a valid
   one: "John Smith" with no <...> is 2, and no address; 0 when its <...>
   was never closed). */
typedef void address_fn(void *ctx, const char *addr, size_t len, size_t from, size_t at, int words);

static void walk_addresses(const char *s, size_t n, address_fn *each, void *ctx) {
    char *cur = (char *)xmalloc(n + 1), *ang = (char *)xmalloc(n + 1);
    size_t cl = 0, al = 0, i, cur_at = 0, ang_at = 0, cur_from = 0, ang_from = 0;
    int quote = 0, depth = 0, in_ang = 0, have_ang = 0, cw = 0, aw = 0, gap = 0;
#define PUT(ch) (in_ang ? (void)(aw += gap || !al, gap = 0, ang_from = al ? ang_from : i, ang[al++] = (ch)) \
                        : (void)(cw += gap || !cl, gap = 0, cur_from = cl ? cur_from : i, cur[cl++] = (ch), \
                                 cur_at = i + 1))
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
            if (c == '\\' && i + 1 < n) { i++; PUT(s[i]); }
            else if (c == '"') quote = 0;
            continue;
        }
        switch (c) {
        case '(': depth = 1; gap = 1; break;
        case '"': quote = 1; PUT(c); break;
        case '<': /* a second <...> replaces the first; one never closed has no place for a domain */
            if (!in_ang) { in_ang = 1; al = 0; aw = gap = 0; ang_at = (size_t)-1; } else PUT(c);
            break;
        case '>': if (in_ang) { in_ang = 0; have_ang = 1; ang_at = i; } else PUT(c); break;
        case ':': /* a group's name, unless in a source route <@a:b@c> */
            if (in_ang) PUT(c);
            else if (!have_ang) cl = 0, cw = gap = 0;
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
                if (len)
                    each(ctx, a, len, have_ang ? ang_from : cur_from, have_ang ? ang_at : cur_at,
                         have_ang ? (ang_at == (size_t)-1 ? 0 : aw) : cw);
                cl = al = 0;
                have_ang = cw = aw = gap = 0;
            }
            break;
        case ' ': case '\t': case '\r': case '\n': gap = 1; break;
        default: PUT(c);
        }
    }
#undef PUT
    free(cur);
    free(ang);
}

typedef struct found_addresses {
    strlist *out;
    const char *s;
    char *loose; /* the first one written in several words, as written */
} found_addresses;

static void add_address(void *ctx, const char *addr, size_t len, size_t from, size_t at, int words) {
    found_addresses *f = (found_addresses *)ctx;
    if (words > 1 && !f->loose && at > from) f->loose = xstrndup(f->s + from, at - from);
    list_add_unique(f->out, xstrndup(addr, len));
}

/* loose (may be NULL): where the first address written in several words
   without <...> ("To: John Smith") goes, as written; a caller that sends
   to them refuses it rather than write to "JohnSmith". */
static void parse_addresses(const char *s, size_t n, strlist *out, char **loose) {
    found_addresses f;
    f.out = out;
    f.s = s;
    f.loose = NULL;
    walk_addresses(s, n, add_address, &f);
    if (loose && !*loose) *loose = f.loose;
    else free(f.loose);
}

/* "Display Name <addr>": a new addr, and the name (NULL if none) through
   *name; anything else: a copy as it is. The '<' is the first outside
   quotes: a quoted display name or local part may hold one of its own
   ("a<b"@example.org, RFC 5321 4.1.2). */
static char *split_mailbox(const char *s, char **name) {
    const char *lt = NULL, *a = s, *b, *p;
    size_t n = strlen(s);
    int quote = 0;
    for (p = s; *p && !lt; p++) {
        if (quote && *p == '\\' && p[1]) p++;
        else if (*p == '"') quote = !quote;
        else if (!quote && *p == '<') lt = p;
    }
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

/* A recipient argument is an address list, as sendmail and Postfix take
   it: cron passes MAILTO=a@x,b@y as one argument. Its elements, split at
   the commas outside quotes and angle brackets and trimmed, each still
   "Name <addr>" or a local name, into out; empty ones (a trailing comma)
   are skipped, and an argument with none at all is refused. */
static void split_argument(const char *arg, strlist *out) {
    const char *p = arg, *start = arg;
    size_t before = out->n;
    int quote = 0, angle = 0;
    for (;; p++) {
        if (quote && *p == '\\' && p[1]) {
            p++;
            continue;
        }
        if (*p == '"') quote = !quote;
        else if (!quote && *p == '<') angle = 1;
        else if (!quote && *p == '>') angle = 0;
        if (!*p || (*p == ',' && !quote && !angle)) {
            const char *a = start, *z = p;
            while (a < z && (*a == ' ' || *a == '\t')) a++;
            while (z > a && (z[-1] == ' ' || z[-1] == '\t')) z--;
            if (z > a) list_push(out, xstrndup(a, (size_t)(z - a)));
            if (!*p) break;
            start = p + 1;
        }
    }
    if (out->n == before) die(EX_DATAERR, "recipient argument '%s' holds no address", arg);
}

/* Where the line after the line end at k starts (CRLF, LF or a bare CR). */
static size_t next_line(const char *m, size_t n, size_t k) {
    if (k < n && m[k] == '\r') return k + 1 < n && m[k + 1] == '\n' ? k + 2 : k + 1;
    return k < n ? k + 1 : n;
}

/* One header field of msg[0..n) at pos: its name's length, its value
   (from after the colon to the end of its last continuation line, RFC
   5322 2.2.3) and where the line after it starts. 0 when pos starts no
   field: the empty line (blank set) or a line that is none. A name may
   have blanks before its colon (RFC 5322 4.5's obsolete syntax). */
typedef struct field {
    size_t name_len, value, end, next;
    int blank;
} field;

static int next_field(const char *msg, size_t n, size_t pos, field *f) {
    size_t k, name_end, colon;
    memset(f, 0, sizeof *f);
    for (k = pos; k < n && msg[k] != '\n' && msg[k] != '\r'; k++) {}
    if (k == pos) {
        f->blank = 1;
        return 0;
    }
    for (name_end = pos; name_end < k && msg[name_end] != ':'; name_end++)
        if ((unsigned char)msg[name_end] <= ' ' || (unsigned char)msg[name_end] == 0x7F) break;
    for (colon = name_end; colon < k && (msg[colon] == ' ' || msg[colon] == '\t'); colon++) {}
    if (colon == k || msg[colon] != ':' || name_end == pos) return 0;
    f->name_len = name_end - pos;
    f->value = colon + 1;
    f->end = k;
    f->next = next_line(msg, n, k);
    while (f->next < n && (msg[f->next] == ' ' || msg[f->next] == '\t')) {
        for (f->end = f->next; f->end < n && msg[f->end] != '\n' && msg[f->end] != '\r'; f->end++) {}
        f->next = next_line(msg, n, f->end);
    }
    return 1;
}

typedef struct headers {
    int from, date, message_id; /* present */
    char *from_addr;            /* the first From address */
    char *loose;                /* a recipient field's address in words, as written */
    size_t end;                 /* offset where the header section ends */
    int blank;                  /* the section ends with an empty line */
} headers;

/* Walks the header section (up to the first empty line, or the first line
   that is neither a field nor a continuation): with collect (-t) adds the
   recipients of To, Cc and Bcc or, when the message has any Resent-
   field (it is being resent, RFC 5322 3.6.6), those of Resent-To,
   Resent-Cc and Resent-Bcc alone, as sendmail and Postfix do (and in
   h->loose the first of those written in words without <...>); notes From,
   Date and Message-ID; and always cuts every Bcc and Resent-Bcc field out,
   as msmtp does: a blind copy's address must never reach the other
   recipients. A field name may have blanks before its colon (RFC 5322
   4.5's obsolete syntax): "Bcc :" is a Bcc field. With drop_from
   (from_header replace) every From field goes the same way and h->from
   stays 0, so that the sender's is added; h->from_addr still names the
   first one's address, which the envelope may take when nothing else
   gives a sender. */
static void scan_headers(char *msg, size_t *len, strlist *rcpts, int collect, int drop_from,
                         headers *h) {
    size_t pos = 0, n = *len, i;
    strlist plain = { NULL, 0, 0 }, resent = { NULL, 0, 0 };
    char *loose[2] = { NULL, NULL }; /* of To, Cc, Bcc; of their Resent- forms */
    int resending = 0;
    memset(h, 0, sizeof *h);
    while (pos < n) {
        field f;
        size_t fstart = pos, nl;
        const char *name = msg + pos;
        if (!next_field(msg, n, pos, &f)) {
            h->blank = f.blank;
            break;
        }
        nl = f.name_len;
        pos = f.next;
        if (nl > 7 && !strncasecmp(name, "resent-", 7)) resending = 1;
        if (collect && (name_eq(name, nl, "to") || name_eq(name, nl, "cc") || name_eq(name, nl, "bcc")))
            parse_addresses(msg + f.value, f.end - f.value, &plain, &loose[0]);
        if (collect && (name_eq(name, nl, "resent-to") || name_eq(name, nl, "resent-cc") ||
                        name_eq(name, nl, "resent-bcc")))
            parse_addresses(msg + f.value, f.end - f.value, &resent, &loose[1]);
        if (name_eq(name, nl, "date")) h->date = 1;
        if (name_eq(name, nl, "message-id")) h->message_id = 1;
        if (name_eq(name, nl, "from") && !h->from && !h->from_addr) {
            strlist one = { NULL, 0, 0 };
            h->from = !drop_from;
            parse_addresses(msg + f.value, f.end - f.value, &one, NULL);
            if (one.n) h->from_addr = xstrdup(one.v[0]);
            list_free(&one);
        }
        if (name_eq(name, nl, "bcc") || name_eq(name, nl, "resent-bcc") ||
            (drop_from && name_eq(name, nl, "from"))) {
            /* The field goes with its line end. But a bare CR before it
               and an LF after it would meet as one CRLF, and a line (the
               empty one that ends the section, say) would be lost: then
               the CR goes and the field's own line end stays. */
            size_t from = fstart, to = pos;
            if (fstart > 0 && msg[fstart - 1] == '\r' && pos < n && msg[pos] == '\n') {
                from = fstart - 1;
                to = f.end;
            }
            memmove(msg + from, msg + to, n - to);
            n -= to - from;
            pos = from == fstart ? from : next_line(msg, n, from);
        }
    }
    h->end = pos;
    *len = n;
    {
        strlist *use = resending ? &resent : &plain;
        for (i = 0; i < use->n; i++) list_add_unique(rcpts, use->v[i]);
        free(use->v);
        list_free(resending ? &plain : &resent);
        h->loose = loose[resending];
        free(loose[!resending]);
    }
}

/* ---- local names: aliases(5) and the domain ----------------------------- */

typedef struct alias {
    char *name;
    strlist to;
    char where[320];
    unsigned seen;    /* the expansion that last went through it */
    int active;       /* on the path being expanded */
} alias;

static alias *aliastab;
static size_t naliases;
static unsigned expansion; /* counts the expansions of expand_local */

/* One complete entry, "name: a, b, c", into aliastab. */
static void alias_add(char *entry, const char *where) {
    char *colon = strchr(entry, ':'), *p, *e;
    alias *na;
    if (!colon) {
        free(entry);
        die(EX_CONFIG, "%s: want 'name: address, ...'", where);
    }
    for (e = colon; e > entry && (e[-1] == ' ' || e[-1] == '\t'); e--) {}
    na = (alias *)realloc(aliastab, (naliases + 1) * sizeof *na);
    if (!na) die(EX_SOFTWARE, "out of memory");
    aliastab = na;
    memset(&aliastab[naliases], 0, sizeof aliastab[naliases]);
    aliastab[naliases].name = xstrndup(entry, (size_t)(e - entry));
    snprintf(aliastab[naliases].where, sizeof aliastab[naliases].where, "%s", where);
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
}

/* name: a, b, c   with continuation lines that start with a space or tab;
   '#' comments. Pipes, files and :include: are kept and refused if used.
   Nothing is read past len. */
static void parse_aliases(const char *text, size_t len, const char *path) {
    char line[MAX_CONF_LINE + 1], *entry = NULL, where[320] = "", entry_where[320] = "";
    size_t elen = 0, pos = 0;
    unsigned long lineno = 0;
    for (;;) {
        size_t n;
        int more = pos < len, cont;
        if (more) {
            const char *lf = (const char *)memchr(text + pos, '\n', len - pos);
            size_t k = lf ? (size_t)(lf - (text + pos)) : len - pos;
            snprintf(where, sizeof where, "%s:%lu", path, ++lineno);
            if (k > MAX_CONF_LINE || memchr(text + pos, 0, k)) { /* refused below */
                free(entry);
                entry = NULL;
            }
            (void)next_conf_line(text, len, &pos, line, where);
            n = strlen(line);
            while (n && line[n - 1] == '\r') line[--n] = 0;
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
        }
        if (entry) { /* the previous entry is complete */
            alias_add(entry, entry_where);
            entry = NULL;
        }
        if (!more) break;
        n = strlen(line);
        while (n && (line[n - 1] == ' ' || line[n - 1] == '\t')) line[--n] = 0;
        if (!n || line[0] == ' ' || line[0] == '\t') continue;
        entry = xstrdup(line);
        elen = n;
        snprintf(entry_where, sizeof entry_where, "%s", where);
    }
}

static void load_aliases(const setting *s) {
    size_t len = 0;
    unsigned mode;
    int readable;
    char *text = read_text_file(s->value, "aliases", &len, &readable, &mode);
    if (!text) die(EX_CONFIG, "aliases %s: %s (%s)", s->value, strerror(errno), s->source);
    parse_aliases(text, len, s->value);
    free(text);
}

static alias *find_alias(const char *name) {
    size_t i;
    for (i = 0; i < naliases; i++)
        if (!strcasecmp(aliastab[i].name, name)) return &aliastab[i];
    return NULL;
}

/* An address an alias gave: one the aliases file got wrong is the
   configuration's fault (78, the entry named), not the caller's. */
static void add_alias_target(char *addr, strlist *out, const alias *from) {
    if (from && tlsmail_check_address(addr) != 0) {
        char bad[320];
        snprintf(bad, sizeof bad, "%s", addr);
        free(addr);
        die(EX_CONFIG, "alias %s (%s): '%s' is not a valid address", from->name, from->where, bad);
    }
    list_add_unique(out, addr);
}

/* A local name no alias maps (or one an alias marked final): at the
   configured domain, else an error before any connection. */
static void qualify_local(const char *name, strlist *out, const alias *from) {
    const setting *dom = &R.set[K_DOMAIN];
    if (dom->value) {
        size_t n = strlen(name) + strlen(dom->value) + 2;
        char *addr = (char *)xmalloc(n);
        snprintf(addr, n, "%s@%s", name, dom->value);
        add_alias_target(addr, out, from);
        return;
    }
    die(EX_CONFIG, "recipient '%s' has no domain and no alias: set domain or aliases in the "
                   "configuration (see tlsmail-send.conf(5))", name);
}

/* A recipient without '@': its aliases (nested ones too), else the
   configured domain, else an error before any connection: a bare local
   part is never sent. Each alias is expanded once per recipient, so an
   aliases file whose entries name each other many times over costs one
   pass over it, not one per path through it; one met again on its own
   path (a loop, "root: root" the shortest) ends the chain there. A target
   written "\\name" (aliases(5): root: \\root, ops@...) is final: no alias
   is looked up for it. from: the alias that gave name, or NULL. */
static void expand_local_in(const char *name, strlist *out, int depth, const alias *from) {
    alias *a = find_alias(name);
    size_t i;
    if (!a && depth == 0 && strcasecmp(name, "default")) a = find_alias("default");
    if (a && a->seen == expansion && !a->active) return; /* its addresses are in out already */
    if (a && depth < MAX_ALIAS_DEPTH && !a->active) {
        a->seen = expansion;
        a->active = 1;
        for (i = 0; i < a->to.n; i++) {
            const char *t = a->to.v[i];
            if (t[0] == '|' || t[0] == '/' || !strncasecmp(t, ":include:", 9))
                die(EX_CONFIG, "alias %s (%s): pipes, files and :include: are not supported", a->name,
                    a->where);
            if (t[0] == '\\') {
                if (!t[1]) die(EX_CONFIG, "alias %s (%s): a lone '\\' names nobody", a->name, a->where);
                if (strchr(t + 1, '@')) add_alias_target(split_mailbox(t + 1, NULL), out, a);
                else qualify_local(t + 1, out, a);
            } else if (strchr(t, '@')) {
                add_alias_target(split_mailbox(t, NULL), out, a);
            } else {
                expand_local_in(t, out, depth + 1, a);
            }
        }
        a->active = 0;
        return;
    }
    qualify_local(name, out, from);
}

static void expand_local(const char *name, strlist *out) {
    expansion++;
    expand_local_in(name, out, 0, NULL);
}

static void machine_name(char *out, size_t cap);

/* The local part of a recipient at this machine (localhost, or its own
   host name: fail2ban's default root@localhost, mutt's root@HOST), which
   the aliases and domain then settle as they do "root": at the server,
   localhost would be the server's own, written into buf. NULL: any other
   address (or a local part too long for buf, which the check of every
   recipient then refuses). On the stack: expand_local may end the run. */
static const char *local_recipient(const char *addr, char *buf, size_t cap) {
    static char host[256]; /* asked once a run, not once a recipient */
    const char *at = strrchr(addr, '@');
    if (!at || at == addr || addr[0] == '"' || (size_t)(at - addr) >= cap) return NULL;
    if (!host[0]) machine_name(host, sizeof host);
    if (strcasecmp(at + 1, "localhost") && strcasecmp(at + 1, "localhost.localdomain") &&
        (!strcmp(host, "-") || strcasecmp(at + 1, host)))
        return NULL;
    memcpy(buf, addr, (size_t)(at - addr));
    buf[at - addr] = 0;
    return buf;
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

/* The fields whose addresses people read and answer. In mail a program
   on this machine submits, Postfix (append_at_myorigin) and sendmail give
   a name without a domain in these the local domain: cron's "From: root
   (Cron Daemon)" and "To: root" would otherwise reach the world as
   addresses that lead nowhere. Bcc and Resent-Bcc are gone by now. */
static const char *const address_fields[] = {
    "from", "sender", "reply-to", "to", "cc", "resent-from", "resent-sender", "resent-reply-to",
    "resent-to", "resent-cc", "mail-followup-to", "mail-reply-to", "errors-to",
    "return-receipt-to", "disposition-notification-to", NULL
};

typedef struct bare_names {
    const char *domain;
    size_t base;        /* the offset in R.msg of the value being walked */
    size_t *at, n, cap; /* where "@domain" goes, offsets in R.msg, ascending */
} bare_names;

/* An address of one word without '@' that is valid at the domain: a
   display name written without <...> ("John Smith") is no address, and
   is left as it is. */
static void note_bare(void *ctx, const char *addr, size_t len, size_t from, size_t at, int words) {
    bare_names *b = (bare_names *)ctx;
    char full[330];
    (void)from;
    if (words != 1 || memchr(addr, '@', len) || len + strlen(b->domain) + 2 > sizeof full) return;
    snprintf(full, sizeof full, "%.*s@%s", (int)len, addr, b->domain);
    if (tlsmail_check_address(full) != 0) return;
    if (b->n == b->cap) {
        size_t *more = (size_t *)realloc(b->at, (b->cap ? b->cap * 2 : 8) * sizeof *b->at);
        if (!more) die(EX_SOFTWARE, "out of memory");
        b->cap = b->cap ? b->cap * 2 : 8;
        b->at = more;
    }
    b->at[b->n++] = b->base + at;
}

/* The longest line of R.msg[from..to) once add octets go in at each of
   the n offsets at. */
static size_t longest_line_with(size_t from, size_t to, const size_t *at, size_t n, size_t add) {
    size_t k, j = 0, col = 0, most = 0;
    for (k = from; k <= to; k++) {
        for (; j < n && at[j] == k; j++) col += add;
        if (col > most) most = col;
        if (k < to) col = R.msg[k] == '\n' || R.msg[k] == '\r' ? 0 : col + 1;
    }
    return most;
}

/* With a domain set, every address without one in the address fields
   (address_fields) gets it, as the envelope's local names do: after -t
   has read the recipients, which go through the aliases as they were
   written. A field whose line would grow past 998 octets is left as it
   is. h->end moves with the header section's end. */
static void qualify_headers(headers *h) {
    bare_names b;
    field f;
    size_t pos, dl, j, from, o, total;
    char *out;
    if (!R.set[K_DOMAIN].value) return;
    memset(&b, 0, sizeof b);
    b.domain = R.set[K_DOMAIN].value;
    dl = strlen(b.domain);
    for (pos = 0; pos < h->end && next_field(R.msg, h->end, pos, &f); pos = f.next) {
        size_t i, first = b.n;
        for (i = 0; address_fields[i] && !name_eq(R.msg + pos, f.name_len, address_fields[i]); i++) {}
        if (!address_fields[i]) continue;
        b.base = f.value;
        walk_addresses(R.msg + f.value, f.end - f.value, note_bare, &b);
        if (b.n > first && longest_line_with(pos, f.next, b.at + first, b.n - first, dl + 1) > 998) {
            if (R.verbose)
                fprintf(stderr, "* %.*s: addresses left without @%s: the line would be over 998 octets\n",
                        (int)f.name_len, R.msg + pos, b.domain);
            b.n = first;
        }
    }
    if (!b.n) {
        free(b.at);
        return;
    }
    total = R.len + b.n * (dl + 1);
    out = (char *)xmalloc((total > R.msg_cap ? total : R.msg_cap) + 1);
    for (j = 0, from = 0, o = 0; j < b.n; from = b.at[j++]) {
        memcpy(out + o, R.msg + from, b.at[j] - from);
        o += b.at[j] - from;
        out[o] = '@';
        memcpy(out + o + 1, b.domain, dl);
        o += dl + 1;
    }
    memcpy(out + o, R.msg + from, R.len - from);
    out[total] = 0;
    free(b.at);
    free(R.msg);
    R.msg = out;
    h->end += total - R.len;
    R.len = total;
}

/* ---- preparing the message ---------------------------------------------- */

static void choose_sender(const headers *h) {
    const setting *from = &R.set[K_FROM];
    char what[360];
    if (from->value) {
        R.from = split_mailbox(from->value, &R.display); /* its name, unless -F or from_name */
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
    /* from is a setting: 78 from a file or the environment, 64 from argv;
       -f and the From header are what the caller gave: 65 */
    if (*R.from && tlsmail_check_address(R.from) != 0)
        die(from->value ? config_status(from) : EX_DATAERR, "invalid sender address '%s' (%s)", R.from,
            what);
    /* The display name of an added From: -F, from_name, the name in from. */
    if ((R.opt_fname && *R.opt_fname) || R.set[K_FROM_NAME].value) {
        free(R.display);
        R.display = xstrdup(R.opt_fname && *R.opt_fname ? R.opt_fname : R.set[K_FROM_NAME].value);
    }
}

/* From, Date and Message-ID when the message has none, to go ahead of the
   existing fields (R.added); an empty line too when it had no header
   section. A section that ends at a line that is no field (and no empty
   line) has that line start the body, as sendmail reads it: the empty
   line RFC 5322 2.1 wants goes before it (R.gap), and a field after it,
   a Bcc too, is body text. R.msg stays as it came; the line is put in
   as the message goes out. */
static void add_missing_headers(const headers *h) {
    char date[32], id[300], *mailbox = NULL, *out, *p;
    size_t need = 0, flen = 0, n;
    int blank = h->end == 0 && !h->blank;
    if (h->end > 0 && !h->blank && h->end < R.len) R.gap = h->end;
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
        if (tlsmail_format_mailbox(mailbox, NULL, 0, &flen) != 0) {
            free(mailbox);
            die(EX_DATAERR, "cannot write a From header for '%s'", R.from);
        }
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
    strlist to = { NULL, 0, 0 }, given = { NULL, 0, 0 };
    int err;
    if (!R.recipients.n) usage_error("no recipients");
    n = strlen(R.from) + (R.display ? strlen(R.display) : 0) + 4;
    mailbox = (char *)xmalloc(n);
    if (R.display) snprintf(mailbox, n, "%s <%s>", R.display, R.from);
    else snprintf(mailbox, n, "%s", R.from);
    for (i = 0; i < R.recipients.n; i++) split_argument(R.recipients.v[i], &given);
    for (i = 0; i < given.n; i++) { /* To: as given; a local name: its addresses */
        const char *r = given.v[i];
        char buf[320];
        const char *local = local_recipient(r, buf, sizeof buf);
        if (local) expand_local(local, &to);
        else if (strchr(r, '@')) list_push(&to, xstrdup(r));
        else expand_local(r, &to);
    }
    list_free(&given);
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
   longer) into R.msg, and whether that is all. The room grows with what
   comes: a 2 KB report costs 16 KB, not the window; a message that
   streams has the whole window, which stream_rest reads into. */
static void read_window(void) {
    long r = 1;
    R.len = 0;
    for (;;) {
        if (R.len == R.msg_cap) {
            char *more;
            if (R.msg_cap == WINDOW) break;
            R.msg_cap = R.msg_cap ? (R.msg_cap * 4 < WINDOW ? R.msg_cap * 4 : WINDOW) : 16384;
            if ((more = (char *)realloc(R.msg, R.msg_cap + 1)) == NULL) die(EX_SOFTWARE, "out of memory");
            R.msg = more;
        }
        if ((r = read_fd(R.msg_fd, R.msg + R.len, R.msg_cap - R.len)) == 0) break;
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die(EX_NOINPUT, "cannot read the message from %s: %s", R.msg_name, strerror(errno));
        R.len += (size_t)r;
    }
    R.msg_eof = r == 0; /* a message of exactly WINDOW octets streams: no harm */
    R.msg[R.len] = 0;
    R.input = R.len;
}

#ifdef _WIN32
static void spool_rest(void) {} /* a pipe streams, within max_time */
#else
/* The rest of a message on a pipe, past the window, into a file of its
   own (unlinked at once, mode 0600), read to its end before connecting:
   cron starts its mailer at a job's first output and pipes the rest as the
   job makes it, and a job still writing when max_time ended a streamed
   send lost its mail and died of SIGPIPE. The message is then sent from
   that file like one given as a file, in the same memory. Without a
   place to write (TMPDIR, else /tmp) the pipe streams as before. */
static void spool_rest(void) {
    const char *dir = getenv("TMPDIR");
    char path[4096], buf[65536];
    struct stat st;
    unsigned long long total = R.len;
    int fd;
    long r;
    if (fstat(R.msg_fd, &st) == 0 && S_ISREG(st.st_mode)) return;
    if (!dir || !*dir || strlen(dir) > sizeof path - 32) dir = "/tmp";
    snprintf(path, sizeof path, "%s/tlsmail-send.XXXXXX", dir);
    if ((fd = mkstemp(path)) < 0) return;
    (void)unlink(path);
    while ((r = read_fd(R.msg_fd, buf, sizeof buf)) != 0) {
        long off = 0, w;
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die(EX_NOINPUT, "cannot read the message from %s: %s", R.msg_name, strerror(errno));
        if ((total += (unsigned long long)r) > MAX_MESSAGE)
            die(EX_DATAERR, "the message is larger than 64 MiB: nothing was delivered");
        while (off < r)
            if ((w = (long)write(fd, buf + off, (size_t)(r - off))) > 0) off += w;
            else if (w < 0 && errno != EINTR)
                die(EX_TEMPFAIL, "cannot keep the message in %s while it is read: %s; nothing was "
                                 "delivered", dir, strerror(errno));
    }
    if (lseek(fd, 0, SEEK_SET) != 0 || dup2(fd, R.msg_fd) < 0)
        die(EX_TEMPFAIL, "cannot read back the message kept in %s: %s; nothing was delivered", dir,
            strerror(errno));
    close(fd);
}
#endif

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

/* The recipients: the headers' (R.found, -t or --batch), then argv's
   (each argument an address list), "Name <addr>" taken as addr, local
   names expanded; each one checked. */
static void collect_recipients(void) {
    size_t i, first = R.found.n;
    for (i = 0; i < R.recipients.n; i++) split_argument(R.recipients.v[i], &R.found);
    for (i = first; i < R.found.n; i++) {
        char *addr = split_mailbox(R.found.v[i], NULL);
        free(R.found.v[i]);
        R.found.v[i] = addr;
    }
    for (i = 0; i < R.found.n; i++) {
        char buf[320];
        const char *local = local_recipient(R.found.v[i], buf, sizeof buf);
        if (local) expand_local(local, &R.rcpts);
        else if (strchr(R.found.v[i], '@') || !*R.found.v[i]) list_add_unique(&R.rcpts, xstrdup(R.found.v[i]));
        else expand_local(R.found.v[i], &R.rcpts);
    }
    list_free(&R.found);
    if (!R.rcpts.n) {
        if (R.msgfiles.n) usage_error("no recipients in To, Cc, Bcc or on the command line");
        usage_error(R.tflag ? "no recipients on the command line or in To, Cc, Bcc" : "no recipients");
    }
    for (i = 0; i < R.rcpts.n; i++)
        if (tlsmail_check_address(R.rcpts.v[i]) != 0)
            die(EX_DATAERR, "invalid recipient address '%s'", R.rcpts.v[i]);
}

/* formail, git format-patch and mbox files start a message with an mbox
   "From " line, which is no header field: left in, it would end the
   header section at once and make every field body text. Postfix's
   sendmail drops it; so does this, the first line only. The lines keep
   their input numbers (line_base counts it). */
static void skip_mbox_from(void) {
    size_t k, next;
    if (R.len < 5 || memcmp(R.msg, "From ", 5) != 0) return;
    for (k = 5; k < R.len && R.msg[k] != '\n' && R.msg[k] != '\r'; k++) {}
    next = next_line(R.msg, R.len, k);
    memmove(R.msg, R.msg + next, R.len - next);
    R.len -= next;
    R.msg[R.len] = 0;
}

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF. */
static int is_utf8(const unsigned char *p, size_t n) {
    size_t i = 0, j, k;
    while (i < n) {
        unsigned c = p[i];
        unsigned long v, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) k = 1, v = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF) k = 2, v = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) k = 3, v = c & 0x07, min = 0x10000;
        else return 0;
        if (n - i <= k) return 0;
        for (j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) return 0;
            v = v << 6 | (p[i + j] & 0x3Fu);
        }
        if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
        i += k + 1;
    }
    return 1;
}

/* The first token of a MIME field value (a type, an encoding), blanks,
   folds and comments before it skipped, into tok; its end in *end. */
static void mime_token(const char *v, const char *z, char *tok, size_t cap, const char **end) {
    size_t n = 0;
    int depth = 0;
    for (; v < z; v++) {
        if (depth) {
            if (*v == '\\' && v + 1 < z) v++;
            else if (*v == '(') depth++;
            else if (*v == ')') depth--;
        } else if (*v == '(') {
            depth = 1;
        } else if (*v != ' ' && *v != '\t' && *v != '\r' && *v != '\n') {
            break;
        }
    }
    for (; v < z && (unsigned char)*v > ' ' && !strchr("()<>@,;:\\\"/[]?=", *v); v++)
        if (n + 1 < cap) tok[n++] = *v >= 'A' && *v <= 'Z' ? (char)(*v - 'A' + 'a') : *v;
    tok[n] = 0;
    *end = v;
}

/* long_lines encode: a message read whole whose body has a line over 998
   octets goes out with that body as quoted-printable, so the text arrives
   as it was written where it would otherwise not be sent at all (a cron
   job's output is mailed once, or lost). Only when that changes nothing
   else: a single text part (the parts inside a multipart or a message
   part have headers of their own, which this does not rewrite), in 7bit or 8bit
   (base64 and quoted-printable bodies have no long lines to fix; binary
   is for servers that take it raw, and anything else is not known). The
   header gets the encoding, MIME-Version and, if it had none, a
   Content-Type with the body's charset; every other field stays. h is
   updated to the new message. NULL when done, else why not. */
static const char *encode_long_lines(headers *h) {
    const char *v = R.set[K_LONG_LINES].value;
    size_t pos, body, need, qplen, n;
    field f;
    int ctype = 0, mime = 0, cte = 0;
    linecheck lc;
    char *out, *p;
    const char *charset = NULL;
    if (v && !strcmp(v, "refuse")) return ""; /* the caller says nothing more */
    if (!R.msg_eof) return PAST_WINDOW;
    memset(&lc, 0, sizeof lc);
    if (linecheck_feed(&lc, R.msg, h->end)) return "the long line is in the header";
    /* scan_headers ended the section at the first line that is no field */
    for (pos = 0; pos < h->end && next_field(R.msg, h->end, pos, &f); pos = f.next) {
        char tok[40];
        const char *te, *fend = R.msg + f.end;
        if (name_eq(R.msg + pos, f.name_len, "mime-version")) mime = 1;
        if (name_eq(R.msg + pos, f.name_len, "content-type")) {
            if (ctype++) return "it has two Content-Type fields";
            mime_token(R.msg + f.value, fend, tok, sizeof tok, &te);
            if (!strcmp(tok, "multipart")) return "it is multipart";
            if (!strcmp(tok, "message")) return "it is a message/* part";
            if (strcmp(tok, "text") || te == fend || *te != '/') return "its Content-Type is not text/*";
        }
        if (name_eq(R.msg + pos, f.name_len, "content-transfer-encoding")) {
            if (cte++) return "it has two Content-Transfer-Encoding fields";
            mime_token(R.msg + f.value, fend, tok, sizeof tok, &te);
            if (!strcmp(tok, "base64")) return "it is base64 already";
            if (!strcmp(tok, "quoted-printable")) return "it is quoted-printable already";
            if (strcmp(tok, "7bit") && strcmp(tok, "8bit")) return "its Content-Transfer-Encoding is not 7bit or 8bit";
        }
    }
    body = h->blank ? next_line(R.msg, R.len, h->end) : h->end;
    /* A long line that is gone (a Bcc field, the mbox "From " line) was a
       header line: refused as one, the body is not touched for it. */
    memset(&lc, 0, sizeof lc);
    if (!linecheck_feed(&lc, R.msg + body, R.len - body)) return "the long line is in the header";
    if (!ctype) {
        const unsigned char *b = (const unsigned char *)R.msg + body;
        charset = !find_8bit(R.msg + body, R.len - body) ? "us-ascii"
                  : is_utf8(b, R.len - body)             ? "utf-8"
                                                         : "unknown-8bit"; /* RFC 1428 */
    }
    if (tlsmail_encode_qp(R.msg + body, R.len - body, NULL, 0, &qplen) != 0)
        die(EX_SOFTWARE, "quoted-printable: the message is too large");
    need = h->end + sizeof "Content-Transfer-Encoding: quoted-printable\r\n" +
           sizeof "MIME-Version: 1.0\r\n" + sizeof "Content-Type: text/plain; charset=unknown-8bit\r\n" +
           2 + qplen;
    out = p = (char *)xmalloc(need + 1);
    for (pos = 0; pos < h->end && next_field(R.msg, h->end, pos, &f); pos = f.next) {
        if (name_eq(R.msg + pos, f.name_len, "content-transfer-encoding")) continue; /* the old encoding */
        memcpy(p, R.msg + pos, f.next - pos);
        p += f.next - pos;
    }
    p += sprintf(p, "Content-Transfer-Encoding: quoted-printable\r\n");
    if (!mime) p += sprintf(p, "MIME-Version: 1.0\r\n");
    if (charset) p += sprintf(p, "Content-Type: text/plain; charset=%s\r\n", charset);
    h->end = (size_t)(p - out);
    h->blank = 1;
    p += sprintf(p, "\r\n");
    if (tlsmail_encode_qp(R.msg + body, R.len - body, p, need + 1 - (size_t)(p - out), &n) != 0)
        die(EX_SOFTWARE, "quoted-printable: the size query was wrong");
    p += n;
    *p = 0;
    free(R.msg);
    R.msg = out;
    R.len = (size_t)(p - out);
    /* read_window's room, which it must not take for more than a window */
    R.msg_cap = need < WINDOW ? need : WINDOW;
    return NULL;
}

/* One line of the header section, [at, end) without its line end, with
   a line end put before a space or tab wherever it runs past 998 octets
   (RFC 5322 2.2.3: unfolded, the field is as it was), into dst (NULL:
   only counted); eol is the line's own line end. A line that can't be
   brought within 998 octets so (a run with no space or tab) is left as it
   is, to be refused as it stands. The octets written. */
/* Where a line at p longer than 998 octets folds: its last space or tab
   within them, past its first two octets; NULL when it has none. */
static const char *fold_point(const char *p) {
    const char *w = p + 998;
    while (w > p + 1 && *w != ' ' && *w != '\t') w--;
    return w > p + 1 ? w : NULL;
}

static size_t fold_line(const char *at, const char *end, const char *eol, char *dst) {
    size_t out = 0, e = strlen(eol);
    const char *p = at, *w;
    while ((size_t)(end - p) > 998) { /* can it be folded all the way? */
        if (!(p = fold_point(p))) {
            if (dst) memcpy(dst, at, (size_t)(end - at));
            return (size_t)(end - at);
        }
    }
    while ((size_t)(end - at) > 998) {
        w = fold_point(at);
        if (dst) {
            memcpy(dst + out, at, (size_t)(w - at));
            memcpy(dst + out + (size_t)(w - at), eol, e);
        }
        out += (size_t)(w - at) + e;
        at = w;
    }
    if (dst) memcpy(dst + out, at, (size_t)(end - at));
    return out + (size_t)(end - at);
}

/* The header section's lines over 998 octets folded: PHP's mail() puts
   fifty recipients on one To line, cron a long command line into its
   Subject, and both were refused (65), the mail lost. Header lines are
   the field and continuation lines before the first that is neither (an
   mbox "From " line first is kept as it is); a line with no space or tab
   to fold at stays long, to be refused. R.msg is the window: the whole
   message, or its first 256 KiB when it goes on. */
static void fold_header_lines(void) {
    char *out = NULL;
    int pass;
    size_t len = 0;
    for (pass = 0; pass < 2; pass++) {
        const char *p = R.msg, *end = R.msg + R.len;
        size_t n = 0;
        int first = 1;
        while (p < end) {
            const char *le = p, *eol;
            size_t k = 0;
            while (le < end && *le != '\n' && *le != '\r') le++;
            eol = le + 1 < end && le[0] == '\r' && le[1] == '\n' ? "\r\n" : le < end && *le == '\r' ? "\r" : "\n";
            if (!(first && le - p >= 5 && !memcmp(p, "From ", 5))) {
                while (p + k < le && (unsigned char)p[k] > ' ' && p[k] != ':' && p[k] != 0x7F) k++;
                if (le == p || (!(p[0] == ' ' || p[0] == '\t') && (k == 0 || p + k == le || p[k] != ':')))
                    break; /* the empty line, or the body's first: no more header */
            }
            first = 0;
            n += fold_line(p, le, eol, out ? out + n : NULL);
            p = le < end ? le + strlen(eol) : le;
            if (le < end) {
                if (out) memcpy(out + n, eol, strlen(eol));
                n += strlen(eol);
            }
        }
        if (out) {
            memcpy(out + n, p, (size_t)(end - p));
            len = n + (size_t)(end - p);
        } else {
            if (n + (size_t)(end - p) == R.len) return; /* nothing to fold */
            out = (char *)xmalloc(n + (size_t)(end - p) + 1);
        }
    }
    out[len] = 0;
    free(R.msg);
    R.msg = out;
    R.len = len;
    R.msg_cap = len < WINDOW ? len : WINDOW; /* as encode_long_lines leaves it */
}

/* The message's first window (R.msg, R.len) read: its lines and header
   checked, Bcc cut out, the sender chosen, the missing headers made, the
   recipients found. */
static void process_window(void) {
    const setting *add = &R.set[K_ADD_MISSING_HEADERS];
    const char *fh = R.set[K_FROM_HEADER].value;
    int replace_from = fh && !strcmp(fh, "replace");
    unsigned long line;
    headers h;
    memset(&message_lines, 0, sizeof message_lines);
    line = linecheck_feed(&message_lines, R.msg, R.len);
    /* header lines fold in the window, whatever comes after it: PHP's
       mail() to 50 recipients with a 300 KB attachment */
    if (line && !(R.set[K_LONG_LINES].value && !strcmp(R.set[K_LONG_LINES].value, "refuse"))) {
        fold_header_lines();
        memset(&message_lines, 0, sizeof message_lines);
        line = linecheck_feed(&message_lines, R.msg, R.len);
    }
    if (line && !R.msg_eof) die(EX_DATAERR, LONG_LINE, line, not_encoded(PAST_WINDOW));
    skip_mbox_from();
    scan_headers(R.msg, &R.len, &R.found, R.tflag || R.msgfiles.n, replace_from, &h);
    R.from_header = h.from_addr;
    if (h.loose) { /* "To: John Smith": not a mail to JohnSmith */
        char as_written[200];
        snprintf(as_written, sizeof as_written, "%s", h.loose);
        free(h.loose);
        die(EX_DATAERR, "'%s' in the header is no address: a name goes with its address in <...>, as "
                        "\"%s <user@example.org>\"", as_written, as_written);
    }
    if (!headers_complete(&h))
        die(EX_DATAERR, "the header section is longer than %u KiB", WINDOW / 1024);
    qualify_headers(&h);
    if (line) {
        const char *why = encode_long_lines(&h);
        if (why) die(EX_DATAERR, LONG_LINE, line, not_encoded(why));
        if (R.verbose) fprintf(stderr, "* line %lu is over 998 octets: the body goes as quoted-printable\n", line);
    }
    R.head8 = find_8bit(R.msg, h.end) != NULL;
    R.body8 = find_8bit(R.msg, R.len) != NULL;
    if (R.body8 && R.mopts.body == TLSMAIL_BODY_7BIT) die(EX_DATAERR, NOT_7BIT);
    choose_sender(&h);
    if (!add->value || parse_bool(add->value)) {
        add_missing_headers(&h);
    } else if (replace_from) { /* the From was dropped: one must go back, if nothing else */
        headers only_from = h;
        only_from.date = only_from.message_id = 1;
        add_missing_headers(&only_from);
    }
    collect_recipients();
}

/* More recipients than one transaction takes (TLSMAIL_RCPT_MAX, 100): the
   library sends the message once for each group of them, so it needs it
   whole, whatever its size (up to 64 MiB); a streamed message goes only
   once. What comes after the window is checked as stream_rest checks it. */
static void read_rest(void) {
    size_t cap = R.msg_cap; /* R.msg holds cap + 1 octets */
    unsigned long line;
    long r;
    for (;;) {
        /* the window may have grown past its room: folded or qualified
           header lines */
        if (R.len >= cap) {
            char *more;
            cap = cap * 2 > MAX_MESSAGE + 1 ? MAX_MESSAGE + 1 : cap * 2;
            if (cap <= R.len) cap = R.len + WINDOW;
            if ((more = (char *)realloc(R.msg, cap + 1)) == NULL) die(EX_SOFTWARE, "out of memory");
            R.msg = more;
        }
        if ((r = read_fd(R.msg_fd, R.msg + R.len, cap - R.len)) == 0) break;
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die(EX_NOINPUT, "cannot read the message from %s: %s", R.msg_name, strerror(errno));
        if ((line = linecheck_feed(&message_lines, R.msg + R.len, (size_t)r)) != 0)
            die(EX_DATAERR, LONG_LINE, line, not_encoded(PAST_WINDOW));
        R.len += (size_t)r;
        R.input += (unsigned long long)r;
        if (R.input > MAX_MESSAGE) die(EX_DATAERR, "the message is larger than 64 MiB");
    }
    R.msg[R.len] = 0;
    R.msg_eof = 1;
    R.body8 = find_8bit(R.msg, R.len) != NULL;
    if (R.body8 && R.mopts.body == TLSMAIL_BODY_7BIT) die(EX_DATAERR, NOT_7BIT);
}

static void prepare_message(void) {
    if (R.subject) { /* the composer needs the whole text */
        R.msg = read_all(stdin, MAX_MESSAGE, &R.len);
        if (!R.msg) die(EX_DATAERR, "the message is larger than 64 MiB");
        R.msg_eof = 1;
        R.input = R.len;
    } else {
        read_window();
        if (!R.msg_eof) spool_rest();
        if (!R.msg_eof) check_size_first();
    }
    if (R.set[K_ALIASES].value && !R.aliases_loaded) {
        load_aliases(&R.set[K_ALIASES]);
        R.aliases_loaded = 1;
    }
    if (R.subject) {
        choose_sender(NULL);
        compose_message();
        collect_recipients();
    } else {
        process_window();
        if (!R.msg_eof && R.rcpts.n > TLSMAIL_RCPT_MAX) read_rest();
    }
    R.sent = R.addlen + R.len + (R.gap ? 2 : 0); /* as far as known: a streamed message grows */
}

/* ---- sending and reporting ---------------------------------------------- */

static void trace(void *ud, int dir, const char *line, size_t len) {
    (void)ud;
    /* whether -N, -R, -V can go: the EHLO reply's "250-DSN", over TLS */
    if (dir == TLSMAIL_TRACE_RECV && len >= 7 && !strncmp(line, "250", 3) &&
        (line[3] == '-' || line[3] == ' ') && !strncasecmp(line + 4, "DSN", 3) &&
        (len == 7 || line[7] == ' '))
        R.server_dsn = 1;
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
    /* Delivered to some recipients only (more than 100 go in several
       transactions, and a later one failed): a retry would send it again
       to those, so never 75. 69 is what every caller of sendmail takes
       as failed for good (Postfix's pipe(8) and Exim bounce it, tell the
       sender; only 75, and Exim's 73, are queued for later): a person
       then resends to the ones named, not a queue to everyone. */
    case TLSMAIL_CLASS_PARTIAL: return EX_UNAVAILABLE;
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
    static char helo[400];
    int stage = tlsmail_stage(&client);
    /* Some servers turn away a client by its EHLO name (Google answers
       "EHLO localhost" with 421 4.7.0 Try again later): only a refusal by
       reply, not a timeout or a lost connection at that stage. */
    if ((err == TLSMAIL_ETRANSIENT || err == TLSMAIL_EPERMANENT) && stage == TLSMAIL_STAGE_HELLO &&
        tlsmail_reply_code(&client) >= 400) {
        snprintf(helo, sizeof helo,
                 " (hint: the server may refuse the EHLO name '%s': set helo to this host's "
                 "name, see tlsmail-send.conf(5))", R.cfg.helo_name ? R.cfg.helo_name : "localhost");
        return helo;
    }
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

/* The log file, to append to; NULL with *why said when it is not to be
   written. Only a file: the CRT's stat tells a device (NUL, CON) or a
   pipe from one. Who may read it is the ACL's say, as for the cache. */
static FILE *open_log(const char *path, const char **why) {
    struct _stat st;
    FILE *f;
    int fd = _open(path, _O_WRONLY | _O_APPEND | _O_CREAT | _O_NOINHERIT, _S_IREAD | _S_IWRITE);
    if (fd < 0) {
        *why = strerror(errno);
        return NULL;
    }
    if (_fstat(fd, &st) != 0 || (st.st_mode & _S_IFMT) != _S_IFREG) {
        (void)_close(fd);
        *why = "not a regular file: not written";
        return NULL;
    }
    if ((f = _fdopen(fd, "a")) == NULL) {
        *why = strerror(errno);
        (void)_close(fd);
    }
    return f;
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

/* The log file, to append to; NULL with *why said when it is not to be
   written. Made mode 0600 whatever the umask (it names who mails whom),
   never through a link, and only a regular file, opened without waiting:
   open(2) of a FIFO without a reader would block after the message went
   out, until max_time ended the run with 75 and the caller sent it
   again. */
static FILE *open_log(const char *path, const char **why) {
    struct stat st;
    FILE *f;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    if (fd < 0) {
        /* ENXIO: a FIFO that nobody reads */
        *why = errno == ELOOP ? "a symbolic link: not written"
               : errno == ENXIO ? "not a regular file: not written" : strerror(errno);
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        *why = "not a regular file: not written";
        return NULL;
    }
    if ((f = fdopen(fd, "a")) == NULL) {
        *why = strerror(errno);
        close(fd);
    }
    return f;
}
#endif

/* src on one line: line ends and other control characters become spaces. */
static void one_line(char *dst, size_t cap, const char *src) {
    size_t i;
    for (i = 0; src[i] && i + 1 < cap; i++)
        dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7F ? ' ' : src[i];
    dst[i] = 0;
}

/* One line per message, as msmtp's logfile: never the secret. queue: the
   server's id for the message, "" when it gave none. */
static void log_result(int rc, const char *result, const char *queue) {
    const setting *lg = &R.set[K_LOG];
    char line[4096], reply[1100], res[1600], qid[TLSMAIL_QUEUE_ID];
    size_t n = 0, i;
    int r;
    if (!lg->value) return;
    if (R.refused) {
        one_line(reply, sizeof reply, R.refused_reply);
    } else {
        char text[1080];
        one_line(text, sizeof text, tlsmail_reply_text(&client));
        snprintf(reply, sizeof reply, "%d %s", tlsmail_reply_code(&client), text);
    }
    one_line(res, sizeof res, result);
    /* the server's word: kept to what an id is made of */
    for (i = 0; queue[i] && i + 1 < sizeof qid; i++)
        qid[i] = (unsigned char)queue[i] > ' ' && (unsigned char)queue[i] < 0x7F && queue[i] != '\'' ? queue[i] : '?';
    qid[i] = 0;
    r = snprintf(line, sizeof line, "account=%s host=%s port=%u from=%s recipients=",
                 R.account.value ? R.account.value : "-", R.host, R.port, R.from ? R.from : "-");
    n = r > 0 ? (size_t)r : 0;
    /* hundreds of recipients must leave room for the status and result */
    for (i = 0; i < R.rcpts.n && n < sizeof line / 2; i++) {
        r = snprintf(line + n, sizeof line - n, "%s%s", i ? "," : "", R.rcpts.v[i]);
        n += r > 0 ? (size_t)r : 0;
    }
    if (i < R.rcpts.n && n < sizeof line) {
        r = snprintf(line + n, sizeof line - n, ",(%lu more)", (unsigned long)(R.rcpts.n - i));
        n += r > 0 ? (size_t)r : 0;
    }
    if (n < sizeof line)
        snprintf(line + n, sizeof line - n, " size=%llu status=%d (%s) result='%s' reply='%s' queue=%s",
                 R.sent, rc, status_name(rc), res, reply, qid[0] ? qid : "-");
    if (!strcmp(lg->value, "syslog")) {
        system_log(rc, line);
    } else {
        const char *why = "";
        FILE *f = open_log(lg->value, &why);
        char stamp[40];
        if (!f) {
            fprintf(stderr, "tlsmail-send: log %s: %s (%s)\n", lg->value, why, lg->source);
            return;
        }
        local_stamp(stamp, sizeof stamp);
        fprintf(f, "%s %s\n", stamp, line);
        if (fclose(f) != 0) fprintf(stderr, "tlsmail-send: log %s: %s\n", lg->value, strerror(errno));
    }
}

static tlsmail_auth make_auth(void) {
    const char *user = R.set[K_USER].value;
    tlsmail_auth a;
    switch (auth_mechanism()) {
    case TLSMAIL_AUTH_PLAIN: return tlsmail_plain_auth("", user, password, R.host);
    case TLSMAIL_AUTH_LOGIN: return tlsmail_login_auth(user, password, R.host);
    case TLSMAIL_AUTH_XOAUTH2: return tlsmail_xoauth2_auth(user, token, R.host);
    case TLSMAIL_AUTH_OAUTHBEARER: return tlsmail_oauthbearer_auth(user, token, R.host);
    case TLSMAIL_AUTH_EXTERNAL: return tlsmail_external_auth(user, R.host); /* user: who to act as */
    default: break;
    }
    /* AUTO: OAUTHBEARER, XOAUTH2 with a token; PLAIN, LOGIN with a password */
    a = tlsmail_auto_auth(user, password[0] ? password : NULL, R.host);
    a.token = token[0] ? token : NULL;
    return a;
}

/* Past max_time the run ends, whatever it waits for (a lookup where the
   library has no threads, a server's close, anything unforeseen): a cron
   job is never held for longer. Once the message is taken (the one
   message of a run; a batch's "sent" lines say which), the status is the
   one the run had come to (0, or 69 when it reached only some recipients,
   EPARTIAL) all the same: a 75 would have the caller send it again.
   run_sent: that status + 1, 0 before. */
static volatile sig_atomic_t run_sent;
static const char sent_text[] = "tlsmail-send: max_time reached after the message was sent\n";
static const char partial_text[] =
    "tlsmail-send: max_time reached after the message was sent to some of its recipients\n";
#ifdef _WIN32
static unsigned __stdcall on_alarm(void *arg) {
    static const char text[] = "tlsmail-send: gave up: max_time reached\n";
    Sleep((DWORD)(size_t)arg);
    if (run_sent) {
        const char *t = run_sent == EX_OK + 1 ? sent_text : partial_text;
        if (_write(2, t, (unsigned)strlen(t)) < 0) {}
        _exit(run_sent - 1);
    }
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
/* Only write(2) here, in a signal handler: what a batch lost is said in
   pieces. */
static void say_raw(const char *text) {
    size_t n = 0;
    while (text[n]) n++;
    if (write(2, text, n) < 0) {}
}

/* The session cache's new file while it is written: a session secret,
   not to be left behind by the watchdog. */
static const char *volatile cache_tmp;

static void on_alarm(int sig) {
    (void)sig;
    if (cache_tmp) (void)unlink(cache_tmp);
    if (run_sent) {
        say_raw(run_sent == EX_OK + 1 ? sent_text : partial_text);
        _exit(run_sent - 1);
    }
    if (R.msgfiles.n && R.msg_name) {
        say_raw("tlsmail-send: gave up: max_time reached while sending ");
        say_raw(R.msg_name);
        say_raw(": it and the files after it are not known to be sent; those on the \"sent\" "
                "lines were\n");
    } else {
        say_raw("tlsmail-send: gave up: max_time reached\n");
    }
    _exit(EX_TEMPFAIL);
}

static void arm_deadline(void) {
    unsigned s = (unsigned)(R.cfg.deadline_ms / 1000) + 2;
    signal(SIGALRM, on_alarm);
    alarm(s);
}

/* A stdout whose reader is gone (--batch | head -1) is a write error to
   handle, not a death without a word or a QUIT. The library sends with
   MSG_NOSIGNAL anyway. */
/* A standard descriptor the caller left closed is /dev/null, write-only:
   else the first file or socket opened takes its number, and -v's
   dialogue or an error written to "stderr" would go into the TLS
   connection. Write-only on 0 too, so that reading the message still
   fails (66) rather than finding an empty one. */
static void platform_init(void) {
    int fd;
    for (fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF && open("/dev/null", O_WRONLY) != fd) _exit(EX_SOFTWARE);
    signal(SIGPIPE, SIG_IGN);
}
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
   write, opened without following a link, and without waiting: open(2)
   of a FIFO would block for a writer before the check could refuse it,
   and max_time's watchdog is not armed yet. */
static int cache_read_file(const char *path, char *buf, size_t cap, size_t *len) {
    struct stat st;
    long r;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
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
        cache_tmp = tmp;
        ssize_t w = 0;
        while (off < n && ((w = write(fd, data + off, n - off)) > 0 || (w < 0 && errno == EINTR)))
            if (w > 0) off += (size_t)w;
        if (fchmod(fd, 0600) != 0 || off != n || close(fd) != 0 || rename(tmp, path) != 0) {
            fprintf(stderr, "tlsmail-send: session cache %s: not written: %s\n", path, strerror(errno));
            unlink(tmp);
        }
    }
    cache_tmp = NULL;
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
    cache_nkeep = 0;
    cache_writable = cache_stale = 0;
    if (R.cache_text) {
        wipe(R.cache_text, strlen(R.cache_text));
        free(R.cache_text);
        R.cache_text = NULL;
    }
    tlsmail_session_clear(&R.session);
}

/* ---- sending: a message whole, streamed, or a batch ---------------------- */

/* The library's error on stderr (after the message file's name in a
   batch; after the address when it was a recipient's), in the log, and as
   the exit status; or, when the envelope named refused recipients, what
   it said. */
static int report(int err) {
    char desc[sizeof R.result + 32];
    int rc = exit_status(err), partial = R.partial;
    const char *qid = tlsmail_queue_id(&client);
    R.partial = 0;
    if (partial) R.refused = 0; /* named already: what counts is the others' fate */
    if (R.refused) {
        rc = R.refused_rc;
    } else if (err) {
        int rcpt = tlsmail_stage(&client) == TLSMAIL_STAGE_RCPT && R.rcpts.n == 1;
        tlsmail_describe(&client, err, desc, sizeof desc);
        fprintf(stderr, "tlsmail-send: %s%s%s%s%s%s\n", R.msgfiles.n ? R.msg_name : "",
                R.msgfiles.n ? ": " : "", rcpt ? R.rcpts.v[0] : "", rcpt ? ": " : "", desc, hint(err));
    } else {
        if (partial)
            snprintf(desc, sizeof desc, "sent to the others; %s", R.result);
        else
            snprintf(desc, sizeof desc, "sent");
        if (R.verbose) {
            fprintf(stderr, "* sent%s%s\n", R.msgfiles.n ? " " : "", R.msgfiles.n ? R.msg_name : "");
            if (*qid) fprintf(stderr, "* queued as %s\n", qid);
        }
    }
    if (R.verbose && R.dsn && !R.server_dsn)
        fprintf(stderr, "* DSN (-N, -R, -V) not sent: the server does not offer DSN\n");
    if (err == TLSMAIL_EPARTIAL) { /* who has it, what stopped the rest, who does not */
        size_t n = strlen(desc);
        snprintf(desc + n, sizeof desc - n, "; %s", R.result);
    }
    /* a partial delivery's queue id is the last message's that was taken */
    log_result(rc, R.refused ? R.result : desc, err && err != TLSMAIL_EPARTIAL ? "" : qid);
    R.refused = 0;
    return rc;
}

static void say_sending(void) {
    if (!R.verbose) return;
    fprintf(stderr, "* %s port %u, %s, %lu recipient(s), %lu%s octets%s\n", R.host, R.port,
            R.starttls ? "STARTTLS" : "implicit TLS", (unsigned long)R.rcpts.n,
            (unsigned long)(R.addlen + R.len + (R.gap ? 2 : 0)), R.msg_eof ? "" : "+",
            R.msg_eof ? "" : " (streamed)");
}

static void say_handshake(void) {
    if (R.verbose && R.cfg.session)
        fprintf(stderr, "* TLS session %s\n", tlsmail_session_resumed(&client) ? "resumed" : "not resumed");
}

/* An address that is not ASCII needs SMTPUTF8 declared at MAIL. */
static int is_8bit(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 1;
    return 0;
}

/* What MAIL declares for the message being sent step by step: -R, -V and
   -B 7BIT as given; SMTPUTF8 for a header or an address that is not
   ASCII; for a message read whole its size and, with 8-bit octets,
   BODY=8BITMIME (one that is not read yet: BODY=8BITMIME when offered). */
static tlsmail_mail_opts mail_opts(void) {
    tlsmail_mail_opts o = R.mopts;
    size_t i;
    o.smtputf8 = R.head8 || is_8bit(R.from);
    for (i = 0; i < R.rcpts.n; i++) o.smtputf8 |= is_8bit(R.rcpts.v[i]);
    if (o.body == TLSMAIL_BODY_AUTO && (R.body8 || R.msg_eof))
        o.body = R.body8 ? TLSMAIL_BODY_8BITMIME : TLSMAIL_BODY_7BIT;
    if (R.msg_eof)
        o.size = tlsmail_message_size(R.added, R.addlen) + tlsmail_message_size(R.msg, R.len) + (R.gap ? 2 : 0);
    return o;
}

/* -N for every recipient: nto entries, or NULL without -N. */
static tlsmail_rcpt_opts *rcpt_opts(void) {
    tlsmail_rcpt_opts *ro;
    size_t i;
    if (!R.notify) return NULL;
    ro = (tlsmail_rcpt_opts *)xmalloc(R.rcpts.n * sizeof *ro);
    for (i = 0; i < R.rcpts.n; i++) {
        ro[i].notify = R.notify;
        ro[i].orcpt = NULL;
    }
    return ro;
}

/* --deliver accepted: the message goes to the recipients the server took. */
static int deliver_accepted(void) {
    const char *deliver = R.set[K_DELIVER].value;
    return deliver && !strcmp(deliver, "accepted");
}

static int name_results(const tlsmail_rcpt_result *res, int err);
static int name_undelivered(const tlsmail_rcpt_result *res, int err);

/* What a message is sent with: MAIL's options, -N for every recipient (*ro,
   to free) and, to several recipients, every one's answer (*res, to free),
   to name each refusal; with --deliver accepted the message goes on to the
   recipients taken. */
static void send_opts(tlsmail_send_opts *so, const tlsmail_mail_opts *mo, tlsmail_rcpt_opts **ro,
                      tlsmail_rcpt_result **res) {
    memset(so, 0, sizeof *so);
    so->mail = mo;
    so->rcpt = *ro = rcpt_opts();
    so->deliver = TLSMAIL_DELIVER_ALL;
    *res = NULL;
    R.refused = 0;
    R.partial = 0;
    if (R.rcpts.n > 1) {
        *res = (tlsmail_rcpt_result *)xmalloc(R.rcpts.n * sizeof **res);
        memset(*res, 0, R.rcpts.n * sizeof **res);
        so->results = *res;
        if (deliver_accepted()) so->deliver = TLSMAIL_DELIVER_ACCEPTED;
    }
}

/* A message that fitted in the window, in one call: connected (after
   open_session, or in a batch), tlsmail_transact on the open client, which
   to several recipients reports each one's answer, named here; else (one
   recipient) the one call, which connects and logs in with a. Both check
   it all before a byte goes out and pipeline what the server allows. */
static int send_whole(const tlsmail_auth *a, int connected) {
    char *m = R.msg;
    size_t n = R.len;
    tlsmail_send_opts so;
    tlsmail_rcpt_opts *ro;
    tlsmail_rcpt_result *res;
    const char *const *to = (const char *const *)R.rcpts.v;
    int err;
    if (R.added || R.gap) {
        m = (char *)xmalloc(R.addlen + R.len + 3);
        if (R.added) memcpy(m, R.added, R.addlen);
        n = R.addlen;
        memcpy(m + n, R.msg, R.gap);
        n += R.gap;
        if (R.gap) {
            memcpy(m + n, "\r\n", 2);
            n += 2;
        }
        memcpy(m + n, R.msg + R.gap, R.len - R.gap);
        n += R.len - R.gap;
    }
    /* -R, -V, -B 7BIT; SIZE=, BODY= and SMTPUTF8 from the message. Not
       connected, there is one recipient (send_and_report). */
    send_opts(&so, &R.mopts, &ro, &res);
    err = connected ? tlsmail_transact(&client, R.from, to, R.rcpts.n, m, n, &so)
                    : tlsmail_client_send_ex(&client, &R.cfg, a, R.from, to, R.rcpts.n, m, n, &so);
    if (res) err = name_results(res, err);
    if (m != R.msg) free(m);
    free(ro);
    free(res);
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
    if (R.msgfiles.n) /* die names the file */
        die(code, "%s: it was not delivered, nor the files after it; those on the \"sent\" lines were",
            what);
    die(code, "%s: nothing was delivered", what);
}

/* The rest of a message file (stdin or --batch) is read a window at a
   time into R.msg, as a pipe is. Mapping it (1 MiB at a time) was tried
   and measured: on Linux 6.18 the mapping's page faults and munmaps, and
   the encoder's first touch of each mapped page, cost more CPU than
   read()'s copy, whose output the encoder then finds in cache (a 50 MB
   message to bench/sink.c, five interleaved runs of 30 to 40 sends each
   way: the client's median CPU 5 to 12% lower read), and the mapped MiB
   was a third of the send's peak RSS. The file's size is taken now: one
   that ends before it has shrunk under us (see read_next). */
static void read_begin(void) {
    struct stat st;
    off_t at = lseek(R.msg_fd, 0, SEEK_CUR);
    R.file_at = R.file_end = 0;
    R.shrank = 0;
    if (at < 0 || fstat(R.msg_fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= at) return;
    R.file_at = (long long)at;
    R.file_end = (long long)st.st_size;
}

/* The next piece of the input, in R.msg: its length, 0 at the end, -1 with
   errno for a read error. A file cut short while it is sent would send a
   cut message, which the server would deliver: its end before the size
   it had is an error (EIO), so the final "." never goes out. Octets
   appended meanwhile are read and sent. */
static long read_next(void) {
    long r = read_fd(R.msg_fd, R.msg, WINDOW);
    if (r > 0) R.file_at += r;
    if (r == 0 && R.file_at < R.file_end) {
        R.shrank = 1;
        errno = EIO;
        return -1;
    }
    return r;
}

/* The rest of the input after the window, a piece at a time: counted, and
   sent to `to`, whose tlsmail_data_write finds a line too long (ELINE)
   as it encodes, and says which, so the lines are not searched twice; to
   = NULL: only checked, here. R.sent grows with it. */
static int stream_rest(tlsmail_client *to) {
    unsigned long line;
    int err;
    if (!R.msg_eof) read_begin();
    while (!R.msg_eof) {
        const char *p = R.msg;
        long r = read_next();
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            const char *why = R.shrank ? "its file shrank while it was sent" : strerror(errno);
            if (!to) die(EX_NOINPUT, "cannot read the message: %s", why);
            abandon(EX_NOINPUT, "cannot read the message from %s: %s", R.msg_name, why);
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
        if (!to && (line = linecheck_feed(&message_lines, p, (size_t)r)) != 0)
            die(EX_DATAERR, LONG_LINE, line, not_encoded(PAST_WINDOW));
        if (R.mopts.body == TLSMAIL_BODY_7BIT && find_8bit(p, (size_t)r)) {
            if (!to) die(EX_DATAERR, NOT_7BIT);
            abandon(EX_DATAERR, NOT_7BIT);
        }
        if (to && (err = tlsmail_data_write(to, p, (size_t)r)) != 0) {
            if (err == TLSMAIL_ELINE)
                abandon(EX_DATAERR, LONG_LINE, (unsigned long)((long)tlsmail_error_line(to) + R.line_base),
                        not_encoded(PAST_WINDOW));
            return err;
        }
        R.sent += (unsigned long long)r;
    }
    return 0;
}

/* The refused recipients of one message, as they are named. */
typedef struct refusals {
    char list[1400]; /* "addr: code text; ..." for the log */
    size_t n;
    int last;        /* the last refusal's error */
} refusals;

/* Recipient i refused (err): named on stderr with desc, counted (R.refused,
   R.refused_rc: 75 only while every refusal is for now), kept for the log. */
static void refusal(refusals *f, size_t i, int err, const char *desc, int code, const char *text) {
    const char *file = R.msgfiles.n ? R.msg_name : "";
    int rc = exit_status(err), k;
    if (!R.refused || (R.refused_rc == EX_TEMPFAIL && rc != EX_TEMPFAIL)) R.refused_rc = rc;
    R.refused++;
    f->last = err;
    fprintf(stderr, "tlsmail-send: %s%s%s: %s\n", file, *file ? ": " : "", R.rcpts.v[i], desc);
    k = snprintf(f->list + f->n, sizeof f->list - f->n, "%s%s: %d %s", f->n ? "; " : "", R.rcpts.v[i],
                 code, text);
    if (k > 0) f->n = (size_t)k < sizeof f->list - f->n ? f->n + (size_t)k : sizeof f->list - 1;
    snprintf(R.refused_reply, sizeof R.refused_reply, "%d %s", code, text);
}

/* Every recipient asked: the log's line (R.result) and what becomes of the
   message. 0 when it goes (went) to the others: deliver accepted and some
   accepted (R.partial); else the last refusal. */
static int refusals_end(const refusals *f) {
    const char *file = R.msgfiles.n ? R.msg_name : "";
    snprintf(R.result, sizeof R.result, "%lu of %lu recipients refused: %s", (unsigned long)R.refused,
             (unsigned long)R.rcpts.n, f->list);
    if (deliver_accepted() && R.refused < R.rcpts.n) {
        fprintf(stderr, "tlsmail-send: %s%s%lu of %lu recipients refused: sending to the others\n", file,
                *file ? ": " : "", (unsigned long)R.refused, (unsigned long)R.rcpts.n);
        R.partial = 1;
        return 0;
    }
    if (R.rcpts.n > 1)
        fprintf(stderr, "tlsmail-send: %s%s%lu of %lu recipients refused: nothing was sent\n", file,
                *file ? ": " : "", (unsigned long)R.refused, (unsigned long)R.rcpts.n);
    return f->last;
}

/* EPARTIAL: the message went to the recipients of the transactions
   before the one that failed (the library sends at most TLSMAIL_RCPT_MAX
   a transaction). Each one who did not get it is named on stderr with its
   reply, or "not tried", and listed for the log (R.result); report()
   says how many did and what stopped the rest. */
static int name_undelivered(const tlsmail_rcpt_result *res, int err) {
    const char *file = R.msgfiles.n ? R.msg_name : "";
    size_t i, n, cut = 0, listed = 0;
    int k;
    k = snprintf(R.result, sizeof R.result, "not delivered to:");
    n = k > 0 ? (size_t)k : 0;
    for (i = 0; i < R.rcpts.n; i++) {
        char desc[1400], brief[300];
        int code = res[i].code;
        if (res[i].delivered) continue;
        if (!code) {
            snprintf(desc, sizeof desc, "not tried");
            snprintf(brief, sizeof brief, "not tried");
        } else if (code == 250 || code == 251) {
            snprintf(desc, sizeof desc, "accepted (%d %s), but its transaction ended without the message",
                     code, res[i].text);
            snprintf(brief, sizeof brief, "%d accepted, not sent", code);
        } else {
            tlsmail_describe_rcpt(&res[i], desc, sizeof desc);
            snprintf(brief, sizeof brief, "%d %s", code, res[i].text);
        }
        fprintf(stderr, "tlsmail-send: %s%s%s: not delivered: %s\n", file, *file ? ": " : "",
                R.rcpts.v[i], desc);
        k = snprintf(R.result + n, sizeof R.result - n, "%s %s: %s", listed ? ";" : "", R.rcpts.v[i], brief);
        if (k > 0 && (size_t)k < sizeof R.result - n - 24) {
            n += (size_t)k;
            listed++;
        } else {
            cut++;
        }
    }
    R.result[n] = 0;
    if (cut) snprintf(R.result + n, sizeof R.result - n, "; %lu more", (unsigned long)cut);
    return err;
}

/* After tlsmail_transact(_begin) to several recipients (err its result):
   each refused recipient named from its answer. Only
   when every RCPT was answered: after a refused MAIL the answers are the
   server's 503s, after a lost connection some never came, and then err
   is what to report. */
static int name_results(const tlsmail_rcpt_result *res, int err) {
    refusals f;
    size_t i, asked;
    int last;
    if (err == TLSMAIL_EPARTIAL) return name_undelivered(res, err);
    if (tlsmail_stage(&client) == TLSMAIL_STAGE_MAIL) return err;
    /* Over 100 recipients, a refusal in a transaction of 100 ends the
       send before the next one is asked: every one asked is named. */
    for (asked = 0; asked < R.rcpts.n && res[asked].code; asked++) continue;
    if (asked < R.rcpts.n && (asked == 0 || asked % TLSMAIL_RCPT_MAX != 0)) return err;
    for (i = asked; i < R.rcpts.n; i++)
        if (res[i].code) return err;
    memset(&f, 0, sizeof f);
    for (i = 0; i < asked; i++) {
        char desc[1400];
        int code = res[i].code;
        if (code == 250 || code == 251) continue;
        tlsmail_describe_rcpt(&res[i], desc, sizeof desc);
        refusal(&f, i, code >= 500 ? TLSMAIL_EPERMANENT : code >= 400 ? TLSMAIL_ETRANSIENT : TLSMAIL_EPROTO,
                desc, code, res[i].text);
    }
    if (!R.refused) return err;
    last = refusals_end(&f);
    return err ? err : last; /* delivered to the others or not: err says how it went */
}

/* One message on a connected client that streams: the envelope as
   tlsmail_transact sends it (MAIL and every RCPT in one write where the
   server pipelines, each refusal named as send_whole names them), DATA,
   then the added headers, the window, the rest as it is read, ".". */
static int transact(void) {
    tlsmail_mail_opts mo = mail_opts();
    tlsmail_send_opts so;
    tlsmail_rcpt_opts *ro;
    tlsmail_rcpt_result *res;
    int err;
    send_opts(&so, &mo, &ro, &res);
    err = tlsmail_transact_begin(&client, R.from, (const char *const *)R.rcpts.v, R.rcpts.n, &so);
    if (res) err = name_results(res, err);
    free(ro);
    free(res);
    if (err) return err;
    /* The library numbers the lines it is given from the first: the added
       headers, then the window as sent, without Bcc, with the empty line
       of R.gap. */
    R.line_base = (long)(message_lines.line - 1) - (long)line_ends(R.added, R.addlen) -
                  (long)line_ends(R.msg, R.len) - (R.gap ? 1 : 0);
    if (R.added && (err = tlsmail_data_write(&client, R.added, R.addlen)) != 0) return err;
    if (R.gap && ((err = tlsmail_data_write(&client, R.msg, R.gap)) != 0 ||
                  (err = tlsmail_data_write(&client, "\r\n", 2)) != 0))
        return err;
    if ((err = tlsmail_data_write(&client, R.msg + R.gap, R.len - R.gap)) != 0) return err;
    if ((err = stream_rest(&client)) != 0) return err;
    return tlsmail_data_end(&client);
}

/* Connect, EHLO, AUTH; the secrets are wiped once they have been used. */
static int open_session(const tlsmail_auth *a) {
    int err = tlsmail_dial(&client, &R.cfg);
    say_handshake();
    if (!err) err = tlsmail_hello(&client);
    if (!err && a) err = tlsmail_authenticate(&client, a);
    wipe_secrets();
    return err;
}

/* One recipient and a message read whole: the one call. Several, and the
   message read whole: tlsmail_transact, MAIL and every RCPT in one write,
   every recipient's answer named (the one call stops at the first
   refusal). A message that streams: step by step. */
static int send_and_report(void) {
    tlsmail_auth a = make_auth();
    const tlsmail_auth *ap = want_auth() ? &a : NULL;
    int err, rc, stepwise = 0;
    say_sending();
    arm_deadline();
    if (R.msg_eof && R.rcpts.n == 1) {
        err = send_whole(ap, 0);
        say_handshake();
    } else if ((err = open_session(ap)) == 0) {
        err = R.msg_eof ? send_whole(NULL, 1) : transact();
        stepwise = 1;
    }
    wipe_secrets();
    run_sent = !err ? EX_OK + 1 : err == TLSMAIL_EPARTIAL ? EX_UNAVAILABLE + 1 : 0;
    /* Before QUIT, whose fate changes nothing once the message is taken:
       the log quotes the reply that took it. */
    rc = report(err);
    if (stepwise && (!err || tlsmail_stage(&client) == TLSMAIL_STAGE_RCPT)) (void)tlsmail_quit(&client);
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
    free(R.from_header);
    R.from = R.display = R.added = R.from_header = NULL;
    R.addlen = R.gap = 0;
    list_free(&R.rcpts);
    list_free(&R.found);
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
    if ((err = open_session(want_auth() ? &a : NULL)) != 0) {
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
        /* the whole message: one round trip (or two) */
        err = R.msg_eof ? send_whole(NULL, 1) : transact();
        r = report(err);
        /* at once: a run cut short by max_time ends in _exit,
           and a caller that lost this line would send the file again. One
           that cannot be written (the reader gone) ends the batch: what
           went out after it could not be told either. */
        if (!err) {
            if (printf("sent %s\n", R.msg_name) < 0 || fflush(stdout) != 0) {
                unsigned long rest = (unsigned long)(R.msgfiles.n - i - 1);
                fprintf(stderr, "tlsmail-send: stdout: %s: %s was sent, its \"sent\" line not "
                        "written; ", strerror(errno), R.msg_name);
                if (rest) fprintf(stderr, "it is the last one sent: the %lu file(s) after it were not\n", rest);
                else fprintf(stderr, "it was the last file\n");
                rc = EX_IOERR;
                close_message();
                break;
            }
        } else {
            /* some of its recipients have it (over 100, a later transaction
               failed): a caller that sends the file again duplicates it */
            if (err == TLSMAIL_EPARTIAL) {
                (void)printf("partial %s\n", R.msg_name);
                (void)fflush(stdout);
            }
            if (rc == EX_OK) rc = r;
        }
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

/* ---- --check -------------------------------------------------------------- */

/* y-m-d of day d after 1970-01-01 (the inverse of the library's count). */
static void civil_from_days(long long d, long long *y, unsigned *m, unsigned *dd) {
    long long era, z = d + 719468;
    unsigned doe, yoe, doy, mp;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *dd = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (long long)yoe + era * 400 + (*m <= 2);
}

/* Seconds since 1970 as "2027-12-01 10:00:00 UTC". */
static void utc_text(long long t, char *out, size_t cap) {
    long long days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400), y;
    unsigned sec = (unsigned)(t - days * 86400), m, d; /* 0..86399 */
    civil_from_days(days, &y, &m, &d);
    snprintf(out, cap, "%04lld-%02u-%02u %02u:%02u:%02u UTC", y % 100000, m % 100, d % 100, sec / 3600 % 100,
             sec / 60 % 60, sec % 60);
}

/* The pin of a key as --pin-sha256 takes it: "sha256//" and the base64 of
   its SHA-256 (RFC 4648 4, padded). */
static void pin_text(const unsigned char h[32], char out[54]) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 8;
    memcpy(out, "sha256//", 8);
    for (i = 0; i < 32; i += 3) {
        unsigned long v = (unsigned long)h[i] << 16 | (i + 1 < 32 ? (unsigned long)h[i + 1] << 8 : 0) |
                          (i + 2 < 32 ? h[i + 2] : 0);
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = i + 1 < 32 ? b64[v >> 6 & 63] : '=';
        out[o++] = i + 2 < 32 ? b64[v & 63] : '=';
    }
    out[o] = 0;
}

/* The server's words on stdout, kept to printable text. */
static void print_server_text(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n && s[i]; i++)
        putchar((unsigned char)s[i] < 0x20 || s[i] == 0x7F ? '?' : s[i]);
}

/* What the handshake settled and the certificate the server showed. */
static void print_tls(void) {
    tlsmail_tls_details ti;
    char from[40], until[40], pin[54];
    if (tlsmail_tls_info(&client, &ti) != 0) return;
    printf("tls:        TLS %u.%u, %s, %s\n", (ti.version >> 8) - 2, (ti.version & 0xFF) - 1,
           ti.suite_name[0] ? ti.suite_name : "(unknown suite)",
           ti.resumed ? "session resumed" : "full handshake");
    if (!ti.have_cert) {
        printf("certificate: not sent (the session was resumed; run without session_cache for it)\n");
        return;
    }
    printf("subject:    %s\n", ti.subject[0] ? ti.subject : "(unreadable)");
    printf("issuer:     %s\n", ti.issuer[0] ? ti.issuer : "(unreadable)");
    if (ti.not_after) {
        long long now = (long long)time(NULL), left = ti.not_after - now;
        utc_text(ti.not_before, from, sizeof from);
        utc_text(ti.not_after, until, sizeof until);
        printf("valid:      %s to %s (", from, until);
        if (left >= 0) printf("%lld days left)\n", left / 86400);
        else printf("expired %lld days ago)\n", -left / 86400);
    }
    pin_text(ti.spki_sha256, pin);
    printf("pin:        %s\n", pin);
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
        printf("trust:      %s\n", R.set[K_PIN_SHA256].value ? "pinned key, the server's key matched"
                                   : R.set[K_CAFILE].value || R.set[K_CAPATH].value
                                       ? "cafile/capath, certificate verified"
                                       : "system store, certificate verified");
        print_tls();
        p = strchr(ehlo, '\n');
        printf("name:       ");
        print_server_text(ehlo, p ? (size_t)(p - ehlo) : strlen(ehlo));
        printf("\nextensions:");
        while (p) {
            const char *q = strchr(p + 1, '\n');
            putchar(' ');
            print_server_text(p + 1, q ? (size_t)(q - p - 1) : strlen(p + 1));
            if (q) putchar(',');
            p = q;
        }
        printf("\nauth:       ");
        if (auth && *auth) print_server_text(auth, strlen(auth));
        else printf("%s", auth ? "(none listed)" : "(not offered)");
        putchar('\n');
        if (want_auth()) {
            tlsmail_auth a = make_auth();
            err = tlsmail_authenticate(&client, &a);
            if (!err)
                printf("login:      %s accepted\n", R.set[K_USER].value ? R.set[K_USER].value
                                                                      : "the client certificate");
        }
        if (!err) err = tlsmail_quit(&client);
    }
    wipe_secrets();
    rc = exit_status(err);
    if (err) {
        tlsmail_describe(&client, err, desc, sizeof desc);
        fprintf(stderr, "tlsmail-send: %s%s\n", desc, hint(err));
    }
    tlsmail_close(&client);
    return rc;
}

/* Everything a run holds, freed and zeroed: at the end of main, and
   between the runs of tests/fuzz/fuzz_cli.c. */
static void forget_run(void) {
    size_t i;
    cache_free();
    tlsmail_trust_free(&R.trust);
    tlsmail_client_cert_free(&R.cc);
    list_free(&R.rcpts);
    list_free(&R.found);
    list_free(&R.recipients);
    list_free(&R.batch);
    list_free(&R.msgfiles);
    free(R.msg);
    free(R.from);
    free(R.display);
    free(R.added);
    free(R.from_header);
    memset(&R, 0, sizeof R);
    /* the values of password and token (R.set's point here) are secrets,
       and free() leaves a block's bytes as they were */
    for (i = 0; i < nclines; i++) {
        wipe(clines[i].value, strlen(clines[i].value));
        free(clines[i].value);
    }
    free(clines);
    clines = NULL;
    nclines = capclines = 0;
    list_free(&accounts);
    accounts_first = NULL;
    free(default_name);
    default_name = NULL;
    memset(&default_account, 0, sizeof default_account);
    for (i = 0; i < naliases; i++) {
        free(aliastab[i].name);
        list_free(&aliastab[i].to);
    }
    free(aliastab);
    aliastab = NULL;
    naliases = 0;
    list_free(&split_words); /* last: the settings of argv pointed into it */
    wipe_secrets();
}

int main(int argc, char **argv) {
    int rc;
    /* first: the password of a configuration file or TLSMAIL_PASSWORD and
       a cached session are in memory long before the secret is read, and
       a crash while stdin is awaited must not write them to a core file */
    no_core_dumps();
    platform_init();
    if (argc < 2) usage_error("no recipients (see tlsmail-send --help)");
    parse_command_line(argc, argv);
    read_config_files();
    apply_settings();
    check_settings();
    if (R.config_check) {
        print_config(stdout);
        forget_run();
        return EX_OK;
    }
    if (!R.host[0])
        usage_error("no server: set server in tlsmail-send.conf, TLSMAIL_SERVER, or give --server "
                    "HOST[:PORT]");
    if (R.verbose) R.cfg.trace = trace;
    configure_trust();
    load_client_cert();
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
    forget_run();
    return rc;
}
