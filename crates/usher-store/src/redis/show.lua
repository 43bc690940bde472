-- KEYS[1] config generation, KEYS[2] show key; ARGV[1] the generation of the caller's copy ('' without one)
-- -> {generation} when that copy is current, else {generation, show json or false}
local gen = tonumber(redis.call('GET', KEYS[1]) or '0')
if ARGV[1] == tostring(gen) then return { gen } end
return { gen, redis.call('GET', KEYS[2]) or false }
