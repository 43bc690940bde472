#!/usr/bin/env bash
# The container image's start check, CI's short form (docs/operations.md, "Container image"): builds the
# Containerfile's `prebuilt` target around an usher binary already built on this machine (by default
# $CARGO_TARGET_DIR/debug/usher, which scripts/test.sh builds for the browser tests; its debug info is
# stripped on the way in), then starts the image's own ENTRYPOINT and CMD in a container with
# `buildah run --isolation chroot` and checks, over real HTTP on this machine's loopback:
#   - the image's configuration: user 10001, ENTRYPOINT usher, CMD serve --config /etc/usher/usher.toml,
#     ports 8080 and 9100, the volume /var/lib/usher;
#   - /livez answers 200 and /readyz 200 "ready" (the embedded store opened in the volume, where its file
#     then is, owned by 10001), /metrics answers on the metrics port and 404 on the main one;
#   - the serving process runs as uid and gid 10001, not root, inside the image's root file system;
#   - SIGTERM makes it drain (/readyz 503 "draining" during http.shutdown_delay_s) and exit 0 within the
#     grace period (30 s, Kubernetes' default terminationGracePeriodSeconds).
# Secrets and the listen addresses come as USHER_* environment variables over the image's
# /etc/usher/usher.toml, as a deployment gives them. Installs buildah and debootstrap when missing and
# makes the base image when missing (scripts/image-base.sh); needs root. Removes its container and the
# previous check image; keeps the layers it reuses. Prints the time of each part.
#
#   scripts/check-image.sh                       # prebuilt image from $CARGO_TARGET_DIR/debug/usher
#   scripts/check-image.sh --binary PATH         # from another binary (built on Debian 12 / glibc <= 2.36)
#   scripts/check-image.sh --image IMAGE         # check an image built already (scripts/build-image.sh)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/image-env.sh
. scripts/image-env.sh

binary="${USHER_BINARY:-${CARGO_TARGET_DIR:-$root/target}/debug/usher}"
image=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --image) image="$2"; shift 2 ;;
    *) echo "usage: $0 [--binary PATH | --image IMAGE]" >&2; exit 2 ;;
  esac
done

t_start=$SECONDS
t_part=$SECONDS
timings=()
part_done() { timings+=("$(printf '%-28s %4d s' "$1" "$((SECONDS - t_part))")"); t_part=$SECONDS; }
fail() { echo "check-image: FAILED: $*" >&2; exit 1; }

work="$(mktemp -d /var/tmp/usher-check-image.XXXXXX)"
ctr=""
run_pid=""
tree_pids() { # a process and its descendants
  local p
  echo "$1"
  for p in $(ps -o pid= --ppid "$1" 2>/dev/null); do tree_pids "$p"; done
}
cleanup() {
  local rc=$?
  # the `buildah run` this script started and every process under it, by id
  # (the processes under it first, so that buildah itself lives to unmount and remove its run folder)
  if [ -n "$run_pid" ] && kill -0 "$run_pid" 2>/dev/null; then
    local p
    for p in $(ps -o pid= --ppid "$run_pid" 2>/dev/null); do
      # shellcheck disable=SC2046 # one pid a word
      kill -KILL $(tree_pids "$p") 2>/dev/null || true
    done
    for _ in $(seq 50); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$run_pid" 2>/dev/null || true
    wait "$run_pid" 2>/dev/null || true
  fi
  if [ -n "$ctr" ]; then bh rm "$ctr" >/dev/null 2>&1 || true; fi
  if [ $rc -ne 0 ] && [ -s "$work/serve.log" ]; then
    echo "--- the container's output (last 40 lines) ---" >&2
    tail -40 "$work/serve.log" >&2
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

image_tools
command -v python3 >/dev/null || fail "python3 is needed"
scripts/image-base.sh
part_done "tools and base image"

if [ -z "$image" ]; then
  image="${USHER_IMAGE%:*}:check"
  [ -x "$binary" ] || fail "no usher binary at $binary (cargo build -p usher-server --bin usher first)"
  mkdir "$work/bin"
  objcopy --strip-debug "$binary" "$work/bin/usher" 2>/dev/null || cp "$binary" "$work/bin/usher"
  old_id="$(bh images --quiet --no-trunc "$image" 2>/dev/null || true)"
  nice -n 10 buildah --storage-driver "$BUILDAH_STORAGE_DRIVER" build --layers --isolation chroot --quiet \
    --file Containerfile --target prebuilt --tag "$image" \
    --build-arg BASE_IMAGE="$USHER_BASE_IMAGE" --build-context usher-bin="$work/bin" \
    . >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; fail "building the prebuilt image"; }
  new_id="$(bh images --quiet --no-trunc "$image")"
  # the previous check image is replaced, not piled up (vfs keeps each image's full file system)
  if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then bh rmi "$old_id" >/dev/null 2>&1 || true; fi
  part_done "prebuilt image"
fi

# the image's configuration, as a container runtime reads it
bh inspect --type image "$image" >"$work/config.json" \
  || fail "no image $image"
python3 - "$work/config.json" >"$work/command" <<'EOF' || fail "the image's configuration (above)"
import json, sys
c = json.load(open(sys.argv[1]))["OCIv1"]["config"]
want = {
    "User": "10001:10001",
    "Entrypoint": ["usher"],
    "Cmd": ["serve", "--config", "/etc/usher/usher.toml"],
    "ExposedPorts": ["8080/tcp", "9100/tcp"],
    "Volumes": ["/var/lib/usher"],
}
got = {k: c.get(k) for k in want}
for k in ("ExposedPorts", "Volumes"):
    got[k] = sorted((got[k] or {}).keys())
