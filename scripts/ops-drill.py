#!/usr/bin/env python3
"""Helper of scripts/ops-drill.sh: waits on haproxy and Sentinel, and judges the drill's phases.

Standard library only. Subcommands:

  ports N                              N free TCP ports on 127.0.0.1, one a line
  haproxy-wait SOCK SERVER STATE SECS  waits until haproxy's backend `usher` shows SERVER as STATE (UP,
                                       DOWN) on the stats socket SOCK; prints the Unix ms it was seen
  haproxy-stats SOCK                   the backend's and frontend's counters as JSON (one line)
  sentinel-master PORT NAME            the master's port the sentinel at PORT names for NAME
  sentinel-wait-switch PORT NAME OLD SECS
                                       waits until the sentinel names a master other than port OLD;
                                       prints "<unix ms> <new port>"
  report DIR                           reads what ops-drill.sh left in DIR (drill.json, phases.list and
                                       each phase's usher-load JSON, restarts, fail-over times, haproxy
                                       counters), prints the figures as a table, writes DIR/summary.json,
                                       exits 1 when any criterion failed
"""
import json
import socket
import sys
import time
from pathlib import Path


def now_ms():
    return int(time.time() * 1000)


def ports(n):
    socks, out = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        out.append(s.getsockname()[1])
    for s in socks:
        s.close()
    print("\n".join(map(str, out)))


def haproxy(sock_path, command):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sock_path)
    s.sendall(command.encode() + b"\n")
    chunks = []
    while True:
        b = s.recv(65536)
        if not b:
            break
        chunks.append(b)
    s.close()
    return b"".join(chunks).decode()


def stat_rows(sock_path):
    text = haproxy(sock_path, "show stat")
    lines = [l for l in text.splitlines() if l.strip()]
    head = lines[0].lstrip("# ").split(",")
    return [dict(zip(head, l.split(","))) for l in lines[1:]]


def haproxy_wait(sock_path, server, state, secs):
    end = time.time() + float(secs)
    last = None
    while time.time() < end:
        try:
            for r in stat_rows(sock_path):
                if r.get("pxname") == "usher" and r.get("svname") == server:
                    last = r.get("status")
                    if last == state:
                        print(now_ms())
                        return 0
        except OSError as e:
            last = f"stats socket: {e}"
        time.sleep(0.05)
    print(f"timed out after {secs} s waiting for {server} to be {state} (last seen: {last})", file=sys.stderr)
    return 1


COUNTERS = ["hrsp_5xx", "hrsp_4xx", "hrsp_2xx", "eresp", "econ", "wretr", "wredis", "ereq", "dreq", "cli_abrt", "srv_abrt"]


def haproxy_stats(sock_path):
    out = {}
    for r in stat_rows(sock_path):
        if r.get("pxname") in ("usher", "viewers") and r.get("svname") in ("BACKEND", "FRONTEND"):
            out[f"{r['pxname']}"] = {k: int(r[k]) if r.get(k, "").isdigit() else 0 for k in COUNTERS}
    print(json.dumps(out))


def sentinel(port, *args):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=2)
    parts = [str(a).encode() for a in args]
    msg = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    s.sendall(msg)
    data = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
        # an array of two bulk strings, or a nil
        if data.startswith(b"*-1") or data.count(b"\r\n") >= 5:
            break
    s.close()
    items = [l for l in data.split(b"\r\n") if l and not l[:1] in (b"*", b"$")]
    return [i.decode() for i in items]


def sentinel_master(port, name):
    addr = sentinel(port, "SENTINEL", "get-master-addr-by-name", name)
    print(addr[1] if len(addr) == 2 else "")


def sentinel_wait_switch(port, name, old, secs):
    end = time.time() + float(secs)
    while time.time() < end:
        try:
            addr = sentinel(port, "SENTINEL", "get-master-addr-by-name", name)
            if len(addr) == 2 and addr[1] != str(old):
                print(now_ms(), addr[1])
                return 0
        except OSError:
            pass
        time.sleep(0.05)
    print(f"no fail-over within {secs} s", file=sys.stderr)
    return 1


# ---- the report -------------------------------------------------------------------------------------------


def op(load, name):
    for o in load.get("ops", []):
        if o["op"] == name:
            return o
    return None


