#!/usr/bin/env python3
"""How low can a Redis renewal go? redis-server's instructions per renewal (callgrind) for variants of
the renewal by fields (crates/usher-store/src/redis/heartbeat_fields.lua), built from this tree's scripts
at run time: as it is (the secret chain), with counted session secrets (docs/counted-session-secrets.md),
each as a script (EVALSHA) and as a Redis 7 function (FCALL, its definitions made once at load), and a
counted function without the three reads a node could spare it (the configuration generation, the
session's ticket id, the index's time to live), and the three plain commands a renewal by compare-and-set
would send (GET of the lease's key, SET of it, ZADD; a plain SET stands for Redis 8.4's SET IFEQ, which
this Redis lacks: the same write after comparing the value). Then the secret chain with no script on the
hash as it is, an optimistic transaction (WATCH, HMGET, TIME, MULTI, HSET, ZADD, EXEC: what
crates/usher-store/src/redis/renewal.rs sends, one renewal per transaction here), and, on a server that
has SET IFEQ (Valkey >= 8.1, Redis >= 8.4), GET, SET IFEQ, ZADD for both secret forms. Callgrind counts
instructions, not the system calls of each round trip, which is why the shipped renewal batches many
renewals per transaction (BENCHMARKS.md, issue 16's fifteenth step). An experiment for the proposal, not a
test: it patches the scripts' text and stops with an error when they changed.

  python3 scripts/experiments/renewal_floor.py [--sessions N] [--renewals-each K]

REDIS_SERVER=<binary> (environment): the redis-server to run (default: Debian's; the live set's encoding
matters: more than 128 sessions keep it a skip list, as a show's is). Needs valgrind and redis-server >= 7.
"""
import argparse, hashlib, os, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LUA = os.path.join(ROOT, "crates/usher-store/src/redis")


