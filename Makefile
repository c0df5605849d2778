# connroute: `make` builds, `make test` installs what the tests need and runs
# all of them (unit, golden, CLI, UCI table, end-to-end in namespaces, the
# .deb and `make install`, the big-endian MIPS build under qemu and its .ipk).

CARGO ?= cargo
# Inputs from outside the repository (the UCI corpus); tests skip without them.
CONNROUTE_SHARED ?= ../shared
export CONNROUTE_SHARED
BIN := target/release/connroute
# $(call apt_install,PACKAGES): one braced shell command, safe after `||`.
apt_install = { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; }

.PHONY: all build test deps lint demo clean test-overflow cross cross-deps test-cross ipk test-ipk apk test-apk fuzz bench \
	install install-files uninstall deb test-deb

all: build

build:
	$(CARGO) build --release --locked

# Tools the tests use; installed only when missing (CI is a bare Debian + Rust).
deps:
	@missing=""; \
	command -v nft >/dev/null || missing="$$missing nftables"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v strace >/dev/null || missing="$$missing strace"; \
	command -v python3 >/dev/null || missing="$$missing python3"; \
	command -v readelf >/dev/null || missing="$$missing binutils"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(call apt_install,$$missing); \
	fi

HOST_STATE := target/host-state.before
test: deps
	@mkdir -p target && sh tests/host_state.sh > $(HOST_STATE)
	$(CARGO) test --locked -- --test-threads=2
	$(MAKE) test-overflow
	$(MAKE) test-deb
	sh tests/shell/run.sh
	$(MAKE) test-cross TEST_CROSS_TARGETS=mips-unknown-linux-musl
	$(MAKE) test-ipk ARCH=mips_24kc TARGET=mips-unknown-linux-musl
	$(MAKE) test-apk ARCH=mips_24kc TARGET=mips-unknown-linux-musl
	@sh tests/host_state.sh | diff -u $(HOST_STATE) - \
		&& echo "host untouched: connroute's default paths, ip rules, proto-197 routes, nft ruleset" \
		|| { echo "a test changed the host's state (above)"; exit 1; }

# The OpenWrt SDK builds with overflow checks on and panic=unwind: prove the
# code is correct under those settings too (Cargo.toml profile
# release-overflow, its own target dir: target/release is left alone).
test-overflow:
	$(CARGO) test --locked --profile release-overflow --lib --test uci_cases --test cli

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

demo: deps build
	CONNROUTE=$(CURDIR)/$(BIN) bash tests/e2e/demo.sh

clean:
	$(CARGO) clean
	rm -rf dist

# ---- Plain Linux install (README "Install") ---------------------------------
# `make && sudo make install`: binary, systemd unit, man page, bash completion, and
# the example config unless /etc/config/connroute exists. PREFIX=/usr for a
# distribution's layout; DESTDIR stages into a directory. The unit's paths
# follow SBINDIR. Starting it is the admin's call (README).
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc

install: install-files
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "installed; edit $(SYSCONFDIR)/config/connroute, then: systemctl enable --now connroute"

# No build here: `sudo make install` must not need root's cargo.
install-files:
	@test -x $(BIN) || { echo "$(BIN) is missing: run 'make' first"; exit 1; }
	install -D -m 0755 $(BIN) $(DESTDIR)$(SBINDIR)/connroute
	install -d -m 0755 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/connroute
	sed 's|/usr/sbin/connroute|$(SBINDIR)/connroute|g' systemd/connroute.service \
		> $(DESTDIR)$(UNITDIR)/connroute.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/connroute.service
	install -D -m 0644 man/connroute.8 $(DESTDIR)$(MANDIR)/man8/connroute.8
	install -D -m 0644 completion/connroute.bash $(DESTDIR)$(BASHCOMPDIR)/connroute
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/config/connroute ]; then \
		echo "kept $(DESTDIR)$(SYSCONFDIR)/config/connroute"; \
	else \
		install -D -m 0644 files/etc/config/connroute $(DESTDIR)$(SYSCONFDIR)/config/connroute; \
	fi

