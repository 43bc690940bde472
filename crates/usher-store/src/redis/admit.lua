-- The admit's whole step (admit_fields.lua has its keys, arguments and answers): runs after the admit by
-- fields and the rest of the lease rules, for every case the admit by fields leaves to it.
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
      index_session(prefix, l.session_id, ticket_id, ttl)
      save_seats(KEYS[1], st)
      return { 'admitted', l.session_id, expires, 1, gen, 0 }
    end
    break
  end
end
local superseded = {}
if #st.leases >= k then
  if policy == 'oldest_wins' then
    save_seats(KEYS[1], st)
    return { 'in_use', math.max(1, math.ceil((earliest_expiry(st.leases) - now) / 1000)), gen }
  end
  while #st.leases >= k do
    local idx = stalest(st.leases)
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
index_session(prefix, new_sid, ticket_id, ttl, true)
save_seats(KEYS[1], st)
local out = { 'admitted', new_sid, expires, 0, gen, first_play }
for _, s in ipairs(superseded) do out[#out + 1] = s end
return out
