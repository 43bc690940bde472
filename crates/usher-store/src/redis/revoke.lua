-- KEYS[1] ticket key; ARGV: revoked ticket json -> the stored ticket json after the call (nil if missing)
local cur = redis.call('GET', KEYS[1])
if not cur then return false end
if cjson.decode(cur).status == 'revoked' then return cur end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
