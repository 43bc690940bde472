-- Usher's lease rules (usher-core/src/lease.rs) in Lua, for the Redis backend. Every script that changes
-- a ticket's seats starts with this file. The rules must stay identical to the Rust ones: the store
-- contract suite runs the same cases against both backends.
--
-- A ticket's seats live in one JSON document at <prefix>seats:<ticket id>:
--   {"show_id", "v", "leases": [...], "ended": [], "usage": {...}}  (the serde form of TicketLeases, and
--   a version that every write moves)
-- Ended sessions are not kept in the document (a storm of 500 devices would make every step rewrite
-- hundreds of them) but each in <prefix>ended:<session id>, expiring after ENDED_RETENTION_MS; the ticket's
-- list <prefix>seats:<ticket id>:ended holds their ids, oldest first, so that at most ENDED_MEMORY are kept
-- per ticket, as the embedded store keeps them (usher-core lease.rs: an hour, at most the newest 256).
-- Time comes from Redis's TIME, so node clock skew cannot break the at-most-k invariant.

local ENDED_RETENTION_MS = 3600000
-- Whole numbers go to redis.call as text written with '%d' (int_text): Lua would turn a number into
-- text with '%.14g', libc's multi-precision float path, a visible cost in a script that passes several.
local function int_text(n) return string.format('%d', n) end
local ENDED_RETENTION_TEXT = int_text(ENDED_RETENTION_MS)
local ENDED_MEMORY = 256
local DEVICE_MEMORY = 64
local COUNTRY_MEMORY = 32
local ADDRESS_MEMORY = 32
-- usher-core session_secret.rs: ISSUED_MEMORY and RETIRED_MEMORY
local ISSUED_MEMORY = 8
local RETIRED_MEMORY = 6

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A session's index (<prefix>session:<id>, its ticket's id) outlives its lease by at least
-- ENDED_RETENTION_MS, so that a lookup finds the session's end until that is forgotten. A renewal
-- rewrites it only once its time to live has fallen below that, and then gives it INDEX_SLACK_MS more:
-- most renewals only read it, and a write called from a script costs Redis about four times a read. A new
-- session's (`new`) is written without the read: its id was never used.
local INDEX_SLACK_MS = 300000
local function index_session(prefix, sid, ticket_id, ttl_ms, new)
  local key = prefix .. 'session:' .. sid
  if new or redis.call('PTTL', key) < ttl_ms + ENDED_RETENTION_MS then
    redis.call('SET', key, ticket_id, 'PX', int_text(ttl_ms + ENDED_RETENTION_MS + INDEX_SLACK_MS))
  end
end

-- An h: field's parts (hot_pack): renewed_at, expires_at and ttl_ms as numbers, the previous and the
-- issued secrets as text, and where the retired ones begin (they run to the field's end); nil for any other
-- form. Plain finds, no pattern: Redis's Lua hashes every byte of every string a script makes, and a
-- pattern over the whole field matched its ~500 bytes of hashes one by one against a class, which was a
-- tenth of a renewal's instructions in Redis (scripts/redis-instructions.sh; BENCHMARKS.md, issue 16).
local function hot_fields(s)
  local c1 = string.find(s, ',', 1, true)
  local c2 = c1 and string.find(s, ',', c1 + 1, true)
  local c3 = c2 and string.find(s, ',', c2 + 1, true)
  local c4 = c3 and string.find(s, ',', c3 + 1, true)
  local c5 = c4 and string.find(s, ',', c4 + 1, true)
  if not c5 or string.find(s, ',', c5 + 1, true) then return nil end
  local r = tonumber(string.sub(s, 1, c1 - 1))
  local e = tonumber(string.sub(s, c1 + 1, c2 - 1))
  local t = tonumber(string.sub(s, c2 + 1, c3 - 1))
  if not (r and e and t) then return nil end
  return r, e, t, string.sub(s, c3 + 1, c4 - 1), string.sub(s, c4 + 1, c5 - 1), c5 + 1
end
-- A t: field's three parts (`seq,at,first`: layout 2 below) as text; nil for any other form (plain finds,
-- as hot_fields)
local function touch_parts(t)
  local a = string.find(t, ',', 1, true)
  local b = a and string.find(t, ',', a + 1, true)
  if not b or string.find(t, ',', b + 1, true) then return nil end
  return string.sub(t, 1, a - 1), string.sub(t, a + 1, b - 1), string.sub(t, b + 1)
