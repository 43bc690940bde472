#!/usr/bin/env bash
# Reproduces BENCHMARKS.md: builds Usher and usher-load in release, starts nginx (the HTTP and file
# ceilings), Usher on the embedded store, and — when the build has the Redis backend — redis-server with
# redis-benchmark (the Redis ceiling) and Usher on Redis; then runs, in rounds, each Usher figure next to its
# ceiling with the same load tool, the viewer scenarios (40,000 viewers, doors open, sharing attack), and
# the wrk rounds (below). Writes every report as JSON under the output folder and a summary (medians,
# ratios) to summary.md.
#
#   scripts/bench.sh [--rounds N] [--duration S] [--concurrency C] [--viewers N] [--out DIR] [--quick]
#                    [--only viewers|wrk] [--wrk-connections C] [--wrk-threads T] [--sessions N]
#                    [--stores embedded,redis] [--perf] [--perf-graph] [--redis-schema N] [--paths LIST] [--settle S]
#
# BENCH_USHER=/path/to/usher (environment): measure that server binary instead of this tree's build.
# BENCH_PERF_KEEP=1 (environment): with --perf, keep each round's perf.data in the output folder.
# --quick: 1 round of 3 s, 2,000 viewers, 2,000 sessions for wrk; a check that the script works, not a
#   measurement.
# --only viewers: the viewer scenarios alone (40,000 viewers, doors open, memory, sharing attack), without
#   the throughput rounds and the Redis rows; each scenario's summary counts its 429 answers.
# --stores: the stores the wrk rounds measure (default both: embedded,redis).
# --redis-schema N: stamp the wrk rounds' empty Redis with key layout N before Usher starts (this build
#   writes the layout a database is stamped with: 2 measures the build before's admit, which writes the
#   whole seats hash, against 3's admit by fields in the same build).
# --paths LIST: the wrk rounds measure only these paths (comma-separated: register, admit, heartbeat,
#   playlist, segment, livez), each with its ceiling; nginx `return 200` always runs.
# --settle S: the wrk rounds start S seconds after each prepare (default 0). Preparing registers and
#   admits every ticket, and the embedded store writes those tickets to disk in the seconds after: its
#   flush then shares the two cores with wrk and the server, and the first rounds' p99 shows it. With
#   --settle 40 the rounds measure the steady state instead (BENCHMARKS.md, issue 16's sixth step).
# --perf: in each wrk round of Usher, `perf record -F 499 -p <usher>` for the round's length, then the
#   server's flat profile (symbols of 0.5 % and more) in <round>.perf.txt, on the Redis store also
#   redis-server's in <round>.redis-perf.txt: what bounds a path. Sampling
#   costs the server a few per cent; compare ratios of runs made alike.
# --perf-graph: as --perf, with call graphs (`--call-graph dwarf`, 199 Hz): <round>.perf.txt then lists
#   each function with the share of samples under it (children included), which tells what one layer of
#   the stack costs with everything it calls. Unwinding costs the server more than --perf: ratios of such
#   rounds are not the table's.
# --only wrk: the wrk rounds alone. With the tool the design Usher replaces (nginx + Lua + Redis) was
#   measured with, `wrk -t T -c C -d S` (defaults 2, 256, --duration) and the Lua scripts of scripts/wrk/,
#   on each store (embedded, then Redis) with --sessions tickets and live sessions (default 100,000)
#   made by `usher-load prepare`: register one ticket, admit (a fresh device taking a seat over), heartbeat,
#   a signed media playlist and a signed 1 MiB segment from Usher's origin, /livez; and in the same rounds
#   the ceilings nginx `return 200`, nginx serving the same playlist as a static file and the same 1 MiB
#   file. Every answer of another status than the one expected fails the step. Both servers run
#   `usher serve` with one configuration (`usher demo` takes no settings) whose rate limits are raised so
#   far that they never refuse, still checked on every request: at the defaults the register round would
#   measure 429 answers (1,000 requests a second per API key), and so would the admit round (one address
#   may have 100 ticket lookups under way at once, and wrk's 256 connections all come from 127.0.0.1;
#   a ticket is admitted at most once a second after a burst of 30).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

