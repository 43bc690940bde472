-- KEYS[1] the show id set; ARGV: key prefix -> {show id, sessions whose lease runs, ...} for the shows with
-- any (each show's `live` set, scored by lease expiry, counted from Redis's clock).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local n = redis.call('ZCOUNT', ARGV[1] .. 'live:' .. id, '(' .. string.format('%d', now), '+inf')
  if n > 0 then
    out[#out + 1] = id
    out[#out + 1] = n
  end
end
return out
