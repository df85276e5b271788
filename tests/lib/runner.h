/* runner.h - tiny test runner for tlsmail's tests (C99 and C++).

       TEST(name) { CHECK(x == 1); CHECK_EQ_INT(f(), 0); }
       int main(int argc, char **argv) {
           runner_args(argc, argv);   // -k SUBSTR: only tests whose name has it
           RUN(name);
           return runner_finish();
       }

   A failed CHECK prints file:line and both sides, then the test goes on, so
   one run shows every broken rule. runner_finish prints one FAIL line per
   failing test, then exactly "N passed, N failed" (tests, not checks), and
   returns the exit status (1 if any test failed). */
#ifndef TLSMAIL_TEST_RUNNER_H
#define TLSMAIL_TEST_RUNNER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define RUNNER__UNUSED __attribute__((unused))
#else
#define RUNNER__UNUSED
#endif

/* Test-side globals are fine: the library is the one that must have none. */
static int runner__checks_failed; /* in the test being run */
static int runner__passed, runner__failed;
static const char *runner__only[16];  /* -k filters; none: every test */
static int runner__nonly;

#define TEST(name) static void test_##name(void)
#define RUN(name) runner_run(#name, test_##name)

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) runner_fail(__FILE__, __LINE__, "CHECK(" #cond ")");      \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                     \
    do {                                                                       \
        long long runner__a = (long long)(a), runner__b = (long long)(b);      \
        if (runner__a != runner__b) {                                          \
            runner_fail(__FILE__, __LINE__, "CHECK_EQ_INT(" #a ", " #b ")");   \
            printf("    left:  %lld\n    right: %lld\n", runner__a, runner__b);\
        }                                                                      \
    } while (0)

#define CHECK_MEM(a, alen, b, blen)                                            \
    do {                                                                       \
        size_t runner__al = (size_t)(alen), runner__bl = (size_t)(blen);      \
        if (runner__al != runner__bl ||                                        \
            (runner__al && memcmp((a), (b), runner__al) != 0)) {               \
            runner_fail(__FILE__, __LINE__, "CHECK_MEM(" #a ", " #b ")");      \
            runner_dump("left: ", (a), runner__al);                            \
            runner_dump("right:", (b), runner__bl);                            \
        }                                                                      \
    } while (0)

#define CHECK_STR(a, b)                                                        \
    do {                                                                       \
        const char *runner__s = (a), *runner__t = (b);                         \
        if (!runner__s || !runner__t || strcmp(runner__s, runner__t) != 0) {   \
            runner_fail(__FILE__, __LINE__, "CHECK_STR(" #a ", " #b ")");      \
            runner_dump("left: ", runner__s, runner__s ? strlen(runner__s) : 0);\
            runner_dump("right:", runner__t, runner__t ? strlen(runner__t) : 0);\
        }                                                                      \
    } while (0)

static RUNNER__UNUSED void runner_fail(const char *file, int line, const char *what) {
    runner__checks_failed++;
    printf("  %s:%d: %s failed\n", file, line, what);
}

/* Bytes as a C literal, truncated, so CR/LF/NUL differences are visible. */
static RUNNER__UNUSED void runner_dump(const char *label, const void *p, size_t n) {
    const unsigned char *s = (const unsigned char *)p;
    size_t i, shown = n > 200 ? 200 : n;
    printf("    %s (%lu) \"", label, (unsigned long)n);
    for (i = 0; s && i < shown; i++) {
        if (s[i] == '\r') printf("\\r");
        else if (s[i] == '\n') printf("\\n");
        else if (s[i] == '"' || s[i] == '\\') printf("\\%c", s[i]);
        else if (s[i] >= 0x20 && s[i] < 0x7F) putchar(s[i]);
        else printf("\\x%02x", s[i]);
    }
    printf("\"%s\n", shown < n ? "..." : "");
}

/* -k SUBSTR (repeatable), as every runner of the project takes it. */
static RUNNER__UNUSED void runner_args(int argc, char **argv) {
    int i;
    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-k") != 0 || runner__nonly == 16) {
            printf("usage: %s [-k SUBSTR]...\n", argv[0]);
            exit(2);
        }
        runner__only[runner__nonly++] = argv[i + 1];
    }
    if (i < argc) {
        printf("usage: %s [-k SUBSTR]...\n", argv[0]);
        exit(2);
    }
}

static RUNNER__UNUSED void runner_run(const char *name, void (*fn)(void)) {
    int i, want = runner__nonly == 0;
    for (i = 0; i < runner__nonly; i++)
        if (strstr(name, runner__only[i])) want = 1;
    if (!want) return;
    runner__checks_failed = 0;
    fn();
    if (runner__checks_failed) {
        runner__failed++;
        printf("FAIL %s (%d failed checks)\n", name, runner__checks_failed);
    } else {
        runner__passed++;
    }
    fflush(stdout);
}

static RUNNER__UNUSED int runner_finish(void) {
    printf("%d passed, %d failed\n", runner__passed, runner__failed);
    return runner__failed ? 1 : 0;
}

#endif /* TLSMAIL_TEST_RUNNER_H */
