#!/usr/bin/env bash
# The operations drill (issue 17): rolling restarts, a version upgrade and a Redis master killed, all under
# load, on loopback. Three `usher serve` nodes share Redis (a master, a replica and three Sentinels,
# `wait_replicas = 1`) behind haproxy, which checks each node's /readyz so a draining node leaves the
# pool; `usher-load` plays thousands of viewers through haproxy (admits, heartbeats, steering reloads,
# playlists and a segment a heartbeat, each viewer leaving and coming back with a fresh admit every
# --watch-s seconds). Phases, each with its own usher-load run and verdict:
#
#   upgrade   (--upgrade-from REV) the nodes start on REV's binary (built once from git into
#             /var/tmp/usher-prev-src and /var/tmp/usher-prev-target, nice -n 19, ~15 min) and are replaced
#             one by one by this tree's binary: SIGTERM, the node drains and exits, the new one starts
#   rolling   (--rounds N, N > 0) each node in turn gets SIGTERM, drains, exits and is started again, N
#             times round
#   failover  (--kill-master) kill -9 of the Redis master; Sentinel promotes the replica, the old master
#             comes back as a replica
#
# Every phase must show 0 failed viewer requests, 0 sessions lost and 0 false refusals; the fail-over also
# that every viewer whose heartbeats were `degraded` renewed again, and that admits were told to come back
# later for no longer than the fail-over window (kill -9 until Sentinel names the new master) plus
# --pause-slack-ms. The figures are printed as a table and written to <out>/summary.json; the exit status
# is 1 when any criterion failed (2 for a setup error).
#
# usage: scripts/ops-drill.sh [--short] [--viewers N] [--rounds N] [--upgrade-from REV] [--kill-master]
#          [--heartbeat-s S] [--steering-s S] [--watch-s S] [--ramp-s S] [--connections N]
#          [--down-after-ms MS] [--pause-slack-ms MS] [--profile release|debug] [--out DIR]
#   --short   the CI form: 500 viewers, heartbeat 8 s, one round, a master kill, no upgrade (~2 min)
#   full form: scripts/ops-drill.sh --viewers 5000 --rounds 2 --upgrade-from v0.1.0 --kill-master
# Binaries: $CARGO_TARGET_DIR (default /var/tmp/usher-ci-target)/<profile>/{usher,usher-load}, the profile
# `release` when both are there, else `debug`; USHER_BIN / USHER_LOAD_BIN override. Installs haproxy,
# redis-server and redis-sentinel (Debian packages) when missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
helper=(python3 "$root/scripts/ops-drill.py")

viewers=5000 rounds=2 upgrade_from="" kill_master=0 heartbeat_s=15 steering_s=30 watch_s=120
ramp_s="" connections="" down_after_ms=1000 pause_slack_ms=1000 profile="" out="" short=0
shutdown_delay_s=3
while [ $# -gt 0 ]; do
  case "$1" in
    --short) short=1; viewers=500; rounds=1; kill_master=1; heartbeat_s=8; steering_s=8; watch_s=30
      # CI shares two cores with the build: a just-promoted master missing a 1 s window made the
      # sentinels fail over twice there
      down_after_ms=3000 ;;
    --viewers) viewers="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --upgrade-from) upgrade_from="$2"; shift ;;
    --kill-master) kill_master=1 ;;
    --heartbeat-s) heartbeat_s="$2"; shift ;;
    --steering-s) steering_s="$2"; shift ;;
    --watch-s) watch_s="$2"; shift ;;
    --ramp-s) ramp_s="$2"; shift ;;
    --connections) connections="$2"; shift ;;
    --down-after-ms) down_after_ms="$2"; shift ;;
    --pause-slack-ms) pause_slack_ms="$2"; shift ;;
    --profile) profile="$2"; shift ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "ops-drill: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
# arrivals over at least one heartbeat interval, so heartbeats are spread evenly, not in waves
[ -n "$ramp_s" ] || ramp_s=$(( viewers > 2000 ? (heartbeat_s > 30 ? heartbeat_s : 30) : heartbeat_s ))
[ -n "$connections" ] || connections=$(( viewers / 6 < 50 ? 50 : (viewers / 6 > 2000 ? 2000 : viewers / 6) ))
# the actions begin once every viewer has heartbeaten (half an interval after the last arrival), and
# after the last restart or the fail-over every viewer heartbeats at least twice more
lead_s=$(( heartbeat_s / 2 + 1 ))
settle_s=$(( 2 * heartbeat_s + 2 ))

