-- KEYS[1] config generation, KEYS[2] show key; ARGV[1] the generation of the caller's copy ('' without one)
-- -> {generation} when that copy is current, else {generation, show json or false}
local gen = config_generation(KEYS[1])
if ARGV[1] == gen then return { gen } end
return { gen, redis.call('GET', KEYS[2]) or false }