# Stops the unit (which flushes), flushes what a hand-run apply left, removes
# the installed files; keeps the config and /etc/connroute/ids (README).
uninstall:
	@if [ -z "$(DESTDIR)" ]; then \
		if [ -d /run/systemd/system ]; then systemctl disable --now connroute.service 2>/dev/null || true; fi; \
		[ ! -x $(SBINDIR)/connroute ] || $(SBINDIR)/connroute flush || true; \
	fi
	rm -f $(DESTDIR)$(SBINDIR)/connroute $(DESTDIR)$(UNITDIR)/connroute.service \
		$(DESTDIR)$(MANDIR)/man8/connroute.8 $(DESTDIR)$(BASHCOMPDIR)/connroute
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/config/connroute and $(DESTDIR)$(SYSCONFDIR)/connroute/"

# dist/connroute_<version>-<DEB_REVISION>_<arch>.deb with dpkg-deb alone
# (packaging/deb/). test-deb checks the package, installs, upgrades over an
# edited conffile, removes and purges it in a throwaway root (dpkg --root,
# maintainer scripts chrootless with DPKG_ROOT), checks `make install` and
# runs `systemd-analyze verify` on the unit; lintian must find no error
# or warning (initial-upload-closes-no-bugs is for Debian's archive only).
DEB_REVISION ?= 1
DEB_VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)-$(DEB_REVISION)
DEB = dist/connroute_$(DEB_VERSION)_$(shell dpkg --print-architecture 2>/dev/null).deb
MAINTAINER ?= $(shell git log -1 --format='%an <%ae>' 2>/dev/null || echo 'connroute maintainers <root@localhost>')
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
deb: build
	rm -rf dist/deb-root
	$(MAKE) -s install-files DESTDIR=$(CURDIR)/dist/deb-root PREFIX=/usr UNITDIR=/lib/systemd/system
	MAINTAINER="$(MAINTAINER)" SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) \
		sh packaging/deb/build.sh dist/deb-root $(DEB_VERSION) $(DEB)

test-deb: deb
	@command -v systemd-analyze >/dev/null || $(call apt_install,--no-install-recommends systemd)
	@command -v lintian >/dev/null || $(call apt_install,--no-install-recommends lintian)
	lintian --fail-on error,warning --suppress-tags initial-upload-closes-no-bugs $(DEB)
	sh tests/deb.sh $(DEB)
	sh tests/install.sh

# ---- Embedded builds (docs/EMBEDDED.md) -------------------------------------
# Static musl binaries for router CPUs: zig links (cargo-zigbuild), std is
# rebuilt from source with our size profile (-Zbuild-std; RUSTC_BOOTSTRAP
# unlocks it on the stable toolchain), qemu-user runs the tests.
ALL_CROSS_TARGETS := mipsel-unknown-linux-musl mips-unknown-linux-musl \
	aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf arm-unknown-linux-musleabi
CROSS_TARGETS ?= $(ALL_CROSS_TARGETS)
TEST_CROSS_TARGETS ?= mipsel-unknown-linux-musl mips-unknown-linux-musl
ZIGBUILD_VERSION := 0.24.1
ZIG_VERSION := 0.17.1
# std without its `backtrace` feature (no DWARF symbolizer) and with the
# smaller-code variants of its algorithms.
BUILD_STD := -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size
# Only for these static binaries (the OpenWrt SDK build keeps panic=unwind with
# messages; tests keep unwinding): a panic (always a bug: bad input, timeouts
# and system errors are reported as errors) aborts at once without printing its
# message (panic = "immediate-abort", nightly, unlocked by RUSTC_BOOTSTRAP=1
# like -Zbuild-std), so nothing ever unwinds and Rust code needs no unwind
# tables (-C force-unwind-tables=no).
# mipsel at main feb939b: 764,356 B -> 640,828 (immediate-abort) -> 592,828
# (no unwind tables). force-unwind-tables=no alone with panic=abort crashed
# in process spawn on big-endian MIPS before; with immediate-abort the mips
# binary spawns, times out and kills nft under qemu (docs/EMBEDDED.md).
# Link flags per target are in .cargo/config.toml; the list below is appended
# (not written there: test-cross builds unwinding test binaries from it).
CROSS_PROFILE := CARGO_UNSTABLE_PANIC_IMMEDIATE_ABORT=true CARGO_PROFILE_RELEASE_PANIC=immediate-abort
cross_rustflags = --config "target.$(1).rustflags=[\"-Cforce-unwind-tables=no\"]"
# The same source as the OpenWrt SDK builds it (feeds/packages
# lang/rust/rust-values.mk: opt-level z, LTO, 1 codegen unit, overflow checks,
# panic=unwind, -crt-static: dynamic musl), for the size table next to the
# static binary: Cargo profile release-overflow, std rebuilt with its
# defaults, linked by zig against musl's libc.so (/lib/ld-musl-*.so.1).
# Only for the targets listed here (ipk, apk and test-cross leave it out).
CROSS_SDK_SIZE ?= mipsel-unknown-linux-musl
SDK_RUSTFLAGS := -Ctarget-feature=-crt-static -Clink-self-contained=no -Clink-arg=-dynamic
LLVM_STRIP = $$(find "$$(rustc --print sysroot)" -name llvm-strip | head -n1)