rounds=3 duration=10 warmup=2 concurrency=32 viewers=40000 connections=4000 out="" quick=0 only=""
wrk_connections=256 wrk_threads=2 sessions=100000 stores="embedded,redis" perf=0 perf_graph=0 redis_schema="" paths="" settle=0
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
    --wrk-connections) wrk_connections="$2"; shift 2 ;;
    --wrk-threads) wrk_threads="$2"; shift 2 ;;
    --sessions) sessions="$2"; shift 2 ;;
    --stores) stores="$2"; shift 2 ;;
    --perf) perf=1; shift ;;
    --perf-graph) perf=1 perf_graph=1; shift ;;
    --settle) settle="$2"; shift 2 ;;
    --redis-schema) redis_schema="$2"; shift 2 ;;
    --paths) paths="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$only" in "" | viewers | wrk) ;; *) echo "--only takes: viewers, wrk" >&2; exit 2 ;; esac
case "$settle" in "" | *[!0-9]*) echo "--settle takes whole seconds" >&2; exit 2 ;; esac
if [ "$quick" = 1 ]; then rounds=1 duration=3 warmup=1 viewers=2000 connections=500 sessions=2000; fi
# which parts run
run_tp=0 run_viewers=0 run_wrk=0
case "$only" in
  "") run_tp=1 run_viewers=1 run_wrk=1 ;;
  viewers) run_viewers=1 ;;
  wrk) run_wrk=1 ;;
esac
# a heartbeat round renews each session one heartbeat at a time: each wrk thread needs more sessions than
# connections
if [ "$run_wrk" = 1 ] && { [ "$sessions" -lt $((2 * wrk_connections)) ] || [ "$wrk_connections" -lt "$wrk_threads" ]; }; then
  echo "--sessions must be at least twice --wrk-connections, and --wrk-connections at least --wrk-threads" >&2
  exit 2
fi
out="${out:-$root/target/bench/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
work="$(mktemp -d /tmp/usher-bench.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx/nginx.pid" ] && kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
  if [ -n "${wrk_www:-}" ]; then rm -rf "$wrk_www"; fi
}
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
if [ "$perf" = 1 ]; then command -v perf >/dev/null || need+=(linux-perf); fi
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

if [ -n "${BENCH_USHER:-}" ]; then
  # another build's server (e.g. the previous release's, for a before/after in one sitting), measured with
  # this tree's usher-load and scripts
  step "server: $BENCH_USHER (BENCH_USHER); building usher-load only"
  cargo build --release --locked -p usher-load >&2
  target="${CARGO_TARGET_DIR:-$root/target}/release"
  USHER="$BENCH_USHER"
else
  step "release build"
  # the binary embeds web/dist at compile time: a fresh checkout has none
  [ -d web/dist ] || scripts/build-web.sh >&2
  cargo build --release --locked -p usher-server -p usher-load >&2 || cargo build --release -p usher-server -p usher-load >&2
  target="${CARGO_TARGET_DIR:-$root/target}/release"
  USHER="$target/usher"
fi
LOAD="$target/usher-load"

step "nginx: return 200 and sendfile of media/ on 127.0.0.1:18081"
mkdir -p "$work/nginx/logs"
# the wrk rounds' static copies (a playlist, a 1 MiB segment), in a folder nginx's workers may read
wrk_www="$(mktemp -d /tmp/usher-bench-www.XXXXXX)"
chmod 755 "$wrk_www"
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
    location /wrk/ { alias $wrk_www/; }
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

if [ "$run_tp" = 1 ]; then
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

if [ "$run_viewers" = 1 ]; then
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
fi

REDIS_PID=""
start_redis() { # redis-server on a unix socket, once for the run → REDIS_PID
  [ -n "$REDIS_PID" ] && return 0
  mkdir -p "$work/redis"
  redis-server --port 0 --unixsocket "$work/redis/redis.sock" --unixsocketperm 700 --save "" --appendonly no \
    --daemonize no >"$work/redis/log" 2>&1 &
  REDIS_PID=$!
  pids+=("$REDIS_PID")
  for _ in $(seq 50); do redis-cli -s "$work/redis/redis.sock" ping >/dev/null 2>&1 && break; sleep 0.1; done
}

