/* tests/integration/itest.c - drives tlsmail.h for the integration tests
   (tests/integration/test_integration.py).

   itest --addr HOST:PORT [--api send|client|sendex|transact|stream|stream2] [--cafile F]
         [--pin B64] [--auth plain|login|auto|xoauth2|oauthbearer|external]
         [--user U] [--pass P] [--token T | --token-file F] [--identity I]
         [--cert F [--key F]] [--authhost H] [--from A] [--to A]... [--msg FILE]
         [--chunk N] [--timeout-ms N] [--deadline-ms N]
         [--security tls|starttls|fallback] [--starttls-port N]
         [--size N|auto] [--body auto|7bit|8bitmime] [--smtputf8]
         [--ret full|hdrs] [--envid ID] [--notify success,failure,delay|never]
         [--orcpt A]... [--partial] [--capath D] [--addresses A,...]
         [--tcp-fastopen]
   itest --name-hashes FILE

   send     tlsmail_send(addr, auth, from, to, nto, msg, len); trust from the
            environment (SSL_CERT_FILE).
   client   tlsmail_client_send() with a tlsmail_config (trust from --cafile /
            --pin, else the system store).
   stream   dial, hello, authenticate, mail, rcpt..., data_begin,
            data_write in --chunk byte pieces (default 1), data_end, quit,
            close.
   stream2  as stream, then tlsmail_reset and the same message again on the
            same connection.
   sendex   tlsmail_client_send_ex() with the MAIL options (--body,
            --smtputf8, --ret, --envid), the RCPT options (--notify for every
            recipient, --orcpt for each in turn), results for every
            recipient, and --partial for TLSMAIL_DELIVER_ACCEPTED.
   transact dial, hello, authenticate, tlsmail_transact() with the sendex
            options; refused (EPERMANENT, ETRANSIENT), tlsmail_reset and
            tlsmail_transact() again; quit. Prints "first <NAME> <stage>"
            (stderr: "first: " and its tlsmail_describe()), "again <NAME>"
            after the second, and the first's per-recipient results.
   begin    as transact, with tlsmail_transact_begin, the message by
            tlsmail_data_write in --chunk pieces and tlsmail_data_end.
   The stream apis use tlsmail_mail_ex and tlsmail_rcpt_ex with the same
   options (--size: SIZE=, "auto" for tlsmail_message_size).

   The message is --msg FILE or stdin. Prints on stdout
       heap <peak octets> <allocations> <octets still held>
       result <NAME> <code> <stage> <elapsed_ms>
   and, for the client apis, "class <CLASS>" (tlsmail_error_class),
   "queue <id>" (tlsmail_queue_id, "-" for none) and for sendex one line
   per recipient, "rcpt <i> <code> <enhanced or -> <text>", and
   "delivered <0 or 1 for each recipient>" (tlsmail_rcpt_result.delivered;
   for transact and begin the first message's); then
   tlsmail_describe() on stderr. Exit 0 if OK, else 1.
   The heap line counts what the library allocated (TLSMAIL_MALLOC) from
   the start of the session to its end, trust set-up excepted.
   ITEST_TRACE=1 prints the SMTP dialogue ("> line", "< line") on stderr.

   --name-hashes FILE prints, for each certificate in the PEM file, the
   OpenSSL subject hash tlsmail computes for it ("%08lx"), one per line
   ("-" when it has none). */
#define _POSIX_C_SOURCE 200809L
#include "../lib/heap_count.h"
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/err_name.h"

static void heap_reset(void) {
    heap_peak = heap_live;
    heap_allocs = 0;
}

static void heap_report(size_t base) {
    printf("heap %lu %lu %lu\n", (unsigned long)(heap_peak - base), (unsigned long)heap_allocs,
           (unsigned long)(heap_live - base));
}