def judge(phase, load):
    """The phase's figures and the criteria it failed."""
    checks = load["checks"]
    outage = load.get("outage") or {}
    fig = {
        "phase": phase["name"],
        "viewers": load["config"]["viewers"],
        "peak_live": load["peak_live_sessions"],
        "requests": sum(o["requests"] for o in load["ops"]),
        "failed_requests": load.get("failed_requests", load["errors"]),
        "errors": load["errors"],
        "sessions_lost": checks.get("sessions_lost", 0),
        "false_refusals": checks["false_refusals"],
        "false_admit_refusals": checks.get("false_admit_refusals", 0),
        "task_failures": load["task_failures"],
        "error_kinds": {o["op"]: o["error_kinds"] for o in load["ops"] if o["error_kinds"]},
        "ops": {o["op"]: {"requests": o["requests"], "ok": o["ok"], "p99_ms": o["latency_ms"]["p99"], "max_ms": o["latency_ms"]["max"]} for o in load["ops"]},
    }
    failed = []
    for key in ("failed_requests", "errors", "sessions_lost", "false_refusals", "task_failures"):
        if fig[key]:
            failed.append(f"{key} {fig[key]}")
    if not load.get("passed", False):
        failed.append("usher-load did not pass")
    restarts = phase.get("restarts", [])
    if restarts:
        fig["restarts"] = len(restarts)
        fig["sigterm_to_out_of_pool_ms_max"] = max(r["out_of_pool_ms"] for r in restarts)
        fig["sigterm_to_exit_ms_max"] = max(r["exit_ms"] for r in restarts)
        fig["start_to_in_pool_ms_max"] = max(r["in_pool_ms"] for r in restarts)
        bad = [r for r in restarts if r["exit_code"] != 0]
        if bad:
            failed.append(f"{len(bad)} nodes exited non-zero: {bad}")
        fig["versions"] = sorted({r["from"] + " -> " + r["to"] for r in restarts})
    if phase.get("drain_deadline_passed"):
        failed.append(f"drain deadline passed {phase['drain_deadline_passed']} times")
    hp = phase.get("haproxy")
    if hp:
        fig["haproxy"] = hp
    fo = phase.get("failover")
    if fo:
        kill = fo["killed_at_ms"]
        fig["failover_window_ms"] = fo["switched_at_ms"] - kill
        last = outage.get("last_admit_unavailable_at_ms")
        first = outage.get("first_admit_unavailable_at_ms")
        fig["admits_unavailable"] = outage.get("admits_unavailable", 0)
        fig["admit_pause_ms"] = (last - kill) if last else 0
        fig["admit_pause_first_ms"] = (first - kill) if first else None
        fig["longest_admit_wait_ms"] = outage.get("longest_admit_pause_ms", 0)
        fig["heartbeats_degraded"] = outage.get("heartbeats_degraded", 0)
        fig["degraded_from_ms"] = (outage["first_degraded_at_ms"] - kill) if outage.get("first_degraded_at_ms") else None
        fig["degraded_until_ms"] = (outage["last_degraded_at_ms"] - kill) if outage.get("last_degraded_at_ms") else None
        fig["viewers_degraded"] = outage.get("viewers_degraded", 0)
        fig["viewers_recovered"] = outage.get("viewers_recovered", 0)
        fig["viewers_left_degraded"] = outage.get("viewers_left_degraded", 0)
        fig["leaves_unavailable"] = outage.get("leaves_unavailable", 0)
        fig["playlists_unavailable"] = outage.get("playlists_unavailable", 0)
        fig["leaves_lapsed"] = outage.get("leaves_lapsed", 0)
        fig["replica_back_ms"] = fo.get("replica_back_at_ms", kill) - kill
        fig["registration_after"] = fo.get("registration_after")
        slack = fo.get("slack_ms", 1000)
        fig["pause_allowed_ms"] = fig["failover_window_ms"] + slack
        if fig["admit_pause_ms"] > fig["pause_allowed_ms"]:
            failed.append(f"admits paused {fig['admit_pause_ms']} ms, past the fail-over window {fig['failover_window_ms']} ms + {slack} ms")
        gone = fig["viewers_degraded"] - fig["viewers_recovered"] - fig["viewers_left_degraded"]
        if gone:
            failed.append(f"{gone} degraded viewers neither renewed again nor left")
        if fo.get("registration_after") not in (None, 201):
            failed.append(f"a registration after the fail-over answered {fo.get('registration_after')}")
    fig["passed"] = not failed
    fig["failures"] = failed
    return fig


