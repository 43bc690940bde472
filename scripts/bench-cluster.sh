#!/usr/bin/env bash
# Heartbeat throughput on one Redis against a Redis Cluster of 1 and of 3 masters (all on loopback), driven
# through the store as the server drives it: crates/usher-store/examples/redis_cluster_scale.rs. Prints, per
# setup, heartbeats per second, p50/p99 and the CPU each redis-server and the node spent per heartbeat.
#
#   scripts/bench-cluster.sh [--seconds S] [--flows F] [--tickets N]     (defaults 10, 256, 20,000)
#
# Needs redis-server and redis-cli (installed here when missing). On a 2-core machine three masters and
# the node share the cores: read the split of the Redis work over the masters, not only the total.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  apt-get install -y redis-server redis-tools >/dev/null
fi
cargo build --release --locked -p usher-store --example redis_cluster_scale
target="${CARGO_TARGET_DIR:-$root/target}"
exec "$target/release/examples/redis_cluster_scale" "$@"
