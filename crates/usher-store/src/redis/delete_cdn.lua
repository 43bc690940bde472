-- KEYS[1] cdn key, KEYS[2] its health key, KEYS[3] CDN id set, KEYS[4] config generation; ARGV[1] CDN id
-- -> {1 if it existed else 0, new generation}
local n = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return { n, bump_generation(KEYS[4]) }
