#!/usr/bin/env bash
# Measures a cold start as a newcomer meets it: a fresh clone of this repository's HEAD with
# empty caches (crates, build, tools, npm, pip) until the dashboard answers under `just up`.
# Your own caches are left alone: everything goes under a scratch directory.
#   deploy/cold-start.sh [SCRATCH]   (default /tmp/fleetwatch-cold; needs ports 4222 and 8082)
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
root="${1:-/tmp/fleetwatch-cold}"
rm -rf "$root" && mkdir -p "$root"
git clone --quiet "$repo" "$root/src"
export CARGO_HOME="$root/cargo" FLEETWATCH_CACHE="$root/cache" npm_config_cache="$root/npm" PIP_CACHE_DIR="$root/pip"
unset CARGO_TARGET_DIR DUCKDB_LIB_DIR
# Tools already installed into the usual cache must not be found on PATH.
PATH=$(tr : '\n' <<<"$PATH" | grep -v '/\.cache/fleetwatch/' | paste -sd:)
# rustup's proxies stay (they read ~/.rustup, not CARGO_HOME).
PATH="$PATH:$HOME/.cargo/bin"
mkdir -p "$CARGO_HOME"
cd "$root/src"

t0=$(date +%s.%N)
deploy/tools.sh
t1=$(date +%s.%N)
# What `just up` builds, with --timings for where the time went.
TIMEFORMAT='cold-start: build %R s wall, %U s user, %S s system'
time DUCKDB_LIB_DIR="$FLEETWATCH_CACHE/libduckdb-1.5.6" CARGO_TARGET_DIR="$FLEETWATCH_CACHE/target" \
  cargo build --workspace --bins --exclude fleetwatch-tests --timings --quiet
t2=$(date +%s.%N)
setsid just up >"$root/up.log" 2>&1 &
up=$!
until curl -sf localhost:8082/healthz >/dev/null; do
  kill -0 "$up" 2>/dev/null || { echo "cold-start: just up ended; see $root/up.log" >&2; exit 1; }
  sleep 0.2
done
t3=$(date +%s.%N)
kill -TERM -- "-$up"
wait "$up" 2>/dev/null || true
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN {
  printf "cold-start: tools %.1f s, build %.1f s, just up to /healthz %.1f s: %.1f s in all\n", b - a, c - b, d - c, d - a }'
