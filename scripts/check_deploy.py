#!/usr/bin/env python3
"""Checks the deployment files under deploy/ (run by scripts/check-deploy.sh, in its venv).

1. The generated monitoring objects are current: components/monitoring/prometheusrule.yaml holds
   deploy/prometheus/usher-rules.yaml and grafana-dashboard.yaml holds deploy/grafana/usher-dashboard.json
   (`--write` regenerates them).
2. Every Kubernetes overlay renders with kustomize (on a copy, with throwaway secrets.env files); every
   object of a built-in kind passes `kubernetes-validate --strict`, and the Prometheus Operator's
   ServiceMonitor and PrometheusRule pass the schemas below (the fields these manifests use, closed).
3. What the manifests promise holds in the rendered objects: the probes' paths, the ports against
   usher.toml's `listen` and `metrics.listen`, the preStop sleep against `http.shutdown_delay_s`, the grace
   period above preStop + shutdown delay + drain deadline, uid 10001, the image, every secret key the pods
   read present, the ServiceMonitor's port and selector matching the Service, and per overlay its store,
   replicas and rollout strategy.
4. Every usher.toml shipped (base, overlays, compose) is taken by the real `usher` binary (a refusal names
   the key), and the compose stack is what Docker Compose reads (`docker compose config`, with and
   without its .env) and its files agree: three nodes, three sentinels, haproxy's servers and trusted
   address, Prometheus's targets, the stop grace period; haproxy.cfg passes `haproxy -c` and
   prometheus.yml `promtool check config`.

Usage: check_deploy.py [--write] USHER_BIN KUBECTL KUBERNETES_VALIDATE DOCKER_COMPOSE
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
MONITORING = K8S / "components/monitoring"
OVERLAYS = ("production", "single-node")
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}

failures: list[str] = []


def fail(msg: str) -> None:
    failures.append(msg)
    print(f"  FAIL {msg}")


def ok(msg: str) -> None:
    print(f"  ok   {msg}")


# --- 1. generated objects --------------------------------------------------------------------------------

def indent(text: str, n: int) -> str:
    pad = " " * n
    return "".join(pad + line if line.strip() else line for line in text.splitlines(keepends=True))


def generated() -> dict[Path, str]:
    rules = (DEPLOY / "prometheus/usher-rules.yaml").read_text()
    dashboard = (DEPLOY / "grafana/usher-dashboard.json").read_text()
    header = "# Generated from {} by `python3 scripts/check_deploy.py --write`: edit the source, not this.\n"
    rule = (header.format("deploy/prometheus/usher-rules.yaml")
            + "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: usher\n"
            + "  labels:\n    # kube-prometheus-stack's Prometheus selects rules by its release label: set yours\n"
            + "    role: alert-rules\nspec:\n" + indent(rules, 2))
    board = (header.format("deploy/grafana/usher-dashboard.json")
             + "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: usher-grafana-dashboard\n"
             + "  labels:\n    # Grafana's dashboard sidecar loads ConfigMaps with this label\n"
             + '    grafana_dashboard: "1"\ndata:\n  usher-dashboard.json: |\n' + indent(dashboard, 4))
    return {MONITORING / "prometheusrule.yaml": rule, MONITORING / "grafana-dashboard.yaml": board}


def check_generated(write: bool) -> None:
    print("generated monitoring objects")
    for path, text in generated().items():
        rel = path.relative_to(ROOT)
        if write:
            path.write_text(text)
            ok(f"wrote {rel}")
        elif not path.exists() or path.read_text() != text:
            fail(f"{rel} differs from its source: run python3 scripts/check_deploy.py --write")
        else:
            ok(f"{rel} matches its source")
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    if rule["spec"] != yaml.safe_load((DEPLOY / "prometheus/usher-rules.yaml").read_text()):
        fail("the PrometheusRule's spec is not the rules file")
    board = yaml.safe_load((MONITORING / "grafana-dashboard.yaml").read_text())
    if json.loads(board["data"]["usher-dashboard.json"]) != json.loads(
            (DEPLOY / "grafana/usher-dashboard.json").read_text()):
        fail("the dashboard ConfigMap's JSON is not the dashboard")


# --- 2. render and validate ------------------------------------------------------------------------------

# The Prometheus Operator's objects as these manifests use them (monitoring.coreos.com/v1), closed
# where they are written here so a misspelt field fails, as the operator's own CRD schema would.
NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 253}
METADATA = {"type": "object", "required": ["name"],
            "properties": {"name": NAME, "namespace": NAME, "labels": {"type": "object"},
                           "annotations": {"type": "object"}}}
DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
SCHEMAS = {
    "ServiceMonitor": {
        "type": "object", "additionalProperties": False, "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "ServiceMonitor"},
            "metadata": METADATA,
            "spec": {"type": "object", "additionalProperties": False, "required": ["selector", "endpoints"],
                     "properties": {
                         "jobLabel": {"type": "string"},
                         "selector": {"type": "object", "additionalProperties": False,
                                      "properties": {"matchLabels": {"type": "object",
                                                                     "additionalProperties": {"type": "string"}}}},
                         "endpoints": {"type": "array", "minItems": 1, "items": {
                             "type": "object", "additionalProperties": False, "required": ["port"],
                             "properties": {
                                 "port": {"type": "string"}, "path": {"type": "string"},
                                 "interval": DURATION, "scrapeTimeout": DURATION,
                                 "authorization": {"type": "object", "additionalProperties": False,
                                                   "required": ["credentials"],
                                                   "properties": {
                                                       "type": {"type": "string"},
                                                       "credentials": {"type": "object", "additionalProperties": False,
                                                                       "required": ["name", "key"],
                                                                       "properties": {"name": NAME,
                                                                                      "key": {"type": "string"},
                                                                                      "optional": {"type": "boolean"}}}}}}}}}}},
    },
    "PrometheusRule": {
        "type": "object", "additionalProperties": False, "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PrometheusRule"},
            "metadata": METADATA,
            "spec": {"type": "object", "additionalProperties": False, "required": ["groups"],
                     "properties": {"groups": {"type": "array", "items": {
                         "type": "object", "additionalProperties": False, "required": ["name", "rules"],
                         "properties": {
                             "name": {"type": "string", "minLength": 1}, "interval": DURATION,
                             "rules": {"type": "array", "items": {
                                 "type": "object", "additionalProperties": False, "required": ["expr"],
                                 "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
                                 "properties": {
                                     "record": {"type": "string"}, "alert": {"type": "string"},
                                     "expr": {"type": ["string", "integer"]}, "for": DURATION,
                                     "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                     "annotations": {"type": "object",
                                                     "additionalProperties": {"type": "string"}}}}}}}}}}},
    },
}


def render(kubectl: str, work: Path, overlay: str) -> list[dict]:
    secrets_env = work / "kubernetes/overlays" / overlay / "secrets.env"
    secrets_env.write_text(f"token_key={secrets.token_hex(32)}\ngrant_key={secrets.token_hex(32)}\n"
                           f"metrics_token={secrets.token_hex(24)}\n")
    out = subprocess.run([kubectl, "kustomize", str(work / "kubernetes/overlays" / overlay)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"{overlay}: kustomize: {out.stderr.strip()}")
        return []
    (work / f"{overlay}.yaml").write_text(out.stdout)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def validate(validator: str, work: Path, overlay: str, docs: list[dict]) -> None:
    files = []
    for i, d in enumerate(docs):
        if d["kind"] in CRD_KINDS:
            try:
                jsonschema.validate(d, SCHEMAS[d["kind"]])
                ok(f"{overlay}: {d['kind']}/{d['metadata']['name']} matches its schema")
            except jsonschema.ValidationError as e:
                fail(f"{overlay}: {d['kind']}/{d['metadata']['name']}: {e.message} at {list(e.absolute_path)}")
            continue
        f = work / f"{overlay}-{i:02d}-{d['kind']}.yaml"
        f.write_text(yaml.safe_dump(d))
        files.append(str(f))
    out = subprocess.run([validator, "--strict", "--quiet", *files], capture_output=True, text=True)
    if out.returncode != 0 or "ERROR" in out.stdout or "ERROR" in out.stderr:
        fail(f"{overlay}: kubernetes-validate --strict:\n{out.stdout}{out.stderr}")
    else:
        ok(f"{overlay}: {len(files)} objects pass kubernetes-validate --strict")


# --- 3. what the manifests promise ---------------------------------------------------------------------

def find(docs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def check_promises(overlay: str, docs: list[dict]) -> None:
    def expect(cond: bool, msg: str) -> None:
        (ok if cond else fail)(f"{overlay}: {msg}")

    [deploy] = find(docs, "Deployment", "usher")
    spec = deploy["spec"]
    pod = spec["template"]["spec"]
    [usher] = [c for c in pod["containers"] if c["name"] == "usher"]
    config_name = next(v["configMap"]["name"] for v in pod["volumes"] if v["name"] == "config")
    [config_map] = find(docs, "ConfigMap", config_name)
    config = tomllib.loads(config_map["data"]["usher.toml"])
    http = config.get("http", {})
    shutdown_delay, drain = http.get("shutdown_delay_s", 0), http.get("drain_timeout_s", 30)
    ports = {p["name"]: p["containerPort"] for p in usher["ports"]}

    expect(usher["image"] == "usher:latest", f"image {usher['image']}")
    expect(usher.get("command", []) + usher.get("args", []) == ["usher", "serve", "--config", "/etc/usher/usher.toml"],
           "runs usher serve --config /etc/usher/usher.toml")
    expect(any(m["mountPath"] == "/etc/usher" and m["name"] == "config" for m in usher["volumeMounts"]),
           "usher.toml is mounted at /etc/usher")
    expect(pod["securityContext"].get("runAsUser") == 10001 and pod["securityContext"].get("runAsNonRoot"),
           "runs as uid 10001, not root")
    expect(usher["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness probe /readyz")
    expect(usher["livenessProbe"]["httpGet"]["path"] == "/livez", "liveness probe /livez")
    expect(ports.get("http") == port_of(config["listen"]) == 8080, "http port 8080 is usher.toml's listen")
    expect(ports.get("metrics") == port_of(config["metrics"]["listen"]) == 9100,
           "metrics port 9100 is usher.toml's metrics.listen")
    pre_stop = usher["lifecycle"]["preStop"]["sleep"]["seconds"]
    expect(pre_stop == shutdown_delay, f"preStop sleep {pre_stop} s = http.shutdown_delay_s {shutdown_delay} s")
    grace = pod["terminationGracePeriodSeconds"]
    expect(grace > pre_stop + shutdown_delay + drain,
           f"terminationGracePeriodSeconds {grace} > preStop {pre_stop} + shutdown delay {shutdown_delay} "
           f"+ drain deadline {drain}")

    # every secret key a pod reads without `optional` is in the Secret
    generated = {d["metadata"]["name"]: d for d in find(docs, "Secret")}
    for e in usher.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref and not ref.get("optional"):
            s = generated.get(ref["name"])
            expect(s is not None and ref["key"] in s.get("data", {}), f"Secret {ref['name']} has {ref['key']}")

    [service] = find(docs, "Service", "usher")
    pod_labels = spec["template"]["metadata"]["labels"]
    expect(all(pod_labels.get(k) == v for k, v in service["spec"]["selector"].items()),
           "the Service selects the pods")
    for monitor in find(docs, "ServiceMonitor"):
        sel = monitor["spec"]["selector"]["matchLabels"]
        expect(all(service["metadata"]["labels"].get(k) == v for k, v in sel.items()),
               "the ServiceMonitor selects the Service")
        names = {p["name"] for p in service["spec"]["ports"]}
        expect(all(ep["port"] in names for ep in monitor["spec"]["endpoints"]),
               "the ServiceMonitor scrapes a port of the Service")
        expect(service["metadata"]["labels"].get(monitor["spec"]["jobLabel"]) == "usher",
               'the scrape job is "usher", as the rules expect')
        for ep in monitor["spec"]["endpoints"]:
            cred = ep.get("authorization", {}).get("credentials")
            if cred:
                expect(cred["name"] in generated and cred["key"] in generated[cred["name"]]["data"],
                       f"the ServiceMonitor's token is Secret {cred['name']} key {cred['key']}")

    if overlay == "production":
        expect(config["store"]["kind"] == "redis" and "sentinel" in config["store"], "Redis with Sentinel")
        expect(spec["replicas"] == 3, "3 replicas")
        expect(spec["strategy"]["type"] == "RollingUpdate"
               and spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, "rolling update, maxUnavailable 0")
        [hpa] = find(docs, "HorizontalPodAutoscaler")
        expect(hpa["spec"]["scaleTargetRef"]["name"] == "usher" and hpa["spec"]["minReplicas"] >= 3,
               "the autoscaler keeps 3 or more nodes")
        expect(len(find(docs, "PodDisruptionBudget")) == 2, "disruption budgets for Usher and Redis")
        [redis] = find(docs, "StatefulSet", "usher-redis")
        expect(redis["spec"]["replicas"] == 3 and {c["name"] for c in redis["spec"]["template"]["spec"]["containers"]}
               == {"redis", "sentinel"}, "3 Redis pods, each with a sentinel")
        headless = find(docs, "Service", redis["spec"]["serviceName"])
        expect(bool(headless) and headless[0]["spec"].get("clusterIP") == "None", "Redis has its headless Service")
        addrs = config["store"]["sentinel"]["addresses"]
        expect(addrs == [f"usher-redis-{i}.{redis['spec']['serviceName']}:26379" for i in range(3)],
               "usher.toml names the three sentinels by their pods' names")
    else:
        expect(config["store"]["kind"] == "embedded", "the embedded store")
        expect(spec["replicas"] == 1, "1 replica")
        expect(spec["strategy"] == {"type": "Recreate"}, "Recreate strategy")
        data = next(v for v in pod["volumes"] if v["name"] == "data")
        claims = {d["metadata"]["name"] for d in find(docs, "PersistentVolumeClaim")}
        expect(data.get("persistentVolumeClaim", {}).get("claimName") in claims, "the store is on a claimed volume")
        expect(not find(docs, "HorizontalPodAutoscaler"), "no autoscaler (one node holds the store)")
        mount = next(m for m in usher["volumeMounts"] if m["mountPath"] == "/var/lib/usher")
        expect(mount["name"] == "data" and config["data_dir"].startswith("/var/lib/usher"),
               "data_dir is on the volume")

    # a backup folder must be a volume of its own, or the backups go where the store goes
    destination = config.get("backup", {}).get("destination", "")
    if destination.startswith("file://"):
        folder = destination.removeprefix("file://")
        mounts = [m for m in usher["volumeMounts"] if folder == m["mountPath"] or folder.startswith(m["mountPath"] + "/")]
        volume = next((v for v in pod["volumes"] if mounts and v["name"] == mounts[-1]["name"]), {})
        claim = volume.get("persistentVolumeClaim", {}).get("claimName")
        expect(claim is not None and claim in {d["metadata"]["name"] for d in find(docs, "PersistentVolumeClaim")}
               and all(m["name"] != "data" for m in mounts),
               f"backups go to {folder}, a claimed volume apart from the store's")


# --- 4. configurations and the compose stack -------------------------------------------------------------

CONFIG_REFUSAL = re.compile(r"config key `|for key \"|--config")


def uncommented_sections(text: str) -> str:
    """The file with its commented-out example sections (`# [backup]` up to a blank line) taken in, so
    the examples are checked too."""
    out, inside = [], False
    for line in text.splitlines():
        if re.fullmatch(r"# \[[a-z_.]+\]", line):
            inside = True
        elif not line.strip():
            inside = False
        out.append(line[2:] if inside and line.startswith("# ") else line)
    return "\n".join(out) + "\n"


def check_usher_config(usher: str, path: Path, label: str | None = None) -> None:
    """The real binary reads the file: `usher api-key create` loads and validates the configuration
    before it opens the store (an embedded store in a temporary folder; a Redis store is not there to
    reach, which is not the file's fault)."""
    rel = label or path.relative_to(ROOT)
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "USHER_SECRETS__TOKEN_KEY": secrets.token_hex(32),
               "USHER_SECRETS__GRANT_KEY": secrets.token_hex(32), "USHER_METRICS__TOKEN": secrets.token_hex(24)}
        out = subprocess.run([usher, "api-key", "create", "--config", str(path), "--data-dir", data,
                              "--name", "config-check", "--scope", "admin"],
                             capture_output=True, text=True, env=env, timeout=60)
    text = out.stdout + out.stderr
    if CONFIG_REFUSAL.search(text):
        fail(f"{rel}: usher refuses it: {out.stderr.strip()}")
    elif out.returncode != 0 and "connecting to Redis" not in text:
        fail(f"{rel}: usher api-key create failed: {out.stderr.strip()}")
    else:
        ok(f"{rel}: usher takes it")


