# tlsmail.h: build the examples and run the tests.
#   make          examples and test programs
#   make quick    build checks and unit tests (under a minute)
#   make test     everything CI runs: quick, then every suite against real
#                 servers, sanitizers, a valgrind subset, fuzz smoke runs
#   make test-full  make test with valgrind over every integration case
#   make demo     a real send through tlsmail-send to a local server it starts
#   make cross    tlsmail built for musl, aarch64, armhf (qemu), Windows
#                 (wine) and a Cortex-M4, sending to a local server
#   make bench    tlsmail-send beside curl, msmtp and Python smtplib
#   make fuzz     every libFuzzer target for FUZZ_SECONDS each (default 60)
#   make check    cppcheck, clang-tidy, clang --analyze, extra gcc warnings
# Every runner takes K=SUBSTR (make test K=pin): only cases whose name
# contains it.
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -std=c99 $(shell cat tests/lib/warnings)
LDLIBS  := -lbearssl
B       := build
PY      := /usr/bin/python3

PROGS := $(B)/tlsmail-send $(B)/minimal $(B)/custom_io $(B)/pinned \
         $(B)/unit $(B)/unit_compose $(B)/unit_x509 $(B)/itest $(B)/gosend

all: $(PROGS)

$(B):
	mkdir -p $@

$(B)/tlsmail-send: examples/tlsmail-send.c tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -DTLSMAIL_STARTTLS -I. $< -o $@ $(LDLIBS)

$(B)/minimal $(B)/custom_io $(B)/pinned: $(B)/%: examples/%.c tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -I. $< -o $@ $(LDLIBS)

$(B)/unit $(B)/unit_compose $(B)/unit_x509: $(B)/%: tests/unit/%.c tests/lib/runner.h tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) $< -o $@ $(LDLIBS)

# STARTTLS compiled in: the integration suites drive both modes with it.
$(B)/itest: tests/integration/itest.c tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -DTLSMAIL_STARTTLS $< -o $@ $(LDLIBS)

$(B)/gosend: tests/integration/gosend.c tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) $< -o $@ $(LDLIBS)

# Each target first installs the Debian packages it needs, when missing.
quick:
	bash tests/deps.sh quick
	$(MAKE) all
	bash tests/run.sh --quick $(B) $(K)

test:
	bash tests/deps.sh test cross
	$(MAKE) all
	bash tests/run.sh $(B) $(K)

test-full:
	bash tests/deps.sh test cross
	$(MAKE) all
	SANITIZE_VALGRIND=full bash tests/run.sh $(B) $(K)

demo:
	bash tests/lib/demo.sh $(B)

# Only the cross builds (musl, aarch64, armhf, Windows, Cortex-M4).
cross:
	bash tests/deps.sh cross
	bash tests/cross/run.sh $(B) $(if $(K),-k $(K))

bench:
	bash tests/deps.sh demo bench
	$(MAKE) $(B)/tlsmail-send
	$(PY) bench/run.py --tlsmail-send $(B)/tlsmail-send

FUZZ_SECONDS ?= 60
fuzz:
	bash tests/deps.sh test
	bash tests/fuzz/run.sh $(FUZZ_SECONDS) $(B)

check:
	bash tests/deps.sh check
	bash tests/compile/analyze.sh $(B)

clean:
	rm -rf $(B)

.PHONY: all quick test test-full demo cross bench fuzz check clean
