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
   step-by-step use. No heap in the dialogue, no global state, every wait on
   the connection bounded by a timeout and the session by a deadline (name
   resolution keeps the system resolver's own timeouts).

   It DOES NOT: send anything in plaintext (STARTTLS, port 587, is an upgrade
   that is compiled in only with TLSMAIL_STARTTLS and never continues
   unencrypted); build multipart MIME or attachments (tlsmail_compose makes a
   plain-text message; otherwise pass the bytes you want sent); queue or
   retry; speak TLS 1.0/1.1, RSA key exchange or CBC suites.

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

COMPILE-TIME OPTIONS (define before including, in the implementation file;
   tests/compile/run.sh builds every combination a user can pick)

   TLSMAIL_IMPLEMENTATION       emit the implementation in this file
   TLSMAIL_STATIC               make every function static (private copy)
   TLSMAIL_STARTTLS             compile the STARTTLS upgrade (port 587);
                                without it no STARTTLS code is compiled
   TLSMAIL_NO_SOCKETS           leave out the POSIX socket transport; dial
                                with a tlsmail_io of your own
   TLSMAIL_NO_STDIO             leave out file and directory trust loading
                                (and so the system bundle)
   TLSMAIL_ASSERT(x)            internal invariant check (default: assert)
   TLSMAIL_MALLOC(ctx,n), TLSMAIL_FREE(ctx,p)
                                allocator for PEM trust loading, the only
                                heap user; define both or neither
   TLSMAIL_DEFAULT_TIMEOUT_MS   per connect/read/write wait (default 60000)
   TLSMAIL_DEFAULT_DEADLINE_MS  whole session, dial to close (default 600000)
   TLSMAIL_MAX_LINE             longest reply line accepted (default 512,
                                RFC 5321 4.5.3.1.5)
   TLSMAIL_MAX_REPLY_LINES      most lines in one reply (default 128)
   TLSMAIL_REPLY_TEXT           room for the last reply's text in the client
                                (default 1024; longer text is cut, never
                                overflowed)
   TLSMAIL_EXT_TEXT             room for the EHLO keywords kept for
                                tlsmail_extension (default 512)
   TLSMAIL_SESSION_LIFETIME     seconds a TLS session may be resumed after
                                the full handshake that made it (default
                                3600)
   TLSMAIL_INSECURE_NO_TLS_FOR_FUZZING
                                fuzz builds only: the dialogue runs on the
                                bare transport, no TLS at all. Never ship it.

API (each [group] is also the heading of its declarations below and the
   [tlsmail:group] marker of its implementation: grep for any name)
   [send]       tlsmail_send, tlsmail_client_send
   [auth]       tlsmail_auth, tlsmail_plain_auth, tlsmail_login_auth,
                tlsmail_auto_auth, tlsmail_authenticate
   [session]    tlsmail_config, tlsmail_client, tlsmail_dial, tlsmail_hello,
                tlsmail_extension, tlsmail_close, tlsmail_session,
                tlsmail_session_resumed, tlsmail_session_clear,
                tlsmail_session_export, tlsmail_session_import
   [commands]   tlsmail_mail, tlsmail_rcpt, tlsmail_data_begin,
                tlsmail_data_write, tlsmail_data_end, tlsmail_reset,
                tlsmail_noop, tlsmail_quit
   [report]     tlsmail_strerror, tlsmail_error_class, tlsmail_describe,
                tlsmail_stage, tlsmail_stage_name, tlsmail_reply_code,
                tlsmail_reply_text, tlsmail_reply_enhanced, tlsmail_reply_tls,
                tlsmail_tls_error
   [trust]      tlsmail_trust, tlsmail_trust_system, tlsmail_trust_file,
                tlsmail_trust_dir, tlsmail_trust_pem, tlsmail_trust_anchors,
                tlsmail_trust_pin_sha256, tlsmail_trust_free
   [transport]  tlsmail_io
   [checks]     tlsmail_check_address, tlsmail_split_hostport
   [compose]    tlsmail_message, tlsmail_compose, tlsmail_format_date,
                tlsmail_message_id, tlsmail_format_mailbox
   Inside, bottom up: [codecs] [checks] [transport] [trust] [pin] [x509]
   [stream] [dialogue] [starttls] [session] [auth] [commands] [send]
   [compose] [report].

ERRORS
   0 or a negative TLSMAIL_E* code, listed with their meaning and class in
   TLSMAIL__ERRORS below. tlsmail_error_class() says what to do:
   TLSMAIL_CLASS_CONFIG (fix the call, the configuration or the message),
   _RETRY (the network or the server, for now), _REFUSED (the server said
   no for good), _TAMPERING (TLS, certificate or protocol failure: a broken
   server or someone on the path), _MAYBE_DELIVERED (EUNKNOWN: a retry may
   send twice). Errors the library decides on itself (EINVAL, ENOEXT,
   ETOOBIG, ...) never quote a server reply in tlsmail_describe().

CONVENTIONS
   - Calls that do something (dial, commands, trust loading, compose)
     return 0 or a negative TLSMAIL_E* code, which tlsmail_strerror()
     names. The getters return what they get: tlsmail_reply_code() a
     reply code or 0, tlsmail_stage() a TLSMAIL_STAGE_*, tlsmail_reply_tls()
     0 or 1, tlsmail_tls_error() BearSSL's error number, and
     tlsmail_error_class() a TLSMAIL_CLASS_*.
   - Pointers: the library keeps the caller's tlsmail_config, tlsmail_trust,
     tlsmail_io and tlsmail_session pointers from tlsmail_dial() until
     tlsmail_close(); it keeps no other pointer past the call that received
     it.
   - Threads: no global mutable state. One client per thread at a time; one
     loaded tlsmail_trust may be shared read-only by many clients.
   - Memory: a tlsmail_client (about 27 KB) is allocated by the caller (stack,
     static, pool). Fields of library structs are private: callers SHALL NOT
     read or write them. Only loading PEM trust anchors uses the heap.
   - A zero-initialised tlsmail_config gives safe defaults: implicit TLS,
     the system trust store, host name checked, 60 s per wait, 10 minutes
     for the whole session.

SECURITY
   - TLS 1.2 only, ECDHE key exchange with AEAD ciphers (AES-GCM first on
     CPUs with AES-NI, else ChaCha20-Poly1305 first); no renegotiation (a
     server's HelloRequest is refused with a no_renegotiation alert).
   - Signatures, in the handshake and in certificates, with SHA-256,
     SHA-384 or SHA-512 only: SHA-1 and SHA-224 are neither offered nor
     accepted (RFC 9155).
   - The certificate chain is checked against the trust anchors: every
     signature, notBefore and notAfter against the current time,
     basicConstraints CA:TRUE on every issuer, RSA keys of 2048 bits or
     more (anchors too) and EC keys on P-256, P-384 or P-521. A
     certificate with an extendedKeyUsage extension must allow serverAuth
     (or anyExtendedKeyUsage), the issuers' too, as OpenSSL checks
     -purpose sslserver.
   - The server's name is always checked, case-insensitively, against the
     subjectAltName DNS entries (the CN only without a subjectAltName), with
     RFC 6125 wildcards: "*." as the whole left-most label, matching one
     label. "host." is "host" (no trailing dot in SNI or the check). An IP
     literal cannot be matched by BearSSL (no iPAddress SANs), so dialling
     an IP address is refused unless the server's public key is pinned;
     then no SNI is sent (RFC 6066 3).
   - A certificate that is not DER (extra octets, indefinite lengths) is
     refused, also with a pin; the pin engine reads only the first one.
   - AUTH is refused when the credentials name another host than the one
     dialled, and when the server offers no mechanism we support: mail is
     never sent unauthenticated when credentials were given.
   - The message body is normalised on the way out: every bare CR and bare
     LF becomes CRLF and lines starting with "." are dot-stuffed, so
     "<LF>.<LF>" (SMTP smuggling) can never reach a server.
   - Base64 AUTH buffers are wiped after use; the client is wiped on close;
     the trace callback sees AUTH payloads masked.

STARTTLS (only with TLSMAIL_STARTTLS)
   security = TLSMAIL_SECURITY_STARTTLS: plaintext greeting, EHLO, STARTTLS,
   then the same TLS checks as implicit TLS, then EHLO again. Nothing but EHLO
   and STARTTLS is ever sent in clear; no STARTTLS in the EHLO reply, any
   reply but 220 to it, or any byte arriving after that 220 and before the
   handshake fails the session; everything learned before TLS is forgotten.
   security = TLSMAIL_SECURITY_TLS_OR_STARTTLS: implicit TLS, falling back to
   STARTTLS-required on starttls_port (587) only when the implicit port
   refuses the connection or a plaintext SMTP server answers there; never
   after a timeout, a certificate error, an alert or a started handshake.
   tlsmail_send() to port 587 means STARTTLS required. Without the flag a
   STARTTLS mode is TLSMAIL_EINVAL, and a plaintext server where TLS was
   expected is TLSMAIL_EPLAINTEXT.

LIMITS
   Reply lines of at most TLSMAIL_MAX_LINE octets, TLSMAIL_MAX_REPLY_LINES
   lines per reply; message lines of at most 998 octets (RFC 5321 4.5.3.1.6);
   addresses of at most 254 octets (local part 64, domain 255); AUTH PLAIN
   fields of at most 255 octets (RFC 4616).

CHANGES
   0.2.0  (in progress)
          Renamed (0.x: no aliases): TLSMAIL_TLS -> TLSMAIL_SECURITY_TLS,
          TLSMAIL_STARTTLS_REQUIRED -> TLSMAIL_SECURITY_STARTTLS,
          TLSMAIL_TLS_OR_STARTTLS -> TLSMAIL_SECURITY_TLS_OR_STARTTLS,
          tlsmail_sendmail -> tlsmail_client_send; tlsmail_extension takes
          a const client.
          New: tlsmail_error_class, tlsmail_reply_enhanced,
          tlsmail_split_hostport (and tlsmail_auth.host may be the
          "host:port" you dial), tlsmail_format_date, tlsmail_message_id,
          tlsmail_format_mailbox; TLSMAIL_ENOEXT, TLSMAIL_ETOOBIG.
          TLS session resumption: tlsmail_config.session, tlsmail_session,
          tlsmail_session_resumed, tlsmail_session_clear,
          tlsmail_session_export, tlsmail_session_import,
          TLSMAIL_SESSION_LIFETIME.
          Faster DATA: the message is encoded a line at a time (memchr)
          straight into the TLS engine's buffer.
          Stricter: the certificate policy of SECURITY below (no SHA-1, no
          renegotiation, RSA >= 2048, extendedKeyUsage, DER only); reply
          codes as Go's net/smtp takes them (EHLO 250, RCPT 250 or 251,
          QUIT 221); a server speaking out of turn is EPROTO.
   0.1.0  first release: implicit TLS, STARTTLS (opt-in), AUTH PLAIN/LOGIN,
          PIPELINING.

LICENSE
   MIT, see the end of the file.
*/
/* Feature-test macros must precede the first system header, and <bearssl.h>
   is one: strict -std=c99 hides getaddrinfo otherwise. Only the
   implementation needs them; Apple hides MSG_NOSIGNAL-style extensions under
   strict POSIX, so it is left alone there. */
#if defined(TLSMAIL_IMPLEMENTATION) && !defined(TLSMAIL_NO_SOCKETS) && \
    !defined(_POSIX_C_SOURCE) && !defined(__APPLE__)
#if defined(__STRICT_ANSI__) && defined(_FEATURES_H)
/* glibc and musl fix the feature set at the first system header. */
#error "tlsmail.h: a system header came first and strict C hid POSIX: include tlsmail.h first in the implementation file, or define _POSIX_C_SOURCE=200809L"
#endif
#define _POSIX_C_SOURCE 200809L
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
/* A server that trickles one byte per timeout could otherwise hold a caller
   for ever: the whole session is bounded too, by default. */
#ifndef TLSMAIL_DEFAULT_DEADLINE_MS
#define TLSMAIL_DEFAULT_DEADLINE_MS 600000
#endif
/* Room for the text of the last reply (all lines, '\n'-separated) and for the
   EHLO keywords we keep; longer text is truncated, never overflowed. */
#ifndef TLSMAIL_REPLY_TEXT
#define TLSMAIL_REPLY_TEXT 1024
#endif
#ifndef TLSMAIL_EXT_TEXT
#define TLSMAIL_EXT_TEXT 512
#endif
/* A resumed session skips the certificate check: it lives this long after
   the full handshake that checked it, resumed or not in between (RFC 5246
   F.1.4 suggests at most 24 hours). */
#ifndef TLSMAIL_SESSION_LIFETIME
#define TLSMAIL_SESSION_LIFETIME 3600
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Every group below has the same name in the API index at the top, here
   and at its implementation ([tlsmail:NAME] markers): grep for it. Types
   used before their group are declared first; the structs with private
   fields are defined at the end, just before "API ends here". */
typedef struct tlsmail_auth tlsmail_auth;
typedef struct tlsmail_config tlsmail_config;
typedef struct tlsmail_client tlsmail_client;
typedef struct tlsmail_trust tlsmail_trust;
typedef struct tlsmail_io tlsmail_io;
typedef struct tlsmail_session tlsmail_session;

/* ---- [send] one call, shaped like Go's net/smtp.SendMail ----------------- */

/* Go's net/smtp.SendMail, argument for argument. addr is "host:port" (IPv6:
   "[::1]:465"; no port: 465). Dials with implicit TLS and the system trust
   store, EHLO (HELO if refused), AUTH when auth is not NULL, MAIL, RCPT for
   every recipient (any rejection fails the send), DATA, QUIT. msg is the
   whole message (headers, blank line, body); line ends may be CRLF, LF or
   CR. Every argument is checked before any byte goes out. */
TLSMAIL_DEF int tlsmail_send(const char *addr, const tlsmail_auth *auth, const char *from,
                             const char *const *to, size_t nto, const void *msg, size_t len);

/* The one-call send on a caller's client and config, so the stage and the
   server's reply stay readable afterwards (closed, but not wiped, on
   return). */
TLSMAIL_DEF int tlsmail_client_send(tlsmail_client *c, const tlsmail_config *cfg,
                                 const tlsmail_auth *auth, const char *from,
                                 const char *const *to, size_t nto,
                                 const void *msg, size_t len);

/* ---- [auth] credentials: AUTH PLAIN and LOGIN ---------------------------- */

/* TLSMAIL_AUTH_AUTO picks by what the server offers: PLAIN, else LOGIN. */
enum { TLSMAIL_AUTH_NONE = 0, TLSMAIL_AUTH_PLAIN, TLSMAIL_AUTH_LOGIN, TLSMAIL_AUTH_AUTO };

/* What Go calls smtp.Auth: plain data, no heap. The strings are the
   caller's and must stay valid while in use; the library never writes them.
   host is the server name the credentials are meant for: authenticating to
   any other server fails with TLSMAIL_EAUTHHOST before a byte is sent. */
struct tlsmail_auth {
    int mechanism;
    const char *identity, *username, *secret, *host;
};

/* RFC 4616 PLAIN; identity is the authorisation identity, usually "". */
TLSMAIL_DEF tlsmail_auth tlsmail_plain_auth(const char *identity, const char *username,
                                            const char *password, const char *host);
/* The non-standard but ubiquitous LOGIN mechanism. */
TLSMAIL_DEF tlsmail_auth tlsmail_login_auth(const char *username, const char *password,
                                            const char *host);
/* PLAIN if the server offers it, else LOGIN; either way only over TLS and
   only to host. The choice is made once from the EHLO reply: a refusal is
   never followed by another mechanism. */
TLSMAIL_DEF tlsmail_auth tlsmail_auto_auth(const char *username, const char *password,
                                           const char *host);

/* AUTH with the given credentials (host must match the dialled host). */
TLSMAIL_DEF int tlsmail_authenticate(tlsmail_client *c, const tlsmail_auth *a);

/* ---- [session] a client of your own: dial, EHLO, close ------------------- */

enum { TLSMAIL_SECURITY_TLS = 0, TLSMAIL_SECURITY_STARTTLS = 1, TLSMAIL_SECURITY_TLS_OR_STARTTLS = 2 };
/* Trace directions; TLSMAIL_TRACE_PLAINTEXT is or-ed in for the lines of
   the STARTTLS prelude, which anyone on the path can read and forge. */
enum { TLSMAIL_TRACE_SEND = 0, TLSMAIL_TRACE_RECV = 1, TLSMAIL_TRACE_PLAINTEXT = 2 };

/* Zero-initialise, then set what you need. */
struct tlsmail_config {
    const char *host;          /* server name: dialled, sent as SNI, checked */
    unsigned port;             /* 0: 465 */
    int security;              /* TLSMAIL_SECURITY_TLS (default); STARTTLS modes need
                                  TLSMAIL_STARTTLS */
    int timeout_ms;            /* each connect/read/write; 0: default, < 0: none */
    int deadline_ms;           /* whole session from dial; 0: default (10 min),
                                  < 0: none */
    unsigned starttls_port;    /* TLSMAIL_SECURITY_TLS_OR_STARTTLS fallback; 0: 587 */
    const char *helo_name;     /* EHLO argument; NULL: "localhost" */
    const tlsmail_trust *trust;/* NULL or zeroed: system bundle */
    const tlsmail_io *io;      /* NULL: POSIX sockets */
    /* Every line sent and received, without CRLF; AUTH payloads masked. */
    void (*trace)(void *ud, int dir, const char *line, size_t len);
    void *trace_ud;
    tlsmail_session *session;  /* NULL: every handshake is a full one; else
                                  offered when it fits, saved after each
                                  good handshake (see tlsmail_session) */
};

/* Connect, TLS handshake with the configured trust, read the greeting. On
   failure the client is closed (tlsmail_close is still harmless). */
TLSMAIL_DEF int tlsmail_dial(tlsmail_client *c, const tlsmail_config *cfg);
/* EHLO, or HELO when EHLO is refused with 5xx. Called by the others if
   needed. */
TLSMAIL_DEF int tlsmail_hello(tlsmail_client *c);
/* After hello: an extension's parameters ("" when it has none), or NULL when
   the server did not offer it. Case-insensitive name, e.g. "AUTH". */
TLSMAIL_DEF const char *tlsmail_extension(const tlsmail_client *c, const char *name);

/* Close the connection (TLS close_notify, bounded) and wipe the client. */
TLSMAIL_DEF void tlsmail_close(tlsmail_client *c);

/* TLS session resumption (RFC 5246 7.3, session IDs). A tlsmail_session
   holds one server's session: zero-initialise it (no heap), point
   tlsmail_config.session at it, and keep it between dials. After every
   good handshake the session is saved in it; a dial offers it only to the
   same host name and port, under the same trust (the anchors or the pin
   that verified the chain), and only within TLSMAIL_SESSION_LIFETIME
   seconds of the full handshake that verified it: anything else gets a
   full handshake with every check. A handshake that offered it and failed
   clears it. A resumed handshake skips the key exchange and the chain (CPU
   on both sides, and the certificates on the wire); in SMTP, where the
   server speaks first, it saves no round trip. One client at a time may
   use a session. It holds the session's master secret, as secret as a
   password for as long as it lives: tlsmail_session_clear() wipes it.
   Without a clock (TLSMAIL_NO_SOCKETS) nothing expires: clear it yourself.

   tlsmail_session_resumed: 1 if c's last handshake resumed a session, else 0. */
TLSMAIL_DEF int tlsmail_session_resumed(const tlsmail_client *c);
/* Forget the session, wiping its secret. */
TLSMAIL_DEF void tlsmail_session_clear(tlsmail_session *s);
/* The session as one line of text, for a cache of your own across
   processes (keep it where only you can read and write it: whoever can
   write it can make you skip the certificate check; whoever can read it
   can read and forge the sessions it resumes). buf gets at most
   TLSMAIL_SESSION_TEXT octets with the NUL; *len the length without it.
   0; TLSMAIL_EINVAL when s holds no session or it has expired;
   TLSMAIL_ENOMEM when cap is too small. */
#define TLSMAIL_SESSION_TEXT 600
TLSMAIL_DEF int tlsmail_session_export(const tlsmail_session *s, char *buf, size_t cap, size_t *len);
/* Back from that text (len octets, a final LF or CRLF allowed). 0, or
   TLSMAIL_EINVAL for text that is not an export (s is then cleared): a
   malformed field, a TLS version other than 1.2, or a session that has
   expired. */
TLSMAIL_DEF int tlsmail_session_import(tlsmail_session *s, const char *text, size_t len);

/* ---- [commands] MAIL, RCPT, DATA, RSET, NOOP, QUIT ----------------------- */

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

/* ---- [report] errors, and what went wrong -------------------------------- */

/* One list gives the enum, tlsmail_strerror() and tlsmail_error_class(),
   so they can't drift. Values follow the order (0, -1, -2, ...) and new
   codes go at the end, so a number never changes meaning. The second
   column is the code's TLSMAIL_CLASS_*: what the caller should do. */
#define TLSMAIL__ERRORS(X)                                                     \
    X(OK,              NONE,      "success")                                  \
    X(EINVAL,          CONFIG,    "invalid argument")                         \
    X(ESTATE,          CONFIG,    "call out of order for this session")       \
    X(ERESOLVE,        RETRY,     "cannot resolve server name")               \
    X(ECONNECT,        RETRY,     "cannot connect to server")                 \
    X(ETIMEOUT,        RETRY,     "timed out")                                \
    X(ECLOSED,         RETRY,     "connection closed by server")              \
    X(EIO,             RETRY,     "network I/O error")                        \
    X(ETLS,            TAMPERING, "TLS handshake or record failure")          \
    X(ECERT_UNTRUSTED, TAMPERING, "server certificate not trusted")           \
    X(ECERT_EXPIRED,   TAMPERING, "server certificate expired or not yet "    \
                                  "valid")                                    \
    X(ECERT_NAME,      TAMPERING, "server certificate does not match the "    \
                                  "host name")                                \
    X(ECERT_PIN,       TAMPERING, "server public key does not match the "     \
                                  "pinned key")                               \
    X(ETRUST,          CONFIG,    "cannot load trust anchors")                \
    X(EPROTO,          TAMPERING, "malformed or unexpected server reply")     \
    X(ETRANSIENT,      RETRY,     "server refused for now (4xx); retry later")\
    X(EPERMANENT,      REFUSED,   "server refused (5xx)")                     \
    X(EAUTH,           CONFIG,    "authentication failed")                    \
    X(ENOMECH,         CONFIG,    "server offers no usable AUTH mechanism")   \
    X(EAUTHHOST,       CONFIG,    "credentials are for another host")         \
    X(ELINE,           CONFIG,    "message line longer than 998 octets")      \
    X(EUNKNOWN,        MAYBE_DELIVERED, "delivery unknown: connection lost "  \
                                  "after the message was sent, before the "   \
                                  "server's verdict")                         \
    X(ESTARTTLS,       TAMPERING, "STARTTLS unavailable or failed")           \
    X(ENOMEM,          CONFIG,    "out of memory")                            \
    X(EPLAINTEXT,      CONFIG,    "server speaks plaintext SMTP, not TLS: "   \
                                  "wrong port, or it needs STARTTLS")         \
    X(ENOEXT,          CONFIG,    "server lacks an SMTP extension the "       \
                                  "message needs (nothing was sent)")         \
    X(ETOOBIG,         CONFIG,    "message larger than the server's SIZE "    \
                                  "limit (nothing was sent)")

enum {
#define TLSMAIL__INDEX(name, cls, text) TLSMAIL__INDEX_##name,
    TLSMAIL__ERRORS(TLSMAIL__INDEX)
#undef TLSMAIL__INDEX
    TLSMAIL__ERROR_COUNT
};
enum {
#define TLSMAIL__ENUM(name, cls, text) TLSMAIL_##name = -TLSMAIL__INDEX_##name,
    TLSMAIL__ERRORS(TLSMAIL__ENUM)
#undef TLSMAIL__ENUM
    TLSMAIL__ERROR_LAST = 1 - TLSMAIL__ERROR_COUNT
};

/* What a caller should do about an error (tlsmail_error_class). */
enum {
    TLSMAIL_CLASS_NONE = 0,        /* success */
    TLSMAIL_CLASS_CONFIG,          /* fix the call, the configuration or the
                                      message: as it is, it fails again */
    TLSMAIL_CLASS_RETRY,           /* the network or the server, for now:
                                      retry later */
    TLSMAIL_CLASS_REFUSED,         /* the server refused this message for
                                      good */
    TLSMAIL_CLASS_TAMPERING,       /* TLS, certificate or protocol failure: a
                                      broken or misconfigured server, or
                                      someone on the path */
    TLSMAIL_CLASS_MAYBE_DELIVERED  /* the message may have been delivered: a
                                      retry may send it twice */
};

/* Name of an error code ("server certificate expired ..."); never NULL. */
TLSMAIL_DEF const char *tlsmail_strerror(int err);

/* Stages, for tlsmail_stage(): which step a failed session was in. One
   list gives the enum and tlsmail_stage_name(). */
#define TLSMAIL__STAGES(X)                                                     \
    X(NONE, "none") X(CONNECT, "connect") X(TLS, "TLS handshake")              \
    X(GREETING, "greeting") X(HELLO, "EHLO") X(STARTTLS, "STARTTLS")           \
    X(AUTH, "AUTH") X(MAIL, "MAIL FROM") X(RCPT, "RCPT TO") X(DATA, "DATA")    \
    X(BODY, "message") X(RESET, "RSET") X(NOOP, "NOOP") X(QUIT, "QUIT")
enum {
#define TLSMAIL__STAGE_ENUM(name, text) TLSMAIL_STAGE_##name,
    TLSMAIL__STAGES(TLSMAIL__STAGE_ENUM)
#undef TLSMAIL__STAGE_ENUM
    TLSMAIL__STAGE_COUNT
};

/* The last server reply: code (0 if none) and text (lines joined by '\n',
   without the codes; "" if none). */
TLSMAIL_DEF int tlsmail_reply_code(const tlsmail_client *c);
TLSMAIL_DEF const char *tlsmail_reply_text(const tlsmail_client *c);
/* 1 if that reply came over verified TLS; 0 if it came in plaintext before
   STARTTLS (anyone on the path could have written it) or there is none. */
TLSMAIL_DEF int tlsmail_reply_tls(const tlsmail_client *c);
/* The stage the last error happened in, and its name ("RCPT"). */
TLSMAIL_DEF int tlsmail_stage(const tlsmail_client *c);
TLSMAIL_DEF const char *tlsmail_stage_name(int stage);
/* BearSSL's error number for the last TLS failure (0 if none). */
TLSMAIL_DEF int tlsmail_tls_error(const tlsmail_client *c);
/* The enhanced status code (RFC 3463) at the start of the last reply's
   text, as "5.7.8", or "" when it has none. Taken only when its class
   agrees with the reply code (a "5.x.x" on a 5xx reply). */
TLSMAIL_DEF const char *tlsmail_reply_enhanced(const tlsmail_client *c);
/* What to do about err, a code a call on c returned: TLSMAIL_CLASS_*.
   c may be NULL. With c, a permanent refusal whose enhanced status blames
   the caller's side (5.1.x: an address; 5.7.x: authentication, policy,
   relaying) is TLSMAIL_CLASS_CONFIG rather than REFUSED. */
TLSMAIL_DEF int tlsmail_error_class(const tlsmail_client *c, int err);
/* One line for humans: "RCPT: server refused (5xx): 550 5.1.1 no such user".
   Returns buf. */
TLSMAIL_DEF char *tlsmail_describe(const tlsmail_client *c, int err, char *buf, size_t cap);

/* ---- [trust] where the trust anchors come from --------------------------- */

#ifndef TLSMAIL_NO_STDIO /* files and directories: not with TLSMAIL_NO_STDIO */
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
#endif
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
/* Frees loaded anchors; t becomes a zeroed (system) trust again, keeping
   only alloc_ctx. */
TLSMAIL_DEF void tlsmail_trust_free(tlsmail_trust *t);

/* ---- [transport] your own byte stream instead of sockets ----------------- */

/* The caller's own byte stream (embedded boards, tests, proxies). read
   returns bytes read (> 0), 0 at end of stream, or a negative TLSMAIL_E*
   code (TLSMAIL_ETIMEOUT for your own timeout); write returns bytes written
   (> 0) or a negative code. Each call may block; the library's timeouts
   apply only to its own sockets, so bound your waits yourself. close may be
   NULL. */
struct tlsmail_io {
    void *ctx;
    int (*read)(void *ctx, unsigned char *buf, size_t len);
    int (*write)(void *ctx, const unsigned char *buf, size_t len);
    void (*close)(void *ctx);
};

/* ---- [checks] what the library checks, for tools to check first ---------- */

/* 0 if tlsmail_mail/tlsmail_rcpt would accept addr ("" is refused: pass
   the null reverse-path to tlsmail_mail directly), else TLSMAIL_EINVAL.
   For tools that check their configuration before the first send. */
TLSMAIL_DEF int tlsmail_check_address(const char *addr);

/* "host", "host:port", "[v6]:port" or a bare IPv6 address, split as Go's
   net.SplitHostPort does (brackets removed); *port is defport when addr
   has none. The splitter tlsmail_dial() uses: callers never need their
   own. 0, or TLSMAIL_EINVAL for a malformed addr, an empty host, a host
   of cap octets or more, or a port outside 1..65535. */
TLSMAIL_DEF int tlsmail_split_hostport(const char *addr, char *host, size_t cap, unsigned *port,
                                       unsigned defport);

/* ---- [compose] a plain-text message: RFC 5322, MIME (RFC 2045, 2047) ----- */

/* A plain-text message to build with tlsmail_compose(). Every string is the
   caller's UTF-8 and is only read during the call. Addresses are "addr" or
   "Display Name <addr>" ("\"Doe, Jane\" <jane@example.org>" works too); a
   display name may be UTF-8 and is RFC 2047-encoded when it is not ASCII. */
typedef struct tlsmail_message {
    const char *from;                  /* required */
    const char *const *to; size_t nto; /* nto 0: no To header */
    const char *const *cc; size_t ncc; /* ncc 0: no Cc header */
    const char *subject;               /* NULL or "": empty Subject */
    const void *body; size_t body_len; /* UTF-8 text, any line ends */
    const char *date;                  /* NULL: now, UTC (needs sockets, i.e.
                                          not TLSMAIL_NO_SOCKETS); else used
                                          as given */
    const char *message_id;            /* NULL: "<32 random hex@domain of
                                          from>"; else "<id@host>" as given
                                          (angle brackets added if missing) */
} tlsmail_message;

/* Writes the whole message (headers, blank line, body) into buf[0..cap),
   ready for tlsmail_client_send() / tlsmail_data_write(). No heap.

   Size query, as snprintf: with buf NULL, returns 0 and sets *len to the
   exact size the message needs (the size does not depend on the random
   Message-ID or the current time, which have fixed widths). With buf set,
   returns 0 and sets *len to the bytes written, plus a NUL after them when
   cap > *len (not counted); if cap is too small returns TLSMAIL_ENOMEM, sets
   *len to the size needed and leaves buf's contents unspecified.

   Output: CRLF line ends; From, To, Cc, Subject, Date (RFC 5322 3.3, UTC,
   "Sat, 28 Nov 2026 18:27:24 +0000"), Message-ID, MIME-Version 1.0,
   Content-Type text/plain; charset=UTF-8, and Content-Transfer-Encoding
   7bit when the body is ASCII without NUL and no line exceeds 998 octets,
   else quoted-printable (RFC 2045 6.7). Header lines are folded at 78
   characters where a fold point exists and never exceed 998; non-ASCII
   subjects and names become RFC 2047 "=?UTF-8?B?...?=" words of at most
   75 characters that never split a UTF-8 character. Body line ends (CRLF,
   LF, CR) become CRLF; the last line always gets one.

   TLSMAIL_EINVAL: m, from or len NULL; a CR, LF or other control character
   (TAB excepted) in any header value or display name (no header
   injection); an address that tlsmail_mail/tlsmail_rcpt would refuse or
   that has no '@'; a subject, name or body that is not UTF-8; a date or
   message_id that is not printable ASCII; a display name over 1023
   octets or with a word no 998-octet line can hold; date NULL under
   TLSMAIL_NO_SOCKETS; message_id NULL and no system random source. */
TLSMAIL_DEF int tlsmail_compose(const tlsmail_message *m, char *buf, size_t cap, size_t *len);

/* The two header values tlsmail_compose() makes, for tools that complete a
   message of their own (a sendmail that adds what is missing).
   tlsmail_format_date: t (seconds since 1970, UTC) as an RFC 5322 3.3
   date-time, "Sat, 28 Nov 2026 18:27:24 +0000": always 31 characters and
   a NUL; years outside 0..9999 are clamped.
   tlsmail_message_id: a new "<32 random hex digits@domain>", the domain
   taken from the address in from ("Name <a@example.org>" or a bare
   address) when it is a plain ASCII domain, else "localhost"; NUL-
   terminated. 0, or TLSMAIL_EINVAL when out or from is NULL, cap is too
   small (at most 292 octets are ever needed), or there is no system
   random source. */
TLSMAIL_DEF void tlsmail_format_date(char out[32], long long t);
TLSMAIL_DEF int tlsmail_message_id(char *out, size_t cap, const char *from);
/* One mailbox ("addr" or "Display Name <addr>", UTF-8) as tlsmail_compose
   writes it after "From:": the name as atoms, a quoted string or RFC 2047
   words, folded for a line that starts with "From:". buf gets the field
   body, leading space included, no final CRLF, NUL-terminated; *len its
   length. buf NULL: a size query (*len: the length, without the NUL).
   TLSMAIL_EINVAL as tlsmail_compose for a bad mailbox; TLSMAIL_ENOMEM
   when cap is too small (*len: the length needed). */
TLSMAIL_DEF int tlsmail_format_mailbox(const char *mailbox, char *buf, size_t cap, size_t *len);

/* ---- [private] structs defined here only so callers can allocate them ---- */

/* Callers SHALL NOT read or write these fields (tlsmail_trust.alloc_ctx
   excepted): they change between versions. */

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

/* Streaming reader of one certificate: what BearSSL's engine doesn't check
   or doesn't show (the [codecs] section says what and why). */
enum { TLSMAIL__CW_DEPTH = 8, TLSMAIL__DN_MAX = 1024 };
typedef struct tlsmail__certwalk {
    int depth;                              /* open TLVs; 0: the entry itself */
    size_t left[TLSMAIL__CW_DEPTH];         /* octets of each not yet claimed */
    unsigned char role[TLSMAIL__CW_DEPTH];  /* what each is: TLSMAIL__CW_* */
    unsigned char kids[TLSMAIL__CW_DEPTH];  /* children seen in each, to 255 */
    unsigned seqs;                          /* SEQUENCEs seen in the TBS */
    unsigned char hdr[5];                   /* the TLV header being read */
    size_t hlen;
    size_t vlen, vleft;                     /* the value being read */
    int reading;                            /* a value, not a header, is read */
    int cv;                                 /* where it goes: TLSMAIL__CV_* */
    unsigned char oid[16];                  /* the OID being read */
    size_t oidlen;
    int in_eku;                             /* in the extendedKeyUsage extension */
    int eku;                                /* 0: none; 1: serverAuth or any;
                                               -1: other purposes only */
    int err;                                /* not DER, or not a certificate */
    int done;                               /* the whole certificate was read */
    int dn_over;                            /* a name too long to keep */
    int issuer_done;                        /* issuer[] is complete */
    size_t issuer_len, subject_len;
    unsigned char issuer[TLSMAIL__DN_MAX];  /* the names, whole DER */
    unsigned char subject[TLSMAIL__DN_MAX];
} tlsmail__certwalk;

typedef struct tlsmail__x509 {      /* BearSSL's chain and name checks, with
                                       our policy on top */
    const br_x509_class *vtable;
    br_x509_minimal_context xc;     /* does the real validation */
    tlsmail__certwalk cw;           /* reads the certificate beside it */
    int skip;                       /* BearSSL ignores this certificate:
                                       the chain already reached an anchor */
    int err;                        /* our verdict, a BR_ERR_X509_* */
} tlsmail__x509;

/* Where trust comes from. A zeroed tlsmail_trust means "the system bundle,
   loaded at dial time". Load one explicitly to reuse it across clients
   (loading the 140-certificate system bundle costs tens of milliseconds and
   ~80 KB of heap; a loaded trust is read-only and may be shared). */
struct tlsmail_trust {
    void *alloc_ctx; /* yours: handed to TLSMAIL_MALLOC/TLSMAIL_FREE; set it
                        before loading */
    /* private */
    int kind;
    br_x509_trust_anchor *anchors;
    size_t count, cap;
    const br_x509_trust_anchor *user_anchors;
    unsigned char pin[32];
};

typedef struct tlsmail__pin {       /* x509 engine that checks a pinned key */
    const br_x509_class *vtable;
    br_x509_decoder_context dc;
    const unsigned char *pin;
    int ncert, err, mismatch;
    int overrun;                    /* the first certificate's DER went on
                                       after its end or an error */
    br_x509_pkey pkey;
    unsigned char key[520];
} tlsmail__pin;

struct tlsmail_session {
    /* private: callers SHALL NOT access these fields */
    int valid;                      /* holds a session */
    char host[256];                 /* the server name it was verified for */
    unsigned port;                  /* and the port */
    unsigned char trust[32];        /* SHA-256 of the trust that verified it */
    long long created;              /* its full handshake, seconds since 1970
                                       (0: no clock) */
    br_ssl_session_parameters params; /* BearSSL's: ID, version, suite and
                                       master secret */
};

struct tlsmail_client {
    /* private: callers SHALL NOT access these fields */
    br_ssl_client_context sc;
    union {                         /* one X.509 engine at a time: */
        tlsmail__x509 policy;       /* chain, name and policy checks, or */
        tlsmail__pin pin;           /* the pinned key */
    } x509;
    br_sslio_context ioc;
    tlsmail_trust own_trust;        /* the system bundle, when cfg has none */
    const tlsmail_trust *trust;
    const tlsmail_config *cfg;
    tlsmail_io io;
    int fd;                         /* our socket, or -1 */
    int state;                      /* TLSMAIL__CLOSED .. TLSMAIL__DATA */
    int stage;                      /* TLSMAIL_STAGE_* of the last call */
    int err;                        /* its result */
    int tls;                        /* TLS is up: the stream is encrypted */
    int utf8;                       /* MAIL declared SMTPUTF8 */
    int starttls;                   /* this session began in plaintext */
    int io_err, br_err, sys_err;    /* causes, kept for tlsmail_describe */
    int reply_tls;                  /* the last reply came over TLS */
    int reply_fresh;                /* ...and answers the last command: an
                                       error decided on it may quote it */
    int queued;                     /* commands queued since the last flush */
    unsigned char first[4];         /* first bytes received: TLS or SMTP? */
    size_t nfirst;
    int timeout_ms;
    long long deadline;             /* monotonic ms; 0: none */
    char host[256];
    tlsmail__reply rp;
    tlsmail__ext ext;
    tlsmail__dot dot;
    int code;                       /* last reply */
    char enhanced[12];              /* its RFC 3463 status ("5.7.8"), or "" */
    size_t textlen;
    char text[TLSMAIL_REPLY_TEXT];
    size_t rlen, rpos;              /* received, not yet parsed: rbuf[rpos..rlen) */
    unsigned char rbuf[512];
    unsigned char iobuf[BR_SSL_BUFSIZE_MONO];
    unsigned port;                  /* the port dialled, for the session's key */
    int session_offered;            /* cfg->session went into the ClientHello */
    int session_resumed;            /* ...and the server resumed it */
    unsigned char trust_digest[32]; /* of the trust of this handshake */
    size_t ra_pos, ra_len;          /* read ahead, not yet taken: ra[ra_pos..ra_len) */
    unsigned char ra[512];          /* TLS records read ahead of BearSSL */
};

#ifdef __cplusplus
}
#endif

