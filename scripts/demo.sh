#!/usr/bin/env bash
# The demo command of the README: builds the front-end assets and a release usher, then runs
# `usher demo` on the embedded store with the committed test stream. Extra arguments go to `usher demo`
# (for instance --listen 0.0.0.0:8080 --public-url http://192.168.1.20:8080 to watch from a phone or TV).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/build-web.sh >/dev/null
cargo build --release --locked -p usher-server --bin usher
target="${CARGO_TARGET_DIR:-$root/target}"
exec "$target/release/usher" demo --media-dir "$root/media" --data-dir "$root/usher-demo-data" "$@"
