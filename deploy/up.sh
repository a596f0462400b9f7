#!/usr/bin/env bash
# Brings up the whole system on this machine: nats-server with JetStream (store under
# var/nats), the five services as separate processes, each restarted when it dies
# (deploy/supervise.sh), and the demo fleet. Logs go to var/log/. Ctrl-C stops everything
# cleanly.
#   deploy/up.sh BIN_DIR [WORKERS] [the monitoring guide's options]
# Each option goes to the service that owns it (README: "The monitoring guide's options"):
#   --host H --port P --theme light|dark --refresh S --output-dir D --browser --real-time
#       the gateway (dashboard); --insecure lets it serve a non-loopback --host with no
#       users (README: Security)
#   --coordinator URL   the collector polls that coordinator
#   --no-alerts         the alerter raises none
#   --db-path PATH      the archiver's DuckDB file (default var/fleetwatch.duckdb)
#   --debug             every service logs at debug level
set -euo pipefail
bin="${1:?the directory of the built binaries}"
shift
workers="${FLEETWATCH_DEMO_WORKERS:-24}"
gateway=(--port "${FLEETWATCH_GATEWAY__PORT:-8082}")
collector=()
alerter=()
db_path=var/fleetwatch.duckdb
common=()
usage() {
  echo "up: $1" >&2
  echo "usage: just up [WORKERS] [--host H] [--port P] [--theme light|dark] [--refresh S] [--output-dir D]" >&2
  echo "               [--browser] [--real-time] [--insecure] [--coordinator URL] [--no-alerts] [--db-path PATH] [--debug]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    [0-9]*) workers="$1" ;;
    --host | --port | --theme | --refresh | --output-dir)
      [ $# -ge 2 ] || usage "$1 needs a value"
      gateway+=("$1" "$2")
      shift ;;
    --browser | --real-time | --insecure) gateway+=("$1") ;;
    --coordinator)
      [ $# -ge 2 ] || usage "$1 needs a URL"
      collector+=(--coordinator "$2")
      shift ;;
    --no-alerts) alerter+=(--no-alerts) ;;
    --db-path)
      [ $# -ge 2 ] || usage "$1 needs a path"
      db_path="$2"
      shift ;;
    --debug) common+=(--debug) ;;
    *) usage "unknown option $1" ;;
  esac
  shift
done
[[ "$workers" =~ ^[0-9]+$ ]] || usage "the demo fleet's size is a number, not $workers"
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p var/log var/nats
nats_port="${FLEETWATCH_NATS_PORT:-4222}"
nats_url="nats://127.0.0.1:$nats_port"

if (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null; then
  echo "up: port $nats_port is taken; stop what runs there (or set FLEETWATCH_NATS_PORT)" >&2
  exit 1
fi

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "up: stopping"
  # Services first (they drain and save snapshots), nats-server last.
  for pid in "${pids[@]:1}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:1}"; do wait "$pid" 2>/dev/null || true; done
  kill -TERM "${pids[0]}" 2>/dev/null || true
  wait "${pids[0]}" 2>/dev/null || true
  echo "up: stopped"
  exit 0
}
trap stop INT TERM EXIT

# Its own session: a ctrl-c in the terminal reaches the services, and the server stays up
# until they have drained and saved their snapshots (stop() ends it last).
# GOMEMLIMIT: the Go runtime otherwise lets the heap grow to twice what is live before it
# collects, so the server's memory climbs for minutes under load before it levels off.
GOMEMLIMIT="${FLEETWATCH_NATS_MEMORY_LIMIT:-768MiB}" \
  setsid nats-server -js -sd var/nats -a 127.0.0.1 -p "$nats_port" >var/log/nats-server.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break
  sleep 0.1
done

common+=(--nats-url "$nats_url")
# Each service under deploy/supervise.sh: one that dies is started again (with backoff,
# logged to its log file), instead of stopping the system.
service() {
  local name="$1"
  shift
  deploy/supervise.sh "$name" "$bin/fleetwatch-$name" "${common[@]}" "$@" >"var/log/$name.log" 2>&1 &
  pids+=($!)
}
service collector --demo-workers "$workers" "${collector[@]}"
service processor
service alerter "${alerter[@]}"
service archiver --db-path "$db_path"
service gateway "${gateway[@]}"

port="${FLEETWATCH_GATEWAY__PORT:-8082}"
for ((i = 0; i < ${#gateway[@]}; i++)); do
  [ "${gateway[$i]}" = --port ] && port="${gateway[$((i + 1))]}"
done
echo "up: nats-server on $nats_url, a demo fleet of $workers workers"
echo "up: dashboard on http://localhost:$port  (logs in var/log/, ctrl-c stops)"
# The services restart on their own; without nats-server nothing works, so its end ends all.
wait "${pids[0]}" || true
echo "up: nats-server stopped; see var/log/nats-server.log" >&2
