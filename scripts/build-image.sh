#!/usr/bin/env bash
# Builds Usher's container image from source, the full form (docs/operations.md, "Container image"):
# the base image when missing (scripts/image-base.sh), then the Containerfile's multi-stage build with
# buildah: the web assets (npm ci + esbuild) and `cargo build --release --locked -p usher-server` in the
# build stage, with this machine's Rust toolchain and Node mounted read-only (the cargo registry, npm's
# cache and cargo's target folder persist in buildah cache mounts, so a second build is incremental),
# then the runtime image, tagged localhost/usher:latest, and the slim one (no ffmpeg), localhost/usher:slim.
# Ends with the same start check as CI (scripts/check-image.sh --image …) of each image. Needs root.
#
#   scripts/build-image.sh            # both images, then the check
#   scripts/build-image.sh --no-slim  # only localhost/usher:latest
#   scripts/build-image.sh --no-check # skip the start check
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/image-env.sh
. scripts/image-env.sh

slim=true
check=true
for arg in "$@"; do
  case "$arg" in
    --no-slim) slim=false ;;
    --no-check) check=false ;;
    *) echo "usage: $0 [--no-slim] [--no-check]" >&2; exit 2 ;;
  esac
done

t_start=$SECONDS
step() { printf '\n==> %s (%d s)\n' "$*" "$((SECONDS - t_start))"; }

step "base image"
scripts/image-base.sh

# The build stage's tools, from this machine: the Rust toolchain rustup uses here (a real toolchain
# folder, bin/cargo and bin/rustc beside lib/rustlib), and Node with npm laid out as /opt/node/{bin,lib}.
if command -v rustup >/dev/null; then
  cargo_bin="$(rustup which cargo)"
else
  cargo_bin="$(readlink -f "$(command -v cargo)")"
fi
toolchain="$(dirname "$(dirname "$cargo_bin")")"
[ -x "$toolchain/bin/rustc" ] || { echo "no rustc beside $cargo_bin" >&2; exit 1; }
node_bin="$(readlink -f "$(command -v node)")"
npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
[ -f "$npm_dir/bin/npm-cli.js" ] || { echo "npm not found beside $(command -v npm)" >&2; exit 1; }
node_dir="$USHER_IMAGE_CACHE/node"
node_version="$("$node_bin" --version) npm $(npm --version)"
if [ "$(cat "$node_dir/VERSION" 2>/dev/null)" != "$node_version" ]; then
  rm -rf "$node_dir"
  mkdir -p "$node_dir/bin" "$node_dir/lib/node_modules"
  cp "$node_bin" "$node_dir/bin/node"
  cp -a "$npm_dir" "$node_dir/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$node_dir/bin/npm"
  echo "$node_version" >"$node_dir/VERSION"
fi
echo "Rust: $("$toolchain/bin/rustc" --version) from $toolchain; Node: $node_version"

# A TLS-intercepting proxy's CA is in this machine's bundle: the build stage's cargo and npm trust it
# through a read-only mount, and nothing of it lands in an image.
ca="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
ca_args=()
if [ -s "$ca" ]; then
  ca_args=(--volume "$ca:/run/usher-build-ca.crt:ro"
    --build-arg CARGO_HTTP_CAINFO=/run/usher-build-ca.crt
    --build-arg NODE_EXTRA_CA_CERTS=/run/usher-build-ca.crt)
fi

build() { # target tag
  local old_id
  old_id="$(bh images --quiet --no-trunc "$2" 2>/dev/null || true)"
  nice -n 19 buildah --storage-driver "$BUILDAH_STORAGE_DRIVER" build --layers --isolation chroot \
    --file Containerfile --target "$1" --tag "$2" \
    --build-arg BASE_IMAGE="$USHER_BASE_IMAGE" --build-arg BUILD_IMAGE="$USHER_BASE_IMAGE" \
    --volume "$toolchain:/opt/rust:ro" --volume "$node_dir:/opt/node:ro" "${ca_args[@]}" \
    .
  # the image this one replaces goes (vfs keeps a full file system per layer); cached layers stay
  local new_id
  new_id="$(bh images --quiet --no-trunc "$2")"
  if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then bh rmi "$old_id" >/dev/null 2>&1 || true; fi
}

step "image $USHER_IMAGE (target runtime: release build, web assets, ffmpeg)"
t0=$SECONDS
build runtime "$USHER_IMAGE"
echo "built $USHER_IMAGE in $((SECONDS - t0)) s"

if $slim; then
  step "image ${USHER_IMAGE%:*}:slim (target slim: no ffmpeg)"
  t0=$SECONDS
  build slim "${USHER_IMAGE%:*}:slim"
  echo "built ${USHER_IMAGE%:*}:slim in $((SECONDS - t0)) s"
fi

bh images --filter reference='localhost/usher*'

if $check; then
  step "start check"
  scripts/check-image.sh --image "$USHER_IMAGE"
  if $slim; then scripts/check-image.sh --image "${USHER_IMAGE%:*}:slim"; fi
fi
step "done"
