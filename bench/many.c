/* bench/many.c - many messages on one connection through tlsmail.h's
   step-by-step API: the library's cost per message once the session is up.

       many --server HOST[:PORT] (--cafile F | --pin B64)
            [--user U --password-file F] [--from A] [--to B]
            [--count N] [--message FILE] [--no-rset] [--number] [--transact]

   Dials once (implicit TLS), EHLO, AUTH PLAIN when --user is given, then
   N times (default 1000): MAIL, RCPT, DATA, the message, ".", and RSET
   (unless --no-rset), then QUIT. Every message must be accepted (250 to
   the final "."), or the run stops and exits 1. The message is FILE
   (mapped, not copied), or a built-in 2 KiB one; --number puts
   "X-Many-Seq: I" before each copy, so a test can see each of the N
   arrive once (the copies then differ).
   --transact sends each with tlsmail_transact instead (pipelined, BDAT
   where offered, no RSET), the library's own way to send many.

   Prints on stdout, when all were accepted:
       many messages=N bytes=B setup_ms=S send_s=T msg_per_s=R
   setup_ms: dial, EHLO and AUTH; send_s and msg_per_s: from the first
   MAIL to the reply to the last RSET (or final "."). The server's own
   count is the verification a benchmark must add: the client only knows
   the server said 250. Errors: one line on stderr, tlsmail_describe().

   Build: cc -std=c99 -O2 -I. bench/many.c -o many -lbearssl */
#define _POSIX_C_SOURCE 200809L
#define TLSMAIL_IMPLEMENTATION
#include "../tlsmail.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void) {
    fputs("usage: many --server HOST[:PORT] (--cafile F | --pin B64) [--user U --password-file F]\n"
          "  [--from A] [--to B] [--count N] [--message FILE] [--no-rset] [--number] [--transact]\n", stderr);
    exit(2);
}

/* The whole of a small file (a message, a password). */
static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
        (buf = (char *)malloc((size_t)n + 1)) == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "many: cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

/* The message file mapped, as a program with a large message in a file
   would hand it over: read by the library's own passes, never copied
   first. */
static char *map_message(const char *path, size_t *len, int *mapped) {
    struct stat st;
    void *m = MAP_FAILED;
    int fd = open(path, O_RDONLY);
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0)
        m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (fd >= 0) close(fd);
    if (m == MAP_FAILED) return slurp(path, len); /* an empty file, or no mapping */
    *mapped = 1;
    *len = (size_t)st.st_size;
    return (char *)m;
}

static char *builtin(const char *from, const char *to, size_t *len) {
    static const char line[] = "The quick brown fox jumps over the lazy dog 0123456789.\r\n";
    size_t cap = 4096, n;
    char *m = (char *)malloc(cap);
    if (!m) exit(2);
    n = (size_t)snprintf(m, cap, "From: <%s>\r\nTo: <%s>\r\nSubject: many\r\n"
                         "Date: Tue, 01 Dec 2026 09:00:00 +0000\r\n"
                         "Message-ID: <many@example.org>\r\n\r\n.A line that starts with a dot.\r\n",
                         from, to);
    while (n + sizeof line - 1 <= 2048 - 2) {
        memcpy(m + n, line, sizeof line - 1);
        n += sizeof line - 1;
    }
    while (n < 2048 - 2) m[n++] = 'x';
    m[n++] = '\r';
    m[n++] = '\n';
    *len = n;
    return m;
}

static int fail(tlsmail_client *c, int err, long i) {
    char d[1200];
    fprintf(stderr, "many: message %ld: %s\n", i, tlsmail_describe(c, err, d, sizeof d));
    tlsmail_close(c);
    return 1;
}

