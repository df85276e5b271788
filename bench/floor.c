/* bench/floor.c - the two costs no TLS client on this machine can avoid
   when it sends N octets over loopback, for make bench's (d):
     gcm  BearSSL's AES-128-GCM sealing N octets in 16 KiB records, the
          way its record layer does (CTR, then GHASH over the output), with
          the implementations br_ssl_engine_set_default_aes_gcm picks on
          x86-64 (AES-NI and PCLMUL when the CPU has them)
     tcp  the wall time of N octets written in 16 KiB pieces to loopback
          TCP until the reader (a child, which discards them) has them all
   Usage: floor N ROUNDS. Prints "gcm_ms=.. tcp_ms=.. impl=..", each the
   least of ROUNDS runs. (The writer's own CPU time would be no floor: a
   kernel that accounts softirq time apart charges the loopback's receive
   work to no process.) */
#define _POSIX_C_SOURCE 200809L
#include <bearssl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RECORD 16384

static double ms(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static unsigned char rec[RECORD];

/* Seals n octets as records; returns the CPU milliseconds it took. */
static double gcm(size_t n, const char **impl) {
    static const unsigned char key[16] = { 1 }, iv[12] = { 2 }, aad[13] = { 3 };
    union {
        const br_block_ctr_class *vtable;
        br_aes_x86ni_ctr_keys x86ni;
        br_aes_ct64_ctr_keys ct64;
    } keys;
    const br_block_ctr_class *ctr = br_aes_x86ni_ctr_get_vtable();
    br_ghash gh = br_ghash_pclmul_get();
    br_gcm_context g;
    unsigned char tag[16];
    size_t done;
    double t0;
    if (!ctr) ctr = &br_aes_ct64_ctr_vtable;
    if (!gh) gh = &br_ghash_ctmul64;
    *impl = ctr == &br_aes_ct64_ctr_vtable ? (gh == &br_ghash_ctmul64 ? "ct64+ctmul64" : "ct64+pclmul")
                                          : (gh == &br_ghash_ctmul64 ? "x86ni+ctmul64" : "x86ni+pclmul");
    ctr->init(&keys.vtable, key, sizeof key);
    br_gcm_init(&g, &keys.vtable, gh);
    t0 = ms(CLOCK_PROCESS_CPUTIME_ID);
    for (done = 0; done < n; done += RECORD) {
        size_t len = n - done < RECORD ? n - done : RECORD;
        br_gcm_reset(&g, iv, sizeof iv);
        br_gcm_aad_inject(&g, aad, sizeof aad);
        br_gcm_flip(&g);
        br_gcm_run(&g, 1, rec, len);
        br_gcm_get_tag(&g, tag);
    }
    return ms(CLOCK_PROCESS_CPUTIME_ID) - t0;
}

/* Writes n octets to a discarding reader; returns the milliseconds until
   it has them all, or -1. */
static double tcp(size_t n) {
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int ls = socket(AF_INET, SOCK_STREAM, 0), s, st;
    size_t sent = 0;
    double t0;
    pid_t child;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0) return -1;
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1) ||
        getsockname(ls, (struct sockaddr *)&a, &alen) || (child = fork()) < 0) {
        close(ls);
        return -1;
    }
    if (child == 0) {
        static unsigned char buf[1 << 18];
        int c;
        alarm(60);
        c = accept(ls, NULL, NULL);
        while (c >= 0 && read(c, buf, sizeof buf) > 0) {}
        _exit(c < 0);
    }
    close(ls);
    /* The reader is stopped and reaped on every path, not left to its alarm. */
    if ((s = socket(AF_INET, SOCK_STREAM, 0)) < 0 || connect(s, (struct sockaddr *)&a, sizeof a)) {
        if (s >= 0) close(s);
        kill(child, SIGKILL);
        (void)waitpid(child, &st, 0);
        return -1;
    }
    t0 = ms(CLOCK_MONOTONIC);
    while (sent < n) {
        ssize_t k = send(s, rec, n - sent < RECORD ? n - sent : RECORD, MSG_NOSIGNAL);
        if (k <= 0) break;
        sent += (size_t)k;
    }
    close(s);
    if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) || sent != n) return -1;
    return ms(CLOCK_MONOTONIC) - t0;
}

int main(int argc, char **argv) {
    size_t n = argc == 3 ? (size_t)strtoull(argv[1], NULL, 10) : 0;
    int rounds = argc == 3 ? atoi(argv[2]) : 0, r;
    double g = 1e30, t = 1e30;
    const char *impl = "?";
    if (!n || rounds < 1 || rounds > 100) {
        fprintf(stderr, "usage: floor N ROUNDS\n");
        return 2;
    }
    for (r = 0; r < rounds; r++) {
        double x = gcm(n, &impl), y = tcp(n);
        if (y < 0) {
            fprintf(stderr, "floor: loopback TCP failed\n");
            return 1;
        }
        if (x < g) g = x;
        if (y < t) t = y;
    }
    printf("gcm_ms=%.2f tcp_ms=%.2f impl=%s\n", g, t, impl);
    return 0;
}
