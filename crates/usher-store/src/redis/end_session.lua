-- KEYS[1] session key; ARGV: prefix, session id, reason json -> 1 when it held a lease, else 0
local prefix, sid = ARGV[1], ARGV[2]
local reason = cjson.decode(ARGV[3])
local ticket_id = redis.call('GET', KEYS[1])
if not ticket_id then return 0 end
local key = prefix .. 'seats:' .. ticket_id
local st = load_seats(key, nil)
if not st then return 0 end
drop_expired(prefix, st, reason.at)
for i, l in ipairs(st.leases) do
  if l.session_id == sid then
    end_lease(prefix, st, i, reason)
    save_seats(key, st)
    return 1
  end
end
save_seats(key, st)
return 0
