-- KEYS[1] token key, KEYS[2] ticket key, KEYS[3] show ticket counter, KEYS[4] external reference index;
-- ARGV: ticket id, ticket json, ticket key prefix, '1' when the ticket has an external reference
-- -> {'created'} | {'existing', existing ticket json}
local existing = redis.call('GET', KEYS[1])
if existing then
  return { 'existing', redis.call('GET', ARGV[3] .. existing) or '' }
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('INCR', KEYS[3])
if ARGV[4] == '1' then
  redis.call('SADD', KEYS[4], ARGV[1])
end
return { 'created' }
