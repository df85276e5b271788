/* tlsmail.h - v0.1.0 - send mail over SMTP + TLS (BearSSL) - license at end

   Do this:
       #define TLSMAIL_IMPLEMENTATION
   before you include this file in *one* C or C++ file, and link BearSSL
   (-lbearssl; Debian: apt-get install libbearssl-dev).

SUMMARY
   One header that sends email over SMTP with TLS from the first byte
   ("implicit TLS", RFC 8314, port 465), through BearSSL: real certificate
   chain and host name checks, AUTH PLAIN and LOGIN, a one-call send shaped
   like Go's net/smtp.SendMail, and a caller-allocated client object for
   step-by-step use. No heap in the dialogue, no global state, every network
   wait bounded by a timeout.

   It DOES NOT: send anything in plaintext (STARTTLS, port 587, is an upgrade
   that is compiled in only with TLSMAIL_STARTTLS and never continues
   unencrypted); build MIME messages (pass the message bytes you want sent);
   queue or retry; speak TLS 1.0/1.1, RSA key exchange or CBC suites.

QUICK START (examples/minimal.c, compiled by the tests)

       #define TLSMAIL_IMPLEMENTATION
       #include "tlsmail.h"
       #include <stdio.h>
       #include <stdlib.h>
       #include <string.h>

       int main(void) {
           const char *pw = getenv("SMTP_PASSWORD");
           const char *to[] = { "ops@example.org" };
           const char *msg = "From: alerts@example.org\r\n"
                             "To: ops@example.org\r\n"
                             "Subject: disk full\r\n\r\n/var is at 97%\r\n";
           tlsmail_auth a = tlsmail_plain_auth("", "alerts@example.org",
                                               pw ? pw : "", "smtp.example.org");
           int err = tlsmail_send("smtp.example.org:465", &a, "alerts@example.org",
                                  to, 1, msg, strlen(msg));
           if (err) fprintf(stderr, "send: %s\n", tlsmail_strerror(err));
           return err ? 1 : 0;
       }

COMPILE-TIME OPTIONS (define before including, in the implementation file)

   TLSMAIL_IMPLEMENTATION       emit the implementation in this file
   TLSMAIL_STATIC               make every function static (private copy)
   TLSMAIL_STARTTLS             compile the STARTTLS upgrade (port 587)
   TLSMAIL_NO_SOCKETS           leave out the POSIX socket transport; dial
                                with a tlsmail_io of your own
   TLSMAIL_ASSERT(x)            internal invariant check (default: assert)
   TLSMAIL_MALLOC(ctx,n), TLSMAIL_FREE(ctx,p)
                                allocator for PEM trust loading, the only
                                heap user; define both or neither
   TLSMAIL_DEFAULT_TIMEOUT_MS   per connect/read/write wait (default 60000)
   TLSMAIL_MAX_LINE             longest reply line accepted (default 512,
                                RFC 5321 4.5.3.1.5)
   TLSMAIL_MAX_REPLY_LINES      most lines in one reply (default 128)

CONVENTIONS
   - Every int-returning call returns 0 or a negative TLSMAIL_E* code;
     tlsmail_strerror() names it.
   - Pointers: the library keeps the caller's tlsmail_config, tlsmail_trust
     and tlsmail_io pointers from tlsmail_dial() until tlsmail_close(); it
     keeps no other pointer past the call that received it.
   - Threads: no global mutable state. One client per thread at a time; one
     loaded tlsmail_trust may be shared read-only by many clients.
   - Memory: a tlsmail_client (about 24 KB) is allocated by the caller (stack,
     static, pool). Fields of library structs are private: callers SHALL NOT
     read or write them. Only loading PEM trust anchors uses the heap.
   - A zero-initialised tlsmail_config gives safe defaults: implicit TLS,
     the system trust store, host name checked, 60 s per wait.

SECURITY
   - TLS 1.2 only, ECDHE key exchange with AEAD ciphers (AES-GCM first on
     CPUs with AES-NI, else ChaCha20-Poly1305 first).
   - The certificate chain is checked against the trust anchors and the
     server's name is always checked (SNI is always sent). An IP literal
     cannot be matched by BearSSL (no iPAddress SANs), so dialling an IP
     address is refused unless the server's public key is pinned.
   - AUTH is refused when the credentials name another host than the one
     dialled, and when the server offers no mechanism we support: mail is
     never sent unauthenticated when credentials were given.
   - The message body is normalised on the way out: every bare CR and bare
     LF becomes CRLF and lines starting with "." are dot-stuffed, so
     "<LF>.<LF>" (SMTP smuggling) can never reach a server.
   - Base64 AUTH buffers are wiped after use; the client is wiped on close;
     the trace callback sees AUTH payloads masked.

LIMITS
   Reply lines of at most TLSMAIL_MAX_LINE octets, TLSMAIL_MAX_REPLY_LINES
   lines per reply; message lines of at most 998 octets (RFC 5321 4.5.3.1.6);
   addresses of at most 254 octets (local part 64, domain 255); AUTH PLAIN
   fields of at most 255 octets (RFC 4616).

CHANGES
   0.1.0  first release: implicit TLS, AUTH PLAIN/LOGIN, PIPELINING.

LICENSE
   MIT, see the end of the file.
*/
/* Feature-test macros must precede the first system header, and <bearssl.h>
   is one: strict -std=c99 hides getaddrinfo otherwise. Only the
   implementation needs them; Apple hides MSG_NOSIGNAL-style extensions under
   strict POSIX, so it is left alone there. */
