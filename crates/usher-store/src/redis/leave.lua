-- KEYS[1] session key; ARGV: prefix, session id, presented secret hash
-- -> 'left' | 'not_live' | 'cloned' | 'wrong' (lease.rs `TicketLeases::leave`)
local prefix, sid, presented = ARGV[1], ARGV[2], ARGV[3]
local ticket_id = redis.call('GET', KEYS[1])
if not ticket_id then return 'not_live' end
local key = prefix .. 'seats:' .. ticket_id
local st = load_seats(key, nil)
if not st then return 'not_live' end
local now = now_ms()
drop_expired(prefix, st, now)
for i, l in ipairs(st.leases) do
  if l.session_id == sid then
    local check = secret_check(l, presented)
    if check == 'current' or check == 'previous' then
      end_lease(prefix, st, i, { reason = 'left', at = now })
      save_seats(key, st)
      return 'left'
    end
    if check == 'cloned' then
      saw_clone(st, now)
      save_seats(key, st)
    end
    return check
  end
end
save_seats(key, st)
return 'not_live'