def report(out_dir):
    out = Path(out_dir)
    drill = json.loads((out / "drill.json").read_text())
    figures = []
    for name in (out / "phases.list").read_text().split():
        phase = {"name": name}
        restarts = out / f"{name}.restarts.jsonl"
        if restarts.exists():
            phase["restarts"] = [json.loads(l) for l in restarts.read_text().splitlines() if l.strip()]
        failover = out / f"{name}.failover.json"
        if failover.exists():
            phase["failover"] = json.loads(failover.read_text())
        drain = out / f"{name}.drain"
        if drain.exists():
            phase["drain_deadline_passed"] = int(drain.read_text().strip() or 0)
        hp = out / f"{name}.haproxy.json"
        if hp.exists():
            lines = [json.loads(l) for l in hp.read_text().splitlines() if l.strip()]
            if len(lines) == 2:
                phase["haproxy"] = {
                    px: {k: lines[1][px][k] - lines[0].get(px, {}).get(k, 0) for k in lines[1][px]}
                    for px in lines[1]
                }
        path = out / f"{name}.json"
        if not path.exists():
            figures.append({"phase": name, "passed": False, "failures": [f"no usher-load report ({path})"]})
            continue
        figures.append(judge(phase, json.loads(path.read_text())))
    if not figures:
        figures.append({"phase": "-", "passed": False, "failures": ["no phase ran"]})
    summary = {"drill": drill, "phases": figures, "passed": all(f["passed"] for f in figures)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    cols = [("phase", 10), ("viewers", 7), ("peak", 6), ("requests", 9), ("failed", 6), ("lost", 5), ("false ref.", 10), ("restarts", 8), ("out of pool", 11), ("exit", 6), ("back in", 7), ("verdict", 7)]
    print()
    print(" | ".join(n.ljust(w) for n, w in cols))
    print("-+-".join("-" * w for _, w in cols))
    for f in figures:
        ms = lambda k: f"{f[k] / 1000:.1f} s" if k in f else "-"
        row = [f["phase"], f.get("viewers", "-"), f.get("peak_live", "-"), f.get("requests", "-"), f.get("failed_requests", "-"),
               f.get("sessions_lost", "-"), f.get("false_refusals", "-"), f.get("restarts", "-"),
               ms("sigterm_to_out_of_pool_ms_max"), ms("sigterm_to_exit_ms_max"), ms("start_to_in_pool_ms_max"),
               "passed" if f["passed"] else "FAILED"]
        print(" | ".join(str(v).ljust(w) for v, (_, w) in zip(row, cols)))
    for f in figures:
        if "failover_window_ms" in f:
            print(
                f"\n{f['phase']}: fail-over window (kill -9 to Sentinel naming the new master) {f['failover_window_ms']} ms; "
                f"admits told to come back later from +{f['admit_pause_first_ms']} ms to +{f['admit_pause_ms']} ms after the kill "
                f"({f['admits_unavailable']} answers, longest wait of one viewer {f['longest_admit_wait_ms']} ms; allowed up to {f['pause_allowed_ms']} ms); "
                f"{f['heartbeats_degraded']} heartbeats degraded from +{f['degraded_from_ms']} ms to +{f['degraded_until_ms']} ms, "
                f"of {f['viewers_degraded']} degraded viewers {f['viewers_recovered']} renewed again and {f['viewers_left_degraded']} left first; "
                f"{f['leaves_unavailable']} leaves and {f['playlists_unavailable']} starting players' master playlists answered 503 meanwhile, "
                f"{f['leaves_lapsed']} degraded viewers' leaves found their lease lapsed; "
                f"old master back as a replica +{f['replica_back_ms']} ms; a registration after it answered {f['registration_after']}"
            )
    for f in figures:
        if f.get("error_kinds"):
            print(f"\n{f['phase']}: errors by kind {json.dumps(f['error_kinds'])}")
        for why in f.get("failures", []):
            print(f"{f['phase']}: FAILED: {why}")
    print(f"\n{'PASSED' if summary['passed'] else 'FAILED'} (figures in {out / 'summary.json'})")
    return 0 if summary["passed"] else 1


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "ports":
        ports(int(args[0]))
        return 0
    if cmd == "haproxy-wait":
        return haproxy_wait(*args)
    if cmd == "haproxy-stats":
        haproxy_stats(args[0])
        return 0
    if cmd == "sentinel-master":
        sentinel_master(*args)
        return 0
    if cmd == "sentinel-wait-switch":
        return sentinel_wait_switch(*args)
    if cmd == "report":
        return report(args[0])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
