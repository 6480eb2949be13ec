# sigtracker build. `make` builds build/sigtracker; `make run` installs what is missing, builds and
# starts the server; `make test` installs, builds and runs every test tier. See README.md.

.DEFAULT_GOAL := all

CC      ?= gcc
CLANG   ?= clang
BUILD   ?= build
PORT    ?= 8000

WARN    := -std=c11 -Wall -Wextra -Werror -Wpedantic -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2 -Wpointer-arith -Wvla -Wundef -Wcast-qual \
           -Wno-unused-parameter
CPPFLAGS := -D_GNU_SOURCE -Isrc -I$(BUILD)/gen
OPT     ?= -O2 -g
LDLIBS  := -lhiredis -lssl -lcrypto -lsqlite3 -lpthread -lm

LIB_SRC  := $(filter-out src/main.c,$(wildcard src/*/*.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)

# One object tree per flavour: release in build/, sanitizers in build/asan/.
define flavour
$(1)/obj/%.o: src/%.c $$(wildcard src/*/*.h)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CPPFLAGS) $$(WARN) $(2) -c $$< -o $$@
$(1)/libsig.a: $$(patsubst src/%.c,$(1)/obj/%.o,$$(LIB_SRC))
	@rm -f $$@
	ar rcs $$@ $$^
$(1)/sigtracker: $(1)/obj/main.o $(1)/libsig.a
	$$(CC) $(2) -o $$@ $$^ $$(LDLIBS)
$(1)/tests/%: tests/unit/%.c tests/unit/unit.h $(1)/libsig.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CPPFLAGS) -Itests/unit $$(WARN) -Wno-missing-prototypes $(2) -o $$@ $$< $(1)/libsig.a -lcmocka $$(LDLIBS)
endef

# The dashboard page, embedded as a byte array that src/server/dashboard.c includes (every flavour).
$(BUILD)/gen/dashboard_html.inc: src/server/dashboard.html scripts/embed.sh
	@mkdir -p $(dir $@)
	scripts/embed.sh $< $@
$(foreach f,$(BUILD) $(BUILD)/asan $(BUILD)/tsan $(BUILD)/fuzz,$(f)/obj/server/dashboard.o): \
	$(BUILD)/gen/dashboard_html.inc

ASAN := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
TSAN := -O1 -g -fno-omit-frame-pointer -fsanitize=thread
$(eval $(call flavour,$(BUILD),$(OPT)))
$(eval $(call flavour,$(BUILD)/asan,$(ASAN)))
$(eval $(call flavour,$(BUILD)/tsan,$(TSAN)))

UNIT_BINS      := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
ASAN_UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/asan/tests/%,$(UNIT_SRC))
TSAN_UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tsan/tests/%,$(UNIT_SRC))

.PHONY: all deps run test unit integration asan tsan cluster cluster-demo realclients clientjs fuzz fuzz-build fuzz-ci bench bench-cluster bench-tls format format-check clean man man-test install uninstall deb package-test

all: $(BUILD)/sigtracker

# Installs system packages (apt-get, with sudo when not root) and the npm test dependencies.
deps:
	@scripts/install-deps.sh

run:
	@scripts/install-deps.sh --build
	$(MAKE) $(BUILD)/sigtracker
	$(BUILD)/sigtracker --port $(PORT)

unit: $(UNIT_BINS)
	@scripts/run-unit.sh $(UNIT_BINS)

integration: $(BUILD)/sigtracker
	SIGTRACKER_BIN=$(abspath $(BUILD)/sigtracker) node --test --test-concurrency=1 tests/integration/

