#!/usr/bin/env python3
"""Checks that the Prometheus rules and the Grafana dashboard name only metrics Usher exports.

Starts a real `usher serve` (embedded store in a temporary folder, the test GeoIP database, `/metrics` on
a listener of its own behind a token, fast CDN probes, backups to a local folder) and drives the traffic
that makes the labelled series appear (a show, a ticket registered through the API, an admit, heartbeats,
a master playlist, refused admits, a healthy and a broken CDN). Then a second node on a real
redis-server, which is killed under it once a backup from it has landed: the store's failures
(`usher_store_errors_total` appears with the first one), `usher_ready` 0, admits refused with
`store_unavailable` and backups that fail. Scrapes both, and fails when a metric named by an expression of
deploy/prometheus/usher-rules.yaml or deploy/grafana/usher-dashboard.json is exported by neither, or when
an expression asks for a label value (`route="/api/v1/playback"`) that no exported series has. Names
Prometheus makes itself (`up`, the recording rules' own names) are allowed by name. Also fails when the
dashboard does not query through its datasource variable, or an alert has no row in docs/operations.md.

Usage: check_observability.py USHER_BIN ROOT WORK_DIR MMDB
Standard library and PyYAML only; scripts/check-observability.sh installs what is missing and runs
promtool after this.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Series Prometheus writes itself, never scraped from a target: allowed in expressions by name.
SYNTHESISED = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "ALERTS",
    "ALERTS_FOR_STATE",
}

PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
    "bool", "inf", "nan", "start", "end",
}

SUFFIXES = ("_bucket", "_sum", "_count")


# --- PromQL: the metric names and equality matchers of an expression ----------------------------------

def grafana_to_promql(expr: str) -> str:
    """Replaces Grafana's variables so the text parses as PromQL ($__rate_interval in a range, $show in
    a matcher's string)."""
    expr = re.sub(r"\[\s*\$__\w+\s*\]", "[5m]", expr)
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", lambda m: "$" + (m.group(1) or m.group(2)), expr)


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads: every identifier that is not a function, aggregation,
    keyword, label name or part of a string, number or duration."""
    e = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)  # ranges and subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"[0-9.][0-9a-zA-Z_.+-]*|([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", e):
        name, call = m.group(1), m.group(2)
        if not name or call or name.lower() in PROMQL_WORDS:
            continue
        names.add(name)
    return names


def equality_matchers(expr: str) -> list[tuple[str, str, str]]:
    """(metric, label, value) for each `label="value"` matcher on a named metric; values holding a
    dashboard variable are skipped."""
    out = []
    for m in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}", expr):
        for lm in re.finditer(r'([a-zA-Z_]\w*)\s*(=~|!=|!~|=)\s*"((?:\\.|[^"\\])*)"', m.group(2)):
            if lm.group(2) == "=" and lm.group(3) and "$" not in lm.group(3):
                out.append((m.group(1), lm.group(1), lm.group(3)))
    return out


@dataclass
class Use:
    """Where an expression came from, for the report."""

    where: str
    expr: str


def rules_expressions(path: Path) -> tuple[list[Use], set[str]]:
    doc = yaml.safe_load(path.read_text())
    uses, recorded = [], set()
    for group in doc["groups"]:
        for rule in group["rules"]:
            name = rule.get("record") or rule.get("alert")
            if "record" in rule:
                recorded.add(rule["record"])
            uses.append(Use(f"{path.name}: {name}", rule["expr"]))
    return uses, recorded


def dashboard_expressions(path: Path) -> list[Use]:
    doc = json.loads(path.read_text())
    uses = []

    def panels(items):
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(doc.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                uses.append(Use(f"{path.name}: panel '{p.get('title')}'", grafana_to_promql(t["expr"])))
    for v in doc.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") != "query" or not q:
            continue
        # label_values(metric, label) / label_values(label): the metric is an expression, the label is not
        m = re.fullmatch(r"\s*label_values\((.*?)(?:,\s*\w+)?\)\s*", q)
        if m and m.group(1).strip():
            uses.append(Use(f"{path.name}: variable '{v.get('name')}'", grafana_to_promql(m.group(1))))
        elif not m:
            uses.append(Use(f"{path.name}: variable '{v.get('name')}'", grafana_to_promql(q)))
    return uses


def dashboard_problems(path: Path) -> list[str]:
    """What would make the dashboard fail to import or query the wrong data source: every panel and
    query must use the `datasource` variable (type datasource, Prometheus), panel ids must be unique,
    and every panel must have a place on the grid."""
    doc = json.loads(path.read_text())
    problems = []
    variables = {v["name"]: v for v in doc.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("no `datasource` variable of type datasource (prometheus)")
    ids = set()
    for p in doc.get("panels", []):
        if p["id"] in ids:
            problems.append(f"panel id {p['id']} used twice")
        ids.add(p["id"])
        if not {"h", "w", "x", "y"} <= set(p.get("gridPos", {})):
            problems.append(f"panel '{p.get('title')}' has no place on the grid")
        if p.get("type") == "row":
            continue
        for owner in [p, *p.get("targets", [])]:
            if owner.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"panel '{p.get('title')}' does not query the datasource variable")
                break
    return problems


def undocumented_alerts(rules: Path, docs: Path) -> list[str]:
    """Alerts without a row in docs/operations.md's table (what it means, what to do), and rows for
    alerts that no longer exist."""
    alerts = {r["alert"] for g in yaml.safe_load(rules.read_text())["groups"] for r in g["rules"] if "alert" in r}
    rows = set(re.findall(r"^\| `(Usher\w+)` \|", docs.read_text(), re.M))
    return ([f"alert {a} has no row in {docs.name}" for a in sorted(alerts - rows)]
            + [f"{docs.name} documents {a}, which is no alert" for a in sorted(rows - alerts)])


# --- the exposition ------------------------------------------------------------------------------------

@dataclass
class Exposition:
    text: str = ""
    types: dict[str, str] = field(default_factory=dict)
    samples: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "Exposition":
        x = cls(text=text)
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(maxsplit=3)
                x.types[name] = kind
            elif line and not line.startswith("#"):
                m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
                if m:
                    labels = dict(re.findall(r'([a-zA-Z_]\w*)="((?:\\.|[^"\\])*)"', m.group(3) or ""))
                    labels["__value__"] = m.group(4)
                    x.samples.setdefault(m.group(1), []).append(labels)
        return x

    def merge(self, other: "Exposition") -> "Exposition":
        """The series of two servers together (each scraped whole in `text`)."""
        x = Exposition(text=self.text + "\n" + other.text, types={**self.types, **other.types})
        for source in (self, other):
            for name, samples in source.samples.items():
                x.samples.setdefault(name, []).extend(samples)
        return x

    def exports(self, name: str) -> bool:
        if name in self.samples:
            return True
        for suffix in SUFFIXES:
            base = name.removesuffix(suffix)
            if base != name and self.types.get(base) in ("histogram", "summary"):
                return True
        return False

    def has_value(self, name: str, label: str, value: str) -> bool:
        return any(s.get(label) == value for s in self.samples.get(name, []))


# --- a real server ---------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method: str, url: str, body=None, headers=None, timeout=10.0):
    """One HTTP request; returns (status, parsed JSON or text)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            status, raw, ctype = res.status, res.read(), res.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, raw, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
    text = raw.decode(errors="replace")
    return status, (json.loads(text) if "json" in ctype and text else text)