#endif /* TLSMAIL_H */

/* ========================== API ends here ================================ */

#ifdef TLSMAIL_IMPLEMENTATION
#ifndef TLSMAIL__IMPLEMENTATION_ONCE
#define TLSMAIL__IMPLEMENTATION_ONCE

#if defined(TLSMAIL_MALLOC) != defined(TLSMAIL_FREE)
#error "tlsmail.h: define both TLSMAIL_MALLOC and TLSMAIL_FREE, or neither"
#endif

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef TLSMAIL_NO_STDIO
#include <dirent.h>
#include <sys/stat.h>
#endif
#ifndef TLSMAIL_NO_SOCKETS
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#endif

#ifndef TLSMAIL_ASSERT
#define TLSMAIL_ASSERT(x) assert(x)
#endif
#ifndef TLSMAIL_MALLOC
#define TLSMAIL_MALLOC(ctx, n) ((void)(ctx), malloc(n))
#define TLSMAIL_FREE(ctx, p) ((void)(ctx), free(p))
#endif

/* Secrets only ever go over TLS; fuzz builds run the whole dialogue on a
   bare stream, the one exception. */
#ifdef TLSMAIL_INSECURE_NO_TLS_FOR_FUZZING
#define TLSMAIL__ASSERT_TLS(c) ((void)(c))
#else
#define TLSMAIL__ASSERT_TLS(c) TLSMAIL_ASSERT((c)->tls)
#endif

#if defined(__GNUC__) || defined(__clang__)
#define TLSMAIL__PRIVATE static __attribute__((unused))
#else
#define TLSMAIL__PRIVATE static
#endif

enum { TLSMAIL__EXT_PIPELINING = 1, TLSMAIL__EXT_8BITMIME = 2, TLSMAIL__EXT_SMTPUTF8 = 4,
       TLSMAIL__EXT_STARTTLS = 8, TLSMAIL__EXT_ENHANCEDSTATUSCODES = 16, TLSMAIL__EXT_SIZE = 32,
       TLSMAIL__EXT_AUTH = 64 };

/* ==== [tlsmail:codecs] pure functions over buffers: no I/O, no heap ==== */

/* RFC 5321 4.5.3.1.6: a text line is at most 1000 octets with its CRLF. */
enum { TLSMAIL__DATA_LINE_MAX = 998 };

/* Locale-free on purpose: <ctype.h> follows setlocale(), and protocol
   keywords are ASCII whatever the user's locale says. */
