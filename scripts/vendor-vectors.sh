#!/usr/bin/env bash
# Regenerates usher-cdn's vendor known-answer vectors (crates/usher-cdn/testdata/vectors.json) with the
# vendors' own reference code: Akamai's akamai-edgeauth and AWS's botocore CloudFrontSigner (with rsa), at the
# versions pinned and hashed in crates/usher-cdn/vectors/requirements.txt, installed from PyPI into a venv
# under /var/tmp that is rebuilt whenever that file changes; CloudFront signatures are verified with
# `openssl dgst -verify`, and nginx secure_link links must be accepted by a real nginx. See
# crates/usher-cdn/vectors/generate.py for what each vector is.
#
#   scripts/vendor-vectors.sh          write the file (then read the diff: a changed value is a finding)
#   scripts/vendor-vectors.sh --check  regenerate into a temporary file and fail if it differs from the
#                                      committed one (scripts/test.sh runs this)
#
# Installs what it needs when missing: python3-venv, nginx and openssl from Debian.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

mode=write
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

dir=crates/usher-cdn/vectors
committed=crates/usher-cdn/testdata/vectors.json
venv=/var/tmp/usher-vendor-vectors
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The venv is kept between runs (a run is then about a second) and rebuilt when the pinned set changes or
# it no longer imports.
if ! cmp -s "$dir/requirements.txt" "$venv/requirements.txt" 2>/dev/null \
  || ! "$venv/bin/python" -c 'import akamai.edgeauth, botocore.signers, rsa' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$dir/requirements.txt"
  cp "$dir/requirements.txt" "$venv/requirements.txt"
fi

out="$(mktemp /var/tmp/usher-vectors.XXXXXX.json)"
trap 'rm -f "$out"' EXIT
"$venv/bin/python" "$dir/generate.py" "$out"

if [ "$mode" = write ]; then
  cp "$out" "$committed"
  echo "wrote $committed"
elif diff -u "$committed" "$out"; then
  echo "$committed: every vector is what the vendors' code gives"
else
  echo "$committed differs from what the vendors' code gives (above: - committed, + regenerated)" >&2
  exit 1
fi