def build_variants():
    read = lambda name: open(os.path.join(LUA, name)).read()
    base = read("seats.lua")
    base = base[: base.index("-- end of the lease base")]
    chain = read("generation.lua") + base + read("heartbeat_fields.lua") + "\nreturn false\n"

    def swap(text, old, new):
        if old not in text:
            sys.exit(f"the scripts changed: {old[:60]!r} is gone; adapt this experiment")
        return text.replace(old, new)

    start, end = chain.index("local function renew_fields()"), chain.index("local renewed = renew_fields()")
    counted_rule = '''local function counted_fields(s)
  local c1 = string.find(s, ',', 1, true)
  local c2 = c1 and string.find(s, ',', c1 + 1, true)
  local c3 = c2 and string.find(s, ',', c2 + 1, true)
  local c4 = c3 and string.find(s, ',', c3 + 1, true)
  local c5 = c4 and string.find(s, ',', c4 + 1, true)
  if not c5 then return nil end
  return tonumber(string.sub(s, c1 + 1, c2 - 1)), tonumber(string.sub(s, c2 + 1, c3 - 1)),
    tonumber(string.sub(s, c3 + 1, c4 - 1)), tonumber(string.sub(s, c4 + 1, c5 - 1)), tonumber(string.sub(s, c5 + 1))
end
local function renew_fields()
  local f = redis.pcall('HMGET', key, 'show_id', 'h:' .. sid, 't:' .. sid, 'v')
  if f.err then return nil end
  local show_id, moving, touched, v = f[1], f[2], f[3], tonumber(f[4] or '0')
  if not show_id or not moving or not v then return nil end
  -- renewed_at,expires_at,ttl_ms,next,lo,prev (docs/counted-session-secrets.md)
  local expires_at, ttl_ms, nxt, lo, prev = counted_fields(moving)
  if not expires_at then return nil end
  local now = now_ms()
  if expires_at <= now and not (revive_since and expires_at > revive_since) then return nil end
  local i = tonumber(presented)
  local handed
  if i >= lo and i < nxt then
    prev, lo, handed, nxt = i, nxt, nxt, nxt + 1
  elseif i == prev then
    if nxt - lo >= ISSUED_MEMORY then lo = lo + 1 end
    handed, nxt = nxt, nxt + 1
  elseif i < nxt then
    return nil
  else
    return { 'wrong', gen, ticket_id, show_id }
  end
  expires_at = now + ttl_ms
  local now_text, expires_text = string.format('%d', now), string.format('%d', expires_at)
  local seq = string.format('%d', v + 1)
  local first = touched and select(3, touch_parts(touched)) or now_text
  redis.call('HSET', key,
    'h:' .. sid, now_text .. ',' .. expires_text .. ',' .. string.format('%d', ttl_ms) .. ',' .. string.format('%d', nxt) .. ',' .. string.format('%d', lo) .. ',' .. string.format('%d', prev),
    't:' .. sid, seq .. ',' .. now_text .. ',' .. first,
    'v', seq)
  redis.call('ZADD', prefix .. 'live:' .. show_id, expires_text, sid)
  index_session(prefix, sid, ticket_id, ttl_ms)
  return { 'renewed', expires_at, ticket_id, show_id, gen, handed }
end
'''
    counted = chain[:start] + counted_rule + chain[end:]

    def function(name, script):
        # a library: the definitions run once, at FUNCTION LOAD (where string.* may not be called)
        script = swap(script, "local ENDED_RETENTION_TEXT = int_text(ENDED_RETENTION_MS)",
                      "local ENDED_RETENTION_TEXT = '3600000'")
        cut = script.index("local prefix, sid, presented, fresh = ARGV[1]")
        return (f"#!lua name=floor_{name}\n" + script[:cut] + "\nlocal function call(KEYS, ARGV)\n"
                + script[cut:] + f"\nend\nredis.register_function('renew_{name}', call)\n")

    lean = swap(counted, "local gen = config_generation(KEYS[2])", "local gen = '0'")
    lean = swap(lean, "local ticket_id = redis.call('GET', KEYS[1])", "local ticket_id = ARGV[6]")
    lean = swap(lean, "  index_session(prefix, sid, ticket_id, ttl_ms)\n  return { 'renewed', expires_at, ticket_id, show_id, gen, handed }",
                "  return { 'renewed', expires_at, handed }")
    return {
        ("chain", "script"): chain,
        ("counted", "script"): counted,
        ("chain", "function"): function("chain", chain),
        ("counted", "function"): function("counted", counted),
        ("lean", "function"): function("lean", lean),
    }


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.buf = b""

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise RuntimeError("redis-server closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b":"):
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            value, self.buf = self.buf[:n], self.buf[n + 2:]
            return value
        if kind == b"*":
            return [self._reply() for _ in range(max(int(rest), 0))]
        raise RuntimeError(f"unexpected reply {line!r}")

    def __call__(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(parts))
        return self._reply()


def dumped(work, pid):
    """Has callgrind dump its counters (zeroed before the run) and returns their instruction total."""
    before = set(os.listdir(work))
    subprocess.run(["callgrind_control", "-d", pid], capture_output=True, check=False)
    for _ in range(100):
        dumps = [f for f in set(os.listdir(work)) - before if f.startswith(f"cg.{pid}.")]
        if dumps:
            break
        time.sleep(0.1)
    else:
        sys.exit("callgrind wrote no dump")
    time.sleep(0.3)  # the file appears before callgrind has finished writing it
    with open(os.path.join(work, dumps[0])) as f:
        return next(int(l.split()[1]) for l in f if l.startswith(("summary:", "totals:")))


def redis_under_callgrind(work):
    """Starts REDIS_SERVER (default: Debian's redis-server) under callgrind, its dumps and socket in
    `work`, and returns the process and a connection once it answers PING."""
    sock = os.path.join(work, "redis.sock")
    server = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={work}/cg.%p",
                               os.environ.get("REDIS_SERVER", "redis-server"), "--port", "0", "--unixsocket",
                               sock, "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        if os.path.exists(sock):
            try:
                r = Conn(sock)
                if r("PING") == b"PONG":
                    return server, r
            except OSError:
                pass
        time.sleep(0.1)
    server.terminate()
    sys.exit("redis-server did not start under callgrind")


def zeroed(pid):
    """Zeroes callgrind's counters of `pid` (what `dumped` counts starts here)."""
    subprocess.run(["callgrind_control", "-z", pid], capture_output=True, check=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=400)
    ap.add_argument("--renewals-each", type=int, default=6)
    a = ap.parse_args()
    variants = build_variants()
    work = tempfile.mkdtemp(prefix="usher-renewal-floor.")
    server, r = redis_under_callgrind(work)
    try:
        pid = str(server.pid)
        H = lambda *parts: hashlib.sha256(repr(parts).encode()).hexdigest()
        now = int(time.time() * 1000)
        far = now + 10**9
        handles = {}
        for (form, how), text in variants.items():
            if how == "script":
                handles[(form, how)] = ("EVALSHA", r("SCRIPT", "LOAD", text).decode())
            else:
                r("FUNCTION", "LOAD", "REPLACE", text)
                handles[(form, how)] = ("FCALL", f"renew_{form}")
        print(f"| renewal ({a.sessions} sessions, {a.renewals_each} renewals each) | redis-server instructions per renewal | the h: field |")
        print("| --- | --- | --- |")
        for (form, how), (verb, handle) in handles.items():
            p = f"{form}-{how}:"
            for n in range(a.sessions):
                sid, tid = f"s_{n:032x}", f"t_{n:024x}"
                r("SET", p + "session:" + sid, tid, "PX", 10**10)
                field = (f"{now},{far},300000,{H(n, 'p')},{H(n, 0)}," + " ".join(H(n, 'r', i) for i in range(6))
                         if form == "chain" else f"{now},{far},300000,2,1,0")
                r("HSET", p + "seats:" + tid, "show_id", "demo", "h:" + sid, field, "t:" + sid, f"1,{now},{now}", "v", 1)
            zeroed(pid)
            done = 0
            for k in range(a.renewals_each):
                for n in range(a.sessions):
                    sid, tid = f"s_{n:032x}", f"t_{n:024x}"
                    # each renewal presents the secret the last one handed out: the chain moves
                    presented, fresh = (H(n, k), H(n, k + 1)) if form == "chain" else (str(k + 1), "")
                    reply = r(verb, handle, 2, p + "session:" + sid, p + "config-gen", p, sid, presented, fresh, "", tid)
                    if not reply or reply[0] != b"renewed":
                        sys.exit(f"{form} {how}: not renewed: {reply}")
                    done += 1
            total = dumped(work, pid)
            field = r("HGET", p + "seats:t_" + "0" * 24, "h:s_" + "0" * 32)
            label = {"chain": "the secret chain", "counted": "counted secrets", "lean": "counted, 3 reads fewer"}[form]
            print(f"| {label}, {verb} | {total / done:,.0f} | {len(field)} bytes |", flush=True)
        # the compare-and-set renewal's commands, each sent as its own request as a node would (the node
        # decides between the read and the write)
        for n in range(a.sessions):
            r("SET", f"cas:lease:s_{n:032x}", f"t_{n:024x},demo,{now},{far},300000,2,1,0", "PX", 10**10)
        zeroed(pid)
        done = 0
        for k in range(a.renewals_each):
            for n in range(a.sessions):
                sid = f"s_{n:032x}"
                old = r("GET", "cas:lease:" + sid)
                new = old.rsplit(b",", 3)[0] + b",%d,%d,%d" % (k + 3, k + 2, k + 1)
                r("SET", "cas:lease:" + sid, new, "PX", 10**10)
                r("ZADD", "cas:live:demo", now + k, sid)
                done += 1
        total = dumped(work, pid)
        print(f"| counted, no script: GET, SET (for SET IFEQ), ZADD, three requests | {total / done:,.0f} | {len(new)} bytes |", flush=True)
        # the secret chain with no script, on the hash as it is: an optimistic transaction. The node
        # watches the ticket's seats, reads the lease's fields and the time, decides, and writes them in
        # MULTI/EXEC, which fails if anything wrote the seats in between (two round trips, a connection
        # of its own).
        for n in range(a.sessions):
            sid, tid = f"s_{n:032x}", f"t_{n:024x}"
            field = f"{now},{far},300000,{H(n, 'p')},{H(n, 0)}," + " ".join(H(n, 'r', i) for i in range(6))
            r("HSET", "watch:seats:" + tid, "show_id", "demo", "h:" + sid, field, "t:" + sid, f"1,{now},{now}", "v", 1)
        zeroed(pid)
        done = 0
        for k in range(a.renewals_each):
            for n in range(a.sessions):
                sid, tid = f"s_{n:032x}", f"t_{n:024x}"
                key = "watch:seats:" + tid
                r("WATCH", key)
                show_id, moving, touched, v = r("HMGET", key, "show_id", "h:" + sid, "t:" + sid, "v")
                t = r("TIME")
                parts = moving.split(b",", 5)
                retired = parts[5].split(b" ")[-5:] + [parts[3]]
                field = b",".join([parts[0], parts[1], parts[2], parts[4], H(n, k + 1).encode(), b" ".join(retired)])
                r("MULTI")
                r("HSET", key, "h:" + sid, field, "t:" + sid, b"%d,%s,%s" % (int(v) + 1, t[0], t[0]), "v", int(v) + 1)
                r("ZADD", "watch:live:demo", now + k, sid)
                if r("EXEC") is None:
                    sys.exit("the optimistic renewal's EXEC failed with nothing else writing")
                done += 1
        total = dumped(work, pid)
        print(f"| chain, no script: WATCH, HMGET, TIME, MULTI, HSET, ZADD, EXEC | {total / done:,.0f} | {len(field)} bytes |", flush=True)
        try:
            r("SET", "ifeq:probe", "a")
            r("SET", "ifeq:probe", "b", "IFEQ", "a")
            ifeq = True
        except RuntimeError:
            ifeq = False
        if ifeq:
            for form in ("counted", "chain"):
                for n in range(a.sessions):
                    sid = f"s_{n:032x}"
                    value = (f"t_{n:024x},demo,{now},{far},300000,2,1,0" if form == "counted" else
                             f"t_{n:024x},demo,{now},{far},300000,{H(n, 'p')},{H(n, 0)}," + " ".join(H(n, 'r', i) for i in range(6)))
                    r("SET", f"ifeq:{form}:lease:" + sid, value, "PX", 10**10)
                zeroed(pid)
                done = 0
                for k in range(a.renewals_each):
                    for n in range(a.sessions):
                        sid = f"s_{n:032x}"
                        key = f"ifeq:{form}:lease:" + sid
                        old = r("GET", key)
                        head = old.rsplit(b",", 3)[0]
                        new = head + (b",%d,%d,%d" % (k + 3, k + 2, k + 1) if form == "counted" else
                                      b"," + H(n, k + 1).encode() + b"," + H(n, k + 2).encode() + b"," + old.rsplit(b",", 1)[1])
                        if r("SET", key, new, "IFEQ", old, "PX", 10**10) != b"OK":
                            sys.exit("SET IFEQ failed with nothing else writing")
                        r("ZADD", f"ifeq:{form}:live:demo", now + k, sid)
                        done += 1
                total = dumped(work, pid)
                print(f"| {form}, no script: GET, SET IFEQ, ZADD | {total / done:,.0f} | {len(new)} bytes |", flush=True)
        print(f"(callgrind dumps in {work})", file=sys.stderr)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