if [ "$run_tp" = 1 ]; then
step "Redis: redis-benchmark ceiling, then Usher on Redis"
start_redis
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
fi

if [ "$run_wrk" = 1 ]; then
# The wrk rounds: per store, a Usher with the same configuration, --sessions tickets with live sessions
# (usher-load prepare, again before each round after the first: the heartbeat round moves the secrets the
# files hold and the admit round takes seats over), then each Usher figure beside its nginx ceiling.
step "wrk rounds: wrk -t$wrk_threads -c$wrk_connections -d${duration}s, $sessions sessions"
echo "wrk -t$wrk_threads -c$wrk_connections -d${duration}s ($(wrk -v 2>&1 | head -1 | awk '{print $2}'))$([ "$settle" = 0 ] || echo ", rounds from $settle s after each prepare")" >"$out/wrk-config.txt"
wrk_media="$work/wrk-media"
mkdir -p "$wrk_media/demo/bench-1mib"
cp -R "$root/media/demo/." "$wrk_media/demo/"
# the segment row's file: 1 MiB of MPEG-TS (5,578 null packets, 1,048,664 bytes: the bytes a player fetches
# for a ~4 Mbit/s, 2 s segment; what they hold does not matter to a server), in the show's folder, under a
# media playlist of its own; nginx serves the same bytes for the ceiling
python3 - "$wrk_media/demo/bench-1mib" <<'PY'
import os, sys
d = sys.argv[1]
packet = bytes([0x47, 0x1F, 0xFF, 0x10]) + b"\xff" * 184
with open(os.path.join(d, "seg_000.ts"), "wb") as f:
    f.write(packet * 5578)
with open(os.path.join(d, "index.m3u8"), "w") as f:
    f.write("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:2.000,\nseg_000.ts\n#EXT-X-ENDLIST\n")
PY
cp "$wrk_media/demo/bench-1mib/seg_000.ts" "$wrk_www/seg_000.ts"
chmod 644 "$wrk_www/seg_000.ts"
seg_bytes="$(stat -c %s "$wrk_www/seg_000.ts")"

wrk_usher() { # $1: embedded | redis → WBASE, WPID, WADMIN, WTICKETS; non-zero when it could not start
  local store="$1" dir="$work/wrk-$1"
  mkdir -p "$dir"
  {
    echo "listen = \"127.0.0.1:18091\""
    echo "data_dir = \"$dir/data\""
    echo "media_dir = \"$wrk_media\""
    if [ "$store" = redis ]; then
      printf '[store]\nkind = "redis"\nurl = "redis+unix://%s"\nkey_prefix = "usher-wrk:"\n' "$work/redis/redis.sock"
    fi
    printf '[secrets]\ntoken_key = "%s"\ngrant_key = "%s"\n' "$(openssl rand -hex 32)" "$(openssl rand -hex 32)"
    printf '[log]\nlevel = "warn"\n'
    # never refusing, still checked on every request (see the top of this script); ticket lookups keep
    # their 10 failures a minute (the benchmark's tokens are all valid)
    printf '[rate_limits.api_key_requests]\nburst = 1000000\nper_minute = 1000000\n'
    printf '[rate_limits.admits_per_ticket]\nburst = 1000000\nper_minute = 1000000\n'
    printf '[rate_limits.ticket_lookup_failures]\nburst = 1000000\n'
  } >"$dir/usher.toml"
  WADMIN="$("$USHER" api-key create --config "$dir/usher.toml" --name bench --scope admin 2>>"$out/wrk-$store-usher.err")" || return 1
  WTICKETS="$("$USHER" api-key create --config "$dir/usher.toml" --name bench --scope tickets 2>>"$out/wrk-$store-usher.err")" || return 1
  "$USHER" serve --config "$dir/usher.toml" 2>>"$out/wrk-$store-usher.err" &
  WPID=$!
  pids+=("$WPID")
  WBASE=http://127.0.0.1:18091
  for _ in $(seq 100); do curl -sf "$WBASE/readyz" >/dev/null && return 0; sleep 0.1; done
  return 1
}