/* --name-hashes: the subject hash of every certificate in a PEM file. */
static int name_hashes(const char *path) {
    static tlsmail__pemwork w;
    static unsigned char text[1 << 20];
    FILE *f = fopen(path, "rb");
    size_t n, off = 0, used;
    if (!f) { perror(path); return 2; }
    n = fread(text, 1, sizeof text, f);
    fclose(f);
    tlsmail__pem_reset(&w.pem, w.der, sizeof w.der);
    for (;;) {
        int got = off < n ? tlsmail__pem_push(&w.pem, text + off, n - off, &used) : tlsmail__pem_finish(&w.pem);
        unsigned long h;
        if (off < n) off += used;
        if (got) {
            tlsmail__cw_init(&w.cw, w.pem.len);
            tlsmail__cw_push(&w.cw, w.der, w.pem.len);
            if (w.cw.done && !w.cw.err && tlsmail__name_hash(w.cw.subject, w.cw.subject_len, &h) == 0)
                printf("%08lx\n", h);
            else
                printf("-\n");
        }
        if (!got && off >= n) return 0;
    }
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(void) {
    fputs("usage: itest --addr HOST:PORT [--api send|client|sendex|transact|stream|stream2]\n"
          "  [--cafile F] [--capath D] [--capem F] [--anchors F] [--pin B64]\n"
          "  [--auth plain|login|auto|xoauth2|oauthbearer|external] [--user U] [--pass P]\n"
          "  [--token T|--token-file F] [--identity I] [--cert F [--key F]]\n"
          "  [--authhost H] [--from A] [--to A]... [--msg FILE] [--chunk N]\n"
          "  [--timeout-ms N] [--deadline-ms N] [--security tls|starttls|fallback]\n"
          "  [--starttls-port N] [--size N|auto] [--body auto|7bit|8bitmime] [--smtputf8]\n"
          "  [--ret full|hdrs] [--envid ID] [--notify LIST] [--orcpt A]... [--partial]\n"
          "  [--addresses A,...] [--tcp-fastopen]\n", stderr);
    exit(2);
}

static void trace_cb(void *ud, int dir, const char *line, size_t len) {
    (void)ud;
    fprintf(stderr, "%c %.*s%s\n", (dir & TLSMAIL_TRACE_RECV) ? '<' : '>', (int)len, line,
            (dir & TLSMAIL_TRACE_PLAINTEXT) ? " (plain)" : "");
}

/* Read all of f; *len gets the size. Never returns NULL (exits). */
static char *read_all(FILE *f, size_t *len) {
    size_t cap = 4096, n = 0, r;
    char *buf = malloc(cap);
    if (!buf) { perror("malloc"); exit(2); }
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { perror("realloc"); exit(2); }
            buf = nb;
            cap *= 2;
        }
    }
    if (ferror(f)) { perror("read"); exit(2); }
    *len = n;
    return buf;
}

static const char *stage_str(int stage) {
    const char *s = tlsmail_stage_name(stage);
    return (s && *s) ? s : "-";
}

static int write_chunks(tlsmail_client *c, const char *msg, size_t len, size_t chunk) {
    size_t off = 0;
    int err = 0;
    if (chunk == 0) chunk = len ? len : 1;
    while (off < len && !err) {
        size_t n = len - off < chunk ? len - off : chunk;
        err = tlsmail_data_write(c, msg + off, n);
        off += n;
    }
    return err;
}

static const char *class_name(int cls) {
    switch (cls) {
    case TLSMAIL_CLASS_NONE: return "NONE";
    case TLSMAIL_CLASS_CONFIG: return "CONFIG";
    case TLSMAIL_CLASS_RETRY: return "RETRY";
    case TLSMAIL_CLASS_REFUSED: return "REFUSED";
    case TLSMAIL_CLASS_TAMPERING: return "TAMPERING";
    case TLSMAIL_CLASS_MAYBE_DELIVERED: return "MAYBE_DELIVERED";
    case TLSMAIL_CLASS_PARTIAL: return "PARTIAL";
    default: return "?";
    }
}

static unsigned parse_notify(const char *s) {
    unsigned bits = 0;
    char buf[64], *tok;
    snprintf(buf, sizeof buf, "%s", s);
    for (tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (!strcmp(tok, "success")) bits |= TLSMAIL_NOTIFY_SUCCESS;
        else if (!strcmp(tok, "failure")) bits |= TLSMAIL_NOTIFY_FAILURE;
        else if (!strcmp(tok, "delay")) bits |= TLSMAIL_NOTIFY_DELAY;
        else if (!strcmp(tok, "never")) bits |= TLSMAIL_NOTIFY_NEVER;
        else bits |= 1u << 8; /* the library must refuse it */
    }
    return bits;
}

/* What MAIL and RCPT declare, from the command line. */
static tlsmail_mail_opts mail_opts;
static tlsmail_rcpt_opts *rcpt_opts;

