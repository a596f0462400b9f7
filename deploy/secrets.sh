#!/usr/bin/env bash
# Prints a fresh set of fleetwatch's secrets as an environment file,
# `deploy/secrets.sh > deploy/secrets.env`, which Compose (`--env-file`) and Kubernetes (the
# Secret fleetwatch-secrets, made by deploy/kustomization.yaml) read: a NATS password per
# service, for agents and for people with the `nats` CLI (`admin`), the gateway's session
# secret, an operator token for the API and a token for the collector's HTTP ingest. The file keeps only the tokens' SHA-256 digests;
# the tokens themselves are printed once, on standard error, for whoever runs this.
set -euo pipefail
random() { openssl rand -hex 24; }
digest() { printf %s "$1" | sha256sum | cut -d' ' -f1; }

for who in COLLECTOR PROCESSOR ALERTER ARCHIVER GATEWAY AGENT ADMIN; do
  echo "FLEETWATCH_${who}_PASSWORD=$(random)"
done
echo "FLEETWATCH_GATEWAY__AUTH__SESSION_SECRET=$(random)"
api_token=$(random)
ingest_token=$(random)
echo "FLEETWATCH_GATEWAY__AUTH__TOKENS=[{name=\"admin\", role=\"operator\", sha256=\"$(digest "$api_token")\"}]"
echo "FLEETWATCH_COLLECTOR__HTTP__TOKEN_SHA256=[\"$(digest "$ingest_token")\"]"
{
  echo "secrets: the API's operator token (Authorization: Bearer ...): $api_token"
  echo "secrets: the collector's ingest token: $ingest_token"
  echo "secrets: people sign in once you add users: README, Security"
} >&2
