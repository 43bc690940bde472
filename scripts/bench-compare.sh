#!/usr/bin/env bash
# Compares the hot paths of two Usher builds in one run, each next to nginx `return 200` measured in the
# same rounds with the same load tool (usher-load): saturated heartbeat, admit (seat takeovers) and
# segment, round by round in turn (nginx, base, new), so a noisy machine moves all three alike. Prints
# medians, p99 and each build's ratio to nginx; for a refactor, the new/base ratio should stay near 1.
#
#   scripts/bench-compare.sh --base DIR --new DIR [--load BIN] [--rounds N] [--duration S] [--out DIR]
#
# DIR: a folder holding a release `usher` binary (e.g. $CARGO_TARGET_DIR/release of each checkout);
# --load: the usher-load binary (default: the new build's). Build both with
# `cargo build --release --locked -p usher-server -p usher-load` first; nothing else may run meanwhile.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

base="" new="" load="" rounds=3 duration=10 warmup=2 concurrency=32 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base="$2"; shift 2 ;;
    --new) new="$2"; shift 2 ;;
    --load) load="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$base/usher" ] && [ -x "$new/usher" ] || { echo "give --base DIR and --new DIR holding usher binaries" >&2; exit 2; }
LOAD="${load:-$new/usher-load}"
[ -x "$LOAD" ] || { echo "no usher-load at $LOAD" >&2; exit 2; }
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx
}
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
out="${out:-$root/target/bench-compare/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
work="$(mktemp -d /tmp/usher-compare.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx/nginx.pid" ] && kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server { listen 127.0.0.1:18082 backlog=4096; location = /ok { return 200 "ok"; } }
}
EOF
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf"
for _ in $(seq 50); do curl -sf http://127.0.0.1:18082/ok >/dev/null && break; sleep 0.1; done
NGINX_PID="$(cat "$work/nginx/nginx.pid")"

start_demo() { # $1: name, $2: bin dir → writes $work/$1.env
  mkdir -p "$work/$1"
  "$2/usher" demo --json --listen 127.0.0.1:0 --data-dir "$work/$1/data" --media-dir "$root/media" \
    >"$work/$1/demo.json" 2>"$work/$1/demo.err" &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 300); do [ -s "$work/$1/demo.json" ] && break; sleep 0.1; done
  python3 - "$work/$1/demo.json" "$pid" >"$work/$1.env" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f'BASE={d["base_url"]} ADMIN={d["admin_key"]} TICKETS={d["tickets_key"]} PID={sys.argv[2]}')
PY
}
start_demo base "$base"
start_demo new "$new"
tp=(--concurrency "$concurrency" --duration-s "$duration" --warmup-s "$warmup")
for r in $(seq "$rounds"); do
  echo "==> round $r/$rounds" >&2
  "$LOAD" get --url http://127.0.0.1:18082/ok "${tp[@]}" --server-pid "$NGINX_PID" --json "$out/nginx-200-$r.json" >&2
  for b in base new; do
    # shellcheck disable=SC1090
    eval "$(cat "$work/$b.env")"
    U=(--base-url "$BASE" --tickets-key "$TICKETS" --admin-key "$ADMIN" --server-pid "$PID")
    "$LOAD" saturate --op heartbeat "${U[@]}" "${tp[@]}" --json "$out/$b-heartbeat-$r.json" >&2
    "$LOAD" saturate --op admit "${U[@]}" "${tp[@]}" --tickets 20000 --json "$out/$b-admit-$r.json" >&2
    "$LOAD" saturate --op segment "${U[@]}" "${tp[@]}" --json "$out/$b-segment-$r.json" >&2
  done
done

python3 - "$out" <<'PY' | tee "$out/summary.md"
import glob, json, os, statistics, sys
out = sys.argv[1]
def runs(name):
    ops = []
    for p in sorted(glob.glob(os.path.join(out, f"{name}-*.json"))):
        r = json.load(open(p))
        if r.get("ops"):
            ops.append(r["ops"][0])
    return ops
def med(xs):
    return statistics.median(xs) if xs else float("nan")
nginx = med([o["rate_per_s"] for o in runs("nginx-200")])
print(f"nginx return 200: {nginx:,.0f} req/s (median of rounds)\n")
print("| path | build | req/s (median) | rounds | p99 ms | errors | × nginx |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for path in ["heartbeat", "admit", "segment"]:
    rates = {}
    for b in ["base", "new"]:
        ops = runs(f"{b}-{path}")
        rate = med([o["rate_per_s"] for o in ops])
        rates[b] = rate
        p99 = med([o["latency_ms"]["p99"] for o in ops])
        errors = sum(o["errors"] for o in ops)
        each = ", ".join(f"{o['rate_per_s']:,.0f}" for o in ops)
        print(f"| {path} | {b} | {rate:,.0f} | {each} | {p99:.2f} | {errors} | {rate / nginx:.2f} |")
    print(f"| {path} | new/base | {rates['new'] / rates['base']:.2f} | | | | |")
PY