TLSMAIL__PRIVATE int tlsmail__lower(int c) {
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

TLSMAIL__PRIVATE int tlsmail__isdigit(int c) { return c >= '0' && c <= '9'; }

TLSMAIL__PRIVATE int tlsmail__isalnum(int c) {
    return tlsmail__isdigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

TLSMAIL__PRIVATE int tlsmail__isxdigit(int c) {
    return tlsmail__isdigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

TLSMAIL__PRIVATE int tlsmail__ieq(const char *a, const char *b) {
    if (!a || !b) return a == b;
    for (;; a++, b++) {
        int ca = tlsmail__lower((unsigned char)*a), cb = tlsmail__lower((unsigned char)*b);
        if (ca != cb) return 0;
        if (ca == 0) return 1;
    }
}

/* a[0..alen) against the whole NUL-terminated b: keywords arrive as slices
   of a reply line, not as strings. */
TLSMAIL__PRIVATE int tlsmail__ieqn(const char *a, size_t alen, const char *b) {
    size_t i;
    for (i = 0; i < alen; i++)
        if (b[i] == '\0' || tlsmail__lower((unsigned char)a[i]) != tlsmail__lower((unsigned char)b[i]))
            return 0;
    return b[alen] == '\0';
}

/* A wipe the optimiser cannot prove dead: the call goes through a volatile
   function pointer, so it must really happen even on memory about to die. */
TLSMAIL__PRIVATE void tlsmail__wipe(void *p, size_t n) {
    void *(*volatile set)(void *, int, size_t) = memset;
    if (p && n) set(p, 0, n);
}

/* ---- reply parser (RFC 5321 4.2) ---------------------------------------- */

/* While a line is being read r->code holds minus the reply's code (0 before
   its first line); it turns positive only when a complete line is handed
   out. So a positive code on entry to tlsmail__reply_feed means "the last
   call returned a line": the buffer is recycled then, which keeps r->line
   valid for the caller between the two calls. Fields are meaningful only
   after a return of 1; after an error, tlsmail__reply_init before reuse. */
TLSMAIL__PRIVATE void tlsmail__reply_init(tlsmail__reply *r) {
    memset(r, 0, sizeof *r);
}

/* The LF arrived: r->line[0..len) is the whole line, CR already dropped. */
TLSMAIL__PRIVATE int tlsmail__reply_end(tlsmail__reply *r) {
    const char *s = r->line;
    int code, done;
    r->line[r->len] = '\0';
    if (r->len < 3) return TLSMAIL_EPROTO;
    /* RFC 5321 4.2: Reply-code = %x32-35 %x30-35 %x30-39 */
    if (s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '5' || s[2] < '0' || s[2] > '9')
        return TLSMAIL_EPROTO;
    code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    /* RFC 5321 4.2: "ddd-" continues, "ddd SP text" and a bare "ddd" end. */
    if (r->len == 3 || s[3] == ' ')
        done = 1;
    else if (s[3] == '-')
        done = 0;
    else
        return TLSMAIL_EPROTO;
    /* RFC 5321 4.2.1: every line of a multiline reply carries the same code;
       a change means we lost sync with the server (or text was injected). */
    if (r->nlines > 0 && code != -r->code) return TLSMAIL_EPROTO;
    if (r->nlines >= TLSMAIL_MAX_REPLY_LINES) return TLSMAIL_EPROTO;
    r->nlines++;
    r->code = code;
    r->done = done;
    return 1;
}

TLSMAIL__PRIVATE int tlsmail__reply_feed(tlsmail__reply *r, const unsigned char *p, size_t n,
                                         size_t *used) {
    size_t i;
    if (r->code > 0) { /* the previous call handed out a complete line */
        r->len = 0;
        if (r->done) {
            r->code = 0;
            r->nlines = 0;
            r->done = 0;
        } else {
            r->code = -r->code;
        }
    }
    for (i = 0; i < n; i++) {
        unsigned char c = p[i];
        /* A CR is stored provisionally: it is legal only as the CR of CRLF,
           and only the next byte tells. Any other CR is already an error,
           so a trailing '\r' in the buffer always means "CR pending". */
        int cr = r->len > 0 && r->line[r->len - 1] == '\r';
        if (c == '\n') {
            /* RFC 5321 2.3.8 wants CRLF; a bare LF is accepted as a line end
               too (RFC 5321 4.1.1.4 robustness), since it cannot make us
               misread the reply: the line is validated either way. */
            if (cr) r->len--;
            *used = i + 1;
            return tlsmail__reply_end(r);
        }
        /* Controls (NUL, a CR not before LF, ESC...) have no business in a
           reply and would reach logs and trace callbacks: refuse them.
           Octets >= 0x80 pass (SMTPUTF8 text, RFC 6531 3.7.4). */
        if (cr || (c < 0x20 && c != '\t' && c != '\r') || c == 0x7F) {
            *used = i;
            return TLSMAIL_EPROTO;
        }
        /* RFC 5321 4.5.3.1.5: fail on the first octet past the limit, not at
           the LF, so a server that never ends its line costs bounded memory
           and time. The CR may sit at line[TLSMAIL_MAX_LINE]: it is dropped
           before the line is used. */
        if (r->len >= TLSMAIL_MAX_LINE && c != '\r') {
            *used = i;
            return TLSMAIL_EPROTO;
        }
        r->line[r->len++] = (char)c;
    }
    *used = n;
    return 0;
}

TLSMAIL__PRIVATE const char *tlsmail__reply_text(const tlsmail__reply *r) {
    return r->line + (r->len > 3 ? 4 : r->len);
}

/* RFC 3463 2: status-code = class "." subject "." detail, class 2, 4 or
   5, subject and detail 1 to 3 digits; RFC 2034 3 puts it first in the
   text. Kept only when the class agrees with the reply's code: a text
   that merely starts with digits is not an enhanced status. */
TLSMAIL__PRIVATE void tlsmail__enhanced(const char *t, size_t n, int code, char *out, size_t cap) {
    size_t i = 2, part;
    out[0] = '\0';
    if (n < 5 || t[0] != (char)('0' + code / 100) || t[1] != '.') return;
    for (part = 0; part < 2; part++) {
        size_t d = 0;
        while (i < n && tlsmail__isdigit((unsigned char)t[i]) && d < 4) { i++; d++; }
        if (d == 0 || d > 3) return;
        if (part == 0 && (i >= n || t[i++] != '.')) return;
    }
    if (i < n && t[i] != ' ') return;
    if (i >= cap) return;
    memcpy(out, t, i);
    out[i] = '\0';
}

/* ---- EHLO extensions (RFC 5321 4.1.1.1, RFC 4954) ------------------------ */

TLSMAIL__PRIVATE void tlsmail__ext_init(tlsmail__ext *e) {
    memset(e, 0, sizeof *e);
}

/* RFC 4954 4: the AUTH parameters are SP-separated mechanism names. Only
   whole words count, so "PLAINX" is not PLAIN. */
TLSMAIL__PRIVATE unsigned tlsmail__ext_mechs(const char *s, size_t n) {
    unsigned bits = 0;
    size_t i = 0, j;
    while (i < n) {
        while (i < n && s[i] == ' ') i++;
        for (j = i; j < n && s[j] != ' '; j++) {}
        if (tlsmail__ieqn(s + i, j - i, "PLAIN"))
            bits |= 1u << TLSMAIL_AUTH_PLAIN;
        else if (tlsmail__ieqn(s + i, j - i, "LOGIN"))
            bits |= 1u << TLSMAIL_AUTH_LOGIN;
        i = j;
    }
    return bits;
}

TLSMAIL__PRIVATE void tlsmail__ext_line(tlsmail__ext *e, const char *text, size_t len) {
    /* A local table, not a static one: the codecs keep no storage of their own. */
    const struct { const char *name; unsigned bit; } known[] = {
        { "PIPELINING", TLSMAIL__EXT_PIPELINING },
        { "8BITMIME", TLSMAIL__EXT_8BITMIME },
        { "SMTPUTF8", TLSMAIL__EXT_SMTPUTF8 },
        { "STARTTLS", TLSMAIL__EXT_STARTTLS },
        { "ENHANCEDSTATUSCODES", TLSMAIL__EXT_ENHANCEDSTATUSCODES },
        { "SIZE", TLSMAIL__EXT_SIZE },
        { "AUTH", TLSMAIL__EXT_AUTH },
    };
    size_t k, p, i, need;
    char *dst;
    if (!text || memchr(text, '\0', len)) return;
    /* Pre-RFC 4954 servers (old Exchange, some appliances) announce
       "AUTH=PLAIN LOGIN", often beside a proper AUTH line. It counts as an
       AUTH offer, but is not stored: '=' is not a keyword character. */
    if (len >= 5 && tlsmail__ieqn(text, 5, "AUTH=")) {
        e->flags |= TLSMAIL__EXT_AUTH;
        e->auth |= tlsmail__ext_mechs(text + 5, len - 5);
        return;
    }
    /* RFC 5321 4.1.1.1: ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-").
       Anything else is a line we do not understand: skip it, no error. */
    for (k = 0; k < len && text[k] != ' '; k++)
        if (!tlsmail__isalnum((unsigned char)text[k]) && (k == 0 || text[k] != '-')) return;
    if (k == 0) return;
    for (p = k; p < len && text[p] == ' '; p++) {}

    for (i = 0; i < sizeof known / sizeof known[0]; i++)
        if (tlsmail__ieqn(text, k, known[i].name)) e->flags |= known[i].bit;
    if (tlsmail__ieqn(text, k, "AUTH")) e->auth |= tlsmail__ext_mechs(text + p, len - p);

    /* Flags and mechanisms above are kept even when the text is full: they
       are what the dialogue decides on; the text only serves lookups. */
    need = k + (p < len ? 1 + (len - p) : 0) + 1;
    if (need > sizeof e->text - e->len) return;
    dst = e->text + e->len;
    for (i = 0; i < k; i++) {
        int c = (unsigned char)text[i];
        dst[i] = (char)(c >= 'a' && c <= 'z' ? c - ('a' - 'A') : c);
    }
    if (p < len) {
        dst[k] = ' ';
        memcpy(dst + k + 1, text + p, len - p);
    }
    dst[need - 1] = '\0';
    e->len += need;
}

TLSMAIL__PRIVATE const char *tlsmail__ext_find(const tlsmail__ext *e, const char *name) {
    size_t off = 0;
    if (!name) return NULL;
    while (off < e->len) {
        const char *ent = e->text + off;
        size_t elen = strlen(ent), k;
        for (k = 0; k < elen && ent[k] != ' '; k++) {}
        if (tlsmail__ieqn(ent, k, name)) return ent + k + (k < elen ? 1 : 0);
        off += elen + 1;
    }
    return NULL;
}

/* ---- base64 (RFC 4648 4) ---------------------------------------------------- */

TLSMAIL__PRIVATE size_t tlsmail__b64_encode(char *out, size_t cap, const void *in, size_t n) {
    const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = (const unsigned char *)in;
    size_t i, o = 0, groups;
    if (n == 0) {
        if (cap >= 1) out[0] = '\0';
        return 0;
    }
    groups = n / 3 + (n % 3 != 0);
    if (groups > ((size_t)-1 - 1) / 4 || cap < groups * 4 + 1) return 0;
    for (i = 0; i + 3 <= n; i += 3) {
        unsigned long v = (unsigned long)s[i] << 16 | (unsigned long)s[i + 1] << 8 | s[i + 2];
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = abc[v >> 6 & 63];
        out[o++] = abc[v & 63];
    }
    if (i < n) {
        unsigned long v = (unsigned long)s[i] << 16;
        if (i + 1 < n) v |= (unsigned long)s[i + 1] << 8;
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = i + 1 < n ? abc[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

TLSMAIL__PRIVATE int tlsmail__b64_val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Strict (RFC 4648 3.1, 3.3, 3.5): one encoding per byte string, so a pin or
   a server challenge cannot be smuggled through a lenient alternative. */
TLSMAIL__PRIVATE long tlsmail__b64_decode(unsigned char *out, size_t cap, const char *in, size_t n) {
    size_t i, o = 0, pad = 0, total;
    if (n % 4 != 0) return -1;
    if (n == 0) return 0;
    if (in[n - 1] == '=') pad = in[n - 2] == '=' ? 2 : 1;
    total = n / 4 * 3 - pad;
    if (total > cap || total > (unsigned long)LONG_MAX) return -1;
    for (i = 0; i < n; i += 4) {
        int v[4], k, last = i + 4 == n;
        unsigned long w;
        for (k = 0; k < 4; k++) {
            if (last && (size_t)k >= 4 - pad) {
                v[k] = 0; /* the '=' checked above */
            } else if ((v[k] = tlsmail__b64_val((unsigned char)in[i + (size_t)k])) < 0) {
                return -1; /* includes '=' anywhere but the end */
            }
        }
        w = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 | (unsigned long)v[2] << 6 |
            (unsigned long)v[3];
        out[o++] = (unsigned char)(w >> 16);
        if (last && pad == 2) {
            if (v[1] & 15) return -1; /* non-canonical: bits after the data */
            break;
        }
        out[o++] = (unsigned char)(w >> 8 & 255);
        if (last && pad == 1) {
            if (v[2] & 3) return -1;
            break;
        }
        out[o++] = (unsigned char)(w & 255);
    }
    return (long)o;
}

/* ---- DATA encoder (RFC 5321 4.5.2, 2.3.8) ---------------------------------- */

/* Every bare CR and bare LF becomes CRLF, so no "<LF>.<LF>" or "<CR>.<CR>"
   variant of the end-of-data marker can reach a server that reads line ends
   differently from us (SMTP smuggling, CVE-2023-51764/51765/51766). */
TLSMAIL__PRIVATE void tlsmail__dot_init(tlsmail__dot *d) {
    d->bol = 1;
    d->cr = 0;
    d->linelen = 0;
}

TLSMAIL__PRIVATE int tlsmail__dot_encode(tlsmail__dot *d, const unsigned char *in, size_t n,
                                         unsigned char *out, size_t cap, size_t *used,
                                         size_t *written) {
    size_t i = 0, w = 0;
    int rc = 0;
    while (i < n) {
        unsigned char c = in[i];
        size_t k, more;
        const unsigned char *e;
        if (d->cr && c == '\n') { /* LF of a CRLF whose CR already sent CRLF */
            d->cr = 0;
            i++;
            continue;
        }
        if (cap - w < 2) break;
        if (c == '\r' || c == '\n') {
            out[w++] = '\r';
            out[w++] = '\n';
            d->cr = c == '\r';
            d->bol = 1;
            d->linelen = 0;
            i++;
            continue;
        }
        /* RFC 5321 4.5.3.1.6: 998 octets of text per line. Refused, not
           folded: folding would change the message. */
        if (d->linelen >= TLSMAIL__DATA_LINE_MAX) {
            rc = TLSMAIL_ELINE;
            break;
        }
        if (d->bol && c == '.') out[w++] = '.'; /* RFC 5321 4.5.2 */
        out[w++] = c;
        i++;
        d->bol = 0;
        d->cr = 0;
        d->linelen++;
        /* The rest of the line's text in one copy, found by memchr rather
           than byte by byte: up to the next CR or LF, the line limit, and
           as far as one byte at a time would go (each byte taken with two
           octets of room), so any chunking gives the same bytes. */
        more = cap - w > 1 ? cap - w - 1 : 0;
        k = n - i;
        if (k > more) k = more;
        if (k > TLSMAIL__DATA_LINE_MAX - d->linelen) k = TLSMAIL__DATA_LINE_MAX - d->linelen;
        if (k == 0) continue;
        if ((e = (const unsigned char *)memchr(in + i, '\n', k)) != NULL) k = (size_t)(e - (in + i));
        if ((e = (const unsigned char *)memchr(in + i, '\r', k)) != NULL) k = (size_t)(e - (in + i));
        memcpy(out + w, in + i, k);
        w += k;
        i += k;
        d->linelen += k;
    }
    *used = i;
    *written = w;
    return rc;
}

TLSMAIL__PRIVATE size_t tlsmail__dot_finish(tlsmail__dot *d, unsigned char *out) {
    size_t k = 0;
    /* RFC 5321 4.1.1.4: the terminator is CRLF.CRLF, the first CRLF being
       the end of the last line; add it when the body lacks it. */
    if (!d->bol) {
        out[k++] = '\r';
        out[k++] = '\n';
    }
    out[k++] = '.';
    out[k++] = '\r';
    out[k++] = '\n';
    tlsmail__dot_init(d);
    return k;
}

/* The same line limit over a whole message, a line at a time: memchr
   finds each line end within the limit, so the cost is the C library's
   vectorised scan, not a loop per byte. */
TLSMAIL__PRIVATE int tlsmail__check_lines(const void *msg, size_t len) {
    const unsigned char *s = (const unsigned char *)msg, *end;
    if (len == 0) return 0; /* msg may be NULL then */
    for (end = s + len; s < end;) {
        size_t k = (size_t)(end - s), lim = k > TLSMAIL__DATA_LINE_MAX ? TLSMAIL__DATA_LINE_MAX + 1 : k;
        const unsigned char *e = (const unsigned char *)memchr(s, '\n', lim);
        const unsigned char *r = (const unsigned char *)memchr(s, '\r', e ? (size_t)(e - s) : lim);
        if (r) e = r;
        if (!e) return lim > TLSMAIL__DATA_LINE_MAX ? TLSMAIL_ELINE : 0;
        s = e + 1;
    }
    return 0;
}

/* ---- certificate walker (RFC 5280 4.1, X.690 DER) --------------------------- */

/* BearSSL's minimal X.509 engine checks the chain, the dates, the name and
   the key sizes, but not extendedKeyUsage, and it shows nothing of a
   certificate before its end. This walker reads the same octets as they
   stream past, in constant memory: it keeps the issuer and subject names
   (whole DER, as BearSSL compares them) and the verdict of the
   extendedKeyUsage extension, and refuses what is not DER: no indefinite
   or non-minimal lengths, no TLV beyond its parent, nothing after the end. */

/* What an open TLV is to the walker. */
enum { TLSMAIL__CW_ROOT = 0, TLSMAIL__CW_CERT, TLSMAIL__CW_TBS, TLSMAIL__CW_EXTS_WRAP,
       TLSMAIL__CW_EXTS, TLSMAIL__CW_EXT, TLSMAIL__CW_EKU_OCTETS, TLSMAIL__CW_EKU_LIST };
/* Where the octets of the value being read go. */
enum { TLSMAIL__CV_SKIP = 0, TLSMAIL__CV_ISSUER, TLSMAIL__CV_SUBJECT, TLSMAIL__CV_OID };

/* The buffer the value being read is kept in, and its length; NULL when
   it is skipped. */
TLSMAIL__PRIVATE unsigned char *tlsmail__cw_dest(tlsmail__certwalk *w, size_t **len) {
    switch (w->cv) {
    case TLSMAIL__CV_ISSUER: *len = &w->issuer_len; return w->issuer;
    case TLSMAIL__CV_SUBJECT: *len = &w->subject_len; return w->subject;
    case TLSMAIL__CV_OID: *len = &w->oidlen; return w->oid;
    default: return NULL;
    }
}

/* length: the Certificate entry's, which the DER must fill exactly. */
TLSMAIL__PRIVATE void tlsmail__cw_init(tlsmail__certwalk *w, size_t length) {
    memset(w, 0, sizeof *w);
    w->left[0] = length;
    w->role[0] = TLSMAIL__CW_ROOT;
}

TLSMAIL__PRIVATE int tlsmail__cw_oid_is(const tlsmail__certwalk *w, const char *der, size_t n) {
    return w->oidlen == n && memcmp(w->oid, der, n) == 0;
}

/* A value ended: an extension's OID, or a KeyPurposeId. */
TLSMAIL__PRIVATE void tlsmail__cw_value_end(tlsmail__certwalk *w) {
    /* id-ce-extKeyUsage 2.5.29.37, id-kp-serverAuth 1.3.6.1.5.5.7.3.1 and
       anyExtendedKeyUsage 2.5.29.37.0 (RFC 5280 4.2.1.12), content octets */
    static const char eku[] = "\x55\x1d\x25", server[] = "\x2b\x06\x01\x05\x05\x07\x03\x01",
                      any[] = "\x55\x1d\x25\x00";
    if (w->cv == TLSMAIL__CV_ISSUER) w->issuer_done = 1;
    if (w->cv != TLSMAIL__CV_OID) return;
    if (w->role[w->depth] == TLSMAIL__CW_EXT) {
        w->in_eku = tlsmail__cw_oid_is(w, eku, 3);
        if (w->in_eku) {
            if (w->eku != 0) w->err = 1; /* RFC 5280 4.2: one instance per extension */
            w->eku = -1;                  /* restricted, until a purpose allows us */
        }
    } else if (tlsmail__cw_oid_is(w, server, 8) || tlsmail__cw_oid_is(w, any, 4)) {
        w->eku = 1;
    }
}

/* A TLV header is complete: a part we walk into, a value we keep, or one
   we skip? */
TLSMAIL__PRIVATE void tlsmail__cw_child(tlsmail__certwalk *w, unsigned tag, size_t len) {
    unsigned nth = w->kids[w->depth];
    int into = -1;
    if (nth < 255) w->kids[w->depth]++;
    w->cv = TLSMAIL__CV_SKIP;
    switch (w->role[w->depth]) {
    case TLSMAIL__CW_ROOT: /* Certificate ::= SEQUENCE, exactly one */
        if (tag != 0x30 || nth != 0) { w->err = 1; return; }
        into = TLSMAIL__CW_CERT;
        break;
    case TLSMAIL__CW_CERT: /* tbsCertificate first; the signature is BearSSL's */
        if (nth == 0) {
            if (tag != 0x30) { w->err = 1; return; }
            into = TLSMAIL__CW_TBS;
        }
        break;
    case TLSMAIL__CW_TBS:
        /* version [0], serialNumber, then SEQUENCEs: signature, issuer,
           validity, subject, subjectPublicKeyInfo; unique ids [1] [2];
           extensions [3] */
        if (tag == 0x30) {
            w->seqs++;
            if (w->seqs == 2) w->cv = TLSMAIL__CV_ISSUER;
            if (w->seqs == 4) w->cv = TLSMAIL__CV_SUBJECT;
        } else if (tag == 0xA3) {
            into = TLSMAIL__CW_EXTS_WRAP;
        }
        break;
    case TLSMAIL__CW_EXTS_WRAP:
    case TLSMAIL__CW_EXTS:
    case TLSMAIL__CW_EKU_OCTETS:
        if (tag != 0x30) { w->err = 1; return; }
        into = w->role[w->depth] + 1;
        w->in_eku = w->in_eku && into == TLSMAIL__CW_EKU_LIST;
        break;
    case TLSMAIL__CW_EXT: /* extnID, critical, extnValue */
        if (tag == 0x06 && nth == 0) w->cv = TLSMAIL__CV_OID;
        else if (tag == 0x04 && w->in_eku) into = TLSMAIL__CW_EKU_OCTETS;
        break;
    default: /* TLSMAIL__CW_EKU_LIST: SEQUENCE OF KeyPurposeId (an OID) */
        if (tag != 0x06) { w->err = 1; return; }
        w->cv = TLSMAIL__CV_OID;
        break;
    }
    if (into >= 0) {
        if (w->depth + 1 >= TLSMAIL__CW_DEPTH) { w->err = 1; return; }
        w->depth++;
        w->role[w->depth] = (unsigned char)into;
        w->left[w->depth] = len;
        w->kids[w->depth] = 0;
        return;
    }
    w->reading = 1;
    w->vleft = len;
    if (w->cv == TLSMAIL__CV_OID) {
        w->oidlen = 0;
        if (len > sizeof w->oid) w->cv = TLSMAIL__CV_SKIP; /* no OID of ours is that long */
    } else if (w->cv != TLSMAIL__CV_SKIP) {
        size_t *dl = NULL;
        unsigned char *dn = tlsmail__cw_dest(w, &dl);
        if (len > TLSMAIL__DN_MAX - w->hlen) { /* can't be kept, so can't be looked up */
            w->dn_over = 1;
            w->cv = TLSMAIL__CV_SKIP;
        } else {
            memcpy(dn, w->hdr, w->hlen); /* the name's header is part of its DER */
            *dl = w->hlen;
        }
    }
}

/* Close the value just read and every TLV with no octets left. */
TLSMAIL__PRIVATE void tlsmail__cw_close(tlsmail__certwalk *w) {
    if (w->reading) {
        if (w->vleft) return;
        w->reading = 0;
        tlsmail__cw_value_end(w);
        w->cv = TLSMAIL__CV_SKIP;
    }
    while (w->depth > 0 && w->left[w->depth] == 0) w->depth--;
    if (w->depth == 0 && w->kids[0] && w->left[0] == 0) w->done = 1;
}

/* Feed the next n octets of the certificate. */
TLSMAIL__PRIVATE void tlsmail__cw_push(tlsmail__certwalk *w, const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n && !w->err) {
        if (w->done) { w->err = 1; return; } /* octets after the certificate */
        if (w->reading) {
            size_t k = n - i < w->vleft ? n - i : w->vleft, *dl = NULL;
            unsigned char *dst = tlsmail__cw_dest(w, &dl);
            if (dst) { /* fits: checked against the value's length */
                memcpy(dst + *dl, p + i, k);
                *dl += k;
            }
            w->vleft -= k;
            i += k;
            tlsmail__cw_close(w);
            continue;
        }
        /* a TLV header: one tag octet, then a DER length (X.690 8.1.2, 10.1) */
        w->hdr[w->hlen++] = p[i++];
        if (w->hlen == 1) {
            if ((w->hdr[0] & 0x1F) == 0x1F) w->err = 1; /* X.509 has no high tags */
            continue;
        }
        if (w->hdr[1] & 0x80) {
            size_t nb = w->hdr[1] & 0x7Fu, k, len = 0;
            if (nb == 0 || nb > 3) { w->err = 1; return; } /* indefinite, or over 16 MB */
            if (w->hlen < 2 + nb) continue;
            for (k = 0; k < nb; k++) len = len << 8 | w->hdr[2 + k];
            if (len < 0x80 || w->hdr[2] == 0) { w->err = 1; return; } /* not minimal */
            w->vlen = len;
        } else {
            w->vlen = w->hdr[1];
        }
        if (w->hlen > w->left[w->depth] || w->vlen > w->left[w->depth] - w->hlen) {
            w->err = 1; /* longer than what holds it */
            return;
        }
        w->left[w->depth] -= w->hlen + w->vlen;
        tlsmail__cw_child(w, w->hdr[0], w->vlen);
        w->hlen = 0;
        if (!w->err) tlsmail__cw_close(w);
    }
}

/* ==== [tlsmail:checks] what callers give us, checked before a byte goes out ==== */

/* ---- argument checks (RFC 5321 4.1.2, 4.5.3.1) ------------------------------ */

/* Not a full RFC 5321 Mailbox grammar: the server judges syntax. This only
   guarantees the argument cannot break out of "MAIL FROM:<...>" (no CR, LF,
   NUL, '<' or '>', no bare space) and respects the size limits. */
TLSMAIL__PRIVATE int tlsmail__check_mailbox(const char *addr, int allow_empty) {
    size_t len, i, at = (size_t)-1;
    int q = 0;
    if (!addr) return TLSMAIL_EINVAL;
    for (len = 0; len <= 254 && addr[len]; len++) {}
    /* RFC 5321 4.5.5: "<>" is the null reverse-path, for bounces only. */
    if (len == 0) return allow_empty ? 0 : TLSMAIL_EINVAL;
    if (len > 254) return TLSMAIL_EINVAL; /* RFC 5321 4.5.3.1.3 path limit, less "<>" */
    for (i = 0; i < len; i++)
        if (addr[i] == '@') at = i;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)addr[i];
        if (c < 0x20 || c == 0x7F || c == '<' || c == '>') return TLSMAIL_EINVAL;
        if (q && c == '\\') { /* RFC 5321 4.1.2 quoted-pairSMTP */
            if (++i >= len) return TLSMAIL_EINVAL;
            c = (unsigned char)addr[i];
            if (c < 0x20 || c == 0x7F || c == '<' || c == '>') return TLSMAIL_EINVAL;
            continue;
        }
        if (c == '"') {
            q = !q;
            continue;
        }
        /* A space would end the path on the command line; only a
           Quoted-string local part may hold one. */
        if (c == ' ' && !(q && i < at)) return TLSMAIL_EINVAL;
    }
    if (q) return TLSMAIL_EINVAL;
    if (at != (size_t)-1) {
        size_t dl = len - at - 1;
        /* RFC 5321 4.5.3.1.1 and 4.5.3.1.2 */
        if (at == 0 || at > 64 || dl == 0 || dl > 255) return TLSMAIL_EINVAL;
    }
    return 0;
}

TLSMAIL__PRIVATE int tlsmail__check_token(const char *s, size_t maxlen) {
    size_t i;
    if (!s) return TLSMAIL_EINVAL;
    for (i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= maxlen || c < 0x21 || c == 0x7F) return TLSMAIL_EINVAL;
    }
    return i ? 0 : TLSMAIL_EINVAL;
}

TLSMAIL__PRIVATE int tlsmail__parse_port(const char *s, unsigned *port) {
    unsigned long v = 0;
    if (!*s) return TLSMAIL_EINVAL;
    for (; *s; s++) {
        if (!tlsmail__isdigit((unsigned char)*s)) return TLSMAIL_EINVAL;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 65535) return TLSMAIL_EINVAL;
    }
    if (v == 0) return TLSMAIL_EINVAL;
    *port = (unsigned)v;
    return 0;
}

TLSMAIL_DEF int tlsmail_split_hostport(const char *addr, char *host, size_t hostcap,
                                             unsigned *port, unsigned defport) {
    const char *h, *colon = NULL;
    size_t hl, i, ncolon = 0;
    unsigned p = defport;
    if (!addr || !host || !hostcap || !port) return TLSMAIL_EINVAL;
    for (i = 0; addr[i]; i++) {
        unsigned char c = (unsigned char)addr[i];
        if (c <= 0x20 || c == 0x7F) return TLSMAIL_EINVAL;
        if (c == ':') {
            ncolon++;
            colon = addr + i;
        }
    }
    if (addr[0] == '[') { /* RFC 3986 3.2.2 IP-literal, as Go's net.SplitHostPort */
        const char *close = strchr(addr, ']');
        if (!close) return TLSMAIL_EINVAL;
        h = addr + 1;
        hl = (size_t)(close - h);
        if (memchr(h, '[', hl)) return TLSMAIL_EINVAL;
        if (close[1] == ':') {
            if (tlsmail__parse_port(close + 2, &p)) return TLSMAIL_EINVAL;
        } else if (close[1] != '\0') {
            return TLSMAIL_EINVAL;
        }
    } else {
        if (strchr(addr, '[') || strchr(addr, ']')) return TLSMAIL_EINVAL;
        h = addr;
        if (ncolon == 1) {
            hl = (size_t)(colon - addr);
            if (tlsmail__parse_port(colon + 1, &p)) return TLSMAIL_EINVAL;
        } else {
            /* Several colons and no brackets: an IPv6 address alone; reading
               its last group as a port would dial the wrong address. */
            hl = i;
        }
    }
    if (hl == 0 || hl >= hostcap) return TLSMAIL_EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = p;
    return 0;
}

/* Do want (a host name, or the "host:port" the caller dials) and the
   dialled host name the same server? Case-insensitive, and "example.org."
   is "example.org" (RFC 1034 3.1: the dot only makes the name absolute). */
TLSMAIL__PRIVATE int tlsmail__host_eq(const char *want, const char *host) {
    char h[256];
    unsigned port;
    size_t a, b, i;
    if (tlsmail_split_hostport(want, h, sizeof h, &port, 0) != 0) return 0;
    a = strlen(h);
    b = strlen(host);
    if (a && h[a - 1] == '.') a--;
    if (b && host[b - 1] == '.') b--;
    if (a != b || a == 0) return 0;
    for (i = 0; i < a; i++)
        if (tlsmail__lower((unsigned char)h[i]) != tlsmail__lower((unsigned char)host[i])) return 0;
    return 1;
}

/* Besides dotted quads, getaddrinfo (through inet_aton) reads "127.1",
   "2130706433" and "0x7f.0.0.1" as IPv4 addresses. All of them dial an
   address no certificate dNSName can vouch for, so all of them count: any
   1 to 4 dot-separated numbers (decimal, octal or 0x-hex). No real host name
   looks like this, since a top-level label is never all-numeric
   (RFC 3696 2). */
TLSMAIL__PRIVATE int tlsmail__is_ip_literal(const char *host) {
    const char *s = host;
    int parts = 0;
    if (!host || !*host) return 0;
    if (strchr(host, ':')) return 1;
    for (;;) {
        size_t k = 0;
        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
            for (k = 2; tlsmail__isxdigit((unsigned char)s[k]); k++) {}
        } else {
            while (tlsmail__isdigit((unsigned char)s[k])) k++;
            if (k == 0) return 0;
        }
        s += k;
        parts++;
        if (*s == '\0') return parts <= 4;
        if (*s != '.') return 0;
        s++;
    }
}

/* Has a byte outside ASCII: the address needs SMTPUTF8 (RFC 6531). */
TLSMAIL__PRIVATE int tlsmail__is_8bit(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 1;
    return 0;
}

TLSMAIL_DEF int tlsmail_check_address(const char *addr) { return tlsmail__check_mailbox(addr, 0); }

/* ==== [tlsmail:transport] sockets with bounded waits, or the caller's I/O ==== */

#ifndef TLSMAIL_NO_SOCKETS

#ifdef MSG_NOSIGNAL
#define TLSMAIL__SEND_FLAGS MSG_NOSIGNAL
#else
#define TLSMAIL__SEND_FLAGS 0 /* SO_NOSIGPIPE is set on the socket instead */
#endif

TLSMAIL__PRIVATE long long tlsmail__now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The end of the wait starting now: the per-operation timeout, cut short by
   the session deadline. -1: no limit. */
TLSMAIL__PRIVATE long long tlsmail__wait_end(const tlsmail_client *c) {
    long long end = c->timeout_ms < 0 ? -1 : tlsmail__now_ms() + c->timeout_ms;
    if (c->deadline > 0 && (end < 0 || c->deadline < end)) end = c->deadline;
    return end;
}

/* poll() until fd is ready for events or end passes. EINTR does not restart
   the clock: the bound is on wall time, however many signals arrive. */
TLSMAIL__PRIVATE int tlsmail__poll(int fd, short events, long long end) {
    for (;;) {
        struct pollfd p;
        int ms = -1, r;
        if (end >= 0) {
            long long left = end - tlsmail__now_ms();
            if (left <= 0) return TLSMAIL_ETIMEOUT;
            ms = left > INT_MAX ? INT_MAX : (int)left;
        }
        p.fd = fd;
        p.events = events;
        p.revents = 0;
        r = poll(&p, 1, ms);
        if (r > 0) return 0;
        if (r == 0) return TLSMAIL_ETIMEOUT;
        if (errno != EINTR) return TLSMAIL_EIO;
    }
}

TLSMAIL__PRIVATE int tlsmail__sock_read(void *ctx, unsigned char *buf, size_t len) {
    tlsmail_client *c = (tlsmail_client *)ctx;
    long long end = tlsmail__wait_end(c);
    if (len > INT_MAX) len = INT_MAX;
    for (;;) {
        ssize_t n;
        int err = tlsmail__poll(c->fd, POLLIN, end);
        if (err) return err;
        n = recv(c->fd, buf, len, 0);
        if (n >= 0) return (int)n;
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
        c->sys_err = errno;
        return errno == ECONNRESET ? TLSMAIL_ECLOSED : TLSMAIL_EIO;
    }
}

/* The socket is non-blocking: send first and wait only when the kernel's
   buffer is full. A poll() before every record would double the system
   calls of a large message, which mostly finds room at once. */
TLSMAIL__PRIVATE int tlsmail__sock_write(void *ctx, const unsigned char *buf, size_t len) {
    tlsmail_client *c = (tlsmail_client *)ctx;
    long long end = -2; /* the wait's end, fixed when a wait first starts */
    if (len > INT_MAX) len = INT_MAX;
    for (;;) {
        ssize_t n = send(c->fd, buf, len, TLSMAIL__SEND_FLAGS);
        int err;
        if (n > 0) return (int)n;
        if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
            c->sys_err = n == 0 ? 0 : errno;
            return (n < 0 && (errno == EPIPE || errno == ECONNRESET)) ? TLSMAIL_ECLOSED : TLSMAIL_EIO;
        }
        if (end == -2) end = tlsmail__wait_end(c);
        if ((err = tlsmail__poll(c->fd, POLLOUT, end)) != 0) return err;
    }
}

