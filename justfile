# fleetwatch tasks. `just up` runs the system, `just test` the tests, `just bench` the
# benchmarks. Tools and the build cache live outside the clone, in ~/.cache/fleetwatch.

set shell := ["bash", "-euo", "pipefail", "-c"]

cache := env("FLEETWATCH_CACHE", env("HOME") / ".cache/fleetwatch")
export DUCKDB_LIB_DIR := cache / "libduckdb-1.5.6"
export CARGO_TARGET_DIR := env("CARGO_TARGET_DIR", cache / "target")
export PATH := cache / "py/bin" + ":" + env("PATH")

# List the recipes.
default:
    @just --list

# Install nats-server and libduckdb into the cache if missing.
tools:
    deploy/tools.sh

# Build every service.
build: tools
    cargo build --workspace --bins

# Run nats-server, the five services and a demo fleet; dashboard on http://localhost:8082.
up workers=env("FLEETWATCH_DEMO_WORKERS", "24"): build
    deploy/up.sh {{workers}} "$CARGO_TARGET_DIR/debug"

# Run every test: unit tests and end-to-end tests against a real nats-server and DuckDB.
# cargo-nextest when installed (one summary line for the whole run), else cargo test.
test: build
    if cargo nextest --version >/dev/null 2>&1; then \
        cargo nextest run --workspace --no-fail-fast; \
    else \
        cargo test --workspace --no-fail-fast; \
    fi

# Run the benchmarks, about 20 minutes: pipeline throughput and the archive against raw
# JetStream (release build), a 10-minute 10,000-worker demo built as `just up` builds it,
# then the scale ladder (`just bench 100 1000` for other rungs).
bench *ladder: build
    cargo build --release --workspace --bins
    "$CARGO_TARGET_DIR/release/pipeline-bench"
    "$CARGO_TARGET_DIR/release/archive-bench"
    FLEETWATCH_BIN_DIR="$CARGO_TARGET_DIR/debug" "$CARGO_TARGET_DIR/release/demo-bench"
    "$CARGO_TARGET_DIR/release/ladder-bench" {{ladder}}

# Format and lint.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
