#!/usr/bin/env bash
# Starts the compose stack: writes .env (the nodes' secrets, Grafana's admin password) and metrics-token
# (Prometheus's copy of the metrics token) beside compose.yaml the first time, then `docker compose up -d`
# with the arguments given (e.g. --profile monitoring). Keep .env: a new token_key invalidates every
# ticket and API key stored in the stack's Redis.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -f .env ]; then
  umask 077
  metrics_token="$(openssl rand -hex 24)"
  {
    echo "USHER_TOKEN_KEY=$(openssl rand -hex 32)"
    echo "USHER_GRANT_KEY=$(openssl rand -hex 32)"
    echo "USHER_METRICS_TOKEN=$metrics_token"
    echo "GRAFANA_ADMIN_PASSWORD=$(openssl rand -hex 12)"
  } >.env
  printf '%s' "$metrics_token" >metrics-token
  # the Prometheus container reads it as another user
  chmod 644 metrics-token
  echo "wrote $(pwd)/.env and metrics-token"
fi
[ -f metrics-token ] || sed -n 's/^USHER_METRICS_TOKEN=//p' .env | tr -d '\n' >metrics-token
exec docker compose "$@" up -d
