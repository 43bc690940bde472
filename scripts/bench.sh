#!/usr/bin/env bash
# Reproduces BENCHMARKS.md: builds Usher and usher-load in release, starts nginx (the HTTP and file
# ceilings), Usher on the embedded store, and — when the build has the Redis backend — redis-server with
# redis-benchmark (the Redis ceiling) and Usher on Redis; then runs, in rounds, each Usher figure next to its
# ceiling with the same load tool, and the viewer scenarios (40,000 viewers, doors open, sharing attack).
# Writes every report as JSON under the output folder and a summary (medians, ratios) to summary.md.
#
#   scripts/bench.sh [--rounds N] [--duration S] [--concurrency C] [--viewers N] [--out DIR] [--quick]
#                    [--only viewers]
#
# --quick: 1 round of 3 s, 2,000 viewers; a check that the script works, not a measurement.
# --only viewers: the viewer scenarios alone (40,000 viewers, doors open, memory, sharing attack), without
#   the throughput rounds and the Redis rows; each scenario's summary counts its 429 answers.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

rounds=3 duration=10 warmup=2 concurrency=32 viewers=40000 connections=4000 out="" quick=0 only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --viewers) viewers="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --quick) quick=1; shift ;;
    --only) only="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$only" in "" | viewers) ;; *) echo "--only takes: viewers" >&2; exit 2 ;; esac
if [ "$quick" = 1 ]; then rounds=1 duration=3 warmup=1 viewers=2000 connections=500; fi
out="${out:-$root/target/bench/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
work="$(mktemp -d /tmp/usher-bench.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx/nginx.pid" ] && kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
if [ ${#need[@]} -gt 0 ]; then
  step "installing ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

step "machine"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo "not a git checkout") ($(git status --porcelain 2>/dev/null | wc -l) paths differ from it)"
  echo "nproc: $(nproc)"
  echo "model: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "memory: $(free -h | awk '/Mem:/ {print $2}')"
  echo "kernel: $(uname -r)"
  echo "open files: soft $(ulimit -Sn), hard $(ulimit -Hn)"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "nginx: $("$NGINX" -v 2>&1 | sed 's/.*: //')"
  echo "redis: $(redis-server --version | awk '{print $3}')"
  echo "rustc: $(rustc --version)"
} | tee "$out/machine.txt" >&2

step "release build"
cargo build --release --locked -p usher-server -p usher-load >&2 || cargo build --release -p usher-server -p usher-load >&2
target="${CARGO_TARGET_DIR:-$root/target}/release"
USHER="$target/usher"
LOAD="$target/usher-load"

step "nginx: return 200 and sendfile of media/ on 127.0.0.1:18081"
mkdir -p "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  types { video/mp2t ts; application/vnd.apple.mpegurl m3u8; }
  server {
    listen 127.0.0.1:18081 backlog=4096;
    location = /ok { return 200 "ok"; }
    location /media/ { alias $root/media/; }
  }
}
EOF
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf"
for _ in $(seq 50); do curl -sf http://127.0.0.1:18081/ok >/dev/null && break; sleep 0.1; done
NGINX_PID="$(cat "$work/nginx/nginx.pid")"

start_demo() { # $1: data dir → sets DEMO_PID, BASE, ADMIN, TICKETS
  "$USHER" demo --json --listen 127.0.0.1:0 --data-dir "$1" --media-dir "$root/media" >"$work/demo.json" 2>"$work/demo.err" &
  DEMO_PID=$!
  pids+=("$DEMO_PID")
  for _ in $(seq 300); do [ -s "$work/demo.json" ] && break; sleep 0.1; done
  BASE="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["base_url"])' "$work/demo.json")"
  ADMIN="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin_key"])' "$work/demo.json")"
  TICKETS="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tickets_key"])' "$work/demo.json")"
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# A measured step: usher-load with --check exits non-zero on any error (throughput runs) or a failed check
# (viewer scenarios); the run goes on so every figure is written, then ends with status 1 naming the steps
# that failed, so a run with errors never passes for a measurement.
failed=()
measure() { # $1: step name; the rest: usher-load's arguments
  local name="$1"; shift
  "$LOAD" "$@" --check >&2 || failed+=("$name")
}

