-- Usher's lease rules (usher-core/src/lease.rs) in Lua, for the Redis backend. Every script that changes
-- a ticket's seats starts with this file. The rules must stay identical to the Rust ones: the store
-- contract suite runs the same cases against both backends.
--
-- A ticket's seats live in one JSON document at <prefix>seats:<ticket id>:
--   {"show_id", "leases": [...], "ended": [], "usage": {...}}  (the serde form of TicketLeases)
-- Ended sessions are not kept in the document (a storm of 500 devices would make every step rewrite
-- hundreds of them) but each in <prefix>ended:<session id>, expiring after ENDED_RETENTION_MS.
-- Time comes from Redis's TIME, so node clock skew cannot break the at-most-k invariant.

local ENDED_RETENTION_MS = 3600000
local DEVICE_MEMORY = 64
local COUNTRY_MEMORY = 32
local ADDRESS_MEMORY = 32
local ARRAY_KEYS = { leases = true, ended = true, devices = true, countries = true, addresses = true }

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- cjson cannot tell an empty array from an empty object; these keys are always arrays.
local function enc(v, as_array)
  if type(v) ~= 'table' then
    return cjson.encode(v)
  end
  if as_array or #v > 0 then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = enc(x, false) end
    return '[' .. table.concat(parts, ',') .. ']'
  end
  local parts = {}
  for k, x in pairs(v) do
    parts[#parts + 1] = cjson.encode(tostring(k)) .. ':' .. enc(x, ARRAY_KEYS[k])
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

local function load_seats(key, show_id)
  local raw = redis.call('GET', key)
  if raw then
    local st = cjson.decode(raw)
    st.leases = st.leases or {}
    st.ended = st.ended or {}
    st.usage = st.usage or {}
    st.usage.devices = st.usage.devices or {}
    st.usage.sessions = st.usage.sessions or 0
    return st
  end
  if not show_id then return nil end
  return {
    show_id = show_id, leases = {}, ended = {},
    usage = { first_play_at = cjson.null, last_seen_at = cjson.null, sessions = 0, devices = {} },
  }
end

local function save_seats(key, st)
  redis.call('SET', key, enc(st, false))
end

local function live_key(prefix, st) return prefix .. 'live:' .. st.show_id end
local function session_key(prefix, sid) return prefix .. 'session:' .. sid end

local function remember_end(prefix, sid, reason)
  redis.call('SET', prefix .. 'ended:' .. sid, cjson.encode(reason), 'PX', ENDED_RETENTION_MS)
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

local function saw_device(st, device, label, now)
  local u = st.usage
  if u.first_play_at == nil or u.first_play_at == cjson.null then u.first_play_at = now end
  u.last_seen_at = now
  local found = nil
  for i, d in ipairs(u.devices) do
    if d.device_id == device then found = i end
  end
  if found then
    local d = table.remove(u.devices, found)
    d.last_seen = now
    d.label = label
    u.devices[#u.devices + 1] = d
  else
    if #u.devices >= DEVICE_MEMORY then table.remove(u.devices, 1) end
    u.devices[#u.devices + 1] = { device_id = device, label = label, first_seen = now, last_seen = now }
  end
end

-- usher-core TicketLeases::saw_country: most recent last, at most COUNTRY_MEMORY
local function saw_country(st, country, now)
  if not country or country == '' then return end
  local u = st.usage
  u.countries = u.countries or {}
  local found = nil
  for i, c in ipairs(u.countries) do
    if c.country == country then found = i end
  end
  if found then
    local c = table.remove(u.countries, found)
    c.last_seen = now
    u.countries[#u.countries + 1] = c
  else
    if #u.countries >= COUNTRY_MEMORY then table.remove(u.countries, 1) end
    u.countries[#u.countries + 1] = { country = country, first_seen = now, last_seen = now }
  end
end

-- usher-core TicketLeases::saw_address: most recent last, at most ADDRESS_MEMORY
local function saw_address(st, address, now)
  if not address or address == '' then return end
  local u = st.usage
  u.addresses = u.addresses or {}
  local found = nil
  for i, a in ipairs(u.addresses) do
    if a.address == address then found = i end
  end
  if found then
    local a = table.remove(u.addresses, found)
    a.last_seen = now
    u.addresses[#u.addresses + 1] = a
  else
    if #u.addresses >= ADDRESS_MEMORY then table.remove(u.addresses, 1) end
    u.addresses[#u.addresses + 1] = { address = address, first_seen = now, last_seen = now }
  end
end

local function end_lease(prefix, st, idx, reason)
  local l = table.remove(st.leases, idx)
  remember_end(prefix, l.session_id, reason)
  redis.call('ZREM', live_key(prefix, st), l.session_id)
  return l.session_id
end

local function index_session(prefix, st, sid, ticket_id, ttl_ms)
  redis.call('SET', session_key(prefix, sid), ticket_id, 'PX', ttl_ms + ENDED_RETENTION_MS)
end
