# tlsmail.h: build the examples and run the tests.
#   make          examples and test programs
#   make test     build checks, unit tests, integration tests against aiosmtpd
#   make demo     a real send through tlsmail-send to a local server it starts
#   make bench    tlsmail-send beside curl, msmtp and Python smtplib
#   make fuzz     every libFuzzer target for FUZZ_SECONDS each (default 60)
#   make check    cppcheck, clang-tidy, clang --analyze, extra gcc warnings
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -std=c99 -Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wconversion -Wsign-conversion
LDLIBS  := -lbearssl
B       := build
PY      := /usr/bin/python3

PROGS := $(B)/tlsmail-send $(B)/minimal $(B)/custom_io $(B)/pinned \
         $(B)/unit $(B)/unit_compose $(B)/itest $(B)/gosend

all: $(PROGS)

$(B):
	mkdir -p $@

$(B)/tlsmail-send: examples/tlsmail-send.c tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -DTLSMAIL_STARTTLS -I. $< -o $@ $(LDLIBS)

$(B)/minimal: examples/minimal.c tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -I. $< -o $@ $(LDLIBS)

$(B)/custom_io: examples/custom_io.c tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -I. $< -o $@ $(LDLIBS)

$(B)/pinned: examples/pinned.c tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -I. $< -o $@ $(LDLIBS)

$(B)/unit_compose: tests/unit_compose.c tests/runner.h tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) $< -o $@ $(LDLIBS)

$(B)/unit: tests/unit.c tests/runner.h tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) $< -o $@ $(LDLIBS)

# STARTTLS compiled in: the integration suites drive both modes with it.
$(B)/itest: tests/itest.c tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -DTLSMAIL_STARTTLS $< -o $@ $(LDLIBS)

$(B)/gosend: tests/gosend.c tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) $< -o $@ $(LDLIBS)

# Each target first installs the Debian packages it needs, when missing.
test:
	bash tests/deps.sh test
	$(MAKE) all
	bash tests/run.sh $(B)

demo:
	bash tests/demo.sh $(B)

bench:
	bash tests/deps.sh demo bench
	$(MAKE) $(B)/tlsmail-send
	$(PY) bench/run.py --tlsmail-send $(B)/tlsmail-send

FUZZ_SECONDS ?= 60
fuzz:
	bash tests/deps.sh test
	bash tests/fuzz.sh $(FUZZ_SECONDS) $(B)

check:
	bash tests/deps.sh check
	bash tests/check.sh $(B)

clean:
	rm -rf $(B)

.PHONY: all test demo bench fuzz check clean