wrk_live() { # $1: report name: checks that --sessions sessions hold a seat (the dashboard's live viewers)
  local live
  live="$(curl -sf -H "Authorization: Bearer $WADMIN" "$WBASE/api/v1/dashboard" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["live_viewers"])' 2>/dev/null || echo "?")"
  echo "$1: $live live sessions" | tee -a "$out/wrk-$store-live.txt" >&2
  [ "$live" = "$sessions" ] || failed+=("$1")
}

wanted() { # $1: a wrk round's report name: is its path one of --paths (all when none; nginx-200 always)
  [ -z "$paths" ] && return 0
  local p="${1#wrk-"$store"-}"
  p="${p%-*}"
  p="${p#nginx-}"
  [ "$p" = 200 ] && return 0
  case ",$paths," in *",$p,"*) return 0 ;; esac
  return 1
}

wrk_run() { # $1: report name, $2: script of scripts/wrk, $3: URL, the rest: VAR=value for the script
  local name="$1" script="$2" url="$3"
  shift 3
  wanted "$name" || return 0
  # on the Redis store, Redis's own time per command (INFO commandstats, reset just before the run)
  [ "$store" = redis ] && case "$name" in *nginx*) ;; *) redis-cli -s "$work/redis/redis.sock" config resetstat >/dev/null
    awk '{print $14 + $15}' "/proc/$REDIS_PID/stat" >"$out/$name.redis-cpu-before"
    # how the node renewed and admitted: in transactions, or by the script and why
    # (usher_redis_renewals_total, usher_redis_admits_total)
    curl -s "$WBASE/metrics" | grep -E '^usher_redis_(renewals|admits)_total' >"$out/$name.renewals-before" || true ;; esac
  local perf_pid=""
  if [ "$perf" = 1 ]; then case "$name" in *nginx*) ;; *)
    local how=(-F 499)
    [ "$perf_graph" = 1 ] && how=(-F 199 --call-graph dwarf,16384)
    perf record -q "${how[@]}" -p "$WPID" -o "$work/$name.perf.data" -- sleep "$duration" >/dev/null 2>&1 &
    perf_pid=$!
    # on the Redis store, redis-server's own profile too: what its single thread spends a request on
    if [ "$store" = redis ]; then
      perf record -q "${how[@]}" -p "$REDIS_PID" -o "$work/$name.redis-perf.data" -- sleep "$duration" >/dev/null 2>&1 &
      perf_pid="$perf_pid $!"
    fi ;; esac
  fi
  env WRK_DATA="$wdata" WRK_THREADS="$wrk_threads" WRK_RUN="$(date +%s%N)" WRK_REPORT="$out/$name.json" "$@" \
    wrk -t"$wrk_threads" -c"$wrk_connections" -d"${duration}s" --timeout 10s --latency \
    -s "$root/scripts/wrk/$script.lua" "$url" >"$out/$name.txt" 2>&1 || true
  if [ -n "$perf_pid" ]; then
    # shellcheck disable=SC2086 # one or two pids
    wait $perf_pid || true
    local data
    for data in "$work/$name.perf.data" "$work/$name.redis-perf.data"; do
      [ -f "$data" ] || continue
      # the share of each program and the kernel, then the symbols (perf pads its columns: trimmed)
      { perf report -q -i "$data" --stdio --no-children --sort dso --percent-limit 0.5 -g none 2>/dev/null
        echo
        if [ "$perf_graph" = 1 ]; then
          # with what each calls; the runtime's and hyper's frames that wrap every request are kept, so the
          # top lines are the whole of it and the layers follow
          perf report -q -i "$data" --stdio --children --sort symbol --percent-limit 0.5 -g none 2>/dev/null |
            grep -Ev '\(inlined\)[[:space:]-]*$' | cut -c1-240
        else
          perf report -q -i "$data" --stdio --no-children --sort dso,symbol --percent-limit 0.5 2>/dev/null
        fi
      } | sed -E 's/[[:space:]-]+$//' >"$out/$(basename "${data%.data}").txt" || true
      # BENCH_PERF_KEEP=1 (environment): the recording stays beside the reports, for `perf report -i`
      if [ "${BENCH_PERF_KEEP:-}" = 1 ]; then mv "$data" "$out/"; else rm -f "$data"; fi
    done
  fi
  [ "$store" = redis ] && case "$name" in *nginx*) ;; *) redis-cli -s "$work/redis/redis.sock" info commandstats >"$out/$name.redis-commandstats.txt"
    # redis-server's CPU time over the run (clock ticks: utime + stime), the honest cost per request:
    # commandstats' usec are wall time, which the other processes of a saturated machine inflate
    echo "$(cat "$out/$name.redis-cpu-before") $(awk '{print $14 + $15}' "/proc/$REDIS_PID/stat") $(getconf CLK_TCK)" >"$out/$name.redis-cpu"
    curl -s "$WBASE/metrics" | grep -E '^usher_redis_(renewals|admits)_total' >"$out/$name.renewals-after" || true ;; esac
  python3 - "$out/$name.json" "$name" <<'PY' >&2 || failed+=("$name")
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    print(f"{sys.argv[2]}: no report (see {sys.argv[2]}.txt)")
    sys.exit(1)