TLSMAIL__PRIVATE void tlsmail__sock_close(void *ctx) {
    tlsmail_client *c = (tlsmail_client *)ctx;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

/* One address: non-blocking connect bounded by the timeout. */
TLSMAIL__PRIVATE int tlsmail__connect_one(tlsmail_client *c, const struct addrinfo *ai) {
    int fd, one = 1, err, soerr = 0;
    socklen_t sl = sizeof soerr;
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) { c->sys_err = errno; return TLSMAIL_ECONNECT; }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) goto fail;
#ifdef SO_NOSIGPIPE
    (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    /* BearSSL writes a handshake flight as several records and we write one
       command per write: with Nagle each small write could wait for the
       peer's delayed ACK (~40 ms on Linux). */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) goto done;
    if (errno != EINPROGRESS && errno != EINTR) goto fail;
    err = tlsmail__poll(fd, POLLOUT, tlsmail__wait_end(c));
    if (err) { close(fd); return err; }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) goto fail;
    if (soerr) { errno = soerr; goto fail; }
done:
    c->fd = fd;
    return 0;
fail:
    c->sys_err = errno;
    close(fd);
    return TLSMAIL_ECONNECT;
}

/* Every address getaddrinfo gives (IPv6 and IPv4, in its order) until one
   connects. Name resolution itself uses the system resolver and its own
   timeouts (resolv.conf); it cannot be bounded from here portably. */
TLSMAIL__PRIVATE int tlsmail__connect(tlsmail_client *c, const char *host, unsigned port) {
    struct addrinfo hints, *res = NULL, *ai;
    char serv[8];
    int err = TLSMAIL_ECONNECT, gai;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    (void)snprintf(serv, sizeof serv, "%u", port); /* <= 65535: always fits */
    gai = getaddrinfo(host, serv, &hints, &res);
    if (gai != 0 || !res) {
        c->sys_err = gai;
        return TLSMAIL_ERESOLVE;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        err = tlsmail__connect_one(c, ai);
        if (err == 0) break;
        if (c->deadline > 0 && tlsmail__now_ms() >= c->deadline) break;
    }
    freeaddrinfo(res);
    if (err) return err;
    c->io.ctx = c;
    c->io.read = tlsmail__sock_read;
    c->io.write = tlsmail__sock_write;
    c->io.close = tlsmail__sock_close;
    return 0;
}

/* The connection: the caller's transport, or a socket of ours. */
TLSMAIL__PRIVATE int tlsmail__open_transport(tlsmail_client *c, unsigned port) {
    c->port = port;
    return c->cfg->io ? 0 : tlsmail__connect(c, c->host, port);
}

TLSMAIL__PRIVATE int tlsmail__have_transport(const tlsmail_config *cfg) {
    (void)cfg;
    return 1;
}

/* The session deadline starts now; ms < 0: none, 0: the default. */
TLSMAIL__PRIVATE void tlsmail__start_deadline(tlsmail_client *c, int ms) {
    if (ms >= 0) c->deadline = tlsmail__now_ms() + (ms ? ms : TLSMAIL_DEFAULT_DEADLINE_MS);
}

/* Seconds since 1970 (time() is that on every POSIX system). */
TLSMAIL__PRIVATE int tlsmail__unix_time(long long *t) {
    *t = (long long)time(NULL);
    return 0;
}

#else /* TLSMAIL_NO_SOCKETS: the caller's transport is the only one */

TLSMAIL__PRIVATE int tlsmail__open_transport(tlsmail_client *c, unsigned port) {
    c->port = port;
    return c->cfg->io ? 0 : TLSMAIL_EINVAL;
}

TLSMAIL__PRIVATE int tlsmail__have_transport(const tlsmail_config *cfg) { return cfg->io != NULL; }

/* No clock: a session is bounded by the caller's transport alone. */
TLSMAIL__PRIVATE void tlsmail__start_deadline(tlsmail_client *c, int ms) {
    (void)c;
    (void)ms;
}

TLSMAIL__PRIVATE int tlsmail__unix_time(long long *t) {
    *t = 0;
    return TLSMAIL_EINVAL;
}

#endif /* TLSMAIL_NO_SOCKETS */

/* A transport's answer to a read or write of len octets, made safe: more
   than was asked for, or a negative value that is no TLSMAIL_E* code, is a
   broken callback (TLSMAIL_EIO), never a length to trust. */
TLSMAIL__PRIVATE int tlsmail__io_checked(int n, size_t len) {
    if (n > 0 && (size_t)n > len) return TLSMAIL_EIO;
    if (n < TLSMAIL__ERROR_LAST) return TLSMAIL_EIO;
    return n;
}

/* Write all of buf through the transport (plaintext: only the STARTTLS
   prelude and the TLS records themselves go this way). */
TLSMAIL__PRIVATE int tlsmail__io_write_all(tlsmail_client *c, const unsigned char *buf, size_t len) {
    while (len > 0) {
        int n = tlsmail__io_checked(c->io.write(c->io.ctx, buf, len), len);
        if (n <= 0) return n < 0 ? n : TLSMAIL_EIO;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ==== [tlsmail:trust] trust anchors from PEM, the caller, or a pinned key ==== */

enum { TLSMAIL__TRUST_SYSTEM = 0, TLSMAIL__TRUST_LOADED, TLSMAIL__TRUST_USER, TLSMAIL__TRUST_PIN };

/* br_x509_decoder stops for good at its first error and at the end of the
   certificate, and BearSSL 0.6 then jumps through a NULL pointer on the
   next push: so bytes go in only while it still wants them. Bytes after
   the end of the DER are refused (-1): a certificate is one DER object. */
TLSMAIL__PRIVATE int tlsmail__x509_push(br_x509_decoder_context *dc, const void *buf, size_t len) {
    if (len == 0) return 0;
    if (br_x509_decoder_last_error(dc) != BR_ERR_X509_TRUNCATED) return -1;
    br_x509_decoder_push(dc, buf, len);
    return 0;
}

/* One anchor lives in one allocation: the struct's DN and key point into the
   bytes that follow it, so freeing is one call per anchor. 0: added (or
   already there); 1: skipped, a key no chain may rest on; or an error. */
TLSMAIL__PRIVATE int tlsmail__trust_add(tlsmail_trust *t, const unsigned char *dn, size_t dnlen,
                                        const br_x509_pkey *pk, int is_ca) {
    br_x509_trust_anchor *ta;
    unsigned char *mem;
    size_t k1, k2, i;
    const unsigned char *p1, *p2;
    if (pk->key_type == BR_KEYTYPE_RSA) {
        p1 = pk->key.rsa.n; k1 = pk->key.rsa.nlen;
        p2 = pk->key.rsa.e; k2 = pk->key.rsa.elen;
    } else if (pk->key_type == BR_KEYTYPE_EC) {
        p1 = pk->key.ec.q; k1 = pk->key.ec.qlen;
        p2 = NULL; k2 = 0;
    } else {
        return 1; /* a key BearSSL can't use can't anchor anything: skip it */
    }
    /* The policy's RSA floor holds for anchors too (BearSSL checks only the
       chain's keys): a 1024-bit root anchors nothing. Counted in octets
       without leading zeros, as BearSSL counts. */
    if (pk->key_type == BR_KEYTYPE_RSA) {
        size_t z = 0;
        while (z < k1 && p1[z] == 0) z++;
        if (k1 - z < 256) return 1;
    }
    /* A system directory links each certificate under several names. */
    for (i = 0; i < t->count; i++) {
        const br_x509_trust_anchor *o = &t->anchors[i];
        if (o->dn.len == dnlen && memcmp(o->dn.data, dn, dnlen) == 0 &&
            o->pkey.key_type == pk->key_type &&
            (pk->key_type == BR_KEYTYPE_RSA
                 ? o->pkey.key.rsa.nlen == k1 && memcmp(o->pkey.key.rsa.n, p1, k1) == 0
                 : o->pkey.key.ec.qlen == k1 && memcmp(o->pkey.key.ec.q, p1, k1) == 0))
            return 0;
    }
    if (t->count == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        br_x509_trust_anchor *na;
        if (ncap > ((size_t)-1) / sizeof *na) return TLSMAIL_ENOMEM;
        na = (br_x509_trust_anchor *)TLSMAIL_MALLOC(t->alloc_ctx, ncap * sizeof *na);
        if (!na) return TLSMAIL_ENOMEM;
        if (t->count) memcpy(na, t->anchors, t->count * sizeof *na);
        if (t->anchors) TLSMAIL_FREE(t->alloc_ctx, t->anchors);
        t->anchors = na;
        t->cap = ncap;
    }
    mem = (unsigned char *)TLSMAIL_MALLOC(t->alloc_ctx, dnlen + k1 + k2 + 1);
    if (!mem) return TLSMAIL_ENOMEM;
    ta = &t->anchors[t->count];
    memset(ta, 0, sizeof *ta);
    memcpy(mem, dn, dnlen);
    ta->dn.data = mem;
    ta->dn.len = dnlen;
    ta->flags = is_ca ? BR_X509_TA_CA : 0;
    ta->pkey.key_type = pk->key_type;
    memcpy(mem + dnlen, p1, k1);
    if (pk->key_type == BR_KEYTYPE_RSA) {
        memcpy(mem + dnlen + k1, p2, k2);
        ta->pkey.key.rsa.n = mem + dnlen;
        ta->pkey.key.rsa.nlen = k1;
        ta->pkey.key.rsa.e = mem + dnlen + k1;
        ta->pkey.key.rsa.elen = k2;
    } else {
        ta->pkey.key.ec.curve = pk->key.ec.curve;
        ta->pkey.key.ec.q = mem + dnlen;
        ta->pkey.key.ec.qlen = k1;
    }
    t->count++;
    t->kind = TLSMAIL__TRUST_LOADED;
    return 0;
}

/* Streaming PEM -> DER -> X.509 decode, so a bundle is never held whole. */
typedef struct tlsmail__pemload {
    tlsmail_trust *t;
    br_pem_decoder_context pc;
    br_x509_decoder_context dc;
    int in_cert, err;
    int overrun;                    /* DER went on after the decoder stopped */
    size_t certs, dnlen;            /* usable certificates, duplicates too */
    int dn_overflow;
    unsigned char dn[1024];
} tlsmail__pemload;

TLSMAIL__PRIVATE void tlsmail__pem_dn(void *ctx, const void *buf, size_t len) {
    tlsmail__pemload *l = (tlsmail__pemload *)ctx;
    if (len > sizeof l->dn - l->dnlen) { l->dn_overflow = 1; return; }
    memcpy(l->dn + l->dnlen, buf, len);
    l->dnlen += len;
}

TLSMAIL__PRIVATE void tlsmail__pem_der(void *ctx, const void *buf, size_t len) {
    tlsmail__pemload *l = (tlsmail__pemload *)ctx;
    if (tlsmail__x509_push(&l->dc, buf, len) != 0) l->overrun = 1;
}

TLSMAIL__PRIVATE void tlsmail__pem_init(tlsmail__pemload *l, tlsmail_trust *t) {
    memset(l, 0, sizeof *l);
    l->t = t;
    br_pem_decoder_init(&l->pc);
}

/* Feed PEM text. CRs are dropped here so CRLF bundles decode exactly like
   LF ones, whatever BearSSL's decoder makes of a CR. */
TLSMAIL__PRIVATE void tlsmail__pem_feed(tlsmail__pemload *l, const unsigned char *p, size_t n) {
    unsigned char tmp[256];
    while (n > 0 && !l->err) {
        size_t k = 0, off = 0;
        while (n > 0 && k < sizeof tmp) {
            if (*p != '\r') tmp[k++] = *p;
            p++;
            n--;
        }
        while (off < k && !l->err) {
            off += br_pem_decoder_push(&l->pc, tmp + off, k - off);
            switch (br_pem_decoder_event(&l->pc)) {
            case BR_PEM_BEGIN_OBJ: {
                const char *name = br_pem_decoder_name(&l->pc);
                l->in_cert = strcmp(name, "CERTIFICATE") == 0 ||
                             strcmp(name, "X509 CERTIFICATE") == 0;
                if (l->in_cert) {
                    l->dnlen = 0;
                    l->dn_overflow = 0;
                    l->overrun = 0;
                    br_x509_decoder_init(&l->dc, tlsmail__pem_dn, l);
                    br_pem_decoder_setdest(&l->pc, tlsmail__pem_der, l);
                } else {
                    br_pem_decoder_setdest(&l->pc, NULL, NULL);
                }
                break;
            }
            case BR_PEM_END_OBJ:
                if (l->in_cert) {
                    const br_x509_pkey *pk = br_x509_decoder_get_pkey(&l->dc);
                    /* A certificate BearSSL can't parse is skipped, as
                       OpenSSL skips what it can't use in a bundle. */
                    if (pk && !l->dn_overflow && !l->overrun &&
                        br_x509_decoder_last_error(&l->dc) == 0) {
                        int r = tlsmail__trust_add(l->t, l->dn, l->dnlen, pk,
                                                   br_x509_decoder_isCA(&l->dc));
                        if (r < 0) l->err = r;
                        l->certs += r == 0;
                    }
                    l->in_cert = 0;
                }
                break;
            case BR_PEM_ERROR:
                l->err = TLSMAIL_ETRUST;
                break;
            default:
                break;
            }
        }
    }
}

/* A last "-----END CERTIFICATE-----" without a newline would otherwise stay
   pending in the decoder and the certificate would be silently dropped. */
TLSMAIL__PRIVATE int tlsmail__pem_finish(tlsmail__pemload *l) {
    tlsmail__pem_feed(l, (const unsigned char *)"\n", 1);
    if (l->err) return l->err;
    return l->certs ? 0 : TLSMAIL_ETRUST;
}

TLSMAIL_DEF void tlsmail_trust_free(tlsmail_trust *t) {
    size_t i;
    void *ctx;
    if (!t) return;
    ctx = t->alloc_ctx;
    if (t->anchors) { /* only loaded anchors live here; the caller's never do */
        for (i = 0; i < t->count; i++) TLSMAIL_FREE(ctx, (void *)t->anchors[i].dn.data);
        TLSMAIL_FREE(ctx, t->anchors);
    }
    memset(t, 0, sizeof *t);
    t->alloc_ctx = ctx;
}

TLSMAIL_DEF int tlsmail_trust_pem(tlsmail_trust *t, const void *pem, size_t len) {
    tlsmail__pemload *l;
    int err;
    if (!t || (!pem && len) || t->kind == TLSMAIL__TRUST_USER || t->kind == TLSMAIL__TRUST_PIN)
        return TLSMAIL_EINVAL;
    l = (tlsmail__pemload *)TLSMAIL_MALLOC(t->alloc_ctx, sizeof *l);
    if (!l) return TLSMAIL_ENOMEM;
    tlsmail__pem_init(l, t);
    tlsmail__pem_feed(l, (const unsigned char *)pem, len);
    err = tlsmail__pem_finish(l);
    TLSMAIL_FREE(t->alloc_ctx, l);
    return err;
}

#ifndef TLSMAIL_NO_STDIO

TLSMAIL_DEF int tlsmail_trust_file(tlsmail_trust *t, const char *path) {
    tlsmail__pemload *l;
    unsigned char buf[4096];
    size_t n;
    int err;
    FILE *f;
    if (!t || !path || t->kind == TLSMAIL__TRUST_USER || t->kind == TLSMAIL__TRUST_PIN)
        return TLSMAIL_EINVAL;
    f = fopen(path, "rb");
    if (!f) return TLSMAIL_ETRUST;
    l = (tlsmail__pemload *)TLSMAIL_MALLOC(t->alloc_ctx, sizeof *l);
    if (!l) { (void)fclose(f); return TLSMAIL_ENOMEM; }
    tlsmail__pem_init(l, t);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) tlsmail__pem_feed(l, buf, n);
    err = ferror(f) ? TLSMAIL_ETRUST : tlsmail__pem_finish(l);
    (void)fclose(f); /* read-only: nothing to lose */
    TLSMAIL_FREE(t->alloc_ctx, l);
    return err;
}

/* Certificate files by the names people and c_rehash give them. */
TLSMAIL__PRIVATE int tlsmail__cert_name(const char *name) {
    size_t n = strlen(name), i;
    if (n > 4 && (strcmp(name + n - 4, ".pem") == 0 || strcmp(name + n - 4, ".crt") == 0))
        return 1;
    if (n < 10 || name[8] != '.') return 0; /* OpenSSL hash link: 8 hex, '.', digits */
    for (i = 0; i < n; i++) {
        char ch = name[i];
        if (i < 8 ? !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))
                  : i > 8 && !(ch >= '0' && ch <= '9'))
            return 0;
    }
    return 1;
}

/* One directory, or several separated by ':' as in OpenSSL's SSL_CERT_DIR.
   A file that doesn't load is skipped; no certificate at all is an error. */
TLSMAIL_DEF int tlsmail_trust_dir(tlsmail_trust *t, const char *path) {
    char dir[1024], file[2048];
    size_t loaded = 0;
    if (!t || !path || t->kind == TLSMAIL__TRUST_USER || t->kind == TLSMAIL__TRUST_PIN)
        return TLSMAIL_EINVAL;
    while (*path) {
        const char *sep = strchr(path, ':');
        size_t len = sep ? (size_t)(sep - path) : strlen(path);
        DIR *d;
        struct dirent *e;
        if (len > 0 && len < sizeof dir) {
            memcpy(dir, path, len);
            dir[len] = 0;
            if ((d = opendir(dir)) != NULL) {
                while ((e = readdir(d)) != NULL) {
                    struct stat st;
                    int r;
                    if (!tlsmail__cert_name(e->d_name)) continue;
                    r = snprintf(file, sizeof file, "%s/%s", dir, e->d_name);
                    if (r < 0 || (size_t)r >= sizeof file) continue;
                    if (stat(file, &st) != 0 || !S_ISREG(st.st_mode)) continue;
                    r = tlsmail_trust_file(t, file);
                    if (r == TLSMAIL_ENOMEM) {
                        closedir(d);
                        return TLSMAIL_ENOMEM;
                    }
                    loaded += r == 0;
                }
                closedir(d);
            }
        }
        path += len;
        if (*path == ':') path++;
    }
    return loaded ? 0 : TLSMAIL_ETRUST;
}

TLSMAIL_DEF int tlsmail_trust_system(tlsmail_trust *t) {
    static const char *const files[] = {
        "/etc/ssl/certs/ca-certificates.crt",               /* Debian, Ubuntu, Arch, Gentoo */
        "/etc/pki/tls/certs/ca-bundle.crt",                 /* Fedora, RHEL, CentOS */
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",/* RHEL 7+ */
        "/etc/ssl/ca-bundle.pem",                           /* openSUSE */
        "/etc/ssl/cert.pem",                                /* Alpine, macOS, OpenBSD */
        "/usr/local/share/certs/ca-root-nss.crt",           /* FreeBSD */
        "/usr/local/etc/ssl/cert.pem",                      /* FreeBSD, DragonFly */
        "/etc/openssl/certs/ca-certificates.crt",           /* NetBSD */
        "/etc/pki/tls/cacert.pem",                          /* OpenELEC */
    };
    static const char *const dirs = "/etc/ssl/certs:/etc/pki/tls/certs:/system/etc/security/cacerts";
    const char *envf, *envd;
    size_t i;
    int err = TLSMAIL_ETRUST;
    if (!t || t->kind == TLSMAIL__TRUST_USER || t->kind == TLSMAIL__TRUST_PIN) return TLSMAIL_EINVAL;
    envf = getenv("SSL_CERT_FILE");
    envd = getenv("SSL_CERT_DIR");
    if ((envf && *envf) || (envd && *envd)) {
        /* The environment replaces the defaults, as in OpenSSL and Go: a
           test CA set there is the only trust, never an addition. */
        int ef = envf && *envf ? tlsmail_trust_file(t, envf) : TLSMAIL_ETRUST;
        int ed = envd && *envd ? tlsmail_trust_dir(t, envd) : TLSMAIL_ETRUST;
        if (ef == TLSMAIL_ENOMEM || ed == TLSMAIL_ENOMEM) return TLSMAIL_ENOMEM;
        return t->count ? 0 : TLSMAIL_ETRUST;
    }
    for (i = 0; i < sizeof files / sizeof files[0]; i++) {
        err = tlsmail_trust_file(t, files[i]);
        if (err != TLSMAIL_ETRUST) return err;
    }
    return tlsmail_trust_dir(t, dirs);
}

/* The trust a zeroed tlsmail_trust stands for. */
TLSMAIL__PRIVATE int tlsmail__default_trust(tlsmail_trust *t) { return tlsmail_trust_system(t); }

#else /* TLSMAIL_NO_STDIO: no filesystem, so no system store */

TLSMAIL__PRIVATE int tlsmail__default_trust(tlsmail_trust *t) {
    (void)t;
    return TLSMAIL_ETRUST; /* pass anchors, PEM or a pin */
}

#endif /* TLSMAIL_NO_STDIO */

TLSMAIL_DEF int tlsmail_trust_anchors(tlsmail_trust *t, const br_x509_trust_anchor *ta, size_t n) {
    if (!t || !ta || !n || t->kind != TLSMAIL__TRUST_SYSTEM) return TLSMAIL_EINVAL;
    t->kind = TLSMAIL__TRUST_USER;
    t->user_anchors = ta;
    t->count = n;
    return 0;
}

TLSMAIL_DEF int tlsmail_trust_pin_sha256(tlsmail_trust *t, const char *b64) {
    unsigned char h[33];
    if (!t || !b64 || t->kind != TLSMAIL__TRUST_SYSTEM) return TLSMAIL_EINVAL;
    if (strncmp(b64, "sha256//", 8) == 0) b64 += 8;
    if (tlsmail__b64_decode(h, sizeof h, b64, strlen(b64)) != 32) return TLSMAIL_EINVAL;
    memcpy(t->pin, h, 32);
    t->kind = TLSMAIL__TRUST_PIN;
    return 0;
}

/* ==== [tlsmail:pin] an X.509 engine that trusts exactly one public key ==== */

/* DER length of a TLV body of n octets. */
TLSMAIL__PRIVATE size_t tlsmail__der_len(unsigned char *out, size_t n) {
    if (n < 0x80) { out[0] = (unsigned char)n; return 1; }
    if (n < 0x100) { out[0] = 0x81; out[1] = (unsigned char)n; return 2; }
    out[0] = 0x82; out[1] = (unsigned char)(n >> 8); out[2] = (unsigned char)n;
    return 3;
}

/* Header of a TLV written right before its body, which sits at out[off..]. */
TLSMAIL__PRIVATE size_t tlsmail__der_wrap(unsigned char *out, size_t off, size_t len, unsigned char tag) {
    unsigned char h[4];
    size_t hl;
    h[0] = tag;
    hl = 1 + tlsmail__der_len(h + 1, len);
    memcpy(out + off - hl, h, hl);
    return hl;
}

/* A DER INTEGER of an unsigned big-endian magnitude, written ending at out[end]. */
TLSMAIL__PRIVATE size_t tlsmail__der_uint(unsigned char *out, size_t end, const unsigned char *v, size_t n) {
    size_t len;
    while (n > 1 && v[0] == 0) { v++; n--; }
    len = n;
    memcpy(out + end - n, v, n);
    if (v[0] & 0x80) { out[end - n - 1] = 0; len++; }
    return len + tlsmail__der_wrap(out, end - len, len, 0x02);
}

/* Rebuild the SubjectPublicKeyInfo from BearSSL's decoded key (it keeps no
   DER of it) and hash it: RFC 5280 4.1.2.7, RFC 3279 2.3.1 and RFC 5480. The
   encoding is canonical DER, which is what certificates carry. Written
   back to front so lengths are known when headers go in. */
TLSMAIL__PRIVATE int tlsmail__spki_sha256(const br_x509_pkey *pk, unsigned char hash[32]) {
    static const unsigned char rsa_alg[] = { 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                             0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00 };
    static const unsigned char ec_oid[] = { 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01 };
    static const unsigned char p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    static const unsigned char p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
    static const unsigned char p521[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23 };
    unsigned char buf[1200];
    size_t end = sizeof buf, pos = end, len;
    br_sha256_context h;
    if (pk->key_type == BR_KEYTYPE_RSA) {
        if (pk->key.rsa.nlen + pk->key.rsa.elen > 1100 || !pk->key.rsa.nlen || !pk->key.rsa.elen)
            return -1;
        pos -= tlsmail__der_uint(buf, pos, pk->key.rsa.e, pk->key.rsa.elen);
        pos -= tlsmail__der_uint(buf, pos, pk->key.rsa.n, pk->key.rsa.nlen);
        pos -= tlsmail__der_wrap(buf, pos, end - pos, 0x30);
        buf[--pos] = 0; /* no unused bits */
        pos -= tlsmail__der_wrap(buf, pos, end - pos, 0x03);
        pos -= sizeof rsa_alg;
        memcpy(buf + pos, rsa_alg, sizeof rsa_alg);
    } else if (pk->key_type == BR_KEYTYPE_EC) {
        const unsigned char *curve;
        size_t clen;
        switch (pk->key.ec.curve) {
        case BR_EC_secp256r1: curve = p256; clen = sizeof p256; break;
        case BR_EC_secp384r1: curve = p384; clen = sizeof p384; break;
        case BR_EC_secp521r1: curve = p521; clen = sizeof p521; break;
        default: return -1;
        }
        if (pk->key.ec.qlen > 200) return -1;
        pos -= pk->key.ec.qlen;
        memcpy(buf + pos, pk->key.ec.q, pk->key.ec.qlen);
        buf[--pos] = 0;
        pos -= tlsmail__der_wrap(buf, pos, end - pos, 0x03);
        len = end - pos;
        pos -= clen;
        memcpy(buf + pos, curve, clen);
        pos -= sizeof ec_oid;
        memcpy(buf + pos, ec_oid, sizeof ec_oid);
        pos -= tlsmail__der_wrap(buf, pos, end - pos - len, 0x30);
    } else {
        return -1;
    }
    pos -= tlsmail__der_wrap(buf, pos, end - pos, 0x30);
    br_sha256_init(&h);
    br_sha256_update(&h, buf + pos, end - pos);
    br_sha256_out(&h, hash);
    return 0;
}

TLSMAIL__PRIVATE void tlsmail__pin_dn(void *ctx, const void *buf, size_t len) {
    (void)ctx; (void)buf; (void)len; /* the pin is on the key, not the name */
}

TLSMAIL__PRIVATE void tlsmail__pin_start_chain(const br_x509_class **ctx, const char *server_name) {
    tlsmail__pin *p = (tlsmail__pin *)(void *)ctx;
    (void)server_name;
    p->ncert = 0;
    p->err = 0;
    p->overrun = 0;
}

