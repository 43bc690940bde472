-- KEYS[1] seats key; ARGV: prefix
-- -> {addresses, countries, devices, sessions whose label or country was blanked, live sessions}
-- usher-core privacy.rs `TicketLeases::erase_personal_data`, in one step with the ticket's leases: the
-- usage's devices, countries and addresses go, the live leases' device labels are blanked (they keep
-- their seats and device ids), and so are the remembered endings' labels ("superseded by …") and
-- countries (geo_blocked), each kept until it lapses as before.
local prefix = ARGV[1]
local out = { 0, 0, 0, 0, 0 }
local st = load_seats(KEYS[1], nil)
if st then
  drop_expired(prefix, st, now_ms())
  local u = st.usage
  out[1] = #(u.addresses or {})
  out[2] = #(u.countries or {})
  out[3] = #u.devices
  u.addresses = {}
  u.countries = {}
  u.devices = {}
  for _, l in ipairs(st.leases) do
    if l.device_label and l.device_label ~= '' then
      l.device_label = ''
      out[4] = out[4] + 1
    end
  end
  out[5] = #st.leases
  save_seats(KEYS[1], st)
end
for _, sid in ipairs(redis.call('LRANGE', KEYS[1] .. ':ended', 0, -1)) do
  local key = prefix .. 'ended:' .. sid
  local raw = redis.call('GET', key)
  if raw then
    local r = cjson.decode(raw)
    local blanked = false
    if r.reason == 'superseded' and r.by_device and r.by_device ~= '' then
      r.by_device = ''
      blanked = true
    end
    if r.reason == 'geo_blocked' and r.country and r.country ~= cjson.null then
      r.country = cjson.null
      blanked = true
    end
    if blanked then
      redis.call('SET', key, cjson.encode(r), 'KEEPTTL')
      out[4] = out[4] + 1
    end
  end
end
return out
