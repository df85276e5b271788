/* tests/cross/board_host.c - a board's build of tlsmail.h, run on the host:
   TLSMAIL_NO_SOCKETS and TLSMAIL_NO_STDIO, linked with a BearSSL built
   without any system random source or clock (BR_RDRAND, BR_USE_URANDOM,
   BR_USE_UNIX_TIME and their Win32 twins off), as on a microcontroller.
   Randomness and time come only from tlsmail_config.entropy and .clock,
   the transport is a tlsmail_io of its own.

   board_host PORT CAFILE USER FROM TO [--no-entropy] [--no-clock]
              [--clock-ms MS] [--deadline-ms MS] < message
   The password is $TLSMAIL_PASSWORD. Prints "sent", or "result NAME"
   (the error's name) and tlsmail_describe on stderr; exit 0 or 1. */
#define _POSIX_C_SOURCE 200809L
#define TLSMAIL_IMPLEMENTATION
#define TLSMAIL_NO_SOCKETS
#define TLSMAIL_NO_STDIO
#include "../../tlsmail.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../lib/err_name.h"

/* The board's "hardware": a random source and a clock of the host's. */
static int board_entropy(void *ctx, unsigned char *buf, size_t len) {
    FILE *f = fopen("/dev/urandom", "rb");
    size_t n = f ? fread(buf, 1, len, f) : 0;
    (void)ctx;
    if (f) fclose(f);
    return n == len ? 0 : TLSMAIL_EIO;
}

static long long fixed_ms = -1;

static long long board_clock(void *ctx) {
    struct timespec ts;
    (void)ctx;
    if (fixed_ms >= 0) return fixed_ms;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int sock_read(void *ctx, unsigned char *buf, size_t len) {
    ssize_t n = recv(*(int *)ctx, buf, len, 0);
    return n < 0 ? TLSMAIL_EIO : (int)n;
}

static int sock_write(void *ctx, const unsigned char *buf, size_t len) {
    ssize_t n = send(*(int *)ctx, buf, len, 0);
    return n <= 0 ? TLSMAIL_EIO : (int)n;
}

static unsigned char msg[1 << 20];
static char pem[1 << 16];
static tlsmail_client client;

int main(int argc, char **argv) {
    const char *pw = getenv("TLSMAIL_PASSWORD");
    const char *to[1];
    struct sockaddr_in sa;
    struct timeval tv = { 20, 0 };
    tlsmail_trust trust;
    tlsmail_config cfg;
    tlsmail_io io;
    tlsmail_auth a;
    char host[32], desc[512];
    size_t len, plen;
    int fd, err, i;
    FILE *f;
    if (argc < 6 || !pw) {
        fprintf(stderr, "usage: board_host PORT CAFILE USER FROM TO [options] < message\n");
        return 2;
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.entropy = board_entropy;
    cfg.clock = board_clock;
    for (i = 6; i < argc; i++) {
        if (!strcmp(argv[i], "--no-entropy")) cfg.entropy = NULL;
        else if (!strcmp(argv[i], "--no-clock")) cfg.clock = NULL;
        else if (!strcmp(argv[i], "--clock-ms") && i + 1 < argc) fixed_ms = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--deadline-ms") && i + 1 < argc) cfg.deadline_ms = atoi(argv[++i]);
        else { fprintf(stderr, "board_host: unknown option %s\n", argv[i]); return 2; }
    }
    /* the trust is the PEM the board would carry in flash */
    if (!(f = fopen(argv[2], "rb"))) { perror(argv[2]); return 2; }
    plen = fread(pem, 1, sizeof pem, f);
    fclose(f);
    memset(&trust, 0, sizeof trust);
    if ((err = tlsmail_trust_pem(&trust, pem, plen)) != 0) {
        printf("result %s\n", err_name(err));
        return 1;
    }
    len = fread(msg, 1, sizeof msg, stdin);

    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(argv[1]));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* the board's transport bounds its own waits */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) { perror("connect"); return 2; }
    io.ctx = &fd;
    io.read = sock_read;
    io.write = sock_write;
    io.close = NULL;
    snprintf(host, sizeof host, "localhost:%s", argv[1]);
    cfg.host = host;
    cfg.io = &io;
    cfg.trust = &trust;
    a = tlsmail_plain_auth("", argv[3], pw, host);
    to[0] = argv[5];
    err = tlsmail_client_send(&client, &cfg, &a, argv[4], to, 1, msg, len);
    if (err) {
        printf("result %s\n", err_name(err));
        fprintf(stderr, "%s\n", tlsmail_describe(&client, err, desc, sizeof desc));
    } else {
        printf("sent\n");
    }
    tlsmail_close(&client);
    tlsmail_trust_free(&trust);
    close(fd);
    return err ? 1 : 0;
}
