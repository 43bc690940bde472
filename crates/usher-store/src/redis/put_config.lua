-- KEYS[1] record key, KEYS[2] id set, KEYS[3] config generation, KEYS[4] health key (CDNs only);
-- ARGV: record json, id, initial health json (CDNs only: kept if the CDN has one)
-- -> {1 if it replaced a record else 0, new generation}
local old = redis.call('SET', KEYS[1], ARGV[1], 'GET')
redis.call('SADD', KEYS[2], ARGV[2])
if KEYS[4] then redis.call('SET', KEYS[4], ARGV[3], 'NX') end
return { old and 1 or 0, bump_generation(KEYS[3]) }
