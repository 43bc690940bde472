#!/usr/bin/env bash
# The waiting room at full size (issue 20): a release Usher (embedded store, or Redis with `redis`) and
# `usher-load doors` — 5,000 viewers arriving at once at a show of capacity 1,000, the earliest leaving at
# 200 a second — with its checks and the latency of the waiting-room polls. The CI runs the small form
# (crates/usher-load/tests/smoke.rs); this is the one whose figures go in the notes.
#
# usage: scripts/doors-figures.sh [embedded|redis] [arrivals] [capacity] [leave per second]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
store="${1:-embedded}"
arrivals="${2:-5000}"
capacity="${3:-1000}"
leave="${4:-200}"
target="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release --locked -p usher-server -p usher-load >&2
work="$(mktemp -d /var/tmp/usher-doors-figures.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" || true
store_toml=""
if [ "$store" = redis ]; then
  port=$((20000 + RANDOM % 20000))
  redis-server --port "$port" --save '' --appendonly no --dir "$work" > "$work/redis.log" 2>&1 &
  pids+=($!)
  sleep 0.5
  store_toml=$'[store]\nkind = "redis"\nurl = "redis://127.0.0.1:'"$port"$'"'
fi
cat > "$work/usher.toml" <<TOML
listen = "127.0.0.1:0"
data_dir = "$work/data"
media_dir = "$root/media"
[secrets]
token_key = "doors-figures-token-key-0123456789abcdef0123"
grant_key = "doors-figures-grant-key-0123456789abcdef0123"
[log]
format = "json"
level = "warn,usher=info"
[rate_limits.ticket_lookup_failures]
per_minute = 0
$store_toml
TOML
admin=$("$target/release/usher" api-key create --name doors-admin --scope admin --config "$work/usher.toml" 2>/dev/null)
tickets=$("$target/release/usher" api-key create --name doors-site --scope tickets --config "$work/usher.toml" 2>/dev/null)
"$target/release/usher" serve --config "$work/usher.toml" 2> "$work/usher.log" &
pids+=($!)
base=""
for _ in $(seq 100); do
  base=$(grep -o '"listen":"[^"]*"' "$work/usher.log" 2>/dev/null | head -1 | cut -d'"' -f4 || true)
  [ -n "$base" ] && break
  sleep 0.2
done
[ -n "$base" ] || { cat "$work/usher.log" >&2; exit 1; }
base="http://$base"
"$target/release/usher-load" doors --base-url "$base" --admin-key "$admin" --tickets-key "$tickets" \
  --heartbeat-s 2 --arrivals "$arrivals" --capacity "$capacity" --leave-per-s "$leave" --connections 512 \
  --server-pid "${pids[-1]}" --check
