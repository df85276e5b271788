/* bench/sink.c - the benchmark's SMTP server: counts and checks, stores
   nothing.

       sink --cert CHAIN.pem --key KEY.pem --user USER --pass PASS
            --listen NAME=MODE[,nochunking][:PORT]... [--addr IPV4]
            [--no-cache] [--idle-ms N] [--max-seconds N] [--client-order]
       sink --sum FILE      print "BYTES SUM" of FILE and exit

   One process, poll(), many connections at once, TLS through BearSSL's
   server engine. MODE is "implicit" (TLS from the first byte) or
   "starttls" (plaintext greeting, STARTTLS required before AUTH and
   mail). Every listener is on 127.0.0.1, or on --addr (0.0.0.0: every
   address, as in the benchmark's far network namespace), and takes TCP
   Fast Open where the system has TCP_FASTOPEN: the data of a SYN from a
   client holding a cookie reaches the sink at once (the kernel also needs
   the server bit of net.ipv4.tcp_fastopen, which the benchmark sets only
   in its own namespace). EHLO offers PIPELINING, SIZE, 8BITMIME, CHUNKING
   (unless "nochunking"), ENHANCEDSTATUSCODES, AUTH PLAIN LOGIN (once under
   TLS). MAIL needs AUTH. Message bytes are un-dot-stuffed (DATA) or taken
   raw (BDAT), counted, hashed and dropped.

   The benchmark reads stdout, one line per event:
       listen NAME PORT
       ready
       open ID NAME
       tls ID resumed=0|1 suite=0xXXXX
       msg ID mode=DATA|BDAT bytes=N sum=HEX16 rcpts=N resumed=0|1 seq=N
           body_us=N cpu_us=N verdict=ok|BAD|unchecked
       close ID msgs=N why=quit|eof|idle|error|...
   "sum" is the same function as --sum over the content, so a message is
   intact when its bytes and sum equal those of the file that was sent; the
   verdict compares them with what the control channel said to expect.

   Session resumption: session IDs through br_ssl_session_cache_lru (off
   with --no-cache); a resumed handshake is one in which BearSSL never
   asked the policy to choose a suite and a certificate.

   Every wait is bounded: a connection idle for --idle-ms (default 30000)
   is closed, the process ends after --max-seconds (default 3600), at EOF
   or "quit" on stdin (the control channel: see control()), and on
   SIGTERM/SIGINT.

   Build: cc -std=c99 -O2 $(cat tests/lib/warnings) bench/sink.c -lbearssl */
#define _POSIX_C_SOURCE 200809L
#include <bearssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LISTEN 8
#define MAX_CONN 512
#define MAX_CHAIN 4
#define LINE_MAX_LEN 2048       /* command lines; RFC 5321 says 512, be lenient */
#define REPLY_BUF 8192
#define PLAIN_BUF 4096
#define NET_BUF 65536           /* socket reads under TLS, see tls_feed() */
#define MAX_RCPT 1000
#define SIZE_LIMIT 104857600ul  /* announced in EHLO SIZE */
#define CACHE_ENTRIES 4096      /* 100 bytes each (bearssl_ssl.h) */

/* ---- the content hash ---------------------------------------------------
   Four independent 64-bit lanes over 32-byte blocks, so it runs far faster
   than the AES-GCM that delivers the bytes: the sink must not be what a
   50 MB send waits for. Blocks are cut at fixed stream offsets, so any
   split of the stream gives the same value. Not cryptographic: it only has
   to notice a lost, added or changed byte. */
#define K0 0x9E3779B97F4A7C15ull
#define K1 0xC2B2AE3D27D4EB4Full
#define K2 0x165667B19E3779F9ull
#define K3 0xD6E8FEB86659FD93ull

typedef struct {
    uint64_t h[4];
    unsigned char pend[32];
    size_t np;
    uint64_t len;
} sum_ctx;

static uint64_t rotl64(uint64_t x, unsigned r) { return (x << r) | (x >> (64u - r)); }

/* Native byte order: the expected value comes from this same binary
   (--sum), and memcpy compiles to one load. */
static uint64_t ld64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void sum_init(sum_ctx *s) {
    memset(s, 0, sizeof *s);
    s->h[0] = K0; s->h[1] = K1; s->h[2] = K2; s->h[3] = K3;
}

static void sum_blocks(sum_ctx *s, const unsigned char *p, size_t nb) {
    uint64_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
    while (nb--) {
        a = rotl64(a ^ ld64(p), 29) * K1;
        b = rotl64(b ^ ld64(p + 8), 29) * K2;
        c = rotl64(c ^ ld64(p + 16), 29) * K3;
        d = rotl64(d ^ ld64(p + 24), 29) * K0;
        p += 32;
    }
    s->h[0] = a; s->h[1] = b; s->h[2] = c; s->h[3] = d;
}

static void sum_update(sum_ctx *s, const unsigned char *p, size_t n) {
    s->len += n;
    if (s->np) {
        size_t k = 32 - s->np < n ? 32 - s->np : n;
        memcpy(s->pend + s->np, p, k);
        s->np += k; p += k; n -= k;
        if (s->np < 32) return;
        sum_blocks(s, s->pend, 1);
        s->np = 0;
    }
    sum_blocks(s, p, n / 32);
    p += n - n % 32;
    n %= 32;
    memcpy(s->pend, p, n);
    s->np = n;
}

static uint64_t fmix64(uint64_t x) {
    x ^= x >> 33; x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33; x *= 0xC4CEB9FE1A85EC53ull;
    return x ^ (x >> 33);
}

