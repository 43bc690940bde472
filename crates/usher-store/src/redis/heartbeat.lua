-- KEYS[1] session key, KEYS[2] config generation; ARGV: prefix, session id, presented secret hash, fresh
-- secret hash ('' to check without renewing), revive since (ms, '' for none: usher-core lease.rs
-- `Presented::revive_since`, a lease that lapsed after it is still held by this step)
-- -> {'renewed', expires, ticket_id, show_id, generation, ticket json, or false from the renewal by fields}
--  | {'ended', reason json, ticket_id, show_id, generation} | {'unknown', generation}
--  | {'cloned', generation, ticket_id, show_id} | {'wrong', generation, ticket_id, show_id}
-- The ticket comes along (when this step renews) so that the caller needs no second round trip, and the
-- generation so that its cached shows and pool are known to be current (redis/cache.rs). The ticket's
-- status is read in the same step: a revoked ticket's leases end here, so no session renews once a
-- revoke has answered.
-- Runs after heartbeat_fields.lua (which reads the arguments and the session's ticket id, and renews a
-- lease of layout 2 by its fields) and the lease rules: every other case.
local ticket = redis.call('GET', prefix .. 'ticket:' .. ticket_id) or false
local st = load_seats(key, nil)
if not st then return { 'unknown', gen } end
local now = now_ms()
if is_revoked(ticket) and #st.leases > 0 then
  end_all_revoked(prefix, st, now)
  save_seats(key, st)
end
for i, l in ipairs(st.leases) do
  if l.session_id == sid then
    if l.expires_at <= now and not (revive_since and l.expires_at > revive_since) then
      end_lease(prefix, st, i, { reason = 'expired', at = l.expires_at })
      break
    end
    local check
    if fresh == '' then check = secret_check(l, presented) else check = secret_renew(l, presented, fresh) end
    if check == 'cloned' then
      saw_clone(st, now)
      save_seats(key, st)
      return { 'cloned', gen, ticket_id, st.show_id }
    end
    if check == 'wrong' then return { 'wrong', gen, ticket_id, st.show_id } end
    if fresh ~= '' then
      l.renewed_at = now
      l.expires_at = now + l.ttl_ms
      saw_device(st, l.device_id, l.device_label, now)
      redis.call('ZADD', live_key(prefix, st), l.expires_at, sid)
      index_session(prefix, sid, ticket_id, l.ttl_ms)
      save_seats(key, st)
    end
    return { 'renewed', l.expires_at, ticket_id, st.show_id, gen, ticket }
  end
end
save_seats(key, st)
local reason = redis.call('GET', prefix .. 'ended:' .. sid)
if reason then
  return { 'ended', reason, ticket_id, st.show_id, gen }
end
return { 'unknown', gen }
