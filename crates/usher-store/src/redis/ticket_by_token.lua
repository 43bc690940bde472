-- KEYS[1] token key; ARGV[1] ticket key prefix -> ticket json, or false when the token is unknown
local id = redis.call('GET', KEYS[1])
if not id then return false end
return redis.call('GET', ARGV[1] .. id) or false