static uint64_t sum_final(sum_ctx *s) {
    if (s->np) {
        memset(s->pend + s->np, 0, 32 - s->np);
        sum_blocks(s, s->pend, 1);
    }
    return fmix64(fmix64(s->h[0]) ^ rotl64(fmix64(s->h[1]), 16) ^ rotl64(fmix64(s->h[2]), 32) ^
                  rotl64(fmix64(s->h[3]), 48) ^ s->len);
}

static int sum_file(const char *path) {
    static unsigned char buf[1 << 16];
    sum_ctx s;
    size_t n;
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return 1; }
    sum_init(&s);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sum_update(&s, buf, n);
    if (ferror(f)) { perror(path); fclose(f); return 1; }
    fclose(f);
    printf("%llu %016llx\n", (unsigned long long)s.len, (unsigned long long)sum_final(&s));
    return 0;
}

/* ---- configuration ------------------------------------------------------ */

enum { MODE_IMPLICIT, MODE_STARTTLS };

typedef struct {
    char name[32];
    int mode, chunking, fd;
    unsigned port;
} listener;

static listener lis[MAX_LISTEN];
static size_t nlis;
static const char *opt_user = "", *opt_pass = "";
static struct in_addr opt_addr = { 0 };   /* set to loopback in main() */
static long opt_idle_ms = 30000, opt_max_s = 3600;
static int opt_cache = 1, opt_client_order = 0;

static br_x509_certificate chain[MAX_CHAIN];
static size_t chain_len;
static br_skey_decoder_context skey;
static int key_type;
static unsigned char cache_store[CACHE_ENTRIES * 100];
static br_ssl_session_cache_lru cache;
static volatile sig_atomic_t stop_flag;
static int expect_set;
static unsigned long long expect_bytes;
static uint64_t expect_sum;

/* Our suite order, enforced for every client, so they all pay for the same
   bulk cipher: AES-128-GCM where the client offers it. */
static const uint16_t suites_ec[] = {
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
};
static const uint16_t suites_rsa[] = {
    BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
};

static void die(const char *what, const char *arg) {
    fprintf(stderr, "sink: %s%s%s\n", what, arg ? ": " : "", arg ? arg : "");
    exit(2);
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0, r;
    if (!f) die("cannot open", path);
    for (;;) {
        if (n == cap) {
            unsigned char *nb;
            cap = cap ? cap * 2 : 4096;
            if (cap > (1u << 24)) die("file too large", path);
            nb = (unsigned char *)realloc(buf, cap);
            if (!nb) die("out of memory", NULL);
            buf = nb;
        }
        r = fread(buf + n, 1, cap - n, f);
        if (!r) break;
        n += r;
    }
    if (ferror(f)) die("cannot read", path);
    fclose(f);
    *len = n;
    return buf;
}

typedef struct {
    unsigned char *buf;
    size_t len, cap;
} dbuf;

static void dbuf_append(void *ctx, const void *p, size_t n) {
    dbuf *d = (dbuf *)ctx;
    if (d->len + n > d->cap) {
        size_t cap = (d->len + n) * 2;
        unsigned char *nb = (unsigned char *)realloc(d->buf, cap);
        if (!nb) die("out of memory", NULL);
        d->buf = nb;
        d->cap = cap;
    }
    memcpy(d->buf + d->len, p, n);
    d->len += n;
}

/* Calls fn(name, der, len) for each PEM object of the file. */
static void pem_each(const char *path, void (*fn)(const char *, unsigned char *, size_t)) {
    size_t len, off = 0;
    unsigned char *pem = read_file(path, &len);
    br_pem_decoder_context pc;
    dbuf d = { NULL, 0, 0 };
    char name[128];
    int inobj = 0;
    br_pem_decoder_init(&pc);
    while (off < len) {
        off += br_pem_decoder_push(&pc, pem + off, len - off);
        switch (br_pem_decoder_event(&pc)) {
        case BR_PEM_BEGIN_OBJ:
            snprintf(name, sizeof name, "%s", br_pem_decoder_name(&pc));
            d.len = 0;
            br_pem_decoder_setdest(&pc, dbuf_append, &d);
            inobj = 1;
            break;
        case BR_PEM_END_OBJ:
            if (inobj) {
                unsigned char *obj = (unsigned char *)malloc(d.len ? d.len : 1);
                if (!obj) die("out of memory", NULL);
                memcpy(obj, d.buf, d.len);
                fn(name, obj, d.len);
            }
            inobj = 0;
            break;
        case BR_PEM_ERROR:
            die("bad PEM", path);
            break;
        default:
            break;
        }
    }
    free(d.buf);
    free(pem);
}

static void on_cert(const char *name, unsigned char *der, size_t len) {
    if (strcmp(name, "CERTIFICATE") != 0) { free(der); return; }
    if (chain_len == MAX_CHAIN) die("chain too long", NULL);
    chain[chain_len].data = der;
    chain[chain_len].data_len = len;
    chain_len++;
}

static void on_key(const char *name, unsigned char *der, size_t len) {
    (void)name;
    if (key_type) { free(der); return; }
    br_skey_decoder_init(&skey);
    br_skey_decoder_push(&skey, der, len);
    if (br_skey_decoder_last_error(&skey) != 0) die("cannot decode the private key", NULL);
    key_type = br_skey_decoder_key_type(&skey);
    /* the decoder keeps its own copy of the key */
    free(der);
}

/* ---- connections -------------------------------------------------------- */

enum { ST_CMD, ST_AUTH_PLAIN, ST_AUTH_USER, ST_AUTH_PASS, ST_DATA, ST_BDAT };
enum { DS_BOL, DS_MID, DS_DOT, DS_DOTCR };

typedef struct conn conn;

/* Wraps the profile's policy to see whether the handshake is a full one. */
typedef struct {
    const br_ssl_server_policy_class *vtable;
    const br_ssl_server_policy_class **inner;
    conn *c;
} policy_wrap;