log() { printf '%s ops-drill: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 2; }
now_ms() { date +%s%3N; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# ---- what the drill needs --------------------------------------------------------------------------------
missing=()
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-sentinel >/dev/null || missing+=(redis-sentinel)
command -v curl >/dev/null || missing+=(curl ca-certificates)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
haproxy_bin="$(command -v haproxy || echo /usr/sbin/haproxy)"

target="${CARGO_TARGET_DIR:-/var/tmp/usher-ci-target}"
if [ -z "$profile" ]; then
  if [ -x "$target/release/usher" ] && [ -x "$target/release/usher-load" ]; then profile=release; else profile=debug; fi
fi
usher_bin="${USHER_BIN:-$target/$profile/usher}"
load_bin="${USHER_LOAD_BIN:-$target/$profile/usher-load}"
[ -x "$usher_bin" ] || die "no usher binary at $usher_bin (cargo build -p usher-server, or set USHER_BIN)"
[ -x "$load_bin" ] || die "no usher-load binary at $load_bin (cargo build -p usher-load, or set USHER_LOAD_BIN)"
"$load_bin" --help | grep -q -- '--expect-outage' ||
  die "$load_bin is older than the drill (no --expect-outage): rebuild usher-load from this tree"

# ---- the previous release, built once from git -------------------------------------------------------------
prev_bin=""
prev_label=""
if [ -n "$upgrade_from" ]; then
  rev="$(git -C "$root" rev-parse --verify --quiet "$upgrade_from^{commit}")" ||
    die "no commit $upgrade_from in this repository (git fetch --tags?)"
  prev_src="${USHER_PREV_SRC:-/var/tmp/usher-prev-src}"
  prev_target="${USHER_PREV_TARGET:-/var/tmp/usher-prev-target}"
  prev_bin="$prev_target/release/usher"
  prev_label="$upgrade_from ($(git -C "$root" rev-parse --short "$rev"))"
  if [ ! -e "$prev_src/.git" ]; then
    log "adding a worktree of $upgrade_from at $prev_src"
    git -C "$root" worktree add --detach "$prev_src" "$rev" >&2
  elif [ "$(git -C "$prev_src" rev-parse HEAD)" != "$rev" ]; then
    git -C "$prev_src" checkout --quiet --detach "$rev"
  fi
  if [ ! -x "$prev_bin" ] || [ "$(cat "$prev_bin.rev" 2>/dev/null)" != "$rev" ]; then
    log "building $prev_label into $prev_target (nice -n 19; about 15 minutes on two shared cores)"
    [ -d "$prev_src/web/dist" ] || (cd "$prev_src" && nice -n 19 scripts/build-web.sh >&2)
    (cd "$prev_src" && CARGO_TARGET_DIR="$prev_target" nice -n 19 cargo build --release --locked -p usher-server >&2)
    echo "$rev" > "$prev_bin.rev"
  fi
fi
this_label="this tree ($(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- crates 2>/dev/null || echo '+changes'), $profile)"

# ---- the stage: Redis, Sentinels, three nodes, haproxy ---------------------------------------------------
if [ -n "$out" ]; then mkdir -p "$out"; work="$(cd "$out" && pwd)"; else work="$(mktemp -d /var/tmp/usher-drill.XXXXXX)"; fi
log "work directory $work; usher $usher_bin; usher-load $load_bin${prev_bin:+; previous $prev_bin}"
pids=()
cleanup() { # the latest first: the load, the nodes, then haproxy, the sentinels and Redis
  local i
  for (( i = ${#pids[@]} - 1; i >= 0; i-- )); do
    kill "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
}
# a process waited for is forgotten, so the clean-up never signals a number the system gave out again
forget() {
  local p kept=()
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
  pids=("${kept[@]}")
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mapfile -t ports < <("${helper[@]}" ports 9)
redis_a=${ports[0]} redis_b=${ports[1]} sentinel_ports=("${ports[2]}" "${ports[3]}" "${ports[4]}")
node_ports=("" "${ports[5]}" "${ports[6]}" "${ports[7]}") lb_port=${ports[8]}
lb="http://127.0.0.1:$lb_port"
master_name=usher-drill
declare -A redis_pid

start_redis() { # port [replicaof-port]
  local port=$1 dir="$work/redis-$1"
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --appendonly yes --appendfsync everysec \
    --save '' --maxmemory-policy noeviction --logfile "$work/redis-$port.log" \
    ${2:+--replicaof 127.0.0.1 "$2"} &
  redis_pid[$port]=$!
  pids+=($!)
  for _ in $(seq 100); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.1; done
  die "redis-server on $port did not start (see $work/redis-$port.log)"
}
wait_replica_up() { # replica port
  for _ in $(seq 300); do
    redis-cli -p "$1" info replication 2>/dev/null | grep -q 'master_link_status:up' && return 0
    sleep 0.1
  done
  die "the replica on $1 did not sync"
}
# after a fail-over: waits until the master the sentinels name has the other server as a replica in
# sync, and sets master_port and replica_port. On a loaded machine the sentinels may fail over once
# more (a just-promoted master slow to answer within down-after-milliseconds), so the pair is read
# from them, not assumed.
wait_pair_settled() { # port port
  local a=$1 b=$2 m r
  for _ in $(seq 600); do
    m=$("${helper[@]}" sentinel-master "${sentinel_ports[0]}" "$master_name" 2>/dev/null) || m=""
    if [ "$m" = "$a" ]; then r=$b; elif [ "$m" = "$b" ]; then r=$a; else sleep 0.1; continue; fi
    if redis-cli -p "$r" info replication 2>/dev/null | tr -d '\r' | grep -qx "master_port:$m" &&
      redis-cli -p "$r" info replication 2>/dev/null | grep -q 'master_link_status:up'; then
      [ "$m" = "$b" ] || log "the sentinels failed over once more: :$m is the master, :$r its replica"
      master_port=$m replica_port=$r
      return 0
    fi
    sleep 0.1
  done
  die "Redis :$a and :$b did not settle (the sentinels' master with the other in sync) within 60 s"
}
start_redis "$redis_a"
start_redis "$redis_b" "$redis_a"
wait_replica_up "$redis_b"
master_port=$redis_a replica_port=$redis_b
for p in "${sentinel_ports[@]}"; do
  cat > "$work/sentinel-$p.conf" <<CONF
port $p
bind 127.0.0.1
dir $work
logfile $work/sentinel-$p.log
sentinel monitor $master_name 127.0.0.1 $redis_a 2
sentinel down-after-milliseconds $master_name $down_after_ms
sentinel failover-timeout $master_name 10000
sentinel parallel-syncs $master_name 1
CONF
  redis-sentinel "$work/sentinel-$p.conf" &
  pids+=($!)
done
for _ in $(seq 200); do
  redis-cli -p "${sentinel_ports[0]}" sentinel replicas "$master_name" 2>/dev/null | grep -qx "$redis_b" &&
    [ "$(redis-cli -p "${sentinel_ports[0]}" sentinel sentinels "$master_name" 2>/dev/null | grep -c '^name$')" -ge 2 ] && break
  sleep 0.1
done

sentinel_list=$(printf '"127.0.0.1:%s", ' "${sentinel_ports[@]}")
for i in 1 2 3; do
  mkdir -p "$work/node$i"
  cat > "$work/node$i.toml" <<TOML
listen = "127.0.0.1:${node_ports[$i]}"
public_url = "$lb"
data_dir = "$work/node$i"
media_dir = "$root/media"
trusted_proxies = ["127.0.0.1/32"]

[secrets]
token_key = "ops-drill-token-key-0123456789abcdef0123456789"
grant_key = "ops-drill-grant-key-0123456789abcdef0123456789"

[store]
kind = "redis"
url = "redis://127.0.0.1:$redis_a"
key_prefix = "drill:"
wait_replicas = 1
wait_timeout_ms = 500
response_timeout_ms = 1000

[store.sentinel]
master_name = "$master_name"
addresses = [${sentinel_list%, }]

[http]
shutdown_delay_s = $shutdown_delay_s
drain_timeout_s = 20
# longer than haproxy keeps idle connections to a node, so haproxy, not the node, closes them
idle_timeout_s = 300

[log]
format = "json"
level = "warn,usher=info"
TOML
done

admin_key=$("$usher_bin" api-key create --config "$work/node1.toml" --name drill-admin --scope admin 2>>"$work/setup.log")
tickets_key=$("$usher_bin" api-key create --config "$work/node1.toml" --name drill-site --scope tickets 2>>"$work/setup.log")

cat > "$work/haproxy.cfg" <<CFG
global
  maxconn 8000
  stats socket $work/haproxy.sock mode 600 level admin
  log stderr format short local0 notice

defaults
  mode http
  log global
  option httplog
  option dontlog-normal
  timeout connect 2s
  timeout client 120s
  timeout server 30s
  timeout http-request 10s
  timeout http-keep-alive 120s
  # a connection refused (a node gone) is tried again on another node; nothing else is retried, so a
  # request a draining node drops reaches the viewer as an error
  retries 3
  option redispatch 1
  retry-on conn-failure

frontend viewers
  bind 127.0.0.1:$lb_port
  option forwardfor
  default_backend usher

backend usher
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 500ms fastinter 250ms downinter 500ms rise 2 fall 2
  server n1 127.0.0.1:${node_ports[1]} check
  server n2 127.0.0.1:${node_ports[2]} check
  server n3 127.0.0.1:${node_ports[3]} check
CFG
"$haproxy_bin" -c -q -f "$work/haproxy.cfg" || die "haproxy refuses $work/haproxy.cfg"
"$haproxy_bin" -db -f "$work/haproxy.cfg" 2> "$work/haproxy.log" &
pids+=($!)

declare -A node_pid node_version
start_node() { # i binary label
  "$2" serve --config "$work/node$1.toml" >> "$work/node$1.log" 2>&1 &
  node_pid[$1]=$!
  node_version[$1]="$3"
  pids+=($!)
}
first_bin="$usher_bin" first_label="$this_label"
if [ -n "$prev_bin" ]; then first_bin="$prev_bin" first_label="$prev_label"; fi
for i in 1 2 3; do start_node "$i" "$first_bin" "$first_label"; done
for _ in $(seq 100); do [ -S "$work/haproxy.sock" ] && break; sleep 0.1; done
for i in 1 2 3; do "${helper[@]}" haproxy-wait "$work/haproxy.sock" "n$i" UP 60 >/dev/null || die "node $i never became ready (see $work/node$i.log)"; done
log "3 nodes on $first_label ready behind haproxy at $lb; Redis master :$master_port, replica :$replica_port"

# a show for the registration checks (the load runs make their own)
curl -fsS -o /dev/null -X PUT -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/json' \
  -d "{\"title\": \"drill\", \"kind\": \"vod\", \"starts_at\": \"$(date -u -d '-1 hour' +%FT%TZ)\", \"ends_at\": \"$(date -u -d '+1 day' +%FT%TZ)\", \"stream_path\": \"demo\"}" \
  "$lb/api/v1/shows/drill" || die "creating the show through haproxy failed"

cat > "$work/drill.json" <<JSON
{"viewers": $viewers, "rounds": $rounds, "upgrade_from": "$upgrade_from", "previous": "$prev_label", "this": "$this_label",
 "kill_master": $kill_master, "heartbeat_s": $heartbeat_s, "steering_s": $steering_s, "watch_s": $watch_s,
 "ramp_s": $ramp_s, "connections": $connections, "down_after_ms": $down_after_ms, "shutdown_delay_s": $shutdown_delay_s,
 "lead_s": $lead_s, "settle_s": $settle_s, "short": $short, "started": "$(date -u +%FT%TZ)", "machine": "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"}
JSON
: > "$work/phases.list"

# ---- the actions -----------------------------------------------------------------------------------------
restart_node() { # i binary label phase
  local i=$1 t0 t_out t_exit rc t_start t_in
  local from="${node_version[$i]}"
  t0=$(now_ms)
  kill -TERM "${node_pid[$i]}"
  t_out=$("${helper[@]}" haproxy-wait "$work/haproxy.sock" "n$i" DOWN 30) || t_out=-1
  rc=0
  wait "${node_pid[$i]}" || rc=$?
  t_exit=$(now_ms)
  forget "${node_pid[$i]}"
  t_start=$(now_ms)
  start_node "$i" "$2" "$3"
  t_in=$("${helper[@]}" haproxy-wait "$work/haproxy.sock" "n$i" UP 60) || die "node $i did not come back (see $work/node$i.log)"
  printf '{"node": %d, "from": "%s", "to": "%s", "out_of_pool_ms": %d, "exit_ms": %d, "exit_code": %d, "in_pool_ms": %d}\n' \
    "$i" "$from" "$3" $(( t_out < 0 ? -1 : t_out - t0 )) $(( t_exit - t0 )) "$rc" $(( t_in - t_start )) >> "$work/$4.restarts.jsonl"
  log "node $i: SIGTERM, out of the pool after $(( t_out - t0 )) ms, exited $rc after $(( t_exit - t0 )) ms, back in after $(( t_in - t_start )) ms ($3)"
  sleep 2
}

act_upgrade() {
  for i in 1 2 3; do restart_node "$i" "$usher_bin" "$this_label" upgrade; done
}

act_rolling() {
  local r i
  for r in $(seq "$rounds"); do
    log "rolling restart, round $r of $rounds"
    for i in 1 2 3; do restart_node "$i" "$usher_bin" "$this_label" rolling; done
  done
}

act_failover() {
  local t_kill switched t_switch new_port t_back status old=$master_port
  log "kill -9 of the Redis master :$old"
  t_kill=$(now_ms)
  kill -KILL "${redis_pid[$old]}"
  wait "${redis_pid[$old]}" 2>/dev/null || true
  forget "${redis_pid[$old]}"
  switched=$("${helper[@]}" sentinel-wait-switch "${sentinel_ports[0]}" "$master_name" "$old" 60) ||
    die "Sentinel promoted no replica within 60 s"
  read -r t_switch new_port <<< "$switched"
  log "Sentinel names :$new_port the master after $(( t_switch - t_kill )) ms; the old master comes back as its replica"
  start_redis "$old" "$new_port"
  wait_pair_settled "$old" "$new_port"
  t_back=$(now_ms)
  # an acknowledged write needs the replica again (wait_replicas = 1)
  status=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $tickets_key" \
    -H 'Content-Type: application/json' -d '{"show_id": "drill"}' "$lb/api/v1/tickets" || echo 0)
  printf '{"killed_at_ms": %d, "switched_at_ms": %d, "old_master_port": %d, "new_master_port": %d, "replica_back_at_ms": %d, "registration_after": %d, "slack_ms": %d}\n' \
    "$t_kill" "$t_switch" "$old" "$new_port" "$t_back" "$status" "$pause_slack_ms" > "$work/failover.failover.json"
}

drain_warnings() { cat "$work"/node?.log 2>/dev/null | grep -c 'drain deadline passed' || true; }

run_phase() { # name action [--expect-outage]
  local name=$1 action=$2 load_pid rc=0 drains
  shift 2
  log "phase $name: $viewers viewers arriving over $ramp_s s through haproxy"
  "${helper[@]}" haproxy-stats "$work/haproxy.sock" > "$work/$name.haproxy.json"
  drains=$(drain_warnings)
  "$load_bin" --base-url "$lb" --tickets-key "$tickets_key" --admin-key "$admin_key" \
    --viewers "$viewers" --heartbeat-s "$heartbeat_s" --steering-s "$steering_s" --segments 1 \
    --watch-s "$watch_s" --ramp-s "$ramp_s" --duration-s 86400 --connections "$connections" \
    --timeout-s 20 --progress-s 5 --json "$work/$name.json" "$@" \
    > "$work/$name.txt" 2> "$work/$name.progress" &
  load_pid=$!
  pids+=($load_pid)
  for _ in $(seq 600); do grep -q 'registered' "$work/$name.progress" 2>/dev/null && break; sleep 0.2; done
  grep -q 'registered' "$work/$name.progress" || die "usher-load did not register its tickets (see $work/$name.progress)"
  sleep $(( ramp_s + lead_s ))
  tail -n 1 "$work/$name.progress" >&2
  "$action"
  log "phase $name: settling for $settle_s s (every viewer heartbeats twice more)"
  sleep "$settle_s"
  tail -n 1 "$work/$name.progress" >&2
  kill -INT "$load_pid"
  wait "$load_pid" || rc=$?
  forget "$load_pid"
  [ -s "$work/$name.json" ] || die "usher-load wrote no report (exit $rc; see $work/$name.progress)"
  "${helper[@]}" haproxy-stats "$work/haproxy.sock" >> "$work/$name.haproxy.json"
  echo $(( $(drain_warnings) - drains )) > "$work/$name.drain"
  echo "$name" >> "$work/phases.list"
  log "phase $name: usher-load exited $rc"
}

[ -n "$prev_bin" ] && run_phase upgrade act_upgrade
[ "$rounds" -gt 0 ] && run_phase rolling act_rolling
[ "$kill_master" = 1 ] && run_phase failover act_failover --expect-outage

verdict=0
"${helper[@]}" report "$work" || verdict=$?
# the Redis data (the drill's tickets and leases, ~100 MB at 5,000 viewers) is of no use afterwards;
# the logs, the reports and the configurations stay
cleanup
trap - EXIT
rm -rf "$work"/redis-*/
exit "$verdict"