TLSMAIL__PRIVATE void tlsmail__pin_start_cert(const br_x509_class **ctx, uint32_t length) {
    tlsmail__pin *p = (tlsmail__pin *)(void *)ctx;
    (void)length;
    if (p->ncert == 0) br_x509_decoder_init(&p->dc, tlsmail__pin_dn, NULL);
}

TLSMAIL__PRIVATE void tlsmail__pin_append(const br_x509_class **ctx, const unsigned char *buf, size_t len) {
    tlsmail__pin *p = (tlsmail__pin *)(void *)ctx;
    if (p->ncert == 0 && tlsmail__x509_push(&p->dc, buf, len) != 0) p->overrun = 1;
}

/* Only the server's own certificate matters: the rest of the chain is not
   looked at, since the pin replaces the CA. */
TLSMAIL__PRIVATE void tlsmail__pin_end_cert(const br_x509_class **ctx) {
    tlsmail__pin *p = (tlsmail__pin *)(void *)ctx;
    if (p->ncert++ == 0) {
        const br_x509_pkey *k = br_x509_decoder_get_pkey(&p->dc);
        unsigned char h[32];
        int derr = br_x509_decoder_last_error(&p->dc);
        if (!derr && p->overrun) derr = BR_ERR_X509_EXTRA_ELEMENT;
        if (derr || !k) { p->err = derr ? derr : BR_ERR_X509_UNSUPPORTED; return; }
        if (tlsmail__spki_sha256(k, h) != 0) { p->err = BR_ERR_X509_UNSUPPORTED; return; }
        if (memcmp(h, p->pin, 32) != 0) { p->err = BR_ERR_X509_NOT_TRUSTED; p->mismatch = 1; return; }
        /* Keep a copy: the decoder's buffers are reused. */
        p->pkey = *k;
        if (k->key_type == BR_KEYTYPE_RSA) {
            if (k->key.rsa.nlen + k->key.rsa.elen > sizeof p->key) { p->err = BR_ERR_X509_UNSUPPORTED; return; }
            memcpy(p->key, k->key.rsa.n, k->key.rsa.nlen);
            memcpy(p->key + k->key.rsa.nlen, k->key.rsa.e, k->key.rsa.elen);
            p->pkey.key.rsa.n = p->key;
            p->pkey.key.rsa.e = p->key + k->key.rsa.nlen;
        } else {
            if (k->key.ec.qlen > sizeof p->key) { p->err = BR_ERR_X509_UNSUPPORTED; return; }
            memcpy(p->key, k->key.ec.q, k->key.ec.qlen);
            p->pkey.key.ec.q = p->key;
        }
    }
}

TLSMAIL__PRIVATE unsigned tlsmail__pin_end_chain(const br_x509_class **ctx) {
    tlsmail__pin *p = (tlsmail__pin *)(void *)ctx;
    if (p->ncert == 0) return BR_ERR_X509_EMPTY_CHAIN;
    return (unsigned)p->err;
}

TLSMAIL__PRIVATE const br_x509_pkey *tlsmail__pin_get_pkey(const br_x509_class *const *ctx, unsigned *usages) {
    const tlsmail__pin *p = (const tlsmail__pin *)(const void *)ctx;
    if (usages) *usages = BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN;
    return p->err ? NULL : &p->pkey;
}

static const br_x509_class tlsmail__pin_vtable = {
    sizeof(tlsmail__pin), tlsmail__pin_start_chain, tlsmail__pin_start_cert,
    tlsmail__pin_append, tlsmail__pin_end_cert, tlsmail__pin_end_chain, tlsmail__pin_get_pkey
};

/* ==== [tlsmail:x509] the certificate policy on top of BearSSL's engine ==== */

/* BearSSL's minimal engine validates the chain: signatures, dates, names,
   basicConstraints on issuers, key sizes (set to RSA >= 2048 below). This
   engine wraps it and adds what it does not check: every certificate it
   uses must allow serverAuth when it carries an extendedKeyUsage extension
   (RFC 5280 4.2.1.12; OpenSSL's -purpose sslserver checks issuers too),
   and must be DER. The bytes go to our walker first, then to BearSSL. */

#define TLSMAIL__X509(ctx) ((tlsmail__x509 *)(void *)(ctx))
#define TLSMAIL__INNER(x) (&(x)->xc.vtable)

TLSMAIL__PRIVATE void tlsmail__x509_start_chain(const br_x509_class **ctx, const char *server_name) {
    tlsmail__x509 *x = TLSMAIL__X509(ctx);
    x->err = 0;
    x->xc.vtable->start_chain(TLSMAIL__INNER(x), server_name);
}

TLSMAIL__PRIVATE void tlsmail__x509_start_cert(const br_x509_class **ctx, uint32_t length) {
    tlsmail__x509 *x = TLSMAIL__X509(ctx);
    /* Once a certificate reached an anchor BearSSL reads no more of the
       chain: extra certificates a server sends are not judged. */
    x->skip = x->xc.err == BR_ERR_X509_OK;
    tlsmail__cw_init(&x->cw, length);
    x->xc.vtable->start_cert(TLSMAIL__INNER(x), length);
}

TLSMAIL__PRIVATE void tlsmail__x509_append(const br_x509_class **ctx, const unsigned char *buf,
                                           size_t len) {
    tlsmail__x509 *x = TLSMAIL__X509(ctx);
    if (!x->skip && !x->err) tlsmail__cw_push(&x->cw, buf, len);
    x->xc.vtable->append(TLSMAIL__INNER(x), buf, len);
}

TLSMAIL__PRIVATE void tlsmail__x509_end_cert(const br_x509_class **ctx) {
    tlsmail__x509 *x = TLSMAIL__X509(ctx);
    if (!x->skip && !x->err) {
        if (x->cw.err || !x->cw.done) x->err = BR_ERR_X509_INVALID_VALUE;
        else if (x->cw.eku < 0) x->err = BR_ERR_X509_FORBIDDEN_KEY_USAGE;
    }
    x->xc.vtable->end_cert(TLSMAIL__INNER(x));
}

/* BearSSL's verdict first (it is the more fundamental one), then ours. */
TLSMAIL__PRIVATE unsigned tlsmail__x509_end_chain(const br_x509_class **ctx) {
    tlsmail__x509 *x = TLSMAIL__X509(ctx);
    unsigned r = x->xc.vtable->end_chain(TLSMAIL__INNER(x));
    return r ? r : (unsigned)x->err;
}

TLSMAIL__PRIVATE const br_x509_pkey *tlsmail__x509_get_pkey(const br_x509_class *const *ctx,
                                                            unsigned *usages) {
    const tlsmail__x509 *x = (const tlsmail__x509 *)(const void *)ctx;
    if (x->err) return NULL;
    return x->xc.vtable->get_pkey(&x->xc.vtable, usages);
}

static const br_x509_class tlsmail__x509_vtable = {
    sizeof(tlsmail__x509), tlsmail__x509_start_chain, tlsmail__x509_start_cert,
    tlsmail__x509_append, tlsmail__x509_end_cert, tlsmail__x509_end_chain, tlsmail__x509_get_pkey
};

/* ==== [tlsmail:stream] the byte stream the dialogue speaks over: TLS ==== */

/* BearSSL asks for a record's 5-octet header, then for the rest: two reads
   of the transport for every reply. Small requests are served from a
   read-ahead of sizeof c->ra instead, which holds a whole SMTP reply's
   record, so a reply costs one read (and one wait). Large ones (the
   certificates) go straight into BearSSL's buffer once it is empty. */
TLSMAIL__PRIVATE int tlsmail__low_read(void *ctx, unsigned char *buf, size_t len) {
    tlsmail_client *c = (tlsmail_client *)ctx;
    unsigned char *to = buf;
    size_t cap = len, k;
    int n;
    if (c->ra_pos == c->ra_len) {
        if (len < sizeof c->ra) {
            to = c->ra;
            cap = sizeof c->ra;
        }
        n = tlsmail__io_checked(c->io.read(c->io.ctx, to, cap), cap);
        if (n <= 0) {
            c->io_err = n == 0 ? TLSMAIL_ECLOSED : n;
            return -1;
        }
        k = (size_t)n < sizeof c->first - c->nfirst ? (size_t)n : sizeof c->first - c->nfirst;
        memcpy(c->first + c->nfirst, to, k);
        c->nfirst += k;
        if (to == buf) return n;
        c->ra_pos = 0;
        c->ra_len = (size_t)n;
    }
    k = c->ra_len - c->ra_pos < len ? c->ra_len - c->ra_pos : len;
    memcpy(buf, c->ra + c->ra_pos, k);
    c->ra_pos += k;
    return (int)k;
}

TLSMAIL__PRIVATE int tlsmail__low_write(void *ctx, const unsigned char *buf, size_t len) {
    tlsmail_client *c = (tlsmail_client *)ctx;
    int n = tlsmail__io_checked(c->io.write(c->io.ctx, buf, len), len);
    if (n > 0) return n;
    c->io_err = n == 0 ? TLSMAIL_EIO : n;
    return -1;
}

/* After a br_sslio_* failure: say whether the network, the certificate or
   TLS itself failed. BearSSL's number stays readable (tlsmail_tls_error). */
TLSMAIL__PRIVATE int tlsmail__tls_error(tlsmail_client *c) {
    int e = br_ssl_engine_last_error(&c->sc.eng);
    /* With one buffer for both directions BearSSL can't write while the
       server's unread data fills it: the server spoke out of turn. */
    if (e == BR_ERR_OK && (br_ssl_engine_current_state(&c->sc.eng) & BR_SSL_RECVAPP))
        return TLSMAIL_EPROTO;
    if (e == BR_ERR_OK || e == BR_ERR_IO) /* the transport failed, or a clean close */
        return c->io_err ? c->io_err : TLSMAIL_ECLOSED;
    c->br_err = e;
    if (c->trust->kind == TLSMAIL__TRUST_PIN && c->x509.pin.mismatch) return TLSMAIL_ECERT_PIN;
    switch (e) {
    case BR_ERR_X509_EXPIRED: return TLSMAIL_ECERT_EXPIRED;
    case BR_ERR_X509_BAD_SERVER_NAME: return TLSMAIL_ECERT_NAME;
    /* the certificate's keyUsage forbids what the server does with it */
    case BR_ERR_WRONG_KEY_USAGE: return TLSMAIL_ECERT_UNTRUSTED;
    default:
        /* Any other verdict of the X.509 engine (unknown issuer, bad
           signature, not a CA, weak key, ...) means: not trusted. */
        if (e >= BR_ERR_X509_OK && e < BR_ERR_X509_OK + 32) return TLSMAIL_ECERT_UNTRUSTED;
        return TLSMAIL_ETLS;
    }
}

TLSMAIL__PRIVATE void tlsmail__tls_suites(br_ssl_engine_context *eng) {
    static const uint16_t aes_first[] = {
        BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    };
    static const uint16_t chacha_first[] = {
        BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
    };
    int hw = br_aes_x86ni_ctr_get_vtable() != NULL && br_ghash_pclmul_get() != 0;
    br_ssl_engine_set_versions(eng, BR_TLS12, BR_TLS12);
    br_ssl_engine_set_suites(eng, hw ? aes_first : chacha_first,
                             sizeof aes_first / sizeof aes_first[0]);
}

/* What we offer and accept, registered piece by piece instead of
   br_ssl_client_init_full, so a static link carries only this:
   - TLS 1.2 only, ECDHE with AEAD suites: forward secrecy and no CBC
     padding oracles. AES-GCM leads where the CPU has AES-NI and PCLMUL
     (several times ChaCha20's speed there); elsewhere ChaCha20-Poly1305
     does, fast and constant-time in software. The server picks.
   - Signatures (ServerKeyExchange, certificates) with SHA-256, SHA-384 or
     SHA-512 only: without SHA-1 and SHA-224 registered, BearSSL neither
     offers them in signature_algorithms nor verifies with them (RFC 9155).
   - RSA keys of 2048 bits or more in the chain (BearSSL's EC support is
     P-256 and up already).
   - No renegotiation: a server's HelloRequest gets a no_renegotiation
     alert (RFC 5746 leaves that to the client).
   The X.509 engine gets the same hashes: SHA-256 also names DNs. */
TLSMAIL__PRIVATE void tlsmail__tls_profile(br_ssl_client_context *sc, br_x509_minimal_context *xc) {
    static const br_hash_class *const hashes[] = { &br_sha256_vtable, &br_sha384_vtable,
                                                   &br_sha512_vtable };
    br_ssl_engine_context *eng = &sc->eng;
    size_t i;
    br_ssl_client_zero(sc);
    br_x509_minimal_init(xc, &br_sha256_vtable, NULL, 0);
    tlsmail__tls_suites(eng);
    br_ssl_engine_add_flags(eng, BR_OPT_NO_RENEGOTIATION);
    br_ssl_engine_set_default_rsavrfy(eng);
    br_ssl_engine_set_default_ecdsa(eng);
    br_x509_minimal_set_rsa(xc, br_ssl_engine_get_rsavrfy(eng));
    br_x509_minimal_set_ecdsa(xc, br_ssl_engine_get_ec(eng), br_ssl_engine_get_ecdsa(eng));
    br_x509_minimal_set_minrsa(xc, 256);
    for (i = 0; i < sizeof hashes / sizeof hashes[0]; i++) {
        int id = (int)(hashes[i]->desc >> BR_HASHDESC_ID_OFF & BR_HASHDESC_ID_MASK);
        br_ssl_engine_set_hash(eng, id, hashes[i]);
        br_x509_minimal_set_hash(xc, id, hashes[i]);
    }
    br_ssl_engine_set_prf_sha256(eng, &br_tls12_sha256_prf);
    br_ssl_engine_set_prf_sha384(eng, &br_tls12_sha384_prf);
    br_ssl_engine_set_default_aes_gcm(eng);
    br_ssl_engine_set_default_chapol(eng);
}

/* ---- session resumption: what may be resumed, and when ------------------- */

/* A resumed handshake skips the certificate check, so a session may only
   be offered under the trust that checked it. The trust is named by a
   digest of everything in it that decides what is accepted: its kind, the
   pin, and every anchor's name, flags and key, in order (the same bytes in
   another process give the same digest, so an exported session keeps its
   binding). A change to what tlsmail_trust can hold must be added here. */
TLSMAIL__PRIVATE void tlsmail__digest_num(br_sha256_context *h, size_t v) {
    unsigned char b[4];
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
    br_sha256_update(h, b, 4);
}

/* Length-prefixed, so no two sequences of fields hash alike. */
TLSMAIL__PRIVATE void tlsmail__digest_blob(br_sha256_context *h, const void *p, size_t n) {
    tlsmail__digest_num(h, n);
    if (n) br_sha256_update(h, p, n);
}

TLSMAIL__PRIVATE void tlsmail__trust_digest(const tlsmail_trust *t, unsigned char out[32]) {
    br_sha256_context h;
    const br_x509_trust_anchor *ta = t->kind == TLSMAIL__TRUST_USER ? t->user_anchors : t->anchors;
    size_t i, n = t->kind == TLSMAIL__TRUST_PIN ? 0 : t->count;
    br_sha256_init(&h);
    tlsmail__digest_num(&h, (size_t)t->kind);
    if (t->kind == TLSMAIL__TRUST_PIN) tlsmail__digest_blob(&h, t->pin, sizeof t->pin);
    tlsmail__digest_num(&h, n);
    for (i = 0; i < n; i++) {
        const br_x509_pkey *k = &ta[i].pkey;
        tlsmail__digest_blob(&h, ta[i].dn.data, ta[i].dn.len);
        tlsmail__digest_num(&h, ta[i].flags);
        tlsmail__digest_num(&h, k->key_type);
        if (k->key_type == BR_KEYTYPE_RSA) {
            tlsmail__digest_blob(&h, k->key.rsa.n, k->key.rsa.nlen);
            tlsmail__digest_blob(&h, k->key.rsa.e, k->key.rsa.elen);
        } else {
            tlsmail__digest_num(&h, (size_t)k->key.ec.curve);
            tlsmail__digest_blob(&h, k->key.ec.q, k->key.ec.qlen);
        }
    }
    br_sha256_out(&h, out);
}

/* Within TLSMAIL_SESSION_LIFETIME of its full handshake, by the clock.
   Without a clock there is nothing to measure: the caller's clearing is
   the limit. With one, a session of unknown age (created 0: made without
   a clock, or imported so) counts as too old. */
TLSMAIL__PRIVATE int tlsmail__session_fresh(const tlsmail_session *s) {
    long long now;
    if (tlsmail__unix_time(&now) != 0) return 1;
    return s->created > 0 && now >= s->created && now - s->created < TLSMAIL_SESSION_LIFETIME;
}

/* For br_ssl_client_reset's resume flag: 1 after the configured session
   went into the engine, for the ClientHello to offer. Only a session
   verified for this host name, port and trust, and still fresh. */
TLSMAIL__PRIVATE int tlsmail__session_offer(tlsmail_client *c) {
    tlsmail_session *s = c->cfg ? c->cfg->session : NULL;
    c->session_offered = c->session_resumed = 0;
    if (!s) return 0;
    tlsmail__trust_digest(c->trust, c->trust_digest);
    if (!s->valid || !tlsmail__session_fresh(s) || s->port != c->port ||
        !tlsmail__host_eq(s->host, c->host) || memcmp(s->trust, c->trust_digest, 32) != 0)
        return 0;
    br_ssl_engine_set_session_parameters(&c->sc.eng, &s->params);
    c->session_offered = 1;
    return 1;
}

/* After the handshake (err its result): a good one is saved, a failed
   one that offered the session clears it, so a session the server
   chokes on is not offered again. Resumed, the session keeps the time of
   its full handshake: resuming never extends its life. A server that
   gives no session ID keeps none: nothing to save. */
TLSMAIL__PRIVATE void tlsmail__session_done(tlsmail_client *c, int err) {
    tlsmail_session *s = c->cfg ? c->cfg->session : NULL;
    br_ssl_session_parameters p;
    long long now = 0;
    if (!s) return;
    if (err) {
        if (c->session_offered) tlsmail_session_clear(s);
        return;
    }
    br_ssl_engine_get_session_parameters(&c->sc.eng, &p);
    c->session_resumed = c->session_offered && p.session_id_len == s->params.session_id_len &&
                         memcmp(p.session_id, s->params.session_id, p.session_id_len) == 0;
    if (!c->session_resumed) {
        tlsmail_session_clear(s);
        if (p.session_id_len > 0 && p.session_id_len <= sizeof p.session_id) {
            (void)tlsmail__unix_time(&now);
            memcpy(s->host, c->host, strlen(c->host) + 1);
            s->port = c->port;
            memcpy(s->trust, c->trust_digest, 32);
            s->created = now;
            s->params = p;
            s->valid = 1;
        }
    }
    tlsmail__wipe(&p, sizeof p);
}

/* Handshake over the connected transport. Nothing of SMTP is read or sent
   before this succeeds, so a bad certificate ends the session before the
   server sees a single command. */
TLSMAIL__PRIVATE int tlsmail__tls_start(tlsmail_client *c) {
    const tlsmail_trust *t = c->trust;
    tlsmail__x509 *x = &c->x509.policy;
    char name[256];
    size_t n = strlen(c->host);
    tlsmail__tls_profile(&c->sc, &x->xc);
    if (t->kind == TLSMAIL__TRUST_PIN) {
        /* Replaces the policy engine in the union: the SSL engine's only
           pointer to either is the one set_x509 sets here. */
        memset(&c->x509.pin, 0, sizeof c->x509.pin);
        c->x509.pin.vtable = &tlsmail__pin_vtable;
        c->x509.pin.pin = t->pin;
        br_ssl_engine_set_x509(&c->sc.eng, &c->x509.pin.vtable);
    } else {
        if (t->kind == TLSMAIL__TRUST_LOADED) {
            x->xc.trust_anchors = t->anchors;
            x->xc.trust_anchors_num = t->count;
        } else if (t->kind == TLSMAIL__TRUST_USER) {
            x->xc.trust_anchors = t->user_anchors;
            x->xc.trust_anchors_num = t->count;
        }
        x->vtable = &tlsmail__x509_vtable;
        br_ssl_engine_set_x509(&c->sc.eng, &x->vtable);
    }
    /* Half-duplex is all SMTP needs (we always finish writing before we
       read), so one 16 KB buffer serves both directions: BIDI would double
       the client's size for nothing. */
    br_ssl_engine_set_buffer(&c->sc.eng, c->iobuf, sizeof c->iobuf, 0);
    /* The name for SNI and the certificate check: "host." is "host" (RFC
       6066 3: no trailing dot), and an IP literal, which only a pin can
       dial, is no name at all (RFC 6066 3: no IP addresses in SNI). */
    memcpy(name, c->host, n + 1);
    if (n > 1 && name[n - 1] == '.') name[n - 1] = '\0';
    if (tlsmail__is_ip_literal(c->host)) {
        TLSMAIL_ASSERT(t->kind == TLSMAIL__TRUST_PIN);
        if (!br_ssl_client_reset(&c->sc, NULL, tlsmail__session_offer(c))) return tlsmail__tls_error(c);
    } else {
        TLSMAIL_ASSERT(name[0] != 0); /* an empty name would switch the name check off */
        if (!br_ssl_client_reset(&c->sc, name, tlsmail__session_offer(c))) return tlsmail__tls_error(c);
    }
    br_sslio_init(&c->ioc, &c->sc.eng, tlsmail__low_read, c, tlsmail__low_write, c);
    c->tls = 1;
    /* Flushing with nothing queued drives the handshake to its end. */
    if (br_sslio_flush(&c->ioc) != 0) return tlsmail__tls_error(c);
    return 0;
}

#ifndef TLSMAIL_INSECURE_NO_TLS_FOR_FUZZING
TLSMAIL__PRIVATE int tlsmail__secure(tlsmail_client *c) {
    int err;
    c->ra_pos = c->ra_len = 0; /* nothing read ahead from an earlier connection */
    err = tlsmail__tls_start(c);
    tlsmail__session_done(c, err);
    return err;
}
#else
/* Fuzz builds only: the dialogue on a bare stream, so a fuzzer's bytes
   reach the parser without a TLS engine in between. Never ship this. */
TLSMAIL__PRIVATE int tlsmail__secure(tlsmail_client *c) {
    (void)c;
    return 0;
}
#endif

/* Before STARTTLS completes the stream is the bare transport; it carries
   nothing but the greeting, EHLO and STARTTLS. */
TLSMAIL__PRIVATE int tlsmail__stream_read(tlsmail_client *c, unsigned char *buf, size_t len) {
    int n;
    if (!c->tls) {
        n = tlsmail__io_checked(c->io.read(c->io.ctx, buf, len), len);
        return n > 0 ? n : n == 0 ? TLSMAIL_ECLOSED : n;
    }
    n = br_sslio_read(&c->ioc, buf, len);
    return n > 0 ? n : tlsmail__tls_error(c);
}

TLSMAIL__PRIVATE int tlsmail__stream_write(tlsmail_client *c, const void *buf, size_t len) {
    if (!c->tls) return tlsmail__io_write_all(c, (const unsigned char *)buf, len);
    return br_sslio_write_all(&c->ioc, buf, len) == 0 ? 0 : tlsmail__tls_error(c);
}

TLSMAIL__PRIVATE int tlsmail__stream_flush(tlsmail_client *c) {
    if (!c->tls) return 0;
    return br_sslio_flush(&c->ioc) == 0 ? 0 : tlsmail__tls_error(c);
}

/* Where the next octets of the message go: straight into the TLS engine's
   buffer, so DATA costs no copy of our own (br_sslio_write would copy).
   When the buffer is full (the engine has made a record of it), the record
   goes out first. At least 2 octets of room, as the DATA encoder needs; 0
   and *err set when the stream has failed. Without TLS (fuzz builds only)
   the idle I/O buffer is the room and tlsmail__stream_commit writes it. */
TLSMAIL__PRIVATE unsigned char *tlsmail__stream_room(tlsmail_client *c, size_t *room, int *err) {
    unsigned char *p;
    if (!c->tls) {
        *room = sizeof c->iobuf;
        return c->iobuf;
    }
    p = br_ssl_engine_sendapp_buf(&c->sc.eng, room);
    if (p && *room >= 2) return p;
    /* A full buffer is a record already: this sends it. One octet of room
       left (never in practice) makes a record of what is there. */
    if (br_sslio_flush(&c->ioc) == 0 && (p = br_ssl_engine_sendapp_buf(&c->sc.eng, room)) != NULL &&
        *room >= 2)
        return p;
    *err = tlsmail__tls_error(c);
    return NULL;
}

/* The first n octets of the room are the message's: the engine seals a
   record when its buffer is full and sends it at the next room or flush. */
TLSMAIL__PRIVATE int tlsmail__stream_commit(tlsmail_client *c, size_t n) {
    if (!c->tls) return tlsmail__io_write_all(c, c->iobuf, n);
    br_ssl_engine_sendapp_ack(&c->sc.eng, n);
    return 0;
}

/* Send our close_notify but never wait for the server's: a server that
   doesn't answer must not hold the caller (br_sslio_close would wait). The
   wait for the write itself is capped at one second. */
TLSMAIL__PRIVATE void tlsmail__tls_close(tlsmail_client *c) {
    br_ssl_engine_context *eng = &c->sc.eng;
    int i;
    if (!c->tls || br_ssl_engine_current_state(eng) == BR_SSL_CLOSED) return;
    if (c->timeout_ms < 0 || c->timeout_ms > 1000) c->timeout_ms = 1000;
    br_ssl_engine_close(eng);
    for (i = 0; i < 8 && (br_ssl_engine_current_state(eng) & BR_SSL_SENDREC); i++) {
        size_t len;
        unsigned char *rec = br_ssl_engine_sendrec_buf(eng, &len);
        int n = tlsmail__io_checked(c->io.write(c->io.ctx, rec, len), len);
        if (n <= 0) break;
        br_ssl_engine_sendrec_ack(eng, (size_t)n);
    }
}

/* The first bytes we got where a ServerHello should have been were an SMTP
   reply code: a plaintext server (a STARTTLS port), not an attack on TLS.
   No TLS record starts with an ASCII digit. */
TLSMAIL__PRIVATE int tlsmail__plaintext_server(const tlsmail_client *c) {
    return c->nfirst >= 3 && c->first[0] >= '2' && c->first[0] <= '5' &&
           c->first[1] >= '0' && c->first[1] <= '9' && c->first[2] >= '0' && c->first[2] <= '9';
}

/* ==== [tlsmail:dialogue] commands out, replies in: RFC 5321 4.2, 2920 ==== */

