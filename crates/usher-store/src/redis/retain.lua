-- KEYS[1] seats key; ARGV: the document's version as the caller read it, the usage's new lists as JSON
-- ({"devices": [...], "countries": [...], "addresses": [...]}, computed by usher-core privacy.rs
-- `Usage::apply_retention` from what the caller read)
-- -> 1 written, 0 the seats changed since they were read (the caller reads them again), 2 no seats
-- Every write of a seats document moves its version (save_seats), so an admit or heartbeat between the
-- read and this step is never overwritten: the step refuses and the rule is applied again to the new
-- document.
local st = load_seats(KEYS[1], nil)
if not st then return 2 end
if (st.v or 0) ~= tonumber(ARGV[1]) then return 0 end
local lists = cjson.decode(ARGV[2])
st.usage.devices = lists.devices
st.usage.countries = lists.countries
st.usage.addresses = lists.addresses
save_seats(KEYS[1], st)
return 1
