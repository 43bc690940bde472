-- KEYS[1] show key, KEYS[2] shows set, KEYS[3] show ticket counter, KEYS[4] config generation; ARGV: show id
-- -> {-1} missing, {n} when n > 0 tickets still admit, {0, new generation} deleted
if redis.call('EXISTS', KEYS[1]) == 0 then return { -1 } end
local n = tonumber(redis.call('GET', KEYS[3]) or '0')
if n > 0 then return { n } end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return { 0, bump_generation(KEYS[4]) }
