-- KEYS[1] ticket key, KEYS[2] seats key; ARGV: revoked ticket json, prefix
-- -> the stored ticket json after the call (false if missing)
-- One step: the status and the end of every lease together, so no admit or heartbeat (which read the
-- status in their own steps) can seat or renew the ticket once this has run.
local cur = redis.call('GET', KEYS[1])
if not cur then return false end
local st = load_seats(KEYS[2], nil)
if st and #st.leases > 0 then
  end_all_revoked(ARGV[2], st, now_ms())
  save_seats(KEYS[2], st)
end
if is_revoked(cur) then return cur end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