/* One message on an open session: MAIL, RCPT..., DATA, body, end. */
static int one_message(tlsmail_client *c, const char *from, const char **to, size_t nto,
                       const char *msg, size_t len, size_t chunk) {
    size_t i;
    int err = tlsmail_mail_ex(c, from, &mail_opts);
    for (i = 0; i < nto && !err; i++) err = tlsmail_rcpt_ex(c, to[i], &rcpt_opts[i]);
    if (!err) err = tlsmail_data_begin(c);
    if (!err) err = write_chunks(c, msg, len, chunk);
    if (!err) err = tlsmail_data_end(c);
    return err;
}

/* tlsmail_transact, or (begin) tlsmail_transact_begin, the message in
   chunk-octet pieces and tlsmail_data_end. */
static int transact_one(tlsmail_client *c, int begin, const char *from, const char **to, size_t nto,
                        const char *msg, size_t len, size_t chunk, const tlsmail_send_opts *o) {
    int err;
    if (!begin) return tlsmail_transact(c, from, to, nto, msg, len, o);
    err = tlsmail_transact_begin(c, from, to, nto, o);
    if (!err) err = write_chunks(c, msg, len, chunk);
    if (!err) err = tlsmail_data_end(c);
    return err;
}

static tlsmail_client client; /* about 27 KB: not on the stack */

/* Everything main allocates, freed on every way out (the sanitizer and
   valgrind runs count a leak as a failure). */
static void *owned[8];
static size_t nowned;

static void *own(void *p) {
    if (!p) { perror("calloc"); exit(2); }
    owned[nowned++] = p;
    return p;
}

static void free_owned(void) {
    while (nowned) free(owned[--nowned]);
}

/* tlsmail_close promises a wiped client (keys, buffers, replies): every byte
   zero but the fd, which it sets to -1. A miss is an exit the suites catch. */
static void check_wiped(const tlsmail_client *c) {
    tlsmail_client want;
    memset(&want, 0, sizeof want);
    want.fd = -1;
    if (memcmp(c, &want, sizeof want) != 0) {
        fputs("itest: tlsmail_close left data in the client\n", stderr);
        exit(3);
    }
}

