#!/usr/bin/env python3
"""How low can a Redis admit go? redis-server's instructions per admit (callgrind) of a takeover (one
seat, a fresh device taking it over: the wrk rounds' admit), two ways:

- the admit script as the store builds it (crates/usher-store/src/redis.rs `admit_script`: the lease
  base, the generation, the admit by fields, the whole step), run with EVALSHA on seats the script wrote
  itself;
- the same takeover with no script: what a node that decides the admit itself would send, as the
  renewal does (crates/usher-store/src/redis/renewal.rs). First the reads under WATCH (the seats' head
  fields, the leases' fields, the ticket for its status, the configuration generation, TIME), then
  MULTI, the writes the admit by fields makes (the ended session's record and list, the live set, the
  new session's index, the seats' fields) and EXEC. Each command is sent as its own request here;
  callgrind counts instructions, not the system calls of round trips (a node would pipeline the reads
  and the writes and batch admits, as the renewal does: BENCHMARKS.md, issue 16's fifteenth step).

An experiment for the proposal (the Redis admit decided on the node), not a test: it stops with an
error when the script's answers are not what it expects.

  python3 scripts/experiments/admit_floor.py [--tickets N] [--admits-each K]

REDIS_SERVER=<binary> (environment): the redis-server to run (default: Debian's). Needs valgrind and
redis-server >= 7.
"""
import argparse, hashlib, json, os, sys, tempfile

sys.dont_write_bytecode = True  # no __pycache__ left in the tree by the import below
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from renewal_floor import dumped, redis_under_callgrind, zeroed  # noqa: E402  (the same server and counts)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LUA = os.path.join(ROOT, "crates/usher-store/src/redis")
PRELUDE = "if #KEYS > 0 and string.sub(KEYS[#KEYS], -11) == '\\0slot-guard' then KEYS[#KEYS] = nil end"
RULES_BEGIN = "-- end of the lease base"
ADMIT_PART_END = "-- end of the admit's part"
ENDED_RETENTION_MS = 3_600_000
INDEX_SLACK_MS = 300_000
TTL_MS = 45_000


