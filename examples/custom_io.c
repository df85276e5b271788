/* custom_io.c - tlsmail.h over a transport of your own (TLSMAIL_NO_SOCKETS).

       custom_io HOST:PORT CAFILE FROM TO < message
       (AUTH PLAIN when SMTP_USER and SMTP_PASSWORD are set)

   The library is compiled without its socket code: this program opens the
   TCP connection itself and hands tlsmail a tlsmail_io with read, write and
   close callbacks. The same shape fits a serial line, a proxy tunnel, an
   embedded TCP stack or a test harness. tlsmail still does everything above
   the bytes: TLS (cfg.host is the name the certificate must carry, and the
   SNI), the SMTP dialogue, dot-stuffing. Its timeouts only cover its own
   sockets, so the callbacks bound their waits themselves (SO_RCVTIMEO).

   Build: cc -std=c99 -I. examples/custom_io.c -o custom_io -lbearssl */
#define _POSIX_C_SOURCE 200809L /* getaddrinfo: ours now, not the library's */
#define TLSMAIL_NO_SOCKETS
#define TLSMAIL_IMPLEMENTATION
#include "tlsmail.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

typedef struct conn { int fd; } conn;

static int conn_read(void *ctx, unsigned char *buf, size_t len) {
    conn *c = (conn *)ctx;
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n >= 0) return (int)n; /* 0: the peer closed */
        if (errno == EINTR) continue;
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? TLSMAIL_ETIMEOUT : TLSMAIL_EIO;
    }
}

static int conn_write(void *ctx, const unsigned char *buf, size_t len) {
    conn *c = (conn *)ctx;
    for (;;) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) return (int)n;
        if (n < 0 && errno == EINTR) continue;
        return (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) ? TLSMAIL_ETIMEOUT : TLSMAIL_EIO;
    }
}

static void conn_close(void *ctx) {
    conn *c = (conn *)ctx;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

/* A plain blocking TCP connection with 10 s send/receive timeouts. */
static int conn_open(conn *c, const char *host, const char *port) {
    struct addrinfo hints, *res, *ai;
    struct timeval tv;
    int one = 1;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0) return -1;
    c->fd = -1;
    tv.tv_sec = 10;
    tv.tv_usec = 0;
    for (ai = res; ai && c->fd < 0; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) c->fd = fd;
        else close(fd);
    }
    freeaddrinfo(res);
    return c->fd >= 0 ? 0 : -1;
}

static char msg[1 << 20];
static tlsmail_client client;

int main(int argc, char **argv) {
    const char *user = getenv("SMTP_USER"), *pw = getenv("SMTP_PASSWORD");
    const char *to[1];
    char host[256], port[8], desc[512];
    unsigned portnum;
    conn c;
    tlsmail_io io;
    tlsmail_trust trust;
    tlsmail_config cfg;
    tlsmail_auth a;
    size_t len;
    int err;
    if (argc != 5 || tlsmail_split_hostport(argv[1], host, sizeof host, &portnum, 465) != 0) {
        fprintf(stderr, "usage: custom_io HOST:PORT CAFILE FROM TO < message\n");
        return 2;
    }
    snprintf(port, sizeof port, "%u", portnum);
    len = fread(msg, 1, sizeof msg, stdin);

    memset(&trust, 0, sizeof trust);
    if ((err = tlsmail_trust_file(&trust, argv[2])) != 0) {
        fprintf(stderr, "custom_io: %s: %s\n", argv[2], tlsmail_strerror(err));
        return 1;
    }
    if (conn_open(&c, host, port) != 0) {
        fprintf(stderr, "custom_io: cannot connect to %s\n", argv[1]);
        tlsmail_trust_free(&trust);
        return 1;
    }
    io.ctx = &c;
    io.read = conn_read;
    io.write = conn_write;
    io.close = conn_close; /* tlsmail calls it when the session ends */

    memset(&cfg, 0, sizeof cfg);
    cfg.host = host;   /* checked against the certificate, sent as SNI */
    cfg.io = &io;      /* no dialling: the library talks through io */
    cfg.trust = &trust;
    a = tlsmail_plain_auth("", user, pw, host);
    to[0] = argv[4];
    err = tlsmail_client_send(&client, &cfg, user && pw ? &a : NULL, argv[3], to, 1, msg, len);
    if (err) fprintf(stderr, "custom_io: %s\n", tlsmail_describe(&client, err, desc, sizeof desc));
    else printf("sent\n");
    tlsmail_close(&client);
    conn_close(&c); /* harmless if tlsmail already closed it */
    tlsmail_trust_free(&trust);
    return err ? 1 : 0;
}