e = r["errors"]
print(f"{sys.argv[2]}: {r['rate_per_s']:,.0f} req/s, {r['mb_per_s']:,.1f} MB/s, p99 {r['latency_ms']['p99']:.2f} ms; "
      f"socket errors {e['connect'] + e['read'] + e['write']}, timeouts {e['timeout']}, "
      f"answers other than {r['expect']}: {r['unexpected']}" + (f", statuses {r['statuses']}" if r.get("statuses") else "")
      + (f", unmatched {r['unmatched']}" if r.get("unmatched") else "") + (", SHORT ANSWERS" if r.get("short_answers") else ""))
sys.exit(0 if r["ok"] else 1)
PY
}

for store in ${stores//,/ }; do
  case "$store" in embedded | redis) ;; *) echo "--stores takes: embedded, redis" >&2; exit 2 ;; esac
  if [ "$store" = redis ]; then
    start_redis
    redis-cli -s "$work/redis/redis.sock" flushall >/dev/null
    if [ -n "$redis_schema" ]; then
      redis-cli -s "$work/redis/redis.sock" set usher-wrk:schema "$redis_schema" >/dev/null
    fi
  fi
  step "wrk rounds, $store store: Usher on 127.0.0.1:18091"
  if ! wrk_usher "$store"; then
    echo "Usher ($store) for the wrk rounds could not start (see wrk-$store-usher.err)" | tee "$out/wrk-$store-not-measured.txt" >&2
    failed+=("wrk-$store-usher")
    continue
  fi
  wdata="$work/wrk-$store/files"
  prep=(--base-url "$WBASE" --tickets-key "$WTICKETS" --admin-key "$WADMIN" --heartbeat-s 300
    --sessions "$sessions" --segment bench-1mib/seg_000.ts --out "$wdata")
  # Redis's memory before the tickets and after the first prepare: what a ticket with a live session costs
  redis_memory() { redis-cli -s "$work/redis/redis.sock" info memory | tr -d '\r' | sed -n 's/^used_memory://p'; }
  [ "$store" = redis ] && redis_memory >"$out/wrk-redis-memory-empty.txt"
  for r in $(seq "$rounds"); do
    step "wrk round $r/$rounds, $store: $sessions sessions $([ "$r" = 1 ] && echo made || echo admitted again)"
    again=()
    [ "$r" -gt 1 ] && again=(--again)
    if ! "$LOAD" prepare "${prep[@]}" "${again[@]}" --json "$out/wrk-$store-prepare-$r.json" >&2; then
      failed+=("wrk-$store-prepare-$r")
      break
    fi
    [ "$store" = redis ] && [ "$r" = 1 ] && redis_memory >"$out/wrk-redis-memory-prepared.txt"
    wrk_live "wrk-$store-live-prepared-$r"
    sleep "$settle"
    # nginx's static copies: the playlist as Usher answered it, and the same 1 MiB file
    cp "$wdata/playlist.m3u8" "$wrk_www/playlist.m3u8"
    chmod 644 "$wrk_www/playlist.m3u8"
    cmp -s "$wdata/segment.bin" "$wrk_www/seg_000.ts" || { echo "Usher's origin answered another segment" >&2; failed+=("wrk-$store-segment-bytes"); }
    echo /wrk/playlist.m3u8 >"$wdata/nginx-playlist.txt"
    echo /wrk/seg_000.ts >"$wdata/nginx-segment.txt"
    # the media rounds first, while every grant is young (a 300 s heartbeat interval gives 600 s grants)
    wrk_run "wrk-$store-nginx-playlist-$r" playlist http://127.0.0.1:18081/ WRK_PATHS=nginx-playlist.txt
    wrk_run "wrk-$store-playlist-$r" playlist "$WBASE/"
    wrk_run "wrk-$store-nginx-segment-$r" segment http://127.0.0.1:18081/ WRK_PATHS=nginx-segment.txt WRK_MIN_BYTES="$seg_bytes"
    wrk_run "wrk-$store-segment-$r" segment "$WBASE/" WRK_MIN_BYTES="$seg_bytes"
    wrk_run "wrk-$store-heartbeat-$r" heartbeat "$WBASE/"
    wrk_run "wrk-$store-nginx-200-$r" get http://127.0.0.1:18081/ok
    wrk_run "wrk-$store-livez-$r" get "$WBASE/livez"
    wrk_run "wrk-$store-register-$r" register "$WBASE/" WRK_EXPECT=201 WRK_TICKETS_KEY="$WTICKETS"
    wrk_run "wrk-$store-admit-$r" admit "$WBASE/" WRK_EXPECT=201
    # every ticket still holds one seat (an admit took it over), none lapsed
    wrk_live "wrk-$store-live-end-$r"
  done
  curl -s "$WBASE/metrics" >"$out/wrk-$store-metrics.txt" || true
  grep -E '^VmRSS|^VmHWM' "/proc/$WPID/status" >"$out/wrk-$store-rss.txt" 2>/dev/null || true
  stop_pid "$WPID"
