/* win_send.c - tlsmail.h built for Windows with mingw-w64, without its POSIX
   transport (TLSMAIL_NO_SOCKETS), sending over a Winsock tlsmail_io of its
   own. tests/cross runs it under wine against the local test server.

       win_send HOST PORT CAFILE FROM TO < message
       (AUTH PLAIN when TLSMAIL_USER and TLSMAIL_PASSWORD are set)

   Prints "sent" and exits 0, or prints tlsmail_describe() and exits 1.
   The library still loads the trust file itself (stdio is there on
   Windows) and seeds BearSSL from the Win32 RNG; only the bytes travel
   through these callbacks, which bound every wait with SO_RCVTIMEO and
   SO_SNDTIMEO, since the library's timeouts cover only its own sockets. */
#define TLSMAIL_NO_SOCKETS
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"

#include <winsock2.h>
#include <ws2tcpip.h>
#include <fcntl.h>
#include <io.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { WAIT_MS = 20000 };

typedef struct conn { SOCKET s; } conn;

static int conn_read(void *ctx, unsigned char *buf, size_t len) {
    conn *c = (conn *)ctx;
    int n = recv(c->s, (char *)buf, len > INT_MAX ? INT_MAX : (int)len, 0);
    if (n >= 0) return n; /* 0: the peer closed */
    return WSAGetLastError() == WSAETIMEDOUT ? TLSMAIL_ETIMEOUT : TLSMAIL_EIO;
}

static int conn_write(void *ctx, const unsigned char *buf, size_t len) {
    conn *c = (conn *)ctx;
    int n = send(c->s, (const char *)buf, len > INT_MAX ? INT_MAX : (int)len, 0);
    if (n > 0) return n;
    return (n < 0 && WSAGetLastError() == WSAETIMEDOUT) ? TLSMAIL_ETIMEOUT : TLSMAIL_EIO;
}

static void conn_close(void *ctx) {
    conn *c = (conn *)ctx;
    if (c->s != INVALID_SOCKET) closesocket(c->s);
    c->s = INVALID_SOCKET;
}

/* Blocking TCP, every address getaddrinfo gives until one connects. */
static int conn_open(conn *c, const char *host, const char *port) {
    struct addrinfo hints, *res, *ai;
    DWORD ms = WAIT_MS;
    BOOL one = TRUE;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    c->s = INVALID_SOCKET;
    if (getaddrinfo(host, port, &hints, &res) != 0) return -1;
    for (ai = res; ai && c->s == INVALID_SOCKET; ai = ai->ai_next) {
        SOCKET s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (s == INVALID_SOCKET) continue;
        (void)setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, (const char *)&ms, sizeof ms);
        (void)setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, (const char *)&ms, sizeof ms);
        (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
        if (connect(s, ai->ai_addr, (int)ai->ai_addrlen) == 0) c->s = s;
        else closesocket(s);
    }
    freeaddrinfo(res);
    return c->s != INVALID_SOCKET ? 0 : -1;
}

static char msg[1 << 20];
static tlsmail_client client;

int main(int argc, char **argv) {
    const char *user = getenv("TLSMAIL_USER"), *pw = getenv("TLSMAIL_PASSWORD");
    const char *to[1];
    char desc[512];
    WSADATA wsa;
    conn c;
    tlsmail_io io;
    tlsmail_trust trust;
    tlsmail_config cfg;
    tlsmail_auth a;
    size_t len;
    int err;
    if (argc != 6) {
        fprintf(stderr, "usage: win_send HOST PORT CAFILE FROM TO < message\n");
        return 2;
    }
    /* Text mode would turn CRLF into LF on the way in. */
    (void)_setmode(_fileno(stdin), _O_BINARY);
    len = fread(msg, 1, sizeof msg, stdin);
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
        fprintf(stderr, "win_send: WSAStartup failed\n");
        return 1;
    }
    memset(&trust, 0, sizeof trust);
    if ((err = tlsmail_trust_file(&trust, argv[3])) != 0) {
        fprintf(stderr, "win_send: %s: %s\n", argv[3], tlsmail_strerror(err));
        WSACleanup();
        return 1;
    }
    if (conn_open(&c, argv[1], argv[2]) != 0) {
        fprintf(stderr, "win_send: cannot connect to %s port %s (WSA error %d)\n", argv[1],
                argv[2], WSAGetLastError());
        tlsmail_trust_free(&trust);
        WSACleanup();
        return 1;
    }
    io.ctx = &c;
    io.read = conn_read;
    io.write = conn_write;
    io.close = conn_close;
    memset(&cfg, 0, sizeof cfg);
    cfg.host = argv[1]; /* checked against the certificate, sent as SNI */
    cfg.io = &io;
    cfg.trust = &trust;
    a = tlsmail_plain_auth("", user, pw, argv[1]);
    to[0] = argv[5];
    err = tlsmail_client_send(&client, &cfg, user && pw ? &a : NULL, argv[4], to, 1, msg, len);
    if (err) fprintf(stderr, "win_send: %s\n", tlsmail_describe(&client, err, desc, sizeof desc));
    else printf("sent\n");
    tlsmail_close(&client);
    conn_close(&c);
    tlsmail_trust_free(&trust);
    WSACleanup();
    return err ? 1 : 0;
}