int main(int argc, char **argv) {
    static tlsmail_client c;
    tlsmail_config cfg;
    tlsmail_trust trust;
    tlsmail_auth auth;
    const char *cafile = NULL, *pin = NULL, *user = NULL, *pwfile = NULL, *msgfile = NULL;
    const char *from = "bench@example.org", *to = "rcpt@example.org";
    char *msg, *pw = NULL, *numbered = NULL;
    size_t len, pwlen = 0;
    long count = 1000, i;
    int rset = 1, number = 0, transact = 0, mapped = 0, err, a;
    double t0, t1, t2;
    memset(&cfg, 0, sizeof cfg);
    memset(&trust, 0, sizeof trust);
    for (a = 1; a < argc; a++) {
        const char *k = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(k, "--no-rset")) { rset = 0; continue; }
        if (!strcmp(k, "--number")) { number = 1; continue; }
        if (!strcmp(k, "--transact")) { transact = 1; continue; }
        if (!v) usage();
        a++;
        if (!strcmp(k, "--server")) cfg.host = v;
        else if (!strcmp(k, "--cafile")) cafile = v;
        else if (!strcmp(k, "--pin")) pin = v;
        else if (!strcmp(k, "--user")) user = v;
        else if (!strcmp(k, "--password-file")) pwfile = v;
        else if (!strcmp(k, "--from")) from = v;
        else if (!strcmp(k, "--to")) to = v;
        else if (!strcmp(k, "--count")) count = atol(v);
        else if (!strcmp(k, "--message")) msgfile = v;
        else usage();
    }
    if (!cfg.host || (!cafile && !pin) || count < 1 || (user && !pwfile)) usage();
    if ((cafile && (err = tlsmail_trust_file(&trust, cafile)) != 0) ||
        (pin && (err = tlsmail_trust_pin_sha256(&trust, pin)) != 0)) {
        fprintf(stderr, "many: trust: %s\n", tlsmail_strerror(err));
        return 2;
    }
    msg = msgfile ? map_message(msgfile, &len, &mapped) : builtin(from, to, &len);
    if (transact && number && !(numbered = (char *)malloc(len + 40))) return 2;
    if (pwfile) {
        pw = slurp(pwfile, &pwlen);
        while (pwlen && (pw[pwlen - 1] == '\n' || pw[pwlen - 1] == '\r')) pw[--pwlen] = 0;
    }
    cfg.trust = &trust;
    cfg.deadline_ms = -1; /* a long run is the point; each wait keeps its timeout */
    t0 = now_s();
    if ((err = tlsmail_dial(&c, &cfg)) != 0 || (err = tlsmail_hello(&c)) != 0) return fail(&c, err, 0);
    if (user) {
        auth = tlsmail_plain_auth("", user, pw, cfg.host);
        if ((err = tlsmail_authenticate(&c, &auth)) != 0) return fail(&c, err, 0);
    }
    t1 = now_s();
    for (i = 1; i <= count; i++) {
        char seq[40];
        int n = snprintf(seq, sizeof seq, "X-Many-Seq: %ld\r\n", i);
        if (transact) {
            const char *one[1];
            one[0] = to;
            if (number) { /* the sequence line goes first: the copies differ */
                memcpy(numbered, seq, (size_t)n);
                memcpy(numbered + n, msg, len);
            }
            err = tlsmail_transact(&c, from, one, 1, number ? numbered : msg, number ? (size_t)n + len : len,
                                   NULL);
            if (err) return fail(&c, err, i);
            continue;
        }
        if ((err = tlsmail_mail(&c, from)) != 0 || (err = tlsmail_rcpt(&c, to)) != 0 ||
            (err = tlsmail_data_begin(&c)) != 0 ||
            (number && (err = tlsmail_data_write(&c, seq, (size_t)n)) != 0) ||
            (err = tlsmail_data_write(&c, msg, len)) != 0 || (err = tlsmail_data_end(&c)) != 0 ||
            (rset && (err = tlsmail_reset(&c)) != 0))
            return fail(&c, err, i);
    }
    t2 = now_s();
    (void)tlsmail_quit(&c);
    tlsmail_close(&c);
    printf("many messages=%ld bytes=%lu setup_ms=%.1f send_s=%.3f msg_per_s=%.0f\n", count,
           (unsigned long)len, (t1 - t0) * 1000, t2 - t1, (double)count / (t2 - t1));
    if (pw) {
        memset(pw, 0, pwlen);
        free(pw);
    }
    if (mapped) (void)munmap(msg, len);
    else free(msg);
    free(numbered);
    tlsmail_trust_free(&trust);
    return 0;
}
