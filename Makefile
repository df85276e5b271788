# tlsmail.h: build the examples and run the tests.
#   make          examples and test programs
#   make test     build checks, unit tests, integration tests against aiosmtpd
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -std=c99 -Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wconversion -Wsign-conversion
LDLIBS  := -lbearssl
B       := build
PY      := /usr/bin/python3

PROGS := $(B)/minimal $(B)/unit $(B)/itest $(B)/gosend

all: $(PROGS)

$(B):
	mkdir -p $@

$(B)/minimal: examples/minimal.c tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -I. $< -o $@ $(LDLIBS)

$(B)/unit: tests/unit.c tests/runner.h tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) $< -o $@ $(LDLIBS)

# STARTTLS compiled in: the integration suites drive both modes with it.
$(B)/itest: tests/itest.c tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -DTLSMAIL_STARTTLS $< -o $@ $(LDLIBS)

$(B)/gosend: tests/gosend.c tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) $< -o $@ $(LDLIBS)

test: all
	bash tests/run.sh $(B)

clean:
	rm -rf $(B)

.PHONY: all test clean
