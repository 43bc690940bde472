-- KEYS[1] the audit list (newest first); ARGV: drop entries older than this (ms), keep at most this many,
-- drop at most this many in one call -> how many were dropped.
local before, cap, batch = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local len = redis.call('LLEN', KEYS[1])
local dropped = 0
if len > cap then
  dropped = math.min(len - cap, batch)
  len = len - dropped
  redis.call('LTRIM', KEYS[1], 0, len - 1)
end
while dropped < batch and len > 0 do
  local oldest = cjson.decode(redis.call('LINDEX', KEYS[1], -1))
  if oldest.at >= before then
    break
  end
  redis.call('RPOP', KEYS[1])
  dropped = dropped + 1
  len = len - 1
end
return dropped
