#!/usr/bin/env bash
# Runs one service and starts it again when it fails, with backoff: 1 s, doubling to 30 s,
# back to 1 s once it has run for a minute. Each restart is logged to standard error and
# counted in FLEETWATCH_RESTARTS, which the service reports (/system shows it). SIGTERM or
# SIGINT stops the service and the supervisor without a restart; so does a clean exit.
#   deploy/supervise.sh NAME COMMAND [ARGS...]
set -uo pipefail
name="${1:?the service name}"
shift
child=0
stopping=0
stop() {
  stopping=1
  [ "$child" -gt 0 ] && kill -TERM "$child" 2>/dev/null
}
trap stop INT TERM

restarts=0
backoff=1
while :; do
  started=$SECONDS
  FLEETWATCH_RESTARTS=$restarts "$@" &
  child=$!
  # `wait` returns early when a trapped signal arrives: wait again for the child's end.
  wait "$child"
  status=$?
  while kill -0 "$child" 2>/dev/null; do
    wait "$child"
    status=$?
  done
  [ "$stopping" = 1 ] && exit 0
  # A clean exit was asked for (a signal to the service itself, as ctrl-c sends the whole
  # terminal): only a failure is restarted, as systemd's Restart=on-failure does.
  if [ "$status" = 0 ]; then
    echo "supervise: $name exited cleanly; not restarted" >&2
    exit 0
  fi
  if [ $((SECONDS - started)) -ge 60 ]; then
    backoff=1
  fi
  restarts=$((restarts + 1))
  echo "supervise: $name exited with status $status after $((SECONDS - started)) s; restart $restarts in $backoff s" >&2
  sleep "$backoff" &
  child=$!
  wait "$child" 2>/dev/null
  [ "$stopping" = 1 ] && exit 0
  backoff=$((backoff * 2 > 30 ? 30 : backoff * 2))
done
