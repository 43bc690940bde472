-- KEYS[1] cdn key, KEYS[2] its health key, KEYS[3] config generation; ARGV[1] health json
-- -> the new generation, or false when the CDN is missing
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('SET', KEYS[2], ARGV[1])
return bump_generation(KEYS[3])
