# connroute: `make` builds, `make test` installs what the tests need and runs
# all of them (unit, golden, CLI, UCI table, end-to-end in namespaces).

CARGO ?= cargo
BIN := target/release/connroute

.PHONY: all build test deps lint demo clean test-overflow

all: build

build:
	$(CARGO) build --release --locked

# Tools the tests use; installed only when missing (CI is a bare Debian + Rust).
deps:
	@missing=""; \
	command -v nft >/dev/null || missing="$$missing nftables"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v python3 >/dev/null || missing="$$missing python3"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

test: deps
	$(CARGO) test --locked -- --test-threads=2
	$(MAKE) test-overflow
	sh tests/shell/run.sh

# The OpenWrt SDK builds with overflow checks on and panic=unwind: prove the
# code is correct under those settings too.
test-overflow:
	CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true CARGO_PROFILE_RELEASE_PANIC=unwind \
		$(CARGO) test --locked --release --lib --test uci_cases --test cli

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

demo: deps build
	CONNROUTE=$(CURDIR)/$(BIN) bash tests/e2e/demo.sh

clean:
	$(CARGO) clean