#if defined(TLSMAIL_IMPLEMENTATION) && !defined(TLSMAIL_NO_SOCKETS) && \
    !defined(_POSIX_C_SOURCE) && !defined(__APPLE__)
#define _POSIX_C_SOURCE 200112L
#endif

#ifndef TLSMAIL_H
#define TLSMAIL_H

#define TLSMAIL_VERSION_MAJOR 0
#define TLSMAIL_VERSION_MINOR 1
#define TLSMAIL_VERSION_PATCH 0
#define TLSMAIL_VERSION_STRING "0.1.0"

#include <stddef.h>
#include <bearssl.h>

#ifndef TLSMAIL_DEF
#ifdef TLSMAIL_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define TLSMAIL_DEF static __attribute__((unused))
#else
#define TLSMAIL_DEF static
#endif
#else
#define TLSMAIL_DEF extern
#endif
#endif

#ifndef TLSMAIL_MAX_LINE
#define TLSMAIL_MAX_LINE 512
#endif
#ifndef TLSMAIL_MAX_REPLY_LINES
#define TLSMAIL_MAX_REPLY_LINES 128
#endif
#ifndef TLSMAIL_DEFAULT_TIMEOUT_MS
#define TLSMAIL_DEFAULT_TIMEOUT_MS 60000
#endif
/* Room for the text of the last reply (all lines, '\n'-separated) and for the
   EHLO keywords we keep; longer text is truncated, never overflowed. */
#ifndef TLSMAIL_REPLY_TEXT
#define TLSMAIL_REPLY_TEXT 1024
#endif
#ifndef TLSMAIL_EXT_TEXT
#define TLSMAIL_EXT_TEXT 512
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ------------------------------------------------------------ */

/* One list gives both the enum and tlsmail_strerror(), so they can't drift.
   Grouped by what the caller should do: fix the call or the config,
   retry later, or suspect tampering. */
#define TLSMAIL__ERRORS(X)                                                     \
    X(OK,               0, "success")                                          \
    X(EINVAL,          -1, "invalid argument")                                 \
    X(ESTATE,          -2, "call out of order for this session")               \
    X(ERESOLVE,        -3, "cannot resolve server name")                       \
    X(ECONNECT,        -4, "cannot connect to server")                         \
    X(ETIMEOUT,        -5, "timed out")                                        \
    X(ECLOSED,         -6, "connection closed by server")                      \
    X(EIO,             -7, "network I/O error")                                \
    X(ETLS,            -8, "TLS handshake or record failure")                  \
    X(ECERT_UNTRUSTED, -9, "server certificate not trusted")                   \
    X(ECERT_EXPIRED,  -10, "server certificate expired or not yet valid")      \
    X(ECERT_NAME,     -11, "server certificate does not match the host name")  \
    X(ECERT_PIN,      -12, "server public key does not match the pinned key")  \
    X(ETRUST,         -13, "cannot load trust anchors")                        \
    X(EPROTO,         -14, "malformed or unexpected server reply")             \
    X(ETRANSIENT,     -15, "server refused for now (4xx); retry later")        \
    X(EPERMANENT,     -16, "server refused (5xx)")                             \
    X(EAUTH,          -17, "authentication failed")                            \
    X(ENOMECH,        -18, "server offers no usable AUTH mechanism")           \
    X(EAUTHHOST,      -19, "credentials are for another host")                 \
    X(ELINE,          -20, "message line longer than 998 octets")              \
    X(EUNKNOWN,       -21, "delivery unknown: connection lost after the "      \
                           "message was sent, before the server's verdict")    \
    X(ESTARTTLS,      -22, "STARTTLS unavailable or failed")                   \
    X(ENOMEM,         -23, "out of memory")