enum { TLSMAIL__CLOSED = 0, TLSMAIL__GREETED, TLSMAIL__READY, TLSMAIL__MAIL, TLSMAIL__RCPT,
       TLSMAIL__DATA };

/* Longest command line we build: "AUTH PLAIN " + base64 of 3 x 255 octets. */
#define TLSMAIL__CMD_MAX 1100

TLSMAIL__PRIVATE void tlsmail__trace(tlsmail_client *c, int dir, const char *line, size_t len) {
    if (c->cfg && c->cfg->trace)
        c->cfg->trace(c->cfg->trace_ud, c->tls ? dir : dir | TLSMAIL_TRACE_PLAINTEXT, line, len);
}

/* Drop the connection, after our close_notify (polite) or not (abrupt:
   the transport failed, or TLS never started). The last reply, stage and
   error stay readable; the TLS state, which held session keys and
   plaintext, is wiped. */
enum { TLSMAIL__ABRUPT = 0, TLSMAIL__POLITE = 1 };

TLSMAIL__PRIVATE void tlsmail__disconnect(tlsmail_client *c, int polite) {
    if (c->state != TLSMAIL__CLOSED || c->tls || c->io.read) {
        if (polite && c->tls && c->io_err == 0) tlsmail__tls_close(c);
        if (c->io.close) c->io.close(c->io.ctx);
    }
    memset(&c->io, 0, sizeof c->io);
    tlsmail__wipe(&c->sc, sizeof c->sc);
    tlsmail__wipe(&c->x509, sizeof c->x509);
    tlsmail__wipe(&c->ioc, sizeof c->ioc);
    tlsmail__wipe(c->iobuf, sizeof c->iobuf);
    tlsmail__wipe(c->rbuf, sizeof c->rbuf);
    c->rlen = c->rpos = 0;
    c->tls = 0;
    c->state = TLSMAIL__CLOSED;
}

/* A failure after which the session can't go on: the network, TLS, a
   malformed reply, or a 421 (RFC 5321 3.8: the server is closing). */
TLSMAIL__PRIVATE int tlsmail__fatal(tlsmail_client *c, int err) {
    c->err = err;
    tlsmail__disconnect(c, TLSMAIL__ABRUPT);
    return err;
}

/* Read one whole reply; returns its code (200..599) or a fatal error. The
   text of every line is kept (bounded) for the caller; with ext set, EHLO
   lines after the first feed the extension table. */
TLSMAIL__PRIVATE int tlsmail__read_reply(tlsmail_client *c, tlsmail__ext *ext) {
    c->textlen = 0;
    c->text[0] = 0;
    c->code = 0;
    c->enhanced[0] = 0;
    for (;;) {
        size_t used = 0;
        int r;
        if (c->rpos == c->rlen) {
            int n = tlsmail__stream_read(c, c->rbuf, sizeof c->rbuf);
            if (n < 0) return tlsmail__fatal(c, n);
            c->rpos = 0;
            c->rlen = (size_t)n;
        }
        r = tlsmail__reply_feed(&c->rp, c->rbuf + c->rpos, c->rlen - c->rpos, &used);
        c->rpos += used;
        if (r < 0) return tlsmail__fatal(c, r);
        if (r == 0) continue;
        {
            const char *text = tlsmail__reply_text(&c->rp);
            size_t len = strlen(text), tl = len, room;
            tlsmail__trace(c, TLSMAIL_TRACE_RECV, c->rp.line, c->rp.len);
            if (c->textlen && c->textlen + 1 < sizeof c->text) c->text[c->textlen++] = '\n';
            room = sizeof c->text - 1 - c->textlen;
            if (tl > room) tl = room;
            memcpy(c->text + c->textlen, text, tl);
            c->textlen += tl;
            c->text[c->textlen] = 0;
            if (c->rp.nlines == 1)
                tlsmail__enhanced(text, len, c->rp.code, c->enhanced, sizeof c->enhanced);
            if (ext && c->rp.nlines > 1) tlsmail__ext_line(ext, text, len);
        }
        if (c->rp.done) {
            c->code = c->rp.code;
            c->reply_tls = c->tls;
            c->reply_fresh = 1;
            if (c->code == 421) return tlsmail__fatal(c, TLSMAIL_ETRANSIENT);
            return c->code;
        }
    }
}

/* A new command group may start only when everything the server said has
   been read: bytes still waiting were sent out of turn, and reading them
   as the next command's reply would let them answer for it. */
TLSMAIL__PRIVATE int tlsmail__begin_group(tlsmail_client *c) {
    c->reply_fresh = 0; /* a reply answers the command before, not this one */
    if (c->queued++ == 0 && c->rpos != c->rlen) return tlsmail__fatal(c, TLSMAIL_EPROTO);
    return 0;
}

/* Queue the command line a b d (b and d may be NULL); flush sends it, in
   one write with whatever else was queued. */
TLSMAIL__PRIVATE int tlsmail__put(tlsmail_client *c, const char *a, const char *b, const char *d) {
    char line[TLSMAIL__CMD_MAX + 2];
    size_t la = strlen(a), lb = b ? strlen(b) : 0, ld = d ? strlen(d) : 0, n;
    int err;
    if (la + lb + ld > TLSMAIL__CMD_MAX) return TLSMAIL_EINVAL;
    if ((err = tlsmail__begin_group(c)) != 0) return err;
    memcpy(line, a, la);
    if (lb) memcpy(line + la, b, lb);
    if (ld) memcpy(line + la + lb, d, ld);
    n = la + lb + ld;
    tlsmail__trace(c, TLSMAIL_TRACE_SEND, line, n);
    line[n++] = '\r';
    line[n++] = '\n';
    err = tlsmail__stream_write(c, line, n);
    return err < 0 ? tlsmail__fatal(c, err) : 0;
}

/* Queue verb (shown in the trace; "" for a bare response line) and then
   secret, which the trace shows as "<secret>". The secret goes straight
   into the TLS engine's buffer, which is wiped when the session ends: no
   copy of it is left anywhere else. Only ever over TLS. */
TLSMAIL__PRIVATE int tlsmail__put_secret(tlsmail_client *c, const char *verb, const char *secret) {
    static const char masked[] = "<secret>";
    char t[32];
    size_t vl = strlen(verb);
    int err;
    TLSMAIL_ASSERT(vl < sizeof t - sizeof masked);
    TLSMAIL__ASSERT_TLS(c);
    if ((err = tlsmail__begin_group(c)) != 0) return err;
    memcpy(t, verb, vl);
    memcpy(t + vl, masked, sizeof masked - 1);
    tlsmail__trace(c, TLSMAIL_TRACE_SEND, t, vl + sizeof masked - 1);
    err = tlsmail__stream_write(c, verb, vl);
    if (!err) err = tlsmail__stream_write(c, secret, strlen(secret));
    if (!err) err = tlsmail__stream_write(c, "\r\n", 2);
    return err < 0 ? tlsmail__fatal(c, err) : 0;
}

TLSMAIL__PRIVATE int tlsmail__flush(tlsmail_client *c) {
    int err = tlsmail__stream_flush(c);
    c->queued = 0;
    return err < 0 ? tlsmail__fatal(c, err) : 0;
}

/* Map a completed reply to our result: 0 for the one code the command
   succeeds with (RFC 5321 4.3.2; RCPT, and only RCPT, also takes 251),
   else transient (4xx), permanent (5xx) or protocol error: another 2xx or
   3xx is a server we don't understand, not a success (Go's net/smtp
   agrees). Negative codes (our errors) pass through. */
enum { TLSMAIL__WANT_RCPT = 1 }; /* "want" for RCPT: 250 or 251 */

TLSMAIL__PRIVATE int tlsmail__verdict(int code, int want) {
    if (code < 0) return code;
    if (code == want || (want == TLSMAIL__WANT_RCPT && (code == 250 || code == 251))) return 0;
    if (code >= 500) return TLSMAIL_EPERMANENT;
    if (code >= 400) return TLSMAIL_ETRANSIENT;
    return TLSMAIL_EPROTO;
}

/* One command, one write, one reply. */
TLSMAIL__PRIVATE int tlsmail__command(tlsmail_client *c, const char *a, const char *b,
                                      const char *d, int want) {
    int err = tlsmail__put(c, a, b, d);
    if (!err) err = tlsmail__flush(c);
    if (err) return err;
    return tlsmail__verdict(tlsmail__read_reply(c, NULL), want);
}

/* Every public call starts here: a client in the wrong state is refused
   before a byte moves. */
TLSMAIL__PRIVATE int tlsmail__enter(tlsmail_client *c, int stage, int min_state, int max_state) {
    if (!c) return TLSMAIL_EINVAL;
    c->stage = stage;
    c->reply_fresh = 0;
    if (c->state < min_state || c->state > max_state) /* min_state is never CLOSED */
        return c->err = TLSMAIL_ESTATE;
    c->err = 0;
    return 0;
}

/* The greeting: 220, or the server won't talk to us (RFC 5321 3.1: 554, or
   421 and 4xx for now). */
TLSMAIL__PRIVATE int tlsmail__greeting(tlsmail_client *c) {
    int code;
    c->stage = TLSMAIL_STAGE_GREETING;
    tlsmail__reply_init(&c->rp);
    code = tlsmail__read_reply(c, NULL);
    if (code < 0) return code;
    return tlsmail__verdict(code, 220);
}

#ifdef TLSMAIL_STARTTLS
/* ==== [tlsmail:starttls] the upgrade from plaintext: RFC 3207 ==== */

/* Has the server sent anything we haven't read? After "220 ready to start
   TLS" nothing may come before our ClientHello: such bytes are injected
   by someone on the path or come from a broken server, and either way
   can't be trusted (NO STARTTLS, USENIX Security 2021; CVE-2021-38371). */
TLSMAIL__PRIVATE int tlsmail__pending(tlsmail_client *c) {
    if (c->rpos != c->rlen) return 1;
#ifndef TLSMAIL_NO_SOCKETS
    if (c->fd >= 0) {
        struct pollfd p;
        p.fd = c->fd;
        p.events = POLLIN;
        p.revents = 0;
        return poll(&p, 1, 0) != 0;
    }
#endif
    return 0;
}

/* Plaintext greeting, EHLO, STARTTLS, 220: the only things ever said in
   clear. No HELO here (a server without EHLO has no STARTTLS), nothing
   after a refusal, and everything learned is forgotten once it's done. */
TLSMAIL__PRIVATE int tlsmail__starttls(tlsmail_client *c) {
    const char *name = c->cfg->helo_name ? c->cfg->helo_name : "localhost";
    int err = tlsmail__greeting(c), code;
    if (err) return err;
    c->stage = TLSMAIL_STAGE_STARTTLS;
    tlsmail__ext_init(&c->ext);
    if ((err = tlsmail__put(c, "EHLO ", name, NULL)) != 0) return err;
    code = tlsmail__read_reply(c, &c->ext);
    if (code < 0) return code;
    if (code != 250 || !(c->ext.flags & TLSMAIL__EXT_STARTTLS)) return TLSMAIL_ESTARTTLS;
    if ((err = tlsmail__put(c, "STARTTLS", NULL, NULL)) != 0) return err;
    code = tlsmail__read_reply(c, NULL);
    if (code < 0) return code;
    if (code != 220 || tlsmail__pending(c)) return TLSMAIL_ESTARTTLS;
    tlsmail__ext_init(&c->ext);
    tlsmail__reply_init(&c->rp);
    tlsmail__wipe(c->rbuf, sizeof c->rbuf);
    c->rlen = c->rpos = 0;
    c->code = 0;
    c->enhanced[0] = 0;
    c->textlen = 0;
    c->text[0] = 0;
    return 0;
}

TLSMAIL__PRIVATE int tlsmail__upgrade(tlsmail_client *c) { return tlsmail__starttls(c); }

TLSMAIL__PRIVATE int tlsmail__security_ok(const tlsmail_config *cfg) {
    return cfg->security >= TLSMAIL_SECURITY_TLS && cfg->security <= TLSMAIL_SECURITY_TLS_OR_STARTTLS &&
           cfg->starttls_port <= 65535;
}

/* TLSMAIL_SECURITY_TLS_OR_STARTTLS: after the implicit-TLS attempt ended in
   err, STARTTLS on the other port, but only when nothing listens on the
   implicit-TLS port or a plaintext SMTP server answers there. Never after a
   certificate error, an alert or a handshake that got anywhere: those are
   what an attacker would provoke. Returns the port to dial again (the
   client made ready for it), or 0. */
TLSMAIL__PRIVATE unsigned tlsmail__fallback(tlsmail_client *c, int err) {
    if (!err || c->cfg->security != TLSMAIL_SECURITY_TLS_OR_STARTTLS ||
        !((err == TLSMAIL_ECONNECT && c->sys_err == ECONNREFUSED) ||
          (c->stage == TLSMAIL_STAGE_TLS && tlsmail__plaintext_server(c))))
        return 0;
    tlsmail__disconnect(c, TLSMAIL__ABRUPT);
    c->nfirst = 0;
    c->sys_err = c->io_err = c->br_err = 0;
    return c->cfg->starttls_port ? c->cfg->starttls_port : 587;
}

/* tlsmail_send's mode for addr: port 587 is the STARTTLS submission port
   (RFC 8314 3.3), and there the upgrade is required, never optional. */
TLSMAIL__PRIVATE int tlsmail__security_for(const char *addr) {
    char host[256];
    unsigned port;
    if (addr && tlsmail_split_hostport(addr, host, sizeof host, &port, 465) == 0 && port == 587)
        return TLSMAIL_SECURITY_STARTTLS;
    return TLSMAIL_SECURITY_TLS;
}

#else /* without TLSMAIL_STARTTLS: implicit TLS only, and no code for more */

TLSMAIL__PRIVATE int tlsmail__upgrade(tlsmail_client *c) {
    (void)c;
    return TLSMAIL_EINVAL; /* unreachable: tlsmail__security_ok refused the mode */
}

TLSMAIL__PRIVATE int tlsmail__security_ok(const tlsmail_config *cfg) {
    return cfg->security == TLSMAIL_SECURITY_TLS;
}

TLSMAIL__PRIVATE unsigned tlsmail__fallback(tlsmail_client *c, int err) {
    (void)c;
    (void)err;
    return 0;
}

TLSMAIL__PRIVATE int tlsmail__security_for(const char *addr) {
    (void)addr;
    return TLSMAIL_SECURITY_TLS; /* port 587 too: a plaintext server there is EPLAINTEXT */
}

#endif /* TLSMAIL_STARTTLS */

/* ==== [tlsmail:session] dial, EHLO, close ==== */

/* Connect and bring up TLS, implicit or (when compiled) by STARTTLS. */
TLSMAIL__PRIVATE int tlsmail__open(tlsmail_client *c, unsigned port, int starttls) {
    int err;
    c->stage = TLSMAIL_STAGE_CONNECT;
    if ((err = tlsmail__open_transport(c, port)) != 0) return err;
    c->state = TLSMAIL__GREETED; /* connected: failures now go through tlsmail__fatal */
    c->starttls = starttls;
    if (starttls && (err = tlsmail__upgrade(c)) != 0) return err;
    c->stage = TLSMAIL_STAGE_TLS;
    if ((err = tlsmail__secure(c)) != 0) return err;
    return starttls ? 0 : tlsmail__greeting(c);
}

/* Everything tlsmail_dial takes from cfg, checked before anything is
   opened; the port to dial goes to *port. */
TLSMAIL__PRIVATE int tlsmail__configure(tlsmail_client *c, const tlsmail_config *cfg, unsigned *port) {
    int mode = cfg->security;
    unsigned defport = cfg->port ? cfg->port : mode == TLSMAIL_SECURITY_STARTTLS ? 587 : 465;
    if (!tlsmail__security_ok(cfg) || !tlsmail__have_transport(cfg) || !cfg->host ||
        tlsmail_split_hostport(cfg->host, c->host, sizeof c->host, port, defport) || *port > 65535 ||
        (cfg->helo_name && tlsmail__check_token(cfg->helo_name, 255) != 0))
        return TLSMAIL_EINVAL;
    c->cfg = cfg;
    c->trust = cfg->trust && cfg->trust->kind != TLSMAIL__TRUST_SYSTEM ? cfg->trust : &c->own_trust;
    /* BearSSL matches names only against dNSName entries: an IP literal can
       never pass the check honestly, so it needs a pinned key. */
    if (tlsmail__is_ip_literal(c->host) && c->trust->kind != TLSMAIL__TRUST_PIN) return TLSMAIL_EINVAL;
    c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : TLSMAIL_DEFAULT_TIMEOUT_MS;
    if (cfg->io) {
        if (!cfg->io->read || !cfg->io->write || mode == TLSMAIL_SECURITY_TLS_OR_STARTTLS)
            return TLSMAIL_EINVAL; /* a fallback needs a second connection */
        c->io = *cfg->io;
    }
    return 0;
}

TLSMAIL_DEF int tlsmail_dial(tlsmail_client *c, const tlsmail_config *cfg) {
    int err;
    unsigned port;
    if (!c) return TLSMAIL_EINVAL;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->stage = TLSMAIL_STAGE_CONNECT;
    if (!cfg || (err = tlsmail__configure(c, cfg, &port)) != 0) return c->err = TLSMAIL_EINVAL;
    if (c->trust == &c->own_trust && (err = tlsmail__default_trust(&c->own_trust)) != 0) {
        tlsmail__disconnect(c, TLSMAIL__ABRUPT);
        tlsmail_trust_free(&c->own_trust);
        return c->err = err;
    }
    tlsmail__start_deadline(c, cfg->deadline_ms);
    err = tlsmail__open(c, port, cfg->security == TLSMAIL_SECURITY_STARTTLS);
    if ((port = tlsmail__fallback(c, err)) != 0) err = tlsmail__open(c, port, 1);
    /* SMTP text where the ServerHello should be: on the implicit-TLS port a
       plaintext server; after "220 go ahead" text injected before the
       handshake. */
    if (err == TLSMAIL_ETLS && c->stage == TLSMAIL_STAGE_TLS && tlsmail__plaintext_server(c))
        err = c->starttls ? TLSMAIL_ESTARTTLS : TLSMAIL_EPLAINTEXT;
    if (err) {
        /* Refused at the greeting: leave politely, keeping its reply. Only
           over TLS: before STARTTLS nothing but EHLO and STARTTLS is said. */
        if (c->tls && c->stage == TLSMAIL_STAGE_GREETING && c->code) {
            (void)tlsmail__put(c, "QUIT", NULL, NULL);
            (void)tlsmail__flush(c);
            tlsmail__disconnect(c, TLSMAIL__POLITE);
        } else {
            tlsmail__disconnect(c, TLSMAIL__ABRUPT);
        }
    }
    /* The anchors are needed until the last handshake of this dial, the
       fallback's included, and by nothing after it. */
    tlsmail_trust_free(&c->own_trust);
    return err ? (c->err = err) : 0;
}

TLSMAIL_DEF int tlsmail_hello(tlsmail_client *c) {
    const char *name;
    int err = tlsmail__enter(c, TLSMAIL_STAGE_HELLO, TLSMAIL__GREETED, TLSMAIL__RCPT);
    int code;
    if (err) return err;
    name = c->cfg->helo_name ? c->cfg->helo_name : "localhost";
    tlsmail__ext_init(&c->ext);
    err = tlsmail__put(c, "EHLO ", name, NULL);
    if (!err) err = tlsmail__flush(c);
    if (err) return err;
    code = tlsmail__read_reply(c, &c->ext);
    if (code < 0) return code;
    if (code == 250) { c->state = TLSMAIL__READY; return 0; }
    tlsmail__ext_init(&c->ext);
    if (code / 100 != 5) return c->err = tlsmail__verdict(code, 250);
    /* RFC 5321 3.2: a server that doesn't know EHLO gets HELO, and we use no
       extension with it. */
    err = tlsmail__command(c, "HELO ", name, NULL, 250);
    if (err) return c->err = err;
    c->state = TLSMAIL__READY;
    return 0;
}

/* hello() on the caller's behalf when a command needs it first. */
TLSMAIL__PRIVATE int tlsmail__ensure_hello(tlsmail_client *c) {
    return c->state == TLSMAIL__GREETED ? tlsmail_hello(c) : 0;
}

TLSMAIL_DEF const char *tlsmail_extension(const tlsmail_client *c, const char *name) {
    if (!c || !name || c->state < TLSMAIL__READY) return NULL;
    return tlsmail__ext_find(&c->ext, name);
}

TLSMAIL_DEF void tlsmail_close(tlsmail_client *c) {
    if (!c) return;
    tlsmail__disconnect(c, TLSMAIL__POLITE);
    tlsmail__wipe(c, sizeof *c);
    c->fd = -1;
}

/* ---- TLS sessions: the caller's side ------------------------------------- */

TLSMAIL_DEF int tlsmail_session_resumed(const tlsmail_client *c) { return c && c->session_resumed; }

TLSMAIL_DEF void tlsmail_session_clear(tlsmail_session *s) {
    if (s) tlsmail__wipe(s, sizeof *s);
}

TLSMAIL__PRIVATE size_t tlsmail__hex_put(char *out, const unsigned char *p, size_t n) {
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    return 2 * n;
}

/* One space-separated field of t[*pos..n) as bytes from hex: exactly want
   octets, or (want 0) 1 to cap of them. Returns the count, or 0. */
TLSMAIL__PRIVATE size_t tlsmail__hex_get(const char *t, size_t n, size_t *pos, unsigned char *out,
                                         size_t want, size_t cap) {
    size_t i = *pos, k = 0;
    while (i + 1 < n && tlsmail__isxdigit((unsigned char)t[i]) &&
           tlsmail__isxdigit((unsigned char)t[i + 1]) && k < cap) {
        int hi = tlsmail__lower((unsigned char)t[i]), lo = tlsmail__lower((unsigned char)t[i + 1]);
        hi = hi <= '9' ? hi - '0' : hi - 'a' + 10;
        lo = lo <= '9' ? lo - '0' : lo - 'a' + 10;
        out[k++] = (unsigned char)(hi << 4 | lo);
        i += 2;
    }
    if (k == 0 || (want && k != want) || (i < n && t[i] != ' ')) return 0;
    *pos = i < n ? i + 1 : i;
    return k;
}

/* A decimal field of at most digits digits (18 at most: a long long holds
   them all). */
TLSMAIL__PRIVATE int tlsmail__dec_get(const char *t, size_t n, size_t *pos, long long *v, int digits) {
    size_t i = *pos;
    int d = 0;
    *v = 0;
    while (i < n && tlsmail__isdigit((unsigned char)t[i]) && d < digits) {
        *v = *v * 10 + (t[i++] - '0');
        d++;
    }
    if (d == 0 || (i < n && t[i] != ' ')) return -1;
    *pos = i < n ? i + 1 : i;
    return 0;
}

/* "tlsmail-session-1 HOST PORT CREATED TRUST VERSION SUITE ID SECRET", the
   binary fields in hex: one line a shell can grep and a cache can key. */
#define TLSMAIL__SESSION_MAGIC "tlsmail-session-1 "

TLSMAIL_DEF int tlsmail_session_export(const tlsmail_session *s, char *buf, size_t cap, size_t *len) {
    char out[TLSMAIL_SESSION_TEXT];
    unsigned char vs[4];
    size_t n, hl;
    if (!s || !buf || !len || !s->valid || !tlsmail__session_fresh(s)) return TLSMAIL_EINVAL;
    hl = strlen(s->host);
    /* 18 of magic, 255 of host, 5 + 18 digits (created: from time(), or an
       import's at most 18), 32 + 2 + 2 + 32 + 48 octets in hex, 8
       separators and the NUL: 537 at most */
    memcpy(out, TLSMAIL__SESSION_MAGIC, sizeof TLSMAIL__SESSION_MAGIC - 1);
    n = sizeof TLSMAIL__SESSION_MAGIC - 1;
    memcpy(out + n, s->host, hl);
    n += hl;
    n += (size_t)sprintf(out + n, " %u %lld ", s->port, s->created);
    n += tlsmail__hex_put(out + n, s->trust, 32);
    vs[0] = (unsigned char)(s->params.version >> 8);
    vs[1] = (unsigned char)s->params.version;
    vs[2] = (unsigned char)(s->params.cipher_suite >> 8);
    vs[3] = (unsigned char)s->params.cipher_suite;
    out[n++] = ' ';
    n += tlsmail__hex_put(out + n, vs, 2);
    out[n++] = ' ';
    n += tlsmail__hex_put(out + n, vs + 2, 2);
    out[n++] = ' ';
    n += tlsmail__hex_put(out + n, s->params.session_id, s->params.session_id_len);
    out[n++] = ' ';
    n += tlsmail__hex_put(out + n, s->params.master_secret, 48);
    out[n] = '\0';
    *len = n;
    if (cap <= n) {
        tlsmail__wipe(out, sizeof out);
        return TLSMAIL_ENOMEM;
    }
    memcpy(buf, out, n + 1);
    tlsmail__wipe(out, sizeof out);
    return 0;
}

/* Only what a handshake of ours can have made: TLS 1.2, an ID of 1 to 32
   octets, a host name as tlsmail_dial keeps it. The suite is BearSSL's to
   check: it refuses a resumption whose suite is not one we offer. */
TLSMAIL_DEF int tlsmail_session_import(tlsmail_session *s, const char *text, size_t len) {
    tlsmail_session t;
    unsigned char vs[2];
    size_t pos = sizeof TLSMAIL__SESSION_MAGIC - 1, h;
    long long v;
    int ok = 0;
    if (!s) return TLSMAIL_EINVAL;
    tlsmail_session_clear(s);
    if (!text) return TLSMAIL_EINVAL;
    if (len && text[len - 1] == '\n') len--;
    if (len && text[len - 1] == '\r') len--;
    memset(&t, 0, sizeof t);
    if (len <= pos || memcmp(text, TLSMAIL__SESSION_MAGIC, pos) != 0) return TLSMAIL_EINVAL;
    for (h = 0; pos + h < len && text[pos + h] > ' ' && text[pos + h] < 0x7F; h++) {}
    if (h == 0 || h >= sizeof t.host || pos + h >= len || text[pos + h] != ' ') return TLSMAIL_EINVAL;
    memcpy(t.host, text + pos, h);
    pos += h + 1;
    if (tlsmail__dec_get(text, len, &pos, &v, 5) != 0 || v < 1 || v > 65535) goto done;
    t.port = (unsigned)v;
    if (tlsmail__dec_get(text, len, &pos, &v, 18) != 0) goto done; /* 18 digits: no overflow */
    t.created = v;
    if (!tlsmail__hex_get(text, len, &pos, t.trust, 32, 32)) goto done;
    if (!tlsmail__hex_get(text, len, &pos, vs, 2, 2)) goto done;
    t.params.version = (uint16_t)(vs[0] << 8 | vs[1]);
    if (!tlsmail__hex_get(text, len, &pos, vs, 2, 2)) goto done;
    t.params.cipher_suite = (uint16_t)(vs[0] << 8 | vs[1]);
    t.params.session_id_len = (unsigned char)tlsmail__hex_get(text, len, &pos, t.params.session_id, 0,
                                                              sizeof t.params.session_id);
    if (t.params.session_id_len == 0) goto done;
    if (!tlsmail__hex_get(text, len, &pos, t.params.master_secret, 48, 48) || pos != len) goto done;
    if (t.params.version != BR_TLS12 || t.params.cipher_suite == 0) goto done;
    t.valid = 1;
    ok = tlsmail__session_fresh(&t);
done:
    if (ok) *s = t;
    tlsmail__wipe(&t, sizeof t);
    return ok ? 0 : TLSMAIL_EINVAL;
}