def expect(what: str, got: tuple, *statuses: int):
    if got[0] not in statuses:
        raise SystemExit(f"check-observability: {what}: expected {statuses}, got {got[0]} {got[1]}")
    return got[1]


@dataclass
class Node:
    """A running `usher serve` and what the check needs to talk to it."""

    name: str
    proc: subprocess.Popen
    base: str
    metrics: str
    metrics_token: str
    admin: dict[str, str]
    log: Path

    def scrape(self) -> Exposition:
        return Exposition.parse(expect(f"{self.name}: scrape", call(
            "GET", self.metrics, headers={"Authorization": f"Bearer {self.metrics_token}"}), 200))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def serve(usher: str, work: Path, name: str, settings: str) -> Node:
    """Starts `usher serve` with `settings` plus its own ports, secrets and a metrics listener with a
    token, makes an admin key first, and waits for /readyz."""
    port, metrics_port = free_port(), free_port()
    metrics_token = secrets.token_hex(16)
    config = work / f"{name}.toml"
    config.write_text(f"""listen = "127.0.0.1:{port}"
{settings}
[secrets]
token_key = "{secrets.token_hex(32)}"
grant_key = "{secrets.token_hex(32)}"
[metrics]
listen = "127.0.0.1:{metrics_port}"
token = "{metrics_token}"
[log]
format = "json"
""")
    key = subprocess.run([usher, "api-key", "create", "--config", str(config), "--name", "observability",
                          "--scope", "admin"], capture_output=True, text=True, timeout=60)
    if key.returncode != 0:
        raise SystemExit(f"check-observability: {name}: usher api-key create failed: {key.stderr}")
    admin_key = key.stdout.strip().splitlines()[-1]
    log = work / f"{name}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([usher, "serve", "--config", str(config)], stdout=out, stderr=out)
    node = Node(name, proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics",
                metrics_token, {"Authorization": f"Bearer {admin_key}"}, log)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"check-observability: {name}: usher serve exited:\n{log.read_text()}")
        try:
            if call("GET", f"{node.base}/readyz", timeout=1)[0] == 200:
                return node
        except OSError:
            pass
        if time.monotonic() > deadline:
            node.stop()
            raise SystemExit(f"check-observability: {name}: usher serve not ready in 30 s")
        time.sleep(0.05)


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def put_show(node: Node, show_id: str, **extra) -> None:
    now = time.time()
    show = {"title": "Observability check", "kind": "vod", "starts_at": iso(now - 3600),
            "ends_at": iso(now + 86400), "stream_path": "demo", **extra}
    expect(f"{node.name}: create show {show_id}",
           call("PUT", f"{node.base}/api/v1/shows/{show_id}", show, node.admin), 200, 201)