# files up.sh writes beside compose.yaml before the first `docker compose up` (ignored by git)
WRITTEN_BY_UP = {"metrics-token"}


def check_compose(compose_bin: str) -> None:
    """The compose stack as Docker Compose itself reads it (`config`: the compose specification, the
    anchors, the variables), then what the stack's files promise each other."""
    compose_dir = DEPLOY / "compose"
    base_cmd = [compose_bin, "--project-directory", str(compose_dir), "-f", str(compose_dir / "compose.yaml")]
    clean_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    with tempfile.TemporaryDirectory() as tmp:
        env_file = Path(tmp) / "env"
        # without .env the stack must refuse to start and say how to make one
        env_file.write_text("")
        bare = subprocess.run([*base_cmd, "--env-file", str(env_file), "config", "-q"],
                              capture_output=True, text=True, env=clean_env)
        if bare.returncode == 0 or "up.sh" not in bare.stderr:
            fail(f"compose: without .env `config` should fail naming up.sh, got {bare.returncode}: {bare.stderr.strip()}")
        else:
            ok("compose: without .env it refuses to start and names up.sh")
        env_file.write_text(f"USHER_TOKEN_KEY={secrets.token_hex(32)}\nUSHER_GRANT_KEY={secrets.token_hex(32)}\n"
                            f"USHER_METRICS_TOKEN={secrets.token_hex(24)}\nGRAFANA_ADMIN_PASSWORD=x\n")
        out = subprocess.run([*base_cmd, "--env-file", str(env_file), "--profile", "monitoring", "config",
                              "--format", "json"], capture_output=True, text=True, env=clean_env)
    if out.returncode != 0:
        fail(f"compose: docker compose config: {out.stderr.strip()}")
        return
    ok("compose: docker compose config takes compose.yaml (with the monitoring profile)")
    model = json.loads(out.stdout)
    services = model["services"]

    missing = [f"{name}: {v['source']}" for name, svc in services.items() for v in svc.get("volumes", [])
               if v["type"] == "bind" and not Path(v["source"]).exists()
               and Path(v["source"]).name not in WRITTEN_BY_UP]
    if missing:
        fail(f"compose: bind mounts of missing files: {missing}")
    else:
        ok("compose: every file it mounts is there (metrics-token is written by up.sh)")
    nodes = sorted(n for n, svc in services.items() if (svc.get("command") or [])[:2] == ["usher", "serve"])
    sentinels = sorted(n for n, svc in services.items() if "redis-sentinel" in " ".join(svc.get("command") or []))
    if len(nodes) != 3 or len(sentinels) != 3:
        fail(f"compose: expected 3 Usher nodes and 3 sentinels, found {nodes} and {sentinels}")
    else:
        ok(f"compose: Usher nodes {', '.join(nodes)}; sentinels {', '.join(sentinels)}")

    config = tomllib.loads((compose_dir / "usher.toml").read_text())
    haproxy_ip = services["haproxy"]["networks"]["usher"]["ipv4_address"]
    if config.get("trusted_proxies") != [haproxy_ip]:
        fail(f"compose: usher.toml trusts {config.get('trusted_proxies')}, haproxy is {haproxy_ip}")
    else:
        ok("compose: usher.toml trusts haproxy's address, and only it")
    sentinel_addrs = sorted(a.split(":")[0] for a in config["store"]["sentinel"]["addresses"])
    if sentinel_addrs != sentinels:
        fail(f"compose: usher.toml names sentinels {sentinel_addrs}, the stack runs {sentinels}")
    haproxy_cfg = (compose_dir / "haproxy.cfg").read_text()
    backends = sorted(re.findall(r"^\s*server\s+(\S+)\s+\S+:(\d+)", haproxy_cfg, re.M))
    if backends != [(n, str(port_of(config["listen"]))) for n in nodes]:
        fail(f"compose: haproxy's servers {backends} are not the nodes {nodes} on usher.toml's port")
    else:
        ok("compose: haproxy balances the three nodes on usher.toml's port, checking /readyz")
    prom = yaml.safe_load((compose_dir / "prometheus.yml").read_text())
    targets = sorted(t for job in prom["scrape_configs"] if job["job_name"] == "usher"
                     for sc in job["static_configs"] for t in sc["targets"])
    if targets != [f"{n}:{port_of(config['metrics']['listen'])}" for n in nodes]:
        fail(f"compose: Prometheus scrapes {targets}, not the nodes' metrics.listen")
    else:
        ok("compose: Prometheus scrapes each node's metrics.listen as job usher")
    folder = config.get("backup", {}).get("destination", "").removeprefix("file://")
    if folder:
        if all(any(v["type"] == "volume" and v["target"] == folder for v in services[n]["volumes"])
               for n in nodes):
            ok(f"compose: the backup folder {folder} is a volume every node mounts")
        else:
            fail(f"compose: the backup folder {folder} is not a volume of every node")
    grace = max(int(str(services[n].get("stop_grace_period", "10s")).rstrip("s")) for n in nodes)
    http = config.get("http", {})
    if grace <= http.get("shutdown_delay_s", 0) + http.get("drain_timeout_s", 30):
        fail(f"compose: stop_grace_period {grace} s is not above the shutdown delay and the drain deadline")
    else:
        ok(f"compose: stop_grace_period {grace} s > shutdown delay + drain deadline")

    haproxy = subprocess.run(["haproxy", "-c", "-f", str(compose_dir / "haproxy.cfg")], capture_output=True, text=True)
    if haproxy.returncode == 0:
        ok("compose: haproxy -c haproxy.cfg")
    else:
        fail(f"compose: haproxy -c haproxy.cfg: {haproxy.stdout.strip()}{haproxy.stderr.strip()}")
    with tempfile.TemporaryDirectory() as tmp:
        # laid out as the Prometheus container sees it: the config beside rules/ (deploy/prometheus)
        shutil.copy(compose_dir / "prometheus.yml", Path(tmp) / "prometheus.yml")
        shutil.copytree(DEPLOY / "prometheus", Path(tmp) / "rules")
        (Path(tmp) / "metrics-token").write_text(secrets.token_hex(24))
        prom_check = subprocess.run(["promtool", "check", "config", str(Path(tmp) / "prometheus.yml")],
                                    capture_output=True, text=True)
    if prom_check.returncode == 0:
        ok("compose: promtool check config prometheus.yml")
    else:
        fail(f"compose: promtool check config prometheus.yml: {prom_check.stdout}{prom_check.stderr}")


def main() -> int:
    args = sys.argv[1:]
    write = "--write" in args
    args = [a for a in args if a != "--write"]
    usher, kubectl, validator, compose_bin = args
    check_generated(write)
    with tempfile.TemporaryDirectory(prefix="usher-deploy-") as tmp:
        work = Path(tmp)
        shutil.copytree(DEPLOY, work, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("secrets.env"))
        for overlay in OVERLAYS:
            print(f"overlay {overlay}")
            docs = render(kubectl, work, overlay)
            if docs:
                validate(validator, work, overlay, docs)
                check_promises(overlay, docs)
    print("usher.toml files")
    for path in sorted(DEPLOY.rglob("usher.toml")):
        check_usher_config(usher, path)
        example = uncommented_sections(path.read_text())
        if example != path.read_text():
            with tempfile.TemporaryDirectory() as tmp:
                variant = Path(tmp) / "usher.toml"
                variant.write_text(example)
                check_usher_config(usher, variant, label=f"{path.relative_to(ROOT)} with its commented sections")
    print("compose stack")
    check_compose(compose_bin)
    if failures:
        print(f"check-deploy: {len(failures)} FAILED")
        return 1
    print("check-deploy: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