end
-- end of the lease base: the constants and the clock above come first in every lease script; the heartbeat
-- puts its renewal by fields (heartbeat_fields.lua) between them and the rules below, which it never needs

-- the seats key of the ticket this script works on (each script works on one ticket's seats)
local seats_key = nil

local function live_key(prefix, st) return prefix .. 'live:' .. st.show_id end

local function remember_end(prefix, sid, reason)
  redis.call('SET', prefix .. 'ended:' .. sid, cjson.encode(reason), 'PX', ENDED_RETENTION_TEXT)
  local list = seats_key .. ':ended'
  if redis.call('RPUSH', list, sid) > ENDED_MEMORY then
    redis.call('DEL', prefix .. 'ended:' .. redis.call('LPOP', list))
  end
  redis.call('PEXPIRE', list, ENDED_RETENTION_TEXT)
end

-- Layout 2 (REDIS_SCHEMA 2): the seats are a hash, so that a heartbeat reads and writes a few short
-- fields and decodes no JSON:
--   show_id, v             the show and the version every write moves (a heartbeat by HINCRBY)
--   doc                    the rest of the document (usage, ended) as JSON, without its leases
--   l:<session id>         a lease's fixed part as JSON (session, device, label, created_at) and `n`, its
--                          place in the document's list
--   h:<session id>         its moving part as text: renewed_at,expires_at,ttl_ms,previous,issued,retired
--                          (the secret chain's hashes, space-separated; no issued hash: no chain)
--   t:<session id>         the session's last heartbeat since the last whole write: `seq,at,first` (seq:
--                          the `v` it moved to; first: the time of the first such heartbeat), replayed in
--                          seq order on the next load as the device it saw (saw_device), so the usage
--                          reads as if each heartbeat had written it
-- Layout 3 (REDIS_SCHEMA 3) is layout 2 with an admit that decodes no JSON document either
-- (admit_fields.lua: the usage of a ticket that saw many devices is ~10 KB of JSON, and decoding and
-- encoding it was ~90 of an admit's ~107 µs of Redis). Two more kinds of field:
--   played                 set once the ticket has been played (usage.first_play_at), so that an admit
--                          knows it is not the ticket's first play without reading the usage
--   ls                     the session ids of the leases, in their order, space-separated: an admit
--                          reads those leases' fields by name, never the whole hash
--   jn                     how many j: fields wait (none: 0)
--   j:<seq>                what an admit by fields saw, as JSON, replayed in seq order (with the t:
--                          fields) into the usage on the next load: {d, l, c, a, at, s} (device, label,
--                          country, address, time; s = 1: a new session) for an admit, {d, l, at, f} for
--                          a t: field the admit froze (a heartbeat's renewal must replay before the
--                          admits after it; f: its first renewal's time)
-- An admit by fields reads `played`, `show_id`, `ls`, `jn` and its leases' fields, and writes only the
-- leases it adds or ends, `ls`, `jn` and one j: field (and one per renewed lease it freezes); from
-- JOURNAL_MEMORY waiting j: fields on, the next admit writes the whole hash (which replays and drops
-- them), so at most JOURNAL_MEMORY + k + 1 wait. The admit by fields counts only the leases `ls` names:
-- every writer of l: fields must rewrite `ls` with them (save_seats and admit_by_fields do).
-- Every write but a heartbeat's renewal and an admit by fields writes the whole hash again (and drops the
-- t: and j: fields). A database stamped 1 or 2 keeps its layout until `usher redis-schema --upgrade`
-- moves the stamp, once no node of an older release runs; every layout is read whatever the stamp says.
local HOT = { renewed_at = true, expires_at = true, ttl_ms = true, secret = true }
local JOURNAL_MEMORY = 64

-- the space-separated words of `s` (plain finds: a pattern match per word cost a heartbeat ~10 µs)
local function words(s)
  local out, from = {}, 1
  while true do
    local i = string.find(s, ' ', from, true)
    if not i then
      out[#out + 1] = string.sub(s, from)
      return out
    end
    out[#out + 1] = string.sub(s, from, i - 1)
    from = i + 1
  end
end

local function hot_pack(l)
  local c = l.secret
  local prev, issued, retired = '', '', ''
  if c and c.issued and #c.issued > 0 then
    prev = c.previous or ''
    issued = table.concat(c.issued, ' ')
    retired = table.concat(c.retired or {}, ' ')
  end
  return string.format('%d,%d,%d,%s,%s,%s', l.renewed_at, l.expires_at, l.ttl_ms, prev, issued, retired)
end

-- a lease's fixed part (l:<session id>): every field but the moving ones, and `n`, its place in the list
local function fixed_part(l, n)
  local fixed = { n = n }
  for k, x in pairs(l) do
    if not HOT[k] then fixed[k] = x end
  end
  return cjson.encode(fixed)
end


-- the session ids of `leases`, in their order, as the `ls` field holds them
local function session_names(leases)
  local names = {}
  for i, l in ipairs(leases) do names[i] = l.session_id end
  return table.concat(names, ' ')
end

-- fills the moving part into `l` (a lease's fixed part, or an empty table for a heartbeat); nil when `s`
-- is not an h: field (hot_fields)
local function hot_parse(l, s)
  local r, e, t, prev, issued, retired_at = hot_fields(s)
  if not r then return nil end
  l.renewed_at, l.expires_at, l.ttl_ms = r, e, t
  if issued ~= '' then
    l.secret = { issued = words(issued) }
    if prev ~= '' then l.secret.previous = prev end
    if retired_at <= #s then l.secret.retired = words(string.sub(s, retired_at)) end
  end
  return l
end

local layout_found = nil
-- the layout this database is stamped with (`<prefix>schema`; none: 1)
local function layout(key)
  if not layout_found then
    local prefix = string.match(key, '^(.*)seats:[^:]+$') or ''
    layout_found = tonumber(redis.call('GET', prefix .. 'schema') or '1') or 1
  end
  return layout_found
end

-- usher-core session_secret.rs `SecretChain`: a lease's `secret` is {previous, issued = [...], retired = [...]},
-- keyed hashes as hex. `issued` is never empty and `retired` exists only once something retired, so no
-- empty table is ever encoded. A lease from before session secrets has none: nothing matches it.
-- (Plain comparison: the hashes are keyed, so timing tells a guesser nothing about the secret.)
local function has(list, h)
  if not list then return false end
  for _, e in ipairs(list) do
    if e == h then return true end
  end
  return false
end

local function secret_check(l, h)
  local c = l.secret
  if not c or h == '' then return 'wrong' end
  if has(c.issued, h) then return 'current' end
  if c.previous == h then return 'previous' end
  if has(c.retired, h) then return 'cloned' end
  return 'wrong'
end

local function retire(c, h)
  c.retired = c.retired or {}
  if #c.retired >= RETIRED_MEMORY then table.remove(c.retired, 1) end
  c.retired[#c.retired + 1] = h
end

-- SecretChain::renew: a current secret moves the chain, the previous one issues one more beside the
-- current ones, anything else changes nothing
local function secret_renew(l, h, fresh)
  local check = secret_check(l, h)
  local c = l.secret
  if check == 'current' then
    if c.previous then retire(c, c.previous) end
    for _, e in ipairs(c.issued) do
      if e ~= h then retire(c, e) end
    end
    c.previous = h
    c.issued = { fresh }
  elseif check == 'previous' then
    if #c.issued >= ISSUED_MEMORY then retire(c, table.remove(c.issued, 1)) end
    c.issued[#c.issued + 1] = fresh
  end
  return check
end

-- lease.rs `admit`: when every seat is taken, the time the first of them frees (oldest wins) and the
-- lease a newest-wins admit supersedes (the least recently renewed, then the oldest), with its index
local function earliest_expiry(leases)
  local earliest = nil
  for _, l in ipairs(leases) do
    if earliest == nil or l.expires_at < earliest then earliest = l.expires_at end
  end
  return earliest
end

local function stalest(leases)
  local idx, best = 1, nil
  for i, l in ipairs(leases) do
    if best == nil or l.renewed_at < best.renewed_at
      or (l.renewed_at == best.renewed_at and l.created_at < best.created_at) then
      idx, best = i, l
    end
  end
  return idx, best
end

-- the ticket's status, read inside the lease step (a revoke that answered is seen by every later step)
local function is_revoked(ticket_json)
  return ticket_json and string.find(ticket_json, '"status":"revoked"', 1, true) ~= nil
end

-- end of the admit's part: the rules above are what an admit by fields needs; the admit puts it
-- (admit_fields.lua) between them and the rules below (the whole document's), so that an admit by fields
-- never pays for defining these, as the heartbeat's renewal by fields never pays for any

local ARRAY_KEYS = { leases = true, ended = true, devices = true, countries = true, addresses = true }

-- cjson encodes an empty table as {}, array or not; the keys in ARRAY_KEYS always hold arrays, so their
-- empty tables are written back as []. Only a key can end in an unescaped quote followed by a colon (in a
-- viewer's text every quote is escaped: `\"`), so no label is ever changed. cjson does the encoding in C:
-- the encoder in Lua this replaces took most of a heartbeat's time in Redis; plain finds keep the fix cheap.
local function enc(v)
  local s = cjson.encode(v)
  local parts, from, at = nil, 1, 1
  while true do
    local i = string.find(s, ':{}', at, true)
    if not i then break end
    local key = string.match(string.sub(s, math.max(1, i - 16), i - 1), '"(%a+)"$')
    if key and ARRAY_KEYS[key] then
      parts = parts or {}
      parts[#parts + 1] = string.sub(s, from, i)
      parts[#parts + 1] = '[]'
      from = i + 3
    end
    at = i + 3
  end
  if not parts then return s end
  parts[#parts + 1] = string.sub(s, from)
  return table.concat(parts)
end

local function drop_expired(prefix, st, now)
  local live = {}
  for _, l in ipairs(st.leases) do
    if l.expires_at <= now then
      remember_end(prefix, l.session_id, { reason = 'expired', at = l.expires_at })
      redis.call('ZREM', live_key(prefix, st), l.session_id)
    else
      live[#live + 1] = l
    end
  end
  st.leases = live
end

-- usher-core lease.rs `remember`: distinct entries (by `field` = `value`), most recent last, at most
-- `memory`; a known entry gets last_seen (and `extra`) and moves to the end
local function remember(list, memory, field, value, now, extra)
  local found = nil
  for i, e in ipairs(list) do
    -- a network the retention step left (`prefix`) is no exact address, even where it prints alike
    if e[field] == value and not e.prefix then found = i end
  end
  local e
  if found then
    e = table.remove(list, found)
    e.last_seen = now
  else
    if #list >= memory then table.remove(list, 1) end
    e = { first_seen = now, last_seen = now }
    e[field] = value
  end
  for k, v in pairs(extra or {}) do e[k] = v end
  list[#list + 1] = e
end

local function saw_device(st, device, label, now)
  local u = st.usage
  if u.first_play_at == nil or u.first_play_at == cjson.null then u.first_play_at = now end
  u.last_seen_at = now
  remember(u.devices, DEVICE_MEMORY, 'device_id', device, now, { label = label })
end

-- usher-core TicketLeases::saw_country and saw_address
local function saw_country(st, country, now)
  if not country or country == '' then return end
  st.usage.countries = st.usage.countries or {}
  remember(st.usage.countries, COUNTRY_MEMORY, 'country', country, now)
end

local function saw_address(st, address, now)
  if not address or address == '' then return end
  st.usage.addresses = st.usage.addresses or {}
  remember(st.usage.addresses, ADDRESS_MEMORY, 'address', address, now)
end

-- hot_parse, for a field that must be an h: field
local function hot_unpack(l, s)
  return hot_parse(l, s) or error('seats: a lease field holds ' .. s)
end

local function load_hash(key)
  local flat = redis.call('HGETALL', key)
  local st, v, fixed, moving, touches = nil, 0, {}, {}, {}
  for i = 1, #flat, 2 do
    local f, x = flat[i], flat[i + 1]
    local tag = string.sub(f, 1, 2)
    if tag == 'h:' then moving[string.sub(f, 3)] = x
    elseif tag == 't:' then
      local seq, at, first = string.match(x, '^(%d+),(%d+),(%d+)$')
      if not seq then error('seats: a renewal field holds ' .. x) end
      touches[#touches + 1] = { sid = string.sub(f, 3), seq = tonumber(seq), at = tonumber(at), first = tonumber(first) }
    elseif tag == 'j:' then
      local e = cjson.decode(x)
      e.seq, e.journal = tonumber(string.sub(f, 3)), true
      if not e.seq then error('seats: a journal field is named ' .. f) end
      touches[#touches + 1] = e
    elseif tag == 'l:' then fixed[#fixed + 1] = cjson.decode(x)
    elseif f == 'doc' then st = cjson.decode(x)
    elseif f == 'v' then v = tonumber(x)
    end
  end
  if not st then error('seats: ' .. key .. ' has no doc field') end
  st.v = v
  table.sort(fixed, function(a, b) return a.n < b.n end)
  st.leases = {}
  local by_session = {}
  for _, l in ipairs(fixed) do
    l.n = nil
    hot_unpack(l, moving[l.session_id] or error('seats: lease ' .. l.session_id .. ' has no h: field'))
    st.leases[#st.leases + 1] = l
    by_session[l.session_id] = l
  end
  return st, touches, by_session
end

local function load_seats(key, show_id)
  seats_key = key
  local kind = redis.call('TYPE', key).ok
  local st, touches, by_session
  if kind == 'hash' then
    st, touches, by_session = load_hash(key)
  elseif kind == 'string' then
    st = cjson.decode(redis.call('GET', key))
  elseif not show_id then
    return nil
  else
    return {
      show_id = show_id, leases = {}, ended = {},
      usage = { first_play_at = cjson.null, last_seen_at = cjson.null, sessions = 0, devices = {} },
    }
  end
  st.leases = st.leases or {}
  st.ended = st.ended or {}
  st.usage = st.usage or {}
  st.usage.devices = st.usage.devices or {}
  st.usage.sessions = st.usage.sessions or 0
  if touches then
    -- each session's last renewal since the last whole write, in the order they came; a device the
    -- usage had forgotten (an erasure, or 64 newer devices) is remembered from the session's first
    -- renewal, as writing each renewal would have done (which older device it pushes out of a full
    -- memory is decided here, at its last renewal's place: usage only, never a seat)
    table.sort(touches, function(a, b) return a.seq < b.seq end)
    local u = st.usage
    local unplayed = u.first_play_at == nil or u.first_play_at == cjson.null
    local function renewal(device, label, at, first)
      local known = false
      for _, e in ipairs(u.devices) do
        if e.device_id == device and not e.prefix then known = true end
      end
      saw_device(st, device, label, at)
      if not known then u.devices[#u.devices].first_seen = first end
      if unplayed and first < u.first_play_at then u.first_play_at = first end
    end
    for _, t in ipairs(touches) do
      if not t.journal then
        local l = by_session[t.sid]
        if l then renewal(l.device_id, l.device_label, t.at, t.first) end
      elseif t.f then
        renewal(t.d, t.l, t.at, t.f)
      else
        -- an admit by fields, as admit.lua's whole step records it
        saw_device(st, t.d, t.l, t.at)
        saw_country(st, t.c, t.at)
        saw_address(st, t.a, t.at)
        if t.s == 1 then u.sessions = u.sessions + 1 end
      end
    end
  end
  return st
end

-- every write moves the document's version `v`, which the retention step (retain.lua) compares
local function save_seats(key, st)
  st.v = (st.v or 0) + 1
  if layout(key) < 2 then
    redis.call('SET', key, enc(st))
    return
  end
  local leases = st.leases
  st.leases = nil
  local doc = enc(st)
  st.leases = leases
  local args = { 'doc', doc, 'v', string.format('%d', st.v), 'show_id', st.show_id }
  if layout(key) >= 3 then
    args[#args + 1] = 'ls'
    args[#args + 1] = session_names(leases)
    if st.usage.first_play_at ~= nil and st.usage.first_play_at ~= cjson.null then
      args[#args + 1] = 'played'
      args[#args + 1] = '1'
    end
  end
  for i, l in ipairs(leases) do
    args[#args + 1] = 'l:' .. l.session_id
    args[#args + 1] = fixed_part(l, i)
    args[#args + 1] = 'h:' .. l.session_id
    args[#args + 1] = hot_pack(l)
  end
  redis.call('DEL', key)
  redis.call('HSET', key, unpack(args))
end

local function end_lease(prefix, st, idx, reason)
  local l = table.remove(st.leases, idx)
  remember_end(prefix, l.session_id, reason)
  redis.call('ZREM', live_key(prefix, st), l.session_id)
  return l.session_id
end

local function saw_clone(st, now)
  st.usage.clones = (st.usage.clones or 0) + 1
  st.usage.last_clone_at = now
end

-- ends every lease of the ticket as revoked (the revoke script, and any step that finds the ticket revoked)
local function end_all_revoked(prefix, st, now)
  local ended = {}
  drop_expired(prefix, st, now)
  while #st.leases > 0 do
    ended[#ended + 1] = end_lease(prefix, st, 1, { reason = 'revoked', at = now })
  end
  return ended
end