enum {
#define TLSMAIL__ENUM(name, value, text) TLSMAIL_##name = value,
    TLSMAIL__ERRORS(TLSMAIL__ENUM)
#undef TLSMAIL__ENUM
    TLSMAIL__ERROR_LAST = -23
};

/* Name of an error code ("server certificate expired ..."); never NULL. */
TLSMAIL_DEF const char *tlsmail_strerror(int err);

/* ---- authentication ---------------------------------------------------- */

enum { TLSMAIL_AUTH_NONE = 0, TLSMAIL_AUTH_PLAIN, TLSMAIL_AUTH_LOGIN };

/* What Go calls smtp.Auth: plain data, no heap. The strings are the
   caller's and must stay valid while in use; the library never writes them.
   host is the server name the credentials are meant for: authenticating to
   any other server fails with TLSMAIL_EAUTHHOST before a byte is sent. */
typedef struct tlsmail_auth {
    int mechanism;
    const char *identity, *username, *secret, *host;
} tlsmail_auth;

/* RFC 4616 PLAIN; identity is the authorisation identity, usually "". */
TLSMAIL_DEF tlsmail_auth tlsmail_plain_auth(const char *identity, const char *username,
                                            const char *password, const char *host);
/* The non-standard but ubiquitous LOGIN mechanism. */
TLSMAIL_DEF tlsmail_auth tlsmail_login_auth(const char *username, const char *password,
                                            const char *host);

/* ---- one-call send ----------------------------------------------------- */

/* Go's net/smtp.SendMail, argument for argument. addr is "host:port" (IPv6:
   "[::1]:465"; no port: 465). Dials with implicit TLS and the system trust
   store, EHLO (HELO if refused), AUTH when auth is not NULL, MAIL, RCPT for
   every recipient (any rejection fails the send), DATA, QUIT. msg is the
   whole message (headers, blank line, body); line ends may be CRLF, LF or
   CR. Every argument is checked before any byte goes out. */
TLSMAIL_DEF int tlsmail_send(const char *addr, const tlsmail_auth *auth, const char *from,
                             const char *const *to, size_t nto, const void *msg, size_t len);

/* ---- transport --------------------------------------------------------- */

/* The caller's own byte stream (embedded boards, tests, proxies). read
   returns bytes read (> 0), 0 at end of stream, or a negative TLSMAIL_E*
   code (TLSMAIL_ETIMEOUT for your own timeout); write returns bytes written
   (> 0) or a negative code. Each call may block; the library's timeouts
   apply only to its own sockets, so bound your waits yourself. close may be
   NULL. */
typedef struct tlsmail_io {
    void *ctx;
    int (*read)(void *ctx, unsigned char *buf, size_t len);
    int (*write)(void *ctx, const unsigned char *buf, size_t len);
    void (*close)(void *ctx);
} tlsmail_io;

/* ---- trust ------------------------------------------------------------- */

/* Where trust comes from. A zeroed tlsmail_trust means "the system bundle,
   loaded at dial time". Load one explicitly to reuse it across clients
   (loading the 140-certificate system bundle costs tens of milliseconds and
   ~80 KB of heap; a loaded trust is read-only and may be shared). */
typedef struct tlsmail_trust {
    /* private */
    int kind;
    br_x509_trust_anchor *anchors;
    size_t count, cap;
    const br_x509_trust_anchor *user_anchors;
    unsigned char pin[32];
    void *alloc_ctx;
} tlsmail_trust;

/* The system bundle: $SSL_CERT_FILE and/or $SSL_CERT_DIR when set (as
   OpenSSL and Go honour them), else the first bundle found among the usual
   places of Debian/Ubuntu, Fedora/RHEL, openSUSE, Alpine, Arch, the BSDs and
   macOS, else the usual certificate directories. */
TLSMAIL_DEF int tlsmail_trust_system(tlsmail_trust *t);
/* PEM bundle file; PEM directory (files ending .pem or .crt, and OpenSSL
   hash links); PEM bytes in memory. CRLF and a missing final newline are
   fine; no certificate at all is TLSMAIL_ETRUST. These may be called more
   than once on one tlsmail_trust to add sources; anchors are copied. */
