-- KEYS[1] show key, KEYS[2] shows set, KEYS[3] show ticket counter; ARGV: show id
-- -> -1 missing, 0 deleted, n > 0 tickets still admit
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local n = tonumber(redis.call('GET', KEYS[3]) or '0')
if n > 0 then return n end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 0
