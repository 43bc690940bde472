-- KEYS[1] seats key; ARGV: prefix, reason json -> the sessions ended
local prefix = ARGV[1]
local reason = cjson.decode(ARGV[2])
local st = load_seats(KEYS[1], nil)
if not st then return {} end
drop_expired(prefix, st, reason.at)
local ended = {}
while #st.leases > 0 do
  ended[#ended + 1] = end_lease(prefix, st, 1, reason)
end
save_seats(KEYS[1], st)
return ended
