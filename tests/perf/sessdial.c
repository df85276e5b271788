/* tests/perf/sessdial.c - TLS session resumption through tlsmail.h, for
   tests/perf/test_perf.py.

   sessdial --server HOST[:PORT] [--connect PORT] (--cafile F | --pin B64)
            [--dials N] [--pause-ms MS[,MS...]] [--import FILE] [--export FILE]
            [--no-session] [--from A --to B]

   N times (default 1): tlsmail_client_send() of a small message (Subject
   "sessdial N") with one tlsmail_session in the tlsmail_config, so dial
   2 on may resume what dial 1 saved. --import FILE first imports the
   session from FILE (tlsmail_session_import); --export FILE writes the
   session after the last dial (tlsmail_session_export). --pause-ms waits
   between dials (the last value for the rest). --connect PORT
   dials 127.0.0.1:PORT through a tlsmail_io of its own, whatever host name
   --server gives: the name is then only what SNI, the certificate check
   and the session's binding see. Prints one line per step:
       import <CODE>
       dial <i> <CODE> resumed=<0|1>
       export <CODE>
   Exit 0 when every step printed OK. */
#define _POSIX_C_SOURCE 200809L
#define TLSMAIL_IMPLEMENTATION
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

/* The transport of --connect: a blocking socket, waits bounded by
   SO_RCVTIMEO/SO_SNDTIMEO (the library bounds only its own sockets). */
static int sock_read(void *ctx, unsigned char *buf, size_t len) {
    ssize_t n = recv(*(int *)ctx, buf, len, 0);
    return n >= 0 ? (int)n : TLSMAIL_EIO;
}

static int sock_write(void *ctx, const unsigned char *buf, size_t len) {
    ssize_t n = send(*(int *)ctx, buf, len, MSG_NOSIGNAL);
    return n > 0 ? (int)n : TLSMAIL_EIO;
}

static void sock_close(void *ctx) {
    int *fd = (int *)ctx;
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static int connect_local(unsigned port) {
    struct sockaddr_in a;
    struct timeval tv;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    tv.tv_sec = 10;
    tv.tv_usec = 0;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void usage(void) {
    fputs("usage: sessdial --server HOST[:PORT] [--connect PORT] (--cafile F | --pin B64)\n"
          "  [--dials N] [--pause-ms MS[,MS...]] [--import FILE] [--export FILE] [--no-session]\n"
          "  [--from A --to B]\n", stderr);
    exit(2);
}

int main(int argc, char **argv) {
    static tlsmail_client c;
    static tlsmail_session sess;
    tlsmail_config cfg;
    tlsmail_trust trust;
    tlsmail_io io;
    const char *cafile = NULL, *pin = NULL, *imp = NULL, *exp = NULL, *from = "sd@example.org";
    const char *to = "rcpt@example.org";
    const char *pauses = "0";
    int i, dials = 1, fd = -1, ok = 1, use_session = 1, err;
    unsigned connect_port = 0;
    memset(&cfg, 0, sizeof cfg);
    memset(&trust, 0, sizeof trust);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-session")) { use_session = 0; continue; }
        if (!v) usage();
        i++;
        if (!strcmp(a, "--server")) cfg.host = v;
        else if (!strcmp(a, "--connect")) connect_port = (unsigned)atoi(v);
        else if (!strcmp(a, "--cafile")) cafile = v;
        else if (!strcmp(a, "--pin")) pin = v;
        else if (!strcmp(a, "--dials")) dials = atoi(v);
        else if (!strcmp(a, "--pause-ms")) pauses = v;
        else if (!strcmp(a, "--import")) imp = v;
        else if (!strcmp(a, "--export")) exp = v;
        else if (!strcmp(a, "--from")) from = v;
        else if (!strcmp(a, "--to")) to = v;
        else usage();
    }
    if (!cfg.host || (!cafile && !pin) || dials < 0 || dials > 100) usage();
    if ((cafile && (err = tlsmail_trust_file(&trust, cafile)) != 0) ||
        (pin && (err = tlsmail_trust_pin_sha256(&trust, pin)) != 0)) {
        printf("trust %s\n", err_name(err));
        return 1;
    }
    cfg.trust = &trust;
    cfg.timeout_ms = 10000;
    if (use_session) cfg.session = &sess;
    if (imp) {
        char line[1024];
        FILE *f = fopen(imp, "r");
        size_t n = f ? fread(line, 1, sizeof line, f) : 0;
        if (f) fclose(f);
        err = tlsmail_session_import(&sess, line, n);
        printf("import %s\n", err_name(err));
        if (err) ok = 0;
    }
    for (i = 1; i <= dials; i++) {
        char msg[200];
        const char *rcpt[1];
        int n = snprintf(msg, sizeof msg, "From: %s\r\nTo: %s\r\nSubject: sessdial %d\r\n\r\nbody %d\r\n",
                         from, to, i, i);
        rcpt[0] = to;
        if (connect_port) {
            if ((fd = connect_local(connect_port)) < 0) {
                printf("dial %d connect-failed resumed=0\n", i);
                return 1;
            }
            io.ctx = &fd;
            io.read = sock_read;
            io.write = sock_write;
            io.close = sock_close;
            cfg.io = &io;
        }
        err = tlsmail_client_send(&c, &cfg, NULL, from, rcpt, 1, msg, (size_t)n);
        printf("dial %d %s resumed=%d\n", i, err_name(err), tlsmail_session_resumed(&c));
        fflush(stdout);
        if (err) ok = 0;
        tlsmail_close(&c);
        sock_close(&fd);
        if (i < dials) {
            struct timespec ts;
            int pause_ms = atoi(pauses);
            if (strchr(pauses, ',')) pauses = strchr(pauses, ',') + 1;
            ts.tv_sec = pause_ms / 1000;
            ts.tv_nsec = (long)(pause_ms % 1000) * 1000000L;
            nanosleep(&ts, NULL);
        }
    }
    if (exp) {
        char line[TLSMAIL_SESSION_TEXT];
        size_t n = 0;
        FILE *f;
        err = tlsmail_session_export(&sess, line, sizeof line, &n);
        printf("export %s\n", err_name(err));
        if (err) ok = 0;
        else if ((f = fopen(exp, "w")) == NULL || fprintf(f, "%s\n", line) < 0 || fclose(f) != 0)
            ok = 0;
    }
    tlsmail_session_clear(&sess);
    tlsmail_trust_free(&trust);
    return ok ? 0 : 1;
}
