-- KEYS[1] session key; ARGV: prefix, session id
-- -> {'renewed', expires, ticket_id, show_id, ticket json or false} | {'ended', reason json, ticket_id, show_id}
--  | {'unknown'}
-- The ticket comes along so that the caller needs no second round trip.
local prefix, sid = ARGV[1], ARGV[2]
local ticket_id = redis.call('GET', KEYS[1])
if not ticket_id then return { 'unknown' } end
local key = prefix .. 'seats:' .. ticket_id
local st = load_seats(key, nil)
if not st then return { 'unknown' } end
local now = now_ms()
for i, l in ipairs(st.leases) do
  if l.session_id == sid then
    if l.expires_at <= now then
      end_lease(prefix, st, i, { reason = 'expired', at = l.expires_at })
    else
      l.renewed_at = now
      l.expires_at = now + l.ttl_ms
      saw_device(st, l.device_id, l.device_label, now)
      redis.call('ZADD', live_key(prefix, st), l.expires_at, sid)
      index_session(prefix, st, sid, ticket_id, l.ttl_ms)
      save_seats(key, st)
      local ticket = redis.call('GET', prefix .. 'ticket:' .. ticket_id) or false
      return { 'renewed', l.expires_at, ticket_id, st.show_id, ticket }
    end
    break
  end
end
save_seats(key, st)
local reason = redis.call('GET', prefix .. 'ended:' .. sid)
if reason then
  return { 'ended', reason, ticket_id, st.show_id }
end
return { 'unknown' }