struct conn {
    int fd, id, tls, hs_logged, full_hs, closing, quit_seen, starttls;
    const listener *l;
    long long deadline_ms;
    br_ssl_server_context sc;
    policy_wrap pw;
    unsigned char iobuf[BR_SSL_BUFSIZE_BIDI];
    unsigned char net[NET_BUF];      /* read from the socket, not yet given to TLS */
    size_t net_len, net_off;
    unsigned char pin[PLAIN_BUF];
    size_t pin_len;
    unsigned char rq[REPLY_BUF];     /* replies not yet handed to TLS / socket */
    size_t rq_len, rq_off;
    int unflushed;
    /* SMTP */
    int st, helo, authed, mail, nrcpt, bdat_used, data_used, msgs;
    char line[LINE_MAX_LEN + 1];
    size_t line_len;
    int line_long;
    char login_user[320];
    /* the message being received */
    sum_ctx sum;
    long long body_t0_us, body_cpu0_us;
    int ds;
    unsigned long long bdat_left;
    int bdat_last, bdat_skip;
};

static conn *conns[MAX_CONN];
static int next_id = 1;

static long long clock_us(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long long now_ms(void) { return clock_us(CLOCK_MONOTONIC) / 1000; }

static void event(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static int pw_choose(const br_ssl_server_policy_class **pctx, const br_ssl_server_context *cc,
                     br_ssl_server_choices *choices) {
    policy_wrap *w = (policy_wrap *)(void *)pctx;
    w->c->full_hs = 1;
    return (*w->inner)->choose(w->inner, cc, choices);
}

static uint32_t pw_keyx(const br_ssl_server_policy_class **pctx, unsigned char *data, size_t *len) {
    policy_wrap *w = (policy_wrap *)(void *)pctx;
    return (*w->inner)->do_keyx(w->inner, data, len);
}

static size_t pw_sign(const br_ssl_server_policy_class **pctx, unsigned algo_id, unsigned char *data,
                      size_t hv_len, size_t len) {
    policy_wrap *w = (policy_wrap *)(void *)pctx;
    return (*w->inner)->do_sign(w->inner, algo_id, data, hv_len, len);
}

static const br_ssl_server_policy_class pw_class = { sizeof(policy_wrap), pw_choose, pw_keyx, pw_sign };

static void tls_start(conn *c) {
    br_ssl_server_context *sc = &c->sc;
    if (key_type == BR_KEYTYPE_EC) {
        br_ssl_server_init_full_ec(sc, chain, chain_len, BR_KEYTYPE_EC, br_skey_decoder_get_ec(&skey));
        br_ssl_engine_set_suites(&sc->eng, suites_ec, sizeof suites_ec / sizeof suites_ec[0]);
    } else {
        br_ssl_server_init_full_rsa(sc, chain, chain_len, br_skey_decoder_get_rsa(&skey));
        br_ssl_engine_set_suites(&sc->eng, suites_rsa, sizeof suites_rsa / sizeof suites_rsa[0]);
    }
    br_ssl_engine_set_versions(&sc->eng, BR_TLS12, BR_TLS12);
    if (!opt_client_order) br_ssl_engine_add_flags(&sc->eng, BR_OPT_ENFORCE_SERVER_PREFERENCES);
    br_ssl_engine_add_flags(&sc->eng, BR_OPT_NO_RENEGOTIATION);
    br_ssl_engine_set_buffer(&sc->eng, c->iobuf, sizeof c->iobuf, 1);
    if (opt_cache) br_ssl_server_set_cache(sc, &cache.vtable);
    c->pw.vtable = &pw_class;
    c->pw.inner = sc->policy_vtable;
    c->pw.c = c;
    br_ssl_server_set_policy(sc, &c->pw.vtable);
    if (!br_ssl_server_reset(sc)) die("br_ssl_server_reset failed", NULL);
    c->tls = 1;
}

static void reply(conn *c, const char *s) {
    size_t n = strlen(s);
    if (c->rq_off && c->rq_len + n > sizeof c->rq) {
        memmove(c->rq, c->rq + c->rq_off, c->rq_len - c->rq_off);
        c->rq_len -= c->rq_off;
        c->rq_off = 0;
    }
    if (c->rq_len + n > sizeof c->rq) return;   /* input is held back before this can happen */
    memcpy(c->rq + c->rq_len, s, n);
    c->rq_len += n;
    c->unflushed = 1;
}

static void txn_reset(conn *c) {
    c->mail = 0;
    c->nrcpt = 0;
    c->bdat_used = 0;
    c->data_used = 0;
}

static void msg_begin(conn *c) {
    sum_init(&c->sum);
    c->ds = DS_BOL;
    c->body_t0_us = clock_us(CLOCK_MONOTONIC);
    c->body_cpu0_us = clock_us(CLOCK_PROCESS_CPUTIME_ID);
}

static void msg_done(conn *c, const char *mode) {
    char buf[128];
    unsigned long long bytes = (unsigned long long)c->sum.len;
    unsigned long long h = (unsigned long long)sum_final(&c->sum);
    c->msgs++;
    /* body_us and cpu_us: from DATA (or the first BDAT) to the end of the
       body, so the benchmark can tell when the server is what a send
       waits for */
    event("msg %d mode=%s bytes=%llu sum=%016llx rcpts=%d resumed=%d seq=%d body_us=%lld cpu_us=%lld "
          "verdict=%s",
          c->id, mode, bytes, h, c->nrcpt, c->tls ? !c->full_hs : 0, c->msgs,
          clock_us(CLOCK_MONOTONIC) - c->body_t0_us,
          clock_us(CLOCK_PROCESS_CPUTIME_ID) - c->body_cpu0_us,
          !expect_set ? "unchecked" : bytes == expect_bytes && h == expect_sum ? "ok" : "BAD");
    snprintf(buf, sizeof buf, "250 2.0.0 Ok: %llu octets, message %d\r\n", bytes, c->msgs);
    reply(c, buf);
    txn_reset(c);
    c->st = ST_CMD;
}

/* Un-dot-stuffs DATA (RFC 5321 4.5.2) into the hash; returns bytes used. */
static size_t data_input(conn *c, const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        switch (c->ds) {
        case DS_MID: {
            const unsigned char *nl = (const unsigned char *)memchr(p + i, '\n', n - i);
            size_t end = nl ? (size_t)(nl - p) + 1 : n;
            sum_update(&c->sum, p + i, end - i);
            i = end;
            if (nl) c->ds = DS_BOL;
            break;
        }
        case DS_BOL:
            if (p[i] == '.') { c->ds = DS_DOT; i++; } else c->ds = DS_MID;
            break;
        case DS_DOT:   /* the leading dot is dropped */
            if (p[i] == '\r') { c->ds = DS_DOTCR; i++; } else c->ds = DS_MID;
            break;
        case DS_DOTCR:
            if (p[i] == '\n') {
                msg_done(c, "DATA");
                return i + 1;
            }
            sum_update(&c->sum, (const unsigned char *)"\r", 1);
            c->ds = DS_MID;
            break;
        default:
            return n;
        }
    }
    return i;
}

static size_t bdat_input(conn *c, const unsigned char *p, size_t n) {
    size_t k = c->bdat_left < n ? (size_t)c->bdat_left : n;
    if (!c->bdat_skip) sum_update(&c->sum, p, k);
    c->bdat_left -= k;
    if (!c->bdat_left) {
        if (c->bdat_skip) {
            /* RFC 3030 3: the chunk is read even when the command failed */
            c->bdat_skip = 0;
            c->st = ST_CMD;
            reply(c, "503 5.5.1 No valid recipients\r\n");
        } else if (c->bdat_last) {
            msg_done(c, "BDAT");
        } else {
            char buf[80];
            snprintf(buf, sizeof buf, "250 2.0.0 Ok: chunk, %llu octets so far\r\n",
                     (unsigned long long)c->sum.len);
            reply(c, buf);
            c->st = ST_CMD;
        }
    }
    return k;
}

static int b64val(int ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

/* Base64 (RFC 4648, padding required) into out; -1 when malformed. */
static long b64dec(const char *s, unsigned char *out, size_t cap) {
    size_t n = strlen(s), i, o = 0;
    if (n % 4) return -1;
    for (i = 0; i < n; i += 4) {
        int v[4], k, pad = 0;
        for (k = 0; k < 4; k++) {
            if (s[i + (size_t)k] == '=' && i + 4 == n && k >= 2) { v[k] = 0; pad++; continue; }
            if (pad) return -1;
            v[k] = b64val((unsigned char)s[i + (size_t)k]);
            if (v[k] < 0) return -1;
        }
        if (o + 3 > cap) return -1;
        out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        if (pad < 2) out[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
        if (pad < 1) out[o++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
    }
    return (long)o;
}

static void auth_check(conn *c, const char *user, const char *pass) {
    if (strcmp(user, opt_user) == 0 && strcmp(pass, opt_pass) == 0) {
        c->authed = 1;
        reply(c, "235 2.7.0 Authentication successful\r\n");
    } else {
        reply(c, "535 5.7.8 Authentication credentials invalid\r\n");
    }
    c->st = ST_CMD;
}

static void auth_plain(conn *c, const char *b64) {
    unsigned char buf[800];
    char user[256], pass[256];
    long n = strcmp(b64, "=") == 0 ? 0 : b64dec(b64, buf, sizeof buf);
    const unsigned char *z1, *z2;
    size_t ul, pl;
    c->st = ST_CMD;
    if (n < 0) { reply(c, "501 5.5.2 Bad base64\r\n"); return; }
    z1 = (const unsigned char *)memchr(buf, 0, (size_t)n);
    z2 = z1 ? (const unsigned char *)memchr(z1 + 1, 0, (size_t)(buf + n - z1 - 1)) : NULL;
    if (!z2) { reply(c, "501 5.5.2 Bad PLAIN response\r\n"); return; }
    ul = (size_t)(z2 - z1 - 1);
    pl = (size_t)(buf + n - z2 - 1);
    if (ul >= sizeof user || pl >= sizeof pass) { reply(c, "501 5.5.2 Too long\r\n"); return; }
    memcpy(user, z1 + 1, ul); user[ul] = 0;
    memcpy(pass, z2 + 1, pl); pass[pl] = 0;
    auth_check(c, user, pass);
}

static int ieq_prefix(const char *s, const char *p) {
    for (; *p; s++, p++) {
        int a = (unsigned char)*s, b = (unsigned char)*p;
        if (a >= 'a' && a <= 'z') a -= 32;
        if (a != b) return 0;
    }
    return 1;
}

static void ehlo(conn *c) {
    char buf[512];
    int plain_phase = c->l->mode == MODE_STARTTLS && !c->tls;
    snprintf(buf, sizeof buf,
             "250-sink.localhost\r\n250-PIPELINING\r\n250-SIZE %lu\r\n250-8BITMIME\r\n%s%s%s"
             "250 ENHANCEDSTATUSCODES\r\n",
             SIZE_LIMIT, c->l->chunking ? "250-CHUNKING\r\n" : "",
             plain_phase ? "250-STARTTLS\r\n" : "", plain_phase ? "" : "250-AUTH PLAIN LOGIN\r\n");
    reply(c, buf);
}

/* One command line, CRLF stripped. Returns 1 when input must pause here
   (STARTTLS: nothing may follow it in the same buffer). */
static int command(conn *c, char *s) {
    if (c->st == ST_AUTH_PLAIN) {
        if (strcmp(s, "*") == 0) { c->st = ST_CMD; reply(c, "501 5.7.0 Cancelled\r\n"); }
        else auth_plain(c, s);
        return 0;
    }
    if (c->st == ST_AUTH_USER || c->st == ST_AUTH_PASS) {
        unsigned char buf[300];
        long n = strcmp(s, "*") == 0 ? -2 : b64dec(s, buf, sizeof buf - 1);
        if (n < 0) {
            c->st = ST_CMD;
            reply(c, n == -2 ? "501 5.7.0 Cancelled\r\n" : "501 5.5.2 Bad base64\r\n");
            return 0;
        }
        buf[n] = 0;
        if (c->st == ST_AUTH_USER) {
            snprintf(c->login_user, sizeof c->login_user, "%s", (char *)buf);
            c->st = ST_AUTH_PASS;
            reply(c, "334 UGFzc3dvcmQ6\r\n");
        } else {
            auth_check(c, c->login_user, (char *)buf);
        }
        return 0;
    }
    if (ieq_prefix(s, "EHLO ") || ieq_prefix(s, "HELO ")) {
        c->helo = 1;
        txn_reset(c);
        if (ieq_prefix(s, "EHLO ")) ehlo(c); else reply(c, "250 sink.localhost\r\n");
    } else if (ieq_prefix(s, "STARTTLS") && !s[8]) {
        if (c->l->mode != MODE_STARTTLS || c->tls) { reply(c, "503 5.5.1 TLS already active\r\n"); return 0; }
        reply(c, "220 2.0.0 Ready to start TLS\r\n");
        c->helo = 0;
        c->starttls = 1;
        return 1;
    } else if (ieq_prefix(s, "AUTH ")) {
        const char *arg;
        if (!c->tls) { reply(c, "538 5.7.11 Encryption required\r\n"); return 0; }
        if (c->authed) { reply(c, "503 5.5.1 Already authenticated\r\n"); return 0; }
        if (!c->helo) { reply(c, "503 5.5.1 EHLO first\r\n"); return 0; }
        if (ieq_prefix(s + 5, "PLAIN")) {
            arg = s + 10;
            if (*arg == ' ') auth_plain(c, arg + 1);
            else if (!*arg) { c->st = ST_AUTH_PLAIN; reply(c, "334 \r\n"); }
            else reply(c, "504 5.5.4 Unknown mechanism\r\n");
        } else if (ieq_prefix(s + 5, "LOGIN")) {
            arg = s + 10;
            if (*arg == ' ') {
                unsigned char buf[256];
                long n = b64dec(arg + 1, buf, sizeof buf - 1);
                if (n < 0) { reply(c, "501 5.5.2 Bad base64\r\n"); return 0; }
                buf[n] = 0;
                snprintf(c->login_user, sizeof c->login_user, "%s", (char *)buf);
                c->st = ST_AUTH_PASS;
                reply(c, "334 UGFzc3dvcmQ6\r\n");
            } else if (!*arg) {
                c->st = ST_AUTH_USER;
                reply(c, "334 VXNlcm5hbWU6\r\n");
            } else {
                reply(c, "504 5.5.4 Unknown mechanism\r\n");
            }
        } else {
            reply(c, "504 5.5.4 Unknown mechanism\r\n");
        }
    } else if (ieq_prefix(s, "MAIL FROM:")) {
        const char *sz;
        if (!c->authed) reply(c, "530 5.7.0 Authentication required\r\n");
        else if (c->mail) reply(c, "503 5.5.1 Nested MAIL\r\n");
        else if ((sz = strstr(s, " SIZE=")) != NULL && strtoul(sz + 6, NULL, 10) > SIZE_LIMIT)
            reply(c, "552 5.3.4 Message size exceeds fixed limit\r\n");
        else { c->mail = 1; reply(c, "250 2.1.0 Ok\r\n"); }
    } else if (ieq_prefix(s, "RCPT TO:")) {
        if (!c->mail) reply(c, "503 5.5.1 MAIL first\r\n");
        else if (c->nrcpt >= MAX_RCPT) reply(c, "452 4.5.3 Too many recipients\r\n");
        else { c->nrcpt++; reply(c, "250 2.1.5 Ok\r\n"); }
    } else if (ieq_prefix(s, "DATA") && !s[4]) {
        if (!c->nrcpt || c->bdat_used) reply(c, "503 5.5.1 No valid recipients\r\n");
        else {
            msg_begin(c);
            c->data_used = 1;
            c->st = ST_DATA;
            reply(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
        }
    } else if (ieq_prefix(s, "BDAT ")) {
        char *end;
        unsigned long long n = strtoull(s + 5, &end, 10);
        if (!c->l->chunking) { reply(c, "502 5.5.1 Command not implemented\r\n"); return 0; }
        if (end == s + 5 || (*end && !ieq_prefix(end, " LAST"))) {
            reply(c, "501 5.5.4 Bad BDAT\r\n");
            return 0;
        }
        c->bdat_skip = !c->nrcpt || c->data_used;
        if (!c->bdat_skip && !c->bdat_used) msg_begin(c);
        if (!c->bdat_skip) c->bdat_used = 1;
        c->bdat_left = n;
        c->bdat_last = *end != 0;
        c->st = ST_BDAT;
        if (!n) bdat_input(c, (const unsigned char *)"", 0);
    } else if (ieq_prefix(s, "RSET") && !s[4]) {
        txn_reset(c);
        reply(c, "250 2.0.0 Ok\r\n");
    } else if (ieq_prefix(s, "NOOP")) {
        reply(c, "250 2.0.0 Ok\r\n");
    } else if (ieq_prefix(s, "QUIT") && !s[4]) {
        reply(c, "221 2.0.0 Bye\r\n");
        c->quit_seen = 1;
        return 1;
    } else if (ieq_prefix(s, "VRFY")) {
        reply(c, "252 2.1.5 Cannot verify\r\n");
    } else {
        reply(c, "500 5.5.2 Unknown command\r\n");
    }
    return 0;
}

/* Feeds application bytes to the dialogue; returns how many it used. It
   stops early when the reply queue could overflow (the client must read)
   and after STARTTLS or QUIT. */
static size_t smtp_input(conn *c, const unsigned char *p, size_t n) {
    size_t used = 0;
    while (used < n && !c->quit_seen) {
        if (c->rq_len - c->rq_off > sizeof c->rq - 1024) break;
        if (c->st == ST_DATA) { used += data_input(c, p + used, n - used); continue; }
        if (c->st == ST_BDAT) { used += bdat_input(c, p + used, n - used); continue; }
        {
            const unsigned char *nl = (const unsigned char *)memchr(p + used, '\n', n - used);
            size_t end = nl ? (size_t)(nl - p) : n, k = end - used;
            if (c->line_len + k > LINE_MAX_LEN) {
                c->line_long = 1;
                k = LINE_MAX_LEN - c->line_len;
            }
            memcpy(c->line + c->line_len, p + used, k);
            c->line_len += k;
            used = nl ? end + 1 : n;
            if (!nl) break;
            if (c->line_len && c->line[c->line_len - 1] == '\r') c->line_len--;
            c->line[c->line_len] = 0;
            c->line_len = 0;
            if (c->line_long) {
                c->line_long = 0;
                reply(c, "500 5.5.2 Line too long\r\n");
                continue;
            }
            if (command(c, c->line)) return used;
        }
    }
    return used;
}

static void conn_close(conn *c, const char *why) {
    size_t i;
    event("close %d msgs=%d why=%s", c->id, c->msgs, why);
    close(c->fd);
    for (i = 0; i < MAX_CONN; i++)
        if (conns[i] == c) conns[i] = NULL;
    free(c);
}

static void log_handshake(conn *c) {
    br_ssl_session_parameters sp;
    br_ssl_engine_get_session_parameters(&c->sc.eng, &sp);
    event("tls %d resumed=%d suite=0x%04x", c->id, !c->full_hs, sp.cipher_suite);
    memset(&sp, 0, sizeof sp);
    c->hs_logged = 1;
}

/* Moves queued replies into TLS; returns 1 if something moved. */
static int tls_push_replies(conn *c) {
    br_ssl_engine_context *e = &c->sc.eng;
    size_t len, k;
    unsigned char *buf;
    if (c->rq_off == c->rq_len) return 0;
    buf = br_ssl_engine_sendapp_buf(e, &len);
    if (!buf) return 0;
    k = c->rq_len - c->rq_off < len ? c->rq_len - c->rq_off : len;
    memcpy(buf, c->rq + c->rq_off, k);
    br_ssl_engine_sendapp_ack(e, k);
    c->rq_off += k;
    if (c->rq_off == c->rq_len) c->rq_off = c->rq_len = 0;
    return 1;
}

/* Gives the engine received bytes. BearSSL asks for no more than the rest
   of the current record (the 5-octet header, then the body), so reading
   the socket straight into it would cost two or three recv() calls and a
   poll() per 16 KiB record; through our own buffer a 50 MB message takes
   a few hundred reads, and the sink keeps up with a client sending at
   well over 1 GB/s. Returns 1 on progress, 0 when nothing is there yet,
   -1 when the connection has been closed. */
static int tls_feed(conn *c) {
    br_ssl_engine_context *e = &c->sc.eng;
    size_t len, k;
    unsigned char *buf;
    if (c->net_off == c->net_len) {
        ssize_t r = recv(c->fd, c->net, sizeof c->net, 0);
        if (r > 0) {
            c->net_off = 0;
            c->net_len = (size_t)r;
        } else if (r == 0) {
            conn_close(c, c->quit_seen ? "quit" : "eof");
            return -1;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            return 0;
        } else {
            /* a reset after our 221 is a client that did not wait for our
               close_notify: a normal end */
            conn_close(c, c->quit_seen ? "quit" : "read-error");
            return -1;
        }
    }
    buf = br_ssl_engine_recvrec_buf(e, &len);
    k = c->net_len - c->net_off < len ? c->net_len - c->net_off : len;
    memcpy(buf, c->net + c->net_off, k);
    c->net_off += k;
    br_ssl_engine_recvrec_ack(e, k);
    return 1;
}

/* Runs the TLS engine until it would block. Returns 0 to keep the
   connection, -1 when it has been closed. */
static int tls_pump(conn *c) {
    br_ssl_engine_context *e = &c->sc.eng;
    for (;;) {
        unsigned st = br_ssl_engine_current_state(e);
        int progress = 0;
        unsigned char *buf;
        size_t len;
        ssize_t r;
        if (st & BR_SSL_CLOSED) {
            int err = br_ssl_engine_last_error(e);
            char why[32];
            if (err) snprintf(why, sizeof why, "tls-error-%d", err);
            else snprintf(why, sizeof why, "%s", c->quit_seen ? "quit" : "close_notify");
            conn_close(c, why);
            return -1;
        }
        if (st & BR_SSL_SENDREC) {
            buf = br_ssl_engine_sendrec_buf(e, &len);
            r = send(c->fd, buf, len, MSG_NOSIGNAL);
            if (r > 0) { br_ssl_engine_sendrec_ack(e, (size_t)r); progress = 1; }
            else if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                conn_close(c, c->quit_seen ? "quit" : "write-error");
                return -1;
            }
        }
        if ((st & BR_SSL_SENDAPP) && !c->hs_logged) log_handshake(c);
        if (st & BR_SSL_RECVAPP) {
            size_t used;
            buf = br_ssl_engine_recvapp_buf(e, &len);
            used = c->quit_seen ? len : smtp_input(c, buf, len);   /* after QUIT: dropped */
            if (used) { br_ssl_engine_recvapp_ack(e, used); progress = 1; }
            if (c->quit_seen && !c->closing) c->closing = 1;
        }
        if (st & BR_SSL_SENDAPP) {
            if (tls_push_replies(c)) progress = 1;
            else if (c->unflushed && c->rq_len == 0 && !(st & BR_SSL_RECVAPP)) {
                /* Flush once all input at hand has been answered: pipelined
                   commands get their replies in one flight, as from a real
                   server. */
                br_ssl_engine_flush(e, 0);
                c->unflushed = 0;
                progress = 1;
            }
            if (c->closing == 1 && c->rq_len == 0 && !c->unflushed) {
                br_ssl_engine_close(e);
                c->closing = 2;
                progress = 1;
            }
        }
        if ((st & BR_SSL_RECVREC) && !progress) {
            int f = tls_feed(c);
            if (f < 0) return -1;
            progress = f;
        }
        if (!progress) return 0;
        c->deadline_ms = now_ms() + opt_idle_ms;
    }
}

/* The plaintext phase of a STARTTLS listener. */
static int plain_pump(conn *c) {
    for (;;) {
        int progress = 0;
        ssize_t r;
        if (c->rq_off < c->rq_len) {
            r = send(c->fd, c->rq + c->rq_off, c->rq_len - c->rq_off, MSG_NOSIGNAL);
            if (r > 0) {
                c->rq_off += (size_t)r;
                if (c->rq_off == c->rq_len) c->rq_off = c->rq_len = 0;
                progress = 1;
            } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return 0;
            } else if (r < 0 && errno != EINTR) {
                conn_close(c, "write-error");
                return -1;
            }
            if (c->rq_len) continue;
        }
        c->unflushed = 0;
        if (c->quit_seen) { conn_close(c, "quit"); return -1; }
        if (c->starttls) {
            /* STARTTLS answered and sent: whatever the client sent behind
               it in clear would be injected into the TLS session. */
            if (c->pin_len) { conn_close(c, "data-after-starttls"); return -1; }
            tls_start(c);
            return tls_pump(c);
        }
        if (c->pin_len) {
            size_t used = smtp_input(c, c->pin, c->pin_len);
            memmove(c->pin, c->pin + used, c->pin_len - used);
            c->pin_len -= used;
            if (used) progress = 1;
        }
        if (!progress && c->pin_len < sizeof c->pin) {
            r = recv(c->fd, c->pin + c->pin_len, sizeof c->pin - c->pin_len, 0);
            if (r > 0) { c->pin_len += (size_t)r; progress = 1; }
            else if (r == 0) { conn_close(c, "eof"); return -1; }
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                conn_close(c, "read-error");
                return -1;
            }
        }
        if (!progress) return 0;
        c->deadline_ms = now_ms() + opt_idle_ms;
    }
}

static int pump(conn *c) { return c->tls ? tls_pump(c) : plain_pump(c); }

/* What to wait for: only what the connection can take now, so a client
   that stops reading replies is left waiting rather than polled in a loop
   (until its idle time runs out). */
static short conn_events(const conn *c) {
    short ev = 0;
    if (c->tls) {
        unsigned st = br_ssl_engine_current_state(&c->sc.eng);
        if ((st & BR_SSL_RECVREC) && c->net_off == c->net_len) ev |= POLLIN;
        if (st & BR_SSL_SENDREC) ev |= POLLOUT;
    } else {
        if (c->pin_len < sizeof c->pin && !c->starttls) ev |= POLLIN;
        if (c->rq_off < c->rq_len) ev |= POLLOUT;
    }
    return ev;
}

static void set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) die("fcntl failed", NULL);
}

