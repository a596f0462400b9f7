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
#   --cluster           three nats-servers routed to each other (4222-4224, routes on
#                       6222-6224, stores var/nats/n0..n2); every stream three replicas
set -euo pipefail
bin="${1:?the directory of the built binaries}"
shift
workers="${FLEETWATCH_DEMO_WORKERS:-24}"
gateway=(--port "${FLEETWATCH_GATEWAY__PORT:-8082}")
collector=()
alerter=()
db_path=var/fleetwatch.duckdb
common=()
servers=1
usage() {
  echo "up: $1" >&2
  echo "usage: just up [WORKERS] [--host H] [--port P] [--theme light|dark] [--refresh S] [--output-dir D]" >&2
  echo "               [--browser] [--real-time] [--insecure] [--coordinator URL] [--no-alerts] [--db-path PATH] [--debug]" >&2
  echo "               [--cluster]" >&2
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
    --cluster) servers=3 ;;
    *) usage "unknown option $1" ;;
  esac
  shift
done
[[ "$workers" =~ ^[0-9]+$ ]] || usage "the demo fleet's size is a number, not $workers"
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p var/log var/nats
nats_port="${FLEETWATCH_NATS_PORT:-4222}"
urls=() routes=()
for ((i = 0; i < servers; i++)); do
  urls+=("nats://127.0.0.1:$((nats_port + i))")
  routes+=("nats://127.0.0.1:$((6222 + i))")
  if (exec 3<>"/dev/tcp/127.0.0.1/$((nats_port + i))") 2>/dev/null; then
    echo "up: port $((nats_port + i)) is taken; stop what runs there (or set FLEETWATCH_NATS_PORT)" >&2
    exit 1
  fi
done
nats_url=$(IFS=,; echo "${urls[*]}")

nats_pids=() pids=()
stop() {
  # Ignore a second signal rather than die of it halfway: a TERM to the whole group reaches
  # this script twice (just forwards its own), and a second ctrl-c would orphan nats-server.
  trap '' INT TERM
  trap - EXIT
  echo; echo "up: stopping"
  # Services first (they drain and save snapshots), nats-server last.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for pid in "${nats_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${nats_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "up: stopped"
  exit 0
}
trap stop INT TERM EXIT

# Each in its own session: a ctrl-c in the terminal reaches the services, and the servers
# stay up until they have drained and saved their snapshots (stop() ends them last).
# GOMEMLIMIT: the Go runtime otherwise lets the heap grow to twice what is live before it
# collects, so the server's memory climbs for minutes under load before it levels off.
for ((i = 0; i < servers; i++)); do
  args=(-js -a 127.0.0.1 -p "$((nats_port + i))")
  if [ "$servers" -eq 1 ]; then
    args+=(-sd var/nats) log=var/log/nats-server.log
  else
    args+=(-sd "var/nats/n$i" -n "n$i" --cluster_name fleetwatch --cluster "${routes[$i]}")
    args+=(--routes "$(IFS=,; echo "${routes[*]}")") log="var/log/nats-server-$i.log"
  fi
  GOMEMLIMIT="${FLEETWATCH_NATS_MEMORY_LIMIT:-768MiB}" setsid nats-server "${args[@]}" >"$log" 2>&1 &
  nats_pids+=($!)
done
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break
  sleep 0.1
done
# A cluster creates streams only once it has elected its JetStream leader; every stream and
# bucket then has a replica on each server.
if [ "$servers" -gt 1 ]; then
  export FLEETWATCH_NATS__REPLICAS=3
  for _ in $(seq 150); do
    grep -q "JetStream cluster new metadata leader\|Self is new JetStream cluster metadata leader" var/log/nats-server-*.log && break
    sleep 0.2
  done
fi

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
# The services restart on their own; without nats-server nothing works, so its end ends all
# (in a cluster, the end of all three).
wait "${nats_pids[@]}" || true
echo "up: nats-server stopped; see var/log/nats-server*.log" >&2
