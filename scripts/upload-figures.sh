#!/usr/bin/env bash
# Measures an upload end to end on the real binary: a generated 2-minute 1080p MP4 (testsrc2 + a tone) is
# uploaded over tus with curl in two PATCHes (the second resuming at the offset HEAD gives), then packaged
# into the ladder; prints the upload throughput and the packaging time for the x264 preset given
# (default `veryfast`, the `uploads.x264_preset` default; the integration test uses `ultrafast`).
#
# usage: scripts/upload-figures.sh [preset] [seconds]    (USHER_BIN: the binary, default the debug build)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
preset="${1:-veryfast}"
seconds="${2:-120}"
bin="${USHER_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/usher}"
work="$(mktemp -d /var/tmp/usher-upload-figures.XXXXXX)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/media"
src="$work/source.mp4"
t0=$(date +%s.%N)
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1920x1080:rate=25 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$seconds" \
  -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest "$src"
len=$(stat -c %s "$src")
printf 'source: %s s of 1080p, %.1f MiB, generated in %.1f s\n' "$seconds" "$(echo "$len/1048576" | bc -l)" "$(echo "$(date +%s.%N)-$t0" | bc -l)"
cat > "$work/usher.toml" <<TOML
listen = "127.0.0.1:0"
data_dir = "$work/data"
media_dir = "$work/media"
[secrets]
token_key = "figures-token-key-0123456789abcdef0123456789"
grant_key = "figures-grant-key-0123456789abcdef0123456789"
[log]
format = "json"
level = "warn,usher=info"
[uploads]
enabled = true
x264_preset = "$preset"
TOML
key=$("$bin" api-key create --name figures --scope admin --config "$work/usher.toml" 2>/dev/null)
"$bin" serve --config "$work/usher.toml" 2> "$work/usher.log" &
pid=$!
for _ in $(seq 1 100); do
  base=$(grep -o '"listen":"[^"]*"' "$work/usher.log" 2>/dev/null | head -1 | cut -d'"' -f4) && [ -n "$base" ] && break
  sleep 0.2
done
base="http://$base"
auth=(-H "Authorization: Bearer $key" -H 'Tus-Resumable: 1.0.0')
curl -sf -X PUT "$base/api/v1/shows/figures" "${auth[@]}" -H 'Content-Type: application/json' \
  -d '{"title": "Figures", "stream_path": "figures", "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2040-01-01T00:00:00Z"}' >/dev/null
loc=$(curl -sf -D - -o /dev/null -X POST "$base/api/v1/uploads" "${auth[@]}" -H "Upload-Length: $len" \
  -H "Upload-Metadata: show_id $(printf figures | base64),filename $(printf source.mp4 | base64)" | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
half=$((len / 2))
head -c "$half" "$src" > "$work/part1"
t0=$(date +%s.%N)
curl -sf -X PATCH "$base$loc" "${auth[@]}" -H 'Upload-Offset: 0' -H 'Content-Type: application/offset+octet-stream' --data-binary @"$work/part1"
offset=$(curl -sf -I "$base$loc" "${auth[@]}" | tr -d '\r' | awk 'tolower($1)=="upload-offset:" {print $2}')
tail -c +$((offset + 1)) "$src" | curl -sf -X PATCH "$base$loc" "${auth[@]}" -H "Upload-Offset: $offset" \
  -H 'Content-Type: application/offset+octet-stream' --data-binary @-
t1=$(date +%s.%N)
printf 'upload: %.1f MiB in %.2f s = %.0f MiB/s (two PATCHes, resumed at %s)\n' "$(echo "$len/1048576" | bc -l)" \
  "$(echo "$t1-$t0" | bc -l)" "$(echo "$len/1048576/($t1-$t0)" | bc -l)" "$offset"
while :; do
  job=$(curl -sf "$base$loc" "${auth[@]}")
  state=$(echo "$job" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
  case "$state" in done|failed) break ;; esac
  sleep 1
done
t2=$(date +%s.%N)
printf 'packaging (%s, preset %s): %.1f s after the last byte; %s\n' "$state" "$preset" "$(echo "$t2-$t1" | bc -l)" "$job"
du -sh "$work/media"/figures-* 2>/dev/null || true