bad = [f"{k}: {got[k]!r}, expected {want[k]!r}" for k in want if got[k] != want[k]]
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
print("\0".join(c["Entrypoint"] + c["Cmd"]), end="")
EOF
mapfile -d '' command <"$work/command"

# two free loopback ports for the main and the metrics listener
read -r port mport < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
base="http://127.0.0.1:$port"

# the data volume, as a deployment mounts one (owned by the image's user, like a pod's fsGroup does)
mkdir -p "$work/data"
chown 10001:10001 "$work/data"
ctr="$(bh from --quiet --pull-never "$image")"
secret() { python3 -c 'import secrets; print(secrets.token_hex(32))'; }
buildah --storage-driver "$BUILDAH_STORAGE_DRIVER" run --isolation chroot \
  --volume "$work/data:/var/lib/usher" \
  --env USHER_LISTEN="127.0.0.1:$port" \
  --env USHER_METRICS__LISTEN="127.0.0.1:$mport" \
  --env USHER_SECRETS__TOKEN_KEY="$(secret)" \
  --env USHER_SECRETS__GRANT_KEY="$(secret)" \
  --env USHER_HTTP__SHUTDOWN_DELAY_S=2 \
  --env USHER_LOG__FORMAT=text \
  "$ctr" -- "${command[@]}" >"$work/serve.log" 2>&1 </dev/null &
run_pid=$!

code() { curl -s -o "$work/body" -w '%{http_code}' --max-time 5 "$1" || true; }
deadline=$((SECONDS + 60))
until [ "$(code "$base/livez")" = 200 ]; do
  kill -0 "$run_pid" 2>/dev/null || { wait "$run_pid" || rc=$?; fail "usher exited (status ${rc:-0}) before answering"; }
  [ $SECONDS -lt $deadline ] || fail "/livez did not answer 200 within 60 s"
  sleep 0.2
done
part_done "start until /livez 200"

c="$(code "$base/readyz")"
[ "$c" = 200 ] || fail "/readyz answered $c: $(cat "$work/body")"
grep -q '"status":"ready"' "$work/body" || fail "/readyz said $(cat "$work/body")"
c="$(code "$base/livez")"
[ "$c" = 200 ] || fail "/livez answered $c"
c="$(code "http://127.0.0.1:$mport/metrics")"
[ "$c" = 200 ] || fail "/metrics on the metrics port answered $c"
grep -q '^usher_' "$work/body" || fail "/metrics holds no usher_ metric"
c="$(code "$base/metrics")"
[ "$c" = 404 ] || fail "/metrics on the main port answered $c, expected 404 (metrics.listen is set)"
[ -f "$work/data/usher.redb" ] || fail "no usher.redb in the data volume: $(ls -la "$work/data")"
[ "$(stat -c %u "$work/data/usher.redb")" = 10001 ] || fail "usher.redb is owned by uid $(stat -c %u "$work/data/usher.redb")"

# the process that holds the listening socket: its user and its root
usher_pid="$(ss -Hltnp "sport = :$port" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)"
[ -n "$usher_pid" ] || fail "no process listens on 127.0.0.1:$port"
uids="$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$usher_pid/status")"
gids="$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/$usher_pid/status")"
[ "$uids" = "10001 10001 10001 10001" ] || fail "usher runs with uids $uids, expected 10001"
[ "$gids" = "10001 10001 10001 10001" ] || fail "usher runs with gids $gids, expected 10001"
[ "$(readlink "/proc/$usher_pid/root")" != / ] || fail "usher runs in the host's root, not the image's"
[ "$(cat "/proc/$usher_pid/comm")" = usher ] || fail "the listener is $(cat "/proc/$usher_pid/comm"), not usher"
echo "usher (pid $usher_pid) answers on $base as uid/gid 10001 in $(readlink "/proc/$usher_pid/root")"
part_done "probes, user, volume"

# SIGTERM, as the kubelet sends it to the container's first process
kill -TERM "$usher_pid"
t_term=$SECONDS
draining=false
while kill -0 "$run_pid" 2>/dev/null && [ $((SECONDS - t_term)) -lt 30 ]; do
  c="$(code "$base/readyz")"
  if [ "$c" = 503 ] && grep -q '"status":"draining"' "$work/body"; then draining=true; fi
  sleep 0.2
done
kill -0 "$run_pid" 2>/dev/null && fail "usher still runs 30 s after SIGTERM"
status=0
wait "$run_pid" || status=$?
run_pid=""
[ $status -eq 0 ] || fail "usher exited with status $status after SIGTERM"
$draining || fail "/readyz never answered 503 draining between SIGTERM and the exit"
echo "SIGTERM: /readyz answered 503 draining, exit 0 after $((SECONDS - t_term)) s"
part_done "SIGTERM until exit 0"

bh rm "$ctr" >/dev/null
ctr=""
size="$(bh images --format '{{.Size}}' "$image")"
echo
echo "image check passed: $image ($size)"
printf '  %s\n' "${timings[@]}"
printf '  %-28s %4d s\n' "total" "$((SECONDS - t_start))"
