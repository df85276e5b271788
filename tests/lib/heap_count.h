/* tests/lib/heap_count.h - the library's heap, counted, for the test
   drivers that report it (itest, win_store). Include it before tlsmail.h:
   it routes TLSMAIL_MALLOC and TLSMAIL_FREE here. heap_live is what is
   held now, heap_peak the most held at once, heap_allocs the calls. */
#ifndef TLSMAIL_TEST_HEAP_COUNT_H
#define TLSMAIL_TEST_HEAP_COUNT_H
#include <stddef.h>
#include <stdlib.h>

static size_t heap_live, heap_peak, heap_allocs;

/* Each block carries its size in front. */
static void *heap_count_malloc(size_t n) {
    size_t *p = (size_t *)malloc(n + sizeof(size_t) * 2);
    if (!p) return NULL;
    p[0] = n;
    heap_live += n;
    heap_allocs++;
    if (heap_live > heap_peak) heap_peak = heap_live;
    return p + 2;
}

static void heap_count_free(void *q) {
    size_t *p = (size_t *)q - 2;
    heap_live -= p[0];
    free(p);
}

#define TLSMAIL_MALLOC(ctx, n) ((void)(ctx), heap_count_malloc(n))
#define TLSMAIL_FREE(ctx, p) ((void)(ctx), heap_count_free(p))
#endif
