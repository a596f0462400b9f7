# fleetwatch tasks. `just up` runs the system, `just test` the tests, `just bench` the
# benchmarks. Tools and the build cache live outside the clone, in ~/.cache/fleetwatch.

set shell := ["bash", "-euo", "pipefail", "-c"]

cache := env("FLEETWATCH_CACHE", env("HOME") / ".cache/fleetwatch")
export DUCKDB_LIB_DIR := cache / "libduckdb-1.5.6"
export CARGO_TARGET_DIR := env("CARGO_TARGET_DIR", cache / "target")
export PATH := cache / "py/bin" + ":" + env("PATH")
export PYTHONPATH := cache / "pylib" + ":" + env("PYTHONPATH", "")

# List the recipes.
default:
    @just --list

# Install nats-server and libduckdb into the cache if missing.
tools:
    deploy/tools.sh

# Also what only the tests use: Python duckdb and schemathesis.
test-tools:
    deploy/tools.sh --test

# (The gateway's build.rs bundles the dashboard, services/gateway/ui, with npm and embeds it.)
# Build the five services (the tests' benchmarks and the soak build in their own recipes).
build: tools
    cargo build --workspace --bins --exclude fleetwatch-tests

# Bundle the dashboard alone into services/gateway/ui/dist (cargo does it when ui/ changed).
ui:
    cd services/gateway/ui && npm ci --no-audit --no-fund && npm run build

# `just up`, on three nats-servers routed to each other (4222-4224, stores in var/nats/n0..n2):
# every stream and bucket replicated three ways; any one server may die.
# Run the system on a three-server NATS cluster.
up-cluster *args: build
    deploy/up.sh "$CARGO_TARGET_DIR/debug" --cluster {{args}}

# `just up 1000 --theme light --port 8085`: a bare number is the demo fleet's size
# (FLEETWATCH_DEMO_WORKERS, default 24); the monitoring guide's options go to the service
# that owns each (deploy/up.sh lists them).
# Run nats-server, the five services and a demo fleet; dashboard on http://localhost:8082.
up *args: build
    deploy/up.sh "$CARGO_TARGET_DIR/debug" {{args}}

# cargo-nextest when installed (one summary line for the whole run), else cargo test; then
# the dashboard's browser tests (ui-test).
# Run every test: unit tests and end-to-end tests against a real nats-server and DuckDB.
test: test-prereqs test-tools build && ui-test
    if cargo nextest --version >/dev/null 2>&1; then \
        cargo nextest run --workspace --no-fail-fast; \
    else \
        cargo test --workspace --no-fail-fast; \
    fi

# The three-server NATS cluster test (tests/tests/cluster.rs, about 20 s a run, also in
# `just test`), `just test-cluster 5` for five runs in a row.
# Kill the server leading FLEET_EVENTS mid-run; check the archive.
test-cluster runs="1": build
    for _ in $(seq {{runs}}); do cargo nextest run -p fleetwatch-tests -E 'binary(cluster)'; done

# Stop at once, with the command that installs them, when the tests' Debian packages are missing.
test-prereqs:
    deploy/test-prereqs.sh

# In headless Chromium (apt-get install chromium; CHROMIUM=path overrides), against a real
# nats-server, collector, processor and gateway from the debug build.
# Run the dashboard's browser tests.
ui-test: test-prereqs build
    cd services/gateway/ui && \
        if [ ! -e node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then \
            npm ci --no-audit --no-fund; \
        fi && \
        npm test

# Run the benchmarks, about 40 minutes: pipeline throughput, the fold by 1, 2 and 4
# processor and alerter partitions (about a minute), and the archive against raw
# JetStream (release build), a 10-minute 10,000-worker demo built as `just up` builds it,
# the archive's growth and its history queries on a week of 1,000 workers, the scale ladder
# (`just bench 100 1000` for other rungs), then alert-bench (about 4 minutes, 7 at most):
# each rule's delay from the event that completes it to the alert, at 10,000 workers; then
# dashboard-bench (about 4 minutes): page loads in Chromium, WebSocket fan-out to 200
# clients and the API's answers at 10,000 workers.
bench *ladder: build
    cargo build --release --workspace --bins
    "$CARGO_TARGET_DIR/release/pipeline-bench"
    "$CARGO_TARGET_DIR/release/partition-bench"
    "$CARGO_TARGET_DIR/release/archive-bench"
    FLEETWATCH_BIN_DIR="$CARGO_TARGET_DIR/debug" FLEETWATCH_NATS__EVENTS_MAX_MIB=24576 \
        FLEETWATCH_NATS__METRICS_MAX_MIB=2048 "$CARGO_TARGET_DIR/release/demo-bench"
    "$CARGO_TARGET_DIR/release/history-bench"
    "$CARGO_TARGET_DIR/release/ladder-bench" {{ladder}}
    FLEETWATCH_NATS__EVENTS_MAX_MIB=24576 FLEETWATCH_NATS__METRICS_MAX_MIB=2048 \
        "$CARGO_TARGET_DIR/release/alert-bench"
    FLEETWATCH_BIN_DIR="$CARGO_TARGET_DIR/debug" FLEETWATCH_NATS__EVENTS_MAX_MIB=24576 \
        FLEETWATCH_NATS__METRICS_MAX_MIB=2048 "$CARGO_TARGET_DIR/release/dashboard-bench"

# The soak, about 50 minutes: 30 minutes at 1,000 demo workers, then 20 at 10,000 (`just
# soak --minutes1 12 --minutes2 4` for a shorter one), each service SIGKILLed in turn and
# nats-server restarted along the way; reports events acknowledged, archived, lost and
# duplicated, and each process's memory.
soak *args: build
    cargo build -p fleetwatch-tests --bin soak
    FLEETWATCH_BIN_DIR="$CARGO_TARGET_DIR/debug" FLEETWATCH_NATS__EVENTS_MAX_MIB=24576 \
        FLEETWATCH_NATS__METRICS_MAX_MIB=2048 "$CARGO_TARGET_DIR/debug/soak" {{args}}

# Format and lint.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
