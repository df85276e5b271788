/* tlsmail.h - v0.2.5 - send mail over SMTP + TLS (BearSSL) - license at end

   Do this:
       #define TLSMAIL_IMPLEMENTATION
   before you include this file in *one* C or C++ file, and link BearSSL
   (-lbearssl; Debian: apt-get install libbearssl-dev). Where threads are a
   library of their own (glibc before 2.34, some BSDs) add -pthread; on
   Windows add -lws2_32 and -lcrypt32 (the system trust store; not needed
   with TLSMAIL_NO_STDIO), and with mingw-w64 -ladvapi32 (BearSSL's random
   seeder; its #pragma comment(lib) is for MSVC only).

SUMMARY
   One header that sends email over SMTP with TLS from the first byte
   ("implicit TLS", RFC 8314, port 465), through BearSSL: real certificate
   chain and host name checks, AUTH PLAIN, LOGIN, XOAUTH2, OAUTHBEARER and
   EXTERNAL, TLS client certificates, a one-call send shaped like Go's
   net/smtp.SendMail, and a caller-allocated client object for step-by-step
   use. SIZE, 8BITMIME, SMTPUTF8, DSN, PIPELINING and CHUNKING are used when
   the server offers them and declared only when the message needs them. No
   heap in the dialogue, no global state, every wait bounded by a timeout
   and the session by a deadline, name resolution included: the lookup runs
   in a thread of its own, which a caller that stops waiting leaves to
   finish (TLSMAIL_NO_THREADS: the system resolver's own timeouts instead).
   Sockets on POSIX systems and on Windows (Winsock); anything else through
   a tlsmail_io of your own.

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
   TLSMAIL_NO_SOCKETS           leave out the socket transport (POSIX or
                                Winsock) and name resolution; dial with a
                                tlsmail_io of your own
   TLSMAIL_NO_THREADS           resolve names in the calling thread, with no
                                thread library: a lookup is then bounded by
                                the system resolver's own timeouts
                                (resolv.conf), not by timeout_ms/deadline_ms
   TLSMAIL_SMALL                the smallest build, for boards and static
                                binaries: one implementation of each piece
                                of BearSSL instead of the fastest the CPU
                                allows, 23 to 29 KB less code: AES-GCM
                                suites only (no ChaCha20-Poly1305), ECDHE
                                on the NIST curves only (no X25519),
                                constant-time software AES (no AES-NI),
                                i31 RSA. Certificates are
                                checked as in the default build. The cost,
                                on x86-64 (make bench, (a) and (d)): 3 to
                                5 ms more CPU per send, and about 50 MB/s
                                instead of 1 GB/s for a big message
   TLSMAIL_NO_STDIO             leave out file and directory trust loading
                                and so the system store (on Windows the
                                ROOT store too, and crypt32 with it:
                                without files $SSL_CERT_FILE could not
                                replace it)
   TLSMAIL_ASSERT(x)            internal invariant check (default: assert)
   TLSMAIL_MALLOC(ctx,n), TLSMAIL_FREE(ctx,p)
                                allocator for trust (PEM in memory, the
                                sources' names, the anchors a handshake
                                looks up), client certificates and name
                                lookups (ctx NULL; a lookup's block may be
                                freed by its own thread, after the call
                                returned), the only heap users; define both
                                or neither
   TLSMAIL_DEFAULT_TIMEOUT_MS   per connect/read/write wait (default 60000)
   TLSMAIL_DEFAULT_DEADLINE_MS  whole session, dial to close (default 600000)
   TLSMAIL_DATA_DONE_MS         least wait for the server's verdict after the
                                end of a message (default 600000, RFC 5321
                                4.5.3.2.6), within the deadline
   TLSMAIL_MAX_LINE             longest reply line accepted (default 512,
                                RFC 5321 4.5.3.1.5)
   TLSMAIL_MAX_REPLY_LINES      most lines in one reply (default 128)
   TLSMAIL_REPLY_TEXT           room for the last reply's text in the client
                                (default 1024; longer text is cut, never
                                overflowed)
   TLSMAIL_EXT_TEXT             room for the EHLO keywords kept for
                                tlsmail_extension (default 512)
   TLSMAIL_RCPT_TEXT            room for one recipient's reply text in
                                tlsmail_rcpt_result (default 160)
   TLSMAIL_RCPT_MAX             most recipients in one transaction: more go
                                in several, one after another on the same
                                connection (default 100, RFC 5321
                                4.5.3.1.8; Gmail and Postfix take no more)
   TLSMAIL_QUEUE_ID             room for tlsmail_queue_id (default 128)
   TLSMAIL_SESSION_LIFETIME     seconds a TLS session may be resumed after
                                the full handshake that made it (default
                                3600)
   TLSMAIL_INSECURE_NO_TLS_FOR_FUZZING
                                fuzz builds only: the dialogue runs on the
                                bare transport, no TLS at all. Never ship it.

API (each [group] is also the heading of its declarations below and the
   [tlsmail:group] marker of its implementation: grep for any name)
   [send]       tlsmail_send, tlsmail_client_send, tlsmail_client_send_ex,
                tlsmail_transact, tlsmail_transact_begin, tlsmail_send_opts,
                tlsmail_rcpt_result
   [auth]       tlsmail_auth, tlsmail_plain_auth, tlsmail_login_auth,
                tlsmail_auto_auth, tlsmail_xoauth2_auth,
                tlsmail_oauthbearer_auth, tlsmail_external_auth,
                tlsmail_authenticate, tlsmail_client_cert,
                tlsmail_client_cert_pem, tlsmail_client_cert_file,
                tlsmail_client_cert_free
   [session]    tlsmail_config, tlsmail_client, tlsmail_dial, tlsmail_hello,
                tlsmail_extension, tlsmail_close, tlsmail_session,
                tlsmail_session_resumed, tlsmail_session_clear,
                tlsmail_session_export, tlsmail_session_import
   [commands]   tlsmail_mail, tlsmail_rcpt, tlsmail_mail_opts,
                tlsmail_rcpt_opts, tlsmail_mail_ex, tlsmail_rcpt_ex,
                tlsmail_message_size, tlsmail_data_begin,
                tlsmail_data_write, tlsmail_data_end, tlsmail_reset,
                tlsmail_noop, tlsmail_quit
   [report]     tlsmail_strerror, tlsmail_error_class, tlsmail_describe,
                tlsmail_describe_rcpt, tlsmail_stage, tlsmail_stage_name,
                tlsmail_reply_code, tlsmail_reply_text, tlsmail_reply_enhanced,
                tlsmail_reply_tls, tlsmail_tls_error, tlsmail_queue_id,
                tlsmail_error_line, tlsmail_tls_info, tlsmail_tls_details
   [trust]      tlsmail_trust, tlsmail_trust_system, tlsmail_trust_file,
                tlsmail_trust_dir, tlsmail_trust_pem, tlsmail_trust_anchors,
                tlsmail_trust_pin_sha256, tlsmail_trust_free
   [transport]  tlsmail_io
   [checks]     tlsmail_check_address, tlsmail_split_hostport
   [compose]    tlsmail_message, tlsmail_compose, tlsmail_format_date,
                tlsmail_message_id, tlsmail_format_mailbox, tlsmail_encode_qp
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
   send twice), _PARTIAL (EPARTIAL: delivered to some recipients only, in
   the transactions before the one that failed: a retry would send it again
   to those). Errors the library decides on itself (EINVAL, ENOEXT,
   ETOOBIG, ...) never quote a server reply in tlsmail_describe().

CONVENTIONS
   - Calls that do something (dial, commands, trust loading, compose)
     return 0 or a negative TLSMAIL_E* code, which tlsmail_strerror()
     names. The getters return what they get: tlsmail_reply_code() a
     reply code or 0, tlsmail_stage() a TLSMAIL_STAGE_*, tlsmail_reply_tls()
     0 or 1, tlsmail_tls_error() BearSSL's error number, and
     tlsmail_error_class() a TLSMAIL_CLASS_*.
   - Pointers: the library keeps the caller's tlsmail_config, tlsmail_trust,
     tlsmail_io, tlsmail_client_cert and tlsmail_session pointers from
     tlsmail_dial() until tlsmail_close(); it keeps no other pointer past
     the call that received it.
   - Threads: no global mutable state. One client per thread at a time; one
     loaded tlsmail_trust may be shared read-only by many clients. A name
     lookup runs in a detached thread with every signal blocked; one that
     was given up on finishes on its own, touching nothing of the caller's.
   - Memory: a tlsmail_client (about 29 KB) is allocated by the caller (stack,
     static, pool). Fields of library structs are private: callers SHALL NOT
     read or write them. Only trust, client certificates and name lookups
     use the heap: trust none with the caller's anchors or a pin, about 16
     KB at most while a handshake searches files and directories (about
     10 KB for the Windows ROOT store, beside what crypt32 allocates for
     itself); a lookup one block of about 400 octets, freed by its thread
     or by the caller, whichever is done last.
   - Windows: the library calls WSAStartup itself. Each of its sockets holds
     one WSAStartup (Winsock counts them per process) and gives it back with
     WSACleanup when it closes, so callers need none of their own and a
     caller's own are not disturbed. Include tlsmail.h before <windows.h>
     (or define WIN32_LEAN_AND_MEAN), as for any user of <winsock2.h>: the
     implementation includes <winsock2.h>, <windows.h> and <wincrypt.h>
     (with TLSMAIL_NO_SOCKETS too, unless <windows.h> came first; with
     both TLSMAIL_NO_SOCKETS and TLSMAIL_NO_STDIO none of them). The
     system trust store is the current user's ROOT store ([trust]).
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
     (or anyExtendedKeyUsage), the issuers' and the anchor's too, as
     OpenSSL checks -purpose sslserver. nameConstraints are not enforced:
     a certificate or anchor that has them is refused, critical or not.
     An anchor is its name and key: its own dates, pathLenConstraint and
     keyUsage are not checked (RFC 5280 6.1.1 d), and any CA certificate
     the caller gives is one, a root or not.
   - The server's name is always checked, case-insensitively, against the
     subjectAltName DNS entries (the CN only without a subjectAltName), with
     RFC 6125 wildcards: "*." as the whole left-most label, matching one
     label, never over one label alone (a leaf with "*.com" is refused).
     "host." is "host" (no trailing dot in SNI or the check). An IP
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
     "<LF>.<LF>" (SMTP smuggling) can never reach a server. Every other
     octet, NUL included, goes as given, as sendmail and msmtp pass it
     (RFC 5322 has no NUL; a cron job's output may, and refusing it would
     lose the mail): tlsmail_compose encodes one as "=00".
   - AUTH responses (passwords, OAuth tokens) are base64-encoded on the fly
     into the TLS engine's buffer through a 64-octet buffer that is wiped;
     the client is wiped on close; the trace callback sees AUTH payloads
     masked, and so do it and the reply text where a reply quotes them. A
     client certificate's key lives only in memory from TLSMAIL_MALLOC and
     is wiped when freed.
   - What the server is told matches the message: SIZE= its size (a message
     over the server's limit is refused before MAIL, TLSMAIL_ETOOBIG),
     BODY=8BITMIME only for 8-bit content and SMTPUTF8 only for non-ASCII
     addresses or headers (either one missing on the server is
     TLSMAIL_ENOEXT before MAIL: 8-bit text never goes to a 7-bit server).

STARTTLS (only with TLSMAIL_STARTTLS)
   security = TLSMAIL_SECURITY_STARTTLS: plaintext greeting, EHLO, STARTTLS,
   then the same TLS checks as implicit TLS, then EHLO again. Nothing but EHLO
   and STARTTLS is ever sent in clear; no STARTTLS in the EHLO reply, any
   byte arriving after that reply and before STARTTLS, any reply but 220 to
   it, or any byte arriving after that 220 and before the handshake fails
   the session; everything learned before TLS is forgotten.
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
   fields of at most 255 octets (RFC 4616); an OAuth response of at most
   12,288 octets of base64 (RFC 4954 4); ENVID of 100 and ORCPT of 500
   octets encoded (RFC 3461).
   Name lookups: a lookup given up on keeps its thread and block until the
   system resolver gives up too (resolv.conf: 5 s per try by default), so
   repeated dials to a dead resolver each leave one behind for that long.
   With timeout_ms < 0 and deadline_ms < 0, with TLSMAIL_NO_THREADS, or
   when no thread or memory can be had, the lookup runs in the calling
   thread and only the resolver's own timeouts bound it. Numeric hosts and
   tlsmail_config.addresses need no lookup.
   Windows: Vista or later (_WIN32_WINNT >= 0x0600); waits use select().
   Compilers: C99 or later, or C++11 or later (the build checks compile
   both, gcc and clang, warning-free).

CHANGES
   0.2.5  New: TLSMAIL_SMALL, the build for boards and static binaries:
          one implementation of each piece of BearSSL (AES-GCM suites
          only, the NIST curves, software AES), 23 to 29 KB less code
          (the Cortex-M4 image 73 KB of text instead of 91 KB), the same
          certificate checks. A session whose suite this build does not
          offer is refused on import and never offered (offered, it
          failed the handshake).
   0.2.4  A group of 61 to 100 recipients is pipelined (it went a command
          at a time: up to 100 round trips instead of one). A reused
          tlsmail_rcpt_result array is cleared also when the call is
          refused before any byte (EINVAL, ESTATE).
          tlsmail-send: with domain set, names without a domain in the
          header's address fields get it (cron's "From: root (Cron
          Daemon)", "To: root"), as Postfix and sendmail qualify mail a
          local program submits; header lines over 998 octets are folded
          also when the message goes on past the 256 KiB window (a long
          To line with an attachment was refused); -t refuses "To: John
          Smith" (a name without its address) instead of sending to
          JohnSmith; -N takes blanks after its commas ("delay, failure");
          -L and -O are ignored, as Postfix ignores them; -bp, -q, -bi,
          -bs and -bv say why they are not done here.
   0.2.3  New: more than TLSMAIL_RCPT_MAX (100) recipients go in
          transactions of at most that many on one connection (Gmail and
          Postfix refuse the 101st with 452 4.5.3); TLSMAIL_EPARTIAL
          (class PARTIAL) when a later transaction fails after an earlier
          one was delivered; tlsmail_rcpt_result.delivered;
          tlsmail_transact_begin refuses more (EINVAL). The verdict on a
          message is waited for TLSMAIL_DATA_DONE_MS (10 minutes, RFC 5321
          4.5.3.2.6) within the deadline, not the per-wait timeout, so a
          slow content filter no longer makes a delivered message
          EUNKNOWN. After the one-call send, the reply left to read is the
          one that took the message, not QUIT's.
          tlsmail-send, from real callers: bundled letters (-ti as BusyBox
          crond runs it, -itf ADDR); -h N is the hop count (it printed the
          help and dropped the message); a pipe past 256 KiB is read to its
          end (into an unlinked TMPDIR file) before connecting, so a slow
          cron job is never cut off by max_time; header lines over 998
          octets are folded; root@localhost and root@HOST are local names;
          closed standard descriptors become /dev/null (-v with 2>&- wrote
          the dialogue into the connection); --passwordSECRET is not
          echoed; max_time after delivery exits 0 and leaves no cache
          temporary file; the log quotes the reply that took the message;
          a message file is read, not mapped (fewer page faults).
   0.2.2  Fixed, from independent reviews of the message path, of hangs
          and leaks, and against Microsoft 365 and Gmail behaviour: a reply
          that quotes our AUTH response back has it masked as <secret> in
          the trace, tlsmail_reply_text and tlsmail_describe; a leaf without
          subjectAltName whose CN is a wildcard over one label is
          ECERT_NAME; a continuation line folds at its own fold points (no
          79-character lines); tlsmail_format_mailbox takes a '<' inside a
          quoted local part or name; tlsmail_format_date clamps the time,
          not the year alone, to 1900..9999, so the weekday agrees; ENOMECH
          on a 534 or 504 is described as the server refusing the
          mechanism. New: tlsmail_encode_qp.
          tlsmail-send: a FIFO at the session cache path, password_file or
          token_file no longer hangs the run; a timed-out password_command
          is killed with its children when there is no terminal; no core
          file from the start of the run; configuration values are wiped;
          the log file is 0600, not followed through a link, regular files
          only; --batch into a closed stdout stops, QUITs and exits 74;
          -pVALUE is not echoed; a header ended by a non-field line gets its
          empty line; a quoted '<' in -f and recipient arguments. New:
          from_header replace (Microsoft 365 refuses a From that is not the
          mailbox), long_lines encode (a single text part read whole with
          body lines over 998 octets goes as quoted-printable instead of
          being refused), a hint to set helo when EHLO is refused.
   0.2.1  Fixed, from an independent review against scripted servers and
          chains: a reply sent as a TLS record of its own behind the one
          that answered no longer answers the next command (EPROTO, nothing
          more sent); a "220" sent with the EHLO reply no longer answers a
          STARTTLS not yet sent (ESTARTTLS); with DELIVER_ACCEPTED and BDAT
          in the flight, every recipient refused is the last refusal, not 0;
          an ORCPT that outgrows 500 characters as RFC 6533 xtext is EINVAL
          before any byte; after an unexpected 334 the error quotes it, not
          the answer to "*"; nameConstraints (critical or not) make a
          certificate or anchor untrusted instead of being ignored; a leaf
          with a wildcard over one label ("*.com") is ECERT_NAME; an anchor
          whose extendedKeyUsage excludes serverAuth is not used;
          "127.0.0.1." is an IP literal (a pin only); tlsmail_trust_pem
          keeps a last certificate whose END line has no line end.
          tlsmail-send: recipient arguments are address lists (cron's
          MAILTO=a@x,b@y); -t takes Resent-To/Cc/Bcc in a resent message
          and cuts Resent-Bcc; "Bcc :" is a Bcc field; a leading mbox
          "From " line is dropped; -m and -om are accepted; a
          password_command that closes stdout but keeps running is killed
          at the timeout; password_file and token_file take the first
          line; --batch "sent" lines survive a fatal end; a bad from
          setting is 78 (64 from argv); "\name" in aliases is final.
   0.2.0  Fixed: a malformed certificate no longer crashes the pin engine
          or the PEM loader; the composer no longer reads past a name
          buffer and its size query equals what it writes; the
          TLS-or-STARTTLS fallback keeps the system trust; a host name that
          is not a DNS name or an IP literal is TLSMAIL_EINVAL before any
          connection.
          Renamed (0.x: no aliases): TLSMAIL_TLS -> TLSMAIL_SECURITY_TLS,
          TLSMAIL_STARTTLS_REQUIRED -> TLSMAIL_SECURITY_STARTTLS,
          TLSMAIL_TLS_OR_STARTTLS -> TLSMAIL_SECURITY_TLS_OR_STARTTLS,
          tlsmail_sendmail -> tlsmail_client_send; tlsmail_extension takes
          a const client.
          New: tlsmail_error_class, tlsmail_reply_enhanced,
          tlsmail_split_hostport (and tlsmail_auth.host may be the
          "host:port" you dial), tlsmail_format_date, tlsmail_message_id,
          tlsmail_format_mailbox; TLSMAIL_ENOEXT, TLSMAIL_ETOOBIG;
          tlsmail_config.addresses (dial numeric addresses, keep the name
          for SNI and the certificate check); a Winsock transport, so
          Windows needs no TLSMAIL_NO_SOCKETS; name resolution bounded by
          timeout_ms and deadline_ms (a lookup thread), and
          TLSMAIL_NO_THREADS to do without.
          Trust is looked up, not loaded: files, directories and the
          system store are searched during each handshake for the names
          the chain needs (heap at most ~16 KB, none with a pin or the
          caller's anchors); $SSL_CERT_DIR is read by hash names only.
          On Windows the system store (a zeroed trust, tlsmail_trust_system)
          is the current user's ROOT store, read with crypt32 (-lcrypt32)
          and searched the same way; it was the POSIX bundle paths, so a
          default send failed there. Not with TLSMAIL_NO_STDIO.
          New: XOAUTH2 and OAUTHBEARER with a caller's token
          (tlsmail_xoauth2_auth, tlsmail_oauthbearer_auth, tlsmail_auth.token
          for AUTO), TLS client certificates (tlsmail_client_cert_pem,
          _file, _free, tlsmail_config.client_cert) and AUTH EXTERNAL
          (tlsmail_external_auth), TLSMAIL_ECLIENTCERT; MAIL and RCPT
          options (tlsmail_mail_ex, tlsmail_rcpt_ex: SIZE, body type,
          SMTPUTF8, DSN), tlsmail_message_size; tlsmail_client_send_ex with
          DSN, per-recipient results and delivery to the accepted
          recipients; BDAT (CHUNKING) in the one-call send; tlsmail_transact
          (one message on an open client, pipelined: many messages over one
          connection; every recipient asked, with or without PIPELINING);
          tlsmail_transact_begin (the same envelope for a message then
          streamed with tlsmail_data_write); tlsmail_error_line (which line
          was too long, also in tlsmail_describe);
          tlsmail_describe_rcpt (a recipient's answer in a line);
          tlsmail_queue_id;
          tlsmail_tls_info and tlsmail_tls_details (TLS version, cipher
          suite, resumption, the server certificate's subject, issuer,
          validity and key pin).
          Changed: SIZE= declared and checked; BODY=8BITMIME only for 8-bit
          messages (one call) and an 8-bit message to a server without
          8BITMIME is TLSMAIL_ENOEXT; SMTPUTF8 only when needed (tlsmail_mail
          no longer declares it whenever offered); the old "AUTH=" EHLO form
          is kept as the AUTH entry when there is no other;
          tlsmail_describe explains enhanced status codes, names what the
          server offers after a local refusal and the usual network errors
          in words ("connection refused; errno 111"); tlsmail_error_class counts
          5.3.4 and 5.6.x as the caller's to fix.
          TLS session resumption: tlsmail_config.session, tlsmail_session,
          tlsmail_session_resumed, tlsmail_session_clear,
          tlsmail_session_export, tlsmail_session_import,
          TLSMAIL_SESSION_LIFETIME. TCP Fast Open for implicit TLS
          (tlsmail_config.tcp_fastopen, Linux): one round trip less.
          Faster DATA: the message is encoded a line at a time (memchr)
          straight into the TLS engine's buffer, and its records go out
          with MSG_MORE where there is one (Linux), the last one without;
          the one call scans a whole message once, a line at a time, and
          sends it by BDAT in runs between line ends.
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
   strict POSIX, so it is left alone there, and Windows has no POSIX to ask
   for (mingw-w64 would swap its printf for its own instead). */
#if defined(TLSMAIL_IMPLEMENTATION) && !defined(TLSMAIL_NO_SOCKETS) && \
    !defined(_POSIX_C_SOURCE) && !defined(__APPLE__) && !defined(_WIN32)
#if defined(__STRICT_ANSI__) && defined(_FEATURES_H)
/* glibc and musl fix the feature set at the first system header. */
#error "tlsmail.h: a system header came first and strict C hid POSIX: include tlsmail.h first in the implementation file, or define _POSIX_C_SOURCE=200809L"
#endif
#define _POSIX_C_SOURCE 200809L
#endif

#ifndef TLSMAIL_H
#define TLSMAIL_H

#define TLSMAIL_VERSION_MAJOR 0
#define TLSMAIL_VERSION_MINOR 2
#define TLSMAIL_VERSION_PATCH 5
#define TLSMAIL_VERSION_STRING "0.2.5"

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
/* RFC 5321 4.5.3.2.6 gives the server 10 minutes to answer the end of a
   message: a content filter may scan all of it first. */
#ifndef TLSMAIL_DATA_DONE_MS
#define TLSMAIL_DATA_DONE_MS 600000
#endif
/* Room for the text of the last reply (all lines, '\n'-separated) and for the
   EHLO keywords we keep; longer text is truncated, never overflowed. */
#ifndef TLSMAIL_REPLY_TEXT
#define TLSMAIL_REPLY_TEXT 1024
#endif
#ifndef TLSMAIL_EXT_TEXT
#define TLSMAIL_EXT_TEXT 512
#endif
/* Room for one recipient's reply text in tlsmail_rcpt_result, and for the
   server's id of an accepted message (tlsmail_queue_id). */
#ifndef TLSMAIL_RCPT_TEXT
#define TLSMAIL_RCPT_TEXT 160
#endif
/* Most recipients in one transaction. RFC 5321 4.5.3.1.8 has every server
   take 100 and 4.5.3.1.10 has clients send no more; Gmail answers the
   101st with 452 4.5.3, as Postfix does at its smtpd_recipient_limit. */
#ifndef TLSMAIL_RCPT_MAX
#define TLSMAIL_RCPT_MAX 100
#endif
#if TLSMAIL_RCPT_MAX < 1
#error "tlsmail.h: TLSMAIL_RCPT_MAX must be at least 1"
#endif
#ifndef TLSMAIL_QUEUE_ID
#define TLSMAIL_QUEUE_ID 128
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
typedef struct tlsmail_client_cert tlsmail_client_cert;
typedef struct tlsmail_mail_opts tlsmail_mail_opts;
typedef struct tlsmail_rcpt_opts tlsmail_rcpt_opts;
typedef struct tlsmail_send_opts tlsmail_send_opts;
typedef struct tlsmail_session tlsmail_session;

/* ---- [send] one call, shaped like Go's net/smtp.SendMail ----------------- */

/* Go's net/smtp.SendMail, argument for argument. addr is "host:port" (IPv6:
   "[::1]:465"; no port: 465). Dials with implicit TLS and the system trust
   store, EHLO (HELO if refused), AUTH when auth is not NULL, MAIL, RCPT for
   every recipient (any rejection fails the send), DATA, QUIT. msg is the
   whole message (headers, blank line, body); line ends may be CRLF, LF or
   CR. Every argument is checked before any byte goes out. More than
   TLSMAIL_RCPT_MAX recipients go as tlsmail_client_send sends them. */
TLSMAIL_DEF int tlsmail_send(const char *addr, const tlsmail_auth *auth, const char *from,
                             const char *const *to, size_t nto, const void *msg, size_t len);

/* The one-call send on a caller's client and config, so the stage and the
   server's reply stay readable afterwards (closed, but not wiped, on
   return): on 0, the reply that took the message ("250 2.0.0 Ok: queued
   as ...", for a log), not QUIT's. What MAIL declares comes from the message itself: SIZE= with
   its size (TLSMAIL_ETOOBIG before MAIL when over the server's limit),
   BODY=8BITMIME only when it has an octet over 127 (TLSMAIL_ENOEXT before
   MAIL when the server lacks 8BITMIME), SMTPUTF8 only when an address or a
   header field is not ASCII (TLSMAIL_ENOEXT when the server lacks it).
   When the server offers CHUNKING the message goes by BDAT (RFC 3030):
   line ends normalised, no dot-stuffing; with PIPELINING too, and one
   recipient, MAIL, RCPT, BDAT and QUIT leave in one write.
   More than TLSMAIL_RCPT_MAX (100) recipients: the message goes in
   consecutive groups of at most that many, in the order of to[], each its
   own transaction (MAIL, its RCPTs, the message) on the same connection,
   each pipelined or not as a single one would be; QUIT rides only in the
   last one's write, and every reply is read in between (an unfinished
   transaction gets RSET before the next MAIL). A refusal ends the send
   (with TLSMAIL_DELIVER_ACCEPTED, only a group with nobody accepted goes
   on to the next). Once a group's message was taken, anything that keeps
   a later group from delivery (a refusal, the message refused, a lost
   connection) is TLSMAIL_EPARTIAL: tlsmail_describe says to how many of
   how many and quotes what stopped it; tlsmail_rcpt_result.delivered says
   who. Up to TLSMAIL_RCPT_MAX, one transaction, as always. */
TLSMAIL_DEF int tlsmail_client_send(tlsmail_client *c, const tlsmail_config *cfg,
                                 const tlsmail_auth *auth, const char *from,
                                 const char *const *to, size_t nto,
                                 const void *msg, size_t len);

/* One recipient's answer (tlsmail_send_opts.results): its reply code (0: no
   RCPT was sent for it, or its reply never came), enhanced status ("5.1.1"
   or "") and text (lines joined by ' ', cut to fit). delivered: 1 when the
   recipient was accepted and its transaction ended with the server taking
   the message (250 to its end), else 0: an accepted recipient whose
   message was then refused, lost or never sent (TLSMAIL_EPARTIAL, a
   refusal of another under TLSMAIL_DELIVER_ALL) has 0. Set by
   tlsmail_client_send_ex and tlsmail_transact; tlsmail_transact_begin
   leaves it 0 (the verdict comes later, from tlsmail_data_end). */
typedef struct tlsmail_rcpt_result {
    int code;
    char enhanced[12];
    char text[TLSMAIL_RCPT_TEXT];
    int delivered;
} tlsmail_rcpt_result;

/* Who gets the message when some recipients are refused
   (tlsmail_send_opts.deliver). ALL, the default and Go's rule: any refusal
   fails the send and the message is never sent. ACCEPTED: the message goes
   to the recipients the server accepted; the send fails only when it
   accepted none. Over TLSMAIL_RCPT_MAX recipients, per transaction: with
   ALL the first refusal in any group ends the send there (that group's
   message is not sent, later groups are not tried; TLSMAIL_EPARTIAL once
   an earlier group was delivered, else the refusal itself); with ACCEPTED
   each group's message goes to that group's accepted recipients, a group
   with nobody accepted is RSET and the next one goes, and the send fails
   only when no group had anyone accepted (the last refusal). */
enum { TLSMAIL_DELIVER_ALL = 0, TLSMAIL_DELIVER_ACCEPTED };

/* Options of tlsmail_client_send_ex. Zero-initialise.
   mail: RET and ENVID (DSN), and body and smtputf8 to override what the
     message shows (TLSMAIL_BODY_7BIT with an octet over 127 in it is
     TLSMAIL_EINVAL; mail->size is ignored: the size is counted); NULL:
     none.
   rcpt: nto entries, DSN options of each recipient in to[]; NULL: none.
   results: nto entries the send fills in, each recipient's answer. With
     TLSMAIL_DELIVER_ALL the send stops at the first refusal: entries after
     it keep code 0 (tlsmail_transact's: those of its group have theirs).
     Required (non-NULL) with TLSMAIL_DELIVER_ACCEPTED, so a
     refusal cannot pass unseen.
   deliver: TLSMAIL_DELIVER_*. */
struct tlsmail_send_opts {
    const tlsmail_mail_opts *mail;
    const tlsmail_rcpt_opts *rcpt;
    tlsmail_rcpt_result *results;
    int deliver;               /* TLSMAIL_DELIVER_* */
};

/* tlsmail_client_send with options (o NULL: none, the same call). */
TLSMAIL_DEF int tlsmail_client_send_ex(tlsmail_client *c, const tlsmail_config *cfg,
                                       const tlsmail_auth *auth, const char *from,
                                       const char *const *to, size_t nto, const void *msg,
                                       size_t len, const tlsmail_send_opts *o);

/* One message on a client already connected (tlsmail_dial, tlsmail_hello,
   tlsmail_authenticate as needed) and between messages: many messages
   over one connection. The same checks, MAIL parameters and options as
   tlsmail_client_send_ex, and the same wire: with PIPELINING, MAIL and
   every RCPT in one write (with CHUNKING and one recipient, or
   TLSMAIL_DELIVER_ACCEPTED, the message too: one round trip a message).
   Every reply is read, so the connection stays in step. Every recipient is
   asked, even after a refusal, with or without PIPELINING. On 0 the client
   is ready for the next message. On a refusal the reply kept is the one
   that refused (o->results has every recipient's; tlsmail_describe_rcpt
   says each in a line); call tlsmail_reset before the next message.
   Errors as tlsmail_client_send's; TLSMAIL_ESTATE in the middle of a
   message. Over TLSMAIL_RCPT_MAX recipients, transactions of at most that
   many, as tlsmail_client_send_ex sends them (no QUIT), RSET between them
   where one was left unfinished; TLSMAIL_EPARTIAL as there (then
   tlsmail_reset before the next message too). */
TLSMAIL_DEF int tlsmail_transact(tlsmail_client *c, const char *from, const char *const *to,
                                 size_t nto, const void *msg, size_t len,
                                 const tlsmail_send_opts *o);

/* tlsmail_transact for a message sent as it is read (too large to hold,
   or not all there yet): the envelope as tlsmail_transact sends it, with
   MAIL and every RCPT in one write under PIPELINING, then DATA; on 0 the
   server waits for the message, which goes by tlsmail_data_write and
   tlsmail_data_end. Nothing of the message is seen first, so o->mail says
   what MAIL declares: size (0: none), body (AUTO: BODY=8BITMIME when the
   server offers it) and smtputf8 for headers that need it. Refusals,
   o->results and o->deliver as for tlsmail_transact: after one, nothing
   of the message is asked for, and tlsmail_reset comes before the next.
   By DATA even when the server offers CHUNKING: BDAT LAST would need the
   message's size first. At most TLSMAIL_RCPT_MAX recipients (one
   transaction): more is TLSMAIL_EINVAL before any byte goes out, since
   more need the message whole: tlsmail_transact. */
TLSMAIL_DEF int tlsmail_transact_begin(tlsmail_client *c, const char *from, const char *const *to,
                                       size_t nto, const tlsmail_send_opts *o);

/* ---- [auth] credentials: PLAIN, LOGIN, OAuth 2.0, client certificates ---- */

/* Mechanisms (RFC 4954 AUTH). TLSMAIL_AUTH_AUTO picks one by what the
   server offers: with a token, OAUTHBEARER, else XOAUTH2; with a password,
   PLAIN, else LOGIN. */
enum { TLSMAIL_AUTH_NONE = 0, TLSMAIL_AUTH_PLAIN, TLSMAIL_AUTH_LOGIN, TLSMAIL_AUTH_AUTO,
       TLSMAIL_AUTH_XOAUTH2, TLSMAIL_AUTH_OAUTHBEARER, TLSMAIL_AUTH_EXTERNAL };

/* What Go calls smtp.Auth: plain data, no heap. The strings are the
   caller's and must stay valid while in use; the library never writes them
   and copies none of them (a secret or token goes straight into the TLS
   engine's buffer, which is wiped when the session ends). host is the
   server name the credentials are meant for: authenticating to any other
   server fails with TLSMAIL_EAUTHHOST before a byte is sent. */
struct tlsmail_auth {
    int mechanism;             /* TLSMAIL_AUTH_* */
    const char *identity;      /* authorisation identity (PLAIN, EXTERNAL); NULL: "" */
    const char *username;
    const char *secret;        /* the password (PLAIN, LOGIN, AUTO) */
    const char *host;
    const char *token;         /* an OAuth 2.0 access token (XOAUTH2, OAUTHBEARER,
                                  AUTO); NULL: none */
};

/* RFC 4616 PLAIN; identity is the authorisation identity, usually "". */
TLSMAIL_DEF tlsmail_auth tlsmail_plain_auth(const char *identity, const char *username,
                                            const char *password, const char *host);
/* The non-standard but ubiquitous LOGIN mechanism. */
TLSMAIL_DEF tlsmail_auth tlsmail_login_auth(const char *username, const char *password,
                                            const char *host);
/* PLAIN if the server offers it, else LOGIN; either way only over TLS and
   only to host. Set .token as well (or instead of the password) and AUTO
   prefers OAUTHBEARER, then XOAUTH2, when the server offers them. The
   choice is made once from the EHLO reply: a refusal is never followed by
   another mechanism. */
TLSMAIL_DEF tlsmail_auth tlsmail_auto_auth(const char *username, const char *password,
                                           const char *host);
/* OAuth 2.0 bearer tokens: XOAUTH2 (Google, Microsoft 365) and OAUTHBEARER
   (RFC 7628) with an access token the caller obtained; the library runs no
   OAuth flow and never refreshes a token. token: printable ASCII, no
   spaces; the whole response may be up to 12,288 octets of base64 (RFC
   4954 4), which fits tokens of about 9 KB. The response rides on the AUTH
   line when that line stays within 512 octets (what every server takes);
   a longer one is sent after the server's empty 334 (Postfix, for one,
   cuts AUTH lines at 2,048 octets but takes 12,288-octet responses). A
   refused token draws an error challenge (334 with base64 JSON, RFC 7628
   3.2.2): it is decoded into tlsmail_reply_text, answered as the mechanism
   requires, and the result is TLSMAIL_EAUTH; tlsmail_describe shows its
   "status". OAUTHBEARER sends host and port as dialled. */
TLSMAIL_DEF tlsmail_auth tlsmail_xoauth2_auth(const char *username, const char *token,
                                              const char *host);
TLSMAIL_DEF tlsmail_auth tlsmail_oauthbearer_auth(const char *username, const char *token,
                                                  const char *host);
/* AUTH EXTERNAL (RFC 4422 appendix A): the TLS client certificate of
   tlsmail_config.client_cert is the credential. identity: the authorisation
   identity to act as, at most 255 octets; "" or NULL: the one the server
   derives from the certificate. Only ever when asked for: AUTO never picks
   EXTERNAL. Without a client certificate in the configuration,
   TLSMAIL_EINVAL. */
TLSMAIL_DEF tlsmail_auth tlsmail_external_auth(const char *identity, const char *host);

/* AUTH with the given credentials (host must match the dialled host).
   TLSMAIL_ENOMECH when the server does not offer the mechanism asked for
   (tlsmail_describe names what it offers) or refuses it with 534 (too
   weak for this login: Gmail's "Application-specific password required")
   or 504 (unknown; tlsmail_describe quotes the reply); TLSMAIL_EAUTH when
   it refuses the credentials. */
TLSMAIL_DEF int tlsmail_authenticate(tlsmail_client *c, const tlsmail_auth *a);

/* A TLS client certificate and its private key, for servers that ask for
   one (RFC 5246 7.4.6) and for AUTH EXTERNAL. Zero-initialise (set
   alloc_ctx if you use one), load, point tlsmail_config.client_cert at it;
   it must outlive every client using it and may be shared read-only.
   cert: PEM with the certificate first, then the intermediates the server
   needs (they are sent as given); key: PEM "PRIVATE KEY" (PKCS#8), "RSA
   PRIVATE KEY" or "EC PRIVATE KEY", unencrypted; RSA or EC (P-256, P-384,
   P-521). key may be NULL (key_len 0) when cert holds the key too. The key
   must match the first certificate's public key. Copies of the key live
   only in memory from TLSMAIL_MALLOC, wiped by tlsmail_client_cert_free
   (the loaders are, with PEM trust loading, the only heap users). 0,
   TLSMAIL_ECLIENTCERT (no certificate, no key or two keys, an encrypted or
   unknown key, a key that does not match), TLSMAIL_ENOMEM or
   TLSMAIL_EINVAL (cc NULL, or already loaded). */
TLSMAIL_DEF int tlsmail_client_cert_pem(tlsmail_client_cert *cc, const void *cert, size_t cert_len,
                                        const void *key, size_t key_len);
#ifndef TLSMAIL_NO_STDIO
/* The same from files (key_path NULL: the key is in cert_path); a file
   that cannot be read, or holds more than 1 MiB, is TLSMAIL_ECLIENTCERT. */
TLSMAIL_DEF int tlsmail_client_cert_file(tlsmail_client_cert *cc, const char *cert_path,
                                         const char *key_path);
#endif
/* Wipes the key, frees everything; cc becomes zeroed again (alloc_ctx
   kept). Harmless on a zeroed or failed one. */
TLSMAIL_DEF void tlsmail_client_cert_free(tlsmail_client_cert *cc);

/* ---- [session] a client of your own: dial, EHLO, close ------------------- */

enum { TLSMAIL_SECURITY_TLS = 0, TLSMAIL_SECURITY_STARTTLS = 1, TLSMAIL_SECURITY_TLS_OR_STARTTLS = 2 };
/* Trace directions; TLSMAIL_TRACE_PLAINTEXT is or-ed in for the lines of
   the STARTTLS prelude, which anyone on the path can read and forge. */
enum { TLSMAIL_TRACE_SEND = 0, TLSMAIL_TRACE_RECV = 1, TLSMAIL_TRACE_PLAINTEXT = 2 };

/* Zero-initialise, then set what you need. */
struct tlsmail_config {
    const char *host;          /* server name: dialled, sent as SNI, checked;
                                  "host" or "host:port" (tlsmail_split_hostport).
                                  A DNS name (LDH labels, A-labels for
                                  international names, a trailing '.' allowed)
                                  or, with a pinned key only, an IP address;
                                  anything else is TLSMAIL_EINVAL */
    unsigned port;             /* 0: 465 */
    int security;              /* TLSMAIL_SECURITY_TLS (default); STARTTLS modes need
                                  TLSMAIL_STARTTLS */
    int timeout_ms;            /* each connect/read/write; 0: default, < 0: none.
                                  The verdict on a sent message is waited for
                                  TLSMAIL_DATA_DONE_MS (10 min) if that is
                                  longer, within the deadline */
    int deadline_ms;           /* whole session from dial; 0: default (10 min),
                                  < 0: none */
    unsigned starttls_port;    /* TLSMAIL_SECURITY_TLS_OR_STARTTLS fallback; 0: 587 */
    const char *helo_name;     /* EHLO argument; NULL: "localhost" */
    const tlsmail_trust *trust;/* NULL or zeroed: system bundle */
    const tlsmail_io *io;      /* NULL: the library's sockets (POSIX or
                                  Winsock) */
    /* Every line sent and received, without CRLF; AUTH payloads masked,
       in what we send and where a reply to AUTH quotes them back (as
       "<secret>", in tlsmail_reply_text and tlsmail_describe too). */
    void (*trace)(void *ud, int dir, const char *line, size_t len);
    void *trace_ud;
    /* For a system without a random source or a clock (a board), or a
       caller who prefers its own. entropy fills len octets of true
       randomness (a hardware RNG, a saved seed that is never reused) and
       returns 0, or a negative TLSMAIL_E* code; what it gives is mixed into
       BearSSL's generator, beside the system's when there is one. clock
       returns the time as milliseconds since 1970-01-01 UTC, or a negative
       value when it does not know; it dates certificates (notBefore,
       notAfter) instead of time(), and under TLSMAIL_NO_SOCKETS it also
       keeps the session deadline, checked before each call into io. */
    int (*entropy)(void *ctx, unsigned char *buf, size_t len);
    void *entropy_ctx;
    long long (*clock)(void *ctx);
    void *clock_ctx;
    /* NULL: resolve host. Else the numeric IP addresses to dial instead, in
       this order, comma-separated ("192.0.2.7, [2001:db8::7]"; brackets
       optional), for callers with a resolver of their own: no lookup is
       made, and host still gives the port, the SNI name and the name the
       certificate must match. A malformed list is TLSMAIL_EINVAL before
       anything is dialled; with io set it is TLSMAIL_EINVAL too. */
    const char *addresses;
    const tlsmail_client_cert *client_cert; /* NULL: none; sent when the server
                                               asks for one */
    tlsmail_session *session;  /* NULL: every handshake is a full one; else
                                  offered when it fits, saved after each
                                  good handshake (see tlsmail_session) */
    /* Nonzero: TCP Fast Open (RFC 7413) for implicit TLS, where the
       system has it (Linux 4.11 and later: TCP_FASTOPEN_CONNECT;
       elsewhere, with io set, and for STARTTLS, where the server speaks
       first, it is ignored). Once the kernel holds a cookie from an earlier
       connection to the same server, the ClientHello rides in the SYN and
       the dial takes one round trip less. The SYN's data may reach the
       server twice; a ClientHello is safe to repeat. With a cookie, connect
       succeeds at once and a server that stopped listening is found at the
       first read: the dial then fails at TLSMAIL_STAGE_CONNECT as usual,
       but without trying the host's other addresses. */
    int tcp_fastopen;
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
   server speaks first, it saves no round trip (tlsmail_config.tcp_fastopen
   does). One client at a time may use a session. It holds the session's
   master secret, as secret as a password for as long as it lives:
   tlsmail_session_clear() wipes it.
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
   malformed field, a TLS version other than 1.2, a suite this build does
   not offer (a ChaCha20 session under TLSMAIL_SMALL), or a session that
   has expired. */
TLSMAIL_DEF int tlsmail_session_import(tlsmail_session *s, const char *text, size_t len);

/* ---- [commands] MAIL, RCPT, DATA, RSET, NOOP, QUIT ----------------------- */

/* MAIL FROM:<from> (from may be "" for the null reverse-path); RCPT TO:<to>.
   tlsmail_mail is tlsmail_mail_ex with no options: BODY=8BITMIME when the
   server offers it (the body is not known yet, and 7-bit text is valid
   8BITMIME content), SMTPUTF8 only when from needs it. A recipient that is
   not ASCII needs SMTPUTF8 declared at MAIL: TLSMAIL_ENOEXT when the server
   lacks it, TLSMAIL_EINVAL when MAIL did not declare it. */
TLSMAIL_DEF int tlsmail_mail(tlsmail_client *c, const char *from);
TLSMAIL_DEF int tlsmail_rcpt(tlsmail_client *c, const char *to);

/* Body types (tlsmail_mail_opts.body, RFC 6152). */
enum { TLSMAIL_BODY_AUTO = 0, TLSMAIL_BODY_7BIT, TLSMAIL_BODY_8BITMIME };
/* DSN (RFC 3461): what a failure notification returns (tlsmail_mail_opts.ret),
   and when to notify (tlsmail_rcpt_opts.notify, bits; NEVER alone). */
enum { TLSMAIL_RET_DEFAULT = 0, TLSMAIL_RET_FULL, TLSMAIL_RET_HDRS };
enum { TLSMAIL_NOTIFY_SUCCESS = 1, TLSMAIL_NOTIFY_FAILURE = 2, TLSMAIL_NOTIFY_DELAY = 4,
       TLSMAIL_NOTIFY_NEVER = 8 };

/* What MAIL declares about the message. Zero-initialise; zero is
   tlsmail_mail's behaviour.
   size: the message's size as RFC 1870 counts it (tlsmail_message_size);
     sent as SIZE= when the server offers SIZE, and a size over the
     server's non-zero limit is refused here, before MAIL:
     TLSMAIL_ETOOBIG. 0: not declared.
   body: TLSMAIL_BODY_AUTO: BODY=8BITMIME when offered; _7BIT: no BODY=,
     and tlsmail_data_write refuses an octet over 127; _8BITMIME: BODY=
     8BITMIME, TLSMAIL_ENOEXT before MAIL when the server lacks 8BITMIME.
     Without BODY=8BITMIME declared, an octet over 127 in the message is
     refused by tlsmail_data_write, which then drops the connection without
     ending the message, so nothing is delivered.
   smtputf8: nonzero when a recipient or a header will need SMTPUTF8 (RFC
     6531: any address or header field that is not ASCII); declared, or
     TLSMAIL_ENOEXT before MAIL when the server lacks it.
   ret, envid: DSN (RFC 3461 4.3, 4.4): RET=FULL or HDRS, and ENVID, the
     caller's printable ASCII id of the message, xtext-encoded (at most 100
     octets encoded). Sent only when the server offers DSN, silently left
     out otherwise. */
struct tlsmail_mail_opts {
    size_t size;
    int body;                  /* TLSMAIL_BODY_* */
    int smtputf8;
    int ret;                   /* TLSMAIL_RET_* */
    const char *envid;         /* NULL: none */
};

/* What RCPT declares about a recipient: DSN (RFC 3461 4.1, 4.2), sent only
   when the server offers DSN. notify: TLSMAIL_NOTIFY_* bits (NEVER only
   alone), 0: the server's default. orcpt: the original recipient's address,
   sent xtext-encoded as "rfc822;..." (or "utf-8;..." when not ASCII, RFC
   6533, which needs SMTPUTF8 declared at MAIL); at most 500 octets
   encoded. */
struct tlsmail_rcpt_opts {
    unsigned notify;           /* TLSMAIL_NOTIFY_* */
    const char *orcpt;         /* NULL: none */
};

/* MAIL and RCPT with options (o may be NULL: none). */
TLSMAIL_DEF int tlsmail_mail_ex(tlsmail_client *c, const char *from, const tlsmail_mail_opts *o);
TLSMAIL_DEF int tlsmail_rcpt_ex(tlsmail_client *c, const char *to, const tlsmail_rcpt_opts *o);
/* The size of msg as RFC 1870 counts it and the server stores it: every
   CRLF, bare CR and bare LF counted as CRLF, plus the CRLF a last line
   without one gets; not the dots of dot-stuffing. For
   tlsmail_mail_opts.size. */
TLSMAIL_DEF size_t tlsmail_message_size(const void *msg, size_t len);

/* DATA, then the message in chunks of any size (line ends normalised,
   dot-stuffed), then the final "." and the server's verdict. A line over
   998 octets fails data_write with TLSMAIL_ELINE (tlsmail_error_line says
   which) and drops the connection without the final ".", so nothing is
   delivered. After a 250, tlsmail_queue_id() has the server's id for the
   message. */
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
                                  "limit (nothing was sent)")                 \
    X(ENORANDOM,       CONFIG,    "no source of randomness for TLS: give "    \
                                  "tlsmail_config.entropy")                   \
    X(ENOTIME,         CONFIG,    "no clock to check certificate dates: give "\
                                  "tlsmail_config.clock")                     \
    X(ECLIENTCERT,     CONFIG,    "cannot load the client certificate or its "\
                                  "key")                                      \
    X(EPARTIAL,        PARTIAL,   "delivered to some recipients only: a "     \
                                  "retry would send it again to those")

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
    TLSMAIL_CLASS_MAYBE_DELIVERED, /* the message may have been delivered: a
                                      retry may send it twice */
    TLSMAIL_CLASS_PARTIAL          /* delivered to some recipients only: a
                                      retry would send it again to those;
                                      tlsmail_rcpt_result.delivered says who */
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
   the caller's side is TLSMAIL_CLASS_CONFIG rather than REFUSED: 5.1.x (an
   address), 5.7.x (authentication, policy, relaying), 5.3.4 (too big for
   the server) and 5.6.x (the message's content or encoding). */
TLSMAIL_DEF int tlsmail_error_class(const tlsmail_client *c, int err);
/* One line for humans: "RCPT TO: server refused (5xx); server said: 550
   5.1.1 no such user (5.1.1: bad destination mailbox address)". The
   enhanced status of the quoted reply is explained (RFC 3463); a local
   refusal says why: the mechanisms the server really offers (ENOMECH), the
   extension the message needs (ENOEXT), the size and the limit (ETOOBIG),
   the OAuth error's status (EAUTH after an error challenge). EPARTIAL:
   "delivered to 100 of 150 recipients (a retry would send it again to
   those); " and then what stopped the rest, as that error alone is told
   ("RCPT TO: server refused (5xx); server said: 550 ..."; a lost
   connection quotes no reply). Returns buf. */
TLSMAIL_DEF char *tlsmail_describe(const tlsmail_client *c, int err, char *buf, size_t cap);
/* The same line for one recipient's answer in tlsmail_send_opts.results,
   as tlsmail_describe gives it while that reply is the client's: "RCPT
   TO: server refused (5xx); server said: 550 5.1.1 no such user (5.1.1:
   bad destination mailbox address)"; an accepted one says "success", one
   without a reply (code 0) says so. It tells the RCPT reply only: whether
   the message then reached that recipient is r->delivered (0 after
   tlsmail_transact_begin, whose verdict comes later). Returns buf. */
TLSMAIL_DEF char *tlsmail_describe_rcpt(const tlsmail_rcpt_result *r, char *buf, size_t cap);
/* The server's id of the last message it accepted on c, taken from the 250
   after the message ("Ok: queued as 4Fh2x1" from Postfix, "id=..." from
   Exim, the id before "- gsmtp" from Gmail, "<...>" from Exchange, "queued
   as"/"stored as" and "Message Queued (...)" forms), or "" when the reply
   holds none we know. It stays readable after QUIT and the close, until
   the client is wiped or the next MAIL. */
TLSMAIL_DEF const char *tlsmail_queue_id(const tlsmail_client *c);

/* After TLSMAIL_ELINE: the line that was too long, from 1, every CRLF,
   bare CR and bare LF ending one; counted over the whole message for the
   one-call sends and tlsmail_transact, and from tlsmail_data_begin for
   tlsmail_data_write. 0 after any other result. */
TLSMAIL_DEF size_t tlsmail_error_line(const tlsmail_client *c);

/* What the TLS handshake of c settled and which certificate the server
   showed (tlsmail_tls_info), for tools that print what they connected to
   (tlsmail-send --check). */
enum { TLSMAIL_TLS_NAME = 256 };
typedef struct tlsmail_tls_details {
    unsigned version;          /* 0x0303: TLS 1.2, the only one spoken */
    unsigned suite;            /* the cipher suite's IANA number, 0xC02F */
    const char *suite_name;    /* its IANA name, static:
                                  "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" */
    int resumed;               /* 1: a tlsmail_session was resumed, and the
                                  server sent no certificate this time */
    int have_cert;             /* 1: the fields below are the server's own
                                  (leaf) certificate's; 0 when resumed */
    char subject[TLSMAIL_TLS_NAME]; /* RFC 4514 text, the last RDN first:
                                  "CN=mail.example.org,O=Example,C=DE";
                                  "" when unreadable */
    char issuer[TLSMAIL_TLS_NAME];
    long long not_before;      /* validity, seconds since 1970 UTC; 0 when */
    long long not_after;       /*   unreadable */
    unsigned char spki_sha256[32]; /* SHA-256 of its SubjectPublicKeyInfo: the
                                  key tlsmail_trust_pin_sha256 pins (its base64) */
} tlsmail_tls_details;
/* Fills *out for the last handshake of c: valid from a tlsmail_dial that
   succeeded (and after the one-call send, which closes without wiping)
   until tlsmail_close. The certificate is described as it was received,
   checked or pinned. Names: CN, O, OU, C, L, ST, STREET, DC, UID,
   serialNumber and emailAddress by name, other types dotted with the
   value as '#' and its DER in hex (RFC 4514 2.4); multi-valued RDNs
   joined by '+'; ",+\"\\<>;", a leading '#' or space and a trailing
   space escaped by a backslash, and every octet outside printable ASCII
   as \XX (UTF-8 for BMP and Universal strings, T61 read as Latin-1), so
   the text is printable ASCII whatever the certificate holds; a name
   that does not fit ends in "...". Times: RFC 5280 4.1.2.5, UTCTime
   (years 1950-2049) or GeneralizedTime, "Z", no fractions. 0;
   TLSMAIL_ESTATE when no handshake completed on c (none yet, or it
   failed); TLSMAIL_EINVAL for a NULL argument. */
TLSMAIL_DEF int tlsmail_tls_info(const tlsmail_client *c, tlsmail_tls_details *out);

/* ---- [trust] where the trust anchors come from --------------------------- */

/* A tlsmail_trust names where anchors come from; a zeroed one (or a NULL
   cfg.trust) is the system store. Files and directories are only noted
   (after a check that they hold a usable certificate): each handshake
   searches them for the names the server's chain needs, so only the one
   or two anchors used are decoded, on the heap, and freed when
   tlsmail_dial returns (at most about 16 KB while it runs). A trust may be
   shared read-only by many clients and threads. Several sources may be
   added to one trust: they are searched in order. Certificates with RSA
   keys under 2048 bits never anchor anything (SECURITY).

   The system store: $SSL_CERT_FILE and/or $SSL_CERT_DIR when set (as
   OpenSSL and Go honour them; they replace the defaults, and
   $SSL_CERT_DIR is a hashed directory, as OpenSSL reads it), else the first
   bundle found among the usual places of Debian/Ubuntu, Fedora/RHEL,
   openSUSE, Alpine, Arch, the BSDs and macOS, else the usual hashed
   certificate directories. Found afresh at each handshake.
   On Windows, unless $SSL_CERT_FILE or $SSL_CERT_DIR is set, it is the
   current user's ROOT store (which shows the local machine's roots too),
   enumerated with crypt32 at each lookup of a handshake; a root that is
   also in the Disallowed store, or whose purposes in the store leave out
   server authentication, anchors nothing. Windows adds the roots of its
   automatic update to that store only once it needed them itself: a root
   Windows never used may be missing (then install it, or name a file).
   A PEM bundle file (CRLF and a missing final newline are fine; text
   between certificates is skipped). A directory, or several separated by
   ':': one with OpenSSL hash names (HHHHHHHH.N, as c_rehash and
   update-ca-certificates make) is searched by name and nothing else in it
   is read; one without is searched file by file (.pem and .crt).
   No usable certificate at all: TLSMAIL_ETRUST. */
#ifndef TLSMAIL_NO_STDIO /* files and directories: not with TLSMAIL_NO_STDIO */
TLSMAIL_DEF int tlsmail_trust_system(tlsmail_trust *t);
TLSMAIL_DEF int tlsmail_trust_file(tlsmail_trust *t, const char *path);
TLSMAIL_DEF int tlsmail_trust_dir(tlsmail_trust *t, const char *path);
#endif
/* PEM bytes in memory: decoded now, the anchors copied into t (the bytes
   are not kept). */
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
/* Frees what t holds; t becomes a zeroed (system) trust again, keeping
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

/* 0 if addr is what tlsmail_rcpt accepts, else TLSMAIL_EINVAL: an RFC 5321
   4.1.2 Mailbox, "local@domain" (the local part a dot-string such as
   "first.last" or a quoted string such as "\"a b\"", at most 64 octets;
   the domain a host name or an address literal, "[192.0.2.1]",
   "[IPv6:2001:db8::1]"), UTF-8 allowed as RFC 6531 3.3 allows it, at most
   254 octets in all; or "Postmaster" alone, in any case. tlsmail_mail
   accepts the same but "Postmaster", and "" (the null reverse-path: pass
   it to tlsmail_mail directly). Lists ("a@b,c@d"), groups, comments,
   display names and angle brackets are not addresses. For tools that
   check their configuration before the first send. */
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
   characters where a fold point exists (76 on a line with an encoded
   word, RFC 2047 2) and never exceed 998; non-ASCII subjects and names
   become RFC 2047 "=?UTF-8?B?...?=" words of at most 75 characters that
   never split a UTF-8 character. Body line ends (CRLF,
   LF, CR) become CRLF; the last line always gets one.

   TLSMAIL_EINVAL: m, from or len NULL; a CR, LF or other control character
   (TAB excepted) in any header value or display name (no header
   injection); an address that is not a Mailbox (tlsmail_check_address;
   "Postmaster" alone is no header address); a subject, name or body that
   is not UTF-8; a date or message_id that is not printable ASCII; a
   display name over 1023 octets, with a word no 998-octet line can hold,
   or in quotes with a '"' inside that no backslash escapes; date NULL under
   TLSMAIL_NO_SOCKETS; message_id NULL and no system random source. */
TLSMAIL_DEF int tlsmail_compose(const tlsmail_message *m, char *buf, size_t cap, size_t *len);

/* The two header values tlsmail_compose() makes, for tools that complete a
   message of their own (a sendmail that adds what is missing).
   tlsmail_format_date: t (seconds since 1970, UTC) as an RFC 5322 3.3
   date-time, "Sat, 28 Nov 2026 18:27:24 +0000": always 31 characters and
   a NUL; a time before 1900 or after 9999 is clamped to the first or the
   last second of that range (RFC 5322 wants four digits from 1900).
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
/* A body as quoted-printable (RFC 2045 6.7), as tlsmail_compose writes
   one: for a tool that must send a text body with lines over 998 octets
   without changing it. Octets 33..126 but '=' as they are, space and tab
   too unless last on a line, everything else "=XX"; each line end of in
   (CRLF, LF or a bare CR) a CRLF hard break, and a last line without one
   gets one; encoded lines of at most 76 characters, longer ones split by
   soft breaks ("=" CRLF). Any octets, NUL included. out NULL: a size
   query (*outlen: the length, without the NUL). Else 0 with *outlen the
   octets written and a NUL after them when cap > *outlen; TLSMAIL_ENOMEM
   when cap is too small (*outlen: the length needed; out's contents
   unspecified). TLSMAIL_EINVAL: outlen NULL, or in NULL with n > 0. */
TLSMAIL_DEF int tlsmail_encode_qp(const void *in, size_t n, char *out, size_t cap, size_t *outlen);

/* ---- [private] structs defined here only so callers can allocate them ---- */

/* Callers SHALL NOT read or write these fields (tlsmail_trust.alloc_ctx
   excepted): they change between versions. */

/* Our socket, -1 when there is none: a descriptor on POSIX; on Windows a
   Winsock SOCKET, an unsigned handle the size of a pointer whose
   INVALID_SOCKET is all ones, so -1 here too. */
#ifdef _WIN32
typedef intptr_t tlsmail__socket;
#else
typedef int tlsmail__socket;
#endif

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
    size_t size_limit;              /* SIZE's limit in octets; 0: none announced */
} tlsmail__ext;

typedef struct tlsmail__dot {       /* streaming DATA encoder */
    int bol;                        /* at the start of a line */
    int cr;                         /* last input byte was CR */
    size_t linelen;                 /* octets of the current line */
    size_t line;                    /* the current line, from 1 */
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
    int in_san;                             /* in the subjectAltName extension */
    int san;                                /* it has one */
    int wild1;                              /* a dNSName "*.x": a wildcard over
                                               one label */
    int nc;                                 /* has nameConstraints */
    size_t dnslen;
    unsigned char dns[72];                  /* the dNSName being read, when it
                                               is no longer than "*." and a label */
    int err;                                /* not DER, or not a certificate */
    int done;                               /* the whole certificate was read */
    int dn_over;                            /* a name too long to keep */
    int issuer_done;                        /* issuer[] is complete */
    int subject_done;                       /* subject[] is complete */
    int validity_done;                      /* validity[] is complete */
    size_t issuer_len, subject_len, validity_len;
    unsigned char issuer[TLSMAIL__DN_MAX];  /* the names, whole DER */
    unsigned char subject[TLSMAIL__DN_MAX];
    unsigned char validity[36];             /* the Validity, whole DER (two
                                               times take at most 34) */
} tlsmail__certwalk;

/* What tlsmail_tls_info reports of the handshake and of the server's own
   certificate: 400 octets in the client, since the X.509 engines reuse
   the walker's buffers for the next certificate and are wiped with the
   connection. The names are kept as whole RDNs, the last first (as RFC
   4514 writes them, so what is cut is the least specific part), and made
   text only when asked for. */
enum { TLSMAIL__LEAF_DN = 160 };
typedef struct tlsmail__leaf {
    unsigned short version;                 /* the handshake's TLS version */
    unsigned short suite;                   /* and cipher suite */
    unsigned char done;                     /* a handshake completed */
    unsigned char cert;                     /* ...with the server's certificate
                                               (not resumed): spki[] is set */
    unsigned char names;                    /* subject, issuer, validity read */
    unsigned char subject_cut, issuer_cut;  /* RDNs that did not fit */
    unsigned char subject_len, issuer_len, validity_len;
    unsigned char subject[TLSMAIL__LEAF_DN];/* RDN SETs, the last first */
    unsigned char issuer[TLSMAIL__LEAF_DN];
    unsigned char validity[36];             /* the Validity SEQUENCE */
    unsigned char spki[32];                 /* SHA-256 of its SubjectPublicKeyInfo */
} tlsmail__leaf;

typedef struct tlsmail__names {     /* what one trust lookup is for */
    const unsigned char *ca;        /* an issuer's DN: CA anchors named so */
    size_t calen;
    const unsigned char *leaf;      /* a leaf's own DN: the non-CA anchors
                                       BearSSL trusts directly; or NULL */
    size_t leaflen;
} tlsmail__names;

typedef struct tlsmail__x509 {      /* BearSSL's chain and name checks, with
                                       our policy on top */
    const br_x509_class *vtable;
    br_x509_minimal_context xc;     /* does the real validation */
    tlsmail__certwalk cw;           /* reads the certificate beside it */
    int skip;                       /* BearSSL ignores this certificate:
                                       the chain already reached an anchor */
    int err;                        /* our verdict, a BR_ERR_X509_* */
    int ncert;                      /* certificates of the chain so far */
    int asked;                      /* this certificate's lookup is done */
    /* Anchors are looked up by name while the chain streams; the found
       ones are what xc.trust_anchors points at. */
    int (*lookup)(void *ctx, const struct tlsmail__names *want);
    void *lookup_ctx;
    tlsmail__leaf *leaf;            /* the client's: the first certificate's
                                       names and validity go there */
} tlsmail__x509;

enum { TLSMAIL__FOUND_MAX = 8 };
typedef struct tlsmail__found {     /* the anchors one handshake needed */
    br_x509_trust_anchor ta[TLSMAIL__FOUND_MAX];
    void *mem[TLSMAIL__FOUND_MAX];  /* the heap block behind each, or NULL */
    size_t n;
} tlsmail__found;

/* Where trust comes from ([trust] above says how it is used). */
struct tlsmail_trust {
    void *alloc_ctx; /* yours: handed to TLSMAIL_MALLOC/TLSMAIL_FREE; set it
                        before loading */
    /* private */
    int kind;                         /* TLSMAIL__TRUST_* */
    br_x509_trust_anchor *anchors;    /* ours (from PEM in memory), or... */
    size_t count, cap;
    const br_x509_trust_anchor *user_anchors; /* ...the caller's (count) */
    char *sources;                    /* files and directories to search:
                                         kind letter, path, NUL; ... */
    size_t sources_len;
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
    tlsmail__certwalk cw;           /* reads the names and validity of the
                                       first certificate, for its report */
    tlsmail__leaf *leaf;            /* the client's */
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
    const tlsmail_trust *trust;     /* cfg's; NULL: the system store */
    tlsmail__found found;           /* anchors looked up for the handshake */
    int lookup_err;                 /* a lookup failed (TLSMAIL_ENOMEM) */
    const tlsmail_config *cfg;
    tlsmail_io io;
    tlsmail__socket fd;             /* our socket, or -1 */
    int state;                      /* TLSMAIL__CLOSED .. TLSMAIL__DATA */
    int stage;                      /* TLSMAIL_STAGE_* of the last call */
    int err;                        /* its result */
    int tls;                        /* TLS is up: the stream is encrypted */
    int more;                       /* the record being sent is not the last
                                       of the caller's write (MSG_MORE) */
    int utf8;                       /* MAIL declared SMTPUTF8 */
    int starttls;                   /* this session began in plaintext */
    int fastopen;                   /* connect was deferred to the first
                                       write (TCP Fast Open): connect
                                       errors come from later calls */
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
    int body8;                      /* MAIL declared BODY=8BITMIME: message
                                       octets over 127 may go out */
    unsigned missing_ext;           /* ENOEXT: the TLSMAIL__EXT_* bit needed */
    size_t size_declared;           /* ETOOBIG: the message's size */
    size_t eline;                   /* ELINE: the line too long, from 1 */
    int auth_asked;                 /* ENOMECH: the TLSMAIL_AUTH_* asked for */
    char auth_status[32];           /* "status" of an OAuth error challenge */
    char echo[17];                  /* during AUTH: the start of the last
                                       secret sent, masked where a reply
                                       quotes it (tlsmail__mask_echo) */
    char queue_id[TLSMAIL_QUEUE_ID];/* the accepted message's id, or "" */
    size_t rcpt_done, rcpt_total;   /* EPARTIAL: recipients delivered to, of */
    int partial_err;                /* EPARTIAL: what stopped the send */
    unsigned port;                  /* the port dialled (the session's key, OAUTHBEARER) */
    int session_offered;            /* cfg->session went into the ClientHello */
    int session_resumed;            /* ...and the server resumed it */
    unsigned char trust_digest[32]; /* of the trust of this handshake */
    size_t ra_pos, ra_len;          /* read ahead, not yet taken: ra[ra_pos..ra_len) */
    unsigned char ra[512];          /* TLS records read ahead of BearSSL */
    tlsmail__leaf leaf;             /* for tlsmail_tls_info */
};

/* A client certificate chain and key, loaded by tlsmail_client_cert_pem. */
struct tlsmail_client_cert {
    void *alloc_ctx; /* yours: handed to TLSMAIL_MALLOC/TLSMAIL_FREE; set it
                        before loading */
    /* private */
    br_x509_certificate *chain;     /* certificates, leaf first; one allocation
                                       with their DER */
    size_t chain_len;
    int key_type;                   /* BR_KEYTYPE_RSA or BR_KEYTYPE_EC; 0: none */
    br_rsa_private_key rsa;         /* the key, pointing into key_mem */
    br_ec_private_key ec;
    unsigned char *key_mem;         /* wiped before it is freed */
    size_t key_len;
    /* The signing code and BearSSL's client-certificate handler, chosen
       when loading so that a program without client certificates links
       none of it. */
    br_rsa_pkcs1_sign rsa_sign;
    const br_ec_impl *ec_impl;
    br_ecdsa_sign ec_sign;
    void (*use)(const tlsmail_client_cert *cc, br_ssl_client_context *sc);
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
#if !defined(TLSMAIL_NO_SOCKETS) && defined(_WIN32)
/* winsock2.h before windows.h, which would bring the old winsock.h. */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <time.h>
#ifndef TLSMAIL_NO_THREADS
#include <process.h>
#endif
#if defined(_WIN32_WINNT) && _WIN32_WINNT < 0x0600
#error "tlsmail.h: the Winsock transport needs _WIN32_WINNT 0x0600 (Vista, for GetTickCount64) or later"
#endif
#elif !defined(TLSMAIL_NO_SOCKETS)
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#ifndef TLSMAIL_NO_THREADS
#include <pthread.h>
#include <signal.h>
#endif
#endif
#if !defined(TLSMAIL_NO_STDIO) && defined(_WIN32)
/* crypt32, for the system's ROOT store. Without our sockets winsock2.h
   still comes before windows.h (unless the caller's windows.h came
   first), so that a program may include it after us. */
#if defined(TLSMAIL_NO_SOCKETS) && !defined(_WINDOWS_) && !defined(_INC_WINDOWS)
#include <winsock2.h>
#include <windows.h>
#endif
#include <wincrypt.h>
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
       TLSMAIL__EXT_AUTH = 64, TLSMAIL__EXT_DSN = 128, TLSMAIL__EXT_CHUNKING = 256 };

/* [auth] hands [stream] the client certificate for the handshake. */
TLSMAIL__PRIVATE void tlsmail__client_cert_use(tlsmail_client *c);

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
    if (strlen(b) != alen) return 0;
    for (i = 0; i < alen; i++)
        if (tlsmail__lower((unsigned char)a[i]) != tlsmail__lower((unsigned char)b[i])) return 0;
    return 1;
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
    const struct { const char *name; int mech; } known[] = {
        { "PLAIN", TLSMAIL_AUTH_PLAIN }, { "LOGIN", TLSMAIL_AUTH_LOGIN },
        { "XOAUTH2", TLSMAIL_AUTH_XOAUTH2 }, { "OAUTHBEARER", TLSMAIL_AUTH_OAUTHBEARER },
        { "EXTERNAL", TLSMAIL_AUTH_EXTERNAL },
    };
    unsigned bits = 0;
    size_t i = 0, j, k;
    while (i < n) {
        while (i < n && s[i] == ' ') i++;
        for (j = i; j < n && s[j] != ' '; j++) {}
        for (k = 0; k < sizeof known / sizeof known[0]; k++)
            if (tlsmail__ieqn(s + i, j - i, known[k].name)) bits |= 1u << known[k].mech;
        i = j;
    }
    return bits;
}

/* RFC 1870 3: "SIZE" [SP max-size], a decimal count of octets; none or 0
   means no fixed limit. A limit too large for size_t is no limit we can
   reach. */
TLSMAIL__PRIVATE size_t tlsmail__ext_size(const char *s, size_t n) {
    size_t v = 0, i;
    for (i = 0; i < n && s[i] != ' '; i++) {
        size_t d;
        if (!tlsmail__isdigit((unsigned char)s[i])) return 0;
        d = (size_t)(s[i] - '0');
        if (v > ((size_t)-1 - d) / 10) return 0;
        v = v * 10 + d;
    }
    return v;
}

/* Keep "KEYWORD params" (keyword upper-cased) in the table, when it fits. */
TLSMAIL__PRIVATE void tlsmail__ext_store(tlsmail__ext *e, const char *kw, size_t k, const char *par,
                                         size_t plen) {
    size_t i, need = k + (plen ? 1 + plen : 0) + 1;
    char *dst;
    if (need > sizeof e->text - e->len) return;
    dst = e->text + e->len;
    for (i = 0; i < k; i++) {
        int c = (unsigned char)kw[i];
        dst[i] = (char)(c >= 'a' && c <= 'z' ? c - ('a' - 'A') : c);
    }
    if (plen) {
        dst[k] = ' ';
        memcpy(dst + k + 1, par, plen);
    }
    dst[need - 1] = '\0';
    e->len += need;
}

TLSMAIL__PRIVATE const char *tlsmail__ext_find(const tlsmail__ext *e, const char *name);

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
        { "DSN", TLSMAIL__EXT_DSN },
        { "CHUNKING", TLSMAIL__EXT_CHUNKING },
    };
    size_t k, p, i;
    if (!text || memchr(text, '\0', len)) return;
    /* Pre-RFC 4954 servers (old Exchange, some appliances; Postfix with
       broken_sasl_auth_clients) announce "AUTH=PLAIN LOGIN", often beside
       a proper AUTH line. It counts as an AUTH offer, and is kept as the
       AUTH entry when there is none yet, so tlsmail_extension(c, "AUTH")
       and tlsmail_describe name what such a server offers. */
    if (len >= 5 && tlsmail__ieqn(text, 5, "AUTH=")) {
        e->flags |= TLSMAIL__EXT_AUTH;
        e->auth |= tlsmail__ext_mechs(text + 5, len - 5);
        for (p = 5; p < len && text[p] == ' '; p++) {}
        if (!tlsmail__ext_find(e, "AUTH")) tlsmail__ext_store(e, "AUTH", 4, text + p, len - p);
        return;
    }
    /* RFC 5321 4.1.1.1: ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-").
       Anything else is a line we do not understand: skip it, no error. */
    for (k = 0; k < len && text[k] != ' '; k++)
        if (!tlsmail__isalnum((unsigned char)text[k]) && (k == 0 || text[k] != '-')) return;
    if (k == 0) return;
    for (p = k; p < len && text[p] == ' '; p++) {}

    if (tlsmail__ieqn(text, k, "SIZE") && !(e->flags & TLSMAIL__EXT_SIZE))
        e->size_limit = tlsmail__ext_size(text + p, len - p); /* the first SIZE line, as find */
    for (i = 0; i < sizeof known / sizeof known[0]; i++)
        if (tlsmail__ieqn(text, k, known[i].name)) e->flags |= known[i].bit;
    if (tlsmail__ieqn(text, k, "AUTH")) e->auth |= tlsmail__ext_mechs(text + p, len - p);

    /* Flags, mechanisms and the size limit above are kept even when the
       text is full: they are what the dialogue decides on; the text only
       serves lookups. */
    tlsmail__ext_store(e, text, k, text + p, len - p);
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

/* The value of a base64 character, -1 for any other octet: a table, since
   the trust scan decodes every octet of a CA bundle with it. */
TLSMAIL__PRIVATE int tlsmail__b64_val(int c) {
    static const signed char v[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
    -1,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    };
    return v[c & 0xFF];
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

/* ---- PEM certificates (RFC 7468) -------------------------------------------- */

/* BearSSL's br_pem_decoder runs its T0 interpreter once per input octet:
   about 2,000 instructions per octet, 310 million for Debian's 160 KB
   bundle and most of the cost of trusting the system store. This reader
   does the one job we need, CERTIFICATE blocks to DER, in a few
   instructions per octet, and skips everything between blocks (bundles
   carry comments). A block it cannot decode is dropped, never guessed at. */
/* The PEM reader's state (only ever on the heap, during trust loading). */
typedef struct tlsmail__pem {
    int state;                      /* TLSMAIL__PEM_*: where in a line we are */
    char mark[40];                  /* the start of a line beginning with '-' */
    size_t mlen;
    int truncated;                  /* that line was longer than mark[] */
    int in;                         /* inside a CERTIFICATE block */
    int bad;                        /* the block is not decodable: dropped */
    unsigned long acc;              /* base64 sextets not yet written */
    int nacc, pads;
    unsigned char *der;             /* the block's DER, at most cap octets */
    size_t cap, len;
} tlsmail__pem;

/* Where in a line the reader is: at its start, in a "-----" line, in a
   line it skips, or in base64. */
enum { TLSMAIL__PEM_LINE = 0, TLSMAIL__PEM_MARK, TLSMAIL__PEM_SKIP, TLSMAIL__PEM_BODY };

TLSMAIL__PRIVATE void tlsmail__pem_reset(tlsmail__pem *p, unsigned char *der, size_t cap) {
    memset(p, 0, sizeof *p);
    p->der = der;
    p->cap = cap;
}

/* A line that starts with '-' ended: the block's BEGIN or END, or noise. */
TLSMAIL__PRIVATE int tlsmail__pem_mark(tlsmail__pem *p) {
    static const char *const begin[] = { "-----BEGIN CERTIFICATE-----",
                                         "-----BEGIN X509 CERTIFICATE-----" };
    size_t n = p->mlen, i;
    while (n && (p->mark[n - 1] == ' ' || p->mark[n - 1] == '\t' || p->mark[n - 1] == '\r')) n--;
    if (!p->in) {
        for (i = 0; i < 2; i++)
            if (n == strlen(begin[i]) && memcmp(p->mark, begin[i], n) == 0) {
                p->in = 1;
                p->bad = p->nacc = p->pads = 0;
                p->acc = 0;
                p->len = 0;
            }
        return 0;
    }
    p->in = 0;
    /* any "-----" line ends the block; only a proper END with whole base64
       groups makes it a certificate */
    if (p->truncated || n < 14 || memcmp(p->mark, "-----END ", 9) != 0 ||
        memcmp(p->mark + n - 5, "-----", 5) != 0)
        p->bad = 1;
    return !p->bad && p->nacc == 0 && p->len > 0;
}

/* One base64 character of the body, or '=' (RFC 4648 4; whitespace is
   skipped by the caller). */
TLSMAIL__PRIVATE void tlsmail__pem_b64(tlsmail__pem *p, int c) {
    int v = c == '=' ? 0 : tlsmail__b64_val(c);
    if (v < 0 || (c != '=' && p->pads)) { p->bad = 1; return; }
    if (c == '=') p->pads++;
    p->acc = (p->acc << 6) | (unsigned long)v;
    if (++p->nacc < 4) return;
    if (p->pads > 2 || p->len + 3 > p->cap) { p->bad = 1; return; }
    p->der[p->len++] = (unsigned char)(p->acc >> 16);
    if (p->pads < 2) p->der[p->len++] = (unsigned char)(p->acc >> 8);
    if (p->pads < 1) p->der[p->len++] = (unsigned char)p->acc;
    p->nacc = 0;
    p->acc = 0;
}

/* Feed PEM text. Returns 1 when a certificate's DER is complete in
   p->der[0..p->len) (*used: the octets consumed, up to the END line's
   LF); 0 when all n were consumed without one. Lines outside a block are
   skipped with memchr, a block's base64 in one tight loop. */
TLSMAIL__PRIVATE int tlsmail__pem_push(tlsmail__pem *p, const unsigned char *in, size_t n,
                                       size_t *used) {
    size_t i = 0;
    while (i < n) {
        int c = in[i];
        if (p->state == TLSMAIL__PEM_SKIP) {
            const unsigned char *nl = (const unsigned char *)memchr(in + i, '\n', n - i);
            if (!nl) break;
            i = (size_t)(nl - in);
            p->state = TLSMAIL__PEM_LINE;
            continue;
        }
        if (c == '\n') {
            int got = p->state == TLSMAIL__PEM_MARK && tlsmail__pem_mark(p);
            p->state = TLSMAIL__PEM_LINE;
            p->mlen = 0;
            p->truncated = 0;
            i++;
            if (got) {
                *used = i;
                return 1;
            }
            continue;
        }
        if (p->state == TLSMAIL__PEM_LINE)
            p->state = c == '-' ? TLSMAIL__PEM_MARK : p->in ? TLSMAIL__PEM_BODY : TLSMAIL__PEM_SKIP;
        if (p->state == TLSMAIL__PEM_MARK) {
            if (p->mlen < sizeof p->mark) p->mark[p->mlen++] = (char)c;
            else p->truncated = 1;
            i++;
            continue;
        }
        if (p->state == TLSMAIL__PEM_SKIP || p->bad) { /* between blocks, or a block we drop */
            p->state = TLSMAIL__PEM_SKIP;
            continue;
        }
        /* base64, four characters at a time into three octets */
        while (i < n && !p->bad) {
            int v;
            c = in[i];
            if ((v = tlsmail__b64_val(c)) < 0) break;
            if (p->pads) { p->bad = 1; break; } /* data after '=' */
            p->acc = (p->acc << 6) | (unsigned long)v;
            i++;
            if (++p->nacc < 4) continue;
            if (p->len + 3 > p->cap) { p->bad = 1; break; }
            p->der[p->len++] = (unsigned char)(p->acc >> 16);
            p->der[p->len++] = (unsigned char)(p->acc >> 8);
            p->der[p->len++] = (unsigned char)p->acc;
            p->nacc = 0;
            p->acc = 0;
        }
        if (i < n && !p->bad && c != '\n') {
            if (c == ' ' || c == '\t' || c == '\r') i++;
            else if (c == '=') { tlsmail__pem_b64(p, c); i++; }
            else p->bad = 1;
        }
    }
    *used = n;
    return 0;
}

/* The end of the text: a last line without its LF still counts. */
TLSMAIL__PRIVATE int tlsmail__pem_finish(tlsmail__pem *p) {
    size_t used;
    return tlsmail__pem_push(p, (const unsigned char *)"\n", 1, &used);
}

/* ---- OpenSSL's subject hash (the names in a c_rehash directory) ------------- */

/* OpenSSL finds a CA in a hashed directory by the name HHHHHHHH.N, where
   HHHHHHHH is the first four octets (little-endian) of the SHA-1 of the
   subject's canonical encoding (crypto/x509/x_name.c, x509_name_canon):
   every string attribute (UTF8String, BMPString, UniversalString,
   PrintableString, T61String, IA5String, VisibleString) becomes a
   UTF8String with ASCII letters lower-cased, leading and trailing
   whitespace dropped and inner runs of whitespace made one space; other
   values stay as they are; each RDN is a DER SET OF (sorted), and the SETs
   follow each other without the outer SEQUENCE. SHA-1 names a file here,
   nothing is trusted for it. */

/* A DER TLV at p[0..n): tag, content offset and length; 0 if malformed. */
TLSMAIL__PRIVATE int tlsmail__der_tlv(const unsigned char *p, size_t n, unsigned *tag, size_t *off,
                                      size_t *len) {
    size_t l, k, nb;
    if (n < 2 || (p[0] & 0x1F) == 0x1F) return 0;
    *tag = p[0];
    if (!(p[1] & 0x80)) {
        l = p[1];
        k = 2;
    } else {
        nb = p[1] & 0x7Fu;
        if (nb == 0 || nb > 3 || n < 2 + nb) return 0;
        for (l = 0, k = 0; k < nb; k++) l = l << 8 | p[2 + k];
        k = 2 + nb;
    }
    if (l > n - k) return 0;
    *off = k;
    *len = l;
    return 1;
}

/* DER length of a TLV body of n octets. */
TLSMAIL__PRIVATE size_t tlsmail__der_len(unsigned char *out, size_t n) {
    if (n < 0x80) { out[0] = (unsigned char)n; return 1; }
    if (n < 0x100) { out[0] = 0x81; out[1] = (unsigned char)n; return 2; }
    out[0] = 0x82; out[1] = (unsigned char)(n >> 8); out[2] = (unsigned char)n;
    return 3;
}

TLSMAIL__PRIVATE size_t tlsmail__der_header(unsigned char *out, unsigned tag, size_t len) {
    out[0] = (unsigned char)tag;
    return 1 + tlsmail__der_len(out + 1, len);
}

/* UTF-8 for one code point (at most 4 octets; OpenSSL keeps even lone
   surrogates of a BMPString, so do we). */
TLSMAIL__PRIVATE size_t tlsmail__utf8_put(unsigned char *o, unsigned long cp) {
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xC0 | cp >> 6); o[1] = (unsigned char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

TLSMAIL__PRIVATE int tlsmail__isspace(int c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* The canonical form of one attribute value (tag, v[0..n)) into out (cap
   octets): its TLV. 0 if it can't be made (bad UTF-8, too long). */
TLSMAIL__PRIVATE size_t tlsmail__canon_value(unsigned tag, const unsigned char *v, size_t n,
                                             unsigned char *out, size_t cap) {
    unsigned char u[1024], *o = out;
    size_t ul = 0, i = 0, width, start, end, k, hl;
    switch (tag) {
    case 0x0C: width = 0; break; /* UTF8String */
    case 0x13: case 0x14: case 0x16: case 0x1A: width = 1; break; /* Printable, T61, IA5, Visible */
    case 0x1E: width = 2; break; /* BMPString */
    case 0x1C: width = 4; break; /* UniversalString */
    default:                     /* not a string OpenSSL canonicalises: as is */
        if (n + 6 > cap) return 0;
        hl = tlsmail__der_header(out, tag, n);
        memcpy(out + hl, v, n);
        return hl + n;
    }
    /* to UTF-8 */
    while (i < n) {
        unsigned long cp = 0;
        if (width == 0) {
            size_t cl = tlsmail__utf8_char(v + i, n - i);
            if (cl == 0 || ul + cl > sizeof u) return 0;
            memcpy(u + ul, v + i, cl);
            ul += cl;
            i += cl;
            continue;
        }
        if (n - i < width) return 0;
        for (k = 0; k < width; k++) cp = cp << 8 | v[i + k];
        i += width;
        if (cp > 0x10FFFF || ul + 4 > sizeof u) return 0;
        ul += tlsmail__utf8_put(u + ul, cp);
    }
    /* trim, collapse, lower-case ASCII */
    for (start = 0; start < ul && tlsmail__isspace(u[start]); start++) {}
    for (end = ul; end > start && tlsmail__isspace(u[end - 1]); end--) {}
    k = 0;
    for (i = start; i < end; i++) {
        if (tlsmail__isspace(u[i])) {
            if (k == 0 || u[k - 1] != ' ') u[k++] = ' ';
            continue;
        }
        u[k++] = (unsigned char)tlsmail__lower(u[i]);
    }
    if (k + 6 > cap) return 0;
    hl = tlsmail__der_header(o, 0x0C, k);
    memcpy(o + hl, u, k);
    return hl + k;
}

/* X.690 11.6: a SET OF's elements in the order of their encodings. */
TLSMAIL__PRIVATE int tlsmail__der_before(const unsigned char *a, size_t an, const unsigned char *b,
                                         size_t bn) {
    size_t m = an < bn ? an : bn;
    int r = memcmp(a, b, m);
    return r < 0 || (r == 0 && an < bn);
}

/* The subject hash of the DER name dn[0..n) (the whole Name, SEQUENCE
   included). 0, or -1 when the name is not one OpenSSL could hash. */
TLSMAIL__PRIVATE int tlsmail__name_hash(const unsigned char *dn, size_t n, unsigned long *hash) {
    enum { TLSMAIL__RDN_MAX = 8 };
    br_sha1_context h;
    unsigned char md[20];
    unsigned tag;
    size_t off, len, pos, end;
    if (!tlsmail__der_tlv(dn, n, &tag, &off, &len) || tag != 0x30 || off + len != n) return -1;
    br_sha1_init(&h);
    for (pos = off, end = off + len; pos < end;) {
        unsigned char buf[1400], hdr[4];
        size_t ent[TLSMAIL__RDN_MAX], entn[TLSMAIL__RDN_MAX], ne = 0, used = 0, total = 0, i, j;
        size_t soff, slen, spos;
        unsigned stag;
        if (!tlsmail__der_tlv(dn + pos, end - pos, &stag, &soff, &slen) || stag != 0x31) return -1;
        for (spos = pos + soff; spos < pos + soff + slen;) {
            size_t aoff, alen, ooff, olen, voff, vlen, w;
            unsigned atag, otag, vtag;
            const unsigned char *a;
            unsigned char *e;
            if (!tlsmail__der_tlv(dn + spos, pos + soff + slen - spos, &atag, &aoff, &alen) ||
                atag != 0x30 || ne == TLSMAIL__RDN_MAX)
                return -1;
            a = dn + spos + aoff;
            if (!tlsmail__der_tlv(a, alen, &otag, &ooff, &olen) || otag != 0x06 ||
                !tlsmail__der_tlv(a + ooff + olen, alen - ooff - olen, &vtag, &voff, &vlen) ||
                ooff + olen + voff + vlen != alen)
                return -1;
            /* SEQUENCE { OID, canonical value }, its header last */
            e = buf + used + 4;
            if (used + 4 + ooff + olen > sizeof buf) return -1;
            memcpy(e, a, ooff + olen);
            w = tlsmail__canon_value(vtag, a + ooff + olen + voff, vlen, e + ooff + olen,
                                     sizeof buf - used - 4 - ooff - olen);
            if (w == 0) return -1;
            w += ooff + olen;
            j = tlsmail__der_header(hdr, 0x30, w);
            memmove(buf + used + j, e, w);
            memcpy(buf + used, hdr, j);
            ent[ne] = used;
            entn[ne++] = j + w;
            used += j + w;
            total += j + w;
            spos += aoff + alen;
        }
        /* insertion sort: an RDN has one or two attributes in practice */
        for (i = 1; i < ne; i++)
            for (j = i; j > 0 && tlsmail__der_before(buf + ent[j], entn[j], buf + ent[j - 1], entn[j - 1]); j--) {
                size_t t = ent[j]; ent[j] = ent[j - 1]; ent[j - 1] = t;
                t = entn[j]; entn[j] = entn[j - 1]; entn[j - 1] = t;
            }
        j = tlsmail__der_header(hdr, 0x31, total);
        br_sha1_update(&h, hdr, j);
        for (i = 0; i < ne; i++) br_sha1_update(&h, buf + ent[i], entn[i]);
        pos += soff + slen;
    }
    br_sha1_out(&h, md);
    *hash = (unsigned long)md[0] | (unsigned long)md[1] << 8 | (unsigned long)md[2] << 16 |
            (unsigned long)md[3] << 24;
    return 0;
}

/* ---- SASL responses, base64 on the fly (RFC 4954 4, 4616, 7628) ------------ */

/* One piece of a SASL response. A gs2 piece is a saslname (RFC 5801 4):
   its ',' and '=' go out as "=2C" and "=3D". */
typedef struct tlsmail__part {
    const char *p;
    size_t n;
    int gs2;
} tlsmail__part;

/* Octets of the response the parts make, escapes counted; (size_t)-1 if
   that does not fit a size_t. */
TLSMAIL__PRIVATE size_t tlsmail__parts_len(const tlsmail__part *pt, size_t np) {
    size_t i, k, total = 0;
    for (i = 0; i < np; i++) {
        size_t n = pt[i].n;
        if (pt[i].gs2)
            for (k = 0; k < pt[i].n; k++) n += (pt[i].p[k] == ',' || pt[i].p[k] == '=') ? 2 : 0;
        if (n > (size_t)-1 - 1 - total) return (size_t)-1;
        total += n;
    }
    return total;
}

/* Characters of the base64 of n octets. */
TLSMAIL__PRIVATE size_t tlsmail__b64_len(size_t n) { return n / 3 * 4 + (n % 3 ? 4 : 0); }

/* The encoder's state: at most 2 octets of the response and 64 characters
   of its base64 exist at once, here, and are wiped when done. */
typedef struct tlsmail__b64w {
    unsigned char in[3];
    size_t nin, nout;
    char out[64 + 1];               /* + the NUL tlsmail__b64_encode writes */
    int (*emit)(void *ctx, const char *s, size_t n);
    void *ctx;
    int err;
} tlsmail__b64w;

TLSMAIL__PRIVATE void tlsmail__b64w_flush(tlsmail__b64w *w) {
    if (w->nout && !w->err) w->err = w->emit(w->ctx, w->out, w->nout);
    w->nout = 0;
}

/* The pending octets (1 to 3) as one 4-character group. */
TLSMAIL__PRIVATE void tlsmail__b64w_group(tlsmail__b64w *w) {
    if (w->nout + 4 > sizeof w->out - 1) tlsmail__b64w_flush(w);
    w->nout += tlsmail__b64_encode(w->out + w->nout, 5, w->in, w->nin);
    w->nin = 0;
}

TLSMAIL__PRIVATE void tlsmail__b64w_byte(tlsmail__b64w *w, unsigned char c) {
    w->in[w->nin++] = c;
    if (w->nin == 3) tlsmail__b64w_group(w);
}

/* Base64 of the concatenated parts, handed to emit in pieces of at most 64
   characters. Returns emit's first nonzero result, or 0. */
TLSMAIL__PRIVATE int tlsmail__b64_parts(const tlsmail__part *pt, size_t np,
                                        int (*emit)(void *ctx, const char *s, size_t n),
                                        void *ctx) {
    tlsmail__b64w w;
    size_t i, k;
    int err;
    memset(&w, 0, sizeof w);
    w.emit = emit;
    w.ctx = ctx;
    for (i = 0; i < np; i++) {
        for (k = 0; k < pt[i].n; k++) {
            unsigned char c = (unsigned char)pt[i].p[k];
            if (pt[i].gs2 && (c == ',' || c == '=')) {
                tlsmail__b64w_byte(&w, '=');
                tlsmail__b64w_byte(&w, c == ',' ? '2' : '3');
                c = c == ',' ? 'C' : 'D';
            }
            tlsmail__b64w_byte(&w, c);
        }
    }
    if (w.nin) tlsmail__b64w_group(&w);
    tlsmail__b64w_flush(&w);
    err = w.err;
    tlsmail__wipe(&w, sizeof w);
    return err;
}

/* The client's first message of XOAUTH2 (Google's and Microsoft's
   definition) or OAUTHBEARER (RFC 7628 3.1), as parts; ^A is 0x01:
     XOAUTH2      "user=" user ^A "auth=Bearer " token ^A ^A
     OAUTHBEARER  "n,a=" saslname(user) "," ^A "host=" host ^A "port=" port ^A
                  "auth=Bearer " token ^A ^A
   pt has room for 12 parts; returns how many were used. */
TLSMAIL__PRIVATE size_t tlsmail__oauth_parts(tlsmail__part *pt, int mech, const char *user,
                                             const char *token, const char *host,
                                             const char *port) {
    static const char a1[] = "\001";
    size_t n = 0;
#define TLSMAIL__PART(s, len, esc) (pt[n].p = (s), pt[n].n = (len), pt[n].gs2 = (esc), n++)
    if (mech == TLSMAIL_AUTH_XOAUTH2) {
        TLSMAIL__PART("user=", 5, 0);
        TLSMAIL__PART(user, strlen(user), 0);
        TLSMAIL__PART(a1, 1, 0);
    } else {
        TLSMAIL__PART("n,a=", 4, 0);
        TLSMAIL__PART(user, strlen(user), 1);
        TLSMAIL__PART(",\001host=", 7, 0);
        TLSMAIL__PART(host, strlen(host), 0);
        TLSMAIL__PART("\001port=", 6, 0);
        TLSMAIL__PART(port, strlen(port), 0);
        TLSMAIL__PART(a1, 1, 0);
    }
    TLSMAIL__PART("auth=Bearer ", 12, 0);
    TLSMAIL__PART(token, strlen(token), 0);
    TLSMAIL__PART("\001\001", 2, 0);
#undef TLSMAIL__PART
    return n;
}

/* RFC 7628 3.2.2: a refused token draws "334 " + base64 of a JSON object
   ({"status":"401","schemes":"bearer","scope":"..."}). text[0..n) decoded
   into out (cap octets, NUL-terminated) when it is canonical base64 of
   printable text; the JSON's CR, LF and TAB become spaces. Returns the
   length, or -1 (out is then "") for anything else. */
TLSMAIL__PRIVATE long tlsmail__oauth_challenge(char *out, size_t cap, const char *text, size_t n) {
    long len, i;
    if (!cap) return -1;
    out[0] = '\0';
    if (n == 0) return -1;
    len = tlsmail__b64_decode((unsigned char *)out, cap - 1, text, n);
    if (len <= 0) {
        out[0] = '\0';
        return -1;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c == '\r' || c == '\n' || c == '\t') out[i] = ' ';
        else if (c < 0x20 || c == 0x7F) break;
    }
    if (i < len) {
        out[0] = '\0';
        return -1;
    }
    out[len] = '\0';
    return len;
}

/* The "status" member of that JSON object, a string or a number, into st
   (cap octets, NUL-terminated; "" when there is none, or it does not fit).
   A bounded scan, not a JSON parser: the first "status" key at any depth,
   ':' after it, then the value; a string with escapes or anything but
   printable ASCII in it is not taken. */
TLSMAIL__PRIVATE void tlsmail__oauth_status(const char *j, size_t n, char *st, size_t cap) {
    size_t i, k, v;
    if (!cap) return;
    st[0] = '\0';
    for (i = 0; i + 8 <= n; i++) {
        if (memcmp(j + i, "\"status\"", 8) != 0) continue;
        for (k = i + 8; k < n && j[k] == ' '; k++) {}
        if (k >= n || j[k] != ':') continue;
        for (k++; k < n && j[k] == ' '; k++) {}
        if (k < n && j[k] == '"') {
            for (v = ++k; v < n && j[v] >= 0x20 && j[v] < 0x7F && j[v] != '"' && j[v] != '\\';
                 v++) {}
            if (v >= n || j[v] != '"') return;
        } else {
            for (v = k; v < n && (tlsmail__isalnum((unsigned char)j[v]) || j[v] == '-'); v++) {}
        }
        if (v == k || v - k >= cap) return;
        memcpy(st, j + k, v - k);
        st[v - k] = '\0';
        return;
    }
}

/* ---- the server's id of an accepted message ------------------------------- */

/* Characters a queue id may hold: printable ASCII, none of the brackets
   and separators that frame it in the replies we know. */
TLSMAIL__PRIVATE int tlsmail__idchar(int c) {
    return c > 0x20 && c < 0x7F && !strchr("<>()[],;\"'", c);
}

/* The id at t[0..n): its characters, then trailing '.' (sentence ends)
   dropped; 0 when it is empty or cap cannot hold it. */
TLSMAIL__PRIVATE size_t tlsmail__id_take(const char *t, size_t n, char *out, size_t cap) {
    size_t k = 0;
    while (k < n && tlsmail__idchar((unsigned char)t[k])) k++;
    while (k > 0 && t[k - 1] == '.') k--;
    if (k == 0 || k >= cap) return 0;
    memcpy(out, t, k);
    out[k] = '\0';
    return k;
}

/* Where needle (lower case) starts in t[0..n), case-insensitively, at or
   after from; n when nowhere. */
TLSMAIL__PRIVATE size_t tlsmail__ifind(const char *t, size_t n, size_t from, const char *needle) {
    size_t m = strlen(needle), i, k;
    for (i = from; i + m <= n; i++) {
        for (k = 0; k < m && tlsmail__lower((unsigned char)t[i + k]) == needle[k]; k++) {}
        if (k == m) return i;
    }
    return n;
}

/* The queue id in the text of the 250 that accepted a message (its first
   line; the enhanced status, if any, skipped). The forms, in order:
     "... queued as ID" (Postfix, SendGrid), "... stored as ID"
     "... id=ID"                      (Exim: "OK id=1tXYZa-000abc-Cd")
     "OK 1701234567 ID - gsmtp"       (Gmail: the word before " - gsmtp")
     "... <ID> ..."                   (Exchange, Microsoft 365: in brackets)
     "Message Queued (ID)"            (Haraka)
     "ID Message accepted for delivery" (Sendmail)
     "Ok ID"                          (Amazon SES: the whole text)
   Returns the id's length, written NUL-terminated to out; 0 (out "") when
   none is found or it does not fit in cap. */
TLSMAIL__PRIVATE size_t tlsmail__queue_id(const char *t, size_t n, char *out, size_t cap) {
    const char *const as[] = { "queued as ", "stored as " };
    size_t i, k, r;
    if (!cap) return 0;
    out[0] = '\0';
    for (k = 0; k < n && t[k] != '\n'; k++) {}
    n = k; /* the first line */
    /* RFC 3463: "2.0.0 " first */
    if (n >= 6 && t[0] == '2' && t[1] == '.') {
        for (k = 2; k < n && t[k] != ' '; k++) {}
        t += k;
        n -= k;
    }
    while (n && t[0] == ' ') { t++; n--; }
    for (i = 0; i < sizeof as / sizeof as[0]; i++) {
        k = tlsmail__ifind(t, n, 0, as[i]);
        if (k < n) return tlsmail__id_take(t + k + 10, n - k - 10, out, cap);
    }
    for (k = tlsmail__ifind(t, n, 0, "id="); k < n; k = tlsmail__ifind(t, n, k + 1, "id="))
        if (k == 0 || t[k - 1] == ' ') return tlsmail__id_take(t + k + 3, n - k - 3, out, cap);
    if (n > 8 && tlsmail__ifind(t, n, n - 8, " - gsmtp") == n - 8) {
        for (k = n - 8; k > 0 && t[k - 1] != ' '; k--) {}
        return tlsmail__id_take(t + k, n - 8 - k, out, cap);
    }
    k = tlsmail__ifind(t, n, 0, "<");
    if (k < n) {
        r = tlsmail__id_take(t + k + 1, n - k - 1, out, cap);
        if (r && k + 1 + r < n && t[k + 1 + r] == '>') return r;
        out[0] = '\0';
    }
    k = tlsmail__ifind(t, n, 0, "queued (");
    if (k < n) return tlsmail__id_take(t + k + 8, n - k - 8, out, cap);
    for (k = 0; k < n && t[k] != ' '; k++) {}
    if (k < n && tlsmail__ifind(t, n, k, " message accepted for delivery") == k)
        return tlsmail__id_take(t, k, out, cap);
    if (k == 2 && tlsmail__ieqn(t, 2, "ok") && n > 3 && !memchr(t + 3, ' ', n - 3))
        return tlsmail__id_take(t + 3, n - 3, out, cap);
    return 0;
}

/* ---- ESMTP parameters: xtext (RFC 3461 4, RFC 6533 3) --------------------- */

/* Decimal digits of v at out (room for 20 and a NUL): no printf: its size_t
   format is not in every C library of our targets, and small images would
   carry all of printf for it. */
TLSMAIL__PRIVATE size_t tlsmail__utoa(char *out, size_t v) {
    char tmp[24];
    size_t n = 0, i;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}


/* xtext: "!" to "~" but "+" and "=" as they are, every other octet "+HH"
   (RFC 3461 4). With utf8 set, RFC 6533's utf-8-addr-xtext instead: octets
   over 127 as they are, "+", "=", space and controls as "\x{HH}". Writes to
   out (NUL-terminated); returns the length, or -1 when cap is too small. */
TLSMAIL__PRIVATE long tlsmail__xtext(char *out, size_t cap, const char *in, size_t n, int utf8) {
    const char *hex = "0123456789ABCDEF";
    size_t i, o = 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        int plain = (c > 0x20 && c < 0x7F && c != '+' && c != '=') || (utf8 && c >= 0x80);
        size_t need = plain ? 1 : utf8 ? 6 : 3;
        if (cap - o <= need) return -1;
        if (plain) {
            out[o++] = (char)c;
        } else {
            if (utf8) { out[o++] = '\\'; out[o++] = 'x'; out[o++] = '{'; }
            else out[o++] = '+';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
            if (utf8) out[o++] = '}';
        }
    }
    if (cap - o < 1) return -1;
    out[o] = '\0';
    return (long)o;
}

/* ---- what a whole message needs (RFC 1870, 6152, 6532) ---------------------- */

typedef struct tlsmail__msginfo {
    size_t size;                    /* as RFC 1870 counts it; (size_t)-1: more */
    int body8;                      /* an octet over 127 anywhere */
    int head8;                      /* ...in the header section (RFC 6532 3) */
    size_t longline;                /* the first line (from 1) of more than 998
                                       octets of text (RFC 5321 4.5.3.1.6):
                                       TLSMAIL_ELINE; 0: none */
    int bare;                       /* a CR or LF outside a CRLF */
} tlsmail__msginfo;

/* The offset of the first CR or LF in s[0..n), or n. memchr (the C
   library's vectorised scan) rather than a loop per octet, over windows
   of 4 KiB, so a message without one kind of line end is not searched to
   its end for each line: every octet is looked at at most twice. */
TLSMAIL__PRIVATE size_t tlsmail__next_eol(const unsigned char *s, size_t n) {
    size_t at = 0;
    while (at < n) {
        size_t w = n - at < 4096 ? n - at : 4096;
        const unsigned char *lf = (const unsigned char *)memchr(s + at, '\n', w);
        const unsigned char *cr = (const unsigned char *)memchr(s + at, '\r', lf ? (size_t)(lf - (s + at)) : w);
        if (cr) return (size_t)(cr - s);
        if (lf) return (size_t)(lf - s);
        at += w;
    }
    return n;
}

/* Eight octets as one word, in any alignment (memcpy is one load). */
TLSMAIL__PRIVATE uint64_t tlsmail__ld64(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

/* The offset of the first octet over 127 in s[0..n), or n. It runs over
   every octet of a message: 64 octets at a time, OR-ed together in
   straight-line code for one test (a loop of words is not unrolled at
   -O2, and tests each), then octet by octet in the block that has one. */
TLSMAIL__PRIVATE size_t tlsmail__first8(const unsigned char *s, size_t n) {
    size_t i;
    for (i = 0; i + 64 <= n; i += 64) {
        const unsigned char *p = s + i;
        uint64_t w = tlsmail__ld64(p) | tlsmail__ld64(p + 8) | tlsmail__ld64(p + 16) | tlsmail__ld64(p + 24) |
                     tlsmail__ld64(p + 32) | tlsmail__ld64(p + 40) | tlsmail__ld64(p + 48) |
                     tlsmail__ld64(p + 56);
        if (w & 0x8080808080808080u) break;
    }
    for (; i < n; i++)
        if (s[i] >= 0x80) return i;
    return n;
}

TLSMAIL__PRIVATE int tlsmail__has8(const unsigned char *s, size_t n) { return tlsmail__first8(s, n) < n; }

/* One pass: the size as it goes out (every CR, LF and CRLF counted as
   CRLF, plus a CRLF for a last line without one; no dot-stuffing), whether
   it has 8-bit octets, whether its header section (up to the first empty
   line) does, which line, if any, is too long to send, and whether a line
   ends in a bare CR or LF. A line's text at a time, between line ends. */
TLSMAIL__PRIVATE void tlsmail__msg_scan(const void *msg, size_t len, tlsmail__msginfo *mi) {
    const unsigned char *s = (const unsigned char *)msg;
    size_t i = 0, size = 0, line = 1, first8 = tlsmail__first8(s, len);
    int bol = 1, in_head = 1, over = 0, crlf;
    memset(mi, 0, sizeof *mi);
    /* the first 8-bit octet decides both flags, the header being first */
    mi->body8 = mi->head8 = first8 < len;
    while (i < len) {
        size_t k = tlsmail__next_eol(s + i, len - i);
        if (k) { /* text */
            bol = 0;
            if (k > TLSMAIL__DATA_LINE_MAX && !mi->longline) mi->longline = line;
            over |= size > (size_t)-1 - k;
            size += k;
            if ((i += k) == len) break;
        }
        /* a line end: CR, LF or CRLF */
        crlf = s[i] == '\r' && i + 1 < len && s[i + 1] == '\n';
        mi->bare |= !crlf;
        i += crlf ? 2 : 1;
        if (bol && in_head) { /* the empty line ends the header */
            in_head = 0;
            mi->head8 = first8 < i;
        }
        bol = 1;
        line++;
        over |= size > (size_t)-1 - 2;
        size += 2;
    }
    if (!bol) {
        over |= size > (size_t)-1 - 2;
        size += 2;
    }
    mi->size = over ? (size_t)-1 : size;
}

/* BDAT's octets from s[at..n): the end of the run that goes out as it is
   (CRLFs included), which is n or a bare CR or bare LF (*bare set): that
   one is sent as CRLF, and the next run starts after it. */
TLSMAIL__PRIVATE size_t tlsmail__bdat_run(const unsigned char *s, size_t n, size_t at, int *bare) {
    for (;;) {
        at += tlsmail__next_eol(s + at, n - at);
        if (at == n) {
            *bare = 0;
            return n;
        }
        if (s[at] == '\n' || at + 1 == n || s[at + 1] != '\n') {
            *bare = 1; /* a CR without its LF, or an LF without its CR */
            return at;
        }
        at += 2; /* CRLF */
    }
}


/* ---- DATA encoder (RFC 5321 4.5.2, 2.3.8) ---------------------------------- */

/* Every bare CR and bare LF becomes CRLF, so no "<LF>.<LF>" or "<CR>.<CR>"
   variant of the end-of-data marker can reach a server that reads line ends
   differently from us (SMTP smuggling, CVE-2023-51764/51765/51766). */
TLSMAIL__PRIVATE void tlsmail__dot_init(tlsmail__dot *d) {
    d->bol = 1;
    d->cr = 0;
    d->linelen = 0;
    d->line = 1;
}

TLSMAIL__PRIVATE int tlsmail__dot_encode(tlsmail__dot *d, const unsigned char *in, size_t n,
                                         unsigned char *out, size_t cap, size_t *used,
                                         size_t *written) {
    size_t i = 0, w = 0;
    int rc = 0;
    while (i < n) {
        unsigned char c = in[i];
        size_t k, more;
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
            d->line++;
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
        k = tlsmail__next_eol(in + i, k);
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

/* ---- certificate walker (RFC 5280 4.1, X.690 DER) --------------------------- */

/* BearSSL's minimal X.509 engine checks the chain, the dates, the name and
   the key sizes, but not extendedKeyUsage, and it shows nothing of a
   certificate before its end. This walker reads the same octets as they
   stream past, in constant memory: it keeps the issuer and subject names
   (whole DER, as BearSSL compares them) and the verdict of the
   extendedKeyUsage extension, and refuses what is not DER: no indefinite
   or non-minimal lengths, no TLV beyond its parent, nothing after the end.
   It also notes two things BearSSL lets through: nameConstraints that are
   not marked critical (BearSSL skips an extension it does not know unless
   it is critical, and enforces none), and a subjectAltName wildcard over a
   single label ("*.com"), which BearSSL matches and RFC 6125 6.4.3 and
   OpenSSL do not (a CN with no subjectAltName is read from the kept
   subject when the certificate ends: tlsmail__dn_wild1). */

/* Whether "*." and one label: a wildcard over a whole top-level domain or
   public suffix, which no certificate may claim (RFC 6125 6.4.3). */
TLSMAIL__PRIVATE int tlsmail__wild1(const unsigned char *p, size_t n) {
    return n > 2 && p[0] == '*' && p[1] == '.' && !memchr(p + 2, '.', n - 2);
}

/* Whether a DER Name has a commonName that tlsmail__wild1 refuses: with no
   subjectAltName extension BearSSL matches the leaf's CN to the host,
   wildcards included. A Name that is not DER counts as one. */
TLSMAIL__PRIVATE int tlsmail__dn_wild1(const unsigned char *dn, size_t n) {
    static const unsigned char cn[] = { 0x06, 0x03, 0x55, 0x04, 0x03 }; /* id-at-commonName */
    unsigned tag;
    size_t off, len, pos, end;
    if (!tlsmail__der_tlv(dn, n, &tag, &off, &len) || tag != 0x30) return 1;
    for (pos = off, end = off + len; pos < end;) { /* each RDN, a SET */
        size_t so, sl, at, send;
        if (!tlsmail__der_tlv(dn + pos, end - pos, &tag, &so, &sl) || tag != 0x31) return 1;
        for (at = pos + so, send = pos + so + sl; at < send;) { /* AttributeTypeAndValue */
            size_t ao, al, vo, vl;
            const unsigned char *a;
            if (!tlsmail__der_tlv(dn + at, send - at, &tag, &ao, &al) || tag != 0x30) return 1;
            a = dn + at + ao;
            if (al >= sizeof cn && memcmp(a, cn, sizeof cn) == 0 &&
                (!tlsmail__der_tlv(a + sizeof cn, al - sizeof cn, &tag, &vo, &vl) ||
                 tlsmail__wild1(a + sizeof cn + vo, vl)))
                return 1;
            at += ao + al;
        }
        pos += so + sl;
    }
    return 0;
}

/* What an open TLV is to the walker. */
enum { TLSMAIL__CW_ROOT = 0, TLSMAIL__CW_CERT, TLSMAIL__CW_TBS, TLSMAIL__CW_EXTS_WRAP,
       TLSMAIL__CW_EXTS, TLSMAIL__CW_EXT, TLSMAIL__CW_EKU_OCTETS, TLSMAIL__CW_EKU_LIST,
       TLSMAIL__CW_SAN_OCTETS, TLSMAIL__CW_SAN_LIST };
/* Where the octets of the value being read go. */
enum { TLSMAIL__CV_SKIP = 0, TLSMAIL__CV_ISSUER, TLSMAIL__CV_SUBJECT, TLSMAIL__CV_OID,
       TLSMAIL__CV_VALIDITY, TLSMAIL__CV_DNS };

/* The buffer the value being read is kept in, its length and its size;
   NULL when it is skipped. */
TLSMAIL__PRIVATE unsigned char *tlsmail__cw_dest(tlsmail__certwalk *w, size_t **len, size_t *cap) {
    switch (w->cv) {
    case TLSMAIL__CV_ISSUER: *len = &w->issuer_len; *cap = TLSMAIL__DN_MAX; return w->issuer;
    case TLSMAIL__CV_SUBJECT: *len = &w->subject_len; *cap = TLSMAIL__DN_MAX; return w->subject;
    case TLSMAIL__CV_OID: *len = &w->oidlen; *cap = sizeof w->oid; return w->oid;
    case TLSMAIL__CV_VALIDITY: *len = &w->validity_len; *cap = sizeof w->validity; return w->validity;
    case TLSMAIL__CV_DNS: *len = &w->dnslen; *cap = sizeof w->dns; return w->dns;
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

/* A value ended: an extension's OID, a KeyPurposeId, or a dNSName. */
TLSMAIL__PRIVATE void tlsmail__cw_value_end(tlsmail__certwalk *w) {
    /* id-ce-extKeyUsage 2.5.29.37, id-kp-serverAuth 1.3.6.1.5.5.7.3.1 and
       anyExtendedKeyUsage 2.5.29.37.0 (RFC 5280 4.2.1.12), id-ce-
       subjectAltName 2.5.29.17 and id-ce-nameConstraints 2.5.29.30, content
       octets */
    static const char eku[] = "\x55\x1d\x25", server[] = "\x2b\x06\x01\x05\x05\x07\x03\x01",
                      any[] = "\x55\x1d\x25\x00", san[] = "\x55\x1d\x11", nc[] = "\x55\x1d\x1e";
    if (w->cv == TLSMAIL__CV_ISSUER) w->issuer_done = 1;
    if (w->cv == TLSMAIL__CV_SUBJECT) w->subject_done = 1;
    if (w->cv == TLSMAIL__CV_VALIDITY) w->validity_done = 1;
    if (w->cv == TLSMAIL__CV_DNS) {
        if (tlsmail__wild1(w->dns, w->dnslen)) w->wild1 = 1;
        return;
    }
    if (w->cv != TLSMAIL__CV_OID) return;
    if (w->role[w->depth] == TLSMAIL__CW_EXT) {
        w->in_san = tlsmail__cw_oid_is(w, san, 3);
        w->san |= w->in_san;
        if (tlsmail__cw_oid_is(w, nc, 3)) w->nc = 1;
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
            if (w->seqs == 3) w->cv = TLSMAIL__CV_VALIDITY;
            if (w->seqs == 4) w->cv = TLSMAIL__CV_SUBJECT;
        } else if (tag == 0xA3) {
            into = TLSMAIL__CW_EXTS_WRAP;
        }
        break;
    case TLSMAIL__CW_EXTS_WRAP:
    case TLSMAIL__CW_EXTS:
    case TLSMAIL__CW_EKU_OCTETS:
    case TLSMAIL__CW_SAN_OCTETS:
        if (tag != 0x30) { w->err = 1; return; }
        into = w->role[w->depth] + 1;
        w->in_eku = w->in_eku && into == TLSMAIL__CW_EKU_LIST;
        w->in_san = w->in_san && into == TLSMAIL__CW_SAN_LIST;
        break;
    case TLSMAIL__CW_EXT: /* extnID, critical, extnValue */
        if (tag == 0x06 && nth == 0) w->cv = TLSMAIL__CV_OID;
        else if (tag == 0x04 && w->in_eku) into = TLSMAIL__CW_EKU_OCTETS;
        else if (tag == 0x04 && w->in_san) into = TLSMAIL__CW_SAN_OCTETS;
        break;
    case TLSMAIL__CW_SAN_LIST: /* GeneralNames: dNSName is [2] IA5String */
        if (tag == 0x82) w->cv = TLSMAIL__CV_DNS;
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
    } else if (w->cv == TLSMAIL__CV_DNS) {
        /* Longer, it has a dot past "*." (a label is at most 63 octets, and
           no host name we dial has a longer one). */
        if (len > sizeof w->dns) w->cv = TLSMAIL__CV_SKIP;
    } else if (w->cv != TLSMAIL__CV_SKIP) {
        size_t *dl = NULL, cap = 0;
        unsigned char *dn = tlsmail__cw_dest(w, &dl, &cap);
        /* (every value but SKIP has a buffer: !dn cannot happen) */
        if (!dn || !dl || len > cap - w->hlen) { /* a name: can't be kept, so can't be looked up */
            if (w->cv != TLSMAIL__CV_VALIDITY) w->dn_over = 1;
            w->cv = TLSMAIL__CV_SKIP;
        } else {
            memcpy(dn, w->hdr, w->hlen); /* the header is part of its DER */
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
            size_t k = n - i < w->vleft ? n - i : w->vleft, *dl = NULL, cap = 0;
            unsigned char *dst = tlsmail__cw_dest(w, &dl, &cap);
            if (dst && dl) { /* fits: checked against the value's length */
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

/* ---- a certificate's names and times, for tlsmail_tls_info ----------------- */

/* dn[0..n), a DER Name (SEQUENCE OF SET), into out[0..cap) as its RDNs
   (whole SETs) the last first, as many of the last ones as fit; *cut when
   some did not. The octets written; 0 for anything but a SEQUENCE of
   SETs. Nothing is read past n. */
TLSMAIL__PRIVATE size_t tlsmail__rdns_reversed(unsigned char *out, size_t cap, const unsigned char *dn,
                                               size_t n, int *cut) {
    unsigned tag;
    size_t off, len, pos, used = 0;
    *cut = 0;
    if (!tlsmail__der_tlv(dn, n, &tag, &off, &len) || tag != 0x30 || off + len != n) return 0;
    for (pos = off; pos < n;) {
        size_t soff, slen, size;
        if (!tlsmail__der_tlv(dn + pos, n - pos, &tag, &soff, &slen) || tag != 0x31) return 0;
        size = soff + slen;
        /* Each RDN goes in front; the earliest ones, at the back, make
           room (whole RDNs only: the next one starts where one ends). */
        while (used && used + size > cap) {
            size_t at = 0, last = 0;
            while (at < used) { /* the RDNs copied in: well-formed */
                unsigned t2;
                size_t o2 = 0, l2 = 0;
                if (!tlsmail__der_tlv(out + at, used - at, &t2, &o2, &l2)) break;
                last = at;
                at += o2 + l2;
            }
            used = last;
            *cut = 1;
        }
        if (size > cap) {
            *cut = 1; /* too big to keep: what came before it goes too */
        } else {
            memmove(out + size, out, used);
            memcpy(out, dn + pos, size);
            used += size;
        }
        pos += size;
    }
    return used;
}

/* Text into out[0..cap) a unit at a time (a character, an escape, a
   type): a unit that does not fit ends it, with "..." after the last
   unit that leaves room for it. */
typedef struct tlsmail__textout {
    char *out;
    size_t cap, len, safe;
    int full;
} tlsmail__textout;

TLSMAIL__PRIVATE void tlsmail__text_put(tlsmail__textout *t, const char *s, size_t k) {
    if (t->full) return;
    if (t->len + k + 1 > t->cap) {
        t->full = 1;
        return;
    }
    memcpy(t->out + t->len, s, k);
    t->len += k;
    if (t->len + 4 <= t->cap) t->safe = t->len;
}

/* The end: NUL, and "..." when something was left out (more) or did not fit. */
TLSMAIL__PRIVATE void tlsmail__text_end(tlsmail__textout *t, int more) {
    if (t->full || more) {
        if (t->len + 4 > t->cap) t->len = t->safe;
        if (t->len + 4 <= t->cap) {
            memcpy(t->out + t->len, "...", 3);
            t->len += 3;
        }
    }
    if (t->cap) t->out[t->len < t->cap ? t->len : t->cap - 1] = '\0';
}

/* One octet of a value's UTF-8 (RFC 4514 2.4): printable ASCII as it is,
   ",+\"\\<>;" escaped by a backslash, as are '#' or a space first and a
   space last; anything else as \XX. */
TLSMAIL__PRIVATE void tlsmail__text_value_octet(tlsmail__textout *t, unsigned c, int first, int last) {
    static const char hex[] = "0123456789ABCDEF";
    char e[3];
    if (c < 0x20 || c >= 0x7F) {
        e[0] = '\\';
        e[1] = hex[c >> 4];
        e[2] = hex[c & 15];
        tlsmail__text_put(t, e, 3);
        return;
    }
    e[0] = '\\';
    e[1] = (char)c;
    if (strchr(",+\"\\<>;", (int)c) || ((c == '#' || c == ' ') && first) || (c == ' ' && last))
        tlsmail__text_put(t, e, 2);
    else
        tlsmail__text_put(t, e + 1, 1);
}

/* A dotted OID from its DER content; 0 when malformed (empty, a first
   octet 0x80 in an arc, an arc over 2^32). */
TLSMAIL__PRIVATE int tlsmail__text_oid(tlsmail__textout *t, const unsigned char *v, size_t n) {
    size_t arc = 0, i, start = 0;
    char num[24];
    int first = 1;
    if (n == 0 || (v[n - 1] & 0x80)) return 0;
    for (i = 0; i < n; i++) {
        if (i == start && v[i] == 0x80) return 0; /* X.690 8.19.2: no leading 0x80 */
        if (arc > 0x1FFFFFFu) return 0;
        arc = arc << 7 | (v[i] & 0x7Fu);
        if (v[i] & 0x80) continue;
        if (first) { /* the first two arcs share one number (X.690 8.19.4) */
            size_t x = arc < 80 ? arc / 40 : 2;
            (void)tlsmail__utoa(num, x);
            tlsmail__text_put(t, num, strlen(num));
            tlsmail__text_put(t, ".", 1);
            arc -= x * 40;
            first = 0;
        } else {
            tlsmail__text_put(t, ".", 1);
        }
        (void)tlsmail__utoa(num, arc);
        tlsmail__text_put(t, num, strlen(num));
        arc = 0;
        start = i + 1;
    }
    return 1;
}

/* An attribute value of a string type as UTF-8, escaped; 0 (nothing
   written) for a type that is no string, or octets its type can't hold. */
TLSMAIL__PRIVATE int tlsmail__text_string(tlsmail__textout *t, unsigned tag, const unsigned char *v,
                                          size_t n) {
    size_t width, step, i, k;
    int pass;
    switch (tag) {
    case 0x0C: case 0x13: case 0x16: case 0x1A: width = 0; break; /* UTF8, Printable, IA5, Visible */
    case 0x14: width = 1; break;                                  /* T61, as OpenSSL: Latin-1 */
    case 0x1E: width = 2; break;                                  /* BMPString */
    case 0x1C: width = 4; break;                                  /* UniversalString */
    default: return 0;
    }
    step = width ? width : 1;
    if (n % step) return 0;
    for (pass = 0; pass < 2; pass++) /* check every code point, then write */
        for (i = 0; i < n; i += step) {
            unsigned char u[4];
            unsigned long cp = 0;
            size_t ul = 1;
            u[0] = v[i];
            if (width) {
                for (k = 0; k < width; k++) cp = cp << 8 | v[i + k];
                if (cp > 0x10FFFF) return 0;
                ul = tlsmail__utf8_put(u, cp);
            }
            for (k = 0; pass && k < ul; k++)
                tlsmail__text_value_octet(t, u[k], i == 0 && k == 0, i + step >= n && k + 1 == ul);
        }
    return 1;
}

/* rdns[0..n), RDN SETs in the order given (tlsmail__rdns_reversed's), as
   RFC 4514 text into out[0..cap), NUL-terminated; more: RDNs were left
   out. tlsmail_tls_info says what the text holds. Nothing is read past
   n: a value that is not DER ends the text with "...". */
TLSMAIL__PRIVATE void tlsmail__dn_text(const unsigned char *rdns, size_t n, int more, char *out,
                                       size_t cap) {
    static const struct { unsigned char len; const char *der, *name; } types[] = {
        { 3, "\x55\x04\x03", "CN" }, { 3, "\x55\x04\x0a", "O" }, { 3, "\x55\x04\x0b", "OU" },
        { 3, "\x55\x04\x06", "C" }, { 3, "\x55\x04\x07", "L" }, { 3, "\x55\x04\x08", "ST" },
        { 3, "\x55\x04\x09", "street" }, { 3, "\x55\x04\x05", "serialNumber" },
        { 10, "\x09\x92\x26\x89\x93\xf2\x2c\x64\x01\x19", "DC" },
        { 10, "\x09\x92\x26\x89\x93\xf2\x2c\x64\x01\x01", "UID" },
        { 9, "\x2a\x86\x48\x86\xf7\x0d\x01\x09\x01", "emailAddress" },
    };
    static const char hex[] = "0123456789ABCDEF";
    tlsmail__textout t;
    size_t pos = 0;
    int bad = 0;
    t.out = out;
    t.cap = cap;
    t.len = t.safe = 0;
    t.full = 0;
    while (pos < n && !bad && !t.full) {
        unsigned tag;
        size_t soff, slen, apos, at[16], na = 0, j;
        if (!tlsmail__der_tlv(rdns + pos, n - pos, &tag, &soff, &slen) || tag != 0x31) break;
        /* a multi-valued RDN's values last first too, as OpenSSL prints them */
        for (apos = pos + soff; apos < pos + soff + slen; apos += at[na++]) {
            size_t aoff, alen;
            if (na == sizeof at / sizeof at[0] ||
                !tlsmail__der_tlv(rdns + apos, pos + soff + slen - apos, &tag, &aoff, &alen) ||
                tag != 0x30) {
                bad = 1;
                break;
            }
            at[na] = aoff + alen;
        }
        if (bad) break;
        for (j = na, apos = pos + soff + slen; j-- > 0 && !bad;) {
            const unsigned char *a;
            size_t aoff = 0, alen = 0, ooff, olen, voff, vlen, i, k;
            unsigned otag, vtag;
            apos -= at[j];
            (void)tlsmail__der_tlv(rdns + apos, at[j], &tag, &aoff, &alen);
            a = rdns + apos + aoff;
            if (!tlsmail__der_tlv(a, alen, &otag, &ooff, &olen) || otag != 0x06 ||
                !tlsmail__der_tlv(a + ooff + olen, alen - ooff - olen, &vtag, &voff, &vlen) ||
                ooff + olen + voff + vlen != alen) {
                bad = 1;
                break;
            }
            if (j + 1 < na) tlsmail__text_put(&t, "+", 1);
            else if (pos) tlsmail__text_put(&t, ",", 1);
            for (k = 0; k < sizeof types / sizeof types[0]; k++)
                if (olen == types[k].len && memcmp(a + ooff, types[k].der, olen) == 0) break;
            if (k < sizeof types / sizeof types[0]) {
                tlsmail__text_put(&t, types[k].name, strlen(types[k].name));
                tlsmail__text_put(&t, "=", 1);
            } else if (!tlsmail__text_oid(&t, a + ooff, olen)) {
                bad = 1;
                break;
            } else {
                tlsmail__text_put(&t, "=", 1);
            }
            if (k == sizeof types / sizeof types[0] ||
                !tlsmail__text_string(&t, vtag, a + ooff + olen + voff, vlen)) {
                /* a dotted type, or a value of no string type: its DER */
                const unsigned char *d = a + ooff + olen;
                tlsmail__text_put(&t, "#", 1);
                for (i = 0; i < voff + vlen; i++) {
                    char h[2];
                    h[0] = hex[d[i] >> 4];
                    h[1] = hex[d[i] & 15];
                    tlsmail__text_put(&t, h, 2);
                }
            }
        }
        pos += soff + slen;
    }
    tlsmail__text_end(&t, more || bad || pos < n);
}

/* Two decimal digits at p; -1 if they are not. */
TLSMAIL__PRIVATE int tlsmail__dec2(const unsigned char *p) {
    if (!tlsmail__isdigit(p[0]) || !tlsmail__isdigit(p[1])) return -1;
    return (p[0] - '0') * 10 + (p[1] - '0');
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar. */
TLSMAIL__PRIVATE long long tlsmail__days_from_civil(long long y, unsigned m, unsigned d) {
    long long era;
    unsigned yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

/* A certificate's Time (RFC 5280 4.1.2.5): tag 0x17 UTCTime
   YYMMDDHHMMSSZ (YY under 50: 20YY, else 19YY) or 0x18 GeneralizedTime
   YYYYMMDDHHMMSSZ, v[0..n) its content, every field in range (a 60th
   second, which BearSSL takes for a leap second, too); no fractions, no
   offsets. 0 and *t in seconds since 1970, or -1. */
TLSMAIL__PRIVATE int tlsmail__der_time(unsigned tag, const unsigned char *v, size_t n, long long *t) {
    static const unsigned char mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int f[6], i, yd = tag == 0x18 ? 4 : 2;
    long long y;
    if ((tag != 0x17 && tag != 0x18) || n != (size_t)yd + 11 || v[n - 1] != 'Z') return -1;
    for (i = 0; i < yd / 2; i++)
        if ((f[i] = tlsmail__dec2(v + 2 * i)) < 0) return -1;
    y = yd == 4 ? f[0] * 100 + f[1] : f[0] < 50 ? 2000 + f[0] : 1900 + f[0];
    for (i = 1; i < 6; i++)
        if ((f[i] = tlsmail__dec2(v + yd + 2 * (i - 1))) < 0) return -1;
    if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > mdays[f[1] - 1] || f[3] > 23 || f[4] > 59 ||
        f[5] > 60)
        return -1;
    if (f[1] == 2 && f[2] == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) return -1;
    *t = tlsmail__days_from_civil(y, (unsigned)f[1], (unsigned)f[2]) * 86400 + f[3] * 3600 + f[4] * 60 +
         f[5];
    return 0;
}

/* ==== [tlsmail:checks] what callers give us, checked before a byte goes out ==== */

/* ---- argument checks (RFC 5321 4.1.2, 4.5.3.1) ------------------------------ */

/* RFC 5322 3.2.3 atext, which RFC 5321 4.1.2 builds Atom from, and RFC
   6531 3.3's UTF8-non-ascii: the length of the atext character at s[0..n),
   or 0. */
TLSMAIL__PRIVATE size_t tlsmail__atext(const unsigned char *s, size_t n) {
    if (s[0] >= 0x80) return tlsmail__utf8_char(s, n);
    return tlsmail__isalnum(s[0]) || (s[0] && strchr("!#$%&'*+-/=?^_`{|}~", s[0])) ? 1 : 0;
}

/* The length of the RFC 5321 4.1.2 Local-part (Dot-string / Quoted-string)
   at the start of s[0..n), or 0 when there is none. */
TLSMAIL__PRIVATE size_t tlsmail__local_part(const unsigned char *s, size_t n) {
    size_t i = 0, k;
    if (n > 0 && s[0] == '"') {
        /* Quoted-string = DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE:
           qtextSMTP is %d32-33 / %d35-91 / %d93-126, or UTF8-non-ascii (RFC
           6531 3.3); quoted-pairSMTP is "\" %d32-126. */
        for (i = 1; i < n && s[i] != '"'; i += k) {
            if (s[i] == '\\') k = i + 1 < n && s[i + 1] >= 32 && s[i + 1] <= 126 ? 2 : 0;
            else if (s[i] >= 0x80) k = tlsmail__utf8_char(s + i, n - i);
            else k = s[i] >= 32 && s[i] <= 126 ? 1 : 0;
            if (k == 0) return 0;
        }
        return i < n ? i + 1 : 0;
    }
    for (;;) { /* Dot-string = Atom *("." Atom), Atom = 1*atext */
        size_t start = i;
        while (i < n && (k = tlsmail__atext(s + i, n - i)) > 0) i += k;
        if (i == start) return 0;
        if (i == n || s[i] != '.') return i;
        i++;
    }
}

/* RFC 5321 4.1.2 Domain = sub-domain *("." sub-domain), sub-domain =
   Let-dig [Ldh-str]: letters, digits and hyphens, a hyphen neither first
   nor last. RFC 6531 3.3 adds U-labels: the same with UTF-8 characters
   among the letters. Whether those are IDNA2008-valid (RFC 5892) is for
   the DNS to say; only valid UTF-8 gets through here. */
TLSMAIL__PRIVATE int tlsmail__domain(const unsigned char *s, size_t n) {
    size_t i = 0, k;
    for (;;) {
        size_t start = i;
        for (; i < n && s[i] != '.'; i += k) {
            if (s[i] >= 0x80) k = tlsmail__utf8_char(s + i, n - i);
            else k = tlsmail__isalnum(s[i]) || s[i] == '-' ? 1 : 0;
            if (k == 0) return 0;
        }
        if (i == start || s[start] == '-' || s[i - 1] == '-') return 0;
        if (i == n) return 1;
        i++;
    }
}

/* RFC 5321 4.1.3 IPv4-address-literal = Snum 3("." Snum), Snum = 1*3DIGIT
   of value 0 to 255. */
TLSMAIL__PRIVATE int tlsmail__ipv4(const unsigned char *s, size_t n) {
    size_t i = 0;
    int part;
    for (part = 0; part < 4; part++) {
        unsigned v = 0, d = 0;
        if (part > 0 && (i >= n || s[i++] != '.')) return 0;
        for (; i < n && d < 3 && tlsmail__isdigit(s[i]); i++, d++) v = v * 10 + (unsigned)(s[i] - '0');
        if (d == 0 || v > 255) return 0;
    }
    return i == n;
}

/* RFC 5321 4.1.3 IPv6-addr: eight groups of 1*4HEXDIG, or at most six
   around one "::"; or the last 32 bits as an IPv4 address, after six
   groups, or at most four around the "::". */
TLSMAIL__PRIVATE int tlsmail__ipv6(const unsigned char *s, size_t n) {
    size_t i = 0, groups = 0;
    int gap = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':') { gap = 1; i = 2; }
    while (i < n) {
        size_t k = 0;
        if (memchr(s + i, '.', n - i) && !memchr(s + i, ':', n - i))
            return tlsmail__ipv4(s + i, n - i) && (gap ? groups <= 4 : groups == 6);
        while (i + k < n && k < 4 && tlsmail__isxdigit(s[i + k])) k++;
        if (k == 0) return 0;
        i += k;
        groups++;
        if (i == n) break;
        if (s[i++] != ':' || i == n) return 0; /* a fifth digit, a final ':' */
        if (s[i] == ':') {
            if (gap) return 0;
            gap = 1;
            i++;
        }
    }
    return gap ? groups <= 6 : groups == 8;
}

/* RFC 5321 4.1.3 address-literal = "[" ( IPv4-address-literal /
   IPv6-address-literal / General-address-literal ) "]". */
TLSMAIL__PRIVATE int tlsmail__address_literal(const unsigned char *s, size_t n) {
    size_t tag, i;
    if (n < 2 || s[0] != '[' || s[n - 1] != ']') return 0;
    s++;
    n -= 2;
    if (tlsmail__ipv4(s, n)) return 1;
    for (tag = 0; tag < n && s[tag] != ':'; tag++) {}
    if (tag == 0 || tag + 1 >= n) return 0;
    /* "IPv6:" IPv6-addr. The tag is the registered one, so it never passes
       as a General-address-literal with any content. */
    if (tag == 4 && tlsmail__ieqn((const char *)s, 4, "IPv6")) return tlsmail__ipv6(s + 5, n - 5);
    /* General-address-literal = Standardized-tag ":" 1*dcontent; the tag is
       an Ldh-str, dcontent is %d33-90 / %d94-126. */
    if (s[tag - 1] == '-') return 0;
    for (i = 0; i < tag; i++)
        if (!tlsmail__isalnum(s[i]) && s[i] != '-') return 0;
    for (i = tag + 1; i < n; i++)
        if (s[i] < 33 || s[i] > 126 || (s[i] >= 91 && s[i] <= 93)) return 0;
    return 1;
}

/* What an address is checked as. Callers of the dialogue pass 1 for MAIL
   and 0 for RCPT, hence these values. */
enum { TLSMAIL__ADDR_RCPT = 0, TLSMAIL__ADDR_MAIL = 1, TLSMAIL__ADDR_MAILBOX = 2 };

/* RFC 5321 4.1.2 Mailbox = Local-part "@" ( Domain / address-literal ),
   with RFC 6531 3.3's UTF-8, within the limits of RFC 5321 4.5.3.1. MAIL
   also takes "", the null reverse-path (4.5.5), and RCPT "Postmaster"
   alone, in any case (4.1.1.3, 4.5.1). Nothing that passes can break out
   of "MAIL FROM:<...>": no control character passes, a space only inside
   a quoted local part, '<' and '>' only there or in an address literal. */
TLSMAIL__PRIVATE int tlsmail__check_mailbox(const char *addr, int kind) {
    const unsigned char *s = (const unsigned char *)addr;
    size_t len, at;
    if (!addr) return TLSMAIL_EINVAL;
    for (len = 0; len <= 254 && addr[len]; len++) {}
    if (len == 0) return kind == TLSMAIL__ADDR_MAIL ? 0 : TLSMAIL_EINVAL;
    /* 4.5.3.1.3: a path of at most 256 octets, "<>" included. So the domain
       is always within its 255 (4.5.3.1.2). */
    if (len > 254) return TLSMAIL_EINVAL;
    if (kind == TLSMAIL__ADDR_RCPT && tlsmail__ieq(addr, "Postmaster")) return 0;
    at = tlsmail__local_part(s, len);
    /* 4.5.3.1.1: a local part of at most 64 octets */
    if (at == 0 || at > 64 || at == len || s[at] != '@') return TLSMAIL_EINVAL;
    s += at + 1;
    len -= at + 1;
    if (len > 0 && s[0] == '[') return tlsmail__address_literal(s, len) ? 0 : TLSMAIL_EINVAL;
    return tlsmail__domain(s, len) ? 0 : TLSMAIL_EINVAL;
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

/* An IP literal to the certificate check: "127.0.0.1." too. The trailing
   dot of an absolute name is dropped before the name goes to TLS, so it
   would pass as a name, go out as SNI and be matched against a CN. */
TLSMAIL__PRIVATE int tlsmail__is_ip_name(const char *host) {
    char ip[64];
    size_t n = host ? strlen(host) : 0;
    if (n < 2 || n > sizeof ip || host[n - 1] != '.') return tlsmail__is_ip_literal(host);
    memcpy(ip, host, n - 1);
    ip[n - 1] = '\0';
    return tlsmail__is_ip_literal(ip);
}

/* A name to dial and to check the certificate against: labels of 1 to 63
   letters, digits, '-' or '_' (RFC 1123 2.1; '_' for the internal names
   resolvers return anyway), 253 octets at most, one trailing '.' allowed
   (RFC 1034 3.1's absolute form). An empty label ("a..b", ".a") would only
   fail later, after the name went out in the ClientHello. International
   names go as their A-labels ("xn--..."). */
TLSMAIL__PRIVATE int tlsmail__host_name_ok(const char *host) {
    size_t i, label = 0, n = strlen(host);
    if (n && host[n - 1] == '.') n--;
    if (n == 0 || n > 253) return 0;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)host[i];
        if (ch == '.') {
            if (label == 0) return 0;
            label = 0;
        } else if (tlsmail__isalnum(ch) || ch == '-' || ch == '_') {
            if (++label > 63) return 0;
        } else {
            return 0;
        }
    }
    return label > 0;
}

/* Has a byte outside ASCII: the address needs SMTPUTF8 (RFC 6531). */
TLSMAIL__PRIVATE int tlsmail__is_8bit(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 1;
    return 0;
}

TLSMAIL_DEF int tlsmail_check_address(const char *addr) { return tlsmail__check_mailbox(addr, 0); }

/* ==== [tlsmail:transport] sockets with bounded waits, or the caller's I/O ==== */

/* The sockets come in two kinds, each as whole functions: POSIX (poll,
   errno) and Winsock (select, WSAGetLastError). What they share follows
   them: the wait bound, resolution in a thread of its own, the address
   list and the dialling loop. */

#ifndef TLSMAIL_NO_SOCKETS
/* Shared by both kinds of sockets; defined after them. */
TLSMAIL__PRIVATE long long tlsmail__wait_end(const tlsmail_client *c);
#endif

#if !defined(TLSMAIL_NO_SOCKETS) && defined(_WIN32)

/* ---- Winsock ------------------------------------------------------------- */

#define TLSMAIL__SYSE(name) WSA##name /* Winsock's own codes for errno's */

/* GetTickCount64: monotonic milliseconds (the ~16 ms tick is plenty for
   waits of seconds). */
TLSMAIL__PRIVATE long long tlsmail__now_ms(void) { return (long long)GetTickCount64(); }

/* Winsock needs a WSAStartup before any other call and counts them per
   process. Each socket of ours holds one, taken before the lookup and
   given back when it closes (a lookup still running in its thread holds
   its own): no state of ours, and a caller's own WSAStartup, if any, is
   neither needed nor disturbed. */
TLSMAIL__PRIVATE int tlsmail__net_start(tlsmail_client *c) {
    WSADATA d;
    int e = WSAStartup(MAKEWORD(2, 2), &d);
    if (e != 0) {
        c->sys_err = e;
        return TLSMAIL_ECONNECT;
    }
    if (LOBYTE(d.wVersion) != 2) {
        (void)WSACleanup();
        c->sys_err = WSAVERNOTSUPPORTED;
        return TLSMAIL_ECONNECT;
    }
    return 0;
}

TLSMAIL__PRIVATE void tlsmail__net_stop(void) { (void)WSACleanup(); }

/* select() until s is readable (writing 0) or writable (writing 1), or
   end passes. A failed non-blocking connect shows only in the except set,
   so writes watch that too. select, not WSAPoll: WSAPoll did not report a
   failed connect before Windows 10 2004, and one socket fits any fd_set. */
TLSMAIL__PRIVATE int tlsmail__wait_socket(SOCKET s, int writing, long long end) {
    for (;;) {
        fd_set rd, wr, ex;
        struct timeval tv, *tvp = NULL;
        int r;
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        FD_ZERO(&ex);
        if (writing) {
            FD_SET(s, &wr);
            FD_SET(s, &ex);
        } else {
            FD_SET(s, &rd);
        }
        if (end >= 0) {
            long long left = end - tlsmail__now_ms();
            if (left <= 0) return TLSMAIL_ETIMEOUT;
            if (left > 86400000) left = 86400000; /* tv_sec is a 32-bit long */
            tv.tv_sec = (long)(left / 1000);
            tv.tv_usec = (long)(left % 1000 * 1000);
            tvp = &tv;
        }
        r = select(0, &rd, &wr, &ex, tvp);
        if (r > 0) return 0;
        /* r == 0: the clock, checked above, decides (select may wake a
           tick early, or the wait was capped at a day) */
        if (r < 0 && WSAGetLastError() != WSAEINTR) return TLSMAIL_EIO;
    }
}

TLSMAIL__PRIVATE int tlsmail__sock_read(void *ctx, unsigned char *buf, size_t len) {
    tlsmail_client *c = (tlsmail_client *)ctx;
    SOCKET s = (SOCKET)c->fd;
    long long end = tlsmail__wait_end(c);
    int want = len > INT_MAX ? INT_MAX : (int)len;
    for (;;) {
        int n, e, err = tlsmail__wait_socket(s, 0, end);
        if (err) return err;
        n = recv(s, (char *)buf, want, 0);
        if (n >= 0) return n;
        e = WSAGetLastError();
        if (e == WSAEWOULDBLOCK || e == WSAEINTR) continue;
        c->sys_err = e;
        return (e == WSAECONNRESET || e == WSAECONNABORTED) ? TLSMAIL_ECLOSED : TLSMAIL_EIO;
    }
}

/* No SIGPIPE on Windows: a closed peer is just an error here. */
TLSMAIL__PRIVATE int tlsmail__sock_write(void *ctx, const unsigned char *buf, size_t len) {
    tlsmail_client *c = (tlsmail_client *)ctx;
    SOCKET s = (SOCKET)c->fd;
    long long end = tlsmail__wait_end(c);
    int want = len > INT_MAX ? INT_MAX : (int)len;
    for (;;) {
        int n, e, err = tlsmail__wait_socket(s, 1, end);
        if (err) return err;
        n = send(s, (const char *)buf, want, 0);
        if (n > 0) return n;
        e = n < 0 ? WSAGetLastError() : 0; /* 0 octets taken: nothing to wait for */
        if (e == WSAEWOULDBLOCK || e == WSAEINTR) continue;
        c->sys_err = e;
        return (e == WSAECONNRESET || e == WSAECONNABORTED || e == WSAESHUTDOWN) ? TLSMAIL_ECLOSED
                                                                             : TLSMAIL_EIO;
    }
}

TLSMAIL__PRIVATE void tlsmail__socket_close(tlsmail__socket fd) { (void)closesocket((SOCKET)fd); }

/* One address: non-blocking connect bounded by the timeout. */
TLSMAIL__PRIVATE int tlsmail__connect_one(tlsmail_client *c, const struct addrinfo *ai) {
    SOCKET s;
    u_long nonblocking = 1;
    BOOL one = TRUE;
    int err, soerr = 0, sl = (int)sizeof soerr;
    s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (s == INVALID_SOCKET) {
        c->sys_err = WSAGetLastError();
        return TLSMAIL_ECONNECT;
    }
    /* Not inherited by processes the caller starts: FD_CLOEXEC's analogue. */
    (void)SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
    /* FIONBIO is an unsigned constant past LONG_MAX; the parameter a long */
    if (ioctlsocket(s, (long)FIONBIO, &nonblocking) != 0) goto fail;
    /* As on POSIX: no Nagle delay between a flight's records. */
    (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, (int)sizeof one);
    if (connect(s, ai->ai_addr, (int)ai->ai_addrlen) == 0) goto done;
    if (WSAGetLastError() != WSAEWOULDBLOCK) goto fail;
    err = tlsmail__wait_socket(s, 1, tlsmail__wait_end(c));
    if (err) {
        (void)closesocket(s);
        return err;
    }
    if (getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&soerr, &sl) != 0) goto fail;
    if (soerr) {
        WSASetLastError(soerr);
        goto fail;
    }
done:
    c->fd = (tlsmail__socket)s;
    return 0;
fail:
    c->sys_err = WSAGetLastError();
    (void)closesocket(s);
    return TLSMAIL_ECONNECT;
}

/* Nothing listens there: the one connect failure after which
   TLSMAIL_SECURITY_TLS_OR_STARTTLS may try the STARTTLS port. */
TLSMAIL__PRIVATE int tlsmail__refused(const tlsmail_client *c) {
    return c->sys_err == WSAECONNREFUSED;
}

/* No TCP Fast Open here (cfg->tcp_fastopen is ignored): every connect
   completes in tlsmail__connect_one. */
TLSMAIL__PRIVATE int tlsmail__connect_failed(const tlsmail_client *c) {
    (void)c;
    return 0;
}

/* Has the server sent something (or closed) that we have not read? */
TLSMAIL__PRIVATE int tlsmail__sock_readable(const tlsmail_client *c) {
    fd_set rd;
    struct timeval tv;
    if (c->fd == -1) return 0;
    FD_ZERO(&rd);
    FD_SET((SOCKET)c->fd, &rd);
    tv.tv_sec = 0;
    tv.tv_usec = 0;
    return select(0, &rd, NULL, NULL, &tv) != 0;
}

#elif !defined(TLSMAIL_NO_SOCKETS)

/* ---- POSIX sockets --------------------------------------------------------- */

#define TLSMAIL__SYSE(name) name

#ifdef MSG_NOSIGNAL
#define TLSMAIL__SEND_FLAGS MSG_NOSIGNAL
#else
#define TLSMAIL__SEND_FLAGS 0 /* SO_NOSIGPIPE is set on the socket instead */
#endif
/* A record with more of the same write behind it: the kernel may hold a
   part-filled segment for the next record instead of sending it alone
   (Linux; elsewhere 0). The last record of a write, and every command
   before a reply, go without it, so nothing waits that a reply needs. */
#ifdef MSG_MORE
#define TLSMAIL__SEND_MORE MSG_MORE
#else
#define TLSMAIL__SEND_MORE 0
#endif

TLSMAIL__PRIVATE long long tlsmail__now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Nothing to start: the sockets API is always there. */
TLSMAIL__PRIVATE int tlsmail__net_start(tlsmail_client *c) {
    (void)c;
    return 0;
}

TLSMAIL__PRIVATE void tlsmail__net_stop(void) {}

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
        ssize_t n = send(c->fd, buf, len, TLSMAIL__SEND_FLAGS | (c->more ? TLSMAIL__SEND_MORE : 0));
        int err;
        if (n > 0) return (int)n;
        /* EINPROGRESS: a deferred connect (TCP Fast Open) is still under
           way and took none of buf into its SYN. */
        if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK &&
                       !(c->fastopen && errno == EINPROGRESS))) {
            c->sys_err = n == 0 ? 0 : errno;
            return (n < 0 && (errno == EPIPE || errno == ECONNRESET)) ? TLSMAIL_ECLOSED : TLSMAIL_EIO;
        }
        if (end == -2) end = tlsmail__wait_end(c);
        if ((err = tlsmail__poll(c->fd, POLLOUT, end)) != 0) return err;
    }
}

TLSMAIL__PRIVATE void tlsmail__socket_close(tlsmail__socket fd) { (void)close(fd); }

/* cfg->tcp_fastopen: 1 when fd's connect may be deferred to its first
   write (TCP_FASTOPEN_CONNECT), which then carries the ClientHello. Never
   for STARTTLS: we would read the greeting first, and no write would ever
   send the SYN. */
TLSMAIL__PRIVATE int tlsmail__fastopen_on(const tlsmail_client *c, int fd) {
#ifdef TCP_FASTOPEN_CONNECT
    int one = 1;
    return c->cfg->tcp_fastopen && !c->starttls &&
           setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof one) == 0;
#else
    (void)c;
    (void)fd;
    return 0;
#endif
}

/* After a failure before the server's first octet: did TCP's own
   handshake, deferred by TCP Fast Open, never complete? Then the dial
   failed at connecting, as it would have without Fast Open: refused,
   unreachable, or no answer to the SYN within the timeout. */
TLSMAIL__PRIVATE int tlsmail__connect_failed(const tlsmail_client *c) {
    struct sockaddr_storage peer;
    socklen_t n = sizeof peer;
    if (!c->fastopen || c->nfirst || c->fd < 0) return 0;
    /* errors TCP reports only for a SYN */
    if (c->sys_err == ECONNREFUSED || c->sys_err == EHOSTUNREACH || c->sys_err == ENETUNREACH ||
        c->sys_err == ETIMEDOUT)
        return 1;
    /* our own timeout: still no peer while the SYN goes unanswered */
    return c->sys_err == 0 && getpeername(c->fd, (struct sockaddr *)&peer, &n) != 0 && errno == ENOTCONN;
}

/* One address: non-blocking connect bounded by the timeout. */
TLSMAIL__PRIVATE int tlsmail__connect_one(tlsmail_client *c, const struct addrinfo *ai) {
    int fd, one = 1, err, soerr = 0, fastopen, deferred = 0;
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
    fastopen = tlsmail__fastopen_on(c, fd);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        deferred = fastopen; /* with a cookie: the SYN waits for our first write */
        goto done;
    }
    if (errno != EINPROGRESS && errno != EINTR) goto fail; /* no cookie: a SYN asking for one */
    err = tlsmail__poll(fd, POLLOUT, tlsmail__wait_end(c));
    if (err) { close(fd); return err; }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) goto fail;
    if (soerr) { errno = soerr; goto fail; }
done:
    c->fd = fd;
    c->fastopen = deferred;
    return 0;
fail:
    c->sys_err = errno;
    close(fd);
    return TLSMAIL_ECONNECT;
}

/* Nothing listens there: the one connect failure after which
   TLSMAIL_SECURITY_TLS_OR_STARTTLS may try the STARTTLS port. */
TLSMAIL__PRIVATE int tlsmail__refused(const tlsmail_client *c) { return c->sys_err == ECONNREFUSED; }

/* Has the server sent something (or closed) that we have not read? */
TLSMAIL__PRIVATE int tlsmail__sock_readable(const tlsmail_client *c) {
    struct pollfd p;
    if (c->fd < 0) return 0;
    p.fd = c->fd;
    p.events = POLLIN;
    p.revents = 0;
    return poll(&p, 1, 0) != 0;
}

#endif /* the two kinds of sockets */

#ifndef TLSMAIL_NO_SOCKETS

/* ---- what both kinds of sockets share -------------------------------------- */

/* The end of the wait starting now: the per-operation timeout, cut short by
   the session deadline. -1: no limit. */
TLSMAIL__PRIVATE long long tlsmail__wait_end(const tlsmail_client *c) {
    long long end = c->timeout_ms < 0 ? -1 : tlsmail__now_ms() + c->timeout_ms;
    if (c->deadline > 0 && (end < 0 || c->deadline < end)) end = c->deadline;
    return end;
}

/* The network's usual failures in words, for tlsmail_describe: the same
   words on every system, and safe from any thread, which strerror() is not
   promised to be. NULL for the rest, which go by number. */
TLSMAIL__PRIVATE const char *tlsmail__sys_text(int e) {
    static const struct { int e; const char *text; } known[] = {
        { TLSMAIL__SYSE(ECONNREFUSED), "connection refused" },
        { TLSMAIL__SYSE(ECONNRESET), "connection reset by the peer" },
        { TLSMAIL__SYSE(ECONNABORTED), "connection aborted" },
        { TLSMAIL__SYSE(ETIMEDOUT), "connection timed out" },
        { TLSMAIL__SYSE(EHOSTUNREACH), "no route to host" },
        { TLSMAIL__SYSE(ENETUNREACH), "network unreachable" },
        { TLSMAIL__SYSE(ENETDOWN), "network is down" },
        { TLSMAIL__SYSE(EADDRNOTAVAIL), "address not available" },
        { TLSMAIL__SYSE(EAFNOSUPPORT), "address family not supported" },
        { TLSMAIL__SYSE(EACCES), "permission denied" },
#ifndef _WIN32
        { EPIPE, "broken pipe" },
        { EPERM, "operation not permitted (a firewall rule?)" },
#endif
    };
    size_t i;
    for (i = 0; i < sizeof known / sizeof known[0]; i++)
        if (known[i].e == e) return known[i].text;
    return NULL;
}

TLSMAIL__PRIVATE void tlsmail__sock_close(void *ctx) {
    tlsmail_client *c = (tlsmail_client *)ctx;
    if (c->fd != -1) {
        tlsmail__socket_close(c->fd);
        tlsmail__net_stop(); /* the socket's hold on Winsock */
    }
    c->fd = -1;
}

/* getaddrinfo in the calling thread: for numeric addresses, which need no
   network, and wherever no thread can be had. The system resolver's own
   timeouts (resolv.conf) are then the only bound. */
TLSMAIL__PRIVATE int tlsmail__resolve_here(tlsmail_client *c, const char *host, const char *serv,
                                           const struct addrinfo *hints, struct addrinfo **res) {
    int gai = getaddrinfo(host, serv, hints, res);
    if (gai == 0 && *res) return 0;
    if (gai == 0) gai = EAI_NONAME;
    *res = NULL;
    c->sys_err = gai;
    return TLSMAIL_ERESOLVE;
}

#endif /* !TLSMAIL_NO_SOCKETS */

/* ---- name resolution bounded by the wait: a thread per lookup -------------- */

/* getaddrinfo can't be cancelled or given a timeout portably, so it runs in
   a thread of its own while the caller waits at most until the end of the
   wait (the per-wait timeout, cut short by the deadline). A caller that
   stops waiting leaves the thread to finish on its own: the lookup is a
   heap block held by both, and whoever lets go last frees it, so the
   thread never touches the caller's memory or memory already freed.
   (getaddrinfo_a is glibc's alone and runs a thread the same way.) */

#if !defined(TLSMAIL_NO_SOCKETS) && !defined(TLSMAIL_NO_THREADS) && defined(_WIN32)

typedef struct tlsmail__gai {
    LONG volatile refs;          /* 2 while both hold it; the last frees it */
    HANDLE done;                 /* manual-reset event: the answer is in */
    int gai;                     /* getaddrinfo's result ... */
    struct addrinfo *res;        /* ... and its list, until the caller takes it */
    struct addrinfo hints;
    char serv[8];
    char host[256];
} tlsmail__gai;

/* Interlocked operations are full barriers: the last holder sees all the
   other's writes. The lookup holds a Winsock reference of its own, so a
   caller that closed everything can't unload Winsock under the thread. */
TLSMAIL__PRIVATE void tlsmail__gai_release(tlsmail__gai *q) {
    if (InterlockedDecrement(&q->refs) != 0) return;
    if (q->res) freeaddrinfo(q->res);
    (void)CloseHandle(q->done);
    TLSMAIL_FREE(NULL, q);
    tlsmail__net_stop();
}

TLSMAIL__PRIVATE unsigned __stdcall tlsmail__gai_run(void *arg) {
    tlsmail__gai *q = (tlsmail__gai *)arg;
    q->gai = getaddrinfo(q->host, q->serv, &q->hints, &q->res);
    (void)SetEvent(q->done);
    tlsmail__gai_release(q);
    return 0;
}

/* The lookup on its way in its thread, or NULL when there is no memory,
   event or thread for it. _beginthreadex, not CreateThread: the thread
   calls the C runtime (free). */
TLSMAIL__PRIVATE tlsmail__gai *tlsmail__gai_start(tlsmail_client *c, const char *host,
                                                        const char *serv,
                                                        const struct addrinfo *hints) {
    tlsmail__gai *q;
    uintptr_t t;
    if (strlen(host) >= sizeof q->host || strlen(serv) >= sizeof q->serv) return NULL;
    if ((q = (tlsmail__gai *)TLSMAIL_MALLOC(NULL, sizeof *q)) == NULL) return NULL;
    memset(q, 0, sizeof *q);
    q->done = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (!q->done) {
        TLSMAIL_FREE(NULL, q);
        return NULL;
    }
    if (tlsmail__net_start(c) != 0) {
        (void)CloseHandle(q->done);
        TLSMAIL_FREE(NULL, q);
        return NULL;
    }
    q->refs = 2;
    q->hints = *hints;
    memcpy(q->host, host, strlen(host) + 1);
    memcpy(q->serv, serv, strlen(serv) + 1);
    t = _beginthreadex(NULL, 0, tlsmail__gai_run, q, 0, NULL);
    if (!t) {
        q->refs = 1;
        tlsmail__gai_release(q);
        return NULL;
    }
    (void)CloseHandle((HANDLE)t);
    return q;
}

/* Waits for q's answer until end; 1 if it came (q->gai and q->res are
   then the thread's, seen through the event). */
TLSMAIL__PRIVATE int tlsmail__gai_wait(tlsmail__gai *q, long long end) {
    for (;;) {
        long long left = end - tlsmail__now_ms();
        DWORD ms = left <= 0 ? 0 : left > 86400000 ? 86400000 : (DWORD)left;
        if (WaitForSingleObject(q->done, ms) == WAIT_OBJECT_0) return 1;
        if (left <= 86400000) return 0;
    }
}

TLSMAIL__PRIVATE int tlsmail__resolve(tlsmail_client *c, const char *host, const char *serv,
                                      const struct addrinfo *hints, struct addrinfo **res) {
    long long end = tlsmail__wait_end(c);
    tlsmail__gai *q = end < 0 ? NULL : tlsmail__gai_start(c, host, serv, hints);
    int gai = EAI_AGAIN; /* what the resolver says when it gives up itself */
    if (!q) return tlsmail__resolve_here(c, host, serv, hints, res);
    *res = NULL;
    if (tlsmail__gai_wait(q, end)) {
        gai = q->gai;
        *res = q->res;
        q->res = NULL;
    }
    tlsmail__gai_release(q);
    if (gai == 0 && *res) return 0;
    if (*res) freeaddrinfo(*res);
    *res = NULL;
    c->sys_err = gai ? gai : EAI_NONAME;
    return TLSMAIL_ERESOLVE;
}

#elif !defined(TLSMAIL_NO_SOCKETS) && !defined(TLSMAIL_NO_THREADS)

typedef struct tlsmail__gai {
    pthread_mutex_t mu;          /* guards refs, done, gai and res */
    int refs;                    /* 2 while both hold it; the last frees it */
    int done;                    /* the answer is in */
    int gai;                     /* getaddrinfo's result ... */
    struct addrinfo *res;        /* ... and its list, until the caller takes it */
    int wake[2];                 /* a pipe: one byte when done, so the caller
                                    can wait with poll on the monotonic clock */
    struct addrinfo hints;
    char serv[8];
    char host[256];
} tlsmail__gai;

TLSMAIL__PRIVATE void tlsmail__gai_free(tlsmail__gai *q) {
    if (q->res) freeaddrinfo(q->res);
    (void)close(q->wake[0]);
    (void)close(q->wake[1]);
    (void)pthread_mutex_destroy(&q->mu);
    TLSMAIL_FREE(NULL, q);
}

TLSMAIL__PRIVATE void tlsmail__gai_release(tlsmail__gai *q) {
    int last;
    (void)pthread_mutex_lock(&q->mu);
    last = --q->refs == 0;
    (void)pthread_mutex_unlock(&q->mu);
    if (last) tlsmail__gai_free(q);
}

TLSMAIL__PRIVATE void *tlsmail__gai_run(void *arg) {
    tlsmail__gai *q = (tlsmail__gai *)arg;
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(q->host, q->serv, &q->hints, &res);
    (void)pthread_mutex_lock(&q->mu);
    q->gai = gai;
    q->res = gai == 0 ? res : NULL;
    q->done = 1;
    (void)pthread_mutex_unlock(&q->mu);
    /* An empty pipe always takes one byte; if the caller left, nobody reads. */
    if (write(q->wake[1], "", 1) < 0) {}
    tlsmail__gai_release(q);
    return NULL;
}

/* The thread, detached, with every signal blocked: the caller's signals
   stay with the caller's threads, where its handlers expect them. */
TLSMAIL__PRIVATE int tlsmail__gai_thread(tlsmail__gai *q) {
    pthread_attr_t attr;
    pthread_t t;
    sigset_t all, old;
    int err;
    if (pthread_attr_init(&attr) != 0) return -1;
    (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    (void)sigfillset(&all);
    (void)pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&t, &attr, tlsmail__gai_run, q);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    (void)pthread_attr_destroy(&attr);
    return err == 0 ? 0 : -1;
}

/* The lookup on its way in its thread, or NULL when there is no memory,
   pipe or thread for it. */
TLSMAIL__PRIVATE tlsmail__gai *tlsmail__gai_start(tlsmail_client *c, const char *host,
                                                        const char *serv,
                                                        const struct addrinfo *hints) {
    tlsmail__gai *q;
    (void)c;
    if (strlen(host) >= sizeof q->host || strlen(serv) >= sizeof q->serv) return NULL;
    if ((q = (tlsmail__gai *)TLSMAIL_MALLOC(NULL, sizeof *q)) == NULL) return NULL;
    memset(q, 0, sizeof *q);
    if (pipe(q->wake) != 0) {
        TLSMAIL_FREE(NULL, q);
        return NULL;
    }
    (void)fcntl(q->wake[0], F_SETFD, FD_CLOEXEC);
    (void)fcntl(q->wake[1], F_SETFD, FD_CLOEXEC);
    if (pthread_mutex_init(&q->mu, NULL) != 0) {
        (void)close(q->wake[0]);
        (void)close(q->wake[1]);
        TLSMAIL_FREE(NULL, q);
        return NULL;
    }
    q->refs = 2;
    q->hints = *hints;
    memcpy(q->host, host, strlen(host) + 1);
    memcpy(q->serv, serv, strlen(serv) + 1);
    if (tlsmail__gai_thread(q) != 0) {
        tlsmail__gai_free(q);
        return NULL;
    }
    return q;
}

TLSMAIL__PRIVATE int tlsmail__resolve(tlsmail_client *c, const char *host, const char *serv,
                                      const struct addrinfo *hints, struct addrinfo **res) {
    long long end = tlsmail__wait_end(c);
    tlsmail__gai *q = end < 0 ? NULL : tlsmail__gai_start(c, host, serv, hints);
    int gai = EAI_AGAIN; /* what the resolver says when it gives up itself */
    if (!q) return tlsmail__resolve_here(c, host, serv, hints, res);
    /* A timeout or a poll failure both end the wait; the answer decides. */
    (void)tlsmail__poll(q->wake[0], POLLIN, end);
    (void)pthread_mutex_lock(&q->mu);
    if (q->done) {
        gai = q->gai;
        *res = q->res;
        q->res = NULL;
    }
    (void)pthread_mutex_unlock(&q->mu);
    tlsmail__gai_release(q);
    if (gai == 0 && *res) return 0;
    *res = NULL;
    c->sys_err = gai ? gai : EAI_NONAME;
    return TLSMAIL_ERESOLVE;
}

#elif !defined(TLSMAIL_NO_SOCKETS) /* TLSMAIL_NO_THREADS */

/* No threads: the system resolver's own timeouts are the bound. */
TLSMAIL__PRIVATE int tlsmail__resolve(tlsmail_client *c, const char *host, const char *serv,
                                      const struct addrinfo *hints, struct addrinfo **res) {
    return tlsmail__resolve_here(c, host, serv, hints, res);
}

#endif /* name resolution */

#ifndef TLSMAIL_NO_SOCKETS

/* ---- dialling: every address until one connects ---------------------------- */

/* Each address of res in its order (getaddrinfo's: IPv6 and IPv4 as the
   system prefers them) until one connects or the deadline passes. */
TLSMAIL__PRIVATE int tlsmail__dial_list(tlsmail_client *c, const struct addrinfo *res) {
    const struct addrinfo *ai;
    int err = TLSMAIL_ECONNECT;
    for (ai = res; ai; ai = ai->ai_next) {
        err = tlsmail__connect_one(c, ai);
        if (err == 0) break;
        if (c->deadline > 0 && tlsmail__now_ms() >= c->deadline) break;
    }
    return err;
}

TLSMAIL__PRIVATE void tlsmail__tcp_hints(struct addrinfo *hints, int numeric) {
    memset(hints, 0, sizeof *hints);
    hints->ai_family = AF_UNSPEC;
    hints->ai_socktype = SOCK_STREAM;
    hints->ai_flags = AI_NUMERICSERV | (numeric ? AI_NUMERICHOST : 0);
}

/* host by name: resolved within the wait (an IP literal needs no lookup). */
TLSMAIL__PRIVATE int tlsmail__dial_host(tlsmail_client *c, const char *host, const char *serv) {
    struct addrinfo hints, *res = NULL;
    int numeric = tlsmail__is_ip_literal(host), err;
    tlsmail__tcp_hints(&hints, numeric);
    err = numeric ? tlsmail__resolve_here(c, host, serv, &hints, &res)
                  : tlsmail__resolve(c, host, serv, &hints, &res);
    if (err) return err;
    err = tlsmail__dial_list(c, res);
    freeaddrinfo(res);
    return err;
}

/* The longest entry of an address list: an IPv6 address with a zone. */
enum { TLSMAIL__ADDR_MAX = 64 };

/* The entry of an address list at *p, into out without blanks or
   brackets; *p moves past it and its comma. 1: an entry; 0: the end of
   the list; -1: an empty or overlong entry. */
TLSMAIL__PRIVATE int tlsmail__address_entry(const char **p, char *out) {
    const char *s = *p, *e;
    size_t n;
    while (*s == ' ' || *s == '\t') s++;
    if (!*s) return 0;
    for (e = s; *e && *e != ','; e++) {}
    *p = *e ? e + 1 : e;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    if (e - s >= 2 && *s == '[' && e[-1] == ']') {
        s++;
        e--;
    }
    n = (size_t)(e - s);
    if (n == 0 || n >= TLSMAIL__ADDR_MAX) return -1;
    memcpy(out, s, n);
    out[n] = 0;
    return 1;
}

/* cfg->addresses: every entry must be a numeric address before the first
   is dialled; then each in turn until one connects. */
TLSMAIL__PRIVATE int tlsmail__dial_addresses(tlsmail_client *c, const char *list, const char *serv) {
    char a[TLSMAIL__ADDR_MAX];
    const char *p = list;
    struct addrinfo hints, *res;
    int k, n = 0, err = TLSMAIL_EINVAL;
    tlsmail__tcp_hints(&hints, 1);
    while ((k = tlsmail__address_entry(&p, a)) != 0) {
        if (k < 0 || tlsmail__resolve_here(c, a, serv, &hints, &res) != 0) {
            c->sys_err = 0;
            return TLSMAIL_EINVAL;
        }
        freeaddrinfo(res);
        n++;
    }
    if (n == 0) return TLSMAIL_EINVAL;
    for (p = list; tlsmail__address_entry(&p, a) > 0;) {
        if (tlsmail__resolve_here(c, a, serv, &hints, &res) != 0) return TLSMAIL_ERESOLVE;
        err = tlsmail__dial_list(c, res);
        freeaddrinfo(res);
        if (err == 0 || (c->deadline > 0 && tlsmail__now_ms() >= c->deadline)) break;
    }
    return err;
}

/* A socket of ours to host (or to cfg->addresses), with the I/O callbacks
   that bound every wait. */
TLSMAIL__PRIVATE int tlsmail__connect(tlsmail_client *c, const char *host, unsigned port) {
    char serv[8];
    int err = tlsmail__net_start(c);
    if (err) return err;
    (void)snprintf(serv, sizeof serv, "%u", port); /* <= 65535: always fits */
    err = c->cfg->addresses ? tlsmail__dial_addresses(c, c->cfg->addresses, serv)
                            : tlsmail__dial_host(c, host, serv);
    if (err) {
        tlsmail__net_stop();
        return err;
    }
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

/* Our sockets, or the caller's transport; addresses are only for ours. */
TLSMAIL__PRIVATE int tlsmail__have_transport(const tlsmail_config *cfg) {
    return !(cfg->io && cfg->addresses);
}

/* The session deadline starts now; ms < 0: none, 0: the default. */
/* Milliseconds on a clock that only moves forward. */
TLSMAIL__PRIVATE long long tlsmail__clock_ms(const tlsmail_client *c) {
    (void)c;
    return tlsmail__now_ms();
}

/* Seconds since 1970 (time() is that on every POSIX system and on
   Windows). */
TLSMAIL__PRIVATE int tlsmail__unix_time(long long *t) {
    *t = (long long)time(NULL);
    return 0;
}

#else /* TLSMAIL_NO_SOCKETS: the caller's transport is the only one */

TLSMAIL__PRIVATE int tlsmail__open_transport(tlsmail_client *c, unsigned port) {
    c->port = port;
    return c->cfg->io ? 0 : TLSMAIL_EINVAL;
}

/* Nothing dials cfg->addresses here. */
TLSMAIL__PRIVATE int tlsmail__have_transport(const tlsmail_config *cfg) {
    return cfg->io != NULL && !cfg->addresses;
}

TLSMAIL__PRIVATE int tlsmail__refused(const tlsmail_client *c) {
    (void)c;
    return 0;
}

TLSMAIL__PRIVATE int tlsmail__connect_failed(const tlsmail_client *c) {
    (void)c;
    return 0;
}

TLSMAIL__PRIVATE int tlsmail__sock_readable(const tlsmail_client *c) {
    (void)c;
    return 0;
}

/* The caller's clock, if it gave one (-1: none; then only the caller's
   transport bounds a session). */
TLSMAIL__PRIVATE long long tlsmail__clock_ms(const tlsmail_client *c) {
    return c->cfg && c->cfg->clock ? c->cfg->clock(c->cfg->clock_ctx) : -1;
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

/* The session deadline starts now; ms < 0: none, 0: the default. */
TLSMAIL__PRIVATE void tlsmail__start_deadline(tlsmail_client *c, int ms) {
    long long now = ms >= 0 ? tlsmail__clock_ms(c) : -1;
    if (now >= 0) c->deadline = now + (ms ? ms : TLSMAIL_DEFAULT_DEADLINE_MS);
}

/* Every call into the transport: past the deadline, none (our sockets
   bound their own waits too; a caller's transport only between calls). */
TLSMAIL__PRIVATE int tlsmail__io_read(tlsmail_client *c, unsigned char *buf, size_t len) {
    if (c->deadline > 0 && tlsmail__clock_ms(c) >= c->deadline) return TLSMAIL_ETIMEOUT;
    return tlsmail__io_checked(c->io.read(c->io.ctx, buf, len), len);
}

TLSMAIL__PRIVATE int tlsmail__io_write(tlsmail_client *c, const unsigned char *buf, size_t len) {
    if (c->deadline > 0 && tlsmail__clock_ms(c) >= c->deadline) return TLSMAIL_ETIMEOUT;
    return tlsmail__io_checked(c->io.write(c->io.ctx, buf, len), len);
}

/* Write all of buf through the transport (plaintext: only the STARTTLS
   prelude and the TLS records themselves go this way). */
TLSMAIL__PRIVATE int tlsmail__io_write_all(tlsmail_client *c, const unsigned char *buf, size_t len) {
    while (len > 0) {
        int n = tlsmail__io_write(c, buf, len);
        if (n <= 0) return n < 0 ? n : TLSMAIL_EIO;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ==== [tlsmail:trust] trust anchors from PEM, the caller, or a pinned key ==== */

/* A tlsmail_trust names where anchors come from; it loads little. The
   anchors of PEM in memory and the caller's own are held; files and
   directories (and the system store) are only noted, and searched during
   each handshake for the names the server's chain asks for (the policy
   engine in [x509] asks as the certificates stream past): a bundle, and
   on Windows the ROOT store, is scanned by subject without decoding keys,
   a hashed directory is opened by OpenSSL's subject-hash names. Only the
   anchors found are decoded. */
enum { TLSMAIL__TRUST_DEFAULT = 0, TLSMAIL__TRUST_SOURCES, TLSMAIL__TRUST_USER, TLSMAIL__TRUST_PIN };

/* Largest certificate a trust source may hold: CA certificates are 1 to 2
   KB (Mozilla's largest root is 2007 octets); this bounds the one buffer a
   lookup needs, and a larger one is skipped. */
enum { TLSMAIL__CERT_MAX = 4096 };

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

/* The policy's RSA floor holds for anchors too (BearSSL checks only the
   chain's keys): a 1024-bit root anchors nothing. Counted in octets
   without leading zeros, as BearSSL counts. */
TLSMAIL__PRIVATE int tlsmail__key_usable(const br_x509_pkey *pk) {
    size_t z = 0;
    if (pk->key_type == BR_KEYTYPE_EC) return 1;
    if (pk->key_type != BR_KEYTYPE_RSA) return 0;
    while (z < pk->key.rsa.nlen && pk->key.rsa.n[z] == 0) z++;
    return pk->key.rsa.nlen - z >= 256;
}

TLSMAIL__PRIVATE int tlsmail__same_key(const br_x509_pkey *a, const br_x509_pkey *b) {
    if (a->key_type != b->key_type) return 0;
    if (a->key_type == BR_KEYTYPE_RSA)
        return a->key.rsa.nlen == b->key.rsa.nlen && memcmp(a->key.rsa.n, b->key.rsa.n, a->key.rsa.nlen) == 0 &&
               a->key.rsa.elen == b->key.rsa.elen && memcmp(a->key.rsa.e, b->key.rsa.e, a->key.rsa.elen) == 0;
    return a->key.ec.curve == b->key.ec.curve && a->key.ec.qlen == b->key.ec.qlen &&
           memcmp(a->key.ec.q, b->key.ec.q, a->key.ec.qlen) == 0;
}

/* An anchor of our own: DN and key copied into one allocation, which *mem
   gets (one free per anchor). 0, or TLSMAIL_ENOMEM. */
TLSMAIL__PRIVATE int tlsmail__anchor_make(void *actx, const unsigned char *dn, size_t dnlen,
                                          const br_x509_pkey *pk, int is_ca, br_x509_trust_anchor *ta,
                                          void **mem) {
    int rsa = pk->key_type == BR_KEYTYPE_RSA;
    size_t k1 = rsa ? pk->key.rsa.nlen : pk->key.ec.qlen, k2 = rsa ? pk->key.rsa.elen : 0;
    unsigned char *m = (unsigned char *)TLSMAIL_MALLOC(actx, dnlen + k1 + k2 + 1);
    if (!m) return TLSMAIL_ENOMEM;
    memset(ta, 0, sizeof *ta);
    memcpy(m, dn, dnlen);
    ta->dn.data = m;
    ta->dn.len = dnlen;
    ta->flags = is_ca ? BR_X509_TA_CA : 0;
    ta->pkey.key_type = pk->key_type;
    if (rsa) {
        memcpy(m + dnlen, pk->key.rsa.n, k1);
        memcpy(m + dnlen + k1, pk->key.rsa.e, k2);
        ta->pkey.key.rsa.n = m + dnlen;
        ta->pkey.key.rsa.nlen = k1;
        ta->pkey.key.rsa.e = m + dnlen + k1;
        ta->pkey.key.rsa.elen = k2;
    } else {
        memcpy(m + dnlen, pk->key.ec.q, k1);
        ta->pkey.key.ec.curve = pk->key.ec.curve;
        ta->pkey.key.ec.q = m + dnlen;
        ta->pkey.key.ec.qlen = k1;
    }
    *mem = m;
    return 0;
}

/* One certificate's DER decoded by BearSSL: its key, subject and CA flag. */
typedef struct tlsmail__certdec {
    br_x509_decoder_context dc;
    unsigned char dn[TLSMAIL__DN_MAX];
    size_t dnlen;
    int dn_over;
} tlsmail__certdec;

TLSMAIL__PRIVATE void tlsmail__certdec_dn(void *ctx, const void *buf, size_t len) {
    tlsmail__certdec *d = (tlsmail__certdec *)ctx;
    if (len > sizeof d->dn - d->dnlen) { d->dn_over = 1; return; }
    memcpy(d->dn + d->dnlen, buf, len);
    d->dnlen += len;
}

/* The certificate's key if it can anchor a chain (a key BearSSL knows,
   strong enough, the DER complete), else NULL. */
TLSMAIL__PRIVATE const br_x509_pkey *tlsmail__cert_decode(tlsmail__certdec *d, const unsigned char *der,
                                                          size_t len) {
    const br_x509_pkey *pk;
    d->dnlen = 0;
    d->dn_over = 0;
    br_x509_decoder_init(&d->dc, tlsmail__certdec_dn, d);
    if (tlsmail__x509_push(&d->dc, der, len) != 0 || br_x509_decoder_last_error(&d->dc) != 0 || d->dn_over)
        return NULL;
    pk = br_x509_decoder_get_pkey(&d->dc);
    return pk && tlsmail__key_usable(pk) ? pk : NULL;
}

/* An anchor must not narrow what it vouches for in ways nobody checks
   (nameConstraints), nor be kept from vouching for servers (an
   extendedKeyUsage without serverAuth): OpenSSL honours both in a root.
   Its pathLenConstraint and keyUsage are not read: RFC 5280 6.1.1 (d)
   takes only the anchor's name and key. */
TLSMAIL__PRIVATE int tlsmail__anchor_fit(const tlsmail__certwalk *cw) {
    return !cw->err && cw->done && !cw->dn_over && !cw->nc && cw->eku >= 0;
}

/* ---- anchors held by the trust: PEM in memory ------------------------------ */

/* Add the certificate in d to t's own anchors, unless an equal one is
   there (a system directory links each certificate under several names). */
TLSMAIL__PRIVATE int tlsmail__trust_add(tlsmail_trust *t, tlsmail__certdec *d) {
    const br_x509_pkey *pk = br_x509_decoder_get_pkey(&d->dc);
    size_t i;
    void *mem;
    int err;
    for (i = 0; i < t->count; i++)
        if (t->anchors[i].dn.len == d->dnlen && memcmp(t->anchors[i].dn.data, d->dn, d->dnlen) == 0 &&
            tlsmail__same_key(&t->anchors[i].pkey, pk))
            return 0;
    if (t->count == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 8;
        br_x509_trust_anchor *na;
        if (ncap > ((size_t)-1) / sizeof *na) return TLSMAIL_ENOMEM;
        na = (br_x509_trust_anchor *)TLSMAIL_MALLOC(t->alloc_ctx, ncap * sizeof *na);
        if (!na) return TLSMAIL_ENOMEM;
        if (t->count) memcpy(na, t->anchors, t->count * sizeof *na);
        if (t->anchors) TLSMAIL_FREE(t->alloc_ctx, t->anchors);
        t->anchors = na;
        t->cap = ncap;
    }
    err = tlsmail__anchor_make(t->alloc_ctx, d->dn, d->dnlen, pk, br_x509_decoder_isCA(&d->dc),
                               &t->anchors[t->count], &mem);
    if (err) return err;
    t->count++;
    t->kind = TLSMAIL__TRUST_SOURCES;
    return 0;
}

/* What reading PEM needs, on the heap for the length of one call. */
typedef struct tlsmail__pemwork {
    tlsmail__pem pem;
    tlsmail__certdec dec;
    tlsmail__certwalk cw;
    unsigned char der[TLSMAIL__CERT_MAX];
    unsigned char io[1024];
} tlsmail__pemwork;

TLSMAIL_DEF void tlsmail_trust_free(tlsmail_trust *t) {
    size_t i;
    void *ctx;
    if (!t) return;
    ctx = t->alloc_ctx;
    if (t->anchors) { /* only our own anchors live here; the caller's never do */
        for (i = 0; i < t->count; i++) TLSMAIL_FREE(ctx, (void *)t->anchors[i].dn.data);
        TLSMAIL_FREE(ctx, t->anchors);
    }
    if (t->sources) TLSMAIL_FREE(ctx, t->sources);
    memset(t, 0, sizeof *t);
    t->alloc_ctx = ctx;
}

TLSMAIL__PRIVATE int tlsmail__trust_is_default(const tlsmail_trust *t) {
    return !t || t->kind == TLSMAIL__TRUST_DEFAULT;
}

TLSMAIL__PRIVATE int tlsmail__trust_editable(const tlsmail_trust *t) {
    return t && (t->kind == TLSMAIL__TRUST_DEFAULT || t->kind == TLSMAIL__TRUST_SOURCES);
}

TLSMAIL_DEF int tlsmail_trust_pem(tlsmail_trust *t, const void *pem, size_t len) {
    const unsigned char *p = (const unsigned char *)pem;
    tlsmail__pemwork *w;
    size_t certs = 0, used;
    int err = 0, got;
    if (!tlsmail__trust_editable(t) || (!pem && len)) return TLSMAIL_EINVAL;
    w = (tlsmail__pemwork *)TLSMAIL_MALLOC(t->alloc_ctx, sizeof *w);
    if (!w) return TLSMAIL_ENOMEM;
    tlsmail__pem_reset(&w->pem, w->der, sizeof w->der);
    for (;;) {
        int fin = len == 0;
        got = fin ? tlsmail__pem_finish(&w->pem) : tlsmail__pem_push(&w->pem, p, len, &used);
        if (!fin) {
            p += used;
            len -= used;
        }
        if (got) {
            tlsmail__cw_init(&w->cw, w->pem.len);
            tlsmail__cw_push(&w->cw, w->der, w->pem.len);
        }
        if (got && tlsmail__anchor_fit(&w->cw) && tlsmail__cert_decode(&w->dec, w->der, w->pem.len)) {
            if ((err = tlsmail__trust_add(t, &w->dec)) != 0) break;
            certs++;
        }
        /* Only after the finish: a last END line without its line end is
           complete only then. */
        if (!got && fin) break;
    }
    TLSMAIL_FREE(t->alloc_ctx, w);
    if (err) return err;
    return certs ? 0 : TLSMAIL_ETRUST;
}

TLSMAIL_DEF int tlsmail_trust_anchors(tlsmail_trust *t, const br_x509_trust_anchor *ta, size_t n) {
    if (!t || !ta || !n || t->kind != TLSMAIL__TRUST_DEFAULT) return TLSMAIL_EINVAL;
    t->kind = TLSMAIL__TRUST_USER;
    t->user_anchors = ta;
    t->count = n;
    return 0;
}

TLSMAIL_DEF int tlsmail_trust_pin_sha256(tlsmail_trust *t, const char *b64) {
    unsigned char h[33];
    if (!t || !b64 || t->kind != TLSMAIL__TRUST_DEFAULT) return TLSMAIL_EINVAL;
    if (strncmp(b64, "sha256//", 8) == 0) b64 += 8;
    if (tlsmail__b64_decode(h, sizeof h, b64, strlen(b64)) != 32) return TLSMAIL_EINVAL;
    memcpy(t->pin, h, 32);
    t->kind = TLSMAIL__TRUST_PIN;
    return 0;
}

/* ---- the lookup: anchors for one name, during a handshake ------------------ */

/* Add an anchor to what this handshake found, once. mem: the heap block
   behind it (ours to free), NULL when it lives in the trust or is the
   caller's. */
TLSMAIL__PRIVATE void tlsmail__found_add(tlsmail__found *f, const br_x509_trust_anchor *ta, void *mem,
                                         void *actx) {
    size_t i;
    for (i = 0; i < f->n; i++)
        if (f->ta[i].dn.len == ta->dn.len && memcmp(f->ta[i].dn.data, ta->dn.data, ta->dn.len) == 0 &&
            f->ta[i].flags == ta->flags && tlsmail__same_key(&f->ta[i].pkey, &ta->pkey))
            break;
    if (i < f->n || f->n == TLSMAIL__FOUND_MAX) { /* known, or no room: the chain rarely needs 2 */
        if (mem) TLSMAIL_FREE(actx, mem);
        return;
    }
    f->ta[f->n] = *ta;
    f->mem[f->n++] = mem;
}

TLSMAIL__PRIVATE void tlsmail__found_free(tlsmail__found *f, void *actx) {
    size_t i;
    for (i = 0; i < f->n; i++)
        if (f->mem[i]) TLSMAIL_FREE(actx, f->mem[i]);
    memset(f, 0, sizeof *f);
}

/* Is a certificate or anchor with this subject, CA or not, one of want? */
TLSMAIL__PRIVATE int tlsmail__names_want(const tlsmail__names *want, const unsigned char *dn, size_t len,
                                         int ca) {
    return ca ? want->calen == len && memcmp(want->ca, dn, len) == 0
              : want->leaf && want->leaflen == len && memcmp(want->leaf, dn, len) == 0;
}

/* Anchors already in memory (the trust's, or the caller's). */
TLSMAIL__PRIVATE void tlsmail__lookup_held(tlsmail__found *f, const br_x509_trust_anchor *ta, size_t n,
                                           const tlsmail__names *want) {
    size_t i;
    for (i = 0; i < n; i++)
        if (tlsmail__names_want(want, ta[i].dn.data, ta[i].dn.len, (ta[i].flags & BR_X509_TA_CA) != 0) &&
            tlsmail__key_usable(&ta[i].pkey))
            tlsmail__found_add(f, &ta[i], NULL, NULL);
}

#ifndef TLSMAIL_NO_STDIO

/* Note a source in t->sources: a kind letter, the path, a NUL ("S" alone
   is the system store; "F" a file; "H" a directory with OpenSSL hash
   names; "P" a directory of .pem and .crt files). */
TLSMAIL__PRIVATE int tlsmail__source_add(tlsmail_trust *t, char kind, const char *path, size_t plen) {
    char *ns;
    size_t n = t->sources_len + 1 + plen + 1;
    if (plen >= 4096) return TLSMAIL_EINVAL;
    ns = (char *)TLSMAIL_MALLOC(t->alloc_ctx, n);
    if (!ns) return TLSMAIL_ENOMEM;
    if (t->sources_len) memcpy(ns, t->sources, t->sources_len);
    ns[t->sources_len] = kind;
    memcpy(ns + t->sources_len + 1, path, plen);
    ns[n - 1] = '\0';
    if (t->sources) TLSMAIL_FREE(t->alloc_ctx, t->sources);
    t->sources = ns;
    t->sources_len = n;
    t->kind = TLSMAIL__TRUST_SOURCES;
    return 0;
}

/* Every certificate in the PEM file at path goes to fn (which returns 1 to
   stop). Returns the number handed over, or -1 if the file can't be read. */
typedef int (*tlsmail__cert_fn)(void *ctx, tlsmail__pemwork *w);

TLSMAIL__PRIVATE long tlsmail__scan_file(const char *path, tlsmail__pemwork *w, tlsmail__cert_fn fn,
                                         void *ctx) {
    FILE *f = fopen(path, "rb");
    long certs = 0;
    size_t n, off, used;
    int stop = 0;
    if (!f) return -1;
    /* w->io is the buffer: stdio's own would be 4 KB more of heap */
    (void)setvbuf(f, NULL, _IONBF, 0);
    tlsmail__pem_reset(&w->pem, w->der, sizeof w->der);
    while (!stop && (n = fread(w->io, 1, sizeof w->io, f)) > 0) {
        for (off = 0; off < n && !stop; off += used)
            if (tlsmail__pem_push(&w->pem, w->io + off, n - off, &used)) {
                certs++;
                stop = fn(ctx, w);
            }
    }
    if (!stop && !ferror(f) && tlsmail__pem_finish(&w->pem)) {
        certs++;
        (void)fn(ctx, w);
    }
    if (ferror(f)) certs = -1;
    (void)fclose(f); /* read-only: nothing to lose */
    return certs;
}

/* For checking a source when it is named: the first usable certificate
   stops the scan. */
TLSMAIL__PRIVATE int tlsmail__usable_cb(void *ctx, tlsmail__pemwork *w) {
    int *found = (int *)ctx;
    *found = tlsmail__cert_decode(&w->dec, w->der, w->pem.len) != NULL;
    return *found;
}

TLSMAIL__PRIVATE int tlsmail__file_usable(const char *path, tlsmail__pemwork *w) {
    int found = 0;
    return tlsmail__scan_file(path, w, tlsmail__usable_cb, &found) > 0 && found;
}

/* OpenSSL's c_rehash names: 8 lower-case hex digits, '.', a number. */
TLSMAIL__PRIVATE int tlsmail__hash_name(const char *name) {
    size_t i, n = strlen(name);
    if (n < 10 || name[8] != '.') return 0;
    for (i = 0; i < n; i++)
        if (i < 8 ? !(tlsmail__isdigit((unsigned char)name[i]) || (name[i] >= 'a' && name[i] <= 'f'))
                  : i > 8 && !tlsmail__isdigit((unsigned char)name[i]))
            return 0;
    return 1;
}

TLSMAIL__PRIVATE int tlsmail__pem_name(const char *name) {
    size_t n = strlen(name);
    return n > 4 && (strcmp(name + n - 4, ".pem") == 0 || strcmp(name + n - 4, ".crt") == 0);
}

/* What a directory offers: 'H' when it has hash names (then only they
   are read, by name), else 'P' when it has a .pem or .crt file with a
   usable certificate, else 0. */
TLSMAIL__PRIVATE char tlsmail__dir_kind(const char *dir, tlsmail__pemwork *w) {
    char file[4200];
    DIR *d = opendir(dir);
    struct dirent *e;
    char kind = 0;
    if (!d) return 0;
    while ((e = readdir(d)) != NULL && kind != 'H') {
        if (tlsmail__hash_name(e->d_name)) kind = 'H';
        else if (!kind && tlsmail__pem_name(e->d_name) &&
                 snprintf(file, sizeof file, "%s/%s", dir, e->d_name) < (int)sizeof file &&
                 tlsmail__file_usable(file, w))
            kind = 'P';
    }
    closedir(d);
    return kind;
}

TLSMAIL_DEF int tlsmail_trust_file(tlsmail_trust *t, const char *path) {
    tlsmail__pemwork *w;
    int ok;
    if (!tlsmail__trust_editable(t) || !path || !*path) return TLSMAIL_EINVAL;
    w = (tlsmail__pemwork *)TLSMAIL_MALLOC(t->alloc_ctx, sizeof *w);
    if (!w) return TLSMAIL_ENOMEM;
    ok = tlsmail__file_usable(path, w);
    TLSMAIL_FREE(t->alloc_ctx, w);
    return ok ? tlsmail__source_add(t, 'F', path, strlen(path)) : TLSMAIL_ETRUST;
}

/* One directory, or several separated by ':' as in OpenSSL's SSL_CERT_DIR.
   One without a usable certificate is skipped; none at all is an error. */
TLSMAIL_DEF int tlsmail_trust_dir(tlsmail_trust *t, const char *path) {
    tlsmail__pemwork *w;
    char dir[4096];
    int err = 0, added = 0;
    if (!tlsmail__trust_editable(t) || !path) return TLSMAIL_EINVAL;
    w = (tlsmail__pemwork *)TLSMAIL_MALLOC(t->alloc_ctx, sizeof *w);
    if (!w) return TLSMAIL_ENOMEM;
    while (*path && !err) {
        const char *sep = strchr(path, ':');
        size_t len = sep ? (size_t)(sep - path) : strlen(path);
        char kind;
        if (len > 0 && len < sizeof dir) {
            memcpy(dir, path, len);
            dir[len] = '\0';
            if ((kind = tlsmail__dir_kind(dir, w)) != 0) {
                err = tlsmail__source_add(t, kind, dir, len);
                added += !err;
            }
        }
        path += len;
        if (*path == ':') path++;
    }
    TLSMAIL_FREE(t->alloc_ctx, w);
    return err ? err : added ? 0 : TLSMAIL_ETRUST;
}

/* $SSL_CERT_FILE and/or $SSL_CERT_DIR: when either is set they are the
   system store, replacing the defaults as in OpenSSL and Go (a test CA
   set there is the only trust, never an addition). 1 when set. */
TLSMAIL__PRIVATE int tlsmail__env_sources(const char **file, const char **dirs) {
    const char *envf = getenv("SSL_CERT_FILE"), *envd = getenv("SSL_CERT_DIR");
    *file = envf && *envf ? envf : NULL;
    *dirs = envd && *envd ? envd : NULL;
    return *file || *dirs;
}

/* Is there a system store in this file (or NULL) and these directories
   (or NULL)? The file with a usable certificate, or one of the
   directories (not read now: opendir alone costs glibc 32 KB). */
TLSMAIL__PRIVATE int tlsmail__files_ok(void *actx, const char *file, const char *dirs) {
    tlsmail__pemwork *w;
    int ok = 0;
    if (file) {
        if (!(w = (tlsmail__pemwork *)TLSMAIL_MALLOC(actx, sizeof *w))) return TLSMAIL_ENOMEM;
        ok = tlsmail__file_usable(file, w);
        TLSMAIL_FREE(actx, w);
    }
    while (!ok && dirs && *dirs) {
        char dir[4096];
        struct stat st;
        const char *sep = strchr(dirs, ':');
        size_t len = sep ? (size_t)(sep - dirs) : strlen(dirs);
        if (len > 0 && len < sizeof dir) {
            memcpy(dir, dirs, len);
            dir[len] = '\0';
            ok = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
        }
        dirs += len;
        if (*dirs == ':') dirs++;
    }
    return ok ? 0 : TLSMAIL_ETRUST;
}

/* One lookup in the sources, during a handshake. */
typedef struct tlsmail__lookup {
    tlsmail__found *found;
    void *actx;
    const tlsmail__names *want;
    int err;
    tlsmail__pemwork *w;
} tlsmail__lookup;

/* Does this certificate's subject name one the lookup wants? Only the
   walker reads it (into l->w->cw, for tlsmail__lookup_take): no key is
   decoded. */
TLSMAIL__PRIVATE int tlsmail__lookup_named(tlsmail__lookup *l, const unsigned char *der, size_t len) {
    tlsmail__certwalk *cw = &l->w->cw;
    tlsmail__cw_init(cw, len);
    tlsmail__cw_push(cw, der, len);
    return tlsmail__anchor_fit(cw) &&
           (tlsmail__names_want(l->want, cw->subject, cw->subject_len, 1) ||
            tlsmail__names_want(l->want, cw->subject, cw->subject_len, 0));
}

/* A certificate tlsmail__lookup_named just said yes to, decoded: an
   anchor for this handshake when it is wanted as what it is (a CA by the
   issuer's name, or the leaf itself) and its key is usable. 1: stop (no
   memory, in l->err). */
TLSMAIL__PRIVATE int tlsmail__lookup_take(tlsmail__lookup *l, const unsigned char *der, size_t len) {
    tlsmail__certwalk *cw = &l->w->cw;
    const br_x509_pkey *pk;
    br_x509_trust_anchor ta;
    void *mem;
    int is_ca;
    if ((pk = tlsmail__cert_decode(&l->w->dec, der, len)) == NULL) return 0;
    is_ca = br_x509_decoder_isCA(&l->w->dec.dc);
    if (!tlsmail__names_want(l->want, cw->subject, cw->subject_len, is_ca)) return 0;
    if ((l->err = tlsmail__anchor_make(l->actx, cw->subject, cw->subject_len, pk, is_ca, &ta, &mem)) != 0)
        return 1;
    tlsmail__found_add(l->found, &ta, mem, l->actx);
    return 0;
}

/* One certificate of a file: is it the one? */
TLSMAIL__PRIVATE int tlsmail__lookup_cb(void *ctx, tlsmail__pemwork *w) {
    tlsmail__lookup *l = (tlsmail__lookup *)ctx;
    return tlsmail__lookup_named(l, w->der, w->pem.len) ? tlsmail__lookup_take(l, w->der, w->pem.len) : 0;
}

/* A hashed directory: open the names OpenSSL would, HHHHHHHH.0, .1, ...
   until one is missing; nothing else in the directory is read. */
TLSMAIL__PRIVATE void tlsmail__lookup_hashed(tlsmail__lookup *l, const char *dir) {
    char file[4200];
    unsigned long h[2];
    int i, k, n = 0;
    if (tlsmail__name_hash(l->want->ca, l->want->calen, &h[n]) == 0) n++;
    if (l->want->leaf && tlsmail__name_hash(l->want->leaf, l->want->leaflen, &h[n]) == 0 &&
        !(n == 1 && h[0] == h[1]))
        n++;
    for (k = 0; k < n; k++)
        for (i = 0; i < 16 && !l->err; i++) {
            int r = snprintf(file, sizeof file, "%s/%08lx.%d", dir, h[k], i);
            if (r < 0 || (size_t)r >= sizeof file || tlsmail__scan_file(file, l->w, tlsmail__lookup_cb, l) < 0)
                break;
        }
}

/* A directory without hash names: every .pem and .crt file. */
TLSMAIL__PRIVATE void tlsmail__lookup_plain(tlsmail__lookup *l, const char *dir) {
    char file[4200];
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d) return;
    while (!l->err && (e = readdir(d)) != NULL)
        if (tlsmail__pem_name(e->d_name) && snprintf(file, sizeof file, "%s/%s", dir, e->d_name) < (int)sizeof file)
            (void)tlsmail__scan_file(file, l->w, tlsmail__lookup_cb, l);
    closedir(d);
}

TLSMAIL__PRIVATE void tlsmail__lookup_dirs(tlsmail__lookup *l, const char *dirs, int hashed) {
    char dir[4096];
    while (*dirs && !l->err) {
        const char *sep = strchr(dirs, ':');
        size_t len = sep ? (size_t)(sep - dirs) : strlen(dirs);
        if (len > 0 && len < sizeof dir) {
            memcpy(dir, dirs, len);
            dir[len] = '\0';
            if (hashed) tlsmail__lookup_hashed(l, dir);
            else tlsmail__lookup_plain(l, dir);
        }
        dirs += len;
        if (*dirs == ':') dirs++;
    }
}

/* A system store of files: a bundle (or NULL) and hashed directories (or
   NULL). */
TLSMAIL__PRIVATE void tlsmail__lookup_files(tlsmail__lookup *l, const char *file, const char *dirs) {
    if (file) (void)tlsmail__scan_file(file, l->w, tlsmail__lookup_cb, l);
    if (dirs && !l->err) tlsmail__lookup_dirs(l, dirs, 1);
}

#ifndef _WIN32

/* The system store, found afresh at each handshake: the environment's
   (tlsmail__env_sources), else the first bundle found among the usual
   places, else the usual hashed directories. */
static const char *const tlsmail__system_files[] = {
    "/etc/ssl/certs/ca-certificates.crt",                /* Debian, Ubuntu, Arch, Gentoo */
    "/etc/pki/tls/certs/ca-bundle.crt",                  /* Fedora, RHEL, CentOS */
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* RHEL 7+ */
    "/etc/ssl/ca-bundle.pem",                            /* openSUSE */
    "/etc/ssl/cert.pem",                                 /* Alpine, macOS, OpenBSD */
    "/usr/local/share/certs/ca-root-nss.crt",            /* FreeBSD */
    "/usr/local/etc/ssl/cert.pem",                       /* FreeBSD, DragonFly */
    "/etc/openssl/certs/ca-certificates.crt",            /* NetBSD */
    "/etc/pki/tls/cacert.pem",                           /* OpenELEC */
};
static const char tlsmail__system_dirs[] = "/etc/ssl/certs:/etc/pki/tls/certs:/system/etc/security/cacerts";

/* The system store as sources: *file (or NULL) and *dirs (or NULL). */
TLSMAIL__PRIVATE void tlsmail__system_sources(const char **file, const char **dirs) {
    size_t i;
    FILE *f;
    if (tlsmail__env_sources(file, dirs)) return;
    for (i = 0; i < sizeof tlsmail__system_files / sizeof tlsmail__system_files[0]; i++)
        if ((f = fopen(tlsmail__system_files[i], "rb")) != NULL) {
            (void)fclose(f);
            *file = tlsmail__system_files[i];
            return;
        }
    *dirs = tlsmail__system_dirs;
}

/* Is there a system store? */
TLSMAIL__PRIVATE int tlsmail__system_ok(void *actx) {
    const char *file, *dirs;
    tlsmail__system_sources(&file, &dirs);
    return tlsmail__files_ok(actx, file, dirs);
}

TLSMAIL__PRIVATE void tlsmail__lookup_system(tlsmail__lookup *l) {
    const char *file, *dirs;
    tlsmail__system_sources(&file, &dirs);
    tlsmail__lookup_files(l, file, dirs);
}

#else /* _WIN32: the system's own store, through crypt32 */

/* A system store of the current user, read-only, as CertOpenSystemStore
   names them; NULL when there is none. The user's "ROOT" shows the local
   machine's roots too (and under wine the host's), as Windows' own chain
   building sees them; Windows' automatic root update adds a root there
   only once Windows itself needed it. */
TLSMAIL__PRIVATE HCERTSTORE tlsmail__store_open(const wchar_t *name) {
    DWORD flags = CERT_SYSTEM_STORE_CURRENT_USER | CERT_STORE_READONLY_FLAG | CERT_STORE_OPEN_EXISTING_FLAG;
    return CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0, flags, name);
}

/* Is there a system store? The environment's, else a ROOT store with a
   usable certificate. */
TLSMAIL__PRIVATE int tlsmail__system_ok(void *actx) {
    const char *file, *dirs;
    HCERTSTORE root;
    PCCERT_CONTEXT cc = NULL;
    tlsmail__certdec *d;
    int ok = 0;
    if (tlsmail__env_sources(&file, &dirs)) return tlsmail__files_ok(actx, file, dirs);
    if ((root = tlsmail__store_open(L"ROOT")) == NULL) return TLSMAIL_ETRUST;
    if ((d = (tlsmail__certdec *)TLSMAIL_MALLOC(actx, sizeof *d)) == NULL) {
        (void)CertCloseStore(root, 0);
        return TLSMAIL_ENOMEM;
    }
    while (!ok && (cc = CertEnumCertificatesInStore(root, cc)) != NULL)
        ok = tlsmail__cert_decode(d, cc->pbCertEncoded, cc->cbCertEncoded) != NULL;
    if (cc) (void)CertFreeCertificateContext(cc); /* the enumeration stopped early */
    TLSMAIL_FREE(actx, d);
    (void)CertCloseStore(root, 0);
    return ok ? 0 : TLSMAIL_ETRUST;
}

/* Windows' own word on a root the lookup found: none that is also in the
   "Disallowed" store (found by its SHA-1 thumbprint, as Windows finds it)
   or whose purposes, a property the store keeps beside the certificate
   (what "Disable all purposes" sets, and Microsoft's root program for
   roots it trusts for other uses only), leave out server authentication.
   *bad: the Disallowed store, opened at the first root asked about (NULL
   when there is none; *tried says it was). */
TLSMAIL__PRIVATE int tlsmail__store_allows(tlsmail__lookup *l, PCCERT_CONTEXT cc, HCERTSTORE *bad,
                                           int *tried) {
    BYTE sha1[20];
    DWORD n = sizeof sha1, i;
    CRYPT_HASH_BLOB h;
    PCCERT_CONTEXT hit;
    CERT_ENHKEY_USAGE *u;
    int ok = 0;
    if (!*tried) {
        *bad = tlsmail__store_open(L"Disallowed");
        *tried = 1;
    }
    /* no thumbprint, nothing to check it by: not trusted */
    if (!CertGetCertificateContextProperty(cc, CERT_SHA1_HASH_PROP_ID, sha1, &n)) return 0;
    h.cbData = n;
    h.pbData = sha1;
    hit = *bad ? CertFindCertificateInStore(*bad, X509_ASN_ENCODING, 0, CERT_FIND_SHA1_HASH, &h, NULL) : NULL;
    if (hit) {
        (void)CertFreeCertificateContext(hit);
        return 0;
    }
    n = 0;
    if (!CertGetCertificateContextProperty(cc, CERT_ENHKEY_USAGE_PROP_ID, NULL, &n)) return 1; /* no limit */
    if (!CertGetEnhancedKeyUsage(cc, CERT_FIND_PROP_ONLY_ENHKEY_USAGE_FLAG, NULL, &n) || n < sizeof *u) return 0;
    if ((u = (CERT_ENHKEY_USAGE *)TLSMAIL_MALLOC(l->actx, n)) == NULL) {
        l->err = TLSMAIL_ENOMEM;
        return 0;
    }
    if (CertGetEnhancedKeyUsage(cc, CERT_FIND_PROP_ONLY_ENHKEY_USAGE_FLAG, u, &n))
        for (i = 0; i < u->cUsageIdentifier && !ok; i++)
            ok = strcmp(u->rgpszUsageIdentifier[i], szOID_PKIX_KP_SERVER_AUTH) == 0 ||
                 strcmp(u->rgpszUsageIdentifier[i], szOID_ANY_ENHANCED_KEY_USAGE) == 0;
    TLSMAIL_FREE(l->actx, u);
    return ok;
}

/* The ROOT store, enumerated afresh for each lookup: every certificate's
   subject is read by the walker, and only the ones named are checked
   with Windows and decoded. */
TLSMAIL__PRIVATE void tlsmail__lookup_store(tlsmail__lookup *l) {
    HCERTSTORE root = tlsmail__store_open(L"ROOT"), bad = NULL;
    PCCERT_CONTEXT cc = NULL;
    int tried = 0;
    if (!root) return;
    while (!l->err && (cc = CertEnumCertificatesInStore(root, cc)) != NULL)
        if ((cc->dwCertEncodingType & X509_ASN_ENCODING) &&
            tlsmail__lookup_named(l, cc->pbCertEncoded, cc->cbCertEncoded) &&
            tlsmail__store_allows(l, cc, &bad, &tried))
            (void)tlsmail__lookup_take(l, cc->pbCertEncoded, cc->cbCertEncoded);
    if (cc) (void)CertFreeCertificateContext(cc); /* the enumeration stopped early */
    if (bad) (void)CertCloseStore(bad, 0);
    (void)CertCloseStore(root, 0);
}

/* The environment's files when set, else the ROOT store. */
TLSMAIL__PRIVATE void tlsmail__lookup_system(tlsmail__lookup *l) {
    const char *file, *dirs;
    if (tlsmail__env_sources(&file, &dirs)) tlsmail__lookup_files(l, file, dirs);
    else tlsmail__lookup_store(l);
}

#endif /* _WIN32 */

TLSMAIL_DEF int tlsmail_trust_system(tlsmail_trust *t) {
    int err;
    if (!tlsmail__trust_editable(t)) return TLSMAIL_EINVAL;
    if ((err = tlsmail__system_ok(t->alloc_ctx)) != 0) return err;
    return tlsmail__source_add(t, 'S', "", 0);
}

/* What a zeroed trust stands for must exist before we dial. */
TLSMAIL__PRIVATE int tlsmail__default_trust_ok(void *actx) { return tlsmail__system_ok(actx); }

/* Search every source of t (none: the system store), all names at once. */
TLSMAIL__PRIVATE int tlsmail__lookup_sources(const tlsmail_trust *t, tlsmail__found *found, void *actx,
                                             const tlsmail__names *want) {
    tlsmail__lookup l;
    const char *s = t ? t->sources : NULL, *end = s ? s + t->sources_len : NULL;
    if (!tlsmail__trust_is_default(t) && !s) return 0; /* PEM in memory only */
    memset(&l, 0, sizeof l);
    l.found = found;
    l.actx = actx;
    l.want = want;
    l.w = (tlsmail__pemwork *)TLSMAIL_MALLOC(actx, sizeof *l.w);
    if (!l.w) return TLSMAIL_ENOMEM;
    do {
        char kind = s ? s[0] : 'S';
        const char *path = s ? s + 1 : "";
        if (kind == 'S') tlsmail__lookup_system(&l);
        else if (kind == 'F') (void)tlsmail__scan_file(path, l.w, tlsmail__lookup_cb, &l);
        else tlsmail__lookup_dirs(&l, path, kind == 'H');
        if (s) s += strlen(s) + 1;
    } while (s && s < end && !l.err);
    TLSMAIL_FREE(actx, l.w);
    return l.err;
}

#else /* TLSMAIL_NO_STDIO: no filesystem, so no files, directories or system store */

TLSMAIL__PRIVATE int tlsmail__default_trust_ok(void *actx) {
    (void)actx;
    return TLSMAIL_ETRUST; /* pass anchors, PEM or a pin */
}

TLSMAIL__PRIVATE int tlsmail__lookup_sources(const tlsmail_trust *t, tlsmail__found *found, void *actx,
                                             const tlsmail__names *want) {
    (void)t; (void)found; (void)actx; (void)want;
    return 0;
}

#endif /* TLSMAIL_NO_STDIO */

/* Anchors for the names the chain needs: found in f, for this handshake.
   t NULL or zeroed: the system store. */
TLSMAIL__PRIVATE int tlsmail__trust_lookup(const tlsmail_trust *t, tlsmail__found *f, void *actx,
                                           const tlsmail__names *want) {
    if (t && t->kind == TLSMAIL__TRUST_USER) {
        tlsmail__lookup_held(f, t->user_anchors, t->count, want);
        return 0;
    }
    if (t && t->count) tlsmail__lookup_held(f, t->anchors, t->count, want);
    return tlsmail__lookup_sources(t, f, actx, want);
}

/* ==== [tlsmail:pin] an X.509 engine that trusts exactly one public key ==== */

/* The first certificate's names and validity into the client's report
   (tlsmail_tls_info), from the walker that read it whole: whichever
   engine checks the chain, pinned or not. */
TLSMAIL__PRIVATE void tlsmail__leaf_keep(tlsmail__leaf *l, const tlsmail__certwalk *w) {
    int cut;
    if (!l || !w->done || w->err || w->dn_over || !w->subject_done || !w->issuer_done) return;
    l->subject_len = (unsigned char)tlsmail__rdns_reversed(l->subject, sizeof l->subject, w->subject,
                                                           w->subject_len, &cut);
    l->subject_cut = (unsigned char)cut;
    l->issuer_len = (unsigned char)tlsmail__rdns_reversed(l->issuer, sizeof l->issuer, w->issuer,
                                                          w->issuer_len, &cut);
    l->issuer_cut = (unsigned char)cut;
    if (w->validity_done) {
        memcpy(l->validity, w->validity, w->validity_len);
        l->validity_len = (unsigned char)w->validity_len;
    }
    l->names = 1;
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
    if (p->ncert == 0) {
        br_x509_decoder_init(&p->dc, tlsmail__pin_dn, NULL);
        tlsmail__cw_init(&p->cw, length);
    }
}

/* The walker only reads the names for the report: the pin, not the
   policy, is the trust here. */
TLSMAIL__PRIVATE void tlsmail__pin_append(const br_x509_class **ctx, const unsigned char *buf, size_t len) {
    tlsmail__pin *p = (tlsmail__pin *)(void *)ctx;
    if (p->ncert != 0) return;
    if (tlsmail__x509_push(&p->dc, buf, len) != 0) p->overrun = 1;
    tlsmail__cw_push(&p->cw, buf, len);
}

/* Only the server's own certificate matters: the rest of the chain is not
   looked at, since the pin replaces the CA. */
TLSMAIL__PRIVATE void tlsmail__pin_end_cert(const br_x509_class **ctx) {
    tlsmail__pin *p = (tlsmail__pin *)(void *)ctx;
    if (p->ncert++ == 0) {
        const br_x509_pkey *k = br_x509_decoder_get_pkey(&p->dc);
        tlsmail__leaf_keep(p->leaf, &p->cw);
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
    x->ncert = 0;
    x->xc.vtable->start_chain(TLSMAIL__INNER(x), server_name);
}

TLSMAIL__PRIVATE void tlsmail__x509_start_cert(const br_x509_class **ctx, uint32_t length) {
    tlsmail__x509 *x = TLSMAIL__X509(ctx);
    /* Once a certificate reached an anchor BearSSL reads no more of the
       chain: extra certificates a server sends are not judged. */
    x->skip = x->xc.err == BR_ERR_X509_OK;
    x->asked = 0;
    tlsmail__cw_init(&x->cw, length);
    x->xc.vtable->start_cert(TLSMAIL__INNER(x), length);
}

TLSMAIL__PRIVATE void tlsmail__x509_append(const br_x509_class **ctx, const unsigned char *buf,
                                           size_t len) {
    tlsmail__x509 *x = TLSMAIL__X509(ctx);
    if (!x->skip && !x->err) {
        tlsmail__cw_push(&x->cw, buf, len);
        /* The names are known before the certificate's end, where BearSSL
           looks for an anchor, and it sees these octets only after the
           lookup: a CA anchor named as the issuer, and for the leaf also a
           non-CA anchor that is the leaf itself ("direct trust"), found
           in one pass once the subject is read. */
        if (!x->asked && x->lookup && x->cw.issuer_done && (x->ncert > 0 || x->cw.subject_done)) {
            tlsmail__names want;
            want.ca = x->cw.issuer;
            want.calen = x->cw.issuer_len;
            want.leaf = x->ncert == 0 && !x->cw.dn_over ? x->cw.subject : NULL;
            want.leaflen = x->cw.subject_len;
            x->asked = 1;
            (void)x->lookup(x->lookup_ctx, &want);
        }
    }
    x->xc.vtable->append(TLSMAIL__INNER(x), buf, len);
}

TLSMAIL__PRIVATE void tlsmail__x509_end_cert(const br_x509_class **ctx) {
    tlsmail__x509 *x = TLSMAIL__X509(ctx);
    if (!x->skip && !x->err) {
        if (x->cw.err || !x->cw.done) x->err = BR_ERR_X509_INVALID_VALUE;
        else if (x->cw.eku < 0) x->err = BR_ERR_X509_FORBIDDEN_KEY_USAGE;
        /* Constraints nobody here enforces: refused, as BearSSL refuses
           them marked critical. */
        else if (x->cw.nc) x->err = BR_ERR_X509_CRITICAL_EXTENSION;
        /* BearSSL would match "*.com" to "mail.com": no such name is one
           certificate's to claim (RFC 6125 6.4.3). Without a subjectAltName
           the CN is the name, so it is looked at too (and a leaf subject
           too long to keep is refused for want of a look). */
        else if (x->ncert == 0 && (x->cw.wild1 || (!x->cw.san && (!x->cw.subject_done ||
                 tlsmail__dn_wild1(x->cw.subject, x->cw.subject_len)))))
            x->err = BR_ERR_X509_BAD_SERVER_NAME;
    }
    if (x->ncert == 0) tlsmail__leaf_keep(x->leaf, &x->cw);
    x->ncert++;
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
        n = tlsmail__io_read(c, to, cap);
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
    int n = tlsmail__io_write(c, buf, len);
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
    if (c->lookup_err) return c->lookup_err;
    if (c->trust && c->trust->kind == TLSMAIL__TRUST_PIN && c->x509.pin.mismatch) return TLSMAIL_ECERT_PIN;
    switch (e) {
    case BR_ERR_X509_EXPIRED: return TLSMAIL_ECERT_EXPIRED;
    case BR_ERR_X509_BAD_SERVER_NAME: return TLSMAIL_ECERT_NAME;
    /* the certificate's keyUsage forbids what the server does with it */
    case BR_ERR_WRONG_KEY_USAGE: return TLSMAIL_ECERT_UNTRUSTED;
    case BR_ERR_NO_RANDOM: return TLSMAIL_ENORANDOM;
    case BR_ERR_X509_TIME_UNKNOWN: return TLSMAIL_ENOTIME;
    default:
        /* Any other verdict of the X.509 engine (unknown issuer, bad
           signature, not a CA, weak key, ...) means: not trusted. */
        if (e >= BR_ERR_X509_OK && e < BR_ERR_X509_OK + 32) return TLSMAIL_ECERT_UNTRUSTED;
        return TLSMAIL_ETLS;
    }
}

/* The allocator context of the caller's trust, for what a handshake
   allocates on its behalf (NULL for none). */
TLSMAIL__PRIVATE void *tlsmail__actx(const tlsmail_client *c) { return c->trust ? c->trust->alloc_ctx : NULL; }

/* The policy engine's lookup: anchors for dn into the client's found set,
   which is what BearSSL's engine reads. */
TLSMAIL__PRIVATE int tlsmail__found_lookup(void *ctx, const tlsmail__names *want) {
    tlsmail_client *c = (tlsmail_client *)ctx;
    int err = tlsmail__trust_lookup(c->trust, &c->found, tlsmail__actx(c), want);
    if (err) c->lookup_err = err;
    c->x509.policy.xc.trust_anchors_num = c->found.n;
    return err;
}

/* The suites offered, AES-GCM first; TLSMAIL_SMALL offers the first four
   alone: every server has AES-GCM, and Microsoft 365, which offers only
   FIPS 140-2 algorithms, has no ChaCha20, so that is the one left out. */
static const uint16_t tlsmail__suites[] = {
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
};
#ifdef TLSMAIL_SMALL
#define TLSMAIL__SUITES_N 4
#else
#define TLSMAIL__SUITES_N 6
#endif

/* A session of another suite cannot be resumed here: BearSSL fails the
   handshake when the server resumes it, and OpenSSL servers refuse a
   ClientHello that offers the session without its suite. */
TLSMAIL__PRIVATE int tlsmail__suite_offered(unsigned suite) {
    size_t i;
    for (i = 0; i < TLSMAIL__SUITES_N; i++)
        if (tlsmail__suites[i] == suite) return 1;
    return 0;
}

TLSMAIL__PRIVATE void tlsmail__tls_suites(br_ssl_engine_context *eng) {
    br_ssl_engine_set_versions(eng, BR_TLS12, BR_TLS12);
#ifdef TLSMAIL_SMALL
    br_ssl_engine_set_suites(eng, tlsmail__suites, TLSMAIL__SUITES_N);
#else
    {
        /* ChaCha20 first where AES would run in software */
        static const uint16_t chacha_first[] = {
            BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
        };
        int hw = br_aes_x86ni_ctr_get_vtable() != NULL && br_ghash_pclmul_get() != 0;
        br_ssl_engine_set_suites(eng, hw ? tlsmail__suites : chacha_first, TLSMAIL__SUITES_N);
    }
#endif
}

/* What we offer and accept, registered piece by piece instead of
   br_ssl_client_init_full, so a static link carries only this:
   - TLS 1.2 only, ECDHE with AEAD suites: forward secrecy and no CBC
     padding oracles. AES-GCM leads where the CPU has AES-NI and PCLMUL
     (several times ChaCha20's speed there); elsewhere ChaCha20-Poly1305
     does, fast and constant-time in software. The server picks.
     TLSMAIL_SMALL offers AES-GCM alone.
   - Implementations: BearSSL's set_default_* calls pick the fastest the
     CPU has at run time (AES-NI or not, 64-bit multiplies or not), which
     links them all. TLSMAIL_SMALL names one constant-time implementation
     of each instead, the smallest that is not slow on a 32-bit core, so
     nothing else is linked.
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
#ifdef TLSMAIL_SMALL
    br_ssl_engine_set_rsavrfy(eng, br_rsa_i31_pkcs1_vrfy);
    br_ssl_engine_set_ec(eng, &br_ec_prime_i31);
    br_ssl_engine_set_ecdsa(eng, &br_ecdsa_i31_vrfy_asn1);
#else
    br_ssl_engine_set_default_rsavrfy(eng);
    br_ssl_engine_set_default_ecdsa(eng);
#endif
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
#ifdef TLSMAIL_SMALL
    br_ssl_engine_set_gcm(eng, &br_sslrec_in_gcm_vtable, &br_sslrec_out_gcm_vtable);
#if SIZE_MAX > 0xFFFFFFFFu
    br_ssl_engine_set_aes_ctr(eng, &br_aes_ct64_ctr_vtable);
    br_ssl_engine_set_ghash(eng, br_ghash_ctmul64);
#else
    br_ssl_engine_set_aes_ctr(eng, &br_aes_ct_ctr_vtable);
    br_ssl_engine_set_ghash(eng, br_ghash_ctmul);
#endif
#else
    br_ssl_engine_set_default_aes_gcm(eng);
    br_ssl_engine_set_default_chapol(eng);
#endif
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
    tlsmail_trust none; /* NULL: the system store, as a zeroed trust */
    br_sha256_context h;
    const br_x509_trust_anchor *ta;
    size_t i, n;
    memset(&none, 0, sizeof none);
    if (!t) t = &none;
    ta = t->kind == TLSMAIL__TRUST_USER ? t->user_anchors : t->anchors;
    n = t->kind == TLSMAIL__TRUST_PIN ? 0 : t->count;
    br_sha256_init(&h);
    tlsmail__digest_num(&h, (size_t)t->kind);
    if (t->kind == TLSMAIL__TRUST_PIN) tlsmail__digest_blob(&h, t->pin, sizeof t->pin);
    /* files and directories by name: what they hold is read at each full
       handshake, and TLSMAIL_SESSION_LIFETIME bounds how long a resumed
       session may outlive a change to them */
    tlsmail__digest_blob(&h, t->sources ? t->sources : "", t->sources ? t->sources_len : 0);
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
        !tlsmail__host_eq(s->host, c->host) || memcmp(s->trust, c->trust_digest, 32) != 0 ||
        !tlsmail__suite_offered(s->params.cipher_suite))
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
/* The caller's entropy into BearSSL's generator, and its clock into the
   X.509 engine (days since 0000-01-01 and seconds of the day, as
   br_x509_minimal_set_time counts: 1970-01-01 is day 719528). */
TLSMAIL__PRIVATE int tlsmail__board_hooks(tlsmail_client *c) {
    const tlsmail_config *cfg = c->cfg;
    if (cfg->entropy) {
        unsigned char seed[32];
        int err = cfg->entropy(cfg->entropy_ctx, seed, sizeof seed);
        if (err != 0) {
            tlsmail__wipe(seed, sizeof seed);
            return err < 0 && err >= TLSMAIL__ERROR_LAST ? err : TLSMAIL_ENORANDOM;
        }
        br_ssl_engine_inject_entropy(&c->sc.eng, seed, sizeof seed);
        tlsmail__wipe(seed, sizeof seed);
    }
    if (cfg->clock && !(c->trust && c->trust->kind == TLSMAIL__TRUST_PIN)) {
        long long ms = cfg->clock(cfg->clock_ctx);
        if (ms >= 0) {
            long long s = ms / 1000;
            br_x509_minimal_set_time(&c->x509.policy.xc, (uint32_t)(s / 86400 + 719528),
                                     (uint32_t)(s % 86400));
        }
    }
    return 0;
}

TLSMAIL__PRIVATE int tlsmail__tls_start(tlsmail_client *c) {
    const tlsmail_trust *t = c->trust;
    int err;
    tlsmail__x509 *x = &c->x509.policy;
    char name[256];
    size_t n = strlen(c->host);
    memset(&c->leaf, 0, sizeof c->leaf);
    tlsmail__tls_profile(&c->sc, &x->xc);
    tlsmail__found_free(&c->found, tlsmail__actx(c));
    c->lookup_err = 0;
    tlsmail__client_cert_use(c);
    if (t && t->kind == TLSMAIL__TRUST_PIN) {
        /* Replaces the policy engine in the union: the SSL engine's only
           pointer to either is the one set_x509 sets here. */
        memset(&c->x509.pin, 0, sizeof c->x509.pin);
        c->x509.pin.vtable = &tlsmail__pin_vtable;
        c->x509.pin.pin = t->pin;
        c->x509.pin.leaf = &c->leaf;
        br_ssl_engine_set_x509(&c->sc.eng, &c->x509.pin.vtable);
    } else {
        /* BearSSL gets the anchors the chain names, looked up as it
           streams (tlsmail__found_lookup), not the whole store. */
        x->xc.trust_anchors = c->found.ta;
        x->xc.trust_anchors_num = 0;
        x->lookup = tlsmail__found_lookup;
        x->lookup_ctx = c;
        x->leaf = &c->leaf;
        x->vtable = &tlsmail__x509_vtable;
        br_ssl_engine_set_x509(&c->sc.eng, &x->vtable);
    }
    /* Half-duplex is all SMTP needs (we always finish writing before we
       read), so one 16 KB buffer serves both directions: BIDI would double
       the client's size for nothing. */
    br_ssl_engine_set_buffer(&c->sc.eng, c->iobuf, sizeof c->iobuf, 0);
    if ((err = tlsmail__board_hooks(c)) != 0) return err;
    /* The name for SNI and the certificate check: "host." is "host" (RFC
       6066 3: no trailing dot), and an IP literal, which only a pin can
       dial, is no name at all (RFC 6066 3: no IP addresses in SNI). */
    memcpy(name, c->host, n + 1);
    if (n > 1 && name[n - 1] == '.') name[n - 1] = '\0';
    if (tlsmail__is_ip_literal(name)) {
        TLSMAIL_ASSERT(t && t->kind == TLSMAIL__TRUST_PIN);
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
/* What tlsmail_tls_info reports of a completed handshake, taken from
   BearSSL's engine before the connection's end wipes it; the key's pin is
   what the pin engine matched, or the SHA-256 of the key BearSSL's engine
   verified (rebuilt as the pin engine rebuilds it). */
TLSMAIL__PRIVATE void tlsmail__leaf_done(tlsmail_client *c) {
    tlsmail__leaf *l = &c->leaf;
    l->version = (unsigned short)br_ssl_engine_get_version(&c->sc.eng);
    l->suite = c->sc.eng.session.cipher_suite;
    l->done = 1;
    if (c->session_resumed) return; /* no certificate came */
    if (c->trust && c->trust->kind == TLSMAIL__TRUST_PIN) {
        memcpy(l->spki, c->trust->pin, sizeof l->spki);
        l->cert = 1;
    } else {
        const br_x509_class *const *xc = &c->x509.policy.xc.vtable;
        const br_x509_pkey *k = (*xc)->get_pkey(xc, NULL);
        l->cert = k && tlsmail__spki_sha256(k, l->spki) == 0;
    }
}

TLSMAIL__PRIVATE int tlsmail__secure(tlsmail_client *c) {
    int err;
    c->ra_pos = c->ra_len = 0; /* nothing read ahead from an earlier connection */
    err = tlsmail__tls_start(c);
    tlsmail__session_done(c, err);
    if (!err) tlsmail__leaf_done(c);
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
        n = tlsmail__io_read(c, buf, len);
        return n > 0 ? n : n == 0 ? TLSMAIL_ECLOSED : n;
    }
    n = br_sslio_read(&c->ioc, buf, len);
    return n > 0 ? n : tlsmail__tls_error(c);
}

/* Records leave here only when the engine's buffer is full and more of
   buf is still to come: each with MSG_MORE. What is left stays in the
   buffer for the next write or flush. */
TLSMAIL__PRIVATE int tlsmail__stream_write(tlsmail_client *c, const void *buf, size_t len) {
    int ok;
    if (!c->tls) return tlsmail__io_write_all(c, (const unsigned char *)buf, len);
    c->more = 1;
    ok = br_sslio_write_all(&c->ioc, buf, len) == 0;
    c->more = 0;
    return ok ? 0 : tlsmail__tls_error(c);
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
    int ok;
    if (!c->tls) {
        *room = sizeof c->iobuf;
        return c->iobuf;
    }
    p = br_ssl_engine_sendapp_buf(&c->sc.eng, room);
    if (p && *room >= 2) return p;
    /* A full buffer is a record already: this sends it, with more of the
       message right behind (MSG_MORE). One octet of room left (never in
       practice) makes a record of what is there. */
    c->more = 1;
    ok = br_sslio_flush(&c->ioc) == 0;
    c->more = 0;
    if (ok && (p = br_ssl_engine_sendapp_buf(&c->sc.eng, room)) != NULL && *room >= 2) return p;
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
        int n = tlsmail__io_write(c, rec, len);
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
    tlsmail__found_free(&c->found, tlsmail__actx(c));
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

/* s[0..n) with each base64 run that starts with echo masked, "<secret>"
   (or stars, where that would not fit), NUL-terminated; the new length. A
   server that quotes our command back ("500 unrecognized: AUTH PLAIN
   AHVz...") must not put the secret into the caller's error text, trace
   or log. */
TLSMAIL__PRIVATE size_t tlsmail__mask_echo(char *s, size_t n, const char *echo) {
    static const char masked[] = "<secret>";
    size_t el = strlen(echo), i = 0, end;
    while (el && i + el <= n) {
        if (memcmp(s + i, echo, el) != 0) {
            i++;
            continue;
        }
        for (end = i + el; end < n && (tlsmail__b64_val((unsigned char)s[end]) >= 0 || s[end] == '=');
             end++) {}
        if (end - i < sizeof masked - 1) {
            memset(s + i, '*', end - i);
            i = end;
            continue;
        }
        memcpy(s + i, masked, sizeof masked - 1);
        memmove(s + i + sizeof masked - 1, s + end, n - end);
        n -= end - i - (sizeof masked - 1);
        i += sizeof masked - 1;
    }
    s[n] = 0;
    return n;
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
            const char *text;
            size_t len, tl, room;
            if (c->echo[0] && c->rp.len > 4)
                c->rp.len = 4 + tlsmail__mask_echo(c->rp.line + 4, c->rp.len - 4, c->echo);
            text = tlsmail__reply_text(&c->rp);
            tl = len = strlen(text);
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

/* A reply set aside while the replies after it are read: tlsmail_describe
   must quote the one that refused, not the last one read. */
typedef struct tlsmail__kept {
    int stage;                      /* the command it answered */
    int code;
    char enhanced[12];
    size_t textlen;
    char text[TLSMAIL_REPLY_TEXT];
} tlsmail__kept;

TLSMAIL__PRIVATE void tlsmail__keep_reply(const tlsmail_client *c, tlsmail__kept *k) {
    k->stage = c->stage;
    k->code = c->code;
    memcpy(k->enhanced, c->enhanced, sizeof k->enhanced);
    k->textlen = c->textlen;
    memcpy(k->text, c->text, sizeof k->text);
}

TLSMAIL__PRIVATE int tlsmail__restore_reply(tlsmail_client *c, const tlsmail__kept *k, int err) {
    c->stage = k->stage;
    c->code = k->code;
    memcpy(c->enhanced, k->enhanced, sizeof c->enhanced);
    c->textlen = k->textlen;
    memcpy(c->text, k->text, sizeof c->text);
    c->reply_fresh = 1;
    return c->err = err;
}

/* A new command group may start only when everything the server said has
   been read: bytes still waiting were sent out of turn, and reading them
   as the next command's reply would let them answer for it. They may wait
   in the reply buffer, in the engine (decrypted, not yet taken) or, as a
   record of their own that came with the last reply, in the read-ahead.
   The socket is not asked: what arrives later (a 421 from a server that
   timed us out) is read as the answer, and says what it is. */
TLSMAIL__PRIVATE int tlsmail__unread(const tlsmail_client *c) {
    if (c->rpos != c->rlen) return 1;
    return c->tls && (c->ra_pos != c->ra_len || (br_ssl_engine_current_state(&c->sc.eng) & BR_SSL_RECVAPP));
}

TLSMAIL__PRIVATE int tlsmail__begin_group(tlsmail_client *c) {
    c->reply_fresh = 0; /* a reply answers the command before, not this one */
    if (c->queued++ == 0 && tlsmail__unread(c)) return tlsmail__fatal(c, TLSMAIL_EPROTO);
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
    return c->rpos != c->rlen || tlsmail__sock_readable(c);
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
    /* In clear a command goes out as it is put; the flush ends its group,
       so that STARTTLS is checked for bytes sent ahead of it too. */
    if ((err = tlsmail__put(c, "EHLO ", name, NULL)) != 0 || (err = tlsmail__flush(c)) != 0) return err;
    code = tlsmail__read_reply(c, &c->ext);
    if (code < 0) return code;
    if (code != 250 || !(c->ext.flags & TLSMAIL__EXT_STARTTLS)) return TLSMAIL_ESTARTTLS;
    /* Nor may anything come between the EHLO reply and STARTTLS: a "220"
       sent ahead would answer it before it was asked. */
    if (tlsmail__pending(c)) return TLSMAIL_ESTARTTLS;
    if ((err = tlsmail__put(c, "STARTTLS", NULL, NULL)) != 0 || (err = tlsmail__flush(c)) != 0) return err;
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
        !((err == TLSMAIL_ECONNECT && tlsmail__refused(c)) ||
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
    c->starttls = starttls;
    if ((err = tlsmail__open_transport(c, port)) != 0) return err;
    c->state = TLSMAIL__GREETED; /* connected: failures now go through tlsmail__fatal */
    if (starttls && (err = tlsmail__upgrade(c)) != 0) return err;
    c->stage = TLSMAIL_STAGE_TLS;
    if ((err = tlsmail__secure(c)) != 0) {
        if (!tlsmail__connect_failed(c)) return err;
        c->stage = TLSMAIL_STAGE_CONNECT;
        return err == TLSMAIL_ETIMEOUT ? err : TLSMAIL_ECONNECT;
    }
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
    c->trust = cfg->trust; /* NULL or a zeroed one: the system store */
    /* BearSSL matches names only against dNSName entries: an IP literal can
       never pass the check honestly, so it needs a pinned key. */
    if (tlsmail__is_ip_name(c->host) ? !(c->trust && c->trust->kind == TLSMAIL__TRUST_PIN)
                                        : !tlsmail__host_name_ok(c->host))
        return TLSMAIL_EINVAL;
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
    if (!cfg || tlsmail__configure(c, cfg, &port) != 0) return c->err = TLSMAIL_EINVAL;
    /* The system store is searched during the handshake; that there is one
       is checked now, before a byte goes out. */
    if (tlsmail__trust_is_default(c->trust) && (err = tlsmail__default_trust_ok(tlsmail__actx(c))) != 0) {
        tlsmail__disconnect(c, TLSMAIL__ABRUPT);
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
    /* The anchors found are needed by the handshake, and by nothing after it. */
    tlsmail__found_free(&c->found, tlsmail__actx(c));
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

/* Only what a handshake of this build can have made: TLS 1.2, a suite it
   offers (not a ChaCha20 session of a default build in a TLSMAIL_SMALL
   one), an ID of 1 to 32 octets, a host name as tlsmail_dial keeps it. */
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
    if (t.params.version != BR_TLS12 || !tlsmail__suite_offered(t.params.cipher_suite)) goto done;
    t.valid = 1;
    ok = tlsmail__session_fresh(&t);
done:
    if (ok) *s = t;
    tlsmail__wipe(&t, sizeof t);
    return ok ? 0 : TLSMAIL_EINVAL;
}

/* ==== [tlsmail:auth] AUTH: RFC 4954; PLAIN, LOGIN, OAuth 2.0, EXTERNAL ==== */

/* Every constructor starts from this, so a field added later is NULL. */
TLSMAIL__PRIVATE tlsmail_auth tlsmail__auth_new(int mech, const char *identity,
                                                const char *username, const char *secret,
                                                const char *host, const char *token) {
    tlsmail_auth a;
    memset(&a, 0, sizeof a);
    a.mechanism = mech;
    a.identity = identity;
    a.username = username;
    a.secret = secret;
    a.host = host;
    a.token = token;
    return a;
}

TLSMAIL_DEF tlsmail_auth tlsmail_plain_auth(const char *identity, const char *username,
                                            const char *password, const char *host) {
    return tlsmail__auth_new(TLSMAIL_AUTH_PLAIN, identity, username, password, host, NULL);
}

TLSMAIL_DEF tlsmail_auth tlsmail_login_auth(const char *username, const char *password,
                                            const char *host) {
    return tlsmail__auth_new(TLSMAIL_AUTH_LOGIN, NULL, username, password, host, NULL);
}

TLSMAIL_DEF tlsmail_auth tlsmail_auto_auth(const char *username, const char *password,
                                           const char *host) {
    return tlsmail__auth_new(TLSMAIL_AUTH_AUTO, NULL, username, password, host, NULL);
}

TLSMAIL_DEF tlsmail_auth tlsmail_xoauth2_auth(const char *username, const char *token,
                                              const char *host) {
    return tlsmail__auth_new(TLSMAIL_AUTH_XOAUTH2, NULL, username, NULL, host, token);
}

TLSMAIL_DEF tlsmail_auth tlsmail_oauthbearer_auth(const char *username, const char *token,
                                                  const char *host) {
    return tlsmail__auth_new(TLSMAIL_AUTH_OAUTHBEARER, NULL, username, NULL, host, token);
}

TLSMAIL_DEF tlsmail_auth tlsmail_external_auth(const char *identity, const char *host) {
    return tlsmail__auth_new(TLSMAIL_AUTH_EXTERNAL, identity, NULL, NULL, host, NULL);
}

/* RFC 4954 4: a response line of at most 12,288 octets, CRLF included. */
enum { TLSMAIL__SASL_LINE = 12288, TLSMAIL__SASL_B64_MAX = TLSMAIL__SASL_LINE - 2 };
/* RFC 4954 4: the initial response rides on the AUTH line only if the line
   keeps RFC 5321's 512 octets, the length every server reads. */
enum { TLSMAIL__AUTH_LINE = 512 };

/* A field that goes inside a SASL response as it is: 1..255 octets (RFC
   4616 2 for PLAIN; the same bound for the others), and for the OAuth
   mechanisms, whose fields are separated by 0x01, no control at all. */
TLSMAIL__PRIVATE int tlsmail__sasl_field(const char *s, int controls_ok) {
    size_t n;
    if (!s) return 0;
    for (n = 0; n <= 255 && s[n]; n++)
        if (!controls_ok && ((unsigned char)s[n] < 0x20 || s[n] == 0x7F)) return 0;
    return n >= 1 && n <= 255;
}

/* The OAuth response at its largest (OAUTHBEARER, host and port at their
   longest, 255 and 5 octets): does its base64 fit one response line? */
TLSMAIL__PRIVATE int tlsmail__oauth_fits(const char *user, const char *token) {
    tlsmail__part pt[12];
    size_t n = tlsmail__oauth_parts(pt, TLSMAIL_AUTH_OAUTHBEARER, user, token, "", "");
    return tlsmail__b64_len(tlsmail__parts_len(pt, n) + 255 + 5) <= TLSMAIL__SASL_B64_MAX;
}

/* Credentials are checked the same way by the client and the one-call
   send, before anything is sent. */
TLSMAIL__PRIVATE int tlsmail__check_auth(const tlsmail_auth *a, const char *host) {
    int m, pw, tok;
    if (!a || a->mechanism < TLSMAIL_AUTH_PLAIN || a->mechanism > TLSMAIL_AUTH_EXTERNAL)
        return TLSMAIL_EINVAL;
    m = a->mechanism;
    if (a->identity && *a->identity && !tlsmail__sasl_field(a->identity, 1)) return TLSMAIL_EINVAL;
    pw = a->secret && *a->secret;
    tok = a->token && *a->token;
    /* A token: printable, no space (RFC 6750 2.1 b64token is narrower). */
    if (tok && (tlsmail__check_token(a->token, TLSMAIL__SASL_LINE) != 0 ||
                !tlsmail__sasl_field(a->username, 0) || !tlsmail__oauth_fits(a->username, a->token)))
        return TLSMAIL_EINVAL;
    if (pw && (!tlsmail__sasl_field(a->secret, 1) || !tlsmail__sasl_field(a->username, 1)))
        return TLSMAIL_EINVAL;
    if ((m == TLSMAIL_AUTH_PLAIN || m == TLSMAIL_AUTH_LOGIN) && !pw) return TLSMAIL_EINVAL;
    if ((m == TLSMAIL_AUTH_XOAUTH2 || m == TLSMAIL_AUTH_OAUTHBEARER) && !tok) return TLSMAIL_EINVAL;
    if (m == TLSMAIL_AUTH_AUTO && !pw && !tok) return TLSMAIL_EINVAL;
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
   exchange), read the server's reply, and fail with err. The challenge is
   the reply told: the answer to "*" only confirms the cancel. */
TLSMAIL__PRIVATE int tlsmail__auth_cancel(tlsmail_client *c, int err) {
    tlsmail__kept kept;
    int code;
    tlsmail__keep_reply(c, &kept);
    if (tlsmail__put(c, "*", NULL, NULL) || tlsmail__flush(c)) return c->err;
    code = tlsmail__read_reply(c, NULL);
    return code < 0 ? code : tlsmail__restore_reply(c, &kept, err);
}

/* The base64 into the stream, its first octets into c->echo as well. */
TLSMAIL__PRIVATE int tlsmail__emit_stream(void *ctx, const char *s, size_t n) {
    tlsmail_client *c = (tlsmail_client *)ctx;
    size_t have = strlen(c->echo), k = sizeof c->echo - 1 - have;
    if (k > n) k = n;
    memcpy(c->echo + have, s, k);
    c->echo[have + k] = 0;
    return tlsmail__stream_write(c, s, n);
}

/* Queue verb (shown in the trace; "" for a bare response line) and then
   the base64 of the parts, which the trace shows as "<secret>". Encoded on
   the fly into the TLS engine's buffer, which is wiped when the session
   ends: no other copy of the secret is left, and no line buffer of its
   size is needed. Only ever over TLS. */
TLSMAIL__PRIVATE int tlsmail__put_sasl(tlsmail_client *c, const char *verb, const tlsmail__part *pt,
                                       size_t np) {
    static const char masked[] = "<secret>";
    char t[40];
    size_t vl = strlen(verb);
    int err;
    TLSMAIL_ASSERT(vl < sizeof t - sizeof masked);
    TLSMAIL__ASSERT_TLS(c);
    if ((err = tlsmail__begin_group(c)) != 0) return err;
    memcpy(t, verb, vl);
    memcpy(t + vl, masked, sizeof masked - 1);
    tlsmail__trace(c, TLSMAIL_TRACE_SEND, t, vl + sizeof masked - 1);
    err = tlsmail__stream_write(c, verb, vl);
    tlsmail__wipe(c->echo, sizeof c->echo);
    if (!err) err = tlsmail__b64_parts(pt, np, tlsmail__emit_stream, c);
    if (!err) err = tlsmail__stream_write(c, "\r\n", 2);
    return err < 0 ? tlsmail__fatal(c, err) : 0;
}

/* AUTH <name> with a one-message response (PLAIN, XOAUTH2, OAUTHBEARER):
   on the AUTH line when that line fits TLSMAIL__AUTH_LINE, else after the
   server's empty 334 (a 334 with a challenge is cancelled: these
   mechanisms start with the client). Returns the code of the reply to the
   response, or a negative code. */
TLSMAIL__PRIVATE int tlsmail__sasl_one(tlsmail_client *c, const char *name, const tlsmail__part *pt,
                                       size_t np) {
    char verb[24];
    size_t b64 = tlsmail__b64_len(tlsmail__parts_len(pt, np)), nl = strlen(name);
    int err, code;
    TLSMAIL_ASSERT(nl + 7 <= sizeof verb);
    if (b64 > TLSMAIL__SASL_B64_MAX) return TLSMAIL_EINVAL;
    memcpy(verb, "AUTH ", 5);
    memcpy(verb + 5, name, nl);
    memcpy(verb + 5 + nl, " ", 2);
    if (5 + nl + 1 + b64 + 2 <= TLSMAIL__AUTH_LINE) {
        if ((err = tlsmail__put_sasl(c, verb, pt, np)) != 0 || (err = tlsmail__flush(c)) != 0)
            return err;
        return tlsmail__read_reply(c, NULL);
    }
    if ((err = tlsmail__put(c, "AUTH ", name, NULL)) != 0 || (err = tlsmail__flush(c)) != 0)
        return err;
    code = tlsmail__read_reply(c, NULL);
    if (code != 334) return code;
    if (c->textlen != 0) return tlsmail__auth_cancel(c, TLSMAIL_EPROTO);
    if ((err = tlsmail__put_sasl(c, "", pt, np)) != 0 || (err = tlsmail__flush(c)) != 0) return err;
    return tlsmail__read_reply(c, NULL);
}

/* ---- PLAIN (RFC 4616 2) and LOGIN --------------------------------------------- */

/* authzid NUL authcid NUL passwd, as parts (5). */
TLSMAIL__PRIVATE size_t tlsmail__plain_parts(tlsmail__part *pt, const char *identity,
                                             const char *username, const char *password) {
    const char *id = identity ? identity : "";
    pt[0].p = id;
    pt[0].n = strlen(id);
    pt[1].p = "";               /* its NUL */
    pt[1].n = 1;
    pt[2].p = username;
    pt[2].n = strlen(username);
    pt[3] = pt[1];
    pt[4].p = password;
    pt[4].n = strlen(password);
    pt[0].gs2 = pt[1].gs2 = pt[2].gs2 = pt[3].gs2 = pt[4].gs2 = 0;
    return 5;
}

TLSMAIL__PRIVATE int tlsmail__auth_plain(tlsmail_client *c, const tlsmail_auth *a) {
    tlsmail__part pt[5];
    size_t np = tlsmail__plain_parts(pt, a->identity, a->username, a->secret);
    int code = tlsmail__sasl_one(c, "PLAIN", pt, np);
    /* RFC 4616 has no server challenge after the response. */
    return code == 334 ? tlsmail__auth_cancel(c, TLSMAIL_EAUTH) : tlsmail__auth_verdict(code);
}

/* LOGIN: two 334 prompts, answered with the user name and the password
   whatever their wording (servers vary); a third 334 is refused. */
TLSMAIL__PRIVATE int tlsmail__auth_login(tlsmail_client *c, const tlsmail_auth *a) {
    tlsmail__part field[2];
    int err, code, i;
    field[0].p = a->username;
    field[0].n = strlen(a->username);
    field[1].p = a->secret;
    field[1].n = strlen(a->secret);
    field[0].gs2 = field[1].gs2 = 0;
    err = tlsmail__put(c, "AUTH LOGIN", NULL, NULL);
    if (!err) err = tlsmail__flush(c);
    if (err) return err;
    code = tlsmail__read_reply(c, NULL);
    for (i = 0; i < 2 && code == 334; i++) {
        if ((err = tlsmail__put_sasl(c, "", &field[i], 1)) != 0 || (err = tlsmail__flush(c)) != 0)
            return err;
        code = tlsmail__read_reply(c, NULL);
    }
    err = code == 334 ? tlsmail__auth_cancel(c, TLSMAIL_EAUTH) : tlsmail__auth_verdict(code);
    if (!err && i < 2) err = TLSMAIL_EPROTO; /* 235 before we even sent a password */
    return err;
}

/* ---- XOAUTH2 and OAUTHBEARER (RFC 7628) ------------------------------------- */

/* The server refused the token with an error challenge: keep its decoded
   JSON as the reply text and its status for tlsmail_describe, answer as
   the mechanism wants (XOAUTH2: an empty line; OAUTHBEARER: ^A, RFC 7628
   3.2.3), and take the final reply: a refusal (TLSMAIL_EAUTH for a 5xx),
   never a success. */
TLSMAIL__PRIVATE int tlsmail__oauth_refused(tlsmail_client *c, int mech) {
    /* Decoded into the free end of the text buffer (the JSON is shorter
       than its base64), so no second buffer of that size is needed. */
    char *json = c->text + c->textlen + 1;
    long n = tlsmail__oauth_challenge(json, sizeof c->text - c->textlen - 1, c->text, c->textlen);
    int err, code;
    if (n > 0) {
        memmove(c->text, json, (size_t)n + 1);
        c->textlen = (size_t)n;
        tlsmail__oauth_status(c->text, c->textlen, c->auth_status, sizeof c->auth_status);
    }
    err = tlsmail__put(c, mech == TLSMAIL_AUTH_XOAUTH2 ? "" : "AQ==", NULL, NULL);
    if (!err) err = tlsmail__flush(c);
    if (err) return err;
    code = tlsmail__read_reply(c, NULL);
    if (code == 334) return tlsmail__auth_cancel(c, TLSMAIL_EPROTO);
    err = tlsmail__auth_verdict(code);
    return err == 0 ? TLSMAIL_EPROTO : err; /* 235 after an error: a server we don't understand */
}

TLSMAIL__PRIVATE int tlsmail__auth_oauth(tlsmail_client *c, const char *user, const char *token,
                                         int mech) {
    tlsmail__part pt[12];
    char port[24];
    size_t np;
    int code;
    (void)tlsmail__utoa(port, c->port);
    np = tlsmail__oauth_parts(pt, mech, user, token, c->host, port);
    code = tlsmail__sasl_one(c, mech == TLSMAIL_AUTH_XOAUTH2 ? "XOAUTH2" : "OAUTHBEARER", pt, np);
    return code == 334 ? tlsmail__oauth_refused(c, mech) : tlsmail__auth_verdict(code);
}

/* ---- EXTERNAL (RFC 4422 appendix A) --------------------------------------------- */

/* The authorisation identity, or "=" for none (RFC 4954 4: an empty
   initial response). Not a secret: the trace shows it. */
TLSMAIL__PRIVATE int tlsmail__auth_external(tlsmail_client *c, const tlsmail_auth *a) {
    char b64[4 * 86 + 1];
    const char *id = a->identity ? a->identity : "";
    int err, code;
    if (*id) (void)tlsmail__b64_encode(b64, sizeof b64, id, strlen(id)); /* <= 255: fits */
    else memcpy(b64, "=", 2);
    err = tlsmail__put(c, "AUTH EXTERNAL ", b64, NULL);
    if (!err) err = tlsmail__flush(c);
    if (err) return err;
    code = tlsmail__read_reply(c, NULL);
    return code == 334 ? tlsmail__auth_cancel(c, TLSMAIL_EAUTH) : tlsmail__auth_verdict(code);
}

/* The mechanism to use: the one asked for, or AUTO's pick from what the
   server offers; 0 when there is none to use. */
TLSMAIL__PRIVATE int tlsmail__auth_pick(const tlsmail_client *c, const tlsmail_auth *a) {
    unsigned off = c->ext.auth;
    if (a->mechanism != TLSMAIL_AUTH_AUTO) return (off & (1u << a->mechanism)) ? a->mechanism : 0;
    if (a->token && *a->token) {
        if (off & (1u << TLSMAIL_AUTH_OAUTHBEARER)) return TLSMAIL_AUTH_OAUTHBEARER;
        if (off & (1u << TLSMAIL_AUTH_XOAUTH2)) return TLSMAIL_AUTH_XOAUTH2;
    }
    if (a->secret && *a->secret) {
        if (off & (1u << TLSMAIL_AUTH_PLAIN)) return TLSMAIL_AUTH_PLAIN;
        if (off & (1u << TLSMAIL_AUTH_LOGIN)) return TLSMAIL_AUTH_LOGIN;
    }
    return 0;
}

TLSMAIL_DEF int tlsmail_authenticate(tlsmail_client *c, const tlsmail_auth *a) {
    int mech, err = tlsmail__enter(c, TLSMAIL_STAGE_AUTH, TLSMAIL__GREETED, TLSMAIL__READY);
    if (err) return err;
    if ((err = tlsmail__check_auth(a, c->host)) != 0) return c->err = err;
    if (a->mechanism == TLSMAIL_AUTH_EXTERNAL && !c->cfg->client_cert) return c->err = TLSMAIL_EINVAL;
    if ((err = tlsmail__ensure_hello(c)) != 0) return err;
    c->stage = TLSMAIL_STAGE_AUTH;
    c->auth_status[0] = '\0';
    c->auth_asked = a->mechanism;
    /* Never fall back to another mechanism, and never go on without AUTH:
       the caller asked for this one. */
    if ((mech = tlsmail__auth_pick(c, a)) == 0) {
        c->reply_fresh = 0; /* our decision: the EHLO reply did not refuse us */
        return c->err = TLSMAIL_ENOMECH;
    }
    switch (mech) {
    case TLSMAIL_AUTH_PLAIN: err = tlsmail__auth_plain(c, a); break;
    case TLSMAIL_AUTH_LOGIN: err = tlsmail__auth_login(c, a); break;
    case TLSMAIL_AUTH_EXTERNAL: err = tlsmail__auth_external(c, a); break;
    default: err = tlsmail__auth_oauth(c, a->username, a->token, mech); break;
    }
    tlsmail__wipe(c->echo, sizeof c->echo); /* AUTH is over: later replies are not masked */
    return c->err = err;
}

/* ---- client certificates (RFC 5246 7.4.6) and their keys ------------------------ */

/* Reads the PEM objects of a certificate chain and key in two passes over
   the caller's bytes: the first counts the certificates' DER and decodes
   the key, the second copies the DER into one allocation. */
typedef struct tlsmail__ccload {
    tlsmail_client_cert *cc;
    br_pem_decoder_context pc;
    br_skey_decoder_context *kd;    /* heap: it holds the key while decoding */
    int copy;                       /* second pass: copy the DER */
    int obj;                        /* the object being read: TLSMAIL__CC_* */
    int err;
    size_t ncert, keys, der;        /* certificates, keys, DER octets so far */
    unsigned char *arena;           /* second pass: where the DER goes */
    size_t cur;                     /* the DER length of the certificate being read */
} tlsmail__ccload;

enum { TLSMAIL__CC_NONE = 0, TLSMAIL__CC_CERT, TLSMAIL__CC_KEY };

TLSMAIL__PRIVATE void tlsmail__cc_der(void *ctx, const void *buf, size_t len) {
    tlsmail__ccload *l = (tlsmail__ccload *)ctx;
    if (l->obj == TLSMAIL__CC_KEY) {
        if (!l->copy) br_skey_decoder_push(l->kd, buf, len);
        return;
    }
    if (len > (size_t)-1 / 2 - l->der) { l->err = TLSMAIL_ECLIENTCERT; return; }
    if (l->copy) memcpy(l->arena + l->der, buf, len);
    l->der += len;
    l->cur += len;
}

TLSMAIL__PRIVATE void tlsmail__cc_begin(tlsmail__ccload *l, const char *name) {
    l->obj = TLSMAIL__CC_NONE;
    if (strcmp(name, "CERTIFICATE") == 0 || strcmp(name, "X509 CERTIFICATE") == 0) {
        l->obj = TLSMAIL__CC_CERT;
        if (l->copy) {
            br_x509_certificate *x = &l->cc->chain[l->ncert];
            x->data = l->arena + l->der;
            x->data_len = 0;
        }
        l->cur = 0;
    } else if (strcmp(name, "PRIVATE KEY") == 0 || strcmp(name, "RSA PRIVATE KEY") == 0 ||
               strcmp(name, "EC PRIVATE KEY") == 0) {
        l->obj = TLSMAIL__CC_KEY;
        if (!l->copy && l->keys++ == 0) br_skey_decoder_init(l->kd);
        if (l->keys > 1) l->err = TLSMAIL_ECLIENTCERT; /* which one? */
    } else if (strstr(name, "PRIVATE KEY")) {
        l->err = TLSMAIL_ECLIENTCERT; /* encrypted, or a kind BearSSL can't read */
    }
    br_pem_decoder_setdest(&l->pc, l->obj ? tlsmail__cc_der : NULL, l);
}

TLSMAIL__PRIVATE void tlsmail__cc_end(tlsmail__ccload *l) {
    if (l->obj == TLSMAIL__CC_CERT) {
        if (l->cur == 0) l->err = TLSMAIL_ECLIENTCERT;
        else if (l->copy) l->cc->chain[l->ncert].data_len = l->cur;
        l->ncert++;
    }
    l->obj = TLSMAIL__CC_NONE;
}

/* One pass over PEM text. CRs are dropped, as in the trust loader, and a
   newline is added at the end, so a last "-----END ...-----" without one
   still ends its object. */
TLSMAIL__PRIVATE void tlsmail__cc_pass(tlsmail__ccload *l, const unsigned char *p, size_t n) {
    unsigned char tmp[256];
    int last = 0;
    br_pem_decoder_init(&l->pc);
    l->obj = TLSMAIL__CC_NONE;
    while (!last && !l->err) {
        size_t k = 0, off = 0;
        while (n > 0 && k < sizeof tmp) {
            if (*p != '\r') tmp[k++] = *p;
            p++;
            n--;
        }
        if (n == 0 && k < sizeof tmp) {
            tmp[k++] = '\n';
            last = 1;
        }
        while (off < k && !l->err) {
            off += br_pem_decoder_push(&l->pc, tmp + off, k - off);
            switch (br_pem_decoder_event(&l->pc)) {
            case BR_PEM_BEGIN_OBJ: tlsmail__cc_begin(l, br_pem_decoder_name(&l->pc)); break;
            case BR_PEM_END_OBJ: tlsmail__cc_end(l); break;
            case BR_PEM_ERROR: l->err = TLSMAIL_ECLIENTCERT; break;
            default: break;
            }
        }
    }
    if (l->obj != TLSMAIL__CC_NONE) l->err = TLSMAIL_ECLIENTCERT; /* cut short */
    tlsmail__wipe(tmp, sizeof tmp);
    tlsmail__wipe(&l->pc, sizeof l->pc); /* it may have held key octets */
}

/* Hand BearSSL the chain and key: it answers a CertificateRequest with
   them and signs the handshake with the key. */
TLSMAIL__PRIVATE void tlsmail__cc_use_rsa(const tlsmail_client_cert *cc, br_ssl_client_context *sc) {
    br_ssl_client_set_single_rsa(sc, cc->chain, cc->chain_len, &cc->rsa, cc->rsa_sign);
}

TLSMAIL__PRIVATE void tlsmail__cc_use_ec(const tlsmail_client_cert *cc, br_ssl_client_context *sc) {
    /* signing only (ECDHE suites): no static ECDH with the key */
    br_ssl_client_set_single_ec(sc, cc->chain, cc->chain_len, &cc->ec, BR_KEYTYPE_SIGN,
                                BR_KEYTYPE_EC, cc->ec_impl, cc->ec_sign);
}

/* Copy n octets of a key component to *m and advance *m past them. */
TLSMAIL__PRIVATE unsigned char *tlsmail__take(unsigned char **m, const unsigned char *src, size_t n) {
    unsigned char *at = *m;
    memcpy(at, src, n);
    *m += n;
    return at;
}

/* The decoded key, copied into one allocation of its own (the decoder's
   copy is wiped by the caller). The signing code is chosen here. */
TLSMAIL__PRIVATE int tlsmail__cc_keep_key(tlsmail_client_cert *cc,
                                          const br_skey_decoder_context *kd) {
    const br_rsa_private_key *rk = br_skey_decoder_get_rsa(kd);
    const br_ec_private_key *ek = br_skey_decoder_get_ec(kd);
    size_t n = rk ? rk->plen + rk->qlen + rk->dplen + rk->dqlen + rk->iqlen : ek ? ek->xlen : 0;
    unsigned char *m;
    if (n == 0) return TLSMAIL_ECLIENTCERT;
    if ((m = (unsigned char *)TLSMAIL_MALLOC(cc->alloc_ctx, n)) == NULL) return TLSMAIL_ENOMEM;
    cc->key_mem = m;
    cc->key_len = n;
    if (rk) {
        cc->rsa = *rk;
        cc->rsa.p = tlsmail__take(&m, rk->p, rk->plen);
        cc->rsa.q = tlsmail__take(&m, rk->q, rk->qlen);
        cc->rsa.dp = tlsmail__take(&m, rk->dp, rk->dplen);
        cc->rsa.dq = tlsmail__take(&m, rk->dq, rk->dqlen);
        cc->rsa.iq = tlsmail__take(&m, rk->iq, rk->iqlen);
        cc->key_type = BR_KEYTYPE_RSA;
#ifdef TLSMAIL_SMALL
        cc->rsa_sign = br_rsa_i31_pkcs1_sign; /* as tlsmail__tls_profile */
#else
        cc->rsa_sign = br_rsa_pkcs1_sign_get_default();
#endif
        cc->use = tlsmail__cc_use_rsa;
    } else {
        cc->ec = *ek;
        cc->ec.x = tlsmail__take(&m, ek->x, ek->xlen);
        cc->key_type = BR_KEYTYPE_EC;
#ifdef TLSMAIL_SMALL
        cc->ec_impl = &br_ec_prime_i31;
        cc->ec_sign = &br_ecdsa_i31_sign_asn1;
#else
        cc->ec_impl = br_ec_get_default();
        cc->ec_sign = br_ecdsa_sign_asn1_get_default();
#endif
        cc->use = tlsmail__cc_use_ec;
    }
    return 0;
}

/* The two big-endian integers are equal, leading zeros aside. */
TLSMAIL__PRIVATE int tlsmail__int_eq(const unsigned char *a, size_t an, const unsigned char *b,
                                     size_t bn) {
    while (an && *a == 0) { a++; an--; }
    while (bn && *b == 0) { b++; bn--; }
    return an == bn && memcmp(a, b, an) == 0;
}

/* Does the key belong to the first certificate? Checked here, because a
   mismatch would otherwise surface as the server's bare handshake alert. */
TLSMAIL__PRIVATE int tlsmail__cc_matches(const tlsmail_client_cert *cc) {
    br_x509_decoder_context *dc;
    const br_x509_pkey *pk;
    unsigned char pub[BR_EC_KBUF_PUB_MAX_SIZE > 512 ? BR_EC_KBUF_PUB_MAX_SIZE : 512];
    int ok = 0;
    size_t n;
    dc = (br_x509_decoder_context *)TLSMAIL_MALLOC(cc->alloc_ctx, sizeof *dc);
    if (!dc) return TLSMAIL_ENOMEM;
    br_x509_decoder_init(dc, NULL, NULL);
    if (tlsmail__x509_push(dc, cc->chain[0].data, cc->chain[0].data_len) == 0 &&
        br_x509_decoder_last_error(dc) == 0 && (pk = br_x509_decoder_get_pkey(dc)) != NULL) {
        if (pk->key_type == BR_KEYTYPE_RSA && cc->key_type == BR_KEYTYPE_RSA) {
#ifdef TLSMAIL_SMALL
            br_rsa_compute_modulus mod = br_rsa_i31_compute_modulus;
#else
            br_rsa_compute_modulus mod = br_rsa_compute_modulus_get_default();
#endif
            n = mod(NULL, &cc->rsa);
            ok = n > 0 && n <= sizeof pub && mod(pub, &cc->rsa) == n &&
                 tlsmail__int_eq(pub, n, pk->key.rsa.n, pk->key.rsa.nlen);
        } else if (pk->key_type == BR_KEYTYPE_EC && cc->key_type == BR_KEYTYPE_EC &&
                   pk->key.ec.curve == cc->ec.curve) {
            n = br_ec_compute_pub(cc->ec_impl, NULL, pub, &cc->ec);
            ok = n > 0 && n == pk->key.ec.qlen && memcmp(pub, pk->key.ec.q, n) == 0;
        }
    }
    TLSMAIL_FREE(cc->alloc_ctx, dc);
    return ok ? 0 : TLSMAIL_ECLIENTCERT;
}

TLSMAIL_DEF void tlsmail_client_cert_free(tlsmail_client_cert *cc) {
    void *ctx;
    if (!cc) return;
    ctx = cc->alloc_ctx;
    if (cc->key_mem) {
        tlsmail__wipe(cc->key_mem, cc->key_len);
        TLSMAIL_FREE(ctx, cc->key_mem);
    }
    if (cc->chain) TLSMAIL_FREE(ctx, cc->chain);
    tlsmail__wipe(cc, sizeof *cc);
    cc->alloc_ctx = ctx;
}

TLSMAIL_DEF int tlsmail_client_cert_pem(tlsmail_client_cert *cc, const void *cert, size_t cert_len,
                                        const void *key, size_t key_len) {
    tlsmail__ccload l;
    size_t head;
    int err = 0, pass;
    if (!cc || cc->chain || cc->key_mem || !cert || (!key && key_len)) return TLSMAIL_EINVAL;
    memset(&l, 0, sizeof l);
    l.cc = cc;
    l.kd = (br_skey_decoder_context *)TLSMAIL_MALLOC(cc->alloc_ctx, sizeof *l.kd);
    if (!l.kd) return TLSMAIL_ENOMEM;
    memset(l.kd, 0, sizeof *l.kd);
    for (pass = 0; pass < 2 && !l.err; pass++) {
        l.ncert = l.der = 0;
        tlsmail__cc_pass(&l, (const unsigned char *)cert, cert_len);
        if (key_len) tlsmail__cc_pass(&l, (const unsigned char *)key, key_len);
        if (l.err || pass) break;
        if (l.ncert == 0 || l.keys != 1 || br_skey_decoder_last_error(l.kd) != 0) {
            l.err = TLSMAIL_ECLIENTCERT;
            break;
        }
        if ((l.err = tlsmail__cc_keep_key(cc, l.kd)) != 0) break;
        if (l.ncert > ((size_t)-1 - l.der) / sizeof *cc->chain) { l.err = TLSMAIL_ENOMEM; break; }
        head = l.ncert * sizeof *cc->chain;
        cc->chain = (br_x509_certificate *)TLSMAIL_MALLOC(cc->alloc_ctx, head + l.der);
        if (!cc->chain) { l.err = TLSMAIL_ENOMEM; break; }
        l.arena = (unsigned char *)cc->chain + head;
        l.copy = 1;
    }
    tlsmail__wipe(l.kd, sizeof *l.kd);
    TLSMAIL_FREE(cc->alloc_ctx, l.kd);
    err = l.err;
    if (!err) {
        cc->chain_len = l.ncert;
        err = tlsmail__cc_matches(cc);
    }
    if (err) tlsmail_client_cert_free(cc);
    return err;
}

#ifndef TLSMAIL_NO_STDIO

/* A whole small file in memory from TLSMAIL_MALLOC (a key file: wipe it). */
TLSMAIL__PRIVATE unsigned char *tlsmail__read_small(void *ctx, const char *path, size_t *len) {
    unsigned char *buf;
    struct stat st;
    size_t n;
    FILE *f;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 20)) return NULL;
    if ((f = fopen(path, "rb")) == NULL) return NULL;
    n = (size_t)st.st_size;
    if ((buf = (unsigned char *)TLSMAIL_MALLOC(ctx, n + 1)) != NULL) {
        /* one octet more than stat said: a file that grew is refused */
        *len = fread(buf, 1, n + 1, f);
        if (ferror(f) || *len > n) {
            tlsmail__wipe(buf, n + 1);
            TLSMAIL_FREE(ctx, buf);
            buf = NULL;
        }
    }
    (void)fclose(f);
    return buf;
}

TLSMAIL_DEF int tlsmail_client_cert_file(tlsmail_client_cert *cc, const char *cert_path,
                                         const char *key_path) {
    unsigned char *crt, *key = NULL;
    size_t clen = 0, klen = 0;
    int err;
    if (!cc || !cert_path || cc->chain || cc->key_mem) return TLSMAIL_EINVAL;
    if ((crt = tlsmail__read_small(cc->alloc_ctx, cert_path, &clen)) == NULL)
        return TLSMAIL_ECLIENTCERT;
    if (key_path && (key = tlsmail__read_small(cc->alloc_ctx, key_path, &klen)) == NULL) {
        err = TLSMAIL_ECLIENTCERT;
    } else {
        err = tlsmail_client_cert_pem(cc, crt, clen, key, klen);
    }
    tlsmail__wipe(crt, clen);
    TLSMAIL_FREE(cc->alloc_ctx, crt);
    if (key) {
        tlsmail__wipe(key, klen);
        TLSMAIL_FREE(cc->alloc_ctx, key);
    }
    return err;
}

#endif /* TLSMAIL_NO_STDIO */

/* Called by tlsmail__tls_start, after the profile and before the
   handshake; without a client certificate BearSSL answers a
   CertificateRequest with an empty Certificate. */
TLSMAIL__PRIVATE void tlsmail__client_cert_use(tlsmail_client *c) {
    const tlsmail_client_cert *cc = c->cfg ? c->cfg->client_cert : NULL;
    if (cc && cc->chain_len && cc->use) cc->use(cc, &c->sc);
}

/* ==== [tlsmail:commands] MAIL, RCPT, DATA, RSET, NOOP, QUIT ==== */

/* Append s to the parameter buffer; 0, or TLSMAIL_EINVAL when full. */
TLSMAIL__PRIVATE int tlsmail__cat(char *buf, size_t cap, const char *s) {
    size_t a = strlen(buf), b = strlen(s);
    if (a + b >= cap) return TLSMAIL_EINVAL;
    memcpy(buf + a, s, b + 1);
    return 0;
}

/* " KEY=" and the xtext of s (RFC 3461 4), at most max octets encoded. */
TLSMAIL__PRIVATE int tlsmail__cat_xtext(char *buf, size_t cap, const char *key, const char *s,
                                        int utf8, size_t max) {
    char x[512];
    long n = tlsmail__xtext(x, sizeof x, s, strlen(s), utf8);
    if (n < 0 || (size_t)n > max) return TLSMAIL_EINVAL;
    if (tlsmail__cat(buf, cap, key) != 0) return TLSMAIL_EINVAL;
    return tlsmail__cat(buf, cap, x);
}

/* RFC 3461 4.4: an ENVID is printable ASCII, at most 100 characters as
   it goes out (xtext). */
TLSMAIL__PRIVATE int tlsmail__check_envid(const char *s) {
    char x[128];
    size_t i;
    for (i = 0; s[i]; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7E || i > 100) return TLSMAIL_EINVAL;
    if (i == 0) return TLSMAIL_EINVAL;
    return tlsmail__xtext(x, 101, s, i, 0) < 0 ? TLSMAIL_EINVAL : 0;
}

/* The options of a MAIL, valid whatever the server offers. */
TLSMAIL__PRIVATE int tlsmail__check_mail_opts(const tlsmail_mail_opts *o) {
    if (!o) return 0;
    if (o->body < TLSMAIL_BODY_AUTO || o->body > TLSMAIL_BODY_8BITMIME ||
        o->ret < TLSMAIL_RET_DEFAULT || o->ret > TLSMAIL_RET_HDRS ||
        (o->envid && tlsmail__check_envid(o->envid) != 0))
        return TLSMAIL_EINVAL;
    return 0;
}

/* What MAIL will declare, decided before a byte goes out, so a local
   refusal leaves the session as it was. */
enum { TLSMAIL__MAIL_TAIL = 224 };
typedef struct tlsmail__mailplan {
    char tail[TLSMAIL__MAIL_TAIL];  /* ">" and the ESMTP parameters */
    int body8;                      /* BODY=8BITMIME declared */
    int utf8;                       /* SMTPUTF8 declared */
} tlsmail__mailplan;

TLSMAIL__PRIVATE int tlsmail__plan_mail(tlsmail_client *c, const char *from,
                                        const tlsmail_mail_opts *o, tlsmail__mailplan *mp) {
    static const tlsmail_mail_opts none = { 0, TLSMAIL_BODY_AUTO, 0, TLSMAIL_RET_DEFAULT, NULL };
    unsigned ext = c->ext.flags;
    char num[24];
    int err = 0;
    if (!o) o = &none;
    if (tlsmail__check_mail_opts(o) != 0) return TLSMAIL_EINVAL;
    mp->utf8 = tlsmail__is_8bit(from) || o->smtputf8;
    mp->body8 = o->body == TLSMAIL_BODY_8BITMIME ||
                (o->body == TLSMAIL_BODY_AUTO && (ext & TLSMAIL__EXT_8BITMIME));
    /* Our refusals, not the server's: nothing is sent (RFC 6152 3, RFC
       6531 3.4, RFC 1870 6.1). */
    c->missing_ext = 0;
    if (mp->body8 && !(ext & TLSMAIL__EXT_8BITMIME)) c->missing_ext = TLSMAIL__EXT_8BITMIME;
    else if (mp->utf8 && !(ext & TLSMAIL__EXT_SMTPUTF8)) c->missing_ext = TLSMAIL__EXT_SMTPUTF8;
    if (c->missing_ext) return TLSMAIL_ENOEXT;
    c->size_declared = o->size;
    if (o->size && c->ext.size_limit && o->size > c->ext.size_limit) return TLSMAIL_ETOOBIG;
    memcpy(mp->tail, ">", 2);
    if (o->size && (ext & TLSMAIL__EXT_SIZE)) {
        (void)tlsmail__utoa(num, o->size);
        err |= tlsmail__cat(mp->tail, sizeof mp->tail, " SIZE=");
        err |= tlsmail__cat(mp->tail, sizeof mp->tail, num);
    }
    if (mp->body8) err |= tlsmail__cat(mp->tail, sizeof mp->tail, " BODY=8BITMIME");
    if (mp->utf8) err |= tlsmail__cat(mp->tail, sizeof mp->tail, " SMTPUTF8");
    if (ext & TLSMAIL__EXT_DSN) {
        if (o->ret)
            err |= tlsmail__cat(mp->tail, sizeof mp->tail,
                                o->ret == TLSMAIL_RET_FULL ? " RET=FULL" : " RET=HDRS");
        /* RFC 3461 4.4: at most 100 characters */
        if (o->envid) err |= tlsmail__cat_xtext(mp->tail, sizeof mp->tail, " ENVID=", o->envid, 0, 100);
    }
    return err ? TLSMAIL_EINVAL : 0;
}

/* A 250 to MAIL: the transaction is open, with what MAIL declared. */
TLSMAIL__PRIVATE void tlsmail__mail_accepted(tlsmail_client *c, const tlsmail__mailplan *mp) {
    c->state = TLSMAIL__MAIL;
    c->utf8 = mp->utf8;
    c->body8 = mp->body8;
    c->queue_id[0] = '\0';
}

TLSMAIL__PRIVATE int tlsmail__mail(tlsmail_client *c, const char *from, const tlsmail_mail_opts *o) {
    tlsmail__mailplan mp;
    int err = tlsmail__enter(c, TLSMAIL_STAGE_MAIL, TLSMAIL__GREETED, TLSMAIL__READY);
    if (err) return err;
    if (tlsmail__check_mailbox(from, 1) != 0 || tlsmail__check_mail_opts(o) != 0)
        return c->err = TLSMAIL_EINVAL;
    if ((err = tlsmail__ensure_hello(c)) != 0) return err;
    c->stage = TLSMAIL_STAGE_MAIL;
    if ((err = tlsmail__plan_mail(c, from, o, &mp)) != 0) {
        c->reply_fresh = 0;
        return c->err = err;
    }
    if ((err = tlsmail__put(c, "MAIL FROM:<", from, mp.tail)) != 0 || (err = tlsmail__flush(c)) != 0)
        return err;
    err = tlsmail__verdict(tlsmail__read_reply(c, NULL), 250);
    if (!err) tlsmail__mail_accepted(c, &mp);
    return c->err = err;
}

TLSMAIL_DEF int tlsmail_mail(tlsmail_client *c, const char *from) { return tlsmail__mail(c, from, NULL); }

TLSMAIL_DEF int tlsmail_mail_ex(tlsmail_client *c, const char *from, const tlsmail_mail_opts *o) {
    return tlsmail__mail(c, from, o);
}

/* A non-ASCII recipient needs the SMTPUTF8 that MAIL declared. */
TLSMAIL__PRIVATE int tlsmail__check_rcpt(const tlsmail_client *c, const char *to) {
    if (tlsmail__check_mailbox(to, 0) != 0) return TLSMAIL_EINVAL;
    if (tlsmail__is_8bit(to) && !c->utf8)
        return (c->ext.flags & TLSMAIL__EXT_SMTPUTF8) ? TLSMAIL_EINVAL : TLSMAIL_ENOEXT;
    return 0;
}

/* RFC 3461 4.2: an ORCPT parameter is at most 500 characters, "ORCPT="
   and its "rfc822;" or "utf-8;" included (RFC 6533's type when it is not
   ASCII): what is left for the encoded address. */
#define TLSMAIL__ORCPT_MAX(utf8) (500 - 6 - ((utf8) ? 6 : 7))

/* The options of a RCPT, valid whatever the server offers: NOTIFY NEVER
   only alone (RFC 3461 4.1), an ORCPT that is an address and fits once
   encoded (a valid address can outgrow it: RFC 6533 writes "+" as six
   octets). */
TLSMAIL__PRIVATE int tlsmail__check_rcpt_opts(const tlsmail_rcpt_opts *o) {
    char x[512];
    long n;
    int u;
    if (!o) return 0;
    if ((o->notify & ~15u) || ((o->notify & TLSMAIL_NOTIFY_NEVER) && o->notify != TLSMAIL_NOTIFY_NEVER))
        return TLSMAIL_EINVAL;
    if (!o->orcpt) return 0;
    if (tlsmail__check_mailbox(o->orcpt, 0) != 0) return TLSMAIL_EINVAL;
    u = tlsmail__is_8bit(o->orcpt);
    n = tlsmail__xtext(x, sizeof x, o->orcpt, strlen(o->orcpt), u);
    return n < 0 || n > TLSMAIL__ORCPT_MAX(u) ? TLSMAIL_EINVAL : 0;
}

/* ">" and the DSN parameters of a RCPT, when the server offers DSN. An
   ORCPT that is not ASCII is RFC 6533's utf-8 type, which needs SMTPUTF8
   (utf8: MAIL declared it); RFC 3461 4.2: at most 500 characters. */
enum { TLSMAIL__RCPT_TAIL = 560 };
TLSMAIL__PRIVATE int tlsmail__rcpt_tail(const tlsmail_client *c, const tlsmail_rcpt_opts *o,
                                        int utf8, char *tail, size_t cap) {
    static const char *const names[] = { "SUCCESS", "FAILURE", "DELAY", "NEVER" };
    int err = 0, i, first = 1;
    memcpy(tail, ">", 2);
    if (!o || !(c->ext.flags & TLSMAIL__EXT_DSN)) return 0;
    if (o->orcpt && tlsmail__is_8bit(o->orcpt) && !utf8) return TLSMAIL_ENOEXT;
    if (o->notify) {
        err |= tlsmail__cat(tail, cap, " NOTIFY=");
        for (i = 0; i < 4; i++) {
            if (!(o->notify & (1u << i))) continue;
            if (!first) err |= tlsmail__cat(tail, cap, ",");
            err |= tlsmail__cat(tail, cap, names[i]);
            first = 0;
        }
    }
    if (o->orcpt) {
        int u = tlsmail__is_8bit(o->orcpt);
        err |= tlsmail__cat_xtext(tail, cap, u ? " ORCPT=utf-8;" : " ORCPT=rfc822;", o->orcpt, u,
                                  TLSMAIL__ORCPT_MAX(u));
    }
    return err ? TLSMAIL_EINVAL : 0;
}

TLSMAIL_DEF int tlsmail_rcpt_ex(tlsmail_client *c, const char *to, const tlsmail_rcpt_opts *o) {
    char tail[TLSMAIL__RCPT_TAIL];
    int err = tlsmail__enter(c, TLSMAIL_STAGE_RCPT, TLSMAIL__MAIL, TLSMAIL__RCPT);
    if (err) return err;
    if ((err = tlsmail__check_rcpt(c, to)) != 0) return c->err = err;
    if (tlsmail__check_rcpt_opts(o) != 0) return c->err = TLSMAIL_EINVAL;
    if ((err = tlsmail__rcpt_tail(c, o, c->utf8, tail, sizeof tail)) != 0) return c->err = err;
    err = tlsmail__command(c, "RCPT TO:<", to, tail, TLSMAIL__WANT_RCPT);
    if (!err) c->state = TLSMAIL__RCPT;
    return c->err = err;
}

TLSMAIL_DEF int tlsmail_rcpt(tlsmail_client *c, const char *to) { return tlsmail_rcpt_ex(c, to, NULL); }

TLSMAIL_DEF size_t tlsmail_message_size(const void *msg, size_t len) {
    tlsmail__msginfo mi;
    if (!msg) return 0;
    tlsmail__msg_scan(msg, len, &mi);
    return mi.size;
}

/* For tlsmail_data_write (RFC 6152 3): message octets over 127 may go out
   only after MAIL declared BODY=8BITMIME (c->body8). 0, or TLSMAIL_ENOEXT
   for p[0..n) holding one; the caller then drops the connection without
   ending the message, so nothing undeclared is delivered. */
TLSMAIL__PRIVATE int tlsmail__body8_ok(tlsmail_client *c, const void *p, size_t n) {
    if (c->body8 || !p || !tlsmail__has8((const unsigned char *)p, n)) return 0;
    c->missing_ext = TLSMAIL__EXT_8BITMIME;
    return TLSMAIL_ENOEXT;
}

/* The 250 that accepted a message: keep the server's id for it, which the
   replies after it (QUIT's) would otherwise overwrite. */
TLSMAIL__PRIVATE void tlsmail__accepted(tlsmail_client *c) {
    (void)tlsmail__queue_id(c->text, c->textlen, c->queue_id, sizeof c->queue_id);
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
    if ((err = tlsmail__body8_ok(c, p, n)) != 0) return tlsmail__fatal(c, err);
    while (n > 0) {
        size_t room = 0, used, written;
        unsigned char *out = tlsmail__stream_room(c, &room, &err);
        if (!out) return tlsmail__fatal(c, err);
        err = tlsmail__dot_encode(&c->dot, in, n, out, room, &used, &written);
        /* A line too long after part of the message went out: drop the
           connection without the final "." so nothing is delivered (what
           this call encoded is never committed). */
        if (err == TLSMAIL_ELINE) c->eline = c->dot.line;
        if (err) return tlsmail__fatal(c, err);
        if (written && (err = tlsmail__stream_commit(c, written)) != 0) return tlsmail__fatal(c, err);
        in += used;
        n -= used;
    }
    return 0;
}

/* The server's reply to the end of a message (the final "." or BDAT LAST).
   It may take the server minutes (TLSMAIL_DATA_DONE_MS), and a wait cut
   short here turns a delivered message into EUNKNOWN, which a caller may
   retry into a second copy: a stalled peer is still cut off by the
   session deadline. */
TLSMAIL__PRIVATE int tlsmail__read_verdict(tlsmail_client *c) {
    int timeout = c->timeout_ms, code;
    if (timeout >= 0 && timeout < TLSMAIL_DATA_DONE_MS) c->timeout_ms = TLSMAIL_DATA_DONE_MS;
    code = tlsmail__read_reply(c, NULL);
    c->timeout_ms = timeout;
    return code;
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
    code = tlsmail__read_verdict(c);
    /* The server has the whole message but we never heard its verdict: it
       may or may not deliver. Retrying could send the mail twice. */
    if (code < 0)
        /* ...unless that verdict was a 421: the server said it is closing
           without taking the message (RFC 5321 3.8), so a retry is right. */
        return c->err = code == TLSMAIL_ETRANSIENT && c->code == 421 ? code : TLSMAIL_EUNKNOWN;
    if ((c->err = tlsmail__verdict(code, 250)) == 0) tlsmail__accepted(c);
    return c->err;
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

/* RFC 2920 5: at most this many commands in one pipelined group, so that
   neither side's socket buffers can fill while nobody reads. A group of
   TLSMAIL_RCPT_MAX (100) recipients with MAIL, DATA, QUIT and RSET fits:
   at most about 100 KB of commands, which the server reads as it answers,
   and at most 104 replies of 512 octets (RFC 5321 4.5.3.1.5) waiting in
   this side's receive buffer, half of Linux's default. At 64, a group of
   61 to 100 went a command at a time: 100 round trips instead of one. */
#define TLSMAIL__PIPE_MAX 104

/* A caller that reuses a results array must not read the last send's
   results after a refusal before any byte (EINVAL, ESTATE): cleared
   before anything is checked. */
TLSMAIL__PRIVATE void tlsmail__clear_results(const tlsmail_send_opts *o, size_t nto) {
    if (o && o->results && nto) memset(o->results, 0, nto * sizeof *o->results);
}

/* Everything the one call decided before dialling. */
typedef struct tlsmail__sendplan {
    const char *from;
    const char *const *to;
    size_t nto;
    const unsigned char *msg;
    size_t len;
    tlsmail_mail_opts mail;         /* size, body and SMTPUTF8 from the message */
    const tlsmail_rcpt_opts *rcpt;  /* nto entries, or NULL */
    tlsmail_rcpt_result *results;   /* nto entries, or NULL */
    int partial;                    /* TLSMAIL_DELIVER_ACCEPTED */
    size_t longline;                /* its line too long to send (ELINE), or 0 */
    int bare;                       /* it has a bare CR or LF (BDAT adds the LF or CR) */
    int bdat;                       /* the server offers CHUNKING */
} tlsmail__sendplan;

/* The reply just read, as recipient i's result. */
TLSMAIL__PRIVATE void tlsmail__note_rcpt(const tlsmail_client *c, const tlsmail__sendplan *p,
                                         size_t i) {
    tlsmail_rcpt_result *r;
    size_t k, n = 0;
    if (!p->results || !c->code || !c->reply_fresh) return;
    r = &p->results[i];
    r->code = c->code;
    memcpy(r->enhanced, c->enhanced, sizeof r->enhanced);
    for (k = 0; c->text[k] && n + 1 < sizeof r->text; k++)
        r->text[n++] = c->text[k] == '\n' ? ' ' : c->text[k];
    r->text[n] = '\0';
}

/* The message as one BDAT chunk (RFC 3030 2): "BDAT <size> LAST", then its
   octets with every bare CR and bare LF made CRLF and a CRLF after a last
   line without one, exactly the size tlsmail__msg_scan counted, and no
   dot-stuffing. Runs of the caller's bytes go to the TLS engine as they
   are; only line ends are added. A message whose lines all end in CRLF,
   as the scan found, is one run: no second search for line ends. */
TLSMAIL__PRIVATE int tlsmail__put_bdat(tlsmail_client *c, const tlsmail__sendplan *p) {
    const unsigned char *s = p->msg;
    size_t at = 0, end, n = p->len;
    char num[24];
    int err, bare = 1;
    (void)tlsmail__utoa(num, p->mail.size);
    if ((err = tlsmail__put(c, "BDAT ", num, " LAST")) != 0) return err;
    while (at < n && bare && !err) {
        if (p->bare) {
            end = tlsmail__bdat_run(s, n, at, &bare);
        } else { /* the scan found no bare line end: the message is one run */
            end = n;
            bare = 0;
        }
        if (end > at) err = tlsmail__stream_write(c, s + at, end - at);
        if (!err && bare) err = tlsmail__stream_write(c, "\r\n", 2);
        at = end + 1;
    }
    if (!err && n && s[n - 1] != '\r' && s[n - 1] != '\n') err = tlsmail__stream_write(c, "\r\n", 2);
    return err < 0 ? tlsmail__fatal(c, err) : 0;
}

/* A reply lost after the whole message went out: the server may have
   taken it (retrying could send it twice), unless it said 421 (RFC 5321
   3.8: closing, message not taken). */
TLSMAIL__PRIVATE int tlsmail__lost(const tlsmail_client *c, int code, int message_sent) {
    if (!message_sent || (code == TLSMAIL_ETRANSIENT && c->code == 421)) return code;
    return TLSMAIL_EUNKNOWN;
}

/* The server's verdict on the message, after BDAT LAST. */
TLSMAIL__PRIVATE int tlsmail__bdat_reply(tlsmail_client *c) {
    int code;
    c->stage = TLSMAIL_STAGE_BODY;
    c->state = TLSMAIL__READY;
    code = tlsmail__read_verdict(c);
    if (code < 0) return c->err = tlsmail__lost(c, code, 1);
    if ((c->err = tlsmail__verdict(code, 250)) == 0) tlsmail__accepted(c);
    return c->err;
}

/* The message after an accepted envelope, by BDAT or as DATA's body and
   "."; with quit set, QUIT rides in the same write (RFC 2920). */
TLSMAIL__PRIVATE int tlsmail__send_body(tlsmail_client *c, const tlsmail__sendplan *p, int quit) {
    int err;
    if (!p->bdat) {
        if (p->len && (err = tlsmail_data_write(c, p->msg, p->len)) != 0) return err;
        return tlsmail__data_end(c, quit);
    }
    c->stage = TLSMAIL_STAGE_BODY;
    if ((err = tlsmail__put_bdat(c, p)) != 0) return err;
    /* As after DATA's ".": QUIT fails to queue only if the engine had to
       send what it holds, the last chunk included, and then failed. */
    if (quit && tlsmail__put(c, "QUIT", NULL, NULL) != 0) return c->err = TLSMAIL_EUNKNOWN;
    if ((err = tlsmail__flush(c)) != 0) return err;
    return tlsmail__bdat_reply(c);
}

/* MAIL and RCPT for every recipient, queued for one write (PIPELINING),
   after the MAIL plan is made into *mp. */
TLSMAIL__PRIVATE int tlsmail__put_envelope(tlsmail_client *c, const tlsmail__sendplan *p,
                                           tlsmail__mailplan *mp) {
    char tail[TLSMAIL__RCPT_TAIL];
    size_t i;
    int err;
    c->stage = TLSMAIL_STAGE_MAIL;
    if ((err = tlsmail__plan_mail(c, p->from, &p->mail, mp)) != 0) return c->err = err;
    if ((err = tlsmail__put(c, "MAIL FROM:<", p->from, mp->tail)) != 0) return err;
    for (i = 0; i < p->nto; i++) {
        /* Checked before any byte (tlsmail__plan_message), with the same
           SMTPUTF8 decision, so this cannot fail; if it did, the queued
           commands would be dropped unsent with the connection. */
        if (tlsmail__rcpt_tail(c, p->rcpt ? &p->rcpt[i] : NULL, mp->utf8, tail, sizeof tail) != 0)
            return tlsmail__fatal(c, TLSMAIL_EINVAL);
        if ((err = tlsmail__put(c, "RCPT TO:<", p->to[i], tail)) != 0) return err;
    }
    return 0;
}

/* MAIL, RCPT for every recipient, and DATA unless the message goes by
   BDAT, one command at a time. Without partial delivery the first refusal
   ends it; with it a refused recipient is noted and the others go on.
   every (tlsmail_transact): every recipient is asked after a refusal too,
   as in its pipelined group, so o->results names each one, and the first
   refusal is the reply kept; a lost connection, a 421 or a reply out of
   the protocol still ends the asking. */
TLSMAIL__PRIVATE int tlsmail__envelope_stepwise(tlsmail_client *c, const tlsmail__sendplan *p,
                                                int every) {
    tlsmail__kept kept;
    size_t i, accepted = 0;
    int err, first = 0, last = 0;
    if ((err = tlsmail__mail(c, p->from, &p->mail)) != 0) return err;
    for (i = 0; i < p->nto; i++) {
        err = tlsmail_rcpt_ex(c, p->to[i], p->rcpt ? &p->rcpt[i] : NULL);
        tlsmail__note_rcpt(c, p, i);
        if (!err) {
            accepted++;
            continue;
        }
        if (c->state == TLSMAIL__CLOSED ||
            (every ? err != TLSMAIL_EPERMANENT && err != TLSMAIL_ETRANSIENT : !p->partial))
            return err;
        if (every && !first) {
            first = err;
            tlsmail__keep_reply(c, &kept);
        }
        last = err;
    }
    if (first && (!p->partial || !accepted)) return tlsmail__restore_reply(c, &kept, first);
    if (!accepted) return c->err = last; /* the last refusal is the reply kept */
    return p->bdat ? 0 : tlsmail_data_begin(c);
}

/* The same with PIPELINING: MAIL, every RCPT and DATA leave in one write
   and the replies are read in order. With BDAT and one recipient (or
   partial delivery) the whole message and QUIT ride in that write too:
   should the recipient be refused, the server has no one to deliver to
   and must refuse the chunk (RFC 3030 2). With BDAT and several
   recipients the message waits for their replies, since a refusal must
   keep it from the others. Without partial delivery the first refusal ends
   the session without a message (the server may be waiting for one after
   DATA, so no more commands are sent: only the close). quit: QUIT rides
   with the message (not in a group that another follows). *done: the
   message went and its verdict was read. */
TLSMAIL__PRIVATE int tlsmail__envelope_pipelined(tlsmail_client *c, const tlsmail__sendplan *p,
                                                 int quit, int *done) {
    tlsmail__mailplan mp;
    tlsmail__kept kept;
    int inflight = p->bdat && (p->nto == 1 || p->partial), err, code, last = 0;
    size_t i, accepted = 0;
    *done = 0;
    memset(&kept, 0, sizeof kept);
    if ((err = tlsmail__put_envelope(c, p, &mp)) != 0) return err;
    if (!p->bdat && (err = tlsmail__put(c, "DATA", NULL, NULL)) != 0) return err;
    if (inflight && ((err = tlsmail__put_bdat(c, p)) != 0 ||
                     (quit && (err = tlsmail__put(c, "QUIT", NULL, NULL)) != 0)))
        return err;
    if ((err = tlsmail__flush(c)) != 0) return err;
    code = tlsmail__read_reply(c, NULL);
    if (code < 0) return c->err = tlsmail__lost(c, code, inflight);
    if ((err = tlsmail__verdict(code, 250)) != 0) return c->err = err;
    tlsmail__mail_accepted(c, &mp);
    c->stage = TLSMAIL_STAGE_RCPT;
    for (i = 0; i < p->nto; i++) {
        code = tlsmail__read_reply(c, NULL);
        if (code < 0) return c->err = tlsmail__lost(c, code, inflight);
        err = tlsmail__verdict(code, TLSMAIL__WANT_RCPT);
        tlsmail__note_rcpt(c, p, i);
        if (!err) {
            accepted++;
            continue;
        }
        if (!p->partial) return c->err = err;
        last = err;
        tlsmail__keep_reply(c, &kept);
    }
    if (accepted) c->state = TLSMAIL__RCPT;
    if (inflight) {
        /* The chunk's verdict. With nobody accepted, the server's own word
           on the chunk is the error, as on DATA below; should it take the
           chunk anyway (RFC 3030 2 says it must not), the last refusal. */
        int verdict = tlsmail__bdat_reply(c);
        *done = 1;
        if (accepted || verdict != 0) return verdict;
        c->queue_id[0] = 0; /* no message was taken, whatever the 250 said */
        return tlsmail__restore_reply(c, &kept, last);
    }
    if (p->bdat) return accepted ? 0 : (c->err = last);
    c->stage = TLSMAIL_STAGE_DATA;
    code = tlsmail__read_reply(c, NULL);
    if (accepted || code < 0) return c->err = tlsmail__data_verdict(c, code);
    /* Nobody accepted: the server's own word on DATA says so ("554 no
       valid recipients"); a 354 regardless gets no message, and the last
       refusal is the error told. */
    if ((err = tlsmail__verdict(code, 354)) != 0) return c->err = err;
    c->state = TLSMAIL__DATA; /* the server waits for text: no RSET can follow */
    return tlsmail__restore_reply(c, &kept, last);
}

/* A line too long to send, found before a byte of the message went out:
   tlsmail_error_line says which. */
TLSMAIL__PRIVATE int tlsmail__refuse_line(tlsmail_client *c, size_t line) {
    c->stage = TLSMAIL_STAGE_BODY;
    c->eline = line;
    return c->err = TLSMAIL_ELINE;
}

/* The checks of an envelope that need no server, into *p, with MAIL's
   options as the caller gave them: tlsmail_transact_begin's. */
TLSMAIL__PRIVATE int tlsmail__plan_envelope(const char *from, const char *const *to, size_t nto,
                                            const tlsmail_send_opts *o, tlsmail__sendplan *p) {
    size_t i;
    int utf8;
    memset(p, 0, sizeof *p);
    tlsmail__clear_results(o, nto);
    if (tlsmail__check_mailbox(from, 1) || !to || nto == 0) return TLSMAIL_EINVAL;
    if (o && ((o->deliver != TLSMAIL_DELIVER_ALL && o->deliver != TLSMAIL_DELIVER_ACCEPTED) ||
              (o->deliver == TLSMAIL_DELIVER_ACCEPTED && !o->results) ||
              tlsmail__check_mail_opts(o->mail) != 0))
        return TLSMAIL_EINVAL;
    utf8 = tlsmail__is_8bit(from);
    for (i = 0; i < nto; i++) {
        if (tlsmail__check_mailbox(to[i], 0)) return TLSMAIL_EINVAL;
        utf8 |= tlsmail__is_8bit(to[i]);
        if (o && o->rcpt) {
            if (tlsmail__check_rcpt_opts(&o->rcpt[i]) != 0) return TLSMAIL_EINVAL;
            utf8 |= o->rcpt[i].orcpt && tlsmail__is_8bit(o->rcpt[i].orcpt);
        }
    }
    if (o && o->mail) p->mail = *o->mail;
    p->mail.smtputf8 = p->mail.smtputf8 || utf8;
    p->from = from;
    p->to = to;
    p->nto = nto;
    p->rcpt = o ? o->rcpt : NULL;
    p->results = o ? o->results : NULL;
    p->partial = o && o->deliver == TLSMAIL_DELIVER_ACCEPTED;
    return 0;
}

/* The same for a whole message, and what the message needs, from one scan
   of it: tlsmail_client_send_ex's and tlsmail_transact's. */
TLSMAIL__PRIVATE int tlsmail__plan_message(const char *from, const char *const *to, size_t nto,
                                           const void *msg, size_t len, const tlsmail_send_opts *o,
                                           tlsmail__sendplan *p) {
    tlsmail__msginfo mi;
    int err;
    if ((err = tlsmail__plan_envelope(from, to, nto, o, p)) != 0) return err;
    if (!msg && len) return TLSMAIL_EINVAL;
    tlsmail__msg_scan(msg, len, &mi);
    if (p->mail.body == TLSMAIL_BODY_7BIT && mi.body8) return TLSMAIL_EINVAL;
    if (p->mail.body == TLSMAIL_BODY_AUTO)
        p->mail.body = mi.body8 ? TLSMAIL_BODY_8BITMIME : TLSMAIL_BODY_7BIT;
    p->mail.size = mi.size;
    p->mail.smtputf8 = p->mail.smtputf8 || mi.head8;
    p->longline = mi.longline;
    p->bare = mi.bare;
    p->msg = (const unsigned char *)msg;
    p->len = len;
    return 0;
}

/* The same, and the configuration's: tlsmail_client_send_ex's. */
TLSMAIL__PRIVATE int tlsmail__plan_send(const tlsmail_config *cfg, const char *from, const char *const *to, size_t nto,
                                        const void *msg, size_t len, const tlsmail_send_opts *o,
                                        tlsmail__sendplan *p) {
    char host[256];
    unsigned port;
    memset(p, 0, sizeof *p);
    if (!cfg || !cfg->host || tlsmail_split_hostport(cfg->host, host, sizeof host, &port, 465))
        return TLSMAIL_EINVAL;
    return tlsmail__plan_message(from, to, nto, msg, len, o, p);
}

TLSMAIL__PRIVATE int tlsmail__transact_envelope(tlsmail_client *c, const tlsmail__sendplan *p, int *done);

/* One transaction of a send: the one call's (one; last: QUIT may ride in
   its flight; *quit: it did, and its reply is still to read) or
   tlsmail_transact's. Pipelined as a single transaction would be, by the
   group's own size. */
TLSMAIL__PRIVATE int tlsmail__send_group(tlsmail_client *c, const tlsmail__sendplan *g, int one,
                                         int last, int *quit) {
    int err, pipe, done = 0;
    *quit = 0;
    if (!one) {
        if ((err = tlsmail__transact_envelope(c, g, &done)) != 0 || done) return err;
        return tlsmail__send_body(c, g, 0);
    }
    pipe = (c->ext.flags & TLSMAIL__EXT_PIPELINING) && g->nto + 4 <= TLSMAIL__PIPE_MAX;
    err = pipe ? tlsmail__envelope_pipelined(c, g, last, &done) : tlsmail__envelope_stepwise(c, g, 0);
    if (!err && !done) err = tlsmail__send_body(c, g, pipe && last);
    /* QUIT went with the message, or (BDAT in the flight) with the chunk */
    *quit = pipe && last && (done || !err);
    return err;
}

/* After group g: how many of its recipients were accepted, and, when its
   message was taken, that they have it. Without results (DELIVER_ALL) a
   message goes only when every one was accepted. */
TLSMAIL__PRIVATE size_t tlsmail__group_accepted(const tlsmail__sendplan *g, int taken) {
    size_t i, n = 0;
    if (!g->results) return taken ? g->nto : 0;
    for (i = 0; i < g->nto; i++) {
        if (g->results[i].code != 250 && g->results[i].code != 251) continue;
        g->results[i].delivered = taken;
        n++;
    }
    return n;
}

/* The message to every recipient of *p in transactions of at most
   TLSMAIL_RCPT_MAX, in order (RFC 5321 4.5.3.1.10), so that a server that
   takes no more than 100 (Gmail, Postfix) gets them all; up to that many,
   one transaction as before. Between groups every reply has been read; a
   group that did not end with its message taken leaves a transaction
   open, which RSET ends before the next MAIL. Only DELIVER_ACCEPTED goes
   on after a failed group, and only after one with nobody accepted, the
   connection up and the server not waiting for message text (a 354 after
   every refusal leaves no command to send: no next group; the last one
   is then refused like any other). Once a message was taken,
   whatever stops the rest is EPARTIAL, with the reply that stopped it
   kept and its own code in partial_err; tlsmail_queue_id is then the last
   message's that was taken, which the next MAIL had cleared. */
TLSMAIL__PRIVATE int tlsmail__send_groups(tlsmail_client *c, const tlsmail__sendplan *p, int one,
                                          int *quit) {
    tlsmail__sendplan g;
    size_t at, n, ok, done = 0;
    int err = 0, refused = 0, taken = 0, rset = 0;
    char qid[TLSMAIL_QUEUE_ID];
    *quit = 0;
    for (at = 0; at < p->nto; at += n) {
        n = p->nto - at < TLSMAIL_RCPT_MAX ? p->nto - at : TLSMAIL_RCPT_MAX;
        g = *p;
        g.to = p->to + at;
        g.nto = n;
        g.rcpt = p->rcpt ? p->rcpt + at : NULL;
        g.results = p->results ? p->results + at : NULL;
        if (rset && (err = tlsmail_reset(c)) != 0) break;
        err = tlsmail__send_group(c, &g, one, at + n == p->nto, quit);
        ok = tlsmail__group_accepted(&g, !err);
        if (!err) {
            done += ok;
            taken = 1;
            rset = 0;
            memcpy(qid, c->queue_id, sizeof qid);
            continue;
        }
        if (!p->partial || ok || (err != TLSMAIL_EPERMANENT && err != TLSMAIL_ETRANSIENT) ||
            c->state == TLSMAIL__CLOSED || c->stage == TLSMAIL_STAGE_MAIL ||
            (c->state == TLSMAIL__DATA && at + n < p->nto))
            break;
        refused = err; /* nobody in this group: on to the next */
        err = 0;
        rset = 1;
    }
    if (taken) memcpy(c->queue_id, qid, sizeof qid);
    if (err && taken) {
        c->partial_err = err;
        c->rcpt_done = done;
        c->rcpt_total = p->nto;
        return c->err = TLSMAIL_EPARTIAL;
    }
    if (err || taken) return c->err = err;
    return c->err = refused; /* nobody in any group: the last refusal, its reply kept */
}

TLSMAIL_DEF int tlsmail_client_send_ex(tlsmail_client *c, const tlsmail_config *cfg,
                                       const tlsmail_auth *auth, const char *from,
                                       const char *const *to, size_t nto, const void *msg,
                                       size_t len, const tlsmail_send_opts *o) {
    tlsmail__sendplan p;
    tlsmail__kept verdict;
    char host[256];
    unsigned port;
    int err, quit = 0;
    if (!c) return TLSMAIL_EINVAL;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    /* Everything the caller gave is checked before a byte goes out. */
    if ((err = tlsmail__plan_send(cfg, from, to, nto, msg, len, o, &p)) != 0)
        return c->err = err;
    (void)tlsmail_split_hostport(cfg->host, host, sizeof host, &port, 465);
    if (auth && ((err = tlsmail__check_auth(auth, host)) != 0 ||
                 (auth->mechanism == TLSMAIL_AUTH_EXTERNAL && !cfg->client_cert))) {
        c->stage = TLSMAIL_STAGE_AUTH;
        return c->err = err ? err : TLSMAIL_EINVAL;
    }
    if (p.longline) return tlsmail__refuse_line(c, p.longline);
    if ((err = tlsmail_dial(c, cfg)) != 0 || (err = tlsmail_hello(c)) != 0) return err;
    /* Like Go: credentials given but nothing to use them with is an error
       (ENOMECH from tlsmail_authenticate), never a reason to send
       unauthenticated. */
    if (auth && (err = tlsmail_authenticate(c, auth)) != 0) goto fail;
    p.bdat = (c->ext.flags & TLSMAIL__EXT_CHUNKING) != 0;
    if ((err = tlsmail__send_groups(c, &p, 1, &quit)) != 0) goto fail;
    /* Delivered: whatever happens to QUIT now can't undo that, and the
       reply left to read is the one that took the message. */
    tlsmail__keep_reply(c, &verdict);
    if (quit) {
        c->stage = TLSMAIL_STAGE_QUIT;
        (void)tlsmail__quit_reply(c);
    } else {
        (void)tlsmail_quit(c);
    }
    tlsmail__disconnect(c, TLSMAIL__POLITE);
    return tlsmail__restore_reply(c, &verdict, 0);
fail:
    /* Leave without a word that could be taken for message text. */
    tlsmail__disconnect(c, TLSMAIL__POLITE);
    c->err = err;
    return err;
}

TLSMAIL_DEF int tlsmail_client_send(tlsmail_client *c, const tlsmail_config *cfg,
                                 const tlsmail_auth *auth, const char *from,
                                 const char *const *to, size_t nto, const void *msg, size_t len) {
    return tlsmail_client_send_ex(c, cfg, auth, from, to, nto, msg, len, NULL);
}

/* tlsmail_transact's envelope with PIPELINING: MAIL and every RCPT in one
   write, and the message by BDAT in it too when it goes to one recipient
   (or with partial delivery): a server left with nobody to deliver to
   refuses the chunk (RFC 3030 2). DATA is not sent ahead: a 354 after a
   refusal would leave only the close. Every reply is read, refused or not,
   so the connection stays in step. *done: the message went and its verdict
   was read. */
TLSMAIL__PRIVATE int tlsmail__transact_pipelined(tlsmail_client *c, const tlsmail__sendplan *p,
                                                 int *done) {
    tlsmail__mailplan mp;
    tlsmail__kept kept;
    int inflight = p->bdat && (p->nto == 1 || p->partial), err, code, first = 0;
    size_t i, accepted = 0;
    *done = 0;
    memset(&kept, 0, sizeof kept);
    if ((err = tlsmail__put_envelope(c, p, &mp)) != 0) return err;
    if (inflight && (err = tlsmail__put_bdat(c, p)) != 0) return err;
    if ((err = tlsmail__flush(c)) != 0) return err;
    code = tlsmail__read_reply(c, NULL);
    if (code < 0) return c->err = tlsmail__lost(c, code, inflight);
    if ((first = tlsmail__verdict(code, 250)) != 0)
        tlsmail__keep_reply(c, &kept);
    else
        tlsmail__mail_accepted(c, &mp);
    c->stage = TLSMAIL_STAGE_RCPT;
    for (i = 0; i < p->nto; i++) {
        code = tlsmail__read_reply(c, NULL);
        if (code < 0) return c->err = tlsmail__lost(c, code, inflight);
        err = tlsmail__verdict(code, TLSMAIL__WANT_RCPT);
        tlsmail__note_rcpt(c, p, i);
        if (!err && c->state >= TLSMAIL__MAIL) {
            accepted++;
        } else if (!first) {
            first = err ? err : TLSMAIL_EPROTO;
            tlsmail__keep_reply(c, &kept);
        }
    }
    if (accepted) c->state = TLSMAIL__RCPT;
    if (inflight) {
        /* the chunk's verdict: a refusal before it is the error to tell */
        int verdict = tlsmail__bdat_reply(c);
        if (verdict == TLSMAIL_EUNKNOWN || (verdict == TLSMAIL_ETRANSIENT && c->code == 421)) return verdict;
        if (first && (!p->partial || !accepted)) {
            c->queue_id[0] = 0; /* no message was taken, whatever the 250 said */
            return tlsmail__restore_reply(c, &kept, first);
        }
        *done = 1;
        return verdict;
    }
    if (first && (!p->partial || !accepted)) return tlsmail__restore_reply(c, &kept, first);
    return 0;
}

/* tlsmail_transact's envelope: pipelined where the server allows (with
   the message in the flight when it goes there: *done), else a command at
   a time; then DATA, unless the message goes by BDAT. */
TLSMAIL__PRIVATE int tlsmail__transact_envelope(tlsmail_client *c, const tlsmail__sendplan *p, int *done) {
    int err;
    *done = 0;
    if ((c->ext.flags & TLSMAIL__EXT_PIPELINING) && p->nto + 2 <= TLSMAIL__PIPE_MAX)
        err = tlsmail__transact_pipelined(c, p, done);
    else
        err = tlsmail__envelope_stepwise(c, p, 1);
    if (err || *done || p->bdat || c->state == TLSMAIL__DATA) return err;
    return tlsmail_data_begin(c);
}

TLSMAIL_DEF int tlsmail_transact(tlsmail_client *c, const char *from, const char *const *to,
                                 size_t nto, const void *msg, size_t len, const tlsmail_send_opts *o) {
    tlsmail__sendplan p;
    int err, quit;
    if ((err = tlsmail__enter(c, TLSMAIL_STAGE_MAIL, TLSMAIL__GREETED, TLSMAIL__READY)) != 0) {
        tlsmail__clear_results(o, nto);
        return err;
    }
    if ((err = tlsmail__plan_message(from, to, nto, msg, len, o, &p)) != 0) return c->err = err;
    if (p.longline) return tlsmail__refuse_line(c, p.longline);
    if ((err = tlsmail__ensure_hello(c)) != 0) return err;
    p.bdat = (c->ext.flags & TLSMAIL__EXT_CHUNKING) != 0;
    return tlsmail__send_groups(c, &p, 0, &quit);
}

TLSMAIL_DEF int tlsmail_transact_begin(tlsmail_client *c, const char *from, const char *const *to,
                                       size_t nto, const tlsmail_send_opts *o) {
    tlsmail__sendplan p;
    int err, done = 0;
    if ((err = tlsmail__enter(c, TLSMAIL_STAGE_MAIL, TLSMAIL__GREETED, TLSMAIL__READY)) != 0) {
        tlsmail__clear_results(o, nto);
        return err;
    }
    if ((err = tlsmail__plan_envelope(from, to, nto, o, &p)) != 0) return c->err = err;
    /* Several transactions would each need the message: it goes only once. */
    if (nto > TLSMAIL_RCPT_MAX) return c->err = TLSMAIL_EINVAL;
    if ((err = tlsmail__ensure_hello(c)) != 0) return err;
    /* p.bdat stays 0: BDAT LAST needs the size of a message not read yet.
       Without the message in the plan, the pipelined envelope is MAIL and
       RCPT only, and DATA follows its replies. */
    return tlsmail__transact_envelope(c, &p, &done);
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
    int enc;          /* the current line holds an encoded word */
    int cont;         /* the current line is a fold's continuation */
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
    w->enc = 0;
    w->cont = 0;
}

/* A fold: the next line continues the field. */
TLSMAIL__PRIVATE void tlsmail__w_fold(tlsmail__w *w) {
    tlsmail__w_crlf(w);
    w->cont = 1;
}

/* Whether the line holds something to fold after: past the field's name
   (start) on its first line, past the leading white space on a
   continuation (folding there would leave a line of white space only). */
TLSMAIL__PRIVATE int tlsmail__w_foldable(const tlsmail__w *w, size_t start) {
    return w->col > (w->cont ? 1u : start);
}

/* RFC 5322 2.1.1: lines of at most 78 characters; RFC 2047 2: at most 76
   on a line that holds an encoded word. */
TLSMAIL__PRIVATE size_t tlsmail__w_limit(const tlsmail__w *w) { return w->enc ? 76 : 78; }

/* Whether s[0..n) holds the octets a, b in a row. Bounded: names are
   slices of the caller's string, not strings of their own. */
TLSMAIL__PRIVATE int tlsmail__has_pair(const char *s, size_t n, char a, char b) {
    size_t i;
    for (i = 0; i + 1 < n; i++)
        if (s[i] == a && s[i + 1] == b) return 1;
    return 0;
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

/* One unit of header text: a run of white space (run[0..k), after one
   space more if sp) and the word that follows it (n octets; none at the
   end). RFC 5322 2.2.3 folds by putting CRLF before a WSP: the fold goes
   inside the run, after as much of it as the line holds, so the run is
   kept whole, a line passes its limit only for a word no line holds, and
   no line is white space only. after: octets that must follow on this
   line (a comma). */
TLSMAIL__PRIVATE int tlsmail__w_unit(tlsmail__w *w, int sp, const char *run, size_t k, const char *word,
                                     size_t n, size_t start, size_t after) {
    size_t total = k + (sp ? 1u : 0u), keep = total, limit = tlsmail__w_limit(w), j;
    if (n > 0 && total > 0 && w->col + total + n + after > limit && tlsmail__w_foldable(w, start)) {
        keep = w->col < limit ? limit - w->col : 0;
        if (keep > total - 1) keep = total - 1; /* a WSP must follow the CRLF */
    }
    for (j = 0; j < total; j++) {
        if (j == keep) tlsmail__w_fold(w);
        tlsmail__w_put(w, sp && j == 0 ? " " : run + j - (sp ? 1u : 0u), 1);
    }
    tlsmail__w_put(w, word, n);
    /* RFC 5322 2.1.1: 998 is a MUST; a unit this long fails. */
    return w->col + after > 998 ? TLSMAIL_EINVAL : 0;
}

TLSMAIL__PRIVATE int tlsmail__is_wsp(int c) { return c == ' ' || c == '\t'; }

/* Text whose white space is where it may fold, e.g. an ASCII subject or a
   quoted string, unit by unit; every space and tab stays as it is. sp: a
   space goes first. */
TLSMAIL__PRIVATE int tlsmail__w_words(tlsmail__w *w, const char *s, size_t n, int sp, size_t start) {
    size_t i = 0;
    while (i < n || sp) {
        size_t ws = i, we;
        int err;
        while (i < n && tlsmail__is_wsp((unsigned char)s[i])) i++;
        we = i;
        while (i < n && !tlsmail__is_wsp((unsigned char)s[i])) i++;
        if ((err = tlsmail__w_unit(w, sp, s + ws, we - ws, s + we, i - we, start, 0)) != 0) return err;
        sp = 0;
    }
    return 0;
}

/* RFC 2047 B-encoded words: "=?UTF-8?B?" + base64 + "?=", at most 75
   characters each (RFC 2047 2) and sized to what is left of the line, so a
   line stays within 76 (RFC 2047 2); whole UTF-8 characters only (5: each word
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
        room = col + 12 < 76 ? 76 - col - 12 : 0;
        if (room > 60) room = 60;
        maxraw = room / 4 * 3;
        k = tlsmail__utf8_char(u + i, n - i);
        if (k == 0) return TLSMAIL_EINVAL;
        if (k > maxraw && sp && tlsmail__w_foldable(w, start)) { /* fold, then a full word */
            tlsmail__w_fold(w);
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
        w->enc = 1;
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
    enc = !ascii || tlsmail__has_pair(s, n, '=', '?');
    /* A unit (white space and the word after it, which no fold splits) too
       long for a line, 998 with the header name, is encoded, which can be
       split; shorter long words (URLs) stay readable. */
    for (i = 0; i < n && !enc; i++) {
        int wsp = tlsmail__is_wsp((unsigned char)s[i]);
        run = wsp && i > 0 && !tlsmail__is_wsp((unsigned char)s[i - 1]) ? 1 : run + 1;
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

/* The '<' that opens the angle-addr ending at s[n] (its '>'), found from
   the end and outside quotes: a quoted local part may hold '<' ("a<b"@x,
   RFC 5322 3.4.1) and so may a quoted name. NULL: none. A quote counts
   unless an odd run of backslashes escapes it. */
TLSMAIL__PRIVATE const char *tlsmail__angle_open(const char *s, size_t n) {
    int inq = 0;
    while (n--) {
        if (s[n] == '"') {
            size_t k = n;
            while (k && s[k - 1] == '\\') k--;
            if ((n - k) % 2 == 0) inq = !inq;
        } else if (s[n] == '<' && !inq) {
            return s + n;
        }
    }
    return NULL;
}

/* One mailbox: "addr", or a display name and "<addr>". The name is written
   as atoms, a quoted string, or encoded words, whichever it needs; that
   depends on this mailbox alone. sp: a space (fold point) goes first;
   after: octets that will follow it on its line. */
TLSMAIL__PRIVATE int tlsmail__w_mailbox(tlsmail__w *w, const char *in, int sp, size_t start,
                                        size_t after) {
    const char *lt, *name = NULL, *addr = in;
    size_t nlen = 0, alen = strlen(in), i;
    char abuf[256], nbuf[1023];
    int ascii, err, plain = 1;
    if (tlsmail__check_hvalue(in, alen, &ascii)) return TLSMAIL_EINVAL;
    /* Trim the surrounding whitespace. */
    while (alen && (*addr == ' ' || *addr == '\t')) { addr++; alen--; }
    while (alen && (addr[alen - 1] == ' ' || addr[alen - 1] == '\t')) alen--;
    if (alen && addr[alen - 1] == '>' && (lt = tlsmail__angle_open(addr, alen - 1)) != NULL) {
        name = addr;
        nlen = (size_t)(lt - addr);
        while (nlen && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t')) nlen--;
        alen = (size_t)(addr + alen - 1 - (lt + 1));
        addr = lt + 1;
    }
    if (alen == 0 || alen >= sizeof abuf) return TLSMAIL_EINVAL;
    memcpy(abuf, addr, alen);
    abuf[alen] = 0;
    if (tlsmail__check_mailbox(abuf, TLSMAIL__ADDR_MAILBOX)) return TLSMAIL_EINVAL;
    /* A name already in quotes is taken as its content (RFC 5322 3.2.4:
       quoted-pairs undone); it is re-quoted below as needed. */
    if (nlen >= 2 && name[0] == '"' && name[nlen - 1] == '"') {
        size_t o = 0;
        for (i = 1; i + 1 < nlen; i++) {
            if (name[i] == '"') return TLSMAIL_EINVAL;
            /* a backslash before the last quote escapes it: unterminated */
            if (name[i] == '\\' && ++i + 1 >= nlen) return TLSMAIL_EINVAL;
            if (o >= sizeof nbuf) return TLSMAIL_EINVAL;
            nbuf[o++] = name[i];
        }
        name = nbuf;
        nlen = o;
    }
    if (nlen > sizeof nbuf) return TLSMAIL_EINVAL;
    if (nlen == 0) return tlsmail__w_unit(w, sp, "", 0, abuf, alen, start, after);
    if (tlsmail__check_hvalue(name, nlen, &ascii)) return TLSMAIL_EINVAL;
    for (i = 0; i < nlen; i++)
        if (!tlsmail__is_atext((unsigned char)name[i])) plain = 0;
    /* Leading, trailing or doubled spaces would be lost as bare atoms. */
    if (name[0] == ' ' || name[nlen - 1] == ' ' || tlsmail__has_pair(name, nlen, ' ', ' ')) plain = 0;
    if (!ascii || tlsmail__has_pair(name, nlen, '=', '?')) {
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
        return tlsmail__w_unit(w, 1, "", 0, br, alen + 2, start, after);
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
        if ((err = tlsmail__w_mailbox(w, v[i], 1, start, i + 1 < n ? 1 : 0)) != 0) return err;
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
    long long dn, y;
    unsigned sec, m, d, wd, yy;
    /* RFC 5322 3.3 and 4.3: a year of four digits, 1900 or later. The
       time is clamped, not the year alone, so the weekday and the day
       agree with it. */
    if (t < -2208988800LL) t = -2208988800LL;  /* 1900-01-01 00:00:00 */
    if (t > 253402300799LL) t = 253402300799LL; /* 9999-12-31 23:59:59 */
    dn = t / 86400 - (t % 86400 < 0); /* floor division */
    sec = (unsigned)(t - dn * 86400);
    wd = (unsigned)(((dn % 7) + 7) % 7);
    tlsmail__civil(dn, &y, &m, &d);
    yy = (unsigned)y;
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
        if ((unsigned char)*p >= 0x80) goto fallback;
    if (!tlsmail__domain((const unsigned char *)at, n)) goto fallback;
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

TLSMAIL_DEF int tlsmail_encode_qp(const void *in, size_t n, char *out, size_t cap, size_t *outlen) {
    tlsmail__w w;
    if (!outlen || (!in && n)) return TLSMAIL_EINVAL;
    *outlen = 0;
    memset(&w, 0, sizeof w);
    w.buf = out;
    w.cap = out ? cap : 0;
    if (n) tlsmail__w_qp(&w, (const unsigned char *)in, n);
    if (w.overflow) return TLSMAIL_ENOMEM;
    *outlen = w.n;
    if (!out) return 0;
    if (w.n > cap) return TLSMAIL_ENOMEM;
    if (w.n < cap) out[w.n] = 0;
    return 0;
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
    if ((err = tlsmail__w_mailbox(&w, mailbox, 1, w.col, 0)) != 0) return err;
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
        /* Made for the size query too: one path, so both runs agree, and
           the id has a fixed width. */
        tlsmail__msgid_domain(m->from, domain, sizeof domain);
        if ((err = tlsmail__msgid_random(hex)) != 0) return err;
    }

    tlsmail__w_str(&w, "From:");
    if ((err = tlsmail__w_mailbox(&w, m->from, 1, w.col, 0)) != 0) return err;
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

TLSMAIL_DEF const char *tlsmail_queue_id(const tlsmail_client *c) { return c ? c->queue_id : ""; }

TLSMAIL_DEF size_t tlsmail_error_line(const tlsmail_client *c) {
    return c && c->err == TLSMAIL_ELINE ? c->eline : 0;
}

/* The IANA names of the suites tlsmail__tls_suites offers. */
TLSMAIL__PRIVATE const char *tlsmail__suite_name(unsigned suite) {
    switch (suite) {
    case BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: return "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256";
    case BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: return "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256";
    case BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: return "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384";
    case BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: return "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384";
    case BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256:
        return "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256";
    case BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
        return "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";
    default: return "";
    }
}

/* A Validity (SEQUENCE of two Times) into *nb and *na; -1 if it is not one. */
TLSMAIL__PRIVATE int tlsmail__validity(const unsigned char *v, size_t n, long long *nb, long long *na) {
    unsigned tag, t1, t2;
    size_t off, len, o1, l1, o2, l2;
    if (!tlsmail__der_tlv(v, n, &tag, &off, &len) || tag != 0x30 || off + len != n ||
        !tlsmail__der_tlv(v + off, len, &t1, &o1, &l1) ||
        !tlsmail__der_tlv(v + off + o1 + l1, len - o1 - l1, &t2, &o2, &l2) || o1 + l1 + o2 + l2 != len ||
        tlsmail__der_time(t1, v + off + o1, l1, nb) != 0 ||
        tlsmail__der_time(t2, v + off + o1 + l1 + o2, l2, na) != 0)
        return -1;
    return 0;
}

TLSMAIL_DEF int tlsmail_tls_info(const tlsmail_client *c, tlsmail_tls_details *out) {
    const tlsmail__leaf *l;
    if (!out) return TLSMAIL_EINVAL;
    memset(out, 0, sizeof *out);
    out->suite_name = "";
    if (!c) return TLSMAIL_EINVAL;
    l = &c->leaf;
    if (!l->done) return TLSMAIL_ESTATE;
    out->version = l->version;
    out->suite = l->suite;
    out->suite_name = tlsmail__suite_name(l->suite);
    out->resumed = c->session_resumed;
    if (!l->cert) return 0;
    out->have_cert = 1;
    memcpy(out->spki_sha256, l->spki, sizeof out->spki_sha256);
    if (l->names) {
        tlsmail__dn_text(l->subject, l->subject_len, l->subject_cut, out->subject, sizeof out->subject);
        tlsmail__dn_text(l->issuer, l->issuer_len, l->issuer_cut, out->issuer, sizeof out->issuer);
        if (tlsmail__validity(l->validity, l->validity_len, &out->not_before, &out->not_after) != 0)
            out->not_before = out->not_after = 0;
    }
    return 0;
}

/* A permanent refusal that blames what the caller sent (RFC 3463 3):
   an address (X.1.x), authentication or policy (X.7.x), the size (X.3.4),
   the content or its encoding (X.6.x). */
TLSMAIL__PRIVATE int tlsmail__blames_caller(const char *e) {
    return strncmp(e, "5.1.", 4) == 0 || strncmp(e, "5.7.", 4) == 0 || strcmp(e, "5.3.4") == 0 ||
           strncmp(e, "5.6.", 4) == 0;
}

TLSMAIL_DEF int tlsmail_error_class(const tlsmail_client *c, int err) {
    /* codes are 0, -1, -2, ... in the list's order: -err is the index */
    static const unsigned char classes[] = {
#define TLSMAIL__CLASS_OF(name, klass, text) TLSMAIL_CLASS_##klass,
        TLSMAIL__ERRORS(TLSMAIL__CLASS_OF)
#undef TLSMAIL__CLASS_OF
    };
    int cls;
    if (err > 0 || err < 1 - (int)sizeof classes) return TLSMAIL_CLASS_CONFIG; /* not ours */
    cls = classes[-err];
    if (cls == TLSMAIL_CLASS_REFUSED && c && c->code >= 500 && tlsmail__blames_caller(c->enhanced))
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

/* RFC 3463 3 (and the IANA registry of enhanced status codes): what an
   enhanced status means, by subject and detail; a detail we don't list is
   explained by its subject alone. */
TLSMAIL__PRIVATE const char *tlsmail__enhanced_text(const char *e) {
    static const struct { const char *code, *text; } known[] = {
        { "1.1", "bad destination mailbox address" }, { "1.2", "bad destination system address" },
        { "1.3", "bad destination mailbox address syntax" },
        { "1.6", "destination mailbox has moved" }, { "1.7", "bad sender's mailbox address syntax" },
        { "1.8", "bad sender's system address" }, { "1.10", "recipient address has null MX" },
        { "2.1", "mailbox disabled" }, { "2.2", "mailbox full" },
        { "2.3", "message length exceeds administrative limit" },
        { "3.1", "mail system full" }, { "3.4", "message too big for system" },
        { "4.4", "unable to route" }, { "4.7", "delivery time expired" },
        { "5.1", "invalid command" }, { "5.2", "syntax error" }, { "5.3", "too many recipients" },
        { "5.4", "invalid command arguments" }, { "6.1", "media not supported" },
        { "6.7", "non-ASCII addresses not permitted" },
        { "7.1", "delivery not authorized, message refused" },
        { "7.8", "authentication credentials invalid" },
        { "7.9", "authentication mechanism is too weak" }, { "7.11", "encryption required" },
        { "7.13", "user account disabled" }, { "7.26", "multiple authentication checks failed" },
    };
    static const char *const subject[] = {
        "other or undefined status", "addressing", "mailbox", "mail system", "network or routing",
        "mail delivery protocol", "message content or media", "security or policy",
    };
    size_t i;
    if (!e[0] || !e[1] || !tlsmail__isdigit((unsigned char)e[2])) return NULL;
    for (i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(e + 2, known[i].code) == 0) return known[i].text;
    return e[3] == '.' && e[2] <= '7' ? subject[e[2] - '0'] : NULL;
}

/* Append the strings (up to a NULL) to buf[*n..cap), cut to fit, keeping
   buf NUL-terminated. */
TLSMAIL__PRIVATE void tlsmail__adds(char *buf, size_t cap, size_t *n, const char *a, const char *b,
                                    const char *d, const char *e) {
    const char *part[4];
    size_t i, k;
    part[0] = a; part[1] = b; part[2] = d; part[3] = e;
    for (i = 0; i < 4 && part[i]; i++)
        for (k = 0; part[i][k] && *n + 1 < cap; k++) buf[(*n)++] = part[i][k];
    if (*n < cap) buf[*n] = '\0';
}

/* Why we refused on our own, from what the server said it offers. */
TLSMAIL__PRIVATE void tlsmail__describe_local(const tlsmail_client *c, int err, char *buf, size_t cap,
                                              size_t *n) {
    static const char *const mechs[] = { "", "PLAIN", "LOGIN", "AUTO", "XOAUTH2", "OAUTHBEARER",
                                         "EXTERNAL" };
    char a[24], b[24];
    if (err == TLSMAIL_ENOMECH && !c->reply_fresh && c->auth_asked > 0 && c->auth_asked <= 6) {
        const char *off = tlsmail__ext_find(&c->ext, "AUTH");
        tlsmail__adds(buf, cap, n, " (", mechs[c->auth_asked], " asked for; ", NULL);
        if (off && *off) tlsmail__adds(buf, cap, n, "the server offers AUTH ", off, ")", NULL);
        else tlsmail__adds(buf, cap, n, "the server offers no AUTH)", NULL, NULL, NULL);
    } else if (err == TLSMAIL_ENOEXT && c->missing_ext) {
        const char *ext = c->missing_ext == TLSMAIL__EXT_8BITMIME ? "8BITMIME" : "SMTPUTF8";
        /* strerror has said the server lacks it, unless it is offered and
           MAIL did not declare it */
        tlsmail__adds(buf, cap, n, " (needs ", ext,
                      (c->ext.flags & c->missing_ext) ? ": offered, but MAIL did not declare it)" : ")",
                      NULL);
    } else if (err == TLSMAIL_ETOOBIG && c->size_declared) {
        (void)tlsmail__utoa(a, c->size_declared);
        (void)tlsmail__utoa(b, c->ext.size_limit);
        tlsmail__adds(buf, cap, n, " (", a, " octets; the server's SIZE limit is ", b);
        tlsmail__adds(buf, cap, n, ")", NULL, NULL, NULL);
    } else if (err == TLSMAIL_EAUTH && c->auth_status[0]) {
        tlsmail__adds(buf, cap, n, " (OAuth error status: ", c->auth_status, ")", NULL);
    } else if (err == TLSMAIL_ELINE && c->eline) {
        (void)tlsmail__utoa(a, c->eline);
        tlsmail__adds(buf, cap, n, " (line ", a, ")", NULL);
    }
}

/* "; server said: 550 5.1.1 text (5.1.1: what it means)", one line. */
TLSMAIL__PRIVATE void tlsmail__describe_reply(char *buf, size_t cap, size_t *n, int code,
                                              const char *enhanced, const char *text, int tls) {
    const char *p, *why = tlsmail__enhanced_text(enhanced);
    char num[24];
    (void)tlsmail__utoa(num, (size_t)code);
    tlsmail__adds(buf, cap, n, "; server said", tls ? ": " : " (in plaintext, unauthenticated): ", num,
                  " ");
    /* Multi-line replies on one line: the caller's log wants one. */
    for (p = text; *p && *n + 1 < cap; p++) buf[(*n)++] = *p == '\n' ? ' ' : *p;
    buf[*n] = 0;
    if (why) {
        tlsmail__adds(buf, cap, n, " (", enhanced, ": ", why);
        tlsmail__adds(buf, cap, n, enhanced[0] == '4' ? "; for now)" : ")", NULL, NULL, NULL);
    }
}

TLSMAIL_DEF char *tlsmail_describe_rcpt(const tlsmail_rcpt_result *r, char *buf, size_t cap) {
    size_t n = 0;
    int err;
    if (!buf || !cap) return buf;
    buf[0] = 0;
    if (!r) return buf;
    if (!r->code) {
        tlsmail__adds(buf, cap, &n, tlsmail_stage_name(TLSMAIL_STAGE_RCPT),
                      ": no reply (the command was not sent, or the connection ended first)", NULL, NULL);
        return buf;
    }
    err = tlsmail__verdict(r->code, TLSMAIL__WANT_RCPT);
    tlsmail__adds(buf, cap, &n, tlsmail_stage_name(TLSMAIL_STAGE_RCPT), ": ", tlsmail_strerror(err), NULL);
    /* RCPT only ever goes over TLS */
    tlsmail__describe_reply(buf, cap, &n, r->code, r->enhanced, r->text, 1);
    return buf;
}

TLSMAIL_DEF char *tlsmail_describe(const tlsmail_client *c, int err, char *buf, size_t cap) {
    size_t n = 0;
    char num[24];
    if (!buf || !cap) return buf;
    buf[0] = 0;
    /* Who has it first, then what stopped the rest, told as it would be
       had nothing been delivered (its reply quoted only if it was one). */
    if (err == TLSMAIL_EPARTIAL && c && c->partial_err && c->partial_err != TLSMAIL_EPARTIAL) {
        char total[24];
        (void)tlsmail__utoa(num, c->rcpt_done);
        (void)tlsmail__utoa(total, c->rcpt_total);
        tlsmail__adds(buf, cap, &n, "delivered to ", num, " of ", total);
        tlsmail__adds(buf, cap, &n, " recipients (a retry would send it again to those); ", NULL,
                      NULL, NULL);
        if (n + 1 < cap) (void)tlsmail_describe(c, c->partial_err, buf + n, cap - n);
        return buf;
    }
    /* ENOMECH on the server's word (534: too weak for this account's
       policy, as Gmail says of a password where it wants an app password or
       OAuth; 504: unknown): it was offered, so "offers none" would mislead. */
    tlsmail__adds(buf, cap, &n, tlsmail_stage_name(tlsmail_stage(c)), ": ",
                  err == TLSMAIL_ENOMECH && c && c->reply_fresh && c->code >= 500
                      ? "server refused the AUTH mechanism for this login" : tlsmail_strerror(err),
                  NULL);
    /* The reply explains only what the server decided; after our own
       refusal (a bad argument, a timeout) it would be an older, unrelated
       reply. */
    if (c && c->code && c->reply_fresh &&
        (err == TLSMAIL_ETRANSIENT || err == TLSMAIL_EPERMANENT || err == TLSMAIL_EAUTH ||
         err == TLSMAIL_ESTARTTLS || err == TLSMAIL_EPROTO || err == TLSMAIL_ENOMECH))
        tlsmail__describe_reply(buf, cap, &n, c->code, c->enhanced, c->text, c->reply_tls);
    if (c) tlsmail__describe_local(c, err, buf, cap, &n);
    if (c && c->br_err) {
        (void)snprintf(num, sizeof num, "%d", c->br_err);
        tlsmail__adds(buf, cap, &n, " (BearSSL error ", num, ")", NULL);
    }
    if (c && c->sys_err && (err == TLSMAIL_ECONNECT || err == TLSMAIL_EIO)) {
        const char *why = NULL;
#ifndef TLSMAIL_NO_SOCKETS
        why = tlsmail__sys_text(c->sys_err);
#endif
        (void)snprintf(num, sizeof num, "%d", c->sys_err);
        if (why)
            tlsmail__adds(buf, cap, &n, " (", why, "; errno ", num);
        else
            tlsmail__adds(buf, cap, &n, " (errno ", num, NULL, NULL);
        tlsmail__adds(buf, cap, &n, ")", NULL, NULL, NULL);
    }
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
