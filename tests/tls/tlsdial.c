/* tests/tls/tlsdial.c - one TLS session of tlsmail.h under any server name,
   for tests/tls/test_tls.py.

   tlsdial --port N [--ipv6] --host NAME (--cafile F | --pin B64)
           [--noop] [--timeout-ms N]

   Connects a TCP socket to 127.0.0.1:N (--ipv6: [::1]:N) itself and dials
   over a tlsmail_io, so cfg.host may be any name (a wildcard's label, a
   trailing dot, an IP literal) without DNS: it is the name sent as SNI and
   checked against the certificate. Then EHLO, NOOP with --noop, QUIT.

   Prints one line on stdout:
       result NAME CODE BRERR
   NAME is the error's name in TLSMAIL__ERRORS ("OK", "ECERT_NAME"), CODE
   its value, BRERR BearSSL's error number (tlsmail_tls_error, 0 if none);
   tlsmail_describe() goes to stderr. Exit 0 if OK, 1 on a tlsmail error,
   2 on a usage or socket error (before any result line). */
#define _POSIX_C_SOURCE 200809L
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

#include "../lib/err_name.h"

static void usage(void) {
    fputs("usage: tlsdial --port N [--ipv6] --host NAME (--cafile F | --pin B64)\n"
          "               [--noop] [--timeout-ms N]\n", stderr);
    exit(2);
}

/* The library bounds only its own sockets' waits (tlsmail_io's contract):
   this transport bounds its own with SO_RCVTIMEO / SO_SNDTIMEO, so a server
   that goes silent ends in ETIMEOUT, never in a hang. */
static int io_read(void *ctx, unsigned char *buf, size_t len) {
    int fd = *(int *)ctx, tries;
    for (tries = 0; tries < 100; tries++) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n >= 0) return (int)n;
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? TLSMAIL_ETIMEOUT : TLSMAIL_EIO;
    }
    return TLSMAIL_EIO;
}

static int io_write(void *ctx, const unsigned char *buf, size_t len) {
    int fd = *(int *)ctx, tries;
    for (tries = 0; tries < 100; tries++) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) return (int)n;
        if (n < 0 && errno == EINTR) continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? TLSMAIL_ETIMEOUT : TLSMAIL_EIO;
    }
    return TLSMAIL_EIO;
}

static int dial_loopback(unsigned port, int v6, int timeout_ms) {
    struct timeval tv;
    int fd;
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    if (v6) {
        struct sockaddr_in6 sa;
        memset(&sa, 0, sizeof sa);
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons((uint16_t)port);
        sa.sin6_addr = in6addr_loopback;
        fd = socket(AF_INET6, SOCK_STREAM, 0);
        if (fd < 0) return -1;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
            connect(fd, (const struct sockaddr *)&sa, sizeof sa) != 0) {
            close(fd);
            return -1;
        }
    } else {
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return -1;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
            connect(fd, (const struct sockaddr *)&sa, sizeof sa) != 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

static tlsmail_client client; /* about 27 KB: not on the stack */

int main(int argc, char **argv) {
    const char *host = NULL, *cafile = NULL, *pin = NULL;
    unsigned long port = 0;
    int v6 = 0, noop = 0, timeout_ms = 5000, i, fd, err = 0, brerr;
    char desc[1024];
    tlsmail_trust trust;
    tlsmail_config cfg;
    tlsmail_io io;
    struct sigaction sa;

    for (i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--ipv6")) { v6 = 1; continue; }
        if (!strcmp(o, "--noop")) { noop = 1; continue; }
        if (i + 1 >= argc) usage();
        if (!strcmp(o, "--port")) port = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(o, "--host")) host = argv[++i];
        else if (!strcmp(o, "--cafile")) cafile = argv[++i];
        else if (!strcmp(o, "--pin")) pin = argv[++i];
        else if (!strcmp(o, "--timeout-ms")) timeout_ms = atoi(argv[++i]);
        else usage();
    }
    if (!host || port == 0 || port > 65535 || !cafile == !pin || timeout_ms <= 0) usage();

    /* A peer that resets the connection must show up as an error code, not
       kill the process with SIGPIPE where MSG_NOSIGNAL is missing. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    memset(&trust, 0, sizeof trust);
    err = cafile ? tlsmail_trust_file(&trust, cafile) : tlsmail_trust_pin_sha256(&trust, pin);
    if (err) {
        /* no session at all: the trust could not be built */
        printf("result %s %d 0\n", err_name(err), err);
        fprintf(stderr, "trust: %s\n", tlsmail_strerror(err));
        return 1;
    }

    fd = dial_loopback((unsigned)port, v6, timeout_ms);
    if (fd < 0) {
        perror("tlsdial: connect");
        tlsmail_trust_free(&trust);
        return 2;
    }
    io.ctx = &fd;
    io.read = io_read;
    io.write = io_write;
    io.close = NULL;

    memset(&cfg, 0, sizeof cfg);
    cfg.host = host;
    cfg.io = &io;
    cfg.trust = &trust;
    cfg.timeout_ms = timeout_ms;
    cfg.deadline_ms = 4 * timeout_ms;

    err = tlsmail_dial(&client, &cfg);
    if (!err) err = tlsmail_hello(&client);
    if (!err && noop) err = tlsmail_noop(&client);
    if (!err) err = tlsmail_quit(&client);
    /* the BearSSL error and the description before close wipes the client */
    brerr = tlsmail_tls_error(&client);
    tlsmail_describe(&client, err, desc, sizeof desc);
    tlsmail_close(&client);
    close(fd);

    printf("result %s %d %d\n", err_name(err), err, brerr);
    fflush(stdout);
    fprintf(stderr, "%s\n", desc);
    tlsmail_trust_free(&trust);
    return err ? 1 : 0;
}