def admit_script():
    read = lambda name: open(os.path.join(LUA, name)).read()
    seats = read("seats.lua")
    if RULES_BEGIN not in seats or ADMIT_PART_END not in seats:
        sys.exit("seats.lua's marks moved; adapt this experiment to redis.rs admit_script")
    base, rules = seats.split(RULES_BEGIN, 1)
    fields, whole = rules.split(ADMIT_PART_END, 1)
    return (f"{PRELUDE}\n{base}\n{read('generation.lua')}\n{RULES_BEGIN}{fields}\n{read('admit_fields.lua')}"
            f"\n{ADMIT_PART_END}{whole}\n{read('admit.lua')}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", type=int, default=300)
    ap.add_argument("--admits-each", type=int, default=4)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="usher-admit-floor.")
    server, r = redis_under_callgrind(work)
    try:
        pid = str(server.pid)
        H = lambda *parts: hashlib.sha256(repr(parts).encode()).hexdigest()
        sha = r("SCRIPT", "LOAD", admit_script()).decode()
        print(f"| takeover admit ({a.tickets} tickets, {a.admits_each} takeovers each) | redis-server instructions per admit |")
        print("| --- | --- |")

        # 1. the script: a first admit per ticket (the whole step: the ticket was never played), then
        # takeovers by fresh devices (the admit by fields)
        def admit(p, tid, device, sid):
            return r("EVALSHA", sha, 3, p + "seats:" + tid, p + "config-gen", p + "ticket:" + tid,
                     p, tid, "demo", device, "Device " + device, sid, 1, "newest_wins", TTL_MS, "", "",
                     "", H(tid, sid), "")

        def first_admits(p):
            # stamped with the store's layout (redis.rs REDIS_SCHEMA), as a node stamps it at start: the
            # seats a hash of fields, which the admit by fields needs
            r("SET", p + "schema", 3)
            for n in range(a.tickets):
                tid = f"t_{n:024x}"
                r("SET", p + "ticket:" + tid, json.dumps({"id": tid, "status": "active"}))
                reply = admit(p, tid, "device-first", f"s_{n:028x}0000")
                if not reply or reply[0] != b"admitted":
                    sys.exit(f"first admit: {reply}")

        def per_takeover(p, takeover):
            """Instructions per takeover: first admits (not counted), then every ticket taken over by a
            fresh device `--admits-each` times, `takeover(p, k, n, tid)` each."""
            first_admits(p)
            zeroed(pid)
            for k in range(1, a.admits_each + 1):
                for n in range(a.tickets):
                    takeover(p, k, n, f"t_{n:024x}")
            return dumped(work, pid) / (a.admits_each * a.tickets)

        def by_script(p, k, n, tid):
            reply = admit(p, tid, f"device-{k:06}", f"s_{n:028x}{k:04x}")
            if not reply or reply[0] != b"admitted" or len(reply) < 7:
                sys.exit(f"takeover: not admitted with a superseded session: {reply}")

        per = per_takeover("script:", by_script)
        # each admit by fields left its journal entry (the whole step would have folded them in)
        if r("HGET", "script:seats:t_" + "0" * 24, "jn") != str(a.admits_each).encode():
            sys.exit("the takeovers did not all go by fields")
        print(f"| the admit script (EVALSHA), by fields | {per:,.0f} |", flush=True)

        # 2. no script
        def by_node(p, k, n, tid):
            # the node reads, decides and writes in MULTI/EXEC, on the seats as the script left them
            seats, ticket = p + "seats:" + tid, p + "ticket:" + tid
            sid = f"s_{n:028x}{k:04x}"
            device = f"device-{k:06}"
            r("WATCH", seats, ticket)
            played, show, ls, jn, v = r("HMGET", seats, "played", "show_id", "ls", "jn", "v")
            jn = jn or b"0"
            if not (played and show and ls is not None and v):
                sys.exit(f"the seats are not of layout 3: {played, show, ls, jn, v}")
            olds = ls.decode().split()
            asked = [f for o in olds for f in ("l:" + o, "h:" + o, "t:" + o)]
            got = r("HMGET", seats, *asked)
            status = r("GET", ticket)
            r("GET", p + "config-gen")
            t = r("TIME")
            now = int(t[0]) * 1000 + int(t[1]) // 1000
            # decided on the node: every lease is live (k = 1), the stalest is superseded
            fixed = json.loads(got[0])
            if b'"status":"revoked"' in status or fixed.get("device_id") == device:
                sys.exit("unexpected seats")
            old = olds[0]
            seq = int(v) + 1
            ended = json.dumps({"reason": "superseded", "by_device": "Device " + device, "at": now},
                               separators=(",", ":"))
            lease = json.dumps({"session_id": sid, "device_id": device, "device_label": "Device " + device,
                                "created_at": now, "n": fixed["n"] + 1}, separators=(",", ":"))
            hot = f"{now},{now + TTL_MS},{TTL_MS},,{H(tid, sid)},"
            journal = json.dumps({"d": device, "l": "Device " + device, "c": "", "a": "", "at": now, "s": 1},
                                 separators=(",", ":"))
            r("MULTI")
            r("SET", p + "ended:" + old, ended, "PX", ENDED_RETENTION_MS)
            r("RPUSH", seats + ":ended", old)
            r("PEXPIRE", seats + ":ended", ENDED_RETENTION_MS)
            r("ZREM", p + "live:demo", old)
            r("ZADD", p + "live:demo", now + TTL_MS, sid)
            r("SET", p + "session:" + sid, tid, "PX", TTL_MS + ENDED_RETENTION_MS + INDEX_SLACK_MS)
            r("HDEL", seats, "l:" + old, "h:" + old, "t:" + old)
            r("HSET", seats, "l:" + sid, lease, "h:" + sid, hot, "v", seq, f"j:{seq}", journal,
              "ls", sid, "jn", int(jn) + 1)
            if r("EXEC") is None:
                sys.exit("the admit's EXEC failed with nothing else writing")

        per = per_takeover("node:", by_node)
        print(f"| no script: WATCH, 2 HMGET, 2 GET, TIME; MULTI, 2 SET, RPUSH, PEXPIRE, ZREM, ZADD, HDEL, HSET, EXEC | {per:,.0f} |", flush=True)
        print(f"(callgrind dumps in {work})", file=sys.stderr)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
