#!/usr/bin/env bash
# Builds the viewer's front-end assets into web/dist/ (embedded by the usher binary at compile time):
# a clean `npm ci` from the committed lockfile, then esbuild. Safe to run again; stops at the first error.
set -euo pipefail
cd "$(dirname "$0")/../web"
npm ci --no-audit --no-fund
node build.mjs
