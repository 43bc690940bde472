-- KEYS[1] token key, KEYS[2] config generation; ARGV[1] ticket key prefix
-- -> {generation, ticket json or false}
local gen = config_generation(KEYS[2])
local id = redis.call('GET', KEYS[1])
if not id then return { gen, false } end
return { gen, redis.call('GET', ARGV[1] .. id) or false }
