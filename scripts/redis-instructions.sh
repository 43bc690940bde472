#!/usr/bin/env bash
# redis-server's instructions per request: scripts/instructions.sh --process redis (its former name, kept
# for the commands in BENCHMARKS.md and docs/redis.md).
exec "$(dirname "$0")/instructions.sh" --process redis "$@"