# The same unit and integration tiers, built with AddressSanitizer and UndefinedBehaviorSanitizer.
asan: $(BUILD)/asan/sigtracker $(ASAN_UNIT_BINS)
	@scripts/run-unit.sh $(ASAN_UNIT_BINS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	SIGTRACKER_BIN=$(abspath $(BUILD)/asan/sigtracker) SIGTRACKER_SANITIZED=1 \
	node --test --test-concurrency=1 tests/integration/

# ThreadSanitizer: the threads that share data are the database writer and the loop. The unit
# tests (the store's own included) and the integration tests that use the database (and read its
# histograms through /metrics) run under it.
TSAN_ITESTS := tests/integration/store.test.mjs tests/integration/st-flow.test.mjs \
               tests/integration/webtorrent.test.mjs tests/integration/metrics.test.mjs
tsan: $(BUILD)/tsan/sigtracker $(TSAN_UNIT_BINS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 scripts/run-unit.sh $(TSAN_UNIT_BINS)
	TSAN_OPTIONS=halt_on_error=1 SIGTRACKER_BIN=$(abspath $(BUILD)/tsan/sigtracker) \
	SIGTRACKER_SANITIZED=1 node --test --test-concurrency=1 $(TSAN_ITESTS)

# Cluster mode: a real redis-server and several nodes (tests/cluster/), plain and under ASan.
cluster: $(BUILD)/sigtracker $(BUILD)/asan/sigtracker
	SIGTRACKER_BIN=$(abspath $(BUILD)/sigtracker) scripts/run-cluster-tests.sh
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	SIGTRACKER_BIN=$(abspath $(BUILD)/asan/sigtracker) SIGTRACKER_SANITIZED=1 \
	scripts/run-cluster-tests.sh

# A try-out: Redis and N nodes sharing one port (docs/cluster.md). NODES=3 PORT=8000.
cluster-demo:
	@scripts/install-deps.sh --build
	@command -v redis-server >/dev/null || scripts/install-deps.sh
	$(MAKE) $(BUILD)/sigtracker
	scripts/cluster-demo.sh $(or $(NODES),3) $(PORT)

# Real WebTorrent clients (Node and headless Chromium) against the real binary.
realclients: $(BUILD)/sigtracker
	SIGTRACKER_BIN=$(abspath $(BUILD)/sigtracker) scripts/run-realclients.sh

# The ST browser client library, tested in headless Chromium.
clientjs: $(BUILD)/sigtracker
	SIGTRACKER_BIN=$(abspath $(BUILD)/sigtracker) scripts/run-clientjs.sh

FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer-no-link,address,undefined
FUZZ_BINS  := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
# The library is compiled once with coverage instrumentation; each target links it with libFuzzer.
$(BUILD)/fuzz/obj/%.o: src/%.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) $(CPPFLAGS) $(WARN) $(FUZZ_FLAGS) -c $< -o $@
$(BUILD)/fuzz/libsig.a: $(patsubst src/%.c,$(BUILD)/fuzz/obj/%.o,$(LIB_SRC))
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/fuzz/%: fuzz/%.c $(wildcard fuzz/*.h) $(BUILD)/fuzz/libsig.a
	@mkdir -p $(dir $@)
	$(CLANG) $(CPPFLAGS) -Ifuzz $(WARN) -Wno-missing-prototypes -g -O1 -fsanitize=fuzzer,address,undefined \
		-o $@ $< $(BUILD)/fuzz/libsig.a $(LDLIBS) -lcjson
fuzz-build: $(FUZZ_BINS)
# A short run of every target, as CI does; FUZZ_SECONDS sets the time per target.
fuzz-ci: $(FUZZ_BINS)
	@scripts/run-fuzz.sh $(or $(FUZZ_SECONDS),8) $(FUZZ_BINS)
fuzz: $(FUZZ_BINS)
	@scripts/run-fuzz.sh $(or $(FUZZ_SECONDS),300) $(FUZZ_BINS)

test: deps all unit integration asan tsan cluster realclients clientjs fuzz-ci man-test package-test format-check
	@echo "make test: all tiers passed"

# ---- man pages, install, Debian package (docs/packaging.md) ----------------------------------

# Where `make install` puts things. A daemon goes to sbin (its page is in section 8). With
# PREFIX=/usr the configuration goes to /etc; the Debian package sets UNITDIR=/lib/systemd/system.
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/sigtracker
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR    ?= $(PREFIX)/lib/systemd/system
# The unit's StateDirectory=sigtracker; the installed configuration keeps the database there.
STATEDIR   ?= /var/lib/sigtracker

MAN_PAGES := $(BUILD)/man/sigtracker.8 $(BUILD)/man/sigtracker.conf.5

# The OPTIONS of sigtracker(8) and the KEYS of sigtracker.conf(5) come from the binary's --help.
$(BUILD)/man/%: man/%.scd.in scripts/gen-man.sh $(BUILD)/sigtracker
	@mkdir -p $(dir $@)
	scripts/gen-man.sh $(BUILD)/sigtracker $< > $@.scd
	scdoc < $@.scd > $@.tmp
	mv $@.tmp $@

man: $(MAN_PAGES)

# Every flag of --help is in sigtracker(8), every key in sigtracker.conf(5), and man reads both
# without a warning.
man-test: $(MAN_PAGES)
	scripts/check-man.sh $(BUILD)/sigtracker $(MAN_PAGES)

# The configuration file is installed only when absent, so a reinstall keeps local changes.
install: $(BUILD)/sigtracker $(MAN_PAGES)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/sigtracker
	install -m 0755 $(BUILD)/sigtracker $(DESTDIR)$(SBINDIR)/sigtracker
	install -m 0644 $(BUILD)/man/sigtracker.8 $(DESTDIR)$(MANDIR)/man8/sigtracker.8
	install -m 0644 $(BUILD)/man/sigtracker.conf.5 $(DESTDIR)$(MANDIR)/man5/sigtracker.conf.5
	install -m 0644 etc/sigtracker.conf.example $(DESTDIR)$(DOCDIR)/sigtracker.conf.example
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		etc/sigtracker.service.in > $(DESTDIR)$(UNITDIR)/sigtracker.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/sigtracker.service
	$(BUILD)/sigtracker --db $(STATEDIR)/sigtracker.db --print-config > $(BUILD)/sigtracker.conf
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/sigtracker/sigtracker.conf ]; then \
		echo "install: keeping $(DESTDIR)$(SYSCONFDIR)/sigtracker/sigtracker.conf"; \
	else \
		echo "install -m 0644 $(BUILD)/sigtracker.conf $(DESTDIR)$(SYSCONFDIR)/sigtracker/sigtracker.conf"; \
		install -m 0644 $(BUILD)/sigtracker.conf $(DESTDIR)$(SYSCONFDIR)/sigtracker/sigtracker.conf; \
	fi

# Removes what install wrote; the configuration file only when it is unchanged.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/sigtracker $(DESTDIR)$(MANDIR)/man8/sigtracker.8 \
		$(DESTDIR)$(MANDIR)/man5/sigtracker.conf.5 $(DESTDIR)$(DOCDIR)/sigtracker.conf.example \
		$(DESTDIR)$(UNITDIR)/sigtracker.service
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null
	@conf=$(DESTDIR)$(SYSCONFDIR)/sigtracker/sigtracker.conf; \
	if [ -e "$$conf" ] && cmp -s $(BUILD)/sigtracker.conf "$$conf"; then \
		echo "rm -f $$conf"; rm -f "$$conf"; rmdir $(DESTDIR)$(SYSCONFDIR)/sigtracker 2>/dev/null || true; \
	elif [ -e "$$conf" ]; then echo "uninstall: keeping $$conf (changed, or not installed from this tree)"; fi

# The Debian package, built from a copy of the tree under build/deb/ (dpkg-buildpackage writes
# to the parent directory): build/deb/sigtracker_VERSION_ARCH.deb.
deb:
	scripts/build-deb.sh $(BUILD)/deb

# Builds the package, runs lintian, installs it, starts the installed binary with the packaged
# configuration, checks /health, verifies the unit and purges the package. Needs root (or sudo).
package-test:
	@scripts/install-deps.sh --package
	scripts/package-test.sh $(BUILD)

bench:
	@scripts/install-deps.sh
	$(MAKE) -C bench
	bench/run.sh

# Cluster mode's benchmarks (about 5 minutes; docs/benchmarks.md section 8).
bench-cluster:
	@scripts/install-deps.sh
	bench/cluster.sh

# The WebTorrent load over ws:// and wss:// of one server, side by side (docs/benchmarks.md §10).
bench-tls: all
	$(MAKE) -C bench
	bench/tls.sh

format:
	clang-format -i $(wildcard src/*.c src/*/*.c src/*/*.h tests/unit/*.c tests/unit/*.h fuzz/*.c fuzz/*.h bench/*.c)
format-check:
	@clang-format --dry-run -Werror $(wildcard src/*.c src/*/*.c src/*/*.h tests/unit/*.c tests/unit/*.h fuzz/*.c fuzz/*.h bench/*.c)

clean:
	rm -rf $(BUILD)