segs=()
for f in "$root"/media/demo/360p/*.ts; do segs+=(--url "http://127.0.0.1:18081/media/demo/360p/$(basename "$f")"); done
tp=(--concurrency "$concurrency" --duration-s "$duration" --warmup-s "$warmup")

if [ "$only" != viewers ]; then
step "usher (embedded store)"
start_demo "$work/data-embedded"
U=(--base-url "$BASE" --tickets-key "$TICKETS" --admin-key "$ADMIN" --server-pid "$DEMO_PID")
echo "usher pid $DEMO_PID at $BASE" >&2

for r in $(seq "$rounds"); do
  step "round $r/$rounds: ceilings and Usher, same tool, same connections"
  measure "tp-nginx-200-$r" get --url http://127.0.0.1:18081/ok "${tp[@]}" --server-pid "$NGINX_PID" --json "$out/tp-nginx-200-$r.json"
  measure "tp-usher-livez-$r" get --url "$BASE/livez" "${tp[@]}" --server-pid "$DEMO_PID" --json "$out/tp-usher-livez-$r.json"
  measure "tp-usher-heartbeat-$r" saturate --op heartbeat "${U[@]}" "${tp[@]}" --json "$out/tp-usher-heartbeat-$r.json"
  measure "tp-usher-admit-$r" saturate --op admit "${U[@]}" "${tp[@]}" --tickets 20000 --json "$out/tp-usher-admit-$r.json"
  # the same loop on tickets that are each admitted once (a first admit, as at doors open; above, every
  # admit of the 20,000 tickets after the first round takes a seat over)
  measure "tp-usher-firstadmit-$r" saturate --op admit "${U[@]}" "${tp[@]}" --tickets $((viewers * 15 / 2)) --json "$out/tp-usher-firstadmit-$r.json"
  measure "tp-nginx-sendfile-$r" get "${segs[@]}" "${tp[@]}" --server-pid "$NGINX_PID" --json "$out/tp-nginx-sendfile-$r.json"
  measure "tp-usher-segment-$r" saturate --op segment "${U[@]}" "${tp[@]}" --json "$out/tp-usher-segment-$r.json"
done

step "wrk cross-check of the HTTP ceiling (a second load tool)"
wrk -t1 -c"$concurrency" -d"${duration}s" http://127.0.0.1:18081/ok >"$out/wrk-nginx-200.txt" 2>&1 || true
wrk -t1 -c"$concurrency" -d"${duration}s" "$BASE/livez" >"$out/wrk-usher-livez.txt" 2>&1 || true
stop_pid "$DEMO_PID"
fi

step "viewers: $viewers viewers, heartbeat 15 s, steering reload 30 s, ramp 20 s, 60 s steady, over $connections connections"
start_demo "$work/data-viewers"
U=(--base-url "$BASE" --tickets-key "$TICKETS" --admin-key "$ADMIN" --server-pid "$DEMO_PID")
steady=60; [ "$quick" = 1 ] && steady=10
measure "viewers-steady" "${U[@]}" --viewers "$viewers" --heartbeat-s 15 --steering-s 30 --ramp-s 20 --duration-s "$steady" --connections "$connections" --json "$out/viewers-steady.json"
stop_pid "$DEMO_PID"

step "doors open: $viewers admits within 10 s"
start_demo "$work/data-doors"
U=(--base-url "$BASE" --tickets-key "$TICKETS" --admin-key "$ADMIN" --server-pid "$DEMO_PID")
measure "viewers-doors" "${U[@]}" --viewers "$viewers" --heartbeat-s 15 --doors-open-s 10 --duration-s 20 --connections "$connections" --json "$out/viewers-doors.json"
stop_pid "$DEMO_PID"

mem_viewers=$((viewers * 5 / 2))
step "memory: $mem_viewers sessions over 200 connections (heartbeat 60 s), so the connections' buffers weigh little"
start_demo "$work/data-memory"
U=(--base-url "$BASE" --tickets-key "$TICKETS" --admin-key "$ADMIN" --server-pid "$DEMO_PID")
measure "viewers-memory" "${U[@]}" --viewers "$mem_viewers" --heartbeat-s 60 --doors-open-s 20 --duration-s 10 --connections 200 --json "$out/viewers-memory.json"
stop_pid "$DEMO_PID"

step "sharing attack: 3 devices per ticket, k = 1"
start_demo "$work/data-share"
U=(--base-url "$BASE" --tickets-key "$TICKETS" --admin-key "$ADMIN" --server-pid "$DEMO_PID")
measure "viewers-share" "${U[@]}" --viewers $((viewers / 4)) --share-devices 3 --heartbeat-s 5 --doors-open-s 5 --duration-s 20 --connections "$connections" --json "$out/viewers-share.json"
stop_pid "$DEMO_PID"

if [ "$only" != viewers ]; then
step "Redis: redis-benchmark ceiling, then Usher on Redis"
mkdir -p "$work/redis"
redis-server --port 0 --unixsocket "$work/redis/redis.sock" --unixsocketperm 700 --save "" --appendonly no \
  --daemonize no >"$work/redis/log" 2>&1 &
REDIS_PID=$!
pids+=("$REDIS_PID")
for _ in $(seq 50); do redis-cli -s "$work/redis/redis.sock" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-benchmark -s "$work/redis/redis.sock" -c "$concurrency" -n 200000 -q --csv -t set,get,incr \
  >"$out/redis-benchmark.csv" 2>&1 || true
redis-benchmark -s "$work/redis/redis.sock" -c "$concurrency" -n 200000 -q --csv \
  eval "redis.call('hset', KEYS[1], 'f', ARGV[1]); return redis.call('hget', KEYS[1], 'f')" 1 lease:__rand_int__ x \
  >>"$out/redis-benchmark.csv" 2>&1 || true
cat >"$work/redis/usher.toml" <<EOF
listen = "127.0.0.1:18090"
data_dir = "$work/redis/data"
media_dir = "$root/media"
[store]
kind = "redis"
url = "redis+unix://$work/redis/redis.sock"
[secrets]
token_key = "$(openssl rand -hex 32)"
grant_key = "$(openssl rand -hex 32)"
[log]
level = "warn"
EOF
if RADMIN="$("$USHER" api-key create --config "$work/redis/usher.toml" --name bench --scope admin 2>"$out/redis-usher.err")" &&
  RTICKETS="$("$USHER" api-key create --config "$work/redis/usher.toml" --name bench --scope tickets 2>>"$out/redis-usher.err")"; then
  "$USHER" serve --config "$work/redis/usher.toml" 2>>"$out/redis-usher.err" &
  RUSHER_PID=$!
  pids+=("$RUSHER_PID")
  for _ in $(seq 100); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.1; done
  R=(--base-url http://127.0.0.1:18090 --tickets-key "$RTICKETS" --admin-key "$RADMIN" --server-pid "$RUSHER_PID")
  for r in $(seq "$rounds"); do
    step "Redis round $r/$rounds"
    measure "tp-redis-nginx-200-$r" get --url http://127.0.0.1:18081/ok "${tp[@]}" --server-pid "$NGINX_PID" --json "$out/tp-redis-nginx-200-$r.json"
    measure "tp-redis-heartbeat-$r" saturate --op heartbeat "${R[@]}" "${tp[@]}" --json "$out/tp-redis-heartbeat-$r.json"
    measure "tp-redis-admit-$r" saturate --op admit "${R[@]}" "${tp[@]}" --tickets 20000 --json "$out/tp-redis-admit-$r.json"
  done
  stop_pid "$RUSHER_PID"
else
  echo "Usher on Redis could not start (see redis-usher.err): Redis rows not measured" | tee "$out/redis-not-measured.txt" >&2
  failed+=("usher-on-redis")
fi
stop_pid "$REDIS_PID"
fi

step "summary"
python3 - "$out" <<'PY' | tee "$out/summary.md"
import glob, json, os, statistics, sys
out = sys.argv[1]
def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
def rounds(name):
    rs = [load(p) for p in sorted(glob.glob(os.path.join(out, f"tp-{name}-*.json")))]
    return [r for r in rs if r and r.get("ops")]
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def fig(name):
    rs = rounds(name)
    if not rs:
        return None
    op = [r["ops"][0] for r in rs]
    return {
        "n": len(rs),
        "rate": med([o["rate_per_s"] for o in op]),
        "rates": [round(o["rate_per_s"]) for o in op],
        "mbps": med([o["items_per_s"] / 1e6 for o in op]),
        "p50": med([o["latency_ms"]["p50"] for o in op]),
        "p99": med([o["latency_ms"]["p99"] for o in op]),
        "errors": sum(o["errors"] for o in op),
        "cores": med([(r.get("server") or {}).get("cores") for r in rs]),
        "tool": med([(r.get("tool") or {}).get("cores") for r in rs]),
    }
def show(label, f, ceiling=None, unit="rate"):
    if f is None:
        print(f"| {label} | not measured | | | | | |")
        return
    v = f["mbps"] if unit == "mbps" else f["rate"]
    ratio = ""
    if ceiling is not None:
        c = ceiling["mbps"] if unit == "mbps" else ceiling["rate"]
        ratio = f"{v / c:.2f}x" if c else ""
    u = "MB/s" if unit == "mbps" else "req/s"
    print(f"| {label} | {v:,.1f} {u} (runs: {', '.join(f'{x:,}' for x in f['rates'])}) | {ratio} | {f['p50']:.2f} | {f['p99']:.2f} | {f['errors']} | {f['cores'] or 0:.2f} / {f['tool'] or 0:.2f} |")
print("## Throughput (closed loop, medians of rounds)\n")
print("| what | median | vs ceiling | p50 ms | p99 ms | errors | server / tool cores |")
print("| --- | --- | --- | --- | --- | --- | --- |")
ng = fig("nginx-200")
show("nginx `return 200` (HTTP ceiling)", ng)
show("Usher `/livez`", fig("usher-livez"), ng)
show("Usher heartbeat, embedded", fig("usher-heartbeat"), ng)
show("Usher admit, embedded (takeovers of 20,000 tickets)", fig("usher-admit"), ng)
show("Usher admit, embedded (first admit of each ticket)", fig("usher-firstadmit"), ng)
sf = fig("nginx-sendfile")
show("nginx sendfile of the segments (file ceiling)", sf, unit="mbps")
show("Usher origin `/o/{grant}/...` segments", fig("usher-segment"), sf, unit="mbps")
rng = fig("redis-nginx-200")
show("nginx `return 200` (during the Redis rounds)", rng)
show("Usher heartbeat, Redis", fig("redis-heartbeat"), rng)
show("Usher admit, Redis", fig("redis-admit"), rng)
print("\n## Viewer scenarios\n")
for name in ["steady", "doors", "memory", "share"]:
    r = load(os.path.join(out, f"viewers-{name}.json"))
    if not r:
        print(f"- {name}: no report")
        continue
    c = r["config"]
    print(f"### {name}: {c['viewers']} viewers, {c['arrival']}, {c['duration_s']} s steady, devices per ticket {c['devices_per_ticket']}, {r['connections']} connections: {'PASSED' if r['passed'] else 'FAILED'}\n")
    print("| op | requests | errors | rate/s | p50 ms | p99 ms | p99.9 ms | max ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for o in r["ops"]:
        l = o["latency_ms"]
        print(f"| {o['op']} | {o['requests']} | {o['errors']} {o['error_kinds'] or ''} | {o['rate_per_s']:.0f} | {l['p50']:.2f} | {l['p99']:.2f} | {l['p999']:.2f} | {l['max']:.2f} |")
    ch = r["checks"]
    limited = sum(n for o in r["ops"] for k, n in (o["error_kinds"] or {}).items() if "rate_limited" in k or "429" in k)
    print(f"\nrefused by rate limits (429): {limited}")
    print(f"peak live sessions {r['peak_live_sessions']}, false refusals {ch['false_refusals']}, over-admissions {ch['over_admissions']} in {ch['rounds_checked']} rounds, expected refusals {ch['expected_refusals']}")
    s = r.get("server")
    if s:
        print("server: " + "; ".join(f"{p['phase']} {p['seconds']:.0f} s {p['cores']:.2f} cores {p['rss_mib']:.0f} MiB" for p in s["phases"]))
        print(f"RSS before {s['rss_before_mib']:.0f} MiB, steady {s['rss_steady_mib']:.0f} MiB, peak {s['rss_peak_mib']:.0f} MiB: {s['bytes_per_session']:.0f} bytes per session")
    print("load tool: " + "; ".join(f"{p['phase']} {p['cores']:.2f} cores" for p in r["tool"]) + "\n")
print("## redis-benchmark (unix socket)\n")
try:
    print("```\n" + open(os.path.join(out, "redis-benchmark.csv")).read() + "```")
except OSError:
    print("not measured")
print("\n## wrk cross-check\n")
for f in ["wrk-nginx-200.txt", "wrk-usher-livez.txt"]:
    try:
        lines = [l.strip() for l in open(os.path.join(out, f)) if "Requests/sec" in l or "Latency" in l]
        print(f"- {f}: " + " | ".join(lines))
    except OSError:
        pass
PY
echo "reports in $out" >&2
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s (errors or failed checks: see their reports and summary.md)\n' "${failed[*]}" | tee -a "$out/summary.md" >&2
  exit 1
fi
