-- KEYS[1] token key, KEYS[2] ticket key, KEYS[3] the show's ticket counter on one Redis, the shard's ticket
-- set on a Redis Cluster, KEYS[4] the external reference index (one Redis only), KEYS[5] the audit log
-- when the registration is audited (one Redis only);
-- ARGV: ticket id, ticket json, ticket key prefix, '1' when the ticket has an external reference,
-- 'cluster' on a Redis Cluster (where the counter and the index are on another slot: the node counts the
-- ticket before this step and takes it back should this step not create it), else '' when audited; with
-- KEYS[5]: the audit entry's json, the last index the log keeps (LTRIM)
-- -> {'created'} | {'existing', existing ticket json}
local existing = redis.call('GET', KEYS[1])
if existing == ARGV[1] then
  -- this very registration run again (ids are unique per registration): the cluster client sends a
  -- whole pipeline again when a moving slot refused an item of it, after the items before it ran
  return { 'created' }
end
if existing then
  return { 'existing', redis.call('GET', ARGV[3] .. existing) or '' }
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
if ARGV[5] == 'cluster' then
  -- the shard's tickets, which retention walks (a cluster has no SCAN over every master)
  redis.call('SADD', KEYS[3], ARGV[1])
  return { 'created' }
end
redis.call('INCR', KEYS[3])
if ARGV[4] == '1' then
  redis.call('SADD', KEYS[4], ARGV[1])
end
if KEYS[5] then
  redis.call('LPUSH', KEYS[5], ARGV[6])
  redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[7]))
end
return { 'created' }