def embedded_node(usher: str, root: Path, work: Path, mmdb: Path) -> Exposition:
    """One node on the embedded store with everything on: GeoIP, CDN probes, backups. Drives what a
    viewer, a ticket site and an admin do, then waits for the background series."""
    shutil.copy(mmdb, work / "country.mmdb")
    backups = work / "backups"
    backups.mkdir()
    node = serve(usher, work, "embedded", f"""data_dir = "{work / 'data'}"
media_dir = "{root / 'media'}"
[geoip]
path = "{work / 'country.mmdb'}"
[cdn_probe]
interval_ms = 200
timeout_ms = 500
fail_after = 1
recover_after = 1
allow_private_targets = true
[backup]
destination = "file://{backups}"
interval_s = 1
keep = 3
""")
    try:
        drive_traffic(node)
        return wait_for_background_series(node, 20)
    finally:
        node.stop()


def drive_traffic(node: Node) -> None:
    """Makes the labelled series appear: every call here is one a real viewer, ticket site or admin
    makes."""
    base, admin = node.base, node.admin
    put_show(node, "obs")
    # a show nobody outside a known country may watch: 127.0.0.1 has none, so its admits are refused
    put_show(node, "obs-geo", geo={"unknown": "deny"})
    # two CDNs with a canary: one that answers (this node's /livez), one on a closed port
    for cdn, port in (("edge-ok", int(base.rsplit(":", 1)[1])), ("edge-down", free_port())):
        body = {"name": cdn, "base_url": f"http://127.0.0.1:{port}", "canary": "livez",
                "signing": {"scheme": "nginx", "secret": secrets.token_hex(16)}}
        expect(f"add CDN {cdn}", call("PUT", f"{base}/api/v1/cdns/{cdn}", body, admin), 200, 201)

    ticket = expect("register a ticket", call("POST", f"{base}/api/v1/tickets", {"show_id": "obs"}, admin), 201)
    device = {"X-Usher-Device": "observability-check"}
    seat = expect("admit", call("POST", f"{base}/api/v1/playback", {"token": ticket["token"]}, device), 201)
    session, secret = seat["session_id"], seat["session_secret"]
    for _ in range(3):
        beat = expect("heartbeat", call("POST", f"{base}/api/v1/playback/{session}/heartbeat",
                                        headers={"X-Usher-Session-Secret": secret}), 200)
        secret = beat["session_secret"]
    expect("master playlist", call("GET", f"{base}/hls/{session}/master.m3u8?secret={secret}"), 200)
    # the same device again with its seat's secret: a reattach
    expect("reattach", call("POST", f"{base}/api/v1/playback", {"token": ticket["token"]},
                            {**device, "X-Usher-Session-Secret": secret}), 201)
    expect("unknown ticket", call("POST", f"{base}/api/v1/playback", {"token": "no-such-ticket-" + "x" * 20}), 404)
    geo = expect("register a Geo ticket", call("POST", f"{base}/api/v1/tickets", {"show_id": "obs-geo"}, admin), 201)
    expect("Geo refusal", call("POST", f"{base}/api/v1/playback", {"token": geo["token"]}), 403)
    expect("main address has no /metrics", call("GET", f"{base}/metrics"), 404)
    expect("metrics without the token", call("GET", node.metrics), 401)