cross-deps: deps
	@command -v qemu-mips-static >/dev/null || \
		$(call apt_install,--no-install-recommends qemu-user-static binfmt-support)
	@command -v zig >/dev/null || python3 -c 'import ziglang' 2>/dev/null || { \
		python3 -m pip --version >/dev/null 2>&1 || $(call apt_install,python3-pip); \
		python3 -m pip install -q --break-system-packages ziglang==$(ZIG_VERSION) 2>/dev/null || \
			python3 -m pip install -q ziglang==$(ZIG_VERSION); }
	@command -v cargo-zigbuild >/dev/null || \
		$(CARGO) install -q cargo-zigbuild --locked --version $(ZIGBUILD_VERSION)
	@rustup component add rust-src llvm-tools >/dev/null 2>&1

# dist/connroute-<target> (stripped) and dist/sizes.md (bytes, gzip -9) of
# every target built so far.
cross: cross-deps
	@mkdir -p dist
	@set -e; for t in $(CROSS_TARGETS); do \
		echo "cross: $$t"; \
		RUSTC_BOOTSTRAP=1 $(CROSS_PROFILE) $(CARGO) zigbuild -q --release --locked --target $$t \
			$(BUILD_STD) $(call cross_rustflags,$$t); \
		$(LLVM_STRIP) --strip-all -o dist/connroute-$$t target/$$t/release/connroute; \
		b=$$(wc -c < dist/connroute-$$t); g=$$(gzip -9c dist/connroute-$$t | wc -c); \
		printf '| %s | %d | %d | %d |\n' $$t $$b $$((b / 1024)) $$g > dist/$$t.size; \
		case " $(CROSS_SDK_SIZE) " in *" $$t "*) \
			echo "cross: $$t as the OpenWrt SDK builds it"; \
			RUSTC_BOOTSTRAP=1 RUSTFLAGS="$(SDK_RUSTFLAGS)" $(CARGO) zigbuild -q --profile release-overflow \
				--locked --target $$t -Zbuild-std=std,panic_unwind; \
			$(LLVM_STRIP) --strip-all -o dist/connroute-$$t-sdk target/$$t/release-overflow/connroute; \
			b=$$(wc -c < dist/connroute-$$t-sdk); g=$$(gzip -9c dist/connroute-$$t-sdk | wc -c); \
			printf '| %s, OpenWrt SDK settings (dynamic musl, panic=unwind, overflow checks) | %d | %d | %d |\n' \
				$$t $$b $$((b / 1024)) $$g >> dist/$$t.size;; \
		esac; \
	done
	@{ printf '| target | stripped bytes | KiB | gzip -9 bytes |\n|---|---:|---:|---:|\n'; \
		for t in $(ALL_CROSS_TARGETS); do [ ! -f dist/$$t.size ] || cat dist/$$t.size; done; } > dist/sizes.md; cat dist/sizes.md
	@f=dist/connroute-mipsel-unknown-linux-musl; b=0; \
		case " $(CROSS_TARGETS) " in *" mipsel-unknown-linux-musl "*) b=$$(wc -c < $$f);; esac; \
		if [ "$$b" -gt 716800 ]; then echo "mipsel binary $$b bytes: over the 700 KiB budget"; exit 1; fi

