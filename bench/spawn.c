/* bench/spawn.c - run a client and measure it as the benchmark needs.

       spawn [-t MS] [-i FILE] [-o FILE] [-e FILE] [-n COUNT] [-j PAR] PROG ARG...

   Runs PROG COUNT times (default 1), at most PAR at once (default 1), each
   in its own process group with stdin from FILE (-i, reopened for each
   run), stdout to -o (default /dev/null) and stderr appended to -e
   (default /dev/null); everything is killed after MS milliseconds (-t,
   default 60000). Prints one line:

       runs=N failed=N wall_ns=N user_us=N sys_us=N maxrss_kb=N status=S

   wall_ns is monotonic time from the first fork to the last reap; user_us
   and sys_us are summed over the runs (wait4), maxrss_kb is the largest
   ru_maxrss; status is that of the first run that failed (exit:N,
   signal:N, timeout), else exit:0.

   Why not Python's subprocess and os.wait4: a child keeps the high-water
   RSS of the process image it replaced at exec (Linux's exec_mmap records
   it), so a child forked from the benchmark's Python reports Python's
   15+ MiB as its own peak. This launcher is small, and forks each run
   from itself.

   Build: cc -std=c99 -O2 $(cat tests/lib/warnings) bench/spawn.c */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE   /* wait4: per-child rusage (Linux, the BSDs) */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PAR 256

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void usage(void) {
    fputs("usage: spawn [-t MS] [-i FILE] [-o FILE] [-e FILE] [-n COUNT] [-j PAR] PROG ARG...\n",
          stderr);
    exit(2);
}

static void redirect(const char *path, int fd, int flags) {
    int f = open(path, flags, 0600);
    if (f < 0 || dup2(f, fd) < 0) {
        perror(path);
        _exit(126);
    }
    if (f != fd) close(f);
}

static pid_t start(char **argv, const char *in, const char *out, const char *err,
                   const sigset_t *old) {
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, old, NULL);
        setpgid(0, 0);
        redirect(in, 0, O_RDONLY);
        redirect(out, 1, O_WRONLY | O_CREAT | O_TRUNC);
        redirect(err, 2, O_WRONLY | O_CREAT | O_APPEND);
        execvp(argv[0], argv);
        perror(argv[0]);
        _exit(127);
    }
    setpgid(pid, pid);   /* also here, so a kill right after fork reaches it */
    return pid;
}

int main(int argc, char **argv) {
    const char *in = "/dev/null", *out = "/dev/null", *err = "/dev/null";
    long timeout_ms = 60000, count = 1, par = 1, started = 0, done = 0, failed = 0;
    long long t0, deadline, user_us = 0, sys_us = 0;
    long maxrss = 0;
    pid_t running[MAX_PAR];
    long nrun = 0, i;
    int timed_out = 0, argi = 1;
    char status[32] = "exit:0";
    sigset_t chld, old;

    while (argi < argc && argv[argi][0] == '-' && argv[argi][1] && !argv[argi][2]) {
        const char *v = argi + 1 < argc ? argv[argi + 1] : NULL;
        if (!v) usage();
        switch (argv[argi][1]) {
        case 't': timeout_ms = strtol(v, NULL, 10); break;
        case 'i': in = v; break;
        case 'o': out = v; break;
        case 'e': err = v; break;
        case 'n': count = strtol(v, NULL, 10); break;
        case 'j': par = strtol(v, NULL, 10); break;
        default: usage();
        }
        argi += 2;
    }
    if (argi >= argc || count < 1 || par < 1 || par > MAX_PAR || timeout_ms < 1) usage();
    if (par > count) par = count;

    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    t0 = now_ns();
    deadline = t0 + (long long)timeout_ms * 1000000LL;

    while (done < count) {
        struct rusage ru;
        int st;
        pid_t pid;
        while (!timed_out && nrun < par && started < count) {
            pid = start(argv + argi, in, out, err, &old);
            started++;
            if (pid < 0) {
                done++;
                if (!failed++) snprintf(status, sizeof status, "fork-failed");
                continue;
            }
            running[nrun++] = pid;
        }
        if (!nrun) break;
        pid = wait4(-1, &st, WNOHANG, &ru);
        if (pid > 0) {
            for (i = 0; i < nrun && running[i] != pid; i++) {}
            if (i == nrun) continue;
            running[i] = running[--nrun];
            done++;
            user_us += (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec;
            sys_us += (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
            if (ru.ru_maxrss > maxrss) maxrss = ru.ru_maxrss;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                if (!failed++) {
                    if (timed_out) snprintf(status, sizeof status, "timeout");
                    else if (WIFSIGNALED(st)) snprintf(status, sizeof status, "signal:%d", WTERMSIG(st));
                    else snprintf(status, sizeof status, "exit:%d", WEXITSTATUS(st));
                }
            }
            continue;
        }
        if (pid < 0 && errno != EINTR) break;
        {
            long long left = deadline - now_ns();
            struct timespec ts;
            if (left <= 0) {
                if (!timed_out) {
                    timed_out = 1;
                    for (i = 0; i < nrun; i++) kill(-running[i], SIGKILL);
                    if (!failed) snprintf(status, sizeof status, "timeout");
                    done += count - started;   /* never started: counted as failed */
                    failed += count - started;
                    started = count;
                }
                left = 10000000;   /* the killed ones are reaped in the loop */
            }
            ts.tv_sec = (time_t)(left / 1000000000LL);
            ts.tv_nsec = (long)(left % 1000000000LL);
            (void)sigtimedwait(&chld, NULL, &ts);
        }
    }
    printf("runs=%ld failed=%ld wall_ns=%lld user_us=%lld sys_us=%lld maxrss_kb=%ld status=%s\n",
           count, failed, now_ns() - t0, user_us, sys_us, maxrss, status);
    return failed || timed_out ? 1 : 0;
}
