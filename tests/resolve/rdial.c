/* tests/resolve/rdial.c - dials (or sends) through tlsmail.h's own
   sockets for tests/resolve/test_resolve.py: name resolution bounded by
   the wait, and tlsmail_config.addresses.

   rdial --host HOST[:PORT] [--addresses LIST] [--timeout-ms N]
         [--deadline-ms N] [--cafile F] [--user U --pass P] [--from A]
         [--to A] [--msg FILE] [--repeat N] [--linger-ms N]

   Without --msg: tlsmail_dial, then tlsmail_close. With --msg FILE:
   tlsmail_client_send of that message (AUTH PLAIN with --user/--pass).
   --repeat N does it N times in a row; --linger-ms N then waits N ms
   before exiting, so name lookups a dial gave up on can finish (and free
   what they hold) while the sanitizers still watch. Prints one line per
   attempt:
       result <NAME> <code> <stage> <elapsed_ms>
   and tlsmail_describe() on stderr. Exit 0 if every attempt succeeded. */
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/err_name.h"

/* The library's own clock and sleep per platform, so the elapsed times
   printed are on the clock its waits use. */
#ifdef _WIN32
static void sleep_ms(long ms) { Sleep((DWORD)ms); }
#else
static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0) {}
}
#endif

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    size_t cap = 1 << 16, n = 0, r;
    char *buf;
    if (!f) return NULL;
    buf = (char *)malloc(cap);
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = (char *)realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static void usage(void) {
    fputs("usage: rdial --host HOST[:PORT] [--addresses LIST] [--timeout-ms N] [--deadline-ms N]\n"
          "  [--cafile F] [--user U --pass P] [--from A] [--to A] [--msg FILE] [--repeat N]\n"
          "  [--linger-ms N]\n", stderr);
    exit(2);
}

static tlsmail_client client;

int main(int argc, char **argv) {
    const char *cafile = NULL, *user = NULL, *pass = NULL, *msgfile = NULL;
    const char *from = "rdial@example.org", *to = "rcpt@example.org";
    tlsmail_config cfg;
    tlsmail_trust trust;
    tlsmail_auth auth;
    char *msg = NULL, authhost[256];
    size_t len = 0;
    long repeat = 1, linger = 0, i;
    int a, failed = 0, err;
    memset(&cfg, 0, sizeof cfg);
    memset(&trust, 0, sizeof trust);
    for (a = 1; a < argc; a++) {
        const char *o = argv[a];
        if (a + 1 >= argc) usage();
        if (!strcmp(o, "--host")) cfg.host = argv[++a];
        else if (!strcmp(o, "--addresses")) cfg.addresses = argv[++a];
        else if (!strcmp(o, "--timeout-ms")) cfg.timeout_ms = atoi(argv[++a]);
        else if (!strcmp(o, "--deadline-ms")) cfg.deadline_ms = atoi(argv[++a]);
        else if (!strcmp(o, "--cafile")) cafile = argv[++a];
        else if (!strcmp(o, "--user")) user = argv[++a];
        else if (!strcmp(o, "--pass")) pass = argv[++a];
        else if (!strcmp(o, "--from")) from = argv[++a];
        else if (!strcmp(o, "--to")) to = argv[++a];
        else if (!strcmp(o, "--msg")) msgfile = argv[++a];
        else if (!strcmp(o, "--repeat")) repeat = atol(argv[++a]);
        else if (!strcmp(o, "--linger-ms")) linger = atol(argv[++a]);
        else usage();
    }
    if (!cfg.host || repeat < 1 || repeat > 100 || linger < 0 || (user && !pass)) usage();
    if (cafile) {
        if ((err = tlsmail_trust_file(&trust, cafile)) != 0) {
            fprintf(stderr, "cafile %s: %s\n", cafile, tlsmail_strerror(err));
            return 2;
        }
        cfg.trust = &trust;
    }
    if (msgfile && (msg = read_file(msgfile, &len)) == NULL) {
        perror(msgfile);
        return 2;
    }
    if (user) {
        unsigned port;
        if (tlsmail_split_hostport(cfg.host, authhost, sizeof authhost, &port, 465) != 0) usage();
        auth = tlsmail_plain_auth("", user, pass, authhost);
    }
    for (i = 0; i < repeat; i++) {
        char desc[512];
        long long t0 = tlsmail__now_ms();
        int stage;
        if (msg) {
            const char *rcpt[1];
            rcpt[0] = to;
            err = tlsmail_client_send(&client, &cfg, user ? &auth : NULL, from, rcpt, 1, msg, len);
        } else {
            err = tlsmail_dial(&client, &cfg);
        }
        stage = tlsmail_stage(&client);
        tlsmail_describe(&client, err, desc, sizeof desc);
        tlsmail_close(&client);
        printf("result %s %d %s %lld\n", err_name(err), err, tlsmail_stage_name(stage),
               tlsmail__now_ms() - t0);
        fflush(stdout);
        fprintf(stderr, "%s\n", desc);
        failed |= err != 0;
    }
    if (linger) sleep_ms(linger);
    tlsmail_trust_free(&trust);
    free(msg);
    return failed;
}