done
fi
if [ -n "$REDIS_PID" ]; then stop_pid "$REDIS_PID"; fi

step "summary"
python3 - "$out" "$run_tp" "$run_viewers" <<'PY' | tee "$out/summary.md"
import glob, json, os, statistics, sys
out = sys.argv[1]
# the parts that ran (--only): a part that did not run has no section
run_tp, run_viewers = sys.argv[2] == "1", sys.argv[3] == "1"
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
if run_tp:
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
if run_viewers:
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
if run_tp:
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

# the wrk rounds: wrk-<store>-<what>-<round>.json, written by scripts/wrk/common.lua's done()
import re
def wrk_rounds(store, what):
    rs = {}
    for p in glob.glob(os.path.join(out, f"wrk-{store}-*.json")):
        m = re.fullmatch(rf"wrk-{store}-{re.escape(what)}-(\d+)\.json", os.path.basename(p))
        r = load(p) if m else None
        if r and r.get("requests"):
            rs[int(m.group(1))] = r
    return rs
def ratio_rounds(store, what, ceiling, key="rate_per_s"):
    u, c = wrk_rounds(store, what), wrk_rounds(store, ceiling)
    return [u[r][key] / c[r][key] for r in sorted(u) if r in c and c[r][key]]
def fmt_rounds(xs, f):
    return "; ".join(f(x) for x in xs)