int main(int argc, char **argv) {
    const char *addr = NULL, *api = "send", *cafile = NULL, *pin = NULL;
    const char *mech = NULL, *user = "", *pass = "", *authhost = NULL;
    const char *from = "sender@example.org", *msgfile = NULL;
    const char **to;
    size_t nto = 0, len = 0, chunk = 1;
    int timeout_ms = 0, deadline_ms = 0, have_timeout = 0, i, err = 0;
    int stage = -1, reply = -1;
    char desc[1024], queue[TLSMAIL_QUEUE_ID];
    int cls = 0;
    char *msg;
    tlsmail_auth auth;
    const tlsmail_auth *ap = NULL;
    tlsmail_trust trust;
    tlsmail_config cfg;
    long long t0;
    const char *security = "tls";
    const char *capem = NULL, *anchors = NULL, *capath = NULL;
    size_t base;
    tlsmail_trust loaded;
    unsigned starttls_port = 0;
    const char *addresses = NULL;
    const char *token = NULL, *token_file = NULL, *identity = NULL, *certfile = NULL;
    const char *keyfile = NULL, *size = NULL, *notify = NULL;
    const char **orcpt;
    size_t norcpt = 0;
    int partial = 0, fastopen = 0;
    char *token_buf = NULL;
    tlsmail_client_cert cert;
    tlsmail_rcpt_result *results = NULL;
    tlsmail_send_opts send_opts;

    if (argc == 3 && !strcmp(argv[1], "--name-hashes")) return name_hashes(argv[2]);
    to = own(calloc((size_t)argc, sizeof *to));
    orcpt = own(calloc((size_t)argc, sizeof *orcpt));
    memset(&mail_opts, 0, sizeof mail_opts);
    for (i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--smtputf8")) { mail_opts.smtputf8 = 1; continue; }
        if (!strcmp(o, "--partial")) { partial = 1; continue; }
        if (!strcmp(o, "--tcp-fastopen")) { fastopen = 1; continue; }
        if (i + 1 >= argc) usage();
        if (!strcmp(o, "--addr")) addr = argv[++i];
        else if (!strcmp(o, "--api")) api = argv[++i];
        else if (!strcmp(o, "--cafile")) cafile = argv[++i];
        else if (!strcmp(o, "--capath")) capath = argv[++i];
        else if (!strcmp(o, "--capem")) capem = argv[++i];
        else if (!strcmp(o, "--anchors")) anchors = argv[++i];
        else if (!strcmp(o, "--pin")) pin = argv[++i];
        else if (!strcmp(o, "--auth")) mech = argv[++i];
        else if (!strcmp(o, "--user")) user = argv[++i];
        else if (!strcmp(o, "--pass")) pass = argv[++i];
        else if (!strcmp(o, "--authhost")) authhost = argv[++i];
        else if (!strcmp(o, "--from")) from = argv[++i];
        else if (!strcmp(o, "--to")) to[nto++] = argv[++i];
        else if (!strcmp(o, "--msg")) msgfile = argv[++i];
        else if (!strcmp(o, "--chunk")) chunk = (size_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(o, "--timeout-ms")) { timeout_ms = atoi(argv[++i]); have_timeout = 1; }
        else if (!strcmp(o, "--deadline-ms")) deadline_ms = atoi(argv[++i]);
        else if (!strcmp(o, "--security")) security = argv[++i];
        else if (!strcmp(o, "--starttls-port")) starttls_port = (unsigned)atoi(argv[++i]);
        else if (!strcmp(o, "--addresses")) addresses = argv[++i];
        else if (!strcmp(o, "--token")) token = argv[++i];
        else if (!strcmp(o, "--token-file")) token_file = argv[++i];
        else if (!strcmp(o, "--identity")) identity = argv[++i];
        else if (!strcmp(o, "--cert")) certfile = argv[++i];
        else if (!strcmp(o, "--key")) keyfile = argv[++i];
        else if (!strcmp(o, "--size")) size = argv[++i];
        else if (!strcmp(o, "--body")) {
            const char *b = argv[++i];
            mail_opts.body = !strcmp(b, "7bit") ? TLSMAIL_BODY_7BIT :
                             !strcmp(b, "8bitmime") ? TLSMAIL_BODY_8BITMIME :
                             !strcmp(b, "auto") ? TLSMAIL_BODY_AUTO : (usage(), 0);
        } else if (!strcmp(o, "--ret")) {
            const char *r = argv[++i];
            mail_opts.ret = !strcmp(r, "full") ? TLSMAIL_RET_FULL :
                            !strcmp(r, "hdrs") ? TLSMAIL_RET_HDRS : (usage(), 0);
        } else if (!strcmp(o, "--envid")) mail_opts.envid = argv[++i];
        else if (!strcmp(o, "--notify")) notify = argv[++i];
        else if (!strcmp(o, "--orcpt")) orcpt[norcpt++] = argv[++i];
        else usage();
    }
    if (!addr) usage();
    if (strcmp(api, "send") && strcmp(api, "client") && strcmp(api, "stream") &&
        strcmp(api, "stream2") && strcmp(api, "sendex") && strcmp(api, "transact") &&
        strcmp(api, "begin")) usage();
    if (nto == 0) to[nto++] = "rcpt@example.org";
    rcpt_opts = own(calloc(nto, sizeof *rcpt_opts));
    results = own(calloc(nto, sizeof *results));
    for (i = 0; (size_t)i < nto; i++) {
        rcpt_opts[i].notify = notify ? parse_notify(notify) : 0;
        rcpt_opts[i].orcpt = (size_t)i < norcpt ? orcpt[i] : NULL;
    }
    if (token_file) { /* multi-KB tokens: not on the command line */
        size_t tl;
        FILE *f = fopen(token_file, "rb");
        if (!f) { perror(token_file); return 2; }
        token_buf = own(read_all(f, &tl));
        fclose(f);
        while (tl && (token_buf[tl - 1] == '\n' || token_buf[tl - 1] == '\r')) tl--;
        token_buf[tl] = '\0';
        token = token_buf;
    }

    if (msgfile) {
        FILE *f = fopen(msgfile, "rb");
        if (!f) { perror(msgfile); return 2; }
        msg = own(read_all(f, &len));
        fclose(f);
    } else {
        msg = own(read_all(stdin, &len));
    }

    /* the credentials name the server as dialled ("host:port" will do) */
    if (mech) {
        const char *ah = authhost ? authhost : addr;
        if (!strcmp(mech, "plain")) auth = tlsmail_plain_auth(identity ? identity : "", user, pass, ah);
        else if (!strcmp(mech, "login")) auth = tlsmail_login_auth(user, pass, ah);
        else if (!strcmp(mech, "auto")) {
            auth = tlsmail_auto_auth(user, *pass ? pass : NULL, ah);
            auth.token = token;
        } else if (!strcmp(mech, "xoauth2")) auth = tlsmail_xoauth2_auth(user, token, ah);
        else if (!strcmp(mech, "oauthbearer")) auth = tlsmail_oauthbearer_auth(user, token, ah);
        else if (!strcmp(mech, "external")) auth = tlsmail_external_auth(identity, ah);
        else usage();
        ap = &auth;
    }

    memset(&trust, 0, sizeof trust);
    memset(&cfg, 0, sizeof cfg);
    cfg.host = addr;   /* the library splits "host:port" itself */
    if (!strcmp(security, "tls")) cfg.security = TLSMAIL_SECURITY_TLS;
    else if (!strcmp(security, "starttls")) cfg.security = TLSMAIL_SECURITY_STARTTLS;
    else if (!strcmp(security, "fallback")) cfg.security = TLSMAIL_SECURITY_TLS_OR_STARTTLS;
    else usage();
    cfg.starttls_port = starttls_port;
    cfg.addresses = addresses;
    cfg.tcp_fastopen = fastopen;
    cfg.timeout_ms = have_timeout ? timeout_ms : 0;
    cfg.deadline_ms = deadline_ms;
    cfg.trust = &trust;
    if (getenv("ITEST_TRACE") && !strcmp(getenv("ITEST_TRACE"), "1")) cfg.trace = trace_cb;

    t0 = now_ms();
    if (!strcmp(api, "send")) {
        heap_reset();
        err = tlsmail_send(addr, ap, from, to, nto, msg, len);
        heap_report(0);
        printf("result %s %d - %lld\n", err_name(err), err, now_ms() - t0);
        fflush(stdout);
        free_owned();
        return err ? 1 : 0;
    }

    memset(&loaded, 0, sizeof loaded);
    memset(&cert, 0, sizeof cert);
    if (certfile) {
        err = tlsmail_client_cert_file(&cert, certfile, keyfile);
        if (err) {
            printf("result %s %d %s %lld\n", err_name(err), err, stage_str(TLSMAIL_STAGE_NONE),
                   now_ms() - t0);
            fprintf(stderr, "client certificate: %s\n", tlsmail_strerror(err));
            free_owned();
            return 1;
        }
        cfg.client_cert = &cert;
    }
    if (size) mail_opts.size = !strcmp(size, "auto") ? tlsmail_message_size(msg, len)
                                                     : (size_t)strtoull(size, NULL, 10);
    if (cafile) err = tlsmail_trust_file(&trust, cafile);
    if (!err && capath) err = tlsmail_trust_dir(&trust, capath);
    if (!err && capem) { /* the PEM from memory */
        size_t plen;
        FILE *f = fopen(capem, "rb");
        char *pem;
        if (!f) { perror(capem); return 2; }
        pem = read_all(f, &plen);
        fclose(f);
        err = tlsmail_trust_pem(&trust, pem, plen);
        free(pem);
    }
    if (!err && anchors) { /* the caller's own br_x509_trust_anchor array, made
                              here from PEM (a trust from memory holds its anchors) */
        size_t plen;
        FILE *f = fopen(anchors, "rb");
        char *pem;
        if (!f) { perror(anchors); return 2; }
        pem = read_all(f, &plen);
        fclose(f);
        err = tlsmail_trust_pem(&loaded, pem, plen);
        free(pem);
        if (!err) err = tlsmail_trust_anchors(&trust, loaded.anchors, loaded.count);
    }
    if (!err && pin) err = tlsmail_trust_pin_sha256(&trust, pin);
    if (err) {
        /* no session at all: the trust could not be built */
        printf("result %s %d %s %lld\n", err_name(err), err,
               stage_str(TLSMAIL_STAGE_NONE), now_ms() - t0);
        fflush(stdout);
        fprintf(stderr, "trust: %s\n", tlsmail_strerror(err));
        tlsmail_trust_free(&trust);
        free_owned();
        return 1;
    }

    base = heap_live; /* what the trust set-up holds is not the session's */
    heap_reset();
    memset(&send_opts, 0, sizeof send_opts);
    if (!strcmp(api, "client") || !strcmp(api, "sendex")) {
        if (!strcmp(api, "client")) {
            err = tlsmail_client_send(&client, &cfg, ap, from, to, nto, msg, len);
        } else {
            send_opts.mail = &mail_opts;
            send_opts.rcpt = rcpt_opts;
            send_opts.results = results;
            send_opts.deliver = partial ? TLSMAIL_DELIVER_ACCEPTED : TLSMAIL_DELIVER_ALL;
            err = tlsmail_client_send_ex(&client, &cfg, ap, from, to, nto, msg, len, &send_opts);
        }
        stage = tlsmail_stage(&client);
        reply = tlsmail_reply_code(&client);
        tlsmail_describe(&client, err, desc, sizeof desc);
        snprintf(queue, sizeof queue, "%s", tlsmail_queue_id(&client));
        cls = tlsmail_error_class(&client, err);
        tlsmail_close(&client);
        check_wiped(&client);
    } else if (!strcmp(api, "transact") || !strcmp(api, "begin")) {
        int again = 0, begin = !strcmp(api, "begin");
        send_opts.mail = &mail_opts;
        send_opts.rcpt = rcpt_opts;
        send_opts.results = results;
        send_opts.deliver = partial ? TLSMAIL_DELIVER_ACCEPTED : TLSMAIL_DELIVER_ALL;
        err = tlsmail_dial(&client, &cfg);
        if (!err) err = tlsmail_hello(&client);
        if (!err && ap) err = tlsmail_authenticate(&client, ap);
        if (!err) {
            /* the first message's verdict; refused, RSET and the same again */
            err = transact_one(&client, begin, from, to, nto, msg, len, chunk, &send_opts);
            tlsmail_describe(&client, err, desc, sizeof desc);
            printf("first %s %s\n", err_name(err), stage_str(tlsmail_stage(&client)));
            fprintf(stderr, "first: %s\n", desc);
            if (err == TLSMAIL_EPERMANENT || err == TLSMAIL_ETRANSIENT) {
                again = 1;
                err = tlsmail_reset(&client);
                if (!err) err = transact_one(&client, begin, from, to, nto, msg, len, chunk, NULL);
            }
        }
        if (!err) err = tlsmail_quit(&client);
        stage = tlsmail_stage(&client);
        tlsmail_describe(&client, err, desc, sizeof desc);
        snprintf(queue, sizeof queue, "%s", tlsmail_queue_id(&client));
        cls = tlsmail_error_class(&client, err);
        if (again) printf("again %s\n", err_name(err));
        tlsmail_close(&client);
        check_wiped(&client);
    } else {
        int twice = !strcmp(api, "stream2");
        err = tlsmail_dial(&client, &cfg);
        if (!err) err = tlsmail_hello(&client);
        if (!err && ap) err = tlsmail_authenticate(&client, ap);
        if (!err) err = one_message(&client, from, to, nto, msg, len, chunk);
        if (!err && twice) err = tlsmail_reset(&client);
        if (!err && twice) err = one_message(&client, from, to, nto, msg, len, chunk);
        if (!err) err = tlsmail_quit(&client);
        /* read the stage and reply before tlsmail_close wipes the client */
        stage = tlsmail_stage(&client);
        tlsmail_describe(&client, err, desc, sizeof desc);
        snprintf(queue, sizeof queue, "%s", tlsmail_queue_id(&client));
        cls = tlsmail_error_class(&client, err);
        tlsmail_close(&client);
        check_wiped(&client);
    }
    heap_report(base);
    printf("result %s %d %s %lld\n", err_name(err), err, stage_str(stage), now_ms() - t0);
    printf("class %s\nqueue %s\n", class_name(cls), queue[0] ? queue : "-");
    if (reply >= 0) printf("reply %d\n", reply); /* the one call's last reply */
    if (!strcmp(api, "sendex") || !strcmp(api, "transact") || !strcmp(api, "begin")) {
        for (i = 0; (size_t)i < nto; i++)
            printf("rcpt %d %d %s %s\n", i, results[i].code,
                   results[i].enhanced[0] ? results[i].enhanced : "-", results[i].text);
        fputs("delivered ", stdout); /* one digit a recipient, in order */
        for (i = 0; (size_t)i < nto; i++) putchar(results[i].delivered ? '1' : '0');
        putchar('\n');
    }
    fflush(stdout);
    fprintf(stderr, "%s\n", desc);
    tlsmail_trust_free(&trust);
    tlsmail_trust_free(&loaded);
    tlsmail_client_cert_free(&cert);
    free_owned();
    return err ? 1 : 0;
}
