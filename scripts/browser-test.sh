#!/usr/bin/env bash
# Runs the browser tests (web/tests/browser/*.test.mjs, node's test runner + playwright-core + headless
# Chromium) against the real usher binary.
#   USHER_BIN        the binary (default: $CARGO_TARGET_DIR or target, then debug/usher)
#   USHER_MEDIA_DIR  the media folder served by the demo (default: media)
#   USHER_CHROMIUM   the browser (default: /usr/bin/chromium)
#   USHER_TEST_LOG=1 also prints the servers' logs
#   USHER_TEST_LOCAL_ASSETS=1  the browser loads /assets/* from web/dist, not from the binary (front-end
#                    work without rebuilding usher; the asset check is then reported as skipped)
# Extra arguments go to `node --test` (e.g. --test-name-pattern=revok).
# The binary embeds web/dist at build time: run scripts/build-web.sh before building it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

abs() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
target="$(abs "${CARGO_TARGET_DIR:-$root/target}")"
export USHER_BIN="$(abs "${USHER_BIN:-$target/debug/usher}")"
export USHER_MEDIA_DIR="$(abs "${USHER_MEDIA_DIR:-$root/media}")"
export USHER_CHROMIUM="${USHER_CHROMIUM:-/usr/bin/chromium}"

fail() { echo "browser-test: $*" >&2; exit 1; }
[ -x "$USHER_BIN" ] || fail "no usher binary at $USHER_BIN (cargo build -p usher-server, or set USHER_BIN)"
[ -d "$USHER_MEDIA_DIR" ] || fail "no media folder at $USHER_MEDIA_DIR (scripts/make-demo-media.sh, or set USHER_MEDIA_DIR)"
[ -x "$USHER_CHROMIUM" ] || fail "no Chromium at $USHER_CHROMIUM (apt-get install -y chromium, or set USHER_CHROMIUM)"
command -v node >/dev/null || fail "node is not installed"

cd "$root/web"
if [ ! -f node_modules/playwright-core/package.json ] || [ ! -f dist/watch.js ]; then
  "$root/scripts/build-web.sh"
fi
# One file at a time: each starts its own server and browser (~0.5 GB).
exec node --test --test-concurrency=1 --test-timeout=180000 "$@" tests/browser/*.test.mjs