stores = [s for s in ("embedded", "redis") if wrk_rounds(s, "nginx-200")]
if stores:
    prep = {s: load(os.path.join(out, f"wrk-{s}-prepare-1.json")) for s in stores}
    pb = next((p["playlist_bytes"] for p in prep.values() if p), None)
    sb = next((p["segment_bytes"] for p in prep.values() if p), None)
    sessions = next((p["sessions"] for p in prep.values() if p), None)
    first = wrk_rounds(stores[0], "nginx-200")
    cfg = open(os.path.join(out, "wrk-config.txt")).read().strip() if os.path.exists(os.path.join(out, "wrk-config.txt")) else ""
    print(f"\n## wrk rounds (issue 16's table): {cfg}, {sessions:,} tickets with live sessions, medians of {len(first)} rounds\n")
    rows = [
        ("register one ticket (`POST /api/v1/tickets`)", "register", "nginx-200"),
        ("admit (fresh device, takeover)", "admit", "nginx-200"),
        ("heartbeat", "heartbeat", "nginx-200"),
        (f"signed media playlist ({pb:,} B) vs nginx static file" if pb else "signed media playlist vs nginx static file", "playlist", "nginx-playlist"),
        (f"signed 1 MiB segment ({sb:,} B) vs nginx static file" if sb else "signed 1 MiB segment vs nginx static file", "segment", "nginx-segment"),
        ("Usher `/livez` vs nginx `return 200`", "livez", "nginx-200"),
    ]
    names = {"embedded": "Usher embedded", "redis": "Usher Redis"}
    print("Each cell: requests/s (median), × its ceiling in the same round (median of the rounds' ratios), p99. "
          "Ceiling: nginx `return 200` unless the row names another.\n")
    print("| path | " + " | ".join(names[s] for s in stores) + " |")
    print("| --- | " + " | ".join("---" for _ in stores) + " |")
    def cell(store, what, ceiling):
        u = wrk_rounds(store, what)
        if not u:
            return "not measured"
        rate = med([r["rate_per_s"] for r in u.values()])
        ratio = med(ratio_rounds(store, what, ceiling))
        p99 = med([r["latency_ms"]["p99"] for r in u.values()])
        bad = sum(0 if r["ok"] else 1 for r in u.values())
        return f"{rate:,.0f}/s · {ratio:.2f}× · p99 {p99:.1f} ms" + (f" · **{bad} round(s) failed**" if bad else "") if ratio is not None else f"{rate:,.0f}/s · p99 {p99:.1f} ms"
    for label, what, ceiling in rows:
        print(f"| {label} | " + " | ".join(cell(s, what, ceiling) for s in stores) + " |")
    for s in stores:
        print(f"\n### wrk rounds, {names[s]}: each round's figures\n")
        print("| what | median req/s | rounds (req/s) | MB/s | × `return 200` (rounds) | × own ceiling (rounds) | p50 ms | p99 ms | p99.9 ms | max ms | failed answers |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for label, what, ceiling in [("nginx `return 200` (ceiling)", "nginx-200", None),
                                     ("nginx static playlist (ceiling)", "nginx-playlist", None),
                                     ("nginx static 1 MiB file (ceiling)", "nginx-segment", None)] + rows:
            u = wrk_rounds(s, what)
            if not u:
                print(f"| {label} | not measured | | | | | | | | | |")
                continue
            rs = [u[r] for r in sorted(u)]
            to200 = ratio_rounds(s, what, "nginx-200")
            own = ratio_rounds(s, what, ceiling) if ceiling and ceiling != "nginx-200" else []
            failed_answers = sum(r["unexpected"] + r.get("unmatched", 0) + sum(r["errors"][k] for k in ("connect", "read", "write", "timeout")) for r in rs)
            lat = lambda k: med([r["latency_ms"][k] for r in rs])
            rates = fmt_rounds(rs, lambda r: f"{r['rate_per_s']:,.0f}")
            r200 = f"{med(to200):.3f}× ({fmt_rounds(to200, lambda x: f'{x:.3f}')})" if to200 else ""
            rown = f"{med(own):.3f}× ({fmt_rounds(own, lambda x: f'{x:.3f}')})" if own else ""
            print(f"| {label.split(' vs ')[0]} | {med([r['rate_per_s'] for r in rs]):,.0f} | {rates} "
                  f"| {med([r['mb_per_s'] for r in rs]):,.1f} | {r200} | {rown} "
                  f"| {lat('p50'):.2f} | {lat('p99'):.2f} | {lat('p999'):.2f} | {lat('max'):.1f} | {failed_answers} |")
        if s == "redis":
            # Redis's own time per request from INFO commandstats (reset before the run) over the requests
            # wrk counted: EVALSHA's time includes the commands its script calls, which are also counted
            # under their own names, so the scripts' figure stands alone and the commands are listed apart
            print("\nRedis per request (median of the rounds): redis-server's CPU time over wrk's requests; then from INFO commandstats "
                  "(wall time, inflated when the machine is saturated) the scripts (EVALSHA, the commands they call included) and the heaviest commands, whether a script or the node sent them:\n")
            for label, what, _ in rows:
                per, calls, top, cpu = [], [], {}, []
                for r, rep in sorted(wrk_rounds(s, what).items()):
                    try:
                        lines = open(os.path.join(out, f"wrk-{s}-{what}-{r}.redis-commandstats.txt")).read().splitlines()
                    except OSError:
                        continue
                    scripts = ncalls = 0
                    for l in lines:
                        m = re.match(r"cmdstat_([^:]+):calls=(\d+),usec=(\d+)", l)
                        if m and m.group(1) not in ("info", "config|resetstat"):
                            if m.group(1) == "evalsha":
                                scripts += int(m.group(3)); ncalls += int(m.group(2))
                            else:
                                top.setdefault(m.group(1), []).append(int(m.group(3)) / rep["requests"])
                    per.append(scripts / rep["requests"]); calls.append(ncalls / rep["requests"])
                    try:
                        before, after, tck = open(os.path.join(out, f"wrk-{s}-{what}-{r}.redis-cpu")).read().split()
                        cpu.append((int(after) - int(before)) / int(tck) * 1e6 / rep["requests"])
                    except (OSError, ValueError):
                        pass
                if per:
                    heavy = sorted(top.items(), key=lambda kv: -med(kv[1]))[:4]
                    print(f"- {label.split(' vs ')[0]}: redis-server CPU {med(cpu) or 0:.1f} µs per request; scripts {med(per):.1f} µs (wall) in {med(calls):.2f} EVALSHA; "
                          + ", ".join(f"{k} {med(v):.1f} µs" for k, v in heavy))
                # the node's renewals and admits in each round: in transactions, or by the script and why
                ways = []
                for r in sorted(wrk_rounds(s, what)):
                    def counts(when):
                        c = {}
                        try:
                            for l in open(os.path.join(out, f"wrk-{s}-{what}-{r}.renewals-{when}")):
                                m = re.match(r'usher_redis_(renewals|admits)_total\{(.*)\} (\d+)', l)
                                if m:
                                    labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
                                    way = "transaction" if labels.get("way") == "transaction" else "script " + labels.get("reason", "?")
                                    key = f"{m.group(1)[:-1]} {way}"
                                    c[key] = c.get(key, 0) + int(m.group(3))
                        except OSError:
                            pass
                        return c
                    before, after = counts("before"), counts("after")
                    delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}
                    if delta:
                        ways.append(f"round {r}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(delta.items(), key=lambda kv: -kv[1])))
                if ways:
                    print(f"  - steps (usher_redis_renewals_total, usher_redis_admits_total): " + "; ".join(ways))
        p = prep.get(s)
        if p:
            print(f"\nprepared: {p['sessions']:,} sessions of show `{p['show_id']}` (heartbeat {p['heartbeat_s']} s), "
                  f"registered in {p['register_s']:.1f} s, admitted in {p['admit_s']:.1f} s; "
                  f"playlist `{p['playlist']}` ({p['playlist_bytes']} B; the session's signed master playlist is {p.get('master_bytes', '?')} B), segment `{p['segment']}` ({p['segment_bytes']} B)")
        try:
            print("live sessions (the dashboard's live viewers): " + "; ".join(l.strip().replace(f"wrk-{s}-live-", "") for l in open(os.path.join(out, f"wrk-{s}-live.txt"))))
        except OSError:
            pass
        try:
            print("server memory at the end: " + ", ".join(l.split()[0] + " " + " ".join(l.split()[1:]) for l in open(os.path.join(out, f"wrk-{s}-rss.txt"))))
        except OSError:
            pass
        if s == "redis" and p:
            try:
                empty = int(open(os.path.join(out, "wrk-redis-memory-empty.txt")).read().strip())
                prepared = int(open(os.path.join(out, "wrk-redis-memory-prepared.txt")).read().strip())
                print(f"Redis used_memory: {empty:,} B before the tickets, {prepared:,} B after the first prepare: "
                      f"{(prepared - empty) / p['sessions']:,.0f} B per ticket with a live session (ticket, token, seats, session index, live entry)")
            except (OSError, ValueError):
                pass
PY
echo "reports in $out" >&2
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s (errors or failed checks: see their reports and summary.md)\n' "${failed[*]}" | tee -a "$out/summary.md" >&2
  exit 1
fi
