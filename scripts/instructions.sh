#!/usr/bin/env bash
# What one request of each hot path costs, in instructions (valgrind's callgrind): a count that is the
# same from run to run, whatever else the machine is doing, where CPU time in the wrk rounds of
# scripts/bench.sh moves by ±15 % with the machine's load (BENCHMARKS.md, issue 16). For comparing two
# builds; the µs and requests/s figures stay bench.sh's.
#
#   scripts/instructions.sh [--process redis|usher] [--store embedded|redis] [--sessions N] [--seconds S]
#                           [--paths LIST] [--out DIR]
#
# --process redis (the default; scripts/redis-instructions.sh is this): redis-server runs under callgrind
#   and Usher on it, so the count is Redis's work per request (the Lua scripts, the commands).
# --process usher: Usher runs under callgrind, on --store (default embedded; redis: a redis-server of its
#   own beside it), so the count is the node's user-space work per request (its HTTP stack, handlers,
#   store; the kernel's socket work is not counted, nor what contention on shared locks and cache lines
#   costs: wrk rounds measure that). Valgrind hides the CPU's SHA extensions, so SHA-256 (the keyed
#   hashes of secrets and grants) runs sha2's portable code here and weighs ~8x what it does on the CPU:
#   about a quarter of a heartbeat's count, a few per cent of its time.
# USHER=/path/to/usher (environment): measure that server binary (default: this tree's release build,
#   built first). USHER_LOAD likewise for usher-load.
# REDIS_SERVER=/path/to/redis-server (environment): the redis-server to run (default: Debian's). Under
#   callgrind, a build with symbols (`make` in a Redis source tree) makes the profiles readable with
#   `callgrind_annotate --inclusive=yes <out>/<path>.callgrind`; the counts need none.
#
# It starts the process measured under `valgrind --tool=callgrind`, Usher with the configuration of
# bench.sh's wrk rounds, prepares --sessions tickets with live sessions (`usher-load prepare`), then for
# each path (heartbeat, admit, register, playlist; with --process usher also livez; default the first
# three; run in the order livez, playlist, heartbeat, admit, register) zeroes the counters, runs the path's wrk script of scripts/wrk for --seconds at 4 connections
# (the process runs ~50× slower under valgrind, so this is a few hundred requests), dumps the counters and
# divides them by wrk's requests: less what the process does in as much time without requests (measured
# first, idle: the node's background work). With Redis, INFO commandstats gives the commands per request
# beside it. Prints a table and writes summary.md to --out.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

process=redis store="" sessions=300 seconds=6 paths="heartbeat,admit,register" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --process) process="$2"; shift 2 ;;
    --store) store="$2"; shift 2 ;;
    --sessions) sessions="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --paths) paths="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$process" in
  redis)
    [ -z "$store" ] || [ "$store" = redis ] || { echo "--process redis measures the redis store" >&2; exit 2; }
    store=redis ;;
  usher) store="${store:-embedded}" ;;
  *) echo "--process takes: redis, usher" >&2; exit 2 ;;
esac
case "$store" in embedded | redis) ;; *) echo "--store takes: embedded, redis" >&2; exit 2 ;; esac
for p in ${paths//,/ }; do
  case "$process:$p" in
    *:heartbeat | *:admit | *:register | *:playlist | usher:livez) ;;
    *) echo "--paths takes: heartbeat, admit, register, playlist (and with --process usher: livez)" >&2; exit 2 ;;
  esac
done
tools="valgrind callgrind_control wrk openssl curl"
[ "$store" = redis ] && tools="$tools redis-cli"
for tool in $tools; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y valgrind wrk redis-server openssl curl)" >&2; exit 2; }
done
REDIS_SERVER="${REDIS_SERVER:-redis-server}"
if [ -z "${USHER:-}" ] || [ -z "${USHER_LOAD:-}" ]; then
  [ -d web/dist ] || scripts/build-web.sh >&2
  cargo build --release --locked -p usher-server -p usher-load >&2
  target="${CARGO_TARGET_DIR:-$root/target}"
  USHER="${USHER:-$target/release/usher}"
  USHER_LOAD="${USHER_LOAD:-$target/release/usher-load}"
fi
work="$(mktemp -d /tmp/usher-instr.XXXXXX)"
out="${out:-$work/report}"
mkdir -p "$out"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