TLSMAIL_DEF int tlsmail_trust_file(tlsmail_trust *t, const char *path);
TLSMAIL_DEF int tlsmail_trust_dir(tlsmail_trust *t, const char *path);
TLSMAIL_DEF int tlsmail_trust_pem(tlsmail_trust *t, const void *pem, size_t len);
/* The caller's anchors (e.g. from BearSSL's brssl ta): not copied, no heap;
   they must outlive every client using t. */
TLSMAIL_DEF int tlsmail_trust_anchors(tlsmail_trust *t, const br_x509_trust_anchor *ta,
                                      size_t n);
/* Trust exactly one server key: the SHA-256 of its DER SubjectPublicKeyInfo,
   as base64 (what curl's --pinnedpubkey takes after "sha256//", and what
   `openssl x509 -pubkey | openssl pkey -pubin -outform der | openssl dgst
   -sha256 -binary | base64` prints); "sha256//" may prefix it. The chain and
   name are not checked: the pin is the trust. */
TLSMAIL_DEF int tlsmail_trust_pin_sha256(tlsmail_trust *t, const char *base64);
/* Frees loaded anchors; t becomes a zeroed (system) trust again. */
TLSMAIL_DEF void tlsmail_trust_free(tlsmail_trust *t);

/* ---- client ------------------------------------------------------------ */

enum { TLSMAIL_TLS = 0, TLSMAIL_STARTTLS_REQUIRED = 1, TLSMAIL_TLS_OR_STARTTLS = 2 };
enum { TLSMAIL_TRACE_SEND = 0, TLSMAIL_TRACE_RECV = 1 };

/* Zero-initialise, then set what you need. */
typedef struct tlsmail_config {
    const char *host;          /* server name: dialled, sent as SNI, checked */
    unsigned port;             /* 0: 465 */
    int security;              /* TLSMAIL_TLS (default); STARTTLS modes need
                                  TLSMAIL_STARTTLS */
    int timeout_ms;            /* each connect/read/write; 0: default, < 0: none */
    int deadline_ms;           /* whole session from dial; 0: none */
    const char *helo_name;     /* EHLO argument; NULL: "localhost" */
    const tlsmail_trust *trust;/* NULL or zeroed: system bundle */
    const tlsmail_io *io;      /* NULL: POSIX sockets */
    /* Every line sent and received, without CRLF; AUTH payloads masked. */
    void (*trace)(void *ud, int dir, const char *line, size_t len);
    void *trace_ud;
} tlsmail_config;

/* Stages, for tlsmail_stage(): which step a failed session was in. */
enum {
    TLSMAIL_STAGE_NONE = 0, TLSMAIL_STAGE_CONNECT, TLSMAIL_STAGE_TLS,
    TLSMAIL_STAGE_GREETING, TLSMAIL_STAGE_HELLO, TLSMAIL_STAGE_STARTTLS,
    TLSMAIL_STAGE_AUTH, TLSMAIL_STAGE_MAIL, TLSMAIL_STAGE_RCPT,
    TLSMAIL_STAGE_DATA, TLSMAIL_STAGE_BODY, TLSMAIL_STAGE_RESET,
    TLSMAIL_STAGE_NOOP, TLSMAIL_STAGE_QUIT
};

/* Private parts of the client, defined here only so callers can allocate it. */
typedef struct tlsmail__reply {     /* streaming reply parser state */
    int code;                       /* code of the reply being read */
    int nlines;                     /* lines of it seen so far */
    int done;                       /* last line seen: next byte starts anew */
    size_t len;                     /* bytes of the current line */
    char line[TLSMAIL_MAX_LINE + 1];/* current line, NUL-terminated */
} tlsmail__reply;

typedef struct tlsmail__ext {       /* what EHLO told us */
    unsigned flags;                 /* TLSMAIL__EXT_* bits */
    unsigned auth;                  /* bit (1 << TLSMAIL_AUTH_x) per mechanism */
    size_t len;
    char text[TLSMAIL_EXT_TEXT];    /* "KEYWORD params\0" entries */
} tlsmail__ext;

typedef struct tlsmail__dot {       /* streaming DATA encoder */
    int bol;                        /* at the start of a line */
    int cr;                         /* last input byte was CR */
    size_t linelen;                 /* octets of the current line */
} tlsmail__dot;

