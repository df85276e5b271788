/* fuzz_common.h - helpers shared by the libFuzzer targets in tests/fuzz/.
   FUZZ_CHECK aborts with file:line so libFuzzer records the input as a crash;
   assert() is not used because NDEBUG would silence it. */
#ifndef TLSMAIL_FUZZ_COMMON_H
#define TLSMAIL_FUZZ_COMMON_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define FUZZ_UNUSED __attribute__((unused))
#else
#define FUZZ_UNUSED
#endif

#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* Deterministic pseudo-random numbers from the input itself, so a crash
   reproduces from the saved input alone. */
static FUZZ_UNUSED uint64_t fuzz_hash(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h ? h : 1;
}

static FUZZ_UNUSED uint64_t fuzz_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#endif