callgrind=(valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p")
sock="$work/redis.sock"
if [ "$store" = redis ]; then
  under=()
  [ "$process" = redis ] && under=("${callgrind[@]}")
  "${under[@]}" "$REDIS_SERVER" --port 0 --unixsocket "$sock" \
    --unixsocketperm 700 --save "" --appendonly no --daemonize no >"$work/redis.log" 2>&1 &
  redis_pid=$!
  pids+=("$redis_pid")
  for _ in $(seq 300); do redis-cli -s "$sock" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -s "$sock" ping >/dev/null
  store_config="kind = \"redis\"
url = \"redis+unix://$sock\"
key_prefix = \"usher-wrk:\""
else
  store_config='kind = "embedded"'
fi

cat >"$work/usher.toml" <<EOF
listen = "127.0.0.1:18097"
data_dir = "$work/data"
media_dir = "$root/media"
[store]
$store_config
[secrets]
token_key = "$(openssl rand -hex 32)"
grant_key = "$(openssl rand -hex 32)"
[log]
level = "warn"
[rate_limits.api_key_requests]
burst = 1000000
per_minute = 1000000
[rate_limits.admits_per_ticket]
burst = 1000000
per_minute = 1000000
[rate_limits.ticket_lookup_failures]
burst = 1000000
EOF
admin="$("$USHER" api-key create --config "$work/usher.toml" --name instr --scope admin 2>>"$work/usher.err")"
tickets="$("$USHER" api-key create --config "$work/usher.toml" --name instr --scope tickets 2>>"$work/usher.err")"
under=()
[ "$process" = usher ] && under=("${callgrind[@]}")
"${under[@]}" "$USHER" serve --config "$work/usher.toml" 2>>"$work/usher.err" &
usher_pid=$!
pids+=("$usher_pid")
# the process whose instructions are counted
measured_pid="${redis_pid:-}"
[ "$process" = usher ] && measured_pid="$usher_pid"
base=http://127.0.0.1:18097
# Usher under valgrind reads its debug information first: up to a few minutes
for _ in $(seq 3000); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "$base/readyz" >/dev/null || { echo "Usher did not start: $work/usher.err" >&2; exit 1; }
echo "preparing $sessions tickets with live sessions ($process under callgrind: slow)" >&2
"$USHER_LOAD" prepare --base-url "$base" --tickets-key "$tickets" --admin-key "$admin" --heartbeat-s 300 \
  --sessions "$sessions" --out "$work/files" >"$work/prepare.log" 2>&1

# the dump callgrind_control -d writes last (cg.<pid>.<n>), and its instruction total
latest_dump() { ls -t "$work"/cg."$measured_pid".* 2>/dev/null | head -1; }
dump_total() { sed -n 's/^summary: //p;s/^totals: //p' "$1" | head -1 | awk '{print $1}'; }
commands_total() {
  [ "$store" = redis ] || return 0
  redis-cli -s "$sock" info commandstats | tr -d '\r' | sed -n 's/^cmdstat_\([a-z|]*\):calls=\([0-9]*\),.*/\1 \2/p'
}

# what the process does with no request at all (the node's background work: the lease flush and sweep,
# the config cache's checks, the live counts), per second, to take out of each path's total
callgrind_control -z "$measured_pid" >/dev/null 2>&1
idle_started=$(date +%s.%N)
sleep "$seconds"
callgrind_control -d "$measured_pid" >/dev/null 2>&1
idle_per_s=$(python3 -c "import sys; print(int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2])))" \
  "$(dump_total "$(latest_dump)")" "$idle_started" "$(date +%s.%N)")
echo "idle: $(printf '%.0f' "$idle_per_s") instructions a second" | tee "$out/idle.txt" >&2

measured="redis-server"
[ "$process" = usher ] && measured="Usher ($store store)"
printf '| path | requests | %s instructions per request | commands per request (scripts; all, those in scripts included) |\n| --- | --- | --- | --- |\n' "$measured" >"$out/summary.md"
# in this order whatever --paths says: an admit takes the prepared seats over, which ends the sessions
# whose grants the playlists are fetched with
for p in livez playlist heartbeat admit register; do
  [[ ",$paths," == *",$p,"* ]] || continue
  expect=200 script="$p.lua" url="$base/"
  case "$p" in
    admit | register) expect=201 ;;
    livez) script=get.lua url="$base/livez" ;;
  esac
  [ "$store" = redis ] && redis-cli -s "$sock" config resetstat >/dev/null
  callgrind_control -z "$measured_pid" >/dev/null 2>&1
  (cd scripts/wrk && WRK_THREADS=1 WRK_DATA="$work/files" WRK_RUN="instr$RANDOM" WRK_EXPECT="$expect" \
    WRK_TICKETS_KEY="$tickets" WRK_REPORT="$out/$p.json" \
    wrk -t1 -c4 -d"${seconds}s" -s "$script" "$url" >"$out/$p.wrk.txt" 2>&1)
  callgrind_control -d "$measured_pid" >/dev/null 2>&1
  dump="$(latest_dump)"
  cp "$dump" "$out/$p.callgrind"
  commands_total >"$out/$p.commands.txt"
  python3 - "$p" "$out/$p.json" "$(dump_total "$dump")" "$out/$p.commands.txt" "$idle_per_s" >>"$out/summary.md" <<'PY'
import json, sys
path, report, total, commands = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3]), sys.argv[4]
# the background's share of the run's instructions, as measured idle
total -= float(sys.argv[5]) * report["duration_s"]
n = report["requests"]
if not report["ok"] or n == 0:
    sys.exit(f"{path}: the wrk run failed: {report}")
calls = {}
for line in open(commands):
    name, c = line.split()
    calls[name] = int(c)
scripts = calls.get("evalsha", 0) + calls.get("eval", 0)
every = sum(calls.values())
commands = f"{scripts / n:.2f}; {every / n:.1f}" if calls else "(no Redis)"
print(f"| {path} | {n:,} | {total / n:,.0f} | {commands} |")
PY
done
cat "$out/summary.md"
echo "reports in $out" >&2
