#!/usr/bin/env bash
# Before `just test` builds anything: the programs the tests talk to that this project
# cannot fetch itself (Debian packages). Missing ones stop the run at once with the one
# command that installs them. CHROMIUM, PROMTOOL and ALERTMANAGER override the paths.
set -euo pipefail
missing=()
found() { [ -x "$1" ] || command -v "$1" >/dev/null 2>&1; }
found "${CHROMIUM:-chromium}" || missing+=(chromium)
found "${PROMTOOL:-promtool}" || missing+=(prometheus)
found "${ALERTMANAGER:-prometheus-alertmanager}" || missing+=(prometheus-alertmanager)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# The NATS TLS test makes its certificates with it.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# The systemd units are checked with systemd-analyze.
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test: the tests need ${missing[*]}; install with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
