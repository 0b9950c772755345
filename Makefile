# hs — Project Haystack transports with first-class observability.
CARGO ?= cargo

.PHONY: demo test test-deps bench bench-http lint doc fmt

## Start a server on the embedded demo store, drive real client traffic, show the observers.
## A dev build: it shares `make test`'s artifacts, and the tour itself takes about a second.
demo:
	$(CARGO) run -p hs-cli --bin hs -- demo

## The whole test suite (unit, integration, doc tests, examples build).
test: test-deps
	$(CARGO) build --workspace --all-targets
	$(CARGO) nextest run --workspace --all-features --no-fail-fast
	$(CARGO) test --workspace --all-features --doc

## What the tests run besides cargo: cargo-nextest, promtool (Debian package `prometheus`) and
## the strict OpenMetrics parser of Python's prometheus_client (`python3-prometheus-client`).
## Installed only when missing; apt-get runs through sudo when not root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
test-deps:
	@command -v cargo-nextest >/dev/null 2>&1 || $(CARGO) install --locked cargo-nextest
	@if ! command -v promtool >/dev/null 2>&1 || ! /usr/bin/python3 -c 'import prometheus_client' 2>/dev/null; then \
	  echo "installing the OS packages the tests need: prometheus python3-prometheus-client"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    prometheus python3-prometheus-client >/dev/null; \
	fi

## Criterion benchmarks (figures go to docs/performance.md by hand, with the command).
bench:
	$(CARGO) bench --workspace

## HTTP read throughput: hs-http-server vs rusty-haystack-server vs bare axum (its own workspace).
bench-http:
	$(CARGO) bench --manifest-path bench/http-compare/Cargo.toml

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --all-features

fmt:
	$(CARGO) fmt --all
