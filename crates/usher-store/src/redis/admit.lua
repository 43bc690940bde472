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
local st = load_seats(KEYS[1], show_id)
drop_expired(prefix, st, now)
local expires = now + ttl
-- a device re-attaches only presenting its session's secret (lease.rs `admit` step 2)
for _, l in ipairs(st.leases) do
  if l.device_id == device and presented ~= '' then
    local check = secret_renew(l, presented, fresh)
    if check == 'cloned' then saw_clone(st, now) end
    if check == 'current' or check == 'previous' then
      l.renewed_at = now
      l.expires_at = expires
      l.ttl_ms = ttl
      l.device_label = label
      saw_device(st, device, label, now)
      saw_country(st, country, now)
      saw_address(st, address, now)
      redis.call('ZADD', live_key(prefix, st), expires, l.session_id)
      index_session(prefix, st, l.session_id, ticket_id, ttl)
      save_seats(KEYS[1], st)
      return { 'admitted', l.session_id, expires, 1, gen, 0 }
    end
    break
  end
end
local superseded = {}
if #st.leases >= k then
  if policy == 'oldest_wins' then
    local earliest = nil
    for _, l in ipairs(st.leases) do
      if earliest == nil or l.expires_at < earliest then earliest = l.expires_at end
    end
    save_seats(KEYS[1], st)
    return { 'in_use', math.max(1, math.ceil((earliest - now) / 1000)), gen }
  end
  while #st.leases >= k do
    local idx, best = 1, nil
    for i, l in ipairs(st.leases) do
      if best == nil or l.renewed_at < best.renewed_at
        or (l.renewed_at == best.renewed_at and l.created_at < best.created_at) then
        idx, best = i, l
      end
    end
    superseded[#superseded + 1] = end_lease(prefix, st, idx, { reason = 'superseded', by_device = label, at = now })
  end
end
st.leases[#st.leases + 1] = {
  session_id = new_sid, device_id = device, device_label = label,
  created_at = now, renewed_at = now, expires_at = expires, ttl_ms = ttl,
  secret = { issued = { fresh } },
}
st.usage.sessions = st.usage.sessions + 1
local first_play = 0
if st.usage.first_play_at == nil or st.usage.first_play_at == cjson.null then first_play = 1 end
saw_device(st, device, label, now)
saw_country(st, country, now)
saw_address(st, address, now)
redis.call('ZADD', live_key(prefix, st), expires, new_sid)
-- a pass through the show's door (doors-open capacity) is used up by this seat, in the same step
if passes ~= '' then redis.call('ZREM', passes, ticket_id) end
index_session(prefix, st, new_sid, ticket_id, ttl)
save_seats(KEYS[1], st)
local out = { 'admitted', new_sid, expires, 0, gen, first_play }
for _, s in ipairs(superseded) do out[#out + 1] = s end
return out