# Unit, UCI table and CLI/golden tests under qemu-user, then the cross-built
# binary's output compared byte for byte with the host build's. qemu-user
# runs the vfork-style spawn as a fork; its child makes raw system calls only
# (no libc lock another test thread could hold), so the tests run in
# parallel like on the host.
test-cross: cross-deps build
	@set -e; for t in $(TEST_CROSS_TARGETS); do \
		echo "test-cross: $$t"; \
		q=$${t%%-*}; case $$q in armv7) q=arm;; esac; \
		CONNROUTE_RUNNER=qemu-$$q-static CONNROUTE_TRANSITION_CASES=8 CONNROUTE_TRANSITION_FAIL_CASES=1 \
		RUSTC_BOOTSTRAP=1 cargo-zigbuild test --locked --target $$t \
			-Zbuild-std=std,panic_unwind,panic_abort --lib --test uci_cases --test cli; \
		$(MAKE) -s cross CROSS_TARGETS=$$t CROSS_SDK_SIZE= >/dev/null; \
		CONNROUTE_RUNNER=qemu-$$q-static sh tests/cross/same_output.sh \
			$(CURDIR)/$(BIN) $(CURDIR)/dist/connroute-$$t; \
	done

# OpenWrt packages from a cross-built binary, with the fields, files, modes
# and scripts of the feed Makefile (openwrt/connroute/Makefile):
# dist/connroute_<version>-r<release>_<ARCH>.ipk (opkg, 24.10) and
# dist/<ARCH>/connroute-<version>-r<release>.apk (apk-tools v3, 25.x; built
# without apk-tools by openwrt/build-apk.py). test-ipk / test-apk check them
# structurally; CONNROUTE_APK=/path/to/apk also installs, upgrades and
# removes the .apk with the real apk (docs/OPENWRT.md).
ARCH ?= mipsel_24kc
TARGET ?= mipsel-unknown-linux-musl
pkg_field = $(shell sed -n 's/^PKG_$(1):=//p' openwrt/connroute/Makefile)
PKG_VER = $(call pkg_field,VERSION)-r$(call pkg_field,RELEASE)
IPK = dist/connroute_$(PKG_VER)_$(ARCH).ipk
APK = dist/$(ARCH)/connroute-$(PKG_VER).apk
ipk:
	$(MAKE) cross CROSS_TARGETS=$(TARGET) CROSS_SDK_SIZE=
	sh openwrt/build-ipk.sh dist/connroute-$(TARGET) $(ARCH) $(IPK)

test-ipk: ipk
	sh tests/ipk.sh $(IPK) $(ARCH) $(TARGET)

apk:
	$(MAKE) cross CROSS_TARGETS=$(TARGET) CROSS_SDK_SIZE=
	python3 openwrt/build-apk.py dist/connroute-$(TARGET) $(ARCH) $(APK)

test-apk: apk
	sh tests/apk.sh $(APK) $(ARCH) $(TARGET)

# Coverage-guided fuzzing of the UCI reader and the config model (nightly
# and cargo-fuzz; not in CI, where tests/props.rs runs instead). Seeds: the
# example configs, the UCI cases and, when present, the shared corpus.
# FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install -q cargo-fuzz --locked
	@rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
	@set -e; for t in uci config; do \
		mkdir -p fuzz/corpus/$$t; cp fuzz/seeds/* fuzz/corpus/$$t/; \
		cp tests/fixtures/uci/cases/*.uci fuzz/corpus/$$t/; \
		[ ! -d $(CONNROUTE_SHARED)/uci/corpus ] || find $(CONNROUTE_SHARED)/uci/corpus -type f \
			! -name '*.export' ! -name '*.show' ! -name '*.md' ! -name '*.txt' \
			-exec cp -t fuzz/corpus/$$t/ {} +; \
		if cargo +nightly fuzz run $$t fuzz/corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) \
			-max_len=4096 > fuzz/$$t.log 2>&1; then \
			echo "fuzz $$t: $$(grep -E '^Done|DONE' fuzz/$$t.log | tail -1)"; \
		else tail -40 fuzz/$$t.log; echo "fuzz $$t: FAILED (fuzz/$$t.log, fuzz/artifacts/$$t)"; exit 1; fi; \
	done

# Benchmarks against the hand-written recipe (bench/results.md); root.
# The static x86_64 musl build (same libc and allocator as on routers) is
# measured for memory.
bench: deps build cross-deps
	@command -v iperf3 >/dev/null && [ -x /usr/bin/time ] || $(call apt_install,iperf3 time)
	RUSTC_BOOTSTRAP=1 $(CARGO) zigbuild -q --release --locked --target x86_64-unknown-linux-musl $(BUILD_STD)
	CONNROUTE=$(CURDIR)/$(BIN) CONNROUTE_STATIC=$(CURDIR)/target/x86_64-unknown-linux-musl/release/connroute \
		bash bench/run.sh
