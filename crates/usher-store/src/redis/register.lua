-- KEYS[1] token key, KEYS[2] ticket key, KEYS[3] show ticket counter; ARGV: ticket id, ticket json, ticket key prefix
-- -> {'created'} | {'existing', existing ticket json}
local existing = redis.call('GET', KEYS[1])
if existing then
  return { 'existing', redis.call('GET', ARGV[3] .. existing) or '' }
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('INCR', KEYS[3])
return { 'created' }