static void accept_all(listener *l) {
    for (;;) {
        int fd = accept(l->fd, NULL, NULL), one = 1;
        size_t i;
        conn *c;
        if (fd < 0) return;
        for (i = 0; i < MAX_CONN && conns[i]; i++) {}
        if (i == MAX_CONN) { close(fd); continue; }
        c = (conn *)calloc(1, sizeof *c);
        if (!c) { close(fd); continue; }
        set_nonblock(fd);
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd;
        c->id = next_id++;
        c->l = l;
        c->deadline_ms = now_ms() + opt_idle_ms;
        conns[i] = c;
        event("open %d %s", c->id, l->name);
        if (l->mode == MODE_IMPLICIT) {
            tls_start(c);
        }
        reply(c, "220 sink.localhost ESMTP benchmark sink\r\n");
        if (pump(c) < 0) continue;
    }
}

static void open_listener(listener *l) {
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int one = 1;
    l->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (l->fd < 0) die("socket failed", NULL);
    (void)setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)l->port);
    sa.sin_addr = opt_addr;
    if (bind(l->fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind failed", l->name);
#ifdef TCP_FASTOPEN
    {
        /* at most this many connections at once whose SYN data was taken
           before their handshake completed */
        int qlen = 64;
        (void)setsockopt(l->fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof qlen);
    }
#endif
    if (listen(l->fd, 128) < 0) die("listen failed", l->name);
    if (getsockname(l->fd, (struct sockaddr *)&sa, &sl) < 0) die("getsockname failed", NULL);
    l->port = ntohs(sa.sin_port);
    set_nonblock(l->fd);
    event("listen %s %u", l->name, l->port);
}

static void parse_listen(const char *spec) {
    listener *l;
    const char *eq = strchr(spec, '='), *colon;
    char mode[64];
    size_t nl;
    if (nlis == MAX_LISTEN) die("too many listeners", NULL);
    if (!eq || eq == spec || (size_t)(eq - spec) >= sizeof l->name) die("bad --listen", spec);
    l = &lis[nlis++];
    nl = (size_t)(eq - spec);
    memcpy(l->name, spec, nl);
    l->name[nl] = 0;
    colon = strchr(eq, ':');
    snprintf(mode, sizeof mode, "%.*s", (int)(colon ? (size_t)(colon - eq - 1) : strlen(eq + 1)), eq + 1);
    l->port = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
    l->chunking = 1;
    if (strncmp(mode, "implicit", 8) == 0) l->mode = MODE_IMPLICIT;
    else if (strncmp(mode, "starttls", 8) == 0) l->mode = MODE_STARTTLS;
    else die("bad mode", mode);
    if (strstr(mode, ",nochunking")) l->chunking = 0;
}

/* The control channel, stdin, one command a line: "expect BYTES SUM" (the
   verdict of each later message is against that), "expect none", "quit".
   Returns -1 at "quit" or EOF. */
static int control(void) {
    static char buf[256];
    static size_t len;
    char *nl;
    ssize_t got = read(0, buf + len, sizeof buf - 1 - len);
    if (got <= 0) return -1;
    len += (size_t)got;
    buf[len] = 0;
    while ((nl = strchr(buf, '\n')) != NULL) {
        unsigned long long b;
        char h[17];
        *nl = 0;
        if (strcmp(buf, "quit") == 0) return -1;
        if (strcmp(buf, "expect none") == 0) {
            expect_set = 0;
            event("expect none");
        } else if (sscanf(buf, "expect %llu %16[0-9a-f]", &b, h) == 2 && strlen(h) == 16) {
            expect_set = 1;
            expect_bytes = b;
            expect_sum = strtoull(h, NULL, 16);
            event("expect %llu %016llx", b, (unsigned long long)expect_sum);
        } else {
            event("control-error %s", buf);
        }
        len -= (size_t)(nl + 1 - buf);
        memmove(buf, nl + 1, len + 1);
    }
    if (len == sizeof buf - 1) len = 0;   /* an overlong line: dropped */
    return 0;
}

static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

int main(int argc, char **argv) {
    const char *cert = NULL, *key = NULL;
    long long end_ms;
    int i;
    struct sigaction sa;
    opt_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--sum") == 0 && v) return sum_file(v);
        if (!v) die("missing value for", a);
        if (strcmp(a, "--cert") == 0) cert = v;
        else if (strcmp(a, "--key") == 0) key = v;
        else if (strcmp(a, "--user") == 0) opt_user = v;
        else if (strcmp(a, "--pass") == 0) opt_pass = v;
        else if (strcmp(a, "--listen") == 0) parse_listen(v);
        else if (strcmp(a, "--addr") == 0) {
            if (inet_pton(AF_INET, v, &opt_addr) != 1) die("bad --addr (IPv4 only)", v);
        }
        else if (strcmp(a, "--idle-ms") == 0) opt_idle_ms = strtol(v, NULL, 10);
        else if (strcmp(a, "--max-seconds") == 0) opt_max_s = strtol(v, NULL, 10);
        else if (strcmp(a, "--no-cache") == 0) { opt_cache = 0; continue; }
        else if (strcmp(a, "--client-order") == 0) { opt_client_order = 1; continue; }
        else die("unknown option", a);
        i++;
    }
    if (!cert || !key || !nlis)
        die("usage: sink --cert F --key F --user U --pass P --listen NAME=MODE[:PORT]", NULL);
    pem_each(cert, on_cert);
    pem_each(key, on_key);
    if (!chain_len) die("no certificate in", cert);
    if (key_type != BR_KEYTYPE_EC && key_type != BR_KEYTYPE_RSA) die("no usable key in", key);
    br_ssl_session_cache_lru_init(&cache, cache_store, sizeof cache_store);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    for (i = 0; i < (int)nlis; i++) open_listener(&lis[i]);
    event("ready");
    end_ms = now_ms() + opt_max_s * 1000;

    while (!stop_flag && now_ms() < end_ms) {
        struct pollfd pfd[1 + MAX_LISTEN + MAX_CONN];
        conn *pc[MAX_CONN];
        nfds_t n = 0, first_conn;
        size_t k, npc = 0;
        long long t = now_ms(), next = t + 1000;
        int r;
        pfd[n].fd = 0; pfd[n].events = POLLIN; n++;
        for (k = 0; k < nlis; k++) { pfd[n].fd = lis[k].fd; pfd[n].events = POLLIN; n++; }
        first_conn = n;
        for (k = 0; k < MAX_CONN; k++) {
            conn *c = conns[k];
            if (!c) continue;
            if (c->deadline_ms <= t) { conn_close(c, "idle"); continue; }
            if (c->deadline_ms < next) next = c->deadline_ms;
            pfd[n].fd = c->fd;
            pfd[n].events = conn_events(c);
            pfd[n].revents = 0;
            pc[npc++] = c;
            n++;
        }
        r = poll(pfd, n, (int)(next - t > 0 ? next - t : 0));
        if (r < 0) {
            if (errno == EINTR) continue;
            die("poll failed", NULL);
        }
        if (pfd[0].revents && control() < 0) break;
        for (k = 0; k < nlis; k++)
            if (pfd[1 + k].revents & POLLIN) accept_all(&lis[k]);
        for (k = 0; k < npc; k++)
            if (pfd[first_conn + k].revents) (void)pump(pc[k]);
    }
    for (i = 0; i < MAX_CONN; i++)
        if (conns[i]) conn_close(conns[i], "shutdown");
    event("exit");
    return 0;
}