/* ==== [tlsmail:auth] AUTH PLAIN and LOGIN: RFC 4954, 4616 ==== */

TLSMAIL_DEF tlsmail_auth tlsmail_plain_auth(const char *identity, const char *username,
                                            const char *password, const char *host) {
    tlsmail_auth a;
    a.mechanism = TLSMAIL_AUTH_PLAIN;
    a.identity = identity;
    a.username = username;
    a.secret = password;
    a.host = host;
    return a;
}

TLSMAIL_DEF tlsmail_auth tlsmail_login_auth(const char *username, const char *password,
                                            const char *host) {
    tlsmail_auth a = tlsmail_plain_auth(NULL, username, password, host);
    a.mechanism = TLSMAIL_AUTH_LOGIN;
    return a;
}

TLSMAIL_DEF tlsmail_auth tlsmail_auto_auth(const char *username, const char *password,
                                           const char *host) {
    tlsmail_auth a = tlsmail_plain_auth(NULL, username, password, host);
    a.mechanism = TLSMAIL_AUTH_AUTO;
    return a;
}

/* ---- AUTH PLAIN (RFC 4616 2) ------------------------------------------------ */

TLSMAIL__PRIVATE int tlsmail__plain_response(char *out, size_t cap, const char *identity,
                                             const char *username, const char *password) {
    unsigned char buf[3 * 255 + 2];
    size_t il, ul, pl, n;
    size_t r;
    if (!identity) identity = "";
    if (!out || !username || !password) return TLSMAIL_EINVAL;
    il = strlen(identity);
    ul = strlen(username);
    pl = strlen(password);
    /* RFC 4616 2: authcid and passwd are 1..255 octets, authzid 0..255. */
    if (ul == 0 || pl == 0 || il > 255 || ul > 255 || pl > 255) return TLSMAIL_EINVAL;
    memcpy(buf, identity, il);
    buf[il] = 0;
    memcpy(buf + il + 1, username, ul);
    buf[il + 1 + ul] = 0;
    memcpy(buf + il + ul + 2, password, pl);
    n = il + ul + pl + 2;
    r = tlsmail__b64_encode(out, cap, buf, n);
    tlsmail__wipe(buf, sizeof buf);
    return r ? (int)r : TLSMAIL_EINVAL;
}

/* Credentials are checked the same way by the client and the one-call
   send, before anything is sent. */
TLSMAIL__PRIVATE int tlsmail__check_auth(const tlsmail_auth *a, const char *host) {
    if (!a || a->mechanism < TLSMAIL_AUTH_PLAIN || a->mechanism > TLSMAIL_AUTH_AUTO)
        return TLSMAIL_EINVAL;
    if (!a->username || !a->secret || !*a->username || !*a->secret ||
        strlen(a->username) > 255 || strlen(a->secret) > 255 ||
        (a->identity && strlen(a->identity) > 255))
        return TLSMAIL_EINVAL;
    /* Like Go's PlainAuth: the credentials name their server, and going to
       another one (a typo, a redirect, a hijacked MX) must not leak them. */
    if (!a->host || !*a->host) return TLSMAIL_EINVAL;
    return tlsmail__host_eq(a->host, host) ? 0 : TLSMAIL_EAUTHHOST;
}

/* What an AUTH reply other than 235 or 334 means for the caller. */
TLSMAIL__PRIVATE int tlsmail__auth_verdict(int code) {
    if (code < 0) return code;
    if (code == 235) return 0;
    if (code >= 400 && code < 500) return TLSMAIL_ETRANSIENT; /* 454: try again later */
    if (code == 534 || code == 504) return TLSMAIL_ENOMECH;   /* too weak / not known */
    if (code >= 500) return TLSMAIL_EAUTH;
    return TLSMAIL_EPROTO;
}

/* Answer a challenge we won't continue with "*" (RFC 4954 4: cancels the
   exchange), read the server's reply, and fail with err. */
TLSMAIL__PRIVATE int tlsmail__auth_cancel(tlsmail_client *c, int err) {
    int code;
    if (tlsmail__put(c, "*", NULL, NULL) || tlsmail__flush(c)) return c->err;
    code = tlsmail__read_reply(c, NULL);
    return code < 0 ? code : err;
}

TLSMAIL__PRIVATE int tlsmail__auth_plain(tlsmail_client *c, const tlsmail_auth *a) {
    char resp[1040];
    int n = tlsmail__plain_response(resp, sizeof resp, a->identity ? a->identity : "",
                                    a->username, a->secret);
    int err, code;
    if (n < 0) return n;
    /* RFC 4954 4: the initial response rides on the command when the line
       fits in 512 octets; otherwise wait for an empty 334 challenge. */
    if ((size_t)n + sizeof "AUTH PLAIN \r\n" - 1 <= 512) {
        err = tlsmail__put_secret(c, "AUTH PLAIN ", resp);
        if (!err) err = tlsmail__flush(c);
        if (err) goto done;
        code = tlsmail__read_reply(c, NULL);
    } else {
        err = tlsmail__put(c, "AUTH PLAIN", NULL, NULL);
        if (!err) err = tlsmail__flush(c);
        if (err) goto done;
        code = tlsmail__read_reply(c, NULL);
        if (code == 334) {
            /* RFC 4616 has no server challenge: anything but an empty
               one is a server we don't understand. */
            if (c->textlen != 0) { err = tlsmail__auth_cancel(c, TLSMAIL_EPROTO); goto done; }
            err = tlsmail__put_secret(c, "", resp);
            if (!err) err = tlsmail__flush(c);
            if (err) goto done;
            code = tlsmail__read_reply(c, NULL);
        }
    }
    err = code == 334 ? tlsmail__auth_cancel(c, TLSMAIL_EAUTH) : tlsmail__auth_verdict(code);
done:
    tlsmail__wipe(resp, sizeof resp);
    return err;
}

/* LOGIN: two 334 prompts, answered with the user name and the password
   whatever their wording (servers vary); a third 334 is refused. */
TLSMAIL__PRIVATE int tlsmail__auth_login(tlsmail_client *c, const tlsmail_auth *a) {
    char b64[400];
    const char *field[2];
    int err, code, i;
    field[0] = a->username;
    field[1] = a->secret;
    err = tlsmail__put(c, "AUTH LOGIN", NULL, NULL);
    if (!err) err = tlsmail__flush(c);
    if (err) return err;
    code = tlsmail__read_reply(c, NULL);
    for (i = 0; i < 2 && code == 334; i++) {
        if (tlsmail__b64_encode(b64, sizeof b64, field[i], strlen(field[i])) == 0) {
            err = tlsmail__auth_cancel(c, TLSMAIL_EINVAL);
            goto done;
        }
        err = tlsmail__put_secret(c, "", b64);
        if (!err) err = tlsmail__flush(c);
        if (err) goto done;
        code = tlsmail__read_reply(c, NULL);
    }
    err = code == 334 ? tlsmail__auth_cancel(c, TLSMAIL_EAUTH) : tlsmail__auth_verdict(code);
    if (!err && i < 2) err = TLSMAIL_EPROTO; /* 235 before we even sent a password */
done:
    tlsmail__wipe(b64, sizeof b64);
    return err;
}

TLSMAIL_DEF int tlsmail_authenticate(tlsmail_client *c, const tlsmail_auth *a) {
    int mech, err = tlsmail__enter(c, TLSMAIL_STAGE_AUTH, TLSMAIL__GREETED, TLSMAIL__READY);
    if (err) return err;
    if ((err = tlsmail__check_auth(a, c->host)) != 0) return c->err = err;
    if ((err = tlsmail__ensure_hello(c)) != 0) return err;
    c->stage = TLSMAIL_STAGE_AUTH;
    mech = a->mechanism;
    if (mech == TLSMAIL_AUTH_AUTO)
        mech = (c->ext.auth & (1u << TLSMAIL_AUTH_PLAIN)) ? TLSMAIL_AUTH_PLAIN : TLSMAIL_AUTH_LOGIN;
    /* Never fall back to another mechanism, and never go on without AUTH:
       the caller asked for this one. */
    if (!(c->ext.auth & (1u << mech))) return c->err = TLSMAIL_ENOMECH;
    err = mech == TLSMAIL_AUTH_PLAIN ? tlsmail__auth_plain(c, a) : tlsmail__auth_login(c, a);
    return c->err = err;
}

/* ==== [tlsmail:commands] MAIL, RCPT, DATA, RSET, NOOP, QUIT ==== */

/* MAIL FROM with the parameters the server allows: BODY=8BITMIME as Go
   does (a message may carry 8-bit text), SMTPUTF8 when an address needs it. */
TLSMAIL__PRIVATE int tlsmail__put_mail(tlsmail_client *c, const char *from, int utf8) {
    char tail[32] = ">";
    if (c->ext.flags & TLSMAIL__EXT_8BITMIME) strcat(tail, " BODY=8BITMIME");
    if (utf8) {
        /* Our refusal, not the server's: nothing was sent (RFC 6531 3.4). */
        if (!(c->ext.flags & TLSMAIL__EXT_SMTPUTF8)) return c->err = TLSMAIL_ENOEXT;
        strcat(tail, " SMTPUTF8");
    }
    return tlsmail__put(c, "MAIL FROM:<", from, tail);
}

TLSMAIL__PRIVATE int tlsmail__mail(tlsmail_client *c, const char *from, int utf8) {
    int err = tlsmail__enter(c, TLSMAIL_STAGE_MAIL, TLSMAIL__GREETED, TLSMAIL__READY);
    if (err) return err;
    if (tlsmail__check_mailbox(from, 1) != 0) return c->err = TLSMAIL_EINVAL;
    if ((err = tlsmail__ensure_hello(c)) != 0) return err;
    c->stage = TLSMAIL_STAGE_MAIL;
    if ((err = tlsmail__put_mail(c, from, utf8)) != 0 || (err = tlsmail__flush(c)) != 0) return err;
    err = tlsmail__verdict(tlsmail__read_reply(c, NULL), 250);
    if (!err) {
        c->state = TLSMAIL__MAIL;
        c->utf8 = utf8;
    }
    return c->err = err;
}

/* Recipients aren't known yet here, so SMTPUTF8 goes with MAIL whenever
   the server offers it (as Go does): a non-ASCII recipient may follow. */
TLSMAIL_DEF int tlsmail_mail(tlsmail_client *c, const char *from) {
    int utf8 = from && tlsmail__is_8bit(from);
    if (c && (c->ext.flags & TLSMAIL__EXT_SMTPUTF8)) utf8 = 1;
    return tlsmail__mail(c, from, utf8);
}

/* A non-ASCII recipient needs the SMTPUTF8 that MAIL declared. */
TLSMAIL__PRIVATE int tlsmail__check_rcpt(const tlsmail_client *c, const char *to) {
    if (tlsmail__check_mailbox(to, 0) != 0) return TLSMAIL_EINVAL;
    if (tlsmail__is_8bit(to) && !c->utf8)
        return (c->ext.flags & TLSMAIL__EXT_SMTPUTF8) ? TLSMAIL_EINVAL : TLSMAIL_ENOEXT;
    return 0;
}

TLSMAIL_DEF int tlsmail_rcpt(tlsmail_client *c, const char *to) {
    int err = tlsmail__enter(c, TLSMAIL_STAGE_RCPT, TLSMAIL__MAIL, TLSMAIL__RCPT);
    if (err) return err;
    if ((err = tlsmail__check_rcpt(c, to)) != 0) return c->err = err;
    err = tlsmail__command(c, "RCPT TO:<", to, ">", TLSMAIL__WANT_RCPT);
    if (!err) c->state = TLSMAIL__RCPT;
    return c->err = err;
}

/* The reply to DATA: only 354 lets the message go. */
TLSMAIL__PRIVATE int tlsmail__data_verdict(tlsmail_client *c, int code) {
    int err = tlsmail__verdict(code, 354);
    if (!err) {
        c->state = TLSMAIL__DATA;
        tlsmail__dot_init(&c->dot);
    }
    return err;
}

TLSMAIL_DEF int tlsmail_data_begin(tlsmail_client *c) {
    int err = tlsmail__enter(c, TLSMAIL_STAGE_DATA, TLSMAIL__RCPT, TLSMAIL__RCPT);
    if (err) return err;
    err = tlsmail__put(c, "DATA", NULL, NULL);
    if (!err) err = tlsmail__flush(c);
    if (err) return err;
    return c->err = tlsmail__data_verdict(c, tlsmail__read_reply(c, NULL));
}

TLSMAIL_DEF int tlsmail_data_write(tlsmail_client *c, const void *p, size_t n) {
    const unsigned char *in = (const unsigned char *)p;
    int err = tlsmail__enter(c, TLSMAIL_STAGE_BODY, TLSMAIL__DATA, TLSMAIL__DATA);
    if (err) return err;
    if (!p && n) return c->err = TLSMAIL_EINVAL;
    while (n > 0) {
        size_t room = 0, used, written;
        unsigned char *out = tlsmail__stream_room(c, &room, &err);
        if (!out) return tlsmail__fatal(c, err);
        err = tlsmail__dot_encode(&c->dot, in, n, out, room, &used, &written);
        /* A line too long after part of the message went out: drop the
           connection without the final "." so nothing is delivered (what
           this call encoded is never committed). */
        if (err) return tlsmail__fatal(c, err);
        if (written && (err = tlsmail__stream_commit(c, written)) != 0) return tlsmail__fatal(c, err);
        in += used;
        n -= used;
    }
    return 0;
}

/* The final ".": with quit set, QUIT rides in the same write (RFC 2920). */
TLSMAIL__PRIVATE int tlsmail__data_end(tlsmail_client *c, int quit) {
    unsigned char end[8];
    int err = tlsmail__enter(c, TLSMAIL_STAGE_BODY, TLSMAIL__DATA, TLSMAIL__DATA), code;
    size_t n;
    if (err) return err;
    n = tlsmail__dot_finish(&c->dot, end);
    if ((err = tlsmail__stream_write(c, end, n)) != 0) return tlsmail__fatal(c, err);
    tlsmail__trace(c, TLSMAIL_TRACE_SEND, ".", 1);
    /* QUIT can only fail to queue if the engine had to send what it holds,
       the final "." included, and then failed: that "." may have arrived. */
    if (quit && tlsmail__put(c, "QUIT", NULL, NULL) != 0) return c->err = TLSMAIL_EUNKNOWN;
    /* A failed flush means the record holding ".\r\n" never fully left:
       the server can't have decrypted it, so the mail was not accepted. */
    if ((err = tlsmail__flush(c)) != 0) return err;
    c->state = TLSMAIL__READY;
    code = tlsmail__read_reply(c, NULL);
    /* The server has the whole message but we never heard its verdict: it
       may or may not deliver. Retrying could send the mail twice. */
    if (code < 0)
        /* ...unless that verdict was a 421: the server said it is closing
           without taking the message (RFC 5321 3.8), so a retry is right. */
        return c->err = code == TLSMAIL_ETRANSIENT && c->code == 421 ? code : TLSMAIL_EUNKNOWN;
    return c->err = tlsmail__verdict(code, 250);
}

TLSMAIL_DEF int tlsmail_data_end(tlsmail_client *c) { return tlsmail__data_end(c, 0); }

TLSMAIL_DEF int tlsmail_reset(tlsmail_client *c) {
    int err = tlsmail__enter(c, TLSMAIL_STAGE_RESET, TLSMAIL__GREETED, TLSMAIL__RCPT);
    if (err) return err;
    if ((err = tlsmail__ensure_hello(c)) != 0) return err;
    c->stage = TLSMAIL_STAGE_RESET;
    err = tlsmail__command(c, "RSET", NULL, NULL, 250);
    if (!err) c->state = TLSMAIL__READY;
    return c->err = err;
}

TLSMAIL_DEF int tlsmail_noop(tlsmail_client *c) {
    int err = tlsmail__enter(c, TLSMAIL_STAGE_NOOP, TLSMAIL__GREETED, TLSMAIL__RCPT);
    if (err) return err;
    return c->err = tlsmail__command(c, "NOOP", NULL, NULL, 250);
}

/* The reply to QUIT changes nothing for the caller's mail, so its wait is
   short: a server that never answers costs at most 5 s. */
TLSMAIL__PRIVATE int tlsmail__quit_reply(tlsmail_client *c) {
    int code;
    if (c->timeout_ms < 0 || c->timeout_ms > 5000) c->timeout_ms = 5000;
    code = tlsmail__read_reply(c, NULL);
    if (code >= 0) tlsmail__disconnect(c, TLSMAIL__POLITE);
    return tlsmail__verdict(code, 221);
}

TLSMAIL_DEF int tlsmail_quit(tlsmail_client *c) {
    /* Not during DATA: "QUIT" would become a line of the message. */
    int err = tlsmail__enter(c, TLSMAIL_STAGE_QUIT, TLSMAIL__GREETED, TLSMAIL__RCPT);
    if (err) return err;
    err = tlsmail__put(c, "QUIT", NULL, NULL);
    if (!err) err = tlsmail__flush(c);
    if (err) return err;
    return c->err = tlsmail__quit_reply(c);
}

/* ==== [tlsmail:send] one call, shaped like Go's net/smtp.SendMail ==== */

/* RFC 2920: at most this many commands in one pipelined group, so neither
   side's socket buffers can fill while nobody reads. */
#define TLSMAIL__PIPE_MAX 64

/* MAIL, every RCPT and DATA. With PIPELINING they leave in one write and the
   replies are read in order; the first refusal ends the session without a
   message (the server may already be waiting for one after DATA, so no more
   commands are sent: only the close). */
TLSMAIL__PRIVATE int tlsmail__envelope(tlsmail_client *c, const char *from, const char *const *to,
                                       size_t nto, int utf8) {
    size_t i;
    int err, code;
    if (!(c->ext.flags & TLSMAIL__EXT_PIPELINING) || nto + 2 > TLSMAIL__PIPE_MAX) {
        if ((err = tlsmail__mail(c, from, utf8)) != 0) return err;
        for (i = 0; i < nto; i++)
            if ((err = tlsmail_rcpt(c, to[i])) != 0) return err;
        return tlsmail_data_begin(c);
    }
    c->stage = TLSMAIL_STAGE_MAIL;
    if ((err = tlsmail__put_mail(c, from, utf8)) != 0) return err;
    for (i = 0; i < nto; i++)
        if ((err = tlsmail__put(c, "RCPT TO:<", to[i], ">")) != 0) return err;
    if ((err = tlsmail__put(c, "DATA", NULL, NULL)) != 0 || (err = tlsmail__flush(c)) != 0)
        return err;
    if ((err = tlsmail__verdict(tlsmail__read_reply(c, NULL), 250)) != 0) return c->err = err;
    c->state = TLSMAIL__MAIL;
    c->stage = TLSMAIL_STAGE_RCPT;
    for (i = 0; i < nto; i++)
        if ((err = tlsmail__verdict(tlsmail__read_reply(c, NULL), TLSMAIL__WANT_RCPT)) != 0)
            return c->err = err;
    c->state = TLSMAIL__RCPT;
    c->stage = TLSMAIL_STAGE_DATA;
    code = tlsmail__read_reply(c, NULL);
    return c->err = tlsmail__data_verdict(c, code);
}

TLSMAIL_DEF int tlsmail_client_send(tlsmail_client *c, const tlsmail_config *cfg,
                                 const tlsmail_auth *auth, const char *from,
                                 const char *const *to, size_t nto, const void *msg, size_t len) {
    char host[256];
    unsigned port;
    size_t i;
    int err, utf8;
    if (!c) return TLSMAIL_EINVAL;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    /* Everything the caller gave is checked before a byte goes out. */
    if (!cfg || !cfg->host || tlsmail_split_hostport(cfg->host, host, sizeof host, &port, 465) ||
        tlsmail__check_mailbox(from, 1) || !to || nto == 0 || (!msg && len))
        return c->err = TLSMAIL_EINVAL;
    utf8 = tlsmail__is_8bit(from);
    for (i = 0; i < nto; i++) {
        if (tlsmail__check_mailbox(to[i], 0)) return c->err = TLSMAIL_EINVAL;
        utf8 |= tlsmail__is_8bit(to[i]);
    }
    if (auth && (err = tlsmail__check_auth(auth, host)) != 0) {
        c->stage = TLSMAIL_STAGE_AUTH;
        return c->err = err;
    }
    if ((err = tlsmail__check_lines(msg, len)) != 0) {
        c->stage = TLSMAIL_STAGE_BODY;
        return c->err = err;
    }
    if ((err = tlsmail_dial(c, cfg)) != 0 || (err = tlsmail_hello(c)) != 0) return err;
    /* Like Go: credentials given but nothing to use them with is an error
       (ENOMECH from tlsmail_authenticate), never a reason to send
       unauthenticated. */
    if (auth && (err = tlsmail_authenticate(c, auth)) != 0) goto fail;
    if ((err = tlsmail__envelope(c, from, to, nto, utf8)) != 0) goto fail;
    if (len && (err = tlsmail_data_write(c, msg, len)) != 0) goto fail;
    err = tlsmail__data_end(c, (c->ext.flags & TLSMAIL__EXT_PIPELINING) != 0);
    if (err) goto fail;
    /* Delivered: whatever happens to QUIT now can't undo that. */
    if (c->ext.flags & TLSMAIL__EXT_PIPELINING) {
        c->stage = TLSMAIL_STAGE_QUIT;
        (void)tlsmail__quit_reply(c);
    } else {
        (void)tlsmail_quit(c);
    }
    tlsmail__disconnect(c, TLSMAIL__POLITE);
    c->err = 0;
    return 0;
fail:
    /* Leave without a word that could be taken for message text. */
    tlsmail__disconnect(c, TLSMAIL__POLITE);
    c->err = err;
    return err;
}

TLSMAIL_DEF int tlsmail_send(const char *addr, const tlsmail_auth *auth, const char *from,
                             const char *const *to, size_t nto, const void *msg, size_t len) {
    tlsmail_client c;
    tlsmail_config cfg;
    int err;
    memset(&cfg, 0, sizeof cfg);
    cfg.host = addr;
    cfg.security = tlsmail__security_for(addr);
    err = tlsmail_client_send(&c, &cfg, auth, from, to, nto, msg, len);
    tlsmail_close(&c);
    return err;
}

/* ==== [tlsmail:compose] a plain-text message, RFC 5322 + MIME ==== */

/* Output goes through one writer that only counts when there is no buffer,
   so the size query and the real run take the same path and agree. */
typedef struct tlsmail__w {
    char *buf;
    size_t cap, n;    /* n: bytes produced so far, written or not */
    size_t col;       /* octets on the current header line */
    int overflow;     /* n wrapped around size_t */
} tlsmail__w;

TLSMAIL__PRIVATE void tlsmail__w_put(tlsmail__w *w, const void *p, size_t k) {
    if (k > (size_t)-1 - w->n) {
        w->overflow = 1;
        return;
    }
    if (w->buf && w->n + k <= w->cap) memcpy(w->buf + w->n, p, k);
    w->n += k;
    w->col += k;
}

TLSMAIL__PRIVATE void tlsmail__w_str(tlsmail__w *w, const char *s) { tlsmail__w_put(w, s, strlen(s)); }

TLSMAIL__PRIVATE void tlsmail__w_crlf(tlsmail__w *w) {
    tlsmail__w_put(w, "\r\n", 2);
    w->col = 0;
}

/* RFC 3629 4: the length of the UTF-8 character at s[0..n), or 0 if it is
   not one (overlong forms, surrogates and code points past U+10FFFF are
   refused, as they must be). */