def wait_for_background_series(node: Node, deadline_s: float) -> Exposition:
    """The series background tasks fill (the sessions gauge every second, CDN probes, backups): waits
    until they are there or the deadline passes, then returns the last scrape."""
    deadline = time.monotonic() + deadline_s
    while True:
        x = node.scrape()
        ready = (x.has_value("usher_active_sessions", "show", "obs")
                 and x.has_value("usher_cdn_healthy", "cdn", "edge-ok")
                 and x.has_value("usher_cdn_healthy", "cdn", "edge-down")
                 and x.exports("usher_backup_last_success_timestamp_seconds"))
        if ready or time.monotonic() > deadline:
            return x
        time.sleep(0.2)


def redis_node(usher: str, root: Path, work: Path) -> Exposition:
    """One node on a real redis-server, which is killed once the node has taken a backup from it: the
    store's failures, the node not ready, admits refused with store_unavailable and failed backups, as
    an outage shows them."""
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(work)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            if redis.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("check-observability: redis-server did not start")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                time.sleep(0.02)
        (work / "redis-backups").mkdir()
        node = serve(usher, work, "redis", f"""data_dir = "{work / 'redis-data'}"
media_dir = "{root / 'media'}"
[store]
kind = "redis"
url = "redis://127.0.0.1:{port}"
connect_timeout_ms = 300
response_timeout_ms = 300
[http]
store_outage_grace_s = 1
# backups every second to a folder: the first from a live Redis, the next ones fail once it is gone
[backup]
destination = "file://{work / 'redis-backups'}"
interval_s = 1
""")
    except BaseException:
        redis.kill()
        redis.wait()
        raise
    try:
        put_show(node, "obs")
        ticket = expect("redis: register a ticket",
                        call("POST", f"{node.base}/api/v1/tickets", {"show_id": "obs"}, node.admin), 201)
        expect("redis: admit", call("POST", f"{node.base}/api/v1/playback", {"token": ticket["token"]}), 201)
        deadline = time.monotonic() + 10
        while not node.scrape().has_value("usher_backups_total", "outcome", "ok"):
            if time.monotonic() > deadline:
                raise SystemExit(f"check-observability: redis: no backup within 10 s (see {node.log})")
            time.sleep(0.1)
        redis.kill()
        redis.wait()
        deadline = time.monotonic() + 15
        while True:
            expect("redis: admit during the outage",
                   call("POST", f"{node.base}/api/v1/playback", {"token": ticket["token"]}), 503)
            x = node.scrape()
            down = (x.exports("usher_store_errors_total")
                    and any(s_.get("__value__") == "0" for s_ in x.samples.get("usher_ready", []))
                    and x.has_value("usher_backups_total", "outcome", "failed"))
            if down or time.monotonic() > deadline:
                return x
            time.sleep(0.2)
    finally:
        node.stop()
        if redis.poll() is None:
            redis.kill()
            redis.wait()


def main() -> int:
    usher, root, work, mmdb = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    rules = root / "deploy/prometheus/usher-rules.yaml"
    dashboard = root / "deploy/grafana/usher-dashboard.json"
    problems = dashboard_problems(dashboard) + undocumented_alerts(rules, root / "docs/operations.md")
    for p in problems:
        print(f"  DOCUMENTS     {p}")
    uses, recorded = rules_expressions(rules)
    uses += dashboard_expressions(dashboard)

    started = time.monotonic()
    x = embedded_node(usher, root, work, mmdb).merge(redis_node(usher, root, work))
    (work / "metrics.txt").write_text(x.text)

    allowed = SYNTHESISED | recorded
    missing: dict[str, list[str]] = {}
    no_value: dict[tuple[str, str, str], list[str]] = {}
    used = set()
    for u in uses:
        for name in metric_names(u.expr):
            used.add(name)
            if name not in allowed and not x.exports(name):
                missing.setdefault(name, []).append(u.where)
        for name, label, value in equality_matchers(u.expr):
            if name in allowed or not x.exports(name) or x.has_value(name, label, value):
                continue
            no_value.setdefault((name, label, value), []).append(u.where)

    print(f"check-observability: {len(uses)} expressions name {len(used)} metrics; "
          f"the two servers exported {len(x.samples)} metric names "
          f"({time.monotonic() - started:.1f} s with starts and stops)")
    for name, where in sorted(missing.items()):
        print(f"  NOT EXPORTED  {name}  (used by {', '.join(sorted(set(where)))})")
    for (name, label, value), where in sorted(no_value.items()):
        print(f"  NO SERIES     {name}{{{label}=\"{value}\"}}  (used by {', '.join(sorted(set(where)))})")
    if missing or no_value or problems:
        print(f"check-observability: FAILED (the scrape is in {work}/metrics.txt, the logs in {work}/*.log)")
        return 1
    print("check-observability: every metric and label value the rules and the dashboard use is exported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
