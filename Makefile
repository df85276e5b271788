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
#                 (BENCH_FLAGS=--write: into bench/RESULTS.md; --help lists more)
#   make fuzz     every libFuzzer target for FUZZ_SECONDS each (default 60)
#   make check    cppcheck, clang-tidy, clang --analyze, extra gcc warnings
#   make install  tlsmail.h, tlsmail-send, its man pages and tlsmail.pc under
#                 $(DESTDIR)$(PREFIX) (PREFIX=/usr/local); make uninstall
#   make install-sendmail  /usr/sbin/sendmail and /usr/lib/sendmail as links
#                 to tlsmail-send (refused over another MTA's unless FORCE=1)
# Every runner takes K=SUBSTR (make test K=pin): only cases whose name
# contains it.
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -std=c99 $(shell cat tests/lib/warnings)
LDLIBS  := -lbearssl
# tlsmail-send takes BearSSL's static library when the compiler finds one
# (Debian's libbearssl-dev ships it): the tool then needs only the C
# library on the box it is copied to, and a send maps about 200 KB less
# than with the shared library. SEND_LDLIBS=-lbearssl for the shared one.
BEARSSL_A   := $(shell $(CC) -print-file-name=libbearssl.a 2>/dev/null)
SEND_LDLIBS ?= $(if $(filter /%,$(BEARSSL_A)),$(BEARSSL_A),-lbearssl)
B       := build
PY      := /usr/bin/python3

PROGS := $(B)/tlsmail-send $(B)/minimal $(B)/custom_io $(B)/pinned \
         $(B)/unit $(B)/unit_compose $(B)/unit_x509 $(B)/itest $(B)/gosend $(B)/many

all: $(PROGS)

$(B):
	mkdir -p $@

$(B)/tlsmail-send: examples/tlsmail-send/tlsmail-send.c tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -DTLSMAIL_STARTTLS -I. $< -o $@ $(SEND_LDLIBS)

$(B)/minimal $(B)/custom_io $(B)/pinned: $(B)/%: examples/%.c tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -I. $< -o $@ $(LDLIBS)

$(B)/unit $(B)/unit_compose $(B)/unit_x509: $(B)/%: tests/unit/%.c tests/lib/runner.h tests/lib/dot_ref.h \
                                             tests/lib/mime_ref.h tests/lib/err_name.h tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) $< -o $@ $(LDLIBS)

# STARTTLS compiled in: the integration suites drive both modes with it.
$(B)/itest: tests/integration/itest.c tests/lib/heap_count.h tests/lib/err_name.h tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -DTLSMAIL_STARTTLS $< -o $@ $(LDLIBS)

$(B)/gosend: tests/integration/gosend.c tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) $< -o $@ $(LDLIBS)

# Many messages on one connection, for make bench (and tests/perf).
$(B)/many: bench/many.c tlsmail.h | $(B)
	$(CC) $(WARN) $(CFLAGS) -I. $< -o $@ $(LDLIBS)

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
	$(PY) bench/run.py --tlsmail-send $(B)/tlsmail-send $(BENCH_FLAGS)

FUZZ_SECONDS ?= 60
fuzz:
	bash tests/deps.sh test
	bash tests/fuzz/run.sh $(FUZZ_SECONDS) $(B)

check:
	bash tests/deps.sh check
	bash tests/compile/analyze.sh $(B)

clean:
	rm -rf $(B)

# Installation. sendmail callers look in /usr/sbin and /usr/lib whatever
# PREFIX is, as Debian's msmtp-mta links both.
PREFIX   ?= /usr/local
DESTDIR  ?=
SENDMAIL ?= /usr/sbin/sendmail /usr/lib/sendmail
VERSION  := $(shell sed -n 's/^\#define TLSMAIL_VERSION_STRING "\(.*\)"/\1/p' tlsmail.h)
TS       := examples/tlsmail-send

$(B)/tlsmail.pc: tlsmail.h | $(B)
	printf 'prefix=%s\nincludedir=$${prefix}/include\n\nName: tlsmail\nDescription: %s\nVersion: %s\nCflags: -I$${includedir}\nLibs: -lbearssl\n' \
	    '$(PREFIX)' 'send mail over SMTP + TLS: a single header on BearSSL' '$(VERSION)' > $@

install: $(B)/tlsmail-send $(B)/tlsmail.pc
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin \
	    $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 tlsmail.h $(DESTDIR)$(PREFIX)/include/tlsmail.h
	install -m 755 $(B)/tlsmail-send $(DESTDIR)$(PREFIX)/bin/tlsmail-send
	install -m 644 $(TS)/tlsmail-send.1 $(DESTDIR)$(PREFIX)/share/man/man1/tlsmail-send.1
	install -m 644 $(TS)/tlsmail-send.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/tlsmail-send.conf.5
	install -m 644 $(B)/tlsmail.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/tlsmail.pc

# A sendmail that is not a link to our tlsmail-send belongs to another MTA.
install-sendmail: install
	@for l in $(SENDMAIL); do \
	    t=$(DESTDIR)$$l; \
	    if [ -e "$$t" ] || [ -L "$$t" ]; then \
	        if [ "$$(readlink -f "$$t")" != "$$(readlink -f $(DESTDIR)$(PREFIX)/bin/tlsmail-send)" ] && [ "$(FORCE)" != 1 ]; then \
	            echo "$$t belongs to another MTA ($$(readlink -f "$$t")): not replaced (FORCE=1 replaces it)" >&2; exit 1; \
	        fi; \
	    fi; \
	done
	@for l in $(SENDMAIL); do \
	    install -d $(DESTDIR)$$(dirname $$l); \
	    ln -sfn $(PREFIX)/bin/tlsmail-send $(DESTDIR)$$l; \
	    echo "$(DESTDIR)$$l -> $(PREFIX)/bin/tlsmail-send"; \
	done

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/tlsmail.h $(DESTDIR)$(PREFIX)/bin/tlsmail-send \
	    $(DESTDIR)$(PREFIX)/share/man/man1/tlsmail-send.1 \
	    $(DESTDIR)$(PREFIX)/share/man/man5/tlsmail-send.conf.5 \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig/tlsmail.pc
	@for l in $(SENDMAIL); do \
	    if [ "$$(readlink $(DESTDIR)$$l)" = "$(PREFIX)/bin/tlsmail-send" ]; then rm -f $(DESTDIR)$$l; fi; \
	done

.PHONY: all quick test test-full demo cross bench fuzz check clean install install-sendmail uninstall