TLSMAIL__PRIVATE size_t tlsmail__utf8_char(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t k, i;
    unsigned long cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { k = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { k = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 4; cp = c & 0x07; }
    else return 0;
    if (n < k) return 0;
    for (i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k;
}

/* A header value: valid UTF-8 with no control character but TAB. *ascii
   tells whether it is all ASCII. This is the header injection guard: no
   CR or LF can reach the output through a value. */
TLSMAIL__PRIVATE int tlsmail__check_hvalue(const char *s, size_t n, int *ascii) {
    size_t i = 0;
    *ascii = 1;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t k;
        if ((c < 0x20 && c != '\t') || c == 0x7F) return TLSMAIL_EINVAL;
        k = tlsmail__utf8_char((const unsigned char *)s + i, n - i);
        if (k == 0) return TLSMAIL_EINVAL;
        if (k > 1) *ascii = 0;
        i += k;
    }
    return 0;
}

/* Emit s[0..n) as one unbreakable piece; a space before it (sp) is a fold
   point (RFC 5322 2.2.3: folding inserts CRLF before a WSP). Folds when the
   line would pass 78 characters and the line already holds something. */
TLSMAIL__PRIVATE int tlsmail__w_piece(tlsmail__w *w, const char *s, size_t n, int sp, size_t start) {
    if (sp) {
        if (n > 0 && w->col + 1 + n > 78 && w->col > start) tlsmail__w_crlf(w);
        tlsmail__w_put(w, " ", 1);
    }
    tlsmail__w_put(w, s, n);
    /* RFC 5322 2.1.1: 998 is a MUST; an unbreakable piece this long fails. */
    return w->col > 998 ? TLSMAIL_EINVAL : 0;
}

/* Text whose spaces are fold points, e.g. an ASCII subject or a quoted
   string: runs of spaces stay as they are, folding happens only before a
   space that is followed by text (no whitespace-only lines). */
TLSMAIL__PRIVATE int tlsmail__w_words(tlsmail__w *w, const char *s, size_t n, int sp, size_t start) {
    size_t i = 0;
    int err;
    for (;;) {
        size_t j = i;
        while (j < n && s[j] != ' ') j++;
        if ((err = tlsmail__w_piece(w, s + i, j - i, sp, start)) != 0) return err;
        if (j >= n) return 0;
        sp = 1;
        i = j + 1;
    }
}

/* RFC 2047 B-encoded words: "=?UTF-8?B?" + base64 + "?=", at most 75
   characters each (RFC 2047 2) and sized to what is left of the line, so a
   line stays within 78; whole UTF-8 characters only (RFC 2047 5: each word
   must be decodable on its own). Adjacent encoded words are separated by a
   space, which decoders drop (RFC 2047 6.2), so the text round-trips. */
TLSMAIL__PRIVATE int tlsmail__w_encoded(tlsmail__w *w, const char *s, size_t n, int sp, size_t start) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    char b64[64];
    if (n == 0) return 0;
    while (i < n) {
        size_t room, maxraw, take = 0, blen, k;
        /* After the optional space: 12 characters of frame, then base64,
           at most 60 of it (75 - 12, in whole 4-character groups). */
        size_t col = w->col + (sp ? 1u : 0u);
        room = col + 12 < 78 ? 78 - col - 12 : 0;
        if (room > 60) room = 60;
        maxraw = room / 4 * 3;
        k = tlsmail__utf8_char(u + i, n - i);
        if (k == 0) return TLSMAIL_EINVAL;
        if (k > maxraw && sp && w->col > start) { /* fold, then a full word */
            tlsmail__w_crlf(w);
            maxraw = 45;
        }
        if (k > maxraw) maxraw = 6; /* nowhere to fold: a longer line, still < 998 */
        while (i + take < n) {
            size_t kk = tlsmail__utf8_char(u + i + take, n - i - take);
            if (kk == 0) return TLSMAIL_EINVAL;
            if (take + kk > maxraw) break;
            take += kk;
        }
        if (take == 0) return TLSMAIL_EINVAL; /* cannot happen: maxraw >= k */
        blen = tlsmail__b64_encode(b64, sizeof b64, s + i, take);
        if (blen == 0) return TLSMAIL_EINVAL;
        if (sp) tlsmail__w_put(w, " ", 1);
        tlsmail__w_str(w, "=?UTF-8?B?");
        tlsmail__w_put(w, b64, blen);
        tlsmail__w_str(w, "?=");
        if (w->col > 998) return TLSMAIL_EINVAL;
        i += take;
        sp = 1;
    }
    return 0;
}

/* Unstructured text (Subject): as is, folded at spaces, when it is ASCII
   and cannot be mistaken for encoded words; RFC 2047 otherwise. */
TLSMAIL__PRIVATE int tlsmail__w_text(tlsmail__w *w, const char *s, size_t start) {
    size_t n = strlen(s), i, run = 0;
    int ascii, enc;
    if (tlsmail__check_hvalue(s, n, &ascii)) return TLSMAIL_EINVAL;
    enc = !ascii || strstr(s, "=?") != NULL;
    /* A word too long for a line (998 with the header name) is encoded,
       which can be split; shorter long words (URLs) stay readable. */
    for (i = 0; i < n && !enc; i++) {
        run = s[i] == ' ' ? 0 : run + 1;
        if (run > 900) enc = 1;
    }
    if (n == 0) return 0;
    return enc ? tlsmail__w_encoded(w, s, n, 1, start) : tlsmail__w_words(w, s, n, 1, start);
}

/* RFC 5322 3.2.3 atext, plus the space that separates the atoms of a
   phrase: a name made only of these needs no quoting. */
TLSMAIL__PRIVATE int tlsmail__is_atext(int c) {
    return tlsmail__isalnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~ ", c) != NULL);
}

/* One mailbox: "addr", or a display name and "<addr>". The name is written
   as atoms, a quoted string, or encoded words, whichever it needs. sp: a
   space (fold point) goes first. */
TLSMAIL__PRIVATE int tlsmail__w_mailbox(tlsmail__w *w, const char *in, int sp, size_t start) {
    const char *lt, *name = NULL, *addr = in;
    size_t nlen = 0, alen = strlen(in), i;
    char abuf[256], nbuf[1024];
    int ascii, err, plain = 1;
    if (tlsmail__check_hvalue(in, alen, &ascii)) return TLSMAIL_EINVAL;
    /* Trim the surrounding whitespace. */
    while (alen && (*addr == ' ' || *addr == '\t')) { addr++; alen--; }
    while (alen && (addr[alen - 1] == ' ' || addr[alen - 1] == '\t')) alen--;
    if (alen && addr[alen - 1] == '>' && (lt = strrchr(addr, '<')) != NULL && lt < addr + alen) {
        name = addr;
        nlen = (size_t)(lt - addr);
        while (nlen && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t')) nlen--;
        alen = (size_t)(addr + alen - 1 - (lt + 1));
        addr = lt + 1;
    }
    if (alen == 0 || alen >= sizeof abuf) return TLSMAIL_EINVAL;
    memcpy(abuf, addr, alen);
    abuf[alen] = 0;
    if (tlsmail__check_mailbox(abuf, 0) || !strchr(abuf, '@')) return TLSMAIL_EINVAL;
    /* A name already in quotes is taken as its content (quoted-pairs
       undone); it is re-quoted below as needed. */
    if (nlen >= 2 && name[0] == '"' && name[nlen - 1] == '"') {
        size_t o = 0;
        for (i = 1; i + 1 < nlen; i++) {
            if (name[i] == '\\' && i + 2 < nlen) i++;
            else if (name[i] == '"') return TLSMAIL_EINVAL;
            if (o >= sizeof nbuf) return TLSMAIL_EINVAL;
            nbuf[o++] = name[i];
        }
        name = nbuf;
        nlen = o;
    } else if (nlen >= sizeof nbuf) {
        return TLSMAIL_EINVAL;
    } else if (nlen) {
        memcpy(nbuf, name, nlen);
        name = nbuf;
    }
    if (nlen == 0) return tlsmail__w_piece(w, abuf, alen, sp, start);
    if (tlsmail__check_hvalue(name, nlen, &ascii)) return TLSMAIL_EINVAL;
    for (i = 0; i < nlen; i++)
        if (!tlsmail__is_atext((unsigned char)name[i])) plain = 0;
    /* Leading, trailing or doubled spaces would be lost as bare atoms. */
    if (name[0] == ' ' || name[nlen - 1] == ' ' || (nlen >= 2 && strstr(name, "  "))) plain = 0;
    if (!ascii || strstr(name, "=?")) {
        /* Not ASCII, or would be read as encoded words: encode it. */
        err = tlsmail__w_encoded(w, name, nlen, sp, start);
    } else if (plain) {
        err = tlsmail__w_words(w, name, nlen, sp, start);
    } else {
        /* RFC 5322 3.2.4 quoted-string: '"' and backslash become quoted-pairs. */
        char qbuf[2 * sizeof nbuf + 2];
        size_t o = 0;
        qbuf[o++] = '"';
        for (i = 0; i < nlen; i++) {
            if (name[i] == '"' || name[i] == '\\') qbuf[o++] = '\\';
            qbuf[o++] = name[i];
        }
        qbuf[o++] = '"';
        err = tlsmail__w_words(w, qbuf, o, sp, start);
    }
    if (err) return err;
    {
        char br[258];
        br[0] = '<';
        memcpy(br + 1, abuf, alen);
        br[alen + 1] = '>';
        return tlsmail__w_piece(w, br, alen + 2, 1, start);
    }
}

/* "Name: a, b, c" with a fold point before every mailbox. */
TLSMAIL__PRIVATE int tlsmail__w_list(tlsmail__w *w, const char *hdr, const char *const *v, size_t n) {
    size_t i, start;
    int err;
    if (!v) return TLSMAIL_EINVAL;
    tlsmail__w_str(w, hdr);
    start = w->col;
    for (i = 0; i < n; i++) {
        if (!v[i]) return TLSMAIL_EINVAL;
        if (i) tlsmail__w_put(w, ",", 1);
        if ((err = tlsmail__w_mailbox(w, v[i], 1, start)) != 0) return err;
    }
    tlsmail__w_crlf(w);
    return 0;
}

/* Days since 1970-01-01 to a civil date, proleptic Gregorian (the
   well-known era algorithm): no gmtime(), so no static buffer and no
   locale, and it works for any time value. */
TLSMAIL__PRIVATE void tlsmail__civil(long long days, long long *y, unsigned *m, unsigned *d) {
    long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (long long)yoe + era * 400 + (*m <= 2);
}

/* Two digits of v at p. */
TLSMAIL__PRIVATE void tlsmail__2d(char *p, unsigned v) {
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

/* RFC 5322 3.3 date-time in UTC, fixed width, 31 characters and a NUL:
   "Sat, 28 Nov 2026 18:27:24 +0000". Written by hand: snprintf's widths
   would not be fixed for a year past 9999, and this never truncates. */
TLSMAIL__PRIVATE void tlsmail__date(char out[32], long long t) {
    static const char days[] = "ThuFriSatSunMonTueWed"; /* 1970-01-01 was a Thursday */
    static const char mons[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    long long dn = t / 86400 - (t % 86400 < 0), y; /* floor division, no overflow */
    unsigned sec = (unsigned)(t - dn * 86400), m, d, wd = (unsigned)(((dn % 7) + 7) % 7), yy;
    tlsmail__civil(dn, &y, &m, &d);
    yy = y < 0 ? 0u : y > 9999 ? 9999u : (unsigned)y;
    memcpy(out, days + 3 * wd, 3);
    memcpy(out + 3, ", ", 2);
    tlsmail__2d(out + 5, d);
    out[7] = ' ';
    memcpy(out + 8, mons + 3 * (m - 1), 3);
    out[11] = ' ';
    tlsmail__2d(out + 12, yy / 100);
    tlsmail__2d(out + 14, yy % 100);
    out[16] = ' ';
    tlsmail__2d(out + 17, sec / 3600);
    out[19] = ':';
    tlsmail__2d(out + 20, sec / 60 % 60);
    out[22] = ':';
    tlsmail__2d(out + 23, sec % 60);
    memcpy(out + 25, " +0000", 7);
}

/* A date or message id from the caller: printable ASCII only. */
TLSMAIL__PRIVATE int tlsmail__check_ascii(const char *s, int spaces) {
    size_t i;
    for (i = 0; s[i]; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7E) {
            if (!(spaces && s[i] == ' ')) return TLSMAIL_EINVAL;
        }
    return i == 0 || i > 900 ? TLSMAIL_EINVAL : 0;
}

/* RFC 5322 3.6.4 msg-id, loosely: "<left@right>" (brackets optional
   here), printable ASCII, no space, no further angle bracket. */
TLSMAIL__PRIVATE int tlsmail__check_msgid(const char *id) {
    size_t n = strlen(id), i;
    if (tlsmail__check_ascii(id, 0)) return TLSMAIL_EINVAL;
    if (id[0] == '<') {
        if (n < 3 || id[n - 1] != '>') return TLSMAIL_EINVAL;
        id++;
        n -= 2;
    }
    for (i = 0; i < n; i++)
        if (id[i] == '<' || id[i] == '>') return TLSMAIL_EINVAL;
    return memchr(id, '@', n) ? 0 : TLSMAIL_EINVAL;
}

enum { TLSMAIL__MSGID_RAND = 16 };

/* The domain of from's address when it is a plain ASCII dot-atom, else
   "localhost": the id must be ASCII (RFC 5322 3.6.4). */
TLSMAIL__PRIVATE void tlsmail__msgid_domain(const char *from, char *out, size_t cap) {
    const char *end = from + strlen(from), *at, *p;
    size_t n;
    while (end > from && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if (end > from && end[-1] == '>') end--;
    for (at = end; at > from && at[-1] != '@'; at--) {}
    n = (size_t)(end - at);
    if (at == from || n == 0 || n >= cap) goto fallback;
    for (p = at; p < end; p++)
        if (!(tlsmail__isalnum((unsigned char)*p) || *p == '-' || *p == '.')) goto fallback;
    memcpy(out, at, n);
    out[n] = 0;
    return;
fallback:
    snprintf(out, cap, "localhost");
}

/* 16 random octets as hex, from BearSSL's system seeder through
   HMAC_DRBG (no global state; the DRBG lives on the stack and is wiped). */
TLSMAIL__PRIVATE int tlsmail__msgid_random(char *hex) {
    br_hmac_drbg_context rng;
    br_prng_seeder seeder = br_prng_seeder_system(NULL);
    unsigned char r[TLSMAIL__MSGID_RAND];
    size_t i;
    if (!seeder) return TLSMAIL_EINVAL;
    br_hmac_drbg_init(&rng, &br_sha256_vtable, NULL, 0);
    if (!seeder(&rng.vtable)) {
        tlsmail__wipe(&rng, sizeof rng);
        return TLSMAIL_EINVAL;
    }
    br_hmac_drbg_generate(&rng, r, sizeof r);
    for (i = 0; i < sizeof r; i++) {
        hex[2 * i] = "0123456789abcdef"[r[i] >> 4];
        hex[2 * i + 1] = "0123456789abcdef"[r[i] & 15];
    }
    hex[2 * sizeof r] = 0;
    tlsmail__wipe(&rng, sizeof rng);
    tlsmail__wipe(r, sizeof r);
    return 0;
}

/* How the body goes: 7bit (RFC 2045 2.7) or quoted-printable. Also checks
   that it is UTF-8. */
TLSMAIL__PRIVATE int tlsmail__body_kind(const unsigned char *b, size_t n, int *qp) {
    size_t i = 0, ll = 0;
    *qp = 0;
    while (i < n) {
        size_t k = tlsmail__utf8_char(b + i, n - i);
        if (k == 0) return TLSMAIL_EINVAL;
        if (k > 1 || b[i] == 0) *qp = 1;
        if (b[i] == '\r' || b[i] == '\n') ll = 0;
        else if ((ll += k) > 998) *qp = 1;
        i += k;
    }
    return 0;
}

/* The body, line ends normalised to CRLF, ending in CRLF. */
TLSMAIL__PRIVATE void tlsmail__w_body7(tlsmail__w *w, const unsigned char *b, size_t n) {
    size_t i = 0, s = 0;
    while (i < n) {
        if (b[i] == '\r' || b[i] == '\n') {
            tlsmail__w_put(w, b + s, i - s);
            tlsmail__w_crlf(w);
            i += (b[i] == '\r' && i + 1 < n && b[i + 1] == '\n') ? 2 : 1;
            s = i;
        } else {
            i++;
        }
    }
    if (s < n) {
        tlsmail__w_put(w, b + s, n - s);
        tlsmail__w_crlf(w);
    }
}

/* RFC 2045 6.7 quoted-printable: octets 33..60 and 62..126 literal (rule
   2), space and tab literal except at the end of a line (rule 3), all else
   "=XX" (rule 1); line ends are hard breaks written as CRLF (rule 4);
   encoded lines at most 76 characters, soft breaks "=" CRLF (rule 5). */
TLSMAIL__PRIVATE void tlsmail__w_qp(tlsmail__w *w, const unsigned char *b, size_t n) {
    size_t i = 0;
    int open = 0;   /* a line has been started and not yet ended */
    w->col = 0;
    while (i < n) {
        unsigned char c = b[i];
        char tok[3];
        size_t tl, limit;
        int eol;
        if (c == '\r' || c == '\n') {
            tlsmail__w_crlf(w);
            i += (c == '\r' && i + 1 < n && b[i + 1] == '\n') ? 2 : 1;
            open = 0;
            continue;
        }
        eol = i + 1 == n || b[i + 1] == '\r' || b[i + 1] == '\n';
        if ((c >= 33 && c <= 60) || (c >= 62 && c <= 126) || ((c == ' ' || c == '\t') && !eol)) {
            tok[0] = (char)c;
            tl = 1;
        } else {
            tok[0] = '=';
            tok[1] = "0123456789ABCDEF"[c >> 4];
            tok[2] = "0123456789ABCDEF"[c & 15];
            tl = 3;
        }
        /* The last token of a line may use column 76; any other must leave
           room for the "=" of a soft break. */
        limit = eol ? 76 : 75;
        if (w->col + tl > limit) {
            tlsmail__w_put(w, "=", 1);
            tlsmail__w_crlf(w);
        }
        tlsmail__w_put(w, tok, tl);
        open = 1;
        i++;
    }
    if (open) tlsmail__w_crlf(w);
}

TLSMAIL_DEF void tlsmail_format_date(char out[32], long long t) {
    if (out) tlsmail__date(out, t);
}

TLSMAIL_DEF int tlsmail_format_mailbox(const char *mailbox, char *buf, size_t cap, size_t *len) {
    tlsmail__w w;
    int err;
    if (!mailbox || !len) return TLSMAIL_EINVAL;
    *len = 0;
    memset(&w, 0, sizeof w);
    w.buf = buf;
    w.cap = buf ? cap : 0;
    w.col = sizeof "From:" - 1;
    if ((err = tlsmail__w_mailbox(&w, mailbox, 1, w.col)) != 0) return err;
    if (w.overflow) return TLSMAIL_ENOMEM;
    *len = w.n;
    if (!buf) return 0;
    if (w.n >= cap) return TLSMAIL_ENOMEM;
    buf[w.n] = 0;
    return 0;
}

TLSMAIL_DEF int tlsmail_message_id(char *out, size_t cap, const char *from) {
    char domain[256], hex[2 * TLSMAIL__MSGID_RAND + 1];
    size_t dl;
    int err;
    if (!out || !from) return TLSMAIL_EINVAL;
    tlsmail__msgid_domain(from, domain, sizeof domain);
    dl = strlen(domain);
    if (cap < 2 * TLSMAIL__MSGID_RAND + dl + 4) return TLSMAIL_EINVAL;
    if ((err = tlsmail__msgid_random(hex)) != 0) return err;
    out[0] = '<';
    memcpy(out + 1, hex, 2 * TLSMAIL__MSGID_RAND);
    out[1 + 2 * TLSMAIL__MSGID_RAND] = '@';
    memcpy(out + 2 + 2 * TLSMAIL__MSGID_RAND, domain, dl);
    memcpy(out + 2 + 2 * TLSMAIL__MSGID_RAND + dl, ">", 2);
    return 0;
}

TLSMAIL_DEF int tlsmail_compose(const tlsmail_message *m, char *buf, size_t cap, size_t *len) {
    tlsmail__w w;
    char date[32], domain[256], hex[2 * TLSMAIL__MSGID_RAND + 1];
    const char *subject;
    int err, qp;
    if (!len) return TLSMAIL_EINVAL;
    *len = 0;
    if (!m || !m->from || (m->nto && !m->to) || (m->ncc && !m->cc) || (!m->body && m->body_len))
        return TLSMAIL_EINVAL;
    memset(&w, 0, sizeof w);
    w.buf = buf;
    w.cap = buf ? cap : 0;
    subject = m->subject ? m->subject : "";

    /* Checked first, so a bad message fails the same with or without buf. */
    if (m->date && tlsmail__check_ascii(m->date, 1)) return TLSMAIL_EINVAL;
    if (m->message_id && tlsmail__check_msgid(m->message_id)) return TLSMAIL_EINVAL;
    if ((err = tlsmail__body_kind((const unsigned char *)m->body, m->body_len, &qp)) != 0) return err;
    if (!m->date) {
        long long now;
        if (tlsmail__unix_time(&now) != 0) return TLSMAIL_EINVAL; /* no clock: pass m->date */
        tlsmail__date(date, now);
    }
    if (!m->message_id) {
        tlsmail__msgid_domain(m->from, domain, sizeof domain);
        if (buf) {
            if ((err = tlsmail__msgid_random(hex)) != 0) return err;
        } else {
            /* Same width as the real one; the seeder must exist either way. */
            if (!br_prng_seeder_system(NULL)) return TLSMAIL_EINVAL;
            memset(hex, '0', sizeof hex - 1);
            hex[sizeof hex - 1] = 0;
        }
    }

    tlsmail__w_str(&w, "From:");
    if ((err = tlsmail__w_mailbox(&w, m->from, 1, w.col)) != 0) return err;
    tlsmail__w_crlf(&w);
    if (m->nto && (err = tlsmail__w_list(&w, "To:", m->to, m->nto)) != 0) return err;
    if (m->ncc && (err = tlsmail__w_list(&w, "Cc:", m->cc, m->ncc)) != 0) return err;
    tlsmail__w_str(&w, "Subject:");
    if ((err = tlsmail__w_text(&w, subject, w.col)) != 0) return err;
    tlsmail__w_crlf(&w);
    tlsmail__w_str(&w, "Date: ");
    tlsmail__w_str(&w, m->date ? m->date : date);
    tlsmail__w_crlf(&w);
    tlsmail__w_str(&w, "Message-ID: ");
    if (m->message_id) {
        int br = m->message_id[0] == '<';
        if (!br) tlsmail__w_str(&w, "<");
        tlsmail__w_str(&w, m->message_id);
        if (!br) tlsmail__w_str(&w, ">");
    } else {
        tlsmail__w_str(&w, "<");
        tlsmail__w_str(&w, hex);
        tlsmail__w_str(&w, "@");
        tlsmail__w_str(&w, domain);
        tlsmail__w_str(&w, ">");
    }
    tlsmail__w_crlf(&w);
    tlsmail__w_str(&w, "MIME-Version: 1.0\r\n"
                       "Content-Type: text/plain; charset=UTF-8\r\n"
                       "Content-Transfer-Encoding: ");
    tlsmail__w_str(&w, qp ? "quoted-printable" : "7bit");
    tlsmail__w_crlf(&w);
    tlsmail__w_crlf(&w);
    if (qp) tlsmail__w_qp(&w, (const unsigned char *)m->body, m->body_len);
    else tlsmail__w_body7(&w, (const unsigned char *)m->body, m->body_len);

    if (w.overflow) return TLSMAIL_ENOMEM;
    *len = w.n;
    if (!buf) return 0;
    if (w.n > cap) return TLSMAIL_ENOMEM;
    if (w.n < cap) buf[w.n] = 0;
    return 0;
}

/* ==== [tlsmail:report] what went wrong, for the caller ==== */

TLSMAIL_DEF const char *tlsmail_strerror(int err) {
    switch (err) {
#define TLSMAIL__CASE(name, cls, text) case TLSMAIL_##name: return text;
        TLSMAIL__ERRORS(TLSMAIL__CASE)
#undef TLSMAIL__CASE
    default: return "unknown error";
    }
}

TLSMAIL_DEF int tlsmail_reply_code(const tlsmail_client *c) { return c ? c->code : 0; }

TLSMAIL_DEF const char *tlsmail_reply_text(const tlsmail_client *c) { return c ? c->text : ""; }

TLSMAIL_DEF int tlsmail_reply_tls(const tlsmail_client *c) { return c && c->code ? c->reply_tls : 0; }

TLSMAIL_DEF int tlsmail_stage(const tlsmail_client *c) { return c ? c->stage : 0; }

TLSMAIL_DEF int tlsmail_tls_error(const tlsmail_client *c) { return c ? c->br_err : 0; }

TLSMAIL_DEF const char *tlsmail_reply_enhanced(const tlsmail_client *c) {
    return c && c->code ? c->enhanced : "";
}

TLSMAIL_DEF int tlsmail_error_class(const tlsmail_client *c, int err) {
    int cls;
    switch (err) {
#define TLSMAIL__CLASS_CASE(name, klass, text) case TLSMAIL_##name: cls = TLSMAIL_CLASS_##klass; break;
        TLSMAIL__ERRORS(TLSMAIL__CLASS_CASE)
#undef TLSMAIL__CLASS_CASE
    default: return TLSMAIL_CLASS_CONFIG; /* not ours: the caller's bug */
    }
    if (cls == TLSMAIL_CLASS_REFUSED && c && c->code >= 500 &&
        (strncmp(c->enhanced, "5.1.", 4) == 0 || strncmp(c->enhanced, "5.7.", 4) == 0))
        cls = TLSMAIL_CLASS_CONFIG;
    return cls;
}

TLSMAIL_DEF const char *tlsmail_stage_name(int stage) {
    switch (stage) {
#define TLSMAIL__STAGE_CASE(name, text) case TLSMAIL_STAGE_##name: return text;
        TLSMAIL__STAGES(TLSMAIL__STAGE_CASE)
#undef TLSMAIL__STAGE_CASE
    default: return "none";
    }
}

TLSMAIL_DEF char *tlsmail_describe(const tlsmail_client *c, int err, char *buf, size_t cap) {
    size_t n;
    int r;
    if (!buf || !cap) return buf;
    buf[0] = 0;
    r = snprintf(buf, cap, "%s: %s", tlsmail_stage_name(tlsmail_stage(c)), tlsmail_strerror(err));
    n = r < 0 ? 0 : (size_t)r;
    /* The reply explains only what the server decided; after our own
       refusal (a bad argument, a timeout) it would be an older, unrelated
       reply. */
    if (c && c->code && c->reply_fresh && n < cap &&
        (err == TLSMAIL_ETRANSIENT || err == TLSMAIL_EPERMANENT || err == TLSMAIL_EAUTH ||
         err == TLSMAIL_ESTARTTLS || err == TLSMAIL_EPROTO ||
         err == TLSMAIL_ENOMECH)) {
        const char *p;
        r = snprintf(buf + n, cap - n, "; server said%s: %d ",
                     c->reply_tls ? "" : " (in plaintext, unauthenticated)", c->code);
        n += r < 0 ? 0 : (size_t)r;
        /* Multi-line replies on one line: the caller's log wants one. */
        for (p = c->text; *p && n + 1 < cap; p++) buf[n++] = *p == '\n' ? ' ' : *p;
        if (n < cap) buf[n] = 0;
    }
    if (c && c->br_err && n < cap) {
        r = snprintf(buf + n, cap - n, " (BearSSL error %d)", c->br_err);
        n += r < 0 ? 0 : (size_t)r;
    }
    if (c && c->sys_err && n < cap && (err == TLSMAIL_ECONNECT || err == TLSMAIL_EIO))
        (void)snprintf(buf + n, cap - n, " (errno %d)", c->sys_err);
    return buf;
}

#endif /* TLSMAIL__IMPLEMENTATION_ONCE */
#endif /* TLSMAIL_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
MIT License

Copyright (c) 2026 the tlsmail.h authors

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
*/