typedef struct tlsmail__pin {       /* x509 engine that checks a pinned key */
    const br_x509_class *vtable;
    br_x509_decoder_context dc;
    const unsigned char *pin;
    int ncert, err;
    br_x509_pkey pkey;
    unsigned char key[520];
} tlsmail__pin;

typedef struct tlsmail_client {
    /* private: callers SHALL NOT access these fields */
    br_ssl_client_context sc;
    br_x509_minimal_context xc;
    tlsmail__pin pin;
    br_sslio_context ioc;
    tlsmail_trust own_trust;
    const tlsmail_trust *trust;
    const tlsmail_config *cfg;
    tlsmail_io io;
    int fd, state, stage, err, tls, br_err, sys_err;
    long long deadline;
    int timeout_ms;
    char host[256];
    tlsmail__reply rp;
    tlsmail__ext ext;
    tlsmail__dot dot;
    int code;
    size_t rlen, rpos, textlen;
    unsigned char rbuf[512];
    char text[TLSMAIL_REPLY_TEXT];
    unsigned char iobuf[BR_SSL_BUFSIZE_MONO];
} tlsmail_client;

/* Connect, TLS handshake with the configured trust, read the greeting. On
   failure the client is closed (tlsmail_close is still harmless). */
TLSMAIL_DEF int tlsmail_dial(tlsmail_client *c, const tlsmail_config *cfg);
/* EHLO, or HELO when EHLO is refused with 5xx. Called by the others if
   needed. */
TLSMAIL_DEF int tlsmail_hello(tlsmail_client *c);
/* After hello: an extension's parameters ("" when it has none), or NULL when
   the server did not offer it. Case-insensitive name, e.g. "AUTH". */
TLSMAIL_DEF const char *tlsmail_extension(tlsmail_client *c, const char *name);
/* AUTH with the given credentials (host must match the dialled host). */
TLSMAIL_DEF int tlsmail_authenticate(tlsmail_client *c, const tlsmail_auth *a);
/* MAIL FROM:<from> (from may be "" for the null reverse-path); RCPT TO:<to>. */
TLSMAIL_DEF int tlsmail_mail(tlsmail_client *c, const char *from);
TLSMAIL_DEF int tlsmail_rcpt(tlsmail_client *c, const char *to);
/* DATA, then the message in chunks of any size (line ends normalised,
   dot-stuffed), then the final "." and the server's verdict. A line over 998
   octets fails data_write with TLSMAIL_ELINE and drops the connection without
   the final ".", so nothing is delivered. */
TLSMAIL_DEF int tlsmail_data_begin(tlsmail_client *c);
TLSMAIL_DEF int tlsmail_data_write(tlsmail_client *c, const void *p, size_t n);
TLSMAIL_DEF int tlsmail_data_end(tlsmail_client *c);
/* RSET (start the next message on the same connection), NOOP, QUIT. */
TLSMAIL_DEF int tlsmail_reset(tlsmail_client *c);
TLSMAIL_DEF int tlsmail_noop(tlsmail_client *c);
TLSMAIL_DEF int tlsmail_quit(tlsmail_client *c);
/* Close the connection (TLS close_notify, bounded) and wipe the client. */
TLSMAIL_DEF void tlsmail_close(tlsmail_client *c);

/* The one-call send on a caller's client and config, so the stage and the
   server's reply stay readable afterwards (closed, but not wiped, on
   return). */
TLSMAIL_DEF int tlsmail_sendmail(tlsmail_client *c, const tlsmail_config *cfg,
                                 const tlsmail_auth *auth, const char *from,
                                 const char *const *to, size_t nto,
                                 const void *msg, size_t len);

/* The last server reply: code (0 if none) and text (lines joined by '\n',
   without the codes; "" if none). */
TLSMAIL_DEF int tlsmail_reply_code(const tlsmail_client *c);
TLSMAIL_DEF const char *tlsmail_reply_text(const tlsmail_client *c);
/* The stage the last error happened in, and its name ("RCPT"). */
TLSMAIL_DEF int tlsmail_stage(const tlsmail_client *c);
TLSMAIL_DEF const char *tlsmail_stage_name(int stage);
/* BearSSL's error number for the last TLS failure (0 if none). */
TLSMAIL_DEF int tlsmail_tls_error(const tlsmail_client *c);
/* One line for humans: "RCPT: server refused (5xx): 550 5.1.1 no such user".
   Returns buf. */
TLSMAIL_DEF char *tlsmail_describe(const tlsmail_client *c, int err, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* TLSMAIL_H */

/* ========================== API ends here ================================ */
