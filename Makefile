# hs — Project Haystack transports with first-class observability.
CARGO ?= cargo

.PHONY: demo test bench bench-http lint doc fmt

## Start a server on the embedded demo store, drive real client traffic, show the observers.
## A dev build: it shares `make test`'s artifacts, and the tour itself takes about a second.
demo:
	@if [ -d crates/cli ]; then $(CARGO) run -p hs-cli --bin hs -- demo; \
	else echo "The servers arrive with the transport issues; until then: cargo run -p examples --example compose"; \
	  $(CARGO) run -p examples --example compose; fi

## The whole test suite (unit, integration, doc tests, examples build).
test:
	@command -v cargo-nextest >/dev/null 2>&1 || $(CARGO) install --locked cargo-nextest
	$(CARGO) build --workspace --all-targets
	$(CARGO) nextest run --workspace --all-features --no-fail-fast
	$(CARGO) test --workspace --all-features --doc

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
