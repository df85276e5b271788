/* m4_image.c - a complete Cortex-M4 firmware image around tlsmail.h: the
   library without sockets and files (TLSMAIL_NO_SOCKETS, TLSMAIL_NO_STDIO),
   the test CA compiled in as a BearSSL trust anchor (ta.h, written by
   BearSSL's `brssl ta`), a transport whose read and write are stubs where a
   board's TCP stack would be, BearSSL, newlib and the reset code.

   tests/cross links it with m4.ld and holds its size (arm-none-eabi-size)
   to tests/cross/budget.txt. It is not run: a board also needs entropy and
   a clock for the handshake, which the library cannot be given yet. */
#define TLSMAIL_NO_SOCKETS
#define TLSMAIL_NO_STDIO
#define TLSMAIL_IMPLEMENTATION
#include "../../tlsmail.h"

#include <stdint.h>
#include <string.h>

#include "ta.h" /* TAs, TAs_NUM */

/* Where lwIP, a modem's socket commands or a UART would go. */
static int stub_read(void *ctx, unsigned char *buf, size_t len) {
    (void)ctx;
    (void)buf;
    (void)len;
    return 0; /* end of stream */
}

static int stub_write(void *ctx, const unsigned char *buf, size_t len) {
    (void)ctx;
    (void)buf;
    return len > INT_MAX ? INT_MAX : (int)len;
}

static tlsmail_client client; /* in .bss: the budget counts it */

static const char message[] = "From: board@example.org\r\n"
                              "To: ops@example.org\r\n"
                              "Subject: board up\r\n"
                              "\r\n"
                              "booted\r\n";

int main(void) {
    static const char *const to[] = { "ops@example.org" };
    tlsmail_trust trust;
    tlsmail_config cfg;
    tlsmail_io io;
    tlsmail_auth a;
    int err;
    memset(&trust, 0, sizeof trust);
    if ((err = tlsmail_trust_anchors(&trust, TAs, TAs_NUM)) != 0) return err;
    io.ctx = NULL;
    io.read = stub_read;
    io.write = stub_write;
    io.close = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.host = "localhost";
    cfg.io = &io;
    cfg.trust = &trust;
    a = tlsmail_plain_auth("", "board", "board-secret", "localhost");
    err = tlsmail_client_send(&client, &cfg, &a, "board@example.org", to, 1, message,
                              sizeof message - 1);
    tlsmail_close(&client);
    return err;
}

/* ---- reset: what a vendor's startup file does, cut to the minimum ------- */

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _estack[];
void Reset_Handler(void);

static void Default_Handler(void) {
    for (;;) {}
}

/* Initial stack pointer, then the 15 system exceptions; a real part adds
   its interrupt vectors after these. */
static const struct {
    uint32_t *sp;
    void (*handler[15])(void);
} vectors __attribute__((section(".isr_vector"), used)) = {
    _estack,
    { Reset_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
      Default_Handler, Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0,
      Default_Handler }
};

void Reset_Handler(void) {
    uint32_t *src = _sidata, *dst;
    for (dst = _sdata; dst < _edata;) *dst++ = *src++;
    for (dst = _sbss; dst < _ebss;) *dst++ = 0;
    /* CP10 and CP11 full access: the image is built for the FPU (hard-float
       ABI), and the first VFP instruction would fault otherwise. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    (void)main();
    for (;;) {}
}
