-- The admit's first part (admit.lua has the whole step): run after the lease rules an admit by fields needs
-- and before the others are defined, so that an admit by fields never pays for defining them.
-- KEYS[1] seats key, KEYS[2] config generation, KEYS[3] ticket key; ARGV: prefix, ticket_id, show_id,
-- device, label, new_session, k, policy, ttl_ms, country, address, presented secret hash ('' for none),
-- fresh secret hash, the show door's passes key ('' on a Redis Cluster, where it is on another slot and
-- the node shortens the pass after this step)
-- -> {'admitted', session id, expires, 1 if re-attached else 0, generation, 1 if the ticket's first play
--     else 0, superseded session ids...}
--  | {'in_use', retry after (s), generation} | {'revoked', generation}
-- The generation tells the caller whether its cached shows and pool are current (redis/cache.rs).
local prefix, ticket_id, show_id, device, label, new_sid = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local k, policy, ttl, country = tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9]), ARGV[10]
local address, presented, fresh, passes = ARGV[11], ARGV[12], ARGV[13], ARGV[14]
local gen = config_generation(KEYS[2])
if is_revoked(redis.call('GET', KEYS[3])) then return { 'revoked', gen } end
local now = now_ms()

-- Layout 3's admit (seats.lua): the leases' fields only, never the usage document. It decides as the
-- whole step (admit.lua) does; what that would have written to the usage goes into one j: field.
-- It leaves to the whole step: a layout below 3, no seats yet, a ticket never played (the answer says
-- whether this is its first play), a full journal, a clone (recorded in the usage) and anything unusual.
local function admit_by_fields()
  local key = KEYS[1]
  if layout(key) < 3 then return nil end
  local head = redis.pcall('HMGET', key, 'played', 'show_id', 'ls', 'jn', 'v')
  if head.err then return nil end
  local played, stored_show, ls, journal = head[1], head[2], head[3], tonumber(head[4] or '0')
  local v = tonumber(head[5] or '0')
  if not played or not stored_show or not ls or not journal or journal >= JOURNAL_MEMORY or not v then
    return nil
  end
  -- the leases named by `ls`, in their order, with their renewals since the last whole write
  local leases, by_session, frozen, maxn = {}, {}, {}, 0
  if ls ~= '' then
    local sids, ask = words(ls), {}
    for _, sid in ipairs(sids) do
      ask[#ask + 1] = 'l:' .. sid
      ask[#ask + 1] = 'h:' .. sid
      ask[#ask + 1] = 't:' .. sid
    end
    local got = redis.call('HMGET', key, unpack(ask))
    for i, sid in ipairs(sids) do
      local fixed, m, t = got[3 * i - 2], got[3 * i - 1], got[3 * i]
      if not fixed or not m then return nil end
      local l = cjson.decode(fixed)
      if type(l.n) ~= 'number' or l.session_id ~= sid or not hot_parse(l, m) then return nil end
      if l.n > maxn then maxn = l.n end
      leases[#leases + 1] = l
      by_session[sid] = l
      if t then
        local seq, at, first = touch_parts(t)
        at, first = tonumber(at or ''), tonumber(first or '')
        if not (seq and at and first) then return nil end
        frozen[#frozen + 1] = { sid, seq, at, first }
      end
    end
  end
  table.sort(leases, function(a, b) return a.n < b.n end)
  local live, lapsed = {}, {}
  for _, l in ipairs(leases) do
    if l.expires_at <= now then lapsed[#lapsed + 1] = l else live[#live + 1] = l end
  end
  -- a device re-attaches only presenting its session's secret (lease.rs `admit` step 2); a clone is
  -- left to the whole step, before anything is written
  local again = nil
  for _, l in ipairs(live) do
    if l.device_id == device and presented ~= '' then
      local check = secret_check(l, presented)
      if check == 'cloned' then return nil end
      if check == 'current' or check == 'previous' then again = l end
      break
    end
  end

  -- decided: from here on it writes
  seats_key = key
  local st = { show_id = stored_show }
  local live_at = live_key(prefix, st)
  local gone, put = {}, {}
  -- each session renewed since the last whole write keeps its place before this admit: its t: field
  -- becomes a j: field (the next renewal starts a new t: field)
  for _, t in ipairs(frozen) do
    gone[#gone + 1] = 't:' .. t[1]
    local l = by_session[t[1]]
    if l then
      put[#put + 1] = 'j:' .. t[2]
      put[#put + 1] = cjson.encode({ d = l.device_id, l = l.device_label, at = t[3], f = t[4] })
      journal = journal + 1
    end
  end
  local function forget(l)
    gone[#gone + 1] = 'l:' .. l.session_id
    gone[#gone + 1] = 'h:' .. l.session_id
  end
  for _, l in ipairs(lapsed) do
    remember_end(prefix, l.session_id, { reason = 'expired', at = l.expires_at })
    redis.call('ZREM', live_at, l.session_id)
    forget(l)
  end
  -- `held`: the leases left, in their order (`ls`)
  local function write(out, held, saw_session)
    -- the version moves in the HSET below (read above: one write fewer than HINCRBY)
    local seq = string.format('%d', v + 1)
    put[#put + 1] = 'v'
    put[#put + 1] = seq
    if saw_session ~= nil then
      put[#put + 1] = 'j:' .. seq
      put[#put + 1] = cjson.encode({ d = device, l = label, c = country, a = address, at = now, s = saw_session })
      journal = journal + 1
    end
    put[#put + 1] = 'ls'
    put[#put + 1] = session_names(held)
    put[#put + 1] = 'jn'
    put[#put + 1] = int_text(journal)
    if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
    redis.call('HSET', key, unpack(put))
    return out
  end
  local expires = now + ttl
  if again then
    secret_renew(again, presented, fresh)
    again.renewed_at, again.expires_at, again.ttl_ms, again.device_label = now, expires, ttl, label
    local n = again.n
    again.n = nil
    put[#put + 1] = 'l:' .. again.session_id
    put[#put + 1] = fixed_part(again, n)
    put[#put + 1] = 'h:' .. again.session_id
    put[#put + 1] = hot_pack(again)
    redis.call('ZADD', live_at, int_text(expires), again.session_id)
    index_session(prefix, again.session_id, ticket_id, ttl)
    return write({ 'admitted', again.session_id, expires, 1, gen, 0 }, live, 0)
  end
  local superseded = {}
  if #live >= k then
    if policy == 'oldest_wins' then
      return write({ 'in_use', math.max(1, math.ceil((earliest_expiry(live) - now) / 1000)), gen }, live, nil)
    end
    while #live >= k do
      local idx, best = stalest(live)
      table.remove(live, idx)
      remember_end(prefix, best.session_id, { reason = 'superseded', by_device = label, at = now })
      redis.call('ZREM', live_at, best.session_id)
      forget(best)
      superseded[#superseded + 1] = best.session_id
    end
  end
  local l = {
    session_id = new_sid, device_id = device, device_label = label,
    created_at = now, renewed_at = now, expires_at = expires, ttl_ms = ttl,
    secret = { issued = { fresh } },
  }
  put[#put + 1] = 'l:' .. new_sid
  put[#put + 1] = fixed_part(l, maxn + 1)
  put[#put + 1] = 'h:' .. new_sid
  put[#put + 1] = hot_pack(l)
  redis.call('ZADD', live_at, int_text(expires), new_sid)
  if passes ~= '' then redis.call('ZREM', passes, ticket_id) end
  index_session(prefix, new_sid, ticket_id, ttl, true)
  local out = { 'admitted', new_sid, expires, 0, gen, 0 }
  for _, s in ipairs(superseded) do out[#out + 1] = s end
  live[#live + 1] = l
  return write(out, live, 1)
end
local by_fields = admit_by_fields()
if by_fields then return by_fields end
